/* cut_data.c — see cut_data.h. */
#include "train/cut_data.h"

#include <stdlib.h>
#include <string.h>

#include "datasets/templates.h"

/* The Align-P ratio in effect: -Align-P (o->no_align_p) keeps int(0 x negatives) = none. */
static double align_p_ratio(const TrainRunOptions *o) {
    return o->no_align_p ? 0.0 : o->align_p_ratio;
}

/* The tokens of the longer template filled with empty fields, BOS included: the least room a
 * sequence needs before its instruction, judgment and response. */
static int template_tokens(const Template *tpl, const Tokenizer *tok, int *n, CkError *err) {
    const char *const prompts[2] = {tpl->prompt_no_input, tpl->prompt_no_input_judge};
    *n = 0;
    for (int k = 0; k < 2; k++) {
        char *text = template_format(prompts[k], "", "", err);
        if (!text) return -1;
        int *ids = NULL, n_ids = 0;
        const int rc = tokenizer_encode(tok, text, 1, 0, &ids, &n_ids, err);
        free(text);
        free(ids);
        if (rc != 0) return -1;
        if (n_ids > *n) *n = n_ids;
    }
    return 0;
}

/* The records of o->judgments, read as o says. */
static int load_records(JudgmentSet *set, const TrainRunOptions *o, CkError *err) {
    const char *name = o->judgment_format ? o->judgment_format : "auto";
    const JudgmentFormat fmt = judgments_format_from_name(name, o->judgments);
    if (!fmt)
        return ck_fail(err, "--judgment-format expects cut, shepherd, jsonl or auto, got '%s'",
                       name);
    const JudgmentLoadOptions lo = {o->skip_bad, o->keep_error};
    return judgments_load(set, o->judgments, fmt, &lo, err);
}

/* Builds the examples of d->set once the template is read and the cutoff is known. */
static int build(CutData *d, const TrainRunOptions *o, const Template *tpl, const Tokenizer *tok,
                 int context, CkError *err) {
    if (template_tokens(tpl, tok, &d->template_tokens, err) != 0) return -1;
    if (o->cutoff > 0 && o->cutoff < d->template_tokens) {
        ck_fail(err,
                "--cutoff expects 0 (the model's context) or at least %d (the template's "
                "length in tokens), got %d",
                d->template_tokens, o->cutoff);
        return TRAIN_RUN_BAD_OPTION;
    }
    const int cap = context > 1 ? context - 1 : 1; /* room for the EOS after the cutoff */
    d->cutoff_requested = o->cutoff;
    d->cutoff = o->cutoff > 0 && o->cutoff < cap ? o->cutoff : cap;
    CutBuildOptions bo;
    judgments_build_options_init(&bo);
    bo.cutoff = d->cutoff;
    bo.align_p_ratio = align_p_ratio(o);
    bo.align_p_seed = o->align_p_seed;
    if (judgments_build_examples(&d->set, tpl, tok, &bo, &d->examples, err) != 0)
        return ck_wrap(err, "%s", o->judgments);
    return 0;
}

int cut_data_load(CutData *d, const TrainRunOptions *o, const Tokenizer *tok, int context,
                  CkError *err) {
    memset(d, 0, sizeof *d);
    if (load_records(&d->set, o, err) != 0) return -1;
    Template tpl;
    int rc =
        o->template_path ? template_load(&tpl, o->template_path, err) : template_default(&tpl, err);
    if (rc == 0) {
        rc = build(d, o, &tpl, tok, context, err);
        template_free(&tpl);
    }
    if (rc != 0) cut_data_free(d);
    return rc;
}

void cut_data_free(CutData *d) {
    judgments_example_set_free(&d->examples);
    judgments_free(&d->set);
    memset(d, 0, sizeof *d);
}

void cut_data_report(const CutData *d, const TrainRunOptions *o, FILE *log) {
    const CutBuildStats *st = &d->examples.stats;
    if (align_p_ratio(o) >= 0)
        fprintf(log, "Align-P ratio %g (seed %llu): %d of %d positives kept beside %d negatives\n",
                align_p_ratio(o), (unsigned long long)o->align_p_seed, st->n_positive_kept,
                st->n_positive, st->n_negative);
    char capped[64] = "";
    if (d->cutoff_requested <= 0)
        snprintf(capped, sizeof capped, " (the model's context)");
    else if (d->cutoff != d->cutoff_requested)
        snprintf(capped, sizeof capped, " (capped from %d by the model's context)",
                 d->cutoff_requested);
    const int n_seqs = st->n_examples + (st->n_examples - st->n_positive_kept);
    fprintf(log, "cutoff %d%s: %d of %d sequences truncated from the left", d->cutoff, capped,
            st->n_truncated, n_seqs);
    if (st->n_response_cut > 0) fprintf(log, ", %d of them into the response", st->n_response_cut);
    fprintf(log, "\n");
    if (st->n_judgment_lost > 0)
        fprintf(log,
                "warning: the cutoff removed the whole judgment of %d negative%s: Align-N equals "
                "Misalign there, so nothing can be flagged and the response gets plain MLE "
                "(raise --cutoff)\n",
                st->n_judgment_lost, st->n_judgment_lost == 1 ? "" : "s");
}

int cut_data_config(const CutData *d, const TrainRunOptions *o, cJSON *c) {
    const CutBuildStats *st = &d->examples.stats;
    cJSON *counts = cJSON_CreateObject();
    int ok = counts && cJSON_AddNumberToObject(c, "cutoff", d->cutoff) &&
             cJSON_AddNumberToObject(c, "cutoff_requested", d->cutoff_requested) &&
             (align_p_ratio(o) >= 0 ? cJSON_AddNumberToObject(c, "align_p_ratio", align_p_ratio(o))
                                    : cJSON_AddStringToObject(c, "align_p_ratio", "off")) &&
             cJSON_AddNumberToObject(c, "align_p_seed", (double)o->align_p_seed) &&
             cJSON_AddBoolToObject(c, "keep_error", o->keep_error);
    const struct {
        const char *name;
        int value;
    } rows[] = {
        {"records", st->n_records},           {"positives", st->n_positive},
        {"negatives", st->n_negative},        {"positives_kept", st->n_positive_kept},
        {"examples", st->n_examples},         {"error_negatives", st->n_error},
        {"skipped", d->set.n_skipped},        {"sequences_truncated", st->n_truncated},
        {"response_cut", st->n_response_cut}, {"judgment_lost", st->n_judgment_lost},
    };
    for (size_t i = 0; ok && i < sizeof rows / sizeof rows[0]; i++)
        ok = cJSON_AddNumberToObject(counts, rows[i].name, rows[i].value) != NULL;
    if (!ok || !cJSON_AddItemToObject(c, "cut_data", counts)) {
        cJSON_Delete(counts);
        return -1;
    }
    return 0;
}
