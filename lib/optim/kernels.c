/*
 * The optimizers' hot loops: each one fused pass over n floats, written so
 * that the compiler vectorises it (restrict pointers, no calls, no branches
 * that depend on data other than selects). Never -ffast-math: the scan must
 * see NaN and infinity.
 *
 * This file is compiled once per SIMD level (lib/optim/meson.build): with
 * SGD_KTAB naming the table it defines (sgd__ktab_generic, _avx2, _avx512)
 * and SGD_KLEVEL its level's name; everything else is static. The build adds
 * the level's -m flags and -ffp-contract=off, so every level rounds alike.
 * SPDX-License-Identifier: MIT
 */
#include "kernels.h"

/*
 * GCC 12 at -O2 uses the "very cheap" vectoriser cost model, which leaves
 * these loops scalar (they need an epilogue); the dynamic model vectorises
 * all of them. Clang vectorises them at -O2 as it is.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

#include <math.h>
#include <string.h>

#ifndef SGD_KTAB
#define SGD_KTAB sgd__ktab_generic
#define SGD_KLEVEL "generic"
#endif

#if defined(__GNUC__)
#define SGD__INLINE static inline __attribute__((always_inline))
#else
#define SGD__INLINE static inline
#endif

/* clamp(g, -cv, cv) * gs; NaN passes through (both comparisons are false). */
SGD__INLINE float clipg(float g, float cv, float gs)
{
#if defined(__GNUC__)
    /*
     * In KSPLIT's no-clipping bodies cv and gs are known constants: the
     * identity is then said outright (the compiler keeps the compares
     * otherwise, since an ordered compare with a NaN raises FE_INVALID, and
     * turns them into mask arithmetic slower than the clamp).
     */
    if (__builtin_constant_p(cv == INFINITY && gs == 1.0f) && cv == INFINITY && gs == 1.0f)
        return g;
#endif
    g = g < -cv ? -cv : g;
    g = g > cv ? cv : g;
    return g * gs;
}

/* The locals every kernel starts from. */
#define KLOCALS(k)                                                                                                     \
    const float cv = (k)->cv, gs = (k)->gs, wd = (k)->wd, decay = (k)->decay, lr = (k)->lr;                         \
    (void)cv, (void)gs, (void)wd, (void)decay, (void)lr

/*
 * Calls CALL (which names the arguments K_) twice over: when no clipping is
 * set (cv = +inf, gs = 1) with a copy of the arguments whose cv and gs the
 * compiler sees as those constants, so that clipg() reduces to g (two
 * compares, their selects and a multiply fewer per element: lion's in-cache
 * step measured 0.266 -> 0.242 ns on AVX-512, 0.274 -> 0.231 on AVX2); else
 * with k itself. clamp(g, -inf, inf) * 1 is g, NaN included, so both give
 * the same bits.
 */
#define KSPLIT(k, CALL)                                                                                                \
    do {                                                                                                               \
        if ((k)->cv == INFINITY && (k)->gs == 1.0f) {                                                                  \
            sgd__kargs plain_ = *(k);                                                                                  \
            plain_.cv = INFINITY;                                                                                      \
            plain_.gs = 1.0f;                                                                                          \
            const sgd__kargs *const K_ = &plain_;                                                                      \
            CALL;                                                                                                      \
        } else {                                                                                                       \
            const sgd__kargs *const K_ = (k);                                                                          \
            CALL;                                                                                                      \
        }                                                                                                              \
    } while (0)

/*
 * KSPLIT for the kernels that also scale the parameters by `decay` (decoupled
 * weight decay, 1 - lr wd): a third body for no clipping and decay = 1, the
 * default (weight_decay = 0), where x * 1 is x for every x, NaN and -0
 * included, so the multiply goes (lion's no-clip loop: seven multiplies per
 * vector to five with the select below).
 */
#define KSPLIT_DECAY(k, CALL)                                                                                          \
    do {                                                                                                               \
        if ((k)->cv == INFINITY && (k)->gs == 1.0f && (k)->decay == 1.0f) {                                            \
            sgd__kargs plain_ = *(k);                                                                                  \
            plain_.cv = INFINITY;                                                                                      \
            plain_.gs = 1.0f;                                                                                          \
            plain_.decay = 1.0f;                                                                                       \
            const sgd__kargs *const K_ = &plain_;                                                                      \
            CALL;                                                                                                      \
        } else {                                                                                                       \
            KSPLIT(k, CALL);                                                                                           \
        }                                                                                                              \
    } while (0)

/* ------------------------------------------------------------ gradient scan */

/*
 * Blocks of SCAN_BLOCK gradients are summed in float lanes, and each block's
 * sum is added to a double: the float sums stay short (accurate), and the lane
 * structure, fixed by the source, makes the result the same whatever the SIMD
 * width. (Scanning the blocks last to first, so that the update would find
 * the last-scanned gradients still in cache, measured no better on this
 * machine once the scan ran at memory speed: the prefetchers prefer one
 * forward stream.)
 */
#define SCAN_BLOCK 4096

#if defined(__SSE2__) || defined(__AVX2__) || defined(__AVX512F__)
/*
 * 4 independent accumulators of 16 lanes for the sums of squares (one chain
 * of float adds would limit the scan to about 40 GB/s, less than the caches
 * deliver) and 16 lanes of maximum. A group of 16 lanes is one AVX-512
 * register, two AVX2 registers or four SSE2 registers: the same lanes, the
 * same adds in the same order, so every level computes the same bits; only
 * the register width differs, and the code for it is the macros below.
 * (Plain loops over float arrays, and GNU vectors of 16 floats, were tried
 * first: GCC 12 kept the accumulators in memory, or lowered the compares to
 * scalar code, on levels narrower than 512 bits.) The maximum is NaN-blind,
 * which does not matter: a NaN sends the step to sgd__grad_scan_exact(),
 * which recomputes it.
 */
#include "vreg.h"
#define SCAN_STEP 64

SGD__INLINE void scan_all(const float *restrict g, size_t n, float cv, int clip, sgd__gradstat *out)
{
    double tsq = 0.0, tsqc = 0.0;
    vreg mx[VW];
    for (int w = 0; w < VW; w++)
        mx[w] = VSET(0.0f);
    const vreg vcv = VSET(cv);
    for (size_t off = 0; off < n; off += SCAN_BLOCK) {
        const size_t len = n - off < SCAN_BLOCK ? n - off : SCAN_BLOCK;
        const float *restrict p = g + off;
        vreg sq[4][VW], sc[4][VW];
        for (int q = 0; q < 4; q++)
            for (int w = 0; w < VW; w++)
                sq[q][w] = sc[q][w] = VSET(0.0f);
        size_t i = 0;
        for (; i + SCAN_STEP <= len; i += SCAN_STEP)
            for (int q = 0; q < 4; q++)
                for (int w = 0; w < VW; w++) {
                    const vreg x = VLOAD(p + i + 16 * (size_t)q + (size_t)(VL * w)), a = VABSR(x);
                    sq[q][w] = VADD(sq[q][w], VMUL(x, x));
                    mx[w] = VMAXR(a, mx[w]);
                    if (clip) {
                        const vreg k = VMINR(a, vcv);
                        sc[q][w] = VADD(sc[q][w], VMUL(k, k));
                    }
                }
        /* lane l of the block: (sq0 + sq1) + (sq2 + sq3), then the lanes in order */
        float s = 0.0f, c = 0.0f, m = 0.0f;
        for (int w = 0; w < VW; w++) {
            float ls[VL], lc[VL];
            VSTORE(ls, VADD(VADD(sq[0][w], sq[1][w]), VADD(sq[2][w], sq[3][w])));
            VSTORE(lc, VADD(VADD(sc[0][w], sc[1][w]), VADD(sc[2][w], sc[3][w])));
            for (int l = 0; l < VL; l++)
                s += ls[l], c += lc[l];
        }
        for (; i < len; i++) { /* the block's tail, one at a time */
            float x = p[i], a = fabsf(x);
            s += x * x;
            m = a > m ? a : m;
            if (clip) {
                float k = a > cv ? cv : a;
                c += k * k;
            }
        }
        mx[0] = VMAXR(VSET(m), mx[0]);
        tsq += s;
        tsqc += c;
    }
    float m = 0.0f;
    for (int w = 0; w < VW; w++) {
        float lm[VL];
        VSTORE(lm, mx[w]);
        for (int l = 0; l < VL; l++)
            m = lm[l] > m ? lm[l] : m;
    }
    out->sumsq = tsq;
    out->sumsq_clipped = clip ? tsqc : tsq;
    out->max_abs = m;
}
#else
/* Portable: 16 float lanes the compiler can map onto SIMD registers. */
#define SCAN_LANES 16

SGD__INLINE void scan_all(const float *g, size_t n, float cv, int clip, sgd__gradstat *out)
{
    double tsq = 0.0, tsqc = 0.0;
    float mx[SCAN_LANES] = {0};
    for (size_t b = (n + SCAN_BLOCK - 1) / SCAN_BLOCK; b-- > 0;) {
        const size_t off = b * SCAN_BLOCK;
        const size_t len = n - off < SCAN_BLOCK ? n - off : SCAN_BLOCK;
        const float *p = g + off;
        float sq[SCAN_LANES] = {0}, sqc[SCAN_LANES] = {0};
        for (size_t i = 0; i < len; i++) {
            int l = (int)(i % SCAN_LANES);
            float x = p[i], a = fabsf(x);
            sq[l] += x * x;
            mx[l] = a > mx[l] ? a : mx[l];
            if (clip) {
                float c = a > cv ? cv : a;
                sqc[l] += c * c;
            }
        }
        float s = 0.0f, sc = 0.0f;
        for (int l = 0; l < SCAN_LANES; l++)
            s += sq[l], sc += sqc[l];
        tsq += s;
        tsqc += sc;
    }
    float m = 0.0f;
    for (int l = 0; l < SCAN_LANES; l++)
        m = mx[l] > m ? mx[l] : m;
    out->sumsq = tsq;
    out->sumsq_clipped = clip ? tsqc : tsq;
    out->max_abs = m;
}
#endif

static void scan_fn(const float *g, size_t n, float clip_value, sgd__gradstat *out)
{
    if (clip_value > 0.0f)
        scan_all(g, n, clip_value, 1, out);
    else
        scan_all(g, n, 0.0f, 0, out);
}

static size_t scan_exact_fn(const float *g, size_t n, float clip_value, sgd__gradstat *out)
{
    size_t first = n;
    double sq = 0.0, sqc = 0.0;
    float mx = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float x = g[i];
        if (!isfinite(x) && first == n)
            first = i;
        double d = x;
        sq += d * d;
        float a = fabsf(x);
        mx = a > mx ? a : mx;
        if (clip_value > 0.0f) {
            double c = a > clip_value ? clip_value : a;
            sqc += c * c;
        }
    }
    out->sumsq = sq;
    out->sumsq_clipped = clip_value > 0.0f ? sqc : sq;
    out->max_abs = mx;
    return first;
}

SGD__INLINE void clip_copy_k(float *restrict out, const float *restrict g, size_t n, const sgd__kargs *k)
{
    KLOCALS(k);
    for (size_t i = 0; i < n; i++)
        out[i] = clipg(g[i], cv, gs);
}

static void clip_copy_fn(float *restrict out, const float *restrict g, size_t n, const sgd__kargs *k)
{
    KSPLIT(k, clip_copy_k(out, g, n, K_));
}

/* ------------------------------------------------------------------- SGD */

SGD__INLINE void sgd_body(const int mode, float *restrict p, const float *restrict g, float *restrict buf, size_t n,
                          const sgd__kargs *k)
{
    KLOCALS(k);
    const float mom = k->c[0], damp1 = k->c[1];
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float d = clipg(g[i], cv, gs) + wd * x;
        if (mode == SGD__SGD_MOM_FIRST || mode == SGD__SGD_NEST_FIRST) {
            buf[i] = d;
            if (mode == SGD__SGD_NEST_FIRST)
                d = d + mom * d;
        } else if (mode == SGD__SGD_MOM || mode == SGD__SGD_NEST) {
            float b = mom * buf[i] + damp1 * d;
            buf[i] = b;
            d = mode == SGD__SGD_NEST ? d + mom * b : b;
        }
        p[i] = x - lr * d;
    }
}

SGD__INLINE void sgd_k(int mode, float *p, const float *g, float *buf, size_t n, const sgd__kargs *k)
{
    switch (mode) {
    case SGD__SGD_MOM_FIRST: sgd_body(SGD__SGD_MOM_FIRST, p, g, buf, n, k); break;
    case SGD__SGD_MOM: sgd_body(SGD__SGD_MOM, p, g, buf, n, k); break;
    case SGD__SGD_NEST_FIRST: sgd_body(SGD__SGD_NEST_FIRST, p, g, buf, n, k); break;
    case SGD__SGD_NEST: sgd_body(SGD__SGD_NEST, p, g, buf, n, k); break;
    default: sgd_body(SGD__SGD_PLAIN, p, g, buf, n, k); break;
    }
}

static void sgd_fn(int mode, float *p, const float *g, float *buf, size_t n, const sgd__kargs *k)
{
    KSPLIT(k, sgd_k(mode, p, g, buf, n, K_));
}

/* --------------------------------------------------------------- Adagrad */

SGD__INLINE void adagrad_k(float *restrict p, const float *restrict g, float *restrict sum, size_t n,
                           const sgd__kargs *k)
{
    KLOCALS(k);
    const float eps = k->c[0];
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float d = clipg(g[i], cv, gs) + wd * x;
        float s = sum[i] + d * d;
        sum[i] = s;
        p[i] = x - lr * (d / (sqrtf(s) + eps));
    }
}

static void adagrad_fn(float *restrict p, const float *restrict g, float *restrict sum, size_t n, const sgd__kargs *k)
{
    KSPLIT(k, adagrad_k(p, g, sum, n, K_));
}

/* --------------------------------------------------------------- RMSprop */

SGD__INLINE void rms_body(const int centered, const int use_mom, float *restrict p, const float *restrict g,
                          float *restrict sq, float *restrict ga, float *restrict buf, size_t n, const sgd__kargs *k)
{
    KLOCALS(k);
    const float alpha = k->c[0], one_m_alpha = k->c[1], eps = k->c[2], mom = k->c[3];
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float d = clipg(g[i], cv, gs) + wd * x;
        float s = alpha * sq[i] + one_m_alpha * (d * d);
        sq[i] = s;
        float avg;
        if (centered) {
            float a = alpha * ga[i] + one_m_alpha * d;
            ga[i] = a;
            avg = sqrtf(s - a * a) + eps;
        } else {
            avg = sqrtf(s) + eps;
        }
        if (use_mom) {
            float b = mom * buf[i] + d / avg;
            buf[i] = b;
            p[i] = x - lr * b;
        } else {
            p[i] = x - lr * (d / avg);
        }
    }
}

SGD__INLINE void rmsprop_k(float *p, const float *g, float *sq, float *ga, float *buf, size_t n, const sgd__kargs *k)
{
    if (ga != NULL) {
        if (buf != NULL)
            rms_body(1, 1, p, g, sq, ga, buf, n, k);
        else
            rms_body(1, 0, p, g, sq, ga, buf, n, k);
    } else {
        if (buf != NULL)
            rms_body(0, 1, p, g, sq, ga, buf, n, k);
        else
            rms_body(0, 0, p, g, sq, ga, buf, n, k);
    }
}

static void rmsprop_fn(float *p, const float *g, float *sq, float *ga, float *buf, size_t n, const sgd__kargs *k)
{
    KSPLIT(k, rmsprop_k(p, g, sq, ga, buf, n, K_));
}

/* ------------------------------------------------------------------ Adam */

SGD__INLINE void adam_body(const int ams, float *restrict p, const float *restrict g, float *restrict m,
                           float *restrict v, float *restrict vmax, size_t n, const sgd__kargs *k)
{
    KLOCALS(k);
    const float b1 = k->c[0], one_m_b1 = k->c[1], b2 = k->c[2], one_m_b2 = k->c[3], step_size = k->c[4],
                inv_bc2s = k->c[5], eps = k->c[6];
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float d = clipg(g[i], cv, gs) + wd * x;
        float mi = b1 * m[i] + one_m_b1 * d;
        float vi = b2 * v[i] + one_m_b2 * (d * d);
        m[i] = mi;
        v[i] = vi;
        if (ams) {
            float w = vmax[i];
            w = vi > w ? vi : w;
            vmax[i] = w;
            vi = w;
        }
        float denom = sqrtf(vi) * inv_bc2s + eps;
        p[i] = x * decay - step_size * (mi / denom);
    }
}

SGD__INLINE void adam_k(float *p, const float *g, float *m, float *v, float *vmax, size_t n, const sgd__kargs *k)
{
    if (vmax != NULL)
        adam_body(1, p, g, m, v, vmax, n, k);
    else
        adam_body(0, p, g, m, v, vmax, n, k);
}

static void adam_fn(float *p, const float *g, float *m, float *v, float *vmax, size_t n, const sgd__kargs *k)
{
    KSPLIT_DECAY(k, adam_k(p, g, m, v, vmax, n, K_));
}

SGD__INLINE void adamax_k(float *restrict p, const float *restrict g, float *restrict m, float *restrict u, size_t n,
                          const sgd__kargs *k)
{
    KLOCALS(k);
    const float b1 = k->c[0], one_m_b1 = k->c[1], b2 = k->c[2], eps = k->c[3], clr = k->c[4];
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float d = clipg(g[i], cv, gs) + wd * x;
        float mi = b1 * m[i] + one_m_b1 * d;
        float a = fabsf(d) + eps, w = b2 * u[i];
        w = a > w ? a : w;
        m[i] = mi;
        u[i] = w;
        p[i] = x - clr * (mi / w);
    }
}

static void adamax_fn(float *restrict p, const float *restrict g, float *restrict m, float *restrict u, size_t n,
                      const sgd__kargs *k)
{
    KSPLIT(k, adamax_k(p, g, m, u, n, K_));
}

SGD__INLINE void nadam_k(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t n,
                         const sgd__kargs *k)
{
    KLOCALS(k);
    const float b1 = k->c[0], one_m_b1 = k->c[1], b2 = k->c[2], one_m_b2 = k->c[3], inv_bc2 = k->c[4], eps = k->c[5],
                cg = k->c[6], cm = k->c[7];
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float d = clipg(g[i], cv, gs) + wd * x;
        float mi = b1 * m[i] + one_m_b1 * d;
        float vi = b2 * v[i] + one_m_b2 * (d * d);
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi * inv_bc2) + eps;
        x = x - cg * (d / denom);
        p[i] = x - cm * (mi / denom);
    }
}

static void nadam_fn(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t n,
                     const sgd__kargs *k)
{
    KSPLIT(k, nadam_k(p, g, m, v, n, K_));
}

SGD__INLINE void radam_body(const int rect, float *restrict p, const float *restrict g, float *restrict m,
                            float *restrict v, size_t n, const sgd__kargs *k)
{
    KLOCALS(k);
    const float b1 = k->c[0], one_m_b1 = k->c[1], b2 = k->c[2], one_m_b2 = k->c[3], eps = k->c[4], c = k->c[5];
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float d = clipg(g[i], cv, gs) + wd * x;
        float mi = b1 * m[i] + one_m_b1 * d;
        float vi = b2 * v[i] + one_m_b2 * (d * d);
        m[i] = mi;
        v[i] = vi;
        p[i] = rect ? x - c * (mi / (sqrtf(vi) + eps)) : x - c * mi;
    }
}

SGD__INLINE void radam_k(float *p, const float *g, float *m, float *v, size_t n, const sgd__kargs *k)
{
    if (k->c[6] != 0.0f)
        radam_body(1, p, g, m, v, n, k);
    else
        radam_body(0, p, g, m, v, n, k);
}

static void radam_fn(float *p, const float *g, float *m, float *v, size_t n, const sgd__kargs *k)
{
    KSPLIT(k, radam_k(p, g, m, v, n, K_));
}

/* -------------------------------------------------------------- Adadelta */

SGD__INLINE void adadelta_k(float *restrict p, const float *restrict g, float *restrict sq, float *restrict acc,
                            size_t n, const sgd__kargs *k)
{
    KLOCALS(k);
    const float rho = k->c[0], one_m_rho = k->c[1], eps = k->c[2];
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float d = clipg(g[i], cv, gs) + wd * x;
        float s = rho * sq[i] + one_m_rho * (d * d);
        sq[i] = s;
        float a = acc[i];
        float delta = sqrtf(a + eps) / sqrtf(s + eps) * d;
        acc[i] = rho * a + one_m_rho * (delta * delta);
        p[i] = x - lr * delta;
    }
}

static void adadelta_fn(float *restrict p, const float *restrict g, float *restrict sq, float *restrict acc, size_t n,
                        const sgd__kargs *k)
{
    KSPLIT(k, adadelta_k(p, g, sq, acc, n, K_));
}

/* ----------------------------------------------------------------- Rprop */

SGD__INLINE void rprop_body(const int first, float *restrict p, const float *restrict g, float *restrict prev,
                            float *restrict size, size_t n, const sgd__kargs *k)
{
    KLOCALS(k);
    const float eminus = k->c[0], eplus = k->c[1], smin = k->c[2], smax = k->c[3];
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float d = clipg(g[i], cv, gs) + wd * x;
        float s = d * prev[i];
        /* single selects, which the vectoriser if-converts (a nested ?: it left scalar) */
        float f = s > 0.0f ? eplus : 1.0f;
        f = s < 0.0f ? eminus : f;
        float z = (first ? lr : size[i]) * f;
        z = z < smin ? smin : z;
        z = z > smax ? smax : z;
        size[i] = z;
        d = s < 0.0f ? 0.0f : d;
        float sg = d > 0.0f ? 1.0f : 0.0f;
        sg = d < 0.0f ? -1.0f : sg;
        p[i] = x - sg * z;
        prev[i] = d;
    }
}

SGD__INLINE void rprop_k(float *p, const float *g, float *prev, float *size, size_t n, const sgd__kargs *k)
{
    if (k->c[4] != 0.0f)
        rprop_body(1, p, g, prev, size, n, k);
    else
        rprop_body(0, p, g, prev, size, n, k);
}

static void rprop_fn(float *p, const float *g, float *prev, float *size, size_t n, const sgd__kargs *k)
{
    KSPLIT(k, rprop_k(p, g, prev, size, n, K_));
}

/* ------------------------------------------------------------------ ASGD */

SGD__INLINE void asgd_body(const int copy, float *restrict p, const float *restrict g, float *restrict ax, size_t n,
                           const sgd__kargs *k)
{
    KLOCALS(k);
    const float eta = k->c[0], mu = k->c[1];
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float d = clipg(g[i], cv, gs) + wd * x;
        x = x * decay;
        x = x - eta * d;
        p[i] = x;
        ax[i] = copy ? x : ax[i] + (x - ax[i]) * mu;
    }
}

SGD__INLINE void asgd_k(float *p, const float *g, float *ax, size_t n, const sgd__kargs *k)
{
    if (k->c[2] != 0.0f)
        asgd_body(1, p, g, ax, n, k);
    else
        asgd_body(0, p, g, ax, n, k);
}

static void asgd_fn(float *p, const float *g, float *ax, size_t n, const sgd__kargs *k)
{
    KSPLIT_DECAY(k, asgd_k(p, g, ax, n, K_));
}

/* ------------------------------------------------------------------ Lion */

SGD__INLINE void lion_k(float *restrict p, const float *restrict g, float *restrict m, size_t n, const sgd__kargs *k)
{
    KLOCALS(k);
    const float b1 = k->c[0], one_m_b1 = k->c[1], b2 = k->c[2], one_m_b2 = k->c[3];
    /* lr * sign(c), sign in {1, -1, 0}, selected among its three values: the same bits, one multiply fewer */
    const float lr_pos = lr * 1.0f, lr_neg = lr * -1.0f, lr_zero = lr * 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = clipg(g[i], cv, gs) + wd * p[i];
        float mi = m[i];
        float c = b1 * mi + one_m_b1 * d;
        float st = c > 0.0f ? lr_pos : lr_zero;
        st = c < 0.0f ? lr_neg : st;
        p[i] = p[i] * decay - st;
        m[i] = b2 * mi + one_m_b2 * d;
    }
}

static void lion_fn(float *restrict p, const float *restrict g, float *restrict m, size_t n, const sgd__kargs *k)
{
    KSPLIT_DECAY(k, lion_k(p, g, m, n, K_));
}

/*
 * Reductions over a range: `body` (using index j) defines the terms A, B and
 * C, summed in 16 float lanes per block of 4096 (lane l takes the elements
 * j = l mod 16; as the scan: a lane structure fixed by the source, so every
 * level sums alike), the lanes in order into one float per block, added to
 * the doubles ta, tb, tc. On x86-64 the lanes are vreg registers (vreg.h):
 * the (vectorised) body writes each block of 16 terms to an aligned buffer
 * and they are added from there. A float[16] accumulator, which is what
 * plain C would write, stays in memory on the AVX2 and SSE2 levels with
 * GCC 12 and makes every add wait for a store (dog's and lars's sums
 * measured 1.4-1.5x their bound).
 */
#ifdef VL
#define RED_INIT                                                                                                       \
    vreg va_[VW], vb_[VW], vc_[VW];                                                                                    \
    for (int w_ = 0; w_ < VW; w_++)                                                                                    \
        va_[w_] = vb_[w_] = vc_[w_] = VSET(0.0f);                                                                      \
    _Alignas(64) float xa_[16], xb_[16], xc_[16]
#define RED_BLOCK(body, A, B, C)                                                                                       \
    do {                                                                                                               \
        for (int l_ = 0; l_ < 16; l_++) {                                                                              \
            const size_t j = i_ + (size_t)l_;                                                                          \
            body;                                                                                                      \
            xa_[l_] = (A);                                                                                             \
            xb_[l_] = (B);                                                                                             \
            xc_[l_] = (C);                                                                                             \
        }                                                                                                              \
        for (int w_ = 0; w_ < VW; w_++) {                                                                              \
            va_[w_] = VADD(va_[w_], VLOAD(xa_ + VL * w_));                                                             \
            vb_[w_] = VADD(vb_[w_], VLOAD(xb_ + VL * w_));                                                             \
            vc_[w_] = VADD(vc_[w_], VLOAD(xc_ + VL * w_));                                                             \
        }                                                                                                              \
    } while (0)
#define RED_LANES                                                                                                      \
    for (int w_ = 0; w_ < VW; w_++) {                                                                                  \
        VSTORE(xa_ + VL * w_, va_[w_]);                                                                                \
        VSTORE(xb_ + VL * w_, vb_[w_]);                                                                                \
        VSTORE(xc_ + VL * w_, vc_[w_]);                                                                                \
    }
#else
#define RED_INIT float xa_[16] = {0}, xb_[16] = {0}, xc_[16] = {0}
#define RED_BLOCK(body, A, B, C)                                                                                       \
    for (int l_ = 0; l_ < 16; l_++) {                                                                                  \
        const size_t j = i_ + (size_t)l_;                                                                              \
        body;                                                                                                          \
        xa_[l_] += (A);                                                                                                \
        xb_[l_] += (B);                                                                                                \
        xc_[l_] += (C);                                                                                                \
    }
#define RED_LANES (void)0
#endif
#define REDUCE3(n, body, A, B, C, ta, tb, tc)                                                                          \
    do {                                                                                                               \
        for (size_t i_ = 0; i_ < (n);) {                                                                               \
            const size_t end_ = (n) - i_ > 4096 ? i_ + 4096 : (n);                                                     \
            RED_INIT;                                                                                                  \
            for (; i_ + 16 <= end_; i_ += 16)                                                                          \
                RED_BLOCK(body, A, B, C);                                                                              \
            RED_LANES;                                                                                                 \
            float sa_ = 0.0f, sb_ = 0.0f, sc_ = 0.0f;                                                                  \
            for (int l_ = 0; l_ < 16; l_++)                                                                            \
                sa_ += xa_[l_], sb_ += xb_[l_], sc_ += xc_[l_];                                                        \
            for (; i_ < end_; i_++) {                                                                                  \
                const size_t j = i_;                                                                                   \
                body;                                                                                                  \
                sa_ += (A);                                                                                            \
                sb_ += (B);                                                                                            \
                sc_ += (C);                                                                                            \
            }                                                                                                          \
            (ta) += sa_, (tb) += sb_, (tc) += sc_;                                                                     \
        }                                                                                                              \
    } while (0)

/* ------------------------------------------------------------- LAMB, LARS */

SGD__INLINE void lamb_moments_k(const float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                                size_t n, const sgd__kargs *k, sgd__knorms *out)
{
    KLOCALS(k);
    const float b1 = k->c[0], one_m_b1 = k->c[1], b2 = k->c[2], one_m_b2 = k->c[3], ibc1 = k->c[4], ibc2s = k->c[5],
                eps = k->c[6], dwd = k->c[7];
    double tp = 0.0, tu = 0.0, unused = 0.0;
    REDUCE3(n,
            float x = p[j]; float d = clipg(g[j], cv, gs) + wd * x; float mi = b1 * m[j] + one_m_b1 * d;
            float vi = b2 * v[j] + one_m_b2 * (d * d); m[j] = mi; v[j] = vi;
            float u = (mi * ibc1) / (sqrtf(vi) * ibc2s + eps) + dwd * x,
            x * x, u * u, 0.0f, tp, tu, unused);
    out->a = tp;
    out->b = tu;
}

static void lamb_moments_fn(const float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                            size_t n, const sgd__kargs *k, sgd__knorms *out)
{
    KSPLIT(k, lamb_moments_k(p, g, m, v, n, K_, out));
}

static void lamb_apply_fn(float *restrict p, const float *restrict m, const float *restrict v, size_t n,
                          const sgd__kargs *k)
{
    KLOCALS(k);
    const float ibc1 = k->c[4], ibc2s = k->c[5], eps = k->c[6], dwd = k->c[7];
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float u = (m[i] * ibc1) / (sqrtf(v[i]) * ibc2s + eps) + dwd * x;
        p[i] = x - lr * u;
    }
}

SGD__INLINE void norms_pg_k(const float *restrict p, const float *restrict g, size_t n, const sgd__kargs *k,
                            sgd__knorms *out)
{
    KLOCALS(k);
    double tp = 0.0, tg = 0.0, unused = 0.0;
    REDUCE3(n, float x = p[j]; float d = clipg(g[j], cv, gs), x * x, d * d, 0.0f, tp, tg, unused);
    out->a = tp;
    out->b = tg;
}

static void norms_pg_fn(const float *restrict p, const float *restrict g, size_t n, const sgd__kargs *k,
                        sgd__knorms *out)
{
    KSPLIT(k, norms_pg_k(p, g, n, K_, out));
}

SGD__INLINE void lars_body(const int first, float *restrict p, const float *restrict g, float *restrict buf, size_t n,
                           const sgd__kargs *k)
{
    KLOCALS(k);
    const float mom = k->c[0];
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float d = clipg(g[i], cv, gs) + wd * x;
        float b = first ? lr * d : mom * buf[i] + lr * d;
        buf[i] = b;
        p[i] = x - b;
    }
}

SGD__INLINE void lars_k(int first, float *p, const float *g, float *buf, size_t n, const sgd__kargs *k)
{
    if (first)
        lars_body(1, p, g, buf, n, k);
    else
        lars_body(0, p, g, buf, n, k);
}

static void lars_fn(int first, float *p, const float *g, float *buf, size_t n, const sgd__kargs *k)
{
    KSPLIT(k, lars_k(first, p, g, buf, n, K_));
}

/* ------------------------------------------------- learning-rate-free methods */

SGD__INLINE void dog_sums_k(int first, const float *restrict p, const float *restrict g, float *restrict x0, size_t n,
                            const sgd__kargs *k, sgd__knorms *out)
{
    KLOCALS(k);
    double ta = 0.0, tb = 0.0, tc = 0.0;
    if (first)
        REDUCE3(n, float x = p[j]; float d = clipg(g[j], cv, gs) + wd * x; x0[j] = x, x * x, 0.0f, d * d, ta, tb, tc);
    else
        REDUCE3(n, float x = p[j]; float d = clipg(g[j], cv, gs) + wd * x; float e = x - x0[j], x * x, e * e, d * d,
                ta, tb, tc);
    out->a = ta, out->b = tb, out->c = tc;
}

static void dog_sums_fn(int first, const float *restrict p, const float *restrict g, float *restrict x0, size_t n,
                        const sgd__kargs *k, sgd__knorms *out)
{
    KSPLIT(k, dog_sums_k(first, p, g, x0, n, K_, out));
}

SGD__INLINE void prodigy_acc_body(const int first, const int use_m, const float *restrict p, const float *restrict g,
                                  float *restrict p0, float *restrict s, float *restrict m, float *restrict v,
                                  size_t n, const sgd__kargs *k, sgd__knorms *out)
{
    KLOCALS(k);
    const float b1 = k->c[0], cm = k->c[1], b2 = k->c[2], cv2 = k->c[3], b3 = k->c[4], cs = k->c[5];
    double ta = 0.0, tb = 0.0, unused = 0.0;
    REDUCE3(n,
            float x = p[j]; float d = clipg(g[j], cv, gs) + wd * x; float x0 = first ? x : p0[j];
            if (first) p0[j] = x;
            if (use_m) m[j] = b1 * m[j] + cm * d;
            v[j] = b2 * v[j] + cv2 * (d * d); float si = b3 * s[j] + cs * d; s[j] = si,
            d * (x0 - x), fabsf(si), 0.0f, ta, tb, unused);
    out->a = ta, out->b = tb;
}

SGD__INLINE void prodigy_acc_k(int first, const float *p, const float *g, float *p0, float *s, float *m, float *v,
                               size_t n, const sgd__kargs *k, sgd__knorms *out)
{
    if (first)
        m ? prodigy_acc_body(1, 1, p, g, p0, s, m, v, n, k, out) : prodigy_acc_body(1, 0, p, g, p0, s, m, v, n, k, out);
    else
        m ? prodigy_acc_body(0, 1, p, g, p0, s, m, v, n, k, out) : prodigy_acc_body(0, 0, p, g, p0, s, m, v, n, k, out);
}

static void prodigy_acc_fn(int first, const float *p, const float *g, float *p0, float *s, float *m, float *v,
                           size_t n, const sgd__kargs *k, sgd__knorms *out)
{
    KSPLIT(k, prodigy_acc_k(first, p, g, p0, s, m, v, n, K_, out));
}

SGD__INLINE void prodigy_apply_body(const int use_m, float *restrict p, const float *restrict g,
                                    const float *restrict m, const float *restrict v, size_t n, const sgd__kargs *k)
{
    KLOCALS(k);
    const float deps = k->c[0], c = k->c[1];
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float denom = sqrtf(v[i]) + deps;
        float num = use_m ? m[i] : clipg(g[i], cv, gs) + wd * x;
        x = x * decay;
        p[i] = x - c * (num / denom);
    }
}

SGD__INLINE void prodigy_apply_k(float *p, const float *g, const float *m, const float *v, size_t n,
                                 const sgd__kargs *k)
{
    if (m != NULL)
        prodigy_apply_body(1, p, g, m, v, n, k);
    else
        prodigy_apply_body(0, p, g, m, v, n, k);
}

static void prodigy_apply_fn(float *p, const float *g, const float *m, const float *v, size_t n, const sgd__kargs *k)
{
    KSPLIT_DECAY(k, prodigy_apply_k(p, g, m, v, n, K_));
}

SGD__INLINE void dadam_acc_k(const float *restrict p, const float *restrict g, float *restrict s, float *restrict m,
                             float *restrict v, size_t n, const sgd__kargs *k, sgd__knorms *out)
{
    KLOCALS(k);
    const float b1 = k->c[0], cm = k->c[1], b2 = k->c[2], one_m_b2 = k->c[3], sb2 = k->c[4], cs = k->c[5],
                eps = k->c[6];
    double ta = 0.0, tb = 0.0, unused = 0.0;
    REDUCE3(n,
            float d = clipg(g[j], cv, gs) + wd * p[j]; float vi = v[j]; float si = s[j];
            float term = d * (si / (sqrtf(vi) + eps)); m[j] = b1 * m[j] + cm * d;
            v[j] = b2 * vi + one_m_b2 * (d * d); si = sb2 * si + cs * d; s[j] = si,
            term, fabsf(si), 0.0f, ta, tb, unused);
    out->a = ta, out->b = tb;
}

static void dadam_acc_fn(const float *restrict p, const float *restrict g, float *restrict s, float *restrict m,
                         float *restrict v, size_t n, const sgd__kargs *k, sgd__knorms *out)
{
    KSPLIT(k, dadam_acc_k(p, g, s, m, v, n, K_, out));
}

SGD__INLINE void dadam_apply_k(float *restrict p, const float *restrict m, const float *restrict v, size_t n,
                               const float decay, const float eps)
{
    for (size_t i = 0; i < n; i++) {
        float x = p[i] * decay;
        p[i] = x - m[i] / (sqrtf(v[i]) + eps);
    }
}

static void dadam_apply_fn(float *restrict p, const float *restrict m, const float *restrict v, size_t n,
                           const sgd__kargs *k)
{
    if (k->decay == 1.0f) /* as KSPLIT_DECAY: x * 1 is x */
        dadam_apply_k(p, m, v, n, 1.0f, k->c[6]);
    else
        dadam_apply_k(p, m, v, n, k->decay, k->c[6]);
}

SGD__INLINE void dsgd_acc_body(const int first, const float *restrict p, const float *restrict g, float *restrict s,
                               float *restrict x0, size_t n, const sgd__kargs *k, sgd__knorms *out)
{
    KLOCALS(k);
    const float dlr = k->c[0];
    double ta = 0.0, tb = 0.0, unused = 0.0;
    REDUCE3(n,
            float x = p[j]; float d = clipg(g[j], cv, gs) + wd * x;
            if (first) x0[j] = x;
            float si = s[j]; float term = d * si; si = si + dlr * d; s[j] = si,
            term, si * si, 0.0f, ta, tb, unused);
    out->a = ta, out->b = tb;
}

SGD__INLINE void dsgd_acc_k(int first, const float *p, const float *g, float *s, float *x0, size_t n,
                            const sgd__kargs *k, sgd__knorms *out)
{
    if (first)
        dsgd_acc_body(1, p, g, s, x0, n, k, out);
    else
        dsgd_acc_body(0, p, g, s, x0, n, k, out);
}

static void dsgd_acc_fn(int first, const float *p, const float *g, float *s, float *x0, size_t n, const sgd__kargs *k,
                        sgd__knorms *out)
{
    KSPLIT(k, dsgd_acc_k(first, p, g, s, x0, n, K_, out));
}

static void dsgd_apply_fn(float *restrict p, const float *restrict s, const float *restrict x0, size_t n,
                          const sgd__kargs *k)
{
    const float a = k->c[0], b = k->c[1];
    for (size_t i = 0; i < n; i++)
        p[i] = p[i] * a + (x0[i] - s[i]) * b;
}

/* torch's lerp: start + w (end - start) for |w| < 0.5, else end - (end - start) (1 - w). */
SGD__INLINE float lerpf(const int small, float a, float b, float w)
{
    return small ? a + w * (b - a) : b - (b - a) * (1.0f - w);
}

SGD__INLINE void sf_sgd_body(const int first, const int small, float *restrict p, const float *restrict g,
                             float *restrict z, size_t n, const sgd__kargs *k)
{
    KLOCALS(k);
    const float w = k->c[0], c = k->c[1];
    for (size_t i = 0; i < n; i++) {
        float y = p[i];
        float zi = first ? y : z[i];
        float d = clipg(g[i], cv, gs) + wd * y;
        y = lerpf(small, y, zi, w);
        p[i] = y + c * d;
        z[i] = zi - lr * d;
    }
}

SGD__INLINE void sf_sgd_k(int first, float *p, const float *g, float *z, size_t n, const sgd__kargs *k)
{
    int small = k->c[2] != 0.0f;
    if (first)
        small ? sf_sgd_body(1, 1, p, g, z, n, k) : sf_sgd_body(1, 0, p, g, z, n, k);
    else
        small ? sf_sgd_body(0, 1, p, g, z, n, k) : sf_sgd_body(0, 0, p, g, z, n, k);
}

static void sf_sgd_fn(int first, float *p, const float *g, float *z, size_t n, const sgd__kargs *k)
{
    KSPLIT(k, sf_sgd_k(first, p, g, z, n, K_));
}

SGD__INLINE void sf_adamw_body(const int first, const int small, float *restrict p, const float *restrict g,
                               float *restrict z, float *restrict v, size_t n, const sgd__kargs *k)
{
    KLOCALS(k);
    const float w = k->c[0], c = k->c[1], b2 = k->c[3], one_m_b2 = k->c[4], ibc2 = k->c[5], eps = k->c[6],
                dwd = k->c[7];
    for (size_t i = 0; i < n; i++) {
        float y = p[i];
        float zi = first ? y : z[i];
        float d = clipg(g[i], cv, gs) + wd * y;
        float vi = b2 * v[i] + one_m_b2 * (d * d);
        v[i] = vi;
        float u = d / (sqrtf(vi * ibc2) + eps) + dwd * y;
        y = lerpf(small, y, zi, w);
        p[i] = y + c * u;
        z[i] = zi - lr * u;
    }
}

SGD__INLINE void sf_adamw_k(int first, float *p, const float *g, float *z, float *v, size_t n, const sgd__kargs *k)
{
    int small = k->c[2] != 0.0f;
    if (first)
        small ? sf_adamw_body(1, 1, p, g, z, v, n, k) : sf_adamw_body(1, 0, p, g, z, v, n, k);
    else
        small ? sf_adamw_body(0, 1, p, g, z, v, n, k) : sf_adamw_body(0, 0, p, g, z, v, n, k);
}

static void sf_adamw_fn(int first, float *p, const float *g, float *z, float *v, size_t n, const sgd__kargs *k)
{
    KSPLIT(k, sf_adamw_k(first, p, g, z, v, n, K_));
}

static void lerp_to_fn(float *restrict p, const float *restrict z, size_t n, const sgd__kargs *k)
{
    const float w = k->c[0];
    if (k->c[2] != 0.0f)
        for (size_t i = 0; i < n; i++)
            p[i] = lerpf(1, p[i], z[i], w);
    else
        for (size_t i = 0; i < n; i++)
            p[i] = lerpf(0, p[i], z[i], w);
}

const sgd__ktab SGD_KTAB = {
    .level = SGD_KLEVEL,
    .scan = scan_fn,
    .scan_exact = scan_exact_fn,
    .clip_copy = clip_copy_fn,
    .sgd = sgd_fn,
    .adagrad = adagrad_fn,
    .rmsprop = rmsprop_fn,
    .adam = adam_fn,
    .adamax = adamax_fn,
    .nadam = nadam_fn,
    .radam = radam_fn,
    .adadelta = adadelta_fn,
    .rprop = rprop_fn,
    .asgd = asgd_fn,
    .lion = lion_fn,
    .lamb_moments = lamb_moments_fn,
    .lamb_apply = lamb_apply_fn,
    .norms_pg = norms_pg_fn,
    .lars = lars_fn,
    .dog_sums = dog_sums_fn,
    .prodigy_acc = prodigy_acc_fn,
    .prodigy_apply = prodigy_apply_fn,
    .dadam_acc = dadam_acc_fn,
    .dadam_apply = dadam_apply_fn,
    .dsgd_acc = dsgd_acc_fn,
    .dsgd_apply = dsgd_apply_fn,
    .sf_sgd = sf_sgd_fn,
    .sf_adamw = sf_adamw_fn,
    .lerp_to = lerp_to_fn,
};
