/* test_model.c — the forward pass of the embedded stories260K against the golden values of
 * ../shared/models/stories260K/PROVENANCE.md (an independent numpy reference), batching and
 * thread-count invariance, the KV cache, branches over a shared cached prefix, and llama2.c
 * checkpoint versions 0/1/2. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "formats/embedded.h"
#include "model/generate.h"
#include "formats/llama2c.h"
#include "formats/lm.h"
#include "model/lora.h"
#include "model/model.h"
#include "util/rng.h"
#include "model/sampler.h"
#include "model/score_text.h"
#include "util/threads.h"

static LanguageModel lm;

static int setup(void **state) {
    (void)state;
    CkError err = {{0}};
    if (lm_open(&lm, NULL, NULL, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    lm_close(&lm);
    threads_set(0);
    return 0;
}

/* Runs tokens through the model and copies the logits of row `row` into out (V floats). */
static void logits_at(const Model *m, const int *tokens, int n, int row, float *out) {
    Activations a;
    CkError err = {{0}};
    assert_int_equal(activations_init(&a, m, n, n, 0, &err), 0);
    int offsets[2] = {0, n};
    TokenBatch b = {1, offsets, tokens};
    assert_int_equal(model_forward(m, &a, &b, NULL, NULL, &err), 0);
    model_logits_row(m, &a, row, out, NULL);
    activations_free(&a);
}

static void test_logits_after_bos(void **state) {
    (void)state;
    float logits[512];
    int bos = 1;
    logits_at(&lm.model, &bos, 1, 0, logits);
    const float first4[4] = {-6.22291f, 8.40434f, -6.22374f, -6.22254f};
    for (int i = 0; i < 4; i++) assert_float_equal(logits[i], first4[i], 1e-4);
    double sum = 0.0;
    for (int i = 0; i < 512; i++) sum += logits[i];
    assert_float_equal(sum, -1070.172, 1e-3 * 1.0); /* printed to 3 decimals */
    const int top_ids[5] = {403, 385, 410, 317, 407};
    const float top_vals[5] = {17.0235f, 15.4062f, 13.1083f, 12.7692f, 12.4181f};
    int used[512] = {0};
    for (int k = 0; k < 5; k++) {
        int best = -1;
        for (int i = 0; i < 512; i++)
            if (!used[i] && (best < 0 || logits[i] > logits[best])) best = i;
        used[best] = 1;
        assert_int_equal(best, top_ids[k]);
        assert_float_equal(logits[best], top_vals[k], 1e-4);
    }
}

static int collect_bytes(void *ctx, int token, const char *piece, size_t len) {
    (void)token;
    char *buf = ctx;
    size_t used = strlen(buf);
    memcpy(buf + used, piece, len);
    buf[used + len] = '\0';
    return 0;
}

static void test_greedy_from_bos(void **state) {
    (void)state;
    GenerateOptions opt = {256, 0.0f, 1.0f, 0, 1};
    int ids[256];
    char *text = calloc(1, 65536);
    GenerateStats stats;
    CkError err = {{0}};
    assert_int_equal(
        generate_text(&lm.model, &lm.tokenizer, "", &opt, collect_bytes, text, ids, &stats, &err),
        0);
    assert_int_equal(stats.generated_tokens, 256);
    const int first40[40] = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317,
                             426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282,
                             295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352};
    for (int i = 0; i < 40; i++) assert_int_equal(ids[i], first40[i]);
    char *path = test_shared_path("models/stories260K/expected_greedy_from_bos_256.txt");
    if (path) {
        size_t size;
        char *expected = test_read_file(path, &size);
        assert_non_null(expected);
        assert_int_equal(strlen(text), size);
        assert_memory_equal(text, expected, size);
        free(expected);
        free(path);
    }
    free(text);
}

static const char *REFERENCE_SENTENCE = "Once upon a time, there was a little girl named Lily. "
                                        "She loved to play outside in the park.";

static void test_teacher_forced_nll(void **state) {
    (void)state;
    int *ids, n;
    CkError err = {{0}};
    assert_int_equal(tokenizer_encode(&lm.tokenizer, REFERENCE_SENTENCE, 1, 0, &ids, &n, &err), 0);
    assert_int_equal(n, 32);
    Activations a;
    assert_int_equal(activations_init(&a, &lm.model, n, n, 0, &err), 0);
    int offsets[2] = {0, n};
    TokenBatch b = {1, offsets, ids};
    double sum;
    int count;
    assert_int_equal(model_score_sequences(&lm.model, &a, &b, &sum, &count, &err), 0);
    assert_int_equal(count, 31);
    assert_float_equal(-sum / count, 0.180355, 1e-5);
    activations_free(&a);
    free(ids);
}

/* score_text (what `cutkit score` prints): the same mean NLL as model_score_sequences, the
 * sum of the per-token log-probs, and a text beyond the context refused. */
static void test_score_text(void **state) {
    (void)state;
    TextScore s;
    CkError err = {{0}};
    assert_int_equal(score_text(&lm.model, &lm.tokenizer, NULL, REFERENCE_SENTENCE, &s, &err), 0);
    assert_int_equal(s.n, 32);
    assert_int_equal(s.ids[0], lm.tokenizer.bos_id);
    double sum = 0;
    for (int i = 0; i + 1 < s.n; i++) sum += s.logprobs[i];
    assert_close(s.sum, sum, 0);
    assert_close(s.mean_nll, 0.180355, 1e-5);
    assert_close(s.perplexity, exp(s.mean_nll), 0);
    score_text_free(&s);
    char *long_text = malloc(4096);
    for (int i = 0; i < 4095; i++) long_text[i] = "ab "[i % 3];
    long_text[4095] = '\0';
    assert_int_equal(score_text(&lm.model, &lm.tokenizer, NULL, long_text, &s, &err), -1);
    assert_non_null(strstr(err.msg, "the model's context is 512"));
    assert_null(s.ids);
    free(long_text);
}

/* Scores a packed batch together, each sequence alone, and together on one thread, and
 * returns the largest differences (absolute, and relative to |log p|). */
static void batch_differences(const int *tokens, const int *targets, const int *offsets, int n_seqs,
                              double *max_abs, double *max_rel, double *max_mean) {
    const int n = offsets[n_seqs];
    CkError err = {{0}};
    Activations a;
    assert_int_equal(activations_init(&a, &lm.model, n, 256, 0, &err), 0);
    double *together = malloc(sizeof(double) * n), *alone = malloc(sizeof(double) * n);
    double *one_thread = malloc(sizeof(double) * n);
    TokenBatch b = {n_seqs, offsets, tokens};
    threads_set(2);
    assert_int_equal(model_score(&lm.model, &a, &b, targets, together, &err), 0);
    for (int s = 0; s < n_seqs; s++) {
        int off[2] = {0, offsets[s + 1] - offsets[s]};
        TokenBatch one = {1, off, tokens + offsets[s]};
        assert_int_equal(
            model_score(&lm.model, &a, &one, targets + offsets[s], alone + offsets[s], &err), 0);
    }
    threads_set(1);
    assert_int_equal(model_score(&lm.model, &a, &b, targets, one_thread, &err), 0);
    threads_set(0);
    *max_abs = *max_rel = *max_mean = 0;
    for (int i = 0; i < n; i++) {
        if (targets[i] < 0) continue;
        double d = fmax(fabs(together[i] - alone[i]), fabs(together[i] - one_thread[i]));
        *max_abs = fmax(*max_abs, d);
        *max_rel = fmax(*max_rel, d / fmax(1.0, fabs(together[i])));
        assert_true(together[i] < 0.0);
    }
    for (int s = 0; s < n_seqs; s++) {
        double sums[3] = {0}, count = 0;
        for (int i = offsets[s]; i < offsets[s + 1]; i++) {
            if (targets[i] < 0) continue;
            sums[0] += together[i];
            sums[1] += alone[i];
            sums[2] += one_thread[i];
            count++;
        }
        if (count == 0) continue;
        *max_mean = fmax(*max_mean, fmax(fabs(sums[0] - sums[1]), fabs(sums[0] - sums[2])) / count);
    }
    activations_free(&a);
    free(together);
    free(alone);
    free(one_thread);
}

/* Batch composition and thread count change only BLAS rounding. OpenBLAS picks kernels
 * and splits by shape and thread count (its small-matrix path, gemv for one row, a split of
 * ragged dimensions), so results agree to float32 rounding, not bit for bit. Logits of this
 * model reach 18, where one float32 step is 2e-6, so a log-prob agrees to about 1e-6 of its
 * own size: the test asserts 1e-5 relative to max(1, |log p|) per token (measured: 2e-6 in the
 * -march=native build, 7e-6 in the sanitizer build), and 1e-5 absolute on each sequence's
 * mean log-prob, the number evaluations compare (measured: 8e-7 and 2e-6). */
static void test_batch_equals_single_and_threads(void **state) {
    (void)state;
    const char *texts[] = {"Once upon a time, there was a little girl named Lily.", "Tom",
                           "One day, she saw a big, red ball. She wanted to play with it, but it "
                           "was too high. Lily's mom said, \"Lily, let's go to the park.\"",
                           "The cat sat on the mat and looked at the sun.", "Hello world!  \u4f60"};
    const int n_texts = 5;
    int *tokens = malloc(sizeof(int) * 4096), *targets = malloc(sizeof(int) * 4096);
    int offsets[6] = {0};
    CkError err = {{0}};
    for (int s = 0; s < n_texts; s++) {
        int *ids, n;
        assert_int_equal(tokenizer_encode(&lm.tokenizer, texts[s], 1, 0, &ids, &n, &err), 0);
        memcpy(tokens + offsets[s], ids, sizeof(int) * n);
        for (int i = 0; i < n; i++) targets[offsets[s] + i] = i + 1 < n ? ids[i + 1] : -1;
        offsets[s + 1] = offsets[s] + n;
        free(ids);
    }
    double max_abs, max_rel, max_mean;
    batch_differences(tokens, targets, offsets, n_texts, &max_abs, &max_rel, &max_mean);
    printf("text: batched vs single or 1 thread: per token max abs %.3g, max relative %.3g; "
           "mean log-prob per sequence %.3g\n",
           max_abs, max_rel, max_mean);
    assert_close(max_rel, 0, 1e-5);
    assert_close(max_mean, 0, 1e-5);

    const int lens[5] = {17, 1, 64, 33, 100};
    for (int s = 0; s < 5; s++) offsets[s + 1] = offsets[s] + lens[s];
    Rng rng;
    rng_seed(&rng, 7);
    for (int i = 0; i < offsets[5]; i++) {
        tokens[i] = (int)(rng_next(&rng) % 512);
        targets[i] = (int)(rng_next(&rng) % 512);
    }
    batch_differences(tokens, targets, offsets, 5, &max_abs, &max_rel, &max_mean);
    printf("random tokens: per token max abs %.3g, max relative %.3g; mean per sequence %.3g\n",
           max_abs, max_rel, max_mean);
    assert_close(max_rel, 0, 1e-5);
    assert_close(max_mean, 0, 1e-5);
    free(tokens);
    free(targets);
}

/* Prefill + one-token steps through the KV cache give the logits of a full forward. */
static void test_kv_cache_matches_full_forward(void **state) {
    (void)state;
    const Model *m = &lm.model;
    int tokens[40];
    Rng rng;
    rng_seed(&rng, 3);
    for (int i = 0; i < 40; i++) tokens[i] = (int)(rng_next(&rng) % 512);
    float full[512], cached[512];
    logits_at(m, tokens, 40, 39, full);
    CkError err = {{0}};
    KVCache cache;
    Activations a;
    assert_int_equal(kvcache_init(&cache, m, 40, &err), 0);
    assert_int_equal(activations_init(&a, m, 30, 40, 0, &err), 0);
    int off[2] = {0, 30};
    TokenBatch b = {1, off, tokens};
    assert_int_equal(model_forward(m, &a, &b, &cache, NULL, &err), 0);
    for (int i = 30; i < 40; i++) {
        off[1] = 1;
        b.tokens = tokens + i;
        assert_int_equal(model_forward(m, &a, &b, &cache, NULL, &err), 0);
    }
    model_logits_row(m, &a, 0, cached, NULL);
    for (int i = 0; i < 512; i++) assert_float_equal(full[i], cached[i], 1e-4);
    /* a full cache refuses more */
    assert_int_equal(model_forward(m, &a, &b, &cache, NULL, &err), -1);
    assert_string_equal(err.msg, "sequence 0 attends to 41 positions; activations allow 40");
    kvcache_free(&cache);
    activations_free(&a);
}

/* Largest |a - b| over the logits of row `row` of a's last forward and the reference row. */
static double row_diff(const Model *m, const Activations *a, int row, const float *want) {
    float got[512];
    model_logits_row(m, a, row, got, NULL);
    double d = 0.0;
    for (int i = 0; i < 512; i++) d = fmax(d, fabs((double)got[i] - want[i]));
    return d;
}

/* Logits of every position of tokens[0..n) by a plain forward (the reference), into out (n, V). */
static void full_logits(const Model *m, const int *tokens, int n, const LoraAdapters *lora,
                        float *out) {
    Activations a;
    CkError err = {{0}};
    assert_int_equal(activations_init(&a, m, n, n, 0, &err), 0);
    int off[2] = {0, n};
    TokenBatch b = {1, off, tokens};
    assert_int_equal(model_forward(m, &a, &b, NULL, lora, &err), 0);
    for (int i = 0; i < n; i++) model_logits_row(m, &a, i, out + (size_t)i * 512, NULL);
    activations_free(&a);
}

/* Branches over a cached prefix (model_forward_branches), and prefix + branches as one tree
 * (model_forward_tree), give, row for row, the logits of a full forward of prefix + branch:
 * continuations of lengths 1..12 in one batch, with and without LoRA (every module adapted, B
 * random so the update matters), on 1 and 2 threads, for prefix lengths 23 and 0; positions cached
 * beyond prefix_len are ignored and the cache is left unchanged. */
static void test_branches_match_full_forward(void **state) {
    (void)state;
    const Model *m = &lm.model;
    enum { P = 23, EXTRA = 6, NB = 5 };
    const int lens[NB] = {1, 5, 12, 3, 1};
    int offsets[NB + 1] = {0};
    for (int s = 0; s < NB; s++) offsets[s + 1] = offsets[s] + lens[s];
    const int n_branch = offsets[NB];
    int prefix[P + EXTRA], branch[32], seq[P + 12];
    Rng rng;
    rng_seed(&rng, 11);
    for (int i = 0; i < P + EXTRA; i++) prefix[i] = (int)(rng_next(&rng) % 512);
    for (int i = 0; i < n_branch; i++) branch[i] = (int)(rng_next(&rng) % 512);
    CkError err = {{0}};
    LoraAdapters ad;
    LoraConfig lc = {4, 8.0f, 0.0f, LORA_TARGET_ALL};
    assert_int_equal(lora_init(&ad, m, &lc, 5, &err), 0);
    for (int t = 0; t < ad.n_tensors; t++)
        if (ad.tensors[t].is_b)
            for (size_t j = 0; j < ad.tensors[t].size; j++)
                ad.params[ad.tensors[t].offset + j] = 0.05f * (rng_float(&rng) - 0.5f);
    float *want = malloc(sizeof(float) * (P + 12) * 512);
    KVCache cache;
    Activations a;
    assert_int_equal(kvcache_init(&cache, m, P + EXTRA, &err), 0);
    assert_int_equal(activations_init(&a, m, P + EXTRA, P + 12, 0, &err), 0);
    size_t cache_floats = (size_t)cache.n_layers * cache.capacity * cache.kv_dim;
    float *k_before = malloc(sizeof(float) * cache_floats);
    double worst = 0.0;
    for (int use_lora = 0; use_lora <= 1; use_lora++) {
        const LoraAdapters *lora = use_lora ? &ad : NULL;
        for (int prefix_len = P; prefix_len >= 0; prefix_len -= P) {
            /* the cache holds EXTRA positions more than the branches may see */
            cache.len = 0;
            int off[2] = {0, P + EXTRA};
            TokenBatch pb = {1, off, prefix};
            assert_int_equal(model_forward(m, &a, &pb, &cache, lora, &err), 0);
            memcpy(k_before, cache.k, sizeof(float) * cache_floats);
            for (int threads = 1; threads <= 2; threads++) {
                threads_set(threads);
                TokenBatch bb = {NB, offsets, branch};
                assert_int_equal(model_forward_branches(m, &a, &cache, prefix_len, &bb, lora, &err),
                                 0);
                assert_int_equal(a.n_tokens, n_branch);
                assert_memory_equal(k_before, cache.k, sizeof(float) * cache_floats);
                assert_int_equal(cache.len, P + EXTRA);
                for (int s = 0; s < NB; s++) {
                    memcpy(seq, prefix, sizeof(int) * prefix_len);
                    memcpy(seq + prefix_len, branch + offsets[s], sizeof(int) * lens[s]);
                    full_logits(m, seq, prefix_len + lens[s], lora, want);
                    for (int i = 0; i < lens[s]; i++) {
                        double d =
                            row_diff(m, &a, offsets[s] + i, want + (size_t)(prefix_len + i) * 512);
                        worst = fmax(worst, d);
                        assert_close(d, 0, 1e-4);
                    }
                }
            }
        }
    }
    printf("branches vs full forward: max |logit diff| %.2e\n", worst);
    /* the same as one tree: the prefix as sequence 0, then the branches */
    int tree_tokens[P + 32], tree_off[NB + 2] = {0, P};
    memcpy(tree_tokens, prefix, sizeof(int) * P);
    memcpy(tree_tokens + P, branch, sizeof(int) * n_branch);
    for (int s = 0; s < NB; s++) tree_off[s + 2] = P + offsets[s + 1];
    Activations ta;
    assert_int_equal(activations_init(&ta, m, P + n_branch, P + 12, 0, &err), 0);
    double worst_tree = 0.0;
    for (int use_lora = 0; use_lora <= 1; use_lora++) {
        const LoraAdapters *lora = use_lora ? &ad : NULL;
        for (int threads = 1; threads <= 2; threads++) {
            threads_set(threads);
            TokenBatch tb = {NB + 1, tree_off, tree_tokens};
            assert_int_equal(model_forward_tree(m, &ta, &tb, lora, &err), 0);
            for (int s = 0; s < NB; s++) {
                memcpy(seq, prefix, sizeof(int) * P);
                memcpy(seq + P, branch + offsets[s], sizeof(int) * lens[s]);
                full_logits(m, seq, P + lens[s], lora, want);
                for (int i = 0; i < P + lens[s]; i++) {
                    /* prefix rows too: sequence 0 is an ordinary causal sequence */
                    int row = i < P ? i : tree_off[s + 1] + i - P;
                    double d = row_diff(m, &ta, row, want + (size_t)i * 512);
                    worst_tree = fmax(worst_tree, d);
                    assert_close(d, 0, 1e-4);
                }
            }
        }
    }
    printf("tree vs full forward: max |logit diff| %.2e\n", worst_tree);
    activations_free(&ta);
    /* refusals: a prefix longer than the cache holds, branches past the activations' keys */
    TokenBatch bb = {NB, offsets, branch};
    assert_int_equal(model_forward_branches(m, &a, &cache, P + EXTRA + 1, &bb, NULL, &err), -1);
    assert_string_equal(err.msg, "prefix of 30 positions; the cache holds 29");
    assert_int_equal(model_forward_branches(m, &a, &cache, P + 1, &bb, NULL, &err), -1);
    assert_string_equal(err.msg, "sequence 2 attends to 36 positions; activations allow 35");
    assert_int_equal(model_forward_branches(m, &a, NULL, 0, &bb, NULL, &err), -1);
    threads_set(0);
    free(k_before);
    free(want);
    kvcache_free(&cache);
    activations_free(&a);
    lora_free(&ad);
}

/* Largest |a - b| / max(1, |b|) over row `row` of a's last forward and the reference row. */
static double row_rel_diff(const Model *m, const Activations *a, int row, const float *want) {
    float got[512];
    model_logits_row(m, a, row, got, NULL);
    double d = 0.0;
    for (int i = 0; i < 512; i++)
        d = fmax(d, fabs((double)got[i] - want[i]) / fmax(1.0, fabs((double)want[i])));
    return d;
}

/* model_forward_cached: four sequences, each over its own cache, prefilled together with mixed
 * lengths and then decoded one token each for several steps (caches of different lengths), give
 * row for row the logits of model_forward run on each sequence alone with its own cache (the
 * same steps; within 1e-5 relative to max(1, |logit|), the bound of batch composition above:
 * BLAS rounds differently shaped products differently; measured 7e-6) and of a
 * full forward (within 1e-4), with and without LoRA, on 1 and 2 threads; a batch whose caches are
 * missing or full is refused. */
static void test_forward_cached_matches_per_sequence(void **state) {
    (void)state;
    const Model *m = &lm.model;
    enum { NS = 4, STEPS = 5, CAP = 20 };
    const int prefill[NS] = {3, 1, 9, 6};
    int tokens[NS][CAP];
    Rng rng;
    rng_seed(&rng, 17);
    for (int s = 0; s < NS; s++)
        for (int i = 0; i < CAP; i++) tokens[s][i] = (int)(rng_next(&rng) % 512);
    CkError err = {{0}};
    LoraAdapters ad;
    LoraConfig lc = {4, 8.0f, 0.0f, LORA_TARGET_ALL};
    assert_int_equal(lora_init(&ad, m, &lc, 5, &err), 0);
    for (int t = 0; t < ad.n_tensors; t++)
        if (ad.tensors[t].is_b)
            for (size_t j = 0; j < ad.tensors[t].size; j++)
                ad.params[ad.tensors[t].offset + j] = 0.05f * (rng_float(&rng) - 0.5f);
    KVCache caches[NS], solo[NS];
    KVCache *ptrs[NS];
    for (int s = 0; s < NS; s++) {
        assert_int_equal(kvcache_init(&caches[s], m, CAP, &err), 0);
        assert_int_equal(kvcache_init(&solo[s], m, CAP, &err), 0);
        ptrs[s] = &caches[s];
    }
    Activations a, sa;
    assert_int_equal(activations_init(&a, m, 32, CAP, 0, &err), 0);
    assert_int_equal(activations_init(&sa, m, 32, CAP, 0, &err), 0);
    float *want = malloc(sizeof(float) * CAP * 512), got[512];
    double worst_solo = 0.0, worst_full = 0.0;
    for (int run = 0; run < 4; run++) {
        const LoraAdapters *lora = (run & 1) ? &ad : NULL;
        threads_set(1 + run / 2);
        for (int s = 0; s < NS; s++) caches[s].len = solo[s].len = 0;
        for (int step = 0; step <= STEPS; step++) {
            /* step 0: the prefills of mixed lengths; then one token each */
            int off[NS + 1] = {0}, packed[32], start[NS];
            for (int s = 0; s < NS; s++) {
                start[s] = caches[s].len;
                int len = step == 0 ? prefill[s] : 1;
                memcpy(packed + off[s], tokens[s] + start[s], sizeof(int) * len);
                off[s + 1] = off[s] + len;
            }
            TokenBatch b = {NS, off, packed};
            assert_int_equal(model_forward_cached(m, &a, &b, ptrs, lora, &err), 0);
            for (int s = 0; s < NS; s++) {
                int len = off[s + 1] - off[s], soff[2] = {0, len};
                TokenBatch sb = {1, soff, tokens[s] + start[s]};
                assert_int_equal(model_forward(m, &sa, &sb, &solo[s], lora, &err), 0);
                assert_int_equal(caches[s].len, start[s] + len);
                full_logits(m, tokens[s], start[s] + len, lora, want);
                for (int i = 0; i < len; i++) {
                    model_logits_row(m, &sa, i, got, NULL);
                    worst_solo = fmax(worst_solo, row_rel_diff(m, &a, off[s] + i, got));
                    worst_full = fmax(worst_full, row_diff(m, &a, off[s] + i,
                                                           want + (size_t)(start[s] + i) * 512));
                }
            }
        }
    }
    printf("cached batch vs per-sequence cache: %.2e (relative), vs full forward: %.2e\n",
           worst_solo, worst_full);
    assert_close(worst_solo, 0, 1e-5);
    assert_close(worst_full, 0, 1e-4);
    /* refusals: a missing cache, a full one */
    int one[NS] = {1, 2, 3, 4}, off1[NS + 1] = {0, 1, 2, 3, 4};
    TokenBatch b1 = {NS, off1, one};
    ptrs[2] = NULL;
    assert_int_equal(model_forward_cached(m, &a, &b1, ptrs, NULL, &err), -1);
    assert_string_equal(err.msg, "cache of sequence 2 is missing or does not fit the model");
    ptrs[2] = &caches[2];
    caches[1].len = CAP;
    assert_int_equal(model_forward_cached(m, &a, &b1, ptrs, NULL, &err), -1);
    assert_string_equal(err.msg, "sequence 1 attends to 21 positions; activations allow 20");
    threads_set(0);
    for (int s = 0; s < NS; s++) {
        kvcache_free(&caches[s]);
        kvcache_free(&solo[s]);
    }
    free(want);
    activations_free(&a);
    activations_free(&sa);
    lora_free(&ad);
}

/* Seeded sampling is deterministic and differs between seeds. */
static void test_sampling_is_seeded(void **state) {
    (void)state;
    GenerateOptions opt = {40, 1.0f, 0.9f, 123, 0};
    int a[40], b[40], c[40];
    CkError err = {{0}};
    assert_int_equal(
        generate_text(&lm.model, &lm.tokenizer, "Lily", &opt, NULL, NULL, a, NULL, &err), 0);
    assert_int_equal(
        generate_text(&lm.model, &lm.tokenizer, "Lily", &opt, NULL, NULL, b, NULL, &err), 0);
    opt.seed = 124;
    assert_int_equal(
        generate_text(&lm.model, &lm.tokenizer, "Lily", &opt, NULL, NULL, c, NULL, &err), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
}

/* ---- checkpoint formats ---------------------------------------------------------------- */

static unsigned char *embedded_copy(size_t *size) {
    const void *data = embedded_model(size);
    unsigned char *copy = malloc(*size);
    memcpy(copy, data, *size);
    return copy;
}

static void put_i32(unsigned char *p, int32_t v) {
    memcpy(p, &v, sizeof v);
}

/* Writes the embedded model as an export.py version-1 (fp32) or version-2 (Q8_0) image. */
static unsigned char *export_v1_v2(const Model *m, int version, int group, size_t *size) {
    const ModelConfig *c = &m->config;
    const ParamId order[] = {PARAM_TOKEN_EMBEDDING,
                             PARAM_WQ,
                             PARAM_WK,
                             PARAM_WV,
                             PARAM_WO,
                             PARAM_W1,
                             PARAM_W2,
                             PARAM_W3};
    size_t norms = m->tensors[PARAM_RMS_ATT].size + m->tensors[PARAM_RMS_FFN].size +
                   m->tensors[PARAM_RMS_FINAL].size;
    size_t matrices = 0;
    for (int i = 0; i < 8; i++) matrices += m->tensors[order[i]].size;
    *size = 256 + norms * 4 + (version == 1 ? matrices * 4 : matrices + matrices / group * 4);
    unsigned char *img = calloc(1, *size);
    put_i32(img, 0x616b3432);
    put_i32(img + 4, version);
    const int hdr[7] = {c->dim,        c->hidden_dim, c->n_layers, c->n_heads,
                        c->n_kv_heads, c->vocab_size, c->seq_len};
    for (int i = 0; i < 7; i++) put_i32(img + 8 + 4 * i, hdr[i]);
    img[36] = 1;
    if (version == 2) put_i32(img + 37, group);
    size_t pos = 256;
    const ParamId norm_ids[3] = {PARAM_RMS_ATT, PARAM_RMS_FFN, PARAM_RMS_FINAL};
    for (int i = 0; i < 3; i++) {
        memcpy(img + pos, model_param(m, norm_ids[i], 0), m->tensors[norm_ids[i]].size * 4);
        pos += m->tensors[norm_ids[i]].size * 4;
    }
    size_t scale_pos = pos + matrices;
    for (int i = 0; i < 8; i++) {
        const float *w = model_param(m, order[i], 0);
        size_t n = m->tensors[order[i]].size;
        if (version == 1) {
            memcpy(img + pos, w, n * 4);
            pos += n * 4;
            continue;
        }
        for (size_t g = 0; g < n; g += group) {
            float maxabs = 0;
            for (int j = 0; j < group; j++) maxabs = fmaxf(maxabs, fabsf(w[g + j]));
            float scale = maxabs / 127.0f;
            for (int j = 0; j < group; j++)
                img[pos++] = (unsigned char)(int8_t)lrintf(scale > 0 ? w[g + j] / scale : 0);
            memcpy(img + scale_pos, &scale, 4);
            scale_pos += 4;
        }
    }
    return img;
}

static void test_versions_1_and_2_load(void **state) {
    (void)state;
    float ref[512], got[512];
    int bos = 1;
    logits_at(&lm.model, &bos, 1, 0, ref);
    for (int version = 1; version <= 2; version++) {
        size_t size;
        unsigned char *img = export_v1_v2(&lm.model, version, 32, &size);
        Model m;
        CkError err = {{0}};
        assert_int_equal(llama2c_load(&m, img, size, &err), 0);
        logits_at(&m, &bos, 1, 0, got);
        double maxdiff = 0;
        for (int i = 0; i < 512; i++) maxdiff = fmax(maxdiff, fabs(ref[i] - got[i]));
        printf("version %d: max logit difference %.3g\n", version, maxdiff);
        if (version == 1)
            assert_true(maxdiff == 0.0);
        else
            assert_true(maxdiff < 0.5 && maxdiff > 0.0); /* int8 weights: close, not equal */
        model_free(&m);
        free(img);
    }
}

/* Loads an image that must be refused and checks the message. */
static void expect_refused(const unsigned char *img, size_t size, const char *message) {
    Model m;
    CkError err = {{0}};
    assert_int_equal(llama2c_load(&m, img, size, &err), -1);
    assert_string_equal(err.msg, message);
    assert_null(m.params);
}

static void test_bad_checkpoints(void **state) {
    (void)state;
    size_t size;
    unsigned char *img = embedded_copy(&size);
    expect_refused(img, 10, "truncated header: 10 bytes, a llama2.c checkpoint has at least 28");
    expect_refused(img, size - 100,
                   "file is 1056440 bytes but its header (dim 64, hidden_dim 172, n_layers 5, "
                   "n_heads 8, n_kv_heads 4, vocab_size 512, seq_len 512) implies 1056540 bytes: "
                   "truncated");
    unsigned char *bigger = calloc(1, size + 4);
    memcpy(bigger, img, size);
    expect_refused(bigger, size + 4,
                   "file is 1056544 bytes but its header (dim 64, hidden_dim 172, n_layers 5, "
                   "n_heads 8, n_kv_heads 4, vocab_size 512, seq_len 512) implies 1056540 bytes: "
                   "oversized");
    free(bigger);
    put_i32(img, 0);
    expect_refused(
        img, size,
        "non-positive dimension in config (dim 0, hidden_dim 172, n_layers 5, n_heads 8, "
        "n_kv_heads 4, vocab_size 512, seq_len 512)");
    put_i32(img, 64);
    put_i32(img + 12, 7);
    expect_refused(img, size, "n_heads 7 does not divide dim 64");
    put_i32(img + 12, 8);
    put_i32(img + 16, 3);
    expect_refused(img, size, "n_kv_heads 3 does not divide n_heads 8");
    put_i32(img + 16, 4);
    put_i32(img + 8, -5);
    expect_refused(img, size,
                   "non-positive dimension in config (dim 64, hidden_dim 172, n_layers -5, "
                   "n_heads 8, n_kv_heads 4, vocab_size 512, seq_len 512)");
    put_i32(img + 8, 5);
    put_i32(img, 1 << 30); /* would overflow a size computation if not refused first */
    put_i32(img + 12, 1 << 20);
    put_i32(img + 16, 1 << 20);
    expect_refused(img, size,
                   "implausibly large config (dim 1073741824, hidden_dim 172, n_layers 5, "
                   "vocab_size 512, seq_len 512)");
    free(img);

    unsigned char v[300] = {0};
    put_i32(v, 0x616b3432);
    put_i32(v + 4, 3);
    expect_refused(v, sizeof v, "unsupported llama2.c checkpoint version 3 (cutkit reads 0, 1, 2)");
    put_i32(v + 4, 2);
    expect_refused(v, 100, "truncated header: 100 bytes, a version-2 header has 256");
    const int hdr[7] = {64, 172, 5, 8, 4, 512, 512};
    for (int i = 0; i < 7; i++) put_i32(v + 8 + 4 * i, hdr[i]);
    put_i32(v + 37, 0);
    expect_refused(v, sizeof v, "version-2 group size 0 is not positive");
    put_i32(v + 37, 96);
    expect_refused(v, sizeof v,
                   "tensor token_embedding has 32768 values, not a multiple of group size 96");
}

static void test_bad_checkpoint_file_and_vocab(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/missing.bin", dir);
    LanguageModel other;
    CkError err = {{0}};
    assert_int_equal(lm_open(&other, path, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "missing.bin: cannot open: No such file or directory"));
    /* a tiny model with a vocabulary of 1000: the embedded tokenizer does not fit it */
    unsigned char hdr[28];
    const int dims[7] = {8, 16, 1, 2, 2, 1000, 16};
    for (int i = 0; i < 7; i++) put_i32(hdr + 4 * i, dims[i]);
    ModelConfig c = {8, 16, 1, 2, 2, 1000, 16, 1e-5f, 10000.0f, ROPE_INTERLEAVED, 1};
    ParamTensor t[PARAM_COUNT];
    size_t n_params = model_param_layout(&c, t) + 16 * 2 * 2;
    size_t size = 28 + n_params * 4;
    unsigned char *img = calloc(1, size);
    memcpy(img, hdr, 28);
    snprintf(path, sizeof path, "%s/model.bin", dir);
    assert_int_equal(test_write_file(path, img, size), 0);
    assert_int_equal(lm_open(&other, path, NULL, &err), -1);
    assert_string_equal(err.msg, "vocab mismatch: the model has 1000 tokens but the embedded "
                                 "tokenizer has 512; pass --tokenizer PATH");
    /* the same file cut short names itself */
    assert_int_equal(test_write_file(path, img, size - 4), 0);
    assert_int_equal(lm_open(&other, path, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "model.bin: file is "));
    assert_non_null(strstr(err.msg, ": truncated"));
    free(img);
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logits_after_bos),
        cmocka_unit_test(test_greedy_from_bos),
        cmocka_unit_test(test_teacher_forced_nll),
        cmocka_unit_test(test_score_text),
        cmocka_unit_test(test_batch_equals_single_and_threads),
        cmocka_unit_test(test_kv_cache_matches_full_forward),
        cmocka_unit_test(test_branches_match_full_forward),
        cmocka_unit_test(test_forward_cached_matches_per_sequence),
        cmocka_unit_test(test_sampling_is_seeded),
        cmocka_unit_test(test_versions_1_and_2_load),
        cmocka_unit_test(test_bad_checkpoints),
        cmocka_unit_test(test_bad_checkpoint_file_and_vocab),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
