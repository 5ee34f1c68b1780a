/* test_stored_weights.c — models held as stored (hf_model_load_held): every family's tiny
 * folder held as bf16 scores like the fp32 path on the bf16-rounded weights (qwen3_bf16, stored
 * in BF16, is used in place in the mapping); an int8 (Q8) base stays close to fp32 with the same
 * top-1 on most positions; a LoRA gradient on a bf16 base equals the fp32 path on the rounded
 * weights; paths that need fp32 weights refuse a held model before doing anything. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "formats/hf_config.h"
#include "formats/hf_model.h"
#include "formats/lm.h"
#include "model/backward.h"
#include "model/lora.h"
#include "model/model.h"
#include "model/weight.h"

#define FAMILY_DIR CUTKIT_SOURCE_DIR "/tests/fixtures/families"

static const char *FAMILIES[] = {"llama3", "llama_linear", "mistral", "qwen2",
                                 "qwen3",  "qwen3_bf16",   "gemma",   "gemma2"};
enum { N_FAMILIES = sizeof FAMILIES / sizeof FAMILIES[0], T = 12 };

static void load(const char *dir, WeightDtype held, Model *m) {
    HfConfig cfg;
    CkError err = {{0}};
    if (hf_model_load_held(m, &cfg, dir, held, &err) != 0) fail_msg("%s: %s", dir, err.msg);
}

/* Rounds every matrix of an fp32 model to bf16 in place: what a bf16-held model multiplies. */
static void round_matrices_bf16(Model *m) {
    for (int id = 0; id < PARAM_COUNT; id++)
        if (model_param_is_matrix((ParamId)id) && m->tensors[id].size > 0)
            weight_round_bf16_n(model_param(m, (ParamId)id, 0), m->tensors[id].size);
}

/* The same for IEEE half. */
static void round_matrices_f16(Model *m) {
    for (int id = 0; id < PARAM_COUNT; id++) {
        if (!model_param_is_matrix((ParamId)id) || m->tensors[id].size == 0) continue;
        float *w = model_param(m, (ParamId)id, 0);
        for (size_t i = 0; i < m->tensors[id].size; i++)
            w[i] = weight_f16_to_f32(weight_f32_to_f16(w[i]));
    }
}

/* Next-token log-probs (T - 1 of them) of tokens under m. */
static void score(const Model *m, const int *tokens, double *lp) {
    Activations a;
    CkError err = {{0}};
    assert_int_equal(activations_init(&a, m, T, T, 0, &err), 0);
    int off[2] = {0, T}, targets[T];
    for (int i = 0; i < T; i++) targets[i] = i + 1 < T ? tokens[i + 1] : -1;
    TokenBatch b = {1, off, tokens};
    if (model_score(m, &a, &b, targets, lp, &err) != 0) fail_msg("%s", err.msg);
    activations_free(&a);
}

static void tokens_for(int V, int seed, int *tokens) {
    for (int i = 0; i < T; i++) tokens[i] = (seed * 7 + i * 13 + i * i) % V;
}

/* Decodes tokens one at a time through a KV cache (generation's path: one-row products,
 * model_logits_rows) and returns the largest difference of each next-token log-prob from lp. */
static double cached_diff(const Model *m, const int *tokens, const double *lp) {
    const int V = m->config.vocab_size;
    KVCache cache;
    Activations a;
    CkError err = {{0}};
    assert_int_equal(kvcache_init(&cache, m, T, &err), 0);
    assert_int_equal(activations_init(&a, m, 1, T, 0, &err), 0);
    float *z = malloc(sizeof(float) * V);
    double worst = 0.0;
    for (int i = 0; i + 1 < T; i++) {
        int off[2] = {0, 1};
        TokenBatch b = {1, off, tokens + i};
        assert_int_equal(model_forward(m, &a, &b, &cache, NULL, &err), 0);
        model_logits_rows(m, a.xn_final, 1, z, NULL);
        double maxv = z[0], sum = 0.0;
        for (int j = 1; j < V; j++) maxv = fmax(maxv, z[j]);
        for (int j = 0; j < V; j++) sum += exp(z[j] - maxv);
        worst = fmax(worst, fabs(z[tokens[i + 1]] - maxv - log(sum) - lp[i]));
    }
    free(z);
    activations_free(&a);
    kvcache_free(&cache);
    return worst;
}

/* bf16-held vs fp32 on the rounded weights. Both multiply the same fp32 values (bf16 widens
 * exactly); only the order of the products' fp32 sums may differ (the held path widens a
 * block of rows, or runs a gemv on the stored bytes), hence 1e-5 rather than 0. */
static void test_bf16_families(void **state) {
    (void)state;
    for (int f = 0; f < N_FAMILIES; f++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", FAMILY_DIR, FAMILIES[f]);
        Model ref, held;
        load(dir, WEIGHT_F32, &ref);
        round_matrices_bf16(&ref);
        load(dir, WEIGHT_BF16, &held);
        assert_null(model_param(&held, PARAM_WQ, 0));
        assert_non_null(model_param(&held, PARAM_RMS_ATT, 0));
        if (!strcmp(FAMILIES[f], "qwen3_bf16")) {
            /* stored as BF16: used in place in the mapped file, nothing converted */
            assert_null(held.weight_store);
            assert_non_null(held.weight_owner);
        }
        int tokens[T];
        double lp_ref[T], lp_held[T], worst = 0.0;
        tokens_for(ref.config.vocab_size, f, tokens);
        score(&ref, tokens, lp_ref);
        score(&held, tokens, lp_held);
        for (int i = 0; i + 1 < T; i++) worst = fmax(worst, fabs(lp_ref[i] - lp_held[i]));
        const double cached = cached_diff(&held, tokens, lp_ref);
        printf("%-12s bf16 held vs fp32 on rounded weights: max |dlogp| %.2e (KV cache %.2e)\n",
               FAMILIES[f], worst, cached);
        if (worst > 1e-5 || cached > 1e-5)
            fail_msg("%s: bf16-held log-probs off by %.3g (cached %.3g)", FAMILIES[f], worst,
                     cached);
        model_free(&ref);
        model_free(&held);
    }
}

/* f16-held (converted at load from F32 and from BF16 files) vs fp32 on the f16-rounded weights:
 * the same argument as bf16, the same 1e-5. */
static void test_f16(void **state) {
    (void)state;
    const char *names[] = {"qwen2", "qwen3_bf16", "gemma2"};
    for (int f = 0; f < 3; f++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", FAMILY_DIR, names[f]);
        Model ref, held;
        load(dir, WEIGHT_F32, &ref);
        round_matrices_f16(&ref);
        load(dir, WEIGHT_F16, &held);
        assert_int_equal(model_weight(&held, PARAM_WK, 1).dtype, WEIGHT_F16);
        int tokens[T];
        double lp_ref[T], lp_held[T], worst = 0.0;
        tokens_for(ref.config.vocab_size, f + 5, tokens);
        score(&ref, tokens, lp_ref);
        score(&held, tokens, lp_held);
        for (int i = 0; i + 1 < T; i++) worst = fmax(worst, fabs(lp_ref[i] - lp_held[i]));
        printf("%-12s f16 held vs fp32 on rounded weights: max |dlogp| %.2e\n", names[f], worst);
        if (worst > 1e-5) fail_msg("%s: f16-held log-probs off by %.3g", names[f], worst);
        model_free(&ref);
        model_free(&held);
    }
}

/* Writes a random Llama-shaped model whose widths allow Q8 groups of 64 into dir (BF16). */
static void write_q8_model(const char *dir) {
    ModelConfig c = {.dim = 64,
                     .hidden_dim = 128,
                     .n_layers = 2,
                     .n_heads = 4,
                     .n_kv_heads = 2,
                     .vocab_size = 96,
                     .seq_len = 32,
                     .norm_eps = 1e-5f,
                     .rope_theta = 10000.0f,
                     .rope_style = ROPE_HALF_SPLIT};
    Model m;
    CkError err = {{0}};
    assert_int_equal(model_init(&m, &c, &err), 0);
    unsigned long long s = 12345;
    for (size_t i = 0; i < m.n_params; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        m.params[i] = ((float)((s >> 33) % 20001) / 10000.0f - 1.0f) * 0.15f;
    }
    for (int id = 0; id < PARAM_COUNT; id++)
        if (!model_param_is_matrix((ParamId)id))
            for (size_t i = 0; i < m.tensors[id].size; i++)
                m.params[m.tensors[id].offset + i] =
                    1.0f + 0.1f * m.params[m.tensors[id].offset + i];
    HfConfig cfg = {.model = c, .bos_token_id = -1, .eos_token_id = -1};
    snprintf(cfg.architecture, sizeof cfg.architecture, "LlamaForCausalLM");
    if (hf_model_save(&m, &cfg, dir, ST_BF16, NULL, &err) != 0) fail_msg("%s", err.msg);
    model_free(&m);
}

/* int8: per-group absmax with 127 levels puts each weight within scale/2 = absmax/254 of its
 * value; on this model (uniform weights, a harder case than trained ones) the log-probs move by
 * at most 2.1e-2 and top-1 agrees on 47 of 48 positions (measured, printed), so 0.05 and 80%
 * bound them with room. */
static void test_q8(void **state) {
    (void)state;
    char *tmp = test_temp_dir();
    char dir[512];
    snprintf(dir, sizeof dir, "%s/q8", tmp);
    write_q8_model(dir);
    Model ref, held;
    load(dir, WEIGHT_F32, &ref);
    load(dir, WEIGHT_Q8, &held);
    assert_int_equal(model_weight(&held, PARAM_W2, 1).dtype, WEIGHT_Q8);
    assert_int_equal(model_weight(&held, PARAM_W2, 1).group, 64);
    const int V = ref.config.vocab_size;
    double worst = 0.0;
    int same = 0, total = 0;
    Activations a, b;
    CkError err = {{0}};
    assert_int_equal(activations_init(&a, &ref, T, T, 0, &err), 0);
    assert_int_equal(activations_init(&b, &held, T, T, 0, &err), 0);
    float *la = malloc(sizeof(float) * V), *lb = malloc(sizeof(float) * V);
    for (int seq = 0; seq < 4; seq++) {
        int tokens[T], off[2] = {0, T};
        tokens_for(V, seq + 3, tokens);
        double lp_ref[T], lp_held[T];
        score(&ref, tokens, lp_ref);
        score(&held, tokens, lp_held);
        for (int i = 0; i + 1 < T; i++) worst = fmax(worst, fabs(lp_ref[i] - lp_held[i]));
        TokenBatch tb = {1, off, tokens};
        assert_int_equal(model_forward(&ref, &a, &tb, NULL, NULL, &err), 0);
        assert_int_equal(model_forward(&held, &b, &tb, NULL, NULL, &err), 0);
        for (int i = 0; i < T; i++) {
            model_logits_row(&ref, &a, i, la, NULL);
            model_logits_row(&held, &b, i, lb, NULL);
            int ta = 0, tb2 = 0;
            for (int j = 1; j < V; j++) {
                if (la[j] > la[ta]) ta = j;
                if (lb[j] > lb[tb2]) tb2 = j;
            }
            same += ta == tb2;
            total++;
        }
    }
    printf("int8 held vs fp32: max |dlogp| %.2e, top-1 agrees on %d of %d positions\n", worst, same,
           total);
    assert_true(worst < 0.05);
    assert_true(same * 10 >= total * 8);
    free(la);
    free(lb);
    activations_free(&a);
    activations_free(&b);
    model_free(&ref);
    model_free(&held);
    test_remove_dir(tmp);
    free(tmp);
}

/* Adapter gradients of the CE loss with random A and B (so both get gradients). */
static void lora_grads_of(const Model *m, const int *tokens, LoraAdapters *ad, float *grads) {
    Activations a;
    CkError err = {{0}};
    assert_int_equal(activations_init(&a, m, T, T, 1, &err), 0);
    int off[2] = {0, T}, targets[T];
    for (int i = 0; i < T; i++) targets[i] = i + 1 < T ? tokens[i + 1] : -1;
    TokenBatch b = {1, off, tokens};
    LossSpec loss = {.targets = targets};
    LossResult res;
    memset(grads, 0, sizeof(float) * ad->n_params);
    if (model_forward_backward(m, &a, &b, &loss, NULL, ad, grads, &res, &err) != 0)
        fail_msg("%s", err.msg);
    activations_free(&a);
}

/* LoRA on a frozen bf16 base (qwen2: biases; qwen3_bf16: q/k norms, mapped in place): the
 * adapters' gradients equal the fp32 path on the rounded weights within 1e-5 relative. */
static void test_lora_bf16_base(void **state) {
    (void)state;
    const char *names[] = {"qwen2", "qwen3_bf16", "gemma2"};
    for (int f = 0; f < 3; f++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", FAMILY_DIR, names[f]);
        Model ref, held;
        load(dir, WEIGHT_F32, &ref);
        round_matrices_bf16(&ref);
        load(dir, WEIGHT_BF16, &held);
        LoraAdapters ad;
        LoraConfig lc = {2, 4.0f, 0.0f, LORA_TARGET_ALL};
        CkError err = {{0}};
        assert_int_equal(lora_init(&ad, &ref, &lc, 1, &err), 0);
        for (size_t i = 0; i < ad.n_params; i++)
            ad.params[i] = 0.05f * sinf((float)i * 0.37f + 1.0f);
        int tokens[T];
        tokens_for(ref.config.vocab_size, f + 1, tokens);
        float *g_ref = malloc(sizeof(float) * ad.n_params);
        float *g_held = malloc(sizeof(float) * ad.n_params);
        lora_grads_of(&ref, tokens, &ad, g_ref);
        lora_grads_of(&held, tokens, &ad, g_held);
        double scale = 1e-6, diff = 0.0;
        for (size_t i = 0; i < ad.n_params; i++) {
            scale = fmax(scale, fabs(g_ref[i]));
            diff = fmax(diff, fabs(g_ref[i] - g_held[i]));
        }
        printf("%-12s LoRA on a bf16 base: max relative gradient diff %.2e\n", names[f],
               diff / scale);
        if (diff / scale > 1e-5) fail_msg("%s: gradients off by %.3g", names[f], diff / scale);
        free(g_ref);
        free(g_held);
        lora_free(&ad);
        model_free(&ref);
        model_free(&held);
    }
}

static void assert_error_has(const CkError *err, const char *what) {
    if (!strstr(err->msg, what)) fail_msg("expected \"%s\" in: %s", what, err->msg);
}

/* Paths that need fp32 weights refuse a held model, saying which dtype and what to pass. */
static void test_refusals(void **state) {
    (void)state;
    Model held;
    load(FAMILY_DIR "/qwen2", WEIGHT_BF16, &held);
    CkError err = {{0}};
    Activations a;
    assert_int_equal(activations_init(&a, &held, T, T, 1, &err), 0);
    int tokens[T], off[2] = {0, T}, targets[T];
    tokens_for(held.config.vocab_size, 1, tokens);
    for (int i = 0; i < T; i++) targets[i] = i + 1 < T ? tokens[i + 1] : -1;
    TokenBatch b = {1, off, tokens};
    LossSpec loss = {.targets = targets};
    LossResult res;
    float *grads = calloc(held.n_params, sizeof(float));
    assert_int_equal(model_forward_backward(&held, &a, &b, &loss, grads, NULL, NULL, &res, &err),
                     -1);
    assert_error_has(&err, "the model is held as bf16; full fine-tuning needs --base-dtype f32");
    free(grads);
    activations_free(&a);
    LoraAdapters ad;
    LoraConfig lc = {2, 4.0f, 0.0f, LORA_TARGET_ALL};
    assert_int_equal(lora_init(&ad, &held, &lc, 1, &err), 0);
    assert_int_equal(lora_merge(&held, &ad, &err), -1);
    assert_error_has(&err, "held as bf16; merging adapters");
    lora_free(&ad);
    HfConfig cfg = {.model = held.config};
    assert_int_equal(hf_model_save(&held, &cfg, "/nonexistent/never", ST_F32, NULL, &err), -1);
    assert_error_has(&err, "held as bf16; saving the model needs --base-dtype f32");
    model_free(&held);

    /* int8 needs input widths that are multiples of 32: refused before reading a weight */
    Model m;
    HfConfig c2;
    assert_int_equal(hf_model_load_held(&m, &c2, FAMILY_DIR "/qwen3", WEIGHT_Q8, &err), -1);
    assert_error_has(&err, "not all multiples of 32");
    /* only Hugging Face folders are held as stored */
    LanguageModel lm;
    assert_int_equal(lm_open_held(&lm, NULL, NULL, WEIGHT_BF16, &err), -1);
    assert_error_has(&err, "--base-dtype bf16 needs a Hugging Face folder");
    WeightDtype d;
    assert_int_equal(lm_parse_base_dtype("int4", &d, &err), -1);
    assert_error_has(&err, "expected f32, bf16, f16 or int8, got \"int4\"");
    assert_int_equal(lm_parse_base_dtype("int8", &d, &err), 0);
    assert_int_equal(d, WEIGHT_Q8);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_families),
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_q8),
        cmocka_unit_test(test_lora_bf16_base),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
