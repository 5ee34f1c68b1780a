/* respond.c — generation to a string with stop strings (the token callback watches the tail
 * of the text) and UTF-8 repair. */
#include "eval/respond.h"

#include <stdlib.h>
#include <string.h>

#include "model/generate.h"

typedef struct {
    char *p;
    size_t n, cap;
    const RespondOptions *opt;
    int oom;
} Collect;

/* Appends a piece; stops generation when a stop string appears. One may span pieces, so the
 * search starts early enough to see one that began in earlier pieces; the text is cut at the
 * earliest hit of any stop string. */
static int on_piece(void *ctx, int token, const char *piece, size_t len) {
    (void)token;
    Collect *c = ctx;
    if (c->n + len + 1 > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        while (cap < c->n + len + 1) cap *= 2;
        char *p = realloc(c->p, cap);
        if (!p) {
            c->oom = 1;
            return 1;
        }
        c->p = p;
        c->cap = cap;
    }
    memcpy(c->p + c->n, piece, len);
    c->n += len;
    c->p[c->n] = '\0';
    size_t cut = c->n;
    for (int i = 0; i < c->opt->n_stop; i++) {
        const char *s = c->opt->stop[i];
        size_t k = strlen(s);
        if (k == 0) continue;
        size_t from = c->n >= len + k ? c->n - len - k + 1 : 0;
        const char *hit = memmem(c->p + from, c->n - from, s, k);
        if (hit && (size_t)(hit - c->p) < cut) cut = (size_t)(hit - c->p);
    }
    if (cut == c->n) return 0;
    c->n = cut;
    c->p[cut] = '\0';
    return 1;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t k;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF)
        k = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        k = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        k = 4, cp = c & 0x07;
    else
        return 0;
    if (n < k) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return k;
}

char *respond_utf8_clean(const char *s, size_t n) {
    char *out = malloc(3 * n + 1), *w = out; /* each bad byte grows to 3 */
    if (!out) return NULL;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(u + i, n - i);
        if (k == 0 || (k == 1 && u[i] == 0)) {
            memcpy(w, "\xEF\xBF\xBD", 3);
            w += 3;
            i++;
        } else {
            memcpy(w, s + i, k);
            w += k;
            i += k;
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
    Collect c = {NULL, 0, 0, opt, 0};
    GenerateOptions g = {opt->max_tokens, opt->temperature, opt->top_p, opt->seed, 1};
    GenerateStats stats;
    int rc = generate_text(m, tok, prompt, &g, on_piece, &c, NULL, &stats, err);
    if (rc == 0 && c.oom) rc = ck_fail(err, "out of memory");
    if (rc != 0) {
        free(c.p);
        return -1;
    }
    size_t a = 0, b = c.n;
    while (a < b && is_space(c.p[a])) a++;
    while (b > a && is_space(c.p[b - 1])) b--;
    *text = respond_utf8_clean(c.p ? c.p + a : "", b - a);
    free(c.p);
    if (!*text) return ck_fail(err, "out of memory");
    if (n_tokens) *n_tokens = stats.generated_tokens;
    return 0;
}
