/* matmul.h — every matrix product of cutkit, in one place.
 *
 * All BLAS and oneDNN calls live in matmul*.c, beside a naive reference that the tests use as
 * an oracle. Matrices are row-major. Weights are stored [out][in] (y = W x), as in llama2.c
 * and Hugging Face, so a batch of rows X (N, in) maps to Y = X W^T (N, out).
 *
 * Backends (see core/model/README.md): OpenBLAS sgemm is the default; single-row products
 * (decoding) use our own row-parallel gemv; with oneDNN built in, small-M fp32 products and
 * all bf16 products go through it. The compute type is process-wide, like the thread count:
 * MATMUL_BF16 is mixed precision, the inputs of every layer product (forward, input gradient,
 * weight gradient) rounded to bf16, accumulation and outputs fp32 (torch.autocast on CPU).
 * matmul_strided (attention's per-head products) always runs in fp32.
 *
 * A product returns nothing. One that cannot allocate its buffer (bf16 rounding, widening a
 * typed weight) writes zeros where it would overwrite, leaves an accumulation unchanged, and
 * records the failure; matmul_status reports it, and every pass that runs products (forward,
 * backward, scoring, generation) asks before it returns. */
#ifndef CK_MATMUL_H
#define CK_MATMUL_H

#include "model/weight.h"
#include "util/ck_error.h"

typedef enum { MATMUL_FP32 = 0, MATMUL_BF16 = 1 } MatmulCompute;

/* AUTO: each product where it is fastest; OPENBLAS: never oneDNN (gemv still serves one row);
 * DNNL: oneDNN for every layer product, one row included (benchmarks compare them). */
typedef enum { MATMUL_BACKEND_AUTO, MATMUL_BACKEND_OPENBLAS, MATMUL_BACKEND_DNNL } MatmulBackend;

/* Parses "fp32" or "bf16" (the --compute flag) into *out; -1 with err naming the value
 * otherwise. Availability is matmul_set_compute's to check. */
int compute_parse(const char *s, MatmulCompute *out, CkError *err);

/* Sets the compute type of every later layer product. bf16 needs oneDNN or a CPU with
 * avx512_bf16; without either returns -1 with err saying so, and the setting is unchanged. */
int matmul_set_compute(MatmulCompute c, CkError *err);

/* The compute type in effect. */
MatmulCompute matmul_get_compute(void);

/* "fp32" or "bf16": what results record. */
const char *matmul_compute_name(void);

/* 0 when bf16 compute can run here; -1 with err saying what is missing. */
int matmul_bf16_available(CkError *err);

/* Chooses the backend (AUTO is the default); -1 with err when DNNL is asked and absent. */
int matmul_set_backend(MatmulBackend b, CkError *err);

/* 1 when the backend can run in this build on this machine (OPENBLAS, AUTO: always). */
int matmul_backend_available(MatmulBackend b);

/* What the layer products run on now, e.g. "openblas+gemv", "openblas+gemv+onednn-f32
 * (M<=16)", "onednn-bf16 2.6.3" or "openblas-bf16-rounded" (bf16 without oneDNN). */
const char *matmul_backend_name(void);

/* Returns 0 when every product since the last call had the memory it needed; else -1 with err
 * giving the largest buffer that could not be allocated. Either way the record is cleared. */
int matmul_status(CkError *err);

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

/* Y (N, out) = X (N, in) · W^T for a weight held as stored (weight.h): fp32 weights as
 * matmul_forward; others widened block by block for the fp32 product, or (bf16 weights, bf16
 * compute, oneDNN) fed to the bf16 product as they are. One row uses the gemv on the stored
 * bytes. w must pass weight_check. */
void matmul_forward_w(float *y, const float *x, const WeightRef *w, int n, int in, int out);

/* dX (N, in) += dY (N, out) · W for a weight held as stored: the input gradient through a
 * frozen weight (LoRA training on a 16- or 8-bit base). */
void matmul_backward_input_w(float *dx, const float *dy, const WeightRef *w, int n, int in,
                             int out);

/* General strided product C (m, n) = alpha · op(A) · op(B) + beta · C with leading dimensions,
 * for the per-head attention products (row-major; trans_a/trans_b select A^T/B^T). */
void matmul_strided(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                    int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* The naive triple loop of matmul_strided (double accumulators): the tests' oracle. */
void matmul_strided_naive(int trans_a, int trans_b, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c,
                          int ldc);

#endif
