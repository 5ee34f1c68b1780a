/* online_run.h — online CUT alignment (`cutkit align-online`) as a library: iterations of
 * generate → judge → CUT-train → merge. Generation and judging run in this process
 * (train/online.h); training and merging are `cutkit train` and `cutkit merge` child
 * processes (train/stage.h). Every stage of iteration K lives in OUT/iter-K and leaves a file
 * behind, so a run that is interrupted (or fails) continues where it stopped when it is run
 * again with the same options:
 *
 *   iter-K/generations.jsonl     responses of the current model (journal while written)
 *   iter-K/judgments.jsonl       the judge's verdicts, the training file (journal likewise)
 *   iter-K/judge_failures.jsonl  items the judge could not judge (not trained on)
 *   iter-K/train/                the `cutkit train --objective cut` run directory (--resume)
 *   iter-K/trained               marker: that training finished
 *   iter-K/model/                the merged model (LoRA) that iteration K+1 starts from
 *   iter-K/done.json             the iteration's counts; its presence means "finished"
 *   summary.json                 the done.json of every finished iteration, in order
 *
 * OUT is locked while the run writes it (a second align-online on it fails at once: "OUT is
 * in use by pid N"); each `cutkit train` child locks its own iter-K/train and gets SIGTERM
 * (saves, stops) when this process dies, even by SIGKILL, so a rerun never finds a training
 * still running in its folder. A judge's failures, an ill-formed judgment among them, go to
 * judge_failures.jsonl, never into judgments.jsonl. */
#ifndef CK_ONLINE_RUN_H
#define CK_ONLINE_RUN_H

#include <stdint.h>
#include <stdio.h>

#include "train/online.h"
#include "train/stage.h"
#include "util/ck_error.h"

/* The longest run directory path accepted: the stage files below it must fit a path. */
#define ONLINE_RUN_MAX_OUT 3968

typedef struct {
    const char *instructions;   /* the instruction pool (online_load_instructions) */
    const char *out;            /* the run directory (created) */
    const char *model;          /* the starting model; NULL: the embedded stories260K */
    const OnlineJudge *judge;   /* the judge (online_judge_open; the caller closes it) */
    const char *template_path;  /* prompt templates JSON; NULL: the reference Alpaca */
    const char *train_settings; /* JSON object of further `cutkit train` flags; NULL: none */
    int iterations;             /* generate-judge-train rounds */
    int per_iteration;          /* new instructions per iteration, in order, wrapping around */
    int max_tokens;             /* tokens per response at most */
    float temperature, top_p;   /* sampling (temperature 0: greedy) */
    int keep_after_split;       /* responses as the reference's generate.py keeps them: */
    int strip;                  /* OnlineGenerateOptions (online.h) */
    uint64_t seed;              /* sampling and training seed */
    const char *preset;         /* the --preset the settings came from (recorded; NULL: none) */
    const char *train_preset;   /* `cutkit train --preset` of each training (NULL: none) */
    int cutoff;                 /* `cutkit train --cutoff` (0: the model's context) */
    double align_p_ratio;       /* `cutkit train --align-p-ratio` (< 0: off) */
    uint64_t align_p_seed;      /* `cutkit train --align-p-seed` */
    const char *merge_dtype;    /* `cutkit merge --dtype` of the merges: f32, f16 or bf16 */
    int steps;                  /* updates per iteration (0: one epoch over its judgments) */
    int batch_size, warmup;     /* examples per update; warmup updates per iteration */
    double lr, lambda, alpha;   /* peak learning rate; CUT's threshold and unlikelihood weight */
    int lora;                   /* train LoRA adapters, merged into the next iteration's model */
    int threads;                /* `cutkit train --threads` (0: one per core) */
    StageRunner runner;         /* the cutkit binary for the children, and the stop flag */
    FILE *log;                  /* progress and per-item problems (NULL: silent) */
} OnlineRunOptions;

/* Sets o to the defaults of `cutkit align-online` (3 iterations of 64, 256 tokens, seed 42,
 * batch 8, lr 4e-4, λ 1.1, α 1, cutoff 2048, no Align-P downsampling, f32 merges, ...) with
 * no paths, judge or binary. */
void online_run_options_init(OnlineRunOptions *o);

typedef struct {
    char final_model[4096]; /* the model the last finished iteration produced ("": embedded) */
} OnlineRunResult;

/* Runs the iterations of o that have not finished yet (a finished iteration is read back
 * from its done.json), then writes OUT/summary.json, also when a stop was requested. Returns
 * 0 when every iteration finished, or -1 with err (OUT in use, a stage failed, nothing was
 * judged in an iteration, or a stop was requested); rerunning continues at the first
 * unfinished stage, except after an iteration in which the judge failed on every response:
 * the message then says which files to delete. */
int online_run(const OnlineRunOptions *o, OnlineRunResult *r, CkError *err);

#endif
