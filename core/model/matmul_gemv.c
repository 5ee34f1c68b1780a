/* matmul_gemv.c — the products of decoding (one token, or a batch of up to 16) at memory
 * speed.
 *
 * Decoding reads every weight once per token and does two flops per weight, so its speed is
 * the speed at which W streams from memory. Each thread takes a contiguous run of rows; a tile
 * of four W rows and up to four x rows keeps sixteen independent accumulators in registers;
 * the other x rows of a batch reuse the four W rows from cache, so W streams once per step
 * whatever the batch. The weights are widened from their stored format (bf16, f16, int8
 * groups) in registers, so 16- and 8-bit weights stream 2x and 4x fewer bytes. Each (x row,
 * W row) pair is summed by one thread in one fixed order, so y depends neither on the thread
 * count nor on the batch a row decodes in. */
#include "model/matmul_backend.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "model/simd.h"

#define VL SIMD_LANES
typedef simd_f32 vf;
typedef uint32_t vu __attribute__((vector_size(VL * 4)));
typedef int32_t vi __attribute__((vector_size(VL * 4)));
typedef uint16_t vh __attribute__((vector_size(VL * 2)));
typedef int8_t vb __attribute__((vector_size(VL)));

/* Below this many weights one thread streams W faster than a parallel region starts. */
#define GEMV_PARALLEL_MIN 32768

/* While a block of rows is summed, the same columns of the rows this far below are requested
 * from memory: four interleaved row streams are more than the hardware prefetcher follows on
 * its own (about 1.1-1.3x on the 15M model's decoding, AMD EPYC; bench/README.md). */
#define GEMV_PREFETCH_ROWS 4

static inline __attribute__((always_inline)) size_t elem_bytes(WeightDtype dt) {
    return dt == WEIGHT_F32 ? 4 : dt == WEIGHT_Q8 ? 1 : 2;
}

/* Nearest-even bf16 of each lane, as weight_f32_to_bf16 (finite values). */
static inline __attribute__((always_inline)) vf bf16_lanes(vf v) {
    vu u;
    memcpy(&u, &v, sizeof u);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&v, &u, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) vf load_bf16(const uint16_t *p) {
    vh h;
    memcpy(&h, p, sizeof h);
    vu u = __builtin_convertvector(h, vu) << 16;
    vf v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) vf load_f16(const uint16_t *p) {
#if defined(__AVX512F__)
    return (vf)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
#else
    vf v;
    for (int i = 0; i < VL; i++) v[i] = weight_f16_to_f32(p[i]);
    return v;
#endif
}

static inline __attribute__((always_inline)) vf load_q8(const int8_t *p) {
    vb b;
    memcpy(&b, p, sizeof b);
    return __builtin_convertvector(__builtin_convertvector(b, vi), vf);
}

/* VL stored elements from index j, widened (Q8: the int8 values, unscaled). */
static inline __attribute__((always_inline)) vf load_w(WeightDtype dt, const void *w, size_t j) {
    switch (dt) {
    case WEIGHT_BF16:
        return load_bf16((const uint16_t *)w + j);
    case WEIGHT_F16:
        return load_f16((const uint16_t *)w + j);
    case WEIGHT_Q8:
        return load_q8((const int8_t *)w + j);
    default:
        return simd_load_f32((const float *)w + j);
    }
}

static float scalar_w(const WeightRef *w, size_t j, int round_bf16) {
    float f;
    switch (w->dtype) {
    case WEIGHT_BF16:
        return weight_bf16_to_f32(((const uint16_t *)w->data)[j]);
    case WEIGHT_F16:
        f = weight_f16_to_f32(((const uint16_t *)w->data)[j]);
        break;
    case WEIGHT_Q8:
        f = ((const int8_t *)w->data)[j] * w->scales[j / w->group];
        break;
    default:
        f = ((const float *)w->data)[j];
    }
    return round_bf16 ? weight_bf16_to_f32(weight_f32_to_bf16(f)) : f;
}

/* Dot products of R consecutive rows of W from r0 with X consecutive rows of x (pitch in),
 * into y[xi * ldy + r] (plus beta times what it held). Rows are cut into segments (Q8: one group,
 * scaled at its end; otherwise the whole vector part); the tail past the last multiple of VL is
 * summed in scalar. With rnd (bf16 compute) every widened weight (Q8: q times its scale) is rounded
 * to bf16 before it multiplies. Each (x row, W row) pair is summed in the same order whatever X is,
 * so a row of a batch gets the bits it gets alone. With prefetch, the rows GEMV_PREFETCH_ROWS
 * below are requested (the first tile over a block of W: the others find it in cache). */
static inline __attribute__((always_inline)) void
dot_tile(const int R, const int X, WeightDtype dt, const WeightRef *w, const float *x, int in,
         int r0, int round_bf16, int prefetch, float *y, size_t ldy, float beta) {
    const int seg = dt == WEIGHT_Q8 ? w->group : in - in % VL;
    const int vec_end = dt == WEIGHT_Q8 ? in : seg;
    vf acc[16] = {{0}}; /* pair (xi, r) at xi * 4 + r */
    for (int s0 = 0; s0 < vec_end; s0 += seg) {
        vf part[4][4] = {{{0}}};
        for (int j = s0; j < s0 + seg; j += VL) {
            if (prefetch && (size_t)j * elem_bytes(dt) % 64 == 0) /* once per cache line */
                for (int r = 0; r < R; r++)
                    /* an address, not an object: a prefetch past W's end is harmless */
                    __builtin_prefetch(
                        (const void *)((uintptr_t)w->data +
                                       ((size_t)(r0 + r + GEMV_PREFETCH_ROWS) * in + j) *
                                           elem_bytes(dt)),
                        0, 0);
            vf wv[4];
            for (int r = 0; r < R; r++) {
                wv[r] = load_w(dt, w->data, (size_t)(r0 + r) * in + j);
                if (round_bf16 && dt == WEIGHT_Q8)
                    wv[r] = bf16_lanes(wv[r] * w->scales[((size_t)(r0 + r) * in + s0) / w->group]);
                else if (round_bf16 && dt != WEIGHT_BF16)
                    wv[r] = bf16_lanes(wv[r]);
                SIMD_KEEP_IN_REGISTER(wv[r]); /* else GCC loads it again for every FMA */
            }
            for (int xi = 0; xi < X; xi++) {
                vf xv;
                memcpy(&xv, x + (size_t)xi * in + j, sizeof xv);
                SIMD_KEEP_IN_REGISTER(xv);
                for (int r = 0; r < R; r++) part[xi][r] += wv[r] * xv;
            }
        }
        for (int xi = 0; xi < X; xi++)
            for (int r = 0; r < R; r++) {
                if (dt != WEIGHT_Q8) /* one segment: no second set of live registers */
                    acc[xi * 4 + r] = part[xi][r];
                else if (!round_bf16)
                    acc[xi * 4 + r] +=
                        part[xi][r] * w->scales[((size_t)(r0 + r) * in + s0) / w->group];
                else
                    acc[xi * 4 + r] += part[xi][r];
            }
    }
#if defined(__AVX512F__)
    if (R == 4 && X == 4 && vec_end == in) { /* the common tile: four rows of y, 4 lanes each */
        const __m512 s = simd_hsum16_lanes(acc);
        const __m128 q[4] = {_mm512_extractf32x4_ps(s, 0), _mm512_extractf32x4_ps(s, 1),
                             _mm512_extractf32x4_ps(s, 2), _mm512_extractf32x4_ps(s, 3)};
        for (int xi = 0; xi < 4; xi++) {
            float *yo = y + (size_t)xi * ldy;
            _mm_storeu_ps(yo, beta != 0.0f
                                  ? _mm_fmadd_ps(_mm_set1_ps(beta), _mm_loadu_ps(yo), q[xi])
                                  : q[xi]);
        }
        return;
    }
#endif
    float sums[16];
    simd_hsum16(acc, sums); /* the pairs outside X x R are zero vectors */
    for (int xi = 0; xi < X; xi++)
        for (int r = 0; r < R; r++) {
            float s = sums[xi * 4 + r];
            for (int j = vec_end; j < in; j++)
                s += scalar_w(w, (size_t)(r0 + r) * in + j, round_bf16) * x[(size_t)xi * in + j];
            float *yo = y + (size_t)xi * ldy + r;
            *yo = beta != 0.0f ? fmaf(beta, *yo, s) : s;
        }
}

/* Y[:, r0:r1) for the n rows of x: W rows four at a time, x rows X_TILE at a time below them
 * (a block of W is read from memory once and from cache for the other rows of x). */
static inline __attribute__((always_inline)) void rows_dt(WeightDtype dt, float *y, const float *x,
                                                          int n, const WeightRef *w, int in,
                                                          int out, int r0, int r1, float beta,
                                                          int round_bf16) {
    /* Q8 keeps a second set of accumulators per pair (group sums): two x rows fit registers */
    const int X_TILE = dt == WEIGHT_Q8 ? 2 : 4;
    for (int r = r0; r < r1;) {
        const int R = r1 - r >= 4 ? 4 : 1; /* the tail of a block goes one W row at a time */
        for (int x0 = 0; x0 < n;) {
            const int left = n - x0, X = left >= 4 && X_TILE == 4 ? 4 : left >= 2 ? 2 : 1;
            const float *xs = x + (size_t)x0 * in;
            const int pf = x0 == 0;
            float *ys = y + (size_t)x0 * out + r;
#define TILE(RR, XX) dot_tile(RR, XX, dt, w, xs, in, r, round_bf16, pf, ys, (size_t)out, beta)
            if (R == 4 && X == 4)
                TILE(4, 4);
            else if (R == 4 && X == 2)
                TILE(4, 2);
            else if (R == 4)
                TILE(4, 1);
            else if (X == 4)
                TILE(1, 4);
            else if (X == 2)
                TILE(1, 2);
            else
                TILE(1, 1);
#undef TILE
            x0 += X;
        }
        r += R;
    }
}

/* One instance per stored format and rounding, so that each inner loop is specialised. */
static void rows_any(float *y, const float *x, int n, const WeightRef *w, int in, int out, int r0,
                     int r1, float beta, int rnd) {
#define ROWS(fn, dt)                                                                               \
    (rnd ? fn(dt, y, x, n, w, in, out, r0, r1, beta, 1)                                            \
         : fn(dt, y, x, n, w, in, out, r0, r1, beta, 0))
    switch (w->dtype) {
    case WEIGHT_BF16:
        rows_dt(WEIGHT_BF16, y, x, n, w, in, out, r0, r1, beta, 0);
        return;
    case WEIGHT_F16:
        ROWS(rows_dt, WEIGHT_F16);
        return;
    case WEIGHT_Q8:
        ROWS(rows_dt, WEIGHT_Q8);
        return;
    default:
        ROWS(rows_dt, WEIGHT_F32);
        return;
    }
#undef ROWS
}

void mm_gemv_rows(float *y, const float *x, int n, const WeightRef *w, int in, int out, float beta,
                  int round_bf16) {
    /* blocks of 16 rows of W (cache lines of y shared by no two threads), split evenly */
    const int block = 16, n_blocks = (out + block - 1) / block;
#pragma omp parallel for schedule(static) if ((size_t)out * in >= GEMV_PARALLEL_MIN)
    for (int b = 0; b < n_blocks; b++) {
        int r0 = b * block, r1 = r0 + block < out ? r0 + block : out;
        rows_any(y, x, n, w, in, out, r0, r1, beta, round_bf16);
    }
}

void mm_gemv(float *y, const float *x, const WeightRef *w, int in, int out, float beta,
             int round_bf16) {
    mm_gemv_rows(y, x, 1, w, in, out, beta, round_bf16);
}

void mm_to_bf16(uint16_t *dst, const float *src, size_t n) {
    const size_t chunk = 1 << 16;
    const long n_chunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (n_chunks > 1)
    for (long c = 0; c < n_chunks; c++) {
        size_t i0 = (size_t)c * chunk, i1 = i0 + chunk < n ? i0 + chunk : n;
        weight_f32_to_bf16_n(dst + i0, src + i0, i1 - i0);
    }
}
