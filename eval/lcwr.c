/* lcwr.c — the length-controlled win rate: a small L1-penalised logistic regression with
 * soft labels, fitted by proximal Newton steps, and AlpacaEval's GLM features around it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/winrate.h"

#define LC_MAX_FEATURES 8
#define LC_MAX_STEPS    200

/* log(1 + exp(z)) without overflow */
static double softplus(double z) {
    return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
}

static double sigmoid(double z) {
    if (z >= 0) return 1 / (1 + exp(-z));
    double e = exp(z);
    return e / (1 + e);
}

/* The objective: mean soft-label log-loss plus the L1 penalty. With z = X w,
 * -y log s(z) - (1 - y) log(1 - s(z)) = softplus(z) - y z. */
static double objective(const double *X, const double *y, int n, int p, double l1,
                        const double *w) {
    double loss = 0, pen = 0;
    for (int i = 0; i < n; i++) {
        double z = 0;
        for (int j = 0; j < p; j++) z += X[(size_t)i * p + j] * w[j];
        loss += softplus(z) - y[i] * z;
    }
    for (int j = 0; j < p; j++) pen += fabs(w[j]);
    return loss / n + l1 * pen;
}

static double soft_threshold(double z, double t) {
    return z > t ? z - t : (z < -t ? z + t : 0);
}

int lc_logistic_fit(const double *X, const double *y, int n, int p, double l1, double *w,
                    CkError *err) {
    if (p < 1 || p > LC_MAX_FEATURES)
        return ck_fail(err, "the logistic fit takes 1 to %d features, got %d", LC_MAX_FEATURES, p);
    if (n < 1) return ck_fail(err, "the logistic fit needs at least one row");
    if (!(l1 >= 0)) return ck_fail(err, "the L1 penalty must be >= 0, got %g", l1);
    for (int i = 0; i < n; i++)
        if (!(y[i] >= 0 && y[i] <= 1))
            return ck_fail(err, "row %d: label %g is outside [0, 1]", i, y[i]);
    double f = objective(X, y, n, p, l1, w);
    for (int step = 0; step < LC_MAX_STEPS; step++) {
        /* quadratic model of the mean log-loss at w: gradient g, Hessian H */
        double g[LC_MAX_FEATURES] = {0}, H[LC_MAX_FEATURES][LC_MAX_FEATURES] = {{0}};
        for (int i = 0; i < n; i++) {
            const double *x = X + (size_t)i * p;
            double z = 0;
            for (int j = 0; j < p; j++) z += x[j] * w[j];
            double s = sigmoid(z), h = s * (1 - s);
            for (int j = 0; j < p; j++) {
                g[j] += (s - y[i]) * x[j] / n;
                for (int k = 0; k < p; k++) H[j][k] += h * x[j] * x[k] / n;
            }
        }
        /* minimise g.d + d'Hd/2 + l1 |w + d|_1 by cyclic coordinate descent */
        double d[LC_MAX_FEATURES] = {0};
        for (int sweep = 0; sweep < 1000; sweep++) {
            double change = 0;
            for (int j = 0; j < p; j++) {
                if (H[j][j] <= 1e-300) { /* no curvature: the feature is zero on every row */
                    change = fmax(change, fabs(-w[j] - d[j]));
                    d[j] = -w[j];
                    continue;
                }
                double hd = 0;
                for (int k = 0; k < p; k++) hd += H[j][k] * d[k];
                double u = w[j] + d[j];
                double z = u - (g[j] + hd) / H[j][j];
                double nu = soft_threshold(z, l1 / H[j][j]);
                change = fmax(change, fabs(nu - u));
                d[j] = nu - w[j];
            }
            if (change < 1e-15) break;
        }
        /* backtracking: accept t when the objective drops by a fraction of the model's
         * predicted decrease (Tseng and Yun's rule for proximal Newton) */
        double pen_now = 0, pen_new = 0, gd = 0;
        for (int j = 0; j < p; j++) {
            pen_now += fabs(w[j]);
            pen_new += fabs(w[j] + d[j]);
            gd += g[j] * d[j];
        }
        double delta = gd + l1 * (pen_new - pen_now);
        double t = 1, wt[LC_MAX_FEATURES], ft = f;
        int accepted = 0;
        for (int ls = 0; ls < 60; ls++) {
            for (int j = 0; j < p; j++) wt[j] = w[j] + t * d[j];
            ft = objective(X, y, n, p, l1, wt);
            if (ft <= f + 1e-4 * t * delta) {
                accepted = 1;
                break;
            }
            t *= 0.5;
        }
        double moved = 0;
        if (accepted) {
            for (int j = 0; j < p; j++) {
                moved = fmax(moved, fabs(wt[j] - w[j]));
                w[j] = wt[j];
            }
            f = ft;
        }
        if (!accepted || moved < 1e-12) break;
    }
    for (int j = 0; j < p; j++)
        if (!isfinite(w[j])) return ck_fail(err, "the logistic fit diverged (weight %d)", j);
    return 0;
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
