/* harness.h — lm-evaluation-harness versions, as far as they change what `eval mc` computes:
 * whether a Hugging Face causal model's context starts with BOS, and which MC2 formula (with
 * the task version the harness reports for it). Read from the harness's code at its tags
 * v0.4.0 ... v0.4.12 and HEAD:
 *  - BOS (lm_eval/models/huggingface.py, tok_encode): 0.4.0 - 0.4.9.1 encode a causal model's
 *    requests with add_special_tokens=False (add_bos_token defaults to False and only Gemma
 *    models turn it on), so no BOS; from 0.4.9.2 add_bos_token defaults to None and tok_encode
 *    uses the tokenizer's own default (a LLaMA tokenizer adds BOS).
 *  - MC2 (lm_eval/tasks/truthfulqa/utils.py, process_results_mc2): 0.4.0 - 0.4.8 count as true
 *    the answers before the first 0 label (task version 2.0), 0.4.9 on those labelled 1 (3.0).
 *  ARC (1.0) and TruthfulQA MC1 (2.0) are the same in every one of these versions.
 * And b281b09, the commit the Open LLM Leaderboard v1 pinned (lm_eval/base.py, lm_eval/tasks):
 * no BOS (hf-causal-experimental: add_special_tokens False for causal models), MC2 as 2.0,
 * exemplars drawn after random.Random(42) shuffled the eval docs (McDraw), MMLU as
 * hendrycksTest-<subject> v1 averaged over the 57 subjects (macro). The results keep 0.4's task
 * names (truthfulqa_mc2 for its truthfulqa_mc's mc2, mmlu_<subject> for hendrycksTest-<subject>).
 */
#ifndef CK_HARNESS_H
#define CK_HARNESS_H

#include "eval/mc.h"
#include "tokenizer/tokenizer.h"
#include "util/ck_error.h"

typedef enum {
    HARNESS_BOS_NONE,     /* no BOS before the context */
    HARNESS_BOS_TOKENIZER /* BOS when the tokenizer's encode(..., add_special_tokens) adds it */
} HarnessBos;

typedef struct {
    const char *name; /* "b281b09", "0.4.0", ..., "current" (the harness's main branch) */
    HarnessBos bos;
    Mc2Variant mc2;
    McDraw draw;     /* how few-shot exemplars are drawn */
    int mmlu_prompt; /* datasets/mmlu_prompt.h MmluPrompt of this version */
    int mmlu_macro;  /* 1: "mmlu" and its categories are unweighted means of the subjects
                        (the leaderboard's); 0: weighted by subject size (0.4's groups) */
} HarnessVersion;

/* Every version --harness-version accepts, for the flag table's choices; harness.c's table
 * holds the same names in the same order (tests/test_mc.c checks it). */
#define HARNESS_VERSION_CHOICES                                                                    \
    "b281b09|0.4.0|0.4.1|0.4.2|0.4.3|0.4.4|0.4.5|0.4.6|0.4.7|0.4.8|0.4.9|0.4.9.1|0.4.9.2|0.4.10|"  \
    "0.4.11|"                                                                                      \
    "0.4.12|current"

/* The version `eval mc` follows unless told: "current" (BOS as the tokenizer says, MC2 3.0),
 * which is what cutkit computed before --harness-version existed for every LLaMA-family and
 * llama2.c tokenizer (they add BOS). */
#define HARNESS_VERSION_DEFAULT "current"

/* The version called name (one of HARNESS_VERSION_CHOICES), or NULL. */
const HarnessVersion *harness_version_find(const char *name);

/* The number of known versions; harness_version_at(i) is the i-th, oldest first. */
int harness_version_count(void);
const HarnessVersion *harness_version_at(int i);

/* The version called name (NULL: HARNESS_VERSION_DEFAULT) into *out; an unknown name fails
 * with "--harness-version: unknown version 'x' (known: 0.4.0, ..., current)". */
int harness_version_parse(const char *name, const HarnessVersion **out, CkError *err);

/* Sets *bos to whether the requests of version v start with BOS for tokenizer t: never before
 * 0.4.9.2; from it, when t's encoding with special tokens puts t's BOS in front (as Hugging
 * Face's encode(text) does by default). Fails only when t cannot encode a test string. */
int harness_bos(const HarnessVersion *v, const Tokenizer *t, int *bos, CkError *err);

/* The task's version as the harness of version v reports it (its YAML's metadata.version):
 * ARC 1.0, MC1 2.0, MC2 2.0 or 3.0, HellaSwag 1.0, MMLU subjects 1.0 (the mmlu groups 2);
 * b281b09's class VERSIONs: ARC 0, HellaSwag 0, TruthfulQA MC 1, hendrycksTest 1. */
double harness_task_version(const HarnessVersion *v, const McTask *task);

#endif
