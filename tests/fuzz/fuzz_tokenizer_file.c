/* fuzz_tokenizer_file.c — libFuzzer harness for choosing a tokenizer's format by content
 * (tokenizer_load, see README.md here): each input is a whole tokenizer file, a llama2.c
 * tokenizer.bin or a tokenizer.json. A refusal says why (never "vocab_size ... is too small",
 * which named a wrong guess of the format) and leaves the Tokenizer zeroed; a loaded one
 * encodes fixed texts into ids inside its vocabulary and decodes them back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const TEXTS[] = {"", "a cat", " at\n\tcat  ", "caf\xc3\xa9 \xe2\x96\x81x",
                                    "<s>a</s>"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Tokenizer t;
    CkError err = {{0}};
    if (tokenizer_load(&t, data, size, NULL, "tokenizer", &err) != 0) {
        CHECK(err.msg[0] != '\0');
        /* the wrong guess of old: "tokenizer: vocab_size 1 is too small" */
        CHECK(strncmp(err.msg, "tokenizer: tokenizer: vocab_size", 32) != 0);
        CHECK(t.vocab_size == 0 && t.hf == NULL && t.pieces == NULL);
        return 0;
    }
    CHECK(t.vocab_size > 0);
    for (size_t k = 0; k < sizeof TEXTS / sizeof TEXTS[0]; k++) {
        int *ids = NULL, n = 0;
        if (tokenizer_encode(&t, TEXTS[k], 1, 1, &ids, &n, &err) != 0) {
            CHECK(err.msg[0] != '\0');
            continue;
        }
        for (int i = 0; i < n; i++) CHECK(ids[i] >= 0 && ids[i] < t.vocab_size);
        char *text = tokenizer_decode(&t, ids, n);
        free(text);
        free(ids);
    }
    tokenizer_free(&t);
    return 0;
}
