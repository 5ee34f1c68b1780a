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

/* Scores both prompt + verdict sequences in one packed batch and sums, per sequence, the
 * log-probabilities of the tokens after their common prefix. */
static int model_judge(void *ctx, const char *instruction, const char *output_1,
                       const char *output_2, double *preference, char **raw, CkError *err) {
    const ModelJudge *mj = ctx;
    const int seq_len = mj->m->config.seq_len;
    char *prompt = pairwise_template_format(mj->t->prompt, instruction, output_1, output_2, err);
    char *text[2] = {NULL, NULL};
    int *ids[2] = {NULL, NULL}, n[2] = {0, 0}, *tokens = NULL, *targets = NULL, rc = -1;
    double *lp = NULL;
    Activations acts = {0};
    if (!prompt) return -1;
    const char *verdicts[2] = {mj->t->verdict_1, mj->t->verdict_2};
    size_t plen = strlen(prompt);
    for (int s = 0; s < 2; s++) {
        size_t vlen = strlen(verdicts[s]);
        text[s] = malloc(plen + vlen + 1);
        if (!text[s]) {
            ck_fail(err, "out of memory");
            goto done;
        }
        memcpy(text[s], prompt, plen);
        memcpy(text[s] + plen, verdicts[s], vlen + 1);
        if (tokenizer_encode(mj->tok, text[s], 1, 0, &ids[s], &n[s], err) != 0) goto done;
        if (n[s] > seq_len) {
            ck_fail(err, "the judge prompt has %d tokens; the judge model's context is %d", n[s],
                    seq_len);
            goto done;
        }
    }
    int common = 0;
    while (common < n[0] && common < n[1] && ids[0][common] == ids[1][common]) common++;
    if (common == n[0] || common == n[1] || common == 0) {
        ck_fail(err,
                "the verdicts \"%s\" and \"%s\" do not tokenize to different continuations "
                "of the prompt",
                verdicts[0], verdicts[1]);
        goto done;
    }
    const int total = n[0] + n[1];
    tokens = malloc(sizeof(int) * (size_t)total);
    targets = malloc(sizeof(int) * (size_t)total);
    lp = malloc(sizeof(double) * (size_t)total);
    if (!tokens || !targets || !lp) {
        ck_fail(err, "out of memory");
        goto done;
    }
    int offsets[3] = {0, n[0], total};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < n[s]; i++) {
            tokens[offsets[s] + i] = ids[s][i];
            /* position i predicts token i + 1: only the tokens past the common prefix count */
            targets[offsets[s] + i] = (i + 1 < n[s] && i + 1 >= common) ? ids[s][i + 1] : -1;
        }
    TokenBatch batch = {2, offsets, tokens};
    if (activations_init(&acts, mj->m, total, n[0] > n[1] ? n[0] : n[1], 0, err) != 0 ||
        model_forward(mj->m, &acts, &batch, NULL, mj->lora, err) != 0 ||
        model_logprobs(mj->m, &acts, targets, lp, err) != 0)
        goto done;
    double L[2] = {0, 0};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < n[s]; i++)
            if (targets[offsets[s] + i] >= 0) L[s] += lp[offsets[s] + i];
    /* 2 - softmax([L1, L2])[0] = 2 - sigmoid(L1 - L2) */
    double d = L[0] - L[1];
    double p1 = d >= 0 ? 1 / (1 + exp(-d)) : exp(d) / (1 + exp(d));
    *preference = 2 - p1;
    cJSON *r = cJSON_CreateObject();
    if (r) {
        cJSON_AddStringToObject(r, "verdict_1", verdicts[0]);
        cJSON_AddStringToObject(r, "verdict_2", verdicts[1]);
        cJSON_AddNumberToObject(r, "logprob_1", L[0]);
        cJSON_AddNumberToObject(r, "logprob_2", L[1]);
        cJSON_AddNumberToObject(r, "prompt_tokens", common);
        *raw = cJSON_PrintUnformatted(r);
        cJSON_Delete(r);
    }
    if (!*raw) {
        ck_fail(err, "out of memory");
        goto done;
    }
    rc = 0;
done:
    activations_free(&acts);
    free(prompt);
    free(text[0]), free(text[1]), free(ids[0]), free(ids[1]);
    free(tokens), free(targets), free(lp);
    return rc;
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
