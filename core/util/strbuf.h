/* strbuf.h — a growable byte buffer that stays NUL-terminated: for building texts (stories,
 * prompts, JSON lines) piece by piece without computing their length first. */
#ifndef CK_STRBUF_H
#define CK_STRBUF_H

#include <stddef.h>

typedef struct {
    char *p;    /* the bytes, NUL-terminated once anything was put (owned; NULL when empty) */
    size_t n;   /* bytes in use, the NUL not counted */
    size_t cap; /* bytes allocated */
} StrBuf;

/* Appends k bytes of s (which may hold NULs) to b, growing it by doubling; returns 0, or -1
 * when out of memory (b is then unchanged). strbuf_put(b, "", 0) makes b an empty string. */
int strbuf_put(StrBuf *b, const void *s, size_t k);

/* Appends the NUL-terminated string s (strbuf_put of its length). */
int strbuf_puts(StrBuf *b, const char *s);

/* Releases b's bytes and zeroes it. */
void strbuf_free(StrBuf *b);

#endif
