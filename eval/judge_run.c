/* judge_run.c — see judge_run.h. The steps: read both output files and, on rank 0, the
 * annotations to resume (load_inputs); pair them, taking over the resumed records
 * (build_pairs); agree across ranks on which pairs are judged now (share_todo); open the judge
 * (open_judge); judge through the sharding loop, rank 0 taking each gathered judgment into its
 * record and saving every save_every (judge_all); write the file and count what is missing
 * (finish). A pair to judge carries is_switched == TO_JUDGE until judged. */
#include "eval/judge_run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/annotations.h"
#include "eval/judge.h"
#include "eval/outputs.h"
#include "eval/shard.h"
#include "formats/lm.h"
#include "formats/peft.h"
#include "train/dist.h"
#include "util/hash.h"
#include "util/outdir.h"

#define TO_JUDGE -2

void judge_run_options_init(JudgeRunOptions *o) {
    memset(o, 0, sizeof *o);
    o->kind = JUDGE_KIND_MODEL;
    o->timeout = 120;
    o->randomize = 1;
    o->save_every = 20;
    o->judge_held = WEIGHT_F32;
}

int judge_kind_parse(const char *name, JudgeKind *kind) {
    static const char *const NAMES[] = {"model", "command", "synth"};
    for (int k = 0; k < 3; k++)
        if (strcmp(name, NAMES[k]) == 0) {
            *kind = (JudgeKind)k;
            return 0;
        }
    return -1;
}

int judge_run_options_check(const JudgeRunOptions *o, CkError *err) {
    if (o->kind == JUDGE_KIND_COMMAND && !o->judge_command)
        return ck_fail(err, "--judge command needs --judge-command");
    if (!o->outputs || !o->reference || !o->out)
        return ck_fail(err, "the outputs, reference and out files are required");
    return 0;
}

/* The run's state, released by run_close. */
typedef struct {
    const JudgeRunOptions *o;
    JudgeRunReport *report;
    ModelOutputs model, ref;
    AnnotationSet old, anns; /* old: rank 0's resumed file; anns: the pairs */
    int n_old;               /* records in the resumed file (rank 0's count, on every rank) */
    int *todo;               /* indices of the pairs to judge now */
    int to_judge, since_save;
    PairwiseTemplate tpl;
    LanguageModel lm;
    LoraAdapters ad;
    int have_lm, have_ad;
    RunLock lock; /* rank 0: the output file, while the run writes it */
    Judge judge;
    JudgeOptions jo;
} JudgeRun;

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

static int same(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The reference record with this instruction: the same index first, else a search. */
static const ModelOutput *find_reference(const ModelOutputs *ref, int i, const char *instruction) {
    if (i < ref->n && strcmp(ref->items[i].instruction, instruction) == 0) return &ref->items[i];
    for (int k = 0; k < ref->n; k++)
        if (strcmp(ref->items[k].instruction, instruction) == 0) return &ref->items[k];
    return NULL;
}

/* Reads both output files and, on rank 0, the file to resume (locked first, its folder
 * created, a killed run's half-written file removed); every rank learns its length. */
static int load_inputs(JudgeRun *j, CkError *err) {
    const JudgeRunOptions *o = j->o;
    if (outputs_load(&j->model, o->outputs, 1, err) != 0 ||
        outputs_load(&j->ref, o->reference, 1, err) != 0)
        return -1;
    struct stat st;
    /* the output file is rank 0's alone: it reads it, and sends the others what they need */
    if (dist_rank() == 0) {
        if (outdir_open_file(&j->lock, o->out, err) != 0) return -1;
        if (stat(o->out, &st) == 0 && annotations_load(&j->old, o->out, err) != 0) return -1;
    }
    j->n_old = j->old.n;
    return dist_bcast_bytes(&j->n_old, sizeof j->n_old, 0, err);
}

/* A new pair: the instruction, both outputs, generators ("reference" and "model" when the
 * files name none) and dataset. */
static int pair_new(Annotation *a, const ModelOutput *m, const ModelOutput *r, CkError *err) {
    a->instruction = dup_or_null(m->instruction);
    a->output_1 = dup_or_null(r->output);
    a->output_2 = dup_or_null(m->output);
    a->generator_1 = dup_or_null(r->generator ? r->generator : "reference");
    a->generator_2 = dup_or_null(m->generator ? m->generator : "model");
    a->dataset = dup_or_null(m->dataset ? m->dataset : r->dataset);
    if (!a->instruction || !a->output_1 || !a->output_2 || !a->generator_1 || !a->generator_2)
        return ck_fail(err, "out of memory");
    a->is_switched = TO_JUDGE;
    return 0;
}

/* Pair i as the resumed file holds it: on rank 0 its record, which must be this very pair
 * (judged again when missing and retry_missing); elsewhere only the pair's texts, since rank 0
 * says which are judged again. */
static int pair_resumed(JudgeRun *j, int i, Annotation *a, const ModelOutput *m,
                        const ModelOutput *r, CkError *err) {
    if (dist_rank() != 0) {
        a->instruction = dup_or_null(m->instruction);
        a->output_1 = dup_or_null(r->output);
        a->output_2 = dup_or_null(m->output);
        if (!a->instruction || !a->output_1 || !a->output_2) return ck_fail(err, "out of memory");
        a->is_switched = -1;
        return 0;
    }
    Annotation *o = &j->old.items[i];
    if (strcmp(o->instruction, m->instruction) != 0 || !same(o->output_1, r->output) ||
        !same(o->output_2, m->output))
        return ck_fail(err,
                       "%s: record %d does not hold the pair being judged (another baseline "
                       "or outputs?); choose another --out",
                       j->o->out, i);
    *a = *o; /* take it over */
    memset(o, 0, sizeof *o);
    o->preference = NAN;
    if (isnan(a->preference) && j->o->retry_missing) a->is_switched = TO_JUDGE;
    return 0;
}

/* The pairs: the first limit outputs (never fewer than the resumed file holds) with their
 * reference records. */
static int build_pairs(JudgeRun *j, CkError *err) {
    int n = j->model.n;
    if (j->o->limit > 0 && j->o->limit < n) n = j->o->limit;
    if (j->n_old > n) n = j->n_old < j->model.n ? j->n_old : j->model.n; /* keep judged records */
    for (int i = 0; i < n; i++) {
        const ModelOutput *m = &j->model.items[i];
        const ModelOutput *r = find_reference(&j->ref, i, m->instruction);
        if (!r)
            return ck_fail(err, "%s: record %d: no record of %s has its instruction", j->o->outputs,
                           i, j->o->reference);
        Annotation *a = annotations_add(&j->anns);
        if (!a) return ck_fail(err, "out of memory");
        if ((i < j->n_old ? pair_resumed(j, i, a, m, r, err) : pair_new(a, m, r, err)) != 0)
            return -1;
    }
    return 0;
}

/* Every rank must judge the same pairs: a hash of them agrees across ranks, else the gathered
 * file would mix two runs. */
static int check_same_pairs(const AnnotationSet *anns, CkError *err) {
    if (dist_size() == 1) return 0;
    uint64_t h = hash_fnv1a64(HASH_FNV1A64_OFFSET, &anns->n, sizeof anns->n);
    for (int i = 0; i < anns->n; i++) {
        const Annotation *a = &anns->items[i];
        const char *texts[3] = {a->instruction, a->output_1 ? a->output_1 : "",
                                a->output_2 ? a->output_2 : ""};
        for (int k = 0; k < 3; k++) h = hash_fnv1a64(h, texts[k], strlen(texts[k]) + 1);
        int judge_now = a->is_switched == TO_JUDGE;
        h = hash_fnv1a64(h, &judge_now, sizeof judge_now);
    }
    int same = 0;
    if (dist_same_u64(h, &same, err) != 0) return -1;
    if (!same)
        return ck_fail(err,
                       "the ranks have different pairs to judge (%d here): give every rank the "
                       "same flags and files",
                       anns->n);
    return 0;
}

/* Which pairs are judged now is rank 0's to say (it read the resumed file): broadcast, marked
 * on every rank, listed in j->todo. */
static int share_todo(JudgeRun *j, CkError *err) {
    AnnotationSet *anns = &j->anns;
    j->todo = calloc((size_t)(anns->n > 0 ? anns->n : 1), sizeof(int));
    if (!j->todo) return ck_fail(err, "out of memory");
    for (int i = 0; i < anns->n; i++) j->todo[i] = anns->items[i].is_switched == TO_JUDGE;
    if (dist_bcast_bytes(j->todo, sizeof(int) * (size_t)anns->n, 0, err) != 0) return -1;
    j->to_judge = 0;
    for (int i = 0; i < anns->n; i++) {
        if (j->todo[i]) anns->items[i].is_switched = TO_JUDGE;
        if (j->todo[i]) j->todo[j->to_judge++] = i; /* now the indices of the pairs to judge */
    }
    return check_same_pairs(anns, err);
}

/* Opens the judge of o->kind. */
static int open_judge(JudgeRun *j, CkError *err) {
    const JudgeRunOptions *o = j->o;
    if (o->kind == JUDGE_KIND_COMMAND)
        return judge_command_create(&j->judge, o->judge_command, o->timeout, o->annotator, err);
    if (o->kind == JUDGE_KIND_SYNTH) {
        if (judge_synth_create(&j->judge, err) != 0) return -1;
        if (o->annotator) snprintf(j->judge.name, sizeof j->judge.name, "%s", o->annotator);
        return 0;
    }
    if (pairwise_template_load(&j->tpl, o->judge_template, err) != 0 ||
        lm_open_held(&j->lm, o->judge_model, o->judge_tokenizer, o->judge_held, err) != 0)
        return -1;
    j->have_lm = 1;
    if (o->judge_adapter) {
        if (peft_load(&j->ad, &j->lm.model, o->judge_adapter, err) != 0) return -1;
        j->have_ad = 1;
    }
    return judge_model_create(&j->judge, &j->lm.model, &j->lm.tokenizer, j->have_ad ? &j->ad : NULL,
                              &j->tpl, o->annotator, err);
}

/* The loop's work: judges pair todo[k] (in place) and packs what judge_annotate filled in,
 * the preference bit for bit. */
static int judge_work(void *ctx, int64_t k, StrBuf *out, CkError *err) {
    JudgeRun *j = ctx;
    Annotation *a = &j->anns.items[j->todo[k]];
    if (judge_annotate(&j->judge, &j->jo, a, err) != 0) return -1;
    if (shard_put(out, &a->preference, sizeof a->preference, err) ||
        shard_put_int(out, a->is_switched, err) || shard_put_str(out, a->annotator, err) ||
        shard_put_str(out, a->raw_completion, err) || shard_put_str(out, a->error, err))
        return -1;
    return 0;
}

/* The loop's collect (rank 0, in order): takes pair todo[k]'s judgment into its record,
 * reports a failure, and saves every save_every judgments. */
static int judge_collect(void *ctx, int64_t k, ShardReader *in, CkError *err) {
    JudgeRun *j = ctx;
    const int i = j->todo[k];
    Annotation *a = &j->anns.items[i];
    free(a->annotator), free(a->raw_completion), free(a->error);
    a->annotator = a->raw_completion = a->error = NULL;
    if (shard_get(in, &a->preference, sizeof a->preference, err) ||
        shard_get_int(in, &a->is_switched, err) || shard_get_str(in, &a->annotator, err) ||
        shard_get_str(in, &a->raw_completion, err) || shard_get_str(in, &a->error, err))
        return -1;
    JudgeRunReport *rep = j->report;
    FILE *log = j->o->log;
    rep->n_judged++;
    if (isnan(a->preference)) {
        if (!rep->first_error[0] && a->error)
            snprintf(rep->first_error, sizeof rep->first_error, "%s", a->error);
        if (log) fprintf(log, "record %d: %s\n", i, a->error ? a->error : "failed");
    }
    if (++j->since_save < j->o->save_every) return 0;
    if (annotations_save(&j->anns, j->o->out, err) != 0) return -1;
    j->since_save = 0;
    if (log) fprintf(log, "%d/%d judged\n", rep->n_judged, j->to_judge);
    return 0;
}

/* Judges the pairs in todo: rounds of about save_every pairs, each rank its share. */
static int judge_all(JudgeRun *j, CkError *err) {
    const JudgeRunOptions *o = j->o;
    j->jo = (JudgeOptions){o->seed, o->randomize, o->both_orders};
    const int per_rank = (o->save_every + dist_size() - 1) / dist_size();
    ShardLoop loop = {j->to_judge, per_rank, j, judge_work, judge_collect, NULL};
    return shard_run(&loop, err);
}

/* Rank 0: writes the file (the records not judged this time as they were) and counts the
 * missing preferences. */
static int finish(JudgeRun *j, CkError *err) {
    for (int i = 0; i < j->anns.n; i++)
        if (j->anns.items[i].is_switched == TO_JUDGE) j->anns.items[i].is_switched = -1;
    if (annotations_save(&j->anns, j->o->out, err) != 0) return -1;
    j->report->n_pairs = j->anns.n;
    for (int i = 0; i < j->anns.n; i++) j->report->n_missing += isnan(j->anns.items[i].preference);
    j->report->wrote = 1;
    return 0;
}

static void run_close(JudgeRun *j) {
    free(j->todo);
    judge_close(&j->judge);
    if (j->have_ad) lora_free(&j->ad);
    if (j->have_lm) lm_close(&j->lm);
    pairwise_template_free(&j->tpl);
    outputs_free(&j->model);
    outputs_free(&j->ref);
    annotations_free(&j->old);
    annotations_free(&j->anns);
    runlock_release(&j->lock);
}

int judge_run(const JudgeRunOptions *o, JudgeRunReport *report, CkError *err) {
    memset(report, 0, sizeof *report);
    if (judge_run_options_check(o, err) != 0) return -1;
    JudgeRun j;
    memset(&j, 0, sizeof j);
    j.o = o;
    j.report = report;
    int rc = load_inputs(&j, err);
    if (rc == 0) rc = build_pairs(&j, err);
    if (rc == 0) rc = share_todo(&j, err);
    if (rc == 0 && j.to_judge > 0) rc = open_judge(&j, err);
    if (rc == 0) rc = judge_all(&j, err);
    if (rc == 0 && dist_rank() == 0) rc = finish(&j, err);
    run_close(&j);
    return rc;
}
