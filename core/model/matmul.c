/* matmul.c — the BLAS calls (OpenBLAS, OpenMP build) and their naive oracle. */
#include "model/matmul.h"

#include <cblas.h>

void matmul_forward(float *y, const float *x, const float *w, int n, int in, int out) {
    if (n == 1) {
        /* One row (generation): a matrix-vector product streams W once. */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, x, 1, 0.0f, y, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in, 0.0f, y,
                out);
}

void matmul_forward_accumulate(float *y, const float *x, const float *w, int n, int in, int out) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in, 1.0f, y,
                out);
}

void matmul_backward_input(float *dx, const float *dy, const float *w, int n, int in, int out) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out, w, in, 1.0f,
                dx, in);
}

void matmul_backward_input_overwrite(float *dx, const float *dy, const float *w, int n, int in,
                                     int out) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out, w, in, 0.0f,
                dx, in);
}

void matmul_backward_weight(float *dw, const float *dy, const float *x, int n, int in, int out) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw,
                in);
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
