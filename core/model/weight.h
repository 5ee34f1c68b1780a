/* weight.h — a frozen weight matrix held as stored: fp32, bf16, f16 or 8-bit groups.
 *
 * Matrices are [out][in] row-major as everywhere in matmul.h. Q8 is llama2.c's Q8_0 /
 * bitsandbytes-style absmax quantisation: each run of `group` consecutive values along `in`
 * is int8 q with scale s = absmax / 127 and value q * s. The products that read a WeightRef
 * are in matmul.h (matmul_forward_w, matmul_backward_input_w). */
#ifndef CK_WEIGHT_H
#define CK_WEIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "util/ck_error.h"

typedef enum { WEIGHT_F32, WEIGHT_BF16, WEIGHT_F16, WEIGHT_Q8 } WeightDtype;

typedef struct {
    WeightDtype dtype;
    const void *data;    /* float, uint16_t (bf16 / f16 bits) or int8_t, [out][in] */
    const float *scales; /* Q8 only: [out][in / group] */
    int group;           /* Q8 only: 32 or 64, and it divides in */
} WeightRef;

/* A WeightRef over fp32 data (the form every trainable weight has). */
WeightRef weight_f32(const float *w);

/* "f32", "bf16", "f16" or "q8". */
const char *weight_dtype_name(WeightDtype d);

/* Bytes one element occupies (Q8: 1, its scales not counted). */
size_t weight_dtype_size(WeightDtype d);

/* Checks that w can serve as an (out, in) matrix: data present, Q8 with scales and a group of
 * 32 or 64 dividing in. Returns -1 with err filled otherwise. */
int weight_check(const WeightRef *w, int in, int out, CkError *err);

/* fp32 -> bf16 bits, rounding to nearest even (NaN stays a quiet NaN). */
uint16_t weight_f32_to_bf16(float f);

/* bf16 bits -> fp32 (exact). */
float weight_bf16_to_f32(uint16_t h);

/* fp32 -> IEEE half bits, rounding to nearest even, with subnormals, overflow to inf. */
uint16_t weight_f32_to_f16(float f);

/* IEEE half bits -> fp32 (exact). */
float weight_f16_to_f32(uint16_t h);

/* Bulk forms of the four conversions above over n values. */
void weight_f32_to_bf16_n(uint16_t *dst, const float *src, size_t n);
void weight_bf16_to_f32_n(float *dst, const uint16_t *src, size_t n);
void weight_f32_to_f16_n(uint16_t *dst, const float *src, size_t n);
void weight_f16_to_f32_n(float *dst, const uint16_t *src, size_t n);

/* Rounds n fp32 values to the nearest bf16 in place (kept as fp32: what a bf16 product sees). */
void weight_round_bf16_n(float *x, size_t n);

/* Quantises w (out, in) into q (out, in) int8 and scales (out, in / group), per-group absmax:
 * scale = absmax / 127, q = round(w / scale) (an all-zero group has scale 0). group must be
 * 32 or 64 and divide in; returns -1 with err filled otherwise. */
int weight_quantize_q8(int8_t *q, float *scales, const float *w, int out, int in, int group,
                       CkError *err);

/* Writes rows [row0, row0 + rows) of w as fp32 into dst (rows, in): the block-by-block
 * conversion the products use. */
void weight_rows_to_f32(float *dst, const WeightRef *w, int in, int row0, int rows);

#endif
