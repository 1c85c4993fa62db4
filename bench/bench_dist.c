/*
 * bench_dist: data-parallel training over MPI on this machine, next to the
 * bounds that the transport sets, measured in the same run.
 *
 *   mpiexec -n 2 bench_dist [--steps N] [--reps R]     (ninja -C build bench-dist)
 *
 * - the transport: one-way bandwidth and latency between rank 0 and rank 1
 *   (ping-pong of 4 MiB and of 8 bytes), and memcpy of the gradient's bytes
 *   in one process (the bound of any copy);
 * - the allreduce of the gradient arena alone: MPI_Allreduce (the library's
 *   default, watched by a thread for its deadline), MPI_Iallreduce polled
 *   (the library with abort_on_failure=0), the same in 4 and 16 buckets in
 *   flight at once; next to its bound,
 *   the bytes a ring allreduce moves per process (2 (P-1)/P of the arena)
 *   over the measured bandwidth;
 * - training steps of the 784-256-relu-128-relu-10 MLP (and of the CNN of
 *   docs/dist.md when this build's model spec has its layers) at a global
 *   batch of 128: one process alone (the others waiting), all processes
 *   data-parallel (blocking sums, polled sums, the fixed order): step time, samples per second,
 *   and the share of the step spent in the gradient sums (waiting for the
 *   slower process included);
 * - how much overlapping the sum with the backward pass could save: the
 *   gradients of every layer but the first are ready before the first
 *   layer's backward runs, so at most their share of the sum can hide.
 *
 * Each figure is the minimum (and the median) over R interleaved repetitions
 * (default 5). Printed, never asserted. The machine may be shared: say so
 * next to the figures.
 * SPDX-License-Identifier: MIT
 */
#include <mpi.h>

#include "sgdlab/dist.h"
#include "sgdlab/sgdlab.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 128
#define ROWS (BATCH * 64)
#define MAXREPS 32

static int rank, size;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_dist: process %d: %s: %s\n", rank, what, sgd_error_last());
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct figure {
    double v[MAXREPS];
    int n;
} figure;

static void add(figure *f, double v)
{
    if (f->n < MAXREPS)
        f->v[f->n++] = v;
}

static double fmin_of(const figure *f)
{
    double m = INFINITY;
    for (int i = 0; i < f->n; i++)
        m = f->v[i] < m ? f->v[i] : m;
    return m;
}

static double median_of(const figure *f)
{
    double s[MAXREPS];
    memcpy(s, f->v, (size_t)f->n * sizeof *s);
    qsort(s, (size_t)f->n, sizeof *s, cmp);
    return f->n == 0 ? NAN : f->n % 2 ? s[f->n / 2] : 0.5 * (s[f->n / 2 - 1] + s[f->n / 2]);
}

static void cpu_name(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return;
    char line[4096];
    bool avx2 = false, avx512 = false, named = false;
    while (fgets(line, sizeof line, f) != NULL) {
        if (!named && strncmp(line, "model name", 10) == 0) {
            const char *c = strchr(line, ':');
            if (c != NULL) {
                snprintf(buf, cap, "%s", c + 2);
                buf[strcspn(buf, "\n")] = '\0';
                named = true;
            }
        }
        if (strncmp(line, "flags", 5) == 0) {
            avx2 = avx2 || strstr(line, " avx2") != NULL;
            avx512 = avx512 || strstr(line, " avx512f") != NULL;
        }
    }
    fclose(f);
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n, ", %s", avx512 ? "AVX-512" : avx2 ? "AVX2, no AVX-512" : "no AVX2");
}

/* ------------------------------------------------------------ the transport */

/* One-way seconds of a message of `bytes` between ranks 0 and 1 (half a round trip). */
static double pingpong(void *buf, int bytes, int reps)
{
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now();
    for (int k = 0; k < reps; k++) {
        if (rank == 0) {
            MPI_Send(buf, bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
            MPI_Recv(buf, bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else if (rank == 1) {
            MPI_Recv(buf, bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(buf, bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
        }
    }
    double t = (now() - t0) / (2.0 * reps);
    MPI_Bcast(&t, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    return t;
}

/* The library's wait: MPI_Testall polled, yielding after a while. */
static void wait_all(MPI_Request *rq, int n)
{
    MPI_Status statuses[16]; /* not MPI_STATUSES_IGNORE: see lib/dist/dist.c */
    for (long spin = 0;; spin++) {
        int done = 0;
        MPI_Testall(n, rq, &done, statuses);
        if (done)
            return;
        if (spin >= 4000) {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
    }
}

/* Seconds of one allreduce of n floats: mode 0 MPI_Allreduce, 1 MPI_Iallreduce polled, k > 1: k buckets in flight. */
static double allreduce_time(float *g, int n, int buckets, int reps)
{
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now();
    for (int r = 0; r < reps; r++) {
        if (buckets == 0) {
            MPI_Allreduce(MPI_IN_PLACE, g, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        } else {
            MPI_Request rq[16];
            for (int b = 0; b < buckets; b++) {
                int lo = (int)((long long)n * b / buckets), hi = (int)((long long)n * (b + 1) / buckets);
                MPI_Iallreduce(MPI_IN_PLACE, g + lo, hi - lo, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &rq[b]);
            }
            wait_all(rq, buckets);
        }
    }
    double t = (now() - t0) / reps, worst;
    MPI_Allreduce(&t, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

/* ------------------------------------------------------------ training steps */

typedef struct setup {
    const char *spec;
    sgd_dataset *train;
    float *x;
    int32_t *y;
    int64_t dim;
} setup;

typedef struct rig {
    sgd_model *m;
    sgd_optim *o;
    sgd_monitor *mon;
    sgd_trainer *t;
} rig;

static bool rig_make(rig *r, const setup *s, int64_t steps)
{
    memset(r, 0, sizeof *r);
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.max_batch = BATCH;
    mo.seed = 1;
    if (sgd_model_from_spec(&r->m, s->spec, &mo, NULL) != SGD_OK)
        return false;
    if (sgd_optim_new(&r->o, "sgd:lr=0.01,momentum=0.9", sgd_model_num_params(r->m), NULL) != SGD_OK)
        die("sgd_optim_new");
    if (sgd_monitor_new(&r->mon, NULL, NULL) != SGD_OK)
        die("sgd_monitor_new");
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    to.batch_size = BATCH;
    to.epochs = 1 + steps * BATCH / ROWS;
    to.guard = 0;
    to.progress_interval = 1 << 20;
    if (sgd_trainer_new(&r->t, r->m, r->o, NULL, r->mon, s->train, NULL, &to, NULL) != SGD_OK)
        die("sgd_trainer_new");
    return true;
}

static void rig_free(rig *r)
{
    sgd_trainer_free(r->t);
    sgd_monitor_free(r->mon);
    sgd_optim_free(r->o);
    sgd_model_free(r->m);
}

/* Seconds per step, and of them in gradient sums: dist NULL for rank 0 alone (the others wait, asleep). */
static double steps_time(const setup *s, sgd_dist *d, int64_t steps, double *sum_share)
{
    *sum_share = 0;
    rig r;
    if (!rig_make(&r, s, steps + 3))
        die(s->spec);
    double t = 0;
    if (d == NULL) {
        if (rank == 0) {
            sgd_trainer_fit(r.t, 3); /* warm up */
            double t0 = now();
            if (sgd_trainer_fit(r.t, steps) != SGD_OK)
                die("sgd_trainer_fit");
            t = (now() - t0) / (double)steps;
        }
        MPI_Bcast(&t, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    } else {
        if (sgd_dist_attach(d, r.t) != SGD_OK)
            die("sgd_dist_attach");
        sgd_trainer_fit(r.t, 3);
        sgd_dist_stats a, b;
        a.struct_size = b.struct_size = sizeof a;
        sgd_dist_get_stats(d, &a);
        double t0 = now();
        if (sgd_trainer_fit(r.t, steps) != SGD_OK)
            die("sgd_trainer_fit");
        t = (now() - t0) / (double)steps;
        sgd_dist_get_stats(d, &b);
        *sum_share = (b.gradient_seconds - a.gradient_seconds) / (t * (double)steps);
        sgd_dist_detach(d, r.t);
    }
    rig_free(&r);
    return t;
}

static void usage(void)
{
    if (rank == 0)
        fprintf(stderr, "usage: mpiexec -n 2 bench_dist [--steps N] [--reps R]\n");
    MPI_Finalize();
    exit(2);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int64_t steps = 60;
    int reps = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc)
            steps = atoll(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else
            usage();
    }
    if (steps < 1 || reps < 1 || reps > MAXREPS)
        usage();
    sgd_dist_options o;
    sgd_dist_options_init(&o);
    sgd_dist *d, *dpoll, *dfix;
    if (sgd_dist_new(&d, &o, NULL) != SGD_OK)
        die("sgd_dist_new");
    o.abort_on_failure = 0;
    if (sgd_dist_new(&dpoll, &o, NULL) != SGD_OK)
        die("sgd_dist_new");
    o.abort_on_failure = 1;
    o.fixed_order = 1;
    if (sgd_dist_new(&dfix, &o, NULL) != SGD_OK)
        die("sgd_dist_new");
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    if (rank == 0) {
        printf("bench_dist: %d processes on %d machine(s), %s\n", size, sgd_dist_nodes(d), sgd_dist_mpi_library(d));
        printf("CPU: %s; one BLAS thread per process\n\n", cpu);
    }

    /* The models. */
    setup models[2];
    const char *specs[2] = {"784-256-relu-128-relu-10",
                            "1x28x28-conv2d(32,3,padding=1)-relu-maxpool2d(2)-conv2d(64,3,padding=1)-relu-"
                            "maxpool2d(2)-flatten-128-relu-10"};
    const char *names[2] = {"MLP", "CNN"};
    int nmodels = 0;
    for (int k = 0; k < 2; k++) {
        sgd_model *probe;
        if (sgd_model_from_spec(&probe, specs[k], NULL, NULL) != SGD_OK) {
            if (rank == 0)
                printf("%s %s: not in this build's model spec (%s); docs/dist.md counts its parameters by hand\n",
                       names[k], specs[k], sgd_error_last());
            continue;
        }
        setup *s = &models[nmodels++];
        s->spec = specs[k];
        s->dim = sgd_model_num_inputs(probe);
        sgd_model_free(probe);
        s->x = malloc((size_t)ROWS * (size_t)s->dim * sizeof *s->x);
        s->y = malloc(ROWS * sizeof *s->y);
        if (s->x == NULL || s->y == NULL)
            die("out of memory");
        uint32_t r = 12345;
        for (size_t i = 0; i < (size_t)ROWS * (size_t)s->dim; i++) {
            r = r * 1664525u + 1013904223u;
            s->x[i] = (float)(r >> 8) / 16777216.0f;
        }
        for (int i = 0; i < ROWS; i++)
            s->y[i] = i % 10;
        if (sgd_dataset_from_labels(&s->train, s->x, s->y, ROWS, s->dim, NULL) != SGD_OK)
            die("sgd_dataset_from_labels");
    }

    /* The transport, next to a copy in one process. */
    size_t nbig = 4u << 20;
    unsigned char *buf = calloc(nbig, 1), *buf2 = calloc(nbig, 1);
    figure bw = {0}, lat = {0}, cp = {0};
    for (int k = 0; k < reps && size >= 2; k++) {
        add(&bw, (double)nbig / pingpong(buf, (int)nbig, 20));
        add(&lat, pingpong(buf, 8, 2000));
        double t0 = now();
        for (int j = 0; j < 20; j++) {
            memcpy(buf2, buf, nbig);
            buf[j] = buf2[nbig - 1 - (size_t)j];
        }
        add(&cp, 20.0 * (double)nbig / (now() - t0));
    }
    double B = size >= 2 ? fmin_of(&bw) : NAN; /* the bound uses the fastest measured */
    for (int k = 0; k < bw.n; k++)
        B = bw.v[k] > B ? bw.v[k] : B;
    if (rank == 0 && size >= 2) {
        double cmax = 0;
        for (int k = 0; k < cp.n; k++)
            cmax = cp.v[k] > cmax ? cp.v[k] : cmax;
        printf("loopback (rank 0 <-> rank 1, shared memory): %.2f GB/s one way for 4 MiB (best; median %.2f), "
               "latency %.2f us for 8 bytes (best; median %.2f)\n",
               B / 1e9, median_of(&bw) / 1e9, 1e6 * fmin_of(&lat), 1e6 * median_of(&lat));
        printf("memcpy of 4 MiB in one process: %.2f GB/s (best)\n\n", cmax / 1e9);
    }

    for (int k = 0; k < nmodels; k++) {
        const setup *s = &models[k];
        rig r;
        rig_make(&r, s, 1);
        int n = (int)sgd_model_num_params(r.m);
        /* The first layer with parameters: its gradients are the last the backward pass finishes. */
        size_t first = 0;
        int32_t first_layer = -1;
        for (size_t i = 0; i < sgd_model_num_param_tensors(r.m); i++) {
            sgd_param_info pi;
            memset(&pi, 0, sizeof pi);
            pi.struct_size = sizeof pi;
            if (sgd_model_param_info(r.m, i, &pi) != SGD_OK)
                continue;
            if (first_layer < 0 || pi.layer < first_layer) {
                first_layer = pi.layer;
                first = 0;
            }
            if (pi.layer == first_layer)
                first += pi.numel;
        }
        rig_free(&r);
        float *g = calloc((size_t)n, sizeof *g);
        double bytes = 4.0 * n, ring = 2.0 * (size - 1) / size * bytes;
        if (rank == 0)
            printf("%s %s: %d parameters (%.2f MB of gradients), global batch %d (%d per process)\n", names[k],
                   s->spec, n, bytes / 1e6, BATCH, (BATCH + size - 1) / size);
        figure ar[4] = {{{0}, 0}}, st[4] = {{{0}, 0}}, share[4] = {{{0}, 0}};
        int64_t msteps = s->spec == specs[0] ? steps : (steps / 6 > 5 ? steps / 6 : 5); /* the CNN's steps are ~20x longer */
        for (int rep = 0; rep < reps; rep++) {
            if (size >= 2) {
                add(&ar[0], allreduce_time(g, n, 0, 20));
                add(&ar[1], allreduce_time(g, n, 1, 20));
                add(&ar[2], allreduce_time(g, n, 4, 20));
                add(&ar[3], allreduce_time(g, n, 16, 20));
            }
            double sh;
            add(&st[0], steps_time(s, NULL, msteps, &sh));
            if (size >= 2) {
                add(&st[1], steps_time(s, d, msteps, &sh));
                add(&share[1], sh);
                add(&st[2], steps_time(s, dpoll, msteps, &sh));
                add(&share[2], sh);
                add(&st[3], steps_time(s, dfix, msteps, &sh));
                add(&share[3], sh);
            }
        }
        if (rank == 0) {
            if (size >= 2) {
                printf("  allreduce of the arena alone (best / median of %d):\n", reps);
                static const char *const how[4] = {"MPI_Allreduce (library default)",
                                                   "MPI_Iallreduce polled (abort_on_failure=0)",
                                                   "4 buckets in flight", "16 buckets in flight"};
                for (int m = 0; m < 4; m++)
                    printf("    %-38s %7.3f / %7.3f ms\n", how[m], 1e3 * fmin_of(&ar[m]), 1e3 * median_of(&ar[m]));
                printf("    %-38s %7.3f ms   (%.2f MB per process over %.2f GB/s)\n", "bound: ring bytes / bandwidth",
                       1e3 * ring / B, ring / 1e6, B / 1e9);
            }
            printf("  training step (best / median of %d, %lld steps each):\n", reps, (long long)msteps);
            static const char *const who[4] = {"1 process, batch 128", "2 processes, 64 each",
                                               "2 processes, polled sums", "2 processes, fixed order"};
            for (int m = 0; m < (size >= 2 ? 4 : 1); m++) {
                double t = fmin_of(&st[m]);
                printf("    %-28s %7.3f / %7.3f ms  %8.0f samples/s", who[m], 1e3 * t, 1e3 * median_of(&st[m]),
                       BATCH / t);
                if (m > 0)
                    printf("  in the sums %4.1f%% (allreduce alone %4.1f%%, the rest waiting for the slower process)",
                           100 * median_of(&share[m]), 100 * fmin_of(&ar[m == 2 ? 1 : 0]) / t);
                printf("\n");
            }
            if (size >= 2) {
                double f = 1.0 - (double)first / n;
                printf("  overlap with backward could hide at most the sum of the layers after the first: "
                       "%.0f%% of the arena, %.3f ms of the %.3f ms allreduce (%.1f%% of the 2-process step)\n",
                       100 * f, 1e3 * f * fmin_of(&ar[0]), 1e3 * fmin_of(&ar[0]),
                       100 * f * fmin_of(&ar[0]) / fmin_of(&st[1]));
            }
            printf("\n");
            fflush(stdout);
        }
        free(g);
    }
    for (int k = 0; k < nmodels; k++) {
        sgd_dataset_free(models[k].train);
        free(models[k].x);
        free(models[k].y);
    }
    free(buf);
    free(buf2);
    sgd_dist_free(dfix);
    sgd_dist_free(dpoll);
    sgd_dist_free(d);
    MPI_Finalize();
    return 0;
}
