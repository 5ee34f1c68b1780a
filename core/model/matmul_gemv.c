/* matmul_gemv.c — the single-row product (decoding one token) at memory speed.
 *
 * Decoding reads every weight once per token and does two flops per weight, so its speed is
 * the speed at which W streams from memory. Each thread takes a contiguous run of rows; four
 * rows share each load of x and keep four independent accumulator chains; the weights are
 * widened from their stored format (bf16, f16, int8 groups) in registers, so 16- and 8-bit
 * weights stream 2x and 4x fewer bytes. Each row is summed by one thread in a fixed order, so
 * y does not depend on the thread count. */
#include "model/matmul_backend.h"

#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#define VL 16
#elif defined(__AVX2__)
#define VL 8
#else
#define VL 4
#endif

typedef float vf __attribute__((vector_size(VL * 4)));
typedef uint32_t vu __attribute__((vector_size(VL * 4)));
typedef int32_t vi __attribute__((vector_size(VL * 4)));
typedef uint16_t vh __attribute__((vector_size(VL * 2)));
typedef int8_t vb __attribute__((vector_size(VL)));

/* Below this many weights one thread streams W faster than a parallel region starts. */
#define GEMV_PARALLEL_MIN 32768

/* While a block of rows is summed, the same columns of the rows this far below are requested
 * from memory: four interleaved row streams are more than the hardware prefetcher follows on
 * its own (bench/README.md, "Decoding at memory speed"). */
#define GEMV_PREFETCH_ROWS 4

static inline __attribute__((always_inline)) size_t elem_bytes(WeightDtype dt) {
    return dt == WEIGHT_F32 ? 4 : dt == WEIGHT_Q8 ? 1 : 2;
}

static inline __attribute__((always_inline)) vf load_f32(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
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
        return load_f32((const float *)w + j);
    }
}

/* The sum of the lanes, in a fixed order (a tree on AVX-512: four shuffle-adds, not 15
 * dependent scalar adds per row). */
static inline float hsum(vf v) {
#if defined(__AVX512F__)
    return _mm512_reduce_add_ps((__m512)v);
#else
    float s = 0.0f;
    for (int i = 0; i < VL; i++) s += v[i];
    return s;
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

/* Dot products of R consecutive rows from r0 with x, into out[0..R). Rows are cut into
 * segments (Q8: one group, scaled at its end; otherwise the whole vector part); the tail past
 * the last multiple of VL is summed in scalar. With rnd (bf16 compute) every widened weight
 * (Q8: q times its scale) is rounded to bf16 before it multiplies. */
static inline __attribute__((always_inline)) void dot_rows(const int R, WeightDtype dt,
                                                           const WeightRef *w, const float *x,
                                                           int in, int r0, int round_bf16,
                                                           float *out) {
    const int seg = dt == WEIGHT_Q8 ? w->group : in - in % VL;
    const int vec_end = dt == WEIGHT_Q8 ? in : seg;
    vf acc[4] = {{0}};
    for (int s0 = 0; s0 < vec_end; s0 += seg) {
        vf part[4] = {{0}};
        for (int j = s0; j < s0 + seg; j += VL) {
            vf xv;
            memcpy(&xv, x + j, sizeof xv);
            if ((size_t)j * elem_bytes(dt) % 64 == 0) /* once per cache line of each row */
                for (int r = 0; r < R; r++)
                    /* an address, not an object: a prefetch past W's end is harmless */
                    __builtin_prefetch(
                        (const void *)((uintptr_t)w->data +
                                       ((size_t)(r0 + r + GEMV_PREFETCH_ROWS) * in + j) *
                                           elem_bytes(dt)),
                        0, 0);
            for (int r = 0; r < R; r++) {
                vf wv = load_w(dt, w->data, (size_t)(r0 + r) * in + j);
                if (round_bf16 && dt == WEIGHT_Q8)
                    wv = bf16_lanes(wv * w->scales[((size_t)(r0 + r) * in + s0) / w->group]);
                else if (round_bf16 && dt != WEIGHT_BF16)
                    wv = bf16_lanes(wv);
                part[r] += wv * xv;
            }
        }
        for (int r = 0; r < R; r++) {
            if (dt == WEIGHT_Q8 && !round_bf16)
                acc[r] += part[r] * w->scales[((size_t)(r0 + r) * in + s0) / w->group];
            else
                acc[r] += part[r];
        }
    }
    for (int r = 0; r < R; r++) {
        float s = hsum(acc[r]);
        for (int j = vec_end; j < in; j++)
            s += scalar_w(w, (size_t)(r0 + r) * in + j, round_bf16) * x[j];
        out[r] = s;
    }
}

/* Rows [r0, r1) of y, four at a time. */
static inline __attribute__((always_inline)) void rows_dt(WeightDtype dt, float *y, const float *x,
                                                          const WeightRef *w, int in, int r0,
                                                          int r1, float beta, int round_bf16) {
    float d[4];
    int r = r0;
    for (; r + 4 <= r1; r += 4) {
        dot_rows(4, dt, w, x, in, r, round_bf16, d);
        for (int i = 0; i < 4; i++) y[r + i] = d[i] + (beta != 0.0f ? beta * y[r + i] : 0.0f);
    }
    for (; r < r1; r++) {
        dot_rows(1, dt, w, x, in, r, round_bf16, d);
        y[r] = d[0] + (beta != 0.0f ? beta * y[r] : 0.0f);
    }
}

/* One instance per stored format and rounding, so that each inner loop is specialised. */
static void rows_any(float *y, const float *x, const WeightRef *w, int in, int r0, int r1,
                     float beta, int rnd) {
#define ROWS(dt)                                                                                   \
    (rnd ? rows_dt(dt, y, x, w, in, r0, r1, beta, 1) : rows_dt(dt, y, x, w, in, r0, r1, beta, 0))
    switch (w->dtype) {
    case WEIGHT_BF16:
        rows_dt(WEIGHT_BF16, y, x, w, in, r0, r1, beta, 0);
        return;
    case WEIGHT_F16:
        ROWS(WEIGHT_F16);
        return;
    case WEIGHT_Q8:
        ROWS(WEIGHT_Q8);
        return;
    default:
        ROWS(WEIGHT_F32);
        return;
    }
#undef ROWS
}

void mm_gemv(float *y, const float *x, const WeightRef *w, int in, int out, float beta,
             int round_bf16) {
    /* blocks of 4 rows (16 for cache lines shared by no two threads), split evenly */
    const int block = 16, n_blocks = (out + block - 1) / block;
#pragma omp parallel for schedule(static) if ((size_t)out * in >= GEMV_PARALLEL_MIN)
    for (int b = 0; b < n_blocks; b++) {
        int r0 = b * block, r1 = r0 + block < out ? r0 + block : out;
        rows_any(y, x, w, in, r0, r1, beta, round_bf16);
    }
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
