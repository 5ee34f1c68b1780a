/* bench_train.c — cutkit's side of bench/run_train.sh and bench/run_compute.sh: times training
 * steps (forward + backward + gradient clipping + AdamW) and prints one JSON line, in the same
 * shape as bench/torch_train_ref.py.
 *
 *   cutkit-bench-train --model PATH --batch B --seq T --threads N --steps S --warmup W
 *                      [--lora --lora-r 16 --lora-alpha 32
 *                       --lora-targets gate_proj,up_proj,down_proj]
 *                      [--lr 1e-3] [--seed 1234] [--max-grad-norm 1.0] [--split-timing]
 *                      [--compute fp32|bf16]
 *
 * --compute bf16 is mixed precision (model/matmul.h): bf16 inputs to every layer product,
 * fp32 accumulation, fp32 weights, gradients and AdamW state; the JSON line records "compute"
 * and "backend" (what the products ran on). Default fp32.
 *
 * Every step trains on the same batch of B sequences of T random token ids, drawn with
 * splitmix64 from --seed exactly as torch_train_ref.py draws them, so that both sides report
 * comparable losses: MLE on every next token (T - 1 per sequence), each weighted
 * 1 / (B (T - 1)), i.e. the mean cross-entropy. A step is: zero the gradients,
 * model_forward_backward, optim_clip_grad_norm, adamw_step. tokens/s = B T / median step time;
 * peak RSS is getrusage's ru_maxrss at the end. --split-timing calls model_forward_train and
 * model_backward (the two halves of model_forward_backward) with a clock between them and
 * reports median_fwd_s (otherwise -1). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench/bench_util.h"
#include "model/backward.h"
#include "model/blas_env.h"
#include "formats/llama2c.h"
#include "model/lora.h"
#include "model/matmul.h"
#include "model/loss.h"
#include "model/model.h"
#include "train/optim.h"
#include "util/threads.h"
#include "util/timer.h"

typedef struct {
    const char *model;
    int batch, seq, threads, steps, warmup;
    int lora, lora_r;
    int split; /* time model_forward_train and model_backward separately */
    double lora_alpha;
    const char *lora_targets;
    const char *compute; /* --compute: fp32 or bf16 */
    double lr, max_grad_norm;
    uint64_t seed;
} Options;

static double peak_rss_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (double)ru.ru_maxrss / 1024.0; /* Linux reports kilobytes */
}

static void usage(FILE *f) {
    fprintf(f, "usage: cutkit-bench-train --model PATH [--batch B] [--seq T] [--threads N] "
               "[--steps S] [--warmup W]\n"
               "                          [--lora] [--lora-r R] [--lora-alpha A] "
               "[--lora-targets LIST]\n"
               "                          [--lr LR] [--max-grad-norm X] [--seed S] "
               "[--compute fp32|bf16]\n");
}

static int parse_args(int argc, char **argv, Options *o) {
    *o = (Options){.batch = 4,
                   .seq = 256,
                   .threads = 2,
                   .steps = 10,
                   .warmup = 2,
                   .lora_r = 16,
                   .lora_alpha = 32.0,
                   .lora_targets = "gate_proj,up_proj,down_proj",
                   .compute = "fp32",
                   .lr = 1e-3,
                   .max_grad_norm = 1.0,
                   .seed = 1234};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--lora")) {
            o->lora = 1;
            continue;
        }
        if (!strcmp(a, "--split-timing")) {
            o->split = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "cutkit-bench-train: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        int bad = 0;
        if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--batch"))
            bad = bench_parse_int(v, 1, &o->batch);
        else if (!strcmp(a, "--seq"))
            bad = bench_parse_int(v, 2, &o->seq);
        else if (!strcmp(a, "--threads"))
            bad = bench_parse_int(v, 0, &o->threads);
        else if (!strcmp(a, "--steps"))
            bad = bench_parse_int(v, 1, &o->steps);
        else if (!strcmp(a, "--warmup"))
            bad = bench_parse_int(v, 0, &o->warmup);
        else if (!strcmp(a, "--lora-r"))
            bad = bench_parse_int(v, 1, &o->lora_r);
        else if (!strcmp(a, "--lora-alpha"))
            bad = bench_parse_double(v, &o->lora_alpha);
        else if (!strcmp(a, "--lora-targets"))
            o->lora_targets = v;
        else if (!strcmp(a, "--compute"))
            o->compute = v;
        else if (!strcmp(a, "--lr"))
            bad = bench_parse_double(v, &o->lr);
        else if (!strcmp(a, "--max-grad-norm"))
            bad = bench_parse_double(v, &o->max_grad_norm);
        else if (!strcmp(a, "--seed")) {
            char *end;
            o->seed = strtoull(v, &end, 10);
            bad = *v == '\0' || *end != '\0';
        } else {
            fprintf(stderr, "cutkit-bench-train: unknown argument '%s'\n", a);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "cutkit-bench-train: bad value '%s' for %s\n", v, a);
            return -1;
        }
    }
    if (!o->model) {
        fprintf(stderr, "cutkit-bench-train: --model is required\n");
        return -1;
    }
    return 0;
}

/* Everything one run allocates, so that a single cleanup path frees it. */
typedef struct {
    Model m;
    LoraAdapters lora;
    Activations acts;
    AdamW opt;
    float *grads;
    int *tokens, *offsets, *targets;
    float *weights;
    double *times, *t_fwd, *t_fb, *t_clip, *t_adamw;
} Run;

static void run_free(Run *r) {
    adamw_free(&r->opt);
    activations_free(&r->acts);
    lora_free(&r->lora);
    model_free(&r->m);
    free(r->grads);
    free(r->tokens);
    free(r->offsets);
    free(r->targets);
    free(r->weights);
    free(r->times);
    free(r->t_fwd);
    free(r->t_fb);
    free(r->t_clip);
    free(r->t_adamw);
}

static int bench(const Options *o, Run *r, int threads, CkError *err) {
    if (llama2c_load_file(&r->m, o->model, err) != 0) return -1;
    const ModelConfig *c = &r->m.config;
    if (o->seq > c->seq_len)
        return ck_fail(err, "--seq %d exceeds the model's seq_len %d", o->seq, c->seq_len);
    const int B = o->batch, T = o->seq, n = B * T;

    size_t n_train = r->m.n_params;
    float *train_params = r->m.params;
    if (o->lora) {
        LoraConfig lc = {o->lora_r, (float)o->lora_alpha, 0.0f, 0};
        if (lora_parse_targets(o->lora_targets, &lc.target_mask, err) != 0) return -1;
        if (lora_init(&r->lora, &r->m, &lc, o->seed, err) != 0) return -1;
        n_train = r->lora.n_params;
        train_params = r->lora.params;
    }
    if (activations_init(&r->acts, &r->m, n, T, 1, err) != 0) return -1;
    AdamWConfig ac = adamw_config_default();
    if (adamw_init(&r->opt, n_train, &ac, err) != 0) return -1;

    const int total = o->warmup + o->steps;
    r->grads = calloc(n_train, sizeof(float));
    r->tokens = malloc(sizeof(int) * (size_t)n);
    r->targets = malloc(sizeof(int) * (size_t)n);
    r->weights = malloc(sizeof(float) * (size_t)n);
    r->offsets = malloc(sizeof(int) * (size_t)(B + 1));
    r->times = malloc(sizeof(double) * (size_t)total);
    r->t_fwd = malloc(sizeof(double) * (size_t)total);
    r->t_fb = malloc(sizeof(double) * (size_t)total);
    r->t_clip = malloc(sizeof(double) * (size_t)total);
    r->t_adamw = malloc(sizeof(double) * (size_t)total);
    if (!r->grads || !r->tokens || !r->targets || !r->weights || !r->offsets || !r->times ||
        !r->t_fwd || !r->t_fb || !r->t_clip || !r->t_adamw)
        return ck_fail(err, "out of memory");

    uint64_t state = o->seed;
    for (int i = 0; i < n; i++)
        r->tokens[i] = (int)(bench_splitmix64(&state) % (uint64_t)c->vocab_size);
    const float w = 1.0f / (float)(B * (T - 1));
    for (int s = 0; s < B; s++) {
        r->offsets[s] = s * T;
        for (int p = 0; p < T; p++) {
            const int i = s * T + p, last = p + 1 == T;
            r->targets[i] = last ? -1 : r->tokens[i + 1];
            r->weights[i] = last ? 0.0f : w;
        }
    }
    r->offsets[B] = n;
    TokenBatch b = {B, r->offsets, r->tokens};
    LossSpec spec = {.targets = r->targets,
                     .kinds = NULL,
                     .weights = r->weights,
                     .ul_min_q = 0.0f,
                     .logprobs = NULL};

    double loss_first = 0, loss_last = 0, gnorm_first = 0, gnorm_last = 0;
    for (int step = 0; step < total; step++) {
        const double t0 = timer_seconds();
        memset(r->grads, 0, n_train * sizeof(float));
        LossResult res;
        float *base_grads = o->lora ? NULL : r->grads, *lora_grads = o->lora ? r->grads : NULL;
        LoraAdapters *ad = o->lora ? &r->lora : NULL;
        double tf = t0;
        if (o->split) {
            /* what model_forward_backward does, with a clock between the two halves */
            if (model_forward_train(&r->m, &r->acts, &b, ad, err) != 0) return -1;
            tf = timer_seconds();
            if (model_backward(&r->m, &r->acts, &b, &spec, base_grads, ad, lora_grads, &res, err) !=
                0)
                return -1;
        } else if (model_forward_backward(&r->m, &r->acts, &b, &spec, base_grads, ad, lora_grads,
                                          &res, err) != 0) {
            return -1;
        }
        const double t1 = timer_seconds();
        r->t_fwd[step] = tf - t0;
        const double gnorm = optim_clip_grad_norm(r->grads, n_train, o->max_grad_norm);
        const double t2 = timer_seconds();
        if (adamw_step(&r->opt, train_params, r->grads, o->lr, err) != 0) return -1;
        const double t3 = timer_seconds();
        r->times[step] = t3 - t0;
        r->t_fb[step] = t1 - t0;
        r->t_clip[step] = t2 - t1;
        r->t_adamw[step] = t3 - t2;
        if (step == 0) {
            loss_first = res.loss;
            gnorm_first = gnorm;
        }
        loss_last = res.loss;
        gnorm_last = gnorm;
        fprintf(stderr, "cutkit-bench-train: step %d%s: loss %.6f, grad norm %.6f, %.3f s\n",
                step + 1, step < o->warmup ? " (warm-up)" : "", res.loss, gnorm, t3 - t0);
    }

    const int S = o->steps;
    double *tt = r->times + o->warmup;
    double mean = 0, min = tt[0];
    for (int i = 0; i < S; i++) {
        mean += tt[i] / S;
        if (tt[i] < min) min = tt[i];
    }
    const double med = bench_median(tt, S);
    const double med_fb = bench_median(r->t_fb + o->warmup, S);
    const double med_fwd = o->split ? bench_median(r->t_fwd + o->warmup, S) : -1;
    const double med_clip = bench_median(r->t_clip + o->warmup, S);
    const double med_adamw = bench_median(r->t_adamw + o->warmup, S);
    const char *base = strrchr(o->model, '/');
    base = base ? base + 1 : o->model;
    printf("{\"impl\":\"cutkit\",\"mode\":\"train\",\"lora\":%d,\"threads\":%d,\"batch\":%d,"
           "\"seq\":%d,\"tokens_per_s\":%.1f,\"median_step_s\":%.6f,\"peak_rss_mb\":%.1f,"
           "\"mean_step_s\":%.6f,\"min_step_s\":%.6f,\"steps\":%d,\"warmup\":%d,"
           "\"median_fwd_bwd_s\":%.6f,\"median_fwd_s\":%.6f,\"median_clip_s\":%.6f,\"median_adamw_"
           "s\":%.6f,"
           "\"loss_first\":%.6f,\"loss_last\":%.6f,\"grad_norm_first\":%.6f,"
           "\"grad_norm_last\":%.6f,\"trained_params\":%zu,\"lora_r\":%d,\"lr\":%g,"
           "\"model\":\"%s\",\"compute\":\"%s\",\"backend\":\"%s\"}\n",
           o->lora, threads, B, T, n / med, med, peak_rss_mb(), mean, min, S, o->warmup, med_fb,
           med_fwd, med_clip, med_adamw, loss_first, loss_last, gnorm_first, gnorm_last, n_train,
           o->lora ? o->lora_r : 0, o->lr, base, matmul_compute_name(), matmul_backend_name());
    return 0;
}

int main(int argc, char **argv) {
    blas_env_ensure(argv);
    Options o;
    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    CkError err = {{0}};
    MatmulCompute compute;
    if (compute_parse(o.compute, &compute, &err) != 0) {
        fprintf(stderr, "cutkit-bench-train: %s\n", err.msg);
        return 2;
    }
    if (matmul_set_compute(compute, &err) != 0) {
        fprintf(stderr, "cutkit-bench-train: %s\n", err.msg);
        return 1;
    }
    const int threads = threads_set(o.threads);
    Run r;
    memset(&r, 0, sizeof r);
    int rc = bench(&o, &r, threads, &err);
    if (rc != 0) fprintf(stderr, "cutkit-bench-train: %s\n", err.msg);
    run_free(&r);
    return rc ? 1 : 0;
}
