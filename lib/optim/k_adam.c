/*
 * The Adam family: torch.optim.Adam, AdamW, NAdam, RAdam and Adamax 1.13.
 * The per-step scalars (bias corrections, 1 - beta, NAdam's momentum
 * schedule, RAdam's rectification) are computed in double and rounded once,
 * as torch computes them in Python floats.
 * SPDX-License-Identifier: MIT
 */
#include "kind.h"

#define HP_BETA1(def) {"beta1", def, 0.0, 1.0, SGD_OPTIM_HPARAM_UPPER_OPEN | SGD_OPTIM_HPARAM_MOMENTUM}
#define HP_BETA2(def) {"beta2", def, 0.0, 1.0, SGD_OPTIM_HPARAM_UPPER_OPEN}

/* ------------------------------------------------------------ adam, adamw */

enum { A_BETA1, A_BETA2, A_EPS, A_AMSGRAD, A_MAXIMIZE };

static const sgd__hp hp_adam[] = {
    HP_BETA1(0.9),
    HP_BETA2(0.999),
    SGD__HP_NONNEG("eps", 1e-8),
    SGD__HP_BOOL("amsgrad", 0.0, SGD_OPTIM_HPARAM_FIXED),
    SGD__HP_MAXIMIZE,
};

static void adam_layout(sgd__bi *b, sgd__layout *out)
{
    out->slot_names[0] = "exp_avg";
    out->slot_names[1] = "exp_avg_sq";
    out->n_slots = 2;
    if (b->hp[A_AMSGRAD] != 0.0) {
        out->slot_names[2] = "max_exp_avg_sq";
        out->n_slots = 3;
    }
}

static int adam_step_common(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                            const sgd_optim_step_args *a, bool decoupled)
{
    const double t = (double)a->step, b1 = b->hp[A_BETA1], b2 = b->hp[A_BETA2];
    sgd__kargs k = sgd__kargs_make(b, a, A_MAXIMIZE, lr, decoupled ? 0.0 : a->weight_decay);
    if (decoupled)
        k.decay = (float)(1.0 - lr * a->weight_decay);
    k.c[0] = (float)b1;
    k.c[1] = (float)(1.0 - b1);
    k.c[2] = (float)b2;
    k.c[3] = (float)(1.0 - b2);
    k.c[4] = (float)(lr / (1.0 - pow(b1, t)));
    k.c[5] = (float)(1.0 / sqrt(1.0 - pow(b2, t)));
    k.c[6] = (float)b->hp[A_EPS];
    sgd__kern()->adam(p, g, slots[0], slots[1], b->hp[A_AMSGRAD] != 0.0 ? slots[2] : NULL, n, &k);
    return 0;
}

static int adam_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                     const sgd_optim_step_args *a)
{
    return adam_step_common(b, p, g, slots, n, lr, a, false);
}

static int adamw_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                      const sgd_optim_step_args *a)
{
    return adam_step_common(b, p, g, slots, n, lr, a, true);
}

const sgd__kind sgd__kind_adam = {
    .name = "adam",
    .lr_default = 1e-3,
    .hp = hp_adam,
    .n_hp = SGD__N(hp_adam),
    .layout = adam_layout,
    .step = adam_step,
};

const sgd__kind sgd__kind_adamw = {
    .name = "adamw",
    .lr_default = 1e-3,
    .wd_default = 1e-2,
    .hp = hp_adam,
    .n_hp = SGD__N(hp_adam),
    .layout = adam_layout,
    .step = adamw_step,
};

/* Two slots named as torch names them. */
static void moments_layout(sgd__bi *b, sgd__layout *out)
{
    (void)b;
    out->slot_names[0] = "exp_avg";
    out->slot_names[1] = "exp_avg_sq";
    out->n_slots = 2;
}

/* ------------------------------------------------------------------ nadam */

enum { N_BETA1, N_BETA2, N_EPS, N_MOMENTUM_DECAY, N_MAXIMIZE };
enum { SC_MU_PRODUCT };               /* torch's state['mu_product'], starting at 1 */
enum { W_MU, W_MU_NEXT, W_PRODUCT };  /* latched at the first call of a step */

static const sgd__hp hp_nadam[] = {
    HP_BETA1(0.9),
    HP_BETA2(0.999),
    SGD__HP_NONNEG("eps", 1e-8),
    SGD__HP_NONNEG("momentum_decay", 4e-3),
    SGD__HP_MAXIMIZE,
};

static void nadam_layout(sgd__bi *b, sgd__layout *out)
{
    moments_layout(b, out);
    out->n_scalars = 1;
}

static void nadam_init(sgd__bi *b, float *const *slots, size_t n)
{
    (void)slots, (void)n;
    b->sc[SC_MU_PRODUCT] = 1.0;
}

static int nadam_check_scalars(const sgd__bi *b, const double *sc)
{
    (void)b;
    if (!(sc[SC_MU_PRODUCT] >= 0.0 && sc[SC_MU_PRODUCT] <= 1.0))
        return sgd__err(SGD_ERANGE, "scalars[0]=%g: mu_product must be in [0, 1]", sc[SC_MU_PRODUCT]);
    return 0;
}

static int nadam_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                      const sgd_optim_step_args *a)
{
    const double t = (double)a->step, b1 = b->hp[N_BETA1], b2 = b->hp[N_BETA2], md = b->hp[N_MOMENTUM_DECAY];
    if (a->call == 0) {
        double mu = b1 * (1.0 - 0.5 * pow(0.96, t * md));
        double mu_next = b1 * (1.0 - 0.5 * pow(0.96, (t + 1.0) * md));
        b->sc[SC_MU_PRODUCT] *= mu;
        b->work[W_MU] = mu;
        b->work[W_MU_NEXT] = mu_next;
        b->work[W_PRODUCT] = b->sc[SC_MU_PRODUCT];
    }
    const double mu = b->work[W_MU], mu_next = b->work[W_MU_NEXT], prod = b->work[W_PRODUCT];
    sgd__kargs k = sgd__kargs_make(b, a, N_MAXIMIZE, lr, a->weight_decay);
    k.c[0] = (float)b1;
    k.c[1] = (float)(1.0 - b1);
    k.c[2] = (float)b2;
    k.c[3] = (float)(1.0 - b2);
    k.c[4] = (float)(1.0 / (1.0 - pow(b2, t)));
    k.c[5] = (float)b->hp[N_EPS];
    k.c[6] = (float)(lr * (1.0 - mu) / (1.0 - prod));
    /* torch 1.13: mu_product_next = mu_product * mu * mu_next (mu counted twice; torch 2.0 drops the extra mu) */
    k.c[7] = (float)(lr * mu_next / (1.0 - prod * mu * mu_next));
    sgd__kern()->nadam(p, g, slots[0], slots[1], n, &k);
    return 0;
}

const sgd__kind sgd__kind_nadam = {
    .name = "nadam",
    .lr_default = 2e-3,
    .hp = hp_nadam,
    .n_hp = SGD__N(hp_nadam),
    .layout = nadam_layout,
    .init = nadam_init,
    .step = nadam_step,
    .check_scalars = nadam_check_scalars,
};

/* ------------------------------------------------------------------ radam */

enum { R_BETA1, R_BETA2, R_EPS, R_MAXIMIZE };

static const sgd__hp hp_radam[] = {
    HP_BETA1(0.9),
    HP_BETA2(0.999),
    SGD__HP_NONNEG("eps", 1e-8),
    SGD__HP_MAXIMIZE,
};

static int radam_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                      const sgd_optim_step_args *a)
{
    const double t = (double)a->step, b1 = b->hp[R_BETA1], b2 = b->hp[R_BETA2];
    const double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
    const double rho_inf = 2.0 / (1.0 - b2) - 1.0;
    const double rho_t = rho_inf - 2.0 * t * pow(b2, t) / bc2;
    sgd__kargs k = sgd__kargs_make(b, a, R_MAXIMIZE, lr, a->weight_decay);
    k.c[0] = (float)b1;
    k.c[1] = (float)(1.0 - b1);
    k.c[2] = (float)b2;
    k.c[3] = (float)(1.0 - b2);
    k.c[4] = (float)b->hp[R_EPS];
    if (rho_t > 5.0) {
        double rect = sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t));
        k.c[5] = (float)(lr * rect * sqrt(bc2) / bc1);
        k.c[6] = 1.0f;
    } else {
        k.c[5] = (float)(lr / bc1);
        k.c[6] = 0.0f;
    }
    sgd__kern()->radam(p, g, slots[0], slots[1], n, &k);
    return 0;
}

const sgd__kind sgd__kind_radam = {
    .name = "radam",
    .lr_default = 1e-3,
    .hp = hp_radam,
    .n_hp = SGD__N(hp_radam),
    .layout = moments_layout,
    .step = radam_step,
};

/* ----------------------------------------------------------------- adamax */

enum { X_BETA1, X_BETA2, X_EPS, X_MAXIMIZE };

static const sgd__hp hp_adamax[] = {
    HP_BETA1(0.9),
    HP_BETA2(0.999),
    SGD__HP_NONNEG("eps", 1e-8),
    SGD__HP_MAXIMIZE,
};

static void adamax_layout(sgd__bi *b, sgd__layout *out)
{
    (void)b;
    out->slot_names[0] = "exp_avg";
    out->slot_names[1] = "exp_inf";
    out->n_slots = 2;
}

static int adamax_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                       const sgd_optim_step_args *a)
{
    const double t = (double)a->step, b1 = b->hp[X_BETA1];
    sgd__kargs k = sgd__kargs_make(b, a, X_MAXIMIZE, lr, a->weight_decay);
    k.c[0] = (float)b1;
    k.c[1] = (float)(1.0 - b1);
    k.c[2] = (float)b->hp[X_BETA2];
    k.c[3] = (float)b->hp[X_EPS];
    k.c[4] = (float)(lr / (1.0 - pow(b1, t)));
    sgd__kern()->adamax(p, g, slots[0], slots[1], n, &k);
    return 0;
}

const sgd__kind sgd__kind_adamax = {
    .name = "adamax",
    .lr_default = 2e-3,
    .hp = hp_adamax,
    .n_hp = SGD__N(hp_adamax),
    .layout = adamax_layout,
    .step = adamax_step,
};
