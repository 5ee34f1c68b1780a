/* contrast.h — per-token contrast of a judgment example: for every response token, log pA
 * (the Align-N sequence: prompt with the negative judgment; Align-P for a positive) and log
 * pM (the Misalign sequence: plain prompt), both from one batched forward of the two
 * sequences, with the byte range of the token's text in the response. CUT flags a token
 * when log pA - log pM > log λ (train/cut.h's cut_detect); this is what detection.h scores
 * and what `cutkit contrast` prints.
 *
 * Byte ranges come from decoding the response tokens piece by piece
 * (tokenizer_decode_piece, each after the token before it, so a llama2.c piece keeps its
 * leading space except right after BOS): token k covers the bytes its piece adds. When the
 * pieces spell the response byte for byte (the llama2.c tokenizers on valid UTF-8, and
 * SentencePiece-style tokenizer.json without a normalizer that changes the text) the ranges
 * are exact; otherwise they are ranges in the decoded text, clamped to the response, and
 * spans_exact is 0. */
#ifndef CK_ANALYSIS_CONTRAST_H
#define CK_ANALYSIS_CONTRAST_H

#include "util/ck_error.h"
#include "datasets/judgments.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

struct LoraAdapters;

typedef struct {
    int token;      /* response token id; the last one of a sequence is EOS */
    double log_pa;  /* log p(token | everything before it) in sequence A */
    double log_pm;  /* the same in the Misalign sequence; NAN for a positive example */
    int start, end; /* [start, end): the token's bytes in the response; EOS: [len, len) */
} TokenContrastRow;

typedef struct {
    TokenContrastRow *tokens;
    int n;           /* the example's n_response: response tokens and EOS */
    int negative;    /* 1 when log_pm is filled */
    int spans_exact; /* 1: the decoded pieces spell the response byte for byte */
} TokenContrast;

/* Fills c for example ex (judgments_build_example) of a record whose output is `response`:
 * one forward of sequence A and, for a negative example, the Misalign sequence packed beside
 * it (eval mode; lora NULL: the bare model), log p of every response token in each, and the
 * byte ranges. Fails when a sequence is longer than the model's context or its prompt was
 * truncated away (the first response token would have nothing to be predicted from). */
int token_contrast_compute(const Model *m, const struct LoraAdapters *lora, const Tokenizer *tok,
                           const CutExample *ex, const char *response, TokenContrast *c,
                           CkError *err);

/* Releases c's tokens and zeroes it; safe on a zeroed TokenContrast. */
void token_contrast_free(TokenContrast *c);

/* Writes the byte range in response of every response token of sequence q (its trained
 * positions, in order) into starts/ends (ex->n_response entries each), decoding piece by
 * piece from the token before the first one; returns 1 when the pieces spell response
 * exactly, else 0 (ranges then in the decoded text, clamped to the response). */
int token_contrast_spans(const Tokenizer *tok, const CutSequence *q, const char *response,
                         int *starts, int *ends);

#endif
