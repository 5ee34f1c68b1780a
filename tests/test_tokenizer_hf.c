/* test_tokenizer_hf.c — Hugging Face tokenizer.json tokenizers: every golden encoding and
 * decoding of shared/models/tokenizers (made by the Rust `tokenizers` library) for GPT-2,
 * TinyLlama (= Llama 2) and Llama 3; the lm-evaluation-harness context/continuation split;
 * streaming decode pieces; tokenizer_open on files and folders; refusals with exact messages;
 * and small hand-written tokenizer.json files for the features the three files do not use. */
#include "tests/test_util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer/tokenizer.h"
#include "util/timer.h"

#define TOKENIZERS_REL "models/tokenizers"

static const char *const NAMES[] = {"gpt2", "tinyllama-1.1b-chat-v1.0", "llama3-8b-instruct"};
enum { N_TOKENIZERS = 3 };

typedef struct {
    int loaded[N_TOKENIZERS];
    Tokenizer tok[N_TOKENIZERS];
    char *dir[N_TOKENIZERS];
} Fixture;

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
        double t0 = timer_seconds();
        if (tokenizer_open(&f->tok[i], f->dir[i], &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            return -1;
        }
        fprintf(stderr, "loaded %s in %.3f s\n", NAMES[i], timer_seconds() - t0);
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
static int for_each_line(const char *dir, const char *name, void (*fn)(const cJSON *row, void *ctx),
                         void *ctx) {
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
        fprintf(stderr, "%s %s %s skip_special_tokens=%d:\n  want \"%s\"\n  got  \"%s\"\n", g->name,
                cJSON_GetObjectItem(row, "case")->valuestring,
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
    fprintf(stderr, "%s: %s %d/%d golden cases match\n", NAMES[which], decode ? "decode" : "encode",
            g.matched, g.total);
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

/* ---- the lm-evaluation-harness split ------------------------------------------------------- */

/* lm-eval scores a continuation as encode(context + continuation)[len(encode(context)):]. The
 * corpus pairs c015 (context) and c016 (continuation) with their join c017; the continuation's
 * ids in the join differ from its ids alone on the SentencePiece tokenizer (no "▁" of its own). */
static void test_lm_eval_join(void **state) {
    Fixture *f = *state;
    const char *context = "Question: What is the capital of France?\nAnswer:";
    const char *continuation = " A";
    const int want_cont[N_TOKENIZERS] = {317, 319, 362};
    const int want_ctx_len[N_TOKENIZERS] = {12, 12, 11};
    int ran = 0;
    for (int i = 0; i < N_TOKENIZERS; i++) {
        if (!f->loaded[i]) continue;
        ran = 1;
        char whole[256];
        snprintf(whole, sizeof whole, "%s%s", context, continuation);
        for (int add = 0; add <= 1; add++) {
            int *ctx, n_ctx, *all, n_all;
            CkError err = {{0}};
            assert_int_equal(tokenizer_encode_special(&f->tok[i], context, add, &ctx, &n_ctx, &err),
                             0);
            assert_int_equal(tokenizer_encode_special(&f->tok[i], whole, add, &all, &n_all, &err),
                             0);
            /* GPT-2 adds no BOS; the Llamas add one. */
            assert_int_equal(n_ctx, want_ctx_len[i] + (add && i > 0));
            assert_true(n_all > n_ctx);
            assert_memory_equal(all, ctx, (size_t)n_ctx * sizeof *ctx);
            assert_int_equal(n_all - n_ctx, 1);
            assert_int_equal(all[n_ctx], want_cont[i]);
            free(ctx);
            free(all);
        }
        int *alone, n_alone;
        CkError err = {{0}};
        assert_int_equal(
            tokenizer_encode_special(&f->tok[i], continuation, 0, &alone, &n_alone, &err), 0);
        assert_int_equal(n_alone, i == 1 ? 2 : 1); /* TinyLlama: "▁", "▁A" */
        free(alone);
    }
    if (!ran) skip();
}

/* ---- opening ------------------------------------------------------------------------------- */

static void test_open_fixtures(void **state) {
    Fixture *f = *state;
    const int vocab[N_TOKENIZERS] = {50257, 32000, 128256};
    const int bos[N_TOKENIZERS] = {-1, 1, 128000};
    const int eos[N_TOKENIZERS] = {-1, 2, 128009}; /* tokenizer_config.json's eos_token */
    for (int i = 0; i < N_TOKENIZERS; i++) {
        if (!f->loaded[i]) continue;
        const Tokenizer *t = &f->tok[i];
        assert_int_equal(t->kind, TOKENIZER_HF_BPE);
        assert_int_equal(t->vocab_size, vocab[i]);
        assert_int_equal(t->bos_id, bos[i]);
        assert_int_equal(t->eos_id, eos[i]);
        assert_null(t->pieces);
        /* The file itself opens the same way as its folder. */
        char path[1024];
        snprintf(path, sizeof path, "%s/tokenizer.json", f->dir[i]);
        Tokenizer u;
        CkError err = {{0}};
        assert_int_equal(tokenizer_open(&u, path, &err), 0);
        assert_int_equal(u.vocab_size, vocab[i]);
        assert_int_equal(u.eos_id, eos[i]);
        int *ids, n;
        assert_int_equal(tokenizer_encode(&u, "Hello world", 1, 1, &ids, &n, &err), 0);
        int k = 0;
        if (bos[i] >= 0) assert_int_equal(ids[k++], bos[i]);
        assert_true(n >= k + 2);
        if (eos[i] >= 0) assert_int_equal(ids[n - 1], eos[i]);
        free(ids);
        tokenizer_free(&u);
        tokenizer_free(&u);
    }
}

/* A llama2.c tokenizer.bin opens with its vocabulary size counted from the file. */
static void test_open_llama2c(void **state) {
    (void)state;
    Tokenizer t;
    CkError err = {{0}};
    assert_int_equal(tokenizer_open(&t, CUTKIT_SOURCE_DIR "/core/formats/data/tok512.bin", &err),
                     0);
    assert_int_equal(t.kind, TOKENIZER_LLAMA2C);
    assert_int_equal(t.vocab_size, 512);
    int *ids, n;
    assert_int_equal(tokenizer_encode_special(&t, "Once upon a time", 1, &ids, &n, &err), 0);
    int want[] = {1, 403, 407, 261, 378};
    assert_int_equal(n, 5);
    assert_memory_equal(ids, want, sizeof want);
    free(ids);
    assert_int_equal(tokenizer_is_special(&t, 1), 1);
    assert_int_equal(tokenizer_is_special(&t, 403), 0);
    tokenizer_free(&t);

    char *llama2 = test_shared_path("models/llama2-tokenizer/tokenizer.bin");
    if (llama2) {
        assert_int_equal(tokenizer_open(&t, llama2, &err), 0);
        assert_int_equal(t.vocab_size, 32000);
        tokenizer_free(&t);
        free(llama2);
    }

    /* A folder holding only a tokenizer.bin; a truncated one; an empty folder. */
    char *dir = test_temp_dir();
    size_t size;
    char *data = test_read_file(CUTKIT_SOURCE_DIR "/core/formats/data/tok512.bin", &size);
    char path[600], want_msg[1024];
    snprintf(path, sizeof path, "%s/tokenizer.bin", dir);
    assert_int_equal(test_write_file(path, data, size), 0);
    assert_int_equal(tokenizer_open(&t, dir, &err), 0);
    assert_int_equal(t.vocab_size, 512);
    tokenizer_free(&t);
    assert_int_equal(test_write_file(path, data, size - 3), 0);
    assert_int_equal(tokenizer_open(&t, dir, &err), -1);
    snprintf(want_msg, sizeof want_msg,
             "%s: tokenizer: record 511: length 3 runs past the end of the data (6224 bytes)",
             path);
    assert_string_equal(err.msg, want_msg);
    assert_null(t.hf);
    remove(path);
    assert_int_equal(tokenizer_open(&t, dir, &err), -1);
    snprintf(want_msg, sizeof want_msg, "%s: no tokenizer.json or tokenizer.bin in this folder",
             dir);
    assert_string_equal(err.msg, want_msg);
    assert_int_equal(tokenizer_open(&t, "/nonexistent/tokenizer.json", &err), -1);
    assert_string_equal(err.msg, "/nonexistent/tokenizer.json: cannot open: No such file or "
                                 "directory");
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
    free(data);
}

/* Loading the 9 MB Llama 3 file is timed in setup; here only that it is not absurdly slow
 * even under the sanitizers. */
static void test_load_time(void **state) {
    Fixture *f = *state;
    if (!f->loaded[2]) skip();
    Tokenizer t;
    CkError err = {{0}};
    double t0 = timer_seconds();
    assert_int_equal(tokenizer_open(&t, f->dir[2], &err), 0);
    double s = timer_seconds() - t0;
    fprintf(stderr, "Llama 3 tokenizer.json (9 MB) loaded in %.3f s\n", s);
    assert_true(s < 10.0);
    tokenizer_free(&t);
}

/* ---- decoding pieces one by one ------------------------------------------------------------ */

/* Concatenating tokenizer_decode_piece over the ids gives the decoded text whenever that text
 * is valid UTF-8 (the pieces hold raw bytes; the whole decode replaces bad ones) and special
 * tokens come only first (a piece cannot know whether the special token before it began the
 * text, which decides whether its leading space is stripped). */
typedef struct {
    const Tokenizer *tok;
    int checked;
} PieceRun;

static void check_pieces_row(const cJSON *row, void *ctx) {
    PieceRun *r = ctx;
    if (!cJSON_IsTrue(cJSON_GetObjectItem(row, "skip_special_tokens"))) return;
    const char *want = cJSON_GetObjectItem(row, "decoded")->valuestring;
    if (strstr(want, "\xEF\xBF\xBD")) return;
    int n, *ids = json_ids(cJSON_GetObjectItem(row, "ids"), &n);
    for (int i = 1; i < n; i++) {
        if (tokenizer_is_special(r->tok, ids[i])) {
            free(ids);
            return;
        }
    }
    char got[8192], byte_buf[2];
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *p =
            tokenizer_decode_piece(r->tok, i > 0 ? ids[i - 1] : -1, ids[i], byte_buf, &len);
        assert_true(k + len < sizeof got);
        memcpy(got + k, p, len);
        k += len;
    }
    got[k] = '\0';
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "%s: pieces \"%s\" != \"%s\"\n",
                cJSON_GetObjectItem(row, "case")->valuestring, got, want);
    }
    assert_string_equal(got, want);
    r->checked++;
    free(ids);
}

static void test_decode_pieces(void **state) {
    Fixture *f = *state;
    int ran = 0;
    for (int i = 0; i < N_TOKENIZERS; i++) {
        if (!f->loaded[i]) continue;
        PieceRun r = {&f->tok[i], 0};
        assert_true(for_each_line(f->dir[i], "decode.jsonl", check_pieces_row, &r) > 0);
        assert_true(r.checked > 50);
        /* Special tokens are markers, not text. */
        size_t len;
        char byte_buf[2];
        int special = i == 0 ? 50256 : i == 1 ? 2 : 128009;
        tokenizer_decode_piece(&f->tok[i], 5, special, byte_buf, &len);
        assert_int_equal(len, 0);
        assert_int_equal(tokenizer_is_special(&f->tok[i], special), 1);
        assert_int_equal(tokenizer_is_special(&f->tok[i], 5), 0);
        ran = 1;
    }
    if (!ran) skip();
}

/* Long texts: the merge heap and the regex loop scale, and decode gives the text back. */
static void test_long_text_round_trip(void **state) {
    Fixture *f = *state;
    const char *unit = "The quick brown fox jumps over the lazy dog; 1234567 ünïcödé 🙂 <s> ";
    size_t unit_len = strlen(unit), reps = 3000;
    char *text = malloc(unit_len * reps + 1);
    for (size_t r = 0; r < reps; r++) memcpy(text + r * unit_len, unit, unit_len);
    text[unit_len * reps] = '\0';
    int ran = 0;
    for (int i = 0; i < N_TOKENIZERS; i++) {
        if (!f->loaded[i]) continue;
        int *ids, n;
        CkError err = {{0}};
        assert_int_equal(tokenizer_encode_special(&f->tok[i], text, 0, &ids, &n, &err), 0);
        assert_true(n > (int)reps * 10);
        size_t len;
        char *back = tokenizer_decode_special(&f->tok[i], ids, n, 0, &len);
        /* TinyLlama matches the literal <s>; decoding it with the special tokens kept puts it
         * back, and its leading "▁" (dropped by Strip) is the only difference. */
        assert_int_equal(len, strlen(back));
        if (i != 1) assert_string_equal(back, text);
        free(back);
        free(ids);
        ran = 1;
    }
    free(text);
    if (!ran) skip();
}

static void test_invalid_utf8_refused(void **state) {
    Fixture *f = *state;
    if (!f->loaded[0]) skip();
    int sentinel = 7, *ids = &sentinel, n = 5;
    CkError err = {{0}};
    assert_int_equal(tokenizer_encode_special(&f->tok[0], "ab\xC3(", 0, &ids, &n, &err), -1);
    assert_string_equal(err.msg, "tokenizer: encode: the text is not valid UTF-8 (byte 2)");
    assert_null(ids);
    assert_int_equal(n, 0);
    assert_int_equal(tokenizer_encode(&f->tok[0], "\xED\xA0\x80", 0, 0, &ids, &n, &err), -1);
    assert_string_equal(err.msg, "tokenizer: encode: the text is not valid UTF-8 (byte 0)");
    /* Out-of-range ids are ignored by decode, as the reference ignores unknown ids. */
    char *s = tokenizer_decode_special(&f->tok[0], (int[]){-1, 15496, 999999}, 3, 0, NULL);
    assert_string_equal(s, "Hello");
    free(s);
}

/* ---- a small hand-written tokenizer -------------------------------------------------------- */

/* SentencePiece-like: Metaspace pre-tokenizer with prepend_scheme "first", byte fallback with
 * only <0xC3> and <0xA9>, <unk> without fuse_unk, "[MASK]" with lstrip and rstrip, "bat" with
 * single_word, and a template that adds <s> and </s>. Its expected ids and texts come from
 * the reference library (tokenizers 0.23.2). */
static const char SMALL_JSON[] =
    "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[{\"id\":0,"
    "\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normal"
    "ized\":false,\"special\":true},{\"id\":1,\"content\":\"<s>\",\"single_word\":false,\"l"
    "strip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":2,\"cont"
    "ent\":\"</s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":"
    "false,\"special\":true},{\"id\":21,\"content\":\"[MASK]\",\"single_word\":false,\"lstr"
    "ip\":true,\"rstrip\":true,\"normalized\":false,\"special\":true},{\"id\":22,\"content"
    "\":\"bat\",\"single_word\":true,\"lstrip\":false,\"rstrip\":false,\"normalized\":false"
    ",\"special\":false}],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Metaspace\",\"r"
    "eplacement\":\"\\u2581\",\"prepend_scheme\":\"first\",\"split\":true},\"post_processor"
    "\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"ty"
    "pe_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"</"
    "s>\",\"type_id\":0}}],\"pair\":[{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"Sequenc"
    "e\":{\"id\":\"B\",\"type_id\":1}}],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\""
    ":[1],\"tokens\":[\"<s>\"]},\"</s>\":{\"id\":\"</s>\",\"ids\":[2],\"tokens\":[\"</s>\"]"
    "}}},\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\""
    ":\"first\",\"split\":true},\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":"
    "\"<unk>\",\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":"
    "false,\"byte_fallback\":true,\"ignore_merges\":false,\"vocab\":{\"<unk>\":0,\"<s>\":1,"
    "\"</s>\":2,\"<0xC3>\":3,\"<0xA9>\":4,\"\\u2581\":5,\"a\":6,\"b\":7,\"c\":8,\"t\":9,\"h"
    "\":10,\"e\":11,\"\\u2581c\":12,\"at\":13,\"\\u2581cat\":14,\"th\":15,\"\\u2581th\":16,"
    "\"\\u2581the\":17,\"\\u2581a\":18,\"ca\":19,\"cat\":20},\"merges\":[\"\\u2581 c\",\"a "
    "t\",\"\\u2581c at\",\"t h\",\"\\u2581 th\",\"\\u2581th e\",\"\\u2581 a\",\"c a\"]}}";

static void load_small(Tokenizer *t, const char *json) {
    CkError err = {{0}};
    if (tokenizer_load_hf(t, json, strlen(json), NULL, "small.json", &err) != 0) {
        fail_msg("%s", err.msg);
    }
}

static void expect_ids(const Tokenizer *t, const char *text, int add, const int *want, int n_want) {
    int *ids, n;
    CkError err = {{0}};
    if (tokenizer_encode_special(t, text, add, &ids, &n, &err) != 0) fail_msg("%s", err.msg);
    int same = n == n_want && (n == 0 || (want && memcmp(ids, want, (size_t)n * sizeof *ids) == 0));
    if (!same) {
        fprintf(stderr, "encode(\"%s\", %d):\n", text, add);
        print_ids("want", want, n_want);
        print_ids("got ", ids, n);
    }
    assert_true(same);
    free(ids);
}

#define EXPECT_IDS(t, text, add, ...)                                                              \
    do {                                                                                           \
        const int want_[] = {__VA_ARGS__};                                                         \
        expect_ids(t, text, add, want_, (int)(sizeof want_ / sizeof want_[0]));                    \
    } while (0)

static void expect_decode(const Tokenizer *t, const int *ids, int n, int skip, const char *want) {
    char *got = tokenizer_decode_special(t, ids, n, skip, NULL);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_small_tokenizer(void **state) {
    (void)state;
    Tokenizer t;
    load_small(&t, SMALL_JSON);
    assert_int_equal(t.vocab_size, 23);
    assert_int_equal(t.bos_id, 1);
    assert_int_equal(t.eos_id, 2);
    EXPECT_IDS(&t, "the cat", 0, 17, 14);
    EXPECT_IDS(&t, "the cat", 1, 1, 17, 14, 2);
    EXPECT_IDS(&t, " the", 0, 17);
    EXPECT_IDS(&t, "a [MASK] b", 0, 18, 21, 7);         /* lstrip/rstrip take the spaces */
    EXPECT_IDS(&t, "x[MASK]  cat", 0, 5, 0, 21, 8, 13); /* "first": no "▁" after [MASK] */
    EXPECT_IDS(&t, "\xC3\xA9", 0, 5, 3, 4);             /* é by byte fallback */
    EXPECT_IDS(&t, "xyz\xC3\xA9", 0, 5, 0, 0, 3, 4, 0); /* the reference's <unk> order */
    EXPECT_IDS(&t, "bat cat", 0, 22, 14);
    EXPECT_IDS(&t, "abat bat.", 0, 18, 7, 13, 5, 22, 0); /* single_word: only the second */
    EXPECT_IDS(&t, "  the  cat  ", 0, 5, 17, 5, 14, 5, 5);
    EXPECT_IDS(&t, "<s>the</s>cat", 0, 1, 15, 11, 2, 8, 13);
    expect_ids(&t, "", 0, NULL, 0);
    EXPECT_IDS(&t, "", 1, 1, 2);
    expect_decode(&t, (int[]){1, 17, 14, 2}, 4, 0, "<s> the cat</s>");
    expect_decode(&t, (int[]){1, 17, 14, 2}, 4, 1, "the cat");
    expect_decode(&t, (int[]){5, 3, 4, 0}, 4, 0, "<0xC3><0xA9><unk>"); /* no ByteFallback */
    expect_decode(&t, (int[]){5, 3, 4, 0}, 4, 1, "<0xC3><0xA9>");
    expect_decode(&t, (int[]){21, 17}, 2, 0, "[MASK] the");
    expect_decode(&t, (int[]){21, 17}, 2, 1, "the");
    tokenizer_free(&t);

    /* fuse_unk: a run of unknown characters is one <unk>. */
    char *fused = strdup(SMALL_JSON);
    char *at = strstr(fused, "\"fuse_unk\":false");
    assert_non_null(at);
    memcpy(at, "\"fuse_unk\":true ", 16);
    load_small(&t, fused);
    EXPECT_IDS(&t, "xyz\xC3\xA9", 0, 5, 3, 4, 0);
    tokenizer_free(&t);
    free(fused);
}

/* tokenizer_config.json: add_bos_token / add_eos_token win over the template, each for its
 * own side; bos_token / eos_token name the ids. */
static void test_tokenizer_config(void **state) {
    (void)state;
    char *path = test_shared_path(TOKENIZERS_REL "/tinyllama-1.1b-chat-v1.0/tokenizer.json");
    if (!path) skip();
    size_t size;
    char *json = test_read_file(path, &size);
    Tokenizer t;
    CkError err = {{0}};
    assert_int_equal(tokenizer_load_hf(&t, json, size,
                                       "{\"add_bos_token\": false, "
                                       "\"add_eos_token\": true, \"eos_token\": \"</s>\"}",
                                       "d/tokenizer.json", &err),
                     0);
    EXPECT_IDS(&t, "Hello", 1, 15043, 2);
    EXPECT_IDS(&t, "Hello", 0, 15043);
    tokenizer_free(&t);
    assert_int_equal(tokenizer_load_hf(&t, json, size,
                                       "{\"add_eos_token\": true, \"eos_token\": \"</s>\"}",
                                       "tokenizer.json", &err),
                     0);
    EXPECT_IDS(&t, "Hello", 1, 1, 15043, 2);
    tokenizer_free(&t);
    assert_int_equal(tokenizer_load_hf(&t, json, size,
                                       "{\"bos_token\": {\"content\": \"</s>\", \"lstrip\": "
                                       "false}, \"add_bos_token\": true, \"eos_token\": null}",
                                       "tokenizer.json", &err),
                     0);
    assert_int_equal(t.bos_id, 2);
    assert_int_equal(t.eos_id, -1);
    EXPECT_IDS(&t, "Hello", 1, 2, 15043);
    tokenizer_free(&t);
    /* Without add_* keys the template stands; an unknown eos_token name is ignored. */
    assert_int_equal(
        tokenizer_load_hf(&t, json, size, "{\"eos_token\": \"<nope>\"}", "tokenizer.json", &err),
        0);
    EXPECT_IDS(&t, "Hello", 1, 1, 15043);
    tokenizer_free(&t);

    assert_int_equal(tokenizer_load_hf(&t, json, size,
                                       "{\"add_bos_token\": true, \"bos_token\": \"<nope>\"}",
                                       "d/tokenizer.json", &err),
                     -1);
    assert_string_equal(err.msg, "d/tokenizer_config.json: add_bos_token: true, but bos_token "
                                 "'<nope>' is not a token");
    /* TinyLlama's template has no EOS to fall back on. */
    assert_int_equal(
        tokenizer_load_hf(&t, json, size, "{\"add_eos_token\": true}", "d/tokenizer.json", &err),
        -1);
    assert_string_equal(err.msg, "d/tokenizer_config.json: add_eos_token: true, but there is no "
                                 "eos_token");
    assert_int_equal(
        tokenizer_load_hf(&t, json, size, "{\"add_bos_token\": \"yes\"}", "d/tokenizer.json", &err),
        -1);
    assert_string_equal(err.msg, "d/tokenizer_config.json: add_bos_token: expected true or false, "
                                 "found a string");
    assert_int_equal(tokenizer_load_hf(&t, json, size, "[]", "tokenizer.json", &err), -1);
    assert_string_equal(err.msg, "tokenizer_config.json: expected a JSON object at the top level, "
                                 "found an array");
    assert_null(t.hf);
    free(json);
    free(path);
}

/* ---- refusals ------------------------------------------------------------------------------ */

/* Loads SMALL_JSON with obj[key] (a dotted path) replaced by the JSON value `value` (NULL:
 * removed) and expects the message. */
static void expect_refusal(const char *key, const char *value, const char *want) {
    cJSON *root = cJSON_Parse(SMALL_JSON);
    cJSON *parent = root;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", key);
    char *last = buf, *dot;
    while ((dot = strchr(last, '.'))) {
        *dot = '\0';
        parent = cJSON_GetObjectItemCaseSensitive(parent, last);
        assert_non_null(parent);
        last = dot + 1;
    }
    if (value) {
        cJSON *v = cJSON_Parse(value);
        assert_non_null(v);
        if (cJSON_GetObjectItemCaseSensitive(parent, last)) {
            cJSON_ReplaceItemInObjectCaseSensitive(parent, last, v);
        } else {
            cJSON_AddItemToObject(parent, last, v);
        }
    } else {
        cJSON_DeleteItemFromObjectCaseSensitive(parent, last);
    }
    char *json = cJSON_PrintUnformatted(root);
    Tokenizer t;
    CkError err = {{0}};
    int rc = tokenizer_load_hf(&t, json, strlen(json), NULL, "t.json", &err);
    if (rc == 0 || strcmp(err.msg, want) != 0) {
        fprintf(stderr, "%s = %s:\n  want %s\n  got  %s\n", key, value ? value : "(removed)", want,
                rc == 0 ? "(loaded)" : err.msg);
    }
    assert_int_equal(rc, -1);
    assert_string_equal(err.msg, want);
    assert_null(t.hf);
    assert_int_equal(t.vocab_size, 0);
    tokenizer_free(&t);
    free(json);
    cJSON_Delete(root);
}

static void expect_text_refusal(const char *text, size_t len, const char *want) {
    Tokenizer t;
    CkError err = {{0}};
    assert_int_equal(tokenizer_load_hf(&t, text, len, NULL, "t.json", &err), -1);
    assert_string_equal(err.msg, want);
    assert_null(t.hf);
}

static void test_refusals(void **state) {
    (void)state;
    expect_refusal("normalizer", "{\"type\": \"Lowercase\"}",
                   "t.json: normalizer.type: unsupported normalizer 'Lowercase' (cutkit reads "
                   "Sequence, Prepend, Replace, NFC, NFD, NFKC and NFKD)");
    expect_refusal("model.type", "\"Unigram\"",
                   "t.json: model.type: unsupported model type "
                   "'Unigram'");
    expect_refusal("pre_tokenizer", "{\"type\": \"Whitespace\"}",
                   "t.json: pre_tokenizer.type: unsupported pre-tokenizer 'Whitespace'");
    expect_refusal("pre_tokenizer",
                   "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"ByteLevel\"}, "
                   "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": "
                   "\"Bogus\"}]}",
                   "t.json: pre_tokenizer.pretokenizers[1].behavior: unsupported split behavior "
                   "'Bogus'");
    expect_refusal("pre_tokenizer",
                   "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a\"}, \"behavior\": "
                   "\"Isolated\"}",
                   "t.json: pre_tokenizer.pattern.Regex: cannot compile: missing closing "
                   "parenthesis at offset 2");
    expect_refusal(
        "pre_tokenizer", "{\"type\": \"Split\", \"pattern\": {}, \"behavior\": \"Isolated\"}",
        "t.json: pre_tokenizer.pattern: expected exactly one of \"String\" and \"Regex\"");
    expect_refusal("decoder", "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"WordPiece\"}]}",
                   "t.json: decoder.decoders[0].type: unsupported decoder 'WordPiece'");
    expect_refusal("decoder", "{\"type\": \"Strip\", \"content\": \"ab\"}",
                   "t.json: decoder.content: expected a single character");
    expect_refusal("post_processor", "{\"type\": \"Frobnicate\"}",
                   "t.json: post_processor.type: unsupported post-processor 'Frobnicate'");
    expect_refusal("post_processor.single", "[{\"SpecialToken\": {\"id\": \"<x>\"}}]",
                   "t.json: post_processor.single[0].SpecialToken: '<x>' is not in "
                   "post_processor.special_tokens");
    expect_refusal("post_processor.special_tokens.<s>.ids", "[99]",
                   "t.json: post_processor: id 99 is not a token of the vocabulary");
    expect_refusal("model", NULL, "t.json: model: missing");
    expect_refusal("model.vocab", "{\"a\": \"one\"}",
                   "t.json: model.vocab['a']: expected an integer, found a string");
    expect_refusal("model.vocab", "{\"a\": 1.5}",
                   "t.json: model.vocab['a']: expected an integer from 0 to 4194303, found 1.5");
    expect_refusal("model.vocab", "{\"a\": 0, \"b\": 0}",
                   "t.json: model.vocab: 'a' and 'b' both have id 0");
    expect_refusal("model.merges", "[5]",
                   "t.json: model.merges[0]: expected a string \"a b\" or a pair [\"a\", \"b\"], "
                   "found a number");
    expect_refusal("model.merges", "[\"a t\", \"at\"]",
                   "t.json: model.merges[1]: expected \"a b\" with exactly one space");
    expect_refusal("model.merges", "[[\"a\", \"z\"]]",
                   "t.json: model.merges[0]: 'z' is not in "
                   "model.vocab");
    expect_refusal("model.merges", "[\"b c\"]",
                   "t.json: model.merges[0]: the merged token 'bc' is not in model.vocab");
    expect_refusal("model.fuse_unk", "\"yes\"",
                   "t.json: model.fuse_unk: expected true or false, found a string");
    expect_refusal("model.dropout", "0.1",
                   "t.json: model.dropout: unsupported: BPE dropout makes encoding random");
    expect_refusal("model.continuing_subword_prefix", "\"##\"",
                   "t.json: model.continuing_subword_prefix: unsupported BPE option '##'");
    expect_refusal("model.unk_token", "\"<nope>\"",
                   "t.json: model.unk_token: '<nope>' is not in model.vocab");
    expect_refusal("truncation", "{\"max_length\": 512}",
                   "t.json: truncation: unsupported: truncation must be null");
    expect_refusal("added_tokens", "{}",
                   "t.json: added_tokens: expected an array, found an object");
    expect_refusal("added_tokens", "[{\"id\": 30, \"content\": \"<new>\", \"special\": true}]",
                   "t.json: added_tokens[0]: '<new>' has id 30, but the tokenizers library gives "
                   "it id 21 (the model's id of the token, else the next id after the vocabulary "
                   "and the earlier added tokens)");
    expect_refusal("added_tokens", "[{\"id\": 21, \"content\": \"\"}]",
                   "t.json: added_tokens[0]: the content is empty");

    expect_text_refusal("{", 1, "t.json: line 1: not valid JSON (at byte 0)");
    expect_text_refusal("{}\n x", 5, "t.json: line 2: not valid JSON (at byte 4)");
    expect_text_refusal("", 0, "t.json: line 1: not valid JSON (at byte 0)");
    expect_text_refusal("[1]", 3,
                        "t.json: expected a JSON object at the top level, found an array");
    expect_text_refusal("{\"a\":\n\"\xff\"}", 9, "t.json: line 2: not valid UTF-8");
    expect_text_refusal("{\"a\": \"x\\u0000\"}", 15,
                        "t.json: line 1: \\u0000 in a JSON string is not supported");
    expect_text_refusal("{\"a\": \"x\ty\"}", 11,
                        "t.json: line 1: a control character inside a JSON string");
    expect_text_refusal("{}", 2, "t.json: model: missing");
}

/* Every proper prefix of a valid file is refused without leaks or stray reads (the sanitizer
 * build watches), and so is every one-byte corruption that breaks it. */
static void test_every_truncation_refused(void **state) {
    (void)state;
    size_t n = strlen(SMALL_JSON);
    for (size_t size = 0; size < n; size++) {
        char *copy = malloc(size > 0 ? size : 1);
        memcpy(copy, SMALL_JSON, size);
        Tokenizer t;
        CkError err = {{0}};
        assert_int_equal(tokenizer_load_hf(&t, copy, size, NULL, "t.json", &err), -1);
        assert_true(strncmp(err.msg, "t.json: ", 8) == 0);
        assert_null(t.hf);
        free(copy);
    }
    /* Flipping characters: whatever loads must encode and decode without trouble. */
    char *copy = malloc(n);
    int loaded = 0;
    for (size_t i = 0; i < n; i += 3) {
        memcpy(copy, SMALL_JSON, n);
        copy[i] = copy[i] == '1' ? '2' : copy[i] == 't' ? 'f' : '1';
        Tokenizer t;
        CkError err = {{0}};
        if (tokenizer_load_hf(&t, copy, n, NULL, "t.json", &err) != 0) continue;
        loaded++;
        int *ids, k;
        if (tokenizer_encode_special(&t, "x [MASK] the cat\xC3\xA9 bat", 1, &ids, &k, &err) == 0) {
            free(tokenizer_decode_special(&t, ids, k, 0, NULL));
            free(ids);
        }
        tokenizer_free(&t);
    }
    assert_true(loaded > 0);
    free(copy);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_encode),
        cmocka_unit_test(test_gpt2_decode),
        cmocka_unit_test(test_tinyllama_encode),
        cmocka_unit_test(test_tinyllama_decode),
        cmocka_unit_test(test_llama3_encode),
        cmocka_unit_test(test_llama3_decode),
        cmocka_unit_test(test_lm_eval_join),
        cmocka_unit_test(test_open_fixtures),
        cmocka_unit_test(test_open_llama2c),
        cmocka_unit_test(test_load_time),
        cmocka_unit_test(test_decode_pieces),
        cmocka_unit_test(test_long_text_round_trip),
        cmocka_unit_test(test_invalid_utf8_refused),
        cmocka_unit_test(test_small_tokenizer),
        cmocka_unit_test(test_tokenizer_config),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_every_truncation_refused),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
