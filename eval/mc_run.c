/* mc_run.c — see mc_run.h. The steps: open the model and OUT (run_open), start results.json
 * (results_start); then per task (task_run): load its data and build the items (task_load),
 * take over what items.jsonl holds (task_resume), score the rest through the sharding loop,
 * rank 0 writing each item's line as it collects it (task_score), and add the task's metrics
 * and diagnostics to results.json, and its samples to the tracker when asked (task_record);
 * at the end results.json and the harness's own files (eval/tracker.h). */
#include "eval/mc_run.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/benchmarks.h"
#include "datasets/hellaswag.h"
#include "eval/harness.h"
#include "eval/loglik.h"
#include "eval/mc_mmlu.h"
#include "eval/mc_resume.h"
#include "eval/mc_suite.h"
#include "eval/results.h"
#include "eval/shard.h"
#include "eval/tracker.h"
#include "formats/lm.h"
#include "model/matmul.h"
#include "formats/peft.h"
#include "train/dist.h"
#include "util/fileio.h"
#include "util/hash.h"
#include "util/outdir.h"
#include "util/timer.h"

#define MAX_WARNINGS 5
/* items per rank between two gathers under mpirun: items have 2 to 13 choices, so 16 average
 * out the slowest rank of a round */
#define ROUND_PER_RANK 16

void mc_run_options_init(McRunOptions *o) {
    memset(o, 0, sizeof *o);
    o->out = "eval-mc";
    o->seed = 1234;
    o->batch = 16;
    o->prefix_reuse = 1;
    o->bos = MC_BOS_VERSION;
    for (int i = 0; i < MC_TASK_COUNT; i++) o->task_shots[i] = -1;
}

int mc_run_task_shots(const McRunOptions *o, const McTask *task) {
    int s = o->task_shots[task->id];
    return s >= 0 ? s : o->shots;
}

int mc_run_options_check(const McRunOptions *o, CkError *err) {
    if (o->n_tasks < 1) return ck_fail(err, "no task given");
    for (int i = 0; i < o->n_tasks; i++)
        if (o->tasks[i]->is_truthfulqa && mc_run_task_shots(o, o->tasks[i]) > 0)
            return ck_fail(err, "--shots: %s has its 6-shot primer built in; use --shots 0",
                           o->tasks[i]->name);
    if (o->log_samples)
        for (int i = 0; i < o->n_tasks; i++)
            if (o->tasks[i]->kind == MC_KIND_HELLASWAG || o->tasks[i]->kind == MC_KIND_MMLU)
                return ck_fail(err,
                               "--log-samples: not available for %s yet (ARC and TruthfulQA "
                               "only)",
                               o->tasks[i]->name);
    /* a flag combination, refused before the model is read (a missing path is data_path's) */
    struct stat st;
    if (o->data && o->n_tasks > 1 && stat(o->data, &st) == 0 && !S_ISDIR(st.st_mode))
        return ck_fail(err, "--data %s is a file but %d tasks were asked for; give a folder",
                       o->data, o->n_tasks);
    const HarnessVersion *v;
    return harness_version_parse(o->harness_version, &v, err);
}

/* Everything the tasks share; released by run_close. */
typedef struct {
    const McRunOptions *o;
    McRunReport *report;
    LanguageModel lm;
    LoraAdapters ad;
    LoglikScorer scorer;
    int have_lm, have_ad, have_scorer;
    McPreviousList previous;  /* rank 0's; empty elsewhere */
    RunLock lock;             /* rank 0's: OUT, while the run writes it */
    int items_fd;             /* rank 0's; -1 elsewhere */
    uint64_t run_hash;        /* mc_run_fingerprint */
    cJSON *json;              /* results.json being built */
    const HarnessVersion *hv; /* the harness version followed */
    int bos;                  /* BOS before the contexts (o->bos, or hv's with this tokenizer) */
    Tracker tracker;          /* rank 0's: the harness's own files (eval/tracker.h) */
} McRun;

/* One task's items and scores; released by task_free. */
typedef struct {
    McRun *run;
    const McTask *task;
    char test_path[4096];
    McDocSet test, train;
    HellaswagSet hs;       /* HellaSwag: the evaluated file as read (variant, sha256) */
    McMmluData mmlu;       /* MMLU: the subjects' test and dev rows */
    int shots;             /* exemplars per question */
    int fewshot_from_test; /* 1: exemplars drawn from the evaluated split (no train given) */
    McItem *items;
    int n_items;
    McItemResult *results; /* [n_items], complete on rank 0 after the loop */
    int *todo;             /* the items still to score */
    int to_score, n_resumed, scored, warnings;
    long tokens;
    double t0, last;
} McTaskRun;

/* ---- packing a result for the gather ---------------------------------------------------- */

/* Packs r: sizes, then every array as it lies in memory (the log-likelihoods bit for bit). */
static int pack_result(StrBuf *b, const McItemResult *r, CkError *err) {
    const int n = r->n_choices, n_cont = r->cont_offsets[n];
    const size_t ni = sizeof(int) * (size_t)n;
    int head[5] = {r->doc_index, n, r->gold, r->n_ctx_tokens, n_cont};
    if (shard_put(b, head, sizeof head, err) || shard_put(b, r->labels, ni, err) ||
        shard_put(b, r->ll, sizeof(double) * (size_t)n, err) ||
        shard_put(b, r->n_tokens, ni, err) || shard_put(b, r->n_chars, ni, err) ||
        shard_put(b, r->n_bytes, ni, err) || shard_put(b, r->is_greedy, ni, err) ||
        shard_put(b, r->fallback, ni, err) || shard_put(b, r->truncated, ni, err) ||
        shard_put(b, r->cont_offsets, ni + sizeof(int), err) ||
        shard_put(b, r->cont_tokens, sizeof(int) * (size_t)n_cont, err))
        return -1;
    return 0;
}

/* Reads back one result packed by pack_result into r (allocated here), checking that it is
 * item `doc` with a sane shape. */
static int unpack_result(ShardReader *rd, int doc, McItemResult *r, CkError *err) {
    int head[5];
    memset(r, 0, sizeof *r);
    if (shard_get(rd, head, sizeof head, err) != 0) return -1;
    const int n = head[1], n_cont = head[4];
    if (head[0] != doc || n < 0 || n > 1 << 20 || n_cont < 0 || n_cont > 1 << 28)
        return ck_fail(err, "gathered results: expected doc %d, found doc %d with %d choices", doc,
                       head[0], n);
    if (mc_item_result_alloc(r, n, n_cont, err) != 0) return -1;
    r->doc_index = head[0];
    r->gold = head[2];
    r->n_ctx_tokens = head[3];
    const size_t ni = sizeof(int) * (size_t)n;
    if (shard_get(rd, r->labels, ni, err) ||
        shard_get(rd, r->ll, sizeof(double) * (size_t)n, err) ||
        shard_get(rd, r->n_tokens, ni, err) || shard_get(rd, r->n_chars, ni, err) ||
        shard_get(rd, r->n_bytes, ni, err) || shard_get(rd, r->is_greedy, ni, err) ||
        shard_get(rd, r->fallback, ni, err) || shard_get(rd, r->truncated, ni, err) ||
        shard_get(rd, r->cont_offsets, ni + sizeof(int), err) ||
        shard_get(rd, r->cont_tokens, sizeof(int) * (size_t)n_cont, err)) {
        mc_item_result_free(r);
        return -1;
    }
    return 0;
}

/* ---- one task --------------------------------------------------------------------------- */

/* The data file of a task: o->data (a file for one task, or a folder), else the shipped one. */
static int data_path(const char *override, const char *file, int n_tasks, char *out, size_t cap,
                     CkError *err) {
    if (override) {
        struct stat st;
        if (stat(override, &st) != 0) return ck_fail(err, "%s: %s", override, strerror(errno));
        if (S_ISDIR(st.st_mode)) {
            snprintf(out, cap, "%s/%s", override, file);
            return 0;
        }
        if (n_tasks > 1)
            return ck_fail(err,
                           "--data %s is a file but several tasks were asked for; give a "
                           "folder holding %s",
                           override, file);
        snprintf(out, cap, "%s", override);
        return 0;
    }
    return benchmarks_data_path(file, out, cap, err);
}

/* Every rank must have built the same items (same options and data): a hash of their count and
 * fingerprints agrees across ranks, else the gathered files would mix two evaluations. */
static int check_same_items(const McTaskRun *t, CkError *err) {
    if (dist_size() == 1) return 0;
    uint64_t h = hash_fnv1a64(HASH_FNV1A64_OFFSET, &t->n_items, sizeof t->n_items);
    for (int i = 0; i < t->n_items; i++) {
        uint64_t f = mc_item_fingerprint(t->run->run_hash, &t->items[i]);
        h = hash_fnv1a64(h, &f, sizeof f);
    }
    int same = 0;
    if (dist_same_u64(h, &same, err) != 0) return -1;
    if (!same)
        return ck_fail(err,
                       "%s: the ranks built different items (%d here): give every rank the "
                       "same model, data and flags",
                       t->task->name, t->n_items);
    return 0;
}

/* 1 when path exists and is a folder */
static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* 1 when path exists */
static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* HellaSwag's file: --hellaswag-data, else --data (a file for one task; a folder holding
 * hellaswag_val.jsonl, else the llama.cpp copy's name), else the shipped llama.cpp copy. */
static int hellaswag_path(const McRunOptions *o, char *out, size_t cap, CkError *err) {
    if (o->hellaswag_data) {
        snprintf(out, cap, "%s", o->hellaswag_data);
        return exists(out) ? 0 : ck_fail(err, "--hellaswag-data %s: %s", out, strerror(ENOENT));
    }
    if (o->data && is_dir(o->data)) {
        snprintf(out, cap, "%s/%s", o->data, mc_task_get(MC_HELLASWAG)->test_file);
        if (!exists(out)) snprintf(out, cap, "%s/%s", o->data, HELLASWAG_LLAMACPP_FILE);
        return 0;
    }
    if (o->data) return data_path(o->data, "", o->n_tasks, out, cap, err);
    return benchmarks_data_path(HELLASWAG_LLAMACPP_FILE, out, cap, err);
}

/* MMLU's folder: --mmlu-data, else --data when it holds the CSV folders (or DIR/mmlu does),
 * else NULL (mc_mmlu_load says how to give it). */
static const char *mmlu_dir(const McRunOptions *o, char *buf, size_t cap) {
    if (o->mmlu_data) return o->mmlu_data;
    if (!o->data || !is_dir(o->data)) return NULL;
    const char *probe[] = {"test", "data/test", "mmlu"};
    for (int i = 0; i < 3; i++) {
        snprintf(buf, cap, "%s/%s", o->data, probe[i]);
        if (is_dir(buf)) {
            snprintf(buf, cap, i < 2 ? "%s" : "%s/mmlu", o->data);
            return buf;
        }
    }
    return NULL;
}

/* Loads the HellaSwag file (the task becomes the variant its format is) and, for shots, the
 * canonical train split when given; otherwise exemplars come from the evaluated split. */
static int load_hellaswag(McTaskRun *t, CkError *err) {
    const McRunOptions *o = t->run->o;
    if (hellaswag_path(o, t->test_path, sizeof t->test_path, err) != 0 ||
        hellaswag_load(&t->hs, t->test_path, HELLASWAG_AUTO, err) != 0 ||
        hellaswag_to_mc_docs(&t->hs, &t->test, err) != 0)
        return -1;
    t->task = mc_task_find(t->hs.task);
    FILE *log = dist_rank() == 0 ? o->log : NULL; /* once, not per rank */
    if (log && t->hs.lossy)
        fprintf(log,
                "cutkit eval mc: %s is llama.cpp's lossy copy of HellaSwag: scored and "
                "reported as hellaswag_llamacpp, not the harness's hellaswag\n",
                t->test_path);
    if (log && t->hs.warning[0]) fprintf(log, "cutkit eval mc: warning: %s\n", t->hs.warning);
    if (t->shots == 0) return 0;
    char train[4096] = "";
    if (o->train_data && !is_dir(o->train_data))
        snprintf(train, sizeof train, "%s", o->train_data);
    else if (o->train_data)
        snprintf(train, sizeof train, "%s/%s", o->train_data, t->task->train_file);
    if (train[0] && exists(train)) {
        HellaswagSet hs_train = {0};
        int rc = hellaswag_load(&hs_train, train, HELLASWAG_CANONICAL, err);
        if (rc == 0) rc = hellaswag_to_mc_docs(&hs_train, &t->train, err);
        hellaswag_free(&hs_train);
        return rc;
    }
    t->fewshot_from_test = 1;
    if (log)
        fprintf(log,
                "cutkit eval mc: warning: %s: no train split (--train-data FILE: the "
                "canonical hellaswag_train.jsonl); the %d exemplars come from the "
                "validation docs, the doc itself excluded\n",
                t->task->name, t->shots);
    return 0;
}

/* Loads ARC or TruthfulQA test docs (and ARC's few-shot train docs). */
static int load_arc_tqa(McTaskRun *t, CkError *err) {
    const McRunOptions *o = t->run->o;
    const McTask *task = t->task;
    if (data_path(o->data, task->test_file, o->n_tasks, t->test_path, sizeof t->test_path, err))
        return -1;
    int loaded =
        task->is_truthfulqa
            ? benchmarks_load_truthfulqa(&t->test, t->test_path,
                                         task->id == MC_TRUTHFULQA_MC1 ? TQA_MC1 : TQA_MC2, err)
            : benchmarks_load_arc(&t->test, t->test_path, err);
    if (loaded != 0) return -1;
    if (t->shots > 0 && task->train_file) {
        char train_path[4096];
        if (data_path(o->train_data, task->train_file, 1, train_path, sizeof train_path, err) ||
            benchmarks_load_arc(&t->train, train_path, err))
            return -1;
    }
    return 0;
}

/* Loads the task's test (and few-shot) docs and builds its items. */
static int task_load(McTaskRun *t, CkError *err) {
    const McRunOptions *o = t->run->o;
    const HarnessVersion *hv = t->run->hv;
    int rc;
    t->shots = mc_run_task_shots(o, t->task);
    if (t->task->kind == MC_KIND_MMLU) {
        char buf[4096];
        const char *dir = mmlu_dir(o, buf, sizeof buf);
        rc = mc_mmlu_load(&t->mmlu, dir, o->mmlu_subjects, (MmluPrompt)hv->mmlu_prompt, err);
        if (rc == 0) snprintf(t->test_path, sizeof t->test_path, "%s", dir);
        if (rc == 0)
            rc = mc_mmlu_build_items(t->task, &t->mmlu, t->shots, o->limit, &t->items, &t->n_items,
                                     err);
    } else {
        rc = t->task->kind == MC_KIND_HELLASWAG ? load_hellaswag(t, err) : load_arc_tqa(t, err);
        McBuildOptions b = {t->shots, o->seed, o->limit, hv->draw, t->fewshot_from_test};
        if (rc == 0)
            rc = mc_build_items_ex(t->task, &t->test, &t->train, &b, &t->items, &t->n_items, err);
    }
    if (rc != 0 || check_same_items(t, err) != 0) return -1;
    size_t n = (size_t)(t->n_items > 0 ? t->n_items : 1);
    t->results = calloc(n, sizeof(McItemResult));
    t->todo = calloc(n, sizeof(int));
    return t->results && t->todo ? 0 : ck_fail(err, "out of memory");
}

/* Takes over the items that an earlier run scored with the same model, prompt and choices
 * (rank 0 alone read items.jsonl; the other ranks learn from it which are done) and lists the
 * others in t->todo. */
static int task_resume(McTaskRun *t, CkError *err) {
    McPreviousList *prev = &t->run->previous;
    int *done = calloc((size_t)(t->n_items > 0 ? t->n_items : 1), sizeof(int));
    if (!done) return ck_fail(err, "out of memory");
    for (int i = 0; i < prev->n; i++) {
        McPrevious *p = &prev->v[i];
        int d = p->r.doc_index;
        if (p->used || strcmp(p->task, t->task->name) != 0 || d < 0 || d >= t->n_items || done[d])
            continue;
        if (p->fingerprint != mc_item_fingerprint(t->run->run_hash, &t->items[d])) {
            free(done);
            return ck_fail(err,
                           "%s/items.jsonl: %s doc %d was scored with another model, adapter, "
                           "BOS setting, prompt or data; use a new --out or drop --resume",
                           t->run->o->out, t->task->name, d);
        }
        t->results[d] = p->r;
        p->used = 1;
        done[d] = 1;
        t->n_resumed++;
    }
    FILE *log = t->run->o->log;
    if (t->n_resumed > 0 && log)
        fprintf(log, "cutkit eval mc: %s: %d of %d items already in items.jsonl\n", t->task->name,
                t->n_resumed, t->n_items);
    int rc = dist_bcast_bytes(done, sizeof(int) * (size_t)t->n_items, 0, err);
    for (int i = 0; rc == 0 && i < t->n_items; i++)
        if (!done[i]) t->todo[t->to_score++] = i;
    free(done);
    return rc;
}

/* The loop's work: scores item todo[k] and packs its result. */
static int score_work(void *ctx, int64_t k, StrBuf *out, CkError *err) {
    McTaskRun *t = ctx;
    McRun *run = t->run;
    McItemResult r;
    if (mc_score_item(&run->scorer, &run->lm.tokenizer, &t->items[t->todo[k]], run->bos, &r, err) !=
        0)
        return ck_wrap(err, "%s", t->task->name);
    int rc = pack_result(out, &r, err);
    mc_item_result_free(&r);
    return rc;
}

/* Appends rec and a newline to items.jsonl in one write() to the O_APPEND file, so that a
 * killed run leaves whole lines. */
static int write_line(int fd, const cJSON *rec, CkError *err) {
    char *text = rec ? cJSON_PrintUnformatted(rec) : NULL;
    if (!text) return ck_fail(err, "out of memory");
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return ck_fail(err, "out of memory");
    }
    line[n] = '\n';
    ssize_t w = write(fd, line, n + 1);
    free(line);
    if (w != (ssize_t)(n + 1))
        return ck_fail(err, "items.jsonl: write failed: %s", strerror(errno));
    return 0;
}

static void format_eta(double s, char *buf, size_t cap) {
    if (!isfinite(s) || s < 0)
        snprintf(buf, cap, "?");
    else if (s < 60)
        snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, cap, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, cap, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

/* Counts item i's tokens and warns (the first MAX_WARNINGS times) about choices whose
 * continuation was encoded alone. */
static void note_result(McTaskRun *t, int i) {
    const McItemResult *r = &t->results[i];
    FILE *log = t->run->o->log;
    for (int c = 0; c < r->n_choices; c++) {
        t->tokens += r->n_tokens[c];
        if (r->fallback[c] && t->warnings++ < MAX_WARNINGS && log)
            fprintf(log,
                    "cutkit eval mc: warning: %s doc %d (%s) choice %d: a token spans the "
                    "context/continuation join; the continuation was encoded alone\n",
                    t->task->name, i, t->items[i].doc->id, c);
    }
    t->tokens += r->n_ctx_tokens;
}

/* Progress every 2 s and at the end: items, items/s, tok/s, ETA. */
static void report_progress(McTaskRun *t) {
    double now = timer_seconds();
    FILE *log = t->run->o->log;
    if (!log || (now - t->last < 2.0 && t->scored < t->to_score)) return;
    double rate = t->scored / (now - t->t0 > 0 ? now - t->t0 : 1e-9);
    char eta[32];
    format_eta((t->to_score - t->scored) / rate, eta, sizeof eta);
    fprintf(log, "cutkit eval mc: %s %d/%d items, %.1f items/s, %.0f tok/s, ETA %s\n",
            t->task->name, t->n_resumed + t->scored, t->n_items, rate, t->tokens / (now - t->t0),
            eta);
    t->last = now;
}

/* The loop's collect (rank 0, in item order): keeps item todo[k]'s result and writes its
 * items.jsonl line. */
static int score_collect(void *ctx, int64_t k, ShardReader *in, CkError *err) {
    McTaskRun *t = ctx;
    const int i = t->todo[k];
    const McItem *it = &t->items[i];
    if (unpack_result(in, it->doc_index, &t->results[i], err) != 0) return -1;
    note_result(t, i);
    uint64_t fp = mc_item_fingerprint(t->run->run_hash, it);
    cJSON *rec = results_mc_item_json(t->task->name, it, &t->results[i], fp);
    int rc = write_line(t->run->items_fd, rec, err);
    cJSON_Delete(rec);
    if (rc != 0) return -1;
    t->scored++;
    report_progress(t);
    return 0;
}

/* Scores the items in todo, every rank its share of each round. */
static int task_score(McTaskRun *t, CkError *err) {
    t->t0 = t->last = timer_seconds();
    ShardLoop loop = {t->to_score, ROUND_PER_RANK, t, score_work, score_collect, NULL};
    return shard_run(&loop, err);
}

/* The task's truncation counts: choices (requests) whose input lost tokens on the left, and
 * items with at least one; and the join fallbacks. */
static void count_truncated(const McTaskRun *t, int *fallbacks, int *requests, int *items) {
    *fallbacks = *requests = *items = 0;
    for (int i = 0; i < t->n_items; i++) {
        int tr = 0;
        for (int c = 0; c < t->results[i].n_choices; c++) {
            *fallbacks += t->results[i].fallback[c];
            *requests += t->results[i].truncated[c] > 0;
            tr |= t->results[i].truncated[c] > 0;
        }
        *items += tr;
    }
}

/* HellaSwag's provenance in config.hellaswag_data: the variant, the file's sha256 against the
 * published one, and where the exemplars came from. */
static void record_hellaswag(const McTaskRun *t, cJSON *cfg) {
    cJSON *h = cJSON_AddObjectToObject(cfg, "hellaswag_data");
    cJSON_AddStringToObject(h, "task", t->task->name);
    cJSON_AddStringToObject(h, "variant",
                            t->hs.lossy ? "llama.cpp copy (klosax; lossy: ctx_b not capitalised, "
                                          "some tags kept): not the harness's hellaswag"
                                        : "canonical hellaswag_val.jsonl (rowanz)");
    cJSON_AddStringToObject(h, "sha256", t->hs.sha256);
    cJSON_AddBoolToObject(h, "sha256_matches_published", t->hs.sha256_match);
    cJSON_AddStringToObject(h, "published_sha256",
                            t->hs.lossy ? HELLASWAG_LLAMACPP_SHA256 : HELLASWAG_VAL_SHA256);
    if (t->hs.warning[0]) cJSON_AddStringToObject(h, "warning", t->hs.warning);
    cJSON_AddStringToObject(h, "fewshot_split",
                            t->shots == 0          ? "none"
                            : t->fewshot_from_test ? "validation (no train split given; the doc "
                                                     "itself excluded)"
                                                   : "train");
}

/* Adds the task's entries (MMLU: its subjects and groups) to results.json. */
static int record_results(McTaskRun *t, McMetrics *m, CkError *err) {
    McRun *run = t->run;
    if (t->task->kind == MC_KIND_MMLU)
        return mc_mmlu_record(run->json, t->task, run->hv, t->items, t->results, t->n_items,
                              t->shots, &t->mmlu, m, err);
    mc_metrics(t->task, run->hv->mc2, t->results, t->n_items, m);
    if (results_mc_add_task(run->json, t->task, run->hv, m, t->shots, t->test.n, t->n_items) != 0)
        return ck_fail(err, "out of memory");
    return 0;
}

/* Adds the task's metrics (as harness version hv computes them), its config, version, sample
 * counts, template hash, data path and diagnostics to results.json (rank 0), keeps its
 * per-sample records when asked, logs its headline numbers and fills its report. */
static int task_record(McTaskRun *t, McTaskReport *rep, CkError *err) {
    const McTask *task = t->task;
    McRun *run = t->run;
    cJSON *root = run->json;
    McMetrics *m = &rep->metrics;
    if (record_results(t, m, err) != 0) return -1;
    if (run->o->log_samples && tracker_add_samples(&run->tracker, task, run->hv->mc2, t->test_path,
                                                   t->items, t->results, t->n_items, err) != 0)
        return -1;
    int fallbacks, requests, truncated;
    count_truncated(t, &fallbacks, &requests, &truncated);
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    uint64_t h = mc_prompt_hash(task);
    if (task->kind == MC_KIND_MMLU) { /* the template's name: its strings are mmlu_prompt.c's */
        const char *name = mmlu_prompt_name(t->mmlu.prompt);
        h = hash_fnv1a64(h, name, strlen(name) + 1);
    }
    char hex[20];
    snprintf(hex, sizeof hex, "%016" PRIx64, h);
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(cfg, "template_hash"), task->name,
                            hex);
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(cfg, "data"), task->name,
                            t->test_path);
    if (task->kind == MC_KIND_HELLASWAG) record_hellaswag(t, cfg);
    cJSON *diag =
        cJSON_AddObjectToObject(cJSON_GetObjectItemCaseSensitive(root, "diagnostics"), task->name);
    cJSON_AddNumberToObject(diag, "join_fallbacks", fallbacks);
    cJSON_AddNumberToObject(diag, "items_truncated", truncated);
    cJSON_AddNumberToObject(diag, "requests_truncated", requests);
    FILE *log = t->run->o->log;
    if (log) {
        fprintf(log, "cutkit eval mc: %s: %s %.4f", task->name, m->m[0].name, m->m[0].value);
        if (m->n_metrics > 1) fprintf(log, ", %s %.4f", m->m[1].name, m->m[1].value);
        fprintf(log, " (n %d, %d-shot, %d of %d requests truncated)\n", t->n_items, t->shots,
                requests, t->n_items > 0 ? t->n_items * t->results[0].n_choices : 0);
    }
    return 0;
}

static void task_free(McTaskRun *t) {
    if (t->results)
        for (int i = 0; i < t->n_items; i++) mc_item_result_free(&t->results[i]);
    free(t->results);
    free(t->todo);
    mc_items_free(t->items, t->n_items);
    benchmarks_free(&t->test);
    benchmarks_free(&t->train);
    hellaswag_free(&t->hs);
    mc_mmlu_free(&t->mmlu);
}

static int task_run(McRun *run, const McTask *task, McTaskReport *rep, CkError *err) {
    McTaskRun t = {0};
    t.run = run;
    t.task = task;
    int rc = task_load(&t, err);
    if (rc == 0) rc = task_resume(&t, err);
    if (rc == 0) rc = task_score(&t, err);
    if (rc == 0 && dist_rank() == 0) { /* rank 0 holds the results and writes results.json */
        FILE *log = run->o->log;
        if (t.warnings > MAX_WARNINGS && log)
            fprintf(log,
                    "cutkit eval mc: warning: %s: %d continuations in all were encoded alone\n",
                    task->name, t.warnings);
        rc = task_record(&t, rep, err);
    }
    rep->task = t.task;
    rep->shots = t.shots;
    rep->n_items = t.n_items;
    rep->n_resumed = t.n_resumed;
    task_free(&t);
    return rc;
}

/* ---- the run ---------------------------------------------------------------------------- */

/* Opens the model (with its adapter) and the scorer; on rank 0 first OUT: the folder,
 * created and locked (a second writer is refused before the model is read; the other ranks
 * are then ended by the command's abort path), then the records to resume from and
 * items.jsonl for appending. */
static int run_open(McRun *run, CkError *err) {
    const McRunOptions *o = run->o;
    /* a killed run's half-written files go too */
    if (dist_rank() == 0 && outdir_open(&run->lock, o->out, err) != 0) return -1;
    if (lm_open_held(&run->lm, o->model, o->tokenizer, o->base_dtype, err) != 0) return -1;
    run->have_lm = 1;
    if (o->adapter) {
        if (peft_load(&run->ad, &run->lm.model, o->adapter, err) != 0) return -1;
        run->have_ad = 1;
    }
    if (loglik_scorer_init(&run->scorer, &run->lm.model, run->have_ad ? &run->ad : NULL, o->batch,
                           o->prefix_reuse ? LOGLIK_REUSE_AUTO : LOGLIK_REUSE_OFF, err) != 0)
        return -1;
    run->have_scorer = 1;
    /* BOS as asked, else as the harness version does with this tokenizer */
    if (harness_version_parse(o->harness_version, &run->hv, err) != 0) return -1;
    run->bos = o->bos;
    if (o->bos == MC_BOS_VERSION && harness_bos(run->hv, &run->lm.tokenizer, &run->bos, err) != 0)
        return -1;
    McRunReport *rep = run->report;
    rep->harness_version = run->hv->name;
    rep->bos = run->bos;
    if (fileio_path(rep->items_path, sizeof rep->items_path, o->out, "items.jsonl") != 0 ||
        fileio_path(rep->results_path, sizeof rep->results_path, o->out, "results.json") != 0)
        return ck_fail(err, "%s: path too long", o->out);
    run->run_hash =
        mc_run_fingerprint(run->lm.model_source, run->lm.tokenizer_source, o->adapter, run->bos);
    if (dist_rank() != 0) return 0; /* OUT is rank 0's alone */
    if (o->resume && mc_previous_read(&run->previous, rep->items_path, o->log, err) != 0) return -1;
    run->items_fd =
        open(rep->items_path, O_WRONLY | O_CREAT | O_APPEND | (o->resume ? 0 : O_TRUNC), 0644);
    if (run->items_fd < 0) return ck_fail(err, "%s: %s", rep->items_path, strerror(errno));
    /* the harness names its files after the adapter when there is one (peft= before
     * pretrained=) */
    return tracker_init(&run->tracker, o->out, o->adapter ? o->adapter : run->lm.model_source, err);
}

/* results.json before the tasks: empty sections and the run's config. */
static cJSON *results_start(const McRun *run) {
    const McRunOptions *o = run->o;
    cJSON *json = results_mc_root();
    if (!json) return NULL;
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(json, "config");
    cJSON_AddStringToObject(cfg, "model", run->lm.model_source);
    cJSON_AddStringToObject(cfg, "tokenizer", run->lm.tokenizer_source);
    if (o->adapter)
        cJSON_AddStringToObject(cfg, "adapter", o->adapter);
    else
        cJSON_AddNullToObject(cfg, "adapter");
    cJSON_AddStringToObject(cfg, "harness_version", run->hv->name);
    cJSON_AddBoolToObject(cfg, "bos", run->bos);
    if (o->suite) { /* shots per task: the n-shot section */
        cJSON_AddStringToObject(cfg, "suite", o->suite);
        cJSON_AddNullToObject(cfg, "num_fewshot");
    } else {
        cJSON_AddNumberToObject(cfg, "num_fewshot", o->shots);
    }
    cJSON_AddNumberToObject(cfg, "fewshot_seed", (double)o->seed);
    if (o->limit > 0)
        cJSON_AddNumberToObject(cfg, "limit", o->limit);
    else
        cJSON_AddNullToObject(cfg, "limit");
    cJSON_AddNumberToObject(cfg, "max_length", run->lm.model.config.seq_len);
    cJSON_AddBoolToObject(cfg, "prefix_reuse", o->prefix_reuse);
    cJSON_AddNumberToObject(cfg, "batch_size", o->batch);
    cJSON_AddStringToObject(cfg, "compute", matmul_compute_name()); /* fp32, or bf16 products */
    cJSON_AddStringToObject(cfg, "matmul_backend", matmul_backend_name()); /* what ran them */
    cJSON_AddStringToObject(cfg, "base_dtype", model_held_name(o->base_dtype));
    cJSON_AddStringToObject(cfg, "cutkit_version", CUTKIT_VERSION);
    cJSON_AddObjectToObject(cfg, "template_hash");
    cJSON_AddObjectToObject(cfg, "data");
    return json;
}

static void run_close(McRun *run) {
    if (run->items_fd >= 0) close(run->items_fd);
    cJSON_Delete(run->json);
    mc_previous_free(&run->previous);
    if (run->have_scorer) loglik_scorer_free(&run->scorer);
    if (run->have_ad) lora_free(&run->ad);
    if (run->have_lm) lm_close(&run->lm);
    tracker_free(&run->tracker);
    runlock_release(&run->lock);
}

int mc_run(const McRunOptions *o, McRunReport *report, CkError *err) {
    memset(report, 0, sizeof *report);
    if (mc_run_options_check(o, err) != 0) return -1;
    McRun run;
    memset(&run, 0, sizeof run);
    run.o = o;
    run.report = report;
    run.items_fd = -1;
    int rc = run_open(&run, err);
    if (rc == 0 && !(run.json = results_start(&run))) rc = ck_fail(err, "out of memory");
    for (int i = 0; rc == 0 && i < o->n_tasks; i++) {
        rc = task_run(&run, o->tasks[i], &report->tasks[i], err);
        report->n_tasks = i + 1;
    }
    if (rc == 0 && dist_rank() == 0) {
        results_mc_finish(run.json);
        rc = results_write_json(report->results_path, run.json, err);
        if (rc == 0) rc = tracker_write(&run.tracker, run.json, err);
        if (rc == 0)
            snprintf(report->harness_path, sizeof report->harness_path, "%s",
                     run.tracker.results_path);
        if (rc == 0 && o->suite) rc = mc_suite_write(o, report, run.json, err);
        report->wrote = rc == 0;
    }
    run_close(&run);
    return rc;
}
