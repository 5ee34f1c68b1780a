/* test_tokenizer.c — the llama2.c tokenizer.bin tokenizer: golden encodings from
 * stories260K/PROVENANCE.md and llama2-tokenizer/PROVENANCE.md, decode round trips, agreement
 * with a slow reference that rescans every pair after every merge (the rule as the provenance
 * states it), long texts, and refusal of malformed data with exact messages. */
#include "tests/test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"
#include "util/timer.h"

#define TOK512_PATH          CUTKIT_SOURCE_DIR "/core/formats/data/tok512.bin"
#define TOK512_SIZE          6227
#define LLAMA2_TOKENIZER_REL "models/llama2-tokenizer/tokenizer.bin"

typedef struct {
    char *data;
    size_t size;
    Tokenizer tok;
} Tok512;

static int setup_tok512(void **state) {
    Tok512 *f = calloc(1, sizeof *f);
    f->data = test_read_file(TOK512_PATH, &f->size);
    if (!f->data) {
        fprintf(stderr, "cannot read %s\n", TOK512_PATH);
        free(f);
        return -1;
    }
    CkError err = {{0}};
    if (tokenizer_load_llama2c(&f->tok, f->data, f->size, 512, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        free(f->data);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown_tok512(void **state) {
    Tok512 *f = *state;
    tokenizer_free(&f->tok);
    free(f->data);
    free(f);
    return 0;
}

/* Encodes with BOS and compares with the expected ids, printing both on a mismatch. */
static void assert_encoding(const Tokenizer *t, const char *text, const int *want, int n_want) {
    int *ids = NULL, n = -1;
    CkError err = {{0}};
    int rc = tokenizer_encode(t, text, 1, 0, &ids, &n, &err);
    if (rc != 0) fail_msg("encode(\"%s\") failed: %s", text, err.msg);
    int same = n == n_want && memcmp(ids, want, (size_t)n * sizeof *ids) == 0;
    if (!same) {
        fprintf(stderr, "encode(\"%s\"):\n  got ", text);
        for (int i = 0; i < n; i++) fprintf(stderr, "%d ", ids[i]);
        fprintf(stderr, "\n want ");
        for (int i = 0; i < n_want; i++) fprintf(stderr, "%d ", want[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    assert_true(same);
}

#define ASSERT_ENCODING(t, text, ...)                                                              \
    do {                                                                                           \
        const int want_[] = {__VA_ARGS__};                                                         \
        assert_encoding((t), (text), want_, (int)(sizeof want_ / sizeof want_[0]));                \
    } while (0)

/* Asserts decode(encode(text)) == text, byte for byte. */
static void assert_round_trip(const Tokenizer *t, const char *text) {
    int *ids = NULL, n = 0;
    CkError err = {{0}};
    if (tokenizer_encode(t, text, 1, 1, &ids, &n, &err) != 0) fail_msg("encode: %s", err.msg);
    char *back = tokenizer_decode(t, ids, n);
    assert_non_null(back);
    if (strcmp(back, text) != 0) {
        fprintf(stderr, "round trip of \"%.200s\" gave \"%.200s\"\n", text, back);
    }
    assert_string_equal(back, text);
    free(back);
    free(ids);
}

static void test_load_tok512(void **state) {
    const Tokenizer *t = &((Tok512 *)*state)->tok;
    assert_int_equal(t->kind, TOKENIZER_LLAMA2C);
    assert_int_equal(t->vocab_size, 512);
    assert_int_equal(t->bos_id, 1);
    assert_int_equal(t->eos_id, 2);
    assert_int_equal(t->max_piece_len, 7);
    assert_int_equal(t->byte_fallback_base, 3);
    assert_int_equal(t->splits_at_spaces, 1);
    assert_string_equal(t->pieces[0], "<unk>");
    assert_string_equal(t->pieces[1], "\n<s>\n");
    assert_string_equal(t->pieces[2], "\n</s>\n");
    assert_string_equal(t->pieces[3 + 0xE4], "<0xE4>");
    assert_string_equal(t->pieces[403], " Once");
    assert_string_equal(t->pieces[410], " ");
    assert_int_equal(t->piece_lens[403], 5);
    /* sorted_ids is a permutation in strictly increasing byte order. */
    int *seen = calloc(512, sizeof *seen);
    for (int i = 0; i < 512; i++) {
        int id = t->sorted_ids[i];
        assert_in_range(id, 0, 511);
        assert_int_equal(seen[id], 0);
        seen[id] = 1;
        if (i > 0) {
            int p = t->sorted_ids[i - 1];
            int n = t->piece_lens[p] < t->piece_lens[id] ? t->piece_lens[p] : t->piece_lens[id];
            int c = memcmp(t->pieces[p], t->pieces[id], (size_t)n);
            assert_true(c < 0 || (c == 0 && t->piece_lens[p] < t->piece_lens[id]));
        }
    }
    free(seen);
}

static void test_golden_tok512(void **state) {
    const Tokenizer *t = &((Tok512 *)*state)->tok;
    ASSERT_ENCODING(t, "", 1);
    ASSERT_ENCODING(t, "Once upon a time", 1, 403, 407, 261, 378);
    ASSERT_ENCODING(t, "Lily and Tom went to the park.", 1, 317, 269, 274, 287, 263, 377, 267, 265,
                    282, 295, 433, 426);
    ASSERT_ENCODING(t, "Hello world!  你好", 1, 346, 306, 414, 263, 304, 341, 443, 410, 410, 231,
                    192, 163, 232, 168, 192);
}

static void test_bos_eos_flags(void **state) {
    const Tokenizer *t = &((Tok512 *)*state)->tok;
    int *ids = NULL, n = -1;
    CkError err = {{0}};
    assert_int_equal(tokenizer_encode(t, "Once upon a time", 0, 1, &ids, &n, &err), 0);
    int want[] = {403, 407, 261, 378, 2};
    assert_int_equal(n, 5);
    assert_memory_equal(ids, want, sizeof want);
    free(ids);
    /* No BOS, no EOS, no text: zero tokens, but still a pointer the caller may free. */
    assert_int_equal(tokenizer_encode(t, "", 0, 0, &ids, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_non_null(ids);
    free(ids);
    assert_int_equal(tokenizer_encode(t, "", 1, 1, &ids, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2);
    free(ids);
}

static void test_decode_round_trips(void **state) {
    const Tokenizer *t = &((Tok512 *)*state)->tok;
    const char *texts[] = {
        "",
        "Once upon a time",
        "Lily and Tom went to the park.",
        "Hello world!  你好",
        " leading space",
        "   three leading spaces",
        "trailing spaces   ",
        "tabs\tand\nnew lines\n\n",
        "café, naïve, Ærøskøbing, 日本語, 🙂🚀",
        "<0x41> is text here, not a byte token",
        "\x01\x02\x7f control bytes",
        "\"Quotes\" and 'apostrophes' -- and (brackets) [1, 2, 3]!?",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) assert_round_trip(t, texts[i]);
}

static void test_decode_rules(void **state) {
    const Tokenizer *t = &((Tok512 *)*state)->tok;
    /* The piece after BOS drops its leading space; elsewhere the space stays. */
    int after_bos[] = {1, 403, 407};
    char *s = tokenizer_decode(t, after_bos, 3);
    assert_string_equal(s, "Once upon");
    free(s);
    int no_bos[] = {403, 407};
    s = tokenizer_decode(t, no_bos, 2);
    assert_string_equal(s, " Once upon");
    free(s);
    /* Only the first " " loses its space. */
    int spaces[] = {1, 410, 410, 410};
    s = tokenizer_decode(t, spaces, 4);
    assert_string_equal(s, "  ");
    free(s);
    /* Byte tokens become raw bytes; BOS, EOS, <unk> and ids outside the vocabulary add
     * nothing. */
    int bytes[] = {1, 3 + 0xE4, 3 + 0xBD, 3 + 0xA0, 2, 0, -5, 512, 99999, 3 + 'A'};
    s = tokenizer_decode(t, bytes, 10);
    assert_string_equal(s, "你A");
    free(s);
    /* A byte token after BOS is a byte, not a piece with a space to drop. */
    int byte_space[] = {1, 3 + ' ', 3 + 'x'};
    s = tokenizer_decode(t, byte_space, 3);
    assert_string_equal(s, " x");
    free(s);
    s = tokenizer_decode(t, NULL, 0);
    assert_string_equal(s, "");
    free(s);

    char buf[2];
    size_t len = 99;
    const char *p = tokenizer_decode_piece(t, 1, 403, buf, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(p, "Once", 4);
    p = tokenizer_decode_piece(t, 410, 403, buf, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(p, " Once", 5);
    p = tokenizer_decode_piece(t, 1, 3 + 0x00, buf, &len);
    assert_int_equal(len, 1);
    assert_ptr_equal(p, buf);
    assert_int_equal(p[0], 0);
    p = tokenizer_decode_piece(t, 5, 1, buf, &len);
    assert_int_equal(len, 0);
    p = tokenizer_decode_piece(t, 5, 512, buf, &len);
    assert_int_equal(len, 0);
}

static void test_invalid_utf8(void **state) {
    const Tokenizer *t = &((Tok512 *)*state)->tok;
    /* Stray continuation byte, invalid lead bytes, a sequence cut short by ASCII, and a
     * sequence cut short by the end of the text: each byte on its own, via byte fallback. */
    ASSERT_ENCODING(t, "\xff", 1, 410, 3 + 0xFF);
    ASSERT_ENCODING(t, "\x80", 1, 410, 3 + 0x80);
    ASSERT_ENCODING(t, "\xc3(", 1, 410, 3 + 0xC3, 489);
    ASSERT_ENCODING(t, "\xe4\xbd", 1, 410, 3 + 0xE4, 3 + 0xBD);
    ASSERT_ENCODING(t, "\xc0\xaf", 1, 410, 3 + 0xC0, 3 + 0xAF);
    const char *texts[] = {"\x80\x80\x80",
                           "a\xffz",
                           "\xf0\x9f\x99",
                           "\xed\xa0\x80 surrogate",
                           "\xf8\x88\x80\x80\x80 five-byte form",
                           "ok \xe4\xbd\xa0\xe5 cut"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) assert_round_trip(t, texts[i]);
    /* Every single byte value, at the start and in the middle of a word. */
    for (int b = 1; b < 256; b++) {
        char text[8] = {(char)b, 'a', 'b', (char)b, 'c', 0};
        assert_round_trip(t, text);
    }
}

/* --- a slow reference of the merge rule, to check the heap against ------------------- */

/* The reference looks pieces up in its own hash table, so that it does not share the
 * library's sorted_ids search. */
typedef struct {
    const Tokenizer *t;
    int *slots; /* piece id, or -1 */
    size_t mask;
} RefVocab;

static size_t ref_hash(const char *s, int len) {
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (int i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return (size_t)h;
}

static RefVocab *ref_vocab_new(const Tokenizer *t) {
    RefVocab *v = malloc(sizeof *v);
    size_t cap = 1;
    while (cap < 4 * (size_t)t->vocab_size) cap *= 2;
    v->t = t;
    v->mask = cap - 1;
    v->slots = malloc(cap * sizeof *v->slots);
    for (size_t i = 0; i < cap; i++) v->slots[i] = -1;
    for (int id = 0; id < t->vocab_size; id++) {
        size_t h = ref_hash(t->pieces[id], t->piece_lens[id]) & v->mask;
        int dup = 0;
        for (; v->slots[h] >= 0; h = (h + 1) & v->mask) {
            int o = v->slots[h];
            if (t->piece_lens[o] == t->piece_lens[id] &&
                memcmp(t->pieces[o], t->pieces[id], (size_t)t->piece_lens[id]) == 0) {
                dup = 1; /* the lowest id keeps the piece */
                break;
            }
        }
        if (!dup) v->slots[h] = id;
    }
    return v;
}

static void ref_vocab_free(RefVocab *v) {
    free(v->slots);
    free(v);
}

static int ref_lookup(const RefVocab *v, const char *s, int len) {
    const Tokenizer *t = v->t;
    for (size_t h = ref_hash(s, len) & v->mask; v->slots[h] >= 0; h = (h + 1) & v->mask) {
        int id = v->slots[h];
        if (t->piece_lens[id] == len && memcmp(t->pieces[id], s, (size_t)len) == 0) return id;
    }
    return -1;
}

/* Same code-point rule as the library, written independently: a well-formed sequence is one
 * symbol, anything else is single bytes. Rescans every pair after every merge. */
static int *reference_encode(const RefVocab *v, const char *text, int *n_out) {
    const Tokenizer *t = v->t;
    size_t len = strlen(text);
    int *ids = malloc((len + 2) * sizeof *ids);
    int n = 0;
    ids[n++] = 1;
    if (len > 0) ids[n++] = ref_lookup(v, " ", 1);
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        int need = s[i] < 0x80                      ? 1
                   : (s[i] >= 0xC2 && s[i] <= 0xDF) ? 2
                   : (s[i] >= 0xE0 && s[i] <= 0xEF) ? 3
                   : (s[i] >= 0xF0 && s[i] <= 0xF4) ? 4
                                                    : 1;
        if (i + (size_t)need > len) need = 1;
        for (int k = 1; k < need; k++) {
            if ((s[i + (size_t)k] & 0xC0) != 0x80) need = 1;
        }
        int id = ref_lookup(v, (const char *)s + i, need);
        if (id >= 0)
            ids[n++] = id;
        else {
            for (int k = 0; k < need; k++) ids[n++] = 3 + s[i + (size_t)k];
        }
        i += (size_t)need;
    }
    char buf[256];
    for (;;) {
        float best = -1e10f;
        int best_i = -1, best_id = -1;
        /* Starts after BOS: BOS never merges. */
        for (int i = 1; i + 1 < n; i++) {
            int la = t->piece_lens[ids[i]], lb = t->piece_lens[ids[i + 1]];
            if (la + lb > (int)sizeof buf) continue;
            memcpy(buf, t->pieces[ids[i]], (size_t)la);
            memcpy(buf + la, t->pieces[ids[i + 1]], (size_t)lb);
            int id = ref_lookup(v, buf, la + lb);
            if (id >= 0 && t->scores[id] > best) {
                best = t->scores[id];
                best_i = i;
                best_id = id;
            }
        }
        if (best_i < 0) break;
        ids[best_i] = best_id;
        memmove(ids + best_i + 1, ids + best_i + 2, (size_t)(n - best_i - 2) * sizeof *ids);
        n--;
    }
    *n_out = n;
    return ids;
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Deterministic text of about `bytes` bytes: English words, runs of spaces, punctuation,
 * new lines, multi-byte UTF-8, and (when `raw` is set) arbitrary bytes. */
static char *random_text(uint64_t seed, size_t bytes, int raw) {
    static const char *words[] = {
        "Once", "upon", "a",      "time", "there", "was",   "little",  "girl",   "named",
        "Lily", "She",  "loved",  "to",   "play",  "in",    "the",     "park",   "Tom",
        "said", "and",  "happy",  "dog",  "ball",  "tree",  "meaning", "of",     "life",
        "café", "你好", "日本語", "🙂", "Ærø",   "naïve", "über",    "<0x41>", "x"};
    static const char *seps[] = {" ",  " ",   " ",  " ",     ", ", ". ", "!  ",
                                 "\n", "   ", "\t", "?\n\n", "\"", "-",  "  "};
    char *out = malloc(bytes + 64);
    size_t n = 0;
    uint64_t s = seed * 2654435761u + 1;
    while (n < bytes) {
        uint64_t r = rng_next(&s);
        const char *piece;
        char raw_buf[2] = {0};
        if (raw && r % 13 == 0) {
            raw_buf[0] = (char)(1 + (r >> 8) % 255);
            piece = raw_buf;
        } else if (r % 3 == 0) {
            piece = seps[(r >> 8) % (sizeof seps / sizeof seps[0])];
        } else {
            piece = words[(r >> 8) % (sizeof words / sizeof words[0])];
        }
        size_t len = strlen(piece);
        if (n + len > bytes + 63) break;
        memcpy(out + n, piece, len);
        n += len;
    }
    out[n] = '\0';
    return out;
}

/* Checks encode against the reference, both as loaded (merging each " word" stretch on its
 * own) and with that shortcut turned off (one heap over the whole text). */
static void check_against_reference(const RefVocab *v, const char *text) {
    int *want, n_want;
    want = reference_encode(v, text, &n_want);
    Tokenizer whole = *v->t; /* a shallow copy: shares the tables, never freed */
    whole.splits_at_spaces = 0;
    const Tokenizer *variants[] = {v->t, &whole};
    for (int k = 0; k < 2; k++) {
        int *got = NULL, n_got = 0;
        CkError err = {{0}};
        assert_int_equal(tokenizer_encode(variants[k], text, 1, 0, &got, &n_got, &err), 0);
        int same = n_got == n_want && memcmp(got, want, (size_t)n_got * sizeof *got) == 0;
        if (!same) {
            fprintf(stderr, "encode (splits_at_spaces %d) and reference differ on \"%.300s\"\n",
                    variants[k]->splits_at_spaces, text);
        }
        assert_true(same);
        free(got);
    }
    free(want);
}

static void test_matches_reference_tok512(void **state) {
    const Tokenizer *t = &((Tok512 *)*state)->tok;
    RefVocab *v = ref_vocab_new(t);
    for (uint64_t seed = 1; seed <= 40; seed++) {
        char *text = random_text(seed, 300 + (size_t)(seed * 37 % 700), seed % 2 == 0);
        check_against_reference(v, text);
        free(text);
    }
    /* Runs of one symbol: every adjacent pair forms the same piece, so only the
     * leftmost-first rule decides. */
    check_against_reference(v, "                                        ");
    check_against_reference(v, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    check_against_reference(v, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
    ref_vocab_free(v);
}

/* --- the 32000-token Llama 2 tokenizer ----------------------------------------------- */

static int load_llama2(Tokenizer *t) {
    char *path = test_shared_path(LLAMA2_TOKENIZER_REL);
    if (!path) return -1;
    CkError err = {{0}};
    int rc = tokenizer_load_llama2c_file(t, path, 32000, &err);
    if (rc != 0) fail_msg("%s", err.msg);
    free(path);
    return 0;
}

static void test_llama2_tokenizer(void **state) {
    (void)state;
    Tokenizer t;
    if (load_llama2(&t) != 0) {
        skip();
        return;
    }
    assert_int_equal(t.vocab_size, 32000);
    assert_int_equal(t.max_piece_len, 27);
    assert_int_equal(t.byte_fallback_base, 3);
    assert_int_equal(t.splits_at_spaces, 1);
    ASSERT_ENCODING(&t, "I believe the meaning of life is", 1, 306, 4658, 278, 6593, 310, 2834,
                    338);
    assert_round_trip(&t, "I believe the meaning of life is");
    assert_round_trip(&t, "    indented code();\n\tand tabs, 日本語 and 🙂");
    RefVocab *v = ref_vocab_new(&t);
    for (uint64_t seed = 100; seed < 112; seed++) {
        char *text = random_text(seed, 400, seed % 2 == 0);
        check_against_reference(v, text);
        assert_round_trip(&t, text);
        free(text);
    }
    /* Long runs of spaces: pieces of 2..16 spaces all score -1e9, so the order rests on the
     * leftmost-first tie rule. */
    char spaces[200];
    for (int n = 1; n < (int)sizeof spaces; n += 7) {
        memset(spaces, ' ', (size_t)n);
        spaces[n] = 'x';
        spaces[n + 1] = '\0';
        check_against_reference(v, spaces);
    }
    ref_vocab_free(v);
    tokenizer_free(&t);
}

/* Encodes and decodes text, asserting the round trip; returns the encode time. */
static double timed_round_trip(const Tokenizer *t, const char *text, int *n_tokens) {
    int *ids = NULL, n = 0;
    CkError err = {{0}};
    double t0 = timer_seconds();
    assert_int_equal(tokenizer_encode(t, text, 1, 1, &ids, &n, &err), 0);
    double dt = timer_seconds() - t0;
    char *back = tokenizer_decode(t, ids, n);
    assert_non_null(back);
    assert_true(strcmp(back, text) == 0);
    free(back);
    free(ids);
    *n_tokens = n;
    return dt;
}

/* An O(n^2) merge loop takes minutes on these texts (far longer under the sanitizers); the
 * time bound is loose so that a loaded machine does not fail it. */
static void test_long_text(void **state) {
    const Tokenizer *t = &((Tok512 *)*state)->tok;
    char *text = random_text(7, 100 * 1024, 1);
    int n;
    double dt = timed_round_trip(t, text, &n);
    fprintf(stderr, "tok512: %zu bytes -> %d tokens in %.3f s\n", strlen(text), n, dt);
    assert_true(dt < 10.0);
    free(text);

    Tokenizer big;
    if (load_llama2(&big) != 0) return;
    text = random_text(8, 100 * 1024, 1);
    dt = timed_round_trip(&big, text, &n);
    fprintf(stderr, "llama2 32k: %zu bytes -> %d tokens in %.3f s\n", strlen(text), n, dt);
    assert_true(dt < 10.0);
    free(text);
    /* 100 KB of spaces: one tie after another at score -1e9. */
    text = malloc(100 * 1024 + 1);
    memset(text, ' ', 100 * 1024);
    text[100 * 1024] = '\0';
    dt = timed_round_trip(&big, text, &n);
    fprintf(stderr, "llama2 32k: 100 KB of spaces -> %d tokens in %.3f s\n", n, dt);
    assert_true(dt < 10.0);
    free(text);
    tokenizer_free(&big);
}

/* --- malformed data ------------------------------------------------------------------ */

static void put_u32(char *p, uint32_t u) {
    for (int i = 0; i < 4; i++) p[i] = (char)(u >> (8 * i));
}

static void put_i32(char *p, int32_t v) {
    put_u32(p, (uint32_t)v);
}

static void put_f32(char *p, float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    put_u32(p, u);
}

/* Byte offset of record i's {score, len} in the tok512 image. */
static size_t record_offset(const Tok512 *f, int i) {
    size_t off = 4;
    for (int k = 0; k < i; k++) off += 8 + (size_t)f->tok.piece_lens[k];
    return off;
}

static void assert_load_error(const void *data, size_t size, int vocab_size, const char *want) {
    Tokenizer t;
    memset(&t, 0x5a, sizeof t); /* garbage in: load must not trust or free it */
    CkError err = {{0}};
    assert_int_equal(tokenizer_load_llama2c(&t, data, size, vocab_size, &err), -1);
    assert_string_equal(err.msg, want);
    /* A failed load leaves t zeroed, so freeing it (twice) is harmless. */
    assert_null(t.pieces);
    assert_int_equal(t.vocab_size, 0);
    tokenizer_free(&t);
    tokenizer_free(&t);
}

static void test_malformed_header(void **state) {
    const Tok512 *f = *state;
    assert_load_error(f->data, 3, 512,
                      "tokenizer: the data is 3 bytes, too short for the 4-byte "
                      "header (max_token_length)");
    assert_load_error(f->data, 0, 512,
                      "tokenizer: the data is 0 bytes, too short for the 4-byte "
                      "header (max_token_length)");
    assert_load_error(NULL, 0, 512, "tokenizer: no data");
    assert_load_error(f->data, f->size, 0,
                      "tokenizer: vocab_size 0 is too small (ids 0..2 are <unk>, BOS, EOS)");
    assert_load_error(f->data, f->size, -7,
                      "tokenizer: vocab_size -7 is too small (ids 0..2 are <unk>, BOS, EOS)");
    char *copy = malloc(f->size);
    memcpy(copy, f->data, f->size);
    put_i32(copy, -1);
    assert_load_error(copy, f->size, 512, "tokenizer: header: max_token_length -1 is negative");
    /* Record 0, "<unk>", is already longer than the header allows. */
    put_i32(copy, 1);
    assert_load_error(copy, f->size, 512,
                      "tokenizer: record 0: length 5 exceeds max_token_length 1 of the header");
    free(copy);
}

static void test_malformed_records(void **state) {
    const Tok512 *f = *state;
    char *copy = malloc(f->size);

    memcpy(copy, f->data, f->size);
    put_i32(copy + record_offset(f, 17) + 4, 9999);
    assert_load_error(copy, f->size, 512,
                      "tokenizer: record 17: length 9999 runs past the end of the data "
                      "(6227 bytes)");

    memcpy(copy, f->data, f->size);
    put_i32(copy + record_offset(f, 5) + 4, -1);
    assert_load_error(copy, f->size, 512, "tokenizer: record 5: negative length -1");

    memcpy(copy, f->data, f->size);
    put_i32(copy + record_offset(f, 300) + 4, INT32_MIN);
    assert_load_error(copy, f->size, 512, "tokenizer: record 300: negative length -2147483648");

    memcpy(copy, f->data, f->size);
    put_f32(copy + record_offset(f, 42), NAN);
    assert_load_error(copy, f->size, 512, "tokenizer: record 42: score is NaN");

    /* The last piece claims one byte more than the file holds. */
    memcpy(copy, f->data, f->size);
    put_i32(copy + record_offset(f, 511) + 4, f->tok.piece_lens[511] + 1);
    char want[256];
    snprintf(want, sizeof want,
             "tokenizer: record 511: length %d runs past the end of the data (6227 bytes)",
             f->tok.piece_lens[511] + 1);
    assert_load_error(copy, f->size, 512, want);
    free(copy);

    /* Fewer records than vocab_size. */
    assert_load_error(f->data, f->size, 513,
                      "tokenizer: record 512: missing: the data (6227 bytes) ends after 512 of "
                      "513 records");
    /* A record cut inside its score and length. */
    size_t off = record_offset(f, 100);
    snprintf(want, sizeof want,
             "tokenizer: record 100: truncated at offset %zu: 5 of the 8 bytes of score and "
             "length are present",
             off);
    assert_load_error(f->data, off + 5, 512, want);
    /* More records than vocab_size. */
    snprintf(want, sizeof want,
             "tokenizer: %d bytes left over after record 510, the last of vocab_size 511",
             8 + f->tok.piece_lens[511]);
    assert_load_error(f->data, f->size, 511, want);
}

/* Every proper prefix of the file is refused (the sanitizers watch for stray reads and
 * leaks on each error path). */
static void test_every_truncation_refused(void **state) {
    const Tok512 *f = *state;
    assert_int_equal(f->size, TOK512_SIZE);
    for (size_t size = 0; size < f->size; size++) {
        /* An exact-size copy, so that any read past `size` is caught by ASan. */
        char *copy = malloc(size > 0 ? size : 1);
        memcpy(copy, f->data, size);
        Tokenizer t;
        CkError err = {{0}};
        assert_int_equal(tokenizer_load_llama2c(&t, copy, size, 512, &err), -1);
        assert_true(strncmp(err.msg, "tokenizer: ", 11) == 0);
        assert_null(t.pieces);
        free(copy);
    }
}

static void test_load_file(void **state) {
    const Tok512 *f = *state;
    Tokenizer t;
    CkError err = {{0}};
    assert_int_equal(tokenizer_load_llama2c_file(&t, TOK512_PATH, 512, &err), 0);
    ASSERT_ENCODING(&t, "Once upon a time", 1, 403, 407, 261, 378);
    tokenizer_free(&t);

    assert_int_equal(tokenizer_load_llama2c_file(&t, "/nonexistent/tok.bin", 512, &err), -1);
    assert_string_equal(err.msg, "/nonexistent/tok.bin: cannot open: No such file or directory");
    assert_null(t.pieces);
    assert_int_equal(tokenizer_load_llama2c_file(&t, CUTKIT_SOURCE_DIR "/core/model", 512, &err),
                     -1);
    assert_string_equal(err.msg, CUTKIT_SOURCE_DIR "/core/model: not a regular file");

    char *dir = test_temp_dir();
    assert_non_null(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/short.bin", dir);
    assert_int_equal(test_write_file(path, f->data, 2), 0);
    assert_int_equal(tokenizer_load_llama2c_file(&t, path, 512, &err), -1);
    char want[1024];
    snprintf(want, sizeof want,
             "%s: tokenizer: the data is 2 bytes, too short for the 4-byte header "
             "(max_token_length)",
             path);
    assert_string_equal(err.msg, want);
    assert_null(t.pieces);
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

static void test_unloaded_tokenizer(void **state) {
    (void)state;
    Tokenizer t;
    memset(&t, 0, sizeof t);
    tokenizer_free(&t);
    int sentinel = 7, *ids = &sentinel, n = 5;
    CkError err = {{0}};
    assert_int_equal(tokenizer_encode(&t, "hi", 1, 0, &ids, &n, &err), -1);
    assert_string_equal(err.msg, "tokenizer: encode: the tokenizer is not loaded");
    assert_null(ids);
    assert_int_equal(n, 0);
    char *s = tokenizer_decode(&t, (int[]){1, 5, 9}, 3);
    assert_string_equal(s, "");
    free(s);
}

/* A vocabulary without the <0xXX> pieces at ids 3..258 has no byte fallback: unknown code
 * points become <unk> instead of ids that do not exist. */
/* Writes a tokenizer.bin image of n pieces into image (cap bytes); returns its size. */
static size_t make_image(char *image, size_t cap, int max_len, const char *const *pieces,
                         const float *scores, int n) {
    size_t off = 4;
    put_i32(image, max_len);
    for (int i = 0; i < n; i++) {
        int32_t len = (int32_t)strlen(pieces[i]);
        assert_true(off + 8 + (size_t)len <= cap);
        put_f32(image + off, scores[i]);
        put_i32(image + off + 4, len);
        memcpy(image + off + 8, pieces[i], (size_t)len);
        off += 8 + (size_t)len;
    }
    return off;
}

static void test_no_byte_fallback(void **state) {
    (void)state;
    const char *const pieces[] = {"<unk>", "\n<s>\n", "\n</s>\n", " ", "a", "b", " a", "ab", " ab"};
    const float scores[] = {0, 0, 0, 0, 0, 0, -1, -2, -3};
    char image[256];
    size_t size = make_image(image, sizeof image, 6, pieces, scores, 9);
    Tokenizer t;
    CkError err = {{0}};
    assert_int_equal(tokenizer_load_llama2c(&t, image, size, 9, &err), 0);
    assert_int_equal(t.byte_fallback_base, -1);
    assert_int_equal(t.max_piece_len, 6);
    ASSERT_ENCODING(&t, "ab", 1, 8);
    ASSERT_ENCODING(&t, "abzb", 1, 8, 0, 5);
    tokenizer_free(&t);
}

/* run.c compares scores with `>`, so -0.0 and +0.0 tie and the leftmost pair wins. */
static void test_signed_zero_scores_tie(void **state) {
    (void)state;
    const char *const pieces[] = {"<unk>", "\n<s>\n", "\n</s>\n", " ", "a", "b", " a", "ab"};
    const float scores[] = {0, 0, 0, 0, 0, 0, -0.0f, 0.0f};
    char image[256];
    size_t size = make_image(image, sizeof image, 6, pieces, scores, 8);
    Tokenizer t;
    CkError err = {{0}};
    assert_int_equal(tokenizer_load_llama2c(&t, image, size, 8, &err), 0);
    assert_true(signbit(t.scores[6]) && !signbit(t.scores[7]));
    ASSERT_ENCODING(&t, "ab", 1, 6, 5);
    tokenizer_free(&t);
}

/* run.c's search for the best pair starts at -1e10 and wants strictly more, so a piece
 * scored -1e10 is never formed by a merge, while one scored -9e9 is. */
static void test_score_floor(void **state) {
    (void)state;
    const char *const pieces[] = {"<unk>", "\n<s>\n", "\n</s>\n", " ", "a", "b", "ab"};
    float scores[] = {0, 0, 0, 0, 0, 0, -1e10f};
    char image[256];
    size_t size = make_image(image, sizeof image, 6, pieces, scores, 7);
    Tokenizer t;
    CkError err = {{0}};
    assert_int_equal(tokenizer_load_llama2c(&t, image, size, 7, &err), 0);
    ASSERT_ENCODING(&t, "ab", 1, 3, 4, 5);
    tokenizer_free(&t);
    scores[6] = -9e9f;
    size = make_image(image, sizeof image, 6, pieces, scores, 7);
    assert_int_equal(tokenizer_load_llama2c(&t, image, size, 7, &err), 0);
    ASSERT_ENCODING(&t, "ab", 1, 3, 6);
    tokenizer_free(&t);
}

/* A piece that runs from a word into the following space ("a b") turns off merging word by
 * word: here "a " then "a b" win over " a", which a per-word merge could never produce. */
static void test_piece_across_space(void **state) {
    (void)state;
    const char *const pieces[] = {"<unk>", "\n<s>\n", "\n</s>\n", " ", "a", "b", "a ", "a b", " a"};
    const float scores[] = {0, 0, 0, 0, 0, 0, -1, -2, -3};
    char image[256];
    size_t size = make_image(image, sizeof image, 6, pieces, scores, 9);
    Tokenizer t;
    CkError err = {{0}};
    assert_int_equal(tokenizer_load_llama2c(&t, image, size, 9, &err), 0);
    assert_int_equal(t.splits_at_spaces, 0);
    ASSERT_ENCODING(&t, "a b", 1, 3, 7);
    ASSERT_ENCODING(&t, "a ba b", 1, 3, 7, 7);
    RefVocab *v = ref_vocab_new(&t);
    check_against_reference(v, "a b a  b aab  ab a b b a");
    ref_vocab_free(v);
    tokenizer_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_tok512, setup_tok512, teardown_tok512),
        cmocka_unit_test_setup_teardown(test_golden_tok512, setup_tok512, teardown_tok512),
        cmocka_unit_test_setup_teardown(test_bos_eos_flags, setup_tok512, teardown_tok512),
        cmocka_unit_test_setup_teardown(test_decode_round_trips, setup_tok512, teardown_tok512),
        cmocka_unit_test_setup_teardown(test_decode_rules, setup_tok512, teardown_tok512),
        cmocka_unit_test_setup_teardown(test_invalid_utf8, setup_tok512, teardown_tok512),
        cmocka_unit_test_setup_teardown(test_matches_reference_tok512, setup_tok512,
                                        teardown_tok512),
        cmocka_unit_test(test_llama2_tokenizer),
        cmocka_unit_test_setup_teardown(test_long_text, setup_tok512, teardown_tok512),
        cmocka_unit_test_setup_teardown(test_malformed_header, setup_tok512, teardown_tok512),
        cmocka_unit_test_setup_teardown(test_malformed_records, setup_tok512, teardown_tok512),
        cmocka_unit_test_setup_teardown(test_every_truncation_refused, setup_tok512,
                                        teardown_tok512),
        cmocka_unit_test_setup_teardown(test_load_file, setup_tok512, teardown_tok512),
        cmocka_unit_test(test_unloaded_tokenizer),
        cmocka_unit_test(test_no_byte_fallback),
        cmocka_unit_test(test_piece_across_space),
        cmocka_unit_test(test_signed_zero_scores_tie),
        cmocka_unit_test(test_score_floor),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
