/* backward.h — the backward pass: gradients of a token-level loss (loss.h) with respect to
 * the model's parameters and/or LoRA adapters.
 *
 * Gradients live in float buffers with exactly the layout of the parameters they belong to
 * (Model.tensors offsets, n_params floats; LoraAdapters.tensors, n_params floats). The
 * backward ACCUMULATES into them, so gradient accumulation over micro-batches is several
 * forward+backward calls; the caller zeroes the buffers once per optimizer step. */
#ifndef CK_BACKWARD_H
#define CK_BACKWARD_H

#include "util/ck_error.h"
#include "model/lora.h"
#include "model/loss.h"
#include "model/model.h"

/* Differentiates the loss over the last model_forward_train of a (same model, batch b and
 * adapters): accumulates base gradients into grads (NULL: the base is frozen and none of
 * its gradients is computed) and adapter gradients into lora_grads (NULL: none), and fills
 * out with the loss. The classifier and the loss run fused, block by block, so the (N, V)
 * logits never exist at once. With both gradient buffers NULL it only computes the loss. */
int model_backward(const Model *m, Activations *a, const TokenBatch *b, const LossSpec *loss,
                   float *grads, const LoraAdapters *lora, float *lora_grads, LossResult *out,
                   CkError *err);

/* One training micro-step: model_forward_train then model_backward (see both). */
int model_forward_backward(const Model *m, Activations *a, const TokenBatch *b,
                           const LossSpec *loss, float *grads, LoraAdapters *lora,
                           float *lora_grads, LossResult *out, CkError *err);

#endif
