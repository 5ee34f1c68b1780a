/* bench_stored.c — a model held as stored (hf_model_load_held), measured phase by phase:
 *
 *   cutkit-bench-stored DIR f32|bf16|f16|int8 [PHASES]
 *
 * PHASES (default "arc,gen,lora") chooses among: arc, one ARC-shaped question (a 64-token
 * context and 4 answers of 8 tokens, scored in one pass with model_forward_tree, as eval mc
 * does); gen, 32 greedy tokens after an 8-token prompt through a KV cache; lora, one LoRA
 * update on q_proj,v_proj (rank 8) of a CUT-shaped loss over B 1 x T 256 (half the rows MLE,
 * half unlikelihood: the two terms of CUT's objective) with an SGD step on the adapters. Token
 * ids are fixed (the model's weights are random; no tokenizer is needed). Prints one line per
 * phase with its seconds and the peak RSS so far (getrusage). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "formats/hf_config.h"
#include "formats/hf_model.h"
#include "formats/lm.h"
#include "model/backward.h"
#include "model/lora.h"
#include "model/model.h"
#include "util/timer.h"

static double peak_rss_gb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1048576.0; /* KiB */
}

static void report(const char *phase, double seconds) {
    printf("%-6s %9.2f s   peak RSS %6.2f GB\n", phase, seconds, peak_rss_gb());
    fflush(stdout);
}

static int token_at(int i, int V) {
    return 1 + (i * 7919 + 13) % (V - 1);
}

static int bench_arc(const Model *m, CkError *err) {
    enum { CTX = 64, ANS = 8, CHOICES = 4, N = CTX + CHOICES * ANS };
    int tokens[N], offsets[CHOICES + 2], targets[N];
    double lp[N];
    offsets[0] = 0;
    for (int i = 0; i < N; i++) tokens[i] = token_at(i, m->config.vocab_size);
    for (int s = 0; s <= CHOICES; s++) offsets[s + 1] = CTX + s * ANS;
    /* the answers' tokens are scored (the last context token predicts the first: counted
     * here as the branch's own first position, as a close stand-in) */
    for (int i = 0; i < N; i++)
        targets[i] = i >= CTX && (i - CTX) % ANS < ANS - 1 ? tokens[i + 1] : -1;
    Activations a;
    if (activations_init(&a, m, N, N, 0, err) != 0) return -1;
    double t0 = timer_seconds();
    TokenBatch b = {CHOICES + 1, offsets, tokens};
    int rc = model_forward_tree(m, &a, &b, NULL, err);
    if (rc == 0) rc = model_logprobs(m, &a, targets, lp, err);
    if (rc == 0) report("arc", timer_seconds() - t0);
    activations_free(&a);
    return rc;
}

static int bench_gen(const Model *m, CkError *err) {
    enum { PROMPT = 8, STEPS = 32 };
    const int V = m->config.vocab_size;
    KVCache cache;
    Activations a;
    if (kvcache_init(&cache, m, PROMPT + STEPS, err) != 0) return -1;
    if (activations_init(&a, m, PROMPT, PROMPT + STEPS, 0, err) != 0) {
        kvcache_free(&cache);
        return -1;
    }
    float *logits = malloc(sizeof(float) * V);
    int tokens[PROMPT], rc = logits ? 0 : -1;
    for (int i = 0; i < PROMPT; i++) tokens[i] = token_at(i, V);
    int off[2] = {0, PROMPT};
    TokenBatch b = {1, off, tokens};
    double t0 = timer_seconds();
    for (int step = 0; rc == 0 && step < STEPS; step++) {
        rc = model_forward(m, &a, &b, &cache, NULL, err);
        if (rc != 0) break;
        model_logits_row(m, &a, b.offsets[1] - 1, logits, NULL);
        int best = 0;
        for (int j = 1; j < V; j++)
            if (logits[j] > logits[best]) best = j;
        tokens[0] = best;
        off[1] = 1;
    }
    if (rc == 0) report("gen32", timer_seconds() - t0);
    free(logits);
    activations_free(&a);
    kvcache_free(&cache);
    return rc;
}

static int bench_lora(const Model *m, CkError *err) {
    enum { T = 256 };
    const int V = m->config.vocab_size;
    LoraAdapters ad;
    LoraConfig lc = {8, 16.0f, 0.0f, 0};
    if (lora_parse_targets("q_proj,v_proj", &lc.target_mask, err) != 0) return -1;
    if (lora_init(&ad, m, &lc, 1, err) != 0) return -1;
    Activations a;
    if (activations_init(&a, m, T, T, 1, err) != 0) {
        lora_free(&ad);
        return -1;
    }
    int tokens[T], targets[T], off[2] = {0, T};
    LossKind kinds[T];
    for (int i = 0; i < T; i++) {
        tokens[i] = token_at(i, V);
        targets[i] = i + 1 < T ? token_at(i + 1, V) : -1;
        kinds[i] = targets[i] < 0 ? LOSS_NONE : i < T / 2 ? LOSS_MLE : LOSS_UNLIKELIHOOD;
    }
    float *grads = calloc(ad.n_params, sizeof(float));
    TokenBatch b = {1, off, tokens};
    LossSpec loss = {.targets = targets, .kinds = kinds};
    LossResult res;
    double t0 = timer_seconds();
    int rc = grads ? model_forward_backward(m, &a, &b, &loss, NULL, &ad, grads, &res, err) : -1;
    for (size_t i = 0; rc == 0 && i < ad.n_params; i++) ad.params[i] -= 1e-3f * grads[i];
    if (rc == 0) report("lora", timer_seconds() - t0);
    free(grads);
    activations_free(&a);
    lora_free(&ad);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: cutkit-bench-stored DIR f32|bf16|f16|int8 [arc,gen,lora]\n");
        return 2;
    }
    const char *phases = argc > 3 ? argv[3] : "arc,gen,lora";
    CkError err = {{0}};
    WeightDtype held;
    if (lm_parse_base_dtype(argv[2], &held, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    Model m;
    HfConfig cfg;
    double t0 = timer_seconds();
    if (hf_model_load_held(&m, &cfg, argv[1], held, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("held as %s: %d layers, dim %d\n", model_held_name(held), m.config.n_layers,
           m.config.dim);
    report("open", timer_seconds() - t0);
    int rc = 0;
    if (rc == 0 && strstr(phases, "arc")) rc = bench_arc(&m, &err);
    if (rc == 0 && strstr(phases, "gen")) rc = bench_gen(&m, &err);
    if (rc == 0 && strstr(phases, "lora")) rc = bench_lora(&m, &err);
    if (rc != 0) fprintf(stderr, "%s\n", err.msg);
    model_free(&m);
    return rc != 0;
}
