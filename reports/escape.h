/* escape.h — text into HTML/XML, LaTeX and Markdown table cells, so that a run label or a
 * token's text can never change the structure of the page or table it is written into. */
#ifndef CK_ESCAPE_H
#define CK_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

/* Writes the n bytes of s to out as HTML/XML text, safe in element content and in quoted
 * attribute values: & < > " ' become entities, invalid UTF-8 and control characters other
 * than tab, newline and carriage return become U+FFFD (they are not allowed in XML). */
void escape_html(FILE *out, const char *s, size_t n);

/* escape_html over a NUL-terminated string (NULL writes nothing). */
void escape_html_str(FILE *out, const char *s);

/* Writes the NUL-terminated s to out as LaTeX text: the ten special characters (\ { } _ % & #
 * $ ~ ^) and < > | get their text-mode forms, ±, λ, α, γ become math symbols, em and en
 * dashes become --- and --, newlines become spaces. */
void escape_latex(FILE *out, const char *s);

/* Writes the NUL-terminated s to out as the text of a GitHub Markdown table cell: | and the
 * characters that start emphasis, code, links or HTML are backslash-escaped, newlines
 * become spaces. */
void escape_markdown(FILE *out, const char *s);

#endif
