/* rouge.c — see rouge.h: the tokenizer, the four scores of one pair, and the aggregation. Each
 * function mirrors the rouge_score function named in its comment, so that ties (which LCS the
 * backtrack picks, which reference wins) fall the same way. */
#include "eval/rouge.h"

#include <stdlib.h>
#include <string.h>

#include "eval/porter.h"
#include "util/rng.h"
#include "util/utf8.h"

const char *rouge_type_name(RougeType t) {
    static const char *const names[ROUGE_N_TYPES] = {"rouge1", "rouge2", "rougeL", "rougeLsum"};
    return t >= 0 && t < ROUGE_N_TYPES ? names[t] : "?";
}

/* ---- tokenizer (tokenize.py) ------------------------------------------------------------ */

void rouge_tokens_free(RougeTokens *t) {
    free(t->chars);
    free(t->start);
    free(t->line);
    memset(t, 0, sizeof *t);
}

/* What text[i..] contributes after Python's str.lower(): *letter an ASCII letter or digit (0:
 * a separator), *split_after when a separator follows it; returns the bytes consumed. */
static size_t lowered_char(const unsigned char *s, size_t left, char *letter, int *split_after) {
    *letter = 0;
    *split_after = 0;
    if (s[0] < 0x80) {
        if (s[0] >= 'A' && s[0] <= 'Z') *letter = (char)(s[0] - 'A' + 'a');
        if ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')) *letter = (char)s[0];
        return 1;
    }
    int k = utf8_scan(s, left);
    if (k < 0) return (size_t)-k; /* not UTF-8: a separator */
    uint32_t cp = utf8_decode(s, (size_t)k);
    if (cp == 0x130) { /* İ lowers to "i" + U+0307 COMBINING DOT ABOVE, a separator */
        *letter = 'i';
        *split_after = 1;
    } else if (cp == 0x212A) { /* KELVIN SIGN lowers to "k" */
        *letter = 'k';
    }
    return (size_t)k;
}

/* Closes the token begun at t->start[t->n] (stemming it) when one is open. */
static void end_token(RougeTokens *t, size_t *o, int *open, int stem) {
    if (!*open) return;
    size_t s = t->start[t->n], len = *o - s;
    if (stem && len > 3) len = porter_stem(t->chars + s, len); /* tokenize.py: only > 3 chars */
    *o = s + len;
    t->chars[(*o)++] = '\0';
    t->n++;
    *open = 0;
}

int rouge_tokenize(const char *text, int stem, RougeTokens *out, CkError *err) {
    memset(out, 0, sizeof *out);
    size_t len = strlen(text);
    /* each byte gives at most one letter and one NUL; a token takes at least one byte */
    out->chars = malloc(2 * len + 1);
    out->start = malloc(sizeof(size_t) * (len + 1));
    out->line = malloc(sizeof(int) * (len + 1));
    if (!out->chars || !out->start || !out->line) {
        rouge_tokens_free(out);
        return ck_fail(err, "out of memory tokenizing %zu bytes", len);
    }
    const unsigned char *s = (const unsigned char *)text;
    size_t o = 0;
    int open = 0, line = 0;
    for (size_t i = 0; i < len;) {
        char letter;
        int split_after;
        size_t used = lowered_char(s + i, len - i, &letter, &split_after);
        if (letter) {
            if (!open) {
                out->start[out->n] = o;
                out->line[out->n] = line;
                open = 1;
            }
            out->chars[o++] = letter;
        }
        if (!letter || split_after) end_token(out, &o, &open, stem);
        if (s[i] == '\n') line++;
        i += used;
    }
    end_token(out, &o, &open, stem);
    return 0;
}

/* ---- scores of one pair (rouge_scorer.py) ------------------------------------------------ */

double rouge_fmeasure(double precision, double recall) {
    return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
}

static RougeScore make_score(double precision, double recall) {
    RougeScore s = {precision, recall, rouge_fmeasure(precision, recall)};
    return s;
}

/* The reference's and the prediction's tokens as small integers, equal for equal strings. */
typedef struct {
    int *ref, *pred;
    int n_ref, n_pred, vocab;
} TokenIds;

typedef struct {
    const char *s;
    int pos;
} Tagged;

static int by_string(const void *a, const void *b) {
    return strcmp(((const Tagged *)a)->s, ((const Tagged *)b)->s);
}

static int token_ids(const RougeTokens *ref, const RougeTokens *pred, TokenIds *ids, CkError *err) {
    int n = ref->n + pred->n;
    ids->n_ref = ref->n;
    ids->n_pred = pred->n;
    ids->vocab = 0;
    ids->ref = malloc(sizeof(int) * (size_t)(n + 1));
    Tagged *all = malloc(sizeof(Tagged) * (size_t)(n + 1));
    if (!ids->ref || !all) {
        free(ids->ref);
        free(all);
        return ck_fail(err, "out of memory");
    }
    ids->pred = ids->ref + ref->n; /* one array: the reference's ids, then the prediction's */
    for (int i = 0; i < n; i++) {
        const RougeTokens *t = i < ref->n ? ref : pred;
        int k = i < ref->n ? i : i - ref->n;
        all[i].s = t->chars + t->start[k];
        all[i].pos = i;
    }
    qsort(all, (size_t)n, sizeof *all, by_string);
    for (int i = 0; i < n; i++) {
        if (i > 0 && strcmp(all[i].s, all[i - 1].s) != 0) ids->vocab++;
        ids->ref[all[i].pos] = ids->vocab;
    }
    if (n > 0) ids->vocab++;
    free(all);
    return 0;
}

static int by_key(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The n-grams (n = 1 or 2) of t[0..len) as sorted keys; returns their count. */
static int ngram_keys(const int *t, int len, int n, uint64_t *keys) {
    int count = len - n + 1 > 0 ? len - n + 1 : 0;
    for (int i = 0; i < count; i++)
        keys[i] = n == 1 ? (uint64_t)t[i] : ((uint64_t)t[i] << 32) | (uint64_t)t[i + 1];
    qsort(keys, (size_t)count, sizeof *keys, by_key);
    return count;
}

/* _score_ngrams: the overlap sum over n-grams of min(count in reference, count in prediction),
 * over max(count, 1) of each side's n-grams. */
static RougeScore ngram_score(const TokenIds *ids, int n, uint64_t *kr, uint64_t *kp) {
    int cr = ngram_keys(ids->ref, ids->n_ref, n, kr);
    int cp = ngram_keys(ids->pred, ids->n_pred, n, kp);
    int overlap = 0;
    for (int i = 0, j = 0; i < cr && j < cp;) {
        if (kr[i] == kp[j])
            overlap++, i++, j++;
        else if (kr[i] < kp[j])
            i++;
        else
            j++;
    }
    return make_score((double)overlap / (cp > 1 ? cp : 1), (double)overlap / (cr > 1 ? cr : 1));
}

/* _score_lcs: LCS length over the prediction's and the reference's token counts (two rows of
 * the table suffice for the length). */
static int lcs_score(const TokenIds *ids, RougeScore *out, CkError *err) {
    int nr = ids->n_ref, np = ids->n_pred;
    if (nr == 0 || np == 0) {
        *out = make_score(0, 0);
        return 0;
    }
    int *prev = calloc((size_t)np + 1, sizeof(int)), *cur = calloc((size_t)np + 1, sizeof(int));
    if (!prev || !cur) {
        free(prev);
        free(cur);
        return ck_fail(err, "out of memory");
    }
    for (int i = 1; i <= nr; i++) {
        for (int j = 1; j <= np; j++) {
            if (ids->ref[i - 1] == ids->pred[j - 1])
                cur[j] = prev[j - 1] + 1;
            else
                cur[j] = prev[j] > cur[j - 1] ? prev[j] : cur[j - 1];
        }
        int *t = prev;
        prev = cur;
        cur = t;
    }
    int lcs = prev[np];
    free(prev);
    free(cur);
    *out = make_score((double)lcs / np, (double)lcs / nr);
    return 0;
}

/* Sentences for ROUGE-Lsum: runs of tokens on one line; returns how many, with their first
 * token and length in first[], len[]. Lines without tokens are left out, as they add nothing. */
static int sentences(const RougeTokens *t, int *first, int *len) {
    int n = 0;
    for (int i = 0; i < t->n; i++) {
        if (i == 0 || t->line[i] != t->line[i - 1]) first[n] = i, len[n++] = 0;
        len[n - 1]++;
    }
    return n;
}

/* lcs_ind: marks in mask the positions of r[0..lr) on the LCS with c[0..lc) that
 * _backtrack_norec reads out of the full table (on a tie it moves up, i - 1, as it does). */
static void mark_lcs(const int *r, int lr, const int *c, int lc, int *table, unsigned char *mask) {
    size_t w = (size_t)lc + 1;
#define T(i, j) table[(size_t)(i)*w + (size_t)(j)]
    for (int j = 0; j <= lc; j++) T(0, j) = 0;
    for (int i = 1; i <= lr; i++) {
        T(i, 0) = 0;
        for (int j = 1; j <= lc; j++) {
            int up = T(i - 1, j), left = T(i, j - 1);
            T(i, j) = r[i - 1] == c[j - 1] ? T(i - 1, j - 1) + 1 : (up > left ? up : left);
        }
    }
    for (int i = lr, j = lc; i > 0 && j > 0;) {
        if (r[i - 1] == c[j - 1])
            mask[--i] = 1, j--;
        else if (T(i, j - 1) > T(i - 1, j))
            j--;
        else
            i--;
    }
#undef T
}

typedef struct {
    int n_ref, n_pred;      /* sentences */
    int *rf, *rl, *pf, *pl; /* first token and length of each */
    int *cnt_r, *cnt_p;     /* token counts, by id */
    int *table;             /* LCS table of the longest pair */
    unsigned char *mask;    /* union-LCS positions of one reference sentence */
} LsumWork;

static void lsum_free(LsumWork *w) {
    free(w->rf);
    free(w->pf);
    free(w->cnt_r);
    free(w->table);
    free(w->mask);
}

#define LSUM_MAX_CELLS ((size_t)1 << 28) /* 1 GiB of LCS table: far beyond any summary */

static int lsum_alloc(const RougeTokens *ref, const RougeTokens *pred, const TokenIds *ids,
                      LsumWork *w, CkError *err) {
    memset(w, 0, sizeof *w);
    w->rf = malloc(sizeof(int) * 2 * (size_t)(ref->n + 1));
    w->pf = malloc(sizeof(int) * 2 * (size_t)(pred->n + 1));
    w->cnt_r = calloc(2 * (size_t)ids->vocab + 1, sizeof(int));
    if (!w->rf || !w->pf || !w->cnt_r) goto oom;
    w->rl = w->rf + ref->n + 1;
    w->pl = w->pf + pred->n + 1;
    w->cnt_p = w->cnt_r + ids->vocab;
    w->n_ref = sentences(ref, w->rf, w->rl);
    w->n_pred = sentences(pred, w->pf, w->pl);
    int max_r = 0, max_p = 0;
    for (int i = 0; i < w->n_ref; i++) max_r = w->rl[i] > max_r ? w->rl[i] : max_r;
    for (int i = 0; i < w->n_pred; i++) max_p = w->pl[i] > max_p ? w->pl[i] : max_p;
    size_t cells = ((size_t)max_r + 1) * ((size_t)max_p + 1);
    if (cells > LSUM_MAX_CELLS) {
        lsum_free(w);
        return ck_fail(err, "ROUGE-Lsum: lines of %d and %d tokens are too long to compare", max_r,
                       max_p);
    }
    w->table = malloc(sizeof(int) * cells);
    w->mask = malloc((size_t)max_r + 1);
    if (!w->table || !w->mask) goto oom;
    return 0;
oom:
    lsum_free(w);
    return ck_fail(err, "out of memory");
}

/* _summary_level_lcs: for each reference sentence the union of its LCS positions with every
 * prediction sentence; a token of that union is a hit while both texts have copies of it left
 * (rouge_score's guard against double counting, as ROUGE-1.5.5 does). */
static int lsum_score(const RougeTokens *ref, const RougeTokens *pred, const TokenIds *ids,
                      RougeScore *out, CkError *err) {
    if (ids->n_ref == 0 || ids->n_pred == 0) {
        *out = make_score(0, 0);
        return 0;
    }
    LsumWork w;
    if (lsum_alloc(ref, pred, ids, &w, err) != 0) return -1;
    for (int i = 0; i < ids->n_ref; i++) w.cnt_r[ids->ref[i]]++;
    for (int i = 0; i < ids->n_pred; i++) w.cnt_p[ids->pred[i]]++;
    int hits = 0;
    for (int s = 0; s < w.n_ref; s++) {
        const int *r = ids->ref + w.rf[s];
        memset(w.mask, 0, (size_t)w.rl[s]);
        for (int c = 0; c < w.n_pred; c++)
            mark_lcs(r, w.rl[s], ids->pred + w.pf[c], w.pl[c], w.table, w.mask);
        for (int i = 0; i < w.rl[s]; i++) {
            if (!w.mask[i] || w.cnt_p[r[i]] <= 0 || w.cnt_r[r[i]] <= 0) continue;
            hits++;
            w.cnt_p[r[i]]--;
            w.cnt_r[r[i]]--;
        }
    }
    lsum_free(&w);
    *out = make_score((double)hits / ids->n_pred, (double)hits / ids->n_ref);
    return 0;
}

static int score_tokens(const RougeTokens *ref, const RougeTokens *pred,
                        RougeScore out[ROUGE_N_TYPES], CkError *err) {
    TokenIds ids;
    if (token_ids(ref, pred, &ids, err) != 0) return -1;
    uint64_t *keys = malloc(sizeof(uint64_t) * (size_t)(ids.n_ref + ids.n_pred + 1));
    int rc = -1;
    if (!keys) {
        ck_fail(err, "out of memory");
        goto done;
    }
    out[ROUGE_1] = ngram_score(&ids, 1, keys, keys + ids.n_ref);
    out[ROUGE_2] = ngram_score(&ids, 2, keys, keys + ids.n_ref);
    if (lcs_score(&ids, &out[ROUGE_L], err) != 0) goto done;
    if (lsum_score(ref, pred, &ids, &out[ROUGE_LSUM], err) != 0) goto done;
    rc = 0;
done:
    free(keys);
    free(ids.ref);
    return rc;
}

int rouge_score_pair(const char *reference, const char *prediction, int stem,
                     RougeScore out[ROUGE_N_TYPES], CkError *err) {
    RougeTokens ref, pred;
    if (rouge_tokenize(reference, stem, &ref, err) != 0) return -1;
    if (rouge_tokenize(prediction, stem, &pred, err) != 0) {
        rouge_tokens_free(&ref);
        return -1;
    }
    int rc = score_tokens(&ref, &pred, out, err);
    rouge_tokens_free(&ref);
    rouge_tokens_free(&pred);
    return rc;
}

int rouge_score_multi(const char *const *references, int n_refs, const char *prediction, int stem,
                      RougeScore out[ROUGE_N_TYPES], int best[ROUGE_N_TYPES], CkError *err) {
    if (n_refs < 1) return ck_fail(err, "no reference to score against");
    for (int k = 0; k < n_refs; k++) {
        RougeScore s[ROUGE_N_TYPES];
        if (rouge_score_pair(references[k], prediction, stem, s, err) != 0) return -1;
        for (int t = 0; t < ROUGE_N_TYPES; t++) {
            if (k > 0 && !(s[t].fmeasure > out[t].fmeasure)) continue; /* np.argmax: first max */
            out[t] = s[t];
            if (best) best[t] = k;
        }
    }
    return 0;
}

/* ---- aggregation (scoring.py) ------------------------------------------------------------ */

/* Column c (type c / 3, measure c % 3) of a score row, P/R/F in that order. */
static double column(const RougeScore *row, int c) {
    const RougeScore *s = &row[c / 3];
    return c % 3 == 0 ? s->precision : c % 3 == 1 ? s->recall : s->fmeasure;
}

static void set_column(RougeScore *row, int c, double v) {
    RougeScore *s = &row[c / 3];
    if (c % 3 == 0)
        s->precision = v;
    else if (c % 3 == 1)
        s->recall = v;
    else
        s->fmeasure = v;
}

#define N_COLUMNS (3 * ROUGE_N_TYPES)

void rouge_mean(const RougeScore (*items)[ROUGE_N_TYPES], int n, RougeScore mean[ROUGE_N_TYPES]) {
    for (int c = 0; c < N_COLUMNS; c++) {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += column(items[i], c);
        set_column(mean, c, n > 0 ? sum / n : 0.0);
    }
}

void rouge_bootstrap_options_init(RougeBootstrapOptions *o) {
    o->samples = 1000;
    o->confidence = 0.95;
    o->seed = 0;
}

/* A uniform integer below n: draws under 2^64 mod n are rejected, so that no index is
 * favoured. */
static uint64_t uniform_below(Rng *r, uint64_t n) {
    uint64_t reject_under = (0 - n) % n;
    for (;;) {
        uint64_t x = rng_next(r);
        if (x >= reject_under) return x % n;
    }
}

static int by_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* numpy.percentile's default ("linear"): the value at fraction q of the sorted a[0..n). */
static double percentile(const double *a, int n, double q) {
    double pos = q * (n - 1);
    int lo = (int)pos;
    int hi = lo + 1 < n ? lo + 1 : n - 1;
    return a[lo] + (a[hi] - a[lo]) * (pos - lo);
}

int rouge_bootstrap(const RougeScore (*items)[ROUGE_N_TYPES], int n, const RougeBootstrapOptions *o,
                    RougeScore low[ROUGE_N_TYPES], RougeScore mid[ROUGE_N_TYPES],
                    RougeScore high[ROUGE_N_TYPES], CkError *err) {
    if (n < 1) return ck_fail(err, "bootstrap: no items");
    if (o->samples < 1) return ck_fail(err, "bootstrap: samples must be positive");
    if (!(o->confidence >= 0 && o->confidence <= 1))
        return ck_fail(err, "bootstrap: confidence must be in [0, 1]");
    int S = o->samples;
    double *means = malloc(sizeof(double) * N_COLUMNS * (size_t)S); /* [column][sample] */
    if (!means) return ck_fail(err, "out of memory");
    Rng rng;
    rng_seed(&rng, o->seed);
    for (int s = 0; s < S; s++) {
        double sum[N_COLUMNS] = {0};
        for (int k = 0; k < n; k++) {
            const RougeScore *row = items[uniform_below(&rng, (uint64_t)n)];
            for (int c = 0; c < N_COLUMNS; c++) sum[c] += column(row, c);
        }
        for (int c = 0; c < N_COLUMNS; c++) means[(size_t)c * S + s] = sum[c] / n;
    }
    double delta = (1 - o->confidence) / 2;
    for (int c = 0; c < N_COLUMNS; c++) {
        double *a = means + (size_t)c * S;
        qsort(a, (size_t)S, sizeof *a, by_double);
        set_column(low, c, percentile(a, S, delta));
        set_column(mid, c, percentile(a, S, 0.5));
        set_column(high, c, percentile(a, S, 1 - delta));
    }
    free(means);
    return 0;
}
