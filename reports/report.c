/* report.c — see report.h. */
#include "reports/report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "reports/compare.h"
#include "reports/contrast_csv.h"
#include "reports/groups.h"
#include "reports/html.h"
#include "reports/items.h"
#include "reports/layout.h"
#include "reports/layout_plots.h"
#include "reports/metrics.h"
#include "reports/plots.h"
#include "reports/table.h"
#include "util/fileio.h"

ReportOptions report_default_options(void) {
    return (ReportOptions){NULL, 5, 0, NULL, 10000, 1, NULL};
}

/* The Markdown and LaTeX renderings of t into malloc'd strings. */
static int render_tables(const MetricTable *t, const char *title, char **markdown, char **latex,
                         CkError *err) {
    *markdown = *latex = NULL;
    size_t len;
    FILE *md = open_memstream(markdown, &len);
    if (md) {
        table_write_markdown(md, t, title);
        if (fclose(md) != 0) {
            free(*markdown);
            *markdown = NULL;
        }
    }
    FILE *tex = open_memstream(latex, &len);
    if (tex) {
        table_write_latex(tex, t, title);
        if (fclose(tex) != 0) {
            free(*latex);
            *latex = NULL;
        }
    }
    if (!*markdown || !*latex) {
        free(*markdown);
        free(*latex);
        *markdown = *latex = NULL;
        return ck_fail(err, "out of memory");
    }
    return 0;
}

int report_tables(const RunDir *runs, int n_runs, const char *title, char **markdown, char **latex,
                  CkError *err) {
    *markdown = *latex = NULL;
    MetricColumn cols[METRIC_MAX_COLUMNS];
    int n_cols = metric_columns_present(runs, n_runs, cols);
    RunGroups groups;
    if (run_groups_build(&groups, runs, n_runs, 0, err) != 0) return -1;
    MetricTable t;
    int rc = metric_table_build_groups(&t, runs, &groups, cols, n_cols, err);
    if (rc == 0) rc = render_tables(&t, title, markdown, latex, err);
    metric_table_free(&t);
    run_groups_free(&groups);
    return rc;
}

/* Marks the cells of the tables[0..n_tables) (rows: the groups) that differ from the baseline
 * row (o->baseline: a row label or run directory of the main table, else a layout's row
 * name), reading every run's per-item files. */
static int mark_baseline(MetricTable *const *tables, int n_tables, const LayoutTable *layouts,
                         int n_layouts, const RunDir *runs, int n_runs, const RunGroups *groups,
                         const ReportOptions *o, CkError *err) {
    int baseline = run_groups_find(groups, runs, o->baseline);
    for (int k = 0; baseline < 0 && k < n_layouts; k++)
        baseline = layout_table_find(&layouts[k], o->baseline);
    if (baseline < 0)
        return ck_fail(err, "--baseline %s: no row has that label and no run that directory",
                       o->baseline);
    RunItems *items = calloc((size_t)n_runs + 1, sizeof *items);
    if (!items) return ck_fail(err, "out of memory");
    CompareOptions co;
    compare_options_init(&co);
    if (o->resamples > 0) co.resamples = o->resamples;
    co.seed = o->seed;
    int rc = 0;
    for (int r = 0; rc == 0 && r < n_runs; r++) rc = run_items_load(&items[r], &runs[r], err);
    for (int t = 0; rc == 0 && t < n_tables; t++)
        rc = compare_mark_table(tables[t], groups, items, baseline, &co, err);
    for (int r = 0; r < n_runs; r++) run_items_free(&items[r]);
    free(items);
    return rc;
}

static int write_file(const char *dir, const char *name, const char *text, CkError *err) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    if (!path) return ck_fail(err, "out of memory");
    snprintf(path, n, "%s/%s", dir, name);
    int rc = fileio_write_atomic(path, text, strlen(text), err);
    free(path);
    return rc;
}

/* Everything a report holds in memory before it is written. */
typedef struct {
    RunDir *runs;
    ContrastCsv *contrasts;
    int n_runs;
    RunGroups groups;
    MetricColumn cols[METRIC_MAX_COLUMNS];
    int n_cols;
    MetricTable table;
    ReportPlots plots;
    char *md, *tex, *html;
    int want[LAYOUT_COUNT]; /* the layouts asked for */
    LayoutTable layouts[3]; /* the table layouts asked for, in LayoutKind order */
    int n_layouts;
    char *layout_md[3], *layout_tex[3];
} Report;

static void report_free(Report *r) {
    for (int i = 0; r->runs && i < r->n_runs; i++) rundir_close(&r->runs[i]);
    for (int i = 0; r->contrasts && i < r->n_runs; i++) contrast_csv_free(&r->contrasts[i]);
    free(r->runs);
    free(r->contrasts);
    run_groups_free(&r->groups);
    metric_table_free(&r->table);
    for (int k = 0; k < r->n_layouts; k++) {
        layout_table_free(&r->layouts[k]);
        free(r->layout_md[k]);
        free(r->layout_tex[k]);
    }
    plots_free(&r->plots);
    free(r->md);
    free(r->tex);
    free(r->html);
}

/* Opens run_dirs[i] into r->runs[r->n_runs ..]: a row per iteration of an align-online run
 * when Table 6 is asked for, else the run directory. */
static int open_run(Report *r, const char *dir, int room, CkError *err) {
    int added =
        r->want[LAYOUT_TABLE6] ? layout_open_online(dir, r->runs, &r->n_runs, room, err) : 0;
    if (added != 0) return added < 0 ? -1 : 0;
    int rc = rundir_open(&r->runs[r->n_runs], dir, err);
    r->n_runs++; /* closed by report_free also when it failed half-way */
    return rc;
}

/* Reads the runs and their contrast.csv files. */
static int read_runs(Report *r, const char *const *run_dirs, int n_dirs, const ReportOptions *o,
                     CkError *err) {
    int room = 0;
    for (int i = 0; i < n_dirs; i++) {
        int iterations = r->want[LAYOUT_TABLE6] ? layout_online_iterations(run_dirs[i]) : 0;
        room += iterations > 0 ? iterations : 1;
    }
    r->runs = calloc((size_t)room + 1, sizeof *r->runs);
    r->contrasts = calloc((size_t)room + 1, sizeof *r->contrasts);
    if (!r->runs || !r->contrasts) return ck_fail(err, "out of memory");
    for (int i = 0; i < n_dirs; i++)
        if (open_run(r, run_dirs[i], room, err) != 0) return -1;
    for (int i = 0; i < r->n_runs; i++) {
        if (r->runs[i].contrast_path &&
            contrast_csv_read(&r->contrasts[i], r->runs[i].contrast_path, o->max_examples,
                              rundir_config_number(&r->runs[i], "lambda"), err) != 0)
            return -1;
    }
    return 0;
}

/* The table layouts asked for, rendered into r->layout_md / r->layout_tex. */
static int build_layouts(Report *r, CkError *err) {
    for (int k = 0; k < LAYOUT_COUNT; k++) {
        if (!r->want[k] || !layout_is_table((LayoutKind)k)) continue;
        if (layout_table_build(&r->layouts[r->n_layouts], (LayoutKind)k, r->runs, &r->groups,
                               err) != 0)
            return -1;
        r->n_layouts++;
    }
    return 0;
}

/* The headings of the layout tables in the page. */
static const char *layout_heading(LayoutKind k) {
    return k == LAYOUT_TABLE2   ? "Table 2 layout: methods and benchmarks"
           : k == LAYOUT_TABLE4 ? "Table 4 layout: CUT ablations"
                                : "Table 6 layout: online iterations";
}

/* The tables, plots and page of the runs read. */
static int render(Report *r, const ReportOptions *o, CkError *err) {
    r->n_cols = metric_columns_present(r->runs, r->n_runs, r->cols);
    if (run_groups_build(&r->groups, r->runs, r->n_runs, o->per_run, err) != 0 ||
        metric_table_build_groups(&r->table, r->runs, &r->groups, r->cols, r->n_cols, err) != 0 ||
        build_layouts(r, err) != 0)
        return -1;
    MetricTable *tables[4] = {&r->table};
    const MetricTable *shown[3];
    const char *names[3], *headings[3];
    for (int k = 0; k < r->n_layouts; k++) {
        tables[k + 1] = &r->layouts[k].table;
        shown[k] = &r->layouts[k].table;
        names[k] = layout_name(r->layouts[k].kind);
        headings[k] = layout_heading(r->layouts[k].kind);
    }
    if (o->baseline && mark_baseline(tables, 1 + r->n_layouts, r->layouts, r->n_layouts, r->runs,
                                     r->n_runs, &r->groups, o, err) != 0)
        return -1;
    if (render_tables(&r->table, o->title, &r->md, &r->tex, err) != 0 ||
        plots_build_groups(&r->plots, r->runs, &r->groups, r->cols, r->n_cols, err) != 0)
        return -1;
    for (int k = 0; k < r->n_layouts; k++)
        if (render_tables(&r->layouts[k].table, o->title, &r->layout_md[k], &r->layout_tex[k],
                          err) != 0)
            return -1;
    for (int k = 0; k < LAYOUT_COUNT; k++)
        if (r->want[k] && layout_plots_build(&r->plots, (LayoutKind)k, r->runs, &r->groups, r->cols,
                                             r->n_cols, err) != 0)
            return -1;
    size_t len;
    FILE *out = open_memstream(&r->html, &len);
    if (!out) return ck_fail(err, "out of memory");
    HtmlPage page = {o->title,   &r->table,    &r->plots, r->runs, r->contrasts, r->n_runs,
                     &r->groups, r->n_layouts, shown,     names,   headings};
    html_write_page(out, &page);
    if (fclose(out) != 0 || !r->html) return ck_fail(err, "out of memory");
    return 0;
}

static int write_all(const Report *r, const char *out_dir, CkError *err) {
    size_t n = strlen(out_dir) + 8;
    char *plot_dir = malloc(n);
    if (!plot_dir) return ck_fail(err, "out of memory");
    snprintf(plot_dir, n, "%s/plots", out_dir);
    int rc = fileio_make_dirs(out_dir, err) != 0 || fileio_make_dirs(plot_dir, err) != 0 ? -1 : 0;
    for (int i = 0; rc == 0 && i < r->plots.n; i++)
        rc = write_file(plot_dir, r->plots.plots[i].name, r->plots.plots[i].svg, err);
    if (rc == 0 && (write_file(out_dir, "tables.md", r->md, err) != 0 ||
                    write_file(out_dir, "tables.tex", r->tex, err) != 0))
        rc = -1;
    for (int k = 0; rc == 0 && k < r->n_layouts; k++) {
        char md[32], tex[32];
        snprintf(md, sizeof md, "%s.md", layout_name(r->layouts[k].kind));
        snprintf(tex, sizeof tex, "%s.tex", layout_name(r->layouts[k].kind));
        if (write_file(out_dir, md, r->layout_md[k], err) != 0 ||
            write_file(out_dir, tex, r->layout_tex[k], err) != 0)
            rc = -1;
    }
    if (rc == 0 && write_file(out_dir, "index.html", r->html, err) != 0) rc = -1;
    free(plot_dir);
    return rc;
}

int report_write(const char *const *run_dirs, int n_runs, const char *out_dir,
                 const ReportOptions *o, CkError *err) {
    ReportOptions def = report_default_options();
    if (!o) o = &def;
    Report r = {0};
    if (o->layouts && layout_parse_list(o->layouts, r.want, err) != 0) return -1;
    int rc = read_runs(&r, run_dirs, n_runs, o, err);
    if (rc == 0) rc = render(&r, o, err);
    if (rc == 0) rc = write_all(&r, out_dir, err);
    report_free(&r);
    return rc;
}
