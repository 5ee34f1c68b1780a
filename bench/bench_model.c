/* bench_model.c — cutkit's side of bench/run.sh: times scoring and generation and prints one
 * JSON line per run, in the same shape as bench/torch_ref.py.
 *
 *   cutkit-bench score --model PATH --batch B --seq T --threads N [--repeats R] [--warmup W]
 *   cutkit-bench generate --model PATH --steps N --threads N
 *   (both take --compute fp32|bf16, default fp32: the layer products' compute type, recorded
 *   in the JSON line as "compute" beside "backend", what the products ran on)
 *   cutkit-bench load --model PATH (a Hugging Face folder or a llama2.c file) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "model/blas_env.h"
#include "model/matmul.h"
#include "formats/hf_model.h"
#include "formats/lm.h"
#include "formats/llama2c.h"
#include "model/model.h"
#include "util/rng.h"
#include "model/sampler.h"
#include "util/threads.h"
#include "util/timer.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *arg_value(int argc, char **argv, const char *name, const char *def) {
    for (int i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return def;
}

/* Applies --compute (fp32 when absent) before anything runs: 0, or the exit code after saying
 * why (2: not fp32 or bf16; 1: bf16 cannot run in this build or on this CPU). */
static int apply_compute(int argc, char **argv) {
    CkError err = {{0}};
    MatmulCompute c;
    int rc = 0;
    if (compute_parse(arg_value(argc, argv, "--compute", "fp32"), &c, &err) != 0)
        rc = 2;
    else if (matmul_set_compute(c, &err) != 0)
        rc = 1;
    if (rc) fprintf(stderr, "cutkit-bench: %s\n", err.msg);
    return rc;
}

static int bench_score(const Model *m, int batch, int seq, int repeats, int warmup, int threads) {
    CkError err = {{0}};
    Activations acts;
    const int n = batch * seq;
    if (activations_init(&acts, m, n, seq, 0, &err) != 0) {
        fprintf(stderr, "cutkit-bench: %s\n", err.msg);
        return 1;
    }
    int *tokens = malloc(sizeof(int) * (size_t)n), *offsets = malloc(sizeof(int) * (batch + 1));
    double *sums = malloc(sizeof(double) * (size_t)batch),
           *times = malloc(sizeof(double) * repeats);
    int *counts = malloc(sizeof(int) * (size_t)batch);
    Rng rng;
    rng_seed(&rng, 1234);
    for (int i = 0; i < n; i++) tokens[i] = (int)(rng_next(&rng) % (uint64_t)m->config.vocab_size);
    for (int s = 0; s <= batch; s++) offsets[s] = s * seq;
    TokenBatch b = {batch, offsets, tokens};
    int rc = 0;
    for (int r = 0; r < warmup + repeats && rc == 0; r++) {
        double t0 = timer_seconds();
        rc = model_score_sequences(m, &acts, &b, sums, counts, &err);
        if (r >= warmup) times[r - warmup] = timer_seconds() - t0;
    }
    if (rc == 0) {
        qsort(times, (size_t)repeats, sizeof(double), cmp_double);
        double median = times[repeats / 2];
        printf("{\"impl\":\"cutkit\",\"mode\":\"score\",\"threads\":%d,\"batch\":%d,\"seq\":%d,"
               "\"tokens_per_s\":%.1f,\"median_s\":%.6f,\"sum_logprob_seq0\":%.6f,"
               "\"compute\":\"%s\",\"backend\":\"%s\"}\n",
               threads, batch, seq, n / median, median, sums[0], matmul_compute_name(),
               matmul_backend_name());
    } else {
        fprintf(stderr, "cutkit-bench: %s\n", err.msg);
    }
    free(tokens);
    free(offsets);
    free(sums);
    free(times);
    free(counts);
    activations_free(&acts);
    return rc ? 1 : 0;
}

/* Greedy generation from BOS with the KV cache: `repeats` timed runs of `steps` tokens after
 * one warm-up run, median reported (as torch_ref.py does). */
static int bench_generate(const Model *m, int steps, int repeats, int threads) {
    CkError err = {{0}};
    Activations acts;
    KVCache cache;
    if (steps > m->config.seq_len) steps = m->config.seq_len;
    if (kvcache_init(&cache, m, steps, &err) != 0 ||
        activations_init(&acts, m, 1, steps, 0, &err) != 0) {
        fprintf(stderr, "cutkit-bench: %s\n", err.msg);
        return 1;
    }
    float *logits = malloc(sizeof(float) * (size_t)m->config.vocab_size);
    double *times = malloc(sizeof(double) * (size_t)(repeats + 1));
    int offsets[2] = {0, 1}, rc = 0;
    for (int r = 0; r <= repeats && rc == 0; r++) {
        int token = 1;
        cache.len = 0;
        double t0 = timer_seconds();
        for (int pos = 0; pos < steps && rc == 0; pos++) {
            TokenBatch b = {1, offsets, &token};
            rc = model_forward(m, &acts, &b, &cache, NULL, &err);
            model_logits_row(m, &acts, 0, logits, NULL);
            token = sampler_argmax(logits, m->config.vocab_size);
        }
        times[r] = timer_seconds() - t0; /* times[0] is the warm-up */
    }
    if (rc == 0) {
        qsort(times + 1, (size_t)repeats, sizeof(double), cmp_double);
        double median = times[1 + repeats / 2];
        printf("{\"impl\":\"cutkit\",\"mode\":\"generate\",\"threads\":%d,\"steps\":%d,"
               "\"tokens_per_s\":%.1f,\"seconds\":%.6f,\"compute\":\"%s\",\"backend\":\"%s\"}\n",
               threads, steps, steps / median, median, matmul_compute_name(),
               matmul_backend_name());
    } else {
        fprintf(stderr, "cutkit-bench: %s\n", err.msg);
    }
    free(logits);
    free(times);
    kvcache_free(&cache);
    activations_free(&acts);
    return rc ? 1 : 0;
}

/* Opening a model: a Hugging Face folder (memory-mapped safetensors converted straight into
 * the parameter buffer) or a llama2.c file; reports seconds and peak RSS. */
static int bench_load(const char *path, int threads) {
    Model m;
    HfConfig cfg;
    CkError err = {{0}};
    double t0 = timer_seconds();
    struct stat st;
    int is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    int rc = is_dir ? hf_model_load(&m, &cfg, path, &err) : llama2c_load_file(&m, path, &err);
    double dt = timer_seconds() - t0;
    if (rc != 0) {
        fprintf(stderr, "cutkit-bench: %s\n", err.msg);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"impl\":\"cutkit\",\"mode\":\"load\",\"threads\":%d,\"params\":%zu,"
           "\"seconds\":%.4f,\"peak_rss_mb\":%.1f,\"params_mb\":%.1f}\n",
           threads, m.n_params, dt, ru.ru_maxrss / 1024.0, m.n_params * 4.0 / 1048576.0);
    model_free(&m);
    return 0;
}

int main(int argc, char **argv) {
    blas_env_ensure(argv);
    if (argc >= 2 && !strcmp(argv[1], "load"))
        return bench_load(arg_value(argc, argv, "--model", "model"),
                          threads_set(atoi(arg_value(argc, argv, "--threads", "0"))));
    if (argc < 2 || (strcmp(argv[1], "score") && strcmp(argv[1], "generate"))) {
        fprintf(stderr, "usage: cutkit-bench score|generate --model PATH [--batch B --seq T] "
                        "[--steps N] [--threads N] [--repeats R] [--warmup W] "
                        "[--compute fp32|bf16]\n");
        return 2;
    }
    int crc = apply_compute(argc, argv);
    if (crc) return crc;
    const char *path = arg_value(argc, argv, "--model", NULL);
    int threads = threads_set(atoi(arg_value(argc, argv, "--threads", "0")));
    Model m;
    CkError err = {{0}};
    if (!path) {
        LanguageModel lm;
        if (lm_open(&lm, NULL, NULL, &err) != 0) {
            fprintf(stderr, "cutkit-bench: %s\n", err.msg);
            return 1;
        }
        tokenizer_free(&lm.tokenizer);
        m = lm.model;
    } else if (llama2c_load_file(&m, path, &err) != 0) {
        fprintf(stderr, "cutkit-bench: %s\n", err.msg);
        return 1;
    }
    int rc;
    if (!strcmp(argv[1], "score"))
        rc = bench_score(&m, atoi(arg_value(argc, argv, "--batch", "4")),
                         atoi(arg_value(argc, argv, "--seq", "256")),
                         atoi(arg_value(argc, argv, "--repeats", "7")),
                         atoi(arg_value(argc, argv, "--warmup", "2")), threads);
    else
        rc = bench_generate(&m, atoi(arg_value(argc, argv, "--steps", "256")),
                            atoi(arg_value(argc, argv, "--repeats", "3")), threads);
    model_free(&m);
    return rc;
}
