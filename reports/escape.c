/* escape.c — see escape.h. */
#include "reports/escape.h"

#include <string.h>

#include "util/utf8.h"

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
            /* overlong forms, surrogates and code points past U+10FFFF are refused, as
             * browsers do; each byte of an ill-formed sequence gets its own U+FFFD */
            int len = utf8_scan(p + i, n - i);
            if (len < 0 || c < 0x20 || c == 0x7F) {
                fputs(UTF8_REPLACEMENT, out); /* the byte is not text */
                len = 1;
            } else {
                fwrite(p + i, 1, (size_t)len, out);
            }
            i += (size_t)len;
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
    {"\xC2\xB1", "$\\pm$"},    {"\xCE\xBB", "$\\lambda$"},      {"\xCE\xB1", "$\\alpha$"},
    {"\xCE\xB3", "$\\gamma$"}, {"\xE2\x80\x94", "---"},         {"\xE2\x80\x93", "--"},
    {"\xE2\x88\x92", "$-$"},   {"\xE2\x80\xA0", "$^\\dagger$"}, {"\xE2\x80\xA1", "$^\\ddagger$"},
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
