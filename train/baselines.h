/* baselines.h — the training data of the baselines the CUT paper compares with
 * (train/OBJECTIVES.md), built from the same judgment records (datasets/judgments.h) or from
 * pair files (train/pairs.h) with the same templates and cutoff as CUT's examples:
 *  - Forward Prediction: the plain template with the instruction, then the response, the
 *    judgment heading and the judgment (TEMPLATE_POSITIVE_JUDGMENT for a positive record), EOS;
 *    MLE on everything after the prompt;
 *  - Hindsight: Align-N (the judge template with the judgment) for a negative, Align-P (plain
 *    template) for a positive, MLE on the response: CUT's L2 alone;
 *  - ILF-MLE: the plain template with the instruction, then the refinement, MLE on it;
 *  - DPO and ILF-DPO: a pair of plain-template sequences of one prompt (chosen, rejected).
 * The MLE ones become a Corpus (the trainer's MLE path); the DPO ones CutExamples with
 * a = chosen, m = rejected. */
#ifndef CK_BASELINES_H
#define CK_BASELINES_H

#include "datasets/corpus.h"
#include "datasets/judgments.h"
#include "datasets/templates.h"
#include "tokenizer/tokenizer.h"
#include "train/pairs.h"
#include "util/ck_error.h"

typedef enum {
    BASELINE_FORWARD_PREDICTION = 1,
    BASELINE_HINDSIGHT = 2,
    BASELINE_ILF_MLE = 3,
} BaselineMle;

/* What a build did, for the opening line and config.json. */
typedef struct {
    int n_sequences; /* sequences (MLE) or pairs (DPO) built */
    int n_truncated; /* sequences the cutoff shortened */
} BaselineStats;

/* Builds the MLE sequences of kind into c: from judgments (forward prediction, hindsight) or
 * pairs (ILF-MLE: instruction + refinement, the pairs' chosen), each as
 * judgments_build_reference_example builds an Align-P / Align-N sequence with cutoff. On
 * failure c holds nothing; err names the record. */
int baselines_build_mle(BaselineMle kind, const JudgmentSet *judgments, const PairSet *pairs,
                        const Template *tpl, const Tokenizer *tok, int cutoff, Corpus *c,
                        BaselineStats *st, CkError *err);

/* Builds one CutExample per pair (negative = 1, a = chosen, m = rejected, both the plain
 * template with the pair's instruction, response + EOS trained) into *out (n pairs). On failure
 * *out is NULL; err names the line. */
int baselines_build_pairs(const PairSet *pairs, const Template *tpl, const Tokenizer *tok,
                          int cutoff, CutExample **out, BaselineStats *st, CkError *err);

/* Releases n examples of baselines_build_pairs. */
void baselines_free_pairs(CutExample *ex, int n);

#endif
