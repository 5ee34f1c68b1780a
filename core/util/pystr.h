/* pystr.h — the Python str methods that benchmark preprocessing uses (lm-evaluation-harness
 * strips and capitalizes texts), on UTF-8 text, so that prompts come out byte for byte. */
#ifndef CK_PYSTR_H
#define CK_PYSTR_H

#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

/* Python's str.isspace() for one code point: Unicode White_Space plus U+001C..U+001F. */
int pystr_is_space(uint32_t cp);

/* Python's s.strip() with no argument on valid UTF-8 s[0..n): sets *start and *len to the part
 * left once white space (pystr_is_space) is removed from both ends. */
void pystr_strip(const char *s, size_t n, size_t *start, size_t *len);

/* Appends Python's s.capitalize() of valid UTF-8 s[0..n) to out: the first character in title
 * case, the rest in lower case, with Python's full mappings ("ß" -> "Ss", "İ" -> "i̇"). Exact
 * for ASCII, Latin-1, Latin Extended-A, the paired letters of Latin Extended-B, the Greek
 * letters U+0386..U+03CE and Cyrillic U+0400..U+052F; other characters are copied unchanged,
 * and Σ becomes σ also where Python writes a final ς. Returns 0, or -1 when out of memory. */
int pystr_capitalize(const char *s, size_t n, StrBuf *out);

#endif
