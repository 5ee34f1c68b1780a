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
 *    positives and on negatives under their judgment: hindsight, no unlikelihood), and CUT at
 *    the default λ/α plus a λ x α grid (offline).
 * 4. Every run and the warm-up model: fact-error and misconception rates of its responses to
 *    the test instructions (rule-based judge), detection quality of CUT's flags on the test
 *    negatives, win rate against the warm-up model.
 * 5. `cutkit report` over all runs: OUT/report/index.html and OUT/report/tables.md.
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

typedef struct {
    const char *out;      /* the demo folder (created) */
    DemoSizeKind size;    /* records, updates and evaluation items */
    uint64_t seed;        /* the world's and the trainings' seed */
    double misconception; /* share of warm-up stories stating an object's misconceived colour */
    int threads;          /* the children's --threads (0: one per core) */
    StageRunner runner;   /* the cutkit binary for the children, and the stop flag */
    FILE *log;            /* progress: stages, runs, fact errors (NULL: silent) */
} DemoOptions;

/* Sets o to the defaults of `cutkit demo`: folder "cutkit-demo", full size, seed 1,
 * misconception 0.9, 1 thread (stories260K is too small to gain from more), no binary. */
void demo_options_init(DemoOptions *o);

/* The size's name ("full", "small"). */
const char *demo_size_name(DemoSizeKind size);

/* Runs the stages of the demo that are not done yet. Returns 0 when the report is written,
 * or -1 with err (a stage failed, or a stop was requested: rerunning resumes). */
int demo_run(const DemoOptions *o, CkError *err);

#endif
