/* tokenizer_hf.h — the internal interface between tokenizer.c, which owns the public
 * functions, and the tokenizer_hf*.c files, which implement them for Hugging Face
 * tokenizer.json files. Not for use outside core/tokenizer/. */
#ifndef CK_TOKENIZER_HF_H
#define CK_TOKENIZER_HF_H

#include <stddef.h>

#include "tokenizer/tokenizer.h"

/* Parses tokenizer.json text (and tokenizer_config.json text, or NULL) into t, which the
 * caller has zeroed; on failure everything allocated is released and t stays zeroed. */
int hf_load(Tokenizer *t, const char *json_text, size_t json_len, const char *config_text,
            const char *source, CkError *err);

/* Releases an HfTokenizer (NULL is fine). */
void hf_free(HfTokenizer *hf);

/* Encodes text into a malloc'd array: with add_special the post-processor's tokens; then
 * bos_id in front when add_bos and eos_id behind when add_eos (each when not -1). */
int hf_encode(const Tokenizer *t, const char *text, int add_special, int add_bos, int add_eos,
              int **ids, int *n_ids, CkError *err);

/* Decodes ids through the tokenizer.json decoder (see tokenizer_decode_special). */
char *hf_decode(const Tokenizer *t, const int *ids, int n, int skip_special, size_t *len);

/* The streaming piece of id after prev (see tokenizer_decode_piece). */
const char *hf_decode_piece(const Tokenizer *t, int prev, int id, char byte_buf[2], size_t *len);

/* 1 when id is an added token marked special. */
int hf_is_special(const Tokenizer *t, int id);

#endif
