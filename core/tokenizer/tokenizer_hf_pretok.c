/* tokenizer_hf_pretok.c — the text before the BPE model: regexes (PCRE2 in UTF + UCP mode,
 * JIT-compiled when the library can), the normalizer (Prepend, Replace) and the pre-tokenizer
 * (ByteLevel, Split, Metaspace, in sequence), which cuts a piece of text into words.
 *
 * The reference runs its regexes on Oniguruma with Ruby syntax, so ^ and $ are line anchors
 * here too. */
#include <stdio.h>
#include <string.h>

#include "tokenizer/tokenizer_hf_internal.h"
#include "util/utf8.h"

/* ---- regexes --------------------------------------------------------------------------------- */

void hf_regex_free(Regex *r) {
    pcre2_code_free(r->code);
    r->code = NULL;
}

int hf_regex_compile(Regex *r, const char *pattern, int literal, char *msg, size_t msg_cap) {
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

/* Matches are iterated as the reference iterates them: from the end of the previous match,
 * skipping an empty match right where the previous match ended. */
int hf_find_matches(const Regex *r, pcre2_match_data *md, const char *s, size_t len, RangeVec *out,
                    CkError *err) {
    out->len = 0;
    if (len == 0) return hf_ranges_push(out, 0, 0, 0) == 0 ? 0 : ck_fail(err, "out of memory");
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
        if (prev != ms && hf_ranges_push(out, prev, ms, 0) != 0)
            return ck_fail(err, "out of memory");
        if (hf_ranges_push(out, ms, me, 1) != 0) return ck_fail(err, "out of memory");
        prev = me;
    }
    if (prev != len && hf_ranges_push(out, prev, len, 0) != 0) return ck_fail(err, "out of memory");
    return 0;
}

int hf_replace_all(const Regex *r, pcre2_match_data *md, RangeVec *tmp, const char *s, size_t len,
                   const char *content, size_t content_len, StrBuf *out, CkError *err) {
    if (hf_find_matches(r, md, s, len, tmp, err) != 0) return -1;
    for (size_t i = 0; i < tmp->len; i++) {
        const Range *m = &tmp->p[i];
        int rc = m->flag ? strbuf_put(out, content, content_len)
                         : strbuf_put(out, s + m->start, m->end - m->start);
        if (rc != 0) return ck_fail(err, "out of memory");
    }
    return 0;
}

/* ---- normalizer and pre-tokenizer ------------------------------------------------------------ */

int hf_split_pieces(const RangeVec *in, SplitBehavior behavior, int invert, RangeVec *out) {
    out->len = 0;
    int prev_match = 0;
    if (behavior == SPLIT_MERGED_WITH_NEXT) {
        for (size_t k = in->len; k-- > 0;) {
            const Range *r = &in->p[k];
            int m = r->flag != invert;
            if (m && !prev_match && out->len > 0) {
                out->p[out->len - 1].start = r->start;
            } else if (hf_ranges_push(out, r->start, r->end, 0) != 0) {
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
        } else if (hf_ranges_push(out, r->start, r->end, behavior == SPLIT_REMOVED && m) != 0) {
            return -1;
        }
        prev_match = m;
    }
    return 0;
}

/* ByteLevel: an optional leading space, then (with use_regex) the GPT-2 pattern's matches,
 * each mapped byte by byte to the byte-level alphabet and passed on to step k + 1. */
static int byte_level_step(Encoder *e, int k, const char *s, size_t len, int at_start) {
    const HfTokenizer *hf = e->hf;
    const Step *st = &hf->pre.p[k];
    StrBuf *text = &e->pbuf[2 * k], *mapped = &e->pbuf[2 * k + 1];
    RangeVec *matches = &e->pr[2 * k];
    if (st->add_prefix_space && s[0] != ' ') {
        strbuf_clear(text);
        if (strbuf_put(text, " ", 1) != 0 || strbuf_put(text, s, len) != 0) goto out_of_memory;
        s = text->p;
        len = text->n;
    }
    if (st->use_regex) {
        if (hf_find_matches(&st->re, e->md, s, len, matches, e->err) != 0) return -1;
    } else {
        matches->len = 0;
        if (hf_ranges_push(matches, 0, len, 0) != 0) goto out_of_memory;
    }
    for (size_t i = 0; i < matches->len; i++) {
        const Range *r = &matches->p[i];
        strbuf_clear(mapped);
        if (strbuf_reserve(mapped, 2 * (r->end - r->start)) != 0) goto out_of_memory;
        for (size_t b = r->start; b < r->end; b++) {
            unsigned char c = (unsigned char)s[b];
            memcpy(mapped->p + mapped->n, hf->bl_enc[c], hf->bl_enc_len[c]);
            mapped->n += hf->bl_enc_len[c];
        }
        mapped->p[mapped->n] = '\0';
        if (hf_pre_tokenize(e, k + 1, mapped->p, mapped->n, at_start && r->start == 0) != 0)
            return -1;
    }
    return 0;
out_of_memory:
    return ck_fail(e->err, "out of memory");
}

/* Split: the regex's matches become pieces by the step's behavior; the kept ones go on. */
static int split_step(Encoder *e, int k, const char *s, size_t len, int at_start) {
    const Step *st = &e->hf->pre.p[k];
    RangeVec *matches = &e->pr[2 * k], *pieces = &e->pr[2 * k + 1];
    if (hf_find_matches(&st->re, e->md, s, len, matches, e->err) != 0) return -1;
    if (hf_split_pieces(matches, st->behavior, st->invert, pieces) != 0)
        return ck_fail(e->err, "out of memory");
    for (size_t i = 0; i < pieces->len; i++) {
        const Range *r = &pieces->p[i];
        if (r->flag) continue;
        if (hf_pre_tokenize(e, k + 1, s + r->start, r->end - r->start, at_start && r->start == 0) !=
            0)
            return -1;
    }
    return 0;
}

/* Metaspace: spaces become the replacement character (prepended by the scheme), and with
 * split each replacement character starts a piece of its own. */
static int metaspace_step(Encoder *e, int k, const char *s, size_t len, int at_start) {
    const Step *st = &e->hf->pre.p[k];
    StrBuf *text = &e->pbuf[2 * k];
    RangeVec *matches = &e->pr[2 * k], *pieces = &e->pr[2 * k + 1];
    strbuf_clear(text);
    int prepend = st->scheme == PREPEND_ALWAYS || (st->scheme == PREPEND_FIRST && at_start);
    /* The check for a leading replacement comes after spaces became replacements. */
    int starts_with_rep = (len >= st->rep_len && !memcmp(s, st->rep, st->rep_len)) || (s[0] == ' ');
    if (prepend && !starts_with_rep && strbuf_put(text, st->rep, st->rep_len) != 0)
        goto out_of_memory;
    for (size_t i = 0; i < len; i++) {
        int rc = s[i] == ' ' ? strbuf_put(text, st->rep, st->rep_len) : strbuf_put(text, s + i, 1);
        if (rc != 0) goto out_of_memory;
    }
    const char *t = hf_bytes(text);
    size_t tlen = text->n;
    if (!st->split) return hf_pre_tokenize(e, k + 1, t, tlen, at_start);
    /* Each replacement character is a match, merged with what follows it. */
    matches->len = 0;
    size_t prev = 0;
    for (size_t i = 0; i < tlen;) {
        if (tlen - i >= st->rep_len && !memcmp(t + i, st->rep, st->rep_len)) {
            if (prev != i && hf_ranges_push(matches, prev, i, 0) != 0) goto out_of_memory;
            if (hf_ranges_push(matches, i, i + st->rep_len, 1) != 0) goto out_of_memory;
            i += st->rep_len;
            prev = i;
        } else {
            i += utf8_char_len((unsigned char)t[i]);
        }
    }
    if (prev != tlen && hf_ranges_push(matches, prev, tlen, 0) != 0) goto out_of_memory;
    if (hf_split_pieces(matches, SPLIT_MERGED_WITH_NEXT, 0, pieces) != 0) goto out_of_memory;
    for (size_t i = 0; i < pieces->len; i++) {
        const Range *r = &pieces->p[i];
        if (hf_pre_tokenize(e, k + 1, t + r->start, r->end - r->start, at_start && r->start == 0) !=
            0)
            return -1;
    }
    return 0;
out_of_memory:
    return ck_fail(e->err, "out of memory");
}

/* Past the last step, a piece is a word for the BPE model. Without a pre-tokenizer it may be
 * merged in stretches that start at "▁" (split_at_space; load_sections says why that is exact). */
int hf_pre_tokenize(Encoder *e, int k, const char *s, size_t len, int at_start) {
    const HfTokenizer *hf = e->hf;
    if (len == 0) return 0; /* the reference drops empty splits */
    if (k == hf->pre.n && hf->split_at_space) {
        size_t start = 0;
        for (size_t i = 1; i + 3 <= len; i++) {
            if (!memcmp(s + i, HF_SPACE_MARK, 3) &&
                (i < 3 || memcmp(s + i - 3, HF_SPACE_MARK, 3))) {
                if (hf_bpe_word(e, s + start, i - start) != 0) return -1;
                start = i;
            }
        }
        return hf_bpe_word(e, s + start, len - start);
    }
    if (k == hf->pre.n) return hf_bpe_word(e, s, len);
    switch (hf->pre.p[k].kind) {
    case STEP_BYTE_LEVEL:
        return byte_level_step(e, k, s, len, at_start);
    case STEP_SPLIT:
        return split_step(e, k, s, len, at_start);
    case STEP_METASPACE:
        return metaspace_step(e, k, s, len, at_start);
    default:
        return ck_fail(e->err, "tokenizer: internal error: pre-tokenizer step %d",
                       (int)hf->pre.p[k].kind);
    }
}

/* Each step reads the previous step's output and writes into the other buffer of nb. */
int hf_normalize(const HfTokenizer *hf, pcre2_match_data *md, RangeVec *tmp, const char *s,
                 size_t len, StrBuf nb[2], const char **out, size_t *out_len, CkError *err) {
    const char *cur = s;
    size_t cur_len = len;
    int which = 0;
    for (int k = 0; k < hf->norm.n; k++) {
        const Step *st = &hf->norm.p[k];
        StrBuf *dst = &nb[which];
        strbuf_clear(dst);
        if (st->kind == STEP_PREPEND) {
            if (cur_len == 0) continue; /* an empty string stays empty */
            if (strbuf_put(dst, st->text, st->text_len) != 0 || strbuf_put(dst, cur, cur_len) != 0)
                return ck_fail(err, "out of memory");
        } else if (st->kind == STEP_UNICODE) {
            if (hf_unicode_normalize(st->unicode_options, cur, cur_len, dst, err) != 0) return -1;
        } else if (hf_replace_all(&st->re, md, tmp, cur, cur_len, st->text, st->text_len, dst,
                                  err) != 0) {
            return -1;
        }
        cur = hf_bytes(dst);
        cur_len = dst->n;
        which ^= 1;
    }
    *out = cur;
    *out_len = cur_len;
    return 0;
}
