/* model.h — a Llama-architecture transformer in fp32, with the options of the other
 * families cutkit reads (ModelArch: Llama 3.x rope scaling, Mistral's sliding window, Qwen2's
 * biases, Qwen3's q/k norms and head_dim, Gemma and Gemma 2).
 *
 * Shapes, as in the comments of model.c: C = dim, H = hidden_dim, L = n_layers,
 * NH = n_heads, NKV = n_kv_heads, hs = head size (C / NH unless the config says otherwise),
 * QD = NH * hs, KV = NKV * hs, V = vocab_size.
 *
 * All parameters live in one contiguous buffer (Model.params) described by a table of named
 * tensors; each per-layer tensor is stored layer-major ([L][out][in]), which is the layout
 * of llama2.c checkpoints. A gradient buffer of the same layout serves the backward pass. */
#ifndef CK_MODEL_H
#define CK_MODEL_H

#include <stddef.h>

#include "model/weight.h"
#include "util/ck_error.h"

struct LoraAdapters; /* lora.h: low-rank adapters that the forward pass may add */

/* How rotary embeddings pair up the dimensions of a head. */
typedef enum {
    ROPE_INTERLEAVED = 0, /* llama2.c / GPT-J: pairs (2i, 2i+1) */
    ROPE_HALF_SPLIT = 1,  /* Hugging Face rotate_half: pairs (i, i + hs/2) */
} RopeStyle;

/* How the rotary frequencies are rescaled for long contexts (transformers' rope_type). */
typedef enum {
    ROPE_SCALING_NONE = 0,   /* "default" */
    ROPE_SCALING_LINEAR = 1, /* every frequency divided by rope_factor */
    ROPE_SCALING_LLAMA3 = 2, /* Llama 3.1: low frequencies / factor, high kept, a smooth band */
} RopeScaling;

/* The FFN's gate activation: act(gate) * up. */
typedef enum {
    ACT_SILU = 0,      /* SwiGLU (Llama, Mistral, Qwen) */
    ACT_GELU_TANH = 1, /* GeGLU with the tanh approximation (gelu_pytorch_tanh: Gemma) */
    ACT_GELU = 2,      /* GeGLU with the exact erf GELU */
} Activation;

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

/* The transformers architecture a model was read as (names its tensors and config.json). */
typedef enum {
    FAMILY_LLAMA = 0, /* LlamaForCausalLM (also Llama 3.x, SmolLM2) */
    FAMILY_MISTRAL,   /* MistralForCausalLM */
    FAMILY_QWEN2,     /* Qwen2ForCausalLM (Qwen 2 and 2.5) */
    FAMILY_QWEN3,     /* Qwen3ForCausalLM */
    FAMILY_GEMMA,     /* GemmaForCausalLM */
    FAMILY_GEMMA2,    /* Gemma2ForCausalLM */
} ModelFamily;

/* The options of the other families (Llama 3.x, Mistral, Qwen2/3, Gemma 1/2) beside
 * ModelConfig; all zero is the Llama-2 architecture. Kept apart from ModelConfig so that
 * code which builds a Llama config field by field stays as it is. */
typedef struct {
    ModelFamily family;
    int head_dim; /* hs; 0: dim / n_heads (Qwen3 and Gemma set it explicitly) */
    RopeScaling rope_scaling;
    float rope_factor;     /* linear and llama3: the context extension factor */
    float rope_low_freq;   /* llama3: low_freq_factor */
    float rope_high_freq;  /* llama3: high_freq_factor */
    int rope_original_len; /* llama3: original_max_position_embeddings */
    int qkv_bias;          /* 1: q, k and v projections add a bias (Qwen2) */
    int qk_norm;           /* 1: RMSNorm over each query and key head before RoPE (Qwen3) */
    int sliding_window;    /* 0: none; else a query sees only the last sliding_window positions */
    int sliding_alternate; /* 1: only even layers slide (Gemma 2); 0: every layer (Mistral) */
    int norm_plus_one;     /* 1: RMSNorms scale by (1 + w) (Gemma) */
    float embed_scale;     /* 0: none; else the embedding is multiplied by it (Gemma: sqrt C) */
    Activation act;        /* the FFN gate activation */
    float attn_scale;      /* 0: 1/sqrt(hs); Gemma 2: query_pre_attn_scalar^-1/2 */
    float attn_softcap;    /* 0: none; else scores s -> cap tanh(s / cap) (Gemma 2) */
    float final_softcap;   /* 0: none; else logits z -> cap tanh(z / cap) (Gemma 2) */
    int sandwich_norms;    /* 1: RMSNorm after attention and after the FFN too (Gemma 2) */
} ModelArch;

typedef enum {
    PARAM_TOKEN_EMBEDDING, /* (V, C) */
    PARAM_RMS_ATT,         /* (L, C) */
    PARAM_WQ,              /* (L, QD, C) */
    PARAM_WK,              /* (L, KV, C) */
    PARAM_WV,              /* (L, KV, C) */
    PARAM_WO,              /* (L, C, QD) */
    PARAM_RMS_FFN,         /* (L, C) */
    PARAM_W1,              /* (L, H, C)  gate_proj */
    PARAM_W2,              /* (L, C, H)  down_proj */
    PARAM_W3,              /* (L, H, C)  up_proj */
    PARAM_RMS_FINAL,       /* (C) */
    PARAM_WCLS,            /* (V, C); empty when the classifier is shared */
    /* the other families' tensors, empty unless the config asks for them: */
    PARAM_BQ,           /* (L, QD) q_proj bias (qkv_bias); QD = NH hs */
    PARAM_BK,           /* (L, KV) */
    PARAM_BV,           /* (L, KV) */
    PARAM_Q_NORM,       /* (L, hs) RMSNorm gain of every query head (qk_norm) */
    PARAM_K_NORM,       /* (L, hs) */
    PARAM_RMS_POST_ATT, /* (L, C) norm of the attention output (sandwich_norms) */
    PARAM_RMS_POST_FFN, /* (L, C) norm of the FFN output (sandwich_norms) */
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
    ModelArch arch; /* the family's options (all zero: Llama 2) */
    ParamTensor tensors[PARAM_COUNT];
    size_t n_params; /* floats in params */
    float *params;   /* the one parameter buffer (owned) */
    float *rope_cos; /* (seq_len, hs/2) rotation tables, derived from the config (owned) */
    float *rope_sin;
    /* Weights held as stored (model_init_held): the matrices (model_param_is_matrix) are not
     * in params but described by weights; norms and biases stay fp32 in params. */
    WeightDtype held;   /* WEIGHT_F32: everything in params (the default) */
    WeightRef *weights; /* (PARAM_COUNT, L) one ref per matrix and layer; NULL when fp32 */
    void *weight_store; /* owned converted matrices (malloc) */
    void *weight_owner; /* what refs may point into, e.g. mapped safetensors shards */
    void (*weight_release)(void *owner); /* releases weight_owner in model_free */
} Model;

/* Checks that a configuration is usable (positive sizes, heads dividing dim, KV heads
 * dividing heads, even head size); fills err with the first problem found. */
int model_config_validate(const ModelConfig *c, CkError *err);

/* model_config_validate with the family options arch (NULL: Llama 2). */
int model_arch_validate(const ModelConfig *c, const ModelArch *arch, CkError *err);

/* Fills the tensor table for config c and returns the total number of floats. */
size_t model_param_layout(const ModelConfig *c, ParamTensor tensors[PARAM_COUNT]);

/* model_param_layout with the family options arch (NULL: Llama 2): biases, head norms and
 * sandwich norms get their tensors, q_proj and o_proj the width of an explicit head_dim. */
size_t model_param_layout_arch(const ModelConfig *c, const ModelArch *arch,
                               ParamTensor tensors[PARAM_COUNT]);

/* Initialises m for config c with a zeroed parameter buffer (caller fills it). */
int model_init(Model *m, const ModelConfig *c, CkError *err);

/* model_init for a model of another family: arch (NULL: Llama 2) is copied into m->arch. */
int model_init_arch(Model *m, const ModelConfig *c, const ModelArch *arch, CkError *err);

/* 1 when m is the Llama-2 architecture (m->arch all zero): what llama2.c checkpoints hold. */
int model_is_llama2(const Model *m);

/* The head size hs (dim / n_heads unless arch.head_dim says otherwise), and the widths of all
 * query heads (QD = NH hs) and all key heads (KV = NKV hs). */
int model_head_dim(const Model *m);
int model_q_dim(const Model *m);
int model_kv_dim(const Model *m);

/* The sliding window of layer l in positions, or 0 when the layer attends to everything. */
int model_layer_window(const Model *m, int l);

/* Releases everything m owns and zeroes it; safe to call twice. */
void model_free(Model *m);

/* Returns a pointer to the slice of tensor id for `layer` (ignored for whole tensors). The
 * classifier of a shared-classifier model is the token embedding. NULL for a matrix of a
 * model whose weights are held as stored (model_weight serves those). */
float *model_param(const Model *m, ParamId id, int layer);

/* 1 for the tensors a model may hold as stored: wq wk wv wo w1 w2 w3, the token embedding and
 * the classifier (every (out, in) matrix); norms and biases are always fp32. */
int model_param_is_matrix(ParamId id);

/* model_init_arch for a model whose matrices are held as `held` (WEIGHT_F32: model_init_arch).
 * params then holds only the fp32 tensors; the caller fills m->weights (one WeightRef per
 * matrix and layer, zeroed here) and sets m->weight_store / weight_owner for what they point
 * into. */
int model_init_held(Model *m, const ModelConfig *c, const ModelArch *arch, WeightDtype held,
                    CkError *err);

/* The slice of matrix id for `layer` as a WeightRef (fp32 models: over model_param). */
WeightRef model_weight(const Model *m, ParamId id, int layer);

/* 0 when m holds fp32 weights; otherwise -1 with err saying "the model is held as bf16;
 * <what> needs --base-dtype f32": every path that reads or writes fp32 weights (full
 * fine-tuning, merging adapters, exporting) asks this before doing anything. */
int model_require_f32(const Model *m, const char *what, CkError *err);

/* "f32", "bf16", "f16" or "int8": the --base-dtype name of a held dtype. */
const char *model_held_name(WeightDtype d);

/* Y (n, out) = X (n, in) · W^T for matrix id of layer l, whatever its dtype. */
void model_project(const Model *m, ParamId id, int l, float *y, const float *x, int n);

/* dX (n, in) (+)= dY (n, out) · W for matrix id of layer l (overwrite: = rather than +=): the
 * input gradient through a matrix of any dtype. */
void model_project_back(const Model *m, ParamId id, int l, float *dx, const float *dy, int n,
                        int overwrite);

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
    float *x;            /* (L, N, C) residual stream entering each layer */
    float *xn_att;       /* (L, N, C) RMSNorm output before attention */
    float *rms_att;      /* (L, N) 1/rms of x */
    float *q;            /* (L, N, QD) after RoPE */
    float *k;            /* (L, N, KV) after RoPE */
    float *v;            /* (L, N, KV) */
    float *att_out;      /* (L, N, QD) attention output before wo */
    float *q_raw;        /* (L, N, QD) q before its head norm (qk_norm only) */
    float *k_raw;        /* (L, N, KV) k before its head norm (qk_norm only) */
    float *rms_q;        /* (L, N, NH) 1/rms of each query head (qk_norm only) */
    float *rms_k;        /* (L, N, NKV) */
    float *att_proj;     /* (L, N, C) wo · att_out before the post-attention norm (sandwich) */
    float *rms_post_att; /* (L, N) */
    float *ffn_proj;     /* (L, N, C) w2 · h_act before the post-FFN norm (sandwich) */
    float *rms_post_ffn; /* (L, N) */
    float *x_mid;        /* (L, N, C) residual after attention */
    float *xn_ffn;       /* (L, N, C) RMSNorm output before the FFN */
    float *rms_ffn;      /* (L, N) */
    float *h_gate;       /* (L, N, H) w1 x */
    float *h_up;         /* (L, N, H) w3 x */
    float *h_act;        /* (L, N, H) act(gate) * up */
    float *att_prob;     /* (L, NH, N, max_keys) softmax rows, kept only for backward */
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
    float *d_res;         /* (N, C) residual stream */
    float *d_xn;          /* (N, C) an RMSNorm output */
    float *d_att;         /* (N, QD) attention output (before wo) */
    float *d_q;           /* (N, QD) */
    float *d_k;           /* (N, KV) */
    float *d_v;           /* (N, KV) */
    float *d_h;           /* (N, H) FFN hidden: h_act, then the gate */
    float *d_h2;          /* (N, H) FFN up projection */
    float *d_stage;       /* (logit_rows, C) classifier input gradient of one block */
    float *d_k_raw;       /* (N, KV) k before its head norm (qk_norm only) */
    float *logits_capped; /* (logit_rows, V) soft-capped logits of one block (final_softcap) */
    double *d_row;        /* (3, logit_rows) loss, log p and floor flag of each row of one block */
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

/* Runs each sequence s of b as the continuation of its own cache caches[s] (positions from
 * caches[s]->len on; its queries attend to that cache and to its own earlier tokens, never to
 * another sequence), appending the new keys/values to caches[s]. Rows of a->xn_final are the
 * packed tokens, as after model_forward. Decodes B independent sequences one token each in one
 * pass over the weights (batched decoding), or prefills several at once. Inference only (LoRA
 * in eval mode). */
int model_forward_cached(const Model *m, Activations *a, const TokenBatch *b,
                         KVCache *const *caches, const struct LoraAdapters *lora, CkError *err);

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

/* Applies the final logit soft cap z -> cap tanh(z / cap) of the config (Gemma 2) to n
 * classifier outputs in place; a no-op for models without one. Every product with the
 * classifier that stands for the model's logits goes through it. */
void model_softcap_logits(const Model *m, float *logits, size_t n);

/* The model's logits of n rows (n, C) of final-norm output: logits (n, V) = classifier ·
 * rows, soft cap included, for a classifier of any dtype. Returns 0, or -1 with err when the
 * product lacked memory (matmul_status). */
int model_logits_rows(const Model *m, const float *rows, int n, float *logits, CkError *err);

/* Writes the classifier output for row `row` of the last forward into logits (V); returns as
 * model_logits_rows. */
int model_logits_row(const Model *m, const Activations *a, int row, float *logits, CkError *err);

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
