/*
 * Layer-wise trust ratios: LAMB (You et al. 2019, "Large Batch Optimization
 * for Deep Learning: Training BERT in 76 minutes", Algorithm 2, phi the
 * identity) and LARS (You et al. 2017, "Large Batch Training of
 * Convolutional Networks", Algorithm 1). One ratio per call of the step: per
 * tensor once sgd_optim_set_tensors() has told the optimizer the arena's
 * tensors (the trainer does), per group range otherwise.
 * SPDX-License-Identifier: MIT
 */
#include "kind.h"

/* ------------------------------------------------------------------- lamb */

enum { LB_BETA1, LB_BETA2, LB_EPS, LB_BIAS_CORRECTION, LB_MAXIMIZE };

static const sgd__hp hp_lamb[] = {
    {"beta1", 0.9, 0.0, 1.0, SGD_OPTIM_HPARAM_UPPER_OPEN | SGD_OPTIM_HPARAM_MOMENTUM},
    {"beta2", 0.999, 0.0, 1.0, SGD_OPTIM_HPARAM_UPPER_OPEN},
    SGD__HP_NONNEG("eps", 1e-6),
    SGD__HP_BOOL("bias_correction", 1.0, 0),
    SGD__HP_MAXIMIZE,
};

static void lamb_layout(sgd__bi *b, sgd__layout *out)
{
    (void)b;
    out->slot_names[0] = "exp_avg";
    out->slot_names[1] = "exp_avg_sq";
    out->n_slots = 2;
}

/*
 * m, v as Adam; u = mhat / (sqrt(vhat) + eps) + wd p; p -= lr r u with
 * r = ||p|| / ||u|| over the range (1 when either norm is 0).
 */
static int lamb_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                     const sgd_optim_step_args *a)
{
    const double t = (double)a->step, b1 = b->hp[LB_BETA1], b2 = b->hp[LB_BETA2];
    const bool bc = b->hp[LB_BIAS_CORRECTION] != 0.0;
    sgd__kargs k = sgd__kargs_make(b, a, LB_MAXIMIZE, lr, 0.0);
    k.c[0] = (float)b1;
    k.c[1] = (float)(1.0 - b1);
    k.c[2] = (float)b2;
    k.c[3] = (float)(1.0 - b2);
    k.c[4] = (float)(bc ? 1.0 / (1.0 - pow(b1, t)) : 1.0);
    k.c[5] = (float)(bc ? 1.0 / sqrt(1.0 - pow(b2, t)) : 1.0);
    k.c[6] = (float)b->hp[LB_EPS];
    k.c[7] = (float)a->weight_decay;
    sgd__knorms nm = {0, 0, 0, 0};
    const sgd__ktab *kt = sgd__kern();
    kt->lamb_moments(p, g, slots[0], slots[1], n, &k, &nm);
    double r = (nm.a > 0.0 && nm.b > 0.0) ? sqrt(nm.a) / sqrt(nm.b) : 1.0;
    k.lr = (float)(lr * r);
    kt->lamb_apply(p, slots[0], slots[1], n, &k);
    return 0;
}

const sgd__kind sgd__kind_lamb = {
    .name = "lamb",
    .lr_default = 1e-3,
    .hp = hp_lamb,
    .n_hp = SGD__N(hp_lamb),
    .layout = lamb_layout,
    .step = lamb_step,
};

/* ------------------------------------------------------------------- lars */

enum { LR_MOMENTUM, LR_ETA, LR_EPS, LR_MAXIMIZE };

static const sgd__hp hp_lars[] = {
    {"momentum", 0.9, 0.0, 1.0, SGD_OPTIM_HPARAM_UPPER_OPEN | SGD_OPTIM_HPARAM_MOMENTUM},
    {"eta", 1e-3, 0.0, INFINITY, SGD_OPTIM_HPARAM_LOWER_OPEN},
    SGD__HP_NONNEG("eps", 0.0),
    SGD__HP_MAXIMIZE,
};

static void lars_layout(sgd__bi *b, sgd__layout *out)
{
    (void)b;
    out->slot_names[0] = "momentum_buffer";
    out->n_slots = 1;
}

/*
 * local_lr = eta ||p|| / (||g|| + wd ||p|| + eps) over the range (1 when a
 * norm is 0); buf = momentum buf + lr local_lr (g + wd p); p -= buf.
 */
static int lars_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                     const sgd_optim_step_args *a)
{
    sgd__kargs k = sgd__kargs_make(b, a, LR_MAXIMIZE, lr, a->weight_decay);
    sgd__knorms nm = {0, 0, 0, 0};
    const sgd__ktab *kt = sgd__kern();
    kt->norms_pg(p, g, n, &k, &nm);
    double wn = sqrt(nm.a), gn = sqrt(nm.b), local = 1.0;
    if (wn > 0.0 && gn > 0.0)
        local = b->hp[LR_ETA] * wn / (gn + a->weight_decay * wn + b->hp[LR_EPS]);
    k.lr = (float)(lr * local);
    k.c[0] = (float)b->hp[LR_MOMENTUM];
    kt->lars(0, p, g, slots[0], n, &k);
    return 0;
}

const sgd__kind sgd__kind_lars = {
    .name = "lars",
    .lr_default = NAN,
    .hp = hp_lars,
    .n_hp = SGD__N(hp_lars),
    .layout = lars_layout,
    .step = lars_step,
};
