/* figures.c — data files, gnuplot scripts, and one gnuplot run per figure. */
#include "analysis/figures.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/subprocess.h"
#include "util/utf8.h"

/* Colours saturate at this |log ratio| (nats): flagged error tokens sit at 5-13 after a
 * warm-up, everything else near 0. */
#define RATIO_LIMIT 8.0
/* Above this many rows the heatmap's y axis shows row numbers instead of record indices. */
#define MAX_ROW_LABELS 50
/* Image sides stay below this many pixels whatever the data. */
#define MAX_SIDE 6000

static int clamp_side(int px) {
    return px > MAX_SIDE ? MAX_SIDE : px;
}

int figures_have_gnuplot(FigureTarget *t) {
    if (t->checked) return t->note[0] == '\0';
    t->checked = 1;
    char *argv[] = {"gnuplot", "--version", NULL};
    char *out = NULL;
    CkError err = {{0}};
    SubprocessOptions o = {30, 0};
    int ok = subprocess_run(argv, "", 0, &o, &out, NULL, &err) == 0;
    free(out);
    if (!ok)
        snprintf(t->note, sizeof t->note,
                 "gnuplot was not found, so only the data and scripts were written; install it "
                 "(apt-get install gnuplot-nox) and run: cd %s && gnuplot NAME.gp",
                 t->dir);
    return ok;
}

/* One file of a figure, written atomically (util/fileio.h), so that a figure's data and
 * script are each whole or absent. */
typedef struct {
    AtomicFile file;
    char path[4200]; /* the target, for messages */
} Out;

/* Opens dir/name for writing; returns its stream, or NULL with err set. */
static FILE *out_open(Out *o, const FigureTarget *t, const char *name, CkError *err) {
    if (fileio_path(o->path, sizeof o->path, t->dir, name) != 0) {
        ck_fail(err, "%s: the path is too long", t->dir);
        return NULL;
    }
    if (atomic_file_open(&o->file, o->path, err) != 0) {
        ck_fail(err, "cannot write %s", o->path);
        return NULL;
    }
    return o->file.f;
}

/* Commits the file out_open opened (every write error included). */
static int out_close(Out *o, CkError *err) {
    if (atomic_file_commit(&o->file, err) != 0) return ck_fail(err, "cannot write %s", o->path);
    return 0;
}

/* Writes text as a label in a gnuplot data file: double-quoted, with the bytes a data-file
 * string cannot hold replaced so every label stays one field on its line: " becomes ',
 * a backslash /, control bytes caret notation (a newline token shows as ^J), and a byte that
 * does not start a valid UTF-8 sequence '?' (a byte-fallback token can hold part of a
 * character; an SVG must not). */
static void put_quoted(FILE *f, const char *text) {
    fputc('"', f);
    const size_t len = strlen(text);
    for (size_t i = 0; i < len;) {
        const unsigned char c = (unsigned char)text[i];
        size_t step = 1;
        if (c == '"') {
            fputc('\'', f);
        } else if (c == '\\') {
            fputc('/', f);
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "^%c", c == 0x7f ? '?' : c + '@');
        } else if (c < 0x80) {
            fputc(c, f);
        } else {
            const int k = utf8_scan((const unsigned char *)text + i, len - i);
            if (k > 0) {
                fwrite(text + i, 1, (size_t)k, f);
                step = (size_t)k;
            } else {
                fputc('?', f);
            }
        }
        i += step;
    }
    fputc('"', f);
}

/* The terminal and output lines of a script for image NAME. Both terminals are noenhanced:
 * token texts hold ^, _, @ and braces, which enhanced text would read as markup. */
static void put_output(FILE *f, const FigureTarget *t, const char *name, int width, int height) {
    if (!strcmp(t->format, "svg"))
        fprintf(f, "set terminal svg size %d,%d dynamic noenhanced font 'sans,10'\n",
                clamp_side(width), clamp_side(height));
    else
        fprintf(f, "set terminal pngcairo size %d,%d noenhanced font 'sans,9'\n", clamp_side(width),
                clamp_side(height));
    fprintf(f, "set output '%s.%s'\n", name, t->format);
}

/* Runs gnuplot on dir/NAME.gp from dir, so the script's relative names work. */
static int run_script(FigureTarget *t, const char *name, CkError *err) {
    if (!figures_have_gnuplot(t)) return 0; /* scripts only; the note says why */
    if (strchr(t->dir, '\'') || strchr(t->dir, '\n'))
        return ck_fail(err, "%s: a folder name with ' or a newline cannot be plotted", t->dir);
    char cd[4200], script[64];
    if ((size_t)snprintf(cd, sizeof cd, "cd '%s'", t->dir) >= sizeof cd)
        return ck_fail(err, "%s: the path is too long", t->dir);
    snprintf(script, sizeof script, "%s.gp", name);
    char *argv[] = {"gnuplot", "-e", cd, script, NULL};
    char *out = NULL;
    SubprocessOptions o = {120, 0};
    int rc = subprocess_run(argv, "", 0, &o, &out, NULL, err);
    free(out);
    if (rc != 0) return ck_wrap(err, "%s/%s", t->dir, script);
    t->gnuplot_ran = 1;
    return 0;
}

static int check_format(const FigureTarget *t, CkError *err) {
    if (!t->format || (strcmp(t->format, "png") != 0 && strcmp(t->format, "svg") != 0))
        return ck_fail(err, "figures: format must be png or svg, got '%s'",
                       t->format ? t->format : "(none)");
    return 0;
}

int figures_heatmap(FigureTarget *t, const FigureToken *tokens, int n, double lambda,
                    CkError *err) {
    if (check_format(t, err) != 0) return -1;
    if (n == 0) return ck_fail(err, "heatmap: no tokens to plot");
    int *row_example = malloc(sizeof(int) * (size_t)n); /* row -> example, at most n rows */
    if (!row_example) return ck_fail(err, "out of memory");
    Out out;
    FILE *f = out_open(&out, t, "heatmap.dat", err);
    if (!f) {
        free(row_example);
        return -1;
    }
    int rows = 0, row = -1, max_position = 0;
    double max_ratio = 0;
    fprintf(f, "# row position example log_ratio flagged\n");
    for (int i = 0; i < n; i++) {
        /* rows in order of first appearance; a token usually belongs to the last row */
        if (row < 0 || row_example[row] != tokens[i].example) {
            row = -1;
            for (int r = rows - 1; r >= 0 && row < 0; r--)
                if (row_example[r] == tokens[i].example) row = r;
            if (row < 0) {
                row = rows;
                row_example[rows++] = tokens[i].example;
            }
        }
        fprintf(f, "%d %d %d %.6g %d\n", row, tokens[i].position, tokens[i].example,
                tokens[i].log_ratio, tokens[i].flagged);
        if (tokens[i].position > max_position) max_position = tokens[i].position;
        if (isfinite(tokens[i].log_ratio)) max_ratio = fmax(max_ratio, fabs(tokens[i].log_ratio));
    }
    /* the colour scale spans the data (a bare model's contrasts are a fraction of a nat),
     * at least 1 nat so noise stays pale, at most RATIO_LIMIT */
    const double limit = fmin(RATIO_LIMIT, fmax(1.0, ceil(max_ratio)));
    int rc = out_close(&out, err);
    if (rc == 0 && !(f = out_open(&out, t, "heatmap.gp", err))) rc = -1;
    if (rc == 0) {
        put_output(f, t, "heatmap", 220 + 9 * (max_position + 1), 140 + 12 * rows);
        fprintf(f,
                "# cutkit contrast: log p(y|x,j-) - log p(y|x) per response token; outlined: "
                "flagged\n"
                "set title 'log pA - log pM per response token (outlined: flagged at lambda "
                "%g)'\n"
                "set xlabel 'response position'\nset ylabel 'example'\n"
                "set yrange [%g:-0.5]\nset xrange [-0.5:%g]\n"
                "set cbrange [%g:%g]\nset cblabel 'log ratio (nats)'\n"
                "set palette defined (-1 '#2166ac', 0 '#f7f7f7', 1 '#b2182b')\n"
                "unset key\nset tics out\n",
                lambda, rows - 0.5, max_position + 0.5, -limit, limit);
        if (rows <= MAX_ROW_LABELS) {
            /* the record index of each row on the axis */
            fprintf(f, "set ytics (");
            for (int r = 0; r < rows; r++)
                fprintf(f, "%s'%d' %d", r ? ", " : "", row_example[r], r);
            fprintf(f, ")\n");
        } else {
            fprintf(f, "set ylabel 'example (row; heatmap.dat maps rows to records)'\n");
        }
        fprintf(f,
                "clamp(x) = x > %g ? %g : x < -%g ? -%g : x\n"
                "plot 'heatmap.dat' using 2:1:(0.5):(0.5):(clamp($4)) with boxxyerror "
                "fs solid 1.0 noborder lc palette, \\\n"
                "     '' using ($5 > 0 ? $2 : 1/0):1:(0.45):(0.45) with boxxyerror fs empty "
                "lc rgb 'black' lw 1.2\n",
                limit, limit, limit, limit);
        rc = out_close(&out, err);
    }
    free(row_example);
    return rc == 0 ? run_script(t, "heatmap", err) : -1;
}

int figures_strip(FigureTarget *t, const FigureToken *tokens, int n, int example, double lambda,
                  CkError *err) {
    if (check_format(t, err) != 0) return -1;
    int count = 0;
    for (int i = 0; i < n; i++) count += tokens[i].example == example;
    if (count == 0) return ck_fail(err, "strip: example %d has no tokens to plot", example);
    Out out;
    FILE *f = out_open(&out, t, "strip.dat", err);
    if (!f) return -1;
    fprintf(f, "# position token log_ratio flagged\n");
    for (int i = 0; i < n; i++) {
        if (tokens[i].example != example) continue;
        fprintf(f, "%d ", tokens[i].position);
        put_quoted(f, tokens[i].text);
        fprintf(f, " %.6g %d\n", tokens[i].log_ratio, tokens[i].flagged);
    }
    if (out_close(&out, err) != 0) return -1;
    if (!(f = out_open(&out, t, "strip.gp", err))) return -1;
    put_output(f, t, "strip", 200 + 16 * count, 460);
    fprintf(f,
            "set title 'example %d: log pA - log pM per token (red: flagged at lambda %g; "
            "dashed: log lambda)'\n"
            "set ylabel 'log ratio (nats)'\nset xtics rotate by 90 right font ',8'\n"
            "set xrange [-0.6:%d]\n"
            "set style fill solid 0.8\nset boxwidth 0.8\nunset key\nset grid ytics\n"
            "set arrow from graph 0, first %.17g to graph 1, first %.17g nohead dt 2 "
            "lc rgb 'gray40'\n"
            "plot 'strip.dat' using 0:3:($4 > 0 ? 0xb2182b : 0x9e9e9e):xtic(2) "
            "with boxes lc rgb variable\n",
            example, lambda, count, log(lambda), log(lambda));
    if (out_close(&out, err) != 0) return -1;
    return run_script(t, "strip", err);
}

int figures_lambda(FigureTarget *t, const FigureLambdaPoint *points, int n, CkError *err) {
    if (check_format(t, err) != 0) return -1;
    if (n == 0) return ck_fail(err, "lambda: no points to plot");
    Out out;
    FILE *f = out_open(&out, t, "lambda.dat", err);
    if (!f) return -1;
    int known = 1;
    fprintf(f, "# lambda flagged_fraction precision recall labelled\n");
    for (int i = 0; i < n; i++) {
        fprintf(f, "%.10g %.6g %.6g %.6g %d\n", points[i].lambda, points[i].flagged_fraction,
                points[i].precision, points[i].recall, points[i].labelled);
        known = known && points[i].precision >= 0 && points[i].recall >= 0;
    }
    if (out_close(&out, err) != 0) return -1;
    if (!(f = out_open(&out, t, "lambda.gp", err))) return -1;
    put_output(f, t, "lambda", 700, 450);
    fprintf(f, "set title 'response tokens flagged against lambda'\nset xlabel 'lambda'\n"
               "set ylabel 'fraction flagged'\nset logscale x\nset yrange [0:*]\n"
               "set grid\nunset key\n"
               "plot 'lambda.dat' using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb '#b2182b'\n");
    if (out_close(&out, err) != 0 || run_script(t, "lambda", err) != 0) return -1;
    if (!known) return 0;
    if (!(f = out_open(&out, t, "pr.gp", err))) return -1;
    put_output(f, t, "pr", 700, 450);
    fprintf(f, "set title 'detection precision against recall over lambda'\n"
               "set xlabel 'token recall'\nset ylabel 'token precision'\n"
               "set xrange [0:1]\nset yrange [0:1.05]\nset grid\nunset key\n"
               "plot 'lambda.dat' using 4:($3 > 0 || $4 > 0 ? $3 : 1/0) with linespoints pt 7 ps "
               "0.6 lw 2 lc rgb '#2166ac', "
               "\\\n"
               "     '' using ($5 > 0 ? $4 : 1/0):3:(sprintf('%%g', $1)) with labels point pt 6 "
               "ps 1.4 offset 1.2,0.6 font ',8'\n");
    if (out_close(&out, err) != 0) return -1;
    return run_script(t, "pr", err);
}
