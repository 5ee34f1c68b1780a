/* trainer.c — the training loop. One optimizer update: take batch_size sequences from the
 * shuffled cursor, run them through forward/backward micro_batch at a time with every
 * target token weighted 1 / (targets in the whole update), so the loss is the token mean of
 * the update however it is split; check finiteness, clip, step AdamW at the scheduled lr;
 * log; checkpoint when due or when asked to stop.
 *
 * Data parallelism (dist.h, under mpirun): every rank holds the whole data and draws the same
 * global batch from the same cursor; rank k of K runs micro-batches k, k + K, k + 2K, ... of
 * it. The token weights are computed over the global batch on every rank, so each rank's
 * gradient is its share of the global token mean, and one sum over ranks (MPI_Allreduce)
 * gives exactly the single-process gradient, up to the order of float additions. The loss
 * terms, token and CUT counts and the stop request are summed the same way; clipping and
 * AdamW then run identically on every rank. Only rank 0 writes files and prints. */
#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/backward.h"
#include "train/checkpoint.h"
#include "train/dist.h"
#include "formats/hf_model.h"
#include "formats/peft.h"
#include "train/train_state.h"
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

/* The buffers of one run, freed together. */
typedef struct {
    Activations acts;
    LoraAdapters lora;
    AdamW opt;
    float *grads;
    int *seqs, *tokens, *offsets, *targets;
    float *weights;
    double *logprobs; /* CUT: log p of every target of a micro-batch */
    LossKind *kinds;  /* CUT: per-token loss kinds */
    int *partner;     /* CUT: each Misalign row's Align-N row (cut_plan_fused) */
    double *base;     /* CUT: each Misalign row's unflagged weight */
    CutPair *pairs;   /* CUT: the sequences of each example of a micro-batch */
    CorpusCursor cursor;
    FILE *log;
    FILE *tokens_csv; /* CUT: per-token detection records (rank 0) */
    /* CUT on several ranks: this rank's records of one update, one chunk per micro-batch it
     * ran, gathered to rank 0 and written in micro-batch order */
    FILE *csv_mem;
    char *csv_buf;
    size_t csv_len;
    int64_t *csv_ends; /* [micro-batches per update + 1]: chunk count, then chunk ends */
    int rank, ranks;
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
    corpus_cursor_free(&r->cursor);
    if (r->log) fclose(r->log);
    if (r->tokens_csv) fclose(r->tokens_csv);
    if (r->csv_mem) fclose(r->csv_mem);
    free(r->csv_buf);
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

/* Fills the TrainState of the current position of the run. */
static void state_of(const Run *r, const TrainOptions *o, const Schedule *s, int64_t step,
                     TrainState *ts) {
    memset(ts, 0, sizeof *ts);
    ts->step = step;
    ts->epoch = r->cursor.epoch;
    ts->schedule = *s;
    ts->n_rngs = o->use_lora ? 1 : 0;
    if (o->use_lora) ts->rngs[0] = r->lora.dropout_rng;
    ts->n_cursor = 2;
    ts->cursor[0] = r->cursor.epoch;
    ts->cursor[1] = r->cursor.position;
}

static int save_checkpoint(Run *r, Model *m, const HfConfig *cfg, const TrainOptions *o,
                           const Schedule *s, int64_t step, char *saved, size_t saved_size,
                           CkError *err) {
    char root[4096];
    snprintf(root, sizeof root, "%s/checkpoints", o->out_dir);
    TrainState ts;
    state_of(r, o, s, step, &ts);
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
    if (rc == 0) checkpoint_path(root, step, saved, saved_size, err);
    return rc;
}

/* Restores weights (or adapters), optimizer and cursor from the newest checkpoint, if any;
 * returns the step to continue from. */
static int resume_from(Run *r, Model *m, const TrainOptions *o, int64_t *step, CkError *err) {
    char root[4096], dir[4096];
    snprintf(root, sizeof root, "%s/checkpoints", o->out_dir);
    int64_t found_step = 0;
    int found = checkpoint_find_latest(root, dir, sizeof dir, &found_step, err);
    if (found < 0) return -1;
    if (found == 0) return 0; /* nothing yet: a fresh start */
    if (o->use_lora) {
        LoraAdapters loaded;
        if (peft_load(&loaded, m, dir, err) != 0) return -1;
        if (loaded.n_params != r->lora.n_params) {
            lora_free(&loaded);
            return ck_fail(err, "%s: the adapter does not match --lora settings", dir);
        }
        memcpy(r->lora.params, loaded.params, loaded.n_params * sizeof(float));
        lora_free(&loaded);
    } else {
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
    }
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
    *step = ts.step;
    if (r->rank == 0) fprintf(stderr, "resuming from %s (step %lld)\n", dir, (long long)ts.step);
    return 0;
}

/* Appends one JSON line per update to steps.jsonl; flushed so a crash loses nothing. */
static void log_step(FILE *f, int64_t step, double lr, const LossResult *lr_res, double gnorm,
                     long tokens, double seconds, const CutStats *cut, int ranks,
                     double allreduce_seconds) {
    if (!f) return;
    if (cut)
        fprintf(f,
                "{\"step\": %lld, \"lr\": %.17g, \"loss\": %.17g, \"loss_mle\": %.17g, "
                "\"loss_ul\": %.17g, \"grad_norm\": %.17g, \"tokens\": %ld, \"positives\": %d, "
                "\"negatives\": %d, \"misalign_tokens\": %d, \"flagged\": %d, "
                "\"flagged_fraction\": %.6f, \"seconds\": %.6f, \"tokens_per_s\": %.1f",
                (long long)step, lr, lr_res->loss, lr_res->loss_mle, lr_res->loss_ul, gnorm, tokens,
                cut->n_pos, cut->n_neg, cut->n_m_tokens, cut->n_flagged,
                cut->n_m_tokens ? (double)cut->n_flagged / cut->n_m_tokens : 0.0, seconds,
                seconds > 0 ? tokens / seconds : 0.0);
    else
        fprintf(f,
                "{\"step\": %lld, \"lr\": %.17g, \"loss\": %.17g, \"loss_mle\": %.17g, "
                "\"loss_ul\": %.17g, \"grad_norm\": %.17g, \"tokens\": %ld, \"seconds\": %.6f, "
                "\"tokens_per_s\": %.1f",
                (long long)step, lr, lr_res->loss, lr_res->loss_mle, lr_res->loss_ul, gnorm, tokens,
                seconds, seconds > 0 ? tokens / seconds : 0.0);
    /* several ranks: the time the update spent summing over them (the rest is compute) */
    if (ranks > 1)
        fprintf(f, ", \"ranks\": %d, \"allreduce_seconds\": %.6f", ranks, allreduce_seconds);
    fputs("}\n", f);
    fflush(f);
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

/* Packs sequence seq (tokens, trained flags, len) at position n of the micro-batch: targets
 * are the next tokens where those are trained, -1 elsewhere. Returns the new length. */
static int pack_sequence(Run *r, int n, const int *tokens, const unsigned char *trained, int len) {
    for (int p = 0; p < len; p++) {
        r->tokens[n + p] = tokens[p];
        r->targets[n + p] = (p + 1 < len && trained[p + 1]) ? tokens[p + 1] : -1;
    }
    return n + len;
}

/* Opens a per-step log for appending. On resume (step > 0) the updates after the checkpoint
 * are replayed, so only the lines whose leading step number (read with first_field) is at
 * most step are kept, and lines without one (a header) too; a fresh run starts it empty. */
static FILE *open_log(const char *path, const char *first_field, int64_t step) {
    if (step == 0) return fopen(path, "w");
    FILE *old = fopen(path, "r");
    char *kept = NULL;
    size_t kept_len = 0;
    FILE *mem = open_memstream(&kept, &kept_len);
    char line[4096];
    while (old && mem && fgets(line, sizeof line, old)) {
        long long s = -1;
        if (sscanf(line, first_field, &s) != 1 || s <= step) fputs(line, mem);
    }
    if (old) fclose(old);
    if (mem) fclose(mem);
    FILE *f = fopen(path, "w");
    if (f && kept) fwrite(kept, 1, kept_len, f);
    free(kept);
    return f;
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

/* The MLE update over corpus sequences r->seqs[0 .. batch_size): every target token of the
 * update weighs 1 / (targets in the update), so the loss is the update's token mean however
 * it is split into micro-batches (or ranks: each counts the whole update's targets). */
static int mle_update(Run *r, Model *m, const TrainData *d, const TrainOptions *o,
                      LossResult *total, long *tokens, CkError *err) {
    const Corpus *c = d->corpus;
    long n_targets = 0;
    for (int i = 0; i < o->batch_size; i++)
        for (int p = c->offsets[r->seqs[i]] + 1; p < c->offsets[r->seqs[i] + 1]; p++)
            n_targets += c->train[p];
    const float w = 1.0f / (float)(n_targets ? n_targets : 1);
    for (int mb = 0; mb < o->batch_size / o->micro_batch; mb++) {
        if (!owns(r, mb)) {
            skip_micro_batch(r, d, o, r->seqs + mb * o->micro_batch);
            continue;
        }
        int n = 0;
        r->offsets[0] = 0;
        for (int k = 0; k < o->micro_batch; k++) {
            int s = r->seqs[mb * o->micro_batch + k], begin = c->offsets[s];
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
                                   o->use_lora ? &r->lora : NULL, o->use_lora ? r->grads : NULL,
                                   &res, err) != 0)
            return -1;
        total->loss += res.loss;
        total->loss_mle += res.loss_mle;
        total->loss_ul += res.loss_ul;
        *tokens += n;
    }
    return 0;
}

/* One micro-batch of CUT examples: forward both sequences of every negative with the
 * positives in one packed pass, read log p of every target, let cut_assign_loss decide each
 * token's kind and weight (MLE, or unlikelihood where pA / pM > lambda), then backward. */
/* Writes one CSV row per aligned response token of each negative example of the micro-batch:
 * the update, the example, the position within the response, the token, log pA (Align-N),
 * log pM (Misalign) and whether detection flagged it under the run's lambda. */
static void write_token_records(Run *r, FILE *out, const TokenBatch *b, const int *items,
                                int n_items, double lambda, int64_t step) {
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
            unsigned char flag = 0;
            cut_detect(&lpa, &lpm, 1, lambda, &flag);
            fprintf(out, "%lld,%d,%d,%d,%.9g,%.9g,%d\n", (long long)step, items[k], pos,
                    r->targets[im], lpa, lpm, flag);
            ia++, im++, pos++;
        }
    }
}

static int cut_micro_batch(Run *r, Model *m, const TrainData *d, const TrainOptions *o,
                           const int *items, int64_t step, LossResult *total, CutStats *cut_total,
                           long *tokens, CkError *err) {
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
    TokenBatch b = {n_seqs, r->offsets, r->tokens};
    LoraAdapters *lora = o->use_lora ? &r->lora : NULL;
    CutOptions copt = o->cut;
    copt.step_examples = o->batch_size; /* the mean runs over the update's examples */
    LossSpec spec;
    CutStats st;
    LossResult res;
    /* detection happens inside the backward's classifier pass (cut_plan_fused); the
     * decisions are then read back from the log-probs it wrote, for the logs */
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
    if (r->csv_mem) {
        write_token_records(r, r->csv_mem, &b, items, o->micro_batch, copt.lambda, step);
        r->csv_ends[++r->csv_ends[0]] = (int64_t)ftello(r->csv_mem);
    } else if (r->tokens_csv) {
        write_token_records(r, r->tokens_csv, &b, items, o->micro_batch, copt.lambda, step);
    }
    total->loss += res.loss;
    total->loss_mle += res.loss_mle;
    total->loss_ul += res.loss_ul;
    cut_total->n_pos += st.n_pos;
    cut_total->n_neg += st.n_neg;
    cut_total->n_m_tokens += st.n_m_tokens;
    cut_total->n_flagged += st.n_flagged;
    *tokens += n;
    return 0;
}

/* A 64-bit digest of n bytes, eight at a time, chained from h. */
static uint64_t digest(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Several ranks: fails on every rank unless all of them hold the same trainable weights
 * (and, with full, the same model, data, options, optimizer state, cursor and step): a rank
 * that read other files, flags or checkpoint would silently train another run. */
static int check_ranks_agree(const Run *r, const Model *m, const TrainData *d,
                             const TrainOptions *o, int64_t step, int full, CkError *err) {
    if (r->ranks == 1) return 0;
    uint64_t h = 0xcbf29ce484222325ull;
    h = digest(h, r->lora.params, o->use_lora ? r->lora.n_params * sizeof(float) : 0);
    h = digest(h, m->params, o->use_lora && !full ? 0 : m->n_params * sizeof(float));
    h = digest(h, &r->lora.dropout_rng, sizeof r->lora.dropout_rng);
    if (full) {
        const int64_t shape[] = {step,
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
        h = digest(h, shape, sizeof shape);
        h = digest(h, knobs, sizeof knobs);
        h = digest(h, r->opt.m, r->opt.n * sizeof(float));
        h = digest(h, r->opt.v, r->opt.n * sizeof(float));
        if (d->corpus) h = digest(h, d->corpus->tokens, sizeof(int) * (size_t)shape[10]);
        for (int i = 0; !d->corpus && i < d->n_examples; i++) {
            h = digest(h, d->examples[i].a.tokens, sizeof(int) * (size_t)d->examples[i].a.n);
            if (d->examples[i].negative)
                h = digest(h, d->examples[i].m.tokens, sizeof(int) * (size_t)d->examples[i].m.n);
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
                   (long long)step, r->ranks);
}

/* Several ranks, CUT: sends this update's token records (one chunk per micro-batch this rank
 * ran, after a header of the chunk ends) to rank 0, which writes them in micro-batch order,
 * the order of a single-process run. */
static int gather_token_records(Run *r, int n_mb, CkError *err) {
    fclose(r->csv_mem); /* makes csv_buf and csv_len final */
    r->csv_mem = NULL;
    const size_t head = sizeof(int64_t) * (size_t)(r->csv_ends[0] + 1);
    const size_t msg_len = head + r->csv_len;
    char *msg = malloc(msg_len);
    if (!msg) dist_abort("out of memory for the token records of an update");
    memcpy(msg, r->csv_ends, head);
    if (r->csv_len) memcpy(msg + head, r->csv_buf, r->csv_len);
    free(r->csv_buf);
    r->csv_buf = NULL;
    r->csv_len = 0;
    char *all = NULL;
    size_t all_n = 0;
    size_t *counts = malloc(sizeof(size_t) * (size_t)r->ranks);
    if (!counts) dist_abort("out of memory for the token records of an update");
    int rc = dist_gather_bytes(msg, msg_len, &all, &all_n, counts, err);
    free(msg);
    if (rc == 0 && r->rank == 0) {
        for (int mb = 0; mb < n_mb && rc == 0; mb++) {
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
            fwrite(data + begin, 1, (size_t)(end - begin), r->tokens_csv);
        }
    }
    free(all);
    free(counts);
    return rc;
}

int trainer_run(Model *m, const HfConfig *cfg, const TrainData *d, const TrainOptions *o,
                TrainReport *report, CkError *err) {
    memset(report, 0, sizeof *report);
    const Corpus *c = d->corpus;
    const int n_items = c ? c->n_seqs : d->n_examples;
    if (check_options(o, n_items, err) != 0) return -1;
    Run r;
    memset(&r, 0, sizeof r);
    r.rank = dist_rank();
    r.ranks = dist_size();
    int rc = -1;
    /* the run directory is rank 0's: the others write nothing */
    if (r.rank == 0 && mkdir(o->out_dir, 0777) != 0 && errno != EEXIST) {
        ck_fail(err, "%s: cannot create: %s", o->out_dir, strerror(errno));
        return -1;
    }
    int max_len = c ? c->max_len : 1;
    for (int i = 0; !c && i < d->n_examples; i++) {
        if (d->examples[i].a.n > max_len) max_len = d->examples[i].a.n;
        if (d->examples[i].negative && d->examples[i].m.n > max_len) max_len = d->examples[i].m.n;
    }
    const int seqs_per_item = c ? 1 : 2;
    const int max_tokens = o->micro_batch * seqs_per_item * max_len;
    size_t n_train;
    if (activations_init(&r.acts, m, max_tokens, max_len, 1, err) != 0) goto done;
    if (o->use_lora) {
        if (lora_init(&r.lora, m, &o->lora, o->seed, err) != 0) goto done;
        n_train = r.lora.n_params;
    } else {
        n_train = m->n_params;
    }
    r.grads = calloc(n_train, sizeof(float));
    r.seqs = malloc(sizeof(int) * (size_t)o->batch_size);
    r.tokens = malloc(sizeof(int) * (size_t)max_tokens);
    r.targets = malloc(sizeof(int) * (size_t)max_tokens);
    r.weights = malloc(sizeof(float) * (size_t)max_tokens);
    r.offsets = malloc(sizeof(int) * (size_t)(seqs_per_item * o->micro_batch + 1));
    r.logprobs = malloc(sizeof(double) * (size_t)max_tokens);
    r.kinds = malloc(sizeof(LossKind) * (size_t)max_tokens);
    r.partner = malloc(sizeof(int) * (size_t)max_tokens);
    r.base = malloc(sizeof(double) * (size_t)max_tokens);
    r.pairs = malloc(sizeof(CutPair) * (size_t)o->micro_batch);
    const int n_mb = o->batch_size / o->micro_batch;
    if (r.ranks > 1 && !c) r.csv_ends = malloc(sizeof(int64_t) * (size_t)(n_mb + 1));
    if (!r.grads || !r.seqs || !r.tokens || !r.targets || !r.weights || !r.offsets || !r.logprobs ||
        !r.kinds || !r.partner || !r.base || !r.pairs || (r.ranks > 1 && !c && !r.csv_ends)) {
        ck_fail(err, "out of memory");
        goto done;
    }
    if (adamw_init(&r.opt, n_train, &o->adamw, err) != 0) goto done;
    if (corpus_cursor_init(&r.cursor, n_items, o->seed, 0, 0, err) != 0) goto done;
    Schedule sched = schedule_make(o->schedule, o->lr, o->warmup_steps, o->steps);
    sched.first_step_lr_zero = o->first_step_lr_zero;
    if (schedule_validate(&sched, err) != 0) goto done;
    int64_t step = 0;
    if (o->resume && resume_from(&r, m, o, &step, err) != 0) goto done;
    if (check_ranks_agree(&r, m, d, o, step, 1, err) != 0) goto done;
    if (r.rank == 0 && r.ranks > n_mb)
        fprintf(stderr,
                "warning: %d ranks but %d micro-batches per update: %d ranks will idle (use a "
                "smaller --micro-batch or a larger --batch-size)\n",
                r.ranks, n_mb, r.ranks - n_mb);
    char path[4200];
    snprintf(path, sizeof path, "%s/steps.jsonl", o->out_dir);
    r.log = r.rank == 0 ? open_log(path, "{\"step\": %lld", step) : NULL;
    if (r.rank == 0 && !r.log) {
        ck_fail(err, "%s: cannot write: %s", path, strerror(errno));
        goto done;
    }
    if (!c && r.rank == 0) {
        /* per-token detection records of every CUT update, for the analysis tools */
        snprintf(path, sizeof path, "%s/tokens.csv", o->out_dir);
        r.tokens_csv = open_log(path, "%lld,", step);
        if (!r.tokens_csv) {
            ck_fail(err, "%s: cannot write: %s", path, strerror(errno));
            goto done;
        }
        if (step == 0) fprintf(r.tokens_csv, "step,example,position,token,log_pa,log_pm,flagged\n");
    }
    const int tty = isatty(2);
    const double start = timer_seconds();
    const int64_t first_step = step;
    long tokens_total = 0;
    char last_good[1024] = "none yet";
    int rising = 0;
    double last_fraction = 0.0;
    while (step < o->steps) {
        double t0 = timer_seconds();
        for (int i = 0; i < o->batch_size; i++) r.seqs[i] = corpus_cursor_next(&r.cursor);
            /* zeroed in parallel: one thread's memset is 5-10% of a 110M step */
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n_train; i++) r.grads[i] = 0.0f;
        LossResult total = {0};
        CutStats cut_total = {0};
        long tokens = 0;
        if (r.csv_ends) {
            r.csv_ends[0] = 0;
            r.csv_mem = open_memstream(&r.csv_buf, &r.csv_len);
            if (!r.csv_mem) dist_abort("out of memory for the token records of an update");
        }
        if (c) {
            if (mle_update(&r, m, d, o, &total, &tokens, err) != 0) goto done;
        } else {
            for (int mb = 0; mb < n_mb; mb++) {
                const int *items = r.seqs + mb * o->micro_batch;
                if (!owns(&r, mb)) {
                    skip_micro_batch(&r, d, o, items);
                    continue;
                }
                if (cut_micro_batch(&r, m, d, o, items, step + 1, &total, &cut_total, &tokens,
                                    err) != 0)
                    goto done;
            }
        }
        /* sampled once per update, and summed over the ranks, so that all of them stop at the
         * same update even when a signal reaches them at different moments */
        int stop = (o->stop && *o->stop) || (o->stop_after > 0 && step + 1 == o->stop_after);
        double allreduce_s = 0.0;
        if (r.ranks > 1) {
            const double t_sum = timer_seconds();
            double sums[] = {total.loss,           total.loss_mle,      total.loss_ul,
                             (double)tokens,       cut_total.n_pos,     cut_total.n_neg,
                             cut_total.n_m_tokens, cut_total.n_flagged, stop};
            /* one sum over a contiguous buffer: the whole gradient (full or LoRA) */
            if (dist_allreduce_sum_f32(r.grads, n_train, err) != 0 ||
                dist_allreduce_sum_f64(sums, sizeof sums / sizeof sums[0], err) != 0)
                goto done;
            allreduce_s = timer_seconds() - t_sum;
            total.loss = sums[0];
            total.loss_mle = sums[1];
            total.loss_ul = sums[2];
            tokens = (long)sums[3];
            cut_total.n_pos = (int)sums[4];
            cut_total.n_neg = (int)sums[5];
            cut_total.n_m_tokens = (int)sums[6];
            cut_total.n_flagged = (int)sums[7];
            stop = sums[8] > 0;
            if (r.csv_ends && gather_token_records(&r, n_mb, err) != 0) goto done;
        }
        if (!isfinite(total.loss)) {
            ck_fail(err,
                    "step %lld: the loss is %g; stopped before the update (last good "
                    "checkpoint: %s)",
                    (long long)step + 1, total.loss, last_good);
            goto done;
        }
        if (optim_check_finite(r.grads, n_train, "gradient", step + 1,
                               o->use_lora ? optim_name_lora : optim_name_model,
                               o->use_lora ? (const void *)&r.lora : (const void *)m, err) != 0) {
            ck_wrap(err, "last good checkpoint: %s", last_good);
            goto done;
        }
        double gnorm = o->max_grad_norm > 0
                           ? optim_clip_grad_norm(r.grads, n_train, o->max_grad_norm)
                           : optim_grad_norm(r.grads, n_train);
        double lr = schedule_lr(&sched, r.opt.step);
        if (adamw_step(&r.opt, o->use_lora ? r.lora.params : m->params, r.grads, lr, err) != 0)
            goto done;
        step++;
        tokens_total += tokens;
        double dt = timer_seconds() - t0, elapsed = timer_seconds() - start;
        log_step(r.log, step, lr, &total, gnorm, tokens, dt, c ? NULL : &cut_total, r.ranks,
                 allreduce_s);
        if (r.tokens_csv) fflush(r.tokens_csv);
        if (!c) {
            /* the runaway the judgment-world prototype saw: flagging that keeps growing */
            double frac =
                cut_total.n_m_tokens ? (double)cut_total.n_flagged / cut_total.n_m_tokens : 0.0;
            rising = (cut_total.n_m_tokens && frac > last_fraction) ? rising + 1 : 0;
            if (cut_total.n_m_tokens) last_fraction = frac;
            if (rising == 10 && r.rank == 0)
                fprintf(stderr,
                        "\nwarning: step %lld: the flagged fraction has risen for 10 "
                        "updates in a row (now %.3f): flagging may be running away; "
                        "consider a larger --lambda\n",
                        (long long)step, frac);
        }
        double tok_s = elapsed > 0 ? tokens_total / elapsed : 0;
        double eta = (step > first_step) ? elapsed / (step - first_step) * (o->steps - step) : 0;
        if (r.rank == 0 && (tty || step % 10 == 0 || step == o->steps))
            progress(step, o->steps, total.loss, tok_s, eta, tty);
        report->steps_done = step;
        report->last_loss = total.loss;
        if (stop || (o->save_every > 0 && step % o->save_every == 0)) {
            if (check_ranks_agree(&r, m, d, o, step, 0, err) != 0) goto done;
            if (r.rank == 0 &&
                save_checkpoint(&r, m, cfg, o, &sched, step, last_good, sizeof last_good, err) != 0)
                goto done;
            if (r.rank != 0) {
                /* the name rank 0 gave it, for this rank's messages */
                char root[4096];
                snprintf(root, sizeof root, "%s/checkpoints", o->out_dir);
                checkpoint_path(root, step, last_good, sizeof last_good, err);
            }
            snprintf(report->saved, sizeof report->saved, "%s", last_good);
        }
        if (stop) {
            report->stopped_early = 1;
            rc = 0;
            goto done;
        }
    }
    /* the final weights: a Hugging Face folder, or the PEFT adapter */
    if (check_ranks_agree(&r, m, d, o, step, 0, err) != 0) goto done;
    snprintf(path, sizeof path, "%s/%s", o->out_dir, o->use_lora ? "adapter" : "model");
    if (r.rank != 0) {
        rc = 0;
    } else if (o->use_lora) {
        rc = peft_save(&r.lora, m, path, o->base_name, o->command_line, err);
    } else {
        rc = hf_model_save(m, cfg, path, ST_F32, o->command_line, err);
    }
    if (rc == 0) snprintf(report->saved, sizeof report->saved, "%.1000s", path);
done:
    run_free(&r);
    return rc;
}
