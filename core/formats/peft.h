/* peft.h — LoRA adapters in PEFT's folder format: adapter_config.json and
 * adapter_model.safetensors with PEFT's tensor names, so that what cutkit trains loads in
 * PEFT, and adapters trained elsewhere load here. */
#ifndef CK_PEFT_H
#define CK_PEFT_H

#include "util/ck_error.h"
#include "model/lora.h"
#include "model/model.h"

/* Writes ad, trained on base, into dir (created if missing), atomically per file. When base
 * uses llama2.c's interleaved rotary order, the rows of the q_proj and k_proj B matrices are
 * permuted to Hugging Face's order, matching what `cutkit convert` does to the base weights.
 * base_model_name goes to base_model_name_or_path; command_line (may be NULL) to metadata. */
int peft_save(const LoraAdapters *ad, const Model *base, const char *dir,
              const char *base_model_name, const char *command_line, CkError *err);

/* Reads the PEFT adapter in dir for model m into ad (initialised here): r, lora_alpha,
 * lora_dropout and target_modules from adapter_config.json, every A and B tensor with its
 * shape; options PEFT has that change the math (DoRA, rsLoRA, biases, fan_in_fan_out,
 * per-layer patterns) are refused by name. */
int peft_load(LoraAdapters *ad, const Model *m, const char *dir, CkError *err);

/* Parses adapter_config.json text (text[0..len), one JSON object) into c: r a positive
 * integer, lora_alpha positive and finite as a float, lora_dropout in [0, 1), target_modules
 * known module names; PEFT options that change the math are refused by name. `path` names
 * the file in messages. peft_load also refuses weights that are NaN or infinite, naming the
 * tensor. */
int peft_config_parse(LoraConfig *c, const char *text, size_t len, const char *path, CkError *err);

#endif
