/* lm.h — a model together with its tokenizer, opened from the embedded default or from files. */
#ifndef CK_LM_H
#define CK_LM_H

#include "util/ck_error.h"
#include "model/lora.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    Model model;
    Tokenizer tokenizer;
    char model_source[512];     /* "embedded:stories260K" or the path */
    char tokenizer_source[512]; /* "embedded:tok512" or the path */
} LanguageModel;

/* Opens a model and its tokenizer. model_path NULL means the embedded stories260K; a folder
 * is read as a Hugging Face folder, a file as a llama2.c checkpoint. tokenizer_path is a
 * tokenizer.json, a folder or a tokenizer.bin (tokenizer_open); with NULL: the folder's
 * tokenizer.json, or tokenizer.bin beside a llama2.c file, else the embedded tok512 when the
 * model's vocabulary has its 512 tokens. The tokenizer may not have more ids than the model. */
int lm_open(LanguageModel *lm, const char *model_path, const char *tokenizer_path, CkError *err);

/* lm_open with the model's matrices held as `held` (hf_model_load_held; WEIGHT_F32: lm_open).
 * Only Hugging Face folders can be held in another dtype; a llama2.c file or the embedded
 * model asked for one is refused before anything is read. */
int lm_open_held(LanguageModel *lm, const char *model_path, const char *tokenizer_path,
                 WeightDtype held, CkError *err);

/* lm_open_held, then the PEFT adapter in adapter_dir (NULL: none). An fp32 model takes it
 * merged into its weights (it then decodes at the base's cost) and *have_ad stays 0; a model
 * held in 16 or 8 bits, whose matrices cannot take a merge, gets it loaded into *ad with
 * *have_ad = 1, for the caller to add at every product (model_forward's lora,
 * GenerateBatchOptions.lora) and to lora_free. On failure nothing stays open. */
int lm_open_adapted(LanguageModel *lm, const char *model_path, const char *tokenizer_path,
                    WeightDtype held, const char *adapter_dir, LoraAdapters *ad, int *have_ad,
                    CkError *err);

/* Parses a --base-dtype value: "f32", "bf16", "f16" or "int8" (WEIGHT_Q8); -1 with err naming
 * the value and the choices otherwise. */
int lm_parse_base_dtype(const char *s, WeightDtype *out, CkError *err);

/* Releases the model and tokenizer. */
void lm_close(LanguageModel *lm);

#endif
