/* cut.h — the CUT objective (contrastive unlikelihood training, cut-spec.md §2) on top of the
 * token-level losses of loss.h.
 *
 * One CUT step, with the current model (no frozen reference):
 *   1. pack the batch: a positive example is one sequence (Align-P); a negative example is
 *      two sequences with the same response tokens, Align-N (prompt with the negative
 *      judgment, "A") and Misalign (plain prompt, "M"); targets[i] = the next token on
 *      response positions, -1 elsewhere;
 *   2. model_forward_train, then model_logprobs(targets) for log p of every target;
 *   3. cut_assign_loss: detection (cut_detect) on each negative example, then the kinds and
 *      weights of every position, into a LossSpec;
 *   4. model_backward with that LossSpec: its loss and gradient are the CUT loss's.
 * The trainer folds 2-4 into one classifier pass (cut_plan_fused): the backward reads each
 * row's log p and decides its kind and weight by the same rule before forming its gradient,
 * and cut_assign_loss on the log-probs it wrote gives the step's counts afterwards.
 *
 * The batch-level mean (§2.2, §2.5, §3.1): the released runs use micro_batch_size = 1 on 8
 * GPUs, so each example's loss is formed from its own token means — a negative contributes
 * (L_A + L_M) / 2, a positive L_A — and data parallelism averages the 8 examples' gradients.
 * CUT_MEAN_PER_EXAMPLE (the default) reproduces that: loss = (1 / n_step) Σ_e loss_e, where
 * n_step is the number of examples in the whole optimizer step (so micro-batches accumulate
 * to the step mean). CUT_MEAN_POOLED instead applies the reference's formula to the packed
 * batch as one micro-batch of B > 1 items: L_A pools every A sequence's tokens, L_M every
 * Misalign token, and the sum is halved when any item is negative. */
#ifndef CK_CUT_H
#define CK_CUT_H

#include "util/ck_error.h"
#include "model/loss.h"
#include "model/model.h"

/* The unlikelihood floor to use with CUT. The reference replaces q = 1 - pM by q + 1e-5 only
 * when q is exactly 0 in fp32; loss.h floors q at ul_min_q instead. They agree at q == 0
 * (both -log 1e-5 = 11.51) and for q >= 1e-5, and differ for 0 < q < 1e-5 (the reference
 * then charges -log q, up to -log 2^-24 = 16.6; the floor charges 11.51, though its gradient
 * still pushes p down). The reference's clamp also applies to unflagged tokens whose pM is
 * exactly 0 (q = pM), and L_A has no clamp at all (pA == 0 gives inf): loss.h computes MLE
 * in log space, finite and unclamped, so those fp32 underflow cases are not reproduced. */
#define CUT_UL_MIN_Q LOSS_UL_MIN_Q_DEFAULT

/* A probability whose log is at or below this rounds to 0 in fp32 (x <= 2^-150 rounds to 0
 * under round-to-nearest-even): where the reference's fp32 softmax would have underflowed. */
#define CUT_LOG_FP32_UNDERFLOW (-103.97207708399179) /* -150 ln 2 */

typedef enum {
    CUT_MEAN_PER_EXAMPLE = 0, /* per-example token means, averaged over the step's examples */
    CUT_MEAN_POOLED = 1,      /* token means pooled over the packed batch (reference, B > 1) */
} CutMean;

typedef struct {
    double lambda;     /* detection threshold λ on pA / pM (> 0; 1.1 online, 1.2 offline) */
    double alpha;      /* weight α of the unlikelihood terms (1 online, 0.5 offline) */
    double gamma;      /* v4 dynamic weight pA^γ on flagged tokens, detached; 0: off (the code) */
    int paper_sum;     /* 1: a negative's loss is L_A + L_M (paper Eq. 6 + 7), not halved */
    CutMean mean;      /* how the batch-level mean is formed (see above) */
    int step_examples; /* CUT_MEAN_PER_EXAMPLE: examples in the optimizer step; <= 0: this
                        * batch's */
    /* Table-4 ablations (train/OBJECTIVES.md). A negative's two terms are halved only while
     * both are on; with one of them off the other counts whole. */
    int no_l1;          /* -L1: no Misalign term at all (Align-P / Align-N MLE only) */
    int no_align_n_mle; /* -Align-N MLE: Align-N rows only feed detection (weight 0) */
    int no_detection;   /* -detection: unlikelihood on every Misalign token, none by λ */
} CutOptions;

/* Returns the reference defaults of the online runs: λ 1.1, α 1, γ 0, halved, per example. */
CutOptions cut_default_options(void);

/* Fills *o with the reference settings of preset: "online" or "reference-online"
 * (cut_default_options: λ 1.1, α 1), "offline" or "reference-offline" (λ 1.2, α 0.5); fails
 * naming any other. (The reference-* presets set every other setting too: train/presets.h.) */
int cut_preset_options(const char *preset, CutOptions *o, CkError *err);

/* One example of a packed batch: sequence indices into the TokenBatch. */
typedef struct {
    int seq_a; /* Align-P (positive) or Align-N (negative) */
    int seq_m; /* Misalign; -1 for a positive example */
} CutPair;

typedef struct {
    int n_tokens;  /* response tokens compared */
    int n_flagged; /* tokens flagged inappropriate */
} CutDetectCounts;

/* Flags response token t (flags[t] = 1, else 0) iff p_A / p_M > λ, decided in log space as
 * log_pa[t] - log_pm[t] > log λ (strict), where a log at or below CUT_LOG_FP32_UNDERFLOW
 * counts as the reference's fp32 probability 0: pM == 0 < pA flags (ratio +inf), both 0 do
 * not (NaN), pA == 0 does not; a NaN input never flags. Pure: no gradient flows through it. */
CutDetectCounts cut_detect(const double *log_pa, const double *log_pm, int n, double lambda,
                           unsigned char *flags);

typedef struct {
    int n_pos, n_neg;      /* examples of each polarity */
    int n_a_tokens;        /* response tokens of A sequences (Align-P and Align-N) */
    int n_m_tokens;        /* response tokens of Misalign sequences */
    int n_flagged;         /* Misalign tokens given unlikelihood */
    double loss_a, loss_m; /* the batch's pooled L_A and L_M, from logprobs (diagnostics) */
} CutStats;

/* Fills kinds[i] and weights[i] for every packed position of b (N = offsets[n_seqs]) from the
 * log-probabilities of a forward of the same batch (logprobs[i] = log p(targets[i]), as
 * model_logprobs writes them), and sets *spec = {targets, kinds, weights, CUT_UL_MIN_Q},
 * so that model_backward's loss is the CUT loss under opt. Every sequence must belong to
 * exactly one example, and the two sequences of a negative must have the same number of
 * response targets with identical ids (index-aligned). stats may be NULL. */
int cut_assign_loss(const TokenBatch *b, const int *targets, const double *logprobs,
                    const CutPair *examples, int n_examples, const CutOptions *opt, LossKind *kinds,
                    float *weights, LossSpec *spec, CutStats *stats, CkError *err);

/* The state of cut_plan_fused's decide hook (owned by the caller, alive through the backward). */
typedef struct {
    const int *partner; /* [N] the Align-N row of a Misalign row, -1 elsewhere */
    const double *base; /* [N] a Misalign row's unflagged weight */
    double lambda, alpha, gamma;
    int flag_all; /* CutOptions.no_detection: every Misalign row gets unlikelihood */
} CutFused;

/* The same objective as cut_assign_loss in one classifier pass: plans every token as
 * cut_assign_loss would with nothing flagged (partner and base: [N] scratch), and sets spec's
 * decide hook (state in *f) so that model_backward flags each Misalign token as it reads its
 * log p, with cut_assign_loss's rule and weights, writing log p of every target into logprobs
 * ([N]). Calling cut_assign_loss with those logprobs afterwards gives the same kinds and the
 * step's CutStats. */
int cut_plan_fused(const TokenBatch *b, const int *targets, const CutPair *examples, int n_examples,
                   const CutOptions *opt, LossKind *kinds, float *weights, int *partner,
                   double *base, double *logprobs, CutFused *f, LossSpec *spec, CkError *err);

/* The reference CUT loss of one example from its response-token probabilities, in double,
 * straight from cut-spec.md §2: L_A = -mean log pA (no epsilon); for a negative (pm != NULL)
 * U = {t : pA/pM > λ}, q = 1 - pM on U and pM elsewhere, q += 1e-5 where q == 0, L_M =
 * -(1/n) Σ (α pA^γ on U, else 1) log q, and the loss (L_A + L_M) / 2 (or the sum with
 * paper_sum); for a positive, L_A. Writes L_A, L_M and the flags when non-NULL. */
double cut_reference_loss(const double *pa, const double *pm, int n, double lambda, double alpha,
                          double gamma, int paper_sum, double *l_a, double *l_m,
                          unsigned char *flags);

#endif
