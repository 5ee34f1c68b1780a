/* bench_mc.c — multiple-choice scoring throughput (questions/s, request tokens/s) of cutkit's
 * loglikelihood scorer, with and without prefix reuse, on synthetic ARC-shaped questions of
 * random token ids (the same ones bench/torch_mc_ref.py scores; see bench/run_mc.sh).
 *
 *   cutkit-bench-mc --model M.bin [--questions 64] [--choices 4] [--seed 7] [--threads N]
 *                   [--repeats 3] [--dump questions.json] [--lls lls.json]
 *
 * A question: a context of 32..64 tokens (BOS first) and `choices` continuations of 3..12
 * tokens. "Request tokens" count context + continuation of every choice, i.e. the tokens a
 * scorer without reuse feeds the model, so tokens/s ratios equal questions/s ratios. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas_env.h"
#include "llama2c.h"
#include "loglik.h"
#include "threads.h"
#include "timer.h"

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

int main(int argc, char **argv) {
    blas_env_ensure(argv);
    const char *model = NULL, *dump = NULL, *lls = NULL;
    int questions = 64, choices = 4, threads = 0, repeats = 3;
    uint64_t seed = 7;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model"))
            model = argv[i + 1];
        else if (!strcmp(argv[i], "--questions"))
            questions = atoi(argv[i + 1]);
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
        else {
            fprintf(stderr, "bench_mc: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    if (questions < 1 || choices < 1 || repeats < 1) return 2;
    int nt = threads_set(threads);
    /* token ids only: the model without a tokenizer (random 15M models have none) */
    struct {
        Model model;
    } lm;
    CkError err = {{0}};
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
    for (int q = 0; q < questions; q++) {
        int n_ctx = 32 + (int)(lcg(&seed) % 33), ctx[64];
        ctx[0] = 1;
        for (int i = 1; i < n_ctx; i++) ctx[i] = 3 + (int)(lcg(&seed) % (uint64_t)(V - 3));
        for (int c = 0; c < choices; c++) {
            LoglikRequest *r = &reqs[q * choices + c];
            int n_cont = 3 + (int)(lcg(&seed) % 10);
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
        FILE *f = fopen(dump, "w");
        if (!f) return 1;
        fprintf(f, "{\"choices\": %d, \"requests\": [\n", choices);
        for (int i = 0; i < n_req; i++) {
            fprintf(f, "[%d, [", reqs[i].n_ctx);
            for (int j = 0; j < reqs[i].n_ctx + reqs[i].n_cont; j++)
                fprintf(f, j ? ",%d" : "%d", reqs[i].tokens[j]);
            fprintf(f, "]]%s\n", i + 1 < n_req ? "," : "");
        }
        fprintf(f, "]}\n");
        fclose(f);
    }
    printf("{\"threads\": %d, \"questions\": %d, \"choices\": %d, \"request_tokens\": %ld", nt,
           questions, choices, req_tokens);
    for (int reuse = 1; reuse >= 0; reuse--) {
        LoglikScorer s;
        /* without reuse the choices of a question go through one packed forward */
        if (loglik_scorer_init(&s, &lm.model, NULL, choices, reuse, &err) != 0) {
            fprintf(stderr, "bench_mc: %s\n", err.msg);
            return 1;
        }
        double best = 1e30;
        for (int rep = 0; rep <= repeats; rep++) { /* rep 0 warms up */
            double t0 = timer_seconds();
            for (int q = 0; q < questions; q++)
                if (loglik_score(&s, reqs + q * choices, choices, res + q * choices, &err) != 0) {
                    fprintf(stderr, "bench_mc: %s\n", err.msg);
                    return 1;
                }
            double dt = timer_seconds() - t0;
            if (rep > 0 && dt < best) best = dt;
        }
        printf(", \"%s\": {\"seconds\": %.4f, \"questions_per_s\": %.2f, \"tokens_per_s\": %.0f}",
               reuse ? "reuse" : "no_reuse", best, questions / best, req_tokens / best);
        if (reuse && lls) {
            FILE *f = fopen(lls, "w");
            if (!f) return 1;
            fprintf(f, "[");
            for (int i = 0; i < n_req; i++) fprintf(f, i ? ",%.9f" : "%.9f", res[i].logprob);
            fprintf(f, "]\n");
            fclose(f);
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
