/*
 * The learning-rate-free family, after their authors' reference code:
 *
 * - sgd_sf, adamw_sf: schedule-free SGD and AdamW (Defazio et al. 2024,
 *   "The Road Less Scheduled"; facebookresearch/schedule_free,
 *   sgd_schedulefree.py and adamw_schedulefree.py, without inner_momentum).
 *   The parameters hold y, the point where gradients are taken; z is a slot;
 *   the average x is where the model is evaluated, reached by
 *   sgd_optim_eval_point() (the reference's optimizer.eval()/train()).
 * - prodigy (Mishchenko & Defazio 2023; konstmish/prodigy, prodigy.py).
 * - dadapt_adam, dadapt_sgd: D-Adaptation (Defazio & Mishchenko 2023;
 *   facebookresearch/dadaptation, dadapt_adam.py and dadapt_sgd.py).
 * - dog: Distance over Gradients (Ivgi, Hinder & Carmon 2023; formll/dog,
 *   dog.py's DoG, without the iterate averager).
 *
 * The estimates (d, DoG's rbar and G) are global over the whole arena (the
 * references keep one per parameter group, all groups usually sharing it);
 * group multipliers scale each range's step. The methods that need a sum
 * over the arena before any update are SGD_OPTIM_TWO_PASS: pass 0
 * accumulates (and updates the moments), pass 1 applies.
 * SPDX-License-Identifier: MIT
 */
#include "kind.h"

/* Python's max(a, b) and min(a, b), as the reference implementations use them:
 * a unless b compares greater (smaller). With a NaN they keep the first
 * argument, so a NaN estimate never replaces d, and a NaN d stays NaN instead
 * of taking a negative estimate (d would then be refused by its own import). */
static double py_max(double a, double b)
{
    return b > a ? b : a;
}

static double py_min(double a, double b)
{
    return b < a ? b : a;
}

/* ------------------------------------------------------------ schedule-free */

enum { SC_WEIGHT_SUM, SC_LR_MAX, SC_STARTED };
enum { W_CKP1 };

/* The reference's weights of the average, at the first call of a step: ckp1 and the warmup factor. */
static double sf_begin(sgd__bi *b, const sgd_optim_step_args *a, double warmup, double r, double wlp, double *sched)
{
    const double k = (double)(a->step - 1);
    *sched = k < warmup ? (k + 1.0) / warmup : 1.0;
    if (a->call == 0) {
        double lr = a->base_lr * *sched;
        double lr_max = b->sc[SC_LR_MAX] = lr > b->sc[SC_LR_MAX] ? lr : b->sc[SC_LR_MAX];
        double weight = pow(k + 1.0, r) * pow(lr_max, wlp);
        double ws = b->sc[SC_WEIGHT_SUM] = b->sc[SC_WEIGHT_SUM] + weight;
        b->work[W_CKP1] = ws != 0.0 ? weight / ws : 0.0;
    }
    return b->work[W_CKP1];
}

static void sf_init(sgd__bi *b, float *const *slots, size_t n)
{
    (void)slots, (void)n;
    b->sc[SC_LR_MAX] = -1.0;
}

/*
 * Imported scalar state: refused only where the optimizer could never have
 * produced it (a negative finite sum, a flag other than 0 or 1); NaN and
 * infinity import back, as a diverged state must (sgd_optim_state_import()).
 */
static int sf_check_scalars(const sgd__bi *b, const double *sc)
{
    (void)b;
    if (sc[SC_WEIGHT_SUM] < 0.0 || (sc[SC_STARTED] != 0.0 && sc[SC_STARTED] != 1.0))
        return sgd__err(SGD_ERANGE, "scalars [%g, %g, %g]: weight_sum >= 0 and started 0 or 1 expected",
                        sc[SC_WEIGHT_SUM], sc[SC_LR_MAX], sc[SC_STARTED]);
    return 0;
}

/* p = lerp(p, z, w) with torch's formula; z is slot 0. */
static int sf_swap_with(sgd__bi *b, float *p, float *const *slots, size_t n, double w)
{
    if (b->sc[SC_STARTED] == 0.0) /* the reference has no z before its first step: nothing to move */
        return 0;
    sgd__kargs k;
    memset(&k, 0, sizeof k);
    k.c[0] = (float)w;
    k.c[2] = fabs(w) < 0.5 ? 1.0f : 0.0f;
    sgd__kern()->lerp_to(p, slots[0], n, &k);
    return 0;
}

enum { SS_MOMENTUM, SS_WARMUP, SS_R, SS_WLP, SS_MAXIMIZE };

static const sgd__hp hp_sgd_sf[] = {
    {"momentum", 0.9, 0.0, 1.0, SGD_OPTIM_HPARAM_LOWER_OPEN | SGD_OPTIM_HPARAM_UPPER_OPEN},
    {"warmup_steps", 0.0, 0.0, 1e15, SGD_OPTIM_HPARAM_INTEGER},
    SGD__HP_NONNEG("r", 0.0),
    SGD__HP_NONNEG("weight_lr_power", 2.0),
    SGD__HP_MAXIMIZE,
};

static void sgd_sf_layout(sgd__bi *b, sgd__layout *out)
{
    (void)b;
    out->slot_names[0] = "z";
    out->n_slots = 1;
    out->n_scalars = 3;
}

static int sgd_sf_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                       const sgd_optim_step_args *a)
{
    double sched;
    double ckp1 = sf_begin(b, a, b->hp[SS_WARMUP], b->hp[SS_R], b->hp[SS_WLP], &sched);
    double lrs = lr * sched, mom = b->hp[SS_MOMENTUM];
    sgd__kargs k = sgd__kargs_make(b, a, SS_MAXIMIZE, lrs, a->weight_decay);
    k.c[0] = (float)ckp1;
    k.c[1] = (float)(lrs * (mom * (1.0 - ckp1) - 1.0));
    k.c[2] = fabs(ckp1) < 0.5 ? 1.0f : 0.0f;
    sgd__kern()->sf_sgd(b->sc[SC_STARTED] == 0.0, p, g, slots[0], n, &k);
    if (a->call + 1 == a->calls)
        b->sc[SC_STARTED] = 1.0;
    return 0;
}

static int sgd_sf_swap(sgd__bi *b, float *p, float *const *slots, size_t n, int32_t to_eval)
{
    double m = b->hp[SS_MOMENTUM];
    return sf_swap_with(b, p, slots, n, to_eval ? 1.0 - 1.0 / m : 1.0 - m);
}

/* momentum is the interpolation the evaluation point undoes: fixed while the parameters are at y */
const sgd__kind sgd__kind_sgd_sf = {
    .name = "sgd_sf",
    .lr_default = 1.0,
    .hp = hp_sgd_sf,
    .n_hp = SGD__N(hp_sgd_sf),
    .layout = sgd_sf_layout,
    .init = sf_init,
    .step = sgd_sf_step,
    .check_scalars = sf_check_scalars,
    .swap = sgd_sf_swap,
};

enum { AS_BETA1, AS_BETA2, AS_EPS, AS_WARMUP, AS_R, AS_WLP, AS_MAXIMIZE };

static const sgd__hp hp_adamw_sf[] = {
    {"beta1", 0.9, 0.0, 1.0, SGD_OPTIM_HPARAM_LOWER_OPEN | SGD_OPTIM_HPARAM_UPPER_OPEN},
    {"beta2", 0.999, 0.0, 1.0, SGD_OPTIM_HPARAM_UPPER_OPEN},
    SGD__HP_NONNEG("eps", 1e-8),
    {"warmup_steps", 0.0, 0.0, 1e15, SGD_OPTIM_HPARAM_INTEGER},
    SGD__HP_NONNEG("r", 0.0),
    SGD__HP_NONNEG("weight_lr_power", 2.0),
    SGD__HP_MAXIMIZE,
};

static void adamw_sf_layout(sgd__bi *b, sgd__layout *out)
{
    (void)b;
    out->slot_names[0] = "z";
    out->slot_names[1] = "exp_avg_sq";
    out->n_slots = 2;
    out->n_scalars = 3;
}

static int adamw_sf_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                         const sgd_optim_step_args *a)
{
    double sched;
    double ckp1 = sf_begin(b, a, b->hp[AS_WARMUP], b->hp[AS_R], b->hp[AS_WLP], &sched);
    const double lrs = lr * sched, b1 = b->hp[AS_BETA1], b2 = b->hp[AS_BETA2];
    sgd__kargs k = sgd__kargs_make(b, a, AS_MAXIMIZE, lrs, 0.0);
    k.c[0] = (float)ckp1;
    k.c[1] = (float)(lrs * (b1 * (1.0 - ckp1) - 1.0));
    k.c[2] = fabs(ckp1) < 0.5 ? 1.0f : 0.0f;
    k.c[3] = (float)b2;
    k.c[4] = (float)(1.0 - b2);
    k.c[5] = (float)(1.0 / (1.0 - pow(b2, (double)a->step)));
    k.c[6] = (float)b->hp[AS_EPS];
    k.c[7] = (float)a->weight_decay;
    sgd__kern()->sf_adamw(b->sc[SC_STARTED] == 0.0, p, g, slots[0], slots[1], n, &k);
    if (a->call + 1 == a->calls)
        b->sc[SC_STARTED] = 1.0;
    return 0;
}

static int adamw_sf_swap(sgd__bi *b, float *p, float *const *slots, size_t n, int32_t to_eval)
{
    double b1 = b->hp[AS_BETA1];
    return sf_swap_with(b, p, slots, n, to_eval ? 1.0 - 1.0 / b1 : 1.0 - b1);
}

const sgd__kind sgd__kind_adamw_sf = {
    .name = "adamw_sf",
    .lr_default = 0.0025,
    .hp = hp_adamw_sf,
    .n_hp = SGD__N(hp_adamw_sf),
    .layout = adamw_sf_layout,
    .init = sf_init,
    .step = adamw_sf_step,
    .check_scalars = sf_check_scalars,
    .swap = adamw_sf_swap,
};

/* ----------------------------------------------------------------- prodigy */

enum { PR_BETA1, PR_BETA2, PR_BETA3, PR_EPS, PR_DECOUPLE, PR_BIAS, PR_SAFEGUARD, PR_D0, PR_DCOEF, PR_GROWTH, PR_MAXIMIZE };
enum { PS_D, PS_DMAX, PS_DNUM };           /* scalars */
enum { PW_D, PW_NUM, PW_DEN, PW_SKIP, PW_BC }; /* work: d at the start of the step, the sums */

static const sgd__hp hp_prodigy[] = {
    {"beta1", 0.9, 0.0, 1.0, SGD_OPTIM_HPARAM_UPPER_OPEN | SGD_OPTIM_HPARAM_MOMENTUM},
    {"beta2", 0.999, 0.0, 1.0, SGD_OPTIM_HPARAM_UPPER_OPEN},
    {"beta3", -1.0, -1.0, 1.0, SGD_OPTIM_HPARAM_UPPER_OPEN}, /* negative: sqrt(beta2), the reference's None */
    {"eps", 1e-8, 0.0, INFINITY, SGD_OPTIM_HPARAM_LOWER_OPEN},
    SGD__HP_BOOL("decouple", 1.0, 0),
    SGD__HP_BOOL("use_bias_correction", 0.0, 0),
    SGD__HP_BOOL("safeguard_warmup", 0.0, 0),
    {"d0", 1e-6, 0.0, INFINITY, SGD_OPTIM_HPARAM_LOWER_OPEN},
    {"d_coef", 1.0, 0.0, INFINITY, SGD_OPTIM_HPARAM_LOWER_OPEN},
    SGD__HP_NONNEG("growth_rate", 0.0), /* 0: no limit (the reference's inf) */
    SGD__HP_MAXIMIZE,
};

static void prodigy_layout(sgd__bi *b, sgd__layout *out)
{
    (void)b;
    out->slot_names[0] = "s";
    out->slot_names[1] = "p0";
    out->slot_names[2] = "exp_avg";
    out->slot_names[3] = "exp_avg_sq";
    out->n_slots = 4;
    out->n_scalars = 3;
    out->flags = SGD_OPTIM_TWO_PASS;
}

static void d_init(sgd__bi *b, float *const *slots, size_t n)
{
    (void)slots, (void)n;
    b->sc[PS_D] = b->hp[PR_D0];
    b->sc[PS_DMAX] = b->hp[PR_D0];
}

/* d_max only grows from d0 > 0, so a finite d_max <= 0 was never produced (NaN and infinity were, by a diverged
 * run). d can shrink: a growth_rate below 1 multiplies it every step (the reference allows that), down to 0 when
 * the product underflows, and a step exports that 0; so d >= 0. */
static int d_check_scalars(const sgd__bi *b, const double *sc)
{
    (void)b;
    if (sc[PS_D] < 0.0 || sc[PS_DMAX] <= 0.0)
        return sgd__err(SGD_ERANGE, "scalars [%g, %g]: d must be >= 0 and d_max > 0", sc[PS_D], sc[PS_DMAX]);
    return 0;
}

static int prodigy_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                        const sgd_optim_step_args *a)
{
    const double b1 = b->hp[PR_BETA1], b2 = b->hp[PR_BETA2], t = (double)a->step;
    const double b3 = b->hp[PR_BETA3] < 0.0 ? sqrt(b2) : b->hp[PR_BETA3], d0 = b->hp[PR_D0];
    const bool decouple = b->hp[PR_DECOUPLE] != 0.0;
    if (a->pass == 0 && a->call == 0) {
        b->work[PW_D] = b->sc[PS_D];
        b->work[PW_NUM] = b->work[PW_DEN] = 0.0;
        b->work[PW_BC] = b->hp[PR_BIAS] != 0.0 ? sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t)) : 1.0;
    }
    const double d = b->work[PW_D], dlr = d * lr * b->work[PW_BC];
    sgd__kargs k = sgd__kargs_make(b, a, PR_MAXIMIZE, lr, decouple ? 0.0 : a->weight_decay);
    const sgd__ktab *kt = sgd__kern();
    if (a->pass == 0) {
        k.c[0] = (float)b1;
        k.c[1] = (float)(d * (1.0 - b1));
        k.c[2] = (float)b2;
        k.c[3] = (float)(d * d * (1.0 - b2));
        k.c[4] = (float)b3;
        k.c[5] = (float)(b->hp[PR_SAFEGUARD] != 0.0 ? (d / d0) * d : (d / d0) * dlr);
        sgd__knorms nm = {0, 0, 0, 0};
        if (lr > 0.0) {
            kt->prodigy_acc(a->step == 1, p, g, slots[1], slots[0], b1 > 0.0 ? slots[2] : NULL, slots[3], n, &k, &nm);
            b->work[PW_NUM] += (d / d0) * dlr * nm.a;
            b->work[PW_DEN] += nm.b;
        }
        return 0;
    }
    if (a->call == 0) {
        b->work[PW_SKIP] = b->work[PW_DEN] == 0.0;
        if (b->work[PW_SKIP] == 0.0 && a->base_lr > 0.0) {
            double dn = b->sc[PS_DNUM] * b3 + b->work[PW_NUM];
            double d_hat = b->hp[PR_DCOEF] * dn / b->work[PW_DEN];
            double dd = b->sc[PS_D], dmax = b->sc[PS_DMAX];
            if (dd == d0)
                dd = py_max(dd, d_hat);
            dmax = py_max(dmax, d_hat);
            double grown = b->hp[PR_GROWTH] > 0.0 ? dd * b->hp[PR_GROWTH] : INFINITY;
            dd = py_min(dmax, grown);
            b->sc[PS_DNUM] = dn;
            b->sc[PS_D] = dd;
            b->sc[PS_DMAX] = dmax;
        }
    }
    if (b->work[PW_SKIP] != 0.0)
        return 0;
    const double dnew = b->sc[PS_D];
    k.decay = decouple ? (float)(1.0 - a->weight_decay * dlr) : 1.0f;
    k.c[0] = (float)(dnew * b->hp[PR_EPS]);
    k.c[1] = (float)(b1 > 0.0 ? dlr : dlr * dnew);
    kt->prodigy_apply(p, g, b1 > 0.0 ? slots[2] : NULL, slots[3], n, &k);
    return 0;
}

const sgd__kind sgd__kind_prodigy = {
    .name = "prodigy",
    .lr_default = 1.0,
    .hp = hp_prodigy,
    .n_hp = SGD__N(hp_prodigy),
    .layout = prodigy_layout,
    .init = d_init,
    .step = prodigy_step,
    .check_scalars = d_check_scalars,
};

/* ------------------------------------------------------------- dadapt_adam */

enum { DA_BETA1, DA_BETA2, DA_EPS, DA_DECOUPLE, DA_BIAS, DA_D0, DA_GROWTH, DA_MAXIMIZE };
enum { DS_D, DS_NUMW, DS_G0 }; /* scalars (DS_G0: dadapt_sgd only) */

static const sgd__hp hp_dadapt_adam[] = {
    {"beta1", 0.9, 0.0, 1.0, SGD_OPTIM_HPARAM_UPPER_OPEN | SGD_OPTIM_HPARAM_MOMENTUM},
    {"beta2", 0.999, 0.0, 1.0, SGD_OPTIM_HPARAM_UPPER_OPEN},
    {"eps", 1e-8, 0.0, INFINITY, SGD_OPTIM_HPARAM_LOWER_OPEN},
    SGD__HP_BOOL("decouple", 0.0, 0),
    SGD__HP_BOOL("use_bias_correction", 0.0, 0),
    {"d0", 1e-6, 0.0, INFINITY, SGD_OPTIM_HPARAM_LOWER_OPEN | SGD_OPTIM_HPARAM_FIXED},
    SGD__HP_NONNEG("growth_rate", 0.0),
    SGD__HP_MAXIMIZE,
};

static void dadapt_adam_layout(sgd__bi *b, sgd__layout *out)
{
    (void)b;
    out->slot_names[0] = "s";
    out->slot_names[1] = "exp_avg";
    out->slot_names[2] = "exp_avg_sq";
    out->n_slots = 3;
    out->n_scalars = 2;
    out->flags = SGD_OPTIM_TWO_PASS;
}

static void dadapt_init(sgd__bi *b, float *const *slots, size_t n)
{
    (void)slots, (void)n;
    b->sc[DS_D] = b->hp[b->k == &sgd__kind_dadapt_adam ? DA_D0 : 1];
}

static int dadapt_check_scalars(const sgd__bi *b, const double *sc)
{
    if (sc[DS_D] <= 0.0 || (b->n_sc > DS_G0 && sc[DS_G0] < 0.0))
        return sgd__err(SGD_ERANGE, "scalars[0]=%g: d must be > 0 (and the first gradient's norm >= 0)", sc[DS_D]);
    return 0;
}

static double grow(double d, double d_hat, double rate)
{
    double cap = rate > 0.0 ? d * rate : INFINITY;
    return py_max(d, py_min(d_hat, cap));
}

static int dadapt_adam_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                            const sgd_optim_step_args *a)
{
    const double b1 = b->hp[DA_BETA1], b2 = b->hp[DA_BETA2], t = (double)a->step, sb2 = sqrt(b2);
    const bool decouple = b->hp[DA_DECOUPLE] != 0.0;
    if (a->pass == 0 && a->call == 0) {
        b->work[PW_D] = b->sc[DS_D];
        b->work[PW_NUM] = b->work[PW_DEN] = 0.0;
        b->work[PW_BC] = b->hp[DA_BIAS] != 0.0 ? sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t)) : 1.0;
    }
    const double dlr = b->work[PW_D] * lr * b->work[PW_BC];
    sgd__kargs k = sgd__kargs_make(b, a, DA_MAXIMIZE, lr, decouple ? 0.0 : a->weight_decay);
    k.c[6] = (float)b->hp[DA_EPS];
    const sgd__ktab *kt = sgd__kern();
    if (a->pass == 0) {
        if (lr > 0.0) {
            k.c[0] = (float)b1;
            k.c[1] = (float)(dlr * (1.0 - b1));
            k.c[2] = (float)b2;
            k.c[3] = (float)(1.0 - b2);
            k.c[4] = (float)sb2;
            k.c[5] = (float)(dlr * (1.0 - sb2));
            sgd__knorms nm = {0, 0, 0, 0};
            kt->dadam_acc(p, g, slots[0], slots[1], slots[2], n, &k, &nm);
            b->work[PW_NUM] += dlr * nm.a;
            b->work[PW_DEN] += nm.b;
        }
        return 0;
    }
    if (a->call == 0) {
        b->work[PW_SKIP] = b->work[PW_DEN] == 0.0;
        if (b->work[PW_SKIP] == 0.0) {
            double nw = sb2 * b->sc[DS_NUMW] + (1.0 - sb2) * b->work[PW_NUM];
            if (a->base_lr > 0.0)
                b->sc[DS_D] = grow(b->sc[DS_D], nw / ((1.0 - sb2) * b->work[PW_DEN]), b->hp[DA_GROWTH]);
            b->sc[DS_NUMW] = nw;
        }
    }
    if (b->work[PW_SKIP] != 0.0)
        return 0;
    k.decay = decouple ? (float)(1.0 - a->weight_decay * dlr) : 1.0f;
    kt->dadam_apply(p, slots[1], slots[2], n, &k);
    return 0;
}

const sgd__kind sgd__kind_dadapt_adam = {
    .name = "dadapt_adam",
    .lr_default = 1.0,
    .hp = hp_dadapt_adam,
    .n_hp = SGD__N(hp_dadapt_adam),
    .layout = dadapt_adam_layout,
    .init = dadapt_init,
    .step = dadapt_adam_step,
    .check_scalars = dadapt_check_scalars,
};

/* -------------------------------------------------------------- dadapt_sgd */

enum { DG_MOMENTUM, DG_D0, DG_GROWTH, DG_MAXIMIZE };

static const sgd__hp hp_dadapt_sgd[] = {
    {"momentum", 0.0, 0.0, 1.0, SGD_OPTIM_HPARAM_UPPER_OPEN | SGD_OPTIM_HPARAM_MOMENTUM},
    {"d0", 1e-6, 0.0, INFINITY, SGD_OPTIM_HPARAM_LOWER_OPEN | SGD_OPTIM_HPARAM_FIXED},
    SGD__HP_NONNEG("growth_rate", 0.0),
    SGD__HP_MAXIMIZE,
};

static void dadapt_sgd_layout(sgd__bi *b, sgd__layout *out)
{
    (void)b;
    out->slot_names[0] = "s";
    out->slot_names[1] = "x0";
    out->n_slots = 2;
    out->n_scalars = 3;
    out->flags = SGD_OPTIM_TWO_PASS;
}

static int dadapt_sgd_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                           const sgd_optim_step_args *a)
{
    if (a->pass == 0 && a->call == 0) {
        if (a->step == 1) /* the first gradient's norm, without weight decay (as the reference) */
            b->sc[DS_G0] = isnan(a->grad_sumsq) ? 0.0 : sqrt(a->grad_sumsq);
        b->work[PW_D] = b->sc[DS_D];
        b->work[PW_NUM] = b->work[PW_DEN] = 0.0;
    }
    const double g0 = b->sc[DS_G0], dlr = g0 > 0.0 ? b->work[PW_D] * lr / g0 : 0.0;
    sgd__kargs k = sgd__kargs_make(b, a, DG_MAXIMIZE, lr, a->weight_decay);
    const sgd__ktab *kt = sgd__kern();
    if (a->pass == 0) {
        k.c[0] = (float)dlr;
        sgd__knorms nm = {0, 0, 0, 0};
        kt->dsgd_acc(a->step == 1, p, g, slots[0], slots[1], n, &k, &nm);
        if (lr > 0.0) {
            b->work[PW_NUM] += dlr * nm.a;
            b->work[PW_DEN] += nm.b;
        }
        return 0;
    }
    if (a->call == 0) {
        b->work[PW_SKIP] = b->work[PW_DEN] == 0.0;
        if (b->work[PW_SKIP] == 0.0) {
            double nw = b->sc[DS_NUMW] + b->work[PW_NUM];
            if (a->base_lr > 0.0)
                b->sc[DS_D] = grow(b->sc[DS_D], 2.0 * nw / sqrt(b->work[PW_DEN]), b->hp[DG_GROWTH]);
            b->sc[DS_NUMW] = nw;
        }
    }
    if (b->work[PW_SKIP] != 0.0)
        return 0;
    const double mom = b->hp[DG_MOMENTUM];
    k.c[0] = (float)mom;
    k.c[1] = (float)(1.0 - mom);
    kt->dsgd_apply(p, slots[0], slots[1], n, &k);
    return 0;
}

const sgd__kind sgd__kind_dadapt_sgd = {
    .name = "dadapt_sgd",
    .lr_default = 1.0,
    .hp = hp_dadapt_sgd,
    .n_hp = SGD__N(hp_dadapt_sgd),
    .layout = dadapt_sgd_layout,
    .init = dadapt_init,
    .step = dadapt_sgd_step,
    .check_scalars = dadapt_check_scalars,
};

/* --------------------------------------------------------------------- dog */

enum { DO_REPS_REL, DO_EPS, DO_INIT_ETA, DO_MAXIMIZE };
enum { DOS_RBAR, DOS_G };
enum { DOW_PP, DOW_DIST, DOW_GG, DOW_ETA };

static const sgd__hp hp_dog[] = {
    {"reps_rel", 1e-6, 0.0, INFINITY, SGD_OPTIM_HPARAM_LOWER_OPEN},
    SGD__HP_NONNEG("eps", 1e-8),
    SGD__HP_NONNEG("init_eta", 0.0), /* 0: none (the reference's None) */
    SGD__HP_MAXIMIZE,
};

static void dog_layout(sgd__bi *b, sgd__layout *out)
{
    (void)b;
    out->slot_names[0] = "x0";
    out->n_slots = 1;
    out->n_scalars = 2;
    out->flags = SGD_OPTIM_TWO_PASS;
}

static int dog_check_scalars(const sgd__bi *b, const double *sc)
{
    (void)b;
    if (sc[DOS_RBAR] < 0.0 || sc[DOS_G] < 0.0)
        return sgd__err(SGD_ERANGE, "scalars [%g, %g]: rbar and G must be >= 0", sc[DOS_RBAR], sc[DOS_G]);
    return 0;
}

/* eta = lr rbar / sqrt(G), rbar = max distance from x0 (reps_rel (1 + ||x0||) at first), G = sum ||g||^2 + eps */
static int dog_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                    const sgd_optim_step_args *a)
{
    const bool first = a->step == 1;
    sgd__kargs k = sgd__kargs_make(b, a, DO_MAXIMIZE, lr, a->weight_decay);
    const sgd__ktab *kt = sgd__kern();
    if (a->pass == 0) {
        if (a->call == 0)
            b->work[DOW_PP] = b->work[DOW_DIST] = b->work[DOW_GG] = 0.0;
        sgd__knorms nm = {0, 0, 0, 0};
        kt->dog_sums(first, p, g, slots[0], n, &k, &nm);
        b->work[DOW_PP] += nm.a;
        b->work[DOW_DIST] += nm.b;
        b->work[DOW_GG] += nm.c;
        return 0;
    }
    if (a->call == 0) {
        if (first) {
            b->sc[DOS_RBAR] = b->hp[DO_REPS_REL] * (1.0 + sqrt(b->work[DOW_PP]));
            b->sc[DOS_G] = b->work[DOW_GG] + b->hp[DO_EPS];
        } else {
            double dist = sqrt(b->work[DOW_DIST]);
            b->sc[DOS_RBAR] = b->sc[DOS_RBAR] > dist ? b->sc[DOS_RBAR] : dist;
            b->sc[DOS_G] += b->work[DOW_GG];
        }
        b->work[DOW_ETA] = b->sc[DOS_G] > 0.0 ? b->sc[DOS_RBAR] / sqrt(b->sc[DOS_G]) : 0.0;
    }
    double eta = lr * b->work[DOW_ETA];
    if (first && b->hp[DO_INIT_ETA] > 0.0)
        eta = b->hp[DO_INIT_ETA] * a->lr_scale;
    k.lr = (float)eta;
    sgd__kern()->sgd(SGD__SGD_PLAIN, p, g, NULL, n, &k);
    return 0;
}

const sgd__kind sgd__kind_dog = {
    .name = "dog",
    .lr_default = 1.0,
    .hp = hp_dog,
    .n_hp = SGD__N(hp_dog),
    .layout = dog_layout,
    .step = dog_step,
    .check_scalars = dog_check_scalars,
};
