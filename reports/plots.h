/* plots.h — which plots a set of runs gets, rendered with svgplot: training curves from
 * steps.jsonl (L_A, L_M, flagged fraction vs step, a line per run), every table column vs λ
 * and vs α when the runs differ in them, and token-level detection F1 vs λ. */
#ifndef CK_PLOTS_H
#define CK_PLOTS_H

#include "reports/groups.h"
#include "reports/metrics.h"
#include "reports/rundir.h"

typedef struct {
    char *name;    /* file name inside plots/ ("loss_mle.svg") */
    char *caption; /* UTF-8 sentence saying what is drawn */
    char *svg;     /* the SVG document */
} ReportPlot;

typedef struct {
    int n, cap;
    ReportPlot *plots;
} ReportPlots;

/* Renders every plot the runs have data for into out (released with plots_free, also on
 * failure); a plot without any finite point is left out, not an error. */
int plots_build(ReportPlots *out, const RunDir *runs, int n_runs, const MetricColumn *cols,
                int n_cols, CkError *err);

/* plots_build with a line (or point) per group of runs (groups.h): a group of one run is
 * drawn as plots_build draws it; a seed group as the mean of its runs with the sd as a light
 * band (curves vs step, the detection grid; at the first run's x values) or as error bars
 * (columns vs λ, α), its runs as faint lines or points. */
int plots_build_groups(ReportPlots *out, const RunDir *runs, const RunGroups *groups,
                       const MetricColumn *cols, int n_cols, CkError *err);

/* Releases the plots. */
void plots_free(ReportPlots *p);

#endif
