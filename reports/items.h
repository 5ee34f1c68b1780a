/* items.h — the per-item outcomes behind a table column, for paired comparisons of two runs
 * on the same items: which file holds them, how an item is keyed, and the outcome's value.
 *
 *   column          file                    records            key                  value
 *   ARC-C acc_norm  eval/mc/items.jsonl     task arc_challenge "<task>/<doc_index>" acc_norm (0/1)
 *   TQA MC1         eval/mc/items.jsonl     truthfulqa_mc1     "<task>/<doc_index>" acc (0/1)
 *   TQA MC2         eval/mc/items.jsonl     truthfulqa_mc2     "<task>/<doc_index>" mc2 in [0, 1]
 *   HellaSwag       eval/mc/items.jsonl     hellaswag (or      "<task>/<doc_index>" acc_norm (0/1)
 *                                           hellaswag_llamacpp)
 *   Win rate        eval/annotations.json   every record       the instruction      preference - 1
 *
 * doc_index is written with ten digits ("arc_challenge/0000000012") so that keys sort in item
 * order. An instruction that occurs k > 1 times gets "\x1f<k>" after its k-th occurrence, so
 * the k-th judgment of an instruction pairs with the other run's k-th. Preferences follow
 * AlpacaEval as eval/winrate.h reads them: 1..2 gives preference - 1, legacy 0 a draw (0.5),
 * null and values outside [1, 2] are missing (the item is left out). items.jsonl is read with
 * util/jsonl.h (an incomplete last line, an evaluation still writing, is left out); a second
 * record of the same task and doc index is an error naming both lines.
 *
 * MMLU (a macro average over 57 subject tasks), the layouts' Avg. (of four columns) and
 * ROUGE-Lsum are not compared item by item. Error rate, misconception rate and detection F1
 * have no per-item file (errors.json and
 * detection.json hold aggregates only): item_metric_for gives them with a why_not note. */
#ifndef CK_ITEMS_H
#define CK_ITEMS_H

#include "reports/metrics.h"
#include "reports/rundir.h"
#include "util/ck_error.h"

typedef enum {
    ITEMS_NONE,        /* no per-item file: not compared (why_not says so) */
    ITEMS_MC,          /* eval/mc/items.jsonl */
    ITEMS_ANNOTATIONS, /* eval/annotations.json */
    ITEMS_FACTS,       /* eval/fact_items.jsonl (the demo's judge: per-response fact errors) */
} ItemSource;

typedef struct {
    const char *slug; /* the table column's (metrics.c) */
    ItemSource source;
    const char *task;     /* ITEMS_MC: the records' "task" */
    const char *field;    /* ITEMS_MC, ITEMS_FACTS: the per-item value */
    double scale;         /* an item value times scale is in the column's units (percent) */
    const char *why_not;  /* ITEMS_NONE: one sentence for the reader */
    const char *alt_task; /* ITEMS_MC: records of this task count too (keyed by their own task,
                             so that they never pair with the other task's items) */
} ItemMetric;

/* The per-item source of the table column with that slug, or NULL when the column is not an
 * evaluation metric (the flagged fraction of training). */
const ItemMetric *item_metric_for(const char *slug);

/* Relative path of the file a source reads ("eval/mc/items.jsonl"); "" for ITEMS_NONE. */
const char *item_source_file(ItemSource s);

/* One run's outcomes of one metric: keys sorted (strcmp), values unscaled (acc 0/1, win
 * preference - 1 in [0, 1]). */
typedef struct {
    int present; /* 1: the run has the file with records of this metric */
    int n;
    char **keys;
    double *values;
} ItemScores;

/* The outcomes of every metric of all columns for one run (index as metric_all_columns). */
typedef struct {
    int n_cols;
    ItemScores *cols;
} RunItems;

/* Reads the per-item files of rd (each once) into it (released with run_items_free, also on
 * failure). Absent files are not errors (present = 0); malformed ones are, naming file and
 * line or record. */
int run_items_load(RunItems *it, const RunDir *rd, CkError *err);

/* Releases it. */
void run_items_free(RunItems *it);

/* The scores of column col (by slug among metric_all_columns) in it, or NULL when col is not
 * one of them. */
const ItemScores *run_items_get(const RunItems *it, const MetricColumn *col);

/* The index of key in s (binary search), or -1. */
int item_scores_find(const ItemScores *s, const char *key);

#endif
