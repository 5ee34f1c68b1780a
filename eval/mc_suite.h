/* mc_suite.h — `eval mc --suite`: fixed sets of tasks with their shot counts, and the summary
 * of their headline numbers. One suite: "open-llm-v1", the Open LLM Leaderboard v1 (and the
 * CUT paper's Table 2): ARC-Challenge 25-shot acc_norm, HellaSwag 10-shot acc_norm, MMLU
 * 5-shot acc (the unweighted mean of the 57 subjects under harness b281b09), TruthfulQA MC2
 * 0-shot, and their unweighted average; harness b281b09, the commit the leaderboard pinned,
 * unless --harness-version says otherwise. */
#ifndef CK_MC_SUITE_H
#define CK_MC_SUITE_H

#include <cjson/cJSON.h>

#include "eval/mc_run.h"
#include "util/ck_error.h"

/* Suite names for the flag table. */
#define MC_SUITE_CHOICES "open-llm-v1"

/* Sets o's tasks, per-task shots and suite name for the suite called name (the harness version
 * too, when o has none). Fails on an unknown name or when o already names tasks. */
int mc_suite_apply(McRunOptions *o, const char *name, CkError *err);

/* Writes OUT/open_llm_v1.json after the run: {"suite", "harness_version", "bos", "limit",
 * "columns": [{"column", "task", "metric", "key", "shots", "value", "variant"?}...],
 * "average", "n_columns"}, each value read from results at its key
 * ("results/<task>/<metric>,none"; HellaSwag's task is "hellaswag_llamacpp" when the
 * llama.cpp copy was scored, and its "variant" says so); average = the mean of the four (null
 * when one is missing). Sets report->suite_path and suite_average. Atomic (util/fileio.h). */
int mc_suite_write(const McRunOptions *o, McRunReport *report, const cJSON *results, CkError *err);

#endif
