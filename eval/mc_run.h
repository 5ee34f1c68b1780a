/* mc_run.h — `cutkit eval mc` as a library: multiple-choice scoring (ARC, TruthfulQA MC1/MC2)
 * as lm-evaluation-harness computes it, over one or more tasks. OUT/items.jsonl gets one line
 * per question as it finishes (one write to an O_APPEND file, so a killed run leaves whole
 * lines), OUT/results.json the metrics at the end (atomically). With resume, the items of
 * items.jsonl whose fingerprint (mc_resume.h) matches are not scored again and the metrics are
 * computed from the stored numbers, so results.json equals an uninterrupted run's.
 *
 * Under mpirun (a build with -DCUTKIT_MPI=ON, after dist_init) the items are sharded over the
 * ranks (eval/shard.h); rank 0 alone reads and writes OUT and gathers every item's scores bit
 * for bit, so the files equal the one-process run's. */
#ifndef CK_MC_RUN_H
#define CK_MC_RUN_H

#include <stdint.h>
#include <stdio.h>

#include "eval/mc.h"
#include "util/ck_error.h"

typedef struct {
    const McTask *tasks[MC_TASK_COUNT]; /* in the order to run (mc_tasks_parse) */
    int n_tasks;
    const char *model;      /* llama2.c file or Hugging Face folder; NULL: embedded stories260K */
    const char *tokenizer;  /* NULL: the model's */
    const char *adapter;    /* PEFT LoRA adapter folder; NULL: none */
    const char *data;       /* test data: a file (one task) or a folder; NULL: the shipped one */
    const char *train_data; /* ARC train split for shots (file or folder); NULL: shipped */
    const char *out;        /* output folder (created) */
    int shots;              /* few-shot exemplars per ARC question */
    uint64_t seed;          /* few-shot sampler seed */
    int limit;              /* score only the first N questions of each task (0: all) */
    int batch;              /* sequences per forward when a choice is scored on its own */
    int prefix_reuse;       /* 1: shared context passes where they pay (LOGLIK_REUSE_AUTO) */
    int bos;                /* 1: BOS before the context */
    int resume;             /* 1: keep the matching items of OUT/items.jsonl */
    FILE *log;              /* progress, warnings, per-task results ("cutkit eval mc: ..."),
                               every 2 s; NULL: none */
} McRunOptions;

/* The defaults: no task, embedded model, shipped data, out "eval-mc", 0 shots, seed 1234 (the
 * harness's), no limit, batch 16, prefix reuse and BOS on, no resume, no log. */
void mc_run_options_init(McRunOptions *o);

/* Checks o for combinations that can never run (no task; shots for TruthfulQA, whose 6-shot
 * primer is built in): -1 with a message naming the option, before anything is loaded. */
int mc_run_options_check(const McRunOptions *o, CkError *err);

/* One task's outcome. */
typedef struct {
    const McTask *task;
    int n_items;   /* items evaluated (limit applied) */
    int n_resumed; /* of them, taken from items.jsonl */
    McMetrics metrics;
} McTaskReport;

typedef struct {
    int n_tasks;
    McTaskReport tasks[MC_TASK_COUNT];
    int wrote;               /* 1 on the process that wrote OUT (rank 0) */
    char items_path[4096];   /* OUT/items.jsonl */
    char results_path[4096]; /* OUT/results.json */
} McRunReport;

/* Runs the evaluation o describes into OUT and fills report. Fails (-1, err naming the task,
 * doc, file or line) on unreadable data or model, a resumed item scored under another model,
 * adapter, BOS setting, prompt or data, or ranks that built different items; OUT keeps the
 * whole lines written so far. Collective under mpirun: every rank calls it with the same
 * options. */
int mc_run(const McRunOptions *o, McRunReport *report, CkError *err);

#endif
