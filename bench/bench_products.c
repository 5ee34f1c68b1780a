/* bench_products.c — the layer product Y = X W^T (M x K x N) on each backend, GFLOP/s.
 *
 *   cutkit-bench-products [--threads N] [--repeats R] [--quick]
 *
 * Columns: OpenBLAS sgemm (backend OPENBLAS, fp32; one row goes to our gemv), oneDNN fp32
 * and oneDNN bf16 (inputs rounded to bf16, fp32 accumulation and output; the fp32 weight is
 * rounded on every call, as a training step must), what the default (auto) setting runs, and
 * bf16 with the weight already stored as bf16 (WeightRef: evaluation of a bf16 checkpoint).
 * Each cell is the best of R timed calls after one warm-up: the machine may be shared, and the
 * fastest call is the one least disturbed. Prints a Markdown table and one JSON line per cell. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "model/blas_env.h"
#include "model/matmul.h"
#include "model/weight.h"
#include "util/threads.h"
#include "util/timer.h"

typedef struct {
    int m, k, n;
    const char *what;
} Shape;

/* issue 18's table, then the 15M model's decoding and scoring shapes */
static const Shape SHAPES[] = {
    {1024, 768, 768, "110M layer"},        {1024, 288, 32000, "classifier"},
    {512, 4096, 11008, "7B MLP"},          {16, 4096, 4096, "batched decoding"},
    {1, 4096, 4096, "decoding"},           {1, 288, 32000, "15M decoding classifier"},
    {1, 288, 768, "15M decoding MLP"},     {16, 288, 768, "15M batched decoding"},
    {1024, 288, 768, "15M scoring MLP"},   {16, 288, 32000, "15M batched classifier"},
    {16, 288, 288, "15M batched q/k/v/o"},
};
#define N_SHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

enum { COL_BLAS, COL_DNNL_F32, COL_DNNL_BF16, COL_AUTO, COL_BF16_STORED, N_COLS };
static const char *COL_NAMES[N_COLS] = {"openblas_f32", "onednn_f32", "onednn_bf16", "auto_f32",
                                        "bf16_stored_weights"};

/* Sets the backend and compute of a column; 0 when this build and machine can run it. */
static int column_setup(int col) {
    MatmulBackend b = col == COL_BLAS   ? MATMUL_BACKEND_OPENBLAS
                      : col == COL_AUTO ? MATMUL_BACKEND_AUTO
                                        : MATMUL_BACKEND_DNNL;
    MatmulCompute c = col == COL_DNNL_BF16 || col == COL_BF16_STORED ? MATMUL_BF16 : MATMUL_FP32;
    if (col == COL_BF16_STORED) b = MATMUL_BACKEND_AUTO;
    if (matmul_set_backend(b, NULL) != 0 || matmul_set_compute(c, NULL) != 0) return -1;
    return 0;
}

/* Best seconds of `repeats` products after one warm-up. */
static double time_product(const Shape *s, int col, const float *x, const float *w,
                           const WeightRef *wb, float *y, int repeats) {
    double best = 1e30;
    for (int r = 0; r <= repeats; r++) {
        double t0 = timer_seconds();
        if (col == COL_BF16_STORED)
            matmul_forward_w(y, x, wb, s->m, s->k, s->n);
        else
            matmul_forward(y, x, w, s->m, s->k, s->n);
        double t = timer_seconds() - t0;
        if (r > 0 && t < best) best = t;
    }
    return best;
}

static void print_cpu(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            printf("CPU: %s", strchr(line, ':') + 2);
            break;
        }
    if (f) fclose(f);
}

int main(int argc, char **argv) {
    blas_env_ensure(argv);
    int threads = 0, repeats = 5, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else if (i + 1 < argc && !strcmp(argv[i], "--threads")) {
            if (bench_parse_int(argv[++i], 0, &threads) != 0) return 2;
        } else if (i + 1 < argc && !strcmp(argv[i], "--repeats")) {
            if (bench_parse_int(argv[++i], 1, &repeats) != 0) return 2;
        } else {
            fprintf(stderr, "usage: cutkit-bench-products [--threads N] [--repeats R] [--quick]\n");
            return 2;
        }
    }
    threads = threads_set(threads);
    if (quick) repeats = 2;
    print_cpu();
    printf("threads %d, best of %d calls after a warm-up; GFLOP/s = 2 M K N / seconds\n\n", threads,
           repeats);
    printf("| M x K x N | what | OpenBLAS f32 | oneDNN f32 | oneDNN bf16 | auto f32 (%s) | bf16, "
           "bf16-stored W |\n|---|---|---:|---:|---:|---:|---:|\n",
           matmul_backend_name());
    for (int si = 0; si < N_SHAPES; si++) {
        const Shape *s = &SHAPES[si];
        if (quick && (size_t)s->k * s->n > 20000000) continue; /* the 7B MLP: 45 GFLOP a call */
        size_t nx = (size_t)s->m * s->k, nw = (size_t)s->k * s->n;
        float *x = malloc(nx * sizeof(float)), *w = malloc(nw * sizeof(float));
        float *y = malloc((size_t)s->m * s->n * sizeof(float));
        uint16_t *w16 = malloc(nw * sizeof(uint16_t));
        if (!x || !w || !y || !w16) return 1;
        for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        for (size_t i = 0; i < nw; i++) w[i] = (float)((i * 104729) % 1000) / 25000.0f - 0.02f;
        weight_f32_to_bf16_n(w16, w, nw);
        WeightRef wb = {WEIGHT_BF16, w16, NULL, 0};
        printf("| %d x %d x %d | %s |", s->m, s->k, s->n, s->what);
        for (int col = 0; col < N_COLS; col++) {
            if (column_setup(col) != 0) {
                printf(" absent |");
                continue;
            }
            double sec = time_product(s, col, x, w, &wb, y, repeats);
            double gflops = 2.0 * s->m * s->k * s->n / sec / 1e9;
            printf(" %.1f |", gflops);
            fprintf(stderr,
                    "{\"m\":%d,\"k\":%d,\"n\":%d,\"column\":\"%s\",\"backend\":\"%s\","
                    "\"threads\":%d,\"best_s\":%.6f,\"gflops\":%.2f}\n",
                    s->m, s->k, s->n, COL_NAMES[col], matmul_backend_name(), threads, sec, gflops);
        }
        printf("\n");
        fflush(stdout);
        free(x);
        free(w);
        free(y);
        free(w16);
    }
    matmul_set_compute(MATMUL_FP32, NULL);
    matmul_set_backend(MATMUL_BACKEND_AUTO, NULL);
    return 0;
}
