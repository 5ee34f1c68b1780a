/* test_demo.c — demo_run (reports/demo/demo.h) at the small size end to end with two seeds:
 * each seed's world, warm-up, ten trainings and their evaluations in its own folder (the two
 * seeds as child demos at once), then the report over both (each run one row, mean ± sd over
 * the seeds), whose page must render in a real browser, and the headline's paired
 * comparisons; then `cutkit demo` over the same folder, which must find every stage done and
 * print the tables, and over one seed's folder alone. The numbers of a small demo mean little
 * (8 test stories); what is checked is that every stage produced what the next one and the
 * report read, and that a rerun resumes instead of redoing. */
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

static const char *RUNS[] = {"warmup",
                             "mixed-mle-positive",
                             "mixed-mle-all",
                             "mixed-align-n",
                             "mixed-cut",
                             "offline-mle-all",
                             "offline-align-n",
                             "offline-forward-prediction",
                             "offline-hindsight",
                             "offline-dpo",
                             "offline-cut-l1.1-a1",
                             "offline-cut-l2-a0.5",
                             "offline-cut-no-l1",
                             "offline-cut-no-align-n-mle",
                             "offline-cut-no-detection"};

static int exists_in(const char *dir, const char *run, const char *file) {
    char path[4096];
    snprintf(path, sizeof path, "%s/runs/%s/%s", dir, run, file);
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

static long mtime_ns(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    return (long)st.st_mtim.tv_sec * 1000000000L + st.st_mtim.tv_nsec;
}

/* Every file the report and the headline read, in every run of one seed's folder. */
static void check_seed_folder(const char *seed_dir) {
    for (size_t i = 0; i < sizeof RUNS / sizeof RUNS[0]; i++) {
        assert_true(exists_in(seed_dir, RUNS[i], "model/model.safetensors"));
        assert_true(exists_in(seed_dir, RUNS[i], "config.json"));
        assert_true(exists_in(seed_dir, RUNS[i], "errors.json"));
        assert_true(exists_in(seed_dir, RUNS[i], "detection.json"));
        assert_true(exists_in(seed_dir, RUNS[i], "contrast.csv"));
        assert_true(exists_in(seed_dir, RUNS[i], "eval/model_outputs.json"));
        assert_true(exists_in(seed_dir, RUNS[i], "eval/fact_items.jsonl"));
        if (i > 0) assert_true(exists_in(seed_dir, RUNS[i], "eval/winrate.json"));
    }
    /* CUT runs log their flags; the report's table has their flagged fraction */
    assert_true(exists_in(seed_dir, "offline-cut-l1.1-a1", "tokens.csv"));
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
    char out[1100], cmd[4096], path[2048], seed_dir[1200];
    snprintf(out, sizeof out, "%s/demo", tmp);
    DemoOptions o;
    demo_options_init(&o);
    const uint64_t seeds[2] = {1, 2};
    o.out = out;
    o.size = DEMO_SMALL;
    o.seeds = seeds;
    o.n_seeds = 2;
    o.jobs = 2;
    o.runner.binary = CUTKIT_BINARY;
    o.log = stderr;
    CkError err = {{0}};
    int rc = demo_run(&o, &err);
    if (rc != 0) fprintf(stderr, "demo_run: %s\n", err.msg);
    assert_int_equal(rc, 0);
    for (int s = 1; s <= 2; s++) {
        snprintf(seed_dir, sizeof seed_dir, "%s/seed-%d", out, s);
        check_seed_folder(seed_dir);
        snprintf(path, sizeof path, "%s/demo.log", seed_dir);
        assert_true(mtime_ns(path) > 0);
    }
    /* one row per run, mean ± sd over the two seeds; the headline pairs CUT with a baseline */
    snprintf(path, sizeof path, "%s/report/tables.md", out);
    char *md = test_read_file(path, NULL);
    assert_non_null(md);
    assert_non_null(strstr(md, "| mixed-align-n |"));
    assert_non_null(strstr(md, "(n=2)"));
    assert_null(strstr(md, "(n=1)"));
    free(md);
    /* the paper's layouts: Table 2's rows by objective, Table 4's ablations */
    snprintf(path, sizeof path, "%s/report/table2.md", out);
    md = test_read_file(path, NULL);
    assert_non_null(md);
    assert_non_null(strstr(md, "| Forward Prediction |"));
    assert_non_null(strstr(md, "| DPO |"));
    free(md);
    snprintf(path, sizeof path, "%s/report/table4.md", out);
    md = test_read_file(path, NULL);
    assert_non_null(md);
    assert_non_null(strstr(md, "detection"));
    free(md);
    snprintf(path, sizeof path, "%s/report/headline.md", out);
    md = test_read_file(path, NULL);
    assert_non_null(md);
    assert_non_null(strstr(md, "| offline-cut-l1.1-a1 | offline-align-n | misconception % |"));
    assert_non_null(strstr(md, "pooled over seeds 1, 2"));
    free(md);

    /* the command over the same folder finds every stage done, redoes nothing and prints the
     * tables and the headline */
    snprintf(path, sizeof path, "%s/seed-2/runs/mixed-cut/model/model.safetensors", out);
    long trained = mtime_ns(path);
    snprintf(cmd, sizeof cmd, "'%s' demo --size small --seeds 1,2 --out '%s'", CUTKIT_BINARY, out);
    char *stdout_text = NULL, *stderr_text = NULL;
    assert_int_equal(test_run(cmd, &stdout_text, &stderr_text), 0);
    assert_int_equal(mtime_ns(path), trained);
    assert_non_null(strstr(stderr_text, "seed 2: done in "));
    assert_non_null(strstr(stderr_text, "cutkit demo: done in "));
    assert_non_null(strstr(stdout_text, "| warm-up |"));
    assert_non_null(strstr(stdout_text, "## Headline"));
    free(stdout_text);
    free(stderr_text);
    /* one seed alone: the stages in its own folder (all done), its report and headline */
    snprintf(cmd, sizeof cmd, "'%s' demo --size small --seed 2 --out '%s/seed-2'", CUTKIT_BINARY,
             out);
    assert_int_equal(test_run(cmd, &stdout_text, &stderr_text), 0);
    assert_null(strstr(stderr_text, "training "));
    assert_null(strstr(stderr_text, "responses by"));
    assert_non_null(strstr(stdout_text, "| offline-cut-l1.1-a1 |"));
    assert_null(strstr(stdout_text, "(n=2)"));
    assert_non_null(strstr(stdout_text, "pooled over seed 2 "));
    free(stdout_text);
    free(stderr_text);
    check_in_browser(out);
}

/* Bad flags are usage errors (exit 2) that name what is wrong. */
static void test_bad_flags(void **state) {
    const char *tmp = *state;
    const struct {
        const char *flags, *error;
    } cases[] = {
        {"--size medium", "--size expects full or small, got 'medium'"},
        {"--seed 1 --seeds 1,2", "give --seeds or --seed, not both"},
        {"--seeds 1,2,1", "seed 1 is listed twice in '1,2,1'"},
        {"--seeds 1,x", "seed 2 of '1,x': expected an integer from 0 to 2^53"},
        {"--seeds 1,-2", "seed 2 of '1,-2': expected an integer"},
        {"--seed 1,2", "--seed takes one seed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "'%s' demo %s --out '%s/demo'", CUTKIT_BINARY, cases[i].flags,
                 tmp);
        char *stderr_text = NULL;
        assert_int_equal(test_run(cmd, NULL, &stderr_text), 2);
        if (!strstr(stderr_text, cases[i].error)) fprintf(stderr, "got: %s", stderr_text);
        assert_non_null(strstr(stderr_text, cases[i].error));
        free(stderr_text);
    }
    uint64_t seeds[DEMO_MAX_SEEDS];
    CkError err = {{0}};
    assert_int_equal(demo_parse_seeds("3,1,9007199254740992", seeds, &err), 3);
    assert_true(seeds[0] == 3 && seeds[1] == 1 && seeds[2] == 9007199254740992ull);
    assert_int_equal(demo_parse_seeds("1,", seeds, &err), -1);
    assert_int_equal(demo_parse_seeds("9007199254740993", seeds, &err), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_small_demo_end_to_end, make_temp, remove_temp),
        cmocka_unit_test_setup_teardown(test_bad_flags, make_temp, remove_temp),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
