/* pyrandom.c — MT19937 (Matsumoto & Nishimura 1998, with the 2002 init_by_array seeding)
 * and the sampling rules of CPython's Lib/random.py. */
#include "util/pyrandom.h"

#include <math.h>
#include <stdlib.h>

enum { MT_N = 624, MT_M = 397 };

static void init_genrand(PyRandom *r, uint32_t s) {
    r->mt[0] = s;
    for (uint32_t i = 1; i < MT_N; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + i;
    r->index = MT_N;
}

/* The 2002 seeding from an array of 32-bit words, which CPython uses for every int seed. */
static void init_by_array(PyRandom *r, const uint32_t *key, int len) {
    init_genrand(r, 19650218u);
    uint32_t *mt = r->mt;
    int i = 1, j = 0;
    for (int k = MT_N > len ? MT_N : len; k > 0; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
        if (++i >= MT_N) {
            mt[0] = mt[MT_N - 1];
            i = 1;
        }
        if (++j >= len) j = 0;
    }
    for (int k = MT_N - 1; k > 0; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        if (++i >= MT_N) {
            mt[0] = mt[MT_N - 1];
            i = 1;
        }
    }
    mt[0] = 0x80000000u; /* a non-zero initial state is assured */
    r->index = MT_N;
}

void pyrandom_seed(PyRandom *r, uint64_t seed) {
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    init_by_array(r, key, key[1] ? 2 : 1);
}

/* Refills the 624 words of state: the twist. */
static void twist(PyRandom *r) {
    uint32_t *mt = r->mt;
    for (int k = 0; k < MT_N; k++) {
        const uint32_t y = (mt[k] & 0x80000000u) | (mt[(k + 1) % MT_N] & 0x7fffffffu);
        mt[k] = mt[(k + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    r->index = 0;
}

static uint32_t next_u32(PyRandom *r) {
    if (r->index >= MT_N) twist(r);
    uint32_t y = r->mt[r->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint32_t pyrandom_getrandbits(PyRandom *r, int k) {
    return next_u32(r) >> (32 - k);
}

uint32_t pyrandom_below(PyRandom *r, uint32_t n) {
    int bits = 0;
    for (uint32_t v = n; v; v >>= 1) bits++;
    uint32_t x = pyrandom_getrandbits(r, bits);
    while (x >= n) x = pyrandom_getrandbits(r, bits);
    return x;
}

int pyrandom_sample(PyRandom *r, int n, int k, int *out) {
    /* Python keeps a list of n when that is smaller than a set of k: 21 plus the hash table
     * size 4 ** ceil(log(3k, 4)) above 5 items */
    double setsize = 21;
    if (k > 5) setsize += pow(4.0, ceil(log((double)k * 3) / log(4.0)));
    if ((double)n <= setsize) {
        int *pool = malloc((size_t)(n > 0 ? n : 1) * sizeof *pool);
        if (!pool) return -1;
        for (int i = 0; i < n; i++) pool[i] = i;
        for (int i = 0; i < k; i++) {
            const int j = (int)pyrandom_below(r, (uint32_t)(n - i));
            out[i] = pool[j];
            pool[j] = pool[n - i - 1]; /* the unchosen last item fills the hole */
        }
        free(pool);
        return 0;
    }
    unsigned char *taken = calloc((size_t)n, 1);
    if (!taken) return -1;
    for (int i = 0; i < k; i++) {
        int j = (int)pyrandom_below(r, (uint32_t)n);
        while (taken[j]) j = (int)pyrandom_below(r, (uint32_t)n);
        taken[j] = 1;
        out[i] = j;
    }
    free(taken);
    return 0;
}
