/* score_text.h — teacher-forced log-probabilities of one text, or one sequence of token ids,
 * token by token. */
#ifndef CK_SCORE_TEXT_H
#define CK_SCORE_TEXT_H

#include "model/lora.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/ck_error.h"

typedef struct {
    int *ids;          /* [n] the text's tokens, BOS first (owned) */
    double *logprobs;  /* [n - 1] log p(ids[i + 1] | ids[0..i]) (owned) */
    int n;             /* tokens */
    double sum;        /* of logprobs */
    double mean_nll;   /* -sum / (n - 1); 0 when n < 2 */
    double perplexity; /* exp(mean_nll) */
} TextScore;

/* Encodes text with BOS and scores every token after the first given the ones before it,
 * through model m with the adapters lora applied (NULL: none). Refuses a text longer than the
 * model's context. Returns 0 with out filled (release with score_text_free), or -1 with err
 * filled and out empty. */
int score_text(const Model *m, const Tokenizer *tok, const LoraAdapters *lora, const char *text,
               TextScore *out, CkError *err);

/* Scores the token sequence ids[0..n) as given (no BOS is added: include it when the model
 * expects one): every token after the first given the ones before it, through m with lora
 * applied (NULL: none); out->ids is a copy. Refuses an empty sequence, one longer than the
 * model's context, and an id outside [0, vocab_size) ("element K: id V is outside the
 * model's vocabulary [0, N)"). Returns 0 with out filled, or -1 with err and out empty. */
int score_ids(const Model *m, const LoraAdapters *lora, const int *ids, int n, TextScore *out,
              CkError *err);

/* Releases what out owns and zeroes it. */
void score_text_free(TextScore *out);

#endif
