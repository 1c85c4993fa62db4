/*
 * libsgdlab-mpi: what its files share. Never installed. This library is
 * built on libsgdlab's public API only (its internal helpers are hidden in
 * libsgdlab.so), so it has small helpers of its own.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_DIST_INTERNAL_H
#define SGDLAB_DIST_INTERNAL_H

#include "sgdlab/checkpoint.h"
#include "sgdlab/dist.h"

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#if defined(__GNUC__)
#define DIST_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DIST_PRINTF(a, b)
#endif

typedef struct dist_attachment dist_attachment;

/*
 * The deadline of the blocking collectives (with abort_on_failure): a thread
 * that wakes a few times a second and, when a collective has been armed for
 * longer than the timeout, writes why and ends the process (_exit), which
 * makes the MPI launcher end the job. The hot path only stores a time.
 */
typedef struct dist_watch {
    pthread_t thread;
    atomic_llong armed_ns;    /* when the collective in progress began (CLOCK_MONOTONIC), 0: none */
    _Atomic(const char *) what;
    atomic_int quit;
    double timeout;
    int rank, size;
} dist_watch;

struct sgd_dist {
    sgd_allocator alloc;
    sgd_dist_options o;
    MPI_Comm comm;
    int rank, size, local_size, nodes;
    bool owns_mpi; /* sgd_dist_new() initialised MPI for this handle */
    char library[256];
    dist_attachment *att; /* trainers attached */
    sgd_dist_stats stats;
    dist_watch *watch;    /* with abort_on_failure and a timeout: the gradient sums block, watched */
};

/* Sets the calling thread's message (through libsgdlab, so sgd_error_last() reads it) and returns status. */
sgd_status sgd__dist_err(sgd_status status, const char *fmt, ...) DIST_PRINTF(2, 3);

/* d's allocator (zeroed memory); NULL on failure, without a message. */
void *sgd__dist_calloc(const sgd_dist *d, size_t n, size_t size);
void sgd__dist_free_mem(const sgd_dist *d, void *p);

/*
 * Waits for n requests with the communicator's deadline. On an MPI error or
 * a timeout: with abort_on_failure, prints why and ends the job; otherwise
 * returns SGD_EIO with a message naming `fn` and `what`.
 */
sgd_status sgd__dist_wait(sgd_dist *d, MPI_Request *reqs, int n, const char *fn, const char *what);

/* An MPI call's failure (rc != MPI_SUCCESS) as above. */
sgd_status sgd__dist_mpi_fail(sgd_dist *d, int rc, const char *fn, const char *what);

/*
 * The failure of any process as everyone's: `st` is this process's status.
 * Returns SGD_OK when every process passed SGD_OK; otherwise the failing
 * processes keep their own status (their message prefixed with `fn` and
 * their rank), the others get the lowest failing status with a message
 * naming `fn`, `what` and how many failed.
 */
sgd_status sgd__dist_agree_status(sgd_dist *d, sgd_status st, const char *fn, const char *what);

/* Seconds on a monotonic clock. */
double sgd__dist_now(void);

#endif /* SGDLAB_DIST_INTERNAL_H */
