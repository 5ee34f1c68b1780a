/* lcwr.c — cutkit's fixed-penalty length-controlled win rate: AlpacaEval's minimal GLM
 * features around the L1-penalised logistic fit of lc_fit.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/winrate.h"

static double sigmoid(double z) {
    if (z >= 0) return 1 / (1 + exp(-z));
    double e = exp(z);
    return e / (1 + e);
}

int lc_logistic_fit(const double *X, const double *y, int n, int p, double l1, double *w,
                    CkError *err) {
    return lc_weighted_fit(X, y, NULL, n, p, l1, w, err);
}

int winrate_length_controlled(const double *preferences, const double *len_1, const double *len_2,
                              const double *difficulty, int n, const LcOptions *opt, WinRate *w,
                              CkError *err) {
    const int p = difficulty ? 3 : 2;
    double *X = malloc((size_t)(n > 0 ? n : 1) * (size_t)p * sizeof *X);
    double *y = malloc((size_t)(n > 0 ? n : 1) * sizeof *y);
    double *delta = malloc((size_t)(n > 0 ? n : 1) * sizeof *delta);
    int rc = -1;
    if (!X || !y || !delta) {
        ck_fail(err, "out of memory");
        goto done;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        double pr = preferences[i] == 0 ? 1.5 : preferences[i];
        if (!(pr >= 1 && pr <= 2)) continue;
        if (difficulty && !isfinite(difficulty[i])) continue;
        y[k] = pr - 1;
        delta[k] = len_1[i] - len_2[i];
        X[(size_t)k * p + p - 1] = 1; /* the model-vs-baseline term */
        if (difficulty) X[(size_t)k * p + 1] = difficulty[i];
        k++;
    }
    if (k < 2) {
        ck_fail(err, "the length-controlled win rate needs at least 2 judged pairs, got %d", k);
        goto done;
    }
    /* pandas' std (ddof 1) of the length differences */
    double mean = winrate_pairwise_sum(delta, (size_t)k) / k, ss = 0;
    for (int i = 0; i < k; i++) ss += (delta[i] - mean) * (delta[i] - mean);
    double sd = sqrt(ss / (k - 1));
    for (int i = 0; i < k; i++) X[(size_t)i * p] = sd > 0 ? tanh(delta[i] / sd) : 0;
    double coef[3] = {0, 0, 0};
    if (lc_logistic_fit(X, y, k, p, opt ? opt->l1 : 0, coef, err) != 0) goto done;
    w->lc_coef_length = coef[0];
    w->lc_coef_difficulty = difficulty ? coef[1] : NAN;
    w->lc_coef_baseline = coef[p - 1];
    /* predictions at delta_len = 0 (tanh(0) = 0), reusing y */
    for (int i = 0; i < k; i++)
        y[i] = sigmoid((difficulty ? coef[1] * X[(size_t)i * p + 1] : 0) + coef[p - 1]);
    double pm = winrate_pairwise_sum(y, (size_t)k) / k;
    for (int i = 0; i < k; i++) delta[i] = (pm - y[i]) * (pm - y[i]);
    w->lc_win_rate = 100 * pm;
    /* without difficulty every p_i is the same number: the spread is exactly 0, not rounding */
    w->lc_standard_error =
        difficulty ? 100 * sqrt(winrate_pairwise_sum(delta, (size_t)k) / (k - 1)) / sqrt(k) : 0;
    rc = 0;
done:
    free(X);
    free(y);
    free(delta);
    return rc;
}
