/*
 * dense (torch.nn.Linear): y = x W^T + b over the last dimension, so that a
 * sequence [T, F] is transformed at every time step, as torch does.
 * SPDX-License-Identifier: MIT
 */
#include "model/kernels.h"
#include "model/layer.h"

#include <stdio.h>
#include <string.h>

enum { UNITS = 0, BIAS = 1 };

static sgd_status parse(sgd__layer *l, const sgd__lspec *c)
{
    sgd__largs a;
    sgd_status st;
    if (!c->has_parens) { /* a plain number of units */
        int64_t v;
        if (c->tok.n == 0 || c->tok.p[0] < '0' || c->tok.p[0] > '9')
            return sgd__lspec_err(c, SGD_EINVAL, "missing the number of units, as in dense(10) or dense(10,bias=0)");
        if (sgd__parse_int64(c->tok, &v) != SGD_OK || v < 1 || v > SGD_MODEL_MAX_UNITS)
            return sgd__lspec_err(c, SGD_EINVAL, "units '%.*s': expected a whole number from 1 to 16777216",
                                  (int)c->tok.n, c->tok.p);
        l->ia[UNITS] = v;
        l->ia[BIAS] = 1;
        return SGD_OK;
    }
    if ((st = sgd__largs_split(c, &a, 1)) != SGD_OK)
        return st;
    static const char *const ukeys[] = {"units", "out_features", NULL}, *const bkeys[] = {"bias", NULL};
    sgd__str u = sgd__largs_take(&a, 0, ukeys), b = sgd__largs_take(&a, -1, bkeys);
    if ((st = sgd__largs_check_used(c, &a, "dense takes units and bias")) != SGD_OK)
        return st;
    if (u.p == NULL)
        return sgd__lspec_err(c, SGD_EINVAL, "missing the number of units, as in dense(10) or dense(10,bias=0)");
    int64_t units;
    bool digits = u.n > 0;
    for (size_t i = 0; i < u.n; i++)
        digits = digits && u.p[i] >= '0' && u.p[i] <= '9';
    if (!digits || sgd__parse_int64(u, &units) != SGD_OK || units < 1 || units > SGD_MODEL_MAX_UNITS)
        return sgd__lspec_err(c, SGD_EINVAL, "units '%.*s': expected a whole number from 1 to 16777216", (int)u.n,
                              u.p);
    bool bias = true;
    if (b.p != NULL && sgd__parse_bool(b, &bias) != SGD_OK)
        return sgd__lspec_err(c, SGD_EINVAL, "bias=%.*s: not a boolean (use 0 or 1)", (int)b.n, b.p);
    l->ia[UNITS] = units;
    l->ia[BIAS] = bias;
    return SGD_OK;
}

static int print(const sgd__layer *l, char *buf, size_t n)
{
    return l->ia[BIAS] ? snprintf(buf, n, "%lld", (long long)l->ia[UNITS])
                       : snprintf(buf, n, "dense(%lld,bias=0)", (long long)l->ia[UNITS]);
}

static sgd_status shape(sgd__layer *l, const char *fn)
{
    (void)fn;
    l->out = l->in;
    l->out.d[l->out.rank - 1] = l->ia[UNITS];
    return SGD_OK;
}

static size_t tensors(const sgd__layer *l, sgd__tdesc *d)
{
    int64_t in = sgd__shape_last(&l->in), out = l->ia[UNITS];
    d[0] = (sgd__tdesc){"weight", SGD__ROLE_PARAM, SGD_PARAM_WEIGHT, SGD_DTYPE_F32, 2, {out, in, 1, 1}};
    if (!l->ia[BIAS])
        return 1;
    d[1] = (sgd__tdesc){"bias", SGD__ROLE_PARAM, SGD_PARAM_BIAS, SGD_DTYPE_F32, 1, {out, 1, 1, 1}};
    return 2;
}

static void init(sgd__layer *l, sgd__rng *r, int32_t init)
{
    double fan_in = (double)sgd__shape_last(&l->in), fan_out = (double)l->ia[UNITS];
    sgd__init_weight(r, l->t[0], sgd__tdesc_numel(&l->td[0]), init, fan_in, fan_out);
    if (l->ia[BIAS])
        sgd__init_bias(r, l->t[1], (size_t)l->ia[UNITS], init, fan_in);
}

static int64_t rows_of(const sgd__layer *l, int64_t batch)
{
    return batch * (sgd__shape_numel(&l->in) / sgd__shape_last(&l->in));
}

static void row_bias(float *restrict y, const float *restrict b, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, y[j] += b[j];);
}

static void row_accumulate(float *restrict gb, const float *restrict g, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, gb[j] += g[j];);
}

static sgd_status forward(sgd__layer *l, const float *x, const sgd__pass *p)
{
    int64_t rows = rows_of(l, p->batch), in = sgd__shape_last(&l->in), out = l->ia[UNITS];
    sgd__tensor X = sgd__tensor_2d(x, rows, in), Y = sgd__tensor_2d(l->buf, rows, out);
    sgd__tensor W = sgd__tensor_2d(l->t[0], out, in);
    sgd_status st = sgd__tensor_gemm(false, true, &X, &W, 0.0f, &Y, p->fn);
    if (st != SGD_OK)
        return st;
    const float *bias = l->ia[BIAS] ? l->t[1] : NULL;
    if (l->fuse_next != NULL) {
        l->fuse_next->op->apply(l->fuse_next, l->buf, bias, rows, out);
    } else if (bias != NULL) {
        for (int64_t r = 0; r < rows; r++)
            row_bias(l->buf + (size_t)r * (size_t)out, bias, out);
    }
    l->y = l->buf;
    return SGD_OK;
}

static float *backward(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, const sgd__pass *p)
{
    int64_t rows = rows_of(l, p->batch), in = sgd__shape_last(&l->in), out = l->ia[UNITS];
    /* A fused activation's backward has already added the bias gradient. */
    if (l->ia[BIAS] && !(l->fuse_next != NULL && l->fuse_next->fuse_gbias != NULL))
        for (int64_t r = 0; r < rows; r++)
            row_accumulate(l->gt[1], g + (size_t)r * (size_t)out, out);
    sgd__tensor G = sgd__tensor_2d(g, rows, out), X = sgd__tensor_2d(x, rows, in);
    sgd__tensor W = sgd__tensor_2d(l->t[0], out, in), GW = sgd__tensor_2d(l->gt[0], out, in);
    (void)sgd__tensor_gemm(true, false, &G, &X, 1.0f, &GW, p->fn); /* dW += G^T X */
    if (!need_gx)
        return NULL;
    sgd__tensor DX = sgd__tensor_2d(gx, rows, in);
    (void)sgd__tensor_gemm(false, false, &G, &W, 0.0f, &DX, p->fn); /* dX = G W */
    return gx;
}

static void replay(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, int64_t batch)
{
    static const char fn[] = "sgd__model_replay_gemms";
    int64_t rows = rows_of(l, batch), in = sgd__shape_last(&l->in), out = l->ia[UNITS];
    sgd__tensor X = sgd__tensor_2d(x, rows, in), Y = sgd__tensor_2d(l->buf, rows, out);
    sgd__tensor W = sgd__tensor_2d(l->t[0], out, in), GW = sgd__tensor_2d(l->gt[0], out, in);
    if (g == NULL) {
        (void)sgd__tensor_gemm(false, true, &X, &W, 0.0f, &Y, fn);
        return;
    }
    sgd__tensor G = sgd__tensor_2d(g, rows, out);
    (void)sgd__tensor_gemm(true, false, &G, &X, 1.0f, &GW, fn);
    if (need_gx) {
        sgd__tensor DX = sgd__tensor_2d(gx, rows, in);
        (void)sgd__tensor_gemm(false, false, &G, &W, 0.0f, &DX, fn);
    }
}

static float *fused_bias_grad(sgd__layer *l)
{
    return l->ia[BIAS] ? l->gt[1] : NULL;
}

const sgd__layer_op sgd__op_dense = {
    .kind = SGD_LAYER_DENSE,
    .name = "dense",
    .alias = "linear",
    .flags = SGD__OP_FUSES_NEXT,
    .parse = parse,
    .print = print,
    .shape = shape,
    .tensors = tensors,
    .init = init,
    .forward = forward,
    .backward = backward,
    .replay_gemms = replay,
    .fused_bias_grad = fused_bias_grad,
};
