/* test_refine.c — the refinement pipeline (refine_run) on the embedded model: the
 * refinements.jsonl format and the skipped count, the template's formatting, a run stopped
 * (or killed) part way and resumed writes the bytes of an uninterrupted run, a torn last line
 * is dropped, refused resumes, bad input named by file, line and field with nothing written;
 * and the `cutkit refine` binary. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test_util.h"

#include <cjson/cJSON.h>

#include "train/refine_run.h"
#include "util/strbuf.h"

static char *dir;

/* Five records: negatives 0, 2 (with an input) and 4, a positive (null judgment) 1 and a
 * positive by score 3. */
static const char JUDGMENTS[] =
    "{\"instruction\": \"Tell me a story about a cat.\", \"output\": \"The cat sat.\", "
    "\"judgment\": \"Too short: say more about the cat.\"}\n"
    "{\"instruction\": \"Write about a dog.\", \"output\": \"A dog ran home.\", "
    "\"judgment\": null}\n"
    "{\"instruction\": \"Continue the story:\", \"input\": \"Tom had a red car.\", "
    "\"output\": \"He sold it.\", \"judgment\": \"It ignores the car's colour.\"}\n"
    "{\"instruction\": \"Name a fruit.\", \"output\": \"An apple.\", "
    "\"judgment\": \"Fine.\", \"score\": 9}\n"
    "{\"instruction\": \"Once upon a time\", \"output\": \"there was a bird\", "
    "\"judgment\": \"The bird does nothing; give it a {goal}.\"}\n";

static int setup(void **state) {
    (void)state;
    dir = test_temp_dir();
    char path[600];
    snprintf(path, sizeof path, "%s/j.jsonl", dir);
    return test_write_file(path, JUDGMENTS, strlen(JUDGMENTS));
}

static int teardown(void **state) {
    (void)state;
    int rc = test_remove_dir(dir);
    free(dir);
    return rc;
}

static const char *at(const char *name) {
    static char buf[64][700]; /* a pool, so that options may keep pointers into it */
    static int i;
    i = (i + 1) % 64;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static RefineRunOptions options(const char *out, int max_new_tokens) {
    RefineRunOptions o;
    refine_run_options_init(&o);
    static char judgments[700];
    snprintf(judgments, sizeof judgments, "%s/j.jsonl", dir);
    o.judgments = judgments;
    o.out = out;
    o.max_new_tokens = max_new_tokens;
    return o;
}

static char *refinements(const char *out) {
    char path[800];
    snprintf(path, sizeof path, "%s/refinements.jsonl", out);
    return test_read_file(path, NULL);
}

static void test_format(void **state) {
    (void)state;
    RefineTemplate t;
    CkError err = {{0}};
    assert_int_equal(refine_template_default(&t, &err), 0);
    char *p = refine_format(&t, "Do X.", NULL, "Did Y.", "Not X: {wrong}", &err);
    assert_non_null(p);
    /* the values are inserted as they are, never re-scanned for fields */
    assert_non_null(strstr(p, "### Instruction:\nDo X.\n\n### Response:\nDid Y.\n\n"
                              "### Judgment:\nNot X: {wrong}\n\n### Improved response:\n"));
    assert_null(strstr(p, "### Input:"));
    free(p);
    p = refine_format(&t, "Do X.", "the input", "Did Y.", "Bad.", &err);
    assert_non_null(strstr(p, "### Input:\nthe input\n\n### Response:"));
    free(p);
    /* an empty input is no input, as in the CUT templates */
    p = refine_format(&t, "Do X.", "", "Did Y.", "Bad.", &err);
    assert_null(strstr(p, "### Input:"));
    free(p);
    refine_template_free(&t);

    const char *tpl = "{\"prompt_no_input\": \"{{{instruction}}} {output}|{judgment}\","
                      " \"prompt_input\": \"{instruction}+{input}\", \"stop\": \"END\"}";
    test_write_file(at("t.json"), tpl, strlen(tpl));
    assert_int_equal(refine_template_load(&t, at("t.json"), &err), 0);
    assert_string_equal(t.stop, "END");
    p = refine_format(&t, "a", NULL, "b", "c", &err);
    assert_string_equal(p, "{a} b|c");
    free(p);
    refine_template_free(&t);
}

/* Greedy refinements of the three negatives, in file order, in the documented shape. */
static void test_output_format(void **state) {
    (void)state;
    RefineRunOptions o = options(at("fmt"), 12);
    RefineRunReport r;
    CkError err = {{0}};
    assert_int_equal(refine_run(&o, &r, &err), 0);
    assert_int_equal(r.n_read, 5);
    assert_int_equal(r.n_skipped, 2);
    assert_int_equal(r.n_to_refine, 3);
    assert_int_equal(r.n_written, 3);
    assert_int_equal(r.stopped_early, 0);
    char *text = refinements(at("fmt"));
    assert_non_null(text);
    const int want_index[3] = {0, 2, 4};
    const char *keys[6] = {"index", "instruction", "input", "output", "judgment", "refinement"};
    char *line = text;
    for (int k = 0; k < 3; k++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        cJSON *obj = cJSON_Parse(line);
        assert_non_null(obj);
        const cJSON *f = obj->child;
        for (int i = 0; i < 6; i++, f = f->next) {
            assert_non_null(f);
            assert_string_equal(f->string, keys[i]);
        }
        assert_null(f);
        assert_int_equal(cJSON_GetObjectItem(obj, "index")->valueint, want_index[k]);
        assert_true(k == 1 ? cJSON_IsString(cJSON_GetObjectItem(obj, "input"))
                           : cJSON_IsNull(cJSON_GetObjectItem(obj, "input")));
        const cJSON *ref = cJSON_GetObjectItem(obj, "refinement");
        assert_true(cJSON_IsString(ref) && ref->valuestring[0]);
        cJSON_Delete(obj);
        line = nl + 1;
    }
    assert_string_equal(line, "");
    free(text);
    struct stat st;
    assert_int_equal(stat(at("fmt/refine.json"), &st), 0);
}

/* Stopped after one line, a torn line added (what a kill mid-write leaves), resumed: the
 * file equals an uninterrupted run's, with sampling so that the seeds matter. */
static void test_resume_equals_uninterrupted(void **state) {
    (void)state;
    RefineRunOptions o = options(at("full"), 24);
    o.temperature = 0.9f;
    RefineRunReport r;
    CkError err = {{0}};
    assert_int_equal(refine_run(&o, &r, &err), 0);
    char *full = refinements(at("full"));

    o.out = at("part");
    o.stop_after = 1;
    assert_int_equal(refine_run(&o, &r, &err), 0);
    assert_int_equal(r.stopped_early, 1);
    assert_int_equal(r.n_written, 1);
    FILE *f = fopen(at("part/refinements.jsonl"), "ab");
    fputs("{\"index\": 2, \"instruction\": \"Contin", f);
    fclose(f);
    o.stop_after = 0;
    o.resume = 1;
    assert_int_equal(refine_run(&o, &r, &err), 0);
    assert_int_equal(r.n_resumed, 1);
    assert_int_equal(r.n_written, 3);
    char *part = refinements(at("part"));
    assert_string_equal(part, full);
    free(part);

    /* a resume with nothing left to do changes nothing */
    assert_int_equal(refine_run(&o, &r, &err), 0);
    assert_int_equal(r.n_resumed, 3);
    part = refinements(at("part"));
    assert_string_equal(part, full);
    free(part);
    free(full);
}

/* A child process killed (SIGKILL) while refining many records; the resumed file equals an
 * uninterrupted run's. */
static void test_kill_and_resume(void **state) {
    (void)state;
    StrBuf many = {0};
    for (int i = 0; i < 20; i++)
        strbuf_printf(&many,
                      "{\"instruction\": \"Story %d\", \"output\": \"Lily ran.\", "
                      "\"judgment\": \"Say why she ran.\"}\n",
                      i);
    test_write_file(at("many.jsonl"), many.p, many.n);
    strbuf_free(&many);
    char many_path[700], killed[700], lines[800];
    snprintf(many_path, sizeof many_path, "%s", at("many.jsonl"));
    snprintf(killed, sizeof killed, "%s", at("killed"));
    snprintf(lines, sizeof lines, "%s/refinements.jsonl", killed);
    RefineRunOptions o = options(at("kfull"), 32);
    o.judgments = many_path;
    RefineRunReport r;
    CkError err = {{0}};
    assert_int_equal(refine_run(&o, &r, &err), 0);
    char *full = refinements(at("kfull"));

    /* the binary, not a forked copy of this process: OpenMP does not survive a fork */
    o.out = killed;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(CUTKIT_BINARY, CUTKIT_BINARY, "refine", "--judgments", o.judgments, "--out", o.out,
              "--max-new-tokens", "32", (char *)NULL);
        _exit(127);
    }
    struct stat st;
    for (int i = 0; i < 20000; i++) { /* until a line is written (or 20 s) */
        if (stat(lines, &st) == 0 && st.st_size > 0) break;
        usleep(1000);
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    o.resume = 1;
    int rc = refine_run(&o, &r, &err);
    if (rc != 0) print_message("%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(r.n_written, 20);
    assert_true(r.n_resumed < 20); /* the kill came part way */
    char *resumed = refinements(killed);
    assert_string_equal(resumed, full);
    free(resumed);
    free(full);
}

/* A record whose prompt fills the context: refused (naming it, the lines before it kept), or
 * skipped and counted under skip_too_long, where a resume skips it again. */
static void test_too_long(void **state) {
    (void)state;
    StrBuf b = {0};
    strbuf_puts(&b, "{\"instruction\": \"Story A\", \"output\": \"Lily ran.\", "
                    "\"judgment\": \"Why?\"}\n{\"instruction\": \"Story B\", \"output\": \"");
    for (int i = 0; i < 400; i++) strbuf_puts(&b, "Tom ran. ");
    strbuf_puts(&b, "\", \"judgment\": \"Too long.\"}\n{\"instruction\": \"Story C\", "
                    "\"output\": \"Sue sat.\", \"judgment\": \"Why?\"}\n");
    char judgments[700];
    snprintf(judgments, sizeof judgments, "%s", at("long.jsonl"));
    test_write_file(judgments, b.p, b.n);
    strbuf_free(&b);
    RefineRunOptions o = options(at("long1"), 8);
    o.judgments = judgments;
    RefineRunReport r;
    CkError err = {{0}};
    assert_int_equal(refine_run(&o, &r, &err), -1);
    assert_non_null(strstr(err.msg, "long.jsonl: record 1: the prompt has"));
    assert_non_null(strstr(err.msg, "the model's context is 512"));
    char *text = refinements(at("long1"));
    assert_non_null(strstr(text, "Story A"));
    assert_null(strstr(text, "Story B"));
    free(text);

    o.out = at("long2");
    o.skip_too_long = 1;
    assert_int_equal(refine_run(&o, &r, &err), 0);
    assert_int_equal(r.n_too_long, 1);
    assert_int_equal(r.n_written, 2);
    char *full = refinements(at("long2"));
    o.out = at("long3");
    o.stop_after = 1;
    assert_int_equal(refine_run(&o, &r, &err), 0);
    o.stop_after = 0;
    o.resume = 1;
    assert_int_equal(refine_run(&o, &r, &err), 0);
    assert_int_equal(r.n_resumed, 1);
    assert_int_equal(r.n_too_long, 1);
    text = refinements(at("long3"));
    assert_string_equal(text, full);
    free(text);
    free(full);
}

static void test_refused(void **state) {
    (void)state;
    RefineRunOptions o = options(at("ref"), 4);
    RefineRunReport r;
    CkError err = {{0}};
    assert_int_equal(refine_run(&o, &r, &err), 0);
    /* a fresh run over refinements */
    assert_int_equal(refine_run(&o, &r, &err), -1);
    assert_non_null(strstr(err.msg, "--resume"));
    /* a resume with another seed */
    o.resume = 1;
    o.seed = 7;
    assert_int_equal(refine_run(&o, &r, &err), -1);
    assert_non_null(strstr(err.msg, "\"seed\""));
    /* a line that is not the record expected there */
    o.seed = 42;
    char *text = refinements(at("ref"));
    char *second = strchr(text, '\n') + 1;
    test_write_file(at("ref/refinements.jsonl"), second, strlen(second));
    assert_int_equal(refine_run(&o, &r, &err), -1);
    assert_non_null(strstr(err.msg, "refinements.jsonl:1: field \"index\""));
    free(text);
}

static void test_bad_input(void **state) {
    (void)state;
    const char *bad = "{\"instruction\": \"a\", \"output\": \"b\", \"judgment\": \"c\"}\n"
                      "{\"instruction\": \"a\", \"output\": 3, \"judgment\": \"c\"}\n";
    test_write_file(at("bad.jsonl"), bad, strlen(bad));
    RefineRunOptions o = options(at("bad"), 4);
    o.judgments = at("bad.jsonl");
    RefineRunReport r;
    CkError err = {{0}};
    assert_int_equal(refine_run(&o, &r, &err), -1);
    assert_non_null(strstr(err.msg, "bad.jsonl:2"));
    assert_non_null(strstr(err.msg, "output"));
    struct stat st;
    assert_int_not_equal(stat(at("bad"), &st), 0); /* nothing written */

    const char *tpl = "{\"prompt_no_input\": \"{instruction} {answer}\", \"prompt_input\": \"x\"}";
    test_write_file(at("badt.json"), tpl, strlen(tpl));
    o = options(at("bad"), 4);
    o.template_path = at("badt.json");
    assert_int_equal(refine_run(&o, &r, &err), -1);
    assert_non_null(strstr(err.msg, "badt.json: field \"prompt_no_input\""));
    assert_non_null(strstr(err.msg, "{answer}"));
    assert_int_not_equal(stat(at("bad"), &st), 0);

    tpl = "{\"prompt_no_input\": \"{instruction} {input}\", \"prompt_input\": \"x\"}";
    test_write_file(at("badt.json"), tpl, strlen(tpl));
    assert_int_equal(refine_run(&o, &r, &err), -1);
    assert_non_null(strstr(err.msg, "field {input} has no value"));

    o = options(at("bad"), 4);
    o.judgment_format = "csv";
    assert_int_equal(refine_run(&o, &r, &err), -1);
    assert_non_null(strstr(err.msg, "csv"));
}

static void test_cli(void **state) {
    (void)state;
    char cmd[3000], *errout = NULL;
    snprintf(cmd, sizeof cmd, "'%s' refine --judgments '%s' --out '%s' --max-new-tokens 6",
             CUTKIT_BINARY, at("j.jsonl"), at("cli"));
    assert_int_equal(test_run(cmd, NULL, &errout), 0);
    assert_non_null(strstr(errout, "3 refinements"));
    assert_non_null(strstr(errout, "2 records skipped"));
    assert_non_null(strstr(errout, "ETA"));
    free(errout);
    RefineRunOptions o = options(at("lib"), 6);
    RefineRunReport r;
    CkError err = {{0}};
    assert_int_equal(refine_run(&o, &r, &err), 0);
    char *a = refinements(at("cli")), *b = refinements(at("lib"));
    assert_string_equal(a, b);
    free(a);
    free(b);
    snprintf(cmd, sizeof cmd, "'%s' refine --out '%s'", CUTKIT_BINARY, at("cli2"));
    assert_int_equal(test_run(cmd, NULL, NULL), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_output_format),
        cmocka_unit_test(test_resume_equals_uninterrupted),
        cmocka_unit_test(test_kill_and_resume),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
