/*
 * The optimizers' hot loops: each one fused pass over n floats, written so
 * that the compiler vectorises it (restrict pointers, no calls, no branches
 * that depend on data other than selects). Never -ffast-math: the scan must
 * see NaN and infinity. SPDX-License-Identifier: MIT
 */
#include "optim_internal.h"

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

#if defined(__GNUC__)
#define SGD__INLINE static inline __attribute__((always_inline))
#else
#define SGD__INLINE static inline
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SGD__KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SGD__KERNEL
#endif

/* clamp(g, -cv, cv) * gs; NaN passes through (both comparisons are false). */
SGD__INLINE float clipg(float g, sgd__kgrad kg)
{
    g = g < -kg.cv ? -kg.cv : g;
    g = g > kg.cv ? kg.cv : g;
    return g * kg.gs;
}

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

#if defined(__GNUC__)
/*
 * GNU vector extensions: 4 independent accumulators of 16 lanes for the sums
 * of squares (one chain of float adds would limit the scan to about 40 GB/s,
 * less than the caches deliver) and one for the maximum. Macros, not
 * functions: no vector crosses a call. The maximum is NaN-blind only in
 * part, which does not matter: a NaN sends the step to
 * sgd__grad_scan_exact(), which recomputes it.
 */
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
#define SCAN_STEP 64
/* |x| */
#define VABS(x) ((v16f)((v16i)(x) & 0x7fffffff))
/* lane by lane a > b ? a : b (b where a is NaN); mask: a v16i temporary */
#define VMAX(a, b, mask) ((mask) = (a) > (b), (v16f)(((mask) & (v16i)(a)) | (~(mask) & (v16i)(b))))
/* lane by lane a > b ? b : a (a where a is NaN) */
#define VMIN(a, b, mask) ((mask) = (a) > (b), (v16f)(((mask) & (v16i)(b)) | (~(mask) & (v16i)(a))))

SGD__INLINE void scan_all(const float *g, size_t n, float cv, int clip, sgd__gradstat *out)
{
    double tsq = 0.0, tsqc = 0.0;
    const v16f vcv = (v16f){0} + cv;
    v16f mx = {0};
    v16i t0, t1, t2;
    for (size_t off = 0; off < n; off += SCAN_BLOCK) {
        const size_t len = n - off < SCAN_BLOCK ? n - off : SCAN_BLOCK;
        const float *p = g + off;
        v16f s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
        size_t i = 0;
        for (; i + SCAN_STEP <= len; i += SCAN_STEP) {
            v16f x0, x1, x2, x3;
            memcpy(&x0, p + i, sizeof x0);
            memcpy(&x1, p + i + 16, sizeof x1);
            memcpy(&x2, p + i + 32, sizeof x2);
            memcpy(&x3, p + i + 48, sizeof x3);
            s0 += x0 * x0, s1 += x1 * x1, s2 += x2 * x2, s3 += x3 * x3;
            const v16f a0 = VABS(x0), a1 = VABS(x1), a2 = VABS(x2), a3 = VABS(x3);
            for (int l = 0; l < 16; l++) { /* written as scalars: GCC maps these selects onto max instructions */
                float m01 = a0[l] > a1[l] ? a0[l] : a1[l], m23 = a2[l] > a3[l] ? a2[l] : a3[l];
                float m = m01 > m23 ? m01 : m23;
                mx[l] = m > mx[l] ? m : mx[l];
            }
            if (clip) { /* min(|x|, cv), squared */
                const v16f k0 = VMIN(a0, vcv, t0), k1 = VMIN(a1, vcv, t1), k2 = VMIN(a2, vcv, t2),
                           k3 = VMIN(a3, vcv, t0);
                c0 += k0 * k0, c1 += k1 * k1, c2 += k2 * k2, c3 += k3 * k3;
            }
        }
        float s = 0.0f, sc = 0.0f, m = 0.0f;
        const v16f ss = (s0 + s1) + (s2 + s3), cc = (c0 + c1) + (c2 + c3);
        for (int l = 0; l < 16; l++)
            s += ss[l], sc += cc[l];
        for (; i < len; i++) { /* the block's tail, one at a time */
            float x = p[i], a = fabsf(x);
            s += x * x;
            m = a > m ? a : m;
            if (clip) {
                float c = a > cv ? cv : a;
                sc += c * c;
            }
        }
        mx = VMAX((v16f){0} + m, mx, t0);
        tsq += s;
        tsqc += sc;
    }
    float m = 0.0f;
    for (int l = 0; l < 16; l++)
        m = mx[l] > m ? mx[l] : m;
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

SGD__KERNEL static void scan_noclip(const float *g, size_t n, sgd__gradstat *out)
{
    scan_all(g, n, 0.0f, 0, out);
}

SGD__KERNEL static void scan_clip(const float *g, size_t n, float cv, sgd__gradstat *out)
{
    scan_all(g, n, cv, 1, out);
}

void sgd__grad_scan(const float *g, size_t n, float clip_value, sgd__gradstat *out)
{
    if (clip_value > 0.0f)
        scan_clip(g, n, clip_value, out);
    else
        scan_noclip(g, n, out);
}

SGD__KERNEL size_t sgd__grad_scan_exact(const float *g, size_t n, float clip_value, sgd__gradstat *out)
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

/* ------------------------------------------------------------------- SGD */

SGD__INLINE void sgd_body(const int mode, float *restrict p, const float *restrict g, float *restrict buf,
                          size_t n, sgd__kgrad kg, float lr, float wd, float mom, float damp1)
{
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float d = clipg(g[i], kg) + wd * x;
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

SGD__KERNEL void sgd__k_sgd(int mode, float *p, const float *g, float *buf, size_t n, sgd__kgrad kg, float lr, float wd,
                float momentum, float one_minus_dampening)
{
    switch (mode) {
    case SGD__SGD_MOM_FIRST:
        sgd_body(SGD__SGD_MOM_FIRST, p, g, buf, n, kg, lr, wd, momentum, one_minus_dampening);
        break;
    case SGD__SGD_MOM:
        sgd_body(SGD__SGD_MOM, p, g, buf, n, kg, lr, wd, momentum, one_minus_dampening);
        break;
    case SGD__SGD_NEST_FIRST:
        sgd_body(SGD__SGD_NEST_FIRST, p, g, buf, n, kg, lr, wd, momentum, one_minus_dampening);
        break;
    case SGD__SGD_NEST:
        sgd_body(SGD__SGD_NEST, p, g, buf, n, kg, lr, wd, momentum, one_minus_dampening);
        break;
    default:
        sgd_body(SGD__SGD_PLAIN, p, g, buf, n, kg, lr, wd, momentum, one_minus_dampening);
        break;
    }
}

/* --------------------------------------------------------------- Adagrad */

SGD__KERNEL void sgd__k_adagrad(float *restrict p, const float *restrict g, float *restrict sum, size_t n, sgd__kgrad kg,
                    float clr, float wd, float eps)
{
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float d = clipg(g[i], kg) + wd * x;
        float s = sum[i] + d * d;
        sum[i] = s;
        p[i] = x - clr * (d / (sqrtf(s) + eps));
    }
}

/* --------------------------------------------------------------- RMSprop */

SGD__INLINE void rms_body(const int centered, const int use_mom, float *restrict p, const float *restrict g,
                          float *restrict sq, float *restrict ga, float *restrict buf, size_t n, sgd__kgrad kg,
                          float lr, float wd, float alpha, float one_m_alpha, float eps, float mom)
{
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float d = clipg(g[i], kg) + wd * x;
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

SGD__KERNEL void sgd__k_rmsprop(float *p, const float *g, float *square_avg, float *grad_avg, float *buf, size_t n,
                    sgd__kgrad kg, float lr, float wd, float alpha, float one_minus_alpha, float eps, float momentum)
{
    if (grad_avg != NULL) {
        if (buf != NULL)
            rms_body(1, 1, p, g, square_avg, grad_avg, buf, n, kg, lr, wd, alpha, one_minus_alpha, eps, momentum);
        else
            rms_body(1, 0, p, g, square_avg, grad_avg, buf, n, kg, lr, wd, alpha, one_minus_alpha, eps, momentum);
    } else {
        if (buf != NULL)
            rms_body(0, 1, p, g, square_avg, grad_avg, buf, n, kg, lr, wd, alpha, one_minus_alpha, eps, momentum);
        else
            rms_body(0, 0, p, g, square_avg, grad_avg, buf, n, kg, lr, wd, alpha, one_minus_alpha, eps, momentum);
    }
}

/* ------------------------------------------------------------------ Adam */

SGD__INLINE void adam_body(const int ams, float *restrict p, const float *restrict g, float *restrict m,
                           float *restrict v, float *restrict vmax, size_t n, sgd__kgrad kg, float decay, float l2,
                           float b1, float one_m_b1, float b2, float one_m_b2, float step_size, float inv_bc2s,
                           float eps)
{
    for (size_t i = 0; i < n; i++) {
        float x = p[i];
        float d = clipg(g[i], kg) + l2 * x;
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

SGD__KERNEL void sgd__k_adam(float *p, const float *g, float *m, float *v, float *max_sq, size_t n, sgd__kgrad kg,
                 float decay, float l2, float beta1, float one_minus_beta1, float beta2, float one_minus_beta2,
                 float step_size, float inv_bc2_sqrt, float eps)
{
    if (max_sq != NULL)
        adam_body(1, p, g, m, v, max_sq, n, kg, decay, l2, beta1, one_minus_beta1, beta2, one_minus_beta2,
                  step_size, inv_bc2_sqrt, eps);
    else
        adam_body(0, p, g, m, v, max_sq, n, kg, decay, l2, beta1, one_minus_beta1, beta2, one_minus_beta2,
                  step_size, inv_bc2_sqrt, eps);
}

/* ------------------------------------------------------------- clip copy */

SGD__KERNEL void sgd__k_clip_copy(float *restrict out, const float *restrict g, size_t n, float cv, float scale)
{
    sgd__kgrad kg = {cv, scale};
    for (size_t i = 0; i < n; i++)
        out[i] = clipg(g[i], kg);
}
