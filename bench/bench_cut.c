/* bench_cut.c — cutkit's side of bench/run_cut.sh: times CUT training steps, or MLE steps on
 * the same packed batch, and prints one JSON line in the shape of bench/torch_cut_ref.py's.
 *
 *   cutkit-bench-cut --model PATH [--objective cut|mle] [--examples B] [--prompt-a PA]
 *                    [--prompt-m PM] [--response R] [--threads N] [--steps S] [--warmup W]
 *                    [--lambda 1.1] [--alpha 1] [--lora --lora-r 16 --lora-alpha 32
 *                     --lora-targets gate_proj,up_proj,down_proj] [--lr 1e-3] [--seed 1234]
 *
 * The batch: B negative examples, each an Align-N sequence of PA prompt tokens (BOS first) and
 * R response tokens and a Misalign sequence of PM prompt tokens and the same R response tokens,
 * drawn with splitmix64 from --seed exactly as torch_cut_ref.py draws them (per example: the
 * Align-N prompt, the Misalign prompt, the response), every step the same batch. All 2B
 * sequences are packed into one micro-batch, as the reference stacks [A_1..B; M_1..B].
 *
 * A CUT step, as the trainer takes it: zero the gradients, model_forward_train, cut_plan_fused
 * (the reference's pooled micro-batch mean), model_backward deciding each Misalign token as it
 * reads its log p, cut_assign_loss on those log-probs for the counts, optim_clip_grad_norm,
 * adamw_step. An MLE step on the same batch: model_forward_backward with every response target
 * weighted 1 / (response targets), then the same clipping and AdamW, so the difference between the
 * two is CUT's own cost (the per-token decisions and their bookkeeping). tokens/s = packed
 * tokens (B (PA + PM + 2R)) / median step time. The median times of the phases are reported
 * too (forward, plan, backward, assignment, clip, AdamW), and the median CPU time
 * of a step (cpu_tokens_per_s: with --threads 1, a rate that other processes barely move). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench/bench_util.h"
#include "model/backward.h"
#include "model/blas_env.h"
#include "train/cut.h"
#include "formats/llama2c.h"
#include "model/lora.h"
#include "model/loss.h"
#include "model/model.h"
#include "train/optim.h"
#include "util/threads.h"
#include "util/timer.h"

typedef struct {
    const char *model;
    int cut; /* 1: CUT steps, 0: MLE steps on the same batch */
    int examples, prompt_a, prompt_m, response, threads, steps, warmup;
    int lora, lora_r;
    double lora_alpha, lambda, alpha, lr, max_grad_norm;
    const char *lora_targets;
    uint64_t seed;
} Options;

/* plan: cut_plan_fused; bwd: the backward, detection included; assign: reading the
 * decisions back for the step's counts */
enum { PH_FWD, PH_PLAN, PH_BWD, PH_ASSIGN, PH_CLIP, PH_ADAMW, PH_STEP, PH_CPU, PH_COUNT };
static const char *const PHASE_NAMES[PH_COUNT] = {"fwd",  "plan",  "bwd",  "assign",
                                                  "clip", "adamw", "step", "cpu"};

static void usage(FILE *f) {
    fprintf(f, "usage: cutkit-bench-cut --model PATH [--objective cut|mle] [--examples B]\n"
               "         [--prompt-a PA] [--prompt-m PM] [--response R] [--threads N] [--steps S]\n"
               "         [--warmup W] [--lambda L] [--alpha A] [--lora] [--lora-r R]\n"
               "         [--lora-alpha A] [--lora-targets LIST] [--lr LR] [--seed S]\n");
}

static int parse_args(int argc, char **argv, Options *o) {
    *o = (Options){.cut = 1,
                   .examples = 2,
                   .prompt_a = 96,
                   .prompt_m = 96,
                   .response = 160,
                   .threads = 2,
                   .steps = 10,
                   .warmup = 2,
                   .lora_r = 16,
                   .lora_alpha = 32.0,
                   .lambda = 1.1,
                   .alpha = 1.0,
                   .lr = 1e-3,
                   .max_grad_norm = 1.0,
                   .lora_targets = "gate_proj,up_proj,down_proj",
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
        if (i + 1 >= argc) {
            fprintf(stderr, "cutkit-bench-cut: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        int bad = 0;
        if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--objective")) {
            o->cut = !strcmp(v, "cut");
            bad = !o->cut && strcmp(v, "mle") != 0;
        } else if (!strcmp(a, "--examples"))
            bad = bench_parse_int(v, 1, &o->examples);
        else if (!strcmp(a, "--prompt-a"))
            bad = bench_parse_int(v, 1, &o->prompt_a);
        else if (!strcmp(a, "--prompt-m"))
            bad = bench_parse_int(v, 1, &o->prompt_m);
        else if (!strcmp(a, "--response"))
            bad = bench_parse_int(v, 1, &o->response);
        else if (!strcmp(a, "--threads"))
            bad = bench_parse_int(v, 0, &o->threads);
        else if (!strcmp(a, "--steps"))
            bad = bench_parse_int(v, 1, &o->steps);
        else if (!strcmp(a, "--warmup"))
            bad = bench_parse_int(v, 0, &o->warmup);
        else if (!strcmp(a, "--lambda"))
            bad = bench_parse_double(v, &o->lambda);
        else if (!strcmp(a, "--alpha"))
            bad = bench_parse_double(v, &o->alpha);
        else if (!strcmp(a, "--lora-r"))
            bad = bench_parse_int(v, 1, &o->lora_r);
        else if (!strcmp(a, "--lora-alpha"))
            bad = bench_parse_double(v, &o->lora_alpha);
        else if (!strcmp(a, "--lora-targets"))
            o->lora_targets = v;
        else if (!strcmp(a, "--lr"))
            bad = bench_parse_double(v, &o->lr);
        else if (!strcmp(a, "--seed")) {
            char *end;
            o->seed = strtoull(v, &end, 10);
            bad = *v == '\0' || *end != '\0';
        } else {
            fprintf(stderr, "cutkit-bench-cut: unknown argument '%s'\n", a);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "cutkit-bench-cut: bad value '%s' for %s\n", v, a);
            return -1;
        }
    }
    if (!o->model) {
        fprintf(stderr, "cutkit-bench-cut: --model is required\n");
        return -1;
    }
    return 0;
}

/* Everything one run allocates, released together. */
typedef struct {
    Model m;
    LoraAdapters lora;
    Activations acts;
    AdamW opt;
    float *grads, *weights;
    int *tokens, *offsets, *targets;
    double *logprobs;
    LossKind *kinds;
    int *partner;
    double *base;
    CutPair *pairs;
    double *times[PH_COUNT];
} Run;

static void run_free(Run *r) {
    adamw_free(&r->opt);
    activations_free(&r->acts);
    lora_free(&r->lora);
    model_free(&r->m);
    free(r->grads);
    free(r->weights);
    free(r->tokens);
    free(r->offsets);
    free(r->targets);
    free(r->logprobs);
    free(r->kinds);
    free(r->partner);
    free(r->base);
    free(r->pairs);
    for (int p = 0; p < PH_COUNT; p++) free(r->times[p]);
}

/* Packs the B examples: A_e at sequence 2e, M_e at 2e + 1 (the order only names sequences;
 * the model sees each on its own). Targets: the next token on response positions. */
static void make_batch(const Options *o, Run *r, int vocab) {
    uint64_t state = o->seed;
    int n = 0;
    r->offsets[0] = 0;
    int *resp = malloc(sizeof(int) * (size_t)o->response);
    for (int e = 0; e < o->examples; e++) {
        const int plen[2] = {o->prompt_a, o->prompt_m};
        int *prompts[2];
        for (int k = 0; k < 2; k++) {
            prompts[k] = r->tokens + n + (k ? o->prompt_a + o->response : 0);
            for (int i = 0; i < plen[k]; i++)
                prompts[k][i] = i == 0 ? 1 : (int)(bench_splitmix64(&state) % (uint64_t)vocab);
        }
        for (int i = 0; i < o->response; i++)
            resp[i] = (int)(bench_splitmix64(&state) % (uint64_t)vocab);
        for (int k = 0; k < 2; k++) {
            const int start = n, len = plen[k] + o->response;
            memcpy(r->tokens + start + plen[k], resp, sizeof(int) * (size_t)o->response);
            for (int p = 0; p < len; p++)
                r->targets[start + p] =
                    p + 1 < len && p + 1 >= plen[k] ? r->tokens[start + p + 1] : -1;
            n += len;
            r->offsets[2 * e + k + 1] = n;
        }
        r->pairs[e] = (CutPair){2 * e, 2 * e + 1};
    }
    free(resp);
}

static int bench(const Options *o, Run *r, int threads, CkError *err) {
    if (llama2c_load_file(&r->m, o->model, err) != 0) return -1;
    const ModelConfig *c = &r->m.config;
    const int la = o->prompt_a + o->response, lm = o->prompt_m + o->response;
    if (la > c->seq_len || lm > c->seq_len)
        return ck_fail(err, "sequences of %d and %d tokens exceed the model's seq_len %d", la, lm,
                       c->seq_len);
    const int B = o->examples, n = B * (la + lm);
    size_t n_train = r->m.n_params;
    float *train_params = r->m.params;
    if (o->lora) {
        LoraConfig lc = {o->lora_r, (float)o->lora_alpha, 0.0f, 0};
        if (lora_parse_targets(o->lora_targets, &lc.target_mask, err) != 0) return -1;
        if (lora_init(&r->lora, &r->m, &lc, o->seed, err) != 0) return -1;
        n_train = r->lora.n_params;
        train_params = r->lora.params;
    }
    if (activations_init(&r->acts, &r->m, n, la > lm ? la : lm, 1, err) != 0) return -1;
    AdamWConfig ac = adamw_config_default();
    if (adamw_init(&r->opt, n_train, &ac, err) != 0) return -1;
    const int total = o->warmup + o->steps;
    r->grads = calloc(n_train, sizeof(float));
    r->weights = malloc(sizeof(float) * (size_t)n);
    r->tokens = malloc(sizeof(int) * (size_t)n);
    r->targets = malloc(sizeof(int) * (size_t)n);
    r->offsets = malloc(sizeof(int) * (size_t)(2 * B + 1));
    r->logprobs = malloc(sizeof(double) * (size_t)n);
    r->kinds = malloc(sizeof(LossKind) * (size_t)n);
    r->partner = malloc(sizeof(int) * (size_t)n);
    r->base = malloc(sizeof(double) * (size_t)n);
    r->pairs = malloc(sizeof(CutPair) * (size_t)B);
    int ok = r->grads && r->weights && r->tokens && r->targets && r->offsets && r->logprobs &&
             r->kinds && r->partner && r->base && r->pairs;
    for (int p = 0; p < PH_COUNT; p++) ok = ok && (r->times[p] = calloc((size_t)total, 8));
    if (!ok) return ck_fail(err, "out of memory");
    make_batch(o, r, c->vocab_size);
    TokenBatch b = {2 * B, r->offsets, r->tokens};
    int n_targets = 0;
    for (int i = 0; i < n; i++) n_targets += r->targets[i] >= 0;
    for (int i = 0; i < n; i++) r->weights[i] = r->targets[i] >= 0 ? 1.0f / (float)n_targets : 0;
    LossSpec mle = {.targets = r->targets,
                    .kinds = NULL,
                    .weights = r->weights,
                    .ul_min_q = 0.0f,
                    .logprobs = NULL};
    CutOptions copt = cut_default_options();
    copt.lambda = o->lambda;
    copt.alpha = o->alpha;
    copt.mean = CUT_MEAN_POOLED; /* the reference's formula over its micro-batch */

    LoraAdapters *ad = o->lora ? &r->lora : NULL;
    float *base_grads = o->lora ? NULL : r->grads, *lora_grads = o->lora ? r->grads : NULL;
    double loss_first = 0, loss_last = 0, gnorm_first = 0;
    int flagged_first = -1;
    for (int step = 0; step < total; step++) {
        double t[PH_STEP + 1];
        const double cpu0 = bench_cpu_seconds();
        t[0] = timer_seconds();
        memset(r->grads, 0, n_train * sizeof(float));
        LossResult res;
        CutStats st = {0};
        if (model_forward_train(&r->m, &r->acts, &b, ad, err) != 0) return -1;
        t[1] = timer_seconds();
        const LossSpec *spec = &mle;
        LossSpec cut_spec;
        CutFused fused;
        if (o->cut) {
            /* as the trainer: detection inside the backward's classifier pass */
            if (cut_plan_fused(&b, r->targets, r->pairs, B, &copt, r->kinds, r->weights, r->partner,
                               r->base, r->logprobs, &fused, &cut_spec, err) != 0)
                return -1;
            spec = &cut_spec;
        }
        t[2] = timer_seconds();
        if (model_backward(&r->m, &r->acts, &b, spec, base_grads, ad, lora_grads, &res, err) != 0)
            return -1;
        t[3] = timer_seconds();
        if (o->cut && cut_assign_loss(&b, r->targets, r->logprobs, r->pairs, B, &copt, r->kinds,
                                      r->weights, &cut_spec, &st, err) != 0)
            return -1;
        t[4] = timer_seconds();
        const double gnorm = optim_clip_grad_norm(r->grads, n_train, o->max_grad_norm);
        t[5] = timer_seconds();
        if (adamw_step(&r->opt, train_params, r->grads, o->lr, err) != 0) return -1;
        t[6] = timer_seconds();
        for (int p = 0; p < PH_STEP; p++) r->times[p][step] = t[p + 1] - t[p];
        r->times[PH_STEP][step] = t[6] - t[0];
        r->times[PH_CPU][step] = bench_cpu_seconds() - cpu0;
        if (step == 0) {
            loss_first = res.loss;
            gnorm_first = gnorm;
            flagged_first = o->cut ? st.n_flagged : -1;
        }
        loss_last = res.loss;
        fprintf(stderr,
                "cutkit-bench-cut: step %d%s: loss %.6f, grad norm %.6f, %d flagged, %.3f s\n",
                step + 1, step < o->warmup ? " (warm-up)" : "", res.loss, gnorm,
                o->cut ? st.n_flagged : 0, t[6] - t[0]);
    }
    double med[PH_COUNT];
    for (int p = 0; p < PH_COUNT; p++) med[p] = bench_median(r->times[p] + o->warmup, o->steps);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const char *base = strrchr(o->model, '/');
    base = base ? base + 1 : o->model;
    printf("{\"impl\":\"cutkit\",\"objective\":\"%s\",\"lora\":%d,\"threads\":%d,\"examples\":%d,"
           "\"len_a\":%d,\"len_m\":%d,\"response\":%d,\"tokens\":%d,\"tokens_per_s\":%.1f,"
           "\"median_step_s\":%.6f,\"cpu_tokens_per_s\":%.1f,\"median_cpu_s\":%.6f,",
           o->cut ? "cut" : "mle", o->lora, threads, B, la, lm, o->response, n, n / med[PH_STEP],
           med[PH_STEP], n / med[PH_CPU], med[PH_CPU]);
    for (int p = 0; p < PH_STEP; p++) printf("\"median_%s_s\":%.6f,", PHASE_NAMES[p], med[p]);
    printf("\"loss_first\":%.6f,\"loss_last\":%.6f,\"grad_norm_first\":%.6f,"
           "\"flagged_first\":%d,\"lambda\":%g,\"alpha\":%g,\"peak_rss_mb\":%.1f,"
           "\"trained_params\":%zu,\"steps\":%d,\"warmup\":%d,\"model\":\"%s\"}\n",
           loss_first, loss_last, gnorm_first, flagged_first, o->lambda, o->alpha,
           (double)ru.ru_maxrss / 1024.0, n_train, o->steps, o->warmup, base);
    return 0;
}

int main(int argc, char **argv) {
    blas_env_ensure(argv);
    Options o;
    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    const int threads = threads_set(o.threads);
    Run r;
    memset(&r, 0, sizeof r);
    CkError err = {{0}};
    const int rc = bench(&o, &r, threads, &err);
    if (rc != 0) fprintf(stderr, "cutkit-bench-cut: %s\n", err.msg);
    run_free(&r);
    return rc ? 1 : 0;
}
