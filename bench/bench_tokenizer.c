/* bench_tokenizer.c — cutkit's side of bench/tokenizer_bench.sh: times encoding a set of
 * documents with a tokenizer and prints one JSON line, in the same shape as
 * bench/tokenizer_ref.mjs prints for the reference.
 *
 *   cutkit-bench-tokenizer --tokenizer PATH --input DOCS.jsonl [--repeats R] [--warmup W]
 *                          [--threads N]
 *
 * DOCS.jsonl holds one {"text": ...} per line. Each pass encodes every document on its own
 * (add_special_tokens false), as an evaluation harness does; the reported time is the median
 * pass. The checksum over all ids lets the script check that both sides produced the same
 * tokens. */
#include <cjson/cJSON.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"
#include "util/timer.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *arg_value(int argc, char **argv, const char *name, const char *def) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return def;
}

/* Reads the "text" of every line of path; returns the count, or -1. */
static int read_docs(const char *path, char ***docs, size_t *total_bytes) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0, n = 0, room = 0;
    ssize_t got;
    *docs = NULL;
    *total_bytes = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        cJSON *row = cJSON_ParseWithLength(line, (size_t)got);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(row, "text");
        if (!cJSON_IsString(text)) {
            cJSON_Delete(row);
            continue;
        }
        if (n == room) {
            room = room ? 2 * room : 1024;
            *docs = realloc(*docs, room * sizeof **docs);
        }
        (*docs)[n++] = strdup(text->valuestring);
        *total_bytes += strlen(text->valuestring);
        cJSON_Delete(row);
    }
    free(line);
    fclose(f);
    return (int)n;
}

/* The same checksum as tokenizer_ref.mjs: h = h * 31 + id + 1 over all ids, modulo 2^32. */
static uint32_t mix_ids(uint32_t h, const int *ids, int n) {
    for (int i = 0; i < n; i++) h = h * 31u + (uint32_t)ids[i] + 1u;
    return h;
}

int main(int argc, char **argv) {
    const char *tok_path = arg_value(argc, argv, "--tokenizer", NULL);
    const char *input = arg_value(argc, argv, "--input", NULL);
    int repeats = atoi(arg_value(argc, argv, "--repeats", "5"));
    int warmup = atoi(arg_value(argc, argv, "--warmup", "1"));
    int threads = atoi(arg_value(argc, argv, "--threads", "1"));
    if (!tok_path || !input || repeats < 1 || warmup < 0 || threads < 1) {
        fprintf(stderr, "usage: cutkit-bench-tokenizer --tokenizer PATH --input DOCS.jsonl "
                        "[--repeats R] [--warmup W] [--threads N]\n");
        return 2;
    }
    char **docs;
    size_t bytes;
    int n_docs = read_docs(input, &docs, &bytes);
    if (n_docs <= 0) {
        fprintf(stderr, "cutkit-bench-tokenizer: no documents in %s\n", input);
        return 1;
    }
    Tokenizer tok;
    CkError err = {{0}};
    double t0 = timer_seconds();
    if (tokenizer_open(&tok, tok_path, &err) != 0) {
        fprintf(stderr, "cutkit-bench-tokenizer: %s\n", err.msg);
        return 1;
    }
    double load_s = timer_seconds() - t0;

    /* Every document's ids are kept per pass so that the checksum is taken in document order
     * whatever the thread schedule. */
    int **ids = calloc((size_t)n_docs, sizeof *ids);
    int *counts = calloc((size_t)n_docs, sizeof *counts);
    double *times = malloc((size_t)repeats * sizeof *times);
    long tokens = 0;
    uint32_t checksum = 0;
    int failed = 0;
    for (int pass = 0; pass < warmup + repeats; pass++) {
        double start = timer_seconds();
#pragma omp parallel for num_threads(threads) schedule(dynamic, 16) reduction(| : failed)
        for (int d = 0; d < n_docs; d++) {
            CkError e;
            free(ids[d]);
            ids[d] = NULL;
            if (tokenizer_encode_special(&tok, docs[d], 0, &ids[d], &counts[d], &e) != 0) {
                fprintf(stderr, "cutkit-bench-tokenizer: document %d: %s\n", d, e.msg);
                failed = 1;
            }
        }
        double elapsed = timer_seconds() - start;
        if (failed) return 1;
        if (pass >= warmup) times[pass - warmup] = elapsed;
    }
    for (int d = 0; d < n_docs; d++) {
        tokens += counts[d];
        checksum = mix_ids(checksum, ids[d], counts[d]);
    }
    qsort(times, (size_t)repeats, sizeof *times, cmp_double);
    double median = times[repeats / 2];
    printf("{\"impl\": \"cutkit\", \"tokenizer\": \"%s\", \"threads\": %d, \"docs\": %d, "
           "\"bytes\": %zu, \"tokens\": %ld, \"checksum\": %u, \"load_s\": %.4f, "
           "\"encode_s\": %.4f, \"mb_per_s\": %.3f}\n",
           tok_path, threads, n_docs, bytes, tokens, checksum, load_s, median,
           (double)bytes / 1e6 / median);
    for (int d = 0; d < n_docs; d++) {
        free(ids[d]);
        free(docs[d]);
    }
    free(ids);
    free(counts);
    free(docs);
    free(times);
    tokenizer_free(&tok);
    return 0;
}
