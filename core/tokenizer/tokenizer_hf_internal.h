/* tokenizer_hf_internal.h — the state of a tokenizer.json tokenizer and the functions that the
 * files of its pipeline share (loading, pre-tokenization, encoding, decoding; see README.md).
 * Private to core/tokenizer/: the rest of cutkit goes through tokenizer.h. */
#ifndef CK_TOKENIZER_HF_INTERNAL_H
#define CK_TOKENIZER_HF_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8

#include <limits.h>
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer_hf.h"
#include "util/ck_error.h"
#include "util/strbuf.h"
#include "util/utf8.h"

enum {
    /* Ids are indices of per-id tables; real vocabularies stay far below this, and a hostile
     * file cannot make those tables large. */
    HF_MAX_ID = (1 << 22) - 1,
    /* Normalizer, pre-tokenizer and decoder steps after Sequences are flattened; encode
     * recurses once per pre-tokenizer step. */
    HF_MAX_STEPS = 64,
    /* Code points below this have their single-character token id in a table (covers ASCII,
     * Latin, Cyrillic and all of the byte-level alphabet). */
    HF_SMALL_CP = 0x800,
    /* Highest code point of GPT-2's byte-to-unicode alphabet, plus one. */
    HF_BYTE_LEVEL_CP_END = 0x144,
};

/* SentencePiece's space, U+2581 (3 bytes). */
#define HF_SPACE_MARK "\xE2\x96\x81"

/* ---- small growable arrays (bytes go in StrBuf) ---------------------------------------------- */

typedef struct {
    int *p;
    size_t len, cap;
} IntVec;

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

/* Appends x; returns 0, or -1 when out of memory (v unchanged). */
int hf_intvec_push(IntVec *v, int x);

/* Appends the range [start, end) with flag; returns 0 or -1 (out of memory). */
int hf_ranges_push(RangeVec *v, size_t start, size_t end, int flag);

/* b's bytes, never NULL (so that memcpy and friends never see a null pointer). */
static inline const char *hf_bytes(const StrBuf *b) {
    return b->p ? b->p : "";
}

/* ---- regexes (tokenizer_hf_pretok.c) --------------------------------------------------------- */

typedef struct {
    pcre2_code *code;
} Regex;

/* Compiles pattern (or the literal string when literal); on failure writes the PCRE2 message
 * into msg. The reference escapes a literal pattern into a regex, so an empty literal matches
 * the empty string everywhere, as here. */
int hf_regex_compile(Regex *r, const char *pattern, int literal, char *msg, size_t msg_cap);

void hf_regex_free(Regex *r);

/* Splits s[0..len) into alternating non-matching and matching ranges (flag 1 = match), as the
 * reference's find_matches: an empty string gives one empty non-match; empty matches are
 * kept (they cut the text) except one right where the previous match ended. */
int hf_find_matches(const Regex *r, pcre2_match_data *md, const char *s, size_t len, RangeVec *out,
                    CkError *err);

/* Appends s[0..len) to out with every match of r replaced by content (tmp: scratch). */
int hf_replace_all(const Regex *r, pcre2_match_data *md, RangeVec *tmp, const char *s, size_t len,
                   const char *content, size_t content_len, StrBuf *out, CkError *err);

/* ---- the pipeline's steps -------------------------------------------------------------------- */

typedef enum {
    STEP_PREPEND,       /* normalizer */
    STEP_REPLACE,       /* normalizer, decoder */
    STEP_BYTE_LEVEL,    /* pre-tokenizer, decoder */
    STEP_SPLIT,         /* pre-tokenizer */
    STEP_METASPACE,     /* pre-tokenizer, decoder */
    STEP_BYTE_FALLBACK, /* decoder */
    STEP_FUSE,          /* decoder */
    STEP_STRIP,         /* decoder */
    STEP_UNICODE,       /* normalizer: NFC, NFD, NFKC, NFKD (utf8proc) */
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
    int unicode_options;  /* Unicode normalizer: utf8proc's UTF8PROC_COMPOSE/DECOMPOSE/COMPAT */
} Step;

typedef struct {
    Step *p;
    int n;
} StepList;

/* The utf8proc options of a Unicode normalizer type ("NFC", "NFD", "NFKC", "NFKD"), or 0 for
 * any other name (tokenizer_hf_unicode.c). */
int hf_unicode_form(const char *type);

/* Appends s[0..len) in the normalization form of options (hf_unicode_form) to out. Fails on
 * text that is not UTF-8 (the reference's strings always are). */
int hf_unicode_normalize(int options, const char *s, size_t len, StrBuf *out, CkError *err);

/* ---- tables ---------------------------------------------------------------------------------- */

/* An open-addressing table of ids whose strings live elsewhere (an arena and per-id offset
 * and length arrays, passed at each call because the arena may move while it grows). */
typedef struct {
    int *slots; /* -1 = empty */
    size_t mask;
} StrTable;

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
    StrBuf arena; /* every string: vocabulary, added tokens, decoded pieces */

    /* model vocabulary */
    int n_model_ids; /* 1 + highest model id */
    int n_vocab;     /* number of model vocabulary entries */
    uint32_t *voff;  /* [n_model_ids] */
    int *vlen;       /* [n_model_ids] -1 where no model token has that id */
    StrTable vocab;
    int small_id[HF_SMALL_CP]; /* single-character tokens by code point, -1 = none */
    int byte_id[256];          /* <0xNN> tokens for byte fallback, -1 = none */
    PairTable merges;
    int unk_id; /* -1 = no unk_token */
    int fuse_unk, byte_fallback, ignore_merges;
    int merge_into_space; /* some merge joins a token not ending in "▁" to one starting with it */
    int split_at_space;   /* words may be merged in stretches that start at "▁" (load_sections) */

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
    short bl_dec[HF_BYTE_LEVEL_CP_END];
};

/* The string at offset off of the arena. */
static inline const char *hf_arena_str(const HfTokenizer *hf, uint32_t off) {
    return hf->arena.p + off;
}

/* Allocates a table for n keys, at most half full; returns 0 or -1 (out of memory). */
int hf_strtab_init(StrTable *t, size_t n);

/* Returns the slot holding s[0..n), or the empty slot where it would go. */
size_t hf_strtab_slot(const StrTable *t, const char *base, const uint32_t *off, const int *len,
                      const char *s, size_t n);

/* Returns the model id of token s[0..n), or -1. */
int hf_vocab_find(const HfTokenizer *hf, const char *s, size_t n);

/* The index of the added token whose content is s[0..len), or -1. */
int hf_added_find(const HfTokenizer *hf, const char *s, size_t len);

/* The id of the single-character token s[0..n) (n: its UTF-8 length), or -1. Inline, as are
 * the pair lookups below: encode's inner loop calls them once per symbol. */
static inline int hf_char_id(const HfTokenizer *hf, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    if (n == 1) return hf->small_id[u[0]];
    if (n == 2) return hf->small_id[utf8_decode(u, 2)];
    return hf_vocab_find(hf, s, n);
}

/* The slot where the merge key belongs in t (before probing). */
static inline size_t hf_pair_slot(const PairTable *t, uint64_t key) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> t->shift) & t->mask;
}

/* Finds the merge of ids a and b: returns 1 and fills rank and merged id, or 0. */
static inline int hf_pair_find(const PairTable *t, int a, int b, int *rank, int *merged) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t h = hf_pair_slot(t, key);; h = (h + 1) & t->mask) {
        if (t->keys[h] == key) {
            *rank = t->rank[h];
            *merged = t->merged[h];
            return 1;
        }
        if (t->keys[h] == UINT64_MAX) return 0;
    }
}

/* Fills hf's GPT-2 byte-to-unicode tables (bl_enc, bl_enc_len, bl_dec). */
void hf_init_byte_level(HfTokenizer *hf);

/* ---- pre-tokenization (tokenizer_hf_pretok.c) ------------------------------------------------ */

/* Applies hf's normalizer to s[0..len): *out points into s or into nb[0] / nb[1]. */
int hf_normalize(const HfTokenizer *hf, pcre2_match_data *md, RangeVec *tmp, const char *s,
                 size_t len, StrBuf nb[2], const char **out, size_t *out_len, CkError *err);

/* Turns the matches in `in` (flag = is a match) into pieces (flag = remove) by behavior, as
 * the reference's NormalizedString::split does; returns 0 or -1 (out of memory). */
int hf_split_pieces(const RangeVec *in, SplitBehavior behavior, int invert, RangeVec *out);

/* ---- encoding (tokenizer_hf_encode.c) -------------------------------------------------------- */

typedef struct {
    int id, prev, next;
    int len; /* bytes; 0 once merged into its left neighbour */
} Symbol;

typedef struct {
    uint64_t key; /* rank << 32 | position of the left symbol: the smallest merges first */
    int merged;
} MergeEntry;

/* The scratch state of one encode call. */
typedef struct {
    const HfTokenizer *hf;
    CkError *err;
    pcre2_match_data *md;
    IntVec out;
    StrBuf norm[2];
    RangeVec top, sub, tmp;
    StrBuf *pbuf; /* [2 * n_pre] per pre-tokenizer step: its text buffers */
    RangeVec *pr; /* [2 * n_pre] per pre-tokenizer step: matches and pieces */
    Symbol *sym;
    MergeEntry *heap;
    size_t sym_cap, heap_len, heap_cap;
} Encoder;

/* Runs pre-tokenizer steps k.. on the piece s[0..len) and encodes the words that come out
 * (hf_bpe_word). at_start: the piece begins at the start of the text (Metaspace's "first"). */
int hf_pre_tokenize(Encoder *e, int k, const char *s, size_t len, int at_start);

/* Encodes one word (a pre-token) with the BPE model and appends its ids to e->out. */
int hf_bpe_word(Encoder *e, const char *s, size_t len);

/* Adds pattern s[0..n) for added token index `token` to tr; returns 0 or -1 (out of memory).
 * Of two equal patterns the first one added wins. */
int hf_trie_add(Trie *tr, const char *s, size_t n, int token);

/* ---- decoding (tokenizer_hf_decode.c) -------------------------------------------------------- */

/* ByteFallback's test: 1 when s[0..n) is "<0x" + two hex digits + ">", with *byte its value. */
int hf_is_byte_token(const char *s, size_t n, int *byte);

#endif
