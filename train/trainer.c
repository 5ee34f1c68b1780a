/* trainer.c — the training loop. One optimizer update: take batch_size items from the
 * shuffled cursor (next_batch), zero the gradient (zero_grad), run the items through forward
 * and backward micro_batch at a time (forward_backward: MLE weights every target token
 * 1 / (targets in the whole update), CUT every example 1 / (examples in the update), so the
 * loss is the update's mean however it is split), sum over the ranks (reduce_over_ranks),
 * check finiteness, clip and step AdamW at the scheduled lr (update); then log the update
 * (log_update) and checkpoint when due or when asked to stop (checkpoint_if_due).
 *
 * Data parallelism (dist.h, under mpirun): every rank holds the whole data and draws the same
 * global batch from the same cursor; rank k of K runs micro-batches k, k + K, k + 2K, ... of
 * it. The token weights are computed over the global batch on every rank, so each rank's
 * gradient is its share of the global mean, and one sum over ranks (MPI_Allreduce) gives
 * exactly the single-process gradient, up to the order of float additions. The loss terms,
 * token and CUT counts and the stop request (UpdateSums) are summed the same way; clipping
 * and AdamW then run identically on every rank. Only rank 0 writes files and prints. */
#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/hf_model.h"
#include "formats/peft.h"
#include "model/backward.h"
#include "train/checkpoint.h"
#include "train/dpo.h"
#include "train/dist.h"
#include "train/run_log.h"
#include "train/train_state.h"
#include "util/hash.h"
#include "util/hugebuf.h"
#include "util/strbuf.h"
#include "util/timer.h"

void trainer_init_random(Model *m, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    for (int id = 0; id < PARAM_COUNT; id++) {
        const ParamTensor *t = &m->tensors[id];
        float *p = m->params + t->offset;
        for (size_t i = 0; i < t->size; i++) {
            if (t->rank == 1) {
                p[i] = 1.0f; /* RMSNorm gains start at 1 */
                continue;
            }
            /* Box-Muller from two uniforms in (0, 1] */
            double u1 = ((double)(rng_next(&r) >> 11) + 1.0) * 0x1p-53;
            double u2 = (double)(rng_next(&r) >> 11) * 0x1p-53;
            p[i] = (float)(0.02 * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
        }
    }
}

/* What an update adds up over its micro-batches and, with several ranks, over the ranks: one
 * MPI sum of UPDATE_SUMS_N doubles, so every field is a double (the counts stay exact: far
 * below 2^53). */
typedef struct {
    double loss, loss_mle, loss_ul; /* the update's loss and its MLE / unlikelihood parts */
    double tokens;                  /* tokens put through the model */
    double positives, negatives;    /* CUT: examples of each kind */
    double misalign_tokens;         /* CUT: Misalign response tokens */
    double flagged;                 /* CUT: of those, flagged by detection */
    double stop_requests;           /* ranks asked to stop after this update */
    double pairs;                   /* DPO: pairs of the update */
    double chosen_reward;           /* DPO: Σ β (π_c − r_c) */
    double rejected_reward;         /* DPO: Σ β (π_r − r_r) */
    double correct;                 /* DPO: pairs whose chosen reward is the larger */
} UpdateSums;

enum { UPDATE_SUMS_N = 13 };
_Static_assert(sizeof(UpdateSums) == UPDATE_SUMS_N * sizeof(double),
               "UpdateSums is summed over the ranks as UPDATE_SUMS_N contiguous doubles");

/* The state of one run, freed together. */
typedef struct {
    Activations acts;
    LoraAdapters lora;
    AdamW opt;
    Schedule sched;
    float *grads;
    size_t n_train; /* floats in grads: the model's or the adapters' */
    int n_mb;       /* micro-batches per update */
    int *seqs, *tokens, *offsets, *targets;
    float *weights;
    double *logprobs; /* CUT: log p of every target of a micro-batch */
    LossKind *kinds;  /* CUT: per-token loss kinds */
    int *partner;     /* CUT: each Misalign row's Align-N row (cut_plan_fused) */
    double *base;     /* CUT: each Misalign row's unflagged weight */
    CutPair *pairs;   /* CUT: the sequences of each example of a micro-batch */
    double *dpo_ref;  /* DPO: the reference log-probs of a micro-batch's pairs */
    CorpusCursor cursor;
    FILE *log;
    FILE *tokens_csv;                    /* CUT: per-token detection records (rank 0) */
    char log_path[4200], csv_path[4200]; /* theirs, for messages */
    /* CUT: the token records of a micro-batch (one process), or, on several ranks, this
     * rank's records of one update, one chunk per micro-batch it ran, gathered to rank 0 and
     * written in micro-batch order */
    StrBuf csv;
    int64_t *csv_ends; /* several ranks: [n_mb + 1]: chunk count, then chunk ends */
    int rank, ranks;
    /* progress */
    int64_t step, first_step;
    long tokens_total;
    double start, update_start;
    int tty;
    char last_good[1024]; /* the last checkpoint, for messages */
    int rising;           /* CUT: updates in a row whose flagged fraction rose */
    double last_fraction;
} Run;

static void run_free(Run *r) {
    activations_free(&r->acts);
    lora_free(&r->lora);
    adamw_free(&r->opt);
    free(r->grads);
    free(r->seqs);
    free(r->tokens);
    free(r->offsets);
    free(r->targets);
    free(r->weights);
    free(r->logprobs);
    free(r->kinds);
    free(r->partner);
    free(r->base);
    free(r->pairs);
    free(r->dpo_ref);
    corpus_cursor_free(&r->cursor);
    if (r->log) fclose(r->log);
    if (r->tokens_csv) fclose(r->tokens_csv);
    strbuf_free(&r->csv);
    free(r->csv_ends);
}

static int check_options(const TrainOptions *o, int n_items, CkError *err) {
    if (o->steps <= 0)
        return ck_fail(err, "--steps must be positive, got %lld", (long long)o->steps);
    if (o->batch_size <= 0 || o->micro_batch <= 0 || o->batch_size % o->micro_batch != 0)
        return ck_fail(err, "--micro-batch %d must divide --batch-size %d", o->micro_batch,
                       o->batch_size);
    if (!o->out_dir) return ck_fail(err, "no run directory (--out)");
    if (n_items <= 0) return ck_fail(err, "nothing to train on: the data is empty");
    return 0;
}

/* ---- setting up ------------------------------------------------------------------------ */

/* Allocates the run's buffers for micro-batches of d's longest items; the LoRA adapters are
 * initialised here (seeded), so that they exist before a resume overwrites them. */
static int run_alloc(Run *r, Model *m, const TrainData *d, const TrainOptions *o, CkError *err) {
    const Corpus *c = d->corpus;
    int max_len = c ? c->max_len : 1;
    for (int i = 0; !c && i < d->n_examples; i++) {
        if (d->examples[i].a.n > max_len) max_len = d->examples[i].a.n;
        if (d->examples[i].negative && d->examples[i].m.n > max_len) max_len = d->examples[i].m.n;
    }
    const int seqs_per_item = c ? 1 : 2;
    const int max_tokens = o->micro_batch * seqs_per_item * max_len;
    if (activations_init(&r->acts, m, max_tokens, max_len, 1, err) != 0) return -1;
    if (o->use_lora) {
        if (lora_init(&r->lora, m, &o->lora, o->seed, err) != 0) return -1;
        r->n_train = r->lora.n_params;
    } else {
        if (model_require_f32(m, "full fine-tuning", err) != 0) return -1;
        r->n_train = m->n_params;
    }
    r->grads = hugebuf_calloc(r->n_train, sizeof(float));
    r->seqs = malloc(sizeof(int) * (size_t)o->batch_size);
    r->tokens = malloc(sizeof(int) * (size_t)max_tokens);
    r->targets = malloc(sizeof(int) * (size_t)max_tokens);
    r->weights = malloc(sizeof(float) * (size_t)max_tokens);
    r->offsets = malloc(sizeof(int) * (size_t)(seqs_per_item * o->micro_batch + 1));
    r->logprobs = malloc(sizeof(double) * (size_t)max_tokens);
    r->kinds = malloc(sizeof(LossKind) * (size_t)max_tokens);
    r->partner = malloc(sizeof(int) * (size_t)max_tokens);
    r->base = malloc(sizeof(double) * (size_t)max_tokens);
    r->pairs = malloc(sizeof(CutPair) * (size_t)o->micro_batch);
    r->dpo_ref = malloc(sizeof(double) * (size_t)(2 * o->micro_batch));
    r->n_mb = o->batch_size / o->micro_batch;
    const int gather_csv = r->ranks > 1 && !c && !o->dpo_ref_logps;
    if (gather_csv) r->csv_ends = malloc(sizeof(int64_t) * (size_t)(r->n_mb + 1));
    if (!r->grads || !r->seqs || !r->tokens || !r->targets || !r->weights || !r->offsets ||
        !r->logprobs || !r->kinds || !r->partner || !r->base || !r->pairs || !r->dpo_ref ||
        (gather_csv && !r->csv_ends))
        return ck_fail(err, "out of memory");
    return 0;
}

/* Fills the TrainState of the current position of the run. */
static void state_of(const Run *r, const TrainOptions *o, TrainState *ts) {
    memset(ts, 0, sizeof *ts);
    ts->step = r->step;
    ts->epoch = r->cursor.epoch;
    ts->schedule = r->sched;
    ts->n_rngs = o->use_lora ? 1 : 0;
    if (o->use_lora) ts->rngs[0] = r->lora.dropout_rng;
    ts->n_cursor = 2;
    ts->cursor[0] = r->cursor.epoch;
    ts->cursor[1] = r->cursor.position;
}

/* Replaces the trainable weights (the model's, or the adapters') by those saved in dir. */
static int restore_weights(Run *r, Model *m, const TrainOptions *o, const char *dir, CkError *err) {
    if (o->use_lora) {
        LoraAdapters loaded;
        if (peft_load(&loaded, m, dir, err) != 0) return -1;
        if (loaded.n_params != r->lora.n_params) {
            lora_free(&loaded);
            return ck_fail(err, "%s: the adapter does not match --lora settings", dir);
        }
        memcpy(r->lora.params, loaded.params, loaded.n_params * sizeof(float));
        lora_free(&loaded);
        return 0;
    }
    Model saved;
    HfConfig scfg;
    if (hf_model_load(&saved, &scfg, dir, err) != 0) return -1;
    model_set_rope_style(&saved, m->config.rope_style);
    if (saved.n_params != m->n_params) {
        model_free(&saved);
        return ck_fail(err, "%s: the checkpoint's model has another shape", dir);
    }
    memcpy(m->params, saved.params, m->n_params * sizeof(float));
    model_free(&saved);
    return 0;
}

/* Restores weights (or adapters), optimizer, dropout stream and cursor from the newest
 * checkpoint, if any, and sets r->step to its step (0 when there is none: a fresh start). */
static int resume_from(Run *r, Model *m, const TrainOptions *o, CkError *err) {
    char root[4096], dir[4096];
    snprintf(root, sizeof root, "%s/checkpoints", o->out_dir);
    int64_t found_step = 0;
    int found = checkpoint_find_latest(root, dir, sizeof dir, &found_step, err);
    if (found < 0) return -1;
    if (found == 0) return 0;
    if (restore_weights(r, m, o, dir, err) != 0) return -1;
    TrainState ts;
    TrainLayout layout;
    if (o->use_lora)
        train_layout_lora(&layout, &r->lora);
    else
        train_layout_model(&layout, m);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, CHECKPOINT_STATE_FILE);
    if (train_state_load(path, &ts, &layout, &r->opt, err) != 0) return -1;
    if (o->use_lora && ts.n_rngs >= 1) r->lora.dropout_rng = ts.rngs[0];
    const int n_seqs = r->cursor.n;
    corpus_cursor_free(&r->cursor);
    if (ts.n_cursor < 2 ||
        corpus_cursor_init(&r->cursor, n_seqs, o->seed, ts.cursor[0], ts.cursor[1], err) != 0)
        return ck_wrap(err, "%s: the data cursor does not fit this corpus", path);
    r->step = ts.step;
    if (r->rank == 0) fprintf(stderr, "resuming from %s (step %lld)\n", dir, (long long)ts.step);
    return 0;
}

/* Chains the hash of n bytes at p onto h (for comparing ranks; never stored). */
static uint64_t chain(uint64_t h, const void *p, size_t n) {
    return (h ^ hash_bytes(p, n)) * 0x100000001b3ull;
}

/* Several ranks: fails on every rank unless all of them hold the same trainable weights
 * (and, with full, the same model, data, options, optimizer state, cursor and step): a rank
 * that read other files, flags or checkpoint would silently train another run. */
static int check_ranks_agree(const Run *r, const Model *m, const TrainData *d,
                             const TrainOptions *o, int full, CkError *err) {
    if (r->ranks == 1) return 0;
    uint64_t h = HASH_FNV1A64_OFFSET;
    h = chain(h, r->lora.params, o->use_lora ? r->lora.n_params * sizeof(float) : 0);
    h = chain(h, m->params, o->use_lora && !full ? 0 : m->n_params * sizeof(float));
    h = chain(h, &r->lora.dropout_rng, sizeof r->lora.dropout_rng);
    if (full) {
        const int64_t shape[] = {r->step,
                                 r->cursor.epoch,
                                 r->cursor.position,
                                 r->cursor.n,
                                 o->steps,
                                 o->batch_size,
                                 o->micro_batch,
                                 o->use_lora,
                                 (int64_t)o->seed,
                                 r->opt.step,
                                 d->corpus ? d->corpus->offsets[d->corpus->n_seqs] : 0};
        const double knobs[] = {o->lr, o->max_grad_norm, o->adamw.weight_decay, o->cut.lambda,
                                o->cut.alpha};
        h = chain(h, shape, sizeof shape);
        h = chain(h, knobs, sizeof knobs);
        h = chain(h, r->opt.m, r->opt.n * sizeof(float));
        h = chain(h, r->opt.v, r->opt.n * sizeof(float));
        if (d->corpus) h = chain(h, d->corpus->tokens, sizeof(int) * (size_t)shape[10]);
        if (o->dpo_ref_logps)
            h = chain(h, o->dpo_ref_logps, sizeof(double) * 2 * (size_t)d->n_examples);
        h = chain(h, &o->beta, sizeof o->beta);
        for (int i = 0; !d->corpus && i < d->n_examples; i++) {
            h = chain(h, d->examples[i].a.tokens, sizeof(int) * (size_t)d->examples[i].a.n);
            if (d->examples[i].negative)
                h = chain(h, d->examples[i].m.tokens, sizeof(int) * (size_t)d->examples[i].m.n);
        }
    }
    int same = 0;
    if (dist_same_u64(h, &same, err) != 0) return -1;
    if (same) return 0;
    if (full)
        return ck_fail(err,
                       "the %d ranks do not start from the same model, data, flags or "
                       "checkpoint: every rank needs the same files and flags (and, for "
                       "--resume, the same --out directory: a shared file system)",
                       r->ranks);
    return ck_fail(err,
                   "step %lld: the weights of the %d ranks have diverged (the MPI sum "
                   "gave ranks different results)",
                   (long long)r->step, r->ranks);
}

/* Rank 0: opens steps.jsonl and, for CUT, tokens.csv, keeping what a resumed run keeps. */
static int open_logs(Run *r, const TrainOptions *o, int cut, CkError *err) {
    if (r->rank != 0) return 0;
    snprintf(r->log_path, sizeof r->log_path, "%s/steps.jsonl", o->out_dir);
    r->log = run_log_open(r->log_path, RUN_LOG_JSONL, r->step, NULL, err);
    if (!r->log) return -1;
    if (!cut) return 0;
    /* per-token detection records of every CUT update, for the analysis tools */
    snprintf(r->csv_path, sizeof r->csv_path, "%s/tokens.csv", o->out_dir);
    r->tokens_csv = run_log_open(r->csv_path, RUN_LOG_CSV, r->step,
                                 "step,example,position,token,log_pa,log_pm,flagged\n", err);
    return r->tokens_csv ? 0 : -1;
}

/* Everything before the first update: the options, the run directory (rank 0's: the others
 * write nothing), buffers, optimizer, cursor and schedule, the resume, the ranks' agreement,
 * the logs. */
static int run_start(Run *r, Model *m, const TrainData *d, const TrainOptions *o, CkError *err) {
    memset(r, 0, sizeof *r);
    r->rank = dist_rank();
    r->ranks = dist_size();
    snprintf(r->last_good, sizeof r->last_good, "none yet");
    const int n_items = d->corpus ? d->corpus->n_seqs : d->n_examples;
    if (check_options(o, n_items, err) != 0) return -1;
    if (r->rank == 0 && mkdir(o->out_dir, 0777) != 0 && errno != EEXIST)
        return ck_fail(err, "%s: cannot create: %s", o->out_dir, strerror(errno));
    if (run_alloc(r, m, d, o, err) != 0 || adamw_init(&r->opt, r->n_train, &o->adamw, err) != 0 ||
        corpus_cursor_init(&r->cursor, n_items, o->seed, 0, 0, err) != 0)
        return -1;
    r->sched = schedule_make(o->schedule, o->lr, o->warmup_steps, o->steps);
    r->sched.first_step_lr_zero = o->first_step_lr_zero;
    if (schedule_validate(&r->sched, err) != 0) return -1;
    if (o->resume && resume_from(r, m, o, err) != 0) return -1;
    if (check_ranks_agree(r, m, d, o, 1, err) != 0) return -1;
    if (r->rank == 0 && r->ranks > r->n_mb)
        fprintf(stderr,
                "warning: %d ranks but %d micro-batches per update: %d ranks will idle (use a "
                "smaller --micro-batch or a larger --batch-size)\n",
                r->ranks, r->n_mb, r->ranks - r->n_mb);
    if (open_logs(r, o, !d->corpus && !o->dpo_ref_logps, err) != 0) return -1;
    r->tty = isatty(2);
    r->start = timer_seconds();
    r->first_step = r->step;
    return 0;
}

/* ---- one update: the batch, forward and backward ------------------------------------------ */

/* Draws the update's batch_size items from the shuffled cursor. */
static void next_batch(Run *r, const TrainOptions *o) {
    r->update_start = timer_seconds();
    for (int i = 0; i < o->batch_size; i++) r->seqs[i] = corpus_cursor_next(&r->cursor);
    if (r->csv_ends) {
        r->csv_ends[0] = 0;
        strbuf_clear(&r->csv);
    }
}

static void zero_grad(Run *r) {
    /* zeroed in parallel: one thread's memset is 5-10% of a 110M step */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < r->n_train; i++) r->grads[i] = 0.0f;
}

/* Packs sequence seq (tokens, trained flags, len) at position n of the micro-batch: targets
 * are the next tokens where those are trained, -1 elsewhere. Returns the new length. */
static int pack_sequence(Run *r, int n, const int *tokens, const unsigned char *trained, int len) {
    for (int p = 0; p < len; p++) {
        r->tokens[n + p] = tokens[p];
        r->targets[n + p] = (p + 1 < len && trained[p + 1]) ? tokens[p + 1] : -1;
    }
    return n + len;
}

/* Rank k of K runs micro-batches k, k + K, ... of every update. */
static int owns(const Run *r, int mb) {
    return mb % r->ranks == r->rank;
}

/* Tokens that item i of the data puts through the model: a corpus sequence, or a CUT
 * example's one or two sequences. */
static int item_tokens(const TrainData *d, int i) {
    if (d->corpus) return d->corpus->offsets[i + 1] - d->corpus->offsets[i];
    const CutExample *ex = &d->examples[i];
    return ex->a.n + (ex->negative ? ex->m.n : 0);
}

/* The 64-bit draws that one training forward of n_tokens takes from the LoRA dropout stream:
 * lora_forward draws one per four input elements of every adapted module of every layer
 * (model/lora.c). */
static uint64_t dropout_draws(const LoraAdapters *ad, int n_tokens) {
    if (!(ad->config.dropout > 0.0f)) return 0;
    uint64_t per_layer = 0;
    for (int mod = 0; mod < LORA_MODULES; mod++) {
        if (ad->slot[mod] < 0) continue;
        const uint64_t in = (uint64_t)(mod == LORA_DOWN ? ad->hidden_dim : ad->dim);
        per_layer += ((uint64_t)n_tokens * in + 3) / 4;
    }
    return per_layer * (uint64_t)ad->n_layers;
}

/* A micro-batch another rank runs: advance the dropout stream past the masks it draws there,
 * so that every rank's stream stays where one process's would be and each micro-batch gets
 * the masks it gets in a single-process run. */
static void skip_micro_batch(Run *r, const TrainData *d, const TrainOptions *o, const int *items) {
    if (!o->use_lora) return;
    int n = 0;
    for (int k = 0; k < o->micro_batch; k++) n += item_tokens(d, items[k]);
    for (uint64_t i = dropout_draws(&r->lora, n); i > 0; i--) rng_next(&r->lora.dropout_rng);
}

static void add_loss(UpdateSums *s, const LossResult *res, int tokens) {
    s->loss += res->loss;
    s->loss_mle += res->loss_mle;
    s->loss_ul += res->loss_ul;
    s->tokens += tokens;
}

/* One micro-batch of corpus sequences (MLE), every target weighted w. */
static int mle_micro_batch(Run *r, Model *m, const TrainData *d, const TrainOptions *o,
                           const int *items, float w, UpdateSums *sums, CkError *err) {
    const Corpus *c = d->corpus;
    int n = 0;
    r->offsets[0] = 0;
    for (int k = 0; k < o->micro_batch; k++) {
        const int s = items[k], begin = c->offsets[s];
        n = pack_sequence(r, n, c->tokens + begin, c->train + begin, c->offsets[s + 1] - begin);
        r->offsets[k + 1] = n;
    }
    for (int i = 0; i < n; i++) r->weights[i] = r->targets[i] >= 0 ? w : 0.0f;
    TokenBatch b = {o->micro_batch, r->offsets, r->tokens};
    LossSpec spec = {.targets = r->targets,
                     .kinds = NULL,
                     .weights = r->weights,
                     .ul_min_q = 0,
                     .logprobs = NULL};
    LossResult res;
    if (model_forward_backward(m, &r->acts, &b, &spec, o->use_lora ? NULL : r->grads,
                               o->use_lora ? &r->lora : NULL, o->use_lora ? r->grads : NULL, &res,
                               err) != 0)
        return -1;
    add_loss(sums, &res, n);
    return 0;
}

/* Appends one CSV row per aligned response token of each negative example of the
 * micro-batch to r->csv: the update, the example, the position within the response, the
 * token, log pA (Align-N), log pM (Misalign) and whether detection flagged it under the
 * run's lambda. */
static int format_token_records(Run *r, const TokenBatch *b, const int *items, int n_items,
                                double lambda, const CutOptions *copt, int64_t step) {
    for (int k = 0; k < n_items; k++) {
        if (r->pairs[k].seq_m < 0) continue;
        const int sa = r->pairs[k].seq_a, sm = r->pairs[k].seq_m;
        /* response targets are the trailing targets of each sequence, index-aligned */
        int ia = b->offsets[sa], im = b->offsets[sm], pos = 0;
        while (ia < b->offsets[sa + 1] && im < b->offsets[sm + 1]) {
            if (r->targets[ia] < 0) {
                ia++;
                continue;
            }
            if (r->targets[im] < 0) {
                im++;
                continue;
            }
            double lpa = r->logprobs[ia], lpm = r->logprobs[im];
            /* the flag the loss used: -detection gives every token UL, -L1 none */
            unsigned char flag = !copt->no_l1;
            if (flag && !copt->no_detection) cut_detect(&lpa, &lpm, 1, lambda, &flag);
            if (strbuf_printf(&r->csv, "%lld,%d,%d,%d,%.9g,%.9g,%d\n", (long long)step, items[k],
                              pos, r->targets[im], lpa, lpm, flag) != 0)
                return -1;
            ia++, im++, pos++;
        }
    }
    return 0;
}

/* A log that cannot be written (a full disk, a file size limit) stops the run as a non-finite
 * loss does: the updates after the last good checkpoint are replayed by --resume, which drops
 * their lines from the logs. errno is the write's. */
static int log_write_failed(const Run *r, const char *path, int64_t step, CkError *err) {
    const int saved = errno;
    return ck_fail(err, "step %lld: cannot write %s: %s; stopped (last good checkpoint: %s)",
                   (long long)step, path, saved ? strerror(saved) : "write error", r->last_good);
}

/* Writes n bytes to the log f (at path), flushed; -1 with err on a write error. */
static int log_write(const Run *r, FILE *f, const char *path, const char *data, size_t n,
                     int64_t step, CkError *err) {
    errno = 0;
    if ((n && fwrite(data, 1, n, f) != n) || fflush(f) != 0)
        return log_write_failed(r, path, step, err);
    return 0;
}

/* Keeps the micro-batch's token records: written to tokens.csv at once in one process,
 * collected as one chunk of the update's message on several ranks (gather_token_records). */
static int keep_token_records(Run *r, const TokenBatch *b, const int *items, const TrainOptions *o,
                              double lambda, int64_t step, CkError *err) {
    if (!r->csv_ends && !r->tokens_csv) return 0;
    if (format_token_records(r, b, items, o->micro_batch, lambda, &o->cut, step) != 0)
        return ck_fail(err, "out of memory for the token records of an update");
    if (r->csv_ends) {
        r->csv_ends[++r->csv_ends[0]] = (int64_t)r->csv.n;
        return 0;
    }
    const int rc = log_write(r, r->tokens_csv, r->csv_path, r->csv.p, r->csv.n, step, err);
    strbuf_clear(&r->csv);
    return rc;
}

/* Packs a micro-batch of CUT examples: both sequences of every negative with the positives. */
static TokenBatch pack_examples(Run *r, const TrainData *d, const TrainOptions *o,
                                const int *items) {
    int n = 0, n_seqs = 0;
    r->offsets[0] = 0;
    for (int k = 0; k < o->micro_batch; k++) {
        const CutExample *ex = &d->examples[items[k]];
        n = pack_sequence(r, n, ex->a.tokens, ex->a.trained, ex->a.n);
        r->pairs[k].seq_a = n_seqs;
        r->offsets[++n_seqs] = n;
        r->pairs[k].seq_m = -1;
        if (ex->negative) {
            n = pack_sequence(r, n, ex->m.tokens, ex->m.trained, ex->m.n);
            r->pairs[k].seq_m = n_seqs;
            r->offsets[++n_seqs] = n;
        }
    }
    return (TokenBatch){n_seqs, r->offsets, r->tokens};
}

/* One micro-batch of CUT examples: forward them in one packed pass; the backward's classifier
 * pass reads log p of every target and decides each token's kind and weight (MLE, or
 * unlikelihood where pA / pM > lambda: cut_plan_fused); cut_assign_loss then reads the
 * decisions back from the log-probs it wrote, for the counts and the token records. */
static int cut_micro_batch(Run *r, Model *m, const TrainData *d, const TrainOptions *o,
                           const int *items, int64_t step, UpdateSums *sums, CkError *err) {
    const TokenBatch b = pack_examples(r, d, o, items);
    LoraAdapters *lora = o->use_lora ? &r->lora : NULL;
    CutOptions copt = o->cut;
    copt.step_examples = o->batch_size; /* the mean runs over the update's examples */
    LossSpec spec;
    CutStats st;
    LossResult res;
    CutFused fused;
    if (model_forward_train(m, &r->acts, &b, lora, err) != 0 ||
        cut_plan_fused(&b, r->targets, r->pairs, o->micro_batch, &copt, r->kinds, r->weights,
                       r->partner, r->base, r->logprobs, &fused, &spec, err) != 0 ||
        model_backward(m, &r->acts, &b, &spec, o->use_lora ? NULL : r->grads, lora,
                       o->use_lora ? r->grads : NULL, &res, err) != 0 ||
        cut_assign_loss(&b, r->targets, r->logprobs, r->pairs, o->micro_batch, &copt, r->kinds,
                        r->weights, &spec, &st, err) != 0)
        return -1;
    if (st.n_flagged != res.n_ul)
        return ck_fail(err, "CUT: the backward flagged %d tokens, the log-probs say %d", res.n_ul,
                       st.n_flagged);
    if (keep_token_records(r, &b, items, o, copt.lambda, step, err) != 0) return -1;
    add_loss(sums, &res, b.offsets[b.n_seqs]);
    sums->positives += st.n_pos;
    sums->negatives += st.n_neg;
    sums->misalign_tokens += st.n_m_tokens;
    sums->flagged += st.n_flagged;
    return 0;
}

/* One micro-batch of DPO pairs: one training forward of the chosen and rejected sequences,
 * log p of every target, the per-pair weights β σ(−z) / (pairs in the update) on the chosen
 * response and their negatives on the rejected one (dpo_assign_weights), then the backward
 * of that weighted token MLE, whose gradient is the DPO loss's. */
static int dpo_micro_batch(Run *r, Model *m, const TrainData *d, const TrainOptions *o,
                           const int *items, UpdateSums *sums, CkError *err) {
    const TokenBatch b = pack_examples(r, d, o, items);
    LoraAdapters *lora = o->use_lora ? &r->lora : NULL;
    for (int k = 0; k < o->micro_batch; k++) {
        r->dpo_ref[2 * k] = o->dpo_ref_logps[2 * items[k]];
        r->dpo_ref[2 * k + 1] = o->dpo_ref_logps[2 * items[k] + 1];
    }
    DpoStats st = {0};
    LossResult res;
    if (model_forward_train(m, &r->acts, &b, lora, err) != 0 ||
        model_logprobs(m, &r->acts, r->targets, r->logprobs, err) != 0 ||
        dpo_assign_weights(&b, r->targets, r->logprobs, r->pairs, o->micro_batch, r->dpo_ref,
                           o->beta, o->batch_size, r->weights, &st, err) != 0)
        return -1;
    const LossSpec spec = {.targets = r->targets, .weights = r->weights};
    if (model_backward(m, &r->acts, &b, &spec, o->use_lora ? NULL : r->grads, lora,
                       o->use_lora ? r->grads : NULL, &res, err) != 0)
        return -1;
    sums->loss += st.loss / o->batch_size;
    sums->tokens += b.offsets[b.n_seqs];
    sums->pairs += o->micro_batch;
    sums->chosen_reward += st.chosen_reward;
    sums->rejected_reward += st.rejected_reward;
    sums->correct += st.correct;
    return 0;
}

/* Forward and backward of this rank's micro-batches of the batch, accumulating the gradient
 * into r->grads and the update's sums. */
static int forward_backward(Run *r, Model *m, const TrainData *d, const TrainOptions *o,
                            UpdateSums *sums, CkError *err) {
    float w = 0.0f;
    if (d->corpus) {
        /* every target token of the update weighs 1 / (targets in the update), so the loss
         * is the update's token mean however it is split into micro-batches (or ranks: each
         * counts the whole update's targets) */
        const Corpus *c = d->corpus;
        long n_targets = 0;
        for (int i = 0; i < o->batch_size; i++)
            for (int p = c->offsets[r->seqs[i]] + 1; p < c->offsets[r->seqs[i] + 1]; p++)
                n_targets += c->train[p];
        w = 1.0f / (float)(n_targets ? n_targets : 1);
    }
    for (int mb = 0; mb < r->n_mb; mb++) {
        const int *items = r->seqs + mb * o->micro_batch;
        if (!owns(r, mb)) {
            skip_micro_batch(r, d, o, items);
            continue;
        }
        const int rc = d->corpus ? mle_micro_batch(r, m, d, o, items, w, sums, err)
                       : o->dpo_ref_logps
                           ? dpo_micro_batch(r, m, d, o, items, sums, err)
                           : cut_micro_batch(r, m, d, o, items, r->step + 1, sums, err);
        if (rc != 0) return -1;
    }
    return 0;
}

/* ---- one update: the sum over ranks and the optimizer step -------------------------------- */

/* Several ranks, CUT: sends this update's token records (one chunk per micro-batch this rank
 * ran, after a header of the chunk ends) to rank 0, which writes them in micro-batch order,
 * the order of a single-process run. */
static int gather_token_records(Run *r, CkError *err) {
    const size_t head = sizeof(int64_t) * (size_t)(r->csv_ends[0] + 1);
    const size_t msg_len = head + r->csv.n;
    char *msg = malloc(msg_len);
    if (!msg) dist_abort("out of memory for the token records of an update");
    memcpy(msg, r->csv_ends, head);
    if (r->csv.n) memcpy(msg + head, r->csv.p, r->csv.n);
    strbuf_clear(&r->csv);
    char *all = NULL;
    size_t all_n = 0;
    size_t *counts = malloc(sizeof(size_t) * (size_t)r->ranks);
    if (!counts) dist_abort("out of memory for the token records of an update");
    int rc = dist_gather_bytes(msg, msg_len, &all, &all_n, counts, err);
    free(msg);
    for (int mb = 0; rc == 0 && r->rank == 0 && mb < r->n_mb; mb++) {
        const int k = mb % r->ranks, j = mb / r->ranks;
        size_t seg = 0;
        for (int q = 0; q < k; q++) seg += counts[q];
        int64_t n_chunks, begin = 0, end;
        memcpy(&n_chunks, all + seg, sizeof n_chunks);
        if (j >= n_chunks) {
            rc = ck_fail(err, "rank %d sent %lld chunks of token records, expected more", k,
                         (long long)n_chunks);
            break;
        }
        if (j > 0) memcpy(&begin, all + seg + sizeof(int64_t) * (size_t)j, sizeof begin);
        memcpy(&end, all + seg + sizeof(int64_t) * (size_t)(j + 1), sizeof end);
        const char *data = all + seg + sizeof(int64_t) * (size_t)(n_chunks + 1);
        rc = log_write(r, r->tokens_csv, r->csv_path, data + begin, (size_t)(end - begin),
                       r->step + 1, err);
    }
    free(all);
    free(counts);
    return rc;
}

/* Several ranks: sums the gradient (one sum over its contiguous buffer, the model's or the
 * adapters') and the update's sums over the ranks, and gathers CUT's token records;
 * *allreduce_s gets the time the two sums took, the wait for the slowest rank included. */
static int reduce_over_ranks(Run *r, UpdateSums *sums, double *allreduce_s, CkError *err) {
    *allreduce_s = 0.0;
    if (r->ranks == 1) return 0;
    const double t0 = timer_seconds();
    double packed[UPDATE_SUMS_N];
    memcpy(packed, sums, sizeof packed);
    if (dist_allreduce_sum_f32(r->grads, r->n_train, err) != 0 ||
        dist_allreduce_sum_f64(packed, UPDATE_SUMS_N, err) != 0)
        return -1;
    memcpy(sums, packed, sizeof packed);
    *allreduce_s = timer_seconds() - t0;
    return r->csv_ends ? gather_token_records(r, err) : 0;
}

/* Checks the loss and the gradient, clips it and steps AdamW at the scheduled lr; a
 * non-finite loss or gradient fails naming the step and the last good checkpoint. */
static int update(Run *r, Model *m, const TrainOptions *o, const UpdateSums *sums, double *gnorm,
                  double *lr, CkError *err) {
    if (!isfinite(sums->loss))
        return ck_fail(err,
                       "step %lld: the loss is %g; stopped before the update (last good "
                       "checkpoint: %s)",
                       (long long)r->step + 1, sums->loss, r->last_good);
    if (optim_check_finite(r->grads, r->n_train, "gradient", r->step + 1,
                           o->use_lora ? optim_name_lora : optim_name_model,
                           o->use_lora ? (const void *)&r->lora : (const void *)m, err) != 0)
        return ck_wrap(err, "last good checkpoint: %s", r->last_good);
    *gnorm = o->max_grad_norm > 0 ? optim_clip_grad_norm(r->grads, r->n_train, o->max_grad_norm)
                                  : optim_grad_norm(r->grads, r->n_train);
    *lr = schedule_lr(&r->sched, r->opt.step);
    if (adamw_step(&r->opt, o->use_lora ? r->lora.params : m->params, r->grads, *lr, err) != 0)
        return -1;
    r->step++;
    return 0;
}

/* ---- after an update: logs and checkpoints ----------------------------------------------- */

/* Formats the update's line of steps.jsonl into b (-1 when out of memory). */
static int format_step_line(StrBuf *b, int64_t step, double lr, const UpdateSums *s, double gnorm,
                            double seconds, int mode, int ranks, double allreduce_seconds) {
    const int cut = mode == 1;
    const long tokens = (long)s->tokens;
    int rc = strbuf_printf(b,
                           "{\"step\": %lld, \"lr\": %.17g, \"loss\": %.17g, \"loss_mle\": %.17g, "
                           "\"loss_ul\": %.17g, \"grad_norm\": %.17g, \"tokens\": %ld",
                           (long long)step, lr, s->loss, s->loss_mle, s->loss_ul, gnorm, tokens);
    if (cut) {
        const int m_tokens = (int)s->misalign_tokens, flagged = (int)s->flagged;
        rc |= strbuf_printf(b,
                            ", \"positives\": %d, \"negatives\": %d, \"misalign_tokens\": %d, "
                            "\"flagged\": %d, \"flagged_fraction\": %.6f",
                            (int)s->positives, (int)s->negatives, m_tokens, flagged,
                            m_tokens ? (double)flagged / m_tokens : 0.0);
    }
    if (mode == 2 && s->pairs > 0) /* DPO: TRL's rewards/chosen, /rejected, /margins, /accuracies */
        rc |= strbuf_printf(
            b,
            ", \"pairs\": %d, \"reward_chosen\": %.17g, \"reward_rejected\": "
            "%.17g, \"reward_margin\": %.17g, \"reward_accuracy\": %.6f",
            (int)s->pairs, s->chosen_reward / s->pairs, s->rejected_reward / s->pairs,
            (s->chosen_reward - s->rejected_reward) / s->pairs, s->correct / s->pairs);
    rc |= strbuf_printf(b, ", \"seconds\": %.6f, \"tokens_per_s\": %.1f", seconds,
                        seconds > 0 ? tokens / seconds : 0.0);
    /* several ranks: the time the update spent summing over them (the rest is compute) */
    if (ranks > 1)
        rc |= strbuf_printf(b, ", \"ranks\": %d, \"allreduce_seconds\": %.6f", ranks,
                            allreduce_seconds);
    rc |= strbuf_puts(b, "}\n");
    return rc ? -1 : 0;
}

/* Appends the update's line to steps.jsonl in one write, flushed so that a crash loses
 * nothing. */
static int write_step_line(const Run *r, double lr, const UpdateSums *s, double gnorm,
                           double seconds, double allreduce_seconds, int mode, CkError *err) {
    StrBuf line = {0};
    int rc = format_step_line(&line, r->step, lr, s, gnorm, seconds, mode, r->ranks,
                              allreduce_seconds) != 0
                 ? ck_fail(err, "out of memory")
                 : log_write(r, r->log, r->log_path, line.p, line.n, r->step, err);
    strbuf_free(&line);
    return rc;
}

static void progress(int64_t step, int64_t total, double loss, double tok_s, double eta, int tty) {
    if (tty) {
        fprintf(stderr, "\rstep %lld/%lld  loss %.4f  %.0f tok/s  ETA %.0fs   ", (long long)step,
                (long long)total, loss, tok_s, eta);
        if (step == total) fputc('\n', stderr);
    } else {
        fprintf(stderr, "step %lld/%lld loss %.4f %.0f tok/s ETA %.0fs\n", (long long)step,
                (long long)total, loss, tok_s, eta);
    }
}

/* CUT: warns once the flagged fraction has risen for 10 updates in a row, the runaway the
 * judgment-world prototype saw. */
static void watch_flagging(Run *r, const UpdateSums *s) {
    const int m_tokens = (int)s->misalign_tokens;
    const double frac = m_tokens ? (double)(int)s->flagged / m_tokens : 0.0;
    r->rising = (m_tokens && frac > r->last_fraction) ? r->rising + 1 : 0;
    if (m_tokens) r->last_fraction = frac;
    if (r->rising == 10 && r->rank == 0)
        fprintf(stderr,
                "\nwarning: step %lld: the flagged fraction has risen for 10 updates in a row "
                "(now %.3f): flagging may be running away; consider a larger --lambda\n",
                (long long)r->step, frac);
}

/* Logs the update just taken: its steps.jsonl line (tokens.csv's rows are written as the
 * micro-batches run), the progress line. A log write error fails (log_write_failed). */
static int log_update(Run *r, const TrainOptions *o, int mode, const UpdateSums *s, double lr,
                      double gnorm, double allreduce_s, TrainReport *report, CkError *err) {
    r->tokens_total += (long)s->tokens;
    const double now = timer_seconds();
    const double dt = now - r->update_start, elapsed = timer_seconds() - r->start;
    if (r->log && write_step_line(r, lr, s, gnorm, dt, allreduce_s, mode, err) != 0) return -1;
    if (mode == 1) watch_flagging(r, s);
    const double tok_s = elapsed > 0 ? r->tokens_total / elapsed : 0;
    const double eta =
        r->step > r->first_step ? elapsed / (r->step - r->first_step) * (o->steps - r->step) : 0;
    if (r->rank == 0 && (r->tty || r->step % 10 == 0 || r->step == o->steps))
        progress(r->step, o->steps, s->loss, tok_s, eta, r->tty);
    report->steps_done = r->step;
    report->last_loss = s->loss;
    return 0;
}

/* Saves checkpoint r->step into OUT/checkpoints (rank 0) and records its name in
 * r->last_good (every rank: the name rank 0 gave it, for this rank's messages). */
static int save_checkpoint(Run *r, Model *m, const HfConfig *cfg, const TrainOptions *o,
                           CkError *err) {
    char root[4096];
    snprintf(root, sizeof root, "%s/checkpoints", o->out_dir);
    if (r->rank != 0) return checkpoint_path(root, r->step, r->last_good, sizeof r->last_good, err);
    TrainState ts;
    state_of(r, o, &ts);
    TrainLayout layout;
    int rc;
    if (o->use_lora) {
        train_layout_lora(&layout, &r->lora);
        CheckpointPeft ctx = {&r->lora, m, o->base_name, o->command_line};
        rc = checkpoint_save(root, o->keep_checkpoints, checkpoint_save_peft, &ctx, &ts, &layout,
                             &r->opt, err);
    } else {
        train_layout_model(&layout, m);
        CheckpointHfModel ctx = {m, cfg, o->command_line};
        rc = checkpoint_save(root, o->keep_checkpoints, checkpoint_save_hf_model, &ctx, &ts,
                             &layout, &r->opt, err);
    }
    if (rc == 0) checkpoint_path(root, r->step, r->last_good, sizeof r->last_good, err);
    return rc;
}

/* Checkpoints when save_every says so or a stop was requested, after checking that the
 * ranks still hold the same weights. */
static int checkpoint_if_due(Run *r, Model *m, const HfConfig *cfg, const TrainData *d,
                             const TrainOptions *o, int stop, TrainReport *report, CkError *err) {
    if (!stop && !(o->save_every > 0 && r->step % o->save_every == 0)) return 0;
    if (check_ranks_agree(r, m, d, o, 0, err) != 0 || save_checkpoint(r, m, cfg, o, err) != 0)
        return -1;
    snprintf(report->saved, sizeof report->saved, "%s", r->last_good);
    return 0;
}

/* The final weights: OUT/model (a Hugging Face folder) or OUT/adapter (PEFT), by rank 0. */
static int save_final(Run *r, Model *m, const HfConfig *cfg, const TrainData *d,
                      const TrainOptions *o, TrainReport *report, CkError *err) {
    if (check_ranks_agree(r, m, d, o, 0, err) != 0) return -1;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", o->out_dir, o->use_lora ? "adapter" : "model");
    int rc = 0;
    if (r->rank == 0 && o->use_lora)
        rc = peft_save(&r->lora, m, path, o->base_name, o->command_line, err);
    else if (r->rank == 0)
        rc = hf_model_save(m, cfg, path, ST_F32, o->command_line, err);
    if (rc == 0) snprintf(report->saved, sizeof report->saved, "%.1000s", path);
    return rc;
}

/* A stop is sampled once per update, and summed over the ranks with the update's sums, so
 * that all of them stop after the same update even when a signal reaches them at different
 * moments. */
static int stop_requested(const TrainOptions *o, int64_t step) {
    return (o->stop && *o->stop) || (o->stop_after > 0 && step + 1 == o->stop_after);
}

int trainer_run(Model *m, const HfConfig *cfg, const TrainData *d, const TrainOptions *o,
                TrainReport *report, CkError *err) {
    memset(report, 0, sizeof *report);
    const int mode = d->corpus ? 0 : o->dpo_ref_logps ? 2 : 1; /* MLE, CUT, DPO */
    Run r;
    int rc = run_start(&r, m, d, o, err);
    while (rc == 0 && r.step < o->steps) {
        UpdateSums sums = {0};
        double allreduce_s = 0.0, gnorm = 0.0, lr = 0.0;
        next_batch(&r, o);
        zero_grad(&r);
        rc = forward_backward(&r, m, d, o, &sums, err);
        sums.stop_requests = stop_requested(o, r.step);
        if (rc == 0) rc = reduce_over_ranks(&r, &sums, &allreduce_s, err);
        if (rc == 0) rc = update(&r, m, o, &sums, &gnorm, &lr, err);
        if (rc == 0) rc = log_update(&r, o, mode, &sums, lr, gnorm, allreduce_s, report, err);
        if (rc != 0) break;
        const int stop = sums.stop_requests > 0;
        rc = checkpoint_if_due(&r, m, cfg, d, o, stop, report, err);
        if (rc == 0 && stop) report->stopped_early = 1;
        if (stop) break;
    }
    if (rc == 0 && !report->stopped_early) rc = save_final(&r, m, cfg, d, o, report, err);
    run_free(&r);
    return rc;
}
