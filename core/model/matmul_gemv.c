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

#include <stdint.h>
#include <string.h>

#include "model/simd.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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

/* The sum of the lanes of each of 16 vectors into out[16], by one tree whatever the other
 * vectors hold: lanes l and l + 8, then l and l + 4, l and l + 2, l and l + 1. The shuffles
 * between the levels only move partial sums, so a row gets the same bits in a tile of 16 as
 * alone (with zero vectors beside it), and 16 rows cost 15 vector adds, not 16 reductions. */
static inline __attribute__((always_inline)) void hsum16(const vf v[16], float out[16]) {
#if defined(__AVX512F__)
    __m512 t[8], u[4], w[2];
    for (int i = 0; i < 8; i++) { /* [v2i lo + hi | v2i+1 lo + hi] */
        __m512 a = (__m512)v[2 * i], b = (__m512)v[2 * i + 1];
        t[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
    }
    for (int i = 0; i < 4; i++) /* 128-bit group g: v[4i + g], lanes l + (l + 4) */
        u[i] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    for (int i = 0; i < 2; i++) { /* group g: v[8i + g] twice, v[8i + 4 + g] twice */
        __m512d a = _mm512_castps_pd(u[2 * i]), b = _mm512_castps_pd(u[2 * i + 1]);
        w[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    __m512 z = _mm512_add_ps(_mm512_shuffle_ps(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_ps(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1)));
    float lanes[16];
    _mm512_storeu_ps(lanes, z);
    for (int g = 0; g < 4; g++) /* lane 4g + h holds v[4h + g] */
        for (int h = 0; h < 4; h++) out[4 * h + g] = lanes[4 * g + h];
#else
    for (int i = 0; i < 16; i++) { /* lanes in order */
        float s = 0.0f;
        for (int l = 0; l < VL; l++) s += v[i][l];
        out[i] = s;
    }
#endif
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
 * into out[xi * 4 + r]. Rows are cut into segments (Q8: one group, scaled at its end;
 * otherwise the whole vector part); the tail past the last multiple of VL is summed in scalar.
 * With rnd (bf16 compute) every widened weight (Q8: q times its scale) is rounded to bf16
 * before it multiplies. Each (x row, W row) pair is summed in the same order whatever X is,
 * so a row of a batch gets the bits it gets alone. With prefetch, the rows GEMV_PREFETCH_ROWS
 * below are requested (the first tile over a block of W: the others find it in cache). */
static inline __attribute__((always_inline)) void dot_tile(const int R, const int X, WeightDtype dt,
                                                           const WeightRef *w, const float *x,
                                                           int in, int r0, int round_bf16,
                                                           int prefetch, float *out) {
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
                __asm__("" : "+v"(wv[r])); /* in a register: GCC would load it again per FMA */
            }
            for (int xi = 0; xi < X; xi++) {
                vf xv;
                memcpy(&xv, x + (size_t)xi * in + j, sizeof xv);
                __asm__("" : "+v"(xv));
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
    float sums[16];
    hsum16(acc, sums); /* the pairs outside X x R are zero vectors */
    for (int xi = 0; xi < X; xi++)
        for (int r = 0; r < R; r++) {
            float s = sums[xi * 4 + r];
            for (int j = vec_end; j < in; j++)
                s += scalar_w(w, (size_t)(r0 + r) * in + j, round_bf16) * x[(size_t)xi * in + j];
            out[xi * 4 + r] = s;
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
    float d[16];
    for (int r = r0; r < r1;) {
        const int R = r1 - r >= 4 ? 4 : 1; /* the tail of a block goes one W row at a time */
        for (int x0 = 0; x0 < n;) {
            const int left = n - x0, X = left >= 4 && X_TILE == 4 ? 4 : left >= 2 ? 2 : 1;
            const float *xs = x + (size_t)x0 * in;
            const int pf = x0 == 0;
#define TILE(RR, XX) dot_tile(RR, XX, dt, w, xs, in, r, round_bf16, pf, d)
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
            for (int xi = 0; xi < X; xi++)
                for (int i = 0; i < R; i++) {
                    float *yo = y + (size_t)(x0 + xi) * out + r + i;
                    *yo = d[xi * 4 + i] + (beta != 0.0f ? beta * *yo : 0.0f);
                }
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
