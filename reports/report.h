/* report.h — `cutkit report`: from run directories to DIR/tables.md, DIR/tables.tex,
 * DIR/plots/ *.svg and DIR/index.html (self-contained), every file written atomically. The
 * entry point for commands that end in a report (contrast, sweep, demo). */
#ifndef CK_REPORT_H
#define CK_REPORT_H

#include <stdint.h>

#include "util/ck_error.h"
#include "reports/rundir.h"

typedef struct {
    const char *title;    /* NULL: "cutkit report" */
    int max_examples;     /* examples per run shown from contrast.csv (0: none) */
    int per_run;          /* 1: a row per run; 0: a row per seed group (groups.h) */
    const char *baseline; /* the row (label, or a run directory in it) whose significant
                             differences are marked (compare.h); NULL: no marks */
    int resamples;        /* of the paired bootstrap behind the marks (0: 10000) */
    uint64_t seed;        /* of its index draws */
    const char *layouts;  /* the paper layouts to add (layout.h), comma-separated:
                             "table2,table4,table6,fig4,fig7"; NULL: none */
} ReportOptions;

/* The defaults: no title of its own, 5 examples per run, seed groups, no baseline, 10000
 * resamples, seed 1. */
ReportOptions report_default_options(void);

/* Renders the results table of the runs (a row per seed group, in the order of their first
 * runs; a row per run when no two runs are seeds of one setting) as Markdown and LaTeX into
 * malloc'd strings *markdown and *latex (caller frees both). */
int report_tables(const RunDir *runs, int n_runs, const char *title, char **markdown, char **latex,
                  CkError *err);

/* Reads the n_runs run directories and writes the whole report into out_dir (created with
 * its parents when missing): tables.md, tables.tex, plots/ *.svg, index.html and, for each
 * table layout of o->layouts, LAYOUT.md and LAYOUT.tex (table2.md, ...), for each figure
 * layout plots/LAYOUT_<column>.svg, all also in index.html. With table6 an align-online run
 * directory is read as a row per finished iteration (layout_open_online). Missing files in a run
 * give dashes or leave a plot out; a malformed file fails naming it, and so does a baseline that
 * names no row. Returns 0, or -1 with err set (files already written stay). */
int report_write(const char *const *run_dirs, int n_runs, const char *out_dir,
                 const ReportOptions *o, CkError *err);

#endif
