/* hash.c — see hash.h. */
#include "util/hash.h"

#include <string.h>

uint64_t hash_fnv1a64(uint64_t h, const void *data, size_t size) {
    const unsigned char *p = data;
    for (size_t i = 0; i < size; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Eight bytes at a time with a multiply-xorshift mix: keys (tokens) are short, so what
 * matters is few operations per byte. */
uint64_t hash_bytes(const void *data, size_t n) {
    const char *s = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    /* the tail byte by byte: a memcpy of variable length is a library call, and keys are short
     * (little-endian order, so the value equals an 8-byte load of the zero-padded tail) */
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)(unsigned char)s[i] << (8 * i);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    return h;
}
