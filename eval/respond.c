/* respond.c — generation to a string with stop strings (the token callback watches the tail
 * of the text) and UTF-8 repair (validation by util/utf8.h). */
#include "eval/respond.h"

#include <stdlib.h>
#include <string.h>

#include "model/generate.h"
#include "util/strbuf.h"
#include "util/utf8.h"

typedef struct {
    StrBuf text;
    const RespondOptions *opt;
    int oom;
} Collect;

int respond_append_piece(StrBuf *t, const char *piece, size_t len, const char *const *stop,
                         int n_stop) {
    if (strbuf_put(t, piece, len) != 0) return -1;
    size_t cut = t->n;
    for (int i = 0; i < n_stop; i++) {
        const char *s = stop[i];
        size_t k = strlen(s);
        if (k == 0) continue;
        size_t from = t->n >= len + k ? t->n - len - k + 1 : 0;
        const char *hit = memmem(t->p + from, t->n - from, s, k);
        if (hit && (size_t)(hit - t->p) < cut) cut = (size_t)(hit - t->p);
    }
    if (cut == t->n) return 0;
    t->n = cut;
    t->p[cut] = '\0';
    return 1;
}

/* The token callback: appends the piece; a stop string (or running out of memory) ends it. */
static int on_piece(void *ctx, int token, const char *piece, size_t len) {
    (void)token;
    Collect *c = ctx;
    const int rc = respond_append_piece(&c->text, piece, len, c->opt->stop, c->opt->n_stop);
    if (rc < 0) c->oom = 1;
    return rc != 0;
}

char *respond_utf8_clean(const char *s, size_t n) {
    char *out = malloc(3 * n + 1), *w = out; /* each bad byte grows to 3 */
    if (!out) return NULL;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        /* one U+FFFD per byte that starts no well-formed character, and for NUL, which a C
         * string cannot hold */
        int k = utf8_scan(u + i, n - i);
        if (k <= 0 || u[i] == 0) {
            memcpy(w, UTF8_REPLACEMENT, 3);
            w += 3;
            i++;
        } else {
            memcpy(w, s + i, (size_t)k);
            w += k;
            i += (size_t)k;
        }
    }
    *w = '\0';
    return out;
}

uint64_t respond_record_seed(uint64_t seed, int index) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * ((uint64_t)index + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int is_space(char ch) {
    return ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

int respond_generate(const Model *m, const Tokenizer *tok, const char *prompt,
                     const RespondOptions *opt, char **text, int *n_tokens, CkError *err) {
    *text = NULL;
    Collect c = {{0}, opt, 0};
    GenerateOptions g = {opt->max_tokens, opt->temperature, opt->top_p, opt->seed, 1};
    GenerateStats stats;
    int rc = generate_text(m, tok, prompt, &g, on_piece, &c, NULL, &stats, err);
    if (rc == 0 && c.oom) rc = ck_fail(err, "out of memory");
    if (rc != 0) {
        strbuf_free(&c.text);
        return -1;
    }
    const char *p = c.text.p ? c.text.p : "";
    size_t a = 0, b = c.text.n;
    while (a < b && is_space(p[a])) a++;
    while (b > a && is_space(p[b - 1])) b--;
    *text = respond_utf8_clean(p + a, b - a);
    strbuf_free(&c.text);
    if (!*text) return ck_fail(err, "out of memory");
    if (n_tokens) *n_tokens = stats.generated_tokens;
    return 0;
}
