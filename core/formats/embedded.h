/* embedded.h — the default model and tokenizer that are linked into the binary. */
#ifndef CK_EMBEDDED_H
#define CK_EMBEDDED_H

#include <stddef.h>

#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/ck_error.h"

/* The embedded tok512's vocabulary size (a llama2.c tokenizer.bin does not store it). */
#define EMBEDDED_TOKENIZER_VOCAB 512

/* The bytes of the embedded stories260K.bin (llama2.c version 0); *size receives its length. */
const void *embedded_model(size_t *size);

/* The bytes of the embedded tok512.bin (llama2.c tokenizer); *size receives its length. */
const void *embedded_tokenizer(size_t *size);

/* Loads the embedded stories260K into m (see llama2c_load). */
int embedded_model_load(Model *m, CkError *err);

/* Loads the embedded tok512 into t (see tokenizer_load_llama2c). */
int embedded_tokenizer_load(Tokenizer *t, CkError *err);

#endif
