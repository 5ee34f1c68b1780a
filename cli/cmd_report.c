/* cmd_report.c — `cutkit report RUN_DIRS... --out DIR`: paper-style tables (Markdown,
 * LaTeX), SVG plots and one self-contained HTML page from run directories. */
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "reports/report.h"

static struct {
    const char *out, *title;
    int examples;
} opt;

static FlagSpec FLAGS[] = {
    {"out", FLAG_STRING, &opt.out, NULL, 0, -1, "directory to write the report into (required)"},
    {"title", FLAG_STRING, &opt.title, "cutkit report", 0, -1, "title of the page and the tables"},
    {"examples", FLAG_INT, &opt.examples, "5", 0, 100000,
     "examples per run shown from its contrast.csv"},
};

static const CommandSpec SPEC = {
    "report",
    "paper-style tables, plots and an HTML page from run directories",
    "RUN_DIR... --out DIR [--title T] [--examples N]",
    "Writes DIR/tables.md, DIR/tables.tex (booktabs), DIR/plots/*.svg and DIR/index.html\n"
    "(self-contained: inline SVG, no scripts). Rows follow the order of the run directories;\n"
    "the best value of each column is bold. A run directory may hold config.json,\n"
    "steps.jsonl, eval/mc/results.json, eval/winrate.json, detection.json, errors.json and\n"
    "contrast.csv; missing files give dashes, malformed ones are errors.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_report_spec(void) {
    return &SPEC;
}

int cmd_report(int argc, char **argv) {
    char **runs = malloc(sizeof(char *) * (size_t)(argc + 1));
    if (!runs) {
        fprintf(stderr, "cutkit report: out of memory\n");
        return 1;
    }
    int n_runs = 0;
    int rc = flags_parse(&SPEC, argc, argv, runs, argc, &n_runs);
    if (rc == 0 && (!opt.out || n_runs == 0)) {
        fprintf(stderr, "cutkit report: needs at least one run directory and --out DIR "
                        "(see 'cutkit help report')\n");
        rc = 2;
    }
    /* a shell glob of a sweep folder also names files beside the run directories: skip them */
    int kept = 0;
    for (int i = 0; rc == 0 && i < n_runs; i++) {
        struct stat st;
        if (stat(runs[i], &st) == 0 && !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "cutkit report: skipping %s: not a run directory\n", runs[i]);
            continue;
        }
        runs[kept++] = runs[i];
    }
    n_runs = kept;
    if (rc == 0 && n_runs == 0) {
        fprintf(stderr, "cutkit report: no run directory among the arguments\n");
        rc = 2;
    }
    if (rc == 0) {
        ReportOptions o = {opt.title, opt.examples};
        CkError err = {{0}};
        if (report_write((const char *const *)runs, n_runs, opt.out, &o, &err) != 0) {
            fprintf(stderr, "cutkit report: %s\n", err.msg);
            rc = 1;
        } else {
            fprintf(stderr,
                    "cutkit report: %d run%s -> %s/index.html, tables.md, tables.tex, plots/\n",
                    n_runs, n_runs == 1 ? "" : "s", opt.out);
        }
    }
    free(runs);
    return rc;
}
