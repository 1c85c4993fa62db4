/*
 * The accumulator family: torch.optim.Adagrad and torch.optim.Adadelta 1.13.
 * SPDX-License-Identifier: MIT
 */
#include "kind.h"

/* ---------------------------------------------------------------- adagrad */

enum { AG_LR_DECAY, AG_IAV, AG_EPS, AG_MAXIMIZE };

static const sgd__hp hp_adagrad[] = {
    SGD__HP_NONNEG("lr_decay", 0.0),
    SGD__HP_NONNEG("initial_accumulator_value", 0.0),
    SGD__HP_NONNEG("eps", 1e-10),
    SGD__HP_MAXIMIZE,
};

static void adagrad_layout(sgd__bi *b, sgd__layout *out)
{
    (void)b;
    out->n_slots = 1;
    out->slot_names[0] = "sum";
}

/* sum starts at initial_accumulator_value (a new value applies at the next reset) */
static void adagrad_init(sgd__bi *b, float *const *slots, size_t n)
{
    float v = (float)b->hp[AG_IAV];
    if (v != 0.0f)
        for (size_t i = 0; i < n; i++)
            slots[0][i] = v;
}

static int adagrad_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                        const sgd_optim_step_args *a)
{
    double clr = lr / (1.0 + ((double)a->step - 1.0) * b->hp[AG_LR_DECAY]);
    sgd__kargs k = sgd__kargs_make(b, a, AG_MAXIMIZE, clr, a->weight_decay);
    k.c[0] = (float)b->hp[AG_EPS];
    sgd__kern()->adagrad(p, g, slots[0], n, &k);
    return 0;
}

const sgd__kind sgd__kind_adagrad = {
    .name = "adagrad",
    .lr_default = 1e-2,
    .hp = hp_adagrad,
    .n_hp = SGD__N(hp_adagrad),
    .layout = adagrad_layout,
    .init = adagrad_init,
    .step = adagrad_step,
};

/* --------------------------------------------------------------- adadelta */

enum { AD_RHO, AD_EPS, AD_MAXIMIZE };

static const sgd__hp hp_adadelta[] = {
    SGD__HP_UNIT("rho", 0.9),
    SGD__HP_NONNEG("eps", 1e-6),
    SGD__HP_MAXIMIZE,
};

static void adadelta_layout(sgd__bi *b, sgd__layout *out)
{
    (void)b;
    out->n_slots = 2;
    out->slot_names[0] = "square_avg";
    out->slot_names[1] = "acc_delta";
}

static int adadelta_step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                         const sgd_optim_step_args *a)
{
    sgd__kargs k = sgd__kargs_make(b, a, AD_MAXIMIZE, lr, a->weight_decay);
    k.c[0] = (float)b->hp[AD_RHO];
    k.c[1] = (float)(1.0 - b->hp[AD_RHO]);
    k.c[2] = (float)b->hp[AD_EPS];
    sgd__kern()->adadelta(p, g, slots[0], slots[1], n, &k);
    return 0;
}

const sgd__kind sgd__kind_adadelta = {
    .name = "adadelta",
    .lr_default = 1.0,
    .hp = hp_adadelta,
    .n_hp = SGD__N(hp_adadelta),
    .layout = adadelta_layout,
    .step = adadelta_step,
};
