/* lora.c — LoRA adapters: the tensor table, PEFT initialisation, the adapter's forward and
 * backward on one projection, and merging into the base weights. */
#include "model/lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/matmul.h"

static const char *MODULE_NAMES[LORA_MODULES] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                 "gate_proj", "up_proj", "down_proj"};

/* the Model tensor each module adapts */
static const ParamId MODULE_PARAMS[LORA_MODULES] = {PARAM_WQ, PARAM_WK, PARAM_WV, PARAM_WO,
                                                    PARAM_W1, PARAM_W3, PARAM_W2};

const char *lora_module_name(LoraModule mod) {
    return (mod >= 0 && mod < LORA_MODULES) ? MODULE_NAMES[mod] : "?";
}

/* (in, out) of a module's projection */
static void module_shape(const LoraAdapters *ad, LoraModule mod, int *in, int *out) {
    const int C = ad->dim, H = ad->hidden_dim, KV = ad->kv_dim, QD = ad->q_dim;
    const int ins[LORA_MODULES] = {C, C, C, QD, C, C, H};
    const int outs[LORA_MODULES] = {QD, KV, KV, C, H, H, C};
    *in = ins[mod];
    *out = outs[mod];
}

int lora_parse_targets(const char *list, unsigned *mask, CkError *err) {
    *mask = 0;
    if (!list) return ck_fail(err, "no LoRA target modules given");
    const char *p = list;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        const char *end = p;
        while (*end && *end != ',') end++;
        size_t len = (size_t)(end - p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        if (len == 0) return ck_fail(err, "empty name in LoRA target list \"%s\"", list);
        int found = -1;
        for (int i = 0; i < LORA_MODULES; i++)
            if (strlen(MODULE_NAMES[i]) == len && strncmp(p, MODULE_NAMES[i], len) == 0) found = i;
        if (len == 3 && strncmp(p, "all", 3) == 0) {
            *mask |= LORA_TARGET_ALL;
        } else if (found < 0) {
            return ck_fail(err,
                           "unknown LoRA target module \"%.*s\" (known: q_proj, k_proj, v_proj, "
                           "o_proj, gate_proj, up_proj, down_proj, all)",
                           (int)(len > 64 ? 64 : len), p);
        } else {
            *mask |= LORA_BIT(found);
        }
        if (*end == '\0') break;
        p = end + 1;
    }
    return 0;
}

void lora_free(LoraAdapters *ad) {
    if (!ad) return;
    free(ad->tensors);
    free(ad->params);
    memset(ad, 0, sizeof *ad);
}

int lora_init(LoraAdapters *ad, const Model *m, const LoraConfig *c, uint64_t seed, CkError *err) {
    memset(ad, 0, sizeof *ad);
    const ModelConfig *mc = &m->config;
    if (c->rank <= 0) return ck_fail(err, "LoRA rank must be positive, got %d", c->rank);
    if (c->rank > mc->dim)
        return ck_fail(err, "LoRA rank %d exceeds the model dimension %d", c->rank, mc->dim);
    /* an infinite alpha makes an infinite scale, and every output NaN */
    if (!(c->alpha > 0.0f && isfinite(c->alpha)))
        return ck_fail(err, "lora_alpha must be positive and finite, got %g", (double)c->alpha);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return ck_fail(err, "lora_dropout must be in [0, 1), got %g", (double)c->dropout);
    if (c->target_mask == 0 || (c->target_mask & ~LORA_TARGET_ALL))
        return ck_fail(err, "LoRA target mask 0x%x names no module or an unknown one",
                       c->target_mask);
    ad->config = *c;
    ad->scale = c->alpha / (float)c->rank;
    ad->n_layers = mc->n_layers;
    ad->dim = mc->dim;
    ad->hidden_dim = mc->hidden_dim;
    ad->kv_dim = model_kv_dim(m);
    ad->q_dim = model_q_dim(m);
    for (int i = 0; i < LORA_MODULES; i++)
        ad->slot[i] = (c->target_mask & LORA_BIT(i)) ? ad->n_targets++ : -1;
    ad->n_tensors = 2 * ad->n_layers * ad->n_targets;
    ad->tensors = calloc((size_t)ad->n_tensors, sizeof(LoraTensor));
    if (!ad->tensors) {
        lora_free(ad);
        return ck_fail(err, "out of memory for the LoRA tensor table");
    }
    /* layer-major, then module order, A before B: the order of PEFT's state dict */
    size_t offset = 0;
    int t = 0;
    for (int l = 0; l < ad->n_layers; l++) {
        for (int mod = 0; mod < LORA_MODULES; mod++) {
            if (ad->slot[mod] < 0) continue;
            int in, out;
            module_shape(ad, (LoraModule)mod, &in, &out);
            const char *block = mod <= LORA_O ? "self_attn" : "mlp";
            for (int is_b = 0; is_b < 2; is_b++, t++) {
                LoraTensor *lt = &ad->tensors[t];
                snprintf(lt->name, sizeof lt->name,
                         "base_model.model.model.layers.%d.%s.%s.lora_%c.weight", l, block,
                         MODULE_NAMES[mod], is_b ? 'B' : 'A');
                lt->rows = is_b ? out : c->rank;
                lt->cols = is_b ? c->rank : in;
                lt->size = (size_t)lt->rows * lt->cols;
                lt->offset = offset;
                lt->layer = l;
                lt->module = (LoraModule)mod;
                lt->is_b = is_b;
                offset += lt->size;
            }
        }
    }
    ad->n_params = offset;
    ad->params = calloc(offset, sizeof(float));
    if (!ad->params) {
        lora_free(ad);
        return ck_fail(err, "out of memory for %zu LoRA parameters", offset);
    }
    /* PEFT: kaiming_uniform_(A, a=sqrt(5)) has bound sqrt(6 / ((1 + 5) fan_in)) =
     * 1/sqrt(in); B starts at zero so that the adapted model starts as the base. */
    Rng rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < ad->n_tensors; i++) {
        const LoraTensor *lt = &ad->tensors[i];
        if (lt->is_b) continue;
        float bound = 1.0f / sqrtf((float)lt->cols);
        float *p = ad->params + lt->offset;
        for (size_t j = 0; j < lt->size; j++) p[j] = bound * (2.0f * rng_float(&rng) - 1.0f);
    }
    /* a stream of its own for dropout, so that the init does not shift it */
    rng_seed(&ad->dropout_rng, seed ^ 0x6c6f72612d64726full);
    return 0;
}

static const LoraTensor *find_tensor(const LoraAdapters *ad, int layer, LoraModule mod, int is_b) {
    if (layer < 0 || layer >= ad->n_layers || mod < 0 || mod >= LORA_MODULES || ad->slot[mod] < 0)
        return NULL;
    return &ad->tensors[2 * ((size_t)layer * ad->n_targets + ad->slot[mod]) + is_b];
}

float *lora_a(const LoraAdapters *ad, int layer, LoraModule mod) {
    const LoraTensor *t = find_tensor(ad, layer, mod, 0);
    return t ? ad->params + t->offset : NULL;
}

float *lora_b(const LoraAdapters *ad, int layer, LoraModule mod) {
    const LoraTensor *t = find_tensor(ad, layer, mod, 1);
    return t ? ad->params + t->offset : NULL;
}

const LoraTensor *lora_find(const LoraAdapters *ad, const char *name) {
    for (int i = 0; i < ad->n_tensors; i++)
        if (strcmp(ad->tensors[i].name, name) == 0) return &ad->tensors[i];
    return NULL;
}

static int check_fits(const LoraAdapters *ad, const Model *m, CkError *err) {
    const ModelConfig *c = &m->config;
    if (ad->n_layers != c->n_layers || ad->dim != c->dim || ad->hidden_dim != c->hidden_dim ||
        ad->kv_dim != model_kv_dim(m) || ad->q_dim != model_q_dim(m))
        return ck_fail(err,
                       "LoRA adapters for (dim %d, hidden_dim %d, n_layers %d, kv_dim %d) do "
                       "not fit a model with dim %d, hidden_dim %d, n_layers %d",
                       ad->dim, ad->hidden_dim, ad->n_layers, ad->kv_dim, c->dim, c->hidden_dim,
                       c->n_layers);
    return 0;
}

int lora_merge(Model *m, const LoraAdapters *ad, CkError *err) {
    if (check_fits(ad, m, err) != 0) return -1;
    if (model_require_f32(m, "merging adapters into the base", err) != 0) return -1;
    const int r = ad->config.rank;
    for (int l = 0; l < ad->n_layers; l++) {
        for (int mod = 0; mod < LORA_MODULES; mod++) {
            if (ad->slot[mod] < 0) continue;
            int in, out;
            module_shape(ad, (LoraModule)mod, &in, &out);
            /* W (out, in) += scale · B (out, r) · A (r, in) */
            matmul_strided(0, 0, out, in, r, ad->scale, lora_b(ad, l, (LoraModule)mod), r,
                           lora_a(ad, l, (LoraModule)mod), in, 1.0f,
                           model_param(m, MODULE_PARAMS[mod], l), in);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* forward and backward of one adapted projection */

/* The widest input of an adapted projection: C, H or QD (o_proj's input). */
static size_t lora_in_max(const LoraAdapters *ad) {
    int w = ad->dim > ad->hidden_dim ? ad->dim : ad->hidden_dim;
    return (size_t)(ad->q_dim > w ? ad->q_dim : w);
}

/* Grows *p to hold n elements of elem bytes; *cap counts elements. Called once per shape. */
static int reserve(void **p, size_t *cap, size_t n, size_t elem) {
    if (n <= *cap) return 0;
    void *q = realloc(*p, (n ? n : 1) * elem);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

int lora_prepare(const LoraAdapters *ad, const Model *m, Activations *a, int with_masks,
                 CkError *err) {
    if (check_fits(ad, m, err) != 0) return -1;
    const size_t N = (size_t)a->max_tokens, r = (size_t)ad->config.rank;
    const size_t L = a->keep_per_layer ? (size_t)ad->n_layers : 1;
    const size_t in_max = lora_in_max(ad);
    int fail = 0;
    fail |= reserve((void **)&a->lora_u, &a->lora_u_size, L * ad->n_targets * N * r, sizeof(float));
    fail |= reserve((void **)&a->lora_x, &a->lora_x_size, N * in_max, sizeof(float));
    fail |= reserve((void **)&a->lora_du, &a->lora_du_size, N * r, sizeof(float));
    if (with_masks && ad->config.dropout > 0.0f)
        fail |=
            reserve((void **)&a->lora_mask, &a->lora_mask_size, L * ad->n_targets * N * in_max, 1);
    if (fail) return ck_fail(err, "out of memory for LoRA activations of %d tokens", a->max_tokens);
    return 0;
}

/* The kept buffers of module mod in layer l: u (N, r) and the dropout mask (N, in_max). */
static float *slot_u(const LoraAdapters *ad, const Activations *a, int l, LoraModule mod) {
    const size_t li = a->keep_per_layer ? (size_t)l : 0;
    const size_t N = (size_t)a->max_tokens;
    return a->lora_u + (li * ad->n_targets + ad->slot[mod]) * N * ad->config.rank;
}

static unsigned char *slot_mask(const LoraAdapters *ad, const Activations *a, int l,
                                LoraModule mod) {
    const size_t li = a->keep_per_layer ? (size_t)l : 0;
    const size_t N = (size_t)a->max_tokens;
    const size_t in_max = lora_in_max(ad);
    return a->lora_mask + (li * ad->n_targets + ad->slot[mod]) * N * in_max;
}

/* xd (n, in) = x * mask / (1 - p): inverted dropout, so that eval needs no rescaling */
static void apply_mask(float *xd, const float *x, const unsigned char *mask, size_t count,
                       float keep_scale) {
    for (size_t i = 0; i < count; i++) xd[i] = mask[i] ? x[i] * keep_scale : 0.0f;
}

void lora_forward(const LoraAdapters *ad, Activations *a, int layer, LoraModule mod, float *y,
                  const float *x, int n, Rng *rng) {
    if (ad->slot[mod] < 0) return;
    int in, out;
    module_shape(ad, mod, &in, &out);
    const int r = ad->config.rank;
    const float p = ad->config.dropout;
    float *u = slot_u(ad, a, layer, mod);
    const float *xin = x;
    if (rng && p > 0.0f) {
        /* keep each input element with probability 1 - p; 16 random bits per decision,
         * four decisions per draw (p is resolved to 1/65536, far finer than any setting) */
        unsigned char *mask = slot_mask(ad, a, layer, mod);
        const size_t count = (size_t)n * in;
        const uint64_t threshold = (uint64_t)(p * 65536.0f);
        for (size_t i = 0; i < count; i += 4) {
            uint64_t bits = rng_next(rng);
            for (size_t j = i; j < i + 4 && j < count; j++, bits >>= 16)
                mask[j] = (bits & 0xffffu) >= threshold;
        }
        apply_mask(a->lora_x, x, mask, count, 1.0f / (1.0f - p));
        xin = a->lora_x;
    }
    /* u (n, r) = dropout(x) · A^T;  y (n, out) += scale · u · B^T */
    matmul_forward(u, xin, lora_a(ad, layer, mod), n, in, r);
    matmul_strided(0, 1, n, out, r, ad->scale, u, r, lora_b(ad, layer, mod), r, 1.0f, y, out);
}

void lora_backward(const LoraAdapters *ad, Activations *a, int layer, LoraModule mod, float *dx,
                   const float *dy, const float *x, int n, float *grads) {
    if (ad->slot[mod] < 0 || (!dx && !grads)) return;
    int in, out;
    module_shape(ad, mod, &in, &out);
    const int r = ad->config.rank;
    const float p = ad->config.dropout;
    const int dropped = p > 0.0f && a->lora_mask != NULL;
    const size_t count = (size_t)n * in;
    const float *u = slot_u(ad, a, layer, mod);
    const float *A = lora_a(ad, layer, mod), *B = lora_b(ad, layer, mod);
    const unsigned char *mask = dropped ? slot_mask(ad, a, layer, mod) : NULL;
    float *du = a->lora_du;
    /* du (n, r) = scale · dy (n, out) · B (out, r) */
    matmul_strided(0, 0, n, r, out, ad->scale, dy, out, B, r, 0.0f, du, r);
    if (grads) {
        const LoraTensor *ta = find_tensor(ad, layer, mod, 0), *tb = find_tensor(ad, layer, mod, 1);
        /* dB (out, r) += scale · dy^T (out, n) · u (n, r) */
        matmul_strided(1, 0, out, r, n, ad->scale, dy, out, u, r, 1.0f, grads + tb->offset, r);
        /* dA (r, in) += du^T (r, n) · dropout(x) (n, in) */
        const float *xin = x;
        if (dropped) {
            apply_mask(a->lora_x, x, mask, count, 1.0f / (1.0f - p));
            xin = a->lora_x;
        }
        matmul_backward_weight(grads + ta->offset, du, xin, n, in, r);
    }
    if (!dx) return;
    if (!dropped) {
        /* dx (n, in) += du (n, r) · A (r, in) */
        matmul_backward_input(dx, du, A, n, in, r);
        return;
    }
    /* through the dropout: dx += mask / (1 - p) * (du · A) */
    float *dxd = a->lora_x;
    matmul_backward_input_overwrite(dxd, du, A, n, in, r);
    const float keep_scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < count; i++)
        if (mask[i]) dx[i] += dxd[i] * keep_scale;
}
