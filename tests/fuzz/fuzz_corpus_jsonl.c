/* fuzz_corpus_jsonl.c — libFuzzer harness for training text (corpus_load_text, see README.md
 * here). Each input is read twice, as JSON Lines and as plain text, with a small llama2.c
 * tokenizer built in memory (<unk>, BOS, EOS, the 256 byte pieces and a few words). A refusal
 * says why; an accepted corpus has sequences of 1 to seq_len tokens inside the vocabulary,
 * packed back to back, and the first token of each is never a target. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/corpus.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { SEQ_LEN = 16 };

static Tokenizer tok;

/* A tokenizer.bin image: max_token_length, then {score, length, bytes} per piece. */
static void build_tokenizer(void) {
    static const char *const WORDS[] = {" ", "a", "t", " a", "at", " at", " c", "c", "ca", " cat"};
    unsigned char image[8192];
    size_t off = 0;
    const int32_t max_len = 6;
    memcpy(image, &max_len, 4);
    off = 4;
    char piece[8];
    for (int id = 0; id < 3 + 256 + 10; id++) {
        const char *p = piece;
        if (id == 0)
            p = "<unk>";
        else if (id == 1)
            p = "\n<s>\n";
        else if (id == 2)
            p = "\n</s>\n";
        else if (id < 259)
            snprintf(piece, sizeof piece, "<0x%02X>", id - 3);
        else
            p = WORDS[id - 259];
        const float score = id < 259 ? 0.0f : -(float)id;
        const int32_t len = (int32_t)strlen(p);
        memcpy(image + off, &score, 4);
        memcpy(image + off + 4, &len, 4);
        memcpy(image + off + 8, p, (size_t)len);
        off += 8 + (size_t)len;
    }
    CkError err = {{0}};
    CHECK(tokenizer_load_llama2c(&tok, image, off, 3 + 256 + 10, &err) == 0);
}

static void check_corpus(const Corpus *c) {
    CHECK(c->n_seqs > 0 && c->offsets[0] == 0);
    for (int s = 0; s < c->n_seqs; s++) {
        const int a = c->offsets[s], b = c->offsets[s + 1];
        CHECK(b > a && b - a <= SEQ_LEN && b - a <= c->max_len);
        CHECK(c->train[a] == 0);
        for (int i = a; i < b; i++) CHECK(c->tokens[i] >= 0 && c->tokens[i] < tok.vocab_size);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tok.pieces) build_tokenizer();
    char *text = malloc(size + 1);
    CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    for (int jsonl = 0; jsonl < 2; jsonl++) {
        Corpus c;
        CkError err = {{0}};
        if (corpus_load_text(&c, text, size, jsonl, "corpus", &tok, SEQ_LEN, &err) != 0) {
            CHECK(err.msg[0] != '\0');
            CHECK(c.n_seqs == 0 && c.tokens == NULL);
            continue;
        }
        check_corpus(&c);
        corpus_free(&c);
    }
    free(text);
    return 0;
}
