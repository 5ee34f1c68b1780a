/* loss.h — what a training step optimises, token by token.
 *
 * Every packed position i of a batch may carry a loss term on the model's prediction of
 * targets[i] (normally the next token of its sequence):
 *   LOSS_MLE:          l_i = -log p(target)
 *   LOSS_UNLIKELIHOOD: l_i = -log max(1 - p(target), ul_min_q)
 *   LOSS_NONE:         nothing (prompt tokens, padding, the last token of a sequence)
 * and the loss is sum_i weights[i] * l_i. A token mean is weights = 1 / count; the CUT
 * objective is MLE on some tokens and weighted unlikelihood on others, with no change to
 * the model code. */
#ifndef CK_LOSS_H
#define CK_LOSS_H

typedef enum {
    LOSS_NONE = 0,
    LOSS_MLE = 1,
    LOSS_UNLIKELIHOOD = 2,
} LossKind;

/* The default floor of 1 - p inside the unlikelihood log. The CUT reference adds 1e-5 to
 * 1 - p only where it is exactly 0 in fp32 (so there its loss is -log(1e-5) = 11.5, as here);
 * for 0 < 1 - p < 1e-5 the reference charges -log(1 - p), up to 16.6 at fp32's smallest
 * step, where this floor reports 11.5 — while its gradient still pushes p down. */
#define LOSS_UL_MIN_Q_DEFAULT 1e-5f

/* Decides the kind and weight of packed row i once log p of every row up to i is known
 * (logprobs[0..i], rows without a loss term 0); it may change *kind and *weight, which hold
 * the row's planned ones. Lets an objective choose a token's loss from the log-probs of earlier
 * rows of the same pass (CUT's detection compares a Misalign row with its Align-N row, packed
 * before it) without a second classifier pass. */
typedef void (*LossDecide)(void *ctx, int i, const double *logprobs, LossKind *kind, float *weight);

typedef struct {
    const int *targets;    /* [N] token id predicted at each position, -1: none */
    const LossKind *kinds; /* [N]; NULL: LOSS_MLE wherever targets[i] >= 0 */
    const float *weights;  /* [N]; NULL: 1 everywhere */
    float ul_min_q;        /* floor of 1 - p for LOSS_UNLIKELIHOOD; <= 0: the default */
    double *logprobs;      /* [N] output (NULL: not wanted): log p(targets[i]) at every
                            * position with a loss term, 0 elsewhere */
    LossDecide decide;     /* NULL: kinds and weights as given; else needs logprobs */
    void *decide_ctx;
} LossSpec;

typedef struct {
    double loss;     /* sum_i weights[i] * l_i */
    double loss_mle; /* the MLE part of it */
    double loss_ul;  /* the unlikelihood part of it */
    int n_mle, n_ul; /* positions of each kind */
    int n_floored;   /* unlikelihood positions where 1 - p fell below ul_min_q */
} LossResult;

/* The loss term of one row of logits (V) and its gradient: returns weight * l for kind and
 * target, writes dlogits (V) = d(weight * l)/d logits (may alias logits), and *logp =
 * log p(target). The unlikelihood gradient is that of -log(1 - p), computed in a form that
 * stays finite as p -> 1, also where the loss is floored: the floor caps the reported loss
 * at -log(min_q) without switching off the push away from a token the model is sure of.
 * *floored (may be NULL) is set to 1 when the floor applied. */
double loss_row(const float *logits, int V, int target, LossKind kind, float weight, float min_q,
                float *dlogits, double *logp, int *floored);

#endif
