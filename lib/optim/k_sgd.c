/*
 * The sgd family: torch.optim.SGD 1.13 (momentum, dampening, nesterov).
 * SPDX-License-Identifier: MIT
 */
#include "kind.h"

enum { MOMENTUM, DAMPENING, NESTEROV, MAXIMIZE };

/* scalar state: whether the momentum buffer is set (torch's momentum_buffer is not None) */
enum { SC_READY };
/* work: the buffer's state latched at the first call of a step */
enum { W_FIRST };

static const sgd__hp hp_sgd[] = {
    {"momentum", 0.0, 0.0, INFINITY, SGD_OPTIM_HPARAM_MOMENTUM},
    SGD__HP_UNIT("dampening", 0.0),
    SGD__HP_BOOL("nesterov", 0.0, 0),
    SGD__HP_MAXIMIZE,
};

/* torch: "Nesterov momentum requires a momentum and zero dampening". */
static sgd_status check(const sgd__bi *b, const double *hp)
{
    if (b != NULL && hp[MOMENTUM] != 0.0 && b->slot[0] < 0)
        return sgd__err(SGD_ESTATE,
                        "momentum=%g: the optimizer was created with momentum=0 and has no momentum buffer; create it "
                        "with momentum > 0 to change momentum at run time",
                        hp[MOMENTUM]);
    if (hp[NESTEROV] != 0.0 && !(hp[MOMENTUM] > 0.0))
        return sgd__err(SGD_ERANGE, "nesterov=1 with momentum=%g: nesterov momentum requires momentum > 0",
                        hp[MOMENTUM]);
    if (hp[NESTEROV] != 0.0 && hp[DAMPENING] != 0.0)
        return sgd__err(SGD_ERANGE, "nesterov=1 with dampening=%g: nesterov momentum requires dampening=0",
                        hp[DAMPENING]);
    return SGD_OK;
}

static void layout(sgd__bi *b, sgd__layout *out)
{
    if (b->hp[MOMENTUM] > 0.0) {
        b->slot[0] = 0;
        out->n_slots = 1;
        out->slot_names[0] = "momentum_buffer";
        out->n_scalars = 1;
    }
}

/* Without a buffer, momentum can only stay 0: listed as fixed. */
static uint32_t hp_flags(const sgd__bi *b, uint32_t i, uint32_t flags)
{
    if (i == MOMENTUM && b->slot[0] < 0)
        flags |= SGD_OPTIM_HPARAM_FIXED;
    return flags;
}

static int step(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                const sgd_optim_step_args *a)
{
    sgd__kargs k = sgd__kargs_make(b, a, MAXIMIZE, lr, a->weight_decay);
    int mode = SGD__SGD_PLAIN;
    const double mom = b->hp[MOMENTUM];
    if (mom != 0.0 && b->slot[0] >= 0) {
        if (a->call == 0)
            b->work[W_FIRST] = b->sc[SC_READY] == 0.0;
        bool first = b->work[W_FIRST] != 0.0;
        if (b->hp[NESTEROV] != 0.0)
            mode = first ? SGD__SGD_NEST_FIRST : SGD__SGD_NEST;
        else
            mode = first ? SGD__SGD_MOM_FIRST : SGD__SGD_MOM;
        if (a->call + 1 == a->calls)
            b->sc[SC_READY] = 1.0;
    }
    k.c[0] = (float)mom;
    k.c[1] = (float)(1.0 - b->hp[DAMPENING]);
    sgd__kern()->sgd(mode, p, g, b->slot[0] >= 0 ? slots[0] : NULL, n, &k);
    return 0;
}

static int check_scalars(const sgd__bi *b, const double *sc)
{
    (void)b;
    if (sc[SC_READY] != 0.0 && sc[SC_READY] != 1.0)
        return sgd__err(SGD_ERANGE, "scalars[0]=%g: the momentum buffer flag must be 0 or 1", sc[SC_READY]);
    return 0;
}

const sgd__kind sgd__kind_sgd = {
    .name = "sgd",
    .lr_default = NAN,
    .hp = hp_sgd,
    .n_hp = SGD__N(hp_sgd),
    .check = check,
    .layout = layout,
    .hp_flags = hp_flags,
    .step = step,
    .check_scalars = check_scalars,
};
