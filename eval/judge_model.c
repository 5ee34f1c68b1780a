/* judge_model.c — the local model judge: two verdict strings scored after a pairwise prompt,
 * in one packed forward pass. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/judge.h"
#include "util/strbuf.h"

typedef struct {
    const Model *m;
    const Tokenizer *tok;
    const LoraAdapters *lora;
    const PairwiseTemplate *t;
} ModelJudge;

/* Encodes prompt + verdicts[s] (BOS first) into ids[s], n[s] (malloc'd; the caller frees them
 * also on failure), refusing a sequence longer than the judge model's context. */
static int encode_pair(const ModelJudge *mj, const char *prompt, const char *const verdicts[2],
                       int *ids[2], int n[2], CkError *err) {
    const int seq_len = mj->m->config.seq_len;
    StrBuf text = {0};
    int rc = 0;
    for (int s = 0; s < 2 && rc == 0; s++) {
        strbuf_clear(&text);
        if (strbuf_puts(&text, prompt) != 0 || strbuf_puts(&text, verdicts[s]) != 0)
            rc = ck_fail(err, "out of memory");
        else if (tokenizer_encode(mj->tok, text.p, 1, 0, &ids[s], &n[s], err) != 0)
            rc = -1;
        else if (n[s] > seq_len)
            rc = ck_fail(err, "the judge prompt has %d tokens; the judge model's context is %d",
                         n[s], seq_len);
    }
    strbuf_free(&text);
    return rc;
}

/* Sums into L[s], for both sequences in one packed forward, the log-probabilities of their
 * tokens after the first `common` (the shared prefix cancels in the comparison). */
static int score_after(const ModelJudge *mj, int *const ids[2], const int n[2], int common,
                       double L[2], CkError *err) {
    const int total = n[0] + n[1];
    int *tokens = malloc(sizeof(int) * (size_t)total);
    int *targets = malloc(sizeof(int) * (size_t)total);
    double *lp = malloc(sizeof(double) * (size_t)total);
    Activations acts = {0};
    int rc = tokens && targets && lp ? 0 : ck_fail(err, "out of memory");
    int offsets[3] = {0, n[0], total};
    for (int s = 0; s < 2 && rc == 0; s++)
        for (int i = 0; i < n[s]; i++) {
            tokens[offsets[s] + i] = ids[s][i];
            /* position i predicts token i + 1: only the tokens past the common prefix count */
            targets[offsets[s] + i] = (i + 1 < n[s] && i + 1 >= common) ? ids[s][i + 1] : -1;
        }
    TokenBatch batch = {2, offsets, tokens};
    if (rc == 0 && (activations_init(&acts, mj->m, total, n[0] > n[1] ? n[0] : n[1], 0, err) != 0 ||
                    model_forward(mj->m, &acts, &batch, NULL, mj->lora, err) != 0 ||
                    model_logprobs(mj->m, &acts, targets, lp, err) != 0))
        rc = -1;
    for (int s = 0; s < 2 && rc == 0; s++) {
        L[s] = 0;
        for (int i = 0; i < n[s]; i++)
            if (targets[offsets[s] + i] >= 0) L[s] += lp[offsets[s] + i];
    }
    activations_free(&acts);
    free(tokens), free(targets), free(lp);
    return rc;
}

/* The raw verdict: both verdict strings, their log-probabilities and the shared prefix's
 * length; NULL when out of memory. */
static char *raw_verdict(const char *const verdicts[2], const double L[2], int common) {
    cJSON *r = cJSON_CreateObject();
    if (!r) return NULL;
    cJSON_AddStringToObject(r, "verdict_1", verdicts[0]);
    cJSON_AddStringToObject(r, "verdict_2", verdicts[1]);
    cJSON_AddNumberToObject(r, "logprob_1", L[0]);
    cJSON_AddNumberToObject(r, "logprob_2", L[1]);
    cJSON_AddNumberToObject(r, "prompt_tokens", common);
    char *text = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    return text;
}

/* Scores both prompt + verdict sequences in one packed batch and sums, per sequence, the
 * log-probabilities of the tokens after their common prefix. */
static int model_judge(void *ctx, const char *instruction, const char *output_1,
                       const char *output_2, double *preference, char **raw, CkError *err) {
    const ModelJudge *mj = ctx;
    char *prompt = pairwise_template_render(mj->t, instruction, output_1, output_2, err);
    if (!prompt) return -1;
    const char *const verdicts[2] = {mj->t->verdict_1, mj->t->verdict_2};
    int *ids[2] = {NULL, NULL}, n[2] = {0, 0};
    int rc = encode_pair(mj, prompt, verdicts, ids, n, err);
    free(prompt);
    int common = 0;
    while (rc == 0 && common < n[0] && common < n[1] && ids[0][common] == ids[1][common]) common++;
    if (rc == 0 && (common == n[0] || common == n[1] || common == 0))
        rc = ck_fail(err,
                     "the verdicts \"%s\" and \"%s\" do not tokenize to different "
                     "continuations of the prompt",
                     verdicts[0], verdicts[1]);
    double L[2] = {0, 0};
    if (rc == 0) rc = score_after(mj, ids, n, common, L, err);
    free(ids[0]), free(ids[1]);
    if (rc != 0) return -1;
    /* 2 - softmax([L1, L2])[0] = 2 - sigmoid(L1 - L2) */
    double d = L[0] - L[1];
    double p1 = d >= 0 ? 1 / (1 + exp(-d)) : exp(d) / (1 + exp(d));
    *preference = 2 - p1;
    *raw = raw_verdict(verdicts, L, common);
    return *raw ? 0 : ck_fail(err, "out of memory");
}

static void model_judge_close(void *ctx) {
    free(ctx);
}

int judge_model_create(Judge *j, const Model *m, const Tokenizer *tok, const LoraAdapters *lora,
                       const PairwiseTemplate *t, const char *name, CkError *err) {
    memset(j, 0, sizeof *j);
    ModelJudge *mj = malloc(sizeof *mj);
    if (!mj) return ck_fail(err, "out of memory");
    *mj = (ModelJudge){m, tok, lora, t};
    snprintf(j->name, sizeof j->name, "%s", name ? name : "cutkit_model_judge");
    j->judge = model_judge;
    j->close = model_judge_close;
    j->ctx = mj;
    return 0;
}
