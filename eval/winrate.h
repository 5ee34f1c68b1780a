/* winrate.h — AlpacaEval's head-to-head metrics from pairwise preferences, and the
 * length-controlled win rate (a logistic GLM).
 *
 * Preferences follow AlpacaEval: 1 = the baseline (output_1) is better, 2 = the model
 * (output_2) is better, 1.5 = draw, legacy 0 = draw (read as 1.5), anything in between for
 * weighted judges; NaN (a failed judgment) and values outside [1, 2] are dropped and counted
 * as missing. With x = preference - 1 over the n_total kept records (research/eval-formulas.md
 * B2; the formulas of AlpacaEval's AbsoluteScoringRule):
 *   win_rate = 100 mean(x), standard_error = 100 sd(x; ddof 1) / sqrt(n_total),
 *   n_wins = #(x > 0.5), n_wins_base = #(x < 0.5), n_draws = #(preference == 1.5),
 *   discrete_win_rate = 100 (n_wins / n_total + (n_draws / n_total) / 2)
 * (when every preference is 1, 1.5 or 2 the win rate is computed in that form too: it is the
 * same number, rounded as AlpacaEval 1's leaderboards print it).
 * Sums are taken as numpy's pairwise summation takes them, in file order, so that the results
 * agree with pandas' to the last digits. */
#ifndef CK_WINRATE_H
#define CK_WINRATE_H

#include <stddef.h>

#include "util/ck_error.h"

typedef struct {
    double win_rate, standard_error, discrete_win_rate; /* percent; NaN when n_total is 0 */
    int n_wins, n_wins_base, n_draws, n_total, n_missing;
    double lc_win_rate, lc_standard_error; /* percent; NaN when not computed */
    double lc_coef_length, lc_coef_difficulty, lc_coef_baseline; /* the fitted GLM weights */
} WinRate;

/* Computes the head-to-head metrics of n preferences into w (the lc_* fields become NaN). */
void winrate_compute(const double *preferences, int n, WinRate *w);

/* Sum of x[0..n) in numpy's pairwise order (blocks of 128 summed with 8 partial sums,
 * recursive halving above), so results match numpy/pandas bit for bit. */
double winrate_pairwise_sum(const double *x, size_t n);

/* Options of the length-controlled fit. */
typedef struct {
    double l1; /* L1 penalty on the mean log-loss (0: maximum likelihood) */
} LcOptions;

/* Minimises (1/n) sum_i [-y_i log s_i - (1 - y_i) log(1 - s_i)] + l1 * sum_j |w_j| over w,
 * with s_i = sigmoid(X_i . w), X (n, p) row-major, no intercept (add a column of ones for
 * one), soft labels y_i in [0, 1]. Proximal Newton: each outer step builds the quadratic
 * model of the log-loss at w (gradient, Hessian), minimises it plus the penalty by cyclic
 * coordinate descent with soft-thresholding, and backtracks along that direction until the
 * objective decreases enough; it stops when a step changes no weight by more than 1e-12 (or
 * after 200 steps, as on separable data, whose weights grow without bound). Deterministic.
 * w (p) is the start and the result; p <= 8. */
int lc_logistic_fit(const double *X, const double *y, int n, int p, double l1, double *w,
                    CkError *err);

/* AlpacaEval's length-controlled win rate of one model against its baseline, fit on that
 * model's comparisons only (NaN and out-of-range preferences dropped):
 *   features: tanh(std_delta_len_i), delta_len_i = len_1_i - len_2_i (characters as
 *   utf8_length counts them, baseline minus model), divided by its standard deviation
 *   (ddof 1); difficulty_i when difficulty is non-NULL; and the constant 1 (AlpacaEval's
 *   not_gamed_baseline: the model-vs-baseline term); no intercept.
 *   Target: y_i = preference_i - 1 (soft labels).
 *   prediction: the same GLM at delta_len = 0, p_i = sigmoid(w_x difficulty_i + w_b);
 *   lc_win_rate = 100 mean(p), lc_standard_error = 100 sd(p; ddof 1) / sqrt(n) (0 without
 *   difficulty, where every p_i is the same).
 * Without difficulty this is AlpacaEval's "length_controlled_minimal" GLM; the fit is the
 * L1 fit above with a fixed penalty, not sklearn's cross-validated one, and AlpacaEval's extra
 * rows for its "gamed" baselines are not added. Fills the lc_* fields of w. */
int winrate_length_controlled(const double *preferences, const double *len_1, const double *len_2,
                              const double *difficulty, int n, const LcOptions *opt, WinRate *w,
                              CkError *err);

#endif
