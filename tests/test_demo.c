/* test_demo.c — `cutkit demo --size small` end to end: world, warm-up, ten trainings, their
 * evaluations and the report, whose page must render in a real browser. The numbers of a
 * small demo mean little (8 test stories); what is checked is that every stage produced what
 * the next one and the report read, and that a rerun resumes instead of redoing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/test_util.h"

static const char *RUNS[] = {"warmup",          "mixed-mle-positive",  "mixed-mle-all",
                             "mixed-align-n",   "mixed-cut",           "offline-mle-all",
                             "offline-align-n", "offline-cut-l1.1-a1", "offline-cut-l2-a0.5"};

static int exists_in(const char *dir, const char *run, const char *file) {
    char path[2048];
    snprintf(path, sizeof path, "%s/runs/%s/%s", dir, run, file);
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

static void test_small_demo_end_to_end(void **state) {
    (void)state;
    char *tmp = test_temp_dir();
    char out[1100], cmd[4096];
    snprintf(out, sizeof out, "%s/demo", tmp);
    snprintf(cmd, sizeof cmd, "'%s' demo --size small --out '%s'", CUTKIT_BINARY, out);
    char *stdout_text = NULL, *err = NULL;
    int status = test_run(cmd, &stdout_text, &err);
    if (status != 0) fprintf(stderr, "%s", err ? err : "");
    assert_int_equal(status, 0);
    /* the table printed at the end has a row per model */
    assert_non_null(strstr(stdout_text, "| warm-up |"));
    assert_non_null(strstr(stdout_text, "| offline-cut-l1.1-a1 |"));
    free(stdout_text);
    free(err);
    for (size_t i = 0; i < sizeof RUNS / sizeof RUNS[0]; i++) {
        assert_true(exists_in(out, RUNS[i], "model/model.safetensors"));
        assert_true(exists_in(out, RUNS[i], "config.json"));
        assert_true(exists_in(out, RUNS[i], "errors.json"));
        assert_true(exists_in(out, RUNS[i], "detection.json"));
        assert_true(exists_in(out, RUNS[i], "contrast.csv"));
        assert_true(exists_in(out, RUNS[i], "eval/model_outputs.json"));
        if (i > 0) assert_true(exists_in(out, RUNS[i], "eval/winrate.json"));
    }
    /* CUT runs log their flags; the report's table has their flagged fraction */
    assert_true(exists_in(out, "offline-cut-l1.1-a1", "tokens.csv"));
    char path[2048];
    snprintf(path, sizeof path, "%s/report/tables.md", out);
    char *md = test_read_file(path, NULL);
    assert_non_null(md);
    assert_non_null(strstr(md, "| mixed-align-n |"));
    free(md);

    /* a rerun finds every stage done and redoes nothing */
    err = NULL;
    assert_int_equal(test_run(cmd, NULL, &err), 0);
    assert_null(strstr(err, "training "));
    assert_null(strstr(err, "responses by"));
    free(err);

    /* the report page in headless Chromium (skipped without it) */
    if (access("/usr/bin/chromium", X_OK) != 0 || access("/usr/bin/python3", X_OK) != 0) {
        fprintf(stderr, "skipping the browser check: /usr/bin/chromium is absent\n");
        free(tmp);
        return;
    }
    char build[1024];
    snprintf(build, sizeof build, "%s", CUTKIT_BINARY);
    char *slash = strrchr(build, '/');
    if (slash) *slash = '\0';
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/tests/browser/check_report.py' '%s/report/index.html' "
             "'%s/tests/artifacts/demo-report.png' /usr/bin/chromium 12000",
             CUTKIT_SOURCE_DIR, out, build);
    char *o_text = NULL, *e_text = NULL;
    status = test_run(cmd, &o_text, &e_text);
    fprintf(stderr, "%s%s", o_text ? o_text : "", e_text ? e_text : "");
    free(o_text);
    free(e_text);
    free(tmp);
    if (status != 77) assert_int_equal(status, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_demo_end_to_end),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
