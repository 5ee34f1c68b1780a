/* svgplot.h — a small SVG line-plot writer: axes with round-number ticks, one coloured line
 * per series (gaps where y is not finite), optional point markers, error bars or a band, faint
 * companion series (the single runs behind a mean), a legend. Plain SVG 1.1:
 * it works as a .svg file and inline in HTML, with no scripts and no external resources. */
#ifndef CK_SVGPLOT_H
#define CK_SVGPLOT_H

#include "util/ck_error.h"

typedef struct {
    const char *label;   /* legend text (UTF-8, escaped on output) */
    const double *x, *y; /* n points in drawing order; a non-finite x or y breaks the line */
    int n;
    const double *spread; /* NULL, or y[i] ± spread[i] (e.g. the sd over seeds): error bars
                             with markers, a light band around the line without */
    int faint; /* 1: the single runs behind the series before it: drawn in its colour but light
                  (points with markers, thin lines without), no legend entry */
} SvgSeries;

typedef struct {
    const char *title, *x_label, *y_label; /* UTF-8; NULL: none */
    int width, height;                     /* pixels; 0: 560 x 340 */
    int markers; /* a dot at every point (few points, e.g. vs λ), and 5% of margin in the axes */
} SvgPlot;

/* Renders the plot of the n_series series into a malloc'd NUL-terminated SVG document
 * (*out; caller frees). Series longer than 2000 points are thinned to every k-th point (the
 * last always kept). Fails when no series has a finite point, or when out of memory. */
int svgplot_render(const SvgPlot *p, const SvgSeries *series, int n_series, char **out,
                   CkError *err);

/* The colour of the i-th series that is not faint, as "#rrggbb" (the same palette the plots
 * use). */
const char *svgplot_color(int i);

#endif
