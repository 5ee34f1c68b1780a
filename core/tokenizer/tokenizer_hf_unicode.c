/* tokenizer_hf_unicode.c — the Unicode normalizers of tokenizer.json (NFC, NFD, NFKC, NFKD;
 * Qwen2/2.5/3 use NFC) through utf8proc, Debian's libutf8proc: its composition and
 * decomposition tables follow the Unicode standard, as the Rust unicode-normalization crate
 * behind the reference does, so cutkit keeps no Unicode tables of its own. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tokenizer_hf_internal.h"

int hf_unicode_form(const char *type) {
    if (!strcmp(type, "NFC")) return UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    if (!strcmp(type, "NFD")) return UTF8PROC_STABLE | UTF8PROC_DECOMPOSE;
    if (!strcmp(type, "NFKC")) return UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    if (!strcmp(type, "NFKD")) return UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
    return 0;
}

int hf_unicode_normalize(int options, const char *s, size_t len, StrBuf *out, CkError *err) {
    /* ASCII is the same in every form: most text takes this path, with no allocation */
    size_t i = 0;
    while (i < len && (unsigned char)s[i] < 0x80) i++;
    if (i == len) return strbuf_put(out, s, len) == 0 ? 0 : ck_fail(err, "out of memory");
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &mapped,
                                      (utf8proc_option_t)options);
    if (n < 0) {
        free(mapped);
        return ck_fail(err, "tokenizer: Unicode normalization: %s", utf8proc_errmsg(n));
    }
    int rc = strbuf_put(out, mapped, (size_t)n) == 0 ? 0 : ck_fail(err, "out of memory");
    free(mapped);
    return rc;
}
