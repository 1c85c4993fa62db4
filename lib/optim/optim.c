/*
 * The optimizer object: a copied vtable, its state slots, parameter groups,
 * gradient hygiene, the step driver and state export/import.
 * SPDX-License-Identifier: MIT
 */
#include "optim_internal.h"

#include "core/abi.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* The first released layouts: anything smaller is refused. */
#define VTABLE_MIN_SIZE SGD__FIRST(sgd_optim_vtable)
#define HYGIENE_MIN_SIZE SGD__FIRST(sgd_optim_hygiene)
#define INFO_MIN_SIZE SGD__FIRST(sgd_optim_step_info)
#define EXT_MIN_SIZE SGD__FIRST(sgd_optim_vtable_ext)

/* norm clipping as torch.nn.utils.clip_grad_norm_: max_norm / (total_norm + 1e-6) */
#define CLIP_NORM_EPS 1e-6

typedef struct group {
    size_t offset, count;
    double lr_scale, weight_decay;
} group;

/* A maximal range of the arena with one group: what one step callback gets. */
typedef struct segment {
    size_t offset, count;
    uint32_t group;
} segment;

struct sgd_optim {
    sgd_allocator alloc;
    sgd_optim_vtable vt; /* name and slot_names point into the arrays below */
    sgd_optim_vtable_ext ext;
    void *user;
    char name[SGD_OPTIM_MAX_NAME + 1];
    char slot_name[SGD_OPTIM_MAX_SLOTS][SGD_OPTIM_MAX_NAME + 1];
    const char *slot_name_ptr[SGD_OPTIM_MAX_SLOTS];
    size_t n;
    float *slots[SGD_OPTIM_MAX_SLOTS];
    float *slot_at[SGD_OPTIM_MAX_SLOTS]; /* scratch: slots + segment offset */
    double *scalars;                     /* n_scalars doubles: scratch for export/import */
    float *clip_buf;                     /* n floats for hosts without SGD_OPTIM_FUSED_CLIP */
    int64_t step;
    double lr;      /* base learning rate, "lr" */
    group g0;       /* the default group: lr_scale and weight_decay ("weight_decay") */
    group *groups;  /* added groups, numbers 1..n_groups */
    size_t n_groups;
    segment *segs;  /* sorted cover of [0, n) */
    size_t n_segs;
    sgd_optim_hygiene hyg;
    sgd_optim_stats stats;
    size_t *tensor_ends;  /* sorted ends of the tensors (sgd_optim_set_tensors), n_tensors of them */
    size_t n_tensors;
    /* the listing: "lr", "weight_decay", then the vtable's (names copied) */
    uint32_t n_hp;
    sgd_optim_hparam hp[2 + SGD_OPTIM_MAX_HPARAMS];
    char hp_name[SGD_OPTIM_MAX_HPARAMS][SGD_OPTIM_MAX_NAME + 1];
    bool at_eval; /* parameters at the evaluation point (sgd_optim_eval_point) */
};

void sgd_optim_vtable_init(sgd_optim_vtable *vt)
{
    if (vt == NULL)
        return;
    memset(vt, 0, sizeof *vt);
    vt->struct_size = (uint32_t)sizeof *vt;
}

void sgd_optim_vtable_ext_init(sgd_optim_vtable_ext *ext)
{
    if (ext == NULL)
        return;
    memset(ext, 0, sizeof *ext);
    ext->struct_size = (uint32_t)sizeof *ext;
}

void sgd_optim_hparam_init(sgd_optim_hparam *h)
{
    if (h == NULL)
        return;
    memset(h, 0, sizeof *h);
    h->struct_size = (uint32_t)sizeof *h;
    h->default_value = NAN;
    h->lower = -INFINITY;
    h->upper = INFINITY;
}

void sgd_optim_step_info_init(sgd_optim_step_info *info)
{
    if (info == NULL)
        return;
    memset(info, 0, sizeof *info);
    info->struct_size = (uint32_t)sizeof *info;
}

void sgd_optim_hygiene_init(sgd_optim_hygiene *h)
{
    if (h == NULL)
        return;
    memset(h, 0, sizeof *h);
    h->struct_size = (uint32_t)sizeof *h;
    h->nonfinite = SGD_NONFINITE_SKIP;
    h->clip_norm = 0.0;
    h->clip_value = 0.0;
    h->max_consecutive_skips = 10;
}

/* A callback's return value as a status: negative known codes pass, others are SGD_ECALLBACK. */
static sgd_status cb_status(int rc)
{
    if (rc == 0)
        return SGD_OK;
    if (rc < 0 && rc >= SGD_EINTERNAL)
        return (sgd_status)rc;
    return SGD_ECALLBACK;
}

/*
 * A callback may leave a message of its own (a built-in, or a host callback
 * that called a libsgdlab function which failed): the library clears the
 * thread's message before calling it (saving the caller's), keeps what the
 * callback wrote when it fails, and restores the caller's when it succeeds.
 */
typedef struct msg_save {
    char text[1024];
} msg_save;

static void msg_begin(msg_save *m)
{
    snprintf(m->text, sizeof m->text, "%s", sgd_error_last());
    sgd_error_clear();
}

static void msg_restore(const msg_save *m)
{
    if (m->text[0] != '\0')
        sgd__err(SGD_OK, "%s", m->text);
    else
        sgd_error_clear();
}

/* A failed callback's status, with its own message if it left one, else the library's. */
static sgd_status cb_fail_msg(const sgd_optim *o, const char *fn, const char *cb, int rc)
{
    if (sgd_error_last()[0] != '\0') {
        sgd__err_prefix("%s: optimizer '%s': %s", fn, o->name, cb);
        return cb_status(rc);
    }
    return sgd__err(cb_status(rc), "%s: optimizer '%s': %s callback returned %d (%s)", fn, o->name, cb, rc,
                    sgd_status_str(rc));
}

/* Records a message for a failed callback. */
static sgd_status cb_fail(const sgd_optim *o, const char *fn, const char *cb, int rc)
{
    return sgd__err(cb_status(rc), "%s: optimizer '%s': %s callback returned %d (%s)", fn, o->name, cb, rc,
                    sgd_status_str(rc));
}

static bool name_ok(const char *s)
{
    size_t len = strnlen(s, SGD_OPTIM_MAX_NAME + 1);
    if (len == 0 || len > SGD_OPTIM_MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

static void free_slots(sgd_optim *o)
{
    for (uint32_t i = 0; i < SGD_OPTIM_MAX_SLOTS; i++) {
        sgd__free_aligned(&o->alloc, o->slots[i]);
        o->slots[i] = NULL;
    }
}

/*
 * The segments of the groups split at the tensors' ends: `segs` has room for
 * 2 * (2k + 1 + nt) segments; the first half receives the result.
 */
static size_t build_segments(const group *groups, size_t k, size_t n, segment *segs);
static size_t build_split_segments(const group *groups, size_t k, size_t n, const size_t *ends, size_t nt,
                                   segment *segs)
{
    size_t cap = 2 * k + 1 + nt;
    segment *tmp = segs + cap;
    size_t ng = build_segments(groups, k, n, tmp);
    size_t ns = 0, t = 0;
    for (size_t i = 0; i < ng; i++) {
        size_t off = tmp[i].offset, end = off + tmp[i].count;
        while (t < nt && ends[t] <= off)
            t++;
        while (off < end) {
            size_t cut = (t < nt && ends[t] < end) ? ends[t] : end;
            segs[ns++] = (segment){off, cut - off, tmp[i].group};
            off = cut;
            if (t < nt && ends[t] == cut)
                t++;
        }
    }
    return ns;
}

/* Rebuilds the sorted segments covering [0, n) from the groups into `segs` (capacity 2*k+1). */
static size_t build_segments(const group *groups, size_t k, size_t n, segment *segs)
{
    /* Insertion-sort indices by offset: k is small and this is configuration time. */
    size_t ns = 0, pos = 0;
    size_t done = 0;
    while (done < k) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < k; i++)
            if (groups[i].offset >= pos && (best == SIZE_MAX || groups[i].offset < groups[best].offset))
                best = i;
        if (best == SIZE_MAX)
            break;
        if (groups[best].offset > pos)
            segs[ns++] = (segment){pos, groups[best].offset - pos, 0};
        segs[ns++] = (segment){groups[best].offset, groups[best].count, (uint32_t)(best + 1)};
        pos = groups[best].offset + groups[best].count;
        done++;
    }
    if (pos < n)
        segs[ns++] = (segment){pos, n - pos, 0};
    return ns;
}

/* The listing: "lr" and "weight_decay" first, then what the vtable describes (copied). */
static sgd_status collect_hparams(sgd_optim *o, void *user, const char *fn)
{
    sgd_optim_hparam *h = o->hp;
    sgd_optim_hparam_init(&h[0]);
    h[0].name = "lr", h[0].default_value = 0.0, h[0].lower = 0.0;
    sgd_optim_hparam_init(&h[1]);
    h[1].name = "weight_decay", h[1].default_value = 0.0, h[1].lower = 0.0;
    o->n_hp = 2;
    for (uint32_t i = 0; i < o->ext.n_hparams; i++) {
        sgd_optim_hparam d;
        sgd_optim_hparam_init(&d);
        msg_save ms;
        msg_begin(&ms);
        int rc = o->ext.describe_hparam(i, &d, user);
        if (rc != 0)
            return cb_fail_msg(o, fn, "describe_hparam", rc);
        msg_restore(&ms);
        if (d.name == NULL || !name_ok(d.name))
            return sgd__err(SGD_EINVAL, "%s: vtable '%s': describe_hparam(%u) gave %s name", fn, o->name,
                            (unsigned)i, d.name == NULL ? "a NULL" : "an invalid");
        if (isnan(d.lower) || isnan(d.upper) || d.lower > d.upper)
            return sgd__err(SGD_EINVAL, "%s: vtable '%s': hyperparameter '%s': bounds [%g, %g] are not a range", fn,
                            o->name, d.name, d.lower, d.upper);
        uint32_t slot;
        if (strcmp(d.name, "lr") == 0 || strcmp(d.name, "weight_decay") == 0) {
            /* The library's own: the vtable may give its default and flags, not its bounds. */
            slot = d.name[0] == 'l' ? 0 : 1;
            h[slot].default_value = d.default_value;
            h[slot].flags = d.flags & SGD_OPTIM_HPARAM_REQUIRED;
            continue;
        }
        for (uint32_t j = 2; j < o->n_hp; j++)
            if (strcmp(h[j].name, d.name) == 0)
                return sgd__err(SGD_EINVAL, "%s: vtable '%s': hyperparameter '%s' is described twice", fn, o->name,
                                d.name);
        slot = o->n_hp++;
        memcpy(o->hp_name[slot - 2], d.name, strlen(d.name) + 1);
        d.name = o->hp_name[slot - 2];
        d.struct_size = (uint32_t)sizeof d;
        h[slot] = d;
    }
    return SGD_OK;
}

/* The message of a value outside a listed hyperparameter's bounds, or SGD_OK. */
static sgd_status check_listed(const sgd_optim_hparam *h, double value, const char *fn)
{
    if (h->flags & SGD_OPTIM_HPARAM_BOOL) {
        if (value != 0.0 && value != 1.0)
            return sgd__err(SGD_ERANGE, "%s: %s=%g: must be 0 or 1", fn, h->name, value);
        return SGD_OK;
    }
    bool lo_open = (h->flags & SGD_OPTIM_HPARAM_LOWER_OPEN) != 0, hi_open = (h->flags & SGD_OPTIM_HPARAM_UPPER_OPEN) != 0;
    bool lo_ok = lo_open ? value > h->lower : value >= h->lower;
    bool hi_ok = hi_open ? value < h->upper : value <= h->upper;
    if (!isfinite(value) || !lo_ok || !hi_ok) {
        if (isinf(h->upper) && isinf(h->lower))
            return sgd__err(SGD_ERANGE, "%s: %s=%g: must be a finite number", fn, h->name, value);
        if (isinf(h->upper))
            return sgd__err(SGD_ERANGE, "%s: %s=%g: must be a finite number %s %g", fn, h->name, value,
                            lo_open ? ">" : ">=", h->lower);
        return sgd__err(SGD_ERANGE, "%s: %s=%g: must be in %c%g, %g%c", fn, h->name, value, lo_open ? '(' : '[',
                        h->lower, h->upper, hi_open ? ')' : ']');
    }
    if ((h->flags & SGD_OPTIM_HPARAM_INTEGER) && value != floor(value))
        return sgd__err(SGD_ERANGE, "%s: %s=%g: must be a whole number", fn, h->name, value);
    return SGD_OK;
}

sgd_status sgd__hparam_check(const sgd_optim_hparam *h, double value, const char *fn)
{
    return check_listed(h, value, fn);
}

sgd_status sgd__optim_create(sgd_optim **out, const sgd_optim_vtable *vt_in, const sgd_optim_vtable_ext *ext_in,
                             void *user, size_t n, const sgd_allocator *alloc_in, const char *fn)
{
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (vt_in == NULL)
        return sgd__err(SGD_EINVAL, "%s: vtable is NULL", fn);
    sgd_allocator alloc;
    sgd_status st = sgd__allocator_init(&alloc, alloc_in, fn);
    if (st != SGD_OK)
        return st;

    /* Copy what fits of the host's vtable into a zeroed one. */
    sgd_optim_vtable vt;
    memset(&vt, 0, sizeof vt);
    st = sgd__vtable_copy(&vt, sizeof vt, vt_in, SGD__FIRST(sgd_optim_vtable), fn, "vtable");
    if (st != SGD_OK)
        return st;

    if (vt.name == NULL)
        return sgd__err(SGD_EINVAL, "%s: vtable: name is NULL", fn);
    if (!name_ok(vt.name))
        return sgd__err(SGD_EINVAL, "%s: vtable: name '%.*s': must be 1 to %d letters, digits, '_' or '-'", fn,
                        SGD_OPTIM_MAX_NAME + 1, vt.name, SGD_OPTIM_MAX_NAME);
    if (vt.step == NULL)
        return sgd__err(SGD_EINVAL, "%s: vtable '%s': step is NULL", fn, vt.name);
    if (vt.n_slots > SGD_OPTIM_MAX_SLOTS)
        return sgd__err(SGD_EINVAL, "%s: vtable '%s': n_slots=%u: at most %d", fn, vt.name, (unsigned)vt.n_slots,
                        SGD_OPTIM_MAX_SLOTS);
    if (vt.n_scalars > SGD_OPTIM_MAX_SCALARS)
        return sgd__err(SGD_EINVAL, "%s: vtable '%s': n_scalars=%u: at most %d", fn, vt.name,
                        (unsigned)vt.n_scalars, SGD_OPTIM_MAX_SCALARS);
    if (vt.n_scalars > 0 && (vt.export_scalars == NULL || vt.import_scalars == NULL))
        return sgd__err(SGD_EINVAL, "%s: vtable '%s': n_scalars=%u needs export_scalars and import_scalars", fn,
                        vt.name, (unsigned)vt.n_scalars);
    sgd_optim_vtable_ext ext;
    sgd_optim_vtable_ext_init(&ext);
    if (ext_in != NULL && (st = sgd__vtable_copy(&ext, sizeof ext, ext_in, EXT_MIN_SIZE, fn, "ext")) != SGD_OK)
        return st;
    if (ext.n_hparams > SGD_OPTIM_MAX_HPARAMS)
        return sgd__err(SGD_EINVAL, "%s: vtable '%s': ext.n_hparams=%u: at most %d", fn, vt.name,
                        (unsigned)ext.n_hparams, SGD_OPTIM_MAX_HPARAMS);
    if (ext.n_hparams > 0 && ext.describe_hparam == NULL)
        return sgd__err(SGD_EINVAL, "%s: vtable '%s': ext.n_hparams=%u needs describe_hparam", fn, vt.name,
                        (unsigned)ext.n_hparams);
    size_t bytes;
    if (!sgd__mul_size(n, sizeof(float), &bytes) || bytes > (SIZE_MAX >> 2))
        return sgd__err(SGD_EOVERFLOW, "%s: n=%zu parameters: the state arrays would not fit in memory", fn, n);

    sgd_optim *o = sgd__calloc(&alloc, 1, sizeof *o);
    if (o == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory for the optimizer", fn);
    o->alloc = alloc;
    o->n = n;
    memcpy(o->name, vt.name, strlen(vt.name) + 1);
    for (uint32_t i = 0; i < vt.n_slots; i++) {
        const char *sn = vt.slot_names ? vt.slot_names[i] : NULL;
        if (sn == NULL && vt.slot_names != NULL) {
            st = sgd__err(SGD_EINVAL, "%s: vtable '%s': slot_names[%u] is NULL", fn, vt.name, (unsigned)i);
            goto fail;
        }
        if (sn == NULL) {
            snprintf(o->slot_name[i], sizeof o->slot_name[i], "slot%u", (unsigned)i);
        } else {
            if (!name_ok(sn) || strcmp(sn, "step") == 0 || strcmp(sn, "scalars") == 0) {
                st = sgd__err(SGD_EINVAL,
                              "%s: vtable '%s': slot_names[%u] '%.*s': must be 1 to %d letters, digits, '_' or '-', "
                              "and not 'step' or 'scalars'",
                              fn, vt.name, (unsigned)i, SGD_OPTIM_MAX_NAME + 1, sn, SGD_OPTIM_MAX_NAME);
                goto fail;
            }
            memcpy(o->slot_name[i], sn, strlen(sn) + 1);
        }
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(o->slot_name[i], o->slot_name[j]) == 0) {
                st = sgd__err(SGD_EINVAL, "%s: vtable '%s': slot name '%s' is used twice", fn, vt.name,
                              o->slot_name[i]);
                goto fail;
            }
        o->slot_name_ptr[i] = o->slot_name[i];
    }
    vt.name = o->name;
    vt.slot_names = vt.n_slots ? o->slot_name_ptr : NULL;
    o->vt = vt;
    o->ext = ext;
    if ((st = collect_hparams(o, user, fn)) != SGD_OK)
        goto fail;
    o->g0 = (group){0, n, 1.0, 0.0};
    sgd_optim_hygiene_init(&o->hyg);
    o->stats.struct_size = (uint32_t)sizeof o->stats;

    for (uint32_t i = 0; i < vt.n_slots; i++) {
        o->slots[i] = sgd__alloc_aligned(&alloc, n, sizeof(float));
        if (o->slots[i] == NULL) {
            st = sgd__err(SGD_ENOMEM, "%s: out of memory for state slot '%s' (%zu floats)", fn, o->slot_name[i], n);
            goto fail;
        }
    }
    if (vt.n_scalars > 0 && (o->scalars = sgd__calloc(&alloc, vt.n_scalars, sizeof(double))) == NULL) {
        st = sgd__err(SGD_ENOMEM, "%s: out of memory for the scalar state", fn);
        goto fail;
    }
    if ((o->segs = sgd__malloc(&alloc, 2 * sizeof(segment))) == NULL) {
        st = sgd__err(SGD_ENOMEM, "%s: out of memory for the parameter groups", fn);
        goto fail;
    }
    o->n_segs = build_segments(NULL, 0, n, o->segs);
    if (vt.init != NULL) {
        int rc = vt.init(o->slots, n, user);
        if (rc != 0) {
            st = cb_fail(o, fn, "init", rc);
            goto fail;
        }
    }
    o->user = user;
    *out = o;
    return SGD_OK;

fail:
    free_slots(o);
    sgd__free(&alloc, o->scalars);
    sgd__free(&alloc, o->segs);
    sgd__free(&alloc, o);
    return st;
}

sgd_status sgd_optim_new_custom(sgd_optim **out, const sgd_optim_vtable *vt, void *user, size_t n,
                                const sgd_allocator *alloc)
{
    return sgd__optim_create(out, vt, NULL, user, n, alloc, "sgd_optim_new_custom");
}

sgd_status sgd_optim_new_custom_ext(sgd_optim **out, const sgd_optim_vtable *vt, const sgd_optim_vtable_ext *ext,
                                    void *user, size_t n, const sgd_allocator *alloc)
{
    return sgd__optim_create(out, vt, ext, user, n, alloc, "sgd_optim_new_custom_ext");
}

void sgd_optim_free(sgd_optim *o)
{
    if (o == NULL)
        return;
    if (o->vt.destroy != NULL)
        o->vt.destroy(o->user);
    sgd_allocator a = o->alloc;
    free_slots(o);
    sgd__free_aligned(&a, o->clip_buf);
    sgd__free(&a, o->scalars);
    sgd__free(&a, o->groups);
    sgd__free(&a, o->segs);
    sgd__free(&a, o->tensor_ends);
    sgd__free(&a, o);
}

const char *sgd_optim_name(const sgd_optim *o)
{
    return o ? o->name : "";
}

size_t sgd_optim_size(const sgd_optim *o)
{
    return o ? o->n : 0;
}

/* ------------------------------------------------------------------ step */

static void fill_info(sgd_optim_step_info *info, const sgd_optim_step_info *src)
{
    if (info != NULL) /* its struct_size was checked on entry */
        (void)SGD__FILL(info, src, sgd_optim_step_info, "sgd_optim_step", "info");
}

sgd_status sgd_optim_step(sgd_optim *o, float *params, const float *grads, double lr, sgd_optim_step_info *info)
{
    static const char fn[] = "sgd_optim_step";
    if (o == NULL || params == NULL || grads == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, o == NULL ? "optimizer" : params == NULL ? "params" : "grads");
    if (info != NULL) {
        sgd_status st = sgd__struct_check(info, INFO_MIN_SIZE, fn, "info");
        if (st != SGD_OK)
            return st;
    }
    if (!(lr >= 0.0) || !isfinite(lr))
        return sgd__err(SGD_ERANGE, "%s: lr=%g: must be a finite number >= 0", fn, lr);
    if (o->at_eval)
        return sgd__err(SGD_ESTATE,
                        "%s: optimizer '%s': the parameters are at the evaluation point; call "
                        "sgd_optim_eval_point(o, params, 0) before the next step",
                        fn, o->name);
    if (o->step >= SGD_OPTIM_MAX_STEP)
        return sgd__err(SGD_EOVERFLOW, "%s: optimizer '%s': step counter %lld: at its limit (2^53)", fn, o->name,
                        (long long)o->step);

    sgd_optim_step_info r;
    memset(&r, 0, sizeof r);
    r.struct_size = (uint32_t)sizeof r;
    r.clip_scale = 1.0;

    /*
     * 1. One read-only pass over the gradients, before anything is written.
     * Nothing needs it when non-finite gradients are applied, nothing is
     * clipped and the caller asks for no statistics (info is NULL): then the
     * step is the update alone, one pass, as torch's (which never checks).
     */
    const float cv = (float)o->hyg.clip_value;
    sgd__gradstat gs;
    memset(&gs, 0, sizeof gs);
    size_t bad = o->n;
    bool scanned = false;
    if (info != NULL || o->hyg.nonfinite != SGD_NONFINITE_APPLY || o->hyg.clip_norm > 0.0 || cv > 0.0f) {
        scanned = true;
        sgd__grad_scan(grads, o->n, cv, &gs);
        if (SGD__UNLIKELY(!isfinite(gs.sumsq) || !isfinite(gs.sumsq_clipped)))
            bad = sgd__grad_scan_exact(grads, o->n, cv, &gs); /* NaN/inf, or a float block sum overflowed */
    }
    r.grad_norm = sqrt(gs.sumsq);
    r.grad_max_abs = gs.max_abs;

    /* 2. Non-finite policy. */
    if (bad < o->n) {
        r.nonfinite = 1;
        o->stats.nonfinite++;
        r.step = o->step;
        r.consecutive_skips = o->stats.consecutive_skips;
        if (o->hyg.nonfinite == SGD_NONFINITE_ERROR) {
            fill_info(info, &r);
            return sgd__err(SGD_ENONFINITE, "%s: optimizer '%s': grads[%zu] = %g: non-finite gradient (policy error); "
                            "nothing was changed", fn, o->name, bad, (double)grads[bad]);
        }
        if (o->hyg.nonfinite == SGD_NONFINITE_SKIP) {
            if (o->hyg.max_consecutive_skips > 0 && o->stats.consecutive_skips >= (int64_t)o->hyg.max_consecutive_skips) {
                fill_info(info, &r);
                return sgd__err(SGD_EDIVERGED,
                                "%s: optimizer '%s': grads[%zu] = %g: non-finite gradients at %lld consecutive steps "
                                "(max_consecutive_skips=%u); nothing was changed",
                                fn, o->name, bad, (double)grads[bad], (long long)o->stats.consecutive_skips + 1,
                                (unsigned)o->hyg.max_consecutive_skips);
            }
            o->stats.skipped++;
            o->stats.consecutive_skips++;
            r.applied = 0;
            r.step = o->step;
            r.consecutive_skips = o->stats.consecutive_skips;
            fill_info(info, &r);
            return SGD_OK;
        }
    }

    /* 3. Clipping: by value (as the update reads each gradient), then by global norm. */
    double scale = 1.0;
    if (o->hyg.clip_norm > 0.0 && bad == o->n) {
        double coef = o->hyg.clip_norm / (sqrt(gs.sumsq_clipped) + CLIP_NORM_EPS);
        if (coef < 1.0)
            scale = coef;
    }
    r.clip_scale = scale;
    r.clipped = scale < 1.0 || (cv > 0.0f && gs.max_abs > cv);
    const float *g_use = grads;
    sgd_optim_step_args args;
    memset(&args, 0, sizeof args);
    args.struct_size = (uint32_t)sizeof args;
    args.grad_scale = 1.0;
    args.clip_value = 0.0;
    if (o->vt.flags & SGD_OPTIM_FUSED_CLIP) {
        args.grad_scale = scale;
        args.clip_value = cv > 0.0f ? o->hyg.clip_value : 0.0;
    } else if (o->clip_buf != NULL && (scale != 1.0 || cv > 0.0f)) {
        sgd__kargs ka;
        memset(&ka, 0, sizeof ka);
        ka.cv = cv > 0.0f ? cv : INFINITY;
        ka.gs = (float)scale;
        sgd__kern()->clip_copy(o->clip_buf, grads, o->n, &ka);
        g_use = o->clip_buf;
    }

    /* 4. The update, one call per range (twice over all ranges for two-pass optimizers). */
    args.step = o->step + 1;
    args.calls = (uint32_t)o->n_segs;
    args.base_lr = lr;
    args.grad_sumsq = scanned && bad == o->n ? gs.sumsq_clipped * scale * scale : NAN;
    const uint32_t passes = (o->vt.flags & SGD_OPTIM_TWO_PASS) ? 2 : 1;
    msg_save ms;
    msg_begin(&ms);
    for (uint32_t pass = 0; pass < passes; pass++) {
        args.pass = pass;
        for (size_t s = 0; s < o->n_segs; s++) {
            const segment *sg = &o->segs[s];
            const group *gr = sg->group == 0 ? &o->g0 : &o->groups[sg->group - 1];
            for (uint32_t k = 0; k < o->vt.n_slots; k++)
                o->slot_at[k] = o->slots[k] + sg->offset;
            args.group = sg->group;
            args.call = (uint32_t)s;
            args.offset = sg->offset;
            args.weight_decay = gr->weight_decay;
            args.lr_scale = gr->lr_scale;
            int rc = o->vt.step(params + sg->offset, g_use + sg->offset, o->slot_at, sg->count, lr * gr->lr_scale,
                                &args, o->user);
            if (rc != 0)
                return cb_fail_msg(o, fn, "step", rc);
        }
    }
    msg_restore(&ms);
    o->step++;
    o->stats.applied++;
    o->stats.consecutive_skips = 0;
    if (r.clipped)
        o->stats.clipped++;
    r.applied = 1;
    r.step = o->step;
    r.consecutive_skips = 0;
    fill_info(info, &r);
    return SGD_OK;
}

/* -------------------------------------------------------- hyperparameters */

static const sgd_optim_hparam *find_hp(const sgd_optim *o, const char *name)
{
    for (uint32_t i = 0; i < o->n_hp; i++)
        if (strcmp(o->hp[i].name, name) == 0)
            return &o->hp[i];
    return NULL;
}

sgd_status sgd_optim_set(sgd_optim *o, const char *name, double value)
{
    static const char fn[] = "sgd_optim_set";
    if (o == NULL || name == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, o == NULL ? "optimizer" : "name");
    if (isnan(value))
        return sgd__err(SGD_ERANGE, "%s: %s=nan: must be a number", fn, name);
    const sgd_optim_hparam *h = find_hp(o, name);
    if (h != NULL) {
        sgd_status st = check_listed(h, value, fn);
        if (st != SGD_OK)
            return st;
    }
    if (strcmp(name, "lr") == 0 || strcmp(name, "weight_decay") == 0) {
        if (name[0] == 'l')
            o->lr = value;
        else
            o->g0.weight_decay = value;
        return SGD_OK;
    }
    if (h != NULL && (h->flags & SGD_OPTIM_HPARAM_FIXED)) {
        double now = NAN;
        if (o->vt.get_hparam != NULL && o->vt.get_hparam(name, &now, o->user) == 0 && now == value)
            return SGD_OK;
        return sgd__err(SGD_ESTATE,
                        "%s: optimizer '%s': %s=%g: %s is fixed when the optimizer is created (it is %g; it decides "
                        "which state arrays exist); create a new optimizer",
                        fn, o->name, name, value, name, now);
    }
    if (o->vt.set_hparam == NULL)
        return sgd__err(SGD_ENOTFOUND, "%s: optimizer '%s' has no hyperparameter '%s'", fn, o->name, name);
    msg_save ms;
    msg_begin(&ms);
    int rc = o->vt.set_hparam(name, value, o->user);
    if (rc == 0) {
        msg_restore(&ms);
        return SGD_OK;
    }
    if (rc == SGD_ENOTFOUND)
        return sgd__err(SGD_ENOTFOUND, "%s: optimizer '%s' has no hyperparameter '%s'", fn, o->name, name);
    if (sgd_error_last()[0] != '\0') {
        sgd__err_prefix("%s: optimizer '%s'", fn, o->name);
        return cb_status(rc);
    }
    return sgd__err(cb_status(rc), "%s: optimizer '%s': %s=%g refused (set_hparam returned %d: %s)", fn, o->name,
                    name, value, rc, sgd_status_str(rc));
}

sgd_status sgd_optim_get(const sgd_optim *o, const char *name, double *value)
{
    static const char fn[] = "sgd_optim_get";
    if (o == NULL || name == NULL || value == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, o == NULL ? "optimizer" : name == NULL ? "name" : "value");
    if (strcmp(name, "lr") == 0) {
        *value = o->lr;
        return SGD_OK;
    }
    if (strcmp(name, "weight_decay") == 0) {
        *value = o->g0.weight_decay;
        return SGD_OK;
    }
    if (o->vt.get_hparam == NULL)
        return sgd__err(SGD_ENOTFOUND, "%s: optimizer '%s' has no hyperparameter '%s'", fn, o->name, name);
    double v = 0.0;
    int rc = o->vt.get_hparam(name, &v, o->user);
    if (rc == SGD_ENOTFOUND)
        return sgd__err(SGD_ENOTFOUND, "%s: optimizer '%s' has no hyperparameter '%s'", fn, o->name, name);
    if (rc != 0)
        return cb_fail(o, fn, "get_hparam", rc);
    *value = v;
    return SGD_OK;
}

/* ------------------------------------------------------------ step counter */

sgd_status sgd_optim_get_step(const sgd_optim *o, int64_t *step)
{
    if (o == NULL || step == NULL)
        return sgd__err(SGD_EINVAL, "sgd_optim_get_step: %s is NULL", o == NULL ? "optimizer" : "step");
    *step = o->step;
    return SGD_OK;
}

sgd_status sgd_optim_set_step(sgd_optim *o, int64_t step)
{
    if (o == NULL)
        return sgd__err(SGD_EINVAL, "sgd_optim_set_step: optimizer is NULL");
    if (step < 0 || step > SGD_OPTIM_MAX_STEP)
        return sgd__err(SGD_ERANGE, "sgd_optim_set_step: step=%lld: must be in [0, 2^53]", (long long)step);
    o->step = step;
    return SGD_OK;
}

/* ------------------------------------------------------- parameter groups */

static sgd_status check_group_values(const char *fn, double lr_scale, double weight_decay)
{
    if (!(lr_scale >= 0.0) || !isfinite(lr_scale))
        return sgd__err(SGD_ERANGE, "%s: lr_scale=%g: must be a finite number >= 0", fn, lr_scale);
    if (!(weight_decay >= 0.0) || !isfinite(weight_decay))
        return sgd__err(SGD_ERANGE, "%s: weight_decay=%g: must be a finite number >= 0", fn, weight_decay);
    return SGD_OK;
}

sgd_status sgd_optim_add_group(sgd_optim *o, size_t offset, size_t count, double lr_scale, double weight_decay,
                               size_t *index)
{
    static const char fn[] = "sgd_optim_add_group";
    if (index != NULL)
        *index = 0;
    if (o == NULL)
        return sgd__err(SGD_EINVAL, "%s: optimizer is NULL", fn);
    if (count == 0)
        return sgd__err(SGD_EINVAL, "%s: count=0: a group needs at least one parameter", fn);
    if (offset > o->n || count > o->n - offset)
        return sgd__err(SGD_ERANGE, "%s: range [%zu, %zu + %zu) goes past the %zu parameters", fn, offset, offset,
                        count, o->n);
    sgd_status st = check_group_values(fn, lr_scale, weight_decay);
    if (st != SGD_OK)
        return st;
    for (size_t i = 0; i < o->n_groups; i++) {
        const group *g = &o->groups[i];
        if (offset < g->offset + g->count && g->offset < offset + count)
            return sgd__err(SGD_EINVAL, "%s: range [%zu, %zu) overlaps group %zu [%zu, %zu)", fn, offset,
                            offset + count, i + 1, g->offset, g->offset + g->count);
    }
    if (o->n_groups >= UINT32_MAX / 2 - 1)
        return sgd__err(SGD_EOVERFLOW, "%s: too many groups", fn);
    size_t k = o->n_groups + 1, gbytes, sbytes;
    if (!sgd__mul_size(k, sizeof(group), &gbytes) || o->n_tensors > SIZE_MAX / 4 - 2 * k - 1 ||
        !sgd__mul_size(2 * (2 * k + 1 + o->n_tensors), sizeof(segment), &sbytes))
        return sgd__err(SGD_EOVERFLOW, "%s: too many groups", fn);
    group *ng = sgd__malloc(&o->alloc, gbytes);
    segment *ns = sgd__malloc(&o->alloc, sbytes);
    if (ng == NULL || ns == NULL) {
        sgd__free(&o->alloc, ng);
        sgd__free(&o->alloc, ns);
        return sgd__err(SGD_ENOMEM, "%s: out of memory for %zu groups", fn, k);
    }
    if (o->n_groups > 0)
        memcpy(ng, o->groups, o->n_groups * sizeof(group));
    ng[k - 1] = (group){offset, count, lr_scale, weight_decay};
    sgd__free(&o->alloc, o->groups);
    sgd__free(&o->alloc, o->segs);
    o->groups = ng;
    o->n_groups = k;
    o->segs = ns;
    o->n_segs = build_split_segments(ng, k, o->n, o->tensor_ends, o->n_tensors, ns);
    size_t covered = 0;
    for (size_t i = 0; i < k; i++)
        covered += ng[i].count;
    o->g0.count = o->n - covered;
    if (index != NULL)
        *index = k;
    return SGD_OK;
}

size_t sgd_optim_group_count(const sgd_optim *o)
{
    return o ? o->n_groups + 1 : 0;
}

sgd_status sgd_optim_get_group(const sgd_optim *o, size_t index, size_t *offset, size_t *count, double *lr_scale,
                               double *weight_decay)
{
    static const char fn[] = "sgd_optim_get_group";
    if (o == NULL)
        return sgd__err(SGD_EINVAL, "%s: optimizer is NULL", fn);
    if (index > o->n_groups)
        return sgd__err(SGD_ENOTFOUND, "%s: index=%zu: there are %zu groups", fn, index, o->n_groups + 1);
    const group *g = index == 0 ? &o->g0 : &o->groups[index - 1];
    if (offset)
        *offset = g->offset;
    if (count)
        *count = g->count;
    if (lr_scale)
        *lr_scale = g->lr_scale;
    if (weight_decay)
        *weight_decay = g->weight_decay;
    return SGD_OK;
}

sgd_status sgd_optim_set_group(sgd_optim *o, size_t index, double lr_scale, double weight_decay)
{
    static const char fn[] = "sgd_optim_set_group";
    if (o == NULL)
        return sgd__err(SGD_EINVAL, "%s: optimizer is NULL", fn);
    if (index > o->n_groups)
        return sgd__err(SGD_ENOTFOUND, "%s: index=%zu: there are %zu groups", fn, index, o->n_groups + 1);
    sgd_status st = check_group_values(fn, lr_scale, weight_decay);
    if (st != SGD_OK)
        return st;
    group *g = index == 0 ? &o->g0 : &o->groups[index - 1];
    g->lr_scale = lr_scale;
    g->weight_decay = weight_decay;
    return SGD_OK;
}

/* ------------------------------------------------------- gradient hygiene */

sgd_status sgd_optim_set_hygiene(sgd_optim *o, const sgd_optim_hygiene *h_in)
{
    static const char fn[] = "sgd_optim_set_hygiene";
    if (o == NULL || h_in == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, o == NULL ? "optimizer" : "hygiene");
    sgd_optim_hygiene h;
    sgd_optim_hygiene_init(&h);
    sgd_status st = sgd__options_copy(&h, sizeof h, h_in, HYGIENE_MIN_SIZE, fn, "hygiene");
    if (st != SGD_OK)
        return st;
    if (h.nonfinite != SGD_NONFINITE_SKIP && h.nonfinite != SGD_NONFINITE_ERROR && h.nonfinite != SGD_NONFINITE_APPLY)
        return sgd__err(SGD_EINVAL, "%s: nonfinite=%d: not an sgd_nonfinite_policy", fn, (int)h.nonfinite);
    if (!(h.clip_norm >= 0.0) || !isfinite(h.clip_norm))
        return sgd__err(SGD_ERANGE, "%s: clip_norm=%g: must be a finite number >= 0 (0: off)", fn, h.clip_norm);
    if (!(h.clip_value >= 0.0) || h.clip_value > FLT_MAX)
        return sgd__err(SGD_ERANGE, "%s: clip_value=%g: must be a finite float >= 0 (0: off)", fn, h.clip_value);
    bool clipping = h.clip_norm > 0.0 || h.clip_value > 0.0;
    if (clipping && !(o->vt.flags & SGD_OPTIM_FUSED_CLIP) && o->clip_buf == NULL) {
        o->clip_buf = sgd__alloc_aligned(&o->alloc, o->n, sizeof(float));
        if (o->clip_buf == NULL)
            return sgd__err(SGD_ENOMEM, "%s: out of memory for the clipped-gradient buffer (%zu floats)", fn, o->n);
    }
    o->hyg = h;
    return SGD_OK;
}

sgd_status sgd_optim_get_hygiene(const sgd_optim *o, sgd_optim_hygiene *h)
{
    static const char fn[] = "sgd_optim_get_hygiene";
    if (o == NULL || h == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, o == NULL ? "optimizer" : "hygiene");
    return SGD__FILL(h, &o->hyg, sgd_optim_hygiene, fn, "hygiene");
}

sgd_status sgd_optim_get_stats(const sgd_optim *o, sgd_optim_stats *stats)
{
    static const char fn[] = "sgd_optim_get_stats";
    if (o == NULL || stats == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, o == NULL ? "optimizer" : "stats");
    return SGD__FILL(stats, &o->stats, sgd_optim_stats, fn, "stats");
}

/* ------------------------------------------------------------------ state */

sgd_status sgd_optim_reset(sgd_optim *o)
{
    if (o == NULL)
        return sgd__err(SGD_EINVAL, "sgd_optim_reset: optimizer is NULL");
    for (uint32_t i = 0; i < o->vt.n_slots; i++)
        memset(o->slots[i], 0, o->n * sizeof(float));
    o->step = 0;
    o->at_eval = false;
    if (o->vt.init != NULL) {
        msg_save ms;
        msg_begin(&ms);
        int rc = o->vt.init(o->slots, o->n, o->user);
        if (rc != 0)
            return cb_fail_msg(o, "sgd_optim_reset", "init", rc);
        msg_restore(&ms);
    }
    return SGD_OK;
}

/* Array index layout: 0 "step", 1..n_slots the slots, then "scalars" if any. */
size_t sgd_optim_state_count(const sgd_optim *o)
{
    if (o == NULL)
        return 0;
    return 1 + o->vt.n_slots + (o->vt.n_scalars > 0 ? 1 : 0);
}

static sgd_status describe(const sgd_optim *o, size_t index, const char **name, int32_t *type, size_t *length,
                           size_t *elem, const char *fn)
{
    if (index >= sgd_optim_state_count(o))
        return sgd__err(SGD_ENOTFOUND, "%s: optimizer '%s': state index %zu: it has %zu arrays", fn, o->name, index,
                        sgd_optim_state_count(o));
    const char *nm;
    int32_t ty;
    size_t len, el;
    if (index == 0) {
        nm = "step", ty = SGD_STATE_I64, len = 1, el = sizeof(int64_t);
    } else if (index <= o->vt.n_slots) {
        nm = o->slot_name[index - 1], ty = SGD_STATE_F32, len = o->n, el = sizeof(float);
    } else {
        nm = "scalars", ty = SGD_STATE_F64, len = o->vt.n_scalars, el = sizeof(double);
    }
    if (name)
        *name = nm;
    if (type)
        *type = ty;
    if (length)
        *length = len;
    if (elem)
        *elem = el;
    return SGD_OK;
}

sgd_status sgd_optim_state_describe(const sgd_optim *o, size_t index, const char **name, int32_t *type,
                                    size_t *length)
{
    if (o == NULL)
        return sgd__err(SGD_EINVAL, "sgd_optim_state_describe: optimizer is NULL");
    return describe(o, index, name, type, length, NULL, "sgd_optim_state_describe");
}

sgd_status sgd_optim_state_find(const sgd_optim *o, const char *name, size_t *index)
{
    static const char fn[] = "sgd_optim_state_find";
    if (o == NULL || name == NULL || index == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, o == NULL ? "optimizer" : name == NULL ? "name" : "index");
    size_t count = sgd_optim_state_count(o);
    for (size_t i = 0; i < count; i++) {
        const char *nm = "";
        describe(o, i, &nm, NULL, NULL, NULL, fn);
        if (strcmp(nm, name) == 0) {
            *index = i;
            return SGD_OK;
        }
    }
    return sgd__err(SGD_ENOTFOUND, "%s: optimizer '%s' has no state array '%s'", fn, o->name, name);
}

static sgd_status check_bytes(const sgd_optim *o, size_t index, size_t bytes, const char *fn)
{
    const char *nm = "";
    size_t len = 0, el = 0, want;
    sgd_status st = describe(o, index, &nm, NULL, &len, &el, fn);
    if (st != SGD_OK)
        return st;
    if (!sgd__mul_size(len, el, &want) || bytes != want)
        return sgd__err(SGD_ESHAPE, "%s: optimizer '%s': state '%s' is %zu x %zu bytes, not %zu bytes", fn, o->name,
                        nm, len, el, bytes);
    return SGD_OK;
}

sgd_status sgd_optim_state_export(const sgd_optim *o, size_t index, void *out, size_t bytes)
{
    static const char fn[] = "sgd_optim_state_export";
    if (o == NULL || out == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, o == NULL ? "optimizer" : "out");
    sgd_status st = check_bytes(o, index, bytes, fn);
    if (st != SGD_OK)
        return st;
    if (index == 0) {
        memcpy(out, &o->step, sizeof o->step);
    } else if (index <= o->vt.n_slots) {
        if (bytes > 0)
            memcpy(out, o->slots[index - 1], bytes);
    } else {
        /* A stack buffer, not o->scalars: an export reads a const optimizer, and
         * several threads may export from the same one at once. */
        double sc[SGD_OPTIM_MAX_SCALARS];
        int rc = o->vt.export_scalars(sc, o->vt.n_scalars, o->user);
        if (rc != 0)
            return cb_fail(o, fn, "export_scalars", rc);
        memcpy(out, sc, bytes);
    }
    return SGD_OK;
}

sgd_status sgd_optim_state_data(const sgd_optim *o, size_t index, const float **data)
{
    static const char fn[] = "sgd_optim_state_data";
    if (data != NULL)
        *data = NULL;
    if (o == NULL || data == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, o == NULL ? "optimizer" : "data");
    if (index >= sgd_optim_state_count(o))
        return sgd__err(SGD_ENOTFOUND, "%s: optimizer '%s': no state array %zu", fn, o->name, index);
    if (index == 0 || index > o->vt.n_slots)
        return sgd__err(SGD_EUNSUPPORTED, "%s: optimizer '%s': state array %zu is not a slot; export it", fn,
                        o->name, index);
    *data = o->slots[index - 1];
    return SGD_OK;
}

sgd_status sgd_optim_state_import(sgd_optim *o, size_t index, const void *in, size_t bytes)
{
    static const char fn[] = "sgd_optim_state_import";
    if (o == NULL || in == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, o == NULL ? "optimizer" : "in");
    sgd_status st = check_bytes(o, index, bytes, fn);
    if (st != SGD_OK)
        return st;
    if (index == 0) {
        int64_t s;
        memcpy(&s, in, sizeof s);
        /* [0, 2^53]: a step from 2^53 - 1 leaves the counter at the limit, and its export imports back */
        if (s < 0 || s > SGD_OPTIM_MAX_STEP)
            return sgd__err(SGD_ERANGE, "%s: optimizer '%s': step=%lld: must be in [0, 2^53]", fn, o->name,
                            (long long)s);
        o->step = s;
    } else if (index <= o->vt.n_slots) {
        /* Any bits the optimizer accepts: a snapshot of a diverged state restores as it was saved. */
        if (o->ext.check_slot != NULL) {
            /* In aligned pieces through the stack: `in` may be any bytes, and a rollback allocates nothing. */
            float piece[1024];
            const unsigned char *src = in;
            size_t total = bytes / sizeof(float);
            msg_save ms;
            msg_begin(&ms);
            for (size_t at = 0; at < total;) {
                size_t k = total - at < 1024 ? total - at : 1024;
                memcpy(piece, src + at * sizeof(float), k * sizeof(float));
                int rc = o->ext.check_slot((uint32_t)(index - 1), piece, at, k, o->user);
                if (rc != 0)
                    return cb_fail_msg(o, fn, "check_slot", rc);
                at += k;
            }
            msg_restore(&ms);
        }
        if (bytes > 0)
            memcpy(o->slots[index - 1], in, bytes);
    } else {
        memcpy(o->scalars, in, bytes);
        msg_save ms;
        msg_begin(&ms);
        int rc = o->vt.import_scalars(o->scalars, o->vt.n_scalars, o->user);
        if (rc != 0)
            return cb_fail_msg(o, fn, "import_scalars", rc);
        msg_restore(&ms);
    }
    return SGD_OK;
}

/* -------------------------------------------------- hyperparameter listing */

size_t sgd_optim_hparam_count(const sgd_optim *o)
{
    return o ? o->n_hp : 0;
}

sgd_status sgd__hparam_copy_out(sgd_optim_hparam *out, const sgd_optim_hparam *src, const char *fn)
{
    return SGD__FILL(out, src, sgd_optim_hparam, fn, "out");
}

sgd_status sgd_optim_hparam_describe(const sgd_optim *o, size_t index, sgd_optim_hparam *out)
{
    static const char fn[] = "sgd_optim_hparam_describe";
    if (o == NULL || out == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, o == NULL ? "optimizer" : "out");
    if (index >= o->n_hp)
        return sgd__err(SGD_ENOTFOUND, "%s: optimizer '%s': index=%zu: it lists %u hyperparameters", fn, o->name,
                        index, (unsigned)o->n_hp);
    return sgd__hparam_copy_out(out, &o->hp[index], fn);
}

sgd_status sgd_optim_hparam_bounds(const sgd_optim *o, const char *name, sgd_optim_hparam *out)
{
    static const char fn[] = "sgd_optim_hparam_bounds";
    if (o == NULL || name == NULL || out == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, o == NULL ? "optimizer" : name == NULL ? "name" : "out");
    const sgd_optim_hparam *h = find_hp(o, name);
    if (h == NULL)
        return sgd__err(SGD_ENOTFOUND, "%s: optimizer '%s' lists no hyperparameter '%s'", fn, o->name, name);
    return sgd__hparam_copy_out(out, h, fn);
}

const char *sgd_optim_momentum_name(const sgd_optim *o)
{
    if (o == NULL)
        return NULL;
    for (uint32_t i = 0; i < o->n_hp; i++)
        if ((o->hp[i].flags & SGD_OPTIM_HPARAM_MOMENTUM) && !(o->hp[i].flags & SGD_OPTIM_HPARAM_FIXED))
            return o->hp[i].name;
    return NULL;
}

/* ------------------------------------------------------- evaluation point */

sgd_status sgd_optim_eval_point(sgd_optim *o, float *params, int32_t eval)
{
    static const char fn[] = "sgd_optim_eval_point";
    if (o == NULL || params == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, o == NULL ? "optimizer" : "params");
    if (eval != 0 && eval != 1)
        return sgd__err(SGD_EINVAL, "%s: eval=%d: must be 0 or 1", fn, (int)eval);
    if ((eval == 1) == o->at_eval)
        return SGD_OK;
    if (o->ext.swap != NULL) {
        msg_save ms;
        msg_begin(&ms);
        int rc = o->ext.swap(params, o->slots, o->n, eval, o->user);
        if (rc != 0)
            return cb_fail_msg(o, fn, "swap", rc);
        msg_restore(&ms);
    }
    o->at_eval = eval == 1;
    return SGD_OK;
}

int32_t sgd_optim_at_eval_point(const sgd_optim *o)
{
    return o != NULL && o->at_eval ? 1 : 0;
}

int32_t sgd_optim_has_eval_point(const sgd_optim *o)
{
    return o != NULL && o->ext.swap != NULL ? 1 : 0;
}

/* ------------------------------------------------------------- tensors */

sgd_status sgd_optim_set_tensors(sgd_optim *o, const size_t *sizes, size_t count)
{
    static const char fn[] = "sgd_optim_set_tensors";
    if (o == NULL)
        return sgd__err(SGD_EINVAL, "%s: optimizer is NULL", fn);
    if (sizes == NULL && count > 0)
        return sgd__err(SGD_EINVAL, "%s: sizes is NULL with count=%zu", fn, count);
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        if (sizes[i] == 0)
            return sgd__err(SGD_EINVAL, "%s: sizes[%zu]=0: a tensor has at least one element", fn, i);
        if (!sgd__add_size(total, sizes[i], &total) || total > o->n)
            return sgd__err(SGD_ERANGE, "%s: the sizes add up to more than the %zu parameters (at sizes[%zu])", fn,
                            o->n, i);
    }
    if (count > 0 && total != o->n)
        return sgd__err(SGD_ERANGE, "%s: the %zu sizes add up to %zu, not the %zu parameters", fn, count, total, o->n);
    size_t k = o->n_groups, ebytes = 0, sbytes;
    if (!sgd__mul_size(count, sizeof(size_t), &ebytes) || count > SIZE_MAX / 4 - 2 * k - 1 ||
        !sgd__mul_size(2 * (2 * k + 1 + count), sizeof(segment), &sbytes))
        return sgd__err(SGD_EOVERFLOW, "%s: too many tensors", fn);
    size_t *ends = NULL;
    if (count > 0 && (ends = sgd__malloc(&o->alloc, ebytes)) == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory for %zu tensors", fn, count);
    segment *ns = sgd__malloc(&o->alloc, sbytes);
    if (ns == NULL) {
        sgd__free(&o->alloc, ends);
        return sgd__err(SGD_ENOMEM, "%s: out of memory for %zu tensors", fn, count);
    }
    total = 0;
    for (size_t i = 0; i < count; i++)
        ends[i] = (total += sizes[i]);
    sgd__free(&o->alloc, o->tensor_ends);
    sgd__free(&o->alloc, o->segs);
    o->tensor_ends = ends;
    o->n_tensors = count;
    o->segs = ns;
    o->n_segs = build_split_segments(o->groups, k, o->n, ends, count, ns);
    return SGD_OK;
}
