/* report.h — `cutkit report`: from run directories to DIR/tables.md, DIR/tables.tex,
 * DIR/plots/ *.svg and DIR/index.html (self-contained), every file written atomically. The
 * entry point for commands that end in a report (contrast, sweep, demo). */
#ifndef CK_REPORT_H
#define CK_REPORT_H

#include "util/ck_error.h"
#include "reports/rundir.h"

typedef struct {
    const char *title; /* NULL: "cutkit report" */
    int max_examples;  /* examples per run shown from contrast.csv (0: none) */
} ReportOptions;

/* The defaults: no title of its own, 5 examples per run. */
ReportOptions report_default_options(void);

/* Renders the results table of the runs (rows in the given order) as Markdown and LaTeX into
 * malloc'd strings *markdown and *latex (caller frees both). */
int report_tables(const RunDir *runs, int n_runs, const char *title, char **markdown, char **latex,
                  CkError *err);

/* Reads the n_runs run directories and writes the whole report into out_dir (created with
 * its parents when missing). Missing files in a run give dashes or leave a plot out; a
 * malformed file fails naming it. Returns 0, or -1 with err set (files already written stay). */
int report_write(const char *const *run_dirs, int n_runs, const char *out_dir,
                 const ReportOptions *o, CkError *err);

#endif
