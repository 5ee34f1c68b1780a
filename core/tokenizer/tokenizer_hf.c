/* tokenizer_hf.c — Hugging Face tokenizer.json tokenizers with a BPE model: loading,
 * encoding, decoding.
 *
 * The pipeline is that of the Hugging Face `tokenizers` library, step by step:
 *  1. added tokens with "normalized": false are cut out of the raw text: at the leftmost
 *     position where one starts, the longest; lstrip / rstrip / single_word are honoured;
 *  2. each remaining piece is normalized (Prepend, Replace), and the added tokens with
 *     "normalized": true are cut out of the normalized text;
 *  3. each remaining piece is pre-tokenized (ByteLevel, Split, Metaspace, in sequence) into
 *     words; empty words are dropped;
 *  4. each word becomes one symbol per character (unknown ones become <0xNN> byte tokens with
 *     byte_fallback, else <unk>, fused when fuse_unk), and adjacent symbols are merged by
 *     rank: the pair with the lowest merge rank first, the leftmost of equal ranks, through a
 *     heap over a linked list of symbols (with ignore_merges, a word that is a token is
 *     emitted whole);
 *  5. with add_special_tokens, the post-processor's template puts its tokens around the text.
 * Decoding maps ids to tokens (added tokens first), drops special ones when asked, and runs
 * the decoder chain (Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace) over the list of
 * token strings, exactly as the reference's decode_chain does.
 *
 * Regexes (Split, Replace, ByteLevel's GPT-2 pattern) run on PCRE2 in UTF + UCP mode, JIT
 * compiled when the library can. The reference runs them on Oniguruma with Ruby syntax, so
 * ^ and $ are line anchors here too, and matches are iterated as the reference iterates them:
 * from the end of the previous match, skipping an empty match right where the previous match
 * ended. Anything the file asks for that is not implemented is refused by name.
 *
 * Choices and known differences (none of them touches the three fixture files):
 *  - an added token's "id" must be the id the reference gives it (the model's id of the
 *    content, else the next id after the vocabulary and the earlier added tokens); the
 *    reference silently renumbers, here the file is refused, since its ids would not mean
 *    what it says;
 *  - the text to encode must be valid UTF-8 (the reference takes Rust strings);
 *  - in regexes of the file, PCRE2 10.42's \w is L, N and '_' where Oniguruma's also has marks
 *    and connector punctuation, and Oniguruma also ends lines at NEL, LS and PS for ^ and $;
 *    single_word uses an explicit class equal to Rust's \w, as the reference does;
 *  - "truncation" must be null and "padding" null or BatchLongest (no effect on one text);
 *  - where the reference panics (a Strip decoder meeting an empty token, a Replace with an
 *    empty String pattern), this code returns a result;
 *  - tokenizer_decode_piece is the streaming form: raw bytes per token, and the leading space
 *    is dropped after BOS or at the start; tokenizer_decode is the exact one. */
#include "tokenizer/tokenizer_hf.h"

#define PCRE2_CODE_UNIT_WIDTH 8

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    /* Ids are indices of per-id tables; real vocabularies stay far below this, and a hostile
     * file cannot make those tables large. */
    MAX_ID = (1 << 22) - 1,
    /* Normalizer, pre-tokenizer and decoder steps after Sequences are flattened; encode
     * recurses once per pre-tokenizer step. */
    MAX_STEPS = 64,
    /* Code points below this have their single-character token id in a table (covers ASCII,
     * Latin, Cyrillic and all of the byte-level alphabet). */
    SMALL_CP = 0x800,
    /* Highest code point of GPT-2's byte-to-unicode alphabet, plus one. */
    BYTE_LEVEL_CP_END = 0x144,
};

/* Texts longer than this are refused so that symbol and heap counts stay inside int. */
static const size_t MAX_TEXT_BYTES = (size_t)INT_MAX / 8;

static const char REPLACEMENT_CHAR[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* ---- growable buffers --------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} Buf;

static int buf_reserve(Buf *b, size_t extra) {
    if (extra > SIZE_MAX / 4 - b->len) return -1;
    size_t need = b->len + extra;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const void *s, size_t n) {
    if (n == 0) return 0;
    if (buf_reserve(b, n) != 0) return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static void buf_free(Buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* The buffer's bytes, never NULL (so that memcpy and friends never see a null pointer). */
static const char *buf_data(const Buf *b) {
    return b->p ? b->p : "";
}

typedef struct {
    int *p;
    size_t len, cap;
} IntVec;

static int iv_push(IntVec *v, int x) {
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int *p = realloc(v->p, cap * sizeof *p);
        if (!p) return -1;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->len++] = x;
    return 0;
}

/* A half-open byte range of a string with a flag: "is a match" for regex matches, "remove"
 * for split pieces, or an added token's id (-1: plain text) for added-token splits. */
typedef struct {
    size_t start, end;
    int flag;
} Range;

typedef struct {
    Range *p;
    size_t len, cap;
} RangeVec;

static int rv_push(RangeVec *v, size_t start, size_t end, int flag) {
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        Range *p = realloc(v->p, cap * sizeof *p);
        if (!p) return -1;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->len++] = (Range){start, end, flag};
    return 0;
}

/* ---- UTF-8 --------------------------------------------------------------------------------- */

/* Length of the character whose lead byte is c, for text already known to be valid. */
static size_t utf8_char_len(unsigned char c) {
    if (c < 0x80) return 1;
    if (c < 0xE0) return 2;
    if (c < 0xF0) return 3;
    return 4;
}

/* Examines the bytes at s[0..left): returns n > 0 when they start with a well-formed n-byte
 * character (Unicode's definition: no overlong forms, no surrogates, nothing above U+10FFFF),
 * else -k where k >= 1 is the length of the maximal ill-formed prefix, which one U+FFFD
 * replaces in a lossy conversion (the "maximal subpart" rule that Rust's from_utf8_lossy and
 * the reference follow). */
static int utf8_scan(const unsigned char *s, size_t left) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    int n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return -1;
    }
    for (int i = 1; i < n; i++) {
        if ((size_t)i >= left) return -i;
        unsigned char b = s[i];
        unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) return -i;
    }
    return n;
}

/* Returns the offset of the first byte that is not part of well-formed UTF-8, or len. */
static size_t utf8_first_invalid(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        int n = utf8_scan(u + i, len - i);
        if (n < 0) return i;
        i += (size_t)n;
    }
    return len;
}

/* Decodes the character at s (valid UTF-8, n bytes). */
static uint32_t utf8_decode(const unsigned char *s, size_t n) {
    switch (n) {
    case 1:
        return s[0];
    case 2:
        return (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
    case 3:
        return (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    default:
        return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
               (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
    }
}

/* Writes code point cp as UTF-8 into out (4 bytes of room); returns the length. */
static size_t utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Appends s[0..n) with every ill-formed sequence replaced by one U+FFFD. */
static int put_lossy(Buf *out, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0; /* run: start of the pending well-formed stretch */
    while (i < n) {
        int k = u[i] < 0x80 ? 1 : utf8_scan(u + i, n - i);
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        if (buf_put(out, s + run, i - run) != 0 || buf_put(out, REPLACEMENT_CHAR, 3) != 0)
            return -1;
        i += (size_t)-k;
        run = i;
    }
    return buf_put(out, s + run, n - run);
}

/* Rust's char::is_whitespace: the Unicode White_Space property. */
static int is_white_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* ---- hashing ------------------------------------------------------------------------------- */

/* Eight bytes at a time with a multiply-xorshift mix: tokens are short, so what matters is
 * few operations per byte and well-spread low bits for the power-of-two tables. */
static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    if (n > 0) memcpy(&w, s, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    return h;
}

/* An open-addressing table of ids whose strings live elsewhere (an arena and per-id offset
 * and length arrays, passed at each call because the arena may move while it grows). */
typedef struct {
    int *slots; /* -1 = empty */
    size_t mask;
} StrTable;

static int strtab_init(StrTable *t, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    t->slots = malloc(cap * sizeof *t->slots);
    if (!t->slots) return -1;
    for (size_t i = 0; i < cap; i++) t->slots[i] = -1;
    t->mask = cap - 1;
    return 0;
}

/* Returns the slot holding s[0..n), or the empty slot where it would go. */
static size_t strtab_slot(const StrTable *t, const char *base, const uint32_t *off, const int *len,
                          const char *s, size_t n) {
    size_t h = (size_t)hash_bytes(s, n) & t->mask;
    for (;; h = (h + 1) & t->mask) {
        int k = t->slots[h];
        if (k < 0) return h;
        if ((size_t)len[k] == n && memcmp(base + off[k], s, n) == 0) return h;
    }
}

/* ---- regexes ------------------------------------------------------------------------------- */

typedef struct {
    pcre2_code *code;
} Regex;

static void regex_free(Regex *r) {
    pcre2_code_free(r->code);
    r->code = NULL;
}

/* Compiles pattern (or the literal string when literal); on failure writes the PCRE2 message
 * into msg. The reference escapes a literal pattern into a regex, so an empty literal matches
 * the empty string everywhere, as here. */
static int regex_compile(Regex *r, const char *pattern, int literal, char *msg, size_t msg_cap) {
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP | PCRE2_MULTILINE);
    int code;
    PCRE2_SIZE at;
    r->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &code, &at, NULL);
    if (!r->code) {
        PCRE2_UCHAR text[200];
        pcre2_get_error_message(code, text, sizeof text);
        snprintf(msg, msg_cap, "%s at offset %zu", (const char *)text, (size_t)at);
        return -1;
    }
    /* Without JIT (no support, or no executable memory) pcre2_match interprets: slower,
     * same results. */
    pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE);
    return 0;
}

/* Splits s[0..len) into alternating non-matching and matching ranges (flag 1 = match), as the
 * reference's find_matches: an empty string gives one empty non-match; empty matches are
 * kept (they cut the text) except one right where the previous match ended. */
static int find_matches(const Regex *r, pcre2_match_data *md, const char *s, size_t len,
                        RangeVec *out, CkError *err) {
    out->len = 0;
    if (len == 0) return rv_push(out, 0, 0, 0) == 0 ? 0 : ck_fail(err, "out of memory");
    size_t prev = 0, from = 0, last_end = 0;
    int have_last = 0;
    while (from <= len) {
        int rc = pcre2_match(r->code, (PCRE2_SPTR)s, len, from, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
            /* The interpreter keeps its backtracking state on the heap instead. */
            rc = pcre2_match(r->code, (PCRE2_SPTR)s, len, from, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                             md, NULL);
        }
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR text[200];
            pcre2_get_error_message(rc, text, sizeof text);
            return ck_fail(err, "tokenizer: regex match failed: %s", (const char *)text);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (ms > me || ms < prev || me > len) {
            return ck_fail(err, "tokenizer: regex match failed: the match runs backwards");
        }
        if (ms == me && have_last && last_end == me) {
            /* Step over one character and search again. */
            from += from < len ? utf8_char_len((unsigned char)s[from]) : 1;
            continue;
        }
        from = me;
        have_last = 1;
        last_end = me;
        if (prev != ms && rv_push(out, prev, ms, 0) != 0) return ck_fail(err, "out of memory");
        if (rv_push(out, ms, me, 1) != 0) return ck_fail(err, "out of memory");
        prev = me;
    }
    if (prev != len && rv_push(out, prev, len, 0) != 0) return ck_fail(err, "out of memory");
    return 0;
}

/* Appends s[0..len) with every match of r replaced by content. */
static int replace_all(const Regex *r, pcre2_match_data *md, RangeVec *tmp, const char *s,
                       size_t len, const char *content, size_t content_len, Buf *out,
                       CkError *err) {
    if (find_matches(r, md, s, len, tmp, err) != 0) return -1;
    for (size_t i = 0; i < tmp->len; i++) {
        const Range *m = &tmp->p[i];
        int rc = m->flag ? buf_put(out, content, content_len)
                         : buf_put(out, s + m->start, m->end - m->start);
        if (rc != 0) return ck_fail(err, "out of memory");
    }
    return 0;
}

/* ---- the tokenizer's state ----------------------------------------------------------------- */

typedef enum {
    STEP_PREPEND,       /* normalizer */
    STEP_REPLACE,       /* normalizer, decoder */
    STEP_BYTE_LEVEL,    /* pre-tokenizer, decoder */
    STEP_SPLIT,         /* pre-tokenizer */
    STEP_METASPACE,     /* pre-tokenizer, decoder */
    STEP_BYTE_FALLBACK, /* decoder */
    STEP_FUSE,          /* decoder */
    STEP_STRIP,         /* decoder */
} StepKind;

typedef enum {
    SPLIT_REMOVED,
    SPLIT_ISOLATED,
    SPLIT_MERGED_WITH_PREVIOUS,
    SPLIT_MERGED_WITH_NEXT,
    SPLIT_CONTIGUOUS,
} SplitBehavior;

typedef enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER } PrependScheme;

/* One step of the normalizer, pre-tokenizer or decoder (Sequences are flattened). */
typedef struct {
    StepKind kind;
    Regex re;   /* Replace, Split; ByteLevel with use_regex (the GPT-2 pattern) */
    char *text; /* Prepend's text, Replace's content (owned) */
    size_t text_len;
    int add_prefix_space, use_regex; /* ByteLevel */
    SplitBehavior behavior;          /* Split */
    int invert;                      /* Split */
    char rep[5];                     /* Metaspace's replacement character, Strip's content */
    size_t rep_len;
    PrependScheme scheme; /* Metaspace */
    int split;            /* Metaspace */
    int start, stop;      /* Strip: how many characters at most */
} Step;

typedef struct {
    Step *p;
    int n;
} StepList;

typedef struct {
    uint32_t off; /* content in the arena */
    int len;
    int id;
    unsigned char special, single_word, lstrip, rstrip, normalized;
} AddedToken;

/* A byte trie of added-token patterns, for leftmost-longest matching. */
typedef struct {
    int child, sibling; /* first child, next sibling; -1 = none */
    int token;          /* index into added[], or -1 */
    unsigned char byte;
} TrieNode;

typedef struct {
    TrieNode *nodes; /* node 0 is the root */
    int n, cap;
    int n_patterns;
    unsigned char first[256]; /* 1 for bytes that start some pattern */
} Trie;

/* Merge ranks by pair of ids: keys (a << 32 | b), UINT64_MAX = empty. */
typedef struct {
    uint64_t *keys;
    int32_t *rank, *merged;
    size_t mask;
    int shift;
} PairTable;

struct HfTokenizer {
    int n_ids;
    Buf arena; /* every string: vocabulary, added tokens, decoded pieces */

    /* model vocabulary */
    int n_model_ids; /* 1 + highest model id */
    int n_vocab;     /* number of model vocabulary entries */
    uint32_t *voff;  /* [n_model_ids] */
    int *vlen;       /* [n_model_ids] -1 where no model token has that id */
    StrTable vocab;
    int small_id[SMALL_CP]; /* single-character tokens by code point, -1 = none */
    int byte_id[256];       /* <0xNN> tokens for byte fallback, -1 = none */
    PairTable merges;
    int unk_id; /* -1 = no unk_token */
    int fuse_unk, byte_fallback, ignore_merges;
    int merge_into_space; /* some merge joins a token not ending in "▁" to one starting with it */
    int split_at_space;   /* words may be merged in stretches that start at "▁" (see below) */

    /* added tokens */
    AddedToken *added;
    int n_added;
    StrTable added_table; /* by content: keys added_off / added_len */
    uint32_t *added_off;
    int *added_len;
    Trie raw_trie, norm_trie;
    Regex word_re; /* Rust's \w, only when some added token is single_word */

    /* pipeline */
    StepList norm, pre, dec;
    int has_decoder;
    IntVec prefix, suffix; /* post-processor tokens around the text */

    /* per id */
    uint32_t *doff;         /* [n_ids] the token for decoding (added tokens first) */
    int *dlen;              /* -1 = no token */
    unsigned char *special; /* 1: skip_special drops it (its token is a special's content) */
    uint32_t *poff;         /* [n_ids] the streaming piece (tokenizer_decode_piece) */
    int *plen;
    short *pbyte; /* the raw byte of a <0xNN> piece, or -1 */
    int strip_first;

    /* GPT-2's bytes_to_unicode: byte -> UTF-8 of its character, and back */
    char bl_enc[256][2];
    unsigned char bl_enc_len[256];
    short bl_dec[BYTE_LEVEL_CP_END];
};

static void steps_free(StepList *l) {
    for (int i = 0; i < l->n; i++) {
        regex_free(&l->p[i].re);
        free(l->p[i].text);
    }
    free(l->p);
    memset(l, 0, sizeof *l);
}

void hf_free(HfTokenizer *hf) {
    if (!hf) return;
    buf_free(&hf->arena);
    free(hf->voff);
    free(hf->vlen);
    free(hf->vocab.slots);
    free(hf->merges.keys);
    free(hf->merges.rank);
    free(hf->merges.merged);
    free(hf->added);
    free(hf->added_table.slots);
    free(hf->added_off);
    free(hf->added_len);
    free(hf->raw_trie.nodes);
    free(hf->norm_trie.nodes);
    regex_free(&hf->word_re);
    steps_free(&hf->norm);
    steps_free(&hf->pre);
    steps_free(&hf->dec);
    free(hf->prefix.p);
    free(hf->suffix.p);
    free(hf->doff);
    free(hf->dlen);
    free(hf->special);
    free(hf->poff);
    free(hf->plen);
    free(hf->pbyte);
    free(hf);
}

/* GPT-2's bytes_to_unicode: the printable bytes '!'..'~', '¡'..'¬' and '®'..'ÿ' stand for
 * themselves; the other 68 bytes, in increasing order, become U+0100, U+0101, ... */
static void init_byte_level(HfTokenizer *hf) {
    for (int cp = 0; cp < BYTE_LEVEL_CP_END; cp++) hf->bl_dec[cp] = -1;
    int next = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        int cp = printable ? b : next++;
        char tmp[4];
        size_t n = utf8_encode((uint32_t)cp, tmp);
        memcpy(hf->bl_enc[b], tmp, n);
        hf->bl_enc_len[b] = (unsigned char)n;
        hf->bl_dec[cp] = (short)b;
    }
}

static const char *arena_str(const HfTokenizer *hf, uint32_t off) {
    return hf->arena.p + off;
}

/* Returns the model id of token s[0..n), or -1. */
static int vocab_find(const HfTokenizer *hf, const char *s, size_t n) {
    int id = hf->vocab.slots[strtab_slot(&hf->vocab, hf->arena.p, hf->voff, hf->vlen, s, n)];
    return id;
}

/* The id of the single-character token s[0..n), or -1. */
static int char_id(const HfTokenizer *hf, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    if (n == 1) return hf->small_id[u[0]];
    if (n == 2) return hf->small_id[utf8_decode(u, 2)];
    return vocab_find(hf, s, n);
}

static size_t pair_slot(const PairTable *t, uint64_t key) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> t->shift) & t->mask;
}

/* Finds the merge of ids a and b: returns 1 and fills rank and merged id, or 0. */
static int pair_find(const PairTable *t, int a, int b, int *rank, int *merged) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t h = pair_slot(t, key);; h = (h + 1) & t->mask) {
        if (t->keys[h] == key) {
            *rank = t->rank[h];
            *merged = t->merged[h];
            return 1;
        }
        if (t->keys[h] == UINT64_MAX) return 0;
    }
}

/* ---- loading: JSON helpers ----------------------------------------------------------------- */

typedef struct {
    const char *source; /* the file name in messages */
    CkError *err;
    HfTokenizer *hf;
    pcre2_match_data *md;
    RangeVec tmp;
} Load;

static int lfail(Load *l, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fails with "source: path: message". */
static int lfail(Load *l, const char *path, const char *fmt, ...) {
    char msg[360];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ck_fail(l->err, "%s: %s: %s", l->source, path, msg);
}

static int oom(Load *l) {
    return ck_fail(l->err, "%s: out of memory", l->source);
}

/* Writes s[0..n) into out for a message: quoted, at most 40 bytes, bytes below 0x20 escaped. */
static const char *quote(char *out, size_t cap, const char *s, size_t n) {
    size_t k = 0;
    out[k++] = '\'';
    for (size_t i = 0; i < n && k + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= 40) {
            k += (size_t)snprintf(out + k, cap - k, "...");
            break;
        }
        if (c < 0x20 || c == 0x7F) {
            k += (size_t)snprintf(out + k, cap - k, "\\x%02X", c);
        } else {
            out[k++] = (char)c;
        }
    }
    out[k++] = '\'';
    out[k] = '\0';
    return out;
}

static const char *jkind(const cJSON *j) {
    if (!j) return "nothing";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsArray(j)) return "an array";
    return "an object";
}

/* path + "." + key into buf (just key at the top level), cut to fit: paths are for messages. */
static const char *sub(char *buf, size_t cap, const char *path, const char *key) {
    const char *parts[3] = {path, *path ? "." : "", key};
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        for (const char *c = parts[i]; *c && n + 1 < cap; c++) buf[n++] = *c;
    }
    buf[n] = '\0';
    return buf;
}

static const char *sub_index(char *buf, size_t cap, const char *path, const char *key, int i) {
    snprintf(buf, cap, "%s%s%s[%d]", path, *path && *key ? "." : "", key, i);
    return buf;
}

/* obj[key], or NULL when absent or null (the reference treats null as absent). */
static const cJSON *jget(const cJSON *obj, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    return j && !cJSON_IsNull(j) ? j : NULL;
}

static int jbool(Load *l, const cJSON *obj, const char *path, const char *key, int def, int *out) {
    const cJSON *j = jget(obj, key);
    *out = def;
    if (!j) return 0;
    char p[200];
    if (!cJSON_IsBool(j)) {
        return lfail(l, sub(p, sizeof p, path, key), "expected true or false, found %s", jkind(j));
    }
    *out = cJSON_IsTrue(j);
    return 0;
}

/* A string field: *out is NULL when absent or null and not required. */
static int jstr(Load *l, const cJSON *obj, const char *path, const char *key, int required,
                const char **out) {
    const cJSON *j = jget(obj, key);
    char p[200];
    *out = NULL;
    if (!j) return required ? lfail(l, sub(p, sizeof p, path, key), "missing") : 0;
    if (!cJSON_IsString(j)) {
        return lfail(l, sub(p, sizeof p, path, key), "expected a string, found %s", jkind(j));
    }
    *out = j->valuestring;
    return 0;
}

static int jint_value(Load *l, const cJSON *j, const char *path, double lo, double hi, int *out) {
    if (!cJSON_IsNumber(j)) return lfail(l, path, "expected an integer, found %s", jkind(j));
    double v = j->valuedouble;
    if (!(v == floor(v)) || v < lo || v > hi) {
        return lfail(l, path, "expected an integer from %.0f to %.0f, found %g", lo, hi, v);
    }
    *out = (int)v;
    return 0;
}

static int jint(Load *l, const cJSON *obj, const char *path, const char *key, double lo, double hi,
                int def, int *out) {
    const cJSON *j = jget(obj, key);
    *out = def;
    if (!j) return 0;
    char p[200];
    return jint_value(l, j, sub(p, sizeof p, path, key), lo, hi, out);
}

static int jobject(Load *l, const cJSON *j, const char *path) {
    return cJSON_IsObject(j) ? 0 : lfail(l, path, "expected an object, found %s", jkind(j));
}

static int jarray(Load *l, const cJSON *obj, const char *path, const char *key, const cJSON **out) {
    char p[200];
    *out = jget(obj, key);
    if (!*out) return lfail(l, sub(p, sizeof p, path, key), "missing");
    if (!cJSON_IsArray(*out)) {
        return lfail(l, sub(p, sizeof p, path, key), "expected an array, found %s", jkind(*out));
    }
    return 0;
}

/* Checks what cJSON does not: that the text is UTF-8 (serde_json, which the reference uses,
 * insists), that strings hold no raw control characters and no \u0000 (cJSON strings end at
 * a NUL, which would silently shorten a token). */
static int check_json_text(Load *l, const char *s, size_t len) {
    size_t bad = utf8_first_invalid(s, len);
    size_t line = 1;
    for (size_t i = 0; i < len && i < bad; i++) line += s[i] == '\n';
    if (bad < len) return ck_fail(l->err, "%s: line %zu: not valid UTF-8", l->source, line);
    int in_string = 0;
    line = 1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\n') line++;
        if (!in_string) {
            if (c == '"') in_string = 1;
            continue;
        }
        if (c == '"') {
            in_string = 0;
        } else if ((unsigned char)c < 0x20) {
            return ck_fail(l->err, "%s: line %zu: a control character inside a JSON string",
                           l->source, line);
        } else if (c == '\\' && i + 1 < len) {
            if (s[i + 1] == 'u' && i + 5 < len && memcmp(s + i + 2, "0000", 4) == 0) {
                return ck_fail(l->err, "%s: line %zu: \\u0000 in a JSON string is not supported",
                               l->source, line);
            }
            i++; /* the escaped character cannot end the string */
        }
    }
    return 0;
}

/* Parses JSON text that must be an object; refuses trailing garbage as serde_json does. */
static cJSON *parse_json(Load *l, const char *s, size_t len) {
    if (check_json_text(l, s, len) != 0) return NULL;
    const char *end = NULL;
    cJSON *root = len > 0 ? cJSON_ParseWithLengthOpts(s, len, &end, 0) : NULL;
    if (root && end) {
        size_t k = (size_t)(end - s);
        while (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r')) k++;
        if (k < len) {
            cJSON_Delete(root);
            root = NULL;
            end = s + k;
        }
    }
    if (!root) {
        size_t at = end ? (size_t)(end - s) : 0;
        if (!end) {
            const char *e = cJSON_GetErrorPtr();
            at = e && e >= s && e <= s + len ? (size_t)(e - s) : 0;
        }
        size_t line = 1;
        for (size_t i = 0; i < at; i++) line += s[i] == '\n';
        ck_fail(l->err, "%s: line %zu: not valid JSON (at byte %zu)", l->source, line, at);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        ck_fail(l->err, "%s: expected a JSON object at the top level, found %s", l->source,
                jkind(root));
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static Step *add_step(Load *l, StepList *list, const char *path, StepKind kind) {
    if (list->n >= MAX_STEPS) {
        lfail(l, path, "more than %d steps", MAX_STEPS);
        return NULL;
    }
    Step *p = realloc(list->p, (size_t)(list->n + 1) * sizeof *p);
    if (!p) {
        oom(l);
        return NULL;
    }
    list->p = p;
    Step *s = &p[list->n++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    return s;
}

/* A {"String": s} or {"Regex": r} pattern, compiled into re. */
static int load_pattern(Load *l, const cJSON *obj, const char *path, Regex *re) {
    char p[200];
    const cJSON *pat = jget(obj, "pattern");
    sub(p, sizeof p, path, "pattern");
    if (!pat) return lfail(l, p, "missing");
    if (jobject(l, pat, p) != 0) return -1;
    const char *str, *rx;
    if (jstr(l, pat, p, "String", 0, &str) != 0 || jstr(l, pat, p, "Regex", 0, &rx) != 0) return -1;
    if (!str == !rx) return lfail(l, p, "expected exactly one of \"String\" and \"Regex\"");
    char msg[260];
    if (regex_compile(re, str ? str : rx, str != NULL, msg, sizeof msg) != 0) {
        char q[200];
        return lfail(l, sub(q, sizeof q, p, str ? "String" : "Regex"), "cannot compile: %s", msg);
    }
    return 0;
}

static int dup_text(Load *l, Step *s, const char *text) {
    s->text_len = strlen(text);
    s->text = malloc(s->text_len + 1);
    if (!s->text) return oom(l);
    memcpy(s->text, text, s->text_len + 1);
    return 0;
}

/* A one-character string field (Metaspace's replacement, Strip's content). */
static int load_char(Load *l, const cJSON *obj, const char *path, const char *key, const char *def,
                     Step *s) {
    const char *c;
    if (jstr(l, obj, path, key, 0, &c) != 0) return -1;
    if (!c) c = def;
    size_t n = strlen(c);
    char p[200];
    if (n == 0 || n > 4 || utf8_char_len((unsigned char)c[0]) != n) {
        return lfail(l, sub(p, sizeof p, path, key), "expected a single character");
    }
    memcpy(s->rep, c, n);
    s->rep[n] = '\0';
    s->rep_len = n;
    return 0;
}

static int load_prepend_scheme(Load *l, const cJSON *obj, const char *path, Step *s) {
    const char *scheme;
    char p[200];
    if (jstr(l, obj, path, "prepend_scheme", 0, &scheme) != 0) return -1;
    if (scheme) {
        if (!strcmp(scheme, "always")) {
            s->scheme = PREPEND_ALWAYS;
        } else if (!strcmp(scheme, "first")) {
            s->scheme = PREPEND_FIRST;
        } else if (!strcmp(scheme, "never")) {
            s->scheme = PREPEND_NEVER;
        } else {
            return lfail(l, sub(p, sizeof p, path, "prepend_scheme"),
                         "unsupported prepend_scheme '%s' (expected always, first or never)",
                         scheme);
        }
        return 0;
    }
    /* The older form: add_prefix_space true means "always". */
    int add;
    if (jbool(l, obj, path, "add_prefix_space", 1, &add) != 0) return -1;
    s->scheme = add ? PREPEND_ALWAYS : PREPEND_NEVER;
    return 0;
}

static int load_metaspace(Load *l, const cJSON *j, const char *path, Step *s) {
    if (load_char(l, j, path, "replacement", "\xE2\x96\x81", s) != 0) return -1;
    if (load_prepend_scheme(l, j, path, s) != 0) return -1;
    return jbool(l, j, path, "split", 1, &s->split);
}

/* Reads obj["type"] as a string. */
static int jtype(Load *l, const cJSON *j, const char *path, const char **type) {
    if (jobject(l, j, path) != 0) return -1;
    return jstr(l, j, path, "type", 1, type);
}

static int load_normalizer(Load *l, const cJSON *j, const char *path) {
    const char *type;
    char p[200];
    if (jtype(l, j, path, &type) != 0) return -1;
    HfTokenizer *hf = l->hf;
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr;
        if (jarray(l, j, path, "normalizers", &arr) != 0) return -1;
        int i = 0;
        for (const cJSON *c = arr->child; c; c = c->next, i++) {
            if (load_normalizer(l, c, sub_index(p, sizeof p, path, "normalizers", i)) != 0)
                return -1;
        }
        return 0;
    }
    if (!strcmp(type, "Prepend")) {
        const char *text;
        if (jstr(l, j, path, "prepend", 1, &text) != 0) return -1;
        Step *s = add_step(l, &hf->norm, path, STEP_PREPEND);
        return s ? dup_text(l, s, text) : -1;
    }
    if (!strcmp(type, "Replace")) {
        const char *content;
        if (jstr(l, j, path, "content", 1, &content) != 0) return -1;
        Step *s = add_step(l, &hf->norm, path, STEP_REPLACE);
        if (!s || dup_text(l, s, content) != 0) return -1;
        return load_pattern(l, j, path, &s->re);
    }
    return lfail(l, sub(p, sizeof p, path, "type"), "unsupported normalizer '%s'", type);
}

/* GPT-2's pre-tokenizer pattern, which ByteLevel applies when use_regex is true. */
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int load_pre_tokenizer(Load *l, const cJSON *j, const char *path) {
    const char *type;
    char p[200];
    if (jtype(l, j, path, &type) != 0) return -1;
    HfTokenizer *hf = l->hf;
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr;
        if (jarray(l, j, path, "pretokenizers", &arr) != 0) return -1;
        int i = 0;
        for (const cJSON *c = arr->child; c; c = c->next, i++) {
            if (load_pre_tokenizer(l, c, sub_index(p, sizeof p, path, "pretokenizers", i)) != 0)
                return -1;
        }
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        Step *s = add_step(l, &hf->pre, path, STEP_BYTE_LEVEL);
        if (!s || jbool(l, j, path, "add_prefix_space", 1, &s->add_prefix_space) != 0 ||
            jbool(l, j, path, "use_regex", 1, &s->use_regex) != 0) {
            return -1;
        }
        if (s->use_regex) {
            char msg[260];
            if (regex_compile(&s->re, GPT2_PATTERN, 0, msg, sizeof msg) != 0) {
                return lfail(l, path, "cannot compile the GPT-2 pattern: %s", msg);
            }
        }
        return 0;
    }
    if (!strcmp(type, "Split")) {
        const char *behavior;
        Step *s = add_step(l, &hf->pre, path, STEP_SPLIT);
        if (!s || load_pattern(l, j, path, &s->re) != 0 ||
            jstr(l, j, path, "behavior", 1, &behavior) != 0 ||
            jbool(l, j, path, "invert", 0, &s->invert) != 0) {
            return -1;
        }
        static const char *const NAMES[] = {"Removed", "Isolated", "MergedWithPrevious",
                                            "MergedWithNext", "Contiguous"};
        for (int b = 0; b < 5; b++) {
            if (!strcmp(behavior, NAMES[b])) {
                s->behavior = (SplitBehavior)b;
                return 0;
            }
        }
        return lfail(l, sub(p, sizeof p, path, "behavior"), "unsupported split behavior '%s'",
                     behavior);
    }
    if (!strcmp(type, "Metaspace")) {
        Step *s = add_step(l, &hf->pre, path, STEP_METASPACE);
        return s ? load_metaspace(l, j, path, s) : -1;
    }
    return lfail(l, sub(p, sizeof p, path, "type"), "unsupported pre-tokenizer '%s'", type);
}

static int load_decoder(Load *l, const cJSON *j, const char *path) {
    const char *type;
    char p[200];
    if (jtype(l, j, path, &type) != 0) return -1;
    HfTokenizer *hf = l->hf;
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr;
        if (jarray(l, j, path, "decoders", &arr) != 0) return -1;
        int i = 0;
        for (const cJSON *c = arr->child; c; c = c->next, i++) {
            if (load_decoder(l, c, sub_index(p, sizeof p, path, "decoders", i)) != 0) return -1;
        }
        return 0;
    }
    if (!strcmp(type, "Replace")) {
        const char *content;
        if (jstr(l, j, path, "content", 1, &content) != 0) return -1;
        Step *s = add_step(l, &hf->dec, path, STEP_REPLACE);
        if (!s || dup_text(l, s, content) != 0) return -1;
        return load_pattern(l, j, path, &s->re);
    }
    if (!strcmp(type, "ByteLevel")) return add_step(l, &hf->dec, path, STEP_BYTE_LEVEL) ? 0 : -1;
    if (!strcmp(type, "ByteFallback")) {
        return add_step(l, &hf->dec, path, STEP_BYTE_FALLBACK) ? 0 : -1;
    }
    if (!strcmp(type, "Fuse")) return add_step(l, &hf->dec, path, STEP_FUSE) ? 0 : -1;
    if (!strcmp(type, "Strip")) {
        Step *s = add_step(l, &hf->dec, path, STEP_STRIP);
        if (!s || load_char(l, j, path, "content", " ", s) != 0) return -1;
        if (jint(l, j, path, "start", 0, INT_MAX, 0, &s->start) != 0) return -1;
        return jint(l, j, path, "stop", 0, INT_MAX, 0, &s->stop);
    }
    if (!strcmp(type, "Metaspace")) {
        Step *s = add_step(l, &hf->dec, path, STEP_METASPACE);
        return s ? load_metaspace(l, j, path, s) : -1;
    }
    return lfail(l, sub(p, sizeof p, path, "type"), "unsupported decoder '%s'", type);
}

/* Appends the ids of template items before "$A" to prefix and after it to suffix. */
static int load_template(Load *l, const cJSON *j, const char *path, IntVec *prefix,
                         IntVec *suffix) {
    char p[200], q[240], r[280];
    const cJSON *single, *specials = jget(j, "special_tokens");
    if (jarray(l, j, path, "single", &single) != 0) return -1;
    if (specials && jobject(l, specials, sub(p, sizeof p, path, "special_tokens")) != 0) return -1;
    int seen_a = 0, i = 0;
    IntVec pre = {0}, post = {0};
    int rc = -1;
    for (const cJSON *item = single->child; item; item = item->next, i++) {
        sub_index(p, sizeof p, path, "single", i);
        if (jobject(l, item, p) != 0) goto done;
        const cJSON *seq = jget(item, "Sequence"), *tok = jget(item, "SpecialToken");
        if (!seq == !tok) {
            lfail(l, p, "expected exactly one of \"Sequence\" and \"SpecialToken\"");
            goto done;
        }
        const char *name;
        if (seq) {
            sub(q, sizeof q, p, "Sequence");
            if (jobject(l, seq, q) != 0 || jstr(l, seq, q, "id", 1, &name) != 0) goto done;
            if (strcmp(name, "A") != 0 || seen_a) {
                lfail(l, q, "only one \"A\" sequence is supported in \"single\", found '%s'", name);
                goto done;
            }
            seen_a = 1;
            continue;
        }
        sub(q, sizeof q, p, "SpecialToken");
        if (jobject(l, tok, q) != 0 || jstr(l, tok, q, "id", 1, &name) != 0) goto done;
        const cJSON *def = specials ? cJSON_GetObjectItemCaseSensitive(specials, name) : NULL;
        if (!def) {
            lfail(l, q, "'%s' is not in %s.special_tokens", name, path);
            goto done;
        }
        snprintf(r, sizeof r, "%s.special_tokens.%s", path, name);
        const cJSON *ids;
        if (jobject(l, def, r) != 0 || jarray(l, def, r, "ids", &ids) != 0) goto done;
        int k = 0;
        for (const cJSON *x = ids->child; x; x = x->next, k++) {
            int id = 0;
            char s[320];
            snprintf(s, sizeof s, "%s.ids[%d]", r, k);
            if (jint_value(l, x, s, 0, MAX_ID, &id) != 0) goto done;
            if (iv_push(seen_a ? &post : &pre, id) != 0) {
                oom(l);
                goto done;
            }
        }
    }
    if (!seen_a) {
        lfail(l, sub(p, sizeof p, path, "single"), "no \"A\" sequence");
        goto done;
    }
    /* A later processor wraps what the earlier ones produced. */
    for (size_t k = 0; k < prefix->len; k++) {
        if (iv_push(&pre, prefix->p[k]) != 0) goto out_of_memory;
    }
    for (size_t k = 0; k < post.len; k++) {
        if (iv_push(suffix, post.p[k]) != 0) goto out_of_memory;
    }
    free(prefix->p);
    *prefix = pre;
    pre = (IntVec){0};
    rc = 0;
    goto done;
out_of_memory:
    oom(l);
done:
    free(pre.p);
    free(post.p);
    return rc;
}

/* Bert/Roberta processors: cls before the text, sep after it, each a [token, id] pair. */
static int load_cls_sep(Load *l, const cJSON *j, const char *path, const char *key, IntVec *into,
                        int in_front) {
    char p[200], q[220];
    const cJSON *pair;
    if (jarray(l, j, path, key, &pair) != 0) return -1;
    sub(p, sizeof p, path, key);
    if (cJSON_GetArraySize(pair) != 2 || !cJSON_IsString(pair->child)) {
        return lfail(l, p, "expected a [token, id] pair");
    }
    int id = 0;
    if (jint_value(l, pair->child->next, sub_index(q, sizeof q, p, "", 1), 0, MAX_ID, &id) != 0)
        return -1;
    if (!in_front) return iv_push(into, id) == 0 ? 0 : oom(l);
    if (iv_push(into, id) != 0) return oom(l);
    memmove(into->p + 1, into->p, (into->len - 1) * sizeof *into->p);
    into->p[0] = id;
    return 0;
}

static int load_post_processor(Load *l, const cJSON *j, const char *path) {
    const char *type;
    char p[200];
    if (jtype(l, j, path, &type) != 0) return -1;
    HfTokenizer *hf = l->hf;
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr;
        if (jarray(l, j, path, "processors", &arr) != 0) return -1;
        int i = 0;
        for (const cJSON *c = arr->child; c; c = c->next, i++) {
            if (load_post_processor(l, c, sub_index(p, sizeof p, path, "processors", i)) != 0)
                return -1;
        }
        return 0;
    }
    /* ByteLevel's post-processing only trims offsets, which encode does not return. */
    if (!strcmp(type, "ByteLevel")) return 0;
    if (!strcmp(type, "TemplateProcessing")) {
        return load_template(l, j, path, &hf->prefix, &hf->suffix);
    }
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        if (load_cls_sep(l, j, path, "cls", &hf->prefix, 1) != 0) return -1;
        return load_cls_sep(l, j, path, "sep", &hf->suffix, 0);
    }
    return lfail(l, sub(p, sizeof p, path, "type"), "unsupported post-processor '%s'", type);
}

/* ---- loading: the model -------------------------------------------------------------------- */

static int arena_add(Load *l, const char *s, size_t n, uint32_t *off) {
    Buf *a = &l->hf->arena;
    if (a->len + n + 1 > UINT32_MAX) return ck_fail(l->err, "%s: too much text", l->source);
    *off = (uint32_t)a->len;
    if (buf_put(a, s, n) != 0 || buf_put(a, "", 1) != 0) return oom(l);
    return 0;
}

static int load_vocab(Load *l, const cJSON *vocab) {
    HfTokenizer *hf = l->hf;
    char p[200], q[120];
    int max_id = -1, n = 0;
    for (const cJSON *it = vocab->child; it; it = it->next, n++) {
        double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (!(v == floor(v) && v >= 0 && v <= MAX_ID)) {
            /* The message (and its path) only when something is wrong: 128k snprintf calls
             * would be a good part of the loading time. */
            int id = 0;
            snprintf(p, sizeof p, "model.vocab[%s]",
                     quote(q, sizeof q, it->string, strlen(it->string)));
            if (jint_value(l, it, p, 0, MAX_ID, &id) != 0) return -1;
        }
        if ((int)v > max_id) max_id = (int)v;
    }
    hf->n_vocab = n;
    hf->n_model_ids = max_id + 1;
    size_t m = (size_t)hf->n_model_ids;
    hf->voff = malloc((m ? m : 1) * sizeof *hf->voff);
    hf->vlen = malloc((m ? m : 1) * sizeof *hf->vlen);
    if (!hf->voff || !hf->vlen || strtab_init(&hf->vocab, (size_t)n) != 0) return oom(l);
    for (size_t i = 0; i < m; i++) hf->vlen[i] = -1;
    for (const cJSON *it = vocab->child; it; it = it->next) {
        int id = (int)it->valuedouble;
        size_t len = strlen(it->string);
        if (hf->vlen[id] >= 0) {
            char q2[120];
            return lfail(l, "model.vocab", "%s and %s both have id %d",
                         quote(q, sizeof q, arena_str(hf, hf->voff[id]), (size_t)hf->vlen[id]),
                         quote(q2, sizeof q2, it->string, len), id);
        }
        size_t slot = strtab_slot(&hf->vocab, hf->arena.p, hf->voff, hf->vlen, it->string, len);
        if (hf->vocab.slots[slot] >= 0) {
            return lfail(l, "model.vocab", "the token %s appears twice",
                         quote(q, sizeof q, it->string, len));
        }
        if (arena_add(l, it->string, len, &hf->voff[id]) != 0) return -1;
        hf->vlen[id] = (int)len;
        hf->vocab.slots[slot] = id;
    }
    return 0;
}

/* Reads merge i into its two parts: "a b" (exactly one space, as the reference splits it) or
 * ["a", "b"]. */
static int merge_parts(Load *l, const cJSON *item, int i, const char **a, size_t *alen,
                       const char **b, size_t *blen) {
    char p[80];
    if (cJSON_IsString(item)) {
        const char *s = item->valuestring, *space = strchr(s, ' ');
        if (!space || strchr(space + 1, ' ')) {
            snprintf(p, sizeof p, "model.merges[%d]", i);
            return lfail(l, p, "expected \"a b\" with exactly one space");
        }
        *a = s;
        *alen = (size_t)(space - s);
        *b = space + 1;
        *blen = strlen(*b);
        return 0;
    }
    if (cJSON_IsArray(item) && cJSON_GetArraySize(item) == 2 && cJSON_IsString(item->child) &&
        cJSON_IsString(item->child->next)) {
        *a = item->child->valuestring;
        *alen = strlen(*a);
        *b = item->child->next->valuestring;
        *blen = strlen(*b);
        return 0;
    }
    snprintf(p, sizeof p, "model.merges[%d]", i);
    return lfail(l, p, "expected a string \"a b\" or a pair [\"a\", \"b\"], found %s", jkind(item));
}

/* SentencePiece's space, U+2581. */
static const char SPACE_MARK[] = "\xE2\x96\x81";

static int load_merges(Load *l, const cJSON *merges) {
    HfTokenizer *hf = l->hf;
    PairTable *t = &hf->merges;
    int n = cJSON_GetArraySize(merges);
    size_t cap = 16;
    int bits = 4;
    while (cap < 2 * (size_t)n) {
        cap *= 2;
        bits++;
    }
    t->keys = malloc(cap * sizeof *t->keys);
    t->rank = malloc(cap * sizeof *t->rank);
    t->merged = malloc(cap * sizeof *t->merged);
    if (!t->keys || !t->rank || !t->merged) return oom(l);
    for (size_t i = 0; i < cap; i++) t->keys[i] = UINT64_MAX;
    t->mask = cap - 1;
    t->shift = 64 - bits;
    Buf concat = {0};
    int rank = 0, rc = -1;
    for (const cJSON *item = merges->child; item; item = item->next, rank++) {
        const char *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        char p[80], q[120];
        if (merge_parts(l, item, rank, &a, &alen, &b, &blen) != 0) goto done;
        int ida = vocab_find(hf, a, alen), idb = vocab_find(hf, b, blen);
        if (ida < 0 || idb < 0) {
            snprintf(p, sizeof p, "model.merges[%d]", rank);
            lfail(l, p, "%s is not in model.vocab",
                  ida < 0 ? quote(q, sizeof q, a, alen) : quote(q, sizeof q, b, blen));
            goto done;
        }
        concat.len = 0;
        if (buf_put(&concat, a, alen) != 0 || buf_put(&concat, b, blen) != 0) {
            oom(l);
            goto done;
        }
        int merged = vocab_find(hf, buf_data(&concat), concat.len);
        if (merged < 0) {
            snprintf(p, sizeof p, "model.merges[%d]", rank);
            lfail(l, p, "the merged token %s is not in model.vocab",
                  quote(q, sizeof q, buf_data(&concat), concat.len));
            goto done;
        }
        if (alen > 0 && blen >= 3 && !memcmp(b, SPACE_MARK, 3) &&
            (alen < 3 || memcmp(a + alen - 3, SPACE_MARK, 3) != 0)) {
            hf->merge_into_space = 1;
        }
        /* A repeated pair takes the later rank, as the reference's map does. */
        uint64_t key = (uint64_t)(uint32_t)ida << 32 | (uint32_t)idb;
        size_t h = pair_slot(t, key);
        while (t->keys[h] != UINT64_MAX && t->keys[h] != key) h = (h + 1) & t->mask;
        t->keys[h] = key;
        t->rank[h] = rank;
        t->merged[h] = merged;
    }
    rc = 0;
done:
    buf_free(&concat);
    return rc;
}

static int load_model(Load *l, const cJSON *model) {
    HfTokenizer *hf = l->hf;
    if (!model) return lfail(l, "model", "missing");
    if (jobject(l, model, "model") != 0) return -1;
    const char *type, *s;
    if (jstr(l, model, "model", "type", 0, &type) != 0) return -1;
    /* GPT-2's file has no "type"; the reference then recognises BPE by its fields. */
    if (type && strcmp(type, "BPE") != 0) {
        return lfail(l, "model.type", "unsupported model type '%s'", type);
    }
    const cJSON *dropout = jget(model, "dropout");
    if (dropout && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0.0)) {
        return lfail(l, "model.dropout", "unsupported: BPE dropout makes encoding random");
    }
    static const char *const AFFIXES[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        if (jstr(l, model, "model", AFFIXES[i], 0, &s) != 0) return -1;
        if (s && *s) {
            char p[80];
            return lfail(l, sub(p, sizeof p, "model", AFFIXES[i]), "unsupported BPE option '%s'",
                         s);
        }
    }
    const cJSON *vocab = jget(model, "vocab"), *merges;
    if (!vocab) return lfail(l, "model.vocab", "missing");
    if (jobject(l, vocab, "model.vocab") != 0) return -1;
    if (jarray(l, model, "model", "merges", &merges) != 0) return -1;
    if (jbool(l, model, "model", "fuse_unk", 0, &hf->fuse_unk) != 0 ||
        jbool(l, model, "model", "byte_fallback", 0, &hf->byte_fallback) != 0 ||
        jbool(l, model, "model", "ignore_merges", 0, &hf->ignore_merges) != 0) {
        return -1;
    }
    if (load_vocab(l, vocab) != 0 || load_merges(l, merges) != 0) return -1;
    hf->unk_id = -1;
    if (jstr(l, model, "model", "unk_token", 0, &s) != 0) return -1;
    if (s) {
        hf->unk_id = vocab_find(hf, s, strlen(s));
        char q[120];
        if (hf->unk_id < 0) {
            return lfail(l, "model.unk_token", "%s is not in model.vocab",
                         quote(q, sizeof q, s, strlen(s)));
        }
    }
    for (int cp = 0; cp < SMALL_CP; cp++) {
        char tmp[4];
        size_t n = utf8_encode((uint32_t)cp, tmp);
        hf->small_id[cp] = vocab_find(hf, tmp, n);
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        hf->byte_id[b] = vocab_find(hf, name, 6);
    }
    return 0;
}

/* ---- loading: added tokens ----------------------------------------------------------------- */

static int trie_add(Trie *tr, const char *s, size_t n, int token) {
    if (n == 0) return 0;
    if (tr->n == 0) {
        tr->cap = 64;
        tr->nodes = malloc((size_t)tr->cap * sizeof *tr->nodes);
        if (!tr->nodes) return -1;
        tr->nodes[0] = (TrieNode){-1, -1, -1, 0};
        tr->n = 1;
    }
    int node = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ch = tr->nodes[node].child;
        while (ch >= 0 && tr->nodes[ch].byte != c) ch = tr->nodes[ch].sibling;
        if (ch < 0) {
            if (tr->n == tr->cap) {
                if (tr->cap > INT_MAX / 2) return -1;
                TrieNode *p = realloc(tr->nodes, (size_t)tr->cap * 2 * sizeof *p);
                if (!p) return -1;
                tr->nodes = p;
                tr->cap *= 2;
            }
            ch = tr->n++;
            tr->nodes[ch] = (TrieNode){-1, tr->nodes[node].child, -1, c};
            tr->nodes[node].child = ch;
        }
        node = ch;
    }
    /* Of two equal patterns the first one added wins, as in the reference's automaton. */
    if (tr->nodes[node].token < 0) tr->nodes[node].token = token;
    tr->first[(unsigned char)s[0]] = 1;
    tr->n_patterns++;
    return 0;
}

/* Finds the leftmost pattern occurrence in s[from..len), the longest one there. */
static int trie_find(const Trie *tr, const char *s, size_t len, size_t from, size_t *ms, size_t *me,
                     int *token) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = from; i < len; i++) {
        if (!tr->first[u[i]]) continue;
        int node = 0, best = -1;
        size_t best_end = 0;
        for (size_t j = i; j < len; j++) {
            int ch = tr->nodes[node].child;
            while (ch >= 0 && tr->nodes[ch].byte != u[j]) ch = tr->nodes[ch].sibling;
            if (ch < 0) break;
            node = ch;
            if (tr->nodes[node].token >= 0) {
                best = tr->nodes[node].token;
                best_end = j + 1;
            }
        }
        if (best >= 0) {
            *ms = i;
            *me = best_end;
            *token = best;
            return 1;
        }
    }
    return 0;
}

static int normalize(const HfTokenizer *hf, pcre2_match_data *md, RangeVec *tmp, const char *s,
                     size_t len, Buf nb[2], const char **out, size_t *out_len, CkError *err);

/* The reference decides single_word with Rust regex's \w, which is narrower than PCRE2's
 * (no other numbers such as '½' or '²'). */
static const char RUST_WORD_CLASS[] = "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]";

static int load_added_tokens(Load *l, const cJSON *arr) {
    HfTokenizer *hf = l->hf;
    int n = cJSON_GetArraySize(arr);
    Buf nb[2] = {{0}, {0}};
    hf->added = calloc((size_t)(n > 0 ? n : 1), sizeof *hf->added);
    uint32_t *offs = hf->added_off = malloc((size_t)(n > 0 ? n : 1) * sizeof *offs);
    int *lens = hf->added_len = malloc((size_t)(n > 0 ? n : 1) * sizeof *lens);
    int rc = -1;
    if (!hf->added || !offs || !lens || strtab_init(&hf->added_table, (size_t)n) != 0) {
        oom(l);
        goto done;
    }
    /* The reference gives an added token the model's id when the model has the token,
     * otherwise the next id after the model vocabulary and the added tokens so far; the
     * file's ids must agree, or ids would differ from the reference's. */
    int max_added = -1, i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        char p[80], q[120];
        snprintf(p, sizeof p, "added_tokens[%d]", i);
        AddedToken *a = &hf->added[hf->n_added];
        const char *content;
        int id, flag;
        if (jobject(l, it, p) != 0 || jstr(l, it, p, "content", 1, &content) != 0) goto done;
        if (!cJSON_GetObjectItemCaseSensitive(it, "id")) {
            lfail(l, p, "no \"id\"");
            goto done;
        }
        if (jint(l, it, p, "id", 0, MAX_ID, -1, &id) != 0) goto done;
        if (!*content) {
            lfail(l, p, "the content is empty");
            goto done;
        }
        if (jbool(l, it, p, "special", 0, &flag) != 0) goto done;
        a->special = (unsigned char)flag;
        if (jbool(l, it, p, "single_word", 0, &flag) != 0) goto done;
        a->single_word = (unsigned char)flag;
        if (jbool(l, it, p, "lstrip", 0, &flag) != 0) goto done;
        a->lstrip = (unsigned char)flag;
        if (jbool(l, it, p, "rstrip", 0, &flag) != 0) goto done;
        a->rstrip = (unsigned char)flag;
        if (jbool(l, it, p, "normalized", 1, &flag) != 0) goto done;
        a->normalized = (unsigned char)flag;
        size_t len = strlen(content);
        size_t slot = strtab_slot(&hf->added_table, hf->arena.p, offs, lens, content, len);
        int expect;
        if (hf->added_table.slots[slot] >= 0) {
            expect = hf->added[hf->added_table.slots[slot]].id;
        } else if ((expect = vocab_find(hf, content, len)) < 0) {
            expect = max_added < 0                                    ? hf->n_vocab
                     : (max_added >= hf->n_vocab || hf->n_vocab == 0) ? max_added + 1
                                                                      : hf->n_vocab;
        }
        if (id != expect) {
            lfail(l, p,
                  "%s has id %d, but the tokenizers library gives it id %d (the model's id of "
                  "the token, else the next id after the vocabulary and the earlier added "
                  "tokens)",
                  quote(q, sizeof q, content, len), id, expect);
            goto done;
        }
        if (id < hf->n_model_ids && hf->vlen[id] >= 0 &&
            ((size_t)hf->vlen[id] != len || memcmp(arena_str(hf, hf->voff[id]), content, len))) {
            lfail(l, p, "id %d is the model's token %s", id,
                  quote(q, sizeof q, arena_str(hf, hf->voff[id]), (size_t)hf->vlen[id]));
            goto done;
        }
        if (id > max_added) max_added = id;
        if (hf->added_table.slots[slot] >= 0) continue; /* listed twice: the first one counts */
        if (arena_add(l, content, len, &a->off) != 0) goto done;
        a->len = (int)len;
        a->id = id;
        offs[hf->n_added] = a->off;
        lens[hf->n_added] = a->len;
        hf->added_table.slots[slot] = hf->n_added++;
    }
    /* Patterns: special tokens before the others (the reference's order, which decides only
     * between equal patterns); normalized ones are matched in normalized text, so their
     * pattern is the normalized content. */
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < hf->n_added; k++) {
            AddedToken *a = &hf->added[k];
            if (a->special != (pass == 0)) continue;
            const char *pat = arena_str(hf, a->off);
            size_t plen = (size_t)a->len;
            if (a->normalized &&
                normalize(hf, l->md, &l->tmp, pat, plen, nb, &pat, &plen, l->err) != 0) {
                goto done;
            }
            if (trie_add(a->normalized ? &hf->norm_trie : &hf->raw_trie, pat, plen, k) != 0) {
                oom(l);
                goto done;
            }
            if (a->single_word && !hf->word_re.code) {
                char msg[260];
                if (regex_compile(&hf->word_re, RUST_WORD_CLASS, 0, msg, sizeof msg) != 0) {
                    lfail(l, "added_tokens", "cannot compile the word class: %s", msg);
                    goto done;
                }
            }
        }
    }
    rc = 0;
done:
    buf_free(&nb[0]);
    buf_free(&nb[1]);
    return rc;
}

/* ---- loading: tokenizer_config.json -------------------------------------------------------- */

/* The index of the added token whose content is s[0..len), or -1. */
static int added_find(const HfTokenizer *hf, const char *s, size_t len) {
    return hf->added_table
        .slots[strtab_slot(&hf->added_table, hf->arena.p, hf->added_off, hf->added_len, s, len)];
}

/* The id of a token named by its content: an added token first, else the model's; -1. */
static int token_id_by_content(const HfTokenizer *hf, const char *s) {
    size_t len = strlen(s);
    int k = added_find(hf, s, len);
    return k >= 0 ? hf->added[k].id : vocab_find(hf, s, len);
}

/* bos_token / eos_token: a string, or an object with "content" (an AddedToken); NULL when
 * absent. */
static int config_token(Load *l, const cJSON *cfg, const char *key, const char **name) {
    const cJSON *j = jget(cfg, key);
    *name = NULL;
    if (!j) return 0;
    if (cJSON_IsString(j)) {
        *name = j->valuestring;
        return 0;
    }
    if (cJSON_IsObject(j)) return jstr(l, j, key, "content", 1, name);
    return lfail(l, key, "expected a string or an object with \"content\", found %s", jkind(j));
}

static int load_config(Load *l, Tokenizer *t, const char *text) {
    HfTokenizer *hf = l->hf;
    cJSON *cfg = parse_json(l, text, strlen(text));
    if (!cfg) return -1;
    int rc = -1, add_bos = -1, add_eos = -1;
    const char *bos_name, *eos_name;
    if (jbool(l, cfg, "", "add_bos_token", -1, &add_bos) != 0 ||
        jbool(l, cfg, "", "add_eos_token", -1, &add_eos) != 0 ||
        config_token(l, cfg, "bos_token", &bos_name) != 0 ||
        config_token(l, cfg, "eos_token", &eos_name) != 0) {
        goto done;
    }
    int bos = bos_name ? token_id_by_content(hf, bos_name) : -1;
    int eos = eos_name ? token_id_by_content(hf, eos_name) : -1;
    if (bos >= 0) t->bos_id = bos;
    if (eos >= 0) t->eos_id = eos;
    char q[120];
    if (add_bos >= 0) {
        hf->prefix.len = 0;
        if (add_bos) {
            /* A bos_token that names no token is an error here, not a fallback to the
             * template's BOS: the config would be asking for a token that does not exist. */
            if (t->bos_id < 0 || (bos_name && bos < 0)) {
                lfail(l, "add_bos_token",
                      bos_name ? "true, but bos_token %s is not a token"
                               : "true, but there is "
                                 "no bos_token%s",
                      bos_name ? quote(q, sizeof q, bos_name, strlen(bos_name)) : "");
                goto done;
            }
            if (iv_push(&hf->prefix, t->bos_id) != 0) {
                oom(l);
                goto done;
            }
        }
    }
    if (add_eos >= 0) {
        hf->suffix.len = 0;
        if (add_eos) {
            if (t->eos_id < 0 || (eos_name && eos < 0)) {
                lfail(l, "add_eos_token",
                      eos_name ? "true, but eos_token %s is not a token"
                               : "true, but there is "
                                 "no eos_token%s",
                      eos_name ? quote(q, sizeof q, eos_name, strlen(eos_name)) : "");
                goto done;
            }
            if (iv_push(&hf->suffix, t->eos_id) != 0) {
                oom(l);
                goto done;
            }
        }
    }
    rc = 0;
done:
    cJSON_Delete(cfg);
    return rc;
}

/* ---- loading: per-id tables ---------------------------------------------------------------- */

static int is_byte_token(const char *s, size_t n, int *byte);

/* The streaming piece of each id: the token with the per-token decoder steps applied
 * (Replace, Metaspace's replacement, ByteFallback's <0xNN> -> byte), or for byte-level
 * decoders the token's raw bytes. */
static int build_pieces(Load *l, Tokenizer *t) {
    HfTokenizer *hf = l->hf;
    size_t n = (size_t)hf->n_ids;
    hf->poff = malloc(n * sizeof *hf->poff);
    hf->plen = malloc(n * sizeof *hf->plen);
    hf->pbyte = malloc(n * sizeof *hf->pbyte);
    if (!hf->poff || !hf->plen || !hf->pbyte) return oom(l);
    int byte_level = 0;
    for (int k = 0; k < hf->dec.n; k++) {
        const Step *s = &hf->dec.p[k];
        if (s->kind == STEP_BYTE_LEVEL) byte_level = 1;
        if ((s->kind == STEP_STRIP && s->start > 0 && !strcmp(s->rep, " ")) ||
            (s->kind == STEP_METASPACE && s->scheme != PREPEND_NEVER)) {
            hf->strip_first = 1;
        }
    }
    Buf cur = {0}, next = {0};
    int longest = 0, rc = -1;
    for (size_t id = 0; id < n; id++) {
        hf->plen[id] = -1;
        hf->pbyte[id] = -1;
        if (hf->dlen[id] < 0) continue;
        const char *tok = arena_str(hf, hf->doff[id]);
        size_t len = (size_t)hf->dlen[id];
        cur.len = 0;
        if (buf_put(&cur, tok, len) != 0) goto out_of_memory;
        if (byte_level) {
            /* decode_steps with only the token gives its bytes (lossy at the end, which a
             * piece must not be), so map the characters here. */
            next.len = 0;
            int all = 1;
            for (size_t i = 0; i < len;) {
                size_t cl = utf8_char_len((unsigned char)tok[i]);
                uint32_t cp = utf8_decode((const unsigned char *)tok + i, cl);
                if (cp >= BYTE_LEVEL_CP_END || hf->bl_dec[cp] < 0) {
                    all = 0;
                    break;
                }
                char b = (char)hf->bl_dec[cp];
                if (buf_put(&next, &b, 1) != 0) goto out_of_memory;
                i += cl;
            }
            if (all) {
                Buf tmp = cur;
                cur = next;
                next = tmp;
            }
        } else {
            for (int k = 0; k < hf->dec.n; k++) {
                const Step *s = &hf->dec.p[k];
                if (s->kind == STEP_REPLACE || s->kind == STEP_METASPACE) {
                    const char *one = buf_data(&cur);
                    size_t one_len = cur.len;
                    next.len = 0;
                    if (s->kind == STEP_REPLACE) {
                        if (replace_all(&s->re, l->md, &l->tmp, one, one_len, s->text, s->text_len,
                                        &next, l->err) != 0)
                            goto done;
                    } else {
                        for (size_t i = 0; i < one_len;) {
                            size_t cl = utf8_char_len((unsigned char)one[i]);
                            int hit = cl == s->rep_len && !memcmp(one + i, s->rep, cl);
                            if (buf_put(&next, hit ? " " : one + i, hit ? 1 : cl) != 0)
                                goto out_of_memory;
                            i += cl;
                        }
                    }
                    Buf tmp = cur;
                    cur = next;
                    next = tmp;
                } else if (s->kind == STEP_BYTE_FALLBACK) {
                    int byte;
                    if (is_byte_token(buf_data(&cur), cur.len, &byte)) {
                        hf->pbyte[id] = (short)byte;
                        break;
                    }
                }
            }
        }
        if (cur.len > (size_t)INT_MAX / 2) goto out_of_memory;
        if (arena_add(l, buf_data(&cur), cur.len, &hf->poff[id]) != 0) goto done;
        hf->plen[id] = (int)cur.len;
        if (hf->pbyte[id] >= 0) hf->plen[id] = 1;
        if (hf->plen[id] > longest) longest = hf->plen[id];
    }
    t->max_piece_len = longest;
    rc = 0;
    goto done;
out_of_memory:
    oom(l);
done:
    buf_free(&cur);
    buf_free(&next);
    return rc;
}

static int build_id_tables(Load *l, Tokenizer *t) {
    HfTokenizer *hf = l->hf;
    int n = hf->n_model_ids;
    for (int k = 0; k < hf->n_added; k++) {
        if (hf->added[k].id >= n) n = hf->added[k].id + 1;
    }
    if (n == 0) return lfail(l, "model.vocab", "no tokens");
    hf->n_ids = n;
    hf->doff = malloc((size_t)n * sizeof *hf->doff);
    hf->dlen = malloc((size_t)n * sizeof *hf->dlen);
    hf->special = calloc((size_t)n, 1);
    if (!hf->doff || !hf->dlen || !hf->special) return oom(l);
    for (int id = 0; id < n; id++) {
        int model = id < hf->n_model_ids && hf->vlen[id] >= 0;
        hf->doff[id] = model ? hf->voff[id] : 0;
        hf->dlen[id] = model ? hf->vlen[id] : -1;
    }
    Buf nb[2] = {{0}, {0}};
    for (int k = 0; k < hf->n_added; k++) {
        const AddedToken *a = &hf->added[k];
        hf->doff[a->id] = a->off;
        hf->dlen[a->id] = a->len;
        if (!a->normalized || hf->norm.n == 0) continue;
        /* The reference decodes a normalized added token as its normalized content, which
         * the decoder then undoes (TinyLlama: "</s>" -> "▁</s>" -> " </s>"). */
        const char *norm;
        size_t norm_len;
        int rc = normalize(hf, l->md, &l->tmp, arena_str(hf, a->off), (size_t)a->len, nb, &norm,
                           &norm_len, l->err);
        uint32_t off = 0;
        if (rc == 0) rc = norm_len > (size_t)INT_MAX / 2 ? oom(l) : 0;
        if (rc == 0) rc = arena_add(l, norm, norm_len, &off);
        if (rc != 0) {
            buf_free(&nb[0]);
            buf_free(&nb[1]);
            return -1;
        }
        hf->doff[a->id] = off;
        hf->dlen[a->id] = (int)norm_len;
    }
    buf_free(&nb[0]);
    buf_free(&nb[1]);
    /* skip_special_tokens drops a token when its string is the content of a special added
     * token: the reference tests the string, so a normalized special token ("▁</s>") stays. */
    for (int id = 0; id < n; id++) {
        if (hf->dlen[id] < 0) continue;
        int k = added_find(hf, arena_str(hf, hf->doff[id]), (size_t)hf->dlen[id]);
        hf->special[id] = k >= 0 && hf->added[k].special;
    }
    /* The post-processor's ids must be tokens, or decode and the model would meet ids that
     * do not exist. */
    const IntVec *sides[2] = {&hf->prefix, &hf->suffix};
    for (int s = 0; s < 2; s++) {
        for (size_t k = 0; k < sides[s]->len; k++) {
            int id = sides[s]->p[k];
            if (id >= n || hf->dlen[id] < 0) {
                return lfail(l, "post_processor", "id %d is not a token of the vocabulary", id);
            }
        }
    }
    t->vocab_size = n;
    t->bos_id = hf->prefix.len > 0 ? hf->prefix.p[0] : -1;
    t->eos_id = hf->suffix.len > 0 ? hf->suffix.p[0] : -1;
    return 0;
}

int hf_load(Tokenizer *t, const char *json_text, size_t json_len, const char *config_text,
            const char *source, CkError *err) {
    memset(t, 0, sizeof *t);
    Load l = {.source = source ? source : "tokenizer.json", .err = err};
    if (!json_text) return ck_fail(err, "%s: no data", l.source);
    cJSON *root = parse_json(&l, json_text, json_len);
    if (!root) return -1;
    l.hf = calloc(1, sizeof *l.hf);
    l.md = pcre2_match_data_create(1, NULL);
    int rc = -1;
    if (!l.hf || !l.md) {
        oom(&l);
        goto done;
    }
    HfTokenizer *hf = l.hf;
    init_byte_level(hf);
    const cJSON *j;
    if (load_model(&l, jget(root, "model")) != 0) goto done;
    /* The normalizer comes first: normalized added tokens are matched by normalized text. */
    if ((j = jget(root, "normalizer")) && load_normalizer(&l, j, "normalizer") != 0) goto done;
    if ((j = jget(root, "added_tokens"))) {
        if (!cJSON_IsArray(j)) {
            lfail(&l, "added_tokens", "expected an array, found %s", jkind(j));
            goto done;
        }
        if (load_added_tokens(&l, j) != 0) goto done;
    } else if (strtab_init(&hf->added_table, 0) != 0) {
        oom(&l);
        goto done;
    }
    if ((j = jget(root, "pre_tokenizer")) && load_pre_tokenizer(&l, j, "pre_tokenizer") != 0)
        goto done;
    /* Without a pre-tokenizer (Llama 2) a whole text is one word. When no merge joins a token
     * that does not end in "▁" to one that starts with "▁", no merge crosses the point before
     * such a "▁", so merging the stretches between those points one by one gives the same
     * tokens as merging the whole word (each stretch sees the same merges in the same order),
     * with small heaps that stay in cache. "▁" must be a token, or fused <unk>s could span
     * the point. */
    hf->split_at_space =
        hf->pre.n == 0 && !hf->merge_into_space && vocab_find(hf, SPACE_MARK, 3) >= 0;
    if ((j = jget(root, "post_processor")) && load_post_processor(&l, j, "post_processor") != 0)
        goto done;
    if ((j = jget(root, "decoder"))) {
        hf->has_decoder = 1;
        if (load_decoder(&l, j, "decoder") != 0) goto done;
    }
    if (jget(root, "truncation")) {
        lfail(&l, "truncation", "unsupported: truncation must be null");
        goto done;
    }
    if ((j = jget(root, "padding"))) {
        /* Padding to the longest of a batch changes nothing for one text. */
        const cJSON *strategy = jget(j, "strategy");
        if (!cJSON_IsString(strategy) || strcmp(strategy->valuestring, "BatchLongest") != 0) {
            lfail(&l, "padding", "unsupported: padding must be null or BatchLongest");
            goto done;
        }
    }
    if (build_id_tables(&l, t) != 0) goto done;
    if (config_text) {
        /* Messages about the config name the config file beside the tokenizer.json. */
        char config_source[600];
        const char *slash = strrchr(l.source, '/');
        snprintf(config_source, sizeof config_source, "%.*stokenizer_config.json",
                 slash ? (int)(slash - l.source + 1) : 0, l.source);
        const char *saved = l.source;
        l.source = config_source;
        int crc = load_config(&l, t, config_text);
        l.source = saved;
        if (crc != 0) goto done;
    }
    if (build_pieces(&l, t) != 0) goto done;
    t->kind = TOKENIZER_HF_BPE;
    t->hf = hf;
    l.hf = NULL;
    rc = 0;
done:
    cJSON_Delete(root);
    pcre2_match_data_free(l.md);
    free(l.tmp.p);
    hf_free(l.hf);
    if (rc != 0) memset(t, 0, sizeof *t);
    return rc;
}

/* ---- encoding ------------------------------------------------------------------------------ */

typedef struct {
    int id, prev, next;
    int len; /* bytes; 0 once merged into its left neighbour */
} Symbol;

typedef struct {
    uint64_t key; /* rank << 32 | position of the left symbol: the smallest merges first */
    int merged;
} MergeEntry;

typedef struct {
    const HfTokenizer *hf;
    CkError *err;
    pcre2_match_data *md;
    IntVec out;
    Buf norm[2];
    RangeVec top, sub, tmp;
    Buf *pbuf;    /* [2 * n_pre] per pre-tokenizer step: its text buffers */
    RangeVec *pr; /* [2 * n_pre] per pre-tokenizer step: matches and pieces */
    Symbol *sym;
    MergeEntry *heap;
    size_t sym_cap, heap_len, heap_cap;
} Encoder;

static void heap_sift_down(MergeEntry *h, size_t n, size_t i) {
    MergeEntry x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1].key < h[c].key) c++;
        if (h[c].key >= x.key) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void heap_push(Encoder *e, uint64_t key, int merged) {
    size_t i = e->heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (e->heap[parent].key <= key) break;
        e->heap[i] = e->heap[parent];
        i = parent;
    }
    e->heap[i] = (MergeEntry){key, merged};
}

static void queue_pair(Encoder *e, int left) {
    const Symbol *s = e->sym;
    int right = s[left].next, rank, merged;
    if (right < 0 || !pair_find(&e->hf->merges, s[left].id, s[right].id, &rank, &merged)) return;
    /* At most n - 1 pairs at the start and two per merge: 3n always fits. */
    if (e->heap_len < e->heap_cap) heap_push(e, (uint64_t)rank << 32 | (uint32_t)left, merged);
}

static void add_symbol(Symbol *sym, int *n, int id, int len) {
    sym[*n] = (Symbol){id, *n - 1, -1, len};
    if (*n > 0) sym[*n - 1].next = *n;
    (*n)++;
}

/* Encodes one word (a pre-token) with the BPE model and appends its ids. */
static int bpe_word(Encoder *e, const char *s, size_t len) {
    const HfTokenizer *hf = e->hf;
    if (hf->ignore_merges) {
        int id = vocab_find(hf, s, len);
        if (id >= 0) return iv_push(&e->out, id) == 0 ? 0 : ck_fail(e->err, "out of memory");
    }
    if (len > e->sym_cap) {
        size_t cap = len < 64 ? 64 : len;
        free(e->sym);
        free(e->heap);
        e->sym = malloc(cap * sizeof *e->sym);
        e->heap = malloc(3 * cap * sizeof *e->heap);
        e->sym_cap = e->sym ? cap : 0;
        e->heap_cap = 3 * e->sym_cap;
        if (!e->sym || !e->heap) return ck_fail(e->err, "out of memory");
    }
    Symbol *sym = e->sym;
    int n = 0, unk_len = 0, unk_pending = 0;
    for (size_t i = 0; i < len;) {
        size_t cl = utf8_char_len((unsigned char)s[i]);
        if (cl > len - i) cl = len - i;
        int id = char_id(hf, s + i, cl);
        if (id >= 0) {
            if (unk_pending) add_symbol(sym, &n, hf->unk_id, unk_len);
            unk_pending = 0;
            add_symbol(sym, &n, id, (int)cl);
        } else {
            int bytes_known = hf->byte_fallback;
            for (size_t k = 0; k < cl && bytes_known; k++) {
                bytes_known = hf->byte_id[(unsigned char)s[i + k]] >= 0;
            }
            if (bytes_known) {
                /* As in the reference, a pending <unk> is not flushed before byte tokens. */
                for (size_t k = 0; k < cl; k++) {
                    add_symbol(sym, &n, hf->byte_id[(unsigned char)s[i + k]], 1);
                }
            } else if (hf->unk_id >= 0) {
                if (unk_pending && hf->fuse_unk) {
                    unk_len += (int)cl;
                } else {
                    if (unk_pending) add_symbol(sym, &n, hf->unk_id, unk_len);
                    unk_pending = 1;
                    unk_len = (int)cl;
                }
            }
            /* Without an unk_token an unknown character is dropped, as in the reference. */
        }
        i += cl;
    }
    if (unk_pending) add_symbol(sym, &n, hf->unk_id, unk_len);
    if (n == 0) return 0;

    e->heap_len = 0;
    for (int i = 0; i + 1 < n; i++) {
        int rank, merged;
        if (pair_find(&hf->merges, sym[i].id, sym[i + 1].id, &rank, &merged)) {
            e->heap[e->heap_len++] = (MergeEntry){(uint64_t)rank << 32 | (uint32_t)i, merged};
        }
    }
    for (size_t i = e->heap_len / 2; i-- > 0;) heap_sift_down(e->heap, e->heap_len, i);
    while (e->heap_len > 0) {
        MergeEntry top = e->heap[0];
        e->heap[0] = e->heap[--e->heap_len];
        heap_sift_down(e->heap, e->heap_len, 0);
        int pos = (int)(uint32_t)top.key;
        if (sym[pos].len == 0) continue;
        int right = sym[pos].next, rank, merged;
        if (right < 0) continue;
        /* The reference's staleness test: the pair here now must still merge into the same
         * token (its rank is not compared). */
        if (!pair_find(&hf->merges, sym[pos].id, sym[right].id, &rank, &merged) ||
            merged != top.merged) {
            continue;
        }
        sym[pos].id = merged;
        sym[pos].len += sym[right].len;
        sym[pos].next = sym[right].next;
        sym[right].len = 0;
        if (sym[pos].next >= 0) sym[sym[pos].next].prev = pos;
        if (sym[pos].prev >= 0) queue_pair(e, sym[pos].prev);
        queue_pair(e, pos);
    }
    /* Symbol 0 is never absorbed (only right neighbours are). */
    for (int i = 0; i >= 0; i = sym[i].next) {
        if (iv_push(&e->out, sym[i].id) != 0) return ck_fail(e->err, "out of memory");
    }
    return 0;
}

/* Turns the matches in `in` (flag = is a match) into pieces (flag = remove) by behavior, as
 * the reference's NormalizedString::split does. */
static int split_pieces(const RangeVec *in, SplitBehavior behavior, int invert, RangeVec *out) {
    out->len = 0;
    int prev_match = 0;
    if (behavior == SPLIT_MERGED_WITH_NEXT) {
        for (size_t k = in->len; k-- > 0;) {
            const Range *r = &in->p[k];
            int m = r->flag != invert;
            if (m && !prev_match && out->len > 0) {
                out->p[out->len - 1].start = r->start;
            } else if (rv_push(out, r->start, r->end, 0) != 0) {
                return -1;
            }
            prev_match = m;
        }
        for (size_t a = 0, b = out->len; a + 1 < b; a++, b--) {
            Range tmp = out->p[a];
            out->p[a] = out->p[b - 1];
            out->p[b - 1] = tmp;
        }
        return 0;
    }
    for (size_t k = 0; k < in->len; k++) {
        const Range *r = &in->p[k];
        int m = r->flag != invert;
        int extend = 0;
        if (behavior == SPLIT_MERGED_WITH_PREVIOUS) extend = m && !prev_match && out->len > 0;
        if (behavior == SPLIT_CONTIGUOUS) extend = m == prev_match && out->len > 0;
        if (extend) {
            out->p[out->len - 1].end = r->end;
        } else if (rv_push(out, r->start, r->end, behavior == SPLIT_REMOVED && m) != 0) {
            return -1;
        }
        prev_match = m;
    }
    return 0;
}

/* Runs pre-tokenizer steps k.. on the piece s[0..len) and encodes the words that come out.
 * at_start: the piece begins at the start of the text (Metaspace's "first" scheme). */
static int pre_tokenize(Encoder *e, int k, const char *s, size_t len, int at_start) {
    const HfTokenizer *hf = e->hf;
    if (len == 0) return 0; /* the reference drops empty splits */
    if (k == hf->pre.n && hf->split_at_space) {
        size_t start = 0;
        for (size_t i = 1; i + 3 <= len; i++) {
            if (!memcmp(s + i, SPACE_MARK, 3) && (i < 3 || memcmp(s + i - 3, SPACE_MARK, 3))) {
                if (bpe_word(e, s + start, i - start) != 0) return -1;
                start = i;
            }
        }
        return bpe_word(e, s + start, len - start);
    }
    if (k == hf->pre.n) return bpe_word(e, s, len);
    const Step *st = &hf->pre.p[k];
    Buf *text = &e->pbuf[2 * k], *mapped = &e->pbuf[2 * k + 1];
    RangeVec *matches = &e->pr[2 * k], *pieces = &e->pr[2 * k + 1];
    switch (st->kind) {
    case STEP_BYTE_LEVEL:
        if (st->add_prefix_space && s[0] != ' ') {
            text->len = 0;
            if (buf_put(text, " ", 1) != 0 || buf_put(text, s, len) != 0) goto out_of_memory;
            s = text->p;
            len = text->len;
        }
        if (st->use_regex) {
            if (find_matches(&st->re, e->md, s, len, matches, e->err) != 0) return -1;
        } else {
            matches->len = 0;
            if (rv_push(matches, 0, len, 0) != 0) goto out_of_memory;
        }
        for (size_t i = 0; i < matches->len; i++) {
            const Range *r = &matches->p[i];
            mapped->len = 0;
            if (buf_reserve(mapped, 2 * (r->end - r->start)) != 0) goto out_of_memory;
            for (size_t b = r->start; b < r->end; b++) {
                unsigned char c = (unsigned char)s[b];
                memcpy(mapped->p + mapped->len, hf->bl_enc[c], hf->bl_enc_len[c]);
                mapped->len += hf->bl_enc_len[c];
            }
            if (pre_tokenize(e, k + 1, buf_data(mapped), mapped->len, at_start && r->start == 0))
                return -1;
        }
        return 0;
    case STEP_SPLIT:
        if (find_matches(&st->re, e->md, s, len, matches, e->err) != 0) return -1;
        if (split_pieces(matches, st->behavior, st->invert, pieces) != 0) goto out_of_memory;
        for (size_t i = 0; i < pieces->len; i++) {
            const Range *r = &pieces->p[i];
            if (r->flag) continue;
            if (pre_tokenize(e, k + 1, s + r->start, r->end - r->start,
                             at_start && r->start == 0) != 0)
                return -1;
        }
        return 0;
    case STEP_METASPACE: {
        text->len = 0;
        int prepend = st->scheme == PREPEND_ALWAYS || (st->scheme == PREPEND_FIRST && at_start);
        /* The check for a leading replacement comes after spaces became replacements. */
        int starts_with_rep =
            (len >= st->rep_len && !memcmp(s, st->rep, st->rep_len)) || (s[0] == ' ');
        if (prepend && !starts_with_rep && buf_put(text, st->rep, st->rep_len) != 0)
            goto out_of_memory;
        for (size_t i = 0; i < len; i++) {
            int rc = s[i] == ' ' ? buf_put(text, st->rep, st->rep_len) : buf_put(text, s + i, 1);
            if (rc != 0) goto out_of_memory;
        }
        const char *t = buf_data(text);
        size_t tlen = text->len;
        if (!st->split) return pre_tokenize(e, k + 1, t, tlen, at_start);
        /* Each replacement character is a match, merged with what follows it. */
        matches->len = 0;
        size_t prev = 0;
        for (size_t i = 0; i < tlen;) {
            if (tlen - i >= st->rep_len && !memcmp(t + i, st->rep, st->rep_len)) {
                if (prev != i && rv_push(matches, prev, i, 0) != 0) goto out_of_memory;
                if (rv_push(matches, i, i + st->rep_len, 1) != 0) goto out_of_memory;
                i += st->rep_len;
                prev = i;
            } else {
                i += utf8_char_len((unsigned char)t[i]);
            }
        }
        if (prev != tlen && rv_push(matches, prev, tlen, 0) != 0) goto out_of_memory;
        if (split_pieces(matches, SPLIT_MERGED_WITH_NEXT, 0, pieces) != 0) goto out_of_memory;
        for (size_t i = 0; i < pieces->len; i++) {
            const Range *r = &pieces->p[i];
            if (pre_tokenize(e, k + 1, t + r->start, r->end - r->start,
                             at_start && r->start == 0) != 0)
                return -1;
        }
        return 0;
    }
    default:
        return ck_fail(e->err, "tokenizer: internal error: pre-tokenizer step %d", (int)st->kind);
    }
out_of_memory:
    return ck_fail(e->err, "out of memory");
}

/* Applies the normalizer to s[0..len); *out points into s or nb. */
static int normalize(const HfTokenizer *hf, pcre2_match_data *md, RangeVec *tmp, const char *s,
                     size_t len, Buf nb[2], const char **out, size_t *out_len, CkError *err) {
    const char *cur = s;
    size_t cur_len = len;
    int which = 0;
    for (int k = 0; k < hf->norm.n; k++) {
        const Step *st = &hf->norm.p[k];
        Buf *dst = &nb[which];
        dst->len = 0;
        if (st->kind == STEP_PREPEND) {
            if (cur_len == 0) continue; /* an empty string stays empty */
            if (buf_put(dst, st->text, st->text_len) != 0 || buf_put(dst, cur, cur_len) != 0)
                return ck_fail(err, "out of memory");
        } else if (replace_all(&st->re, md, tmp, cur, cur_len, st->text, st->text_len, dst, err) !=
                   0) {
            return -1;
        }
        cur = buf_data(dst);
        cur_len = dst->len;
        which ^= 1;
    }
    *out = cur;
    *out_len = cur_len;
    return 0;
}

/* Whether the character at the end of s[0..len) (at_end) or at its start is a word character
 * for Rust regex's \w. */
static int word_char_at(const Encoder *e, const char *s, size_t len, int at_end) {
    if (len == 0) return 0;
    size_t at = 0;
    if (at_end) {
        at = len - 1;
        while (at > 0 && ((unsigned char)s[at] & 0xC0) == 0x80) at--;
    }
    int rc = pcre2_match(e->hf->word_re.code, (PCRE2_SPTR)s, len, at,
                         PCRE2_NO_UTF_CHECK | PCRE2_ANCHORED, e->md, NULL);
    return rc >= 0;
}

/* Cuts the added tokens of trie tr out of s[0..len): ranges with flag = the token's id, or
 * -1 for the text between them. */
static int added_splits(Encoder *e, const Trie *tr, const char *s, size_t len, RangeVec *out) {
    const HfTokenizer *hf = e->hf;
    out->len = 0;
    size_t pos = 0, start_offset = 0;
    while (tr->n_patterns > 0 && pos < len) {
        size_t ms, me;
        int k;
        if (!trie_find(tr, s, len, pos, &ms, &me, &k)) break;
        pos = me; /* the search goes on after the match even when it is discarded */
        const AddedToken *a = &hf->added[k];
        size_t start = ms, stop = me;
        if (a->single_word) {
            int start_space = start == 0 || !word_char_at(e, s, start, 1);
            int stop_space = stop == len || !word_char_at(e, s + stop, len - stop, 0);
            if (!start_space || !stop_space) continue;
        }
        if (a->lstrip) {
            size_t left = start;
            while (left > 0) {
                size_t c = left - 1;
                while (c > 0 && ((unsigned char)s[c] & 0xC0) == 0x80) c--;
                if (!is_white_space(utf8_decode((const unsigned char *)s + c, left - c))) break;
                left = c;
            }
            start = left > start_offset ? left : start_offset;
        }
        if (a->rstrip) {
            while (stop < len) {
                size_t cl = utf8_char_len((unsigned char)s[stop]);
                if (!is_white_space(utf8_decode((const unsigned char *)s + stop, cl))) break;
                stop += cl;
            }
        }
        if (start_offset < start && rv_push(out, start_offset, start, -1) != 0) goto oom;
        if (rv_push(out, start, stop, a->id) != 0) goto oom;
        start_offset = stop;
    }
    if (start_offset < len && rv_push(out, start_offset, len, -1) != 0) goto oom;
    return 0;
oom:
    return ck_fail(e->err, "out of memory");
}

/* Encodes a piece of raw text that holds no raw added token. */
static int encode_piece(Encoder *e, const char *s, size_t len, int at_start) {
    const char *ns;
    size_t nlen;
    if (normalize(e->hf, e->md, &e->tmp, s, len, e->norm, &ns, &nlen, e->err) != 0) return -1;
    if (added_splits(e, &e->hf->norm_trie, ns, nlen, &e->sub) != 0) return -1;
    for (size_t i = 0; i < e->sub.len; i++) {
        const Range *r = &e->sub.p[i];
        if (r->flag >= 0) {
            if (iv_push(&e->out, r->flag) != 0) return ck_fail(e->err, "out of memory");
        } else if (pre_tokenize(e, 0, ns + r->start, r->end - r->start,
                                at_start && r->start == 0) != 0) {
            return -1;
        }
    }
    return 0;
}

static int push_all(Encoder *e, const IntVec *v) {
    for (size_t i = 0; i < v->len; i++) {
        if (iv_push(&e->out, v->p[i]) != 0) return ck_fail(e->err, "out of memory");
    }
    return 0;
}

int hf_encode(const Tokenizer *t, const char *text, int add_special, int add_bos, int add_eos,
              int **ids, int *n_ids, CkError *err) {
    *ids = NULL;
    *n_ids = 0;
    const HfTokenizer *hf = t->hf;
    if (!text) return ck_fail(err, "tokenizer: encode: text is NULL");
    size_t len = strlen(text);
    if (len > MAX_TEXT_BYTES) {
        return ck_fail(err, "tokenizer: encode: the text is %zu bytes, more than the limit of %zu",
                       len, MAX_TEXT_BYTES);
    }
    size_t bad = utf8_first_invalid(text, len);
    if (bad < len) {
        return ck_fail(err, "tokenizer: encode: the text is not valid UTF-8 (byte %zu)", bad);
    }
    Encoder e = {.hf = hf, .err = err};
    int rc = -1;
    size_t n_bufs = 2 * (size_t)hf->pre.n + 1;
    e.md = pcre2_match_data_create(1, NULL);
    e.pbuf = calloc(n_bufs, sizeof *e.pbuf);
    e.pr = calloc(n_bufs, sizeof *e.pr);
    if (!e.md || !e.pbuf || !e.pr) {
        ck_fail(err, "out of memory");
        goto done;
    }
    if (add_bos && t->bos_id >= 0 && iv_push(&e.out, t->bos_id) != 0) goto out_of_memory;
    if (add_special && push_all(&e, &hf->prefix) != 0) goto done;
    if (added_splits(&e, &hf->raw_trie, text, len, &e.top) != 0) goto done;
    for (size_t i = 0; i < e.top.len; i++) {
        const Range *r = &e.top.p[i];
        if (r->flag >= 0) {
            if (iv_push(&e.out, r->flag) != 0) goto out_of_memory;
        } else if (encode_piece(&e, text + r->start, r->end - r->start, r->start == 0) != 0) {
            goto done;
        }
    }
    if (add_special && push_all(&e, &hf->suffix) != 0) goto done;
    if (add_eos && t->eos_id >= 0 && iv_push(&e.out, t->eos_id) != 0) goto out_of_memory;
    if (e.out.len > (size_t)INT_MAX) goto out_of_memory;
    if (e.out.len == 0 && iv_push(&e.out, 0) == 0) e.out.len = 0; /* a pointer to free */
    if (!e.out.p) goto out_of_memory;
    *ids = e.out.p;
    *n_ids = (int)e.out.len;
    e.out.p = NULL;
    rc = 0;
    goto done;
out_of_memory:
    ck_fail(err, "tokenizer: encode: out of memory");
done:
    free(e.out.p);
    pcre2_match_data_free(e.md);
    for (size_t i = 0; e.pbuf && i < n_bufs; i++) buf_free(&e.pbuf[i]);
    for (size_t i = 0; e.pr && i < n_bufs; i++) free(e.pr[i].p);
    free(e.pbuf);
    free(e.pr);
    buf_free(&e.norm[0]);
    buf_free(&e.norm[1]);
    free(e.top.p);
    free(e.sub.p);
    free(e.tmp.p);
    free(e.sym);
    free(e.heap);
    return rc;
}

/* ---- decoding ------------------------------------------------------------------------------ */

/* ByteFallback's test: exactly "<0x" + two hex digits + ">" (Rust's from_str_radix also takes
 * "+F" for the two characters). */
static int is_byte_token(const char *s, size_t n, int *byte) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return 0;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
        } else if (c == '+' && i == 3) {
            continue;
        } else {
            return 0;
        }
        v = v * 16 + d;
    }
    *byte = v;
    return 1;
}

/* A list of token strings: token i is text[off[i] .. off[i] + len[i]). */
typedef struct {
    Buf text;
    size_t *off, *len;
    size_t n, cap;
} TokList;

static int tl_push(TokList *l, const char *s, size_t n) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        size_t *off = realloc(l->off, cap * sizeof *off);
        if (!off) return -1;
        l->off = off;
        size_t *len = realloc(l->len, cap * sizeof *len);
        if (!len) return -1;
        l->len = len;
        l->cap = cap;
    }
    l->off[l->n] = l->text.len;
    l->len[l->n] = n;
    l->n++;
    return buf_put(&l->text, s, n);
}

/* Ends the last token at the current end of the text (after appending to it). */
static void tl_close(TokList *l) {
    l->len[l->n - 1] = l->text.len - l->off[l->n - 1];
}

static void tl_free(TokList *l) {
    buf_free(&l->text);
    free(l->off);
    free(l->len);
    memset(l, 0, sizeof *l);
}

static const char *tl_tok(const TokList *l, size_t i) {
    return buf_data(&l->text) + l->off[i];
}

/* One decoder step from `in` into the empty `out`. */
static int decode_step(const HfTokenizer *hf, const Step *st, pcre2_match_data *md, RangeVec *tmp,
                       const TokList *in, TokList *out, CkError *err) {
    switch (st->kind) {
    case STEP_REPLACE:
        for (size_t i = 0; i < in->n; i++) {
            if (tl_push(out, "", 0) != 0) return -1;
            if (replace_all(&st->re, md, tmp, tl_tok(in, i), in->len[i], st->text, st->text_len,
                            &out->text, err) != 0)
                return -1;
            tl_close(out);
        }
        return 0;
    case STEP_BYTE_FALLBACK: {
        /* Runs of <0xNN> tokens become their text when they form valid UTF-8, else one
         * U+FFFD per byte token, as the reference does. */
        Buf bytes = {0};
        int rc = 0;
        for (size_t i = 0; i <= in->n && rc == 0; i++) {
            int byte;
            if (i < in->n && is_byte_token(tl_tok(in, i), in->len[i], &byte)) {
                char c = (char)byte;
                rc = buf_put(&bytes, &c, 1);
                continue;
            }
            if (bytes.len > 0) {
                if (utf8_first_invalid(bytes.p, bytes.len) == bytes.len) {
                    rc = tl_push(out, bytes.p, bytes.len);
                } else {
                    for (size_t k = 0; k < bytes.len && rc == 0; k++) {
                        rc = tl_push(out, REPLACEMENT_CHAR, 3);
                    }
                }
                bytes.len = 0;
            }
            if (i < in->n && rc == 0) rc = tl_push(out, tl_tok(in, i), in->len[i]);
        }
        buf_free(&bytes);
        return rc;
    }
    case STEP_FUSE:
        if (tl_push(out, "", 0) != 0) return -1;
        if (buf_put(&out->text, buf_data(&in->text), in->text.len) != 0) return -1;
        tl_close(out);
        return 0;
    case STEP_STRIP:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = tl_tok(in, i);
            size_t a = 0, b = in->len[i];
            for (int k = 0; k < st->start && b - a >= st->rep_len; k++) {
                if (memcmp(s + a, st->rep, st->rep_len) != 0) break;
                a += st->rep_len;
            }
            for (int k = 0; k < st->stop && b - a >= st->rep_len; k++) {
                if (memcmp(s + b - st->rep_len, st->rep, st->rep_len) != 0) break;
                b -= st->rep_len;
            }
            if (tl_push(out, s + a, b - a) != 0) return -1;
        }
        return 0;
    case STEP_BYTE_LEVEL: {
        /* All tokens' bytes together, then one lossy UTF-8 conversion: a character split
         * across tokens is whole again, a cut one becomes U+FFFD. A token with a character
         * outside the byte alphabet stands for its own UTF-8. */
        Buf bytes = {0};
        int rc = 0;
        for (size_t i = 0; i < in->n && rc == 0; i++) {
            const char *s = tl_tok(in, i);
            size_t n = in->len[i], mark = bytes.len;
            for (size_t k = 0; k < n && rc == 0;) {
                size_t cl = utf8_char_len((unsigned char)s[k]);
                uint32_t cp = utf8_decode((const unsigned char *)s + k, cl);
                if (cp >= BYTE_LEVEL_CP_END || hf->bl_dec[cp] < 0) {
                    bytes.len = mark;
                    rc = buf_put(&bytes, s, n);
                    break;
                }
                char c = (char)hf->bl_dec[cp];
                rc = buf_put(&bytes, &c, 1);
                k += cl;
            }
        }
        if (rc == 0) rc = tl_push(out, "", 0);
        if (rc == 0) rc = put_lossy(&out->text, buf_data(&bytes), bytes.len);
        if (rc == 0) tl_close(out);
        buf_free(&bytes);
        return rc;
    }
    case STEP_METASPACE:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = tl_tok(in, i);
            size_t n = in->len[i];
            if (tl_push(out, "", 0) != 0) return -1;
            for (size_t k = 0; k < n;) {
                size_t cl = utf8_char_len((unsigned char)s[k]);
                int rc = 0;
                if (cl == st->rep_len && !memcmp(s + k, st->rep, cl)) {
                    /* The first token loses all its replacement characters. */
                    if (i != 0 || st->scheme == PREPEND_NEVER) rc = buf_put(&out->text, " ", 1);
                } else {
                    rc = buf_put(&out->text, s + k, cl);
                }
                if (rc != 0) return -1;
                k += cl;
            }
            tl_close(out);
        }
        return 0;
    default:
        return ck_fail(err, "tokenizer: internal error: decoder step %d", (int)st->kind);
    }
}

/* Runs the decoder over tokens toks[0..n) and appends the text to out. */
static int decode_steps(const HfTokenizer *hf, pcre2_match_data *md, const char **toks,
                        const size_t *lens, int n, Buf *out, CkError *err) {
    if (!hf->has_decoder) {
        /* No decoder: the reference joins the tokens with spaces. */
        for (int i = 0; i < n; i++) {
            if ((i > 0 && buf_put(out, " ", 1) != 0) || buf_put(out, toks[i], lens[i]) != 0)
                return -1;
        }
        return 0;
    }
    TokList a = {0}, b = {0};
    RangeVec tmp = {0};
    int rc = -1;
    for (int i = 0; i < n; i++) {
        if (tl_push(&a, toks[i], lens[i]) != 0) goto done;
    }
    for (int k = 0; k < hf->dec.n; k++) {
        b.n = 0;
        b.text.len = 0;
        if (decode_step(hf, &hf->dec.p[k], md, &tmp, &a, &b, err) != 0) goto done;
        TokList t = a;
        a = b;
        b = t;
    }
    if (buf_put(out, buf_data(&a.text), a.text.len) != 0) goto done;
    rc = 0;
done:
    tl_free(&a);
    tl_free(&b);
    free(tmp.p);
    return rc;
}

char *hf_decode(const Tokenizer *t, const int *ids, int n, int skip_special, size_t *len) {
    const HfTokenizer *hf = t->hf;
    const char **toks = malloc((size_t)(n > 0 ? n : 1) * sizeof *toks);
    size_t *lens = malloc((size_t)(n > 0 ? n : 1) * sizeof *lens);
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    Buf out = {0};
    char *result = NULL;
    if (!toks || !lens || !md) goto done;
    int k = 0;
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        if (id < 0 || id >= hf->n_ids || hf->dlen[id] < 0) continue;
        if (skip_special && hf->special[id]) continue;
        toks[k] = arena_str(hf, hf->doff[id]);
        lens[k++] = (size_t)hf->dlen[id];
    }
    CkError err;
    if (decode_steps(hf, md, toks, lens, k, &out, &err) != 0) goto done;
    if (buf_put(&out, "", 1) != 0) goto done;
    if (len) *len = out.len - 1;
    result = out.p;
    out.p = NULL;
done:
    free(toks);
    free(lens);
    pcre2_match_data_free(md);
    buf_free(&out);
    return result;
}

const char *hf_decode_piece(const Tokenizer *t, int prev, int id, char byte_buf[2], size_t *len) {
    const HfTokenizer *hf = t->hf;
    *len = 0;
    if (id < 0 || id >= hf->n_ids || hf->plen[id] < 0 || hf->special[id]) return "";
    if (hf->pbyte[id] >= 0) {
        byte_buf[0] = (char)hf->pbyte[id];
        byte_buf[1] = '\0';
        *len = 1;
        return byte_buf;
    }
    const char *p = arena_str(hf, hf->poff[id]);
    size_t n = (size_t)hf->plen[id];
    if (hf->strip_first && n > 0 && p[0] == ' ' && (prev < 0 || prev == t->bos_id)) {
        p++;
        n--;
    }
    *len = n;
    return p;
}

int hf_is_special(const Tokenizer *t, int id) {
    return id >= 0 && id < t->hf->n_ids && t->hf->special[id];
}
