/*
 * Sequential models: building, arenas, initialisation, parameter access.
 * The passes themselves are in pass.c, the spec grammar in spec.c.
 * SPDX-License-Identifier: MIT
 */
#include "model/model_internal.h"

#include "core/abi.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* A separate stream for dropout, so that it never shares draws with the initialisation. */
#define SGD__DROPOUT_STREAM 0x6a09e667f3bcc909ULL

void sgd_model_options_init(sgd_model_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->init = SGD_INIT_TORCH;
    o->seed = 0;
    o->max_batch = 256;
    o->loss = SGD_LOSS_CROSS_ENTROPY;
    o->blas_threads = 1;
}

/* ---------------------------------------------------------------- building */

/* Grows the layer array and the spec buffer for one more layer; nothing changes on failure. */
static sgd_status reserve_layer(sgd_model *m, const char *fn)
{
    if (m->n_layers >= SGD_MODEL_MAX_LAYERS)
        return sgd__err(SGD_EOVERFLOW, "%s: a model has at most %d layers", fn, SGD_MODEL_MAX_LAYERS);
    size_t need_spec = 32 + (m->n_layers + 1) * (SGD__SPEC_TOKEN_MAX + 1) + 32;
    if (need_spec > m->spec_cap) {
        size_t cap = need_spec * 2;
        char *s = sgd__realloc(&m->alloc, m->spec, cap);
        if (s == NULL)
            return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
        m->spec = s;
        m->spec_cap = cap;
    }
    if (m->n_layers == m->cap_layers) {
        size_t cap = m->cap_layers ? m->cap_layers * 2 : 8, bytes;
        if (!sgd__mul_size(cap, sizeof(sgd__layer), &bytes))
            return sgd__err(SGD_EOVERFLOW, "%s: too many layers", fn);
        sgd__layer *l = sgd__realloc(&m->alloc, m->layers, bytes);
        if (l == NULL)
            return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
        m->layers = l;
        m->cap_layers = cap;
    }
    return SGD_OK;
}

sgd_status sgd_model_new(sgd_model **out, int64_t n_inputs, const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_model_new";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (n_inputs < 1 || n_inputs > SGD_MODEL_MAX_UNITS)
        return sgd__err(SGD_EINVAL, "%s: n_inputs=%lld: must be in [1, 2^24]", fn, (long long)n_inputs);
    sgd_allocator a;
    sgd_status st = sgd__allocator_init(&a, alloc, fn);
    if (st != SGD_OK)
        return st;
    sgd_model *m = sgd__malloc(&a, sizeof *m);
    if (m == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    memset(m, 0, sizeof *m);
    m->alloc = a;
    m->n_in = n_inputs;
    m->training = true;
    sgd_model_options o;
    sgd_model_options_init(&o);
    m->init = o.init;
    m->seed = o.seed;
    m->loss = o.loss;
    m->blas_threads = o.blas_threads;
    m->max_batch = o.max_batch;
    if ((st = reserve_layer(m, fn)) != SGD_OK) {
        sgd_model_free(m);
        return st;
    }
    sgd__model_write_spec(m);
    *out = m;
    return SGD_OK;
}

static sgd_status check_addable(sgd_model *m, const char *fn)
{
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (m->built)
        return sgd__err(SGD_ESTATE, "%s: the model is already built: layers cannot be added", fn);
    return reserve_layer(m, fn);
}

static int64_t last_width(const sgd_model *m)
{
    return m->n_layers ? m->layers[m->n_layers - 1].out : m->n_in;
}

static void push_layer(sgd_model *m, int32_t kind, int64_t out, bool bias, double param)
{
    sgd__layer *l = &m->layers[m->n_layers++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->in = m->n_layers > 1 ? m->layers[m->n_layers - 2].out : m->n_in;
    l->out = kind == SGD_LAYER_DENSE ? out : l->in;
    l->bias = bias;
    l->param = param;
    sgd__model_write_spec(m);
}

sgd_status sgd_model_add_dense(sgd_model *m, int64_t units, int32_t bias)
{
    static const char fn[] = "sgd_model_add_dense";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (units < 1 || units > SGD_MODEL_MAX_UNITS)
        return sgd__err(SGD_EINVAL, "%s: units=%lld: must be in [1, 2^24]", fn, (long long)units);
    sgd_status st = check_addable(m, fn);
    if (st != SGD_OK)
        return st;
    push_layer(m, SGD_LAYER_DENSE, units, bias != 0, 0.0);
    return SGD_OK;
}

sgd_status sgd_model_add_activation(sgd_model *m, int32_t kind)
{
    static const char fn[] = "sgd_model_add_activation";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    switch (kind) {
    case SGD_LAYER_RELU:
    case SGD_LAYER_TANH:
    case SGD_LAYER_SIGMOID:
    case SGD_LAYER_GELU:
    case SGD_LAYER_GELU_TANH:
    case SGD_LAYER_SOFTMAX: break;
    case SGD_LAYER_LEAKY_RELU:
        return sgd__err(SGD_EINVAL, "%s: kind=%d (leaky ReLU): use sgd_model_add_leaky_relu", fn, (int)kind);
    case SGD_LAYER_DROPOUT:
        return sgd__err(SGD_EINVAL, "%s: kind=%d (dropout): use sgd_model_add_dropout", fn, (int)kind);
    case SGD_LAYER_DENSE:
        return sgd__err(SGD_EINVAL, "%s: kind=%d (dense): use sgd_model_add_dense", fn, (int)kind);
    default: return sgd__err(SGD_EINVAL, "%s: kind=%d: not a layer kind", fn, (int)kind);
    }
    sgd_status st = check_addable(m, fn);
    if (st != SGD_OK)
        return st;
    push_layer(m, kind, 0, false, 0.0);
    return SGD_OK;
}

sgd_status sgd_model_add_leaky_relu(sgd_model *m, double negative_slope)
{
    static const char fn[] = "sgd_model_add_leaky_relu";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (!isfinite(negative_slope) || fabs(negative_slope) > 3.4e38)
        return sgd__err(SGD_ENONFINITE, "%s: negative_slope=%g: must be a finite float", fn, negative_slope);
    sgd_status st = check_addable(m, fn);
    if (st != SGD_OK)
        return st;
    push_layer(m, SGD_LAYER_LEAKY_RELU, 0, false, negative_slope);
    return SGD_OK;
}

sgd_status sgd_model_add_dropout(sgd_model *m, double p)
{
    static const char fn[] = "sgd_model_add_dropout";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (!(p >= 0.0 && p <= 1.0))
        return sgd__err(SGD_ERANGE, "%s: p=%g: must be in [0, 1]", fn, p);
    sgd_status st = check_addable(m, fn);
    if (st != SGD_OK)
        return st;
    push_layer(m, SGD_LAYER_DROPOUT, 0, false, p);
    return SGD_OK;
}

/* Refuses loss/architecture combinations that are always mistakes. */
static sgd_status check_loss(const sgd_model *m, int32_t loss, const char *fn)
{
    if (loss != SGD_LOSS_CROSS_ENTROPY && loss != SGD_LOSS_MSE && loss != SGD_LOSS_BCE_WITH_LOGITS)
        return sgd__err(SGD_EINVAL, "%s: loss=%d: not a loss kind (1 cross_entropy, 2 mse, 3 bce_with_logits)", fn,
                        (int)loss);
    if (m->n_layers == 0)
        return SGD_OK;
    int32_t last = m->layers[m->n_layers - 1].kind;
    if (loss == SGD_LOSS_CROSS_ENTROPY && last == SGD_LAYER_SOFTMAX)
        return sgd__err(SGD_EINVAL,
                        "%s: loss cross_entropy after a final softmax: the loss applies softmax itself; remove the "
                        "softmax layer",
                        fn);
    if (loss == SGD_LOSS_BCE_WITH_LOGITS && last == SGD_LAYER_SIGMOID)
        return sgd__err(SGD_EINVAL,
                        "%s: loss bce_with_logits after a final sigmoid: the loss applies the sigmoid itself; remove "
                        "the sigmoid layer",
                        fn);
    if (loss == SGD_LOSS_CROSS_ENTROPY && last_width(m) < 2)
        return sgd__err(SGD_EINVAL,
                        "%s: loss cross_entropy needs at least 2 outputs, the model has %lld (for one output use "
                        "bce_with_logits)",
                        fn, (long long)last_width(m));
    return SGD_OK;
}

static sgd_status check_options(const sgd_model *m, const sgd_model_options *o, const char *fn)
{
    if (o->init < SGD_INIT_TORCH || o->init > SGD_INIT_HE_NORMAL)
        return sgd__err(SGD_EINVAL, "%s: init=%d: not an initialisation kind (1 to 5)", fn, (int)o->init);
    if (o->max_batch < 1 || o->max_batch > SGD_MODEL_MAX_BATCH)
        return sgd__err(SGD_EINVAL, "%s: max_batch=%lld: must be in [1, 2^20]", fn, (long long)o->max_batch);
    if (o->blas_threads < 0 || o->blas_threads > 1024)
        return sgd__err(SGD_EINVAL, "%s: blas_threads=%d: must be in [0, 1024]", fn, (int)o->blas_threads);
    return check_loss(m, o->loss, fn);
}

/* ---------------------------------------------------------------- buffers */

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/*
 * Lays out the work block for batches of `batch` rows: every owned output
 * buffer, the dropout masks, the gradient ping-pong buffers and the
 * evaluation staging. With `base` NULL only computes the size (false on
 * overflow); otherwise assigns the pointers.
 */
static bool layout_work(sgd_model *m, int64_t batch, unsigned char *base, size_t *total)
{
    size_t at = 0, b = (size_t)batch, widest = 0, sz;
    const size_t A = SGD__ARENA_ALIGN;
#define SGD__TAKE(ptr, type, count)                                                                           \
    do {                                                                                                      \
        if (!sgd__mul_size((count), sizeof(type), &sz) || sz > SIZE_MAX - A)                                 \
            return false;                                                                                     \
        if (base != NULL)                                                                                     \
            (ptr) = (type *)(void *)(base + at);                                                              \
        if (!sgd__add_size(at, round_up(sz, A), &at))                                                        \
            return false;                                                                                     \
    } while (0)
    for (size_t i = 0; i < m->n_layers; i++) {
        sgd__layer *l = &m->layers[i];
        size_t cells;
        if (!sgd__mul_size(b, (size_t)l->out, &cells))
            return false;
        if ((size_t)l->out > widest)
            widest = (size_t)l->out;
        float *buf = NULL;
        if (!l->fused)
            SGD__TAKE(buf, float, cells);
        uint8_t *mask = NULL;
        if (l->kind == SGD_LAYER_DROPOUT)
            SGD__TAKE(mask, uint8_t, cells);
        if (base != NULL) {
            l->buf = buf;
            l->mask = mask;
        }
    }
    size_t gcells, xcells, tcells;
    if (!sgd__mul_size(b, widest, &gcells) || !sgd__mul_size(b, (size_t)m->n_in, &xcells) ||
        !sgd__mul_size(b, (size_t)last_width(m), &tcells))
        return false;
    SGD__TAKE(m->gbuf[0], float, gcells);
    SGD__TAKE(m->gbuf[1], float, gcells);
    SGD__TAKE(m->xstage, float, xcells);
    SGD__TAKE(m->lstage, int32_t, b);
    SGD__TAKE(m->tstage, float, tcells);
#undef SGD__TAKE
    *total = at;
    return true;
}

/* Allocates and lays out a work block for `batch`; on failure nothing changes. */
static sgd_status alloc_work(sgd_model *m, int64_t batch, const char *fn)
{
    size_t total;
    if (!layout_work(m, batch, NULL, &total))
        return sgd__err(SGD_EOVERFLOW, "%s: buffers for max_batch=%lld overflow", fn, (long long)batch);
    unsigned char *w = sgd__alloc_aligned(&m->alloc, total, 1);
    if (w == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory for %zu bytes of buffers (max_batch=%lld)", fn, total,
                        (long long)batch);
    sgd__free_aligned(&m->alloc, m->work);
    m->work = w;
    layout_work(m, batch, w, &total);
    m->max_batch = batch;
    m->phase = SGD__PHASE_NONE;
    return SGD_OK;
}

/* ---------------------------------------------------------------- initialisation */

static void fill_uniform(sgd__rng *r, float *p, size_t n, double bound)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(-bound + 2.0 * bound * sgd__rng_uniform(r));
}

static void fill_normal(sgd__rng *r, float *p, size_t n, double std)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(std * sgd__rng_normal(r));
}

/* Draws every dense layer's weight then bias, in layer order, from one generator seeded with `seed`. */
static void init_params(sgd_model *m, uint64_t seed)
{
    sgd__rng r;
    sgd__rng_seed(&r, seed);
    for (size_t i = 0; i < m->n_layers; i++) {
        sgd__layer *l = &m->layers[i];
        if (l->kind != SGD_LAYER_DENSE)
            continue;
        double fan_in = (double)l->in, fan_out = (double)l->out;
        size_t nw = sgd__tensor_numel(&l->w);
        switch (m->init) {
        case SGD_INIT_XAVIER_UNIFORM: fill_uniform(&r, l->w.data, nw, sqrt(6.0 / (fan_in + fan_out))); break;
        case SGD_INIT_XAVIER_NORMAL: fill_normal(&r, l->w.data, nw, sqrt(2.0 / (fan_in + fan_out))); break;
        case SGD_INIT_HE_UNIFORM: fill_uniform(&r, l->w.data, nw, sqrt(6.0 / fan_in)); break;
        case SGD_INIT_HE_NORMAL: fill_normal(&r, l->w.data, nw, sqrt(2.0 / fan_in)); break;
        default:
            /* kaiming_uniform_(a=sqrt(5)): gain sqrt(2/(1+5)), bound gain*sqrt(3/fan_in) = 1/sqrt(fan_in). */
            fill_uniform(&r, l->w.data, nw, 1.0 / sqrt(fan_in));
            break;
        }
        if (l->b.data != NULL) {
            size_t nb = sgd__tensor_numel(&l->b);
            if (m->init == SGD_INIT_TORCH)
                fill_uniform(&r, l->b.data, nb, 1.0 / sqrt(fan_in));
            else
                memset(l->b.data, 0, nb * sizeof(float));
        }
    }
    sgd__rng_seed(&m->rng, seed ^ SGD__DROPOUT_STREAM);
}

/* ---------------------------------------------------------------- build */

static bool fusable(const sgd__layer *act)
{
    switch (act->kind) {
    case SGD_LAYER_RELU:
    case SGD_LAYER_TANH:
    case SGD_LAYER_SIGMOID: return true;
    case SGD_LAYER_LEAKY_RELU: return act->param >= 0.0; /* the sign of y is then the sign of x */
    default: return false;
    }
}

sgd_status sgd_model_build(sgd_model *m, const sgd_model_options *opts)
{
    static const char fn[] = "sgd_model_build";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (m->built)
        return sgd__err(SGD_ESTATE, "%s: the model is already built", fn);
    sgd_model_options o;
    sgd_model_options_init(&o);
    sgd_status st = sgd__options_copy(&o, sizeof o, opts, SGD__FIRST(sgd_model_options), fn, "opts");
    if (st != SGD_OK)
        return st;
    if ((st = check_options(m, &o, fn)) != SGD_OK)
        return st;
    size_t n_dense = 0, n_bias = 0, nw = 0, nb = 0, first_dense = 0;
    for (size_t i = 0; i < m->n_layers; i++) {
        const sgd__layer *l = &m->layers[i];
        if (l->kind != SGD_LAYER_DENSE)
            continue;
        size_t w;
        if (!sgd__mul_size((size_t)l->in, (size_t)l->out, &w) || !sgd__add_size(nw, w, &nw) ||
            (l->bias && !sgd__add_size(nb, (size_t)l->out, &nb)))
            return sgd__err(SGD_EOVERFLOW, "%s: the parameter count overflows", fn);
        if (n_dense++ == 0)
            first_dense = i;
        n_bias += l->bias;
    }
    if (n_dense == 0)
        return sgd__err(SGD_EINVAL, "%s: the model has no dense layer, hence no parameters to train", fn);
    size_t n_params;
    if (!sgd__add_size(nw, nb, &n_params) || n_params > SIZE_MAX / sizeof(float) / 2)
        return sgd__err(SGD_EOVERFLOW, "%s: the parameter count overflows", fn);

    for (size_t i = 0; i < m->n_layers; i++)
        m->layers[i].fused = i > 0 && m->layers[i - 1].kind == SGD_LAYER_DENSE && fusable(&m->layers[i]);

    size_t n_tensors = n_dense + n_bias;
    size_t name_bytes = n_tensors * 24; /* "1023.weight" and the like */
    float *params = sgd__alloc_aligned(&m->alloc, n_params, sizeof(float));
    float *grads = params ? sgd__alloc_aligned(&m->alloc, n_params, sizeof(float)) : NULL;
    sgd__pinfo *pinfo = grads ? sgd__calloc(&m->alloc, n_tensors, sizeof *pinfo) : NULL;
    char *names = pinfo ? sgd__malloc(&m->alloc, name_bytes) : NULL;
    if (names == NULL) {
        sgd__free_aligned(&m->alloc, params);
        sgd__free_aligned(&m->alloc, grads);
        sgd__free(&m->alloc, pinfo);
        return sgd__err(SGD_ENOMEM, "%s: out of memory for %zu parameters", fn, n_params);
    }
    m->work = NULL;
    if ((st = alloc_work(m, o.max_batch, fn)) != SGD_OK) {
        sgd__free_aligned(&m->alloc, params);
        sgd__free_aligned(&m->alloc, grads);
        sgd__free(&m->alloc, pinfo);
        sgd__free(&m->alloc, names);
        for (size_t i = 0; i < m->n_layers; i++)
            m->layers[i].fused = false;
        return st;
    }
    /* Views: all weights in layer order, then all biases. */
    size_t woff = 0, boff = nw, t = 0, tb = n_dense;
    char *name = names;
    for (size_t i = 0; i < m->n_layers; i++) {
        sgd__layer *l = &m->layers[i];
        if (l->kind != SGD_LAYER_DENSE)
            continue;
        int64_t wshape[2] = {l->out, l->in};
        sgd__tensor_view(&l->w, params, n_params, woff, 2, wshape, fn);
        sgd__tensor_view(&l->gw, grads, n_params, woff, 2, wshape, fn);
        pinfo[t] = (sgd__pinfo){SGD_PARAM_WEIGHT, (int32_t)i, 2, {l->out, l->in}, woff, sgd__tensor_numel(&l->w),
                                name};
        name += snprintf(name, 24, "%zu.weight", i) + 1;
        woff += pinfo[t++].numel;
        memset(&l->b, 0, sizeof l->b);
        memset(&l->gb, 0, sizeof l->gb);
        if (l->bias) {
            sgd__tensor_view(&l->b, params, n_params, boff, 1, &l->out, fn);
            sgd__tensor_view(&l->gb, grads, n_params, boff, 1, &l->out, fn);
            pinfo[tb] = (sgd__pinfo){SGD_PARAM_BIAS, (int32_t)i, 1, {l->out, 1}, boff, (size_t)l->out, name};
            name += snprintf(name, 24, "%zu.bias", i) + 1;
            boff += pinfo[tb++].numel;
        }
    }
    m->params = params;
    m->grads = grads;
    m->n_params = n_params;
    m->pinfo = pinfo;
    m->n_ptensors = n_tensors;
    m->names = names;
    m->first_dense = first_dense;
    m->init = o.init;
    m->seed = o.seed;
    m->loss = o.loss;
    m->blas_threads = o.blas_threads;
    m->built = true;
    init_params(m, o.seed);
    sgd__model_write_spec(m);
    return SGD_OK;
}

sgd_status sgd_model_from_spec(sgd_model **out, const char *spec, const sgd_model_options *opts,
                               const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_model_from_spec";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (spec == NULL)
        return sgd__err(SGD_EINVAL, "%s: spec is NULL", fn);
    sgd_model_options o;
    sgd_model_options_init(&o);
    sgd_status st = sgd__options_copy(&o, sizeof o, opts, SGD__FIRST(sgd_model_options), fn, "opts");
    if (st != SGD_OK)
        return st;
    sgd_model *m;
    if ((st = sgd__model_parse_spec(&m, spec, &o, alloc, fn)) != SGD_OK)
        return st;
    if ((st = sgd_model_build(m, &o)) != SGD_OK) {
        sgd__err_prefix("%s: spec '%s'", fn, spec);
        sgd_model_free(m);
        return st;
    }
    *out = m;
    return SGD_OK;
}

void sgd_model_free(sgd_model *m)
{
    if (m == NULL)
        return;
    sgd_allocator a = m->alloc;
    sgd__free_aligned(&a, m->params);
    sgd__free_aligned(&a, m->grads);
    sgd__free_aligned(&a, m->work);
    sgd__free(&a, m->pinfo);
    sgd__free(&a, m->names);
    sgd__free(&a, m->layers);
    sgd__free(&a, m->spec);
    sgd__free(&a, m);
}

/* ---------------------------------------------------------------- queries */

const char *sgd_model_spec(const sgd_model *m)
{
    return m && m->spec ? m->spec : "";
}

int64_t sgd_model_num_inputs(const sgd_model *m)
{
    return m ? m->n_in : 0;
}

int64_t sgd_model_num_outputs(const sgd_model *m)
{
    return m ? last_width(m) : 0;
}

size_t sgd_model_num_layers(const sgd_model *m)
{
    return m ? m->n_layers : 0;
}

int32_t sgd_model_layer_kind(const sgd_model *m, size_t i)
{
    return m && i < m->n_layers ? m->layers[i].kind : 0;
}

int32_t sgd_model_loss_kind(const sgd_model *m)
{
    return m ? m->loss : 0;
}

sgd_status sgd_model_set_loss_kind(sgd_model *m, int32_t kind)
{
    static const char fn[] = "sgd_model_set_loss_kind";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    sgd_status st = check_loss(m, kind, fn);
    if (st != SGD_OK)
        return st;
    m->loss = kind;
    if (m->phase == SGD__PHASE_LOSS)
        m->phase = SGD__PHASE_FORWARD;
    sgd__model_write_spec(m);
    return SGD_OK;
}

/* ---------------------------------------------------------------- parameters */

static sgd_status check_built(const sgd_model *m, const char *fn)
{
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (!m->built)
        return sgd__err(SGD_ESTATE, "%s: the model is not built yet (call sgd_model_build)", fn);
    return SGD_OK;
}

size_t sgd_model_num_params(const sgd_model *m)
{
    return m ? m->n_params : 0;
}

size_t sgd_model_num_param_tensors(const sgd_model *m)
{
    return m ? m->n_ptensors : 0;
}

sgd_status sgd_model_param_info(const sgd_model *m, size_t index, sgd_param_info *info)
{
    static const char fn[] = "sgd_model_param_info";
    sgd_status st = check_built(m, fn);
    if (st != SGD_OK)
        return st;
    if (info == NULL)
        return sgd__err(SGD_EINVAL, "%s: info is NULL", fn);
    if (index >= m->n_ptensors)
        return sgd__err(SGD_EINVAL, "%s: index=%zu: the model has %zu parameter tensors", fn, index,
                        m->n_ptensors);
    const sgd__pinfo *p = &m->pinfo[index];
    sgd_param_info full;
    memset(&full, 0, sizeof full);
    full.struct_size = (uint32_t)sizeof full;
    full.kind = p->kind;
    full.name = p->name;
    full.layer = p->layer;
    full.rank = p->rank;
    full.shape[0] = p->shape[0];
    full.shape[1] = p->rank > 1 ? p->shape[1] : 1;
    full.shape[2] = full.shape[3] = 1;
    full.offset = p->offset;
    full.numel = p->numel;
    return SGD__FILL(info, &full, sgd_param_info, fn, "info");
}

sgd_status sgd_model_find_param(const sgd_model *m, const char *name, size_t *index)
{
    static const char fn[] = "sgd_model_find_param";
    sgd_status st = check_built(m, fn);
    if (st != SGD_OK)
        return st;
    if (name == NULL || index == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, name == NULL ? "name" : "index");
    for (size_t i = 0; i < m->n_ptensors; i++) {
        if (strcmp(m->pinfo[i].name, name) == 0) {
            *index = i;
            return SGD_OK;
        }
    }
    return sgd__err(SGD_ENOTFOUND, "%s: no parameter named '%.64s'", fn, name);
}

float *sgd_model_params(sgd_model *m)
{
    return m ? m->params : NULL;
}

float *sgd_model_grads(sgd_model *m)
{
    return m ? m->grads : NULL;
}

sgd_status sgd_model_get_params(const sgd_model *m, float *dst, size_t n)
{
    static const char fn[] = "sgd_model_get_params";
    sgd_status st = check_built(m, fn);
    if (st != SGD_OK)
        return st;
    if (dst == NULL)
        return sgd__err(SGD_EINVAL, "%s: dst is NULL", fn);
    if (n != m->n_params)
        return sgd__err(SGD_ESHAPE, "%s: n=%zu: the model has %zu parameters", fn, n, m->n_params);
    memcpy(dst, m->params, n * sizeof(float));
    return SGD_OK;
}

/* Names the parameter holding arena element `i` ("2.weight[3][17]"). */
static void describe_element(const sgd_model *m, size_t i, char *buf, size_t len)
{
    for (size_t t = 0; t < m->n_ptensors; t++) {
        const sgd__pinfo *p = &m->pinfo[t];
        if (i >= p->offset && i < p->offset + p->numel) {
            size_t k = i - p->offset;
            if (p->rank == 2)
                snprintf(buf, len, "%s[%zu][%zu]", p->name, k / (size_t)p->shape[1], k % (size_t)p->shape[1]);
            else
                snprintf(buf, len, "%s[%zu]", p->name, k);
            return;
        }
    }
    snprintf(buf, len, "element %zu", i);
}

sgd_status sgd_model_set_params(sgd_model *m, const float *src, size_t n)
{
    static const char fn[] = "sgd_model_set_params";
    sgd_status st = check_built(m, fn);
    if (st != SGD_OK)
        return st;
    if (src == NULL)
        return sgd__err(SGD_EINVAL, "%s: src is NULL", fn);
    if (n != m->n_params)
        return sgd__err(SGD_ESHAPE, "%s: n=%zu: the model has %zu parameters", fn, n, m->n_params);
    int64_t bad = sgd__find_nonfinite(src, n);
    if (bad >= 0) {
        char where[96];
        describe_element(m, (size_t)bad, where, sizeof where);
        return sgd__err(SGD_ENONFINITE, "%s: src[%lld] (%s) is %g: parameters must be finite", fn, (long long)bad,
                        where, (double)src[bad]);
    }
    memmove(m->params, src, n * sizeof(float));
    return SGD_OK;
}

sgd_status sgd_model_zero_grad(sgd_model *m)
{
    sgd_status st = check_built(m, "sgd_model_zero_grad");
    if (st != SGD_OK)
        return st;
    memset(m->grads, 0, m->n_params * sizeof(float));
    return SGD_OK;
}

sgd_status sgd_model_reset(sgd_model *m, uint64_t seed)
{
    sgd_status st = check_built(m, "sgd_model_reset");
    if (st != SGD_OK)
        return st;
    m->seed = seed;
    init_params(m, seed);
    memset(m->grads, 0, m->n_params * sizeof(float));
    m->phase = SGD__PHASE_NONE;
    return SGD_OK;
}

sgd_status sgd_model_get_rng_state(const sgd_model *m, uint64_t state[4])
{
    if (m == NULL || state == NULL)
        return sgd__err(SGD_EINVAL, "sgd_model_get_rng_state: %s is NULL", m == NULL ? "model" : "state");
    memcpy(state, m->rng.s, sizeof m->rng.s);
    return SGD_OK;
}

sgd_status sgd_model_set_rng_state(sgd_model *m, const uint64_t state[4])
{
    static const char fn[] = "sgd_model_set_rng_state";
    if (m == NULL || state == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, m == NULL ? "model" : "state");
    if ((state[0] | state[1] | state[2] | state[3]) == 0)
        return sgd__err(SGD_EINVAL, "%s: an all-zero state is not a state of the generator", fn);
    memcpy(m->rng.s, state, sizeof m->rng.s);
    return SGD_OK;
}

/* ---------------------------------------------------------------- modes */

sgd_status sgd_model_set_training(sgd_model *m, int32_t training)
{
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "sgd_model_set_training: model is NULL");
    m->training = training != 0;
    return SGD_OK;
}

int32_t sgd_model_is_training(const sgd_model *m)
{
    return m && m->training ? 1 : 0;
}

int64_t sgd_model_max_batch(const sgd_model *m)
{
    return m ? m->max_batch : 0;
}

sgd_status sgd_model_reserve(sgd_model *m, int64_t max_batch)
{
    static const char fn[] = "sgd_model_reserve";
    sgd_status st = check_built(m, fn);
    if (st != SGD_OK)
        return st;
    if (max_batch < 1 || max_batch > SGD_MODEL_MAX_BATCH)
        return sgd__err(SGD_EINVAL, "%s: max_batch=%lld: must be in [1, 2^20]", fn, (long long)max_batch);
    return alloc_work(m, max_batch, fn);
}

sgd_status sgd_model_set_blas_threads(sgd_model *m, int32_t threads)
{
    static const char fn[] = "sgd_model_set_blas_threads";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (threads < 0 || threads > 1024)
        return sgd__err(SGD_EINVAL, "%s: threads=%d: must be in [0, 1024]", fn, (int)threads);
    m->blas_threads = threads;
    return SGD_OK;
}
