/* test_trainer.c — the training loop as a library: a poisoned model stops the run with the
 * step and no checkpoint written; token weighting makes the loss independent of how an
 * update is split into micro-batches; random initialisation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "datasets/corpus.h"
#include "formats/lm.h"
#include "train/trainer.h"

static LanguageModel lm;
static Corpus corpus;
static char *dir;

static int setup(void **state) {
    (void)state;
    CkError err = {{0}};
    if (lm_open(&lm, NULL, NULL, &err) != 0) return -1;
    dir = test_temp_dir();
    char path[600];
    snprintf(path, sizeof path, "%s/text.txt", dir);
    const char *text = "Once upon a time, there was a little girl named Lily. She loved to play "
                       "outside in the park. One day, she saw a big, red ball.";
    test_write_file(path, text, strlen(text));
    return corpus_load(&corpus, path, &lm.tokenizer, 12, &err);
}

static int teardown(void **state) {
    (void)state;
    corpus_free(&corpus);
    lm_close(&lm);
    int rc = test_remove_dir(dir);
    free(dir);
    return rc;
}

static TrainOptions options(const char *out) {
    TrainOptions o = {0};
    o.steps = 3;
    o.batch_size = 4;
    o.micro_batch = 2;
    o.lr = 1e-3;
    o.schedule = SCHED_CONSTANT;
    o.adamw = adamw_config_default();
    o.max_grad_norm = 1.0;
    o.seed = 1;
    o.out_dir = out;
    o.save_every = 1;
    o.keep_checkpoints = 1;
    return o;
}

static void test_nan_stops_before_update(void **state) {
    (void)state;
    Model m = lm.model;
    m.params = malloc(m.n_params * sizeof(float));
    memcpy(m.params, lm.model.params, m.n_params * sizeof(float));
    model_param(&m, PARAM_WQ, 2)[5] = NAN;
    char out[600];
    snprintf(out, sizeof out, "%s/poisoned", dir);
    TrainOptions o = options(out);
    HfConfig cfg = {.model = m.config, .bos_token_id = 1, .eos_token_id = 2};
    TrainReport report;
    CkError err = {{0}};
    TrainData data = {&corpus, NULL, 0};
    assert_int_equal(trainer_run(&m, &cfg, &data, &o, &report, &err), -1);
    assert_string_equal(err.msg, "step 1: the loss is nan; stopped before the update (last good "
                                 "checkpoint: none yet)");
    char path[700];
    snprintf(path, sizeof path, "%s/checkpoints/latest", out);
    assert_null(test_read_file(path, NULL)); /* nothing poisoned was written */
    free(m.params);
}

/* The same updates split into 1, 2 or 4 micro-batches: the same losses, and the same weights
 * up to float summation order as Adam amplifies it: an update is lr * m / (sqrt(v) + eps),
 * so for the few gradient elements near eps (1e-8) a rounding difference of the sum moves
 * the update by a fraction of lr (1e-3). So: all but 0.1% of the weights agree within 1e-6,
 * and none differs by more than lr per update. */
static void test_micro_batches_do_not_change_the_update(void **state) {
    (void)state;
    float *after[3];
    double loss[3];
    const int micro[3] = {1, 2, 4};
    for (int k = 0; k < 3; k++) {
        Model m = lm.model;
        m.params = malloc(m.n_params * sizeof(float));
        memcpy(m.params, lm.model.params, m.n_params * sizeof(float));
        char out[600];
        snprintf(out, sizeof out, "%s/micro%d", dir, micro[k]);
        TrainOptions o = options(out);
        o.micro_batch = micro[k];
        o.save_every = 0;
        HfConfig cfg = {.model = m.config, .bos_token_id = 1, .eos_token_id = 2};
        TrainReport report;
        CkError err = {{0}};
        TrainData data = {&corpus, NULL, 0};
        assert_int_equal(trainer_run(&m, &cfg, &data, &o, &report, &err), 0);
        loss[k] = report.last_loss;
        after[k] = m.params;
    }
    for (int k = 1; k < 3; k++) {
        double d = 0;
        size_t apart = 0;
        for (size_t i = 0; i < lm.model.n_params; i++) {
            double e = fabs((double)after[k][i] - after[0][i]);
            d = fmax(d, e);
            apart += e > 1e-6;
        }
        printf("micro-batch %d vs 1: loss %.9f vs %.9f, max weight difference %.3g, %zu of %zu "
               "weights beyond 1e-6\n",
               micro[k], loss[k], loss[0], d, apart, lm.model.n_params);
        assert_float_equal(loss[k], loss[0], 1e-5);
        assert_true(apart < lm.model.n_params / 1000);
        assert_true(d < 3 * 1e-3);
    }
    for (int k = 0; k < 3; k++) free(after[k]);
}

static void test_random_init(void **state) {
    (void)state;
    Model m;
    CkError err = {{0}};
    ModelConfig c = lm.model.config;
    assert_int_equal(model_init(&m, &c, &err), 0);
    trainer_init_random(&m, 5);
    double sum = 0, sq = 0;
    const float *wq = model_param(&m, PARAM_WQ, 0);
    size_t n = m.tensors[PARAM_WQ].size;
    for (size_t i = 0; i < n; i++) {
        sum += wq[i];
        sq += (double)wq[i] * wq[i];
    }
    double mean = sum / n, sd = sqrt(sq / n - mean * mean);
    printf("random wq: mean %.4f, sd %.4f over %zu values\n", mean, sd, n);
    assert_close(mean, 0, 0.002);
    assert_close(sd, 0.02, 0.001);
    assert_float_equal(model_param(&m, PARAM_RMS_FINAL, 0)[7], 1.0f, 0);
    model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nan_stops_before_update),
        cmocka_unit_test(test_micro_batches_do_not_change_the_update),
        cmocka_unit_test(test_random_init),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
