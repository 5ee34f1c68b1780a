/* test_judgments.c — judgment loaders (CUT JSON, Shepherd, generic JSONL) with the record
 * counts their PROVENANCE files state, every malformed-record message, the built-in Alpaca
 * templates byte for byte, CUT example construction with the embedded tokenizer and by hand
 * (the reference's truncate-then-EOS order), its counts, and Align-P downsampling with
 * Python's random (test vectors printed by CPython 3.11). The whole pipeline on the real
 * files against an emulation of the reference is tests/test_cut_reference_data.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "formats/embedded.h"
#include "datasets/judgments.h"
#include "datasets/templates.h"
#include "util/pyrandom.h"

static Tokenizer tok;
static char *dir;

static int setup(void **state) {
    (void)state;
    size_t size;
    const void *data = embedded_tokenizer(&size);
    CkError err = {{0}};
    if (tokenizer_load_llama2c(&tok, data, size, 512, &err) != 0) return -1;
    dir = test_temp_dir();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tokenizer_free(&tok);
    int rc = test_remove_dir(dir);
    free(dir);
    return rc;
}

static char *write_tmp(const char *name, const char *text) {
    char *path = malloc(600);
    snprintf(path, 600, "%s/%s", dir, name);
    assert_int_equal(test_write_file(path, text, strlen(text)), 0);
    return path;
}

/* Hard-coded from cut-spec §1.1, independently of templates.c. */
static const char SPEC_PLAIN[] =
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n";
static const char SPEC_JUDGE[] =
    "Below is an instruction that describes a task. Write a response to the instruction and the "
    "response should match the corresponding judgment.\n\n### Instruction:\n{instruction}\n\n"
    "### Judgment:\n{judgment}\n\n### Response:\n";

static void test_default_templates_match_spec(void **state) {
    (void)state;
    Template t;
    CkError err = {{0}};
    assert_int_equal(template_default(&t, &err), 0);
    assert_string_equal(t.prompt_no_input, SPEC_PLAIN);
    assert_string_equal(t.prompt_no_input_judge, SPEC_JUDGE);
    assert_string_equal(t.response_split, "### Response:");
    assert_string_equal(TEMPLATE_ALPACA_PROMPT_NO_INPUT, SPEC_PLAIN);
    char *s = template_format(t.prompt_no_input_judge, "Add 2 and 3.", "Wrong sum.", &err);
    assert_non_null(s);
    assert_string_equal(s, "Below is an instruction that describes a task. Write a response to "
                           "the instruction and the response should match the corresponding "
                           "judgment.\n\n### Instruction:\nAdd 2 and 3.\n\n### Judgment:\n"
                           "Wrong sum.\n\n### Response:\n");
    free(s);
    template_free(&t);
}

static void test_format_rules(void **state) {
    (void)state;
    CkError err = {{0}};
    /* values are inserted verbatim: braces inside them are not placeholders */
    char *s = template_format("{{x}} {instruction}|{judgment}", "a {judgment}", "j", &err);
    assert_string_equal(s, "{x} a {judgment}|j");
    free(s);
    assert_null(template_format("{input}", "a", "j", &err));
    assert_string_equal(err.msg, "unknown placeholder {input} in the template");
    assert_null(template_format("{judgment}", "a", NULL, &err));
    assert_string_equal(err.msg, "placeholder {judgment} has no value here");
    assert_null(template_format("a } b", "a", NULL, &err));
    assert_string_equal(err.msg, "single '}' at byte 2 of the template");
    assert_null(template_format("ab {instruction", "a", NULL, &err));
    assert_string_equal(err.msg, "unterminated '{' at byte 3 of the template");
    s = template_join_input("Summarize.", "Text here");
    assert_string_equal(s, "Summarize.\nText here");
    free(s);
    s = template_join_input("Summarize.", "");
    assert_string_equal(s, "Summarize.");
    free(s);
    s = template_join_input("Summarize.", NULL);
    assert_string_equal(s, "Summarize.");
    free(s);
}

static void test_template_file(void **state) {
    (void)state;
    CkError err = {{0}};
    Template t;
    char *path = write_tmp("tpl.json", "{\"description\": \"mine\", \"prompt_no_input\": \"Q: "
                                       "{instruction}\\nA:\", \"prompt_no_input_judge\": \"Q: "
                                       "{instruction}\\nJ: {judgment}\\nA:\", "
                                       "\"response_split\": \"A:\"}");
    assert_int_equal(template_load(&t, path, &err), 0);
    assert_string_equal(t.prompt_no_input, "Q: {instruction}\nA:");
    assert_string_equal(t.response_split, "A:");
    template_free(&t);
    free(path);
    path = write_tmp("bad.json", "{\"prompt_no_input\": \"{instruction}\"}");
    assert_int_equal(template_load(&t, path, &err), -1);
    char want[700];
    snprintf(want, sizeof want, "%s: missing field \"prompt_no_input_judge\"", path);
    assert_string_equal(err.msg, want);
    free(path);
    path = write_tmp("bad2.json", "{\"prompt_no_input\": \"{instruction} {judgment}\", "
                                  "\"prompt_no_input_judge\": \"\", \"response_split\": \"\"}");
    assert_int_equal(template_load(&t, path, &err), -1);
    snprintf(want, sizeof want,
             "%s: field \"prompt_no_input\": placeholder {judgment} has no value here", path);
    assert_string_equal(err.msg, want);
    free(path);
    path = write_tmp("bad3.json", "[1]");
    assert_int_equal(template_load(&t, path, &err), -1);
    snprintf(want, sizeof want, "%s: expected a JSON object", path);
    assert_string_equal(err.msg, want);
    free(path);
}

/* CUT iteration files: per cut-spec §4.2 / PROVENANCE (positive, negative, "$ERROR$"). */
static void test_cut_counts(void **state) {
    (void)state;
    const int pos[5] = {713, 769, 758, 755, 754}, neg[5] = {287, 231, 242, 245, 246};
    const int errs[5] = {47, 3, 0, 1, 0};
    for (int k = 0; k < 5; k++) {
        char rel[200];
        snprintf(rel, sizeof rel, "data/cut/data/iter/train-alpaca-sample-iter%d.json", k + 1);
        char *path = test_shared_path(rel);
        if (!path) skip();
        JudgmentSet s;
        CkError err = {{0}};
        assert_int_equal(judgments_load(&s, path, JUDGMENTS_CUT_JSON, NULL, &err), 0);
        assert_int_equal(s.n_read, 1000);
        assert_int_equal(s.n_positive, pos[k]);
        assert_int_equal(s.n_negative, neg[k]);
        assert_int_equal(s.n_error, errs[k]);
        assert_int_equal(s.n_skipped, 0);
        assert_int_equal(s.n, 1000 - errs[k]); /* "$ERROR$" dropped by default */
        for (int i = 0; i < s.n; i++) {
            assert_non_null(s.records[i].input); /* always a string here, maybe "" */
            assert_int_equal(s.records[i].has_score, 0);
        }
        judgments_free(&s);
        JudgmentLoadOptions keep = {0, 1};
        assert_int_equal(judgments_load(&s, path, JUDGMENTS_CUT_JSON, &keep, &err), 0);
        assert_int_equal(s.n, 1000);
        assert_int_equal(s.records[999].source_index, 999);
        /* Align-P downsampling at 0.25 keeps int(0.25 * negatives) positives (spec §4.2) */
        unsigned char *mask = malloc((size_t)s.n), *mask2 = malloc((size_t)s.n);
        assert_int_equal(judgments_downsample(&s, 0.25, 42, mask), neg[k] + neg[k] / 4);
        assert_int_equal(judgments_downsample(&s, 0.25, 42, mask2), neg[k] + neg[k] / 4);
        assert_memory_equal(mask, mask2, (size_t)s.n);
        for (int i = 0; i < s.n; i++)
            if (s.records[i].judgment) assert_int_equal(mask[i], 1);
        assert_int_equal(judgments_downsample(&s, -1, 42, mask), 1000);
        free(mask);
        free(mask2);
        judgments_free(&s);
        free(path);
    }
}

static void test_shepherd_counts(void **state) {
    (void)state;
    char *path = test_shared_path("data/shepherd/human_data_for_model.jsonl");
    if (!path) skip();
    JudgmentSet s;
    CkError err = {{0}};
    assert_int_equal(judgments_load(&s, path, JUDGMENTS_SHEPHERD, NULL, &err), 0);
    assert_int_equal(s.n, 1317);
    assert_int_equal(s.n_read, 1317);
    assert_int_equal(s.n_negative, 1317); /* score = 1: all negative (spec §4.3) */
    assert_int_equal(s.n_positive, 0);
    assert_int_equal(s.n_error, 0);
    assert_null(s.records[0].input);
    assert_int_equal(s.records[0].has_score, 1);
    assert_true(strncmp(s.records[0].instruction, "Jolene and Phil", 15) == 0);
    size_t len = strlen(s.records[0].output);
    assert_true(len >= 2 && !strcmp(s.records[0].output + len - 2, "\n\n"));
    assert_int_equal(s.records[1316].source_index, 1316);
    unsigned char *mask = malloc(1317);
    assert_int_equal(judgments_downsample(&s, 0.25, 42, mask), 1317); /* no positives */
    free(mask);
    judgments_free(&s);
    free(path);
}

/* Loads text written to name in fmt and expects failure with "<path><suffix>". */
static void expect_fail(const char *name, const char *text, JudgmentFormat fmt,
                        const char *suffix) {
    char *path = write_tmp(name, text);
    JudgmentSet s;
    CkError err = {{0}};
    assert_int_equal(judgments_load(&s, path, fmt, NULL, &err), -1);
    char want[800];
    snprintf(want, sizeof want, "%s%s", path, suffix);
    assert_string_equal(err.msg, want);
    assert_null(s.records);
    free(path);
}

static void test_malformed_cut_json(void **state) {
    (void)state;
    const char *ok = "{\"instruction\": \"i\", \"output\": \"o\", \"judgment\": null}";
    char text[600];
    snprintf(text, sizeof text, "[%s, {\"instruction\": \"i\", \"judgment\": null}]", ok);
    expect_fail("a.json", text, JUDGMENTS_CUT_JSON, ": record 1: missing field \"output\"");
    snprintf(text, sizeof text, "[%s, {\"instruction\": 3, \"output\": \"o\", \"judgment\": null}]",
             ok);
    expect_fail("a.json", text, JUDGMENTS_CUT_JSON,
                ": record 1: field \"instruction\" must be a string");
    expect_fail("a.json", "[{\"instruction\": \"i\", \"output\": \"o\"}]", JUDGMENTS_CUT_JSON,
                ": record 0: missing field \"judgment\"");
    expect_fail("a.json", "[{\"instruction\": \"i\", \"output\": \"o\", \"judgment\": 1}]",
                JUDGMENTS_CUT_JSON, ": record 0: field \"judgment\" must be a string or null");
    expect_fail("a.json",
                "[{\"instruction\": \"i\", \"input\": [], \"output\": \"o\", "
                "\"judgment\": null}]",
                JUDGMENTS_CUT_JSON, ": record 0: field \"input\" must be a string or null");
    expect_fail("a.json",
                "[{\"instruction\": \"i\", \"output\": \"o\", \"judgment\": null, "
                "\"score\": \"7\"}]",
                JUDGMENTS_CUT_JSON, ": record 0: field \"score\" must be a number");
    expect_fail("a.json", "[{\"instruction\": \"i\", \"output\": \"o\xff\", \"judgment\": null}]",
                JUDGMENTS_CUT_JSON, ": record 0: field \"output\" is not valid UTF-8");
    expect_fail("a.json", "[\"x\"]", JUDGMENTS_CUT_JSON, ": record 0: expected a JSON object");
    expect_fail("a.json", "{\"instruction\": \"i\"}", JUDGMENTS_CUT_JSON,
                ": expected a JSON array of records");
    expect_fail("a.json", "[\n{\"instruction\": \"i\",\n\"output\" \"o\"}]", JUDGMENTS_CUT_JSON,
                ":3: invalid JSON");
}

static void test_malformed_jsonl(void **state) {
    (void)state;
    const char *ok = "{\"instruction\": \"i\", \"output\": \"o\", \"judgment\": \"bad\"}\n";
    char text[600];
    /* the blank line still counts as a line */
    snprintf(text, sizeof text, "%s\n{\"instruction\": \"i\", \"output\": \"o\"}\n", ok);
    expect_fail("g.jsonl", text, JUDGMENTS_JSONL, ":3: missing field \"judgment\"");
    snprintf(text, sizeof text, "%s{\"instruction\": \"i\", \"output\": \"o\",", ok);
    expect_fail("g.jsonl", text, JUDGMENTS_JSONL, ":2: invalid JSON");
    expect_fail("g.jsonl", "[1]\n", JUDGMENTS_JSONL, ":1: expected a JSON object");
    expect_fail("g.jsonl",
                "{\"instruction\": \"\xed\xa0\x80\", \"output\": \"o\", "
                "\"judgment\": null}\n",
                JUDGMENTS_JSONL, ":1: field \"instruction\" is not valid UTF-8");
    expect_fail("s.jsonl", "{\"question\": \"q\", \"answer\": \"a\", \"feedback\": null}\n",
                JUDGMENTS_SHEPHERD, ":1: field \"feedback\" must be a string");
    expect_fail("s.jsonl", "{\"question\": \"q\", \"feedback\": \"f\"}\n", JUDGMENTS_SHEPHERD,
                ":1: missing field \"answer\"");
    expect_fail("s.jsonl",
                "{\"question\": \"q\", \"answer\": \"a\xc0\x80\", \"feedback\": "
                "\"f\"}\n",
                JUDGMENTS_SHEPHERD, ":1: field \"answer\" is not valid UTF-8");
}

static void test_generic_jsonl_and_skip(void **state) {
    (void)state;
    char *path = write_tmp(
        "g.jsonl",
        "{\"instruction\": \"a\", \"input\": \"x\", \"output\": \"o\", \"judgment\": null}\n"
        "{\"instruction\": \"b\", \"output\": \"o\", \"judgment\": \"Too short.\"}\r\n"
        "{\"instruction\": \"c\", \"output\": 5, \"judgment\": null}\n"
        "not json\n"
        "{\"instruction\": \"d\", \"output\": \"o\", \"judgment\": \"$ERROR$\"}\n"
        "{\"instruction\": \"e\", \"output\": \"o\", \"judgment\": \"fine\", \"score\": 7}\n");
    JudgmentSet s;
    CkError err = {{0}};
    JudgmentLoadOptions skip = {1, 0};
    assert_int_equal(judgments_load(&s, path, JUDGMENTS_JSONL, &skip, &err), 0);
    assert_int_equal(s.n_skipped, 2);
    assert_int_equal(s.n_read, 4);
    assert_int_equal(s.n_positive, 2);
    assert_int_equal(s.n_negative, 2);
    assert_int_equal(s.n_error, 1);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.records[0].input, "x");
    assert_null(s.records[0].judgment);
    assert_string_equal(s.records[1].judgment, "Too short.");
    assert_null(s.records[1].input);
    assert_int_equal(s.records[2].source_index, 5);
    assert_null(s.records[2].judgment); /* score >= 7 forces positive */
    assert_int_equal(s.records[2].has_score, 1);
    judgments_free(&s);
    JudgmentLoadOptions keep = {1, 1};
    assert_int_equal(judgments_load(&s, path, JUDGMENTS_JSONL, &keep, &err), 0);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.records[2].judgment, "$ERROR$");
    judgments_free(&s);
    assert_int_equal(judgments_load(&s, path, JUDGMENTS_JSONL, NULL, &err), -1);
    char want[700];
    snprintf(want, sizeof want, "%s:3: field \"output\" must be a string", path);
    assert_string_equal(err.msg, want);
    free(path);
}

/* Checks a sequence against the reference's definition, built here from the pieces. */
static void check_sequence(const CutSequence *q, const char *prompt, const char *output) {
    CkError err = {{0}};
    size_t lp = strlen(prompt), lo = strlen(output);
    char *full = malloc(lp + lo + 1);
    memcpy(full, prompt, lp);
    memcpy(full + lp, output, lo + 1);
    int *ids, n, *pids, np;
    assert_int_equal(tokenizer_encode(&tok, full, 1, 1, &ids, &n, &err), 0);
    assert_int_equal(tokenizer_encode(&tok, prompt, 1, 0, &pids, &np, &err), 0);
    assert_int_equal(q->n, n);
    assert_memory_equal(q->tokens, ids, (size_t)n * sizeof(int));
    assert_int_equal(q->prompt_len, np);
    assert_int_equal(q->tokens[0], 1);     /* BOS */
    assert_int_equal(q->tokens[n - 1], 2); /* EOS */
    assert_int_equal(q->trained[n - 1], 1);
    for (int i = 0; i < n; i++) assert_int_equal(q->trained[i], i >= np);
    free(ids);
    free(pids);
    free(full);
}

static void test_examples_real_record(void **state) {
    (void)state;
    char *path = test_shared_path("data/cut/data/iter/train-alpaca-sample-iter1.json");
    if (!path) skip();
    JudgmentSet s;
    CkError err = {{0}};
    assert_int_equal(judgments_load(&s, path, JUDGMENTS_CUT_JSON, NULL, &err), 0);
    Template tpl;
    assert_int_equal(template_default(&tpl, &err), 0);
    int neg = -1, pos = -1;
    for (int i = 0; i < s.n && (neg < 0 || pos < 0); i++) {
        if (s.records[i].judgment && neg < 0) neg = i;
        if (!s.records[i].judgment && pos < 0) pos = i;
    }
    assert_true(neg >= 0 && pos >= 0);
    const JudgmentRecord *r = &s.records[neg];
    char *instr = template_join_input(r->instruction, r->input);
    char *judge = template_format(SPEC_JUDGE, instr, r->judgment, &err);
    char *plain = template_format(SPEC_PLAIN, instr, NULL, &err);
    CutExample ex;
    assert_int_equal(judgments_build_example(&tpl, r, &tok, 0, &ex, &err), 0);
    assert_int_equal(ex.negative, 1);
    check_sequence(&ex.a, judge, r->output);
    check_sequence(&ex.m, plain, r->output);
    /* Align-N and Misalign responses are the same ids at the same distance from the end */
    int k = ex.n_response;
    assert_int_equal(ex.a.n - ex.a.prompt_len, k);
    assert_int_equal(ex.m.n - ex.m.prompt_len, k);
    assert_true(k >= 2);
    assert_memory_equal(ex.a.tokens + ex.a.n - k, ex.m.tokens + ex.m.n - k, k * sizeof(int));
    int full_len = ex.a.n, prompt_len = ex.a.prompt_len;
    int m_full = ex.m.n, m_prompt = ex.m.prompt_len;
    int *resp = malloc((size_t)k * sizeof(int));
    memcpy(resp, ex.a.tokens + ex.a.n - k, (size_t)k * sizeof(int));
    judgments_example_free(&ex);

    /* left truncation: keep the last `cut` tokens of the text's ids, then append EOS; the
     * prompt shrinks by what was cut */
    int cut = k + 5;
    assert_true(cut < m_full - 1);
    assert_int_equal(judgments_build_reference_example(&tpl, r, &tok, cut, &ex, &err), 0);
    assert_int_equal(ex.a.n, cut + 1);
    assert_int_equal(ex.a.n_cut, full_len - 1 - cut);
    assert_int_equal(ex.a.prompt_len, prompt_len - (full_len - 1 - cut));
    assert_int_equal(ex.m.prompt_len, m_prompt - (m_full - 1 - cut));
    assert_int_equal(ex.a.prompt_len, 6);
    assert_int_equal(ex.n_response, k);
    assert_memory_equal(ex.a.tokens + 6, resp, (size_t)k * sizeof(int));
    assert_memory_equal(ex.m.tokens + 6, resp, (size_t)k * sizeof(int));
    for (int i = 0; i <= cut; i++) assert_int_equal(ex.a.trained[i], i >= 6);
    judgments_example_free(&ex);
    /* the context-bounded form: at most cut + 1 tokens is the same construction */
    assert_int_equal(judgments_build_example(&tpl, r, &tok, cut + 1, &ex, &err), 0);
    assert_int_equal(ex.a.n, cut + 1);
    assert_int_equal(ex.a.prompt_len, 6);
    judgments_example_free(&ex);
    /* a cutoff inside the response: nothing is masked, the response's tail and EOS are kept */
    assert_int_equal(judgments_build_reference_example(&tpl, r, &tok, k - 2, &ex, &err), 0);
    assert_int_equal(ex.a.prompt_len, -1);
    assert_int_equal(ex.n_response, k - 1);
    assert_int_equal(ex.a.n, k - 1);
    assert_memory_equal(ex.a.tokens, resp + 1, (size_t)(k - 1) * sizeof(int));
    for (int i = 0; i < ex.a.n; i++) assert_int_equal(ex.a.trained[i], 1);
    judgments_example_free(&ex);
    free(resp);
    free(instr);
    free(judge);
    free(plain);

    /* a positive record: Align-P only */
    r = &s.records[pos];
    instr = template_join_input(r->instruction, r->input);
    plain = template_format(SPEC_PLAIN, instr, NULL, &err);
    assert_int_equal(judgments_build_example(&tpl, r, &tok, 2048, &ex, &err), 0);
    assert_int_equal(ex.negative, 0);
    check_sequence(&ex.a, plain, r->output);
    assert_int_equal(ex.m.n, 0);
    assert_null(ex.m.tokens);
    judgments_example_free(&ex);
    free(instr);
    free(plain);
    template_free(&tpl);
    judgments_free(&s);
    free(path);
}

/* Every record of every shared file builds, negatives with aligned responses. */
static void test_examples_all_records(void **state) {
    (void)state;
    const char *rels[6] = {"data/cut/data/iter/train-alpaca-sample-iter1.json",
                           "data/cut/data/iter/train-alpaca-sample-iter2.json",
                           "data/cut/data/iter/train-alpaca-sample-iter3.json",
                           "data/cut/data/iter/train-alpaca-sample-iter4.json",
                           "data/cut/data/iter/train-alpaca-sample-iter5.json",
                           "data/shepherd/human_data_for_model.jsonl"};
    Template tpl;
    CkError err = {{0}};
    assert_int_equal(template_default(&tpl, &err), 0);
    for (int f = 0; f < 6; f++) {
        char *path = test_shared_path(rels[f]);
        if (!path) continue;
        JudgmentSet s;
        JudgmentLoadOptions keep = {0, 1};
        assert_int_equal(
            judgments_load(&s, path, f < 5 ? JUDGMENTS_CUT_JSON : JUDGMENTS_SHEPHERD, &keep, &err),
            0);
        for (int i = 0; i < s.n; i++) {
            CutExample ex;
            if (judgments_build_example(&tpl, &s.records[i], &tok, 2048, &ex, &err) != 0)
                fail_msg("%s: %s", rels[f], err.msg);
            judgments_example_free(&ex);
        }
        judgments_free(&s);
        free(path);
    }
    template_free(&tpl);
}

/* ---------------------------------------------------------------------------------------- */
/* truncation edge cases, on token lists computed by hand */

/* A byte-level llama2.c tokenizer: <unk>, BOS, EOS, then <0x00>..<0xFF> and nothing else, so
 * there is no merge and no " " piece: encode gives BOS, the dummy prefix as the byte 0x20, then
 * one byte token per character (id 3 + byte), and EOS. */
static int byte_tokenizer(Tokenizer *t) {
    unsigned char buf[4 + 259 * 16];
    size_t off = 4;
    const int32_t max_len = 8;
    memcpy(buf, &max_len, 4);
    for (int i = 0; i < 259; i++) {
        char piece[16];
        if (i < 3)
            snprintf(piece, sizeof piece, "%s", i == 0 ? "<unk>" : i == 1 ? "\n<s>\n" : "\n</s>\n");
        else
            snprintf(piece, sizeof piece, "<0x%02X>", i - 3);
        const float score = 0.0f;
        const int32_t len = (int32_t)strlen(piece);
        memcpy(buf + off, &score, 4);
        memcpy(buf + off + 4, &len, 4);
        memcpy(buf + off + 8, piece, (size_t)len);
        off += 8 + (size_t)len;
    }
    CkError err = {{0}};
    return tokenizer_load_llama2c(t, buf, off, 259, &err);
}

#define BT(c) (3 + (c)) /* the byte token of character c */

/* Checks q against the hand-made tokens and the number of masked leading tokens. */
static void expect_seq(const CutSequence *q, const int *tokens, int n, int prompt_len) {
    assert_int_equal(q->n, n);
    assert_memory_equal(q->tokens, tokens, (size_t)n * sizeof(int));
    assert_int_equal(q->prompt_len, prompt_len);
    for (int i = 0; i < n; i++) assert_int_equal(q->trained[i], i >= prompt_len);
}

/* The reference's tokenize() (finetune_unlikelihood.py): the text's ids (BOS first) are cut
 * to their last `cutoff` when longer, THEN EOS is appended, so a sequence may be cutoff + 1
 * long and BOS is cut like any other token; the prompt length (BOS included) is reduced by
 * what was cut from the full sequence beyond what was cut from the prompt alone (which comes
 * to "minus what was cut from the full sequence"), and a prompt length <= 0 masks nothing. */
static void test_examples_truncation_by_hand(void **state) {
    (void)state;
    Tokenizer bt;
    assert_int_equal(byte_tokenizer(&bt), 0);
    Template tpl = {"Q:{instruction}\n", "Q:{instruction}\nJ:{judgment}\n", "A:"};
    JudgmentRecord r = {"ab", NULL, "xyz", "no", 0, 0.0, 0};
    CkError err = {{0}};
    /* Misalign: "Q:ab\n" + "xyz": BOS, prefix, 5 prompt bytes, 3 response bytes (10 ids),
     * EOS; the prompt alone is 7 tokens (BOS + prefix + 5) */
    const int m_full[11] = {1,        BT(' '), BT('Q'), BT(':'), BT('a'), BT('b'),
                            BT('\n'), BT('x'), BT('y'), BT('z'), 2};
    /* Align-N: "Q:ab\nJ:no\n" + "xyz": prompt 12 tokens, 15 ids, 16 with EOS */
    const int a_full[16] = {1,        BT(' '), BT('Q'), BT(':'), BT('a'), BT('b'),
                            BT('\n'), BT('J'), BT(':'), BT('n'), BT('o'), BT('\n'),
                            BT('x'),  BT('y'), BT('z'), 2};
    struct {
        int cutoff;
        int m_start, m_prompt; /* first kept token of m_full (= ids cut), masked tokens */
        int a_start, a_prompt;
    } cases[] = {
        {0, 0, 7, 0, 12},   /* no cutoff */
        {16, 0, 7, 0, 12},  /* above every length: nothing cut */
        {15, 0, 7, 0, 12},  /* Align-N's ids fit exactly: 16 tokens with EOS, nothing cut */
        {10, 0, 7, 5, 7},   /* A loses BOS, prefix, "Q:a"; its prompt shrinks by 5 */
        {9, 1, 6, 6, 6},    /* M loses BOS only: EOS comes after the cut */
        {4, 6, 1, 11, 1},   /* longer prompts than the cutoff: 7 - 6 = 1 masked */
        {3, 7, 0, 12, 0},   /* prompt length 0: nothing masked, the response and EOS kept */
        {2, 8, -1, 13, -1}, /* -1: nothing masked, "x" cut from the response */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        CutExample ex;
        assert_int_equal(
            judgments_build_reference_example(&tpl, &r, &bt, cases[k].cutoff, &ex, &err), 0);
        printf("  cutoff %2d: Align-N %2d tokens (prompt %2d), Misalign %2d (prompt %2d), "
               "%d response tokens\n",
               cases[k].cutoff, ex.a.n, ex.a.prompt_len, ex.m.n, ex.m.prompt_len, ex.n_response);
        assert_int_equal(ex.negative, 1);
        expect_seq(&ex.m, m_full + cases[k].m_start, 11 - cases[k].m_start, cases[k].m_prompt);
        expect_seq(&ex.a, a_full + cases[k].a_start, 16 - cases[k].a_start, cases[k].a_prompt);
        assert_int_equal(ex.m.n_cut, cases[k].m_start);
        assert_int_equal(ex.a.n_cut, cases[k].a_start);
        assert_int_equal(ex.m.tokens[ex.m.n - 1], 2); /* EOS survives every cutoff */
        if (cases[k].cutoff > 0) assert_true(ex.a.n <= cases[k].cutoff + 1);
        assert_int_equal(ex.n_response, cases[k].cutoff == 2 ? 3 : 4);
        judgments_example_free(&ex);
        /* the context-bounded form keeps at most cutoff + 1 tokens: the same sequences */
        if (cases[k].cutoff == 0) continue;
        assert_int_equal(judgments_build_example(&tpl, &r, &bt, cases[k].cutoff + 1, &ex, &err), 0);
        expect_seq(&ex.a, a_full + cases[k].a_start, 16 - cases[k].a_start, cases[k].a_prompt);
        judgments_example_free(&ex);
    }
    /* a positive record builds Align-P alone, truncated the same way */
    r.judgment = NULL;
    CutExample ex;
    assert_int_equal(judgments_build_reference_example(&tpl, &r, &bt, 4, &ex, &err), 0);
    assert_int_equal(ex.negative, 0);
    expect_seq(&ex.a, m_full + 6, 5, 1);
    assert_int_equal(ex.m.n, 0);
    judgments_example_free(&ex);
    /* a limit of one token has no room for EOS */
    assert_int_equal(judgments_build_example(&tpl, &r, &bt, 1, &ex, &err), -1);
    assert_string_equal(err.msg, "a length limit of 1 token leaves no room for EOS");
    assert_null(ex.a.tokens);
    tokenizer_free(&bt);
}

/* judgments_build_examples: downsampling, construction and the counts the trainer warns
 * with, on hand-made records and the byte tokenizer. */
static void test_build_examples_counts(void **state) {
    (void)state;
    Tokenizer bt;
    assert_int_equal(byte_tokenizer(&bt), 0);
    Template tpl = {"Q:{instruction}\n", "Q:{instruction}\nJ:{judgment}\n", "A:"};
    /* ids without EOS: Align-N 12 + |output| ("Q:ab\nJ:no\n": judgment "no"), Misalign
     * 7 + |output|, Align-P 7 + |output|; "$ERROR$" makes Align-N 17 + |output| */
    JudgmentRecord recs[] = {
        {"ab", NULL, "xyz", "no", 0, 0.0, 0},          /* A 15 ids: cut at 10, M 10: kept */
        {"ab", NULL, "xyz", NULL, 0, 0.0, 1},          /* P 10 ids */
        {"ab", NULL, "xyzxyzxyz", "no", 0, 0.0, 2},    /* A 21, M 16: both cut, judgment lost */
        {"ab", NULL, "xyz", NULL, 0, 0.0, 3},          /* P */
        {"ab", NULL, "xyz", "$ERROR$", 0, 0.0, 4},     /* A 20, cut */
        {"ab", NULL, "xyzxyzxyzxyz", NULL, 0, 0.0, 5}, /* P 19: cut into the response */
    };
    JudgmentSet s = {recs, 6, 6, 3, 3, 1, 0};
    CutBuildOptions o;
    judgments_build_options_init(&o);
    assert_int_equal(o.cutoff, 2048);
    assert_true(o.align_p_ratio < 0);
    assert_int_equal((int)o.align_p_seed, 42);
    o.cutoff = 10;
    CutExampleSet set;
    CkError err = {{0}};
    assert_int_equal(judgments_build_examples(&s, &tpl, &bt, &o, &set, &err), 0);
    assert_int_equal(set.n, 6);
    for (int i = 0; i < 6; i++) assert_int_equal(set.record[i], i);
    const CutBuildStats *st = &set.stats;
    assert_int_equal(st->n_records, 6);
    assert_int_equal(st->n_positive, 3);
    assert_int_equal(st->n_negative, 3);
    assert_int_equal(st->n_positive_kept, 3);
    assert_int_equal(st->n_examples, 6);
    assert_int_equal(st->n_error, 1);
    /* A0, A2, M2, A4, P5 */
    assert_int_equal(st->n_truncated, 5);
    /* A2 and M2 are the last 10 ids of "...\nxyzxyzxyz" + EOS: the prompt length is
     * 12 - 11 = 1 and 7 - 6 = 1; P5 (19 ids, 9 cut) has 7 - 9 = -2 */
    assert_int_equal(set.examples[2].a.prompt_len, 1);
    assert_int_equal(set.examples[5].a.prompt_len, -2);
    assert_int_equal(st->n_response_cut, 1);
    assert_int_equal(st->n_judgment_lost, 1);
    assert_int_equal(set.examples[2].a.n, 11);
    judgments_example_set_free(&set);
    assert_null(set.examples);

    /* ratio 0.5 of 3 negatives keeps int(1.5) = 1 of the 3 positives: Python's
     * random.seed(42); random.sample([1, 3, 5], 1) == [5] */
    o.align_p_ratio = 0.5;
    o.cutoff = 0;
    assert_int_equal(judgments_build_examples(&s, &tpl, &bt, &o, &set, &err), 0);
    assert_int_equal(set.n, 4);
    assert_int_equal(set.stats.n_positive_kept, 1);
    assert_int_equal(set.stats.n_truncated, 0);
    assert_int_equal(set.record[0], 0);
    assert_int_equal(set.record[1], 2);
    assert_int_equal(set.record[2], 4);
    assert_int_equal(set.record[3], 5);
    judgments_example_set_free(&set);
    /* ratio 0 keeps no positive; ratio 1 keeps all (int(3) is not below 3), as do the
     * defaults (no downsampling) */
    o.align_p_ratio = 0;
    assert_int_equal(judgments_build_examples(&s, &tpl, &bt, &o, &set, &err), 0);
    assert_int_equal(set.n, 3);
    judgments_example_set_free(&set);
    o.align_p_ratio = 1;
    assert_int_equal(judgments_build_examples(&s, &tpl, &bt, &o, &set, &err), 0);
    assert_int_equal(set.n, 6);
    judgments_example_set_free(&set);
    assert_int_equal(judgments_build_examples(&s, &tpl, &bt, NULL, &set, &err), 0);
    assert_int_equal(set.n, 6);
    assert_int_equal(set.stats.n_truncated, 0);
    judgments_example_set_free(&set);
    tokenizer_free(&bt);
}

/* util/pyrandom.h against numbers CPython 3.11 printed:
 *   random.seed(42); [random.getrandbits(32) for _ in range(3)]
 *   random.seed(42); random.sample(range(713), 71)   (the set method: 713 > 21 + 4**4)
 *   random.seed(42); random.sample(range(10), 4)     (the pool method)
 *   random.seed(0); random.sample(range(30), 8)      (pool: 30 <= 21 + 4**3)
 *   random.seed(2**40 + 7); [random.getrandbits(32) for _ in range(2)]   (a two-word seed) */
static void test_pyrandom_matches_python(void **state) {
    (void)state;
    PyRandom r;
    pyrandom_seed(&r, 42);
    assert_int_equal(pyrandom_getrandbits(&r, 32), 2746317213u);
    assert_int_equal(pyrandom_getrandbits(&r, 32), 478163327u);
    assert_int_equal(pyrandom_getrandbits(&r, 32), 107420369u);
    const int want713[71] = {
        654, 114, 25,  281, 250, 228, 142, 104, 692, 558, 89,  604, 432, 32,  30,  95,  223, 238,
        517, 616, 27,  574, 203, 665, 429, 225, 459, 603, 284, 6,   163, 348, 159, 220, 344, 94,
        389, 99,  367, 352, 618, 270, 44,  470, 549, 127, 387, 80,  565, 300, 643, 633, 370, 591,
        196, 71,  46,  677, 233, 296, 81,  103, 464, 650, 373, 166, 379, 363, 214, 686, 273};
    int got[71];
    pyrandom_seed(&r, 42);
    assert_int_equal(pyrandom_sample(&r, 713, 71, got), 0);
    assert_memory_equal(got, want713, sizeof want713);
    const int want10[4] = {1, 0, 4, 9};
    pyrandom_seed(&r, 42);
    assert_int_equal(pyrandom_sample(&r, 10, 4, got), 0);
    assert_memory_equal(got, want10, sizeof want10);
    const int want30[8] = {27, 12, 24, 13, 1, 8, 16, 15};
    pyrandom_seed(&r, 0);
    assert_int_equal(pyrandom_sample(&r, 30, 8, got), 0);
    assert_memory_equal(got, want30, sizeof want30);
    pyrandom_seed(&r, (1ull << 40) + 7);
    assert_int_equal(pyrandom_getrandbits(&r, 32), 2635837658u);
    assert_int_equal(pyrandom_getrandbits(&r, 32), 3209733218u);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_templates_match_spec),
        cmocka_unit_test(test_format_rules),
        cmocka_unit_test(test_template_file),
        cmocka_unit_test(test_cut_counts),
        cmocka_unit_test(test_shepherd_counts),
        cmocka_unit_test(test_malformed_cut_json),
        cmocka_unit_test(test_malformed_jsonl),
        cmocka_unit_test(test_generic_jsonl_and_skip),
        cmocka_unit_test(test_examples_real_record),
        cmocka_unit_test(test_examples_all_records),
        cmocka_unit_test(test_examples_truncation_by_hand),
        cmocka_unit_test(test_build_examples_counts),
        cmocka_unit_test(test_pyrandom_matches_python),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
