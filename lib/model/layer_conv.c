/*
 * conv2d (torch.nn.Conv2d): out_channels, kernel_size (square), stride,
 * padding (zeros), dilation, groups, bias, over [C, H, W] samples. Through
 * im2col and cblas_sgemm: the columns of every sample are kept from the
 * forward pass for the weight gradient; the input gradient is W^T G folded
 * back by col2im. A 1x1 convolution with stride 1 and no padding multiplies
 * the input itself. A fusable activation after it (ReLU) is applied in place.
 * SPDX-License-Identifier: MIT
 */
#include "model/kernels.h"
#include "model/layer.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>

enum { OUT = 0, K = 1, STRIDE = 2, PAD = 3, DIL = 4, GROUPS = 5, BIAS = 6, N_ARGS = 7 };

static const sgd__argdef args[N_ARGS] = {
    {"out_channels", SGD__ARG_INT, true, 0, 1, 16777216},
    {"kernel_size", SGD__ARG_INT, true, 0, 1, 65536},
    {"stride", SGD__ARG_INT, false, 1, 1, 65536},
    {"padding", SGD__ARG_INT, false, 0, 0, 65536},
    {"dilation", SGD__ARG_INT, false, 1, 1, 65536},
    {"groups", SGD__ARG_INT, false, 1, 1, 16777216},
    {"bias", SGD__ARG_BOOL, false, 1, 0, 1},
};

static const char usage[] =
    "conv2d(out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=1)";

static sgd_status parse(sgd__layer *l, const sgd__lspec *c)
{
    double v[N_ARGS];
    sgd_status st = sgd__largs_parse(c, args, N_ARGS, v, usage);
    if (st != SGD_OK)
        return st;
    for (int i = 0; i < N_ARGS; i++)
        l->ia[i] = (int64_t)v[i];
    return SGD_OK;
}

static int print(const sgd__layer *l, char *buf, size_t n)
{
    double v[N_ARGS];
    for (int i = 0; i < N_ARGS; i++)
        v[i] = (double)l->ia[i];
    return sgd__largs_print(buf, n, "conv2d", args, N_ARGS, v);
}

static sgd_status shape(sgd__layer *l, const char *fn)
{
    sgd_status st = sgd__need_image(l, fn);
    if (st != SGD_OK)
        return st;
    int64_t C = l->in.d[0], g = l->ia[GROUPS];
    char in[SGD__SHAPE_BUF];
    sgd__shape_str(&l->in, in, sizeof in);
    if (C % g != 0 || l->ia[OUT] % g != 0)
        return sgd__err(SGD_EINVAL, "%s: conv2d: groups=%lld must divide the input channels (%lld, input %s) and "
                        "out_channels (%lld)", fn, (long long)g, (long long)C, in, (long long)l->ia[OUT]);
    int64_t ho, wo;
    if ((st = sgd__pool_dims(l, l->ia[K], l->ia[STRIDE], l->ia[PAD], l->ia[DIL], &ho, &wo, fn)) != SGD_OK)
        return st;
    l->out = (sgd__shape){3, {l->ia[OUT], ho, wo}};
    return SGD_OK;
}

static size_t tensors(const sgd__layer *l, sgd__tdesc *d)
{
    int64_t O = l->ia[OUT], k = l->ia[K], cg = l->in.d[0] / l->ia[GROUPS];
    d[0] = (sgd__tdesc){"weight", SGD__ROLE_PARAM, SGD_PARAM_WEIGHT, SGD_DTYPE_F32, 4, {O, cg, k, k}};
    if (!l->ia[BIAS])
        return 1;
    d[1] = (sgd__tdesc){"bias", SGD__ROLE_PARAM, SGD_PARAM_BIAS, SGD_DTYPE_F32, 1, {O, 1, 1, 1}};
    return 2;
}

static void init(sgd__layer *l, sgd__rng *r, int32_t init)
{
    /* torch's _calculate_fan_in_and_fan_out: fan_in = C/groups * k * k, fan_out = out * k * k. */
    double kk = (double)(l->ia[K] * l->ia[K]);
    double fan_in = (double)(l->in.d[0] / l->ia[GROUPS]) * kk, fan_out = (double)l->ia[OUT] * kk;
    sgd__init_weight(r, l->t[0], sgd__tdesc_numel(&l->td[0]), init, fan_in, fan_out);
    if (l->ia[BIAS])
        sgd__init_bias(r, l->t[1], (size_t)l->ia[OUT], init, fan_in);
}

typedef struct dims {
    int64_t C, H, W, O, k, s, p, d, g, Ho, Wo, HWo, Kr, Cg, Og, Kg, Hp, Wp;
    bool direct; /* 1x1, stride 1, no padding: the input is its own column matrix */
} dims;

static dims dims_of(const sgd__layer *l)
{
    dims m;
    m.C = l->in.d[0];
    m.H = l->in.d[1];
    m.W = l->in.d[2];
    m.O = l->ia[OUT];
    m.k = l->ia[K];
    m.s = l->ia[STRIDE];
    m.p = l->ia[PAD];
    m.d = l->ia[DIL];
    m.g = l->ia[GROUPS];
    m.Ho = l->out.d[1];
    m.Wo = l->out.d[2];
    m.HWo = m.Ho * m.Wo;
    m.Kr = m.C * m.k * m.k;
    m.Cg = m.C / m.g;
    m.Og = m.O / m.g;
    m.Kg = m.Cg * m.k * m.k;
    m.Hp = m.H + 2 * m.p;
    m.Wp = m.W + 2 * m.p;
    m.direct = m.k == 1 && m.s == 1 && m.p == 0;
    return m;
}

/*
 * The workspace, in floats: one sample's column gradient, one zero-padded
 * input (or input-gradient) image when padding > 0, one sample's output (or
 * output gradient) when a window layer is fused after it, and the columns of
 * every sample (kept from the forward pass for the weight gradient).
 */
#ifndef RECOMPUTE
#define RECOMPUTE 1
#endif
typedef struct wsplan {
    size_t cols, dcol, pad, tmp, total;
} wsplan;

static bool plan_of(const sgd__layer *l, const dims *m, int64_t batch, wsplan *w)
{
    size_t per = 0;
    memset(w, 0, sizeof *w);
    if (!m->direct) {
        if (!sgd__mul_size((size_t)m->Kr, (size_t)m->HWo, &per) ||
            !sgd__mul_size(per, RECOMPUTE ? 1 : (size_t)batch, &w->cols))
            return false;
        w->dcol = per;
        if (m->p > 0 && !sgd__mul_size((size_t)m->C, (size_t)m->Hp * (size_t)m->Wp, &w->pad))
            return false;
    }
    if (l->fuse_pool != NULL && !sgd__mul_size((size_t)m->O, (size_t)m->HWo, &w->tmp))
        return false;
    return sgd__add_size(w->cols, w->dcol, &w->total) && sgd__add_size(w->total, w->pad, &w->total) &&
           sgd__add_size(w->total, w->tmp, &w->total);
}

static bool workspace(const sgd__layer *l, int64_t batch, size_t *bytes)
{
    dims m = dims_of(l);
    wsplan w;
    return plan_of(l, &m, batch, &w) && sgd__mul_size(w.total, sizeof(float), bytes);
}

/* The parts of the workspace: the one-sample parts first, then the columns, so that any batch finds them at the same place. */
typedef struct wsparts {
    float *cols, *dcol, *pad, *tmp;
} wsparts;

static wsparts parts_of(const sgd__layer *l, const dims *m)
{
    wsplan w;
    wsparts r = {NULL, NULL, NULL, NULL};
    (void)plan_of(l, m, 1, &w); /* the sizes were checked when the workspace was laid out */
    float *at = l->ws;
    r.dcol = w.dcol ? at : NULL;
    at += w.dcol;
    r.pad = w.pad ? at : NULL;
    at += w.pad;
    r.tmp = w.tmp ? at : NULL;
    at += w.tmp;
    r.cols = w.cols ? at : NULL;
    return r;
}

/* n floats from src to dst: 8 at a time (copies of a constant size, which compilers inline), overlapping at the end. */
static inline void copy_floats(float *restrict dst, const float *restrict src, int64_t n)
{
    if (n < 8) {
        for (int64_t j = 0; j < n; j++)
            dst[j] = src[j];
        return;
    }
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        memcpy(dst + j, src + j, 8 * sizeof(float));
    if (j < n)
        memcpy(dst + n - 8, src + n - 8, 8 * sizeof(float));
}

/* dst[j] += src[j] for n floats, in blocks of 8 and 4 (constant inner trip counts, which vectorize). */
static inline void add_floats(float *restrict dst, const float *restrict src, int64_t n)
{
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int t = 0; t < 8; t++)
            dst[j + t] += src[j + t];
    if (j + 4 <= n) {
        for (int t = 0; t < 4; t++)
            dst[j + t] += src[j + t];
        j += 4;
    }
    for (; j < n; j++)
        dst[j] += src[j];
}

/* v[j] = c for n floats. */
static inline void fill_floats(float *restrict v, float c, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, v[j] = c;);
}

/*
 * gb[o] += the sum of plane o of g (planes of n floats), each summed in order
 * as a plain loop would (the sums stay those of 0.2's first CNN code), four
 * planes at a time so that the four chains of additions overlap.
 */
static void add_plane_sums(float *restrict gb, const float *restrict g, int64_t planes, int64_t n)
{
    int64_t o = 0;
    for (; o + 4 <= planes; o += 4) {
        const float *g0 = g + (size_t)(o * n), *g1 = g0 + n, *g2 = g1 + n, *g3 = g2 + n;
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        for (int64_t j = 0; j < n; j++) {
            s0 += g0[j];
            s1 += g1[j];
            s2 += g2[j];
            s3 += g3[j];
        }
        gb[o] += s0;
        gb[o + 1] += s1;
        gb[o + 2] += s2;
        gb[o + 3] += s3;
    }
    for (; o < planes; o++) {
        const float *go = g + (size_t)(o * n);
        float s0 = 0.0f;
        for (int64_t j = 0; j < n; j++)
            s0 += go[j];
        gb[o] += s0;
    }
}

/*
 * The image x of one sample, zero-padded, into pad ([C, Hp, Wp]); returns
 * the image im2col reads (pad, or x itself without padding).
 */
static const float *padded(const dims *m, const float *x, float *pad)
{
    if (m->p == 0)
        return x;
    size_t plane = (size_t)(m->Hp * m->Wp);
    memset(pad, 0, (size_t)m->C * plane * sizeof(float));
    for (int64_t c = 0; c < m->C; c++)
        for (int64_t ih = 0; ih < m->H; ih++)
            memcpy(pad + (size_t)c * plane + (size_t)((ih + m->p) * m->Wp + m->p), x + (size_t)((c * m->H + ih) * m->W),
                   (size_t)m->W * sizeof(float));
    return pad;
}

/* col [Kr x HWo] from the padded image xp: no bounds to test (the padding holds the zeros). */
static void im2col(const dims *m, const float *xp, float *col)
{
    size_t plane = (size_t)(m->Hp * m->Wp);
    for (int64_t c = 0; c < m->C; c++)
        for (int64_t ki = 0; ki < m->k; ki++)
            for (int64_t kj = 0; kj < m->k; kj++) {
                float *row = col + (size_t)((c * m->k + ki) * m->k + kj) * (size_t)m->HWo;
                const float *src = xp + (size_t)c * plane + (size_t)(ki * m->d * m->Wp + kj * m->d);
                for (int64_t oh = 0; oh < m->Ho; oh++) {
                    const float *sr = src + (size_t)(oh * m->s * m->Wp);
                    float *r = row + (size_t)(oh * m->Wo);
                    if (m->s == 1) {
                        copy_floats(r, sr, m->Wo);
                    } else {
                        for (int64_t ow = 0; ow < m->Wo; ow++)
                            r[ow] = sr[ow * m->s];
                    }
                }
            }
}

/*
 * gx = the column gradient folded back onto the image: accumulated into the
 * padded image gp (or gx itself without padding), then its interior copied out.
 */
static void col2im(const dims *m, const float *col, float *gp, float *gx)
{
    size_t plane = (size_t)(m->Hp * m->Wp);
    float *acc = m->p == 0 ? gx : gp;
    memset(acc, 0, (size_t)m->C * plane * sizeof(float));
    for (int64_t c = 0; c < m->C; c++)
        for (int64_t ki = 0; ki < m->k; ki++)
            for (int64_t kj = 0; kj < m->k; kj++) {
                const float *row = col + (size_t)((c * m->k + ki) * m->k + kj) * (size_t)m->HWo;
                float *dst = acc + (size_t)c * plane + (size_t)(ki * m->d * m->Wp + kj * m->d);
                for (int64_t oh = 0; oh < m->Ho; oh++) {
                    float *dr = dst + (size_t)(oh * m->s * m->Wp);
                    const float *r = row + (size_t)(oh * m->Wo);
                    if (m->s == 1) {
                        add_floats(dr, r, m->Wo);
                    } else {
                        for (int64_t ow = 0; ow < m->Wo; ow++)
                            dr[ow * m->s] += r[ow];
                    }
                }
            }
    if (m->p == 0)
        return;
    for (int64_t c = 0; c < m->C; c++)
        for (int64_t ih = 0; ih < m->H; ih++)
            memcpy(gx + (size_t)((c * m->H + ih) * m->W), gp + (size_t)c * plane + (size_t)((ih + m->p) * m->Wp + m->p),
                   (size_t)m->W * sizeof(float));
}

static const float *columns(const wsparts *w, const dims *m, const float *x, int64_t n)
{
    if (m->direct)
        return x + (size_t)n * (size_t)(m->C * m->H * m->W);
    return w->cols + (RECOMPUTE ? 0 : (size_t)n * (size_t)m->Kr * (size_t)m->HWo);
}

/*
 * y = W col (+ what y holds: the bias, written first, so that the product
 * lands on it with beta = 1: OpenBLAS then makes no separate pass to scale
 * or clear y, and the sum b + Wx rounds as Wx + b would).
 */
static void gemm_forward(const sgd__layer *l, const dims *m, const float *col, float *y, float beta)
{
    const float *w = l->t[0];
    for (int64_t gi = 0; gi < m->g; gi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m->Og, (int)m->HWo, (int)m->Kg, 1.0f,
                    w + (size_t)(gi * m->Og * m->Kg), (int)m->Kg, col + (size_t)(gi * m->Kg * m->HWo), (int)m->HWo,
                    beta, y + (size_t)(gi * m->Og * m->HWo), (int)m->HWo);
}

/* Where sample n's output goes: its row of the output, or the one-sample buffer a fused window layer reads. */
static float *out_of(const sgd__layer *l, const wsparts *w, const dims *m, int64_t n)
{
    return l->fuse_pool != NULL ? w->tmp : l->buf + (size_t)n * (size_t)(m->O * m->HWo);
}

/*
 * Sample by sample, while its columns and output are in cache: im2col, the
 * product on the bias, the fused activation, and the fused window layer's
 * planes.
 */
static sgd_status forward(sgd__layer *l, const float *x, const sgd__pass *p)
{
    dims m = dims_of(l);
    wsparts w = parts_of(l, &m);
    const float *b = l->ia[BIAS] ? l->t[1] : NULL;
    size_t in_n = (size_t)(m.C * m.H * m.W);
    for (int64_t n = 0; n < p->batch; n++) {
        float *y = out_of(l, &w, &m, n);
        if (!m.direct)
            im2col(&m, padded(&m, x + (size_t)n * in_n, w.pad), (float *)columns(&w, &m, x, n));
        if (b != NULL)
            for (int64_t o = 0; o < m.O; o++)
                fill_floats(y + (size_t)(o * m.HWo), b[o], m.HWo);
        gemm_forward(l, &m, columns(&w, &m, x, n), y, b != NULL ? 1.0f : 0.0f);
        /* Channel by channel: the activation and the window layer while the plane is in the first-level cache. */
        for (int64_t o = 0; o < m.O; o++) {
            float *yo = y + (size_t)(o * m.HWo);
            if (l->fuse_next != NULL)
                l->fuse_next->op->apply(l->fuse_next, yo, NULL, 1, m.HWo);
            if (l->fuse_pool != NULL)
                l->fuse_pool->op->plane_forward(l->fuse_pool, yo, n * m.O + o);
        }
    }
    l->y = l->buf;
    return SGD_OK;
}

/* The gradient GEMMs of sample n: dW += G col^T; when dcol, dcol = W^T G (per group). */
static void gemm_backward(const sgd__layer *l, const dims *m, const float *gn, const float *col, float *dcol)
{
    const float *w = l->t[0];
    float *gw = l->gt[0];
    for (int64_t gi = 0; gi < m->g; gi++) {
        const float *gg = gn + (size_t)(gi * m->Og * m->HWo);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m->Og, (int)m->Kg, (int)m->HWo, 1.0f, gg,
                    (int)m->HWo, col + (size_t)(gi * m->Kg * m->HWo), (int)m->HWo, 1.0f,
                    gw + (size_t)(gi * m->Og * m->Kg), (int)m->Kg);
        if (dcol != NULL)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m->Kg, (int)m->HWo, (int)m->Og, 1.0f,
                        w + (size_t)(gi * m->Og * m->Kg), (int)m->Kg, gg, (int)m->HWo, 0.0f,
                        dcol + (size_t)(gi * m->Kg * m->HWo), (int)m->HWo);
    }
}

/*
 * The gradient of sample n's output (g is the gradient of this layer's
 * output, or of the fused window layer's): the fused activation's derivative
 * and the bias sums in one read, channel by channel; through the fused
 * window layer into the one-sample buffer. Returns where it is.
 */
static float *output_grad(sgd__layer *l, const wsparts *w, const dims *m, float *g, int64_t n)
{
    const sgd__layer *act = l->fuse_next != NULL && l->fuse_next->bwd_by_producer ? l->fuse_next : NULL;
    sgd__layer *pool = l->fuse_pool;
    /* What this sample's planes are: the window layer's output (and its gradient), or this layer's. */
    int64_t plane = pool != NULL ? sgd__shape_numel(&pool->out) / m->O : m->HWo;
    float *gn = g + (size_t)n * (size_t)(m->O * plane);
    const float *yn = (pool != NULL ? pool->buf : l->buf) + (size_t)n * (size_t)(m->O * plane);
    /* Through a fused window layer, f' at a window's maximum is f' at the pooled value (layer.h: monotone f). */
    if (act != NULL)
        act->op->derive(act, yn, gn, m->O * plane);
    if (l->ia[BIAS])
        add_plane_sums(l->gt[1], gn, m->O, plane);
    if (pool != NULL)
        for (int64_t o = 0; o < m->O; o++)
            pool->op->plane_backward(pool, gn + (size_t)(o * plane), w->tmp + (size_t)(o * m->HWo), n * m->O + o);
    return pool != NULL ? w->tmp : gn;
}

static float *backward(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, const sgd__pass *p)
{
    dims m = dims_of(l);
    wsparts w = parts_of(l, &m);
    size_t in_n = (size_t)(m.C * m.H * m.W);
    for (int64_t n = 0; n < p->batch; n++) {
        float *gn = output_grad(l, &w, &m, g, n);
        float *gxn = need_gx ? gx + (size_t)n * in_n : NULL;
        if (RECOMPUTE && !m.direct)
            im2col(&m, padded(&m, x + (size_t)n * in_n, w.pad), w.cols);
        gemm_backward(l, &m, gn, columns(&w, &m, x, n), !need_gx ? NULL : m.direct ? gxn : w.dcol);
        if (need_gx && !m.direct)
            col2im(&m, w.dcol, w.pad, gxn);
    }
    return need_gx ? gx : NULL;
}

static void replay(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, int64_t batch)
{
    dims m = dims_of(l);
    wsparts w = parts_of(l, &m);
    size_t in_n = (size_t)(m.C * m.H * m.W), out_n = (size_t)(m.O * m.HWo);
    for (int64_t n = 0; n < batch; n++) {
        if (g == NULL)
            gemm_forward(l, &m, columns(&w, &m, x, n), out_of(l, &w, &m, n), l->ia[BIAS] ? 1.0f : 0.0f);
        else
            gemm_backward(l, &m, l->fuse_pool != NULL ? w.tmp : g + (size_t)n * out_n, columns(&w, &m, x, n),
                          !need_gx ? NULL : m.direct ? gx + (size_t)n * in_n : w.dcol);
    }
}

const sgd__layer_op sgd__op_conv2d = {
    .kind = SGD_LAYER_CONV2D,
    .name = "conv2d",
    .flags = SGD__OP_FUSES_NEXT | SGD__OP_FUSED_BACKWARD | SGD__OP_FUSES_PLANES,
    .parse = parse,
    .print = print,
    .shape = shape,
    .tensors = tensors,
    .init = init,
    .workspace = workspace,
    .forward = forward,
    .backward = backward,
    .replay_gemms = replay,
};
