/* tokenizer_hf.c — Hugging Face tokenizer.json tokenizers with a BPE model: the state that
 * loading (tokenizer_hf_load.c), pre-tokenization (tokenizer_hf_pretok.c), encoding
 * (tokenizer_hf_encode.c) and decoding (tokenizer_hf_decode.c) share: growable arrays, the
 * string tables, the byte-level alphabet, and hf_free. README.md walks through the pipeline.
 *
 * Choices and known differences from the reference (none of them touches the three fixture
 * files):
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
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_hf_internal.h"
#include "util/hash.h"

/* ---- growable arrays ------------------------------------------------------------------------- */

int hf_intvec_push(IntVec *v, int x) {
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

int hf_ranges_push(RangeVec *v, size_t start, size_t end, int flag) {
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

/* ---- string tables --------------------------------------------------------------------------- */

int hf_strtab_init(StrTable *t, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    t->slots = malloc(cap * sizeof *t->slots);
    if (!t->slots) return -1;
    for (size_t i = 0; i < cap; i++) t->slots[i] = -1;
    t->mask = cap - 1;
    return 0;
}

size_t hf_strtab_slot(const StrTable *t, const char *base, const uint32_t *off, const int *len,
                      const char *s, size_t n) {
    size_t h = (size_t)hash_bytes(s, n) & t->mask;
    for (;; h = (h + 1) & t->mask) {
        int k = t->slots[h];
        if (k < 0) return h;
        if ((size_t)len[k] == n && memcmp(base + off[k], s, n) == 0) return h;
    }
}

/* ---- the tokenizer --------------------------------------------------------------------------- */

static void steps_free(StepList *l) {
    for (int i = 0; i < l->n; i++) {
        hf_regex_free(&l->p[i].re);
        free(l->p[i].text);
    }
    free(l->p);
    memset(l, 0, sizeof *l);
}

void hf_free(HfTokenizer *hf) {
    if (!hf) return;
    strbuf_free(&hf->arena);
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
    hf_regex_free(&hf->word_re);
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
void hf_init_byte_level(HfTokenizer *hf) {
    for (int cp = 0; cp < HF_BYTE_LEVEL_CP_END; cp++) hf->bl_dec[cp] = -1;
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

int hf_vocab_find(const HfTokenizer *hf, const char *s, size_t n) {
    return hf->vocab.slots[hf_strtab_slot(&hf->vocab, hf->arena.p, hf->voff, hf->vlen, s, n)];
}

int hf_added_find(const HfTokenizer *hf, const char *s, size_t len) {
    return hf->added_table
        .slots[hf_strtab_slot(&hf->added_table, hf->arena.p, hf->added_off, hf->added_len, s, len)];
}
