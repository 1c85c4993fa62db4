/*
 * Vectorizable exp, sigmoid and tanh for the recurrent layers' gates.
 *
 * glibc's expf and tanhf are scalar calls, which a loop cannot vectorize
 * without -ffast-math (never used here: isfinite must work). These are
 * branch-free inline functions of plain float and integer arithmetic that
 * GCC and Clang vectorize at -O2 inside SGD__FOR_BLOCKED loops:
 *
 * - sgd__vexpf: Cephes' expf (range reduction by ln 2 in two parts, a degree
 *   6 polynomial, the power of two put together in the exponent bits),
 *   within 2 ulp of expf over [-87.3, 88.3]; inputs are clamped to that range
 *   (so it never returns 0 or inf), NaN stays NaN.
 * - sgd__vsigmoidf: 1 / (1 + exp(-x)), relative error within a few ulp.
 * - sgd__vtanhf: Eigen's rational approximation (odd degree 13 over even
 *   degree 6 on [-7.99, 7.99], saturated outside), within 8 ulp of tanhf
 *   (absolute error below 4e-7).
 *
 * NaN propagates through all three (a diverging run stays visible): the
 * clamps are written as comparisons that are false for NaN, and the integer
 * part of the exponent is read from the float's bits (never a float to int
 * conversion, which is undefined for NaN). tests/test_rnn.c checks them
 * against libm over a dense grid. Never installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_MODEL_VMATH_H
#define SGDLAB_MODEL_VMATH_H

#include <stdint.h>

typedef union sgd__fbits {
    float f;
    uint32_t u;
} sgd__fbits;

/*
 * The float's bits as an unsigned key in the order of the floats (positive:
 * sign bit set; negative: complemented), so that clamps are integer
 * comparisons. Floating-point comparisons would do, but under GCC's default
 * -ftrapping-math a loop that selects on them is not if-converted, hence not
 * vectorized; integer selects are.
 */
static inline uint32_t sgd__fkey(uint32_t u)
{
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static inline uint32_t sgd__funkey(uint32_t k)
{
    return (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
}

/* x clamped to [lo, hi]; NaN stays NaN. */
static inline float sgd__vclampf(float x, float lo, float hi)
{
    sgd__fbits b = {x}, l = {lo}, h = {hi};
    uint32_t k = sgd__fkey(b.u), kl = sgd__fkey(l.u), kh = sgd__fkey(h.u);
    k = k < kl ? kl : k;
    k = k > kh ? kh : k;
    sgd__fbits r;
    r.u = (b.u & 0x7fffffffu) > 0x7f800000u ? b.u : sgd__funkey(k);
    return r.f;
}

static inline float sgd__vexpf(float x)
{
    x = sgd__vclampf(x, -87.3365478515625f, 88.3762626647949f);
    /* n = round(x / ln 2), read from the bits of x * log2(e) + 1.5 * 2^23. */
    sgd__fbits k;
    k.f = x * 1.44269504088896341f + 12582912.0f;
    float n = k.f - 12582912.0f;
    uint32_t e = (k.u - 0x4B400000u + 127u) << 23;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    sgd__fbits s;
    s.u = e;
    return p * s.f;
}

static inline float sgd__vsigmoidf(float x)
{
    return 1.0f / (1.0f + sgd__vexpf(-x));
}

static inline float sgd__vtanhf(float x)
{
    float c = sgd__vclampf(x, -7.99881172180175781f, 7.99881172180175781f);
    float x2 = c * c;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * c;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return p / q;
}

#endif /* SGDLAB_MODEL_VMATH_H */
