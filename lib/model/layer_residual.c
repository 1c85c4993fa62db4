/*
 * residual(<layers>): y = body(x) + x, the body being the layers between the
 * parentheses (a spec sequence: "residual(conv2d(16,3,padding=1)-batchnorm2d-
 * relu-conv2d(16,3,padding=1)-batchnorm2d)"). When the body changes the
 * shape, the shortcut is a projection: a 1x1 convolution with the stride
 * that maps the input's height and width to the body's (images), or a dense
 * layer (vectors and sequences). In torch's state_dict the body is
 * "<i>.body.<j>.*" and the projection "<i>.shortcut.0.*" (a module holding
 * nn.Sequential attributes `body` and `shortcut`; tests/gen_layers.py).
 * SPDX-License-Identifier: MIT
 */
#include "model/layer.h"

#include <stdio.h>
#include <string.h>

enum { BODY = 0, SHORTCUT = 1 };

static bool same_shape(const sgd__shape *a, const sgd__shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int32_t i = 0; i < a->rank; i++)
        if (a->d[i] != b->d[i])
            return false;
    return true;
}

/* The projection of `in` to `out`, as a spec token; false if there is none. */
static bool projection(const sgd__shape *in, const sgd__shape *out, char *tok, size_t n)
{
    if (in->rank != out->rank)
        return false;
    if (in->rank == 3) {
        for (int64_t s = 1; s <= in->d[1] && s <= in->d[2]; s++)
            if ((in->d[1] - 1) / s + 1 == out->d[1] && (in->d[2] - 1) / s + 1 == out->d[2]) {
                if (s == 1)
                    snprintf(tok, n, "conv2d(%lld,1)", (long long)out->d[0]);
                else
                    snprintf(tok, n, "conv2d(%lld,1,stride=%lld)", (long long)out->d[0], (long long)s);
                return true;
            }
        return false;
    }
    for (int32_t i = 0; i + 1 < in->rank; i++)
        if (in->d[i] != out->d[i])
            return false;
    snprintf(tok, n, "%lld", (long long)sgd__shape_last(out));
    return true;
}

static sgd_status parse(sgd__layer *l, const sgd__lspec *c)
{
    if (!c->has_parens || sgd__str_trim(c->args.p, c->args.n).n == 0)
        return sgd__lspec_err(c, SGD_EINVAL, "the block's layers go between the parentheses, as in "
                                             "residual(conv2d(16,3,padding=1)-batchnorm2d-relu)");
    sgd__seq *body = sgd__seq_new(c->alloc, c->in);
    if (body == NULL)
        return sgd__err(SGD_ENOMEM, "%s: %s: out of memory", c->fn, c->where);
    l->sub[BODY] = body;
    char where[96];
    snprintf(where, sizeof where, "%.60s (residual)", c->where);
    sgd__lspec inner = *c;
    inner.where = where;
    sgd_status st = sgd__seq_parse(body, c->args, &inner, c->depth + 1);
    if (st != SGD_OK)
        return st; /* the caller frees l->sub */
    const sgd__shape *out = sgd__seq_out(body);
    if (same_shape(c->in, out))
        return SGD_OK;
    char tok[96];
    if (!projection(c->in, out, tok, sizeof tok)) {
        char a[SGD__SHAPE_BUF], b[SGD__SHAPE_BUF];
        sgd__shape_str(c->in, a, sizeof a);
        sgd__shape_str(out, b, sizeof b);
        return sgd__lspec_err(c, SGD_EINVAL,
                              "the body maps %s to %s, which no projection (a 1x1 convolution with a stride, or a "
                              "dense layer) can match",
                              a, b);
    }
    sgd__seq *sc = sgd__seq_new(c->alloc, c->in);
    if (sc == NULL)
        return sgd__err(SGD_ENOMEM, "%s: %s: out of memory", c->fn, c->where);
    l->sub[SHORTCUT] = sc;
    snprintf(where, sizeof where, "%.60s (residual shortcut)", c->where);
    inner.spec = tok;
    return sgd__seq_parse(sc, (sgd__str){tok, strlen(tok)}, &inner, c->depth + 1);
}

static int print(const sgd__layer *l, char *buf, size_t n)
{
    int w = snprintf(buf, n, "residual(");
    if (w < 0)
        return w;
    size_t at = (size_t)w;
    at += sgd__seq_print(l->sub[BODY], at < n ? buf + at : NULL, at < n ? n - at : 0);
    if (at + 1 < n) {
        buf[at] = ')';
        buf[at + 1] = '\0';
    } else if (n > 0) {
        buf[n - 1] = '\0';
    }
    return (int)(at + 1);
}

static sgd_status shape(sgd__layer *l, const char *fn)
{
    (void)fn;
    l->out = *sgd__seq_out(l->sub[BODY]);
    return SGD_OK;
}

static int64_t widest(const sgd__layer *l)
{
    return sgd__seq_widest(l->sub[BODY]);
}

static bool workspace(const sgd__layer *l, int64_t batch, size_t *bytes)
{
    size_t n;
    /* The body's own gradient ping-pong: the block's output gradient is needed again for the shortcut. */
    return sgd__mul_size((size_t)batch, (size_t)widest(l), &n) && sgd__mul_size(n, 2 * sizeof(float), bytes);
}

static const float *sub_out(const sgd__seq *s, const float *x)
{
    return s->n ? s->layers[s->n - 1].y : x;
}

static sgd_status forward(sgd__layer *l, const float *x, const sgd__pass *p)
{
    sgd_status st = sgd__seq_forward(l->sub[BODY], x, p);
    if (st != SGD_OK)
        return st;
    const float *s = x;
    if (l->sub[SHORTCUT] != NULL) {
        if ((st = sgd__seq_forward(l->sub[SHORTCUT], x, p)) != SGD_OK)
            return st;
        s = sub_out(l->sub[SHORTCUT], x);
    }
    const float *b = sub_out(l->sub[BODY], x);
    size_t n = (size_t)p->batch * (size_t)sgd__shape_numel(&l->out);
    for (size_t k = 0; k < n; k++)
        l->buf[k] = b[k] + s[k];
    l->y = l->buf;
    return SGD_OK;
}

static float *backward(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, const sgd__pass *p)
{
    size_t nout = (size_t)p->batch * (size_t)sgd__shape_numel(&l->out);
    size_t nin = (size_t)p->batch * (size_t)sgd__shape_numel(&l->in);
    float *pp[2] = {l->ws, (float *)l->ws + (size_t)p->batch * (size_t)widest(l)};
    memcpy(pp[0], g, nout * sizeof(float));
    float *gb = sgd__seq_backward(l->sub[BODY], x, pp[0], pp, 0, need_gx, p);
    if (l->sub[SHORTCUT] != NULL) {
        float *pair[2] = {g, gx};
        float *gs = sgd__seq_backward(l->sub[SHORTCUT], x, g, pair, 0, need_gx, p);
        if (!need_gx)
            return NULL;
        if (gs != gx)
            memcpy(gx, gs, nin * sizeof(float));
        for (size_t k = 0; k < nin; k++)
            gx[k] += gb[k];
        return gx;
    }
    if (!need_gx)
        return NULL;
    for (size_t k = 0; k < nin; k++)
        g[k] += gb[k];
    return g;
}

static void replay(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, int64_t batch)
{
    if (g == NULL) {
        sgd__seq_replay_forward(l->sub[BODY], x, batch);
        if (l->sub[SHORTCUT] != NULL)
            sgd__seq_replay_forward(l->sub[SHORTCUT], x, batch);
        return;
    }
    float *pp[2] = {l->ws, (float *)l->ws + (size_t)batch * (size_t)widest(l)};
    (void)sgd__seq_replay_backward(l->sub[BODY], x, pp[0], pp, 0, need_gx, batch);
    if (l->sub[SHORTCUT] != NULL) {
        float *pair[2] = {g, gx};
        (void)sgd__seq_replay_backward(l->sub[SHORTCUT], x, g, pair, 0, need_gx, batch);
    }
}

const sgd__layer_op sgd__op_residual = {
    .kind = SGD_LAYER_RESIDUAL,
    .name = "residual",
    .parse = parse,
    .print = print,
    .shape = shape,
    .workspace = workspace,
    .forward = forward,
    .backward = backward,
    .replay_gemms = replay,
    .sub_names = {"body", "shortcut"},
};
