/* test_tokenizer_export.c — llama2.c tokenizers written as tokenizer.json: the exported folder,
 * opened as a Hugging Face tokenizer, encodes every text to the llama2.c ids (BOS included)
 * and decodes them back to the text. Texts: the stories260K golden texts, every text of the
 * shared tokenizer corpus, and a few thousand random texts built from the corpus's words. */
#include "tests/test_util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/embedded.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_export.h"

enum { N_RANDOM_TEXTS = 3000 };

/* Golden vectors of shared/models/stories260K/PROVENANCE.md (tok512, BOS added). */
static const struct {
    const char *text;
    int n;
    int ids[16];
} GOLDEN[] = {
    {"", 1, {1}},
    {"Once upon a time", 5, {1, 403, 407, 261, 378}},
    {"Lily and Tom went to the park.",
     13,
     {1, 317, 269, 274, 287, 263, 377, 267, 265, 282, 295, 433, 426}},
    {"Hello world!  \xE4\xBD\xA0\xE5\xA5\xBD",
     16,
     {1, 346, 306, 414, 263, 304, 341, 443, 410, 410, 231, 192, 163, 232, 168, 192}},
};

/* The Hugging Face pipeline cuts added tokens out of the raw text before anything else (as
 * the real Llama tokenizers do), so a text spelling "<s>" encodes it as BOS where llama2.c
 * spells it out. Such texts are left out of the comparison. */
static int has_special_literal(const char *text) {
    return strstr(text, "<s>") || strstr(text, "</s>") || strstr(text, "<unk>");
}

typedef struct {
    char **p;
    size_t n, cap;
} StrVec;

static void sv_push(StrVec *v, const char *s, size_t len) {
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 256;
        v->p = realloc(v->p, v->cap * sizeof *v->p);
        assert_non_null(v->p);
    }
    char *c = malloc(len + 1);
    assert_non_null(c);
    memcpy(c, s, len);
    c[len] = '\0';
    v->p[v->n++] = c;
}

static void sv_free(StrVec *v) {
    for (size_t i = 0; i < v->n; i++) free(v->p[i]);
    free(v->p);
    memset(v, 0, sizeof *v);
}

/* Every "text" of shared/models/tokenizers/corpus.json; 0 when shared is absent. */
static int load_corpus(StrVec *texts) {
    char *path = test_shared_path("models/tokenizers/corpus.json");
    if (!path) return 0;
    size_t size;
    char *json = test_read_file(path, &size);
    assert_non_null(json);
    cJSON *root = cJSON_ParseWithLength(json, size);
    assert_true(cJSON_IsArray(root));
    for (const cJSON *row = root->child; row; row = row->next) {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(row, "text");
        assert_true(cJSON_IsString(text));
        sv_push(texts, text->valuestring, strlen(text->valuestring));
    }
    cJSON_Delete(root);
    free(json);
    free(path);
    return 1;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint32_t rng_next(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

/* Random texts of corpus words joined by assorted whitespace, long runs of spaces included
 * (the Llama 2 vocabulary's only equal scores are its space runs, see tokenizer_export.c). */
static void make_random_texts(const StrVec *corpus, StrVec *out, int count) {
    StrVec words = {0};
    for (size_t i = 0; i < corpus->n; i++) {
        const char *s = corpus->p[i];
        while (*s) {
            size_t n = strcspn(s, " ");
            if (n > 0 && n < 200) {
                char *w = strndup(s, n);
                assert_non_null(w);
                if (!has_special_literal(w)) sv_push(&words, s, n);
                free(w);
            }
            s += n;
            s += strspn(s, " ");
        }
    }
    assert_true(words.n > 10);
    static const char *const SEPS[] = {" ", " ", " ", " ", "  ", "\n", "", "\t", " \n ", ", "};
    char buf[8192];
    for (int k = 0; k < count; k++) {
        size_t len = 0;
        int n_words = 1 + (int)(rng_next() % 12);
        for (int w = 0; w < n_words; w++) {
            const char *sep = SEPS[rng_next() % (sizeof SEPS / sizeof SEPS[0])];
            char spaces[64];
            if (rng_next() % 8 == 0) {
                int run = 1 + (int)(rng_next() % 40);
                memset(spaces, ' ', (size_t)run);
                spaces[run] = '\0';
                sep = spaces;
            }
            const char *word = words.p[rng_next() % words.n];
            if (w > 0 || rng_next() % 6 == 0) {
                len += (size_t)snprintf(buf + len, sizeof buf - len, "%s", sep);
            }
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s", word);
            if (len >= sizeof buf - 1) len = sizeof buf - 1;
        }
        sv_push(out, buf, len);
    }
    sv_free(&words);
}

/* Runs of 1..80 spaces alone, leading, trailing and between words: where the Llama 2
 * vocabulary's equal scores (all its space-run pieces score -1e9) could make rank-ordered
 * BPE pick another pair than llama2.c's leftmost one. */
static void add_space_runs(StrVec *out) {
    static const char *const FORMS[] = {"%s", "%sx", "x%s", "a%sb", "Hello%s world%s!"};
    char spaces[81], buf[256];
    for (int run = 1; run <= 80; run++) {
        memset(spaces, ' ', (size_t)run);
        spaces[run] = '\0';
        for (size_t f = 0; f < sizeof FORMS / sizeof FORMS[0]; f++) {
            int n = snprintf(buf, sizeof buf, FORMS[f], spaces, spaces);
            sv_push(out, buf, (size_t)n);
        }
    }
}

typedef struct {
    int compared, skipped, id_diffs, decode_diffs;
} Stats;

static void print_ids(const char *label, const int *ids, int n) {
    fprintf(stderr, "  %s:", label);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

/* Compares ref (llama2.c) with hf (its export) on one text. */
static void compare_text(const Tokenizer *ref, const Tokenizer *hf, const char *text, Stats *st) {
    if (has_special_literal(text)) {
        st->skipped++;
        return;
    }
    CkError err = {{0}};
    int *want, n_want, *got, n_got;
    assert_int_equal(tokenizer_encode(ref, text, 1, 0, &want, &n_want, &err), 0);
    if (tokenizer_encode_special(hf, text, 1, &got, &n_got, &err) != 0) fail_msg("%s", err.msg);
    st->compared++;
    if (n_want != n_got || memcmp(want, got, (size_t)n_want * sizeof *want) != 0) {
        if (st->id_diffs++ < 5) {
            fprintf(stderr, "differs: \"%s\"\n", text);
            print_ids("llama2.c", want, n_want);
            print_ids("tokenizer.json", got, n_got);
        }
    }
    size_t len;
    char *back = tokenizer_decode_special(hf, got, n_got, 1, &len);
    assert_non_null(back);
    if (len != strlen(text) || memcmp(back, text, len) != 0) {
        if (st->decode_diffs++ < 5)
            fprintf(stderr, "decode differs: \"%s\" -> \"%s\"\n", text, back);
    }
    free(back);
    free(want);
    free(got);
}

static void remove_export(char *dir) {
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

/* Exports ref, opens the folder, and compares on the golden, corpus and random texts. */
static Stats export_and_compare(const Tokenizer *ref, const char *name) {
    char *dir = test_temp_dir();
    assert_non_null(dir);
    CkError err = {{0}};
    if (tokenizer_export_hf(ref, dir, 512, &err) != 0) fail_msg("%s", err.msg);
    Tokenizer hf;
    if (tokenizer_open(&hf, dir, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(hf.kind, TOKENIZER_HF_BPE);
    assert_int_equal(hf.vocab_size, ref->vocab_size);
    assert_int_equal(hf.bos_id, 1);
    assert_int_equal(hf.eos_id, 2);

    Stats st = {0};
    for (size_t i = 0; i < sizeof GOLDEN / sizeof GOLDEN[0]; i++) {
        compare_text(ref, &hf, GOLDEN[i].text, &st);
    }
    StrVec corpus = {0}, random = {0};
    if (load_corpus(&corpus)) {
        for (size_t i = 0; i < corpus.n; i++) compare_text(ref, &hf, corpus.p[i], &st);
        make_random_texts(&corpus, &random, N_RANDOM_TEXTS);
        add_space_runs(&random);
        for (size_t i = 0; i < random.n; i++) compare_text(ref, &hf, random.p[i], &st);
    }
    fprintf(stderr,
            "%s: %d texts compared, %d ids differ, %d decodes differ (%d texts skipped: they "
            "spell a special token)\n",
            name, st.compared, st.id_diffs, st.decode_diffs, st.skipped);
    sv_free(&corpus);
    sv_free(&random);
    tokenizer_free(&hf);
    remove_export(dir);
    return st;
}

static void load_tok512(Tokenizer *t) {
    size_t size;
    const void *data = embedded_tokenizer(&size);
    CkError err = {{0}};
    if (tokenizer_load_llama2c(t, data, size, 512, &err) != 0) fail_msg("%s", err.msg);
}

static void test_tok512_golden_ids(void **state) {
    (void)state;
    Tokenizer ref;
    load_tok512(&ref);
    /* The reference itself against the published vectors, so the comparisons below are
     * anchored to real ids and not only to each other. */
    for (size_t i = 0; i < sizeof GOLDEN / sizeof GOLDEN[0]; i++) {
        int *ids, n;
        CkError err = {{0}};
        assert_int_equal(tokenizer_encode(&ref, GOLDEN[i].text, 1, 0, &ids, &n, &err), 0);
        assert_int_equal(n, GOLDEN[i].n);
        assert_memory_equal(ids, GOLDEN[i].ids, (size_t)n * sizeof *ids);
        free(ids);
    }
    tokenizer_free(&ref);
}

static void test_tok512_exports_exactly(void **state) {
    (void)state;
    Tokenizer ref;
    load_tok512(&ref);
    Stats st = export_and_compare(&ref, "tok512");
    assert_int_equal(st.id_diffs, 0);
    assert_int_equal(st.decode_diffs, 0);
    assert_true(st.compared >= (int)(sizeof GOLDEN / sizeof GOLDEN[0]));
    tokenizer_free(&ref);
}

static void test_llama2_exports_exactly(void **state) {
    (void)state;
    char *path = test_shared_path("models/llama2-tokenizer/tokenizer.bin");
    if (!path) skip();
    Tokenizer ref;
    CkError err = {{0}};
    if (tokenizer_open(&ref, path, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(ref.vocab_size, 32000);
    Stats st = export_and_compare(&ref, "llama2 32000");
    assert_int_equal(st.id_diffs, 0);
    assert_int_equal(st.decode_diffs, 0);
    tokenizer_free(&ref);
    free(path);
}

/* tokenizer_config.json says what Hugging Face needs to add BOS and to name the specials. */
static void test_config_file(void **state) {
    (void)state;
    Tokenizer ref;
    load_tok512(&ref);
    char *dir = test_temp_dir();
    CkError err = {{0}};
    assert_int_equal(tokenizer_export_hf(&ref, dir, 2048, &err), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    char *text = test_read_file(path, NULL);
    assert_non_null(text);
    cJSON *c = cJSON_Parse(text);
    assert_non_null(c);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(c, "add_bos_token")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(c, "add_eos_token")));
    assert_string_equal(cJSON_GetObjectItem(c, "bos_token")->valuestring, "<s>");
    assert_string_equal(cJSON_GetObjectItem(c, "eos_token")->valuestring, "</s>");
    assert_string_equal(cJSON_GetObjectItem(c, "unk_token")->valuestring, "<unk>");
    assert_int_equal(cJSON_GetObjectItem(c, "model_max_length")->valueint, 2048);
    assert_string_equal(cJSON_GetObjectItem(c, "tokenizer_class")->valuestring,
                        "LlamaTokenizerFast");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(c, "clean_up_tokenization_spaces")));
    cJSON_Delete(c);
    free(text);

    /* The first merges are those of the best-scoring pieces, spaces written as "▁". */
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    text = test_read_file(path, NULL);
    assert_non_null(text);
    c = cJSON_Parse(text);
    assert_non_null(c);
    const cJSON *model = cJSON_GetObjectItem(c, "model");
    const cJSON *merges = cJSON_GetObjectItem(model, "merges");
    assert_true(cJSON_GetArraySize(merges) > 0);
    assert_string_equal(merges->child->valuestring, "\xE2\x96\x81 t"); /* id 259 " t" */
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(model, "vocab"), "<s>")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(model, "vocab"), "<0x0A>")->valueint,
                     13);
    cJSON_Delete(c);
    free(text);
    tokenizer_free(&ref);
    remove_export(dir);
}

static void test_refusals(void **state) {
    (void)state;
    Tokenizer ref, hf;
    load_tok512(&ref);
    char *dir = test_temp_dir();
    CkError err = {{0}};
    assert_int_equal(tokenizer_export_hf(&ref, dir, 0, &err), -1);
    assert_string_equal(err.msg, "tokenizer export: model_max_length must be positive, got 0");
    assert_int_equal(tokenizer_export_hf(&ref, dir, 512, &err), 0);
    assert_int_equal(tokenizer_open(&hf, dir, &err), 0);
    assert_int_equal(tokenizer_export_hf(&hf, dir, 512, &err), -1);
    assert_non_null(strstr(err.msg, "only llama2.c tokenizers (tokenizer.bin) can be written"));
    /* Nothing is written into a folder that does not exist. */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing", dir);
    assert_int_equal(tokenizer_export_hf(&ref, missing, 512, &err), -1);
    tokenizer_free(&hf);
    tokenizer_free(&ref);
    remove_export(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tok512_golden_ids),
        cmocka_unit_test(test_tok512_exports_exactly),
        cmocka_unit_test(test_llama2_exports_exactly),
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_refusals),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
