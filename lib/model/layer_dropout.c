/*
 * dropout (torch.nn.Dropout): in training mode each value is zeroed with
 * probability p, drawn from the model's seeded generator, and the others are
 * scaled by 1/(1-p); in evaluation mode (or with p = 0) it passes its input
 * through. The keep mask is saved for the backward pass.
 * SPDX-License-Identifier: MIT
 */
#include "model/kernels.h"
#include "model/layer.h"

#include <math.h>
#include <stdio.h>

static sgd_status parse(sgd__layer *l, const sgd__lspec *c)
{
    sgd__largs a;
    sgd_status st = sgd__largs_split(c, &a, 1);
    if (st != SGD_OK)
        return st;
    static const char *const keys[] = {"p", NULL};
    sgd__str v = sgd__largs_take(&a, 0, keys);
    if ((st = sgd__largs_check_used(c, &a, "dropout takes p")) != SGD_OK)
        return st;
    double x = 0.5;
    if (v.p != NULL && sgd__parse_double(v, false, &x) != SGD_OK)
        return sgd__lspec_err(c, SGD_EINVAL, "p=%.*s: not a finite number", (int)v.n, v.p);
    if (!(x >= 0.0 && x <= 1.0))
        return sgd__lspec_err(c, SGD_ERANGE, "p=%.*s: must be in [0, 1]", (int)v.n, v.p);
    l->da[0] = x;
    return SGD_OK;
}

static int print(const sgd__layer *l, char *buf, size_t n)
{
    char num[40];
    sgd__fmt_double(num, sizeof num, l->da[0]);
    return snprintf(buf, n, "dropout(%s)", num);
}

static bool workspace(const sgd__layer *l, int64_t batch, size_t *bytes)
{
    return sgd__mul_size((size_t)batch, (size_t)sgd__shape_numel(&l->in), bytes); /* the keep mask */
}

static bool active(const sgd__layer *l, bool training)
{
    return training && l->da[0] > 0.0;
}

/* y = x * mask * scale (x may be y). */
static void apply_mask(float *y, const float *x, const uint8_t *restrict mask, float scale, size_t n)
{
    SGD__FOR_BLOCKED(k, n, y[k] = mask[k] ? x[k] * scale : 0.0f;);
}

static float scale_of(double p)
{
    return p >= 1.0 ? 0.0f : (float)(1.0 / (1.0 - p));
}

static sgd_status forward(sgd__layer *l, const float *x, const sgd__pass *p)
{
    if (!active(l, p->training)) {
        l->y = x;
        return SGD_OK;
    }
    size_t n = (size_t)p->batch * (size_t)sgd__shape_numel(&l->in);
    uint8_t *mask = l->ws;
    double prob = l->da[0];
    uint64_t thr = prob >= 1.0 ? ((uint64_t)1 << 32) : (uint64_t)ldexp(prob, 32); /* drop when u < thr */
    for (size_t k = 0; k < n; k += 2) { /* two 32-bit draws per generator output */
        uint64_t r = sgd__rng_next(p->rng);
        mask[k] = (r & 0xffffffffu) >= thr;
        if (k + 1 < n)
            mask[k + 1] = (r >> 32) >= thr;
    }
    apply_mask(l->buf, x, mask, scale_of(prob), n);
    l->y = l->buf;
    return SGD_OK;
}

static float *backward(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, const sgd__pass *p)
{
    (void)x;
    (void)gx;
    (void)need_gx;
    if (active(l, p->training))
        apply_mask(g, g, l->ws, scale_of(l->da[0]), (size_t)p->batch * (size_t)sgd__shape_numel(&l->in));
    return g;
}

const sgd__layer_op sgd__op_dropout = {
    .kind = SGD_LAYER_DROPOUT,
    .name = "dropout",
    .parse = parse,
    .print = print,
    .shape = sgd__layer_shape_same,
    .workspace = workspace,
    .forward = forward,
    .backward = backward,
};
