/* test_tokenizer_hf.c — Hugging Face tokenizer.json tokenizers: every golden encoding and
 * decoding of shared/models/tokenizers (made by the Rust `tokenizers` library) for GPT-2,
 * TinyLlama (= Llama 2) and Llama 3; the lm-evaluation-harness context/continuation split;
 * streaming decode pieces; tokenizer_open on files and folders; refusals with exact messages;
 * and small hand-written tokenizer.json files for the features the three files do not use. */
#include "test_util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer.h"

#define TOKENIZERS_REL "models/tokenizers"

static const char *const NAMES[] = {"gpt2", "tinyllama-1.1b-chat-v1.0", "llama3-8b-instruct"};
enum { N_TOKENIZERS = 3 };

typedef struct {
    int loaded[N_TOKENIZERS];
    Tokenizer tok[N_TOKENIZERS];
    char *dir[N_TOKENIZERS];
} Fixture;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Loads the three fixtures once for all tests (the Llama 3 file is 9 MB). A fixture that is
 * absent is skipped by the tests that need it. */
static int setup(void **state) {
    Fixture *f = calloc(1, sizeof *f);
    for (int i = 0; i < N_TOKENIZERS; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "%s/%s", TOKENIZERS_REL, NAMES[i]);
        f->dir[i] = test_shared_path(rel);
        if (!f->dir[i]) continue;
        CkError err = {{0}};
        double t0 = now_seconds();
        if (tokenizer_open(&f->tok[i], f->dir[i], &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            return -1;
        }
        fprintf(stderr, "loaded %s in %.3f s\n", NAMES[i], now_seconds() - t0);
        f->loaded[i] = 1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    Fixture *f = *state;
    for (int i = 0; i < N_TOKENIZERS; i++) {
        tokenizer_free(&f->tok[i]);
        free(f->dir[i]);
    }
    free(f);
    return 0;
}

/* Calls fn for every JSON line of dir/name. Returns the number of lines, or -1. */
static int for_each_line(const char *dir, const char *name,
                         void (*fn)(const cJSON *row, void *ctx), void *ctx) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t size;
    char *text = test_read_file(path, &size);
    if (!text) return -1;
    int n = 0;
    for (char *line = text, *end; *line; line = end) {
        end = strchr(line, '\n');
        end = end ? end + 1 : line + strlen(line);
        if (end - line <= 1) continue;
        cJSON *row = cJSON_ParseWithLength(line, (size_t)(end - line));
        assert_non_null(row);
        fn(row, ctx);
        cJSON_Delete(row);
        n++;
    }
    free(text);
    return n;
}

static int *json_ids(const cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    int *ids = malloc((size_t)(*n > 0 ? *n : 1) * sizeof *ids);
    int k = 0;
    for (const cJSON *x = arr->child; x; x = x->next) ids[k++] = x->valueint;
    return ids;
}

static void print_ids(const char *label, const int *ids, int n) {
    fprintf(stderr, "  %s [", label);
    for (int i = 0; i < n; i++) fprintf(stderr, "%s%d", i ? "," : "", ids[i]);
    fprintf(stderr, "]\n");
}

typedef struct {
    const Tokenizer *tok;
    const char *name;
    int total, matched;
} GoldenRun;

static void check_encode_row(const cJSON *row, void *ctx) {
    GoldenRun *g = ctx;
    const char *text = cJSON_GetObjectItem(row, "text")->valuestring;
    int add = cJSON_IsTrue(cJSON_GetObjectItem(row, "add_special_tokens"));
    int n_want, *want = json_ids(cJSON_GetObjectItem(row, "ids"), &n_want);
    int *ids = NULL, n = -1;
    CkError err = {{0}};
    int rc = tokenizer_encode_special(g->tok, text, add, &ids, &n, &err);
    g->total++;
    if (rc == 0 && n == n_want && memcmp(ids, want, (size_t)n * sizeof *ids) == 0) {
        g->matched++;
    } else {
        fprintf(stderr, "%s %s add_special_tokens=%d: %s\n", g->name,
                cJSON_GetObjectItem(row, "case")->valuestring, add, rc ? err.msg : "differs");
        print_ids("want", want, n_want);
        if (rc == 0) print_ids("got ", ids, n);
    }
    free(ids);
    free(want);
}

static void check_decode_row(const cJSON *row, void *ctx) {
    GoldenRun *g = ctx;
    int skip = cJSON_IsTrue(cJSON_GetObjectItem(row, "skip_special_tokens"));
    const char *want = cJSON_GetObjectItem(row, "decoded")->valuestring;
    int n, *ids = json_ids(cJSON_GetObjectItem(row, "ids"), &n);
    size_t len;
    char *got = tokenizer_decode_special(g->tok, ids, n, skip, &len);
    assert_non_null(got);
    g->total++;
    if (len == strlen(want) && strcmp(got, want) == 0) {
        g->matched++;
    } else {
        fprintf(stderr, "%s %s %s skip_special_tokens=%d:\n  want \"%s\"\n  got  \"%s\"\n",
                g->name, cJSON_GetObjectItem(row, "case")->valuestring,
                cJSON_GetObjectItem(row, "what")->valuestring, skip, want, got);
    }
    free(got);
    free(ids);
}

static void run_golden(void **state, int which, int decode) {
    Fixture *f = *state;
    if (!f->loaded[which]) skip();
    GoldenRun g = {&f->tok[which], NAMES[which], 0, 0};
    int lines = for_each_line(f->dir[which], decode ? "decode.jsonl" : "encode.jsonl",
                              decode ? check_decode_row : check_encode_row, &g);
    assert_true(lines > 0);
    fprintf(stderr, "%s: %s %d/%d golden cases match\n", NAMES[which],
            decode ? "decode" : "encode", g.matched, g.total);
    assert_int_equal(g.matched, g.total);
}

static void test_gpt2_encode(void **state) {
    run_golden(state, 0, 0);
}
static void test_gpt2_decode(void **state) {
    run_golden(state, 0, 1);
}
static void test_tinyllama_encode(void **state) {
    run_golden(state, 1, 0);
}
static void test_tinyllama_decode(void **state) {
    run_golden(state, 1, 1);
}
static void test_llama3_encode(void **state) {
    run_golden(state, 2, 0);
}
static void test_llama3_decode(void **state) {
    run_golden(state, 2, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_encode),      cmocka_unit_test(test_gpt2_decode),
        cmocka_unit_test(test_tinyllama_encode), cmocka_unit_test(test_tinyllama_decode),
        cmocka_unit_test(test_llama3_encode),    cmocka_unit_test(test_llama3_decode),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
