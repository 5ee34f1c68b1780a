/* test_compute_bf16.c — mixed precision at the level of a training run (issue 18): a short
 * LoRA CUT run with bf16 products (fp32 master weights, gradients and AdamW state) tracks the
 * fp32 run step by step, and records its compute type. The products themselves are checked
 * against a double oracle in test_matmul*.c; this checks that nothing in between (LoRA,
 * the CUT loss, the optimizer) turns bf16's rounding into drift.
 *
 * Tolerance: bf16 keeps 8 significant bits, so every product input moves by up to 2^-9 of
 * itself; on the embedded model that moves log-probs by ~0.02 nats on average (measured in
 * test_matmul_model.c). A loss is a mean of such log-probs, so the two curves may differ by a
 * few hundredths of a nat: 0.05 nats a step is the bound (measured 0.012). CUT's detection is
 * a threshold (p_A - p_M > λ): when the rounding moves a token across it, that token leaves the
 * Misalign MLE term for the unlikelihood term and the step's loss jumps by its NLL share
 * (measured 0.375 nats at one step, 2 flagged tokens against 3). So the bound holds at steps
 * that flag the same tokens count; at most half the steps may flag differently (two of eight
 * did), and the runs must agree on how much the loss fell within 25 %. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"
#include "model/matmul.h"
#include "train/train_run.h"

#define STEPS 8

static const char JUDGMENTS[] =
    "{\"instruction\": \"Tell a story about a cat.\", \"output\": \"The cat sat on the mat and "
    "then it ran away.\", \"judgment\": \"The story stops before anything happens.\"}\n"
    "{\"instruction\": \"Name a color.\", \"input\": \"\", \"output\": \"Blue is a color.\", "
    "\"judgment\": null}\n"
    "{\"instruction\": \"Say hello.\", \"output\": \"Bye, see you.\", \"judgment\": \"Wrong "
    "greeting: it says goodbye.\"}\n"
    "{\"instruction\": \"Tell a story about a dog.\", \"output\": \"Once upon a time a dog "
    "found a ball and was happy.\", \"judgment\": null}\n";

/* Runs LoRA CUT on file into out with compute c; fills losses[STEPS] and flagged[STEPS] (tokens
 * detected) from steps.jsonl. */
static void run_cut(const char *file, const char *out, MatmulCompute c, double *losses,
                    int *flagged) {
    CkError err = {{0}};
    assert_int_equal(matmul_set_compute(c, &err), 0);
    TrainRunOptions o;
    train_run_options_init(&o);
    o.objective = TRAIN_OBJECTIVE_CUT;
    o.judgments = file;
    o.out = out;
    o.steps = STEPS;
    o.batch_size = 2;
    o.micro_batch = 2;
    o.warmup = 0;
    o.lr = 3e-3;
    o.lora = 1;
    o.lora_targets = "all";
    o.threads = 1;
    TrainReport rep;
    const int rc = train_run(&o, &rep, &err);
    if (rc != 0) fprintf(stderr, "train_run: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(matmul_set_compute(MATMUL_FP32, &err), 0);

    char path[4096];
    snprintf(path, sizeof path, "%s/steps.jsonl", out);
    size_t n;
    char *text = test_read_file(path, &n);
    assert_non_null(text);
    int step = 0;
    for (char *p = strstr(text, "\"loss\": "); p && step < STEPS; p = strstr(p + 1, "\"loss\": "))
        losses[step++] = strtod(p + strlen("\"loss\": "), NULL);
    assert_int_equal(step, STEPS);
    step = 0;
    for (char *p = strstr(text, "\"flagged\": "); p && step < STEPS;
         p = strstr(p + 1, "\"flagged\": "))
        flagged[step++] = atoi(p + strlen("\"flagged\": "));
    assert_int_equal(step, STEPS);
    free(text);

    snprintf(path, sizeof path, "%s/config.json", out);
    text = test_read_file(path, &n);
    assert_non_null(text);
    char want[64];
    snprintf(want, sizeof want, "\"compute\":\t\"%s\"", c == MATMUL_BF16 ? "bf16" : "fp32");
    if (!strstr(text, want)) fprintf(stderr, "config.json lacks %s:\n%s\n", want, text);
    assert_non_null(strstr(text, want));
    /* and what ran the products: a bf16 backend exactly when the compute is bf16 */
    const char *backend = strstr(text, "\"matmul_backend\":\t\"");
    assert_non_null(backend);
    const char *value = backend + strlen("\"matmul_backend\":\t\""), *end = strchr(value, '"');
    assert_non_null(end);
    const int names_bf16 = memmem(value, (size_t)(end - value), "bf16", 4) != NULL;
    assert_int_equal(names_bf16, c == MATMUL_BF16);
    free(text);
}

static void test_bf16_lora_cut_tracks_fp32(void **state) {
    (void)state;
    CkError err = {{0}};
    if (matmul_bf16_available(&err) != 0) {
        test_missing_reference(err.msg); /* no oneDNN and no avx512_bf16 here */
        skip();
    }
    char *dir = test_temp_dir();
    char file[4096], out32[4096], out16[4096];
    snprintf(file, sizeof file, "%s/judgments.jsonl", dir);
    snprintf(out32, sizeof out32, "%s/fp32", dir);
    snprintf(out16, sizeof out16, "%s/bf16", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs(JUDGMENTS, f);
    fclose(f);

    double l32[STEPS], l16[STEPS];
    int f32[STEPS], f16[STEPS], flips = 0;
    run_cut(file, out32, MATMUL_FP32, l32, f32);
    run_cut(file, out16, MATMUL_BF16, l16, f16);
    double worst = 0;
    for (int s = 0; s < STEPS; s++) {
        fprintf(stderr, "step %d: fp32 %.5f (%d flagged) bf16 %.5f (%d flagged)\n", s + 1, l32[s],
                f32[s], l16[s], f16[s]);
        if (f32[s] != f16[s]) {
            flips++;
            continue;
        }
        if (fabs(l32[s] - l16[s]) > worst) worst = fabs(l32[s] - l16[s]);
        assert_close(l16[s], l32[s], 0.05);
    }
    fprintf(stderr,
            "largest difference at equal detection %.5f nats; %d of %d steps flagged "
            "differently\n",
            worst, flips, STEPS);
    assert_true(flips <= STEPS / 2);
    const double fall32 = l32[0] - l32[STEPS - 1], fall16 = l16[0] - l16[STEPS - 1];
    assert_true(fall32 > 0);
    assert_close(fall16, fall32, 0.25 * fall32);
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_lora_cut_tracks_fp32),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
