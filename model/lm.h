/* lm.h — a model together with its tokenizer, opened from the embedded default or from files. */
#ifndef CK_LM_H
#define CK_LM_H

#include "ck_error.h"
#include "model.h"
#include "tokenizer.h"

typedef struct {
    Model model;
    Tokenizer tokenizer;
    char model_source[512];     /* "embedded:stories260K" or the path */
    char tokenizer_source[512]; /* "embedded:tok512" or the path */
} LanguageModel;

/* Opens a model and its tokenizer. model_path NULL means the embedded stories260K; a folder
 * is read as a Hugging Face folder, a file as a llama2.c checkpoint. With
 * tokenizer_path NULL: the embedded tok512 for the embedded model, otherwise tokenizer.bin
 * beside the model file, or the embedded tok512 when the model's vocabulary has its 512
 * tokens. The tokenizer's vocabulary must match the model's. */
int lm_open(LanguageModel *lm, const char *model_path, const char *tokenizer_path, CkError *err);

/* Releases the model and tokenizer. */
void lm_close(LanguageModel *lm);

#endif
