/*
 * The built-in optimizers: the list of kinds, and everything that is the
 * same for all of them, driven by their descriptors (kind.h): the spec
 * parser, the published hyperparameter listing, get/set, the scalar state,
 * and the vtable through which sgd_optim_new() creates them, the public one
 * that host optimizers fill too. This file uses optim.c; optim.c knows
 * nothing of it.
 * SPDX-License-Identifier: MIT
 */
#include "kind.h"
#include "optim_internal.h"

#include <float.h>
#include <stdio.h>
#include <string.h>

#define FN "sgd_optim_new"

static const sgd__kind *const kinds[] = {
    &sgd__kind_sgd,      &sgd__kind_adagrad, &sgd__kind_rmsprop,  &sgd__kind_adam,        &sgd__kind_adamw,
    &sgd__kind_nadam,    &sgd__kind_radam,   &sgd__kind_adamax,   &sgd__kind_adadelta,    &sgd__kind_rprop,
    &sgd__kind_asgd,     &sgd__kind_lion,    &sgd__kind_lamb,     &sgd__kind_lars,        &sgd__kind_sgd_sf,
    &sgd__kind_adamw_sf, &sgd__kind_prodigy, &sgd__kind_dadapt_adam, &sgd__kind_dadapt_sgd, &sgd__kind_dog,
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

const char *sgd_optim_builtin_name(size_t i)
{
    return i < N_KINDS ? kinds[i]->name : NULL;
}

static const sgd__kind *find_kind(const char *p, size_t n)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (strlen(kinds[i]->name) == n && memcmp(kinds[i]->name, p, n) == 0)
            return kinds[i];
    return NULL;
}

/* ------------------------------------------------------------- listing */

/* Entry `index` of a kind's listing: lr, weight_decay, then its table. */
static void kind_entry(const sgd__kind *k, size_t index, sgd_optim_hparam *h)
{
    sgd_optim_hparam_init(h);
    if (index == 0) {
        h->name = "lr";
        h->default_value = k->lr_default;
        h->lower = 0.0;
        if (isnan(k->lr_default))
            h->flags = SGD_OPTIM_HPARAM_REQUIRED;
    } else if (index == 1) {
        h->name = "weight_decay";
        h->default_value = k->wd_default;
        h->lower = 0.0;
    } else {
        const sgd__hp *e = &k->hp[index - 2];
        h->name = e->name;
        h->default_value = e->def;
        h->lower = e->lo;
        h->upper = e->hi;
        h->flags = e->flags;
    }
}

size_t sgd_optim_kind_hparam_count(const char *kind)
{
    const sgd__kind *k = kind ? find_kind(kind, strlen(kind)) : NULL;
    return k ? 2 + k->n_hp : 0;
}

sgd_status sgd_optim_kind_hparam(const char *kind, size_t index, sgd_optim_hparam *out)
{
    static const char fn[] = "sgd_optim_kind_hparam";
    if (kind == NULL || out == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, kind == NULL ? "kind" : "out");
    const sgd__kind *k = find_kind(kind, strlen(kind));
    if (k == NULL)
        return sgd__err(SGD_ENOTFOUND, "%s: unknown optimizer '%s'", fn, kind);
    if (index >= 2 + (size_t)k->n_hp)
        return sgd__err(SGD_ENOTFOUND, "%s: '%s' has %u hyperparameters; index=%zu", fn, kind,
                        (unsigned)(2 + k->n_hp), index);
    sgd_optim_hparam h;
    kind_entry(k, index, &h);
    return sgd__hparam_copy_out(out, &h, fn);
}

/* ----------------------------------------------------------- callbacks */

static int find_hp(const sgd__kind *k, const char *name)
{
    for (uint32_t i = 0; i < k->n_hp; i++)
        if (strcmp(k->hp[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int cb_describe(uint32_t index, sgd_optim_hparam *info, void *user)
{
    const sgd__bi *b = user;
    if (index >= 2 + b->k->n_hp)
        return SGD_ENOTFOUND;
    kind_entry(b->k, index, info);
    if (index >= 2 && b->k->hp_flags != NULL)
        info->flags = b->k->hp_flags(b, index - 2, info->flags);
    return 0;
}

static int cb_init(float *const *slots, size_t n, void *user)
{
    sgd__bi *b = user;
    memset(b->sc, 0, sizeof b->sc);
    memset(b->work, 0, sizeof b->work);
    if (b->k->init != NULL)
        b->k->init(b, slots, n);
    return 0;
}

static int cb_step(float *params, const float *grads, float *const *slots, size_t n, double lr,
                   const sgd_optim_step_args *a, void *user)
{
    sgd__bi *b = user;
    return b->k->step(b, params, grads, slots, n, lr, a);
}

static int cb_swap(float *params, float *const *slots, size_t n, int32_t to_eval, void *user)
{
    sgd__bi *b = user;
    return b->k->swap(b, params, slots, n, to_eval);
}

static int cb_export_scalars(double *out, size_t count, void *user)
{
    const sgd__bi *b = user;
    if (count != b->n_sc)
        return SGD_ESHAPE;
    memcpy(out, b->sc, count * sizeof(double));
    return 0;
}

static int cb_import_scalars(const double *in, size_t count, void *user)
{
    sgd__bi *b = user;
    if (count != b->n_sc)
        return SGD_ESHAPE;
    if (b->k->check_scalars != NULL) {
        int rc = b->k->check_scalars(b, in);
        if (rc != 0)
            return rc;
    }
    memcpy(b->sc, in, count * sizeof(double));
    return 0;
}

/* The optimizer has checked the listed bounds (and FIXED) before this is called. */
static int cb_set(const char *name, double value, void *user)
{
    sgd__bi *b = user;
    int i = find_hp(b->k, name);
    if (i < 0)
        return SGD_ENOTFOUND;
    if (b->k->check != NULL) {
        double hp[SGD__KIND_MAX_HP];
        memcpy(hp, b->hp, sizeof hp);
        hp[i] = value;
        sgd_status st = b->k->check(b, hp);
        if (st != SGD_OK)
            return st; /* the message names key and value; the optimizer prefixes it */
    }
    b->hp[i] = value;
    return 0;
}

static int cb_get(const char *name, double *value, void *user)
{
    const sgd__bi *b = user;
    int i = find_hp(b->k, name);
    if (i < 0)
        return SGD_ENOTFOUND;
    *value = b->hp[i];
    return 0;
}

static void cb_destroy(void *user)
{
    sgd__bi *b = user;
    if (b == NULL)
        return;
    sgd_allocator a = b->alloc;
    sgd__free(&a, b);
}

/* ------------------------------------------------------------ spec parser */

static sgd_status get_nonneg(sgd__spec *sp, const char *key, double *v)
{
    sgd_status st = sgd__spec_get_double(sp, key, v, FN);
    if (st != SGD_OK)
        return st;
    if (!(*v >= 0.0) || !isfinite(*v))
        return sgd__err(SGD_ERANGE, "%s: %s=%g: must be a finite number >= 0", FN, key, *v);
    return SGD_OK;
}

/* The hygiene keys every built-in spec may carry. */
static sgd_status parse_hygiene(sgd__spec *sp, sgd_optim_hygiene *h)
{
    sgd_status st;
    if ((st = get_nonneg(sp, "clip_norm", &h->clip_norm)) != SGD_OK ||
        (st = get_nonneg(sp, "clip_value", &h->clip_value)) != SGD_OK)
        return st;
    if (h->clip_value > FLT_MAX)
        return sgd__err(SGD_ERANGE, "%s: clip_value=%g: must be at most %g (a float)", FN, h->clip_value,
                        (double)FLT_MAX);
    sgd__str nf = sgd__spec_get_str(sp, "nonfinite");
    if (nf.p != NULL) {
        if (sgd__str_eq(nf, "skip"))
            h->nonfinite = SGD_NONFINITE_SKIP;
        else if (sgd__str_eq(nf, "error"))
            h->nonfinite = SGD_NONFINITE_ERROR;
        else if (sgd__str_eq(nf, "apply"))
            h->nonfinite = SGD_NONFINITE_APPLY;
        else
            return sgd__err(SGD_EINVAL, "%s: nonfinite=%.*s: must be skip, error or apply", FN, (int)nf.n, nf.p);
    }
    int64_t ms = h->max_consecutive_skips;
    if ((st = sgd__spec_get_int64(sp, "max_skips", &ms, FN)) != SGD_OK)
        return st;
    if (ms < 0 || ms > (int64_t)UINT32_MAX)
        return sgd__err(SGD_ERANGE, "%s: max_skips=%lld: must be in [0, %lu]", FN, (long long)ms,
                        (unsigned long)UINT32_MAX);
    h->max_consecutive_skips = (uint32_t)ms;
    return SGD_OK;
}

/* torch's tuple arguments, which a spec spells as two keys. */
static sgd_status refuse_pairs(sgd__spec *sp, const sgd__kind *k)
{
    static const struct {
        const char *pair, *first, *second;
    } pairs[] = {
        {"betas", "beta1", "beta2"},
        {"etas", "eta_minus", "eta_plus"},
        {"step_sizes", "step_size_min", "step_size_max"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        if (find_hp(k, pairs[i].first) >= 0 && sgd__spec_get_str(sp, pairs[i].pair).p != NULL)
            return sgd__err(SGD_ENOTFOUND, "%s: unknown key '%s' for '%s': give %s= and %s= instead", FN,
                            pairs[i].pair, k->name, pairs[i].first, pairs[i].second);
    return SGD_OK;
}

/* One listed value from the spec (or its default), checked against its bounds. */
static sgd_status parse_value(sgd__spec *sp, const sgd_optim_hparam *h, double *v)
{
    sgd_status st;
    *v = h->default_value;
    if (h->flags & SGD_OPTIM_HPARAM_BOOL) {
        bool flag = *v != 0.0;
        if ((st = sgd__spec_get_bool(sp, h->name, &flag, FN)) != SGD_OK)
            return st;
        *v = flag ? 1.0 : 0.0;
        return SGD_OK;
    }
    bool given = sgd__spec_get_str(sp, h->name).p != NULL;
    for (size_t i = 0; i < sp->n; i++) /* get_str marked it used: parse it as a number */
        if (sgd__str_eq(sp->kv[i].key, h->name))
            sp->kv[i].used = false;
    if ((st = sgd__spec_get_double(sp, h->name, v, FN)) != SGD_OK)
        return st;
    if (!given && (h->flags & SGD_OPTIM_HPARAM_REQUIRED))
        return SGD_ENOTFOUND;
    return sgd__hparam_check(h, *v, FN);
}

sgd_status sgd_optim_new(sgd_optim **out, const char *spec, size_t n, const sgd_allocator *alloc_in)
{
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", FN);
    *out = NULL;
    if (spec == NULL)
        return sgd__err(SGD_EINVAL, "%s: spec is NULL", FN);
    sgd_allocator alloc;
    sgd_status st = sgd__allocator_init(&alloc, alloc_in, FN);
    if (st != SGD_OK)
        return st;
    sgd__spec sp;
    if ((st = sgd__spec_split(&sp, spec, strlen(spec), ',', FN)) != SGD_OK)
        return st;
    const sgd__kind *k = find_kind(sp.kind.p, sp.kind.n);
    if (k == NULL) {
        char list[512];
        size_t w = 0;
        for (size_t i = 0; i < N_KINDS && w < sizeof list; i++)
            w += (size_t)snprintf(list + w, sizeof list - w, "%s%s", i ? ", " : "", kinds[i]->name);
        return sgd__err(SGD_ENOTFOUND, "%s: unknown optimizer '%.*s' (built-ins: %s)", FN, (int)sp.kind.n,
                        sp.kind.p, list);
    }
    if ((st = refuse_pairs(&sp, k)) != SGD_OK)
        return st;

    sgd__bi tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.alloc = alloc;
    tmp.k = k;
    double lr = 0.0, wd = 0.0;
    for (size_t i = 0; i < 2 + (size_t)k->n_hp; i++) {
        sgd_optim_hparam h;
        kind_entry(k, i, &h);
        double v;
        st = parse_value(&sp, &h, &v);
        if (st == SGD_ENOTFOUND)
            return sgd__err(SGD_EINVAL, "%s: %s: %s is required (it has no default, as in torch)", FN, k->name,
                            h.name);
        if (st != SGD_OK)
            return st;
        if (i == 0)
            lr = v;
        else if (i == 1)
            wd = v;
        else
            tmp.hp[i - 2] = v;
    }
    if (k->check != NULL && (st = k->check(NULL, tmp.hp)) != SGD_OK) {
        sgd__err_prefix("%s", FN);
        return st;
    }
    sgd_optim_hygiene hyg;
    sgd_optim_hygiene_init(&hyg);
    if ((st = parse_hygiene(&sp, &hyg)) != SGD_OK || (st = sgd__spec_check_unused(&sp, FN)) != SGD_OK)
        return st;

    for (int i = 0; i < SGD_OPTIM_MAX_SLOTS; i++)
        tmp.slot[i] = -1;
    k->layout(&tmp, &tmp.layout);
    tmp.n_sc = tmp.layout.n_scalars;

    sgd_optim_vtable vt;
    sgd_optim_vtable_init(&vt);
    vt.flags = SGD_OPTIM_FUSED_CLIP | tmp.layout.flags;
    vt.name = k->name;
    vt.n_slots = tmp.layout.n_slots;
    vt.slot_names = tmp.layout.n_slots ? tmp.layout.slot_names : NULL;
    vt.n_scalars = tmp.n_sc;
    vt.init = cb_init;
    vt.step = cb_step;
    if (tmp.n_sc > 0) {
        vt.export_scalars = cb_export_scalars;
        vt.import_scalars = cb_import_scalars;
    }
    vt.set_hparam = cb_set;
    vt.get_hparam = cb_get;
    vt.destroy = cb_destroy;
    sgd_optim_vtable_ext ext;
    sgd_optim_vtable_ext_init(&ext);
    ext.n_hparams = 2 + k->n_hp;
    ext.describe_hparam = cb_describe;
    ext.swap = k->swap != NULL ? cb_swap : NULL;

    sgd__bi *b = sgd__malloc(&alloc, sizeof *b);
    if (b == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory for the optimizer's settings", FN);
    *b = tmp;
    vt.slot_names = tmp.layout.n_slots ? b->layout.slot_names : NULL;
    sgd_optim *o = NULL;
    if ((st = sgd__optim_create(&o, &vt, &ext, b, n, &alloc, FN)) != SGD_OK) {
        cb_destroy(b);
        return st;
    }
    /* lr, weight_decay and the hygiene through the public setters, as any host would. */
    if ((st = sgd_optim_set(o, "lr", lr)) != SGD_OK || (st = sgd_optim_set(o, "weight_decay", wd)) != SGD_OK ||
        (st = sgd_optim_set_hygiene(o, &hyg)) != SGD_OK) {
        sgd_optim_free(o);
        return st;
    }
    *out = o;
    return SGD_OK;
}
