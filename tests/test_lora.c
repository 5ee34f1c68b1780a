/* test_lora.c — LoRA adapter mechanics on the embedded stories260K: target-list parsing,
 * the PEFT tensor table and initialisation, B = 0 leaving the model unchanged, merging,
 * dropout only in training forwards, the KV cache with adapters, and refusals. Gradients of
 * the adapters are checked in test_backward.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "formats/lm.h"
#include "model/lora.h"
#include "model/model.h"
#include "util/rng.h"
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
    return 0;
}

static void random_tokens(int *tokens, int n, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < n; i++) tokens[i] = (int)(rng_next(&r) % 512);
}

static void randomize_b(LoraAdapters *ad, float range, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < ad->n_tensors; i++)
        if (ad->tensors[i].is_b)
            for (size_t j = 0; j < ad->tensors[i].size; j++)
                ad->params[ad->tensors[i].offset + j] = range * (2.0f * rng_float(&r) - 1.0f);
}

/* All logits (n, V) of a packed batch, with or without adapters (eval mode). */
static float *all_logits(const Model *m, const LoraAdapters *ad, const int *offsets, int n_seqs,
                         const int *tokens) {
    const int n = offsets[n_seqs], V = m->config.vocab_size;
    CkError err = {{0}};
    Activations a;
    assert_int_equal(activations_init(&a, m, n, 64, 0, &err), 0);
    TokenBatch b = {n_seqs, offsets, tokens};
    assert_int_equal(model_forward(m, &a, &b, NULL, ad, &err), 0);
    float *out = malloc(sizeof(float) * (size_t)n * V);
    for (int i = 0; i < n; i++) model_logits_row(m, &a, i, out + (size_t)i * V, NULL);
    activations_free(&a);
    return out;
}

static void test_parse_targets(void **state) {
    (void)state;
    unsigned mask;
    CkError err = {{0}};
    assert_int_equal(lora_parse_targets("q_proj,v_proj", &mask, &err), 0);
    assert_int_equal(mask, LORA_BIT(LORA_Q) | LORA_BIT(LORA_V));
    assert_int_equal(
        lora_parse_targets(" gate_proj , up_proj,down_proj ,o_proj,k_proj", &mask, &err), 0);
    assert_int_equal(mask, LORA_BIT(LORA_GATE) | LORA_BIT(LORA_UP) | LORA_BIT(LORA_DOWN) |
                               LORA_BIT(LORA_O) | LORA_BIT(LORA_K));
    assert_int_equal(lora_parse_targets("all", &mask, &err), 0);
    assert_int_equal(mask, LORA_TARGET_ALL);
    assert_int_equal(lora_parse_targets("q_proj,wq", &mask, &err), -1);
    assert_string_equal(err.msg, "unknown LoRA target module \"wq\" (known: q_proj, k_proj, "
                                 "v_proj, o_proj, gate_proj, up_proj, down_proj, all)");
    assert_int_equal(lora_parse_targets("q_proj,,v_proj", &mask, &err), -1);
    assert_string_equal(err.msg, "empty name in LoRA target list \"q_proj,,v_proj\"");
    assert_int_equal(lora_parse_targets("", &mask, &err), -1);
    assert_string_equal(err.msg, "empty name in LoRA target list \"\"");
    for (int i = 0; i < LORA_MODULES; i++) {
        assert_int_equal(lora_parse_targets(lora_module_name((LoraModule)i), &mask, &err), 0);
        assert_int_equal(mask, LORA_BIT(i));
    }
}

/* The table follows PEFT: names, shapes (A (r, in), B (out, r)), one contiguous buffer in
 * state-dict order; A uniform within ±1/sqrt(in) from the seed, B zero. */
static void test_layout_names_and_init(void **state) {
    (void)state;
    const Model *m = &lm.model; /* dim 64, hidden 172, 5 layers, kv dim 32 */
    LoraConfig c = {8, 16.0f, 0.05f, LORA_BIT(LORA_Q) | LORA_BIT(LORA_V) | LORA_BIT(LORA_DOWN)};
    LoraAdapters ad, same, other;
    CkError err = {{0}};
    assert_int_equal(lora_init(&ad, m, &c, 42, &err), 0);
    assert_int_equal(ad.n_targets, 3);
    assert_int_equal(ad.n_tensors, 5 * 3 * 2);
    assert_float_equal(ad.scale, 2.0, 0);
    assert_string_equal(ad.tensors[0].name,
                        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
    assert_string_equal(ad.tensors[3].name,
                        "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight");
    assert_string_equal(ad.tensors[5].name,
                        "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight");
    assert_string_equal(ad.tensors[29].name,
                        "base_model.model.model.layers.4.mlp.down_proj.lora_B.weight");
    const int shapes[6][2] = {{8, 64}, {64, 8}, {8, 64}, {32, 8}, {8, 172}, {64, 8}};
    size_t offset = 0;
    for (int i = 0; i < ad.n_tensors; i++) {
        const LoraTensor *t = &ad.tensors[i];
        assert_int_equal(t->rows, shapes[i % 6][0]);
        assert_int_equal(t->cols, shapes[i % 6][1]);
        assert_int_equal(t->offset, offset);
        assert_int_equal(t->layer, i / 6);
        offset += t->size;
        const float *p = ad.params + t->offset;
        double bound = 1.0 / sqrt((double)t->cols), maxabs = 0.0;
        for (size_t j = 0; j < t->size; j++) maxabs = fmax(maxabs, fabs(p[j]));
        if (t->is_b)
            assert_true(maxabs == 0.0);
        else
            assert_true(maxabs <= bound && maxabs > 0.8 * bound);
    }
    assert_int_equal(ad.n_params, offset);
    assert_ptr_equal(lora_find(&ad, ad.tensors[17].name), &ad.tensors[17]);
    assert_null(lora_find(&ad, "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"));
    assert_ptr_equal(lora_a(&ad, 2, LORA_V), ad.params + ad.tensors[14].offset);
    assert_ptr_equal(lora_b(&ad, 2, LORA_V), ad.params + ad.tensors[15].offset);
    assert_null(lora_a(&ad, 0, LORA_K));
    assert_int_equal(lora_init(&same, m, &c, 42, &err), 0);
    assert_int_equal(lora_init(&other, m, &c, 43, &err), 0);
    assert_memory_equal(ad.params, same.params, ad.n_params * sizeof(float));
    assert_memory_not_equal(ad.params, other.params, ad.n_params * sizeof(float));
    lora_free(&ad);
    lora_free(&same);
    lora_free(&other);
    lora_free(&ad); /* twice is harmless */
}

/* Freshly initialised adapters (B = 0) change nothing, bit for bit. */
static void test_zero_b_is_the_base_model(void **state) {
    (void)state;
    const Model *m = &lm.model;
    LoraConfig c = {4, 8.0f, 0.1f, LORA_TARGET_ALL};
    LoraAdapters ad;
    CkError err = {{0}};
    assert_int_equal(lora_init(&ad, m, &c, 7, &err), 0);
    int tokens[40], offsets[3] = {0, 25, 40};
    random_tokens(tokens, 40, 1);
    float *base = all_logits(m, NULL, offsets, 2, tokens);
    float *adapted = all_logits(m, &ad, offsets, 2, tokens);
    assert_memory_equal(base, adapted, sizeof(float) * 40 * 512);
    free(base);
    free(adapted);
    lora_free(&ad);
}

/* Merging scale · B A into the weights gives the unmerged adapters' logits to float
 * rounding; the adapters do change the logits. */
static void test_merge_matches_unmerged(void **state) {
    (void)state;
    LoraConfig c = {4, 8.0f, 0.0f, LORA_TARGET_ALL};
    LoraAdapters ad;
    CkError err = {{0}};
    assert_int_equal(lora_init(&ad, &lm.model, &c, 9, &err), 0);
    randomize_b(&ad, 0.05f, 10);
    int tokens[48], offsets[4] = {0, 17, 18, 48};
    random_tokens(tokens, 48, 2);
    float *base = all_logits(&lm.model, NULL, offsets, 3, tokens);
    float *adapted = all_logits(&lm.model, &ad, offsets, 3, tokens);
    Model merged;
    assert_int_equal(model_init(&merged, &lm.model.config, &err), 0);
    memcpy(merged.params, lm.model.params, lm.model.n_params * sizeof(float));
    assert_int_equal(lora_merge(&merged, &ad, &err), 0);
    float *after = all_logits(&merged, NULL, offsets, 3, tokens);
    double d_merge = 0.0, d_base = 0.0, scale = 0.0;
    for (int i = 0; i < 48 * 512; i++) {
        d_merge = fmax(d_merge, fabs(after[i] - adapted[i]));
        d_base = fmax(d_base, fabs(base[i] - adapted[i]));
        scale = fmax(scale, fabs(adapted[i]));
    }
    printf("merged vs unmerged: max |logit diff| %.3g (logits up to %.3g); adapters moved the "
           "logits by up to %.3g\n",
           d_merge, scale, d_base);
    assert_close(d_merge, 0, 1e-5 * fmax(1.0, scale));
    assert_true(d_base > 0.1);
    free(base);
    free(adapted);
    free(after);
    model_free(&merged);
    lora_free(&ad);
}

/* Dropout acts in training forwards only: eval forwards are deterministic and unaffected by
 * it; training forwards draw fresh masks (keeping ~1 - p of the inputs) from the adapters'
 * stream, and replaying the stream replays them. */
static void test_dropout_in_training_only(void **state) {
    (void)state;
    const Model *m = &lm.model;
    const float p = 0.4f;
    LoraConfig c = {4, 8.0f, p, LORA_BIT(LORA_Q) | LORA_BIT(LORA_DOWN)};
    LoraConfig c0 = c;
    c0.dropout = 0.0f;
    LoraAdapters ad, ad0;
    CkError err = {{0}};
    assert_int_equal(lora_init(&ad, m, &c, 11, &err), 0);
    assert_int_equal(lora_init(&ad0, m, &c0, 11, &err), 0);
    randomize_b(&ad, 0.05f, 12);
    randomize_b(&ad0, 0.05f, 12);
    int tokens[30], offsets[2] = {0, 30};
    random_tokens(tokens, 30, 3);
    float *eval_p = all_logits(m, &ad, offsets, 1, tokens);
    float *eval_0 = all_logits(m, &ad0, offsets, 1, tokens);
    assert_memory_equal(eval_p, eval_0, sizeof(float) * 30 * 512);

    Activations a;
    assert_int_equal(activations_init(&a, m, 30, 30, 1, &err), 0);
    TokenBatch b = {1, offsets, tokens};
    const size_t C = 64;
    Rng start = ad.dropout_rng;
    assert_int_equal(model_forward_train(m, &a, &b, &ad, &err), 0);
    float *first = malloc(sizeof(float) * 30 * C), *second = malloc(sizeof(float) * 30 * C);
    memcpy(first, a.xn_final, sizeof(float) * 30 * C);
    /* masks of layer 0's q_proj: the share kept */
    size_t kept = 0;
    for (size_t i = 0; i < 30 * C; i++) kept += a.lora_mask[i];
    double share = (double)kept / (30.0 * C);
    printf("dropout %.2f kept %.3f of q_proj inputs\n", (double)p, share);
    assert_close(share, 1.0 - p, 0.05);
    assert_int_equal(model_forward_train(m, &a, &b, &ad, &err), 0);
    memcpy(second, a.xn_final, sizeof(float) * 30 * C);
    assert_memory_not_equal(first, second, sizeof(float) * 30 * C);
    ad.dropout_rng = start;
    assert_int_equal(model_forward_train(m, &a, &b, &ad, &err), 0);
    assert_memory_equal(first, a.xn_final, sizeof(float) * 30 * C);
    free(first);
    free(second);
    free(eval_p);
    free(eval_0);
    activations_free(&a);
    lora_free(&ad);
    lora_free(&ad0);
}

/* Generation through the KV cache sees the adapters like a full forward does. */
static void test_kv_cache_with_adapters(void **state) {
    (void)state;
    const Model *m = &lm.model;
    LoraConfig c = {4, 8.0f, 0.0f, LORA_TARGET_ALL};
    LoraAdapters ad;
    CkError err = {{0}};
    assert_int_equal(lora_init(&ad, m, &c, 13, &err), 0);
    randomize_b(&ad, 0.05f, 14);
    int tokens[24], offsets[2] = {0, 24};
    random_tokens(tokens, 24, 4);
    float *full = all_logits(m, &ad, offsets, 1, tokens);
    KVCache cache;
    Activations a;
    assert_int_equal(kvcache_init(&cache, m, 24, &err), 0);
    assert_int_equal(activations_init(&a, m, 16, 24, 0, &err), 0);
    int off[2] = {0, 16};
    TokenBatch b = {1, off, tokens};
    assert_int_equal(model_forward(m, &a, &b, &cache, &ad, &err), 0);
    float logits[512];
    double d = 0.0;
    for (int i = 16; i < 24; i++) {
        off[1] = 1;
        b.tokens = tokens + i;
        assert_int_equal(model_forward(m, &a, &b, &cache, &ad, &err), 0);
        model_logits_row(m, &a, 0, logits, NULL);
        for (int j = 0; j < 512; j++) d = fmax(d, fabs(logits[j] - full[(size_t)i * 512 + j]));
    }
    printf("cached vs full forward with adapters: max |logit diff| %.3g\n", d);
    assert_close(d, 0, 1e-4);
    free(full);
    kvcache_free(&cache);
    activations_free(&a);
    lora_free(&ad);
}

static void test_refusals(void **state) {
    (void)state;
    LoraAdapters ad;
    CkError err = {{0}};
    LoraConfig c = {0, 8.0f, 0.0f, LORA_TARGET_ALL};
    assert_int_equal(lora_init(&ad, &lm.model, &c, 1, &err), -1);
    assert_string_equal(err.msg, "LoRA rank must be positive, got 0");
    c.rank = 4;
    c.dropout = 1.0f;
    assert_int_equal(lora_init(&ad, &lm.model, &c, 1, &err), -1);
    assert_string_equal(err.msg, "lora_dropout must be in [0, 1), got 1");
    c.dropout = 0.0f;
    c.target_mask = 0;
    assert_int_equal(lora_init(&ad, &lm.model, &c, 1, &err), -1);
    assert_string_equal(err.msg, "LoRA target mask 0x0 names no module or an unknown one");
    c.target_mask = LORA_TARGET_ALL;
    assert_int_equal(lora_init(&ad, &lm.model, &c, 1, &err), 0);
    /* adapters of one shape do not fit another model */
    ModelConfig other = lm.model.config;
    other.hidden_dim = 128;
    Model m2;
    assert_int_equal(model_init(&m2, &other, &err), 0);
    assert_int_equal(lora_merge(&m2, &ad, &err), -1);
    assert_string_equal(err.msg,
                        "LoRA adapters for (dim 64, hidden_dim 172, n_layers 5, kv_dim 32) do not "
                        "fit a model with dim 64, hidden_dim 128, n_layers 5");
    Activations a;
    assert_int_equal(activations_init(&a, &m2, 4, 4, 0, &err), 0);
    int tokens[4] = {1, 2, 3, 4}, offsets[2] = {0, 4};
    TokenBatch b = {1, offsets, tokens};
    assert_int_equal(model_forward(&m2, &a, &b, NULL, &ad, &err), -1);
    activations_free(&a);
    model_free(&m2);
    lora_free(&ad);
}

int main(void) {
    threads_set(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_targets),
        cmocka_unit_test(test_layout_names_and_init),
        cmocka_unit_test(test_zero_b_is_the_base_model),
        cmocka_unit_test(test_merge_matches_unmerged),
        cmocka_unit_test(test_dropout_in_training_only),
        cmocka_unit_test(test_kv_cache_with_adapters),
        cmocka_unit_test(test_refusals),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
