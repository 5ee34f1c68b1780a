/* winrate_run.h — `cutkit eval winrate` as a library: AlpacaEval's win rate, standard error,
 * counts and length-controlled win rate (eval/winrate.h) of annotation files, as a leaderboard
 * in one of four formats.
 *
 * One row per annotations.json (AlpacaEval's, v1 or v2, or judge_run's), named by the first
 * record's generator_2 (else the path), sorted by win rate (highest first, missing last).
 * avg_length is int(mean characters of output_2) as AlpacaEval; the length-controlled win rate
 * is cutkit's fixed-penalty minimal GLM fitted on the file's pairs (lc_winrate_glm_minimal;
 * needs both outputs of every record and at least two kept preferences; NaN otherwise), or
 * one of AlpacaEval's GLMs (eval/lc_alpaca.h; length_controlled_winrate) when lc_glm says so. */
#ifndef CK_WINRATE_RUN_H
#define CK_WINRATE_RUN_H

#include <stdio.h>

#include "eval/annotations.h"
#include "eval/winrate.h"
#include "util/ck_error.h"

typedef enum {
    WINRATE_FORMAT_TABLE,    /* aligned columns */
    WINRATE_FORMAT_CSV,      /* AlpacaEval's leaderboard columns, shortest round-trip numbers */
    WINRATE_FORMAT_MARKDOWN, /* a Markdown table */
    WINRATE_FORMAT_JSON      /* one JSON object per line */
} WinrateFormat;

/* The format named "table", "csv", "markdown" or "json" into *f; -1 for any other name. */
int winrate_format_parse(const char *name, WinrateFormat *f);

typedef struct {
    const char *const *files; /* annotations.json paths */
    int n_files;
    WinrateFormat format;
    double lc_l1; /* L1 penalty of the length-controlled fit (0: maximum likelihood) */
    int lc;       /* 1: compute the length-controlled win rate */
    LcGlm lc_glm; /* which GLM; AlpacaEval's need the tables below (eval/lc_alpaca.h) */
    const struct LcDifficulty *lc_difficulty; /* AlpacaEval's instruction_difficulty.csv */
    const struct LcGamed *lc_gamed;           /* AlpacaEval's df_gamed.csv */
    FILE *out;                                /* where the leaderboard is printed; NULL: nowhere */
} WinrateRunOptions;

/* The defaults: no files, the table format, length control without penalty, stdout. */
void winrate_run_options_init(WinrateRunOptions *o);

/* One leaderboard row. */
typedef struct {
    char name[256], annotator[128];
    WinRate w;
    double avg_length; /* NaN when no record has output_2 */
} WinrateRow;

/* Reads the annotations.json at path into row (lc: fit the length-controlled win rate too,
 * with lc_opt). Fails naming the file. */
int winrate_row_load(const char *path, const LcOptions *lc_opt, int lc, WinrateRow *row,
                     CkError *err);

/* Fills row from annotations already read (what winrate_row_load does after reading path);
 * path names the row when no record has a generator_2, and the file in messages. */
int winrate_row_compute(const AnnotationSet *s, const char *path, const LcOptions *lc_opt, int lc,
                        WinrateRow *row, CkError *err);

/* Prints rows[0..n) in format to out. Names and annotators come from files: their control
 * characters are escaped (util/termsafe.h), in JSON as \uXXXX escapes. */
void winrate_rows_print(const WinrateRow *rows, int n, WinrateFormat format, FILE *out);

/* Loads a row per file, sorts them by win rate and prints them to o->out. *rows (may be NULL:
 * not wanted) receives the sorted rows, malloc'd (the caller frees them), n_files of them.
 * Fails naming the first file that cannot be read; nothing is printed then. */
int winrate_run(const WinrateRunOptions *o, WinrateRow **rows, CkError *err);

#endif
