/*
 * Test utilities shared by every module's tests (never installed).
 *
 * The counting allocator `sgdt_alloc` is an sgd_allocator that counts every
 * allocation, tracks the blocks still live (so a test can assert "no leak"),
 * and can fail the Nth allocation once (transient) or from the Nth on
 * (persistent). sgdt_walk_alloc_failures() drives a scenario through every
 * allocation it makes, failing each in turn, both ways.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_TEST_UTIL_H
#define SGDLAB_TEST_UTIL_H

/* CMocka needs these before it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sgdlab/sgdlab.h"

typedef struct sgdt_alloc {
    sgd_allocator base; /* pass &t->base (or sgdt_allocator(t)) to the library */
    long calls;         /* allocation attempts so far (malloc_fn and realloc_fn) */
    long fail_at;       /* 0-based attempt to fail; -1: never */
    int persistent;     /* fail every attempt from fail_at on */
    long failures;      /* failures injected so far */
    long live;          /* blocks allocated and not yet freed */
    size_t live_bytes;  /* their total size */
    size_t peak_bytes;  /* highest live_bytes seen */
} sgdt_alloc;

/* Resets counters; fails nothing. */
void sgdt_alloc_init(sgdt_alloc *t);
/* Fail attempt n (0-based) and, if persistent, every attempt after it. */
void sgdt_alloc_fail_at(sgdt_alloc *t, long n, int persistent);
static inline const sgd_allocator *sgdt_allocator(sgdt_alloc *t) { return &t->base; }

/*
 * A scenario: builds and uses objects with the given allocator, frees all of
 * them, and returns the status of the first call that failed (SGD_OK if none
 * did). It may itself retry after a failure to check that an object is still
 * usable; `t` tells it whether a failure was injected (t->failures).
 */
typedef sgd_status (*sgdt_scenario)(sgdt_alloc *t, void *ctx);

/*
 * Runs `fn` once without failures (it must return SGD_OK), then once for each
 * allocation it made, failing that allocation transiently and then
 * persistently. Each run must return SGD_OK when no failure was injected and
 * SGD_ENOMEM when one was, with a non-empty sgd_error_last(), and must leave
 * no block live. Returns the number of allocations of the clean run.
 */
long sgdt_walk_alloc_failures(sgdt_scenario fn, void *ctx);

/* Asserts with a readable failure: status `got` equals `want`, printing sgd_error_last(). */
#define sgdt_assert_status(got, want) sgdt__assert_status((got), (want), #got, __FILE__, __LINE__)
void sgdt__assert_status(int got, int want, const char *expr, const char *file, int line);

/* Asserts the last error message contains `needle`. */
#define sgdt_assert_error_contains(needle) sgdt__assert_error_contains((needle), __FILE__, __LINE__)
void sgdt__assert_error_contains(const char *needle, const char *file, int line);

/*
 * Path of a test data file: $SGDT_DATA_DIR/name (the test suite sets it to
 * tests/data in the source tree). Returns a static buffer.
 */
const char *sgdt_data_path(const char *name);

/*
 * splitmix64 streams, as the torch fixture generators (tests/gen_*.py) draw
 * them: each call returns the next uniform double in [0, 1) with 24 random
 * bits of the stream whose state is *x (initially the seed).
 */
double sgdt_splitmix_u(uint64_t *x);

/*
 * A text fixture of the torch generators: '#' comment lines, then records
 * "name rows cols" followed by rows * cols numbers, read in order.
 */
typedef struct sgdt_fixture {
    char *text;
    char *at;
} sgdt_fixture;

/* Reads a gzip-compressed fixture whole (fails the test if it cannot). */
void sgdt_fixture_load(sgdt_fixture *f, const char *path);
/* The record `name`, which must come next, of rows x cols values: a new array (free it). */
double *sgdt_fixture_record(sgdt_fixture *f, const char *name, int64_t rows, int64_t cols);
void sgdt_fixture_free(sgdt_fixture *f);

/* Largest |ours - ref| over the largest |ref|: the tolerance rule of the torch parity tests. */
double sgdt_parity_error(const float *ours, const double *ref, size_t n);

/*
 * A small seeded classification task: n rows of `dim` features in `classes`
 * noisy blobs (row i has class i % classes), into x (n * dim) and y (n).
 */
void sgdt_blobs(float *x, int32_t *y, int64_t n, int dim, int classes, uint32_t seed);

/* The largest |a[i] - b[i]| (NaN anywhere makes it NaN). */
float sgdt_max_abs_diff(const float *a, const float *b, size_t n);

#endif /* SGDLAB_TEST_UTIL_H */
