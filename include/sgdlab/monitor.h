/*
 * libsgdlab - train small neural networks and get the learning rate right.
 * SPDX-License-Identifier: MIT
 */
/**
 * @file monitor.h
 * @brief The loss-curve health monitor: online detection of a wrong learning rate.
 *
 * A monitor reads one observation per training step (the loss, and optionally
 * the gradient norm and the learning rate) and tells the host, as early as the
 * curve allows, when training goes wrong:
 *
 * | event | meaning | severity | suggested remedy |
 * |---|---|---|---|
 * | ::SGD_MONITOR_NONFINITE | the loss or the gradient norm is NaN or infinite | critical | roll back, lower the learning rate 10x |
 * | ::SGD_MONITOR_DIVERGENCE | the loss is running away (onset, before NaN) | critical | roll back, lower the learning rate 10x |
 * | ::SGD_MONITOR_SPIKE | a transient jump above the smoothed loss | info | skip the batch |
 * | ::SGD_MONITOR_OSCILLATION | erratic loss with no net progress | warning | lower the learning rate 3x |
 * | ::SGD_MONITOR_PLATEAU | no improvement for a window | info | lower the learning rate 10x (plateau reduction) |
 * | ::SGD_MONITOR_STAGNATION | smooth but negligible progress from the start | warning | raise the learning rate 10x |
 * | ::SGD_MONITOR_GRAD_SPIKE | the gradient norm jumps far above its smoothed level (since 0.2) | info | skip the batch or clip |
 *
 * and keeps a running verdict (::SGD_MONITOR_HEALTHY, ::SGD_MONITOR_DIVERGED,
 * ::SGD_MONITOR_UNSTABLE, ::SGD_MONITOR_STAGNANT).
 *
 * The monitor knows nothing of models: it serves any training loop, in any
 * framework, that can hand it a number per step. All its statistics act on the
 * logarithm of the loss (minus an optional floor), so they are scale-free: the
 * same defaults serve a cross-entropy near 2.3, a mean squared error near 1e-4
 * and a loss near 1e4. Each observation costs O(1) time and allocates nothing;
 * all memory is allocated by sgd_monitor_new(). docs/monitor.md explains the
 * statistics, their defaults and how they were validated.
 *
 * A host that knows its own step numbers passes them with
 * sgd_monitor_observe_step(); events then carry them. A log that ends (a
 * finished run, or a short log read from a file) is concluded with
 * sgd_monitor_finish(), which judges what the windows could not judge yet:
 * a log of 10 to 150 observations can be called stagnant or unstable there.
 * For an excerpt that starts mid-run, sgd_monitor_options::initial_loss gives
 * the untrained level to compare with.
 *
 * Hosts react through callbacks registered by event mask (sgd_monitor_add_callback());
 * a callback returns an ::sgd_monitor_action that sgd_monitor_observe() hands
 * back to the training loop. The monitor itself never changes anything.
 *
 * Thread rules: a monitor is used by one thread at a time; distinct monitors
 * are independent. Callbacks run on the thread that calls sgd_monitor_observe().
 *
 * @since 0.1
 */
#ifndef SGDLAB_MONITOR_H
#define SGDLAB_MONITOR_H

#include "sgdlab/core.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A loss-curve health monitor (opaque handle).
 *
 * Created by sgd_monitor_new(), released by sgd_monitor_free().
 * @since 0.1
 */
typedef struct sgd_monitor sgd_monitor;

/**
 * @brief Kinds of events the monitor raises; the values are frozen.
 *
 * Within one observation, events are raised in this order.
 * @since 0.1
 */
typedef enum sgd_monitor_kind {
    SGD_MONITOR_NONFINITE = 0,   /**< The loss or gradient norm is NaN or infinite. Alarm. */
    SGD_MONITOR_DIVERGENCE = 1,  /**< The loss is running away from its initial level. Alarm. */
    SGD_MONITOR_SPIKE = 2,       /**< A transient jump above the smoothed loss. Reported, not an alarm. */
    SGD_MONITOR_OSCILLATION = 3, /**< Erratic loss with no net progress. Alarm. */
    SGD_MONITOR_PLATEAU = 4,     /**< No improvement for a window. Reported, not an alarm. */
    SGD_MONITOR_STAGNATION = 5,  /**< Negligible progress from the start. Alarm. */
    SGD_MONITOR_GRAD_SPIKE = 6   /**< The gradient norm jumps far above its smoothed level. Reported, not an alarm. @since 0.2 */
} sgd_monitor_kind;

/**
 * @brief Number of event kinds (one past the largest ::sgd_monitor_kind): 6 in
 *        0.1, 7 since 0.2. A 0.1 program never receives kind 6: its masks do
 *        not have that bit.
 * @since 0.1
 */
#define SGD_MONITOR_KIND_COUNT 7

/** @brief Mask bit of ::SGD_MONITOR_NONFINITE events. @since 0.1 */
#define SGD_MONITOR_MASK_NONFINITE (1u << SGD_MONITOR_NONFINITE)
/** @brief Mask bit of ::SGD_MONITOR_DIVERGENCE events. @since 0.1 */
#define SGD_MONITOR_MASK_DIVERGENCE (1u << SGD_MONITOR_DIVERGENCE)
/** @brief Mask bit of ::SGD_MONITOR_SPIKE events. @since 0.1 */
#define SGD_MONITOR_MASK_SPIKE (1u << SGD_MONITOR_SPIKE)
/** @brief Mask bit of ::SGD_MONITOR_OSCILLATION events. @since 0.1 */
#define SGD_MONITOR_MASK_OSCILLATION (1u << SGD_MONITOR_OSCILLATION)
/** @brief Mask bit of ::SGD_MONITOR_PLATEAU events. @since 0.1 */
#define SGD_MONITOR_MASK_PLATEAU (1u << SGD_MONITOR_PLATEAU)
/** @brief Mask bit of ::SGD_MONITOR_STAGNATION events. @since 0.1 */
#define SGD_MONITOR_MASK_STAGNATION (1u << SGD_MONITOR_STAGNATION)
/** @brief Mask bit of ::SGD_MONITOR_GRAD_SPIKE events. @since 0.2 */
#define SGD_MONITOR_MASK_GRAD_SPIKE (1u << SGD_MONITOR_GRAD_SPIKE)
/** @brief The alarms: nonfinite, divergence, oscillation and stagnation. @since 0.1 */
#define SGD_MONITOR_MASK_ALARMS                                                                  \
    (SGD_MONITOR_MASK_NONFINITE | SGD_MONITOR_MASK_DIVERGENCE | SGD_MONITOR_MASK_OSCILLATION | \
     SGD_MONITOR_MASK_STAGNATION)
/** @brief Every event kind (0x3f in 0.1, 0x7f since 0.2). @since 0.1 */
#define SGD_MONITOR_MASK_ALL ((1u << SGD_MONITOR_KIND_COUNT) - 1u)

/**
 * @brief The running verdict on the curve; the values are frozen.
 *
 * - diverged: a non-finite value was seen, or a divergence whose loss went on
 *   to sgd_monitor_options::divergence_confirm_ratio times its initial value.
 *   This verdict is sticky: it stays until sgd_monitor_reset() or
 *   sgd_monitor_state_import() (for example of the state saved with the
 *   snapshot a host rolls back to).
 * - unstable: a divergence that turned back before it was confirmed (sticky
 *   in the same way: this includes, since 0.2, a run that spiked before it
 *   made progress and then sat at its starting level, and a run whose loss
 *   rose back above its starting level), or an oscillation in progress
 *   (cleared when the loss comes back down and makes new progress).
 * - stagnant: after sgd_monitor_options::stagnation_steps observations (or,
 *   at sgd_monitor_finish(), sgd_monitor_options::min_steps), the progress
 *   since the start is negligible (cleared as soon as it is not).
 * - healthy: none of the above.
 * @since 0.1
 */
typedef enum sgd_monitor_verdict {
    SGD_MONITOR_HEALTHY = 0,  /**< Nothing wrong so far. */
    SGD_MONITOR_DIVERGED = 1, /**< Non-finite loss, or a confirmed divergence (sticky). */
    SGD_MONITOR_UNSTABLE = 2, /**< An unconfirmed divergence, or erratic loss without net progress. */
    SGD_MONITOR_STAGNANT = 3  /**< Negligible progress since the start. */
} sgd_monitor_verdict;

/**
 * @brief What a callback asks the training loop to do; the values are frozen.
 *
 * Larger values win when several callbacks answer in one observation.
 * The monitor does not act itself: sgd_monitor_observe() returns the action.
 * @since 0.1
 */
typedef enum sgd_monitor_action {
    SGD_MONITOR_CONTINUE = 0, /**< Carry on. */
    SGD_MONITOR_SKIP = 1,     /**< Do not apply this step's update. */
    SGD_MONITOR_SCALE_LR = 2, /**< Multiply the learning rate by the returned factor. */
    SGD_MONITOR_ROLLBACK = 3, /**< Restore the last good state (and scale the learning rate by the factor). */
    SGD_MONITOR_STOP = 4      /**< Stop training. */
} sgd_monitor_action;

/**
 * @brief How serious an event is; the values are frozen.
 * @since 0.1
 */
typedef enum sgd_monitor_severity {
    SGD_MONITOR_INFO = 0,    /**< Worth knowing (spike, plateau). */
    SGD_MONITOR_WARNING = 1, /**< The learning rate is probably wrong (oscillation, stagnation). */
    SGD_MONITOR_CRITICAL = 2 /**< Training is failing now (nonfinite, divergence). */
} sgd_monitor_severity;

/**
 * @brief Thresholds and windows of the monitor.
 *
 * Initialise with sgd_monitor_options_init(), which sets @c struct_size and
 * the documented defaults, then change fields (or parse a textual spec with
 * sgd_monitor_options_parse()). Ratios compare losses (minus
 * sgd_monitor_options::loss_floor) with each other, never with absolute values; "sigma" is
 * the monitor's running estimate of the step-to-step noise of the log-loss.
 * Window lengths are counted in observations. Fields are only ever appended.
 * @since 0.1
 */
typedef struct sgd_monitor_options {
    /** Size of this struct as the caller knows it; set by sgd_monitor_options_init(). */
    uint32_t struct_size;
    /** Observations the initial loss level is taken from (since 0.2: the median of their logarithms,
        kept within one sigma of the first observation, so that a spike among them raises it by at
        most that; at most 64 are used; in 0.1 their geometric mean). Default 10; 1..1000. */
    int32_t initial_steps;
    /** Lower bound of the loss (0 for cross-entropy, MSE...); the monitor works on log(loss - floor).
        Losses at or below the floor count as perfect. Default 0; finite. */
    double loss_floor;
    /** Time constant (observations) of the smoothed loss, an outlier-clipped EMA of the log-loss. Default 10; 1..1e6. */
    double level_steps;
    /** Time constant (observations) of the noise estimate sigma. Default 20; 2..1e6. */
    double noise_steps;
    /** Divergence: the loss above this multiple of its initial value (its first observation)... Default 3; > 1. */
    double divergence_ratio;
    /** ...or a single observation above this multiple (a jump that leaves no time to wait). Default 100; >= divergence_ratio. */
    double divergence_jump_ratio;
    /** The verdict becomes ::SGD_MONITOR_DIVERGED once, after a divergence event, the loss has reached
        this multiple of its initial value (or a non-finite value was seen); until then a divergence
        leaves the verdict ::SGD_MONITOR_UNSTABLE (a run-away that turned back). Default 10; >= divergence_ratio. */
    double divergence_confirm_ratio;
    /** Divergence and jump bounds are at least this many sigma above the initial level. Default 5; >= 0. */
    double divergence_z;
    /** Divergence needs this many of the last sgd_monitor_options::divergence_window observations above the bound
        (2 of 3 waits for a second observation before calling a jump a divergence). Default 1; 1..window. */
    int32_t divergence_count;
    /** See sgd_monitor_options::divergence_count. Default 1; 1..32. */
    int32_t divergence_window;
    /** Spike: an observation above this multiple of the smoothed loss... Default 2; > 1. */
    double spike_ratio;
    /** ...and this many sigma above it. Default 5; >= 0. */
    double spike_z;
    /** Oscillation: the smoothed loss above this multiple of its initial level... Default 1.5; > 1. */
    double oscillation_ratio;
    /** ...for this many consecutive observations. Default 10; >= 1. */
    int32_t oscillation_steps;
    /** Or this many spikes within sgd_monitor_options::oscillation_window observations while the smoothed loss
        is not below its initial level. Default 3; 1..32. */
    int32_t oscillation_spikes;
    /** See sgd_monitor_options::oscillation_spikes. Default 50; >= 1. */
    int32_t oscillation_window;
    /** Plateau: no new best smoothed loss for this many observations. Default 100; >= 1. */
    int32_t plateau_steps;
    /** Stagnation is judged only from this many observations on. Default 150; >= 1. */
    int32_t stagnation_steps;
    /** Divergence also when a spike does not recover: this many observations after it, the smoothed
        loss is still above its level before the spike by more than half the progress made before it
        (the jump destroyed what the run had learnt, for example a network whose units died: the
        loss then sits flat near its initial value, which alone would look like stagnation). Such a
        divergence leaves the verdict ::SGD_MONITOR_UNSTABLE. Default 50; 0 disables; >= 0. */
    int32_t spike_recovery_steps;
    /** Stagnant whatever the shape of the curve if the loss has fallen by less than this fraction
        of its initial level (or less than sgd_monitor_options::stagnation_z standard errors). Default 0.1; in [0, 1). */
    double stagnation_min_drop;
    /** Never stagnant once the loss has fallen by this fraction. Default 0.33; in [min_drop, 1). */
    double stagnation_max_drop;
    /** Progress smaller than this many standard errors counts as none. Default 3; >= 0. */
    double stagnation_z;
    /** Between the two drops: stagnant while the recent rate of progress is at least this fraction
        of the mean rate since the start (the curve has not flattened). Default 0.5; >= 0. */
    double stagnation_shape;
    /** Time constant (observations) of the fast average used for the recent rate of progress. Default 25; >= 1. */
    double progress_fast_steps;
    /** Time constant (observations) of the slow average that measures progress. Default 100; > progress_fast_steps. */
    double progress_slow_steps;
    /** The untrained loss level, for a log that starts mid-run (an excerpt, a resumed run): the
        initial level that divergence, progress and drift are measured from, instead of the first
        observations (for a classifier, the log of the number of classes). NaN (default): unknown,
        taken from the first observations. Else finite and > loss_floor. @since 0.2 */
    double initial_loss;
    /** The fewest finite observations sgd_monitor_finish() judges stagnation and drift on (a log
        shorter than sgd_monitor_options::stagnation_steps). Default 10; 3..stagnation_steps. @since 0.2 */
    int32_t min_steps;
    /** Reserved; keep 0. @since 0.2 */
    int32_t reserved0;
    /** Drift: a divergence (verdict unstable) when, after at least min_steps observations, the recent
        smoothed loss (and the smoothed loss) is above this multiple of the initial level and beyond
        its noise for 3 observations in a row (or, at sgd_monitor_finish(), the mean of the last
        quarter of the log is): the loss rose above where it started, slowly, with no run-away (a
        run that gave back all its progress, and more). Default 1.1; 0 disables; else > 1. @since 0.2 */
    double drift_ratio;
    /** Gradient-norm spike: a gradient norm above this multiple of its smoothed level (a geometric
        EMA over sgd_monitor_options::level_steps) and sgd_monitor_options::spike_z times its noise
        raises ::SGD_MONITOR_GRAD_SPIKE, once per excursion. Default 10; 0 disables; else > 1. @since 0.2 */
    double grad_spike_ratio;
} sgd_monitor_options;

/**
 * @brief One event, as handed to callbacks.
 *
 * Owned by the library and valid only during the callback; copy what you keep.
 * @since 0.1
 */
typedef struct sgd_monitor_event {
    /** Size of this struct as the library knows it (fields are only ever appended). */
    uint32_t struct_size;
    /** An ::sgd_monitor_kind. */
    int32_t kind;
    /** 0-based index of the observation that raised the event. */
    int64_t step;
    /** The loss observed (may be NaN or infinite for ::SGD_MONITOR_NONFINITE). */
    double loss;
    /** The gradient norm given with it, or -1 if none was given. */
    double grad_norm;
    /** The learning rate given with it, or -1 if none was given. */
    double lr;
    /** The smoothed loss: before this observation moved it for nonfinite, divergence and spike
        events, after it for the others; NaN before the first finite observation. */
    double smoothed;
    /** The statistic that fired; its meaning per kind is in sgd_monitor_event::detail. */
    double statistic;
    /** The threshold it crossed, in the same unit. */
    double threshold;
    /** An ::sgd_monitor_severity. */
    int32_t severity;
    /** The ::sgd_monitor_action the monitor suggests. */
    int32_t suggested_action;
    /** The learning-rate factor it suggests (0.1 lower 10x, 10 raise 10x, 1 none). */
    double suggested_lr_scale;
    /** The remedy in words, e.g. "lower the learning rate by 10x"; static, never NULL. */
    const char *remedy;
    /** What sgd_monitor_event::statistic and sgd_monitor_event::threshold measure, e.g. "loss / initial loss"; static, never NULL. */
    const char *detail;
    /** The producer's own step number of this observation (sgd_monitor_observe_step()), or -1. @since 0.2 */
    int64_t producer_step;
    /** The 0-based index of an earlier observation this event is about, or -1: for a divergence
        raised by a spike that the run did not train past, the spike's. @since 0.2 */
    int64_t ref_step;
    /** The producer's step of sgd_monitor_event::ref_step, or -1. @since 0.2 */
    int64_t ref_producer_step;
} sgd_monitor_event;

/**
 * @brief A host callback, called for each event whose kind is in its mask.
 *
 * @param event    The event; valid only during the call.
 * @param lr_scale In: the suggested factor (event->suggested_lr_scale). Out: the
 *                 factor that goes with ::SGD_MONITOR_SCALE_LR or ::SGD_MONITOR_ROLLBACK;
 *                 must be finite and > 0.
 * @param user     The pointer given to sgd_monitor_add_callback().
 * @return An ::sgd_monitor_action. The callback must not call functions of this
 *         monitor that change it (they return ::SGD_ESTATE).
 * @since 0.1
 */
typedef int32_t (*sgd_monitor_callback)(const sgd_monitor_event *event, double *lr_scale, void *user);

/** @brief Most callbacks one monitor holds at once. @since 0.1 */
#define SGD_MONITOR_MAX_CALLBACKS 16

/**
 * @brief Counters and current statistics of a monitor.
 *
 * Initialise it with sgd_monitor_counters_init() (or set @c struct_size to
 * its sizeof) before calling sgd_monitor_get_counters(); the library fills what
 * both sides know and leaves @c struct_size as it is (see @ref versioned_structs).
 * @since 0.1
 */
typedef struct sgd_monitor_counters {
    /** Size of this struct as the caller knows it. */
    uint32_t struct_size;
    /** The current ::sgd_monitor_verdict. */
    int32_t verdict;
    /** Observations so far. */
    int64_t steps;
    /** Observations with a non-finite loss or gradient norm. */
    int64_t nonfinite_steps;
    /** Step of the first alarm (nonfinite, divergence, oscillation or stagnation), or -1. */
    int64_t first_alarm;
    /** Events raised so far, per ::sgd_monitor_kind (entries past SGD_MONITOR_KIND_COUNT are 0). */
    int64_t events[8];
    /** Step of the first event of each kind, or -1. */
    int64_t first_event[8];
    /** The initial loss level (geometric mean of the first observations, or the first
        observation when the loss fell faster than its noise), or NaN before any. */
    double initial;
    /** The current smoothed loss, or NaN before any finite observation. */
    double smoothed;
    /** The best (lowest) smoothed loss so far, or NaN. */
    double best;
    /** The step-to-step noise of the log-loss (sigma; 0.1 means about 10%). */
    double noise;
    /** Fraction by which the loss has fallen since the start (slow average), e.g. 0.6; may be negative. */
    double progress;
    /** The producer's step of sgd_monitor_counters::first_alarm, or -1. @since 0.2 */
    int64_t first_alarm_producer_step;
    /** Finite observations at or below sgd_monitor_options::loss_floor (read as a perfect fit: set the
        floor below the lowest loss for losses that can be negative). @since 0.2 */
    int64_t below_floor_steps;
    /** The smoothed gradient norm (geometric EMA), or NaN before any gradient norm was given. @since 0.2 */
    double grad_norm;
    /** Nonzero once sgd_monitor_finish() concluded the log (until the next observation or reset). @since 0.2 */
    int32_t finished;
    /** Reserved; 0. @since 0.2 */
    int32_t reserved0;
} sgd_monitor_counters;

/**
 * @brief Zeroes @p s and sets its @c struct_size, ready for sgd_monitor_get_counters().
 *
 * Inline, so that the size it writes is that of the headers the program is
 * built with (see @ref versioned_structs).
 * @param s The struct to initialise; NULL is ignored.
 * @since 0.2
 */
static inline void sgd_monitor_counters_init(sgd_monitor_counters *s)
{
    SGD_OUTPUT_INIT(s);
}

/**
 * @brief Fills @p opts with the defaults and sets its struct_size.
 * @param opts The options to initialise; not NULL.
 * @return ::SGD_OK, or ::SGD_EINVAL if @p opts is NULL.
 * @since 0.1
 */
SGD_API sgd_status sgd_monitor_options_init(sgd_monitor_options *opts);

/**
 * @brief Sets options from a textual spec such as
 *        "divergence_ratio=5,plateau_steps=200".
 *
 * Keys are the field names of ::sgd_monitor_options; the spec may start with
 * "monitor:". Numbers are read independently of the C locale. Unknown keys,
 * malformed numbers and out-of-range values are errors naming the key and
 * value; on error @p opts is unchanged. @p opts is read and written back as far
 * as its @c struct_size goes (see @ref versioned_structs).
 *
 * @param opts Options initialised with sgd_monitor_options_init(); not NULL.
 * @param spec The spec, NUL-terminated; not NULL ("" changes nothing).
 * @return ::SGD_OK, ::SGD_EINVAL (malformed, or a @c struct_size smaller than the
 *         struct's first release or larger than this library's), ::SGD_ENOTFOUND
 *         (unknown key) or ::SGD_ERANGE (value out of range).
 * @since 0.1
 */
SGD_API sgd_status sgd_monitor_options_parse(sgd_monitor_options *opts, const char *spec);

/**
 * @brief Creates a monitor.
 *
 * @param out   Receives the monitor, or NULL on failure; not NULL.
 * @param opts  Options (NULL for the defaults); copied, struct_size checked,
 *              every field range-checked.
 * @param alloc Allocator for the monitor's memory (NULL: malloc/free); copied.
 * @return ::SGD_OK, ::SGD_EINVAL, ::SGD_ERANGE (an option out of range) or
 *         ::SGD_ENOMEM. The monitor makes no allocation after this call.
 * @since 0.1
 */
SGD_API sgd_status sgd_monitor_new(sgd_monitor **out, const sgd_monitor_options *opts, const sgd_allocator *alloc);

/**
 * @brief Releases a monitor. NULL is a no-op.
 * @param monitor The monitor; invalid afterwards.
 * @since 0.1
 */
SGD_API void sgd_monitor_free(sgd_monitor *monitor);

/**
 * @brief Forgets every observation (the verdict returns to healthy); keeps
 *        the options and callbacks.
 * @param monitor The monitor; not NULL.
 * @return ::SGD_OK, ::SGD_EINVAL or ::SGD_ESTATE (called from a callback).
 * @since 0.1
 */
SGD_API sgd_status sgd_monitor_reset(sgd_monitor *monitor);

/**
 * @brief Registers a callback for the events whose kinds are in @p mask.
 *
 * Callbacks are called in registration order, for each event in kind order.
 * Registering allocates nothing.
 *
 * @param monitor The monitor; not NULL.
 * @param id      Receives an id for sgd_monitor_remove_callback() (may be NULL).
 * @param mask    Bits from ::SGD_MONITOR_MASK_ALL (e.g. ::SGD_MONITOR_MASK_ALARMS); not 0.
 * @param fn      The callback; not NULL.
 * @param user    Passed unchanged to @p fn.
 * @return ::SGD_OK, ::SGD_EINVAL (NULL, empty or unknown mask bits),
 *         ::SGD_EOVERFLOW (already ::SGD_MONITOR_MAX_CALLBACKS) or ::SGD_ESTATE
 *         (called from a callback).
 * @since 0.1
 */
SGD_API sgd_status sgd_monitor_add_callback(sgd_monitor *monitor, int32_t *id, uint32_t mask,
                                            sgd_monitor_callback fn, void *user);

/**
 * @brief Unregisters a callback.
 * @param monitor The monitor; not NULL.
 * @param id      An id from sgd_monitor_add_callback().
 * @return ::SGD_OK, ::SGD_EINVAL, ::SGD_ENOTFOUND (no such id) or ::SGD_ESTATE
 *         (called from a callback).
 * @since 0.1
 */
SGD_API sgd_status sgd_monitor_remove_callback(sgd_monitor *monitor, int32_t id);

/**
 * @brief Feeds one observation: updates the statistics, raises events, calls
 *        the callbacks and returns the strongest action they asked for.
 *
 * O(1), allocates nothing. A NaN or infinite @p loss or @p grad_norm is a
 * valid observation (it raises ::SGD_MONITOR_NONFINITE), not an error.
 *
 * @param monitor   The monitor; not NULL.
 * @param loss      The loss of this step (any double).
 * @param grad_norm The gradient norm of this step, or a negative finite number if unknown.
 * @param lr        The learning rate in force, or a negative number if unknown; only
 *                  reported in events. Must not be NaN.
 * @param action    Receives the strongest ::sgd_monitor_action returned by the callbacks
 *                  (::SGD_MONITOR_CONTINUE if none); may be NULL.
 * @param lr_scale  Receives the factor that goes with that action (1 if none); may be NULL.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL monitor), ::SGD_ENONFINITE (NaN @p lr) or
 *         ::SGD_ESTATE (called from a callback), all without recording anything;
 *         ::SGD_ECALLBACK if a callback returned an unknown action or an invalid
 *         factor (the observation is recorded; the action is ::SGD_MONITOR_CONTINUE).
 * @since 0.1
 */
SGD_API sgd_status sgd_monitor_observe(sgd_monitor *monitor, double loss, double grad_norm, double lr,
                                       int32_t *action, double *lr_scale);

/**
 * @brief sgd_monitor_observe() with the producer's own step number, which
 *        events then carry (sgd_monitor_event::producer_step).
 *
 * The monitor's windows count observations whatever the spacing of @p step;
 * @p step is only reported. It may repeat or go back (the host decides what
 * a new run is: call sgd_monitor_reset() for one).
 *
 * @param monitor   The monitor; not NULL.
 * @param step      The producer's step, >= 0; or -1 when unknown.
 * @param loss      As sgd_monitor_observe().
 * @param grad_norm As sgd_monitor_observe().
 * @param lr        As sgd_monitor_observe().
 * @param action    As sgd_monitor_observe().
 * @param lr_scale  As sgd_monitor_observe().
 * @return As sgd_monitor_observe(); ::SGD_EINVAL also for a @p step below -1.
 * @since 0.2
 */
SGD_API sgd_status sgd_monitor_observe_step(sgd_monitor *monitor, int64_t step, double loss, double grad_norm,
                                            double lr, int32_t *action, double *lr_scale);

/**
 * @brief Concludes a log that has ended: judges what the running windows could
 *        not judge yet, raises the events found, and gives the final verdict.
 *
 * A log shorter than sgd_monitor_options::stagnation_steps (a per-epoch log,
 * one every 100 iterations) is judged here on its whole curve, kept by the
 * monitor as up to 64 block means: stagnation from
 * sgd_monitor_options::min_steps observations on, a drift above the initial
 * level, and a spike before any progress followed by a loss that sits at its
 * starting level (docs/monitor.md gives the rules). Events are raised as by
 * sgd_monitor_observe(), at the last observation, and their callbacks' actions
 * are ignored. Calling it again without new observations changes nothing;
 * observing after it carries on from the same state.
 *
 * @param monitor The monitor; not NULL.
 * @param verdict Receives the final ::sgd_monitor_verdict; may be NULL.
 * @return ::SGD_OK, ::SGD_EINVAL, ::SGD_ESTATE (called from a callback) or
 *         ::SGD_ECALLBACK (a callback returned an unknown action or factor).
 * @since 0.2
 */
SGD_API sgd_status sgd_monitor_finish(sgd_monitor *monitor, int32_t *verdict);

/**
 * @brief The current verdict.
 * @param monitor The monitor; not NULL.
 * @param verdict Receives an ::sgd_monitor_verdict; not NULL.
 * @return ::SGD_OK or ::SGD_EINVAL.
 * @since 0.1
 */
SGD_API sgd_status sgd_monitor_get_verdict(const sgd_monitor *monitor, int32_t *verdict);

/**
 * @brief Counters and current statistics.
 * @param monitor The monitor; not NULL.
 * @param out     Filled as far as out->struct_size goes (set by sgd_monitor_counters_init()); not NULL.
 * @return ::SGD_OK or ::SGD_EINVAL (NULL, or a struct_size smaller than the struct's first release).
 * @since 0.1
 */
SGD_API sgd_status sgd_monitor_get_counters(const sgd_monitor *monitor, sgd_monitor_counters *out);

/**
 * @brief Number of doubles in the monitor's exported state.
 *
 * The state is everything the monitor has learnt from the observations (not
 * its options or callbacks), as a flat array of doubles that a checkpoint can
 * store as it is. The size depends only on the library version.
 *
 * @param monitor The monitor; not NULL.
 * @param count   Receives the number of doubles; not NULL.
 * @return ::SGD_OK or ::SGD_EINVAL.
 * @since 0.1
 */
SGD_API sgd_status sgd_monitor_state_size(const sgd_monitor *monitor, size_t *count);

/**
 * @brief Writes the monitor's state into @p buf.
 * @param monitor The monitor; not NULL.
 * @param buf     At least sgd_monitor_state_size() doubles; not NULL.
 * @param count   Number of doubles in @p buf.
 * @return ::SGD_OK, ::SGD_EINVAL, or ::SGD_ESHAPE if @p count is too small.
 * @since 0.1
 */
SGD_API sgd_status sgd_monitor_state_export(const sgd_monitor *monitor, double *buf, size_t count);

/**
 * @brief Restores a state written by sgd_monitor_state_export().
 *
 * The buffer is validated (tag, version, size, every field's range) before
 * anything changes; on error the monitor is unchanged. The options of the
 * monitor should be those of the one that exported the state.
 *
 * @param monitor The monitor; not NULL.
 * @param buf     The state; not NULL.
 * @param count   Number of doubles in @p buf.
 * @return ::SGD_OK, ::SGD_EINVAL, ::SGD_ESHAPE (wrong count), ::SGD_EVERSION,
 *         ::SGD_EFORMAT (corrupt) or ::SGD_ESTATE (called from a callback).
 * @since 0.1
 */
SGD_API sgd_status sgd_monitor_state_import(sgd_monitor *monitor, const double *buf, size_t count);

/**
 * @brief Name of an event kind: "nonfinite", "divergence", "spike", "oscillation",
 *        "plateau", "stagnation", "grad_spike" (since 0.2).
 * @param kind An ::sgd_monitor_kind.
 * @return A static string; "unknown" for other values; never NULL.
 * @since 0.1
 */
SGD_API const char *sgd_monitor_kind_name(int32_t kind);

/**
 * @brief Name of a verdict: "healthy", "diverged", "unstable", "stagnant".
 * @param verdict An ::sgd_monitor_verdict.
 * @return A static string; "unknown" for other values; never NULL.
 * @since 0.1
 */
SGD_API const char *sgd_monitor_verdict_name(int32_t verdict);

/**
 * @brief Name of an action: "continue", "skip", "scale_lr", "rollback", "stop".
 * @param action An ::sgd_monitor_action.
 * @return A static string; "unknown" for other values; never NULL.
 * @since 0.1
 */
SGD_API const char *sgd_monitor_action_name(int32_t action);

#ifdef __cplusplus
}
#endif

#endif /* SGDLAB_MONITOR_H */
