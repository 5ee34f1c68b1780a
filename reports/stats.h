/* stats.h — the statistics behind "do these two cells differ?": mean and standard deviation
 * over seeds, a paired bootstrap of the difference of two runs on the same items, and
 * McNemar's exact test for paired binary outcomes. */
#ifndef CK_STATS_H
#define CK_STATS_H

#include <stdint.h>

#include "util/ck_error.h"

/* Mean and sample standard deviation (n - 1 in the denominator; 0 when n < 2) of x[0..n). */
void stats_mean_sd(const double *x, int n, double *mean, double *sd);

/* A paired bootstrap of mean(a) - mean(b) over n items (Efron & Tibshirani, ch. 16; the
 * "paired" scheme of Koehn 2004): each resample draws n item indices with replacement, the
 * same for both runs, as rng_next(seeded xoshiro256**) % n. */
typedef struct {
    int n;          /* items */
    int resamples;  /* B */
    uint64_t seed;  /* of the index draws */
    double level;   /* of the interval, e.g. 0.95 */
    double diff;    /* mean(a) - mean(b) on the items as they are */
    double lo, hi;  /* percentile interval: quantiles (1 -+ level) / 2 of the B differences,
                     * linear between order statistics (numpy's default) */
    double p_value; /* two-sided, of "no difference": (1 + #{|d*_b - diff| >= |diff|}) / (B + 1),
                     * the bootstrap distribution shifted to the null (Hall & Wilson 1991) */
} PairedBootstrap;

/* Fills out for a[i], b[i], i < n (the same item at the same i); returns 0, or -1 when n < 1,
 * resamples < 1, level outside (0, 1), a value is not finite, or memory runs out. */
int stats_paired_bootstrap(const double *a, const double *b, int n, int resamples, uint64_t seed,
                           double level, PairedBootstrap *out, CkError *err);

/* McNemar's exact test on paired binary outcomes (a[i], b[i] in {0, 1}): only discordant
 * pairs count; with k = min(a_only, b_only) of m = a_only + b_only, the two-sided p-value is
 * min(1, 2 * P(Binomial(m, 1/2) <= k)), and 1 when m = 0. */
typedef struct {
    int n;              /* pairs */
    int both, neither;  /* concordant pairs */
    int a_only, b_only; /* discordant: right in a only, in b only */
    double p_value;
} McNemar;

/* Fills out; returns 0, or -1 when n < 1 or a value is not 0 or 1 (naming the index). */
int stats_mcnemar_exact(const int *a, const int *b, int n, McNemar *out, CkError *err);

#endif
