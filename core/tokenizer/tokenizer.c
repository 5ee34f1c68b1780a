/* tokenizer.c — the llama2.c `tokenizer.bin` tokenizer: loading, encoding, decoding.
 *
 * Format (little-endian): int32 max_token_length, then vocab_size records of
 * {float32 score, int32 len, len bytes}. Ids 0, 1, 2 are <unk>, BOS, EOS; ids 3..258 are the
 * byte-fallback pieces <0x00>..<0xFF>; the rest are pieces with SentencePiece's U+2581 already
 * turned into a space.
 *
 * Encoding gives the same ids as llama2.c run.c: one symbol per UTF-8 code point, then the
 * adjacent pair whose concatenation is the best-scoring piece is merged, first pair on ties,
 * until no pair forms a piece. run.c rescans the whole sequence after every merge, which is
 * quadratic; here the candidate pairs live in a heap over a doubly linked list of symbols,
 * and pieces are found in a hash table, so a text of n code points costs O(n) lookups and
 * O(n log n) heap work. When the vocabulary allows it (splits_at_spaces), each " word"
 * stretch is merged on its own, which keeps the heap small and in cache.
 *
 * The public functions also serve Hugging Face tokenizer.json tokenizers (kind
 * TOKENIZER_HF_BPE), which live in the tokenizer_hf*.c files: each function hands those to them.
 * tokenizer_load (and tokenizer_open, which reads the file) tells the two formats apart by
 * content, never by the file's name, and infers a tokenizer.bin's vocabulary size by counting
 * its records. */
#include "tokenizer/tokenizer.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tokenizer/tokenizer_hf.h"
#include "util/hash.h"
#include "util/utf8.h"

enum {
    HEADER_BYTES = 4,        /* int32 max_token_length */
    RECORD_HEADER_BYTES = 8, /* float32 score + int32 len */
    LLAMA2C_UNK_ID = 0,
    LLAMA2C_BOS_ID = 1,
    LLAMA2C_EOS_ID = 2,
    LLAMA2C_BYTE_BASE = 3,
    BYTE_PIECE_LEN = 6, /* "<0xXX>" */
    MAX_VOCAB_SIZE = 1 << 28,
};

/* run.c starts its search for the best pair at this score and only takes strictly higher
 * ones, so a piece scored at or below it is never formed by a merge. Kept for identical ids. */
static const float MERGE_SCORE_FLOOR = -1e10f;

/* Texts longer than this are refused so that the symbol and heap counts (up to 3 per byte)
 * stay far inside int. */
static const size_t MAX_TEXT_BYTES = (size_t)INT_MAX / 8;

/* The file is little-endian whatever the host is, so assemble the values byte by byte. */
static uint32_t read_u32le(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int32_t read_i32le(const unsigned char *p) {
    uint32_t u = read_u32le(p);
    int32_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static float read_f32le(const unsigned char *p) {
    uint32_t u = read_u32le(p);
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Orders byte strings like memcmp, the shorter first when one is a prefix of the other. */
static int compare_bytes(const char *a, int alen, const char *b, int blen) {
    int n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, (size_t)n) : 0;
    if (c != 0) return c;
    return (alen > blen) - (alen < blen);
}

typedef struct {
    const char *bytes;
    int len;
    int id;
} PieceRef;

/* Ties (duplicate pieces) are broken by id so that lookups deterministically find the
 * lowest id. */
static int compare_piece_refs(const void *pa, const void *pb) {
    const PieceRef *a = pa, *b = pb;
    int c = compare_bytes(a->bytes, a->len, b->bytes, b->len);
    if (c != 0) return c;
    return (a->id > b->id) - (a->id < b->id);
}

/* The piece table's home slot of s[0..len): pieces are short (27 bytes at most in the Llama 2
 * vocabulary), so hashing costs less than the memcmp calls of a binary search. */
static uint32_t piece_slot(const Tokenizer *t, const char *s, int len) {
    return (uint32_t)(hash_bytes(s, (size_t)len) & t->piece_hash_mask);
}

/* Returns the lowest id whose piece is exactly s[0..len), or -1. */
static int find_piece(const Tokenizer *t, const char *s, int len) {
    if (len > t->max_piece_len) return -1;
    for (uint32_t h = piece_slot(t, s, len);; h = (h + 1) & t->piece_hash_mask) {
        int id = t->piece_hash[h];
        if (id < 0) return -1;
        if (t->piece_lens[id] == len && memcmp(t->pieces[id], s, (size_t)len) == 0) return id;
    }
}

/* Fills t->piece_hash with every id, at most half full so that probe runs stay short; a
 * duplicate piece keeps its lowest id. Returns -1 when out of memory. */
static int build_piece_hash(Tokenizer *t) {
    size_t cap = 16;
    while (cap < 2 * (size_t)t->vocab_size) cap *= 2;
    t->piece_hash = malloc(cap * sizeof *t->piece_hash);
    if (!t->piece_hash) return -1;
    t->piece_hash_mask = (unsigned)(cap - 1);
    for (size_t i = 0; i < cap; i++) t->piece_hash[i] = -1;
    for (int id = 0; id < t->vocab_size; id++) {
        const char *s = t->pieces[id];
        int len = t->piece_lens[id];
        uint32_t h = piece_slot(t, s, len);
        while (t->piece_hash[h] >= 0) {
            int other = t->piece_hash[h];
            if (t->piece_lens[other] == len && memcmp(t->pieces[other], s, (size_t)len) == 0) break;
            h = (h + 1) & t->piece_hash_mask;
        }
        if (t->piece_hash[h] < 0) t->piece_hash[h] = id;
    }
    return 0;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Returns the byte a "<0xXX>" piece stands for, or -1 when the piece has another form.
 * Stricter than run.c's sscanf, which would also accept e.g. "<0x4" or "<0x41junk". */
static int parse_byte_piece(const char *s, int len) {
    if (len != BYTE_PIECE_LEN || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') {
        return -1;
    }
    int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    if (hi < 0 || lo < 0) return -1;
    return hi * 16 + lo;
}

/* Byte fallback is only trusted when ids 3..258 really are <0x00>..<0xFF>; otherwise bytes
 * with no piece encode as <unk>, as SentencePiece does without byte fallback. */
static int detect_byte_fallback(const Tokenizer *t) {
    if (t->vocab_size < LLAMA2C_BYTE_BASE + 256) return -1;
    for (int b = 0; b < 256; b++) {
        int id = LLAMA2C_BYTE_BASE + b;
        if (parse_byte_piece(t->pieces[id], t->piece_lens[id]) != b) return -1;
    }
    return LLAMA2C_BYTE_BASE;
}

/* True when " " is a piece and no piece holds a space right after another byte than a space
 * (SentencePiece pieces are "word", " word" or all spaces). Then no merge can join a symbol
 * ending in a non-space to one starting with a space (a byte token ends in '>'), so greedy
 * merging of the whole text equals greedy merging of each stretch between such points. */
static int detect_space_splits(const Tokenizer *t) {
    if (find_piece(t, " ", 1) < 0) return 0;
    for (int id = 0; id < t->vocab_size; id++) {
        const char *p = t->pieces[id];
        for (int i = 1; i < t->piece_lens[id]; i++) {
            if (p[i] == ' ' && p[i - 1] != ' ') return 0;
        }
    }
    return 1;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    hf_free(t->hf);
    if (t->pieces) {
        for (int i = 0; i < t->vocab_size; i++) free(t->pieces[i]);
    }
    free(t->pieces);
    free(t->piece_lens);
    free(t->scores);
    free(t->sorted_ids);
    free(t->piece_hash);
    memset(t, 0, sizeof *t);
}

/* Fills t->sorted_ids; returns -1 when out of memory. */
static int sort_pieces(Tokenizer *t) {
    PieceRef *refs = malloc((size_t)t->vocab_size * sizeof *refs);
    if (!refs) return -1;
    for (int i = 0; i < t->vocab_size; i++) {
        refs[i] = (PieceRef){t->pieces[i], t->piece_lens[i], i};
    }
    qsort(refs, (size_t)t->vocab_size, sizeof *refs, compare_piece_refs);
    for (int i = 0; i < t->vocab_size; i++) t->sorted_ids[i] = refs[i].id;
    free(refs);
    return 0;
}

/* Reads the vocab_size records that follow the header into t's arrays (allocated), checking
 * each against the data's end and the header's max_token_length; sets t->max_piece_len. */
static int read_records(Tokenizer *t, const unsigned char *p, size_t size, int vocab_size,
                        int32_t max_token_length, CkError *err) {
    size_t off = HEADER_BYTES;
    int longest = 0;
    for (int i = 0; i < vocab_size; i++) {
        size_t left = size - off;
        if (left == 0)
            return ck_fail(err,
                           "tokenizer: record %d: missing: the data (%zu bytes) ends after %d of "
                           "%d records",
                           i, size, i, vocab_size);
        if (left < RECORD_HEADER_BYTES)
            return ck_fail(err,
                           "tokenizer: record %d: truncated at offset %zu: %zu of the 8 bytes of "
                           "score and length are present",
                           i, off, left);
        float score = read_f32le(p + off);
        int32_t len = read_i32le(p + off + 4);
        off += RECORD_HEADER_BYTES;
        left -= RECORD_HEADER_BYTES;
        /* A NaN score would make the merge order depend on comparison accidents. */
        if (isnan(score)) return ck_fail(err, "tokenizer: record %d: score is NaN", i);
        if (len < 0) return ck_fail(err, "tokenizer: record %d: negative length %d", i, (int)len);
        if ((size_t)len > left)
            return ck_fail(err,
                           "tokenizer: record %d: length %d runs past the end of the data (%zu "
                           "bytes)",
                           i, (int)len, size);
        if (len > max_token_length)
            return ck_fail(err,
                           "tokenizer: record %d: length %d exceeds max_token_length %d of the "
                           "header",
                           i, (int)len, (int)max_token_length);
        t->pieces[i] = malloc((size_t)len + 1);
        if (!t->pieces[i])
            return ck_fail(err, "tokenizer: out of memory loading %d pieces", vocab_size);
        memcpy(t->pieces[i], p + off, (size_t)len);
        t->pieces[i][len] = '\0';
        t->piece_lens[i] = len;
        t->scores[i] = score;
        if (len > longest) longest = len;
        off += (size_t)len;
    }
    /* Leftover bytes mean the file holds more records than the model's vocabulary: the two
     * do not belong together. */
    if (off != size)
        return ck_fail(err,
                       "tokenizer: %zu bytes left over after record %d, the last of vocab_size %d",
                       size - off, vocab_size - 1, vocab_size);
    t->max_piece_len = longest;
    return 0;
}

int tokenizer_load_llama2c(Tokenizer *t, const void *data, size_t size, int vocab_size,
                           CkError *err) {
    memset(t, 0, sizeof *t);
    /* Below 3 there is no room for <unk>, BOS and EOS, which encode and decode rely on. */
    if (vocab_size < 3) {
        return ck_fail(err, "tokenizer: vocab_size %d is too small (ids 0..2 are <unk>, BOS, EOS)",
                       vocab_size);
    }
    /* Keeps the piece hash table's size inside its unsigned mask. */
    if (vocab_size > MAX_VOCAB_SIZE) {
        return ck_fail(err, "tokenizer: vocab_size %d is above the limit of %d", vocab_size,
                       MAX_VOCAB_SIZE);
    }
    if (!data) return ck_fail(err, "tokenizer: no data");
    if (size < HEADER_BYTES) {
        return ck_fail(err,
                       "tokenizer: the data is %zu bytes, too short for the 4-byte header "
                       "(max_token_length)",
                       size);
    }
    const unsigned char *p = data;
    int32_t max_token_length = read_i32le(p);
    if (max_token_length < 0) {
        return ck_fail(err, "tokenizer: header: max_token_length %d is negative",
                       (int)max_token_length);
    }

    t->kind = TOKENIZER_LLAMA2C;
    t->vocab_size = vocab_size;
    t->bos_id = LLAMA2C_BOS_ID;
    t->eos_id = LLAMA2C_EOS_ID;
    t->pieces = calloc((size_t)vocab_size, sizeof *t->pieces);
    t->piece_lens = malloc((size_t)vocab_size * sizeof *t->piece_lens);
    t->scores = malloc((size_t)vocab_size * sizeof *t->scores);
    t->sorted_ids = malloc((size_t)vocab_size * sizeof *t->sorted_ids);
    if (!t->pieces || !t->piece_lens || !t->scores || !t->sorted_ids) goto out_of_memory;
    if (read_records(t, p, size, vocab_size, max_token_length, err) != 0) goto fail;
    if (sort_pieces(t) != 0 || build_piece_hash(t) != 0) goto out_of_memory;
    t->byte_fallback_base = detect_byte_fallback(t);
    t->splits_at_spaces = detect_space_splits(t);
    return 0;

out_of_memory:
    ck_fail(err, "tokenizer: out of memory loading %d pieces", vocab_size);
fail:
    tokenizer_free(t);
    return -1;
}

/* Reads a whole regular file into a malloc'd NUL-terminated buffer. fopen succeeds on a
 * directory, whose ftell size is meaningless, so fstat decides what is a file. */
static char *read_whole_file(const char *path, size_t *size, CkError *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        ck_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        ck_fail(err, "%s: not a regular file", path);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        ck_fail(err, "%s: out of memory reading %zu bytes", path, n);
        return NULL;
    }
    size_t got = fread(buf, 1, n, f);
    int failed = ferror(f) || got != n;
    fclose(f);
    if (failed) {
        free(buf);
        ck_fail(err, "%s: read %zu of %zu bytes", path, got, n);
        return NULL;
    }
    buf[n] = '\0';
    *size = n;
    return buf;
}

int tokenizer_load_llama2c_file(Tokenizer *t, const char *path, int vocab_size, CkError *err) {
    memset(t, 0, sizeof *t);
    size_t n;
    char *buf = read_whole_file(path, &n, err);
    if (!buf) return -1;
    int rc = tokenizer_load_llama2c(t, buf, n, vocab_size, err);
    free(buf);
    if (rc != 0) return ck_wrap(err, "%s", path);
    return 0;
}

/* Length of the symbol starting at s[0]: a lead byte with all of its continuation bytes, else
 * 1: stray continuation bytes, invalid lead bytes and cut-off sequences are single symbols,
 * which then fall back to their byte tokens. Deliberately not utf8_scan: like run.c, which
 * groups bytes without validating them, an overlong or surrogate form stays one symbol, so a
 * tokenizer.bin piece spelled that way is still found. */
static int symbol_len(const unsigned char *s, size_t left) {
    if (s[0] < 0xC2 || s[0] > 0xF4) return 1; /* ASCII, or a byte that cannot start a sequence */
    size_t n = utf8_char_len(s[0]);
    if (n > left) return 1;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 1;
    }
    return (int)n;
}

/* A candidate merge: the symbol `left` (the low 32 bits of key) holding left_id, and its
 * right neighbour holding right_id. A symbol changes only by absorbing its right neighbour,
 * which lengthens its piece, so while `left` still holds left_id its neighbour is the same
 * symbol as when the entry was queued: the entry is current exactly when both ids still
 * match. Stale entries are dropped when they reach the top instead of being searched for. */
typedef struct {
    uint64_t key; /* score rank (descending) << 32 | left, so the smallest key merges first */
    int left_id, right_id;
} MergeCandidate;

/* A 4-ary heap is shallower than a binary one and its children share a cache line. */
enum { HEAP_ARITY = 4 };

typedef struct {
    const Tokenizer *t;
    int *ids;  /* [n] current token id of each symbol, -1 once merged into its left neighbour */
    int *prev; /* [n] index of the live left neighbour, or -1 */
    int *next; /* [n] index of the live right neighbour, or -1 */
    MergeCandidate *heap;
    int heap_len, heap_cap;
    char *concat; /* max_piece_len bytes, to look up the concatenation of two pieces */
} Merger;

/* Maps scores to unsigned ints in the same order, so that one integer compare orders heap
 * entries. -0 is folded into +0 because run.c's `>` treats them as equal. */
static uint32_t score_order(float score) {
    if (score == 0.0f) score = 0.0f;
    uint32_t u;
    memcpy(&u, &score, sizeof u);
    return (u & 0x80000000u) ? ~u : u | 0x80000000u;
}

/* Best score first; on equal scores the leftmost pair, as run.c's scan takes the first of
 * equal pairs. Symbol indices keep their left-to-right order through merges, so comparing
 * them compares positions in the current sequence. */
static uint64_t candidate_key(float score, int left) {
    return (uint64_t)(UINT32_MAX - score_order(score)) << 32 | (uint32_t)left;
}

static void heap_sift_down(MergeCandidate *h, int n, int i) {
    MergeCandidate x = h[i];
    for (;;) {
        int first = HEAP_ARITY * i + 1;
        if (first >= n) break;
        int end = first + HEAP_ARITY < n ? first + HEAP_ARITY : n;
        int best = first;
        for (int c = first + 1; c < end; c++) {
            if (h[c].key < h[best].key) best = c;
        }
        if (h[best].key >= x.key) break;
        h[i] = h[best];
        i = best;
    }
    h[i] = x;
}

static void heap_push(Merger *m, MergeCandidate c) {
    int i = m->heap_len++;
    while (i > 0) {
        int parent = (i - 1) / HEAP_ARITY;
        if (m->heap[parent].key <= c.key) break;
        m->heap[i] = m->heap[parent];
        i = parent;
    }
    m->heap[i] = c;
}

static MergeCandidate heap_pop(Merger *m) {
    MergeCandidate top = m->heap[0];
    if (--m->heap_len > 0) {
        m->heap[0] = m->heap[m->heap_len];
        heap_sift_down(m->heap, m->heap_len, 0);
    }
    return top;
}

/* Returns the id of the piece spelled by piece a followed by piece b, or -1. The pieces are
 * concatenated as stored, byte tokens included ("<0xE4>" and all), as run.c does. */
static int find_concat(Merger *m, int a, int b) {
    const Tokenizer *t = m->t;
    int la = t->piece_lens[a], lb = t->piece_lens[b];
    if (la + lb > t->max_piece_len) return -1;
    memcpy(m->concat, t->pieces[a], (size_t)la);
    memcpy(m->concat + la, t->pieces[b], (size_t)lb);
    return find_piece(t, m->concat, la + lb);
}

/* Makes the candidate for (left, its right neighbour) when their concatenation is a piece
 * that run.c would merge; returns 0 when there is none. */
static int make_candidate(Merger *m, int left, MergeCandidate *c) {
    if (left < 0 || m->next[left] < 0) return 0;
    int a = m->ids[left], b = m->ids[m->next[left]];
    int merged = find_concat(m, a, b);
    if (merged < 0) return 0;
    float score = m->t->scores[merged];
    if (!(score > MERGE_SCORE_FLOOR)) return 0;
    *c = (MergeCandidate){candidate_key(score, left), a, b};
    return 1;
}

static void queue_pair(Merger *m, int left) {
    MergeCandidate c;
    /* Each merge queues at most two pairs and the start queues n - 1, so 3n always fits;
     * the capacity check only guards against a broken invariant. */
    if (make_candidate(m, left, &c) && m->heap_len < m->heap_cap) heap_push(m, c);
}

static void merge_all(Merger *m, int n) {
    MergeCandidate c;
    for (int i = 0; i + 1 < n; i++) {
        if (make_candidate(m, i, &c)) m->heap[m->heap_len++] = c;
    }
    /* Bottom-up heap construction: linear, where n pushes would cost n log n. */
    for (int i = (m->heap_len - 2) / HEAP_ARITY; m->heap_len > 1 && i >= 0; i--) {
        heap_sift_down(m->heap, m->heap_len, i);
    }
    while (m->heap_len > 0) {
        MergeCandidate top = heap_pop(m);
        int left = (int)(uint32_t)top.key;
        int right = m->next[left];
        if (m->ids[left] != top.left_id || right < 0 || m->ids[right] != top.right_id) continue;
        /* The left symbol absorbs the right one. */
        m->ids[left] = find_concat(m, top.left_id, top.right_id);
        m->ids[right] = -1;
        int after = m->next[right];
        m->next[left] = after;
        if (after >= 0) m->prev[after] = left;
        queue_pair(m, m->prev[left]);
        queue_pair(m, left);
    }
}

/* Appends the symbols for the bytes s[0..len) that form no piece together. */
static int push_bytes(const Tokenizer *t, const unsigned char *s, int len, int *ids, int n) {
    for (int i = 0; i < len; i++) {
        ids[n++] = t->byte_fallback_base >= 0 ? t->byte_fallback_base + s[i] : LLAMA2C_UNK_ID;
    }
    return n;
}

/* Merges the segment held in m->ids[0..n) and appends its tokens to out at *k. */
static void flush_segment(Merger *m, int n, int *out, int *k) {
    for (int i = 0; i < n; i++) {
        m->prev[i] = i - 1;
        m->next[i] = i + 1 < n ? i + 1 : -1;
    }
    merge_all(m, n);
    /* Symbol 0 is never absorbed (only right neighbours are), so the chain starts there. */
    for (int i = n > 0 ? 0 : -1; i >= 0; i = m->next[i]) out[(*k)++] = m->ids[i];
}

int tokenizer_encode(const Tokenizer *t, const char *text, int add_bos, int add_eos, int **ids,
                     int *n_ids, CkError *err) {
    *ids = NULL;
    *n_ids = 0;
    if (t && t->kind == TOKENIZER_HF_BPE && t->hf) {
        return hf_encode(t, text, 0, add_bos, add_eos, ids, n_ids, err);
    }
    if (!t || t->kind != TOKENIZER_LLAMA2C || t->vocab_size <= 0 || !t->piece_hash) {
        return ck_fail(err, "tokenizer: encode: the tokenizer is not loaded");
    }
    if (!text) return ck_fail(err, "tokenizer: encode: text is NULL");
    size_t text_len = strlen(text);
    if (text_len > MAX_TEXT_BYTES) {
        return ck_fail(err, "tokenizer: encode: the text is %zu bytes, more than the limit of %zu",
                       text_len, MAX_TEXT_BYTES);
    }

    /* At most one symbol per byte plus the dummy prefix; BOS and EOS come on top. */
    int cap = (int)text_len + 1;
    Merger m = {.t = t, .heap_cap = 3 * cap};
    int *out = malloc((size_t)(cap + 2) * sizeof *out);
    m.ids = malloc((size_t)cap * sizeof *m.ids);
    m.prev = malloc((size_t)cap * sizeof *m.prev);
    m.next = malloc((size_t)cap * sizeof *m.next);
    m.heap = malloc((size_t)m.heap_cap * sizeof *m.heap);
    m.concat = malloc((size_t)t->max_piece_len + 1);
    if (!out || !m.ids || !m.prev || !m.next || !m.heap || !m.concat) {
        free(out);
        out = NULL;
        ck_fail(err, "tokenizer: encode: out of memory for a text of %zu bytes", text_len);
        goto done;
    }

    int k = 0, n = 0;
    if (add_bos) out[k++] = t->bos_id;
    const unsigned char *s = (const unsigned char *)text;
    if (text_len > 0) {
        /* SentencePiece's dummy prefix: the first word is encoded like any later word. */
        int space = find_piece(t, " ", 1);
        if (space >= 0) {
            m.ids[n++] = space;
        } else {
            n = push_bytes(t, (const unsigned char *)" ", 1, m.ids, n);
        }
    }
    for (size_t i = 0; i < text_len;) {
        /* No piece crosses from a non-space into a space (see splits_at_spaces), so the text
         * before such a point is merged on its own, in a small cache-resident heap. */
        if (t->splits_at_spaces && i > 0 && s[i] == ' ' && s[i - 1] != ' ') {
            flush_segment(&m, n, out, &k);
            n = 0;
        }
        int len = symbol_len(s + i, text_len - i);
        int id = find_piece(t, (const char *)s + i, len);
        if (id >= 0) {
            m.ids[n++] = id;
        } else {
            n = push_bytes(t, s + i, len, m.ids, n);
        }
        i += (size_t)len;
    }
    flush_segment(&m, n, out, &k);
    if (add_eos) out[k++] = t->eos_id;
    /* Give back the room reserved for one token per byte; keeping it is harmless. */
    int *shrunk = realloc(out, (size_t)(k > 0 ? k : 1) * sizeof *out);
    if (shrunk) out = shrunk;
    *ids = out;
    *n_ids = k;

done:
    free(m.ids);
    free(m.prev);
    free(m.next);
    free(m.heap);
    free(m.concat);
    return out ? 0 : -1;
}

/* <unk> is treated like BOS and EOS: a marker, not text of the document. */
const char *tokenizer_decode_piece(const Tokenizer *t, int prev, int id, char byte_buf[2],
                                   size_t *len) {
    *len = 0;
    if (t && t->kind == TOKENIZER_HF_BPE && t->hf)
        return hf_decode_piece(t, prev, id, byte_buf, len);
    if (!t || !t->pieces || id < 0 || id >= t->vocab_size) return "";
    if (id == t->bos_id || id == t->eos_id || id == LLAMA2C_UNK_ID) return "";
    const char *s = t->pieces[id];
    int n = t->piece_lens[id];
    int byte = parse_byte_piece(s, n);
    if (byte >= 0) {
        byte_buf[0] = (char)byte;
        byte_buf[1] = '\0';
        *len = 1;
        return byte_buf;
    }
    /* The dummy prefix added by encode sits at the start of the first piece. */
    if (prev == t->bos_id && n > 0 && s[0] == ' ') {
        s++;
        n--;
    }
    *len = (size_t)n;
    return s;
}

char *tokenizer_decode(const Tokenizer *t, const int *ids, int n) {
    return tokenizer_decode_special(t, ids, n, 1, NULL);
}

char *tokenizer_decode_special(const Tokenizer *t, const int *ids, int n, int skip_special,
                               size_t *out_len) {
    char byte_buf[2];
    size_t len, total = 0;
    if (!ids || n < 0) n = 0;
    if (t && t->kind == TOKENIZER_HF_BPE && t->hf)
        return hf_decode(t, ids, n, skip_special, out_len);
    for (int i = 0; i < n; i++) {
        tokenizer_decode_piece(t, i > 0 ? ids[i - 1] : -1, ids[i], byte_buf, &len);
        total += len;
    }
    char *out = malloc(total + 1);
    if (!out) return NULL;
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        const char *piece =
            tokenizer_decode_piece(t, i > 0 ? ids[i - 1] : -1, ids[i], byte_buf, &len);
        memcpy(out + k, piece, len);
        k += len;
    }
    out[k] = '\0';
    if (out_len) *out_len = k;
    return out;
}

int tokenizer_encode_special(const Tokenizer *t, const char *text, int add_special_tokens,
                             int **ids, int *n_ids, CkError *err) {
    if (t && t->kind == TOKENIZER_HF_BPE && t->hf) {
        *ids = NULL;
        *n_ids = 0;
        return hf_encode(t, text, add_special_tokens, 0, 0, ids, n_ids, err);
    }
    return tokenizer_encode(t, text, add_special_tokens, 0, ids, n_ids, err);
}

int tokenizer_is_special(const Tokenizer *t, int id) {
    if (!t) return 0;
    if (t->kind == TOKENIZER_HF_BPE && t->hf) return hf_is_special(t, id);
    return t->kind == TOKENIZER_LLAMA2C && id >= 0 && id < t->vocab_size &&
           (id == t->bos_id || id == t->eos_id || id == LLAMA2C_UNK_ID);
}

int tokenizer_load_hf(Tokenizer *t, const char *json_text, size_t json_len, const char *config_text,
                      const char *source, CkError *err) {
    return hf_load(t, json_text, json_len, config_text, source, err);
}

/* Counts the complete records of a llama2.c tokenizer.bin image; *exact tells whether the
 * data ends right after the last of them. */
static int count_llama2c_records(const unsigned char *p, size_t size, int *exact) {
    size_t off = HEADER_BYTES;
    int n = 0;
    while (size >= off && size - off >= RECORD_HEADER_BYTES && n < MAX_VOCAB_SIZE) {
        int32_t len = read_i32le(p + off + 4);
        if (len < 0 || (size_t)len > size - off - RECORD_HEADER_BYTES) break;
        off += RECORD_HEADER_BYTES + (size_t)len;
        n++;
    }
    *exact = off == size;
    return n;
}

/* A tokenizer.bin starts with its int32 max_token_length, a small number: a zero byte among
 * its first 4 bytes. A JSON text has none (NUL is not JSON), so this tells the two apart. */
static int looks_like_llama2c(const void *data, size_t size) {
    return size > 0 && memchr(data, '\0', size < 4 ? size : 4) != NULL;
}

/* A tokenizer.bin image, its vocabulary size being the number of records it holds. */
static int load_llama2c_image(Tokenizer *t, const unsigned char *data, size_t size,
                              const char *source, CkError *err) {
    int exact, n = count_llama2c_records(data, size, &exact);
    if (n < LLAMA2C_BYTE_BASE && exact && size >= HEADER_BYTES)
        return ck_fail(err,
                       "%s: a llama2.c tokenizer.bin with %d record%s; it needs at least %d "
                       "(<unk>, BOS, EOS)",
                       source, n, n == 1 ? "" : "s", LLAMA2C_BYTE_BASE);
    /* a record that does not fit is the next one: the loader names what is wrong with it */
    if (!exact) n++;
    if (n < LLAMA2C_BYTE_BASE) n = LLAMA2C_BYTE_BASE;
    if (tokenizer_load_llama2c(t, data, size, n, err) != 0) return ck_wrap(err, "%s", source);
    return 0;
}

int tokenizer_load(Tokenizer *t, const void *data, size_t size, const char *config_text,
                   const char *source, CkError *err) {
    memset(t, 0, sizeof *t);
    if (!source) source = "tokenizer";
    if (size == 0)
        return ck_fail(err, "%s: empty file: neither a tokenizer.json nor a llama2.c tokenizer.bin",
                       source);
    if (looks_like_llama2c(data, size)) return load_llama2c_image(t, data, size, source, err);
    const size_t bad = utf8_first_invalid(data, size);
    if (bad == size) return hf_load(t, data, size, config_text, source, err);
    const unsigned char *bytes = data;
    int32_t max_len = size >= 4 ? read_i32le(bytes) : 0;
    return ck_fail(err,
                   "%s: neither a tokenizer.json (not UTF-8 text: byte %zu is 0x%02x) nor a "
                   "llama2.c tokenizer.bin (its max_token_length would be %d)",
                   source, bad, bytes[bad], (int)max_len);
}

int tokenizer_open(Tokenizer *t, const char *path, CkError *err) {
    memset(t, 0, sizeof *t);
    if (!path) return ck_fail(err, "tokenizer: no path");
    char file[4096];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(file, sizeof file, "%s/tokenizer.json", path);
        if (access(file, F_OK) != 0) {
            snprintf(file, sizeof file, "%s/tokenizer.bin", path);
            if (access(file, F_OK) != 0) {
                return ck_fail(err, "%s: no tokenizer.json or tokenizer.bin in this folder", path);
            }
        }
    } else if (snprintf(file, sizeof file, "%s", path) >= (int)sizeof file) {
        return ck_fail(err, "%.100s...: path too long", path);
    }
    size_t size;
    char *data = read_whole_file(file, &size, err);
    if (!data) return -1;
    /* tokenizer_config.json beside a tokenizer.json, when there is one */
    char *config = NULL;
    if (size > 0 && !looks_like_llama2c(data, size)) {
        char config_path[4200];
        const char *slash = strrchr(file, '/');
        snprintf(config_path, sizeof config_path, "%.*stokenizer_config.json",
                 slash ? (int)(slash - file + 1) : 0, file);
        size_t config_size;
        if (access(config_path, F_OK) == 0 &&
            !(config = read_whole_file(config_path, &config_size, err))) {
            free(data);
            return -1;
        }
    }
    int rc = tokenizer_load(t, data, size, config, file, err);
    free(config);
    free(data);
    return rc;
}
