/* generate_run.c — see generate_run.h. The steps: read the instructions and, on rank 0, the
 * partial file to resume (load_done); open the template and the model; answer the remaining
 * instructions through the sharding loop (rank 0 appends each gathered response and saves
 * every save_every); save once more after a failure, so that a rerun resumes after it. */
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
#include "formats/peft.h"
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
    RunLock lock;   /* rank 0: the output file, while the run writes it */
    int since_save; /* rank 0: records collected since the last save */
    int no_resave;  /* a failure after which saving again would not help */
    long tokens;
    double t0;
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

/* Opens the model, with its adapter merged in. */
static int open_model(GenerateRun *g, CkError *err) {
    const GenerateRunOptions *o = g->o;
    if (lm_open(&g->lm, o->model, o->tokenizer, err) != 0) return -1;
    g->have_lm = 1;
    if (!o->adapter) return 0;
    LoraAdapters ad;
    if (peft_load(&ad, &g->lm.model, o->adapter, err) != 0) return -1;
    int merged = lora_merge(&g->lm.model, &ad, err);
    lora_free(&ad);
    return merged;
}

/* The loop's work: answers instruction start + k and packs its token count and text. */
static int answer_work(void *ctx, int64_t k, StrBuf *out, CkError *err) {
    GenerateRun *g = ctx;
    const GenerateRunOptions *o = g->o;
    const int i = g->start + (int)k;
    char *prompt = template_format(g->tpl.prompt_no_input, g->list.items[i].instruction, NULL, err);
    if (!prompt) {
        g->no_resave = 1;
        return ck_wrap(err, "instruction %d", i);
    }
    RespondOptions ro = {o->max_tokens, o->temperature, o->top_p, respond_record_seed(o->seed, i),
                         o->stops,      o->n_stops};
    char *text = NULL;
    int n_tokens = 0;
    int rc = respond_generate(&g->lm.model, &g->lm.tokenizer, prompt, &ro, &text, &n_tokens, err);
    free(prompt);
    if (rc != 0) return ck_wrap(err, "%s: instruction %d", o->instructions, i);
    rc = shard_put_int(out, n_tokens, err) || shard_put_str(out, text, err) ? -1 : 0;
    free(text);
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
    if (g->o->log)
        fprintf(g->o->log, "%d/%d responses, %ld tokens, %.1f tokens/s\n", b, g->n, g->tokens,
                s > 0 ? g->tokens / s : 0.0);
    return 0;
}

/* Answers instructions start .. n-1: rounds of about save_every records, each rank its share. */
static int answer_all(GenerateRun *g, CkError *err) {
    const int per_rank = (g->o->save_every + dist_size() - 1) / dist_size();
    g->t0 = timer_seconds();
    ShardLoop loop = {g->n - g->start, per_rank, g, answer_work, answer_collect, answer_round_done};
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
    report->wrote = rc == 0 && dist_rank() == 0;
    run_close(&g);
    return rc;
}
