/*
 * Sign-based and averaging methods: torch.optim.Rprop and torch.optim.ASGD
 * 1.13, and Lion (Chen et al. 2023, "Symbolic Discovery of Optimization
 * Algorithms", Algorithm 2; google/automl lion and lucidrains/lion-pytorch).
 * SPDX-License-Identifier: MIT
 */
#include "kind.h"

/* ------------------------------------------------------------------ rprop */

enum { RP_ETA_MINUS, RP_ETA_PLUS, RP_SMIN, RP_SMAX, RP_MAXIMIZE };

static const sgd__hp hp_rprop[] = {
    {"eta_minus", 0.5, 0.0, 1.0, SGD_OPTIM_HPARAM_LOWER_OPEN | SGD_OPTIM_HPARAM_UPPER_OPEN},
    {"eta_plus", 1.2, 1.0, INFINITY, SGD_OPTIM_HPARAM_LOWER_OPEN},
    SGD__HP_NONNEG("step_size_min", 1e-6),
    SGD__HP_NONNEG("step_size_max", 50.0),
    SGD__HP_MAXIMIZE,
};

static sgd_status rprop_check(const sgd__bi *b, const double *hp)
{
    (void)b;
    if (hp[RP_SMIN] > hp[RP_SMAX])
        return sgd__err(SGD_ERANGE, "step_size_min=%g with step_size_max=%g: the minimum must not exceed the maximum",
                        hp[RP_SMIN], hp[RP_SMAX]);
    return SGD_OK;
}

static void rprop_layout(sgd__bi *b, sgd__layout *out)
{
    (void)b;
    out->slot_names[0] = "prev";
    out->slot_names[1] = "step_size";
    out->n_slots = 2;
}

/* The step sizes start at the first step's learning rate (torch: the group's lr when the state is made). */
static int rprop_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                      const sgd_optim_step_args *a)
{
    sgd__kargs k = sgd__kargs_make(b, a, RP_MAXIMIZE, lr, a->weight_decay);
    k.c[0] = (float)b->hp[RP_ETA_MINUS];
    k.c[1] = (float)b->hp[RP_ETA_PLUS];
    k.c[2] = (float)b->hp[RP_SMIN];
    k.c[3] = (float)b->hp[RP_SMAX];
    k.c[4] = a->step == 1 ? 1.0f : 0.0f;
    sgd__kern()->rprop(p, g, slots[0], slots[1], n, &k);
    return 0;
}

const sgd__kind sgd__kind_rprop = {
    .name = "rprop",
    .lr_default = 1e-2,
    .hp = hp_rprop,
    .n_hp = SGD__N(hp_rprop),
    .check = rprop_check,
    .layout = rprop_layout,
    .step = rprop_step,
};

/* ------------------------------------------------------------------- asgd */

enum { AS_LAMBD, AS_ALPHA, AS_T0, AS_MAXIMIZE };
enum { SC_PREV_LR }; /* the learning rate (before the group's multiplier) of the last step */

static const sgd__hp hp_asgd[] = {
    SGD__HP_NONNEG("lambd", 1e-4),
    SGD__HP_NONNEG("alpha", 0.75),
    SGD__HP_NONNEG("t0", 1e6),
    SGD__HP_MAXIMIZE,
};

static void asgd_layout(sgd__bi *b, sgd__layout *out)
{
    (void)b;
    out->slot_names[0] = "ax";
    out->n_slots = 1;
    out->n_scalars = 1;
}

static int asgd_check_scalars(const sgd__bi *b, const double *sc)
{
    (void)b;
    if (!(sc[SC_PREV_LR] >= 0.0) || !isfinite(sc[SC_PREV_LR]))
        return sgd__err(SGD_ERANGE, "scalars[0]=%g: the last learning rate must be a finite number >= 0",
                        sc[SC_PREV_LR]);
    return 0;
}

/*
 * torch keeps eta and mu per tensor and computes them at the end of a step
 * from that step's lr and count: at step t > 1, eta = L / (1 + lambd L
 * (t - 1))^alpha with L the previous step's learning rate, and
 * mu = 1 / max(1, t - 1 - t0); at t = 1, eta = lr and mu = 1.
 */
static int asgd_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                     const sgd_optim_step_args *a)
{
    const double t = (double)a->step, lambd = b->hp[AS_LAMBD];
    double eta = lr, mu = 1.0;
    if (a->step > 1) {
        double prev = b->sc[SC_PREV_LR] * a->lr_scale;
        eta = prev / pow(1.0 + lambd * prev * (t - 1.0), b->hp[AS_ALPHA]);
        double d = t - 1.0 - b->hp[AS_T0];
        mu = 1.0 / (d > 1.0 ? d : 1.0);
    }
    sgd__kargs k = sgd__kargs_make(b, a, AS_MAXIMIZE, lr, a->weight_decay);
    k.decay = (float)(1.0 - lambd * eta);
    k.c[0] = (float)eta;
    k.c[1] = (float)mu;
    k.c[2] = mu == 1.0 ? 1.0f : 0.0f;
    sgd__kern()->asgd(p, g, slots[0], n, &k);
    if (a->call + 1 == a->calls)
        b->sc[SC_PREV_LR] = a->base_lr;
    return 0;
}

const sgd__kind sgd__kind_asgd = {
    .name = "asgd",
    .lr_default = 1e-2,
    .hp = hp_asgd,
    .n_hp = SGD__N(hp_asgd),
    .layout = asgd_layout,
    .step = asgd_step,
    .check_scalars = asgd_check_scalars,
};

/* ------------------------------------------------------------------- lion */

enum { L_BETA1, L_BETA2, L_MAXIMIZE };

static const sgd__hp hp_lion[] = {
    {"beta1", 0.9, 0.0, 1.0, SGD_OPTIM_HPARAM_UPPER_OPEN | SGD_OPTIM_HPARAM_MOMENTUM},
    {"beta2", 0.99, 0.0, 1.0, SGD_OPTIM_HPARAM_UPPER_OPEN},
    SGD__HP_MAXIMIZE,
};

static void lion_layout(sgd__bi *b, sgd__layout *out)
{
    (void)b;
    out->slot_names[0] = "exp_avg";
    out->n_slots = 1;
}

/* c = beta1 m + (1 - beta1) g;  p = p (1 - lr wd) - lr sign(c);  m = beta2 m + (1 - beta2) g */
static int lion_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                     const sgd_optim_step_args *a)
{
    sgd__kargs k = sgd__kargs_make(b, a, L_MAXIMIZE, lr, 0.0);
    k.decay = (float)(1.0 - lr * a->weight_decay);
    k.c[0] = (float)b->hp[L_BETA1];
    k.c[1] = (float)(1.0 - b->hp[L_BETA1]);
    k.c[2] = (float)b->hp[L_BETA2];
    k.c[3] = (float)(1.0 - b->hp[L_BETA2]);
    sgd__kern()->lion(p, g, slots[0], n, &k);
    return 0;
}

const sgd__kind sgd__kind_lion = {
    .name = "lion",
    .lr_default = 1e-4,
    .hp = hp_lion,
    .n_hp = SGD__N(hp_lion),
    .layout = lion_layout,
    .step = lion_step,
};
