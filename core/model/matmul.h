/* matmul.h — every matrix product of cutkit, in one place.
 *
 * All BLAS calls live in matmul.c, beside a naive reference that the tests use as an oracle.
 * Matrices are row-major. Weights are stored [out][in] (y = W x), as in llama2.c and
 * Hugging Face, so a batch of rows X (N, in) maps to Y = X W^T (N, out). */
#ifndef CK_MATMUL_H
#define CK_MATMUL_H

/* Y (N, out) = X (N, in) · W (out, in)^T, overwriting Y; uses gemv when N == 1. */
void matmul_forward(float *y, const float *x, const float *w, int n, int in, int out);

/* Y (N, out) += X (N, in) · W (out, in)^T; accumulating form of matmul_forward. */
void matmul_forward_accumulate(float *y, const float *x, const float *w, int n, int in, int out);

/* dX (N, in) += dY (N, out) · W (out, in): the input gradient of matmul_forward. */
void matmul_backward_input(float *dx, const float *dy, const float *w, int n, int in, int out);

/* dX (N, in) = dY (N, out) · W (out, in): overwriting form of matmul_backward_input. */
void matmul_backward_input_overwrite(float *dx, const float *dy, const float *w, int n, int in,
                                     int out);

/* dW (out, in) += dY (N, out)^T · X (N, in): the weight gradient of matmul_forward. */
void matmul_backward_weight(float *dw, const float *dy, const float *x, int n, int in, int out);

/* General strided product C (m, n) = alpha · op(A) · op(B) + beta · C with leading dimensions,
 * for the per-head attention products (row-major; trans_a/trans_b select A^T/B^T). */
void matmul_strided(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                    int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* The naive triple loop of matmul_strided (double accumulators): the tests' oracle. */
void matmul_strided_naive(int trans_a, int trans_b, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c,
                          int ldc);

#endif
