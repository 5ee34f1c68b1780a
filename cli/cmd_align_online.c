/* cmd_align_online.c — `cutkit align-online`: iterations of generate → judge → CUT-train →
 * merge. Every stage of iteration K lives in OUT/iter-K and leaves a file behind, so a run
 * that is interrupted (or fails) continues where it stopped when the command is repeated:
 *
 *   iter-K/generations.jsonl  responses of the current model (written item by item)
 *   iter-K/judgments.jsonl    the judge's verdicts, the training file (item by item)
 *   iter-K/judge_failures.jsonl  items the judge could not judge (not trained on)
 *   iter-K/train/             `cutkit train --objective cut` run directory (--resume)
 *   iter-K/model/             the merged model (LoRA) that iteration K+1 starts from
 *   iter-K/done.json          the iteration's counts; its presence means "finished"
 */
#include <cjson/cJSON.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "util/fileio.h"
#include "train/online.h"
#include "cli/spawn.h"
#include "util/threads.h"

/* Room for a path below the run directory (its length is checked once, at the start). */
#define PATH_BUF 4096

static struct {
    const char *instructions, *out, *model, *judge, *template_path, *train_settings;
    int iterations, per_iteration, max_tokens, steps, batch_size, warmup, lora, threads;
    double lambda, alpha, lr, judge_timeout;
    float temperature, top_p;
    uint64_t seed;
} opt;

static FlagSpec FLAGS[] = {
    {"instructions", FLAG_STRING, &opt.instructions, NULL, 0, -1,
     "instruction pool: JSON array (strings or {\"instruction\"}) or JSON lines"},
    {"out", FLAG_STRING, &opt.out, NULL, 0, -1, "run directory (created; rerun to resume)"},
    {"model", FLAG_STRING, &opt.model, NULL, 0, -1,
     "starting model: llama2.c .bin or Hugging Face folder; default: embedded stories260K"},
    {"judge", FLAG_STRING, &opt.judge, "synth", 0, -1,
     "synth (the synthetic world's rule-based judge), command:CMD (one JSON object "
     "{\"instruction\",\"output\"} on stdin; prints the judgment, blank or {\"judgment\":null} "
     "for none) or file:PATH (precomputed judgments)"},
    {"judge-timeout", FLAG_DOUBLE, &opt.judge_timeout, "120", 0.001, 1e6,
     "seconds a judge command may take for one item"},
    {"iterations", FLAG_INT, &opt.iterations, "3", 1, 1e6, "generate-judge-train rounds"},
    {"per-iteration", FLAG_INT, &opt.per_iteration, "64", 1, 1e9,
     "new instructions per iteration (taken in order, wrapping around the pool)"},
    {"template", FLAG_STRING, &opt.template_path, NULL, 0, -1,
     "prompt templates JSON for generation and training (default: the reference Alpaca)"},
    {"max-tokens", FLAG_INT, &opt.max_tokens, "256", 1, 1e6, "tokens per response at most"},
    {"temperature", FLAG_FLOAT, &opt.temperature, "1", 0, 100, "sampling temperature (0: greedy)"},
    {"top-p", FLAG_FLOAT, &opt.top_p, "1", 1e-6, 1, "nucleus sampling mass"},
    {"seed", FLAG_U64, &opt.seed, "42", 0, -1, "sampling and training seed"},
    {"steps", FLAG_INT, &opt.steps, "0", 0, 1e9,
     "updates per iteration (0: one epoch over the iteration's judgments)"},
    {"batch-size", FLAG_INT, &opt.batch_size, "8", 1, 1e6, "examples per update"},
    {"lr", FLAG_DOUBLE, &opt.lr, "4e-4", 0, 10, "peak learning rate"},
    {"warmup", FLAG_INT, &opt.warmup, "0", 0, 1e9,
     "warmup updates per iteration (the trainer's 100 exceeds most iterations)"},
    {"lambda", FLAG_DOUBLE, &opt.lambda, "1.1", 0, 1e9, "CUT detection threshold"},
    {"alpha", FLAG_DOUBLE, &opt.alpha, "1", 0, 1e9, "CUT unlikelihood weight"},
    {"lora", FLAG_BOOL, &opt.lora, NULL, 0, -1,
     "train LoRA adapters (merged into the model after each iteration)"},
    {"train-settings", FLAG_STRING, &opt.train_settings, NULL, 0, -1,
     "JSON object of further `cutkit train` flags (passed as its --settings)"},
    {"threads", FLAG_INT, &opt.threads, "0", 0, 1024, "threads (0: one per core)"},
};

static const CommandSpec SPEC = {
    "align-online",
    "online CUT: generate, judge, train, merge; iterate",
    "--instructions PATH --out DIR [--judge synth|command:CMD|file:PATH] [--iterations N]",
    "Each iteration K (OUT/iter-K) generates responses to the next --per-iteration\n"
    "instructions with the current model, judges them, CUT-trains on the judgments with\n"
    "`cutkit train` and (with --lora) merges the adapter into a new model. Every stage writes\n"
    "its file as it goes; rerunning the same command resumes at the first unfinished stage.\n"
    "OUT/summary.json lists the iterations' counts (responses, negatives, errors found).",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_align_online_spec(void) {
    return &SPEC;
}

/* The complete JSON lines of a partial stage file (a killed run may leave half a line,
 * which is dropped by truncating the file to its last newline). */
static int read_done_lines(const char *path, cJSON ***items, int *n) {
    *items = NULL;
    *n = 0;
    if (!spawn_exists(path)) return 0;
    CkError err = {{0}};
    size_t size = 0;
    char *text = fileio_read_text(path, (size_t)1 << 30, &size, &err);
    if (!text) {
        fprintf(stderr, "cutkit align-online: %s\n", err.msg);
        return -1;
    }
    size_t complete = 0;
    int rc = 0;
    for (size_t start = 0; start < size;) {
        char *nl = memchr(text + start, '\n', size - start);
        if (!nl) break;
        *nl = '\0';
        cJSON *obj = cJSON_Parse(text + start);
        cJSON **grown = realloc(*items, sizeof(cJSON *) * (size_t)(*n + 1));
        if (!obj || !grown) {
            cJSON_Delete(obj);
            if (grown) *items = grown;
            fprintf(stderr, "cutkit align-online: %s:%d: not a JSON object\n", path, *n + 1);
            rc = -1;
            break;
        }
        *items = grown;
        (*items)[(*n)++] = obj;
        start = (size_t)(nl - text) + 1;
        complete = start;
    }
    free(text);
    if (rc == 0 && complete < size && truncate(path, (off_t)complete) != 0) rc = -1;
    return rc;
}

static void free_items(cJSON **items, int n) {
    for (int i = 0; i < n; i++) cJSON_Delete(items[i]);
    free(items);
}

/* Appends obj as one line and flushes it to the disk, so an item once reported is kept. */
static int append_line(FILE *f, const char *path, cJSON *obj) {
    char *line = cJSON_PrintUnformatted(obj);
    int ok = line && fprintf(f, "%s\n", line) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    free(line);
    if (!ok) fprintf(stderr, "cutkit align-online: cannot write %s: %s\n", path, strerror(errno));
    return ok ? 0 : -1;
}

static const char *str_field(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Stage 1: the current model's responses to this iteration's instructions. */
static int stage_generate(const char *model, const Template *tpl, const InstructionPool *pool,
                          int first, const char *dir, char *path, size_t path_size) {
    fileio_path(path, path_size, dir, "generations.jsonl");
    char partial[PATH_BUF + 16];
    snprintf(partial, sizeof partial, "%s.partial", path);
    if (spawn_exists(path)) return 0;
    cJSON **done = NULL;
    int n_done = 0;
    if (read_done_lines(partial, &done, &n_done) != 0) return -1;
    free_items(done, n_done);
    if (n_done >= opt.per_iteration) return rename(partial, path);
    LanguageModel lm;
    CkError err = {{0}};
    if (lm_open(&lm, model, NULL, &err) != 0) {
        fprintf(stderr, "cutkit align-online: %s\n", err.msg);
        return -1;
    }
    FILE *f = fopen(partial, "a");
    int rc = f ? 0 : -1;
    if (!f) fprintf(stderr, "cutkit align-online: cannot open %s: %s\n", partial, strerror(errno));
    OnlineGenerateOptions g = {opt.max_tokens, opt.temperature, opt.top_p, opt.seed};
    for (int i = n_done; rc == 0 && i < opt.per_iteration && !spawn_stop_requested; i++) {
        int index = first + i;
        const char *instruction = pool->instructions[index % pool->n];
        char *response = NULL;
        if (online_generate(&lm, tpl, instruction, &g, index, &response, &err) != 0) {
            fprintf(stderr, "cutkit align-online: instruction %d: %s\n", index % pool->n, err.msg);
            rc = -1;
            break;
        }
        cJSON *obj = cJSON_CreateObject();
        cJSON_AddNumberToObject(obj, "id", index);
        cJSON_AddStringToObject(obj, "instruction", instruction);
        cJSON_AddStringToObject(obj, "output", response);
        free(response);
        rc = append_line(f, partial, obj);
        cJSON_Delete(obj);
        if (isatty(2)) fprintf(stderr, "\r  generated %d/%d", i + 1, opt.per_iteration);
    }
    if (isatty(2)) fprintf(stderr, "\n");
    if (f) fclose(f);
    lm_close(&lm);
    if (rc == 0 && !spawn_stop_requested && rename(partial, path) != 0) rc = -1;
    return rc;
}

typedef struct {
    int positives, negatives, failures, errors_known, errors_total;
} JudgeCounts;

static void count_item(JudgeCounts *c, const cJSON *obj) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, "judgment");
    if (cJSON_IsString(j))
        c->negatives++;
    else
        c->positives++;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(obj, "n_errors");
    if (cJSON_IsNumber(e) && e->valueint >= 0) {
        c->errors_known++;
        c->errors_total += e->valueint;
    }
}

/* Stage 2: the judge's verdict on every response, as generic JSONL judgment records. */
static int stage_judge(const OnlineJudge *judge, const char *generations, const char *dir,
                       char *path, size_t path_size, JudgeCounts *counts) {
    fileio_path(path, path_size, dir, "judgments.jsonl");
    char partial[PATH_BUF + 16], failures[PATH_BUF];
    snprintf(partial, sizeof partial, "%s.partial", path);
    fileio_path(failures, sizeof failures, dir, "judge_failures.jsonl");
    cJSON **gen = NULL, **done = NULL, **failed = NULL;
    int n_gen = 0, n_done = 0, n_failed = 0, rc = 0;
    memset(counts, 0, sizeof *counts);
    if (spawn_exists(path)) {
        rc = read_done_lines(path, &done, &n_done);
        for (int i = 0; rc == 0 && i < n_done; i++) count_item(counts, done[i]);
        if (rc == 0 && read_done_lines(failures, &failed, &n_failed) == 0)
            counts->failures = n_failed;
        free_items(done, n_done);
        free_items(failed, n_failed);
        return rc;
    }
    if (read_done_lines(generations, &gen, &n_gen) != 0 ||
        read_done_lines(partial, &done, &n_done) != 0 ||
        read_done_lines(failures, &failed, &n_failed) != 0)
        rc = -1;
    for (int i = 0; rc == 0 && i < n_done; i++) count_item(counts, done[i]);
    counts->failures = n_failed;
    FILE *f = rc == 0 ? fopen(partial, "a") : NULL;
    FILE *ff = f ? fopen(failures, "a") : NULL;
    if (rc == 0 && (!f || !ff)) {
        fprintf(stderr, "cutkit align-online: cannot open %s: %s\n", f ? failures : partial,
                strerror(errno));
        rc = -1;
    }
    for (int i = n_done + n_failed; rc == 0 && i < n_gen && !spawn_stop_requested; i++) {
        const char *instruction = str_field(gen[i], "instruction");
        const char *output = str_field(gen[i], "output");
        if (!instruction || !output) {
            fprintf(stderr, "cutkit align-online: %s:%d: missing instruction or output\n",
                    generations, i + 1);
            rc = -1;
            break;
        }
        char *judgment = NULL;
        int n_errors = -1;
        CkError err = {{0}};
        cJSON *obj = cJSON_Duplicate(gen[i], 1);
        if (online_judge(judge, instruction, output, &judgment, &n_errors, &err) != 0) {
            fprintf(stderr, "\ncutkit align-online: judge failed on item %d: %s\n", i, err.msg);
            cJSON_AddStringToObject(obj, "judge_error", err.msg);
            rc = append_line(ff, failures, obj);
            counts->failures++;
        } else {
            cJSON_AddStringToObject(obj, "input", "");
            if (judgment)
                cJSON_AddStringToObject(obj, "judgment", judgment);
            else
                cJSON_AddNullToObject(obj, "judgment");
            if (n_errors >= 0) cJSON_AddNumberToObject(obj, "n_errors", n_errors);
            count_item(counts, obj);
            rc = append_line(f, partial, obj);
        }
        free(judgment);
        cJSON_Delete(obj);
        if (isatty(2)) fprintf(stderr, "\r  judged %d/%d", i + 1, n_gen);
    }
    if (isatty(2)) fprintf(stderr, "\n");
    if (f) fclose(f);
    if (ff) fclose(ff);
    free_items(gen, n_gen);
    free_items(done, n_done);
    free_items(failed, n_failed);
    if (rc == 0 && !spawn_stop_requested && rename(partial, path) != 0) rc = -1;
    return rc;
}

/* Stage 3 and 4: `cutkit train` on the judgments, then (LoRA) `cutkit merge`. Writes the
 * path of the model the next iteration starts from into next_model. */
static int stage_train(const char *model, const char *judgments, int n_examples, const char *dir,
                       char *next_model, size_t next_size) {
    char train_dir[PATH_BUF], steps[32], batch[32], lr[32], warmup[32], lambda[32], alpha[32],
        seed[32], threads[32], final_out[PATH_BUF];
    fileio_path(train_dir, sizeof train_dir, dir, "train");
    int n_steps = opt.steps > 0 ? opt.steps : (n_examples + opt.batch_size - 1) / opt.batch_size;
    snprintf(steps, sizeof steps, "%d", n_steps > 0 ? n_steps : 1);
    snprintf(batch, sizeof batch, "%d", opt.batch_size);
    snprintf(lr, sizeof lr, "%.17g", opt.lr);
    snprintf(warmup, sizeof warmup, "%d", opt.warmup);
    snprintf(lambda, sizeof lambda, "%.17g", opt.lambda);
    snprintf(alpha, sizeof alpha, "%.17g", opt.alpha);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)opt.seed);
    snprintf(threads, sizeof threads, "%d", opt.threads);
    fileio_path(final_out, sizeof final_out, train_dir, opt.lora ? "adapter" : "model");
    char *argv[48];
    int a = 0;
    argv[a++] = "train";
    if (opt.train_settings) argv[a++] = "--settings", argv[a++] = (char *)opt.train_settings;
    argv[a++] = "--objective", argv[a++] = "cut";
    argv[a++] = "--judgments", argv[a++] = (char *)judgments;
    argv[a++] = "--judgment-format", argv[a++] = "jsonl";
    argv[a++] = "--out", argv[a++] = train_dir;
    argv[a++] = "--steps", argv[a++] = steps;
    argv[a++] = "--batch-size", argv[a++] = batch;
    argv[a++] = "--lr", argv[a++] = lr;
    argv[a++] = "--warmup", argv[a++] = warmup;
    argv[a++] = "--lambda", argv[a++] = lambda;
    argv[a++] = "--alpha", argv[a++] = alpha;
    argv[a++] = "--seed", argv[a++] = seed;
    argv[a++] = "--threads", argv[a++] = threads;
    char checkpoints[PATH_BUF];
    fileio_path(checkpoints, sizeof checkpoints, train_dir, "checkpoints");
    if (spawn_exists(checkpoints)) argv[a++] = "--resume"; /* a fresh run directory starts fresh */
    if (model) argv[a++] = "--model", argv[a++] = (char *)model;
    if (opt.template_path) argv[a++] = "--template", argv[a++] = (char *)opt.template_path;
    if (opt.lora) argv[a++] = "--lora";
    argv[a] = NULL;
    if (!spawn_marked(dir, "trained")) {
        if (spawn_self(argv) != 0 || spawn_stop_requested) return -1;
        if (spawn_mark("align-online", dir, "trained") != 0) return -1;
    }
    if (!opt.lora) {
        snprintf(next_model, next_size, "%s", final_out);
        return 0;
    }
    fileio_path(next_model, next_size, dir, "model");
    char config[PATH_BUF];
    fileio_path(config, sizeof config, next_model, "config.json");
    if (spawn_exists(config)) return 0;
    char *margv[10];
    int m = 0;
    margv[m++] = "merge";
    if (model) margv[m++] = "--model", margv[m++] = (char *)model;
    margv[m++] = "--adapter", margv[m++] = final_out;
    margv[m++] = "--out", margv[m++] = next_model;
    margv[m] = NULL;
    return spawn_self(margv) == 0 ? 0 : -1;
}

static int write_done(const char *dir, const char *model, const JudgeCounts *c, int n_items) {
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
    char *text = cJSON_Print(obj);
    cJSON_Delete(obj);
    char path[PATH_BUF];
    fileio_path(path, sizeof path, dir, "done.json");
    CkError err = {{0}};
    int rc = text ? fileio_write_atomic(path, text, strlen(text), &err) : -1;
    if (rc != 0) fprintf(stderr, "cutkit align-online: %s\n", text ? err.msg : "out of memory");
    free(text);
    return rc;
}

/* OUT/summary.json: the done.json of every finished iteration, in order. */
static int write_summary(void) {
    cJSON *list = cJSON_CreateArray();
    for (int k = 1; k <= opt.iterations; k++) {
        char path[PATH_BUF];
        snprintf(path, sizeof path, "%s/iter-%d/done.json", opt.out, k);
        CkError err = {{0}};
        size_t size;
        char *text = spawn_exists(path) ? fileio_read_text(path, 1 << 20, &size, &err) : NULL;
        cJSON *obj = text ? cJSON_Parse(text) : NULL;
        free(text);
        if (!obj) break;
        cJSON_AddNumberToObject(obj, "iteration", k);
        cJSON_AddItemToArray(list, obj);
    }
    char *text = cJSON_Print(list);
    cJSON_Delete(list);
    char path[PATH_BUF];
    fileio_path(path, sizeof path, opt.out, "summary.json");
    CkError err = {{0}};
    int rc = text ? fileio_write_atomic(path, text, strlen(text), &err) : -1;
    if (rc != 0) fprintf(stderr, "cutkit align-online: %s\n", text ? err.msg : "out of memory");
    free(text);
    return rc;
}

/* Reads iteration K's done.json for the model it produced. */
static int done_model(const char *dir, char *model, size_t size) {
    char path[PATH_BUF];
    fileio_path(path, sizeof path, dir, "done.json");
    if (!spawn_exists(path)) return 0;
    CkError err = {{0}};
    size_t n;
    char *text = fileio_read_text(path, 1 << 20, &n, &err);
    cJSON *obj = text ? cJSON_Parse(text) : NULL;
    free(text);
    const char *m = obj ? str_field(obj, "model") : NULL;
    if (m) snprintf(model, size, "%s", m);
    cJSON_Delete(obj);
    if (!m) fprintf(stderr, "cutkit align-online: %s: no \"model\"; delete it to redo\n", path);
    return m ? 1 : -1;
}

int cmd_align_online(int argc, char **argv) {
    char *positional[1];
    int n_positional, rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    if (!opt.instructions || !opt.out) {
        fprintf(stderr, "cutkit align-online: --instructions and --out are required\n");
        return 2;
    }
    CkError err = {{0}};
    OnlineJudge judge;
    if (online_judge_open(&judge, opt.judge, opt.judge_timeout, &err) != 0) {
        fprintf(stderr, "cutkit align-online: --judge: %s\n", err.msg);
        return 2;
    }
    InstructionPool pool = {0};
    Template tpl = {0};
    if (online_load_instructions(&pool, opt.instructions, &err) != 0 ||
        (opt.template_path ? template_load(&tpl, opt.template_path, &err)
                           : template_default(&tpl, &err)) != 0) {
        fprintf(stderr, "cutkit align-online: %s\n", err.msg);
        online_judge_close(&judge);
        online_instructions_free(&pool);
        return 1;
    }
    threads_set(opt.threads);
    spawn_catch_signals();
    if (strlen(opt.out) > PATH_BUF - 128) {
        fprintf(stderr, "cutkit align-online: --out: the path is too long\n");
        online_judge_close(&judge);
        online_instructions_free(&pool);
        template_free(&tpl);
        return 2;
    }
    char model[PATH_BUF] = "";
    if (opt.model) snprintf(model, sizeof model, "%s", opt.model);
    rc = spawn_make_dir("align-online", opt.out);
    for (int k = 1; rc == 0 && k <= opt.iterations && !spawn_stop_requested; k++) {
        char dir[PATH_BUF], generations[PATH_BUF], judgments[PATH_BUF];
        snprintf(dir, sizeof dir, "%s/iter-%d", opt.out, k);
        int done = done_model(dir, model, sizeof model);
        if (done < 0) rc = -1;
        if (done != 0) continue;
        if ((rc = spawn_make_dir("align-online", dir)) != 0) break;
        fprintf(stderr, "iteration %d/%d (%s): generating %d responses\n", k, opt.iterations,
                model[0] ? model : "embedded:stories260K", opt.per_iteration);
        JudgeCounts counts;
        const char *current = model[0] ? model : NULL;
        if (stage_generate(current, &tpl, &pool, (k - 1) * opt.per_iteration, dir, generations,
                           sizeof generations) != 0 ||
            spawn_stop_requested ||
            stage_judge(&judge, generations, dir, judgments, sizeof judgments, &counts) != 0 ||
            spawn_stop_requested) {
            rc = -1;
            break;
        }
        fprintf(stderr, "iteration %d: %d positive, %d negative, %d judge failures", k,
                counts.positives, counts.negatives, counts.failures);
        if (counts.errors_known > 0)
            fprintf(stderr, ", %.3f errors per response",
                    (double)counts.errors_total / counts.errors_known);
        fprintf(stderr, "\n");
        if (counts.positives + counts.negatives == 0) {
            fprintf(stderr, "cutkit align-online: iteration %d: nothing was judged; see %s\n", k,
                    dir);
            rc = -1;
            break;
        }
        char next[PATH_BUF];
        if (stage_train(current, judgments, counts.positives + counts.negatives, dir, next,
                        sizeof next) != 0 ||
            write_done(dir, next, &counts, counts.positives + counts.negatives + counts.failures) !=
                0) {
            rc = -1;
            break;
        }
        snprintf(model, sizeof model, "%s", next);
    }
    if (rc == 0 || spawn_stop_requested) write_summary();
    online_judge_close(&judge);
    online_instructions_free(&pool);
    template_free(&tpl);
    if (spawn_stop_requested) {
        fprintf(stderr, "cutkit align-online: interrupted; rerun the same command to resume\n");
        return 130;
    }
    if (rc != 0) {
        fprintf(stderr, "cutkit align-online: stopped; rerun the same command to resume\n");
        return 1;
    }
    fprintf(stderr, "cutkit align-online: done; final model %s; summary in %s/summary.json\n",
            model[0] ? model : "embedded:stories260K", opt.out);
    return 0;
}
