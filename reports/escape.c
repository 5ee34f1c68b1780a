/* escape.c — see escape.h. */
#include "reports/escape.h"

#include <string.h>

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when it is not one:
 * overlong forms, surrogates and code points past U+10FFFF are refused, as browsers do. */
static size_t utf8_valid(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return len;
}

void escape_html(FILE *out, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        switch (c) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&#39;", out);
            break;
        case '\t':
        case '\n':
        case '\r':
            fputc((int)c, out);
            break;
        default: {
            size_t len = utf8_valid(p + i, n - i);
            if (len == 0 || c < 0x20 || c == 0x7F) {
                fputs("\xEF\xBF\xBD", out); /* U+FFFD: the byte is not text */
                len = 1;
            } else {
                fwrite(p + i, 1, len, out);
            }
            i += len;
            continue;
        }
        }
        i++;
    }
}

void escape_html_str(FILE *out, const char *s) {
    if (s) escape_html(out, s, strlen(s));
}

/* UTF-8 sequences that LaTeX's default encodings do not typeset, with their replacements. */
static const struct {
    const char *utf8, *latex;
} LATEX_SYMBOLS[] = {
    {"\xC2\xB1", "$\\pm$"},    {"\xCE\xBB", "$\\lambda$"}, {"\xCE\xB1", "$\\alpha$"},
    {"\xCE\xB3", "$\\gamma$"}, {"\xE2\x80\x94", "---"},    {"\xE2\x80\x93", "--"},
    {"\xE2\x88\x92", "$-$"},
};

void escape_latex(FILE *out, const char *s) {
    if (!s) return;
    while (*s) {
        int matched = 0;
        for (size_t k = 0; k < sizeof LATEX_SYMBOLS / sizeof LATEX_SYMBOLS[0]; k++) {
            size_t len = strlen(LATEX_SYMBOLS[k].utf8);
            if (!strncmp(s, LATEX_SYMBOLS[k].utf8, len)) {
                fputs(LATEX_SYMBOLS[k].latex, out);
                s += len;
                matched = 1;
                break;
            }
        }
        if (matched) continue;
        switch (*s) {
        case '\\':
            fputs("\\textbackslash{}", out);
            break;
        case '{':
            fputs("\\{", out);
            break;
        case '}':
            fputs("\\}", out);
            break;
        case '_':
            fputs("\\_", out);
            break;
        case '%':
            fputs("\\%", out);
            break;
        case '&':
            fputs("\\&", out);
            break;
        case '#':
            fputs("\\#", out);
            break;
        case '$':
            fputs("\\$", out);
            break;
        case '~':
            fputs("\\textasciitilde{}", out);
            break;
        case '^':
            fputs("\\textasciicircum{}", out);
            break;
        case '<':
            fputs("\\textless{}", out);
            break;
        case '>':
            fputs("\\textgreater{}", out);
            break;
        case '|':
            fputs("\\textbar{}", out);
            break;
        case '\n':
        case '\r':
        case '\t':
            fputc(' ', out);
            break;
        default:
            fputc(*s, out);
        }
        s++;
    }
}

void escape_markdown(FILE *out, const char *s) {
    if (!s) return;
    for (; *s; s++) {
        if (strchr("\\|*_`<>[]", *s)) {
            fputc('\\', out);
            fputc(*s, out);
        } else if (*s == '\n' || *s == '\r' || *s == '\t') {
            fputc(' ', out);
        } else {
            fputc(*s, out);
        }
    }
}
