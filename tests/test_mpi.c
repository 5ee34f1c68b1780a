/* test_mpi.c — `mpirun -np K cutkit train` (data parallelism, train/dist.h) trains the run that
 * one process trains with the same flags: the same loss, gradient norm and token count at
 * every update within 1e-5 (only the order of float additions differs), the same CUT
 * detection counts and tokens.csv rows; LoRA dropout masks follow the one-process stream
 * (ranks skip the draws of the micro-batches they do not run); a run interrupted under mpirun
 * resumes under mpirun bit for bit and in one process within 1e-5; a rank that fails ends the
 * whole job with its message in bounded time; --epochs gives ceil(N x items / batch) updates.
 * Sharded evaluation (`mpirun -np K cutkit eval mc|generate|judge`, eval/shard.h) writes the
 * files one process writes, byte for byte, also when resuming, and a failing rank ends it.
 * Built only with -DCUTKIT_MPI=ON (tests/CMakeLists.txt). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/test_util.h"
#include "util/runlock.h"

static char *dir;

/* As root (CI containers) mpirun needs --allow-run-as-root; --oversubscribe lets 3 ranks run
 * on 2 cores; --bind-to none keeps ranks off each other's core when ctest runs tests in
 * parallel (each rank runs 1 thread); shared memory between local ranks. timeout bounds a
 * hang: a test that hangs fails instead of stalling CI. */
#define MPIRUN                                                                                     \
    "timeout 120 " CUTKIT_MPIRUN " --allow-run-as-root --oversubscribe --bind-to none "            \
    "--mca btl self,vader"

static const char *STORY =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
    "park. One day, she saw a big, red ball. She wanted to play with it, but it was too high. "
    "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. "
    "Tom had a red car. He liked to drive it fast around the garden with his dog.\n";

static const char *JUDGED =
    "{\"instruction\": \"Tell a story about Lily.\", \"output\": \"Lily had a red ball. She "
    "played in the park.\", \"judgment\": null}\n"
    "{\"instruction\": \"Tell a story about Tom.\", \"output\": \"Tom had a blue car. He drove "
    "it to the sun.\", \"judgment\": \"Cars cannot drive to the sun.\"}\n"
    "{\"instruction\": \"What colour is the sky?\", \"input\": \"On a clear day.\", \"output\": "
    "\"The sky is green.\", \"judgment\": \"The sky is blue, not green.\"}\n"
    "{\"instruction\": \"Say hello.\", \"output\": \"Hello!\", \"judgment\": null}\n"
    "{\"instruction\": \"Name a fruit.\", \"output\": \"A carrot is a fruit.\", \"judgment\": "
    "\"A carrot is a vegetable.\"}\n"
    "{\"instruction\": \"Count to three.\", \"output\": \"One, two, four.\", \"judgment\": "
    "\"Three comes after two, not four.\"}\n";

static int setup(void **state) {
    (void)state;
    dir = test_temp_dir();
    char path[600];
    snprintf(path, sizeof path, "%s/stories.txt", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 6; i++) fputs(STORY, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/judged.jsonl", dir);
    return test_write_file(path, JUDGED, strlen(JUDGED));
}

static int teardown(void **state) {
    (void)state;
    int rc = test_remove_dir(dir);
    free(dir);
    return rc;
}

/* Runs `cutkit ARGS` in dir under `mpirun -np ranks` (ranks 0: as one plain process);
 * returns the exit status, stderr in *err (may be NULL). */
static int run(int ranks, const char *args, char **err) {
    char cmd[4096];
    if (ranks > 0)
        snprintf(cmd, sizeof cmd, "cd '%s' && " MPIRUN " -np %d '%s' %s", dir, ranks, CUTKIT_BINARY,
                 args);
    else
        snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, CUTKIT_BINARY, args);
    char *out = NULL, *e = NULL;
    int status = test_run(cmd, &out, &e);
    if (status != 0) printf("exit %d from: %s\n%s\n", status, cmd, e ? e : "");
    free(out);
    if (err)
        *err = e;
    else
        free(e);
    return status;
}

/* Occurrences of needle in text. */
static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* One update of steps.jsonl. */
typedef struct {
    long step, tokens;
    double loss, grad_norm;
    long flagged, misalign, positives, negatives; /* CUT only, else -1 */
} StepLine;

static double num(const char *line, const char *key) {
    const char *p = strstr(line, key);
    return p ? strtod(p + strlen(key), NULL) : -1;
}

/* Reads run/steps.jsonl into a malloc'd array; *n lines. */
static StepLine *read_steps(const char *run_dir, int *n) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s/steps.jsonl", dir, run_dir);
    char *text = test_read_file(path, NULL);
    assert_non_null(text);
    StepLine *s = calloc(1000, sizeof *s);
    *n = 0;
    for (char *line = strtok(text, "\n"); line && *n < 1000; line = strtok(NULL, "\n")) {
        StepLine *l = &s[(*n)++];
        l->step = (long)num(line, "\"step\": ");
        l->tokens = (long)num(line, "\"tokens\": ");
        l->loss = num(line, "\"loss\": ");
        l->grad_norm = num(line, "\"grad_norm\": ");
        l->flagged = (long)num(line, "\"flagged\": ");
        l->misalign = (long)num(line, "\"misalign_tokens\": ");
        l->positives = (long)num(line, "\"positives\": ");
        l->negatives = (long)num(line, "\"negatives\": ");
    }
    free(text);
    return s;
}

/* The two runs' curves: the same updates, tokens and CUT counts, and loss and gradient norm
 * within 1e-5 (relative for the norm, which reaches ~10 before clipping). */
static void assert_same_curve(const char *a_dir, const char *b_dir, int steps) {
    int na = 0, nb = 0;
    StepLine *a = read_steps(a_dir, &na), *b = read_steps(b_dir, &nb);
    assert_int_equal(na, steps);
    assert_int_equal(nb, steps);
    double worst = 0;
    for (int i = 0; i < na; i++) {
        assert_int_equal(a[i].step, i + 1);
        assert_int_equal(b[i].step, i + 1);
        assert_int_equal(a[i].tokens, b[i].tokens);
        assert_int_equal(a[i].flagged, b[i].flagged);
        assert_int_equal(a[i].misalign, b[i].misalign);
        assert_int_equal(a[i].positives, b[i].positives);
        assert_int_equal(a[i].negatives, b[i].negatives);
        double d = fabs(a[i].loss - b[i].loss);
        if (d > worst) worst = d;
        assert_close(a[i].loss, b[i].loss, 1e-5);
        assert_close(a[i].grad_norm, b[i].grad_norm, 1e-5 * (1 + fabs(a[i].grad_norm)));
    }
    printf("%s vs %s: %d updates, largest loss difference %.3g\n", a_dir, b_dir, na, worst);
    free(a);
    free(b);
}

/* steps.jsonl lines without the timing and rank fields, for bit-for-bit comparisons. */
static char *losses(const char *run_dir) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s/steps.jsonl", dir, run_dir);
    char *text = test_read_file(path, NULL);
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

/* Full fine-tuning with MLE: 2 ranks (micro-batches 0, 2 | 1, 3) and 3 ranks (an uneven
 * split: 0, 3 | 1 | 2) against one process. The 2-rank run starts without OPENBLAS_CORETYPE,
 * so each rank re-executes itself (model/blas_env.c) before MPI starts. */
static void test_mle_full(void **state) {
    (void)state;
    const char *common = "train --data stories.txt --steps 8 --batch-size 4 --micro-batch 1 "
                         "--seq-len 48 --warmup 2 --lr 2e-3 --threads 1";
    char args[1024], *err = NULL;
    snprintf(args, sizeof args, "%s --out full-1", common);
    assert_int_equal(run(0, args, NULL), 0);
    snprintf(args, sizeof args, "%s --out full-2", common);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && env -u OPENBLAS_CORETYPE " MPIRUN " -np 2 '%s' %s --out full-2", dir,
             CUTKIT_BINARY, common);
    char *out = NULL;
    assert_int_equal(test_run(cmd, &out, &err), 0);
    free(out);
    /* rank 0 alone speaks */
    assert_int_equal(count(err, "data-parallel on 2 ranks"), 1);
    assert_int_equal(count(err, "cutkit train: done"), 1);
    free(err);
    snprintf(args, sizeof args, "%s --out full-3", common);
    assert_int_equal(run(3, args, &err), 0);
    free(err);
    assert_same_curve("full-1", "full-2", 8);
    assert_same_curve("full-1", "full-3", 8);
    /* several ranks log how long the sum took */
    char path[700];
    snprintf(path, sizeof path, "%s/full-2/steps.jsonl", dir);
    char *log = test_read_file(path, NULL);
    assert_non_null(strstr(log, "\"ranks\": 2, \"allreduce_seconds\": "));
    free(log);
    snprintf(path, sizeof path, "%s/full-2/model/model.safetensors", dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fclose(f);
}

/* LoRA with dropout 0.1 on every module: each micro-batch must draw the same masks as in
 * one process, so ranks skip the stream past the other ranks' micro-batches. Unequal
 * sequence lengths (the corpus's last window is short) make a wrong skip count show. */
static void test_lora_dropout(void **state) {
    (void)state;
    const char *common = "train --data stories.txt --steps 8 --batch-size 6 --micro-batch 1 "
                         "--seq-len 40 --warmup 0 --schedule constant --lr 5e-3 --lora "
                         "--lora-r 4 --lora-targets all --lora-dropout 0.1 --threads 1";
    char args[1024];
    snprintf(args, sizeof args, "%s --out lora-1", common);
    assert_int_equal(run(0, args, NULL), 0);
    snprintf(args, sizeof args, "%s --out lora-2", common);
    assert_int_equal(run(2, args, NULL), 0);
    snprintf(args, sizeof args, "%s --out lora-3", common);
    assert_int_equal(run(3, args, NULL), 0);
    assert_same_curve("lora-1", "lora-2", 8);
    assert_same_curve("lora-1", "lora-3", 8);
}

/* A tokens.csv row: everything but the two log-probs, which may differ in the last digits. */
static void split_row(char *row, char *key, size_t key_size, double *lpa, double *lpm) {
    /* step,example,position,token,log_pa,log_pm,flagged */
    char *f[7];
    int n = 0;
    for (char *p = strtok(row, ","); p && n < 7; p = strtok(NULL, ",")) f[n++] = p;
    assert_int_equal(n, 7);
    snprintf(key, key_size, "%s,%s,%s,%s,%s", f[0], f[1], f[2], f[3], f[6]);
    *lpa = strtod(f[4], NULL);
    *lpm = strtod(f[5], NULL);
}

/* CUT with LoRA on judgment records, micro-batches of 1 and 2 examples: the detection counts
 * per update equal the one-process run's, and tokens.csv has the same rows in the same order
 * (rank 0 gathers every rank's rows and writes them in micro-batch order). */
static void test_cut(void **state) {
    (void)state;
    const char *common = "train --objective cut --judgments judged.jsonl --steps 4 "
                         "--batch-size 4 --seq-len 128 --warmup 1 --lr 5e-3 --lora --lora-r 4 "
                         "--lambda 1.05 --alpha 0.5 --threads 1";
    char args[1024];
    for (int mb = 1; mb <= 2; mb++) {
        char one[32], two[32];
        snprintf(one, sizeof one, "cut%d-1", mb);
        snprintf(two, sizeof two, "cut%d-2", mb);
        snprintf(args, sizeof args, "%s --micro-batch %d --out %s", common, mb, one);
        assert_int_equal(run(0, args, NULL), 0);
        snprintf(args, sizeof args, "%s --micro-batch %d --out %s", common, mb, two);
        assert_int_equal(run(2, args, NULL), 0);
        assert_same_curve(one, two, 4);
        char pa[700], pb[700];
        snprintf(pa, sizeof pa, "%s/%s/tokens.csv", dir, one);
        snprintf(pb, sizeof pb, "%s/%s/tokens.csv", dir, two);
        char *ta = test_read_file(pa, NULL), *tb = test_read_file(pb, NULL);
        assert_non_null(ta);
        assert_non_null(tb);
        /* row by row: the same key columns, log-probs within 1e-5 of |log p| */
        char *sa = NULL, *sb = NULL;
        char *la = strtok_r(ta, "\n", &sa), *lb = strtok_r(tb, "\n", &sb);
        assert_string_equal(la, lb); /* the header */
        long rows = 0, flagged = 0;
        double worst = 0;
        for (;;) {
            la = strtok_r(NULL, "\n", &sa);
            lb = strtok_r(NULL, "\n", &sb);
            if (!la || !lb) break;
            char ka[128], kb[128];
            double a1, a2, b1, b2;
            split_row(la, ka, sizeof ka, &a1, &a2);
            split_row(lb, kb, sizeof kb, &b1, &b2);
            assert_string_equal(ka, kb);
            flagged += ka[strlen(ka) - 1] == '1';
            double d = fmax(fabs(a1 - b1) / (1 + fabs(a1)), fabs(a2 - b2) / (1 + fabs(a2)));
            if (d > worst) worst = d;
            assert_close(a1, b1, 1e-5 * (1 + fabs(a1)));
            assert_close(a2, b2, 1e-5 * (1 + fabs(a2)));
            rows++;
        }
        assert_null(la);
        assert_null(lb);
        printf("tokens.csv, micro-batch %d: %ld rows, %ld flagged, same order; largest log-prob "
               "difference %.3g\n",
               mb, rows, flagged, worst);
        assert_true(rows > 20);
        assert_true(flagged > 0);
        free(ta);
        free(tb);
    }
}

/* An interrupted run under mpirun: resumed under mpirun it continues bit for bit (same ranks,
 * same threads: the same sums in the same order); resumed in one process it continues within
 * 1e-5 (a checkpoint does not depend on the number of ranks). */
static void test_resume(void **state) {
    (void)state;
    const char *common = "train --data stories.txt --steps 10 --batch-size 4 --micro-batch 1 "
                         "--seq-len 48 --warmup 2 --lr 2e-3 --save-every 3 --lora --lora-r 4 "
                         "--lora-targets q_proj,v_proj,down_proj --threads 1";
    char args[1024], *err = NULL;
    snprintf(args, sizeof args, "%s --out res-straight", common);
    assert_int_equal(run(2, args, NULL), 0);
    snprintf(args, sizeof args, "%s --out res-a --stop-after 5", common);
    assert_int_equal(run(2, args, &err), 0);
    assert_non_null(strstr(err, "stopped at step 5; checkpoint saved in"));
    free(err);
    /* a copy of the interrupted run, to resume in one process */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && cp -r res-a res-b", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "%s --out res-a --resume", common);
    assert_int_equal(run(2, args, &err), 0);
    assert_int_equal(count(err, "resuming from"), 1); /* printed by rank 0 alone */
    free(err);
    char *a = losses("res-straight"), *b = losses("res-a");
    assert_string_equal(a, b);
    free(a);
    free(b);
    snprintf(args, sizeof args, "%s --out res-b --resume", common);
    assert_int_equal(run(0, args, NULL), 0);
    assert_same_curve("res-straight", "res-b", 10);
}

/* A rank that cannot read its data (an MPMD launch gives rank 1 another file) ends the job:
 * exit status non-zero within the timeout, and rank 1's message names the file. Ranks given
 * different flags are refused before the first update by all ranks. */
static void test_failing_rank(void **state) {
    (void)state;
    const char *common = "train --steps 50 --warmup 0 --batch-size 4 --seq-len 48 --threads 1";
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && " MPIRUN " -np 1 '%s' %s --data stories.txt --out fail-a : -np 1 '%s' "
             "%s --data missing.txt --out fail-a",
             dir, CUTKIT_BINARY, common, CUTKIT_BINARY, common);
    char *out = NULL, *err = NULL;
    int status = test_run(cmd, &out, &err);
    printf("exit %d; stderr:\n%s\n", status, err);
    assert_int_not_equal(status, 0);
    assert_int_not_equal(status, 124); /* not the timeout */
    assert_non_null(strstr(err, "cutkit: rank 1: train: missing.txt: cannot open"));
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && " MPIRUN " -np 1 '%s' %s --data stories.txt --out fail-b : -np 1 '%s' "
             "%s --data stories.txt --out fail-b --seed 7",
             dir, CUTKIT_BINARY, common, CUTKIT_BINARY, common);
    status = test_run(cmd, &out, &err);
    assert_int_not_equal(status, 0);
    assert_int_not_equal(status, 124);
    assert_non_null(
        strstr(err, "ranks do not start from the same model, data, flags or checkpoint"));
    free(out);
    free(err);
}

/* --epochs N: ceil(N x sequences / batch) updates (18 windows of 48 tokens here), the same
 * under mpirun; with --steps it is refused. */
static void test_epochs(void **state) {
    (void)state;
    char *err = NULL;
    assert_int_equal(run(2,
                         "train --data stories.txt --epochs 1.5 --batch-size 4 --seq-len 48 "
                         "--micro-batch 2 --warmup 1 --threads 1 --out ep",
                         &err),
                     0);
    assert_non_null(strstr(err, "18 sequences, 7 updates of 4 (1.5 epochs of 18)"));
    free(err);
    int n = 0;
    StepLine *s = read_steps("ep", &n);
    assert_int_equal(n, 7); /* ceil(1.5 x 18 / 4) = ceil(6.75) */
    free(s);
    assert_int_equal(run(0, "train --data stories.txt --epochs 1 --steps 3 --out x", &err), 2);
    assert_non_null(strstr(err, "give --steps or --epochs, not both"));
    free(err);
}

/* The bytes of dir/name (asserted to exist); the caller frees them. */
static char *slurp(const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = test_read_file(path, NULL);
    if (!text) printf("missing: %s\n", path);
    assert_non_null(text);
    return text;
}

/* dir/a and dir/b hold the same bytes. */
static void assert_same_file(const char *a, const char *b) {
    char *ta = slurp(a), *tb = slurp(b);
    if (strcmp(ta, tb) != 0) printf("%s and %s differ\n", a, b);
    assert_string_equal(ta, tb);
    free(ta);
    free(tb);
}

/* Keeps the first `lines` lines of dir/name and half of the next (a killed run). */
static void cut_lines(const char *name, int lines) {
    char *text = slurp(name);
    char *p = text;
    for (int i = 0; i < lines; i++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    char *next = strchr(p, '\n');
    assert_non_null(next);
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(test_write_file(path, text, (size_t)(p - text) + (size_t)(next - p) / 2), 0);
    free(text);
}

/* Sharded multiple-choice evaluation: on 2 ranks and on 3 (20 items split 10 | 10 and
 * 6 | 7 | 7) items.jsonl and results.json equal the one-process files byte for byte (each
 * item is scored on one rank by the same code, and its scores travel bit for bit); a run
 * killed mid-way resumes under mpirun to the same files; rank 0 alone speaks. */
static void test_eval_mc(void **state) {
    (void)state;
    const char *common = "eval mc --task arc_challenge,truthfulqa_mc2 --limit 20 --threads 1";
    char args[1024], *err = NULL;
    snprintf(args, sizeof args, "%s --out mc-1", common);
    assert_int_equal(run(0, args, NULL), 0);
    snprintf(args, sizeof args, "%s --out mc-2", common);
    assert_int_equal(run(2, args, &err), 0);
    assert_int_equal(count(err, "cutkit eval mc: wrote"), 1);
    assert_int_equal(count(err, "arc_challenge: acc "), 1);
    free(err);
    snprintf(args, sizeof args, "%s --out mc-3", common);
    assert_int_equal(run(3, args, NULL), 0);
    char *items = slurp("mc-1/items.jsonl"), *res = slurp("mc-1/results.json");
    assert_int_equal(count(items, "\n"), 40);
    assert_int_equal(count(items, "\"task\":\"truthfulqa_mc2\""), 20);
    assert_non_null(strstr(res, "\"acc,none\""));
    free(items);
    free(res);
    assert_same_file("mc-1/items.jsonl", "mc-2/items.jsonl");
    assert_same_file("mc-1/results.json", "mc-2/results.json");
    assert_same_file("mc-1/items.jsonl", "mc-3/items.jsonl");
    assert_same_file("mc-1/results.json", "mc-3/results.json");
    /* killed after 27 items (all of ARC, 7 of TruthfulQA) and half a line: resumed on 2 ranks,
     * which score the 13 left, 6 | 7 */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/mc-r' && cp '%s/mc-1/items.jsonl' '%s/mc-r/'", dir, dir,
             dir);
    assert_int_equal(system(cmd), 0);
    cut_lines("mc-r/items.jsonl", 27);
    snprintf(args, sizeof args, "%s --out mc-r --resume", common);
    assert_int_equal(run(2, args, &err), 0);
    assert_int_equal(count(err, "truthfulqa_mc2: 7 of 20 items already in items.jsonl"), 1);
    free(err);
    assert_same_file("mc-1/items.jsonl", "mc-r/items.jsonl");
    assert_same_file("mc-1/results.json", "mc-r/results.json");
}

/* Sharded generation and judging on a small synthetic world: sampled responses (each record
 * seeded by (seed, i)) on 2 and 3 ranks, in rounds of about --save-every 3 records, equal
 * one process's model_outputs.json byte for byte, also resumed under mpirun after a
 * one-process run of the first 3; the synth judge's and the model judge's (continuous
 * preferences) annotations.json likewise, also resumed. */
static void test_eval_generate_judge(void **state) {
    (void)state;
    char args[1024];
    assert_int_equal(run(0, "datasets synth --out syn --train 8 --test 8 --warmup 8", NULL), 0);
    const char *gen = "eval generate --instructions syn/instructions.json --template "
                      "syn/template.json --max-tokens 40 --threads 1 --save-every 3";
    snprintf(args, sizeof args, "%s --temperature 0.8 --seed 5 --out gen-1.json", gen);
    assert_int_equal(run(0, args, NULL), 0);
    snprintf(args, sizeof args, "%s --temperature 0.8 --seed 5 --out gen-2.json", gen);
    assert_int_equal(run(2, args, NULL), 0);
    snprintf(args, sizeof args, "%s --temperature 0.8 --seed 5 --out gen-3.json", gen);
    assert_int_equal(run(3, args, NULL), 0);
    char *g = slurp("gen-1.json");
    assert_int_equal(count(g, "\"generator\":\"stories260K\""), 8);
    free(g);
    assert_same_file("gen-1.json", "gen-2.json");
    assert_same_file("gen-1.json", "gen-3.json");
    snprintf(args, sizeof args, "%s --temperature 0.8 --seed 5 --limit 3 --out gen-r.json", gen);
    assert_int_equal(run(0, args, NULL), 0);
    char *err = NULL;
    snprintf(args, sizeof args, "%s --temperature 0.8 --seed 5 --out gen-r.json", gen);
    assert_int_equal(run(2, args, &err), 0);
    assert_int_equal(count(err, "resuming after 3 of 8 responses"), 1);
    free(err);
    assert_same_file("gen-1.json", "gen-r.json");
    /* the greedy baseline */
    snprintf(args, sizeof args, "%s --out base.json", gen);
    assert_int_equal(run(0, args, NULL), 0);

    const char *judges[] = {"synth", "model"};
    for (int k = 0; k < 2; k++) {
        char jcommon[512], one[64], name[64];
        snprintf(jcommon, sizeof jcommon,
                 "eval judge --outputs gen-1.json --reference base.json --judge %s "
                 "--save-every 3 --threads 1",
                 judges[k]);
        snprintf(one, sizeof one, "judge-%s-1.json", judges[k]);
        snprintf(args, sizeof args, "%s --out %s", jcommon, one);
        assert_int_equal(run(0, args, NULL), 0);
        for (int ranks = 2; ranks <= 3; ranks++) {
            snprintf(name, sizeof name, "judge-%s-%d.json", judges[k], ranks);
            snprintf(args, sizeof args, "%s --out %s", jcommon, name);
            assert_int_equal(run(ranks, args, NULL), 0);
            assert_same_file(one, name);
        }
        snprintf(name, sizeof name, "judge-%s-r.json", judges[k]);
        snprintf(args, sizeof args, "%s --limit 3 --out %s", jcommon, name);
        assert_int_equal(run(0, args, NULL), 0);
        snprintf(args, sizeof args, "%s --out %s", jcommon, name);
        assert_int_equal(run(2, args, &err), 0);
        assert_int_equal(count(err, "8 pairs, 5 judged now, 0 missing"), 1);
        free(err);
        assert_same_file(one, name);
        char *a = slurp(one);
        assert_int_equal(count(a, "\"preference\":"), 8);
        /* not all draws: the two outputs differ and the judges tell them apart */
        assert_true(count(a, "\"preference\":1.5,") < 8);
        free(a);
    }
}

/* A rank that cannot read its file (an MPMD launch gives rank 1 another one) ends the
 * sharded evaluation with its message, in bounded time; ranks given different flags are
 * refused by every rank before any work. */
static void test_eval_failing_rank(void **state) {
    (void)state;
    char cmd[4096], *out = NULL, *err = NULL;
    const char *gen = "eval generate --template syn/template.json --max-tokens 8 --threads 1 "
                      "--out gen-fail.json";
    snprintf(cmd, sizeof cmd,
             "cd '%s' && " MPIRUN " -np 1 '%s' %s --instructions syn/instructions.json : -np 1 "
             "'%s' %s --instructions missing.json",
             dir, CUTKIT_BINARY, gen, CUTKIT_BINARY, gen);
    int status = test_run(cmd, &out, &err);
    printf("exit %d; stderr:\n%s\n", status, err);
    assert_int_not_equal(status, 0);
    assert_int_not_equal(status, 124); /* not the timeout */
    assert_non_null(strstr(err, "cutkit: rank 1: eval generate: missing.json: cannot open"));
    free(out);
    free(err);
    const char *mc = "eval mc --task arc_challenge --threads 1 --out mc-fail";
    snprintf(cmd, sizeof cmd,
             "cd '%s' && " MPIRUN " -np 1 '%s' %s --limit 5 : -np 1 '%s' %s --limit 5 --data "
             "missing-arc.jsonl",
             dir, CUTKIT_BINARY, mc, CUTKIT_BINARY, mc);
    status = test_run(cmd, &out, &err);
    assert_int_not_equal(status, 0);
    assert_int_not_equal(status, 124);
    assert_non_null(strstr(err, "cutkit: rank 1: eval mc: missing-arc.jsonl:"));
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && " MPIRUN " -np 1 '%s' %s --limit 5 : -np 1 '%s' %s --limit 6", dir,
             CUTKIT_BINARY, mc, CUTKIT_BINARY, mc);
    status = test_run(cmd, &out, &err);
    assert_int_not_equal(status, 0);
    assert_int_not_equal(status, 124);
    assert_non_null(strstr(err, "arc_challenge: the ranks built different items"));
    free(out);
    free(err);
}

/* A run directory in use by another process (this test) is refused by rank 0, which locks it,
 * and the refusal ends every rank in bounded time: train and the sharded eval mc. */
static void test_locked_run_dir_ends_every_rank(void **state) {
    (void)state;
    char path[700], expected[200];
    snprintf(path, sizeof path, "%s/locked", dir);
    assert_int_equal(mkdir(path, 0777), 0);
    RunLock held = {0};
    CkError lock_err = {{0}};
    assert_int_equal(runlock_acquire(&held, path, &lock_err), 0);
    snprintf(expected, sizeof expected, "locked is in use by pid %ld", (long)getpid());
    const char *cases[][2] = {
        {"train --data stories.txt --steps 2 --warmup 0 --batch-size 4 --seq-len 48 --threads 1 "
         "--out locked",
         "cutkit: rank 0: train: "},
        {"eval mc --task arc_challenge --limit 4 --threads 1 --out locked",
         "cutkit: rank 0: eval mc: "},
    };
    for (int i = 0; i < 2; i++) {
        char *err = NULL;
        const int status = run(2, cases[i][0], &err);
        assert_int_not_equal(status, 0);
        assert_int_not_equal(status, 124); /* not the timeout */
        assert_non_null(strstr(err, cases[i][1]));
        assert_non_null(strstr(err, expected));
        free(err);
    }
    runlock_release(&held);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mle_full),
        cmocka_unit_test(test_lora_dropout),
        cmocka_unit_test(test_cut),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_failing_rank),
        cmocka_unit_test(test_epochs),
        cmocka_unit_test(test_eval_mc),
        cmocka_unit_test(test_eval_generate_judge),
        cmocka_unit_test(test_eval_failing_rank),
        cmocka_unit_test(test_locked_run_dir_ends_every_rank),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
