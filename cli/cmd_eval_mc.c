/* cmd_eval_mc.c — `cutkit eval mc`: multiple-choice scoring (ARC, TruthfulQA MC1/MC2) as
 * lm-evaluation-harness computes it; OUT/items.jsonl as items finish, OUT/results.json at
 * the end. Under mpirun the items are sharded over the ranks (cli/shard.h) and rank 0, which
 * alone reads and writes OUT, gathers every item's scores bit for bit, so the files equal the
 * one-process run's. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/benchmarks.h"
#include "cli/commands.h"
#include "train/dist.h"
#include "util/fileio.h"
#include "formats/lm.h"
#include "eval/loglik.h"
#include "eval/mc.h"
#include "formats/peft.h"
#include "eval/results.h"
#include "cli/shard.h"
#include "util/threads.h"
#include "util/timer.h"

static struct {
    const char *task, *model, *tokenizer, *adapter, *data, *train_data, *out;
    int shots, limit, batch, threads, resume, no_prefix_reuse, no_bos;
    uint64_t seed;
} opt;

static FlagSpec FLAGS[] = {
    {"task", FLAG_STRING, &opt.task, NULL, 0, -1,
     "comma-separated: arc_challenge, arc_easy, truthfulqa_mc1, truthfulqa_mc2 (required)"},
    {"model", FLAG_STRING, &opt.model, NULL, 0, -1,
     "llama2.c .bin or Hugging Face folder; default: embedded stories260K"},
    {"tokenizer", FLAG_STRING, &opt.tokenizer, NULL, 0, -1, "tokenizer (default: the model's)"},
    {"adapter", FLAG_STRING, &opt.adapter, NULL, 0, -1, "PEFT LoRA adapter folder to apply"},
    {"data", FLAG_STRING, &opt.data, NULL, 0, -1,
     "test data: a file (one task) or a folder holding the datasets/data file names"},
    {"train-data", FLAG_STRING, &opt.train_data, NULL, 0, -1,
     "ARC train split for --shots (a file or folder; default: the shipped one)"},
    {"shots", FLAG_INT, &opt.shots, "0", 0, 100, "few-shot exemplars per ARC question"},
    {"seed", FLAG_U64, &opt.seed, "1234", 1, 0, "few-shot sampler seed (the harness's default)"},
    {"limit", FLAG_INT, &opt.limit, "0", 0, 1e9, "score only the first N questions (0: all)"},
    {"out", FLAG_STRING, &opt.out, "eval-mc", 0, -1, "output folder"},
    {"resume", FLAG_BOOL, &opt.resume, NULL, 0, -1, "skip items already in OUT/items.jsonl"},
    {"batch", FLAG_INT, &opt.batch, "16", 1, 4096,
     "sequences per forward when a choice is scored on its own"},
    {"threads", FLAG_INT, &opt.threads, "0", 0, 1024, "threads (0: one per core)"},
    {"no-prefix-reuse", FLAG_BOOL, &opt.no_prefix_reuse, NULL, 0, -1,
     "score every context+choice separately (no shared context pass)"},
    {"no-bos", FLAG_BOOL, &opt.no_bos, NULL, 0, -1,
     "no BOS before the context (lm-eval >= 0.4's default add_bos_token=False)"},
};

static const CommandSpec SPEC = {
    "eval mc",
    "multiple-choice scoring: ARC, TruthfulQA MC1/MC2 as lm-evaluation-harness",
    "--task arc_challenge[,truthfulqa_mc2,...] [--model PATH] [--out DIR] [--resume]",
    "Scores every choice of every question as the harness's loglikelihood requests (joint\n"
    "encoding split at the context, left truncation to the model's context, BOS first unless\n"
    "--no-bos) and reports acc, acc_norm (by characters), acc_bytes and acc_per_token with\n"
    "standard errors (TruthfulQA MC2: the mass on the true answers). Writes OUT/items.jsonl\n"
    "(one line per question as it finishes) and OUT/results.json; progress on stderr.\n"
    "Sharded under MPI (a build with -DCUTKIT_MPI=ON): `mpirun -np K cutkit eval mc ...`\n"
    "splits the items over K processes; rank 0 gathers them and writes the same files.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_eval_mc_spec(void) {
    return &SPEC;
}

#define MAX_TASKS    8
#define MAX_WARNINGS 5
/* items per rank between two gathers under mpirun: few enough that a killed run loses little
 * and rank 0 reports progress, enough that waiting for the slowest rank of a round (items
 * have 2 to 13 choices) averages out */
#define ROUND_PER_RANK 16

/* Records read back from items.jsonl for --resume. */
typedef struct {
    char task[64];
    uint64_t fingerprint;
    int used;
    McItemResult r;
} Previous;

typedef struct {
    Previous *v;
    int n, cap;
} PreviousList;

static void previous_free(PreviousList *p) {
    for (int i = 0; i < p->n; i++)
        if (!p->v[i].used) mc_item_result_free(&p->v[i].r);
    free(p->v);
    memset(p, 0, sizeof *p);
}

/* Reads path's complete lines into p; a final line without its newline (a killed run) is cut
 * off the file. A missing file is an empty list. */
static int previous_read(PreviousList *p, const char *path, CkError *err) {
    memset(p, 0, sizeof *p);
    size_t size = 0;
    if (access(path, F_OK) != 0) return 0;
    char *text = fileio_read_text(path, (size_t)1 << 32, &size, err);
    if (!text) return -1;
    size_t complete = size;
    while (complete > 0 && text[complete - 1] != '\n') complete--;
    if (complete < size) {
        fprintf(stderr, "cutkit eval mc: %s: dropping an incomplete last line (%zu bytes)\n", path,
                size - complete);
        if (truncate(path, (off_t)complete) != 0) {
            free(text);
            return ck_fail(err, "%s: cannot truncate: %s", path, strerror(errno));
        }
    }
    int line = 0, rc = 0;
    for (size_t pos = 0; pos < complete && rc == 0;) {
        char *nl = memchr(text + pos, '\n', complete - pos);
        size_t end = (size_t)(nl - text);
        line++;
        char where[4200];
        snprintf(where, sizeof where, "%s:%d", path, line);
        cJSON *rec = cJSON_ParseWithLength(text + pos, end - pos);
        pos = end + 1;
        if (!rec) {
            rc = ck_fail(err, "%s: not valid JSON", where);
            break;
        }
        if (p->n == p->cap) {
            int ncap = p->cap ? p->cap * 2 : 256;
            Previous *nv = realloc(p->v, sizeof(Previous) * (size_t)ncap);
            if (!nv) {
                cJSON_Delete(rec);
                rc = ck_fail(err, "out of memory");
                break;
            }
            p->v = nv;
            p->cap = ncap;
        }
        Previous *e = &p->v[p->n];
        memset(e, 0, sizeof *e);
        const char *task = NULL;
        rc = results_mc_item_parse(rec, &task, &e->fingerprint, &e->r, where, err);
        if (rc == 0) {
            snprintf(e->task, sizeof e->task, "%s", task);
            p->n++;
        }
        cJSON_Delete(rec);
    }
    free(text);
    if (rc) previous_free(p);
    return rc;
}

/* The data file of a task: --data (a file for one task, or a folder), else the shipped one. */
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

/* Everything one task needs, released by task_run's end. */
typedef struct {
    const LanguageModel *lm;
    LoglikScorer *scorer;
    PreviousList *previous;
    int items_fd;
    uint64_t run_hash;
    cJSON *root;
    int n_tasks;
} RunContext;

static uint64_t template_hash(const McTask *task) {
    uint64_t h = RESULTS_HASH_INIT;
    if (task->is_truthfulqa) {
        h = results_hash_str(h, MC_TRUTHFULQA_PRIMER);
        h = results_hash_str(h, "\n\nQ: {question}\nA:");
    } else {
        h = results_hash_str(h, "Question: {question}\nAnswer:");
        h = results_hash_str(h, "\n\n");
    }
    return results_hash_str(h, " ");
}

static uint64_t item_fingerprint(uint64_t run_hash, const McItem *it) {
    uint64_t h = results_hash_str(run_hash, it->context);
    for (int i = 0; i < it->doc->n_choices; i++) h = results_hash_str(h, it->doc->choices[i]);
    return h;
}

static int write_line(int fd, const cJSON *rec, CkError *err) {
    char *text = cJSON_PrintUnformatted(rec);
    if (!text) return ck_fail(err, "out of memory");
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return ck_fail(err, "out of memory");
    }
    line[n] = '\n';
    /* one write() of the whole line to an O_APPEND file: a killed run leaves whole lines */
    ssize_t w = write(fd, line, n + 1);
    free(line);
    if (w != (ssize_t)(n + 1))
        return ck_fail(err, "items.jsonl: write failed: %s", strerror(errno));
    return 0;
}

/* Packs r for the gather to rank 0: sizes, then every array as it lies in memory (the
 * log-likelihoods bit for bit). */
static int pack_result(ShardBuf *b, const McItemResult *r, CkError *err) {
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

/* Every rank must have built the same items (same flags and data): a hash of their count and
 * fingerprints agrees across ranks, else the gathered files would mix two evaluations. */
static int check_same_items(const RunContext *rc, const McTask *task, const McItem *items,
                            int n_items, CkError *err) {
    if (dist_size() == 1) return 0;
    uint64_t h = results_hash(RESULTS_HASH_INIT, &n_items, sizeof n_items);
    for (int i = 0; i < n_items; i++) {
        uint64_t f = item_fingerprint(rc->run_hash, &items[i]);
        h = results_hash(h, &f, sizeof f);
    }
    int same = 0;
    if (dist_same_u64(h, &same, err) != 0) return -1;
    if (!same)
        return ck_fail(err,
                       "%s: the ranks built different items (%d here): give every rank the "
                       "same model, data and flags",
                       task->name, n_items);
    return 0;
}

static int task_run(RunContext *rc, const McTask *task, CkError *err) {
    char test_path[4096], train_path[4096];
    McDocSet test = {0}, train = {0};
    McItem *items = NULL;
    int n_items = 0, status = -1;
    McItemResult *results = NULL;
    int *done = NULL, *todo = NULL;
    ShardBuf mine = {0};
    char *gathered = NULL;
    const int root = dist_rank() == 0;
    if (data_path(opt.data, task->test_file, rc->n_tasks, test_path, sizeof test_path, err) != 0)
        return -1;
    int loaded = task->is_truthfulqa
                     ? benchmarks_load_truthfulqa(
                           &test, test_path, task->id == MC_TRUTHFULQA_MC1 ? TQA_MC1 : TQA_MC2, err)
                     : benchmarks_load_arc(&test, test_path, err);
    if (loaded != 0) return -1;
    if (opt.shots > 0 && task->train_file) {
        if (data_path(opt.train_data, task->train_file, 1, train_path, sizeof train_path, err) !=
                0 ||
            benchmarks_load_arc(&train, train_path, err) != 0)
            goto done;
    }
    if (mc_build_items(task, &test, &train, opt.shots, opt.seed, opt.limit, &items, &n_items,
                       err) != 0)
        goto done;
    if (check_same_items(rc, task, items, n_items, err) != 0) goto done;
    results = calloc((size_t)(n_items > 0 ? n_items : 1), sizeof(McItemResult));
    done = calloc((size_t)(n_items > 0 ? n_items : 1), sizeof(int));
    todo = calloc((size_t)(n_items > 0 ? n_items : 1), sizeof(int));
    if (!results || !done || !todo) {
        ck_fail(err, "out of memory");
        goto done;
    }
    /* items already scored by an earlier run with the same model, prompt and choices (rank 0
     * alone read items.jsonl; the others have an empty list and learn `done` from it) */
    int n_resumed = 0;
    for (int i = 0; i < rc->previous->n; i++) {
        Previous *p = &rc->previous->v[i];
        int d = p->r.doc_index;
        if (p->used || strcmp(p->task, task->name) != 0 || d < 0 || d >= n_items || done[d])
            continue;
        if (p->fingerprint != item_fingerprint(rc->run_hash, &items[d])) {
            ck_fail(err,
                    "%s/items.jsonl: %s doc %d was scored with another model, adapter, BOS "
                    "setting, prompt or data; use a new --out or drop --resume",
                    opt.out, task->name, d);
            goto done;
        }
        results[d] = p->r;
        p->used = 1;
        done[d] = 1;
        n_resumed++;
    }
    if (n_resumed > 0)
        fprintf(stderr, "cutkit eval mc: %s: %d of %d items already in items.jsonl\n", task->name,
                n_resumed, n_items);
    if (dist_bcast_bytes(done, sizeof(int) * (size_t)n_items, 0, err) != 0) goto done;
    int to_score = 0;
    for (int i = 0; i < n_items; i++)
        if (!done[i]) todo[to_score++] = i;
    double t0 = timer_seconds(), last = t0;
    long tokens = 0;
    int scored = 0, warnings = 0;
    /* rounds of items to score; each rank scores its contiguous share of a round, and rank 0
     * writes the round's lines in item order once it has gathered the others' */
    const int64_t round = shard_round_size(ROUND_PER_RANK);
    for (int64_t a = 0; a < to_score; a += round) {
        int64_t b = a + round < to_score ? a + round : to_score, lo, hi;
        shard_round_share(a, b, &lo, &hi);
        shard_buf_reset(&mine);
        for (int64_t k = lo; k < hi; k++) {
            int i = todo[k];
            if (mc_score_item(rc->scorer, &rc->lm->tokenizer, &items[i], !opt.no_bos, &results[i],
                              err) != 0) {
                ck_wrap(err, "%s", task->name);
                goto done;
            }
            if (dist_size() > 1 && pack_result(&mine, &results[i], err) != 0) goto done;
        }
        if (dist_size() > 1) {
            size_t n_gathered = 0;
            free(gathered);
            gathered = NULL;
            if (shard_gather(&mine, &gathered, &n_gathered, err) != 0) goto done;
            if (!root) continue;
            /* rank 0's own results come first and are in place already */
            ShardReader rd = {gathered, n_gathered, mine.n};
            for (int64_t k = hi; k < b; k++)
                if (unpack_result(&rd, items[todo[k]].doc_index, &results[todo[k]], err) != 0)
                    goto done;
        }
        for (int64_t k = a; k < b; k++) {
            int i = todo[k];
            done[i] = 1;
            for (int c = 0; c < results[i].n_choices; c++) {
                tokens += results[i].n_tokens[c];
                if (results[i].fallback[c] && warnings++ < MAX_WARNINGS)
                    fprintf(stderr,
                            "cutkit eval mc: warning: %s doc %d (%s) choice %d: a token spans the "
                            "context/continuation join; the continuation was encoded alone\n",
                            task->name, i, items[i].doc->id, c);
            }
            tokens += results[i].n_ctx_tokens;
            cJSON *rec = results_mc_item_json(task->name, &items[i], &results[i],
                                              item_fingerprint(rc->run_hash, &items[i]));
            int w = rec ? write_line(rc->items_fd, rec, err) : ck_fail(err, "out of memory");
            cJSON_Delete(rec);
            if (w != 0) goto done;
            scored++;
            double now = timer_seconds();
            if (now - last >= 2.0 || scored == to_score) {
                double rate = scored / (now - t0 > 0 ? now - t0 : 1e-9);
                char eta[32];
                format_eta((to_score - scored) / rate, eta, sizeof eta);
                fprintf(stderr,
                        "cutkit eval mc: %s %d/%d items, %.1f items/s, %.0f tok/s, ETA %s\n",
                        task->name, n_resumed + scored, n_items, rate, tokens / (now - t0), eta);
                last = now;
            }
        }
    }
    if (!root) { /* rank 0 holds the results and writes results.json */
        status = 0;
        goto done;
    }
    if (warnings > MAX_WARNINGS)
        fprintf(stderr, "cutkit eval mc: warning: %s: %d continuations in all were encoded alone\n",
                task->name, warnings);

    /* metrics and the task's part of results.json */
    McMetrics m;
    mc_metrics(task, results, n_items, &m);
    cJSON *res = cJSON_GetObjectItemCaseSensitive(rc->root, "results");
    cJSON *t = cJSON_AddObjectToObject(res, task->name);
    cJSON_AddStringToObject(t, "alias", task->name);
    for (int k = 0; k < m.n_metrics; k++)
        results_add_metric(t, m.m[k].name, m.m[k].value, m.m[k].stderr_);
    cJSON_AddNumberToObject(cJSON_GetObjectItemCaseSensitive(rc->root, "n-shot"), task->name,
                            opt.shots);
    cJSON *ns = cJSON_AddObjectToObject(cJSON_GetObjectItemCaseSensitive(rc->root, "n-samples"),
                                        task->name);
    cJSON_AddNumberToObject(ns, "original", test.n);
    cJSON_AddNumberToObject(ns, "effective", n_items);
    int fallbacks = 0, truncated = 0;
    for (int i = 0; i < n_items; i++) {
        int tr = 0;
        for (int c = 0; c < results[i].n_choices; c++) {
            fallbacks += results[i].fallback[c];
            tr |= results[i].truncated[c] > 0;
        }
        truncated += tr;
    }
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(rc->root, "config");
    char hex[20];
    snprintf(hex, sizeof hex, "%016" PRIx64, template_hash(task));
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(cfg, "template_hash"), task->name,
                            hex);
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(cfg, "data"), task->name, test_path);
    cJSON *diag = cJSON_AddObjectToObject(cJSON_GetObjectItemCaseSensitive(rc->root, "diagnostics"),
                                          task->name);
    cJSON_AddNumberToObject(diag, "join_fallbacks", fallbacks);
    cJSON_AddNumberToObject(diag, "items_truncated", truncated);
    fprintf(stderr, "cutkit eval mc: %s: %s %.4f", task->name, m.m[0].name, m.m[0].value);
    if (m.n_metrics > 1) fprintf(stderr, ", %s %.4f", m.m[1].name, m.m[1].value);
    fprintf(stderr, " (n %d)\n", n_items);
    status = 0;
done:
    if (results)
        for (int i = 0; i < n_items; i++) mc_item_result_free(&results[i]);
    free(results);
    free(done);
    free(todo);
    free(gathered);
    shard_buf_free(&mine);
    mc_items_free(items, n_items);
    benchmarks_free(&test);
    benchmarks_free(&train);
    return status;
}

static int run_eval_mc(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    if (!opt.task) {
        fprintf(stderr, "cutkit eval mc: --task is required (arc_challenge, arc_easy, "
                        "truthfulqa_mc1, truthfulqa_mc2)\n");
        return 2;
    }
    const McTask *tasks[MAX_TASKS];
    int n_tasks = 0;
    char names[512];
    snprintf(names, sizeof names, "%s", opt.task);
    for (char *save = NULL, *tok = strtok_r(names, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        const McTask *t = mc_task_find(tok);
        if (!t) {
            fprintf(stderr, "cutkit eval mc: --task: unknown task '%s'\n", tok);
            return 2;
        }
        for (int i = 0; i < n_tasks; i++)
            if (tasks[i] == t) t = NULL;
        if (t && n_tasks < MAX_TASKS) tasks[n_tasks++] = t;
    }
    if (n_tasks == 0) {
        fprintf(stderr, "cutkit eval mc: --task: no task given\n");
        return 2;
    }
    for (int i = 0; i < n_tasks; i++)
        if (tasks[i]->is_truthfulqa && opt.shots > 0) {
            fprintf(stderr,
                    "cutkit eval mc: --shots: %s has its 6-shot primer built in; use "
                    "--shots 0\n",
                    tasks[i]->name);
            return 2;
        }
    threads_set(opt.threads);

    CkError err = {{0}};
    LanguageModel lm;
    LoraAdapters ad;
    LoglikScorer scorer;
    PreviousList previous = {0};
    int have_ad = 0, have_scorer = 0, fd = -1;
    cJSON *json = NULL;
    rc = 1;
    const int root = dist_rank() == 0;
    if (lm_open(&lm, opt.model, opt.tokenizer, &err) != 0) return shard_fail("eval mc", err.msg);
    if (opt.adapter) {
        if (peft_load(&ad, &lm.model, opt.adapter, &err) != 0) goto fail;
        have_ad = 1;
    }
    if (loglik_scorer_init(&scorer, &lm.model, have_ad ? &ad : NULL, opt.batch,
                           !opt.no_prefix_reuse, &err) != 0)
        goto fail;
    have_scorer = 1;
    char items_path[4096], results_path[4096];
    snprintf(items_path, sizeof items_path, "%s/items.jsonl", opt.out);
    snprintf(results_path, sizeof results_path, "%s/results.json", opt.out);
    if (root) { /* OUT is rank 0's alone: the other ranks neither read nor write it */
        if (fileio_make_dirs(opt.out, &err) != 0) goto fail;
        if (opt.resume && previous_read(&previous, items_path, &err) != 0) goto fail;
        fd = open(items_path, O_WRONLY | O_CREAT | O_APPEND | (opt.resume ? 0 : O_TRUNC), 0644);
        if (fd < 0) {
            ck_fail(&err, "%s: %s", items_path, strerror(errno));
            goto fail;
        }
    }

    json = cJSON_CreateObject();
    cJSON_AddObjectToObject(json, "results");
    cJSON_AddObjectToObject(json, "n-shot");
    cJSON_AddObjectToObject(json, "n-samples");
    cJSON *cfg = cJSON_AddObjectToObject(json, "config");
    cJSON_AddStringToObject(cfg, "model", lm.model_source);
    cJSON_AddStringToObject(cfg, "tokenizer", lm.tokenizer_source);
    if (opt.adapter)
        cJSON_AddStringToObject(cfg, "adapter", opt.adapter);
    else
        cJSON_AddNullToObject(cfg, "adapter");
    cJSON_AddBoolToObject(cfg, "bos", !opt.no_bos);
    cJSON_AddNumberToObject(cfg, "num_fewshot", opt.shots);
    cJSON_AddNumberToObject(cfg, "fewshot_seed", (double)opt.seed);
    if (opt.limit > 0)
        cJSON_AddNumberToObject(cfg, "limit", opt.limit);
    else
        cJSON_AddNullToObject(cfg, "limit");
    cJSON_AddNumberToObject(cfg, "max_length", lm.model.config.seq_len);
    cJSON_AddBoolToObject(cfg, "prefix_reuse", !opt.no_prefix_reuse);
    cJSON_AddNumberToObject(cfg, "batch_size", opt.batch);
    cJSON_AddStringToObject(cfg, "cutkit_version", CUTKIT_VERSION);
    cJSON_AddObjectToObject(cfg, "template_hash");
    cJSON_AddObjectToObject(cfg, "data");
    cJSON_AddObjectToObject(json, "diagnostics");

    uint64_t run_hash = RESULTS_HASH_INIT;
    run_hash = results_hash_str(run_hash, lm.model_source);
    run_hash = results_hash_str(run_hash, lm.tokenizer_source);
    run_hash = results_hash_str(run_hash, opt.adapter ? opt.adapter : "");
    run_hash = results_hash_str(run_hash, opt.no_bos ? "no-bos" : "bos");
    RunContext ctx = {&lm, &scorer, &previous, fd, run_hash, json, n_tasks};
    for (int i = 0; i < n_tasks; i++)
        if (task_run(&ctx, tasks[i], &err) != 0) goto fail;
    if (root) {
        if (results_write_json(results_path, json, &err) != 0) goto fail;
        fprintf(stderr, "cutkit eval mc: wrote %s and %s\n", results_path, items_path);
    }
    rc = 0;
fail:
    if (rc) shard_fail("eval mc", err.msg);
    if (fd >= 0) close(fd);
    cJSON_Delete(json);
    previous_free(&previous);
    if (have_scorer) loglik_scorer_free(&scorer);
    if (have_ad) lora_free(&ad);
    lm_close(&lm);
    return rc;
}

int cmd_eval_mc(int argc, char **argv) {
    CkError err = {{0}};
    if (dist_init(&argc, &argv, &err) != 0) {
        fprintf(stderr, "cutkit eval mc: %s\n", err.msg);
        return 1;
    }
    int rc = run_eval_mc(argc, argv);
    /* every rank gets here unless one aborted (which ends them all) */
    dist_finalize();
    return rc;
}
