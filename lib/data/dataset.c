/* Datasets: views over host memory, subsets and splits. SPDX-License-Identifier: MIT */
#include "data/data_internal.h"

#include <string.h>

/* ---------------------------------------------------------------- stores */

sgd__store *sgd__store_new(const sgd_allocator *a, sgd__store *parent)
{
    sgd__store *s = sgd__malloc(a, sizeof *s);
    if (s == NULL)
        return NULL;
    memset(s, 0, sizeof *s);
    atomic_init(&s->refs, 1);
    s->alloc = *a;
    s->parent = parent;
    sgd__store_ref(parent);
    return s;
}

void sgd__store_ref(sgd__store *s)
{
    if (s != NULL)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void sgd__store_unref(sgd__store *s)
{
    while (s != NULL) {
        if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
            return;
        sgd__store *parent = s->parent;
        sgd_allocator a = s->alloc;
        for (int i = 0; i < SGD__STORE_BLOCKS; i++)
            sgd__free_aligned(&a, s->blocks[i]);
        sgd__free(&a, s);
        s = parent; /* drop the reference this store held */
    }
}

/* ---------------------------------------------------------------- checks */

int64_t sgd__find_nonfinite(const float *p, size_t n)
{
    /* An exponent of all ones is an infinity or a NaN. OR-reduce blocks of 16
       (constant trip count: the loop vectorizes at -O2) and look closer only
       on a hit. */
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint32_t hit = 0;
        for (int k = 0; k < 16; k++) {
            uint32_t bits;
            memcpy(&bits, &p[i + (size_t)k], sizeof bits);
            hit |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
        }
        if (hit)
            break;
    }
    for (; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &p[i], sizeof bits);
        if ((bits & 0x7f800000u) == 0x7f800000u)
            return (int64_t)i;
    }
    return -1;
}

static sgd_status check_sizes(const char *fn, int64_t n, int64_t dim, const char *dim_name)
{
    if (n < 1 || n > SGD_DATASET_MAX_ROWS)
        return sgd__err(SGD_EINVAL, "%s: n=%lld: must be in [1, 2^40]", fn, (long long)n);
    if (dim < 1 || dim > SGD_DATASET_MAX_DIM)
        return sgd__err(SGD_EINVAL, "%s: %s=%lld: must be in [1, 2^24]", fn, dim_name, (long long)dim);
    size_t total;
    if (!sgd__mul_size((size_t)n, (size_t)dim, &total) || total > SIZE_MAX / sizeof(float))
        return sgd__err(SGD_EOVERFLOW, "%s: n*%s = %lld*%lld elements overflow the address space", fn, dim_name,
                        (long long)n, (long long)dim);
    return SGD_OK;
}

static sgd_status check_finite(const char *fn, const char *what, const float *p, int64_t n, int64_t dim)
{
    int64_t bad = sgd__find_nonfinite(p, (size_t)n * (size_t)dim);
    if (bad >= 0)
        return sgd__err(SGD_ENONFINITE, "%s: %s[%lld][%lld] is %g: every value must be finite", fn, what,
                        (long long)(bad / dim), (long long)(bad % dim), (double)p[bad]);
    return SGD_OK;
}

static sgd_status new_dataset(sgd_dataset **out, const sgd_allocator *alloc, const char *fn)
{
    sgd_allocator a;
    sgd_status st = sgd__allocator_init(&a, alloc, fn);
    if (st != SGD_OK)
        return st;
    sgd_dataset *d = sgd__malloc(&a, sizeof *d);
    if (d == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    memset(d, 0, sizeof *d);
    d->alloc = a;
    *out = d;
    return SGD_OK;
}

static sgd_status from_labels(sgd_dataset **out, const float *x, const int32_t *labels, int64_t n, int64_t dim,
                              int64_t ldim, const sgd_allocator *alloc, const char *fn)
{
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (x == NULL)
        return sgd__err(SGD_EINVAL, "%s: x is NULL", fn);
    if (labels == NULL)
        return sgd__err(SGD_EINVAL, "%s: labels is NULL", fn);
    sgd_status st = check_sizes(fn, n, dim, "dim");
    if (st == SGD_OK)
        st = check_sizes(fn, n, ldim, "labels_per_row");
    if (st == SGD_OK)
        st = check_finite(fn, "x", x, n, dim);
    if (st != SGD_OK)
        return st;
    int32_t max = 0;
    for (int64_t i = 0; i < n * ldim; i++) {
        if (labels[i] < 0)
            return sgd__err(SGD_EINVAL, "%s: labels[%lld]=%d: class labels must be >= 0", fn, (long long)i,
                            (int)labels[i]);
        if (labels[i] > max)
            max = labels[i];
    }
    if (max == INT32_MAX)
        return sgd__err(SGD_EINVAL, "%s: a label is INT32_MAX: class labels must be below it", fn);
    sgd_dataset *d;
    if ((st = new_dataset(&d, alloc, fn)) != SGD_OK)
        return st;
    d->x = x;
    d->labels = labels;
    d->n = n;
    d->dim = dim;
    d->ldim = ldim;
    d->n_classes = max + 1;
    *out = d;
    return SGD_OK;
}

sgd_status sgd_dataset_from_labels(sgd_dataset **out, const float *x, const int32_t *labels, int64_t n,
                                   int64_t dim, const sgd_allocator *alloc)
{
    return from_labels(out, x, labels, n, dim, 1, alloc, "sgd_dataset_from_labels");
}

sgd_status sgd_dataset_from_sequence_labels(sgd_dataset **out, const float *x, const int32_t *labels, int64_t n,
                                            int64_t dim, int64_t labels_per_row, const sgd_allocator *alloc)
{
    return from_labels(out, x, labels, n, dim, labels_per_row, alloc, "sgd_dataset_from_sequence_labels");
}

int64_t sgd_dataset_labels_per_row(const sgd_dataset *d)
{
    return d ? d->ldim : 0;
}

int64_t sgd_dataset_streams(const sgd_dataset *d)
{
    return d ? d->streams : 0;
}

sgd_status sgd_dataset_set_streams(sgd_dataset *d, int64_t streams)
{
    static const char fn[] = "sgd_dataset_set_streams";
    if (d == NULL)
        return sgd__err(SGD_EINVAL, "%s: dataset is NULL", fn);
    if (streams < 0 || streams > SGD_DATASET_MAX_DIM || (streams > 0 && d->n % streams != 0))
        return sgd__err(SGD_EINVAL, "%s: streams=%lld: must be 0 or divide the %lld rows (and be at most 2^24)", fn,
                        (long long)streams, (long long)d->n);
    d->streams = streams;
    return SGD_OK;
}

sgd_status sgd_dataset_from_targets(sgd_dataset **out, const float *x, const float *targets, int64_t n,
                                    int64_t dim, int64_t target_dim, const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_dataset_from_targets";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (x == NULL)
        return sgd__err(SGD_EINVAL, "%s: x is NULL", fn);
    if (targets == NULL)
        return sgd__err(SGD_EINVAL, "%s: targets is NULL", fn);
    sgd_status st = check_sizes(fn, n, dim, "dim");
    if (st == SGD_OK)
        st = check_sizes(fn, n, target_dim, "target_dim");
    if (st == SGD_OK)
        st = check_finite(fn, "x", x, n, dim);
    if (st == SGD_OK)
        st = check_finite(fn, "targets", targets, n, target_dim);
    if (st != SGD_OK)
        return st;
    sgd_dataset *d;
    if ((st = new_dataset(&d, alloc, fn)) != SGD_OK)
        return st;
    d->x = x;
    d->targets = targets;
    d->n = n;
    d->dim = dim;
    d->tdim = target_dim;
    *out = d;
    return SGD_OK;
}

void sgd_dataset_free(sgd_dataset *d)
{
    if (d == NULL)
        return;
    sgd__store_unref(d->store);
    sgd_allocator a = d->alloc;
    sgd__free(&a, d);
}

int64_t sgd_dataset_size(const sgd_dataset *d)
{
    return d ? d->n : 0;
}

int64_t sgd_dataset_dim(const sgd_dataset *d)
{
    return d ? d->dim : 0;
}

int64_t sgd_dataset_target_dim(const sgd_dataset *d)
{
    return d ? d->tdim : 0;
}

int32_t sgd_dataset_num_classes(const sgd_dataset *d)
{
    return d ? d->n_classes : 0;
}

sgd_status sgd_dataset_row(const sgd_dataset *d, int64_t i, const float **x, int32_t *label, const float **target)
{
    if (x)
        *x = NULL;
    if (label)
        *label = -1;
    if (target)
        *target = NULL;
    if (d == NULL)
        return sgd__err(SGD_EINVAL, "sgd_dataset_row: dataset is NULL");
    if (i < 0 || i >= d->n)
        return sgd__err(SGD_EINVAL, "sgd_dataset_row: i=%lld: must be in [0, %lld)", (long long)i, (long long)d->n);
    int64_t r = sgd__dataset_base_row(d, i);
    if (x)
        *x = d->x + (size_t)r * (size_t)d->dim;
    if (label && d->labels)
        *label = d->labels[(size_t)r * (size_t)d->ldim];
    if (target && d->targets)
        *target = d->targets + (size_t)r * (size_t)d->tdim;
    return SGD_OK;
}

/* A copy of the view `d` with its own handle (sharing the store). */
static sgd_dataset *clone_view(const sgd_dataset *d)
{
    sgd_dataset *c = sgd__malloc(&d->alloc, sizeof *c);
    if (c == NULL)
        return NULL;
    *c = *d;
    sgd__store_ref(c->store);
    return c;
}

/* Narrows a view to positions [start, start + count). */
static void narrow(sgd_dataset *c, int64_t start, int64_t count)
{
    if (c->index != NULL) {
        c->index += start;
    } else {
        c->x += (size_t)start * (size_t)c->dim;
        if (c->labels)
            c->labels += (size_t)start * (size_t)c->ldim;
        if (c->targets)
            c->targets += (size_t)start * (size_t)c->tdim;
    }
    c->n = count;
    /* A view keeps the streams only if it starts and ends at a step boundary. */
    if (c->streams > 0 && (start % c->streams != 0 || count % c->streams != 0))
        c->streams = 0;
}

sgd_status sgd_dataset_subset(sgd_dataset **out, const sgd_dataset *d, int64_t start, int64_t count)
{
    static const char fn[] = "sgd_dataset_subset";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (d == NULL)
        return sgd__err(SGD_EINVAL, "%s: dataset is NULL", fn);
    if (start < 0 || start >= d->n)
        return sgd__err(SGD_EINVAL, "%s: start=%lld: must be in [0, %lld)", fn, (long long)start, (long long)d->n);
    if (count < 1 || count > d->n - start)
        return sgd__err(SGD_EINVAL, "%s: count=%lld: must be in [1, %lld] for start=%lld", fn, (long long)count,
                        (long long)(d->n - start), (long long)start);
    sgd_dataset *c = clone_view(d);
    if (c == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    narrow(c, start, count);
    *out = c;
    return SGD_OK;
}

sgd_status sgd_dataset_split(sgd_dataset **train, sgd_dataset **val, const sgd_dataset *d, int64_t n_val,
                             int32_t shuffle, uint64_t seed)
{
    static const char fn[] = "sgd_dataset_split";
    if (train == NULL || val == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, train == NULL ? "train" : "val");
    *train = NULL;
    *val = NULL;
    if (d == NULL)
        return sgd__err(SGD_EINVAL, "%s: dataset is NULL", fn);
    if (d->n < 2)
        return sgd__err(SGD_EINVAL, "%s: the dataset has %lld row(s): a split needs at least 2", fn,
                        (long long)d->n);
    if (n_val < 1 || n_val > d->n - 1)
        return sgd__err(SGD_EINVAL, "%s: n_val=%lld: must be in [1, %lld]", fn, (long long)n_val,
                        (long long)(d->n - 1));
    int64_t n_train = d->n - n_val;
    sgd_dataset *t = clone_view(d), *v = clone_view(d);
    sgd__store *s = NULL;
    int64_t *idx = NULL;
    if (t == NULL || v == NULL)
        goto nomem;
    if (!shuffle) {
        narrow(t, 0, n_train);
        narrow(v, n_train, n_val);
        *train = t;
        *val = v;
        return SGD_OK;
    }
    /* Selection sampling (Knuth's algorithm S): each row joins the validation
       part with probability needed/remaining, which picks a uniform random
       subset of n_val rows and lists both parts in ascending order, in one
       pass and without scratch memory. */
    if ((s = sgd__store_new(&d->alloc, d->store)) == NULL)
        goto nomem;
    if ((idx = sgd__alloc_aligned(&d->alloc, (size_t)d->n, sizeof *idx)) == NULL)
        goto nomem;
    s->blocks[0] = idx;
    int64_t *vi = idx, *ti = idx + n_val;
    sgd__rng r;
    sgd__rng_seed(&r, seed);
    int64_t need = n_val;
    for (int64_t i = 0; i < d->n; i++) {
        int64_t base = sgd__dataset_base_row(d, i);
        if (need > 0 && sgd__rng_below(&r, (uint64_t)(d->n - i)) < (uint64_t)need) {
            *vi++ = base;
            need--;
        } else {
            *ti++ = base;
        }
    }
    sgd__store_unref(t->store);
    sgd__store_unref(v->store);
    t->streams = v->streams = 0; /* rows drawn at random are no longer streams */
    t->store = s;
    v->store = s;
    sgd__store_ref(s);
    t->index = idx + n_val;
    t->n = n_train;
    v->index = idx;
    v->n = n_val;
    *train = t;
    *val = v;
    return SGD_OK;
nomem:
    sgd__store_unref(s);
    sgd_dataset_free(t);
    sgd_dataset_free(v);
    return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
}

void sgd__dataset_gather(const sgd_dataset *d, int64_t start, const int64_t *rows, int64_t count, float *xbuf,
                         int32_t *lbuf, float *tbuf, const float **x, const int32_t **labels,
                         const float **targets)
{
    size_t dim = (size_t)d->dim, tdim = (size_t)d->tdim, ldim = (size_t)d->ldim;
    if (rows == NULL && d->index == NULL) {
        *x = d->x + (size_t)start * dim;
        *labels = d->labels ? d->labels + (size_t)start * ldim : NULL;
        *targets = d->targets ? d->targets + (size_t)start * tdim : NULL;
        return;
    }
    for (int64_t j = 0; j < count; j++) {
        int64_t pos = rows ? rows[j] : start + j;
        int64_t r = sgd__dataset_base_row(d, pos);
        memcpy(xbuf + (size_t)j * dim, d->x + (size_t)r * dim, dim * sizeof(float));
        if (d->labels)
            memcpy(lbuf + (size_t)j * ldim, d->labels + (size_t)r * ldim, ldim * sizeof(int32_t));
        if (d->targets)
            memcpy(tbuf + (size_t)j * tdim, d->targets + (size_t)r * tdim, tdim * sizeof(float));
    }
    *x = xbuf;
    *labels = d->labels ? lbuf : NULL;
    *targets = d->targets ? tbuf : NULL;
}
