/* judge_run.h — `cutkit eval judge` as a library: pairwise judgments of a model's outputs
 * against a reference's, into AlpacaEval's annotations.json (eval/annotations.h), resumably,
 * with failures kept as missing.
 *
 * output_1 is the reference (the baseline), output_2 the model, paired by instruction (the
 * reference record with the same index first, else a search). Each pair is judged by
 * judge_annotate (eval/judge.h: identical outputs a draw, seeded order switching, both orders).
 * An existing output file is resumed: its records must be the pairs being judged; those with a
 * preference are kept, the missing ones judged again with retry_missing. The file is rewritten
 * atomically every save_every judgments and at the end. Under mpirun the pairs to judge are
 * sharded over the ranks (eval/shard.h; a judgment depends only on its pair, the seed and the
 * judge); rank 0 alone reads and writes the file and gathers the judgments in order. */
#ifndef CK_JUDGE_RUN_H
#define CK_JUDGE_RUN_H

#include <stdint.h>
#include <stdio.h>

#include "model/weight.h"
#include "util/ck_error.h"

typedef enum { JUDGE_KIND_MODEL, JUDGE_KIND_COMMAND, JUDGE_KIND_SYNTH } JudgeKind;

typedef struct {
    const char *outputs;   /* model_outputs.json of the evaluated model (output_2); required */
    const char *reference; /* model_outputs.json of the baseline (output_1); required */
    const char *out;       /* annotations.json to write or resume; required */
    JudgeKind kind;
    const char *judge_model;     /* MODEL: llama2.c file or HF folder; NULL: embedded */
    const char *judge_tokenizer; /* MODEL: NULL: the model's */
    const char *judge_adapter;   /* MODEL: PEFT LoRA adapter folder; NULL: none */
    WeightDtype judge_held;      /* MODEL: how its matrices are held (lm_open_held; a Hugging
                                    Face folder only); WEIGHT_F32 by default */
    const char *judge_template;  /* MODEL: pairwise template JSON; NULL: the built-in */
    const char *judge_command;   /* COMMAND: the shell command; required for that kind */
    double timeout;              /* COMMAND: seconds per call (0: none) */
    const char *annotator;       /* the annotator written; NULL: the judge's own name */
    uint64_t seed;               /* of the per-instruction order switch */
    int randomize;               /* 1: switch the order of a seeded half (AlpacaEval's way) */
    int both_orders;             /* 1: judge both orders and average */
    int retry_missing;           /* 1: judge again the resumed records without a preference */
    int limit;                   /* judge only the first N outputs (0: all) */
    int save_every;              /* rewrite the file every N judgments */
    FILE *log;                   /* each failed record, progress at each save; NULL: none */
} JudgeRunOptions;

/* The defaults: the model judge (embedded model, built-in template), timeout 120 s, seed 0,
 * randomized order, one order, no retry, no limit, saves every 20 judgments, no log; the three
 * files unset. */
void judge_run_options_init(JudgeRunOptions *o);

/* The kind named "model", "command" or "synth" into *kind; -1 for any other name. */
int judge_kind_parse(const char *name, JudgeKind *kind);

/* Checks o for combinations that can never run (the command judge without its command), before
 * anything is read: -1 with a message naming the option. */
int judge_run_options_check(const JudgeRunOptions *o, CkError *err);

typedef struct {
    int n_pairs;            /* records in the file */
    int n_judged;           /* judged by this run */
    int n_missing;          /* records whose preference is missing (null) */
    char first_error[1024]; /* the first failure of this run ("" when none) */
    int wrote;              /* 1 on the process that wrote the file (rank 0) */
} JudgeRunReport;

/* Judges the pairs o describes into o->out and fills report. Returns 0 when the file was
 * written, missing judgments included (report->n_missing says how many: the judge's failures
 * are data, not errors); -1 with err on unreadable files, an output file of other pairs, an
 * output without a reference record, a judge that cannot be opened, or ranks with different
 * pairs. Collective under mpirun. */
int judge_run(const JudgeRunOptions *o, JudgeRunReport *report, CkError *err);

#endif
