/*
 * libsgdlab - train small neural networks and get the learning rate right.
 * SPDX-License-Identifier: MIT
 */
/**
 * @file tune.h
 * @brief Choosing a learning rate: the LR range test (finder), grid search
 *        and random search.
 *
 * **The range test** (sgd_lrfind_run()) trains the real model on the real
 * data for a few steps while the learning rate grows exponentially (or
 * linearly) from lr_min to lr_max, records the loss of every step with a
 * debiased exponential moving average (beta 0.98), stops when that average
 * exceeds 4 times its best or the loss is no longer finite, and puts the
 * model and the optimizer back exactly as they were. From the curve it
 * suggests learning rates three ways (::sgd_lrfind_method): the steepest
 * descent of the loss against log lr, the minimum divided by 10, and fastai's
 * valley. The suggestions are computed on a centered local-linear smoothing of
 * the raw losses (no lag, unlike the moving average that fastai and Lightning
 * differentiate), away from the first points and from everything past the
 * minimum and the first non-finite loss; a curve too short or without a
 * descent gets no suggestion and a message saying why. docs/tune.md compares
 * this with fastai's and Lightning's finders and their known issues.
 *
 * **Search** (sgd_search_run(), sgd_search_run_objective()) trains one trial
 * per point of a grid, or per draw of a seeded random search (log-uniform
 * learning rates), over the learning rate and optionally the optimizer, its
 * momentum (or Adam's beta1) and the batch size, each with a budget of steps;
 * trials whose monitor declares them diverged stop early. The result is a
 * table (::sgd_search_trial): learning rate, final loss, validation accuracy,
 * the monitor's verdict, steps run and time, and the best trial. Trials run
 * with the built-in trainer or with a host objective callback, on one thread
 * or several; the results do not depend on the number of threads.
 *
 * Thread rules: the objects given to these functions are used by one thread
 * at a time, and not by anyone else while they run. With
 * sgd_search_options::threads > 1 the allocator is called from several
 * threads at once and must allow it (malloc does); host callbacks are never
 * called concurrently.
 */
#ifndef SGDLAB_TUNE_H
#define SGDLAB_TUNE_H

#include "sgdlab/core.h"
#include "sgdlab/data.h"
#include "sgdlab/model.h"
#include "sgdlab/monitor.h"
#include "sgdlab/optim.h"
#include "sgdlab/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================== range test */

/**
 * @brief The result of a range test (opaque): the curve and the suggestions.
 * @since 0.1
 */
typedef struct sgd_lrfind sgd_lrfind;

/**
 * @brief How the learning rate grows during the range test.
 * @since 0.1
 */
typedef enum sgd_lrfind_ramp {
    /** lr_i = lr_min * (lr_max / lr_min)^(i / (steps - 1)): equal steps in log lr (default). */
    SGD_LRFIND_EXPONENTIAL = 0,
    /** lr_i = lr_min + (lr_max - lr_min) * i / (steps - 1). */
    SGD_LRFIND_LINEAR = 1
} sgd_lrfind_ramp;

/**
 * @brief How a learning rate is suggested from the curve.
 * @since 0.1
 */
typedef enum sgd_lrfind_method {
    /**
     * Where the loss falls fastest against log lr: the most negative slope of
     * a local linear fit over a window of points around each point, before
     * the minimum. The default (docs/tune.md says why).
     */
    SGD_LRFIND_STEEPEST = 0,
    /** The learning rate of the lowest smoothed loss, divided by 10 (fastai's "minimum"). */
    SGD_LRFIND_MINIMUM = 1,
    /**
     * fastai's "valley": the longest strictly decreasing run of the smoothed
     * loss (not necessarily contiguous), and the point halfway along it.
     */
    SGD_LRFIND_VALLEY = 2
} sgd_lrfind_method;

/** @brief Number of ::sgd_lrfind_method values. @since 0.1 */
#define SGD_LRFIND_METHOD_COUNT 3

/**
 * @brief Why a range test ended.
 * @since 0.1
 */
typedef enum sgd_lrfind_end {
    SGD_LRFIND_COMPLETED = 0, /**< All the steps were taken. */
    SGD_LRFIND_DIVERGED = 1,  /**< The smoothed loss exceeded stop_factor times its best. */
    SGD_LRFIND_NONFINITE = 2  /**< A loss or gradient was NaN or infinite. */
} sgd_lrfind_end;

/**
 * @brief A progress callback of the range test.
 * @param step  Steps taken so far (1 to steps).
 * @param steps Steps planned.
 * @param lr    The learning rate of the step just taken.
 * @param loss  Its loss.
 * @param user  sgd_lrfind_options::progress_user.
 * @return 0 to carry on; anything else cancels the test (sgd_lrfind_run()
 *         restores the model and returns ::SGD_ECANCELED).
 * @since 0.1
 */
typedef int32_t (*sgd_lrfind_progress_fn)(int64_t step, int64_t steps, double lr, double loss, void *user);

/**
 * @brief Options of the range test. Initialise with sgd_lrfind_options_init().
 *
 * Fields are only ever appended.
 * @since 0.1
 */
typedef struct sgd_lrfind_options {
    /** Size of this struct as the caller knows it; set by sgd_lrfind_options_init(). */
    uint32_t struct_size;
    /** An ::sgd_lrfind_ramp (default ::SGD_LRFIND_EXPONENTIAL). */
    int32_t ramp;
    /** First learning rate, > 0 and finite (default 1e-7). */
    double lr_min;
    /** Last learning rate, > lr_min and finite (default 10). */
    double lr_max;
    /** Steps, 8 to 2^24 (default 100). */
    int64_t steps;
    /** Rows per batch, 1 to 2^20 (default 128). */
    int64_t batch_size;
    /** Seed of the batch order (default 0). */
    uint64_t seed;
    /** Smoothing of the recorded loss, in [0, 1) (default 0.98, fastai's and Lightning's). */
    double beta;
    /** Stop once the smoothed loss exceeds this multiple of its best, > 1; 0 never stops early (default 4). */
    double stop_factor;
    /** Nonzero (default 1): shuffle the rows. */
    int32_t shuffle;
    /** Reserved; keep 0. */
    int32_t reserved;
    /** Optional progress callback. */
    sgd_lrfind_progress_fn progress;
    /** Passed to @c progress. */
    void *progress_user;
} sgd_lrfind_options;

/**
 * @brief Sets @p o to the defaults: exponential ramp from 1e-7 to 10 over 100
 *        steps of 128 rows, seed 0, beta 0.98, stop at 4 times the best, shuffled.
 * @param o The options to initialise; NULL does nothing.
 * @since 0.1
 */
SGD_API void sgd_lrfind_options_init(sgd_lrfind_options *o);

/**
 * @brief Runs the range test on @p model with @p optim over @p train.
 *
 * The optimizer takes every step (so its kind, momentum, betas, weight decay
 * and clipping are those tested); the learning rate of each step is the
 * ramp's, whatever the optimizer's "lr". Afterwards the parameters, the
 * optimizer's state, the model's dropout generator and its gradients (zero)
 * are put back as they were, bit for bit, whether the test ended normally,
 * diverged, was canceled or failed. The model's buffers are enlarged to the
 * batch size if needed. Allocates the curve, a copy of the parameters and
 * of the optimizer's state, and a loader.
 *
 * @param out   Receives the result; set to NULL on failure.
 * @param model A built model.
 * @param optim Its optimizer (same number of parameters).
 * @param train The data: rows that fit the model (see sgd_trainer_new()).
 * @param opts  Options, or NULL for the defaults.
 * @param alloc Allocator; NULL for malloc/free.
 * @return ::SGD_OK (also when the loss diverged: that is how the test ends);
 *         ::SGD_EINVAL (NULL argument, unbuilt model, options out of range or
 *         not initialised); ::SGD_ESHAPE (the data or the optimizer do not fit
 *         the model); ::SGD_ECANCELED (the progress callback); ::SGD_ENOMEM;
 *         or the status of a failing model or optimizer call.
 * @since 0.1
 */
SGD_API sgd_status sgd_lrfind_run(sgd_lrfind **out, sgd_model *model, sgd_optim *optim, const sgd_dataset *train,
                                  const sgd_lrfind_options *opts, const sgd_allocator *alloc);

/**
 * @brief Analyses a range test measured elsewhere (another framework's, a
 *        log): the same curve, stop rule and suggestions as sgd_lrfind_run().
 *
 * The points are recorded in order exactly as sgd_lrfind_run() records its
 * steps: the debiased moving average (sgd_lrfind_options::beta), the stop rule
 * (sgd_lrfind_options::stop_factor: the points after the one where the
 * average passes stop_factor times its best are not recorded) and the first
 * non-finite loss (recorded, not used) end the curve; then the suggestions
 * are computed. sgd_lrfind_options::steps is the number of steps the test
 * planned, if at least @p n (fastai's valley leaves out their first tenth);
 * else @p n is taken. The other options (ramp, lr_min, lr_max, batch_size,
 * seed, shuffle, progress) are not used. The result is queried and freed like
 * that of sgd_lrfind_run(). Allocates the curve (five arrays of @p n doubles)
 * and the analysis's scratch.
 *
 * @param out   Receives the result; set to NULL on failure.
 * @param lr    The learning rates, finite, > 0 and increasing; not copied.
 * @param loss  The loss at each; any double (a NaN or infinity ends the curve).
 * @param n     Number of points, 1 to 2^24.
 * @param opts  Options, or NULL for the defaults.
 * @param alloc Allocator; NULL for malloc/free.
 * @return ::SGD_OK (also when the curve allows no suggestion: ask
 *         sgd_lrfind_suggestion() why); ::SGD_EINVAL (NULL, a count out of
 *         range, a learning rate not positive or not increasing, options not
 *         initialised); ::SGD_ERANGE (beta or stop_factor); ::SGD_ENOMEM.
 * @since 0.2
 */
SGD_API sgd_status sgd_lrfind_analyze(sgd_lrfind **out, const double *lr, const double *loss, size_t n,
                                      const sgd_lrfind_options *opts, const sgd_allocator *alloc);

/**
 * @brief Frees a range-test result.
 * @param r The result; NULL does nothing.
 * @since 0.1
 */
SGD_API void sgd_lrfind_free(sgd_lrfind *r);

/**
 * @brief Number of steps recorded (the last may hold a non-finite loss).
 * @param r The result.
 * @return The count; 0 if @p r is NULL.
 * @since 0.1
 */
SGD_API size_t sgd_lrfind_count(const sgd_lrfind *r);

/**
 * @brief Why the test ended.
 * @param r The result.
 * @return An ::sgd_lrfind_end; -1 if @p r is NULL.
 * @since 0.1
 */
SGD_API int32_t sgd_lrfind_end_reason(const sgd_lrfind *r);

/**
 * @brief One point of the curve.
 *
 * Initialise it with sgd_lrfind_sample_init() (or set @c struct_size to its
 * sizeof) before sgd_lrfind_point(); the library fills what both sides know and
 * leaves @c struct_size as it is (see @ref versioned_structs).
 * @since 0.1
 */
typedef struct sgd_lrfind_sample {
    /** sizeof(sgd_lrfind_sample) as the caller knows it. */
    uint32_t struct_size;
    /** 1 if the point is in the part of the curve the suggestions use, else 0. */
    int32_t used;
    /** The learning rate of the step. */
    double lr;
    /** Its loss (the minibatch's, before the update). */
    double loss;
    /** The debiased exponential moving average of the losses up to this step (what the stop rule uses). */
    double smoothed;
    /** The centered local-linear smoothing of the losses at this point (what the suggestions use), or NaN outside the used part. */
    double fit;
    /** The slope of that local fit, d loss / d log10 lr, or NaN where it is not measured. */
    double slope;
} sgd_lrfind_sample;

/**
 * @brief Zeroes @p s and sets its @c struct_size, ready for sgd_lrfind_point().
 *
 * Inline, so that the size it writes is that of the headers the program is
 * built with (see @ref versioned_structs).
 * @param s The struct to initialise; NULL is ignored.
 * @since 0.2
 */
static inline void sgd_lrfind_sample_init(sgd_lrfind_sample *s)
{
    SGD_OUTPUT_INIT(s);
}

/**
 * @brief Reads point @p i of the curve.
 * @param r   The result.
 * @param i   0 to sgd_lrfind_count() - 1.
 * @param out Receives the point as far as its @c struct_size goes (set by sgd_lrfind_sample_init()).
 * @return ::SGD_OK; ::SGD_EINVAL (NULL, an index out of range, a struct_size smaller than the
 *         struct's first release).
 * @since 0.1
 */
SGD_API sgd_status sgd_lrfind_point(const sgd_lrfind *r, size_t i, sgd_lrfind_sample *out);

/**
 * @brief Copies the whole curve into the caller's arrays.
 * @param r        The result.
 * @param lr       Receives sgd_lrfind_count() learning rates, or NULL.
 * @param loss     Receives the raw losses, or NULL.
 * @param smoothed Receives the moving averages, or NULL.
 * @param n        Length of each array given; must be at least sgd_lrfind_count().
 * @return ::SGD_OK; ::SGD_EINVAL (NULL result); ::SGD_ESHAPE (@p n too small).
 * @since 0.1
 */
SGD_API sgd_status sgd_lrfind_curve(const sgd_lrfind *r, double *lr, double *loss, double *smoothed, size_t n);

/**
 * @brief A suggested learning rate.
 * @param r      The result.
 * @param method An ::sgd_lrfind_method.
 * @param lr     Receives the learning rate (unchanged on failure).
 * @param index  Receives the index of the point it comes from (for the
 *               minimum: of the minimum itself); may be NULL.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL, unknown method); ::SGD_ENOTFOUND when
 *         the curve does not allow this suggestion, with a message saying why
 *         (too few finite points, no descent) and what to change.
 * @since 0.1
 */
SGD_API sgd_status sgd_lrfind_suggestion(const sgd_lrfind *r, int32_t method, double *lr, size_t *index);

/**
 * @brief The default suggestion method.
 * @return ::SGD_LRFIND_STEEPEST.
 * @since 0.1
 */
SGD_API int32_t sgd_lrfind_default_method(void);

/**
 * @brief Name of a suggestion method: "steepest", "minimum", "valley".
 * @param method An ::sgd_lrfind_method.
 * @return A static string; "unknown" for other values; never NULL.
 * @since 0.1
 */
SGD_API const char *sgd_lrfind_method_name(int32_t method);

/* ================================================================== search */

/**
 * @brief A search result: a table of trials (opaque).
 * @since 0.1
 */
typedef struct sgd_search sgd_search;

/**
 * @brief Grid or random search.
 * @since 0.1
 */
typedef enum sgd_search_method {
    /** Every combination of the lists: optimizers x momenta x batch sizes x learning rates (the learning rate varies fastest). */
    SGD_SEARCH_GRID = 0,
    /** sgd_search_options::trials draws: lr log-uniform in [lr_min, lr_max], each list's entry uniformly. */
    SGD_SEARCH_RANDOM = 1
} sgd_search_method;

/**
 * @brief One trial: what it ran with, and what came of it.
 *
 * For a host objective the library fills the inputs, sets the outputs to
 * NaN, -1 or 0 as documented, and the objective fills the outputs it knows.
 * To read one with sgd_search_get_trial(), initialise it with
 * sgd_search_trial_init(); the library fills what both sides know and leaves
 * @c struct_size as it is (see @ref versioned_structs).
 * @since 0.1
 */
typedef struct sgd_search_trial {
    /** As an objective receives it: sizeof(sgd_search_trial) as the library knows it. For
        sgd_search_get_trial(): the caller's, set by sgd_search_trial_init(). */
    uint32_t struct_size;
    /** The trial's outcome: ::SGD_OK, or ::SGD_EDIVERGED for a run that diverged (and stopped); ::SGD_ENOTFOUND for a trial another shard runs (sgd_search_options::shard_count, @since 0.2) until sgd_search_set_trial() fills it in. */
    int32_t status;
    /** Index of the trial, from 0, in the order of the grid or of the draws. */
    int64_t index;
    /** Input: the learning rate (the base of the schedule, or the peak of a cosine). */
    double lr;
    /** Input: the optimizer spec the trial uses, without its "lr" (owned by the search). */
    const char *optimizer;
    /** Input: the momentum (SGD, RMSprop) or beta1 (Adam) set, or NaN for the optimizer spec's own. */
    double momentum;
    /** Input: rows per batch. */
    int64_t batch_size;
    /** Input: the seed of the model's initialisation and of the batch order. */
    uint64_t seed;
    /** Input: the most batches the trial may take (its budget). */
    int64_t max_steps;
    /** Output: mean training loss of the last (up to) 50 batches with a finite loss; NaN if none. */
    double final_loss;
    /** Output: loss on the validation set at the end, or NaN. */
    double val_loss;
    /** Output: accuracy on the validation set at the end, in [0, 1], or NaN. */
    double val_accuracy;
    /** Output: the monitor's final ::sgd_monitor_verdict, or -1 if unknown. */
    int32_t verdict;
    /** Output: the trainer's ::sgd_trainer_stop, or 0 for a host objective. */
    int32_t stop_reason;
    /** Output: batches taken. */
    int64_t steps;
    /** Output: the step of the monitor's first alarm, or -1. */
    int64_t first_alarm;
    /** Output: seconds the trial took (measured by the library). */
    double seconds;
} sgd_search_trial;

/**
 * @brief Zeroes @p s and sets its @c struct_size, ready for sgd_search_get_trial().
 *
 * Inline, so that the size it writes is that of the headers the program is
 * built with (see @ref versioned_structs).
 * @param s The struct to initialise; NULL is ignored.
 * @since 0.2
 */
static inline void sgd_search_trial_init(sgd_search_trial *s)
{
    SGD_OUTPUT_INIT(s);
}

/**
 * @brief A host objective: trains (or evaluates) one trial and fills its outputs.
 * @param trial The trial: inputs set, outputs to fill; valid during the call.
 * @param user  The pointer given to sgd_search_run_objective().
 * @return ::SGD_OK, or ::SGD_EDIVERGED for a trial that diverged: both are
 *         recorded as the trial's status. Any other status aborts the search,
 *         which returns it.
 * @since 0.1
 */
typedef sgd_status (*sgd_search_objective)(sgd_search_trial *trial, void *user);

/**
 * @brief Called for every training step of a built-in trial.
 * @param trial Index of the trial.
 * @param step  Schedule step of the batch.
 * @param loss  Its loss.
 * @param lr    Its learning rate.
 * @param user  sgd_search_options::user.
 * @since 0.1
 */
typedef void (*sgd_search_step_fn)(int64_t trial, int64_t step, double loss, double lr, void *user);

/**
 * @brief Called for every trainer event of a built-in trial.
 * @param trial Index of the trial.
 * @param ev    The event (valid during the call).
 * @param user  sgd_search_options::user.
 * @since 0.1
 */
typedef void (*sgd_search_event_fn)(int64_t trial, const sgd_trainer_event *ev, void *user);

/**
 * @brief Called when a trial has finished.
 * @param trial The trial with its outputs (valid during the call).
 * @param done  Trials finished so far, this one included.
 * @param total Trials in the search (in a distributed search: those this process runs).
 * @param user  sgd_search_options::user.
 * @since 0.1
 */
typedef void (*sgd_search_trial_fn)(const sgd_search_trial *trial, int64_t done, int64_t total, void *user);

/**
 * @brief Options of a search. Initialise with sgd_search_options_init().
 *
 * The lists are borrowed for the duration of the call. Fields are only ever
 * appended.
 * @since 0.1
 */
typedef struct sgd_search_options {
    /** Size of this struct as the caller knows it; set by sgd_search_options_init(). */
    uint32_t struct_size;
    /** An ::sgd_search_method (default ::SGD_SEARCH_GRID). */
    int32_t method;
    /** Lowest learning rate, > 0 (default 1e-4). */
    double lr_min;
    /** Highest learning rate, >= lr_min (default 10). */
    double lr_max;
    /** Grid: learning rates from lr_min to lr_max, equally spaced in log, ends included, 1 to 4096 (default 11: 1e-4, 3.16e-4, ..., 10). */
    int64_t lr_count;
    /** Grid: an explicit list of learning rates instead (each > 0 and finite), or NULL. */
    const double *lrs;
    /** Length of @c lrs. */
    size_t n_lrs;
    /**
     * Optimizer specs without "lr" (e.g. "sgd:momentum=0.9", "adam"), or NULL for {"sgd:momentum=0.9"}.
     * A spec that names its lr (e.g. "prodigy:lr=1") is not swept: it runs at that lr only, one trial
     * per momentum and batch size, next to the grid (how a learning-rate-free method, whose lr is a
     * multiplier of its own estimate, goes next to a grid of rates; since 0.2).
     */
    const char *const *optimizers;
    /** Length of @c optimizers. */
    size_t n_optimizers;
    /** Momenta (or Adam beta1s) to set, each in [0, 1), or NULL to keep each optimizer spec's. */
    const double *momenta;
    /** Length of @c momenta. */
    size_t n_momenta;
    /** Batch sizes, each 1 to 2^20, or NULL for the trainer options' batch_size. */
    const int64_t *batch_sizes;
    /** Length of @c batch_sizes. */
    size_t n_batch_sizes;
    /** Random search: number of trials, 1 to 2^20 (default 16). */
    int64_t trials;
    /** Seed of the draws, the models' initialisation and the batch order (default 0). */
    uint64_t seed;
    /** Budget of each trial in batches; 0 (default) for the trainer options' epochs. */
    int64_t max_steps;
    /**
     * The schedule of each trial: "cosine" (default; NULL means the same) to
     * anneal the learning rate to 0 over the trial's budget (T_max filled
     * in), which compares learning rates at a fixed budget without the noise
     * of the last steps deciding the outcome (docs/tune.md); "constant" for a
     * constant learning rate; or any schedule spec (sgd_sched_new()), whose
     * base learning rate is the trial's.
     */
    const char *schedule;
    /** Trials run at once, 1 to 256 (default 1). Each uses one BLAS thread. */
    int32_t threads;
    /** Reserved; keep 0. */
    int32_t reserved;
    /** Trainer options of each trial (batch size, epochs, guard...), or NULL for the defaults with the guard off. */
    const sgd_trainer_options *trainer;
    /** Monitor options of each trial, or NULL for the defaults. */
    const sgd_monitor_options *monitor;
    /** Built-in trials: called for every step, or NULL. */
    sgd_search_step_fn on_step;
    /** Built-in trials: called for every trainer event, or NULL. */
    sgd_search_event_fn on_event;
    /** Called after each trial, or NULL. */
    sgd_search_trial_fn on_trial;
    /** Passed to the three callbacks. */
    void *user;
    /**
     * Distributed search: this process's share of the trials, 0 to
     * shard_count - 1 (default 0).
     * @since 0.2
     */
    int32_t shard_index;
    /**
     * Distributed search: how many processes share the trials, 1 (default:
     * all trials here) to 2^20. This one runs trials i with
     * i % shard_count == shard_index (each on its own, exactly as a search
     * alone would run it: trials are seeded by sgd_search_options::seed, not
     * by where they run) and marks the others not run (status
     * ::SGD_ENOTFOUND); sgd_search_set_trial() fills those in with the
     * outcomes the other processes found (sgdlab/dist.h does that over MPI).
     * @since 0.2
     */
    int32_t shard_count;
} sgd_search_options;

/**
 * @brief Sets @p o to the defaults: a grid of 11 learning rates from 1e-4 to
 *        10 for "sgd:momentum=0.9", each annealed by a cosine over its
 *        budget, the trainer's defaults with the guard off (one epoch of
 *        batches of 128), seed 0, one thread.
 * @param o The options to initialise; NULL does nothing.
 * @since 0.1
 */
SGD_API void sgd_search_options_init(sgd_search_options *o);

/**
 * @brief Runs a search with the built-in trainer.
 *
 * Each trial builds the model from @p model_spec (seeded with
 * sgd_search_options::seed, so every trial starts from the same weights), an
 * optimizer from its spec with its learning rate and momentum, its schedule,
 * a monitor, and a trainer over @p train (without validation set); it trains
 * for its budget, or until the monitor declares it diverged, then measures
 * the loss and accuracy on @p val.
 *
 * @param out        Receives the result; set to NULL on failure.
 * @param model_spec A model spec (sgd_model_from_spec()).
 * @param train      The training set.
 * @param val        The validation set, or NULL.
 * @param opts       Options, or NULL for the defaults.
 * @param alloc      Allocator for the result and the trials; NULL for malloc/free.
 * @return ::SGD_OK (whatever the trials' outcomes); ::SGD_EINVAL (NULL
 *         argument, options out of range, a bad optimizer, schedule or model
 *         spec, a momentum for an optimizer without one; messages name the
 *         option or the trial); ::SGD_ESHAPE (the data do not fit the model);
 *         ::SGD_ENOMEM; ::SGD_ECANCELED is not used (searches are not
 *         canceled); the status of a trial that failed otherwise than by
 *         diverging.
 * @since 0.1
 */
SGD_API sgd_status sgd_search_run(sgd_search **out, const char *model_spec, const sgd_dataset *train,
                                  const sgd_dataset *val, const sgd_search_options *opts,
                                  const sgd_allocator *alloc);

/**
 * @brief Runs a search with a host objective.
 *
 * The trials are drawn as for sgd_search_run(); @p fn is called once per
 * trial (from the worker threads when sgd_search_options::threads > 1, one
 * call at a time per thread; calls may overlap across threads). The
 * training-related options (trainer, monitor, schedule, the step and event
 * callbacks) are not used.
 *
 * @param out   Receives the result; set to NULL on failure.
 * @param fn    The objective.
 * @param user  Passed to @p fn.
 * @param opts  Options, or NULL for the defaults.
 * @param alloc Allocator; NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL; ::SGD_ENOMEM; or the first status other
 *         than ::SGD_OK and ::SGD_EDIVERGED that @p fn returned.
 * @since 0.1
 */
SGD_API sgd_status sgd_search_run_objective(sgd_search **out, sgd_search_objective fn, void *user,
                                            const sgd_search_options *opts, const sgd_allocator *alloc);

/**
 * @brief Fills in the outcome of trial @p i with one found elsewhere: by
 *        another process of a distributed search (sgd_search_options::shard_count),
 *        or by an earlier run.
 *
 * The inputs of @p trial (index, learning rate, optimizer spec, momentum,
 * batch size, seed) must be those of trial @p i of @p s, so that an outcome
 * can only be put where it belongs; the outputs (status, max_steps,
 * final_loss, val_loss, val_accuracy, verdict, stop_reason, steps,
 * first_alarm, seconds) are copied. A search whose every trial is filled in
 * this way is what one process alone would have produced, and
 * sgd_search_best() chooses among all of them.
 *
 * @param s     The result.
 * @param i     0 to sgd_search_count() - 1.
 * @param trial The trial (its @c struct_size set); read during the call.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL, an index out of range, a bad
 *         struct_size, inputs that are not trial @p i's, naming the first
 *         that differs); ::SGD_ERANGE (a status other than ::SGD_OK or
 *         ::SGD_EDIVERGED, negative steps, an accuracy outside [0, 1]).
 * @since 0.2
 */
SGD_API sgd_status sgd_search_set_trial(sgd_search *s, size_t i, const sgd_search_trial *trial);

/**
 * @brief Frees a search result.
 * @param s The result; NULL does nothing.
 * @since 0.1
 */
SGD_API void sgd_search_free(sgd_search *s);

/**
 * @brief Number of trials.
 * @param s The result.
 * @return The count; 0 if @p s is NULL.
 * @since 0.1
 */
SGD_API size_t sgd_search_count(const sgd_search *s);

/**
 * @brief Reads trial @p i.
 * @param s   The result.
 * @param i   0 to sgd_search_count() - 1.
 * @param out Receives the trial (its @c optimizer string stays valid while
 *            @p s lives), as far as its @c struct_size goes (set by
 *            sgd_search_trial_init()).
 * @return ::SGD_OK; ::SGD_EINVAL (NULL, an index out of range, a struct_size smaller than the
 *         struct's first release).
 * @since 0.1
 */
SGD_API sgd_status sgd_search_get_trial(const sgd_search *s, size_t i, sgd_search_trial *out);

/**
 * @brief The best trial: the highest validation accuracy among the trials
 *        that did not diverge (ties: the lower final loss); without
 *        validation accuracies, the lowest final loss.
 * @param s     The result.
 * @param index Receives its index.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL); ::SGD_ENOTFOUND when every trial diverged.
 * @since 0.1
 */
SGD_API sgd_status sgd_search_best(const sgd_search *s, size_t *index);

#ifdef __cplusplus
}
#endif

#endif /* SGDLAB_TUNE_H */
