/* trainer.h — the training loop on data already in memory: full fine-tuning or LoRA, with
 * the MLE objective on corpus sequences or the CUT objective on judgment examples (train/cut.h:
 * Align-P / Align-N MLE plus unlikelihood on flagged Misalign tokens). Each optimizer update
 * takes a batch from the shuffled cursor, runs forward/backward micro_batch at a time
 * (gradient accumulation; on several MPI ranks each runs its share and the gradients are
 * summed, train/dist.h), clips, steps AdamW at the scheduled lr, logs OUT/steps.jsonl (and, for
 * CUT, OUT/tokens.csv), and checkpoints so that a run resumes bit for bit; a signal ends it
 * cleanly with a checkpoint. Reading the data and the model, and OUT/config.json, are
 * train_run's (train/train_run.h): what `cutkit train` calls. */
#ifndef CK_TRAINER_H
#define CK_TRAINER_H

#include <signal.h>
#include <stdint.h>

#include "util/ck_error.h"
#include "datasets/corpus.h"
#include "train/cut.h"
#include "datasets/judgments.h"
#include "formats/hf_config.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/optim.h"
#include "train/schedule.h"

/* What one update trains on: sequences of a corpus (MLE), judgment examples of one
 * (Align-P) or two (Align-N + Misalign) sequences trained with the CUT objective, or
 * chosen/rejected pairs with their reference log-probs trained with DPO (train/dpo.h). */
typedef struct {
    const Corpus *corpus;       /* MLE when non-NULL */
    const CutExample *examples; /* CUT otherwise, or DPO pairs (a chosen, m rejected) when
                                 * TrainOptions.dpo_ref_logps is set */
    int n_examples;
} TrainData;

typedef struct {
    int64_t steps;   /* optimizer updates to take in total */
    int batch_size;  /* sequences per optimizer update */
    int micro_batch; /* sequences per forward/backward (divides batch_size) */
    double lr;       /* peak learning rate */
    ScheduleKind schedule;
    int64_t warmup_steps;
    int first_step_lr_zero; /* 1: Hugging Face's LambdaLR order (the first update has lr 0) */
    AdamWConfig adamw;
    double max_grad_norm; /* <= 0: no clipping */
    int use_lora;
    LoraConfig lora;
    uint64_t seed;         /* data order and LoRA init/dropout */
    const char *out_dir;   /* run directory: steps.jsonl, checkpoints/, model/ or adapter/ */
    int64_t save_every;    /* checkpoint every N updates (0: only at the end) */
    int keep_checkpoints;  /* previous checkpoints kept besides the newest */
    int resume;            /* continue from out_dir/checkpoints if one exists */
    const char *base_name; /* base_model_name_or_path for PEFT adapters */
    const char *command_line;
    volatile sig_atomic_t *stop; /* set by a signal handler: finish the step, save, return */
    int64_t stop_after;          /* > 0: behave as if stopped after this update (tests) */
    CutOptions cut;              /* the CUT objective's settings (TrainData.examples) */
    /* DPO instead of CUT on TrainData.examples when non-NULL: [2 n_examples] the frozen
     * reference's summed response log-probs of each pair's chosen and rejected sequence
     * (train/dpo.h); beta its β */
    const double *dpo_ref_logps;
    double beta;
} TrainOptions;

typedef struct {
    int64_t steps_done;
    double last_loss;
    int stopped_early; /* a stop request ended the run (a checkpoint was saved) */
    char saved[1024];  /* the last checkpoint or final model written */
} TrainReport;

/* Trains m (full fine-tuning, or LoRA adapters on frozen m) on d as o says (batch_size and
 * micro_batch count sequences for a corpus, examples for CUT), writing the run directory; on
 * a stop request saves a checkpoint and returns 0 with report->stopped_early set. A
 * non-finite loss or gradient stops with the step, the tensor and the last good checkpoint
 * in err, writing nothing poisoned. */
int trainer_run(Model *m, const HfConfig *cfg, const TrainData *d, const TrainOptions *o,
                TrainReport *report, CkError *err);

/* Fills m's buffer as a fresh model: N(0, 0.02) matrices, unit RMSNorm gains (seeded). */
void trainer_init_random(Model *m, uint64_t seed);

#endif
