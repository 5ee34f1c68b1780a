/* fastmath.h — the vectorisable exp, max and sum-of-exp kernels that every softmax and
 * log-softmax of cutkit shares (forward attention, scoring, the fused loss). Internal to
 * model/; static inline so that each loop is vectorised where it is used. */
#ifndef CK_FASTMATH_H
#define CK_FASTMATH_H

#include <math.h>
#include <stdint.h>

/* e^x for x <= 0 (from a softmax: logits minus their maximum) in a form the compiler
 * vectorises, unlike a call to expf: x = n ln2 + r with |r| <= ln2/2 (Cody-Waite split of
 * ln2), e^r by its degree-7 Taylor polynomial (truncation < 1e-8 on that interval, so float
 * rounding, ~1e-7, is the error), 2^n
 * put into the exponent bits. Below -87 the result is flushed to 0, as float e^x
 * underflows there. */
static inline float exp_nonpositive(float x) {
    /* written so that NaN also takes the clamp: (int32_t)NaN below would be undefined */
    const float clamped = x > -87.0f ? x : -87.0f;
    const float n = __builtin_rintf(clamped * 1.44269504088896341f);
    const float r = (clamped - n * 0.693359375f) + n * 2.12194440e-4f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union {
        int32_t i;
        float f;
    } two_n = {.i = ((int32_t)n + 127) << 23};
    return x > -87.0f ? p * two_n.f : (x == x ? 0.0f : x); /* a NaN stays NaN */
}

/* out[j] = e^(z[j] - shift) for j < n; returns their sum, accumulated in double over eight
 * interleaved lanes (a fixed order: the result does not depend on threads or alignment).
 * Two passes, each of which the compiler vectorises on its own. */
static inline double exp_and_sum(float *out, const float *z, int n, float shift) {
    for (int j = 0; j < n; j++) out[j] = exp_nonpositive(z[j] - shift);
    enum { LANES = 8 };
    double lane[LANES] = {0};
    int j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int k = 0; k < LANES; k++) lane[k] += out[j + k];
    double s = 0.0;
    for (; j < n; j++) s += out[j];
    for (int k = 0; k < LANES; k++) s += lane[k];
    return s;
}

/* The sum exp_and_sum returns, without writing the exponentials anywhere (the same lanes and
 * order, so the same bits). */
static inline double sum_exp(const float *z, int n, float shift) {
    enum { LANES = 8 };
    double lane[LANES] = {0};
    int j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int k = 0; k < LANES; k++) lane[k] += exp_nonpositive(z[j + k] - shift);
    double s = 0.0;
    for (; j < n; j++) s += exp_nonpositive(z[j] - shift);
    for (int k = 0; k < LANES; k++) s += lane[k];
    return s;
}

/* max of z[0..n), n >= 1, over sixteen lanes (vectorised compare-and-select) */
static inline float max_of(const float *z, int n) {
    enum { LANES = 16 };
    float lane[LANES];
    for (int k = 0; k < LANES; k++) lane[k] = z[0];
    int j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int k = 0; k < LANES; k++) lane[k] = z[j + k] > lane[k] ? z[j + k] : lane[k];
    float m = z[0];
    for (; j < n; j++) m = z[j] > m ? z[j] : m;
    for (int k = 0; k < LANES; k++) m = lane[k] > m ? lane[k] : m;
    return m;
}

/* The logistic sigmoid 1 / (1 + e^-g) through exp_nonpositive, so SwiGLU loops vectorise:
 * with e = e^-|g| (never overflows), sigma = 1 / (1 + e) for g >= 0 and e / (1 + e) below. */
static inline float sigmoid_fast(float g) {
    const float e = exp_nonpositive(g >= 0.0f ? -g : g);
    return (g >= 0.0f ? 1.0f : e) / (1.0f + e);
}

/* GELU in its tanh approximation (PyTorch's gelu(approximate="tanh"), transformers'
 * gelu_pytorch_tanh): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), and its derivative. */
static inline float gelu_tanh(float x) {
    const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}

static inline float gelu_tanh_grad(float x) {
    const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    const float t = tanhf(u);
    const float du = 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * x * x);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

/* The exact GELU x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), and its derivative Phi(x) + x phi(x). */
static inline float gelu_erf(float x) {
    return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
}

static inline float gelu_erf_grad(float x) {
    return 0.5f * (1.0f + erff(x * 0.7071067811865476f)) +
           x * 0.3989422804014327f * expf(-0.5f * x * x);
}

#endif
