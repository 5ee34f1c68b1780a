/* test_sweep.c — `cutkit sweep`: a grid of trainings from one spec, resumable, summarised. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/test_util.h"

/* A corpus of repeated lines and a 2 x 1 grid over the learning rate, 2 updates each. */
static char *make_sweep(char *spec, size_t size) {
    char *dir = test_temp_dir();
    char path[1024];
    snprintf(path, sizeof path, "%s/corpus.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 40; i++) fprintf(f, "Tom had a red ball. He liked to play with it.\n");
    fclose(f);
    snprintf(spec, size, "%s/spec.json", dir);
    char text[2048];
    snprintf(text, sizeof text,
             "{\"train\": {\"data\": \"%s\", \"steps\": 2, \"batch-size\": 2, \"seq-len\": 32, "
             "\"warmup\": 0, \"threads\": 1},\n \"grid\": {\"lr\": [0.0001, 0.001]},\n"
             " \"evaluate\": [[\"score\", \"--model\", \"{run}/model\", \"--text\", \"Tom\"]]}\n",
             path);
    assert_int_equal(test_write_file(spec, text, strlen(text)), 0);
    return dir;
}

static int run_sweep(const char *spec, const char *out, char **err) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s' --out '%s'", CUTKIT_BINARY, spec, out);
    return test_run(cmd, NULL, err);
}

static long mtime_ns(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    return (long)st.st_mtim.tv_sec * 1000000000L + st.st_mtim.tv_nsec;
}

static void test_grid_runs_and_resumes(void **state) {
    (void)state;
    char spec[1024], out[1100], path[1300], steps0[1300];
    char *dir = make_sweep(spec, sizeof spec);
    snprintf(out, sizeof out, "%s/sweep", dir);
    char *err = NULL;
    assert_int_equal(run_sweep(spec, out, &err), 0);
    free(err);
    snprintf(path, sizeof path, "%s/summary.csv", out);
    char *csv = test_read_file(path, NULL);
    assert_non_null(csv);
    assert_non_null(strstr(csv, "point,lr,state,steps,loss,loss_mle,loss_ul,flagged_fraction\n"));
    assert_non_null(strstr(csv, "lr=0.0001,0.0001,done,2,"));
    assert_non_null(strstr(csv, "lr=0.001,0.001,done,2,"));
    free(csv);
    /* each point is a run directory: its trained model and its evaluation marker */
    snprintf(path, sizeof path, "%s/lr=0.001/model/model.safetensors", out);
    assert_true(mtime_ns(path) > 0);
    snprintf(path, sizeof path, "%s/lr=0.001/evaluate-0.done", out);
    assert_true(mtime_ns(path) > 0);

    /* Forget that the second point finished: a rerun redoes it and only it. */
    snprintf(steps0, sizeof steps0, "%s/lr=0.0001/steps.jsonl", out);
    long before = mtime_ns(steps0);
    snprintf(path, sizeof path, "%s/lr=0.001/done", out);
    assert_int_equal(remove(path), 0);
    snprintf(path, sizeof path, "%s/lr=0.001/evaluate-0.done", out);
    assert_int_equal(remove(path), 0);
    err = NULL;
    assert_int_equal(run_sweep(spec, out, &err), 0);
    assert_non_null(strstr(err, "point 1/2 lr=0.0001: done, skipped"));
    assert_non_null(strstr(err, "point 2/2 lr=0.001: running"));
    free(err);
    assert_int_equal(mtime_ns(steps0), before);
    assert_true(mtime_ns(path) > 0);
    free(dir);
}

static void test_bad_spec_is_refused(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char spec[1024], out[1100];
    snprintf(spec, sizeof spec, "%s/spec.json", dir);
    snprintf(out, sizeof out, "%s/sweep", dir);
    const char *bad = "{\"train\": {\"lr\": 0.1}, \"grid\": {\"lr\": [0.2]}}";
    assert_int_equal(test_write_file(spec, bad, strlen(bad)), 0);
    char *err = NULL;
    assert_int_equal(run_sweep(spec, out, &err), 2);
    assert_non_null(strstr(err, "\"lr\" is both in \"train\" and in \"grid\""));
    free(err);
    const char *empty = "{\"grid\": {\"alpha\": []}}";
    assert_int_equal(test_write_file(spec, empty, strlen(empty)), 0);
    err = NULL;
    assert_int_equal(run_sweep(spec, out, &err), 2);
    assert_non_null(strstr(err, "grid \"alpha\": expected a non-empty array"));
    free(err);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_runs_and_resumes),
        cmocka_unit_test(test_bad_spec_is_refused),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
