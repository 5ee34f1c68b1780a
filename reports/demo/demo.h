/* demo.h — the whole CUT method on the embedded model in a few minutes (`cutkit demo`):
 *
 * 1. A synthetic judgment world with a misconception (datasets/synth.h): a warm-up set that
 *    teaches the model to follow judgments and, for most objects, a wrong colour ("kites are
 *    red"); held-out test instructions. Two training sets share the instructions: "mixed"
 *    (half positive, half negative with random wrong facts, as online CUT sees its own judged
 *    samples) and "offline" (negatives only, as Shepherd-style critique data, each stating its
 *    object's misconceived colour: the data's one mistake is the misconception itself).
 * 2. A warm-up fine-tune (MLE on Align-P and Align-N of the warm-up set).
 * 3. From the warm-up model, with the same updates and learning rate: MLE on the positive
 *    responses (mixed only: offline has none), MLE on all responses, Align-N only (MLE on
 *    positives and on negatives under their judgment, no unlikelihood), and CUT at the default
 *    λ/α plus a λ x α grid (offline); on the offline judgment file, the paper's baselines
 *    (`cutkit train --objective forward-prediction | hindsight | dpo`, DPO preferring the
 *    world's correct response over the judged one) and CUT's Table-4 ablations that change
 *    something there (-L1, -Align-N MLE, -detection; offline has no Align-P, and CUT's gamma
 *    is 0, so -Align-P and -dynamic weighting would repeat full CUT).
 * 4. Every run and the warm-up model: fact-error and misconception rates of its responses to
 *    the test instructions (rule-based judge), detection quality of CUT's flags on the test
 *    negatives, win rate against the warm-up model.
 * 5. `cutkit report --layout table2,table4` over all runs: OUT/report/index.html, tables.md,
 *    table2.md and table4.md (the paper's layouts; Table 2's benchmark columns stay empty, the
 *    demo runs no `eval mc`); and the
 *    headline comparisons (demo_headline.h): CUT against the MLE and Align-N baselines on the
 *    same test items, each difference with its paired-bootstrap 95 % interval, in
 *    OUT/report/headline.md and headline.json.
 *
 * Seeds. With one seed the stages run in OUT itself. With several, each seed is a whole demo
 * of its own (its world, warm-up, trainings and evaluations) in OUT/seed-S, run as the child
 * `cutkit demo --seed S --no-report --out OUT/seed-S` (its log in OUT/seed-S/demo.log), up to
 * `jobs` seeds at once (by default up to two per core): each child is single-threaded, so
 * several seeds use the cores that one leaves idle. The report then covers every seed's runs: a
 * run's seeds differ only in "seed" in their config.json, so each table row is mean ± sd over the
 * seeds (n), and the headline pools each seed's paired items.
 *
 * Trainings, generation, judging, detection and the report are cutkit child processes
 * (train/stage.h: they die with the demo); every stage leaves a marker in OUT, so an
 * interrupted demo continues where it stopped when it is run again with the same options. OUT
 * is locked while the demo runs (a second demo on it fails: "OUT is in use by pid N"); the runs
 * below it are locked by their own commands. */
#ifndef CK_DEMO_H
#define CK_DEMO_H

#include <stdint.h>
#include <stdio.h>

#include "train/stage.h"
#include "util/ck_error.h"

/* The longest demo folder path accepted: the run directories below it must fit a path. */
#define DEMO_MAX_OUT 3840

typedef enum {
    DEMO_FULL, /* a few minutes on 2 cores */
    DEMO_SMALL /* seconds: the CI's end-to-end check (8 test stories: the numbers mean little) */
} DemoSizeKind;

/* The most seeds a demo takes. */
#define DEMO_MAX_SEEDS 64

typedef struct {
    const char *out;       /* the demo folder (created) */
    DemoSizeKind size;     /* records, updates and evaluation items */
    const uint64_t *seeds; /* the seeds: each the world's and the trainings' seed (distinct) */
    int n_seeds;           /* 1..DEMO_MAX_SEEDS; 1: the stages run in OUT itself */
    int jobs;              /* seeds run at once (0: up to two per core) */
    int report;            /* 0: stop after the evaluations (a seed of a multi-seed demo) */
    double misconception;  /* share of warm-up stories stating an object's misconceived colour */
    int threads;           /* the children's --threads (0: one per core) */
    StageRunner runner;    /* the cutkit binary for the children, and the stop flag */
    FILE *log;             /* progress: stages, runs, fact errors (NULL: silent) */
} DemoOptions;

/* The seeds of `cutkit demo` without --seeds/--seed. */
#define DEMO_DEFAULT_SEEDS "1,2,3"

/* Sets o to the defaults of `cutkit demo`: folder "cutkit-demo", full size, the seeds of
 * DEMO_DEFAULT_SEEDS, up to two seeds per core at once, a report, misconception 0.9, 1 thread
 * (stories260K is too small to gain from more), no binary. */
void demo_options_init(DemoOptions *o);

/* Parses a comma-separated list of distinct seeds ("1,2,3") into seeds[0..DEMO_MAX_SEEDS);
 * returns their number, or -1 with err naming the item that is not a seed or is repeated. */
int demo_parse_seeds(const char *text, uint64_t *seeds, CkError *err);

/* The size's name ("full", "small"). */
const char *demo_size_name(DemoSizeKind size);

/* Runs the stages of the demo that are not done yet (every seed's). Returns 0 when the report
 * and the headline are written (or, without a report, the evaluations are done), or -1 with
 * err (a stage or a seed failed, or a stop was requested: rerunning resumes). */
int demo_run(const DemoOptions *o, CkError *err);

#endif
