/*
 * The rmsprop family: torch.optim.RMSprop 1.13 (centered, momentum).
 * SPDX-License-Identifier: MIT
 */
#include "kind.h"

enum { ALPHA, EPS, MOMENTUM, CENTERED, MAXIMIZE };
enum { S_SQ, S_GAVG, S_BUF };

static const sgd__hp hp_rmsprop[] = {
    SGD__HP_UNIT("alpha", 0.99),
    SGD__HP_NONNEG("eps", 1e-8),
    {"momentum", 0.0, 0.0, INFINITY, SGD_OPTIM_HPARAM_MOMENTUM},
    SGD__HP_BOOL("centered", 0.0, SGD_OPTIM_HPARAM_FIXED),
    SGD__HP_MAXIMIZE,
};

static sgd_status check(const sgd__bi *b, const double *hp)
{
    if (b != NULL && hp[MOMENTUM] != 0.0 && b->slot[S_BUF] < 0)
        return sgd__err(SGD_ESTATE,
                        "momentum=%g: the optimizer was created with momentum=0 and has no momentum buffer; create it "
                        "with momentum > 0 to change momentum at run time",
                        hp[MOMENTUM]);
    return SGD_OK;
}

static void layout(sgd__bi *b, sgd__layout *out)
{
    uint32_t k = 0;
    b->slot[S_SQ] = (int32_t)k;
    out->slot_names[k++] = "square_avg";
    if (b->hp[CENTERED] != 0.0) {
        b->slot[S_GAVG] = (int32_t)k;
        out->slot_names[k++] = "grad_avg";
    }
    if (b->hp[MOMENTUM] > 0.0) {
        b->slot[S_BUF] = (int32_t)k;
        out->slot_names[k++] = "momentum_buffer";
    }
    out->n_slots = k;
}

static uint32_t hp_flags(const sgd__bi *b, uint32_t i, uint32_t flags)
{
    if (i == MOMENTUM && b->slot[S_BUF] < 0)
        flags |= SGD_OPTIM_HPARAM_FIXED;
    return flags;
}

static int step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                const sgd_optim_step_args *a)
{
    sgd__kargs k = sgd__kargs_make(b, a, MAXIMIZE, lr, a->weight_decay);
    k.c[0] = (float)b->hp[ALPHA];
    k.c[1] = (float)(1.0 - b->hp[ALPHA]);
    k.c[2] = (float)b->hp[EPS];
    k.c[3] = (float)b->hp[MOMENTUM];
    /* torch uses the buffer only while momentum > 0 */
    float *buf = (b->slot[S_BUF] >= 0 && b->hp[MOMENTUM] > 0.0) ? slots[b->slot[S_BUF]] : NULL;
    sgd__kern()->rmsprop(p, g, slots[b->slot[S_SQ]], b->slot[S_GAVG] >= 0 ? slots[b->slot[S_GAVG]] : NULL, buf, n,
                         &k);
    return 0;
}

const sgd__kind sgd__kind_rmsprop = {
    .name = "rmsprop",
    .lr_default = 1e-2,
    .hp = hp_rmsprop,
    .n_hp = SGD__N(hp_rmsprop),
    .check = check,
    .layout = layout,
    .hp_flags = hp_flags,
    .step = step,
};
