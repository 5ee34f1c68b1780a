/* bench_mpi.c — cutkit's side of bench/run_mpi.sh: data-parallel training throughput. Run it
 * alone (one process) or under `mpirun -np K`; it trains through trainer_run exactly as
 * `cutkit train` does, on a corpus of random token sequences (no tokenizer needed, so any
 * llama2.c model shape works), then rank 0 prints one JSON line:
 *
 *   cutkit-bench-mpi --model PATH --batch B --micro-batch M --seq T --threads N --steps S
 *                    --warmup W [--lora] [--seed 1234] [--out DIR]
 *
 * tokens_per_s = global tokens of an update / median update seconds (steps.jsonl, after W
 * warm-up updates); median_allreduce_s = the median "allreduce_seconds" of steps.jsonl (the
 * gradient and statistics sums, waiting for the slowest rank included); pure_allreduce_s =
 * one sum of the whole gradient buffer after a barrier (median of 10): the communication
 * alone. */
#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "model/blas_env.h"
#include "train/dist.h"
#include "formats/llama2c.h"
#include "util/fileio.h"
#include "util/jsonl.h"
#include "util/threads.h"
#include "util/timer.h"
#include "train/trainer.h"

typedef struct {
    const char *model, *out;
    int batch, micro_batch, seq, threads, steps, warmup, lora;
    uint64_t seed;
} Options;

static int parse(Options *o, int argc, char **argv) {
    *o = (Options){NULL, "/tmp/cutkit-bench-mpi", 4, 1, 256, 1, 10, 2, 0, 1234};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--lora")) {
            o->lora = 1;
            continue;
        }
        if (!v) return -1;
        i++;
        if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--out"))
            o->out = v;
        else if (!strcmp(a, "--batch"))
            o->batch = atoi(v);
        else if (!strcmp(a, "--micro-batch"))
            o->micro_batch = atoi(v);
        else if (!strcmp(a, "--seq"))
            o->seq = atoi(v);
        else if (!strcmp(a, "--threads"))
            o->threads = atoi(v);
        else if (!strcmp(a, "--steps"))
            o->steps = atoi(v);
        else if (!strcmp(a, "--warmup"))
            o->warmup = atoi(v);
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, NULL, 10);
        else
            return -1;
    }
    return o->model && o->batch > 0 && o->micro_batch > 0 && o->batch % o->micro_batch == 0 &&
                   o->seq >= 2 && o->steps > 0 && o->warmup >= 0
               ? 0
               : -1;
}

/* 4 batches' worth of sequences of seq random ids (splitmix64), every next token trained. */
static int random_corpus(Corpus *c, const Options *o, int vocab) {
    c->n_seqs = 4 * o->batch;
    c->max_len = o->seq;
    const size_t n = (size_t)c->n_seqs * o->seq;
    c->offsets = malloc(sizeof(int) * (size_t)(c->n_seqs + 1));
    c->tokens = malloc(sizeof(int) * n);
    c->train = malloc(n);
    if (!c->offsets || !c->tokens || !c->train) return -1;
    uint64_t s = o->seed;
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        c->tokens[i] = (int)((z ^ (z >> 31)) % (uint64_t)vocab);
        c->train[i] = 1;
    }
    for (int i = 0; i <= c->n_seqs; i++) c->offsets[i] = i * o->seq;
    return 0;
}

/* Medians of "seconds" and "allreduce_seconds" over the updates after the warm-up, and the
 * tokens of an update, from steps.jsonl (zeros when it cannot be read). */
static void read_log(const char *path, int warmup, double *step_s, double *sum_s, long *tokens) {
    static double a[4096], b[4096];
    int n = 0, line_no = 0;
    *tokens = 0;
    CkError err = {{0}};
    size_t len = 0;
    char *text = fileio_read_text(path, (size_t)1 << 30, &len, &err);
    JsonlCursor c;
    jsonl_init(&c, text ? text : "", text ? len : 0);
    cJSON *obj = NULL;
    while (n < 4096 && jsonl_next_object(&c, path, 1, &obj, &err) == 1) {
        if (++line_no > warmup) {
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(obj, "seconds");
            const cJSON *q = cJSON_GetObjectItemCaseSensitive(obj, "allreduce_seconds");
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "tokens");
            a[n] = cJSON_IsNumber(p) ? p->valuedouble : 0;
            b[n] = cJSON_IsNumber(q) ? q->valuedouble : 0;
            if (cJSON_IsNumber(t)) *tokens = (long)t->valuedouble;
            n++;
        }
        cJSON_Delete(obj);
    }
    if (!text || err.msg[0]) fprintf(stderr, "cutkit-bench-mpi: %s\n", err.msg);
    free(text);
    *step_s = bench_median(a, n);
    *sum_s = bench_median(b, n);
}

int main(int argc, char **argv) {
    blas_env_ensure(argv);
    CkError err = {{0}};
    if (dist_init(&argc, &argv, &err) != 0) dist_abort(err.msg);
    Options o;
    if (parse(&o, argc, argv) != 0) {
        if (dist_rank() == 0)
            fprintf(stderr, "usage: cutkit-bench-mpi --model PATH [--batch B] [--micro-batch M] "
                            "[--seq T] [--threads N] [--steps S] [--warmup W] [--lora] [--out "
                            "DIR]\n");
        dist_finalize();
        return 2;
    }
    threads_set(o.threads);
    Model m;
    if (llama2c_load_file(&m, o.model, &err) != 0) dist_abort(err.msg);
    if (o.seq > m.config.seq_len) dist_abort("--seq exceeds the model's context");
    Corpus c = {0};
    if (random_corpus(&c, &o, m.config.vocab_size) != 0) dist_abort("out of memory");
    HfConfig cfg = {.bos_token_id = 1, .eos_token_id = 2};
    cfg.model = m.config;
    TrainOptions t = {0};
    t.steps = o.steps + o.warmup;
    t.batch_size = o.batch;
    t.micro_batch = o.micro_batch;
    t.lr = 1e-3;
    t.schedule = SCHED_CONSTANT;
    t.adamw = adamw_config_default();
    t.max_grad_norm = 1.0;
    t.use_lora = o.lora;
    t.lora = (LoraConfig){16, 32.0f, 0.0f,
                          LORA_BIT(LORA_GATE) | LORA_BIT(LORA_UP) | LORA_BIT(LORA_DOWN)};
    t.seed = o.seed;
    t.out_dir = o.out;
    t.keep_checkpoints = 1;
    t.base_name = o.model;
    t.command_line = "cutkit-bench-mpi";
    TrainData d = {&c, NULL, 0};
    TrainReport report;
    /* stderr of the trainer (progress) is the caller's to discard */
    if (trainer_run(&m, &cfg, &d, &t, &report, &err) != 0) dist_abort(err.msg);
    /* the communication alone: one sum of the trainable buffer, every rank ready */
    size_t n_sum = m.n_params;
    if (o.lora) {
        LoraAdapters ad;
        if (lora_init(&ad, &m, &t.lora, 1, &err) != 0) dist_abort(err.msg);
        n_sum = ad.n_params;
        lora_free(&ad);
    }
    float *buf = calloc(n_sum, sizeof(float));
    if (!buf) dist_abort("out of memory");
    double pure[10];
    for (int i = 0; i < 10; i++) {
        if (dist_barrier(&err) != 0) dist_abort(err.msg);
        double t0 = timer_seconds();
        if (dist_allreduce_sum_f32(buf, n_sum, &err) != 0) dist_abort(err.msg);
        pure[i] = timer_seconds() - t0;
    }
    free(buf);
    if (dist_rank() == 0) {
        char path[4200];
        snprintf(path, sizeof path, "%s/steps.jsonl", o.out);
        double step_s, sum_s;
        long tokens;
        read_log(path, o.warmup, &step_s, &sum_s, &tokens);
        printf("{\"impl\": \"cutkit\", \"ranks\": %d, \"threads\": %d, \"batch\": %d, "
               "\"micro_batch\": %d, \"seq\": %d, \"lora\": %d, \"trained_params\": %zu, "
               "\"tokens_per_s\": %.1f, \"median_step_s\": %.6f, \"median_allreduce_s\": %.6f, "
               "\"pure_allreduce_s\": %.6f, \"gradient_mb\": %.2f, \"final_loss\": %.6f}\n",
               dist_size(), o.threads, o.batch, o.micro_batch, o.seq, o.lora, n_sum,
               step_s > 0 ? tokens / step_s : 0.0, step_s, sum_s, bench_median(pure, 10),
               n_sum * 4.0 / 1e6, report.last_loss);
    }
    free(c.offsets);
    free(c.tokens);
    free(c.train);
    model_free(&m);
    dist_finalize();
    return 0;
}
