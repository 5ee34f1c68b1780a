/* sweep.h — a grid of trainings and their evaluations (`cutkit sweep`) as a library: one
 * run directory per point, each training a `cutkit train` child process (train/stage.h). A
 * point is finished when OUT/POINT/done exists; running the sweep again skips finished points
 * and resumes an interrupted training with `cutkit train --resume`.
 *
 * The spec:
 *   {"train":    {flag: value, ...},          `cutkit train` settings shared by all points
 *    "grid":     {flag: [v1, v2, ...], ...},  the cartesian product, in key order
 *    "seeds":    [1, 2, 3],                   optional: every grid point once per seed
 *    "evaluate": [["eval", "mc", "--model", "{run}/model", ...], ...]}  optional commands,
 *                                             "{run}" replaced by the point's directory
 *                                             and "{seed}" by its seed (with "seeds")
 * Point p takes value (p / product of the sizes of the axes before it) % size of each axis,
 * so the first axis varies fastest; its folder is "axis=value,axis=value" ('/' and ' ' in a
 * value become '_', a value keeps its first 127 characters). A spec in which two points would
 * share a folder is refused when it is loaded.
 *
 * Seeds are the last and slowest axis: every setting of the first seed trains before the
 * second seed's, so a stopped sweep leaves whole one-seed tables. The seed is the point's
 * `--seed` and the end of its folder name ("lambda=1.1,alpha=0.5,seed=2"); the folder name
 * without it is the point's group. The runs of a group differ only in "seed" in their
 * config.json, so `cutkit report` shows each group as one row, mean ± sd over its seeds
 * (reports/groups.h). With "seeds", "seed" may be in neither "train" nor "grid", and "grid"
 * may be left out (one setting over several seeds); seeds are distinct integers 0..2^53.
 *
 * OUT/summary.csv has a row per point: its folder name, its group (with "seeds"), its grid
 * values, its seed (with "seeds"), state (done; failed: its training or an evaluation failed
 * in this run; partial; pending), steps, final losses and the flagged fraction of its last 10
 * steps; a point without a logged update has empty loss fields. OUT is locked while the sweep
 * runs (a second sweep on it fails: "OUT is in use by pid N"); each point's folder is locked
 * by its training. */
#ifndef CK_SWEEP_H
#define CK_SWEEP_H

#include <stdio.h>

#include "train/stage.h"
#include "util/ck_error.h"

typedef struct cJSON cJSON;

typedef struct {
    cJSON *doc; /* the spec (owned) */
    int points; /* the number of grid points times the number of seeds */
} SweepSpec;

/* Reads and checks the spec at path (its shape above; a flag both in "train" and in "grid",
 * "seed" beside "seeds", a seed twice or not an integer, two points with one folder name, and
 * more than 100000 points are refused). Returns 0, or -1
 * with err naming the path and what is wrong. */
int sweep_spec_load(SweepSpec *s, const char *path, CkError *err);

/* Releases the spec. */
void sweep_spec_free(SweepSpec *s);

typedef struct {
    const char *out;    /* the sweep directory (created): one run directory per point */
    int dry_run;        /* list the points and their state only: no training, no summary,
                           OUT neither created nor locked; the log says nothing ran */
    StageRunner runner; /* the cutkit binary for the children, and the stop flag */
    FILE *log;          /* a line per point, and why a point failed (NULL: silent) */
} SweepOptions;

/* Sets o to no directory, no dry run, no binary, no log. */
void sweep_options_init(SweepOptions *o);

typedef struct {
    int points; /* in the grid */
    int failed; /* points whose training or evaluation failed this time (the others went on) */
} SweepResult;

/* Trains and evaluates every point of spec that is not done, then writes OUT/summary.csv
 * atomically (not in a dry run). A failed point is reported in the log and counted in r, and
 * the others go on. Returns 0, or -1 with err when OUT is in use by another process, the
 * directory or the summary cannot be written or a point's path is too long; a stop request
 * ends the loop after the step in hand (the summary is still written). */
int sweep_run(const SweepOptions *o, const SweepSpec *spec, SweepResult *r, CkError *err);

#endif
