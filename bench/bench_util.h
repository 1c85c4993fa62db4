/*
 * Helpers of the benchmarks: clocks, and the best and median of rounds
 * (the machine may be shared: every benchmark interleaves its rounds and
 * prints both). Never installed. SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_BENCH_UTIL_H
#define SGDLAB_BENCH_UTIL_H

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU seconds of this thread: on a shared machine it leaves out the time spent waiting for a core. */
static inline double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The smallest of v[0..n). */
static inline double best_of(const double *v, int n)
{
    double b = v[0];
    for (int i = 1; i < n; i++)
        b = v[i] < b ? v[i] : b;
    return b;
}

/* The median of v[0..n), n <= 256. */
static inline double median_of(const double *v, int n)
{
    double s[256];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

#endif /* SGDLAB_BENCH_UTIL_H */
