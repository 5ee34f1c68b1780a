/* layout_plots.h — the CUT paper's figure layouts (`cutkit report --layout fig4,fig7`) as SVG
 * plots of the report (plots.h), a line per setting (plot_lines.h: runs of other data
 * conditions, objectives or settings are never joined), seed groups as mean ± sd:
 *
 *   fig4  CUT vs DPO as the data grows ([P4] Figure 4): each column against the number of
 *         judgments or preference pairs trained on (labels.h: label_judgments), AlpacaEval win
 *         rate first: plots/fig4_<column>.svg
 *   fig7  TruthfulQA against the Align-P ratio N = |Align-P| / |Align-N| ([P4] Figure 7;
 *         labels.h: label_align_p_ratio, a run without downsampling at its data's own ratio,
 *         the paper's "full"), TruthfulQA MC2 first: plots/fig7_<column>.svg */
#ifndef CK_LAYOUT_PLOTS_H
#define CK_LAYOUT_PLOTS_H

#include "reports/layout.h"
#include "reports/plots.h"

/* Appends the plots of figure layout k (LAYOUT_FIG4 or LAYOUT_FIG7) to out: its paper column
 * first, then each of cols[0..n_cols) that has values at two or more x values. Fails only
 * when out of memory. */
int layout_plots_build(ReportPlots *out, LayoutKind k, const RunDir *runs, const RunGroups *groups,
                       const MetricColumn *cols, int n_cols, CkError *err);

#endif
