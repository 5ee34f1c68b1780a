/* generate_batch.c — the continuous-batching scheduler. Every step gathers one batch: each
 * decoding slot's last token, and the whole prompt of each request admitted into a free slot
 * (while the step's token budget allows); one model_forward_cached pass runs it, each
 * sequence against its own cache, and one product gives the logits of every sequence's last
 * row; each slot then samples with its own sampler. Nothing is allocated per token. */
#include "model/generate_batch.h"

#include <stdlib.h>
#include <string.h>

#include "model/matmul.h"
#include "model/sampler.h"
#include "util/threads.h"
#include "util/timer.h"

/* One decoding position of the batch. */
typedef struct {
    int req;       /* request being decoded; -1: free */
    int prev;      /* last token (fed at the next step) */
    int steps;     /* tokens this request may generate (context permitting) */
    int generated; /* tokens generated so far */
    double start;  /* admission time */
    Sampler sampler;
    KVCache cache;
} Slot;

typedef struct {
    const Model *m;
    const Tokenizer *tok;
    const GenerateRequest *reqs;
    int n, B;
    const GenerateBatchOptions *o;
    GenerateBatchStats *stats;
    Slot *slots;        /* (B) */
    Activations acts;   /* for `budget` packed tokens */
    int budget;         /* tokens one step may hold: >= the longest prompt + B - 1 */
    int *tokens;        /* (budget) this step's packed tokens */
    int *offsets;       /* (B + 1) */
    int *seq_slot;      /* (B) slot of each sequence of the step */
    int *picked;        /* (B) the token each sequence of the step sampled */
    KVCache **caches;   /* (B) cache of each sequence of the step */
    float *rows;        /* (B, C) the last row of each sequence */
    float *logits;      /* (B, V) */
    int next;           /* next request to admit */
    double t0, printed; /* start, last progress line */
} Batcher;

void generate_batch_options_init(GenerateBatchOptions *o) {
    memset(o, 0, sizeof *o);
    o->max_batch = 16;
}

/* Tokens request r may generate: its steps, fewer when the context would overflow. */
static int request_steps(const Model *m, const GenerateRequest *r) {
    int room = m->config.seq_len - r->n_prompt;
    return r->opt.steps < room ? r->opt.steps : room;
}

/* Checks every request and sizes the caches (capacity) and the step's token budget. */
static int plan(const Model *m, const GenerateRequest *reqs, int n, int B, int *capacity,
                int *budget, CkError *err) {
    const int seq_len = m->config.seq_len;
    int longest = 1;
    long total = 0;
    *capacity = 1;
    for (int i = 0; i < n; i++) {
        const GenerateRequest *r = &reqs[i];
        if (r->n_prompt < 1 || r->n_prompt >= seq_len)
            return ck_fail(err, "request %d: the prompt has %d tokens; the model's context is %d",
                           i, r->n_prompt, seq_len);
        if (r->opt.steps < 0)
            return ck_fail(err, "request %d: steps must be >= 0, got %d", i, r->opt.steps);
        Sampler probe; /* checks temperature and top-p now, before anything is decoded */
        if (sampler_reset(&probe, r->opt.temperature, r->opt.top_p, r->opt.seed, err) != 0)
            return ck_wrap(err, "request %d", i);
        int steps = request_steps(m, r), need = r->n_prompt + (steps > 0 ? steps : 1);
        if (need > *capacity) *capacity = need;
        if (r->n_prompt > longest) longest = r->n_prompt;
        total += r->n_prompt;
    }
    /* room for the longest prompt beside B - 1 decoding slots, so that a step can always
     * admit; more (up to 512) lets the first step prefill several prompts in one pass */
    long want = total + B < 512 ? total + B : 512;
    *budget = longest + B - 1 > want ? longest + B - 1 : (int)want;
    return 0;
}

static void batcher_close(Batcher *bt) {
    for (int s = 0; bt->slots && s < bt->B; s++) {
        sampler_free(&bt->slots[s].sampler);
        kvcache_free(&bt->slots[s].cache);
    }
    free(bt->slots);
    activations_free(&bt->acts);
    free(bt->tokens);
    free(bt->offsets);
    free(bt->seq_slot);
    free(bt->picked);
    free(bt->caches);
    free(bt->rows);
    free(bt->logits);
}

static int batcher_open(Batcher *bt, CkError *err) {
    const ModelConfig *c = &bt->m->config;
    int capacity = 0;
    if (plan(bt->m, bt->reqs, bt->n, bt->B, &capacity, &bt->budget, err) != 0) return -1;
    const size_t B = (size_t)bt->B;
    bt->slots = calloc(B, sizeof *bt->slots);
    bt->tokens = malloc((size_t)bt->budget * sizeof(int));
    bt->offsets = malloc((B + 1) * sizeof(int));
    bt->seq_slot = malloc(B * sizeof(int));
    bt->picked = malloc(B * sizeof(int));
    bt->caches = malloc(B * sizeof(KVCache *));
    bt->rows = malloc(B * (size_t)c->dim * sizeof(float));
    bt->logits = malloc(B * (size_t)c->vocab_size * sizeof(float));
    if (!bt->slots || !bt->tokens || !bt->offsets || !bt->seq_slot || !bt->picked || !bt->caches ||
        !bt->rows || !bt->logits)
        return ck_fail(err, "out of memory");
    for (int s = 0; s < bt->B; s++) {
        Slot *sl = &bt->slots[s];
        sl->req = -1;
        if (sampler_init(&sl->sampler, c->vocab_size, 0.0f, 1.0f, 0, err) != 0 ||
            kvcache_init(&sl->cache, bt->m, capacity, err) != 0)
            return -1;
    }
    return activations_init(&bt->acts, bt->m, bt->budget, capacity, 0, err);
}

/* Prints sequences done, tokens/s and the ETA, at most every 2 s (and always when final). */
static void progress(Batcher *bt, int final) {
    FILE *f = bt->o->progress;
    double now = timer_seconds(), el = now - bt->t0;
    if (!f || (!final && now - bt->printed < 2.0)) return;
    bt->printed = now;
    const GenerateBatchStats *s = bt->stats;
    double eta = s->sequences > 0 ? el / s->sequences * (bt->n - s->sequences) : 0.0;
    fprintf(f, "generate: %d/%d sequences, %ld tokens, %.1f tokens/s, ETA %.0f s\n", s->sequences,
            bt->n, s->generated_tokens, el > 0 ? s->generated_tokens / el : 0.0, eta);
    fflush(f);
}

/* Reports a finished request and frees its slot (sl may be NULL: it never took one). */
static int finish(Batcher *bt, int req, Slot *sl, CkError *err) {
    GenerateStats st = {bt->reqs[req].n_prompt, sl ? sl->generated : 0,
                        sl ? timer_seconds() - sl->start : 0.0};
    if (sl) sl->req = -1;
    bt->stats->sequences++;
    bt->stats->generated_tokens += st.generated_tokens;
    progress(bt, 0);
    if (bt->o->on_done && bt->o->on_done(bt->reqs[req].ctx, req, &st, err) != 0)
        return ck_wrap(err, "request %d", req);
    return 0;
}

/* Appends sequence `s`'s tokens of this step (already in bt->tokens up to n_tok) as the
 * batch's next sequence. */
static void add_seq(Batcher *bt, int s, int *n_seq, int n_tok) {
    bt->seq_slot[*n_seq] = s;
    bt->caches[*n_seq] = &bt->slots[s].cache;
    bt->offsets[++*n_seq] = n_tok;
}

/* Fills free slot s from the queue when the step's budget allows: the request's prompt joins
 * the step. Requests with nothing to generate finish at once. */
static int admit(Batcher *bt, int s, int *n_seq, int *n_tok, CkError *err) {
    Slot *sl = &bt->slots[s];
    while (bt->next < bt->n) {
        const GenerateRequest *r = &bt->reqs[bt->next];
        if (*n_seq > 0 && *n_tok + r->n_prompt > bt->budget) return 0;
        const int req = bt->next++;
        if (request_steps(bt->m, r) == 0) {
            if (finish(bt, req, NULL, err) != 0) return -1;
            continue;
        }
        if (sampler_reset(&sl->sampler, r->opt.temperature, r->opt.top_p, r->opt.seed, err) != 0)
            return ck_wrap(err, "request %d", req);
        sl->req = req;
        sl->prev = r->prompt[r->n_prompt - 1];
        sl->steps = request_steps(bt->m, r);
        sl->generated = 0;
        sl->start = timer_seconds();
        sl->cache.len = 0;
        memcpy(bt->tokens + *n_tok, r->prompt, (size_t)r->n_prompt * sizeof(int));
        *n_tok += r->n_prompt;
        bt->stats->prompt_tokens += r->n_prompt;
        add_seq(bt, s, n_seq, *n_tok);
        return 0;
    }
    return 0;
}

/* Applies sequence j's sampled token (bt->picked[j]): the stop rules and the callback. */
static int take_token(Batcher *bt, int j, CkError *err) {
    Slot *sl = &bt->slots[bt->seq_slot[j]];
    const GenerateRequest *r = &bt->reqs[sl->req];
    const int next = bt->picked[j];
    if (r->opt.stop_at_eos && bt->tok && (next == bt->tok->bos_id || next == bt->tok->eos_id))
        return finish(bt, sl->req, sl, err);
    sl->generated++;
    int stop = 0;
    if (r->on_token) {
        char byte_buf[2];
        size_t len = 0;
        const char *piece =
            bt->tok ? tokenizer_decode_piece(bt->tok, sl->prev, next, byte_buf, &len) : NULL;
        stop = r->on_token(r->ctx, next, piece, len) != 0;
    }
    sl->prev = next;
    if (stop || sl->generated == sl->steps) return finish(bt, sl->req, sl, err);
    return 0;
}

/* One step: gather, one forward, the logits of each sequence's last row, sampling. Sets
 * *idle when nothing was left to run. */
static int step(Batcher *bt, int *idle, CkError *err) {
    const ModelConfig *c = &bt->m->config;
    int n_seq = 0, n_tok = 0;
    bt->offsets[0] = 0;
    /* the decoding slots first, then prompts into the free ones: the budget (>= the longest
     * prompt + B - 1) then always admits at least one */
    for (int s = 0; s < bt->B; s++)
        if (bt->slots[s].req >= 0) {
            bt->tokens[n_tok++] = bt->slots[s].prev;
            add_seq(bt, s, &n_seq, n_tok);
        }
    for (int s = 0; s < bt->B; s++)
        if (bt->slots[s].req < 0 && admit(bt, s, &n_seq, &n_tok, err) != 0) return -1;
    *idle = n_seq == 0;
    if (*idle) return 0;
    TokenBatch batch = {n_seq, bt->offsets, bt->tokens};
    if (model_forward_cached(bt->m, &bt->acts, &batch, bt->caches, bt->o->lora, err) != 0)
        return -1;
    bt->stats->forwards++;
    for (int j = 0; j < n_seq; j++)
        memcpy(bt->rows + (size_t)j * c->dim,
               bt->acts.xn_final + (size_t)(bt->offsets[j + 1] - 1) * c->dim,
               (size_t)c->dim * sizeof(float));
    /* one product for every sequence's row: the classifier is read once a step (as
     * model_logits_row computes one row, soft cap included) */
    if (model_logits_rows(bt->m, bt->rows, n_seq, bt->logits, err) != 0) return -1;
    /* each slot samples with its own sampler, so the rows can go to threads (a softmax over
     * the vocabulary each: 16 of them cost as much as the rest of a small model's step); the
     * tokens are then applied in order */
    const int V = c->vocab_size;
#pragma omp parallel for schedule(static) if (threads_for_work(8.0 * n_seq * V) > 1)
    for (int j = 0; j < n_seq; j++)
        bt->picked[j] =
            sampler_sample(&bt->slots[bt->seq_slot[j]].sampler, bt->logits + (size_t)j * V);
    for (int j = 0; j < n_seq; j++)
        if (take_token(bt, j, err) != 0) return -1;
    return 0;
}

int generate_batch(const Model *m, const Tokenizer *tok, const GenerateRequest *reqs, int n,
                   const GenerateBatchOptions *o, GenerateBatchStats *stats, CkError *err) {
    GenerateBatchStats local;
    if (!stats) stats = &local;
    *stats = (GenerateBatchStats){0};
    if (o->max_batch < 1) return ck_fail(err, "batch must be >= 1, got %d", o->max_batch);
    if (n <= 0) return 0;
    Batcher bt = {.m = m, .tok = tok, .reqs = reqs, .n = n, .o = o, .stats = stats};
    bt.B = o->max_batch < n ? o->max_batch : n;
    bt.t0 = bt.printed = timer_seconds();
    int rc = batcher_open(&bt, err), idle = 0;
    while (rc == 0 && !idle) rc = step(&bt, &idle, err);
    stats->seconds = timer_seconds() - bt.t0;
    if (rc == 0) progress(&bt, 1);
    batcher_close(&bt);
    return rc;
}
