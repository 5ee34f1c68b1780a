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
static const char *size, *seeds_text, *seed_text;
static int no_report;

static FlagSpec FLAGS[] = {
    {"out", FLAG_STRING, &opt.out, "cutkit-demo", 0, -1, "demo folder (rerun to resume)"},
    {"size", FLAG_STRING, &size, "full", 0, -1,
     "full (a few minutes on 2 cores) or small (seconds: the CI's end-to-end check)", "full|small"},
    {"seeds", FLAG_STRING, &seeds_text, NULL, 0, -1,
     "the seeds, each the world's and the trainings' seed (default " DEMO_DEFAULT_SEEDS
     "): the report shows mean +- sd over them"},
    {"seed", FLAG_STRING, &seed_text, NULL, 0, -1, "one seed only (--seeds N), in DIR itself"},
    {"jobs", FLAG_INT, &opt.jobs, "0", 0, 1024, "seeds run at once (0: all, up to two per core)"},
    {"no-report", FLAG_BOOL, &no_report, NULL, 0, -1,
     "stop after the evaluations (how a multi-seed demo runs each seed)"},
    {"misconception", FLAG_DOUBLE, &opt.misconception, "0.9", 0, 1,
     "share of warm-up stories that state an object's misconceived colour"},
    {"threads", FLAG_INT, &opt.threads, "1", 0, 1024,
     "threads (0: one per core); stories260K is too small to gain from more than one"},
};

static const CommandSpec SPEC = {
    "demo",
    "the CUT method end to end on the embedded model: world, warm-up, baselines, report",
    "[--out DIR] [--size full|small] [--seeds 1,2,3 | --seed N]",
    "Builds a synthetic judgment world whose warm-up teaches a misconception, fine-tunes the\n"
    "embedded stories260K model on it, trains MLE, Align-N-only and CUT (a lambda x alpha\n"
    "grid) from there, evaluates every model (fact errors of its stories, the misconception\n"
    "rate, detection precision/recall, win rate against the warm-up model) and writes\n"
    "DIR/report/index.html, with each run's seeds as one row (mean +- sd), and\n"
    "DIR/report/headline.md: CUT against the baselines on the same test items with\n"
    "paired-bootstrap 95% intervals. With several seeds each seed is a demo of its own in\n"
    "DIR/seed-S (its log in DIR/seed-S/demo.log), --jobs of them at once. Rerunning resumes\n"
    "at the first unfinished stage.",
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
    opt.report = !no_report;
    if (strlen(opt.out) > DEMO_MAX_OUT) return cli_error(&SPEC, 2, "--out: the path is too long");
    static uint64_t seeds[DEMO_MAX_SEEDS];
    CkError err = {{0}};
    if (seed_text && seeds_text) return cli_error(&SPEC, 2, "give --seeds or --seed, not both");
    const char *list = seed_text ? seed_text : seeds_text ? seeds_text : DEMO_DEFAULT_SEEDS;
    opt.n_seeds = demo_parse_seeds(list, seeds, &err);
    if (opt.n_seeds < 0)
        return cli_error(&SPEC, 2, "--%s: %s", seed_text ? "seed" : "seeds", err.msg);
    if (seed_text && opt.n_seeds != 1)
        return cli_error(&SPEC, 2, "--seed takes one seed (--seeds takes a list)");
    opt.seeds = seeds;
    threads_set(opt.threads);
    opt.runner.binary = "/proc/self/exe"; /* the children run this very binary */
    opt.runner.stop = stage_catch_stop_signals();
    opt.log = stderr;
    double t0 = timer_seconds();
    rc = demo_run(&opt, &err);
    if (*opt.runner.stop)
        return cli_error(&SPEC, 130, "interrupted; rerun the same command to resume");
    if (rc != 0) {
        cli_fail(&SPEC, 1, &err);
        return cli_error(&SPEC, 1, "stopped; rerun the same command to resume");
    }
    if (!opt.report) {
        fprintf(stderr, "cutkit %s: evaluations done in %.0f s (no report)\n", SPEC.name,
                timer_seconds() - t0);
        return 0;
    }
    char report[4200], path[4300];
    snprintf(report, sizeof report, "%s/report", opt.out);
    const char *shown[] = {"tables.md", "table2.md", "table4.md", "headline.md"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", report, shown[i]);
        char *md = fileio_read_text(path, 1 << 20, NULL, &err);
        if (md) printf("%s%s", i ? "\n" : "", md);
        free(md);
    }
    fprintf(stderr, "cutkit %s: done in %.0f s; open %s/index.html\n", SPEC.name,
            timer_seconds() - t0, report);
    return 0;
}
