/* model.c — parameters, activations and the forward pass of a Llama-architecture network
 * and of the other families' options (ModelArch; each is a no-op at its zero value).
 *
 * Read top to bottom: the parameter table, the building blocks (RMSNorm, RoPE, attention,
 * SwiGLU), the forward pass over a packed batch, then scoring. Every block takes all N
 * packed positions at once, so the projections are matrix-matrix products (matmul.c);
 * attention is done per (sequence, head) pair, in parallel over those pairs. Adapted
 * projections add their LoRA update (lora.c) right after the base product; a training
 * forward keeps every layer's activations for the backward pass (backward.c). */
#include "model/model.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/attention.h"
#include "model/lora.h"
#include "model/fastmath.h"
#include "model/matmul.h"
#include "model/simd.h"
#include "util/hugebuf.h"
#include "util/threads.h"

/* ---------------------------------------------------------------------------------------- */
/* configuration and parameter table */

/* The head size of config c with family options ar. */
static int arch_head_dim(const ModelConfig *c, const ModelArch *ar) {
    return ar->head_dim > 0 ? ar->head_dim : c->dim / c->n_heads;
}

int model_head_dim(const Model *m) {
    return arch_head_dim(&m->config, &m->arch);
}

int model_is_llama2(const Model *m) {
    const ModelArch llama = {0};
    return memcmp(&m->arch, &llama, sizeof llama) == 0;
}

int model_q_dim(const Model *m) {
    return m->config.n_heads * model_head_dim(m);
}

int model_kv_dim(const Model *m) {
    return m->config.n_kv_heads * model_head_dim(m);
}

int model_layer_window(const Model *m, int l) {
    if (m->arch.sliding_window <= 0 || (m->arch.sliding_alternate && l % 2 != 0)) return 0;
    return m->arch.sliding_window;
}

/* The checks of every config, in the order of their messages: positive sizes, heads that
 * divide dim (unless the family sets head_dim) and that KV heads divide, an even head size,
 * plausible sizes, positive epsilon and theta. */
static int config_validate_sizes(const ModelConfig *c, const ModelArch *ar, CkError *err) {
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->vocab_size <= 0 || c->seq_len <= 0)
        return ck_fail(err,
                       "non-positive dimension in config (dim %d, hidden_dim %d, n_layers %d, "
                       "n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d)",
                       c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size,
                       c->seq_len);
    if (ar->head_dim < 0 || ar->head_dim > 4096)
        return ck_fail(err, "head_dim %d outside 0..4096", ar->head_dim);
    if (ar->head_dim == 0 && c->dim % c->n_heads != 0)
        return ck_fail(err, "n_heads %d does not divide dim %d", c->n_heads, c->dim);
    if (c->n_heads % c->n_kv_heads != 0)
        return ck_fail(err, "n_kv_heads %d does not divide n_heads %d", c->n_kv_heads, c->n_heads);
    const int hs = arch_head_dim(c, ar);
    if (hs % 2 != 0) return ck_fail(err, "head size %d is odd; rotary embeddings need pairs", hs);
    /* Refuse sizes whose buffers would overflow an int index or be absurd for fp32 on CPU. */
    if (c->dim > 65536 || c->hidden_dim > 262144 || c->n_layers > 1024 || c->vocab_size > 4194304 ||
        c->seq_len > 1048576 || (int64_t)hs * c->n_heads > 262144)
        return ck_fail(err,
                       "implausibly large config (dim %d, hidden_dim %d, n_layers %d, "
                       "vocab_size %d, seq_len %d)",
                       c->dim, c->hidden_dim, c->n_layers, c->vocab_size, c->seq_len);
    if (!(c->norm_eps > 0.0f) || !(c->rope_theta > 0.0f))
        return ck_fail(err, "norm_eps and rope_theta must be positive");
    return 0;
}

/* The family options: values the math accepts. */
static int arch_validate_options(const ModelArch *ar, CkError *err) {
    if (ar->rope_scaling != ROPE_SCALING_NONE && ar->rope_scaling != ROPE_SCALING_LINEAR &&
        ar->rope_scaling != ROPE_SCALING_LLAMA3)
        return ck_fail(err, "unknown rope scaling %d", (int)ar->rope_scaling);
    if (ar->rope_scaling != ROPE_SCALING_NONE && !(ar->rope_factor > 0.0f))
        return ck_fail(err, "rope scaling factor %g must be positive", ar->rope_factor);
    if (ar->rope_scaling == ROPE_SCALING_LLAMA3 &&
        (!(ar->rope_low_freq > 0.0f) || !(ar->rope_high_freq > ar->rope_low_freq) ||
         ar->rope_original_len <= 0))
        return ck_fail(err,
                       "llama3 rope scaling needs 0 < low_freq_factor (%g) < high_freq_factor "
                       "(%g) and a positive original_max_position_embeddings (%d)",
                       ar->rope_low_freq, ar->rope_high_freq, ar->rope_original_len);
    if (ar->sliding_window < 0)
        return ck_fail(err, "sliding window %d is negative", ar->sliding_window);
    if (ar->act != ACT_SILU && ar->act != ACT_GELU_TANH && ar->act != ACT_GELU)
        return ck_fail(err, "unknown activation %d", (int)ar->act);
    if (!(ar->embed_scale >= 0.0f) || !(ar->attn_scale >= 0.0f) || !(ar->attn_softcap >= 0.0f) ||
        !(ar->final_softcap >= 0.0f))
        return ck_fail(err, "embed_scale, attn_scale and the soft caps must be >= 0");
    return 0;
}

int model_config_validate(const ModelConfig *c, CkError *err) {
    return model_arch_validate(c, NULL, err);
}

int model_arch_validate(const ModelConfig *c, const ModelArch *arch, CkError *err) {
    const ModelArch llama = {0};
    if (!arch) arch = &llama;
    if (config_validate_sizes(c, arch, err) != 0) return -1;
    return arch_validate_options(arch, err);
}

size_t model_param_layout(const ModelConfig *c, ParamTensor t[PARAM_COUNT]) {
    return model_param_layout_arch(c, NULL, t);
}

size_t model_param_layout_arch(const ModelConfig *c, const ModelArch *arch,
                               ParamTensor t[PARAM_COUNT]) {
    const ModelArch llama = {0};
    const ModelArch *ar = arch ? arch : &llama;
    const int C = c->dim, H = c->hidden_dim, L = c->n_layers, V = c->vocab_size;
    const int hs = arch_head_dim(c, ar), QD = c->n_heads * hs, KV = c->n_kv_heads * hs;
    /* name, per-layer, rows, cols (cols 0: a vector) */
    static const char *names[PARAM_COUNT] = {"token_embedding",
                                             "rms_att",
                                             "wq",
                                             "wk",
                                             "wv",
                                             "wo",
                                             "rms_ffn",
                                             "w1",
                                             "w2",
                                             "w3",
                                             "rms_final",
                                             "wcls",
                                             "bq",
                                             "bk",
                                             "bv",
                                             "q_norm",
                                             "k_norm",
                                             "rms_post_att",
                                             "rms_post_ffn"};
    const int per_layer[PARAM_COUNT] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1};
    const int rows[PARAM_COUNT] = {V, C, QD, KV, KV, C, C, H, C, H, C, V, QD, KV, KV, hs, hs, C, C};
    const int cols[PARAM_COUNT] = {C, 0, C, C, C, QD, 0, C, H, C, 0, C, 0, 0, 0, 0, 0, 0, 0};
    /* tensors present only with their option */
    int absent[PARAM_COUNT] = {0};
    absent[PARAM_WCLS] = c->shared_classifier;
    absent[PARAM_BQ] = absent[PARAM_BK] = absent[PARAM_BV] = !ar->qkv_bias;
    absent[PARAM_Q_NORM] = absent[PARAM_K_NORM] = !ar->qk_norm;
    absent[PARAM_RMS_POST_ATT] = absent[PARAM_RMS_POST_FFN] = !ar->sandwich_norms;
    size_t offset = 0;
    for (int i = 0; i < PARAM_COUNT; i++) {
        size_t per = (size_t)rows[i] * (cols[i] ? (size_t)cols[i] : 1);
        size_t size = per * (per_layer[i] ? (size_t)L : 1);
        if (absent[i]) size = 0;
        t[i].name = names[i];
        t[i].offset = offset;
        t[i].size = size;
        t[i].per_layer = per_layer[i];
        t[i].rank = cols[i] ? 2 : 1;
        t[i].shape[0] = rows[i];
        t[i].shape[1] = cols[i];
        offset += size;
    }
    return offset;
}

/* The rotary frequency of pair i, theta^(-2i/hs), rescaled as the config asks: linear divides
 * it by the factor; llama3 (transformers' _compute_llama3_parameters) divides the frequencies
 * whose wavelength exceeds original_len / low_freq_factor, keeps those below original_len /
 * high_freq_factor, and between the two interpolates between freq / factor and freq by
 * s = (original_len / wavelength - low) / (high - low). In fp32, as transformers computes it. */
static float rope_frequency(const Model *m, int i, int hs) {
    const ModelConfig *c = &m->config;
    float freq = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)hs);
    if (m->arch.rope_scaling == ROPE_SCALING_LINEAR) return freq / m->arch.rope_factor;
    if (m->arch.rope_scaling != ROPE_SCALING_LLAMA3) return freq;
    const float pi = 3.14159265358979323846f, old_len = (float)m->arch.rope_original_len;
    const float low = m->arch.rope_low_freq, high = m->arch.rope_high_freq,
                factor = m->arch.rope_factor;
    const float wavelen = 2.0f * pi / freq;
    if (wavelen < old_len / high) return freq;
    if (wavelen > old_len / low) return freq / factor;
    const float smooth = (old_len / wavelen - low) / (high - low);
    return (1.0f - smooth) * freq / factor + smooth * freq;
}

/* Precomputes cos/sin of position * frequency for every position and pair index; the
 * frequency of pair i (rope_frequency) is the same under both pairing conventions. */
static int rope_tables_init(Model *m, CkError *err) {
    const ModelConfig *c = &m->config;
    const int hs = model_head_dim(m), half = hs / 2;
    m->rope_cos = malloc((size_t)c->seq_len * half * sizeof(float));
    m->rope_sin = malloc((size_t)c->seq_len * half * sizeof(float));
    if (!m->rope_cos || !m->rope_sin) return ck_fail(err, "out of memory for RoPE tables");
    for (int pos = 0; pos < c->seq_len; pos++) {
        for (int i = 0; i < half; i++) {
            /* fp32 frequency and angle, as llama2.c and Hugging Face compute them. */
            float freq = rope_frequency(m, i, hs);
            float angle = (float)pos * freq;
            m->rope_cos[(size_t)pos * half + i] = cosf(angle);
            m->rope_sin[(size_t)pos * half + i] = sinf(angle);
        }
    }
    return 0;
}

int model_init(Model *m, const ModelConfig *c, CkError *err) {
    return model_init_arch(m, c, NULL, err);
}

int model_init_arch(Model *m, const ModelConfig *c, const ModelArch *arch, CkError *err) {
    memset(m, 0, sizeof *m);
    if (model_arch_validate(c, arch, err) != 0) return -1;
    m->config = *c;
    if (arch) m->arch = *arch;
    m->n_params = model_param_layout_arch(c, arch, m->tensors);
    m->params = hugebuf_calloc(m->n_params, sizeof(float));
    if (!m->params) {
        ck_fail(err, "out of memory for %zu parameters", m->n_params);
        model_free(m);
        return -1;
    }
    if (rope_tables_init(m, err) != 0) {
        model_free(m);
        return -1;
    }
    return 0;
}

int model_param_is_matrix(ParamId id) {
    switch (id) {
    case PARAM_TOKEN_EMBEDDING:
    case PARAM_WQ:
    case PARAM_WK:
    case PARAM_WV:
    case PARAM_WO:
    case PARAM_W1:
    case PARAM_W2:
    case PARAM_W3:
    case PARAM_WCLS:
        return 1;
    default:
        return 0;
    }
}

/* Lays params out for the fp32 tensors only (the matrices live in m->weights): the offsets of
 * the others are packed, so a 7B model's params is a few megabytes. */
static size_t pack_fp32_tensors(ParamTensor t[PARAM_COUNT]) {
    size_t offset = 0;
    for (int id = 0; id < PARAM_COUNT; id++) {
        if (model_param_is_matrix((ParamId)id)) {
            t[id].offset = 0;
            continue;
        }
        t[id].offset = offset;
        offset += t[id].size;
    }
    return offset;
}

int model_init_held(Model *m, const ModelConfig *c, const ModelArch *arch, WeightDtype held,
                    CkError *err) {
    if (held == WEIGHT_F32) return model_init_arch(m, c, arch, err);
    memset(m, 0, sizeof *m);
    if (model_arch_validate(c, arch, err) != 0) return -1;
    m->config = *c;
    if (arch) m->arch = *arch;
    m->held = held;
    model_param_layout_arch(c, arch, m->tensors);
    m->n_params = pack_fp32_tensors(m->tensors);
    m->params = hugebuf_calloc(m->n_params > 0 ? m->n_params : 1, sizeof(float));
    m->weights = calloc((size_t)PARAM_COUNT * c->n_layers, sizeof(WeightRef));
    if (!m->params || !m->weights) {
        model_free(m);
        return ck_fail(err, "out of memory for the model's tables");
    }
    if (rope_tables_init(m, err) != 0) {
        model_free(m);
        return -1;
    }
    return 0;
}

void model_free(Model *m) {
    if (!m) return;
    free(m->params);
    free(m->rope_cos);
    free(m->rope_sin);
    free(m->weights);
    free(m->weight_store);
    if (m->weight_release) m->weight_release(m->weight_owner);
    memset(m, 0, sizeof *m);
}

WeightRef model_weight(const Model *m, ParamId id, int layer) {
    if (id == PARAM_WCLS && m->config.shared_classifier) id = PARAM_TOKEN_EMBEDDING;
    if (!m->weights || !model_param_is_matrix(id)) return weight_f32(model_param(m, id, layer));
    const int l = m->tensors[id].per_layer ? layer : 0;
    return m->weights[(size_t)id * m->config.n_layers + l];
}

const char *model_held_name(WeightDtype d) {
    return d == WEIGHT_Q8 ? "int8" : weight_dtype_name(d);
}

int model_require_f32(const Model *m, const char *what, CkError *err) {
    if (m->held == WEIGHT_F32) return 0;
    return ck_fail(err, "the model is held as %s; %s needs --base-dtype f32",
                   model_held_name(m->held), what);
}

/* (out, in) of matrix id: its per-layer (or whole) shape. */
static void matrix_shape(const Model *m, ParamId id, int *in, int *out) {
    if (id == PARAM_WCLS && m->config.shared_classifier) id = PARAM_TOKEN_EMBEDDING;
    *out = m->tensors[id].shape[0];
    *in = m->tensors[id].shape[1];
}

void model_project(const Model *m, ParamId id, int l, float *y, const float *x, int n) {
    int in, out;
    matrix_shape(m, id, &in, &out);
    if (!m->weights) {
        matmul_forward(y, x, model_param(m, id, l), n, in, out);
        return;
    }
    WeightRef w = model_weight(m, id, l);
    matmul_forward_w(y, x, &w, n, in, out);
}

void model_project_back(const Model *m, ParamId id, int l, float *dx, const float *dy, int n,
                        int overwrite) {
    int in, out;
    matrix_shape(m, id, &in, &out);
    if (!m->weights) {
        if (overwrite)
            matmul_backward_input_overwrite(dx, dy, model_param(m, id, l), n, in, out);
        else
            matmul_backward_input(dx, dy, model_param(m, id, l), n, in, out);
        return;
    }
    if (overwrite) memset(dx, 0, (size_t)n * in * sizeof(float));
    WeightRef w = model_weight(m, id, l);
    matmul_backward_input_w(dx, dy, &w, n, in, out);
}

float *model_param(const Model *m, ParamId id, int layer) {
    if (id == PARAM_WCLS && m->config.shared_classifier) id = PARAM_TOKEN_EMBEDDING;
    if (m->weights && model_param_is_matrix(id)) return NULL;
    const ParamTensor *t = &m->tensors[id];
    size_t offset = t->offset;
    if (t->per_layer) offset += (size_t)layer * (t->size / (size_t)m->config.n_layers);
    return m->params + offset;
}

/* ---------------------------------------------------------------------------------------- */
/* KV cache and activations */

int kvcache_init(KVCache *c, const Model *m, int capacity, CkError *err) {
    memset(c, 0, sizeof *c);
    const ModelConfig *mc = &m->config;
    if (capacity <= 0 || capacity > mc->seq_len)
        return ck_fail(err, "KV cache capacity %d outside 1..%d", capacity, mc->seq_len);
    c->capacity = capacity;
    c->kv_dim = model_kv_dim(m);
    c->n_layers = mc->n_layers;
    size_t n = (size_t)mc->n_layers * capacity * c->kv_dim;
    c->k = hugebuf_calloc(n, sizeof(float));
    c->v = hugebuf_calloc(n, sizeof(float));
    if (!c->k || !c->v) {
        kvcache_free(c);
        return ck_fail(err, "out of memory for a KV cache of %d positions", capacity);
    }
    return 0;
}

void kvcache_free(KVCache *c) {
    if (!c) return;
    free(c->k);
    free(c->v);
    memset(c, 0, sizeof *c);
}

void activations_free(Activations *a) {
    if (!a) return;
    float **bufs[] = {
        &a->x,        &a->xn_att,       &a->rms_att,      &a->q,        &a->k,
        &a->v,        &a->att_out,      &a->x_mid,        &a->xn_ffn,   &a->rms_ffn,
        &a->h_gate,   &a->h_up,         &a->h_act,        &a->att_prob, &a->x_out,
        &a->xn_final, &a->rms_final,    &a->scratch,      &a->logits,   &a->stage,
        &a->d_res,    &a->d_xn,         &a->d_att,        &a->d_q,      &a->d_k,
        &a->d_v,      &a->d_h,          &a->d_h2,         &a->d_stage,  &a->lora_u,
        &a->lora_x,   &a->lora_du,      &a->q_raw,        &a->k_raw,    &a->rms_q,
        &a->rms_k,    &a->att_proj,     &a->rms_post_att, &a->ffn_proj, &a->rms_post_ffn,
        &a->d_k_raw,  &a->logits_capped};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(*bufs[i]);
    free(a->positions);
    free(a->block_rows);
    free(a->d_row);
    free(a->lora_mask);
    memset(a, 0, sizeof *a);
}

static int alloc_floats(float **p, size_t n) {
    *p = hugebuf_malloc((n ? n : 1) * sizeof(float));
    return *p ? 0 : -1;
}

/* Rows of classifier output computed at once when scoring: bounded to ~32 MB of logits. */
static int logit_block_rows(const ModelConfig *c, int max_tokens) {
    int rows = (int)((8u << 20) / (unsigned)c->vocab_size);
    if (rows < 1) rows = 1;
    return rows < max_tokens ? rows : max_tokens;
}

int activations_init(Activations *a, const Model *m, int max_tokens, int max_keys,
                     int keep_per_layer, CkError *err) {
    memset(a, 0, sizeof *a);
    const ModelConfig *c = &m->config;
    if (max_tokens <= 0) return ck_fail(err, "activations for %d tokens", max_tokens);
    if (max_keys <= 0 || max_keys > c->seq_len) max_keys = c->seq_len;
    const size_t N = (size_t)max_tokens, C = c->dim, H = c->hidden_dim;
    const size_t QD = (size_t)model_q_dim(m), KV = (size_t)model_kv_dim(m);
    const size_t L = keep_per_layer ? (size_t)c->n_layers : 1;
    a->max_tokens = max_tokens;
    a->max_keys = max_keys;
    a->keep_per_layer = keep_per_layer;
    a->n_threads = omp_get_max_threads();
    a->logit_rows = logit_block_rows(c, max_tokens);
    size_t query_rows = N < (size_t)max_keys ? N : (size_t)max_keys;
    /* a thread's attention scores: a block of query rows, or decoding's one row per head */
    const size_t score_rows = query_rows > (size_t)c->n_heads ? query_rows : (size_t)c->n_heads;
    int fail = 0;
    /* x holds L+1 slots when kept: the input of every layer (x_out is the last output). */
    fail |= alloc_floats(&a->x, L * N * C);
    fail |= alloc_floats(&a->xn_att, L * N * C);
    fail |= alloc_floats(&a->rms_att, L * N);
    fail |= alloc_floats(&a->q, L * N * QD);
    fail |= alloc_floats(&a->k, L * N * KV);
    fail |= alloc_floats(&a->v, L * N * KV);
    fail |= alloc_floats(&a->att_out, L * N * QD);
    if (m->arch.qk_norm) {
        fail |= alloc_floats(&a->q_raw, L * N * QD);
        fail |= alloc_floats(&a->k_raw, L * N * KV);
        fail |= alloc_floats(&a->rms_q, L * N * (size_t)c->n_heads);
        fail |= alloc_floats(&a->rms_k, L * N * (size_t)c->n_kv_heads);
    }
    if (m->arch.sandwich_norms) {
        fail |= alloc_floats(&a->att_proj, L * N * C);
        fail |= alloc_floats(&a->rms_post_att, L * N);
        fail |= alloc_floats(&a->ffn_proj, L * N * C);
        fail |= alloc_floats(&a->rms_post_ffn, L * N);
    }
    fail |= alloc_floats(&a->x_mid, L * N * C);
    fail |= alloc_floats(&a->xn_ffn, L * N * C);
    fail |= alloc_floats(&a->rms_ffn, L * N);
    fail |= alloc_floats(&a->h_gate, L * N * H);
    fail |= alloc_floats(&a->h_up, L * N * H);
    fail |= alloc_floats(&a->h_act, L * N * H);
    if (keep_per_layer)
        fail |= alloc_floats(&a->att_prob, L * (size_t)c->n_heads * N * (size_t)max_keys);
    fail |= alloc_floats(&a->x_out, N * C);
    fail |= alloc_floats(&a->xn_final, N * C);
    fail |= alloc_floats(&a->rms_final, N);
    fail |= alloc_floats(&a->scratch, (size_t)a->n_threads * score_rows * (size_t)max_keys);
    fail |= alloc_floats(&a->logits, (size_t)a->logit_rows * c->vocab_size);
    fail |= alloc_floats(&a->stage, (size_t)a->logit_rows * C);
    a->positions = malloc(N * sizeof(int));
    a->block_rows = malloc((size_t)a->logit_rows * sizeof(int));
    fail |= !a->positions || !a->block_rows;
    if (keep_per_layer) {
        fail |= alloc_floats(&a->d_res, N * C);
        fail |= alloc_floats(&a->d_xn, N * C);
        fail |= alloc_floats(&a->d_att, N * QD);
        fail |= alloc_floats(&a->d_q, N * QD);
        fail |= alloc_floats(&a->d_k, N * KV);
        fail |= alloc_floats(&a->d_v, N * KV);
        fail |= alloc_floats(&a->d_h, N * H);
        fail |= alloc_floats(&a->d_h2, N * H);
        fail |= alloc_floats(&a->d_stage, (size_t)a->logit_rows * C);
        if (m->arch.qk_norm) fail |= alloc_floats(&a->d_k_raw, N * KV);
        if (m->arch.final_softcap > 0.0f)
            fail |= alloc_floats(&a->logits_capped, (size_t)a->logit_rows * c->vocab_size);
        a->d_row = malloc(5 * (size_t)a->logit_rows * sizeof(double));
        fail |= !a->d_row;
    }
    if (fail) {
        activations_free(a);
        return ck_fail(err, "out of memory for activations of %d tokens", max_tokens);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* building blocks */

/* Element-wise work below this many floats runs on one thread: at a few operations an
 * element it is under threads_for_work's floor (util/threads.h), where a parallel region's
 * fork and join (and, on a shared core, a descheduled thread) cost more than they save. */
#define PARALLEL_MIN_WORK ((long)(THREADS_MIN_FLOPS_PER_THREAD / 4))

/* out (N, C) = x * (g + offset) / sqrt(mean(x^2) + eps), offset 1 for Gemma's (1 + w) and 0
 * otherwise; inv_rms (N) keeps 1/rms for the backward. */
static void rmsnorm_forward(float *out, float *inv_rms, const float *x, const float *g, int n,
                            int C, float eps, float offset) {
#pragma omp parallel for if ((long)n * C > PARALLEL_MIN_WORK)
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * C;
        double ss = 0.0;
        for (int j = 0; j < C; j++) ss += (double)xi[j] * xi[j];
        float inv = (float)(1.0 / sqrt(ss / C + eps));
        inv_rms[i] = inv;
        float *oi = out + (size_t)i * C;
        for (int j = 0; j < C; j++) oi[j] = xi[j] * inv * (g[j] + offset);
    }
}

void model_rope_rotate(const Model *m, float *vec, const int *positions, int n, int n_heads,
                       int inverse) {
    const int hs = model_head_dim(m), half = hs / 2;
    const int width = n_heads * hs;
    const int interleaved = m->config.rope_style == ROPE_INTERLEAVED;
    /* the inverse rotation is the rotation by -angle: the same cosines, negated sines */
    const float sign = inverse ? -1.0f : 1.0f;
#pragma omp parallel for if ((long)n * width > PARALLEL_MIN_WORK)
    for (int i = 0; i < n; i++) {
        const float *cs = m->rope_cos + (size_t)positions[i] * half;
        const float *sn = m->rope_sin + (size_t)positions[i] * half;
        for (int h = 0; h < n_heads; h++) {
            float *head = vec + (size_t)i * width + (size_t)h * hs;
            for (int p = 0; p < half; p++) {
                /* the two dimensions rotated together by pair p */
                int a = interleaved ? 2 * p : p;
                int b = interleaved ? 2 * p + 1 : p + half;
                float x0 = head[a], x1 = head[b], s = sign * sn[p];
                head[a] = x0 * cs[p] - x1 * s;
                head[b] = x0 * s + x1 * cs[p];
            }
        }
    }
}

/* Softmax of the scores row[first..valid) of a query with max-subtraction, after the soft cap
 * s -> cap tanh(s / cap) when cap > 0; entries before first (outside a sliding window) and from
 * valid to width become 0. */
static void softmax_causal_row(float *row, int first, int valid, int width, float cap) {
    for (int j = 0; j < first; j++) row[j] = 0.0f;
    float *live = row + first;
    const int n = valid - first;
    if (cap > 0.0f)
        for (int j = 0; j < n; j++) live[j] = cap * tanhf(live[j] / cap);
    const float maxv = max_of(live, n);
    const double sum = exp_and_sum(live, live, n, maxv);
    float inv = (float)(1.0 / sum);
    for (int j = 0; j < n; j++) live[j] *= inv;
    for (int j = valid; j < width; j++) row[j] = 0.0f;
}

/* The first key a query at position pos sees: all from 0, or the last `window` positions. */
static int window_start(int pos, int window) {
    return window > 0 && pos + 1 > window ? pos + 1 - window : 0;
}

/* Decoding's attention: one query per sequence (a KV cache holds the keys before it), heads
 * [h0, h1) of a sequence at once. h->q, h->k, h->v point at column 0 of the sequence's query
 * row and of its key and value rows (head h reads key and value columns (h / group) hs on);
 * head h's scores go to h->prob + (h - h0) ldp, its output to out + h hs. The key and value
 * rows are read across all the heads in one pass (a row is one stretch of memory; a head is a
 * few cache lines of it), which is what decoding a batch waits on. Plain loops beat a BLAS
 * call of this size. */
typedef struct {
    const AttentionHead *h;
    int h0, h1, group, first, Tk;
} DecodeHeads;

/* Scores of every head for keys [first, Tk), 16 keys at a time: one partial sum per lane of
 * each key, the 16 keys' lanes summed by one tree (simd_hsum16), so that a key's score does not
 * depend on where its block starts. */
static void decode_scores(const DecodeHeads *d) {
    const AttentionHead *h = d->h;
    const int hs = h->hs, hv = hs - hs % SIMD_LANES;
    for (int j0 = d->first; j0 < d->Tk; j0 += 16) {
        const int nk = d->Tk - j0 < 16 ? d->Tk - j0 : 16;
        for (int hh = d->h0; hh < d->h1; hh++) {
            const float *q = h->q + (size_t)hh * hs;
            const float *k0 = h->k + (size_t)j0 * h->ldkv + (size_t)(hh / d->group) * hs;
            simd_f32 acc[16] = {{0}};
            if (nk == 16) /* columns outer, the 16 keys unrolled: the sums stay in registers */
                for (int c = 0; c < hv; c += SIMD_LANES) {
                    const simd_f32 qc = simd_load_f32(q + c);
                    for (int i = 0; i < 16; i++)
                        acc[i] += qc * simd_load_f32(k0 + (size_t)i * h->ldkv + c);
                }
            else
                for (int i = 0; i < nk; i++)
                    for (int c = 0; c < hv; c += SIMD_LANES)
                        acc[i] +=
                            simd_load_f32(q + c) * simd_load_f32(k0 + (size_t)i * h->ldkv + c);
            float dots[16];
            simd_hsum16(acc, dots);
            float *prob = h->prob + (size_t)(hh - d->h0) * h->ldp;
            for (int i = 0; i < nk; i++) {
                const float *kj = k0 + (size_t)i * h->ldkv;
                float dot = dots[i];
                for (int c = hv; c < hs; c++) dot += q[c] * kj[c];
                prob[j0 + i] = dot * h->scale;
            }
        }
    }
}

/* out of heads [hh, hh + HEADS), VPH registers a head (hs = VPH lanes): sum over keys j of
 * prob_h[j] v_j, every register one chain of keys in order; a value row's stretch for these
 * heads is read once. */
static inline __attribute__((always_inline)) void
decode_values_heads(const DecodeHeads *d, int hh, const int HEADS, const int VPH, float *out) {
    const AttentionHead *h = d->h;
    const int hs = h->hs;
    simd_f32 acc[16] = {{0}};
    const float *prob[16];
    size_t col[16];
    for (int e = 0; e < HEADS; e++) {
        prob[e] = h->prob + (size_t)(hh + e - d->h0) * h->ldp;
        col[e] = (size_t)((hh + e) / d->group) * hs;
    }
    for (int j = d->first; j < d->Tk; j++) {
        const float *vj = h->v + (size_t)j * h->ldkv;
        for (int e = 0; e < HEADS; e++) {
            const float p = prob[e][j];
            for (int c = 0; c < VPH; c++)
                acc[e * VPH + c] += p * simd_load_f32(vj + col[e] + c * SIMD_LANES);
        }
    }
    for (int e = 0; e < HEADS; e++)
        for (int c = 0; c < VPH; c++)
            memcpy(out + (size_t)(hh + e) * hs + c * SIMD_LANES, &acc[e * VPH + c],
                   sizeof(simd_f32));
}

/* All the heads' weighted values for VPH registers a head: as many heads as fill 16
 * registers at a time, then the rest one by one. */
static inline __attribute__((always_inline)) void decode_values_vph(const DecodeHeads *d,
                                                                    const int VPH, float *out) {
    const int per = 16 / VPH;
    int hh = d->h0;
    for (; hh + per <= d->h1; hh += per) decode_values_heads(d, hh, per, VPH, out);
    for (; hh < d->h1; hh++) decode_values_heads(d, hh, 1, VPH, out);
}

/* One head's weighted values column by column, for head sizes without a register count above
 * (or not a whole number of registers): hs values, one chain of keys per column. */
static void decode_values_columns(const DecodeHeads *d, int hh, float *out) {
    const AttentionHead *h = d->h;
    const int hs = h->hs, hv = hs - hs % SIMD_LANES;
    const float *prob = h->prob + (size_t)(hh - d->h0) * h->ldp;
    const float *v = h->v + (size_t)(hh / d->group) * hs;
    float *o = out + (size_t)hh * hs;
    for (int c = 0; c < hv; c += SIMD_LANES) {
        simd_f32 acc = {0};
        for (int j = d->first; j < d->Tk; j++)
            acc += prob[j] * simd_load_f32(v + (size_t)j * h->ldkv + c);
        memcpy(o + c, &acc, sizeof acc);
    }
    for (int c = hv; c < hs; c++) {
        float acc = 0.0f;
        for (int j = d->first; j < d->Tk; j++) acc += prob[j] * v[(size_t)j * h->ldkv + c];
        o[c] = acc;
    }
}

static void attention_decode(const AttentionHead *h, int h0, int h1, int group, float *out) {
    const int Tk = h->past + 1;
    const DecodeHeads d = {h, h0, h1, group, window_start(Tk - 1, h->window), Tk};
    decode_scores(&d);
    for (int hh = h0; hh < h1; hh++)
        softmax_causal_row(h->prob + (size_t)(hh - h0) * h->ldp, d.first, Tk, Tk, h->softcap);
    const int vph = h->hs % SIMD_LANES ? 0 : h->hs / SIMD_LANES;
    switch (vph) { /* head sizes 48, 64, 128, 256 at 4, 8 or 16 lanes */
    case 3:
        decode_values_vph(&d, 3, out);
        return;
    case 4:
        decode_values_vph(&d, 4, out);
        return;
    case 6:
        decode_values_vph(&d, 6, out);
        return;
    case 8:
        decode_values_vph(&d, 8, out);
        return;
    case 12:
        decode_values_vph(&d, 12, out);
        return;
    case 16:
        decode_values_vph(&d, 16, out);
        return;
    default:
        for (int hh = h0; hh < h1; hh++) decode_values_columns(&d, hh, out);
    }
}

/* Causal attention of one (sequence, head) pair: h->prob receives softmax(scale Q K^T) over
 * the past + T keys, and out (T, hs), with the queries' stride, receives P V. */
static void attention_head_forward(const AttentionHead *h, float *out) {
    const int T = h->T, Tk = h->past + T, hs = h->hs;
    const float scale = h->scale;
    if (T == 1) {
        attention_decode(h, 0, 1, 1, out);
        return;
    }
    /* scores (T, Tk) = scale · Q K^T */
    matmul_strided(0, 1, T, Tk, hs, scale, h->q, h->ldq, h->k, h->ldkv, 0.0f, h->prob, h->ldp);
    for (int t = 0; t < T; t++)
        softmax_causal_row(h->prob + (size_t)t * h->ldp, window_start(h->past + t, h->window),
                           h->past + t + 1, Tk, h->softcap);
    /* out (T, hs) = P (T, Tk) · V (Tk, hs) */
    matmul_strided(0, 0, T, hs, Tk, 1.0f, h->prob, h->ldp, h->v, h->ldkv, 0.0f, out, h->ldq);
}

/* Causal attention of one (branch, head) pair over a shared prefix: the T queries see the
 * P = h->past prefix keys (kp, vp: rows of the cache, or of sequence 0 in a tree) and then the
 * branch's own keys (h->k, h->v).
 * The two key ranges sit in different buffers, so each product is split in two: scores
 * [0, P) and [P, P+T) of each prob row (stride ldp >= P + T), then out = P_prefix · V_prefix
 * + P_own · V_own. */
static void attention_branch_forward(const AttentionHead *h, const float *kp, const float *vp,
                                     float *out) {
    const int T = h->T, P = h->past, hs = h->hs, ldq = h->ldq, ldkv = h->ldkv, ldp = h->ldp;
    const float scale = h->scale;
    float *prob = h->prob;
    if (P > 0) matmul_strided(0, 1, T, P, hs, scale, h->q, ldq, kp, ldkv, 0.0f, prob, ldp);
    matmul_strided(0, 1, T, T, hs, scale, h->q, ldq, h->k, ldkv, 0.0f, prob + P, ldp);
    for (int t = 0; t < T; t++)
        softmax_causal_row(prob + (size_t)t * ldp, window_start(P + t, h->window), P + t + 1, P + T,
                           h->softcap);
    if (P > 0) matmul_strided(0, 0, T, hs, P, 1.0f, prob, ldp, vp, ldkv, 0.0f, out, ldq);
    matmul_strided(0, 0, T, hs, T, 1.0f, prob + P, ldp, h->v, ldkv, P > 0 ? 1.0f : 0.0f, out, ldq);
}

/* h_act (N·H) = act(gate) * up: silu(z) = z σ(z) = z / (1 + e^-z) (SwiGLU), or GELU
 * (GeGLU) in its tanh form or exact (fastmath.h). */
static void gated_forward(float *h_act, const float *gate, const float *up, size_t n,
                          Activation act) {
    if (act == ACT_SILU) {
#pragma omp parallel for if (n > PARALLEL_MIN_WORK)
        for (size_t i = 0; i < n; i++) {
            const float g = gate[i];
            h_act[i] = g * sigmoid_fast(g) * up[i];
        }
        return;
    }
#pragma omp parallel for if (n > PARALLEL_MIN_WORK)
    for (size_t i = 0; i < n; i++)
        h_act[i] = (act == ACT_GELU_TANH ? gelu_tanh(gate[i]) : gelu_erf(gate[i])) * up[i];
}

/* y (n, width) += bias (width) on every row. */
static void add_bias(float *y, const float *bias, int n, int width) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < width; j++) y[(size_t)i * width + j] += bias[j];
}

static void add_inplace(float *y, const float *x, size_t n) {
#pragma omp parallel for if (n > PARALLEL_MIN_WORK)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* ---------------------------------------------------------------------------------------- */
/* the forward pass */

/* Checks a batch against the model, the activations and the cache; fills positions. */
static int batch_check(const Model *m, const Activations *a, const TokenBatch *b,
                       const KVCache *cache, KVCache *const *caches, int prefix_len, int tree,
                       int *positions, CkError *err) {
    const ModelConfig *c = &m->config;
    if (b->n_seqs <= 0 || b->offsets[0] != 0)
        return ck_fail(err, "empty or malformed batch (%d sequences)", b->n_seqs);
    int n = b->offsets[b->n_seqs];
    if (n > a->max_tokens)
        return ck_fail(err, "batch of %d tokens exceeds the %d the activations hold", n,
                       a->max_tokens);
    if (cache && b->n_seqs != 1)
        return ck_fail(err, "a KV cache serves one sequence, not %d", b->n_seqs);
    int past = cache ? cache->len : prefix_len;
    for (int s = 0; s < b->n_seqs; s++) {
        int len = b->offsets[s + 1] - b->offsets[s];
        if (len <= 0) return ck_fail(err, "sequence %d of the batch is empty", s);
        if (tree && s == 1) past = b->offsets[1]; /* branches continue sequence 0 */
        if (caches) {
            cache = caches[s];
            if (!cache || cache->n_layers != c->n_layers || cache->kv_dim != model_kv_dim(m))
                return ck_fail(err, "cache of sequence %d is missing or does not fit the model", s);
            past = cache->len;
        }
        if (past + len > c->seq_len)
            return ck_fail(err, "sequence %d needs %d positions; the model has %d", s, past + len,
                           c->seq_len);
        if (past + len > a->max_keys)
            return ck_fail(err, "sequence %d attends to %d positions; activations allow %d", s,
                           past + len, a->max_keys);
        if (cache && past + len > cache->capacity)
            return ck_fail(err, "KV cache full: %d + %d positions exceed its capacity %d", past,
                           len, cache->capacity);
        for (int i = 0; i < len; i++) {
            int tok = b->tokens[b->offsets[s] + i];
            if (tok < 0 || tok >= c->vocab_size)
                return ck_fail(err, "token id %d at position %d of sequence %d outside 0..%d", tok,
                               i, s, c->vocab_size - 1);
            positions[b->offsets[s] + i] = past + i;
        }
    }
    return 0;
}

/* What a forward pass attends to besides each sequence's own earlier tokens, and its mode:
 * at most one of cache, prefix and tree is set. */
typedef struct {
    KVCache *cache;         /* this one-sequence pass extends the cache */
    KVCache *const *caches; /* sequence s extends caches[s] (batched decoding) */
    const KVCache *prefix;  /* read-only: every sequence continues its first prefix_len positions */
    int prefix_len;
    int tree;     /* sequence 0 of the batch is the prefix that every other sequence continues */
    int training; /* keep every layer for the backward; LoRA dropout masks drawn from rng */
    Rng *rng;
} PassMode;

/* Copies each sequence's new keys and values of layer l (k, v: packed rows of width KV) to
 * its own cache, after the positions it already holds. */
static void append_to_caches(KVCache *const *caches, const TokenBatch *b, const float *k,
                             const float *v, int KV, int l) {
    for (int s = 0; s < b->n_seqs; s++) {
        KVCache *cs = caches[s];
        const size_t off = (size_t)b->offsets[s], len = (size_t)(b->offsets[s + 1] - b->offsets[s]);
        const size_t dst = ((size_t)l * cs->capacity + (size_t)cs->len) * KV;
        memcpy(cs->k + dst, k + off * KV, len * KV * sizeof(float));
        memcpy(cs->v + dst, v + off * KV, len * KV * sizeof(float));
    }
}

/* The score scale, soft cap and window of layer l's attention heads. */
void model_attention_params(const Model *m, int l, float *scale, float *softcap, int *window) {
    *scale =
        m->arch.attn_scale > 0.0f ? m->arch.attn_scale : 1.0f / sqrtf((float)model_head_dim(m));
    *softcap = m->arch.attn_softcap;
    *window = model_layer_window(m, l);
}

/* Decoding's attention of layer l: every sequence of the batch is one new token after its
 * cache (which already holds the token's keys and values). `layer` holds what all NH heads
 * share (attention_layer's: q at sequence 0, the strides, head size, scale, soft cap,
 * window). A task is a sequence's heads, or a share of them when there are fewer sequences
 * than threads to keep busy. */
static void decode_layer(Activations *a, const TokenBatch *b, KVCache *const *caches, int l,
                         const AttentionHead *layer, int NH, int group, float *att_out) {
    const int C = layer->ldq, KV = layer->ldkv;
    /* 4 C flops a key, at the speed of the caches' rows arriving from memory, not at a
     * product's (by which threads_for_work's floor is set): a 16-sequence layer of the 15M
     * model, 40 keys each, is 0.76 MFLOP and takes ~120 us alone, 30x a product's time */
    double keys = 0.0;
    for (int s = 0; s < b->n_seqs; s++) keys += caches[s]->len;
    const int parallel = threads_for_work(32.0 * keys * C) > 1;
    /* in parallel: about two tasks a thread; alone: a sequence's rows read once, all heads */
    int splits = parallel ? (2 * a->n_threads + b->n_seqs - 1) / b->n_seqs : 1;
    if (splits > NH) splits = NH;
    const int per = (NH + splits - 1) / splits, tasks = b->n_seqs * splits;
#pragma omp parallel for schedule(dynamic) num_threads(a->n_threads) if (parallel && tasks > 1)
    for (int t = 0; t < tasks; t++) {
        const int s = t / splits, h0 = t % splits * per, h1 = h0 + per < NH ? h0 + per : NH;
        if (h0 >= h1) continue;
        const KVCache *cs = caches[s];
        const size_t layer_off = (size_t)l * cs->capacity * KV;
        AttentionHead head = *layer;
        head.q += (size_t)s * C;
        head.k = cs->k + layer_off;
        head.v = cs->v + layer_off;
        head.prob = a->scratch + (size_t)omp_get_thread_num() * NH * a->max_keys;
        head.ldp = cs->len + 1;
        head.T = 1;
        head.past = cs->len;
        attention_decode(&head, h0, h1, group, att_out + (size_t)s * C);
    }
}

/* Attention of layer l over (sequence, head) pairs, in parallel: att_out (N, QD) from the
 * layer's q, k, v (already rotated). With a cache the new keys and values are appended to it
 * first and attention reads the whole cache. */
static void attention_layer(const Model *m, Activations *a, const TokenBatch *b,
                            const PassMode *mode, int l) {
    const ModelConfig *c = &m->config;
    const int NH = c->n_heads, hs = model_head_dim(m), C = NH * hs; /* C: the query width */
    const int KV = c->n_kv_heads * hs, group = NH / c->n_kv_heads;
    const size_t N = (size_t)a->n_tokens, li = a->keep_per_layer ? (size_t)l : 0;
    const float *q = a->q + li * N * C, *k = a->k + li * N * KV, *v = a->v + li * N * KV;
    float *att_out = a->att_out + li * N * C;
    float scale, softcap;
    int window;
    model_attention_params(m, l, &scale, &softcap, &window);
    KVCache *cache = mode->cache;
    const KVCache *prefix = mode->prefix;
    const int past = cache ? cache->len : prefix ? mode->prefix_len : 0;
    /* positions before each branch: the shared prefix, in the cache or as sequence 0 */
    const int branch_past = mode->tree ? b->offsets[1] : past;

    /* keys and values that attention reads: the cache (old + new) or this batch */
    KVCache *const *caches = mode->caches ? mode->caches : cache ? &cache : NULL;
    if (caches) append_to_caches(caches, b, k, v, KV, l);
    const float *keys = cache ? cache->k + (size_t)l * cache->capacity * KV : k;
    const float *values = cache ? cache->v + (size_t)l * cache->capacity * KV : v;
    /* what every (sequence, head) pair shares */
    const AttentionHead layer = {.q = q,
                                 .ldq = C,
                                 .ldkv = KV,
                                 .hs = hs,
                                 .scale = scale,
                                 .softcap = softcap,
                                 .window = window};
    if (caches && (size_t)b->n_seqs == N && !a->keep_per_layer) {
        decode_layer(a, b, caches, l, &layer, NH, group, att_out);
        return;
    }
    const int pairs = b->n_seqs * NH;
    const size_t query_rows = N < (size_t)a->max_keys ? N : (size_t)a->max_keys;
    /* scores and the weighted sum: ~4 C flops per (query, key), at most max_keys keys a query;
     * decoding one token of a small model stays on one thread */
    const int parallel = pairs > 1 && threads_for_work(4.0 * (double)N * a->max_keys * C) > 1;
#pragma omp parallel for schedule(dynamic) num_threads(a->n_threads) if (parallel)
    for (int p = 0; p < pairs; p++) {
        const int s = p / NH, h = p % NH, kvh = h / group;
        const int off = b->offsets[s], T = b->offsets[s + 1] - off;
        float *out = att_out + (size_t)off * C + (size_t)h * hs;
        float *scratch = a->scratch + (size_t)omp_get_thread_num() * query_rows * a->max_keys;
        AttentionHead head = layer;
        head.q += (size_t)off * C + (size_t)h * hs;
        head.T = T;
        if (prefix || (mode->tree && s > 0)) {
            /* inference only: the scores go to this thread's scratch */
            const float *pk = prefix ? prefix->k + (size_t)l * prefix->capacity * KV : k;
            const float *pv = prefix ? prefix->v + (size_t)l * prefix->capacity * KV : v;
            head.k = k + (size_t)off * KV + (size_t)kvh * hs;
            head.v = v + (size_t)off * KV + (size_t)kvh * hs;
            head.prob = scratch;
            head.ldp = branch_past + T;
            head.past = branch_past;
            attention_branch_forward(&head, pk + (size_t)kvh * hs, pv + (size_t)kvh * hs, out);
            continue;
        }
        if (mode->caches) {
            /* inference only: sequence s reads its own cache, which already holds its new keys */
            const KVCache *cs = mode->caches[s];
            const size_t layer_off = (size_t)l * cs->capacity * KV + (size_t)kvh * hs;
            head.k = cs->k + layer_off;
            head.v = cs->v + layer_off;
            head.past = cs->len;
            head.prob = scratch;
            head.ldp = cs->len + T;
            attention_head_forward(&head, out);
            continue;
        }
        /* with a cache the keys start at position 0 of the cache, else at this sequence */
        const size_t key_row = cache ? 0 : (size_t)off;
        head.k = keys + key_row * KV + (size_t)kvh * hs;
        head.v = values + key_row * KV + (size_t)kvh * hs;
        head.past = past;
        if (a->keep_per_layer) {
            head.prob = a->att_prob + (((size_t)l * NH + h) * N + off) * a->max_keys;
            head.ldp = a->max_keys;
        } else {
            head.prob = scratch;
            head.ldp = past + T;
        }
        attention_head_forward(&head, out);
    }
}

/* Per-head RMSNorm (Qwen3's q_norm / k_norm): each of the n · heads rows of hs values of raw
 * is normalised with gains g (hs) into out; inv_rms (n · heads) kept for the backward. */
static void head_norm_forward(const Model *m, float *out, float *inv_rms, const float *raw,
                              const float *g, int n, int heads) {
    const ModelConfig *c = &m->config;
    rmsnorm_forward(out, inv_rms, raw, g, n * heads, model_head_dim(m), c->norm_eps,
                    m->arch.norm_plus_one ? 1.0f : 0.0f);
}

/* q, k, v (N, QD / KV / KV) of layer l from xn: the projections, their biases and adapters,
 * the per-head norms, then RoPE on q and k. */
static void qkv_forward(const Model *m, Activations *a, const PassMode *mode,
                        const LoraAdapters *lora, int l, const float *xn) {
    const ModelConfig *c = &m->config;
    const int NH = c->n_heads, NKV = c->n_kv_heads, n = a->n_tokens;
    const int QD = model_q_dim(m), KV = model_kv_dim(m);
    const size_t N = (size_t)n, li = a->keep_per_layer ? (size_t)l : 0;
    float *q = a->q + li * N * QD, *k = a->k + li * N * KV, *v = a->v + li * N * KV;
    /* with head norms the projections land in q_raw / k_raw and are normalised into q / k */
    float *qp = m->arch.qk_norm ? a->q_raw + li * N * QD : q;
    float *kp = m->arch.qk_norm ? a->k_raw + li * N * KV : k;
    model_project(m, PARAM_WQ, l, qp, xn, n);
    model_project(m, PARAM_WK, l, kp, xn, n);
    model_project(m, PARAM_WV, l, v, xn, n);
    if (m->arch.qkv_bias) {
        add_bias(qp, model_param(m, PARAM_BQ, l), n, QD);
        add_bias(kp, model_param(m, PARAM_BK, l), n, KV);
        add_bias(v, model_param(m, PARAM_BV, l), n, KV);
    }
    if (lora) {
        lora_forward(lora, a, l, LORA_Q, qp, xn, n, mode->rng);
        lora_forward(lora, a, l, LORA_K, kp, xn, n, mode->rng);
        lora_forward(lora, a, l, LORA_V, v, xn, n, mode->rng);
    }
    if (m->arch.qk_norm) {
        head_norm_forward(m, q, a->rms_q + li * N * NH, qp, model_param(m, PARAM_Q_NORM, l), n, NH);
        head_norm_forward(m, k, a->rms_k + li * N * NKV, kp, model_param(m, PARAM_K_NORM, l), n,
                          NKV);
    }
    model_rope_rotate(m, q, a->positions, n, NH, 0);
    model_rope_rotate(m, k, a->positions, n, NKV, 0);
}

/* The attention block of layer l: x_mid = x + wo · attention(rope(q), rope(k), v), with
 * q, k, v the projections of rmsnorm(x) (+ biases, adapters, head norms); with sandwich
 * norms the block's output is normalised before the residual add. */
static void attention_block(const Model *m, Activations *a, const TokenBatch *b,
                            const PassMode *mode, const LoraAdapters *lora, int l) {
    const ModelConfig *c = &m->config;
    const int C = c->dim, QD = model_q_dim(m), n = a->n_tokens;
    const float one = m->arch.norm_plus_one ? 1.0f : 0.0f;
    const size_t N = (size_t)n, li = a->keep_per_layer ? (size_t)l : 0;
    const float *x = a->x + li * N * C;
    float *xn_att = a->xn_att + li * N * C;
    float *att_out = a->att_out + li * N * QD, *x_mid = a->x_mid + li * N * C;
    rmsnorm_forward(xn_att, a->rms_att + li * N, x, model_param(m, PARAM_RMS_ATT, l), n, C,
                    c->norm_eps, one);
    qkv_forward(m, a, mode, lora, l, xn_att);
    attention_layer(m, a, b, mode, l);
    float *proj = m->arch.sandwich_norms ? a->att_proj + li * N * C : x_mid;
    model_project(m, PARAM_WO, l, proj, att_out, n);
    if (lora) lora_forward(lora, a, l, LORA_O, proj, att_out, n, mode->rng);
    if (m->arch.sandwich_norms)
        rmsnorm_forward(x_mid, a->rms_post_att + li * N, proj,
                        model_param(m, PARAM_RMS_POST_ATT, l), n, C, c->norm_eps, one);
    add_inplace(x_mid, x, N * C);
}

/* The FFN block of layer l: x_next = x_mid + w2 · (act(w1 · xn) * (w3 · xn)), xn =
 * rmsnorm(x_mid) (with sandwich norms, the w2 product is normalised before the add); x_next
 * is the next layer's input, or the final residual after the last. */
static void ffn_block(const Model *m, Activations *a, const PassMode *mode,
                      const LoraAdapters *lora, int l) {
    const ModelConfig *c = &m->config;
    const int C = c->dim, H = c->hidden_dim, n = a->n_tokens;
    const float one = m->arch.norm_plus_one ? 1.0f : 0.0f;
    const size_t N = (size_t)n, keep = a->keep_per_layer ? 1 : 0, li = keep * (size_t)l;
    const float *x_mid = a->x_mid + li * N * C;
    float *xn_ffn = a->xn_ffn + li * N * C;
    float *h_gate = a->h_gate + li * N * H, *h_up = a->h_up + li * N * H;
    float *h_act = a->h_act + li * N * H;
    float *x_next = (l + 1 < c->n_layers) ? a->x + keep * (size_t)(l + 1) * N * C : a->x_out;
    rmsnorm_forward(xn_ffn, a->rms_ffn + li * N, x_mid, model_param(m, PARAM_RMS_FFN, l), n, C,
                    c->norm_eps, one);
    model_project(m, PARAM_W1, l, h_gate, xn_ffn, n);
    model_project(m, PARAM_W3, l, h_up, xn_ffn, n);
    if (lora) {
        lora_forward(lora, a, l, LORA_GATE, h_gate, xn_ffn, n, mode->rng);
        lora_forward(lora, a, l, LORA_UP, h_up, xn_ffn, n, mode->rng);
    }
    gated_forward(h_act, h_gate, h_up, N * H, m->arch.act);
    float *proj = m->arch.sandwich_norms ? a->ffn_proj + li * N * C : x_next;
    model_project(m, PARAM_W2, l, proj, h_act, n);
    if (lora) lora_forward(lora, a, l, LORA_DOWN, proj, h_act, n, mode->rng);
    if (m->arch.sandwich_norms)
        rmsnorm_forward(x_next, a->rms_post_ffn + li * N, proj,
                        model_param(m, PARAM_RMS_POST_FFN, l), n, C, c->norm_eps, one);
    add_inplace(x_next, x_mid, N * C);
}

/* The forward pass of the entry points below: embedding, the layers' attention and FFN
 * blocks, the final norm (the classifier runs on demand: model_logits_row, model_logprobs,
 * or fused with the loss in backward.c). */
static int forward(const Model *m, Activations *a, const TokenBatch *b, const LoraAdapters *lora,
                   const PassMode *mode, CkError *err) {
    const ModelConfig *c = &m->config;
    const int C = c->dim;
    a->trained = 0; /* until this pass is complete, no backward may use a */
    if (batch_check(m, a, b, mode->cache, mode->caches, mode->prefix ? mode->prefix_len : 0,
                    mode->tree, a->positions, err) != 0)
        return -1;
    if (lora && lora_prepare(lora, m, a, mode->training, err) != 0) return -1;
    const int n_tokens = b->offsets[b->n_seqs];
    const size_t N = (size_t)n_tokens;
    a->n_tokens = n_tokens;

    /* x[0] (N, C) = token_embedding[tokens] */
    if (m->weights) {
        /* held as stored: widen the one row each token needs */
        const WeightRef emb = model_weight(m, PARAM_TOKEN_EMBEDDING, 0);
        for (size_t i = 0; i < N; i++) weight_rows_to_f32(a->x + i * C, &emb, C, b->tokens[i], 1);
    } else {
        const float *emb = model_param(m, PARAM_TOKEN_EMBEDDING, 0);
        for (size_t i = 0; i < N; i++)
            memcpy(a->x + i * C, emb + (size_t)b->tokens[i] * C, (size_t)C * sizeof(float));
    }
    /* Gemma scales the embedding by sqrt(C), rounded to the activations' dtype (fp32) */
    if (m->arch.embed_scale > 0.0f)
        for (size_t i = 0; i < N * C; i++) a->x[i] *= m->arch.embed_scale;

    for (int l = 0; l < c->n_layers; l++) {
        attention_block(m, a, b, mode, lora, l);
        ffn_block(m, a, mode, lora, l);
    }
    rmsnorm_forward(a->xn_final, a->rms_final, a->x_out, model_param(m, PARAM_RMS_FINAL, 0),
                    n_tokens, C, c->norm_eps, m->arch.norm_plus_one ? 1.0f : 0.0f);
    if (mode->cache) mode->cache->len += n_tokens;
    if (mode->caches)
        for (int s = 0; s < b->n_seqs; s++)
            mode->caches[s]->len += b->offsets[s + 1] - b->offsets[s];
    if (matmul_status(err) != 0) return -1;
    a->trained = mode->training;
    return 0;
}

int model_forward(const Model *m, Activations *a, const TokenBatch *b, KVCache *cache,
                  const LoraAdapters *lora, CkError *err) {
    PassMode mode = {.cache = cache};
    return forward(m, a, b, lora, &mode, err);
}

int model_forward_cached(const Model *m, Activations *a, const TokenBatch *b,
                         KVCache *const *caches, const LoraAdapters *lora, CkError *err) {
    a->trained = 0;
    if (!caches) return ck_fail(err, "batched decoding needs one cache per sequence");
    PassMode mode = {.caches = caches};
    return forward(m, a, b, lora, &mode, err);
}

int model_forward_branches(const Model *m, Activations *a, const KVCache *prefix, int prefix_len,
                           const TokenBatch *b, const LoraAdapters *lora, CkError *err) {
    a->trained = 0;
    if (!prefix) return ck_fail(err, "branches need a prefix cache");
    if (prefix->n_layers != m->config.n_layers || prefix->kv_dim != model_kv_dim(m))
        return ck_fail(err, "prefix cache of %d layers x %d does not fit the model (%d x %d)",
                       prefix->n_layers, prefix->kv_dim, m->config.n_layers, model_kv_dim(m));
    if (prefix_len < 0 || prefix_len > prefix->len)
        return ck_fail(err, "prefix of %d positions; the cache holds %d", prefix_len, prefix->len);
    PassMode mode = {.prefix = prefix, .prefix_len = prefix_len};
    return forward(m, a, b, lora, &mode, err);
}

int model_forward_tree(const Model *m, Activations *a, const TokenBatch *b,
                       const LoraAdapters *lora, CkError *err) {
    PassMode mode = {.tree = 1};
    return forward(m, a, b, lora, &mode, err);
}

int model_forward_train(const Model *m, Activations *a, const TokenBatch *b, LoraAdapters *lora,
                        CkError *err) {
    if (!a->keep_per_layer)
        return ck_fail(err, "a training forward needs activations that keep every layer");
    PassMode mode = {.training = 1, .rng = lora ? &lora->dropout_rng : NULL};
    return forward(m, a, b, lora, &mode, err);
}

void model_softcap_logits(const Model *m, float *logits, size_t n) {
    const float cap = m->arch.final_softcap;
    if (cap <= 0.0f) return;
    for (size_t i = 0; i < n; i++) logits[i] = cap * tanhf(logits[i] / cap);
}

int model_logits_rows(const Model *m, const float *rows, int n, float *logits, CkError *err) {
    model_project(m, PARAM_WCLS, 0, logits, rows, n);
    model_softcap_logits(m, logits, (size_t)n * m->config.vocab_size);
    return matmul_status(err);
}

int model_logits_row(const Model *m, const Activations *a, int row, float *logits, CkError *err) {
    return model_logits_rows(m, a->xn_final + (size_t)row * m->config.dim, 1, logits, err);
}

/* ---------------------------------------------------------------------------------------- */
/* scoring */

/* log softmax(logits)[target] with max-subtraction and a double sum; the row (scratch) is
 * overwritten by its exponentials. */
static double log_softmax_at(float *logits, int V, int target) {
    const float target_logit = logits[target], maxv = max_of(logits, V);
    double sum = exp_and_sum(logits, logits, V, maxv);
    return ((double)target_logit - maxv) - log(sum);
}

int model_logprobs(const Model *m, Activations *a, const int *targets, double *logprobs,
                   CkError *err) {
    const ModelConfig *c = &m->config;
    const int C = c->dim, V = c->vocab_size, n = a->n_tokens;
    for (int i = 0; i < n; i++) {
        logprobs[i] = 0.0;
        if (targets[i] >= V)
            return ck_fail(err, "target id %d at packed position %d outside 0..%d", targets[i], i,
                           V - 1);
    }
    /* Only rows with a target pass through the classifier: gather them into a block, one
     * GEMM per block, then a log-softmax per row. */
    int *rows = a->block_rows;
    int next = 0;
    while (next < n) {
        int count = 0;
        while (next < n && count < a->logit_rows) {
            if (targets[next] >= 0) {
                memcpy(a->stage + (size_t)count * C, a->xn_final + (size_t)next * C,
                       (size_t)C * sizeof(float));
                rows[count++] = next;
            }
            next++;
        }
        if (count == 0) continue;
        if (model_logits_rows(m, a->stage, count, a->logits, err) != 0) return -1;
#pragma omp parallel for if ((long)count * V > PARALLEL_MIN_WORK)
        for (int r = 0; r < count; r++)
            logprobs[rows[r]] = log_softmax_at(a->logits + (size_t)r * V, V, targets[rows[r]]);
    }
    return 0;
}

int model_score(const Model *m, Activations *a, const TokenBatch *b, const int *targets,
                double *logprobs, CkError *err) {
    if (model_forward(m, a, b, NULL, NULL, err) != 0) return -1;
    return model_logprobs(m, a, targets, logprobs, err);
}

int model_score_sequences(const Model *m, Activations *a, const TokenBatch *b, double *seq_sums,
                          int *seq_counts, CkError *err) {
    const int n = b->n_seqs > 0 ? b->offsets[b->n_seqs] : 0;
    int *targets = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    double *lp = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!targets || !lp) {
        free(targets);
        free(lp);
        return ck_fail(err, "out of memory");
    }
    for (int s = 0; s < b->n_seqs; s++)
        for (int i = b->offsets[s]; i < b->offsets[s + 1]; i++)
            targets[i] = (i + 1 < b->offsets[s + 1]) ? b->tokens[i + 1] : -1;
    int rc = model_score(m, a, b, targets, lp, err);
    if (rc == 0) {
        for (int s = 0; s < b->n_seqs; s++) {
            double sum = 0.0;
            int count = 0;
            for (int i = b->offsets[s]; i < b->offsets[s + 1]; i++)
                if (targets[i] >= 0) {
                    sum += lp[i];
                    count++;
                }
            seq_sums[s] = sum;
            seq_counts[s] = count;
        }
    }
    free(targets);
    free(lp);
    return rc;
}
