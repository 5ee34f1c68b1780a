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

static void write_series(FILE *o, const Frame *f, const SvgSeries *s, int index, int markers) {
    const char *color = svgplot_color(index);
    int stride = s->n > MAX_POINTS ? (s->n + MAX_POINTS - 1) / MAX_POINTS : 1;
    fprintf(o, "<g class=\"series\"><title>");
    escape_html_str(o, s->label);
    fprintf(o, "</title>\n<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" d=\"", color);
    int pen_down = 0;
    for (int i = 0; i < s->n; i++) {
        if (i % stride != 0 && i != s->n - 1) continue;
        if (!isfinite(s->x[i]) || !isfinite(s->y[i])) {
            pen_down = 0;
            continue;
        }
        fprintf(o, "%s%.2f %.2f", pen_down ? " L" : " M", px(f, s->x[i]), py(f, s->y[i]));
        pen_down = 1;
    }
    fputs("\"/>\n", o);
    if (markers)
        for (int i = 0; i < s->n; i++)
            if (isfinite(s->x[i]) && isfinite(s->y[i]))
                fprintf(o, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3.2\" fill=\"%s\"/>\n",
                        px(f, s->x[i]), py(f, s->y[i]), color);
    fputs("</g>\n", o);
}

static void write_legend(FILE *o, const SvgSeries *series, int n, double x, double y) {
    fputs("<g class=\"legend\" font-size=\"11\" fill=\"#222\">\n", o);
    for (int i = 0; i < n; i++) {
        double ly = y + 16.0 * i;
        fprintf(o,
                "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
                "stroke-width=\"2.5\"/>\n<text x=\"%.2f\" y=\"%.2f\">",
                x, ly, x + 18, ly, svgplot_color(i), x + 24, ly + 4);
        escape_html_str(o, series[i].label);
        fputs("</text>\n", o);
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
            xlo = fmin(xlo, x);
            xhi = fmax(xhi, x);
            ylo = fmin(ylo, y);
            yhi = fmax(yhi, y);
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
    for (int s = 0; s < n_series; s++)
        if (series[s].label && strlen(series[s].label) > longest) longest = strlen(series[s].label);
    double legend_w = n_series > 0 ? 34 + 6.2 * (double)(longest < 40 ? longest : 40) : 0;
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
    for (int s = 0; s < n_series; s++) write_series(o, &f, &series[s], s, p->markers);
    if (n_series > 0) write_legend(o, series, n_series, f.x0 + f.w + 14, f.y0 + 8);
    fputs("</svg>\n", o);
    if (fclose(o) != 0 || !buf) {
        free(buf);
        return ck_fail(err, "out of memory");
    }
    *out = buf;
    return 0;
}
