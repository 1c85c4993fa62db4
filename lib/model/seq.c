/*
 * The engine over a sequence of layers: adding a layer (its shapes), the
 * buffers of a pass, forward, backward and the GEMM replay. It iterates the
 * layers and calls their records (layer.h); it never asks what kind a layer
 * is. The model's layers are one sequence; a residual block holds more.
 * SPDX-License-Identifier: MIT
 */
#include "model/model_internal.h"

#include <stdio.h>
#include <string.h>

sgd__seq *sgd__seq_new(const sgd_allocator *a, const sgd__shape *in)
{
    sgd__seq *s = sgd__malloc(a, sizeof *s);
    if (s == NULL)
        return NULL;
    memset(s, 0, sizeof *s);
    s->in = *in;
    return s;
}

void sgd__seq_clear(sgd__seq *s, const sgd_allocator *a)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        for (int k = 0; k < SGD__LAYER_MAX_SUBS; k++)
            sgd__seq_free(s->layers[i].sub[k], a);
    sgd__free(a, s->layers);
    s->layers = NULL;
    s->n = s->cap = 0;
}

void sgd__seq_free(sgd__seq *s, const sgd_allocator *a)
{
    if (s == NULL)
        return;
    sgd__seq_clear(s, a);
    sgd__free(a, s);
}

sgd_status sgd__seq_push(sgd__seq *s, const sgd_allocator *a, sgd__layer *l, const char *fn)
{
    if (s->n >= SGD_MODEL_MAX_LAYERS)
        return sgd__err(SGD_EOVERFLOW, "%s: a model has at most %d layers", fn, SGD_MODEL_MAX_LAYERS);
    l->in = *sgd__seq_out(s);
    sgd_status st = l->op->shape(l, fn);
    if (st != SGD_OK)
        return st;
    if (sgd__shape_numel(&l->out) > SGD__SAMPLE_MAX_NUMEL) {
        char buf[64];
        sgd__shape_str(&l->out, buf, sizeof buf);
        return sgd__err(SGD_EOVERFLOW, "%s: %s: output %s: more than 2^26 values per sample", fn,
                        l->op->name ? l->op->name : "layer", buf);
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8, bytes;
        if (!sgd__mul_size(cap, sizeof(sgd__layer), &bytes))
            return sgd__err(SGD_EOVERFLOW, "%s: too many layers", fn);
        sgd__layer *ls = sgd__realloc(a, s->layers, bytes);
        if (ls == NULL)
            return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
        s->layers = ls;
        s->cap = cap;
    }
    s->layers[s->n++] = *l;
    return SGD_OK;
}

/* ---------------------------------------------------------------- build */

void sgd__seq_mark_fused(sgd__seq *s)
{
    for (size_t i = 0; i < s->n; i++) {
        sgd__layer *l = &s->layers[i], *prev = i > 0 ? &s->layers[i - 1] : NULL;
        l->fused = prev != NULL && (prev->op->flags & SGD__OP_FUSES_NEXT) && l->op->fusable != NULL &&
                   l->op->apply != NULL && l->op->fusable(l);
        l->fuse_next = NULL;
        l->fuse_gbias = NULL;
        l->bwd_by_producer = false;
        l->lookup_into = NULL;
        l->lookup_from = prev != NULL && prev->op->lookup != NULL && (l->op->flags & SGD__OP_TAKES_LOOKUP) ? prev : NULL;
        if (l->lookup_from != NULL)
            prev->lookup_into = l;
        if (l->fused) {
            prev->fuse_next = l;
            l->fuse_gbias = prev->op->fused_bias_grad != NULL ? prev->op->fused_bias_grad(prev) : NULL;
            l->bwd_by_producer = (prev->op->flags & SGD__OP_FUSED_BACKWARD) && l->op->derive != NULL;
        }
        /*
         * A window layer right after a producer that runs planes, or after the
         * activation such a producer applies (and derives) itself: the producer
         * pools each output plane while it is in cache, and keeps no output.
         */
        l->plane_fused = false;
        l->fuse_pool = NULL;
        if (prev != NULL && l->op->plane_forward != NULL && l->op->plane_backward != NULL) {
            sgd__layer *p = prev->fused && prev->bwd_by_producer && i >= 2 ? &s->layers[i - 2] : prev;
            if ((p == prev || p->fuse_next == prev) && (p->op->flags & SGD__OP_FUSES_PLANES)) {
                l->plane_fused = true;
                p->fuse_pool = l;
            }
        }
        for (int k = 0; k < SGD__LAYER_MAX_SUBS; k++)
            if (l->sub[k] != NULL)
                sgd__seq_mark_fused(l->sub[k]);
    }
}

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* Reserves `bytes` at *at (aligned); returns the pointer when base != NULL. */
static bool take(unsigned char *base, size_t *at, size_t bytes, void **ptr)
{
    const size_t A = SGD__ARENA_ALIGN;
    if (bytes > SIZE_MAX - A)
        return false;
    if (base != NULL)
        *ptr = base + *at;
    return sgd__add_size(*at, round_up(bytes, A), at);
}

bool sgd__seq_layout(sgd__seq *s, int64_t batch, unsigned char *base, size_t *at)
{
    for (size_t i = 0; i < s->n; i++) {
        sgd__layer *l = &s->layers[i];
        void *buf = NULL, *ws = NULL;
        size_t cells, bytes;
        if (!l->fused && !(l->op->flags & SGD__OP_NO_BUFFER) && l->fuse_pool == NULL) {
            if (!sgd__mul_size((size_t)batch, (size_t)sgd__shape_numel(&l->out), &cells) ||
                !sgd__mul_size(cells, sizeof(float), &bytes) || !take(base, at, bytes, &buf))
                return false;
        }
        if (l->op->workspace != NULL) {
            if (!l->op->workspace(l, batch, &bytes) || !take(base, at, bytes, &ws))
                return false;
        }
        if (base != NULL) {
            l->buf = buf;
            l->ws = ws;
        }
        for (int k = 0; k < SGD__LAYER_MAX_SUBS; k++)
            if (l->sub[k] != NULL && !sgd__seq_layout(l->sub[k], batch, base, at))
                return false;
    }
    return true;
}

int64_t sgd__seq_widest(const sgd__seq *s)
{
    int64_t w = sgd__shape_numel(&s->in);
    for (size_t i = 0; i < s->n; i++) {
        int64_t o = sgd__shape_numel(&s->layers[i].out);
        w = o > w ? o : w;
    }
    return w;
}

/* ---------------------------------------------------------------- passes */

sgd_status sgd__seq_forward(sgd__seq *s, const float *x, const sgd__pass *p)
{
    for (size_t i = 0; i < s->n; i++) {
        sgd__layer *l = &s->layers[i];
        sgd_status st = l->op->forward(l, i == 0 ? x : s->layers[i - 1].y, p);
        if (st != SGD_OK)
            return st;
    }
    return SGD_OK;
}

float *sgd__seq_backward(sgd__seq *s, const float *x, float *g, float *gbuf[2], size_t first, bool need_gx,
                         const sgd__pass *p)
{
    for (size_t i = s->n; i-- > first;) {
        sgd__layer *l = &s->layers[i];
        float *other = g == gbuf[0] ? gbuf[1] : gbuf[0];
        bool need = i > first || need_gx;
        g = l->op->backward(l, i == 0 ? x : s->layers[i - 1].y, g, other, need, p);
        if (!need)
            return NULL;
    }
    return g;
}

/* The buffer that layer i's output occupies in a training pass (dropout active). */
static const float *train_output(const sgd__seq *s, size_t i, const float *x)
{
    for (;;) {
        const sgd__layer *l = &s->layers[i];
        if (!l->fused && !(l->op->flags & SGD__OP_NO_BUFFER) && l->fuse_pool == NULL)
            return l->buf;
        if (i == 0)
            return x;
        i--;
    }
}

void sgd__seq_replay_forward(sgd__seq *s, const float *x, int64_t batch)
{
    for (size_t i = 0; i < s->n; i++) {
        sgd__layer *l = &s->layers[i];
        if (l->op->replay_gemms != NULL)
            l->op->replay_gemms(l, i == 0 ? x : train_output(s, i - 1, x), NULL, NULL, false, batch);
    }
}

float *sgd__seq_replay_backward(sgd__seq *s, const float *x, float *g, float *gbuf[2], size_t first, bool need_gx,
                                int64_t batch)
{
    for (size_t i = s->n; i-- > first;) {
        sgd__layer *l = &s->layers[i];
        if (l->op->replay_gemms == NULL)
            continue;
        float *other = g == gbuf[0] ? gbuf[1] : gbuf[0];
        bool need = i > first || need_gx;
        l->op->replay_gemms(l, i == 0 ? x : train_output(s, i - 1, x), g, other, need, batch);
        if (need)
            g = other;
    }
    return g;
}

void sgd__seq_replay_gemms(sgd__seq *s, const float *x, float *g, float *gbuf[2], size_t first, bool need_gx,
                           int64_t batch)
{
    sgd__seq_replay_forward(s, x, batch);
    (void)sgd__seq_replay_backward(s, x, g, gbuf, first, need_gx, batch);
}

/* ---------------------------------------------------------------- printing */

const char *sgd__loss_name(int32_t kind)
{
    switch (kind) {
    case SGD_LOSS_CROSS_ENTROPY: return "cross_entropy";
    case SGD_LOSS_MSE: return "mse";
    case SGD_LOSS_BCE_WITH_LOGITS: return "bce_with_logits";
    default: return "unknown";
    }
}

const char *sgd__init_name(int32_t kind)
{
    switch (kind) {
    case SGD_INIT_TORCH: return "torch";
    case SGD_INIT_XAVIER_UNIFORM: return "xavier_uniform";
    case SGD_INIT_XAVIER_NORMAL: return "xavier_normal";
    case SGD_INIT_HE_UNIFORM: return "he_uniform";
    case SGD_INIT_HE_NORMAL: return "he_normal";
    default: return "unknown";
    }
}

void sgd__shape_str(const sgd__shape *s, char *buf, size_t n)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int32_t i = 0; i < s->rank; i++) {
        int w = snprintf(buf + at, n - at, i ? "x%lld" : "%lld", (long long)s->d[i]);
        if (w < 0 || (at += (size_t)w) >= n)
            return;
    }
}

size_t sgd__seq_print(const sgd__seq *s, char *buf, size_t n)
{
    size_t at = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (i > 0) {
            if (at + 1 < n)
                buf[at] = '-';
            at++;
        }
        int w = s->layers[i].op->print(&s->layers[i], at < n ? buf + at : NULL, at < n ? n - at : 0);
        if (w > 0)
            at += (size_t)w;
    }
    if (n > 0)
        buf[at < n ? at : n - 1] = '\0';
    return at;
}

sgd_status sgd__need_image(const sgd__layer *l, const char *fn)
{
    if (l->in.rank == 3)
        return SGD_OK;
    char in[SGD__SHAPE_BUF];
    sgd__shape_str(&l->in, in, sizeof in);
    return sgd__err(SGD_EINVAL, "%s: %s needs an image CxHxW as input, not %s (start the spec with a shape such as 1x28x28)",
                    fn, l->op->name, in);
}

sgd_status sgd__pool_dims(const sgd__layer *l, int64_t k, int64_t s, int64_t p, int64_t d, int64_t *ho, int64_t *wo,
                          const char *fn)
{
    int64_t H = l->in.d[1], W = l->in.d[2], span = d * (k - 1) + 1;
    if (H + 2 * p < span || W + 2 * p < span) {
        char in[SGD__SHAPE_BUF];
        sgd__shape_str(&l->in, in, sizeof in);
        return sgd__err(SGD_EINVAL,
                        "%s: %s: kernel_size=%lld (dilation=%lld, padding=%lld) spans %lld, larger than the input %s", fn,
                        l->op->name, (long long)k, (long long)d, (long long)p, (long long)span, in);
    }
    *ho = (H + 2 * p - span) / s + 1;
    *wo = (W + 2 * p - span) / s + 1;
    return SGD_OK;
}

sgd_status sgd__layer_parse_noargs(sgd__layer *l, const sgd__lspec *c)
{
    (void)l;
    sgd__largs a;
    sgd_status st = sgd__largs_split(c, &a, 1);
    return st != SGD_OK ? st : sgd__largs_check_used(c, &a, "it takes no arguments");
}

int sgd__layer_print_name(const sgd__layer *l, char *buf, size_t n)
{
    return snprintf(buf, n, "%s", l->op->name);
}

sgd_status sgd__layer_shape_same(sgd__layer *l, const char *fn)
{
    (void)fn;
    l->out = l->in;
    return SGD_OK;
}
