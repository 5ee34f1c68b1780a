/* test_generate_batch.c — batched decoding (model/generate_batch.h) against one-at-a-time
 * generation (generate_text) on the embedded stories260K: the same tokens for every request,
 * whatever B and whichever requests share a step.
 *
 * Ties: both paths take the strict first maximum (the lowest id among equal logits); a
 * product over B rows rounds differently from one over a single row (about 1e-6 relative), so
 * a greedy pick could only differ where the two best logits are that close. The test demands
 * exact equality, and on these prompts it holds (no such near-tie occurs). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "formats/lm.h"
#include "model/generate.h"
#include "model/generate_batch.h"
#include "util/threads.h"
#include "test_util.h"

#define N_PROMPTS 32
#define MAX_STEPS 40

static LanguageModel lm;

static const char *STORY =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
    "park with her friends. One day, she saw a big red ball under a tree. She ran to get it, "
    "but a small dog got there first. The dog looked at Lily and wagged its tail. Lily smiled "
    "and said, \"Can we play together?\" The dog barked happily and they played all day long.";

typedef struct {
    int ids[MAX_STEPS];
    int n;
    int done;    /* on_done calls */
    int stop_at; /* on_token stops after this many tokens (0: never) */
} Seq;

static int on_token(void *ctx, int token, const char *piece, size_t len) {
    (void)piece;
    (void)len;
    Seq *s = ctx;
    s->ids[s->n++] = token;
    return s->stop_at > 0 && s->n >= s->stop_at;
}

static int on_done(void *ctx, int index, const GenerateStats *st, CkError *err) {
    (void)index;
    (void)err;
    Seq *s = ctx;
    s->done++;
    return st->generated_tokens == s->n ? 0 : -1;
}

/* Prompts of 1 to ~70 tokens: prefixes of the story of 0, 2, 4, ... words. */
typedef struct {
    char *text[N_PROMPTS];
    int *ids[N_PROMPTS];
    int n_ids[N_PROMPTS];
} Prompts;

static void prompts_make(Prompts *p) {
    for (int i = 0; i < N_PROMPTS; i++) {
        int words = (i * 7) % 61, end = 0;
        for (int w = 0; w < words && STORY[end]; end++)
            if (STORY[end] == ' ') w++;
        p->text[i] = strndup(STORY, (size_t)(words ? end - 1 : 0));
        CkError err = {{0}};
        assert_int_equal(
            tokenizer_encode(&lm.tokenizer, p->text[i], 1, 0, &p->ids[i], &p->n_ids[i], &err), 0);
    }
}

static void prompts_free(Prompts *p) {
    for (int i = 0; i < N_PROMPTS; i++) {
        free(p->text[i]);
        free(p->ids[i]);
    }
}

/* Request i's options: lengths 4 .. 40, every third one without the EOS stop. */
static GenerateOptions options(int i, float temperature, float top_p) {
    GenerateOptions o = {4 + (i * 13) % (MAX_STEPS - 3), temperature, top_p, 1000u + (uint64_t)i,
                         i % 3 != 0};
    return o;
}

/* Runs all prompts through generate_batch with batch B; seqs[i] gets request i's tokens. */
static void run_batch(const Prompts *p, int B, float temperature, float top_p, Seq *seqs,
                      int stop_every) {
    GenerateRequest reqs[N_PROMPTS];
    for (int i = 0; i < N_PROMPTS; i++) {
        memset(&seqs[i], 0, sizeof seqs[i]);
        seqs[i].stop_at = stop_every && i % stop_every == 1 ? 5 + i % 11 : 0;
        reqs[i] = (GenerateRequest){p->ids[i], p->n_ids[i], options(i, temperature, top_p),
                                    on_token, &seqs[i]};
    }
    GenerateBatchOptions o;
    generate_batch_options_init(&o);
    o.max_batch = B;
    o.on_done = on_done;
    GenerateBatchStats st;
    CkError err = {{0}};
    int rc = generate_batch(&lm.model, &lm.tokenizer, reqs, N_PROMPTS, &o, &st, &err);
    if (rc != 0) fail_msg("generate_batch: %s", err.msg);
    assert_int_equal(st.sequences, N_PROMPTS);
    long total = 0;
    for (int i = 0; i < N_PROMPTS; i++) {
        assert_int_equal(seqs[i].done, 1);
        total += seqs[i].n;
    }
    assert_int_equal(st.generated_tokens, total);
    /* the sequences did share passes: far fewer than one per token */
    if (B >= 5) assert_true(st.forwards * 2 < total);
    printf("  B %2d: %ld tokens in %d passes\n", B, total, st.forwards);
}

/* The reference: each prompt alone through generate_text. */
static void run_single(const Prompts *p, float temperature, float top_p, Seq *seqs,
                       int stop_every) {
    for (int i = 0; i < N_PROMPTS; i++) {
        memset(&seqs[i], 0, sizeof seqs[i]);
        seqs[i].stop_at = stop_every && i % stop_every == 1 ? 5 + i % 11 : 0;
        GenerateOptions o = options(i, temperature, top_p);
        CkError err = {{0}};
        GenerateStats st;
        assert_int_equal(generate_text(&lm.model, &lm.tokenizer, p->text[i], &o, on_token, &seqs[i],
                                       NULL, &st, &err),
                         0);
        assert_int_equal(st.generated_tokens, seqs[i].n);
    }
}

static void assert_same(const Seq *a, const Seq *b) {
    int differ = 0;
    for (int i = 0; i < N_PROMPTS; i++) {
        if (a[i].n == b[i].n && !memcmp(a[i].ids, b[i].ids, (size_t)a[i].n * sizeof(int))) continue;
        int k = 0;
        while (k < a[i].n && k < b[i].n && a[i].ids[k] == b[i].ids[k]) k++;
        print_error("request %d: %d vs %d tokens, first difference at token %d\n", i, a[i].n,
                    b[i].n, k);
        differ++;
    }
    assert_int_equal(differ, 0);
}

static void test_greedy_batched_equals_unbatched(void **state) {
    (void)state;
    Prompts p;
    prompts_make(&p);
    int shortest = 1 << 30, longest = 0;
    for (int i = 0; i < N_PROMPTS; i++) {
        if (p.n_ids[i] < shortest) shortest = p.n_ids[i];
        if (p.n_ids[i] > longest) longest = p.n_ids[i];
    }
    assert_int_equal(shortest, 1); /* BOS alone */
    assert_true(longest > 50);
    Seq *ref = calloc(N_PROMPTS, sizeof(Seq)), *got = calloc(N_PROMPTS, sizeof(Seq));
    run_single(&p, 0.0f, 1.0f, ref, 4);
    const int batches[] = {16, 5};
    for (size_t k = 0; k < sizeof batches / sizeof batches[0]; k++) {
        run_batch(&p, batches[k], 0.0f, 1.0f, got, 4);
        assert_same(ref, got);
    }
    free(ref);
    free(got);
    prompts_free(&p);
}

/* Each request samples from its own seeded stream: B does not change what it draws. */
static void test_sampling_same_at_any_batch(void **state) {
    (void)state;
    Prompts p;
    prompts_make(&p);
    Seq *a = calloc(N_PROMPTS, sizeof(Seq)), *b = calloc(N_PROMPTS, sizeof(Seq));
    run_batch(&p, 1, 1.0f, 0.9f, a, 0);
    run_batch(&p, 7, 1.0f, 0.9f, b, 0);
    assert_same(a, b);
    /* and it is generate_text's sample, with top-p and without */
    run_single(&p, 1.0f, 0.9f, a, 0);
    assert_same(a, b);
    run_single(&p, 1.0f, 1.0f, a, 0);
    run_batch(&p, 7, 1.0f, 1.0f, b, 0);
    assert_same(a, b);
    free(a);
    free(b);
    prompts_free(&p);
}

static void test_bad_requests(void **state) {
    (void)state;
    int ids[1] = {1};
    GenerateRequest r = {ids, 0, {4, 0.0f, 1.0f, 1, 1}, NULL, NULL};
    GenerateBatchOptions o;
    generate_batch_options_init(&o);
    CkError err = {{0}};
    assert_int_equal(generate_batch(&lm.model, &lm.tokenizer, &r, 1, &o, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "request 0: the prompt has 0 tokens"));
    r.n_prompt = 1;
    r.opt.top_p = 0.0f;
    assert_int_equal(generate_batch(&lm.model, &lm.tokenizer, &r, 1, &o, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "top-p"));
    r.opt.top_p = 1.0f;
    o.max_batch = 0;
    assert_int_equal(generate_batch(&lm.model, &lm.tokenizer, &r, 1, &o, NULL, &err), -1);
    /* no steps: finished at once with no token */
    o.max_batch = 2;
    r.opt.steps = 0;
    Seq s = {0};
    r.on_token = on_token;
    r.ctx = &s;
    o.on_done = on_done;
    assert_int_equal(generate_batch(&lm.model, &lm.tokenizer, &r, 1, &o, NULL, &err), 0);
    assert_int_equal(s.done, 1);
    assert_int_equal(s.n, 0);
}

/* util/threads.h, which decoding's small products lean on: no parallel region for work too
 * small to gain from one, and the wait-policy default leaves a user's setting alone. */
static void test_thread_defaults(void **state) {
    (void)state;
    threads_set(2);
    assert_int_equal(threads_for_work(0), 1);
    assert_int_equal(threads_for_work(THREADS_MIN_FLOPS_PER_THREAD), 1);
    assert_int_equal(threads_for_work(2 * THREADS_MIN_FLOPS_PER_THREAD), 2);
    assert_int_equal(threads_for_work(1e12), 2);
    threads_set(1);
    assert_int_equal(threads_for_work(1e12), 1);
    threads_set(0);
    /* ctest sets OMP_WAIT_POLICY: nothing to change then */
    const char *had = getenv("OMP_WAIT_POLICY");
    setenv("OMP_WAIT_POLICY", "active", 1);
    assert_int_equal(threads_env_defaults(), 0);
    assert_string_equal(getenv("OMP_WAIT_POLICY"), "active");
    unsetenv("OMP_WAIT_POLICY");
    const char *spin = getenv("GOMP_SPINCOUNT");
    if (!spin) {
        assert_int_equal(threads_env_defaults(), 1);
        assert_string_equal(getenv("GOMP_SPINCOUNT"), "1000");
        unsetenv("GOMP_SPINCOUNT");
    }
    if (had)
        setenv("OMP_WAIT_POLICY", had, 1);
    else
        unsetenv("OMP_WAIT_POLICY");
}

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_batched_equals_unbatched),
        cmocka_unit_test(test_sampling_same_at_any_batch),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_thread_defaults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
