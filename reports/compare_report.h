/* compare_report.h — `cutkit report --compare A B`: every evaluation metric of two runs (or two
 * sets of runs, e.g. the seeds of two settings) compared item by item (compare.h), printed as
 * a Markdown table and written as DIR/compare.md and DIR/compare.json.
 *
 * compare.json: {"a": {"label", "runs": [dirs]}, "b": {...}, "bootstrap": {"resamples",
 * "seed", "level"}, "metrics": [{"metric" (the column title), "slug", "file", "task" (null for
 * annotations), "field", "items_a", "items_b", "items_shared", "mean_a", "mean_b", "diff",
 * "lo", "hi", "p_bootstrap", "mcnemar": {"both", "neither", "a_only", "b_only", "p_value"} or
 * null}], "not_compared": [{"metric", "slug", "reason"}], "notes": [text]}; means, differences
 * and intervals in the column's units (percent), diff = A - B. */
#ifndef CK_COMPARE_REPORT_H
#define CK_COMPARE_REPORT_H

#include "reports/compare.h"
#include "util/ck_error.h"

/* Compares the runs dirs_a[0..n_a) with dirs_b[0..n_b) and writes out_dir/compare.md and
 * out_dir/compare.json (out_dir created with its parents), each atomically; *markdown gets
 * compare.md's text (malloc'd, caller frees) for the terminal. Refuses (-1, nothing written)
 * when a metric has items on both sides but none in common (naming it and the counts), and
 * when no metric has per-item files on both sides; a malformed file fails naming it. */
int report_compare(const char *const *dirs_a, int n_a, const char *const *dirs_b, int n_b,
                   const char *out_dir, const CompareOptions *o, char **markdown, CkError *err);

#endif
