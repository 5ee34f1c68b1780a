/* weight.c — conversions between fp32 and the stored weight formats (see weight.h). */
#include "model/weight.h"

#include <math.h>
#include <string.h>

WeightRef weight_f32(const float *w) {
    return (WeightRef){WEIGHT_F32, w, NULL, 0};
}

const char *weight_dtype_name(WeightDtype d) {
    switch (d) {
    case WEIGHT_F32:
        return "f32";
    case WEIGHT_BF16:
        return "bf16";
    case WEIGHT_F16:
        return "f16";
    case WEIGHT_Q8:
        return "q8";
    }
    return "?";
}

size_t weight_dtype_size(WeightDtype d) {
    return d == WEIGHT_F32 ? 4 : d == WEIGHT_Q8 ? 1 : 2;
}

int weight_check(const WeightRef *w, int in, int out, CkError *err) {
    if (!w || !w->data) return ck_fail(err, "weight (%d x %d): no data", out, in);
    if ((unsigned)w->dtype > WEIGHT_Q8)
        return ck_fail(err, "weight (%d x %d): unknown dtype %d", out, in, (int)w->dtype);
    if (w->dtype != WEIGHT_Q8) return 0;
    if (!w->scales) return ck_fail(err, "q8 weight (%d x %d): no scales", out, in);
    if ((w->group != 32 && w->group != 64) || in % w->group != 0)
        return ck_fail(err, "q8 weight (%d x %d): group %d, expected 32 or 64 dividing %d", out, in,
                       w->group, in);
    return 0;
}

uint16_t weight_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    /* round to nearest, ties to the even bf16: add 0x7fff plus the lowest kept bit */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float weight_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* GCC's _Float16 (x86-64, GCC 12+) converts with IEEE round-to-nearest-even, subnormals
 * and overflow included, in hardware (F16C / AVX-512 FP16) where the target has it. */
uint16_t weight_f32_to_f16(float f) {
    _Float16 h = (_Float16)f;
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}

float weight_f16_to_f32(uint16_t u) {
    _Float16 h;
    memcpy(&h, &u, 2);
    return (float)h;
}

void weight_f32_to_bf16_n(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = weight_f32_to_bf16(src[i]);
}

void weight_bf16_to_f32_n(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = weight_bf16_to_f32(src[i]);
}

void weight_f32_to_f16_n(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = weight_f32_to_f16(src[i]);
}

void weight_f16_to_f32_n(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = weight_f16_to_f32(src[i]);
}

void weight_round_bf16_n(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = weight_bf16_to_f32(weight_f32_to_bf16(x[i]));
}

int weight_quantize_q8(int8_t *q, float *scales, const float *w, int out, int in, int group,
                       CkError *err) {
    if ((group != 32 && group != 64) || in % group != 0)
        return ck_fail(err,
                       "q8 quantisation of a %d x %d weight: group %d, expected 32 or 64 "
                       "dividing %d",
                       out, in, group, in);
    size_t n_groups = (size_t)out * (in / group);
    for (size_t g = 0; g < n_groups; g++) {
        const float *v = w + g * group;
        float absmax = 0.0f;
        for (int i = 0; i < group; i++) absmax = fmaxf(absmax, fabsf(v[i]));
        float scale = absmax / 127.0f;
        float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
        scales[g] = scale;
        for (int i = 0; i < group; i++) {
            float r = roundf(v[i] * inv);
            q[g * group + i] = (int8_t)fmaxf(-127.0f, fminf(127.0f, r));
        }
    }
    return 0;
}

void weight_rows_to_f32(float *dst, const WeightRef *w, int in, int row0, int rows) {
    size_t off = (size_t)row0 * in, n = (size_t)rows * in;
    switch (w->dtype) {
    case WEIGHT_F32:
        memcpy(dst, (const float *)w->data + off, n * sizeof(float));
        return;
    case WEIGHT_BF16:
        weight_bf16_to_f32_n(dst, (const uint16_t *)w->data + off, n);
        return;
    case WEIGHT_F16:
        weight_f16_to_f32_n(dst, (const uint16_t *)w->data + off, n);
        return;
    case WEIGHT_Q8: {
        const int8_t *q = (const int8_t *)w->data + off;
        const float *s = w->scales + off / w->group;
        for (size_t i = 0; i < n; i++) dst[i] = (float)q[i] * s[i / w->group];
        return;
    }
    }
}
