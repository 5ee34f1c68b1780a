/* svgplot.c — see svgplot.h. */
#include "reports/svgplot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reports/escape.h"

#define MAX_POINTS 2000

/* A colour-blind-safe palette (Okabe–Ito), darkest first so lines stay visible on white. */
static const char *PALETTE[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                "#E69F00", "#56B4E9", "#000000", "#F0E442"};
#define N_PALETTE (int)(sizeof PALETTE / sizeof PALETTE[0])

const char *svgplot_color(int i) {
    return PALETTE[((i % N_PALETTE) + N_PALETTE) % N_PALETTE];
}

/* A round step (1, 2 or 5 times a power of ten) giving about `ticks` intervals over range. */
static double nice_step(double range, int ticks) {
    double raw = range / ticks;
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    double nice = f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10;
    return nice * mag;
}

typedef struct {
    double lo, hi, step;
    int decimals;
} Axis;

/* Widens [lo, hi] to whole steps; a degenerate range gets a unit-sized window around it. */
static Axis make_axis(double lo, double hi) {
    Axis a;
    if (hi - lo <= fabs(hi) * 1e-12) {
        double pad = fabs(lo) > 0 ? fabs(lo) * 0.1 : 1.0;
        lo -= pad;
        hi += pad;
    }
    a.step = nice_step(hi - lo, 5);
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    int d = -(int)floor(log10(a.step) + 1e-9);
    a.decimals = d > 0 ? d : 0;
    return a;
}

typedef struct {
    double x0, y0, w, h; /* the plot area in pixels */
    Axis ax, ay;
} Frame;

static double px(const Frame *f, double x) {
    return f->x0 + (x - f->ax.lo) / (f->ax.hi - f->ax.lo) * f->w;
}

static double py(const Frame *f, double y) {
    return f->y0 + f->h - (y - f->ay.lo) / (f->ay.hi - f->ay.lo) * f->h;
}

static void tick_label(char *buf, size_t size, double v, int decimals) {
    if (fabs(v) < 1e-12) v = 0; /* no "-0" */
    snprintf(buf, size, "%.*f", decimals, v);
}

static void write_axes(FILE *o, const Frame *f, const SvgPlot *p) {
    char buf[64];
    fprintf(o, "<g class=\"axes\" font-size=\"11\" fill=\"#333\">\n");
    for (int i = 0;; i++) {
        double v = f->ax.lo + i * f->ax.step;
        if (v > f->ax.hi + f->ax.step * 1e-6) break;
        double x = px(f, v);
        fprintf(o, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#e4e4e4\"/>\n",
                x, f->y0, x, f->y0 + f->h);
        tick_label(buf, sizeof buf, v, f->ax.decimals);
        fprintf(o, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%s</text>\n", x,
                f->y0 + f->h + 15, buf);
    }
    for (int i = 0;; i++) {
        double v = f->ay.lo + i * f->ay.step;
        if (v > f->ay.hi + f->ay.step * 1e-6) break;
        double y = py(f, v);
        fprintf(o, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#e4e4e4\"/>\n",
                f->x0, y, f->x0 + f->w, y);
        tick_label(buf, sizeof buf, v, f->ay.decimals);
        fprintf(o, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n", f->x0 - 6, y + 4,
                buf);
    }
    fprintf(o,
            "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" "
            "stroke=\"#888\"/>\n",
            f->x0, f->y0, f->w, f->h);
    if (p->x_label) {
        fprintf(o, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"12\">",
                f->x0 + f->w / 2, f->y0 + f->h + 34);
        escape_html_str(o, p->x_label);
        fputs("</text>\n", o);
    }
    if (p->y_label) {
        double cx = 14, cy = f->y0 + f->h / 2;
        fprintf(o,
                "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"12\" "
                "transform=\"rotate(-90 %.2f %.2f)\">",
                cx, cy, cx, cy);
        escape_html_str(o, p->y_label);
        fputs("</text>\n", o);
    }
    fputs("</g>\n", o);
}

/* Every thinned-in point index of a series (stride k, the last always kept). */
static int keep_point(const SvgSeries *s, int i) {
    int stride = s->n > MAX_POINTS ? (s->n + MAX_POINTS - 1) / MAX_POINTS : 1;
    return i % stride == 0 || i == s->n - 1;
}

static int finite_point(const SvgSeries *s, int i) {
    return isfinite(s->x[i]) && isfinite(s->y[i]);
}

static int has_spread(const SvgSeries *s, int i) {
    return s->spread && finite_point(s, i) && isfinite(s->spread[i]) && s->spread[i] > 0;
}

/* y ± spread as one closed light area per stretch of points that have a spread. */
static void write_band(FILE *o, const Frame *f, const SvgSeries *s, const char *color) {
    int i = 0;
    while (i < s->n) {
        if (!has_spread(s, i) || !keep_point(s, i)) {
            i++;
            continue;
        }
        int end = i;
        while (end + 1 < s->n && (has_spread(s, end + 1) || !keep_point(s, end + 1))) end++;
        while (end > i && !has_spread(s, end)) end--;
        fprintf(o, "<path fill=\"%s\" fill-opacity=\"0.15\" stroke=\"none\" d=\"", color);
        for (int k = i; k <= end; k++)
            if (has_spread(s, k) && keep_point(s, k))
                fprintf(o, "%s%.2f %.2f", k == i ? "M" : " L", px(f, s->x[k]),
                        py(f, s->y[k] + s->spread[k]));
        for (int k = end; k >= i; k--)
            if (has_spread(s, k) && keep_point(s, k))
                fprintf(o, " L%.2f %.2f", px(f, s->x[k]), py(f, s->y[k] - s->spread[k]));
        fputs(" Z\"/>\n", o);
        i = end + 1;
    }
}

/* A vertical bar y ± spread with short caps at every point that has a spread. */
static void write_error_bars(FILE *o, const Frame *f, const SvgSeries *s, const char *color) {
    for (int i = 0; i < s->n; i++) {
        if (!has_spread(s, i)) continue;
        double x = px(f, s->x[i]), lo = py(f, s->y[i] - s->spread[i]);
        double hi = py(f, s->y[i] + s->spread[i]);
        fprintf(o,
                "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.2\" d=\"M%.2f %.2f L%.2f "
                "%.2f M%.2f %.2f L%.2f %.2f M%.2f %.2f L%.2f %.2f\"/>\n",
                color, x, lo, x, hi, x - 3, lo, x + 3, lo, x - 3, hi, x + 3, hi);
    }
}

/* The single runs behind a mean: light points (markers) or thin light lines. */
static void write_faint(FILE *o, const Frame *f, const SvgSeries *s, const char *color,
                        int markers) {
    fprintf(o, "<g class=\"runs\" opacity=\"0.4\"><title>");
    escape_html_str(o, s->label);
    fputs("</title>\n", o);
    if (markers) {
        for (int i = 0; i < s->n; i++)
            if (finite_point(s, i))
                fprintf(o, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.4\" fill=\"%s\"/>\n",
                        px(f, s->x[i]), py(f, s->y[i]), color);
    } else {
        fprintf(o, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"0.8\" d=\"", color);
        int pen_down = 0;
        for (int i = 0; i < s->n; i++) {
            if (!keep_point(s, i)) continue;
            if (!finite_point(s, i)) {
                pen_down = 0;
                continue;
            }
            fprintf(o, "%s%.2f %.2f", pen_down ? " L" : " M", px(f, s->x[i]), py(f, s->y[i]));
            pen_down = 1;
        }
        fputs("\"/>\n", o);
    }
    fputs("</g>\n", o);
}

static void write_series(FILE *o, const Frame *f, const SvgSeries *s, int index, int markers) {
    const char *color = svgplot_color(index);
    if (s->faint) {
        write_faint(o, f, s, color, markers);
        return;
    }
    fprintf(o, "<g class=\"series\"><title>");
    escape_html_str(o, s->label);
    fputs("</title>\n", o);
    if (s->spread && !markers) write_band(o, f, s, color);
    fprintf(o, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" d=\"", color);
    int pen_down = 0;
    for (int i = 0; i < s->n; i++) {
        if (!keep_point(s, i)) continue;
        if (!finite_point(s, i)) {
            pen_down = 0;
            continue;
        }
        fprintf(o, "%s%.2f %.2f", pen_down ? " L" : " M", px(f, s->x[i]), py(f, s->y[i]));
        pen_down = 1;
    }
    fputs("\"/>\n", o);
    if (s->spread && markers) write_error_bars(o, f, s, color);
    if (markers)
        for (int i = 0; i < s->n; i++)
            if (finite_point(s, i))
                fprintf(o, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3.2\" fill=\"%s\"/>\n",
                        px(f, s->x[i]), py(f, s->y[i]), color);
    fputs("</g>\n", o);
}

static void write_legend(FILE *o, const SvgSeries *series, int n, double x, double y) {
    fputs("<g class=\"legend\" font-size=\"11\" fill=\"#222\">\n", o);
    for (int s = 0, i = 0; s < n; s++) {
        if (series[s].faint) continue;
        double ly = y + 16.0 * i;
        fprintf(o,
                "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
                "stroke-width=\"2.5\"/>\n<text x=\"%.2f\" y=\"%.2f\">",
                x, ly, x + 18, ly, svgplot_color(i), x + 24, ly + 4);
        escape_html_str(o, series[s].label);
        fputs("</text>\n", o);
        i++;
    }
    fputs("</g>\n", o);
}

int svgplot_render(const SvgPlot *p, const SvgSeries *series, int n_series, char **out,
                   CkError *err) {
    *out = NULL;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            double e = has_spread(&series[s], i) ? series[s].spread[i] : 0;
            xlo = fmin(xlo, x);
            xhi = fmax(xhi, x);
            ylo = fmin(ylo, y - e);
            yhi = fmax(yhi, y + e);
        }
    if (!(xlo <= xhi)) return ck_fail(err, "plot %s: no finite points", p->title ? p->title : "");
    if (p->markers) {
        /* dots on the frame would be cut in half: keep 5% of air on every side */
        double px_ = (xhi - xlo) * 0.05, py_ = (yhi - ylo) * 0.05;
        xlo -= px_;
        xhi += px_;
        ylo -= py_;
        yhi += py_;
    }
    const int width = p->width > 0 ? p->width : 560, height = p->height > 0 ? p->height : 340;
    /* the legend takes a column on the right, as wide as its longest label needs */
    size_t longest = 0;
    int n_legend = 0;
    for (int s = 0; s < n_series; s++) {
        if (series[s].faint) continue;
        n_legend++;
        if (series[s].label && strlen(series[s].label) > longest) longest = strlen(series[s].label);
    }
    double legend_w = n_legend > 0 ? 34 + 6.2 * (double)(longest < 40 ? longest : 40) : 0;
    Frame f;
    f.x0 = 62;
    f.y0 = p->title ? 30 : 12;
    f.w = width - f.x0 - 14 - legend_w;
    if (f.w < 120) f.w = 120;
    f.h = height - f.y0 - 46;
    f.ax = make_axis(xlo, xhi);
    f.ay = make_axis(ylo, yhi);
    const int total_w = (int)ceil(f.x0 + f.w + 14 + legend_w);

    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    if (!o) return ck_fail(err, "out of memory");
    fprintf(o,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" role=\"img\">\n",
            total_w, height, total_w, height);
    fprintf(o, "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n");
    if (p->title) {
        fprintf(o, "<text x=\"%.2f\" y=\"19\" text-anchor=\"middle\" font-size=\"14\">",
                f.x0 + f.w / 2);
        escape_html_str(o, p->title);
        fputs("</text>\n", o);
    }
    write_axes(o, &f, p);
    for (int s = 0, color = -1; s < n_series; s++) {
        color += !series[s].faint || color < 0;
        write_series(o, &f, &series[s], color, p->markers);
    }
    if (n_legend > 0) write_legend(o, series, n_series, f.x0 + f.w + 14, f.y0 + 8);
    fputs("</svg>\n", o);
    if (fclose(o) != 0 || !buf) {
        free(buf);
        return ck_fail(err, "out of memory");
    }
    *out = buf;
    return 0;
}
