/* lora.h — low-rank adapters (LoRA) on the projections of a Model, laid out as in PEFT.
 *
 * A targeted projection y = W x, W (out, in), becomes y = W x + scale · B (A · dropout(x))
 * with A (r, in), B (out, r) and scale = alpha / r. The base weights stay frozen: training
 * touches only A and B. All A and B matrices of all layers live in one contiguous buffer
 * described by a table of named tensors (PEFT names), so an optimizer or a checkpoint writer
 * handles adapters like any other parameter buffer.
 *
 * Modules by their Hugging Face names, and the Model tensors they adapt:
 *   q_proj wq, k_proj wk, v_proj wv, o_proj wo, gate_proj w1, up_proj w3, down_proj w2.
 * A q_proj bias (Qwen2) stays frozen: the adapter adds to the biased output, as in PEFT. */
#ifndef CK_LORA_H
#define CK_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "util/ck_error.h"
#include "model/model.h"
#include "util/rng.h"

typedef enum {
    LORA_Q,    /* q_proj:    C -> QD (QD = n_heads * head size; C unless head_dim is set) */
    LORA_K,    /* k_proj:    C -> KV */
    LORA_V,    /* v_proj:    C -> KV */
    LORA_O,    /* o_proj:    QD -> C */
    LORA_GATE, /* gate_proj: C -> H */
    LORA_UP,   /* up_proj:   C -> H */
    LORA_DOWN, /* down_proj: H -> C */
    LORA_MODULES
} LoraModule;

/* target_mask bit of a module, and all seven */
#define LORA_BIT(mod)   (1u << (mod))
#define LORA_TARGET_ALL ((1u << LORA_MODULES) - 1u)

typedef struct {
    int rank;             /* r */
    float alpha;          /* lora_alpha: the update is scaled by alpha / r */
    float dropout;        /* lora_dropout on the adapter's input, in [0, 1); training only */
    unsigned target_mask; /* LORA_BIT(module) for each adapted module */
} LoraConfig;

/* One A or B matrix. Names are PEFT's, e.g.
 * base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight or
 * base_model.model.model.layers.3.mlp.down_proj.lora_B.weight. */
typedef struct {
    char name[80];
    size_t offset;  /* in floats, from the start of the buffer */
    size_t size;    /* rows * cols */
    int rows, cols; /* A: (r, in); B: (out, r) */
    int layer;
    LoraModule module;
    int is_b; /* 0: lora_A, 1: lora_B */
} LoraTensor;

typedef struct LoraAdapters {
    LoraConfig config;
    float scale;                           /* alpha / rank */
    int n_layers, dim, hidden_dim, kv_dim; /* of the model they were made for */
    int q_dim;                             /* n_heads * head size: q_proj out, o_proj in */
    int n_targets;                         /* adapted modules per layer */
    int slot[LORA_MODULES];                /* index of a module among the adapted ones, or -1 */
    int n_tensors;                         /* 2 * n_layers * n_targets: A then B, layer-major */
    LoraTensor *tensors;                   /* (owned) */
    size_t n_params;                       /* floats in params */
    float *params;                         /* the one buffer of all A and B (owned) */
    Rng dropout_rng; /* draws dropout masks in training forwards; save it to resume */
} LoraAdapters;

/* Returns the Hugging Face name of a module ("q_proj" ...). */
const char *lora_module_name(LoraModule mod);

/* Parses a comma-separated list of module names ("q_proj,v_proj"; spaces allowed; "all"
 * means the seven) into a target mask; an unknown or empty name fails naming it. */
int lora_parse_targets(const char *list, unsigned *mask, CkError *err);

/* Creates adapters for model m as PEFT initialises them: A uniform in ±1/sqrt(in) (Kaiming
 * uniform with a = sqrt(5)) from an Rng seeded with seed, B zero, so the adapted model starts
 * equal to the base; the dropout stream is seeded from the same seed. */
int lora_init(LoraAdapters *ad, const Model *m, const LoraConfig *c, uint64_t seed, CkError *err);

/* Releases everything ad owns and zeroes it; safe to call twice. */
void lora_free(LoraAdapters *ad);

/* Returns A (r, in) or B (out, r) of a module in a layer, or NULL when it is not adapted. */
float *lora_a(const LoraAdapters *ad, int layer, LoraModule mod);
float *lora_b(const LoraAdapters *ad, int layer, LoraModule mod);

/* Returns the tensor of that PEFT name, or NULL. */
const LoraTensor *lora_find(const LoraAdapters *ad, const char *name);

/* Adds scale · B A into every adapted weight of m, so that m alone computes what m with the
 * adapters computed (eval mode); fails if the adapters were made for another shape. */
int lora_merge(Model *m, const LoraAdapters *ad, CkError *err);

/* ---- used by model.c and backward.c ------------------------------------------------------ */

/* Checks that ad fits m and that a has room for its buffers (allocating them on first use:
 * once, not per call); with_masks also reserves the dropout masks of a training forward. */
int lora_prepare(const LoraAdapters *ad, const Model *m, Activations *a, int with_masks,
                 CkError *err);

/* y (n, out) += scale · B (A · dropout(x)) for module mod of layer; x (n, in). Keeps
 * A · dropout(x) in a->lora_u (per layer when a keeps layers) and, when rng is non-NULL and
 * dropout > 0, draws the dropout mask from rng into a->lora_mask. No-op when not adapted. */
void lora_forward(const LoraAdapters *ad, Activations *a, int layer, LoraModule mod, float *y,
                  const float *x, int n, Rng *rng);

/* Backward of lora_forward in the last training forward: with dy (n, out) the gradient of y
 * and x (n, in) the module's input, accumulates dA and dB into grads (the adapters' layout;
 * NULL: skipped) and the adapter's share of the input gradient, through the dropout, into
 * dx (n, in; NULL: skipped). No-op when the module is not adapted. */
void lora_backward(const LoraAdapters *ad, Activations *a, int layer, LoraModule mod, float *dx,
                   const float *dy, const float *x, int n, float *grads);

#endif
