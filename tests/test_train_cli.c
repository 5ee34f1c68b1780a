/* test_train_cli.c — training runs as `cutkit train` makes them, through the library it calls
 * (train/train_run.h, train/merge.h): an interrupted run resumed from its checkpoint gives the
 * same loss curve and the same final weights, bit for bit, as the uninterrupted one (full
 * fine-tuning, LoRA and CUT); merging an adapter; pretraining from a random model; the run
 * directory holds what the reports read. The binary itself: SIGTERM finishes the update, saves
 * and exits 0; its messages, flags and exit codes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "formats/lm.h"
#include "formats/peft.h"
#include "formats/safetensors.h"
#include "train/merge.h"
#include "train/train_run.h"

static char *dir;

static const char *STORY =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
    "park. One day, she saw a big, red ball. She wanted to play with it, but it was too high. "
    "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. "
    "Tom had a red car. He liked to drive it fast around the garden with his dog.\n";

/* Judgment records (generic JSONL): two negatives with judgments, two positives. */
static const char *JUDGED =
    "{\"instruction\": \"Tell a story about Lily.\", \"output\": \"Lily had a red ball. "
    "She played in the park.\", \"judgment\": null}\n"
    "{\"instruction\": \"Tell a story about Tom.\", \"output\": \"Tom had a blue car. He "
    "drove it to the sun.\", \"judgment\": \"Cars cannot drive to the sun.\"}\n"
    "{\"instruction\": \"What colour is the sky?\", \"input\": \"On a clear day.\", "
    "\"output\": \"The sky is green.\", \"judgment\": \"The sky is blue, not green.\"}\n"
    "{\"instruction\": \"Say hello.\", \"output\": \"Hello!\", \"judgment\": null}\n";

/* dir + "/" + rel, in one of a few rotating buffers (enough for one call's arguments). */
static const char *at(const char *rel) {
    static char bufs[8][700];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, rel);
    return b;
}

static int setup(void **state) {
    (void)state;
    dir = test_temp_dir();
    FILE *f = fopen(at("stories.txt"), "w");
    for (int i = 0; i < 6; i++) fputs(STORY, f);
    fclose(f);
    return test_write_file(at("judged.jsonl"), JUDGED, strlen(JUDGED));
}

static int teardown(void **state) {
    (void)state;
    int rc = test_remove_dir(dir);
    free(dir);
    return rc;
}

/* Runs the binary: `cutkit ARGS` in dir; returns its exit status, stderr in *err. */
static int cutkit(const char *args, char **err) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, CUTKIT_BINARY, args);
    char *out = NULL;
    int status = test_run(cmd, &out, err);
    free(out);
    return status;
}

/* Trains as o says, which must succeed; returns the report. */
static TrainReport train(const TrainRunOptions *o) {
    TrainReport report;
    CkError err = {{0}};
    const int rc = train_run(o, &report, &err);
    if (rc != 0) printf("train_run: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return report;
}

/* steps.jsonl without the timing fields, which legitimately differ between runs. */
static char *losses(const char *run) {
    char rel[200];
    snprintf(rel, sizeof rel, "%s/steps.jsonl", run);
    char *text = test_read_file(at(rel), NULL);
    assert_non_null(text);
    char *out = calloc(1, strlen(text) + 1), *w = out;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *cut = strstr(line, ", \"seconds\"");
        size_t n = cut ? (size_t)(cut - line) : strlen(line);
        memcpy(w, line, n);
        w += n;
        *w++ = '\n';
    }
    free(text);
    return out;
}

/* Every tensor of two safetensors files, byte for byte (the headers differ: command lines). */
static void assert_same_tensors(const char *a_rel, const char *b_rel) {
    SafetensorsFile a, b;
    CkError err = {{0}};
    assert_int_equal(safetensors_open(&a, at(a_rel), &err), 0);
    assert_int_equal(safetensors_open(&b, at(b_rel), &err), 0);
    assert_int_equal(safetensors_count(&a), safetensors_count(&b));
    for (size_t i = 0; i < safetensors_count(&a); i++) {
        const SafetensorsTensor *ta = safetensors_at(&a, i);
        const SafetensorsTensor *tb = safetensors_find(&b, ta->name);
        assert_non_null(tb);
        assert_int_equal(ta->end - ta->begin, tb->end - tb->begin);
        assert_memory_equal(safetensors_data(&a, ta), safetensors_data(&b, tb),
                            ta->end - ta->begin);
    }
    safetensors_close(&a);
    safetensors_close(&b);
}

/* Trains run "NAME-straight" in one go and "NAME-resumed" stopped after update stop_after
 * (between checkpoints) and resumed; the losses and final weights must be identical. */
static void resume_case(const char *name, const TrainRunOptions *base, int64_t stop_after,
                        const char *weights) {
    char straight[64], resumed[64], saved[100];
    snprintf(straight, sizeof straight, "%s-straight", name);
    snprintf(resumed, sizeof resumed, "%s-resumed", name);
    TrainRunOptions o = *base;
    o.out = at(straight);
    train(&o);
    o.out = at(resumed);
    o.stop_after = stop_after;
    TrainReport stopped = train(&o);
    assert_true(stopped.stopped_early);
    assert_int_equal(stopped.steps_done, stop_after);
    snprintf(saved, sizeof saved, "%s/checkpoints/checkpoint-%lld", resumed, (long long)stop_after);
    assert_string_equal(stopped.saved, at(saved));
    o.stop_after = 0;
    o.resume = 1;
    TrainReport done = train(&o);
    assert_false(done.stopped_early);
    assert_int_equal(done.steps_done, base->steps);
    char *a = losses(straight), *b = losses(resumed);
    assert_string_equal(a, b);
    assert_true(strlen(a) > 0);
    free(a);
    free(b);
    char wa[200], wb[200];
    snprintf(wa, sizeof wa, "%s/%s", straight, weights);
    snprintf(wb, sizeof wb, "%s/%s", resumed, weights);
    assert_same_tensors(wa, wb);
}

/* The MLE settings of the resume tests. */
static TrainRunOptions mle_options(void) {
    TrainRunOptions o;
    train_run_options_init(&o);
    o.data = at("stories.txt");
    o.steps = 16;
    o.batch_size = 4;
    o.micro_batch = 2;
    o.seq_len = 48;
    o.warmup = 3;
    o.lr = 2e-3;
    o.save_every = 5;
    return o;
}

static void test_resume_full(void **state) {
    (void)state;
    TrainRunOptions o = mle_options();
    resume_case("full", &o, 7, "model/model.safetensors");
}

static void test_resume_lora(void **state) {
    (void)state;
    TrainRunOptions o = mle_options();
    o.lora = 1;
    o.lora_targets = "q_proj,v_proj,down_proj";
    o.lora_r = 4;
    resume_case("lora", &o, 7, "adapter/adapter_model.safetensors");
}

/* The binary under a real SIGTERM: the update in flight completes, a checkpoint is written,
 * exit status 0. */
static void test_sigterm_saves(void **state) {
    (void)state;
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && ('%s' train --data stories.txt --steps 100000 --batch-size 2 "
             "--seq-len 48 --out sig 2>sig.err & pid=$!; sleep 1; kill -TERM $pid; wait $pid; "
             "echo \"exit=$?\")",
             dir, CUTKIT_BINARY);
    char *out = NULL;
    assert_int_equal(test_run(cmd, &out, NULL), 0);
    assert_non_null(strstr(out, "exit=0"));
    free(out);
    char *err = test_read_file(at("sig.err"), NULL);
    assert_non_null(strstr(err, "checkpoint saved in sig/checkpoints/checkpoint-"));
    free(err);
    char *latest = test_read_file(at("sig/checkpoints/latest"), NULL);
    assert_non_null(latest);
    assert_true(strncmp(latest, "checkpoint-", 11) == 0);
    free(latest);
}

/* Sum of log p of text's tokens under the model at model_path (NULL: embedded), with the
 * adapter at adapter_path applied (NULL: none). */
static double sum_logprob(const char *model_path, const char *adapter_path, const char *text) {
    LanguageModel lm;
    LoraAdapters ad;
    CkError err = {{0}};
    assert_int_equal(lm_open(&lm, model_path, NULL, &err), 0);
    if (adapter_path) assert_int_equal(peft_load(&ad, &lm.model, adapter_path, &err), 0);
    int *ids = NULL, n = 0;
    assert_int_equal(tokenizer_encode(&lm.tokenizer, text, 1, 0, &ids, &n, &err), 0);
    Activations a;
    assert_int_equal(activations_init(&a, &lm.model, n, n, 0, &err), 0);
    int *targets = malloc(sizeof(int) * (size_t)n);
    double *lp = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) targets[i] = i + 1 < n ? ids[i + 1] : -1;
    int offsets[2] = {0, n};
    TokenBatch b = {1, offsets, ids};
    assert_int_equal(model_forward(&lm.model, &a, &b, NULL, adapter_path ? &ad : NULL, &err), 0);
    assert_int_equal(model_logprobs(&lm.model, &a, targets, lp, &err), 0);
    double sum = 0;
    for (int i = 0; i + 1 < n; i++) sum += lp[i];
    activations_free(&a);
    free(ids);
    free(targets);
    free(lp);
    if (adapter_path) lora_free(&ad);
    lm_close(&lm);
    return sum;
}

/* Merging folds the adapter in: the merged model scores a text as the base model with the
 * adapter does. */
static void test_merge_equals_adapter(void **state) {
    (void)state;
    TrainRunOptions o;
    train_run_options_init(&o);
    o.data = at("stories.txt");
    o.out = at("merge-run");
    o.steps = 4;
    o.batch_size = 2;
    o.seq_len = 48;
    o.warmup = 0;
    o.schedule = SCHED_CONSTANT;
    o.lr = 1e-2;
    o.lora = 1;
    o.lora_targets = "all";
    o.lora_r = 4;
    o.lora_dropout = 0;
    train(&o);
    MergeOptions mo;
    merge_options_init(&mo);
    mo.adapter = at("merge-run/adapter");
    mo.out = at("merged");
    CkError err = {{0}};
    assert_int_equal(merge_run(&mo, &err), 0);
    const char *text = "Lily saw a big red ball in the park.";
    const double with_adapter = sum_logprob(NULL, at("merge-run/adapter"), text);
    const double merged = sum_logprob(at("merged"), NULL, text);
    const double base = sum_logprob(NULL, NULL, text);
    printf("sum log p: base %.6f, with the adapter %.6f, merged %.6f\n", base, with_adapter,
           merged);
    assert_close(merged, with_adapter, 1e-4);
    assert_true(fabs(with_adapter - base) > 1e-3); /* the adapter did change the model */
}

/* Pretraining from scratch: a random model of a config.json of any shape (here a ragged
 * 2-layer model on the embedded tokenizer's 512 ids) learns the corpus. */
static void test_init_random(void **state) {
    (void)state;
    const char *cfg = "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 48, "
                      "\"intermediate_size\": 100, \"num_hidden_layers\": 2, "
                      "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
                      "\"vocab_size\": 512, \"max_position_embeddings\": 64, "
                      "\"rms_norm_eps\": 1e-5}";
    assert_int_equal(test_write_file(at("tiny.json"), cfg, strlen(cfg)), 0);
    TrainRunOptions o;
    train_run_options_init(&o);
    o.random_init = 1;
    o.config = at("tiny.json");
    o.data = at("stories.txt");
    o.out = at("scratch");
    o.steps = 60;
    o.batch_size = 4;
    o.seq_len = 48;
    o.lr = 3e-3;
    o.warmup = 5;
    train(&o);
    char *log = test_read_file(at("scratch/steps.jsonl"), NULL);
    assert_non_null(log);
    double first = strtod(strstr(log, "\"loss\": ") + 8, NULL);
    const char *last_line = log + strlen(log) - 2;
    while (last_line > log && *last_line != '\n') last_line--;
    double last = strtod(strstr(last_line, "\"loss\": ") + 8, NULL);
    printf("from scratch: loss %.3f -> %.3f over 60 updates (ln 512 = 6.24)\n", first, last);
    assert_true(first > 5.5); /* a fresh model is near uniform over 512 ids */
    assert_true(last < first - 2.0);
    free(log);
    /* the model it wrote is a Hugging Face folder of that shape */
    char *written = test_read_file(at("scratch/model/config.json"), NULL);
    assert_non_null(strstr(written, "\"intermediate_size\":\t100"));
    free(written);
}

/* The CUT objective on judgment records: steps.jsonl carries the detection counts, tokens.csv
 * a row per Misalign token, and an interrupted CUT run resumes bit for bit like an MLE one. */
static void test_cut_objective(void **state) {
    (void)state;
    TrainRunOptions o;
    train_run_options_init(&o);
    o.objective = TRAIN_OBJECTIVE_CUT;
    o.judgments = at("judged.jsonl");
    o.steps = 8;
    o.batch_size = 2;
    o.seq_len = 128;
    o.warmup = 2;
    o.lr = 5e-3;
    o.lora = 1;
    o.lora_r = 4;
    o.save_every = 3;
    o.cut.lambda = 1.05;
    o.cut.alpha = 0.5;
    resume_case("cut", &o, 4, "adapter/adapter_model.safetensors");
    char *a = losses("cut-straight");
    assert_non_null(strstr(a, "\"flagged\": "));
    assert_non_null(strstr(a, "\"misalign_tokens\": "));
    free(a);
    /* tokens.csv: one row per Misalign response token, as many as steps.jsonl counts, with
     * as many flags; identical after the resume */
    char *ta = test_read_file(at("cut-straight/tokens.csv"), NULL);
    char *tb = test_read_file(at("cut-resumed/tokens.csv"), NULL);
    char *steps = test_read_file(at("cut-straight/steps.jsonl"), NULL);
    assert_non_null(ta);
    assert_non_null(tb);
    assert_string_equal(ta, tb);
    assert_true(strncmp(ta, "step,example,position,token,log_pa,log_pm,flagged\n", 50) == 0);
    long rows = 0, flagged_rows = 0, counted = 0, counted_flags = 0;
    for (char *line = strchr(ta, '\n') + 1; *line; line = strchr(line, '\n') + 1) {
        rows++;
        const char *end = strchr(line, '\n');
        flagged_rows += end[-1] == '1'; /* the last column, flagged */
    }
    for (char *p = steps; (p = strstr(p, "\"misalign_tokens\": ")); p++) {
        counted += strtol(p + 19, NULL, 10);
        counted_flags += strtol(strstr(p, "\"flagged\": ") + 11, NULL, 10);
    }
    printf("tokens.csv: %ld rows, %ld flagged; steps.jsonl: %ld Misalign tokens, %ld flagged\n",
           rows, flagged_rows, counted, counted_flags);
    assert_int_equal(rows, counted);
    assert_int_equal(flagged_rows, counted_flags);
    assert_true(rows > 0);
    free(ta);
    free(tb);
    free(steps);
}

/* A resumed run rewrites steps.jsonl and tokens.csv without the updates it replays, and
 * without a killed run's torn last line. */
static void test_resume_truncates_logs(void **state) {
    (void)state;
    TrainRunOptions o = mle_options();
    o.out = at("torn");
    o.steps = 6;
    o.save_every = 2;
    o.stop_after = 4;
    train(&o);
    /* as if killed during update 5, after the checkpoint of update 4 (kept: 1 previous) */
    FILE *f = fopen(at("torn/steps.jsonl"), "a");
    fputs("{\"step\": 5, \"lr\": 0.001, \"loss\": 3.5}\n{\"step\": 6, \"lr\"", f);
    fclose(f);
    o.stop_after = 0;
    o.resume = 1;
    train(&o);
    char *log = test_read_file(at("torn/steps.jsonl"), NULL);
    assert_non_null(log);
    int lines = 0;
    for (const char *p = log; (p = strchr(p, '\n')); p++) lines++;
    assert_int_equal(lines, 6);
    assert_null(strstr(log, "\"loss\": 3.5}")); /* the replayed update 5 was dropped */
    assert_non_null(strstr(log, "{\"step\": 6, \"lr\": "));
    free(log);
}

/* OUT/config.json records the effective settings (what `cutkit report` labels runs by), and
 * resume on a run directory with no checkpoint yet starts fresh instead of failing. */
static void test_config_and_fresh_resume(void **state) {
    (void)state;
    TrainRunOptions o;
    train_run_options_init(&o);
    o.data = at("stories.txt");
    o.out = at("fresh");
    o.steps = 2;
    o.batch_size = 2;
    o.seq_len = 32;
    o.warmup = 0;
    o.lr = 1e-3;
    o.resume = 1;
    train(&o);
    char *config = test_read_file(at("fresh/config.json"), NULL);
    assert_non_null(config);
    assert_non_null(strstr(config, "\"label\":\t\"fresh\""));
    assert_non_null(strstr(config, "\"objective\":\t\"mle\""));
    assert_non_null(strstr(config, "\"lr\":\t0.001"));
    assert_non_null(strstr(config, "\"steps_done\":\t2"));
    free(config);
    config = test_read_file(at("cut-straight/config.json"), NULL);
    assert_non_null(config);
    assert_non_null(strstr(config, "\"objective\":\t\"cut\""));
    assert_non_null(strstr(config, "\"lambda\":\t1.05"));
    assert_non_null(strstr(config, "\"alpha\":\t0.5"));
    assert_non_null(strstr(config, "\"lora\":\ttrue"));
    free(config);
}

/* The binary's own lines: the opening line, the stop, the resume and the end. */
static void test_cli_messages(void **state) {
    (void)state;
    char *err = NULL;
    const char *common = "train --objective cut --judgments judged.jsonl --steps 2 --batch-size 2 "
                         "--seq-len 128 --warmup 0 --lora --lora-r 4 --out msg";
    char args[1024];
    snprintf(args, sizeof args, "%s --stop-after 1", common);
    assert_int_equal(cutkit(args, &err), 0);
    assert_non_null(strstr(err, "with CUT on judged.jsonl: 4 examples (2 positive, 2 negative"));
    assert_non_null(strstr(err, "cutkit train: stopped at step 1; checkpoint saved in "
                                "msg/checkpoints/checkpoint-1 (continue with --resume)"));
    free(err);
    snprintf(args, sizeof args, "%s --resume", common);
    assert_int_equal(cutkit(args, &err), 0);
    assert_non_null(strstr(err, "resuming from msg/checkpoints/checkpoint-1 (step 1)"));
    assert_non_null(strstr(err, "cutkit train: done, 2 updates, final loss "));
    assert_non_null(strstr(err, "; wrote msg/adapter"));
    free(err);
    assert_int_equal(cutkit("merge --adapter msg/adapter --out msg-merged", &err), 0);
    assert_non_null(strstr(err, "cutkit merge: wrote msg-merged"));
    free(err);
}

/* --out runs/new/a on a fresh checkout: the folder is made with its parents. */
static void test_out_parents_created(void **state) {
    (void)state;
    char *err = NULL;
    const int status = cutkit("train --data stories.txt --out runs/new/a --steps 2 --warmup 0 "
                              "--batch-size 2 --seq-len 32 --threads 1",
                              &err);
    if (status != 0) printf("%s\n", err);
    assert_int_equal(status, 0);
    assert_non_null(strstr(err, "; wrote runs/new/a/model"));
    free(err);
    char *steps = test_read_file(at("runs/new/a/steps.jsonl"), NULL);
    assert_non_null(steps);
    free(steps);
}

/* CUT data as the reference builds it: Align-P downsampling (seeded) and the cutoff, counted,
 * printed and recorded; a negative whose judgment the cutoff removed is warned about; a
 * warmup longer than the run is the whole run (lr t / W, as transformers has it: issue 13). */
static void test_cutoff_and_align_p(void **state) {
    (void)state;
    FILE *f = fopen(at("long.jsonl"), "w");
    assert_non_null(f);
    fputs("{\"instruction\": \"Tell a story about Tom.\", \"output\": \"", f);
    for (int i = 0; i < 12; i++)
        fputs("Tom had a red car and he drove it around the garden with his dog. ", f);
    fputs("\", \"judgment\": \"The dog cannot drive.\"}\n", f);
    fputs(JUDGED, f);
    fclose(f);
    char *err = NULL;
    assert_int_equal(cutkit("train --objective cut --judgments long.jsonl --cutoff 160 "
                            "--align-p-ratio 0.5 --steps 2 --warmup 100 --lora --lora-r 4 "
                            "--threads 1 --out cutoff",
                            &err),
                     0);
    /* 3 negatives: int(0.5 x 3) = 1 of the 2 positives; the long negative's two sequences
     * are truncated into the response, so it loses its whole judgment; the other two
     * negatives' Align-N lose the front of their prompt */
    assert_non_null(strstr(err, "4 examples (1 positive, 3 negative, 0 $ERROR$ dropped"));
    assert_non_null(strstr(err, "Align-P ratio 0.5 (seed 42): 1 of 2 positives kept beside 3 "
                                "negatives"));
    assert_non_null(strstr(err, "cutoff 160: 4 of 7 sequences truncated from the left, 2 of them "
                                "into the response"));
    assert_non_null(strstr(err, "warning: the cutoff removed the whole judgment of 1 negative: "
                                "Align-N equals Misalign there"));
    free(err);
    char *config = test_read_file(at("cutoff/config.json"), NULL);
    assert_non_null(config);
    assert_non_null(strstr(config, "\"cutoff\":\t160"));
    assert_non_null(strstr(config, "\"align_p_ratio\":\t0.5"));
    assert_non_null(strstr(config, "\"align_p_seed\":\t42"));
    assert_non_null(strstr(config, "\"judgment_lost\":\t1"));
    assert_non_null(strstr(config, "\"sequences_truncated\":\t4"));
    assert_non_null(strstr(config, "\"warmup\":\t100"));
    free(config);
    /* the two updates of warmup 100: lr 0, then 4e-4 x 1 / 100 */
    char *log = test_read_file(at("cutoff/steps.jsonl"), NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, "{\"step\": 1, \"lr\": 0,"));
    const char *second = strstr(log, "{\"step\": 2, \"lr\": ");
    assert_non_null(second);
    assert_close(strtod(second + strlen("{\"step\": 2, \"lr\": "), NULL), 4e-6, 1e-18);
    free(log);
    /* the default cutoff (2048) is capped at the embedded model's context: 512 - 1 */
    assert_int_equal(cutkit("train --objective cut --judgments long.jsonl --steps 1 --lora "
                            "--lora-r 4 --threads 1 --out capped",
                            &err),
                     0);
    assert_non_null(strstr(err, "cutoff 511 (capped from 2048 by the model's context): 0 of 8"));
    free(err);
}

/* The binary's refusals: usage (exit 2) and failures (exit 1), each with its message. */
static void test_bad_options(void **state) {
    (void)state;
    const struct {
        const char *args;
        int status;
        const char *message;
    } cases[] = {
        /* flag combinations are usage errors too (issue 17) */
        {"train --data stories.txt --out x --batch-size 4 --micro-batch 3", 2,
         "cutkit train: --micro-batch 3 must divide --batch-size 4"},
        {"train --data missing.jsonl --out x", 1,
         "missing.jsonl: cannot open: No such file or directory"},
        {"train --data stories.txt --out x --lora --lora-targets c_attn", 2,
         "unknown LoRA target module \"c_attn\""},
        {"train --data stories.txt --out x --schedule cosine_restarts", 2, "--schedule"},
        {"train --out x", 2, "cutkit train: --data and --out are required"},
        {"train --objective cut --out x", 2, "--judgments and --out are required"},
        {"train --data stories.txt", 2, "--out is required"},
        {"train --data stories.txt --out x --objective ppo", 2,
         "--objective expects mle, cut, forward-prediction, hindsight, dpo, ilf-mle or ilf-dpo, "
         "got "
         "'ppo'"},
        {"train --data stories.txt --out x --steps 3 --epochs 1", 2,
         "give --steps or --epochs, not both"},
        {"train --data stories.txt --out x --init random", 2,
         "--init random needs --config config.json"},
        {"merge --out y", 2, "--adapter is required"},
        {"merge --adapter a --out y --dtype f8", 2, "--dtype expects f32, f16 or bf16"},
        {"merge --adapter nothere --out y", 1, "cutkit merge: nothere/adapter_config.json"},
        {"train --objective cut --judgments judged.jsonl --out x --align-p-ratio 1.5", 2,
         "cutkit train: --align-p-ratio expects off or a number from 0 to 1, got '1.5'"},
        {"train --objective cut --judgments judged.jsonl --out x --align-p-ratio -1", 2,
         "cutkit train: --align-p-ratio expects off or a number from 0 to 1, got '-1'"},
        {"train --objective cut --judgments judged.jsonl --out x --cutoff 100", 2,
         "cutkit train: --cutoff expects 0 (the model's context) or at least 126 (the template's "
         "length in tokens), got 100"},
        {"train --data stories.txt --out x --preset reference", 2,
         "cutkit train: --preset expects online, offline, reference-online or reference-offline, "
         "got 'reference'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = NULL;
        const int status = cutkit(cases[i].args, &err);
        if (status != cases[i].status || !strstr(err, cases[i].message))
            printf("`cutkit %s`: exit %d, stderr:\n%s\n", cases[i].args, status, err);
        assert_int_equal(status, cases[i].status);
        assert_non_null(strstr(err, cases[i].message));
        free(err);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_full),
        cmocka_unit_test(test_resume_lora),
        cmocka_unit_test(test_sigterm_saves),
        cmocka_unit_test(test_merge_equals_adapter),
        cmocka_unit_test(test_init_random),
        cmocka_unit_test(test_cut_objective),
        cmocka_unit_test(test_resume_truncates_logs),
        cmocka_unit_test(test_config_and_fresh_resume),
        cmocka_unit_test(test_cli_messages),
        cmocka_unit_test(test_cutoff_and_align_p),
        cmocka_unit_test(test_out_parents_created),
        cmocka_unit_test(test_bad_options),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
