/* plots.c — see plots.h. */
#include "reports/plots.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int curves(ReportPlots *out, const RunDir *runs, int n_runs, CkError *err) {
    SvgSeries *series = calloc((size_t)n_runs + 1, sizeof *series);
    double **xs = calloc((size_t)n_runs + 1, sizeof *xs);
    int rc = (series && xs) ? 0 : ck_fail(err, "out of memory");
    for (int r = 0; rc == 0 && r < n_runs; r++)
        if (runs[r].steps.n > 0 && !(xs[r] = step_axis(&runs[r].steps)))
            rc = ck_fail(err, "out of memory");
    for (size_t c = 0; rc == 0 && c < sizeof CURVES / sizeof CURVES[0]; c++) {
        int n = 0;
        for (int r = 0; r < n_runs; r++) {
            const RunSteps *s = &runs[r].steps;
            const double *y = *(double *const *)((const char *)s + CURVES[c].offset);
            int finite = 0, nonzero = 0;
            for (int i = 0; i < s->n; i++) {
                finite |= isfinite(y[i]);
                nonzero |= isfinite(y[i]) && y[i] != 0;
            }
            if (!finite || (CURVES[c].skip_zero && !nonzero)) continue;
            series[n++] = (SvgSeries){runs[r].label, xs[r], y, s->n};
        }
        SvgPlot p = {CURVES[c].title, "step", CURVES[c].y_label, 0, 0, 0};
        rc = add_plot(out, CURVES[c].name, CURVES[c].caption, &p, series, n, err);
    }
    for (int r = 0; xs && r < n_runs; r++) free(xs[r]);
    free(xs);
    free(series);
    return rc;
}

typedef struct {
    double x, y, group;
} Point;

static int by_group_then_x(const void *a, const void *b) {
    const Point *p = a, *q = b;
    if (p->group != q->group) {
        if (isnan(p->group)) return 1;
        if (isnan(q->group)) return -1;
        return p->group < q->group ? -1 : 1;
    }
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

/* Column c against config key x_key (λ or α), one line per value of group_key among the runs
 * that have both (a single line when they all share it). */
static int metric_vs(ReportPlots *out, const RunDir *runs, int n_runs, const MetricColumn *c,
                     const char *x_key, const char *x_sym, const char *group_key,
                     const char *group_sym, CkError *err) {
    Point *pts = malloc(sizeof *pts * (size_t)(n_runs + 1));
    double *xs = malloc(sizeof(double) * (size_t)(n_runs + 1));
    double *ys = malloc(sizeof(double) * (size_t)(n_runs + 1));
    double *gs = malloc(sizeof(double) * (size_t)(n_runs + 1));
    SvgSeries *series = calloc((size_t)n_runs + 1, sizeof *series);
    char(*labels)[64] = calloc((size_t)n_runs + 1, sizeof *labels);
    int rc = 0, n = 0;
    if (!pts || !xs || !ys || !gs || !series || !labels) {
        rc = ck_fail(err, "out of memory");
        goto done;
    }
    for (int r = 0; r < n_runs; r++) {
        double x = rundir_config_number(&runs[r], x_key), y = metric_value(c, &runs[r]);
        if (isfinite(x) && isfinite(y))
            pts[n++] = (Point){x, y, rundir_config_number(&runs[r], group_key)};
    }
    for (int i = 0; i < n; i++) xs[i] = pts[i].x;
    if (count_distinct(xs, n) < 2) goto done;
    for (int i = 0; i < n; i++) gs[i] = pts[i].group;
    int grouped = count_distinct(gs, n) > 1;
    if (!grouped)
        for (int i = 0; i < n; i++) pts[i].group = 0;
    qsort(pts, (size_t)n, sizeof *pts, by_group_then_x);
    int n_series = 0;
    for (int i = 0; i < n; i++) {
        xs[i] = pts[i].x;
        ys[i] = pts[i].y;
        int same = i > 0 && (pts[i].group == pts[i - 1].group ||
                             (isnan(pts[i].group) && isnan(pts[i - 1].group)));
        if (!same) {
            if (!grouped)
                snprintf(labels[n_series], sizeof labels[0], "%s", "runs");
            else if (isnan(pts[i].group))
                snprintf(labels[n_series], sizeof labels[0], "%s unset", group_sym);
            else
                snprintf(labels[n_series], sizeof labels[0], "%s = %g", group_sym, pts[i].group);
            series[n_series] = (SvgSeries){labels[n_series], &xs[i], &ys[i], 0};
            n_series++;
        }
        series[n_series - 1].n++;
    }
    char name[160], title[200], caption[300];
    snprintf(name, sizeof name, "%s_vs_%s.svg", c->slug, x_key);
    snprintf(title, sizeof title, "%s vs %s", c->title, x_sym);
    snprintf(caption, sizeof caption, "%s of each run against its %s (config.json)%s.", c->title,
             x_sym, grouped ? ", a line per value of the other hyperparameter" : "");
    SvgPlot p = {title, x_sym, c->title, 0, 0, 1};
    rc = add_plot(out, name, caption, &p, series, n_series, err);
done:
    free(pts);
    free(xs);
    free(ys);
    free(gs);
    free(series);
    free(labels);
    return rc;
}

/* detection.json: token F1 against its λ grid, a line per run. */
static int detection(ReportPlots *out, const RunDir *runs, int n_runs, CkError *err) {
    SvgSeries *series = calloc((size_t)n_runs + 1, sizeof *series);
    double **buf = calloc((size_t)n_runs + 1, sizeof *buf);
    int rc = (series && buf) ? 0 : ck_fail(err, "out of memory"), n = 0;
    for (int r = 0; rc == 0 && r < n_runs; r++) {
        const cJSON *d = runs[r].json[RUN_DETECTION];
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(d, "lambdas");
        int m = cJSON_IsArray(l) ? cJSON_GetArraySize(l) : 0;
        if (m == 0) continue;
        if (!(buf[r] = malloc(sizeof(double) * 2 * (size_t)m))) {
            rc = ck_fail(err, "out of memory");
            break;
        }
        char path[64];
        for (int i = 0; i < m; i++) {
            snprintf(path, sizeof path, "lambdas/%d", i);
            buf[r][i] = rundir_json_number(d, path);
            snprintf(path, sizeof path, "token/f1/%d", i);
            buf[r][m + i] = rundir_json_number(d, path);
        }
        series[n++] = (SvgSeries){runs[r].label, buf[r], buf[r] + m, m};
    }
    if (rc == 0) {
        SvgPlot p = {"Detection F1 vs \xCE\xBB", "\xCE\xBB", "token F1", 0, 0, 1};
        rc = add_plot(out, "detection_grid_f1.svg",
                      "Token-level F1 of the flags against the true error tokens, at each "
                      "\xCE\xBB of detection.json.",
                      &p, series, n, err);
    }
    for (int r = 0; buf && r < n_runs; r++) free(buf[r]);
    free(buf);
    free(series);
    return rc;
}

int plots_build(ReportPlots *out, const RunDir *runs, int n_runs, const MetricColumn *cols,
                int n_cols, CkError *err) {
    memset(out, 0, sizeof *out);
    int rc = curves(out, runs, n_runs, err);
    for (int c = 0; rc == 0 && c < n_cols; c++)
        rc = metric_vs(out, runs, n_runs, &cols[c], "lambda", "\xCE\xBB", "alpha", "\xCE\xB1", err);
    for (int c = 0; rc == 0 && c < n_cols; c++)
        rc = metric_vs(out, runs, n_runs, &cols[c], "alpha", "\xCE\xB1", "lambda", "\xCE\xBB", err);
    if (rc == 0) rc = detection(out, runs, n_runs, err);
    if (rc != 0) plots_free(out);
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
