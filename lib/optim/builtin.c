/*
 * The built-in optimizers (sgd, adagrad, rmsprop, adam, adamw) with PyTorch
 * 1.13's semantics and defaults, implemented as sgd_optim_vtable callbacks
 * like any host optimizer, and the parser of their textual specs.
 * SPDX-License-Identifier: MIT
 */
#include "optim_internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef enum kind { K_SGD, K_ADAGRAD, K_RMSPROP, K_ADAM, K_ADAMW, K_COUNT } kind;

static const char *const kind_names[K_COUNT] = {"sgd", "adagrad", "rmsprop", "adam", "adamw"};

const char *sgd_optim_builtin_name(size_t i)
{
    return i < K_COUNT ? kind_names[i] : NULL;
}

/* One built-in's hyperparameters and scalar state: the vtable's `user`. */
typedef struct builtin {
    sgd_allocator alloc;
    kind kind;
    bool maximize;
    /* sgd, rmsprop */
    double momentum;
    bool has_buf; /* created with momentum > 0: the momentum buffer slot exists */
    /* sgd */
    double dampening;
    bool nesterov;
    bool buf_ready;      /* torch's momentum_buffer is not None (scalar state) */
    bool first_this_step;/* latched at call 0 of a step */
    /* adagrad */
    double lr_decay;
    double initial_accumulator_value;
    /* adagrad, rmsprop, adam */
    double eps;
    /* rmsprop */
    double alpha;
    bool centered;
    /* adam, adamw */
    double beta1, beta2;
    bool amsgrad;
    /* slot indices; -1 when absent */
    int s_buf, s_sum, s_sq, s_gavg, s_m, s_v, s_vmax;
} builtin;

/* Slot names, in slot order, per configuration. */
static const char *const names_sgd_mom[] = {"momentum_buffer"};
static const char *const names_adagrad[] = {"sum"};
static const char *const names_adam[] = {"exp_avg", "exp_avg_sq"};
static const char *const names_adam_ams[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
static const char *const names_rms[] = {"square_avg"};
static const char *const names_rms_c[] = {"square_avg", "grad_avg"};
static const char *const names_rms_m[] = {"square_avg", "momentum_buffer"};
static const char *const names_rms_cm[] = {"square_avg", "grad_avg", "momentum_buffer"};

bool sgd__builtin_slot_nonneg(const char *slot_name)
{
    static const char *const nonneg[] = {"sum", "exp_avg_sq", "max_exp_avg_sq", "square_avg"};
    for (size_t i = 0; i < sizeof nonneg / sizeof *nonneg; i++)
        if (strcmp(slot_name, nonneg[i]) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------ validation */

#define FN "sgd_optim_new"

/*
 * Range checks shared by the spec parser and sgd_optim_set(); `fn` names the
 * public function in the message. Each check mirrors torch.optim's
 * constructor (and is stricter where torch accepts nonsense: see docs/optim.md).
 */
static sgd_status check_nonneg(const char *fn, const char *key, double v)
{
    if (!(v >= 0.0) || !isfinite(v))
        return sgd__err(SGD_ERANGE, "%s: %s=%g: must be a finite number >= 0", fn, key, v);
    return SGD_OK;
}

static sgd_status check_unit_open(const char *fn, const char *key, double v)
{
    if (!(v >= 0.0 && v < 1.0))
        return sgd__err(SGD_ERANGE, "%s: %s=%g: must be in [0, 1)", fn, key, v);
    return SGD_OK;
}

static sgd_status check_unit_closed(const char *fn, const char *key, double v)
{
    if (!(v >= 0.0 && v <= 1.0))
        return sgd__err(SGD_ERANGE, "%s: %s=%g: must be in [0, 1]", fn, key, v);
    return SGD_OK;
}

static sgd_status check_bool(const char *fn, const char *key, double v, bool *out)
{
    if (v == 0.0)
        *out = false;
    else if (v == 1.0)
        *out = true;
    else
        return sgd__err(SGD_ERANGE, "%s: %s=%g: must be 0 or 1", fn, key, v);
    return SGD_OK;
}

/* torch: "Nesterov momentum requires a momentum and zero dampening". */
static sgd_status check_nesterov(const char *fn, bool nesterov, double momentum, double dampening)
{
    if (nesterov && !(momentum > 0.0))
        return sgd__err(SGD_ERANGE, "%s: nesterov=1 with momentum=%g: nesterov momentum requires momentum > 0", fn,
                        momentum);
    if (nesterov && dampening != 0.0)
        return sgd__err(SGD_ERANGE, "%s: nesterov=1 with dampening=%g: nesterov momentum requires dampening=0", fn,
                        dampening);
    return SGD_OK;
}

/* ------------------------------------------------------------ callbacks */

static sgd__kgrad kgrad(const builtin *b, const sgd_optim_step_args *a)
{
    sgd__kgrad kg;
    kg.cv = a->clip_value > 0.0 ? (float)a->clip_value : INFINITY;
    kg.gs = (float)(b->maximize ? -a->grad_scale : a->grad_scale);
    return kg;
}

static int cb_init(float *const *slots, size_t n, void *user)
{
    builtin *b = user;
    b->buf_ready = false;
    b->first_this_step = false;
    if (b->kind == K_ADAGRAD && b->initial_accumulator_value != 0.0) {
        float v = (float)b->initial_accumulator_value;
        float *s = slots[b->s_sum];
        for (size_t i = 0; i < n; i++)
            s[i] = v;
    }
    return 0;
}

static int cb_step(float *params, const float *grads, float *const *slots, size_t n, double lr,
                   const sgd_optim_step_args *a, void *user)
{
    builtin *b = user;
    const sgd__kgrad kg = kgrad(b, a);
    const float wd = (float)a->weight_decay;
    const double t = (double)a->step;
    switch (b->kind) {
    case K_SGD: {
        int mode = SGD__SGD_PLAIN;
        if (b->momentum != 0.0 && b->has_buf) {
            if (a->call == 0)
                b->first_this_step = !b->buf_ready;
            if (b->nesterov)
                mode = b->first_this_step ? SGD__SGD_NEST_FIRST : SGD__SGD_NEST;
            else
                mode = b->first_this_step ? SGD__SGD_MOM_FIRST : SGD__SGD_MOM;
            if (a->call + 1 == a->calls)
                b->buf_ready = true;
        }
        sgd__k_sgd(mode, params, grads, b->has_buf ? slots[b->s_buf] : NULL, n, kg, (float)lr, wd,
                   (float)b->momentum, (float)(1.0 - b->dampening));
        break;
    }
    case K_ADAGRAD: {
        double clr = lr / (1.0 + (t - 1.0) * b->lr_decay);
        sgd__k_adagrad(params, grads, slots[b->s_sum], n, kg, (float)clr, wd, (float)b->eps);
        break;
    }
    case K_RMSPROP:
        sgd__k_rmsprop(params, grads, slots[b->s_sq], b->centered ? slots[b->s_gavg] : NULL,
                       (b->has_buf && b->momentum > 0.0) ? slots[b->s_buf] : NULL, n, kg, (float)lr, wd,
                       (float)b->alpha, (float)(1.0 - b->alpha), (float)b->eps, (float)b->momentum);
        break;
    case K_ADAM:
    case K_ADAMW: {
        double bc1 = 1.0 - pow(b->beta1, t);
        double bc2 = 1.0 - pow(b->beta2, t);
        double step_size = lr / bc1;
        double inv_bc2s = 1.0 / sqrt(bc2);
        float decay = 1.0f, l2 = wd;
        if (b->kind == K_ADAMW) {
            decay = (float)(1.0 - lr * a->weight_decay);
            l2 = 0.0f;
        }
        sgd__k_adam(params, grads, slots[b->s_m], slots[b->s_v], b->amsgrad ? slots[b->s_vmax] : NULL, n, kg, decay,
                    l2, (float)b->beta1, (float)(1.0 - b->beta1), (float)b->beta2, (float)(1.0 - b->beta2),
                    (float)step_size, (float)inv_bc2s, (float)b->eps);
        break;
    }
    default:
        return SGD_EINTERNAL;
    }
    return 0;
}

/* Scalar state: sgd with a momentum buffer has one, "is the buffer set". */
static int cb_export_scalars(double *out, size_t count, void *user)
{
    builtin *b = user;
    if (count != 1)
        return SGD_ESHAPE;
    out[0] = b->buf_ready ? 1.0 : 0.0;
    return 0;
}

static int cb_import_scalars(const double *in, size_t count, void *user)
{
    builtin *b = user;
    if (count != 1)
        return SGD_ESHAPE;
    if (in[0] != 0.0 && in[0] != 1.0)
        return SGD_ERANGE;
    b->buf_ready = in[0] == 1.0;
    return 0;
}

#define SETFN "sgd_optim_set"

/* A structural option (it decided which slots exist) can be "set" only to its value. */
static sgd_status fixed(const char *key, double now, double value)
{
    if (value == now)
        return SGD_OK;
    return sgd__err(SGD_ESTATE,
                    "%s: %s=%g: %s is fixed when the optimizer is created (it is %g; it decides which state "
                    "arrays exist); create a new optimizer",
                    SETFN, key, value, key, now);
}

static sgd_status set_momentum(builtin *b, double value)
{
    sgd_status st = check_nonneg(SETFN, "momentum", value);
    if (st != SGD_OK)
        return st;
    if (value != 0.0 && !b->has_buf)
        return sgd__err(SGD_ESTATE,
                        "%s: momentum=%g: the optimizer was created with momentum=0 and has no momentum buffer; "
                        "create it with momentum > 0 to change momentum at run time",
                        SETFN, value);
    if (b->kind == K_SGD && (st = check_nesterov(SETFN, b->nesterov, value, b->dampening)) != SGD_OK)
        return st;
    b->momentum = value;
    return SGD_OK;
}

static int cb_set(const char *name, double value, void *user)
{
    builtin *b = user;
    sgd_status st;
    bool flag = false;
    if (strcmp(name, "maximize") == 0) {
        if ((st = check_bool(SETFN, name, value, &flag)) == SGD_OK)
            b->maximize = flag;
        return st;
    }
    switch (b->kind) {
    case K_SGD:
        if (strcmp(name, "momentum") == 0)
            return set_momentum(b, value);
        if (strcmp(name, "dampening") == 0) {
            if ((st = check_unit_closed(SETFN, name, value)) != SGD_OK ||
                (st = check_nesterov(SETFN, b->nesterov, b->momentum, value)) != SGD_OK)
                return st;
            b->dampening = value;
            return SGD_OK;
        }
        if (strcmp(name, "nesterov") == 0) {
            if ((st = check_bool(SETFN, name, value, &flag)) != SGD_OK ||
                (st = check_nesterov(SETFN, flag, b->momentum, b->dampening)) != SGD_OK)
                return st;
            b->nesterov = flag;
            return SGD_OK;
        }
        break;
    case K_ADAGRAD:
        if (strcmp(name, "lr_decay") == 0 || strcmp(name, "eps") == 0 ||
            strcmp(name, "initial_accumulator_value") == 0) {
            if ((st = check_nonneg(SETFN, name, value)) != SGD_OK)
                return st;
            if (name[0] == 'l')
                b->lr_decay = value;
            else if (name[0] == 'e')
                b->eps = value;
            else
                b->initial_accumulator_value = value; /* used by the next sgd_optim_reset() */
            return SGD_OK;
        }
        break;
    case K_RMSPROP:
        if (strcmp(name, "momentum") == 0)
            return set_momentum(b, value);
        if (strcmp(name, "alpha") == 0) {
            if ((st = check_unit_closed(SETFN, name, value)) == SGD_OK)
                b->alpha = value;
            return st;
        }
        if (strcmp(name, "eps") == 0) {
            if ((st = check_nonneg(SETFN, name, value)) == SGD_OK)
                b->eps = value;
            return st;
        }
        if (strcmp(name, "centered") == 0)
            return fixed(name, b->centered, value);
        break;
    case K_ADAM:
    case K_ADAMW:
        if (strcmp(name, "beta1") == 0 || strcmp(name, "beta2") == 0) {
            if ((st = check_unit_open(SETFN, name, value)) != SGD_OK)
                return st;
            if (name[4] == '1')
                b->beta1 = value;
            else
                b->beta2 = value;
            return SGD_OK;
        }
        if (strcmp(name, "eps") == 0) {
            if ((st = check_nonneg(SETFN, name, value)) == SGD_OK)
                b->eps = value;
            return st;
        }
        if (strcmp(name, "amsgrad") == 0)
            return fixed(name, b->amsgrad, value);
        break;
    default:
        break;
    }
    return SGD_ENOTFOUND;
}

static int cb_get(const char *name, double *value, void *user)
{
    const builtin *b = user;
    struct {
        const char *name;
        unsigned kinds; /* bit per kind */
        double v;
    } tab[] = {
        {"maximize", 0x1f, b->maximize},
        {"momentum", 1u << K_SGD | 1u << K_RMSPROP, b->momentum},
        {"dampening", 1u << K_SGD, b->dampening},
        {"nesterov", 1u << K_SGD, b->nesterov},
        {"lr_decay", 1u << K_ADAGRAD, b->lr_decay},
        {"initial_accumulator_value", 1u << K_ADAGRAD, b->initial_accumulator_value},
        {"eps", 1u << K_ADAGRAD | 1u << K_RMSPROP | 1u << K_ADAM | 1u << K_ADAMW, b->eps},
        {"alpha", 1u << K_RMSPROP, b->alpha},
        {"centered", 1u << K_RMSPROP, b->centered},
        {"beta1", 1u << K_ADAM | 1u << K_ADAMW, b->beta1},
        {"beta2", 1u << K_ADAM | 1u << K_ADAMW, b->beta2},
        {"amsgrad", 1u << K_ADAM | 1u << K_ADAMW, b->amsgrad},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if ((tab[i].kinds >> b->kind & 1u) && strcmp(name, tab[i].name) == 0) {
            *value = tab[i].v;
            return 0;
        }
    return SGD_ENOTFOUND;
}

static void cb_destroy(void *user)
{
    builtin *b = user;
    sgd_allocator a = b->alloc;
    sgd__free(&a, b);
}

void sgd__builtin_discard(void *user)
{
    if (user != NULL)
        cb_destroy(user);
}

/* ------------------------------------------------------------ spec parser */

static sgd_status get_nonneg(sgd__spec *sp, const char *key, double *v)
{
    sgd_status st = sgd__spec_get_double(sp, key, v, FN);
    if (st != SGD_OK)
        return st;
    return check_nonneg(FN, key, *v);
}

static sgd_status get_unit_open(sgd__spec *sp, const char *key, double *v)
{
    sgd_status st = sgd__spec_get_double(sp, key, v, FN);
    if (st != SGD_OK)
        return st;
    return check_unit_open(FN, key, *v);
}

static sgd_status get_unit_closed(sgd__spec *sp, const char *key, double *v)
{
    sgd_status st = sgd__spec_get_double(sp, key, v, FN);
    if (st != SGD_OK)
        return st;
    return check_unit_closed(FN, key, *v);
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

static sgd_status parse_kind(sgd__spec *sp, builtin *b, sgd__builtin_spec *out)
{
    sgd_status st;
    bool has_lr = sgd__spec_get_str(sp, "lr").p != NULL;
    /* Put "lr" back for the numeric parse (get_str marked it used). */
    for (size_t i = 0; i < sp->n; i++)
        if (sgd__str_eq(sp->kv[i].key, "lr"))
            sp->kv[i].used = false;
    if ((st = get_nonneg(sp, "lr", &out->lr)) != SGD_OK ||
        (st = get_nonneg(sp, "weight_decay", &out->weight_decay)) != SGD_OK ||
        (st = sgd__spec_get_bool(sp, "maximize", &b->maximize, FN)) != SGD_OK)
        return st;
    switch (b->kind) {
    case K_SGD:
        if (!has_lr)
            return sgd__err(SGD_EINVAL, "%s: sgd: lr is required (torch.optim.SGD has no default learning rate)",
                            FN);
        if ((st = get_nonneg(sp, "momentum", &b->momentum)) != SGD_OK ||
            (st = get_unit_closed(sp, "dampening", &b->dampening)) != SGD_OK ||
            (st = sgd__spec_get_bool(sp, "nesterov", &b->nesterov, FN)) != SGD_OK ||
            (st = check_nesterov(FN, b->nesterov, b->momentum, b->dampening)) != SGD_OK)
            return st;
        b->has_buf = b->momentum > 0.0;
        break;
    case K_ADAGRAD:
        if ((st = get_nonneg(sp, "lr_decay", &b->lr_decay)) != SGD_OK ||
            (st = get_nonneg(sp, "initial_accumulator_value", &b->initial_accumulator_value)) != SGD_OK ||
            (st = get_nonneg(sp, "eps", &b->eps)) != SGD_OK)
            return st;
        break;
    case K_RMSPROP:
        if ((st = get_unit_closed(sp, "alpha", &b->alpha)) != SGD_OK ||
            (st = get_nonneg(sp, "eps", &b->eps)) != SGD_OK ||
            (st = get_nonneg(sp, "momentum", &b->momentum)) != SGD_OK ||
            (st = sgd__spec_get_bool(sp, "centered", &b->centered, FN)) != SGD_OK)
            return st;
        b->has_buf = b->momentum > 0.0;
        break;
    case K_ADAM:
    case K_ADAMW:
        if (sgd__spec_get_str(sp, "betas").p != NULL)
            return sgd__err(SGD_ENOTFOUND, "%s: unknown key 'betas' for '%s': give beta1= and beta2= instead", FN,
                            kind_names[b->kind]);
        if ((st = get_unit_open(sp, "beta1", &b->beta1)) != SGD_OK ||
            (st = get_unit_open(sp, "beta2", &b->beta2)) != SGD_OK ||
            (st = get_nonneg(sp, "eps", &b->eps)) != SGD_OK ||
            (st = sgd__spec_get_bool(sp, "amsgrad", &b->amsgrad, FN)) != SGD_OK)
            return st;
        break;
    default:
        return sgd__err(SGD_EINTERNAL, "%s: unknown kind %d", FN, (int)b->kind);
    }
    if ((st = parse_hygiene(sp, &out->hygiene)) != SGD_OK)
        return st;
    return sgd__spec_check_unused(sp, FN);
}

/* torch 1.13's defaults (lr for sgd: required). */
static void set_defaults(builtin *b, sgd__builtin_spec *out)
{
    out->weight_decay = 0.0;
    switch (b->kind) {
    case K_SGD:
        out->lr = 0.0;
        break;
    case K_ADAGRAD:
        out->lr = 1e-2;
        b->eps = 1e-10;
        break;
    case K_RMSPROP:
        out->lr = 1e-2;
        b->alpha = 0.99;
        b->eps = 1e-8;
        break;
    case K_ADAM:
    case K_ADAMW:
        out->lr = 1e-3;
        b->beta1 = 0.9;
        b->beta2 = 0.999;
        b->eps = 1e-8;
        if (b->kind == K_ADAMW)
            out->weight_decay = 1e-2;
        break;
    default:
        break;
    }
}

static void build_vtable(builtin *b, sgd_optim_vtable *vt)
{
    sgd_optim_vtable_init(vt);
    vt->flags = SGD_OPTIM_FUSED_CLIP;
    vt->name = kind_names[b->kind];
    vt->init = cb_init;
    vt->step = cb_step;
    vt->set_hparam = cb_set;
    vt->get_hparam = cb_get;
    vt->destroy = cb_destroy;
    b->s_buf = b->s_sum = b->s_sq = b->s_gavg = b->s_m = b->s_v = b->s_vmax = -1;
    switch (b->kind) {
    case K_SGD:
        if (b->has_buf) {
            b->s_buf = 0;
            vt->n_slots = 1;
            vt->slot_names = names_sgd_mom;
            vt->n_scalars = 1;
            vt->export_scalars = cb_export_scalars;
            vt->import_scalars = cb_import_scalars;
        }
        break;
    case K_ADAGRAD:
        b->s_sum = 0;
        vt->n_slots = 1;
        vt->slot_names = names_adagrad;
        break;
    case K_RMSPROP:
        b->s_sq = 0;
        vt->n_slots = 1;
        vt->slot_names = names_rms;
        if (b->centered && b->has_buf) {
            b->s_gavg = 1, b->s_buf = 2, vt->n_slots = 3, vt->slot_names = names_rms_cm;
        } else if (b->centered) {
            b->s_gavg = 1, vt->n_slots = 2, vt->slot_names = names_rms_c;
        } else if (b->has_buf) {
            b->s_buf = 1, vt->n_slots = 2, vt->slot_names = names_rms_m;
        }
        break;
    case K_ADAM:
    case K_ADAMW:
        b->s_m = 0, b->s_v = 1;
        vt->n_slots = b->amsgrad ? 3 : 2;
        vt->slot_names = b->amsgrad ? names_adam_ams : names_adam;
        if (b->amsgrad)
            b->s_vmax = 2;
        break;
    default:
        break;
    }
}

sgd_status sgd__builtin_parse(const char *spec, const sgd_allocator *a, sgd__builtin_spec *out)
{
    memset(out, 0, sizeof *out);
    sgd_optim_hygiene_init(&out->hygiene);
    if (spec == NULL)
        return sgd__err(SGD_EINVAL, "%s: spec is NULL", FN);
    sgd__spec sp;
    sgd_status st = sgd__spec_split(&sp, spec, strlen(spec), ',', FN);
    if (st != SGD_OK)
        return st;
    kind k = K_COUNT;
    for (int i = 0; i < K_COUNT; i++)
        if (sgd__str_eq(sp.kind, kind_names[i]))
            k = (kind)i;
    if (k == K_COUNT)
        return sgd__err(SGD_ENOTFOUND, "%s: unknown optimizer '%.*s' (built-ins: sgd, adagrad, rmsprop, adam, adamw)",
                        FN, (int)sp.kind.n, sp.kind.p);
    builtin tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.kind = k;
    tmp.alloc = *a;
    set_defaults(&tmp, out);
    if ((st = parse_kind(&sp, &tmp, out)) != SGD_OK)
        return st;
    builtin *b = sgd__malloc(a, sizeof *b);
    if (b == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory for the optimizer's settings", FN);
    *b = tmp;
    build_vtable(b, &out->vt);
    out->user = b;
    return SGD_OK;
}
