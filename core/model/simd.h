/* simd.h — one register of floats, as wide as -march allows (GCC's vector extension), and the
 * lane sums of 16 such registers at once, for the loops that vectorise by hand: the decoding
 * products (matmul_gemv.c) and decoding's attention (model.c). */
#ifndef CK_SIMD_H
#define CK_SIMD_H

#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define SIMD_LANES 16
#elif defined(__AVX2__)
#define SIMD_LANES 8
#else
#define SIMD_LANES 4
#endif

typedef float simd_f32 __attribute__((vector_size(SIMD_LANES * 4)));

/* Keeps v in a vector register from here on: an empty asm that claims to change it, so that
 * GCC does not fold its load into every FMA that uses it (one load per use instead of one).
 * The constraint names the SIMD registers of x86 ("v") and AArch64 ("w"); elsewhere it does
 * nothing. */
#if defined(__x86_64__) || defined(__i386__)
#define SIMD_KEEP_IN_REGISTER(v) __asm__("" : "+v"(v))
#elif defined(__aarch64__)
#define SIMD_KEEP_IN_REGISTER(v) __asm__("" : "+w"(v))
#else
#define SIMD_KEEP_IN_REGISTER(v) ((void)0)
#endif

/* SIMD_LANES floats from p (any alignment). */
static inline __attribute__((always_inline)) simd_f32 simd_load_f32(const float *p) {
    simd_f32 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The sum of the lanes of each of 16 vectors: lane i of the result holds v[i]'s sum when a
 * register has 16 lanes (AVX-512), else out[i] does (simd_hsum16 below), by one tree whatever
 * the other vectors hold: lanes l and l + 8, then l and l + 4, l and l + 2, l and l + 1. The
 * shuffles between the levels only move partial sums, so a row gets the same bits in a tile of
 * 16 as alone (with zero vectors beside it), and 16 rows cost 15 vector adds, not 16
 * reductions. */
#if defined(__AVX512F__)
static inline __attribute__((always_inline)) __m512 simd_hsum16_lanes(const simd_f32 v[16]) {
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
    /* lane 4g + h of z holds v[4h + g]: lane i takes lane 4 (i % 4) + i / 4 */
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(order, z);
}
#endif

static inline __attribute__((always_inline)) void simd_hsum16(const simd_f32 v[16], float out[16]) {
#if defined(__AVX512F__)
    _mm512_storeu_ps(out, simd_hsum16_lanes(v));
#else
    for (int i = 0; i < 16; i++) { /* lanes in order */
        float s = 0.0f;
        for (int l = 0; l < SIMD_LANES; l++) s += v[i][l];
        out[i] = s;
    }
#endif
}

#endif
