/* lc_alpaca.h — AlpacaEval's length-controlled win rate, computed as its
 * metrics/glm_winrate.py does (tatsu-lab/alpaca_eval cd543a14; eval/ALPACAEVAL.md has the
 * derivation and what was checked), from the two tables it downloads: the instruction
 * difficulties (instruction_difficulty.csv) and the annotations of its "gamed" baselines
 * (df_gamed.csv).
 *
 * The GLM: no intercept, features tanh(std_delta_len), instruction_difficulty (not in
 * length_controlled_minimal) and not_gamed_baseline (1 for the model's rows, 0 for gamed
 * rows); soft labels y = preference - 1; for length_controlled_v1 the gamed rows come first
 * with weight 0.2 / 2, the model's with weight 1. The fit is sklearn's L1 LogisticRegressionCV
 * on labels duplicated as (1, y w) and (0, (1 - y) w): the penalty 1/C picked among
 * numpy.logspace(-4, 4, 10) by 5-fold GroupKFold (one group per row) on minus the mean
 * weighted log-loss of each fold, then refit on every row. The win rate is the mean
 * prediction over every annotation (failed judgments too) at std_delta_len = 0, times 100. */
#ifndef CK_LC_ALPACA_H
#define CK_LC_ALPACA_H

#include "eval/annotations.h"
#include "eval/winrate.h"
#include "util/ck_error.h"

/* An instruction-difficulty table. AlpacaEval's instruction_difficulty.csv is keyed by its
 * first column, the integer position of the instruction in the 805 of AlpacaEval's set (the
 * annotations' row number); a table whose first column is headed "instruction" is keyed by the
 * instruction text instead. */
typedef struct LcDifficulty {
    char *source;       /* the file, for messages */
    int by_instruction; /* 1: keys are instruction texts; 0: integer positions */
    int n;
    long *index;        /* by position: the keys, ascending */
    char **instruction; /* by instruction: the keys, in strcmp order */
    double *value;      /* value[k] belongs to key k */
} LcDifficulty;

/* Reads a two-column CSV (header, then key,difficulty rows) into t. Fails naming the file and
 * row on a missing column, a key that is not an integer (unless the key column is headed
 * "instruction"), a difficulty that is not a finite number, or a key given twice. */
int lc_difficulty_load(LcDifficulty *t, const char *path, CkError *err);

/* The difficulty of the annotation at position pos with that instruction; -1 when the table
 * has no row for it. */
int lc_difficulty_lookup(const LcDifficulty *t, long pos, const char *instruction, double *out);

/* Releases t and zeroes it; safe on a zeroed value. */
void lc_difficulty_free(LcDifficulty *t);

/* AlpacaEval's df_gamed.csv: annotations of the baseline's own "verbose" and "concise"
 * variants, already featurised. Columns read by their header (others, like model, ignored):
 * index, preference (in [0, 1]; empty: missing, dropped from the fit), std_delta_len,
 * instruction_difficulty, not_gamed_baseline (True/False). */
typedef struct LcGamed {
    char *source;
    int n;
    long *index;
    double *preference, *std_delta_len, *difficulty;
    unsigned char *not_gamed;
} LcGamed;

/* Reads df_gamed.csv into g; fails naming the file, row and column. */
int lc_gamed_load(LcGamed *g, const char *path, CkError *err);

/* AlpacaEval's own difficulty lookup when it fits length_controlled_v1: the difficulty of the
 * first row of each index in the gamed file, keyed by that row's position in the file (which
 * is the index itself when the file starts with the indices in order, as AlpacaEval's does). */
int lc_difficulty_from_gamed(LcDifficulty *t, const LcGamed *g, CkError *err);

/* Releases g and zeroes it; safe on a zeroed value. */
void lc_gamed_free(LcGamed *g);

/* One model's annotations, in file order. */
typedef struct {
    int n;
    const double *preference;       /* as in the file: 0 a draw, NaN a failed judgment */
    const double *len_1, *len_2;    /* output lengths in code points (Python's len) */
    const char *const *instruction; /* for tables keyed by instruction and for messages */
    int is_baseline;                /* generator_1 == generator_2: 50 by construction */
} LcRows;

/* The fold (0..n_splits-1) of each of n_groups groups of two rows as sklearn's GroupKFold
 * deals them: in the order numpy's default (introsort) argsort leaves equal group sizes,
 * reversed, round robin. */
void lc_group_kfold(int n_groups, int n_splits, int *fold);

/* AlpacaEval's C grid: numpy.logspace(-4, 4, 10)[k]. */
double lc_alpaca_c(int k);

/* Fills w's lc_* fields (lc_glm, lc_c, the coefficients) with AlpacaEval's GLM o->glm
 * (LC_GLM_ALPACA_*) on rows. NOREG and V1 need o->difficulty (V1 without it takes the gamed
 * file's, as AlpacaEval does) and V1 needs o->gamed. Fails naming the table and the first
 * annotation it has no difficulty for, on fewer than 5 rows to fit, or when the length
 * differences have no spread. */
int lc_alpaca_winrate(const LcRows *rows, const LcOptions *o, WinRate *w, CkError *err);

/* The length-controlled win rate of annotations s per o->glm, into w: cutkit's fixed-penalty
 * GLM when every record has both outputs and two preferences are kept (NaN otherwise), or
 * AlpacaEval's (which needs both outputs of every record). pref, len_1 and len_2 are s's
 * preferences and output lengths in code points; have_lengths: every record has both. */
int lc_fit_annotations(const AnnotationSet *s, const double *pref, const double *len_1,
                       const double *len_2, int have_lengths, const LcOptions *o, WinRate *w,
                       CkError *err);

#endif
