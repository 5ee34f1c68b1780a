/* objective_data.c — see objective_data.h. */
#include "train/objective_data.h"

#include <stdlib.h>
#include <string.h>

#include "train/dist.h"
#include "train/dpo.h"
#include "util/fileio.h"

int objective_data_applies(TrainObjective obj) {
    return obj != TRAIN_OBJECTIVE_MLE && obj != TRAIN_OBJECTIVE_CUT;
}

static int is_dpo(TrainObjective obj) {
    return obj == TRAIN_OBJECTIVE_DPO || obj == TRAIN_OBJECTIVE_ILF_DPO;
}

void objective_data_free(ObjectiveData *d) {
    judgments_free(&d->set);
    pairs_free(&d->pairs);
    corpus_free(&d->corpus);
    baselines_free_pairs(d->pair_ex, d->n_pairs);
    free(d->ref_logps);
    memset(d, 0, sizeof *d);
}

int objective_data_items(const ObjectiveData *d) {
    return d->pair_ex ? d->n_pairs : d->corpus.n_seqs;
}

/* The records or pairs of o->objective's file. */
static int read_records(ObjectiveData *d, const TrainRunOptions *o, CkError *err) {
    if (train_objective_reads_judgments(o->objective)) {
        const char *name = o->judgment_format ? o->judgment_format : "auto";
        const JudgmentFormat fmt = judgments_format_from_name(name, o->judgments);
        if (!fmt)
            return ck_fail(err, "--judgment-format expects cut, shepherd, jsonl or auto, got '%s'",
                           name);
        const JudgmentLoadOptions lo = {o->skip_bad, o->keep_error};
        return judgments_load(&d->set, o->judgments, fmt, &lo, err);
    }
    if (o->chosen_field) { /* DPO on JSONL judgments: chosen = the field, rejected = output */
        const char *name = o->judgment_format ? o->judgment_format : "auto";
        if (judgments_format_from_name(name, o->judgments) != JUDGMENTS_JSONL)
            return ck_fail(err,
                           "--chosen-field reads JSONL judgment records; %s is not "
                           "(--judgment-format %s)",
                           o->judgments, name);
        return pairs_load(&d->pairs, o->judgments, PAIRS_REFINEMENT, o->chosen_field, err);
    }
    const PairFileKind kind =
        o->objective == TRAIN_OBJECTIVE_DPO ? PAIRS_PREFERENCE : PAIRS_REFINEMENT;
    return pairs_load(&d->pairs, o->data, kind, NULL, err);
}

/* The reference log-probs: OUT/ref_logps.jsonl when it was written for these pairs and this
 * reference, else computed (and saved by rank 0). */
static int reference_logps(ObjectiveData *d, const TrainRunOptions *o, const LanguageModel *lm,
                           CkError *err) {
    LanguageModel ref_lm;
    memset(&ref_lm, 0, sizeof ref_lm);
    const Model *ref = &lm->model;
    if (o->ref_model) {
        if (lm_open(&ref_lm, o->ref_model, o->tokenizer, err) != 0)
            return ck_wrap(err, "--ref-model");
        ref = &ref_lm.model;
        if (ref->config.vocab_size != lm->model.config.vocab_size) {
            lm_close(&ref_lm);
            return ck_fail(err, "--ref-model %s: vocab_size %d, the model's is %d", o->ref_model,
                           ref->config.vocab_size, lm->model.config.vocab_size);
        }
    }
    char path[4200];
    int rc = fileio_path(path, sizeof path, o->out, "ref_logps.jsonl") != 0
                 ? ck_fail(err, "%s: path too long", o->out)
                 : 0;
    d->ref_logps = rc == 0 ? malloc(sizeof(double) * (size_t)(2 * d->n_pairs + 1)) : NULL;
    if (rc == 0 && !d->ref_logps) rc = ck_fail(err, "out of memory");
    const uint64_t fp = rc == 0 ? dpo_fingerprint(ref, d->pair_ex, d->n_pairs) : 0;
    if (rc == 0) rc = dpo_cache_load(path, fp, d->n_pairs, d->ref_logps, err);
    if (rc == 1) {
        d->ref_reused = 1;
        rc = 0;
    } else if (rc == 0) {
        rc = dpo_reference_logps(ref, d->pair_ex, d->n_pairs, d->ref_logps, err);
        if (rc == 0 && dist_rank() == 0)
            rc = dpo_cache_save(path, fp, d->n_pairs, d->ref_logps, err);
    }
    if (o->ref_model) lm_close(&ref_lm);
    return rc;
}

/* Builds the sequences or pairs of the records read. */
static int build(ObjectiveData *d, const TrainRunOptions *o, const LanguageModel *lm,
                 const Template *tpl, CkError *err) {
    const int context = lm->model.config.seq_len;
    const int cap = context > 1 ? context - 1 : 1; /* room for the EOS after the cutoff */
    d->cutoff = o->cutoff > 0 && o->cutoff < cap ? o->cutoff : cap;
    if (is_dpo(o->objective)) {
        if (baselines_build_pairs(&d->pairs, tpl, &lm->tokenizer, d->cutoff, &d->pair_ex, &d->stats,
                                  err) != 0)
            return ck_wrap(err, "%s", o->data);
        d->n_pairs = d->pairs.n;
        return 0;
    }
    const BaselineMle kind = o->objective == TRAIN_OBJECTIVE_FORWARD_PREDICTION
                                 ? BASELINE_FORWARD_PREDICTION
                             : o->objective == TRAIN_OBJECTIVE_HINDSIGHT ? BASELINE_HINDSIGHT
                                                                         : BASELINE_ILF_MLE;
    if (baselines_build_mle(kind, &d->set, &d->pairs, tpl, &lm->tokenizer, d->cutoff, &d->corpus,
                            &d->stats, err) != 0)
        return ck_wrap(err, "%s", kind == BASELINE_ILF_MLE ? o->data : o->judgments);
    return 0;
}

int objective_data_load(ObjectiveData *d, const TrainRunOptions *o, const LanguageModel *lm,
                        CkError *err) {
    memset(d, 0, sizeof *d);
    if (read_records(d, o, err) != 0) return -1;
    Template tpl;
    int rc =
        o->template_path ? template_load(&tpl, o->template_path, err) : template_default(&tpl, err);
    if (rc == 0) {
        rc = build(d, o, lm, &tpl, err);
        template_free(&tpl);
    }
    if (rc == 0 && is_dpo(o->objective)) rc = reference_logps(d, o, lm, err);
    if (rc != 0) objective_data_free(d);
    return rc;
}

void objective_data_report(const ObjectiveData *d, const TrainRunOptions *o, FILE *log) {
    if (d->pairs.n_no_refinement > 0)
        fprintf(log, "%s: %d line%s without a \"%s\" other than the output skipped\n",
                o->chosen_field ? o->judgments : o->data, d->pairs.n_no_refinement,
                d->pairs.n_no_refinement == 1 ? "" : "s",
                o->chosen_field ? o->chosen_field : "refinement");
    fprintf(log, "cutoff %d: %d sequences truncated from the left\n", d->cutoff,
            d->stats.n_truncated);
    if (d->pair_ex)
        fprintf(log, "reference log-probs of %d pairs (%s, beta %g): %s\n", d->n_pairs,
                o->ref_model ? o->ref_model : "the starting model", o->beta,
                d->ref_reused ? "reused from ref_logps.jsonl" : "computed, in ref_logps.jsonl");
}

int objective_data_config(const ObjectiveData *d, const TrainRunOptions *o, cJSON *c) {
    cJSON *counts = cJSON_CreateObject();
    const int records =
        d->pair_ex || o->objective == TRAIN_OBJECTIVE_ILF_MLE ? d->pairs.n : d->set.n;
    int ok =
        counts && cJSON_AddNumberToObject(c, "cutoff", d->cutoff) &&
        cJSON_AddNumberToObject(counts, "records", records) &&
        cJSON_AddNumberToObject(counts, d->pair_ex ? "pairs" : "sequences", d->stats.n_sequences) &&
        cJSON_AddNumberToObject(counts, "sequences_truncated", d->stats.n_truncated) &&
        cJSON_AddNumberToObject(counts, "no_refinement_skipped", d->pairs.n_no_refinement);
    if (ok && train_objective_reads_judgments(o->objective)) /* the JudgmentSet's */
        ok = cJSON_AddNumberToObject(counts, "skipped", d->set.n_skipped) != NULL;
    if (ok && d->pair_ex)
        ok = cJSON_AddNumberToObject(c, "beta", o->beta) &&
             cJSON_AddStringToObject(c, "ref_model", o->ref_model ? o->ref_model : "start") &&
             (!o->chosen_field || cJSON_AddStringToObject(c, "chosen_field", o->chosen_field));
    if (!ok || !cJSON_AddItemToObject(c, "objective_data", counts)) {
        cJSON_Delete(counts);
        return -1;
    }
    return 0;
}
