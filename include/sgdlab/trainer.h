/*
 * libsgdlab - train small neural networks and get the learning rate right.
 * SPDX-License-Identifier: MIT
 */
/**
 * @file trainer.h
 * @brief The training loop: a model, an optimizer, a schedule and a health
 *        monitor over a dataset, with validation, early stopping, progress
 *        reports and a guard that rescues runs that blow up.
 *
 * A trainer (::sgd_trainer) composes objects the host made and keeps
 * (it borrows them; they must outlive it):
 *
 * - a built model (::sgd_model) and an optimizer (::sgd_optim) of the same
 *   number of parameters;
 * - optionally a schedule (::sgd_sched): without one the learning rate is the
 *   optimizer's "lr" hyperparameter, constant;
 * - optionally a health monitor (::sgd_monitor): without one the trainer
 *   makes its own with the default options;
 * - a training dataset and, optionally, a validation dataset (the trainer
 *   keeps views of both: the host may free its handles at once).
 *
 * It runs epochs of minibatches (seeded shuffling, optional drop_last),
 * measures the validation loss and accuracy after each epoch, reports
 * progress to a host callback (step, epoch, loss, learning rate, throughput,
 * fraction done, time left), stops early when the validation loss stops
 * improving, hands the gradient norm and the learning rate of every step to
 * the monitor, the validation loss of every epoch to schedules that watch a
 * metric (plateau reduction, as torch users call
 * `scheduler.step(val_loss)`; without a validation set, the epoch's mean
 * training loss), and the momentum of one-cycle and cyclic schedules to the
 * optimizer ("momentum", or "beta1" for Adam).
 *
 * **One step**, at schedule step t (t counts the training batches taken
 * since the start, from 0): zero the gradients; forward and backward on the
 * batch; measure the gradients' L2 norm; lr = schedule(t) * guard scale;
 * give (loss, norm, lr) to the monitor; decide what to do about the events it
 * raised (below); apply the optimizer's update at lr (with the gradient
 * clipping and the non-finite policy set on the optimizer, which the trainer
 * options may override). Nothing is allocated.
 *
 * **What the trainer does with each monitor action** (the default policy
 * proposes one per event; a host event callback may replace it, and
 * callbacks the host registered on the monitor itself may only strengthen
 * it; of several events in one step the strongest action wins, in the order
 * continue < skip < scale_lr < rollback < stop):
 *
 * | action | the trainer |
 * |---|---|
 * | ::SGD_MONITOR_CONTINUE | applies the update |
 * | ::SGD_MONITOR_SKIP | does not apply this step's update (the batch is used up) |
 * | ::SGD_MONITOR_SCALE_LR | multiplies the guard scale by the factor, then applies the update at the new rate |
 * | ::SGD_MONITOR_ROLLBACK | restores the last good snapshot (parameters, optimizer, schedule, monitor, counters and data position), multiplies the guard scale by the factor, and carries on from there; counted as a rescue |
 * | ::SGD_MONITOR_STOP | stops; sgd_trainer_fit() returns ::SGD_ECANCELED |
 *
 * **The guard** (sgd_trainer_options::guard, on by default) is that policy:
 * a nonfinite, divergence, spike or oscillation event rolls back to the last
 * good snapshot and multiplies the learning rate by
 * sgd_trainer_options::guard_factor (0.5); plateau and stagnation are only
 * reported. (A spike, a loss twice its smoothed level and beyond its noise,
 * is what a rate at the edge of stability looks like: on Fashion-MNIST plain
 * SGD at lr 1.0 spikes within 100 steps and crawls or blows up later, and
 * rolling back at the first spike is what lets it finish well; healthy runs
 * at good rates have none. docs/trainer.md has the measurements.) Each
 * rollback, and each learning-rate cut a callback asks for, is a rescue,
 * reported to the host (::SGD_TRAINER_EVENT_RESCUE); when a rescue is needed
 * after sgd_trainer_options::guard_max_rescues of them the trainer gives up:
 * sgd_trainer_fit() returns ::SGD_EDIVERGED with a message. With the guard
 * off every event is reported and nothing is done about it, except that a
 * run whose monitor verdict becomes ::SGD_MONITOR_DIVERGED stops with
 * ::SGD_EDIVERGED (sgd_trainer_options::stop_on_divergence).
 *
 * **Snapshots.** The guard keeps two in-memory snapshots of the whole
 * training state, both allocated by sgd_trainer_new(): taking one is a few
 * memcpy. The first is taken before the first step. Every
 * sgd_trainer_options::guard_interval steps (50) a new candidate is taken
 * if the monitor's verdict is healthy (or stagnant) and no alarm was raised
 * since the last check; a candidate becomes the rollback target only when it
 * is itself followed by a whole interval without alarm. So the state a
 * rescue returns to was followed by at least one healthy interval, and is at
 * most two intervals old (plus the steps since the last check).
 *
 * **Checkpoints.** sgd_trainer_state_export() writes what the trainer itself
 * holds (counters, data position, the model's dropout generator, the guard's
 * scale, rescue count and both snapshots, best validation loss, early-stop
 * counter, per-epoch history) in a versioned little-endian layout; the model,
 * optimizer, schedule and monitor are saved through their own state
 * functions. A trainer restored from all five continues bit for bit as the
 * original would have (docs/trainer.md).
 *
 * Thread rules: a trainer is used by one thread at a time, and its composed
 * objects are not used by anyone else while it runs. Callbacks run on the
 * thread that called sgd_trainer_fit().
 */
#ifndef SGDLAB_TRAINER_H
#define SGDLAB_TRAINER_H

#include "sgdlab/core.h"
#include "sgdlab/data.h"
#include "sgdlab/model.h"
#include "sgdlab/monitor.h"
#include "sgdlab/optim.h"
#include "sgdlab/sched.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A training loop over a model, an optimizer, a schedule and a monitor (opaque).
 * @since 0.1
 */
typedef struct sgd_trainer sgd_trainer;

/**
 * @brief Options of a trainer. Initialise with sgd_trainer_options_init().
 *
 * Fields are only ever appended.
 * @since 0.1
 */
typedef struct sgd_trainer_options {
    /** Size of this struct as the caller knows it; set by sgd_trainer_options_init(). */
    uint32_t struct_size;
    /** Nonzero (default 1): visit the training rows of each epoch in a fresh order, seeded by @c seed. */
    int32_t shuffle;
    /** Rows per minibatch, 1 to 2^20 (default 128). The model's buffers are enlarged if needed. */
    int64_t batch_size;
    /** Epochs to train, 1 to 2^31 (default 1). */
    int64_t epochs;
    /** Seed of the shuffling (default 0): epoch e's order depends only on (seed, e). */
    uint64_t seed;
    /** Nonzero: leave out the last batch of an epoch when it is smaller than batch_size (default 0). */
    int32_t drop_last;
    /** An ::sgd_nonfinite_policy set on the optimizer, or -1 (default) to keep the optimizer's own. */
    int32_t nonfinite;
    /** Gradient clipping by global L2 norm set on the optimizer (0 disables), or -1 (default) to keep the optimizer's. */
    double clip_norm;
    /** Gradient clipping by value set on the optimizer (0 disables), or -1 (default) to keep the optimizer's. */
    double clip_value;
    /** Rows per batch when evaluating the validation set; 0 (default) for the model's largest batch. */
    int64_t eval_batch_size;
    /** Early stopping: stop after this many epochs in a row without improvement of the validation loss; 0 (default) disables. */
    int64_t patience;
    /** Early stopping: an improvement is a validation loss below the best by more than this (>= 0, default 0). */
    double min_delta;
    /** Nonzero (default 1): the guard's policy, snapshots and rescues (see the file's notes). */
    int32_t guard;
    /** Nonzero (default 1): stop with ::SGD_EDIVERGED once the monitor's verdict is ::SGD_MONITOR_DIVERGED. */
    int32_t stop_on_divergence;
    /** Steps between the guard's snapshot checks, 1 to 2^40 (default 50). */
    int64_t guard_interval;
    /** Factor of the learning rate after a rollback, in (0, 1] (default 0.5). */
    double guard_factor;
    /** Rescues (rollbacks and learning-rate cuts) before giving up, 0 to 2^31 (default 10). */
    int64_t guard_max_rescues;
    /** After a rollback, skip the batches of schedule steps within this distance of the spike's step when they come again (default 0: replay them all). */
    int64_t guard_skip;
    /** Steps between two calls of the progress callback, >= 1 (default 10); epoch ends are always reported. */
    int64_t progress_interval;
} sgd_trainer_options;

/**
 * @brief Sets @p o to the defaults: batch 128, 1 epoch, shuffled with seed 0,
 *        no drop_last, the optimizer's own clipping and non-finite policy, no
 *        early stopping, the guard on (interval 50, factor 0.5, 10 rescues,
 *        no skipping), stop on divergence, progress every 10 steps.
 * @param o The options to initialise; NULL does nothing.
 * @since 0.1
 */
SGD_API void sgd_trainer_options_init(sgd_trainer_options *o);

/**
 * @brief Sets options from a textual spec such as
 *        <tt>"epochs=2,batch_size=128,guard=0,patience=3"</tt>.
 *
 * Keys are the field names of ::sgd_trainer_options (without struct_size);
 * the spec may start with "trainer:". Numbers are read independently of the
 * C locale; booleans may be 0/1, true/false, yes/no. Values are range-checked
 * as sgd_trainer_new() does. On error @p o is unchanged. @p o is read and
 * written back as far as its @c struct_size goes (see @ref versioned_structs).
 *
 * @param o    Options initialised with sgd_trainer_options_init().
 * @param spec The spec, NUL-terminated ("" changes nothing).
 * @return ::SGD_OK; ::SGD_EINVAL (NULL, malformed, a @c struct_size smaller than
 *         the struct's first release or larger than this library's); ::SGD_ENOTFOUND
 *         (unknown key); ::SGD_ERANGE (value out of range).
 * @since 0.1
 */
SGD_API sgd_status sgd_trainer_options_parse(sgd_trainer_options *o, const char *spec);

/**
 * @brief Creates a trainer.
 *
 * Checks that the pieces fit together: the optimizer updates as many
 * parameters as the model has; the datasets have the model's number of inputs
 * and, for cross-entropy, class labels below its number of outputs (for MSE
 * and BCE, as many targets as outputs); a schedule that cycles momentum needs
 * an optimizer with a "momentum" (created with momentum > 0) or a "beta1".
 * Then it sets the trainer options' clipping and non-finite policy on the
 * optimizer (if not -1), enlarges the model's buffers to the batch size if
 * needed, registers a callback on the monitor (removed by sgd_trainer_free()),
 * and allocates everything a run needs: the loader, the history, and with the
 * guard the two snapshots (see sgd_trainer_state_size() for their size).
 *
 * @param out     Receives the trainer; set to NULL on failure.
 * @param model   A built model; borrowed.
 * @param optim   Its optimizer; borrowed.
 * @param sched   A schedule, or NULL for the optimizer's constant "lr"; borrowed.
 * @param monitor A monitor, or NULL to make one with the default options; borrowed.
 * @param train   The training set; the trainer keeps its own view.
 * @param val     The validation set, or NULL; the trainer keeps its own view.
 * @param opts    Options, or NULL for the defaults.
 * @param alloc   Allocator for the trainer's memory; NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL required argument, an unbuilt model,
 *         options out of range or not initialised, a schedule that cycles
 *         momentum over an optimizer without one); ::SGD_ESHAPE (the model,
 *         the optimizer and the datasets do not fit, naming both sizes);
 *         ::SGD_EOVERFLOW (the monitor already has its maximum of callbacks,
 *         or sizes overflow); ::SGD_ENOMEM. On failure nothing the host owns
 *         is changed (the optimizer's hygiene and the model's buffers are put
 *         back as they were).
 * @since 0.1
 */
SGD_API sgd_status sgd_trainer_new(sgd_trainer **out, sgd_model *model, sgd_optim *optim, sgd_sched *sched,
                                   sgd_monitor *monitor, const sgd_dataset *train, const sgd_dataset *val,
                                   const sgd_trainer_options *opts, const sgd_allocator *alloc);

/**
 * @brief Frees a trainer (its views, loader, snapshots and own monitor) and
 *        removes its callback from the host's monitor. The borrowed objects are
 *        not freed.
 * @param t The trainer; NULL does nothing.
 * @since 0.1
 */
SGD_API void sgd_trainer_free(sgd_trainer *t);

/* ------------------------------------------------------------------ callbacks */

/**
 * @brief Where in the run a progress report is made.
 * @since 0.1
 */
typedef enum sgd_trainer_phase {
    SGD_TRAINER_PHASE_STEP = 0,      /**< After a training step. */
    SGD_TRAINER_PHASE_EPOCH_END = 1, /**< After an epoch and its validation. */
    SGD_TRAINER_PHASE_DONE = 2       /**< sgd_trainer_fit() is about to return (whatever the reason). */
} sgd_trainer_phase;

/**
 * @brief A progress report, as the progress callback receives it.
 *
 * Owned by the library and valid only during the callback. Fields are only
 * ever appended; @c struct_size tells how many the library filled.
 * @since 0.1
 */
typedef struct sgd_trainer_progress {
    /** sizeof(sgd_trainer_progress) as the library knows it. */
    uint32_t struct_size;
    /** An ::sgd_trainer_phase. */
    int32_t phase;
    /** Schedule steps taken so far (the step just taken is step - 1). */
    int64_t step;
    /** The current epoch, from 0 (at ::SGD_TRAINER_PHASE_EPOCH_END: the epoch just finished). */
    int64_t epoch;
    /** Epochs planned. */
    int64_t epochs;
    /** Batches taken in the current epoch. */
    int64_t batch;
    /** Batches per epoch. */
    int64_t batches;
    /** Loss of the last training batch (NaN if none yet). */
    double loss;
    /** The monitor's smoothed loss (NaN before any finite observation). */
    double smoothed_loss;
    /** Learning rate of the last step, guard scale included. */
    double lr;
    /** Training samples per second since the previous report. */
    double samples_per_sec;
    /** Seconds since sgd_trainer_fit() was called. */
    double elapsed;
    /** Estimated seconds until the planned epochs end, or -1 when unknown. */
    double eta;
    /** Fraction of the planned run done, 0 to 1 (for a progress bar). */
    double fraction;
    /** Mean training loss of the epoch (::SGD_TRAINER_PHASE_EPOCH_END; else of the epoch so far). */
    double train_loss;
    /** Validation loss of the epoch just finished (::SGD_TRAINER_PHASE_EPOCH_END with a validation set), else NaN. */
    double val_loss;
    /** Validation accuracy in [0, 1], as sgd_model_evaluate() measures it, else NaN. */
    double val_accuracy;
    /** Rescues so far. */
    int64_t rescues;
    /** The guard's scale of the learning rate (1 until a rescue). */
    double guard_scale;
    /**
     * With cross-entropy: @c train_loss in bits per position (bits per
     * character for a character model), train_loss / ln 2; else NaN. @since 0.2
     */
    double train_bpc;
    /** With cross-entropy: @c val_loss in bits per position; else NaN. @since 0.2 */
    double val_bpc;
    /** With cross-entropy: the perplexity of @c train_loss, exp(train_loss); else NaN. @since 0.2 */
    double train_perplexity;
    /** With cross-entropy: the perplexity of @c val_loss; else NaN. @since 0.2 */
    double val_perplexity;
} sgd_trainer_progress;

/**
 * @brief A progress callback.
 * @param p    The report; valid only during the call.
 * @param user The pointer given to sgd_trainer_set_progress().
 * @return 0 to carry on; any other value stops the run (sgd_trainer_fit()
 *         returns ::SGD_ECANCELED). The return value at
 *         ::SGD_TRAINER_PHASE_DONE is ignored.
 * @since 0.1
 */
typedef int32_t (*sgd_trainer_progress_fn)(const sgd_trainer_progress *p, void *user);

/**
 * @brief Sets the progress callback (called every
 *        sgd_trainer_options::progress_interval steps, at every epoch end and
 *        when a run ends).
 * @param t    The trainer.
 * @param fn   The callback, or NULL to remove it.
 * @param user Passed unchanged to @p fn.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL trainer; ::SGD_ESTATE from a callback.
 * @since 0.1
 */
SGD_API sgd_status sgd_trainer_set_progress(sgd_trainer *t, sgd_trainer_progress_fn fn, void *user);

/**
 * @brief Kinds of trainer events; the values are frozen.
 * @since 0.1
 */
typedef enum sgd_trainer_event_kind {
    /** The monitor raised an event; @c action is what the trainer proposes, and the callback's answer replaces it. */
    SGD_TRAINER_EVENT_MONITOR = 0,
    /** The guard rescued the run: a rollback or a learning-rate cut (notification). */
    SGD_TRAINER_EVENT_RESCUE = 1,
    /** A rescue was needed after guard_max_rescues of them: the run stops with ::SGD_EDIVERGED (notification). */
    SGD_TRAINER_EVENT_GAVE_UP = 2,
    /** The monitor's verdict became diverged and stop_on_divergence stops the run with ::SGD_EDIVERGED (notification). */
    SGD_TRAINER_EVENT_DIVERGED = 3,
    /** Early stopping ends the run (notification). */
    SGD_TRAINER_EVENT_EARLY_STOP = 4,
    /** A stop action ends the run with ::SGD_ECANCELED (notification). */
    SGD_TRAINER_EVENT_STOPPED = 5
} sgd_trainer_event_kind;

/**
 * @brief A trainer event, as the event callback receives it.
 *
 * Owned by the library and valid only during the callback. Fields are only
 * ever appended.
 * @since 0.1
 */
typedef struct sgd_trainer_event {
    /** sizeof(sgd_trainer_event) as the library knows it. */
    uint32_t struct_size;
    /** An ::sgd_trainer_event_kind. */
    int32_t kind;
    /** Schedule step of the batch concerned. */
    int64_t step;
    /** Epoch of that batch. */
    int64_t epoch;
    /** For ::SGD_TRAINER_EVENT_MONITOR: the monitor's event; else NULL. */
    const sgd_monitor_event *monitor;
    /** For ::SGD_TRAINER_EVENT_MONITOR the proposed ::sgd_monitor_action; for ::SGD_TRAINER_EVENT_RESCUE the action taken; else 0. */
    int32_t action;
    /** Reserved; 0. */
    int32_t reserved;
    /** The factor that goes with @c action (1 when none). */
    double lr_scale;
    /** The learning rate of the step (guard scale included, before this event's scaling). */
    double lr;
    /** The guard scale after the event. */
    double guard_scale;
    /** Rescues so far, this one included. */
    int64_t rescues;
    /** For a rollback: the schedule step the snapshot was taken at; else -1. */
    int64_t restored_step;
    /** What happened, in words, e.g. "step 312: divergence: rolled back to step 250, lr x0.5 (now 0.25)". Never NULL. */
    const char *message;
} sgd_trainer_event;

/**
 * @brief An event callback: sees every trainer event and, for monitor events,
 *        decides the action.
 * @param ev       The event; valid only during the call.
 * @param lr_scale In: the factor proposed with the action. Out: the factor of
 *                 the action returned (finite, > 0; used by scale_lr and rollback).
 * @param user     The pointer given to sgd_trainer_set_event_callback().
 * @return For ::SGD_TRAINER_EVENT_MONITOR an ::sgd_monitor_action (return
 *         ev->action to accept the proposal); an unknown value stops the run
 *         with ::SGD_ECALLBACK. Ignored for the other kinds.
 * @since 0.1
 */
typedef int32_t (*sgd_trainer_event_fn)(const sgd_trainer_event *ev, double *lr_scale, void *user);

/**
 * @brief Sets the event callback.
 * @param t    The trainer.
 * @param fn   The callback, or NULL to remove it (the default policy then decides).
 * @param user Passed unchanged to @p fn.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL trainer; ::SGD_ESTATE from a callback.
 * @since 0.1
 */
SGD_API sgd_status sgd_trainer_set_event_callback(sgd_trainer *t, sgd_trainer_event_fn fn, void *user);

/* ------------------------------------------------------------------ running */

/**
 * @brief Why the last sgd_trainer_fit() returned; the values are frozen.
 * @since 0.1
 */
typedef enum sgd_trainer_stop {
    SGD_TRAINER_NOT_RUN = 0,    /**< sgd_trainer_fit() has not returned yet. */
    SGD_TRAINER_COMPLETED = 1,  /**< The planned epochs are done. ::SGD_OK. */
    SGD_TRAINER_BUDGET = 2,     /**< The call's step budget is used up (call again to go on). ::SGD_OK. */
    SGD_TRAINER_EARLY_STOP = 3, /**< Early stopping. ::SGD_OK. */
    SGD_TRAINER_CANCELED = 4,   /**< A stop action or the progress callback. ::SGD_ECANCELED. */
    SGD_TRAINER_DIVERGED = 5,   /**< Diverged: verdict diverged, the guard gave up, or the optimizer refused. ::SGD_EDIVERGED. */
    SGD_TRAINER_FAILED = 6      /**< Another error (a callback, a schedule, an import): the returned status. */
} sgd_trainer_stop;

/**
 * @brief Trains until the planned epochs are done, or for at most @p max_steps
 *        more batches, whichever comes first.
 *
 * Continues from where the trainer is (a previous call, or an imported
 * state): calling it twice with budgets k and n - k takes exactly the steps
 * one call with n would. The budget counts every batch this call takes,
 * those replayed after a rollback and those skipped included. Allocates
 * nothing.
 *
 * @param t         The trainer.
 * @param max_steps Most batches to take in this call; 0 for no limit.
 * @return ::SGD_OK (completed, budget used up, or early stopping; see
 *         sgd_trainer_stop_reason()); ::SGD_ECANCELED (stop action or progress
 *         callback); ::SGD_EDIVERGED (with a message saying at which step and
 *         what to do); ::SGD_EINVAL (NULL trainer, negative @p max_steps);
 *         ::SGD_ESTATE (called from a callback, or a host callback asked for a
 *         rollback with the guard off); ::SGD_ECALLBACK (a callback answered
 *         an unknown action); or the status of a failing model, optimizer or
 *         schedule call (e.g. ::SGD_ENONFINITE for the optimizer's "error"
 *         policy without the guard).
 * @since 0.1
 */
SGD_API sgd_status sgd_trainer_fit(sgd_trainer *t, int64_t max_steps);

/**
 * @brief Why the last sgd_trainer_fit() returned.
 * @param t The trainer.
 * @return An ::sgd_trainer_stop; ::SGD_TRAINER_NOT_RUN if @p t is NULL.
 * @since 0.1
 */
SGD_API int32_t sgd_trainer_stop_reason(const sgd_trainer *t);

/**
 * @brief Name of a stop reason: "not_run", "completed", "budget",
 *        "early_stop", "canceled", "diverged", "failed".
 * @param reason An ::sgd_trainer_stop.
 * @return A static string; "unknown" for other values; never NULL.
 * @since 0.1
 */
SGD_API const char *sgd_trainer_stop_name(int32_t reason);

/**
 * @brief Name of an event kind: "monitor", "rescue", "gave_up", "diverged",
 *        "early_stop", "stopped".
 * @param kind An ::sgd_trainer_event_kind.
 * @return A static string; "unknown" for other values; never NULL.
 * @since 0.1
 */
SGD_API const char *sgd_trainer_event_name(int32_t kind);

/**
 * @brief Counters of a trainer.
 *
 * Initialise it with sgd_trainer_stats_init() (or set @c struct_size to its
 * sizeof) before calling sgd_trainer_get_stats(); the library fills what both
 * sides know and leaves @c struct_size as it is (see @ref versioned_structs).
 * @since 0.1
 */
typedef struct sgd_trainer_stats {
    /** Size of this struct as the caller knows it. */
    uint32_t struct_size;
    /** The last ::sgd_trainer_stop. */
    int32_t stop_reason;
    /** Schedule steps taken (the step of the next batch). */
    int64_t step;
    /** The current epoch (the number of epochs finished). */
    int64_t epoch;
    /** Batches taken in the current epoch. */
    int64_t batch;
    /** Batches taken in all, replays after rollbacks included (not rolled back). */
    int64_t batches_run;
    /** Updates applied. */
    int64_t updates;
    /** Batches whose update was not applied (skip actions, skipped windows, non-finite gradients). */
    int64_t skipped;
    /** Rescues (rollbacks and learning-rate cuts). */
    int64_t rescues;
    /** Rollbacks among them. */
    int64_t rollbacks;
    /** Monitor events seen, per ::sgd_monitor_kind (rolled-back ones included). */
    int64_t events[8];
    /** The guard's scale of the learning rate. */
    double guard_scale;
    /** Learning rate of the last step. */
    double lr;
    /** Loss of the last training batch, or NaN. */
    double last_loss;
    /** Mean training loss over the last (up to) 50 batches, or NaN. */
    double recent_loss;
    /** Best validation loss so far, or NaN. */
    double best_val_loss;
    /** Epochs in a row without improvement of the validation loss. */
    int64_t epochs_without_improvement;
} sgd_trainer_stats;

/**
 * @brief Zeroes @p s and sets its @c struct_size, ready for sgd_trainer_get_stats().
 *
 * Inline, so that the size it writes is that of the headers the program is
 * built with (see @ref versioned_structs).
 * @param s The struct to initialise; NULL is ignored.
 * @since 0.2
 */
static inline void sgd_trainer_stats_init(sgd_trainer_stats *s)
{
    SGD_OUTPUT_INIT(s);
}

/**
 * @brief Reads a trainer's counters.
 * @param t     The trainer.
 * @param stats Receives them as far as its @c struct_size goes (set by sgd_trainer_stats_init()).
 * @return ::SGD_OK; ::SGD_EINVAL (NULL, or a struct_size smaller than the struct's first release).
 * @since 0.1
 */
SGD_API sgd_status sgd_trainer_get_stats(const sgd_trainer *t, sgd_trainer_stats *stats);

/**
 * @brief The record of one epoch.
 *
 * Initialise it with sgd_trainer_epoch_init() (or set @c struct_size to its
 * sizeof); sgd_trainer_get_epoch() fills what both sides know and leaves
 * @c struct_size as it is (see @ref versioned_structs).
 * @since 0.1
 */
typedef struct sgd_trainer_epoch {
    /** Size of this struct as the caller knows it; set it before sgd_trainer_get_epoch(). */
    uint32_t struct_size;
    /** 1 if the epoch has finished (the other fields are valid), 0 otherwise. */
    int32_t done;
    /** Mean training loss over the epoch's batches with a finite loss (NaN if none). */
    double train_loss;
    /** Validation loss after the epoch, or NaN without a validation set. */
    double val_loss;
    /** Validation accuracy after the epoch, or NaN. */
    double val_accuracy;
    /** Learning rate of the epoch's last step. */
    double lr;
    /** Schedule step at the end of the epoch. */
    int64_t step;
    /** Rescues so far at the end of the epoch. */
    int64_t rescues;
    /** Seconds the epoch took, validation included (0 for an epoch restored from a state). */
    double seconds;
    /** With cross-entropy: @c train_loss in bits per position (bits per character), train_loss / ln 2; else NaN. @since 0.2 */
    double train_bpc;
    /** With cross-entropy: @c val_loss in bits per position; else NaN. @since 0.2 */
    double val_bpc;
    /** With cross-entropy: the perplexity exp(train_loss); else NaN. @since 0.2 */
    double train_perplexity;
    /** With cross-entropy: the perplexity exp(val_loss); else NaN. @since 0.2 */
    double val_perplexity;
} sgd_trainer_epoch;

/**
 * @brief Zeroes @p s and sets its @c struct_size, ready for sgd_trainer_get_epoch().
 *
 * Inline, so that the size it writes is that of the headers the program is
 * built with (see @ref versioned_structs).
 * @param s The struct to initialise; NULL is ignored.
 * @since 0.2
 */
static inline void sgd_trainer_epoch_init(sgd_trainer_epoch *s)
{
    SGD_OUTPUT_INIT(s);
}

/**
 * @brief Reads the record of epoch @p epoch.
 * @param t     The trainer.
 * @param epoch 0 to sgd_trainer_options::epochs - 1.
 * @param out   Receives the record as far as its @c struct_size goes (set by sgd_trainer_epoch_init()).
 * @return ::SGD_OK; ::SGD_EINVAL (NULL, an epoch out of range, a struct_size smaller than the
 *         struct's first release).
 * @since 0.1
 */
SGD_API sgd_status sgd_trainer_get_epoch(const sgd_trainer *t, int64_t epoch, sgd_trainer_epoch *out);

/**
 * @brief The learning rate the next step would use (schedule times guard scale).
 * @param t  The trainer.
 * @param lr Receives it.
 * @return ::SGD_OK; ::SGD_EINVAL; the schedule's status.
 * @since 0.1
 */
SGD_API sgd_status sgd_trainer_next_lr(const sgd_trainer *t, double *lr);

/* ------------------------------------------------------------------ composed objects */

/**
 * @brief The model the trainer trains.
 * @param t The trainer.
 * @return The borrowed model; NULL if @p t is NULL.
 * @since 0.1
 */
SGD_API sgd_model *sgd_trainer_model(const sgd_trainer *t);

/**
 * @brief The optimizer.
 * @param t The trainer.
 * @return The borrowed optimizer; NULL if @p t is NULL.
 * @since 0.1
 */
SGD_API sgd_optim *sgd_trainer_optim(const sgd_trainer *t);

/**
 * @brief The schedule.
 * @param t The trainer.
 * @return The borrowed schedule, or NULL if there is none or @p t is NULL.
 * @since 0.1
 */
SGD_API sgd_sched *sgd_trainer_sched(const sgd_trainer *t);

/**
 * @brief The monitor: the host's, or the one the trainer made.
 * @param t The trainer.
 * @return The monitor, valid while the trainer lives; NULL if @p t is NULL.
 * @since 0.1
 */
SGD_API sgd_monitor *sgd_trainer_monitor(const sgd_trainer *t);

/* ------------------------------------------------------------------ data parallelism */

/**
 * @brief Sums arrays elementwise over every process of a data-parallel run,
 *        in place (an allreduce with a sum).
 *
 * Every process of the run calls it at the same points of training, with the
 * same @p nf and @p nd; on return @p f and @p d hold the sums over all
 * processes, and the sums must be bit-identical on every process (the same
 * updates then keep the parameters identical). Either array may be empty
 * (NULL with a count of 0). The trainer calls it on the thread that runs
 * sgd_trainer_fit(), and never from a callback.
 *
 * @param f    nf floats (the gradient arena, the model's float buffers, or nothing).
 * @param nf   Their number.
 * @param d    nd doubles (losses, counts, flags, decisions).
 * @param nd   Their number.
 * @param user sgd_trainer_comm::user.
 * @return ::SGD_OK, or an error status, with a message (sgd_error_last()):
 *         the trainer stops with it. An implementation should fail on every
 *         process together (or end the job): a process that returns while
 *         the others wait leaves them waiting.
 * @since 0.2
 */
typedef sgd_status (*sgd_trainer_allreduce_fn)(float *f, size_t nf, double *d, size_t nd, void *user);

/**
 * @brief How a trainer takes part in data-parallel training: its process's
 *        place and the collective operation it uses. Initialise with
 *        sgd_trainer_comm_init(); set with sgd_trainer_set_comm().
 *
 * The library's optional MPI part (sgdlab/dist.h, libsgdlab-mpi) fills one
 * over an MPI communicator; any other transport (threads of one program,
 * another message-passing library) can fill one too: the trainer knows only
 * this struct.
 * @since 0.2
 */
typedef struct sgd_trainer_comm {
    /** Size of this struct as the caller knows it; set by sgd_trainer_comm_init(). */
    uint32_t struct_size;
    /** This process's rank, 0 to size - 1 (default 0). Process 0's decisions are everyone's (see sgd_trainer_set_comm()). */
    int32_t rank;
    /** Number of processes, 1 (default: training alone) to ::SGD_LOADER_MAX_SHARDS. */
    int32_t size;
    /** Reserved; keep 0. */
    int32_t reserved;
    /** The sum over processes; required when size > 1. */
    sgd_trainer_allreduce_fn allreduce;
    /** Passed unchanged as the last argument of @c allreduce. */
    void *user;
} sgd_trainer_comm;

/**
 * @brief Sets @p c to one process alone (rank 0 of 1, no operation).
 * @param c The struct to initialise; NULL does nothing.
 * @since 0.2
 */
SGD_API void sgd_trainer_comm_init(sgd_trainer_comm *c);

/**
 * @brief Makes the trainer one of sgd_trainer_comm::size processes that
 *        train the same model data-parallel, with the semantics of torch's
 *        `DistributedDataParallel`; NULL (or a size of 1) makes it train
 *        alone again.
 *
 * Every process builds the same trainer (same model spec, optimizer,
 * schedule, monitor options, datasets and trainer options) and calls
 * sgd_trainer_fit() with the same budget. Then, at every step:
 *
 * - the batch is the global batch of sgd_trainer_options::batch_size rows,
 *   in the order one process alone would take them; process r computes the
 *   loss and the gradients of its share only (rows r, r + size, ... of the
 *   batch, as a loader with sgd_loader_options::shard_index = r takes them);
 * - the gradients are averaged by one sum over the gradient arena, each
 *   share weighted by its rows (rows/batch), together with the loss: every
 *   process then holds the gradient and the mean loss of the whole batch,
 *   what one process would have computed for it, within float rounding;
 * - from there everything is computed from the same numbers on every
 *   process: the gradient norm, the monitor's observation and events, the
 *   guard's snapshots, rollbacks, skips and learning-rate cuts, the
 *   non-finite policy and clipping of the optimizer, the update itself. The
 *   decision of each step (the action taken on the monitor's events) is
 *   process 0's, shared with the others in a second, small sum, so that host
 *   callbacks that answer differently on different processes (or exist only
 *   on process 0) cannot split the run;
 * - the model's buffers (batchnorm's running statistics, computed by each
 *   process from its share) become process 0's after every step, as torch's
 *   `broadcast_buffers`, in a third sum that only models with buffers make;
 * - dropout draws its masks from process 0's generator, process r > 0 from
 *   a stream derived from it and r; after the step every process takes
 *   process 0's generator state, so the generator, like all the training
 *   state, is the same everywhere and a checkpoint of process 0 restores
 *   every process exactly;
 * - the validation set is split in contiguous shares, each process
 *   evaluates its share and the loss and accuracy are summed, so every
 *   process sees the same validation metric (early stopping, plateau
 *   reduction agree);
 * - every progress_interval steps and at every epoch end, a progress
 *   callback on any process that asks to stop stops all of them;
 * - a step that fails on one process (the model's forward or backward pass,
 *   a monitor or event callback) makes every process stop at that step:
 *   that process returns its error, the others ::SGD_ECANCELED naming the
 *   step.
 *
 * So the training state (parameters, optimizer, schedule, monitor and
 * trainer state) does not depend on the number of processes (batch
 * normalisation excepted: its batch statistics are a share's, as without
 * SyncBatchNorm in torch): a checkpoint
 * written by one process of a run resumes on any number of them (within
 * float rounding of one another; bit for bit for the same number of
 * processes when the sum is computed in a fixed order). Each call of
 * sgd_trainer_fit() first checks that every process is at the same step with
 * the same budget (::SGD_ESTATE otherwise, on every process).
 *
 * Callbacks (progress, events) are called on every process with the same
 * values; a host prints from process 0 only. A host optimizer or schedule
 * must compute the same on every process.
 *
 * Allocates a sharded loader, a view of the validation share and, for a
 * model with buffers, their staging arrays (nothing during training: the
 * sums work in place, on the stack or in those arrays).
 *
 * @param t The trainer (not running: not from a callback).
 * @param c The communicator (copied), or NULL to train alone.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL trainer, a size or rank out of range,
 *         no allreduce for a size above 1, a struct not initialised);
 *         ::SGD_ESTATE (called from a callback); ::SGD_ENOMEM (the trainer
 *         is then unchanged).
 * @since 0.2
 */
SGD_API sgd_status sgd_trainer_set_comm(sgd_trainer *t, const sgd_trainer_comm *c);

/* ------------------------------------------------------------------ state */

/**
 * @brief Current version of the layout sgd_trainer_state_export() writes.
 * @since 0.1
 */
#define SGD_TRAINER_STATE_VERSION 1

/**
 * @brief Size in bytes of the trainer's state.
 *
 * Fixed for a trainer's life: it depends on the number of parameters, the
 * optimizer's and the schedule's state sizes, the monitor's, the number of
 * epochs, and whether the guard is on (with it, the two snapshots are part
 * of the state: a rollback after a resume must return where the original run
 * would have).
 * @param t The trainer.
 * @return The size; 0 if @p t is NULL.
 * @since 0.1
 */
SGD_API size_t sgd_trainer_state_size(const sgd_trainer *t);

/**
 * @brief Writes the trainer's state, for a checkpoint.
 *
 * The layout (docs/trainer.md) is little-endian and versioned: a header with
 * a tag, ::SGD_TRAINER_STATE_VERSION and the sizes it was made for, then the
 * counters (schedule step, epoch, batch within the epoch, the model's dropout
 * generator, epoch sums, best validation loss, early-stop counter), the
 * guard's scale, rescue count and snapshot bookkeeping, the per-epoch
 * history, and with the guard each snapshot (its counters, the parameters,
 * every optimizer state array, the schedule's and the monitor's state).
 * The model's parameters, the optimizer, the schedule and the monitor
 * themselves are not in it: save them with their own state functions.
 * Allocates nothing.
 *
 * @param t     The trainer.
 * @param buf   Receives the state.
 * @param bytes Must equal sgd_trainer_state_size().
 * @return ::SGD_OK; ::SGD_EINVAL (NULL); ::SGD_ESHAPE (wrong @p bytes);
 *         ::SGD_ESTATE (called from a callback); the model's status.
 * @since 0.1
 */
SGD_API sgd_status sgd_trainer_state_export(const sgd_trainer *t, void *buf, size_t bytes);

/**
 * @brief Restores a state written by sgd_trainer_state_export() of a trainer
 *        built the same way (same model, optimizer, schedule, monitor options,
 *        datasets and trainer options).
 *
 * Import the model's parameters, the optimizer's, the schedule's and the
 * monitor's states first (they come from their own sections of a
 * checkpoint), then this: the trainer then continues exactly as the one that
 * exported it. Everything is validated first (tag, version, sizes against
 * this trainer, every counter's range, and each snapshot by importing it
 * into the composed objects and back), and on any failure the trainer and
 * the composed objects are left as they were. Validating the snapshots
 * allocates one temporary buffer of a snapshot's size.
 *
 * @param t     The trainer.
 * @param buf   The state.
 * @param bytes Its size.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL); ::SGD_ESHAPE (a size that does not
 *         match this trainer); ::SGD_EVERSION; ::SGD_EFORMAT (a corrupt
 *         state, naming the field); ::SGD_ESTATE (called from a callback);
 *         ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_trainer_state_import(sgd_trainer *t, const void *buf, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* SGDLAB_TRAINER_H */
