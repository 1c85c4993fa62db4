/*
 * Learning-rate schedules: the handle around a vtable, shared by built-in and
 * host-written schedules, and the queries every schedule answers.
 * SPDX-License-Identifier: MIT
 */
#include "sched_internal.h"

#include "core/abi.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* A cap on exported state, so that a host's state_size cannot ask for absurd buffers. */
#define SGD__SCHED_MAX_STATE ((size_t)1 << 24)

void sgd_sched_vtable_init(sgd_sched_vtable *vt)
{
    if (vt == NULL)
        return;
    memset(vt, 0, sizeof *vt);
    vt->struct_size = (uint32_t)sizeof *vt;
}

sgd_status sgd__sched_check_base_lr(double base_lr, const char *fn)
{
    if (!isfinite(base_lr))
        return sgd__err(SGD_ENONFINITE, "%s: base_lr=%g: must be finite", fn, base_lr);
    if (base_lr < 0)
        return sgd__err(SGD_ERANGE, "%s: base_lr=%g: must be >= 0", fn, base_lr);
    return SGD_OK;
}

sgd_status sgd__sched_wrap(sgd_sched **out, const sgd_sched_vtable *vt, const sgd_allocator *alloc, bool host,
                           const char *fn)
{
    *out = NULL;
    if (vt->name == NULL)
        return sgd__err(SGD_EINVAL, "%s: vtable name is NULL", fn);
    size_t len = strnlen(vt->name, SGD_SCHED_NAME_MAX);
    if (len == 0 || len >= SGD_SCHED_NAME_MAX)
        return sgd__err(SGD_EINVAL, "%s: vtable name must be 1 to %d bytes", fn, SGD_SCHED_NAME_MAX - 1);
    if (vt->lr == NULL)
        return sgd__err(SGD_EINVAL, "%s: schedule '%s': lr callback is NULL", fn, vt->name);
    if (vt->state_size > SGD__SCHED_MAX_STATE)
        return sgd__err(SGD_EOVERFLOW, "%s: schedule '%s': state_size=%zu: more than %zu doubles", fn, vt->name,
                        vt->state_size, SGD__SCHED_MAX_STATE);
    if (vt->state_size > 0 && (vt->state_export == NULL || vt->state_import == NULL))
        return sgd__err(SGD_EINVAL, "%s: schedule '%s': state_size=%zu needs state_export and state_import", fn,
                        vt->name, vt->state_size);
    sgd_sched *s = sgd__malloc(alloc, sizeof *s);
    if (s == NULL)
        return sgd__err(SGD_ENOMEM, "%s: schedule '%s': out of memory", fn, vt->name);
    memset(s, 0, sizeof *s);
    s->alloc = *alloc;
    s->vt = *vt;
    memcpy(s->name, vt->name, len + 1);
    s->vt.name = s->name;
    s->host = host;
    *out = s;
    return SGD_OK;
}

sgd_status sgd_sched_new_custom(sgd_sched **out, const sgd_sched_vtable *vt, const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_sched_new_custom";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (vt == NULL)
        return sgd__err(SGD_EINVAL, "%s: vt is NULL", fn);
    sgd_sched_vtable v;
    memset(&v, 0, sizeof v);
    sgd_status st = sgd__vtable_copy(&v, sizeof v, vt, SGD__FIRST(sgd_sched_vtable), fn, "vt");
    if (st != SGD_OK)
        return st;
    sgd_allocator a;
    if ((st = sgd__allocator_init(&a, alloc, fn)) != SGD_OK)
        return st;
    return sgd__sched_wrap(out, &v, &a, true, fn);
}

void sgd__sched_destroy(sgd_sched *s)
{
    if (s == NULL)
        return;
    if (s->vt.destroy != NULL)
        s->vt.destroy(s->vt.user);
    sgd_allocator a = s->alloc;
    sgd__free(&a, s);
}

void sgd_sched_free(sgd_sched *s)
{
    if (s == NULL || s->owned)
        return;
    sgd__sched_destroy(s);
}

sgd_status sgd__sched_check_children(sgd_sched *const *children, size_t n, const char *fn, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        char label[48];
        if (n == 1)
            snprintf(label, sizeof label, "%s", what);
        else
            snprintf(label, sizeof label, "%s[%zu]", what, i);
        if (children[i] == NULL)
            return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, label);
        if (children[i]->owned)
            return sgd__err(SGD_EINVAL, "%s: %s ('%s') already belongs to another schedule", fn, label,
                            children[i]->name);
        for (size_t j = 0; j < i; j++)
            if (children[j] == children[i])
                return sgd__err(SGD_EINVAL, "%s: %s[%zu] and %s[%zu] are the same schedule", fn, what, j, what,
                                i);
    }
    return SGD_OK;
}

void sgd__sched_adopt(sgd_sched *const *children, size_t n)
{
    for (size_t i = 0; i < n; i++)
        children[i]->owned = true;
}

const char *sgd_sched_name(const sgd_sched *s)
{
    return s == NULL ? "" : s->name;
}

/*
 * A callback's failure: a host's becomes SGD_ECALLBACK; a built-in's message and
 * status stand. `step` < 0: the callback is not about a step.
 */
static sgd_status callback_failed(const sgd_sched *s, sgd_status st, const char *fn, const char *cb, int64_t step)
{
    if (!s->host)
        return st;
    if (step < 0)
        return sgd__err(SGD_ECALLBACK, "%s: schedule '%s': %s callback returned %d (%s)", fn, s->name, cb, (int)st,
                        sgd_status_str((int)st));
    return sgd__err(SGD_ECALLBACK, "%s: schedule '%s': %s callback returned %d (%s) at step %" PRId64, fn,
                    s->name, cb, (int)st, sgd_status_str((int)st), step);
}

/* A learning rate or momentum from a callback: finite and >= 0. */
static sgd_status check_value(const sgd_sched *s, double v, const char *fn, const char *what, int64_t step)
{
    if (isnan(v))
        return sgd__err(SGD_ENONFINITE, "%s: schedule '%s' gave %s=nan at step %" PRId64, fn, s->name, what, step);
    if (isinf(v))
        return sgd__err(SGD_ERANGE, "%s: schedule '%s' gave %s=%g at step %" PRId64 " (overflow)", fn, s->name,
                        what, v, step);
    if (v < 0)
        return sgd__err(SGD_ERANGE, "%s: schedule '%s' gave %s=%g at step %" PRId64 ": must be >= 0", fn, s->name,
                        what, v, step);
    return SGD_OK;
}

static sgd_status lr_at(const sgd_sched *s, int64_t step, double *lr, const char *fn)
{
    double v = NAN; /* a callback that "succeeds" without writing is caught below */
    sgd_status st = s->vt.lr(step, &v, s->vt.user);
    if (st != SGD_OK)
        return callback_failed(s, st, fn, "lr", step);
    if ((st = check_value(s, v, fn, "lr", step)) != SGD_OK)
        return st;
    *lr = v;
    return SGD_OK;
}

sgd_status sgd_sched_lr(const sgd_sched *s, int64_t step, double *lr)
{
    static const char fn[] = "sgd_sched_lr";
    if (lr == NULL)
        return sgd__err(SGD_EINVAL, "%s: lr is NULL", fn);
    *lr = 0;
    if (s == NULL)
        return sgd__err(SGD_EINVAL, "%s: schedule is NULL", fn);
    if (step < 0)
        return sgd__err(SGD_ERANGE, "%s: step=%" PRId64 ": must be >= 0", fn, step);
    return lr_at(s, step, lr, fn);
}

sgd_status sgd_sched_lrs(const sgd_sched *s, int64_t first, size_t n, double *out)
{
    static const char fn[] = "sgd_sched_lrs";
    if (s == NULL)
        return sgd__err(SGD_EINVAL, "%s: schedule is NULL", fn);
    if (out == NULL && n > 0)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    if (first < 0)
        return sgd__err(SGD_ERANGE, "%s: first=%" PRId64 ": must be >= 0", fn, first);
    if (n > 0 && n - 1 > (uint64_t)INT64_MAX - (uint64_t)first)
        return sgd__err(SGD_EOVERFLOW, "%s: first=%" PRId64 " n=%zu: the last step is past INT64_MAX", fn, first, n);
    for (size_t i = 0; i < n; i++) {
        sgd_status st = lr_at(s, first + (int64_t)i, &out[i], fn);
        if (st != SGD_OK)
            return st;
    }
    return SGD_OK;
}

int32_t sgd_sched_cycles_momentum(const sgd_sched *s)
{
    return s != NULL && s->vt.momentum != NULL;
}

sgd_status sgd_sched_momentum(const sgd_sched *s, int64_t step, double *momentum, int32_t *set)
{
    static const char fn[] = "sgd_sched_momentum";
    if (momentum == NULL || set == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, momentum == NULL ? "momentum" : "set");
    *momentum = 0;
    *set = 0;
    if (s == NULL)
        return sgd__err(SGD_EINVAL, "%s: schedule is NULL", fn);
    if (step < 0)
        return sgd__err(SGD_ERANGE, "%s: step=%" PRId64 ": must be >= 0", fn, step);
    if (s->vt.momentum == NULL)
        return SGD_OK;
    double m = NAN;
    int32_t on = 0;
    sgd_status st = s->vt.momentum(step, &m, &on, s->vt.user);
    if (st != SGD_OK)
        return callback_failed(s, st, fn, "momentum", step);
    if (on == 0)
        return SGD_OK;
    if (on != 1)
        return sgd__err(s->host ? SGD_ECALLBACK : SGD_EINTERNAL,
                        "%s: schedule '%s': momentum callback set *set=%d at step %" PRId64 " (0 or 1)", fn,
                        s->name, (int)on, step);
    if ((st = check_value(s, m, fn, "momentum", step)) != SGD_OK)
        return st;
    *momentum = m;
    *set = 1;
    return SGD_OK;
}

int32_t sgd_sched_watches_metric(const sgd_sched *s)
{
    return s != NULL && s->vt.observe != NULL;
}

sgd_status sgd_sched_observe(sgd_sched *s, int64_t step, double metric)
{
    static const char fn[] = "sgd_sched_observe";
    if (s == NULL)
        return sgd__err(SGD_EINVAL, "%s: schedule is NULL", fn);
    if (step < 0)
        return sgd__err(SGD_ERANGE, "%s: step=%" PRId64 ": must be >= 0", fn, step);
    if (!isfinite(metric))
        return sgd__err(SGD_ENONFINITE, "%s: schedule '%s': metric=%g at step %" PRId64 ": must be finite", fn,
                        s->name, metric, step);
    if (s->vt.observe == NULL)
        return SGD_OK;
    sgd_status st = s->vt.observe(step, metric, s->vt.user);
    if (st != SGD_OK)
        return callback_failed(s, st, fn, "observe", step);
    return SGD_OK;
}

size_t sgd_sched_state_size(const sgd_sched *s)
{
    return s == NULL ? 0 : s->vt.state_size;
}

sgd_status sgd_sched_state_export(const sgd_sched *s, double *state, size_t n)
{
    static const char fn[] = "sgd_sched_state_export";
    if (s == NULL)
        return sgd__err(SGD_EINVAL, "%s: schedule is NULL", fn);
    if (n != s->vt.state_size)
        return sgd__err(SGD_ESHAPE, "%s: schedule '%s': n=%zu but its state is %zu doubles", fn, s->name, n,
                        s->vt.state_size);
    if (n == 0)
        return SGD_OK;
    if (state == NULL)
        return sgd__err(SGD_EINVAL, "%s: state is NULL", fn);
    sgd_status st = s->vt.state_export(state, n, s->vt.user);
    if (st != SGD_OK)
        return callback_failed(s, st, fn, "state_export", -1);
    return SGD_OK;
}

sgd_status sgd_sched_state_import(sgd_sched *s, const double *state, size_t n)
{
    static const char fn[] = "sgd_sched_state_import";
    if (s == NULL)
        return sgd__err(SGD_EINVAL, "%s: schedule is NULL", fn);
    if (n != s->vt.state_size)
        return sgd__err(SGD_ESHAPE, "%s: schedule '%s': n=%zu but its state is %zu doubles", fn, s->name, n,
                        s->vt.state_size);
    if (n == 0)
        return SGD_OK;
    if (state == NULL)
        return sgd__err(SGD_EINVAL, "%s: state is NULL", fn);
    sgd_status st = s->vt.state_import(state, n, s->vt.user);
    if (st != SGD_OK)
        return callback_failed(s, st, fn, "state_import", -1);
    return SGD_OK;
}
