/* utf8.h — the one UTF-8 module: validation by Unicode's definition (no overlong forms, no
 * surrogates, nothing above U+10FFFF), decoding, encoding and lossy repair. */
#ifndef CK_UTF8_H
#define CK_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

#define UTF8_REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD, 3 bytes */

/* Length of the character whose lead byte is c, for text already known to be valid. */
size_t utf8_char_len(unsigned char c);

/* Examines s[0..left) (left >= 1): returns n > 0 when it starts with a well-formed n-byte
 * character, else -k where k >= 1 is the length of the maximal ill-formed prefix, which one
 * U+FFFD replaces in a lossy conversion (the "maximal subpart" rule of Unicode §3.9 that
 * Rust's from_utf8_lossy and Python's decode(errors="replace") follow). */
int utf8_scan(const unsigned char *s, size_t left);

/* Returns the offset of the first byte that is not part of well-formed UTF-8, or len. */
size_t utf8_first_invalid(const char *s, size_t len);

/* 1 when s[0..len) is well-formed UTF-8. */
int utf8_valid(const char *s, size_t len);

/* Decodes the well-formed n-byte character at s. */
uint32_t utf8_decode(const unsigned char *s, size_t n);

/* Writes code point cp as UTF-8 into out (4 bytes of room); returns its length. */
size_t utf8_encode(uint32_t cp, char *out);

/* Appends s[0..n) to out with every ill-formed sequence replaced by one U+FFFD; returns 0,
 * or -1 when out of memory. */
int utf8_put_lossy(StrBuf *out, const char *s, size_t n);

/* The length of the longest prefix of s[0..n) that does not end inside a character: a cut
 * at that length never splits a multi-byte sequence (for streaming output). */
size_t utf8_complete_prefix(const char *s, size_t n);

/* Number of code points of the NUL-terminated text s, as Python's len(str) counts them (the
 * unit of acc_norm and of AlpacaEval's length control): the bytes that are not continuation
 * bytes (10xxxxxx); ill-formed bytes count as the lead bytes they are. */
size_t utf8_length(const char *s);

/* Rust's char::is_whitespace: the Unicode White_Space property. */
int utf8_is_white_space(uint32_t cp);

#endif
