/* table.c — see table.h. */
#include "reports/table.h"

#include <math.h>

#include "reports/escape.h"

/* The value (bold when best) and "± se" of one cell, in Markdown or LaTeX. */
static void write_cell(FILE *out, const MetricColumn *col, const MetricCell *cell, int latex) {
    char v[64], se[64];
    if (!isfinite(cell->value)) {
        fputs(latex ? "--" : "\xE2\x80\x94", out);
        return;
    }
    metric_format(col, cell->value, v, sizeof v);
    if (cell->best)
        fprintf(out, latex ? "\\textbf{%s}" : "**%s**", v);
    else
        fputs(v, out);
    if (isfinite(cell->se)) {
        metric_format(col, cell->se, se, sizeof se);
        fprintf(out, latex ? " $\\pm$ %s" : " \xC2\xB1 %s", se);
    }
}

void table_write_markdown(FILE *out, const MetricTable *t, const char *title) {
    fputs("# ", out);
    escape_markdown(out, title ? title : "cutkit report");
    fputs("\n\n| Run |", out);
    for (int c = 0; c < t->n_cols; c++) {
        fputc(' ', out);
        escape_markdown(out, t->cols[c].title);
        fputs(" |", out);
    }
    fputs("\n|:---|", out);
    for (int c = 0; c < t->n_cols; c++) fputs("---:|", out);
    fputc('\n', out);
    for (int r = 0; r < t->n_runs; r++) {
        fputs("| ", out);
        escape_markdown(out, t->labels[r]);
        fputs(" |", out);
        for (int c = 0; c < t->n_cols; c++) {
            fputc(' ', out);
            write_cell(out, &t->cols[c], metric_cell(t, r, c), 0);
            fputs(" |", out);
        }
        fputc('\n', out);
    }
    fputc('\n', out);
    escape_markdown(out, metric_note());
    fputc('\n', out);
}

void table_write_latex(FILE *out, const MetricTable *t, const char *title) {
    fputs("% cutkit report; needs \\usepackage{booktabs}\n"
          "\\begin{table}[t]\n"
          "  \\centering\n"
          "  \\caption{",
          out);
    escape_latex(out, title ? title : "cutkit report");
    fputs(". ", out);
    escape_latex(out, metric_note());
    fputs("}\n  \\begin{tabular}{l", out);
    for (int c = 0; c < t->n_cols; c++) fputc('r', out);
    fputs("}\n    \\toprule\n    Run", out);
    for (int c = 0; c < t->n_cols; c++) {
        fputs(" & ", out);
        escape_latex(out, t->cols[c].title);
    }
    fputs(" \\\\\n    \\midrule\n", out);
    for (int r = 0; r < t->n_runs; r++) {
        fputs("    ", out);
        escape_latex(out, t->labels[r]);
        for (int c = 0; c < t->n_cols; c++) {
            fputs(" & ", out);
            write_cell(out, &t->cols[c], metric_cell(t, r, c), 1);
        }
        fputs(" \\\\\n", out);
    }
    fputs("    \\bottomrule\n  \\end{tabular}\n\\end{table}\n", out);
}
