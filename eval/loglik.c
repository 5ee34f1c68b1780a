/* loglik.c — the harness's loglikelihood requests: encoding with the joint split, left
 * truncation, and scoring with or without a shared context pass (see loglik.h).
 *
 * The classifier and log-softmax are done here rather than through model_logprobs because the
 * harness also reports is_greedy, which needs each row's argmax; rows go through the classifier
 * in blocks (one GEMM each) and are reduced in parallel, each row on its own, so neither the
 * thread count nor the block split changes a result. */
#include "eval/loglik.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/fastmath.h"
#include "model/matmul.h"
#include "util/threads.h"

/* ---------------------------------------------------------------------------------------- */
/* encoding */

void loglik_context_free(LoglikContext *c) {
    if (!c) return;
    free(c->text);
    free(c->moved);
    free(c->ids);
    memset(c, 0, sizeof *c);
}

int loglik_context_init(LoglikContext *c, const Tokenizer *t, const char *context, int bos,
                        CkError *err) {
    memset(c, 0, sizeof *c);
    size_t len = strlen(context), keep = len;
    /* Python's str.rstrip(): ASCII whitespace is what occurs in prompts */
    while (keep > 0 && strchr(" \t\n\r\v\f", context[keep - 1])) keep--;
    if (keep == 0) return ck_fail(err, "empty context (after removing trailing whitespace)");
    c->text = strndup(context, keep);
    c->moved = strdup(context + keep);
    c->bos = bos;
    if (!c->text || !c->moved) {
        loglik_context_free(c);
        return ck_fail(err, "out of memory");
    }
    if (tokenizer_encode_special(t, c->text, bos, &c->ids, &c->n, err) != 0) {
        loglik_context_free(c);
        return -1;
    }
    if (c->n == 0) {
        loglik_context_free(c);
        return ck_fail(err, "the context encodes to no tokens");
    }
    return 0;
}

void loglik_request_free(LoglikRequest *r) {
    if (!r) return;
    free(r->tokens);
    memset(r, 0, sizeof *r);
}

int loglik_request_init(LoglikRequest *r, const Tokenizer *t, const LoglikContext *c,
                        const char *continuation, CkError *err) {
    memset(r, 0, sizeof *r);
    size_t lt = strlen(c->text), lm = strlen(c->moved), lc = strlen(continuation);
    char *whole_text = malloc(lt + lm + lc + 1);
    if (!whole_text) return ck_fail(err, "out of memory");
    memcpy(whole_text, c->text, lt);
    memcpy(whole_text + lt, c->moved, lm);
    memcpy(whole_text + lt + lm, continuation, lc + 1);
    int *whole = NULL, n_whole = 0;
    int rc = tokenizer_encode_special(t, whole_text, c->bos, &whole, &n_whole, err);
    free(whole_text);
    if (rc != 0) return -1;
    int clean = n_whole > c->n && memcmp(whole, c->ids, sizeof(int) * (size_t)c->n) == 0;
    int *cont = NULL, n_cont = 0;
    if (clean) {
        n_cont = n_whole - c->n;
        cont = whole + c->n;
    } else {
        /* a token spans the join: encode the (moved whitespace +) continuation alone */
        free(whole);
        whole = NULL;
        char *alone = malloc(lm + lc + 1);
        if (!alone) return ck_fail(err, "out of memory");
        memcpy(alone, c->moved, lm);
        memcpy(alone + lm, continuation, lc + 1);
        rc = tokenizer_encode_special(t, alone, 0, &cont, &n_cont, err);
        free(alone);
        if (rc != 0) return -1;
        r->fallback = 1;
    }
    if (n_cont == 0) {
        if (clean)
            free(whole);
        else
            free(cont);
        return ck_fail(err, "the continuation \"%.40s\" encodes to no tokens", continuation);
    }
    r->tokens = malloc(sizeof(int) * (size_t)(c->n + n_cont));
    if (r->tokens) {
        memcpy(r->tokens, c->ids, sizeof(int) * (size_t)c->n);
        memcpy(r->tokens + c->n, cont, sizeof(int) * (size_t)n_cont);
        r->n_ctx = c->n;
        r->n_cont = n_cont;
    }
    if (clean)
        free(whole);
    else
        free(cont);
    return r->tokens ? 0 : ck_fail(err, "out of memory");
}

/* ---------------------------------------------------------------------------------------- */
/* scoring */

void loglik_scorer_free(LoglikScorer *s) {
    if (!s) return;
    activations_free(&s->act);
    kvcache_free(&s->cache);
    free(s->stage);
    free(s->logits);
    free(s->targets);
    free(s->offsets);
    free(s->tokens);
    free(s->greedy);
    free(s->lp);
    memset(s, 0, sizeof *s);
}

int loglik_scorer_init(LoglikScorer *s, const Model *m, const LoraAdapters *lora, int max_seqs,
                       int prefix_reuse, CkError *err) {
    memset(s, 0, sizeof *s);
    const ModelConfig *c = &m->config;
    if (max_seqs < 1) return ck_fail(err, "batch of %d sequences", max_seqs);
    s->model = m;
    s->lora = lora;
    s->prefix_reuse = prefix_reuse;
    s->max_seqs = max_seqs;
    /* room for one full-length request, or a few when batching */
    int max_tokens = c->seq_len * (max_seqs < 4 ? max_seqs : 4);
    int rows = (int)((8u << 20) / (unsigned)c->vocab_size);
    if (rows < 1) rows = 1;
    s->block_rows = rows < max_tokens ? rows : max_tokens;
    if (activations_init(&s->act, m, max_tokens, c->seq_len, 0, err) != 0) return -1;
    if (kvcache_init(&s->cache, m, c->seq_len, err) != 0) {
        loglik_scorer_free(s);
        return -1;
    }
    s->stage = malloc(sizeof(float) * (size_t)s->block_rows * c->dim);
    s->logits = malloc(sizeof(float) * (size_t)s->block_rows * c->vocab_size);
    s->targets = malloc(sizeof(int) * (size_t)max_tokens);
    /* one offset per sequence: packed requests (max_seqs) or branches (one token or more) */
    s->max_offsets = max_seqs > max_tokens ? max_seqs : max_tokens;
    s->offsets = malloc(sizeof(int) * (size_t)(s->max_offsets + 1));
    s->tokens = malloc(sizeof(int) * (size_t)max_tokens);
    s->greedy = malloc(sizeof(int) * (size_t)max_tokens);
    s->lp = malloc(sizeof(double) * (size_t)max_tokens);
    if (!s->stage || !s->logits || !s->targets || !s->offsets || !s->tokens || !s->greedy ||
        !s->lp) {
        loglik_scorer_free(s);
        return ck_fail(err, "out of memory for the scorer");
    }
    return 0;
}

/* The maximum of z[0..V), the index of its first occurrence, and log sum exp(z - max) with the
 * double sum of fastmath.h (the kernels every softmax of cutkit shares; vectorised, unlike a
 * loop of expf calls, which took a tenth of the scoring time). z is overwritten by the
 * exponentials, so the caller reads what it needs of z first. */
static void row_stats(float *z, int V, float *max, int *argmax, double *log_sum) {
    const float m = max_of(z, V);
    int am = 0;
    while (am + 1 < V && !(z[am] == m)) am++; /* the first maximum, as numpy/torch argmax */
    *max = m;
    *argmax = am;
    *log_sum = log(exp_and_sum(z, z, V, m));
}

/* For every packed position i of the last forward with s->targets[i] >= 0: s->lp[i] =
 * log p(target) and s->greedy[i] = (target is the first argmax). -1 when the classifier's
 * product failed (err). */
static int classify(LoglikScorer *s, CkError *err) {
    const ModelConfig *c = &s->model->config;
    const int C = c->dim, V = c->vocab_size, n = s->act.n_tokens;
    int next = 0;
    int rows[s->block_rows];
    while (next < n) {
        int count = 0;
        for (; next < n && count < s->block_rows; next++)
            if (s->targets[next] >= 0) {
                memcpy(s->stage + (size_t)count * C, s->act.xn_final + (size_t)next * C,
                       sizeof(float) * (size_t)C);
                rows[count++] = next;
            }
        if (count == 0) continue;
        /* the classifier as the model holds it (fp32, bf16 or int8), soft cap included */
        if (model_logits_rows(s->model, s->stage, count, s->logits, err) != 0) return -1;
#pragma omp parallel for schedule(static) if (threads_for_work(4.0 * count * V) > 1)
        for (int r = 0; r < count; r++) {
            float *z = s->logits + (size_t)r * V;
            float m;
            int am;
            double lse;
            const int t = s->targets[rows[r]];
            const float zt = z[t];
            row_stats(z, V, &m, &am, &lse);
            s->lp[rows[r]] = ((double)zt - m) - lse;
            s->greedy[rows[r]] = am == t;
        }
    }
    return 0;
}

/* Where the model's input starts in r->tokens: the harness keeps the last seq_len + 1 tokens
 * and drops the final one. */
static int input_start(const LoglikScorer *s, const LoglikRequest *r) {
    int total = r->n_ctx + r->n_cont, keep = s->model->config.seq_len + 1;
    return total > keep ? total - keep : 0;
}

/* Packs the requests idx[0..m) max_seqs at a time (within the activations' token budget), runs
 * each batch and fills their results. */
static int score_separately(LoglikScorer *s, const LoglikRequest *reqs, const int *idx, int m,
                            LoglikResult *out, CkError *err) {
    int i = 0;
    while (i < m) {
        int n_seqs = 0, n_tok = 0;
        s->offsets[0] = 0;
        int first = i;
        while (i < m && n_seqs < s->max_seqs) {
            const LoglikRequest *r = &reqs[idx[i]];
            int start = input_start(s, r), total = r->n_ctx + r->n_cont, len = total - 1 - start;
            if (n_seqs > 0 && n_tok + len > s->act.max_tokens) break;
            for (int p = 0; p < len; p++) {
                s->tokens[n_tok + p] = r->tokens[start + p];
                int predicted = start + p + 1; /* index in r->tokens of the token predicted */
                s->targets[n_tok + p] = predicted >= r->n_ctx ? r->tokens[predicted] : -1;
            }
            n_tok += len;
            s->offsets[++n_seqs] = n_tok;
            i++;
        }
        TokenBatch b = {n_seqs, s->offsets, s->tokens};
        if (model_forward(s->model, &s->act, &b, NULL, s->lora, err) != 0 || classify(s, err) != 0)
            return -1;
        for (int q = 0; q < n_seqs; q++) {
            const LoglikRequest *r = &reqs[idx[first + q]];
            LoglikResult *o = &out[idx[first + q]];
            o->logprob = 0.0;
            o->is_greedy = 1;
            o->n_tokens = r->n_cont;
            o->truncated = input_start(s, r);
            /* the continuation is predicted by the last n_cont positions, in order */
            for (int p = s->offsets[q + 1] - r->n_cont; p < s->offsets[q + 1]; p++) {
                o->logprob += s->lp[p];
                o->is_greedy &= s->greedy[p];
            }
        }
    }
    return 0;
}

/* Scores the requests idx[0..m), which all start with the same n_ctx context tokens and lose
 * the same `start` tokens to left truncation (0: none), so their inputs share the context
 * tokens from `start` on. The prefix is that context minus its last token; every request is a
 * branch after it: the last context token followed by the continuation without its last token, so
 * that each branch's rows predict exactly its continuation (the first token included, hence
 * one classifier pass for all). When the prefix and all branches fit the activations they run
 * as one tree (model_forward_tree: one pass over the weights); otherwise the prefix goes once
 * into the cache and the branches follow in as few batched forwards as fit
 * (model_forward_branches). */
static int score_shared(LoglikScorer *s, const LoglikRequest *reqs, const int *idx, int m,
                        int start, LoglikResult *out, CkError *err) {
    const LoglikRequest *r0 = &reqs[idx[0]];
    const int *t0 = r0->tokens + start; /* the model's input starts here (left truncation) */
    const int prefix_len = r0->n_ctx - start - 1;
    long total = prefix_len;
    for (int q = 0; q < m; q++) total += reqs[idx[q]].n_cont;
    const int tree = prefix_len > 0 && total <= s->act.max_tokens && m < s->max_offsets;
    s->cache.len = 0;
    if (prefix_len > 0 && !tree) {
        int off[2] = {0, prefix_len};
        TokenBatch b = {1, off, t0};
        if (model_forward(s->model, &s->act, &b, &s->cache, s->lora, err) != 0) return -1;
    }
    int q = 0;
    while (q < m) {
        int n_seqs = 0, n_tok = 0, first = q;
        s->offsets[0] = 0;
        if (tree) { /* sequence 0: the prefix, which predicts nothing */
            memcpy(s->tokens, t0, sizeof(int) * (size_t)prefix_len);
            for (int p = 0; p < prefix_len; p++) s->targets[p] = -1;
            n_tok = prefix_len;
            s->offsets[++n_seqs] = n_tok;
        }
        const int first_seq = n_seqs;
        while (q < m && n_seqs < s->max_offsets) {
            const LoglikRequest *r = &reqs[idx[q]];
            const int *rt = r->tokens + start;
            /* inputs rt[prefix_len .. n_ctx - start + n_cont - 1), targets one further */
            int len = r->n_cont;
            if (n_seqs > 0 && n_tok + len > s->act.max_tokens) break;
            for (int p = 0; p < len; p++) {
                s->tokens[n_tok + p] = rt[prefix_len + p];
                s->targets[n_tok + p] = rt[prefix_len + p + 1];
            }
            n_tok += len;
            s->offsets[++n_seqs] = n_tok;
            q++;
        }
        TokenBatch b = {n_seqs, s->offsets, s->tokens};
        int rc = tree ? model_forward_tree(s->model, &s->act, &b, s->lora, err)
                      : model_forward_branches(s->model, &s->act, &s->cache, prefix_len, &b,
                                               s->lora, err);
        if (rc != 0 || classify(s, err) != 0) return -1;
        for (int j = first_seq; j < n_seqs; j++) {
            LoglikResult *o = &out[idx[first + j - first_seq]];
            o->logprob = 0.0;
            o->is_greedy = 1;
            o->n_tokens = reqs[idx[first + j - first_seq]].n_cont;
            o->truncated = start;
            for (int p = s->offsets[j]; p < s->offsets[j + 1]; p++) {
                o->logprob += s->lp[p];
                o->is_greedy &= s->greedy[p];
            }
        }
    }
    return 0;
}

int loglik_score(LoglikScorer *s, const LoglikRequest *reqs, int n, LoglikResult *out,
                 CkError *err) {
    const int seq_len = s->model->config.seq_len;
    for (int i = 0; i < n; i++) {
        if (reqs[i].n_ctx < 1 || reqs[i].n_cont < 1)
            return ck_fail(err, "request %d has %d context and %d continuation tokens", i,
                           reqs[i].n_ctx, reqs[i].n_cont);
        if (reqs[i].n_cont > seq_len)
            return ck_fail(err,
                           "request %d: the continuation has %d tokens; the model's context "
                           "is %d",
                           i, reqs[i].n_cont, seq_len);
    }
    int *shared = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    int *rest = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (!shared || !rest) {
        free(shared);
        free(rest);
        return ck_fail(err, "out of memory");
    }
    /* the group: requests with the first reusable one's context and the same left cut (the
     * same input start, so the same context tokens reach the model: choices of one length,
     * e.g. MMLU's " A" ... " D", share their truncated context too) */
    int n_shared = 0, n_rest = 0, ref = -1, start = 0;
    for (int i = 0; i < n; i++) {
        const int st = input_start(s, &reqs[i]);
        int reuse = s->prefix_reuse && st < reqs[i].n_ctx;
        if (reuse && ref < 0) {
            ref = i;
            start = st;
        }
        if (reuse && st == start && reqs[i].n_ctx == reqs[ref].n_ctx &&
            memcmp(reqs[i].tokens, reqs[ref].tokens, sizeof(int) * (size_t)reqs[ref].n_ctx) == 0)
            shared[n_shared++] = i;
        else
            rest[n_rest++] = i;
    }
    int rc = 0;
    if (n_shared > 0) {
        /* in the automatic mode, a context pass that saves little costs more than it saves */
        long saved = (long)(n_shared - 1) * (reqs[ref].n_ctx - start - 1);
        int worth = s->prefix_reuse == LOGLIK_REUSE_ALWAYS || saved >= LOGLIK_REUSE_MIN_SAVED ||
                    n_shared > s->max_seqs;
        rc = worth ? score_shared(s, reqs, shared, n_shared, start, out, err)
                   : score_separately(s, reqs, shared, n_shared, out, err);
    }
    if (rc == 0 && n_rest > 0) rc = score_separately(s, reqs, rest, n_rest, out, err);
    free(shared);
    free(rest);
    return rc;
}
