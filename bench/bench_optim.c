/*
 * bench_optim: nanoseconds per parameter per step of each built-in optimizer
 * at 1e5, 1e6 and 1e7 parameters, next to a bound measured in the same run:
 * a fused loop that reads and writes the same arrays as the optimizer (the
 * gradients, and the parameters and every state slot) and does trivial
 * arithmetic, i.e. what moving the optimizer's bytes costs on this machine.
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

/* Compiled as the library's kernels are (lib/optim/kernels.c), so the bound is as vectorised as they are. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KERNEL
#endif

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/*
 * The bound: reads g and `rw` read-write arrays, writes the `rw` arrays,
 * one fused pass, like an optimizer (which reads grads, params and its
 * slots and writes params and its slots). The gradient scan the optimizer
 * also does (a read of g) is not in the bound.
 */
#define BOUND_BODY(...)                                                                                             \
    for (size_t i = 0; i < n; i++) {                                                                                \
        float t = g[i];                                                                                             \
        __VA_ARGS__                                                                                                 \
    }
KERNEL static void bound1(size_t n, const float *restrict g, float *restrict a, float c)
{
    BOUND_BODY(a[i] = a[i] * c + t;)
}
KERNEL static void bound2(size_t n, const float *restrict g, float *restrict a, float *restrict b, float c)
{
    BOUND_BODY(a[i] = a[i] * c + t; b[i] = b[i] * c + t;)
}
KERNEL static void bound3(size_t n, const float *restrict g, float *restrict a, float *restrict b, float *restrict d, float c)
{
    BOUND_BODY(a[i] = a[i] * c + t; b[i] = b[i] * c + t; d[i] = d[i] * c + t;)
}
KERNEL static void bound4(size_t n, const float *restrict g, float *restrict a, float *restrict b, float *restrict d,
                   float *restrict e, float c)
{
    BOUND_BODY(a[i] = a[i] * c + t; b[i] = b[i] * c + t; d[i] = d[i] * c + t; e[i] = e[i] * c + t;)
}

/* A read-only pass over g (what the optimizer's NaN/norm scan costs at best). */
KERNEL static float read_pass(size_t n, const float *restrict g)
{
    float acc[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++)
            acc[l] += g[i + l];
    float s = 0;
    for (int l = 0; l < 16; l++)
        s += acc[l];
    return s;
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

typedef struct row {
    const char *label;
    const char *spec;
} row;

static const row rows[] = {
    {"sgd", "sgd:lr=0.01"},
    /* As torch does it: no gradient check, so no pass before the update. */
    {"sgd unchecked", "sgd:lr=0.01,nonfinite=apply"},
    {"sgd momentum", "sgd:lr=0.01,momentum=0.9"},
    {"adagrad", "adagrad"},
    {"rmsprop", "rmsprop"},
    {"adam", "adam"},
    {"adamw", "adamw"},
    {"adam amsgrad", "adam:amsgrad=1"},
};

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
    size_t n;
    int rw;
    float *g, *a[4];
} bound_ctx;

static void run_bound(void *p)
{
    bound_ctx *c = p;
    const float k = 0.999f;
    switch (c->rw) {
    case 1: bound1(c->n, c->g, c->a[0], k); break;
    case 2: bound2(c->n, c->g, c->a[0], c->a[1], k); break;
    case 3: bound3(c->n, c->g, c->a[0], c->a[1], c->a[2], k); break;
    default: bound4(c->n, c->g, c->a[0], c->a[1], c->a[2], c->a[3], k); break;
    }
}

static volatile float sink;

static void run_read(void *p)
{
    bound_ctx *c = p;
    sink = read_pass(c->n, c->g);
}

static void run_scan(void *p)
{
    bound_ctx *c = p;
    sgd__gradstat st;
    sgd__grad_scan(c->g, c->n, 0.0f, &st);
    sink = (float)st.sumsq;
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

    if (csv)
        printf("optimizer,n,ns_per_param,bound_ns_per_param,bytes_per_param\n");
    else
        printf("%-14s %10s %12s %12s %7s %10s\n", "optimizer", "n", "ns/param", "bound ns", "ratio", "GB/s");
    for (size_t s = 0; s < nsizes; s++) {
        size_t n = sizes[s];
        float *x = arena(n, 0.5f), *g = arena(n, 0.0f);
        sgd__rng rng;
        sgd__rng_seed(&rng, 1);
        for (size_t i = 0; i < n; i++)
            g[i] = (float)sgd__rng_normal(&rng);
        float *bufs[4];
        for (int k = 0; k < 4; k++)
            bufs[k] = arena(n, 0.25f);
        bound_ctx bc = {n, 1, g, {bufs[0], bufs[1], bufs[2], bufs[3]}};
        double scan, gscan;
        best_pair(run_scan, &bc, run_read, &bc, n, min_time, rounds, &gscan, &scan);
        if (!csv) {
            printf("%-14s %10zu %12.3f %12s %7s %10.1f\n", "(read grads)", n, scan, "", "", 4.0 / scan);
            printf("%-14s %10zu %12.3f %12s %7s %10.1f\n", "(grad scan)", n, gscan, "", "", 4.0 / gscan);
        }
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
            sgd_optim *o = NULL;
            if (sgd_optim_new(&o, rows[r].spec, n, NULL) != SGD_OK) {
                fprintf(stderr, "bench_optim: %s\n", sgd_error_last());
                return 1;
            }
            size_t slots = sgd_optim_state_count(o) - 1;
            double flag;
            size_t idx;
            if (sgd_optim_state_find(o, "scalars", &idx) == SGD_OK && sgd_optim_state_export(o, idx, &flag, 8) == 0)
                slots--;
            opt_ctx oc = {o, x, g};
            bc.rw = (int)slots + 1;
            double ns, bound;
            best_pair(run_opt, &oc, run_bound, &bc, n, min_time, rounds, &ns, &bound);
            /* bytes the update must move: read g, params and slots; write params and slots */
            double bytes = 4.0 * (1 + 2 * (double)(slots + 1));
            if (csv)
                printf("%s,%zu,%.4f,%.4f,%.0f\n", rows[r].label, n, ns, bound, bytes);
            else
                printf("%-14s %10zu %12.3f %12.3f %7.2f %10.1f\n", rows[r].label, n, ns, bound, ns / bound,
                       bytes / ns);
            fflush(stdout);
            sgd_optim_free(o);
        }
        free(x);
        free(g);
        for (int k = 0; k < 4; k++)
            free(bufs[k]);
    }
    return 0;
}
