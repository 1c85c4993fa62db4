/*
 * libsgdlab optimizers: the descriptor of a built-in kind. Each family file
 * (k_sgd.c, k_adam.c, ...) defines the descriptors of its kinds; registry.c
 * lists them and does everything that is the same for all of them (spec
 * parsing, bounds, get/set, scalar state, the vtable) through the public
 * sgd_optim_vtable, as a host optimizer would. docs/internals.md has the
 * checklist for adding a kind.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_OPTIM_KIND_H
#define SGDLAB_OPTIM_KIND_H

#include "core/internal.h"
#include "kernels.h"
#include "sgdlab/optim.h"

#include <math.h>
#include <string.h>

#define SGD__KIND_MAX_HP 16
#define SGD__KIND_MAX_SC 16

/* One hyperparameter of a kind (not lr or weight_decay, which are the library's). */
typedef struct sgd__hp {
    const char *name;
    double def;
    double lo, hi;
    uint32_t flags; /* SGD_OPTIM_HPARAM_* */
} sgd__hp;

typedef struct sgd__bi sgd__bi;

/* What a configuration of a kind allocates: slots and scalar state. */
typedef struct sgd__layout {
    uint32_t n_slots;
    const char *slot_names[SGD_OPTIM_MAX_SLOTS];
    uint32_t n_scalars;
    uint32_t flags; /* vtable flags besides SGD_OPTIM_FUSED_CLIP (SGD_OPTIM_TWO_PASS) */
} sgd__layout;

typedef struct sgd__kind {
    const char *name;
    double lr_default; /* NAN: required (torch's SGD) */
    double wd_default;
    const sgd__hp *hp;
    uint32_t n_hp;
    /*
     * Cross-checks of a full set of values: at creation (b NULL) and by
     * sgd_optim_set() (b the optimizer's, hp its values with the new one).
     * Messages name key and value, without the function (the caller adds
     * it). NULL: none.
     */
    sgd_status (*check)(const sgd__bi *b, const double *hp);
    /* Slots and scalars of the configuration in b->hp (also sets the kind's slot indices in b->slot). */
    void (*layout)(sgd__bi *b, sgd__layout *out);
    /* Optional: adjusts the published flags of hp[i] for this configuration (e.g. FIXED). */
    uint32_t (*hp_flags)(const sgd__bi *b, uint32_t i, uint32_t flags);
    /* Optional: initial state after the slots were zeroed and b->sc cleared (creation and reset). */
    void (*init)(sgd__bi *b, float *const *slots, size_t n);
    /* The update of one range (or one pass over it, for SGD_OPTIM_TWO_PASS kinds). */
    int (*step)(sgd__bi *b, float *p, const float *g, float *const *slots, size_t n, double lr,
                const sgd_optim_step_args *a);
    /* Optional: accepts or refuses imported scalar state (SGD_ERANGE). */
    int (*check_scalars)(const sgd__bi *b, const double *sc);
    /* Optional: moves params between the training and the evaluation point (schedule-free). */
    int (*swap)(sgd__bi *b, float *p, float *const *slots, size_t n, int32_t to_eval);
} sgd__kind;

/* A built-in optimizer's settings and scalar state: the vtable's user pointer. */
struct sgd__bi {
    sgd_allocator alloc;
    const sgd__kind *k;
    double hp[SGD__KIND_MAX_HP];
    double sc[SGD__KIND_MAX_SC];   /* scalar state, exported as "scalars" */
    double work[SGD__KIND_MAX_SC]; /* per-step scratch (sums of a two-pass step); not state */
    uint32_t n_sc;
    int32_t slot[SGD_OPTIM_MAX_SLOTS]; /* the kind's slot indices, -1 when absent */
    sgd__layout layout;
};

/* The gradient transform and L2 term every kernel applies (kernels.h). */
static inline sgd__kargs sgd__kargs_make(const sgd__bi *b, const sgd_optim_step_args *a, int maximize_index,
                                         double lr, double l2)
{
    sgd__kargs k;
    memset(&k, 0, sizeof k);
    k.cv = a->clip_value > 0.0 ? (float)a->clip_value : INFINITY;
    bool maximize = maximize_index >= 0 && b->hp[maximize_index] != 0.0;
    k.gs = (float)(maximize ? -a->grad_scale : a->grad_scale);
    k.wd = (float)l2;
    k.decay = 1.0f;
    k.lr = (float)lr;
    return k;
}

/* The kinds, in the order sgd_optim_builtin_name() lists them (registry.c). */
extern const sgd__kind sgd__kind_sgd, sgd__kind_adagrad, sgd__kind_rmsprop, sgd__kind_adam, sgd__kind_adamw,
    sgd__kind_nadam, sgd__kind_radam, sgd__kind_adamax, sgd__kind_adadelta, sgd__kind_rprop, sgd__kind_asgd,
    sgd__kind_lion, sgd__kind_lamb, sgd__kind_lars, sgd__kind_sgd_sf, sgd__kind_adamw_sf, sgd__kind_prodigy,
    sgd__kind_dadapt_adam, sgd__kind_dadapt_sgd, sgd__kind_dog;

/* Common table rows. */
#define SGD__HP_MAXIMIZE {"maximize", 0.0, 0.0, 1.0, SGD_OPTIM_HPARAM_BOOL}
#define SGD__HP_BOOL(name, def, fl) {name, def, 0.0, 1.0, SGD_OPTIM_HPARAM_BOOL | (fl)}
#define SGD__HP_NONNEG(name, def) {name, def, 0.0, INFINITY, 0}
#define SGD__HP_UNIT_OPEN(name, def, fl) {name, def, 0.0, 1.0, SGD_OPTIM_HPARAM_UPPER_OPEN | (fl)}
#define SGD__HP_UNIT(name, def) {name, def, 0.0, 1.0, 0}
#define SGD__N(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))

#endif /* SGDLAB_OPTIM_KIND_H */
