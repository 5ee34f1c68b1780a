/* cmd_sweep.c — `cutkit sweep SPEC.json --out DIR`: flags → SweepOptions → sweep_run
 * (train/sweep.h, which documents the spec, the run directories and the summary). */
#include <stdio.h>

#include "cli/commands.h"
#include "train/sweep.h"

static SweepOptions opt;

static FlagSpec FLAGS[] = {
    FLAG_OUT_REQUIRED(&opt.out, "sweep directory: one run directory per point"),
    {"dry-run", FLAG_BOOL, &opt.dry_run, NULL, 0, -1, "list the points and their state only"},
};

static const CommandSpec SPEC = {
    "sweep",
    "a grid of trainings and evaluations (lambda x alpha ...), resumable, with a summary",
    "SPEC.json --out DIR",
    "SPEC.json: {\"train\": {flags of cutkit train}, \"grid\": {\"lambda\": [1.1, 1.2], "
    "\"alpha\":\n"
    "[0.25, 0.5, 1]}, \"seeds\": [1, 2, 3], \"evaluate\": [[\"eval\", \"mc\", \"--model\",\n"
    "\"{run}/model\", ...]]}. Each point trains into DIR/<point> (e.g.\n"
    "DIR/lambda=1.1,alpha=0.5,seed=2) and runs the evaluate commands with {run} replaced by\n"
    "that directory and {seed} by its seed. \"seeds\" (optional) repeats every grid point per\n"
    "seed, seed by seed; cutkit report shows the seeds of a point as one row, mean +- sd.\n"
    "Finished points are skipped on a rerun; DIR/summary.csv has one row per point: its grid\n"
    "values (its group and seed with \"seeds\"), state, final losses and flagged fraction.\n"
    "Relative paths in the spec are relative to the working directory.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_sweep_spec(void) {
    return &SPEC;
}

int cmd_sweep(int argc, char **argv) {
    sweep_options_init(&opt);
    char *positional[1];
    int n_positional, rc = flags_parse(&SPEC, argc, argv, positional, 1, &n_positional);
    if (rc != 0) return rc;
    if (n_positional != 1) return cli_error(&SPEC, 2, "usage: cutkit sweep SPEC.json --out DIR");
    CkError err = {{0}};
    SweepSpec spec;
    if (sweep_spec_load(&spec, positional[0], &err) != 0) return cli_fail(&SPEC, 2, &err);
    opt.runner.binary = "/proc/self/exe"; /* the children run this very binary */
    opt.runner.stop = stage_catch_stop_signals();
    opt.log = stderr;
    SweepResult result;
    rc = sweep_run(&opt, &spec, &result, &err);
    sweep_spec_free(&spec);
    if (*opt.runner.stop)
        return cli_error(&SPEC, 130, "interrupted; rerun the same command to resume");
    if (rc != 0) return cli_fail(&SPEC, 1, &err);
    if (result.failed)
        return cli_error(&SPEC, 1, "%d point(s) failed; rerun to retry them", result.failed);
    if (opt.dry_run) return 0; /* the log listed the points; nothing ran */
    fprintf(stderr, "cutkit %s: %d points done; summary in %s/summary.csv\n", SPEC.name,
            result.points, opt.out);
    return 0;
}
