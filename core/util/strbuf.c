/* strbuf.c — append with doubling growth. */
#include "util/strbuf.h"

#include <stdlib.h>
#include <string.h>

int strbuf_put(StrBuf *b, const void *s, size_t k) {
    if (b->n + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + k + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    if (k) memcpy(b->p + b->n, s, k);
    b->n += k;
    b->p[b->n] = '\0';
    return 0;
}

int strbuf_puts(StrBuf *b, const char *s) {
    return strbuf_put(b, s, strlen(s));
}

void strbuf_free(StrBuf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}
