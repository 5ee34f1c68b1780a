/* layout.h — the CUT paper's table layouts over run directories (`cutkit report --layout`):
 *
 *   table2  Method | Objective | ARC | HellaSwag | MMLU | TruthfulQA | Avg. | AlpacaEval
 *   table4  Variant | Generalist (TruthfulQA) | Specialist (ROUGE-Lsum) [| the synthetic
 *           world's win rate, error and misconception rates, detection F1 when present]
 *   table6  Model | #J | ARC | HellaSwag | MMLU | TruthfulQA | AlpacaEval
 *
 * Rows are the report's rows (a run, or a seed group shown as mean ± sd (n)), in command-line
 * order; their names come from config.json alone (labels.h): Table 2's method and objective,
 * Table 4's change against full CUT, Table 6's "K+" for iteration K of an align-online run,
 * "CUT offline" for a CUT run, "Base" for a run without training. Two rows with one name get
 * the report's row label after it in parentheses. Avg. is the mean of the four benchmark
 * columns, only where all four exist. The figure layouts (fig4, fig7) are in layout_plots.h. */
#ifndef CK_LAYOUT_H
#define CK_LAYOUT_H

#include "reports/groups.h"
#include "reports/metrics.h"
#include "reports/rundir.h"
#include "util/ck_error.h"

typedef enum {
    LAYOUT_TABLE2,
    LAYOUT_TABLE4,
    LAYOUT_TABLE6,
    LAYOUT_FIG4,
    LAYOUT_FIG7,
    LAYOUT_COUNT
} LayoutKind;

/* The layout named name ("table2", ...), or -1. */
int layout_find(const char *name);

/* The name of layout k ("table2"). */
const char *layout_name(LayoutKind k);

/* 1 for the table layouts, 0 for the figures. */
int layout_is_table(LayoutKind k);

/* Parses a comma-separated list of layout names ("table2,fig7") into the 0/1 flags
 * want[LAYOUT_COUNT]; fails naming the first unknown name and the known ones. */
int layout_parse_list(const char *list, int want[LAYOUT_COUNT], CkError *err);

/* A table layout built over the report's rows. */
typedef struct {
    LayoutKind kind;
    MetricColumn cols[METRIC_MAX_COLUMNS]; /* the layout's columns, with the paper's titles */
    int n_cols;
    MetricTable table;     /* rows = the groups; its labels, titles and text point in here */
    char **names;          /* n_rows row names (owned) */
    char **text;           /* n_rows x table.n_text text cells (owned; NULL: a dash) */
    const char *titles[1]; /* the text column's header */
} LayoutTable;

/* Builds the table layout k over the groups of runs (released with layout_table_free, also
 * on failure). Fails only when out of memory. */
int layout_table_build(LayoutTable *lt, LayoutKind k, const RunDir *runs, const RunGroups *groups,
                       CkError *err);

/* Releases lt. */
void layout_table_free(LayoutTable *lt);

/* The row of lt named key (its shown name), or -1. */
int layout_table_find(const LayoutTable *lt, const char *key);

/* When dir is an align-online run directory (config.json's objective "cut-online" and an
 * iter-1/done.json), opens a row per finished iteration K (iter-K/done.json present) into
 * runs[*n ..], at most room of them: iter-K read as a run directory (its eval/ files), with the
 * align-online config.json (its own directory replaced by "{run}", so that seeds group) plus
 * "iteration": K and "judgments_used": the judged responses (done.json's positives +
 * negatives), labelled "<label>/iter-K". Returns the rows added (0 when dir is not an online
 * run), or -1 with err. */
int layout_open_online(const char *dir, RunDir *runs, int *n, int room, CkError *err);

/* The number of finished iterations of the align-online run at dir (0 when it is not one). */
int layout_online_iterations(const char *dir);

#endif
