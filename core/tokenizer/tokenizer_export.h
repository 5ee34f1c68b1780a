/* tokenizer_export.h — a llama2.c tokenizer written out as Hugging Face tokenizer files. */
#ifndef CK_TOKENIZER_EXPORT_H
#define CK_TOKENIZER_EXPORT_H

#include "util/ck_error.h"
#include "tokenizer/tokenizer.h"

/* Writes the llama2.c tokenizer t into the existing folder dir as tokenizer.json (a
 * SentencePiece-style BPE whose encode(text) gives tokenizer_encode(t, text, 1, 0)'s ids) and
 * tokenizer_config.json (model_max_length > 0), each atomically; refuses tokenizers of another
 * kind or ones tokenizer.json cannot express, with a message saying why. */
int tokenizer_export_hf(const Tokenizer *t, const char *dir, int model_max_length, CkError *err);

#endif
