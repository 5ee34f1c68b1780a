/* hf_config.c — config.json <-> ModelConfig + ModelArch, for the Llama, Mistral, Qwen2, Qwen3,
 * Gemma and Gemma 2 architectures. The options that cutkit's math implements are read with
 * transformers' defaults for absent keys; any other value that would change the math is
 * refused naming its key and value rather than ignored, so a model never runs silently
 * wrong. */
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

/* What parse_root fills: an HfConfig and the family options beside it. */
typedef struct {
    ModelConfig model;
    int bos_token_id, eos_token_id;
    char architecture[64];
    ModelArch arch;
} Parsed;

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

/* The architectures cutkit reads, their family and model_type, and whether transformers ties
 * the classifier to the embedding when tie_word_embeddings is absent. */
static const struct {
    const char *name;
    ModelFamily family;
    const char *model_type;
    int tied_default;
} ARCHITECTURES[] = {
    {"LlamaForCausalLM", FAMILY_LLAMA, "llama", 0},
    {"MistralForCausalLM", FAMILY_MISTRAL, "mistral", 0},
    {"Qwen2ForCausalLM", FAMILY_QWEN2, "qwen2", 0},
    {"Qwen3ForCausalLM", FAMILY_QWEN3, "qwen3", 0},
    {"GemmaForCausalLM", FAMILY_GEMMA, "gemma", 1},
    {"Gemma2ForCausalLM", FAMILY_GEMMA2, "gemma2", 1},
};
enum { N_ARCHITECTURES = sizeof ARCHITECTURES / sizeof ARCHITECTURES[0] };

/* A string option's value for messages: the string, or "(not a string)". */
static const char *value_text(const cJSON *v) {
    return cJSON_IsString(v) ? v->valuestring : "(not a string)";
}

/* rope_scaling (or transformers 5's rope_parameters): the type under "rope_type" (or the
 * older "type"); "default" and null are plain RoPE, "linear" and "llama3" are read with their
 * factors, any other type is refused naming it. rope_parameters may also carry rope_theta. */
static int parse_rope(Parsed *out, const cJSON *root, const char *source, CkError *err) {
    const char *key = "rope_scaling";
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!rs || cJSON_IsNull(rs)) {
        key = "rope_parameters";
        rs = cJSON_GetObjectItemCaseSensitive(root, key);
    }
    if (!rs || cJSON_IsNull(rs)) return 0;
    if (!cJSON_IsObject(rs)) return ck_fail(err, "%s: field \"%s\" must be an object", source, key);
    if (cJSON_GetObjectItemCaseSensitive(rs, "rope_theta") &&
        get_float(rs, "rope_theta", 10000.0f, &out->model.rope_theta, source, err))
        return -1;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    const char *type_key = "rope_type";
    if (!type) {
        type = cJSON_GetObjectItemCaseSensitive(rs, "type");
        type_key = "type";
    }
    ModelArch *ar = &out->arch;
    if (!type || (cJSON_IsString(type) && strcmp(type->valuestring, "default") == 0)) return 0;
    if (cJSON_IsString(type) && strcmp(type->valuestring, "linear") == 0)
        ar->rope_scaling = ROPE_SCALING_LINEAR;
    else if (cJSON_IsString(type) && strcmp(type->valuestring, "llama3") == 0)
        ar->rope_scaling = ROPE_SCALING_LLAMA3;
    else
        return ck_fail(err,
                       "%s: unsupported option \"%s.%s\": \"%s\" (cutkit implements default, "
                       "linear and llama3)",
                       source, key, type_key, value_text(type));
    const cJSON *factor = cJSON_GetObjectItemCaseSensitive(rs, "factor");
    if (!cJSON_IsNumber(factor))
        return ck_fail(err, "%s: field \"%s.factor\" must be a number", source, key);
    if (get_float(rs, "factor", 1.0f, &ar->rope_factor, source, err)) return -1;
    if (ar->rope_scaling != ROPE_SCALING_LLAMA3) return 0;
    if (get_float(rs, "low_freq_factor", 1.0f, &ar->rope_low_freq, source, err) ||
        get_float(rs, "high_freq_factor", 4.0f, &ar->rope_high_freq, source, err) ||
        get_int(rs, "original_max_position_embeddings", 1, 0, &ar->rope_original_len, source, err))
        return -1;
    return 0;
}

/* hidden_act (Gemma: hidden_activation when set, as transformers 4.x read it): silu, or
 * GELU exact or in its tanh form; anything else is refused naming it. */
static int parse_activation(Parsed *out, const cJSON *root, const char *source, CkError *err) {
    const char *key = "hidden_act";
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, key);
    const int gemma = out->arch.family == FAMILY_GEMMA || out->arch.family == FAMILY_GEMMA2;
    const cJSON *gact = cJSON_GetObjectItemCaseSensitive(root, "hidden_activation");
    if (gemma && gact && !cJSON_IsNull(gact)) {
        key = "hidden_activation";
        act = gact;
    }
    if (!act || cJSON_IsNull(act)) {
        out->arch.act = gemma ? ACT_GELU_TANH : ACT_SILU;
        return 0;
    }
    const char *v = value_text(act);
    if (!strcmp(v, "silu") || !strcmp(v, "swish"))
        out->arch.act = ACT_SILU;
    else if (!strcmp(v, "gelu_pytorch_tanh") || !strcmp(v, "gelu_new"))
        out->arch.act = ACT_GELU_TANH;
    else if (!strcmp(v, "gelu"))
        out->arch.act = ACT_GELU;
    else
        return ck_fail(err,
                       "%s: unsupported option \"%s\": \"%s\" (cutkit implements silu, gelu, "
                       "gelu_pytorch_tanh and gelu_new)",
                       source, key, v);
    return 0;
}

/* Biases: Qwen2 always has q/k/v biases; attention_bias elsewhere would also bias o_proj,
 * and mlp_bias the FFN, neither of which cutkit implements. */
static int parse_biases(Parsed *out, const cJSON *root, const char *source, CkError *err) {
    out->arch.qkv_bias = out->arch.family == FAMILY_QWEN2;
    if (refuse_if_set(root, "attention_bias", "a bias on o_proj is not implemented", source, err) ||
        refuse_if_set(root, "mlp_bias", "FFN biases are not implemented", source, err))
        return -1;
    return 0;
}

/* The layer_types list of newer configs must be the pattern the family implies: every layer
 * "full_attention", or (Gemma 2) "sliding_attention" on even layers; without a window shorter
 * than the context "sliding_attention" is accepted anywhere. */
static int check_layer_types(const Parsed *out, const cJSON *root, const char *source,
                             CkError *err) {
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(root, "layer_types");
    if (!types || cJSON_IsNull(types)) return 0;
    if (!cJSON_IsArray(types) || cJSON_GetArraySize(types) != out->model.n_layers)
        return ck_fail(err, "%s: field \"layer_types\" must list the %d layers", source,
                       out->model.n_layers);
    for (int l = 0; l < out->model.n_layers; l++) {
        const cJSON *t = cJSON_GetArrayItem(types, l);
        const int sliding =
            out->arch.sliding_window > 0 && (!out->arch.sliding_alternate || l % 2 == 0);
        const char *want = sliding ? "sliding_attention" : "full_attention";
        /* a window no shorter than the context slides nowhere: either name is the same math */
        const int either = out->arch.sliding_window == 0 && cJSON_IsString(t) &&
                           strcmp(t->valuestring, "sliding_attention") == 0;
        if (!either && (!cJSON_IsString(t) || strcmp(t->valuestring, want) != 0))
            return ck_fail(err,
                           "%s: unsupported option \"layer_types[%d]\": \"%s\" (cutkit implements "
                           "\"%s\" there for this family)",
                           source, l, value_text(t), want);
    }
    return 0;
}

/* Sliding windows: Mistral's sliding_window on every layer (null, or at least the context:
 * none); Gemma 2's on even layers; Qwen's only with use_sliding_window, which is refused; a
 * Llama config must not shorten the context. */
static int parse_window(Parsed *out, const cJSON *root, const char *source, CkError *err) {
    ModelArch *ar = &out->arch;
    const cJSON *window = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
    const ModelFamily f = ar->family;
    if (f == FAMILY_QWEN2 || f == FAMILY_QWEN3)
        return refuse_if_set(root, "use_sliding_window",
                             "Qwen's sliding window over max_window_layers is not implemented",
                             source, err);
    if (cJSON_IsNull(window)) return 0;
    /* an absent key takes the config class's default: 4096 for Mistral and Gemma 2 */
    const int default_window = (f == FAMILY_MISTRAL || f == FAMILY_GEMMA2) ? 4096 : 0;
    if (!window && !default_window) return 0;
    if (window && (!cJSON_IsNumber(window) || window->valuedouble != floor(window->valuedouble) ||
                   window->valuedouble < 1 || window->valuedouble > 2147483647.0))
        return ck_fail(err, "%s: field \"sliding_window\" must be a positive integer or null",
                       source);
    const int w = window ? (int)window->valuedouble : default_window;
    if (w >= out->model.seq_len) return 0; /* never shorter than the context: no window */
    if (f == FAMILY_LLAMA || f == FAMILY_GEMMA)
        return ck_fail(err,
                       "%s: unsupported option \"sliding_window\": %d (a window shorter than "
                       "max_position_embeddings is not implemented for %s)",
                       source, w, out->architecture);
    ar->sliding_window = w;
    ar->sliding_alternate = f == FAMILY_GEMMA2;
    return 0;
}

/* Gemma: embeddings times sqrt(hidden_size) rounded to fp32, (1 + w) norms; Gemma 2 also soft
 * caps, query_pre_attn_scalar and the norms after attention and after the FFN. */
static int parse_gemma(Parsed *out, const cJSON *root, const char *source, CkError *err) {
    ModelArch *ar = &out->arch;
    if (ar->family != FAMILY_GEMMA && ar->family != FAMILY_GEMMA2) return 0;
    ar->norm_plus_one = 1;
    ar->embed_scale = (float)sqrt((double)out->model.dim);
    if (refuse_if_set(root, "use_bidirectional_attention", "only causal attention is implemented",
                      source, err))
        return -1;
    if (ar->family != FAMILY_GEMMA2) return 0;
    ar->sandwich_norms = 1;
    float qpas = 0.0f;
    /* absent: Gemma2Config's defaults (50, 30); null: no cap */
    const cJSON *att = cJSON_GetObjectItemCaseSensitive(root, "attn_logit_softcapping");
    const cJSON *fin = cJSON_GetObjectItemCaseSensitive(root, "final_logit_softcapping");
    if (get_float(root, "attn_logit_softcapping", att ? 0.0f : 50.0f, &ar->attn_softcap, source,
                  err) ||
        get_float(root, "final_logit_softcapping", fin ? 0.0f : 30.0f, &ar->final_softcap, source,
                  err) ||
        get_float(root, "query_pre_attn_scalar", 256.0f, &qpas, source, err))
        return -1;
    if (!(qpas > 0.0f))
        return ck_fail(err, "%s: field \"query_pre_attn_scalar\" must be positive", source);
    ar->attn_scale = (float)(1.0 / sqrt((double)qpas));
    return 0;
}

static int parse_architecture(Parsed *out, const cJSON *root, const char *source, int *tied_default,
                              CkError *err) {
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *first = cJSON_IsArray(arch) ? cJSON_GetArrayItem(arch, 0) : NULL;
    if (!cJSON_IsString(first))
        return ck_fail(err, "%s: missing \"architectures\" (expected [\"LlamaForCausalLM\"])",
                       source);
    for (int i = 0; i < N_ARCHITECTURES; i++)
        if (strcmp(first->valuestring, ARCHITECTURES[i].name) == 0) {
            out->arch.family = ARCHITECTURES[i].family;
            *tied_default = ARCHITECTURES[i].tied_default;
            snprintf(out->architecture, sizeof out->architecture, "%s", first->valuestring);
            return 0;
        }
    return ck_fail(err,
                   "%s: unsupported architecture \"%s\" (cutkit reads LlamaForCausalLM, "
                   "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, GemmaForCausalLM and "
                   "Gemma2ForCausalLM)",
                   source, first->valuestring);
}

static int parse_root(Parsed *out, const cJSON *root, const char *source, CkError *err) {
    if (!cJSON_IsObject(root)) return ck_fail(err, "%s: not a JSON object", source);
    int tied_default = 0;
    if (parse_architecture(out, root, source, &tied_default, err)) return -1;
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
        get_token_id(root, "eos_token_id", &out->eos_token_id, source, err) ||
        get_int(root, "head_dim", 0, 0, &out->arch.head_dim, source, err))
        return -1;
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (tie && !cJSON_IsBool(tie))
        return ck_fail(err, "%s: field \"tie_word_embeddings\" must be true or false", source);
    c->shared_classifier = tie ? cJSON_IsTrue(tie) : tied_default; /* transformers' defaults */
    c->rope_style = ROPE_HALF_SPLIT;
    if (out->arch.head_dim < 0 || out->arch.head_dim > 4096)
        return ck_fail(err, "%s: unsupported option \"head_dim\" (%d; cutkit implements 1..4096)",
                       source, out->arch.head_dim);
    /* an explicit head_dim equal to hidden / heads is the default: keep the Llama shape */
    if (out->arch.head_dim > 0 && c->n_heads > 0 &&
        (int64_t)out->arch.head_dim * c->n_heads == c->dim)
        out->arch.head_dim = 0;
    float partial = 1.0f;
    if (get_float(root, "partial_rotary_factor", 1.0f, &partial, source, err)) return -1;
    if (partial != 1.0f)
        return ck_fail(err,
                       "%s: unsupported option \"partial_rotary_factor\": %g (only 1 is "
                       "implemented)",
                       source, partial);
    out->arch.qk_norm = out->arch.family == FAMILY_QWEN3;
    if (parse_rope(out, root, source, err) || parse_biases(out, root, source, err) ||
        parse_window(out, root, source, err) || parse_activation(out, root, source, err) ||
        parse_gemma(out, root, source, err) || check_layer_types(out, root, source, err))
        return -1;
    if (model_arch_validate(c, &out->arch, err) != 0) return ck_wrap(err, "%s", source);
    return 0;
}

/* text[0..len) may hold NULs, which the strict parse refuses like any trailing content. */
static int parse_text(HfConfig *cfg, ModelArch *arch, const char *text, size_t len,
                      const char *source, CkError *err) {
    Parsed out;
    memset(&out, 0, sizeof out);
    memset(cfg, 0, sizeof *cfg);
    memset(arch, 0, sizeof *arch);
    cJSON *root = json_parse_strict(text, len, source, err);
    if (!root) return -1;
    int rc = parse_root(&out, root, source, err);
    cJSON_Delete(root);
    if (rc != 0) return -1;
    cfg->model = out.model;
    cfg->bos_token_id = out.bos_token_id;
    cfg->eos_token_id = out.eos_token_id;
    memcpy(cfg->architecture, out.architecture, sizeof cfg->architecture);
    *arch = out.arch;
    return 0;
}

/* The Llama-only entry points: a config whose family options change the math (anything but
 * the family's name) is refused, since their caller would build a Llama from it. */
static int llama_only(const HfConfig *cfg, const ModelArch *arch, const char *source,
                      CkError *err) {
    ModelArch plain = *arch;
    plain.family = FAMILY_LLAMA;
    const ModelArch llama = {0};
    if (memcmp(&plain, &llama, sizeof llama) == 0) return 0;
    return ck_fail(err,
                   "%s: this %s uses options beyond the Llama-2 shape, which only a folder "
                   "loaded as a whole (hf_model_load) runs",
                   source, cfg->architecture);
}

int hf_config_parse_arch(HfConfig *out, ModelArch *arch, const char *json_text, const char *source,
                         CkError *err) {
    return parse_text(out, arch, json_text, strlen(json_text), source, err);
}

int hf_config_load_arch(HfConfig *out, ModelArch *arch, const char *path, CkError *err) {
    size_t len = 0;
    char *text = fileio_read_text(path, 64u << 20, &len, err);
    if (!text) return -1;
    int rc = parse_text(out, arch, text, len, path, err);
    free(text);
    return rc;
}

int hf_config_parse(HfConfig *out, const char *json_text, const char *source, CkError *err) {
    ModelArch arch;
    if (hf_config_parse_arch(out, &arch, json_text, source, err) != 0) return -1;
    return llama_only(out, &arch, source, err);
}

int hf_config_load(HfConfig *out, const char *path, CkError *err) {
    ModelArch arch;
    if (hf_config_load_arch(out, &arch, path, err) != 0) return -1;
    return llama_only(out, &arch, path, err);
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

/* The family options of cfg->arch as the keys transformers reads back (hf_config_parse). */
static void arch_to_json(cJSON *root, const ModelArch *ar) {
    static const char *acts[] = {"silu", "gelu_pytorch_tanh", "gelu"};
    cJSON_AddStringToObject(root,
                            ar->family == FAMILY_GEMMA || ar->family == FAMILY_GEMMA2
                                ? "hidden_activation"
                                : "hidden_act",
                            acts[ar->act]);
    if (ar->head_dim > 0) cJSON_AddNumberToObject(root, "head_dim", ar->head_dim);
    if (ar->rope_scaling != ROPE_SCALING_NONE) {
        cJSON *rs = cJSON_AddObjectToObject(root, "rope_scaling");
        const int llama3 = ar->rope_scaling == ROPE_SCALING_LLAMA3;
        cJSON_AddStringToObject(rs, "rope_type", llama3 ? "llama3" : "linear");
        cJSON_AddNumberToObject(rs, "factor", float_as_decimal(ar->rope_factor));
        if (llama3) {
            cJSON_AddNumberToObject(rs, "low_freq_factor", float_as_decimal(ar->rope_low_freq));
            cJSON_AddNumberToObject(rs, "high_freq_factor", float_as_decimal(ar->rope_high_freq));
            cJSON_AddNumberToObject(rs, "original_max_position_embeddings", ar->rope_original_len);
        }
    }
    if (ar->family == FAMILY_MISTRAL || ar->family == FAMILY_GEMMA2) {
        if (ar->sliding_window > 0)
            cJSON_AddNumberToObject(root, "sliding_window", ar->sliding_window);
        else
            cJSON_AddNullToObject(root, "sliding_window");
    }
    if (ar->family == FAMILY_GEMMA2) {
        if (ar->attn_scale > 0.0f) /* else transformers' default, 256 */
            cJSON_AddNumberToObject(root, "query_pre_attn_scalar",
                                    round(1.0 / ((double)ar->attn_scale * ar->attn_scale)));
        if (ar->attn_softcap > 0.0f)
            cJSON_AddNumberToObject(root, "attn_logit_softcapping",
                                    float_as_decimal(ar->attn_softcap));
        else
            cJSON_AddNullToObject(root, "attn_logit_softcapping");
        if (ar->final_softcap > 0.0f)
            cJSON_AddNumberToObject(root, "final_logit_softcapping",
                                    float_as_decimal(ar->final_softcap));
        else
            cJSON_AddNullToObject(root, "final_logit_softcapping");
    }
}

char *hf_config_to_json(const HfConfig *cfg) {
    const ModelArch llama = {0};
    return hf_config_to_json_arch(cfg, &llama);
}

char *hf_config_to_json_arch(const HfConfig *cfg, const ModelArch *ar) {
    const ModelConfig *c = &cfg->model;
    int which = 0; /* ARCHITECTURES[0] is Llama */
    for (int i = 0; i < N_ARCHITECTURES; i++)
        if (ARCHITECTURES[i].family == ar->family) which = i;
    cJSON *root = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(root, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString(ARCHITECTURES[which].name));
    cJSON_AddStringToObject(root, "model_type", ARCHITECTURES[which].model_type);
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
    arch_to_json(root, ar);
    cJSON_AddStringToObject(root, "torch_dtype", "float32");
    if (cfg->bos_token_id >= 0) cJSON_AddNumberToObject(root, "bos_token_id", cfg->bos_token_id);
    if (cfg->eos_token_id >= 0) cJSON_AddNumberToObject(root, "eos_token_id", cfg->eos_token_id);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}
