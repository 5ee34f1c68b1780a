/* test_benchmarks_mmlu.c — MMLU: the subject table, the CSV reader (hand-written files and the
 * shared copy) and the prompts of every template era, compared byte for byte with
 * tests/fixtures/benchmark_prompts.json (made by make_benchmark_prompts.py from the harness's
 * code, not from cutkit's). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/mmlu.h"
#include "datasets/mmlu_prompt.h"
#include "tests/test_util.h"
#include "util/sha256.h"
#include "util/strbuf.h"

#define FIXTURES CUTKIT_SOURCE_DIR "/tests/fixtures"

/* Fails unless got equals want, printing where they part. */
static void expect_same(const char *what, const char *got, const char *want) {
    if (strcmp(got, want) == 0) return;
    size_t i = 0;
    while (got[i] && got[i] == want[i]) i++;
    size_t from = i > 40 ? i - 40 : 0;
    print_error("%s differs at byte %zu:\n  got  ...%.80s\n  want ...%.80s\n", what, i, got + from,
                want + from);
    fail();
}

static cJSON *read_fixture(void) {
    size_t size = 0;
    char *text = test_read_file(FIXTURES "/benchmark_prompts.json", &size);
    assert_non_null(text);
    cJSON *root = cJSON_ParseWithLength(text, size);
    free(text);
    assert_non_null(root);
    return root;
}

static const char *json_str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static int json_int(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_true(cJSON_IsNumber(v));
    return v->valueint;
}

static int split_from_name(const char *name) {
    for (int s = 0; s < MMLU_N_SPLITS; s++)
        if (strcmp(name, mmlu_split_name((MmluSplit)s)) == 0) return s;
    fail_msg("unknown split %s", name);
    return -1;
}

/* Loads the three splits of dir (subjects as mmlu_load takes them). */
static void load_splits(MmluSet sets[MMLU_N_SPLITS], const char *dir, const char *subjects) {
    CkError err = {{0}};
    for (int s = 0; s < MMLU_N_SPLITS; s++)
        if (mmlu_load(&sets[s], dir, (MmluSplit)s, subjects, &err) != 0) fail_msg("%s", err.msg);
}

static void free_splits(MmluSet sets[MMLU_N_SPLITS]) {
    for (int s = 0; s < MMLU_N_SPLITS; s++) mmlu_free(&sets[s]);
}

/* Builds one fixture case's context and continuations and compares them. */
static void check_case(const cJSON *c, const MmluSet sets[MMLU_N_SPLITS]) {
    int subject = mmlu_subject_find(json_str(c, "subject"));
    assert_true(subject >= 0);
    const MmluSet *set = &sets[split_from_name(json_str(c, "split"))];
    int row = json_int(c, "row");
    assert_true(row < set->count[subject]);
    const MmluItem *item = &set->items[set->first[subject] + row];
    MmluPrompt p;
    CkError err = {{0}};
    assert_int_equal(mmlu_prompt_from_name(json_str(c, "template"), &p, &err), 0);
    const cJSON *refs = cJSON_GetObjectItemCaseSensitive(c, "shots");
    int k = cJSON_GetArraySize(refs);
    const MmluItem *shots[8];
    assert_true(k <= 8);
    if (p != MMLU_PROMPT_LEGACY) { /* the first_n sampler must give the reference's rows */
        assert_int_equal(mmlu_exemplars(&sets[MMLU_DEV], subject, k, shots, &err), 0);
    }
    for (int i = 0; i < k; i++) {
        const cJSON *r = cJSON_GetArrayItem(refs, i);
        const MmluSet *from = &sets[split_from_name(json_str(r, "split"))];
        const MmluItem *want = &from->items[from->first[subject] + json_int(r, "row")];
        if (p != MMLU_PROMPT_LEGACY) assert_ptr_equal(shots[i], want);
        shots[i] = want;
    }
    char what[160];
    snprintf(what, sizeof what, "%s %s/%s row %d (%d-shot)", json_str(c, "template"),
             json_str(c, "split"), json_str(c, "subject"), row, k);
    StrBuf b = {0};
    assert_int_equal(mmlu_context(p, item, shots, k, &b), 0);
    expect_same(what, b.p, json_str(c, "context"));
    const cJSON *conts = cJSON_GetObjectItemCaseSensitive(c, "continuations");
    assert_int_equal(cJSON_GetArraySize(conts), MMLU_N_CHOICES);
    for (int i = 0; i < MMLU_N_CHOICES; i++) {
        strbuf_clear(&b);
        assert_int_equal(mmlu_continuation(p, item, i, &b), 0);
        expect_same(what, b.p, cJSON_GetArrayItem(conts, i)->valuestring);
    }
    assert_int_equal(item->answer, json_int(c, "gold"));
    strbuf_free(&b);
}

/* ---------------------------------------------------------------------------------------- */

static void test_subject_table(void **state) {
    (void)state;
    int per[MMLU_N_CATEGORIES] = {0};
    for (int s = 0; s < MMLU_N_SUBJECTS; s++) {
        per[mmlu_subject_category(s)]++;
        assert_int_equal(mmlu_subject_find(mmlu_subject_name(s)), s);
        if (s) assert_true(strcmp(mmlu_subject_name(s - 1), mmlu_subject_name(s)) < 0);
    }
    /* lm_eval/tasks/mmlu: 19 stem, 13 other, 12 social sciences, 13 humanities */
    assert_int_equal(per[MMLU_STEM], 19);
    assert_int_equal(per[MMLU_OTHER], 13);
    assert_int_equal(per[MMLU_SOCIAL_SCIENCES], 12);
    assert_int_equal(per[MMLU_HUMANITIES], 13);
    assert_string_equal(mmlu_subject_name(0), "abstract_algebra");
    assert_string_equal(mmlu_subject_name(56), "world_religions");
    assert_null(mmlu_subject_name(57));
    assert_int_equal(mmlu_subject_find("econometrics"), 13);
    assert_int_equal(mmlu_subject_category(13), MMLU_SOCIAL_SCIENCES);
    assert_int_equal(mmlu_subject_category(mmlu_subject_find("professional_law")), MMLU_HUMANITIES);
    assert_int_equal(mmlu_subject_find("Abstract_algebra"), -1);
    assert_string_equal(mmlu_category_name(MMLU_SOCIAL_SCIENCES), "social_sciences");

    MmluPrompt p;
    CkError err = {{0}};
    for (int i = 0; i < MMLU_N_PROMPTS; i++) {
        assert_int_equal(mmlu_prompt_from_name(mmlu_prompt_name((MmluPrompt)i), &p, &err), 0);
        assert_int_equal(p, i);
    }
    assert_int_equal(mmlu_prompt_from_name("v0.3", &p, &err), -1);
    assert_non_null(strstr(err.msg, "unknown MMLU template 'v0.3'"));
}

/* The hand-written files: rows, lines and the fields exactly as Python's csv reads them. */
static void test_sample_rows(void **state) {
    (void)state;
    MmluSet sets[MMLU_N_SPLITS];
    load_splits(sets, FIXTURES "/mmlu_sample", "abstract_algebra, anatomy");
    const MmluSet *test = &sets[MMLU_TEST];
    int aa = 0, an = mmlu_subject_find("anatomy");
    assert_int_equal(test->count[aa], 6);
    assert_int_equal(test->count[an], 2);
    assert_int_equal(test->count[2], 0);
    assert_int_equal(sets[MMLU_DEV].count[aa], 5);
    assert_int_equal(sets[MMLU_VAL].count[aa], 3);
    assert_int_equal(sets[MMLU_VAL].count[an], 1);
    const MmluItem *it = &test->items[test->first[aa]];
    /* a quoted field with commas; CRLF rows */
    assert_string_equal(it[0].question, "Find the degree for the given field extension Q(sqrt(2), "
                                        "sqrt(3), sqrt(18)) over Q.");
    assert_int_equal(it[0].answer, 1);
    assert_string_equal(it[1].question, " \tA question with spaces around it  ");
    /* a line break inside a quoted field keeps its CR (the Hugging Face builder's csv.reader
     * over binary lines does) */
    assert_non_null(strstr(it[2].question, "true?\r\nI. All"));
    assert_string_equal(it[2].choices[2], "I, II");
    assert_string_equal(it[3].question, "A line break inside a CRLF file\nwith only LF");
    assert_string_equal(it[4].question, "He said \"hi\" to the group\xC2\xA0");
    assert_string_equal(it[4].choices[0], "caf\xC3\xA9");
    assert_string_equal(it[4].choices[2], "");
    assert_string_equal(it[4].choices[3], "a \"quoted\" choice");
    assert_string_equal(it[5].question, "Last row without a line break");
    /* the line each row starts on */
    const int lines[6] = {1, 2, 3, 6, 8, 9};
    for (int i = 0; i < 6; i++) assert_int_equal(it[i].line, lines[i]);
    /* blank lines are skipped but counted */
    assert_int_equal(test->items[test->first[an]].line, 2);
    assert_int_equal(test->items[test->first[an] + 1].line, 4);
    /* unquoted fields keep their spaces */
    const MmluItem *d = &sets[MMLU_DEV].items[sets[MMLU_DEV].first[aa] + 3];
    assert_string_equal(d->question, "  Leading and trailing spaces stay in the file\t ");
    assert_string_equal(d->choices[0], "a ");
    assert_string_equal(d->choices[1], "  b");
    assert_string_equal(sets[MMLU_DEV].items[sets[MMLU_DEV].first[aa] + 2].choices[2],
                        "8 \"exactly\"");
    free_splits(sets);
}

static void test_sample_prompts(void **state) {
    (void)state;
    cJSON *root = read_fixture();
    MmluSet sets[MMLU_N_SPLITS];
    load_splits(sets, FIXTURES "/mmlu_sample", "abstract_algebra,anatomy");
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "mmlu_sample");
    assert_true(cJSON_GetArraySize(cases) >= 30);
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) check_case(c, sets);

    /* exemplars: 5-shot needs 5 dev rows, anatomy has 2 */
    const MmluItem *shots[5];
    CkError err = {{0}};
    assert_int_equal(mmlu_exemplars(&sets[MMLU_DEV], 1, 5, shots, &err), -1);
    assert_non_null(strstr(err.msg, "anatomy: 5-shot needs 5 dev rows, the data has 2"));

    /* McDocs: the query as question, letters as choices */
    McDocSet docs;
    assert_int_equal(mmlu_to_mc_docs(&sets[MMLU_TEST], MMLU_PROMPT_CURRENT, &docs, &err), 0);
    assert_int_equal(docs.n, 8);
    StrBuf b = {0};
    assert_int_equal(mmlu_query(MMLU_PROMPT_CURRENT, &sets[MMLU_TEST].items[7], &b), 0);
    assert_string_equal(docs.docs[7].question, b.p);
    assert_string_equal(docs.docs[7].id, "anatomy/1");
    assert_string_equal(docs.docs[7].choices[1], "B");
    assert_int_equal(docs.docs[7].gold, 1);
    assert_int_equal(docs.docs[7].labels[1], 1);
    assert_int_equal(docs.docs[7].line, 4);
    benchmarks_free(&docs);
    strbuf_free(&b);
    free_splits(sets);
    cJSON_Delete(root);
}

/* Parses text[0..len) as abstract_algebra's file and expects an error containing want. */
static void expect_bad_n(const char *text, size_t len, const char *want) {
    MmluSet set = {0};
    CkError err = {{0}};
    assert_int_equal(mmlu_parse_csv(&set, 0, text, len, "bad.csv", &err), -1);
    if (!strstr(err.msg, want)) fail_msg("error \"%s\" does not contain \"%s\"", err.msg, want);
    assert_int_equal(set.n, 0);
    assert_int_equal(set.count[0], 0);
    mmlu_free(&set);
}

static void expect_bad(const char *text, const char *want) {
    expect_bad_n(text, strlen(text), want);
}

static void test_bad_input(void **state) {
    (void)state;
    const char *good = "q,a,b,c,d,A\n";
    expect_bad("q,a,b,c,d,A\nq2,a,b,c,D\n",
               "bad.csv:2: row 2: expected 6 fields (question, A, B, C, D, answer), found 5");
    expect_bad("q,a,b,c,d,A\r\n\"multi\r\nline\",a,b,c,d,A,extra\r\n",
               "bad.csv:2: row 2: expected 6 fields (question, A, B, C, D, answer), found 7");
    expect_bad("q,a,b,c,d,A\n\nq,a,b,c,d,E\n",
               "bad.csv:3: row 2: field 6 (answer): expected A, B, C or D, found \"E\"");
    expect_bad("q,a,b,c,d, A\n", "bad.csv:1: row 1: field 6 (answer): expected A, B, C or D, "
                                 "found \" A\"");
    expect_bad("q,a,b,c,d,a\n", "field 6 (answer): expected A, B, C or D, found \"a\"");
    expect_bad("q,a,b,c,d,\n", "field 6 (answer): expected A, B, C or D, found \"\"");
    expect_bad("q,a,\xFF,c,d,A\n", "bad.csv:1: row 1: field 3 (B): invalid UTF-8");
    expect_bad("q,a,b,c,d,A\n\"never closed,a,b,c,d,A\n",
               "bad.csv:2: row 2: a quoted field is not closed before the end of the file");
    static const char nul[] = "q,a,b,c,d,A\nq,a\0b,b,c,d,A\n";
    expect_bad_n(nul, sizeof nul - 1, "bad.csv:2: row 2: field 2: a NUL byte");
    expect_bad("", "bad.csv: no rows");
    expect_bad("\n\r\n", "bad.csv: no rows");

    /* a failed file leaves the subjects already read untouched */
    MmluSet set = {0};
    CkError err = {{0}};
    assert_int_equal(mmlu_parse_csv(&set, 3, good, strlen(good), "ok.csv", &err), 0);
    const char *bad = "q,a,b,c,d,A\nq,a,b\n";
    assert_int_equal(mmlu_parse_csv(&set, 4, bad, strlen(bad), "bad.csv", &err), -1);
    assert_int_equal(set.n, 1);
    assert_int_equal(set.count[3], 1);
    assert_int_equal(set.count[4], 0);
    assert_int_equal(mmlu_parse_csv(&set, 3, good, strlen(good), "again.csv", &err), -1);
    assert_non_null(strstr(err.msg, "already loaded"));
    mmlu_free(&set);

    /* folders and names */
    assert_int_equal(mmlu_load(&set, FIXTURES "/mmlu_sample", MMLU_TEST, "anatomy,optics", &err),
                     -1);
    assert_non_null(strstr(err.msg, "unknown MMLU subject 'optics'"));
    assert_int_equal(mmlu_load(&set, FIXTURES "/mmlu_sample", MMLU_TEST, "astronomy", &err), -1);
    assert_non_null(strstr(err.msg, "mmlu_sample/test/astronomy_test.csv: cannot open"));
    assert_int_equal(mmlu_load(&set, FIXTURES, MMLU_DEV, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "no dev/ folder of MMLU CSV files"));
    assert_int_equal(set.n, 0);
}

/* The whole shared copy: counts, every field against Python's csv (one digest), the sample
 * prompts of every era, and every 5-shot test context of the current template. */
static void test_shared_copy(void **state) {
    (void)state;
    char *dir = test_shared_path("data/mmlu/test");
    if (!dir) skip();
    free(dir);
    cJSON *root = read_fixture();
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(root, "mmlu_shared");
    if (!cJSON_IsObject(ref)) {
        cJSON_Delete(root);
        fail_msg("benchmark_prompts.json has no mmlu_shared section: rerun "
                 "make_benchmark_prompts.py with ../shared present");
    }
    MmluSet sets[MMLU_N_SPLITS];
    load_splits(sets, CUTKIT_SHARED_DIR "/data/mmlu", NULL);
    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(ref, "counts");
    assert_int_equal(sets[MMLU_DEV].n, json_int(counts, "dev"));
    assert_int_equal(sets[MMLU_VAL].n, json_int(counts, "val"));
    assert_int_equal(sets[MMLU_TEST].n, 14042);
    assert_int_equal(sets[MMLU_TEST].n, json_int(counts, "test"));

    Sha256 h;
    unsigned char digest[32];
    char hex[65];
    sha256_init(&h);
    for (int sp = 0; sp < MMLU_N_SPLITS; sp++)
        for (int i = 0; i < sets[sp].n; i++) {
            const MmluItem *it = &sets[sp].items[i];
            const char *name = mmlu_subject_name(it->subject);
            sha256_update(&h, name, strlen(name));
            sha256_update(&h, "\x1f", 1);
            sha256_update(&h, it->question, strlen(it->question));
            for (int c = 0; c < MMLU_N_CHOICES; c++) {
                sha256_update(&h, "\x1f", 1);
                sha256_update(&h, it->choices[c], strlen(it->choices[c]));
            }
            char tail[4] = {'\x1f', (char)('A' + it->answer), '\x1e', 0};
            sha256_update(&h, tail, 3);
        }
    sha256_final(&h, digest);
    sha256_to_hex(digest, hex);
    assert_string_equal(hex, json_str(ref, "rows_sha256"));

    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(ref, "cases")) check_case(c, sets);

    /* every 5-shot test context; the leaderboard template gives the same bytes */
    StrBuf b = {0}, lb = {0};
    sha256_init(&h);
    for (int i = 0; i < sets[MMLU_TEST].n; i++) {
        const MmluItem *it = &sets[MMLU_TEST].items[i];
        const MmluItem *shots[5];
        CkError err = {{0}};
        assert_int_equal(mmlu_exemplars(&sets[MMLU_DEV], it->subject, 5, shots, &err), 0);
        strbuf_clear(&b);
        strbuf_clear(&lb);
        assert_int_equal(mmlu_context(MMLU_PROMPT_CURRENT, it, shots, 5, &b), 0);
        assert_int_equal(mmlu_context(MMLU_PROMPT_LEADERBOARD, it, shots, 5, &lb), 0);
        if (strcmp(b.p, lb.p) != 0) fail_msg("current and leaderboard differ at test item %d", i);
        sha256_update(&h, b.p, b.n);
        sha256_update(&h, "\x1e", 1);
    }
    sha256_final(&h, digest);
    sha256_to_hex(digest, hex);
    assert_string_equal(hex, json_str(ref, "test_5shot_current_sha256"));
    strbuf_free(&b);
    strbuf_free(&lb);
    free_splits(sets);
    cJSON_Delete(root);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subject_table),  cmocka_unit_test(test_sample_rows),
        cmocka_unit_test(test_sample_prompts), cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_shared_copy),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
