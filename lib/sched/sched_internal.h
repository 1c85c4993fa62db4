/*
 * Learning-rate schedules: what the files of lib/sched share. Never installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_SCHED_INTERNAL_H
#define SGDLAB_SCHED_INTERNAL_H

#include "sgdlab/sched.h"

#include "core/internal.h"

#include <stdbool.h>

struct sgd_sched {
    sgd_allocator alloc;
    sgd_sched_vtable vt;            /* the built-in's or the host's, copied */
    char name[SGD_SCHED_NAME_MAX];
    bool host;                      /* callbacks written by the host: failures become SGD_ECALLBACK */
    bool owned;                     /* adopted by a composite, which frees it */
};

/*
 * The one way a schedule is made, built-in or host: copies `vt` (exactly
 * sizeof *vt bytes; the public entry point has already resolved struct_size),
 * checks it, and wraps it in a handle allocated with `alloc` (already resolved).
 * On failure nothing is called and vt->user stays the caller's. Messages name `fn`.
 */
sgd_status sgd__sched_wrap(sgd_sched **out, const sgd_sched_vtable *vt, const sgd_allocator *alloc, bool host,
                           const char *fn);

/* Frees a schedule whatever its owner (composites free their children with it). */
void sgd__sched_destroy(sgd_sched *s);

/*
 * Composites adopt their children: checks that none is NULL, repeated or
 * already owned (messages name `fn` and `what`), then marks them owned.
 */
sgd_status sgd__sched_check_children(sgd_sched *const *children, size_t n, const char *fn, const char *what);
void sgd__sched_adopt(sgd_sched *const *children, size_t n);

/* Checks a base lr: finite and >= 0. */
sgd_status sgd__sched_check_base_lr(double base_lr, const char *fn);

/*
 * Built-in constructors behind the public ones and the spec parser: `fn` is
 * the name used in messages ("sgd_sched_cosine_new", or "sgd_sched_new: cosine"
 * with the path of a nested spec). Options are complete (already copied over
 * their defaults).
 */
sgd_status sgd__sched_constant(sgd_sched **out, double base_lr, const sgd_sched_constant_options *o,
                               const sgd_allocator *a, const char *fn);
sgd_status sgd__sched_step(sgd_sched **out, double base_lr, const sgd_sched_step_options *o, const sgd_allocator *a,
                           const char *fn);
sgd_status sgd__sched_multistep(sgd_sched **out, double base_lr, const sgd_sched_multistep_options *o,
                                const sgd_allocator *a, const char *fn);
sgd_status sgd__sched_exponential(sgd_sched **out, double base_lr, const sgd_sched_exponential_options *o,
                                  const sgd_allocator *a, const char *fn);
sgd_status sgd__sched_polynomial(sgd_sched **out, double base_lr, const sgd_sched_polynomial_options *o,
                                 const sgd_allocator *a, const char *fn);
sgd_status sgd__sched_cosine(sgd_sched **out, double base_lr, const sgd_sched_cosine_options *o,
                             const sgd_allocator *a, const char *fn);
sgd_status sgd__sched_cosine_warm_restarts(sgd_sched **out, double base_lr,
                                           const sgd_sched_cosine_warm_restarts_options *o, const sgd_allocator *a,
                                           const char *fn);
sgd_status sgd__sched_linear(sgd_sched **out, double base_lr, const sgd_sched_linear_options *o,
                             const sgd_allocator *a, const char *fn);
sgd_status sgd__sched_onecycle(sgd_sched **out, const sgd_sched_onecycle_options *o, const sgd_allocator *a,
                               const char *fn);
sgd_status sgd__sched_cyclic(sgd_sched **out, const sgd_sched_cyclic_options *o, const sgd_allocator *a,
                             const char *fn);
sgd_status sgd__sched_sequential(sgd_sched **out, sgd_sched *const *children, size_t n, const int64_t *milestones,
                                 const sgd_allocator *a, const char *fn);
sgd_status sgd__sched_product(sgd_sched **out, sgd_sched *const *children, size_t n, double base_lr,
                              const sgd_allocator *a, const char *fn);
/* The spec-only kinds of modern.c: SGD_ENOTFOUND (no message) when `kind` is none of them. */
sgd_status sgd__sched_modern(sgd_sched **out, sgd__str kind, sgd__spec *sp, double base_lr, const sgd_allocator *a,
                             const char *fn);
const char *sgd__sched_modern_name(size_t i);
sgd_status sgd__sched_warmup(sgd_sched **out, sgd_sched *inner, const sgd_sched_warmup_options *o,
                             const sgd_allocator *a, const char *fn);
sgd_status sgd__sched_plateau(sgd_sched **out, sgd_sched *inner, const sgd_sched_plateau_options *o,
                              const sgd_allocator *a, const char *fn);

/* Caps. */
#define SGD__SCHED_MAX_CHILDREN 1024
#define SGD__SCHED_MAX_MILESTONES 65536
#define SGD__SCHED_MAX_SPEC 65535
#define SGD__SCHED_MAX_DEPTH 16

#endif /* SGDLAB_SCHED_INTERNAL_H */
