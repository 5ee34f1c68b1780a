/* test_align_online.c — `cutkit align-online`: generate → judge → CUT-train → merge rounds on
 * the embedded model, with the synthetic world's judge, an external command and a file; every
 * stage resumable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/test_util.h"

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static long mtime_ns(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    return (long)st.st_mtim.tv_sec * 1000000000L + st.st_mtim.tv_nsec;
}

/* A small synthetic world in dir/world. */
static void make_world(const char *dir) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' datasets synth --out '%s/world' --train 8 --test 8 --warmup 8",
             CUTKIT_BINARY, dir);
    assert_int_equal(test_run(cmd, NULL, NULL), 0);
}

static int align(const char *dir, const char *judge, const char *extra, char **err) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "'%s' align-online --instructions '%s/world/instructions.json' --out '%s/run' "
             "--template '%s/world/template.json' --judge '%s' --iterations 2 --per-iteration 4 "
             "--max-tokens 48 --batch-size 2 --threads 1 %s",
             CUTKIT_BINARY, dir, dir, dir, judge, extra);
    return test_run(cmd, NULL, err);
}

static void test_two_iterations_with_the_synthetic_judge(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    make_world(dir);
    char *err = NULL;
    assert_int_equal(align(dir, "synth", "", &err), 0);
    free(err);
    char path[2048];
    snprintf(path, sizeof path, "%s/run/summary.json", dir);
    char *summary = test_read_file(path, NULL);
    assert_non_null(summary);
    /* two iterations of four responses each, all judged */
    assert_non_null(strstr(summary, "\"iteration\":\t2"));
    assert_null(strstr(summary, "\"iteration\":\t3"));
    assert_non_null(strstr(summary, "\"responses\":\t4"));
    assert_non_null(strstr(summary, "\"judge_failures\":\t0"));
    free(summary);
    /* the judgments are training records whose verdicts are the judge's own */
    snprintf(path, sizeof path, "%s/run/iter-1/judgments.jsonl", dir);
    char *judged = test_read_file(path, NULL);
    assert_non_null(judged);
    int lines = 0;
    for (char *p = judged; (p = strchr(p, '\n')); p++) lines++;
    assert_int_equal(lines, 4);
    assert_non_null(strstr(judged, "\"judgment\":"));
    free(judged);
    /* iteration 2 starts from iteration 1's model */
    snprintf(path, sizeof path, "%s/run/iter-1/train/model/model.safetensors", dir);
    assert_true(exists(path));
    snprintf(path, sizeof path, "%s/run/iter-2/done.json", dir);
    char *done = test_read_file(path, NULL);
    assert_non_null(done);
    assert_non_null(strstr(done, "iter-2/train/model"));
    free(done);

    /* Forget the end of iteration 2 (as if killed during its training): the rerun redoes only
     * the training, not the generations, and leaves iteration 1 alone. */
    char gen2[2048], train1[2048];
    snprintf(gen2, sizeof gen2, "%s/run/iter-2/generations.jsonl", dir);
    snprintf(train1, sizeof train1, "%s/run/iter-1/train/steps.jsonl", dir);
    long gen_before = mtime_ns(gen2), train_before = mtime_ns(train1);
    assert_int_equal(remove(path), 0);
    snprintf(path, sizeof path, "%s/run/iter-2/trained", dir);
    assert_int_equal(remove(path), 0);
    err = NULL;
    assert_int_equal(align(dir, "synth", "", &err), 0);
    assert_null(strstr(err, "iteration 1/2"));
    assert_non_null(strstr(err, "iteration 2/2"));
    free(err);
    assert_int_equal(mtime_ns(gen2), gen_before);
    assert_int_equal(mtime_ns(train1), train_before);
    snprintf(path, sizeof path, "%s/run/iter-2/done.json", dir);
    assert_true(exists(path));
    free(dir);
}

static void test_command_judge_and_lora_merge(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    make_world(dir);
    /* a judge that reads the request and criticises every response */
    char judge[2048], spec[2300];
    snprintf(judge, sizeof judge, "%s/judge.sh", dir);
    const char *script = "#!/bin/sh\ncat >/dev/null\necho '{\"judgment\": \"Too short.\"}'\n";
    assert_int_equal(test_write_file(judge, script, strlen(script)), 0);
    snprintf(spec, sizeof spec, "command:sh %s", judge);
    char *err = NULL;
    assert_int_equal(align(dir, spec, "--lora", &err), 0);
    free(err);
    char path[2048];
    snprintf(path, sizeof path, "%s/run/iter-1/judgments.jsonl", dir);
    char *judged = test_read_file(path, NULL);
    assert_non_null(judged);
    assert_non_null(strstr(judged, "\"judgment\":\"Too short.\""));
    assert_null(strstr(judged, "\"judgment\":null"));
    free(judged);
    /* LoRA: the adapter is merged into the model the next iteration starts from */
    snprintf(path, sizeof path, "%s/run/iter-1/train/adapter/adapter_model.safetensors", dir);
    assert_true(exists(path));
    snprintf(path, sizeof path, "%s/run/iter-1/model/model.safetensors", dir);
    assert_true(exists(path));
    free(dir);
}

static void test_failing_judge_is_reported(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    make_world(dir);
    char *err = NULL;
    assert_int_equal(align(dir, "command:echo broken >&2; exit 3", "", &err), 1);
    /* every item failed: recorded, not trained on, and the run stops saying so */
    assert_non_null(strstr(err, "judge failed on item 0"));
    assert_non_null(strstr(err, "nothing was judged"));
    free(err);
    char path[2048];
    snprintf(path, sizeof path, "%s/run/iter-1/judge_failures.jsonl", dir);
    char *failures = test_read_file(path, NULL);
    assert_non_null(failures);
    assert_non_null(strstr(failures, "\"judge_error\":"));
    free(failures);
    /* a judge spec that is none of the three kinds */
    err = NULL;
    assert_int_equal(align(dir, "oracle", "", &err), 2);
    assert_non_null(strstr(err, "expected synth, file:PATH or command:CMD"));
    free(err);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_iterations_with_the_synthetic_judge),
        cmocka_unit_test(test_command_judge_and_lora_merge),
        cmocka_unit_test(test_failing_judge_is_reported),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
