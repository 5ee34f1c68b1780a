/* lc_tables.c — the two tables of AlpacaEval's length-controlled win rate, read from CSV as
 * pandas.read_csv reads them: instruction_difficulty.csv and df_gamed.csv. */
#include <csv.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/lc_alpaca.h"
#include "util/fileio.h"

#define LC_TABLE_MAX_BYTES ((size_t)1 << 30)

/* A whole CSV file as strings: row r (0 = the header) has fields cell[first[r] ..
 * first[r + 1]). */
typedef struct {
    char **cell;
    int n_cells, cap_cells;
    int *first; /* n_rows + 1 entries */
    int n_rows, cap_rows;
    int failed; /* out of memory inside a callback */
} CsvText;

static void csv_text_free(CsvText *t) {
    for (int i = 0; i < t->n_cells; i++) free(t->cell[i]);
    free(t->cell);
    free(t->first);
    memset(t, 0, sizeof *t);
}

static int grow(void **p, int *cap, int need, size_t size) {
    if (need <= *cap) return 0;
    int c = *cap ? *cap * 2 : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * size);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static void on_field(void *s, size_t len, void *data) {
    CsvText *t = data;
    if (t->failed) return;
    char *c = malloc(len + 1);
    if (!c || grow((void **)&t->cell, &t->cap_cells, t->n_cells + 1, sizeof *t->cell) != 0) {
        free(c);
        t->failed = 1;
        return;
    }
    memcpy(c, s, len);
    c[len] = '\0';
    t->cell[t->n_cells++] = c;
}

static void on_row(int c, void *data) {
    (void)c;
    CsvText *t = data;
    if (t->failed) return;
    if (grow((void **)&t->first, &t->cap_rows, t->n_rows + 2, sizeof *t->first) != 0) {
        t->failed = 1;
        return;
    }
    t->first[++t->n_rows] = t->n_cells;
}

/* pandas keeps the spaces around fields */
static int no_space(unsigned char c) {
    (void)c;
    return 0;
}

/* Reads path into t; fails naming the file on a read error, a CSV error or no data rows. */
static int csv_text_read(CsvText *t, const char *path, CkError *err) {
    memset(t, 0, sizeof *t);
    size_t len = 0;
    char *text = fileio_read_text(path, LC_TABLE_MAX_BYTES, &len, err);
    if (!text) return -1;
    struct csv_parser p;
    if (csv_init(&p, CSV_APPEND_NULL) != 0) {
        free(text);
        return ck_fail(err, "%s: out of memory", path);
    }
    csv_set_space_func(&p, no_space);
    t->first = malloc(sizeof *t->first * 2);
    t->cap_rows = t->first ? 2 : 0;
    if (t->first) t->first[0] = 0;
    int rc = t->first ? 0 : ck_fail(err, "%s: out of memory", path);
    if (rc == 0 && (csv_parse(&p, text, len, on_field, on_row, t) != len ||
                    csv_fini(&p, on_field, on_row, t) != 0))
        rc = ck_fail(err, "%s: %s", path, csv_strerror(csv_error(&p)));
    if (rc == 0 && t->failed) rc = ck_fail(err, "%s: out of memory", path);
    if (rc == 0 && t->n_rows < 2) rc = ck_fail(err, "%s: expected a header and data rows", path);
    csv_free(&p);
    free(text);
    if (rc != 0) csv_text_free(t);
    return rc;
}

static int n_fields(const CsvText *t, int r) {
    return t->first[r + 1] - t->first[r];
}

static const char *field(const CsvText *t, int r, int c) {
    return t->cell[t->first[r] + c];
}

/* The column headed name, or -1. */
static int column(const CsvText *t, const char *name) {
    for (int c = 0; c < n_fields(t, 0); c++)
        if (strcmp(field(t, 0, c), name) == 0) return c;
    return -1;
}

/* s as a number; "" (pandas' NaN) gives NaN when empty_ok. Returns -1 on anything else. */
static int parse_number(const char *s, int empty_ok, double *out) {
    if (!*s) {
        *out = NAN;
        return empty_ok ? 0 : -1;
    }
    char *end;
    *out = strtod(s, &end);
    return *end || end == s ? -1 : 0;
}

static int parse_long(const char *s, long *out) {
    char *end;
    errno = 0;
    *out = strtol(s, &end, 10);
    return !*s || *end || errno ? -1 : 0;
}

/* pandas' default true_values / false_values */
static int parse_bool(const char *s, unsigned char *out) {
    static const char *const T[] = {"True", "TRUE", "true"}, *const F[] = {"False", "FALSE",
                                                                           "false"};
    for (int k = 0; k < 3; k++) {
        if (strcmp(s, T[k]) == 0) return *out = 1, 0;
        if (strcmp(s, F[k]) == 0) return *out = 0, 0;
    }
    return -1;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- the difficulty table ------------------------------------------------------------ */

void lc_difficulty_free(LcDifficulty *t) {
    if (t->instruction)
        for (int k = 0; k < t->n; k++) free(t->instruction[k]);
    free(t->instruction);
    free(t->index);
    free(t->value);
    free(t->source);
    memset(t, 0, sizeof *t);
}

/* One row of a table while it is sorted by key. */
typedef struct {
    long index;
    char *instruction;
    double value;
    int row; /* as written: the header is row 1 */
} Entry;

static int by_index(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    if (x->index != y->index) return x->index < y->index ? -1 : 1;
    return x->row - y->row;
}

static int by_instruction(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    int c = strcmp(x->instruction, y->instruction);
    return c ? c : x->row - y->row;
}

/* Sorts t's keys with their values and refuses a key given twice, naming its rows. */
static int sort_keys(LcDifficulty *t, const int *row_of, CkError *err) {
    Entry *e = malloc(sizeof *e * (size_t)t->n);
    if (!e) return ck_fail(err, "%s: out of memory", t->source);
    for (int k = 0; k < t->n; k++)
        e[k] = (Entry){t->index ? t->index[k] : 0, t->instruction ? t->instruction[k] : NULL,
                       t->value[k], row_of[k]};
    qsort(e, (size_t)t->n, sizeof *e, t->by_instruction ? by_instruction : by_index);
    int rc = 0;
    for (int k = 0; k < t->n; k++) {
        if (t->index) t->index[k] = e[k].index;
        if (t->instruction) t->instruction[k] = e[k].instruction;
        t->value[k] = e[k].value;
        int same = k > 0 && (t->by_instruction ? strcmp(e[k].instruction, e[k - 1].instruction) == 0
                                               : e[k].index == e[k - 1].index);
        if (same && rc == 0)
            rc = ck_fail(err, "%s: rows %d and %d give the same key", t->source, e[k - 1].row,
                         e[k].row);
    }
    free(e);
    return rc;
}

/* Fills t's keys and values from the CSV rows. */
static int difficulty_rows(LcDifficulty *t, const CsvText *csv, int *row_of, CkError *err) {
    for (int r = 1; r < csv->n_rows; r++) {
        int k = t->n;
        if (n_fields(csv, r) != 2)
            return ck_fail(err, "%s: row %d has %d fields, expected 2 (key,difficulty)", t->source,
                           r + 1, n_fields(csv, r));
        row_of[k] = r + 1;
        if (t->by_instruction) {
            if (!(t->instruction[k] = dup_str(field(csv, r, 0))))
                return ck_fail(err, "%s: out of memory", t->source);
        } else if (parse_long(field(csv, r, 0), &t->index[k]) != 0) {
            return ck_fail(err,
                           "%s: row %d: key \"%.40s\" is not an integer index (head the first "
                           "column \"instruction\" for a table keyed by instruction)",
                           t->source, r + 1, field(csv, r, 0));
        }
        t->n++;
        if (parse_number(field(csv, r, 1), 0, &t->value[k]) != 0 || !isfinite(t->value[k]))
            return ck_fail(err, "%s: row %d: difficulty \"%.40s\" is not a finite number",
                           t->source, r + 1, field(csv, r, 1));
    }
    return 0;
}

int lc_difficulty_load(LcDifficulty *t, const char *path, CkError *err) {
    memset(t, 0, sizeof *t);
    CsvText csv;
    if (csv_text_read(&csv, path, err) != 0) return -1;
    int rc = 0, rows = csv.n_rows - 1;
    int *row_of = malloc(sizeof *row_of * (size_t)rows);
    t->source = dup_str(path);
    t->value = malloc(sizeof *t->value * (size_t)rows);
    if (n_fields(&csv, 0) != 2)
        rc = ck_fail(err, "%s: expected 2 columns (key,instruction_difficulty), the header has %d",
                     path, n_fields(&csv, 0));
    t->by_instruction = rc == 0 && strcmp(field(&csv, 0, 0), "instruction") == 0;
    if (t->by_instruction)
        t->instruction = calloc((size_t)rows, sizeof *t->instruction);
    else
        t->index = malloc(sizeof *t->index * (size_t)rows);
    if (rc == 0 && (!row_of || !t->source || !t->value || (!t->instruction && !t->index)))
        rc = ck_fail(err, "%s: out of memory", path);
    if (rc == 0) rc = difficulty_rows(t, &csv, row_of, err);
    if (rc == 0) rc = sort_keys(t, row_of, err);
    free(row_of);
    csv_text_free(&csv);
    if (rc != 0) lc_difficulty_free(t);
    return rc;
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int lc_difficulty_lookup(const LcDifficulty *t, long pos, const char *instruction, double *out) {
    size_t k;
    if (t->by_instruction) {
        if (!instruction) return -1;
        const char *const *hit =
            bsearch(&instruction, t->instruction, (size_t)t->n, sizeof *t->instruction, cmp_str);
        if (!hit) return -1;
        k = (size_t)(hit - (const char *const *)t->instruction);
    } else {
        const long *hit = bsearch(&pos, t->index, (size_t)t->n, sizeof *t->index, cmp_long);
        if (!hit) return -1;
        k = (size_t)(hit - t->index);
    }
    *out = t->value[k];
    return 0;
}

/* ---- the gamed rows ------------------------------------------------------------------- */

void lc_gamed_free(LcGamed *g) {
    free(g->source);
    free(g->index);
    free(g->preference);
    free(g->std_delta_len);
    free(g->difficulty);
    free(g->not_gamed);
    memset(g, 0, sizeof *g);
}

/* Reads data row r of the CSV (columns col[0..4]: index, preference, std_delta_len,
 * instruction_difficulty, not_gamed_baseline) into g's row k. */
static int gamed_row(LcGamed *g, const CsvText *csv, int r, const int col[5], int k, CkError *err) {
    static const char *const NAMES[5] = {"index", "preference", "std_delta_len",
                                         "instruction_difficulty", "not_gamed_baseline"};
    if (n_fields(csv, r) != n_fields(csv, 0))
        return ck_fail(err, "%s: row %d has %d fields, the header %d", g->source, r + 1,
                       n_fields(csv, r), n_fields(csv, 0));
    int bad = -1;
    double *num[3] = {&g->preference[k], &g->std_delta_len[k], &g->difficulty[k]};
    if (parse_long(field(csv, r, col[0]), &g->index[k]) != 0) bad = 0;
    for (int c = 1; c < 4 && bad < 0; c++)
        if (parse_number(field(csv, r, col[c]), c == 1, num[c - 1]) != 0 ||
            (c > 1 && !isfinite(*num[c - 1])))
            bad = c;
    if (bad < 0 && parse_bool(field(csv, r, col[4]), &g->not_gamed[k]) != 0) bad = 4;
    if (bad >= 0)
        return ck_fail(err, "%s: row %d: %s \"%.40s\" is not %s", g->source, r + 1, NAMES[bad],
                       field(csv, r, col[bad]),
                       bad == 0   ? "an integer"
                       : bad == 4 ? "True or False"
                                  : "a finite number");
    if (!isnan(g->preference[k]) && !(g->preference[k] >= 0 && g->preference[k] <= 1))
        return ck_fail(err,
                       "%s: row %d: preference %g is outside [0, 1] (AlpacaEval's gamed rows "
                       "hold preference - 1)",
                       g->source, r + 1, g->preference[k]);
    return 0;
}

int lc_gamed_load(LcGamed *g, const char *path, CkError *err) {
    static const char *const NAMES[5] = {"index", "preference", "std_delta_len",
                                         "instruction_difficulty", "not_gamed_baseline"};
    memset(g, 0, sizeof *g);
    CsvText csv;
    if (csv_text_read(&csv, path, err) != 0) return -1;
    int rows = csv.n_rows - 1, col[5], rc = 0;
    for (int c = 0; c < 5 && rc == 0; c++)
        if ((col[c] = column(&csv, NAMES[c])) < 0)
            rc = ck_fail(err, "%s: no column \"%s\" in the header", path, NAMES[c]);
    g->source = dup_str(path);
    g->index = malloc(sizeof *g->index * (size_t)rows);
    g->preference = malloc(sizeof(double) * (size_t)rows);
    g->std_delta_len = malloc(sizeof(double) * (size_t)rows);
    g->difficulty = malloc(sizeof(double) * (size_t)rows);
    g->not_gamed = malloc((size_t)rows);
    if (rc == 0 && (!g->source || !g->index || !g->preference || !g->std_delta_len ||
                    !g->difficulty || !g->not_gamed))
        rc = ck_fail(err, "%s: out of memory", path);
    for (int r = 1; r <= rows && rc == 0; r++) rc = gamed_row(g, &csv, r, col, r - 1, err);
    if (rc == 0) g->n = rows;
    csv_text_free(&csv);
    if (rc != 0) lc_gamed_free(g);
    return rc;
}

int lc_difficulty_from_gamed(LcDifficulty *t, const LcGamed *g, CkError *err) {
    memset(t, 0, sizeof *t);
    Entry *e = malloc(sizeof *e * (size_t)(g->n + 1));
    t->source = dup_str(g->source);
    t->index = malloc(sizeof *t->index * (size_t)(g->n + 1));
    t->value = malloc(sizeof *t->value * (size_t)(g->n + 1));
    if (!e || !t->source || !t->index || !t->value) {
        free(e);
        lc_difficulty_free(t);
        return ck_fail(err, "%s: out of memory", g->source);
    }
    /* pandas' drop_duplicates("index") keeps each index's first row, under that row's label
     * (its position in the file); AlpacaEval then looks the annotation's position up among
     * those labels */
    for (int r = 0; r < g->n; r++) e[r] = (Entry){g->index[r], NULL, g->difficulty[r], r};
    qsort(e, (size_t)g->n, sizeof *e, by_index);
    for (int k = 0; k < g->n; k++)
        if (k == 0 || e[k].index != e[k - 1].index) {
            t->index[t->n] = e[k].row;
            t->value[t->n++] = e[k].value;
        }
    free(e);
    /* the labels, not the indices, are the keys: sort them */
    Entry *by_label = malloc(sizeof *by_label * (size_t)(t->n + 1));
    if (!by_label) {
        lc_difficulty_free(t);
        return ck_fail(err, "%s: out of memory", g->source);
    }
    for (int k = 0; k < t->n; k++) by_label[k] = (Entry){t->index[k], NULL, t->value[k], k};
    qsort(by_label, (size_t)t->n, sizeof *by_label, by_index);
    for (int k = 0; k < t->n; k++) {
        t->index[k] = by_label[k].index;
        t->value[k] = by_label[k].value;
    }
    free(by_label);
    return 0;
}
