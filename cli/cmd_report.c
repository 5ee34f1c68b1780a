/* cmd_report.c — `cutkit report RUN_DIRS... --out DIR`: paper-style tables (Markdown,
 * LaTeX), SVG plots and one self-contained HTML page from run directories. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "reports/report.h"

static struct {
    const char *out;
    ReportOptions report;
} opt;

static FlagSpec FLAGS[] = {
    FLAG_OUT_REQUIRED(&opt.out, "directory to write the report into"),
    {"title", FLAG_STRING, &opt.report.title, "cutkit report", 0, -1,
     "title of the page and the tables"},
    {"examples", FLAG_INT, &opt.report.max_examples, "5", 0, 100000,
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

/* Keeps the arguments that are not files (a shell glob of a sweep folder also names the files
 * beside its run directories); a missing path stays, for report_write to name. */
static int keep_run_dirs(char **runs, int n) {
    int kept = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(runs[i], &st) == 0 && !S_ISDIR(st.st_mode)) {
            cli_error(&SPEC, 0, "skipping %s: not a run directory", runs[i]);
            continue;
        }
        runs[kept++] = runs[i];
    }
    return kept;
}

int cmd_report(int argc, char **argv) {
    char **runs = malloc(sizeof(char *) * (size_t)(argc + 1));
    if (!runs) return cli_error(&SPEC, 1, "out of memory");
    int n_runs = 0;
    int rc = flags_parse(&SPEC, argc, argv, runs, argc, &n_runs);
    if (rc == 0 && n_runs == 0)
        rc = cli_error(&SPEC, 2,
                       "needs at least one run directory and --out DIR "
                       "(see 'cutkit help report')");
    if (rc == 0 && (n_runs = keep_run_dirs(runs, n_runs)) == 0)
        rc = cli_error(&SPEC, 2, "no run directory among the arguments");
    CkError err = {{0}};
    if (rc == 0 && report_write((const char *const *)runs, n_runs, opt.out, &opt.report, &err) != 0)
        rc = cli_fail(&SPEC, 1, &err);
    else if (rc == 0)
        cli_error(&SPEC, 0, "%d run%s -> %s/index.html, tables.md, tables.tex, plots/", n_runs,
                  n_runs == 1 ? "" : "s", opt.out);
    free(runs);
    return rc;
}
