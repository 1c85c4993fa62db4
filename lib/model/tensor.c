/* Tensor views and the shape-checked matrix product. SPDX-License-Identifier: MIT */
#include "model/tensor.h"

#include <cblas.h>
#include <stdio.h>

sgd_status sgd__tensor_view(sgd__tensor *t, float *arena, size_t arena_len, size_t offset, int32_t rank,
                            const int64_t *shape, const char *fn)
{
    if (rank < 1 || rank > SGD__TENSOR_MAX_RANK)
        return sgd__err(SGD_EINVAL, "%s: tensor rank %d: must be 1 to %d", fn, (int)rank, SGD__TENSOR_MAX_RANK);
    size_t n = 1, end;
    for (int32_t i = 0; i < rank; i++) {
        if (shape[i] < 1)
            return sgd__err(SGD_EINVAL, "%s: tensor dimension %d is %lld: must be >= 1", fn, (int)i,
                            (long long)shape[i]);
        if (!sgd__mul_size(n, (size_t)shape[i], &n))
            return sgd__err(SGD_EOVERFLOW, "%s: tensor size overflows", fn);
    }
    if (!sgd__add_size(offset, n, &end) || end > arena_len)
        return sgd__err(SGD_EOVERFLOW, "%s: a view of %zu floats at offset %zu ends past the arena (%zu floats)",
                        fn, n, offset, arena_len);
    t->data = arena + offset;
    t->rank = rank;
    for (int32_t i = 0; i < SGD__TENSOR_MAX_RANK; i++)
        t->shape[i] = i < rank ? shape[i] : 1;
    return SGD_OK;
}

void sgd__tensor_shape_str(const sgd__tensor *t, char *buf, size_t n)
{
    size_t at = 0;
    int w = snprintf(buf, n, "[");
    for (int32_t i = 0; i < t->rank && w >= 0; i++) {
        at += (size_t)w;
        if (at >= n)
            return;
        w = snprintf(buf + at, n - at, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    }
    if (w >= 0 && (at += (size_t)w) < n)
        snprintf(buf + at, n - at, "]");
}

sgd_status sgd__tensor_gemm(bool ta, bool tb, const sgd__tensor *a, const sgd__tensor *b, float beta,
                            sgd__tensor *c, const char *fn)
{
    if (a->rank != 2 || b->rank != 2 || c->rank != 2)
        return sgd__err(SGD_ESHAPE, "%s: matrix product of tensors of rank %d, %d into %d: all must be 2", fn,
                        (int)a->rank, (int)b->rank, (int)c->rank);
    int64_t m = ta ? a->shape[1] : a->shape[0], k = ta ? a->shape[0] : a->shape[1];
    int64_t kb = tb ? b->shape[1] : b->shape[0], n = tb ? b->shape[0] : b->shape[1];
    if (k != kb || c->shape[0] != m || c->shape[1] != n || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX) {
        char sa[64], sb[64], sc[64];
        sgd__tensor_shape_str(a, sa, sizeof sa);
        sgd__tensor_shape_str(b, sb, sizeof sb);
        sgd__tensor_shape_str(c, sc, sizeof sc);
        return sgd__err(SGD_ESHAPE, "%s: matrix product %s%s x %s%s -> %s: shapes do not agree", fn, sa,
                        ta ? "^T" : "", sb, tb ? "^T" : "", sc);
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n,
                (int)k, 1.0f, a->data, (int)a->shape[1], b->data, (int)b->shape[1], beta, c->data,
                (int)c->shape[1]);
    return SGD_OK;
}
