/* matmul.c — the layer products: which backend runs each, the compute type, the BLAS calls
 * (OpenBLAS, OpenMP build) and their naive oracle. */
#include "model/matmul.h"

#include <cblas.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/matmul_backend.h"

/* Up to this many rows (a decoding batch) a forward product goes to our gemv kernel, which
 * streams W once for all of them as stored: a BLAS packs W first (and a typed W must be
 * widened first), which costs as much as the product at these sizes (bench_products). */
#define GEMV_MAX_ROWS 16

/* oneDNN's fp32 matmul beats OpenBLAS sgemm up to about this many rows (issue 18: 3-6x at
 * M <= 16; bench/bench_products.c measures it): the other small products (backward, strided)
 * go to it; above, OpenBLAS stays the default. */
#define DNNL_F32_MAX_M 16

/* The smallest product (2 M N K) that oneDNN takes from a narrow-kernel OpenBLAS (below). */
#define DNNL_F32_ALL_MIN_FLOPS 6.4e7

/* Typed weights are widened about this many elements at a time (1 MB of fp32: stays in L2). */
#define WEIGHT_BLOCK_ELEMS (1 << 18)

static MatmulCompute g_compute = MATMUL_FP32;
static MatmulBackend g_backend = MATMUL_BACKEND_AUTO;

int compute_parse(const char *s, MatmulCompute *out, CkError *err) {
    if (s && !strcmp(s, "fp32"))
        *out = MATMUL_FP32;
    else if (s && !strcmp(s, "bf16"))
        *out = MATMUL_BF16;
    else
        return ck_fail(err, "--compute: '%s', expected fp32 or bf16", s ? s : "(none)");
    return 0;
}

static int cpu_has_avx512_bf16(void) {
#if defined(__x86_64__) && defined(__GNUC__) && __GNUC__ >= 12
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

int matmul_bf16_available(CkError *err) {
    if (mm_dnnl_present() || cpu_has_avx512_bf16()) return 0;
    return ck_fail(err, "bf16 compute needs oneDNN (this build has none: install libdnnl-dev and "
                        "rebuild with -DCUTKIT_DNNL=ON) or a CPU with avx512_bf16 (this one has "
                        "neither)");
}

int matmul_set_compute(MatmulCompute c, CkError *err) {
    if (c != MATMUL_FP32 && c != MATMUL_BF16) return ck_fail(err, "unknown compute type %d", c);
    if (c == MATMUL_BF16 && matmul_bf16_available(err) != 0) return -1;
    g_compute = c;
    return 0;
}

MatmulCompute matmul_get_compute(void) {
    return g_compute;
}

const char *matmul_compute_name(void) {
    return g_compute == MATMUL_BF16 ? "bf16" : "fp32";
}

int matmul_backend_available(MatmulBackend b) {
    return b == MATMUL_BACKEND_DNNL ? mm_dnnl_present() : 1;
}

int matmul_set_backend(MatmulBackend b, CkError *err) {
    if (b != MATMUL_BACKEND_AUTO && b != MATMUL_BACKEND_OPENBLAS && b != MATMUL_BACKEND_DNNL)
        return ck_fail(err, "unknown matmul backend %d", b);
    if (!matmul_backend_available(b))
        return ck_fail(err, "the oneDNN backend is absent (built without oneDNN, or its engine "
                            "could not start)");
    g_backend = b;
    return 0;
}

static int use_dnnl(void) {
    return g_backend != MATMUL_BACKEND_OPENBLAS && mm_dnnl_present();
}

/* OpenBLAS runs kernels narrower than the CPU's AVX-512 (OPENBLAS_CORETYPE=Haswell set by the
 * environment, or a CPU it does not know, which gets Prescott's SSE3): then oneDNN, which
 * picks its kernels from the CPU's own flags, runs fp32 products of every size about 2x
 * faster (bench_products), and takes every product of at least DNNL_F32_ALL_MIN_FLOPS (a
 * oneDNN primitive is built once per shape, about a millisecond: small products of shapes
 * that keep changing, as a tiny model's training packs them, stay with OpenBLAS). Decided
 * from the CPU, OpenBLAS's kernel name and the shape, never from timings. */
static int dnnl_f32_everywhere(void) {
    static int decided = -1;
    if (decided < 0) {
        const char *core = openblas_get_corename();
        int wide = core && (strstr(core, "SkylakeX") || strstr(core, "Cooperlake") ||
                            strstr(core, "SapphireRapids"));
        __builtin_cpu_init();
        decided = !wide && __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return decided;
}

const char *matmul_backend_name(void) {
    static char name[96];
    const char *v = mm_dnnl_version();
    if (g_compute == MATMUL_BF16)
        snprintf(name, sizeof name, use_dnnl() ? "onednn-bf16 %s" : "openblas-bf16-rounded%s",
                 use_dnnl() ? v : "");
    else if (g_backend == MATMUL_BACKEND_DNNL)
        snprintf(name, sizeof name, "onednn-f32 %s", v);
    else if (use_dnnl() && dnnl_f32_everywhere())
        snprintf(name, sizeof name,
                 "gemv (forward M<=%d)+onednn-f32 %s (OpenBLAS kernel %s: >= 64 MFLOP)",
                 GEMV_MAX_ROWS, v, openblas_get_corename());
    else if (use_dnnl())
        snprintf(name, sizeof name, "openblas+gemv (forward M<=%d)+onednn-f32 %s (other M<=%d)",
                 GEMV_MAX_ROWS, v, DNNL_F32_MAX_M);
    else
        snprintf(name, sizeof name, "openblas+gemv (forward M<=%d)", GEMV_MAX_ROWS);
    return name;
}

/* --- buffers and their failures --------------------------------------------------------- */

/* The largest buffer (floats) a product since the last matmul_status could not allocate; 0:
 * none. Products return nothing (they sit inside passes that do), so a failure is recorded
 * here and reported by the pass's call to matmul_status. */
static _Atomic size_t g_failed_floats;

/* A product's buffer of n floats (freed by the product: several threads may run products at
 * once), or NULL, recorded, when memory is short. */
static float *buffer_alloc(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) {
        size_t prev = atomic_load(&g_failed_floats);
        while (n > prev && !atomic_compare_exchange_weak(&g_failed_floats, &prev, n)) {
        }
    }
    return p;
}

/* What a product writes when it could not run: zeros where it would overwrite (rows x cols of
 * pitch ld), nothing where it would accumulate, so that no reader meets uninitialised memory
 * before the pass reports the failure. */
static void output_unwritten(float *y, int rows, int cols, size_t ld, float beta) {
    if (beta != 0.0f) return;
    for (int i = 0; i < rows; i++) memset(y + (size_t)i * ld, 0, (size_t)cols * sizeof(float));
}

int matmul_status(CkError *err) {
    size_t n = atomic_exchange(&g_failed_floats, 0);
    if (n == 0) return 0;
    return ck_fail(err, "out of memory: a matrix product needed a buffer of %zu floats (%.1f MB)",
                   n, n * 4.0 / 1e6);
}

/* --- one product, dispatched ---------------------------------------------------------------- */

size_t mm_extent_a(const MmGemm *g) {
    return g->ta ? (size_t)(g->k - 1) * g->lda + g->m : (size_t)(g->m - 1) * g->lda + g->k;
}

size_t mm_extent_b(const MmGemm *g) {
    return g->tb ? (size_t)(g->n - 1) * g->ldb + g->k : (size_t)(g->k - 1) * g->ldb + g->n;
}

static void gemm_openblas(const MmGemm *g) {
    cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
                g->m, g->n, g->k, 1.0f, g->a, g->lda, g->b, g->ldb, g->beta, g->c, g->ldc);
}

/* bf16 without oneDNN: the operands rounded to bf16 (held as fp32), then sgemm. The products
 * of two bf16 values are exact in fp32, so this computes what a bf16 product computes. */
static void gemm_bf16_rounded(const MmGemm *g) {
    MmGemm r = *g;
    size_t na = mm_extent_a(g), nb = mm_extent_b(g);
    float *a = buffer_alloc(na), *b = a ? buffer_alloc(nb) : NULL;
    if (!b) {
        free(a);
        output_unwritten(g->c, g->m, g->n, (size_t)g->ldc, g->beta);
        return;
    }
    if (g->a_bf16) {
        weight_bf16_to_f32_n(a, g->a, na);
    } else {
        memcpy(a, g->a, na * sizeof(float));
        weight_round_bf16_n(a, na);
    }
    if (g->b_bf16) {
        weight_bf16_to_f32_n(b, g->b, nb);
    } else {
        memcpy(b, g->b, nb * sizeof(float));
        weight_round_bf16_n(b, nb);
    }
    r.a = a;
    r.b = b;
    gemm_openblas(&r);
    free(a);
    free(b);
}

static void gemm_run(const MmGemm *g) {
    if (g->m == 0 || g->n == 0) return;
    if (g->k == 0) { /* BLAS semantics: C = beta C */
        for (int i = 0; i < g->m; i++)
            for (int j = 0; j < g->n; j++)
                g->c[(size_t)i * g->ldc + j] =
                    g->beta == 0.0f ? 0.0f : g->c[(size_t)i * g->ldc + j];
        return;
    }
    if (g_compute == MATMUL_BF16) {
        if (use_dnnl() && mm_dnnl_run(g, 1) == 0) return;
        gemm_bf16_rounded(g);
        return;
    }
    /* fp32: operands are fp32 here (typed weights were widened by the caller) */
    int small = g->m <= DNNL_F32_MAX_M;
    int large = 2.0 * g->m * g->n * g->k >= DNNL_F32_ALL_MIN_FLOPS && dnnl_f32_everywhere();
    if (use_dnnl() && (small || large || g_backend == MATMUL_BACKEND_DNNL) &&
        mm_dnnl_run(g, 0) == 0)
        return;
    gemm_openblas(g);
}

/* y = x W^T (+ y) for one row: our gemv, or oneDNN when the backend is forced to it. */
static void forward_row(float *y, const float *x, const WeightRef *w, int in, int out, float beta) {
    int bf16 = g_compute == MATMUL_BF16;
    if (g_backend == MATMUL_BACKEND_DNNL &&
        (w->dtype == WEIGHT_F32 || (bf16 && w->dtype == WEIGHT_BF16))) {
        MmGemm g = {1, out, in, x, w->data, 0, 1, in, in, 0, w->dtype == WEIGHT_BF16, y, out, beta};
        if (mm_dnnl_run(&g, bf16) == 0) return;
    }
    if (!bf16) {
        mm_gemv(y, x, w, in, out, beta, 0);
        return;
    }
    float *xr = buffer_alloc((size_t)in); /* bf16 inputs: x rounded, fp32 W rounded as read */
    if (!xr) {
        output_unwritten(y, 1, out, (size_t)out, beta);
        return;
    }
    memcpy(xr, x, (size_t)in * sizeof(float));
    weight_round_bf16_n(xr, (size_t)in);
    mm_gemv(y, xr, w, in, out, beta, 1);
    free(xr);
}

/* bf16 weights go to oneDNN's bf16 product as stored (no widening) when compute is bf16. */
static int bf16_weights_direct(const WeightRef *w) {
    return w->dtype == WEIGHT_BF16 && g_compute == MATMUL_BF16 && use_dnnl();
}

/* Rows of a typed W widened at a time: about WEIGHT_BLOCK_ELEMS elements, at least 64 rows,
 * at most all of them. */
static int widened_rows(int in, int out) {
    int rows = WEIGHT_BLOCK_ELEMS / (in > 0 ? in : 1);
    if (rows < 64) rows = 64;
    return rows < out ? rows : (out > 0 ? out : 1);
}

/* wb (R, in) = rows [r0, r0 + R) of W as fp32. */
static void widen_rows(float *wb, const WeightRef *w, int in, int r0, int R) {
#pragma omp parallel for if ((size_t)R * in >= (1 << 16))
    for (int i = 0; i < R; i++) weight_rows_to_f32(wb + (size_t)i * in, w, in, r0 + i, 1);
}

/* Y (n, out) = X W^T + beta Y through a stored weight. */
static void forward_any(float *y, const float *x, const WeightRef *w, int n, int in, int out,
                        float beta) {
    if (n == 1) {
        forward_row(y, x, w, in, out, beta);
        return;
    }
    if (n <= GEMV_MAX_ROWS && g_compute == MATMUL_FP32 && g_backend == MATMUL_BACKEND_AUTO) {
        mm_gemv_rows(y, x, n, w, in, out, beta, 0);
        return;
    }
    MmGemm g = {n, out, in, x, w->data, 0, 1, in, in, 0, w->dtype == WEIGHT_BF16, y, out, beta};
    if (w->dtype == WEIGHT_F32) {
        gemm_run(&g);
        return;
    }
    if (bf16_weights_direct(w) && mm_dnnl_run(&g, 1) == 0) return;
    /* widen rows [r0, r0 + R) of W, then Y[:, r0 : r0 + R] = X Wb^T */
    const int rows = widened_rows(in, out);
    float *wb = buffer_alloc((size_t)rows * in);
    if (!wb) {
        output_unwritten(y, n, out, (size_t)out, beta);
        return;
    }
    for (int r0 = 0; r0 < out; r0 += rows) {
        int R = out - r0 < rows ? out - r0 : rows;
        widen_rows(wb, w, in, r0, R);
        MmGemm g = {n, R, in, x, wb, 0, 1, in, in, 0, 0, y + r0, out, beta};
        gemm_run(&g);
    }
    free(wb);
}

/* dX (n, in) = dY W + beta dX through a stored weight. */
static void backward_input_any(float *dx, const float *dy, const WeightRef *w, int n, int in,
                               int out, float beta) {
    MmGemm g = {n, in, out, dy, w->data, 0, 0, out, in, 0, w->dtype == WEIGHT_BF16, dx, in, beta};
    if (w->dtype == WEIGHT_F32) {
        gemm_run(&g);
        return;
    }
    if (bf16_weights_direct(w) && mm_dnnl_run(&g, 1) == 0) return;
    /* dX = sum over row blocks of dY[:, r0 : r0 + R] Wb (the first block applies beta) */
    const int rows = widened_rows(in, out);
    float *wb = buffer_alloc((size_t)rows * in);
    if (!wb) {
        output_unwritten(dx, n, in, (size_t)in, beta);
        return;
    }
    for (int r0 = 0; r0 < out; r0 += rows) {
        int R = out - r0 < rows ? out - r0 : rows;
        widen_rows(wb, w, in, r0, R);
        MmGemm g = {n, in, R, dy + r0, wb, 0, 0, out, in, 0, 0, dx, in, r0 == 0 ? beta : 1.0f};
        gemm_run(&g);
    }
    free(wb);
}

/* --- the public products -------------------------------------------------------------------- */

void matmul_forward(float *y, const float *x, const float *w, int n, int in, int out) {
    WeightRef wr = weight_f32(w);
    forward_any(y, x, &wr, n, in, out, 0.0f);
}

void matmul_forward_accumulate(float *y, const float *x, const float *w, int n, int in, int out) {
    WeightRef wr = weight_f32(w);
    forward_any(y, x, &wr, n, in, out, 1.0f);
}

void matmul_forward_w(float *y, const float *x, const WeightRef *w, int n, int in, int out) {
    forward_any(y, x, w, n, in, out, 0.0f);
}

void matmul_backward_input(float *dx, const float *dy, const float *w, int n, int in, int out) {
    WeightRef wr = weight_f32(w);
    backward_input_any(dx, dy, &wr, n, in, out, 1.0f);
}

void matmul_backward_input_overwrite(float *dx, const float *dy, const float *w, int n, int in,
                                     int out) {
    WeightRef wr = weight_f32(w);
    backward_input_any(dx, dy, &wr, n, in, out, 0.0f);
}

void matmul_backward_input_w(float *dx, const float *dy, const WeightRef *w, int n, int in,
                             int out) {
    backward_input_any(dx, dy, w, n, in, out, 1.0f);
}

void matmul_backward_weight(float *dw, const float *dy, const float *x, int n, int in, int out) {
    /* dW (out, in) += dY^T (out, n) · X (n, in) */
    MmGemm g = {out, in, n, dy, x, 1, 0, out, in, 0, 0, dw, in, 1.0f};
    gemm_run(&g);
}

void matmul_strided(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                    int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void matmul_strided_naive(int trans_a, int trans_b, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c,
                          int ldc) {
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double acc = 0.0;
            for (int p = 0; p < k; p++) {
                float av = trans_a ? a[(long)p * lda + i] : a[(long)i * lda + p];
                float bv = trans_b ? b[(long)j * ldb + p] : b[(long)p * ldb + j];
                acc += (double)av * bv;
            }
            /* beta == 0 overwrites, so uninitialised C (even NaN) is allowed, as in BLAS. */
            float prev = beta == 0.0f ? 0.0f : beta * c[(long)i * ldc + j];
            c[(long)i * ldc + j] = (float)(alpha * acc) + prev;
        }
    }
}
