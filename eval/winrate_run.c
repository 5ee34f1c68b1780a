/* winrate_run.c — see winrate_run.h. */
#include "eval/winrate_run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/annotations.h"
#include "eval/lc_alpaca.h"
#include "util/strbuf.h"
#include "util/termsafe.h"
#include "util/utf8.h"

int winrate_format_parse(const char *name, WinrateFormat *f) {
    static const char *const NAMES[] = {"table", "csv", "markdown", "json"};
    for (int k = 0; k < 4; k++)
        if (strcmp(name, NAMES[k]) == 0) {
            *f = (WinrateFormat)k;
            return 0;
        }
    return -1;
}

void winrate_run_options_init(WinrateRunOptions *o) {
    memset(o, 0, sizeof *o);
    o->format = WINRATE_FORMAT_TABLE;
    o->lc = 1;
    o->out = stdout;
}

/* Fills the row's counts, name, annotator and average length from s, and its preferences and
 * lengths into pref, l1, l2; *have_lengths: every record has both outputs. */
static void row_fill(const AnnotationSet *s, const char *path, WinrateRow *row, double *pref,
                     double *l1, double *l2, int *have_lengths) {
    double len_sum = 0;
    int len_n = 0;
    *have_lengths = 1;
    for (int i = 0; i < s->n; i++) {
        const Annotation *a = &s->items[i];
        pref[i] = a->preference;
        if (a->output_1 && a->output_2) {
            l1[i] = (double)utf8_length(a->output_1);
            l2[i] = (double)utf8_length(a->output_2);
        } else {
            *have_lengths = 0;
        }
        if (a->output_2) len_sum += (double)utf8_length(a->output_2), len_n++;
    }
    snprintf(row->name, sizeof row->name, "%s",
             s->n && s->items[0].generator_2 ? s->items[0].generator_2 : path);
    snprintf(row->annotator, sizeof row->annotator, "%s",
             s->n && s->items[0].annotator ? s->items[0].annotator : "");
    winrate_compute(pref, s->n, &row->w);
    row->avg_length = len_n ? len_sum / len_n : NAN;
}

int winrate_row_compute(const AnnotationSet *s, const char *path, const LcOptions *lc_opt, int lc,
                        WinrateRow *row, CkError *err) {
    double *pref = malloc(sizeof(double) * (size_t)(s->n + 1));
    double *l1 = malloc(sizeof(double) * (size_t)(s->n + 1));
    double *l2 = malloc(sizeof(double) * (size_t)(s->n + 1));
    int rc = 0, have_lengths = 0;
    if (!pref || !l1 || !l2) rc = ck_fail(err, "out of memory");
    if (rc == 0) row_fill(s, path, row, pref, l1, l2, &have_lengths);
    if (rc == 0 && lc &&
        lc_fit_annotations(s, pref, l1, l2, have_lengths, lc_opt, &row->w, err) != 0)
        rc = ck_wrap(err, "%s", path);
    free(pref);
    free(l1);
    free(l2);
    return rc;
}

int winrate_row_load(const char *path, const LcOptions *lc_opt, int lc, WinrateRow *row,
                     CkError *err) {
    AnnotationSet s;
    if (annotations_load(&s, path, err) != 0) return -1;
    int rc = winrate_row_compute(&s, path, lc_opt, lc, row, err);
    annotations_free(&s);
    return rc;
}

static int by_win_rate(const void *a, const void *b) {
    double x = ((const WinrateRow *)a)->w.win_rate, y = ((const WinrateRow *)b)->w.win_rate;
    if (isnan(x) != isnan(y)) return isnan(x) ? 1 : -1;
    return x < y ? 1 : (x > y ? -1 : 0);
}

int winrate_run(const WinrateRunOptions *o, WinrateRow **rows_out, CkError *err) {
    if (rows_out) *rows_out = NULL;
    WinrateRow *rows = calloc((size_t)(o->n_files > 0 ? o->n_files : 1), sizeof *rows);
    if (!rows) return ck_fail(err, "out of memory");
    LcOptions lc = {
        .l1 = o->lc_l1, .glm = o->lc_glm, .difficulty = o->lc_difficulty, .gamed = o->lc_gamed};
    for (int i = 0; i < o->n_files; i++)
        if (winrate_row_load(o->files[i], &lc, o->lc, &rows[i], err) != 0) {
            free(rows);
            return -1;
        }
    qsort(rows, (size_t)o->n_files, sizeof *rows, by_win_rate);
    if (o->out) winrate_rows_print(rows, o->n_files, o->format, o->out);
    if (rows_out)
        *rows_out = rows;
    else
        free(rows);
    return 0;
}

/* ---- the formats ------------------------------------------------------------------------ */

/* The shortest decimal that reads back as v (Python's repr), or "" for NaN. */
static void shortest(double v, char *buf, size_t cap) {
    if (isnan(v)) {
        buf[0] = '\0';
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (!strchr(buf, '.') && !strchr(buf, 'e') && !strchr(buf, 'n') && strlen(buf) + 2 < cap)
        strcat(buf, ".0");
}

/* A CSV field: quoted, with doubled quotes, when it holds a comma, a quote or a newline;
 * control characters escaped (termsafe.h), since the table may go to a terminal. */
static void csv_field(const char *s, FILE *out) {
    StrBuf b = {0};
    if (termsafe_put(&b, s, strlen(s), TERMSAFE_MULTI_LINE) != 0) {
        strbuf_free(&b);
        fputs("(out of memory)", out);
        return;
    }
    const char *t = b.p ? b.p : "";
    if (!strpbrk(t, ",\"\n")) {
        fputs(t, out);
    } else {
        fputc('"', out);
        for (const char *p = t; *p; p++) {
            if (*p == '"') fputc('"', out);
            fputc(*p, out);
        }
        fputc('"', out);
    }
    strbuf_free(&b);
}

static void print_csv(const WinrateRow *rows, int n, FILE *out) {
    LcGlm glm = n ? rows[0].w.lc_glm : LC_GLM_MINIMAL_FIXED; /* one GLM per run */
    fprintf(out,
            ",win_rate,standard_error,n_wins,n_wins_base,n_draws,n_total,n_missing,"
            "discrete_win_rate,avg_length,%s,%s,annotator\n",
            lc_glm_column(glm), lc_glm_se_column(glm));
    for (int i = 0; i < n; i++) {
        const WinRate *w = &rows[i].w;
        char a[40], b[40], c[40], d[40], e[40];
        shortest(w->win_rate, a, sizeof a);
        shortest(w->standard_error, b, sizeof b);
        shortest(w->discrete_win_rate, c, sizeof c);
        shortest(w->lc_win_rate, d, sizeof d);
        shortest(w->lc_standard_error, e, sizeof e);
        csv_field(rows[i].name, out);
        fprintf(out, ",%s,%s,%d,%d,%d,%d,%d,%s,", a, b, w->n_wins, w->n_wins_base, w->n_draws,
                w->n_total, w->n_missing, c);
        if (!isnan(rows[i].avg_length))
            fprintf(out, "%lld", (long long)rows[i].avg_length); /* int() as AlpacaEval */
        fprintf(out, ",%s,%s,", d, e);
        csv_field(rows[i].annotator, out);
        fputc('\n', out);
    }
}

static void fmt2(double v, char *buf, size_t cap) {
    if (isnan(v))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%.2f", v);
}

static void print_table(const WinrateRow *rows, int n, int markdown, FILE *out) {
    /* cutkit's fixed-penalty GLM is not AlpacaEval's LC: its column says so */
    int alpaca = n && rows[0].w.lc_glm != LC_GLM_MINIMAL_FIXED;
    if (markdown)
        fprintf(out,
                "| model | win rate | SE | %s | wins | losses | draws | n | missing "
                "| avg length |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
                alpaca ? "LC win rate" : "LC (minimal GLM)");
    else
        fprintf(out, "%-32s %9s %6s %9s %6s %6s %6s %6s %7s %8s\n", "model", "win_rate", "se",
                alpaca ? "lc_wr" : "lc_min", "wins", "losses", "draws", "n", "missing", "avg_len");
    for (int i = 0; i < n; i++) {
        const WinRate *w = &rows[i].w;
        char a[32], b[32], c[32], d[32];
        fmt2(w->win_rate, a, sizeof a);
        fmt2(w->standard_error, b, sizeof b);
        fmt2(w->lc_win_rate, c, sizeof c);
        if (isnan(rows[i].avg_length))
            snprintf(d, sizeof d, "-");
        else
            snprintf(d, sizeof d, "%lld", (long long)rows[i].avg_length);
        /* the name comes from the file: its control characters escaped */
        StrBuf name = {0};
        const char *shown =
            termsafe_put(&name, rows[i].name, strlen(rows[i].name), TERMSAFE_ONE_LINE) == 0 &&
                    name.p
                ? name.p
                : "";
        if (markdown)
            fprintf(out, "| %s | %s | %s | %s | %d | %d | %d | %d | %d | %s |\n", shown, a, b, c,
                    w->n_wins, w->n_wins_base, w->n_draws, w->n_total, w->n_missing, d);
        else
            fprintf(out, "%-32s %9s %6s %9s %6d %6d %6d %6d %7d %8s\n", shown, a, b, c, w->n_wins,
                    w->n_wins_base, w->n_draws, w->n_total, w->n_missing, d);
        strbuf_free(&name);
    }
}

static void json_num(const char *key, double v, int last, FILE *out) {
    char buf[40];
    shortest(v, buf, sizeof buf);
    fprintf(out, "\"%s\": %s%s", key, buf[0] ? buf : "null", last ? "" : ", ");
}

static void print_json(const WinrateRow *rows, int n, FILE *out) {
    for (int i = 0; i < n; i++) {
        const WinRate *w = &rows[i].w;
        /* a JSON string whose control characters are escapes: valid JSON, safe to show */
        StrBuf name = {0};
        int bad = termsafe_put_json(&name, rows[i].name, strlen(rows[i].name));
        fprintf(out, "{\"model\": \"%s\", ", bad || !name.p ? "" : name.p);
        strbuf_free(&name);
        json_num("win_rate", w->win_rate, 0, out);
        json_num("standard_error", w->standard_error, 0, out);
        fprintf(out,
                "\"n_wins\": %d, \"n_wins_base\": %d, \"n_draws\": %d, \"n_total\": %d, "
                "\"n_missing\": %d, ",
                w->n_wins, w->n_wins_base, w->n_draws, w->n_total, w->n_missing);
        json_num("discrete_win_rate", w->discrete_win_rate, 0, out);
        json_num("avg_length", rows[i].avg_length, 0, out);
        json_num(lc_glm_column(w->lc_glm), w->lc_win_rate, 0, out);
        json_num(lc_glm_se_column(w->lc_glm), w->lc_standard_error, 0, out);
        fprintf(out, "\"lc_glm\": \"%s\", ", lc_glm_name(w->lc_glm));
        json_num("lc_c", w->lc_c, 0, out);
        json_num("lc_coef_length", w->lc_coef_length, 0, out);
        json_num("lc_coef_difficulty", w->lc_coef_difficulty, 0, out);
        json_num("lc_coef_baseline", w->lc_coef_baseline, 1, out);
        fprintf(out, "}\n");
    }
}

void winrate_rows_print(const WinrateRow *rows, int n, WinrateFormat format, FILE *out) {
    if (format == WINRATE_FORMAT_CSV)
        print_csv(rows, n, out);
    else if (format == WINRATE_FORMAT_JSON)
        print_json(rows, n, out);
    else
        print_table(rows, n, format == WINRATE_FORMAT_MARKDOWN, out);
}
