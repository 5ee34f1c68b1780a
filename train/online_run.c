/* online_run.c — the online loop's iterations and their stage files. */
#include "train/online_run.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/online_config.h"
#include "train/online_journal.h"
#include "model/generate_batch.h"
#include "util/fileio.h"
#include "util/outdir.h"
#include "util/pystr.h"
#include "util/strbuf.h"
#include "util/utf8.h"

/* Room for a path below the run directory (whose length is checked once, at the start). */
#define PATH_BUF 4096

/* What the stages of one run share. */
typedef struct {
    const OnlineRunOptions *o;
    InstructionPool pool;
    Template tpl;
} OnlineLoop;

/* The counts of an iteration's judgments. */
typedef struct {
    int positives, negatives, failures, errors_known, errors_total;
} JudgeCounts;

void online_run_options_init(OnlineRunOptions *o) {
    memset(o, 0, sizeof *o);
    o->iterations = 3;
    o->per_iteration = 64;
    o->max_tokens = 256;
    o->temperature = 1;
    o->top_p = 1;
    o->seed = 42;
    o->batch_size = 8;
    o->lr = 4e-4;
    o->lambda = 1.1;
    o->alpha = 1;
    o->cutoff = 2048;
    o->align_p_ratio = -1;
    o->align_p_seed = 42;
    o->merge_dtype = "f32";
}

static void log_msg(const OnlineRunOptions *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void log_msg(const OnlineRunOptions *o, const char *fmt, ...) {
    if (!o->log) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(o->log, fmt, ap);
    va_end(ap);
}

/* A terminal shows a counter that rewrites itself; a log file gets none of it. */
static int log_is_tty(const OnlineRunOptions *o) {
    return o->log && isatty(fileno(o->log));
}

static int stopped(const OnlineRunOptions *o) {
    return stage_stop_requested(&o->runner);
}

static const char *str_field(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A stage whose final file exists is done; a journal beside it is a crash's leftover. */
static int step_file_done(const char *path, const char *partial) {
    if (access(path, F_OK) != 0) return 0;
    remove(partial);
    return 1;
}

/* One response being decoded in a batch: the model's bytes so far. */
typedef struct {
    const OnlineRunOptions *o;
    StrBuf text;
    int *ids; /* the encoded prompt */
    int n_ids;
    int failed; /* out of memory */
} GenItem;

/* Collects a piece; a requested stop ends every sequence (the chunk is then dropped). */
static int item_piece(void *ctx, int token, const char *piece, size_t len) {
    (void)token;
    GenItem *it = ctx;
    if (strbuf_put(&it->text, piece, len) != 0) it->failed = 1;
    return it->failed || stopped(it->o);
}

/* The response as online_generate (train/online.h) makes it from the model's bytes: cut at
 * the template's response_split unless kept, made valid UTF-8, stripped when asked. */
static char *item_response(const OnlineLoop *L, GenItem *it) {
    const OnlineRunOptions *o = L->o;
    if (strbuf_put(&it->text, "", 0) != 0) return NULL;
    char *split = L->tpl.response_split[0] && !o->keep_after_split
                      ? strstr(it->text.p, L->tpl.response_split)
                      : NULL;
    if (split) *split = '\0';
    StrBuf clean = {0};
    if (utf8_put_lossy(&clean, it->text.p, strlen(it->text.p)) != 0 ||
        strbuf_put(&clean, "", 0) != 0) {
        strbuf_free(&clean);
        return NULL;
    }
    if (o->strip) {
        size_t start, len;
        pystr_strip(clean.p, clean.n, &start, &len);
        memmove(clean.p, clean.p + start, len);
        clean.p[len] = '\0';
    }
    return clean.p;
}

/* Formats and encodes the instruction of item `index` into it, with its request (sampled with
 * seed + index, as online_generate samples it). */
static int item_open(const OnlineLoop *L, const LanguageModel *lm, int index, GenItem *it,
                     GenerateRequest *r, CkError *err) {
    const OnlineRunOptions *o = L->o;
    it->o = o;
    const char *instruction = L->pool.instructions[index % L->pool.n];
    char *prompt = template_format(L->tpl.prompt_no_input, instruction, NULL, err);
    if (!prompt) return ck_wrap(err, "instruction %d", index % L->pool.n);
    int rc = tokenizer_encode(&lm->tokenizer, prompt, 1, 0, &it->ids, &it->n_ids, err);
    free(prompt);
    if (rc != 0) return ck_wrap(err, "instruction %d", index % L->pool.n);
    GenerateOptions g = {o->max_tokens, o->temperature, o->top_p, o->seed + (uint64_t)index, 1};
    *r = (GenerateRequest){it->ids, it->n_ids, g, item_piece, it};
    return 0;
}

/* Journals the responses of items first + lo .. first + hi - 1 (done together in one batch
 * run) in order. */
static int journal_items(const OnlineLoop *L, GenItem *items, int first, int lo, int hi, FILE *f,
                         const char *partial, CkError *err) {
    int rc = 0;
    for (int i = lo; i < hi && rc == 0; i++) {
        const int index = first + i;
        char *response = item_response(L, &items[i - lo]);
        if (!response) return ck_fail(err, "out of memory");
        cJSON *obj = cJSON_CreateObject();
        cJSON_AddNumberToObject(obj, "id", index);
        cJSON_AddStringToObject(obj, "instruction", L->pool.instructions[index % L->pool.n]);
        cJSON_AddStringToObject(obj, "output", response);
        free(response);
        rc = online_journal_append(f, partial, obj, err);
        cJSON_Delete(obj);
    }
    return rc;
}

/* Decodes items first + lo .. first + hi - 1 together and journals them, unless a stop was
 * requested meanwhile (then nothing of the chunk is kept: a rerun redoes it). */
static int generate_chunk(const OnlineLoop *L, const LanguageModel *lm, int first, int lo, int hi,
                          FILE *f, const char *partial, CkError *err) {
    const int n = hi - lo;
    GenItem *items = calloc((size_t)n, sizeof *items);
    GenerateRequest *reqs = calloc((size_t)n, sizeof *reqs);
    int rc = items && reqs ? 0 : ck_fail(err, "out of memory");
    for (int k = 0; k < n && rc == 0; k++)
        rc = item_open(L, lm, first + lo + k, &items[k], &reqs[k], err);
    GenerateBatchOptions bo;
    generate_batch_options_init(&bo);
    if (rc == 0 && generate_batch(&lm->model, &lm->tokenizer, reqs, n, &bo, NULL, err) != 0)
        rc = ck_wrap(err, "instructions of items %d..%d", first + lo, first + hi - 1);
    for (int k = 0; k < n && rc == 0; k++)
        if (items[k].failed) rc = ck_fail(err, "out of memory");
    if (rc == 0 && !stopped(L->o)) rc = journal_items(L, items, first, lo, hi, f, partial, err);
    for (int k = 0; items && k < n; k++) {
        strbuf_free(&items[k].text);
        free(items[k].ids);
    }
    free(items);
    free(reqs);
    return rc;
}

/* Generates and journals the responses first + n_done .. first + per_iteration - 1, a chunk
 * of a few batches at a time (model/generate_batch.h decodes up to 16 together; each response
 * depends only on its own seed, so the chunks change nothing in the file). */
static int generate_items(const OnlineLoop *L, const LanguageModel *lm, int first, int n_done,
                          FILE *f, const char *partial, CkError *err) {
    const OnlineRunOptions *o = L->o;
    GenerateBatchOptions bo;
    generate_batch_options_init(&bo);
    const int chunk = 4 * bo.max_batch;
    int rc = 0;
    for (int i = n_done; rc == 0 && i < o->per_iteration && !stopped(o); i += chunk) {
        int hi = i + chunk < o->per_iteration ? i + chunk : o->per_iteration;
        rc = generate_chunk(L, lm, first, i, hi, f, partial, err);
        if (rc == 0 && log_is_tty(o) && !stopped(o))
            fprintf(o->log, "\r  generated %d/%d", hi, o->per_iteration);
    }
    return rc;
}

/* Stage 1: the current model's responses to this iteration's instructions. */
static int step_generate(const OnlineLoop *L, const char *model, int first, const char *dir,
                         char *path, size_t path_size, CkError *err) {
    const OnlineRunOptions *o = L->o;
    char partial[PATH_BUF + 16];
    fileio_path(path, path_size, dir, "generations.jsonl");
    snprintf(partial, sizeof partial, "%s.partial", path);
    if (step_file_done(path, partial)) return 0;
    JournalItems done;
    if (online_journal_read(&done, partial, err) != 0) return -1;
    int n_done = done.n;
    online_journal_free(&done);
    if (n_done >= o->per_iteration) return online_journal_finish(partial, path, err);
    LanguageModel lm;
    if (lm_open(&lm, model, NULL, err) != 0) return -1;
    FILE *f = fopen(partial, "a");
    int rc = f ? 0 : ck_fail(err, "cannot open %s: %s", partial, strerror(errno));
    if (rc == 0) rc = generate_items(L, &lm, first, n_done, f, partial, err);
    if (log_is_tty(o)) fprintf(o->log, "\n");
    if (f) fclose(f);
    lm_close(&lm);
    if (rc == 0 && !stopped(o)) rc = online_journal_finish(partial, path, err);
    return rc;
}

static void count_item(JudgeCounts *c, const cJSON *obj) {
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(obj, "judgment")))
        c->negatives++;
    else
        c->positives++;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(obj, "n_errors");
    if (cJSON_IsNumber(e) && e->valueint >= 0) {
        c->errors_known++;
        c->errors_total += e->valueint;
    }
}

/* The journals a judge stage appends to. */
typedef struct {
    FILE *judged, *failed;
    const char *judged_path, *failed_path;
} JudgeFiles;

/* Judges generation item i: a verdict goes to the judgments, a judge failure (reported in
 * the log) to the failures; only a write error fails. */
static int judge_item(const OnlineLoop *L, const cJSON *item, int i, const char *generations,
                      const JudgeFiles *jf, JudgeCounts *counts, CkError *err) {
    const char *instruction = str_field(item, "instruction");
    const char *output = str_field(item, "output");
    if (!instruction || !output)
        return ck_fail(err, "%s:%d: missing instruction or output", generations, i + 1);
    char *judgment = NULL;
    int n_errors = -1, rc;
    CkError why = {{0}};
    cJSON *obj = cJSON_Duplicate(item, 1);
    if (online_judge(L->o->judge, instruction, output, &judgment, &n_errors, &why) != 0) {
        log_msg(L->o, "\ncutkit align-online: judge failed on item %d: %s\n", i, why.msg);
        /* the reason may quote the judge's stderr, or be cut inside a character: the
         * journal stays UTF-8 */
        StrBuf reason = {0};
        rc = utf8_put_lossy(&reason, why.msg, strlen(why.msg)) == 0 &&
                     strbuf_put(&reason, "", 0) == 0 &&
                     cJSON_AddStringToObject(obj, "judge_error", reason.p)
                 ? online_journal_append(jf->failed, jf->failed_path, obj, err)
                 : ck_fail(err, "out of memory");
        strbuf_free(&reason);
        counts->failures++;
    } else {
        cJSON_AddStringToObject(obj, "input", "");
        if (judgment)
            cJSON_AddStringToObject(obj, "judgment", judgment);
        else
            cJSON_AddNullToObject(obj, "judgment");
        if (n_errors >= 0) cJSON_AddNumberToObject(obj, "n_errors", n_errors);
        count_item(counts, obj);
        rc = online_journal_append(jf->judged, jf->judged_path, obj, err);
    }
    free(judgment);
    cJSON_Delete(obj);
    return rc;
}

/* The counts of a finished judge stage, from its files. */
static int judged_counts(const char *path, const char *failures, JudgeCounts *counts,
                         CkError *err) {
    JournalItems done, failed;
    if (online_journal_read(&done, path, err) != 0) return -1;
    for (int i = 0; i < done.n; i++) count_item(counts, done.items[i]);
    online_journal_free(&done);
    if (online_journal_read(&failed, failures, err) == 0) counts->failures = failed.n;
    online_journal_free(&failed);
    return 0;
}

/* Judges the generations not judged yet (items before n_done + n_failed were). */
static int judge_remaining(const OnlineLoop *L, const char *generations, const char *partial,
                           const char *failures, JudgeCounts *counts, CkError *err) {
    JournalItems gen, done, failed;
    int rc = online_journal_read(&gen, generations, err);
    if (rc == 0 && (rc = online_journal_read(&done, partial, err)) != 0) online_journal_free(&gen);
    if (rc == 0 && (rc = online_journal_read(&failed, failures, err)) != 0) {
        online_journal_free(&gen);
        online_journal_free(&done);
    }
    if (rc != 0) return -1;
    for (int i = 0; i < done.n; i++) count_item(counts, done.items[i]);
    counts->failures = failed.n;
    JudgeFiles jf = {fopen(partial, "a"), NULL, partial, failures};
    if (jf.judged) jf.failed = fopen(failures, "a");
    if (!jf.judged || !jf.failed)
        rc = ck_fail(err, "cannot open %s: %s", jf.judged ? failures : partial, strerror(errno));
    for (int i = done.n + failed.n; rc == 0 && i < gen.n && !stopped(L->o); i++) {
        rc = judge_item(L, gen.items[i], i, generations, &jf, counts, err);
        if (log_is_tty(L->o)) fprintf(L->o->log, "\r  judged %d/%d", i + 1, gen.n);
    }
    if (log_is_tty(L->o)) fprintf(L->o->log, "\n");
    if (jf.judged) fclose(jf.judged);
    if (jf.failed) fclose(jf.failed);
    online_journal_free(&gen);
    online_journal_free(&done);
    online_journal_free(&failed);
    return rc;
}

/* Stage 2: the judge's verdict on every response, as generic JSONL judgment records. */
static int step_judge(const OnlineLoop *L, const char *generations, const char *dir, char *path,
                      size_t path_size, JudgeCounts *counts, CkError *err) {
    char partial[PATH_BUF + 16], failures[PATH_BUF];
    fileio_path(path, path_size, dir, "judgments.jsonl");
    snprintf(partial, sizeof partial, "%s.partial", path);
    fileio_path(failures, sizeof failures, dir, "judge_failures.jsonl");
    memset(counts, 0, sizeof *counts);
    if (step_file_done(path, partial)) return judged_counts(path, failures, counts, err);
    int rc = judge_remaining(L, generations, partial, failures, counts, err);
    if (rc == 0 && !stopped(L->o)) rc = online_journal_finish(partial, path, err);
    return rc;
}

/* The flags of the iteration's `cutkit train`, in the order its config.json records them. */
typedef struct {
    char steps[32], batch[32], lr[32], warmup[32], lambda[32], alpha[32], seed[32], threads[32];
    char cutoff[32], ratio[32], ratio_seed[32];
    char *argv[64];
} TrainArgs;

static void train_args(const OnlineRunOptions *o, const char *model, const char *judgments,
                       char *train_dir, TrainArgs *t) {
    snprintf(t->steps, sizeof t->steps, "%d", o->steps);
    snprintf(t->cutoff, sizeof t->cutoff, "%d", o->cutoff);
    if (o->align_p_ratio >= 0)
        snprintf(t->ratio, sizeof t->ratio, "%.17g", o->align_p_ratio);
    else
        snprintf(t->ratio, sizeof t->ratio, "off");
    snprintf(t->ratio_seed, sizeof t->ratio_seed, "%llu", (unsigned long long)o->align_p_seed);
    snprintf(t->batch, sizeof t->batch, "%d", o->batch_size);
    snprintf(t->lr, sizeof t->lr, "%.17g", o->lr);
    snprintf(t->warmup, sizeof t->warmup, "%d", o->warmup);
    snprintf(t->lambda, sizeof t->lambda, "%.17g", o->lambda);
    snprintf(t->alpha, sizeof t->alpha, "%.17g", o->alpha);
    snprintf(t->seed, sizeof t->seed, "%llu", (unsigned long long)o->seed);
    snprintf(t->threads, sizeof t->threads, "%d", o->threads);
    char **a = t->argv;
    *a++ = "train";
    if (o->train_settings) *a++ = "--settings", *a++ = (char *)o->train_settings;
    if (o->train_preset) *a++ = "--preset", *a++ = (char *)o->train_preset;
    *a++ = "--objective", *a++ = "cut";
    *a++ = "--judgments", *a++ = (char *)judgments;
    *a++ = "--judgment-format", *a++ = "jsonl";
    *a++ = "--out", *a++ = train_dir;
    /* the number of updates follows the examples left after Align-P downsampling */
    if (o->steps > 0)
        *a++ = "--steps", *a++ = t->steps;
    else
        *a++ = "--epochs", *a++ = "1";
    *a++ = "--cutoff", *a++ = t->cutoff;
    *a++ = "--align-p-ratio", *a++ = t->ratio;
    *a++ = "--align-p-seed", *a++ = t->ratio_seed;
    *a++ = "--batch-size", *a++ = t->batch;
    *a++ = "--lr", *a++ = t->lr;
    *a++ = "--warmup", *a++ = t->warmup;
    *a++ = "--lambda", *a++ = t->lambda;
    *a++ = "--alpha", *a++ = t->alpha;
    *a++ = "--seed", *a++ = t->seed;
    *a++ = "--threads", *a++ = t->threads;
    char checkpoints[PATH_BUF];
    fileio_path(checkpoints, sizeof checkpoints, train_dir, "checkpoints");
    if (access(checkpoints, F_OK) == 0) *a++ = "--resume"; /* a fresh directory starts fresh */
    if (model) *a++ = "--model", *a++ = (char *)model;
    if (o->template_path) *a++ = "--template", *a++ = (char *)o->template_path;
    *a++ = o->lora ? "--lora" : "--lora=false"; /* whatever the train preset says */
    *a = NULL;
}

/* Stages 3 and 4: `cutkit train` on the judgments, then (LoRA) `cutkit merge`. Writes the
 * path of the model the next iteration starts from into next_model. */
static int step_train(const OnlineRunOptions *o, const char *model, const char *judgments,
                      const char *dir, char *next_model, size_t next_size, CkError *err) {
    char train_dir[PATH_BUF], final_out[PATH_BUF];
    fileio_path(train_dir, sizeof train_dir, dir, "train");
    fileio_path(final_out, sizeof final_out, train_dir, o->lora ? "adapter" : "model");
    if (!stage_marked(dir, "trained")) {
        TrainArgs t;
        train_args(o, model, judgments, train_dir, &t);
        if (stage_run(&o->runner, t.argv, err) != 0) return -1;
        if (stopped(o)) return ck_fail(err, "stopped");
        if (stage_mark(dir, "trained", err) != 0) return -1;
    }
    if (!o->lora) {
        snprintf(next_model, next_size, "%s", final_out);
        return 0;
    }
    fileio_path(next_model, next_size, dir, "model");
    char config[PATH_BUF];
    fileio_path(config, sizeof config, next_model, "config.json");
    if (access(config, F_OK) == 0) return 0;
    char *argv[12], **a = argv;
    *a++ = "merge";
    if (model) *a++ = "--model", *a++ = (char *)model;
    *a++ = "--adapter", *a++ = final_out;
    *a++ = "--out", *a++ = next_model;
    *a++ = "--dtype", *a++ = (char *)(o->merge_dtype ? o->merge_dtype : "f32");
    *a = NULL;
    return stage_run(&o->runner, argv, err);
}

static int write_json(const char *path, const cJSON *obj, CkError *err) {
    char *text = cJSON_Print(obj);
    int rc =
        text ? fileio_write_atomic(path, text, strlen(text), err) : ck_fail(err, "out of memory");
    free(text);
    return rc;
}

static int write_done(const char *dir, const char *model, const JudgeCounts *c, int n_items,
                      CkError *err) {
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddNumberToObject(obj, "responses", n_items);
    cJSON_AddNumberToObject(obj, "positives", c->positives);
    cJSON_AddNumberToObject(obj, "negatives", c->negatives);
    cJSON_AddNumberToObject(obj, "judge_failures", c->failures);
    if (c->errors_known > 0) {
        cJSON_AddNumberToObject(obj, "errors_total", c->errors_total);
        cJSON_AddNumberToObject(obj, "errors_per_response",
                                (double)c->errors_total / c->errors_known);
    }
    cJSON_AddStringToObject(obj, "model", model);
    char path[PATH_BUF];
    fileio_path(path, sizeof path, dir, "done.json");
    int rc = write_json(path, obj, err);
    cJSON_Delete(obj);
    return rc;
}

/* OUT/summary.json: the done.json of every finished iteration, in order. */
static int write_summary(const OnlineRunOptions *o, CkError *err) {
    cJSON *list = cJSON_CreateArray();
    for (int k = 1; k <= o->iterations; k++) {
        char path[PATH_BUF];
        snprintf(path, sizeof path, "%s/iter-%d/done.json", o->out, k);
        CkError ignored = {{0}};
        char *text =
            access(path, F_OK) == 0 ? fileio_read_text(path, 1 << 20, NULL, &ignored) : NULL;
        cJSON *obj = text ? cJSON_Parse(text) : NULL;
        free(text);
        if (!obj) break;
        cJSON_AddNumberToObject(obj, "iteration", k);
        cJSON_AddItemToArray(list, obj);
    }
    char path[PATH_BUF];
    fileio_path(path, sizeof path, o->out, "summary.json");
    int rc = write_json(path, list, err);
    cJSON_Delete(list);
    return rc;
}

/* Reads iteration dir's done.json for the model it produced: 1 when finished, 0 when not. */
static int done_model(const char *dir, char *model, size_t size, CkError *err) {
    char path[PATH_BUF];
    fileio_path(path, sizeof path, dir, "done.json");
    if (access(path, F_OK) != 0) return 0;
    CkError ignored = {{0}};
    char *text = fileio_read_text(path, 1 << 20, NULL, &ignored);
    cJSON *obj = text ? cJSON_Parse(text) : NULL;
    free(text);
    const char *m = obj ? str_field(obj, "model") : NULL;
    if (m) snprintf(model, size, "%s", m);
    cJSON_Delete(obj);
    return m ? 1 : ck_fail(err, "%s: no \"model\"; delete it to redo", path);
}

static void log_counts(const OnlineRunOptions *o, int k, const JudgeCounts *c) {
    log_msg(o, "iteration %d: %d positive, %d negative, %d judge failures", k, c->positives,
            c->negatives, c->failures);
    if (c->errors_known > 0)
        log_msg(o, ", %.3f errors per response", (double)c->errors_total / c->errors_known);
    log_msg(o, "\n");
}

/* Iteration k in dir, from model (updated to the model it produced). */
static int run_iteration(const OnlineLoop *L, int k, const char *dir, char *model,
                         size_t model_size, CkError *err) {
    const OnlineRunOptions *o = L->o;
    char generations[PATH_BUF], judgments[PATH_BUF], next[PATH_BUF];
    if (fileio_make_dirs(dir, err) != 0) return -1;
    outdir_remove_stale_temps(dir); /* a killed run's half-written stage files */
    log_msg(o, "iteration %d/%d (%s): generating %d responses\n", k, o->iterations,
            model[0] ? model : "embedded:stories260K", o->per_iteration);
    JudgeCounts counts;
    const char *current = model[0] ? model : NULL;
    if (step_generate(L, current, (k - 1) * o->per_iteration, dir, generations, sizeof generations,
                      err) != 0)
        return -1;
    if (stopped(o)) return ck_fail(err, "stopped");
    if (step_judge(L, generations, dir, judgments, sizeof judgments, &counts, err) != 0) return -1;
    if (stopped(o)) return ck_fail(err, "stopped");
    log_counts(o, k, &counts);
    int judged = counts.positives + counts.negatives;
    /* the judge stage is finished (its failures recorded), so a rerun would stop here again */
    if (judged == 0)
        return ck_fail(err,
                       "iteration %d: nothing was judged: the judge failed on all %d responses "
                       "(see judge_failures.jsonl in %s); a rerun will not judge them again: fix "
                       "the judge, delete judgments.jsonl and judge_failures.jsonl there, then "
                       "rerun",
                       k, counts.failures, dir);
    if (step_train(o, current, judgments, dir, next, sizeof next, err) != 0 ||
        write_done(dir, next, &counts, judged + counts.failures, err) != 0)
        return -1;
    snprintf(model, model_size, "%s", next);
    return 0;
}

int online_run(const OnlineRunOptions *o, OnlineRunResult *r, CkError *err) {
    memset(r, 0, sizeof *r);
    if (strlen(o->out) > ONLINE_RUN_MAX_OUT)
        return ck_fail(err, "%s: the path is too long", o->out);
    OnlineLoop L = {o, {0}, {0}};
    if (online_load_instructions(&L.pool, o->instructions, err) != 0) return -1;
    if ((o->template_path ? template_load(&L.tpl, o->template_path, err)
                          : template_default(&L.tpl, err)) != 0) {
        online_instructions_free(&L.pool);
        return -1;
    }
    char *model = r->final_model;
    if (o->model) snprintf(model, sizeof r->final_model, "%s", o->model);
    /* OUT is this run's alone ("OUT is in use by pid N" for a second align-online); its
     * children lock their own folders below it (iter-K/train) */
    RunLock lock = {0};
    int rc = outdir_open(&lock, o->out, err);
    if (rc == 0) rc = online_config_write(o, err);
    for (int k = 1; rc == 0 && k <= o->iterations && !stopped(o); k++) {
        char dir[PATH_BUF];
        snprintf(dir, sizeof dir, "%s/iter-%d", o->out, k);
        int done = done_model(dir, model, sizeof r->final_model, err);
        if (done == 0) rc = run_iteration(&L, k, dir, model, sizeof r->final_model, err);
        if (done < 0) rc = -1;
    }
    if (rc == 0 || stopped(o)) { /* the summary also records what an interrupted run did */
        CkError summary_err = {{0}};
        if (write_summary(o, &summary_err) != 0 && rc == 0) {
            *err = summary_err;
            rc = -1;
        }
    }
    online_instructions_free(&L.pool);
    template_free(&L.tpl);
    runlock_release(&lock);
    if (rc == 0 && stopped(o)) rc = ck_fail(err, "stopped");
    return rc;
}
