/* metrics.h — the columns of the results table, as data: where each value comes from, how it
 * is shown and which direction is better. Adding a column is one line in metrics.c. */
#ifndef CK_METRICS_H
#define CK_METRICS_H

#include <stddef.h>

#include "reports/groups.h"
#include "reports/rundir.h"

typedef enum {
    METRIC_JSON,         /* a number at `path` in `file` */
    METRIC_DETECTION_F1, /* detection.json token F1 at the run's λ, else the first λ */
    METRIC_FLAGGED_TAIL, /* mean flagged_fraction of the last 10 steps of steps.jsonl */
    METRIC_AVERAGE,      /* the mean of the columns `parts` (by slug), only when all have one */
} MetricSource;

typedef struct {
    const char *title; /* UTF-8; escaped for each output format */
    const char *slug;  /* file-name-safe, for plot files */
    MetricSource source;
    RunFile file;            /* METRIC_JSON only */
    const char *path;        /* '/'-separated keys (rundir_json_number) */
    const char *stderr_path; /* shown as "± se" when not NULL */
    double scale;            /* shown value = scale * stored value (fractions to percent) */
    int decimals;
    int better;           /* +1 higher is better, -1 lower is better, 0 no best (no bold) */
    const char *alt_path; /* METRIC_JSON: read when `path` is missing; such a cell is marked
                             as a variant (‡) with alt_note under the table */
    const char *alt_note;
    const char *const *parts; /* METRIC_AVERAGE: slugs of the averaged columns, NULL-ended */
} MetricColumn;

/* One value of the table; value, se and sd are already scaled and rounded to what is shown.
 * A row of one run has its value (and se); a row of a seed group (groups.h) the mean over the
 * n runs that have the value, and their sample standard deviation when n > 1. */
typedef struct {
    double value, se; /* NAN when missing; se: a single run's own standard error */
    double sd;        /* a group row's standard deviation over seeds; NAN otherwise */
    int n;            /* runs behind the value (0 when missing) */
    int best;         /* bold: equal (as shown) to the best shown value of its column */
    int marked;       /* differs significantly from the baseline row (compare.h) */
    int variant;      /* a run behind it had the value only at the column's alt_path (‡) */
} MetricCell;

typedef struct {
    int n_runs, n_cols;       /* n_runs: rows (a run or a seed group each) */
    const MetricColumn *cols; /* the static table; not owned */
    const char **labels;      /* n_runs labels, borrowed from the RunDirs or the groups */
    int *sizes;               /* runs in each row (1: a single run) */
    int grouped;              /* 1 when a row has more than one run */
    char *marker_note;        /* what the marks mean (owned), NULL without a baseline */
    MetricCell *cells;        /* n_runs x n_cols, row-major */
    /* Set by the paper layouts (layout.h), all borrowed; zero for the default table: */
    const char *row_title;          /* header of the label column; NULL: "Run" */
    int n_text;                     /* text columns between the label and the values */
    const char *const *text_titles; /* n_text headers */
    const char *const *text;        /* n_runs x n_text cells, row-major; NULL: a dash */
    const char *note;               /* replaces metric_note() under the table when set */
} MetricTable;

/* The default columns: ARC-C acc_norm, TQA MC1, TQA MC2, win rate ± SE, error rate,
 * detection F1, final flagged fraction; *n gets their count. */
const MetricColumn *metric_columns(int *n);

/* Every column the reports know: the default columns first (as metric_columns), then
 * HellaSwag and MMLU (in the default table only when a run has them) and the paper layouts'
 * Avg. and ROUGE-Lsum; *n gets their count. */
const MetricColumn *metric_all_columns(int *n);

/* At least the number of all columns (metrics.c checks it). */
#define METRIC_MAX_COLUMNS 32

/* Copies into out (room for METRIC_MAX_COLUMNS) the default columns, with HellaSwag and MMLU
 * after ARC-C, that have a value in at least one of the runs, in order, and returns their
 * count: a report of runs that were never, say, evaluated on ARC has no ARC column. With no
 * value anywhere it keeps every default column (a table of dashes says what is missing). */
int metric_columns_present(const RunDir *runs, int n_runs, MetricColumn *out);

/* The column with that slug among the default columns and the layouts' extra ones (Avg.,
 * ROUGE-Lsum), or NULL. */
const MetricColumn *metric_column_by_slug(const char *slug);

/* 1 when run rd has column c only at its alt_path (the value is a variant), else 0. */
int metric_is_variant(const MetricColumn *c, const RunDir *rd);

/* The alt_note of every column of t that has a variant cell, joined by spaces (malloc'd), or
 * NULL when no cell is a variant (or out of memory). */
char *metric_variant_note(const MetricTable *t);

/* The value of column c for run rd, scaled, rounded to its decimals; NAN when missing. */
double metric_value(const MetricColumn *c, const RunDir *rd);

/* The value of column c for run rd, scaled but not rounded; NAN when missing. */
double metric_scaled_value(const MetricColumn *c, const RunDir *rd);

/* Builds the table of the runs (rows in the given order) over n_cols columns cols, marking
 * the best cells of each column (ties all best). Fails only when out of memory. */
int metric_table_build(MetricTable *t, const RunDir *runs, int n_runs, const MetricColumn *cols,
                       int n_cols, CkError *err);

/* Builds the table with a row per group of runs (groups.h; labels borrowed from the groups,
 * which must outlive the table): a group of one run is the row metric_table_build gives it, a
 * larger group its mean and sd over the runs that have a value. Fails only when out of
 * memory. */
int metric_table_build_groups(MetricTable *t, const RunDir *runs, const RunGroups *groups,
                              const MetricColumn *cols, int n_cols, CkError *err);

/* Releases what metric_table_build allocated (not the runs). */
void metric_table_free(MetricTable *t);

/* The cell of run r, column c. */
const MetricCell *metric_cell(const MetricTable *t, int r, int c);

/* Formats v with the column's decimals ("41.30") into buf. */
void metric_format(const MetricColumn *c, double v, char *buf, size_t size);

/* One line saying what the columns mean (units, λ, averaging), for under the tables. */
const char *metric_note(void);

/* One line saying what a group row shows, for under tables with t->grouped set. */
const char *metric_group_note(void);

#endif
