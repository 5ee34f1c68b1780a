/* tokenize_stream.h — JSON lines in, JSON lines out: text to ids, or ids to text, one line at
 * a time (what `cutkit tokenize` does over stdin and stdout). */
#ifndef CK_TOKENIZE_STREAM_H
#define CK_TOKENIZE_STREAM_H

#include <stdio.h>

#include "tokenizer/tokenizer.h"
#include "util/ck_error.h"

typedef struct {
    int decode;         /* 0: {"text": ...} in, [ids] out; 1: [ids] or {"ids": [...]} in,
                           {"text": ...} out */
    int no_special;     /* encode without special tokens (BOS...); decode dropping them */
    const char *source; /* names the input in messages (default "stdin") */
} TokenizeStreamOptions;

/* Sets the defaults: encode, with special tokens, source "stdin". */
void tokenize_stream_options_init(TokenizeStreamOptions *o);

/* Reads in line by line until its end and writes one line to out for each line that is not
 * blank, flushing nothing itself until the end, so that output streams as a pipe consumes it.
 * Encoding refuses \u0000 in the text (cJSON would cut the string there); decoding refuses ids
 * outside the vocabulary; invalid UTF-8 in a decoded text (only a llama2.c tokenizer's byte
 * pieces can make it) is written as U+FFFD so that every line is valid JSON. Stops at the
 * first bad line: returns -1 with err "SOURCE line N: what was expected" (what came before is
 * written), or "cannot write the output". */
int tokenize_stream(const Tokenizer *t, FILE *in, FILE *out, const TokenizeStreamOptions *o,
                    CkError *err);

#endif
