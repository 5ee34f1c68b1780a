/* tokenizer_hf_decode.c — ids to text: the ids' tokens (added tokens first, special ones
 * dropped when asked) go through the decoder chain (Replace, ByteFallback, Fuse, Strip,
 * ByteLevel, Metaspace) over the list of token strings, exactly as the reference's
 * decode_chain does; and the streaming form, one precomputed piece per id. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_hf_internal.h"
#include "util/utf8.h"

/* Rust's from_str_radix, which the reference uses, also takes "+F" for the two characters. */
int hf_is_byte_token(const char *s, size_t n, int *byte) {
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
    StrBuf text;
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
    l->off[l->n] = l->text.n;
    l->len[l->n] = n;
    l->n++;
    return strbuf_put(&l->text, s, n);
}

/* Ends the last token at the current end of the text (after appending to it). */
static void tl_close(TokList *l) {
    l->len[l->n - 1] = l->text.n - l->off[l->n - 1];
}

static void tl_free(TokList *l) {
    strbuf_free(&l->text);
    free(l->off);
    free(l->len);
    memset(l, 0, sizeof *l);
}

static const char *tl_tok(const TokList *l, size_t i) {
    return hf_bytes(&l->text) + l->off[i];
}

/* Replace: each token with every match replaced. */
static int replace_step(const Step *st, pcre2_match_data *md, RangeVec *tmp, const TokList *in,
                        TokList *out, CkError *err) {
    for (size_t i = 0; i < in->n; i++) {
        if (tl_push(out, "", 0) != 0) return -1;
        if (hf_replace_all(&st->re, md, tmp, tl_tok(in, i), in->len[i], st->text, st->text_len,
                           &out->text, err) != 0)
            return -1;
        tl_close(out);
    }
    return 0;
}

/* ByteFallback: runs of <0xNN> tokens become their text when they form valid UTF-8, else one
 * U+FFFD per byte token, as the reference does. */
static int byte_fallback_step(const TokList *in, TokList *out) {
    StrBuf bytes = {0};
    int rc = 0;
    for (size_t i = 0; i <= in->n && rc == 0; i++) {
        int byte;
        if (i < in->n && hf_is_byte_token(tl_tok(in, i), in->len[i], &byte)) {
            char c = (char)byte;
            rc = strbuf_put(&bytes, &c, 1);
            continue;
        }
        if (bytes.n > 0) {
            if (utf8_valid(bytes.p, bytes.n)) {
                rc = tl_push(out, bytes.p, bytes.n);
            } else {
                for (size_t k = 0; k < bytes.n && rc == 0; k++) {
                    rc = tl_push(out, UTF8_REPLACEMENT, 3);
                }
            }
            strbuf_clear(&bytes);
        }
        if (i < in->n && rc == 0) rc = tl_push(out, tl_tok(in, i), in->len[i]);
    }
    strbuf_free(&bytes);
    return rc;
}

/* Strip: up to start / stop copies of the content character off each token's ends. */
static int strip_step(const Step *st, const TokList *in, TokList *out) {
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
}

/* ByteLevel: all tokens' bytes together, then one lossy UTF-8 conversion: a character split
 * across tokens is whole again, a cut one becomes U+FFFD. A token with a character outside
 * the byte alphabet stands for its own UTF-8. */
static int byte_level_step(const HfTokenizer *hf, const TokList *in, TokList *out) {
    StrBuf bytes = {0};
    int rc = 0;
    for (size_t i = 0; i < in->n && rc == 0; i++) {
        const char *s = tl_tok(in, i);
        size_t n = in->len[i], mark = bytes.n;
        for (size_t k = 0; k < n && rc == 0;) {
            size_t cl = utf8_char_len((unsigned char)s[k]);
            uint32_t cp = utf8_decode((const unsigned char *)s + k, cl);
            if (cp >= HF_BYTE_LEVEL_CP_END || hf->bl_dec[cp] < 0) {
                bytes.n = mark; /* the put below ends the bytes again */
                rc = strbuf_put(&bytes, s, n);
                break;
            }
            char c = (char)hf->bl_dec[cp];
            rc = strbuf_put(&bytes, &c, 1);
            k += cl;
        }
    }
    if (rc == 0) rc = tl_push(out, "", 0);
    if (rc == 0) rc = utf8_put_lossy(&out->text, hf_bytes(&bytes), bytes.n);
    if (rc == 0) tl_close(out);
    strbuf_free(&bytes);
    return rc;
}

/* Metaspace: replacement characters become spaces, except that the first token loses all of
 * its own (unless the scheme is "never"). */
static int metaspace_step(const Step *st, const TokList *in, TokList *out) {
    for (size_t i = 0; i < in->n; i++) {
        const char *s = tl_tok(in, i);
        size_t n = in->len[i];
        if (tl_push(out, "", 0) != 0) return -1;
        for (size_t k = 0; k < n;) {
            size_t cl = utf8_char_len((unsigned char)s[k]);
            int rc = 0;
            if (cl == st->rep_len && !memcmp(s + k, st->rep, cl)) {
                if (i != 0 || st->scheme == PREPEND_NEVER) rc = strbuf_put(&out->text, " ", 1);
            } else {
                rc = strbuf_put(&out->text, s + k, cl);
            }
            if (rc != 0) return -1;
            k += cl;
        }
        tl_close(out);
    }
    return 0;
}

/* One decoder step from `in` into the empty `out`. */
static int decode_step(const HfTokenizer *hf, const Step *st, pcre2_match_data *md, RangeVec *tmp,
                       const TokList *in, TokList *out, CkError *err) {
    switch (st->kind) {
    case STEP_REPLACE:
        return replace_step(st, md, tmp, in, out, err);
    case STEP_BYTE_FALLBACK:
        return byte_fallback_step(in, out);
    case STEP_FUSE: /* all tokens become one */
        if (tl_push(out, "", 0) != 0) return -1;
        if (strbuf_put(&out->text, hf_bytes(&in->text), in->text.n) != 0) return -1;
        tl_close(out);
        return 0;
    case STEP_STRIP:
        return strip_step(st, in, out);
    case STEP_BYTE_LEVEL:
        return byte_level_step(hf, in, out);
    case STEP_METASPACE:
        return metaspace_step(st, in, out);
    default:
        return ck_fail(err, "tokenizer: internal error: decoder step %d", (int)st->kind);
    }
}

/* Runs the decoder over tokens toks[0..n) and appends the text to out. */
static int decode_steps(const HfTokenizer *hf, pcre2_match_data *md, const char **toks,
                        const size_t *lens, int n, StrBuf *out, CkError *err) {
    if (!hf->has_decoder) {
        /* No decoder: the reference joins the tokens with spaces. */
        for (int i = 0; i < n; i++) {
            if ((i > 0 && strbuf_put(out, " ", 1) != 0) || strbuf_put(out, toks[i], lens[i]) != 0)
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
        strbuf_clear(&b.text);
        if (decode_step(hf, &hf->dec.p[k], md, &tmp, &a, &b, err) != 0) goto done;
        TokList t = a;
        a = b;
        b = t;
    }
    if (strbuf_put(out, hf_bytes(&a.text), a.text.n) != 0) goto done;
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
    StrBuf out = {0};
    char *result = NULL;
    if (!toks || !lens || !md) goto done;
    int k = 0;
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        if (id < 0 || id >= hf->n_ids || hf->dlen[id] < 0) continue;
        if (skip_special && hf->special[id]) continue;
        toks[k] = hf_arena_str(hf, hf->doff[id]);
        lens[k++] = (size_t)hf->dlen[id];
    }
    CkError err;
    if (decode_steps(hf, md, toks, lens, k, &out, &err) != 0) goto done;
    if (len) *len = out.n;
    result = strbuf_take(&out);
done:
    free(toks);
    free(lens);
    pcre2_match_data_free(md);
    strbuf_free(&out);
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
    const char *p = hf_arena_str(hf, hf->poff[id]);
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
