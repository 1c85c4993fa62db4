/*
 * libsgdlab optimizers: internals shared by optim.c, builtin.c and kernels.c.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_OPTIM_INTERNAL_H
#define SGDLAB_OPTIM_INTERNAL_H

#include "core/internal.h"
#include "sgdlab/optim.h"

/* ------------------------------------------------------------ gradient scan */

/*
 * One read-only pass over the gradients, before anything is written:
 * the sum of squares (for the L2 norm), the largest magnitude, and, when
 * clip_value > 0, the sum of squares of the value-clipped gradients.
 * `sumsq` is not finite when a gradient is NaN or infinite (or so large that
 * a block's float sum overflowed): sgd__grad_scan_exact() then tells which.
 */
typedef struct sgd__gradstat {
    double sumsq;
    double sumsq_clipped; /* == sumsq when clip_value == 0 */
    float max_abs;        /* NaN-blind */
} sgd__gradstat;

void sgd__grad_scan(const float *g, size_t n, float clip_value, sgd__gradstat *out);

/* Cold path: index of the first non-finite gradient (n if none), and the sums in double. */
size_t sgd__grad_scan_exact(const float *g, size_t n, float clip_value, sgd__gradstat *out);

/* ---------------------------------------------------------------- kernels */

/*
 * Each kernel is one fused pass over n floats. Every kernel first forms the
 * gradient it uses as
 *     g = clamp(grads[i], -cv, cv) * gs
 * where cv is the value-clipping bound (+inf: none) and gs the norm-clipping
 * factor with maximize's sign folded in (-1 * scale for maximize).
 */
typedef struct sgd__kgrad {
    float cv; /* +inf: no value clipping */
    float gs; /* clip scale, negated for maximize */
} sgd__kgrad;

/* SGD. mode: see SGD__SGD_* */
enum {
    SGD__SGD_PLAIN = 0,     /* no momentum */
    SGD__SGD_MOM_FIRST = 1, /* buf = d; d = buf */
    SGD__SGD_MOM = 2,       /* buf = mom*buf + (1-damp)*d; d = buf */
    SGD__SGD_NEST_FIRST = 3,/* buf = d; d = d + mom*buf */
    SGD__SGD_NEST = 4       /* buf = mom*buf + (1-damp)*d; d = d + mom*buf */
};
void sgd__k_sgd(int mode, float *p, const float *g, float *buf, size_t n, sgd__kgrad kg, float lr, float wd,
                float momentum, float one_minus_dampening);

/* Adagrad: sum += g^2; p -= clr * g / (sqrt(sum) + eps). */
void sgd__k_adagrad(float *p, const float *g, float *sum, size_t n, sgd__kgrad kg, float clr, float wd, float eps);

/*
 * RMSprop. grad_avg is NULL unless centered; buf is NULL unless momentum > 0
 * was configured (it is then used even if momentum is now 0, as torch does
 * for momentum > 0 only: the caller passes buf = NULL when momentum == 0).
 */
void sgd__k_rmsprop(float *p, const float *g, float *square_avg, float *grad_avg, float *buf, size_t n,
                    sgd__kgrad kg, float lr, float wd, float alpha, float one_minus_alpha, float eps, float momentum);

/*
 * Adam / AdamW. max_sq is NULL unless amsgrad. decay multiplies p first
 * (AdamW: 1 - lr*wd; Adam: 1); l2 is added as l2*p to the gradient (Adam's
 * weight decay; AdamW: 0). step_size = lr / (1 - beta1^t),
 * inv_bc2_sqrt = 1 / sqrt(1 - beta2^t). The 1 - beta coefficients are
 * computed in double and rounded once, as torch does (1.0f - 0.999f is
 * 1.3e-5 off 0.001 in relative terms, enough to fail the fixtures).
 */
void sgd__k_adam(float *p, const float *g, float *m, float *v, float *max_sq, size_t n, sgd__kgrad kg,
                 float decay, float l2, float beta1, float one_minus_beta1, float beta2, float one_minus_beta2,
                 float step_size, float inv_bc2_sqrt, float eps);

/* clip_buf[i] = clamp(g[i], -cv, cv) * scale (for host optimizers without SGD_OPTIM_FUSED_CLIP). */
void sgd__k_clip_copy(float *out, const float *g, size_t n, float cv, float scale);

/* --------------------------------------------------------------- built-ins */

/*
 * Parses a built-in spec into a vtable and its user data (allocated with
 * `a`), plus the hygiene keys it may carry, the base lr and the weight decay.
 * On success the caller owns *user until it hands it to the optimizer (whose
 * vtable destroy then frees it); on failure nothing is allocated.
 */
typedef struct sgd__builtin_spec {
    sgd_optim_vtable vt;
    void *user;
    double lr;
    double weight_decay;
    sgd_optim_hygiene hygiene;
} sgd__builtin_spec;

sgd_status sgd__builtin_parse(const char *spec, const sgd_allocator *a, sgd__builtin_spec *out);
/* Whether a built-in slot of this name holds a sum of squares (>= 0, or NaN/+inf after a divergence). */
bool sgd__builtin_slot_nonneg(const char *slot_name);
void sgd__builtin_discard(void *user);

/* Creates the optimizer around a copied vtable (shared by both constructors). */
sgd_status sgd__optim_create(sgd_optim **out, const sgd_optim_vtable *vt, void *user, size_t n,
                             const sgd_allocator *alloc, const char *fn);

#endif /* SGDLAB_OPTIM_INTERNAL_H */
