/* generate.c — prefill the prompt in one batch, then decode token by token from the cache.
 * The per-token path allocates nothing, computes the classifier for the one new row only and
 * takes a greedy pick by argmax (no sort); many prompts at once: generate_batch.h. */
#include "model/generate.h"

#include <stdlib.h>

#include "model/sampler.h"
#include "util/timer.h"

int generate_text(const Model *m, const Tokenizer *tok, const char *prompt,
                  const GenerateOptions *opt, GenerateCallback on_token, void *ctx, int *out_ids,
                  GenerateStats *stats, CkError *err) {
    const ModelConfig *c = &m->config;
    int *prompt_ids = NULL, n_prompt = 0, rc = -1;
    float *logits = NULL;
    Activations acts = {0};
    KVCache cache = {0};
    Sampler sampler = {0};
    if (stats) *stats = (GenerateStats){0};
    if (opt->steps < 0) return ck_fail(err, "steps must be >= 0, got %d", opt->steps);
    if (tokenizer_encode(tok, prompt, 1, 0, &prompt_ids, &n_prompt, err) != 0) return -1;
    if (n_prompt >= c->seq_len) {
        ck_fail(err, "the prompt has %d tokens; the model's context is %d", n_prompt, c->seq_len);
        goto done;
    }
    int steps = opt->steps;
    if (n_prompt + steps > c->seq_len) steps = c->seq_len - n_prompt; /* context is full */
    double start = timer_seconds();
    if (sampler_init(&sampler, c->vocab_size, opt->temperature, opt->top_p, opt->seed, err) != 0)
        goto done;
    if (kvcache_init(&cache, m, n_prompt + (steps > 0 ? steps : 1), err) != 0) goto done;
    if (activations_init(&acts, m, n_prompt, cache.capacity, 0, err) != 0) goto done;
    logits = malloc((size_t)c->vocab_size * sizeof(float));
    if (!logits) {
        ck_fail(err, "out of memory");
        goto done;
    }
    /* prefill: the whole prompt in one pass; its last row predicts the first new token */
    int offsets[2] = {0, n_prompt};
    TokenBatch batch = {1, offsets, prompt_ids};
    if (model_forward(m, &acts, &batch, &cache, NULL, err) != 0 ||
        model_logits_row(m, &acts, n_prompt - 1, logits, err) != 0)
        goto done;
    int prev = prompt_ids[n_prompt - 1], generated = 0;
    for (int step = 0; step < steps; step++) {
        int next = sampler_sample(&sampler, logits);
        if (opt->stop_at_eos && (next == tok->bos_id || next == tok->eos_id)) break;
        if (out_ids) out_ids[generated] = next;
        generated++;
        if (on_token) { /* the text only for a caller who reads it */
            char byte_buf[2];
            size_t len = 0;
            const char *piece = tokenizer_decode_piece(tok, prev, next, byte_buf, &len);
            if (on_token(ctx, next, piece, len) != 0) break;
        }
        prev = next;
        if (step + 1 == steps) break; /* no need to compute logits nobody samples */
        offsets[1] = 1;
        batch.tokens = &prev;
        if (model_forward(m, &acts, &batch, &cache, NULL, err) != 0 ||
            model_logits_row(m, &acts, 0, logits, err) != 0)
            goto done;
    }
    if (stats) {
        stats->prompt_tokens = n_prompt;
        stats->generated_tokens = generated;
        stats->seconds = timer_seconds() - start;
    }
    rc = 0;
done:
    free(prompt_ids);
    free(logits);
    activations_free(&acts);
    kvcache_free(&cache);
    sampler_free(&sampler);
    return rc;
}
