/*
 * libsgdlab - train small neural networks and get the learning rate right.
 * SPDX-License-Identifier: MIT
 */
/**
 * @file dist.h
 * @brief Data-parallel training and distributed learning-rate search over
 *        MPI: libsgdlab-mpi, an optional library beside libsgdlab.
 *
 * This header belongs to a library of its own, `libsgdlab-mpi.so.0`
 * (pkg-config `sgdlab-mpi`), built only when MPI is found (meson feature
 * `mpi`; Open MPI or MPICH). libsgdlab itself never depends on MPI: its ABI
 * is the same with or without this library, and nothing here needs `mpi.h`
 * to compile. The core offers MPI-agnostic hooks (sgd_trainer_set_comm(),
 * sgd_loader_options::shard_count, sgd_search_options::shard_count and
 * sgd_search_set_trial()); this library drives them over an MPI
 * communicator.
 *
 * **Data parallelism, torch's DistributedDataParallel semantics.** Every
 * process (rank) builds the same trainer; sgd_dist_attach() checks that they
 * agree, gives every rank rank 0's complete training state (as
 * `DistributedDataParallel` broadcasts rank 0's module at construction; it is
 * how a checkpoint that rank 0 loaded reaches everyone), and makes the
 * trainer one of the communicator's processes. Each step, each rank computes
 * its share of the global batch (sgd_trainer_options::batch_size rows in all:
 * rank r takes rows r, r + P, ...), the gradient arena and the loss are
 * summed in one allreduce, and every rank then applies the same update, takes
 * the same guard decisions and sees the same monitor verdicts, schedules and
 * validation metrics (sgd_trainer_set_comm() says exactly what is shared).
 * The batch size is the global one, so the learning rate and the schedule
 * mean the same whatever the number of processes, and a checkpoint resumes
 * on any number of them.
 *
 * **Reproducibility.** MPI_Allreduce does not promise the order in which it
 * adds (and so the rounding): sgd_dist_options::fixed_order sums every
 * element in rank order (a reduce-scatter by MPI_Alltoallv, the sums in
 * rank order, an MPI_Allgatherv: the same bytes on the wire as a ring
 * allreduce), which makes a run bit-reproducible for a given number of
 * processes. sgd_dist_options::check_interval compares a checksum of the
 * parameters across processes every N steps (a debug mode).
 *
 * **Faults.** Every collective of this library has a deadline
 * (sgd_dist_options::timeout): a process that died, hangs or stopped taking
 * part does not leave the others waiting forever. On a timeout or an MPI
 * error the library writes the reason to stderr and ends the job
 * (sgd_dist_options::abort_on_failure; MPI cannot take a collective back
 * once some processes are in it): the gradient sums of training are MPI's
 * blocking collectives (its fastest), watched by a thread of the
 * communicator that ends the process when one waits too long, which makes
 * the launcher end the job; the other collectives are nonblocking, polled
 * with the deadline, and end the job with MPI_Abort. With abort_on_failure
 * off, every collective is nonblocking and a timeout returns ::SGD_EIO
 * instead. A step that fails on one process (a callback, the model) stops
 * all of them with a status, without ending anything (sgd_trainer_set_comm()).
 *
 * **Search.** sgd_dist_search_run() spreads the trials of a grid or random
 * search over the processes (trial i on rank i % P, each on its own) and
 * gathers every outcome on every rank: the result is the serial search's.
 *
 * MPI is initialised by sgd_dist_new() if the host has not done it (with
 * MPI_THREAD_FUNNELED) and then finalised when the last ::sgd_dist is freed;
 * a host that initialised MPI itself finalises it itself. MPI is called only
 * from the thread that calls this library's functions (and sgd_trainer_fit()
 * of an attached trainer).
 *
 * The library's only process-wide state is MPI's own and a count of the
 * communicators for which it initialised MPI; sgd_dist_new() and
 * sgd_dist_free() must not run in two threads at once (MPI_Init and
 * MPI_Finalize may not). With the default options each communicator of more
 * than one process has one thread of its own, which watches the deadline of
 * the gradient sums (the file's notes on faults).
 *
 * Thread rules: an ::sgd_dist is used by one thread at a time. Every
 * function that takes an ::sgd_dist is collective unless it says otherwise:
 * every process of its communicator calls it, in the same order.
 */
#ifndef SGDLAB_DIST_H
#define SGDLAB_DIST_H

#include "sgdlab/core.h"
#include "sgdlab/data.h"
#include "sgdlab/trainer.h"
#include "sgdlab/tune.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A communicator of processes that train together (opaque).
 * @since 0.2
 */
typedef struct sgd_dist sgd_dist;

/**
 * @brief Options of an ::sgd_dist. Initialise with sgd_dist_options_init().
 *
 * Fields are only ever appended.
 * @since 0.2
 */
typedef struct sgd_dist_options {
    /** Size of this struct as the caller knows it; set by sgd_dist_options_init(). */
    uint32_t struct_size;
    /** Nonzero: sum gradients in rank order, bit-reproducible for a given number of processes (default 0: MPI_Allreduce). */
    int32_t fixed_order;
    /** Debug: every this many gradient sums, compare a checksum of the parameters across processes (0, the default: never). */
    int64_t check_interval;
    /** Seconds a collective may wait for the other processes before it fails, > 0; 0 waits forever (default 600). */
    double timeout;
    /** Nonzero (default 1): on a timeout or an MPI error, print the reason to stderr and end the job (see the file's notes); 0: nonblocking sums (slower with Open MPI 4.1), and ::SGD_EIO instead. */
    int32_t abort_on_failure;
    /** Reserved; keep 0. */
    int32_t reserved;
} sgd_dist_options;

/**
 * @brief Sets @p o to the defaults: MPI_Allreduce, no checksums, a 600 s
 *        timeout, abort the job on a failed collective. Not collective.
 * @param o The options to initialise; NULL does nothing.
 * @since 0.2
 */
SGD_API void sgd_dist_options_init(sgd_dist_options *o);

/**
 * @brief Sets options from a textual spec such as
 *        <tt>"fixed_order=1,check_interval=100,timeout=60"</tt>. Not collective.
 *
 * Keys are the field names of ::sgd_dist_options (without struct_size and
 * reserved); the spec may start with "dist:". On error @p o is unchanged.
 *
 * @param o    Options initialised with sgd_dist_options_init().
 * @param spec The spec ("" changes nothing).
 * @return ::SGD_OK; ::SGD_EINVAL (NULL, malformed, not initialised);
 *         ::SGD_ENOTFOUND (unknown key); ::SGD_ERANGE (value out of range).
 * @since 0.2
 */
SGD_API sgd_status sgd_dist_options_parse(sgd_dist_options *o, const char *spec);

/**
 * @brief Creates a communicator over MPI_COMM_WORLD (duplicated: the
 *        library's messages never mix with the host's), initialising MPI if
 *        needed. With sgd_dist_options::abort_on_failure and a timeout, on
 *        more than one process, it starts the thread that watches the
 *        gradient sums' deadline.
 * @param out   Receives the communicator; NULL on failure.
 * @param opts  Options, or NULL for the defaults.
 * @param alloc Allocator for its memory, or NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL (options); ::SGD_ESTATE (MPI was already
 *         finalised); ::SGD_EIO (MPI failed, with its message); ::SGD_ENOMEM.
 * @since 0.2
 */
SGD_API sgd_status sgd_dist_new(sgd_dist **out, const sgd_dist_options *opts, const sgd_allocator *alloc);

/**
 * @brief Creates a communicator over the host's MPI communicator @p fcomm,
 *        given as its Fortran handle (`MPI_Comm_c2f(comm)` in C, `comm.py2f()`
 *        with mpi4py): an integer, so that any FFI can pass it. The
 *        communicator is duplicated. MPI must be initialised.
 *
 * A C host that includes `mpi.h` before this header can call
 * `sgd_dist_new_comm(&d, comm, opts, alloc)`, an inline wrapper.
 *
 * @param out   Receives the communicator; NULL on failure.
 * @param fcomm The Fortran handle of an intra-communicator.
 * @param opts  Options, or NULL for the defaults.
 * @param alloc Allocator, or NULL for malloc/free.
 * @return As sgd_dist_new(); ::SGD_EINVAL for a handle MPI does not take;
 *         ::SGD_ESTATE when MPI is not initialised.
 * @since 0.2
 */
SGD_API sgd_status sgd_dist_new_fcomm(sgd_dist **out, int64_t fcomm, const sgd_dist_options *opts,
                                      const sgd_allocator *alloc);

#if defined(MPI_VERSION) && !defined(SGD_DIST_NO_MPI_HELPERS)
/* sgd_dist_new_fcomm() for a C host that includes mpi.h first (inline: libsgdlab-mpi's ABI has no MPI type). */
static inline sgd_status sgd_dist_new_comm(sgd_dist **out, MPI_Comm comm, const sgd_dist_options *opts,
                                           const sgd_allocator *alloc)
{
    return sgd_dist_new_fcomm(out, (int64_t)MPI_Comm_c2f(comm), opts, alloc);
}
#endif

/**
 * @brief Frees a communicator (and the state of every trainer still
 *        attached: detach them first, or do not train them afterwards), and
 *        finalises MPI if sgd_dist_new() initialised it and this was the last
 *        communicator. Collective.
 * @param d The communicator; NULL does nothing.
 * @since 0.2
 */
SGD_API void sgd_dist_free(sgd_dist *d);

/**
 * @brief This process's rank. Not collective.
 * @param d The communicator.
 * @return 0 to sgd_dist_size() - 1; -1 if @p d is NULL.
 * @since 0.2
 */
SGD_API int32_t sgd_dist_rank(const sgd_dist *d);

/**
 * @brief The number of processes. Not collective.
 * @param d The communicator.
 * @return >= 1; 0 if @p d is NULL.
 * @since 0.2
 */
SGD_API int32_t sgd_dist_size(const sgd_dist *d);

/**
 * @brief The number of processes of the communicator on this machine (that
 *        share its memory), e.g. to divide the cores among them. Not collective.
 * @param d The communicator.
 * @return >= 1; 0 if @p d is NULL.
 * @since 0.2
 */
SGD_API int32_t sgd_dist_local_size(const sgd_dist *d);

/**
 * @brief The number of machines (shared-memory nodes) the processes run on.
 *        Not collective.
 * @param d The communicator.
 * @return >= 1; 0 if @p d is NULL.
 * @since 0.2
 */
SGD_API int32_t sgd_dist_nodes(const sgd_dist *d);

/**
 * @brief The MPI library's own description (MPI_Get_library_version, first
 *        line), e.g. "Open MPI v4.1.4, ...". Not collective.
 * @param d The communicator.
 * @return A string owned by @p d; "" if @p d is NULL. Never NULL.
 * @since 0.2
 */
SGD_API const char *sgd_dist_mpi_library(const sgd_dist *d);

/**
 * @brief Makes @p t train data-parallel over @p d (see the file's notes and
 *        sgd_trainer_set_comm()).
 *
 * Checks that every process has a trainer of the same shape (parameters,
 * state size), then gives every process rank 0's complete training state
 * (model, optimizer, schedule, monitor and trainer, as a checkpoint in
 * memory: so a run that rank 0 resumed from a file, or whose processes were
 * seeded differently, starts identical everywhere), then sets the trainer's
 * communicator. Call it again after a trainer's state changed on some
 * processes only (an import): it re-synchronises. Allocates the state's
 * buffer for the broadcast (freed before returning) and, with
 * sgd_dist_options::fixed_order, a receive buffer of the gradient's size
 * (kept until detached).
 *
 * @param d The communicator.
 * @param t The trainer (the same on every process); it must not be freed
 *          while attached without sgd_dist_detach(), and must not train after
 *          sgd_dist_free().
 * @return ::SGD_OK on every process, or the same failure on every process:
 *         ::SGD_EINVAL (NULL); ::SGD_ESHAPE (the trainers differ, naming the
 *         processes and the sizes); a checkpoint status (rank 0's state does
 *         not fit a process's trainer, naming it); ::SGD_ENOMEM; ::SGD_EIO.
 * @since 0.2
 */
SGD_API sgd_status sgd_dist_attach(sgd_dist *d, sgd_trainer *t);

/**
 * @brief Makes an attached trainer train alone again and frees what
 *        sgd_dist_attach() kept for it. Not collective.
 * @param d The communicator.
 * @param t The trainer.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL); ::SGD_ENOTFOUND (not attached to @p d).
 * @since 0.2
 */
SGD_API sgd_status sgd_dist_detach(sgd_dist *d, sgd_trainer *t);

/**
 * @brief Whether every process succeeded at something (a setup step, a
 *        file written by rank 0): for a host to stop all processes together
 *        instead of leaving some waiting.
 * @param d      The communicator.
 * @param ok     Nonzero if this process succeeded.
 * @param all_ok Receives 1 if every process passed a nonzero @p ok, else 0.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL); ::SGD_EIO.
 * @since 0.2
 */
SGD_API sgd_status sgd_dist_agree(sgd_dist *d, int32_t ok, int32_t *all_ok);

/**
 * @brief Runs a grid or random search (sgd_search_run()) with its trials
 *        spread over the processes, trial i on rank i % P, and gathers every
 *        trial's outcome on every process.
 *
 * Each trial is trained alone by one process exactly as a serial search
 * trains it (trials are seeded by sgd_search_options::seed, not by where
 * they run), so the result on every process equals the serial search with
 * the same options, but for the seconds each trial took. The per-trial
 * callbacks (on_step, on_event, on_trial) are called for this process's
 * trials; sgd_search_options::threads is per process, and shard_index and
 * shard_count are set by this function.
 *
 * @param d          The communicator.
 * @param out        Receives the whole result (free with sgd_search_free()); NULL on failure.
 * @param model_spec As sgd_search_run().
 * @param train      As sgd_search_run() (every process has the same data).
 * @param val        As sgd_search_run().
 * @param opts       As sgd_search_run() (the same on every process).
 * @param alloc      Allocator for the result; NULL for malloc/free.
 * @return ::SGD_OK on every process, or a failure on every process: the
 *         failing process returns sgd_search_run()'s status, the others
 *         ::SGD_ECANCELED naming it; ::SGD_ESHAPE when the processes do not
 *         search the same trials; ::SGD_EIO.
 * @since 0.2
 */
SGD_API sgd_status sgd_dist_search_run(sgd_dist *d, sgd_search **out, const char *model_spec,
                                       const sgd_dataset *train, const sgd_dataset *val,
                                       const sgd_search_options *opts, const sgd_allocator *alloc);

/**
 * @brief Gathers a buffer from every process on rank 0 (e.g. what a host
 *        recorded of its trials, for one plot).
 * @param d     The communicator.
 * @param data  This process's bytes (may be NULL if @p size is 0).
 * @param size  Their number, at most INT_MAX.
 * @param all   On rank 0 receives the buffers one after the other, in rank
 *              order (free it with sgd_dist_buffer_free(); NULL when they are
 *              all empty); elsewhere set to NULL.
 * @param sizes On rank 0, an array of sgd_dist_size() entries that receives
 *              each process's size; ignored (may be NULL) elsewhere.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL); ::SGD_EOVERFLOW (a size above
 *         INT_MAX, or a sum that overflows); ::SGD_ENOMEM (on rank 0; the
 *         others then get ::SGD_ECANCELED); ::SGD_EIO.
 * @since 0.2
 */
SGD_API sgd_status sgd_dist_gather(sgd_dist *d, const void *data, size_t size, void **all, uint64_t *sizes);

/**
 * @brief Frees a buffer from sgd_dist_gather(). Not collective.
 * @param d The communicator that allocated it.
 * @param p The buffer; NULL does nothing.
 * @since 0.2
 */
SGD_API void sgd_dist_buffer_free(sgd_dist *d, void *p);

/**
 * @brief Ends the whole job (MPI_Abort) after writing @p message to stderr,
 *        for a host that hit an error other processes cannot learn of in
 *        time. Not collective; does not return.
 * @param d       The communicator (NULL: MPI_COMM_WORLD).
 * @param code    The exit status for the job.
 * @param message What went wrong (may be NULL).
 * @since 0.2
 */
SGD_API void sgd_dist_abort(sgd_dist *d, int32_t code, const char *message);

/**
 * @brief What the communicator's sums cost so far (for benchmarks).
 *
 * Set @c struct_size before calling sgd_dist_get_stats().
 * @since 0.2
 */
typedef struct sgd_dist_stats {
    /** Size of this struct as the caller knows it. */
    uint32_t struct_size;
    /** Reserved; 0. */
    int32_t reserved;
    /** Sums done for attached trainers. */
    int64_t sums;
    /** Of them, sums of the gradient arena (one per step that computed gradients). */
    int64_t gradient_sums;
    /** Bytes of gradients summed (this process's arena, once per gradient sum). */
    uint64_t gradient_bytes;
    /** Seconds in all the sums, waiting for slower processes included. */
    double seconds;
    /** Of them, seconds in gradient sums. */
    double gradient_seconds;
    /** Parameter checksums compared (sgd_dist_options::check_interval). */
    int64_t checks;
} sgd_dist_stats;

/**
 * @brief Zeroes @p s and sets its @c struct_size, ready for sgd_dist_get_stats()
 *        (inline: the size is this header's; see @ref versioned_structs).
 * @param s The struct to initialise; NULL is ignored.
 * @since 0.2
 */
static inline void sgd_dist_stats_init(sgd_dist_stats *s)
{
    SGD_OUTPUT_INIT(s);
}

/**
 * @brief Reads the communicator's counters. Not collective.
 * @param d     The communicator.
 * @param stats Receives them as far as its @c struct_size goes (set by sgd_dist_stats_init());
 *              its @c struct_size is left as it is.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL, or a struct_size smaller than the struct's first release).
 * @since 0.2
 */
SGD_API sgd_status sgd_dist_get_stats(const sgd_dist *d, sgd_dist_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* SGDLAB_DIST_H */
