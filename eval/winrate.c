/* winrate.c — head-to-head metrics as AlpacaEval computes them with pandas. */
#include "eval/winrate.h"

#include <math.h>
#include <stdlib.h>

double winrate_pairwise_sum(const double *x, size_t n) {
    if (n < 8) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += x[i];
        return s;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; j++) r[j] = x[j];
        size_t i = 8;
        for (; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; j++) r[j] += x[i + j];
        double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) s += x[i];
        return s;
    }
    size_t half = n / 2;
    half -= half % 8;
    return winrate_pairwise_sum(x, half) + winrate_pairwise_sum(x + half, n - half);
}

const char *lc_glm_name(LcGlm g) {
    switch (g) {
    case LC_GLM_ALPACA_MINIMAL:
        return "length_controlled_minimal";
    case LC_GLM_ALPACA_NOREG:
        return "length_controlled_noreg";
    case LC_GLM_ALPACA_V1:
        return "length_controlled_v1";
    default:
        return "glm_minimal_fixed";
    }
}

const char *lc_glm_column(LcGlm g) {
    return g == LC_GLM_MINIMAL_FIXED ? "lc_winrate_glm_minimal" : "length_controlled_winrate";
}

const char *lc_glm_se_column(LcGlm g) {
    return g == LC_GLM_MINIMAL_FIXED ? "lc_glm_minimal_standard_error" : "lc_standard_error";
}

/* AlpacaEval's validation: legacy 0 means a draw; NaN and values outside [1, 2] are dropped
 * (returned as NaN). */
static double normalize(double p) {
    if (p == 0) return 1.5;
    if (!(p >= 1 && p <= 2)) return NAN;
    return p;
}

void winrate_compute(const double *preferences, int n, WinRate *w) {
    *w = (WinRate){0};
    w->lc_win_rate = w->lc_standard_error = NAN;
    w->lc_coef_length = w->lc_coef_difficulty = w->lc_coef_baseline = w->lc_c = NAN;
    double *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    if (!x) { /* out of memory: report nothing rather than something wrong */
        w->win_rate = w->standard_error = w->discrete_win_rate = NAN;
        return;
    }
    int k = 0, all_discrete = 1;
    for (int i = 0; i < n; i++) {
        double p = normalize(preferences[i]);
        if (isnan(p)) {
            w->n_missing++;
            continue;
        }
        x[k++] = p - 1;
        all_discrete &= p == 1 || p == 1.5 || p == 2;
        if (p == 1.5) w->n_draws++;
        if (p - 1 > 0.5) w->n_wins++;
        if (p - 1 < 0.5) w->n_wins_base++;
    }
    w->n_total = k;
    if (k == 0) {
        w->win_rate = w->standard_error = w->discrete_win_rate = NAN;
        free(x);
        return;
    }
    /* pandas: mean = sum / n; var = sum((mean - x)^2) / (n - 1); sem = sqrt(var) / sqrt(n) */
    double mean = winrate_pairwise_sum(x, (size_t)k) / k;
    w->win_rate = mean * 100;
    if (k > 1) {
        for (int i = 0; i < k; i++) x[i] = (mean - x[i]) * (mean - x[i]);
        double var = winrate_pairwise_sum(x, (size_t)k) / (k - 1);
        w->standard_error = sqrt(var) / sqrt((double)k) * 100;
    } else {
        w->standard_error = NAN;
    }
    /* AlpacaEval's counting form: (wins/n + draws/n / 2) * 100. For files of 1 / 1.5 / 2 only
     * it equals the mean, and the v1 leaderboards printed it in this rounding */
    w->discrete_win_rate = ((double)w->n_wins / k + 0.5 * ((double)w->n_draws / k)) * 100;
    if (all_discrete) w->win_rate = w->discrete_win_rate;
    free(x);
}
