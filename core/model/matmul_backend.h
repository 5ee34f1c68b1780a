/* matmul_backend.h — internal to matmul*.c: one product described once, and the kernels
 * (oneDNN, our own gemv) that matmul.c dispatches it to. Nothing outside core/model/matmul*.c
 * includes this header. */
#ifndef CK_MATMUL_BACKEND_H
#define CK_MATMUL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "model/weight.h"

/* C (m, n) = op(A) (m, k) · op(B) (k, n) + beta · C, row-major BLAS conventions: ta / tb
 * select A^T / B^T, lda / ldb / ldc are row pitches. A bf16 operand holds bf16 bits. */
typedef struct {
    int m, n, k;
    const void *a, *b;
    int ta, tb, lda, ldb;
    int a_bf16, b_bf16;
    float *c;
    int ldc;
    float beta; /* 0 or 1 */
} MmGemm;

/* Elements from A's (or B's) pointer to one past its last element: the block a conversion of
 * the operand covers (rows between are converted too, harmlessly). */
size_t mm_extent_a(const MmGemm *g);
size_t mm_extent_b(const MmGemm *g);

/* oneDNN is compiled in and its CPU engine could be created. */
int mm_dnnl_present(void);

/* oneDNN's version as "major.minor.patch", or NULL when absent. */
const char *mm_dnnl_version(void);

/* Runs g through a cached oneDNN matmul primitive: in fp32 (both operands fp32, bf16 == 0) or
 * in bf16 with fp32 accumulation and output (bf16 == 1: fp32 operands are rounded to bf16
 * first, to nearest even). Returns -1 (C untouched) when oneDNN is absent or refuses the shape. */
int mm_dnnl_run(const MmGemm *g, int bf16);

/* Number of oneDNN primitives created so far (the cache's misses): tests check reuse. */
long mm_dnnl_primitives_created(void);

/* y (out) = W (out, in) · x (in) + beta · y, rows split over the threads, each row summed by
 * one thread in a fixed order (so y does not depend on the thread count). With round_bf16 the
 * fp32 elements of W are rounded to bf16 as they are read (x must already be rounded). */
void mm_gemv(float *y, const float *x, const WeightRef *w, int in, int out, float beta,
             int round_bf16);

/* Y (n, out) = x (n, in) · W^T + beta · Y for a few rows of x (decoding a batch): mm_gemv's
 * product, W streamed once for all n rows, each element summed exactly as mm_gemv sums it. */
void mm_gemv_rows(float *y, const float *x, int n, const WeightRef *w, int in, int out, float beta,
                  int round_bf16);

/* Rounds n fp32 values to bf16 into dst (bf16 bits), in parallel for large n. */
void mm_to_bf16(uint16_t *dst, const float *src, size_t n);

#endif
