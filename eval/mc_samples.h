/* mc_samples.h — the per-sample records of lm-evaluation-harness's --log_samples for the
 * multiple-choice tasks, one JSON line per doc as its EvaluationTracker writes them
 * (evaluator.py builds the record, save_results_samples sanitises it):
 *   doc_id          the doc's position in the test split (an integer)
 *   doc             the doc as the Hugging Face dataset holds it: ARC {"id", "question",
 *                   "choices": {"text", "label"}, "answerKey"}, TruthfulQA {"question",
 *                   "mc1_targets": {"choices", "labels"}, "mc2_targets": {...}}, rebuilt
 *                   from the test file
 *   target          str(doc_to_target): ARC the gold index, TruthfulQA "0"
 *   arguments       {"gen_args_i": {"arg_0": context, "arg_1": " " + choice i}}
 *   resps           [[[str(ll), str(is_greedy)]]] per choice ("-12.5", "False")
 *   filtered_resps  [[str(ll), str(is_greedy)]] per choice (the "none" filter takes the first)
 *   filter "none", metrics (their names), doc_hash (SHA-256 of json.dumps(doc, indent=2)),
 *   prompt_hash (of the context), target_hash (of target), then each metric's value as the
 *   task's process_results gives it: ARC acc and acc_norm (1.0 / 0.0), MC1 acc, MC2 acc = the
 *   mass of the version's variant.
 * The text is Python's json.dumps (eval/pyjson.h), so the harness's hashes of these fields
 * come out the same. */
#ifndef CK_MC_SAMPLES_H
#define CK_MC_SAMPLES_H

#include "eval/mc.h"
#include "util/ck_error.h"
#include "util/strbuf.h"

/* Appends the records of items[0..n) with their results (results[i] belongs to items[i]) to
 * lines, one line each ending in "\n", and writes the task's hash as the harness's tracker
 * computes it (SHA-256 of every record's doc_hash + prompt_hash + target_hash, in order) to
 * task_hash. test_path is the file the items were built from (the docs are rebuilt from it).
 * Fails with the file and line of a doc that cannot be read back. */
int mc_samples_build(const McTask *task, Mc2Variant mc2, const char *test_path, const McItem *items,
                     const McItemResult *results, int n, StrBuf *lines, char task_hash[65],
                     CkError *err);

#endif
