/* test_mc_mmlu_hellaswag.c — HellaSwag and MMLU in `eval mc`: per-item log-likelihoods against
 * PyTorch float64 (tests/fixtures/mc_mmlu_hellaswag_logliks.json, made by
 * make_mc_mmlu_hellaswag_logliks.py: MMLU in the current / leaderboard and 0.4.2 templates,
 * HellaSwag canonical and llama.cpp copy with the 0.4 and b281b09 few-shot draws, left
 * truncation included), the pipeline's results.json (per-subject entries, categories, the
 * macro and weighted averages, the llama.cpp variant's name and provenance, truncation
 * counts), the open-llm-v1 suite's summary, and bad input (file, line, field; nothing
 * written). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "datasets/hellaswag.h"
#include "eval/mc.h"
#include "eval/mc_mmlu.h"
#include "eval/mc_run.h"
#include "eval/mc_suite.h"
#include "formats/lm.h"
#include "test_util.h"

static char *dir;
static char sample[1024]; /* tests/fixtures/mmlu_sample */

static int setup(void **state) {
    (void)state;
    dir = test_temp_dir();
    snprintf(sample, sizeof sample, "%s/tests/fixtures/mmlu_sample", CUTKIT_SOURCE_DIR);
    return dir ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    test_remove_dir(dir);
    free(dir);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* against PyTorch */

/* Scores item `item` of items and compares choice `choice` with the fixture row o. */
static double check_row(LoglikScorer *sc, const LanguageModel *lm, const McItem *items,
                        const cJSON *o, McItemResult *r, int *last) {
    CkError err = {{0}};
    int item = cJSON_GetObjectItem(o, "item")->valueint,
        c = cJSON_GetObjectItem(o, "choice")->valueint;
    if (item != *last) {
        mc_item_result_free(r);
        assert_int_equal(mc_score_item(sc, &lm->tokenizer, &items[item], 1, r, &err), 0);
        *last = item;
    }
    double ll = cJSON_GetObjectItem(o, "ll")->valuedouble;
    assert_close(r->ll[c], ll, 1e-4);
    assert_int_equal(r->is_greedy[c], cJSON_IsTrue(cJSON_GetObjectItem(o, "is_greedy")));
    assert_int_equal(r->n_tokens[c], cJSON_GetObjectItem(o, "n_tokens")->valueint);
    assert_int_equal(r->truncated[c], cJSON_GetObjectItem(o, "truncated")->valueint);
    return fabs(r->ll[c] - ll);
}

/* The items of one fixture group (task, variant, shots) as cutkit builds them. */
static void build_group(const char *task, const char *variant, int shots, McItem **items, int *n,
                        McMmluData *m, HellaswagSet *hs, McDocSet *docs) {
    CkError err = {{0}};
    if (strncmp(task, "mmlu_", 5) == 0) {
        MmluPrompt p;
        assert_int_equal(mmlu_prompt_from_name(variant, &p, &err), 0);
        assert_int_equal(mc_mmlu_load(m, sample, task + 5, p, &err), 0);
        assert_int_equal(mc_mmlu_build_items(mc_task_get(MC_MMLU), m, shots, 0, items, n, &err), 0);
        return;
    }
    char path[1024];
    int llamacpp = strcmp(task, "hellaswag_llamacpp") == 0;
    if (llamacpp)
        snprintf(path, sizeof path, "%s/datasets/data/%s", CUTKIT_SOURCE_DIR,
                 HELLASWAG_LLAMACPP_FILE);
    else
        snprintf(path, sizeof path, "%s/tests/fixtures/hellaswag_canonical_sample.jsonl",
                 CUTKIT_SOURCE_DIR);
    assert_int_equal(hellaswag_load(hs, path, HELLASWAG_AUTO, &err), 0);
    assert_string_equal(hs->task, task);
    assert_int_equal(hellaswag_to_mc_docs(hs, docs, &err), 0);
    /* the fixture draws from the first 12 tasks of the copy */
    McDocSet view = {docs->docs, llamacpp ? 12 : docs->n};
    McBuildOptions b = {shots, 1234, 0,
                        strcmp(variant, "b281b09") == 0 ? MC_DRAW_B281B09 : MC_DRAW_V04, 1};
    assert_int_equal(mc_build_items_ex(mc_task_get(llamacpp ? MC_HELLASWAG_LLAMACPP : MC_HELLASWAG),
                                       &view, NULL, &b, items, n, &err),
                     0);
}

static void test_torch_fixture(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/mc_mmlu_hellaswag_logliks.json",
             CUTKIT_SOURCE_DIR);
    char *text = test_read_file(path, NULL);
    assert_non_null(text);
    cJSON *rows = cJSON_Parse(text);
    free(text);
    LanguageModel lm;
    CkError err = {{0}};
    assert_int_equal(lm_open(&lm, NULL, NULL, &err), 0);
    LoglikScorer sc;
    assert_int_equal(loglik_scorer_init(&sc, &lm.model, NULL, 8, 1, &err), 0);
    int n_rows = cJSON_GetArraySize(rows), checked = 0, truncated = 0;
    double worst = 0;
    for (int i = 0; i < n_rows;) {
        const cJSON *o = cJSON_GetArrayItem(rows, i);
        const char *task = cJSON_GetObjectItem(o, "task")->valuestring;
        const char *variant = cJSON_GetObjectItem(o, "variant")->valuestring;
        int shots = cJSON_GetObjectItem(o, "shots")->valueint, n = 0, last = -1;
        McItem *items = NULL;
        McMmluData m = {0};
        HellaswagSet hs = {0};
        McDocSet docs = {0};
        build_group(task, variant, shots, &items, &n, &m, &hs, &docs);
        McItemResult r = {0};
        for (; i < n_rows; i++) {
            o = cJSON_GetArrayItem(rows, i);
            if (strcmp(cJSON_GetObjectItem(o, "task")->valuestring, task) != 0 ||
                strcmp(cJSON_GetObjectItem(o, "variant")->valuestring, variant) != 0)
                break;
            double d = check_row(&sc, &lm, items, o, &r, &last);
            worst = d > worst ? d : worst;
            truncated += cJSON_GetObjectItem(o, "truncated")->valueint > 0;
            checked++;
        }
        mc_item_result_free(&r);
        mc_items_free(items, n);
        mc_mmlu_free(&m);
        hellaswag_free(&hs);
        benchmarks_free(&docs);
    }
    printf("%d MMLU/HellaSwag log-likelihoods (%d truncated) vs PyTorch float64: max |diff| "
           "%.2e\n",
           checked, truncated, worst);
    assert_int_equal(checked, n_rows);
    assert_true(truncated > 0);
    cJSON_Delete(rows);
    loglik_scorer_free(&sc);
    lm_close(&lm);
}

/* ---------------------------------------------------------------------------------------- */
/* the pipeline */

static cJSON *read_json(const char *out, const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", out, name);
    char *text = test_read_file(path, NULL);
    if (!text) return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

/* json at the path "a/b/c" (members), or NULL */
static const cJSON *at(const cJSON *j, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = strtok(buf, "/"); p && j; p = strtok(NULL, "/"))
        j = cJSON_GetObjectItemCaseSensitive(j, p);
    return j;
}

static double num(const cJSON *j, const char *path) {
    const cJSON *v = at(j, path);
    if (!cJSON_IsNumber(v)) fail_msg("%s: not a number", path);
    return v->valuedouble;
}

static void run_ok(McRunOptions *o, const char *out, McRunReport *rep) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, out);
    o->out = strdup(path);
    CkError err = {{0}};
    int rc = mc_run(o, rep, &err);
    if (rc != 0) fail_msg("mc_run: %s", err.msg);
}

/* MMLU on two subjects: per-subject entries, mmlu_stem, mmlu; b281b09 averages the subjects
 * unweighted, current weights them by size; both recorded. */
static void test_mmlu_pipeline(void **state) {
    (void)state;
    const char *versions[2] = {"b281b09", "current"};
    double macro[2], weighted[2];
    for (int v = 0; v < 2; v++) {
        McRunOptions o;
        mc_run_options_init(&o);
        o.tasks[o.n_tasks++] = mc_task_get(MC_MMLU);
        o.mmlu_data = sample;
        o.mmlu_subjects = "abstract_algebra,anatomy";
        o.shots = 2;
        o.harness_version = versions[v];
        McRunReport rep;
        run_ok(&o, v ? "mmlu-current" : "mmlu-b281b09", &rep);
        cJSON *j = read_json(o.out, "results.json");
        assert_non_null(j);
        double a = num(j, "results/mmlu_abstract_algebra/acc,none");
        double b = num(j, "results/mmlu_anatomy/acc,none");
        macro[v] = (a + b) / 2;
        weighted[v] = (6 * a + 2 * b) / 8;
        double all = num(j, "results/mmlu/acc,none");
        assert_close(all, v ? weighted[v] : macro[v], 1e-12);
        assert_close(num(j, "results/mmlu_stem/acc,none"), all, 1e-12);
        assert_null(at(j, "results/mmlu_humanities"));
        assert_close(num(j, "n-samples/mmlu_abstract_algebra/effective"), 6, 0);
        assert_close(num(j, "n-shot/mmlu_anatomy"), 2, 0);
        assert_string_equal(at(j, "config/mmlu_average/mmlu")->valuestring,
                            v ? "weighted" : "macro");
        assert_close(num(j, "config/mmlu_average/acc_macro"), macro[v], 1e-12);
        assert_int_equal(cJSON_GetArraySize(at(j, "group_subtasks/mmlu_stem")), 2);
        assert_true(num(j, "diagnostics/mmlu/requests_truncated") >= 0);
        assert_int_equal(rep.tasks[0].n_items, 8);
        cJSON_Delete(j);
        free((char *)o.out);
    }
    /* the same prompt bytes in both versions (no BOS in b281b09, BOS in current: the scores
     * may differ, the averages are each version's) */
    printf("MMLU sample: b281b09 macro %.4f weighted %.4f; current macro %.4f weighted %.4f\n",
           macro[0], weighted[0], macro[1], weighted[1]);
}

/* --limit is per subject for MMLU. */
static void test_mmlu_limit_per_subject(void **state) {
    (void)state;
    McRunOptions o;
    mc_run_options_init(&o);
    o.tasks[o.n_tasks++] = mc_task_get(MC_MMLU);
    o.mmlu_data = sample;
    o.mmlu_subjects = "abstract_algebra,anatomy";
    o.limit = 1;
    McRunReport rep;
    run_ok(&o, "mmlu-limit", &rep);
    assert_int_equal(rep.tasks[0].n_items, 2);
    cJSON *j = read_json(o.out, "results.json");
    assert_close(num(j, "n-samples/mmlu_anatomy/effective"), 1, 0);
    assert_close(num(j, "n-samples/mmlu_anatomy/original"), 2, 0);
    cJSON_Delete(j);
    free((char *)o.out);
}

/* The shipped copy is scored as hellaswag_llamacpp with its provenance; a canonical jsonl as
 * hellaswag, its sha256 compared with the published one. */
static void test_hellaswag_pipeline(void **state) {
    (void)state;
    McRunOptions o;
    mc_run_options_init(&o);
    o.tasks[o.n_tasks++] = mc_task_get(MC_HELLASWAG);
    o.limit = 3;
    o.shots = 2;
    McRunReport rep;
    run_ok(&o, "hs-copy", &rep);
    assert_string_equal(rep.tasks[0].task->name, "hellaswag_llamacpp");
    cJSON *j = read_json(o.out, "results.json");
    assert_non_null(at(j, "results/hellaswag_llamacpp/acc_norm,none"));
    assert_null(at(j, "results/hellaswag"));
    assert_true(cJSON_IsTrue(at(j, "config/hellaswag_data/sha256_matches_published")));
    assert_non_null(
        strstr(at(j, "config/hellaswag_data/fewshot_split")->valuestring, "validation"));
    assert_non_null(strstr(at(j, "config/hellaswag_data/variant")->valuestring, "llama.cpp"));
    cJSON_Delete(j);
    free((char *)o.out);

    char canon[1024];
    snprintf(canon, sizeof canon, "%s/tests/fixtures/hellaswag_canonical_sample.jsonl",
             CUTKIT_SOURCE_DIR);
    mc_run_options_init(&o);
    o.tasks[o.n_tasks++] = mc_task_get(MC_HELLASWAG);
    o.data = canon;
    run_ok(&o, "hs-canon", &rep);
    j = read_json(o.out, "results.json");
    assert_non_null(at(j, "results/hellaswag/acc_norm,none"));
    assert_false(cJSON_IsTrue(at(j, "config/hellaswag_data/sha256_matches_published")));
    assert_non_null(at(j, "config/hellaswag_data/warning"));
    assert_close(num(j, "n-samples/hellaswag/effective"), 8, 0);
    cJSON_Delete(j);
    free((char *)o.out);
}

/* --suite open-llm-v1: the four tasks at 25/10/5/0 shots under b281b09, and the summary file
 * whose values are results.json's at the keys it names. */
static void test_suite(void **state) {
    (void)state;
    McRunOptions o;
    mc_run_options_init(&o);
    CkError err = {{0}};
    assert_int_equal(mc_suite_apply(&o, "open-llm-v1", &err), 0);
    assert_int_equal(o.n_tasks, 4);
    o.mmlu_data = sample;
    o.mmlu_subjects = "abstract_algebra";
    o.limit = 2;
    McRunReport rep;
    run_ok(&o, "suite", &rep);
    cJSON *j = read_json(o.out, "results.json");
    cJSON *s = read_json(o.out, "open_llm_v1.json");
    assert_non_null(j);
    assert_non_null(s);
    assert_string_equal(at(j, "config/harness_version")->valuestring, "b281b09");
    assert_close(num(j, "n-shot/arc_challenge"), 25, 0);
    assert_close(num(j, "n-shot/hellaswag_llamacpp"), 10, 0);
    assert_close(num(j, "n-shot/mmlu_abstract_algebra"), 5, 0);
    assert_close(num(j, "n-shot/truthfulqa_mc2"), 0, 0);
    /* 25-shot ARC and 10-shot HellaSwag exceed stories260K's 512 positions */
    assert_true(num(j, "diagnostics/arc_challenge/requests_truncated") > 0);
    const cJSON *cols = at(s, "columns");
    assert_int_equal(cJSON_GetArraySize(cols), 4);
    const char *keys[4] = {"results/arc_challenge/acc_norm,none",
                           "results/hellaswag_llamacpp/acc_norm,none", "results/mmlu/acc,none",
                           "results/truthfulqa_mc2/acc,none"};
    double sum = 0;
    for (int i = 0; i < 4; i++) {
        const cJSON *c = cJSON_GetArrayItem(cols, i);
        assert_string_equal(cJSON_GetObjectItem(c, "key")->valuestring, keys[i]);
        double v = num(j, keys[i]);
        assert_close(cJSON_GetObjectItem(c, "value")->valuedouble, v, 0);
        sum += v;
    }
    assert_non_null(cJSON_GetObjectItem(cJSON_GetArrayItem(cols, 1), "variant"));
    assert_close(num(s, "average"), sum / 4, 1e-15);
    assert_close(rep.suite_average, sum / 4, 1e-15);
    cJSON_Delete(j);
    cJSON_Delete(s);
    free((char *)o.out);
    /* a suite with --task, an unknown suite */
    mc_run_options_init(&o);
    o.tasks[o.n_tasks++] = mc_task_get(MC_MMLU);
    assert_int_equal(mc_suite_apply(&o, "open-llm-v1", &err), -1);
    assert_string_equal(err.msg, "--suite and --task: give one");
    assert_int_equal(mc_suite_apply(&o, "open-llm-v2", &err), -1);
    assert_non_null(strstr(err.msg, "unknown suite 'open-llm-v2'"));
}

/* ---------------------------------------------------------------------------------------- */
/* bad input */

/* Writes an MMLU folder holding abstract_algebra with the given test CSV. */
static void mmlu_folder(const char *name, const char *test_csv, char *out, size_t cap) {
    char path[1400];
    snprintf(out, cap, "%s/%s", dir, name);
    mkdir(out, 0755);
    snprintf(path, sizeof path, "%s/dev", out);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/test", out);
    mkdir(path, 0755);
    const char *dev = "q1,a,b,c,d,A\nq2,a,b,c,d,B\n";
    snprintf(path, sizeof path, "%s/dev/abstract_algebra_dev.csv", out);
    assert_int_equal(test_write_file(path, dev, strlen(dev)), 0);
    snprintf(path, sizeof path, "%s/test/abstract_algebra_test.csv", out);
    assert_int_equal(test_write_file(path, test_csv, strlen(test_csv)), 0);
}

/* Runs MMLU on folder data and expects a failure containing want, with no results.json. */
static void expect_mmlu_failure(const char *data, const char *out_name, const char *want) {
    McRunOptions o;
    mc_run_options_init(&o);
    o.tasks[o.n_tasks++] = mc_task_get(MC_MMLU);
    o.mmlu_data = data;
    o.mmlu_subjects = "abstract_algebra";
    char out[1200], results[1300];
    snprintf(out, sizeof out, "%s/%s", dir, out_name);
    o.out = out;
    McRunReport rep;
    CkError err = {{0}};
    assert_int_equal(mc_run(&o, &rep, &err), -1);
    if (!strstr(err.msg, want)) fail_msg("expected '%s' in '%s'", want, err.msg);
    snprintf(results, sizeof results, "%s/results.json", out);
    struct stat st;
    assert_int_not_equal(stat(results, &st), 0);
}

static void test_bad_input(void **state) {
    (void)state;
    char data[1200];
    /* a row with 5 fields: file, the line where the row starts, the row */
    mmlu_folder("bad-cols", "q1,a,b,c,d,A\n\"multi\nline\",a,b,c,D\n", data, sizeof data);
    expect_mmlu_failure(data, "out-cols", "abstract_algebra_test.csv:2: row 2: expected 6 fields");
    /* an answer out of range: the field named */
    mmlu_folder("bad-label", "q1,a,b,c,d,A\nq2,a,b,c,d,E\n", data, sizeof data);
    expect_mmlu_failure(data, "out-label",
                        "abstract_algebra_test.csv:2: row 2: field 6 (answer): expected A, B, "
                        "C or D, found \"E\"");
    /* no MMLU data at all */
    expect_mmlu_failure(NULL, "out-none", "MMLU data: not shipped with cutkit");
    /* HellaSwag: a label out of range */
    char path[1200];
    snprintf(path, sizeof path, "%s/bad.jsonl", dir);
    const char *bad = "{\"activity_label\": \"A\", \"ctx_a\": \"x.\", \"ctx_b\": \"y\", "
                      "\"endings\": [\"a\", \"b\", \"c\", \"d\"], \"label\": 7, \"ind\": 1}\n";
    assert_int_equal(test_write_file(path, bad, strlen(bad)), 0);
    McRunOptions o;
    mc_run_options_init(&o);
    o.tasks[o.n_tasks++] = mc_task_get(MC_HELLASWAG);
    o.hellaswag_data = path;
    char out[1300];
    snprintf(out, sizeof out, "%s/out-hs", dir);
    o.out = out;
    McRunReport rep;
    CkError err = {{0}};
    assert_int_equal(mc_run(&o, &rep, &err), -1);
    assert_non_null(strstr(err.msg, "bad.jsonl:1: label: expected 0, 1, 2 or 3"));
    /* --log-samples is not built for these tasks: refused before anything runs */
    o.log_samples = 1;
    assert_int_equal(mc_run_options_check(&o, &err), -1);
    assert_non_null(strstr(err.msg, "--log-samples: not available for hellaswag"));
}

/* ---------------------------------------------------------------------------------------- */
/* the command */

static int cutkit(const char *args, char **errout) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' eval mc %s", dir, CUTKIT_BINARY, args);
    char *out = NULL;
    int st = test_run(cmd, &out, errout);
    free(out);
    return st;
}

static void test_cli(void **state) {
    (void)state;
    char *err = NULL, args[2048];
    snprintf(args, sizeof args,
             "--suite open-llm-v1 --limit 1 --threads 1 --mmlu-data '%s' --mmlu-subjects "
             "abstract_algebra --out cli-suite",
             sample);
    assert_int_equal(cutkit(args, &err), 0);
    assert_non_null(strstr(err, "lossy copy of HellaSwag"));
    assert_non_null(strstr(err, "(lm-evaluation-harness b281b09, no BOS)"));
    assert_non_null(strstr(err, "open-llm-v1 average "));
    assert_non_null(strstr(err, "cli-suite/open_llm_v1.json"));
    free(err);
    /* MMLU without its data: says where to get it (exit 1: the run failed) */
    assert_int_equal(cutkit("--task mmlu --limit 1 --out cli-none", &err), 1);
    assert_non_null(strstr(err, "MMLU data: not shipped with cutkit; give the hendrycks data"));
    free(err);
    assert_int_equal(cutkit("--suite open-llm-v1 --task arc_easy --out x", &err), 2);
    assert_non_null(strstr(err, "--suite and --task: give one"));
    free(err);
    assert_int_equal(cutkit("--suite open-llm-v9 --out x", &err), 2);
    assert_non_null(strstr(err, "--suite expects open-llm-v1"));
    free(err);
    assert_int_equal(cutkit("--out x", &err), 2);
    assert_non_null(strstr(err, "--task is required (or --suite open-llm-v1)"));
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torch_fixture),
        cmocka_unit_test(test_mmlu_pipeline),
        cmocka_unit_test(test_mmlu_limit_per_subject),
        cmocka_unit_test(test_hellaswag_pipeline),
        cmocka_unit_test(test_suite),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_cli),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
