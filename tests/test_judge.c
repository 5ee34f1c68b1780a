/* test_judge.c — pairwise judging: the shipped template equals the built-in one; the order
 * switch is balanced and reproducible; the flip rule, draws for identical outputs and both
 * orders with a mock judge; the judging pipeline (judge_run) with external command judges that
 * answer, exit 1, print garbage or hang (missing entries, clear messages, retry_missing,
 * resumed files of other pairs refused); the `cutkit eval judge` binary's exit codes and
 * messages; the local model judge on the embedded model against sequence scores computed
 * separately; AlpacaEval's annotator prompts loaded unchanged, filled and rendered as an
 * independent Python script does, and their errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include <cjson/cJSON.h>

#include "eval/annotations.h"
#include "eval/judge.h"
#include "eval/judge_run.h"
#include "formats/lm.h"
#include "util/sha256.h"
#include "util/utf8.h"

static void test_template(void **state) {
    (void)state;
    PairwiseTemplate a, b;
    CkError err = {{0}};
    assert_int_equal(pairwise_template_load(&a, NULL, &err), 0);
    assert_int_equal(
        pairwise_template_load(&b, CUTKIT_SOURCE_DIR "/eval/templates/pairwise_ab.json", &err), 0);
    assert_string_equal(a.prompt, b.prompt);
    assert_string_equal(a.verdict_1, b.verdict_1);
    assert_string_equal(a.verdict_2, b.verdict_2);
    pairwise_template_free(&b);
    char *s = pairwise_template_format("{{x}} {instruction}|{output_1}|{output_2}", "{output_2}",
                                       "A", "B", &err);
    assert_string_equal(s, "{x} {output_2}|A|B"); /* values are never re-scanned */
    free(s);
    assert_null(pairwise_template_format("{judgment}", "i", "a", "b", &err));
    assert_non_null(strstr(err.msg, "{judgment}"));
    assert_int_equal(pairwise_template_parse(&b,
                                             "{\"prompt\": \"x\", \"verdict_1\": \"a\", "
                                             "\"verdict_2\": \"a\"}",
                                             "t.json", &err),
                     -1);
    assert_non_null(strstr(err.msg, "t.json"));
    pairwise_template_free(&a);
}

static void test_switch(void **state) {
    (void)state;
    enum { N = 4000 };
    int switched = 0, differ = 0;
    char ins[64];
    for (int i = 0; i < N; i++) {
        snprintf(ins, sizeof ins, "Instruction number %d?", i);
        int s = judge_is_switched(ins, 0);
        assert_int_equal(s, judge_is_switched(ins, 0)); /* reproducible */
        switched += s;
        differ += s != judge_is_switched(ins, 1);
    }
    printf("  switched %d of %d (seed 0); seed 1 differs on %d\n", switched, N, differ);
    /* a fair coin: within 4 standard deviations (sqrt(N)/2 = 31.6) */
    assert_true(abs(switched - N / 2) < 127);
    assert_true(abs(differ - N / 2) < 127);
    /* the documented formula, FNV-1a-64 of "is_switched_outputs" + instruction then
     * splitmix64, evaluated in Python for "Instruction number 0?" .. "31?" under seed 0 */
    const char *golden = "11110010010000111010001000011001";
    for (int i = 0; i < 32; i++) {
        snprintf(ins, sizeof ins, "Instruction number %d?", i);
        assert_int_equal(judge_is_switched(ins, 0), golden[i] - '0');
    }
}

/* A mock judge that prefers the longer output (1 when the first shown is longer), or, with
 * bias, always says the first; it counts its calls and fails on "FAIL". */
typedef struct {
    int calls, bias;
} Mock;

static int mock_judge(void *ctx, const char *instruction, const char *o1, const char *o2,
                      double *pref, char **raw, CkError *err) {
    (void)instruction;
    Mock *m = ctx;
    m->calls++;
    if (strstr(o1, "FAIL") || strstr(o2, "FAIL")) return ck_fail(err, "mock failure");
    *pref = m->bias ? 1 : (strlen(o1) > strlen(o2) ? 1 : 2);
    *raw = malloc(32);
    snprintf(*raw, 32, "{\"shown\":%g}", *pref);
    return 0;
}

static void fill(Annotation *a, const char *ins, const char *o1, const char *o2) {
    annotation_clear(a);
    a->instruction = strdup(ins);
    a->output_1 = strdup(o1);
    a->output_2 = strdup(o2);
}

static void test_protocol(void **state) {
    (void)state;
    Mock mock = {0, 0};
    Judge j = {"mock", mock_judge, NULL, &mock};
    JudgeOptions opt = {0, 1, 0};
    Annotation a = {0};
    CkError err = {{0}};
    char ins[64], longer[64];
    int switched = 0;
    for (int i = 0; i < 200; i++) {
        snprintf(ins, sizeof ins, "q%d", i);
        snprintf(longer, sizeof longer, "a longer answer %d", i);
        int model_longer = i % 3 == 0;
        fill(&a, ins, model_longer ? "short" : longer, model_longer ? longer : "short");
        assert_int_equal(judge_annotate(&j, &opt, &a, &err), 0);
        /* whatever the order shown, the preference is in the file's orientation */
        assert_true(a.preference == (model_longer ? 2 : 1));
        assert_int_equal(a.is_switched, judge_is_switched(ins, 0));
        double shown = strtod(strchr(a.raw_completion, ':') + 1, NULL);
        assert_true(a.preference == (a.is_switched ? 3 - shown : shown)); /* the flip rule */
        assert_string_equal(a.annotator, "mock");
        switched += a.is_switched;
    }
    assert_true(switched > 60 && switched < 140);
    /* identical outputs: a draw, and the judge is not asked */
    int calls = mock.calls;
    fill(&a, "same", "the same text", "the same text");
    assert_int_equal(judge_annotate(&j, &opt, &a, &err), 0);
    assert_true(a.preference == 1.5);
    assert_int_equal(mock.calls, calls);
    /* a position-biased judge: one order gives 1 or 2, both orders average to a draw */
    mock.bias = 1;
    fill(&a, "q0", "xx", "yyy");
    assert_int_equal(judge_annotate(&j, &opt, &a, &err), 0);
    assert_true(a.preference == (a.is_switched ? 2 : 1));
    opt.both_orders = 1;
    calls = mock.calls;
    assert_int_equal(judge_annotate(&j, &opt, &a, &err), 0);
    assert_true(a.preference == 1.5);
    assert_int_equal(mock.calls, calls + 2);
    assert_non_null(strstr(a.raw_completion, "\"both_orders\":true"));
    /* a failure is missing, with the reason, never a verdict */
    opt.both_orders = 0;
    fill(&a, "q1", "FAIL", "other");
    assert_int_equal(judge_annotate(&j, &opt, &a, &err), 0);
    assert_true(isnan(a.preference));
    assert_string_equal(a.error, "judge mock: mock failure");
    annotation_clear(&a);
}

/* ---- the pipeline with external command judges ----------------------------------------- */

static char *dir;

static int setup(void **state) {
    (void)state;
    dir = test_temp_dir();
    return dir ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    int rc = test_remove_dir(dir);
    free(dir);
    return rc;
}

static void write_text(const char *name, const char *text) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(test_write_file(path, text, strlen(text)), 0);
}

static AnnotationSet load(const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    AnnotationSet s;
    CkError err = {{0}};
    assert_int_equal(annotations_load(&s, path, &err), 0);
    return s;
}

/* The paths and command of a run, kept alive while its options point at them. */
typedef struct {
    char outputs[700], reference[700], out[700], command[800];
} Files;

/* judge_run of dir/outputs against dir/reference into dir/out with `sh dir/script` as the
 * judge (timeout in seconds); retry: retry_missing. */
static int judge_files(const char *outputs, const char *reference, const char *out,
                       const char *script, double timeout, int retry, JudgeRunReport *r,
                       CkError *err) {
    Files f;
    snprintf(f.outputs, sizeof f.outputs, "%s/%s", dir, outputs);
    snprintf(f.reference, sizeof f.reference, "%s/%s", dir, reference);
    snprintf(f.out, sizeof f.out, "%s/%s", dir, out);
    snprintf(f.command, sizeof f.command, "sh '%s/%s'", dir, script);
    JudgeRunOptions o;
    judge_run_options_init(&o);
    o.outputs = f.outputs;
    o.reference = f.reference;
    o.out = f.out;
    o.kind = JUDGE_KIND_COMMAND;
    o.judge_command = f.command;
    o.timeout = timeout;
    o.retry_missing = retry;
    o.annotator = "sh";
    return judge_run(&o, r, err);
}

static void write_files(void) {
    write_text("model.json",
               "[{\"instruction\": \"a\", \"output\": \"good one\", \"generator\": \"m\"},"
               " {\"instruction\": \"b\", \"output\": \"bad\", \"generator\": \"m\"},"
               " {\"instruction\": \"c\", \"output\": \"same\", \"generator\": \"m\"}]");
    write_text("ref.json",
               "[{\"instruction\": \"c\", \"output\": \"same\", \"generator\": \"r\"},"
               " {\"instruction\": \"b\", \"output\": \"good too\", \"generator\": \"r\"},"
               " {\"instruction\": \"a\", \"output\": \"plain\", \"generator\": \"r\"}]");
    /* prefers whichever shown output starts with "good" */
    write_text("answer.sh", "read line\n"
                            "case \"$line\" in *'\"output_1\":\"good'*) echo 1 ;;"
                            " *'\"output_2\":\"good'*) echo '{\"preference\": 2}' ;;"
                            " *) echo 1.5 ;; esac\n");
    write_text("fail.sh", "cat > /dev/null; echo 'judge API is down' >&2; exit 1\n");
    write_text("garbage.sh", "cat > /dev/null; echo 'I think the first one'\n");
    write_text("hang.sh", "sleep 30\n");
    /* what annotations.json could not hold, and content after the answer */
    write_text("notutf8.sh", "cat > /dev/null; printf '2 \\377\\n'\n");
    write_text("trailing.sh", "cat > /dev/null; echo '{\"preference\": 2} and more'\n");
}

static void test_command_judges(void **state) {
    (void)state;
    write_files();
    JudgeRunReport r;
    CkError err = {{0}};
    /* the answering judge */
    assert_int_equal(
        judge_files("model.json", "ref.json", "ok.json", "answer.sh", 120, 0, &r, &err), 0);
    assert_true(r.wrote && r.n_pairs == 3 && r.n_judged == 3 && r.n_missing == 0);
    AnnotationSet s = load("ok.json");
    assert_int_equal(s.n, 3);
    assert_true(s.items[0].preference == 2); /* "good one" (model) beats "plain" */
    assert_true(s.items[1].preference == 1); /* "good too" (reference) beats "bad" */
    assert_true(s.items[2].preference == 1.5);
    assert_string_equal(s.items[0].output_1, "plain");
    assert_string_equal(s.items[0].generator_1, "r");
    assert_string_equal(s.items[0].generator_2, "m");
    assert_string_equal(s.items[0].annotator, "sh");
    annotations_free(&s);
    /* failing judges: missing entries with the reason, reported, never a verdict */
    const char *bad[5][2] = {{"fail.sh", "exited with status 1; stderr: judge API is down"},
                             {"garbage.sh", "printed \"I think the first one"},
                             {"hang.sh", "timed out after 0.3 s"},
                             {"notutf8.sh", "printed bytes that are not UTF-8 at byte 2"},
                             {"trailing.sh", "printed \"{\"preference\": 2} and more"}};
    for (int k = 0; k < 5; k++) {
        char name[32];
        snprintf(name, sizeof name, "bad%d.json", k);
        const double timeout = !strcmp(bad[k][0], "hang.sh") ? 0.3 : 60; /* slow under ASan */
        assert_int_equal(
            judge_files("model.json", "ref.json", name, bad[k][0], timeout, 0, &r, &err), 0);
        printf("  %s: %s\n", bad[k][0], r.first_error);
        assert_int_equal(r.n_missing, 2);
        assert_non_null(strstr(r.first_error, bad[k][1]));
        s = load(name);
        assert_int_equal(s.n, 3);
        assert_true(isnan(s.items[0].preference) && isnan(s.items[1].preference));
        assert_non_null(strstr(s.items[0].error, bad[k][1]));
        assert_true(s.items[2].preference == 1.5); /* identical: never asked */
        annotations_free(&s);
        char path[700];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        size_t size = 0;
        char *text = test_read_file(path, &size);
        assert_non_null(text);
        assert_true(utf8_valid(text, size));
        free(text);
    }
    /* without retry_missing the missing ones stay; with it they are judged again */
    assert_int_equal(
        judge_files("model.json", "ref.json", "bad0.json", "answer.sh", 120, 0, &r, &err), 0);
    assert_true(r.n_judged == 0 && r.n_missing == 2);
    assert_int_equal(
        judge_files("model.json", "ref.json", "bad0.json", "answer.sh", 120, 1, &r, &err), 0);
    assert_true(r.n_judged == 2 && r.n_missing == 0);
    s = load("bad0.json");
    assert_true(s.items[0].preference == 2 && s.items[1].preference == 1);
    assert_null(s.items[0].error);
    annotations_free(&s);
    /* a file of other pairs is not silently mixed in */
    write_text("other.json", "[{\"instruction\": \"a\", \"output\": \"x\", \"generator\": \"o\"}]");
    assert_int_equal(
        judge_files("model.json", "other.json", "ok.json", "answer.sh", 120, 0, &r, &err), -1);
    assert_non_null(strstr(err.msg, "ok.json: record 0 does not hold the pair being judged"));
    assert_int_equal(
        judge_files("model.json", "other.json", "new.json", "answer.sh", 120, 0, &r, &err), -1);
    assert_non_null(strstr(err.msg, "model.json: record 1: no record of"));
    assert_non_null(strstr(err.msg, "other.json has its instruction"));
}

static int cutkit(const char *args, char **errout) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' eval judge %s", dir, CUTKIT_BINARY, args);
    char *out = NULL;
    int status = test_run(cmd, &out, errout);
    free(out);
    return status;
}

/* The binary: missing judgments exit 1 naming the count, the first error and --retry-missing;
 * a failure while running is 1, bad usage 2. */
static void test_cli(void **state) {
    (void)state;
    write_files();
    char *errout = NULL;
    assert_int_equal(cutkit("--outputs model.json --reference ref.json --out cli.json --judge "
                            "command --judge-command 'sh answer.sh'",
                            &errout),
                     0);
    assert_non_null(strstr(errout, "cli.json: 3 pairs, 3 judged now, 0 missing"));
    free(errout);
    assert_int_equal(cutkit("--outputs model.json --reference ref.json --out clibad.json --judge "
                            "command --judge-command 'sh fail.sh'",
                            &errout),
                     1);
    assert_non_null(strstr(errout, "record 0: judge command: command 'sh fail.sh' exited"));
    assert_non_null(strstr(errout, "cutkit eval judge: 2 judgments are missing (preference "
                                   "null); first error: judge command: command 'sh fail.sh' "
                                   "exited with status 1; stderr: judge API is down"));
    assert_non_null(strstr(errout, "--retry-missing"));
    free(errout);
    assert_int_equal(cutkit("--outputs model.json --reference other.json --out new.json --judge "
                            "synth",
                            &errout),
                     1);
    assert_non_null(strstr(errout, "cutkit eval judge: model.json: record 1: no record of"));
    free(errout);
    assert_int_equal(cutkit("--outputs model.json --reference ref.json --out x.json --judge "
                            "command",
                            &errout),
                     2);
    assert_non_null(strstr(errout, "--judge command needs --judge-command"));
    free(errout);
    assert_int_equal(
        cutkit("--outputs model.json --reference ref.json --out x.json --judge foo", &errout), 2);
    assert_non_null(strstr(errout, "--judge expects model, command or synth, got 'foo'"));
    free(errout);
    assert_int_equal(cutkit("--outputs model.json --out x.json", &errout), 2);
    assert_non_null(strstr(errout, "--reference is required"));
    free(errout);
}

/* --judge-base-dtype: a bf16 folder held as stored judges as the same folder widened to f32
 * (the same weight values); the embedded model cannot be held as bf16; a bad value is usage. */
static void test_judge_base_dtype(void **state) {
    (void)state;
    write_files();
    char cmd[4096], *errout = NULL;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' convert --to judge_bf16 --dtype bf16", dir,
             CUTKIT_BINARY);
    assert_int_equal(test_run(cmd, NULL, NULL), 0);
    assert_int_equal(cutkit("--outputs model.json --reference ref.json --out f32.json "
                            "--judge-model judge_bf16",
                            NULL),
                     0);
    assert_int_equal(cutkit("--outputs model.json --reference ref.json --out bf16.json "
                            "--judge-model judge_bf16 --judge-base-dtype bf16",
                            NULL),
                     0);
    AnnotationSet a = load("f32.json"), b = load("bf16.json");
    assert_int_equal(a.n, 3);
    assert_int_equal(b.n, a.n);
    for (int i = 0; i < a.n; i++) {
        assert_string_equal(a.items[i].instruction, b.items[i].instruction);
        assert_close(a.items[i].preference, b.items[i].preference, 1e-6);
    }
    annotations_free(&a);
    annotations_free(&b);
    assert_int_equal(
        cutkit("--outputs model.json --reference ref.json --out x.json --judge-base-dtype bf16",
               &errout),
        1);
    assert_non_null(strstr(errout, "--base-dtype bf16 needs a Hugging Face folder"));
    free(errout);
    assert_int_equal(cutkit("--outputs model.json --reference ref.json --out x.json "
                            "--judge-model judge_bf16 --judge-base-dtype f8",
                            &errout),
                     2);
    assert_non_null(strstr(errout, "f8"));
    free(errout);
}

/* ---- the local model judge --------------------------------------------------------------- */

/* log p(text) under the model, from tokenizer_encode + model_score_sequences. */
static double seq_logprob(const LanguageModel *lm, const char *text, int skip) {
    int *ids = NULL, n = 0;
    CkError err = {{0}};
    assert_int_equal(tokenizer_encode(&lm->tokenizer, text, 1, 0, &ids, &n, &err), 0);
    Activations a;
    assert_int_equal(activations_init(&a, &lm->model, n, n, 0, &err), 0);
    int offsets[2] = {0, n};
    TokenBatch b = {1, offsets, ids};
    int *targets = malloc(sizeof(int) * (size_t)n);
    double *lp = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) targets[i] = i + 1 < n ? ids[i + 1] : -1;
    assert_int_equal(model_score(&lm->model, &a, &b, targets, lp, &err), 0);
    double sum = 0;
    for (int i = skip; i + 1 < n; i++) sum += lp[i];
    activations_free(&a);
    free(ids);
    free(targets);
    free(lp);
    return sum;
}

static void test_model_judge(void **state) {
    (void)state;
    LanguageModel lm;
    PairwiseTemplate t;
    Judge j;
    CkError err = {{0}};
    assert_int_equal(lm_open(&lm, NULL, NULL, &err), 0);
    assert_int_equal(pairwise_template_load(&t, NULL, &err), 0);
    assert_int_equal(judge_model_create(&j, &lm.model, &lm.tokenizer, NULL, &t, NULL, &err), 0);
    const char *ins = "Write a short story about a cat.";
    const char *o1 = "The cat sat on the mat. It was happy.";
    const char *o2 = "Once upon a time, there was a little cat named Tom. He liked to play.";
    double p12, p21;
    char *raw = NULL;
    assert_int_equal(j.judge(j.ctx, ins, o1, o2, &p12, &raw, &err), 0);
    printf("  preference %.6f, raw %s\n", p12, raw);
    assert_true(p12 >= 1 && p12 <= 2);
    /* the same number from whole-sequence scores computed separately: the common prefix
     * cancels, so log p(prompt + verdict_1) - log p(prompt + verdict_2) decides */
    char *prompt = pairwise_template_format(t.prompt, ins, o1, o2, &err);
    size_t n = strlen(prompt) + 32;
    char *t1 = malloc(n), *t2 = malloc(n);
    snprintf(t1, n, "%s%s", prompt, t.verdict_1);
    snprintf(t2, n, "%s%s", prompt, t.verdict_2);
    double d = seq_logprob(&lm, t1, 0) - seq_logprob(&lm, t2, 0);
    double want = 2 - 1 / (1 + exp(-d));
    printf("  separate scores: log p difference %.6f, preference %.6f\n", d, want);
    assert_close(p12, want, 1e-5);
    free(raw);
    assert_int_equal(j.judge(j.ctx, ins, o2, o1, &p21, &raw, &err), 0);
    free(raw);
    /* the flip rule through the protocol: a switched pair reports 3 - (the judge's raw) */
    JudgeOptions opt = {0, 1, 0};
    Annotation a = {0};
    uint64_t seed = 0;
    while (!judge_is_switched(ins, seed)) seed++;
    opt.seed = seed;
    fill(&a, ins, o1, o2);
    assert_int_equal(judge_annotate(&j, &opt, &a, &err), 0);
    assert_int_equal(a.is_switched, 1);
    assert_close(a.preference, 3 - p21, 1e-12);
    opt.seed = seed + 1;
    while (judge_is_switched(ins, opt.seed)) opt.seed++;
    assert_int_equal(judge_annotate(&j, &opt, &a, &err), 0);
    assert_int_equal(a.is_switched, 0);
    assert_close(a.preference, p12, 1e-12);
    opt.both_orders = 1;
    assert_int_equal(judge_annotate(&j, &opt, &a, &err), 0);
    assert_close(a.preference, (p12 + 3 - p21) / 2, 1e-12);
    /* a prompt longer than the context is a failure (missing), not a verdict */
    char *huge = malloc(20001);
    memset(huge, 'z', 20000);
    huge[20000] = '\0';
    fill(&a, ins, huge, o2);
    opt.both_orders = 0;
    assert_int_equal(judge_annotate(&j, &opt, &a, &err), 0);
    assert_true(isnan(a.preference));
    assert_non_null(strstr(a.error, "context"));
    free(huge);
    annotation_clear(&a);
    free(prompt);
    free(t1);
    free(t2);
    judge_close(&j);
    pairwise_template_free(&t);
    lm_close(&lm);
}

/* ---- AlpacaEval's annotator prompts (eval/judge_template.h) ------------------------------ */

#define PROMPTS CUTKIT_SOURCE_DIR "/tests/fixtures/alpaca_eval_prompts/"

/* Writes text to path (a full path: write_text writes below the shared test folder). */
static void write_file(const char *path, const char *text) {
    assert_int_equal(test_write_file(path, text, strlen(text)), 0);
}

/* The two prompt files are AlpacaEval's, byte for byte. */
static void check_unchanged(const char *name, const char *sha) {
    char path[512], hex[65];
    snprintf(path, sizeof path, PROMPTS "%s", name);
    size_t n = 0;
    char *text = test_read_file(path, &n);
    assert_non_null(text);
    sha256_hex(text, n, hex);
    assert_string_equal(hex, sha);
    free(text);
}

/* AlpacaEval's two prompts load unchanged; filled and rendered in each form they equal
 * tests/fixtures/make_alpaca_prompt_fixture.py's independent filling (AlpacaEval's
 * make_prompts and prompt_to_chatml, written in Python). */
static void test_alpaca_prompts(void **state) {
    (void)state;
    check_unchanged("alpaca_eval_clf.txt",
                    "784227e6dc2832fc08c43d2c8ea3a308e7523780187a1aaad2f85e30bac85f62");
    check_unchanged("alpaca_eval.txt",
                    "cf4bace43fa6ac71944b9ca2506587ad7c509478a219e98a3950abf9d5b42a98");
    char *text = test_read_file(PROMPTS "expected.json", NULL);
    cJSON *e = cJSON_Parse(text);
    free(text);
    assert_non_null(e);
    const char *const forms[4] = {"raw", "plain", "chatml", "llama2"};
    const cJSON *c;
    int checked = 0;
    CkError err = {{0}};
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(e, "cases")) {
        const char *file = cJSON_GetObjectItemCaseSensitive(c, "prompt_file")->valuestring;
        PairwiseTemplate t;
        assert_int_equal(pairwise_template_load(&t,
                                                strcmp(file, "alpaca_eval.txt") == 0
                                                    ? PROMPTS "alpaca_eval_gpt4.json"
                                                    : PROMPTS "alpaca_eval_clf.json",
                                                &err),
                         0);
        assert_int_equal(t.syntax, JUDGE_SYNTAX_ALPACA_EVAL);
        assert_non_null(strstr(t.source, file));
        for (int k = 0; k < 4; k++) {
            t.chat = (JudgeChat)k;
            char *got = pairwise_template_render(
                &t, cJSON_GetObjectItemCaseSensitive(c, "instruction")->valuestring,
                cJSON_GetObjectItemCaseSensitive(c, "output_1")->valuestring,
                cJSON_GetObjectItemCaseSensitive(c, "output_2")->valuestring, &err);
            if (!got) fail_msg("%s", err.msg);
            assert_string_equal(got, cJSON_GetObjectItemCaseSensitive(c, forms[k])->valuestring);
            free(got);
            checked++;
        }
        pairwise_template_free(&t);
    }
    printf("  %d fillings and renderings equal the Python ones\n", checked);
    assert_int_equal(checked, 16);
    cJSON_Delete(e);
}

/* Bad AlpacaEval-style templates: one line naming the file and what is wrong. */
static void test_alpaca_prompt_errors(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char prompt[600], tpl[600];
    snprintf(prompt, sizeof prompt, "%s/judge_prompt.txt", dir);
    snprintf(tpl, sizeof tpl, "%s/judge.json", dir);
    write_file(tpl, "{\"prompt_file\": \"judge_prompt.txt\", \"verdict_1\": \"m\", "
                    "\"verdict_2\": \"M\", \"chat\": \"llama2\"}");
    const char *cases[][2] = {
        {"{\n  \"x\": \"{instruction}\"\n} {output_1} {output_2} {judgment}",
         "judge_prompt.txt: unknown placeholder {judgment} (known: {instruction}, {output_1}, "
         "{output_2})"},
        {"{instruction} {output_1} {output_2} {output_1}",
         "judge_prompt.txt: placeholder {output_1} occurs more than once"},
        {"no chat markers {instruction} {output_1} {output_2}",
         "judge_prompt.txt: a chat prompt starts with <|im_start|> and ends with <|im_end|>"},
        {"<|im_start|>user\n{instruction}\n<|im_end|>\n<|im_start|>assistant\n{output_1}\n"
         "<|im_end|>\n<|im_start|>user\n{output_2}\n<|im_end|>",
         "judge_prompt.txt: the llama2 rendering takes an optional system message and one user "
         "message, not 3 messages"},
    };
    PairwiseTemplate t;
    CkError err = {{0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_file(prompt, cases[k][0]);
        assert_int_equal(pairwise_template_load(&t, tpl, &err), -1);
        if (!strstr(err.msg, cases[k][1]) || strchr(err.msg, '\n'))
            fail_msg("got \"%s\", expected \"%s\"", err.msg, cases[k][1]);
        assert_non_null(strstr(err.msg, prompt)); /* the full path */
    }
    /* an AlpacaEval prompt file given where the template JSON goes */
    assert_int_equal(pairwise_template_load(&t, PROMPTS "alpaca_eval_clf.txt", &err), -1);
    printf("  %s\n", err.msg);
    assert_non_null(strstr(err.msg, "alpaca_eval_clf.txt: expected a template JSON object; an "
                                    "AlpacaEval prompt file goes in a template's \"prompt_file\""));
    /* bad choices, and both prompt fields */
    write_file(tpl, "{\"prompt_file\": \"judge_prompt.txt\", \"verdict_1\": \"m\", "
                    "\"verdict_2\": \"M\", \"chat\": \"jinja\"}");
    assert_int_equal(pairwise_template_load(&t, tpl, &err), -1);
    assert_non_null(strstr(err.msg, "field \"chat\" must be one of \"raw\", \"plain\""));
    write_file(tpl, "{\"prompt\": \"{instruction}\", \"prompt_file\": \"judge_prompt.txt\", "
                    "\"verdict_1\": \"m\", \"verdict_2\": \"M\"}");
    assert_int_equal(pairwise_template_load(&t, tpl, &err), -1);
    assert_non_null(strstr(err.msg, "give \"prompt\" or \"prompt_file\", not both"));
    /* a missing prompt file is named */
    write_file(tpl,
               "{\"prompt_file\": \"absent.txt\", \"verdict_1\": \"m\", \"verdict_2\": \"M\"}");
    assert_int_equal(pairwise_template_load(&t, tpl, &err), -1);
    assert_non_null(strstr(err.msg, "absent.txt"));
    /* cutkit's own syntax inline keeps its rules and messages; AlpacaEval's inline by choice */
    assert_int_equal(pairwise_template_parse(&t,
                                             "{\"prompt\": \"{ \\\"k\\\": 1 } {instruction}"
                                             "{output_1}{output_2}\", \"placeholders\": "
                                             "\"alpaca_eval\", \"verdict_1\": \"a\", "
                                             "\"verdict_2\": \"b\"}",
                                             "inline.json", &err),
                     0);
    char *s = pairwise_template_render(&t, "I", "A", "B", &err);
    assert_string_equal(s, "{ \"k\": 1 } IAB");
    free(s);
    pairwise_template_free(&t);
    assert_int_equal(pairwise_template_parse(&t,
                                             "{\"prompt\": \"{ \\\"k\\\": 1 } {instruction}\", "
                                             "\"verdict_1\": \"a\", \"verdict_2\": \"b\"}",
                                             "inline.json", &err),
                     -1);
    assert_non_null(strstr(err.msg, "inline.json: field \"prompt\": unknown placeholder"));
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

/* The model judge on a chat-style AlpacaEval prompt: its preference is that of the rendered
 * text + the verdicts, scored separately. */
static void test_model_judge_chat(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char prompt[600], tpl[600];
    snprintf(prompt, sizeof prompt, "%s/p.txt", dir);
    snprintf(tpl, sizeof tpl, "%s/t.json", dir);
    write_file(prompt, "<|im_start|>system\nPick the better story.\n<|im_end|>\n<|im_start|>user\n"
                       "{\n    \"instruction\": \"\"\"{instruction}\"\"\",\n}\n"
                       "m: {output_1}\nM: {output_2}\n<|im_end|>");
    write_file(tpl, "{\"prompt_file\": \"p.txt\", \"chat\": \"plain\", \"verdict_1\": \" m\", "
                    "\"verdict_2\": \" M\"}");
    LanguageModel lm;
    PairwiseTemplate t;
    Judge j;
    CkError err = {{0}};
    assert_int_equal(lm_open(&lm, NULL, NULL, &err), 0);
    assert_int_equal(pairwise_template_load(&t, tpl, &err), 0);
    assert_int_equal(judge_model_create(&j, &lm.model, &lm.tokenizer, NULL, &t, NULL, &err), 0);
    const char *ins = "Tell a story.", *o1 = "A cat slept.", *o2 = "Tom the dog ran to the park.";
    double p;
    char *raw = NULL;
    assert_int_equal(j.judge(j.ctx, ins, o1, o2, &p, &raw, &err), 0);
    char *text = pairwise_template_render(&t, ins, o1, o2, &err);
    assert_non_null(strstr(text, "System:\nPick the better story.\n\nUser:\n{\n"));
    assert_non_null(strstr(text, "M: Tom the dog ran to the park.\n\nAssistant:"));
    size_t n = strlen(text) + 8;
    char *t1 = malloc(n), *t2 = malloc(n);
    snprintf(t1, n, "%s m", text);
    snprintf(t2, n, "%s M", text);
    double d = seq_logprob(&lm, t1, 0) - seq_logprob(&lm, t2, 0);
    printf("  preference %.6f, separately %.6f\n", p, 2 - 1 / (1 + exp(-d)));
    assert_close(p, 2 - 1 / (1 + exp(-d)), 1e-5);
    free(t1), free(t2), free(text), free(raw);
    judge_close(&j);
    pairwise_template_free(&t);
    lm_close(&lm);
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

/* The synthetic world's judge is either built or says clearly that it is not. */
static void test_synth_judge(void **state) {
    (void)state;
    Judge j;
    CkError err = {{0}};
    if (judge_synth_create(&j, &err) != 0) {
        assert_non_null(strstr(err.msg, "the synthetic-world judge is not built"));
        return;
    }
    assert_string_equal(j.name, "synth_rules");
    judge_close(&j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_template),
        cmocka_unit_test(test_switch),
        cmocka_unit_test(test_protocol),
        cmocka_unit_test(test_command_judges),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_judge_base_dtype),
        cmocka_unit_test(test_model_judge),
        cmocka_unit_test(test_synth_judge),
        cmocka_unit_test(test_alpaca_prompts),
        cmocka_unit_test(test_alpaca_prompt_errors),
        cmocka_unit_test(test_model_judge_chat),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
