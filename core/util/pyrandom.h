/* pyrandom.h — Python's `random` module, bit for bit, for the few places where cutkit must
 * draw exactly what a Python reference drew: MT19937 seeded as random.seed(int) seeds it,
 * getrandbits, _randbelow and random.sample (CPython 3.2-3.13 share these algorithms). */
#ifndef CK_PYRANDOM_H
#define CK_PYRANDOM_H

#include <stdint.h>

typedef struct {
    uint32_t mt[624];
    int index; /* next word of mt to temper; 624 = regenerate first */
} PyRandom;

/* Seeds r as Python's random.seed(seed) does for a non-negative int: init_by_array over the
 * seed's 32-bit words, least significant first (one word when it fits in 32 bits). */
void pyrandom_seed(PyRandom *r, uint64_t seed);

/* random.getrandbits(k) for 1 <= k <= 32: the top k bits of the next 32-bit output. */
uint32_t pyrandom_getrandbits(PyRandom *r, int k);

/* random._randbelow(n) for n >= 1: getrandbits(n.bit_length()) drawn until below n. */
uint32_t pyrandom_below(PyRandom *r, uint32_t n);

/* random.sample(range(n), k) into out[0..k), in Python's order, drawing exactly the numbers
 * Python draws (its pool method for small n, its rejection-from-a-set method otherwise).
 * Requires 0 <= k <= n. Returns 0, or -1 when out of memory. */
int pyrandom_sample(PyRandom *r, int n, int k, int *out);

#endif
