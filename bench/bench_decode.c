/* bench_decode.c — decoding throughput: single-stream tokens/s and the aggregate tokens/s of
 * batched decoding (model/generate_batch.h) at several batch sizes, in one run on one model.
 *
 *   cutkit-bench-decode [--model PATH] [--threads N] [--steps N] [--seqs N] [--prompt N]
 *                       [--batches 1,4,16] [--repeats N]
 *
 * --model is a llama2.c file (bench/make_model.py --preset stories15M writes the 15M shape);
 * without it the embedded stories260K. Every request is greedy, `steps` tokens (no EOS stop)
 * after a prompt of BOS and prompt-1 ids drawn from the request's own splitmix64 stream.
 * Rows:
 *   loop      model_forward + model_logits_row + argmax by hand: the floor of one stream
 *   generate  generate_text from BOS (embedded model only: it needs the tokenizer)
 *   batch B   generate_batch over `seqs` requests with up to B decoding together
 * Each row is the median of `repeats` runs after a warm-up; "x loop" is its tokens/s over the
 * loop's. JSON lines on stdout, the CPU first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "formats/llama2c.h"
#include "formats/lm.h"
#include "model/generate.h"
#include "model/generate_batch.h"
#include "model/sampler.h"
#include "util/threads.h"
#include "util/timer.h"

typedef struct {
    const Model *m;
    const Tokenizer *tok; /* NULL for a model without one */
    int steps, seqs, prompt, repeats;
} Bench;

static const char *arg_value(int argc, char **argv, const char *name, const char *def) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return def;
}

static void print_cpu(int threads) {
    char line[256], name[200] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(name, sizeof name, "%s", strchr(line, ':') + 2);
            name[strcspn(name, "\n")] = '\0';
            break;
        }
    if (f) fclose(f);
    printf("{\"cpu\":\"%s\",\"threads\":%d}\n", name, threads);
}

/* One stream by hand, the primitives only: tokens/s of `steps` tokens from BOS. */
static double run_loop(const Bench *b, CkError *err) {
    const Model *m = b->m;
    Activations acts = {0};
    KVCache cache = {0};
    float *logits = malloc(sizeof(float) * (size_t)m->config.vocab_size);
    int rc = logits && kvcache_init(&cache, m, b->steps, err) == 0 &&
                     activations_init(&acts, m, 1, b->steps, 0, err) == 0
                 ? 0
                 : -1;
    int offsets[2] = {0, 1}, token = 1;
    double t0 = timer_seconds();
    for (int pos = 0; pos < b->steps && rc == 0; pos++) {
        TokenBatch tb = {1, offsets, &token};
        rc = model_forward(m, &acts, &tb, &cache, NULL, err);
        model_logits_row(m, &acts, 0, logits, NULL);
        token = sampler_argmax(logits, m->config.vocab_size);
    }
    double s = timer_seconds() - t0;
    free(logits);
    kvcache_free(&cache);
    activations_free(&acts);
    return rc == 0 ? b->steps / s : -1.0;
}

static double run_generate(const Bench *b, CkError *err) {
    GenerateOptions o = {b->steps, 0.0f, 1.0f, 1, 0};
    GenerateStats st;
    if (generate_text(b->m, b->tok, "", &o, NULL, NULL, NULL, &st, err) != 0) return -1.0;
    return st.generated_tokens / st.seconds;
}

/* All requests through the scheduler at batch B: aggregate generated tokens/s. */
static double run_batch(const Bench *b, int B, CkError *err) {
    GenerateRequest *reqs = calloc((size_t)b->seqs, sizeof *reqs);
    int *ids = malloc(sizeof(int) * (size_t)b->seqs * (size_t)b->prompt);
    double rate = -1.0;
    if (reqs && ids) {
        for (int i = 0; i < b->seqs; i++) {
            int *p = ids + (size_t)i * b->prompt;
            uint64_t state = 1000u + (uint64_t)i;
            p[0] = 1;
            for (int k = 1; k < b->prompt; k++)
                p[k] =
                    3 + (int)(bench_splitmix64(&state) % (uint64_t)(b->m->config.vocab_size - 3));
            reqs[i] = (GenerateRequest){p, b->prompt, {b->steps, 0.0f, 1.0f, 1, 0}, NULL, NULL};
        }
        GenerateBatchOptions o;
        generate_batch_options_init(&o);
        o.max_batch = B;
        GenerateBatchStats st;
        if (generate_batch(b->m, NULL, reqs, b->seqs, &o, &st, err) == 0)
            rate = st.generated_tokens / st.seconds;
    }
    free(reqs);
    free(ids);
    return rate;
}

/* Median tokens/s of `repeats` runs after a warm-up; -1 on failure. */
static double median_rate(const Bench *b, const char *what, int B, CkError *err) {
    double rates[64];
    int n = b->repeats < 64 ? b->repeats : 64;
    for (int r = 0; r <= n; r++) {
        double v = !strcmp(what, "loop")       ? run_loop(b, err)
                   : !strcmp(what, "generate") ? run_generate(b, err)
                                               : run_batch(b, B, err);
        if (v < 0) return -1.0;
        if (r > 0) rates[r - 1] = v; /* run 0 is the warm-up */
    }
    return bench_median(rates, n);
}

int main(int argc, char **argv) {
    int threads = 0, steps = 0, seqs = 0, prompt = 0, repeats = 0;
    if (bench_parse_int(arg_value(argc, argv, "--threads", "0"), 0, &threads) ||
        bench_parse_int(arg_value(argc, argv, "--steps", "128"), 1, &steps) ||
        bench_parse_int(arg_value(argc, argv, "--seqs", "32"), 1, &seqs) ||
        bench_parse_int(arg_value(argc, argv, "--prompt", "8"), 1, &prompt) ||
        bench_parse_int(arg_value(argc, argv, "--repeats", "3"), 1, &repeats)) {
        fprintf(stderr, "usage: cutkit-bench-decode [--model PATH] [--threads N] [--steps N] "
                        "[--seqs N] [--prompt N] [--batches 1,4,16] [--repeats N]\n");
        return 2;
    }
    threads = threads_set(threads);
    const char *path = arg_value(argc, argv, "--model", NULL);
    CkError err = {{0}};
    LanguageModel lm;
    Model m;
    int have_lm = path == NULL;
    if (have_lm ? lm_open(&lm, NULL, NULL, &err) : llama2c_load_file(&m, path, &err)) {
        fprintf(stderr, "cutkit-bench-decode: %s\n", err.msg);
        return 1;
    }
    Bench b = {
        have_lm ? &lm.model : &m, have_lm ? &lm.tokenizer : NULL, steps, seqs, prompt, repeats};
    if (b.steps + b.prompt > b.m->config.seq_len) b.steps = b.m->config.seq_len - b.prompt;
    print_cpu(threads);
    double loop = median_rate(&b, "loop", 1, &err);
    printf("{\"row\":\"loop\",\"steps\":%d,\"tokens_per_s\":%.1f}\n", b.steps, loop);
    if (b.tok) {
        double g = median_rate(&b, "generate", 1, &err);
        printf("{\"row\":\"generate\",\"steps\":%d,\"tokens_per_s\":%.1f,\"x_loop\":%.2f}\n",
               b.steps, g, g / loop);
    }
    char list[256];
    snprintf(list, sizeof list, "%s", arg_value(argc, argv, "--batches", "1,4,16"));
    int rc = loop < 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t && !rc;
         t = strtok_r(NULL, ",", &save)) {
        int B = 0;
        if (bench_parse_int(t, 1, &B) != 0) break;
        double r = median_rate(&b, "batch", B, &err);
        rc = r < 0;
        if (!rc)
            printf("{\"row\":\"batch\",\"batch\":%d,\"seqs\":%d,\"steps\":%d,\"tokens_per_s\":%.1f,"
                   "\"x_loop\":%.2f}\n",
                   B, b.seqs, b.steps, r, r / loop);
    }
    if (rc) fprintf(stderr, "cutkit-bench-decode: %s\n", err.msg);
    if (have_lm)
        lm_close(&lm);
    else
        model_free(&m);
    return rc ? 1 : 0;
}
