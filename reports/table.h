/* table.h — the results table as GitHub Markdown and as a LaTeX booktabs table: one row per
 * run in the given order, the best value of each column in bold, missing values as dashes. */
#ifndef CK_TABLE_H
#define CK_TABLE_H

#include <stdio.h>

#include "reports/metrics.h"

/* Writes "# title", the Markdown table and metric_note() to out; missing values are "—". */
void table_write_markdown(FILE *out, const MetricTable *t, const char *title);

/* Writes a booktabs table environment (\toprule, \midrule, \bottomrule; the title and
 * metric_note() as caption) to out, every label and title LaTeX-escaped; missing values
 * are "--", bold is \textbf. */
void table_write_latex(FILE *out, const MetricTable *t, const char *title);

#endif
