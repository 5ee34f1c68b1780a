/* test_demo.c — demo_run (reports/demo/demo.h) at the small size end to end: world, warm-up,
 * ten trainings, their evaluations and the report, whose page must render in a real browser;
 * then `cutkit demo` over the same folder, which must find every stage done and print the
 * table. The numbers of a small demo mean little (8 test stories); what is checked is that
 * every stage produced what the next one and the report read, and that a rerun resumes
 * instead of redoing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reports/demo/demo.h"
#include "tests/test_util.h"

/* Every test works in a fresh temporary folder, removed afterwards even when it fails. */
static int make_temp(void **state) {
    *state = test_temp_dir();
    return *state ? 0 : -1;
}

static int remove_temp(void **state) {
    int rc = test_remove_dir(*state);
    free(*state);
    return rc;
}

static const char *RUNS[] = {"warmup",          "mixed-mle-positive",  "mixed-mle-all",
                             "mixed-align-n",   "mixed-cut",           "offline-mle-all",
                             "offline-align-n", "offline-cut-l1.1-a1", "offline-cut-l2-a0.5"};

static int exists_in(const char *dir, const char *run, const char *file) {
    char path[2048];
    snprintf(path, sizeof path, "%s/runs/%s/%s", dir, run, file);
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

/* The report page in headless Chromium (skipped without it). */
static void check_in_browser(const char *out) {
    if (access("/usr/bin/chromium", X_OK) != 0 || access("/usr/bin/python3", X_OK) != 0) {
        fprintf(stderr, "skipping the browser check: /usr/bin/chromium is absent\n");
        return;
    }
    char build[1024], cmd[4096];
    snprintf(build, sizeof build, "%s", CUTKIT_BINARY);
    char *slash = strrchr(build, '/');
    if (slash) *slash = '\0';
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/tests/browser/check_report.py' '%s/report/index.html' "
             "'%s/tests/artifacts/demo-report.png' /usr/bin/chromium 12000",
             CUTKIT_SOURCE_DIR, out, build);
    char *o_text = NULL, *e_text = NULL;
    int status = test_run(cmd, &o_text, &e_text);
    fprintf(stderr, "%s%s", o_text ? o_text : "", e_text ? e_text : "");
    free(o_text);
    free(e_text);
    if (status != 77) assert_int_equal(status, 0);
}

static void test_small_demo_end_to_end(void **state) {
    const char *tmp = *state;
    char out[1100], cmd[4096];
    snprintf(out, sizeof out, "%s/demo", tmp);
    DemoOptions o;
    demo_options_init(&o);
    o.out = out;
    o.size = DEMO_SMALL;
    o.runner.binary = CUTKIT_BINARY;
    o.log = stderr;
    CkError err = {{0}};
    int rc = demo_run(&o, &err);
    if (rc != 0) fprintf(stderr, "demo_run: %s\n", err.msg);
    assert_int_equal(rc, 0);
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

    /* the command over the same folder finds every stage done, redoes nothing and prints the
     * table with a row per model */
    snprintf(cmd, sizeof cmd, "'%s' demo --size small --out '%s'", CUTKIT_BINARY, out);
    char *stdout_text = NULL, *stderr_text = NULL;
    assert_int_equal(test_run(cmd, &stdout_text, &stderr_text), 0);
    assert_null(strstr(stderr_text, "training "));
    assert_null(strstr(stderr_text, "responses by"));
    assert_non_null(strstr(stderr_text, "cutkit demo: done in "));
    assert_non_null(strstr(stdout_text, "| warm-up |"));
    assert_non_null(strstr(stdout_text, "| offline-cut-l1.1-a1 |"));
    free(stdout_text);
    free(stderr_text);
    /* a size that is neither full nor small is a usage error */
    snprintf(cmd, sizeof cmd, "'%s' demo --size medium --out '%s'", CUTKIT_BINARY, out);
    stderr_text = NULL;
    assert_int_equal(test_run(cmd, NULL, &stderr_text), 2);
    assert_non_null(strstr(stderr_text, "--size expects full or small, got 'medium'"));
    free(stderr_text);

    check_in_browser(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_small_demo_end_to_end, make_temp, remove_temp),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
