/* plot_lines.h — which points of a plot against a config.json value share a line: those whose
 * settings (groups.h: config.json without bookkeeping keys, seed included) are equal once the
 * x axis's own keys are left out. So runs of another data condition, objective or any other
 * setting are never joined into one line (the demo's mixed-world CUT run and the offline runs
 * at α = 1 are two lines), and a seed group is one point. A line's legend names the settings
 * in which the lines differ ("α = 1, setting = offline"). */
#ifndef CK_PLOT_LINES_H
#define CK_PLOT_LINES_H

#include <cjson/cJSON.h>

#include "reports/rundir.h"

typedef struct {
    int n, cap;
    cJSON **settings; /* a line's settings without the excluded keys (NULL: no config.json) */
    char **labels;    /* after plot_lines_label */
} PlotLines;

/* The line of run rd, leaving out the top-level config keys in exclude (NULL-ended): an
 * existing line with equal settings, else a new one. Returns its index, or -1 when out of
 * memory. */
int plot_lines_add(PlotLines *l, const RunDir *rd, const char *const *exclude);

/* Labels every line by the top-level settings in which the lines differ ("λ = 1.1",
 * "α = 1, setting = offline"; objective as the method's name; keys a line lacks are left
 * out, unless two labels would then be equal: "key unset"); a single line is "runs". Returns 0, or
 * -1 when out of memory. */
int plot_lines_label(PlotLines *l);

/* Releases l. */
void plot_lines_free(PlotLines *l);

#endif
