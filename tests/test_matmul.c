/* test_matmul.c — every BLAS entry point of matmul.c against the naive triple loop, on
 * random shapes including ragged ones (172 = stories260K's hidden size, primes, 1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include <cblas.h>
#include <strings.h>

#include "model/blas_env.h"
#include "model/matmul.h"
#include "util/rng.h"
#include "util/threads.h"

static float *random_floats(Rng *r, size_t n) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = 2.0f * rng_float(r) - 1.0f;
    return p;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static const int SHAPES[][3] = {{1, 64, 64},    {1, 172, 64},  {7, 64, 172}, {33, 172, 64},
                                {128, 64, 32},  {5, 1, 1},     {3, 17, 29},  {256, 288, 768},
                                {64, 768, 288}, {100, 64, 512}};
#define N_SHAPES (sizeof SHAPES / sizeof SHAPES[0])

/* Tolerance scaled by the length of the dot products (values in [-1, 1]). */
static double tolerance(int k) {
    return 1e-5 * sqrt((double)k) + 1e-6;
}

static void test_strided_all_transposes(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 11);
    for (size_t s = 0; s < N_SHAPES; s++) {
        const int m = SHAPES[s][0], n = SHAPES[s][2], k = SHAPES[s][1];
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                /* leading dimensions wider than needed, as in the per-head attention calls */
                int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
                float *a = random_floats(&r, (size_t)(ta ? k : m) * lda);
                float *b = random_floats(&r, (size_t)(tb ? n : k) * ldb);
                float *c1 = random_floats(&r, (size_t)m * ldc);
                float *c2 = malloc((size_t)m * ldc * sizeof(float));
                memcpy(c2, c1, (size_t)m * ldc * sizeof(float));
                matmul_strided(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 0.25f, c1, ldc);
                matmul_strided_naive(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 0.25f, c2, ldc);
                double d = max_abs_diff(c1, c2, (size_t)m * ldc);
                if (d > tolerance(k))
                    printf("shape %d x %d x %d, trans %d%d: max diff %.3g\n", m, k, n, ta, tb, d);
                assert_close(d, 0, tolerance(k));
                free(a);
                free(b);
                free(c1);
                free(c2);
            }
    }
}

static void test_layer_products(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 12);
    for (int threads = 1; threads <= 2; threads++) {
        threads_set(threads);
        for (size_t s = 0; s < N_SHAPES; s++) {
            const int n = SHAPES[s][0], in = SHAPES[s][1], out = SHAPES[s][2];
            float *x = random_floats(&r, (size_t)n * in), *w = random_floats(&r, (size_t)out * in);
            float *dy = random_floats(&r, (size_t)n * out);
            float *y = malloc(sizeof(float) * n * out), *y_ref = malloc(sizeof(float) * n * out);
            float *dx = calloc((size_t)n * in, sizeof(float));
            float *dx_ref = calloc((size_t)n * in, sizeof(float));
            float *dw = calloc((size_t)out * in, sizeof(float));
            float *dw_ref = calloc((size_t)out * in, sizeof(float));
            /* y = x w^T */
            matmul_forward(y, x, w, n, in, out);
            matmul_strided_naive(0, 1, n, out, in, 1.0f, x, in, w, in, 0.0f, y_ref, out);
            assert_true(max_abs_diff(y, y_ref, (size_t)n * out) <= tolerance(in));
            /* accumulate: y += x w^T doubles it */
            matmul_forward_accumulate(y, x, w, n, in, out);
            for (int i = 0; i < n * out; i++) y_ref[i] *= 2.0f;
            assert_true(max_abs_diff(y, y_ref, (size_t)n * out) <= 2 * tolerance(in));
            /* dx += dy w ; dw += dy^T x */
            matmul_backward_input(dx, dy, w, n, in, out);
            matmul_strided_naive(0, 0, n, in, out, 1.0f, dy, out, w, in, 1.0f, dx_ref, in);
            assert_true(max_abs_diff(dx, dx_ref, (size_t)n * in) <= tolerance(out));
            matmul_backward_weight(dw, dy, x, n, in, out);
            matmul_strided_naive(1, 0, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw_ref, in);
            assert_true(max_abs_diff(dw, dw_ref, (size_t)out * in) <= tolerance(n));
            free(x);
            free(w);
            free(dy);
            free(y);
            free(y_ref);
            free(dx);
            free(dx_ref);
            free(dw);
            free(dw_ref);
        }
    }
    threads_set(0);
}

/* OpenBLAS 0.3.21 takes this CPU for a Prescott; blas_env makes it use the right kernels. */
static void test_blas_uses_the_cpus_kernels(void **state) {
    (void)state;
    const char *want = getenv("OPENBLAS_CORETYPE"); /* ours, or one the user chose */
    char *core = openblas_get_corename();
    printf("OpenBLAS core: %s (this CPU prefers %s)\n", core,
           blas_env_preferred_coretype() ? blas_env_preferred_coretype() : "no override");
    if (blas_env_preferred_coretype()) assert_non_null(want);
    if (want) assert_int_equal(strcasecmp(core, want), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blas_uses_the_cpus_kernels),
        cmocka_unit_test(test_strided_all_transposes),
        cmocka_unit_test(test_layer_products),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
