/* mc_mmlu.h — MMLU in `eval mc`: the hendrycks data folder read into items (each subject's
 * description, its first k dev rows as exemplars, then the question: datasets/mmlu_prompt.h in
 * the template of the harness version), and the results as lm-evaluation-harness writes them:
 * one task per subject ("mmlu_<subject>", acc), the four category groups ("mmlu_stem",
 * "mmlu_other", "mmlu_social_sciences", "mmlu_humanities") and "mmlu". A group's acc is the
 * unweighted mean of its subjects' (harness b281b09: the Open LLM Leaderboard v1 averaged the
 * 57 hendrycksTest accuracies) or weighted by subject size (0.4's groups: weight_by_size), as
 * HarnessVersion.mmlu_macro says; its standard error is the harness's pooled_sample_stderr
 * (lm_eval/api/metrics.py) of the subjects' in both cases. */
#ifndef CK_MC_MMLU_H
#define CK_MC_MMLU_H

#include <cjson/cJSON.h>

#include "datasets/mmlu.h"
#include "datasets/mmlu_prompt.h"
#include "eval/harness.h"
#include "eval/mc.h"
#include "util/ck_error.h"

/* The data of one MMLU evaluation. */
typedef struct {
    MmluSet test, dev;
    McDocSet docs; /* test as McDocs in the template (question = the question block) */
    MmluPrompt prompt;
    char dir[4096]; /* the data folder read */
} McMmluData;

/* Reads test and dev of the subjects (comma-separated; NULL or "": all 57) from the data
 * folder dir (dir/test/<subject>_test.csv ..., or dir/data/test/...). A missing dir fails with
 * "MMLU data: DIR: ..." and how to give it; a bad row with file:line: row: field. */
int mc_mmlu_load(McMmluData *m, const char *dir, const char *subjects, MmluPrompt prompt,
                 CkError *err);

/* Releases m; safe on a zeroed one. */
void mc_mmlu_free(McMmluData *m);

/* Builds the items: per subject in the table's order its first `limit` test rows (0: all),
 * each context mmlu_context with the subject's first `shots` dev rows (the harness's first_n
 * sampler). doc_index is the item's position in the list, group its subject. */
int mc_mmlu_build_items(const McTask *task, const McMmluData *m, int shots, int limit,
                        McItem **items, int *n_items, CkError *err);

/* Adds the subjects', categories' and "mmlu"'s entries to every task-keyed section of the
 * results root (eval/results.h) from results[i] of items[i], and to config.mmlu_average which
 * average "mmlu" is ("macro": unweighted over subjects; "weighted": by subject size) with
 * both values and the subject count. *headline gets "mmlu"'s acc. Returns 0 or -1 (memory). */
int mc_mmlu_record(cJSON *root, const McTask *task, const HarnessVersion *v, const McItem *items,
                   const McItemResult *results, int n, int shots, const McMmluData *m,
                   McMetrics *headline, CkError *err);

/* The harness's pooled_sample_stderr of k subtasks' standard errors and sizes:
 * sqrt(sum((n_i - 1) se_i^2 n_i) / (sum n_i - k) / sum n_i); NAN when any se_i is not finite
 * or sum n_i <= k. */
double mc_pooled_stderr(const double *se, const int *sizes, int k);

#endif
