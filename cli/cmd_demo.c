/* cmd_demo.c — `cutkit demo`: the whole method on the embedded model in a few minutes.
 *
 * 1. A synthetic judgment world with a misconception (datasets/synth.h): a warm-up set that
 *    teaches the model to follow judgments and, for most objects, a wrong colour ("kites are
 *    red"); held-out test instructions. Two training sets share the instructions: "mixed"
 *    (half positive, half negative with random wrong facts, as online CUT sees its own judged
 *    samples) and "offline" (negatives only, as Shepherd-style critique data, each stating its
 *    object's misconceived colour: the data's one mistake is the misconception itself).
 * 2. A warm-up fine-tune (MLE on Align-P and Align-N of the warm-up set).
 * 3. From the warm-up model, with the same updates and learning rate: MLE on the positive
 *    responses (mixed only: offline has none), MLE on all responses, Align-N only (MLE on
 *    positives and on negatives under their judgment: hindsight, no unlikelihood), and CUT at
 *    the default λ/α plus a λ x α grid (offline).
 * 4. Every run and the warm-up model: fact-error and misconception rates of its responses to
 *    the test instructions (rule-based judge), detection quality of CUT's flags on the test
 *    negatives, win rate against the warm-up model; then `cutkit report` over all runs.
 *
 * Every stage leaves a marker in OUT, so an interrupted demo continues where it stopped. */
#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "eval/annotations.h"
#include "analysis/fact_errors.h"
#include "util/fileio.h"
#include "eval/outputs.h"
#include "cli/spawn.h"
#include "util/strbuf.h"
#include "datasets/synth.h"
#include "datasets/templates.h"
#include "util/threads.h"
#include "util/timer.h"
#include "eval/winrate.h"

#define PATH_BUF 4096

static struct {
    const char *out, *size;
    uint64_t seed;
    int threads;
    double misconception;
} opt;

static FlagSpec FLAGS[] = {
    {"out", FLAG_STRING, &opt.out, "cutkit-demo", 0, -1, "demo folder (rerun to resume)"},
    {"size", FLAG_STRING, &opt.size, "full", 0, -1,
     "full (a few minutes on 2 cores) or small (seconds: the CI's end-to-end check)"},
    {"seed", FLAG_U64, &opt.seed, "1", 0, -1, "the world's and the trainings' seed"},
    {"misconception", FLAG_DOUBLE, &opt.misconception, "0.9", 0, 1,
     "share of warm-up stories that state an object's misconceived colour"},
    {"threads", FLAG_INT, &opt.threads, "1", 0, 1024,
     "threads (0: one per core); stories260K is too small to gain from more than one"},
};

static const CommandSpec SPEC = {
    "demo",
    "the CUT method end to end on the embedded model: world, warm-up, baselines, report",
    "[--out DIR] [--size full|small]",
    "Builds a synthetic judgment world whose warm-up teaches a misconception, fine-tunes the\n"
    "embedded stories260K model on it, trains MLE, Align-N-only and CUT (a lambda x alpha\n"
    "grid) from there, evaluates every model (fact errors of its stories, the misconception\n"
    "rate, detection precision/recall, win rate against the warm-up model) and writes\n"
    "DIR/report/index.html. Rerunning resumes at the first unfinished stage.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_demo_spec(void) {
    return &SPEC;
}

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

/* Writes records as a prompt/response corpus (corpus.h's JSONL): the plain prompt, or for
 * a negative with with_judgment the judgment prompt; which records by keep. */
typedef enum { KEEP_POSITIVES, KEEP_ALL } Keep;

static int write_corpus(const char *path, const SynthRecord *records, int n, Keep keep,
                        int with_judgment) {
    CkError err = {{0}};
    StrBuf buf = {0};
    int rc = strbuf_put(&buf, "", 0);
    for (int i = 0; rc == 0 && i < n; i++) {
        const SynthRecord *r = &records[i];
        if (keep == KEEP_POSITIVES && r->judgment) continue;
        const char *fmt =
            r->judgment && with_judgment ? SYNTH_PROMPT_NO_INPUT_JUDGE : SYNTH_PROMPT_NO_INPUT;
        char *prompt = template_format(fmt, r->instruction, r->judgment, &err);
        cJSON *obj = cJSON_CreateObject();
        cJSON_AddStringToObject(obj, "prompt", prompt ? prompt : "");
        cJSON_AddStringToObject(obj, "response", r->output);
        char *line = prompt ? cJSON_PrintUnformatted(obj) : NULL;
        cJSON_Delete(obj);
        free(prompt);
        rc = line && strbuf_puts(&buf, line) == 0 && strbuf_put(&buf, "\n", 1) == 0 ? 0 : -1;
        free(line);
    }
    if (rc == 0 && fileio_write_atomic(path, buf.p, buf.n, &err) != 0) rc = -1;
    if (rc != 0)
        fprintf(stderr, "cutkit demo: %s: %s\n", path, err.msg[0] ? err.msg : "out of memory");
    strbuf_free(&buf);
    return rc;
}

/* Stage 1: the world (train = mixed), the offline world (same instructions, negatives
 * only), and the corpora of the MLE trainings. */
static int stage_world(const DemoSize *z, SynthWorld *mixed, SynthWorld *offline) {
    char dir[PATH_BUF], path[PATH_BUF];
    SynthOptions o = synth_default_options();
    o.seed = opt.seed;
    o.n_train = z->train;
    o.n_test = z->test;
    o.n_warmup = z->warmup;
    o.misconception = opt.misconception;
    CkError err = {{0}};
    if (synth_generate(mixed, &o, &err) != 0) {
        fprintf(stderr, "cutkit demo: %s\n", err.msg);
        return -1;
    }
    o.negatives_only = 1;
    o.misconceived_negatives = 1; /* offline: every mistake in the data is the misconception */
    if (synth_generate(offline, &o, &err) != 0) {
        fprintf(stderr, "cutkit demo: %s\n", err.msg);
        return -1;
    }
    if (spawn_marked(opt.out, "world.done")) return 0;
    const char *names[2] = {"world-mixed", "world-offline"};
    const SynthWorld *worlds[2] = {mixed, offline};
    for (int k = 0; k < 2; k++) {
        fileio_path(dir, sizeof dir, opt.out, names[k]);
        if (spawn_make_dir("demo", dir) != 0 || synth_write(worlds[k], dir, &err) != 0) {
            fprintf(stderr, "cutkit demo: %s\n", err.msg);
            return -1;
        }
        const SynthRecord *train = worlds[k]->records[SYNTH_SPLIT_TRAIN];
        int n = worlds[k]->n[SYNTH_SPLIT_TRAIN];
        fileio_path(path, sizeof path, dir, "corpus-mle-positive.jsonl");
        if (k == 0 && write_corpus(path, train, n, KEEP_POSITIVES, 0) != 0) return -1;
        fileio_path(path, sizeof path, dir, "corpus-mle-all.jsonl");
        if (write_corpus(path, train, n, KEEP_ALL, 0) != 0) return -1;
        fileio_path(path, sizeof path, dir, "corpus-align-n.jsonl");
        if (write_corpus(path, train, n, KEEP_ALL, 1) != 0) return -1;
        if (k == 0) {
            fileio_path(path, sizeof path, dir, "corpus-warmup.jsonl");
            if (write_corpus(path, mixed->records[SYNTH_SPLIT_WARMUP], mixed->n[SYNTH_SPLIT_WARMUP],
                             KEEP_ALL, 1) != 0)
                return -1;
        }
    }
    return spawn_mark("demo", opt.out, "world.done");
}

static int write_config(const char *run_dir, const char *label, const char *setting,
                        const char *objective, double lambda, double alpha, double lr) {
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "label", label);
    cJSON_AddStringToObject(obj, "setting", setting);
    cJSON_AddStringToObject(obj, "objective", objective);
    if (lambda > 0) cJSON_AddNumberToObject(obj, "lambda", lambda);
    if (lambda > 0) cJSON_AddNumberToObject(obj, "alpha", alpha);
    cJSON_AddNumberToObject(obj, "lr", lr);
    cJSON_AddNumberToObject(obj, "seed", (double)opt.seed);
    cJSON_AddStringToObject(obj, "command", "cutkit demo");
    char *text = cJSON_Print(obj);
    cJSON_Delete(obj);
    char path[PATH_BUF];
    CkError err = {{0}};
    fileio_path(path, sizeof path, run_dir, "config.json");
    int rc = text ? fileio_write_atomic(path, text, strlen(text), &err) : -1;
    free(text);
    if (rc != 0) fprintf(stderr, "cutkit demo: %s\n", err.msg);
    return rc;
}

/* Writes the win rate of annotations (model vs the warm-up model) as RUN/eval/winrate.json,
 * the file `cutkit report` reads. */
static int write_winrate(const char *annotations, const char *path) {
    AnnotationSet set;
    CkError err = {{0}};
    if (annotations_load(&set, annotations, &err) != 0) {
        fprintf(stderr, "cutkit demo: %s\n", err.msg);
        return -1;
    }
    double *pref = malloc(sizeof(double) * (size_t)(set.n > 0 ? set.n : 1));
    for (int i = 0; pref && i < set.n; i++) pref[i] = set.items[i].preference;
    WinRate w;
    if (pref) winrate_compute(pref, set.n, &w);
    free(pref);
    annotations_free(&set);
    if (!pref) return -1;
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddNumberToObject(obj, "win_rate", w.win_rate);
    cJSON_AddNumberToObject(obj, "standard_error", w.standard_error);
    cJSON_AddNumberToObject(obj, "n_wins", w.n_wins);
    cJSON_AddNumberToObject(obj, "n_losses", w.n_wins_base);
    cJSON_AddNumberToObject(obj, "n_draws", w.n_draws);
    cJSON_AddNumberToObject(obj, "n_total", w.n_total);
    cJSON_AddNumberToObject(obj, "n_missing", w.n_missing);
    cJSON_AddStringToObject(obj, "baseline", "warm-up model");
    char *text = cJSON_Print(obj);
    cJSON_Delete(obj);
    int rc = text ? fileio_write_atomic(path, text, strlen(text), &err) : -1;
    free(text);
    if (rc != 0) fprintf(stderr, "cutkit demo: %s\n", err.msg);
    return rc;
}

/* Stage 4 for one model (NULL model: the embedded one): its responses to the test
 * instructions (`cutkit eval generate`), their fact errors, the pairwise verdicts against the
 * warm-up model's responses (`cutkit eval judge --judge synth`) and CUT's detection on the
 * test negatives (`cutkit contrast`). */
static int evaluate(const char *run_dir, const char *model, const char *reference,
                    const SynthWorld *w, const DemoSize *z) {
    if (spawn_marked(run_dir, "evaluated")) return 0;
    char eval_dir[PATH_BUF], outputs[PATH_BUF], annotations[PATH_BUF], path[PATH_BUF],
        world[PATH_BUF], tpl[PATH_BUF], test[PATH_BUF], limit[32], tokens[32], seed[32];
    fileio_path(eval_dir, sizeof eval_dir, run_dir, "eval");
    fileio_path(outputs, sizeof outputs, eval_dir, "model_outputs.json");
    fileio_path(annotations, sizeof annotations, eval_dir, "annotations.json");
    fileio_path(world, sizeof world, opt.out, "world-mixed");
    fileio_path(tpl, sizeof tpl, world, "template.json");
    fileio_path(test, sizeof test, world, "test.jsonl");
    fileio_path(path, sizeof path, world, "instructions.json");
    snprintf(limit, sizeof limit, "%d", z->eval_items);
    snprintf(tokens, sizeof tokens, "%d", z->max_tokens);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)opt.seed);
    if (spawn_make_dir("demo", eval_dir) != 0) return -1;
    const char *name = strrchr(run_dir, '/') ? strrchr(run_dir, '/') + 1 : run_dir;
    char *gen[] = {"eval",        "generate",   "--instructions", path,      "--template",
                   tpl,           "--out",      outputs,          "--model", (char *)model,
                   "--generator", (char *)name, "--max-tokens",   tokens,    "--limit",
                   limit,         "--stop",     "Task:",          "--seed",  seed,
                   NULL};
    if (spawn_self(gen) != 0) return -1;
    /* fact errors of the responses */
    ModelOutputs mo;
    CkError err = {{0}};
    if (outputs_load(&mo, outputs, 1, &err) != 0) {
        fprintf(stderr, "cutkit demo: %s\n", err.msg);
        return -1;
    }
    const char **ins = malloc(sizeof(char *) * (size_t)(mo.n + 1));
    const char **res = malloc(sizeof(char *) * (size_t)(mo.n + 1));
    FactErrorStats s;
    int rc = ins && res ? 0 : -1;
    for (int i = 0; rc == 0 && i < mo.n; i++)
        ins[i] = mo.items[i].instruction, res[i] = mo.items[i].output;
    if (rc == 0)
        rc = fact_errors_measure(ins, res, mo.n,
                                 w->options.misconception > 0 ? w->misconceived : NULL, &s, &err);
    free(ins);
    free(res);
    outputs_free(&mo);
    fileio_path(path, sizeof path, run_dir, "errors.json");
    if (rc == 0) rc = fact_errors_write_json(&s, path, &err);
    if (rc != 0) {
        fprintf(stderr, "cutkit demo: %s: %s\n", run_dir, err.msg);
        return -1;
    }
    fprintf(stderr, "  %s: %d/%d stories with a wrong fact; misconception stated in %d of %d\n",
            name, s.n_with_error, s.n_responses, s.n_misconception_shown, s.n_misconception_items);
    /* pairwise against the warm-up model */
    if (reference) {
        char *judge[] = {"eval",      "judge",     "--judge",     "synth",
                         "--outputs", outputs,     "--reference", (char *)reference,
                         "--out",     annotations, NULL};
        fileio_path(path, sizeof path, eval_dir, "winrate.json");
        if (spawn_self(judge) != 0 || write_winrate(annotations, path) != 0) return -1;
    }
    /* detection by CUT's rule on the test negatives */
    char *contrast[] = {
        "contrast", "--judgments",   test,       "--template",  tpl,       "--model", (char *)model,
        "--out",    (char *)run_dir, "--lambda", "1.1,1.5,2,4", "--limit", limit,     NULL};
    if (spawn_self(contrast) != 0) return -1;
    return spawn_mark("demo", run_dir, "evaluated");
}

int cmd_demo(int argc, char **argv) {
    char *positional[1];
    int n_positional, rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    const DemoSize *z = !strcmp(opt.size, "full")    ? &FULL
                        : !strcmp(opt.size, "small") ? &SMALL
                                                     : NULL;
    if (!z) {
        fprintf(stderr, "cutkit demo: --size expects full or small, got '%s'\n", opt.size);
        return 2;
    }
    if (strlen(opt.out) > PATH_BUF - 256) {
        fprintf(stderr, "cutkit demo: --out: the path is too long\n");
        return 2;
    }
    threads_set(opt.threads);
    spawn_catch_signals();
    double t0 = timer_seconds();
    SynthWorld mixed = {0}, offline = {0};
    char runs[PATH_BUF], warm[PATH_BUF], warm_model[PATH_BUF], path[PATH_BUF];
    char seed[32], threads[32], steps[32], batch[32], wsteps[32], wbatch[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)opt.seed);
    snprintf(threads, sizeof threads, "%d", opt.threads);
    snprintf(steps, sizeof steps, "%d", z->steps);
    snprintf(batch, sizeof batch, "%d", z->batch);
    snprintf(wsteps, sizeof wsteps, "%d", z->warmup_steps);
    snprintf(wbatch, sizeof wbatch, "%d", z->warmup_batch);
    char wwarm[32];
    snprintf(wwarm, sizeof wwarm, "%d", z->warmup_steps / 10);
    fileio_path(runs, sizeof runs, opt.out, "runs");
    fileio_path(warm, sizeof warm, runs, "warmup");
    fileio_path(warm_model, sizeof warm_model, warm, "model");
    fprintf(stderr, "cutkit demo (%s) in %s\n[1/5] the synthetic world\n", opt.size, opt.out);
    rc = spawn_make_dir("demo", opt.out) || stage_world(z, &mixed, &offline) ||
         spawn_make_dir("demo", runs);
    if (rc == 0) {
        fprintf(stderr, "[2/5] warm-up fine-tune (%s updates of %s)\n", wsteps, wbatch);
        fileio_path(path, sizeof path, opt.out, "world-mixed/corpus-warmup.jsonl");
        char *args[] = {"--data",    path,   "--steps", wsteps,     "--batch-size",
                        wbatch,      "--lr", "1e-3",    "--warmup", wwarm,
                        "--seq-len", "160",  "--seed",  seed,       "--threads",
                        threads,     NULL};
        rc = spawn_train("demo", warm, args) ||
             write_config(warm, "warm-up", "-", "base", 0, 0, 1e-3);
    }
    for (int i = 0; rc == 0 && i < N_RUNS && !spawn_stop_requested; i++) {
        const DemoRun *r = &RUNS[i];
        char run_dir[PATH_BUF], data[PATH_BUF], world[PATH_BUF], lambda[32], alpha[32],
            tpl[PATH_BUF];
        fileio_path(run_dir, sizeof run_dir, runs, r->name);
        snprintf(world, sizeof world, "%s/world-%s", opt.out, r->setting);
        fprintf(stderr, "[3/5] %s (%d/%d)\n", r->name, i + 1, N_RUNS);
        int cut = !strcmp(r->method, "cut");
        char *args[40];
        int a = 0;
        if (cut) {
            fileio_path(data, sizeof data, world, "train.jsonl");
            fileio_path(tpl, sizeof tpl, world, "template.json");
            snprintf(lambda, sizeof lambda, "%g", r->lambda);
            snprintf(alpha, sizeof alpha, "%g", r->alpha);
            args[a++] = "--objective", args[a++] = "cut", args[a++] = "--judgments";
            args[a++] = data, args[a++] = "--template", args[a++] = tpl;
            args[a++] = "--lambda", args[a++] = lambda, args[a++] = "--alpha", args[a++] = alpha;
        } else {
            char file[64];
            snprintf(file, sizeof file, "corpus-%s.jsonl", r->method);
            fileio_path(data, sizeof data, world, file);
            args[a++] = "--data", args[a++] = data;
        }
        args[a++] = "--model", args[a++] = warm_model;
        args[a++] = "--steps", args[a++] = steps, args[a++] = "--batch-size", args[a++] = batch;
        args[a++] = "--lr", args[a++] = "5e-4", args[a++] = "--warmup", args[a++] = "0";
        args[a++] = "--seq-len", args[a++] = "160", args[a++] = "--seed", args[a++] = seed;
        args[a++] = "--threads", args[a++] = threads;
        args[a] = NULL;
        rc = spawn_train("demo", run_dir, args) ||
             write_config(run_dir, r->name, r->setting, cut ? "cut" : r->method, r->lambda,
                          r->alpha, 5e-4);
    }
    if (rc == 0 && !spawn_stop_requested) {
        fprintf(stderr, "[4/5] evaluating %d models on %d test instructions\n", N_RUNS + 1,
                z->eval_items);
        char reference[PATH_BUF];
        fileio_path(reference, sizeof reference, warm, "eval/model_outputs.json");
        rc = evaluate(warm, warm_model, NULL, &mixed, z);
        for (int i = 0; rc == 0 && i < N_RUNS && !spawn_stop_requested; i++) {
            char run_dir[PATH_BUF], model[PATH_BUF];
            fileio_path(run_dir, sizeof run_dir, runs, RUNS[i].name);
            fileio_path(model, sizeof model, run_dir, "model");
            rc = evaluate(run_dir, model, reference, &mixed, z);
        }
    }
    char report[PATH_BUF];
    fileio_path(report, sizeof report, opt.out, "report");
    if (rc == 0 && !spawn_stop_requested) {
        fprintf(stderr, "[5/5] the report\n");
        char *argv[N_RUNS + 8];
        char dirs[N_RUNS + 1][PATH_BUF];
        int a = 0;
        argv[a++] = "report";
        fileio_path(dirs[0], sizeof dirs[0], runs, "warmup");
        argv[a++] = dirs[0];
        for (int i = 0; i < N_RUNS; i++) {
            fileio_path(dirs[i + 1], sizeof dirs[i + 1], runs, RUNS[i].name);
            argv[a++] = dirs[i + 1];
        }
        argv[a++] = "--out";
        argv[a++] = report;
        argv[a++] = "--title";
        argv[a++] = "cutkit demo: CUT on the synthetic judgment world (embedded stories260K)";
        argv[a] = NULL;
        rc = spawn_self(argv) == 0 ? 0 : -1;
    }
    synth_world_free(&mixed);
    synth_world_free(&offline);
    if (spawn_stop_requested) {
        fprintf(stderr, "cutkit demo: interrupted; rerun the same command to resume\n");
        return 130;
    }
    if (rc != 0) {
        fprintf(stderr, "cutkit demo: stopped; rerun the same command to resume\n");
        return 1;
    }
    char tables[PATH_BUF];
    fileio_path(tables, sizeof tables, report, "tables.md");
    CkError err = {{0}};
    char *md = fileio_read_text(tables, 1 << 20, NULL, &err);
    if (md) fputs(md, stdout);
    free(md);
    fprintf(stderr, "cutkit demo: done in %.0f s; open %s/index.html\n", timer_seconds() - t0,
            report);
    return 0;
}
