/* winrate.h — AlpacaEval's head-to-head metrics from pairwise preferences, and the
 * length-controlled win rates (logistic GLMs; AlpacaEval's own in eval/lc_alpaca.h).
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

/* Which GLM gave a length-controlled win rate (eval/ALPACAEVAL.md). Only the last three are
 * AlpacaEval's; its leaderboards print length_controlled_v1. */
typedef enum {
    LC_GLM_MINIMAL_FIXED = 0, /* cutkit's: AlpacaEval's minimal features, a fixed L1 penalty */
    LC_GLM_ALPACA_MINIMAL,    /* length_controlled_minimal: the penalty cross-validated */
    LC_GLM_ALPACA_NOREG,      /* length_controlled_noreg: + the instruction difficulty */
    LC_GLM_ALPACA_V1          /* length_controlled_v1: + the gamed baselines' rows */
} LcGlm;

/* AlpacaEval's name of g ("length_controlled_v1", ...; "glm_minimal_fixed" for cutkit's). */
const char *lc_glm_name(LcGlm g);

/* The column names under which g's win rate and standard error are written:
 * "lc_winrate_glm_minimal" / "lc_glm_minimal_standard_error" for cutkit's GLM, AlpacaEval's
 * "length_controlled_winrate" / "lc_standard_error" for AlpacaEval's. */
const char *lc_glm_column(LcGlm g);
const char *lc_glm_se_column(LcGlm g);

typedef struct {
    double win_rate, standard_error, discrete_win_rate; /* percent; NaN when n_total is 0 */
    int n_wins, n_wins_base, n_draws, n_total, n_missing;
    double lc_win_rate, lc_standard_error; /* percent; NaN when not computed */
    double lc_coef_length, lc_coef_difficulty, lc_coef_baseline; /* the fitted GLM weights */
    LcGlm lc_glm; /* which GLM gave the lc_* fields */
    double lc_c;  /* AlpacaEval's GLMs: the cross-validated C (penalty 1/C); NaN otherwise */
} WinRate;

/* Computes the head-to-head metrics of n preferences into w (the lc_* fields become NaN). */
void winrate_compute(const double *preferences, int n, WinRate *w);

/* Sum of x[0..n) in numpy's pairwise order (blocks of 128 summed with 8 partial sums,
 * recursive halving above), so results match numpy/pandas bit for bit. */
double winrate_pairwise_sum(const double *x, size_t n);

struct LcDifficulty; /* eval/lc_alpaca.h */
struct LcGamed;

/* Options of the length-controlled fit. */
typedef struct {
    double l1; /* LC_GLM_MINIMAL_FIXED: L1 penalty on the mean log-loss (0: maximum likelihood) */
    LcGlm glm; /* which GLM (eval/lc_alpaca.h fits AlpacaEval's) */
    const struct LcDifficulty *difficulty; /* NOREG, V1: AlpacaEval's difficulty table */
    const struct LcGamed *gamed;           /* V1: AlpacaEval's gamed rows (df_gamed.csv) */
} LcOptions;

#define LC_MAX_FEATURES 8

/* Minimises sum_i s_i [-y_i log sigma_i - (1 - y_i) log(1 - sigma_i)] + lambda sum_j |w_j|
 * over w, sigma_i = sigmoid(X_i . w), X (n, p) row-major, no intercept, soft labels y_i in
 * [0, 1], row weights s_i >= 0 (s NULL: every s_i = 1/n, the mean log-loss). Proximal Newton:
 * each step builds the quadratic model of the log-loss at w, minimises it plus the penalty by
 * cyclic coordinate descent with soft-thresholding, and backtracks along that direction until
 * the objective decreases enough; it stops when a step changes no weight by more than 1e-12
 * (or after 200 steps, as on separable data). Deterministic. w (p <= LC_MAX_FEATURES) is the
 * start and the result. Fails on a label outside [0, 1], a negative weight or divergence. */
int lc_weighted_fit(const double *X, const double *y, const double *s, int n, int p, double lambda,
                    double *w, CkError *err);

/* lc_weighted_fit with every weight 1/n: minimises the mean soft-label log-loss
 * + l1 * sum_j |w_j|. w (p <= LC_MAX_FEATURES) is the start and the result. */
int lc_logistic_fit(const double *X, const double *y, int n, int p, double l1, double *w,
                    CkError *err);

/* The length-controlled win rate of cutkit's fixed-penalty GLM (LC_GLM_MINIMAL_FIXED; written
 * as lc_winrate_glm_minimal) of one model against its baseline, fit on that model's
 * comparisons only (NaN and out-of-range preferences dropped):
 *   features: tanh(std_delta_len_i), delta_len_i = len_1_i - len_2_i (characters as
 *   utf8_length counts them, baseline minus model), divided by its standard deviation
 *   (ddof 1); difficulty_i when difficulty is non-NULL; and the constant 1 (AlpacaEval's
 *   not_gamed_baseline: the model-vs-baseline term); no intercept.
 *   Target: y_i = preference_i - 1 (soft labels).
 *   prediction: the same GLM at delta_len = 0, p_i = sigmoid(w_x difficulty_i + w_b);
 *   lc_win_rate = 100 mean(p), lc_standard_error = 100 sd(p; ddof 1) / sqrt(n) (0 without
 *   difficulty, where every p_i is the same).
 * Without difficulty these are the features of AlpacaEval's "length_controlled_minimal"; the
 * fit is the L1 fit above with a fixed penalty, not AlpacaEval's cross-validated one
 * (lc_alpaca_winrate fits that), so the number is not AlpacaEval's. Fills the lc_* fields of w
 * (lc_glm LC_GLM_MINIMAL_FIXED). */
int winrate_length_controlled(const double *preferences, const double *len_1, const double *len_2,
                              const double *difficulty, int n, const LcOptions *opt, WinRate *w,
                              CkError *err);

#endif
