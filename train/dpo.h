/* dpo.h — the DPO objective (Rafailov et al. 2023, as TRL's DPOTrainer computes its default
 * "sigmoid" loss) on pairs of packed sequences, and the frozen reference's log-probabilities.
 *
 * A pair is a chosen and a rejected sequence of one prompt (CutPair: seq_a chosen, seq_m
 * rejected). With π = the sum of the policy's log p over a sequence's response targets (its
 * EOS included) and r = the same under the frozen reference,
 *   z = β ((π_c − r_c) − (π_r − r_r)),   loss = −log σ(z) = log(1 + e^{−z}),
 * averaged over the pairs of the optimizer step. dloss/dπ_c = −β σ(−z) = −dloss/dπ_r, and π is
 * a sum of per-token log p, so the gradient is that of token-level MLE with weight β σ(−z) / n
 * on the chosen response and −β σ(−z) / n on the rejected one (loss.h's LOSS_MLE): the
 * trainer takes one forward, reads log p of every target, sets those weights and runs the
 * backward. The reference's log-probs are computed once, before training, with the starting
 * model (or --ref-model) in eval mode, and kept in OUT/ref_logps.jsonl with a fingerprint of
 * the data and the reference model, which a resumed run reuses. */
#ifndef CK_DPO_H
#define CK_DPO_H

#include <stdint.h>

#include "datasets/judgments.h"
#include "model/model.h"
#include "train/cut.h"
#include "util/ck_error.h"

/* What one micro-batch of pairs adds to an update's statistics (sums over its pairs). */
typedef struct {
    double loss;            /* Σ −log σ(z), not yet divided by the step's pairs */
    double chosen_reward;   /* Σ β (π_c − r_c) */
    double rejected_reward; /* Σ β (π_r − r_r) */
    double correct;         /* pairs with z > 0 */
} DpoStats;

/* −log σ(z) in a form that neither overflows nor loses digits for large |z|. */
double dpo_loss(double z);

/* Sets weights[i] for every packed position of b (N = offsets[n_seqs]) from the policy's
 * log-probs of a forward of b (logprobs[i] = log p(targets[i]), 0 without target): β σ(−z) /
 * n_step on the response targets of each pair's chosen sequence, its negative on the rejected
 * one, 0 elsewhere, so that model_backward with LOSS_MLE rows has the gradient of the pairs'
 * DPO loss / n_step. ref holds r_c, r_r of pair k at ref[2k], ref[2k + 1]. Adds the pairs'
 * sums to *st (which the caller zeroes). Fails on a sequence outside b or a pair whose
 * sequences are the same. */
int dpo_assign_weights(const TokenBatch *b, const int *targets, const double *logprobs,
                       const CutPair *pairs, int n_pairs, const double *ref, double beta,
                       int n_step, float *weights, DpoStats *st, CkError *err);

/* Writes the reference's summed response log-probabilities of every example (ref[2k] for
 * ex[k].a, the chosen sequence; ref[2k + 1] for ex[k].m, the rejected one): m in eval mode
 * (no adapters, no dropout), one pair per forward, so they do not depend on the batch. */
int dpo_reference_logps(const Model *m, const CutExample *ex, int n, double *ref, CkError *err);

/* The fingerprint of a reference computation: the pairs' tokens and masks, and m's shape and
 * weights. */
uint64_t dpo_fingerprint(const Model *m, const CutExample *ex, int n);

/* Reads path's reference log-probs into ref ([2n]) when the file exists and was written for
 * fingerprint and n pairs: returns 1; 0 when it is absent or was written for other data or
 * another model (then ref is untouched); -1 with err on a damaged file. */
int dpo_cache_load(const char *path, uint64_t fingerprint, int n, double *ref, CkError *err);

/* Writes ref ([2n]) to path (JSON Lines: a header with the fingerprint, then one line per
 * pair) through an AtomicFile. */
int dpo_cache_save(const char *path, uint64_t fingerprint, int n, const double *ref, CkError *err);

#endif
