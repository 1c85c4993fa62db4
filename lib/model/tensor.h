/*
 * Tensors: float32, rank 1 to 4, row-major views (a pointer and a shape) into
 * arenas and buffers the model owns. They own nothing. Operations that
 * combine tensors check their shapes first. Never installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_MODEL_TENSOR_H
#define SGDLAB_MODEL_TENSOR_H

#include "core/internal.h"

#define SGD__TENSOR_MAX_RANK 4

typedef struct sgd__tensor {
    float *data;
    int32_t rank;
    int64_t shape[SGD__TENSOR_MAX_RANK]; /* unused dimensions are 1 */
} sgd__tensor;

static inline size_t sgd__tensor_numel(const sgd__tensor *t)
{
    size_t n = 1;
    for (int32_t i = 0; i < t->rank; i++)
        n *= (size_t)t->shape[i];
    return n;
}

/* A rank-2 view [rows, cols] of p. */
static inline sgd__tensor sgd__tensor_2d(const float *p, int64_t rows, int64_t cols)
{
    sgd__tensor t = {(float *)(uintptr_t)p, 2, {rows, cols, 1, 1}};
    return t;
}

/* A rank-1 view [n] of p. */
static inline sgd__tensor sgd__tensor_1d(const float *p, int64_t n)
{
    sgd__tensor t = {(float *)(uintptr_t)p, 1, {n, 1, 1, 1}};
    return t;
}

/*
 * A view of `rank` dimensions `shape` at `offset` floats into an arena of
 * `arena_len` floats. SGD_EINVAL for a rank outside 1..4 or a dimension < 1,
 * SGD_EOVERFLOW for a view that overflows or ends past the arena.
 */
sgd_status sgd__tensor_view(sgd__tensor *t, float *arena, size_t arena_len, size_t offset, int32_t rank,
                            const int64_t *shape, const char *fn);

/* Writes "[a, b, ...]" into buf (always terminated). */
void sgd__tensor_shape_str(const sgd__tensor *t, char *buf, size_t n);

/*
 * C = op(A) op(B) + beta C through cblas_sgemm, for rank-2 tensors, op
 * transposing when ta/tb. The shapes must agree ([m, k] x [k, n] -> [m, n]):
 * otherwise SGD_ESHAPE naming `fn` and the shapes, and nothing is computed.
 */
sgd_status sgd__tensor_gemm(bool ta, bool tb, const sgd__tensor *a, const sgd__tensor *b, float beta,
                            sgd__tensor *c, const char *fn);

#endif /* SGDLAB_MODEL_TENSOR_H */
