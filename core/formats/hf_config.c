/* hf_config.c — config.json <-> ModelConfig. The Llama options that cutkit's math
 * implements are read; any option that would change the math is refused by name rather
 * than ignored, so a model never runs silently wrong. */
#include "formats/hf_config.h"

#include "util/fileio.h"
#include "util/json_strict.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads an integer field; `required` fields must exist. Returns 0, or -1 with err set. */
static int get_int(const cJSON *root, const char *key, int required, int def, int *out,
                   const char *source, CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) return ck_fail(err, "%s: missing field \"%s\"", source, key);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        fabs(v->valuedouble) > 2147483647.0)
        return ck_fail(err, "%s: field \"%s\" must be an integer", source, key);
    *out = (int)v->valuedouble;
    return 0;
}

static int get_float(const cJSON *root, const char *key, float def, float *out, const char *source,
                     CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !(fabs(v->valuedouble) <= FLT_MAX))
        return ck_fail(err, "%s: field \"%s\" must be a number in float range", source, key);
    *out = (float)v->valuedouble;
    return 0;
}

/* bos/eos ids may be a number or a list of numbers (Llama 3); the first one is used. */
static int get_token_id(const cJSON *root, const char *key, int *out, const char *source,
                        CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = -1;
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsArray(v)) v = cJSON_GetArrayItem(v, 0);
    /* range-checked before the cast: a double outside int is undefined behaviour to convert */
    if (!v || !cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > 2147483647.0)
        return ck_fail(err, "%s: field \"%s\" must be a token id or a list of them", source, key);
    *out = (int)v->valuedouble;
    return 0;
}

/* A field that must be absent, null or false (or one of the given harmless values). */
static int refuse_if_set(const cJSON *root, const char *key, const char *why, const char *source,
                         CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v)) return 0;
    return ck_fail(err, "%s: unsupported option \"%s\" (%s)", source, key, why);
}

static int parse_root(HfConfig *out, const cJSON *root, const char *source, CkError *err) {
    if (!cJSON_IsObject(root)) return ck_fail(err, "%s: not a JSON object", source);
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *first = cJSON_IsArray(arch) ? cJSON_GetArrayItem(arch, 0) : NULL;
    if (!cJSON_IsString(first))
        return ck_fail(err, "%s: missing \"architectures\" (expected [\"LlamaForCausalLM\"])",
                       source);
    if (strcmp(first->valuestring, "LlamaForCausalLM") != 0 &&
        strcmp(first->valuestring, "MistralForCausalLM") != 0)
        return ck_fail(err,
                       "%s: unsupported architecture \"%s\" (cutkit reads LlamaForCausalLM and "
                       "MistralForCausalLM)",
                       source, first->valuestring);
    snprintf(out->architecture, sizeof out->architecture, "%s", first->valuestring);
    ModelConfig *c = &out->model;
    if (get_int(root, "hidden_size", 1, 0, &c->dim, source, err) ||
        get_int(root, "intermediate_size", 1, 0, &c->hidden_dim, source, err) ||
        get_int(root, "num_hidden_layers", 1, 0, &c->n_layers, source, err) ||
        get_int(root, "num_attention_heads", 1, 0, &c->n_heads, source, err) ||
        get_int(root, "num_key_value_heads", 0, c->n_heads, &c->n_kv_heads, source, err) ||
        get_int(root, "vocab_size", 1, 0, &c->vocab_size, source, err) ||
        get_int(root, "max_position_embeddings", 1, 0, &c->seq_len, source, err) ||
        get_float(root, "rms_norm_eps", 1e-6f, &c->norm_eps, source, err) ||
        get_float(root, "rope_theta", 10000.0f, &c->rope_theta, source, err) ||
        get_token_id(root, "bos_token_id", &out->bos_token_id, source, err) ||
        get_token_id(root, "eos_token_id", &out->eos_token_id, source, err))
        return -1;
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (tie && !cJSON_IsBool(tie))
        return ck_fail(err, "%s: field \"tie_word_embeddings\" must be true or false", source);
    c->shared_classifier = tie ? cJSON_IsTrue(tie) : 0; /* transformers' Llama default */
    c->rope_style = ROPE_HALF_SPLIT;
    if (refuse_if_set(root, "rope_scaling", "scaled rotary embeddings are not implemented", source,
                      err) ||
        refuse_if_set(root, "attention_bias", "biases are not implemented", source, err) ||
        refuse_if_set(root, "mlp_bias", "biases are not implemented", source, err))
        return -1;
    const cJSON *window = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
    if (window && !cJSON_IsNull(window) &&
        !(cJSON_IsNumber(window) && window->valuedouble >= c->seq_len))
        return ck_fail(err,
                       "%s: unsupported option \"sliding_window\" (a window shorter than "
                       "max_position_embeddings is not implemented)",
                       source);
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act && !(cJSON_IsString(act) && strcmp(act->valuestring, "silu") == 0))
        return ck_fail(err, "%s: unsupported option \"hidden_act\" (only silu is implemented)",
                       source);
    int head_dim = 0;
    if (get_int(root, "head_dim", 0, 0, &head_dim, source, err)) return -1;
    /* in 64 bits: 536870920 * 8 wraps to 64 in int */
    if (head_dim && c->n_heads > 0 && (int64_t)head_dim * c->n_heads != c->dim)
        return ck_fail(err,
                       "%s: unsupported option \"head_dim\" (%d; cutkit needs hidden_size / "
                       "num_attention_heads)",
                       source, head_dim);
    if (model_config_validate(c, err) != 0) return ck_wrap(err, "%s", source);
    return 0;
}

/* text[0..len) may hold NULs, which the strict parse refuses like any trailing content. */
static int parse_text(HfConfig *out, const char *text, size_t len, const char *source,
                      CkError *err) {
    memset(out, 0, sizeof *out);
    cJSON *root = json_parse_strict(text, len, source, err);
    if (!root) return -1;
    int rc = parse_root(out, root, source, err);
    cJSON_Delete(root);
    return rc;
}

int hf_config_parse(HfConfig *out, const char *json_text, const char *source, CkError *err) {
    return parse_text(out, json_text, strlen(json_text), source, err);
}

int hf_config_load(HfConfig *out, const char *path, CkError *err) {
    size_t len = 0;
    char *text = fileio_read_text(path, 64u << 20, &len, err);
    if (!text) return -1;
    int rc = parse_text(out, text, len, path, err);
    free(text);
    return rc;
}

/* The shortest decimal that reads back as the same float (1e-5f prints as 1e-05, not as
 * 9.99999974737875e-06). */
static double float_as_decimal(float x) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", x);
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, x);
        if ((float)strtod(buf, NULL) == x) break;
    }
    return strtod(buf, NULL);
}

char *hf_config_to_json(const HfConfig *cfg) {
    const ModelConfig *c = &cfg->model;
    cJSON *root = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(root, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("LlamaForCausalLM"));
    cJSON_AddStringToObject(root, "model_type", "llama");
    cJSON_AddNumberToObject(root, "hidden_size", c->dim);
    cJSON_AddNumberToObject(root, "intermediate_size", c->hidden_dim);
    cJSON_AddNumberToObject(root, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(root, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(root, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(root, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(root, "max_position_embeddings", c->seq_len);
    cJSON_AddNumberToObject(root, "rms_norm_eps", float_as_decimal(c->norm_eps));
    cJSON_AddNumberToObject(root, "rope_theta", float_as_decimal(c->rope_theta));
    cJSON_AddBoolToObject(root, "tie_word_embeddings", c->shared_classifier);
    cJSON_AddStringToObject(root, "hidden_act", "silu");
    cJSON_AddStringToObject(root, "torch_dtype", "float32");
    if (cfg->bos_token_id >= 0) cJSON_AddNumberToObject(root, "bos_token_id", cfg->bos_token_id);
    if (cfg->eos_token_id >= 0) cJSON_AddNumberToObject(root, "eos_token_id", cfg->eos_token_id);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}
