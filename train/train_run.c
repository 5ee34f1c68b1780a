/* train_run.c — see train_run.h. */
#include "train/train_run.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/corpus.h"
#include "datasets/judgments.h"
#include "datasets/templates.h"
#include "formats/hf_config.h"
#include "formats/lm.h"
#include "model/matmul.h"
#include "train/cut_data.h"
#include "train/dist.h"
#include "train/objective_data.h"
#include "util/fileio.h"
#include "util/outdir.h"
#include "util/threads.h"

void train_run_options_init(TrainRunOptions *o) {
    memset(o, 0, sizeof *o);
    o->objective = TRAIN_OBJECTIVE_MLE;
    o->judgment_format = "auto";
    o->cut = cut_default_options();
    o->cutoff = 2048;      /* the reference's cutoff_len */
    o->align_p_ratio = -1; /* every positive */
    o->align_p_seed = 42;
    o->seq_len = 256;
    o->lora_r = 16;
    o->lora_alpha = 16.0f;
    o->lora_dropout = 0.05f;
    o->lora_targets = "gate_proj,up_proj,down_proj";
    o->batch_size = 8;
    o->micro_batch = 1;
    o->lr = 4e-4;
    o->schedule = SCHED_COSINE;
    o->warmup = 100;
    o->adamw = adamw_config_default();
    o->max_grad_norm = 1.0;
    o->keep = 1;
    o->seed = 42;
    o->beta = 0.1; /* TRL's DPOConfig default */
}

static const char *const OBJECTIVE_NAMES[] = {
    "mle", "cut", "forward-prediction", "hindsight", "dpo", "ilf-mle", "ilf-dpo",
};
enum { N_OBJECTIVES = sizeof OBJECTIVE_NAMES / sizeof OBJECTIVE_NAMES[0] };

const char *train_objective_name(TrainObjective obj) {
    return (int)obj >= 0 && (int)obj < N_OBJECTIVES ? OBJECTIVE_NAMES[obj] : "";
}

int train_objective_parse(const char *name, TrainObjective *obj, CkError *err) {
    for (int i = 0; name && i < N_OBJECTIVES; i++)
        if (!strcmp(name, OBJECTIVE_NAMES[i])) {
            *obj = (TrainObjective)i;
            return 0;
        }
    return ck_fail(err,
                   "--objective expects mle, cut, forward-prediction, hindsight, dpo, ilf-mle or "
                   "ilf-dpo, got '%s'",
                   name ? name : "");
}

int train_objective_reads_judgments(TrainObjective obj) {
    return obj == TRAIN_OBJECTIVE_CUT || obj == TRAIN_OBJECTIVE_FORWARD_PREDICTION ||
           obj == TRAIN_OBJECTIVE_HINDSIGHT;
}

int train_run_reads_judgments(const TrainRunOptions *o) {
    return train_objective_reads_judgments(o->objective) ||
           (o->objective == TRAIN_OBJECTIVE_DPO && o->chosen_field);
}

/* The format of the judgments file: named, or by its extension. */
static int judgment_format(const TrainRunOptions *o, JudgmentFormat *fmt, CkError *err) {
    const char *name = o->judgment_format ? o->judgment_format : "auto";
    if (!strcmp(name, "cut")) {
        *fmt = JUDGMENTS_CUT_JSON;
    } else if (!strcmp(name, "shepherd")) {
        *fmt = JUDGMENTS_SHEPHERD;
    } else if (!strcmp(name, "jsonl")) {
        *fmt = JUDGMENTS_JSONL;
    } else if (!strcmp(name, "auto")) {
        const size_t len = o->judgments ? strlen(o->judgments) : 0;
        *fmt = (len > 6 && !strcmp(o->judgments + len - 6, ".jsonl")) ? JUDGMENTS_JSONL
                                                                      : JUDGMENTS_CUT_JSON;
    } else {
        return ck_fail(err, "--judgment-format expects cut, shepherd, jsonl or auto, got '%s'",
                       name);
    }
    return 0;
}

int train_run_check(const TrainRunOptions *o, CkError *err) {
    const int cut = train_run_reads_judgments(o);
    if (o->chosen_field && o->objective != TRAIN_OBJECTIVE_DPO)
        return ck_fail(err, "--chosen-field needs --objective dpo");
    if (!*train_objective_name(o->objective))
        return ck_fail(err, "unknown objective %d", (int)o->objective);
    if (o->epochs > 0 && o->steps > 0) return ck_fail(err, "give --steps or --epochs, not both");
    if ((!cut && !o->data) || (cut && !o->judgments) || !o->out)
        return ck_fail(err, cut ? "--judgments and --out are required"
                                : "--data and --out are required");
    if ((o->objective == TRAIN_OBJECTIVE_DPO || o->objective == TRAIN_OBJECTIVE_ILF_DPO) &&
        !(o->beta > 0))
        return ck_fail(err, "--beta must be positive, got %g", o->beta);
    const int ablation = o->no_align_p || o->no_dynamic_weight || o->cut.no_l1 ||
                         o->cut.no_align_n_mle || o->cut.no_detection;
    if (ablation && o->objective != TRAIN_OBJECTIVE_CUT)
        return ck_fail(err, "the ablation flags (--no-l1, --no-align-p, --no-align-n-mle, "
                            "--no-detection, --no-dynamic-weight) need --objective cut");
    if (o->cut.no_l1 && o->cut.no_align_n_mle)
        return ck_fail(err, "--no-l1 with --no-align-n-mle leaves a negative no loss at all");
    unsigned mask;
    if (o->lora && !o->lora_targets) return ck_fail(err, "--lora-targets: none given");
    if (o->lora && lora_parse_targets(o->lora_targets, &mask, err) != 0)
        return ck_wrap(err, "--lora-targets");
    if (o->random_init && !o->config)
        return ck_fail(err, "--init random needs --config config.json");
    if (o->batch_size <= 0 || o->micro_batch <= 0 || o->batch_size % o->micro_batch != 0)
        return ck_fail(err, "--micro-batch %d must divide --batch-size %d", o->micro_batch,
                       o->batch_size);
    /* a --warmup longer than the run is valid: the whole run is warmup, as transformers
     * has it (schedule.h) */
    if (!(o->align_p_ratio <= 1))
        return ck_fail(err, "--align-p-ratio expects off or a number from 0 to 1, got %g",
                       o->align_p_ratio);
    JudgmentFormat fmt;
    return cut ? judgment_format(o, &fmt, err) : 0;
}

/* What a run reads before training, released together. */
typedef struct {
    LanguageModel lm;
    HfConfig cfg;
    Corpus corpus;     /* MLE */
    CutData cut;       /* CUT: the records and their examples */
    ObjectiveData obj; /* the baselines (objective_data.h) */
} Inputs;

static void inputs_free(Inputs *in) {
    corpus_free(&in->corpus);
    objective_data_free(&in->obj);
    cut_data_free(&in->cut);
    lm_close(&in->lm);
}

/* Replaces lm's weights by a new model of o->config's shape (random, seeded), keeping lm's
 * tokenizer (--tokenizer, or the embedded one). */
static int make_random_model(const TrainRunOptions *o, LanguageModel *lm, HfConfig *cfg,
                             CkError *err) {
    Model fresh;
    if (hf_config_load(cfg, o->config, err) != 0) return -1;
    cfg->model.rope_style = ROPE_INTERLEAVED;
    if (model_init(&fresh, &cfg->model, err) != 0) return -1;
    if (fresh.config.vocab_size != lm->tokenizer.vocab_size) {
        const int model_vocab = fresh.config.vocab_size;
        model_free(&fresh);
        return ck_fail(err, "vocab mismatch: --config has vocab_size %d, the tokenizer %d",
                       model_vocab, lm->tokenizer.vocab_size);
    }
    trainer_init_random(&fresh, o->seed);
    model_free(&lm->model);
    lm->model = fresh;
    return 0;
}

/* Opens the model to train (or makes a random one) and fills in->cfg, the config saved with
 * its checkpoints. */
static int open_model(const TrainRunOptions *o, Inputs *in, CkError *err) {
    in->cfg = (HfConfig){.bos_token_id = 1, .eos_token_id = 2};
    if (lm_open_held(&in->lm, o->random_init ? NULL : o->model, o->tokenizer, o->base_dtype, err) !=
        0)
        return -1;
    if (o->random_init && make_random_model(o, &in->lm, &in->cfg, err) != 0) return -1;
    in->cfg.model = in->lm.model.config;
    return 0;
}

/* The trainer's options for o, once the data (n_items sequences or examples) is known. */
static TrainOptions trainer_options(const TrainRunOptions *o, const Inputs *in, int n_items) {
    TrainOptions t = {0};
    t.steps = o->steps > 0 ? o->steps : 100;
    /* an epoch is one pass of the shuffled cursor over every sequence (or example); the last
     * update may reach into the next pass, as batches never stop short at an epoch's end */
    if (o->epochs > 0) t.steps = (int64_t)ceil(o->epochs * n_items / o->batch_size - 1e-9);
    if (t.steps < 1) t.steps = 1;
    t.batch_size = o->batch_size;
    t.micro_batch = o->micro_batch;
    t.lr = o->lr;
    t.schedule = o->schedule;
    t.warmup_steps = o->warmup;
    t.first_step_lr_zero = !o->lr_from_first_step;
    t.adamw = o->adamw;
    t.max_grad_norm = o->max_grad_norm;
    t.use_lora = o->lora;
    if (o->lora) lora_parse_targets(o->lora_targets, &t.lora.target_mask, NULL);
    t.lora.rank = o->lora_r;
    t.lora.alpha = o->lora_alpha;
    t.lora.dropout = o->lora_dropout;
    t.seed = o->seed;
    t.out_dir = o->out;
    t.save_every = o->save_every;
    t.keep_checkpoints = o->keep;
    t.resume = o->resume;
    t.base_name = o->model ? o->model : in->lm.model_source;
    t.command_line = o->command_line ? o->command_line : "cutkit train";
    t.stop = o->stop;
    t.stop_after = o->stop_after;
    t.cut = o->cut;
    if (o->no_dynamic_weight) t.cut.gamma = 0.0;
    t.beta = o->beta;
    t.dpo_ref_logps = in->obj.pair_ex ? in->obj.ref_logps : NULL;
    return t;
}

/* Rank 0: the run's opening line on stderr. */
static void print_opening(const TrainRunOptions *o, const Inputs *in, const TrainOptions *t,
                          int n_items) {
    if (dist_rank() != 0) return;
    char epochs_note[64] = "", ranks_note[48] = "";
    if (o->epochs > 0)
        snprintf(epochs_note, sizeof epochs_note, " (%g epoch%s of %d)", o->epochs,
                 o->epochs == 1 ? "" : "s", n_items);
    if (dist_size() > 1)
        snprintf(ranks_note, sizeof ranks_note, ", data-parallel on %d ranks", dist_size());
    const CutBuildStats *st = &in->cut.examples.stats;
    if (o->objective == TRAIN_OBJECTIVE_CUT)
        fprintf(stderr,
                "training %s with CUT on %s: %d examples (%d positive, %d negative, %d $ERROR$ "
                "%s, %d skipped), lambda %g, alpha %g; %lld updates of %d%s%s\n",
                in->lm.model_source, o->judgments, st->n_examples, st->n_positive_kept,
                st->n_negative, in->cut.set.n_error, o->keep_error ? "kept" : "dropped",
                in->cut.set.n_skipped, o->cut.lambda, o->cut.alpha, (long long)t->steps,
                t->batch_size, epochs_note, ranks_note);
    else if (objective_data_applies(o->objective))
        fprintf(stderr, "training %s with %s on %s: %d %s, %lld updates of %d%s%s\n",
                in->lm.model_source, train_objective_name(o->objective),
                train_run_reads_judgments(o) ? o->judgments : o->data, n_items,
                in->obj.pair_ex ? "pairs" : "sequences", (long long)t->steps, t->batch_size,
                epochs_note, ranks_note);
    else
        fprintf(stderr, "training %s on %s: %d sequences, %lld updates of %d%s%s\n",
                in->lm.model_source, o->data, in->corpus.n_seqs, (long long)t->steps, t->batch_size,
                epochs_note, ranks_note);
}

/* Writes OUT/config.json: the effective settings of the run, which `cutkit report` and the
 * sweep read (a run's label is its folder name). */
static int write_run_config(const TrainRunOptions *o, const Inputs *in, const TrainOptions *t,
                            const TrainReport *report, CkError *err) {
    const int cut = o->objective == TRAIN_OBJECTIVE_CUT;
    const int judged = train_run_reads_judgments(o);
    const char *base = strrchr(o->out, '/');
    base = base && base[1] ? base + 1 : o->out;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "label", base);
    cJSON_AddStringToObject(c, "objective", train_objective_name(o->objective));
    cJSON_AddStringToObject(c, "model", o->model ? o->model : in->lm.model_source);
    cJSON_AddStringToObject(c, judged ? "judgments" : "data", judged ? o->judgments : o->data);
    if (o->objective != TRAIN_OBJECTIVE_MLE)
        cJSON_AddStringToObject(c, "template", o->template_path ? o->template_path : "alpaca");
    if (cut) {
        cJSON_AddNumberToObject(c, "lambda", t->cut.lambda);
        cJSON_AddNumberToObject(c, "alpha", t->cut.alpha);
        cJSON_AddNumberToObject(c, "gamma", t->cut.gamma);
        cJSON *ab = cJSON_AddObjectToObject(c, "ablations"); /* Table 4 (OBJECTIVES.md) */
        cJSON_AddBoolToObject(ab, "no_l1", t->cut.no_l1);
        cJSON_AddBoolToObject(ab, "no_align_p", o->no_align_p);
        cJSON_AddBoolToObject(ab, "no_align_n_mle", t->cut.no_align_n_mle);
        cJSON_AddBoolToObject(ab, "no_detection", t->cut.no_detection);
        cJSON_AddBoolToObject(ab, "no_dynamic_weight", o->no_dynamic_weight);
    }
    if (o->preset) cJSON_AddStringToObject(c, "preset", o->preset);
    if ((cut && cut_data_config(&in->cut, o, c) != 0) ||
        (objective_data_applies(o->objective) && objective_data_config(&in->obj, o, c) != 0)) {
        cJSON_Delete(c);
        return ck_fail(err, "out of memory");
    }
    cJSON_AddNumberToObject(c, "lr", t->lr);
    cJSON_AddBoolToObject(c, "lr_from_first_step", !t->first_step_lr_zero);
    cJSON_AddStringToObject(c, "schedule", schedule_kind_name(t->schedule));
    cJSON_AddNumberToObject(c, "warmup", (double)t->warmup_steps);
    cJSON_AddNumberToObject(c, "steps", (double)t->steps);
    if (o->epochs > 0) cJSON_AddNumberToObject(c, "epochs", o->epochs);
    cJSON_AddNumberToObject(c, "batch_size", t->batch_size);
    cJSON_AddNumberToObject(c, "micro_batch", t->micro_batch);
    cJSON_AddNumberToObject(c, "seq_len", o->seq_len);
    cJSON_AddStringToObject(c, "compute", matmul_compute_name()); /* fp32, or bf16 products */
    cJSON_AddStringToObject(c, "matmul_backend", matmul_backend_name()); /* what ran them */
    cJSON_AddStringToObject(c, "base_dtype", model_held_name(o->base_dtype));
    cJSON_AddNumberToObject(c, "weight_decay", t->adamw.weight_decay);
    cJSON_AddNumberToObject(c, "beta1", t->adamw.beta1);
    cJSON_AddNumberToObject(c, "beta2", t->adamw.beta2);
    cJSON_AddNumberToObject(c, "eps", t->adamw.eps);
    cJSON_AddNumberToObject(c, "max_grad_norm", t->max_grad_norm);
    cJSON_AddBoolToObject(c, "lora", t->use_lora);
    if (t->use_lora) {
        cJSON_AddNumberToObject(c, "lora_r", t->lora.rank);
        cJSON_AddNumberToObject(c, "lora_alpha", t->lora.alpha);
        cJSON_AddNumberToObject(c, "lora_dropout", t->lora.dropout);
        cJSON_AddStringToObject(c, "lora_targets", o->lora_targets);
    }
    cJSON_AddNumberToObject(c, "seed", (double)t->seed);
    cJSON_AddNumberToObject(c, "ranks", dist_size());
    cJSON_AddNumberToObject(c, "steps_done", (double)report->steps_done);
    cJSON_AddNumberToObject(c, "final_loss", report->last_loss);
    cJSON_AddStringToObject(c, "cutkit_version", CUTKIT_VERSION);
    cJSON_AddStringToObject(c, "command", t->command_line);
    char *text = cJSON_Print(c);
    cJSON_Delete(c);
    char path[4200];
    int rc = !text ? ck_fail(err, "out of memory")
             : fileio_path(path, sizeof path, o->out, "config.json") != 0
                 ? ck_fail(err, "%s: path too long", o->out)
                 : fileio_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

/* Rank 0: creates OUT (with its parents) and locks it for this run before anything in it is
 * read or written, so that a second writer is refused at once; then removes what killed
 * writers left in the folders the run writes (the trainer's .tmp checkpoint directories are
 * checkpoint.c's). The other ranks write nothing; when this fails they are ended with rank 0
 * (the command's abort path). */
static int open_run_dir(const TrainRunOptions *o, RunLock *lock, CkError *err) {
    if (dist_rank() != 0) return 0;
    if (outdir_open(lock, o->out, err) != 0) return -1;
    static const char *const SUBDIRS[] = {"checkpoints", "model", "adapter"};
    for (size_t i = 0; i < sizeof SUBDIRS / sizeof SUBDIRS[0]; i++) {
        char path[4200];
        if (fileio_path(path, sizeof path, o->out, SUBDIRS[i]) == 0)
            outdir_remove_stale_temps(path);
    }
    return 0;
}

/* Reads the data of o's objective into in (the model is open). */
static int load_data(const TrainRunOptions *o, Inputs *in, CkError *err) {
    if (o->objective == TRAIN_OBJECTIVE_CUT) /* -Align-P: cut_data.c's ratio 0 */
        return cut_data_load(&in->cut, o, &in->lm.tokenizer, in->lm.model.config.seq_len, err);
    if (objective_data_applies(o->objective)) return objective_data_load(&in->obj, o, &in->lm, err);
    return corpus_load(&in->corpus, o->data, &in->lm.tokenizer, o->seq_len, err);
}

/* What the trainer trains on for o's objective. */
static TrainData train_data_of(const TrainRunOptions *o, const Inputs *in) {
    TrainData d = {0};
    if (o->objective == TRAIN_OBJECTIVE_CUT) {
        d.examples = in->cut.examples.examples;
        d.n_examples = in->cut.examples.n;
    } else if (o->objective == TRAIN_OBJECTIVE_MLE) {
        d.corpus = &in->corpus;
    } else if (in->obj.pair_ex) {
        d.examples = in->obj.pair_ex;
        d.n_examples = in->obj.n_pairs;
    } else {
        d.corpus = &in->obj.corpus;
    }
    return d;
}

int train_run(const TrainRunOptions *o, TrainReport *report, CkError *err) {
    memset(report, 0, sizeof *report);
    if (train_run_check(o, err) != 0) return -1;
    RunLock lock = {0};
    if (open_run_dir(o, &lock, err) != 0) return -1;
    threads_set(o->threads);
    Inputs in;
    memset(&in, 0, sizeof in);
    int rc = open_model(o, &in, err);
    if (rc == 0) rc = load_data(o, &in, err);
    if (rc == 0) {
        const TrainData data = train_data_of(o, &in);
        const int n_items = data.corpus ? data.corpus->n_seqs : data.n_examples;
        const TrainOptions t = trainer_options(o, &in, n_items);
        if (o->on_ready) o->on_ready(o->ready_ctx);
        print_opening(o, &in, &t, n_items);
        if (o->objective == TRAIN_OBJECTIVE_CUT && dist_rank() == 0)
            cut_data_report(&in.cut, o, stderr);
        if (objective_data_applies(o->objective) && dist_rank() == 0)
            objective_data_report(&in.obj, o, stderr);
        rc = trainer_run(&in.lm.model, &in.cfg, &data, &t, report, err);
        if (rc == 0 && dist_rank() == 0) rc = write_run_config(o, &in, &t, report, err);
    }
    inputs_free(&in);
    runlock_release(&lock);
    return rc;
}
