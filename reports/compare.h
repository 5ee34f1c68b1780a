/* compare.h — paired comparisons of two runs, or two seed groups, on the items both were
 * evaluated on (items.h says which items and values each table column has).
 *
 * A side is one run or several (the seeds of a setting). Its items are those every one of its
 * runs has, each item's value the mean over its runs (summed in run order). The two sides are
 * compared on the items both have, in key order (strcmp): the paired bootstrap of
 * reports/stats.h of mean(A) - mean(B) (B resamples, seeded, percentile interval, two-sided
 * p-value), and McNemar's exact test when both sides are single runs whose shared values are
 * all 0 or 1 (accuracy; a win rate without draws). Items present in one side only are left
 * out and counted. Means, differences and intervals are in the column's units (percent). */
#ifndef CK_COMPARE_H
#define CK_COMPARE_H

#include <stdint.h>

#include "reports/groups.h"
#include "reports/items.h"
#include "reports/metrics.h"
#include "reports/stats.h"
#include "util/ck_error.h"

typedef struct {
    int resamples;  /* B of the paired bootstrap */
    uint64_t seed;  /* of its index draws */
    double level;   /* of the interval */
    double p_limit; /* a table cell is marked when its p-value is below this */
} CompareOptions;

/* The defaults: 10000 resamples, seed 1, a 95 % interval, cells marked at p < 0.05. */
void compare_options_init(CompareOptions *o);

/* One side: the runs items[members[0..n)]. */
typedef struct {
    const RunItems *items;
    const int *members;
    int n;
} CompareSide;

typedef enum {
    COMPARE_DONE,
    COMPARE_NOT_PER_ITEM, /* the column has no per-item file (metric->why_not) */
    COMPARE_MISSING,      /* a run of a side has no per-item file for it */
    COMPARE_DISJOINT,     /* both sides have items, none in common */
} CompareStatus;

typedef struct {
    const MetricColumn *col;
    const ItemMetric *metric; /* NULL: not an evaluation metric (the flagged fraction) */
    CompareStatus status;
    int missing_side;      /* COMPARE_MISSING: 0 when side A lacks it, 1 side B, 2 both */
    int items_a, items_b;  /* items every run of the side has */
    int shared;            /* of them, in both sides */
    double mean_a, mean_b; /* over the shared items, in the column's units */
    PairedBootstrap boot;  /* diff, lo, hi in the column's units */
    int has_mcnemar;       /* both sides single runs, every shared value 0 or 1 */
    McNemar mcnemar;
} CompareMetric;

/* Compares sides a and b on column col into out. The statuses other than COMPARE_DONE are
 * results, not failures; fails (-1) only when out of memory. */
int compare_metric(const MetricColumn *col, const CompareSide *a, const CompareSide *b,
                   const CompareOptions *o, CompareMetric *out, CkError *err);

/* The p-value a compared metric is judged by: McNemar's when it has one, else the
 * bootstrap's. */
double compare_p_value(const CompareMetric *m);

/* Marks the cells of table t (rows: groups, over runs whose per-item files are items[]) that
 * differ from row `baseline` at p < o->p_limit, where both rows have per-item data for the
 * column, and sets t->marker_note to say so (the test, its settings, the columns never
 * marked). Fails only when out of memory. */
int compare_mark_table(MetricTable *t, const RunGroups *groups, const RunItems *items, int baseline,
                       const CompareOptions *o, CkError *err);

#endif
