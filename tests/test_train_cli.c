/* test_train_cli.c — `cutkit train` as a user runs it: an interrupted run resumed with
 * --resume gives the same loss curve and the same final weights, bit for bit, as the
 * uninterrupted one (full fine-tuning and LoRA); SIGTERM finishes the update, saves and
 * exits 0; the run directory holds what the reports read. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "formats/safetensors.h"

static char *dir;

static const char *STORY =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
    "park. One day, she saw a big, red ball. She wanted to play with it, but it was too high. "
    "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. "
    "Tom had a red car. He liked to drive it fast around the garden with his dog.\n";

static int setup(void **state) {
    (void)state;
    dir = test_temp_dir();
    char path[600];
    snprintf(path, sizeof path, "%s/stories.txt", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 6; i++) fputs(STORY, f);
    fclose(f);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    int rc = test_remove_dir(dir);
    free(dir);
    return rc;
}

static int cutkit(const char *args, char **err) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, CUTKIT_BINARY, args);
    char *out = NULL;
    int status = test_run(cmd, &out, err);
    free(out);
    return status;
}

/* steps.jsonl without the timing fields, which legitimately differ between runs. */
static char *losses(const char *run) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s/steps.jsonl", dir, run);
    char *text = test_read_file(path, NULL);
    assert_non_null(text);
    char *out = calloc(1, strlen(text) + 1), *w = out;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *cut = strstr(line, ", \"seconds\"");
        size_t n = cut ? (size_t)(cut - line) : strlen(line);
        memcpy(w, line, n);
        w += n;
        *w++ = '\n';
    }
    free(text);
    return out;
}

/* Every tensor of two safetensors files, byte for byte (the headers differ: command lines). */
static void assert_same_tensors(const char *a_rel, const char *b_rel) {
    char a_path[700], b_path[700];
    snprintf(a_path, sizeof a_path, "%s/%s", dir, a_rel);
    snprintf(b_path, sizeof b_path, "%s/%s", dir, b_rel);
    SafetensorsFile a, b;
    CkError err = {{0}};
    assert_int_equal(safetensors_open(&a, a_path, &err), 0);
    assert_int_equal(safetensors_open(&b, b_path, &err), 0);
    assert_int_equal(safetensors_count(&a), safetensors_count(&b));
    for (size_t i = 0; i < safetensors_count(&a); i++) {
        const SafetensorsTensor *ta = safetensors_at(&a, i);
        const SafetensorsTensor *tb = safetensors_find(&b, ta->name);
        assert_non_null(tb);
        assert_int_equal(ta->end - ta->begin, tb->end - tb->begin);
        assert_memory_equal(safetensors_data(&a, ta), safetensors_data(&b, tb),
                            ta->end - ta->begin);
    }
    safetensors_close(&a);
    safetensors_close(&b);
}

static void resume_case(const char *name, const char *extra, const char *weights) {
    char args[2048], *err = NULL;
    const char *common = "train --data stories.txt --steps 16 --batch-size 4 --micro-batch 2 "
                         "--seq-len 48 --warmup 3 --lr 2e-3 --save-every 5";
    snprintf(args, sizeof args, "%s %s --out %s-straight", common, extra, name);
    assert_int_equal(cutkit(args, &err), 0);
    free(err);
    /* interrupted after update 7 (between checkpoints 5 and 10), then resumed */
    snprintf(args, sizeof args, "%s %s --out %s-resumed --stop-after 7", common, extra, name);
    assert_int_equal(cutkit(args, &err), 0);
    assert_non_null(strstr(err, "stopped at step 7; checkpoint saved in"));
    free(err);
    snprintf(args, sizeof args, "%s %s --out %s-resumed --resume", common, extra, name);
    assert_int_equal(cutkit(args, &err), 0);
    assert_non_null(strstr(err, "resuming from"));
    free(err);
    char straight[64], resumed[64];
    snprintf(straight, sizeof straight, "%s-straight", name);
    snprintf(resumed, sizeof resumed, "%s-resumed", name);
    char *a = losses(straight), *b = losses(resumed);
    assert_string_equal(a, b);
    assert_int_equal((int)(strchr(a, '\0') - a) > 0, 1);
    free(a);
    free(b);
    char wa[200], wb[200];
    snprintf(wa, sizeof wa, "%s/%s", straight, weights);
    snprintf(wb, sizeof wb, "%s/%s", resumed, weights);
    assert_same_tensors(wa, wb);
}

static void test_resume_full(void **state) {
    (void)state;
    resume_case("full", "", "model/model.safetensors");
}

static void test_resume_lora(void **state) {
    (void)state;
    resume_case("lora", "--lora --lora-targets q_proj,v_proj,down_proj --lora-r 4",
                "adapter/adapter_model.safetensors");
}

/* A real SIGTERM: the update in flight completes, a checkpoint is written, exit status 0. */
static void test_sigterm_saves(void **state) {
    (void)state;
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && ('%s' train --data stories.txt --steps 100000 --batch-size 2 "
             "--seq-len 48 --out sig 2>sig.err & pid=$!; sleep 1; kill -TERM $pid; wait $pid; "
             "echo \"exit=$?\")",
             dir, CUTKIT_BINARY);
    char *out = NULL;
    assert_int_equal(test_run(cmd, &out, NULL), 0);
    assert_non_null(strstr(out, "exit=0"));
    free(out);
    char path[700];
    snprintf(path, sizeof path, "%s/sig.err", dir);
    char *err = test_read_file(path, NULL);
    assert_non_null(strstr(err, "checkpoint saved in sig/checkpoints/checkpoint-"));
    free(err);
    snprintf(path, sizeof path, "%s/sig/checkpoints/latest", dir);
    char *latest = test_read_file(path, NULL);
    assert_non_null(latest);
    assert_true(strncmp(latest, "checkpoint-", 11) == 0);
    free(latest);
}

/* cutkit merge folds the adapter in: the merged model scores a text as the base model with
 * the adapter does. */
static void test_merge_equals_adapter(void **state) {
    (void)state;
    char *err = NULL;
    assert_int_equal(cutkit("train --data stories.txt --steps 4 --batch-size 2 --seq-len 48 "
                            "--warmup 0 --schedule constant --lr 1e-2 --lora --lora-targets all "
                            "--lora-r 4 --lora-dropout 0 --out merge-run",
                            &err),
                     0);
    free(err);
    assert_int_equal(cutkit("merge --adapter merge-run/adapter --out merged", &err), 0);
    free(err);
    char cmd[2048], *with_adapter = NULL, *merged = NULL;
    const char *text = "--text 'Lily saw a big red ball in the park.'";
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' score --adapter merge-run/adapter %s", dir,
             CUTKIT_BINARY, text);
    assert_int_equal(test_run(cmd, &with_adapter, NULL), 0);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' score --model merged %s", dir, CUTKIT_BINARY, text);
    assert_int_equal(test_run(cmd, &merged, NULL), 0);
    double a = strtod(strstr(with_adapter, "\"sum\":") + 6, NULL);
    double b = strtod(strstr(merged, "\"sum\":") + 6, NULL);
    printf("sum log p with the adapter %.6f, merged %.6f\n", a, b);
    assert_float_equal(a, b, 1e-4);
    free(with_adapter);
    free(merged);
}

/* Pretraining from scratch: --init random with a config.json of any shape (here a ragged
 * 2-layer model on the embedded tokenizer's 512 ids) learns the corpus. */
static void test_init_random(void **state) {
    (void)state;
    char path[700];
    snprintf(path, sizeof path, "%s/tiny.json", dir);
    const char *cfg = "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 48, "
                      "\"intermediate_size\": 100, \"num_hidden_layers\": 2, "
                      "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
                      "\"vocab_size\": 512, \"max_position_embeddings\": 64, "
                      "\"rms_norm_eps\": 1e-5}";
    assert_int_equal(test_write_file(path, cfg, strlen(cfg)), 0);
    char *err = NULL;
    assert_int_equal(cutkit("train --init random --config tiny.json --data stories.txt "
                            "--steps 60 --batch-size 4 --seq-len 48 --lr 3e-3 --warmup 5 "
                            "--out scratch",
                            &err),
                     0);
    free(err);
    snprintf(path, sizeof path, "%s/scratch/steps.jsonl", dir);
    char *log = test_read_file(path, NULL);
    assert_non_null(log);
    double first = strtod(strstr(log, "\"loss\": ") + 8, NULL);
    const char *last_line = log + strlen(log) - 2;
    while (last_line > log && *last_line != '\n') last_line--;
    double last = strtod(strstr(last_line, "\"loss\": ") + 8, NULL);
    printf("from scratch: loss %.3f -> %.3f over 60 updates (ln 512 = 6.24)\n", first, last);
    assert_true(first > 5.5); /* a fresh model is near uniform over 512 ids */
    assert_true(last < first - 2.0);
    free(log);
    /* the model it wrote is a Hugging Face folder of that shape */
    snprintf(path, sizeof path, "%s/scratch/model/config.json", dir);
    char *written = test_read_file(path, NULL);
    assert_non_null(strstr(written, "\"intermediate_size\":\t100"));
    free(written);
}

/* --objective cut on judgment records (generic JSONL: two negatives with judgments, two
 * positives): steps.jsonl carries the detection counts, and an interrupted CUT run resumes
 * bit for bit like an MLE one. */
static void test_cut_objective(void **state) {
    (void)state;
    char path[700];
    snprintf(path, sizeof path, "%s/judged.jsonl", dir);
    const char *records =
        "{\"instruction\": \"Tell a story about Lily.\", \"output\": \"Lily had a red ball. "
        "She played in the park.\", \"judgment\": null}\n"
        "{\"instruction\": \"Tell a story about Tom.\", \"output\": \"Tom had a blue car. He "
        "drove it to the sun.\", \"judgment\": \"Cars cannot drive to the sun.\"}\n"
        "{\"instruction\": \"What colour is the sky?\", \"input\": \"On a clear day.\", "
        "\"output\": \"The sky is green.\", \"judgment\": \"The sky is blue, not green.\"}\n"
        "{\"instruction\": \"Say hello.\", \"output\": \"Hello!\", \"judgment\": null}\n";
    assert_int_equal(test_write_file(path, records, strlen(records)), 0);
    char *err = NULL;
    const char *common = "train --objective cut --judgments judged.jsonl --steps 8 "
                         "--batch-size 2 --seq-len 128 --warmup 2 --lr 5e-3 --lora --lora-r 4 "
                         "--save-every 3 --lambda 1.05 --alpha 0.5";
    char args[1024];
    snprintf(args, sizeof args, "%s --out cut-straight", common);
    assert_int_equal(cutkit(args, &err), 0);
    assert_non_null(strstr(err, "4 examples (2 positive, 2 negative"));
    free(err);
    snprintf(args, sizeof args, "%s --out cut-resumed --stop-after 4", common);
    assert_int_equal(cutkit(args, &err), 0);
    free(err);
    snprintf(args, sizeof args, "%s --out cut-resumed --resume", common);
    assert_int_equal(cutkit(args, &err), 0);
    free(err);
    char *a = losses("cut-straight"), *b = losses("cut-resumed");
    assert_string_equal(a, b);
    assert_non_null(strstr(a, "\"flagged\": "));
    assert_non_null(strstr(a, "\"misalign_tokens\": "));
    free(a);
    free(b);
    assert_same_tensors("cut-straight/adapter/adapter_model.safetensors",
                        "cut-resumed/adapter/adapter_model.safetensors");
    /* tokens.csv: one row per Misalign response token, as many as steps.jsonl counts, with
     * as many flags; identical after the resume */
    char csv_a[700], csv_b[700], log_path[700];
    snprintf(csv_a, sizeof csv_a, "%s/cut-straight/tokens.csv", dir);
    snprintf(csv_b, sizeof csv_b, "%s/cut-resumed/tokens.csv", dir);
    snprintf(log_path, sizeof log_path, "%s/cut-straight/steps.jsonl", dir);
    char *ta = test_read_file(csv_a, NULL), *tb = test_read_file(csv_b, NULL);
    char *steps = test_read_file(log_path, NULL);
    assert_non_null(ta);
    assert_non_null(tb);
    assert_string_equal(ta, tb);
    assert_true(strncmp(ta, "step,example,position,token,log_pa,log_pm,flagged\n", 50) == 0);
    long rows = 0, flagged_rows = 0, counted = 0, counted_flags = 0;
    for (char *line = strchr(ta, '\n') + 1; *line; line = strchr(line, '\n') + 1) {
        rows++;
        const char *end = strchr(line, '\n');
        flagged_rows += end[-1] == '1'; /* the last column, flagged */
    }
    for (char *p = steps; (p = strstr(p, "\"misalign_tokens\": ")); p++) {
        counted += strtol(p + 19, NULL, 10);
        counted_flags += strtol(strstr(p, "\"flagged\": ") + 11, NULL, 10);
    }
    printf("tokens.csv: %ld rows, %ld flagged; steps.jsonl: %ld Misalign tokens, %ld flagged\n",
           rows, flagged_rows, counted, counted_flags);
    assert_int_equal(rows, counted);
    assert_int_equal(flagged_rows, counted_flags);
    assert_true(rows > 0);
    free(ta);
    free(tb);
    free(steps);
    assert_int_equal(cutkit("train --objective cut --out x", &err), 2);
    assert_non_null(strstr(err, "--judgments and --out are required"));
    free(err);
}

/* OUT/config.json records the effective settings (what `cutkit report` labels runs by), and
 * --resume on a run directory with no checkpoint yet starts fresh instead of failing. */
static void test_config_and_fresh_resume(void **state) {
    (void)state;
    char *err = NULL;
    assert_int_equal(cutkit("train --data stories.txt --out fresh --steps 2 --batch-size 2 "
                            "--seq-len 32 --warmup 0 --lr 1e-3 --resume",
                            &err),
                     0);
    free(err);
    char path[700];
    snprintf(path, sizeof path, "%s/fresh/config.json", dir);
    char *config = test_read_file(path, NULL);
    assert_non_null(config);
    assert_non_null(strstr(config, "\"label\":\t\"fresh\""));
    assert_non_null(strstr(config, "\"objective\":\t\"mle\""));
    assert_non_null(strstr(config, "\"lr\":\t0.001"));
    assert_non_null(strstr(config, "\"steps_done\":\t2"));
    free(config);
    snprintf(path, sizeof path, "%s/cut-straight/config.json", dir);
    config = test_read_file(path, NULL);
    assert_non_null(config);
    assert_non_null(strstr(config, "\"objective\":\t\"cut\""));
    assert_non_null(strstr(config, "\"lambda\":\t1.05"));
    assert_non_null(strstr(config, "\"alpha\":\t0.5"));
    assert_non_null(strstr(config, "\"lora\":\ttrue"));
    free(config);
}

static void test_bad_options(void **state) {
    (void)state;
    char *err = NULL;
    assert_int_equal(
        cutkit("train --data stories.txt --out x --batch-size 4 --micro-batch 3", &err), 1);
    assert_non_null(strstr(err, "--micro-batch 3 must divide --batch-size 4"));
    free(err);
    assert_int_equal(cutkit("train --data missing.jsonl --out x", &err), 1);
    assert_non_null(strstr(err, "missing.jsonl: cannot open: No such file or directory"));
    free(err);
    assert_int_equal(cutkit("train --data stories.txt --out x --lora --lora-targets c_attn", &err),
                     2);
    assert_non_null(strstr(err, "unknown LoRA target module \"c_attn\""));
    free(err);
    assert_int_equal(cutkit("train --data stories.txt --out x --schedule cosine_restarts", &err),
                     2);
    assert_non_null(strstr(err, "--schedule"));
    free(err);
    assert_int_equal(cutkit("train --out x", &err), 2);
    assert_non_null(strstr(err, "--data and --out are required"));
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_full),
        cmocka_unit_test(test_resume_lora),
        cmocka_unit_test(test_sigterm_saves),
        cmocka_unit_test(test_merge_equals_adapter),
        cmocka_unit_test(test_init_random),
        cmocka_unit_test(test_cut_objective),
        cmocka_unit_test(test_config_and_fresh_resume),
        cmocka_unit_test(test_bad_options),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
