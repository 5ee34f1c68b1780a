/* test_loglik.c — the harness's loglikelihood requests on the embedded stories260K: the joint
 * encoding split, the moved trailing whitespace, the fallback when a token spans the join,
 * left truncation, is_greedy, and that prefix reuse, batch size and thread count change no
 * result beyond float rounding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "formats/lm.h"
#include "eval/loglik.h"
#include "util/threads.h"

static LanguageModel lm;

static int setup(void **state) {
    (void)state;
    CkError err = {{0}};
    return lm_open(&lm, NULL, NULL, &err);
}

static int teardown(void **state) {
    (void)state;
    lm_close(&lm);
    return 0;
}

static void encode(const char *text, int bos, int **ids, int *n) {
    CkError err = {{0}};
    assert_int_equal(tokenizer_encode_special(&lm.tokenizer, text, bos, ids, n, &err), 0);
}

static void make_request(LoglikRequest *r, const char *context, const char *cont, int bos) {
    LoglikContext c;
    CkError err = {{0}};
    assert_int_equal(loglik_context_init(&c, &lm.tokenizer, context, bos, &err), 0);
    assert_int_equal(loglik_request_init(r, &lm.tokenizer, &c, cont, &err), 0);
    loglik_context_free(&c);
}

/* A request straight from tokens. */
static void token_request(LoglikRequest *r, const int *ctx, int n_ctx, const int *cont,
                          int n_cont) {
    r->tokens = malloc(sizeof(int) * (size_t)(n_ctx + n_cont));
    memcpy(r->tokens, ctx, sizeof(int) * (size_t)n_ctx);
    memcpy(r->tokens + n_ctx, cont, sizeof(int) * (size_t)n_cont);
    r->n_ctx = n_ctx;
    r->n_cont = n_cont;
    r->fallback = 0;
}

/* The split is taken from the joint encoding: context tokens = encode(context) with BOS,
 * continuation = the rest of encode(context + continuation). */
static void test_joint_split(void **state) {
    (void)state;
    LoglikRequest r;
    make_request(&r, "Question: Where do fish live?\nAnswer:", " in the water", 1);
    int *ctx, n_ctx, *whole, n_whole;
    encode("Question: Where do fish live?\nAnswer:", 1, &ctx, &n_ctx);
    encode("Question: Where do fish live?\nAnswer: in the water", 1, &whole, &n_whole);
    assert_int_equal(ctx[0], lm.tokenizer.bos_id);
    assert_int_equal(r.n_ctx, n_ctx);
    assert_int_equal(r.n_ctx + r.n_cont, n_whole);
    assert_memory_equal(r.tokens, whole, sizeof(int) * (size_t)n_whole);
    assert_int_equal(r.fallback, 0);
    /* without BOS the context simply lacks it */
    LoglikRequest nb;
    make_request(&nb, "Question: Where do fish live?\nAnswer:", " in the water", 0);
    assert_int_equal(nb.n_ctx, n_ctx - 1);
    assert_memory_equal(nb.tokens, whole + 1, sizeof(int) * (size_t)(n_whole - 1));
    free(ctx);
    free(whole);
    loglik_request_free(&r);
    loglik_request_free(&nb);
}

/* Trailing whitespace of the context belongs to the continuation. */
static void test_trailing_space_moves(void **state) {
    (void)state;
    LoglikRequest a, b;
    make_request(&a, "Tom had a big ", "dog", 1);
    make_request(&b, "Tom had a big", " dog", 1);
    assert_int_equal(a.n_ctx, b.n_ctx);
    assert_int_equal(a.n_cont, b.n_cont);
    assert_memory_equal(a.tokens, b.tokens, sizeof(int) * (size_t)(a.n_ctx + a.n_cont));
    loglik_request_free(&a);
    loglik_request_free(&b);
    CkError err = {{0}};
    LoglikContext c;
    assert_int_equal(loglik_context_init(&c, &lm.tokenizer, " \n ", 1, &err), -1);
    assert_non_null(strstr(err.msg, "empty context"));
}

/* "Once upon a ti" + "me": the joint encoding has one token for "time", so the context's last
 * token is not a prefix of it; the continuation is then encoded alone (no BOS). */
static void test_join_fallback(void **state) {
    (void)state;
    int *ctx, n_ctx, *whole, n_whole, *alone, n_alone;
    encode("Once upon a ti", 1, &ctx, &n_ctx);
    encode("Once upon a time", 1, &whole, &n_whole);
    encode("me", 0, &alone, &n_alone);
    /* the premise: the tokenizer merges across the join */
    assert_true(n_whole <= n_ctx || memcmp(ctx, whole, sizeof(int) * (size_t)n_ctx) != 0);
    LoglikRequest r;
    make_request(&r, "Once upon a ti", "me", 1);
    assert_int_equal(r.fallback, 1);
    assert_int_equal(r.n_ctx, n_ctx);
    assert_memory_equal(r.tokens, ctx, sizeof(int) * (size_t)n_ctx);
    assert_int_equal(r.n_cont, n_alone);
    assert_memory_equal(r.tokens + n_ctx, alone, sizeof(int) * (size_t)n_alone);
    free(ctx);
    free(whole);
    free(alone);
    /* and it scores like any request */
    LoglikScorer s;
    CkError err = {{0}};
    LoglikResult res;
    assert_int_equal(loglik_scorer_init(&s, &lm.model, NULL, 4, 1, &err), 0);
    assert_int_equal(loglik_score(&s, &r, 1, &res, &err), 0);
    assert_true(res.logprob < 0 && isfinite(res.logprob));
    loglik_scorer_free(&s);
    loglik_request_free(&r);
}

/* The sum equals the model's own teacher-forced log-probs of the continuation positions. */
static void test_sum_matches_model_score(void **state) {
    (void)state;
    LoglikRequest r;
    make_request(&r, "Once upon a time, there was a little girl named Lily.",
                 " She loved to play outside.", 1);
    int n = r.n_ctx + r.n_cont;
    Activations a;
    CkError err = {{0}};
    assert_int_equal(activations_init(&a, &lm.model, n, n, 0, &err), 0);
    int *targets = malloc(sizeof(int) * (size_t)n);
    double *lp = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) targets[i] = i + 1 < n && i + 1 >= r.n_ctx ? r.tokens[i + 1] : -1;
    int off[2] = {0, n};
    TokenBatch b = {1, off, r.tokens};
    assert_int_equal(model_score(&lm.model, &a, &b, targets, lp, &err), 0);
    double want = 0;
    for (int i = 0; i < n; i++) want += lp[i];
    for (int reuse = LOGLIK_REUSE_OFF; reuse <= LOGLIK_REUSE_ALWAYS; reuse++) {
        LoglikScorer s;
        LoglikResult res;
        assert_int_equal(loglik_scorer_init(&s, &lm.model, NULL, 8, reuse, &err), 0);
        assert_int_equal(loglik_score(&s, &r, 1, &res, &err), 0);
        printf("sum %.9f, model_score %.9f (reuse %d)\n", res.logprob, want, reuse);
        assert_close(res.logprob, want, 1e-5 * fabs(want));
        assert_int_equal(res.n_tokens, r.n_cont);
        assert_int_equal(res.truncated, 0);
        loglik_scorer_free(&s);
    }
    activations_free(&a);
    free(targets);
    free(lp);
    loglik_request_free(&r);
}

/* Greedy continuation tokens give is_greedy; changing one token clears it. */
static void test_is_greedy(void **state) {
    (void)state;
    int *ctx, n_ctx;
    encode("Once upon a time, there was a", 1, &ctx, &n_ctx);
    int seq[64], n = n_ctx, greedy[6];
    memcpy(seq, ctx, sizeof(int) * (size_t)n_ctx);
    Activations a;
    CkError err = {{0}};
    assert_int_equal(activations_init(&a, &lm.model, 64, 64, 0, &err), 0);
    float *logits = malloc(sizeof(float) * (size_t)lm.model.config.vocab_size);
    for (int k = 0; k < 6; k++) {
        int off[2] = {0, n};
        TokenBatch b = {1, off, seq};
        assert_int_equal(model_forward(&lm.model, &a, &b, NULL, NULL, &err), 0);
        model_logits_row(&lm.model, &a, n - 1, logits, NULL);
        int best = 0;
        for (int v = 1; v < lm.model.config.vocab_size; v++)
            if (logits[v] > logits[best]) best = v;
        greedy[k] = best;
        seq[n++] = best;
    }
    LoglikRequest r;
    token_request(&r, ctx, n_ctx, greedy, 6);
    LoglikScorer s;
    LoglikResult res;
    for (int reuse = LOGLIK_REUSE_OFF; reuse <= LOGLIK_REUSE_ALWAYS; reuse++) {
        assert_int_equal(loglik_scorer_init(&s, &lm.model, NULL, 2, reuse, &err), 0);
        assert_int_equal(loglik_score(&s, &r, 1, &res, &err), 0);
        assert_int_equal(res.is_greedy, 1);
        r.tokens[n_ctx + 3] = (greedy[3] + 1) % lm.model.config.vocab_size;
        assert_int_equal(loglik_score(&s, &r, 1, &res, &err), 0);
        assert_int_equal(res.is_greedy, 0);
        r.tokens[n_ctx + 3] = greedy[3];
        loglik_scorer_free(&s);
    }
    loglik_request_free(&r);
    free(logits);
    free(ctx);
    activations_free(&a);
}

/* Requests over seq_len + 1 tokens are cut on the left: the result equals scoring the kept
 * tokens as an untruncated request. */
static void test_left_truncation(void **state) {
    (void)state;
    const int T = lm.model.config.seq_len;
    int *ctx = malloc(sizeof(int) * (size_t)(T + 40));
    ctx[0] = lm.tokenizer.bos_id;
    for (int i = 1; i < T + 40; i++) ctx[i] = 3 + (i * 37) % 400;
    int cont[5] = {300, 301, 302, 303, 304};
    LoglikRequest full, kept;
    token_request(&full, ctx, T + 40, cont, 5);
    int total = T + 45, start = total - (T + 1);
    token_request(&kept, ctx + start, T + 40 - start, cont, 5);
    LoglikScorer s;
    CkError err = {{0}};
    LoglikResult a, b;
    assert_int_equal(loglik_scorer_init(&s, &lm.model, NULL, 4, 1, &err), 0);
    assert_int_equal(loglik_score(&s, &full, 1, &a, &err), 0);
    assert_int_equal(loglik_score(&s, &kept, 1, &b, &err), 0);
    assert_int_equal(a.truncated, start);
    assert_int_equal(b.truncated, 0);
    /* same model input; the untruncated one may take the cached path: float rounding only */
    printf("truncated %.9f, kept %.9f\n", a.logprob, b.logprob);
    assert_close(a.logprob, b.logprob, 1e-5 * fabs(a.logprob));
    /* a continuation longer than the model's context is refused */
    int *longc = calloc((size_t)T + 1, sizeof(int));
    LoglikRequest too_long;
    token_request(&too_long, ctx, 1, longc, T + 1);
    assert_int_equal(loglik_score(&s, &too_long, 1, &a, &err), -1);
    assert_non_null(strstr(err.msg, "continuation"));
    loglik_request_free(&too_long);
    free(longc);
    loglik_scorer_free(&s);
    loglik_request_free(&full);
    loglik_request_free(&kept);
    free(ctx);
}

/* Choices of one question: one-token and multi-token continuations, one that needs truncation,
 * a fallback one. */
static int build_group(LoglikRequest *reqs) {
    static const char *conts[] = {" dog", " big red ball that bounced away", " a", " cat and a dog",
                                  "me"};
    const char *context = "Once upon a ti";
    LoglikContext c;
    CkError err = {{0}};
    assert_int_equal(loglik_context_init(&c, &lm.tokenizer, context, 1, &err), 0);
    int n = 0;
    for (int i = 0; i < 5; i++)
        assert_int_equal(loglik_request_init(&reqs[n++], &lm.tokenizer, &c, conts[i], &err), 0);
    loglik_context_free(&c);
    /* a long one whose input is truncated */
    const int T = lm.model.config.seq_len;
    int *ctx = malloc(sizeof(int) * (size_t)T);
    ctx[0] = lm.tokenizer.bos_id;
    for (int i = 1; i < T; i++) ctx[i] = 3 + (i * 53) % 450;
    int cont[3] = {100, 200, 300};
    token_request(&reqs[n++], ctx, T, cont, 3);
    free(ctx);
    return n;
}

static void score_all(const LoglikRequest *reqs, int n, int batch, int reuse, LoglikResult *out) {
    LoglikScorer s;
    CkError err = {{0}};
    assert_int_equal(loglik_scorer_init(&s, &lm.model, NULL, batch, reuse, &err), 0);
    assert_int_equal(loglik_score(&s, reqs, n, out, &err), 0);
    loglik_scorer_free(&s);
}

/* Max over requests of |a - b| / max(1, |a|): the agreement the README's Numerics promises. */
static double worst(const LoglikResult *a, const LoglikResult *b, int n, double *abs_out) {
    double w = 0, wa = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs(a[i].logprob - b[i].logprob);
        double rel = d / fmax(1.0, fabs(a[i].logprob));
        if (rel > w) w = rel;
        if (d > wa) wa = d;
        assert_int_equal(a[i].is_greedy, b[i].is_greedy);
        assert_int_equal(a[i].n_tokens, b[i].n_tokens);
        assert_int_equal(a[i].truncated, b[i].truncated);
    }
    *abs_out = wa;
    return w;
}

/* Prefix reuse equals separate passes; batch size and threads change nothing beyond rounding. */
static void test_reuse_batch_threads(void **state) {
    (void)state;
    LoglikRequest reqs[8];
    int n = build_group(reqs);
    assert_int_equal(reqs[4].fallback, 1);
    assert_int_equal(reqs[2].n_cont >= 1, 1);
    LoglikResult base[8], other[8];
    threads_set(2);
    score_all(reqs, n, 1, 0, base);
    assert_true(base[5].truncated > 0);
    double wa, w;
    w = worst(base, (score_all(reqs, n, 8, LOGLIK_REUSE_ALWAYS, other), other), n, &wa);
    printf("reuse vs none: relative %.2e, absolute %.2e\n", w, wa);
    assert_close(w, 0, 1e-5);
    w = worst(base, (score_all(reqs, n, 3, 0, other), other), n, &wa);
    printf("batch 3 vs 1: relative %.2e, absolute %.2e\n", w, wa);
    assert_close(w, 0, 1e-5);
    threads_set(1);
    w = worst(base, (score_all(reqs, n, 8, LOGLIK_REUSE_ALWAYS, other), other), n, &wa);
    printf("1 thread, reuse vs 2 threads, none: relative %.2e, absolute %.2e\n", w, wa);
    assert_close(w, 0, 1e-5);
    w = worst(base, (score_all(reqs, n, 8, 0, other), other), n, &wa);
    printf("1 thread, batch 8 vs 2 threads, batch 1: relative %.2e, absolute %.2e\n", w, wa);
    assert_close(w, 0, 1e-5);
    threads_set(2);
    for (int i = 0; i < n; i++) loglik_request_free(&reqs[i]);
}

/* Left-truncated choices of one question (MMLU 5-shot on a small model): the context fills
 * the model's positions, four one-token continuations lose the same tokens and share the
 * truncated context in one pass, a two-token one loses one more and is scored on its own;
 * reuse equals separate passes within 1e-5 relative, truncation counts included. */
static void test_reuse_truncated(void **state) {
    (void)state;
    const int T = lm.model.config.seq_len, n_ctx = T + 40;
    int *ctx = malloc(sizeof(int) * (size_t)n_ctx);
    ctx[0] = lm.tokenizer.bos_id;
    for (int i = 1; i < n_ctx; i++) ctx[i] = 3 + (i * 71) % 480;
    LoglikRequest reqs[5];
    const int conts[5][2] = {{65}, {66}, {67}, {68}, {69, 70}};
    for (int i = 0; i < 5; i++) token_request(&reqs[i], ctx, n_ctx, conts[i], i < 4 ? 1 : 2);
    free(ctx);
    LoglikResult base[5], other[5];
    score_all(reqs, 5, 1, 0, base);
    assert_int_equal(base[0].truncated, n_ctx + 1 - (T + 1));
    assert_int_equal(base[4].truncated, base[0].truncated + 1);
    double wa, w = worst(base, (score_all(reqs, 5, 8, LOGLIK_REUSE_AUTO, other), other), 5, &wa);
    printf("truncated group, reuse vs none: relative %.2e, absolute %.2e\n", w, wa);
    assert_close(w, 0, 1e-5);
    for (int i = 0; i < 5; i++) loglik_request_free(&reqs[i]);
}

/* Branches: a question whose continuations (1 to 200 tokens, 540 in all) exceed one forward's
 * token budget when the scorer packs one sequence (batch 1: the prefix goes into the cache and
 * the branches run in several batches; batch 8: all in one tree forward),
 * and a question whose context is BOS alone (an empty prefix): reuse equals separate passes
 * within 1e-5 relative, with any batch size and 1 or 2 threads, is_greedy included. */
static void test_reuse_branch_batches(void **state) {
    (void)state;
    enum { NCTX = 40, NCH = 6 };
    const int lens[NCH] = {1, 2, 200, 150, 180, 7};
    int ctx[NCTX], cont[200];
    for (int i = 0; i < NCTX; i++) ctx[i] = i == 0 ? lm.tokenizer.bos_id : 3 + (i * 37) % 500;
    LoglikRequest reqs[NCH + 3];
    for (int c = 0; c < NCH; c++) {
        for (int i = 0; i < lens[c]; i++) cont[i] = 3 + (c * 101 + i * 29) % 505;
        token_request(&reqs[c], ctx, NCTX, cont, lens[c]);
    }
    /* the greedy token after BOS (the model's argmax) makes is_greedy true for one choice */
    Activations a;
    CkError err = {{0}};
    float logits[512];
    assert_int_equal(activations_init(&a, &lm.model, 1, 1, 0, &err), 0);
    int one[2] = {0, 1};
    TokenBatch bos = {1, one, ctx};
    assert_int_equal(model_forward(&lm.model, &a, &bos, NULL, NULL, &err), 0);
    model_logits_row(&lm.model, &a, 0, logits, NULL);
    activations_free(&a);
    int best = 0;
    for (int i = 1; i < 512; i++)
        if (logits[i] > logits[best]) best = i;
    const int after_bos[3][2] = {{best, 0}, {best, 9}, {(best + 1) % 512, 300}};
    for (int c = 0; c < 3; c++) token_request(&reqs[NCH + c], ctx, 1, after_bos[c], 1 + c % 2);
    LoglikResult base[NCH + 3], other[NCH + 3];
    threads_set(2);
    score_all(reqs, NCH, 1, 0, base);
    score_all(reqs + NCH, 3, 1, 0, base + NCH);
    assert_int_equal(base[NCH].is_greedy, 1);
    for (int threads = 1; threads <= 2; threads++) {
        threads_set(threads);
        for (int batch = 1; batch <= 8; batch += 7) {
            double wa, w;
            score_all(reqs, NCH, batch, LOGLIK_REUSE_ALWAYS, other);
            score_all(reqs + NCH, 3, batch, LOGLIK_REUSE_ALWAYS, other + NCH);
            w = worst(base, other, NCH + 3, &wa);
            printf("branches (%d threads, batch %d) vs none: relative %.2e, absolute %.2e\n",
                   threads, batch, w, wa);
            assert_close(w, 0, 1e-5);
        }
    }
    threads_set(2);
    for (int i = 0; i < NCH + 3; i++) loglik_request_free(&reqs[i]);
}

/* The automatic mode runs the same code as OFF where the context pass would save fewer than
 * LOGLIK_REUSE_MIN_SAVED tokens and the choices fit one packed forward, and as ALWAYS
 * otherwise: results bit-identical to the mode it picks. */
static void test_reuse_auto_rule(void **state) {
    (void)state;
    int ctx[40], cont[3] = {7, 8, 9};
    for (int i = 0; i < 40; i++) ctx[i] = i == 0 ? lm.tokenizer.bos_id : 5 + i * 11;
    /* (choices, context tokens, batch) -> reused? (choices-1)*(ctx-1) vs 8, choices vs batch */
    assert_int_equal(LOGLIK_REUSE_MIN_SAVED, 8);
    const struct {
        int choices, n_ctx, batch, reused;
    } cases[] = {{3, 4, 4, 0}, {3, 5, 4, 1},  {4, 3, 4, 0}, {4, 4, 4, 1},
                 {4, 3, 3, 1}, {1, 40, 1, 0}, {2, 8, 4, 0}, {2, 9, 4, 1}};
    int ctx_long[49];
    for (int i = 0; i < 49; i++) ctx_long[i] = i < 40 ? ctx[i] : 300 + i;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        LoglikRequest reqs[4];
        for (int q = 0; q < cases[c].choices; q++) {
            cont[0] = 7 + q;
            token_request(&reqs[q], ctx_long, cases[c].n_ctx, cont, 1 + q % 3);
        }
        LoglikResult autom[4], want[4];
        score_all(reqs, cases[c].choices, cases[c].batch, LOGLIK_REUSE_AUTO, autom);
        score_all(reqs, cases[c].choices, cases[c].batch,
                  cases[c].reused ? LOGLIK_REUSE_ALWAYS : LOGLIK_REUSE_OFF, want);
        for (int q = 0; q < cases[c].choices; q++) {
            assert_true(autom[q].logprob == want[q].logprob);
            assert_int_equal(autom[q].is_greedy, want[q].is_greedy);
            loglik_request_free(&reqs[q]);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_joint_split),
        cmocka_unit_test(test_trailing_space_moves),
        cmocka_unit_test(test_join_fallback),
        cmocka_unit_test(test_sum_matches_model_score),
        cmocka_unit_test(test_is_greedy),
        cmocka_unit_test(test_left_truncation),
        cmocka_unit_test(test_reuse_truncated),
        cmocka_unit_test(test_reuse_batch_threads),
        cmocka_unit_test(test_reuse_branch_batches),
        cmocka_unit_test(test_reuse_auto_rule),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
