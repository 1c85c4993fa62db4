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
#include <stdio.h>
#include <string.h>

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

static bool workspace_max(const sgd__layer *l, int64_t batch, size_t *bytes)
{
    size_t n;
    return sgd__mul_size((size_t)batch, (size_t)sgd__shape_numel(&l->out), &n) &&
           sgd__mul_size(n, sizeof(int32_t), bytes); /* the argmax of every output */
}

/*
 * 2x2 windows, stride 2, no padding (the common case): no bounds to test and
 * no branches (a running maximum by selects; the first of equal values and
 * any NaN win, as in torch).
 */
static inline void pick(float v, int32_t i, float *best, int32_t *at)
{
    bool take = v > *best || (v != v && *best == *best);
    *best = take ? v : *best;
    *at = take ? i : *at;
}

static void max_2x2(const float *x, float *y, int32_t *arg, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                    int64_t Wo)
{
    for (int64_t c = 0; c < planes; c++) {
        const float *xp = x + (size_t)(c * H * W);
        float *yp = y + (size_t)(c * Ho * Wo);
        int32_t *ap = arg + (size_t)(c * Ho * Wo);
        for (int64_t oh = 0; oh < Ho; oh++) {
            const float *r0 = xp + (size_t)(2 * oh * W), *r1 = r0 + W;
            int32_t base = (int32_t)(2 * oh * W), w = (int32_t)W;
            for (int64_t ow = 0; ow < Wo; ow++) {
                int32_t j = (int32_t)(2 * ow);
                float best = r0[j];
                int32_t at = base + j;
                pick(r0[j + 1], base + j + 1, &best, &at);
                pick(r1[j], base + w + j, &best, &at);
                pick(r1[j + 1], base + w + j + 1, &best, &at);
                yp[oh * Wo + ow] = best;
                ap[oh * Wo + ow] = at;
            }
        }
    }
}

static sgd_status forward_max(sgd__layer *l, const float *x, const sgd__pass *p)
{
    int64_t H = l->in.d[1], W = l->in.d[2], Ho = l->out.d[1], Wo = l->out.d[2];
    int64_t k = l->ia[K], s = l->ia[STRIDE], pad = l->ia[PAD], planes = p->batch * l->in.d[0];
    int32_t *arg = l->ws;
    if (k == 2 && s == 2 && pad == 0) {
        max_2x2(x, l->buf, arg, planes, H, W, Ho, Wo);
        l->y = l->buf;
        return SGD_OK;
    }
    for (int64_t c = 0; c < planes; c++) {
        const float *xp = x + (size_t)(c * H * W);
        float *yp = l->buf + (size_t)(c * Ho * Wo);
        int32_t *ap = arg + (size_t)(c * Ho * Wo);
        for (int64_t oh = 0; oh < Ho; oh++)
            for (int64_t ow = 0; ow < Wo; ow++) {
                float best = -INFINITY;
                int64_t at = -1;
                for (int64_t i = oh * s - pad; i < oh * s - pad + k; i++) {
                    if (i < 0 || i >= H)
                        continue;
                    for (int64_t j = ow * s - pad; j < ow * s - pad + k; j++) {
                        if (j < 0 || j >= W)
                            continue;
                        float v = xp[i * W + j];
                        if (at < 0 || v > best || (isnan(v) && !isnan(best))) {
                            best = v;
                            at = i * W + j;
                        }
                    }
                }
                yp[oh * Wo + ow] = best;
                ap[oh * Wo + ow] = (int32_t)at;
            }
    }
    l->y = l->buf;
    return SGD_OK;
}

static float *backward_max(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, const sgd__pass *p)
{
    (void)x;
    if (!need_gx)
        return NULL;
    int64_t HW = l->in.d[1] * l->in.d[2], HWo = l->out.d[1] * l->out.d[2], planes = p->batch * l->in.d[0];
    const int32_t *arg = l->ws;
    int64_t H = l->in.d[1], W = l->in.d[2], Wo = l->out.d[2];
    if (l->ia[K] == 2 && l->ia[STRIDE] == 2 && l->ia[PAD] == 0 && H % 2 == 0 && W % 2 == 0) {
        /* Every input is in exactly one window: each is written once, no clearing pass. */
        for (int64_t c = 0; c < planes; c++) {
            float *gp = gx + (size_t)(c * HW);
            const float *go = g + (size_t)(c * HWo);
            const int32_t *ap = arg + (size_t)(c * HWo);
            for (int64_t oh = 0; oh < H / 2; oh++) {
                float *r0 = gp + (size_t)(2 * oh * W), *r1 = r0 + W;
                int32_t base = (int32_t)(2 * oh * W), w = (int32_t)W;
                for (int64_t ow = 0; ow < Wo; ow++) {
                    int32_t j = (int32_t)(2 * ow), a = ap[oh * Wo + ow];
                    float v = go[oh * Wo + ow];
                    r0[j] = a == base + j ? v : 0.0f;
                    r0[j + 1] = a == base + j + 1 ? v : 0.0f;
                    r1[j] = a == base + w + j ? v : 0.0f;
                    r1[j + 1] = a == base + w + j + 1 ? v : 0.0f;
                }
            }
        }
        return gx;
    }
    memset(gx, 0, (size_t)(planes * HW) * sizeof(float));
    for (int64_t c = 0; c < planes; c++) {
        float *gp = gx + (size_t)(c * HW);
        const float *go = g + (size_t)(c * HWo);
        const int32_t *ap = arg + (size_t)(c * HWo);
        for (int64_t j = 0; j < HWo; j++)
            gp[ap[j]] += go[j];
    }
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
