/* fuzz_tokenizer_json.c — libFuzzer harness for the tokenizer.json reader and the BPE encoder
 * and decoder behind it (see README.md here).
 *
 * Each input is a tokenizer.json text; when it holds a line "#config", what follows that line
 * is passed as tokenizer_config.json text. A file that loads is then used: a few strings are
 * encoded with and without special tokens (every id must be in the vocabulary), decoded both
 * ways, and streamed piece by piece. The sanitizers catch stray reads (libFuzzer hands over a
 * heap copy of exactly `size` bytes), leaks and undefined behaviour. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

/* A broken invariant is reported as a crash so that libFuzzer saves the input. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char *const TEXTS[] = {
    "",
    " ",
    "Hello world",
    "  two  spaces\n\nand lines\r\n\tthen tabs",
    "<s>Hello</s> <|endoftext|> <|begin_of_text|> [MASK] <unk>",
    "caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80 \xE2\x96\x81x \xC4\xA0y",
    "don't 12345 ...!!! a-b_c",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};

static void use(const Tokenizer *t) {
    for (size_t k = 0; k < sizeof TEXTS / sizeof TEXTS[0]; k++) {
        for (int mode = 0; mode < 3; mode++) {
            int *ids = NULL, n = -1;
            CkError err = {{0}};
            int rc = mode < 2 ? tokenizer_encode_special(t, TEXTS[k], mode, &ids, &n, &err)
                              : tokenizer_encode(t, TEXTS[k], 1, 1, &ids, &n, &err);
            if (rc != 0) {
                /* only a regex that gives up (match limits) may refuse valid UTF-8 */
                CHECK(ids == NULL && n == 0 && err.msg[0] != '\0');
                continue;
            }
            CHECK(ids != NULL && n >= 0);
            for (int i = 0; i < n; i++) CHECK(ids[i] >= 0 && ids[i] < t->vocab_size);
            for (int skip = 0; skip <= 1; skip++) {
                size_t len = 0;
                char *s = tokenizer_decode_special(t, ids, n, skip, &len);
                CHECK(s != NULL && s[len] == '\0');
                free(s);
            }
            char byte_buf[2];
            for (int i = 0; i < n; i++) {
                size_t len = 0;
                const char *p =
                    tokenizer_decode_piece(t, i ? ids[i - 1] : -1, ids[i], byte_buf, &len);
                CHECK(p != NULL && (int)len <= t->max_piece_len);
            }
            free(ids);
        }
    }
    /* Decoding arbitrary ids, unknown ones included. */
    int probe[] = {-5, 0, 1, 2, 3, t->vocab_size - 1, t->vocab_size, 1 << 30};
    char *s = tokenizer_decode_special(t, probe, sizeof probe / sizeof probe[0], 0, NULL);
    CHECK(s != NULL);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    size_t json_len = size;
    char *config = NULL;
    static const char MARK[] = "\n#config\n";
    const char *mark = memmem(text, size, MARK, sizeof MARK - 1);
    if (mark) {
        json_len = (size_t)(mark - text);
        size_t rest = size - json_len - (sizeof MARK - 1);
        config = malloc(rest + 1);
        CHECK(config != NULL);
        memcpy(config, mark + sizeof MARK - 1, rest);
        config[rest] = '\0';
    }
    Tokenizer t;
    CkError err = {{0}};
    if (tokenizer_load_hf(&t, text, json_len, config, "fuzz.json", &err) != 0) {
        CHECK(err.msg[0] != '\0'); /* every refusal says why */
        CHECK(t.hf == NULL && t.vocab_size == 0);
        tokenizer_free(&t);
        free(config);
        return 0;
    }
    CHECK(t.kind == TOKENIZER_HF_BPE && t.vocab_size > 0);
    CHECK(t.bos_id >= -1 && t.bos_id < t.vocab_size && t.eos_id >= -1 && t.eos_id < t.vocab_size);
    use(&t);
    tokenizer_free(&t);
    free(config);
    return 0;
}
