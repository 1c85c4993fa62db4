/*
 * The sgdlab tool's --dist: data-parallel train and distributed sweep over
 * MPI, through libsgdlab-mpi when the tool was built with it (meson feature
 * mpi); without it, --dist says so. Everything the commands need of MPI is
 * here, so that they stay MPI-free.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_TOOL_CLI_DIST_H
#define SGDLAB_TOOL_CLI_DIST_H

#include "sgdlab/sgdlab.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct sgd_dist sgd_dist;

typedef struct cli_dist {
    sgd_dist *d;     /* NULL when not distributed */
    int rank, size;  /* 0 and 1 when not distributed */
    int local_size;  /* processes on this machine */
    bool agreed;     /* the setup agreement has been made (see cli_dist_setup_done) */
    char desc[320];  /* "2 processes on 1 machine (Open MPI v4.1.4)" */
} cli_dist;

/*
 * Under an MPI launcher (mpirun/mpiexec/srun: OMPI_COMM_WORLD_SIZE, PMI_SIZE
 * or PMIX_SIZE) with more than one process, a command run without --dist
 * would run as that many independent copies: say so (from rank 0 only) and
 * return false. `dist_supported`: whether the command has --dist.
 */
bool cli_dist_check_launch(const char *cmd, bool dist, bool dist_supported);

/*
 * --dist: joins the job (MPI_COMM_WORLD) with the options SPEC (--dist-options,
 * may be NULL). On ranks other than 0 standard output is discarded (only rank
 * 0 reports). false, with a message, if the tool has no MPI or MPI fails.
 */
bool cli_dist_start(const char *cmd, const char *spec, cli_dist *cd);
/* Leaves the job (finalises MPI); nothing when not distributed. */
void cli_dist_stop(cli_dist *cd);
static inline bool cli_dist_on(const cli_dist *cd) { return cd->d != NULL; }
static inline bool cli_dist_root(const cli_dist *cd) { return cd->rank == 0; }

/*
 * Every process says whether its setup worked, before the first collective
 * that needs all of them; false on every process if any failed (those that
 * did not fail say that another did). Call it on every path once, with
 * ok = false on the error paths (cli_dist_stop() does it if nobody did).
 */
bool cli_dist_setup_done(const char *cmd, cli_dist *cd, bool ok);
/* Whether every process succeeded at something (rank 0 writing a checkpoint...). */
bool cli_dist_all_ok(cli_dist *cd, bool ok);

/* Makes the trainer data-parallel (rank 0's state to everyone); false with a message. */
bool cli_dist_attach(const char *cmd, cli_dist *cd, sgd_trainer *t);

/* sgd_dist_search_run(). */
sgd_status cli_dist_search(cli_dist *cd, sgd_search **out, const char *model, const sgd_dataset *train,
                           const sgd_dataset *val, const sgd_search_options *so);

/* Gathers every process's buffer on rank 0 (free with free_all); sizes has cd->size entries. */
bool cli_dist_gather(const char *cmd, cli_dist *cd, const void *data, size_t size, void **all, uint64_t *sizes);
void cli_dist_free_all(cli_dist *cd, void *all);

/* Seconds this process spent in gradient sums and their number, for the summary. */
void cli_dist_sum_time(const cli_dist *cd, double *seconds, int64_t *sums);

#endif
