/* judge_model.c — the local model judge: two verdict strings scored after a pairwise prompt,
 * in one packed forward pass. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "eval/judge.h"
#include "util/strbuf.h"

/* Keep identical to eval/templates/pairwise_ab.json (tests/test_judge.c checks). */
const char PAIRWISE_TEMPLATE_DEFAULT_JSON[] =
    "{\n"
    "  \"description\": \"cutkit's pairwise judge prompt in the AlpacaFarm 'Output (a) / Output "
    "(b)' layout (wording cutkit's own). The judge model's log-probabilities of verdict_1 and "
    "verdict_2 after the prompt give preference = 2 - softmax([logp_1, logp_2])[0]. Placeholders: "
    "{instruction}, {output_1}, {output_2}; write {{ and }} for literal braces.\",\n"
    "  \"prompt\": \"Two assistants answered the same instruction. Read both outputs and name the "
    "one that follows the instruction better: the more helpful, correct and complete answer, "
    "whatever its length.\\n\\n### Instruction:\\n{instruction}\\n\\n### Output "
    "(a):\\n{output_1}\\n\\n### Output (b):\\n{output_2}\\n\\n### Best output:\",\n"
    "  \"verdict_1\": \" Output (a)\",\n"
    "  \"verdict_2\": \" Output (b)\"\n"
    "}\n";

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *pairwise_template_format(const char *fmt, const char *instruction, const char *output_1,
                               const char *output_2, CkError *err) {
    static const char *const names[3] = {"instruction", "output_1", "output_2"};
    const char *values[3] = {instruction, output_1, output_2};
    StrBuf b = {0};
    int rc = strbuf_put(&b, "", 0);
    for (const char *s = fmt; rc == 0 && *s;) {
        if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
            rc = strbuf_put(&b, s, 1);
            s += 2;
        } else if (*s == '}') {
            ck_fail(err, "single '}' at byte %zu of the pairwise template", (size_t)(s - fmt));
            rc = 1;
        } else if (*s == '{') {
            const char *end = strchr(s, '}');
            int which = -1;
            size_t k = end ? (size_t)(end - s - 1) : 0;
            for (int i = 0; end && i < 3; i++)
                if (strlen(names[i]) == k && strncmp(s + 1, names[i], k) == 0) which = i;
            if (which < 0) {
                if (end)
                    ck_fail(err,
                            "unknown placeholder {%.*s} in the pairwise template (known: "
                            "{instruction}, {output_1}, {output_2})",
                            (int)k, s + 1);
                else
                    ck_fail(err, "unterminated '{' at byte %zu of the pairwise template",
                            (size_t)(s - fmt));
                rc = 1;
            } else {
                rc = strbuf_put(&b, values[which], strlen(values[which]));
                s = end + 1;
            }
        } else {
            size_t k = strcspn(s, "{}");
            rc = strbuf_put(&b, s, k);
            s += k;
        }
    }
    if (rc != 0) {
        if (rc < 0) ck_fail(err, "out of memory");
        free(b.p);
        return NULL;
    }
    return b.p;
}

void pairwise_template_free(PairwiseTemplate *t) {
    free(t->prompt);
    free(t->verdict_1);
    free(t->verdict_2);
    memset(t, 0, sizeof *t);
}

static int take(const cJSON *root, const char *name, const char *source, char **out, CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!cJSON_IsString(v)) return ck_fail(err, "%s: field \"%s\" must be a string", source, name);
    *out = dup_str(v->valuestring);
    return *out ? 0 : ck_fail(err, "out of memory");
}

int pairwise_template_parse(PairwiseTemplate *t, const char *json_text, const char *source,
                            CkError *err) {
    memset(t, 0, sizeof *t);
    cJSON *root = cJSON_Parse(json_text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ck_fail(err, "%s: expected a JSON object", source);
    }
    int rc = take(root, "prompt", source, &t->prompt, err);
    if (rc == 0) rc = take(root, "verdict_1", source, &t->verdict_1, err);
    if (rc == 0) rc = take(root, "verdict_2", source, &t->verdict_2, err);
    cJSON_Delete(root);
    if (rc == 0 && (!t->verdict_1[0] || strcmp(t->verdict_1, t->verdict_2) == 0))
        rc =
            ck_fail(err, "%s: verdict_1 and verdict_2 must be different non-empty strings", source);
    if (rc == 0) { /* a bad placeholder is reported now, not at the first pair */
        char *s = pairwise_template_format(t->prompt, "i", "a", "b", err);
        if (!s) rc = ck_wrap(err, "%s: field \"prompt\"", source);
        free(s);
    }
    if (rc != 0) pairwise_template_free(t);
    return rc;
}

int pairwise_template_load(PairwiseTemplate *t, const char *path, CkError *err) {
    if (!path)
        return pairwise_template_parse(t, PAIRWISE_TEMPLATE_DEFAULT_JSON, "built-in template", err);
    memset(t, 0, sizeof *t);
    char *text = fileio_read_text(path, (size_t)1 << 24, NULL, err);
    if (!text) return -1;
    int rc = pairwise_template_parse(t, text, path, err);
    free(text);
    return rc;
}

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
    char *prompt = pairwise_template_format(mj->t->prompt, instruction, output_1, output_2, err);
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
