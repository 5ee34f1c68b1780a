/* peft.c — PEFT LoRA folders. adapter_config.json holds the LoRA settings; the safetensors
 * file names A as base_model.model.model.layers.N.<module path>.lora_A.weight (r, in) and
 * B as ...lora_B.weight (out, r), the names LoraAdapters already uses. */
#include "formats/peft.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/json_strict.h"
#include "formats/hf_model.h"
#include "formats/safetensors.h"

/* Permutes the B rows of q_proj/k_proj in buf (a copy of ad->params) between rotary orders. */
static int permute_qk_b(const LoraAdapters *ad, const Model *m, float *buf, int to_half_split,
                        CkError *err) {
    const ModelConfig *c = &m->config;
    const int hs = model_head_dim(m), r = ad->config.rank;
    float *tmp = malloc((size_t)hs * r * sizeof(float));
    if (!tmp) return ck_fail(err, "out of memory");
    for (int l = 0; l < ad->n_layers; l++) {
        if (lora_b(ad, l, LORA_Q))
            rope_permute_rows(buf + (lora_b(ad, l, LORA_Q) - ad->params), c->n_heads, hs, r,
                              to_half_split, tmp);
        if (lora_b(ad, l, LORA_K))
            rope_permute_rows(buf + (lora_b(ad, l, LORA_K) - ad->params), c->n_kv_heads, hs, r,
                              to_half_split, tmp);
    }
    free(tmp);
    return 0;
}

static char *adapter_config_json(const LoraAdapters *ad, const char *base_model_name) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "peft_type", "LORA");
    cJSON_AddStringToObject(root, "task_type", "CAUSAL_LM");
    cJSON_AddStringToObject(root, "base_model_name_or_path",
                            base_model_name ? base_model_name : "");
    cJSON_AddNumberToObject(root, "r", ad->config.rank);
    /* floats through their shortest decimal, so 0.05 is written as 0.05 */
    char buf[32];
    snprintf(buf, sizeof buf, "%g", (double)ad->config.alpha);
    cJSON_AddNumberToObject(root, "lora_alpha", strtod(buf, NULL));
    snprintf(buf, sizeof buf, "%g", (double)ad->config.dropout);
    cJSON_AddNumberToObject(root, "lora_dropout", strtod(buf, NULL));
    cJSON *targets = cJSON_AddArrayToObject(root, "target_modules");
    for (int mod = 0; mod < LORA_MODULES; mod++)
        if (ad->config.target_mask & LORA_BIT(mod))
            cJSON_AddItemToArray(targets, cJSON_CreateString(lora_module_name((LoraModule)mod)));
    cJSON_AddStringToObject(root, "bias", "none");
    cJSON_AddBoolToObject(root, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(root, "inference_mode", 1);
    cJSON_AddBoolToObject(root, "init_lora_weights", 1);
    cJSON_AddBoolToObject(root, "use_rslora", 0);
    cJSON_AddBoolToObject(root, "use_dora", 0);
    cJSON_AddNullToObject(root, "modules_to_save");
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

int peft_save(const LoraAdapters *ad, const Model *base, const char *dir,
              const char *base_model_name, const char *command_line, CkError *err) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ck_fail(err, "%s: cannot create folder: %s", dir, strerror(errno));
    const float *src = ad->params;
    float *permuted = NULL;
    if (base->config.rope_style == ROPE_INTERLEAVED &&
        (ad->config.target_mask & (LORA_BIT(LORA_Q) | LORA_BIT(LORA_K)))) {
        permuted = malloc(ad->n_params * sizeof(float));
        if (!permuted) return ck_fail(err, "out of memory");
        memcpy(permuted, ad->params, ad->n_params * sizeof(float));
        if (permute_qk_b(ad, base, permuted, 1, err) != 0) {
            free(permuted);
            return -1;
        }
        src = permuted;
    }
    SafetensorsWriter w;
    safetensors_writer_init(&w);
    int rc = 0;
    for (int i = 0; rc == 0 && i < ad->n_tensors; i++) {
        const LoraTensor *t = &ad->tensors[i];
        size_t shape[2] = {(size_t)t->rows, (size_t)t->cols};
        rc = safetensors_writer_add(&w, t->name, ST_F32, 2, shape, src + t->offset, err);
    }
    if (rc == 0) rc = safetensors_writer_set_metadata(&w, "format", "pt", err);
    if (rc == 0) rc = safetensors_writer_set_metadata(&w, "cutkit_version", CUTKIT_VERSION, err);
    if (rc == 0 && command_line)
        rc = safetensors_writer_set_metadata(&w, "command_line", command_line, err);
    char path[4200];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if (rc == 0) rc = safetensors_write(&w, path, err);
    safetensors_writer_free(&w);
    free(permuted);
    if (rc != 0) return -1;
    char *json = adapter_config_json(ad, base_model_name);
    if (!json) return ck_fail(err, "out of memory");
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    rc = fileio_write_atomic(path, json, strlen(json), err);
    free(json);
    return rc;
}

/* ---- loading ---------------------------------------------------------------------------- */

static int refuse_option(const cJSON *root, const char *key, const char *path, CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v)) return 0;
    if (cJSON_IsObject(v) && !v->child) return 0;                       /* rank_pattern: {} */
    if (cJSON_IsString(v) && !strcmp(v->valuestring, "none")) return 0; /* bias: "none" */
    return ck_fail(err, "%s: unsupported PEFT option \"%s\"", path, key);
}

/* r, lora_alpha and lora_dropout, checked before any cast: a double outside float (or int) is
 * undefined to convert, and 1e39 would become an infinite scale that turns every score into
 * NaN. */
static int parse_numbers(LoraConfig *c, const cJSON *root, const char *path, CkError *err) {
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "r");
    const cJSON *alpha = cJSON_GetObjectItemCaseSensitive(root, "lora_alpha");
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(root, "lora_dropout");
    if (!cJSON_IsNumber(r) || !(r->valuedouble >= 1 && r->valuedouble <= INT_MAX) ||
        r->valuedouble != floor(r->valuedouble))
        return ck_fail(err, "%s: field \"r\" must be a positive integer", path);
    if (!cJSON_IsNumber(alpha) || !(alpha->valuedouble > 0 && alpha->valuedouble <= FLT_MAX))
        return ck_fail(err, "%s: field \"lora_alpha\" must be a positive number in float range",
                       path);
    if (dropout &&
        !(cJSON_IsNumber(dropout) && dropout->valuedouble >= 0 && dropout->valuedouble < 1))
        return ck_fail(err, "%s: field \"lora_dropout\" must be a number in [0, 1)", path);
    c->rank = (int)r->valuedouble;
    c->alpha = (float)alpha->valuedouble;
    c->dropout = dropout ? (float)dropout->valuedouble : 0.0f;
    /* a ratio that rounds to 1.0f as a float is no longer below 1 */
    if (!(c->dropout < 1.0f))
        return ck_fail(err, "%s: field \"lora_dropout\" must be a number in [0, 1)", path);
    return 0;
}

/* target_modules: a list of module names, or one string of them. */
static int parse_targets(LoraConfig *c, const cJSON *root, const char *path, CkError *err) {
    const cJSON *targets = cJSON_GetObjectItemCaseSensitive(root, "target_modules");
    c->target_mask = 0;
    if (cJSON_IsString(targets))
        return lora_parse_targets(targets->valuestring, &c->target_mask, err);
    if (!cJSON_IsArray(targets))
        return ck_fail(err, "%s: field \"target_modules\" must be a list of module names", path);
    const cJSON *t;
    cJSON_ArrayForEach(t, targets) {
        unsigned bit = 0;
        if (!cJSON_IsString(t)) return ck_fail(err, "%s: target_modules must hold strings", path);
        if (lora_parse_targets(t->valuestring, &bit, err) != 0) return -1;
        c->target_mask |= bit;
    }
    if (c->target_mask == 0)
        return ck_fail(err, "%s: field \"target_modules\" names no module", path);
    return 0;
}

int peft_config_parse(LoraConfig *c, const char *text, size_t len, const char *path, CkError *err) {
    memset(c, 0, sizeof *c);
    cJSON *root = json_parse_strict(text, len, path, err);
    if (!root) return -1;
    int rc = 0;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "peft_type");
    if (!cJSON_IsObject(root))
        rc = ck_fail(err, "%s: not a JSON object", path);
    else if (cJSON_IsString(type) && strcmp(type->valuestring, "LORA") != 0)
        rc = ck_fail(err, "%s: peft_type \"%s\" is not LORA", path, type->valuestring);
    else
        rc = parse_numbers(c, root, path, err);
    const char *options[] = {
        "use_dora",     "use_rslora",    "fan_in_fan_out",      "modules_to_save",
        "rank_pattern", "alpha_pattern", "layers_to_transform", "bias"};
    for (size_t i = 0; rc == 0 && i < sizeof options / sizeof options[0]; i++)
        rc = refuse_option(root, options[i], path, err);
    if (rc == 0 && (rc = parse_targets(c, root, path, err)) != 0 &&
        strncmp(err->msg, path, strlen(path)) != 0)
        ck_wrap(err, "%s", path);
    cJSON_Delete(root);
    return rc;
}

static int parse_adapter_config(LoraConfig *c, const char *path, CkError *err) {
    size_t len = 0;
    char *text = fileio_read_text(path, 1 << 20, &len, err);
    if (!text) return -1;
    int rc = peft_config_parse(c, text, len, path, err);
    free(text);
    return rc;
}

/* Refuses a NaN or infinite weight, naming the tensor: it would make every score NaN. */
static int check_finite(const LoraAdapters *ad, const char *path, CkError *err) {
    for (int i = 0; i < ad->n_tensors; i++) {
        const LoraTensor *t = &ad->tensors[i];
        const float *x = ad->params + t->offset;
        for (size_t j = 0; j < t->size; j++)
            if (!isfinite(x[j]))
                return ck_fail(err, "%s: tensor %s holds %s at element %zu", path, t->name,
                               isnan(x[j]) ? "nan"
                               : x[j] > 0  ? "inf"
                                           : "-inf",
                               j);
    }
    return 0;
}

int peft_load(LoraAdapters *ad, const Model *m, const char *dir, CkError *err) {
    memset(ad, 0, sizeof *ad);
    char path[4200];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    LoraConfig c;
    if (parse_adapter_config(&c, path, err) != 0) return -1;
    if (lora_init(ad, m, &c, 0, err) != 0) return ck_wrap(err, "%s", path);
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    SafetensorsFile f;
    if (safetensors_open(&f, path, err) != 0) {
        lora_free(ad);
        return -1;
    }
    int rc = 0;
    for (int i = 0; rc == 0 && i < ad->n_tensors; i++) {
        const LoraTensor *t = &ad->tensors[i];
        const SafetensorsTensor *st = safetensors_find(&f, t->name);
        if (!st) {
            rc = ck_fail(err, "%s: missing tensor %s", path, t->name);
        } else if (st->ndim != 2 || st->shape[0] != (size_t)t->rows ||
                   st->shape[1] != (size_t)t->cols) {
            rc = ck_fail(err, "%s: tensor %s has the wrong shape; r=%d needs [%d, %d]", path,
                         t->name, c.rank, t->rows, t->cols);
        } else {
            rc = safetensors_read_f32(&f, st, ad->params + t->offset, err);
        }
    }
    if (rc == 0 && safetensors_count(&f) != (size_t)ad->n_tensors)
        rc = ck_fail(err, "%s: holds %zu tensors; the config's %d target modules need %d", path,
                     safetensors_count(&f), ad->n_targets, ad->n_tensors);
    safetensors_close(&f);
    if (rc == 0) rc = check_finite(ad, path, err);
    if (rc == 0 && m->config.rope_style == ROPE_INTERLEAVED)
        rc = permute_qk_b(ad, m, ad->params, 0, err);
    if (rc != 0) lora_free(ad);
    return rc;
}
