/* score_text.c — see score_text.h: one forward pass over the text, then the log-probability
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
    out->ids = ids;
    out->n = n;
    if (n > m->config.seq_len) {
        score_text_free(out);
        return ck_fail(err, "the text has %d tokens; the model's context is %d", n,
                       m->config.seq_len);
    }
    Activations a;
    int *targets = malloc(sizeof(int) * (size_t)n);
    out->logprobs = malloc(sizeof(double) * (size_t)n); /* the last row's 0 is not counted */
    int rc = -1;
    if (!targets || !out->logprobs) {
        ck_fail(err, "out of memory");
        goto done;
    }
    if (activations_init(&a, m, n, n, 0, err) != 0) goto done;
    for (int i = 0; i < n; i++) targets[i] = i + 1 < n ? ids[i + 1] : -1;
    int offsets[2] = {0, n};
    TokenBatch b = {1, offsets, ids};
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
