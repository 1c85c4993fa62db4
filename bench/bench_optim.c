/*
 * bench_optim: nanoseconds per parameter per step of each built-in optimizer
 * at 1e5, 1e6 and 1e7 parameters, next to a bound measured in the same run:
 * a fused loop that reads and writes the same arrays as the optimizer (the
 * gradients, and the parameters and every state slot) and does trivial
 * arithmetic, i.e. what moving the optimizer's bytes costs on this machine,
 * and, for the optimizers that take square roots and divide, a second bound:
 * a loop with the same square roots and divisions per parameter (the
 * divider's throughput, which is what bounds them where the arrays sit in
 * cache). The passes of a step run one after the other (the scan decides
 * whether there is an update; a two-pass kind's second pass needs the sums
 * of its first), so that bound is the sum over the passes of the larger of
 * the pass's memory loop and its sqrt/div loop. The ratio is to the larger
 * of the two bounds.
 *
 *   bench_optim [--csv] [--quick] [SIZE...]
 *
 * Printed, never asserted. One thread; the optimizers do not use BLAS, so
 * OPENBLAS_* do not matter here. Figures are the best of several rounds of
 * at least ~0.2 s each.
 * SPDX-License-Identifier: MIT
 */
#include "sgdlab/sgdlab.h"

#include "core/internal.h"
#include "optim/optim_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bound_kernels.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *arena(size_t n, float fill)
{
    float *p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
    if (p == NULL) {
        fprintf(stderr, "bench_optim: out of memory for %zu floats\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = fill;
    return p;
}

/*
 * A row: the optimizer, and the passes its step makes over the arrays, each
 * as (arrays only read, arrays read and written, square roots and divisions
 * per parameter as lib/optim/kernels.c computes them in that pass): the bound
 * runs the same passes with trivial arithmetic. Checked steps begin with the
 * gradient scan, a read of g ({1, 0}).
 */
typedef struct pass {
    int ro, rw;
    int nsqrt, ndiv;
} pass;

typedef struct row {
    const char *label;
    const char *spec;
    int npass;
    pass p[3];
} row;

#define SCAN {1, 0, 0, 0}
static const row rows[] = {
    {"sgd", "sgd:lr=0.01", 2, {SCAN, {1, 1, 0, 0}}},
    /* As torch does it: no gradient check, so no pass before the update. */
    {"sgd unchecked", "sgd:lr=0.01,nonfinite=apply", 1, {{1, 1, 0, 0}}},
    {"sgd momentum", "sgd:lr=0.01,momentum=0.9", 2, {SCAN, {1, 2, 0, 0}}},
    {"adagrad", "adagrad", 2, {SCAN, {1, 2, 1, 1}}},
    {"rmsprop", "rmsprop", 2, {SCAN, {1, 2, 1, 1}}},
    {"adam", "adam", 2, {SCAN, {1, 3, 1, 1}}},
    {"adamw", "adamw", 2, {SCAN, {1, 3, 1, 1}}},
    {"adam amsgrad", "adam:amsgrad=1", 2, {SCAN, {1, 4, 1, 1}}},
    {"nadam", "nadam", 2, {SCAN, {1, 3, 1, 2}}},
    {"radam", "radam", 2, {SCAN, {1, 3, 1, 1}}},
    {"adamax", "adamax", 2, {SCAN, {1, 3, 0, 1}}},
    {"adadelta", "adadelta", 2, {SCAN, {1, 3, 2, 1}}},
    {"rprop", "rprop", 2, {SCAN, {1, 3, 0, 0}}},
    {"asgd", "asgd", 2, {SCAN, {1, 2, 0, 0}}},
    {"lion", "lion", 2, {SCAN, {1, 2, 0, 0}}},
    {"lamb", "lamb", 3, {SCAN, {2, 2, 1, 1}, {2, 1, 1, 1}}},
    {"lars", "lars:lr=1", 3, {SCAN, {2, 0, 0, 0}, {1, 2, 0, 0}}},
    {"sgd_sf", "sgd_sf", 2, {SCAN, {1, 2, 0, 0}}},
    {"adamw_sf", "adamw_sf", 2, {SCAN, {1, 3, 1, 1}}},
    {"prodigy", "prodigy", 3, {SCAN, {3, 3, 0, 0}, {2, 1, 1, 1}}},
    {"dadapt_adam", "dadapt_adam", 3, {SCAN, {2, 3, 1, 1}, {2, 1, 1, 1}}},
    {"dadapt_sgd", "dadapt_sgd", 3, {SCAN, {3, 1, 0, 0}, {2, 1, 0, 0}}},
    {"dog", "dog", 3, {SCAN, {3, 0, 0, 0}, {1, 1, 0, 0}}},
};

static int row_arith(const row *r)
{
    int a = 0;
    for (int k = 0; k < r->npass; k++)
        a += r->p[k].nsqrt + r->p[k].ndiv;
    return a;
}

/*
 * Times fn and ref alternately, `rounds` times each, each time until min_time
 * has passed; returns the best ns per element per call of each. Alternating
 * keeps a busy machine's noise from favouring one of the two.
 */
typedef void (*timed_fn)(void *ctx);

static double time_once(timed_fn fn, void *ctx, size_t n, double min_time)
{
    long reps = 0;
    double t0 = now(), t;
    do {
        fn(ctx);
        reps++;
        t = now();
    } while (t - t0 < min_time);
    return (t - t0) * 1e9 / ((double)reps * (double)n);
}

static void best_pair(timed_fn fn, void *ctx, timed_fn ref, void *rctx, size_t n, double min_time, int rounds,
                      double *best_fn, double *best_ref)
{
    fn(ctx); /* warm up: first touch, caches */
    if (ref)
        ref(rctx);
    *best_fn = *best_ref = INFINITY;
    for (int r = 0; r < rounds; r++) {
        double a = time_once(fn, ctx, n, min_time);
        if (a < *best_fn)
            *best_fn = a;
        if (ref) {
            double b = time_once(ref, rctx, n, min_time);
            if (b < *best_ref)
                *best_ref = b;
        }
    }
}

typedef struct opt_ctx {
    sgd_optim *o;
    float *x, *g;
} opt_ctx;

static void run_opt(void *p)
{
    opt_ctx *c = p;
    if (sgd_optim_step(c->o, c->x, c->g, 1e-6, NULL) != SGD_OK) {
        fprintf(stderr, "bench_optim: %s\n", sgd_error_last());
        exit(1);
    }
}

typedef struct bound_ctx {
    const bench_bounds *b;
    size_t n;
    const row *r;
    int only; /* run_bound and run_arith: that pass alone (-1: run_bound runs them all) */
    const float *ro[3];
    float *rw[4];
    float *aw; /* the sqrt/div loop's own array: the memory loops' writes can make theirs negative */
} bound_ctx;

static volatile float sink;

static void run_bound(void *p)
{
    bound_ctx *c = p;
    float acc = 0;
    for (int k = 0; k < c->r->npass; k++)
        if (c->only < 0 || c->only == k)
            acc += c->b->bound(c->r->p[k].ro, c->r->p[k].rw, c->n, c->ro, c->rw);
    sink = acc;
}

static const row read_row = {"(read grads)", "", 1, {SCAN}};

static void run_arith(void *p)
{
    bound_ctx *c = p;
    c->b->arith(c->r->p[c->only].nsqrt, c->r->p[c->only].ndiv, c->n, c->ro[1], c->aw);
}

static void run_scan(void *p)
{
    bound_ctx *c = p;
    sgd__gradstat st;
    sgd__grad_scan(c->ro[0], c->n, 0.0f, &st);
    sink = (float)st.sumsq;
}

/* The bound table of the level the kernels run at. */
static const bench_bounds *bounds_for(const char *level)
{
    if (strcmp(level, "avx2") == 0)
        return &bench_bounds_avx2;
    if (strcmp(level, "avx512") == 0)
        return &bench_bounds_avx512;
    return &bench_bounds_generic;
}

int main(int argc, char **argv)
{
    int csv = 0, quick = 0;
    size_t sizes[8], nsizes = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--csv") == 0)
            csv = 1;
        else if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (nsizes < 8 && atof(argv[i]) >= 1)
            sizes[nsizes++] = (size_t)atof(argv[i]);
        else {
            fprintf(stderr, "usage: %s [--csv] [--quick] [SIZE...]\n", argv[0]);
            return 2;
        }
    }
    if (nsizes == 0) {
        sizes[0] = 100000, sizes[1] = 1000000, sizes[2] = 10000000;
        nsizes = 3;
    }
    const double min_time = quick ? 0.05 : 0.1;
    const int rounds = quick ? 3 : 15;

    const char *level = sgd_optim_simd_level();
    const bench_bounds *bt = bounds_for(level);
    const char *pin = getenv("SGDLAB_SIMD");
    if (csv) {
        printf("optimizer,n,ns_per_param,bound_ns_per_param,bytes_per_param,simd,passes_ns_per_param\n");
    } else {
        printf("kernels: %s (SGDLAB_SIMD=%s); bound loops compiled for %s; one thread; best of %d rounds, "
               "optimizer and bound interleaved\n",
               level, pin ? pin : "unset", bt->level, rounds);
        printf("%-14s %10s %12s %12s %12s %7s %10s\n", "optimizer", "n", "ns/param", "bound ns", "passes ns",
               "ratio", "GB/s");
    }
    for (size_t s = 0; s < nsizes; s++) {
        size_t n = sizes[s];
        float *x = arena(n, 0.5f), *g = arena(n, 0.0f);
        sgd__rng rng;
        sgd__rng_seed(&rng, 1);
        for (size_t i = 0; i < n; i++)
            g[i] = (float)sgd__rng_normal(&rng);
        float *bufs[7];
        for (int k = 0; k < 7; k++)
            bufs[k] = arena(n, 0.25f);
        bound_ctx bc = {bt, n, &read_row, -1, {g, bufs[4], bufs[5]}, {bufs[0], bufs[1], bufs[2], bufs[3]}, bufs[6]};
        double scan, gscan;
        best_pair(run_scan, &bc, run_bound, &bc, n, min_time, rounds, &gscan, &scan);
        if (!csv) {
            printf("%-14s %10zu %12.3f %12s %12s %7s %10.1f\n", "(read grads)", n, scan, "", "", "", 4.0 / scan);
            printf("%-14s %10zu %12.3f %12.3f %12s %7.2f %10.1f\n", "(grad scan)", n, gscan, scan, "",
                   gscan / scan, 4.0 / gscan);
        }
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
            sgd_optim *o = NULL;
            if (sgd_optim_new(&o, rows[r].spec, n, NULL) != SGD_OK) {
                fprintf(stderr, "bench_optim: %s\n", sgd_error_last());
                return 1;
            }
            for (size_t i = 0; i < n; i++)
                x[i] = 0.5f;
            opt_ctx oc = {o, x, g};
            bc.r = &rows[r];
            bc.only = -1;
            double ns, bound;
            best_pair(run_opt, &oc, run_bound, &bc, n, min_time, rounds, &ns, &bound);
            /*
             * The passes run in sequence: the gradient scan ends before the
             * update starts (it decides whether there is one), and a second
             * pass needs the first one's sums. Each pass takes at least the
             * longer of moving its bytes and its square roots and divisions;
             * the step, at least the sum of those.
             */
            double passes = 0; /* the pass-by-pass bound; 0 for kinds without square roots or divisions */
            if (row_arith(&rows[r]) > 0)
                for (int k = 0; k < rows[r].npass; k++) {
                    const pass *ps = &rows[r].p[k];
                    double mem = scan, ar = 0, unused;
                    bc.only = k;
                    if (ps->ro != 1 || ps->rw != 0)
                        best_pair(run_bound, &bc, NULL, NULL, n, min_time, rounds, &mem, &unused);
                    if (ps->nsqrt + ps->ndiv > 0)
                        best_pair(run_arith, &bc, NULL, NULL, n, min_time, rounds, &ar, &unused);
                    passes += ar > mem ? ar : mem;
                }
            const double lim = passes > bound ? passes : bound;
            /* bytes the passes move: 4 per array read, 8 per array read and written */
            double bytes = 0;
            for (int k = 0; k < rows[r].npass; k++)
                bytes += 4.0 * rows[r].p[k].ro + 8.0 * rows[r].p[k].rw;
            if (csv)
                printf("%s,%zu,%.4f,%.4f,%.0f,%s,%.4f\n", rows[r].label, n, ns, bound, bytes, level, passes);
            else if (passes > 0)
                printf("%-14s %10zu %12.3f %12.3f %12.3f %7.2f %10.1f\n", rows[r].label, n, ns, bound, passes,
                       ns / lim, bytes / ns);
            else
                printf("%-14s %10zu %12.3f %12.3f %12s %7.2f %10.1f\n", rows[r].label, n, ns, bound, "", ns / lim,
                       bytes / ns);
            fflush(stdout);
            sgd_optim_free(o);
        }
        free(x);
        free(g);
        for (int k = 0; k < 7; k++)
            free(bufs[k]);
    }
    return 0;
}
