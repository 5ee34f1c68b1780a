/* hf_model.c — Hugging Face folders of the families hf_config reads. Names follow
 * transformers' LlamaForCausalLM: model.embed_tokens, model.layers.N.{input_layernorm,
 * self_attn.{q,k,v,o}_proj, post_attention_layernorm, mlp.{gate,up,down}_proj}, model.norm,
 * lm_head; plus Qwen2's self_attn.{q,k,v}_proj.bias, Qwen3's self_attn.{q,k}_norm and Gemma 2's
 * pre/post_feedforward_layernorm (hf_param_name_arch). */
#include "formats/hf_model.h"

#include "util/fileio.h"
#include "util/json_strict.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void hf_param_name(ParamId id, int layer, char *buf, size_t size) {
    hf_param_name_arch(NULL, id, layer, buf, size);
}

void hf_param_name_arch(const ModelArch *arch, ParamId id, int layer, char *buf, size_t size) {
    static const char *layer_names[PARAM_COUNT] = {
        [PARAM_RMS_ATT] = "input_layernorm.weight",
        [PARAM_WQ] = "self_attn.q_proj.weight",
        [PARAM_WK] = "self_attn.k_proj.weight",
        [PARAM_WV] = "self_attn.v_proj.weight",
        [PARAM_WO] = "self_attn.o_proj.weight",
        [PARAM_RMS_FFN] = "post_attention_layernorm.weight",
        [PARAM_W1] = "mlp.gate_proj.weight",
        [PARAM_W2] = "mlp.down_proj.weight",
        [PARAM_W3] = "mlp.up_proj.weight",
        [PARAM_BQ] = "self_attn.q_proj.bias",
        [PARAM_BK] = "self_attn.k_proj.bias",
        [PARAM_BV] = "self_attn.v_proj.bias",
        [PARAM_Q_NORM] = "self_attn.q_norm.weight",
        [PARAM_K_NORM] = "self_attn.k_norm.weight",
        [PARAM_RMS_POST_ATT] = "post_attention_norm.weight", /* Gemma 2's name below */
        [PARAM_RMS_POST_FFN] = "post_feedforward_layernorm.weight"};
    const char *name = layer_names[id];
    /* Gemma 2 names its four norms differently: post_attention_layernorm is the norm of the
     * attention output, the FFN's input norm is pre_feedforward_layernorm */
    if (arch && arch->sandwich_norms && id == PARAM_RMS_FFN)
        name = "pre_feedforward_layernorm.weight";
    if (arch && arch->sandwich_norms && id == PARAM_RMS_POST_ATT)
        name = "post_attention_layernorm.weight";
    switch (id) {
    case PARAM_TOKEN_EMBEDDING:
        snprintf(buf, size, "model.embed_tokens.weight");
        break;
    case PARAM_RMS_FINAL:
        snprintf(buf, size, "model.norm.weight");
        break;
    case PARAM_WCLS:
        snprintf(buf, size, "lm_head.weight");
        break;
    default:
        snprintf(buf, size, "model.layers.%d.%s", layer, name);
        break;
    }
}

/* ---- rotary convention ----------------------------------------------------------------- */

void rope_permute_rows(float *w, int n_heads, int hs, int cols, int to_half_split, float *tmp) {
    const int half = hs / 2;
    for (int h = 0; h < n_heads; h++) {
        float *head = w + (size_t)h * hs * cols;
        memcpy(tmp, head, (size_t)hs * cols * sizeof(float));
        for (int i = 0; i < half; i++)
            for (int a = 0; a < 2; a++) {
                int interleaved_row = 2 * i + a, split_row = a * half + i;
                int dst = to_half_split ? split_row : interleaved_row;
                int src = to_half_split ? interleaved_row : split_row;
                memcpy(head + (size_t)dst * cols, tmp + (size_t)src * cols,
                       (size_t)cols * sizeof(float));
            }
    }
}

void model_set_rope_style(Model *m, RopeStyle style) {
    ModelConfig *c = &m->config;
    /* weights held as stored are read-only (mapped): only Hugging Face folders are held, and
     * they are already in its order */
    if (c->rope_style == style || m->weights) return;
    const int hs = model_head_dim(m);
    float *tmp = malloc((size_t)hs * c->dim * sizeof(float));
    if (!tmp) return; /* a head's rows: tiny; cannot fail in practice */
    for (int l = 0; l < c->n_layers; l++) {
        rope_permute_rows(model_param(m, PARAM_WQ, l), c->n_heads, hs, c->dim,
                          style == ROPE_HALF_SPLIT, tmp);
        rope_permute_rows(model_param(m, PARAM_WK, l), c->n_kv_heads, hs, c->dim,
                          style == ROPE_HALF_SPLIT, tmp);
    }
    free(tmp);
    c->rope_style = style;
}

/* ---- loading ---------------------------------------------------------------------------- */

typedef struct {
    SafetensorsFile *files;
    char **file_names;
    int n_files;
    cJSON *weight_map;    /* from the index, or NULL for a single file */
    unsigned char **used; /* [file][tensor] consumed flags, to list extras */
} ShardSet;

static void shards_close(ShardSet *s) {
    for (int i = 0; i < s->n_files; i++) {
        safetensors_close(&s->files[i]);
        free(s->file_names[i]);
        free(s->used[i]);
    }
    free(s->files);
    free(s->file_names);
    free(s->used);
    cJSON_Delete(s->weight_map);
    memset(s, 0, sizeof *s);
}

static int shards_add(ShardSet *s, const char *dir, const char *name, CkError *err) {
    for (int i = 0; i < s->n_files; i++)
        if (!strcmp(s->file_names[i], name)) return 0;
    if (strchr(name, '/') || !strcmp(name, "..") || !*name)
        return ck_fail(err,
                       "%s/model.safetensors.index.json: shard name \"%s\" is not a file "
                       "name in the folder",
                       dir, name);
    int n = s->n_files + 1;
    SafetensorsFile *files = realloc(s->files, n * sizeof *files);
    if (files) s->files = files;
    char **names = realloc(s->file_names, n * sizeof *names);
    if (names) s->file_names = names;
    unsigned char **used = realloc(s->used, n * sizeof *used);
    if (used) s->used = used;
    if (!files || !names || !used) return ck_fail(err, "out of memory");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    memset(&s->files[s->n_files], 0, sizeof(SafetensorsFile));
    if (safetensors_open(&s->files[s->n_files], path, err) != 0) return -1;
    s->file_names[s->n_files] = strdup(name);
    s->used[s->n_files] = calloc(safetensors_count(&s->files[s->n_files]) + 1, 1);
    s->n_files = n;
    if (!s->file_names[n - 1] || !s->used[n - 1]) return ck_fail(err, "out of memory");
    return 0;
}

static int shards_open(ShardSet *s, const char *dir, CkError *err) {
    memset(s, 0, sizeof *s);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (access(path, R_OK) != 0) return shards_add(s, dir, "model.safetensors", err);
    cJSON *index = json_load_file(path, 256u << 20, err);
    if (!index) return -1;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(index, "weight_map");
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(index);
        return ck_fail(err, "%s: expected a JSON object with a \"weight_map\" object", path);
    }
    s->weight_map = cJSON_DetachItemFromObjectCaseSensitive(index, "weight_map");
    cJSON_Delete(index);
    const cJSON *entry;
    cJSON_ArrayForEach(entry, s->weight_map) {
        if (!cJSON_IsString(entry))
            return ck_fail(err, "%s: weight_map[\"%s\"] must be a file name", path, entry->string);
        if (shards_add(s, dir, entry->valuestring, err) != 0) return -1;
    }
    return 0;
}

/* Finds tensor `name` (in the shard the index names, or in the single file). */
static const SafetensorsTensor *shards_find(ShardSet *s, const char *name, int *file) {
    int first = 0, last = s->n_files - 1;
    if (s->weight_map) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(s->weight_map, name);
        if (!e) return NULL;
        for (int i = 0; i < s->n_files; i++)
            if (!strcmp(s->file_names[i], e->valuestring)) first = last = i;
    }
    for (int i = first; i <= last; i++) {
        const SafetensorsTensor *t = safetensors_find(&s->files[i], name);
        if (t) {
            *file = i;
            return t;
        }
    }
    return NULL;
}

/* Finds tensor name and checks its shape (rows x cols, cols 0 for a vector); marks it used. */
static const SafetensorsTensor *find_checked(ShardSet *s, const char *dir, const char *name,
                                             int rows, int cols, int *file, CkError *err) {
    const SafetensorsTensor *t = shards_find(s, name, file);
    if (!t) {
        ck_fail(err, "%s: missing tensor %s", dir, name);
        return NULL;
    }
    int want_ndim = cols ? 2 : 1;
    if (t->ndim != want_ndim || t->shape[0] != (size_t)rows ||
        (cols && t->shape[1] != (size_t)cols)) {
        char got[128] = "";
        for (int d = 0; d < t->ndim; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%zu", d ? ", " : "",
                     t->shape[d]);
        if (cols)
            ck_fail(err, "%s: tensor %s has shape [%s]; the config needs [%d, %d]", dir, name, got,
                    rows, cols);
        else
            ck_fail(err, "%s: tensor %s has shape [%s]; the config needs [%d]", dir, name, got,
                    rows);
        return NULL;
    }
    s->used[*file][t - safetensors_at(&s->files[*file], 0)] = 1;
    return t;
}

/* Reads one tensor into dst after checking its shape (rows x cols, cols 0 for a vector). */
static int load_tensor(ShardSet *s, const char *dir, const char *name, int rows, int cols,
                       float *dst, CkError *err) {
    int file = 0;
    const SafetensorsTensor *t = find_checked(s, dir, name, rows, cols, &file, err);
    if (!t) return -1;
    if (safetensors_read_f32(&s->files[file], t, dst, err) != 0) return ck_wrap(err, "%s", dir);
    return 0;
}

/* Lists tensors no parameter used; transformers' rotary inv_freq buffers are not weights. */
static int refuse_extras(ShardSet *s, const char *dir, CkError *err) {
    char list[400] = "";
    int n_extra = 0;
    for (int f = 0; f < s->n_files; f++)
        for (size_t i = 0; i < safetensors_count(&s->files[f]); i++) {
            const char *name = safetensors_at(&s->files[f], i)->name;
            if (s->used[f][i] || strstr(name, "rotary_emb.inv_freq")) continue;
            if (n_extra++ < 4)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         n_extra > 1 ? ", " : "", name);
        }
    if (!n_extra) return 0;
    return ck_fail(err, "%s: %d extra tensor%s the config does not use: %s%s", dir, n_extra,
                   n_extra > 1 ? "s" : "", list, n_extra > 4 ? ", ..." : "");
}

/* ---- weights held as stored ------------------------------------------------------------- */

/* The Q8 group of a model: 64 when the input width of every matrix (C, QD, H) is a multiple
 * of 64, else 32 when all are multiples of 32; 0 when neither. */
static int q8_group(const Model *m) {
    const int widths[3] = {m->config.dim, model_q_dim(m), m->config.hidden_dim};
    for (int g = 64; g >= 32; g /= 2) {
        int ok = 1;
        for (int i = 0; i < 3; i++) ok &= widths[i] % g == 0;
        if (ok) return g;
    }
    return 0;
}

static void shards_release(void *owner) {
    if (!owner) return;
    shards_close(owner);
    free(owner);
}

/* 1 when t can serve in place as `held`: the same 16-bit dtype, aligned for uint16_t. */
static int can_map(const SafetensorsFile *f, const SafetensorsTensor *t, WeightDtype held) {
    int same =
        (held == WEIGHT_BF16 && t->dtype == ST_BF16) || (held == WEIGHT_F16 && t->dtype == ST_F16);
    return same && (uintptr_t)safetensors_data(f, t) % sizeof(uint16_t) == 0;
}

/* Bytes of the store for one (out, in) matrix held as `held` (Q8: scales first, then the
 * int8 values), rounded up to 64 so that every matrix starts aligned. */
static size_t held_bytes(WeightDtype held, int out, int in, int group) {
    size_t n = (size_t)out * in;
    n = held == WEIGHT_Q8 ? n + (size_t)out * (in / group) * sizeof(float) : n * sizeof(uint16_t);
    return (n + 63) / 64 * 64;
}

/* n values of a little-endian F32, F16 or BF16 tensor (possibly unaligned) to fp32. */
static void raw_to_f32(float *dst, const unsigned char *src, SafetensorsDtype dtype, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (dtype == ST_F32) {
            memcpy(&dst[i], src + 4 * i, 4);
            continue;
        }
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = dtype == ST_BF16 ? weight_bf16_to_f32(h) : weight_f16_to_f32(h);
    }
}

/* Converts matrix t (out, in) into dst as `held`, a block of rows at a time (never the whole
 * matrix in fp32; blocks in parallel, each thread with its own block), and points ref at it. */
static int convert_matrix(const SafetensorsFile *f, const SafetensorsTensor *t, WeightDtype held,
                          int group, int out, int in, unsigned char *dst, WeightRef *ref,
                          CkError *err) {
    enum { BLOCK = 64 };
    const unsigned char *src = safetensors_data(f, t);
    const size_t es = t->dtype == ST_F32 ? 4 : 2, per_row = held == WEIGHT_Q8 ? in / group : 0;
    float *scales = (float *)(void *)dst;
    unsigned char *values = dst + (size_t)out * per_row * sizeof(float);
    int failed = 0;
#pragma omp parallel
    {
        float *tmp = malloc((size_t)BLOCK * in * sizeof(float));
        CkError local = {{0}};
#pragma omp for schedule(dynamic)
        for (int r0 = 0; r0 < out; r0 += BLOCK) {
            const int rows = out - r0 < BLOCK ? out - r0 : BLOCK;
            const size_t at = (size_t)r0 * in, count = (size_t)rows * in;
            if (!tmp) continue;
            raw_to_f32(tmp, src + at * es, t->dtype, count);
            if (held == WEIGHT_BF16)
                weight_f32_to_bf16_n((uint16_t *)(void *)values + at, tmp, count);
            else if (held == WEIGHT_F16)
                weight_f32_to_f16_n((uint16_t *)(void *)values + at, tmp, count);
            else if (weight_quantize_q8((int8_t *)values + at, scales + (size_t)r0 * per_row, tmp,
                                        rows, in, group, &local) != 0) {
#pragma omp atomic write
                failed = 1;
            }
        }
        if (!tmp) {
#pragma omp atomic write
            failed = 1;
        }
        free(tmp);
    }
    *ref =
        (WeightRef){held, values, held == WEIGHT_Q8 ? scales : NULL, held == WEIGHT_Q8 ? group : 0};
    return failed ? ck_fail(err, "cannot convert %s to %s (out of memory)", t->name,
                            model_held_name(held))
                  : 0;
}

/* Plans where each matrix of m comes from: checks every one's shape and dtype (before any
 * weight is read) and returns the bytes the converted ones need; tensors[] and files[] get
 * each (id, layer)'s tensor. */
static int plan_matrices(Model *m, ShardSet *s, const char *dir, int group,
                         const SafetensorsTensor **tensors, int *files, size_t *bytes,
                         CkError *err) {
    const int L = m->config.n_layers;
    *bytes = 0;
    for (int id = 0; id < PARAM_COUNT; id++) {
        const ParamTensor *pt = &m->tensors[id];
        if (!model_param_is_matrix((ParamId)id) || pt->size == 0) continue;
        for (int l = 0; l < (pt->per_layer ? L : 1); l++) {
            char name[128];
            hf_param_name_arch(&m->arch, (ParamId)id, l, name, sizeof name);
            const size_t k = (size_t)id * L + l;
            tensors[k] = find_checked(s, dir, name, pt->shape[0], pt->shape[1], &files[k], err);
            if (!tensors[k]) return -1;
            const SafetensorsDtype d = tensors[k]->dtype;
            if (d != ST_F32 && d != ST_F16 && d != ST_BF16)
                return ck_fail(err,
                               "%s: tensor %s is stored as %s; --base-dtype %s reads F32, F16 "
                               "or BF16 tensors",
                               dir, name, safetensors_dtype_name(d), model_held_name(m->held));
            if (!can_map(&s->files[files[k]], tensors[k], m->held))
                *bytes += held_bytes(m->held, pt->shape[0], pt->shape[1], group);
        }
    }
    return 0;
}

/* Fills m->weights: 16-bit tensors stored as held are used in place in the mapping; the others
 * are converted into m->weight_store, and their mapped pages released. */
static int hold_matrices(Model *m, ShardSet *s, const char *dir, int group, CkError *err) {
    const size_t n = (size_t)PARAM_COUNT * m->config.n_layers;
    const SafetensorsTensor **tensors = calloc(n, sizeof *tensors);
    int *files = calloc(n, sizeof *files);
    size_t bytes = 0;
    int rc = tensors && files ? 0 : ck_fail(err, "out of memory");
    if (rc == 0) rc = plan_matrices(m, s, dir, group, tensors, files, &bytes, err);
    if (rc == 0 && bytes > 0 && !(m->weight_store = malloc(bytes)))
        rc = ck_fail(err, "%s: out of memory holding the weights as %s (%zu bytes)", dir,
                     model_held_name(m->held), bytes);
    unsigned char *next = m->weight_store;
    int mapped = 0;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        if (!tensors[k]) continue;
        const SafetensorsFile *f = &s->files[files[k]];
        const int out = (int)tensors[k]->shape[0], in = (int)tensors[k]->shape[1];
        if (can_map(f, tensors[k], m->held)) {
            m->weights[k] = (WeightRef){m->held, safetensors_data(f, tensors[k]), NULL, 0};
            mapped = 1;
            continue;
        }
        rc = convert_matrix(f, tensors[k], m->held, group, out, in, next, &m->weights[k], err);
        if (rc != 0) ck_wrap(err, "%s: %s", dir, tensors[k]->name);
        safetensors_release_pages(f, tensors[k]);
        next += held_bytes(m->held, out, in, group);
    }
    if (rc == 0 && mapped && !(m->weight_owner = calloc(1, sizeof(ShardSet))))
        rc = ck_fail(err, "out of memory");
    free(tensors);
    free(files);
    return rc;
}

int hf_model_load(Model *m, HfConfig *cfg, const char *dir, CkError *err) {
    return hf_model_load_held(m, cfg, dir, WEIGHT_F32, err);
}

int hf_model_load_held(Model *m, HfConfig *cfg, const char *dir, WeightDtype held, CkError *err) {
    memset(m, 0, sizeof *m);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    ModelArch arch;
    if (hf_config_load_arch(cfg, &arch, path, err) != 0) return -1;
    if (model_init_held(m, &cfg->model, &arch, held, err) != 0) return -1;
    const int group = held == WEIGHT_Q8 ? q8_group(m) : 0;
    if (held == WEIGHT_Q8 && group == 0) {
        ck_fail(err,
                "%s: --base-dtype int8 quantises groups of 32 or 64 along each matrix's input; "
                "dim %d, q width %d and hidden_dim %d are not all multiples of 32",
                dir, m->config.dim, model_q_dim(m), m->config.hidden_dim);
        model_free(m);
        return -1;
    }
    ShardSet shards;
    int rc = shards_open(&shards, dir, err);
    if (rc == 0 && held != WEIGHT_F32) rc = hold_matrices(m, &shards, dir, group, err);
    for (int id = 0; rc == 0 && id < PARAM_COUNT; id++) {
        const ParamTensor *t = &m->tensors[id];
        if (t->size == 0) continue; /* the tied classifier */
        if (held != WEIGHT_F32 && model_param_is_matrix((ParamId)id)) continue;
        int layers = t->per_layer ? cfg->model.n_layers : 1;
        for (int l = 0; rc == 0 && l < layers; l++) {
            char name[128];
            hf_param_name_arch(&m->arch, (ParamId)id, l, name, sizeof name);
            rc = load_tensor(&shards, dir, name, t->shape[0], t->shape[1],
                             model_param(m, (ParamId)id, l), err);
        }
    }
    if (rc == 0 && cfg->model.shared_classifier) {
        /* some exports keep a copy of the tied classifier; it must be the embedding */
        int file;
        const SafetensorsTensor *t = shards_find(&shards, "lm_head.weight", &file);
        if (t) shards.used[file][t - safetensors_at(&shards.files[file], 0)] = 1;
    }
    if (rc == 0) rc = refuse_extras(&shards, dir, err);
    if (rc == 0 && m->weight_owner) {
        /* some matrices point into the mapped shards: the model keeps them open */
        *(ShardSet *)m->weight_owner = shards;
        m->weight_release = shards_release;
    } else {
        shards_close(&shards);
        free(m->weight_owner); /* the empty holder of a load that failed */
        m->weight_owner = NULL;
    }
    if (rc != 0) model_free(m);
    return rc;
}

/* ---- saving ----------------------------------------------------------------------------- */

int hf_model_save(const Model *m, const HfConfig *cfg, const char *dir, SafetensorsDtype dtype,
                  const char *command_line, CkError *err) {
    if (model_require_f32(m, "saving the model", err) != 0) return -1;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ck_fail(err, "%s: cannot create folder: %s", dir, strerror(errno));
    /* Hugging Face's rotary convention on disk: permute a copy when ours is interleaved. */
    Model half = {0};
    const Model *src = m;
    if (m->config.rope_style != ROPE_HALF_SPLIT) {
        half = *m;
        half.params = malloc(m->n_params * sizeof(float));
        if (!half.params) return ck_fail(err, "out of memory");
        memcpy(half.params, m->params, m->n_params * sizeof(float));
        half.rope_cos = half.rope_sin = NULL; /* not needed for a permutation */
        model_set_rope_style(&half, ROPE_HALF_SPLIT);
        src = &half;
    }
    SafetensorsWriter w;
    safetensors_writer_init(&w);
    char name[128];
    int rc = 0;
    for (int id = 0; rc == 0 && id < PARAM_COUNT; id++) {
        const ParamTensor *t = &src->tensors[id];
        if (t->size == 0) continue;
        int layers = t->per_layer ? src->config.n_layers : 1;
        for (int l = 0; rc == 0 && l < layers; l++) {
            hf_param_name_arch(&src->arch, (ParamId)id, l, name, sizeof name);
            size_t shape[2] = {(size_t)t->shape[0], (size_t)t->shape[1]};
            rc = safetensors_writer_add(&w, name, dtype, t->rank, shape,
                                        model_param(src, (ParamId)id, l), err);
        }
    }
    if (rc == 0) rc = safetensors_writer_set_metadata(&w, "format", "pt", err);
    if (rc == 0) rc = safetensors_writer_set_metadata(&w, "cutkit_version", CUTKIT_VERSION, err);
    if (rc == 0 && command_line)
        rc = safetensors_writer_set_metadata(&w, "command_line", command_line, err);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (rc == 0) rc = safetensors_write(&w, path, err);
    safetensors_writer_free(&w);
    free(half.params);
    if (rc != 0) return -1;
    HfConfig out = *cfg;
    out.model = m->config;
    out.model.rope_style = ROPE_HALF_SPLIT;
    char *json = hf_config_to_json_arch(&out, &m->arch);
    if (!json) return ck_fail(err, "out of memory");
    snprintf(path, sizeof path, "%s/config.json", dir);
    rc = fileio_write_atomic(path, json, strlen(json), err);
    free(json);
    return rc;
}
