/* generate_run.c — see generate_run.h. The steps: read the instructions and, on rank 0, the
 * partial file to resume (load_done); open the template and the model; answer the remaining
 * instructions through the sharding loop (rank 0 appends each gathered response and saves
 * every save_every); save once more after a failure, so that a rerun resumes after it.
 * The loop asks for one record at a time; the first ask of a chunk decodes the whole chunk
 * (this rank's share of the round under mpirun, about 4 batches on one process) with
 * generate_batch, and the following asks take its responses. */
#include "eval/generate_run.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datasets/templates.h"
#include "eval/outputs.h"
#include "eval/respond.h"
#include "eval/shard.h"
#include "formats/lm.h"
#include "model/generate_batch.h"
#include "train/dist.h"
#include "util/hash.h"
#include "util/outdir.h"
#include "util/timer.h"

void generate_run_options_init(GenerateRunOptions *o) {
    memset(o, 0, sizeof *o);
    o->max_tokens = 256;
    o->top_p = 0.9f;
    o->seed = 42;
    o->save_every = 10;
    o->batch = 16;
}

void generate_stops_free(char **stops, int n) {
    for (int i = 0; i < n; i++) free(stops[i]);
    free(stops);
}

int generate_stops_parse(const char *arg, char ***stops, int *n, CkError *err) {
    *stops = NULL;
    *n = 0;
    if (!arg) return 0;
    if (arg[0] != '[') {
        *stops = malloc(sizeof(char *));
        if (!*stops || !((*stops)[0] = strdup(arg))) {
            free(*stops);
            *stops = NULL;
            return ck_fail(err, "out of memory");
        }
        *n = 1;
        return 0;
    }
    cJSON *a = cJSON_Parse(arg);
    int count = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
    const cJSON *s;
    cJSON_ArrayForEach(s, a) if (!cJSON_IsString(s)) count = -1;
    if (count < 0) {
        cJSON_Delete(a);
        return ck_fail(err, "expected a string or a JSON array of strings");
    }
    *stops = calloc((size_t)count + 1, sizeof(char *));
    int rc = *stops ? 0 : ck_fail(err, "out of memory");
    cJSON_ArrayForEach(s, a) {
        if (rc == 0 && !((*stops)[*n] = strdup(s->valuestring))) rc = ck_fail(err, "out of memory");
        if (rc == 0) (*n)++;
    }
    cJSON_Delete(a);
    if (rc != 0) {
        generate_stops_free(*stops, *n);
        *stops = NULL;
        *n = 0;
    }
    return rc;
}

void generate_run_default_name(const char *model, char *buf, size_t cap) {
    if (!model) {
        snprintf(buf, cap, "stories260K");
        return;
    }
    size_t len = strlen(model);
    while (len > 1 && model[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && model[start - 1] != '/') start--;
    size_t end = len;
    for (size_t i = start; i < len; i++)
        if (model[i] == '.' && i > start) end = i;
    snprintf(buf, cap, "%.*s", (int)(end - start), model + start);
}

/* The run's state, released by run_close. */
typedef struct {
    const GenerateRunOptions *o;
    GenerateRunReport *report;
    ModelOutputs list, done; /* the instructions; rank 0: the records written */
    int n, start;            /* instructions to answer; records already there */
    Template tpl;
    LanguageModel lm;
    int have_lm;
    LoraAdapters ad; /* the adapter of a held model (have_ad), added at every product */
    int have_ad;
    RunLock lock;   /* rank 0: the output file, while the run writes it */
    int since_save; /* rank 0: records collected since the last save */
    int no_resave;  /* a failure after which saving again would not help */
    long tokens;
    double t0;
    int per_rank; /* records per rank in a round under mpirun */
    /* responses decoded ahead: records ready_lo .. ready_hi - 1 (this rank's) */
    char **ready; /* malloc'd texts, NULL once taken */
    int *ready_tokens;
    int ready_lo, ready_hi;
} GenerateRun;

/* Every rank must answer the same instructions as the same generator: a hash of them agrees
 * across ranks, else the gathered file would mix two runs. */
static int check_same_run(const GenerateRun *g, CkError *err) {
    if (dist_size() == 1) return 0;
    uint64_t h = hash_fnv1a64(HASH_FNV1A64_OFFSET, &g->n, sizeof g->n);
    const char *gen = g->report->generator;
    h = hash_fnv1a64(h, gen, strlen(gen) + 1);
    for (int i = 0; i < g->n; i++) {
        const char *ins = g->list.items[i].instruction;
        h = hash_fnv1a64(h, ins, strlen(ins) + 1);
    }
    int same = 0;
    if (dist_same_u64(h, &same, err) != 0) return -1;
    if (!same)
        return ck_fail(err,
                       "the ranks read different instructions or generators (%d here): give "
                       "every rank the same flags and files",
                       g->n);
    return 0;
}

/* Rank 0: locks the output file (its folder created; a killed run's half-written file
 * removed) and reads what it holds, which must be the first instructions, in order, by this
 * generator. */
static int load_done(GenerateRun *g, CkError *err) {
    const GenerateRunOptions *o = g->o;
    const char *gen = g->report->generator;
    if (outdir_open_file(&g->lock, o->out, err) != 0) return -1;
    struct stat st;
    if (stat(o->out, &st) != 0) return 0;
    if (outputs_load(&g->done, o->out, 1, err) != 0) return -1;
    if (g->done.n > g->n)
        return ck_fail(err, "%s holds %d records, more than the %d instructions to answer", o->out,
                       g->done.n, g->n);
    for (int i = 0; i < g->done.n; i++) {
        const ModelOutput *d = &g->done.items[i];
        if (strcmp(d->instruction, g->list.items[i].instruction) != 0)
            return ck_fail(err,
                           "%s: record %d is not instruction %d of %s: not a partial run of "
                           "these instructions (choose another --out)",
                           o->out, i, i, o->instructions);
        if (!d->generator || strcmp(d->generator, gen) != 0)
            return ck_fail(err, "%s: record %d was made by generator '%s', not '%s'", o->out, i,
                           d->generator ? d->generator : "(none)", gen);
    }
    if (g->done.n > 0 && o->log)
        fprintf(o->log, "resuming after %d of %d responses in %s\n", g->done.n, g->n, o->out);
    return 0;
}

/* Opens the model with its adapter (lm_open_adapted: merged, or beside a held model). */
static int open_model(GenerateRun *g, CkError *err) {
    const GenerateRunOptions *o = g->o;
    if (lm_open_adapted(&g->lm, o->model, o->tokenizer, o->base_dtype, o->adapter, &g->ad,
                        &g->have_ad, err) != 0)
        return -1;
    g->have_lm = 1;
    return 0;
}

/* A response being decoded: its text so far, cut at the first stop string. */
typedef struct {
    StrBuf text;
    const GenerateRunOptions *o;
    int *ids; /* the encoded prompt */
    int n_ids;
    int n_tokens; /* generated, from generate_batch's count */
    int oom;
} Pending;

/* Appends a piece; a stop string (respond_append_piece) or running out of memory ends the
 * response. */
static int pending_piece(void *ctx, int token, const char *piece, size_t len) {
    (void)token;
    Pending *p = ctx;
    const int rc = respond_append_piece(&p->text, piece, len, p->o->stops, p->o->n_stops);
    if (rc < 0) p->oom = 1;
    return rc != 0;
}

static int pending_done(void *ctx, int index, const GenerateStats *st, CkError *err) {
    (void)index;
    Pending *p = ctx;
    p->n_tokens = st->generated_tokens;
    return p->oom ? ck_fail(err, "out of memory") : 0;
}

static int is_space(char ch) {
    return ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* The response as respond_generate returns it: trimmed, each bad UTF-8 byte a U+FFFD. */
static char *pending_text(const Pending *p) {
    const char *t = p->text.p ? p->text.p : "";
    size_t a = 0, b = p->text.n;
    while (a < b && is_space(t[a])) a++;
    while (b > a && is_space(t[b - 1])) b--;
    return respond_utf8_clean(t + a, b - a);
}

static void ready_free(GenerateRun *g) {
    for (int i = 0; g->ready && i < g->ready_hi - g->ready_lo; i++) free(g->ready[i]);
    free(g->ready);
    free(g->ready_tokens);
    g->ready = NULL;
    g->ready_tokens = NULL;
    g->ready_lo = g->ready_hi = 0;
}

/* Formats and encodes instruction i into p, with its request. */
static int pending_open(GenerateRun *g, int i, Pending *p, GenerateRequest *r, CkError *err) {
    const GenerateRunOptions *o = g->o;
    p->o = o;
    char *prompt = template_format(g->tpl.prompt_no_input, g->list.items[i].instruction, NULL, err);
    if (!prompt) {
        g->no_resave = 1;
        return ck_wrap(err, "instruction %d", i);
    }
    int rc = tokenizer_encode(&g->lm.tokenizer, prompt, 1, 0, &p->ids, &p->n_ids, err);
    free(prompt);
    const int ctx = g->lm.model.config.seq_len;
    if (rc == 0 && p->n_ids >= ctx)
        rc = ck_fail(err, "the prompt has %d tokens; the model's context is %d", p->n_ids, ctx);
    if (rc != 0) return ck_wrap(err, "%s: instruction %d", o->instructions, i);
    GenerateOptions go = {o->max_tokens, o->temperature, o->top_p, respond_record_seed(o->seed, i),
                          1};
    *r = (GenerateRequest){p->ids, p->n_ids, go, pending_piece, p};
    return 0;
}

/* Decodes instructions lo .. hi - 1 together into g->ready. */
static int answer_chunk(GenerateRun *g, int lo, int hi, CkError *err) {
    ready_free(g);
    const int n = hi - lo;
    Pending *p = calloc((size_t)n, sizeof *p);
    GenerateRequest *reqs = calloc((size_t)n, sizeof *reqs);
    g->ready = calloc((size_t)n, sizeof(char *));
    g->ready_tokens = calloc((size_t)n, sizeof(int));
    int rc = p && reqs && g->ready && g->ready_tokens ? 0 : ck_fail(err, "out of memory");
    for (int k = 0; k < n && rc == 0; k++) rc = pending_open(g, lo + k, &p[k], &reqs[k], err);
    GenerateBatchOptions bo;
    generate_batch_options_init(&bo);
    bo.max_batch = g->o->batch;
    bo.on_done = pending_done;
    bo.lora = g->have_ad ? &g->ad : NULL;
    if (rc == 0 && generate_batch(&g->lm.model, &g->lm.tokenizer, reqs, n, &bo, NULL, err) != 0)
        rc = ck_wrap(err, "%s: instructions %d..%d", g->o->instructions, lo, hi - 1);
    for (int k = 0; k < n && rc == 0; k++) {
        g->ready_tokens[k] = p[k].n_tokens;
        if (!(g->ready[k] = pending_text(&p[k]))) rc = ck_fail(err, "out of memory");
    }
    for (int k = 0; p && k < n; k++) {
        strbuf_free(&p[k].text);
        free(p[k].ids);
    }
    free(p);
    free(reqs);
    if (rc != 0) {
        free(g->ready);
        free(g->ready_tokens);
        g->ready = NULL;
        g->ready_tokens = NULL;
        return -1;
    }
    g->ready_lo = lo;
    g->ready_hi = hi;
    return 0;
}

/* Where the chunk that starts at record start + k ends: this rank's share of the round
 * (shard.c's rounds) under mpirun; on one process, whose rounds are one record each, about
 * four batches (or save_every records, when more) so that the slots stay full. */
static int chunk_end(const GenerateRun *g, int64_t k) {
    const int64_t n = g->n - g->start;
    int64_t end;
    if (dist_size() == 1) {
        int64_t w = 4 * (int64_t)g->o->batch;
        if (w < g->o->save_every) w = g->o->save_every;
        end = k + w;
    } else {
        const int64_t round = (int64_t)dist_size() * g->per_rank;
        const int64_t lo = k / round * round, hi = lo + round < n ? lo + round : n;
        int64_t a = 0, b = 0;
        dist_shard_range(hi - lo, &a, &b);
        end = lo + b;
    }
    return g->start + (int)(end < n ? end : n);
}

/* The loop's work: packs record start + k's token count and text, decoding its chunk first
 * when it is not ready. */
static int answer_work(void *ctx, int64_t k, StrBuf *out, CkError *err) {
    GenerateRun *g = ctx;
    const int i = g->start + (int)k;
    if ((i < g->ready_lo || i >= g->ready_hi) && answer_chunk(g, i, chunk_end(g, k), err) != 0)
        return -1;
    const char *text = g->ready[i - g->ready_lo];
    int rc =
        shard_put_int(out, g->ready_tokens[i - g->ready_lo], err) || shard_put_str(out, text, err)
            ? -1
            : 0;
    free(g->ready[i - g->ready_lo]);
    g->ready[i - g->ready_lo] = NULL;
    return rc;
}

/* The loop's collect (rank 0, in order): appends record start + k. */
static int answer_collect(void *ctx, int64_t k, ShardReader *in, CkError *err) {
    GenerateRun *g = ctx;
    const ModelOutput *ins = &g->list.items[g->start + k];
    int n_tokens = 0;
    char *text = NULL;
    int rc = shard_get_int(in, &n_tokens, err) || shard_get_str(in, &text, err) ||
                     outputs_append(&g->done, ins->instruction, text ? text : "",
                                    g->report->generator, ins->dataset, err)
                 ? -1
                 : 0;
    free(text);
    g->tokens += n_tokens;
    g->since_save++;
    return rc;
}

/* After a round (rank 0): saves every save_every records and at the end, with progress. */
static int answer_round_done(void *ctx, int64_t lo, int64_t hi, CkError *err) {
    (void)lo;
    GenerateRun *g = ctx;
    const int b = g->start + (int)hi;
    if (g->since_save < g->o->save_every && b < g->n) return 0;
    if (outputs_save(&g->done, g->o->out, err) != 0) {
        g->no_resave = 1;
        return -1;
    }
    g->since_save = 0;
    double s = timer_seconds() - g->t0;
    const int made = b - g->start;
    if (g->o->log)
        fprintf(g->o->log, "%d/%d responses, %ld tokens, %.1f tokens/s, ETA %.0f s\n", b, g->n,
                g->tokens, s > 0 ? g->tokens / s : 0.0, made > 0 ? s / made * (g->n - b) : 0.0);
    return 0;
}

/* Answers instructions start .. n-1: rounds of about save_every records, each rank its share. */
static int answer_all(GenerateRun *g, CkError *err) {
    /* a round saves about save_every records, and gives each rank at least a batch */
    g->per_rank = (g->o->save_every + dist_size() - 1) / dist_size();
    if (g->per_rank < g->o->batch) g->per_rank = g->o->batch;
    g->t0 = timer_seconds();
    ShardLoop loop = {g->n - g->start, g->per_rank,    g,
                      answer_work,     answer_collect, answer_round_done};
    if (shard_run(&loop, err) == 0) return 0;
    /* keep what was generated (rank 0: what was gathered), so that a rerun resumes after it */
    if (dist_rank() == 0 && g->since_save > 0 && !g->no_resave) {
        CkError save_err = {{0}};
        if (outputs_save(&g->done, g->o->out, &save_err) != 0 && g->o->log)
            fprintf(g->o->log, "cutkit eval generate: %s\n", save_err.msg);
    }
    return -1;
}

/* Reads the instructions and what the output file holds, then opens the template and, when
 * there is something to answer, the model. */
static int run_open(GenerateRun *g, CkError *err) {
    const GenerateRunOptions *o = g->o;
    if (!o->instructions || !o->out) return ck_fail(err, "instructions and out are required");
    if (o->batch < 1) return ck_fail(err, "batch must be >= 1, got %d", o->batch);
    if (outputs_load(&g->list, o->instructions, 0, err) != 0) return -1;
    g->n = g->list.n;
    if (o->limit > 0 && o->limit < g->n) g->n = o->limit;
    if (check_same_run(g, err) != 0) return -1;
    /* the output file is rank 0's alone; the other ranks learn where it stops */
    if (dist_rank() == 0 && load_done(g, err) != 0) return -1;
    g->start = g->done.n;
    if (dist_bcast_bytes(&g->start, sizeof g->start, 0, err) != 0) return -1;
    if (o->template_path ? template_load(&g->tpl, o->template_path, err)
                         : template_default(&g->tpl, err))
        return -1;
    if (g->start < g->n || g->start == 0) return open_model(g, err);
    return 0;
}

static void run_close(GenerateRun *g) {
    ready_free(g);
    if (g->have_ad) lora_free(&g->ad);
    if (g->have_lm) lm_close(&g->lm);
    template_free(&g->tpl);
    outputs_free(&g->list);
    outputs_free(&g->done);
    runlock_release(&g->lock);
}

int generate_run(const GenerateRunOptions *o, GenerateRunReport *report, CkError *err) {
    memset(report, 0, sizeof *report);
    if (o->generator)
        snprintf(report->generator, sizeof report->generator, "%s", o->generator);
    else
        generate_run_default_name(o->model, report->generator, sizeof report->generator);
    GenerateRun g;
    memset(&g, 0, sizeof g);
    g.o = o;
    g.report = report;
    int rc = run_open(&g, err);
    report->n_resumed = g.done.n;
    if (rc == 0) rc = answer_all(&g, err);
    /* an empty list still gets its (empty) file */
    if (rc == 0 && dist_rank() == 0 && g.done.n == 0) rc = outputs_save(&g.done, o->out, err);
    report->n_records = g.done.n;
    report->batch = o->batch;
    report->tokens = g.tokens;
    report->seconds = g.t0 > 0 ? timer_seconds() - g.t0 : 0.0;
    report->wrote = rc == 0 && dist_rank() == 0;
    run_close(&g);
    return rc;
}
