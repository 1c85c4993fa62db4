/* Minibatch loaders: seeded shuffling, drop-last, epochs. SPDX-License-Identifier: MIT */
#include "data/data_internal.h"

#include "core/abi.h"

#include <string.h>

#define SGD__LOADER_MAX_BATCH ((int64_t)1 << 24)

struct sgd_loader {
    sgd_dataset d;     /* a copy of the view; holds a reference to its store */
    int64_t batch;     /* rows per batch */
    int64_t nb;        /* batches per epoch */
    int64_t epoch;     /* current epoch */
    int64_t pos;       /* next batch within the epoch */
    int64_t perm_epoch;/* epoch `perm` was drawn for; -1: none */
    bool shuffle;
    bool drop_last;
    uint64_t seed;
    int64_t shard, shards; /* this loader's share of every batch: positions shard, shard + shards, ... */
    int64_t *perm;     /* n positions, when shuffling */
    int64_t *rows;     /* the share's dataset positions, when sharded */
    float *xbuf;       /* batch * dim */
    int32_t *lbuf;     /* batch */
    float *tbuf;       /* batch * tdim */
};

/* 0.2 appended the shard fields: 0.1's programs keep an init that writes 0.1's 24 bytes (core/abi.h). */
SGD__COMPAT_INIT(void, sgd_loader_options_init, sgd_loader_options, v0_1, "SGDLAB_0.1")
void sgd_loader_options_init__v0_2(sgd_loader_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->shuffle = 1;
    o->drop_last = 0;
    o->seed = 0;
    o->shard_index = 0;
    o->shard_count = 1;
}

void sgd_loader_free(sgd_loader *l)
{
    if (l == NULL)
        return;
    sgd_allocator a = l->d.alloc;
    sgd__free_aligned(&a, l->perm);
    sgd__free_aligned(&a, l->rows);
    sgd__free_aligned(&a, l->xbuf);
    sgd__free_aligned(&a, l->lbuf);
    sgd__free_aligned(&a, l->tbuf);
    sgd__store_unref(l->d.store);
    sgd__free(&a, l);
}

sgd_status sgd_loader_new(sgd_loader **out, const sgd_dataset *d, int64_t batch_size,
                          const sgd_loader_options *opts)
{
    static const char fn[] = "sgd_loader_new";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (d == NULL)
        return sgd__err(SGD_EINVAL, "%s: dataset is NULL", fn);
    if (batch_size < 1 || batch_size > SGD__LOADER_MAX_BATCH)
        return sgd__err(SGD_EINVAL, "%s: batch_size=%lld: must be in [1, 2^24]", fn, (long long)batch_size);
    sgd_loader_options o;
    sgd_loader_options_init(&o);
    sgd_status st = sgd__options_copy(&o, sizeof o, opts, SGD__FIRST(sgd_loader_options), fn, "opts");
    if (st != SGD_OK)
        return st;
    if (o.shard_count < 1 || o.shard_count > SGD_LOADER_MAX_SHARDS)
        return sgd__err(SGD_EINVAL, "%s: shard_count=%d: must be in [1, %d]", fn, (int)o.shard_count,
                        (int)SGD_LOADER_MAX_SHARDS);
    if (o.shard_index < 0 || o.shard_index >= o.shard_count)
        return sgd__err(SGD_EINVAL, "%s: shard_index=%d: must be in [0, shard_count=%d)", fn, (int)o.shard_index,
                        (int)o.shard_count);
    if (d->streams > 0 && (o.shuffle || batch_size != d->streams))
        return sgd__err(SGD_EINVAL,
                        "%s: the dataset holds %lld parallel streams (text cut into sequences): it is read in order, "
                        "one step of every stream per batch: shuffle=0 and batch_size=%lld (not %s, batch_size=%lld)",
                        fn, (long long)d->streams, (long long)d->streams, o.shuffle ? "shuffle=1" : "shuffle=0",
                        (long long)batch_size);
    if (o.drop_last && batch_size > d->n)
        return sgd__err(SGD_EINVAL, "%s: drop_last with batch_size=%lld > %lld rows leaves no batch", fn,
                        (long long)batch_size, (long long)d->n);
    sgd_loader *l = sgd__malloc(&d->alloc, sizeof *l);
    if (l == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    memset(l, 0, sizeof *l);
    l->d = *d;
    sgd__store_ref(l->d.store);
    l->batch = batch_size < d->n ? batch_size : d->n;
    l->nb = o.drop_last ? d->n / batch_size : (d->n + batch_size - 1) / batch_size;
    l->shuffle = o.shuffle != 0;
    l->drop_last = o.drop_last != 0;
    l->seed = o.seed;
    l->perm_epoch = -1;
    l->shard = o.shard_index;
    l->shards = o.shard_count;
    const sgd_allocator *a = &d->alloc;
    bool gathers = l->shuffle || d->index != NULL || l->shards > 1;
    /* A share holds at most ceil(batch / shards) rows. */
    size_t rows = (size_t)((l->batch + l->shards - 1) / l->shards);
    if (l->shuffle && (l->perm = sgd__alloc_aligned(a, (size_t)d->n, sizeof(int64_t))) == NULL)
        goto nomem;
    if (l->shards > 1 && (l->rows = sgd__alloc_aligned(a, rows, sizeof(int64_t))) == NULL)
        goto nomem;
    if (gathers) {
        if ((l->xbuf = sgd__alloc_aligned(a, rows * (size_t)d->dim, sizeof(float))) == NULL)
            goto nomem;
        if (d->labels && (l->lbuf = sgd__alloc_aligned(a, rows * (size_t)d->ldim, sizeof(int32_t))) == NULL)
            goto nomem;
        if (d->targets && (l->tbuf = sgd__alloc_aligned(a, rows * (size_t)d->tdim, sizeof(float))) == NULL)
            goto nomem;
    }
    *out = l;
    return SGD_OK;
nomem:
    sgd_loader_free(l);
    return sgd__err(SGD_ENOMEM, "%s: out of memory for a batch of %lld rows of %lld floats", fn,
                    (long long)batch_size, (long long)d->dim);
}

/* Epoch e's order: a Fisher-Yates shuffle of 0..n-1 by a generator seeded from (seed, e) only. */
static void draw_perm(sgd_loader *l, int64_t epoch)
{
    int64_t n = l->d.n;
    for (int64_t i = 0; i < n; i++)
        l->perm[i] = i;
    sgd__rng r;
    sgd__rng_seed(&r, l->seed ^ ((uint64_t)epoch * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL));
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)sgd__rng_below(&r, (uint64_t)i + 1);
        int64_t tmp = l->perm[i];
        l->perm[i] = l->perm[j];
        l->perm[j] = tmp;
    }
    l->perm_epoch = epoch;
}

sgd_status sgd_loader_next(sgd_loader *l, sgd_batch *b)
{
    if (l == NULL || b == NULL)
        return sgd__err(SGD_EINVAL, "sgd_loader_next: %s is NULL", l == NULL ? "loader" : "batch");
    memset(b, 0, sizeof *b);
    b->epoch = l->epoch;
    b->index = l->pos;
    if (l->pos >= l->nb) {
        l->epoch++;
        l->pos = 0;
        return SGD_OK; /* the end-of-epoch marker: size 0 */
    }
    int64_t start = l->pos * l->batch;
    int64_t count = l->d.n - start < l->batch ? l->d.n - start : l->batch;
    const int64_t *rows = NULL;
    if (l->shuffle) {
        if (l->perm_epoch != l->epoch)
            draw_perm(l, l->epoch);
        rows = l->perm + start;
    }
    if (l->shards > 1) {
        /* This shard's positions of the batch: shard, shard + shards, ... */
        int64_t share = count > l->shard ? (count - l->shard + l->shards - 1) / l->shards : 0;
        for (int64_t j = 0; j < share; j++) {
            int64_t at = l->shard + j * l->shards;
            l->rows[j] = rows != NULL ? rows[at] : start + at;
        }
        rows = l->rows;
        count = share;
        if (count == 0) {
            l->pos++;
            return SGD_OK; /* an empty share: size 0, index < num_batches */
        }
    }
    sgd__dataset_gather(&l->d, start, rows, count, l->xbuf, l->lbuf, l->tbuf, &b->x, &b->labels, &b->targets);
    b->size = count;
    l->pos++;
    return SGD_OK;
}

int64_t sgd_loader_num_batches(const sgd_loader *l)
{
    return l ? l->nb : 0;
}

sgd_status sgd_loader_seek(sgd_loader *l, int64_t epoch, int64_t batch)
{
    if (l == NULL)
        return sgd__err(SGD_EINVAL, "sgd_loader_seek: loader is NULL");
    if (epoch < 0)
        return sgd__err(SGD_EINVAL, "sgd_loader_seek: epoch=%lld: must be >= 0", (long long)epoch);
    if (batch < 0 || batch > l->nb)
        return sgd__err(SGD_EINVAL, "sgd_loader_seek: batch=%lld: must be in [0, %lld]", (long long)batch,
                        (long long)l->nb);
    l->epoch = epoch;
    l->pos = batch;
    return SGD_OK;
}
