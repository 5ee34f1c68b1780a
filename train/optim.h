/* optim.h — AdamW over one flat float buffer, gradient-norm clipping and finiteness checks.
 *
 * The model's parameters (model.h) and LoRA's adapters (lora.h) each live in one contiguous
 * buffer, so the optimizer sees params, grads and its moments m and v as four arrays of n
 * floats. One update follows torch.optim.AdamW (torch 1.13, the default single-tensor path)
 * operation for operation, each in fp32 with the scalars computed in double as Python does:
 *
 *   t  = t + 1
 *   p  = p * (1 - lr * wd)                               decoupled decay, applied first
 *   m  = m * b1 + (1 - b1) * g
 *   v  = v * b2 + (1 - b2) * g * g
 *   p  = p + (-lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * so eps is added to sqrt(v̂), not to v̂, and not before the bias correction.
 *
 * Weight decay: by default every parameter is decayed, like torch's single default parameter
 * group. Hugging Face's Trainer instead puts norm weights and biases in a group without decay;
 * adamw_set_decay / adamw_exclude_norms reproduce that (Llama has no biases).
 *
 * Determinism: elementwise loops are OpenMP `schedule(static)`; reductions (the gradient norm)
 * sum fixed chunks in a fixed order, so results do not depend on the thread count at all. */
#ifndef CK_OPTIM_H
#define CK_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "util/ck_error.h"
#include "model/lora.h"
#include "model/model.h"

typedef struct {
    double beta1;        /* 0.9 */
    double beta2;        /* 0.999 */
    double eps;          /* 1e-8 */
    double weight_decay; /* 0.01, torch.optim.AdamW's default */
} AdamWConfig;

/* A range [begin, end) of the buffer and whether weight decay applies to it. */
typedef struct {
    size_t begin, end;
    int decay;
} AdamWSegment;

typedef struct {
    AdamWConfig config;
    size_t n;     /* floats in params, grads, m and v */
    int64_t step; /* updates taken (torch's state["step"]); bias correction uses it */
    float *m;     /* (n) first moment (owned) */
    float *v;     /* (n) second moment (owned) */
    size_t n_segments;
    AdamWSegment *segments; /* cover [0, n) in order, adjacent ones differ in decay (owned) */
} AdamW;

/* Returns torch.optim.AdamW's defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0.01. */
AdamWConfig adamw_config_default(void);

/* Checks that betas lie in [0, 1), eps > 0 and weight_decay >= 0 (all finite). */
int adamw_config_validate(const AdamWConfig *c, CkError *err);

/* Initialises opt for a buffer of n floats with zero moments, step 0, decay everywhere. */
int adamw_init(AdamW *opt, size_t n, const AdamWConfig *c, CkError *err);

/* Releases the moments and the segment table and zeroes opt; safe to call twice. */
void adamw_free(AdamW *opt);

/* Sets whether weight decay applies to floats [offset, offset + size) of the buffer. */
int adamw_set_decay(AdamW *opt, size_t offset, size_t size, int decay, CkError *err);

/* Excludes the RMSNorm weights of m from weight decay (what Hugging Face's Trainer does), and
 * the token embedding too when embeddings_too; opt must be sized for m's buffer. */
int adamw_exclude_norms(AdamW *opt, const Model *m, int embeddings_too, CkError *err);

/* Returns 1 when float i of the buffer is decayed, 0 when not. */
int adamw_decays(const AdamW *opt, size_t i);

/* Takes one AdamW step with learning rate lr (>= 0, finite) on params from grads, both n
 * floats; the step counter advances first, as in torch. */
int adamw_step(AdamW *opt, float *params, const float *grads, double lr, CkError *err);

/* ---- gradients ------------------------------------------------------------------------ */

/* Returns the L2 norm of x (n floats), accumulated in double; not finite iff some x[i] is not
 * finite. */
double optim_grad_norm(const float *x, size_t n);

/* Clips like torch.nn.utils.clip_grad_norm_: computes the norm as optim_grad_norm, and when
 * max_norm / (norm + 1e-6) < 1 multiplies every gradient by that coefficient. Returns the norm
 * before clipping. A non-finite norm leaves the gradients untouched, so that the caller can
 * still find and name the culprit (optim_check_finite) rather than see NaN everywhere. */
double optim_clip_grad_norm(float *grads, size_t n, double max_norm);

/* Multiplies x (n floats) by s, e.g. to average gradients accumulated over micro-batches. */
void optim_scale(float *x, size_t n, float s);

/* Returns the index of the first NaN or infinity in x, or n when all n floats are finite. */
size_t optim_first_nonfinite(const float *x, size_t n);

/* Names the element at index of a parameter buffer into buf, e.g.
 * "model.layers.3.self_attn.q_proj.weight, element 17". */
typedef void (*OptimNameFn)(const void *ctx, size_t index, char *buf, size_t size);

/* An OptimNameFn for a Model's buffer: ctx is a const Model *; names are Hugging Face's. */
void optim_name_model(const void *ctx, size_t index, char *buf, size_t size);

/* An OptimNameFn for a LoraAdapters buffer: ctx is a const LoraAdapters *; names are PEFT's. */
void optim_name_lora(const void *ctx, size_t index, char *buf, size_t size);

/* One entry of a name table for buffers that are neither a Model nor adapters. */
typedef struct {
    const char *name;
    size_t offset, size; /* in floats */
} OptimTensorName;

typedef struct {
    const OptimTensorName *tensors;
    size_t count;
} OptimNameTable;

/* An OptimNameFn over a table: ctx is a const OptimNameTable *. */
void optim_name_table(const void *ctx, size_t index, char *buf, size_t size);

/* Fails when some of the n floats of x are NaN or infinite, with a message naming the step,
 * what x is (e.g. "gradient"), the value and, through name(ctx, ...) when name is non-NULL,
 * the tensor of the first such element: "step 12: gradient is nan at index 4711
 * (model.layers.1.self_attn.k_proj.weight, element 35)". Returns 0 when all are finite. */
int optim_check_finite(const float *x, size_t n, const char *what, int64_t step, OptimNameFn name,
                       const void *ctx, CkError *err);

#endif
