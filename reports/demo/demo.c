/* demo.c — the demo's stages: world, warm-up, trainings, evaluations, report. */
#include "reports/demo/demo.h"
#include "reports/demo/demo_internal.h"

#include <cjson/cJSON.h>

#include <errno.h>
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

const DemoRun DEMO_RUNS[] = {
    {"mixed-mle-positive", "mixed", "mle-positive", 0, 0, NULL},
    {"mixed-mle-all", "mixed", "mle-all", 0, 0, NULL},
    {"mixed-align-n", "mixed", "align-n", 0, 0, NULL},
    {"mixed-cut", "mixed", "cut", 1.1, 1, NULL},
    {"offline-mle-all", "offline", "mle-all", 0, 0, NULL},
    {"offline-align-n", "offline", "align-n", 0, 0, NULL},
    /* the paper's baselines (Table 2) on the offline judgment file */
    {"offline-forward-prediction", "offline", "forward-prediction", 0, 0, NULL},
    {"offline-hindsight", "offline", "hindsight", 0, 0, NULL},
    {"offline-dpo", "offline", "dpo", 0, 0, NULL},
    {"offline-cut-l1.1-a1", "offline", "cut", 1.1, 1, NULL},
    {"offline-cut-l1.1-a0.5", "offline", "cut", 1.1, 0.5, NULL},
    {"offline-cut-l2-a1", "offline", "cut", 2, 1, NULL},
    {"offline-cut-l2-a0.5", "offline", "cut", 2, 0.5, NULL},
    /* Table 4's ablations of offline-cut-l1.1-a1 that change something here: the offline
     * data has no positives (-Align-P changes nothing) and CUT's gamma is 0 (nor does
     * -dynamic weighting) */
    {"offline-cut-no-l1", "offline", "cut", 1.1, 1, "no-l1"},
    {"offline-cut-no-align-n-mle", "offline", "cut", 1.1, 1, "no-align-n-mle"},
    {"offline-cut-no-detection", "offline", "cut", 1.1, 1, "no-detection"},
};
const int DEMO_N_RUNS = (int)(sizeof DEMO_RUNS / sizeof DEMO_RUNS[0]);
#define RUNS   DEMO_RUNS
#define N_RUNS DEMO_N_RUNS

/* What the stages share: the options, the sizes, the folders and the two worlds. */
typedef struct {
    const DemoOptions *o;
    const DemoSize *z;
    char runs[PATH_BUF], warm[PATH_BUF], warm_model[PATH_BUF];
    char seed[32], threads[32];
    SynthWorld mixed, offline;
} Demo;

void demo_options_init(DemoOptions *o) {
    static uint64_t defaults[DEMO_MAX_SEEDS];
    CkError ignored = {{0}};
    memset(o, 0, sizeof *o);
    o->out = "cutkit-demo";
    o->size = DEMO_FULL;
    o->seeds = defaults;
    o->n_seeds = demo_parse_seeds(DEMO_DEFAULT_SEEDS, defaults, &ignored);
    o->report = 1;
    o->misconception = 0.9;
    o->threads = 1;
}

int demo_parse_seeds(const char *text, uint64_t *seeds, CkError *err) {
    int n = 0;
    for (const char *p = text;; p++) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        /* a seed is recorded as a JSON number (config.json): at most 2^53, exact in a double */
        if (end == p || *p == '-' || *p == '+' || errno || (*end && *end != ',') ||
            v > (1ull << 53))
            return ck_fail(err, "seed %d of '%s': expected an integer from 0 to 2^53", n + 1, text);
        for (int i = 0; i < n; i++)
            if (seeds[i] == v) return ck_fail(err, "seed %llu is listed twice in '%s'", v, text);
        if (n == DEMO_MAX_SEEDS)
            return ck_fail(err, "'%s': more than %d seeds", text, DEMO_MAX_SEEDS);
        seeds[n++] = v;
        if (!*end) return n;
        p = end;
    }
}

int demo_seed_dir(const DemoOptions *o, int i, char *buf, size_t size) {
    int k = o->n_seeds == 1
                ? snprintf(buf, size, "%s", o->out)
                : snprintf(buf, size, "%s/seed-%llu", o->out, (unsigned long long)o->seeds[i]);
    return k > 0 && (size_t)k < size ? 0 : -1;
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
    so.seed = o->seeds[0];
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

/* The warm-up run as a row of the report. */
static const DemoRun WARMUP = {"warm-up", "-", "base", 0, 0, NULL};

/* 1 when r trains on one of the world's MLE corpora, 0 when on its judgment file. */
static int on_corpus(const DemoRun *r) {
    return !strcmp(r->method, "mle-positive") || !strcmp(r->method, "mle-all") ||
           !strcmp(r->method, "align-n");
}

/* RUN/config.json: what `cutkit report` labels and groups the run by (the objective and,
 * for CUT, its Table-4 switches as `cutkit train` records them). */
static int write_config(const Demo *d, const char *run_dir, const DemoRun *r, double lr,
                        CkError *err) {
    static const char *const SWITCHES[] = {"no-l1", "no-align-p", "no-align-n-mle", "no-detection",
                                           "no-dynamic-weight"};
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "label", r->name);
    cJSON_AddStringToObject(obj, "setting", r->setting);
    cJSON_AddStringToObject(obj, "objective", r->method);
    if (r->lambda > 0) cJSON_AddNumberToObject(obj, "lambda", r->lambda);
    if (r->lambda > 0) cJSON_AddNumberToObject(obj, "alpha", r->alpha);
    if (!strcmp(r->method, "dpo")) cJSON_AddNumberToObject(obj, "beta", DEMO_DPO_BETA);
    if (!strcmp(r->method, "cut")) {
        cJSON *ab = cJSON_AddObjectToObject(obj, "ablations");
        for (size_t i = 0; i < sizeof SWITCHES / sizeof SWITCHES[0]; i++) {
            char key[32];
            snprintf(key, sizeof key, "%s", SWITCHES[i]);
            for (char *c = key; *c; c++)
                if (*c == '-') *c = '_';
            cJSON_AddBoolToObject(ab, key, r->ablation && !strcmp(r->ablation, SWITCHES[i]));
        }
    }
    cJSON_AddNumberToObject(obj, "lr", lr);
    cJSON_AddNumberToObject(obj, "seed", (double)d->o->seeds[0]);
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
    return write_config(d, d->warm, &WARMUP, 1e-3, err);
}

/* Stage 3 for one run: its training from the warm-up model, and its config.json. */
static int stage_train_run(const Demo *d, const DemoRun *r, CkError *err) {
    char run_dir[PATH_BUF], data[PATH_BUF], world[PATH_BUF], tpl[PATH_BUF];
    char lambda[32], alpha[32], beta[32], ablation[48], steps[32], batch[32];
    fileio_path(run_dir, sizeof run_dir, d->runs, r->name);
    snprintf(world, sizeof world, "%s/world-%s", d->o->out, r->setting);
    snprintf(steps, sizeof steps, "%d", d->z->steps);
    snprintf(batch, sizeof batch, "%d", d->z->batch);
    char *args[48], **a = args;
    if (on_corpus(r)) {
        char file[64];
        snprintf(file, sizeof file, "corpus-%s.jsonl", r->method);
        fileio_path(data, sizeof data, world, file);
        *a++ = "--data", *a++ = data;
    } else {
        fileio_path(data, sizeof data, world, "train.jsonl");
        fileio_path(tpl, sizeof tpl, world, "template.json");
        *a++ = "--objective", *a++ = (char *)r->method, *a++ = "--judgments", *a++ = data;
        *a++ = "--template", *a++ = tpl;
    }
    if (!strcmp(r->method, "cut")) {
        snprintf(lambda, sizeof lambda, "%g", r->lambda);
        snprintf(alpha, sizeof alpha, "%g", r->alpha);
        *a++ = "--lambda", *a++ = lambda, *a++ = "--alpha", *a++ = alpha;
    }
    if (r->ablation) {
        snprintf(ablation, sizeof ablation, "--%s", r->ablation);
        *a++ = ablation;
    }
    if (!strcmp(r->method, "dpo")) {
        /* chosen: the world's correct response to the record's instruction (a response CUT
         * never sees); rejected: the judged one */
        snprintf(beta, sizeof beta, "%g", DEMO_DPO_BETA);
        *a++ = "--chosen-field", *a++ = "correct_output", *a++ = "--beta", *a++ = beta;
    }
    *a++ = "--model", *a++ = (char *)d->warm_model;
    *a++ = "--steps", *a++ = steps, *a++ = "--batch-size", *a++ = batch;
    *a++ = "--lr", *a++ = "5e-4", *a++ = "--warmup", *a++ = "0";
    *a++ = "--seq-len", *a++ = "160", *a++ = "--seed", *a++ = (char *)d->seed;
    *a++ = "--threads", *a++ = (char *)d->threads;
    *a = NULL;
    if (stage_train(&d->o->runner, run_dir, args, err) != 0) return -1;
    return write_config(d, run_dir, r, 5e-4, err);
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

/* RUN/eval/fact_items.jsonl: a line per response, in the order of outputs, with its
 * instruction, "error" (1: at least one wrong fact) and "misconception" (1: it states the
 * misconceived colour; null where the item cannot show it): the per-item outcomes behind
 * errors.json, which the headline's paired comparisons read. */
static int write_fact_items(const char *path, const char *const *ins, const char *const *res, int n,
                            const int *misconceived, CkError *err) {
    StrBuf buf = {0};
    int rc = strbuf_put(&buf, "", 0);
    for (int i = 0; rc == 0 && i < n; i++) {
        FactErrorStats s;
        if (fact_errors_measure(&ins[i], &res[i], 1, misconceived, &s, err) != 0) {
            rc = -1;
            break;
        }
        cJSON *obj = cJSON_CreateObject();
        cJSON_AddStringToObject(obj, "instruction", ins[i]);
        cJSON_AddNumberToObject(obj, "error", s.n_with_error);
        if (s.n_misconception_items)
            cJSON_AddNumberToObject(obj, "misconception", s.n_misconception_shown);
        else
            cJSON_AddNullToObject(obj, "misconception");
        char *line = cJSON_PrintUnformatted(obj);
        cJSON_Delete(obj);
        rc = line && strbuf_puts(&buf, line) == 0 && strbuf_put(&buf, "\n", 1) == 0
                 ? 0
                 : ck_fail(err, "%s: out of memory", path);
        free(line);
    }
    if (rc == 0) rc = fileio_write_atomic(path, buf.p, buf.n, err);
    strbuf_free(&buf);
    return rc;
}

/* RUN/errors.json and RUN/eval/fact_items.jsonl: the fact errors of the responses in outputs
 * (and the log's line). */
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
    const int *map = w->options.misconception > 0 ? w->misconceived : NULL;
    char path[PATH_BUF];
    fileio_path(path, sizeof path, run_dir, "eval/fact_items.jsonl");
    if (rc == 0) rc = fact_errors_measure(ins, res, mo.n, map, &s, err);
    if (rc == 0) rc = write_fact_items(path, ins, res, mo.n, map, err);
    free(ins);
    free(res);
    outputs_free(&mo);
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
    /* every child gets the demo's --threads (1 by default): seeds run side by side, and
     * OpenMP threads of several processes on the same cores wait for one another */
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
                   "--threads",
                   (char *)d->threads,
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
    char *contrast[] = {"contrast",        "--judgments", (char *)in->test,   "--template",
                        (char *)in->tpl,   "--model",     (char *)model,      "--out",
                        (char *)run_dir,   "--lambda",    "1.1,1.5,2,4",      "--limit",
                        (char *)in->limit, "--threads",   (char *)d->threads, NULL};
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

/* Stage 5: `cutkit report` over the warm-up model and every run of every seed, into
 * OUT/report; a run's seeds form one row (their config.json differ only in "seed"). */
static int stage_report(const DemoOptions *o, CkError *err) {
    log_msg(o, "[5/5] the report over %d seed%s\n", o->n_seeds, o->n_seeds == 1 ? "" : "s");
    const int n_dirs = o->n_seeds * (N_RUNS + 1);
    char **argv = calloc((size_t)n_dirs + 10, sizeof *argv);
    char *dirs = malloc((size_t)n_dirs * PATH_BUF);
    char report[PATH_BUF], title[256];
    if (!argv || !dirs) {
        free(argv);
        free(dirs);
        return ck_fail(err, "out of memory");
    }
    int a = 0, rc = 0;
    argv[a++] = "report";
    for (int i = 0; rc == 0 && i < o->n_seeds; i++) {
        char seed_dir[PATH_BUF], runs[PATH_BUF];
        if (demo_seed_dir(o, i, seed_dir, sizeof seed_dir) != 0) rc = -1;
        fileio_path(runs, sizeof runs, seed_dir, "runs");
        for (int k = 0; rc == 0 && k <= N_RUNS; k++) {
            char *dir = dirs + (size_t)(a - 1) * PATH_BUF;
            if (fileio_path(dir, PATH_BUF, runs, k == 0 ? "warmup" : RUNS[k - 1].name) != 0)
                rc = -1;
            argv[a++] = dir;
        }
    }
    fileio_path(report, sizeof report, o->out, "report");
    snprintf(title, sizeof title,
             "cutkit demo: CUT on the synthetic judgment world (embedded stories260K, %d seed%s)",
             o->n_seeds, o->n_seeds == 1 ? "" : "s");
    argv[a++] = "--out";
    argv[a++] = report;
    argv[a++] = "--title";
    argv[a++] = title;
    /* the paper's layouts on the synthetic world: Table 2's rows (its benchmark columns stay
     * empty: the demo runs no eval mc) and Table 4's ablations against full CUT */
    argv[a++] = "--layout";
    argv[a++] = "table2,table4";
    argv[a] = NULL;
    rc = rc == 0 ? stage_run(&o->runner, argv, err) : ck_fail(err, "%s: path too long", o->out);
    free(argv);
    free(dirs);
    return rc;
}

/* Stage 5 and the headline (OUT/report/headline.md). */
static int report_and_headline(const DemoOptions *o, CkError *err) {
    if (stage_stop_requested(&o->runner) || stage_report(o, err) != 0) return -1;
    char report[PATH_BUF];
    fileio_path(report, sizeof report, o->out, "report");
    return demo_headline_write(o, report, NULL, err);
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
    if (!stopped(d) && o->report && report_and_headline(o, err) != 0) return -1;
    return stopped(d) ? ck_fail(err, "stopped") : 0;
}

/* Several seeds: each a demo of its own in OUT/seed-S (child processes, demo_seeds_run),
 * then the report and the headline over all of them. OUT is locked meanwhile; each seed's
 * folder is locked by its child. */
static int run_seeds(const DemoOptions *o, CkError *err) {
    log_msg(o, "cutkit demo (%s) in %s: %d seeds, each in %s/seed-S\n", demo_size_name(o->size),
            o->out, o->n_seeds, o->out);
    RunLock lock = {0};
    int rc = outdir_open(&lock, o->out, err) != 0 || demo_seeds_run(o, err) != 0 ? -1 : 0;
    if (rc == 0 && o->report) rc = report_and_headline(o, err);
    runlock_release(&lock);
    if (rc == 0 && stage_stop_requested(&o->runner)) rc = ck_fail(err, "stopped");
    return rc;
}

int demo_run(const DemoOptions *o, CkError *err) {
    if (strlen(o->out) > DEMO_MAX_OUT) return ck_fail(err, "%s: the path is too long", o->out);
    if (o->n_seeds < 1 || o->n_seeds > DEMO_MAX_SEEDS)
        return ck_fail(err, "expected 1 to %d seeds, got %d", DEMO_MAX_SEEDS, o->n_seeds);
    if (o->n_seeds > 1) return run_seeds(o, err);
    Demo *d = calloc(1, sizeof *d);
    if (!d) return ck_fail(err, "out of memory");
    d->o = o;
    d->z = o->size == DEMO_SMALL ? &SMALL : &FULL;
    fileio_path(d->runs, sizeof d->runs, o->out, "runs");
    fileio_path(d->warm, sizeof d->warm, d->runs, "warmup");
    fileio_path(d->warm_model, sizeof d->warm_model, d->warm, "model");
    snprintf(d->seed, sizeof d->seed, "%llu", (unsigned long long)o->seeds[0]);
    snprintf(d->threads, sizeof d->threads, "%d", o->threads);
    RunLock lock = {0};
    int rc = run_stages(d, &lock, err);
    runlock_release(&lock);
    synth_world_free(&d->mixed);
    synth_world_free(&d->offline);
    free(d);
    return rc;
}
