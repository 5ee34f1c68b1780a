/* results.h — evaluation output in lm-evaluation-harness's shape: metric keys "acc,none" and
 * "acc_stderr,none" per task, and per-item JSON lines (its --log_samples) for the
 * multiple-choice evaluator, which `--resume` reads back. */
#ifndef CK_RESULTS_H
#define CK_RESULTS_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "util/ck_error.h"
#include "eval/mc.h"

/* Adds "<name>,none": value and "<name>_stderr,none": stderr_ (null when not finite) to obj. */
void results_add_metric(cJSON *obj, const char *name, double value, double stderr_);

/* Writes root to path atomically (pretty-printed, with a final newline). */
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
