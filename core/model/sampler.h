/* sampler.h — choosing the next token from logits: greedy, temperature, nucleus (top-p). */
#ifndef CK_SAMPLER_H
#define CK_SAMPLER_H

#include <stdint.h>

#include "util/ck_error.h"
#include "util/rng.h"

typedef struct {
    float prob;
    int id;
} ProbId;

typedef struct {
    int vocab_size;
    float temperature; /* 0: greedy */
    float top_p;       /* in (0, 1]; 1 samples from the whole distribution */
    Rng rng;
    ProbId *candidates; /* [vocab_size] scratch for top-p (owned) */
} Sampler;

/* Prepares a sampler; temperature >= 0 and top_p in (0, 1] are checked here. */
int sampler_init(Sampler *s, int vocab_size, float temperature, float top_p, uint64_t seed,
                 CkError *err);

/* Starts s over for another sequence (same vocabulary, no allocation): new temperature,
 * top_p (checked as sampler_init checks them) and seed. */
int sampler_reset(Sampler *s, float temperature, float top_p, uint64_t seed, CkError *err);

/* Releases the sampler's scratch memory. */
void sampler_free(Sampler *s);

/* Index of the largest value, the first one on ties (the strict first-max argmax). */
int sampler_argmax(const float *values, int n);

/* Picks the next token from logits (vocab_size values, modified in place). */
int sampler_sample(Sampler *s, float *logits);

#endif
