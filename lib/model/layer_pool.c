/*
 * Pooling over [C, H, W] samples: maxpool2d (torch.nn.MaxPool2d: the first
 * largest value of each window, NaN winning as in torch, its position saved
 * for the backward pass), avgpool2d (torch.nn.AvgPool2d with its default
 * count_include_pad=True: zeros of the padding count), and global_avgpool2d
 * (torch.nn.AdaptiveAvgPool2d(1): the mean of each channel, [C, 1, 1]);
 * and flatten (torch.nn.Flatten), the reshape that usually follows them: a
 * view of its input, no copy.
 * SPDX-License-Identifier: MIT
 */
#include "model/layer.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum { K = 0, STRIDE = 1, PAD = 2, N_ARGS = 3 };

/* stride's default is kernel_size: 0 stands for it. */
static const sgd__argdef args[N_ARGS] = {
    {"kernel_size", SGD__ARG_INT, true, 0, 1, 65536},
    {"stride", SGD__ARG_INT, false, 0, 1, 65536},
    {"padding", SGD__ARG_INT, false, 0, 0, 65536},
};

static sgd_status parse(sgd__layer *l, const sgd__lspec *c)
{
    double v[N_ARGS];
    char usage[96];
    snprintf(usage, sizeof usage, "%s(kernel_size, stride=kernel_size, padding=0)", l->op->name);
    sgd_status st = sgd__largs_parse(c, args, N_ARGS, v, usage);
    if (st != SGD_OK)
        return st;
    l->ia[K] = (int64_t)v[K];
    l->ia[STRIDE] = v[STRIDE] == 0 ? l->ia[K] : (int64_t)v[STRIDE];
    l->ia[PAD] = (int64_t)v[PAD];
    if (2 * l->ia[PAD] > l->ia[K])
        return sgd__lspec_err(c, SGD_EINVAL, "padding=%lld: must be at most half of kernel_size=%lld (as torch)",
                              (long long)l->ia[PAD], (long long)l->ia[K]);
    return SGD_OK;
}

static int print(const sgd__layer *l, char *buf, size_t n)
{
    double v[N_ARGS] = {(double)l->ia[K], l->ia[STRIDE] == l->ia[K] ? 0.0 : (double)l->ia[STRIDE],
                        (double)l->ia[PAD]};
    return sgd__largs_print(buf, n, l->op->name, args, N_ARGS, v);
}

static sgd_status shape(sgd__layer *l, const char *fn)
{
    sgd_status st = sgd__need_image(l, fn);
    if (st != SGD_OK)
        return st;
    int64_t ho, wo;
    if ((st = sgd__pool_dims(l, l->ia[K], l->ia[STRIDE], l->ia[PAD], 1, &ho, &wo, fn)) != SGD_OK)
        return st;
    l->out = (sgd__shape){3, {l->in.d[0], ho, wo}};
    return SGD_OK;
}

/*
 * What maxpool keeps of each output for its backward pass: the position of
 * the window's maximum inside the window (row * kernel_size + column), one
 * byte when a window has at most 256 cells, else its index in the input plane
 * (int32).
 */
static bool small_window(const sgd__layer *l)
{
    return l->ia[K] * l->ia[K] <= 256;
}

static bool workspace_max(const sgd__layer *l, int64_t batch, size_t *bytes)
{
    size_t n;
    return sgd__mul_size((size_t)batch, (size_t)sgd__shape_numel(&l->out), &n) &&
           sgd__mul_size(n, small_window(l) ? sizeof(uint8_t) : sizeof(int32_t), bytes);
}

static bool is_2x2(const sgd__layer *l)
{
    return l->ia[K] == 2 && l->ia[STRIDE] == 2 && l->ia[PAD] == 0;
}

/*
 * 2x2 windows, stride 2, no padding (the common case), one output row: no
 * bounds to test and no branches. The first largest value of a window wins,
 * and the first NaN, in torch's scan order (row by row): the maximum of the
 * window's first row unless its second row's maximum is larger (or a NaN
 * where the first row has none).
 */
static inline bool takes(float v, float best)
{
    return v > best || (v != v && best == best);
}

static void max_2x2_row(const float *restrict r0, const float *restrict r1, float *restrict y,
                        uint8_t *restrict code, int64_t Wo)
{
    int64_t ow = 0;
#if defined(__SSE2__)
    const __m128i one = _mm_set1_epi32(1), two = _mm_set1_epi32(2);
    /* Four outputs at a time; the last four overlap the ones before (computed again, the same). */
    for (int64_t at = 0; Wo >= 4 && at < Wo; at += 4) {
        ow = at + 4 <= Wo ? at : Wo - 4;
        __m128 a = _mm_loadu_ps(r0 + 2 * ow), b = _mm_loadu_ps(r0 + 2 * ow + 4);
        __m128 c = _mm_loadu_ps(r1 + 2 * ow), d = _mm_loadu_ps(r1 + 2 * ow + 4);
        __m128 e0 = _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), o0 = _mm_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
        __m128 e1 = _mm_shuffle_ps(c, d, _MM_SHUFFLE(2, 0, 2, 0)), o1 = _mm_shuffle_ps(c, d, _MM_SHUFFLE(3, 1, 3, 1));
        /* takes(v, best): v > best, or v is NaN and best is not. */
        __m128 t0 = _mm_or_ps(_mm_cmpgt_ps(o0, e0), _mm_andnot_ps(_mm_cmpunord_ps(e0, e0), _mm_cmpunord_ps(o0, o0)));
        __m128 t1 = _mm_or_ps(_mm_cmpgt_ps(o1, e1), _mm_andnot_ps(_mm_cmpunord_ps(e1, e1), _mm_cmpunord_ps(o1, o1)));
        __m128 p0 = _mm_or_ps(_mm_and_ps(t0, o0), _mm_andnot_ps(t0, e0));
        __m128 p1 = _mm_or_ps(_mm_and_ps(t1, o1), _mm_andnot_ps(t1, e1));
        __m128 t = _mm_or_ps(_mm_cmpgt_ps(p1, p0), _mm_andnot_ps(_mm_cmpunord_ps(p0, p0), _mm_cmpunord_ps(p1, p1)));
        _mm_storeu_ps(y + ow, _mm_or_ps(_mm_and_ps(t, p1), _mm_andnot_ps(t, p0)));
        __m128i c0 = _mm_and_si128(_mm_castps_si128(t0), one);
        __m128i c1 = _mm_add_epi32(two, _mm_and_si128(_mm_castps_si128(t1), one));
        __m128i ti = _mm_castps_si128(t);
        __m128i cc = _mm_or_si128(_mm_and_si128(ti, c1), _mm_andnot_si128(ti, c0));
        cc = _mm_packus_epi16(_mm_packs_epi32(cc, cc), cc);
        int32_t packed = _mm_cvtsi128_si32(cc);
        memcpy(code + ow, &packed, sizeof packed);
    }
    ow = Wo >= 4 ? Wo : 0;
#endif
    for (; ow < Wo; ow++) {
        float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
        bool t0 = takes(b, a), t1 = takes(d, c);
        float p0 = t0 ? b : a, p1 = t1 ? d : c;
        bool t = takes(p1, p0);
        y[ow] = t ? p1 : p0;
        code[ow] = (uint8_t)(t ? 2 + t1 : t0);
    }
}

/* The gradient rows of one output row: each input gets its window's gradient if it was the maximum, else 0. */
static void max_2x2_row_back(const float *restrict g, const uint8_t *restrict code, float *restrict r0,
                             float *restrict r1, int64_t Wo)
{
    int64_t ow = 0;
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    /* As max_2x2_row: the last four overlap (written again, the same). */
    for (int64_t at = 0; Wo >= 4 && at < Wo; at += 4) {
        ow = at + 4 <= Wo ? at : Wo - 4;
        int32_t packed;
        memcpy(&packed, code + ow, sizeof packed);
        __m128i c = _mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(packed), zero), zero);
        __m128 v = _mm_loadu_ps(g + ow);
        __m128 v0 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(c, _mm_set1_epi32(0))), v);
        __m128 v1 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(c, _mm_set1_epi32(1))), v);
        __m128 v2 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(c, _mm_set1_epi32(2))), v);
        __m128 v3 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(c, _mm_set1_epi32(3))), v);
        _mm_storeu_ps(r0 + 2 * ow, _mm_unpacklo_ps(v0, v1));
        _mm_storeu_ps(r0 + 2 * ow + 4, _mm_unpackhi_ps(v0, v1));
        _mm_storeu_ps(r1 + 2 * ow, _mm_unpacklo_ps(v2, v3));
        _mm_storeu_ps(r1 + 2 * ow + 4, _mm_unpackhi_ps(v2, v3));
    }
    ow = Wo >= 4 ? Wo : 0;
#endif
    for (; ow < Wo; ow++) {
        float v = g[ow];
        uint8_t c = code[ow];
        r0[2 * ow] = c == 0 ? v : 0.0f;
        r0[2 * ow + 1] = c == 1 ? v : 0.0f;
        r1[2 * ow] = c == 2 ? v : 0.0f;
        r1[2 * ow + 1] = c == 3 ? v : 0.0f;
    }
}

/* One plane of any window: the first largest value (or the first NaN) in row-major order. */
static void max_plane_any(const sgd__layer *l, const float *xp, float *yp, void *saved)
{
    int64_t H = l->in.d[1], W = l->in.d[2], Ho = l->out.d[1], Wo = l->out.d[2];
    int64_t k = l->ia[K], s = l->ia[STRIDE], pad = l->ia[PAD];
    bool small = small_window(l);
    for (int64_t oh = 0; oh < Ho; oh++)
        for (int64_t ow = 0; ow < Wo; ow++) {
            float best = -INFINITY;
            int64_t at = -1, code = 0;
            for (int64_t i = oh * s - pad; i < oh * s - pad + k; i++) {
                if (i < 0 || i >= H)
                    continue;
                for (int64_t j = ow * s - pad; j < ow * s - pad + k; j++) {
                    if (j < 0 || j >= W)
                        continue;
                    float v = xp[i * W + j];
                    if (at < 0 || takes(v, best)) {
                        best = v;
                        at = i * W + j;
                        code = (i - (oh * s - pad)) * k + (j - (ow * s - pad));
                    }
                }
            }
            yp[oh * Wo + ow] = best;
            if (small)
                ((uint8_t *)saved)[oh * Wo + ow] = (uint8_t)code;
            else
                ((int32_t *)saved)[oh * Wo + ow] = (int32_t)at;
        }
}

static void *saved_of(const sgd__layer *l, int64_t plane)
{
    size_t at = (size_t)plane * (size_t)(l->out.d[1] * l->out.d[2]);
    return small_window(l) ? (void *)((uint8_t *)l->ws + at) : (void *)((int32_t *)l->ws + at);
}

static void plane_forward_max(sgd__layer *l, const float *src, int64_t plane)
{
    int64_t W = l->in.d[2], Ho = l->out.d[1], Wo = l->out.d[2];
    float *yp = l->buf + (size_t)plane * (size_t)(Ho * Wo);
    if (is_2x2(l)) {
        uint8_t *cp = saved_of(l, plane);
        for (int64_t oh = 0; oh < Ho; oh++)
            max_2x2_row(src + (size_t)(2 * oh * W), src + (size_t)((2 * oh + 1) * W), yp + (size_t)(oh * Wo),
                        cp + (size_t)(oh * Wo), Wo);
        return;
    }
    max_plane_any(l, src, yp, saved_of(l, plane));
}

static void plane_backward_max(const sgd__layer *l, const float *g, float *dst, int64_t plane)
{
    int64_t H = l->in.d[1], W = l->in.d[2], Ho = l->out.d[1], Wo = l->out.d[2];
    const void *saved = saved_of(l, plane);
    if (is_2x2(l)) {
        /* Every input of the windows is written once; a last odd row or column, in no window, is 0. */
        const uint8_t *cp = saved;
        for (int64_t oh = 0; oh < Ho; oh++) {
            float *r0 = dst + (size_t)(2 * oh * W), *r1 = r0 + W;
            max_2x2_row_back(g + (size_t)(oh * Wo), cp + (size_t)(oh * Wo), r0, r1, Wo);
            if (W % 2 != 0)
                r0[W - 1] = r1[W - 1] = 0.0f;
        }
        if (H % 2 != 0)
            memset(dst + (size_t)((H - 1) * W), 0, (size_t)W * sizeof(float));
        return;
    }
    memset(dst, 0, (size_t)(H * W) * sizeof(float));
    if (!small_window(l)) {
        const int32_t *ap = saved;
        for (int64_t j = 0; j < Ho * Wo; j++)
            dst[ap[j]] += g[j];
        return;
    }
    const uint8_t *cp = saved;
    int64_t k = l->ia[K], s = l->ia[STRIDE], pad = l->ia[PAD];
    for (int64_t oh = 0; oh < Ho; oh++)
        for (int64_t ow = 0; ow < Wo; ow++) {
            int64_t c = cp[oh * Wo + ow], i = oh * s - pad + c / k, j = ow * s - pad + c % k;
            dst[i * W + j] += g[oh * Wo + ow];
        }
}

static sgd_status forward_max(sgd__layer *l, const float *x, const sgd__pass *p)
{
    l->y = l->buf;
    if (l->plane_fused) /* computed by the producing layer's pass */
        return SGD_OK;
    int64_t HW = l->in.d[1] * l->in.d[2], planes = p->batch * l->in.d[0];
    for (int64_t c = 0; c < planes; c++)
        plane_forward_max(l, x + (size_t)(c * HW), c);
    return SGD_OK;
}

static float *backward_max(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, const sgd__pass *p)
{
    (void)x;
    if (!need_gx)
        return NULL;
    if (l->plane_fused) /* the producing layer's backward takes the gradient of this output */
        return g;
    int64_t HW = l->in.d[1] * l->in.d[2], HWo = l->out.d[1] * l->out.d[2], planes = p->batch * l->in.d[0];
    for (int64_t c = 0; c < planes; c++)
        plane_backward_max(l, g + (size_t)(c * HWo), gx + (size_t)(c * HW), c);
    return gx;
}

const sgd__layer_op sgd__op_maxpool2d = {
    .kind = SGD_LAYER_MAXPOOL2D,
    .name = "maxpool2d",
    .parse = parse,
    .print = print,
    .shape = shape,
    .workspace = workspace_max,
    .forward = forward_max,
    .backward = backward_max,
    .plane_forward = plane_forward_max,
    .plane_backward = plane_backward_max,
};

/* ---------------------------------------------------------------- average */

static sgd_status forward_avg(sgd__layer *l, const float *x, const sgd__pass *p)
{
    int64_t H = l->in.d[1], W = l->in.d[2], Ho = l->out.d[1], Wo = l->out.d[2];
    int64_t k = l->ia[K], s = l->ia[STRIDE], pad = l->ia[PAD], planes = p->batch * l->in.d[0];
    float inv = 1.0f / (float)(k * k);
    for (int64_t c = 0; c < planes; c++) {
        const float *xp = x + (size_t)(c * H * W);
        float *yp = l->buf + (size_t)(c * Ho * Wo);
        for (int64_t oh = 0; oh < Ho; oh++)
            for (int64_t ow = 0; ow < Wo; ow++) {
                float sum = 0.0f;
                for (int64_t i = oh * s - pad; i < oh * s - pad + k; i++) {
                    if (i < 0 || i >= H)
                        continue;
                    for (int64_t j = ow * s - pad; j < ow * s - pad + k; j++)
                        if (j >= 0 && j < W)
                            sum += xp[i * W + j];
                }
                yp[oh * Wo + ow] = sum * inv;
            }
    }
    l->y = l->buf;
    return SGD_OK;
}

static float *backward_avg(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, const sgd__pass *p)
{
    (void)x;
    if (!need_gx)
        return NULL;
    int64_t H = l->in.d[1], W = l->in.d[2], Ho = l->out.d[1], Wo = l->out.d[2];
    int64_t k = l->ia[K], s = l->ia[STRIDE], pad = l->ia[PAD], planes = p->batch * l->in.d[0];
    float inv = 1.0f / (float)(k * k);
    memset(gx, 0, (size_t)(planes * H * W) * sizeof(float));
    for (int64_t c = 0; c < planes; c++) {
        float *gp = gx + (size_t)(c * H * W);
        const float *go = g + (size_t)(c * Ho * Wo);
        for (int64_t oh = 0; oh < Ho; oh++)
            for (int64_t ow = 0; ow < Wo; ow++) {
                float v = go[oh * Wo + ow] * inv;
                for (int64_t i = oh * s - pad; i < oh * s - pad + k; i++) {
                    if (i < 0 || i >= H)
                        continue;
                    for (int64_t j = ow * s - pad; j < ow * s - pad + k; j++)
                        if (j >= 0 && j < W)
                            gp[i * W + j] += v;
                }
            }
    }
    return gx;
}

const sgd__layer_op sgd__op_avgpool2d = {
    .kind = SGD_LAYER_AVGPOOL2D,
    .name = "avgpool2d",
    .parse = parse,
    .print = print,
    .shape = shape,
    .forward = forward_avg,
    .backward = backward_avg,
};

/* ---------------------------------------------------------------- global average */

static sgd_status shape_global(sgd__layer *l, const char *fn)
{
    sgd_status st = sgd__need_image(l, fn);
    if (st != SGD_OK)
        return st;
    l->out = (sgd__shape){3, {l->in.d[0], 1, 1}};
    return SGD_OK;
}

static sgd_status forward_global(sgd__layer *l, const float *x, const sgd__pass *p)
{
    int64_t HW = l->in.d[1] * l->in.d[2], planes = p->batch * l->in.d[0];
    for (int64_t c = 0; c < planes; c++) {
        const float *xp = x + (size_t)(c * HW);
        double s = 0.0;
        for (int64_t j = 0; j < HW; j++)
            s += xp[j];
        l->buf[c] = (float)(s / (double)HW);
    }
    l->y = l->buf;
    return SGD_OK;
}

static float *backward_global(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx,
                              const sgd__pass *p)
{
    (void)x;
    if (!need_gx)
        return NULL;
    int64_t HW = l->in.d[1] * l->in.d[2], planes = p->batch * l->in.d[0];
    float inv = 1.0f / (float)HW;
    for (int64_t c = 0; c < planes; c++) {
        float v = g[c] * inv, *gp = gx + (size_t)(c * HW);
        for (int64_t j = 0; j < HW; j++)
            gp[j] = v;
    }
    return gx;
}

const sgd__layer_op sgd__op_global_avgpool2d = {
    .kind = SGD_LAYER_GLOBAL_AVGPOOL2D,
    .name = "global_avgpool2d",
    .parse = sgd__layer_parse_noargs,
    .print = sgd__layer_print_name,
    .shape = shape_global,
    .forward = forward_global,
    .backward = backward_global,
};

/* ---------------------------------------------------------------- flatten */

static sgd_status shape_flatten(sgd__layer *l, const char *fn)
{
    (void)fn;
    l->out = sgd__shape_vec(sgd__shape_numel(&l->in));
    return SGD_OK;
}

/* A view: the output is the input, row-major as it is. */
static sgd_status forward_flatten(sgd__layer *l, const float *x, const sgd__pass *p)
{
    (void)p;
    l->y = x;
    return SGD_OK;
}

static float *backward_flatten(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx,
                               const sgd__pass *p)
{
    (void)l;
    (void)x;
    (void)gx;
    (void)p;
    return need_gx ? g : NULL;
}

const sgd__layer_op sgd__op_flatten = {
    .kind = SGD_LAYER_FLATTEN,
    .name = "flatten",
    .flags = SGD__OP_NO_BUFFER,
    .parse = sgd__layer_parse_noargs,
    .print = sgd__layer_print_name,
    .shape = shape_flatten,
    .forward = forward_flatten,
    .backward = backward_flatten,
};
