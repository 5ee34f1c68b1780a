/* strbuf.c — append with doubling growth. */
#include "util/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int strbuf_reserve(StrBuf *b, size_t extra) {
    if (b->n + extra + 1 <= b->cap) return 0;
    if (extra > (size_t)-1 / 2 - b->n) return -1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int strbuf_put(StrBuf *b, const void *s, size_t k) {
    if (strbuf_reserve(b, k) != 0) return -1;
    if (k) memcpy(b->p + b->n, s, k);
    b->n += k;
    b->p[b->n] = '\0';
    return 0;
}

int strbuf_puts(StrBuf *b, const char *s) {
    return strbuf_put(b, s, strlen(s));
}

int strbuf_printf(StrBuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0 || strbuf_reserve(b, (size_t)k) != 0) return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
    return 0;
}

void strbuf_clear(StrBuf *b) {
    b->n = 0;
    if (b->p) b->p[0] = '\0';
}

char *strbuf_take(StrBuf *b) {
    char *p = b->p ? b->p : strdup("");
    b->p = NULL;
    b->n = b->cap = 0;
    return p;
}

void strbuf_free(StrBuf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}
