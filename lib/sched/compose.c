/*
 * Composition: sequences of schedules, a linear warmup over any schedule, and
 * plateau reduction (torch's ReduceLROnPlateau) as a multiplicative scale over
 * any schedule. Composites reach their children only through the public
 * sgd_sched_* calls, so a host-written child behaves exactly as a built-in one.
 * SPDX-License-Identifier: MIT
 */
#include "sched_internal.h"

#include "core/abi.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- sequence */

typedef struct seq {
    sgd_allocator alloc;
    size_t n;
    sgd_sched **children;  /* n, owned */
    int64_t *milestones;   /* n - 1, strictly increasing, > 0 */
    size_t state_size;     /* sum of the children's */
    double *scratch;       /* state_size doubles: the state before an import, to undo it */
    bool product;          /* a product (ChainedScheduler), not a sequence: no milestones */
    double base_lr;        /* product: lr = base_lr * prod(child lr / base_lr) */
} seq;

/* The child in force at step t and the step it counts. */
static size_t seq_child(const seq *q, int64_t t, int64_t *local)
{
    size_t lo = 0, hi = q->n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (q->milestones[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    *local = lo == 0 ? t : t - q->milestones[lo - 1];
    return lo;
}

static sgd_status seq_lr(int64_t t, double *lr, void *user)
{
    const seq *q = user;
    int64_t local;
    size_t k = seq_child(q, t, &local);
    return sgd_sched_lr(q->children[k], local, lr);
}

static sgd_status seq_momentum(int64_t t, double *momentum, int32_t *set, void *user)
{
    const seq *q = user;
    int64_t local;
    size_t k = seq_child(q, t, &local);
    return sgd_sched_momentum(q->children[k], local, momentum, set);
}

static sgd_status seq_observe(int64_t t, double metric, void *user)
{
    seq *q = user;
    int64_t local;
    size_t k = seq_child(q, t, &local);
    return sgd_sched_observe(q->children[k], local, metric);
}

static sgd_status seq_export(double *state, size_t n, void *user)
{
    const seq *q = user;
    (void)n;
    for (size_t i = 0; i < q->n; i++) {
        size_t m = sgd_sched_state_size(q->children[i]);
        sgd_status st = sgd_sched_state_export(q->children[i], state, m);
        if (st != SGD_OK)
            return st;
        state += m;
    }
    return SGD_OK;
}

static sgd_status seq_import(const double *state, size_t n, void *user)
{
    seq *q = user;
    sgd_status st = seq_export(q->scratch, n, q);
    if (st != SGD_OK)
        return st;
    size_t off = 0;
    for (size_t i = 0; i < q->n; i++) {
        size_t m = sgd_sched_state_size(q->children[i]);
        st = sgd_sched_state_import(q->children[i], state + off, m);
        if (st != SGD_OK) {
            /* Undo the children already restored: their previous states import back. */
            char keep[512];
            snprintf(keep, sizeof keep, "%s", sgd_error_last());
            size_t back = 0;
            for (size_t j = 0; j < i; j++) {
                size_t mj = sgd_sched_state_size(q->children[j]);
                if (sgd_sched_state_import(q->children[j], q->scratch + back, mj) != SGD_OK)
                    return sgd__err(SGD_EINTERNAL,
                                    "sgd_sched_state_import: %s: children[%zu] refused its own state "
                                    "while undoing a failed import (%s)",
                                    q->product ? "product" : "sequential", j, keep);
                back += mj;
            }
            return sgd__err(st, "sgd_sched_state_import: %s: children[%zu]: %s", q->product ? "product" : "sequential",
                            i, keep);
        }
        off += m;
    }
    return SGD_OK;
}

static void seq_destroy(void *user)
{
    seq *q = user;
    sgd_allocator a = q->alloc;
    for (size_t i = 0; i < q->n; i++)
        sgd__sched_destroy(q->children[i]);
    sgd__free(&a, q);
}

/*
 * The product of schedules (torch's ChainedScheduler): every child's factor
 * lr_k(t) / base_lr multiplies base_lr. Momentum from the first child that
 * sets it at t; metrics go to every child that watches one.
 */
static sgd_status prod_lr(int64_t t, double *lr, void *user)
{
    const seq *q = user;
    double v = q->base_lr;
    for (size_t i = 0; i < q->n; i++) {
        double x;
        sgd_status st = sgd_sched_lr(q->children[i], t, &x);
        if (st != SGD_OK)
            return st;
        v = q->base_lr > 0.0 ? v * (x / q->base_lr) : 0.0;
    }
    *lr = v;
    return SGD_OK;
}

static sgd_status prod_momentum(int64_t t, double *momentum, int32_t *set, void *user)
{
    const seq *q = user;
    *set = 0;
    for (size_t i = 0; i < q->n; i++) {
        if (!sgd_sched_cycles_momentum(q->children[i]))
            continue;
        sgd_status st = sgd_sched_momentum(q->children[i], t, momentum, set);
        if (st != SGD_OK || *set)
            return st;
    }
    return SGD_OK;
}

static sgd_status prod_observe(int64_t t, double metric, void *user)
{
    seq *q = user;
    for (size_t i = 0; i < q->n; i++)
        if (sgd_sched_watches_metric(q->children[i])) {
            sgd_status st = sgd_sched_observe(q->children[i], t, metric);
            if (st != SGD_OK)
                return st;
        }
    return SGD_OK;
}

static sgd_status seq_or_product(sgd_sched **out, sgd_sched *const *children, size_t n, const int64_t *milestones,
                                 bool product, double base_lr, const sgd_allocator *a, const char *fn);

sgd_status sgd__sched_product(sgd_sched **out, sgd_sched *const *children, size_t n, double base_lr,
                              const sgd_allocator *a, const char *fn)
{
    return seq_or_product(out, children, n, NULL, true, base_lr, a, fn);
}

sgd_status sgd__sched_sequential(sgd_sched **out, sgd_sched *const *children, size_t n, const int64_t *milestones,
                                 const sgd_allocator *a, const char *fn)
{
    return seq_or_product(out, children, n, milestones, false, 0.0, a, fn);
}

static sgd_status seq_or_product(sgd_sched **out, sgd_sched *const *children, size_t n, const int64_t *milestones,
                                 bool product, double base_lr, const sgd_allocator *a, const char *fn)
{
    *out = NULL;
    if (children == NULL)
        return sgd__err(SGD_EINVAL, "%s: children is NULL", fn);
    if (n == 0)
        return sgd__err(SGD_EINVAL, "%s: no children", fn);
    if (n > SGD__SCHED_MAX_CHILDREN)
        return sgd__err(SGD_EOVERFLOW, "%s: %zu children: at most %d", fn, n, SGD__SCHED_MAX_CHILDREN);
    if (!product && n > 1 && milestones == NULL)
        return sgd__err(SGD_EINVAL, "%s: milestones is NULL (%zu children need %zu)", fn, n, n - 1);
    sgd_status st = sgd__sched_check_children(children, n, fn, "children");
    if (st != SGD_OK)
        return st;
    for (size_t i = 0; !product && i + 1 < n; i++) {
        if (milestones[i] <= 0)
            return sgd__err(SGD_ERANGE, "%s: milestones[%zu]=%" PRId64 ": must be > 0", fn, i, milestones[i]);
        if (i > 0 && milestones[i] <= milestones[i - 1])
            return sgd__err(SGD_EINVAL,
                            "%s: milestones[%zu]=%" PRId64 " after %" PRId64 ": must be strictly increasing", fn, i,
                            milestones[i], milestones[i - 1]);
    }
    size_t state = 0;
    bool momentum = false, observe = false;
    for (size_t i = 0; i < n; i++) {
        state += sgd_sched_state_size(children[i]); /* each is capped: no overflow */
        momentum |= sgd_sched_cycles_momentum(children[i]) != 0;
        observe |= sgd_sched_watches_metric(children[i]) != 0;
    }
    /* One block: the struct, the children, the milestones, the scratch state. */
    size_t bytes = sizeof(seq), part;
    if (!sgd__mul_size(n, sizeof(sgd_sched *), &part) || !sgd__add_size(bytes, part, &bytes) ||
        !sgd__mul_size(n, sizeof(int64_t), &part) || !sgd__add_size(bytes, part, &bytes) ||
        !sgd__mul_size(state, sizeof(double), &part) || !sgd__add_size(bytes, part, &bytes))
        return sgd__err(SGD_EOVERFLOW, "%s: size overflows", fn);
    seq *q = sgd__malloc(a, bytes);
    if (q == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    memset(q, 0, sizeof *q);
    q->alloc = *a;
    q->n = n;
    q->children = (sgd_sched **)(void *)(q + 1);
    q->milestones = (int64_t *)(void *)(q->children + n);
    q->scratch = state > 0 ? (double *)(void *)(q->milestones + n) : NULL;
    q->state_size = state;
    memcpy(q->children, children, n * sizeof *children);
    if (!product && n > 1)
        memcpy(q->milestones, milestones, (n - 1) * sizeof *milestones);
    q->product = product;
    q->base_lr = base_lr;

    sgd_sched_vtable vt;
    sgd_sched_vtable_init(&vt);
    vt.name = product ? "product" : "sequential";
    vt.lr = product ? prod_lr : seq_lr;
    vt.momentum = momentum ? (product ? prod_momentum : seq_momentum) : NULL;
    vt.observe = observe ? (product ? prod_observe : seq_observe) : NULL;
    vt.state_size = state;
    vt.state_export = state > 0 ? seq_export : NULL;
    vt.state_import = state > 0 ? seq_import : NULL;
    vt.destroy = seq_destroy;
    vt.user = q;
    if ((st = sgd__sched_wrap(out, &vt, a, false, fn)) != SGD_OK) {
        sgd__free(a, q); /* the children stay the caller's */
        return st;
    }
    sgd__sched_adopt(children, n);
    return SGD_OK;
}

sgd_status sgd_sched_sequential_new(sgd_sched **out, sgd_sched *const *children, size_t n,
                                    const int64_t *milestones, const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_sched_sequential_new";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    sgd_allocator a;
    sgd_status st = sgd__allocator_init(&a, alloc, fn);
    if (st != SGD_OK)
        return st;
    return sgd__sched_sequential(out, children, n, milestones, &a, fn);
}

/* ------------------------------------------------------------------ warmup */

typedef struct warm {
    sgd_allocator alloc;
    sgd_sched *inner;
    double start_factor;
    int64_t total_iters;
} warm;

static sgd_status warm_lr(int64_t t, double *lr, void *user)
{
    const warm *w = user;
    double x;
    sgd_status st = sgd_sched_lr(w->inner, t, &x);
    if (st != SGD_OK)
        return st;
    int64_t m = t < w->total_iters ? t : w->total_iters;
    *lr = x * (w->start_factor + (1.0 - w->start_factor) * (double)m / (double)w->total_iters);
    return SGD_OK;
}

static sgd_status warm_momentum(int64_t t, double *momentum, int32_t *set, void *user)
{
    const warm *w = user;
    return sgd_sched_momentum(w->inner, t, momentum, set);
}

static sgd_status warm_observe(int64_t t, double metric, void *user)
{
    warm *w = user;
    return sgd_sched_observe(w->inner, t, metric);
}

static sgd_status warm_export(double *state, size_t n, void *user)
{
    const warm *w = user;
    return sgd_sched_state_export(w->inner, state, n);
}

static sgd_status warm_import(const double *state, size_t n, void *user)
{
    warm *w = user;
    return sgd_sched_state_import(w->inner, state, n);
}

static void warm_destroy(void *user)
{
    warm *w = user;
    sgd_allocator a = w->alloc;
    sgd__sched_destroy(w->inner);
    sgd__free(&a, w);
}

static sgd_status check_factor(double v, const char *key, const char *fn)
{
    if (!isfinite(v))
        return sgd__err(SGD_ENONFINITE, "%s: %s=%g: must be finite", fn, key, v);
    if (v < 0 || v > 1)
        return sgd__err(SGD_ERANGE, "%s: %s=%g: must be in [0, 1]", fn, key, v);
    return SGD_OK;
}

sgd_status sgd__sched_warmup(sgd_sched **out, sgd_sched *inner, const sgd_sched_warmup_options *o,
                             const sgd_allocator *a, const char *fn)
{
    *out = NULL;
    sgd_status st = sgd__sched_check_children(&inner, 1, fn, "inner");
    if (st == SGD_OK)
        st = check_factor(o->start_factor, "start_factor", fn);
    if (st == SGD_OK && o->total_iters <= 0)
        st = sgd__err(SGD_ERANGE, "%s: total_iters=%" PRId64 ": must be > 0", fn, o->total_iters);
    if (st != SGD_OK)
        return st;
    warm *w = sgd__malloc(a, sizeof *w);
    if (w == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    *w = (warm){.alloc = *a, .inner = inner, .start_factor = o->start_factor, .total_iters = o->total_iters};
    sgd_sched_vtable vt;
    sgd_sched_vtable_init(&vt);
    vt.name = "warmup";
    vt.lr = warm_lr;
    vt.momentum = sgd_sched_cycles_momentum(inner) ? warm_momentum : NULL;
    vt.observe = sgd_sched_watches_metric(inner) ? warm_observe : NULL;
    vt.state_size = sgd_sched_state_size(inner);
    vt.state_export = vt.state_size > 0 ? warm_export : NULL;
    vt.state_import = vt.state_size > 0 ? warm_import : NULL;
    vt.destroy = warm_destroy;
    vt.user = w;
    if ((st = sgd__sched_wrap(out, &vt, a, false, fn)) != SGD_OK) {
        sgd__free(a, w);
        return st;
    }
    sgd__sched_adopt(&inner, 1);
    return SGD_OK;
}

void sgd_sched_warmup_options_init(sgd_sched_warmup_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->start_factor = 1.0 / 3;
    o->total_iters = 5;
}

sgd_status sgd_sched_warmup_new(sgd_sched **out, sgd_sched *inner, const sgd_sched_warmup_options *opts,
                                const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_sched_warmup_new";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    sgd_sched_warmup_options o;
    sgd_sched_warmup_options_init(&o);
    sgd_status st = sgd__options_copy(&o, sizeof o, opts, SGD__FIRST(sgd_sched_warmup_options), fn, "opts");
    sgd_allocator a;
    if (st == SGD_OK)
        st = sgd__allocator_init(&a, alloc, fn);
    if (st != SGD_OK)
        return st;
    return sgd__sched_warmup(out, inner, &o, &a, fn);
}

/* ----------------------------------------------------------------- plateau */

/* The plateau's own state: a tag, best, bad steps, cooldown counter, scale. */
#define PLATEAU_TAG 1347174740.0 /* 'PLAT', version 1 */
#define PLATEAU_STATE 5

typedef struct plateau {
    sgd_allocator alloc;
    sgd_sched *inner;
    sgd_sched_plateau_options o;
    double best;              /* +inf (min) or -inf (max) until the first metric */
    int64_t num_bad;          /* observed steps without improvement */
    int64_t cooldown_counter; /* steps of cooldown left */
    double scale;             /* product of the reductions applied */
} plateau;

/* max(x * scale, min(x, min_lr)): the reduction never goes below min_lr nor above the inner lr. */
static double plateau_apply(const plateau *p, double x, double scale)
{
    double floor_ = x < p->o.min_lr ? x : p->o.min_lr;
    double v = x * scale;
    return v > floor_ ? v : floor_;
}

static sgd_status plateau_lr(int64_t t, double *lr, void *user)
{
    const plateau *p = user;
    double x;
    sgd_status st = sgd_sched_lr(p->inner, t, &x);
    if (st != SGD_OK)
        return st;
    *lr = plateau_apply(p, x, p->scale);
    return SGD_OK;
}

static sgd_status plateau_momentum(int64_t t, double *momentum, int32_t *set, void *user)
{
    const plateau *p = user;
    return sgd_sched_momentum(p->inner, t, momentum, set);
}

/* torch's is_better; the initial best (an infinity) is beaten by any finite metric. */
static bool plateau_better(const plateau *p, double a)
{
    if (isinf(p->best))
        return true;
    bool rel = p->o.threshold_mode == SGD_THRESHOLD_REL;
    if (p->o.mode == SGD_PLATEAU_MIN)
        return rel ? a < p->best * (1. - p->o.threshold) : a < p->best - p->o.threshold;
    return rel ? a > p->best * (p->o.threshold + 1.) : a > p->best + p->o.threshold;
}

static sgd_status plateau_observe(int64_t t, double metric, void *user)
{
    plateau *p = user;
    sgd_status st;
    if (sgd_sched_watches_metric(p->inner) && (st = sgd_sched_observe(p->inner, t, metric)) != SGD_OK)
        return st;
    /* Work on copies; commit only when everything succeeded. */
    double best = p->best, scale = p->scale;
    int64_t bad = p->num_bad, cool = p->cooldown_counter;
    if (plateau_better(p, metric)) {
        best = metric;
        bad = 0;
    } else {
        bad++;
    }
    if (cool > 0) {
        cool--;
        bad = 0; /* ignore bad steps in cooldown */
    }
    if (bad > p->o.patience) {
        /* torch: new = max(old * factor, min_lr), applied if old - new > eps, at the lr to come. */
        double x;
        if (t == INT64_MAX)
            return sgd__err(SGD_ERANGE, "sgd_sched_observe: plateau: step=%" PRId64 ": no step follows it", t);
        if ((st = sgd_sched_lr(p->inner, t + 1, &x)) != SGD_OK)
            return st;
        double old_lr = plateau_apply(p, x, scale), new_lr = plateau_apply(p, x, scale * p->o.factor);
        if (old_lr - new_lr > p->o.eps)
            scale *= p->o.factor;
        cool = p->o.cooldown;
        bad = 0;
    }
    p->best = best;
    p->num_bad = bad;
    p->cooldown_counter = cool;
    p->scale = scale;
    return SGD_OK;
}

static sgd_status plateau_export(double *state, size_t n, void *user)
{
    const plateau *p = user;
    state[0] = PLATEAU_TAG;
    state[1] = p->best;
    state[2] = (double)p->num_bad;
    state[3] = (double)p->cooldown_counter;
    state[4] = p->scale;
    size_t m = n - PLATEAU_STATE;
    return sgd_sched_state_export(p->inner, m > 0 ? state + PLATEAU_STATE : NULL, m);
}

/* A count read back from a double: integral and in [0, max]. */
static bool state_count(double v, int64_t max, int64_t *out)
{
    if (!(v >= 0 && v <= (double)max) || v != floor(v))
        return false;
    *out = (int64_t)v;
    return true;
}

static sgd_status plateau_import(const double *state, size_t n, void *user)
{
    static const char fn[] = "sgd_sched_state_import: plateau";
    plateau *p = user;
    if (state[0] != PLATEAU_TAG)
        return sgd__err(SGD_EFORMAT, "%s: state[0]=%g is not a plateau's state tag", fn, state[0]);
    double best = state[1];
    bool min = p->o.mode == SGD_PLATEAU_MIN;
    if (isnan(best) || (isinf(best) && best != (min ? INFINITY : -INFINITY)))
        return sgd__err(SGD_EFORMAT, "%s: best=%g: not a best %s metric", fn, best, min ? "min" : "max");
    int64_t bad, cool;
    if (!state_count(state[2], p->o.patience, &bad))
        return sgd__err(SGD_EFORMAT, "%s: num_bad_epochs=%g: must be an integer in [0, patience=%" PRId64 "]", fn,
                        state[2], p->o.patience);
    if (!state_count(state[3], p->o.cooldown, &cool))
        return sgd__err(SGD_EFORMAT, "%s: cooldown_counter=%g: must be an integer in [0, cooldown=%" PRId64 "]",
                        fn, state[3], p->o.cooldown);
    double scale = state[4];
    if (!(scale >= 0 && scale <= 1))
        return sgd__err(SGD_EFORMAT, "%s: scale=%g: must be in [0, 1]", fn, scale);
    size_t m = n - PLATEAU_STATE;
    sgd_status st = sgd_sched_state_import(p->inner, m > 0 ? state + PLATEAU_STATE : NULL, m);
    if (st != SGD_OK)
        return st;
    p->best = best;
    p->num_bad = bad;
    p->cooldown_counter = cool;
    p->scale = scale;
    return SGD_OK;
}

static void plateau_destroy(void *user)
{
    plateau *p = user;
    sgd_allocator a = p->alloc;
    sgd__sched_destroy(p->inner);
    sgd__free(&a, p);
}

static sgd_status plateau_check(const sgd_sched_plateau_options *o, const char *fn)
{
    if (o->mode != SGD_PLATEAU_MIN && o->mode != SGD_PLATEAU_MAX)
        return sgd__err(SGD_EINVAL, "%s: mode=%d: must be min or max", fn, (int)o->mode);
    if (!isfinite(o->factor))
        return sgd__err(SGD_ENONFINITE, "%s: factor=%g: must be finite", fn, o->factor);
    if (o->factor < 0 || o->factor >= 1)
        return sgd__err(SGD_ERANGE, "%s: factor=%g: must be in [0, 1)", fn, o->factor);
    if (o->patience < 0)
        return sgd__err(SGD_ERANGE, "%s: patience=%" PRId64 ": must be >= 0", fn, o->patience);
    if (o->threshold_mode != SGD_THRESHOLD_REL && o->threshold_mode != SGD_THRESHOLD_ABS)
        return sgd__err(SGD_EINVAL, "%s: threshold_mode=%d: must be rel or abs", fn, (int)o->threshold_mode);
    if (!isfinite(o->threshold))
        return sgd__err(SGD_ENONFINITE, "%s: threshold=%g: must be finite", fn, o->threshold);
    if (o->threshold < 0)
        return sgd__err(SGD_ERANGE, "%s: threshold=%g: must be >= 0", fn, o->threshold);
    if (o->threshold_mode == SGD_THRESHOLD_REL && o->threshold >= 1)
        return sgd__err(SGD_ERANGE, "%s: threshold=%g: must be < 1 in rel mode", fn, o->threshold);
    if (o->cooldown < 0)
        return sgd__err(SGD_ERANGE, "%s: cooldown=%" PRId64 ": must be >= 0", fn, o->cooldown);
    if (!isfinite(o->min_lr) || !isfinite(o->eps))
        return sgd__err(SGD_ENONFINITE, "%s: %s=%g: must be finite", fn, isfinite(o->min_lr) ? "eps" : "min_lr",
                        isfinite(o->min_lr) ? o->eps : o->min_lr);
    if (o->min_lr < 0)
        return sgd__err(SGD_ERANGE, "%s: min_lr=%g: must be >= 0", fn, o->min_lr);
    if (o->eps < 0)
        return sgd__err(SGD_ERANGE, "%s: eps=%g: must be >= 0", fn, o->eps);
    return SGD_OK;
}

sgd_status sgd__sched_plateau(sgd_sched **out, sgd_sched *inner, const sgd_sched_plateau_options *o,
                              const sgd_allocator *a, const char *fn)
{
    *out = NULL;
    sgd_status st = sgd__sched_check_children(&inner, 1, fn, "inner");
    if (st == SGD_OK)
        st = plateau_check(o, fn);
    if (st != SGD_OK)
        return st;
    size_t inner_state = sgd_sched_state_size(inner);
    plateau *p = sgd__malloc(a, sizeof *p);
    if (p == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    *p = (plateau){.alloc = *a,
                   .inner = inner,
                   .o = *o,
                   .best = o->mode == SGD_PLATEAU_MIN ? INFINITY : -INFINITY,
                   .scale = 1.0};
    sgd_sched_vtable vt;
    sgd_sched_vtable_init(&vt);
    vt.name = "plateau";
    vt.lr = plateau_lr;
    vt.momentum = sgd_sched_cycles_momentum(inner) ? plateau_momentum : NULL;
    vt.observe = plateau_observe;
    vt.state_size = PLATEAU_STATE + inner_state;
    vt.state_export = plateau_export;
    vt.state_import = plateau_import;
    vt.destroy = plateau_destroy;
    vt.user = p;
    if ((st = sgd__sched_wrap(out, &vt, a, false, fn)) != SGD_OK) {
        sgd__free(a, p);
        return st;
    }
    sgd__sched_adopt(&inner, 1);
    return SGD_OK;
}

void sgd_sched_plateau_options_init(sgd_sched_plateau_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->mode = SGD_PLATEAU_MIN;
    o->factor = 0.1;
    o->patience = 10;
    o->threshold = 1e-4;
    o->threshold_mode = SGD_THRESHOLD_REL;
    o->cooldown = 0;
    o->min_lr = 0;
    o->eps = 1e-8;
}

sgd_status sgd_sched_plateau_new(sgd_sched **out, sgd_sched *inner, const sgd_sched_plateau_options *opts,
                                 const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_sched_plateau_new";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    sgd_sched_plateau_options o;
    sgd_sched_plateau_options_init(&o);
    sgd_status st = sgd__options_copy(&o, sizeof o, opts, SGD__FIRST(sgd_sched_plateau_options), fn, "opts");
    sgd_allocator a;
    if (st == SGD_OK)
        st = sgd__allocator_init(&a, alloc, fn);
    if (st != SGD_OK)
        return st;
    return sgd__sched_plateau(out, inner, &o, &a, fn);
}
