/* hf_config.h — Hugging Face config.json of the families cutkit reads, to and from ModelConfig
 * and ModelArch (kept beside HfConfig, whose layout callers initialise field by field). */
#ifndef CK_HF_CONFIG_H
#define CK_HF_CONFIG_H

#include "util/ck_error.h"
#include "model/model.h"

typedef struct {
    ModelConfig model;
    int bos_token_id; /* -1 when absent */
    int eos_token_id; /* the first one when config.json lists several; -1 when absent */
    char architecture[64];
} HfConfig;

/* Parses config.json text, which must be one JSON object (content after it is refused, naming
 * the byte; a leading byte-order mark is skipped): LlamaForCausalLM (Llama 2/3.x, SmolLM2),
 * MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, GemmaForCausalLM or
 * Gemma2ForCausalLM, with the options transformers reads for that family (rope_scaling
 * "linear" and "llama3", tied embeddings, head_dim, q/k/v biases, q/k norms, sliding windows,
 * Gemma's scaled embeddings, (1 + w) norms, GeGLU, soft caps and sandwich norms) into out and
 * arch (ModelArch: what model_init_arch takes). Unknown architectures and any option value
 * that would change the math in a way cutkit does not implement are refused naming the key and
 * the value. Sets rope_style to ROPE_HALF_SPLIT, Hugging Face's convention. `source` names the
 * file in messages. */
int hf_config_parse_arch(HfConfig *out, ModelArch *arch, const char *json_text, const char *source,
                         CkError *err);

/* Reads and parses the config.json at path (see hf_config_parse_arch). */
int hf_config_load_arch(HfConfig *out, ModelArch *arch, const char *path, CkError *err);

/* hf_config_parse_arch for callers that build a Llama from out->model alone: a config whose
 * family options would change the math (rope scaling, biases, head norms, a window, Gemma's
 * parts...) is refused, saying that only hf_model_load runs it. */
int hf_config_parse(HfConfig *out, const char *json_text, const char *source, CkError *err);

/* Reads and parses the config.json at path (see hf_config_parse). */
int hf_config_load(HfConfig *out, const char *path, CkError *err);

/* Returns config.json text (malloc'd, caller frees) for cfg as LlamaForCausalLM, or NULL
 * when out of memory. */
char *hf_config_to_json(const HfConfig *cfg);

/* Returns config.json text (malloc'd, caller frees) for cfg in the architecture of arch's family
 * with its options (what hf_config_parse_arch reads back), or NULL when out of memory. */
char *hf_config_to_json_arch(const HfConfig *cfg, const ModelArch *arch);

#endif
