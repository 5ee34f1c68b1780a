/* plots.c — see plots.h. */
#include "reports/plots.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reports/plot_lines.h"
#include "reports/stats.h"
#include "reports/svgplot.h"

static int add_plot(ReportPlots *out, const char *name, const char *caption, const SvgPlot *p,
                    const SvgSeries *series, int n_series, CkError *err) {
    int has_point = 0;
    for (int s = 0; s < n_series && !has_point; s++)
        for (int i = 0; i < series[s].n && !has_point; i++)
            has_point = isfinite(series[s].x[i]) && isfinite(series[s].y[i]);
    if (!has_point) return 0;
    if (out->n == out->cap) {
        int cap = out->cap ? out->cap * 2 : 8;
        ReportPlot *q = realloc(out->plots, sizeof *q * (size_t)cap);
        if (!q) return ck_fail(err, "out of memory");
        out->plots = q;
        out->cap = cap;
    }
    ReportPlot *rp = &out->plots[out->n];
    memset(rp, 0, sizeof *rp);
    if (svgplot_render(p, series, n_series, &rp->svg, err) != 0) return -1;
    rp->name = strdup(name);
    rp->caption = strdup(caption);
    out->n++;
    if (!rp->name || !rp->caption) return ck_fail(err, "out of memory");
    return 0;
}

/* steps.jsonl's step column, or the line number where a line has none. */
static double *step_axis(const RunSteps *s) {
    double *x = malloc(sizeof(double) * (size_t)(s->n + 1));
    if (x)
        for (int i = 0; i < s->n; i++) x[i] = isfinite(s->step[i]) ? s->step[i] : i + 1;
    return x;
}

typedef struct {
    const char *name, *title, *y_label, *caption;
    size_t offset; /* of the column in RunSteps */
    int skip_zero; /* leave out runs where it is 0 throughout (L_M of an MLE run) */
} CurveSpec;

static const CurveSpec CURVES[] = {
    {"loss_mle.svg", "L_A (loss_mle) vs step", "L_A",
     "Training curve: L_A, the likelihood loss of the Align-P/Align-N tokens, per update.",
     offsetof(RunSteps, loss_mle), 0},
    {"loss_ul.svg", "L_M (loss_ul) vs step", "L_M",
     "Training curve: L_M, the Misalign loss (unlikelihood on flagged tokens), per update; "
     "runs without it are left out.",
     offsetof(RunSteps, loss_ul), 1},
    {"flagged_fraction.svg", "Flagged fraction vs step", "flagged fraction",
     "Training curve: the fraction of Misalign tokens flagged, per update.",
     offsetof(RunSteps, flagged_fraction), 0},
};

/* Buffers that live until a plot is rendered, released together. */
typedef struct {
    double **bufs;
    int n, cap;
} Scratch;

static double *scratch_alloc(Scratch *sc, int n) {
    if (sc->n == sc->cap) {
        int cap = sc->cap ? sc->cap * 2 : 16;
        double **p = realloc(sc->bufs, sizeof *p * (size_t)cap);
        if (!p) return NULL;
        sc->bufs = p;
        sc->cap = cap;
    }
    double *b = malloc(sizeof(double) * (size_t)(n + 1));
    if (b) sc->bufs[sc->n++] = b;
    return b;
}

static void scratch_free(Scratch *sc) {
    for (int i = 0; i < sc->n; i++) free(sc->bufs[i]);
    free(sc->bufs);
    memset(sc, 0, sizeof *sc);
}

/* Appends to series[*n] the mean of the k member series (at the first member's x: a member
 * counts at index i when it has the same x there and a finite y), with the sd where two or
 * more count, labelled label; then each member as a faint series. */
static int add_mean_and_members(SvgSeries *series, int *n, const SvgSeries *members, int k,
                                const char *label, Scratch *sc) {
    const SvgSeries *first = &members[0];
    double *mean = scratch_alloc(sc, first->n), *sd = scratch_alloc(sc, first->n);
    double *v = scratch_alloc(sc, k);
    if (!mean || !sd || !v) return -1;
    for (int i = 0; i < first->n; i++) {
        int m = 0;
        for (int j = 0; j < k; j++)
            if (i < members[j].n && members[j].x[i] == first->x[i] && isfinite(members[j].y[i]))
                v[m++] = members[j].y[i];
        mean[i] = sd[i] = NAN;
        if (m > 0) stats_mean_sd(v, m, &mean[i], &sd[i]);
        if (m < 2) sd[i] = NAN;
    }
    series[(*n)++] = (SvgSeries){label, first->x, mean, first->n, sd, 0};
    for (int j = 0; j < k; j++) {
        series[*n] = members[j];
        series[(*n)++].faint = 1;
    }
    return 0;
}

/* Whether run r has curve c to draw. */
static const double *curve_of(const RunDir *rd, const CurveSpec *c) {
    const RunSteps *s = &rd->steps;
    const double *y = *(double *const *)((const char *)s + c->offset);
    int finite = 0, nonzero = 0;
    for (int i = 0; i < s->n; i++) {
        finite |= isfinite(y[i]);
        nonzero |= isfinite(y[i]) && y[i] != 0;
    }
    return finite && !(c->skip_zero && !nonzero) ? y : NULL;
}

/* The series of curve c: a line per run, or per seed group its mean with a band and its runs
 * as faint lines. */
static int curve_series(const RunDir *runs, const RunGroups *groups, double *const *xs,
                        const CurveSpec *c, SvgSeries *series, SvgSeries *members, Scratch *sc) {
    int n = 0;
    for (int k = 0; k < groups->n; k++) {
        const RunGroup *g = &groups->groups[k];
        int m = 0;
        for (int j = 0; j < g->n; j++) {
            const RunDir *rd = &runs[g->members[j]];
            const double *y = curve_of(rd, c);
            if (y) members[m++] = (SvgSeries){rd->label, xs[g->members[j]], y, rd->steps.n, 0, 0};
        }
        if (m == 0) continue;
        if (g->n == 1) {
            series[n] = members[0];
            series[n++].label = g->label;
        } else if (add_mean_and_members(series, &n, members, m, g->label, sc) != 0) {
            return -1;
        }
    }
    return n;
}

static int curves(ReportPlots *out, const RunDir *runs, int n_runs, const RunGroups *groups,
                  CkError *err) {
    SvgSeries *series = calloc(2 * (size_t)n_runs + 1, sizeof *series);
    SvgSeries *members = calloc((size_t)n_runs + 1, sizeof *members);
    double **xs = calloc((size_t)n_runs + 1, sizeof *xs);
    Scratch sc = {0};
    int rc = (series && members && xs) ? 0 : ck_fail(err, "out of memory");
    for (int r = 0; rc == 0 && r < n_runs; r++)
        if (runs[r].steps.n > 0 && !(xs[r] = step_axis(&runs[r].steps)))
            rc = ck_fail(err, "out of memory");
    for (size_t c = 0; rc == 0 && c < sizeof CURVES / sizeof CURVES[0]; c++) {
        int n = curve_series(runs, groups, xs, &CURVES[c], series, members, &sc);
        if (n < 0) {
            rc = ck_fail(err, "out of memory");
            break;
        }
        SvgPlot p = {CURVES[c].title, "step", CURVES[c].y_label, 0, 0, 0};
        rc = add_plot(out, CURVES[c].name, CURVES[c].caption, &p, series, n, err);
    }
    for (int r = 0; xs && r < n_runs; r++) free(xs[r]);
    free(xs);
    free(series);
    free(members);
    scratch_free(&sc);
    return rc;
}

/* A point of a metric-vs-config-value plot: a run, or a seed group's mean (sd; its runs'
 * values are fy[first .. first + count)), on line `line` (plot_lines.h). */
typedef struct {
    double x, y, sd;
    int line, first, count;
} Point;

static int by_line_then_x(const void *a, const void *b) {
    const Point *p = a, *q = b;
    if (p->line != q->line) return p->line < q->line ? -1 : 1;
    return (p->x > q->x) - (p->x < q->x);
}

static int count_distinct(const double *v, int n) {
    int distinct = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = v[j] == v[i];
        distinct += !seen;
    }
    return distinct;
}

/* The points of column c against the axis: one per run of a single-run group (its value as
 * shown), one per seed group (the mean of its runs' values, their sd, the values in fy), each
 * on the line of its settings without the axis's keys; returns their count, or -1 when out
 * of memory. */
static int collect_points(const RunDir *runs, const RunGroups *groups, const MetricColumn *c,
                          const PlotAxis *axis, PlotLines *lines, Point *pts, double *fy) {
    int n = 0, used = 0;
    for (int k = 0; k < groups->n; k++) {
        const RunGroup *g = &groups->groups[k];
        Point p = {NAN, NAN, NAN, 0, used, 0};
        for (int j = 0; j < g->n; j++) {
            const RunDir *rd = &runs[g->members[j]];
            double x = axis->x_of(rd);
            double y = g->n == 1 ? metric_value(c, rd) : metric_scaled_value(c, rd);
            if (!isfinite(x) || !isfinite(y)) continue;
            if (p.count == 0) {
                p.x = x;
                if ((p.line = plot_lines_add(lines, rd, axis->exclude)) < 0) return -1;
            }
            fy[used + p.count++] = y;
        }
        if (p.count == 0) continue;
        stats_mean_sd(fy + used, p.count, &p.y, &p.sd);
        if (g->n == 1) p.y = fy[used], p.sd = NAN;
        if (p.count < 2) p.sd = NAN;
        if (g->n > 1) used += p.count;
        p.count = g->n > 1 ? p.count : 0;
        pts[n++] = p;
    }
    return n;
}

/* The series of the sorted points: a line per PlotLines line, each with the sd of its seed
 * groups as error bars and, after it, their runs as faint points. Buffers go to sc. Returns
 * the count. */
static int point_series(const Point *pts, int n, const double *fy, const PlotLines *lines,
                        SvgSeries *series, Scratch *sc) {
    double *xs = scratch_alloc(sc, n), *ys = scratch_alloc(sc, n), *sds = scratch_alloc(sc, n);
    int total = 0;
    for (int i = 0; i < n; i++) total += pts[i].count;
    double *fx = scratch_alloc(sc, total), *fyy = scratch_alloc(sc, total);
    if (!xs || !ys || !sds || !fx || !fyy) return -1;
    int n_series = 0, f = 0;
    for (int i = 0; i < n;) {
        int end = i;
        while (end + 1 < n && pts[end + 1].line == pts[i].line) end++;
        int f0 = f, spread = 0;
        for (int k = i; k <= end; k++) {
            xs[k] = pts[k].x, ys[k] = pts[k].y, sds[k] = pts[k].sd;
            spread |= pts[k].count > 0;
            for (int j = 0; j < pts[k].count; j++, f++)
                fx[f] = pts[k].x, fyy[f] = fy[pts[k].first + j];
        }
        series[n_series++] = (SvgSeries){lines->labels[pts[i].line], &xs[i], &ys[i], end - i + 1,
                                         spread ? &sds[i] : NULL,    0};
        if (f > f0)
            series[n_series++] = (SvgSeries){"single runs", &fx[f0], &fyy[f0], f - f0, NULL, 1};
        i = end + 1;
    }
    return n_series;
}

/* Renders column c against the axis into out as name (see plots_metric_vs). */
static int render_metric_vs(ReportPlots *out, const Point *pts, int n, const double *fy,
                            const PlotLines *lines, const MetricColumn *c, const PlotAxis *axis,
                            const char *name, SvgSeries *series, Scratch *sc, CkError *err) {
    int any_group = 0;
    for (int i = 0; i < n; i++) any_group |= pts[i].count > 0;
    int n_series = point_series(pts, n, fy, lines, series, sc);
    if (n_series < 0) return ck_fail(err, "out of memory");
    char title[200], caption[600];
    snprintf(title, sizeof title, "%s vs %s", c->title, axis->sym);
    snprintf(caption, sizeof caption, "%s of each run against its %s (config.json)%s%s%s.",
             c->title, axis->what ? axis->what : axis->sym,
             lines->n > 1 ? ", a line per setting: runs that differ in anything but this "
                            "axis and the seed are never joined"
                          : "",
             any_group ? "; seed groups as their mean \xC2\xB1 sd, their runs as light points" : "",
             axis->note ? axis->note : "");
    SvgPlot p = {title, axis->sym, c->title, 0, 0, 1};
    return add_plot(out, name, caption, &p, series, n_series, err);
}

int plots_metric_vs(ReportPlots *out, const RunDir *runs, const RunGroups *groups,
                    const MetricColumn *c, const PlotAxis *axis, const char *name, CkError *err) {
    int n_runs = 0;
    for (int k = 0; k < groups->n; k++) n_runs += groups->groups[k].n;
    Point *pts = malloc(sizeof *pts * (size_t)(n_runs + 1));
    double *fy = malloc(sizeof(double) * (size_t)(n_runs + 1));
    double *vals = malloc(sizeof(double) * (size_t)(n_runs + 1));
    SvgSeries *series = calloc(2 * (size_t)n_runs + 1, sizeof *series);
    PlotLines lines = {0};
    Scratch sc = {0};
    int rc = pts && fy && vals && series ? 0 : ck_fail(err, "out of memory");
    int n = rc == 0 ? collect_points(runs, groups, c, axis, &lines, pts, fy) : 0;
    if (n < 0) rc = ck_fail(err, "out of memory");
    for (int i = 0; i < n; i++) vals[i] = pts[i].x;
    if (rc == 0 && n > 0 && count_distinct(vals, n) >= 2) {
        qsort(pts, (size_t)n, sizeof *pts, by_line_then_x);
        if (plot_lines_label(&lines) != 0)
            rc = ck_fail(err, "out of memory");
        else
            rc = render_metric_vs(out, pts, n, fy, &lines, c, axis, name, series, &sc, err);
    }
    free(pts);
    free(fy);
    free(vals);
    free(series);
    plot_lines_free(&lines);
    scratch_free(&sc);
    return rc;
}

static double config_lambda(const RunDir *rd) {
    return rundir_config_number(rd, "lambda");
}

static double config_alpha(const RunDir *rd) {
    return rundir_config_number(rd, "alpha");
}

static const char *const LAMBDA_KEYS[] = {"lambda", NULL};
static const char *const ALPHA_KEYS[] = {"alpha", NULL};
static const PlotAxis LAMBDA_AXIS = {"\xCE\xBB", NULL, LAMBDA_KEYS, config_lambda, NULL};
static const PlotAxis ALPHA_AXIS = {"\xCE\xB1", NULL, ALPHA_KEYS, config_alpha, NULL};

/* Column c against config's λ or α (<slug>_vs_<key>.svg). */
static int metric_vs(ReportPlots *out, const RunDir *runs, const RunGroups *groups,
                     const MetricColumn *c, const PlotAxis *axis, const char *key, CkError *err) {
    char name[160];
    snprintf(name, sizeof name, "%s_vs_%s.svg", c->slug, key);
    return plots_metric_vs(out, runs, groups, c, axis, name, err);
}

/* detection.json's λ grid and token F1 of run rd into two arrays of sc (*m points), or 0. */
static int detection_curve(const RunDir *rd, Scratch *sc, double **lambdas, double **f1) {
    const cJSON *d = rd->json[RUN_DETECTION];
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(d, "lambdas");
    int m = cJSON_IsArray(l) ? cJSON_GetArraySize(l) : 0;
    if (m == 0) return 0;
    if (!(*lambdas = scratch_alloc(sc, m)) || !(*f1 = scratch_alloc(sc, m))) return -1;
    char path[64];
    for (int i = 0; i < m; i++) {
        snprintf(path, sizeof path, "lambdas/%d", i);
        (*lambdas)[i] = rundir_json_number(d, path);
        snprintf(path, sizeof path, "token/f1/%d", i);
        (*f1)[i] = rundir_json_number(d, path);
    }
    return m;
}

/* detection.json: token F1 against its λ grid, a line per run (a seed group's mean with a
 * band, its runs faint). */
static int detection(ReportPlots *out, const RunDir *runs, int n_runs, const RunGroups *groups,
                     CkError *err) {
    SvgSeries *series = calloc(2 * (size_t)n_runs + 1, sizeof *series);
    SvgSeries *members = calloc((size_t)n_runs + 1, sizeof *members);
    Scratch sc = {0};
    int rc = (series && members) ? 0 : ck_fail(err, "out of memory"), n = 0;
    for (int k = 0; rc == 0 && k < groups->n; k++) {
        const RunGroup *g = &groups->groups[k];
        int n_members = 0;
        for (int j = 0; rc == 0 && j < g->n; j++) {
            const RunDir *rd = &runs[g->members[j]];
            double *l = NULL, *f = NULL;
            int m = detection_curve(rd, &sc, &l, &f);
            if (m < 0) rc = ck_fail(err, "out of memory");
            if (m > 0) members[n_members++] = (SvgSeries){rd->label, l, f, m, NULL, 0};
        }
        if (rc != 0 || n_members == 0) continue;
        if (g->n == 1) {
            series[n] = members[0];
            series[n++].label = g->label;
        } else if (add_mean_and_members(series, &n, members, n_members, g->label, &sc) != 0) {
            rc = ck_fail(err, "out of memory");
        }
    }
    if (rc == 0) {
        SvgPlot p = {"Detection F1 vs \xCE\xBB", "\xCE\xBB", "token F1", 0, 0, 1};
        rc = add_plot(out, "detection_grid_f1.svg",
                      "Token-level F1 of the flags against the true error tokens, at each "
                      "\xCE\xBB of detection.json.",
                      &p, series, n, err);
    }
    free(series);
    free(members);
    scratch_free(&sc);
    return rc;
}

int plots_build_groups(ReportPlots *out, const RunDir *runs, const RunGroups *groups,
                       const MetricColumn *cols, int n_cols, CkError *err) {
    memset(out, 0, sizeof *out);
    int n_runs = 0;
    for (int k = 0; k < groups->n; k++) n_runs += groups->groups[k].n;
    int rc = curves(out, runs, n_runs, groups, err);
    for (int c = 0; rc == 0 && c < n_cols; c++)
        rc = metric_vs(out, runs, groups, &cols[c], &LAMBDA_AXIS, "lambda", err);
    for (int c = 0; rc == 0 && c < n_cols; c++)
        rc = metric_vs(out, runs, groups, &cols[c], &ALPHA_AXIS, "alpha", err);
    if (rc == 0) rc = detection(out, runs, n_runs, groups, err);
    if (rc != 0) plots_free(out);
    return rc;
}

int plots_build(ReportPlots *out, const RunDir *runs, int n_runs, const MetricColumn *cols,
                int n_cols, CkError *err) {
    RunGroups groups;
    memset(out, 0, sizeof *out);
    if (run_groups_build(&groups, runs, n_runs, 1, err) != 0) return -1;
    int rc = plots_build_groups(out, runs, &groups, cols, n_cols, err);
    run_groups_free(&groups);
    return rc;
}

void plots_free(ReportPlots *p) {
    for (int i = 0; i < p->n; i++) {
        free(p->plots[i].name);
        free(p->plots[i].caption);
        free(p->plots[i].svg);
    }
    free(p->plots);
    memset(p, 0, sizeof *p);
}
