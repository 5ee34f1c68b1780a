/* contrast_views.h — what a contrast run shows besides its CSV: the figures (figures.h: a
 * heatmap of the first examples, the strip of one example, the flagged fraction and, with
 * known errors, precision against recall over λ) and the terminal view of an example with its
 * flagged tokens marked. A ContrastViews collects the figures' tokens example by example, fed
 * from contrast_run's per-example callback. */
#ifndef CK_CONTRAST_VIEWS_H
#define CK_CONTRAST_VIEWS_H

#include <stdio.h>

#include "util/ck_error.h"
#include "analysis/contrast_run.h"
#include "analysis/figures.h"

typedef struct {
    FigureToken *items; /* texts owned */
    int n, cap;
} ContrastTokens;

typedef struct {
    int heatmap_rows;   /* examples in the heatmap: the first ones */
    long strip_example; /* record index drawn as the strip; -1: the first example */
    FILE *show;         /* the terminal view's stream (NULL: no view) */
    int show_max;       /* examples shown at most */
    int show_colour;    /* ANSI colours (a terminal) instead of [[token]]{+ratio} markers */
    double lambda;      /* the λ of the examples' flags (the first requested one) */
    /* collected */
    ContrastTokens heat, strip;
    int heat_examples, strip_found, shown;
} ContrastViews;

/* Starts v with the settings above (v->show and what follows it may be set after this);
 * nothing is allocated until examples arrive. */
void contrast_views_init(ContrastViews *v, int heatmap_rows, long strip_example, double lambda);

/* Releases the collected tokens and zeroes v. */
void contrast_views_free(ContrastViews *v);

/* contrast_run's on_example callback (ctx: a ContrastViews): keeps the tokens of the heatmap's
 * examples and of the strip's example (texts copied) and prints the first show_max examples
 * to v->show. Fails only when out of memory. */
int contrast_views_add(void *ctx, const ContrastExampleView *ex, CkError *err);

/* Prints example ex to out with its flagged tokens marked: white on red with the log ratio
 * in red when colour is set, else [[token]]{+ratio}; EOS shows as </s>. */
void contrast_show_example(FILE *out, const ContrastExampleView *ex, double lambda, int colour);

/* Draws the figures of run r into t->dir (which must exist) in t->format: the heatmap and the
 * strip of what v collected (no strip when its example never arrived: v->strip_found is 0),
 * then lambda and, with known errors, pr over r's λ grid. t's note and gnuplot_ran say
 * whether images were made (figures.h). */
int contrast_views_draw(const ContrastViews *v, const ContrastRunResult *r, FigureTarget *t,
                        CkError *err);

#endif
