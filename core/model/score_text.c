/* score_text.c — see score_text.h: one forward pass over the tokens, then the log-probability
 * of each next token. */
#include "model/score_text.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void score_text_free(TextScore *out) {
    free(out->ids);
    free(out->logprobs);
    memset(out, 0, sizeof *out);
}

int score_text(const Model *m, const Tokenizer *tok, const LoraAdapters *lora, const char *text,
               TextScore *out, CkError *err) {
    memset(out, 0, sizeof *out);
    int *ids = NULL, n = 0;
    if (tokenizer_encode(tok, text, 1, 0, &ids, &n, err) != 0) return -1;
    if (n > m->config.seq_len) {
        free(ids);
        return ck_fail(err, "the text has %d tokens; the model's context is %d", n,
                       m->config.seq_len);
    }
    int rc = score_ids(m, lora, ids, n, out, err);
    free(ids);
    return rc;
}

int score_ids(const Model *m, const LoraAdapters *lora, const int *ids, int n, TextScore *out,
              CkError *err) {
    memset(out, 0, sizeof *out);
    if (n < 1) return ck_fail(err, "expected at least one token id");
    if (n > m->config.seq_len)
        return ck_fail(err, "%d token ids; the model's context is %d", n, m->config.seq_len);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->config.vocab_size)
            return ck_fail(err, "element %d: id %d is outside the model's vocabulary [0, %d)", i,
                           ids[i], m->config.vocab_size);
    out->ids = malloc(sizeof(int) * (size_t)n);
    int *targets = malloc(sizeof(int) * (size_t)n);
    out->logprobs = malloc(sizeof(double) * (size_t)n); /* the last row's 0 is not counted */
    out->n = n;
    Activations a;
    int rc = -1;
    if (!out->ids || !targets || !out->logprobs) {
        ck_fail(err, "out of memory");
        goto done;
    }
    memcpy(out->ids, ids, sizeof(int) * (size_t)n);
    if (activations_init(&a, m, n, n, 0, err) != 0) goto done;
    for (int i = 0; i < n; i++) targets[i] = i + 1 < n ? ids[i + 1] : -1;
    int offsets[2] = {0, n};
    TokenBatch b = {1, offsets, out->ids};
    rc = model_forward(m, &a, &b, NULL, lora, err) == 0 &&
                 model_logprobs(m, &a, targets, out->logprobs, err) == 0
             ? 0
             : -1;
    activations_free(&a);
    if (rc != 0) goto done;
    for (int i = 0; i + 1 < n; i++) out->sum += out->logprobs[i];
    out->mean_nll = n > 1 ? -out->sum / (n - 1) : 0;
    out->perplexity = exp(out->mean_nll);
done:
    free(targets);
    if (rc != 0) score_text_free(out);
    return rc;
}
