/* rng.h — the seeded random number generator of cutkit (xoshiro256** seeded by splitmix64).
 * Its whole state is four words, so training checkpoints can save and restore it exactly. */
#ifndef CK_RNG_H
#define CK_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} Rng;

/* Seeds r deterministically from one 64-bit seed. */
void rng_seed(Rng *r, uint64_t seed);

/* Returns the next 64 random bits. */
uint64_t rng_next(Rng *r);

/* Returns a float uniformly distributed in [0, 1) with 24 random bits. */
float rng_float(Rng *r);

#endif
