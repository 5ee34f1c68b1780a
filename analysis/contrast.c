/* contrast.c — log pA and log pM of every response token from one packed forward, and the
 * tokens' byte ranges in the response. */
#include "analysis/contrast.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* First trained position of q (its response starts there). */
static int response_start(const CutSequence *q) {
    return q->prompt_len > 0 ? q->prompt_len : 0;
}

int token_contrast_spans(const Tokenizer *tok, const CutSequence *q, const char *response,
                         int *starts, int *ends) {
    const int first = response_start(q);
    const size_t len = strlen(response);
    size_t pos = 0;
    int exact = 1;
    char byte_buf[2];
    for (int i = first; i < q->n; i++) {
        size_t k;
        const int prev = i > 0 ? q->tokens[i - 1] : -1;
        const char *piece = tokenizer_decode_piece(tok, prev, q->tokens[i], byte_buf, &k);
        /* exact while every piece continues the response where the last one stopped */
        if (exact && (pos + k > len || memcmp(response + pos, piece, k) != 0)) exact = 0;
        const size_t a = pos < len ? pos : len, b = pos + k < len ? pos + k : len;
        starts[i - first] = (int)a;
        ends[i - first] = (int)b;
        pos += k;
    }
    return exact && pos == len;
}

void token_contrast_free(TokenContrast *c) {
    free(c->tokens);
    memset(c, 0, sizeof *c);
}

/* Targets of sequence q packed at offset off: the next token at every position whose next
 * token is a response token, -1 elsewhere. */
static void fill_targets(const CutSequence *q, int off, int *targets) {
    for (int i = 0; i < q->n; i++)
        targets[off + i] = i + 1 < q->n && q->trained[i + 1] ? q->tokens[i + 1] : -1;
}

int token_contrast_compute(const Model *m, const struct LoraAdapters *lora, const Tokenizer *tok,
                           const CutExample *ex, const char *response, TokenContrast *c,
                           CkError *err) {
    memset(c, 0, sizeof *c);
    const CutSequence *qa = &ex->a, *qm = ex->negative ? &ex->m : NULL;
    const int n_resp = ex->n_response;
    const int seq_len = m->config.seq_len;
    if (qa->n > seq_len || (qm && qm->n > seq_len))
        return ck_fail(err,
                       "contrast: a sequence of %d tokens is longer than the model's context (%d)",
                       qm && qm->n > qa->n ? qm->n : qa->n, seq_len);
    if (response_start(qa) < 1 || (qm && response_start(qm) < 1))
        return ck_fail(err, "contrast: the prompt was truncated away; the first response token "
                            "has nothing to be predicted from");
    if (qa->n - response_start(qa) != n_resp || (qm && qm->n - response_start(qm) != n_resp))
        return ck_fail(err, "contrast: the example's sequences disagree on the response length");
    const int total = qa->n + (qm ? qm->n : 0);
    int *tokens = malloc(sizeof(int) * (size_t)total);
    int *targets = malloc(sizeof(int) * (size_t)total);
    double *lp = malloc(sizeof(double) * (size_t)total);
    int *starts = malloc(sizeof(int) * (size_t)(n_resp ? 2 * n_resp : 2));
    c->tokens = malloc(sizeof(TokenContrastRow) * (size_t)(n_resp ? n_resp : 1));
    int rc = 0;
    if (!tokens || !targets || !lp || !starts || !c->tokens) rc = ck_fail(err, "out of memory");
    Activations a;
    memset(&a, 0, sizeof a);
    if (rc == 0) {
        memcpy(tokens, qa->tokens, sizeof(int) * (size_t)qa->n);
        fill_targets(qa, 0, targets);
        if (qm) {
            memcpy(tokens + qa->n, qm->tokens, sizeof(int) * (size_t)qm->n);
            fill_targets(qm, qa->n, targets);
        }
        const int offsets[3] = {0, qa->n, total};
        const TokenBatch b = {qm ? 2 : 1, offsets, tokens};
        const int max_keys = qm && qm->n > qa->n ? qm->n : qa->n;
        /* both sequences in one packed pass: the same weights and the same kernels */
        rc = activations_init(&a, m, total, max_keys, 0, err);
        if (rc == 0) rc = model_forward(m, &a, &b, NULL, lora, err);
        if (rc == 0) rc = model_logprobs(m, &a, targets, lp, err);
    }
    if (rc == 0) {
        int *ends = starts + n_resp;
        c->spans_exact = token_contrast_spans(tok, qa, response, starts, ends);
        const int a0 = response_start(qa), m0 = qm ? response_start(qm) : 0;
        for (int k = 0; k < n_resp; k++) {
            TokenContrastRow *t = &c->tokens[k];
            t->token = qa->tokens[a0 + k];
            t->log_pa = lp[a0 + k - 1]; /* position i - 1 predicts token i */
            t->log_pm = qm ? lp[qa->n + m0 + k - 1] : NAN;
            t->start = starts[k];
            t->end = ends[k];
        }
        c->n = n_resp;
        c->negative = qm != NULL;
    }
    activations_free(&a);
    free(tokens);
    free(targets);
    free(lp);
    free(starts);
    if (rc != 0) token_contrast_free(c);
    return rc;
}
