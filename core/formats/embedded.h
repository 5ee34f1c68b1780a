/* embedded.h — the default model and tokenizer that are linked into the binary. */
#ifndef CK_EMBEDDED_H
#define CK_EMBEDDED_H

#include <stddef.h>

/* The bytes of the embedded stories260K.bin (llama2.c version 0); *size receives its length. */
const void *embedded_model(size_t *size);

/* The bytes of the embedded tok512.bin (llama2.c tokenizer); *size receives its length. */
const void *embedded_tokenizer(size_t *size);

#endif
