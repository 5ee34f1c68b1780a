/* test_families.c — the model families of hf_config (Llama 3.x rope scaling and tied
 * embeddings, Mistral's sliding window, Qwen2's biases, Qwen3's q/k norms and head_dim, Gemma,
 * Gemma 2) against the float64 PyTorch reference of tests/fixtures/make_families_fixture.py,
 * on the tiny random folders it wrote: per-position log-probs within 1e-4 and the same top-5
 * ids from a plain forward, from token-by-token generation through a KV cache, from batched
 * decoding (model_forward_cached) and from a shared prefix with branches; LoRA gradients and
 * (Qwen2, Qwen3, Gemma 2) every base weight's gradient equal PyTorch autograd; each folder survives
 * hf_model_save + load; unimplemented options of the families are refused by key and value. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "formats/hf_config.h"
#include "formats/hf_model.h"
#include "model/backward.h"
#include "model/lora.h"
#include "model/model.h"
#include "util/threads.h"

#define FIXTURE_DIR CUTKIT_SOURCE_DIR "/tests/fixtures"

static const char *FAMILIES[] = {"llama3", "llama_linear", "mistral", "qwen2",
                                 "qwen3",  "qwen3_bf16",   "gemma",   "gemma2"};
enum { N_FAMILIES = sizeof FAMILIES / sizeof FAMILIES[0], T = 12, MAX_V = 64 };

static TestFixture fixture;

static int setup(void **state) {
    (void)state;
    fixture = test_fixture_open(FIXTURE_DIR "/families_fixture.bin");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    free(fixture.data);
    threads_set(0);
    return 0;
}

static void load_family(const char *name, Model *m, HfConfig *cfg) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/families/%s", FIXTURE_DIR, name);
    CkError err = {{0}};
    if (hf_model_load(m, cfg, dir, &err) != 0) fail_msg("%s: %s", name, err.msg);
}

/* The reference of one family: tokens, log-softmax rows (T, V) and top-5 ids (T, 5). */
typedef struct {
    int tokens[T];
    double *logp;
    int top5[T * 5];
    int V;
} Reference;

static Reference reference_of(const char *name, int V) {
    Reference r = {.V = V};
    char key[128];
    snprintf(key, sizeof key, "%s.tokens", name);
    test_fixture_read(&fixture, key, 'i', r.tokens, T);
    snprintf(key, sizeof key, "%s.top5", name);
    test_fixture_read(&fixture, key, 'i', r.top5, T * 5);
    r.logp = malloc(sizeof(double) * T * V);
    snprintf(key, sizeof key, "%s.logprobs", name);
    test_fixture_read(&fixture, key, 'd', r.logp, (size_t)T * V);
    return r;
}

/* Compares row `row` of a's last forward with reference position pos: every log-prob within
 * 1e-4, the same top-5 ids; returns the largest difference. */
static double check_row(const Model *m, const Activations *a, int row, const Reference *r, int pos,
                        const char *what) {
    const int V = r->V;
    float logits[MAX_V];
    model_logits_row(m, a, row, logits, NULL);
    double maxv = logits[0], sum = 0.0, worst = 0.0;
    for (int j = 1; j < V; j++) maxv = fmax(maxv, logits[j]);
    for (int j = 0; j < V; j++) sum += exp((double)logits[j] - maxv);
    double lp[MAX_V];
    for (int j = 0; j < V; j++) {
        lp[j] = (double)logits[j] - maxv - log(sum);
        worst = fmax(worst, fabs(lp[j] - r->logp[(size_t)pos * V + j]));
    }
    if (worst > 1e-4) fail_msg("%s position %d: log-prob off by %.3g", what, pos, worst);
    for (int k = 0; k < 5; k++) {
        /* the k-th largest of ours is the reference's k-th id */
        const int id = r->top5[pos * 5 + k];
        int above = 0;
        for (int j = 0; j < V; j++) above += lp[j] > lp[id];
        if (above != k)
            fail_msg("%s position %d: top-5 id %d ranks %d, not %d", what, pos, id, above, k);
    }
    return worst;
}

/* A plain forward, token-by-token generation through a KV cache, batched decoding of the
 * sequence beside a second copy of its start, and branches over a cached prefix, on 1 and 2
 * threads: every row as the reference. */
static void test_forward_and_cache(void **state) {
    (void)state;
    for (int run = 0; run < 2 * N_FAMILIES; run++) {
        const int f = run % N_FAMILIES, threads = 1 + run / N_FAMILIES;
        threads_set(threads);
        Model m;
        HfConfig cfg;
        load_family(FAMILIES[f], &m, &cfg);
        Reference r = reference_of(FAMILIES[f], m.config.vocab_size);
        CkError err = {{0}};
        Activations a;
        assert_int_equal(activations_init(&a, &m, 2 * T, T, 0, &err), 0);
        double worst = 0.0;
        int off[3] = {0, T, 0};
        TokenBatch b = {1, off, r.tokens};
        assert_int_equal(model_forward(&m, &a, &b, NULL, NULL, &err), 0);
        for (int i = 0; i < T; i++) worst = fmax(worst, check_row(&m, &a, i, &r, i, "forward"));
        /* generation: prefill 3, then one token at a time (past the sliding windows of 4) */
        KVCache cache;
        assert_int_equal(kvcache_init(&cache, &m, T, &err), 0);
        off[1] = 3;
        assert_int_equal(model_forward(&m, &a, &b, &cache, NULL, &err), 0);
        for (int i = 3; i < T; i++) {
            off[1] = 1;
            TokenBatch one = {1, off, r.tokens + i};
            assert_int_equal(model_forward(&m, &a, &one, &cache, NULL, &err), 0);
            worst = fmax(worst, check_row(&m, &a, 0, &r, i, "KV cache"));
        }
        /* batched decoding: the sequence and a second one that restarts it, different lengths */
        KVCache c2[2];
        KVCache *ptrs[2] = {&c2[0], &c2[1]};
        for (int s = 0; s < 2; s++) assert_int_equal(kvcache_init(&c2[s], &m, T, &err), 0);
        int packed[2 * T], poff[3] = {0, 5, 7};
        memcpy(packed, r.tokens, sizeof(int) * 5);
        memcpy(packed + 5, r.tokens, sizeof(int) * 2);
        TokenBatch pb = {2, poff, packed};
        assert_int_equal(model_forward_cached(&m, &a, &pb, ptrs, NULL, &err), 0);
        for (int i = 0; i < 5; i++) worst = fmax(worst, check_row(&m, &a, i, &r, i, "cached"));
        for (int step = 0; step < 5; step++) {
            int two[2] = {r.tokens[5 + step], r.tokens[2 + step]}, toff[3] = {0, 1, 2};
            TokenBatch tb = {2, toff, two};
            assert_int_equal(model_forward_cached(&m, &a, &tb, ptrs, NULL, &err), 0);
            worst = fmax(worst, check_row(&m, &a, 0, &r, 5 + step, "cached decode"));
            worst = fmax(worst, check_row(&m, &a, 1, &r, 2 + step, "cached decode"));
        }
        /* a prefix of 4 in the cache, then two branches continuing it: tokens 4.. and 4..7 */
        int br[2 * T], boff[3] = {0, T - 4, T - 4 + 3};
        memcpy(br, r.tokens + 4, sizeof(int) * (T - 4));
        memcpy(br + T - 4, r.tokens + 4, sizeof(int) * 3);
        TokenBatch bb = {2, boff, br};
        assert_int_equal(model_forward_branches(&m, &a, &cache, 4, &bb, NULL, &err), 0);
        for (int i = 0; i < T - 4; i++)
            worst = fmax(worst, check_row(&m, &a, i, &r, 4 + i, "branches"));
        for (int i = 0; i < 3; i++)
            worst = fmax(worst, check_row(&m, &a, T - 4 + i, &r, 4 + i, "branches"));
        printf("%-12s %d thread%s: forward, KV cache, batched decoding, branches: max |log p "
               "diff| %.2e\n",
               FAMILIES[f], threads, threads > 1 ? "s" : "", worst);
        for (int s = 0; s < 2; s++) kvcache_free(&c2[s]);
        kvcache_free(&cache);
        activations_free(&a);
        free(r.logp);
        model_free(&m);
    }
    threads_set(0);
}

/* LoRA on all seven modules with the fixture's A and B: the loss and every gradient equal
 * PyTorch autograd's (relative to the largest entry of each tensor, 1e-4). */
static void test_lora_gradients(void **state) {
    (void)state;
    for (int f = 0; f < N_FAMILIES; f++) {
        char key[160];
        snprintf(key, sizeof key, "%s.lora_loss", FAMILIES[f]);
        char type;
        size_t count;
        if (!test_fixture_lookup(&fixture, key, &type, &count)) continue;
        double want_loss;
        test_fixture_read(&fixture, key, 'd', &want_loss, 1);
        Model m;
        HfConfig cfg;
        load_family(FAMILIES[f], &m, &cfg);
        Reference r = reference_of(FAMILIES[f], m.config.vocab_size);
        CkError err = {{0}};
        LoraAdapters ad;
        LoraConfig lc = {2, 4.0f, 0.0f, LORA_TARGET_ALL};
        assert_int_equal(lora_init(&ad, &m, &lc, 1, &err), 0);
        for (int l = 0; l < m.config.n_layers; l++)
            for (int mod = 0; mod < LORA_MODULES; mod++) {
                const char *mn = lora_module_name((LoraModule)mod);
                const LoraTensor *ta = NULL, *tb = NULL;
                for (int t = 0; t < ad.n_tensors; t++)
                    if (ad.tensors[t].layer == l && (int)ad.tensors[t].module == mod)
                        *(ad.tensors[t].is_b ? &tb : &ta) = &ad.tensors[t];
                snprintf(key, sizeof key, "%s.lora.%d.%s.A", FAMILIES[f], l, mn);
                test_fixture_read(&fixture, key, 'f', ad.params + ta->offset, ta->size);
                snprintf(key, sizeof key, "%s.lora.%d.%s.B", FAMILIES[f], l, mn);
                test_fixture_read(&fixture, key, 'f', ad.params + tb->offset, tb->size);
            }
        Activations a;
        assert_int_equal(activations_init(&a, &m, T, T, 1, &err), 0);
        int off[2] = {0, T}, targets[T];
        for (int i = 0; i < T; i++) targets[i] = i + 1 < T ? r.tokens[i + 1] : -1;
        TokenBatch b = {1, off, r.tokens};
        LossSpec loss = {.targets = targets};
        LossResult res;
        float *grads = calloc(ad.n_params, sizeof(float));
        assert_int_equal(model_forward_backward(&m, &a, &b, &loss, NULL, &ad, grads, &res, &err),
                         0);
        assert_close(res.loss, want_loss, 1e-4 * fmax(1.0, fabs(want_loss)));
        double worst = 0.0;
        for (int t = 0; t < ad.n_tensors; t++) {
            const LoraTensor *lt = &ad.tensors[t];
            snprintf(key, sizeof key, "%s.lora.%d.%s.d%c", FAMILIES[f], lt->layer,
                     lora_module_name(lt->module), lt->is_b ? 'B' : 'A');
            double *want = malloc(sizeof(double) * lt->size);
            test_fixture_read(&fixture, key, 'd', want, lt->size);
            double scale = 1e-3, diff = 0.0;
            for (size_t j = 0; j < lt->size; j++) scale = fmax(scale, fabs(want[j]));
            for (size_t j = 0; j < lt->size; j++)
                diff = fmax(diff, fabs(grads[lt->offset + j] - want[j]));
            if (diff / scale > 1e-4)
                fail_msg("%s: %s off by %.3g of %.3g", FAMILIES[f], key, diff, scale);
            worst = fmax(worst, diff / scale);
            free(want);
        }
        printf("%-12s LoRA loss %.6f (PyTorch %.6f), gradients: max relative diff %.2e\n",
               FAMILIES[f], res.loss, want_loss, worst);
        free(grads);
        activations_free(&a);
        lora_free(&ad);
        free(r.logp);
        model_free(&m);
    }
}

/* Full fine-tuning: the gradient of every base weight (biases, head norms, Gemma 2's four
 * norms and scaled, tied embedding included) equals PyTorch autograd's, relative to the
 * largest entry of each tensor, within 1e-4. */
static void test_base_gradients(void **state) {
    (void)state;
    for (int f = 0; f < N_FAMILIES; f++) {
        char key[200];
        snprintf(key, sizeof key, "%s.grad.model.norm.weight", FAMILIES[f]);
        char type;
        size_t count;
        if (!test_fixture_lookup(&fixture, key, &type, &count)) continue;
        Model m;
        HfConfig cfg;
        load_family(FAMILIES[f], &m, &cfg);
        Reference r = reference_of(FAMILIES[f], m.config.vocab_size);
        CkError err = {{0}};
        Activations a;
        assert_int_equal(activations_init(&a, &m, T, T, 1, &err), 0);
        int off[2] = {0, T}, targets[T];
        for (int i = 0; i < T; i++) targets[i] = i + 1 < T ? r.tokens[i + 1] : -1;
        TokenBatch b = {1, off, r.tokens};
        LossSpec loss = {.targets = targets};
        float *grads = calloc(m.n_params, sizeof(float));
        assert_int_equal(model_forward_backward(&m, &a, &b, &loss, grads, NULL, NULL, NULL, &err),
                         0);
        double worst = 0.0;
        int checked = 0;
        for (int id = 0; id < PARAM_COUNT; id++) {
            const ParamTensor *t = &m.tensors[id];
            if (t->size == 0) continue;
            const int layers = t->per_layer ? m.config.n_layers : 1;
            const size_t per = t->size / (size_t)layers;
            for (int l = 0; l < layers; l++) {
                char name[128];
                hf_param_name_arch(&m.arch, (ParamId)id, l, name, sizeof name);
                snprintf(key, sizeof key, "%s.grad.%s", FAMILIES[f], name);
                float *want = malloc(sizeof(float) * per);
                test_fixture_read(&fixture, key, 'f', want, per);
                const float *got = grads + (model_param(&m, (ParamId)id, l) - m.params);
                double scale = 1e-3, diff = 0.0;
                for (size_t j = 0; j < per; j++) scale = fmax(scale, fabs(want[j]));
                for (size_t j = 0; j < per; j++) diff = fmax(diff, fabs(got[j] - want[j]));
                if (diff / scale > 1e-4)
                    fail_msg("%s: %s off by %.3g of %.3g", FAMILIES[f], key, diff, scale);
                worst = fmax(worst, diff / scale);
                checked++;
                free(want);
            }
        }
        printf("%-12s base gradients of %d tensors: max relative diff %.2e\n", FAMILIES[f], checked,
               worst);
        free(grads);
        activations_free(&a);
        free(r.logp);
        model_free(&m);
    }
}

/* hf_model_save writes each family back in its own architecture and names: the folder loads
 * again with the same options and the same outputs. */
static void test_save_round_trip(void **state) {
    (void)state;
    char *tmp = test_temp_dir();
    for (int f = 0; f < N_FAMILIES; f++) {
        Model m, m2;
        HfConfig cfg, cfg2;
        load_family(FAMILIES[f], &m, &cfg);
        CkError err = {{0}};
        char dir[600];
        snprintf(dir, sizeof dir, "%s/%s", tmp, FAMILIES[f]);
        if (hf_model_save(&m, &cfg, dir, ST_F32, NULL, &err) != 0) fail_msg("%s", err.msg);
        if (hf_model_load(&m2, &cfg2, dir, &err) != 0) fail_msg("%s", err.msg);
        assert_string_equal(cfg.architecture, cfg2.architecture);
        assert_memory_equal(&m.arch, &m2.arch, sizeof m.arch);
        assert_int_equal(m.n_params, m2.n_params);
        assert_memory_equal(m.params, m2.params, m.n_params * sizeof(float));
        model_free(&m);
        model_free(&m2);
    }
    test_remove_dir(tmp);
    free(tmp);
}

/* Parses a config made of the family's keys plus `extra` and expects msg (NULL: success). */
static void expect_config(const char *arch, const char *extra, const char *msg) {
    char text[2048];
    snprintf(text, sizeof text,
             "{\"architectures\": [\"%s\"], \"hidden_size\": 16, \"intermediate_size\": 24, "
             "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 48, "
             "\"max_position_embeddings\": 32%s}",
             arch, extra);
    HfConfig c;
    CkError err = {{0}};
    ModelArch opts;
    int rc = hf_config_parse_arch(&c, &opts, text, "config.json", &err);
    if (!msg) {
        if (rc != 0) fail_msg("%s %s: %s", arch, extra, err.msg);
        return;
    }
    if (rc != -1) fail_msg("%s %s: accepted; expected %s", arch, extra, msg);
    assert_string_equal(err.msg, msg);
}

/* Options of the families that cutkit does not implement are refused by key and value. */
static void test_refusals(void **state) {
    (void)state;
    expect_config("LlamaForCausalLM",
                  ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}",
                  "config.json: unsupported option \"rope_scaling.rope_type\": \"yarn\" (cutkit "
                  "implements default, linear and llama3)");
    expect_config("Qwen2ForCausalLM", ", \"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2}",
                  "config.json: unsupported option \"rope_scaling.type\": \"dynamic\" (cutkit "
                  "implements default, linear and llama3)");
    expect_config("LlamaForCausalLM", ", \"hidden_act\": \"relu\"",
                  "config.json: unsupported option \"hidden_act\": \"relu\" (cutkit implements "
                  "silu, gelu, gelu_pytorch_tanh and gelu_new)");
    expect_config("GemmaForCausalLM", ", \"hidden_activation\": \"gelu_fast\"",
                  "config.json: unsupported option \"hidden_activation\": \"gelu_fast\" (cutkit "
                  "implements silu, gelu, gelu_pytorch_tanh and gelu_new)");
    expect_config("Qwen2ForCausalLM", ", \"use_sliding_window\": true",
                  "config.json: unsupported option \"use_sliding_window\" (Qwen's sliding window "
                  "over max_window_layers is not implemented)");
    expect_config("Qwen3ForCausalLM", ", \"attention_bias\": true",
                  "config.json: unsupported option \"attention_bias\" (a bias on o_proj is not "
                  "implemented)");
    expect_config("LlamaForCausalLM", ", \"sliding_window\": 8",
                  "config.json: unsupported option \"sliding_window\": 8 (a window shorter than "
                  "max_position_embeddings is not implemented for LlamaForCausalLM)");
    expect_config("LlamaForCausalLM", ", \"partial_rotary_factor\": 0.5",
                  "config.json: unsupported option \"partial_rotary_factor\": 0.5 (only 1 is "
                  "implemented)");
    expect_config("Gemma2ForCausalLM",
                  ", \"sliding_window\": 8, \"layer_types\": [\"full_attention\", "
                  "\"full_attention\"]",
                  "config.json: unsupported option \"layer_types[0]\": \"full_attention\" (cutkit "
                  "implements \"sliding_attention\" there for this family)");
    expect_config("Gemma3ForCausalLM", "",
                  "config.json: unsupported architecture \"Gemma3ForCausalLM\" (cutkit reads "
                  "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, "
                  "GemmaForCausalLM and Gemma2ForCausalLM)");
    /* what is accepted: the defaults transformers' config classes fill in */
    HfConfig c;
    ModelArch arch;
    CkError err = {{0}};
    expect_config("MistralForCausalLM", ", \"sliding_window\": null", NULL);
    const char *mistral = "{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 16, "
                          "\"intermediate_size\": 24, \"num_hidden_layers\": 2, "
                          "\"num_attention_heads\": 4, \"vocab_size\": 48, "
                          "\"max_position_embeddings\": 32768}";
    assert_int_equal(hf_config_parse_arch(&c, &arch, mistral, "m", &err), 0);
    assert_int_equal(arch.sliding_window, 4096); /* MistralConfig's default */
    /* the Llama-only entry point refuses what it would run as a Llama */
    assert_int_equal(hf_config_parse(&c, mistral, "m", &err), -1);
    assert_string_equal(err.msg, "m: this MistralForCausalLM uses options beyond the Llama-2 "
                                 "shape, which only a folder loaded as a whole (hf_model_load) "
                                 "runs");
    const char *gemma2 = "{\"architectures\": [\"Gemma2ForCausalLM\"], \"hidden_size\": 16, "
                         "\"intermediate_size\": 24, \"num_hidden_layers\": 2, "
                         "\"num_attention_heads\": 4, \"head_dim\": 8, \"vocab_size\": 48, "
                         "\"max_position_embeddings\": 8192, \"final_logit_softcapping\": null}";
    assert_int_equal(hf_config_parse_arch(&c, &arch, gemma2, "m", &err), 0);
    assert_int_equal(c.model.shared_classifier, 1);
    assert_float_equal(arch.attn_softcap, 50.0f, 0);
    assert_float_equal(arch.final_softcap, 0.0f, 0);
    assert_float_equal(arch.attn_scale, 1.0f / 16.0f, 1e-9);
    assert_int_equal(arch.sliding_window, 4096);
    assert_int_equal(arch.act, ACT_GELU_TANH);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_and_cache), cmocka_unit_test(test_lora_gradients),
        cmocka_unit_test(test_base_gradients),    cmocka_unit_test(test_save_round_trip),
        cmocka_unit_test(test_refusals),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
