/* layout_plots.c — see layout_plots.h. */
#include "reports/layout_plots.h"

#include <stdio.h>
#include <string.h>

#include "reports/labels.h"

static double judgments_of(const RunDir *rd) {
    return label_judgments(rd);
}

static double align_p_ratio_of(const RunDir *rd) {
    int full;
    return label_align_p_ratio(rd, &full);
}

/* The keys that are Figure 4's axis: the counts labels.c reads, the data files the counts
 * come from (a larger subset is another file), and the lengths that follow the data's size. */
static const char *const DATA_KEYS[] = {
    "judgments_used", "n_judgments", "pairs_used", "n_pairs", "cut_data",
    "objective_data", "judgments",   "data",       "pairs",   "limit",
    "steps",          "epochs",      NULL,
};

/* Figure 7's axis: the ratio and the data counts it changes. */
static const char *const RATIO_KEYS[] = {"align_p_ratio", "cut_data", "steps", NULL};

static const PlotAxis FIG4_AXIS = {
    "#J", "number of judgments (or preference pairs) trained on", DATA_KEYS, judgments_of,
    "; Figure 4 of the paper: CUT vs DPO as the data grows; runs of one objective whose data "
    "files differ are one line (name another data condition with a config.json key such as "
    "\"setting\" to draw it apart)"};

static const PlotAxis FIG7_AXIS = {
    "Align-P ratio", "Align-P ratio N = |Align-P| / |Align-N|", RATIO_KEYS, align_p_ratio_of,
    "; Figure 7 of the paper; a run without downsampling (\"full\") is at its data's own "
    "ratio"};

int layout_plots_build(ReportPlots *out, LayoutKind k, const RunDir *runs, const RunGroups *groups,
                       const MetricColumn *cols, int n_cols, CkError *err) {
    if (k != LAYOUT_FIG4 && k != LAYOUT_FIG7) return 0;
    const PlotAxis *axis = k == LAYOUT_FIG4 ? &FIG4_AXIS : &FIG7_AXIS;
    const char *first = k == LAYOUT_FIG4 ? "win_rate" : "tqa_mc2";
    const MetricColumn *paper = metric_column_by_slug(first);
    char name[160];
    snprintf(name, sizeof name, "%s_%s.svg", layout_name(k), first);
    if (paper && plots_metric_vs(out, runs, groups, paper, axis, name, err) != 0) return -1;
    for (int c = 0; c < n_cols; c++) {
        if (!strcmp(cols[c].slug, first)) continue;
        snprintf(name, sizeof name, "%s_%s.svg", layout_name(k), cols[c].slug);
        if (plots_metric_vs(out, runs, groups, &cols[c], axis, name, err) != 0) return -1;
    }
    return 0;
}
