/* mc_run.h — `cutkit eval mc` as a library: multiple-choice scoring (ARC, TruthfulQA MC1/MC2)
 * as lm-evaluation-harness computes it (the version o->harness_version names), over one or
 * more tasks. OUT/items.jsonl gets one line per question as it finishes (one write to an
 * O_APPEND file, so a killed run leaves whole lines), OUT/results.json the metrics at the end
 * (atomically, in the harness's shape: eval/results.h), and so does the file the harness
 * itself would write, OUT/<model>/results_<date>.json, with the per-sample files of
 * --log_samples beside it when asked (eval/tracker.h). With resume, the items of
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
#include "model/weight.h"
#include "util/ck_error.h"

typedef struct {
    const McTask *tasks[MC_TASK_COUNT]; /* in the order to run (mc_tasks_parse) */
    int n_tasks;
    const char *model;      /* llama2.c file or Hugging Face folder; NULL: embedded stories260K */
    const char *tokenizer;  /* NULL: the model's */
    WeightDtype base_dtype; /* how the model's matrices are held: WEIGHT_F32 (the default),
                               or bf16 / f16 / int8 (a Hugging Face folder; formats/lm.h) */
    const char *adapter;    /* PEFT LoRA adapter folder; NULL: none */
    const char *data;       /* test data: a file (one task) or a folder; NULL: the shipped one */
    const char *train_data; /* train split for shots (file or folder): ARC (NULL: shipped),
                               HellaSwag's canonical hellaswag_train.jsonl (NULL: exemplars
                               from the evaluated split, as the harness when the few-shot
                               split is the evaluation split; recorded) */
    const char *hellaswag_data;    /* HellaSwag file (canonical jsonl or the llama.cpp copy); NULL:
                                      --data (a file for one task, or DIR/hellaswag_val.jsonl, else
                                      DIR/hellaswag_val_llamacpp.txt), else the shipped copy */
    const char *mmlu_data;         /* the hendrycks data folder; NULL: --data when it is one (or
                                      DIR/mmlu); not shipped */
    const char *mmlu_subjects;     /* comma-separated subjects; NULL: all 57 */
    int task_shots[MC_TASK_COUNT]; /* per task id: exemplars, or -1: `shots` */
    const char *suite;             /* the suite these options came from ("open-llm-v1"), or NULL */
    const char *out;             /* output folder (created, locked while written: util/outdir.h) */
    int shots;                   /* few-shot exemplars per question (ARC, HellaSwag, MMLU) */
    uint64_t seed;               /* few-shot sampler seed */
    int limit;                   /* score only the first N questions of each task, of each subject
                                    for MMLU (0: all) */
    int batch;                   /* sequences per forward when a choice is scored on its own */
    int prefix_reuse;            /* 1: shared context passes where they pay (LOGLIK_REUSE_AUTO) */
    const char *harness_version; /* the lm-evaluation-harness version to follow (eval/harness.h:
                                    its BOS default and MC2 variant); NULL: "current" */
    int bos;                     /* 1: BOS before the context, 0: none, MC_BOS_VERSION: as the
                                    harness version does with this tokenizer */
    int resume;                  /* 1: keep the matching items of OUT/items.jsonl */
    int log_samples;             /* 1: also the harness's per-sample files (eval/tracker.h) */
    FILE *log;                   /* progress, warnings, per-task results ("cutkit eval mc: ..."),
                                    every 2 s; NULL: none */
} McRunOptions;

/* o->bos when the harness version decides (harness_bos). */
#define MC_BOS_VERSION (-1)

/* The defaults: no task, embedded model, shipped data, out "eval-mc", 0 shots, seed 1234 (the
 * harness's), no limit, batch 16, prefix reuse on, harness version "current" with its BOS
 * (the tokenizer's: on for LLaMA and llama2.c tokenizers), no resume, no samples, no log. */
void mc_run_options_init(McRunOptions *o);

/* The exemplars per question of task under o: task_shots[id] when set, else shots (0 for
 * TruthfulQA unless asked). */
int mc_run_task_shots(const McRunOptions *o, const McTask *task);

/* Checks o for combinations that can never run (no task; shots for TruthfulQA, whose 6-shot
 * primer is built in; an unknown harness version; a --data file, not a folder, for several
 * tasks): -1 with a message naming the option, before anything is loaded. */
int mc_run_options_check(const McRunOptions *o, CkError *err);

/* One task's outcome. */
typedef struct {
    const McTask *task; /* as scored: hellaswag_llamacpp when the data was llama.cpp's copy */
    int shots;
    int n_items;   /* items evaluated (limit applied) */
    int n_resumed; /* of them, taken from items.jsonl */
    McMetrics metrics;
} McTaskReport;

typedef struct {
    int n_tasks;
    McTaskReport tasks[MC_TASK_COUNT];
    const char *harness_version; /* the version followed ("current", "0.4.8", ...) */
    int bos;                     /* 1: the contexts started with BOS */
    int wrote;                   /* 1 on the process that wrote OUT (rank 0) */
    char items_path[4096];       /* OUT/items.jsonl */
    char results_path[4096];     /* OUT/results.json */
    char harness_path[4096];     /* OUT/<model>/results_<date>.json (eval/tracker.h) */
    char suite_path[4096];       /* OUT/open_llm_v1.json with a suite (eval/mc_suite.h), else "" */
    double suite_average;        /* the suite's average of its headline numbers */
} McRunReport;

/* Runs the evaluation o describes into OUT and fills report. Fails (-1, err naming the task,
 * doc, file or line) on OUT in use by another process ("OUT is in use by pid N", before the
 * model is read), unreadable data or model, a resumed item scored under another model,
 * adapter, BOS setting, prompt or data, or ranks that built different items; OUT keeps the
 * whole lines written so far. Collective under mpirun: every rank calls it with the same
 * options. */
int mc_run(const McRunOptions *o, McRunReport *report, CkError *err);

#endif
