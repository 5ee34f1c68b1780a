/* respond.h — one response to one prompt, as the pairwise evaluation generates them: the
 * model's generation (generate.h) with stop strings, clean UTF-8 and trimmed ends. */
#ifndef CK_RESPOND_H
#define CK_RESPOND_H

#include <stdint.h>

#include "util/ck_error.h"
#include "util/strbuf.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    int max_tokens;          /* generated tokens at most */
    float temperature;       /* 0: greedy */
    float top_p;             /* nucleus mass for sampling */
    uint64_t seed;           /* sampling seed of this response */
    const char *const *stop; /* stop strings (may be NULL when n_stop is 0) */
    int n_stop;
} RespondOptions;

/* Generates a response to prompt (encoded with BOS): up to max_tokens tokens, ending early at
 * BOS/EOS or where the text first contains a stop string (the stop string and anything after
 * it are dropped). Bytes that do not form valid UTF-8 (a character cut by the token limit)
 * become U+FFFD, and whitespace at both ends is trimmed. *text is malloc'd (caller frees);
 * *n_tokens (may be NULL) gets the number of tokens generated. */
int respond_generate(const Model *m, const Tokenizer *tok, const char *prompt,
                     const RespondOptions *opt, char **text, int *n_tokens, CkError *err);

/* The sampling seed of record `index` of a run seeded with seed: a splitmix64 mix of both,
 * so each record's sample depends only on (seed, index), and a resumed run equals an
 * uninterrupted one. */
uint64_t respond_record_seed(uint64_t seed, int index);

/* Returns a malloc'd copy of s (n bytes) in which every byte that is not part of a
 * well-formed UTF-8 character (utf8_scan of util/utf8.h), and every NUL, is replaced by one
 * U+FFFD each, or NULL when out of memory. (One per byte, unlike utf8_put_lossy's one per
 * maximal ill-formed sequence: the form model_outputs.json files hold.) */
char *respond_utf8_clean(const char *s, size_t n);

/* Appends a generated piece (len bytes) to text and cuts the text at the earliest hit of any
 * of the n_stop stop strings (one may span pieces: the search starts early enough to see one
 * that began in earlier pieces). Returns 1 when a stop string was found (generation should
 * end), 0 otherwise, -1 when out of memory. */
int respond_append_piece(StrBuf *text, const char *piece, size_t len, const char *const *stop,
                         int n_stop);

#endif
