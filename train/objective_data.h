/* objective_data.h — the data of the baseline objectives as train_run reads it
 * (train/OBJECTIVES.md): forward-prediction and hindsight from judgment records (the formats
 * of datasets/judgments.h), ILF-MLE from a refinement file, DPO from a pair file and ILF-DPO
 * from a refinement file (train/pairs.h), built with the templates and the cutoff as CUT's
 * examples are (train/baselines.h); for DPO also the frozen reference's log-probs, computed
 * once and kept in OUT/ref_logps.jsonl (train/dpo.h). */
#ifndef CK_OBJECTIVE_DATA_H
#define CK_OBJECTIVE_DATA_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "datasets/corpus.h"
#include "datasets/judgments.h"
#include "formats/lm.h"
#include "train/baselines.h"
#include "train/pairs.h"
#include "train/train_run.h"
#include "util/ck_error.h"

typedef struct {
    JudgmentSet set;     /* forward-prediction, hindsight: the records */
    PairSet pairs;       /* dpo, ilf-*: the pairs */
    Corpus corpus;       /* the MLE objectives' sequences */
    CutExample *pair_ex; /* the DPO objectives' pairs (a chosen, m rejected) */
    int n_pairs;
    double *ref_logps; /* [2 n_pairs] */
    int ref_reused;    /* the reference log-probs came from OUT/ref_logps.jsonl */
    BaselineStats stats;
    int cutoff; /* the cutoff applied */
} ObjectiveData;

/* Whether obj is one of the baselines this file reads (not mle, not cut). */
int objective_data_applies(TrainObjective obj);

/* Reads and builds the data of o->objective with lm's tokenizer, bounded by lm's context;
 * for DPO computes (or reuses) the reference log-probs with lm's model or o->ref_model, rank 0
 * writing OUT/ref_logps.jsonl. On failure d holds nothing. */
int objective_data_load(ObjectiveData *d, const TrainRunOptions *o, const LanguageModel *lm,
                        CkError *err);

/* Releases d; safe on a zeroed ObjectiveData. */
void objective_data_free(ObjectiveData *d);

/* The number of items an update draws from: sequences (MLE) or pairs (DPO). */
int objective_data_items(const ObjectiveData *d);

/* Prints the objective's data line (counts, skipped lines, the reference's source). */
void objective_data_report(const ObjectiveData *d, const TrainRunOptions *o, FILE *log);

/* Adds the data's counts (object "objective_data") to config.json's object c; -1 when out
 * of memory. */
int objective_data_config(const ObjectiveData *d, const TrainRunOptions *o, cJSON *c);

#endif
