/* model.h — a Llama-architecture transformer in fp32.
 *
 * Shapes, as in the comments of model.c: C = dim, H = hidden_dim, L = n_layers,
 * NH = n_heads, NKV = n_kv_heads, hs = C / NH, KV = NKV * hs, V = vocab_size.
 *
 * All parameters live in one contiguous buffer (Model.params) described by a table of named
 * tensors; each per-layer tensor is stored layer-major ([L][out][in]), which is the layout
 * of llama2.c checkpoints. A gradient buffer of the same layout serves the backward pass. */
#ifndef CK_MODEL_H
#define CK_MODEL_H

#include <stddef.h>

#include "util/ck_error.h"

struct LoraAdapters; /* lora.h: low-rank adapters that the forward pass may add */

/* How rotary embeddings pair up the dimensions of a head. */
typedef enum {
    ROPE_INTERLEAVED = 0, /* llama2.c / GPT-J: pairs (2i, 2i+1) */
    ROPE_HALF_SPLIT = 1,  /* Hugging Face rotate_half: pairs (i, i + hs/2) */
} RopeStyle;

typedef struct {
    int dim;               /* C */
    int hidden_dim;        /* H */
    int n_layers;          /* L */
    int n_heads;           /* NH */
    int n_kv_heads;        /* NKV */
    int vocab_size;        /* V */
    int seq_len;           /* maximum number of positions */
    float norm_eps;        /* RMSNorm epsilon (1e-5 for llama2.c) */
    float rope_theta;      /* RoPE base (10000 for llama2.c) */
    RopeStyle rope_style;  /* which dimensions RoPE rotates together */
    int shared_classifier; /* 1: the classifier is the token embedding */
} ModelConfig;

typedef enum {
    PARAM_TOKEN_EMBEDDING, /* (V, C) */
    PARAM_RMS_ATT,         /* (L, C) */
    PARAM_WQ,              /* (L, C, C) */
    PARAM_WK,              /* (L, KV, C) */
    PARAM_WV,              /* (L, KV, C) */
    PARAM_WO,              /* (L, C, C) */
    PARAM_RMS_FFN,         /* (L, C) */
    PARAM_W1,              /* (L, H, C)  gate_proj */
    PARAM_W2,              /* (L, C, H)  down_proj */
    PARAM_W3,              /* (L, H, C)  up_proj */
    PARAM_RMS_FINAL,       /* (C) */
    PARAM_WCLS,            /* (V, C); empty when the classifier is shared */
    PARAM_COUNT
} ParamId;

typedef struct {
    const char *name; /* llama2.c-style name, e.g. "wq" */
    size_t offset;    /* in floats, from the start of the buffer */
    size_t size;      /* in floats, over all layers */
    int per_layer;    /* 1 when the first dimension is the layer */
    int rank;         /* number of dims in shape (excluding the layer dimension) */
    int shape[2];     /* per-layer (or whole) shape */
} ParamTensor;

typedef struct {
    ModelConfig config;
    ParamTensor tensors[PARAM_COUNT];
    size_t n_params; /* floats in params */
    float *params;   /* the one parameter buffer (owned) */
    float *rope_cos; /* (seq_len, hs/2) rotation tables, derived from the config (owned) */
    float *rope_sin;
} Model;

/* Checks that a configuration is usable (positive sizes, heads dividing dim, KV heads
 * dividing heads, even head size); fills err with the first problem found. */
int model_config_validate(const ModelConfig *c, CkError *err);

/* Fills the tensor table for config c and returns the total number of floats. */
size_t model_param_layout(const ModelConfig *c, ParamTensor tensors[PARAM_COUNT]);

/* Initialises m for config c with a zeroed parameter buffer (caller fills it). */
int model_init(Model *m, const ModelConfig *c, CkError *err);

/* Releases everything m owns and zeroes it; safe to call twice. */
void model_free(Model *m);

/* Returns a pointer to the slice of tensor id for `layer` (ignored for whole tensors). The
 * classifier of a shared-classifier model is the token embedding. */
float *model_param(const Model *m, ParamId id, int layer);

/* Number of parameters that multiply activations (for FLOP counts): excludes the token
 * embedding lookup and norms, includes the classifier. */
size_t model_matmul_params(const ModelConfig *c);

/* A batch of token sequences packed end to end: sequence s is
 * tokens[offsets[s] .. offsets[s+1]). */
typedef struct {
    int n_seqs;
    const int *offsets; /* [n_seqs + 1], offsets[0] == 0 */
    const int *tokens;  /* [offsets[n_seqs]] */
} TokenBatch;

/* Keys and values of earlier positions of one sequence, for generation and prefix reuse. */
typedef struct {
    int capacity; /* positions it can hold (<= seq_len) */
    int len;      /* positions filled */
    int kv_dim;
    int n_layers;
    float *k; /* (L, capacity, KV) */
    float *v; /* (L, capacity, KV) */
} KVCache;

/* Allocates a cache for `capacity` positions of model m (capacity <= seq_len). */
int kvcache_init(KVCache *c, const Model *m, int capacity, CkError *err);

/* Releases the cache's memory and zeroes it. */
void kvcache_free(KVCache *c);

/* Activations of one forward pass over up to max_tokens packed positions. With
 * keep_per_layer, every layer's activations are kept for the backward pass (and the
 * backward's working buffers are allocated); otherwise one set of buffers is reused by all
 * layers. */
typedef struct {
    int max_tokens;     /* N: positions of one batch, summed over sequences */
    int max_keys;       /* longest key range one query attends to (<= seq_len) */
    int keep_per_layer; /* 1: per-layer copies for backward */
    int n_threads;      /* attention scratch slots */
    int n_tokens;       /* positions of the last forward */
    int trained;        /* 1: the last forward was model_forward_train (backward may follow) */
    int *positions;     /* (N) position of each packed token in its sequence, last forward */
    /* per layer (stride 0 when !keep_per_layer): */
    float *x;        /* (L, N, C) residual stream entering each layer */
    float *xn_att;   /* (L, N, C) RMSNorm output before attention */
    float *rms_att;  /* (L, N) 1/rms of x */
    float *q;        /* (L, N, C) after RoPE */
    float *k;        /* (L, N, KV) after RoPE */
    float *v;        /* (L, N, KV) */
    float *att_out;  /* (L, N, C) attention output before wo */
    float *x_mid;    /* (L, N, C) residual after attention */
    float *xn_ffn;   /* (L, N, C) RMSNorm output before the FFN */
    float *rms_ffn;  /* (L, N) */
    float *h_gate;   /* (L, N, H) w1 x */
    float *h_up;     /* (L, N, H) w3 x */
    float *h_act;    /* (L, N, H) silu(gate) * up */
    float *att_prob; /* (L, NH, N, max_keys) softmax rows, kept only for backward */
    /* whole-pass buffers: */
    float *x_out;     /* (N, C) residual after the last layer */
    float *xn_final;  /* (N, C) final RMSNorm output: the classifier's input */
    float *rms_final; /* (N) */
    float *scratch;   /* (n_threads, N-or-max-query-block, max_keys) attention scores */
    float *logits;    /* (logit_rows, V) a block of classifier outputs (or their gradient) */
    float *stage;     /* (logit_rows, C) classifier input rows gathered for one block */
    int *block_rows;  /* (logit_rows) packed position of each row of the block */
    int logit_rows;
    /* backward working buffers (keep_per_layer only), each the gradient of the loss with
     * respect to the activation named: */
    float *d_res;   /* (N, C) residual stream */
    float *d_xn;    /* (N, C) an RMSNorm output */
    float *d_att;   /* (N, C) attention output (before wo) */
    float *d_q;     /* (N, C) */
    float *d_k;     /* (N, KV) */
    float *d_v;     /* (N, KV) */
    float *d_h;     /* (N, H) FFN hidden: h_act, then the gate */
    float *d_h2;    /* (N, H) FFN up projection */
    float *d_stage; /* (logit_rows, C) classifier input gradient of one block */
    double *d_row;  /* (3, logit_rows) loss, log p and floor flag of each row of one block */
    /* LoRA (allocated by the first forward with adapters, freed by activations_free): */
    float *lora_u;            /* (L, targets, N, r) A · dropout(x) of each adapted projection */
    unsigned char *lora_mask; /* (L, targets, N, max(C, H)) dropout keep-masks (training) */
    float *lora_x;            /* (N, max(C, H)) dropped-out input or its gradient, scratch */
    float *lora_du;           /* (N, r) gradient of lora_u, scratch */
    size_t lora_u_size, lora_mask_size, lora_x_size, lora_du_size; /* allocated elements */
} Activations;

/* Allocates activations for batches of up to max_tokens positions whose sequences attend
 * to at most max_keys positions each. */
int activations_init(Activations *a, const Model *m, int max_tokens, int max_keys,
                     int keep_per_layer, CkError *err);

/* Releases the activations' memory and zeroes the struct. */
void activations_free(Activations *a);

/* Runs the transformer over a packed batch up to the final RMSNorm (a->xn_final). With a
 * cache, the batch must hold one sequence: its positions continue at cache->len, attention
 * also sees the cached positions, and the new keys/values are appended to the cache. With
 * lora (NULL: none) every adapted projection adds its low-rank update, in eval mode (no
 * dropout); the first such call allocates the adapters' buffers in a. */
int model_forward(const Model *m, Activations *a, const TokenBatch *b, KVCache *cache,
                  const struct LoraAdapters *lora, CkError *err);

/* Runs the sequences of b as branches that all continue the first prefix_len positions of
 * prefix (a cache filled by model_forward, read-only here and shared): sequence s's tokens
 * take positions prefix_len.., and its queries attend to the prefix's keys and values plus its
 * own earlier tokens, never to another branch. All branches' tokens go through each projection
 * together (one product per weight), so n continuations of one context cost one pass; rows of
 * a->xn_final are the packed branch tokens, as after model_forward (model_logprobs applies).
 * Inference only (LoRA in eval mode, as model_forward); prefix_len 0 is a plain forward. */
int model_forward_branches(const Model *m, Activations *a, const KVCache *prefix, int prefix_len,
                           const TokenBatch *b, const struct LoraAdapters *lora, CkError *err);

/* model_forward of a prefix into a cache followed by model_forward_branches, in one pass over
 * the weights: sequence 0 of b is the prefix (positions 0..), every other sequence a branch
 * that continues it (positions from the prefix's length on), attending to the prefix and to
 * its own earlier tokens only. Rows of a->xn_final are the packed tokens, prefix first.
 * Inference only; with one sequence it is model_forward. */
int model_forward_tree(const Model *m, Activations *a, const TokenBatch *b,
                       const struct LoraAdapters *lora, CkError *err);

/* The forward pass of training, which model_backward (backward.h) differentiates: needs
 * activations with keep_per_layer; LoRA is in training mode, i.e. its dropout masks are
 * drawn from lora->dropout_rng (which advances) and kept for the backward. */
int model_forward_train(const Model *m, Activations *a, const TokenBatch *b,
                        struct LoraAdapters *lora, CkError *err);

/* Rotates each head of vec (n positions of n_heads * hs) in place by the rotary angles of its
 * position (positions[i]); inverse rotates by the negated angles, which is RoPE's backward. */
void model_rope_rotate(const Model *m, float *vec, const int *positions, int n, int n_heads,
                       int inverse);

/* Writes the classifier output for row `row` of the last forward into logits (V). */
void model_logits_row(const Model *m, const Activations *a, int row, float *logits);

/* Classifier and log-softmax over the rows of the last forward: for each packed position i
 * with targets[i] >= 0, writes logprobs[i] = log p(targets[i] | its sequence up to i);
 * positions with targets[i] < 0 get 0. Only rows with a target pass through the classifier. */
int model_logprobs(const Model *m, Activations *a, const int *targets, double *logprobs,
                   CkError *err);

/* Teacher forcing: for each packed position i with targets[i] >= 0, writes
 * logprobs[i] = log p(targets[i] | tokens of its sequence up to and including i), computed
 * with max-subtraction and double accumulation; positions with targets[i] < 0 get 0. */
int model_score(const Model *m, Activations *a, const TokenBatch *b, const int *targets,
                double *logprobs, CkError *err);

/* Convenience for the common case: scores every sequence against its own next tokens
 * (targets = tokens shifted by one, none after the last) and writes each sequence's summed
 * log-probability to seq_sums[s] and its number of predicted tokens to seq_counts[s]. */
int model_score_sequences(const Model *m, Activations *a, const TokenBatch *b, double *seq_sums,
                          int *seq_counts, CkError *err);

#endif
