/* test_refine_batch.c — refine's batched decoding (refine_run with batch B, model/generate_batch.h)
 * on the embedded model: every refinement equals the one-record-at-a-time path (generate_text
 * on the record's prompt with its own seed, cut at the stop string, cleaned and stripped) and
 * the file is the same bytes at B = 1, 3 and 16, greedy and sampled (20 records of mixed lengths);
 * records that finish out of order are still written in file order, so a run stopped part way
 * (stop_after, SIGINT to the binary) and resumed at another B gives the uninterrupted file;
 * --base-dtype holds a bf16 folder's weights as stored and is kept in refine.json.
 *
 * Ties: a decoding step of up to 16 rows gives each row the bits it gets alone, but a step that
 * also prefills a prompt runs BLAS over more rows, which rounds differently (~1e-6): greedy picks
 * equal the unbatched ones unless two logits tie within that (none do on these records); a
 * sampled draw can likewise differ where it lands within that rounding of a boundary of the
 * nucleus (measured: one token in about 24000 at top-p 0.9, none at top-p 1). These records
 * draw none there, so the test asks for equality. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test_util.h"

#include <cjson/cJSON.h>

#include "formats/lm.h"
#include "model/generate.h"
#include "train/refine_run.h"
#include "util/pystr.h"
#include "util/strbuf.h"
#include "util/utf8.h"

enum { N_RECORDS = 20, MAX_NEW = 24 };

static char *dir;
static char judgments[700];

static const char *NAMES[] = {"Lily", "Tom", "Sue", "Max", "Ben", "Mia"};
static const char *THINGS[] = {"cat", "dog", "ball", "tree", "kite", "boat", "cake"};

/* Record i: prompts of mixed lengths (outputs of 1 to 9 sentences), an input every fifth. */
static void record_fields(int i, StrBuf *instruction, StrBuf *input, StrBuf *output,
                          StrBuf *judgment) {
    const char *n = NAMES[i % 6], *t = THINGS[(i * 5) % 7];
    strbuf_printf(instruction, i % 3 ? "Tell me a story about %s and the %s." : "Once upon a time",
                  n, t);
    if (i % 5 == 0) strbuf_printf(input, "%s liked the %s.", n, t);
    for (int k = 0; k <= (i * 7) % 9; k++)
        strbuf_printf(output, "%s%s %s.", k ? " " : "", NAMES[(i + k) % 6],
                      k % 2 ? "ran home" : "played with a toy");
    strbuf_printf(judgment, i % 2 ? "Say more about the %s." : "Why was %s sad?", i % 2 ? t : n);
}

static int setup(void **state) {
    (void)state;
    dir = test_temp_dir();
    snprintf(judgments, sizeof judgments, "%s/j.jsonl", dir);
    StrBuf file = {0};
    for (int i = 0; i < N_RECORDS; i++) {
        StrBuf ins = {0}, inp = {0}, out = {0}, jud = {0};
        record_fields(i, &ins, &inp, &out, &jud);
        strbuf_printf(&file, "{\"instruction\": \"%s\", ", ins.p);
        if (inp.n) strbuf_printf(&file, "\"input\": \"%s\", ", inp.p);
        strbuf_printf(&file, "\"output\": \"%s\", \"judgment\": \"%s\"}\n", out.p, jud.p);
        strbuf_free(&ins);
        strbuf_free(&inp);
        strbuf_free(&out);
        strbuf_free(&jud);
    }
    int rc = test_write_file(judgments, file.p, file.n);
    strbuf_free(&file);
    return rc;
}

static int teardown(void **state) {
    (void)state;
    int rc = test_remove_dir(dir);
    free(dir);
    return rc;
}

static const char *at(const char *name) {
    static char buf[32][700]; /* a pool, so that options may keep pointers into it */
    static int i;
    i = (i + 1) % 32;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static RefineRunOptions options(const char *out, int batch) {
    RefineRunOptions o;
    refine_run_options_init(&o);
    o.judgments = judgments;
    o.out = out;
    o.max_new_tokens = MAX_NEW;
    o.batch = batch;
    return o;
}

static char *refinements(const char *out) {
    char path[800];
    snprintf(path, sizeof path, "%s/refinements.jsonl", out);
    return test_read_file(path, NULL);
}

static char *run_file(RefineRunOptions o) {
    RefineRunReport r;
    CkError err = {{0}};
    if (refine_run(&o, &r, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(r.n_written, N_RECORDS);
    assert_int_equal(r.stopped_early, 0);
    return refinements(o.out);
}

typedef struct {
    StrBuf text;
    const char *stop;
} Sink;

static int sink_piece(void *ctx, int token, const char *piece, size_t len) {
    (void)token;
    Sink *s = ctx;
    assert_int_equal(strbuf_put(&s->text, piece, len), 0);
    assert_int_equal(strbuf_put(&s->text, "", 0), 0);
    return strstr(s->text.p, s->stop) != NULL;
}

/* Record i's refinement one record at a time, as refine did before batching: generate_text on
 * its prompt, seeded by (seed, i), cut at the stop string, bad UTF-8 replaced, stripped. */
static char *unbatched(const LanguageModel *lm, const RefineTemplate *tpl, int i, float temperature,
                       uint64_t seed) {
    StrBuf ins = {0}, inp = {0}, out = {0}, jud = {0};
    record_fields(i, &ins, &inp, &out, &jud);
    CkError err = {{0}};
    char *prompt = refine_format(tpl, ins.p, inp.n ? inp.p : NULL, out.p, jud.p, &err);
    assert_non_null(prompt);
    GenerateOptions g = {MAX_NEW, temperature, 0.9f, refine_record_seed(seed, i), 1};
    Sink sink = {{0}, tpl->stop};
    assert_int_equal(strbuf_put(&sink.text, "", 0), 0);
    GenerateStats st;
    if (generate_text(&lm->model, &lm->tokenizer, prompt, &g, sink_piece, &sink, NULL, &st, &err))
        fail_msg("%s", err.msg);
    char *cut = strstr(sink.text.p, tpl->stop);
    StrBuf clean = {0};
    assert_int_equal(
        utf8_put_lossy(&clean, sink.text.p, cut ? (size_t)(cut - sink.text.p) : sink.text.n), 0);
    assert_int_equal(strbuf_put(&clean, "", 0), 0);
    size_t start, len;
    pystr_strip(clean.p, clean.n, &start, &len);
    char *text = strndup(clean.p + start, len);
    strbuf_free(&clean);
    strbuf_free(&sink.text);
    free(prompt);
    strbuf_free(&ins);
    strbuf_free(&inp);
    strbuf_free(&out);
    strbuf_free(&jud);
    return text;
}

/* Each line's refinement is the unbatched one; the lines are in file order. */
static void check_unbatched(const char *file, float temperature, uint64_t seed) {
    LanguageModel lm;
    RefineTemplate tpl;
    CkError err = {{0}};
    assert_int_equal(lm_open(&lm, NULL, NULL, &err), 0);
    assert_int_equal(refine_template_default(&tpl, &err), 0);
    const char *line = file;
    for (int i = 0; i < N_RECORDS; i++) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        char *copy = strndup(line, (size_t)(nl - line));
        cJSON *obj = cJSON_Parse(copy);
        assert_non_null(obj);
        assert_int_equal(cJSON_GetObjectItem(obj, "index")->valueint, i);
        char *want = unbatched(&lm, &tpl, i, temperature, seed);
        assert_string_equal(cJSON_GetObjectItem(obj, "refinement")->valuestring, want);
        free(want);
        cJSON_Delete(obj);
        free(copy);
        line = nl + 1;
    }
    assert_string_equal(line, "");
    refine_template_free(&tpl);
    lm_close(&lm);
}

/* The files at each of batches[0 .. n - 1] (the first 1) are the same bytes, and the
 * unbatched path's refinements. */
static void check_batches(float temperature, uint64_t seed, const char *tag, const int *batches,
                          int n) {
    char name[64];
    char *files[3];
    for (int k = 0; k < n; k++) {
        snprintf(name, sizeof name, "%s%d", tag, batches[k]);
        RefineRunOptions o = options(at(name), batches[k]);
        o.temperature = temperature;
        o.seed = seed;
        files[k] = run_file(o);
        if (k > 0) assert_string_equal(files[k], files[0]);
    }
    check_unbatched(files[0], temperature, seed);
    for (int k = 0; k < n; k++) free(files[k]);
}

static void test_greedy_same_at_every_batch(void **state) {
    (void)state;
    const int batches[3] = {1, 3, 16};
    check_batches(0.0f, 42, "g", batches, 3);
}

static void test_sampled_same_at_every_batch(void **state) {
    (void)state;
    const int batches[2] = {1, 16};
    check_batches(0.9f, 5, "s", batches, 2);
}

/* At B = 16 the records finish out of order; stop_after still leaves the first lines, and a
 * resume at another B completes the file as an uninterrupted run (at a third B) writes it. */
static void test_stop_and_resume_across_batches(void **state) {
    (void)state;
    RefineRunOptions o = options(at("sfull"), 7);
    o.temperature = 0.9f;
    char *full = run_file(o);
    o = options(at("spart"), 16);
    o.temperature = 0.9f;
    o.stop_after = 5;
    RefineRunReport r;
    CkError err = {{0}};
    assert_int_equal(refine_run(&o, &r, &err), 0);
    assert_int_equal(r.stopped_early, 1);
    assert_int_equal(r.n_written, 5);
    char *part = refinements(at("spart"));
    assert_int_equal(strncmp(part, full, strlen(part)), 0); /* the first five lines, whole */
    free(part);
    o.stop_after = 0;
    o.resume = 1;
    o.batch = 5;
    assert_int_equal(refine_run(&o, &r, &err), 0);
    assert_int_equal(r.n_resumed, 5);
    assert_int_equal(r.n_written, N_RECORDS);
    part = refinements(at("spart"));
    assert_string_equal(part, full);
    free(part);

    /* a stop requested before the run: nothing is written, the run says it stopped */
    volatile sig_atomic_t stop = 1;
    o = options(at("sstop"), 16);
    o.stop = &stop;
    assert_int_equal(refine_run(&o, &r, &err), 0);
    assert_int_equal(r.stopped_early, 1);
    assert_int_equal(r.n_written, 0);
    free(full);
}

/* SIGINT to the binary at B = 16 while records decode: it writes the finished lines in order,
 * exits 0 saying so, and --resume completes the file. */
static void test_sigint_and_resume(void **state) {
    (void)state;
    StrBuf many = {0};
    for (int i = 0; i < 36; i++)
        strbuf_printf(&many,
                      "{\"instruction\": \"Story %d\", \"output\": \"Lily ran.\", "
                      "\"judgment\": \"Say why she ran.\"}\n",
                      i);
    char many_path[700], out[700], lines[800], errs[800];
    snprintf(many_path, sizeof many_path, "%s", at("many.jsonl"));
    test_write_file(many_path, many.p, many.n);
    strbuf_free(&many);
    RefineRunOptions o = options(at("ifull"), 16);
    o.judgments = many_path;
    RefineRunReport r;
    CkError err = {{0}};
    assert_int_equal(refine_run(&o, &r, &err), 0);
    char *full = refinements(at("ifull"));

    snprintf(out, sizeof out, "%s", at("int"));
    snprintf(lines, sizeof lines, "%s/refinements.jsonl", out);
    snprintf(errs, sizeof errs, "%s", at("int.err"));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(errs, "w", stderr)) _exit(126);
        execl(CUTKIT_BINARY, CUTKIT_BINARY, "refine", "--judgments", many_path, "--out", out,
              "--max-new-tokens", "24", "--batch", "16", (char *)NULL);
        _exit(127);
    }
    struct stat st;
    for (int i = 0; i < 20000; i++) { /* until a line is written (or 20 s) */
        if (stat(lines, &st) == 0 && st.st_size > 0) break;
        usleep(1000);
    }
    kill(pid, SIGINT);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char *text = refinements(out);
    assert_int_equal(strncmp(text, full, strlen(text)), 0); /* whole lines, in order */
    free(text);
    char *log = test_read_file(errs, NULL);
    assert_true(strstr(log, "stopped after") || strstr(log, "36 refinements"));
    free(log);
    o.out = out;
    o.resume = 1;
    o.batch = 7;
    assert_int_equal(refine_run(&o, &r, &err), 0);
    assert_int_equal(r.n_written, 36);
    text = refinements(out);
    assert_string_equal(text, full);
    free(text);
    free(full);
}

/* --base-dtype: a bf16 folder held as stored gives the same file at B = 1 and 16, and the
 * setting is kept in refine.json (a resume in f32 is refused); the embedded model is refused. */
static void test_base_dtype(void **state) {
    (void)state;
    char cmd[3000], *errout = NULL;
    snprintf(cmd, sizeof cmd, "'%s' convert --to '%s' --dtype bf16", CUTKIT_BINARY, at("bf16"));
    assert_int_equal(test_run(cmd, NULL, NULL), 0);
    for (int b = 0; b < 2; b++) {
        snprintf(cmd, sizeof cmd,
                 "'%s' refine --judgments '%s' --out '%s' --model '%s' --base-dtype bf16 "
                 "--max-new-tokens 24 --limit 8 --batch %d",
                 CUTKIT_BINARY, judgments, at(b ? "h16" : "h1"), at("bf16"), b ? 16 : 1);
        assert_int_equal(test_run(cmd, NULL, NULL), 0);
    }
    char *a = refinements(at("h1")), *b = refinements(at("h16"));
    assert_non_null(a);
    assert_string_equal(a, b);
    free(a);
    free(b);
    char *settings = test_read_file(at("h1/refine.json"), NULL);
    assert_non_null(strstr(settings, "\"base_dtype\":\t\"bf16\""));
    free(settings);
    snprintf(cmd, sizeof cmd,
             "'%s' refine --judgments '%s' --out '%s' --model '%s' --max-new-tokens 24 --limit 8 "
             "--resume",
             CUTKIT_BINARY, judgments, at("h1"), at("bf16"));
    assert_int_equal(test_run(cmd, NULL, &errout), 1);
    assert_non_null(strstr(errout, "\"base_dtype\""));
    free(errout);

    snprintf(cmd, sizeof cmd, "'%s' refine --judgments '%s' --out '%s' --base-dtype bf16",
             CUTKIT_BINARY, judgments, at("hemb"));
    assert_int_equal(test_run(cmd, NULL, &errout), 1);
    assert_non_null(strstr(errout, "--base-dtype bf16 needs a Hugging Face folder"));
    free(errout);
    snprintf(cmd, sizeof cmd, "'%s' refine --judgments '%s' --out '%s' --base-dtype int4",
             CUTKIT_BINARY, judgments, at("hbad"));
    assert_int_equal(test_run(cmd, NULL, NULL), 2);
    snprintf(cmd, sizeof cmd, "'%s' refine --judgments '%s' --out '%s' --batch 0", CUTKIT_BINARY,
             judgments, at("hbad"));
    assert_int_equal(test_run(cmd, NULL, NULL), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_same_at_every_batch),
        cmocka_unit_test(test_sampled_same_at_every_batch),
        cmocka_unit_test(test_stop_and_resume_across_batches),
        cmocka_unit_test(test_sigint_and_resume),
        cmocka_unit_test(test_base_dtype),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
