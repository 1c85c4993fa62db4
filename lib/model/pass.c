/*
 * Forward and backward passes, losses, evaluation. Nothing here allocates:
 * every buffer was laid out when the model was built (or reserved).
 * SPDX-License-Identifier: MIT
 */
#include "model/model_internal.h"
#include "model/kernels.h"

#include "sgd_config.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

/* ---------------------------------------------------------------- BLAS threads */

/*
 * A model runs its matrix products with m->blas_threads BLAS threads (see
 * model.h). OpenBLAS 0.3.27 and later have a thread-local count,
 * openblas_set_num_threads_local(), which changes nothing for other threads:
 * it is used when the library finds it at run time (a weak reference). Older
 * versions (Debian 12 has 0.3.21) have only the process-wide count: the first
 * of the model calls in progress saves the host's count and sets the model's,
 * and the last one to return restores it, under a lock, so that models used
 * from several threads at once never restore the count under each other's
 * feet. This lock and the two integers it guards mirror OpenBLAS's own global
 * setting; they are the only library-wide state besides error messages.
 */
#if SGD_HAVE_OPENBLAS
#if defined(__GNUC__) && defined(__ELF__)
extern int openblas_set_num_threads_local(int num_threads) __attribute__((weak));
#define SGD__HAVE_LOCAL_THREADS_REF 1
#endif
static pthread_mutex_t sgd__blas_lock = PTHREAD_MUTEX_INITIALIZER;
static int sgd__blas_active; /* model calls in progress that set the process-wide count */
static int sgd__blas_saved;  /* the count before the first of them */
#endif

enum { SGD__BLAS_UNTOUCHED = 0, SGD__BLAS_LOCAL = 1, SGD__BLAS_GLOBAL = 2 };

typedef struct blas_guard {
    int mode;
    int prev; /* SGD__BLAS_LOCAL: this thread's previous count */
} blas_guard;

static void blas_enter(const sgd_model *m, blas_guard *g)
{
    g->mode = SGD__BLAS_UNTOUCHED;
    g->prev = 0;
#if SGD_HAVE_OPENBLAS
    int n = m->blas_threads;
    if (n <= 0)
        return;
#if defined(SGD__HAVE_LOCAL_THREADS_REF)
    if (openblas_set_num_threads_local != NULL) {
        g->prev = openblas_set_num_threads_local(n);
        g->mode = SGD__BLAS_LOCAL;
        return;
    }
#endif
    pthread_mutex_lock(&sgd__blas_lock);
    if (sgd__blas_active++ == 0) {
        sgd__blas_saved = openblas_get_num_threads();
        if (sgd__blas_saved != n)
            openblas_set_num_threads(n);
    }
    pthread_mutex_unlock(&sgd__blas_lock);
    g->mode = SGD__BLAS_GLOBAL;
#else
    (void)m;
#endif
}

static void blas_leave(blas_guard *g)
{
#if SGD_HAVE_OPENBLAS
#if defined(SGD__HAVE_LOCAL_THREADS_REF)
    if (g->mode == SGD__BLAS_LOCAL) {
        openblas_set_num_threads_local(g->prev);
        return;
    }
#endif
    if (g->mode == SGD__BLAS_GLOBAL) {
        pthread_mutex_lock(&sgd__blas_lock);
        if (--sgd__blas_active == 0 && openblas_get_num_threads() != sgd__blas_saved)
            openblas_set_num_threads(sgd__blas_saved);
        pthread_mutex_unlock(&sgd__blas_lock);
    }
#else
    (void)g;
#endif
}

/* ---------------------------------------------------------------- activations */

static const float SGD__SQRT1_2 = 0.70710678118654752440f;
static const float SGD__INV_SQRT_2PI = 0.39894228040143267794f;
static const float SGD__SQRT_2_OVER_PI = 0.79788456080286535588f;
static const float SGD__GELU_KAPPA = 0.044715f;

/* Row kernels: restrict parameters, blocked loops (see kernels.h). */
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

/*
 * y[r][j] = f(y[r][j] + bias[j]) in place, for rows x cols (bias may be
 * NULL; kind 0 adds the bias only). NaN propagates through every activation,
 * as in PyTorch, so that a diverging run stays visible.
 */
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

/* out = f(in), row by row (out != in): a copy, then the in-place kernel. */
static void act_forward(int32_t kind, float slope, const float *in, float *out, int64_t rows, int64_t cols)
{
    memcpy(out, in, (size_t)rows * (size_t)cols * sizeof(float));
    act_inplace(kind, slope, out, NULL, rows, cols);
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
 * gradient of the dense layer before a fused activation). kind 0: identity.
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

static void softmax_rows(const float *in, float *out, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *x = in + (size_t)r * (size_t)cols;
        float *y = out + (size_t)r * (size_t)cols;
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
}

static void softmax_backward(const float *y, float *g, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + (size_t)r * (size_t)cols;
        float *gr = g + (size_t)r * (size_t)cols;
        double dot = 0.0;
        for (int64_t j = 0; j < cols; j++)
            dot += (double)gr[j] * yr[j];
        float d = (float)dot;
        for (int64_t j = 0; j < cols; j++)
            gr[j] = yr[j] * (gr[j] - d);
    }
}

/* y = x * mask * scale (x may be y). */
static void dropout_apply(float *y, const float *x, const uint8_t *restrict mask, float scale, size_t n)
{
    SGD__FOR_BLOCKED(k, n, y[k] = mask[k] ? x[k] * scale : 0.0f;);
}

/* Dropout in training mode: draws the keep mask (two 32-bit draws per generator output). */
static void dropout_forward(sgd__rng *rng, double p, const float *x, float *y, uint8_t *mask, size_t n)
{
    uint64_t thr = p >= 1.0 ? ((uint64_t)1 << 32) : (uint64_t)ldexp(p, 32); /* drop when u < thr */
    float scale = p >= 1.0 ? 0.0f : (float)(1.0 / (1.0 - p));
    for (size_t k = 0; k < n; k += 2) {
        uint64_t r = sgd__rng_next(rng);
        mask[k] = (r & 0xffffffffu) >= thr;
        if (k + 1 < n)
            mask[k + 1] = (r >> 32) >= thr;
    }
    dropout_apply(y, x, mask, scale, n);
}

static void dropout_backward(double p, const uint8_t *mask, float *g, size_t n)
{
    float scale = p >= 1.0 ? 0.0f : (float)(1.0 / (1.0 - p));
    dropout_apply(g, g, mask, scale, n);
}

/* ---------------------------------------------------------------- forward */

/* The input of layer i in the current pass. */
static const float *layer_input(const sgd_model *m, size_t i)
{
    return i == 0 ? m->x : m->layers[i - 1].y;
}

static bool dropout_active(const sgd__layer *l, bool training)
{
    return training && l->param > 0.0;
}

static sgd_status forward_pass(sgd_model *m, const float *x, int64_t batch, bool training, const char *fn)
{
    m->phase = SGD__PHASE_NONE;
    m->x = x;
    for (size_t i = 0; i < m->n_layers; i++) {
        sgd__layer *l = &m->layers[i];
        const float *in = layer_input(m, i);
        size_t cells = (size_t)batch * (size_t)l->out;
        switch (l->kind) {
        case SGD_LAYER_DENSE: {
            sgd__tensor X = sgd__tensor_2d(in, batch, l->in), Y = sgd__tensor_2d(l->buf, batch, l->out);
            sgd_status st = sgd__tensor_gemm(false, true, &X, &l->w, 0.0f, &Y, fn);
            if (st != SGD_OK)
                return st;
            const sgd__layer *next = i + 1 < m->n_layers ? &m->layers[i + 1] : NULL;
            if (next != NULL && next->fused)
                act_inplace(next->kind, (float)next->param, l->buf, l->b.data, batch, l->out);
            else if (l->b.data != NULL)
                act_inplace(0, 0.0f, l->buf, l->b.data, batch, l->out);
            l->y = l->buf;
            break;
        }
        case SGD_LAYER_SOFTMAX:
            softmax_rows(in, l->buf, batch, l->out);
            l->y = l->buf;
            break;
        case SGD_LAYER_DROPOUT:
            if (dropout_active(l, training)) {
                dropout_forward(&m->rng, l->param, in, l->buf, l->mask, cells);
                l->y = l->buf;
            } else {
                l->y = in;
            }
            break;
        default: /* activations */
            if (l->fused) {
                l->y = in; /* computed in place by the dense layer's pass */
            } else {
                act_forward(l->kind, (float)l->param, in, l->buf, batch, l->out);
                l->y = l->buf;
            }
            break;
        }
    }
    m->batch = batch;
    m->fwd_training = training;
    m->phase = SGD__PHASE_FORWARD;
    return SGD_OK;
}

static sgd_status check_batch(const sgd_model *m, const float *x, int64_t batch, const char *fn)
{
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (!m->built)
        return sgd__err(SGD_ESTATE, "%s: the model is not built yet (call sgd_model_build)", fn);
    if (x == NULL)
        return sgd__err(SGD_EINVAL, "%s: x is NULL", fn);
    if (batch < 1)
        return sgd__err(SGD_EINVAL, "%s: batch=%lld: must be >= 1", fn, (long long)batch);
    if (batch > m->max_batch)
        return sgd__err(SGD_EINVAL, "%s: batch=%lld exceeds max_batch=%lld (raise it with sgd_model_reserve)", fn,
                        (long long)batch, (long long)m->max_batch);
    int64_t bad = sgd__find_nonfinite(x, (size_t)batch * (size_t)m->n_in);
    if (bad >= 0)
        return sgd__err(SGD_ENONFINITE, "%s: x[%lld][%lld] is %g: inputs must be finite", fn,
                        (long long)(bad / m->n_in), (long long)(bad % m->n_in), (double)x[bad]);
    return SGD_OK;
}

static const float *model_output(const sgd_model *m)
{
    return m->layers[m->n_layers - 1].y;
}

static int64_t n_out(const sgd_model *m)
{
    return m->layers[m->n_layers - 1].out;
}

sgd_status sgd_model_forward(sgd_model *m, const float *x, int64_t batch, const float **out)
{
    static const char fn[] = "sgd_model_forward";
    if (out != NULL)
        *out = NULL;
    sgd_status st = check_batch(m, x, batch, fn);
    if (st != SGD_OK)
        return st;
    blas_guard g;
    blas_enter(m, &g);
    st = forward_pass(m, x, batch, m->training, fn);
    blas_leave(&g);
    if (st == SGD_OK && out != NULL)
        *out = model_output(m);
    return st;
}

/* ---------------------------------------------------------------- losses */

/*
 * The loss of outputs y (rows x c) against labels or targets: adds the sum of
 * the per-row (cross-entropy) or per-element losses to *sum and the correct
 * predictions to *correct; if grad is set, writes dLoss/dy of the mean loss
 * (scaled by 1/`mean_over` rows or elements) into it.
 */
static sgd_status loss_eval(const sgd_model *m, const float *y, int64_t rows, const int32_t *labels,
                            const float *targets, float *grad, double *sum, int64_t *correct, int64_t row0,
                            const char *fn)
{
    int64_t c = n_out(m);
    double s = 0.0;
    int64_t ok = 0;
    if (m->loss == SGD_LOSS_CROSS_ENTROPY) {
        float inv_b = 1.0f / (float)rows;
        for (int64_t r = 0; r < rows; r++) {
            int32_t lab = labels[r];
            if (lab < 0 || lab >= c)
                return sgd__err(SGD_EINVAL, "%s: labels[%lld]=%d: must be in [0, %lld) (the model has %lld outputs)",
                                fn, (long long)(row0 + r), (int)lab, (long long)c, (long long)c);
            const float *z = y + (size_t)r * (size_t)c;
            float mx = z[0];
            int64_t arg = 0;
            for (int64_t j = 1; j < c; j++)
                if (z[j] > mx) {
                    mx = z[j];
                    arg = j;
                }
            double se = 0.0;
            for (int64_t j = 0; j < c; j++)
                se += expf(z[j] - mx);
            s += (double)mx + log(se) - (double)z[lab];
            ok += arg == lab;
            if (grad != NULL) {
                float *g = grad + (size_t)r * (size_t)c;
                float inv_se = (float)(1.0 / se);
                for (int64_t j = 0; j < c; j++)
                    g[j] = expf(z[j] - mx) * inv_se * inv_b;
                g[lab] -= inv_b;
            }
        }
    } else {
        size_t n = (size_t)rows * (size_t)c;
        int64_t bad = sgd__find_nonfinite(targets, n);
        if (bad >= 0)
            return sgd__err(SGD_ENONFINITE, "%s: targets[%lld][%lld] is %g: targets must be finite", fn,
                            (long long)(row0 + bad / c), (long long)(bad % c), (double)targets[bad]);
        float inv_n = 1.0f / (float)n;
        if (m->loss == SGD_LOSS_MSE) {
            for (size_t k = 0; k < n; k++) {
                float d = y[k] - targets[k];
                s += (double)d * d;
                if (grad != NULL)
                    grad[k] = 2.0f * d * inv_n;
            }
        } else { /* BCE with logits: max(z,0) - z t + log(1 + exp(-|z|)) */
            for (size_t k = 0; k < n; k++) {
                float z = y[k], t = targets[k];
                s += (double)(z > 0.0f ? z : 0.0f) - (double)z * t + log1p(exp(-fabs((double)z)));
                ok += (z > 0.0f) == (t > 0.5f);
                if (grad != NULL) {
                    float sig = 1.0f / (1.0f + expf(-z));
                    grad[k] = (sig - t) * inv_n;
                }
            }
        }
    }
    *sum += s;
    *correct += ok;
    return SGD_OK;
}

static double loss_mean(const sgd_model *m, double sum, int64_t rows)
{
    return m->loss == SGD_LOSS_CROSS_ENTROPY ? sum / (double)rows : sum / ((double)rows * (double)n_out(m));
}

static sgd_status check_loss_inputs(const sgd_model *m, const int32_t *labels, const float *targets,
                                    const char *fn)
{
    if (m->loss == SGD_LOSS_CROSS_ENTROPY && labels == NULL)
        return sgd__err(SGD_EINVAL, "%s: labels is NULL: loss cross_entropy needs int32 class labels", fn);
    if (m->loss != SGD_LOSS_CROSS_ENTROPY && targets == NULL)
        return sgd__err(SGD_EINVAL, "%s: targets is NULL: loss %s needs float targets", fn, sgd__loss_name(m->loss));
    return SGD_OK;
}

static sgd_status compute_loss(sgd_model *m, const int32_t *labels, const float *targets, double *loss,
                               const char *fn)
{
    sgd_status st = check_loss_inputs(m, labels, targets, fn);
    if (st != SGD_OK)
        return st;
    double sum = 0.0;
    int64_t correct = 0;
    m->gcur = m->gbuf[0];
    st = loss_eval(m, model_output(m), m->batch, labels, targets, m->gcur, &sum, &correct, 0, fn);
    if (st != SGD_OK)
        return st;
    if (loss != NULL)
        *loss = loss_mean(m, sum, m->batch);
    m->phase = SGD__PHASE_LOSS;
    return SGD_OK;
}

static sgd_status check_forward_done(const sgd_model *m, const char *fn)
{
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (m->phase == SGD__PHASE_NONE)
        return sgd__err(SGD_ESTATE, "%s: no forward pass to use (call sgd_model_forward first)", fn);
    return SGD_OK;
}

sgd_status sgd_model_compute_loss(sgd_model *m, const int32_t *labels, const float *targets, double *loss)
{
    static const char fn[] = "sgd_model_compute_loss";
    sgd_status st = check_forward_done(m, fn);
    if (st != SGD_OK)
        return st;
    return compute_loss(m, labels, targets, loss, fn);
}

/* ---------------------------------------------------------------- backward */

/* Back-propagates m->gcur (dLoss/dOutput, in gbuf[0]); adds to the gradient arena. */
static sgd_status backward_pass(sgd_model *m, const char *fn)
{
    int64_t batch = m->batch;
    float *g = m->gcur;
    for (size_t i = m->n_layers; i-- > m->first_dense;) {
        sgd__layer *l = &m->layers[i];
        const float *in = layer_input(m, i);
        size_t cells = (size_t)batch * (size_t)l->out;
        switch (l->kind) {
        case SGD_LAYER_DENSE: {
            const sgd__layer *next = i + 1 < m->n_layers ? &m->layers[i + 1] : NULL;
            if (l->gb.data != NULL && !(next != NULL && next->fused))
                act_backward(0, 0.0f, NULL, NULL, g, l->gb.data, batch, l->out);
            sgd__tensor G = sgd__tensor_2d(g, batch, l->out), X = sgd__tensor_2d(in, batch, l->in);
            sgd_status st = sgd__tensor_gemm(true, false, &G, &X, 1.0f, &l->gw, fn); /* dW += G^T X */
            if (st != SGD_OK)
                return st;
            if (i > m->first_dense) {
                float *other = g == m->gbuf[0] ? m->gbuf[1] : m->gbuf[0];
                sgd__tensor DX = sgd__tensor_2d(other, batch, l->in);
                if ((st = sgd__tensor_gemm(false, false, &G, &l->w, 0.0f, &DX, fn)) != SGD_OK) /* dX = G W */
                    return st;
                g = other;
            }
            break;
        }
        case SGD_LAYER_SOFTMAX: softmax_backward(l->y, g, batch, l->out); break;
        case SGD_LAYER_DROPOUT:
            if (dropout_active(l, m->fwd_training))
                dropout_backward(l->param, l->mask, g, cells);
            break;
        default: { /* activations; a fused one also accumulates its dense layer's bias gradient */
            float *gbias = l->fused ? m->layers[i - 1].gb.data : NULL;
            act_backward(l->kind, (float)l->param, in, l->y, g, gbias, batch, l->out);
            break;
        }
        }
    }
    m->phase = SGD__PHASE_FORWARD;
    return SGD_OK;
}

sgd_status sgd_model_backward(sgd_model *m)
{
    static const char fn[] = "sgd_model_backward";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (m->phase != SGD__PHASE_LOSS)
        return sgd__err(SGD_ESTATE,
                        "%s: no loss to back-propagate (call sgd_model_compute_loss after sgd_model_forward; each "
                        "backward pass needs its own)",
                        fn);
    blas_guard g;
    blas_enter(m, &g);
    sgd_status st = backward_pass(m, fn);
    blas_leave(&g);
    return st;
}

sgd_status sgd_model_backward_from(sgd_model *m, const float *grad_output)
{
    static const char fn[] = "sgd_model_backward_from";
    sgd_status st = check_forward_done(m, fn);
    if (st != SGD_OK)
        return st;
    if (grad_output == NULL)
        return sgd__err(SGD_EINVAL, "%s: grad_output is NULL", fn);
    size_t n = (size_t)m->batch * (size_t)n_out(m);
    int64_t bad = sgd__find_nonfinite(grad_output, n);
    if (bad >= 0)
        return sgd__err(SGD_ENONFINITE, "%s: grad_output[%lld][%lld] is %g: must be finite", fn,
                        (long long)(bad / n_out(m)), (long long)(bad % n_out(m)), (double)grad_output[bad]);
    m->gcur = m->gbuf[0];
    memcpy(m->gcur, grad_output, n * sizeof(float));
    blas_guard g;
    blas_enter(m, &g);
    st = backward_pass(m, fn);
    blas_leave(&g);
    return st;
}

sgd_status sgd_model_forward_backward(sgd_model *m, const float *x, const int32_t *labels, const float *targets,
                                      int64_t batch, double *loss)
{
    static const char fn[] = "sgd_model_forward_backward";
    sgd_status st = check_batch(m, x, batch, fn);
    if (st != SGD_OK)
        return st;
    if ((st = check_loss_inputs(m, labels, targets, fn)) != SGD_OK)
        return st;
    blas_guard g;
    blas_enter(m, &g);
    st = forward_pass(m, x, batch, m->training, fn);
    if (st == SGD_OK)
        st = compute_loss(m, labels, targets, loss, fn);
    if (st == SGD_OK)
        st = backward_pass(m, fn);
    blas_leave(&g);
    return st;
}

/* ---------------------------------------------------------------- evaluation */

sgd_status sgd_model_predict(sgd_model *m, const float *x, int64_t n, float *out, size_t out_len)
{
    static const char fn[] = "sgd_model_predict";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (!m->built)
        return sgd__err(SGD_ESTATE, "%s: the model is not built yet (call sgd_model_build)", fn);
    if (x == NULL || out == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, x == NULL ? "x" : "out");
    if (n < 1)
        return sgd__err(SGD_EINVAL, "%s: n=%lld: must be >= 1", fn, (long long)n);
    size_t need;
    if (!sgd__mul_size((size_t)n, (size_t)n_out(m), &need))
        return sgd__err(SGD_EOVERFLOW, "%s: n=%lld: the output size overflows", fn, (long long)n);
    if (out_len < need)
        return sgd__err(SGD_ESHAPE, "%s: out_len=%zu: %lld rows of %lld outputs need %zu", fn, out_len,
                        (long long)n, (long long)n_out(m), need);
    sgd_status st = SGD_OK;
    blas_guard g;
    blas_enter(m, &g);
    for (int64_t start = 0; start < n && st == SGD_OK; start += m->max_batch) {
        int64_t count = n - start < m->max_batch ? n - start : m->max_batch;
        const float *xb = x + (size_t)start * (size_t)m->n_in;
        st = check_batch(m, xb, count, fn);
        if (st == SGD_ENONFINITE) {
            int64_t bad = sgd__find_nonfinite(xb, (size_t)count * (size_t)m->n_in);
            st = sgd__err(SGD_ENONFINITE, "%s: x[%lld][%lld] is %g: inputs must be finite", fn,
                          (long long)(start + bad / m->n_in), (long long)(bad % m->n_in), (double)xb[bad]);
        }
        if (st == SGD_OK)
            st = forward_pass(m, xb, count, false, fn);
        if (st == SGD_OK)
            memcpy(out + (size_t)start * (size_t)n_out(m), model_output(m),
                   (size_t)count * (size_t)n_out(m) * sizeof(float));
    }
    blas_leave(&g);
    m->phase = SGD__PHASE_NONE;
    return st;
}

sgd_status sgd_model_evaluate(sgd_model *m, const sgd_dataset *d, int64_t batch_size, double *loss,
                              double *accuracy)
{
    static const char fn[] = "sgd_model_evaluate";
    if (loss != NULL)
        *loss = NAN;
    if (accuracy != NULL)
        *accuracy = NAN;
    if (m == NULL || d == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, m == NULL ? "model" : "dataset");
    if (!m->built)
        return sgd__err(SGD_ESTATE, "%s: the model is not built yet (call sgd_model_build)", fn);
    if (batch_size == 0)
        batch_size = m->max_batch;
    if (batch_size < 1 || batch_size > m->max_batch)
        return sgd__err(SGD_EINVAL, "%s: batch_size=%lld: must be in [1, max_batch=%lld] (or 0)", fn,
                        (long long)batch_size, (long long)m->max_batch);
    if (d->dim != m->n_in)
        return sgd__err(SGD_ESHAPE, "%s: the dataset has %lld features per row, the model takes %lld", fn,
                        (long long)d->dim, (long long)m->n_in);
    if (m->loss == SGD_LOSS_CROSS_ENTROPY && d->labels == NULL)
        return sgd__err(SGD_EINVAL, "%s: loss cross_entropy needs class labels; the dataset has float targets", fn);
    if (m->loss != SGD_LOSS_CROSS_ENTROPY) {
        if (d->targets == NULL)
            return sgd__err(SGD_EINVAL, "%s: loss %s needs float targets; the dataset has class labels", fn,
                            sgd__loss_name(m->loss));
        if (d->tdim != n_out(m))
            return sgd__err(SGD_ESHAPE, "%s: the dataset has %lld targets per row, the model %lld outputs", fn,
                            (long long)d->tdim, (long long)n_out(m));
    }
    double sum = 0.0;
    int64_t correct = 0;
    sgd_status st = SGD_OK;
    blas_guard g;
    blas_enter(m, &g);
    for (int64_t start = 0; start < d->n && st == SGD_OK; start += batch_size) {
        int64_t count = d->n - start < batch_size ? d->n - start : batch_size;
        const float *x;
        const int32_t *labels;
        const float *targets;
        sgd__dataset_gather(d, start, NULL, count, m->xstage, m->lstage, m->tstage, &x, &labels, &targets);
        int64_t bad = sgd__find_nonfinite(x, (size_t)count * (size_t)m->n_in);
        if (bad >= 0) {
            st = sgd__err(SGD_ENONFINITE, "%s: row %lld, feature %lld is %g: inputs must be finite", fn,
                          (long long)(start + bad / m->n_in), (long long)(bad % m->n_in), (double)x[bad]);
            break;
        }
        st = forward_pass(m, x, count, false, fn);
        if (st == SGD_OK)
            st = loss_eval(m, model_output(m), count, labels, targets, NULL, &sum, &correct, start, fn);
    }
    blas_leave(&g);
    m->phase = SGD__PHASE_NONE;
    if (st != SGD_OK)
        return st;
    if (loss != NULL)
        *loss = loss_mean(m, sum, d->n);
    if (accuracy != NULL) {
        if (m->loss == SGD_LOSS_CROSS_ENTROPY)
            *accuracy = (double)correct / (double)d->n;
        else if (m->loss == SGD_LOSS_BCE_WITH_LOGITS)
            *accuracy = (double)correct / ((double)d->n * (double)n_out(m));
    }
    return SGD_OK;
}

/* ---------------------------------------------------------------- benchmark support */

/* The buffer layer i writes in a training forward pass (dropout active). */
static const float *train_output_buffer(const sgd_model *m, size_t i)
{
    return m->layers[i].fused ? m->layers[i - 1].buf : m->layers[i].buf;
}

void sgd__model_replay_gemms(sgd_model *m, int64_t batch)
{
    static const char fn[] = "sgd__model_replay_gemms";
    blas_guard g;
    blas_enter(m, &g);
    for (size_t i = 0; i < m->n_layers; i++) {
        sgd__layer *l = &m->layers[i];
        if (l->kind != SGD_LAYER_DENSE)
            continue;
        const float *in = i == 0 ? m->xstage : train_output_buffer(m, i - 1);
        sgd__tensor X = sgd__tensor_2d(in, batch, l->in), Y = sgd__tensor_2d(l->buf, batch, l->out);
        (void)sgd__tensor_gemm(false, true, &X, &l->w, 0.0f, &Y, fn);
    }
    float *gcur = m->gbuf[0];
    for (size_t i = m->n_layers; i-- > m->first_dense;) {
        sgd__layer *l = &m->layers[i];
        if (l->kind != SGD_LAYER_DENSE)
            continue;
        const float *in = i == 0 ? m->xstage : train_output_buffer(m, i - 1);
        sgd__tensor G = sgd__tensor_2d(gcur, batch, l->out), X = sgd__tensor_2d(in, batch, l->in);
        (void)sgd__tensor_gemm(true, false, &G, &X, 1.0f, &l->gw, fn);
        if (i > m->first_dense) {
            float *other = gcur == m->gbuf[0] ? m->gbuf[1] : m->gbuf[0];
            sgd__tensor DX = sgd__tensor_2d(other, batch, l->in);
            (void)sgd__tensor_gemm(false, false, &G, &l->w, 0.0f, &DX, fn);
            gcur = other;
        }
    }
    blas_leave(&g);
}
