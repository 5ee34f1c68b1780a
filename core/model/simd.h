/* simd.h — one register of floats, as wide as -march allows (GCC's vector extension), for
 * the loops that vectorise by hand: the decoding products (matmul_gemv.c) and decoding's
 * attention (model.c). */
#ifndef CK_SIMD_H
#define CK_SIMD_H

#include <string.h>

#if defined(__AVX512F__)
#define SIMD_LANES 16
#elif defined(__AVX2__)
#define SIMD_LANES 8
#else
#define SIMD_LANES 4
#endif

typedef float simd_f32 __attribute__((vector_size(SIMD_LANES * 4)));

/* SIMD_LANES floats from p (any alignment). */
static inline __attribute__((always_inline)) simd_f32 simd_load_f32(const float *p) {
    simd_f32 v;
    memcpy(&v, p, sizeof v);
    return v;
}

#endif
