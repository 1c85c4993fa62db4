/*
 * The memory-traffic bounds of bench_optim, compiled once per SIMD level as
 * lib/optim/kernels.c is (bench/meson.build), so that each optimizer is
 * compared with a loop built for the level its own kernels run at.
 *
 * bound(ro, rw): one fused pass that reads `ro` arrays and reads and writes
 * `rw` more, with trivial arithmetic: what moving those bytes costs. With
 * rw = 0 it is a read-only reduction.
 *
 * arith(nsqrt, ndiv): a pass over two arrays with the square roots and
 * divisions an optimizer makes per parameter, each correctly rounded as the
 * kernels need them: where the arrays sit in cache, the divider, not the
 * memory, is what bounds an Adagrad or an Adadelta step.
 * SPDX-License-Identifier: MIT
 */
#include "bound_kernels.h"

#include <math.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

#ifndef SGD_BTAB
#define SGD_BTAB bench_bounds_generic
#endif

#define R(k) const float *restrict r##k
#define W(k) float *restrict w##k

#if defined(__SSE2__)
#include "optim/vreg.h"

/* 4 x 16 lanes of sums, as the library's scan keeps them (lib/optim/vreg.h). */
#define READ_N(name, NR, TERM)                                                                                 \
    static float name(size_t n, const float *const *r)                                                         \
    {                                                                                                          \
        vreg acc[4][VW];                                                                                       \
        for (int q = 0; q < 4; q++)                                                                            \
            for (int w = 0; w < VW; w++)                                                                       \
                acc[q][w] = VSET(0.0f);                                                                        \
        size_t i = 0;                                                                                          \
        for (; i + 64 <= n; i += 64)                                                                           \
            for (int q = 0; q < 4; q++)                                                                        \
                for (int w = 0; w < VW; w++) {                                                                 \
                    const size_t o = i + 16 * (size_t)q + (size_t)(VL * w);                                    \
                    acc[q][w] = VADD(acc[q][w], TERM);                                                         \
                }                                                                                              \
        float s[VL], t = 0;                                                                                    \
        for (int w = 0; w < VW; w++) {                                                                         \
            VSTORE(s, VADD(VADD(acc[0][w], acc[1][w]), VADD(acc[2][w], acc[3][w])));                           \
            for (int l = 0; l < VL; l++)                                                                       \
                t += s[l];                                                                                     \
        }                                                                                                      \
        (void)NR;                                                                                              \
        return t;                                                                                              \
    }
READ_N(read1v, 1, VLOAD(r[0] + o))
READ_N(read2v, 2, VMUL(VLOAD(r[0] + o), VLOAD(r[1] + o)))
READ_N(read3v, 3, VMUL(VLOAD(r[0] + o), VADD(VLOAD(r[1] + o), VLOAD(r[2] + o))))
#define read1(n, a) read1v(n, (const float *const[]){a})
#define read2(n, a, b) read2v(n, (const float *const[]){a, b})
#define read3(n, a, b, c) read3v(n, (const float *const[]){a, b, c})
#else
static float read1(size_t n, R(0))
{
    float s = 0;
    for (size_t i = 0; i < n; i++)
        s += r0[i];
    return s;
}
static float read2(size_t n, R(0), R(1))
{
    float s = 0;
    for (size_t i = 0; i < n; i++)
        s += r0[i] * r1[i];
    return s;
}
static float read3(size_t n, R(0), R(1), R(2))
{
    float s = 0;
    for (size_t i = 0; i < n; i++)
        s += r0[i] * (r1[i] - r2[i]);
    return s;
}
#endif

#define BODY(...)                                                                                              \
    for (size_t i = 0; i < n; i++) {                                                                           \
        __VA_ARGS__                                                                                            \
    }

static void b11(size_t n, R(0), W(0), float c) { BODY(w0[i] = w0[i] * c + r0[i];) }
static void b12(size_t n, R(0), W(0), W(1), float c) { BODY(float t = r0[i]; w0[i] = w0[i] * c + t; w1[i] = w1[i] * c + t;) }
static void b13(size_t n, R(0), W(0), W(1), W(2), float c)
{
    BODY(float t = r0[i]; w0[i] = w0[i] * c + t; w1[i] = w1[i] * c + t; w2[i] = w2[i] * c + t;)
}
static void b14(size_t n, R(0), W(0), W(1), W(2), W(3), float c)
{
    BODY(float t = r0[i]; w0[i] = w0[i] * c + t; w1[i] = w1[i] * c + t; w2[i] = w2[i] * c + t;
         w3[i] = w3[i] * c + t;)
}
static void b21(size_t n, R(0), R(1), W(0), float c) { BODY(w0[i] = w0[i] * c + r0[i] * r1[i];) }
static void b22(size_t n, R(0), R(1), W(0), W(1), float c)
{
    BODY(float t = r0[i] * r1[i]; w0[i] = w0[i] * c + t; w1[i] = w1[i] * c + t;)
}
static void b23(size_t n, R(0), R(1), W(0), W(1), W(2), float c)
{
    BODY(float t = r0[i] * r1[i]; w0[i] = w0[i] * c + t; w1[i] = w1[i] * c + t; w2[i] = w2[i] * c + t;)
}
static void b31(size_t n, R(0), R(1), R(2), W(0), float c) { BODY(w0[i] = w0[i] * c + r0[i] * (r1[i] - r2[i]);) }
static void b33(size_t n, R(0), R(1), R(2), W(0), W(1), W(2), float c)
{
    BODY(float t = r0[i] * (r1[i] - r2[i]); w0[i] = w0[i] * c + t; w1[i] = w1[i] * c + t; w2[i] = w2[i] * c + t;)
}

static float bound_fn(int ro, int rw, size_t n, const float *const *r, float *const *w)
{
    const float c = 0.999f;
    switch (ro * 10 + rw) {
    case 10: return read1(n, r[0]);
    case 20: return read2(n, r[0], r[1]);
    case 30: return read3(n, r[0], r[1], r[2]);
    case 11: b11(n, r[0], w[0], c); return 0;
    case 12: b12(n, r[0], w[0], w[1], c); return 0;
    case 13: b13(n, r[0], w[0], w[1], w[2], c); return 0;
    case 14: b14(n, r[0], w[0], w[1], w[2], w[3], c); return 0;
    case 21: b21(n, r[0], r[1], w[0], c); return 0;
    case 22: b22(n, r[0], r[1], w[0], w[1], c); return 0;
    case 23: b23(n, r[0], r[1], w[0], w[1], w[2], c); return 0;
    case 31: b31(n, r[0], r[1], r[2], w[0], c); return 0;
    case 33: b33(n, r[0], r[1], r[2], w[0], w[1], w[2], c); return 0;
    default: return -1;
    }
}

/* Each element's chain keeps its values positive and near 0.2-1: no NaN, no subnormal. */
static void a01(size_t n, R(0), W(0), float c) { BODY(w0[i] = r0[i] / (w0[i] + c);) }
static void a11(size_t n, R(0), W(0), float c) { BODY(w0[i] = r0[i] / (sqrtf(w0[i]) + c);) }
static void a12(size_t n, R(0), W(0), float c) { BODY(float t = sqrtf(w0[i]) + c; w0[i] = r0[i] / t + c / t;) }
static void a21(size_t n, R(0), W(0), float c) { BODY(w0[i] = sqrtf(w0[i] + c) / sqrtf(r0[i] + c) * c;) }
static void a22(size_t n, R(0), W(0), float c)
{
    BODY(float t = r0[i] / (sqrtf(w0[i]) + c); w0[i] = t / (sqrtf(t + c) + c);)
}

static float arith_fn(int nsqrt, int ndiv, size_t n, const float *r, float *w)
{
    const float c = 0.999f;
    switch (nsqrt * 10 + ndiv) {
    case 1: a01(n, r, w, c); return 0;
    case 11: a11(n, r, w, c); return 0;
    case 12: a12(n, r, w, c); return 0;
    case 21: a21(n, r, w, c); return 0;
    case 22: a22(n, r, w, c); return 0;
    default: return -1;
    }
}

const bench_bounds SGD_BTAB = {SGD_KLEVEL, bound_fn, arith_fn};
