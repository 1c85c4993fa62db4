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

/*
 * The constants of the functions below, named so that a SIMD level written
 * with intrinsics (layer_rnn.c) uses the same ones.
 */
#define SGD__VEXP_LO (-87.3365478515625f)
#define SGD__VEXP_HI 88.3762626647949f
#define SGD__VEXP_LOG2E 1.44269504088896341f
#define SGD__VEXP_SHIFT 12582912.0f
#define SGD__VEXP_LN2_HI 0.693359375f
#define SGD__VEXP_LN2_LO (-2.12194440e-4f)
#define SGD__VEXP_C5 1.9875691500e-4f
#define SGD__VEXP_C4 1.3981999507e-3f
#define SGD__VEXP_C3 8.3334519073e-3f
#define SGD__VEXP_C2 4.1665795894e-2f
#define SGD__VEXP_C1 1.6666665459e-1f
#define SGD__VEXP_C0 5.0000001201e-1f
#define SGD__VTANH_MAX 7.99881172180175781f
#define SGD__VTANH_P6 (-2.76076847742355e-16f)
#define SGD__VTANH_P5 2.00018790482477e-13f
#define SGD__VTANH_P4 (-8.60467152213735e-11f)
#define SGD__VTANH_P3 5.12229709037114e-08f
#define SGD__VTANH_P2 1.48572235717979e-05f
#define SGD__VTANH_P1 6.37261928875436e-04f
#define SGD__VTANH_P0 4.89352455891786e-03f
#define SGD__VTANH_Q3 1.19825839466702e-06f
#define SGD__VTANH_Q2 1.18534705686654e-04f
#define SGD__VTANH_Q1 2.26843463243900e-03f
#define SGD__VTANH_Q0 4.89352518554385e-03f

static inline float sgd__vexpf(float x)
{
    x = sgd__vclampf(x, SGD__VEXP_LO, SGD__VEXP_HI);
    /* n = round(x / ln 2), read from the bits of x * log2(e) + 1.5 * 2^23. */
    sgd__fbits k;
    k.f = x * SGD__VEXP_LOG2E + SGD__VEXP_SHIFT;
    float n = k.f - SGD__VEXP_SHIFT;
    uint32_t e = (k.u - 0x4B400000u + 127u) << 23;
    float r = x - n * SGD__VEXP_LN2_HI;
    r = r - n * SGD__VEXP_LN2_LO;
    float p = SGD__VEXP_C5;
    p = p * r + SGD__VEXP_C4;
    p = p * r + SGD__VEXP_C3;
    p = p * r + SGD__VEXP_C2;
    p = p * r + SGD__VEXP_C1;
    p = p * r + SGD__VEXP_C0;
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
    float c = sgd__vclampf(x, -SGD__VTANH_MAX, SGD__VTANH_MAX);
    float x2 = c * c;
    float p = SGD__VTANH_P6;
    p = p * x2 + SGD__VTANH_P5;
    p = p * x2 + SGD__VTANH_P4;
    p = p * x2 + SGD__VTANH_P3;
    p = p * x2 + SGD__VTANH_P2;
    p = p * x2 + SGD__VTANH_P1;
    p = p * x2 + SGD__VTANH_P0;
    p = p * c;
    float q = SGD__VTANH_Q3;
    q = q * x2 + SGD__VTANH_Q2;
    q = q * x2 + SGD__VTANH_Q1;
    q = q * x2 + SGD__VTANH_Q0;
    return p / q;
}

#endif /* SGDLAB_MODEL_VMATH_H */
