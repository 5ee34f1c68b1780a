/* termsafe.h — text from files made safe to print: control characters written as escapes, so
 * that a name, a path or a record quoted in a message cannot move the cursor, retitle the
 * window, rewrite what was printed before or hide part of a line from the reader.
 *
 * Escaped: the C0 controls (U+0000–U+001F, "\x1b" for ESC) but tab, DEL ("\x7f"), the C1
 * controls (U+0080–U+009F, "\u009b"), the bidirectional overrides and isolates (U+202A–U+202E,
 * U+2066–U+2069, which reorder what a terminal shows) and bytes that are not UTF-8 ("\xff").
 * A newline is kept in multi-line text and escaped ("\n") in one-line text. Everything else,
 * backslashes included, is written as it is. */
#ifndef CK_TERMSAFE_H
#define CK_TERMSAFE_H

#include <stddef.h>
#include <stdio.h>

#include "util/strbuf.h"

/* How a newline is treated. */
typedef enum {
    TERMSAFE_ONE_LINE = 0,  /* "\n" escaped: the text stays on its line */
    TERMSAFE_MULTI_LINE = 1 /* newlines kept */
} TermsafeLines;

/* Appends s[0..n) to b with control characters escaped; returns 0, or -1 when out of memory
 * (b then holds a prefix of the escaped text). */
int termsafe_put(StrBuf *b, const char *s, size_t n, TermsafeLines lines);

/* Writes the NUL-terminated s to f with control characters escaped, newlines kept (the
 * multi-line form); returns 0, or EOF on a write error. */
int termsafe_fputs(FILE *f, const char *s);

/* Writes s to f with control characters and newlines escaped (the one-line form). */
int termsafe_fputs_line(FILE *f, const char *s);

/* Appends s[0..n) to b as the inside of a JSON string (no quotes) that a terminal shows
 * safely: '"' and '\\' escaped, tab, newline and carriage return as \t, \n, \r, every other
 * code point termsafe escapes as \uXXXX, and each ill-formed byte as \ufffd (JSON is UTF-8).
 * Returns 0, or -1 when out of memory. */
int termsafe_put_json(StrBuf *b, const char *s, size_t n);

/* 1 when s[0..n) would be written unchanged in the given form (nothing to escape). */
int termsafe_is_clean(const char *s, size_t n, TermsafeLines lines);

#endif
