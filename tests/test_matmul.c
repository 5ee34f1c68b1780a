/* test_matmul.c — every product of matmul.h, on every backend and compute type this build
 * has, against the naive triple loop (double accumulators), on random shapes including ragged
 * ones (172 = stories260K's hidden size, primes, 1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include <cblas.h>
#include <strings.h>

#include "model/blas_env.h"
#include "model/matmul.h"
#include "model/matmul_backend.h"
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

/* bf16 against the exact fp32 product: each input keeps 8 significant bits, so it moves by
 * at most 2^-9 of itself and each product a·b by at most ~2^-8 of |a·b| <= 1; the K errors
 * have independent signs and grow like sqrt(K): 2^-8 · sqrt(K) (0.108 at K = 768, 0.066 at
 * K = 288), plus the fp32 accumulation's own tolerance. */
static double tolerance_bf16(int k) {
    return ldexp(1.0, -8) * sqrt((double)k) + tolerance(k);
}

/* A copy of n floats rounded to bf16 (what a bf16 product multiplies). */
static float *rounded_copy(const float *x, size_t n) {
    float *r = malloc(n * sizeof(float));
    memcpy(r, x, n * sizeof(float));
    weight_round_bf16_n(r, n);
    return r;
}

/* The backends this build has, each run by the tests below. */
static const MatmulBackend BACKENDS[] = {MATMUL_BACKEND_AUTO, MATMUL_BACKEND_OPENBLAS,
                                         MATMUL_BACKEND_DNNL};
static const char *BACKEND_NAMES[] = {"auto", "openblas", "onednn"};

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

/* The four layer products of one shape against the oracle. With bf16, the oracle multiplies
 * the bf16-rounded inputs (what the product computes, fp32 tolerance) and the exact inputs
 * (bf16 tolerance). */
static void check_layer_products(Rng *r, int n, int in, int out, int bf16, const char *what) {
    float *x = random_floats(r, (size_t)n * in), *w = random_floats(r, (size_t)out * in);
    float *dy = random_floats(r, (size_t)n * out);
    float *xo = bf16 ? rounded_copy(x, (size_t)n * in) : x;
    float *wo = bf16 ? rounded_copy(w, (size_t)out * in) : w;
    float *dyo = bf16 ? rounded_copy(dy, (size_t)n * out) : dy;
    float *y = malloc(sizeof(float) * n * out), *y_ref = malloc(sizeof(float) * n * out);
    float *y_exact = malloc(sizeof(float) * n * out);
    float *dx = calloc((size_t)n * in, sizeof(float));
    float *dx_ref = calloc((size_t)n * in, sizeof(float));
    float *dw = calloc((size_t)out * in, sizeof(float));
    float *dw_ref = calloc((size_t)out * in, sizeof(float));
    double d;
    /* y = x w^T */
    matmul_forward(y, x, w, n, in, out);
    matmul_strided_naive(0, 1, n, out, in, 1.0f, xo, in, wo, in, 0.0f, y_ref, out);
    matmul_strided_naive(0, 1, n, out, in, 1.0f, x, in, w, in, 0.0f, y_exact, out);
    if ((d = max_abs_diff(y, y_ref, (size_t)n * out)) > tolerance(in))
        printf("%s forward %d x %d x %d: max diff %.3g\n", what, n, in, out, d);
    assert_true(d <= tolerance(in));
    if (bf16) assert_true(max_abs_diff(y, y_exact, (size_t)n * out) <= tolerance_bf16(in));
    /* accumulate: y += x w^T doubles it */
    matmul_forward_accumulate(y, x, w, n, in, out);
    for (int i = 0; i < n * out; i++) y_ref[i] *= 2.0f;
    assert_true(max_abs_diff(y, y_ref, (size_t)n * out) <= 2 * tolerance(in));
    /* dx += dy w ; dw += dy^T x */
    matmul_backward_input(dx, dy, w, n, in, out);
    matmul_strided_naive(0, 0, n, in, out, 1.0f, dyo, out, wo, in, 1.0f, dx_ref, in);
    if ((d = max_abs_diff(dx, dx_ref, (size_t)n * in)) > tolerance(out))
        printf("%s backward input %d x %d x %d: max diff %.3g\n", what, n, in, out, d);
    assert_true(d <= tolerance(out));
    matmul_backward_input_overwrite(dx, dy, w, n, in, out); /* = dy w, once */
    assert_true(max_abs_diff(dx, dx_ref, (size_t)n * in) <= tolerance(out));
    matmul_backward_weight(dw, dy, x, n, in, out);
    matmul_strided_naive(1, 0, out, in, n, 1.0f, dyo, out, xo, in, 1.0f, dw_ref, in);
    if ((d = max_abs_diff(dw, dw_ref, (size_t)out * in)) > tolerance(n))
        printf("%s backward weight %d x %d x %d: max diff %.3g\n", what, n, in, out, d);
    assert_true(d <= tolerance(n));
    if (bf16) {
        free(xo);
        free(wo);
        free(dyo);
    }
    free(x);
    free(w);
    free(dy);
    free(y);
    free(y_ref);
    free(y_exact);
    free(dx);
    free(dx_ref);
    free(dw);
    free(dw_ref);
}

/* Every backend this build has, fp32 and (where available) bf16, 1 and 2 threads. */
static void test_layer_products(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 12);
    for (size_t b = 0; b < sizeof BACKENDS / sizeof BACKENDS[0]; b++) {
        if (matmul_set_backend(BACKENDS[b], NULL) != 0) {
            printf("backend %s: absent in this build, skipped\n", BACKEND_NAMES[b]);
            continue;
        }
        for (int bf16 = 0; bf16 <= 1; bf16++) {
            if (matmul_set_compute(bf16 ? MATMUL_BF16 : MATMUL_FP32, NULL) != 0) continue;
            printf("backend %s, %s: %s\n", BACKEND_NAMES[b], matmul_compute_name(),
                   matmul_backend_name());
            /* 2 threads for the default backend */
            int max_threads = BACKENDS[b] == MATMUL_BACKEND_AUTO ? 2 : 1;
            for (int threads = 1; threads <= max_threads; threads++) {
                threads_set(threads);
                for (size_t s = 0; s < N_SHAPES; s++) {
                    const int n = SHAPES[s][0], in = SHAPES[s][1], out = SHAPES[s][2];
                    /* the forced backends on the smaller shapes: the oracle is the slow part */
                    if (BACKENDS[b] != MATMUL_BACKEND_AUTO && (long)n * in * out > 4000000)
                        continue;
                    check_layer_products(&r, n, in, out, bf16, matmul_backend_name());
                }
            }
        }
    }
    matmul_set_compute(MATMUL_FP32, NULL);
    matmul_set_backend(MATMUL_BACKEND_AUTO, NULL);
    threads_set(0);
}

/* fp32 results may not depend on the thread count beyond 1e-5 of their scale (per-row gemv,
 * the M <= 16 oneDNN products and sgemm included), on shapes from 1 row to the classifier's width.
 */
static void test_thread_count_independent(void **state) {
    (void)state;
    static const int shapes[][3] = {{1, 288, 32000}, {1, 768, 288},  {4, 288, 768},
                                    {16, 288, 288},  {64, 288, 768}, {1, 172, 64}};
    Rng r;
    rng_seed(&r, 13);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int n = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        float *x = random_floats(&r, (size_t)n * in), *w = random_floats(&r, (size_t)out * in);
        float *y1 = malloc(sizeof(float) * n * out), *y2 = malloc(sizeof(float) * n * out);
        threads_set(1);
        matmul_forward(y1, x, w, n, in, out);
        threads_set(2);
        matmul_forward(y2, x, w, n, in, out);
        /* relative to the largest output: sgemm's blocking may move a last bit */
        double scale = 1.0;
        for (int i = 0; i < n * out; i++) scale = fmax(scale, fabs(y1[i]));
        double d = max_abs_diff(y1, y2, (size_t)n * out) / scale;
        printf("%d x %d x %d: 1 vs 2 threads differ by %.3g of the largest output\n", n, in, out,
               d);
        assert_close(d, 0, 1e-5);
        free(x);
        free(w);
        free(y1);
        free(y2);
    }
    threads_set(0);
}

/* A shape seen again reuses its oneDNN primitive instead of creating one per call. */
static void test_dnnl_primitives_are_cached(void **state) {
    (void)state;
    if (!matmul_backend_available(MATMUL_BACKEND_DNNL)) {
        printf("oneDNN absent in this build: nothing is cached\n");
        assert_int_equal(mm_dnnl_primitives_created(), 0);
        return;
    }
    Rng r;
    rng_seed(&r, 14);
    float *x = random_floats(&r, 8 * 96), *w = random_floats(&r, 40 * 96), y[8 * 40];
    matmul_forward(y, x, w, 8, 96, 40); /* M = 8: oneDNN in fp32 */
    long after_first = mm_dnnl_primitives_created();
    for (int i = 0; i < 20; i++) matmul_forward(y, x, w, 8, 96, 40);
    assert_int_equal(mm_dnnl_primitives_created(), after_first);
    free(x);
    free(w);
}

/* --compute parsing, the setting's names, and the backends' availability reports. */
static void test_compute_setting(void **state) {
    (void)state;
    CkError err = {{0}};
    MatmulCompute c;
    assert_int_equal(compute_parse("bf16", &c, &err), 0);
    assert_int_equal(c, MATMUL_BF16);
    assert_int_equal(compute_parse("fp32", &c, &err), 0);
    assert_int_equal(c, MATMUL_FP32);
    assert_int_equal(compute_parse("fp16", &c, &err), -1);
    assert_non_null(strstr(err.msg, "'fp16', expected fp32 or bf16"));
    assert_string_equal(matmul_compute_name(), "fp32");
    if (matmul_bf16_available(&err) == 0) {
        assert_int_equal(matmul_set_compute(MATMUL_BF16, &err), 0);
        assert_string_equal(matmul_compute_name(), "bf16");
        assert_int_equal(matmul_set_compute(MATMUL_FP32, &err), 0);
    } else { /* refused, saying what is missing, and the setting stays fp32 */
        assert_int_equal(matmul_set_compute(MATMUL_BF16, &err), -1);
        assert_non_null(strstr(err.msg, "oneDNN"));
        assert_string_equal(matmul_compute_name(), "fp32");
    }
    if (!matmul_backend_available(MATMUL_BACKEND_DNNL)) {
        assert_int_equal(matmul_set_backend(MATMUL_BACKEND_DNNL, &err), -1);
        assert_non_null(strstr(err.msg, "absent"));
        assert_null(strstr(matmul_backend_name(), "onednn"));
    }
    printf("backend: %s\n", matmul_backend_name());
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
        cmocka_unit_test(test_thread_count_independent),
        cmocka_unit_test(test_dnnl_primitives_are_cached),
        cmocka_unit_test(test_compute_setting),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
