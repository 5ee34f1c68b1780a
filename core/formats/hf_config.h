/* hf_config.h — Hugging Face config.json for Llama-family models, to and from ModelConfig. */
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
 * the byte; a leading byte-order mark is skipped): LlamaForCausalLM or MistralForCausalLM
 * with the Llama options.
 * Unknown architectures and options that would change the math (rope_scaling, a sliding
 * window shorter than the context, biases, activations other than silu) are refused by
 * name. Sets rope_style to ROPE_HALF_SPLIT, Hugging Face's convention. `source` names the
 * file in messages. */
int hf_config_parse(HfConfig *out, const char *json_text, const char *source, CkError *err);

/* Reads and parses the config.json at path (see hf_config_parse). */
int hf_config_load(HfConfig *out, const char *path, CkError *err);

/* Returns config.json text (malloc'd, caller frees) for cfg as LlamaForCausalLM, or NULL
 * when out of memory. */
char *hf_config_to_json(const HfConfig *cfg);

#endif
