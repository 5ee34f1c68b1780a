/* generate.h — text generation with a KV cache. */
#ifndef CK_GENERATE_H
#define CK_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "util/ck_error.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    int steps;         /* tokens to generate after the prompt */
    float temperature; /* 0: greedy */
    float top_p;       /* nucleus mass, (0, 1] */
    uint64_t seed;
    int stop_at_eos; /* stop when the model emits BOS or EOS (a story model's "end") */
} GenerateOptions;

typedef struct {
    int prompt_tokens;
    int generated_tokens;
    double seconds; /* prefill + decoding, excluding model loading */
} GenerateStats;

/* Called once per generated token with its decoded bytes; a non-zero return stops early. */
typedef int (*GenerateCallback)(void *ctx, int token, const char *piece, size_t len);

/* Encodes prompt (with BOS), runs it through the model in one batched pass that fills a KV
 * cache, then produces up to opt->steps tokens one at a time, calling on_token for each. The
 * generated ids are also written to out_ids (if non-NULL, capacity opt->steps). */
int generate_text(const Model *m, const Tokenizer *tok, const char *prompt,
                  const GenerateOptions *opt, GenerateCallback on_token, void *ctx, int *out_ids,
                  GenerateStats *stats, CkError *err);

#endif
