/* bench_mc.c — multiple-choice scoring throughput (questions/s, request tokens/s) of cutkit's
 * loglikelihood scorer, with and without prefix reuse, on synthetic questions of random token
 * ids (the same ones bench/torch_mc_ref.py scores; see bench/run_mc.sh).
 *
 *   cutkit-bench-mc --model M.bin [--shape arc|truthfulqa] [--questions 64] [--choices K]
 *                   [--seed 7] [--threads N] [--repeats 5] [--dump questions.json]
 *                   [--lls lls.json] [--compute fp32|bf16]
 *
 * Shapes: `arc`, a context of 32..64 tokens (BOS first) and 4 choices of 3..12 tokens;
 * `truthfulqa`, a long shared primer (150 tokens after BOS, the stand-in of the 6-shot QA
 * primer cut to fit seq_len 256) plus a question of 10..40 tokens, and 6 choices of 4..24
 * tokens. --choices overrides the shape's count; --context N (1..64) fixes the ARC-shaped
 * contexts' length (to find where reuse stops paying). "Request tokens" count context +
 * continuation of every choice, i.e. the tokens a scorer without reuse feeds the model, so tokens/s
 * ratios equal questions/s ratios. Each mode reports the best wall time and the best process CPU
 * time of --repeats passes after a warm-up: on a shared machine the CPU time of a 1-thread run is
 * the steadier number (other processes stretch wall time, not CPU time). --compute bf16 runs the
 * layer products in mixed precision (model/matmul.h); the JSON line records "compute". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_util.h"
#include "model/blas_env.h"
#include "formats/llama2c.h"
#include "eval/loglik.h"
#include "model/matmul.h"
#include "util/fileio.h"
#include "util/threads.h"
#include "util/timer.h"

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

int main(int argc, char **argv) {
    blas_env_ensure(argv);
    const char *model = NULL, *dump = NULL, *lls = NULL, *shape = "arc", *compute = "fp32";
    int questions = 64, choices = 0, threads = 0, repeats = 5, context = 0;
    uint64_t seed = 7;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model"))
            model = argv[i + 1];
        else if (!strcmp(argv[i], "--questions"))
            questions = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--context"))
            context = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--shape"))
            shape = argv[i + 1];
        else if (!strcmp(argv[i], "--choices"))
            choices = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed"))
            seed = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeats"))
            repeats = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dump"))
            dump = argv[i + 1];
        else if (!strcmp(argv[i], "--lls"))
            lls = argv[i + 1];
        else if (!strcmp(argv[i], "--compute"))
            compute = argv[i + 1];
        else {
            fprintf(stderr, "bench_mc: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    const int tqa = !strcmp(shape, "truthfulqa");
    if (!tqa && strcmp(shape, "arc") != 0) {
        fprintf(stderr, "bench_mc: --shape is arc or truthfulqa, not %s\n", shape);
        return 2;
    }
    if (choices == 0) choices = tqa ? 6 : 4;
    if (questions < 1 || choices < 1 || repeats < 1 || context < 0 || context > 64) return 2;
    CkError err = {{0}};
    MatmulCompute mc;
    if (compute_parse(compute, &mc, &err) != 0 || matmul_set_compute(mc, &err) != 0) {
        fprintf(stderr, "bench_mc: %s\n", err.msg);
        return 2;
    }
    int nt = threads_set(threads);
    /* token ids only: the model without a tokenizer (random 15M models have none) */
    struct {
        Model model;
    } lm;
    if (!model) {
        fprintf(stderr, "bench_mc: --model is required\n");
        return 2;
    }
    if (llama2c_load_file(&lm.model, model, &err) != 0) {
        fprintf(stderr, "bench_mc: %s\n", err.msg);
        return 1;
    }
    const int V = lm.model.config.vocab_size;
    int n_req = questions * choices;
    LoglikRequest *reqs = calloc((size_t)n_req, sizeof(LoglikRequest));
    LoglikResult *res = calloc((size_t)n_req, sizeof(LoglikResult));
    long req_tokens = 0;
    /* the TruthfulQA primer is the same for every question */
    int primer[151];
    primer[0] = 1;
    for (int i = 1; i < 151; i++) primer[i] = tqa ? 3 + (int)(lcg(&seed) % (uint64_t)(V - 3)) : 1;
    for (int q = 0; q < questions; q++) {
        int ctx[200], n_ctx;
        if (tqa) {
            n_ctx = 151 + 10 + (int)(lcg(&seed) % 31);
            memcpy(ctx, primer, sizeof primer);
        } else {
            n_ctx = 32 + (int)(lcg(&seed) % 33);
            if (context > 0) n_ctx = context;
            ctx[0] = 1;
        }
        for (int i = tqa ? 151 : 1; i < n_ctx; i++)
            ctx[i] = 3 + (int)(lcg(&seed) % (uint64_t)(V - 3));
        for (int c = 0; c < choices; c++) {
            LoglikRequest *r = &reqs[q * choices + c];
            int n_cont = tqa ? 4 + (int)(lcg(&seed) % 21) : 3 + (int)(lcg(&seed) % 10);
            r->tokens = malloc(sizeof(int) * (size_t)(n_ctx + n_cont));
            memcpy(r->tokens, ctx, sizeof(int) * (size_t)n_ctx);
            for (int i = 0; i < n_cont; i++)
                r->tokens[n_ctx + i] = 3 + (int)(lcg(&seed) % (uint64_t)(V - 3));
            r->n_ctx = n_ctx;
            r->n_cont = n_cont;
            req_tokens += n_ctx + n_cont;
        }
    }
    if (dump) {
        AtomicFile af;
        if (atomic_file_open(&af, dump, &err) != 0) {
            fprintf(stderr, "bench_mc: %s\n", err.msg);
            return 1;
        }
        fprintf(af.f, "{\"choices\": %d, \"requests\": [\n", choices);
        for (int i = 0; i < n_req; i++) {
            fprintf(af.f, "[%d, [", reqs[i].n_ctx);
            for (int j = 0; j < reqs[i].n_ctx + reqs[i].n_cont; j++)
                fprintf(af.f, j ? ",%d" : "%d", reqs[i].tokens[j]);
            fprintf(af.f, "]]%s\n", i + 1 < n_req ? "," : "");
        }
        fprintf(af.f, "]}\n");
        if (atomic_file_commit(&af, &err) != 0) {
            fprintf(stderr, "bench_mc: %s\n", err.msg);
            return 1;
        }
    }
    printf("{\"shape\": \"%s\", \"threads\": %d, \"questions\": %d, \"choices\": %d, "
           "\"request_tokens\": %ld, \"compute\": \"%s\", \"backend\": \"%s\"",
           shape, nt, questions, choices, req_tokens, matmul_compute_name(), matmul_backend_name());
    for (int reuse = 1; reuse >= 0; reuse--) {
        LoglikScorer s;
        /* without reuse the choices of a question go through one packed forward */
        if (loglik_scorer_init(&s, &lm.model, NULL, choices,
                               reuse ? LOGLIK_REUSE_ALWAYS : LOGLIK_REUSE_OFF, &err) != 0) {
            fprintf(stderr, "bench_mc: %s\n", err.msg);
            return 1;
        }
        double best = 1e30, best_cpu = 1e30;
        for (int rep = 0; rep <= repeats; rep++) { /* rep 0 warms up */
            double t0 = timer_seconds(), c0 = bench_cpu_seconds();
            for (int q = 0; q < questions; q++)
                if (loglik_score(&s, reqs + q * choices, choices, res + q * choices, &err) != 0) {
                    fprintf(stderr, "bench_mc: %s\n", err.msg);
                    return 1;
                }
            double dt = timer_seconds() - t0, dc = bench_cpu_seconds() - c0;
            if (rep > 0 && dt < best) best = dt;
            if (rep > 0 && dc < best_cpu) best_cpu = dc;
        }
        printf(", \"%s\": {\"seconds\": %.4f, \"questions_per_s\": %.2f, \"tokens_per_s\": %.0f, "
               "\"cpu_seconds\": %.4f, \"questions_per_cpu_s\": %.2f}",
               reuse ? "reuse" : "no_reuse", best, questions / best, req_tokens / best, best_cpu,
               questions / best_cpu);
        if (reuse && lls) {
            AtomicFile af;
            int ok = atomic_file_open(&af, lls, &err) == 0;
            if (ok) {
                fprintf(af.f, "[");
                for (int i = 0; i < n_req; i++) fprintf(af.f, i ? ",%.9f" : "%.9f", res[i].logprob);
                fprintf(af.f, "]\n");
                ok = atomic_file_commit(&af, &err) == 0;
            }
            if (!ok) {
                fprintf(stderr, "bench_mc: %s\n", err.msg);
                return 1;
            }
        }
        loglik_scorer_free(&s);
    }
    printf("}\n");
    for (int i = 0; i < n_req; i++) loglik_request_free(&reqs[i]);
    free(reqs);
    free(res);
    model_free(&lm.model);
    return 0;
}
