/* test_optim.c — AdamW against torch.optim.AdamW (tests/fixtures/adamw_fixture.bin: clipping,
 * a cosine schedule with warmup, a parameter group without decay), gradient-norm clipping on
 * known vectors, thread-count independence, decay segments, and non-finite gradients named
 * by tensor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "model/lora.h"
#include "model/model.h"
#include "train/optim.h"
#include "util/rng.h"
#include "train/schedule.h"
#include "util/threads.h"

/* ---- the fixture (format: tests/fixtures/make_adamw_fixture.py) --------------------------- */

static void test_adamw_matches_torch(void **state) {
    (void)state;
    TestFixture f = test_fixture_open(CUTKIT_SOURCE_DIR "/tests/fixtures/adamw_fixture.bin");
    double cfg[9];
    memcpy(cfg, test_fixture_get(&f, "config", 'd', 9), sizeof cfg);
    const int steps = (int)cfg[8];
    int offsets[4], sizes[4], decay[4];
    memcpy(offsets, test_fixture_get(&f, "offsets", 'i', 4), sizeof offsets);
    memcpy(sizes, test_fixture_get(&f, "sizes", 'i', 4), sizeof sizes);
    memcpy(decay, test_fixture_get(&f, "decay", 'i', 4), sizeof decay);
    const size_t n = (size_t)offsets[3] + (size_t)sizes[3];

    AdamWConfig c = {cfg[1], cfg[2], cfg[3], cfg[4]};
    AdamW opt;
    CkError err = {{0}};
    assert_int_equal(adamw_init(&opt, n, &c, &err), 0);
    for (int t = 0; t < 4; t++)
        assert_int_equal(
            adamw_set_decay(&opt, (size_t)offsets[t], (size_t)sizes[t], decay[t], &err), 0);
    Schedule sched = schedule_make(SCHED_COSINE, cfg[0], (int64_t)cfg[6], (int64_t)cfg[7]);
    assert_int_equal(schedule_validate(&sched, &err), 0);

    float *params = malloc(n * sizeof *params), *grads = malloc(n * sizeof *grads);
    float *expect = malloc(n * sizeof *expect);
    double lrs[16], norms[16];
    assert_true(steps <= 16);
    memcpy(params, test_fixture_get(&f, "params0", 'f', n), n * sizeof *params);
    memcpy(lrs, test_fixture_get(&f, "lr", 'd', (size_t)steps), (size_t)steps * sizeof *lrs);
    memcpy(norms, test_fixture_get(&f, "grad_norm", 'd', (size_t)steps),
           (size_t)steps * sizeof *norms);
    double worst = 0;
    for (int k = 1; k <= steps; k++) {
        char name[32];
        snprintf(name, sizeof name, "grad%d", k);
        memcpy(grads, test_fixture_get(&f, name, 'f', n), n * sizeof *grads);
        snprintf(name, sizeof name, "params%d", k);
        memcpy(expect, test_fixture_get(&f, name, 'f', n), n * sizeof *expect);

        /* the schedule gives the lr torch's LambdaLR gave, the first one 0 */
        const double lr = schedule_lr(&sched, opt.step);
        assert_close(lr, lrs[k - 1], 1e-15);
        if (k == 1) assert_true(lr == 0.0);
        const double norm = optim_clip_grad_norm(grads, n, cfg[5]);
        assert_close(norm, norms[k - 1], 1e-6 * norms[k - 1]);
        assert_int_equal(adamw_step(&opt, params, grads, lr, &err), 0);
        double diff = 0;
        for (size_t i = 0; i < n; i++) {
            const double d = fabs((double)params[i] - (double)expect[i]);
            if (d > diff) diff = d;
        }
        printf("  adamw step %d: lr %.6g, grad norm %.6g%s, max |cutkit - torch| = %.3g\n", k, lr,
               norm, norm > cfg[5] ? " (clipped)" : "", diff);
        if (diff > worst) worst = diff;
        assert_true(diff <= 1e-5);
    }
    printf("  adamw vs torch.optim.AdamW over %d steps: max difference %.3g\n", steps, worst);
    assert_int_equal(opt.step, steps);
    free(params);
    free(grads);
    free(expect);
    free(f.data);
    adamw_free(&opt);
}

/* The update of one float by hand, for the first step: m̂ = g, v̂ = g², so the step is
 * lr * g / (|g| + eps), after decoupled decay. */
static void test_adamw_first_step_by_hand(void **state) {
    (void)state;
    AdamWConfig c = adamw_config_default();
    AdamW opt;
    CkError err = {{0}};
    assert_int_equal(adamw_init(&opt, 3, &c, &err), 0);
    assert_int_equal(adamw_set_decay(&opt, 2, 1, 0, &err), 0);
    float p[3] = {1.0f, -2.0f, 1.0f};
    const float g[3] = {0.5f, -0.25f, 0.5f};
    assert_int_equal(adamw_step(&opt, p, g, 0.1, &err), 0);
    const double decayed = 1.0 * (1 - 0.1 * 0.01);
    assert_close(p[0], (decayed - 0.1 * 0.5 / (0.5 + 1e-8)), 1e-6);
    assert_close(p[1], (-2.0 * (1 - 0.1 * 0.01) + 0.1), 1e-6);
    assert_close(p[2], (1.0 - 0.1), 1e-6); /* no decay on the third */
    assert_close(opt.m[0], 0.05f, 1e-8f);
    assert_close(opt.v[0], 0.00025f, 1e-10f);
    /* lr 0 moves nothing but still advances the moments and the step count */
    float before[3];
    memcpy(before, p, sizeof p);
    assert_int_equal(adamw_step(&opt, p, g, 0.0, &err), 0);
    assert_memory_equal(before, p, sizeof p);
    assert_int_equal(opt.step, 2);
    assert_int_equal(adamw_step(&opt, p, g, -1.0, &err), -1);
    assert_string_equal(err.msg, "AdamW: the learning rate must be finite and >= 0, not -1");
    adamw_free(&opt);
    adamw_free(&opt); /* safe twice */
}

static void test_adamw_config_refusals(void **state) {
    (void)state;
    AdamW opt;
    CkError err = {{0}};
    AdamWConfig c = adamw_config_default();
    c.beta1 = 1.0;
    assert_int_equal(adamw_init(&opt, 4, &c, &err), -1);
    assert_string_equal(err.msg, "AdamW beta1 must lie in [0, 1), not 1");
    c = adamw_config_default();
    c.eps = 0;
    assert_int_equal(adamw_init(&opt, 4, &c, &err), -1);
    assert_string_equal(err.msg, "AdamW eps must be positive, not 0");
    c = adamw_config_default();
    c.weight_decay = -0.1;
    assert_int_equal(adamw_init(&opt, 4, &c, &err), -1);
    assert_string_equal(err.msg, "AdamW weight decay must be >= 0, not -0.1");
    c = adamw_config_default();
    assert_int_equal(adamw_init(&opt, 0, &c, &err), -1);
    assert_string_equal(err.msg, "AdamW: the parameter buffer is empty");
    adamw_free(&opt);
}

static void test_decay_segments(void **state) {
    (void)state;
    AdamW opt;
    CkError err = {{0}};
    AdamWConfig c = adamw_config_default();
    assert_int_equal(adamw_init(&opt, 100, &c, &err), 0);
    assert_int_equal(opt.n_segments, 1);
    assert_int_equal(adamw_set_decay(&opt, 10, 10, 0, &err), 0);
    assert_int_equal(adamw_set_decay(&opt, 50, 50, 0, &err), 0);
    assert_int_equal(opt.n_segments, 4);
    assert_int_equal(adamw_decays(&opt, 9), 1);
    assert_int_equal(adamw_decays(&opt, 10), 0);
    assert_int_equal(adamw_decays(&opt, 19), 0);
    assert_int_equal(adamw_decays(&opt, 20), 1);
    assert_int_equal(adamw_decays(&opt, 99), 0);
    /* re-enabling merges the table back to one segment */
    assert_int_equal(adamw_set_decay(&opt, 0, 100, 1, &err), 0);
    assert_int_equal(opt.n_segments, 1);
    assert_int_equal(adamw_set_decay(&opt, 90, 11, 0, &err), -1);
    assert_string_equal(err.msg, "AdamW: range [90, 90 + 11) lies outside the 100 parameters");
    adamw_free(&opt);

    /* the model helper excludes exactly the three norms (and the embedding when asked) */
    ModelConfig mc = {16, 24, 2, 4, 2, 32, 16, 1e-5f, 10000.0f, ROPE_INTERLEAVED, 0};
    Model m;
    assert_int_equal(model_init(&m, &mc, &err), 0);
    assert_int_equal(adamw_init(&opt, m.n_params, &c, &err), 0);
    assert_int_equal(adamw_exclude_norms(&opt, &m, 0, &err), 0);
    size_t excluded = 0;
    for (size_t i = 0; i < m.n_params; i++) excluded += !adamw_decays(&opt, i);
    assert_int_equal(excluded, 2 * 16 + 2 * 16 + 16);
    assert_int_equal(adamw_exclude_norms(&opt, &m, 1, &err), 0);
    excluded = 0;
    for (size_t i = 0; i < m.n_params; i++) excluded += !adamw_decays(&opt, i);
    assert_int_equal(excluded, 2 * 16 + 2 * 16 + 16 + 32 * 16);
    adamw_free(&opt);
    model_free(&m);
}

static void test_clip_grad_norm(void **state) {
    (void)state;
    float g[4] = {3.0f, 0.0f, -4.0f, 0.0f};
    assert_true(optim_grad_norm(g, 4) == 5.0);
    /* norm 5 > 1: scaled by 1 / (5 + 1e-6), as torch.nn.utils.clip_grad_norm_ */
    assert_true(optim_clip_grad_norm(g, 4, 1.0) == 5.0);
    const float coef = (float)(1.0 / (5.0 + 1e-6));
    assert_true(g[0] == 3.0f * coef && g[2] == -4.0f * coef && g[1] == 0.0f);
    assert_close(optim_grad_norm(g, 4), 1.0, 1e-6);
    /* below the limit: untouched */
    float h[2] = {0.3f, 0.4f};
    assert_close(optim_clip_grad_norm(h, 2, 1.0), 0.5, 1e-7);
    assert_true(h[0] == 0.3f && h[1] == 0.4f);
    /* exactly at the limit torch still scales by max / (max + 1e-6) < 1 */
    float e[2] = {0.6f, 0.8f};
    const double norm = optim_grad_norm(e, 2);
    optim_clip_grad_norm(e, 2, norm);
    assert_true(e[0] == 0.6f * (float)(norm / (norm + 1e-6)));
    /* a non-finite norm leaves the gradients for the finiteness check to name */
    float bad[3] = {1.0f, NAN, 2.0f};
    assert_true(isnan(optim_clip_grad_norm(bad, 3, 1.0)));
    assert_true(bad[0] == 1.0f && bad[2] == 2.0f);
    float inf[2] = {INFINITY, 2.0f};
    assert_true(isinf(optim_clip_grad_norm(inf, 2, 1.0)));
    assert_true(inf[1] == 2.0f);
}

/* The norm, the first non-finite index and a step are the same on one thread and on two. */
static void test_thread_count_independence(void **state) {
    (void)state;
    const size_t n = 300007;
    float *g = malloc(n * sizeof *g), *p1 = malloc(n * sizeof *p1), *p2 = malloc(n * sizeof *p2);
    Rng r;
    rng_seed(&r, 5);
    long double ref = 0;
    for (size_t i = 0; i < n; i++) {
        g[i] = (rng_float(&r) - 0.5f) * 1e-3f;
        p1[i] = p2[i] = rng_float(&r) - 0.5f;
        ref += (long double)g[i] * g[i];
    }
    threads_set(1);
    const double norm1 = optim_grad_norm(g, n);
    threads_set(2);
    const double norm2 = optim_grad_norm(g, n);
    assert_memory_equal(&norm1, &norm2, sizeof norm1);
    assert_close(norm1, (double)sqrtl(ref), 1e-12 * norm1);

    AdamW o1, o2;
    CkError err = {{0}};
    AdamWConfig c = adamw_config_default();
    assert_int_equal(adamw_init(&o1, n, &c, &err), 0);
    assert_int_equal(adamw_init(&o2, n, &c, &err), 0);
    threads_set(1);
    for (int k = 0; k < 3; k++) assert_int_equal(adamw_step(&o1, p1, g, 1e-3, &err), 0);
    threads_set(2);
    for (int k = 0; k < 3; k++) assert_int_equal(adamw_step(&o2, p2, g, 1e-3, &err), 0);
    assert_memory_equal(p1, p2, n * sizeof *p1);
    assert_memory_equal(o1.v, o2.v, n * sizeof *o1.v);

    g[200001] = NAN;
    g[250000] = INFINITY;
    threads_set(1);
    assert_int_equal(optim_first_nonfinite(g, n), 200001);
    threads_set(2);
    assert_int_equal(optim_first_nonfinite(g, n), 200001);
    g[200001] = 0;
    g[250000] = 0;
    assert_int_equal(optim_first_nonfinite(g, n), n);
    adamw_free(&o1);
    adamw_free(&o2);
    free(g);
    free(p1);
    free(p2);
}

static void test_nonfinite_named(void **state) {
    (void)state;
    ModelConfig mc = {16, 24, 2, 4, 2, 32, 16, 1e-5f, 10000.0f, ROPE_INTERLEAVED, 0};
    Model m;
    CkError err = {{0}};
    assert_int_equal(model_init(&m, &mc, &err), 0);
    float *g = calloc(m.n_params, sizeof *g);
    assert_int_equal(optim_check_finite(g, m.n_params, "gradient", 7, optim_name_model, &m, &err),
                     0);

    /* layer 1 of wk (8 x 16 per layer), row 2, column 3 */
    const ParamTensor *wk = &m.tensors[PARAM_WK];
    const size_t at = wk->offset + wk->size / 2 + 2 * 16 + 3;
    g[at] = NAN;
    g[m.tensors[PARAM_W2].offset] = INFINITY; /* later in the buffer: not the first */
    assert_int_equal(optim_check_finite(g, m.n_params, "gradient", 7, optim_name_model, &m, &err),
                     -1);
    char want[256];
    snprintf(want, sizeof want,
             "step 7: gradient is nan at index %zu "
             "(model.layers.1.self_attn.k_proj.weight, element 35)",
             at);
    assert_string_equal(err.msg, want);
    g[at] = 0;
    const size_t w2 = m.tensors[PARAM_W2].offset;
    assert_int_equal(optim_check_finite(g, m.n_params, "gradient", 8, optim_name_model, &m, &err),
                     -1);
    snprintf(want, sizeof want,
             "step 8: gradient is inf at index %zu (model.layers.0.mlp.down_proj.weight, "
             "element 0)",
             w2);
    assert_string_equal(err.msg, want);
    g[w2] = -INFINITY;
    assert_int_equal(optim_check_finite(g, m.n_params, "gradient", 8, NULL, NULL, &err), -1);
    snprintf(want, sizeof want, "step 8: gradient is -inf at index %zu", w2);
    assert_string_equal(err.msg, want);
    free(g);

    /* adapters: PEFT names */
    LoraAdapters ad;
    LoraConfig lc = {4, 8.0f, 0.0f, LORA_BIT(LORA_Q) | LORA_BIT(LORA_V)};
    assert_int_equal(lora_init(&ad, &m, &lc, 3, &err), 0);
    float *ga = calloc(ad.n_params, sizeof *ga);
    const LoraTensor *t =
        lora_find(&ad, "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
    assert_non_null(t);
    ga[t->offset + 5] = NAN;
    assert_int_equal(optim_check_finite(ga, ad.n_params, "gradient", 3, optim_name_lora, &ad, &err),
                     -1);
    snprintf(want, sizeof want, "step 3: gradient is nan at index %zu (%s, element 5)",
             t->offset + 5, t->name);
    assert_string_equal(err.msg, want);
    free(ga);
    lora_free(&ad);
    model_free(&m);

    /* a plain table */
    const OptimTensorName names[2] = {{"alpha", 0, 10}, {"beta", 10, 6}};
    const OptimNameTable table = {names, 2};
    float x[16] = {0};
    x[12] = NAN;
    assert_int_equal(optim_check_finite(x, 16, "loss", 1, optim_name_table, &table, &err), -1);
    assert_string_equal(err.msg, "step 1: loss is nan at index 12 (beta, element 2)");
}

static void test_scale(void **state) {
    (void)state;
    float x[3] = {1.0f, -2.0f, 4.0f};
    optim_scale(x, 3, 0.25f);
    assert_true(x[0] == 0.25f && x[1] == -0.5f && x[2] == 1.0f);
}

int main(void) {
    threads_set(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_matches_torch),
        cmocka_unit_test(test_adamw_first_step_by_hand),
        cmocka_unit_test(test_adamw_config_refusals),
        cmocka_unit_test(test_decay_segments),
        cmocka_unit_test(test_clip_grad_norm),
        cmocka_unit_test(test_thread_count_independence),
        cmocka_unit_test(test_nonfinite_named),
        cmocka_unit_test(test_scale),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
