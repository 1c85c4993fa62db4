/*
 * bench_monitor: nanoseconds per sgd_monitor_observe() call on synthetic
 * curves (a healthy noisy decay, a flat stagnant curve, a diverging one that
 * stays finite), with no callback, with one callback on every event, and
 * through sgd_monitor_observe_step() with a gradient norm; next to a bound
 * loop measured in the same run. Target: at most 100 ns per observation, no
 * allocation after creation.
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

/* The process's CPU time: on a machine shared with other jobs, wall-clock time also counts the
   time spent waiting for a core. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
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
    printf("bench_monitor: %d observations per run, curves restart every 5000 steps; best of 3 runs, interleaved\n",
           N);
    printf("peer: a bound loop doing the least any log-scale monitor does per observation (a log, two EMAs,\n"
           "a compare), over the same curve\n");
    /* 0: observe, no callback; 1: observe, a callback on every event; 2: observe_step with a gradient norm */
    static const char *const modes[3] = {"no callback", "callback", "step+grad_norm"};
    for (int c = 0; c < 3; c++) {
        double best[4] = {1e300, 1e300, 1e300, 1e300};
        long allocated[3] = {0, 0, 0};
        volatile double sink = 0;
        for (int rep = 0; rep < 3; rep++) {
            for (int mode = 0; mode < 3; mode++) {
                sgd_monitor *m;
                if (sgd_monitor_new(&m, NULL, &al) != SGD_OK)
                    return 1;
                long events = 0;
                if (mode == 1)
                    sgd_monitor_add_callback(m, NULL, SGD_MONITOR_MASK_ALL, count_cb, &events);
                long before = allocs;
                double t0 = now();
                for (long i = 0; i < N; i++) {
                    if (i % 5000 == 0)
                        sgd_monitor_reset(m);
                    if (mode == 2)
                        sgd_monitor_observe_step(m, i, curves[c][i], 1.0 + 0.01 * (double)(i & 7), 0.1, NULL, NULL);
                    else
                        sgd_monitor_observe(m, curves[c][i], -1.0, 0.1, NULL, NULL);
                }
                double dt = (now() - t0) / N * 1e9;
                if (dt < best[mode])
                    best[mode] = dt;
                allocated[mode] += allocs - before;
                sgd_monitor_free(m);
            }
            double t0 = now();
            double level = 0, slow = 0, hi = -1e300;
            for (long i = 0; i < N; i++) {
                double y = log(curves[c][i]);
                level += 0.1 * (y - level);
                slow += 0.01 * (level - slow);
                if (y > hi)
                    hi = y;
            }
            sink += level + slow + hi;
            double dt = (now() - t0) / N * 1e9;
            if (dt < best[3])
                best[3] = dt;
        }
        for (int mode = 0; mode < 3; mode++)
            printf("  %-9s %-15s %6.1f ns/observation  allocations during observe: %ld\n", names[c], modes[mode],
                   best[mode], allocated[mode]);
        printf("  %-9s %-15s %6.1f ns/observation\n", names[c], "peer (bound)", best[3]);
    }
    for (int c = 0; c < 3; c++)
        free(curves[c]);
    return 0;
}
