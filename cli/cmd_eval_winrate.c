/* cmd_eval_winrate.c — `cutkit eval winrate`: AlpacaEval's win rate, standard error, counts
 * and the length-controlled win rate of annotation files, as a leaderboard. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/annotations.h"
#include "cli/commands.h"
#include "eval/winrate.h"

#define MAX_FILES 256

static struct {
    const char *format;
    double lc_l1;
    int no_lc;
} opt;

static FlagSpec FLAGS[] = {
    {"format", FLAG_STRING, &opt.format, "table", 0, -1,
     "table, csv (AlpacaEval's leaderboard columns), markdown or json"},
    {"lc-l1", FLAG_DOUBLE, &opt.lc_l1, "0", 0, 1e9,
     "L1 penalty of the length-controlled GLM, on the mean log-loss (0: maximum likelihood)"},
    {"no-lc", FLAG_BOOL, &opt.no_lc, NULL, 0, -1, "skip the length-controlled win rate"},
};

static const CommandSpec SPEC = {
    "eval winrate",
    "win rates, standard errors and length-controlled win rates",
    "ANNOTATIONS.json... [--format table|csv|markdown|json]",
    "One row per annotations.json (AlpacaEval's, v1 or v2, or cutkit eval judge's), named by\n"
    "generator_2 and sorted by win rate. x = preference - 1 (legacy 0 = draw = 0.5; null and\n"
    "values outside [1, 2] are missing): win_rate = 100 mean(x), standard_error = 100 sd(x)/\n"
    "sqrt(n), n_wins = #(x > .5), n_wins_base = #(x < .5), n_draws = #(preference 1.5),\n"
    "discrete_win_rate = 100 (wins + draws/2)/n. length_controlled_winrate is AlpacaEval's\n"
    "'minimal' GLM (tanh of the standardised length difference + the model-vs-baseline term,\n"
    "no instruction difficulty) fitted on the file's pairs: sigmoid of the baseline term.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_eval_winrate_spec(void) {
    return &SPEC;
}

typedef struct {
    char name[256], annotator[128];
    WinRate w;
    double avg_length;
} Row;

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

static int load_row(const char *path, const LcOptions *lc, int do_lc, Row *row, CkError *err) {
    AnnotationSet s;
    if (annotations_load(&s, path, err) != 0) return -1;
    double *pref = malloc(sizeof(double) * (size_t)(s.n + 1));
    double *l1 = malloc(sizeof(double) * (size_t)(s.n + 1));
    double *l2 = malloc(sizeof(double) * (size_t)(s.n + 1));
    int rc = -1, have_lengths = 1;
    if (!pref || !l1 || !l2) {
        ck_fail(err, "out of memory");
        goto done;
    }
    double len_sum = 0;
    int len_n = 0;
    for (int i = 0; i < s.n; i++) {
        const Annotation *a = &s.items[i];
        pref[i] = a->preference;
        if (a->output_1 && a->output_2) {
            l1[i] = (double)winrate_text_length(a->output_1);
            l2[i] = (double)winrate_text_length(a->output_2);
        } else {
            have_lengths = 0;
        }
        if (a->output_2) len_sum += (double)winrate_text_length(a->output_2), len_n++;
    }
    snprintf(row->name, sizeof row->name, "%s",
             s.n && s.items[0].generator_2 ? s.items[0].generator_2 : path);
    snprintf(row->annotator, sizeof row->annotator, "%s",
             s.n && s.items[0].annotator ? s.items[0].annotator : "");
    winrate_compute(pref, s.n, &row->w);
    row->avg_length = len_n ? len_sum / len_n : NAN;
    if (do_lc && have_lengths && row->w.n_total >= 2 &&
        winrate_length_controlled(pref, l1, l2, NULL, s.n, lc, &row->w, err) != 0) {
        ck_wrap(err, "%s", path);
        goto done;
    }
    rc = 0;
done:
    free(pref);
    free(l1);
    free(l2);
    annotations_free(&s);
    return rc;
}

static int by_win_rate(const void *a, const void *b) {
    double x = ((const Row *)a)->w.win_rate, y = ((const Row *)b)->w.win_rate;
    if (isnan(x) != isnan(y)) return isnan(x) ? 1 : -1;
    return x < y ? 1 : (x > y ? -1 : 0);
}

static void print_csv(const Row *rows, int n) {
    printf(",win_rate,standard_error,n_wins,n_wins_base,n_draws,n_total,n_missing,"
           "discrete_win_rate,avg_length,length_controlled_winrate,lc_standard_error,annotator\n");
    for (int i = 0; i < n; i++) {
        const WinRate *w = &rows[i].w;
        char a[40], b[40], c[40], d[40], e[40];
        shortest(w->win_rate, a, sizeof a);
        shortest(w->standard_error, b, sizeof b);
        shortest(w->discrete_win_rate, c, sizeof c);
        shortest(w->lc_win_rate, d, sizeof d);
        shortest(w->lc_standard_error, e, sizeof e);
        /* names with commas or quotes are quoted as CSV requires */
        const char *name = rows[i].name;
        if (strpbrk(name, ",\"\n")) {
            putchar('"');
            for (const char *p = name; *p; p++) {
                if (*p == '"') putchar('"');
                putchar(*p);
            }
            putchar('"');
        } else {
            fputs(name, stdout);
        }
        printf(",%s,%s,%d,%d,%d,%d,%d,%s,", a, b, w->n_wins, w->n_wins_base, w->n_draws, w->n_total,
               w->n_missing, c);
        if (!isnan(rows[i].avg_length))
            printf("%d", (int)rows[i].avg_length); /* int() as AlpacaEval */
        printf(",%s,%s,%s\n", d, e, rows[i].annotator);
    }
}

static void fmt2(double v, char *buf, size_t cap) {
    if (isnan(v))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%.2f", v);
}

static void print_table(const Row *rows, int n, int markdown) {
    if (markdown)
        printf("| model | win rate | SE | LC win rate | wins | losses | draws | n | missing | "
               "avg length |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    else
        printf("%-32s %9s %6s %9s %6s %6s %6s %6s %7s %8s\n", "model", "win_rate", "se", "lc_wr",
               "wins", "losses", "draws", "n", "missing", "avg_len");
    for (int i = 0; i < n; i++) {
        const WinRate *w = &rows[i].w;
        char a[32], b[32], c[32], d[32];
        fmt2(w->win_rate, a, sizeof a);
        fmt2(w->standard_error, b, sizeof b);
        fmt2(w->lc_win_rate, c, sizeof c);
        if (isnan(rows[i].avg_length))
            snprintf(d, sizeof d, "-");
        else
            snprintf(d, sizeof d, "%d", (int)rows[i].avg_length);
        if (markdown)
            printf("| %s | %s | %s | %s | %d | %d | %d | %d | %d | %s |\n", rows[i].name, a, b, c,
                   w->n_wins, w->n_wins_base, w->n_draws, w->n_total, w->n_missing, d);
        else
            printf("%-32s %9s %6s %9s %6d %6d %6d %6d %7d %8s\n", rows[i].name, a, b, c, w->n_wins,
                   w->n_wins_base, w->n_draws, w->n_total, w->n_missing, d);
    }
}

static void json_num(const char *key, double v, int last) {
    char buf[40];
    shortest(v, buf, sizeof buf);
    printf("\"%s\": %s%s", key, buf[0] ? buf : "null", last ? "" : ", ");
}

static void print_json(const Row *rows, int n) {
    for (int i = 0; i < n; i++) {
        const WinRate *w = &rows[i].w;
        printf("{\"model\": \"");
        for (const char *p = rows[i].name; *p; p++) {
            if (*p == '"' || *p == '\\') putchar('\\');
            putchar(*p);
        }
        printf("\", ");
        json_num("win_rate", w->win_rate, 0);
        json_num("standard_error", w->standard_error, 0);
        printf("\"n_wins\": %d, \"n_wins_base\": %d, \"n_draws\": %d, \"n_total\": %d, "
               "\"n_missing\": %d, ",
               w->n_wins, w->n_wins_base, w->n_draws, w->n_total, w->n_missing);
        json_num("discrete_win_rate", w->discrete_win_rate, 0);
        json_num("avg_length", rows[i].avg_length, 0);
        json_num("length_controlled_winrate", w->lc_win_rate, 0);
        json_num("lc_standard_error", w->lc_standard_error, 0);
        json_num("lc_coef_length", w->lc_coef_length, 0);
        json_num("lc_coef_baseline", w->lc_coef_baseline, 1);
        printf("}\n");
    }
}

int cmd_eval_winrate(int argc, char **argv) {
    char *files[MAX_FILES];
    int n_files;
    int rc = flags_parse(&SPEC, argc, argv, files, MAX_FILES, &n_files);
    if (rc != 0) return rc;
    int format = !strcmp(opt.format, "table")      ? 0
                 : !strcmp(opt.format, "csv")      ? 1
                 : !strcmp(opt.format, "markdown") ? 2
                 : !strcmp(opt.format, "json")     ? 3
                                                   : -1;
    if (format < 0) {
        fprintf(stderr, "cutkit eval winrate: --format must be table, csv, markdown or json\n");
        return 2;
    }
    if (n_files == 0) {
        fprintf(stderr, "cutkit eval winrate: give one or more annotations.json files\n");
        return 2;
    }
    Row *rows = calloc((size_t)n_files, sizeof *rows);
    if (!rows) return 1;
    LcOptions lc = {opt.lc_l1};
    CkError err = {{0}};
    for (int i = 0; i < n_files; i++) {
        if (load_row(files[i], &lc, !opt.no_lc, &rows[i], &err) != 0) {
            fprintf(stderr, "cutkit eval winrate: %s\n", err.msg);
            free(rows);
            return 1;
        }
    }
    qsort(rows, (size_t)n_files, sizeof *rows, by_win_rate);
    if (format == 1)
        print_csv(rows, n_files);
    else if (format == 3)
        print_json(rows, n_files);
    else
        print_table(rows, n_files, format == 2);
    free(rows);
    return 0;
}
