/*
 * The built-in schedules of torch.optim.lr_scheduler (PyTorch 1.13) in closed
 * form: each lr(t) is computed from the step alone, in double, with torch's
 * own expressions (its `_get_closed_form_lr`, or get_lr where that is already
 * closed), in torch's order of operations.
 * SPDX-License-Identifier: MIT
 */
#include "sched_internal.h"

#include "core/abi.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Parameters of every closed-form kind; each reads its own fields. */
typedef struct builtin {
    sgd_allocator alloc;
    double base_lr;
    double gamma, factor, power, eta_min, start_factor, end_factor;
    int64_t period;      /* step_size, total_iters, T_max, T_0 */
    int64_t T_mult;
    int64_t *milestones; /* multistep, owned */
    size_t n_milestones;
    /* onecycle: phase ends (torch's float end_step), lr and momentum at each phase's start and end */
    int32_t n_phases;
    int32_t anneal;
    double end_step[3], lr0[3], lr1[3], m0[3], m1[3];
    int64_t last_step; /* onecycle: total_steps - 1, held after */
    /* cyclic */
    double max_lr, total_size, step_ratio, base_m, max_m;
    int32_t mode;
} builtin;

static void builtin_destroy(void *user)
{
    builtin *b = user;
    sgd_allocator a = b->alloc;
    sgd__free(&a, b->milestones);
    sgd__free(&a, b);
}

typedef sgd_status (*lr_fn)(int64_t, double *, void *);
typedef sgd_status (*mom_fn)(int64_t, double *, int32_t *, void *);

/* Allocates a copy of `proto` (milestones already allocated by the caller are taken over) and wraps it. */
static sgd_status make(sgd_sched **out, const char *name, const builtin *proto, lr_fn lr, mom_fn momentum,
                       const sgd_allocator *a, const char *fn)
{
    builtin *b = sgd__malloc(a, sizeof *b);
    if (b == NULL) {
        sgd__free(a, proto->milestones);
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    }
    *b = *proto;
    b->alloc = *a;
    sgd_sched_vtable vt;
    sgd_sched_vtable_init(&vt);
    vt.name = name;
    vt.lr = lr;
    vt.momentum = momentum;
    vt.destroy = builtin_destroy;
    vt.user = b;
    sgd_status st = sgd__sched_wrap(out, &vt, a, false, fn);
    if (st != SGD_OK)
        builtin_destroy(b);
    return st;
}

/* ------------------------------------------------------------------ checks */

static sgd_status need_positive(int64_t v, const char *key, const char *fn)
{
    if (v <= 0)
        return sgd__err(SGD_ERANGE, "%s: %s=%" PRId64 ": must be > 0", fn, key, v);
    return SGD_OK;
}

static sgd_status need_nonneg_int(int64_t v, const char *key, const char *fn)
{
    if (v < 0)
        return sgd__err(SGD_ERANGE, "%s: %s=%" PRId64 ": must be >= 0", fn, key, v);
    return SGD_OK;
}

static sgd_status need_finite(double v, const char *key, const char *fn)
{
    if (isnan(v))
        return sgd__err(SGD_EINVAL, "%s: %s is required (got nan)", fn, key);
    if (!isfinite(v))
        return sgd__err(SGD_ENONFINITE, "%s: %s=%g: must be finite", fn, key, v);
    return SGD_OK;
}

static sgd_status need_nonneg(double v, const char *key, const char *fn)
{
    sgd_status st = need_finite(v, key, fn);
    if (st == SGD_OK && v < 0)
        st = sgd__err(SGD_ERANGE, "%s: %s=%g: must be >= 0", fn, key, v);
    return st;
}

static sgd_status need_unit(double v, const char *key, bool open_top, const char *fn)
{
    sgd_status st = need_finite(v, key, fn);
    if (st == SGD_OK && (v < 0 || v > 1 || (open_top && v == 1)))
        st = sgd__err(SGD_ERANGE, "%s: %s=%g: must be in [0, 1%s", fn, key, v, open_top ? ")" : "]");
    return st;
}

static sgd_status need_gt0(double v, const char *key, const char *fn)
{
    sgd_status st = need_finite(v, key, fn);
    if (st == SGD_OK && !(v > 0))
        st = sgd__err(SGD_ERANGE, "%s: %s=%g: must be > 0", fn, key, v);
    return st;
}

static sgd_status need_bool(int32_t v, const char *key, const char *fn)
{
    if (v != 0 && v != 1)
        return sgd__err(SGD_EINVAL, "%s: %s=%d: must be 0 or 1", fn, key, (int)v);
    return SGD_OK;
}

#define TRY(x)                                                                                                  \
    do {                                                                                                        \
        sgd_status try_st_ = (x);                                                                               \
        if (try_st_ != SGD_OK)                                                                                  \
            return try_st_;                                                                                     \
    } while (0)

/* ---------------------------------------------------------------- constant */

static sgd_status constant_lr(int64_t t, double *lr, void *user)
{
    const builtin *b = user;
    /* torch: base_lr * (factor + (last_epoch >= total_iters) * (1 - factor)) */
    *lr = b->base_lr * (b->factor + (t >= b->period ? 1 - b->factor : 0.0));
    return SGD_OK;
}

sgd_status sgd__sched_constant(sgd_sched **out, double base_lr, const sgd_sched_constant_options *o,
                               const sgd_allocator *a, const char *fn)
{
    TRY(sgd__sched_check_base_lr(base_lr, fn));
    TRY(need_unit(o->factor, "factor", false, fn));
    TRY(need_nonneg_int(o->total_iters, "total_iters", fn));
    builtin b = {.base_lr = base_lr, .factor = o->factor, .period = o->total_iters};
    return make(out, "constant", &b, constant_lr, NULL, a, fn);
}

/* -------------------------------------------------------------------- step */

static sgd_status step_lr(int64_t t, double *lr, void *user)
{
    const builtin *b = user;
    *lr = b->base_lr * pow(b->gamma, (double)(t / b->period));
    return SGD_OK;
}

sgd_status sgd__sched_step(sgd_sched **out, double base_lr, const sgd_sched_step_options *o, const sgd_allocator *a,
                           const char *fn)
{
    TRY(sgd__sched_check_base_lr(base_lr, fn));
    TRY(need_positive(o->step_size, "step_size", fn));
    TRY(need_nonneg(o->gamma, "gamma", fn));
    builtin b = {.base_lr = base_lr, .gamma = o->gamma, .period = o->step_size};
    return make(out, "step", &b, step_lr, NULL, a, fn);
}

/* --------------------------------------------------------------- multistep */

static sgd_status multistep_lr(int64_t t, double *lr, void *user)
{
    const builtin *b = user;
    /* bisect_right: the number of milestones <= t */
    size_t lo = 0, hi = b->n_milestones;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->milestones[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    *lr = b->base_lr * pow(b->gamma, (double)lo);
    return SGD_OK;
}

sgd_status sgd__sched_multistep(sgd_sched **out, double base_lr, const sgd_sched_multistep_options *o,
                                const sgd_allocator *a, const char *fn)
{
    TRY(sgd__sched_check_base_lr(base_lr, fn));
    TRY(need_nonneg(o->gamma, "gamma", fn));
    if (o->n_milestones == 0 || o->milestones == NULL)
        return sgd__err(SGD_EINVAL, "%s: milestones is required (at least one step)", fn);
    if (o->n_milestones > SGD__SCHED_MAX_MILESTONES)
        return sgd__err(SGD_EOVERFLOW, "%s: %zu milestones: at most %d", fn, o->n_milestones,
                        SGD__SCHED_MAX_MILESTONES);
    for (size_t i = 0; i < o->n_milestones; i++) {
        if (o->milestones[i] < 0)
            return sgd__err(SGD_ERANGE, "%s: milestones[%zu]=%" PRId64 ": must be >= 0", fn, i, o->milestones[i]);
        if (i > 0 && o->milestones[i] <= o->milestones[i - 1])
            return sgd__err(SGD_EINVAL,
                            "%s: milestones[%zu]=%" PRId64 " after %" PRId64 ": must be strictly increasing", fn, i,
                            o->milestones[i], o->milestones[i - 1]);
    }
    int64_t *m = sgd__calloc(a, o->n_milestones, sizeof *m);
    if (m == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    memcpy(m, o->milestones, o->n_milestones * sizeof *m);
    builtin b = {.base_lr = base_lr, .gamma = o->gamma, .milestones = m, .n_milestones = o->n_milestones};
    return make(out, "multistep", &b, multistep_lr, NULL, a, fn);
}

/* ------------------------------------------------------------- exponential */

static sgd_status exponential_lr(int64_t t, double *lr, void *user)
{
    const builtin *b = user;
    *lr = b->base_lr * pow(b->gamma, (double)t);
    return SGD_OK;
}

sgd_status sgd__sched_exponential(sgd_sched **out, double base_lr, const sgd_sched_exponential_options *o,
                                  const sgd_allocator *a, const char *fn)
{
    TRY(sgd__sched_check_base_lr(base_lr, fn));
    TRY(need_nonneg(o->gamma, "gamma", fn));
    builtin b = {.base_lr = base_lr, .gamma = o->gamma};
    return make(out, "exponential", &b, exponential_lr, NULL, a, fn);
}

/* -------------------------------------------------------------- polynomial */

static sgd_status polynomial_lr(int64_t t, double *lr, void *user)
{
    const builtin *b = user;
    int64_t m = t < b->period ? t : b->period;
    *lr = b->base_lr * pow(1.0 - (double)m / (double)b->period, b->power);
    return SGD_OK;
}

sgd_status sgd__sched_polynomial(sgd_sched **out, double base_lr, const sgd_sched_polynomial_options *o,
                                 const sgd_allocator *a, const char *fn)
{
    TRY(sgd__sched_check_base_lr(base_lr, fn));
    TRY(need_positive(o->total_iters, "total_iters", fn));
    TRY(need_nonneg(o->power, "power", fn));
    builtin b = {.base_lr = base_lr, .power = o->power, .period = o->total_iters};
    return make(out, "polynomial", &b, polynomial_lr, NULL, a, fn);
}

/* ------------------------------------------------------------------ cosine */

/*
 * eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T)) / 2, torch's closed form.
 * The formula has period 2T; t is reduced modulo 2T first (exactly, in
 * integers), so that the angle keeps full precision at any step.
 */
static double cosine_at(double base_lr, double eta_min, int64_t t, int64_t T)
{
    int64_t r = t;
    if (T <= INT64_MAX / 2 && t >= 2 * T)
        r = t % (2 * T);
    return eta_min + (base_lr - eta_min) * (1 + cos(M_PI * (double)r / (double)T)) / 2;
}

static sgd_status cosine_lr(int64_t t, double *lr, void *user)
{
    const builtin *b = user;
    *lr = cosine_at(b->base_lr, b->eta_min, t, b->period);
    return SGD_OK;
}

sgd_status sgd__sched_cosine(sgd_sched **out, double base_lr, const sgd_sched_cosine_options *o,
                             const sgd_allocator *a, const char *fn)
{
    TRY(sgd__sched_check_base_lr(base_lr, fn));
    TRY(need_positive(o->T_max, "T_max", fn));
    TRY(need_nonneg(o->eta_min, "eta_min", fn));
    builtin b = {.base_lr = base_lr, .eta_min = o->eta_min, .period = o->T_max};
    return make(out, "cosine", &b, cosine_lr, NULL, a, fn);
}

/* ---------------------------------------------------- cosine_warm_restarts */

static sgd_status warm_restarts_lr(int64_t t, double *lr, void *user)
{
    const builtin *b = user;
    /* T_cur: steps since the last restart; T_i: the current period (exact, in integers). */
    int64_t T_i = b->period, T_cur = t;
    if (b->T_mult == 1) {
        T_cur = t % T_i;
    } else {
        while (T_cur >= T_i) {
            T_cur -= T_i;
            if (T_i > INT64_MAX / b->T_mult) {
                /* The next period is longer than any step: T_cur < T_i from here on. */
                *lr = b->eta_min + (b->base_lr - b->eta_min) *
                                       (1 + cos(M_PI * (double)T_cur / ((double)T_i * (double)b->T_mult))) / 2;
                return SGD_OK;
            }
            T_i *= b->T_mult;
        }
    }
    *lr = b->eta_min + (b->base_lr - b->eta_min) * (1 + cos(M_PI * (double)T_cur / (double)T_i)) / 2;
    return SGD_OK;
}

sgd_status sgd__sched_cosine_warm_restarts(sgd_sched **out, double base_lr,
                                           const sgd_sched_cosine_warm_restarts_options *o, const sgd_allocator *a,
                                           const char *fn)
{
    TRY(sgd__sched_check_base_lr(base_lr, fn));
    TRY(need_positive(o->T_0, "T_0", fn));
    if (o->T_mult < 1)
        return sgd__err(SGD_ERANGE, "%s: T_mult=%" PRId64 ": must be >= 1", fn, o->T_mult);
    TRY(need_nonneg(o->eta_min, "eta_min", fn));
    builtin b = {.base_lr = base_lr, .eta_min = o->eta_min, .period = o->T_0, .T_mult = o->T_mult};
    return make(out, "cosine_warm_restarts", &b, warm_restarts_lr, NULL, a, fn);
}

/* ------------------------------------------------------------------ linear */

static sgd_status linear_lr(int64_t t, double *lr, void *user)
{
    const builtin *b = user;
    int64_t m = t < b->period ? t : b->period;
    *lr = b->base_lr * (b->start_factor + (b->end_factor - b->start_factor) * (double)m / (double)b->period);
    return SGD_OK;
}

sgd_status sgd__sched_linear(sgd_sched **out, double base_lr, const sgd_sched_linear_options *o,
                             const sgd_allocator *a, const char *fn)
{
    TRY(sgd__sched_check_base_lr(base_lr, fn));
    TRY(need_unit(o->start_factor, "start_factor", false, fn));
    TRY(need_unit(o->end_factor, "end_factor", false, fn));
    TRY(need_positive(o->total_iters, "total_iters", fn));
    builtin b = {.base_lr = base_lr,
                 .start_factor = o->start_factor,
                 .end_factor = o->end_factor,
                 .period = o->total_iters};
    return make(out, "linear", &b, linear_lr, NULL, a, fn);
}

/* ---------------------------------------------------------------- onecycle */

static double anneal(int32_t how, double start, double end, double pct)
{
    if (how == SGD_ANNEAL_LINEAR)
        return (end - start) * pct + start;
    double cos_out = cos(M_PI * pct) + 1;
    return end + (start - end) / 2.0 * cos_out;
}

/* torch's phase walk; t is clamped to the last step, whose value is then held. */
static void onecycle_at(const builtin *b, int64_t t, double *lr, double *mom)
{
    double step = (double)(t < b->last_step ? t : b->last_step);
    double start_step = 0;
    for (int32_t i = 0; i < b->n_phases; i++) {
        double end_step = b->end_step[i];
        if (step <= end_step || i == b->n_phases - 1) {
            /* A phase of no length (possible with few steps; torch divides by zero) is at its end. */
            double pct = end_step > start_step ? (step - start_step) / (end_step - start_step) : 1.0;
            *lr = anneal(b->anneal, b->lr0[i], b->lr1[i], pct);
            *mom = anneal(b->anneal, b->m0[i], b->m1[i], pct);
            return;
        }
        start_step = end_step;
    }
}

static sgd_status onecycle_lr(int64_t t, double *lr, void *user)
{
    double m;
    onecycle_at(user, t, lr, &m);
    return SGD_OK;
}

static sgd_status onecycle_momentum(int64_t t, double *momentum, int32_t *set, void *user)
{
    double lr;
    onecycle_at(user, t, &lr, momentum);
    *set = 1;
    return SGD_OK;
}

sgd_status sgd__sched_onecycle(sgd_sched **out, const sgd_sched_onecycle_options *o, const sgd_allocator *a,
                               const char *fn)
{
    TRY(need_nonneg(o->max_lr, "max_lr", fn));
    int64_t total = o->total_steps;
    if (total != 0) {
        TRY(need_positive(total, "total_steps", fn));
        if (o->epochs != 0 || o->steps_per_epoch != 0)
            return sgd__err(SGD_EINVAL, "%s: total_steps=%" PRId64 " and epochs/steps_per_epoch: give one or the other",
                            fn, total);
    } else {
        if (o->epochs == 0 && o->steps_per_epoch == 0)
            return sgd__err(SGD_EINVAL, "%s: total_steps is required (or epochs and steps_per_epoch)", fn);
        TRY(need_positive(o->epochs, "epochs", fn));
        TRY(need_positive(o->steps_per_epoch, "steps_per_epoch", fn));
        if (__builtin_mul_overflow(o->epochs, o->steps_per_epoch, &total))
            return sgd__err(SGD_EOVERFLOW, "%s: epochs=%" PRId64 " * steps_per_epoch=%" PRId64 " overflows", fn,
                            o->epochs, o->steps_per_epoch);
    }
    TRY(need_finite(o->pct_start, "pct_start", fn));
    if (!(o->pct_start > 0 && o->pct_start < 1))
        return sgd__err(SGD_ERANGE, "%s: pct_start=%g: must be in (0, 1)", fn, o->pct_start);
    if (o->anneal_strategy != SGD_ANNEAL_COS && o->anneal_strategy != SGD_ANNEAL_LINEAR)
        return sgd__err(SGD_EINVAL, "%s: anneal_strategy=%d: must be SGD_ANNEAL_COS or SGD_ANNEAL_LINEAR", fn,
                        (int)o->anneal_strategy);
    TRY(need_bool(o->cycle_momentum, "cycle_momentum", fn));
    TRY(need_bool(o->three_phase, "three_phase", fn));
    TRY(need_unit(o->base_momentum, "base_momentum", true, fn));
    TRY(need_unit(o->max_momentum, "max_momentum", true, fn));
    TRY(need_gt0(o->div_factor, "div_factor", fn));
    TRY(need_gt0(o->final_div_factor, "final_div_factor", fn));

    double initial = o->max_lr / o->div_factor, min_lr = initial / o->final_div_factor;
    double T = (double)total, p = o->pct_start, bm = o->base_momentum, mm = o->max_momentum;
    builtin b = {.anneal = o->anneal_strategy, .last_step = total - 1};
    if (o->three_phase) {
        b.n_phases = 3;
        b.end_step[0] = p * T - 1, b.lr0[0] = initial, b.lr1[0] = o->max_lr, b.m0[0] = mm, b.m1[0] = bm;
        b.end_step[1] = 2 * p * T - 2, b.lr0[1] = o->max_lr, b.lr1[1] = initial, b.m0[1] = bm, b.m1[1] = mm;
        b.end_step[2] = T - 1, b.lr0[2] = initial, b.lr1[2] = min_lr, b.m0[2] = mm, b.m1[2] = mm;
    } else {
        b.n_phases = 2;
        b.end_step[0] = p * T - 1, b.lr0[0] = initial, b.lr1[0] = o->max_lr, b.m0[0] = mm, b.m1[0] = bm;
        b.end_step[1] = T - 1, b.lr0[1] = o->max_lr, b.lr1[1] = min_lr, b.m0[1] = bm, b.m1[1] = mm;
    }
    return make(out, "onecycle", &b, onecycle_lr, o->cycle_momentum ? onecycle_momentum : NULL, a, fn);
}

/* ------------------------------------------------------------------ cyclic */

/* torch's CyclicLR.get_lr, with its float arithmetic; *mom is the momentum when cycled. */
static void cyclic_at(const builtin *b, int64_t step, double *lr, double *mom)
{
    double t = (double)step;
    double cycle = floor(1 + t / b->total_size);
    double x = 1. + t / b->total_size - cycle;
    double scale_factor = x <= b->step_ratio ? x / b->step_ratio : (x - 1) / (b->step_ratio - 1);
    double scale;
    switch (b->mode) {
    case SGD_CYCLIC_TRIANGULAR2: scale = 1 / pow(2., cycle - 1); break;
    case SGD_CYCLIC_EXP_RANGE: scale = pow(b->gamma, t); break;
    default: scale = 1.; break;
    }
    *lr = b->base_lr + (b->max_lr - b->base_lr) * scale_factor * scale;
    *mom = b->max_m - (b->max_m - b->base_m) * scale_factor * scale;
}

static sgd_status cyclic_lr(int64_t t, double *lr, void *user)
{
    double m;
    cyclic_at(user, t, lr, &m);
    return SGD_OK;
}

static sgd_status cyclic_momentum(int64_t t, double *momentum, int32_t *set, void *user)
{
    double lr;
    cyclic_at(user, t, &lr, momentum);
    *set = 1;
    return SGD_OK;
}

sgd_status sgd__sched_cyclic(sgd_sched **out, const sgd_sched_cyclic_options *o, const sgd_allocator *a,
                             const char *fn)
{
    TRY(need_nonneg(o->base_lr, "base_lr", fn));
    TRY(need_nonneg(o->max_lr, "max_lr", fn));
    TRY(need_positive(o->step_size_up, "step_size_up", fn));
    TRY(need_nonneg_int(o->step_size_down, "step_size_down", fn));
    if (o->mode != SGD_CYCLIC_TRIANGULAR && o->mode != SGD_CYCLIC_TRIANGULAR2 && o->mode != SGD_CYCLIC_EXP_RANGE)
        return sgd__err(SGD_EINVAL, "%s: mode=%d: must be triangular, triangular2 or exp_range", fn, (int)o->mode);
    TRY(need_gt0(o->gamma, "gamma", fn));
    if (o->gamma > 1 && o->mode == SGD_CYCLIC_EXP_RANGE)
        return sgd__err(SGD_ERANGE, "%s: gamma=%g: exp_range needs gamma <= 1 (the amplitude would grow without bound)",
                        fn, o->gamma);
    TRY(need_bool(o->cycle_momentum, "cycle_momentum", fn));
    TRY(need_unit(o->base_momentum, "base_momentum", true, fn));
    TRY(need_unit(o->max_momentum, "max_momentum", true, fn));
    double up = (double)o->step_size_up, down = o->step_size_down > 0 ? (double)o->step_size_down : up;
    builtin b = {.base_lr = o->base_lr,
                 .max_lr = o->max_lr,
                 .total_size = up + down,
                 .step_ratio = up / (up + down),
                 .mode = o->mode,
                 .gamma = o->gamma,
                 .base_m = o->base_momentum,
                 .max_m = o->max_momentum};
    return make(out, "cyclic", &b, cyclic_lr, o->cycle_momentum ? cyclic_momentum : NULL, a, fn);
}

/* ------------------------------------------------------- public constructors */

void sgd_sched_constant_options_init(sgd_sched_constant_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->factor = 1.0 / 3;
    o->total_iters = 5;
}

void sgd_sched_step_options_init(sgd_sched_step_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->gamma = 0.1;
}

void sgd_sched_multistep_options_init(sgd_sched_multistep_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->gamma = 0.1;
}

void sgd_sched_exponential_options_init(sgd_sched_exponential_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->gamma = NAN;
}

void sgd_sched_polynomial_options_init(sgd_sched_polynomial_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->total_iters = 5;
    o->power = 1.0;
}

void sgd_sched_cosine_options_init(sgd_sched_cosine_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
}

void sgd_sched_cosine_warm_restarts_options_init(sgd_sched_cosine_warm_restarts_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->T_mult = 1;
}

void sgd_sched_linear_options_init(sgd_sched_linear_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->start_factor = 1.0 / 3;
    o->end_factor = 1.0;
    o->total_iters = 5;
}

void sgd_sched_onecycle_options_init(sgd_sched_onecycle_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->max_lr = NAN;
    o->pct_start = 0.3;
    o->anneal_strategy = SGD_ANNEAL_COS;
    o->cycle_momentum = 1;
    o->base_momentum = 0.85;
    o->max_momentum = 0.95;
    o->div_factor = 25.;
    o->final_div_factor = 1e4;
}

void sgd_sched_cyclic_options_init(sgd_sched_cyclic_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->base_lr = NAN;
    o->max_lr = NAN;
    o->step_size_up = 2000;
    o->mode = SGD_CYCLIC_TRIANGULAR;
    o->gamma = 1.;
    o->cycle_momentum = 1;
    o->base_momentum = 0.8;
    o->max_momentum = 0.9;
}

/*
 * The public constructors: resolve out, options (NULL = defaults, when the
 * kind has no required option) and allocator, then call the shared builder.
 */
#define PUBLIC_NEW(kind, needs_opts, call)                                                                     \
    static const char fn[] = "sgd_sched_" #kind "_new";                                                         \
    if (out == NULL)                                                                                            \
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);                                                     \
    *out = NULL;                                                                                                \
    if ((needs_opts) && opts == NULL)                                                                           \
        return sgd__err(SGD_EINVAL, "%s: opts is NULL (this kind has required options)", fn);                  \
    sgd_sched_##kind##_options o;                                                                               \
    sgd_sched_##kind##_options_init(&o);                                                                        \
    TRY(sgd__options_copy(&o, sizeof o, opts, SGD__FIRST(sgd_sched_##kind##_options), fn, "opts"));              \
    sgd_allocator a;                                                                                            \
    TRY(sgd__allocator_init(&a, alloc, fn));                                                                    \
    return call

sgd_status sgd_sched_constant_new(sgd_sched **out, double base_lr, const sgd_sched_constant_options *opts,
                                  const sgd_allocator *alloc)
{
    PUBLIC_NEW(constant, false, sgd__sched_constant(out, base_lr, &o, &a, fn));
}

sgd_status sgd_sched_step_new(sgd_sched **out, double base_lr, const sgd_sched_step_options *opts,
                              const sgd_allocator *alloc)
{
    PUBLIC_NEW(step, true, sgd__sched_step(out, base_lr, &o, &a, fn));
}

sgd_status sgd_sched_multistep_new(sgd_sched **out, double base_lr, const sgd_sched_multistep_options *opts,
                                   const sgd_allocator *alloc)
{
    PUBLIC_NEW(multistep, true, sgd__sched_multistep(out, base_lr, &o, &a, fn));
}

sgd_status sgd_sched_exponential_new(sgd_sched **out, double base_lr, const sgd_sched_exponential_options *opts,
                                     const sgd_allocator *alloc)
{
    PUBLIC_NEW(exponential, true, sgd__sched_exponential(out, base_lr, &o, &a, fn));
}

sgd_status sgd_sched_polynomial_new(sgd_sched **out, double base_lr, const sgd_sched_polynomial_options *opts,
                                    const sgd_allocator *alloc)
{
    PUBLIC_NEW(polynomial, false, sgd__sched_polynomial(out, base_lr, &o, &a, fn));
}

sgd_status sgd_sched_cosine_new(sgd_sched **out, double base_lr, const sgd_sched_cosine_options *opts,
                                const sgd_allocator *alloc)
{
    PUBLIC_NEW(cosine, true, sgd__sched_cosine(out, base_lr, &o, &a, fn));
}

sgd_status sgd_sched_cosine_warm_restarts_new(sgd_sched **out, double base_lr,
                                              const sgd_sched_cosine_warm_restarts_options *opts,
                                              const sgd_allocator *alloc)
{
    PUBLIC_NEW(cosine_warm_restarts, true, sgd__sched_cosine_warm_restarts(out, base_lr, &o, &a, fn));
}

sgd_status sgd_sched_linear_new(sgd_sched **out, double base_lr, const sgd_sched_linear_options *opts,
                                const sgd_allocator *alloc)
{
    PUBLIC_NEW(linear, false, sgd__sched_linear(out, base_lr, &o, &a, fn));
}

sgd_status sgd_sched_onecycle_new(sgd_sched **out, const sgd_sched_onecycle_options *opts,
                                  const sgd_allocator *alloc)
{
    PUBLIC_NEW(onecycle, true, sgd__sched_onecycle(out, &o, &a, fn));
}

sgd_status sgd_sched_cyclic_new(sgd_sched **out, const sgd_sched_cyclic_options *opts, const sgd_allocator *alloc)
{
    PUBLIC_NEW(cyclic, true, sgd__sched_cyclic(out, &o, &a, fn));
}
