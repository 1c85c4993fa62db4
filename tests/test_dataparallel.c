/*
 * The core's data-parallel hooks, without MPI: loader sharding, the
 * trainer's communicator (sgd_trainer_set_comm) driven by threads that play
 * the processes, and sharded searches merged with sgd_search_set_trial().
 * The MPI part (sgdlab/dist.h) is tested by test_dist.c under mpiexec.
 * SPDX-License-Identifier: MIT
 */
#include "util/sgdtest.h"

#include "core/internal.h" /* sgd__err, for the test communicator's messages */

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ data */

/* Four noisy blobs in 6 dimensions, seeded: a small classification task. */
#define DIM 6
#define MAXROWS 1200

typedef struct blobs {
    float x[MAXROWS * DIM];
    int32_t y[MAXROWS];
    int64_t n;
} blobs;

static blobs train_data, val_data;

static void make_blobs(blobs *b, int64_t n, uint32_t seed)
{
    assert_true(n <= MAXROWS);
    b->n = n;
    sgdt_blobs(b->x, b->y, n, DIM, 4, seed);
}

static int setup(void **state)
{
    (void)state;
    make_blobs(&train_data, 1000, 1);
    make_blobs(&val_data, 301, 2);
    return 0;
}

/* ------------------------------------------------------------ loader shards */

/* The rows (dataset positions via row contents) of every batch of an epoch, for one loader. */
static int64_t row_of(const sgd_dataset *d, const float *x)
{
    for (int64_t i = 0; i < sgd_dataset_size(d); i++) {
        const float *r;
        sgd_dataset_row(d, i, &r, NULL, NULL);
        if (memcmp(r, x, DIM * sizeof(float)) == 0)
            return i;
    }
    return -1;
}

static void check_shards(const sgd_dataset *d, int64_t batch, int32_t shards, int32_t shuffle, int32_t drop_last)
{
    sgd_loader_options lo;
    sgd_loader_options_init(&lo);
    lo.shuffle = shuffle;
    lo.drop_last = drop_last;
    lo.seed = 5;
    sgd_loader *whole;
    sgdt_assert_status(sgd_loader_new(&whole, d, batch, &lo), SGD_OK);
    sgd_loader *part[8];
    for (int32_t r = 0; r < shards; r++) {
        lo.shard_index = r;
        lo.shard_count = shards;
        sgdt_assert_status(sgd_loader_new(&part[r], d, batch, &lo), SGD_OK);
        assert_int_equal(sgd_loader_num_batches(part[r]), sgd_loader_num_batches(whole));
    }
    int64_t nb = sgd_loader_num_batches(whole);
    int64_t empty = 0;
    for (int epoch = 0; epoch < 2; epoch++) {
        for (int64_t k = 0; k <= nb; k++) {
            sgd_batch w;
            sgdt_assert_status(sgd_loader_next(whole, &w), SGD_OK);
            assert_int_equal(w.index, k);
            int64_t got = 0;
            for (int32_t r = 0; r < shards; r++) {
                sgd_batch b;
                sgdt_assert_status(sgd_loader_next(part[r], &b), SGD_OK);
                assert_int_equal(b.index, k);
                assert_int_equal(b.epoch, epoch);
                if (k == nb) { /* the end marker, on every shard */
                    assert_int_equal(b.size, 0);
                    continue;
                }
                /* Share r holds the rows r, r + P, ... of the whole batch, in that order. */
                int64_t want = w.size > r ? (w.size - r + shards - 1) / shards : 0;
                assert_int_equal(b.size, want);
                if (b.size == 0) {
                    empty++;
                    assert_null(b.x);
                }
                for (int64_t j = 0; j < b.size; j++) {
                    int64_t at = r + j * shards;
                    assert_memory_equal(b.x + j * DIM, w.x + at * DIM, DIM * sizeof(float));
                    assert_int_equal(b.labels[j], w.labels[at]);
                }
                got += b.size;
            }
            if (k < nb)
                assert_int_equal(got, w.size);
        }
    }
    /* Seeking a shard lands where the whole loader would. */
    sgdt_assert_status(sgd_loader_seek(part[0], 1, nb / 2), SGD_OK);
    sgdt_assert_status(sgd_loader_seek(whole, 1, nb / 2), SGD_OK);
    sgd_batch w, b;
    sgdt_assert_status(sgd_loader_next(whole, &w), SGD_OK);
    sgdt_assert_status(sgd_loader_next(part[0], &b), SGD_OK);
    assert_int_equal(b.index, w.index);
    assert_true(row_of(d, b.x) == row_of(d, w.x));
    if (!drop_last && sgd_dataset_size(d) % batch != 0 && sgd_dataset_size(d) % batch < shards)
        assert_true(empty > 0);
    for (int32_t r = 0; r < shards; r++)
        sgd_loader_free(part[r]);
    sgd_loader_free(whole);
}

static void test_loader_shards(void **state)
{
    (void)state;
    sgd_dataset *d;
    sgdt_assert_status(sgd_dataset_from_labels(&d, train_data.x, train_data.y, 22, DIM, NULL), SGD_OK);
    check_shards(d, 8, 2, 1, 0);
    check_shards(d, 8, 3, 1, 0);
    check_shards(d, 8, 3, 0, 0);  /* 22 = 2 * 8 + 6: unequal shares */
    check_shards(d, 10, 3, 1, 0); /* the last batch has 2 rows: shard 2's share is empty */
    check_shards(d, 8, 4, 1, 1);
    check_shards(d, 30, 2, 1, 0); /* a batch larger than the data */
    /* Views with an index (a shuffled split). */
    sgd_dataset *tr, *va;
    sgdt_assert_status(sgd_dataset_split(&tr, &va, d, 5, 1, 9), SGD_OK);
    check_shards(tr, 4, 2, 0, 0);
    check_shards(tr, 4, 3, 1, 0);
    sgd_dataset_free(tr);
    sgd_dataset_free(va);

    /* Bad shards. */
    sgd_loader *l = (sgd_loader *)1;
    sgd_loader_options lo;
    sgd_loader_options_init(&lo);
    assert_int_equal(lo.shard_index, 0);
    assert_int_equal(lo.shard_count, 1);
    lo.shard_count = 0;
    sgdt_assert_status(sgd_loader_new(&l, d, 4, &lo), SGD_EINVAL);
    sgdt_assert_error_contains("shard_count=0");
    assert_null(l);
    lo.shard_count = SGD_LOADER_MAX_SHARDS + 1;
    sgdt_assert_status(sgd_loader_new(&l, d, 4, &lo), SGD_EINVAL);
    lo.shard_count = 3;
    lo.shard_index = 3;
    sgdt_assert_status(sgd_loader_new(&l, d, 4, &lo), SGD_EINVAL);
    sgdt_assert_error_contains("shard_index=3");
    lo.shard_index = -1;
    sgdt_assert_status(sgd_loader_new(&l, d, 4, &lo), SGD_EINVAL);

    /* A caller built against 0.1's headers (a 24-byte struct) gets no sharding. */
    sgd_loader_options old;
    sgd_loader_options_init(&old);
    old.struct_size = (uint32_t)offsetof(sgd_loader_options, shard_index);
    old.shard_count = 0; /* beyond its size: not read */
    sgdt_assert_status(sgd_loader_new(&l, d, 4, &old), SGD_OK);
    assert_int_equal(sgd_loader_num_batches(l), 6);
    sgd_batch b;
    sgdt_assert_status(sgd_loader_next(l, &b), SGD_OK);
    assert_int_equal(b.size, 4);
    sgd_loader_free(l);
    sgd_dataset_free(d);
}

/* ------------------------------------------------------------ processes as threads */

#define MAXP 4

/*
 * An allreduce over threads: each puts its arrays up, the last to arrive
 * sums them in rank order, everyone copies the sums back. Optionally fails
 * every process's call number `fail_call`.
 */
typedef struct tcomm {
    int P;
    pthread_barrier_t bar;
    float *f[MAXP];
    double *d[MAXP];
    size_t nf[MAXP], nd[MAXP];
    float *fsum;
    size_t fcap;
    double dsum[64];
    long calls[MAXP];
    long fail_call;
    bool mismatch; /* the processes called with different counts: a protocol error */
} tcomm;

typedef struct tproc {
    tcomm *c;
    int rank;
} tproc;

static sgd_status tcomm_allreduce(float *f, size_t nf, double *d, size_t nd, void *user)
{
    tproc *p = user;
    tcomm *c = p->c;
    long call = c->calls[p->rank]++;
    c->f[p->rank] = f;
    c->d[p->rank] = d;
    c->nf[p->rank] = nf;
    c->nd[p->rank] = nd;
    pthread_barrier_wait(&c->bar);
    if (p->rank == 0) {
        for (int r = 1; r < c->P; r++)
            if (c->nf[r] != nf || c->nd[r] != nd)
                c->mismatch = true;
        if (!c->mismatch && nf <= c->fcap && nd <= 64) {
            for (size_t i = 0; i < nf; i++) {
                float s = c->f[0][i];
                for (int r = 1; r < c->P; r++)
                    s += c->f[r][i];
                c->fsum[i] = s;
            }
            for (size_t i = 0; i < nd; i++) {
                double s = c->d[0][i];
                for (int r = 1; r < c->P; r++)
                    s += c->d[r][i];
                c->dsum[i] = s;
            }
        }
    }
    pthread_barrier_wait(&c->bar);
    if (c->mismatch || nf > c->fcap || nd > 64)
        return sgd__err(SGD_EINTERNAL, "tcomm: the processes called with different counts");
    if (nf > 0)
        memcpy(f, c->fsum, nf * sizeof *f);
    if (nd > 0)
        memcpy(d, c->dsum, nd * sizeof *d);
    if (call == c->fail_call)
        return sgd__err(SGD_EIO, "tcomm: the link went down (injected at call %ld)", call);
    return SGD_OK;
}

static void tcomm_init(tcomm *c, int P)
{
    memset(c, 0, sizeof *c);
    c->P = P;
    c->fail_call = -1;
    c->fcap = 1 << 16;
    c->fsum = malloc(c->fcap * sizeof *c->fsum);
    assert_non_null(c->fsum);
    pthread_barrier_init(&c->bar, NULL, (unsigned)P);
}

static void tcomm_free(tcomm *c)
{
    pthread_barrier_destroy(&c->bar);
    free(c->fsum);
}

/* One process: its objects, what it is asked to do, and what came of it. */
typedef struct run {
    /* inputs */
    const char *model, *optim, *sched;
    sgd_trainer_options to;
    int P, rank;
    tcomm *c;
    const sgd_allocator *alloc;
    const unsigned char *import; /* a trainer state to resume from (with the model, optimizer, ... in `parts_from`) */
    const struct run *parts_from;
    int64_t budget;                /* for sgd_trainer_fit */
    int64_t stop_at_step;          /* progress callback asks to stop there (-1: never) */
    bool bad_event_answer;         /* the event callback answers nonsense */
    bool events_stop_on_rank0;     /* rank 0's event callback stops at the first event */
    void *owner;                   /* for scenarios that run several processes */
    /* outputs */
    sgd_status st;
    char msg[600];
    float *params;
    size_t n;
    sgd_trainer_stats stats;
    int32_t verdict;
    int64_t rescue_steps[16];
    int nrescues;
    int64_t events_seen;
    double val_loss, val_acc;     /* the last epoch's record */
    double full_val_loss, full_val_acc; /* sgd_model_evaluate over the whole set with the final parameters */
    unsigned char *state;         /* the exported trainer state at the end */
    size_t state_n;
    unsigned char *digest;        /* what must be equal across processes: see run_digest() */
    size_t digest_n;
    /* objects, freed by run_free */
    sgd_dataset *train, *val;
    sgd_model *m;
    sgd_optim *o;
    sgd_sched *s;
    sgd_monitor *mon;
    sgd_trainer *t;
    tproc proc;
} run;

static int32_t on_event(const sgd_trainer_event *ev, double *lr_scale, void *user)
{
    (void)lr_scale;
    run *r = user;
    if (ev->kind == SGD_TRAINER_EVENT_RESCUE && r->nrescues < 16)
        r->rescue_steps[r->nrescues++] = ev->step;
    if (ev->kind == SGD_TRAINER_EVENT_MONITOR) {
        r->events_seen++;
        if (r->bad_event_answer)
            return 99;
        if (r->events_stop_on_rank0 && r->rank == 0)
            return SGD_MONITOR_STOP;
    }
    return ev->action;
}

static int32_t on_progress(const sgd_trainer_progress *p, void *user)
{
    run *r = user;
    return p->phase == SGD_TRAINER_PHASE_STEP && r->stop_at_step >= 0 && p->step - 1 >= r->stop_at_step;
}

static sgd_status run_build(run *r)
{
    const sgd_allocator *a = r->alloc;
    sgd_status st;
    if ((st = sgd_dataset_from_labels(&r->train, train_data.x, train_data.y, train_data.n, DIM, a)) != SGD_OK ||
        (st = sgd_dataset_from_labels(&r->val, val_data.x, val_data.y, val_data.n, DIM, a)) != SGD_OK)
        return st;
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.seed = 11;
    mo.max_batch = r->to.batch_size;
    if ((st = sgd_model_from_spec(&r->m, r->model, &mo, a)) != SGD_OK)
        return st;
    if ((st = sgd_optim_new(&r->o, r->optim, sgd_model_num_params(r->m), a)) != SGD_OK)
        return st;
    if (r->sched != NULL) {
        double lr;
        sgd_optim_get(r->o, "lr", &lr);
        if ((st = sgd_sched_new(&r->s, r->sched, lr, a)) != SGD_OK)
            return st;
    }
    if ((st = sgd_monitor_new(&r->mon, NULL, a)) != SGD_OK)
        return st;
    if ((st = sgd_trainer_new(&r->t, r->m, r->o, r->s, r->mon, r->train, r->val, &r->to, a)) != SGD_OK)
        return st;
    sgd_trainer_set_event_callback(r->t, on_event, r);
    sgd_trainer_set_progress(r->t, on_progress, r);
    if (r->P > 1) {
        r->proc.c = r->c;
        r->proc.rank = r->rank;
        sgd_trainer_comm cm;
        sgd_trainer_comm_init(&cm);
        cm.rank = r->rank;
        cm.size = r->P;
        cm.allreduce = tcomm_allreduce;
        cm.user = &r->proc;
        if ((st = sgd_trainer_set_comm(r->t, &cm)) != SGD_OK)
            return st;
    }
    return SGD_OK;
}

/* Copies the model, optimizer, schedule and monitor state of `from` into r's, then the trainer state. */
static sgd_status run_import(run *r, const run *from, const unsigned char *state, size_t n)
{
    memcpy(sgd_model_params(r->m), sgd_model_params(from->m), sgd_model_num_params(r->m) * sizeof(float));
    sgd_status st;
    for (size_t i = 0; i < sgd_optim_state_count(from->o); i++) {
        int32_t type;
        size_t len;
        sgd_optim_state_describe(from->o, i, NULL, &type, &len);
        size_t bytes = len * (type == SGD_STATE_F32 ? 4 : 8);
        void *buf = malloc(bytes);
        st = sgd_optim_state_export(from->o, i, buf, bytes);
        if (st == SGD_OK)
            st = sgd_optim_state_import(r->o, i, buf, bytes);
        free(buf);
        if (st != SGD_OK)
            return st;
    }
    if (from->s != NULL) {
        size_t k = sgd_sched_state_size(from->s);
        double buf[64];
        if (k > 64)
            return SGD_EOVERFLOW;
        if (k > 0 && ((st = sgd_sched_state_export(from->s, buf, k)) != SGD_OK ||
                      (st = sgd_sched_state_import(r->s, buf, k)) != SGD_OK))
            return st;
    }
    size_t k;
    if ((st = sgd_monitor_state_size(from->mon, &k)) != SGD_OK)
        return st;
    double *mbuf = malloc(k * sizeof *mbuf);
    st = sgd_monitor_state_export(from->mon, mbuf, k);
    if (st == SGD_OK)
        st = sgd_monitor_state_import(r->mon, mbuf, k);
    free(mbuf);
    if (st != SGD_OK)
        return st;
    return sgd_trainer_state_import(r->t, state, n);
}

/* Appends n bytes to r's digest. */
static void digest_add(run *r, const void *p, size_t n)
{
    r->digest = realloc(r->digest, r->digest_n + n);
    assert_non_null(r->digest);
    memcpy(r->digest + r->digest_n, p, n);
    r->digest_n += n;
}

/*
 * The whole training state but the time epochs took (which differs from one
 * process to another): parameters, optimizer, schedule and monitor states,
 * the dropout generator, the trainer's counters and epoch records.
 */
static void run_digest(run *r)
{
    digest_add(r, sgd_model_params(r->m), sgd_model_num_params(r->m) * sizeof(float));
    for (size_t i = 0; i < sgd_optim_state_count(r->o); i++) {
        int32_t type;
        size_t len;
        sgd_optim_state_describe(r->o, i, NULL, &type, &len);
        size_t bytes = len * (type == SGD_STATE_F32 ? 4 : 8);
        void *buf = malloc(bytes);
        sgd_optim_state_export(r->o, i, buf, bytes);
        digest_add(r, buf, bytes);
        free(buf);
    }
    if (r->s != NULL && sgd_sched_state_size(r->s) > 0) {
        double buf[64];
        size_t k = sgd_sched_state_size(r->s);
        assert_true(k <= 64);
        sgd_sched_state_export(r->s, buf, k);
        digest_add(r, buf, k * sizeof(double));
    }
    size_t k;
    sgd_monitor_state_size(r->mon, &k);
    double *mbuf = malloc(k * sizeof *mbuf);
    sgd_monitor_state_export(r->mon, mbuf, k);
    digest_add(r, mbuf, k * sizeof *mbuf);
    free(mbuf);
    uint64_t rng[4];
    sgd_model_get_rng_state(r->m, rng);
    digest_add(r, rng, sizeof rng);
    if (sgd_model_buffer_bytes(r->m) > 0)
        digest_add(r, sgd_model_buffers(r->m), sgd_model_buffer_bytes(r->m));
    digest_add(r, &r->stats, sizeof r->stats);
    for (int64_t e = 0; e < r->to.epochs; e++) {
        sgd_trainer_epoch ep;
        memset(&ep, 0, sizeof ep);
        ep.struct_size = sizeof ep;
        sgd_trainer_get_epoch(r->t, e, &ep);
        ep.seconds = 0;
        digest_add(r, &ep, sizeof ep);
    }
}

static void run_collect(run *r)
{
    r->n = sgd_model_num_params(r->m);
    r->params = malloc(r->n * sizeof(float));
    memcpy(r->params, sgd_model_params(r->m), r->n * sizeof(float));
    memset(&r->stats, 0, sizeof r->stats);
    r->stats.struct_size = sizeof r->stats;
    sgd_trainer_get_stats(r->t, &r->stats);
    sgd_monitor_get_verdict(r->mon, &r->verdict);
    r->val_loss = r->val_acc = NAN;
    for (int64_t e = r->to.epochs - 1; e >= 0; e--) {
        sgd_trainer_epoch ep;
        ep.struct_size = sizeof ep;
        if (sgd_trainer_get_epoch(r->t, e, &ep) == SGD_OK && ep.done) {
            r->val_loss = ep.val_loss;
            r->val_acc = ep.val_accuracy;
            break;
        }
    }
    sgd_model_evaluate(r->m, r->val, 0, &r->full_val_loss, &r->full_val_acc);
    r->state_n = sgd_trainer_state_size(r->t);
    r->state = malloc(r->state_n);
    sgd_trainer_state_export(r->t, r->state, r->state_n);
    run_digest(r);
}

static void *run_thread(void *arg)
{
    run *r = arg;
    r->st = run_build(r);
    if (r->st == SGD_OK && r->import != NULL)
        r->st = run_import(r, r->parts_from, r->import, r->parts_from->state_n);
    if (r->st == SGD_OK)
        r->st = sgd_trainer_fit(r->t, r->budget);
    snprintf(r->msg, sizeof r->msg, "%s", r->st == SGD_OK ? "" : sgd_error_last());
    if (r->t != NULL)
        run_collect(r);
    return NULL;
}

static void run_free(run *r)
{
    sgd_trainer_free(r->t);
    sgd_monitor_free(r->mon);
    sgd_sched_free(r->s);
    sgd_optim_free(r->o);
    sgd_model_free(r->m);
    sgd_dataset_free(r->val);
    sgd_dataset_free(r->train);
    free(r->params);
    free(r->state);
    free(r->digest);
}

/* What a test changes in one process's inputs (by its rank), or NULL. */
typedef void (*tweak_fn)(run *r);

/* Runs `tmpl` on P processes (threads), each changed by `tweak`; out[0..P-1] receive the results. */
static void run_group(const run *tmpl, int P, run *out, tcomm *c, tweak_fn tweak)
{
    pthread_t th[MAXP];
    for (int r = 0; r < P; r++) {
        out[r] = *tmpl;
        out[r].P = P;
        out[r].rank = r;
        out[r].c = c;
        if (tweak != NULL)
            tweak(&out[r]);
    }
    if (P == 1) {
        run_thread(&out[0]);
        return;
    }
    for (int r = 0; r < P; r++)
        assert_int_equal(pthread_create(&th[r], NULL, run_thread, &out[r]), 0);
    for (int r = 0; r < P; r++)
        pthread_join(th[r], NULL);
    assert_false(c->mismatch);
}

static run base_run(void)
{
    run r;
    memset(&r, 0, sizeof r);
    r.model = "6-32-relu-4";
    r.optim = "sgd:lr=0.1,momentum=0.9";
    r.sched = "cosine:T_max=80";
    sgd_trainer_options_init(&r.to);
    r.to.batch_size = 64;
    r.to.epochs = 4;
    r.to.guard_interval = 5;
    r.stop_at_step = -1;
    return r;
}


/* P processes each train on their share of every batch: the same run as one process, within float rounding. */
static void test_equivalence(void **state)
{
    (void)state;
    run tmpl = base_run();
    run one, two[2], three[3], again[2];
    tcomm c2, c3, c2b;
    tcomm_init(&c2, 2);
    tcomm_init(&c3, 3);
    tcomm_init(&c2b, 2);
    run_group(&tmpl, 1, &one, NULL, NULL);
    run_group(&tmpl, 2, two, &c2, NULL);
    run_group(&tmpl, 3, three, &c3, NULL);
    run_group(&tmpl, 2, again, &c2b, NULL);
    sgdt_assert_status(one.st, SGD_OK);
    for (int r = 0; r < 2; r++)
        sgdt_assert_status(two[r].st, SGD_OK);
    for (int r = 0; r < 3; r++)
        sgdt_assert_status(three[r].st, SGD_OK);
    /* Every process of a run holds the same parameters, bit for bit, and the same training state. */
    assert_memory_equal(two[0].params, two[1].params, one.n * sizeof(float));
    assert_memory_equal(three[0].params, three[2].params, one.n * sizeof(float));
    assert_int_equal(two[0].digest_n, two[1].digest_n);
    assert_memory_equal(two[0].digest, two[1].digest, two[0].digest_n);
    assert_memory_equal(three[0].digest, three[1].digest, three[0].digest_n);
    /* The same state layout as one process: it does not depend on the number of processes. */
    assert_int_equal(two[0].state_n, one.state_n);
    /* A rerun with the same number of processes (this communicator sums in a fixed order): bit for bit. */
    assert_memory_equal(two[0].params, again[0].params, one.n * sizeof(float));
    assert_memory_equal(two[0].digest, again[0].digest, two[0].digest_n);
    /* Against one process with the same global batch: float rounding only. */
    float d2 = sgdt_max_abs_diff(one.params, two[0].params, one.n), d3 = sgdt_max_abs_diff(one.params, three[0].params, one.n);
    printf("# 4 epochs of 16 steps: max |w1 - w2| = %.3g, max |w1 - w3| = %.3g\n", (double)d2, (double)d3);
    assert_true(d2 < 1e-4f && d3 < 1e-4f);
    assert_int_equal(two[0].stats.step, one.stats.step);
    assert_int_equal(two[0].stats.updates, one.stats.updates);
    assert_true(fabs(two[0].stats.last_loss - one.stats.last_loss) < 1e-5 * fabs(one.stats.last_loss));
    assert_int_equal(two[0].verdict, one.verdict);
    assert_int_equal(two[1].verdict, one.verdict);
    /* The validation metric of the shares is the whole set's. */
    for (int r = 0; r < 3; r++) {
        assert_true(fabs(three[r].val_loss - three[r].full_val_loss) < 1e-12);
        assert_true(fabs(three[r].val_acc - three[r].full_val_acc) < 1e-12);
        assert_true(three[r].val_loss == three[0].val_loss);
    }
    assert_true(fabs(one.val_acc - two[0].val_acc) <= 1.0 / (double)val_data.n + 1e-12);
    for (int r = 0; r < 2; r++) {
        run_free(&two[r]);
        run_free(&again[r]);
    }
    for (int r = 0; r < 3; r++)
        run_free(&three[r]);
    run_free(&one);
    tcomm_free(&c2);
    tcomm_free(&c3);
    tcomm_free(&c2b);
}

/* Dropout: shares draw different masks, yet every process keeps the same state. */
static void test_dropout_streams(void **state)
{
    (void)state;
    run tmpl = base_run();
    tmpl.model = "6-32-relu-dropout(0.3)-4";
    tmpl.to.epochs = 2;
    run two[2], again[2];
    tcomm c, c2;
    tcomm_init(&c, 2);
    tcomm_init(&c2, 2);
    run_group(&tmpl, 2, two, &c, NULL);
    run_group(&tmpl, 2, again, &c2, NULL);
    sgdt_assert_status(two[0].st, SGD_OK);
    sgdt_assert_status(two[1].st, SGD_OK);
    assert_memory_equal(two[0].params, two[1].params, two[0].n * sizeof(float));
    assert_memory_equal(two[0].digest, two[1].digest, two[0].digest_n); /* the generator included */
    assert_memory_equal(two[0].params, again[0].params, two[0].n * sizeof(float));
    for (int r = 0; r < 2; r++) {
        run_free(&two[r]);
        run_free(&again[r]);
    }
    tcomm_free(&c);
    tcomm_free(&c2);
}

/*
 * Batch normalisation: each process's batch statistics are its share's (as
 * torch without SyncBatchNorm), and its running statistics become process
 * 0's after every step (torch's broadcast_buffers): every process holds the
 * same parameters and buffers, and validates with the same statistics.
 */
static void test_batchnorm_buffers(void **state)
{
    (void)state;
    run tmpl = base_run();
    tmpl.model = "6-32-batchnorm1d-relu-16-batchnorm1d-relu-4";
    tmpl.to.epochs = 2;
    run two[2], again[2];
    tcomm c, c2;
    tcomm_init(&c, 2);
    tcomm_init(&c2, 2);
    run_group(&tmpl, 2, two, &c, NULL);
    run_group(&tmpl, 2, again, &c2, NULL);
    sgdt_assert_status(two[0].st, SGD_OK);
    sgdt_assert_status(two[1].st, SGD_OK);
    assert_true(sgd_model_buffer_bytes(two[0].m) > 0);
    assert_memory_equal(two[0].digest, two[1].digest, two[0].digest_n); /* buffers included */
    assert_memory_equal(two[0].digest, again[0].digest, two[0].digest_n);
    assert_true(two[0].val_loss == two[1].val_loss && isfinite(two[0].val_loss));
    for (int r = 0; r < 2; r++) {
        /* float rounding of other GEMM shapes: the shares are evaluated in other batches than the whole set */
        assert_true(fabs(two[r].val_loss - two[r].full_val_loss) < 1e-6 * two[r].full_val_loss);
        run_free(&two[r]);
        run_free(&again[r]);
    }
    tcomm_free(&c);
    tcomm_free(&c2);
}

/* The guard rescues all processes together; their verdicts agree. */
static void test_synchronized_rollback(void **state)
{
    (void)state;
    run tmpl = base_run();
    tmpl.optim = "sgd:lr=6,momentum=0.9";
    tmpl.sched = NULL;
    tmpl.to.epochs = 3;
    run one, two[2];
    tcomm c;
    tcomm_init(&c, 2);
    run_group(&tmpl, 1, &one, NULL, NULL);
    run_group(&tmpl, 2, two, &c, NULL);
    printf("# lr 6: one process %d rescues (%s), two processes %d and %d\n", one.nrescues, sgd_status_str(one.st),
           two[0].nrescues, two[1].nrescues);
    assert_true(two[0].stats.rescues >= 1);
    assert_int_equal(two[0].st, two[1].st);
    assert_int_equal(two[0].nrescues, two[1].nrescues);
    for (int k = 0; k < two[0].nrescues; k++)
        assert_int_equal(two[0].rescue_steps[k], two[1].rescue_steps[k]);
    assert_int_equal(two[0].stats.rollbacks, two[1].stats.rollbacks);
    assert_int_equal(two[0].stats.batches_run, two[1].stats.batches_run);
    assert_true(two[0].stats.guard_scale == two[1].stats.guard_scale);
    assert_int_equal(two[0].verdict, two[1].verdict);
    assert_memory_equal(two[0].params, two[1].params, two[0].n * sizeof(float));
    /* The first rescue comes at the step where one process alone has it. */
    assert_true(one.nrescues >= 1);
    assert_int_equal(two[0].rescue_steps[0], one.rescue_steps[0]);
    run_free(&one);
    run_free(&two[0]);
    run_free(&two[1]);
    tcomm_free(&c);
}

/* Process 0's decisions are everyone's: a callback that exists on process 0 only cannot split the run. */
static void test_decisions_of_process_0(void **state)
{
    (void)state;
    run tmpl = base_run();
    tmpl.optim = "sgd:lr=6,momentum=0.9";
    tmpl.sched = NULL;
    tmpl.events_stop_on_rank0 = true;
    run two[2];
    tcomm c;
    tcomm_init(&c, 2);
    run_group(&tmpl, 2, two, &c, NULL);
    sgdt_assert_status(two[0].st, SGD_ECANCELED);
    sgdt_assert_status(two[1].st, SGD_ECANCELED);
    assert_int_equal(two[0].stats.step, two[1].stats.step);
    assert_true(two[1].events_seen >= 1);
    run_free(&two[0]);
    run_free(&two[1]);
    tcomm_free(&c);
}

static void stop_on_rank1(run *r)
{
    r->stop_at_step = r->rank == 1 ? 7 : -1;
}

static void bad_answer_on_rank1(run *r)
{
    r->bad_event_answer = r->rank == 1;
}

static void budgets_differ(run *r)
{
    r->budget = r->rank == 0 ? 5 : 6;
}

/* A progress callback that stops on one process stops all at the same step. */
static void test_stop_from_one_process(void **state)
{
    (void)state;
    run tmpl = base_run();
    tmpl.to.progress_interval = 3;
    run two[2];
    tcomm c;
    tcomm_init(&c, 2);
    run_group(&tmpl, 2, two, &c, stop_on_rank1);
    sgdt_assert_status(two[0].st, SGD_ECANCELED);
    sgdt_assert_status(two[1].st, SGD_ECANCELED);
    assert_int_equal(two[0].stats.step, 9); /* the first report at or after step 7: step 8 done, 9 taken */
    assert_int_equal(two[1].stats.step, 9);
    assert_non_null(strstr(two[0].msg, "of this process or another"));
    run_free(&two[0]);
    run_free(&two[1]);
    tcomm_free(&c);
}

/* A step that fails on one process stops every process at that step. */
static void test_failure_on_one_process(void **state)
{
    (void)state;
    run tmpl = base_run();
    tmpl.optim = "sgd:lr=6,momentum=0.9";
    tmpl.sched = NULL;
    run two[2];
    tcomm c;
    tcomm_init(&c, 2);
    run_group(&tmpl, 2, two, &c, bad_answer_on_rank1);
    printf("# process 1: %s\n# process 0: %s\n", two[1].msg, two[0].msg);
    sgdt_assert_status(two[1].st, SGD_ECALLBACK);
    sgdt_assert_status(two[0].st, SGD_ECANCELED);
    assert_non_null(strstr(two[1].msg, "process 1 of 2"));
    assert_non_null(strstr(two[0].msg, "1 of 2 processes failed"));
    assert_int_equal(two[0].stats.step, two[1].stats.step);
    assert_int_equal(two[0].stats.stop_reason, SGD_TRAINER_FAILED);
    run_free(&two[0]);
    run_free(&two[1]);
    tcomm_free(&c);

    /* The transport fails on every process at its 10th call: all stop with its status, naming the step. */
    tmpl = base_run();
    tcomm_init(&c, 2);
    c.fail_call = 10;
    run_group(&tmpl, 2, two, &c, NULL);
    for (int r = 0; r < 2; r++) {
        sgdt_assert_status(two[r].st, SGD_EIO);
        assert_non_null(strstr(two[r].msg, "injected at call 10"));
        assert_non_null(strstr(two[r].msg, "sgd_trainer_fit: step"));
        assert_int_equal(two[r].stats.stop_reason, SGD_TRAINER_FAILED);
        run_free(&two[r]);
    }
    tcomm_free(&c);
}

/* sgd_trainer_fit() refuses to start when the processes are not at the same step with the same budget. */
static void test_processes_in_step(void **state)
{
    (void)state;
    run tmpl = base_run();
    run two[2];
    tcomm c;
    tcomm_init(&c, 2);
    run_group(&tmpl, 2, two, &c, budgets_differ);
    for (int r = 0; r < 2; r++) {
        sgdt_assert_status(two[r].st, SGD_ESTATE);
        assert_non_null(strstr(two[r].msg, "not in step"));
        assert_int_equal(two[r].stats.step, 0);
        run_free(&two[r]);
    }
    tcomm_free(&c);
}

/*
 * A state saved by process 0 of a 2-process run resumes on 2 processes bit
 * for bit, and on 3 or on 1 within float rounding: the state does not
 * depend on the number of processes.
 */
static void test_resume_any_count(void **state)
{
    (void)state;
    run tmpl = base_run();
    run whole[2], first[2], resumed2[2], resumed3[3], resumed1;
    tcomm c1, c2, c3, c4;
    tcomm_init(&c1, 2);
    tcomm_init(&c2, 2);
    tcomm_init(&c3, 2);
    tcomm_init(&c4, 3);
    run_group(&tmpl, 2, whole, &c1, NULL);
    tmpl.budget = 23;
    run_group(&tmpl, 2, first, &c2, NULL);
    sgdt_assert_status(first[0].st, SGD_OK);
    assert_int_equal(first[0].stats.step, 23);
    run rest = base_run();
    rest.import = first[0].state;
    rest.parts_from = &first[0];
    run_group(&rest, 2, resumed2, &c3, NULL);
    run_group(&rest, 3, resumed3, &c4, NULL);
    run_group(&rest, 1, &resumed1, NULL, NULL);
    sgdt_assert_status(resumed2[0].st, SGD_OK);
    sgdt_assert_status(resumed3[2].st, SGD_OK);
    sgdt_assert_status(resumed1.st, SGD_OK);
    assert_int_equal(resumed2[1].stats.step, whole[0].stats.step);
    assert_memory_equal(resumed2[1].params, whole[0].params, whole[0].n * sizeof(float));
    assert_memory_equal(resumed2[0].digest, whole[0].digest, whole[0].digest_n);
    float d3 = sgdt_max_abs_diff(resumed3[1].params, whole[0].params, whole[0].n);
    float d1 = sgdt_max_abs_diff(resumed1.params, whole[0].params, whole[0].n);
    printf("# resumed at step 23: on 3 processes max diff %.3g, on 1 process %.3g\n", (double)d3, (double)d1);
    assert_true(d3 < 1e-4f && d1 < 1e-4f);
    assert_int_equal(resumed3[0].stats.step, whole[0].stats.step);
    for (int r = 0; r < 2; r++) {
        run_free(&whole[r]);
        run_free(&first[r]);
        run_free(&resumed2[r]);
    }
    for (int r = 0; r < 3; r++)
        run_free(&resumed3[r]);
    run_free(&resumed1);
    tcomm_free(&c1);
    tcomm_free(&c2);
    tcomm_free(&c3);
    tcomm_free(&c4);
}

static sgd_status noop_allreduce(float *f, size_t nf, double *d, size_t nd, void *user)
{
    (void)f;
    (void)nf;
    (void)d;
    (void)nd;
    (void)user;
    return SGD_OK;
}

static void test_set_comm_input(void **state)
{
    (void)state;
    run r = base_run();
    r.P = 1;
    sgdt_assert_status(run_build(&r), SGD_OK);
    sgd_trainer_comm c;
    sgd_trainer_comm_init(&c);
    assert_int_equal(c.struct_size, sizeof c);
    assert_int_equal(c.size, 1);
    assert_int_equal(c.rank, 0);
    assert_null(c.allreduce);
    sgdt_assert_status(sgd_trainer_set_comm(NULL, &c), SGD_EINVAL);
    sgdt_assert_status(sgd_trainer_set_comm(r.t, &c), SGD_OK); /* alone: no allreduce needed */
    sgdt_assert_status(sgd_trainer_set_comm(r.t, NULL), SGD_OK);
    c.size = 2;
    sgdt_assert_status(sgd_trainer_set_comm(r.t, &c), SGD_EINVAL);
    sgdt_assert_error_contains("allreduce is NULL");
    c.allreduce = noop_allreduce;
    c.rank = 2;
    sgdt_assert_status(sgd_trainer_set_comm(r.t, &c), SGD_EINVAL);
    sgdt_assert_error_contains("rank=2");
    c.rank = -1;
    sgdt_assert_status(sgd_trainer_set_comm(r.t, &c), SGD_EINVAL);
    c.rank = 0;
    c.size = 0;
    sgdt_assert_status(sgd_trainer_set_comm(r.t, &c), SGD_EINVAL);
    sgdt_assert_error_contains("size=0");
    c.size = SGD_LOADER_MAX_SHARDS + 1;
    sgdt_assert_status(sgd_trainer_set_comm(r.t, &c), SGD_EINVAL);
    sgd_trainer_comm raw;
    memset(&raw, 0, sizeof raw);
    sgdt_assert_status(sgd_trainer_set_comm(r.t, &raw), SGD_EINVAL);
    sgdt_assert_error_contains("struct_size");
    /* After all that the trainer still trains alone, as before. */
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_OK);
    run_collect(&r);
    run alone = base_run();
    run_group(&alone, 1, &alone, NULL, NULL);
    assert_memory_equal(r.params, alone.params, r.n * sizeof(float));
    run_free(&alone);
    run_free(&r);
}

/*
 * Two processes (threads): process 0's allocations go through the failing
 * allocator. Both build and set their communicator, then learn whether both
 * succeeded (a barrier) before training: a process whose setup failed must
 * not leave the other one waiting in a sum.
 */
typedef struct alloc_case {
    run r[2];
    tcomm c;
    pthread_barrier_t setup;
    sgd_status st[2];
    long calls_before, calls_after;
    sgdt_alloc *t;
} alloc_case;

static void *alloc_case_proc(void *arg)
{
    run *r = arg;
    alloc_case *ac = r->owner;
    sgd_status st = run_build(r);
    ac->st[r->rank] = st;
    if (st != SGD_OK)
        snprintf(r->msg, sizeof r->msg, "%s", sgd_error_last());
    pthread_barrier_wait(&ac->setup);
    if (ac->st[0] == SGD_OK && ac->st[1] == SGD_OK) {
        if (r->rank == 0)
            ac->calls_before = ac->t->calls;
        r->st = sgd_trainer_fit(r->t, 40);
        if (r->rank == 0)
            ac->calls_after = ac->t->calls;
    } else if (st == SGD_ENOMEM && r->t != NULL) {
        /* Unchanged by the failed sgd_trainer_set_comm(): it still trains alone. */
        sgd_trainer_comm alone;
        sgd_trainer_comm_init(&alone);
        r->st = sgd_trainer_set_comm(r->t, &alone) == SGD_OK ? sgd_trainer_fit(r->t, 3) : SGD_EINTERNAL;
        st = SGD_ENOMEM;
    }
    if (st != SGD_OK)
        r->st = st;
    return NULL;
}

static sgd_status scenario_set_comm(sgdt_alloc *t, void *ctx)
{
    (void)ctx;
    alloc_case *ac = calloc(1, sizeof *ac);
    assert_non_null(ac);
    ac->t = t;
    tcomm_init(&ac->c, 2);
    pthread_barrier_init(&ac->setup, NULL, 2);
    for (int k = 0; k < 2; k++) {
        ac->r[k] = base_run();
        ac->r[k].P = 2;
        ac->r[k].rank = k;
        ac->r[k].c = &ac->c;
        ac->r[k].alloc = k == 0 ? &t->base : NULL;
        ac->r[k].owner = ac;
    }
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, alloc_case_proc, &ac->r[1]), 0);
    alloc_case_proc(&ac->r[0]);
    pthread_join(th, NULL);
    sgd_status st = ac->r[0].st;
    if (st == SGD_OK) {
        sgdt_assert_status(ac->r[1].st, SGD_OK);
        assert_int_equal(ac->calls_after, ac->calls_before); /* a data-parallel step allocates nothing */
    } else if (st == SGD_ENOMEM) {
        sgd__err(SGD_ENOMEM, "%s", ac->r[0].msg); /* process 0's message, for the walker */
    }
    for (int k = 0; k < 2; k++)
        run_free(&ac->r[k]);
    pthread_barrier_destroy(&ac->setup);
    tcomm_free(&ac->c);
    free(ac);
    return st;
}

static void test_set_comm_alloc_failures(void **state)
{
    (void)state;
    long n = sgdt_walk_alloc_failures(scenario_set_comm, NULL);
    printf("# set_comm scenario walked over %ld allocations\n", n);
    assert_true(n > 5);
}

/* ------------------------------------------------------------ search shards */

static void trial_outputs_equal(const sgd_search_trial *a, const sgd_search_trial *b)
{
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->steps, b->steps);
    assert_int_equal(a->max_steps, b->max_steps);
    assert_int_equal(a->verdict, b->verdict);
    assert_int_equal(a->stop_reason, b->stop_reason);
    assert_int_equal(a->first_alarm, b->first_alarm);
    assert_memory_equal(&a->final_loss, &b->final_loss, sizeof(double));
    assert_memory_equal(&a->val_loss, &b->val_loss, sizeof(double));
    assert_memory_equal(&a->val_accuracy, &b->val_accuracy, sizeof(double));
}

static void test_search_shards(void **state)
{
    (void)state;
    sgd_dataset *tr, *va;
    sgdt_assert_status(sgd_dataset_from_labels(&tr, train_data.x, train_data.y, 400, DIM, NULL), SGD_OK);
    sgdt_assert_status(sgd_dataset_from_labels(&va, val_data.x, val_data.y, val_data.n, DIM, NULL), SGD_OK);
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    to.batch_size = 50;
    to.guard = 0;
    for (int method = 0; method < 2; method++) {
        sgd_search_options so;
        sgd_search_options_init(&so);
        assert_int_equal(so.shard_count, 1);
        so.method = method;
        so.lr_min = 1e-3;
        so.lr_max = 30;
        so.lr_count = 7;
        so.trials = 5;
        so.seed = 4;
        so.trainer = &to;
        sgd_search *serial, *part[3];
        sgdt_assert_status(sgd_search_run(&serial, "6-16-relu-4", tr, va, &so, NULL), SGD_OK);
        size_t n = sgd_search_count(serial);
        so.shard_count = 3;
        for (int32_t k = 0; k < 3; k++) {
            so.shard_index = k;
            so.threads = 1 + k % 2;
            sgdt_assert_status(sgd_search_run(&part[k], "6-16-relu-4", tr, va, &so, NULL), SGD_OK);
            assert_int_equal(sgd_search_count(part[k]), n);
        }
        /* Each shard ran its trials only; the others wait to be filled in. */
        for (size_t i = 0; i < n; i++)
            for (int32_t k = 0; k < 3; k++) {
                sgd_search_trial t;
                t.struct_size = sizeof t;
                sgdt_assert_status(sgd_search_get_trial(part[k], i, &t), SGD_OK);
                if ((int32_t)(i % 3) == k) {
                    sgd_search_trial s;
                    s.struct_size = sizeof s;
                    sgd_search_get_trial(serial, i, &s);
                    trial_outputs_equal(&t, &s);
                } else {
                    assert_int_equal(t.status, SGD_ENOTFOUND);
                    assert_int_equal(t.steps, 0);
                }
            }
        /* Shard 0 filled in from the others is the serial search, best trial included. */
        for (size_t i = 0; i < n; i++) {
            sgd_search_trial t;
            t.struct_size = sizeof t;
            sgd_search_get_trial(part[i % 3], i, &t);
            sgdt_assert_status(sgd_search_set_trial(part[0], i, &t), SGD_OK);
        }
        size_t b0, b1;
        for (size_t i = 0; i < n; i++) {
            sgd_search_trial a, s;
            a.struct_size = s.struct_size = sizeof a;
            sgd_search_get_trial(part[0], i, &a);
            sgd_search_get_trial(serial, i, &s);
            trial_outputs_equal(&a, &s);
        }
        sgdt_assert_status(sgd_search_best(serial, &b0), SGD_OK);
        sgdt_assert_status(sgd_search_best(part[0], &b1), SGD_OK);
        assert_int_equal(b0, b1);

        /* An outcome can only go where it belongs. */
        sgd_search_trial t;
        t.struct_size = sizeof t;
        sgd_search_get_trial(serial, 1, &t);
        sgdt_assert_status(sgd_search_set_trial(part[1], 2, &t), SGD_EINVAL);
        sgdt_assert_error_contains("index");
        t.index = 2;
        sgdt_assert_status(sgd_search_set_trial(part[1], 2, &t), SGD_EINVAL);
        sgdt_assert_error_contains("lr");
        sgd_search_get_trial(serial, 2, &t);
        t.batch_size++;
        sgdt_assert_status(sgd_search_set_trial(part[1], 2, &t), SGD_EINVAL);
        sgdt_assert_error_contains("batch_size");
        sgd_search_get_trial(serial, 2, &t);
        t.optimizer = "adam";
        sgdt_assert_status(sgd_search_set_trial(part[1], 2, &t), SGD_EINVAL);
        sgdt_assert_error_contains("optimizer");
        sgd_search_get_trial(serial, 2, &t);
        t.status = SGD_ENOTFOUND;
        sgdt_assert_status(sgd_search_set_trial(part[1], 2, &t), SGD_ERANGE);
        t.status = SGD_OK;
        t.val_accuracy = 1.5;
        sgdt_assert_status(sgd_search_set_trial(part[1], 2, &t), SGD_ERANGE);
        t.val_accuracy = 0.5;
        t.steps = -1;
        sgdt_assert_status(sgd_search_set_trial(part[1], 2, &t), SGD_ERANGE);
        sgd_search_get_trial(serial, 2, &t);
        sgdt_assert_status(sgd_search_set_trial(part[1], n, &t), SGD_EINVAL);
        sgdt_assert_status(sgd_search_set_trial(NULL, 0, &t), SGD_EINVAL);
        sgdt_assert_status(sgd_search_set_trial(part[1], 0, NULL), SGD_EINVAL);
        t.struct_size = 8;
        sgdt_assert_status(sgd_search_set_trial(part[1], 2, &t), SGD_EINVAL);
        for (int32_t k = 0; k < 3; k++)
            sgd_search_free(part[k]);
        sgd_search_free(serial);

        /* Bad shards. */
        sgd_search *s = (sgd_search *)1;
        so.shard_index = 3;
        sgdt_assert_status(sgd_search_run(&s, "6-16-relu-4", tr, va, &so, NULL), SGD_ERANGE);
        sgdt_assert_error_contains("shard_index=3");
        assert_null(s);
        so.shard_count = 0;
        so.shard_index = 0;
        sgdt_assert_status(sgd_search_run(&s, "6-16-relu-4", tr, va, &so, NULL), SGD_ERANGE);
        sgdt_assert_error_contains("shard_count=0");
        /* A caller built against 0.1's headers runs every trial. */
        sgd_search_options old;
        sgd_search_options_init(&old);
        old.struct_size = (uint32_t)offsetof(sgd_search_options, shard_index);
        old.lr_count = 2;
        old.trainer = &to;
        old.shard_count = 5;
        sgdt_assert_status(sgd_search_run(&s, "6-16-relu-4", tr, va, &old, NULL), SGD_OK);
        sgd_search_get_trial(s, 1, &t);
        assert_int_equal(t.status, SGD_OK);
        sgd_search_free(s);
    }
    sgd_dataset_free(tr);
    sgd_dataset_free(va);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader_shards),
        cmocka_unit_test(test_equivalence),
        cmocka_unit_test(test_dropout_streams),
        cmocka_unit_test(test_batchnorm_buffers),
        cmocka_unit_test(test_synchronized_rollback),
        cmocka_unit_test(test_decisions_of_process_0),
        cmocka_unit_test(test_stop_from_one_process),
        cmocka_unit_test(test_failure_on_one_process),
        cmocka_unit_test(test_processes_in_step),
        cmocka_unit_test(test_resume_any_count),
        cmocka_unit_test(test_set_comm_input),
        cmocka_unit_test(test_set_comm_alloc_failures),
        cmocka_unit_test(test_search_shards),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
