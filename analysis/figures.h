/* figures.h — gnuplot figures of token contrasts. Each figure is a data file and a gnuplot
 * script written next to the image (NAME.dat, NAME.gp, NAME.png or NAME.svg), so a user can
 * edit the script and re-run `gnuplot NAME.gp` in that folder. gnuplot runs as a separate
 * program (no shell; the folder is passed with gnuplot's own `cd`); when it is missing the
 * data and scripts are still written and the target's note says how to install it. Labels are
 * printed verbatim (noenhanced terminals), with control bytes in caret notation and bytes that
 * are not UTF-8 as '?', so a token's text can never break a script, a data line or an SVG. */
#ifndef CK_FIGURES_H
#define CK_FIGURES_H

#include "util/ck_error.h"

/* One response token of the heatmaps. */
typedef struct {
    int example, position;
    const char *text; /* the token's text (any bytes) */
    double log_ratio; /* log pA - log pM */
    int flagged;      /* at the figure's λ */
} FigureToken;

/* One point of a curve over λ. */
typedef struct {
    double lambda;
    double flagged_fraction;
    double precision, recall; /* negative: unknown (no error spans) */
    int labelled;             /* 1: label this point with its λ on the PR curve */
} FigureLambdaPoint;

typedef struct {
    const char *dir;    /* folder for NAME.dat, NAME.gp and the image (must exist) */
    const char *format; /* "png" (pngcairo) or "svg" */
    int checked;        /* internal: 1 once gnuplot was looked for */
    int gnuplot_ran;    /* out: 1 when gnuplot made at least one image */
    char note[1024];    /* out: why gnuplot did not run, with how to install it ("" if it did) */
} FigureTarget;

/* Looks for gnuplot (once per target); returns 1 when it runs, else fills t->note with how to
 * install it and returns 0. The figure functions call it themselves. */
int figures_have_gnuplot(FigureTarget *t);

/* heatmap: one row per example, in order of first appearance (its record index on the axis
 * when there are few rows), one cell per position, colour = log ratio clamped to
 * [-L, L] nats (L: the largest |log ratio| rounded up, kept within [1, 8]), flagged tokens
 * outlined; lambda is shown in the title. */
int figures_heatmap(FigureTarget *t, const FigureToken *tokens, int n, double lambda, CkError *err);

/* strip: the tokens of one example as bars (log ratio) with the token texts as labels,
 * flagged ones red, the line log λ dashed. Fails when the example has no token in tokens. */
int figures_strip(FigureTarget *t, const FigureToken *tokens, int n, int example, double lambda,
                  CkError *err);

/* lambda: the fraction of tokens flagged against λ (log axis); when every point has a
 * precision and recall also pr: precision against recall over λ, the labelled points
 * marked with their λ (λ values that flag nothing, where precision is 0 by convention, are left
 * out of the curve). */
int figures_lambda(FigureTarget *t, const FigureLambdaPoint *points, int n, CkError *err);

#endif
