/* The bounds of bench_optim, one table per SIMD level (bench/bound_kernels.c). SPDX-License-Identifier: MIT */
#ifndef SGDLAB_BENCH_BOUND_KERNELS_H
#define SGDLAB_BENCH_BOUND_KERNELS_H

#include <stddef.h>

typedef struct bench_bounds {
    const char *level;
    /* reads `ro` arrays of r, reads and writes `rw` of w; returns -1 for a combination it does not have */
    float (*bound)(int ro, int rw, size_t n, const float *const *r, float *const *w);
} bench_bounds;

extern const bench_bounds bench_bounds_generic;
extern const bench_bounds bench_bounds_avx2;
extern const bench_bounds bench_bounds_avx512;

#endif
