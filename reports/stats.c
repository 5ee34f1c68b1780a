/* stats.c — see stats.h. */
#include "reports/stats.h"

#include <math.h>
#include <stdlib.h>

#include "util/rng.h"

void stats_mean_sd(const double *x, int n, double *mean, double *sd) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += x[i];
    double m = n > 0 ? sum / n : 0;
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
    *mean = m;
    *sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

static int compare_doubles(const void *p, const void *q) {
    double a = *(const double *)p, b = *(const double *)q;
    return (a > b) - (a < b);
}

/* The q-quantile of sorted x[0..n), linear between order statistics (numpy's "linear"). */
static double quantile(const double *x, int n, double q) {
    double h = (n - 1) * q;
    int lo = (int)floor(h);
    if (lo >= n - 1) return x[n - 1];
    return x[lo] + (h - lo) * (x[lo + 1] - x[lo]);
}

int stats_paired_bootstrap(const double *a, const double *b, int n, int resamples, uint64_t seed,
                           double level, PairedBootstrap *out, CkError *err) {
    if (n < 1) return ck_fail(err, "paired bootstrap: no items in common");
    if (resamples < 1) return ck_fail(err, "paired bootstrap: resamples must be at least 1");
    if (!(level > 0 && level < 1))
        return ck_fail(err, "paired bootstrap: level must be in (0, 1), got %g", level);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i]))
            return ck_fail(err, "paired bootstrap: item %d has a value that is not finite", i);
        sum += a[i] - b[i];
    }
    double *d = malloc((size_t)resamples * sizeof *d);
    if (!d) return ck_fail(err, "paired bootstrap: out of memory");
    Rng r;
    rng_seed(&r, seed);
    const double diff = sum / n;
    int extreme = 0;
    for (int k = 0; k < resamples; k++) {
        double s = 0;
        for (int j = 0; j < n; j++) {
            int i = (int)(rng_next(&r) % (uint64_t)n);
            s += a[i] - b[i];
        }
        d[k] = s / n;
        extreme += fabs(d[k] - diff) >= fabs(diff);
    }
    qsort(d, (size_t)resamples, sizeof *d, compare_doubles);
    *out = (PairedBootstrap){.n = n,
                             .resamples = resamples,
                             .seed = seed,
                             .level = level,
                             .diff = diff,
                             .lo = quantile(d, resamples, (1 - level) / 2),
                             .hi = quantile(d, resamples, (1 + level) / 2),
                             .p_value = (1.0 + extreme) / (resamples + 1.0)};
    free(d);
    return 0;
}

/* P(Binomial(m, 1/2) <= k), summed in log space so that m in the tens of thousands (MMLU)
 * neither overflows nor underflows term by term. */
static double binomial_half_cdf(int k, int m) {
    double total = 0;
    for (int j = 0; j <= k; j++) {
        double log_term = lgamma(m + 1.0) - lgamma(j + 1.0) - lgamma(m - j + 1.0) - m * log(2.0);
        total += exp(log_term);
    }
    return total;
}

int stats_mcnemar_exact(const int *a, const int *b, int n, McNemar *out, CkError *err) {
    if (n < 1) return ck_fail(err, "McNemar: no pairs in common");
    McNemar m = {.n = n};
    for (int i = 0; i < n; i++) {
        if ((a[i] != 0 && a[i] != 1) || (b[i] != 0 && b[i] != 1))
            return ck_fail(err, "McNemar: pair %d is not binary (%d, %d)", i, a[i], b[i]);
        if (a[i] && b[i])
            m.both++;
        else if (!a[i] && !b[i])
            m.neither++;
        else if (a[i])
            m.a_only++;
        else
            m.b_only++;
    }
    int disc = m.a_only + m.b_only;
    int k = m.a_only < m.b_only ? m.a_only : m.b_only;
    double p = disc ? 2 * binomial_half_cdf(k, disc) : 1;
    m.p_value = p < 1 ? p : 1;
    *out = m;
    return 0;
}
