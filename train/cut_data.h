/* cut_data.h — the examples of a CUT training run as train_run reads them: the judgment records
 * loaded (keeping "$ERROR$" when asked), Align-P downsampled and built to the cutoff with the
 * templates as the reference builds them (datasets/judgments.h: judgments_build_examples),
 * with what the cutoff did printed, warned about and recorded in OUT/config.json.
 *
 * The cutoff follows the reference's cutoff_len: a sequence longer than it keeps its last
 * `cutoff` tokens and then gets EOS, so it may be cutoff + 1 long; the model's context C bounds
 * it, so the cutoff applied is min(requested, C - 1) (requested 0: C - 1). */
#ifndef CK_CUT_DATA_H
#define CK_CUT_DATA_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "datasets/judgments.h"
#include "tokenizer/tokenizer.h"
#include "train/train_run.h"
#include "util/ck_error.h"

typedef struct {
    JudgmentSet set;        /* the records as loaded */
    CutExampleSet examples; /* the examples trained on, with their counts (.stats) */
    int cutoff;             /* the cutoff applied */
    int cutoff_requested;   /* TrainRunOptions.cutoff (0: the context's) */
    int template_tokens;    /* the longer template filled with empty fields, BOS included */
} CutData;

/* Reads o->judgments (o->judgment_format, o->skip_bad, o->keep_error) and builds its examples
 * with o->template_path (NULL: the reference Alpaca templates) and tok, downsampled with
 * o->align_p_ratio and o->align_p_seed, to the cutoff of o->cutoff bounded by context
 * positions. Returns 0; TRAIN_RUN_BAD_OPTION with err when o->cutoff is below the template's
 * length in tokens (the flag's fault); -1 with err on any other failure (a file, a record, the
 * tokenizer). On failure d holds nothing. */
int cut_data_load(CutData *d, const TrainRunOptions *o, const Tokenizer *tok, int context,
                  CkError *err);

/* Releases what cut_data_load read; safe on a zeroed CutData. */
void cut_data_free(CutData *d);

/* Prints to log what downsampling and the cutoff did (one line each when they did something),
 * and a warning with the count when the cutoff removed negatives' whole judgment. */
void cut_data_report(const CutData *d, const TrainRunOptions *o, FILE *log);

/* Adds the data's settings (cutoff applied and requested, Align-P ratio and seed, "$ERROR$"
 * kept) and counts (object "cut_data") to a run's config.json object c; -1 when out of
 * memory. */
int cut_data_config(const CutData *d, const TrainRunOptions *o, cJSON *c);

#endif
