/* html.h — the report as one self-contained HTML page: results table (seed groups as
 * "mean ± sd (n=k)" cells, † marks explained under it), runs, inline SVG plots
 * and a browsable list of examples with flagged tokens highlighted. No scripts, no network:
 * every byte it shows is in the file, and all run-provided text is escaped. */
#ifndef CK_HTML_H
#define CK_HTML_H

#include <stdio.h>

#include "reports/contrast_csv.h"
#include "reports/groups.h"
#include "reports/metrics.h"
#include "reports/plots.h"
#include "reports/rundir.h"

typedef struct {
    const char *title;
    const MetricTable *table;
    const ReportPlots *plots;
    const RunDir *runs;
    const ContrastCsv *contrasts; /* one per run; n = 0 where the run has no contrast.csv */
    int n_runs;
    const RunGroups *groups; /* the table's rows as groups of runs; NULL: a row per run */
    int n_layouts;           /* the paper layouts (`--layout`), after the results table: */
    const MetricTable *const *layouts;
    const char *const *layout_names;    /* "table2": the anchor and the files' names */
    const char *const *layout_headings; /* "Table 2 layout" */
} HtmlPage;

/* Writes the whole page (<!DOCTYPE html> to </html>, UTF-8) to out. */
void html_write_page(FILE *out, const HtmlPage *page);

#endif
