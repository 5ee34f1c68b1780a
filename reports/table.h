/* table.h — the results table as GitHub Markdown and as a LaTeX booktabs table: one row per
 * run or seed group in the given order, the best value of each column in bold, missing values
 * as dashes. A group's cell is its mean ± sd over seeds: "61.20 ± 3.40 (n=3)" in Markdown,
 * "61.20{\scriptsize$\pm$3.40}" in LaTeX (the row label says "(n=3)"); a cell that differs
 * significantly from the baseline row carries † (LaTeX $^\dagger$), explained under the table. */
#ifndef CK_TABLE_H
#define CK_TABLE_H

#include <stdio.h>

#include "reports/metrics.h"

/* Writes "# title", the Markdown table and metric_note() to out (then metric_group_note()
 * when a row is a group, and "† " + the marker note when there is one, each a paragraph);
 * missing values are "—". */
void table_write_markdown(FILE *out, const MetricTable *t, const char *title);

/* Writes a booktabs table environment (\toprule, \midrule, \bottomrule; the title and
 * metric_note() as caption) to out, every label and title LaTeX-escaped; missing values
 * are "--", bold is \textbf. */
void table_write_latex(FILE *out, const MetricTable *t, const char *title);

#endif
