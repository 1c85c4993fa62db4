/*
 * conv2d (torch.nn.Conv2d): out_channels, kernel_size (square), stride,
 * padding (zeros), dilation, groups, bias, over [C, H, W] samples. Through
 * im2col and cblas_sgemm: the columns of every sample are kept from the
 * forward pass for the weight gradient; the input gradient is W^T G folded
 * back by col2im. A 1x1 convolution with stride 1 and no padding multiplies
 * the input itself. A fusable activation after it (ReLU) is applied in place.
 * SPDX-License-Identifier: MIT
 */
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
    int64_t C, H, W, O, k, s, p, d, g, Ho, Wo, HWo, Kr, Cg, Og, Kg;
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
    m.direct = m.k == 1 && m.s == 1 && m.p == 0;
    return m;
}

static bool workspace(const sgd__layer *l, int64_t batch, size_t *bytes)
{
    dims m = dims_of(l);
    if (m.direct) {
        *bytes = 0;
        return true;
    }
    size_t per, cols;
    /* The columns of every sample, and one sample's column gradient. */
    return sgd__mul_size((size_t)m.Kr, (size_t)m.HWo, &per) && sgd__mul_size(per, (size_t)batch + 1, &cols) &&
           sgd__mul_size(cols, sizeof(float), bytes);
}

static void im2col(const dims *m, const float *x, float *col)
{
    for (int64_t c = 0; c < m->C; c++)
        for (int64_t ki = 0; ki < m->k; ki++)
            for (int64_t kj = 0; kj < m->k; kj++) {
                float *row = col + (size_t)((c * m->k + ki) * m->k + kj) * (size_t)m->HWo;
                int64_t iw0 = kj * m->d - m->p;
                for (int64_t oh = 0; oh < m->Ho; oh++) {
                    float *r = row + (size_t)(oh * m->Wo);
                    int64_t ih = oh * m->s - m->p + ki * m->d;
                    if (ih < 0 || ih >= m->H) {
                        memset(r, 0, (size_t)m->Wo * sizeof(float));
                        continue;
                    }
                    const float *xr = x + (size_t)((c * m->H + ih) * m->W);
                    if (m->s == 1) {
                        int64_t lo = iw0 < 0 ? -iw0 : 0, hi = m->W - iw0;
                        hi = hi > m->Wo ? m->Wo : hi;
                        lo = lo > m->Wo ? m->Wo : lo;
                        if (hi < lo)
                            hi = lo;
                        memset(r, 0, (size_t)lo * sizeof(float));
                        memcpy(r + lo, xr + lo + iw0, (size_t)(hi - lo) * sizeof(float));
                        memset(r + hi, 0, (size_t)(m->Wo - hi) * sizeof(float));
                    } else {
                        for (int64_t ow = 0; ow < m->Wo; ow++) {
                            int64_t iw = ow * m->s + iw0;
                            r[ow] = iw >= 0 && iw < m->W ? xr[iw] : 0.0f;
                        }
                    }
                }
            }
}

/* gx (zeroed by the caller) += the column gradient folded back onto the image. */
static void col2im(const dims *m, const float *col, float *gx)
{
    for (int64_t c = 0; c < m->C; c++)
        for (int64_t ki = 0; ki < m->k; ki++)
            for (int64_t kj = 0; kj < m->k; kj++) {
                const float *row = col + (size_t)((c * m->k + ki) * m->k + kj) * (size_t)m->HWo;
                int64_t iw0 = kj * m->d - m->p;
                for (int64_t oh = 0; oh < m->Ho; oh++) {
                    int64_t ih = oh * m->s - m->p + ki * m->d;
                    if (ih < 0 || ih >= m->H)
                        continue;
                    const float *r = row + (size_t)(oh * m->Wo);
                    float *gr = gx + (size_t)((c * m->H + ih) * m->W);
                    /* The columns whose input lies inside the image: ow in [lo, hi). */
                    int64_t lo = iw0 < 0 ? (-iw0 + m->s - 1) / m->s : 0, hi = m->W - iw0 <= 0 ? 0 : (m->W - iw0 - 1) / m->s + 1;
                    hi = hi > m->Wo ? m->Wo : hi;
                    if (m->s == 1) {
                        for (int64_t ow = lo; ow < hi; ow++)
                            gr[ow + iw0] += r[ow];
                    } else {
                        for (int64_t ow = lo; ow < hi; ow++)
                            gr[ow * m->s + iw0] += r[ow];
                    }
                }
            }
}

static const float *columns(const sgd__layer *l, const dims *m, const float *x, int64_t n)
{
    if (m->direct)
        return x + (size_t)n * (size_t)(m->C * m->H * m->W);
    return (const float *)l->ws + (size_t)n * (size_t)m->Kr * (size_t)m->HWo;
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

static sgd_status forward(sgd__layer *l, const float *x, const sgd__pass *p)
{
    dims m = dims_of(l);
    const float *b = l->ia[BIAS] ? l->t[1] : NULL;
    size_t in_n = (size_t)(m.C * m.H * m.W), out_n = (size_t)(m.O * m.HWo);
    for (int64_t n = 0; n < p->batch; n++) {
        float *y = l->buf + (size_t)n * out_n;
        if (!m.direct)
            im2col(&m, x + (size_t)n * in_n, (float *)columns(l, &m, x, n));
        if (b != NULL)
            for (int64_t o = 0; o < m.O; o++) {
                float *yo = y + (size_t)(o * m.HWo), bo = b[o];
                for (int64_t j = 0; j < m.HWo; j++)
                    yo[j] = bo;
            }
        gemm_forward(l, &m, columns(l, &m, x, n), y, b != NULL ? 1.0f : 0.0f);
        if (l->fuse_next != NULL)
            l->fuse_next->op->apply(l->fuse_next, y, NULL, m.O, m.HWo);
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

static float *backward(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, const sgd__pass *p)
{
    dims m = dims_of(l);
    size_t in_n = (size_t)(m.C * m.H * m.W), out_n = (size_t)(m.O * m.HWo);
    float *dcol = m.direct ? NULL : (float *)l->ws + (size_t)p->batch * (size_t)m.Kr * (size_t)m.HWo;
    for (int64_t n = 0; n < p->batch; n++) {
        float *gn = g + (size_t)n * out_n;
        /* The fused activation's derivative, in the same pass as the bias sums (one read of g). */
        if (l->fuse_next != NULL && l->fuse_next->bwd_by_producer)
            for (int64_t o = 0; o < m.O; o++)
                l->fuse_next->op->derive(l->fuse_next, l->buf + (size_t)n * out_n + (size_t)(o * m.HWo),
                                         gn + (size_t)(o * m.HWo), m.HWo);
        if (l->ia[BIAS]) {
            float *gb = l->gt[1];
            for (int64_t o = 0; o < m.O; o++) {
                const float *go = gn + (size_t)(o * m.HWo);
                float s = 0.0f;
                for (int64_t j = 0; j < m.HWo; j++)
                    s += go[j];
                gb[o] += s;
            }
        }
        float *gxn = need_gx ? gx + (size_t)n * in_n : NULL;
        gemm_backward(l, &m, gn, columns(l, &m, x, n), !need_gx ? NULL : m.direct ? gxn : dcol);
        if (need_gx && !m.direct) {
            memset(gxn, 0, in_n * sizeof(float));
            col2im(&m, dcol, gxn);
        }
    }
    return need_gx ? gx : NULL;
}

static void replay(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, int64_t batch)
{
    dims m = dims_of(l);
    size_t in_n = (size_t)(m.C * m.H * m.W), out_n = (size_t)(m.O * m.HWo);
    float *dcol = m.direct ? NULL : (float *)l->ws + (size_t)batch * (size_t)m.Kr * (size_t)m.HWo;
    for (int64_t n = 0; n < batch; n++) {
        if (g == NULL)
            gemm_forward(l, &m, columns(l, &m, x, n), l->buf + (size_t)n * out_n, l->ia[BIAS] ? 1.0f : 0.0f);
        else
            gemm_backward(l, &m, g + (size_t)n * out_n, columns(l, &m, x, n),
                          !need_gx ? NULL : m.direct ? gx + (size_t)n * in_n : dcol);
    }
}

const sgd__layer_op sgd__op_conv2d = {
    .kind = SGD_LAYER_CONV2D,
    .name = "conv2d",
    .flags = SGD__OP_FUSES_NEXT | SGD__OP_FUSED_BACKWARD,
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
