/* report.c — see report.h. */
#include "reports/report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "reports/contrast_csv.h"
#include "util/fileio.h"
#include "reports/html.h"
#include "reports/metrics.h"
#include "reports/plots.h"
#include "reports/table.h"

ReportOptions report_default_options(void) {
    return (ReportOptions){NULL, 5};
}

int report_tables(const RunDir *runs, int n_runs, const char *title, char **markdown, char **latex,
                  CkError *err) {
    *markdown = *latex = NULL;
    MetricColumn cols[METRIC_MAX_COLUMNS];
    int n_cols = metric_columns_present(runs, n_runs, cols);
    MetricTable t;
    if (metric_table_build(&t, runs, n_runs, cols, n_cols, err) != 0) return -1;
    size_t len;
    FILE *md = open_memstream(markdown, &len);
    if (md) {
        table_write_markdown(md, &t, title);
        if (fclose(md) != 0) {
            free(*markdown);
            *markdown = NULL;
        }
    }
    FILE *tex = open_memstream(latex, &len);
    if (tex) {
        table_write_latex(tex, &t, title);
        if (fclose(tex) != 0) {
            free(*latex);
            *latex = NULL;
        }
    }
    metric_table_free(&t);
    if (!*markdown || !*latex) {
        free(*markdown);
        free(*latex);
        *markdown = *latex = NULL;
        return ck_fail(err, "out of memory");
    }
    return 0;
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

int report_write(const char *const *run_dirs, int n_runs, const char *out_dir,
                 const ReportOptions *o, CkError *err) {
    ReportOptions def = report_default_options();
    if (!o) o = &def;
    RunDir *runs = calloc((size_t)n_runs + 1, sizeof *runs);
    ContrastCsv *contrasts = calloc((size_t)n_runs + 1, sizeof *contrasts);
    MetricTable table = {0};
    ReportPlots plots = {0};
    char *md = NULL, *tex = NULL, *html = NULL, *plot_dir = NULL;
    int rc = -1;
    if (!runs || !contrasts) {
        ck_fail(err, "out of memory");
        goto done;
    }
    for (int r = 0; r < n_runs; r++) {
        if (rundir_open(&runs[r], run_dirs[r], err) != 0) goto done;
        if (runs[r].contrast_path &&
            contrast_csv_read(&contrasts[r], runs[r].contrast_path, o->max_examples,
                              rundir_config_number(&runs[r], "lambda"), err) != 0)
            goto done;
    }
    MetricColumn cols[METRIC_MAX_COLUMNS];
    int n_cols = metric_columns_present(runs, n_runs, cols);
    if (report_tables(runs, n_runs, o->title, &md, &tex, err) != 0 ||
        metric_table_build(&table, runs, n_runs, cols, n_cols, err) != 0 ||
        plots_build(&plots, runs, n_runs, cols, n_cols, err) != 0)
        goto done;
    size_t len;
    FILE *out = open_memstream(&html, &len);
    if (!out) {
        ck_fail(err, "out of memory");
        goto done;
    }
    HtmlPage page = {o->title, &table, &plots, runs, contrasts, n_runs};
    html_write_page(out, &page);
    if (fclose(out) != 0 || !html) {
        ck_fail(err, "out of memory");
        goto done;
    }
    size_t n = strlen(out_dir) + 8;
    if (!(plot_dir = malloc(n))) {
        ck_fail(err, "out of memory");
        goto done;
    }
    snprintf(plot_dir, n, "%s/plots", out_dir);
    if (fileio_make_dirs(out_dir, err) != 0 || fileio_make_dirs(plot_dir, err) != 0) goto done;
    for (int i = 0; i < plots.n; i++)
        if (write_file(plot_dir, plots.plots[i].name, plots.plots[i].svg, err) != 0) goto done;
    if (write_file(out_dir, "tables.md", md, err) != 0 ||
        write_file(out_dir, "tables.tex", tex, err) != 0 ||
        write_file(out_dir, "index.html", html, err) != 0)
        goto done;
    rc = 0;
done:
    for (int r = 0; runs && r < n_runs; r++) rundir_close(&runs[r]);
    for (int r = 0; contrasts && r < n_runs; r++) contrast_csv_free(&contrasts[r]);
    free(runs);
    free(contrasts);
    metric_table_free(&table);
    plots_free(&plots);
    free(md);
    free(tex);
    free(html);
    free(plot_dir);
    return rc;
}
