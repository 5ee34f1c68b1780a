/* test_matmul_weight.c — weights held as stored (weight.h): the bf16 / f16 conversions against
 * their definition (nearest representable value, ties to even), Q8 quantisation's bounds, and
 * matmul_forward_w / matmul_backward_input_w for every dtype, compute type and backend against
 * the naive oracle on the widened weights; a product short of memory reports it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "tests/test_util.h"

#include "model/matmul.h"
#include "model/weight.h"
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

/* v rounded to `bits` significant bits, nearest, ties to even, in double (exact): the
 * definition the conversions must meet (normal range). */
static double round_sig(double v, int bits) {
    int e;
    double m = frexp(v, &e);                           /* v = m 2^e, 0.5 <= |m| < 1 */
    return ldexp(nearbyint(ldexp(m, bits)), e - bits); /* nearbyint: ties to even */
}

static void test_bf16_rounding(void **state) {
    (void)state;
    /* ties: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7 and goes to the even 1 */
    assert_true(weight_bf16_to_f32(weight_f32_to_bf16(1.0f + 0x1p-8f)) == 1.0f);
    assert_true(weight_bf16_to_f32(weight_f32_to_bf16(1.0f + 3 * 0x1p-8f)) == 1.0f + 0x1p-6f);
    assert_true(isinf(weight_bf16_to_f32(weight_f32_to_bf16(INFINITY))));
    assert_true(isnan(weight_bf16_to_f32(weight_f32_to_bf16(NAN))));
    Rng r;
    rng_seed(&r, 21);
    for (int i = 0; i < 100000; i++) {
        float f = (2.0f * rng_float(&r) - 1.0f) * ldexpf(1.0f, (int)(rng_float(&r) * 60) - 30);
        if (f == 0.0f) continue;
        float got = weight_bf16_to_f32(weight_f32_to_bf16(f));
        if (got != (float)round_sig(f, 8)) printf("bf16(%a) = %a\n", f, got);
        assert_true(got == (float)round_sig(f, 8));
    }
}

static void test_f16_rounding(void **state) {
    (void)state;
    assert_true(weight_f16_to_f32(weight_f32_to_f16(1.0f + 0x1p-11f)) == 1.0f); /* tie, even */
    assert_true(weight_f16_to_f32(weight_f32_to_f16(65504.0f)) == 65504.0f);    /* largest */
    assert_true(isinf(weight_f16_to_f32(weight_f32_to_f16(65520.0f))));         /* overflow */
    assert_true(weight_f16_to_f32(weight_f32_to_f16(0x1p-24f)) == 0x1p-24f);    /* subnormal */
    Rng r;
    rng_seed(&r, 22);
    for (int i = 0; i < 100000; i++) {
        /* normal half range: 2^-14 .. 2^15 */
        float f = (2.0f * rng_float(&r) - 1.0f) * ldexpf(1.0f, (int)(rng_float(&r) * 28) - 13);
        if (fabsf(f) < 0x1p-14f) continue;
        float got = weight_f16_to_f32(weight_f32_to_f16(f));
        assert_true(got == (float)round_sig(f, 11));
    }
}

static void test_q8_quantisation(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 23);
    const int out = 5, in = 128;
    for (int group = 32; group <= 64; group += 32) {
        float *w = random_floats(&r, (size_t)out * in), deq[5 * 128];
        memset(w + 64, 0, 32 * sizeof(float)); /* an all-zero group: scale 0, values 0 */
        int8_t q[5 * 128];
        float scales[5 * 4];
        assert_int_equal(weight_quantize_q8(q, scales, w, out, in, group, NULL), 0);
        WeightRef ref = {WEIGHT_Q8, q, scales, group};
        weight_rows_to_f32(deq, &ref, in, 0, out);
        for (int g = 0; g < out * in / group; g++) {
            float absmax = 0;
            int hit = 0;
            for (int i = 0; i < group; i++) absmax = fmaxf(absmax, fabsf(w[g * group + i]));
            assert_true(scales[g] == absmax / 127.0f);
            for (int i = 0; i < group; i++) {
                int k = g * group + i;
                assert_true(fabsf(deq[k] - w[k]) <= scales[g] * 0.5f * (1 + 1e-6f));
                hit |= abs(q[k]) == 127;
            }
            assert_true(hit || absmax == 0.0f); /* the largest value maps to +-127 */
        }
        free(w);
    }
    CkError err = {{0}};
    int8_t q[96];
    float s[3], w[96] = {0};
    assert_int_equal(weight_quantize_q8(q, s, w, 1, 96, 64, &err), -1);
    assert_non_null(strstr(err.msg, "group 64, expected 32 or 64 dividing 96"));
    WeightRef bad = {WEIGHT_Q8, q, NULL, 32};
    assert_int_equal(weight_check(&bad, 96, 1, &err), -1);
    assert_non_null(strstr(err.msg, "no scales"));
}

/* The stored form of w (out, in) in dtype; *wide receives what it holds, widened to fp32. */
static WeightRef stored(WeightDtype dt, const float *w, int out, int in, void **data,
                        float **scales, float *wide) {
    size_t n = (size_t)out * in;
    *scales = NULL;
    *data = malloc(n * weight_dtype_size(dt));
    WeightRef ref = {dt, *data, NULL, 0};
    if (dt == WEIGHT_F32) memcpy(*data, w, n * sizeof(float));
    if (dt == WEIGHT_BF16) weight_f32_to_bf16_n(*data, w, n);
    if (dt == WEIGHT_F16) weight_f32_to_f16_n(*data, w, n);
    if (dt == WEIGHT_Q8) {
        ref.group = in % 64 == 0 ? 64 : 32;
        *scales = malloc(n / ref.group * sizeof(float));
        weight_quantize_q8(*data, *scales, w, out, in, ref.group, NULL);
        ref.scales = *scales;
    }
    weight_rows_to_f32(wide, &ref, in, 0, out);
    return ref;
}

/* forward_w and backward_input_w of one stored weight against the oracle on its widened
 * values (bf16 compute: on the widened values rounded to bf16, and x / dy rounded). */
static void check_typed(Rng *r, WeightDtype dt, int n, int in, int out, int bf16) {
    size_t nw = (size_t)out * in;
    float *w = random_floats(r, nw), *wide = malloc(nw * sizeof(float));
    float *x = random_floats(r, (size_t)n * in), *dy = random_floats(r, (size_t)n * out);
    void *data;
    float *scales;
    WeightRef ref = stored(dt, w, out, in, &data, &scales, wide);
    assert_int_equal(weight_check(&ref, in, out, NULL), 0);
    if (bf16) {
        weight_round_bf16_n(wide, nw);
    }
    float *xo = malloc((size_t)n * in * sizeof(float)), *dyo = malloc((size_t)n * out * 4);
    memcpy(xo, x, (size_t)n * in * sizeof(float));
    memcpy(dyo, dy, (size_t)n * out * sizeof(float));
    if (bf16) {
        weight_round_bf16_n(xo, (size_t)n * in);
        weight_round_bf16_n(dyo, (size_t)n * out);
    }
    float *y = malloc((size_t)n * out * 4), *y_ref = malloc((size_t)n * out * 4);
    float *dx = calloc((size_t)n * in, 4), *dx_ref = calloc((size_t)n * in, 4);
    matmul_forward_w(y, x, &ref, n, in, out);
    matmul_strided_naive(0, 1, n, out, in, 1.0f, xo, in, wide, in, 0.0f, y_ref, out);
    double d = max_abs_diff(y, y_ref, (size_t)n * out), tol = 1e-5 * sqrt((double)in) + 1e-6;
    if (d > tol)
        printf("%s %s forward %d x %d x %d: %.3g\n", weight_dtype_name(dt), matmul_compute_name(),
               n, in, out, d);
    assert_true(d <= tol);
    for (int rep = 0; rep < 2; rep++) /* accumulates: twice */
        matmul_backward_input_w(dx, dy, &ref, n, in, out);
    matmul_strided_naive(0, 0, n, in, out, 2.0f, dyo, out, wide, in, 0.0f, dx_ref, in);
    d = max_abs_diff(dx, dx_ref, (size_t)n * in);
    tol = 2e-5 * sqrt((double)out) + 1e-6;
    if (d > tol)
        printf("%s %s backward %d x %d x %d: %.3g\n", weight_dtype_name(dt), matmul_compute_name(),
               n, in, out, d);
    assert_true(d <= tol);
    free(w);
    free(wide);
    free(x);
    free(dy);
    free(xo);
    free(dyo);
    free(y);
    free(y_ref);
    free(dx);
    free(dx_ref);
    free(data);
    free(scales);
}

static void test_typed_products(void **state) {
    (void)state;
    static const int shapes[][3] = {{1, 64, 64},   {1, 288, 1000}, {3, 128, 40},
                                    {16, 96, 300}, {40, 288, 768}, {1, 64, 7}};
    static const MatmulBackend backends[] = {MATMUL_BACKEND_AUTO, MATMUL_BACKEND_OPENBLAS,
                                             MATMUL_BACKEND_DNNL};
    Rng r;
    rng_seed(&r, 24);
    for (int b = 0; b < 3; b++) {
        if (matmul_set_backend(backends[b], NULL) != 0) continue; /* oneDNN absent */
        for (int bf16 = 0; bf16 <= 1; bf16++) {
            if (matmul_set_compute(bf16 ? MATMUL_BF16 : MATMUL_FP32, NULL) != 0) continue;
            printf("%s, %s\n", matmul_backend_name(), matmul_compute_name());
            for (int dt = WEIGHT_F32; dt <= WEIGHT_Q8; dt++)
                for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                    check_typed(&r, (WeightDtype)dt, shapes[s][0], shapes[s][1], shapes[s][2],
                                bf16);
        }
    }
    /* ragged rows (no Q8: it needs whole groups) and a weight larger than one widening block */
    matmul_set_compute(MATMUL_FP32, NULL);
    matmul_set_backend(MATMUL_BACKEND_AUTO, NULL);
    for (int dt = WEIGHT_F32; dt <= WEIGHT_F16; dt++) {
        check_typed(&r, (WeightDtype)dt, 5, 172, 64, 0);
        check_typed(&r, (WeightDtype)dt, 1, 172, 67, 0);
        check_typed(&r, (WeightDtype)dt, 4, 288, 1100, 0);
    }
}

/* The gemv over stored weights gives the same numbers on 1 and 2 threads. */
static void test_typed_gemv_thread_independent(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 25);
    const int in = 288, out = 4000;
    float *w = random_floats(&r, (size_t)out * in), *wide = malloc((size_t)out * in * 4);
    float *x = random_floats(&r, in), y1[4000], y2[4000];
    for (int dt = WEIGHT_F32; dt <= WEIGHT_Q8; dt++) {
        void *data;
        float *scales;
        WeightRef ref = stored((WeightDtype)dt, w, out, in, &data, &scales, wide);
        threads_set(1);
        matmul_forward_w(y1, x, &ref, 1, in, out);
        threads_set(2);
        matmul_forward_w(y2, x, &ref, 1, in, out);
        assert_true(max_abs_diff(y1, y2, out) == 0.0);
        free(data);
        free(scales);
    }
    threads_set(0);
    free(w);
    free(wide);
    free(x);
}

/* A decoding batch (2..16 rows, our gemv kernel streaming W once for all of them) gives each
 * row exactly the bits that row gets alone, on 1 and 2 threads, for every stored format, with
 * ragged sizes (a tail of W rows past a multiple of 4, of columns past a multiple of 16). */
static void test_batch_rows_match_single(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 26);
    static const int shapes[][2] = {{288, 771}, {128, 64}, {96, 37}, {172, 67}};
    static const int batches[] = {2, 3, 5, 16};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int in = shapes[s][0], out = shapes[s][1], n_max = 16;
        float *w = random_floats(&r, (size_t)out * in), *wide = malloc((size_t)out * in * 4);
        float *x = random_floats(&r, (size_t)n_max * in);
        float *y = malloc((size_t)n_max * out * 4), *y1 = malloc((size_t)out * 4);
        for (int dt = WEIGHT_F32; dt <= WEIGHT_Q8; dt++) {
            if (dt == WEIGHT_Q8 && in % 32 != 0) continue; /* Q8 needs whole groups */
            void *data;
            float *scales;
            WeightRef ref = stored((WeightDtype)dt, w, out, in, &data, &scales, wide);
            for (int th = 1; th <= 2; th++) {
                threads_set(th);
                for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
                    const int n = batches[b];
                    matmul_forward_w(y, x, &ref, n, in, out);
                    for (int i = 0; i < n; i++) {
                        matmul_forward_w(y1, x + (size_t)i * in, &ref, 1, in, out);
                        if (memcmp(y1, y + (size_t)i * out, (size_t)out * 4) != 0)
                            printf("%s %d x %d x %d, row %d, %d threads: differs from alone\n",
                                   weight_dtype_name((WeightDtype)dt), n, in, out, i, th);
                        assert_memory_equal(y1, y + (size_t)i * out, (size_t)out * 4);
                    }
                }
            }
            free(data);
            free(scales);
        }
        free(w);
        free(wide);
        free(x);
        free(y);
        free(y1);
    }
    threads_set(0);
}

/* Address space in use (VmSize of /proc/self/status), bytes; 0 when unknown. */
static size_t address_space_used(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb * 1024;
}

/* A typed product widens W into a buffer (here 64 rows x 2^19 floats, 128 MB). With the
 * address space capped below that (RLIMIT_AS, which malloc meets as NULL), the product must
 * not abort: it zeroes its output, and matmul_status reports the buffer once. */
static void test_product_out_of_memory(void **state) {
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    printf("skipped: under AddressSanitizer a failed malloc aborts instead of returning NULL\n");
    return;
#endif
    const int n = 17, in = 1 << 19, out = 64; /* n > 16: the widening path, not the gemv */
    uint16_t *wb = calloc((size_t)out * in, sizeof(uint16_t));
    float *x = calloc((size_t)n * in, sizeof(float)), *y = malloc((size_t)n * out * 4);
    assert_non_null(wb);
    assert_non_null(x);
    assert_non_null(y);
    for (int i = 0; i < n * out; i++) y[i] = 1.0f;
    WeightRef w = {0};
    w.data = wb;
    w.dtype = WEIGHT_BF16;
    struct rlimit old, capped;
    assert_int_equal(getrlimit(RLIMIT_AS, &old), 0);
    const size_t used = address_space_used(), room = (size_t)32 << 20; /* not the 128 MB */
    if (used == 0) {
        printf("skipped: /proc/self/status has no VmSize\n");
    } else if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur <= used + room) {
        printf("skipped: the address space is already capped (RLIMIT_AS)\n");
    } else {
        capped = old;
        capped.rlim_cur = used + room;
        assert_int_equal(setrlimit(RLIMIT_AS, &capped), 0);
        matmul_forward_w(y, x, &w, n, in, out);
        assert_int_equal(setrlimit(RLIMIT_AS, &old), 0);
        CkError err = {{0}};
        assert_int_equal(matmul_status(&err), -1);
        assert_non_null(strstr(err.msg, "out of memory"));
        assert_non_null(strstr(err.msg, "33554432 floats")); /* 64 x 2^19 */
        for (int i = 0; i < n * out; i++) assert_true(y[i] == 0.0f);
        assert_int_equal(matmul_status(&err), 0); /* reported once */
    }
    free(wb);
    free(x);
    free(y);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_rounding),
        cmocka_unit_test(test_f16_rounding),
        cmocka_unit_test(test_q8_quantisation),
        cmocka_unit_test(test_typed_products),
        cmocka_unit_test(test_typed_gemv_thread_independent),
        cmocka_unit_test(test_batch_rows_match_single),
        cmocka_unit_test(test_product_out_of_memory),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
