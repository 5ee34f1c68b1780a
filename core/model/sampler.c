/* sampler.c — greedy, temperature and top-p sampling. */
#include "model/sampler.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "model/simd.h"

int sampler_reset(Sampler *s, float temperature, float top_p, uint64_t seed, CkError *err) {
    if (!(temperature >= 0.0f) || !isfinite(temperature))
        return ck_fail(err, "temperature must be >= 0, got %g", temperature);
    if (!(top_p > 0.0f && top_p <= 1.0f))
        return ck_fail(err, "top-p must be in (0, 1], got %g", top_p);
    s->temperature = temperature;
    s->top_p = top_p;
    rng_seed(&s->rng, seed);
    return 0;
}

int sampler_init(Sampler *s, int vocab_size, float temperature, float top_p, uint64_t seed,
                 CkError *err) {
    s->candidates = NULL;
    if (sampler_reset(s, temperature, top_p, seed, err) != 0) return -1;
    s->vocab_size = vocab_size;
    s->candidates = malloc((size_t)vocab_size * sizeof(ProbId));
    if (!s->candidates) return ck_fail(err, "out of memory");
    return 0;
}

void sampler_free(Sampler *s) {
    free(s->candidates);
    s->candidates = NULL;
}

int sampler_argmax(const float *values, int n) {
    /* The strict first-max scan ends on the first index holding the largest value (NaN never
     * compares greater; a NaN at 0 is never left). So: the largest value, lane-wise in
     * registers, then the first index holding it, which gives the same index. */
    if (n < 2 * SIMD_LANES || isnan(values[0])) {
        int best = 0;
        for (int i = 1; i < n; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }
    typedef int32_t lane_mask __attribute__((vector_size(sizeof(simd_f32))));
    /* every lane starts from values[0], a number: a lane that started at a NaN would stay */
    simd_f32 top;
    for (int l = 0; l < SIMD_LANES; l++) top[l] = values[0];
    int i = 0;
    for (; i + SIMD_LANES <= n; i += SIMD_LANES) {
        const simd_f32 v = simd_load_f32(values + i);
        const lane_mask greater = v > top;
        top = (simd_f32)(((lane_mask)v & greater) | ((lane_mask)top & ~greater));
    }
    float maxv = values[0];
    for (int l = 0; l < SIMD_LANES; l++)
        if (top[l] > maxv) maxv = top[l];
    for (; i < n; i++)
        if (values[i] > maxv) maxv = values[i];
    i = 0;
    while (values[i] != maxv) i++;
    return i;
}

static int by_prob_descending(const void *a, const void *b) {
    const ProbId *x = a, *y = b;
    if (x->prob != y->prob) return x->prob > y->prob ? -1 : 1;
    return x->id - y->id; /* deterministic order among equal probabilities */
}

int sampler_sample(Sampler *s, float *logits) {
    const int V = s->vocab_size;
    if (s->temperature == 0.0f) return sampler_argmax(logits, V);
    /* softmax(logits / T) with max-subtraction */
    float maxv = logits[0];
    for (int i = 1; i < V; i++)
        if (logits[i] > maxv) maxv = logits[i];
    double sum = 0.0;
    for (int i = 0; i < V; i++) {
        logits[i] = expf((logits[i] - maxv) / s->temperature);
        sum += logits[i];
    }
    for (int i = 0; i < V; i++) logits[i] = (float)(logits[i] / sum);
    float r = rng_float(&s->rng);
    if (s->top_p >= 1.0f) {
        float cdf = 0.0f;
        for (int i = 0; i < V; i++) {
            cdf += logits[i];
            if (r < cdf) return i;
        }
        return V - 1; /* rounding left the cdf a hair below 1 */
    }
    /* Nucleus: a token with probability below (1 - p) / (V - 1) can never be inside the
     * smallest set whose mass exceeds p, so only the others need sorting. */
    const float cutoff = (1.0f - s->top_p) / (float)(V > 1 ? V - 1 : 1);
    int n = 0;
    for (int i = 0; i < V; i++)
        if (logits[i] >= cutoff) s->candidates[n++] = (ProbId){logits[i], i};
    qsort(s->candidates, (size_t)n, sizeof(ProbId), by_prob_descending);
    float mass = 0.0f;
    int last = n - 1;
    for (int i = 0; i < n; i++) {
        mass += s->candidates[i].prob;
        if (mass > s->top_p) {
            last = i;
            break;
        }
    }
    float target = r * mass, cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += s->candidates[i].prob;
        if (target < cdf) return s->candidates[i].id;
    }
    return s->candidates[last].id;
}
