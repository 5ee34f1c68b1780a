/* strbuf.h — the one growable byte buffer: stays NUL-terminated, for building texts (stories,
 * prompts, JSON lines, token pieces) piece by piece without computing their length first. */
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

/* Appends printf-formatted text; returns 0, or -1 when out of memory (b is then unchanged). */
int strbuf_printf(StrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Makes b hold "" again, keeping its memory for reuse. */
void strbuf_clear(StrBuf *b);

/* Ensures room for extra more bytes (and the NUL) without appending; returns 0 or -1. */
int strbuf_reserve(StrBuf *b, size_t extra);

/* Hands b's bytes to the caller (malloc'd, NUL-terminated, "" when b is empty; NULL when out
 * of memory) and zeroes b. */
char *strbuf_take(StrBuf *b);

/* Releases b's bytes and zeroes it. */
void strbuf_free(StrBuf *b);

#endif
