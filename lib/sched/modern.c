/*
 * Schedules beyond torch.optim.lr_scheduler, each in closed form in double:
 *
 *   poly_decay       Keras PolynomialDecay (with cycle) / Optax polynomial_schedule (with transition_begin)
 *   exp_decay        Optax exponential_decay (transition_steps, transition_begin, staircase, end_lr)
 *   inverse_time     Keras InverseTimeDecay
 *   inv_sqrt         the Transformer's inverse square root with linear warmup, peak base_lr at warmup_steps
 *   wsd              warmup, stable, decay (linear, cosine or 1-sqrt) to min_factor
 *   cosine_decay     Optax cosine_decay_schedule (alpha, exponent), holding its final value
 *   cosine_restarts  Keras CosineDecayRestarts (t_mul, m_mul: a peak that decays, alpha)
 *
 * Made from specs only (sgd_sched_new(); docs/sched.md has their keys); none
 * has state. Each expression follows its reference's order of operations.
 * SPDX-License-Identifier: MIT
 */
#include "sched_internal.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

enum { K_POLY, K_EXP, K_INVTIME, K_INVSQRT, K_WSD, K_COSDECAY, K_COSRESTARTS };
enum { SHAPE_LINEAR, SHAPE_COSINE, SHAPE_SQRT };

typedef struct modern {
    sgd_allocator alloc;
    int kind;
    double base;
    double steps;       /* decay_steps, transition_steps, warmup_steps (inv_sqrt), first_decay_steps */
    double begin;       /* transition_begin */
    double end;         /* end_lr (NaN: none, exp_decay) */
    double power;       /* power, exponent */
    double rate;        /* decay_rate */
    double alpha;       /* alpha, min_factor */
    double t_mul, m_mul;
    int32_t flag;       /* cycle, staircase */
    int32_t shape;      /* wsd */
    double total, warmup, decay; /* wsd */
} modern;

static sgd_status modern_lr(int64_t step, double *lr, void *user)
{
    const modern *m = user;
    const double t = (double)step;
    switch (m->kind) {
    case K_POLY: {
        /* Keras PolynomialDecay, counted from transition_begin (Optax) */
        double s = t - m->begin > 0.0 ? t - m->begin : 0.0, d = m->steps;
        if (m->flag) {
            double mult = s == 0.0 ? 1.0 : ceil(s / m->steps);
            d = d * mult;
        } else if (s > d) {
            s = d;
        }
        double p = s / d;
        *lr = (m->base - m->end) * pow(1.0 - p, m->power) + m->end;
        break;
    }
    case K_EXP: {
        /* Optax exponential_decay */
        double dec = t - m->begin, p = dec / m->steps;
        if (m->flag)
            p = floor(p);
        double v = dec <= 0.0 ? m->base : m->base * pow(m->rate, p);
        if (!isnan(m->end))
            v = m->rate < 1.0 ? (v > m->end ? v : m->end) : (v < m->end ? v : m->end);
        *lr = v;
        break;
    }
    case K_INVTIME: {
        /* Keras InverseTimeDecay */
        double p = t / m->steps;
        if (m->flag)
            p = floor(p);
        *lr = m->base / (1.0 + m->rate * p);
        break;
    }
    case K_INVSQRT: {
        double s = t + 1.0, w = m->steps, up = s / w, down = sqrt(w / s);
        *lr = m->base * (up < down ? up : down);
        break;
    }
    case K_WSD: {
        double f = 1.0, start = m->total - m->decay;
        if (t < m->warmup) {
            f = (t + 1.0) / m->warmup;
        } else if (t >= start) {
            double p = (t - start + 1.0) / m->decay;
            p = p > 1.0 ? 1.0 : p;
            double shape = m->shape == SHAPE_LINEAR   ? 1.0 - p
                           : m->shape == SHAPE_COSINE ? 0.5 * (1.0 + cos(M_PI * p))
                                                      : 1.0 - sqrt(p);
            f = m->alpha + (1.0 - m->alpha) * shape;
        }
        *lr = m->base * f;
        break;
    }
    case K_COSDECAY: {
        /* Optax cosine_decay_schedule */
        double c = t < m->steps ? t : m->steps;
        double cd = 0.5 * (1.0 + cos(M_PI * c / m->steps));
        *lr = m->base * ((1.0 - m->alpha) * pow(cd, m->power) + m->alpha);
        break;
    }
    case K_COSRESTARTS: {
        /* Keras CosineDecayRestarts */
        double cf = t / m->steps, i;
        if (m->t_mul == 1.0) {
            i = floor(cf);
            cf -= i;
        } else {
            i = floor(log(1.0 - cf * (1.0 - m->t_mul)) / log(m->t_mul));
            double sum_r = (1.0 - pow(m->t_mul, i)) / (1.0 - m->t_mul);
            cf = (cf - sum_r) / pow(m->t_mul, i);
        }
        double cosine = 0.5 * pow(m->m_mul, i) * (1.0 + cos(M_PI * cf));
        *lr = m->base * ((1.0 - m->alpha) * cosine + m->alpha);
        break;
    }
    default:
        return sgd__err(SGD_EINTERNAL, "schedule kind %d", m->kind);
    }
    return SGD_OK;
}

static void modern_destroy(void *user)
{
    modern *m = user;
    sgd_allocator a = m->alloc;
    sgd__free(&a, m);
}

/* ------------------------------------------------------------------ parsing */

#define TRY(x)                                                                                                  \
    do {                                                                                                        \
        sgd_status try_st_ = (x);                                                                               \
        if (try_st_ != SGD_OK)                                                                                  \
            return try_st_;                                                                                     \
    } while (0)

/* A number key: required (no default) when def is NaN; checked against [lo, hi] (open ends as told). */
static sgd_status num(sgd__spec *sp, const char *key, double def, double lo, bool lo_open, double hi, bool hi_open,
                      double *out, const char *fn)
{
    bool given = sgd__spec_get_str(sp, key).p != NULL;
    for (size_t i = 0; i < sp->n; i++)
        if (sgd__str_eq(sp->kv[i].key, key))
            sp->kv[i].used = false;
    double v = def;
    TRY(sgd__spec_get_double(sp, key, &v, fn));
    if (!given && isnan(def))
        return sgd__err(SGD_EINVAL, "%s: %s is required", fn, key);
    bool ok = isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (!ok) {
        if (isinf(hi))
            return sgd__err(SGD_ERANGE, "%s: %s=%g: must be a finite number %s %g", fn, key, v, lo_open ? ">" : ">=",
                            lo);
        return sgd__err(SGD_ERANGE, "%s: %s=%g: must be in %c%g, %g%c", fn, key, v, lo_open ? '(' : '[', lo, hi,
                        hi_open ? ')' : ']');
    }
    *out = v;
    return SGD_OK;
}

/* A whole number of steps: > 0 (or >= 0 with zero_ok), at most 2^53; NaN def: required. */
static sgd_status steps_key(sgd__spec *sp, const char *key, double def, bool zero_ok, double *out, const char *fn)
{
    bool given = sgd__spec_get_str(sp, key).p != NULL;
    for (size_t i = 0; i < sp->n; i++)
        if (sgd__str_eq(sp->kv[i].key, key))
            sp->kv[i].used = false;
    if (!given) {
        if (isnan(def))
            return sgd__err(SGD_EINVAL, "%s: %s is required", fn, key);
        *out = def;
        return SGD_OK;
    }
    int64_t v = 0;
    TRY(sgd__spec_get_int64(sp, key, &v, fn));
    if (v < (zero_ok ? 0 : 1) || v > (INT64_C(1) << 53))
        return sgd__err(SGD_ERANGE, "%s: %s=%" PRId64 ": must be %s 0 (and at most 2^53)", fn, key, v,
                        zero_ok ? ">=" : ">");
    *out = (double)v;
    return SGD_OK;
}

static sgd_status flag_key(sgd__spec *sp, const char *key, int32_t *out, const char *fn)
{
    bool b = false;
    TRY(sgd__spec_get_bool(sp, key, &b, fn));
    *out = b ? 1 : 0;
    return SGD_OK;
}

static const struct {
    const char *name;
    int kind;
} kinds[] = {
    {"poly_decay", K_POLY},     {"exp_decay", K_EXP},       {"inverse_time", K_INVTIME},
    {"inv_sqrt", K_INVSQRT},    {"wsd", K_WSD},             {"cosine_decay", K_COSDECAY},
    {"cosine_restarts", K_COSRESTARTS},
};

const char *sgd__sched_modern_name(size_t i)
{
    return i < sizeof kinds / sizeof kinds[0] ? kinds[i].name : NULL;
}

sgd_status sgd__sched_modern(sgd_sched **out, sgd__str kind, sgd__spec *sp, double base_lr, const sgd_allocator *a,
                             const char *fn)
{
    *out = NULL;
    int k = -1;
    const char *name = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (sgd__str_eq(kind, kinds[i].name))
            k = kinds[i].kind, name = kinds[i].name;
    if (k < 0)
        return SGD_ENOTFOUND;
    modern m;
    memset(&m, 0, sizeof m);
    m.kind = k;
    m.base = base_lr;
    m.end = NAN;
    switch (k) {
    case K_POLY:
        TRY(steps_key(sp, "decay_steps", NAN, false, &m.steps, fn));
        TRY(num(sp, "end_lr", 0.0, 0.0, false, INFINITY, false, &m.end, fn));
        TRY(num(sp, "power", 1.0, 0.0, true, INFINITY, false, &m.power, fn));
        TRY(flag_key(sp, "cycle", &m.flag, fn));
        TRY(steps_key(sp, "transition_begin", 0.0, true, &m.begin, fn));
        break;
    case K_EXP: {
        TRY(steps_key(sp, "transition_steps", NAN, false, &m.steps, fn));
        TRY(num(sp, "decay_rate", NAN, 0.0, true, INFINITY, false, &m.rate, fn));
        TRY(flag_key(sp, "staircase", &m.flag, fn));
        TRY(steps_key(sp, "transition_begin", 0.0, true, &m.begin, fn));
        if (sgd__spec_get_str(sp, "end_lr").p != NULL) {
            for (size_t i = 0; i < sp->n; i++)
                if (sgd__str_eq(sp->kv[i].key, "end_lr"))
                    sp->kv[i].used = false;
            TRY(num(sp, "end_lr", NAN, 0.0, false, INFINITY, false, &m.end, fn));
        }
        break;
    }
    case K_INVTIME:
        TRY(steps_key(sp, "decay_steps", NAN, false, &m.steps, fn));
        TRY(num(sp, "decay_rate", NAN, 0.0, false, INFINITY, false, &m.rate, fn));
        TRY(flag_key(sp, "staircase", &m.flag, fn));
        break;
    case K_INVSQRT:
        TRY(steps_key(sp, "warmup_steps", NAN, false, &m.steps, fn));
        break;
    case K_WSD: {
        TRY(steps_key(sp, "total_steps", NAN, false, &m.total, fn));
        TRY(steps_key(sp, "warmup_steps", 0.0, true, &m.warmup, fn));
        TRY(steps_key(sp, "decay_steps", NAN, false, &m.decay, fn));
        TRY(num(sp, "min_factor", 0.0, 0.0, false, 1.0, false, &m.alpha, fn));
        sgd__str shape = sgd__spec_get_str(sp, "decay");
        m.shape = SHAPE_SQRT;
        if (shape.p != NULL) {
            if (sgd__str_eq(shape, "linear"))
                m.shape = SHAPE_LINEAR;
            else if (sgd__str_eq(shape, "cosine"))
                m.shape = SHAPE_COSINE;
            else if (sgd__str_eq(shape, "1-sqrt"))
                m.shape = SHAPE_SQRT;
            else
                return sgd__err(SGD_EINVAL, "%s: decay=%.*s: must be linear, cosine or 1-sqrt", fn, (int)shape.n,
                                shape.p);
        }
        if (m.warmup + m.decay > m.total)
            return sgd__err(SGD_ERANGE,
                            "%s: warmup_steps=%.0f + decay_steps=%.0f: must not exceed total_steps=%.0f", fn,
                            m.warmup, m.decay, m.total);
        break;
    }
    case K_COSDECAY:
        TRY(steps_key(sp, "decay_steps", NAN, false, &m.steps, fn));
        TRY(num(sp, "alpha", 0.0, 0.0, false, 1.0, false, &m.alpha, fn));
        TRY(num(sp, "exponent", 1.0, 0.0, true, INFINITY, false, &m.power, fn));
        break;
    case K_COSRESTARTS:
        TRY(steps_key(sp, "first_decay_steps", NAN, false, &m.steps, fn));
        TRY(num(sp, "t_mul", 2.0, 0.0, true, INFINITY, false, &m.t_mul, fn));
        TRY(num(sp, "m_mul", 1.0, 0.0, false, INFINITY, false, &m.m_mul, fn));
        TRY(num(sp, "alpha", 0.0, 0.0, false, 1.0, false, &m.alpha, fn));
        break;
    default:
        break;
    }
    TRY(sgd__spec_check_unused(sp, fn));
    modern *b = sgd__malloc(a, sizeof *b);
    if (b == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    *b = m;
    b->alloc = *a;
    sgd_sched_vtable vt;
    sgd_sched_vtable_init(&vt);
    vt.name = name;
    vt.lr = modern_lr;
    vt.destroy = modern_destroy;
    vt.user = b;
    sgd_status st = sgd__sched_wrap(out, &vt, a, false, fn);
    if (st != SGD_OK)
        modern_destroy(b);
    return st;
}
