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

static sgd_status prepare_spec(sgd_model *m);

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

static sgd_status new_shaped(sgd_model **out, int32_t rank, const int64_t *shape, const sgd_allocator *alloc,
                             const char *fn)
{
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (rank < 1 || rank > SGD__SHAPE_MAX_RANK)
        return sgd__err(SGD_EINVAL, "%s: rank=%d: must be 1 (F), 2 (T, F) or 3 (C, H, W)", fn, (int)rank);
    if (shape == NULL)
        return sgd__err(SGD_EINVAL, "%s: shape is NULL", fn);
    sgd__shape in = {rank, {1, 1, 1}};
    for (int32_t i = 0; i < rank; i++) {
        if (shape[i] < 1 || shape[i] > SGD_MODEL_MAX_UNITS)
            return sgd__err(SGD_EINVAL, "%s: shape[%d]=%lld: must be in [1, 2^24]", fn, (int)i, (long long)shape[i]);
        in.d[i] = shape[i];
    }
    if (sgd__shape_numel(&in) > SGD__SAMPLE_MAX_NUMEL)
        return sgd__err(SGD_EINVAL, "%s: more than 2^26 values per sample", fn);
    sgd_allocator a;
    sgd_status st = sgd__allocator_init(&a, alloc, fn);
    if (st != SGD_OK)
        return st;
    sgd_model *m = sgd__malloc(&a, sizeof *m);
    if (m == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    memset(m, 0, sizeof *m);
    m->alloc = a;
    m->seq.in = in;
    m->n_in = sgd__shape_numel(&in);
    m->training = true;
    sgd_model_options o;
    sgd_model_options_init(&o);
    m->init = o.init;
    m->seed = o.seed;
    m->loss = o.loss;
    m->blas_threads = o.blas_threads;
    m->max_batch = o.max_batch;
    *out = m;
    return SGD_OK;
}

sgd_status sgd_model_new_shaped(sgd_model **out, int32_t rank, const int64_t *shape, const sgd_allocator *alloc)
{
    return new_shaped(out, rank, shape, alloc, "sgd_model_new_shaped");
}

sgd_status sgd_model_new(sgd_model **out, int64_t n_inputs, const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_model_new";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (n_inputs < 1 || n_inputs > SGD_MODEL_MAX_UNITS)
        return sgd__err(SGD_EINVAL, "%s: n_inputs=%lld: must be in [1, 2^24]", fn, (long long)n_inputs);
    return new_shaped(out, 1, &n_inputs, alloc, fn);
}

static sgd_status check_addable(const sgd_model *m, const char *fn)
{
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (m->built)
        return sgd__err(SGD_ESTATE, "%s: the model is already built: layers cannot be added", fn);
    return SGD_OK;
}

/* Appends a layer of `op` with these arguments; nothing changes on failure. */
static sgd_status add(sgd_model *m, const sgd__layer_op *op, const int64_t *ia, size_t nia, const double *da,
                      size_t nda, const char *fn)
{
    sgd_status st = check_addable(m, fn);
    if (st != SGD_OK)
        return st;
    sgd__layer l;
    memset(&l, 0, sizeof l);
    l.op = op;
    for (size_t k = 0; k < nia; k++)
        l.ia[k] = ia[k];
    for (size_t k = 0; k < nda; k++)
        l.da[k] = da[k];
    if ((st = sgd__seq_push(&m->seq, &m->alloc, &l, fn)) != SGD_OK)
        return st;
    m->spec_valid = false;
    return SGD_OK;
}

sgd_status sgd_model_add_layer(sgd_model *m, const char *token)
{
    static const char fn[] = "sgd_model_add_layer";
    sgd_status st = check_addable(m, fn);
    if (st != SGD_OK)
        return st;
    if (token == NULL)
        return sgd__err(SGD_EINVAL, "%s: token is NULL", fn);
    size_t len = strnlen(token, SGD__SPEC_MAX_LEN + 1);
    if (len > SGD__SPEC_MAX_LEN)
        return sgd__err(SGD_EINVAL, "%s: token longer than %d bytes", fn, SGD__SPEC_MAX_LEN);
    char where[48];
    snprintf(where, sizeof where, "layer %zu", m->seq.n + 1);
    sgd__lspec c;
    memset(&c, 0, sizeof c);
    c.fn = fn;
    c.spec = token;
    c.where = where;
    c.alloc = &m->alloc;
    c.index0 = m->seq.n;
    size_t before = m->seq.n;
    st = sgd__seq_parse(&m->seq, (sgd__str){token, len}, &c, 0);
    if (st != SGD_OK) {
        /* A token may hold several layers ("conv2d(8,3)-relu"): all or none. */
        while (m->seq.n > before) {
            sgd__layer *l = &m->seq.layers[--m->seq.n];
            for (int k = 0; k < SGD__LAYER_MAX_SUBS; k++)
                sgd__seq_free(l->sub[k], &m->alloc);
        }
        return st;
    }
    if (m->seq.n > SGD_MODEL_MAX_LAYERS) {
        while (m->seq.n > before) {
            sgd__layer *l = &m->seq.layers[--m->seq.n];
            for (int k = 0; k < SGD__LAYER_MAX_SUBS; k++)
                sgd__seq_free(l->sub[k], &m->alloc);
        }
        return sgd__err(SGD_EOVERFLOW, "%s: a model has at most %d layers", fn, SGD_MODEL_MAX_LAYERS);
    }
    m->spec_valid = false;
    return SGD_OK;
}

sgd_status sgd_model_add_dense(sgd_model *m, int64_t units, int32_t bias)
{
    static const char fn[] = "sgd_model_add_dense";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (units < 1 || units > SGD_MODEL_MAX_UNITS)
        return sgd__err(SGD_EINVAL, "%s: units=%lld: must be in [1, 2^24]", fn, (long long)units);
    int64_t ia[2] = {units, bias != 0};
    return add(m, &sgd__op_dense, ia, 2, NULL, 0, fn);
}

sgd_status sgd_model_add_activation(sgd_model *m, int32_t kind)
{
    static const char fn[] = "sgd_model_add_activation";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    const sgd__layer_op *op = sgd__layer_op_by_kind(kind);
    if (op == NULL)
        return sgd__err(SGD_EINVAL, "%s: kind=%d: not a layer kind", fn, (int)kind);
    if (op->apply == NULL || op->tensors != NULL || op == &sgd__op_leaky_relu) {
        const char *use = op == &sgd__op_leaky_relu ? "sgd_model_add_leaky_relu"
                          : op == &sgd__op_dense    ? "sgd_model_add_dense"
                          : op == &sgd__op_dropout  ? "sgd_model_add_dropout"
                                                    : "sgd_model_add_layer";
        if (op == &sgd__op_softmax)
            return add(m, op, NULL, 0, NULL, 0, fn);
        return sgd__err(SGD_EINVAL, "%s: kind=%d (%s): not a parameter-free activation: use %s", fn, (int)kind,
                        op->name ? op->name : "gelu", use);
    }
    return add(m, op, NULL, 0, NULL, 0, fn);
}

sgd_status sgd_model_add_leaky_relu(sgd_model *m, double negative_slope)
{
    static const char fn[] = "sgd_model_add_leaky_relu";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (!isfinite(negative_slope) || fabs(negative_slope) > 3.4e38)
        return sgd__err(SGD_ENONFINITE, "%s: negative_slope=%g: must be a finite float", fn, negative_slope);
    return add(m, &sgd__op_leaky_relu, NULL, 0, &negative_slope, 1, fn);
}

sgd_status sgd_model_add_dropout(sgd_model *m, double p)
{
    static const char fn[] = "sgd_model_add_dropout";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (!(p >= 0.0 && p <= 1.0))
        return sgd__err(SGD_ERANGE, "%s: p=%g: must be in [0, 1]", fn, p);
    return add(m, &sgd__op_dropout, NULL, 0, &p, 1, fn);
}

static int64_t last_width(const sgd_model *m)
{
    return sgd__shape_last(sgd__seq_out(&m->seq));
}

/* Refuses loss/architecture combinations that are always mistakes. */
static sgd_status check_loss(const sgd_model *m, int32_t loss, const char *fn)
{
    if (loss != SGD_LOSS_CROSS_ENTROPY && loss != SGD_LOSS_MSE && loss != SGD_LOSS_BCE_WITH_LOGITS)
        return sgd__err(SGD_EINVAL, "%s: loss=%d: not a loss kind (1 cross_entropy, 2 mse, 3 bce_with_logits)", fn,
                        (int)loss);
    if (m->seq.n == 0)
        return SGD_OK;
    const sgd__layer_op *last = m->seq.layers[m->seq.n - 1].op;
    if (last->redundant_before_loss == loss)
        return sgd__err(SGD_EINVAL, "%s: loss %s after a final %s: the loss applies the %s itself; remove the %s layer",
                        fn, sgd__loss_name(loss), last->name, last->name, last->name);
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
 * Lays out the work block for batches of `batch` rows: every layer's output
 * buffer and workspace, the gradient ping-pong buffers, the evaluation
 * staging and the per-sample state. With `base` NULL only computes the size
 * (false on overflow); otherwise assigns the pointers.
 */
static bool layout_work(sgd_model *m, int64_t batch, unsigned char *base, size_t *total)
{
    size_t at = 0, b = (size_t)batch, sz;
    const size_t A = SGD__ARENA_ALIGN;
    if (!sgd__seq_layout(&m->seq, batch, base, &at))
        return false;
#define SGD__TAKE(ptr, type, count)                                                                           \
    do {                                                                                                      \
        if (!sgd__mul_size((count), sizeof(type), &sz) || sz > SIZE_MAX - A)                                 \
            return false;                                                                                     \
        if (base != NULL)                                                                                     \
            (ptr) = (type *)(void *)(base + at);                                                              \
        if (!sgd__add_size(at, round_up(sz, A), &at))                                                        \
            return false;                                                                                     \
    } while (0)
    size_t gcells, xcells, tcells, lcells, scells;
    if (!sgd__mul_size(b, (size_t)sgd__seq_widest(&m->seq), &gcells) ||
        !sgd__mul_size(b, (size_t)m->n_in, &xcells) ||
        !sgd__mul_size(b, (size_t)sgd__shape_numel(sgd__seq_out(&m->seq)), &tcells) ||
        !sgd__mul_size(b, (size_t)sgd__model_positions(m), &lcells) || !sgd__mul_size(b, m->state_bytes, &scells))
        return false;
    SGD__TAKE(m->gbuf[0], float, gcells);
    SGD__TAKE(m->gbuf[1], float, gcells);
    SGD__TAKE(m->xstage, float, xcells);
    SGD__TAKE(m->lstage, int32_t, lcells);
    SGD__TAKE(m->tstage, float, tcells);
    SGD__TAKE(m->state, unsigned char, scells);
    SGD__TAKE(m->state_save, unsigned char, scells);
#undef SGD__TAKE
    if (base != NULL) {
        for (size_t i = m->n_dict; i < m->n_tensors; i++) {
            sgd__tinfo *t = &m->tinfo[i];
            t->numel = (size_t)batch * sgd__tdesc_numel(t->d);
            t->l->t[t->ti] = m->state + t->offset * b;
        }
    }
    *total = at;
    return true;
}

/*
 * Allocates and lays out a work block for `batch`; on failure nothing
 * changes. The carried state of the rows both blocks have is kept.
 */
static sgd_status alloc_work(sgd_model *m, int64_t batch, const char *fn)
{
    size_t total;
    if (!layout_work(m, batch, NULL, &total))
        return sgd__err(SGD_EOVERFLOW, "%s: buffers for max_batch=%lld overflow", fn, (long long)batch);
    unsigned char *w = sgd__alloc_aligned(&m->alloc, total, 1);
    if (w == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory for %zu bytes of buffers (max_batch=%lld)", fn, total,
                        (long long)batch);
    unsigned char *old_state = m->state;
    size_t old_b = (size_t)m->max_batch, new_b = (size_t)batch, rows = old_b < new_b ? old_b : new_b;
    void *old = m->work;
    layout_work(m, batch, w, &total);
    if (old != NULL && old_state != NULL) {
        for (size_t i = m->n_dict; i < m->n_tensors; i++) {
            const sgd__tinfo *t = &m->tinfo[i];
            size_t per = sgd__tdesc_numel(t->d) * sizeof(float);
            memcpy(m->state + t->offset * new_b, old_state + t->offset * old_b, rows * per);
        }
    }
    sgd__free_aligned(&m->alloc, old);
    m->work = w;
    m->work_bytes = total;
    m->max_batch = batch;
    m->phase = SGD__PHASE_NONE;
    return SGD_OK;
}

/*
 * Lays the work block out again for the layers' current shapes (same
 * max_batch): in place when it fits in the block (the carried state moves
 * with it), else in a new block. So a shorter sequence length, and going
 * back to the original one, allocate nothing.
 */
static sgd_status relayout_work(sgd_model *m, const char *fn)
{
    size_t total;
    if (!layout_work(m, m->max_batch, NULL, &total))
        return sgd__err(SGD_EOVERFLOW, "%s: buffers for max_batch=%lld overflow", fn, (long long)m->max_batch);
    if (m->work == NULL || total > m->work_bytes)
        return alloc_work(m, m->max_batch, fn);
    unsigned char *old_state = m->state;
    size_t sbytes = (size_t)m->max_batch * m->state_bytes;
    layout_work(m, m->max_batch, m->work, &total);
    if (sbytes > 0)
        memmove(m->state, old_state, sbytes);
    m->phase = SGD__PHASE_NONE;
    return SGD_OK;
}

/* ---------------------------------------------------------------- initialisation */

void sgd__fill_uniform(sgd__rng *r, float *p, size_t n, double bound)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(-bound + 2.0 * bound * sgd__rng_uniform(r));
}

void sgd__fill_normal(sgd__rng *r, float *p, size_t n, double std)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(std * sgd__rng_normal(r));
}

void sgd__init_weight(sgd__rng *r, float *w, size_t n, int32_t init, double fan_in, double fan_out)
{
    switch (init) {
    case SGD_INIT_XAVIER_UNIFORM: sgd__fill_uniform(r, w, n, sqrt(6.0 / (fan_in + fan_out))); break;
    case SGD_INIT_XAVIER_NORMAL: sgd__fill_normal(r, w, n, sqrt(2.0 / (fan_in + fan_out))); break;
    case SGD_INIT_HE_UNIFORM: sgd__fill_uniform(r, w, n, sqrt(6.0 / fan_in)); break;
    case SGD_INIT_HE_NORMAL: sgd__fill_normal(r, w, n, sqrt(2.0 / fan_in)); break;
    default:
        /* kaiming_uniform_(a=sqrt(5)): gain sqrt(2/(1+5)), bound gain*sqrt(3/fan_in) = 1/sqrt(fan_in). */
        sgd__fill_uniform(r, w, n, 1.0 / sqrt(fan_in));
        break;
    }
}

void sgd__init_bias(sgd__rng *r, float *b, size_t n, int32_t init, double fan_in)
{
    if (init == SGD_INIT_TORCH)
        sgd__fill_uniform(r, b, n, 1.0 / sqrt(fan_in));
    else
        memset(b, 0, n * sizeof(float));
}

static void init_seq(sgd__seq *s, sgd__rng *r, int32_t init)
{
    for (size_t i = 0; i < s->n; i++) {
        sgd__layer *l = &s->layers[i];
        if (l->op->init != NULL)
            l->op->init(l, r, init);
        for (int k = 0; k < SGD__LAYER_MAX_SUBS; k++)
            if (l->sub[k] != NULL)
                init_seq(l->sub[k], r, init);
    }
}

/* Initialises every layer in order from one generator seeded with `seed`; resets the state. */
static void init_params(sgd_model *m, uint64_t seed)
{
    sgd__rng r;
    sgd__rng_seed(&r, seed);
    init_seq(&m->seq, &r, m->init);
    sgd__rng_seed(&m->rng, seed ^ SGD__DROPOUT_STREAM);
    if (m->state != NULL)
        memset(m->state, 0, (size_t)m->max_batch * m->state_bytes);
}

/* ---------------------------------------------------------------- the tensors */

/* Counts of a walk over the layers' tensors. */
typedef struct walk {
    size_t n_dict, n_state, n_params, name_bytes, buf_bytes, state_bytes;
    size_t n_weight; /* parameter tensors of kind SGD_PARAM_WEIGHT */
    sgd__tinfo *ti;  /* NULL in the counting pass */
    size_t dict_at, state_at;
    char *names;
    size_t name_at;
} walk;

/*
 * Visits every tensor of s (layer order, each layer's own tensors then its
 * nested sequences, as torch's state_dict), naming them with `prefix`.
 * Fills l->td and l->n_t. False on overflow.
 */
static bool walk_seq(sgd__seq *s, const char *prefix, int32_t top, walk *w)
{
    for (size_t i = 0; i < s->n; i++) {
        sgd__layer *l = &s->layers[i];
        int32_t layer = top >= 0 ? top : (int32_t)i;
        char pre[160];
        snprintf(pre, sizeof pre, "%s%zu.", prefix, i);
        l->n_t = l->op->tensors != NULL ? l->op->tensors(l, l->td) : 0;
        for (size_t k = 0; k < l->n_t; k++) {
            const sgd__tdesc *d = &l->td[k];
            size_t numel = sgd__tdesc_numel(d), bytes;
            size_t nlen = strlen(pre) + strlen(d->name) + 1;
            if (!sgd__add_size(w->name_bytes, nlen, &w->name_bytes))
                return false;
            sgd__tinfo *t = NULL;
            if (w->ti != NULL) {
                t = d->role == SGD__ROLE_STATE ? &w->ti[w->state_at++] : &w->ti[w->dict_at++];
                t->d = d;
                t->l = l;
                t->ti = k;
                t->layer = layer;
                t->numel = numel;
                t->name = w->names + w->name_at;
                w->name_at += (size_t)snprintf(w->names + w->name_at, nlen, "%s%s", pre, d->name) + 1;
            }
            switch (d->role) {
            case SGD__ROLE_PARAM:
                if (t != NULL)
                    t->offset = w->n_params; /* provisional: set by the arena order below */
                if (!sgd__add_size(w->n_params, numel, &w->n_params))
                    return false;
                w->n_weight += d->param_kind == SGD_PARAM_WEIGHT;
                w->n_dict++;
                break;
            case SGD__ROLE_BUFFER:
                if (!sgd__mul_size(numel, d->dtype == SGD_DTYPE_I64 ? 8 : 4, &bytes))
                    return false;
                if (t != NULL)
                    t->offset = w->buf_bytes;
                if (!sgd__add_size(w->buf_bytes, round_up(bytes, 8), &w->buf_bytes))
                    return false;
                w->n_dict++;
                break;
            default: /* state: float32 per sample */
                if (!sgd__mul_size(numel, sizeof(float), &bytes))
                    return false;
                if (t != NULL)
                    t->offset = w->state_bytes;
                if (!sgd__add_size(w->state_bytes, round_up(bytes, SGD__ARENA_ALIGN), &w->state_bytes))
                    return false;
                w->n_state++;
                break;
            }
        }
        for (int k = 0; k < SGD__LAYER_MAX_SUBS; k++) {
            if (l->sub[k] == NULL)
                continue;
            char sub[200];
            snprintf(sub, sizeof sub, "%s%s.", pre, l->op->sub_names[k]);
            if (!walk_seq(l->sub[k], sub, layer, w))
                return false;
        }
    }
    return true;
}

/* Whether layer l (or a sequence it holds) has a parameter. */
static bool has_params(const sgd__layer *l)
{
    for (size_t k = 0; k < l->n_t; k++)
        if (l->td[k].role == SGD__ROLE_PARAM)
            return true;
    for (int k = 0; k < SGD__LAYER_MAX_SUBS; k++)
        if (l->sub[k] != NULL)
            for (size_t i = 0; i < l->sub[k]->n; i++)
                if (has_params(&l->sub[k]->layers[i]))
                    return true;
    return false;
}

/* ---------------------------------------------------------------- build */

static void free_arenas(sgd_model *m)
{
    sgd__free_aligned(&m->alloc, m->params);
    sgd__free_aligned(&m->alloc, m->grads);
    sgd__free_aligned(&m->alloc, m->bufs);
    sgd__free(&m->alloc, m->tinfo);
    sgd__free(&m->alloc, m->pidx);
    sgd__free(&m->alloc, m->names);
    m->params = m->grads = NULL;
    m->bufs = NULL;
    m->tinfo = NULL;
    m->pidx = NULL;
    m->names = NULL;
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
    walk w;
    memset(&w, 0, sizeof w);
    if (!walk_seq(&m->seq, "", -1, &w))
        return sgd__err(SGD_EOVERFLOW, "%s: the parameter count overflows", fn);
    if (w.n_params == 0)
        return sgd__err(SGD_EINVAL,
                        "%s: the model has no layer with parameters (no dense layer), hence nothing to train", fn);
    if (w.n_params > SIZE_MAX / sizeof(float) / 2)
        return sgd__err(SGD_EOVERFLOW, "%s: the parameter count overflows", fn);
    size_t n_params = w.n_params, n_tensors = w.n_dict + w.n_state, n_ptensors = 0;
    float *params = sgd__alloc_aligned(&m->alloc, n_params, sizeof(float));
    float *grads = params ? sgd__alloc_aligned(&m->alloc, n_params, sizeof(float)) : NULL;
    unsigned char *bufs = grads ? sgd__alloc_aligned(&m->alloc, w.buf_bytes ? w.buf_bytes : 1, 1) : NULL;
    sgd__tinfo *tinfo = bufs ? sgd__calloc(&m->alloc, n_tensors, sizeof *tinfo) : NULL;
    size_t *pidx = tinfo ? sgd__calloc(&m->alloc, n_tensors, sizeof *pidx) : NULL;
    char *names = pidx ? sgd__malloc(&m->alloc, w.name_bytes) : NULL;
    if (names == NULL) {
        sgd__free_aligned(&m->alloc, params);
        sgd__free_aligned(&m->alloc, grads);
        sgd__free_aligned(&m->alloc, bufs);
        sgd__free(&m->alloc, tinfo);
        sgd__free(&m->alloc, pidx);
        return sgd__err(SGD_ENOMEM, "%s: out of memory for %zu parameters", fn, n_params);
    }
    m->params = params;
    m->grads = grads;
    m->bufs = bufs;
    m->tinfo = tinfo;
    m->pidx = pidx;
    m->names = names;
    walk w2;
    memset(&w2, 0, sizeof w2);
    w2.ti = tinfo;
    w2.state_at = w.n_dict;
    w2.names = names;
    walk_seq(&m->seq, "", -1, &w2);
    m->n_tensors = n_tensors;
    m->n_dict = w.n_dict;
    m->n_state = w.n_state;
    m->state_bytes = w.state_bytes;
    m->buf_bytes = w.buf_bytes;
    /* The parameter arena: every weight in state_dict order, then every bias (0.1's grouping). */
    size_t off = 0;
    for (int pass = 0; pass < 2; pass++) {
        int32_t want = pass == 0 ? SGD_PARAM_WEIGHT : SGD_PARAM_BIAS;
        for (size_t i = 0; i < w.n_dict; i++) {
            sgd__tinfo *t = &tinfo[i];
            if (t->d->role != SGD__ROLE_PARAM || (t->d->param_kind == SGD_PARAM_WEIGHT) != (want == SGD_PARAM_WEIGHT))
                continue;
            t->offset = off;
            t->l->t[t->ti] = params + off;
            t->l->gt[t->ti] = grads + off;
            off += t->numel;
            pidx[n_ptensors++] = i;
        }
    }
    for (size_t i = 0; i < w.n_dict; i++)
        if (tinfo[i].d->role == SGD__ROLE_BUFFER)
            tinfo[i].l->t[tinfo[i].ti] = bufs + tinfo[i].offset;
    m->n_ptensors = n_ptensors;
    m->n_params = n_params;
    sgd__seq_mark_fused(&m->seq);
    m->work = NULL;
    m->state = NULL;
    if ((st = alloc_work(m, o.max_batch, fn)) != SGD_OK) {
        free_arenas(m);
        m->n_params = m->n_ptensors = m->n_tensors = m->n_dict = m->n_state = 0;
        return st;
    }
    m->spec_valid = false;
    int32_t old_loss = m->loss;
    m->loss = o.loss;
    if (prepare_spec(m) != SGD_OK) {
        m->loss = old_loss;
        sgd__free_aligned(&m->alloc, m->work);
        m->work = NULL;
        free_arenas(m);
        m->n_params = m->n_ptensors = m->n_tensors = m->n_dict = m->n_state = 0;
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    }
    m->first = 0;
    while (m->first < m->seq.n && !has_params(&m->seq.layers[m->first]))
        m->first++;
    m->init = o.init;
    m->seed = o.seed;
    m->loss = o.loss;
    m->blas_threads = o.blas_threads;
    m->built = true;
    init_params(m, o.seed);
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
    free_arenas(m);
    sgd__free_aligned(&a, m->work);
    sgd__seq_clear(&m->seq, &a);
    sgd__free(&a, m->spec);
    sgd__free(&a, m);
}

/* ---------------------------------------------------------------- the canonical form */

/* The canonical spec of m into buf (n bytes); returns the length it needs (without NUL). */
static size_t write_spec(const sgd_model *m, char *buf, size_t n)
{
    char in[64];
    if (m->tokens)
        snprintf(in, sizeof in, "tokens(%lld)", (long long)m->seq.in.d[0]);
    else
        sgd__shape_str(&m->seq.in, in, sizeof in);
    size_t at = (size_t)snprintf(buf, n, "%s", in);
    if (m->seq.n > 0) {
        if (at + 1 < n)
            buf[at] = '-';
        at++;
        at += sgd__seq_print(&m->seq, at < n ? buf + at : NULL, at < n ? n - at : 0);
    }
    at += (size_t)snprintf(at < n ? buf + at : NULL, at < n ? n - at : 0, ":loss=%s", sgd__loss_name(m->loss));
    return at;
}

const char *sgd_model_spec(const sgd_model *cm)
{
    if (cm == NULL)
        return "";
    sgd_model *m = (sgd_model *)(uintptr_t)cm; /* the cache is not part of the model's value */
    if (m->spec != NULL && m->spec_valid)
        return m->spec;
    return prepare_spec(m) == SGD_OK ? m->spec : "";
}

/*
 * Writes the canonical spec into m->spec, growing it with room for the
 * longest loss name, so that a built model's spec never needs memory again
 * (sgd_model_set_loss_kind only rewrites it).
 */
static sgd_status prepare_spec(sgd_model *m)
{
    size_t need = write_spec(m, NULL, 0) + 1 + 16;
    if (need > m->spec_cap) {
        char *s = sgd__realloc(&m->alloc, m->spec, need);
        if (s == NULL)
            return SGD_ENOMEM;
        m->spec = s;
        m->spec_cap = need;
    }
    write_spec(m, m->spec, m->spec_cap);
    m->spec_valid = true;
    return SGD_OK;
}

/* ---------------------------------------------------------------- queries */

int64_t sgd_model_num_inputs(const sgd_model *m)
{
    return m ? m->n_in : 0;
}

int64_t sgd_model_num_outputs(const sgd_model *m)
{
    return m ? sgd__shape_numel(sgd__seq_out(&m->seq)) : 0;
}

size_t sgd_model_num_layers(const sgd_model *m)
{
    return m ? m->seq.n : 0;
}

int32_t sgd_model_layer_kind(const sgd_model *m, size_t i)
{
    return m && i < m->seq.n ? m->seq.layers[i].op->kind : 0;
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
    m->spec_valid = false;
    return SGD_OK;
}

static sgd_status shape_out(const sgd__shape *s, int32_t *rank, int64_t *shape, const char *fn)
{
    if (rank == NULL || shape == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, rank == NULL ? "rank" : "shape");
    *rank = s->rank;
    for (int32_t i = 0; i < SGD__SHAPE_MAX_RANK; i++)
        shape[i] = i < s->rank ? s->d[i] : 1;
    return SGD_OK;
}

sgd_status sgd_model_input_shape(const sgd_model *m, int32_t *rank, int64_t shape[3])
{
    static const char fn[] = "sgd_model_input_shape";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    return shape_out(&m->seq.in, rank, shape, fn);
}

sgd_status sgd_model_output_shape(const sgd_model *m, int32_t *rank, int64_t shape[3])
{
    static const char fn[] = "sgd_model_output_shape";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    return shape_out(sgd__seq_out(&m->seq), rank, shape, fn);
}

sgd_status sgd_model_layer_shape(const sgd_model *m, size_t i, int32_t *rank, int64_t shape[3])
{
    static const char fn[] = "sgd_model_layer_shape";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (i >= m->seq.n)
        return sgd__err(SGD_EINVAL, "%s: i=%zu: the model has %zu layers", fn, i, m->seq.n);
    return shape_out(&m->seq.layers[i].out, rank, shape, fn);
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
    const sgd__tinfo *p = &m->tinfo[m->pidx[index]];
    sgd_param_info full;
    memset(&full, 0, sizeof full);
    full.struct_size = (uint32_t)sizeof full;
    full.kind = p->d->param_kind;
    full.name = p->name;
    full.layer = p->layer;
    full.rank = p->d->rank;
    for (int k = 0; k < 4; k++)
        full.shape[k] = k < p->d->rank ? p->d->shape[k] : 1;
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
        if (strcmp(m->tinfo[m->pidx[i]].name, name) == 0) {
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

/* Names element k of tensor t ("2.weight[3][17]", "0.weight[1][0][2][2]"; state: "1.h_n[row][0][2]"). */
static void describe_in(const sgd__tinfo *t, size_t k, char *buf, size_t len)
{
    int w = snprintf(buf, len, "%s", t->name);
    size_t at = w > 0 ? (size_t)w : 0;
    if (t->d->role == SGD__ROLE_STATE) {
        size_t per = sgd__tdesc_numel(t->d);
        w = snprintf(buf + at, at < len ? len - at : 0, "[%zu]", k / per);
        at += w > 0 ? (size_t)w : 0;
        k %= per;
        if (at >= len)
            return;
    }
    size_t idx[4] = {0, 0, 0, 0};
    for (int32_t d = t->d->rank; d-- > 0;) {
        idx[d] = k % (size_t)t->d->shape[d];
        k /= (size_t)t->d->shape[d];
    }
    for (int32_t d = 0; d < t->d->rank && at < len; d++) {
        w = snprintf(buf + at, len - at, "[%zu]", idx[d]);
        at += w > 0 ? (size_t)w : 0;
    }
}

/* Names the parameter holding arena element `i`. */
static void describe_element(const sgd_model *m, size_t i, char *buf, size_t len)
{
    for (size_t t = 0; t < m->n_ptensors; t++) {
        const sgd__tinfo *p = &m->tinfo[m->pidx[t]];
        if (i >= p->offset && i < p->offset + p->numel) {
            describe_in(p, i - p->offset, buf, len);
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

/* ---------------------------------------------------------------- every tensor (0.2) */

size_t sgd_model_num_tensors(const sgd_model *m)
{
    return m ? m->n_tensors : 0;
}

static size_t elem_size(const sgd__tinfo *t)
{
    return t->d->dtype == SGD_DTYPE_I64 ? 8 : 4;
}

static void *tensor_data(const sgd_model *m, const sgd__tinfo *t)
{
    (void)m;
    return t->l->t[t->ti];
}


sgd_status sgd_model_tensor_info(const sgd_model *m, size_t index, sgd_tensor_info *info)
{
    static const char fn[] = "sgd_model_tensor_info";
    sgd_status st = check_built(m, fn);
    if (st != SGD_OK)
        return st;
    if (info == NULL)
        return sgd__err(SGD_EINVAL, "%s: info is NULL", fn);
    if ((st = sgd__struct_check(info, SGD__FIRST(sgd_tensor_info), fn, "info")) != SGD_OK)
        return st;
    if (index >= m->n_tensors)
        return sgd__err(SGD_EINVAL, "%s: index=%zu: the model has %zu tensors", fn, index, m->n_tensors);
    const sgd__tinfo *t = &m->tinfo[index];
    sgd_tensor_info full;
    memset(&full, 0, sizeof full);
    full.struct_size = (uint32_t)sizeof full;
    full.role = t->d->role;
    full.name = t->name;
    full.layer = t->layer;
    full.param_kind = t->d->role == SGD__ROLE_PARAM ? t->d->param_kind : 0;
    full.dtype = t->d->dtype;
    for (int k = 0; k < 4; k++)
        full.shape[k] = 1;
    if (t->d->role == SGD__ROLE_STATE) {
        full.rank = t->d->rank + 1;
        full.shape[0] = m->max_batch;
        for (int32_t k = 0; k < t->d->rank && k < 3; k++)
            full.shape[k + 1] = t->d->shape[k];
    } else {
        full.rank = t->d->rank;
        for (int32_t k = 0; k < t->d->rank; k++)
            full.shape[k] = t->d->shape[k];
    }
    full.numel = t->numel;
    full.offset = t->offset;
    full.data = tensor_data(m, t);
    return SGD__FILL(info, &full, sgd_tensor_info, fn, "info");
}

sgd_status sgd_model_find_tensor(const sgd_model *m, const char *name, size_t *index)
{
    static const char fn[] = "sgd_model_find_tensor";
    sgd_status st = check_built(m, fn);
    if (st != SGD_OK)
        return st;
    if (name == NULL || index == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, name == NULL ? "name" : "index");
    for (size_t i = 0; i < m->n_tensors; i++) {
        if (strcmp(m->tinfo[i].name, name) == 0) {
            *index = i;
            return SGD_OK;
        }
    }
    return sgd__err(SGD_ENOTFOUND, "%s: no tensor named '%.64s'", fn, name);
}

static sgd_status check_tensor_io(const sgd_model *m, size_t index, const void *p, size_t bytes, const char *what,
                                  const char *fn)
{
    sgd_status st = check_built(m, fn);
    if (st != SGD_OK)
        return st;
    if (p == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, what);
    if (index >= m->n_tensors)
        return sgd__err(SGD_EINVAL, "%s: index=%zu: the model has %zu tensors", fn, index, m->n_tensors);
    const sgd__tinfo *t = &m->tinfo[index];
    if (bytes != t->numel * elem_size(t))
        return sgd__err(SGD_ESHAPE, "%s: bytes=%zu: tensor '%s' has %zu elements of %zu bytes", fn, bytes, t->name,
                        t->numel, elem_size(t));
    return SGD_OK;
}

sgd_status sgd_model_read_tensor(const sgd_model *m, size_t index, void *dst, size_t bytes)
{
    static const char fn[] = "sgd_model_read_tensor";
    sgd_status st = check_tensor_io(m, index, dst, bytes, "dst", fn);
    if (st != SGD_OK)
        return st;
    memcpy(dst, tensor_data(m, &m->tinfo[index]), bytes);
    return SGD_OK;
}

sgd_status sgd_model_write_tensor(sgd_model *m, size_t index, const void *src, size_t bytes)
{
    static const char fn[] = "sgd_model_write_tensor";
    sgd_status st = check_tensor_io(m, index, src, bytes, "src", fn);
    if (st != SGD_OK)
        return st;
    const sgd__tinfo *t = &m->tinfo[index];
    if (t->d->dtype == SGD_DTYPE_F32) {
        float v;
        for (size_t k = 0; k < t->numel; k++) {
            memcpy(&v, (const unsigned char *)src + 4 * k, 4);
            if (!isfinite(v)) {
                char where[96];
                describe_in(t, k, where, sizeof where);
                return sgd__err(SGD_ENONFINITE, "%s: %s is %g: values must be finite", fn, where, (double)v);
            }
        }
    } else {
        int64_t v;
        for (size_t k = 0; k < t->numel; k++) {
            memcpy(&v, (const unsigned char *)src + 8 * k, 8);
            if (v < 0)
                return sgd__err(SGD_ERANGE, "%s: %s[%zu]=%lld: a counter must be >= 0", fn, t->name, k, (long long)v);
        }
    }
    memmove(tensor_data(m, t), src, bytes);
    return SGD_OK;
}

size_t sgd_model_buffer_bytes(const sgd_model *m)
{
    return m ? m->buf_bytes : 0;
}

void *sgd_model_buffers(sgd_model *m)
{
    return m && m->built ? m->bufs : NULL;
}

sgd_status sgd_model_reset_state(sgd_model *m)
{
    sgd_status st = check_built(m, "sgd_model_reset_state");
    if (st != SGD_OK)
        return st;
    sgd__model_state_zero(m);
    return SGD_OK;
}

void sgd__model_state_zero(sgd_model *m)
{
    if (m->state != NULL && m->state_bytes > 0)
        memset(m->state, 0, (size_t)m->max_batch * m->state_bytes);
}

void sgd__model_state_stash(sgd_model *m)
{
    if (m->state != NULL && m->state_bytes > 0)
        memcpy(m->state_save, m->state, (size_t)m->max_batch * m->state_bytes);
}

void sgd__model_state_unstash(sgd_model *m)
{
    if (m->state != NULL && m->state_bytes > 0)
        memcpy(m->state, m->state_save, (size_t)m->max_batch * m->state_bytes);
}

size_t sgd_model_state_size(const sgd_model *m)
{
    if (m == NULL || !m->built)
        return 0;
    size_t n = 0;
    for (size_t i = m->n_dict; i < m->n_tensors; i++)
        n += m->tinfo[i].numel * sizeof(float);
    return n;
}

sgd_status sgd_model_get_state(const sgd_model *m, void *dst, size_t bytes)
{
    static const char fn[] = "sgd_model_get_state";
    sgd_status st = check_built(m, fn);
    if (st != SGD_OK)
        return st;
    if (dst == NULL && bytes > 0)
        return sgd__err(SGD_EINVAL, "%s: dst is NULL", fn);
    if (bytes != sgd_model_state_size(m))
        return sgd__err(SGD_ESHAPE, "%s: bytes=%zu: the state is %zu bytes (sgd_model_state_size)", fn, bytes,
                        sgd_model_state_size(m));
    unsigned char *p = dst;
    for (size_t i = m->n_dict; i < m->n_tensors; i++) {
        size_t b = m->tinfo[i].numel * sizeof(float);
        memcpy(p, tensor_data(m, &m->tinfo[i]), b);
        p += b;
    }
    return SGD_OK;
}

sgd_status sgd_model_set_state(sgd_model *m, const void *src, size_t bytes)
{
    static const char fn[] = "sgd_model_set_state";
    sgd_status st = check_built(m, fn);
    if (st != SGD_OK)
        return st;
    if (src == NULL && bytes > 0)
        return sgd__err(SGD_EINVAL, "%s: src is NULL", fn);
    if (bytes != sgd_model_state_size(m))
        return sgd__err(SGD_ESHAPE, "%s: bytes=%zu: the state is %zu bytes (sgd_model_state_size)", fn, bytes,
                        sgd_model_state_size(m));
    const unsigned char *p = src;
    for (size_t i = m->n_dict; i < m->n_tensors; i++) {
        const sgd__tinfo *t = &m->tinfo[i];
        for (size_t k = 0; k < t->numel; k++) {
            float v;
            memcpy(&v, p + 4 * k, 4);
            if (!isfinite(v)) {
                char where[96];
                describe_in(t, k, where, sizeof where);
                return sgd__err(SGD_ENONFINITE, "%s: %s (of the state) is %g: values must be finite", fn, where,
                                (double)v);
            }
        }
        p += t->numel * sizeof(float);
    }
    p = src;
    for (size_t i = m->n_dict; i < m->n_tensors; i++) {
        size_t b = m->tinfo[i].numel * sizeof(float);
        memmove(tensor_data(m, &m->tinfo[i]), p, b);
        p += b;
    }
    return SGD_OK;
}

/* ---------------------------------------------------------------- sequence length */

int64_t sgd_model_seq_len(const sgd_model *m)
{
    return m != NULL && m->seq.in.rank <= 2 ? m->seq.in.d[0] : 0;
}

/* Recomputes every layer's shapes for an input of T steps; on failure leaves them half done (run again with the old T). */
static sgd_status reshape_for(sgd_model *m, int64_t T, const char *fn)
{
    sgd__shape in = m->seq.in;
    in.d[0] = T;
    if (sgd__shape_numel(&in) > SGD__SAMPLE_MAX_NUMEL)
        return sgd__err(SGD_EINVAL, "%s: seq_len=%lld: more than 2^26 input values per sample", fn, (long long)T);
    m->seq.in = in;
    for (size_t i = 0; i < m->seq.n; i++) {
        sgd__layer *l = &m->seq.layers[i];
        l->in = i == 0 ? in : m->seq.layers[i - 1].out;
        sgd_status st = l->op->shape(l, fn);
        if (st != SGD_OK)
            return st;
        if (sgd__shape_numel(&l->out) > SGD__SAMPLE_MAX_NUMEL)
            return sgd__err(SGD_EINVAL, "%s: seq_len=%lld: layer %zu (%s) would have more than 2^26 values per sample",
                            fn, (long long)T, i, l->op->name);
        sgd__tdesc td[SGD__LAYER_MAX_TENSORS];
        size_t n = l->op->tensors != NULL ? l->op->tensors(l, td) : 0;
        bool same = n == l->n_t;
        for (size_t k = 0; same && k < n; k++)
            same = td[k].rank == l->td[k].rank && memcmp(td[k].shape, l->td[k].shape, sizeof td[k].shape) == 0;
        if (!same)
            return sgd__err(SGD_EINVAL,
                            "%s: seq_len=%lld: layer %zu (%s) has parameters whose shape depends on the sequence "
                            "length: the model takes only sequences of %lld steps",
                            fn, (long long)T, i, l->op->name, (long long)sgd_model_seq_len(m));
    }
    return SGD_OK;
}

sgd_status sgd_model_set_seq_len(sgd_model *m, int64_t seq_len)
{
    static const char fn[] = "sgd_model_set_seq_len";
    sgd_status st = check_built(m, fn);
    if (st != SGD_OK)
        return st;
    if (m->seq.in.rank > 2)
        return sgd__err(SGD_EINVAL, "%s: the model's samples are images, not sequences", fn);
    if (seq_len < 1 || seq_len > SGD_MODEL_MAX_UNITS)
        return sgd__err(SGD_EINVAL, "%s: seq_len=%lld: must be in [1, 2^24]", fn, (long long)seq_len);
    int64_t old = m->seq.in.d[0];
    if (seq_len == old)
        return SGD_OK;
    for (size_t i = 0; i < m->seq.n; i++)
        for (int k = 0; k < SGD__LAYER_MAX_SUBS; k++)
            if (m->seq.layers[i].sub[k] != NULL)
                return sgd__err(SGD_EINVAL, "%s: layer %zu (%s) holds layers of its own: the sequence length is fixed",
                                fn, i, m->seq.layers[i].op->name);
    /* The new shapes, then the spec (which may grow its buffer), then the buffers: undone in reverse. */
    if ((st = reshape_for(m, seq_len, fn)) == SGD_OK) {
        m->n_in = sgd__shape_numel(&m->seq.in);
        m->spec_valid = false;
        if (prepare_spec(m) != SGD_OK)
            st = sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
        else if ((st = relayout_work(m, fn)) == SGD_OK)
            return SGD_OK;
    }
    char saved[512];
    snprintf(saved, sizeof saved, "%s", sgd_error_last());
    (void)reshape_for(m, old, fn); /* it held before */
    m->n_in = sgd__shape_numel(&m->seq.in);
    m->spec_valid = false;
    (void)prepare_spec(m); /* the buffer holds the old spec: no allocation */
    return sgd__err(st, "%s", saved);
}
