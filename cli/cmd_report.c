/* cmd_report.c — `cutkit report RUN_DIRS... --out DIR`: paper-style tables (Markdown,
 * LaTeX), SVG plots and one self-contained HTML page from run directories; with --compare,
 * the paired comparison of two runs or two sets of runs. */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "reports/compare_report.h"
#include "reports/layout.h"
#include "reports/report.h"

static struct {
    const char *out;
    ReportOptions report;
    int compare;
} opt;

static FlagSpec FLAGS[] = {
    FLAG_OUT_REQUIRED(&opt.out, "directory to write the report into"),
    {"title", FLAG_STRING, &opt.report.title, "cutkit report", 0, -1,
     "title of the page and the tables"},
    {"examples", FLAG_INT, &opt.report.max_examples, "5", 0, 100000,
     "examples per run shown from its contrast.csv"},
    {"per-run", FLAG_BOOL, &opt.report.per_run, NULL, 0, -1,
     "a row per run (default: runs that differ only in seed are one row, mean \xC2\xB1 sd)"},
    {"baseline", FLAG_STRING, &opt.report.baseline, NULL, 0, -1,
     "mark (\xE2\x80\xA0) the cells that differ significantly from this row (label or run dir)"},
    {"layout", FLAG_STRING, &opt.report.layouts, NULL, 0, -1,
     "also the CUT paper's layouts, comma-separated: table2, table4, table6, fig4, fig7"},
    {"compare", FLAG_BOOL, &opt.compare, NULL, 0, -1,
     "compare two sides A B item by item instead (each a run dir, a list a,b or a quoted glob)"},
    {"resamples", FLAG_INT, &opt.report.resamples, "10000", 1, 10000000,
     "resamples of the paired bootstrap (--compare, --baseline)"},
    {"seed", FLAG_U64, &opt.report.seed, "1", 0, -1, "seed of the bootstrap's resampling"},
};

static const CommandSpec SPEC = {
    "report",
    "paper-style tables, plots and an HTML page from run directories",
    "RUN_DIR... --out DIR [--title T] [--examples N] [--per-run] [--baseline ROW]\n"
    "       [--layout table2,table4,table6,fig4,fig7]\n"
    "       cutkit report --compare A B --out DIR [--resamples N] [--seed S]",
    "Writes DIR/tables.md, DIR/tables.tex (booktabs), DIR/plots/*.svg and DIR/index.html\n"
    "(self-contained: inline SVG, no scripts). Rows follow the order of the run directories;\n"
    "runs whose config.json differs only in seed are one row (mean \xC2\xB1 sd over seeds, n);\n"
    "the best value of each column is bold. A run directory may hold config.json,\n"
    "steps.jsonl, eval/mc/results.json, eval/winrate.json, detection.json, errors.json and\n"
    "contrast.csv; missing files give dashes, malformed ones are errors.\n"
    "--compare A B: per metric with per-item files (eval/mc/items.jsonl,\n"
    "eval/annotations.json), the difference A - B on the items both have with a paired\n"
    "bootstrap interval and p-value, and McNemar's exact test for binary items; printed and\n"
    "written to DIR/compare.md and DIR/compare.json. Exit 1 when A and B share no items.\n"
    "--layout: the CUT paper's layouts, labelled from each run's config.json (objective,\n"
    "ablation switches, judgments): table2 (Method | Objective | ARC | HellaSwag | MMLU |\n"
    "TruthfulQA | Avg. | AlpacaEval), table4 (CUT ablations against full CUT), table6 (online\n"
    "iterations with #J; an align-online run directory gives a row per iteration, evaluated\n"
    "in OUT/iter-K/eval/) into DIR/LAYOUT.md and DIR/LAYOUT.tex; fig4 (each column against the\n"
    "judgments or pairs trained on) and fig7 (against the Align-P ratio) into\n"
    "DIR/plots/LAYOUT_<column>.svg; all of them also in index.html.",
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

/* One side of --compare: its run directories. */
typedef struct {
    glob_t g;
    int globbed;
    char **list; /* into arg, g or one */
    int n;
} Side;

/* Resolves arg: an existing directory is one run; a pattern with * ? [ is expanded
 * (directories only, sorted); anything else is a comma-separated list (arg is split in
 * place). Returns 0, or -1 when out of memory. */
static int side_resolve(Side *s, char *arg) {
    struct stat st;
    memset(s, 0, sizeof *s);
    if (!(stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) && strpbrk(arg, "*?[")) {
        s->globbed = 1;
        if (glob(arg, GLOB_MARK, NULL, &s->g) != 0) return 0;
        s->list = s->g.gl_pathv;
        for (size_t i = 0; i < s->g.gl_pathc; i++) { /* GLOB_MARK: directories end in '/' */
            char *path = s->g.gl_pathv[i];
            size_t len = strlen(path);
            if (len < 2 || path[len - 1] != '/') continue;
            path[len - 1] = '\0';
            s->list[s->n++] = path;
        }
        return 0;
    }
    int commas = 0;
    for (const char *p = arg; *p; p++) commas += *p == ',';
    if (!(s->list = malloc(sizeof(char *) * (size_t)(commas + 2)))) return -1;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
        s->list[s->n++] = arg;
        return 0;
    }
    for (char *save = NULL, *p = strtok_r(arg, ",", &save); p; p = strtok_r(NULL, ",", &save))
        s->list[s->n++] = p;
    return 0;
}

static void side_free(Side *s) {
    if (s->globbed)
        globfree(&s->g);
    else
        free(s->list);
}

static int run_compare(char **args, int n_args) {
    if (n_args != 2)
        return cli_error(&SPEC, 2,
                         "--compare takes two sides A B (got %d arguments): each a run "
                         "directory, a comma-separated list or a quoted glob ('runs/cut-s*')",
                         n_args);
    Side sides[2];
    int rc = 0;
    for (int k = 0; k < 2; k++) {
        if (side_resolve(&sides[k], args[k]) != 0)
            rc = cli_error(&SPEC, 1, "out of memory");
        else if (rc == 0 && sides[k].n == 0)
            rc = cli_error(&SPEC, 1, "%s: no run directory matches", args[k]);
    }
    CompareOptions co;
    compare_options_init(&co);
    co.resamples = opt.report.resamples;
    co.seed = opt.report.seed;
    CkError err = {{0}};
    char *md = NULL;
    if (rc == 0 && report_compare((const char *const *)sides[0].list, sides[0].n,
                                  (const char *const *)sides[1].list, sides[1].n, opt.out, &co, &md,
                                  &err) != 0)
        rc = cli_fail(&SPEC, 1, &err);
    if (md) fputs(md, stdout);
    free(md);
    side_free(&sides[0]);
    side_free(&sides[1]);
    return rc;
}

int cmd_report(int argc, char **argv) {
    char **runs = malloc(sizeof(char *) * (size_t)(argc + 1));
    if (!runs) return cli_error(&SPEC, 1, "out of memory");
    int n_runs = 0;
    int rc = flags_parse(&SPEC, argc, argv, runs, argc, &n_runs);
    if (rc == 0 && opt.compare) {
        rc = run_compare(runs, n_runs);
        free(runs);
        return rc;
    }
    CkError err = {{0}};
    int want[LAYOUT_COUNT];
    if (rc == 0 && opt.report.layouts && layout_parse_list(opt.report.layouts, want, &err) != 0)
        rc = cli_error(&SPEC, 2, "%s", err.msg);
    if (rc == 0 && n_runs == 0)
        rc = cli_error(&SPEC, 2,
                       "needs at least one run directory and --out DIR "
                       "(see 'cutkit help report')");
    if (rc == 0 && (n_runs = keep_run_dirs(runs, n_runs)) == 0)
        rc = cli_error(&SPEC, 2, "no run directory among the arguments");
    if (rc == 0 && report_write((const char *const *)runs, n_runs, opt.out, &opt.report, &err) != 0)
        rc = cli_fail(&SPEC, 1, &err);
    else if (rc == 0)
        cli_error(&SPEC, 0, "%d run%s -> %s/index.html, tables.md, tables.tex, plots/", n_runs,
                  n_runs == 1 ? "" : "s", opt.out);
    free(runs);
    return rc;
}
