/* test_sweep.c — sweep_run (train/sweep.h): a grid of trainings from one spec, resumable,
 * summarised; the trainings are `cutkit train` children of the built binary. `cutkit sweep`
 * itself is checked for its exit codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "reports/groups.h"
#include "tests/test_util.h"
#include "train/sweep.h"

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

/* In dir: a corpus of repeated lines and a 2 x 1 grid over the learning rate, 2 updates each. */
static void make_sweep(const char *dir, char *spec, size_t size) {
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
}

/* Runs the sweep of spec into out; returns sweep_run's result with its log in *log. */
static int run_sweep(const char *spec_path, const char *out, SweepResult *r, char **log) {
    CkError err = {{0}};
    SweepSpec spec;
    assert_int_equal(sweep_spec_load(&spec, spec_path, &err), 0);
    SweepOptions o;
    sweep_options_init(&o);
    o.out = out;
    o.runner.binary = CUTKIT_BINARY;
    size_t len;
    o.log = open_memstream(log, &len);
    assert_non_null(o.log);
    int rc = sweep_run(&o, &spec, r, &err);
    fclose(o.log);
    sweep_spec_free(&spec);
    if (rc != 0) fprintf(stderr, "sweep_run: %s\n", err.msg);
    return rc;
}

static long mtime_ns(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    return (long)st.st_mtim.tv_sec * 1000000000L + st.st_mtim.tv_nsec;
}

static void test_grid_runs_and_resumes(void **state) {
    const char *dir = *state;
    char spec[1024], out[1100], path[1300], steps0[1300];
    make_sweep(dir, spec, sizeof spec);
    snprintf(out, sizeof out, "%s/sweep", dir);
    char *log = NULL;
    SweepResult r;
    assert_int_equal(run_sweep(spec, out, &r, &log), 0);
    assert_int_equal(r.points, 2);
    assert_int_equal(r.failed, 0);
    free(log);
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
    assert_int_equal(run_sweep(spec, out, &r, &log), 0);
    assert_non_null(strstr(log, "point 1/2 lr=0.0001: done, skipped"));
    assert_non_null(strstr(log, "point 2/2 lr=0.001: running"));
    free(log);
    assert_int_equal(mtime_ns(steps0), before);
    assert_true(mtime_ns(path) > 0);
}

/* A point whose training fails is reported and counted; the others go on, and the summary
 * marks it failed, with empty losses (never zeros). */
static void test_failed_point_lets_the_others_go_on(void **state) {
    const char *dir = *state;
    char spec[1024], out[1100], path[1300];
    snprintf(spec, sizeof spec, "%s/spec.json", dir);
    snprintf(out, sizeof out, "%s/sweep", dir);
    /* the first point's data does not exist: its training fails */
    snprintf(path, sizeof path, "%s/corpus.txt", dir);
    const char *line = "Tom had a red ball.\n";
    assert_int_equal(test_write_file(path, line, strlen(line)), 0);
    char text[2048];
    snprintf(text, sizeof text,
             "{\"train\": {\"steps\": 1, \"batch-size\": 1, \"seq-len\": 16, \"warmup\": 0,\n"
             " \"threads\": 1},\n"
             " \"grid\": {\"data\": [\"%s/absent.txt\", \"%s\"]}}\n",
             dir, path);
    assert_int_equal(test_write_file(spec, text, strlen(text)), 0);
    char *log = NULL;
    SweepResult r;
    assert_int_equal(run_sweep(spec, out, &r, &log), 0);
    assert_int_equal(r.failed, 1);
    assert_non_null(strstr(log, "'cutkit train' exited with status"));
    assert_non_null(strstr(log, "failed; the others go on"));
    free(log);
    snprintf(path, sizeof path, "%s/summary.csv", out);
    char *csv = test_read_file(path, NULL);
    assert_non_null(csv);
    assert_non_null(strstr(csv, ",failed,0,,,,\n"));
    assert_non_null(strstr(csv, ",done,1,"));
    free(csv);
}

/* Two grid values that give one folder name are refused when the spec is loaded (the library
 * and the command, as a usage error): one point would train, the other report its numbers. */
static void test_points_have_their_own_folders(void **state) {
    const char *dir = *state;
    char spec[1024], cmd[4096];
    snprintf(spec, sizeof spec, "%s/spec.json", dir);
    const char *text = "{\"train\": {\"steps\": 1},\n"
                       " \"grid\": {\"lr\": [0.1, 0.2], \"template\": [\"world/template.json\", "
                       "\"world_template.json\"]}}";
    assert_int_equal(test_write_file(spec, text, strlen(text)), 0);
    SweepSpec s;
    CkError err = {{0}};
    assert_int_equal(sweep_spec_load(&s, spec, &err), -1);
    assert_non_null(strstr(err.msg, "points 1 and 3 would share the folder "
                                    "'lr=0.1,template=world_template.json'"));
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s' --out '%s/sweep'", CUTKIT_BINARY, spec, dir);
    char *stderr_text = NULL;
    assert_int_equal(test_run(cmd, NULL, &stderr_text), 2);
    assert_non_null(strstr(stderr_text, "would share the folder"));
    free(stderr_text);
    /* values that differ only after the 127 characters a folder name keeps */
    char long_spec[1024];
    char a[200], b[200];
    memset(a, 'x', 150);
    a[150] = '\0';
    memcpy(b, a, 151);
    a[140] = 'a';
    b[140] = 'b';
    snprintf(long_spec, sizeof long_spec, "{\"grid\": {\"template\": [\"%s\", \"%s\"]}}", a, b);
    assert_int_equal(test_write_file(spec, long_spec, strlen(long_spec)), 0);
    assert_int_equal(sweep_spec_load(&s, spec, &err), -1);
    assert_non_null(strstr(err.msg, "points 1 and 2 would share the folder"));
}

/* A dry run lists the points, runs nothing, writes nothing, and says so. */
static void test_dry_run_says_nothing_ran(void **state) {
    const char *dir = *state;
    char spec_path[1024], out[1100], path[1300];
    make_sweep(dir, spec_path, sizeof spec_path);
    snprintf(out, sizeof out, "%s/sweep", dir);
    CkError err = {{0}};
    SweepSpec spec;
    assert_int_equal(sweep_spec_load(&spec, spec_path, &err), 0);
    SweepOptions o;
    sweep_options_init(&o);
    o.out = out;
    o.dry_run = 1;
    o.runner.binary = CUTKIT_BINARY;
    char *log = NULL;
    size_t len;
    o.log = open_memstream(&log, &len);
    SweepResult r;
    assert_int_equal(sweep_run(&o, &spec, &r, &err), 0);
    fclose(o.log);
    sweep_spec_free(&spec);
    assert_non_null(strstr(log, "point 1/2 lr=0.0001: to do"));
    assert_non_null(strstr(log, "dry run: nothing was trained or evaluated"));
    free(log);
    assert_int_equal(r.failed, 0);
    snprintf(path, sizeof path, "%s/summary.csv", out);
    assert_true(mtime_ns(path) < 0);
    assert_true(mtime_ns(out) < 0);
}

static void test_bad_spec_is_refused(void **state) {
    const char *dir = *state;
    char spec[1024], out[1100], cmd[4096];
    snprintf(spec, sizeof spec, "%s/spec.json", dir);
    snprintf(out, sizeof out, "%s/sweep", dir);
    SweepSpec s;
    CkError err = {{0}};
    const char *bad = "{\"train\": {\"lr\": 0.1}, \"grid\": {\"lr\": [0.2]}}";
    assert_int_equal(test_write_file(spec, bad, strlen(bad)), 0);
    assert_int_equal(sweep_spec_load(&s, spec, &err), -1);
    assert_non_null(strstr(err.msg, "\"lr\" is both in \"train\" and in \"grid\""));
    /* the command refuses it as a usage error */
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s' --out '%s'", CUTKIT_BINARY, spec, out);
    char *stderr_text = NULL;
    assert_int_equal(test_run(cmd, NULL, &stderr_text), 2);
    assert_non_null(strstr(stderr_text, "cutkit sweep: "));
    assert_non_null(strstr(stderr_text, "\"lr\" is both in \"train\" and in \"grid\""));
    free(stderr_text);
    const char *empty = "{\"grid\": {\"alpha\": []}}";
    assert_int_equal(test_write_file(spec, empty, strlen(empty)), 0);
    assert_int_equal(sweep_spec_load(&s, spec, &err), -1);
    assert_non_null(strstr(err.msg, "grid \"alpha\": expected a non-empty array"));
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s'", CUTKIT_BINARY, spec);
    assert_int_equal(test_run(cmd, NULL, NULL), 2);
}

/* "seeds": every grid point once per seed, seed by seed, in folders named "...,seed=S" whose
 * config.json files differ only in the seed, so that the report groups them (one row per grid
 * point); {seed} in an evaluate command is the point's seed. */
static void test_seeds_are_an_axis(void **state) {
    const char *dir = *state;
    char corpus[1024], spec[1024], out[1100], path[1300];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    const char *line = "Tom had a red ball. He liked to play with it.\n";
    assert_int_equal(test_write_file(corpus, line, strlen(line)), 0);
    snprintf(spec, sizeof spec, "%s/spec.json", dir);
    snprintf(out, sizeof out, "%s/sweep", dir);
    /* --threads {seed}: a literal "{seed}" would fail the evaluation (not a number) */
    char text[2048];
    snprintf(text, sizeof text,
             "{\"train\": {\"data\": \"%s\", \"steps\": 1, \"batch-size\": 1, \"seq-len\": 16, "
             "\"warmup\": 0, \"threads\": 1},\n \"grid\": {\"lr\": [0.0001, 0.001]},\n"
             " \"seeds\": [2, 1],\n"
             " \"evaluate\": [[\"score\", \"--model\", \"{run}/model\", \"--text\", \"Tom\", "
             "\"--threads\", \"{seed}\"]]}\n",
             corpus);
    assert_int_equal(test_write_file(spec, text, strlen(text)), 0);
    char *log = NULL;
    SweepResult r;
    assert_int_equal(run_sweep(spec, out, &r, &log), 0);
    assert_int_equal(r.points, 4);
    assert_int_equal(r.failed, 0);
    /* the seeds are the slowest axis, in the order listed */
    assert_non_null(strstr(log, "point 1/4 lr=0.0001,seed=2: running"));
    assert_non_null(strstr(log, "point 2/4 lr=0.001,seed=2: running"));
    assert_non_null(strstr(log, "point 4/4 lr=0.001,seed=1: running"));
    free(log);
    snprintf(path, sizeof path, "%s/summary.csv", out);
    char *csv = test_read_file(path, NULL);
    assert_non_null(csv);
    assert_non_null(
        strstr(csv, "point,group,lr,seed,state,steps,loss,loss_mle,loss_ul,flagged_fraction\n"));
    assert_non_null(strstr(csv, "\"lr=0.001,seed=1\",lr=0.001,0.001,1,done,1,"));
    free(csv);
    /* each run's config.json carries its seed; the report groups the two seeds of each lr */
    const char *names[4] = {"lr=0.0001,seed=2", "lr=0.001,seed=2", "lr=0.0001,seed=1",
                            "lr=0.001,seed=1"};
    RunDir runs[4];
    CkError err = {{0}};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", out, names[i]);
        assert_int_equal(rundir_open(&runs[i], path, &err), 0);
        snprintf(path, sizeof path, "%s/%s/evaluate-0.done", out, names[i]);
        assert_true(mtime_ns(path) > 0);
    }
    assert_true(rundir_config_number(&runs[0], "seed") == 2);
    assert_true(rundir_config_number(&runs[3], "seed") == 1);
    RunGroups g;
    assert_int_equal(run_groups_build(&g, runs, 4, 0, &err), 0);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.groups[0].label, "lr=0.0001");
    assert_int_equal(g.groups[0].n, 2);
    assert_int_equal(g.groups[0].members[1], 2);
    assert_string_equal(g.groups[1].label, "lr=0.001");
    run_groups_free(&g);
    for (int i = 0; i < 4; i++) rundir_close(&runs[i]);
}

/* A seed beside "seeds", a seed twice and a seed that is not an integer are refused; a spec
 * with seeds needs no grid. */
static void test_bad_seeds_are_refused(void **state) {
    const char *dir = *state;
    char spec[1024];
    snprintf(spec, sizeof spec, "%s/spec.json", dir);
    const struct {
        const char *text, *error;
    } cases[] = {
        {"{\"train\": {\"seed\": 1}, \"seeds\": [1, 2]}",
         "\"seed\" is both in \"train\" and given by \"seeds\""},
        {"{\"grid\": {\"seed\": [1]}, \"seeds\": [1, 2]}",
         "\"seed\" is both in \"grid\" and given by \"seeds\""},
        {"{\"grid\": {\"lr\": [1]}, \"seeds\": [1, 2, 1]}", "\"seeds\": 1 is listed twice"},
        {"{\"grid\": {\"lr\": [1]}, \"seeds\": [1, 2.5]}",
         "\"seeds\" item 2: expected an integer from 0 to 2^53"},
        {"{\"grid\": {\"lr\": [1]}, \"seeds\": [\"1\"]}",
         "\"seeds\" item 1: expected an integer from 0 to 2^53"},
        {"{\"grid\": {\"lr\": [1]}, \"seeds\": []}", "\"seeds\": expected a non-empty array"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(test_write_file(spec, cases[i].text, strlen(cases[i].text)), 0);
        SweepSpec s;
        CkError err = {{0}};
        assert_int_equal(sweep_spec_load(&s, spec, &err), -1);
        if (!strstr(err.msg, cases[i].error)) fprintf(stderr, "got: %s\n", err.msg);
        assert_non_null(strstr(err.msg, cases[i].error));
    }
    const char *no_grid = "{\"train\": {\"steps\": 1}, \"seeds\": [1, 2, 3]}";
    assert_int_equal(test_write_file(spec, no_grid, strlen(no_grid)), 0);
    SweepSpec s;
    CkError err = {{0}};
    assert_int_equal(sweep_spec_load(&s, spec, &err), 0);
    assert_int_equal(s.points, 3);
    sweep_spec_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_grid_runs_and_resumes, make_temp, remove_temp),
        cmocka_unit_test_setup_teardown(test_failed_point_lets_the_others_go_on, make_temp,
                                        remove_temp),
        cmocka_unit_test_setup_teardown(test_bad_spec_is_refused, make_temp, remove_temp),
        cmocka_unit_test_setup_teardown(test_points_have_their_own_folders, make_temp, remove_temp),
        cmocka_unit_test_setup_teardown(test_dry_run_says_nothing_ran, make_temp, remove_temp),
        cmocka_unit_test_setup_teardown(test_seeds_are_an_axis, make_temp, remove_temp),
        cmocka_unit_test_setup_teardown(test_bad_seeds_are_refused, make_temp, remove_temp),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
