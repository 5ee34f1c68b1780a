/* termsafe.c — see termsafe.h. */
#include "util/termsafe.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

/* The code points a terminal acts on or reorders by instead of showing. */
static int unsafe_code_point(uint32_t cp, TermsafeLines lines) {
    if (cp == '\t') return 0;
    if (cp == '\n') return lines == TERMSAFE_ONE_LINE;
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

/* The escape of one character (a code point, or an ill-formed byte when cp is -1 and byte is
 * set), as C would write it: \n, \r, \xNN for ASCII controls and bytes, \uNNNN above. */
static int put_escape(StrBuf *b, int64_t cp, unsigned char byte) {
    char buf[16];
    if (cp < 0)
        snprintf(buf, sizeof buf, "\\x%02x", byte);
    else if (cp == '\n')
        snprintf(buf, sizeof buf, "\\n");
    else if (cp == '\r')
        snprintf(buf, sizeof buf, "\\r");
    else if (cp < 0x80)
        snprintf(buf, sizeof buf, "\\x%02x", (unsigned)cp);
    else
        snprintf(buf, sizeof buf, "\\u%04x", (unsigned)cp);
    return strbuf_puts(b, buf);
}

int termsafe_put(StrBuf *b, const char *s, size_t n, TermsafeLines lines) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, clean_from = 0;
    /* runs of safe characters are copied at once */
    while (i < n) {
        const int len = utf8_scan(u + i, n - i);
        const size_t k = len > 0 ? (size_t)len : 1;
        const int64_t cp = len > 0 ? (int64_t)utf8_decode(u + i, k) : -1;
        if (cp >= 0 && !unsafe_code_point((uint32_t)cp, lines)) {
            i += k;
            continue;
        }
        if (strbuf_put(b, s + clean_from, i - clean_from) != 0 || put_escape(b, cp, u[i]) != 0)
            return -1;
        i += k;
        clean_from = i;
    }
    return strbuf_put(b, s + clean_from, n - clean_from);
}

int termsafe_put_json(StrBuf *b, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, clean_from = 0;
    while (i < n) {
        const int len = utf8_scan(u + i, n - i);
        const size_t k = len > 0 ? (size_t)len : 1;
        const uint32_t cp = len > 0 ? utf8_decode(u + i, k) : 0xFFFD;
        /* JSON itself needs every code point below 0x20 escaped, tab included */
        if (len > 0 && cp != '"' && cp != '\\' && cp >= 0x20 &&
            !unsafe_code_point(cp, TERMSAFE_ONE_LINE)) {
            i += k;
            continue;
        }
        char buf[16];
        if (cp == '"' || cp == '\\')
            snprintf(buf, sizeof buf, "\\%c", (char)cp);
        else if (cp == '\n')
            snprintf(buf, sizeof buf, "\\n");
        else if (cp == '\r')
            snprintf(buf, sizeof buf, "\\r");
        else if (cp == '\t')
            snprintf(buf, sizeof buf, "\\t");
        else
            snprintf(buf, sizeof buf, "\\u%04x", (unsigned)cp);
        if (strbuf_put(b, s + clean_from, i - clean_from) != 0 || strbuf_puts(b, buf) != 0)
            return -1;
        i += k;
        clean_from = i;
    }
    return strbuf_put(b, s + clean_from, n - clean_from);
}

int termsafe_is_clean(const char *s, size_t n, TermsafeLines lines) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        const int len = utf8_scan(u + i, n - i);
        if (len <= 0 || unsafe_code_point(utf8_decode(u + i, (size_t)len), lines)) return 0;
        i += (size_t)len;
    }
    return 1;
}

static int write_safe(FILE *f, const char *s, TermsafeLines lines) {
    const size_t n = strlen(s);
    if (termsafe_is_clean(s, n, lines)) return fputs(s, f) < 0 ? EOF : 0;
    StrBuf b = {0};
    int rc = termsafe_put(&b, s, n, lines);
    /* out of memory: a placeholder rather than the raw text */
    if (rc != 0)
        rc = fputs("(unprintable text)", f) < 0 ? EOF : 0;
    else
        rc = fwrite(b.p, 1, b.n, f) == b.n ? 0 : EOF;
    strbuf_free(&b);
    return rc;
}

int termsafe_fputs(FILE *f, const char *s) {
    return write_safe(f, s, TERMSAFE_MULTI_LINE);
}

int termsafe_fputs_line(FILE *f, const char *s) {
    return write_safe(f, s, TERMSAFE_ONE_LINE);
}
