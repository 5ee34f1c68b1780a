/* cmd_demo.c — `cutkit demo`: flags → DemoOptions → demo_run (reports/demo/demo.h, which
 * describes the stages), then the report's table on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "reports/demo/demo.h"
#include "util/fileio.h"
#include "util/threads.h"
#include "util/timer.h"

static DemoOptions opt;
static const char *size;

static FlagSpec FLAGS[] = {
    {"out", FLAG_STRING, &opt.out, "cutkit-demo", 0, -1, "demo folder (rerun to resume)"},
    {"size", FLAG_STRING, &size, "full", 0, -1,
     "full (a few minutes on 2 cores) or small (seconds: the CI's end-to-end check)", "full|small"},
    {"seed", FLAG_U64, &opt.seed, "1", 0, -1, "the world's and the trainings' seed"},
    {"misconception", FLAG_DOUBLE, &opt.misconception, "0.9", 0, 1,
     "share of warm-up stories that state an object's misconceived colour"},
    {"threads", FLAG_INT, &opt.threads, "1", 0, 1024,
     "threads (0: one per core); stories260K is too small to gain from more than one"},
};

static const CommandSpec SPEC = {
    "demo",
    "the CUT method end to end on the embedded model: world, warm-up, baselines, report",
    "[--out DIR] [--size full|small]",
    "Builds a synthetic judgment world whose warm-up teaches a misconception, fine-tunes the\n"
    "embedded stories260K model on it, trains MLE, Align-N-only and CUT (a lambda x alpha\n"
    "grid) from there, evaluates every model (fact errors of its stories, the misconception\n"
    "rate, detection precision/recall, win rate against the warm-up model) and writes\n"
    "DIR/report/index.html. Rerunning resumes at the first unfinished stage.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_demo_spec(void) {
    return &SPEC;
}

int cmd_demo(int argc, char **argv) {
    demo_options_init(&opt);
    char *positional[1];
    int n_positional, rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    opt.size = !strcmp(size, "small") ? DEMO_SMALL : DEMO_FULL;
    if (strlen(opt.out) > DEMO_MAX_OUT) return cli_error(&SPEC, 2, "--out: the path is too long");
    threads_set(opt.threads);
    opt.runner.binary = "/proc/self/exe"; /* the children run this very binary */
    opt.runner.stop = stage_catch_stop_signals();
    opt.log = stderr;
    double t0 = timer_seconds();
    CkError err = {{0}};
    rc = demo_run(&opt, &err);
    if (*opt.runner.stop)
        return cli_error(&SPEC, 130, "interrupted; rerun the same command to resume");
    if (rc != 0) {
        cli_fail(&SPEC, 1, &err);
        return cli_error(&SPEC, 1, "stopped; rerun the same command to resume");
    }
    char report[4200], tables[4300];
    snprintf(report, sizeof report, "%s/report", opt.out);
    snprintf(tables, sizeof tables, "%s/tables.md", report);
    char *md = fileio_read_text(tables, 1 << 20, NULL, &err);
    if (md) fputs(md, stdout);
    free(md);
    fprintf(stderr, "cutkit %s: done in %.0f s; open %s/index.html\n", SPEC.name,
            timer_seconds() - t0, report);
    return 0;
}
