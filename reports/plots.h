/* plots.h — which plots a set of runs gets, rendered with svgplot: training curves from
 * steps.jsonl (L_A, L_M, flagged fraction vs step, a line per run), every table column vs λ
 * and vs α when the runs differ in them (a line per setting: runs that differ in anything but
 * the axis and the seed are never joined), and token-level detection F1 vs λ. */
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

/* An x axis of plots against a value of each run's config.json. */
typedef struct {
    const char *sym;                  /* axis label and title ("λ") */
    const char *what;                 /* the caption's name of it; NULL: sym */
    const char *const *exclude;       /* config keys that are this axis (NULL-ended): left out of
                                         the settings that decide the lines (plot_lines.h) */
    double (*x_of)(const RunDir *rd); /* the run's x, NAN when it has none */
    const char *note;                 /* appended to the caption; NULL: none */
} PlotAxis;

/* Adds to out, as file `name`, column c against the axis over the groups' runs: a point per
 * run (a seed group: its mean with an sd error bar, its runs as faint points), a line per
 * setting (plot_lines.h); nothing when fewer than two distinct x values have the column. */
int plots_metric_vs(ReportPlots *out, const RunDir *runs, const RunGroups *groups,
                    const MetricColumn *c, const PlotAxis *axis, const char *name, CkError *err);

/* Releases the plots. */
void plots_free(ReportPlots *p);

#endif
