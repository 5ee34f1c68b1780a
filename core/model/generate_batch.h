/* generate_batch.h — batched decoding with continuous batching: up to B sequences decode
 * together, one pass over the weights per step, and a finished sequence's slot is refilled
 * from the queue at the next step (its prompt prefilled in the same pass as the others'
 * next tokens).
 *
 * Each request keeps its own sampler (seeded by its own seed) and its own KV cache, so its
 * tokens do not depend on B or on which requests share a step. A step of up to 16 rows sums
 * every product exactly as one row alone does (matmul.c's gemv kernel); a step that also
 * prefills a prompt has more rows and goes through BLAS, whose fp32 rounding differs, which
 * changes a greedy pick only where two logits tie within that rounding. */
#ifndef CK_GENERATE_BATCH_H
#define CK_GENERATE_BATCH_H

#include <stdio.h>

#include "util/ck_error.h"
#include "model/generate.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

struct LoraAdapters;

/* One queued sequence: a prompt and how to continue it. */
typedef struct {
    const int
        *prompt;  /* prompt ids (BOS included, as tokenizer_encode(.., 1, 0) gives); borrowed */
    int n_prompt; /* 1 .. seq_len - 1 */
    GenerateOptions opt; /* steps = new tokens at most, sampling, seed, stop_at_eos */
    /* The stop rule beyond BOS/EOS: called with each generated token and its decoded bytes;
     * a non-zero return ends this sequence after that token (NULL: none). */
    GenerateCallback on_token;
    void *ctx; /* on_token's and on_done's ctx */
} GenerateRequest;

/* Called once when request `index` has finished, with its counts (seconds: from its
 * admission to its last token). A non-zero return stops the whole run with -1 (err set). */
typedef int (*GenerateDoneCallback)(void *ctx, int index, const GenerateStats *stats, CkError *err);

typedef struct {
    int max_batch;                   /* B: sequences decoding together (>= 1) */
    const struct LoraAdapters *lora; /* adapters added in eval mode; NULL: none */
    GenerateDoneCallback on_done;    /* NULL: none */
    FILE *progress; /* sequences done, tokens/s and ETA about every 2 s; NULL: silent */
} GenerateBatchOptions;

typedef struct {
    int sequences;      /* requests finished */
    long prompt_tokens; /* prefilled */
    long generated_tokens;
    int forwards;   /* passes over the weights */
    double seconds; /* the whole run */
} GenerateBatchStats;

/* The defaults: B = 16, no adapters, no callback, silent. */
void generate_batch_options_init(GenerateBatchOptions *o);

/* Decodes requests 0 .. n-1, admitted in order as slots free up, up to o->max_batch at a
 * time. Each behaves as generate_text on its own prompt: up to opt.steps tokens (fewer when
 * the context fills), ending early at BOS/EOS (stop_at_eos) or when on_token returns non-zero.
 * Fails (-1, err naming the request) on a prompt that is empty or fills the context, or when
 * a callback fails; the requests finished before were reported through on_done. tok may be
 * NULL for raw ids (benchmarks): no BOS/EOS stop, and on_token gets a NULL piece. */
int generate_batch(const Model *m, const Tokenizer *tok, const GenerateRequest *reqs, int n,
                   const GenerateBatchOptions *o, GenerateBatchStats *stats, CkError *err);

#endif
