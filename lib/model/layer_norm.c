/*
 * Normalisation: batchnorm1d and batchnorm2d (torch.nn.BatchNorm1d/2d with
 * eps, momentum, affine; running statistics always tracked) and layernorm
 * (torch.nn.LayerNorm over the last dimension, elementwise_affine).
 * Batch normalisation uses the batch's statistics in training mode (biased
 * variance to normalise, unbiased variance into running_var, as torch) and
 * the running ones in evaluation mode; statistics are accumulated in double.
 * SPDX-License-Identifier: MIT
 */
#include "model/layer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { EPS = 0, MOMENTUM = 1, AFFINE = 2, N_BN = 3 };

static const sgd__argdef bn_args[N_BN] = {
    {"eps", SGD__ARG_REAL, false, 1e-5, 1e-30, 1.0},
    {"momentum", SGD__ARG_REAL, false, 0.1, 0.0, 1.0},
    {"affine", SGD__ARG_BOOL, false, 1, 0, 1},
};

static sgd_status parse_bn(sgd__layer *l, const sgd__lspec *c)
{
    double v[N_BN];
    char usage[96];
    snprintf(usage, sizeof usage, "%s(eps=1e-5, momentum=0.1, affine=1)", l->op->name);
    sgd_status st = sgd__largs_parse(c, bn_args, N_BN, v, usage);
    if (st != SGD_OK)
        return st;
    l->da[EPS] = v[EPS];
    l->da[MOMENTUM] = v[MOMENTUM];
    l->ia[AFFINE] = v[AFFINE] != 0;
    return SGD_OK;
}

static int print_bn(const sgd__layer *l, char *buf, size_t n)
{
    double v[N_BN] = {l->da[EPS], l->da[MOMENTUM], (double)l->ia[AFFINE]};
    return sgd__largs_print(buf, n, l->op->name, bn_args, N_BN, v);
}

static sgd_status shape_bn1(sgd__layer *l, const char *fn)
{
    if (l->in.rank > 2) {
        char in[SGD__SHAPE_BUF];
        sgd__shape_str(&l->in, in, sizeof in);
        return sgd__err(SGD_EINVAL, "%s: batchnorm1d takes [C] or [C, L] samples, not %s (batchnorm2d is for images)",
                        fn, in);
    }
    l->out = l->in;
    return SGD_OK;
}

static sgd_status shape_bn2(sgd__layer *l, const char *fn)
{
    sgd_status st = sgd__need_image(l, fn);
    if (st != SGD_OK)
        return st;
    l->out = l->in;
    return SGD_OK;
}

static int64_t channels(const sgd__layer *l)
{
    return l->in.d[0];
}

/* Values per channel of one sample. */
static int64_t inner(const sgd__layer *l)
{
    return sgd__shape_numel(&l->in) / l->in.d[0];
}

enum { T_WEIGHT = 0, T_BIAS = 1 };

static size_t tensors_bn(const sgd__layer *l, sgd__tdesc *d)
{
    int64_t C = channels(l);
    size_t n = 0;
    if (l->ia[AFFINE]) {
        d[n++] = (sgd__tdesc){"weight", SGD__ROLE_PARAM, SGD_PARAM_WEIGHT, SGD_DTYPE_F32, 1, {C, 1, 1, 1}};
        d[n++] = (sgd__tdesc){"bias", SGD__ROLE_PARAM, SGD_PARAM_BIAS, SGD_DTYPE_F32, 1, {C, 1, 1, 1}};
    }
    d[n++] = (sgd__tdesc){"running_mean", SGD__ROLE_BUFFER, 0, SGD_DTYPE_F32, 1, {C, 1, 1, 1}};
    d[n++] = (sgd__tdesc){"running_var", SGD__ROLE_BUFFER, 0, SGD_DTYPE_F32, 1, {C, 1, 1, 1}};
    d[n++] = (sgd__tdesc){"num_batches_tracked", SGD__ROLE_BUFFER, 0, SGD_DTYPE_I64, 0, {1, 1, 1, 1}};
    return n;
}

/* The index of tensor `which` (0 weight, 1 bias, 2 running_mean, 3 running_var, 4 count). */
static size_t at(const sgd__layer *l, int which)
{
    return l->ia[AFFINE] ? (size_t)which : (size_t)which - 2;
}

static void init_bn(sgd__layer *l, sgd__rng *r, int32_t init)
{
    (void)r;
    (void)init;
    size_t C = (size_t)channels(l);
    float *rm = l->t[at(l, 2)], *rv = l->t[at(l, 3)];
    for (size_t c = 0; c < C; c++) {
        if (l->ia[AFFINE]) {
            ((float *)l->t[T_WEIGHT])[c] = 1.0f;
            ((float *)l->t[T_BIAS])[c] = 0.0f;
        }
        rm[c] = 0.0f;
        rv[c] = 1.0f;
    }
    int64_t zero = 0;
    memcpy(l->t[at(l, 4)], &zero, sizeof zero);
}

static bool workspace_bn(const sgd__layer *l, int64_t batch, size_t *bytes)
{
    (void)batch;
    return sgd__mul_size((size_t)channels(l), 2 * sizeof(float), bytes); /* the mean and 1/std used */
}

static sgd_status forward_bn(sgd__layer *l, const float *x, const sgd__pass *p)
{
    int64_t C = channels(l), I = inner(l), B = p->batch, M = B * I;
    float *mean = l->ws, *invstd = mean + C;
    const float *w = l->ia[AFFINE] ? l->t[T_WEIGHT] : NULL, *b = l->ia[AFFINE] ? l->t[T_BIAS] : NULL;
    float *rm = l->t[at(l, 2)], *rv = l->t[at(l, 3)];
    if (p->training) {
        if (M < 2)
            return sgd__err(SGD_EINVAL,
                            "%s: %s: training mode needs more than one value per channel (batch %lld of %lld values "
                            "per channel), as torch",
                            p->fn, l->op->name, (long long)B, (long long)I);
        double mom = l->da[MOMENTUM];
        for (int64_t c = 0; c < C; c++) {
            double s = 0.0;
            for (int64_t n = 0; n < B; n++) {
                const float *xc = x + (size_t)((n * C + c) * I);
                for (int64_t j = 0; j < I; j++)
                    s += xc[j];
            }
            double mu = s / (double)M, ss = 0.0;
            for (int64_t n = 0; n < B; n++) {
                const float *xc = x + (size_t)((n * C + c) * I);
                for (int64_t j = 0; j < I; j++) {
                    double d = xc[j] - mu;
                    ss += d * d;
                }
            }
            double var = ss / (double)M;
            mean[c] = (float)mu;
            invstd[c] = (float)(1.0 / sqrt(var + l->da[EPS]));
            rm[c] = (float)((1.0 - mom) * rm[c] + mom * mu);
            rv[c] = (float)((1.0 - mom) * rv[c] + mom * (ss / (double)(M - 1)));
        }
        int64_t count;
        memcpy(&count, l->t[at(l, 4)], sizeof count);
        count += count < INT64_MAX;
        memcpy(l->t[at(l, 4)], &count, sizeof count);
    } else {
        for (int64_t c = 0; c < C; c++) {
            mean[c] = rm[c];
            invstd[c] = (float)(1.0 / sqrt((double)rv[c] + l->da[EPS]));
        }
    }
    for (int64_t n = 0; n < B; n++)
        for (int64_t c = 0; c < C; c++) {
            const float *xc = x + (size_t)((n * C + c) * I);
            float *yc = l->buf + (size_t)((n * C + c) * I);
            float mu = mean[c], is = invstd[c], gw = w ? w[c] : 1.0f, gb = b ? b[c] : 0.0f;
            for (int64_t j = 0; j < I; j++)
                yc[j] = (xc[j] - mu) * is * gw + gb;
        }
    if (l->fuse_next != NULL)
        l->fuse_next->op->apply(l->fuse_next, l->buf, NULL, B * C, I);
    l->y = l->buf;
    return SGD_OK;
}

static float *backward_bn(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, const sgd__pass *p)
{
    (void)gx;
    int64_t C = channels(l), I = inner(l), B = p->batch, M = B * I;
    const float *mean = l->ws, *invstd = mean + C;
    const float *w = l->ia[AFFINE] ? l->t[T_WEIGHT] : NULL;
    float *gw = l->ia[AFFINE] ? l->gt[T_WEIGHT] : NULL, *gb = l->ia[AFFINE] ? l->gt[T_BIAS] : NULL;
    for (int64_t c = 0; c < C; c++) {
        double sg = 0.0, sgx = 0.0;
        float mu = mean[c], is = invstd[c];
        /* The fused activation's derivative, channel by channel, while its rows are in cache. */
        if (l->fuse_next != NULL && l->fuse_next->bwd_by_producer)
            for (int64_t n = 0; n < B; n++)
                l->fuse_next->op->derive(l->fuse_next, l->buf + (size_t)((n * C + c) * I), g + (size_t)((n * C + c) * I),
                                         I);
        for (int64_t n = 0; n < B; n++) {
            const float *xc = x + (size_t)((n * C + c) * I), *gc = g + (size_t)((n * C + c) * I);
            for (int64_t j = 0; j < I; j++) {
                sg += gc[j];
                sgx += (double)gc[j] * (double)((xc[j] - mu) * is);
            }
        }
        if (gw != NULL) {
            gw[c] += (float)sgx;
            gb[c] += (float)sg;
        }
        if (!need_gx)
            continue;
        float scale = (w ? w[c] : 1.0f) * is;
        if (p->training) {
            float a = (float)(sg / (double)M), bcoef = (float)(sgx / (double)M);
            for (int64_t n = 0; n < B; n++) {
                const float *xc = x + (size_t)((n * C + c) * I);
                float *gc = g + (size_t)((n * C + c) * I);
                for (int64_t j = 0; j < I; j++)
                    gc[j] = scale * (gc[j] - a - (xc[j] - mu) * is * bcoef);
            }
        } else {
            for (int64_t n = 0; n < B; n++) {
                float *gc = g + (size_t)((n * C + c) * I);
                for (int64_t j = 0; j < I; j++)
                    gc[j] *= scale;
            }
        }
    }
    return need_gx ? g : NULL;
}

const sgd__layer_op sgd__op_batchnorm1d = {
    .kind = SGD_LAYER_BATCHNORM1D,
    .name = "batchnorm1d",
    .flags = SGD__OP_FUSES_NEXT | SGD__OP_FUSED_BACKWARD,
    .parse = parse_bn,
    .print = print_bn,
    .shape = shape_bn1,
    .tensors = tensors_bn,
    .init = init_bn,
    .workspace = workspace_bn,
    .forward = forward_bn,
    .backward = backward_bn,
};

const sgd__layer_op sgd__op_batchnorm2d = {
    .kind = SGD_LAYER_BATCHNORM2D,
    .name = "batchnorm2d",
    .flags = SGD__OP_FUSES_NEXT | SGD__OP_FUSED_BACKWARD,
    .parse = parse_bn,
    .print = print_bn,
    .shape = shape_bn2,
    .tensors = tensors_bn,
    .init = init_bn,
    .workspace = workspace_bn,
    .forward = forward_bn,
    .backward = backward_bn,
};

/* ---------------------------------------------------------------- layer normalisation */

enum { N_LN = 2 };

static const sgd__argdef ln_args[N_LN] = {
    {"eps", SGD__ARG_REAL, false, 1e-5, 1e-30, 1.0},
    {"elementwise_affine", SGD__ARG_BOOL, false, 1, 0, 1},
};

static sgd_status parse_ln(sgd__layer *l, const sgd__lspec *c)
{
    double v[N_LN];
    sgd_status st = sgd__largs_parse(c, ln_args, N_LN, v, "layernorm(eps=1e-5, elementwise_affine=1)");
    if (st != SGD_OK)
        return st;
    l->da[EPS] = v[0];
    l->ia[AFFINE] = v[1] != 0;
    return SGD_OK;
}

static int print_ln(const sgd__layer *l, char *buf, size_t n)
{
    double v[N_LN] = {l->da[EPS], (double)l->ia[AFFINE]};
    return sgd__largs_print(buf, n, "layernorm", ln_args, N_LN, v);
}

static size_t tensors_ln(const sgd__layer *l, sgd__tdesc *d)
{
    if (!l->ia[AFFINE])
        return 0;
    int64_t F = sgd__shape_last(&l->in);
    d[0] = (sgd__tdesc){"weight", SGD__ROLE_PARAM, SGD_PARAM_WEIGHT, SGD_DTYPE_F32, 1, {F, 1, 1, 1}};
    d[1] = (sgd__tdesc){"bias", SGD__ROLE_PARAM, SGD_PARAM_BIAS, SGD_DTYPE_F32, 1, {F, 1, 1, 1}};
    return 2;
}

static void init_ln(sgd__layer *l, sgd__rng *r, int32_t init)
{
    (void)r;
    (void)init;
    if (!l->ia[AFFINE])
        return;
    int64_t F = sgd__shape_last(&l->in);
    for (int64_t j = 0; j < F; j++) {
        ((float *)l->t[0])[j] = 1.0f;
        ((float *)l->t[1])[j] = 0.0f;
    }
}

static int64_t ln_rows(const sgd__layer *l, int64_t batch)
{
    return batch * (sgd__shape_numel(&l->in) / sgd__shape_last(&l->in));
}

static bool workspace_ln(const sgd__layer *l, int64_t batch, size_t *bytes)
{
    return sgd__mul_size((size_t)ln_rows(l, batch), 2 * sizeof(float), bytes);
}

static sgd_status forward_ln(sgd__layer *l, const float *x, const sgd__pass *p)
{
    int64_t R = ln_rows(l, p->batch), F = sgd__shape_last(&l->in);
    float *mean = l->ws, *rstd = mean + R;
    const float *w = l->ia[AFFINE] ? l->t[0] : NULL, *b = l->ia[AFFINE] ? l->t[1] : NULL;
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x + (size_t)(r * F);
        float *yr = l->buf + (size_t)(r * F);
        double s = 0.0, ss = 0.0;
        for (int64_t j = 0; j < F; j++)
            s += xr[j];
        double mu = s / (double)F;
        for (int64_t j = 0; j < F; j++) {
            double d = xr[j] - mu;
            ss += d * d;
        }
        float m = (float)mu, is = (float)(1.0 / sqrt(ss / (double)F + l->da[EPS]));
        mean[r] = m;
        rstd[r] = is;
        for (int64_t j = 0; j < F; j++)
            yr[j] = (xr[j] - m) * is * (w ? w[j] : 1.0f) + (b ? b[j] : 0.0f);
    }
    l->y = l->buf;
    return SGD_OK;
}

static float *backward_ln(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, const sgd__pass *p)
{
    (void)gx;
    int64_t R = ln_rows(l, p->batch), F = sgd__shape_last(&l->in);
    const float *mean = l->ws, *rstd = mean + R;
    const float *w = l->ia[AFFINE] ? l->t[0] : NULL;
    float *gw = l->ia[AFFINE] ? l->gt[0] : NULL, *gb = l->ia[AFFINE] ? l->gt[1] : NULL;
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x + (size_t)(r * F);
        float *gr = g + (size_t)(r * F);
        float m = mean[r], is = rstd[r];
        double sh = 0.0, shx = 0.0;
        for (int64_t j = 0; j < F; j++) {
            float xh = (xr[j] - m) * is, gh = gr[j] * (w ? w[j] : 1.0f);
            if (gw != NULL) {
                gw[j] += gr[j] * xh;
                gb[j] += gr[j];
            }
            sh += gh;
            shx += (double)gh * xh;
        }
        if (!need_gx)
            continue;
        float a = (float)(sh / (double)F), c = (float)(shx / (double)F);
        for (int64_t j = 0; j < F; j++) {
            float xh = (xr[j] - m) * is, gh = gr[j] * (w ? w[j] : 1.0f);
            gr[j] = is * (gh - a - xh * c);
        }
    }
    return need_gx ? g : NULL;
}

const sgd__layer_op sgd__op_layernorm = {
    .kind = SGD_LAYER_LAYERNORM,
    .name = "layernorm",
    .parse = parse_ln,
    .print = print_ln,
    .shape = sgd__layer_shape_same,
    .tensors = tensors_ln,
    .init = init_ln,
    .workspace = workspace_ln,
    .forward = forward_ln,
    .backward = backward_ln,
};
