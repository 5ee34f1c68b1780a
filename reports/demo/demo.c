/* demo.c — the demo's stages: world, warm-up, trainings, evaluations, report. */
#include "reports/demo/demo.h"

#include <cjson/cJSON.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/fact_errors.h"
#include "datasets/synth.h"
#include "datasets/templates.h"
#include "eval/annotations.h"
#include "eval/outputs.h"
#include "eval/winrate.h"
#include "util/fileio.h"
#include "util/outdir.h"
#include "util/strbuf.h"

#define PATH_BUF 4096

/* The sizes of a demo: records, updates and evaluation items. */
typedef struct {
    int train, test, warmup;
    int warmup_steps, warmup_batch;
    int steps, batch;
    int eval_items;
    int max_tokens;
} DemoSize;

static const DemoSize FULL = {800, 100, 1200, 150, 16, 100, 8, 100, 96};
static const DemoSize SMALL = {48, 12, 48, 6, 8, 4, 4, 8, 48};

/* One training of the demo. */
typedef struct {
    const char *name;    /* run folder and report label */
    const char *setting; /* "mixed" or "offline" training set */
    const char *method;  /* mle-positive, mle-all, align-n, cut */
    double lambda, alpha;
} DemoRun;

static const DemoRun RUNS[] = {
    {"mixed-mle-positive", "mixed", "mle-positive", 0, 0},
    {"mixed-mle-all", "mixed", "mle-all", 0, 0},
    {"mixed-align-n", "mixed", "align-n", 0, 0},
    {"mixed-cut", "mixed", "cut", 1.1, 1},
    {"offline-mle-all", "offline", "mle-all", 0, 0},
    {"offline-align-n", "offline", "align-n", 0, 0},
    {"offline-cut-l1.1-a1", "offline", "cut", 1.1, 1},
    {"offline-cut-l1.1-a0.5", "offline", "cut", 1.1, 0.5},
    {"offline-cut-l2-a1", "offline", "cut", 2, 1},
    {"offline-cut-l2-a0.5", "offline", "cut", 2, 0.5},
};
#define N_RUNS (int)(sizeof RUNS / sizeof RUNS[0])

/* What the stages share: the options, the sizes, the folders and the two worlds. */
typedef struct {
    const DemoOptions *o;
    const DemoSize *z;
    char runs[PATH_BUF], warm[PATH_BUF], warm_model[PATH_BUF];
    char seed[32], threads[32];
    SynthWorld mixed, offline;
} Demo;

void demo_options_init(DemoOptions *o) {
    memset(o, 0, sizeof *o);
    o->out = "cutkit-demo";
    o->size = DEMO_FULL;
    o->seed = 1;
    o->misconception = 0.9;
    o->threads = 1;
}

const char *demo_size_name(DemoSizeKind size) {
    return size == DEMO_SMALL ? "small" : "full";
}

static void log_msg(const DemoOptions *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void log_msg(const DemoOptions *o, const char *fmt, ...) {
    if (!o->log) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(o->log, fmt, ap);
    va_end(ap);
}

static int stopped(const Demo *d) {
    return stage_stop_requested(&d->o->runner);
}

static int write_json(const char *path, const cJSON *obj, CkError *err) {
    char *text = cJSON_Print(obj);
    int rc =
        text ? fileio_write_atomic(path, text, strlen(text), err) : ck_fail(err, "out of memory");
    free(text);
    return rc;
}

/* Writes records as a prompt/response corpus (corpus.h's JSONL): the plain prompt, or for
 * a negative with with_judgment the judgment prompt; which records by keep. */
typedef enum { KEEP_POSITIVES, KEEP_ALL } Keep;

static int write_corpus(const char *path, const SynthRecord *records, int n, Keep keep,
                        int with_judgment, CkError *err) {
    StrBuf buf = {0};
    int rc = strbuf_put(&buf, "", 0);
    for (int i = 0; rc == 0 && i < n; i++) {
        const SynthRecord *r = &records[i];
        if (keep == KEEP_POSITIVES && r->judgment) continue;
        const char *fmt =
            r->judgment && with_judgment ? SYNTH_PROMPT_NO_INPUT_JUDGE : SYNTH_PROMPT_NO_INPUT;
        char *prompt = template_format(fmt, r->instruction, r->judgment, err);
        if (!prompt) {
            rc = ck_wrap(err, "%s", path);
            break;
        }
        cJSON *obj = cJSON_CreateObject();
        cJSON_AddStringToObject(obj, "prompt", prompt);
        cJSON_AddStringToObject(obj, "response", r->output);
        char *line = cJSON_PrintUnformatted(obj);
        cJSON_Delete(obj);
        free(prompt);
        rc = line && strbuf_puts(&buf, line) == 0 && strbuf_put(&buf, "\n", 1) == 0
                 ? 0
                 : ck_fail(err, "%s: out of memory", path);
        free(line);
    }
    if (rc == 0) rc = fileio_write_atomic(path, buf.p, buf.n, err);
    strbuf_free(&buf);
    return rc;
}

/* The corpora of the MLE trainings beside world k's files (k 0: mixed, 1: offline). */
static int write_corpora(const Demo *d, int k, const char *dir, CkError *err) {
    const SynthWorld *w = k == 0 ? &d->mixed : &d->offline;
    const SynthRecord *train = w->records[SYNTH_SPLIT_TRAIN];
    int n = w->n[SYNTH_SPLIT_TRAIN];
    char path[PATH_BUF];
    fileio_path(path, sizeof path, dir, "corpus-mle-positive.jsonl");
    if (k == 0 && write_corpus(path, train, n, KEEP_POSITIVES, 0, err) != 0) return -1;
    fileio_path(path, sizeof path, dir, "corpus-mle-all.jsonl");
    if (write_corpus(path, train, n, KEEP_ALL, 0, err) != 0) return -1;
    fileio_path(path, sizeof path, dir, "corpus-align-n.jsonl");
    if (write_corpus(path, train, n, KEEP_ALL, 1, err) != 0) return -1;
    if (k != 0) return 0;
    fileio_path(path, sizeof path, dir, "corpus-warmup.jsonl");
    return write_corpus(path, d->mixed.records[SYNTH_SPLIT_WARMUP], d->mixed.n[SYNTH_SPLIT_WARMUP],
                        KEEP_ALL, 1, err);
}

/* Stage 1: the world (train = mixed), the offline world (same instructions, negatives
 * only), and the corpora of the MLE trainings. The worlds are generated on every run (the
 * evaluations need them in memory); their files are written once. */
static int stage_world(Demo *d, CkError *err) {
    const DemoOptions *o = d->o;
    SynthOptions so = synth_default_options();
    so.seed = o->seed;
    so.n_train = d->z->train;
    so.n_test = d->z->test;
    so.n_warmup = d->z->warmup;
    so.misconception = o->misconception;
    if (synth_generate(&d->mixed, &so, err) != 0) return -1;
    so.negatives_only = 1;
    so.misconceived_negatives = 1; /* offline: every mistake in the data is the misconception */
    if (synth_generate(&d->offline, &so, err) != 0) return -1;
    if (stage_marked(o->out, "world.done")) return 0;
    const char *names[2] = {"world-mixed", "world-offline"};
    for (int k = 0; k < 2; k++) {
        char dir[PATH_BUF];
        fileio_path(dir, sizeof dir, o->out, names[k]);
        if (fileio_make_dirs(dir, err) != 0) return -1;
        outdir_remove_stale_temps(dir); /* a killed run's half-written files */
        if (synth_write(k == 0 ? &d->mixed : &d->offline, dir, err) != 0 ||
            write_corpora(d, k, dir, err) != 0)
            return -1;
    }
    return stage_mark(o->out, "world.done", err);
}

/* RUN/config.json: what `cutkit report` labels and groups the run by. */
static int write_config(const Demo *d, const char *run_dir, const char *label, const char *setting,
                        const char *objective, double lambda, double alpha, double lr,
                        CkError *err) {
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "label", label);
    cJSON_AddStringToObject(obj, "setting", setting);
    cJSON_AddStringToObject(obj, "objective", objective);
    if (lambda > 0) cJSON_AddNumberToObject(obj, "lambda", lambda);
    if (lambda > 0) cJSON_AddNumberToObject(obj, "alpha", alpha);
    cJSON_AddNumberToObject(obj, "lr", lr);
    cJSON_AddNumberToObject(obj, "seed", (double)d->o->seed);
    cJSON_AddStringToObject(obj, "command", "cutkit demo");
    char path[PATH_BUF];
    fileio_path(path, sizeof path, run_dir, "config.json");
    int rc = write_json(path, obj, err);
    cJSON_Delete(obj);
    return rc;
}

/* Stage 2: the warm-up fine-tune every other run starts from. */
static int stage_warmup(const Demo *d, CkError *err) {
    char path[PATH_BUF], wsteps[32], wbatch[32], wwarm[32];
    snprintf(wsteps, sizeof wsteps, "%d", d->z->warmup_steps);
    snprintf(wbatch, sizeof wbatch, "%d", d->z->warmup_batch);
    snprintf(wwarm, sizeof wwarm, "%d", d->z->warmup_steps / 10);
    log_msg(d->o, "[2/5] warm-up fine-tune (%s updates of %s)\n", wsteps, wbatch);
    fileio_path(path, sizeof path, d->o->out, "world-mixed/corpus-warmup.jsonl");
    char *args[] = {"--data",
                    path,
                    "--steps",
                    wsteps,
                    "--batch-size",
                    wbatch,
                    "--lr",
                    "1e-3",
                    "--warmup",
                    wwarm,
                    "--seq-len",
                    "160",
                    "--seed",
                    (char *)d->seed,
                    "--threads",
                    (char *)d->threads,
                    NULL};
    if (stage_train(&d->o->runner, d->warm, args, err) != 0) return -1;
    return write_config(d, d->warm, "warm-up", "-", "base", 0, 0, 1e-3, err);
}

/* Stage 3 for one run: its training from the warm-up model, and its config.json. */
static int stage_train_run(const Demo *d, const DemoRun *r, CkError *err) {
    char run_dir[PATH_BUF], data[PATH_BUF], world[PATH_BUF], tpl[PATH_BUF];
    char lambda[32], alpha[32], steps[32], batch[32];
    fileio_path(run_dir, sizeof run_dir, d->runs, r->name);
    snprintf(world, sizeof world, "%s/world-%s", d->o->out, r->setting);
    snprintf(steps, sizeof steps, "%d", d->z->steps);
    snprintf(batch, sizeof batch, "%d", d->z->batch);
    int cut = !strcmp(r->method, "cut");
    char *args[40], **a = args;
    if (cut) {
        fileio_path(data, sizeof data, world, "train.jsonl");
        fileio_path(tpl, sizeof tpl, world, "template.json");
        snprintf(lambda, sizeof lambda, "%g", r->lambda);
        snprintf(alpha, sizeof alpha, "%g", r->alpha);
        *a++ = "--objective", *a++ = "cut", *a++ = "--judgments", *a++ = data;
        *a++ = "--template", *a++ = tpl, *a++ = "--lambda", *a++ = lambda;
        *a++ = "--alpha", *a++ = alpha;
    } else {
        char file[64];
        snprintf(file, sizeof file, "corpus-%s.jsonl", r->method);
        fileio_path(data, sizeof data, world, file);
        *a++ = "--data", *a++ = data;
    }
    *a++ = "--model", *a++ = (char *)d->warm_model;
    *a++ = "--steps", *a++ = steps, *a++ = "--batch-size", *a++ = batch;
    *a++ = "--lr", *a++ = "5e-4", *a++ = "--warmup", *a++ = "0";
    *a++ = "--seq-len", *a++ = "160", *a++ = "--seed", *a++ = (char *)d->seed;
    *a++ = "--threads", *a++ = (char *)d->threads;
    *a = NULL;
    if (stage_train(&d->o->runner, run_dir, args, err) != 0) return -1;
    return write_config(d, run_dir, r->name, r->setting, cut ? "cut" : r->method, r->lambda,
                        r->alpha, 5e-4, err);
}

/* Writes the win rate of annotations (model vs the warm-up model) as RUN/eval/winrate.json,
 * the file `cutkit report` reads. */
static int write_winrate(const char *annotations, const char *path, CkError *err) {
    AnnotationSet set;
    if (annotations_load(&set, annotations, err) != 0) return -1;
    double *pref = malloc(sizeof(double) * (size_t)(set.n > 0 ? set.n : 1));
    for (int i = 0; pref && i < set.n; i++) pref[i] = set.items[i].preference;
    WinRate w;
    if (pref) winrate_compute(pref, set.n, &w);
    free(pref);
    annotations_free(&set);
    if (!pref) return ck_fail(err, "out of memory");
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddNumberToObject(obj, "win_rate", w.win_rate);
    cJSON_AddNumberToObject(obj, "standard_error", w.standard_error);
    cJSON_AddNumberToObject(obj, "n_wins", w.n_wins);
    cJSON_AddNumberToObject(obj, "n_losses", w.n_wins_base);
    cJSON_AddNumberToObject(obj, "n_draws", w.n_draws);
    cJSON_AddNumberToObject(obj, "n_total", w.n_total);
    cJSON_AddNumberToObject(obj, "n_missing", w.n_missing);
    cJSON_AddStringToObject(obj, "baseline", "warm-up model");
    int rc = write_json(path, obj, err);
    cJSON_Delete(obj);
    return rc;
}

/* RUN/errors.json: the fact errors of the responses in outputs (and the log's line). */
static int measure_fact_errors(const Demo *d, const char *run_dir, const char *name,
                               const char *outputs, CkError *err) {
    ModelOutputs mo;
    if (outputs_load(&mo, outputs, 1, err) != 0) return -1;
    const char **ins = malloc(sizeof(char *) * (size_t)(mo.n + 1));
    const char **res = malloc(sizeof(char *) * (size_t)(mo.n + 1));
    FactErrorStats s;
    int rc = ins && res ? 0 : ck_fail(err, "out of memory");
    for (int i = 0; rc == 0 && i < mo.n; i++)
        ins[i] = mo.items[i].instruction, res[i] = mo.items[i].output;
    const SynthWorld *w = &d->mixed;
    if (rc == 0)
        rc = fact_errors_measure(ins, res, mo.n,
                                 w->options.misconception > 0 ? w->misconceived : NULL, &s, err);
    free(ins);
    free(res);
    outputs_free(&mo);
    char path[PATH_BUF];
    fileio_path(path, sizeof path, run_dir, "errors.json");
    if (rc == 0) rc = fact_errors_write_json(&s, path, err);
    if (rc != 0) return ck_wrap(err, "%s", run_dir);
    log_msg(d->o, "  %s: %d/%d stories with a wrong fact; misconception stated in %d of %d\n", name,
            s.n_with_error, s.n_responses, s.n_misconception_shown, s.n_misconception_items);
    return 0;
}

/* The files of the mixed world the evaluations read. */
typedef struct {
    char tpl[PATH_BUF], test[PATH_BUF], instructions[PATH_BUF], limit[32];
} EvalInputs;

/* Stage 4 for one model: its responses to the test instructions (`cutkit eval generate`),
 * their fact errors, the pairwise verdicts against the warm-up model's responses
 * (`cutkit eval judge --judge synth`; reference NULL: none, for the warm-up model itself)
 * and CUT's detection on the test negatives (`cutkit contrast`). */
static int evaluate(const Demo *d, const EvalInputs *in, const char *run_dir, const char *model,
                    const char *reference, CkError *err) {
    if (stage_marked(run_dir, "evaluated")) return 0;
    char eval_dir[PATH_BUF], outputs[PATH_BUF], annotations[PATH_BUF], path[PATH_BUF];
    char tokens[32];
    fileio_path(eval_dir, sizeof eval_dir, run_dir, "eval");
    fileio_path(outputs, sizeof outputs, eval_dir, "model_outputs.json");
    fileio_path(annotations, sizeof annotations, eval_dir, "annotations.json");
    snprintf(tokens, sizeof tokens, "%d", d->z->max_tokens);
    if (fileio_make_dirs(eval_dir, err) != 0) return -1;
    outdir_remove_stale_temps(eval_dir); /* winrate.json's; the children clean their own */
    const char *name = strrchr(run_dir, '/') ? strrchr(run_dir, '/') + 1 : run_dir;
    char *gen[] = {"eval",
                   "generate",
                   "--instructions",
                   (char *)in->instructions,
                   "--template",
                   (char *)in->tpl,
                   "--out",
                   outputs,
                   "--model",
                   (char *)model,
                   "--generator",
                   (char *)name,
                   "--max-tokens",
                   tokens,
                   "--limit",
                   (char *)in->limit,
                   "--stop",
                   "Task:",
                   "--seed",
                   (char *)d->seed,
                   NULL};
    if (stage_run(&d->o->runner, gen, err) != 0 ||
        measure_fact_errors(d, run_dir, name, outputs, err) != 0)
        return -1;
    if (reference) {
        char *judge[] = {"eval",      "judge",     "--judge",     "synth",
                         "--outputs", outputs,     "--reference", (char *)reference,
                         "--out",     annotations, NULL};
        fileio_path(path, sizeof path, eval_dir, "winrate.json");
        if (stage_run(&d->o->runner, judge, err) != 0 || write_winrate(annotations, path, err) != 0)
            return -1;
    }
    char *contrast[] = {"contrast",        "--judgments", (char *)in->test, "--template",
                        (char *)in->tpl,   "--model",     (char *)model,    "--out",
                        (char *)run_dir,   "--lambda",    "1.1,1.5,2,4",    "--limit",
                        (char *)in->limit, NULL};
    if (stage_run(&d->o->runner, contrast, err) != 0) return -1;
    return stage_mark(run_dir, "evaluated", err);
}

/* Stage 4: the warm-up model, then every run, each evaluated once. */
static int stage_evaluate(const Demo *d, CkError *err) {
    log_msg(d->o, "[4/5] evaluating %d models on %d test instructions\n", N_RUNS + 1,
            d->z->eval_items);
    EvalInputs in;
    char world[PATH_BUF], reference[PATH_BUF];
    fileio_path(world, sizeof world, d->o->out, "world-mixed");
    fileio_path(in.tpl, sizeof in.tpl, world, "template.json");
    fileio_path(in.test, sizeof in.test, world, "test.jsonl");
    fileio_path(in.instructions, sizeof in.instructions, world, "instructions.json");
    snprintf(in.limit, sizeof in.limit, "%d", d->z->eval_items);
    fileio_path(reference, sizeof reference, d->warm, "eval/model_outputs.json");
    if (evaluate(d, &in, d->warm, d->warm_model, NULL, err) != 0) return -1;
    for (int i = 0; i < N_RUNS && !stopped(d); i++) {
        char run_dir[PATH_BUF], model[PATH_BUF];
        fileio_path(run_dir, sizeof run_dir, d->runs, RUNS[i].name);
        fileio_path(model, sizeof model, run_dir, "model");
        if (evaluate(d, &in, run_dir, model, reference, err) != 0) return -1;
    }
    return 0;
}

/* Stage 5: `cutkit report` over the warm-up model and every run, into OUT/report. */
static int stage_report(const Demo *d, CkError *err) {
    log_msg(d->o, "[5/5] the report\n");
    char *argv[N_RUNS + 8], report[PATH_BUF];
    char dirs[N_RUNS + 1][PATH_BUF];
    int a = 0;
    argv[a++] = "report";
    fileio_path(dirs[0], sizeof dirs[0], d->runs, "warmup");
    argv[a++] = dirs[0];
    for (int i = 0; i < N_RUNS; i++) {
        fileio_path(dirs[i + 1], sizeof dirs[i + 1], d->runs, RUNS[i].name);
        argv[a++] = dirs[i + 1];
    }
    fileio_path(report, sizeof report, d->o->out, "report");
    argv[a++] = "--out";
    argv[a++] = report;
    argv[a++] = "--title";
    argv[a++] = "cutkit demo: CUT on the synthetic judgment world (embedded stories260K)";
    argv[a] = NULL;
    return stage_run(&d->o->runner, argv, err);
}

/* The stages in order, each once the one before finished. OUT is the demo's alone while it
 * runs ("OUT is in use by pid N" for a second demo); the runs below it are locked by their
 * own commands. */
static int run_stages(Demo *d, RunLock *lock, CkError *err) {
    const DemoOptions *o = d->o;
    log_msg(o, "cutkit demo (%s) in %s\n[1/5] the synthetic world\n", demo_size_name(o->size),
            o->out);
    if (outdir_open(lock, o->out, err) != 0 || stage_world(d, err) != 0 ||
        fileio_make_dirs(d->runs, err) != 0 || stage_warmup(d, err) != 0)
        return -1;
    for (int i = 0; i < N_RUNS && !stopped(d); i++) {
        log_msg(o, "[3/5] %s (%d/%d)\n", RUNS[i].name, i + 1, N_RUNS);
        if (stage_train_run(d, &RUNS[i], err) != 0) return -1;
    }
    if (!stopped(d) && stage_evaluate(d, err) != 0) return -1;
    if (!stopped(d) && stage_report(d, err) != 0) return -1;
    return stopped(d) ? ck_fail(err, "stopped") : 0;
}

int demo_run(const DemoOptions *o, CkError *err) {
    if (strlen(o->out) > DEMO_MAX_OUT) return ck_fail(err, "%s: the path is too long", o->out);
    Demo *d = calloc(1, sizeof *d);
    if (!d) return ck_fail(err, "out of memory");
    d->o = o;
    d->z = o->size == DEMO_SMALL ? &SMALL : &FULL;
    fileio_path(d->runs, sizeof d->runs, o->out, "runs");
    fileio_path(d->warm, sizeof d->warm, d->runs, "warmup");
    fileio_path(d->warm_model, sizeof d->warm_model, d->warm, "model");
    snprintf(d->seed, sizeof d->seed, "%llu", (unsigned long long)o->seed);
    snprintf(d->threads, sizeof d->threads, "%d", o->threads);
    RunLock lock = {0};
    int rc = run_stages(d, &lock, err);
    runlock_release(&lock);
    synth_world_free(&d->mixed);
    synth_world_free(&d->offline);
    free(d);
    return rc;
}
