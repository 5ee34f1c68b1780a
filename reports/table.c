/* table.c — see table.h. */
#include "reports/table.h"

#include <math.h>
#include <stdlib.h>

#include "reports/escape.h"

#define DAGGER  "\xE2\x80\xA0"
#define DDAGGER "\xE2\x80\xA1"

/* The marks after a cell's value: † differs from the baseline, ‡ a variant's value. */
static void write_marks(FILE *out, const MetricCell *cell, int latex) {
    if (cell->marked) fputs(latex ? "$^\\dagger$" : DAGGER, out);
    if (cell->variant) fputs(latex ? "$^\\ddagger$" : DDAGGER, out);
}

/* The value (bold when best, † when marked) and "± se" of a single run's cell. */
static void write_run_cell(FILE *out, const MetricColumn *col, const MetricCell *cell, int latex) {
    char v[64], se[64];
    metric_format(col, cell->value, v, sizeof v);
    if (cell->best)
        fprintf(out, latex ? "\\textbf{%s}" : "**%s**", v);
    else
        fputs(v, out);
    write_marks(out, cell, latex);
    if (isfinite(cell->se)) {
        metric_format(col, cell->se, se, sizeof se);
        fprintf(out, latex ? " $\\pm$ %s" : " \xC2\xB1 %s", se);
    }
}

/* A seed group's cell: the mean (bold, †), its sd over seeds and n: "61.20 ± 3.40 (n=3)" in
 * Markdown, "61.20{\scriptsize$\pm$3.40}" in LaTeX (n there only when fewer runs than the row
 * has gave the value; the row's n is in its label). */
static void write_group_cell(FILE *out, const MetricColumn *col, const MetricCell *cell,
                             int row_size, int latex) {
    char v[64], sd[64];
    metric_format(col, cell->value, v, sizeof v);
    if (cell->best)
        fprintf(out, latex ? "\\textbf{%s}" : "**%s**", v);
    else
        fputs(v, out);
    write_marks(out, cell, latex);
    if (isfinite(cell->sd)) metric_format(col, cell->sd, sd, sizeof sd);
    if (!latex) {
        if (isfinite(cell->sd)) fprintf(out, " \xC2\xB1 %s", sd);
        fprintf(out, " (n=%d)", cell->n);
        return;
    }
    if (!isfinite(cell->sd) && cell->n == row_size) return;
    fputs("{\\scriptsize", out);
    if (isfinite(cell->sd)) fprintf(out, "$\\pm$%s", sd);
    if (cell->n < row_size) fprintf(out, " (n=%d)", cell->n);
    fputc('}', out);
}

static void write_cell(FILE *out, const MetricTable *t, int r, int c, int latex) {
    const MetricCell *cell = metric_cell(t, r, c);
    if (!isfinite(cell->value))
        fputs(latex ? "--" : "\xE2\x80\x94", out);
    else if (t->sizes && t->sizes[r] > 1)
        write_group_cell(out, &t->cols[c], cell, t->sizes[r], latex);
    else
        write_run_cell(out, &t->cols[c], cell, latex);
}

/* A text column's cell (a layout's Objective or #J): escaped, a dash when missing. */
static void write_text_cell(FILE *out, const MetricTable *t, int r, int k, int latex) {
    const char *s = t->text ? t->text[(size_t)r * t->n_text + k] : NULL;
    if (!s || !s[0])
        fputs(latex ? "--" : "\xE2\x80\x94", out);
    else if (latex)
        escape_latex(out, s);
    else
        escape_markdown(out, s);
}

void table_write_markdown(FILE *out, const MetricTable *t, const char *title) {
    fputs("# ", out);
    escape_markdown(out, title ? title : "cutkit report");
    fputs("\n\n| ", out);
    escape_markdown(out, t->row_title ? t->row_title : "Run");
    fputs(" |", out);
    for (int k = 0; k < t->n_text; k++) {
        fputc(' ', out);
        escape_markdown(out, t->text_titles[k]);
        fputs(" |", out);
    }
    for (int c = 0; c < t->n_cols; c++) {
        fputc(' ', out);
        escape_markdown(out, t->cols[c].title);
        fputs(" |", out);
    }
    fputs("\n|:---|", out);
    for (int k = 0; k < t->n_text; k++) fputs(":---|", out);
    for (int c = 0; c < t->n_cols; c++) fputs("---:|", out);
    fputc('\n', out);
    for (int r = 0; r < t->n_runs; r++) {
        fputs("| ", out);
        escape_markdown(out, t->labels[r]);
        fputs(" |", out);
        for (int k = 0; k < t->n_text; k++) {
            fputc(' ', out);
            write_text_cell(out, t, r, k, 0);
            fputs(" |", out);
        }
        for (int c = 0; c < t->n_cols; c++) {
            fputc(' ', out);
            write_cell(out, t, r, c, 0);
            fputs(" |", out);
        }
        fputc('\n', out);
    }
    fputc('\n', out);
    escape_markdown(out, t->note ? t->note : metric_note());
    fputc('\n', out);
    if (t->grouped) {
        fputc('\n', out);
        escape_markdown(out, metric_group_note());
        fputc('\n', out);
    }
    if (t->marker_note) {
        fputs("\n" DAGGER " ", out);
        escape_markdown(out, t->marker_note);
        fputc('\n', out);
    }
    char *variants = metric_variant_note(t);
    if (variants) {
        fputc('\n', out);
        escape_markdown(out, variants);
        fputc('\n', out);
    }
    free(variants);
}

void table_write_latex(FILE *out, const MetricTable *t, const char *title) {
    fputs("% cutkit report; needs \\usepackage{booktabs}\n"
          "\\begin{table}[t]\n"
          "  \\centering\n"
          "  \\caption{",
          out);
    escape_latex(out, title ? title : "cutkit report");
    fputs(". ", out);
    escape_latex(out, t->note ? t->note : metric_note());
    if (t->grouped) {
        fputc(' ', out);
        escape_latex(out, metric_group_note());
    }
    if (t->marker_note) {
        fputs(" $^\\dagger$ ", out);
        escape_latex(out, t->marker_note);
    }
    char *variants = metric_variant_note(t);
    if (variants) {
        fputc(' ', out);
        escape_latex(out, variants);
    }
    free(variants);
    fputs("}\n  \\begin{tabular}{l", out);
    for (int k = 0; k < t->n_text; k++) fputc('l', out);
    for (int c = 0; c < t->n_cols; c++) fputc('r', out);
    fputs("}\n    \\toprule\n    ", out);
    escape_latex(out, t->row_title ? t->row_title : "Run");
    for (int k = 0; k < t->n_text; k++) {
        fputs(" & ", out);
        escape_latex(out, t->text_titles[k]);
    }
    for (int c = 0; c < t->n_cols; c++) {
        fputs(" & ", out);
        escape_latex(out, t->cols[c].title);
    }
    fputs(" \\\\\n    \\midrule\n", out);
    for (int r = 0; r < t->n_runs; r++) {
        fputs("    ", out);
        escape_latex(out, t->labels[r]);
        if (t->sizes && t->sizes[r] > 1) fprintf(out, " (n=%d)", t->sizes[r]);
        for (int k = 0; k < t->n_text; k++) {
            fputs(" & ", out);
            write_text_cell(out, t, r, k, 1);
        }
        for (int c = 0; c < t->n_cols; c++) {
            fputs(" & ", out);
            write_cell(out, t, r, c, 1);
        }
        fputs(" \\\\\n", out);
    }
    fputs("    \\bottomrule\n  \\end{tabular}\n\\end{table}\n", out);
}
