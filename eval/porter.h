/* porter.h — the Porter (1980) suffix-stripping stemmer in the variant that Google's
 * rouge-score package gets: NLTK's PorterStemmer in its default NLTK_EXTENSIONS mode (Porter's
 * published algorithm plus Martin Porter's later fixes and NLTK's own; see eval/ROUGE.md). */
#ifndef CK_PORTER_H
#define CK_PORTER_H

#include <stddef.h>

/* Stems the lowercase word w[0..n) in place and returns the stem's length, which is never
 * more than n (w is not NUL-terminated by this function). Words of one or two letters are
 * returned unchanged, as NLTK does. Letters other than a-z (digits) count as consonants. */
size_t porter_stem(char *w, size_t n);

#endif
