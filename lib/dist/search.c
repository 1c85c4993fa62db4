/*
 * libsgdlab-mpi: grid and random search with the trials spread over the
 * processes (trial i on rank i % P) and every outcome gathered everywhere.
 * SPDX-License-Identifier: MIT
 */
#include "dist/dist_internal.h"
#include "core/abi.h"

#include <limits.h>
#include <string.h>

/* One trial's outcome on the wire: 11 eight-byte fields (the processes share one byte order). */
#define FIELDS 11

static void pack(unsigned char *p, const sgd_search_trial *t)
{
    int64_t v[FIELDS] = {t->index, t->status, t->max_steps, t->verdict, t->stop_reason, t->steps, t->first_alarm};
    memcpy(&v[7], &t->final_loss, 8);
    memcpy(&v[8], &t->val_loss, 8);
    memcpy(&v[9], &t->val_accuracy, 8);
    memcpy(&v[10], &t->seconds, 8);
    memcpy(p, v, sizeof v);
}

static void unpack(const unsigned char *p, sgd_search_trial *t)
{
    int64_t v[FIELDS];
    memcpy(v, p, sizeof v);
    t->index = v[0];
    t->status = (int32_t)v[1];
    t->max_steps = v[2];
    t->verdict = (int32_t)v[3];
    t->stop_reason = (int32_t)v[4];
    t->steps = v[5];
    t->first_alarm = v[6];
    memcpy(&t->final_loss, &v[7], 8);
    memcpy(&t->val_loss, &v[8], 8);
    memcpy(&t->val_accuracy, &v[9], 8);
    memcpy(&t->seconds, &v[10], 8);
}

sgd_status sgd_dist_search_run(sgd_dist *d, sgd_search **out, const char *model_spec, const sgd_dataset *train,
                               const sgd_dataset *val, const sgd_search_options *opts, const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_dist_search_run";
    if (out != NULL)
        *out = NULL;
    if (d == NULL || out == NULL)
        return sgd__dist_err(SGD_EINVAL, "%s: %s is NULL", fn, d == NULL ? "dist" : "out");
    sgd_search_options o;
    sgd_search_options_init(&o);
    /* The caller's struct as far as it goes (an older one has no shard fields: they are ours anyway). */
    sgd_status st = opts == NULL ? SGD_OK
                                 : sgd__struct_in_with(sgd__dist_err, &o, sizeof o, opts,
                                                       SGD__FIRST(sgd_search_options), false, fn, "opts");
    o.shard_index = d->rank;
    o.shard_count = d->size;
    sgd_search *s = NULL;
    if (st == SGD_OK)
        st = sgd_search_run(&s, model_spec, train, val, &o, alloc);
    if ((st = sgd__dist_agree_status(d, st, fn, "searching")) != SGD_OK) {
        sgd_search_free(s);
        return st;
    }
    /* Every process drew the same trials. */
    long long n = (long long)sgd_search_count(s), range[2] = {n, -n}, lo[2];
    MPI_Request rq;
    int rc = MPI_Iallreduce(range, lo, 2, MPI_LONG_LONG, MPI_MIN, d->comm, &rq);
    if (rc != MPI_SUCCESS) {
        sgd_search_free(s);
        return sgd__dist_mpi_fail(d, rc, fn, "MPI_Iallreduce");
    }
    if ((st = sgd__dist_wait(d, &rq, 1, fn, "comparing the searches")) != SGD_OK) {
        sgd_search_free(s);
        return st;
    }
    if (lo[0] != -lo[1]) {
        sgd_search_free(s);
        return sgd__dist_err(SGD_ESHAPE,
                             "%s: the processes searched %lld to %lld trials (this one %lld): give every process the "
                             "same options",
                             fn, lo[0], -lo[1], n);
    }
    size_t P = (size_t)d->size, rank = (size_t)d->rank, per = (size_t)FIELDS * 8;
    unsigned char *mine = NULL, *all = NULL;
    int *cnt = NULL;
    size_t own = (size_t)n > rank ? ((size_t)n - rank + P - 1) / P : 0;
    if ((size_t)n > (size_t)INT_MAX / per)
        st = sgd__dist_err(SGD_EOVERFLOW, "%s: %lld trials: too many to gather", fn, n);
    else if ((mine = sgd__dist_calloc(d, own > 0 ? own * per : 1, 1)) == NULL ||
             (all = sgd__dist_calloc(d, n > 0 ? (size_t)n * per : 1, 1)) == NULL ||
             (cnt = sgd__dist_calloc(d, 2 * P, sizeof *cnt)) == NULL)
        st = sgd__dist_err(SGD_ENOMEM, "%s: out of memory for %lld trials' outcomes", fn, n);
    if ((st = sgd__dist_agree_status(d, st, fn, "allocating")) != SGD_OK)
        goto out;
    for (size_t i = rank, k = 0; i < (size_t)n; i += P, k++) {
        sgd_search_trial t;
        t.struct_size = sizeof t;
        sgd_search_get_trial(s, i, &t);
        pack(mine + k * per, &t);
    }
    for (size_t r = 0, at = 0; r < P; r++) {
        size_t c = (size_t)n > r ? ((size_t)n - r + P - 1) / P : 0;
        cnt[r] = (int)(c * per);
        cnt[P + r] = (int)at;
        at += c * per;
    }
    rc = MPI_Iallgatherv(mine, (int)(own * per), MPI_BYTE, all, cnt, cnt + P, MPI_BYTE, d->comm, &rq);
    if (rc != MPI_SUCCESS) {
        st = sgd__dist_mpi_fail(d, rc, fn, "MPI_Iallgatherv");
        goto out;
    }
    if ((st = sgd__dist_wait(d, &rq, 1, fn, "gathering the trials")) != SGD_OK)
        goto out;
    for (size_t r = 0; r < P && st == SGD_OK; r++) {
        if (r == rank)
            continue;
        const unsigned char *p = all + (size_t)cnt[P + r];
        for (size_t i = r; i < (size_t)n && st == SGD_OK; i += P, p += per) {
            sgd_search_trial t;
            t.struct_size = sizeof t;
            sgd_search_get_trial(s, i, &t); /* the inputs, which are the same everywhere */
            unpack(p, &t);
            if (t.index != (int64_t)i)
                st = sgd__dist_err(SGD_EINTERNAL, "%s: process %zu sent trial %lld where trial %zu belongs", fn, r,
                                   (long long)t.index, i);
            else
                st = sgd_search_set_trial(s, i, &t);
        }
    }
    st = sgd__dist_agree_status(d, st, fn, "filling in the other processes' trials");
out:
    sgd__dist_free_mem(d, mine);
    sgd__dist_free_mem(d, all);
    sgd__dist_free_mem(d, cnt);
    if (st != SGD_OK) {
        sgd_search_free(s);
        return st;
    }
    *out = s;
    return SGD_OK;
}
