/*
 * Activations (torch.nn.ReLU, LeakyReLU, Tanh, Sigmoid, GELU, Softmax):
 * shape-agnostic, element-wise (softmax: over the last dimension). ReLU,
 * leaky ReLU with a slope >= 0, tanh and sigmoid can be applied in place by
 * the layer that produces their input (a dense layer's pass), which then
 * needs no buffer of their own. NaN propagates through every activation, as
 * in PyTorch, so that a diverging run stays visible.
 * SPDX-License-Identifier: MIT
 */
#include "model/kernels.h"
#include "model/layer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const float SGD__SQRT1_2 = 0.70710678118654752440f;
static const float SGD__INV_SQRT_2PI = 0.39894228040143267794f;
static const float SGD__SQRT_2_OVER_PI = 0.79788456080286535588f;
static const float SGD__GELU_KAPPA = 0.044715f;

/* ---------------------------------------------------------------- kernels */

static void row_bias(float *restrict y, const float *restrict b, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, y[j] += b[j];);
}

static void row_bias_relu(float *restrict y, const float *restrict b, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, float v = y[j] + b[j]; y[j] = v < 0.0f ? 0.0f : v;);
}

static void row_relu(float *restrict y, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, y[j] = y[j] < 0.0f ? 0.0f : y[j];);
}

static void row_leaky(float *restrict y, float slope, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, y[j] = y[j] < 0.0f ? y[j] * slope : y[j];);
}

/* y[r][j] = f(y[r][j] + bias[j]) in place, for rows x cols (bias may be NULL). */
static void act_inplace(int32_t kind, float slope, float *y, const float *bias, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + (size_t)r * (size_t)cols;
        if (kind == SGD_LAYER_RELU && bias != NULL) {
            row_bias_relu(yr, bias, cols);
            continue;
        }
        if (bias != NULL)
            row_bias(yr, bias, cols);
        switch (kind) {
        case SGD_LAYER_RELU: row_relu(yr, cols); break;
        case SGD_LAYER_LEAKY_RELU: row_leaky(yr, slope, cols); break;
        case SGD_LAYER_TANH:
            for (int64_t j = 0; j < cols; j++)
                yr[j] = tanhf(yr[j]);
            break;
        case SGD_LAYER_SIGMOID:
            for (int64_t j = 0; j < cols; j++)
                yr[j] = 1.0f / (1.0f + expf(-yr[j]));
            break;
        case SGD_LAYER_GELU:
            for (int64_t j = 0; j < cols; j++)
                yr[j] = 0.5f * yr[j] * (1.0f + erff(yr[j] * SGD__SQRT1_2));
            break;
        case SGD_LAYER_GELU_TANH:
            for (int64_t j = 0; j < cols; j++) {
                float v = yr[j];
                yr[j] = 0.5f * v * (1.0f + tanhf(SGD__SQRT_2_OVER_PI * (v + SGD__GELU_KAPPA * v * v * v)));
            }
            break;
        default: break;
        }
    }
}

static void row_relu_back(float *restrict g, const float *restrict y, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, g[j] = y[j] > 0.0f ? g[j] : 0.0f;);
}

static void row_relu_back_bias(float *restrict g, const float *restrict y, float *restrict gb, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, float v = y[j] > 0.0f ? g[j] : 0.0f; g[j] = v; gb[j] += v;);
}

static void row_leaky_back(float *restrict g, const float *restrict s, float slope, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, g[j] = s[j] > 0.0f ? g[j] : g[j] * slope;);
}

static void row_tanh_back(float *restrict g, const float *restrict y, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, g[j] *= 1.0f - y[j] * y[j];);
}

static void row_sigmoid_back(float *restrict g, const float *restrict y, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, g[j] *= y[j] * (1.0f - y[j]););
}

static void row_accumulate(float *restrict gb, const float *restrict g, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, gb[j] += g[j];);
}

/*
 * g[r][j] *= f'(.) in place, from the activation's output y (ReLU, leaky ReLU
 * with slope >= 0, tanh, sigmoid) or input x (GELU, leaky ReLU with a negative
 * slope), and, if gbias is set, adds the columns of the result to it (the bias
 * gradient of the producing layer of a fused activation).
 */
static void act_backward(int32_t kind, float slope, const float *x, const float *y, float *g, float *gbias,
                         int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        size_t o = (size_t)r * (size_t)cols;
        float *gr = g + o;
        if (kind == SGD_LAYER_RELU && gbias != NULL) {
            row_relu_back_bias(gr, y + o, gbias, cols);
            continue;
        }
        switch (kind) {
        case SGD_LAYER_RELU: row_relu_back(gr, y + o, cols); break;
        case SGD_LAYER_LEAKY_RELU: row_leaky_back(gr, slope >= 0.0f ? y + o : x + o, slope, cols); break;
        case SGD_LAYER_TANH: row_tanh_back(gr, y + o, cols); break;
        case SGD_LAYER_SIGMOID: row_sigmoid_back(gr, y + o, cols); break;
        case SGD_LAYER_GELU: {
            const float *xr = x + o;
            for (int64_t j = 0; j < cols; j++) {
                float v = xr[j];
                float cdf = 0.5f * (1.0f + erff(v * SGD__SQRT1_2));
                float pdf = expf(-0.5f * v * v) * SGD__INV_SQRT_2PI;
                gr[j] *= cdf + v * pdf;
            }
            break;
        }
        case SGD_LAYER_GELU_TANH: {
            const float *xr = x + o;
            for (int64_t j = 0; j < cols; j++) {
                float v = xr[j], v2 = v * v;
                float t = tanhf(SGD__SQRT_2_OVER_PI * (v + SGD__GELU_KAPPA * v2 * v));
                float left = 0.5f * v, right = 1.0f + t;
                float dright = left * (1.0f - t * t) * SGD__SQRT_2_OVER_PI * (1.0f + 3.0f * SGD__GELU_KAPPA * v2);
                gr[j] *= 0.5f * right + dright;
            }
            break;
        }
        default: break;
        }
        if (gbias != NULL)
            row_accumulate(gbias, gr, cols);
    }
}

/* ---------------------------------------------------------------- the element-wise records */

static int64_t cols_of(const sgd__layer *l)
{
    return sgd__shape_last(&l->in);
}

static int64_t rows_of(const sgd__layer *l, int64_t batch)
{
    return batch * (sgd__shape_numel(&l->in) / cols_of(l));
}

static sgd_status forward(sgd__layer *l, const float *x, const sgd__pass *p)
{
    if (l->fused) {
        l->y = x; /* computed in place by the producing layer's pass */
        return SGD_OK;
    }
    int64_t rows = rows_of(l, p->batch), cols = cols_of(l);
    memcpy(l->buf, x, (size_t)rows * (size_t)cols * sizeof(float));
    act_inplace(l->op->kind, (float)l->da[0], l->buf, NULL, rows, cols);
    l->y = l->buf;
    return SGD_OK;
}

static float *backward(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, const sgd__pass *p)
{
    (void)gx;
    (void)need_gx;
    if (!l->bwd_by_producer)
        act_backward(l->op->kind, (float)l->da[0], x, l->y, g, l->fuse_gbias, rows_of(l, p->batch), cols_of(l));
    return g;
}

static void derive(const sgd__layer *l, const float *y, float *g, int64_t n)
{
    act_backward(l->op->kind, (float)l->da[0], NULL, y, g, NULL, 1, n);
}

static void apply(const sgd__layer *l, float *y, const float *bias, int64_t rows, int64_t cols)
{
    act_inplace(l->op->kind, (float)l->da[0], y, bias, rows, cols);
}

static bool fusable_always(const sgd__layer *l)
{
    (void)l;
    return true;
}

#define SGD__ACT_OP(var, kind_, name_, fusable_)                                                               \
    const sgd__layer_op var = {                                                                                \
        .kind = kind_,                                                                                         \
        .name = name_,                                                                                         \
        .parse = sgd__layer_parse_noargs,                                                                                  \
        .print = sgd__layer_print_name,                                                                                  \
        .shape = sgd__layer_shape_same,                                                                                   \
        .forward = forward,                                                                                    \
        .backward = backward,                                                                                  \
        .fusable = fusable_,                                                                                   \
        .apply = apply,                                                                                        \
        .derive = derive,                                                                                      \
        .redundant_before_loss = (kind_) == SGD_LAYER_SIGMOID ? SGD_LOSS_BCE_WITH_LOGITS : 0,                  \
    }

SGD__ACT_OP(sgd__op_relu, SGD_LAYER_RELU, "relu", fusable_always);
SGD__ACT_OP(sgd__op_tanh, SGD_LAYER_TANH, "tanh", fusable_always);
SGD__ACT_OP(sgd__op_sigmoid, SGD_LAYER_SIGMOID, "sigmoid", fusable_always);

/* ---------------------------------------------------------------- leaky ReLU */

static sgd_status parse_leaky(sgd__layer *l, const sgd__lspec *c)
{
    sgd__largs a;
    sgd_status st = sgd__largs_split(c, &a, 1);
    if (st != SGD_OK)
        return st;
    static const char *const keys[] = {"negative_slope", NULL};
    sgd__str v = sgd__largs_take(&a, 0, keys);
    if ((st = sgd__largs_check_used(c, &a, "leaky_relu takes negative_slope")) != SGD_OK)
        return st;
    double x = 0.01;
    if (v.p != NULL && sgd__parse_double(v, false, &x) != SGD_OK)
        return sgd__lspec_err(c, SGD_EINVAL, "negative_slope=%.*s: not a finite number", (int)v.n, v.p);
    if (fabs(x) > 3.4e38)
        return sgd__lspec_err(c, SGD_EINVAL, "negative_slope=%.*s: must be a finite float", (int)v.n, v.p);
    l->da[0] = x;
    return SGD_OK;
}

static int print_leaky(const sgd__layer *l, char *buf, size_t n)
{
    char num[40];
    sgd__fmt_double(num, sizeof num, l->da[0]);
    return snprintf(buf, n, "leaky_relu(%s)", num);
}

/* The sign of y is then the sign of x, which the in-place backward needs. */
static bool fusable_leaky(const sgd__layer *l)
{
    return l->da[0] >= 0.0;
}

const sgd__layer_op sgd__op_leaky_relu = {
    .kind = SGD_LAYER_LEAKY_RELU,
    .name = "leaky_relu",
    .parse = parse_leaky,
    .print = print_leaky,
    .shape = sgd__layer_shape_same,
    .forward = forward,
    .backward = backward,
    .fusable = fusable_leaky,
    .apply = apply,
    .derive = derive,
};

/* ---------------------------------------------------------------- GELU */

static sgd_status parse_gelu(sgd__layer *l, const sgd__lspec *c)
{
    sgd__largs a;
    sgd_status st = sgd__largs_split(c, &a, 1);
    if (st != SGD_OK)
        return st;
    static const char *const keys[] = {"approximate", NULL};
    sgd__str v = sgd__largs_take(&a, 0, keys);
    if ((st = sgd__largs_check_used(c, &a, "gelu takes approximate=none|tanh")) != SGD_OK)
        return st;
    if (v.p == NULL || sgd__str_eq(v, "none"))
        l->op = &sgd__op_gelu;
    else if (sgd__str_eq(v, "tanh"))
        l->op = &sgd__op_gelu_tanh;
    else
        return sgd__lspec_err(c, SGD_EINVAL, "approximate=%.*s: expected none or tanh", (int)v.n, v.p);
    return SGD_OK;
}

static int print_gelu_tanh(const sgd__layer *l, char *buf, size_t n)
{
    (void)l;
    return snprintf(buf, n, "gelu(approximate=tanh)");
}

const sgd__layer_op sgd__op_gelu = {
    .kind = SGD_LAYER_GELU,
    .name = "gelu",
    .parse = parse_gelu,
    .print = sgd__layer_print_name,
    .shape = sgd__layer_shape_same,
    .forward = forward,
    .backward = backward,
    .apply = apply,
};

/* Spelled gelu(approximate=tanh) in specs: it has no name of its own. */
const sgd__layer_op sgd__op_gelu_tanh = {
    .kind = SGD_LAYER_GELU_TANH,
    .name = NULL,
    .parse = parse_gelu,
    .print = print_gelu_tanh,
    .shape = sgd__layer_shape_same,
    .forward = forward,
    .backward = backward,
    .apply = apply,
};

/* ---------------------------------------------------------------- softmax */

static sgd_status forward_softmax(sgd__layer *l, const float *in, const sgd__pass *p)
{
    int64_t rows = rows_of(l, p->batch), cols = cols_of(l);
    for (int64_t r = 0; r < rows; r++) {
        const float *x = in + (size_t)r * (size_t)cols;
        float *y = l->buf + (size_t)r * (size_t)cols;
        float mx = x[0];
        for (int64_t j = 1; j < cols; j++)
            mx = x[j] > mx ? x[j] : mx;
        double s = 0.0;
        for (int64_t j = 0; j < cols; j++) {
            y[j] = expf(x[j] - mx);
            s += y[j];
        }
        float inv = (float)(1.0 / s);
        for (int64_t j = 0; j < cols; j++)
            y[j] *= inv;
    }
    l->y = l->buf;
    return SGD_OK;
}

static float *backward_softmax(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx,
                               const sgd__pass *p)
{
    (void)x;
    (void)gx;
    (void)need_gx;
    int64_t rows = rows_of(l, p->batch), cols = cols_of(l);
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = l->y + (size_t)r * (size_t)cols;
        float *gr = g + (size_t)r * (size_t)cols;
        double dot = 0.0;
        for (int64_t j = 0; j < cols; j++)
            dot += (double)gr[j] * yr[j];
        float d = (float)dot;
        for (int64_t j = 0; j < cols; j++)
            gr[j] = yr[j] * (gr[j] - d);
    }
    return g;
}

const sgd__layer_op sgd__op_softmax = {
    .kind = SGD_LAYER_SOFTMAX,
    .name = "softmax",
    .redundant_before_loss = SGD_LOSS_CROSS_ENTROPY,
    .parse = sgd__layer_parse_noargs,
    .print = sgd__layer_print_name,
    .shape = sgd__layer_shape_same,
    .forward = forward_softmax,
    .backward = backward_softmax,
};
