/* results.h — evaluation output in lm-evaluation-harness's shape. results.json is the dict its
 * evaluator returns (and its EvaluationTracker writes as results_<date>.json, eval/tracker.h),
 * in json.dumps's text (indent 2, eval/pyjson.h), with the sections in the harness's order:
 *   results           {task: {"alias", "<metric>,none", "<metric>_stderr,none", ...}}
 *   group_subtasks    {task: []} (cutkit runs no groups, so there is no "groups" section)
 *   configs           {task: the task's YAML config as the harness dumps it}
 *   versions          {task: its version, e.g. 1.0}
 *   n-shot            {task: shots}
 *   higher_is_better  {task: {metric: true}}
 *   n-samples         {task: {"original", "effective"}}
 *   config            the run's settings (cutkit's: model, tokenizer, adapter, bos,
 *                     harness_version, ...)
 *   diagnostics       cutkit's counts per task (join fallbacks, truncated items)
 * Every task-keyed section is sorted by task name, as the harness sorts its tasks. Metrics
 * and versions are Python floats ("1.0"); a standard error that cannot be computed (fewer
 * than 2 items) is the harness's "N/A". Also the per-item JSON lines of the multiple-choice
 * evaluator (items.jsonl, cutkit's own), which `--resume` reads back. */
#ifndef CK_RESULTS_H
#define CK_RESULTS_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "eval/harness.h"
#include "eval/mc.h"
#include "util/ck_error.h"

/* Adds "<name>,none": value (null when not finite) and "<name>_stderr,none": stderr_ ("N/A"
 * when not finite) to obj, both as Python floats. */
void results_add_metric(cJSON *obj, const char *name, double value, double stderr_);

/* A results.json root with its sections (above) empty, "config" and "diagnostics" included;
 * NULL when out of memory. */
cJSON *results_mc_root(void);

/* Adds task's entries to every task-keyed section of root: its metrics m, config (the
 * harness's YAML for version v, with shots), version, shots, higher_is_better and sample
 * counts (n_original docs in the file, n_effective evaluated). Returns 0, or -1 when out of
 * memory. */
int results_mc_add_task(cJSON *root, const McTask *task, const HarnessVersion *v,
                        const McMetrics *m, int shots, int n_original, int n_effective);

/* results_mc_add_task for an entry called name (alias: its "alias") scored as task: MMLU's
 * subjects ("mmlu_<subject>", task MC_MMLU, no group_subtasks entry of their own). */
int results_mc_add_entry(cJSON *root, const char *name, const char *alias, const McTask *task,
                         const HarnessVersion *v, const McMetrics *m, int shots, int n_original,
                         int n_effective);

/* Adds a group (MMLU's "mmlu" and categories) as the harness writes one: results {alias,
 * acc, acc_stderr}, group_subtasks [its subtasks], higher_is_better, versions (an int, the
 * group YAML's). Returns 0 or -1 (memory). */
int results_mc_add_group(cJSON *root, const char *name, const char *alias,
                         const char *const *subtasks, int n_subtasks, double acc, double stderr_,
                         int version);

/* Sorts root's task-keyed sections by task name (group_subtasks in reverse, as the harness
 * writes it), once every task is in. */
void results_mc_finish(cJSON *root);

/* Writes root to path atomically as json.dumps(root, indent=2) writes it, with a final
 * newline. */
int results_write_json(const char *path, const cJSON *root, CkError *err);

/* One items.jsonl record: task, doc index and id, the run fingerprint (hex), gold and chosen
 * choice, context tokens, per choice its continuation tokens, log-likelihood, token/char/byte
 * counts, is_greedy, fallback, truncation, and the item's acc / acc_norm / mc2. Caller frees
 * with cJSON_Delete. */
cJSON *results_mc_item_json(const char *task, const McItem *item, const McItemResult *r,
                            uint64_t fingerprint);

/* Reads back a record written by results_mc_item_json into r (allocated here), with its task
 * name (borrowed from rec) and fingerprint; `where` ("items.jsonl:12") prefixes messages. */
int results_mc_item_parse(const cJSON *rec, const char **task, uint64_t *fingerprint,
                          McItemResult *r, const char *where, CkError *err);

#endif
