/* contrast_views.c — collecting the figures' tokens during a contrast run, drawing the
 * figures, and the terminal view. */
#include "analysis/contrast_views.h"

#include <stdlib.h>
#include <string.h>

void contrast_views_init(ContrastViews *v, int heatmap_rows, long strip_example, double lambda) {
    memset(v, 0, sizeof *v);
    v->heatmap_rows = heatmap_rows;
    v->strip_example = strip_example;
    v->lambda = lambda;
}

static void tokens_free(ContrastTokens *l) {
    for (int i = 0; i < l->n; i++) free((char *)l->items[i].text);
    free(l->items);
    memset(l, 0, sizeof *l);
}

void contrast_views_free(ContrastViews *v) {
    tokens_free(&v->heat);
    tokens_free(&v->strip);
    memset(v, 0, sizeof *v);
}

/* The bytes of token row r in response (len bytes), clamped to it. */
static void token_bytes(const TokenContrastRow *r, int len, int *a, int *b) {
    *a = r->start < len ? r->start : len;
    *b = r->end < len ? r->end : len;
}

/* Appends the tokens of ex (texts copied) to l. */
static int tokens_add(ContrastTokens *l, const ContrastExampleView *ex, CkError *err) {
    const TokenContrast *c = ex->contrast;
    const char *resp = ex->record->output;
    const int len = (int)strlen(resp);
    if (l->n + c->n > l->cap) {
        int cap = l->cap ? l->cap : 1024;
        while (cap < l->n + c->n) cap *= 2;
        FigureToken *g = realloc(l->items, sizeof *g * (size_t)cap);
        if (!g) return ck_fail(err, "out of memory");
        l->items = g;
        l->cap = cap;
    }
    for (int t = 0; t < c->n; t++) {
        const TokenContrastRow *r = &c->tokens[t];
        int a, b;
        token_bytes(r, len, &a, &b);
        /* EOS has no bytes in the response: name it, so its bar has a label */
        char *text = r->end > r->start ? strndup(resp + a, (size_t)(b - a)) : strdup("</s>");
        if (!text) return ck_fail(err, "out of memory");
        l->items[l->n++] =
            (FigureToken){(int)ex->example, t, text, r->log_pa - r->log_pm, ex->flags[t]};
    }
    return 0;
}

void contrast_show_example(FILE *out, const ContrastExampleView *ex, double lambda, int colour) {
    const TokenContrast *c = ex->contrast;
    const char *resp = ex->record->output;
    const int len = (int)strlen(resp);
    int n_flagged = 0;
    for (int t = 0; t < c->n; t++) n_flagged += ex->flags[t];
    fprintf(out, "%s--- example %ld: %d of %d tokens flagged at lambda %g%s\n",
            colour ? "\033[1m" : "", ex->example, n_flagged, c->n, lambda, colour ? "\033[0m" : "");
    for (int t = 0; t < c->n; t++) {
        const TokenContrastRow *r = &c->tokens[t];
        int a, b;
        token_bytes(r, len, &a, &b);
        if (!ex->flags[t]) {
            fwrite(resp + a, 1, (size_t)(b - a), out);
            continue;
        }
        fputs(colour ? "\033[1;97;41m" : "[[", out);
        if (r->end <= r->start)
            fputs("</s>", out); /* EOS */
        else
            fwrite(resp + a, 1, (size_t)(b - a), out);
        fprintf(out, colour ? "\033[0m\033[31m{%+.1f}\033[0m" : "]]{%+.1f}", r->log_pa - r->log_pm);
    }
    fputc('\n', out);
}

int contrast_views_add(void *ctx, const ContrastExampleView *ex, CkError *err) {
    ContrastViews *v = ctx;
    if (v->heat_examples < v->heatmap_rows) {
        if (tokens_add(&v->heat, ex, err) != 0) return -1;
        v->heat_examples++;
    }
    if (!v->strip_found && (v->strip_example < 0 || ex->example == v->strip_example)) {
        if (tokens_add(&v->strip, ex, err) != 0) return -1;
        v->strip_found = 1;
        v->strip_example = ex->example;
    }
    if (v->show && v->shown < v->show_max) {
        contrast_show_example(v->show, ex, v->lambda, v->show_colour);
        v->shown++;
    }
    return 0;
}

/* The lambda and pr figures: the flagged fraction of every example and, with known errors,
 * precision and recall at each λ of r's grid (the requested λs labelled). */
static int draw_lambda(const ContrastRunResult *r, FigureTarget *t, CkError *err) {
    FigureLambdaPoint *pts = malloc(sizeof *pts * (size_t)(r->n_grid ? r->n_grid : 1));
    if (!pts) return ck_fail(err, "out of memory");
    for (int g = 0; g < r->n_grid; g++) {
        const DetectionScores all = detection_scores(&r->all[g]);
        const DetectionScores known = detection_scores(&r->grid[g]);
        int labelled = 0;
        for (int i = 0; i < r->n_lambdas; i++) labelled |= r->requested[i] == g;
        pts[g] = (FigureLambdaPoint){r->grid_lambdas[g], all.flagged_fraction,
                                     r->n_known ? known.precision : -1,
                                     r->n_known ? known.recall : -1, labelled};
    }
    int rc = r->n_examples > 0 ? figures_lambda(t, pts, r->n_grid, err) : 0;
    free(pts);
    return rc;
}

int contrast_views_draw(const ContrastViews *v, const ContrastRunResult *r, FigureTarget *t,
                        CkError *err) {
    if (v->heat.n > 0 && figures_heatmap(t, v->heat.items, v->heat.n, v->lambda, err) != 0)
        return -1;
    if (v->strip.n > 0 &&
        figures_strip(t, v->strip.items, v->strip.n, (int)v->strip_example, v->lambda, err) != 0)
        return -1;
    return draw_lambda(r, t, err);
}
