/* tokenizer_hf_encode.c — text to ids: the added tokens are cut out of the raw text (the
 * "normalized": false ones) and, after the normalizer, out of each remaining piece (the
 * "normalized": true ones), leftmost-longest with lstrip / rstrip / single_word; the rest is
 * pre-tokenized into words (tokenizer_hf_pretok.c), each word merged by the BPE model, and
 * with add_special_tokens the post-processor's tokens go around it all. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_hf_internal.h"
#include "util/utf8.h"

/* Texts longer than this are refused so that symbol and heap counts stay inside int. */
static const size_t MAX_TEXT_BYTES = (size_t)INT_MAX / 8;

/* ---- added tokens: a byte trie, matched leftmost-longest ------------------------------------- */

int hf_trie_add(Trie *tr, const char *s, size_t n, int token) {
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

/* ---- BPE: merges by rank over a linked list of symbols, through a heap ----------------------- */

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
    if (right < 0 || !hf_pair_find(&e->hf->merges, s[left].id, s[right].id, &rank, &merged)) return;
    /* At most n - 1 pairs at the start and two per merge: 3n always fits. */
    if (e->heap_len < e->heap_cap) heap_push(e, (uint64_t)rank << 32 | (uint32_t)left, merged);
}

static void add_symbol(Symbol *sym, int *n, int id, int len) {
    sym[*n] = (Symbol){id, *n - 1, -1, len};
    if (*n > 0) sym[*n - 1].next = *n;
    (*n)++;
}

/* Fills e->sym with one symbol per character of s[0..len): its token, else its <0xNN> byte
 * tokens with byte_fallback, else <unk> (fused runs with fuse_unk; dropped without an
 * unk_token, as in the reference). Returns the symbol count. */
static int word_symbols(Encoder *e, const char *s, size_t len) {
    const HfTokenizer *hf = e->hf;
    Symbol *sym = e->sym;
    int n = 0, unk_len = 0, unk_pending = 0;
    for (size_t i = 0; i < len;) {
        size_t cl = utf8_char_len((unsigned char)s[i]);
        if (cl > len - i) cl = len - i;
        int id = hf_char_id(hf, s + i, cl);
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
    return n;
}

/* Merges the n symbols of e->sym: the pair with the lowest rank first, the leftmost of equal
 * ranks. */
static void merge_symbols(Encoder *e, int n) {
    const HfTokenizer *hf = e->hf;
    Symbol *sym = e->sym;
    e->heap_len = 0;
    for (int i = 0; i + 1 < n; i++) {
        int rank, merged;
        if (hf_pair_find(&hf->merges, sym[i].id, sym[i + 1].id, &rank, &merged)) {
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
        if (!hf_pair_find(&hf->merges, sym[pos].id, sym[right].id, &rank, &merged) ||
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
}

/* With ignore_merges, a word that is a token is emitted whole. */
int hf_bpe_word(Encoder *e, const char *s, size_t len) {
    const HfTokenizer *hf = e->hf;
    if (hf->ignore_merges) {
        int id = hf_vocab_find(hf, s, len);
        if (id >= 0) return hf_intvec_push(&e->out, id) == 0 ? 0 : ck_fail(e->err, "out of memory");
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
    int n = word_symbols(e, s, len);
    if (n == 0) return 0;
    merge_symbols(e, n);
    /* Symbol 0 is never absorbed (only right neighbours are). */
    for (int i = 0; i >= 0; i = e->sym[i].next) {
        if (hf_intvec_push(&e->out, e->sym[i].id) != 0) return ck_fail(e->err, "out of memory");
    }
    return 0;
}

/* ---- the text: added tokens cut out, the rest normalized and pre-tokenized ------------------- */

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
                if (!utf8_is_white_space(utf8_decode((const unsigned char *)s + c, left - c)))
                    break;
                left = c;
            }
            start = left > start_offset ? left : start_offset;
        }
        if (a->rstrip) {
            while (stop < len) {
                size_t cl = utf8_char_len((unsigned char)s[stop]);
                if (!utf8_is_white_space(utf8_decode((const unsigned char *)s + stop, cl))) break;
                stop += cl;
            }
        }
        if (start_offset < start && hf_ranges_push(out, start_offset, start, -1) != 0) goto oom;
        if (hf_ranges_push(out, start, stop, a->id) != 0) goto oom;
        start_offset = stop;
    }
    if (start_offset < len && hf_ranges_push(out, start_offset, len, -1) != 0) goto oom;
    return 0;
oom:
    return ck_fail(e->err, "out of memory");
}

/* Encodes a piece of raw text that holds no raw added token. */
static int encode_piece(Encoder *e, const char *s, size_t len, int at_start) {
    const char *ns;
    size_t nlen;
    if (hf_normalize(e->hf, e->md, &e->tmp, s, len, e->norm, &ns, &nlen, e->err) != 0) return -1;
    if (added_splits(e, &e->hf->norm_trie, ns, nlen, &e->sub) != 0) return -1;
    for (size_t i = 0; i < e->sub.len; i++) {
        const Range *r = &e->sub.p[i];
        if (r->flag >= 0) {
            if (hf_intvec_push(&e->out, r->flag) != 0) return ck_fail(e->err, "out of memory");
        } else if (hf_pre_tokenize(e, 0, ns + r->start, r->end - r->start,
                                   at_start && r->start == 0) != 0) {
            return -1;
        }
    }
    return 0;
}

static int push_all(Encoder *e, const IntVec *v) {
    for (size_t i = 0; i < v->len; i++) {
        if (hf_intvec_push(&e->out, v->p[i]) != 0) return ck_fail(e->err, "out of memory");
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
    if (add_bos && t->bos_id >= 0 && hf_intvec_push(&e.out, t->bos_id) != 0) goto out_of_memory;
    if (add_special && push_all(&e, &hf->prefix) != 0) goto done;
    if (added_splits(&e, &hf->raw_trie, text, len, &e.top) != 0) goto done;
    for (size_t i = 0; i < e.top.len; i++) {
        const Range *r = &e.top.p[i];
        if (r->flag >= 0) {
            if (hf_intvec_push(&e.out, r->flag) != 0) goto out_of_memory;
        } else if (encode_piece(&e, text + r->start, r->end - r->start, r->start == 0) != 0) {
            goto done;
        }
    }
    if (add_special && push_all(&e, &hf->suffix) != 0) goto done;
    if (add_eos && t->eos_id >= 0 && hf_intvec_push(&e.out, t->eos_id) != 0) goto out_of_memory;
    if (e.out.len > (size_t)INT_MAX) goto out_of_memory;
    if (e.out.len == 0 && hf_intvec_push(&e.out, 0) == 0) e.out.len = 0; /* a pointer to free */
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
    for (size_t i = 0; e.pbuf && i < n_bufs; i++) strbuf_free(&e.pbuf[i]);
    for (size_t i = 0; e.pr && i < n_bufs; i++) free(e.pr[i].p);
    free(e.pbuf);
    free(e.pr);
    strbuf_free(&e.norm[0]);
    strbuf_free(&e.norm[1]);
    free(e.top.p);
    free(e.sub.p);
    free(e.tmp.p);
    free(e.sym);
    free(e.heap);
    return rc;
}
