/* lc_fit.c — the L1-penalised logistic regression with soft labels and row weights behind
 * both length-controlled win rates: proximal Newton steps, each a quadratic model minimised
 * by cyclic coordinate descent with soft-thresholding, then a backtracking line search. */
#include <math.h>

#include "eval/winrate.h"

#define LC_MAX_STEPS 200

/* log(1 + exp(z)) without overflow */
static double softplus(double z) {
    return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
}

static double sigmoid(double z) {
    if (z >= 0) return 1 / (1 + exp(-z));
    double e = exp(z);
    return e / (1 + e);
}

/* The weight of row i: s[i], or 1/n without weights. */
static double row_weight(const double *s, int n, int i) {
    return s ? s[i] : 1.0 / n;
}

/* sum_i s_i [-y_i log sigma(z_i) - (1 - y_i) log(1 - sigma(z_i))] + lambda |w|_1, z = X w;
 * each term is softplus(z_i) - y_i z_i. */
static double objective(const double *X, const double *y, const double *s, int n, int p,
                        double lambda, const double *w) {
    double loss = 0, pen = 0;
    for (int i = 0; i < n; i++) {
        double z = 0;
        for (int j = 0; j < p; j++) z += X[(size_t)i * p + j] * w[j];
        loss += row_weight(s, n, i) * (softplus(z) - y[i] * z);
    }
    for (int j = 0; j < p; j++) pen += fabs(w[j]);
    return loss + lambda * pen;
}

static double soft_threshold(double z, double t) {
    return z > t ? z - t : (z < -t ? z + t : 0);
}

/* Gradient g and Hessian H of the weighted log-loss at w. */
static void quadratic_model(const double *X, const double *y, const double *s, int n, int p,
                            const double *w, double g[LC_MAX_FEATURES],
                            double H[LC_MAX_FEATURES][LC_MAX_FEATURES]) {
    for (int j = 0; j < p; j++) {
        g[j] = 0;
        for (int k = 0; k < p; k++) H[j][k] = 0;
    }
    for (int i = 0; i < n; i++) {
        const double *x = X + (size_t)i * p;
        double z = 0;
        for (int j = 0; j < p; j++) z += x[j] * w[j];
        double sig = sigmoid(z), r = row_weight(s, n, i), h = r * sig * (1 - sig);
        for (int j = 0; j < p; j++) {
            g[j] += r * (sig - y[i]) * x[j];
            for (int k = 0; k < p; k++) H[j][k] += h * x[j] * x[k];
        }
    }
}

/* The step d minimising g.d + d'Hd/2 + lambda |w + d|_1, by cyclic coordinate descent. */
static void newton_direction(const double g[LC_MAX_FEATURES],
                             const double H[LC_MAX_FEATURES][LC_MAX_FEATURES], const double *w,
                             int p, double lambda, double d[LC_MAX_FEATURES]) {
    for (int j = 0; j < p; j++) d[j] = 0;
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
            double nu = soft_threshold(u - (g[j] + hd) / H[j][j], lambda / H[j][j]);
            change = fmax(change, fabs(nu - u));
            d[j] = nu - w[j];
        }
        if (change < 1e-15) break;
    }
}

int lc_weighted_fit(const double *X, const double *y, const double *s, int n, int p, double lambda,
                    double *w, CkError *err) {
    if (p < 1 || p > LC_MAX_FEATURES)
        return ck_fail(err, "the logistic fit takes 1 to %d features, got %d", LC_MAX_FEATURES, p);
    if (n < 1) return ck_fail(err, "the logistic fit needs at least one row");
    if (!(lambda >= 0)) return ck_fail(err, "the L1 penalty must be >= 0, got %g", lambda);
    for (int i = 0; i < n; i++) {
        if (!(y[i] >= 0 && y[i] <= 1))
            return ck_fail(err, "row %d: label %g is outside [0, 1]", i, y[i]);
        if (s && !(s[i] >= 0 && isfinite(s[i])))
            return ck_fail(err, "row %d: weight %g is not a finite number >= 0", i, s[i]);
    }
    double f = objective(X, y, s, n, p, lambda, w);
    for (int step = 0; step < LC_MAX_STEPS; step++) {
        double g[LC_MAX_FEATURES], H[LC_MAX_FEATURES][LC_MAX_FEATURES], d[LC_MAX_FEATURES];
        quadratic_model(X, y, s, n, p, w, g, H);
        newton_direction(g, H, w, p, lambda, d);
        /* backtracking: accept t when the objective drops by a fraction of the model's
         * predicted decrease (Tseng and Yun's rule for proximal Newton) */
        double pen_now = 0, pen_new = 0, gd = 0;
        for (int j = 0; j < p; j++) {
            pen_now += fabs(w[j]);
            pen_new += fabs(w[j] + d[j]);
            gd += g[j] * d[j];
        }
        double delta = gd + lambda * (pen_new - pen_now);
        double t = 1, wt[LC_MAX_FEATURES], ft = f;
        int accepted = 0;
        for (int ls = 0; ls < 60 && !accepted; ls++) {
            for (int j = 0; j < p; j++) wt[j] = w[j] + t * d[j];
            ft = objective(X, y, s, n, p, lambda, wt);
            /* a predicted decrease below the rounding of f cannot show in ft: there the full
             * step is taken, as the quadratic model is exact to that order */
            accepted = ft <= f + 1e-4 * t * delta || (t == 1 && -delta <= 1e-13 * fabs(f));
            if (!accepted) t *= 0.5;
        }
        if (!accepted) break; /* no decrease left within rounding: converged */
        double moved = 0;
        for (int j = 0; j < p; j++) {
            moved = fmax(moved, fabs(wt[j] - w[j]));
            w[j] = wt[j];
        }
        f = ft;
        if (moved < 1e-12) break;
    }
    for (int j = 0; j < p; j++)
        if (!isfinite(w[j])) return ck_fail(err, "the logistic fit diverged (weight %d)", j);
    return 0;
}
