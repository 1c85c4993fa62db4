/*
 * libsgdlab optimizers: what optim.c (the object) shares with registry.c
 * (the built-ins' spec and table), and with the trainer and the bench (the
 * gradient scan). The dependency goes one way: registry.c and the family
 * files use optim.c, never the reverse.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_OPTIM_INTERNAL_H
#define SGDLAB_OPTIM_INTERNAL_H

#include "core/internal.h"
#include "kernels.h"
#include "sgdlab/optim.h"

/* Creates the optimizer around a copied vtable; messages name `fn` (the public constructor). */
sgd_status sgd__optim_create(sgd_optim **out, const sgd_optim_vtable *vt, const sgd_optim_vtable_ext *ext,
                             void *user, size_t n, const sgd_allocator *alloc, const char *fn);

/* The bounds check of sgd_optim_set(), for the spec parser: SGD_ERANGE and a message naming key and value. */
sgd_status sgd__hparam_check(const sgd_optim_hparam *h, double value, const char *fn);

/* Copies a description into a caller's struct (its struct_size checked). */
sgd_status sgd__hparam_copy_out(sgd_optim_hparam *out, const sgd_optim_hparam *src, const char *fn);

#endif /* SGDLAB_OPTIM_INTERNAL_H */
