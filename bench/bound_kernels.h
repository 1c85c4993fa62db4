/* The bounds of bench_optim, one table per SIMD level (bench/bound_kernels.c). SPDX-License-Identifier: MIT */
#ifndef SGDLAB_BENCH_BOUND_KERNELS_H
#define SGDLAB_BENCH_BOUND_KERNELS_H

#include <stddef.h>

typedef struct bench_bounds {
    const char *level;
    /* reads `ro` arrays of r, reads and writes `rw` of w; returns -1 for a combination it does not have */
    float (*bound)(int ro, int rw, size_t n, const float *const *r, float *const *w);
    /*
     * the divider's bound: one pass that reads r and reads and writes w with
     * `nsqrt` square roots and `ndiv` divisions per element (IEEE, as the
     * kernels round them); returns -1 for a combination it does not have
     */
    float (*arith)(int nsqrt, int ndiv, size_t n, const float *r, float *w);
} bench_bounds;

extern const bench_bounds bench_bounds_generic;
extern const bench_bounds bench_bounds_avx2;
extern const bench_bounds bench_bounds_avx512;

#endif
