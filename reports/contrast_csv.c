/* contrast_csv.c — see contrast_csv.h. */
#include "reports/contrast_csv.h"

#include <csv.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    COL_EXAMPLE,
    COL_POSITION,
    COL_TOKEN_ID,
    COL_TEXT,
    COL_LOG_PA,
    COL_LOG_PM,
    COL_RATIO,
    COL_FLAG,
    N_COLS
};

static const char *COL_NAMES[N_COLS - 1] = {"example", "position", "token_id", "token_text",
                                            "log_pa",  "log_pm",   "log_ratio"};

/* State of the libcsv callbacks: the header maps field index -> column, then every record
 * is assembled field by field and kept when its example is among the first ones. */
typedef struct {
    ContrastCsv *cs;
    const char *path;
    int max_examples;
    double lambda;
    long record;         /* 1-based record number, the header being 1 */
    int field;           /* index of the next field in the record */
    int *map;            /* header field index -> column (or -1) */
    double *flag_lambda; /* header field index -> λ of a flagged@λ column, else NAN */
    int n_map, cap_map;
    int have_header;
    ContrastCsvToken tok; /* the record being read */
    long example;
    int has_example;
    int failed;
    CkError *err;
} Reader;

/* Token text keeps every byte: no trimming of spaces (libcsv trims unquoted fields by
 * default, which would eat the leading space of " the"). */
static int no_space(unsigned char c) {
    (void)c;
    return 0;
}

static int parse_double(Reader *r, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end) {
        ck_fail(r->err, "%s: record %ld, field %d: expected a number, got '%.40s'", r->path,
                r->record, r->field + 1, s);
        r->failed = 1;
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_long(Reader *r, const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno) {
        ck_fail(r->err, "%s: record %ld, field %d: expected an integer, got '%.40s'", r->path,
                r->record, r->field + 1, s);
        r->failed = 1;
        return -1;
    }
    *out = v;
    return 0;
}

static void header_field(Reader *r, const char *s) {
    if (r->n_map == r->cap_map) {
        int cap = r->cap_map ? r->cap_map * 2 : 16;
        int *m = realloc(r->map, sizeof(int) * (size_t)cap);
        double *l = m ? realloc(r->flag_lambda, sizeof(double) * (size_t)cap) : NULL;
        if (m) r->map = m;
        if (l) r->flag_lambda = l;
        if (!m || !l) {
            ck_fail(r->err, "out of memory");
            r->failed = 1;
            return;
        }
        r->cap_map = cap;
    }
    int col = -1;
    double l = NAN;
    for (int c = 0; c < N_COLS - 1; c++)
        if (!strcmp(s, COL_NAMES[c])) col = c;
    if (!strncmp(s, "flagged@", 8)) {
        char *end;
        l = strtod(s + 8, &end);
        if (end == s + 8 || *end || !isfinite(l)) l = NAN;
    }
    r->flag_lambda[r->n_map] = l;
    r->map[r->n_map++] = col;
}

/* At the end of the header: the flag column is flagged@λ for the run's λ, else the first. */
static void choose_flag_column(Reader *r) {
    int chosen = -1;
    for (int i = 0; i < r->n_map; i++) {
        double l = r->flag_lambda[i];
        if (!isfinite(l)) continue;
        if (chosen < 0) chosen = i;
        if (isfinite(r->lambda) && fabs(l - r->lambda) <= 1e-9 * fabs(r->lambda)) {
            chosen = i;
            break;
        }
    }
    if (chosen >= 0) {
        r->map[chosen] = COL_FLAG;
        r->cs->flag_lambda = r->flag_lambda[chosen];
    }
}

static void on_field(void *data, size_t len, void *ctx) {
    Reader *r = ctx;
    const char *s = data ? (const char *)data : "";
    (void)len;
    if (r->failed) return;
    if (!r->have_header) {
        header_field(r, s);
        r->field++;
        return;
    }
    int col = r->field < r->n_map ? r->map[r->field] : -1;
    switch (col) {
    case COL_EXAMPLE:
        if (parse_long(r, s, &r->example) == 0) r->has_example = 1;
        break;
    case COL_POSITION: {
        long v;
        if (parse_long(r, s, &v) == 0) r->tok.position = (int)v;
        break;
    }
    case COL_TOKEN_ID: {
        long v;
        if (parse_long(r, s, &v) == 0) r->tok.token_id = (int)v;
        break;
    }
    case COL_TEXT:
        free(r->tok.text);
        r->tok.text = malloc(len + 1);
        if (!r->tok.text) {
            ck_fail(r->err, "out of memory");
            r->failed = 1;
            break;
        }
        memcpy(r->tok.text, s, len);
        r->tok.text[len] = '\0';
        break;
    case COL_LOG_PA:
        parse_double(r, s, &r->tok.log_pa);
        break;
    case COL_LOG_PM:
        parse_double(r, s, &r->tok.log_pm);
        break;
    case COL_RATIO:
        parse_double(r, s, &r->tok.log_ratio);
        break;
    case COL_FLAG: {
        long v;
        if (parse_long(r, s, &v) == 0) r->tok.flagged = v != 0;
        break;
    }
    default:
        break;
    }
    r->field++;
}

static void reset_token(Reader *r) {
    free(r->tok.text);
    r->tok = (ContrastCsvToken){-1, -1, NULL, NAN, NAN, NAN, 0};
    r->has_example = 0;
    r->field = 0;
}

/* The example record belongs to: an existing one, a new one while there is room, or NULL. */
static ContrastCsvExample *example_for(Reader *r, long id) {
    ContrastCsv *cs = r->cs;
    for (int i = 0; i < cs->n; i++)
        if (cs->examples[i].example == id) return &cs->examples[i];
    if (cs->n >= r->max_examples) return NULL;
    ContrastCsvExample *e = &cs->examples[cs->n++];
    memset(e, 0, sizeof *e);
    e->example = id;
    return e;
}

static void on_record(int c, void *ctx) {
    Reader *r = ctx;
    (void)c;
    if (r->failed) return;
    if (!r->have_header) {
        int seen_example = 0, seen_text = 0;
        for (int i = 0; i < r->n_map; i++) {
            seen_example |= r->map[i] == COL_EXAMPLE;
            seen_text |= r->map[i] == COL_TEXT;
        }
        if (!seen_example || !seen_text) {
            ck_fail(r->err, "%s: record %ld (the header): needs the columns example and token_text",
                    r->path, r->record);
            r->failed = 1;
            return;
        }
        choose_flag_column(r);
        r->have_header = 1;
        r->record++;
        reset_token(r);
        return;
    }
    if (r->field != r->n_map) {
        ck_fail(r->err, "%s: record %ld: %d fields, the header has %d", r->path, r->record,
                r->field, r->n_map);
        r->failed = 1;
        return;
    }
    ContrastCsvExample *e = example_for(r, r->example);
    if (e) {
        if (e->n == e->cap) {
            int cap = e->cap ? e->cap * 2 : 64;
            ContrastCsvToken *t = realloc(e->tokens, sizeof *t * (size_t)cap);
            if (!t) {
                ck_fail(r->err, "out of memory");
                r->failed = 1;
                return;
            }
            e->tokens = t;
            e->cap = cap;
        }
        ContrastCsvToken *t = &e->tokens[e->n++];
        *t = r->tok;
        if (!isfinite(t->log_ratio)) t->log_ratio = t->log_pa - t->log_pm;
        r->tok.text = NULL; /* moved into the example */
    }
    r->record++;
    reset_token(r);
}

static int by_position(const void *a, const void *b) {
    const ContrastCsvToken *x = a, *y = b;
    return (x->position > y->position) - (x->position < y->position);
}

int contrast_csv_read(ContrastCsv *cs, const char *path, int max_examples, double lambda,
                      CkError *err) {
    memset(cs, 0, sizeof *cs);
    cs->flag_lambda = NAN;
    if (max_examples <= 0) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return ck_fail(err, "%s: cannot open: %s", path, strerror(errno));
    cs->examples = calloc((size_t)max_examples, sizeof(ContrastCsvExample));
    struct csv_parser p;
    int parser_ok = csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) == 0;
    if (!cs->examples || !parser_ok) {
        if (parser_ok) csv_free(&p);
        fclose(f);
        return ck_fail(err, "out of memory");
    }
    csv_set_space_func(&p, no_space);
    Reader r = {.cs = cs,
                .path = path,
                .max_examples = max_examples,
                .lambda = lambda,
                .record = 1,
                .err = err};
    reset_token(&r);
    /* '#' comment lines before the header: not CSV, so they never reach the parser */
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0 && line[0] == '#') continue;
    int rc = 0;
    if (len > 0 && csv_parse(&p, line, (size_t)len, on_field, on_record, &r) != (size_t)len)
        rc = -1;
    char buf[1 << 16];
    size_t got;
    while (rc == 0 && !r.failed && (got = fread(buf, 1, sizeof buf, f)) > 0)
        if (csv_parse(&p, buf, got, on_field, on_record, &r) != got) rc = -1;
    if (rc == 0 && !r.failed && ferror(f)) {
        ck_fail(err, "%s: cannot read", path);
        r.failed = 1;
    }
    if (rc == 0 && !r.failed && csv_fini(&p, on_field, on_record, &r) != 0) rc = -1;
    if (rc != 0 && !r.failed)
        ck_fail(err, "%s: record %ld: %s", path, r.record, csv_strerror(csv_error(&p)));
    if (rc == 0 && !r.failed && !r.have_header) {
        ck_fail(err, "%s: no header line", path);
        r.failed = 1;
    }
    free(line);
    free(r.map);
    free(r.flag_lambda);
    free(r.tok.text);
    csv_free(&p);
    fclose(f);
    if (rc != 0 || r.failed) {
        contrast_csv_free(cs);
        return -1;
    }
    for (int i = 0; i < cs->n; i++)
        qsort(cs->examples[i].tokens, (size_t)cs->examples[i].n, sizeof(ContrastCsvToken),
              by_position);
    return 0;
}

void contrast_csv_free(ContrastCsv *cs) {
    if (!cs) return;
    for (int i = 0; i < cs->n; i++) {
        for (int k = 0; k < cs->examples[i].n; k++) free(cs->examples[i].tokens[k].text);
        free(cs->examples[i].tokens);
    }
    free(cs->examples);
    memset(cs, 0, sizeof *cs);
    cs->flag_lambda = NAN;
}
