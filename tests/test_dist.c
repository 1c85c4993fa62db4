/*
 * libsgdlab-mpi (sgdlab/dist.h), run by meson under `mpiexec -n 2`: every
 * test is collective, both processes run the same tests in the same order.
 * Each process also trains the single-process reference itself, so that the
 * comparison needs no file. A test that fails on one process leaves the
 * other in a collective until the communicator's timeout ends the job.
 * SPDX-License-Identifier: MIT
 */
#include "util/sgdtest.h"

#include <mpi.h> /* before sgdlab/dist.h: it then offers sgd_dist_new_comm(MPI_Comm) */

#include "sgdlab/dist.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIM 8
#define ROWS 2048
#define VAL 500

static float xs[ROWS * DIM], xv[VAL * DIM];
static int32_t ys[ROWS], yv[VAL];
static sgd_dist *world;
static int rank, size;

static sgd_dist_options test_options(void)
{
    sgd_dist_options o;
    sgd_dist_options_init(&o);
    o.timeout = 60; /* a test that leaves one process behind ends the job instead of hanging */
    return o;
}

static int setup(void **state)
{
    (void)state;
    sgdt_blobs(xs, ys, ROWS, DIM, 4, 1);
    sgdt_blobs(xv, yv, VAL, DIM, 4, 2);
    sgd_dist_options o = test_options();
    if (sgd_dist_new(&world, &o, NULL) != SGD_OK) {
        fprintf(stderr, "sgd_dist_new: %s\n", sgd_error_last());
        return -1;
    }
    rank = sgd_dist_rank(world);
    size = sgd_dist_size(world);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sgd_dist_free(world); /* finalises MPI: sgd_dist_new() initialised it */
    return 0;
}

/* Everyone's value of x, on everyone: fails unless all processes agree. */
static void assert_same_everywhere(const void *p, size_t n)
{
    uint64_t *sizes = calloc((size_t)size, sizeof *sizes);
    void *all = NULL;
    sgdt_assert_status(sgd_dist_gather(world, p, n, &all, sizes), SGD_OK);
    int bad = 0;
    if (rank == 0)
        for (int r = 1; r < size; r++)
            if (sizes[r] != n || memcmp(all, (const char *)all + (size_t)r * n, n) != 0)
                bad = 1;
    sgd_dist_buffer_free(world, all);
    free(sizes);
    MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
    assert_int_equal(bad, 0);
}

/* ------------------------------------------------------------ a trainer */

typedef struct rig {
    sgd_dataset *train, *val;
    sgd_model *m;
    sgd_optim *o;
    sgd_sched *s;
    sgd_monitor *mon;
    sgd_trainer *t;
    int64_t rescue_steps[16];
    int nrescues;
} rig;

static int32_t count_rescues(const sgd_trainer_event *ev, double *lr_scale, void *user)
{
    (void)lr_scale;
    rig *r = user;
    if (ev->kind == SGD_TRAINER_EVENT_RESCUE && r->nrescues < 16)
        r->rescue_steps[r->nrescues++] = ev->step;
    return ev->action;
}

static void rig_make(rig *r, const char *model, const char *optim, const char *sched, int64_t batch, int64_t epochs,
                     uint64_t seed)
{
    memset(r, 0, sizeof *r);
    sgdt_assert_status(sgd_dataset_from_labels(&r->train, xs, ys, ROWS, DIM, NULL), SGD_OK);
    sgdt_assert_status(sgd_dataset_from_labels(&r->val, xv, yv, VAL, DIM, NULL), SGD_OK);
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.seed = seed;
    mo.max_batch = batch;
    sgdt_assert_status(sgd_model_from_spec(&r->m, model, &mo, NULL), SGD_OK);
    sgdt_assert_status(sgd_optim_new(&r->o, optim, sgd_model_num_params(r->m), NULL), SGD_OK);
    if (sched != NULL) {
        double lr;
        sgd_optim_get(r->o, "lr", &lr);
        sgdt_assert_status(sgd_sched_new(&r->s, sched, lr, NULL), SGD_OK);
    }
    sgdt_assert_status(sgd_monitor_new(&r->mon, NULL, NULL), SGD_OK);
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    to.batch_size = batch;
    to.epochs = epochs;
    to.guard_interval = 10;
    sgdt_assert_status(sgd_trainer_new(&r->t, r->m, r->o, r->s, r->mon, r->train, r->val, &to, NULL), SGD_OK);
    sgd_trainer_set_event_callback(r->t, count_rescues, r);
}

static void rig_free(rig *r)
{
    sgd_trainer_free(r->t);
    sgd_monitor_free(r->mon);
    sgd_sched_free(r->s);
    sgd_optim_free(r->o);
    sgd_model_free(r->m);
    sgd_dataset_free(r->val);
    sgd_dataset_free(r->train);
}

static sgd_trainer_stats stats_of(const sgd_trainer *t)
{
    sgd_trainer_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    sgd_trainer_get_stats(t, &s);
    return s;
}


static sgd_dist *make_dist(int fixed, int64_t check)
{
    sgd_dist_options o = test_options();
    o.fixed_order = fixed;
    o.check_interval = check;
    sgd_dist *d;
    sgdt_assert_status(sgd_dist_new(&d, &o, NULL), SGD_OK);
    return d;
}

/* ------------------------------------------------------------ tests */

static void test_basics(void **state)
{
    (void)state;
    assert_int_equal(size, 2);
    assert_true(rank == 0 || rank == 1);
    assert_true(sgd_dist_local_size(world) >= 1 && sgd_dist_local_size(world) <= size);
    assert_true(sgd_dist_nodes(world) >= 1);
    assert_true(strlen(sgd_dist_mpi_library(world)) > 0);
    if (rank == 0)
        printf("# %s, %d processes on %d node(s)\n", sgd_dist_mpi_library(world), size, sgd_dist_nodes(world));
    assert_int_equal(sgd_dist_rank(NULL), -1);
    assert_int_equal(sgd_dist_size(NULL), 0);
    assert_string_equal(sgd_dist_mpi_library(NULL), "");

    /* Layout pins of libsgdlab-mpi's public structs (fields are only appended). */
    assert_int_equal(sizeof(sgd_dist_options), 32);
    assert_int_equal(offsetof(sgd_dist_options, fixed_order), 4);
    assert_int_equal(offsetof(sgd_dist_options, check_interval), 8);
    assert_int_equal(offsetof(sgd_dist_options, timeout), 16);
    assert_int_equal(offsetof(sgd_dist_options, abort_on_failure), 24);
    assert_int_equal(sizeof(sgd_dist_stats), 56);
    assert_int_equal(offsetof(sgd_dist_stats, sums), 8);
    assert_int_equal(offsetof(sgd_dist_stats, gradient_bytes), 24);
    assert_int_equal(offsetof(sgd_dist_stats, seconds), 32);
    assert_int_equal(offsetof(sgd_dist_stats, checks), 48);

    sgd_dist_options o;
    sgd_dist_options_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    assert_true(o.timeout == 600);
    assert_int_equal(o.abort_on_failure, 1);
    sgdt_assert_status(sgd_dist_options_parse(&o, "dist:fixed_order=yes,check_interval=25,timeout=1.5"), SGD_OK);
    assert_int_equal(o.fixed_order, 1);
    assert_int_equal(o.check_interval, 25);
    assert_true(o.timeout == 1.5);
    sgd_dist_options before = o;
    sgdt_assert_status(sgd_dist_options_parse(&o, "timeout=-1"), SGD_ERANGE);
    sgdt_assert_error_contains("timeout=-1");
    sgdt_assert_status(sgd_dist_options_parse(&o, "fixed_order=2"), SGD_EINVAL);
    sgdt_assert_status(sgd_dist_options_parse(&o, "check_interval=1.5"), SGD_EINVAL);
    sgdt_assert_status(sgd_dist_options_parse(&o, "bogus=1"), SGD_ENOTFOUND);
    sgdt_assert_error_contains("bogus");
    sgdt_assert_status(sgd_dist_options_parse(&o, "timeout"), SGD_EINVAL);
    sgdt_assert_status(sgd_dist_options_parse(&o, "timeout=nan"), SGD_EINVAL);
    assert_memory_equal(&o, &before, sizeof o);
    sgdt_assert_status(sgd_dist_options_parse(NULL, ""), SGD_EINVAL);
    sgd_dist_options raw;
    memset(&raw, 0, sizeof raw);
    sgd_dist *d = (sgd_dist *)1;
    sgdt_assert_status(sgd_dist_new(&d, &raw, NULL), SGD_EINVAL);
    assert_null(d);
    sgdt_assert_status(sgd_dist_new_fcomm(&d, (int64_t)1 << 40, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_dist_new_fcomm(&d, (int64_t)MPI_Comm_c2f(MPI_COMM_NULL), NULL, NULL), SGD_EINVAL);

    /* A host communicator by its Fortran handle: the two processes split in two communicators of one. */
    MPI_Comm self;
    MPI_Comm_split(MPI_COMM_WORLD, rank, 0, &self);
    sgdt_assert_status(sgd_dist_new_comm(&d, self, NULL, NULL), SGD_OK);
    assert_int_equal(sgd_dist_size(d), 1);
    assert_int_equal(sgd_dist_rank(d), 0);
    int32_t all = 0;
    sgdt_assert_status(sgd_dist_agree(d, rank == 0, &all), SGD_OK); /* alone: its own answer */
    assert_int_equal(all, rank == 0);
    sgd_dist_free(d);
    MPI_Comm_free(&self);

    /* Agreement over both. */
    sgdt_assert_status(sgd_dist_agree(world, 1, &all), SGD_OK);
    assert_int_equal(all, 1);
    sgdt_assert_status(sgd_dist_agree(world, rank == 1, &all), SGD_OK);
    assert_int_equal(all, 0);
    sgdt_assert_status(sgd_dist_agree(NULL, 1, &all), SGD_EINVAL);

    /* Gathering: rank r sends r + 1 bytes of value r + 10. */
    unsigned char mine[4];
    memset(mine, rank + 10, sizeof mine);
    uint64_t sizes[2] = {0, 0};
    void *got = (void *)1;
    sgdt_assert_status(sgd_dist_gather(world, mine, (size_t)rank + 1, &got, sizes), SGD_OK);
    if (rank == 0) {
        assert_int_equal(sizes[0], 1);
        assert_int_equal(sizes[1], 2);
        const unsigned char *g = got;
        assert_int_equal(g[0], 10);
        assert_int_equal(g[1], 11);
        assert_int_equal(g[2], 11);
    } else {
        assert_null(got);
    }
    sgd_dist_buffer_free(world, got);
    sgdt_assert_status(sgd_dist_gather(world, NULL, 0, &got, sizes), SGD_OK);
    assert_null(got);
}

/*
 * The equivalence: 2 processes with 64 rows each of every batch of
 * 128 train as one process with batches of 128 in the same order, within
 * float rounding; with the fixed order, a rerun is bit for bit the same.
 * Every process holds the same parameters and reaches the same verdict.
 */
static void test_equivalence(void **state)
{
    (void)state;
    const char *model = "8-64-relu-32-relu-4", *optim = "sgd:lr=0.1,momentum=0.9", *sched = "cosine:T_max=64";
    rig one;
    rig_make(&one, model, optim, sched, 128, 4, 3);
    sgdt_assert_status(sgd_trainer_fit(one.t, 0), SGD_OK);
    size_t n = sgd_model_num_params(one.m);
    float *runs[3];
    for (int k = 0; k < 3; k++) {
        sgd_dist *d = make_dist(k > 0, k == 2 ? 1 : 0);
        rig two;
        rig_make(&two, model, optim, sched, 128, 4, 3);
        sgdt_assert_status(sgd_dist_attach(d, two.t), SGD_OK);
        sgdt_assert_status(sgd_trainer_fit(two.t, 0), SGD_OK);
        runs[k] = malloc(n * sizeof(float));
        memcpy(runs[k], sgd_model_params(two.m), n * sizeof(float));
        assert_same_everywhere(runs[k], n * sizeof(float));
        sgd_trainer_stats a = stats_of(two.t), b = stats_of(one.t);
        assert_int_equal(a.step, b.step);
        assert_int_equal(a.updates, b.updates);
        int32_t verdict[2];
        sgd_monitor_get_verdict(two.mon, &verdict[0]);
        sgd_monitor_get_verdict(one.mon, &verdict[1]);
        assert_int_equal(verdict[0], verdict[1]);
        assert_same_everywhere(verdict, sizeof verdict[0]);
        assert_same_everywhere(&a.last_loss, sizeof a.last_loss);
        sgd_dist_stats ds;
        ds.struct_size = sizeof ds;
        sgdt_assert_status(sgd_dist_get_stats(d, &ds), SGD_OK);
        assert_int_equal(ds.gradient_sums, a.step);
        assert_int_equal(ds.gradient_bytes, (uint64_t)a.step * n * sizeof(float));
        if (k == 2)
            assert_int_equal(ds.checks, a.step); /* check_interval=1: before every gradient sum */
        sgd_trainer_epoch e1, e2;
        e1.struct_size = e2.struct_size = sizeof e1;
        sgd_trainer_get_epoch(two.t, 3, &e1);
        sgd_trainer_get_epoch(one.t, 3, &e2);
        assert_true(fabs(e1.val_accuracy - e2.val_accuracy) <= 1.0 / VAL + 1e-12);
        if (rank == 0)
            printf("# %s: max |w(1 process) - w(2)| = %.3g after %lld steps; val acc %.4f vs %.4f alone\n",
                   k == 0 ? "MPI_Allreduce" : k == 1 ? "fixed order" : "fixed order + checksums",
                   (double)sgdt_max_abs_diff(sgd_model_params(one.m), runs[k], n), (long long)a.step, e1.val_accuracy,
                   e2.val_accuracy);
        assert_true(sgdt_max_abs_diff(sgd_model_params(one.m), runs[k], n) < 1e-4f);
        sgdt_assert_status(sgd_dist_detach(d, two.t), SGD_OK);
        sgdt_assert_status(sgd_dist_detach(d, two.t), SGD_ENOTFOUND);
        rig_free(&two);
        sgd_dist_free(d);
    }
    assert_memory_equal(runs[1], runs[2], n * sizeof(float)); /* fixed order: bit for bit */
    for (int k = 0; k < 3; k++)
        free(runs[k]);
    rig_free(&one);
}

/* Batch normalisation's running statistics are rank 0's on every process after every step. */
static void test_batchnorm(void **state)
{
    (void)state;
    rig r;
    rig_make(&r, "8-32-batchnorm1d-relu-4", "sgd:lr=0.05,momentum=0.9", NULL, 128, 2, 4);
    sgdt_assert_status(sgd_dist_attach(world, r.t), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_OK);
    assert_true(sgd_model_buffer_bytes(r.m) > 0);
    assert_same_everywhere(sgd_model_buffers(r.m), sgd_model_buffer_bytes(r.m));
    assert_same_everywhere(sgd_model_params(r.m), sgd_model_num_params(r.m) * sizeof(float));
    sgd_trainer_epoch e;
    e.struct_size = sizeof e;
    sgd_trainer_get_epoch(r.t, 1, &e);
    assert_same_everywhere(&e.val_loss, sizeof e.val_loss);
    sgdt_assert_status(sgd_dist_detach(world, r.t), SGD_OK);
    rig_free(&r);
}

/* The guard's rollback happens on every process at once, where one process alone has it. */
static void test_synchronized_rollback(void **state)
{
    (void)state;
    const char *model = "8-64-relu-4", *optim = "sgd:lr=8,momentum=0.9";
    rig one, two;
    rig_make(&one, model, optim, NULL, 128, 3, 5);
    sgd_status st1 = sgd_trainer_fit(one.t, 0);
    rig_make(&two, model, optim, NULL, 128, 3, 5);
    sgdt_assert_status(sgd_dist_attach(world, two.t), SGD_OK);
    sgd_status st2 = sgd_trainer_fit(two.t, 0);
    assert_int_equal(st1, st2);
    sgd_trainer_stats a = stats_of(two.t), b = stats_of(one.t);
    if (rank == 0)
        printf("# lr 8: %lld rollbacks on 2 processes (first at step %lld), %lld alone (first at %lld)\n",
               (long long)a.rollbacks, (long long)two.rescue_steps[0], (long long)b.rollbacks,
               (long long)one.rescue_steps[0]);
    assert_true(a.rollbacks >= 1);
    assert_int_equal(two.rescue_steps[0], one.rescue_steps[0]);
    int64_t mine[4] = {a.rescues, a.rollbacks, a.batches_run, two.nrescues};
    assert_same_everywhere(mine, sizeof mine);
    assert_same_everywhere(two.rescue_steps, sizeof two.rescue_steps);
    assert_same_everywhere(sgd_model_params(two.m), sgd_model_num_params(two.m) * sizeof(float));
    sgdt_assert_status(sgd_dist_detach(world, two.t), SGD_OK);
    rig_free(&two);
    rig_free(&one);
}

/* Rank 0 writes a checkpoint; the run resumes from it on both processes, bit for bit with the fixed order. */
static void test_resume(void **state)
{
    (void)state;
    const char *model = "8-32-relu-dropout(0.2)-4", *optim = "adam:lr=3e-3", *sched = "cosine:T_max=48";
    char path[256];
    snprintf(path, sizeof path, "test_dist_%d.ckpt", (int)getppid());
    sgd_dist *d = make_dist(1, 7);
    rig whole;
    rig_make(&whole, model, optim, sched, 128, 3, 9);
    sgdt_assert_status(sgd_dist_attach(d, whole.t), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(whole.t, 0), SGD_OK);

    rig first;
    rig_make(&first, model, optim, sched, 128, 3, 9);
    sgdt_assert_status(sgd_dist_attach(d, first.t), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(first.t, 20), SGD_OK);
    sgd_status st = SGD_OK;
    if (rank == 0) {
        sgd_checkpoint_parts parts;
        sgd_checkpoint_parts_init(&parts);
        parts.trainer = first.t;
        st = sgd_checkpoint_save(path, &parts, NULL);
    }
    int32_t ok;
    sgdt_assert_status(sgd_dist_agree(d, st == SGD_OK, &ok), SGD_OK);
    assert_int_equal(ok, 1);

    /* Rank 0 reads the file; sgd_dist_attach() brings its state to rank 1, which built a fresh trainer. */
    rig resumed;
    rig_make(&resumed, model, optim, sched, 128, 3, rank == 0 ? 9 : 1234);
    if (rank == 0) {
        sgd_checkpoint_parts parts;
        sgd_checkpoint_parts_init(&parts);
        parts.trainer = resumed.t;
        sgdt_assert_status(sgd_checkpoint_load(path, &parts, NULL), SGD_OK);
    }
    sgdt_assert_status(sgd_dist_attach(d, resumed.t), SGD_OK);
    assert_int_equal(stats_of(resumed.t).step, 20);
    sgdt_assert_status(sgd_trainer_fit(resumed.t, 0), SGD_OK);
    size_t n = sgd_model_num_params(whole.m);
    assert_memory_equal(sgd_model_params(resumed.m), sgd_model_params(whole.m), n * sizeof(float));
    assert_same_everywhere(sgd_model_params(resumed.m), n * sizeof(float));

    /* Every process may read the same file itself too. */
    rig again;
    rig_make(&again, model, optim, sched, 128, 3, 9);
    sgd_checkpoint_parts parts;
    sgd_checkpoint_parts_init(&parts);
    parts.trainer = again.t;
    sgdt_assert_status(sgd_checkpoint_load(path, &parts, NULL), SGD_OK);
    sgdt_assert_status(sgd_dist_attach(d, again.t), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(again.t, 0), SGD_OK);
    assert_memory_equal(sgd_model_params(again.m), sgd_model_params(whole.m), n * sizeof(float));

    /*
     * And one process alone resumes it (a different number of processes):
     * the same steps, but rank 1's rows now draw their dropout masks from
     * the single stream, so the run is an equivalent one, not the same
     * within rounding (test_dataparallel checks that without dropout).
     */
    rig alone;
    rig_make(&alone, model, optim, sched, 128, 3, 9);
    parts.trainer = alone.t;
    sgdt_assert_status(sgd_checkpoint_load(path, &parts, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(alone.t, 0), SGD_OK);
    assert_int_equal(stats_of(alone.t).step, stats_of(whole.t).step);
    float diff = sgdt_max_abs_diff(sgd_model_params(alone.m), sgd_model_params(whole.m), n);
    if (rank == 0)
        printf("# resumed at step 20: 2 processes bit for bit; 1 process (other dropout masks) max diff %.3g\n",
               (double)diff);

    sgdt_assert_status(sgd_dist_agree(d, 1, &ok), SGD_OK);
    if (rank == 0)
        remove(path);
    rig *all[] = {&whole, &first, &resumed, &again};
    for (int k = 0; k < 4; k++) {
        sgdt_assert_status(sgd_dist_detach(d, all[k]->t), SGD_OK);
        rig_free(all[k]);
    }
    rig_free(&alone);
    sgd_dist_free(d);
}

/* Processes whose trainers differ are told so, all of them. */
static void test_attach_mismatch(void **state)
{
    (void)state;
    rig r;
    rig_make(&r, rank == 0 ? "8-32-relu-4" : "8-33-relu-4", "sgd:lr=0.1", NULL, 128, 1, 1);
    sgdt_assert_status(sgd_dist_attach(world, r.t), SGD_ESHAPE);
    sgdt_assert_error_contains("trainers differ");
    rig_free(&r);
    /* Same shapes, different batch sizes: rank 0's state does not fit rank 1's trainer. */
    rig_make(&r, "8-32-relu-4", "sgd:lr=0.1", NULL, rank == 0 ? 128 : 100, 1, 1);
    sgd_status st = sgd_dist_attach(world, r.t);
    assert_true(st == SGD_ESHAPE);
    if (rank == 1)
        sgdt_assert_error_contains("does not fit");
    else
        sgdt_assert_error_contains("1 of 2 processes failed");
    rig_free(&r);
    sgdt_assert_status(sgd_dist_attach(NULL, NULL), SGD_EINVAL);
}

/* The debug checksum finds processes whose parameters drifted apart. */
static void test_checksum_catches_drift(void **state)
{
    (void)state;
    sgd_dist *d = make_dist(0, 5);
    rig r;
    rig_make(&r, "8-32-relu-4", "sgd:lr=0.1", NULL, 128, 2, 1);
    sgdt_assert_status(sgd_dist_attach(d, r.t), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(r.t, 5), SGD_OK);
    if (rank == 1)
        sgd_model_params(r.m)[3] += 1e-3f; /* what a non-deterministic reduction would do */
    sgd_status st = sgd_trainer_fit(r.t, 0);
    sgdt_assert_status(st, SGD_ESTATE);
    sgdt_assert_error_contains("parameters differ across processes");
    assert_same_everywhere(&st, sizeof st);
    sgd_dist_detach(d, r.t);
    rig_free(&r);
    sgd_dist_free(d);
}

/* The distributed grid and random searches equal the serial ones. */
static void test_search(void **state)
{
    (void)state;
    sgd_dataset *tr, *va;
    sgdt_assert_status(sgd_dataset_from_labels(&tr, xs, ys, 512, DIM, NULL), SGD_OK);
    sgdt_assert_status(sgd_dataset_from_labels(&va, xv, yv, VAL, DIM, NULL), SGD_OK);
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    to.batch_size = 64;
    to.guard = 0;
    for (int method = 0; method < 2; method++) {
        sgd_search_options so;
        sgd_search_options_init(&so);
        so.method = method;
        so.lr_min = 1e-3;
        so.lr_max = 50;
        so.lr_count = 7;
        so.trials = 5;
        so.seed = 2;
        so.trainer = &to;
        sgd_search *serial = NULL, *dist = NULL;
        sgdt_assert_status(sgd_search_run(&serial, "8-16-relu-4", tr, va, &so, NULL), SGD_OK);
        sgdt_assert_status(sgd_dist_search_run(world, &dist, "8-16-relu-4", tr, va, &so, NULL), SGD_OK);
        assert_int_equal(sgd_search_count(dist), sgd_search_count(serial));
        for (size_t i = 0; i < sgd_search_count(serial); i++) {
            sgd_search_trial a, b;
            a.struct_size = b.struct_size = sizeof a;
            sgd_search_get_trial(serial, i, &a);
            sgd_search_get_trial(dist, i, &b);
            assert_int_equal(a.status, b.status);
            assert_int_equal(a.steps, b.steps);
            assert_int_equal(a.verdict, b.verdict);
            assert_int_equal(a.first_alarm, b.first_alarm);
            assert_memory_equal(&a.final_loss, &b.final_loss, sizeof(double));
            assert_memory_equal(&a.val_accuracy, &b.val_accuracy, sizeof(double));
            assert_memory_equal(&a.lr, &b.lr, sizeof(double));
        }
        size_t b1, b2;
        sgdt_assert_status(sgd_search_best(serial, &b1), SGD_OK);
        sgdt_assert_status(sgd_search_best(dist, &b2), SGD_OK);
        assert_int_equal(b1, b2);
        sgd_search_free(serial);
        sgd_search_free(dist);
    }
    /* A bad option on every process: every process fails with the same status. */
    sgd_search_options so;
    sgd_search_options_init(&so);
    so.lr_min = -1;
    sgd_search *s = (sgd_search *)1;
    sgdt_assert_status(sgd_dist_search_run(world, &s, "8-16-relu-4", tr, va, &so, NULL), SGD_ERANGE);
    assert_null(s);
    /* A bad model spec on rank 1 only. */
    sgd_search_options_init(&so);
    so.lr_count = 2;
    so.trainer = &to;
    sgdt_assert_status(sgd_dist_search_run(world, &s, rank == 1 ? "8-16-bogus-4" : "8-16-relu-4", tr, va, &so, NULL),
                       SGD_EINVAL);
    if (rank == 0)
        sgdt_assert_error_contains("1 of 2 processes failed");
    sgd_dataset_free(tr);
    sgd_dataset_free(va);
}

/* A collective that the other process is late for: the deadline, without ending the job. */
static void test_timeout(void **state)
{
    (void)state;
    sgd_dist_options o = test_options();
    o.timeout = 0.5;
    o.abort_on_failure = 0;
    sgd_dist *d;
    sgdt_assert_status(sgd_dist_new(&d, &o, NULL), SGD_OK);
    int32_t all = 0;
    if (rank == 1)
        usleep(1500 * 1000);
    sgd_status st = sgd_dist_agree(d, 1, &all);
    if (rank == 0) {
        sgdt_assert_status(st, SGD_EIO);
        sgdt_assert_error_contains("no answer from the other processes after 0.5 s");
    } else {
        sgdt_assert_status(st, SGD_OK); /* it arrived late and found rank 0's request still there */
    }
    MPI_Barrier(MPI_COMM_WORLD);
    sgd_dist_free(d);
}

/* Allocation failures in sgd_dist_attach(), on every process at once: the same status everywhere, nothing leaked. */
static void test_attach_alloc_failures(void **state)
{
    (void)state;
    sgdt_alloc t;
    sgdt_alloc_init(&t);
    sgd_dist_options o = test_options();
    o.fixed_order = 1;
    sgd_dist *d;
    sgdt_assert_status(sgd_dist_new(&d, &o, &t.base), SGD_OK);
    rig r;
    rig_make(&r, "8-16-relu-4", "adam:lr=1e-3", NULL, 128, 1, 1);
    long before = t.calls;
    sgdt_assert_status(sgd_dist_attach(d, r.t), SGD_OK);
    sgdt_assert_status(sgd_dist_detach(d, r.t), SGD_OK);
    long mine = t.calls - before, most = 0;
    MPI_Allreduce(&mine, &most, 1, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
    assert_true(most >= 2);
    long live = t.live;
    for (long k = 0; k < most; k++) {
        for (int persistent = 0; persistent < 2; persistent++) {
            sgdt_alloc_fail_at(&t, t.calls + k, persistent);
            sgd_status st = sgd_dist_attach(d, r.t);
            sgdt_alloc_fail_at(&t, -1, 0);
            assert_true(st == SGD_OK || st == SGD_ENOMEM);
            assert_true(strlen(sgd_error_last()) > 0 || st == SGD_OK);
            assert_same_everywhere(&st, sizeof st);
            if (st == SGD_OK)
                sgdt_assert_status(sgd_dist_detach(d, r.t), SGD_OK);
            assert_int_equal(t.live, live);
        }
    }
    /* Still usable. */
    sgdt_assert_status(sgd_dist_attach(d, r.t), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(r.t, 3), SGD_OK);
    sgdt_assert_status(sgd_dist_detach(d, r.t), SGD_OK);
    rig_free(&r);
    sgd_dist_free(d);
    assert_int_equal(t.live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basics),
        cmocka_unit_test(test_equivalence),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_synchronized_rollback),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_attach_mismatch),
        cmocka_unit_test(test_checksum_catches_drift),
        cmocka_unit_test(test_search),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_attach_alloc_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
