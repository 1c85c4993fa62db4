/*
 * bench_monitor: nanoseconds per sgd_monitor_observe() call on synthetic
 * curves (a healthy noisy decay, a flat stagnant curve, a diverging one that
 * stays finite), with no callback and with one callback on every event.
 * Target: at most 100 ns per observation, no allocation after creation.
 * SPDX-License-Identifier: MIT
 */
#include "sgdlab/sgdlab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define N 2000000

static long allocs;
static void *b_malloc(size_t n, void *u) { (void)u; allocs++; return malloc(n); }
static void *b_realloc(void *p, size_t n, void *u) { (void)u; allocs++; return realloc(p, n); }
static void b_free(void *p, void *u) { (void)u; free(p); }

static int32_t count_cb(const sgd_monitor_event *ev, double *scale, void *user)
{
    (void)ev;
    (void)scale;
    ++*(long *)user;
    return SGD_MONITOR_CONTINUE;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* xorshift noise, so that generating the curve costs little next to the monitor */
static uint64_t rs = 88172645463325252ull;
static double unif(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (double)(rs >> 11) * (1.0 / 9007199254740992.0);
}

int main(void)
{
    double *curves[3];
    const char *names[3] = {"healthy", "stagnant", "diverging"};
    for (int c = 0; c < 3; c++) {
        curves[c] = malloc(sizeof(double) * N);
        if (curves[c] == NULL)
            return 1;
        for (long i = 0; i < N; i++) {
            double t = (double)(i % 5000);
            double noise = exp(0.2 * (unif() - 0.5));
            double v = c == 0 ? 2.3 * exp(-t / 500.0) + 0.1 : c == 1 ? 2.3 - 1e-5 * t : 2.3 * exp(t / 200.0);
            if (v > 1e300)
                v = 1e300;
            curves[c][i] = v * noise;
        }
    }
    sgd_allocator al = {b_malloc, b_realloc, b_free, NULL};
    printf("bench_monitor: %d observations per run, curves restart every 5000 steps\n", N);
    for (int withcb = 0; withcb <= 1; withcb++) {
        for (int c = 0; c < 3; c++) {
            sgd_monitor *m;
            if (sgd_monitor_new(&m, NULL, &al) != SGD_OK)
                return 1;
            long events = 0;
            if (withcb)
                sgd_monitor_add_callback(m, NULL, SGD_MONITOR_MASK_ALL, count_cb, &events);
            long before = allocs;
            double best = 1e300;
            for (int rep = 0; rep < 3; rep++) {
                sgd_monitor_reset(m);
                double t0 = now();
                for (long i = 0; i < N; i++) {
                    if (i % 5000 == 0)
                        sgd_monitor_reset(m);
                    sgd_monitor_observe(m, curves[c][i], -1.0, 0.1, NULL, NULL);
                }
                double dt = (now() - t0) / N * 1e9;
                if (dt < best)
                    best = dt;
            }
            printf("  %-9s %-13s %6.1f ns/observation  allocations during observe: %ld%s\n", names[c],
                   withcb ? "callback" : "no callback", best, allocs - before, withcb ? "" : "");
            sgd_monitor_free(m);
        }
    }
    for (int c = 0; c < 3; c++)
        free(curves[c]);
    return 0;
}
