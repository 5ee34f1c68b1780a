/* cmd_eval_mc.c — `cutkit eval mc`: multiple-choice scoring (ARC, TruthfulQA MC1/MC2) as
 * lm-evaluation-harness computes it; OUT/items.jsonl as items finish, OUT/results.json at
 * the end. */
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

#include "benchmarks.h"
#include "commands.h"
#include "fileio.h"
#include "lm.h"
#include "loglik.h"
#include "mc.h"
#include "peft.h"
#include "results.h"
#include "threads.h"
#include "timer.h"

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
    "(one line per question as it finishes) and OUT/results.json; progress on stderr.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_eval_mc_spec(void) {
    return &SPEC;
}

#define MAX_TASKS    8
#define MAX_WARNINGS 5

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

static int task_run(RunContext *rc, const McTask *task, CkError *err) {
    char test_path[4096], train_path[4096];
    McDocSet test = {0}, train = {0};
    McItem *items = NULL;
    int n_items = 0, status = -1;
    McItemResult *results = NULL;
    int *done = NULL;
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
    results = calloc((size_t)(n_items > 0 ? n_items : 1), sizeof(McItemResult));
    done = calloc((size_t)(n_items > 0 ? n_items : 1), sizeof(int));
    if (!results || !done) {
        ck_fail(err, "out of memory");
        goto done;
    }
    /* items already scored by an earlier run with the same model, prompt and choices */
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
    double t0 = timer_seconds(), last = t0;
    long tokens = 0;
    int scored = 0, to_score = n_items - n_resumed, warnings = 0;
    for (int i = 0; i < n_items; i++) {
        if (done[i]) continue;
        if (mc_score_item(rc->scorer, &rc->lm->tokenizer, &items[i], !opt.no_bos, &results[i],
                          err) != 0) {
            ck_wrap(err, "%s", task->name);
            goto done;
        }
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
            fprintf(stderr, "cutkit eval mc: %s %d/%d items, %.1f items/s, %.0f tok/s, ETA %s\n",
                    task->name, n_resumed + scored, n_items, rate, tokens / (now - t0), eta);
            last = now;
        }
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
    mc_items_free(items, n_items);
    benchmarks_free(&test);
    benchmarks_free(&train);
    return status;
}

int cmd_eval_mc(int argc, char **argv) {
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
    cJSON *root = NULL;
    rc = 1;
    if (lm_open(&lm, opt.model, opt.tokenizer, &err) != 0) {
        fprintf(stderr, "cutkit eval mc: %s\n", err.msg);
        return 1;
    }
    if (opt.adapter) {
        if (peft_load(&ad, &lm.model, opt.adapter, &err) != 0) goto fail;
        have_ad = 1;
    }
    if (loglik_scorer_init(&scorer, &lm.model, have_ad ? &ad : NULL, opt.batch,
                           !opt.no_prefix_reuse, &err) != 0)
        goto fail;
    have_scorer = 1;
    if (mkdir(opt.out, 0755) != 0 && errno != EEXIST) {
        ck_fail(&err, "%s: cannot create: %s", opt.out, strerror(errno));
        goto fail;
    }
    char items_path[4096], results_path[4096];
    snprintf(items_path, sizeof items_path, "%s/items.jsonl", opt.out);
    snprintf(results_path, sizeof results_path, "%s/results.json", opt.out);
    if (opt.resume && previous_read(&previous, items_path, &err) != 0) goto fail;
    fd = open(items_path, O_WRONLY | O_CREAT | O_APPEND | (opt.resume ? 0 : O_TRUNC), 0644);
    if (fd < 0) {
        ck_fail(&err, "%s: %s", items_path, strerror(errno));
        goto fail;
    }

    root = cJSON_CreateObject();
    cJSON_AddObjectToObject(root, "results");
    cJSON_AddObjectToObject(root, "n-shot");
    cJSON_AddObjectToObject(root, "n-samples");
    cJSON *cfg = cJSON_AddObjectToObject(root, "config");
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
    cJSON_AddObjectToObject(root, "diagnostics");

    uint64_t run_hash = RESULTS_HASH_INIT;
    run_hash = results_hash_str(run_hash, lm.model_source);
    run_hash = results_hash_str(run_hash, lm.tokenizer_source);
    run_hash = results_hash_str(run_hash, opt.adapter ? opt.adapter : "");
    run_hash = results_hash_str(run_hash, opt.no_bos ? "no-bos" : "bos");
    RunContext ctx = {&lm, &scorer, &previous, fd, run_hash, root, n_tasks};
    for (int i = 0; i < n_tasks; i++)
        if (task_run(&ctx, tasks[i], &err) != 0) goto fail;
    if (results_write_json(results_path, root, &err) != 0) goto fail;
    fprintf(stderr, "cutkit eval mc: wrote %s and %s\n", results_path, items_path);
    rc = 0;
fail:
    if (rc) fprintf(stderr, "cutkit eval mc: %s\n", err.msg);
    if (fd >= 0) close(fd);
    cJSON_Delete(root);
    previous_free(&previous);
    if (have_scorer) loglik_scorer_free(&scorer);
    if (have_ad) lora_free(&ad);
    lm_close(&lm);
    return rc;
}
