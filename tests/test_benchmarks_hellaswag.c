/* test_benchmarks_hellaswag.c — HellaSwag: the harness's preprocessing (and the Python str
 * methods and SHA-256 under it), the canonical jsonl on a hand-written file, the shipped and
 * the shared llama.cpp copies, bad input. Expected prompts come from
 * tests/fixtures/benchmark_prompts.json (make_benchmark_prompts.py, written from the harness's
 * code); the expected strings typed here were printed by Python 3.11. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/hellaswag.h"
#include "tests/test_util.h"
#include "util/pystr.h"
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

static cJSON *fixture_section(cJSON **root, const char *name) {
    size_t size = 0;
    char *text = test_read_file(FIXTURES "/benchmark_prompts.json", &size);
    assert_non_null(text);
    *root = cJSON_ParseWithLength(text, size);
    free(text);
    assert_non_null(*root);
    return cJSON_GetObjectItemCaseSensitive(*root, name);
}

/* Builds every case of a fixture section on set and compares context, continuations, gold
 * and id. */
static void check_cases(const cJSON *cases, const HellaswagSet *set) {
    const cJSON *c;
    StrBuf b = {0};
    assert_true(cJSON_GetArraySize(cases) >= 8);
    cJSON_ArrayForEach(c, cases) {
        int index = cJSON_GetObjectItemCaseSensitive(c, "index")->valueint;
        assert_true(index >= 0 && index < set->n);
        const HellaswagItem *item = &set->items[index];
        const cJSON *refs = cJSON_GetObjectItemCaseSensitive(c, "shots");
        int k = cJSON_GetArraySize(refs);
        const HellaswagItem *shots[16];
        assert_true(k <= 16);
        for (int i = 0; i < k; i++) shots[i] = &set->items[cJSON_GetArrayItem(refs, i)->valueint];
        char what[96];
        snprintf(what, sizeof what, "%s item %d (%d-shot)", set->task, index, k);
        strbuf_clear(&b);
        assert_int_equal(hellaswag_context(item, shots, k, &b), 0);
        expect_same(what, b.p, cJSON_GetObjectItemCaseSensitive(c, "context")->valuestring);
        const cJSON *conts = cJSON_GetObjectItemCaseSensitive(c, "continuations");
        for (int i = 0; i < HELLASWAG_N_ENDINGS; i++) {
            strbuf_clear(&b);
            assert_int_equal(strbuf_put(&b, " ", 1) || strbuf_puts(&b, item->choices[i]), 0);
            expect_same(what, b.p, cJSON_GetArrayItem(conts, i)->valuestring);
        }
        assert_int_equal(item->gold, cJSON_GetObjectItemCaseSensitive(c, "gold")->valueint);
        assert_string_equal(item->id, cJSON_GetObjectItemCaseSensitive(c, "id")->valuestring);
    }
    strbuf_free(&b);
}

/* sha256 over every item as make_benchmark_prompts.py serialises it. */
static void items_digest(const HellaswagSet *set, char hex[65]) {
    Sha256 h;
    unsigned char d[32];
    sha256_init(&h);
    for (int i = 0; i < set->n; i++) {
        const HellaswagItem *it = &set->items[i];
        sha256_update(&h, it->query, strlen(it->query));
        for (int c = 0; c < HELLASWAG_N_ENDINGS; c++) {
            sha256_update(&h, "\x1f", 1);
            sha256_update(&h, it->choices[c], strlen(it->choices[c]));
        }
        char tail[4] = {'\x1f', (char)('0' + it->gold), '\x1e', 0};
        sha256_update(&h, tail, 3);
    }
    sha256_final(&h, d);
    sha256_to_hex(d, hex);
}

/* ---------------------------------------------------------------------------------------- */

static void test_sha256(void **state) {
    (void)state;
    char hex[65];
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes */
    sha256_hex(m, strlen(m), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* a million 'a' fed in uneven pieces */
    Sha256 s;
    unsigned char d[32];
    char chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    sha256_init(&s);
    for (size_t done = 0, step = 1; done < 1000000; done += step, step = step % 997 + 1)
        sha256_update(&s, chunk, done + step > 1000000 ? 1000000 - done : step);
    sha256_final(&s, d);
    sha256_to_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    unsigned char bytes[768];
    for (int i = 0; i < 768; i++) bytes[i] = (unsigned char)i;
    sha256_hex(bytes, sizeof bytes, hex);
    assert_string_equal(hex, "f3a25aa93aa2fbba28d79260535bbd6a5eb0fc1c24a8b0f04e12b484c1dfe363");
}

static void test_python_str(void **state) {
    (void)state;
    static const char *const cap[][2] = {
        {"then SHE plays A song in NYC", "Then she plays a song in nyc"},
        {"\xC3\x9Fig", "Ssig"},
        {"\xC3\xA9"
         "COUTE",
         "\xC3\x89"
         "coute"},
        {"\xC7\x86"
         "abc \xC4\xB0 \xC5\xB8",
         "\xC7\x85"
         "abc i\xCC\x87 \xC3\xBF"},
        {"", ""},
        {"\xC5\x89x", "\xCA\xBCNx"},
        {"\xCF\x83\xCE\x9B\xCE\x91", "\xCE\xA3\xCE\xBB\xCE\xB1"},
        {"\xD0\xB4\xD0\x90", "\xD0\x94\xD0\xB0"},
        {"a\xC3\x89\xC3\xBF\xC5\xB8", "A\xC3\xA9\xC3\xBF\xC3\xBF"},
        {"\xC2\xB5m", "\xCE\x9Cm"},
        {"\xC4\xB1i", "Ii"},
        {"\xC5\xBF\xC4\x80\xC4\x81\xC4\xB9\xC4\xBA", "S\xC4\x81\xC4\x81\xC4\xBA\xC4\xBA"},
        {"\xC7\x8D\xC7\x8E", "\xC7\x8D\xC7\x8E"},
    };
    StrBuf b = {0};
    for (size_t i = 0; i < sizeof cap / sizeof *cap; i++) {
        strbuf_clear(&b);
        assert_int_equal(pystr_capitalize(cap[i][0], strlen(cap[i][0]), &b), 0);
        expect_same(cap[i][0], b.p, cap[i][1]);
    }
    size_t a, n;
    const char *s = "\xC2\xA0\xE2\x80\x83 hi \x1C\x1F";
    pystr_strip(s, strlen(s), &a, &n);
    assert_int_equal(a, 6);
    assert_int_equal(n, 2);
    pystr_strip(" \t\n", 3, &a, &n);
    assert_int_equal(n, 0);
    assert_true(pystr_is_space(0x1E) && pystr_is_space(0x3000) && !pystr_is_space(0x200B));
    strbuf_free(&b);
}

static void test_preprocess(void **state) {
    (void)state;
    static const char *const pre[][2] = {
        {"  [header] How to cure [title] Drink water. [step] Sip  it.   ",
         " How to cure. Drink water. Sip it."},
        {"a [title]b", "a. b"},
        {"[title] x", " x"},
        {"x  [title] y", "x . y"},
        {"a [b\nc] d [e]", "a [b\nc] d "},
        {"[x]] y ]", "] y ]"},
        {"\xC2\xA0\xE2\x80\x83 hi \x1C\x1F", "hi"},
        {"one   two    three", "one  two  three"},
        {"[ unclosed", "[ unclosed"},
        {"][", "]["},
    };
    StrBuf b = {0};
    for (size_t i = 0; i < sizeof pre / sizeof *pre; i++) {
        strbuf_clear(&b);
        assert_int_equal(hellaswag_preprocess(pre[i][0], strlen(pre[i][0]), &b), 0);
        expect_same(pre[i][0], b.p, pre[i][1]);
    }
    strbuf_free(&b);
}

/* The hand-written canonical-format file: every case of the fixture, the lines, the checksum
 * warning (it is not the published file). */
static void test_canonical_sample(void **state) {
    (void)state;
    cJSON *root;
    const cJSON *ref = fixture_section(&root, "hellaswag_sample");
    HellaswagSet set;
    CkError err = {{0}};
    if (hellaswag_load(&set, FIXTURES "/hellaswag_canonical_sample.jsonl", HELLASWAG_AUTO, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(set.format, HELLASWAG_CANONICAL);
    assert_int_equal(set.lossy, 0);
    assert_string_equal(set.task, "hellaswag");
    assert_int_equal(set.n, 8);
    check_cases(cJSON_GetObjectItemCaseSensitive(ref, "cases"), &set);
    /* the first validation row as published: ctx_b "he" capitalised */
    assert_string_equal(set.items[0].query, "Roof shingle removal: A man is sitting on a roof. He");
    assert_int_equal(set.items[2].line, 3);
    assert_int_equal(set.items[3].line, 5); /* after the blank line */
    assert_string_equal(set.sha256, cJSON_GetObjectItemCaseSensitive(ref, "sha256")->valuestring);
    assert_int_equal(set.sha256_match, 0);
    assert_non_null(strstr(set.warning, "is not the published hellaswag_val.jsonl's"));

    McDocSet docs;
    assert_int_equal(hellaswag_to_mc_docs(&set, &docs, &err), 0);
    assert_int_equal(docs.n, 8);
    assert_string_equal(docs.docs[2].question, set.items[2].query);
    assert_string_equal(docs.docs[2].choices[3], set.items[2].choices[3]);
    assert_int_equal(docs.docs[2].gold, 2);
    assert_int_equal(docs.docs[2].labels[2], 1);
    assert_string_equal(docs.docs[2].id, "7");
    benchmarks_free(&docs);
    hellaswag_free(&set);
    cJSON_Delete(root);
}

/* The shipped llama.cpp copy: the published file's bytes, every item as the reference
 * preprocesses it, the sample cases (10-shot ones included). */
static void test_llamacpp_shipped(void **state) {
    (void)state;
    cJSON *root;
    const cJSON *ref = fixture_section(&root, "hellaswag_llamacpp");
    char path[4096];
    CkError err = {{0}};
    if (benchmarks_data_path(HELLASWAG_LLAMACPP_FILE, path, sizeof path, &err))
        fail_msg("%s", err.msg);
    HellaswagSet set;
    if (hellaswag_load(&set, path, HELLASWAG_AUTO, &err)) fail_msg("%s", err.msg);
    assert_int_equal(set.format, HELLASWAG_LLAMACPP);
    assert_int_equal(set.lossy, 1);
    assert_string_equal(set.task, "hellaswag_llamacpp");
    assert_int_equal(set.n, 10042);
    assert_string_equal(set.sha256, HELLASWAG_LLAMACPP_SHA256);
    assert_int_equal(set.sha256_match, 1);
    assert_string_equal(set.warning, "");
    /* lossy: ctx_b stays lower case ("he", where the harness has "He") */
    assert_string_equal(set.items[0].query, "Roof shingle removal: A man is sitting on a roof. he");
    assert_int_equal(set.items[1].line, 7);
    int counts[4] = {0};
    for (int i = 0; i < set.n; i++) counts[set.items[i].gold]++;
    assert_int_equal(counts[0], 2515); /* PROVENANCE's label counts */
    assert_int_equal(counts[1], 2485);
    assert_int_equal(counts[2], 2584);
    assert_int_equal(counts[3], 2458);
    if (!cJSON_IsObject(ref)) {
        hellaswag_free(&set);
        cJSON_Delete(root);
        fail_msg("benchmark_prompts.json has no hellaswag_llamacpp section: rerun "
                 "make_benchmark_prompts.py with ../shared present");
    }
    char hex[65];
    items_digest(&set, hex);
    assert_string_equal(hex, cJSON_GetObjectItemCaseSensitive(ref, "items_sha256")->valuestring);
    check_cases(cJSON_GetObjectItemCaseSensitive(ref, "cases"), &set);
    hellaswag_free(&set);
    cJSON_Delete(root);
}

/* The shared copy (bz2) decompressed: the same bytes as the shipped file. */
static void test_llamacpp_shared(void **state) {
    (void)state;
    char *bz = test_shared_path("data/hellaswag/hellaswag_val_full.txt.bz2");
    if (!bz) skip();
    char *dir = test_temp_dir();
    char cmd[8192], path[4200];
    snprintf(path, sizeof path, "%s/hellaswag_val_full.txt", dir);
    snprintf(cmd, sizeof cmd, "bunzip2 -c '%s' > '%s'", bz, path);
    free(bz);
    if (test_run(cmd, NULL, NULL) != 0) {
        test_remove_dir(dir);
        free(dir);
        test_missing_reference("bunzip2 did not run (the shared copy is bz2-compressed)");
        skip();
    }
    HellaswagSet set;
    CkError err = {{0}};
    int rc = hellaswag_load(&set, path, HELLASWAG_LLAMACPP, &err);
    test_remove_dir(dir);
    free(dir);
    if (rc) fail_msg("%s", err.msg);
    assert_int_equal(set.n, 10042);
    assert_int_equal(set.sha256_match, 1);
    hellaswag_free(&set);
}

/* Parses text and expects an error containing want. */
static void expect_bad(const char *text, HellaswagFormat format, const char *want) {
    HellaswagSet set;
    CkError err = {{0}};
    assert_int_equal(hellaswag_parse(&set, text, strlen(text), format, "bad", &err), -1);
    if (!strstr(err.msg, want)) fail_msg("error \"%s\" does not contain \"%s\"", err.msg, want);
    assert_int_equal(set.n, 0);
    assert_null(set.items);
}

#define GOOD_JSON                                                                                  \
    "{\"activity_label\": \"L\", \"ctx_a\": \"a\", \"ctx_b\": \"b\", \"endings\": [\"1\", \"2\", " \
    "\"3\", \"4\"], \"label\": 0}\n"

static void test_bad_input(void **state) {
    (void)state;
    HellaswagSet set;
    CkError err = {{0}};
    assert_int_equal(
        hellaswag_parse(&set, " \n" GOOD_JSON, strlen(GOOD_JSON) + 2, HELLASWAG_AUTO, "ok", &err),
        0);
    assert_int_equal(set.format, HELLASWAG_CANONICAL);
    assert_string_equal(set.items[0].query, "L: a B");
    assert_int_equal(set.items[0].line, 2);
    hellaswag_free(&set);

    expect_bad(GOOD_JSON "{\"activity_label\": \"L\", \"ctx_a\": \"a\", \"ctx_b\": \"b\", "
                         "\"endings\": [\"1\", \"2\", \"3\", \"4\"], \"split\": \"test\"}\n",
               HELLASWAG_AUTO, "bad:2: label: missing (the test split has no labels)");
    expect_bad("{\"activity_label\": \"L\", \"ctx_a\": \"a\", \"ctx_b\": \"b\", \"endings\": "
               "[\"1\", \"2\", \"3\", \"4\"], \"label\": 4}\n",
               HELLASWAG_CANONICAL, "bad:1: label: expected 0, 1, 2 or 3");
    expect_bad("{\"activity_label\": \"L\", \"ctx_a\": \"a\", \"ctx_b\": \"b\", \"endings\": "
               "[\"1\", \"2\", \"3\", \"4\"], \"label\": \"x\"}\n",
               HELLASWAG_CANONICAL, "bad:1: label: expected 0, 1, 2 or 3");
    expect_bad("{\"activity_label\": \"L\", \"ctx_a\": \"a\", \"ctx_b\": \"b\", \"endings\": "
               "[\"1\", \"2\", \"3\"], \"label\": 1}\n",
               HELLASWAG_CANONICAL, "bad:1: endings: expected an array of 4 strings");
    expect_bad("{\"activity_label\": \"L\", \"ctx_a\": \"a\", \"ctx_b\": \"b\", \"endings\": "
               "[\"1\", 2, \"3\", \"4\"], \"label\": 1}\n",
               HELLASWAG_CANONICAL, "bad:1: endings[1]: expected a UTF-8 string");
    expect_bad("{\"activity_label\": \"L\", \"ctx_a\": \"a\", \"ctx_b\": null, \"endings\": "
               "[\"1\", \"2\", \"3\", \"4\"], \"label\": 1}\n",
               HELLASWAG_CANONICAL, "bad:1: ctx_b: expected a string");
    expect_bad("{\"activity_label\": \"\xFF\", \"ctx_a\": \"a\", \"ctx_b\": \"b\", \"endings\": "
               "[\"1\", \"2\", \"3\", \"4\"], \"label\": 1}\n",
               HELLASWAG_CANONICAL, "bad:1: activity_label: invalid UTF-8");
    expect_bad(GOOD_JSON "\n{\"activity_label\": \"L\",\n", HELLASWAG_CANONICAL, "bad");
    expect_bad("", HELLASWAG_CANONICAL, "bad: no HellaSwag items");

    expect_bad("ctx\n3\na\nb\nc\nd\nctx2\n5\na\nb\nc\nd\n", HELLASWAG_AUTO,
               "bad:8: label: expected 0, 1, 2 or 3, found \"5\"");
    expect_bad("ctx\n3\na\nb\nc\nd\nctx2\n1\na\n", HELLASWAG_LLAMACPP,
               "bad:7: task 1 has 3 of its 6 lines (context, label, 4 endings)");
    expect_bad("ctx\n3\na\n\xC3\nc\nd\n", HELLASWAG_LLAMACPP, "bad:4: invalid UTF-8");
    expect_bad("", HELLASWAG_LLAMACPP, "bad: no HellaSwag items");

    /* CRLF lines and a missing final newline are read; the checksum then differs */
    const char *crlf = "Act: ctx [x]\r\n2\r\na\r\nb\r\nc\r\nd";
    assert_int_equal(hellaswag_parse(&set, crlf, strlen(crlf), HELLASWAG_AUTO, "crlf", &err), 0);
    assert_int_equal(set.n, 1);
    assert_string_equal(set.items[0].query, "Act: ctx ");
    assert_string_equal(set.items[0].choices[3], "d");
    assert_int_equal(set.sha256_match, 0);
    assert_non_null(strstr(set.warning, "crlf: sha256"));
    hellaswag_free(&set);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),           cmocka_unit_test(test_python_str),
        cmocka_unit_test(test_preprocess),       cmocka_unit_test(test_canonical_sample),
        cmocka_unit_test(test_llamacpp_shipped), cmocka_unit_test(test_llamacpp_shared),
        cmocka_unit_test(test_bad_input),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
