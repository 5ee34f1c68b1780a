/* train_run.h — one training run as `cutkit train` does it, from files to a run directory:
 * open the model (or make a random one of a config's shape), read the corpus (MLE) or the
 * judgments and build their examples with the templates (CUT), work out the number of updates,
 * train (trainer.h), and write OUT/config.json, the run's effective settings that `cutkit
 * report` and the sweep read. The command parses flags into TrainRunOptions and prints.
 *
 * Under mpirun every rank calls train_run with the same options (data parallelism, dist.h):
 * each reads the same files, rank 0 alone prints and writes. */
#ifndef CK_TRAIN_RUN_H
#define CK_TRAIN_RUN_H

#include <signal.h>
#include <stdint.h>

#include "train/cut.h"
#include "train/optim.h"
#include "train/schedule.h"
#include "train/trainer.h"
#include "model/weight.h"
#include "util/ck_error.h"

/* The objectives (train/OBJECTIVES.md: definitions and citations). */
typedef enum {
    TRAIN_OBJECTIVE_MLE = 0,                /* next-token likelihood on a corpus */
    TRAIN_OBJECTIVE_CUT = 1,                /* CUT on judgment records (train/cut.h) */
    TRAIN_OBJECTIVE_FORWARD_PREDICTION = 2, /* MLE on response + judgment (judgments) */
    TRAIN_OBJECTIVE_HINDSIGHT = 3,          /* MLE on the response given the judgment */
    TRAIN_OBJECTIVE_DPO = 4,                /* DPO on a pair file (train/dpo.h) */
    TRAIN_OBJECTIVE_ILF_MLE = 5,            /* MLE on refinements (a refinement file) */
    TRAIN_OBJECTIVE_ILF_DPO = 6,            /* DPO, refinement over the original output */
} TrainObjective;

/* The objective's name as `--objective` takes it and config.json records it ("mle", "cut",
 * "forward-prediction", "hindsight", "dpo", "ilf-mle", "ilf-dpo"). */
const char *train_objective_name(TrainObjective obj);

/* The objective called name; -1 with err listing the names for any other. */
int train_objective_parse(const char *name, TrainObjective *obj, CkError *err);

/* Which file an objective reads: 1 judgments (--judgments: cut, forward-prediction,
 * hindsight), 0 --data (mle: a corpus; dpo: a pair file; ilf-*: a refinement file). DPO with
 * TrainRunOptions.chosen_field reads --judgments too (train_run_reads_judgments). */
int train_objective_reads_judgments(TrainObjective obj);

/* Whether the run reads o->judgments (else o->data). */
struct TrainRunOptions;
int train_run_reads_judgments(const struct TrainRunOptions *o);

/* The settings of a run; train_run_options_init gives `cutkit train`'s defaults. */
typedef struct TrainRunOptions {
    /* what to train on */
    TrainObjective objective;
    const char *data;      /* MLE: .txt (windows), .jsonl with "text" or "prompt"/"response"; DPO:
                              a pair file; ILF: a refinement file (train/pairs.h) */
    const char *judgments; /* CUT: the judgment records */
    const char *judgment_format; /* "auto" (.jsonl: jsonl, else cut), "cut", "shepherd", "jsonl" */
    const char *template_path;   /* CUT: prompt templates JSON; NULL: the reference Alpaca ones */
    CutOptions cut;        /* CUT: λ, α, γ (cut_preset_options) and the Table-4 ablations no_l1,
                              no_align_n_mle, no_detection */
    int no_align_p;        /* CUT ablation -Align-P: train on no positive (Align-P) example */
    int no_dynamic_weight; /* CUT ablation -dynamic weighting: γ forced to 0 */
    double beta;           /* DPO, ILF-DPO: β (0.1) */
    const char *ref_model; /* DPO, ILF-DPO: the frozen reference; NULL: the starting model */
    const char *chosen_field; /* DPO: pairs from the JSONL judgments (chosen = this field,
                                 rejected = output) instead of a pair file in data */
    const char *preset;       /* the --preset the settings came from (recorded; NULL: none) */
    int cutoff; /* CUT: the reference's cutoff_len (2048): a longer sequence keeps its last N
                   tokens, then EOS; capped at the model's context - 1; 0: that cap */
    double align_p_ratio;  /* CUT: keep int(ratio x negatives) positives (judgments_downsample);
                              < 0: all (the default) */
    uint64_t align_p_seed; /* CUT: Python's random.seed of that sample (42, the reference's) */
    int skip_bad;          /* skip and count malformed records */
    int keep_error;        /* keep "$ERROR$" judgments as negatives, as the reference */
    int seq_len;           /* tokens per sequence, BOS included */
    /* the model */
    const char *model;      /* llama2.c .bin or Hugging Face folder; NULL: embedded stories260K */
    const char *tokenizer;  /* NULL: the model's */
    WeightDtype base_dtype; /* how the model's matrices are held: WEIGHT_F32 (the default),
                               or bf16 / f16 / int8 (a Hugging Face folder; formats/lm.h) */
    int random_init;        /* 1: a new model of config's shape (seeded), not model's weights */
    const char *config;     /* random_init: the config.json */
    int lora;               /* train LoRA adapters on the frozen model */
    int lora_r;
    float lora_alpha, lora_dropout;
    const char *lora_targets; /* modules by Hugging Face name, comma separated, or "all" */
    /* the run */
    const char *out; /* the run directory (created with its parents, locked: util/outdir.h) */
    int64_t steps;   /* optimizer updates; 0: from epochs, else 100 */
    double epochs;   /* > 0: ceil(epochs x items / batch_size) updates instead of steps */
    int batch_size;  /* sequences (or examples) per update */
    int micro_batch; /* per forward/backward; divides batch_size */
    double lr;       /* peak learning rate */
    ScheduleKind schedule;
    int64_t warmup;
    int lr_from_first_step; /* start the schedule at lambda(1), not Hugging Face's lambda(0) */
    AdamWConfig adamw;
    double max_grad_norm;        /* 0: no clipping */
    int save_every;              /* checkpoint every N updates (0: at the end only) */
    int keep;                    /* previous checkpoints kept */
    int resume;                  /* continue from OUT's newest checkpoint, if any */
    uint64_t seed;               /* data order, LoRA init and dropout, random init */
    int64_t stop_after;          /* > 0: act as if stopped after this update (tests of resume) */
    int threads;                 /* 0: one per core */
    const char *command_line;    /* recorded in config.json and the weights; NULL: "cutkit train" */
    volatile sig_atomic_t *stop; /* may be NULL; set: finish the update, checkpoint, return */
    /* may be NULL: called once the data is read, just before the first update (the command
     * installs its signal handlers here, so that a signal while loading ends it at once) */
    void (*on_ready)(void *ctx);
    void *ready_ctx;
} TrainRunOptions;

/* What train_run returns when an option proves wrong only once the data is read (a cutoff
 * below the template's length): bad usage, as train_run_check's failures. */
#define TRAIN_RUN_BAD_OPTION (-2)

/* Fills *o with `cutkit train`'s defaults (MLE, no data or out: the caller sets them). */
void train_run_options_init(TrainRunOptions *o);

/* Checks what can be checked before reading anything (data and out given, --steps or
 * --epochs, the LoRA targets, --config for random_init, the judgment format, --micro-batch
 * dividing --batch-size); -1 with err naming the flag. `cutkit train` treats a failure as bad
 * usage. */
int train_run_check(const TrainRunOptions *o, CkError *err);

/* Runs the training o describes (train_run_check first), printing the run's opening line,
 * progress and resume on stderr (rank 0), and writes OUT/config.json at the end (rank 0).
 * Rank 0 first creates OUT and locks it for the whole run: a second writer fails at once with
 * "OUT is in use by pid N" (util/runlock.h), and killed writers' temporary files are removed.
 * A log that cannot be written (a full disk) stops the run like a non-finite loss, naming the
 * last good checkpoint.
 * For CUT it prints what Align-P downsampling and the cutoff did, and warns with the count
 * when the cutoff removed negatives' whole judgment (train/cut_data.h).
 * Fills *report as trainer_run does (on a stop request: report->stopped_early, a checkpoint
 * saved, 0 returned). Returns -1 with err on any failure, TRAIN_RUN_BAD_OPTION with err for a
 * cutoff below the template's length; every resource is released. */
int train_run(const TrainRunOptions *o, TrainReport *report, CkError *err);

#endif
