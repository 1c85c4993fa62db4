/*
 * Datasets and loaders: the parts the model module (evaluation) and the tests
 * share. Never installed. SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_DATA_INTERNAL_H
#define SGDLAB_DATA_INTERNAL_H

#include "sgdlab/data.h"

#include "core/internal.h"

#include <stdatomic.h>

/*
 * Memory a dataset owns (converted IDX data, index arrays), shared by the
 * views made from it and kept alive by a reference count. A store may hold a
 * reference to the store its data was derived from (an index array over a
 * parent's features).
 */
#define SGD__STORE_BLOCKS 3

typedef struct sgd__store {
    atomic_long refs;
    sgd_allocator alloc;
    struct sgd__store *parent; /* referenced, or NULL */
    void *blocks[SGD__STORE_BLOCKS]; /* sgd__alloc_aligned blocks, freed with the store */
} sgd__store;

/* A new store with one reference; blocks are attached by the caller. NULL on ENOMEM (no message). */
sgd__store *sgd__store_new(const sgd_allocator *a, sgd__store *parent);
void sgd__store_ref(sgd__store *s);   /* NULL ok */
void sgd__store_unref(sgd__store *s); /* NULL ok */

struct sgd_dataset {
    sgd_allocator alloc;
    const float *x;         /* base rows: x + r * dim */
    const int32_t *labels;  /* base labels, or NULL */
    const float *targets;   /* base targets (r * tdim), or NULL */
    const int64_t *index;   /* row i is base row index[i]; NULL: row i is base row i */
    int64_t n, dim, tdim;   /* tdim 0 for labels */
    int64_t ldim;           /* labels per row (one per position of a sequence), 0 for targets */
    int64_t streams;        /* rows are B parallel streams, B rows per step (0: independent rows) */
    int32_t n_classes;      /* 0 for targets */
    sgd__store *store;      /* referenced, or NULL for a pure view of host memory */
};

static inline int64_t sgd__dataset_base_row(const sgd_dataset *d, int64_t i)
{
    return d->index ? d->index[i] : i;
}

/*
 * Rows rows[0..count-1] (dataset positions; rows == NULL means the
 * consecutive positions start, start+1, ...) as contiguous arrays: pointers
 * straight into the dataset when the rows are consecutive in memory,
 * otherwise gathered into xbuf/lbuf/tbuf (sized for count rows). Allocates
 * nothing; the caller has checked the range.
 */
void sgd__dataset_gather(const sgd_dataset *d, int64_t start, const int64_t *rows, int64_t count, float *xbuf,
                         int32_t *lbuf, float *tbuf, const float **x, const int32_t **labels,
                         const float **targets);

/* The index of the first non-finite float in p[0..n), or -1. Vectorizes (integer test). */
int64_t sgd__find_nonfinite(const float *p, size_t n);

#endif /* SGDLAB_DATA_INTERNAL_H */
