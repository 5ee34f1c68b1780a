/* test_mc.c — multiple-choice evaluation: metrics on hand-computed cases, Python's few-shot
 * sampler, the prompts and their stored hash, the loaders' errors, log-likelihoods against the
 * PyTorch fixture (tests/fixtures/mc_logliks.json), the pipeline mc_run (limit, resume after a
 * killed run, a refused resume, the whole ARC-Challenge and TruthfulQA runs when not built with
 * sanitizers), and the `cutkit eval mc` binary's flags and exit codes. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/test_util.h"
#include "util/pyrandom.h"

#include "datasets/benchmarks.h"
#include "eval/harness.h"
#include "eval/mc.h"
#include "eval/mc_resume.h"
#include "eval/mc_run.h"
#include "eval/pyjson.h"
#include "eval/results.h"
#include "formats/lm.h"
#include "util/fileio.h"
#include "util/threads.h"
#include "util/utf8.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static char *dir;

static int setup(void **state) {
    (void)state;
    dir = test_temp_dir();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    int rc = test_remove_dir(dir);
    free(dir);
    return rc;
}

static const char *data_file(const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/datasets/data/%s", CUTKIT_SOURCE_DIR, name);
    return path;
}

/* ---------------------------------------------------------------------------------------- */
/* metrics */

static McItemResult hand_result(int n, const double *ll, const char *const *texts, const int *toks,
                                const int *labels, int gold) {
    McItemResult r;
    CkError err = {{0}};
    assert_int_equal(mc_item_result_alloc(&r, n, 0, &err), 0);
    r.gold = gold;
    for (int i = 0; i < n; i++) {
        r.ll[i] = ll[i];
        r.n_chars[i] = (int)utf8_length(texts[i]);
        r.n_bytes[i] = (int)strlen(texts[i]);
        r.n_tokens[i] = toks[i];
        r.labels[i] = labels ? labels[i] : i == gold;
    }
    return r;
}

static void test_argmax_ties_first(void **state) {
    (void)state;
    double v[] = {-3.0, -1.0, -1.0, -2.0};
    assert_int_equal(mc_argmax(v, 4), 1);
    double w[] = {-1.0, -1.0};
    assert_int_equal(mc_argmax(w, 2), 0);
    /* a tie between gold (index 2) and an earlier choice counts as wrong, like np.argmax */
    const char *t[] = {"a", "b", "c"};
    int k[] = {1, 1, 1};
    double ll[] = {-2.0, -5.0, -2.0};
    McItemResult r = hand_result(3, ll, t, k, NULL, 2);
    McItemScores s;
    mc_item_scores(&r, &s);
    assert_true(s.acc == 0.0 && s.acc_norm == 0.0);
    r.gold = 0;
    mc_item_scores(&r, &s);
    assert_true(s.acc == 1.0);
    mc_item_result_free(&r);
}

/* acc_norm divides by characters (code points), acc_bytes by UTF-8 bytes, acc_per_token by
 * tokens: "éé" is 2 characters, 4 bytes. ll/chars: -3/2 = -1.5 < -4/3: choice 1 wins;
 * ll/bytes: -3/4 = -0.75 > -4/3: choice 0 wins; ll/tokens: -3/1 < -4/4: choice 1; raw ll:
 * choice 0. */
static void test_norms_chars_bytes_tokens(void **state) {
    (void)state;
    const char *t[] = {"\xc3\xa9\xc3\xa9", "abc"};
    assert_int_equal(utf8_length(t[0]), 2);
    int k[] = {1, 4};
    double ll[] = {-3.0, -4.0};
    McItemResult r = hand_result(2, ll, t, k, NULL, 0);
    assert_int_equal(r.n_bytes[0], 4);
    McItemScores s;
    mc_item_scores(&r, &s);
    assert_true(s.acc == 1.0);
    assert_true(s.acc_norm == 0.0);
    assert_true(s.acc_bytes == 1.0);
    assert_true(s.acc_per_token == 0.0);
    mc_item_result_free(&r);
}

/* MC2 = normalised probability of the true answers: p = (0.5, 0.3, 0.2), true {0, 2} -> 0.7;
 * unnormalised and tiny probabilities give the same mass (stable in double). */
static void test_mc2_known(void **state) {
    (void)state;
    double ll[] = {log(0.5), log(0.3), log(0.2)};
    int lab[] = {1, 0, 1};
    assert_close(mc_mc2(ll, lab, 3), 0.7, 1e-12);
    double ll2[] = {log(0.5) - 2000, log(0.3) - 2000, log(0.2) - 2000};
    assert_close(mc_mc2(ll2, lab, 3), 0.7, 1e-12);
    double ll3[] = {-1000.0, -1001.0};
    int lab3[] = {1, 0};
    assert_close(mc_mc2(ll3, lab3, 2), 1.0 / (1.0 + exp(-1.0)), 1e-12);
}

/* sd_{n-1}/sqrt(n): for 0/1 data sqrt(p(1-p)/(n-1)); for MC2 values by hand. */
static void test_stderr(void **state) {
    (void)state;
    double x[] = {1, 0, 1, 1}, m, se;
    mc_mean_stderr(x, 4, &m, &se);
    assert_close(m, 0.75, 1e-15);
    assert_close(se, sqrt(0.75 * 0.25 / 3), 1e-15);
    double y[] = {0.2, 0.4, 0.9};
    mc_mean_stderr(y, 3, &m, &se);
    /* mean 0.5; squared deviations .09 + .01 + .16 = .26; sd = sqrt(.13); / sqrt(3) */
    assert_close(m, 0.5, 1e-15);
    assert_close(se, sqrt(0.13) / sqrt(3.0), 1e-15);
    mc_mean_stderr(y, 1, &m, &se);
    assert_true(isnan(se));
    /* mc_metrics over items: acc of 3 items (1, 0, 1) */
    const char *t[] = {"a", "bb"};
    int k[] = {1, 1};
    double l1[] = {-1, -2}, l2[] = {-3, -2};
    McItemResult r[3] = {hand_result(2, l1, t, k, NULL, 0), hand_result(2, l2, t, k, NULL, 0),
                         hand_result(2, l1, t, k, NULL, 0)};
    McMetrics mm;
    mc_metrics(mc_task_find("arc_challenge"), MC2_LABELS, r, 3, &mm);
    assert_int_equal(mm.n_metrics, 4);
    assert_string_equal(mm.m[0].name, "acc");
    assert_close(mm.m[0].value, 2.0 / 3, 1e-15);
    assert_close(mm.m[0].stderr_, sqrt((2.0 / 3) * (1.0 / 3) / 2), 1e-15);
    mc_metrics(mc_task_find("truthfulqa_mc2"), MC2_LABELS, r, 3, &mm);
    assert_int_equal(mm.n_metrics, 1);
    double p1 = 1 / (1 + exp(-1.0)), p2 = exp(-1.0) / (1 + exp(-1.0));
    assert_close(mm.m[0].value, (2 * p1 + p2) / 3, 1e-12);
    for (int i = 0; i < 3; i++) mc_item_result_free(&r[i]);
}

/* The harness's two MC2 formulas on the label patterns of TruthfulQA #164 (1,1,1,0,1,0,0,0,0)
 * and #607 (1,1,0,1,0,0,0), by hand: with p_i the normalised probabilities, 3.0 sums the
 * choices labelled 1, 2.0 only those before the first 0. */
static void test_mc2_variants(void **state) {
    (void)state;
    double p164[] = {0.05, 0.10, 0.15, 0.20, 0.25, 0.05, 0.08, 0.07, 0.05}, ll164[9];
    int l164[] = {1, 1, 1, 0, 1, 0, 0, 0, 0};
    for (int i = 0; i < 9; i++) ll164[i] = log(p164[i]) - 40.0; /* unnormalised */
    assert_close(mc_mc2_variant(ll164, l164, 9, MC2_LABELS), 0.05 + 0.10 + 0.15 + 0.25, 1e-12);
    assert_close(mc_mc2_variant(ll164, l164, 9, MC2_BEFORE_FIRST_FALSE), 0.05 + 0.10 + 0.15, 1e-12);
    assert_close(mc_mc2(ll164, l164, 9), 0.55, 1e-12);
    double p607[] = {0.3, 0.1, 0.2, 0.25, 0.05, 0.05, 0.05}, ll607[7];
    int l607[] = {1, 1, 0, 1, 0, 0, 0};
    for (int i = 0; i < 7; i++) ll607[i] = log(p607[i]);
    assert_close(mc_mc2_variant(ll607, l607, 7, MC2_LABELS), 0.65, 1e-12);
    assert_close(mc_mc2_variant(ll607, l607, 7, MC2_BEFORE_FIRST_FALSE), 0.4, 1e-12);
    /* contiguous true answers (most questions): the same value; no false answer at all: 1 */
    int l_front[] = {1, 1, 0, 0, 0, 0, 0}, l_all[] = {1, 1, 1};
    assert_close(mc_mc2_variant(ll607, l_front, 7, MC2_BEFORE_FIRST_FALSE),
                 mc_mc2_variant(ll607, l_front, 7, MC2_LABELS), 1e-15);
    assert_close(mc_mc2_variant(ll607, l_all, 3, MC2_BEFORE_FIRST_FALSE), 1.0, 1e-15);
}

/* MC1 reports acc alone (the harness's truthfulqa_mc1 metric_list); ARC the harness's acc and
 * acc_norm first; mc_item_metric is the per-sample value the harness logs. */
static void test_metric_lists(void **state) {
    (void)state;
    const char *t[] = {"a", "bb"};
    int k[] = {1, 1};
    double l1[] = {-1, -2}, l2[] = {-3, -2};
    McItemResult r[2] = {hand_result(2, l1, t, k, NULL, 0), hand_result(2, l2, t, k, NULL, 0)};
    McMetrics mm;
    mc_metrics(mc_task_find("truthfulqa_mc1"), MC2_LABELS, r, 2, &mm);
    assert_int_equal(mm.n_metrics, 1);
    assert_string_equal(mm.m[0].name, "acc");
    assert_close(mm.m[0].value, 0.5, 1e-15);
    const char *const *names;
    assert_int_equal(mc_harness_metrics(mc_task_find("truthfulqa_mc1"), &names), 1);
    assert_int_equal(mc_harness_metrics(mc_task_find("arc_easy"), &names), 2);
    assert_string_equal(names[1], "acc_norm");
    const McTask *mc1 = mc_task_find("truthfulqa_mc1"), *mc2 = mc_task_find("truthfulqa_mc2");
    assert_true(mc_item_metric(mc1, MC2_LABELS, &r[0], "acc") == 1.0);
    assert_true(isnan(mc_item_metric(mc1, MC2_LABELS, &r[0], "acc_norm")));
    assert_close(mc_item_metric(mc2, MC2_LABELS, &r[1], "acc"), 1 / (1 + exp(1.0)), 1e-15);
    for (int i = 0; i < 2; i++) mc_item_result_free(&r[i]);
}

/* The versions: the flag's choices are the table's names in order; BOS and MC2 change where
 * the harness's code changed them; an unknown name is one line naming the flag and the
 * known versions. */
static void test_harness_versions(void **state) {
    (void)state;
    char names[512] = "";
    for (int i = 0; i < harness_version_count(); i++) {
        if (i) strcat(names, "|");
        strcat(names, harness_version_at(i)->name);
    }
    assert_string_equal(names, HARNESS_VERSION_CHOICES);
    const HarnessVersion *v;
    CkError err = {{0}};
    assert_int_equal(harness_version_parse(NULL, &v, &err), 0);
    assert_string_equal(v->name, "current");
    assert_int_equal(harness_version_parse("0.4.13", &v, &err), -1);
    assert_string_equal(
        err.msg, "--harness-version: unknown version '0.4.13' (known: b281b09, 0.4.0, 0.4.1, "
                 "0.4.2, 0.4.3, 0.4.4, 0.4.5, 0.4.6, 0.4.7, 0.4.8, 0.4.9, "
                 "0.4.9.1, 0.4.9.2, 0.4.10, 0.4.11, 0.4.12, current)");
    assert_int_equal(harness_version_find("0.4.8")->mc2, MC2_BEFORE_FIRST_FALSE);
    assert_int_equal(harness_version_find("0.4.9")->mc2, MC2_LABELS);
    const McTask *mc2 = mc_task_find("truthfulqa_mc2");
    assert_true(harness_task_version(harness_version_find("0.4.8"), mc2) == 2.0);
    assert_true(harness_task_version(harness_version_find("0.4.9"), mc2) == 3.0);
    assert_true(harness_task_version(v, mc_task_find("truthfulqa_mc1")) == 2.0);
    assert_true(harness_task_version(v, mc_task_find("arc_easy")) == 1.0);
    /* the embedded llama2.c tokenizer adds BOS by default: from 0.4.9.2 on, BOS */
    LanguageModel lm;
    assert_int_equal(lm_open(&lm, NULL, NULL, &err), 0);
    int bos = -1;
    assert_int_equal(harness_bos(harness_version_find("0.4.9.1"), &lm.tokenizer, &bos, &err), 0);
    assert_int_equal(bos, 0);
    assert_int_equal(harness_bos(harness_version_find("0.4.9.2"), &lm.tokenizer, &bos, &err), 0);
    assert_int_equal(bos, 1);
    assert_int_equal(harness_bos(harness_version_find("0.4.0"), &lm.tokenizer, &bos, &err), 0);
    assert_int_equal(bos, 0);
    lm_close(&lm);
}

/* From 0.4.9.2 the BOS is the tokenizer's default: TinyLlama's tokenizer.json adds it (its
 * template, or add_bos_token with an EOS after), add_bos_token false takes it away. */
static void test_harness_bos_hf(void **state) {
    (void)state;
    char *path = test_shared_path("models/tokenizers/tinyllama-1.1b-chat-v1.0/tokenizer.json");
    if (!path) skip();
    size_t size;
    char *json = test_read_file(path, &size);
    assert_non_null(json);
    const char *configs[] = {NULL, "{\"add_bos_token\": false}",
                             "{\"add_bos_token\": true, \"add_eos_token\": true, "
                             "\"eos_token\": \"</s>\"}"};
    const int want[] = {1, 0, 1};
    const HarnessVersion *now = harness_version_find("0.4.9.2"),
                         *old = harness_version_find("0.4.8");
    for (int i = 0; i < 3; i++) {
        Tokenizer t;
        CkError err = {{0}};
        assert_int_equal(tokenizer_load_hf(&t, json, size, configs[i], "tokenizer.json", &err), 0);
        int bos = -1;
        assert_int_equal(harness_bos(now, &t, &bos, &err), 0);
        assert_int_equal(bos, want[i]);
        assert_int_equal(harness_bos(old, &t, &bos, &err), 0);
        assert_int_equal(bos, 0);
        tokenizer_free(&t);
    }
    free(json);
    free(path);
}

/* Python's repr(float) and json.dumps's text, against python3 itself. */
static void test_pyjson(void **state) {
    (void)state;
    static const double V[] = {0.0,
                               -0.0,
                               1.0,
                               -2.5,
                               0.1,
                               1.0 / 3,
                               1e16,
                               9.999e15,
                               1234567890123456.0,
                               1e17,
                               1e-4,
                               1e-5,
                               0.00012345,
                               123.456,
                               5e-324,
                               1.7976931348623157e308,
                               -141.07302686783618,
                               2.2250738585072014e-308,
                               0.3333684251295865,
                               100.0,
                               1e22,
                               4.35e-6};
    /* the edge cases above, then doubles of random bit patterns and random log-likelihoods */
    enum { N_RANDOM = 400 };
    const int n_fixed = (int)(sizeof V / sizeof V[0]), n = n_fixed + N_RANDOM;
    double W[sizeof V / sizeof V[0] + N_RANDOM];
    memcpy(W, V, sizeof V);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = n_fixed; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t bits = x ^ (x >> 29);
        memcpy(&W[i], &bits, sizeof bits);
        if (!isfinite(W[i]) || i % 2) W[i] = -300.0 * (double)(x >> 11) / 9007199254740992.0;
    }
    /* the reference program, written to a file (no shell quoting) */
    StrBuf prog = {0};
    strbuf_puts(&prog, "import json\nfor h in '");
    for (int i = 0; i < n; i++) strbuf_printf(&prog, "%s%a", i ? " " : "", W[i]);
    strbuf_puts(&prog, "'.split(): print(repr(float.fromhex(h)))\n"
                       "d = {'a': [1, 2.5, 'x\\u00e9\\n\"\\u0001'], 'b': {}, 'c': [], 'd': None, "
                       "'e': True}\n"
                       "print(json.dumps(d, ensure_ascii=False))\n"
                       "print(json.dumps(d, indent=2, ensure_ascii=False))\n");
    char path[900], cmd[1024];
    snprintf(path, sizeof path, "%s/pyjson_ref.py", dir);
    assert_int_equal(test_write_file(path, prog.p, prog.n), 0);
    strbuf_free(&prog);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s'", path);
    char *out = NULL;
    if (access("/usr/bin/python3", X_OK) != 0 || test_run(cmd, &out, NULL) != 0) {
        free(out);
        test_missing_reference("/usr/bin/python3 (the reference for repr and json.dumps)");
        skip();
    }
    StrBuf mine = {0};
    char text[32];
    for (int i = 0; i < n; i++) {
        pyjson_float_repr(W[i], text);
        strbuf_printf(&mine, "%s\n", text);
    }
    cJSON *d = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(d, "a");
    cJSON_AddItemToArray(a, cJSON_CreateNumber(1));
    cJSON_AddItemToArray(a, pyjson_float(2.5));
    cJSON_AddItemToArray(a, cJSON_CreateString("x\xc3\xa9\n\"\x01"));
    cJSON_AddObjectToObject(d, "b");
    cJSON_AddArrayToObject(d, "c");
    cJSON_AddNullToObject(d, "d");
    cJSON_AddTrueToObject(d, "e");
    assert_int_equal(pyjson_dump(d, -1, &mine), 0);
    strbuf_puts(&mine, "\n");
    assert_int_equal(pyjson_dump(d, 2, &mine), 0);
    strbuf_puts(&mine, "\n");
    assert_string_equal(mine.p, out);
    cJSON_Delete(d);
    strbuf_free(&mine);
    free(out);
}

/* ---------------------------------------------------------------------------------------- */
/* Python's random, the few-shot prompts */

static void test_pyrandom_matches_python(void **state) {
    (void)state;
    char *out = NULL;
    int st = test_run("python3 -c \"import random\n"
                      "r = random.Random(1234)\n"
                      "print(r.sample(range(1119), 25)); print(r.sample(range(1119), 3))\n"
                      "print(r.sample(range(10), 3)); print(r.sample(range(40), 7))\n"
                      "r = random.Random(2**40 + 5); print(r.sample(range(2251), 5))\"",
                      &out, NULL);
    if (st != 0) {
        free(out);
        test_missing_reference("python3 did not run (the reference sampler is Python's random)");
        skip();
    }
    PyRandom r;
    pyrandom_seed(&r, 1234);
    int v[25];
    char mine[4096] = "", num[16];
    struct {
        int n, k, reseed;
    } calls[] = {{1119, 25, 0}, {1119, 3, 0}, {10, 3, 0}, {40, 7, 0}, {2251, 5, 1}};
    for (int c = 0; c < 5; c++) {
        if (calls[c].reseed) pyrandom_seed(&r, (1ull << 40) + 5);
        assert_int_equal(pyrandom_sample(&r, calls[c].n, calls[c].k, v), 0);
        strcat(mine, "[");
        for (int i = 0; i < calls[c].k; i++) {
            snprintf(num, sizeof num, i ? ", %d" : "%d", v[i]);
            strcat(mine, num);
        }
        strcat(mine, "]\n");
    }
    assert_string_equal(mine, out);
    free(out);
}

static McDoc make_doc(const char *q, const char *a, const char *b, int gold) {
    McDoc d = {0};
    d.id = strdup("x");
    d.question = strdup(q);
    d.n_choices = 2;
    d.choices = malloc(2 * sizeof(char *));
    d.choices[0] = strdup(a);
    d.choices[1] = strdup(b);
    d.labels = calloc(2, sizeof(int));
    d.labels[gold] = 1;
    d.gold = gold;
    return d;
}

/* k-shot: exemplars drawn from train by random.Random(seed).sample, one draw per doc in order. */
static void test_fewshot_prompt(void **state) {
    (void)state;
    McDocSet train = {calloc(4, sizeof(McDoc)), 4}, test = {calloc(2, sizeof(McDoc)), 2};
    train.docs[0] = make_doc("T0?", "a0", "b0", 0);
    train.docs[1] = make_doc("T1?", "a1", "b1", 1);
    train.docs[2] = make_doc("T2?", "a2", "b2", 0);
    train.docs[3] = make_doc("T3?", "a3", "b3", 1);
    test.docs[0] = make_doc("Why?", "yes", "no", 0);
    test.docs[1] = make_doc("How?", "so", "not so", 1);
    McItem *items;
    int n;
    CkError err = {{0}};
    assert_int_equal(
        mc_build_items(mc_task_find("arc_easy"), &test, &train, 2, 1234, 0, &items, &n, &err), 0);
    assert_int_equal(n, 2);
    /* the draws, as Python makes them */
    PyRandom r;
    pyrandom_seed(&r, 1234);
    int p[2][2];
    assert_int_equal(pyrandom_sample(&r, 4, 2, p[0]), 0);
    assert_int_equal(pyrandom_sample(&r, 4, 2, p[1]), 0);
    for (int i = 0; i < 2; i++) {
        char want[512];
        const McDoc *e0 = &train.docs[p[i][0]], *e1 = &train.docs[p[i][1]];
        snprintf(want, sizeof want,
                 "Question: %s\nAnswer: %s\n\nQuestion: %s\nAnswer: %s\n\nQuestion: %s\nAnswer:",
                 e0->question, e0->choices[e0->gold], e1->question, e1->choices[e1->gold],
                 test.docs[i].question);
        assert_string_equal(items[i].context, want);
    }
    mc_items_free(items, n);
    /* 0-shot and --limit */
    assert_int_equal(
        mc_build_items(mc_task_find("arc_easy"), &test, &train, 0, 1234, 1, &items, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(items[0].context, "Question: Why?\nAnswer:");
    mc_items_free(items, n);
    /* TruthfulQA: the primer; shots refused */
    assert_int_equal(
        mc_build_items(mc_task_find("truthfulqa_mc1"), &test, NULL, 0, 1234, 0, &items, &n, &err),
        0);
    const char *start = "Q: What is human life expectancy in the United States?\nA: Human life "
                        "expectancy in the United States is 78 years.\n\nQ: Who was president";
    assert_int_equal(strncmp(items[1].context, start, strlen(start)), 0);
    const char *end = "A: The 1992 Olympics were held in Barcelona, Spain.\n\nQ: How?\nA:";
    size_t len = strlen(items[1].context);
    assert_string_equal(items[1].context + len - strlen(end), end);
    mc_items_free(items, n);
    assert_int_equal(
        mc_build_items(mc_task_find("truthfulqa_mc2"), &test, NULL, 3, 1234, 0, &items, &n, &err),
        -1);
    assert_non_null(strstr(err.msg, "--shots"));
    benchmarks_free(&train);
    benchmarks_free(&test);
}

/* The prompt format's hash is stored in results.json (config.template_hash); these are the
 * values earlier results.json files hold. mc_prompt_build and mc_prompt_hash read one format,
 * so changing it changes both the prompts (hence every item's resume fingerprint) and the
 * hash. */
static void test_prompt_hash(void **state) {
    (void)state;
    assert_true(mc_prompt_hash(mc_task_find("arc_challenge")) == 0xab89bd137280ddb9ull);
    assert_true(mc_prompt_hash(mc_task_find("arc_easy")) == 0xab89bd137280ddb9ull);
    assert_true(mc_prompt_hash(mc_task_find("truthfulqa_mc1")) == 0x8522b7d50627fe31ull);
    assert_true(mc_prompt_hash(mc_task_find("truthfulqa_mc2")) == 0x8522b7d50627fe31ull);
    McDocSet set = {calloc(2, sizeof(McDoc)), 2};
    set.docs[0] = make_doc("Why?", "yes", "no", 0);
    set.docs[1] = make_doc("T?", "a", "b", 1);
    McTask t = *mc_task_find("arc_easy");
    const McDoc *shots[1] = {&set.docs[1]};
    StrBuf b = {0};
    assert_int_equal(mc_prompt_build(&t, &set.docs[0], shots, 1, &b), 0);
    assert_string_equal(b.p, "Question: T?\nAnswer: b\n\nQuestion: Why?\nAnswer:");
    t.prompt.question = "Q: {question}\nA:";
    strbuf_clear(&b);
    assert_int_equal(mc_prompt_build(&t, &set.docs[0], NULL, 0, &b), 0);
    assert_string_equal(b.p, "Q: Why?\nA:");
    assert_true(mc_prompt_hash(&t) != 0xab89bd137280ddb9ull);
    strbuf_free(&b);
    benchmarks_free(&set);
}

static void test_tasks_parse(void **state) {
    (void)state;
    const McTask *tasks[MC_TASK_COUNT];
    int n = 0;
    CkError err = {{0}};
    assert_int_equal(
        mc_tasks_parse("arc_easy,,arc_easy,truthfulqa_mc1", tasks, MC_TASK_COUNT, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_ptr_equal(tasks[0], mc_task_find("arc_easy"));
    assert_ptr_equal(tasks[1], mc_task_find("truthfulqa_mc1"));
    assert_int_equal(mc_tasks_parse("arc_easy,nope", tasks, MC_TASK_COUNT, &n, &err), -1);
    assert_string_equal(err.msg, "unknown task 'nope'");
    assert_int_equal(mc_tasks_parse(",", tasks, MC_TASK_COUNT, &n, &err), -1);
    assert_string_equal(err.msg, "no task given");
}

/* ---------------------------------------------------------------------------------------- */
/* data */

static void test_shipped_data(void **state) {
    (void)state;
    McDocSet s;
    CkError err = {{0}};
    assert_int_equal(benchmarks_load_arc(&s, data_file("arc_challenge_test.jsonl"), &err), 0);
    assert_int_equal(s.n, 1172);
    assert_string_equal(s.docs[0].id, "Mercury_7175875");
    int counts[6] = {0};
    for (int i = 0; i < s.n; i++) counts[s.docs[i].n_choices]++;
    assert_int_equal(counts[3], 4);
    assert_int_equal(counts[4], 1165);
    assert_int_equal(counts[5], 3);
    benchmarks_free(&s);
    assert_int_equal(benchmarks_load_arc(&s, data_file("arc_easy_test.jsonl"), &err), 0);
    assert_int_equal(s.n, 2376);
    benchmarks_free(&s);
    assert_int_equal(benchmarks_load_arc(&s, data_file("arc_challenge_train.jsonl"), &err), 0);
    assert_int_equal(s.n, 1119);
    benchmarks_free(&s);
    for (int w = 1; w <= 2; w++) {
        assert_int_equal(
            benchmarks_load_truthfulqa(&s, data_file("truthfulqa_mc_task.json"), w, &err), 0);
        assert_int_equal(s.n, 817);
        assert_string_equal(s.docs[0].question, "What happens if you eat a pomegranate?");
        assert_int_equal(s.docs[0].gold, 0);
        assert_int_equal(s.docs[0].n_choices, w == 1 ? 4 : 6);
        benchmarks_free(&s);
    }
}

static void expect_error(const char *name, const char *text, int tqa, const char *want1,
                         const char *want2) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(test_write_file(path, text, strlen(text)), 0);
    McDocSet s;
    CkError err = {{0}};
    int rc = tqa ? benchmarks_load_truthfulqa(&s, path, TQA_MC2, &err)
                 : benchmarks_load_arc(&s, path, &err);
    printf("%s\n", err.msg);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err.msg, want1));
    if (want2) assert_non_null(strstr(err.msg, want2));
}

#define ARC_OK                                                                                     \
    "{\"id\":\"a\",\"question\":{\"stem\":\"q\",\"choices\":[{\"text\":\"x\",\"label\":\"A\"},"    \
    "{\"text\":\"y\",\"label\":\"B\"}]},\"answerKey\":\"B\"}\n"

static void test_malformed_data(void **state) {
    (void)state;
    expect_error("a.jsonl", ARC_OK "{\"id\": \"b\", oops}\n", 0, "a.jsonl:2:", "not valid JSON");
    expect_error(
        "b.jsonl",
        ARC_OK "\n" ARC_OK
               "{\"id\":\"c\",\"question\":{\"stem\":\"q\",\"choices\":[{\"text\":\"x\",\"label\":"
               "\"A\"},{\"text\":\"y\"}]},\"answerKey\":\"A\"}\n",
        0, "b.jsonl:4:", "question.choices[1].label");
    expect_error(
        "c.jsonl",
        "{\"id\":\"a\",\"question\":{\"stem\":\"q\",\"choices\":[{\"text\":\"x\",\"label\":"
        "\"A\"},{\"text\":\"y\",\"label\":\"B\"}]},\"answerKey\":\"E\"}\n",
        0, "c.jsonl:1:", "answerKey");
    expect_error("d.jsonl", "{\"id\":\"a\",\"question\":{\"choices\":[]}}\n", 0,
                 "d.jsonl:1:", "question.stem");
    expect_error(
        "e.jsonl",
        "{\"id\":\"a\",\"question\":{\"stem\":\"q\",\"choices\":[{\"text\":\"x\",\"label\":"
        "\"A\"},{\"text\":\"\xff\",\"label\":\"B\"}]},\"answerKey\":\"A\"}\n",
        0, "e.jsonl:1:", "question.choices[1].text: invalid UTF-8");
    expect_error("f.jsonl", "{\"id\": 3}\n", 0, "f.jsonl:1:", "id");
    const char *tqa_ok =
        "  {\n    \"question\": \"Q1?\",\n    \"mc1_targets\": {\"a\": 1, \"b\": 0},\n"
        "    \"mc2_targets\": {\"a\": 1, \"b\": 0}\n  }";
    char buf[2048];
    snprintf(buf, sizeof buf,
             "[\n%s,\n  {\n    \"question\": \"Q2?\",\n    \"mc1_targets\": {\"a\": 1, \"b\": 0},\n"
             "    \"mc2_targets\": {\"a\": 2, \"b\": 0}\n  }\n]\n",
             tqa_ok);
    expect_error("g.json", buf, 1, "g.json:10:", "mc2_targets[\"a\"]: expected 0 or 1");
    snprintf(buf, sizeof buf,
             "[\n%s,\n  {\n    \"question\": \"Q2?\",\n    \"mc1_targets\": {\"a\": 1, \"b\": 0},\n"
             "    \"mc2_targets\": {\"a\": 0, \"b\": 0}\n  }\n]\n",
             tqa_ok);
    expect_error("h.json", buf, 1, "h.json:10:", "mc2_targets: 0 true answers");
    snprintf(buf, sizeof buf, "[\n%s,\n  {\n    \"question\": 5\n  }\n]\n", tqa_ok);
    expect_error("i.json", buf, 1, "i.json:8:", "question: expected a string");
    snprintf(buf, sizeof buf, "[\n%s,\n  {\n    \"question\": \"x\", \n  }\n]\n", tqa_ok);
    expect_error("j.json", buf, 1, "j.json:", "record 1: not valid JSON");
    snprintf(buf, sizeof buf, "[\n%s\n  {\"question\": \"x\"}\n]\n", tqa_ok);
    expect_error("k.json", buf, 1, "k.json:7:", "expected ',' or ']' after record 0");
    expect_error("l.json", "{\"question\": \"x\"}", 1, "l.json:1:", "expected a JSON array");
    /* MC1 needs exactly one true answer */
    snprintf(buf, sizeof buf,
             "[\n  {\"question\": \"Q?\",\n   \"mc1_targets\": {\"a\": 1, \"b\": 1},\n"
             "   \"mc2_targets\": {\"a\": 1, \"b\": 0}}\n]\n");
    char path[700];
    snprintf(path, sizeof path, "%s/m.json", dir);
    assert_int_equal(test_write_file(path, buf, strlen(buf)), 0);
    McDocSet s;
    CkError err = {{0}};
    assert_int_equal(benchmarks_load_truthfulqa(&s, path, TQA_MC1, &err), -1);
    assert_non_null(strstr(err.msg, "m.json:3: mc1_targets: 2 true answers"));
    assert_int_equal(benchmarks_load_truthfulqa(&s, path, TQA_MC2, &err), 0);
    benchmarks_free(&s);
}

/* ---------------------------------------------------------------------------------------- */
/* against PyTorch */

typedef struct {
    char task[32];
    int doc, choice, greedy, n_tokens, truncated;
    double ll;
} FixtureRow;

static FixtureRow *load_fixture(int *n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/mc_logliks.json", CUTKIT_SOURCE_DIR);
    char *text = test_read_file(path, NULL);
    assert_non_null(text);
    cJSON *a = cJSON_Parse(text);
    free(text);
    *n = cJSON_GetArraySize(a);
    FixtureRow *rows = calloc((size_t)*n, sizeof(FixtureRow));
    for (int i = 0; i < *n; i++) {
        cJSON *o = cJSON_GetArrayItem(a, i);
        snprintf(rows[i].task, sizeof rows[i].task, "%s",
                 cJSON_GetObjectItem(o, "task")->valuestring);
        rows[i].doc = cJSON_GetObjectItem(o, "doc_index")->valueint;
        rows[i].choice = cJSON_GetObjectItem(o, "choice")->valueint;
        rows[i].ll = cJSON_GetObjectItem(o, "ll")->valuedouble;
        rows[i].greedy = cJSON_IsTrue(cJSON_GetObjectItem(o, "is_greedy"));
        rows[i].n_tokens = cJSON_GetObjectItem(o, "n_tokens")->valueint;
        rows[i].truncated = cJSON_GetObjectItem(o, "truncated")->valueint;
    }
    cJSON_Delete(a);
    return rows;
}

/* Scores the fixture's docs through the library (fast enough for ASan) and compares. */
static void test_torch_fixture(void **state) {
    (void)state;
    int n_rows;
    FixtureRow *rows = load_fixture(&n_rows);
    LanguageModel lm;
    CkError err = {{0}};
    assert_int_equal(lm_open(&lm, NULL, NULL, &err), 0);
    LoglikScorer sc;
    assert_int_equal(loglik_scorer_init(&sc, &lm.model, NULL, 8, 1, &err), 0);
    double worst = 0;
    int checked = 0, truncated = 0;
    for (int t = 0; t <= MC_TRUTHFULQA_MC2; t++) { /* the fixture's tasks */
        const McTask *task = mc_task_get((McTaskId)t);
        McDocSet docs;
        int rc = task->is_truthfulqa
                     ? benchmarks_load_truthfulqa(&docs, data_file(task->test_file),
                                                  t == MC_TRUTHFULQA_MC1 ? TQA_MC1 : TQA_MC2, &err)
                     : benchmarks_load_arc(&docs, data_file(task->test_file), &err);
        assert_int_equal(rc, 0);
        McItem *items;
        int n;
        assert_int_equal(mc_build_items(task, &docs, NULL, 0, 1234, 0, &items, &n, &err), 0);
        int last_doc = -1;
        McItemResult r = {0};
        for (int i = 0; i < n_rows; i++) {
            if (strcmp(rows[i].task, task->name) != 0) continue;
            if (rows[i].doc != last_doc) {
                mc_item_result_free(&r);
                assert_int_equal(
                    mc_score_item(&sc, &lm.tokenizer, &items[rows[i].doc], 1, &r, &err), 0);
                last_doc = rows[i].doc;
            }
            int c = rows[i].choice;
            double d = fabs(r.ll[c] - rows[i].ll);
            if (d > worst) worst = d;
            assert_close(r.ll[c], rows[i].ll, 1e-4);
            assert_int_equal(r.is_greedy[c], rows[i].greedy);
            assert_int_equal(r.n_tokens[c], rows[i].n_tokens);
            assert_int_equal(r.truncated[c], rows[i].truncated);
            truncated += rows[i].truncated > 0;
            checked++;
        }
        mc_item_result_free(&r);
        mc_items_free(items, n);
        benchmarks_free(&docs);
    }
    printf("%d log-likelihoods (%d truncated) vs PyTorch float64: max |diff| %.2e\n", checked,
           truncated, worst);
    assert_int_equal(checked, n_rows);
    assert_true(truncated > 0);
    loglik_scorer_free(&sc);
    lm_close(&lm);
    free(rows);
}

/* ---------------------------------------------------------------------------------------- */
/* the pipeline */

static char *read_out(const char *rel) {
    char path[900];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return test_read_file(path, NULL);
}

static int count_lines(const char *text) {
    int n = 0;
    for (const char *p = text; *p; p++) n += *p == '\n';
    return n;
}

/* Runs mc_run on the tasks named in `tasks` into dir/out; *log (when non-NULL) receives what it
 * logged (malloc'd). */
static int run_mc(const char *tasks, int limit, int shots, int resume, const char *out, char **log,
                  CkError *err) {
    McRunOptions o;
    mc_run_options_init(&o);
    assert_int_equal(mc_tasks_parse(tasks, o.tasks, MC_TASK_COUNT, &o.n_tasks, err), 0);
    char path[900];
    snprintf(path, sizeof path, "%s/%s", dir, out);
    o.out = path;
    o.limit = limit;
    o.shots = shots;
    o.resume = resume;
    char *text = NULL;
    size_t len = 0;
    o.log = log ? open_memstream(&text, &len) : NULL;
    McRunReport report;
    int rc = mc_run(&o, &report, err);
    if (log) {
        fclose(o.log);
        *log = text;
    }
    if (rc == 0) {
        assert_true(report.wrote);
        assert_int_equal(report.n_tasks, o.n_tasks);
    }
    return rc;
}

static void test_run_limit_and_resume(void **state) {
    (void)state;
    CkError err = {{0}};
    threads_set(2);
    assert_int_equal(run_mc("arc_challenge,truthfulqa_mc2", 12, 0, 0, "full", NULL, &err), 0);
    char *items = read_out("full/items.jsonl"), *results = read_out("full/results.json");
    assert_int_equal(count_lines(items), 24);
    cJSON *root = cJSON_Parse(results);
    cJSON *ns = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "n-samples"), "arc_challenge");
    assert_int_equal(cJSON_GetObjectItem(ns, "effective")->valueint, 12);
    assert_int_equal(cJSON_GetObjectItem(ns, "original")->valueint, 1172);
    cJSON *arc = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "results"), "arc_challenge");
    assert_non_null(cJSON_GetObjectItem(arc, "acc,none"));
    assert_non_null(cJSON_GetObjectItem(arc, "acc_stderr,none"));
    assert_non_null(cJSON_GetObjectItem(arc, "acc_norm,none"));
    cJSON *cfg = cJSON_GetObjectItem(root, "config");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cfg, "bos")));
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "template_hash"), "arc_challenge")
            ->valuestring,
        "ab89bd137280ddb9");
    cJSON_Delete(root);

    /* an interrupted run: 5 items each, then half a line as a kill would leave it, and a blank
     * line, which must not stop the resume */
    threads_set(1);
    assert_int_equal(run_mc("arc_challenge,truthfulqa_mc2", 5, 0, 0, "part", NULL, &err), 0);
    char path[900];
    snprintf(path, sizeof path, "%s/part/items.jsonl", dir);
    char *part = test_read_file(path, NULL);
    const char *first_nl = strchr(part, '\n');
    FILE *f = fopen(path, "w");
    fwrite(part, 1, (size_t)(first_nl + 1 - part), f);
    fputs("\n", f);
    fputs(first_nl + 1, f);
    fputs("{\"task\":\"arc_challenge\",\"doc_index\":5,\"doc_", f);
    fclose(f);
    free(part);
    char *log = NULL;
    assert_int_equal(run_mc("arc_challenge,truthfulqa_mc2", 12, 0, 1, "part", &log, &err), 0);
    assert_non_null(strstr(log, "dropping an incomplete last line (43 bytes)"));
    assert_non_null(strstr(log, "arc_challenge: 5 of 12 items already"));
    assert_non_null(strstr(log, "truthfulqa_mc2: 5 of 12 items already"));
    free(log);
    char *resumed = read_out("part/results.json"), *ritems = read_out("part/items.jsonl");
    assert_int_equal(count_lines(ritems), 25); /* the blank line stays */
    /* items scored at another thread count: the sums may differ in the last bits (the
     * standards allow 1e-5 across thread counts) */
    test_assert_json_close(resumed, results, 1e-7);
    free(resumed);
    free(ritems);

    /* a resume with another prompt (shots) is refused */
    assert_int_equal(run_mc("arc_challenge", 12, 1, 1, "part", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "arc_challenge doc 0 was scored with another model, adapter, "
                                    "BOS setting, prompt or data"));
    free(items);
    free(results);
}

/* The whole ARC-Challenge and TruthfulQA runs on the embedded model, and the sampled
 * log-likelihoods equal the PyTorch fixture. Release builds only: under ASan it takes minutes. */
static void test_run_whole(void **state) {
    (void)state;
    if (SANITIZED || getenv("CUTKIT_MC_QUICK")) {
        printf("skipped (sanitizers or CUTKIT_MC_QUICK; test_torch_fixture covers the sample)\n");
        skip();
    }
    CkError err = {{0}};
    threads_set(1);
    assert_int_equal(
        run_mc("arc_challenge,truthfulqa_mc1,truthfulqa_mc2", 0, 0, 0, "whole", NULL, &err), 0);
    char *results = read_out("whole/results.json");
    cJSON *root = cJSON_Parse(results);
    const char *names[] = {"arc_challenge", "truthfulqa_mc1", "truthfulqa_mc2"};
    int want[] = {1172, 817, 817};
    for (int i = 0; i < 3; i++) {
        cJSON *ns = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "n-samples"), names[i]);
        assert_int_equal(cJSON_GetObjectItem(ns, "effective")->valueint, want[i]);
        double acc =
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "results"), names[i]),
                                "acc,none")
                ->valuedouble;
        printf("%s acc %.4f\n", names[i], acc);
        assert_true(acc > 0 && acc < 1);
    }
    cJSON_Delete(root);
    free(results);
    /* the sampled items in items.jsonl against PyTorch */
    int n_rows;
    FixtureRow *rows = load_fixture(&n_rows);
    char *items = read_out("whole/items.jsonl");
    int found = 0;
    for (char *line = strtok(items, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const char *task = cJSON_GetObjectItem(o, "task")->valuestring;
        int doc = cJSON_GetObjectItem(o, "doc_index")->valueint;
        for (int i = 0; i < n_rows; i++)
            if (strcmp(rows[i].task, task) == 0 && rows[i].doc == doc) {
                cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), rows[i].choice);
                assert_close(cJSON_GetObjectItem(c, "ll")->valuedouble, rows[i].ll, 1e-4);
                found++;
            }
        cJSON_Delete(o);
    }
    assert_int_equal(found, n_rows);
    free(items);
    free(rows);
}

/* ---------------------------------------------------------------------------------------- */
/* the harness's own files and readers (tests/harness: Python written from the harness's code) */

/* Runs /usr/bin/python3 on tests/harness/<script> with args; returns its exit status, its
 * stdout in *out and its stderr in *errout (malloc'd). Skips the test when /usr/bin/python3
 * is absent. */
static int harness_script(const char *script, const char *args, char **out, char **errout) {
    if (access("/usr/bin/python3", X_OK) != 0) {
        test_missing_reference("/usr/bin/python3 (runs the harness's readers in tests/harness)");
        skip();
    }
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/harness/%s' %s", CUTKIT_SOURCE_DIR,
             script, args);
    return test_run(cmd, out, errout);
}

/* harness_script that must succeed: its stdout (malloc'd); prints what it said otherwise. */
static char *harness_ok(const char *script, const char *args) {
    char *out = NULL, *err = NULL;
    int st = harness_script(script, args, &out, &err);
    if (st != 0) printf("%s %s: exit %d\n%s%s", script, args, st, out ? out : "", err ? err : "");
    free(err);
    assert_int_equal(st, 0);
    return out;
}

/* mc_run with the harness version, samples and data given, into dir/out. */
static int run_harness(const char *tasks, const char *version, int bos, const char *data, int limit,
                       int resume, const char *out, McRunReport *report, CkError *err) {
    McRunOptions o;
    mc_run_options_init(&o);
    assert_int_equal(mc_tasks_parse(tasks, o.tasks, MC_TASK_COUNT, &o.n_tasks, err), 0);
    char path[900];
    snprintf(path, sizeof path, "%s/%s", dir, out);
    o.out = path;
    o.harness_version = version;
    o.bos = bos;
    o.data = data;
    o.limit = limit;
    o.resume = resume;
    o.log_samples = 1;
    return mc_run(&o, report, err);
}

/* The table emulation against two tables the harness printed (its task READMEs, copied into
 * tests/fixtures/harness_tables with the results that produce them). */
static void test_harness_table_printer(void **state) {
    (void)state;
    const char *names[] = {"jsonschema_bench", "mmmu_groups"};
    for (int i = 0; i < 2; i++) {
        char args[1200], path[1024];
        snprintf(args, sizeof args, "'%s/tests/fixtures/harness_tables/%s.json'", CUTKIT_SOURCE_DIR,
                 names[i]);
        char *out = harness_ok("lm_eval_table.py", args);
        snprintf(path, sizeof path, "%s/tests/fixtures/harness_tables/%s.txt", CUTKIT_SOURCE_DIR,
                 names[i]);
        char *want = test_read_file(path, NULL);
        assert_non_null(want);
        assert_string_equal(out, want);
        free(want);
        free(out);
    }
}

/* results.json and the harness-named results file through the harness's table printer (the
 * rows, their order and every value to 4 places), and --log-samples's files through a check
 * of every field against the harness's definitions (tests/harness/check_samples.py). */
static void test_harness_files(void **state) {
    (void)state;
    CkError err = {{0}};
    McRunReport rep;
    threads_set(1);
    assert_int_equal(run_harness("truthfulqa_mc2,arc_easy,truthfulqa_mc1", NULL, MC_BOS_VERSION,
                                 NULL, 5, 0, "hf", &rep, &err),
                     0);
    assert_string_equal(rep.harness_version, "current");
    assert_int_equal(rep.bos, 1);
    const char *model_dir = strstr(rep.harness_path, "/hf/embedded__stories260K/results_");
    assert_non_null(model_dir);
    /* the expected rows: the harness's layout (tasks sorted by name, metrics by name within a
     * task), cutkit's numbers */
    const McMetrics *arc = &rep.tasks[1].metrics, *mc1 = &rep.tasks[2].metrics,
                    *mc2 = &rep.tasks[0].metrics;
    assert_string_equal(rep.tasks[1].task->name, "arc_easy");
    const struct {
        const char *task, *version, *metric;
        const McMetric *m;
    } rows[] = {
        {"arc_easy", "1", "acc", &arc->m[0]},       {"", "", "acc_bytes", &arc->m[2]},
        {"", "", "acc_norm", &arc->m[1]},           {"", "", "acc_per_token", &arc->m[3]},
        {"truthfulqa_mc1", "2", "acc", &mc1->m[0]}, {"truthfulqa_mc2", "3", "acc", &mc2->m[0]}};
    const char *head =
        "|    Tasks     |Version|Filter|n-shot|   Metric    |   |Value |   |Stderr|\n"
        "|--------------|------:|------|-----:|-------------|---|-----:|---|-----:|\n";
    const char *files[] = {rep.results_path, rep.harness_path};
    for (int f = 0; f < 2; f++) {
        char args[4200];
        snprintf(args, sizeof args, "'%s'", files[f]);
        char *out = harness_ok("lm_eval_table.py", args);
        printf("%s", out);
        assert_int_equal(strncmp(out, head, strlen(head)), 0);
        char *line = out + strlen(head);
        for (int r = 0; r < 6; r++) {
            /* |task|version|filter|n-shot|metric|arrow|value|±|stderr| */
            char cell[10][64];
            int c = 0;
            for (char *p = line + 1; c < 9 && *p && *p != '\n'; c++) {
                size_t k = strcspn(p, "|\n");
                char *a = p, *b = p + k;
                while (a < b && *a == ' ') a++;
                while (b > a && b[-1] == ' ') b--;
                snprintf(cell[c], sizeof cell[c], "%.*s", (int)(b - a), a);
                p += k + (p[k] == '|');
            }
            assert_int_equal(c, 9);
            assert_string_equal(cell[0], rows[r].task);
            assert_string_equal(cell[1], rows[r].version);
            assert_string_equal(cell[2], "none");
            assert_string_equal(cell[3], "0");
            assert_string_equal(cell[4], rows[r].metric);
            assert_string_equal(cell[5], "\xe2\x86\x91");
            /* "%.4f", or fewer places where pytablewriter drops a column's common zeros */
            assert_close(strtod(cell[6], NULL), rows[r].m->value, 5e-5);
            assert_string_equal(cell[7], "\xc2\xb1");
            assert_close(strtod(cell[8], NULL), rows[r].m->stderr_, 5e-5);
            line = strchr(line, '\n') + 1;
        }
        assert_string_equal(line, "\n"); /* print() after the table's own newline */
        free(out);
    }
    char args[4200];
    snprintf(args, sizeof args, "'%s/hf'", dir);
    char *out = harness_ok("check_samples.py", args);
    assert_non_null(strstr(out, "ok: 15 samples of 3 tasks"));
    free(out);
    /* the harness's printer fails on a results.json without "versions" (as before issue 14) */
    char path[900], *said = NULL;
    snprintf(path, sizeof path, "%s/old.json", dir);
    const char *old = "{\"results\": {\"arc_easy\": {\"alias\": \"arc_easy\", \"acc,none\": 0.5, "
                      "\"acc_stderr,none\": 0.1}}, \"n-shot\": {\"arc_easy\": 0}}";
    assert_int_equal(test_write_file(path, old, strlen(old)), 0);
    snprintf(args, sizeof args, "'%s'", path);
    assert_int_equal(harness_script("lm_eval_table.py", args, &out, &said), 1);
    assert_non_null(strstr(said, "KeyError: 'versions'"));
    free(out);
    free(said);
}

/* Writes dir/out/items.jsonl as a run without BOS on the embedded model would have, for the
 * docs of data with the log-likelihoods log(p[i][c]): what a resumed run then computes
 * depends on nothing else. */
static void write_items(const char *data, const char *out, const double p[][9]) {
    McDocSet docs;
    CkError err = {{0}};
    assert_int_equal(benchmarks_load_truthfulqa(&docs, data, TQA_MC2, &err), 0);
    McItem *items;
    int n;
    const McTask *task = mc_task_find("truthfulqa_mc2");
    assert_int_equal(mc_build_items(task, &docs, NULL, 0, 1234, 0, &items, &n, &err), 0);
    uint64_t run = mc_run_fingerprint("embedded:stories260K", "embedded:tok512", NULL, 0);
    char path[900];
    snprintf(path, sizeof path, "%s/%s", dir, out);
    assert_int_equal(fileio_make_dirs(path, &err), 0);
    snprintf(path, sizeof path, "%s/%s/items.jsonl", dir, out);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < n; i++) {
        McItemResult r;
        assert_int_equal(mc_item_result_alloc(&r, docs.docs[i].n_choices, 0, &err), 0);
        r.doc_index = i;
        r.gold = docs.docs[i].gold;
        for (int c = 0; c < r.n_choices; c++) {
            r.labels[c] = docs.docs[i].labels[c];
            r.ll[c] = log(p[i][c]);
            r.n_tokens[c] = 1;
        }
        cJSON *rec =
            results_mc_item_json(task->name, &items[i], &r, mc_item_fingerprint(run, &items[i]));
        char *line = cJSON_PrintUnformatted(rec);
        fprintf(f, "%s\n", line);
        free(line);
        cJSON_Delete(rec);
        mc_item_result_free(&r);
    }
    fclose(f);
    mc_items_free(items, n);
    benchmarks_free(&docs);
}

/* The MC2 value of each sample of the samples file beside the results file harness_path. */
static void sample_values(const char *harness_path, double *v, int n) {
    /* OUT/<model>/results_<date>.json -> OUT/<model>/samples_truthfulqa_mc2_<date>.jsonl */
    const char *slash = strrchr(harness_path, '/'), *date = slash + strlen("/results_");
    char path[4400];
    snprintf(path, sizeof path, "%.*s/samples_truthfulqa_mc2_%.*s.jsonl",
             (int)(slash - harness_path), harness_path, (int)(strlen(date) - strlen(".json")),
             date);
    char *text = test_read_file(path, NULL);
    assert_non_null(text);
    int i = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), i++) {
        cJSON *o = cJSON_Parse(line);
        assert_int_equal(cJSON_GetObjectItem(o, "doc_id")->valueint, i);
        if (i < n) v[i] = cJSON_GetObjectItem(o, "acc")->valuedouble;
        cJSON_Delete(o);
    }
    assert_int_equal(i, n);
    free(text);
}

/* TruthfulQA #0, #164 and #607 (tests/fixtures/truthfulqa_mc2_split.json; labels 111000,
 * 111010000, 1101000) under 0.4.8 and 0.4.9, which both put no BOS first. The items come from
 * items.jsonl with chosen probabilities (the embedded model puts so little mass on the late
 * true answers that the two formulas agree to double precision), so the values are known by
 * hand: #0 .5 in both; #164 .30 (0.4.8: the answers before the first false one) against .55
 * (0.4.9: every true one); #607 .40 against .65. check_samples.py recomputes each sample with
 * the formula of the version the results name. A resume across versions keeps the items when
 * the BOS setting agrees and refuses them when not. */
static void test_harness_versions_mc2(void **state) {
    (void)state;
    char data[1024];
    snprintf(data, sizeof data, "%s/tests/fixtures/truthfulqa_mc2_split.json", CUTKIT_SOURCE_DIR);
    static const double P[3][9] = {{0.2, 0.2, 0.1, 0.2, 0.2, 0.1},
                                   {0.05, 0.10, 0.15, 0.20, 0.25, 0.05, 0.08, 0.07, 0.05},
                                   {0.3, 0.1, 0.2, 0.25, 0.05, 0.05, 0.05}};
    static const double WANT[2][3] = {{0.5, 0.30, 0.40}, {0.5, 0.55, 0.65}};
    const char *versions[] = {"0.4.8", "0.4.9"}, *outs[] = {"v048", "v049"};
    CkError err = {{0}};
    McRunReport rep;
    threads_set(1);
    for (int k = 0; k < 2; k++) {
        write_items(data, outs[k], P);
        assert_int_equal(run_harness("truthfulqa_mc2", versions[k], MC_BOS_VERSION, data, 0, 1,
                                     outs[k], &rep, &err),
                         0);
        assert_int_equal(rep.bos, 0);
        assert_int_equal(rep.tasks[0].n_resumed, 3);
        double v[3];
        sample_values(rep.harness_path, v, 3);
        for (int i = 0; i < 3; i++) assert_close(v[i], WANT[k][i], 1e-12);
        assert_close(rep.tasks[0].metrics.m[0].value, (WANT[k][0] + WANT[k][1] + WANT[k][2]) / 3,
                     1e-12);
        char args[1024];
        snprintf(args, sizeof args, "'%s/%s'", dir, outs[k]);
        char *out = harness_ok("check_samples.py", args);
        assert_non_null(strstr(out, "ok: 3 samples of 1 tasks"));
        free(out);
    }
    /* the 0.4.9 folder resumed as current: BOS now, so refused; with BOS off, resumed whole,
     * and current's MC2 is 0.4.9's */
    assert_int_equal(
        run_harness("truthfulqa_mc2", "current", MC_BOS_VERSION, data, 0, 1, "v049", &rep, &err),
        -1);
    assert_non_null(strstr(err.msg, "another model, adapter, BOS setting, prompt or data"));
    assert_int_equal(run_harness("truthfulqa_mc2", "current", 0, data, 0, 1, "v049", &rep, &err),
                     0);
    assert_int_equal(rep.tasks[0].n_resumed, 3);
    assert_close(rep.tasks[0].metrics.m[0].value, (0.5 + 0.55 + 0.65) / 3, 1e-12);
}

/* ---------------------------------------------------------------------------------------- */
/* the binary: flags, exit codes, messages */

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
    char *err = NULL;
    assert_int_equal(cutkit("--task arc_easy --limit 2 --threads 1 --out cli", &err), 0);
    assert_non_null(strstr(err, "cutkit eval mc: arc_easy: acc "));
    assert_non_null(strstr(err, "cutkit eval mc: wrote "));
    free(err);
    char *items = read_out("cli/items.jsonl");
    assert_int_equal(count_lines(items), 2);
    free(items);
    assert_int_equal(cutkit("--task arc_easy --limit 2 --shots 1 --out cli --resume", &err), 1);
    assert_non_null(strstr(err, "cutkit eval mc: "));
    assert_non_null(strstr(err, "another model, adapter, BOS setting, prompt or data"));
    free(err);
    assert_int_equal(cutkit("--task nope --out x", &err), 2);
    assert_non_null(strstr(err, "--task: unknown task 'nope'"));
    free(err);
    assert_int_equal(cutkit("--out x", &err), 2);
    assert_non_null(strstr(err, "--task is required"));
    free(err);
    assert_int_equal(cutkit("--task truthfulqa_mc1 --shots 5 --out x", &err), 2);
    assert_non_null(strstr(err, "--shots: truthfulqa_mc1 has its 6-shot primer built in"));
    free(err);
    /* --harness-version: one line naming the flag and the known versions */
    assert_int_equal(cutkit("--task arc_easy --harness-version 0.3.0 --out x", &err), 2);
    assert_string_equal(err,
                        "cutkit eval mc: --harness-version expects b281b09, 0.4.0, 0.4.1, 0.4.2, "
                        "0.4.3, 0.4.4, 0.4.5, 0.4.6, 0.4.7, 0.4.8, 0.4.9, 0.4.9.1, "
                        "0.4.9.2, 0.4.10, 0.4.11, 0.4.12 or current, got '0.3.0'\n");
    free(err);
    assert_int_equal(cutkit("--task arc_easy --bos --no-bos --out x", &err), 2);
    assert_non_null(strstr(err, "--bos and --no-bos: give one"));
    free(err);
    /* 0.4.8: no BOS (a new folder: the items of cli/ were scored with BOS) */
    assert_int_equal(cutkit("--task arc_easy --limit 2 --threads 1 --harness-version 0.4.8 "
                            "--out cli-048",
                            &err),
                     0);
    assert_non_null(strstr(err, "(lm-evaluation-harness 0.4.8, no BOS)"));
    free(err);
    char *results = read_out("cli-048/results.json");
    cJSON *root = cJSON_Parse(results);
    cJSON *cfg = cJSON_GetObjectItem(root, "config");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cfg, "bos")));
    assert_string_equal(cJSON_GetObjectItem(cfg, "harness_version")->valuestring, "0.4.8");
    cJSON_Delete(root);
    free(results);
    /* --bos wins over the version; the items of cli/ (BOS, default version) are resumed */
    assert_int_equal(cutkit("--task arc_easy --limit 2 --harness-version 0.4.0 --bos --out cli "
                            "--resume",
                            &err),
                     0);
    assert_non_null(strstr(err, "arc_easy: 2 of 2 items already in items.jsonl"));
    assert_non_null(strstr(err, "(lm-evaluation-harness 0.4.0, BOS)"));
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argmax_ties_first),
        cmocka_unit_test(test_norms_chars_bytes_tokens),
        cmocka_unit_test(test_mc2_known),
        cmocka_unit_test(test_stderr),
        cmocka_unit_test(test_mc2_variants),
        cmocka_unit_test(test_metric_lists),
        cmocka_unit_test(test_harness_versions),
        cmocka_unit_test(test_harness_bos_hf),
        cmocka_unit_test(test_pyjson),
        cmocka_unit_test(test_pyrandom_matches_python),
        cmocka_unit_test(test_fewshot_prompt),
        cmocka_unit_test(test_prompt_hash),
        cmocka_unit_test(test_tasks_parse),
        cmocka_unit_test(test_shipped_data),
        cmocka_unit_test(test_malformed_data),
        cmocka_unit_test(test_torch_fixture),
        cmocka_unit_test(test_run_limit_and_resume),
        cmocka_unit_test(test_run_whole),
        cmocka_unit_test(test_harness_table_printer),
        cmocka_unit_test(test_harness_files),
        cmocka_unit_test(test_harness_versions_mc2),
        cmocka_unit_test(test_cli),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
