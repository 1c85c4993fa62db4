/*
 * libsgdlab - train small neural networks and get the learning rate right.
 * SPDX-License-Identifier: MIT
 */
/**
 * @file sched.h
 * @brief Learning-rate schedules: closed-form built-ins with PyTorch's semantics,
 *        composition (sequence, warmup, plateau reduction), host-written schedules.
 *
 * A schedule (::sgd_sched) answers one question: which learning rate is in force
 * at step t (t = 0 for the first optimizer step). Built-in schedules compute it in
 * closed form, in double, from the step alone, so:
 *
 * - sgd_sched_lr() can be asked about any step, in any order, without advancing
 *   anything (plots, the LR finder, resuming at step t);
 * - no rounding accumulates from step to step (PyTorch's recursive forms drift);
 * - resuming is exact: only what is stateful by nature (plateau reduction, and
 *   whatever a host schedule keeps) has state, exported and imported as a flat
 *   array of doubles (sgd_sched_state_export(), sgd_sched_state_import()).
 *
 * Every schedule, built-in or host-written, is an ::sgd_sched_vtable behind an
 * opaque handle; the built-ins use the same vtable as host code.
 *
 * Schedules are made three ways:
 *
 * - from a textual spec, `sgd_sched_new(&s, "cosine:T_max=100,eta_min=1e-5", 0.1, NULL)`
 *   (the grammar, composition included, is in docs/sched.md);
 * - from typed options, e.g. sgd_sched_cosine_new() with ::sgd_sched_cosine_options;
 *   every option struct has an `_init` function that sets torch's defaults;
 * - from a host vtable, sgd_sched_new_custom().
 *
 * Argument names and defaults are torch.optim.lr_scheduler's (PyTorch 1.13).
 * Relative schedules (constant, step, multistep, exponential, polynomial,
 * cosine, cosine_warm_restarts, linear) multiply a @p base_lr given at creation
 * (torch's optimizer lr); onecycle sets absolute rates from its max_lr, and
 * cyclic from its own base_lr and max_lr, as torch's OneCycleLR and CyclicLR do.
 *
 * Thread rules: a schedule is used by one thread at a time; sgd_sched_lr() and
 * the other const queries change nothing and may run concurrently with each
 * other on one handle if the host callbacks of a custom schedule allow it.
 */
#ifndef SGDLAB_SCHED_H
#define SGDLAB_SCHED_H

#include "sgdlab/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A learning-rate schedule (opaque).
 *
 * Created by sgd_sched_new(), sgd_sched_new_custom() or one of the
 * `sgd_sched_<kind>_new()` functions; freed by sgd_sched_free().
 * @since 0.1
 */
typedef struct sgd_sched sgd_sched;

/** @brief Longest schedule name, including its terminating NUL. @since 0.1 */
#define SGD_SCHED_NAME_MAX 64

/**
 * @brief The functions a schedule implements: the interface between the library
 *        and a built-in or host-written schedule.
 *
 * A host fills one with sgd_sched_vtable_init() and hands it to
 * sgd_sched_new_custom(), which copies it (the host's struct need not outlive the
 * call). Fields are only ever appended; the library reads @c struct_size bytes of
 * the host's struct and zero-fills the rest, so a host built against older headers
 * keeps working; a larger @c struct_size (a host built against newer headers) is
 * accepted since 0.2 and the members this library does not know are ignored, as
 * for ::sgd_optim_vtable (see @ref versioned_structs).
 *
 * Every callback receives @c user as its last argument and returns ::SGD_OK on
 * success. Any other return value is reported to the library's caller as
 * ::SGD_ECALLBACK with a message naming the schedule, the callback and the step.
 * The library validates what callbacks produce: a learning rate or momentum
 * that is negative, NaN or infinite is refused (::SGD_ERANGE or
 * ::SGD_ENONFINITE), never passed on.
 * @since 0.1
 */
typedef struct sgd_sched_vtable {
    /** sizeof(sgd_sched_vtable) as the host was compiled; set by sgd_sched_vtable_init(). */
    uint32_t struct_size;
    /** Name for messages and checkpoints: 1 to ::SGD_SCHED_NAME_MAX - 1 bytes, copied. Required. */
    const char *name;
    /**
     * Required. Writes the learning rate in force at step @p step (>= 0) to @p *lr.
     * Must not change anything that a later call could observe: the library calls
     * it for any step, in any order, any number of times.
     */
    sgd_status (*lr)(int64_t step, double *lr, void *user);
    /**
     * Optional (NULL: the schedule never sets momentum). Schedules that cycle
     * momentum (onecycle, cyclic) write the momentum, or Adam's beta1, in force at
     * @p step to @p *momentum and set @p *set to 1; a step at which the schedule
     * leaves the optimizer's momentum alone sets @p *set to 0.
     */
    sgd_status (*momentum)(int64_t step, double *momentum, int32_t *set, void *user);
    /**
     * Optional (NULL: the schedule does not watch a metric). Receives the metric
     * (a validation loss, say) measured after step @p step; it may change the
     * learning rates that sgd_sched_lr() reports from then on. @p metric is finite.
     */
    sgd_status (*observe)(int64_t step, double metric, void *user);
    /** Number of doubles of state the schedule exports; 0 for a stateless schedule. */
    size_t state_size;
    /** Writes the state to @p state (@p n == state_size doubles). Required if state_size > 0. */
    sgd_status (*state_export)(double *state, size_t n, void *user);
    /**
     * Replaces the state with @p state (@p n == state_size doubles), which may come
     * from a file: validate it and leave the state unchanged when refusing it.
     * Required if state_size > 0.
     */
    sgd_status (*state_import)(const double *state, size_t n, void *user);
    /** Optional. Called once by sgd_sched_free(); releases @c user. */
    void (*destroy)(void *user);
    /** Passed unchanged as the last argument of every callback. */
    void *user;
} sgd_sched_vtable;

/**
 * @brief Prepares a vtable: zeroes it and sets @c struct_size.
 * @param vt The vtable to initialise; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_sched_vtable_init(sgd_sched_vtable *vt);

/**
 * @brief Makes a schedule from a host's vtable.
 *
 * The vtable is copied. On success the schedule owns @c vt->user in the sense
 * that sgd_sched_free() calls @c vt->destroy; on failure @c destroy is not called
 * and @c user stays the host's.
 *
 * @param out   Receives the schedule; set to NULL on failure.
 * @param vt    The host's vtable (sgd_sched_vtable_init() first): @c name and
 *              @c lr are required, @c state_export and @c state_import when
 *              @c state_size > 0.
 * @param alloc Allocator for the schedule, or NULL for malloc/realloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL argument, a missing callback, a bad
 *         name or a @c struct_size smaller than the struct's first release;
 *         ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_new_custom(sgd_sched **out, const sgd_sched_vtable *vt, const sgd_allocator *alloc);

/**
 * @brief Makes a schedule from a textual spec.
 *
 * `kind:key=value,...` with torch's argument names, e.g.
 * `cosine:T_max=100,eta_min=1e-5` or `step:step_size=30,gamma=0.1`; lists are
 * bracketed (`multistep:milestones=[30,80]`), nested schedules parenthesised:
 * `sequential:milestones=[5],children=[(linear:start_factor=0.01,total_iters=5),(cosine:T_max=50)]`,
 * `warmup:total_iters=5,over=(cosine:T_max=100)`,
 * `plateau:factor=0.5,patience=3,over=(cosine:T_max=100)`. docs/sched.md has the
 * grammar and every kind's keys. Unknown kinds and keys, malformed numbers and
 * values out of range are refused with a message naming the key and the value.
 *
 * @param out     Receives the schedule; set to NULL on failure.
 * @param spec    NUL-terminated spec, at most 65535 bytes.
 * @param base_lr The optimizer's learning rate (finite, >= 0): the lr that
 *                relative schedules scale, cyclic's default base_lr, and the
 *                constant lr under a `plateau` without `over`. onecycle ignores it.
 * @param alloc   Allocator for the schedule and its children, or NULL.
 * @return ::SGD_OK; ::SGD_EINVAL (syntax, bad value), ::SGD_ERANGE (value out of
 *         range), ::SGD_ENOTFOUND (unknown kind or key), ::SGD_EOVERFLOW (too
 *         long, too deep, too many items), ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_new(sgd_sched **out, const char *spec, double base_lr, const sgd_allocator *alloc);

/**
 * @brief Frees a schedule, its children and (through @c destroy) a host's state.
 *
 * NULL is a no-op. A schedule that was handed to a composite (sequence, warmup,
 * plateau) belongs to it: freeing it directly does nothing, freeing the
 * composite frees it.
 * @param s The schedule, or NULL.
 * @since 0.1
 */
SGD_API void sgd_sched_free(sgd_sched *s);

/**
 * @brief The schedule's name: the kind of a built-in ("cosine", "sequential"...)
 *        or the host's vtable name.
 * @param s The schedule.
 * @return A string owned by the schedule, valid until it is freed; "" for NULL.
 * @since 0.1
 */
SGD_API const char *sgd_sched_name(const sgd_sched *s);

/**
 * @brief The learning rate in force at step @p step, without advancing anything.
 *
 * Step 0 is the first optimizer step. For built-ins this is a closed-form
 * function of the step; a plateau reduction applies the scale in force now (the
 * reductions made by the metrics observed so far) to every step.
 *
 * @param s    The schedule.
 * @param step The step, >= 0.
 * @param lr   Receives the learning rate (finite, >= 0); 0 on failure.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL), ::SGD_ERANGE (negative step, or an lr
 *         that is negative or overflows), ::SGD_ENONFINITE (NaN lr from a host),
 *         ::SGD_ECALLBACK (a host callback failed).
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_lr(const sgd_sched *s, int64_t step, double *lr);

/**
 * @brief The learning rates of @p n consecutive steps from @p first (a plot, a table).
 * @param s     The schedule.
 * @param first The first step, >= 0.
 * @param n     Number of steps; 0 is allowed. @p first + @p n must not overflow.
 * @param out   Receives @p n learning rates; left unspecified on failure.
 * @return As sgd_sched_lr(), for the first step that fails.
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_lrs(const sgd_sched *s, int64_t first, size_t n, double *out);

/**
 * @brief Whether the schedule cycles momentum (onecycle and cyclic with
 *        cycle_momentum, composites containing one, host schedules with a
 *        momentum callback).
 * @param s The schedule.
 * @return 1 if it does, 0 if not or if @p s is NULL.
 * @since 0.1
 */
SGD_API int32_t sgd_sched_cycles_momentum(const sgd_sched *s);

/**
 * @brief The momentum (SGD, RMSprop) or beta1 (Adam) that the schedule sets at
 *        @p step, for the trainer to forward to the optimizer.
 *
 * torch's OneCycleLR and CyclicLR move the momentum inversely to the learning
 * rate. A schedule that does not cycle momentum, or not at this step (a sequence
 * whose child there does not), sets @p *set to 0 and the optimizer keeps its own.
 * A trainer must not forward a momentum to an optimizer that has none (torch
 * refuses to build such a schedule).
 *
 * @param s        The schedule.
 * @param step     The step, >= 0.
 * @param momentum Receives the momentum (finite, >= 0) when @p *set is 1; 0 otherwise.
 * @param set      Receives 1 when the schedule sets momentum at this step, else 0.
 * @return As sgd_sched_lr().
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_momentum(const sgd_sched *s, int64_t step, double *momentum, int32_t *set);

/**
 * @brief Whether the schedule watches a metric (plateau reduction, composites
 *        containing one, host schedules with an observe callback).
 * @param s The schedule.
 * @return 1 if it does, 0 if not or if @p s is NULL.
 * @since 0.1
 */
SGD_API int32_t sgd_sched_watches_metric(const sgd_sched *s);

/**
 * @brief Reports the metric measured after step @p step (torch's
 *        `ReduceLROnPlateau.step(metric)`).
 *
 * A plateau reduction counts steps without improvement and, past its patience,
 * scales the learning rate down from step @p step + 1 on. Composites pass the
 * metric to the children that watch one (a sequence: to the child in force at
 * @p step). A schedule that watches nothing ignores it.
 *
 * @param s      The schedule.
 * @param step   The step after which the metric was measured, >= 0.
 * @param metric The metric; must be finite (a NaN loss is the health monitor's
 *               business, not a plateau's), else nothing changes.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL), ::SGD_ERANGE (negative step),
 *         ::SGD_ENONFINITE, ::SGD_ECALLBACK.
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_observe(sgd_sched *s, int64_t step, double metric);

/**
 * @brief Number of doubles in the schedule's state (0 for stateless schedules).
 * @param s The schedule.
 * @return The size; 0 for NULL. Fixed for the schedule's life.
 * @since 0.1
 */
SGD_API size_t sgd_sched_state_size(const sgd_sched *s);

/**
 * @brief Writes the schedule's state (for a checkpoint or a rollback snapshot).
 *
 * A composite's state is its own followed by its children's, in order. Allocates
 * nothing.
 * @param s     The schedule.
 * @param state Receives sgd_sched_state_size() doubles (may be NULL when that is 0).
 * @param n     Must equal sgd_sched_state_size().
 * @return ::SGD_OK; ::SGD_EINVAL (NULL); ::SGD_ESHAPE (wrong @p n); ::SGD_ECALLBACK.
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_state_export(const sgd_sched *s, double *state, size_t n);

/**
 * @brief Restores a state written by sgd_sched_state_export() of a schedule built
 *        the same way; the schedule then continues exactly as the original would.
 *
 * The state is validated first (a plateau checks its tag, counters and scale
 * against its options); on any failure the schedule is left as it was (a
 * composite undoes the children it had already restored). Allocates nothing.
 * @param s     The schedule.
 * @param state sgd_sched_state_size() doubles (may be NULL when that is 0).
 * @param n     Must equal sgd_sched_state_size().
 * @return ::SGD_OK; ::SGD_EINVAL (NULL); ::SGD_ESHAPE (wrong @p n);
 *         ::SGD_EFORMAT (a state that this schedule cannot have); ::SGD_ECALLBACK.
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_state_import(sgd_sched *s, const double *state, size_t n);

/* ------------------------------------------------------------------ built-ins */

/**
 * @brief Options of `constant` (torch's ConstantLR): lr = base_lr * factor for
 *        t < total_iters, base_lr from then on.
 * @since 0.1
 */
typedef struct sgd_sched_constant_options {
    uint32_t struct_size; /**< Set by sgd_sched_constant_options_init(). */
    double factor;        /**< In [0, 1]; default 1/3 (torch's). Use 1 for a truly constant lr. */
    int64_t total_iters;  /**< >= 0; default 5. */
} sgd_sched_constant_options;

/**
 * @brief Sets torch's defaults (factor 1/3, total_iters 5).
 * @param o The options; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_sched_constant_options_init(sgd_sched_constant_options *o);

/**
 * @brief Makes a `constant` schedule.
 * @param out     Receives the schedule; NULL on failure.
 * @param base_lr The lr it scales, finite and >= 0.
 * @param opts    Options, or NULL for the defaults.
 * @param alloc   Allocator, or NULL.
 * @return ::SGD_OK; ::SGD_EINVAL / ::SGD_ERANGE with a message naming the bad
 *         option and its value; ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_constant_new(sgd_sched **out, double base_lr, const sgd_sched_constant_options *opts,
                                          const sgd_allocator *alloc);

/**
 * @brief Options of `step` (StepLR): lr = base_lr * gamma^floor(t / step_size).
 * @since 0.1
 */
typedef struct sgd_sched_step_options {
    uint32_t struct_size; /**< Set by sgd_sched_step_options_init(). */
    int64_t step_size;    /**< > 0; required (the default 0 is refused). */
    double gamma;         /**< >= 0; default 0.1. */
} sgd_sched_step_options;

/**
 * @brief Sets torch's defaults (gamma 0.1; step_size must still be set).
 * @param o The options; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_sched_step_options_init(sgd_sched_step_options *o);

/**
 * @brief Makes a `step` schedule.
 * @param out     Receives the schedule; NULL on failure.
 * @param base_lr The lr it scales, finite and >= 0.
 * @param opts    Options (required: step_size has no default).
 * @param alloc   Allocator, or NULL.
 * @return As sgd_sched_constant_new().
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_step_new(sgd_sched **out, double base_lr, const sgd_sched_step_options *opts,
                                      const sgd_allocator *alloc);

/**
 * @brief Options of `multistep` (MultiStepLR): lr = base_lr * gamma^(number of
 *        milestones <= t).
 * @since 0.1
 */
typedef struct sgd_sched_multistep_options {
    uint32_t struct_size;     /**< Set by sgd_sched_multistep_options_init(). */
    const int64_t *milestones; /**< Strictly increasing steps >= 0; copied. Required. */
    size_t n_milestones;      /**< Their number, 1 to 65536. */
    double gamma;             /**< >= 0; default 0.1. */
} sgd_sched_multistep_options;

/**
 * @brief Sets torch's defaults (gamma 0.1; milestones must still be set).
 * @param o The options; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_sched_multistep_options_init(sgd_sched_multistep_options *o);

/**
 * @brief Makes a `multistep` schedule.
 * @param out     Receives the schedule; NULL on failure.
 * @param base_lr The lr it scales, finite and >= 0.
 * @param opts    Options (required).
 * @param alloc   Allocator, or NULL.
 * @return As sgd_sched_constant_new().
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_multistep_new(sgd_sched **out, double base_lr, const sgd_sched_multistep_options *opts,
                                           const sgd_allocator *alloc);

/**
 * @brief Options of `exponential` (ExponentialLR): lr = base_lr * gamma^t.
 * @since 0.1
 */
typedef struct sgd_sched_exponential_options {
    uint32_t struct_size; /**< Set by sgd_sched_exponential_options_init(). */
    double gamma;         /**< >= 0; required (torch has no default; the NaN that _init sets is refused). */
} sgd_sched_exponential_options;

/**
 * @brief Marks gamma as not set (torch requires it).
 * @param o The options; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_sched_exponential_options_init(sgd_sched_exponential_options *o);

/**
 * @brief Makes an `exponential` schedule. With gamma > 1 the lr grows and
 *        sgd_sched_lr() reports ::SGD_ERANGE at the first step where it overflows.
 * @param out     Receives the schedule; NULL on failure.
 * @param base_lr The lr it scales, finite and >= 0.
 * @param opts    Options (required).
 * @param alloc   Allocator, or NULL.
 * @return As sgd_sched_constant_new().
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_exponential_new(sgd_sched **out, double base_lr,
                                             const sgd_sched_exponential_options *opts, const sgd_allocator *alloc);

/**
 * @brief Options of `polynomial` (PolynomialLR): lr = base_lr * (1 - min(t, total_iters) / total_iters)^power.
 * @since 0.1
 */
typedef struct sgd_sched_polynomial_options {
    uint32_t struct_size; /**< Set by sgd_sched_polynomial_options_init(). */
    int64_t total_iters;  /**< > 0; default 5. The lr is 0 from step total_iters on. */
    double power;         /**< >= 0; default 1. */
} sgd_sched_polynomial_options;

/**
 * @brief Sets torch's defaults (total_iters 5, power 1).
 * @param o The options; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_sched_polynomial_options_init(sgd_sched_polynomial_options *o);

/**
 * @brief Makes a `polynomial` schedule.
 * @param out     Receives the schedule; NULL on failure.
 * @param base_lr The lr it scales, finite and >= 0.
 * @param opts    Options, or NULL for the defaults.
 * @param alloc   Allocator, or NULL.
 * @return As sgd_sched_constant_new().
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_polynomial_new(sgd_sched **out, double base_lr, const sgd_sched_polynomial_options *opts,
                                            const sgd_allocator *alloc);

/**
 * @brief Options of `cosine` (CosineAnnealingLR, closed form):
 *        lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2.
 *
 * The formula is periodic: past T_max the lr rises again to base_lr at 2 T_max,
 * as torch's does. To hold eta_min after T_max, put a `constant` (factor 1) after
 * it in a sequence; for restarts use `cosine_warm_restarts`.
 * @since 0.1
 */
typedef struct sgd_sched_cosine_options {
    uint32_t struct_size; /**< Set by sgd_sched_cosine_options_init(). */
    int64_t T_max;        /**< > 0; required (the default 0 is refused). */
    double eta_min;       /**< >= 0; default 0. */
} sgd_sched_cosine_options;

/**
 * @brief Sets torch's defaults (eta_min 0; T_max must still be set).
 * @param o The options; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_sched_cosine_options_init(sgd_sched_cosine_options *o);

/**
 * @brief Makes a `cosine` schedule.
 * @param out     Receives the schedule; NULL on failure.
 * @param base_lr The lr at t = 0, finite and >= 0.
 * @param opts    Options (required).
 * @param alloc   Allocator, or NULL.
 * @return As sgd_sched_constant_new().
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_cosine_new(sgd_sched **out, double base_lr, const sgd_sched_cosine_options *opts,
                                        const sgd_allocator *alloc);

/**
 * @brief Options of `cosine_warm_restarts` (CosineAnnealingWarmRestarts): cosine
 *        from base_lr toward eta_min over T_i steps, restarting at base_lr, with
 *        T_0 first and each period T_mult times the last.
 * @since 0.1
 */
typedef struct sgd_sched_cosine_warm_restarts_options {
    uint32_t struct_size; /**< Set by sgd_sched_cosine_warm_restarts_options_init(). */
    int64_t T_0;          /**< > 0; required (the default 0 is refused). */
    int64_t T_mult;       /**< >= 1; default 1. */
    double eta_min;       /**< >= 0; default 0. */
} sgd_sched_cosine_warm_restarts_options;

/**
 * @brief Sets torch's defaults (T_mult 1, eta_min 0; T_0 must still be set).
 * @param o The options; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_sched_cosine_warm_restarts_options_init(sgd_sched_cosine_warm_restarts_options *o);

/**
 * @brief Makes a `cosine_warm_restarts` schedule.
 * @param out     Receives the schedule; NULL on failure.
 * @param base_lr The lr at each restart, finite and >= 0.
 * @param opts    Options (required).
 * @param alloc   Allocator, or NULL.
 * @return As sgd_sched_constant_new().
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_cosine_warm_restarts_new(sgd_sched **out, double base_lr,
                                                      const sgd_sched_cosine_warm_restarts_options *opts,
                                                      const sgd_allocator *alloc);

/**
 * @brief Options of `linear` (LinearLR, the usual warmup): lr = base_lr *
 *        (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters).
 * @since 0.1
 */
typedef struct sgd_sched_linear_options {
    uint32_t struct_size; /**< Set by sgd_sched_linear_options_init(). */
    double start_factor;  /**< In [0, 1]; default 1/3. */
    double end_factor;    /**< In [0, 1]; default 1. Held from total_iters on. */
    int64_t total_iters;  /**< > 0; default 5. */
} sgd_sched_linear_options;

/**
 * @brief Sets torch's defaults (start_factor 1/3, end_factor 1, total_iters 5).
 * @param o The options; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_sched_linear_options_init(sgd_sched_linear_options *o);

/**
 * @brief Makes a `linear` schedule.
 * @param out     Receives the schedule; NULL on failure.
 * @param base_lr The lr it scales, finite and >= 0.
 * @param opts    Options, or NULL for the defaults.
 * @param alloc   Allocator, or NULL.
 * @return As sgd_sched_constant_new().
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_linear_new(sgd_sched **out, double base_lr, const sgd_sched_linear_options *opts,
                                        const sgd_allocator *alloc);

/** @brief How onecycle anneals within a phase (torch's anneal_strategy). @since 0.1 */
typedef enum sgd_anneal {
    SGD_ANNEAL_COS = 0,   /**< `cos`: half a cosine from start to end (default). */
    SGD_ANNEAL_LINEAR = 1 /**< `linear`: a straight line from start to end. */
} sgd_anneal;

/**
 * @brief Options of `onecycle` (OneCycleLR): absolute learning rates from
 *        max_lr / div_factor up to max_lr and down to max_lr / div_factor /
 *        final_div_factor over total_steps steps; the final lr is held after them.
 * @since 0.1
 */
typedef struct sgd_sched_onecycle_options {
    uint32_t struct_size;    /**< Set by sgd_sched_onecycle_options_init(). */
    double max_lr;           /**< Peak lr, finite and >= 0; required (the NaN that _init sets is refused). */
    int64_t total_steps;     /**< > 0; or 0 to use epochs * steps_per_epoch. */
    int64_t epochs;          /**< With steps_per_epoch when total_steps is 0; default 0. */
    int64_t steps_per_epoch; /**< With epochs when total_steps is 0; default 0. */
    double pct_start;        /**< Fraction of the steps spent rising, in (0, 1); default 0.3. */
    int32_t anneal_strategy; /**< An ::sgd_anneal; default ::SGD_ANNEAL_COS. */
    int32_t cycle_momentum;  /**< 1 (default): cycle momentum inversely, see sgd_sched_momentum(); 0: don't. */
    double base_momentum;    /**< Momentum at the lr peak, in [0, 1); default 0.85. */
    double max_momentum;     /**< Momentum at the start and end, in [0, 1); default 0.95. */
    double div_factor;       /**< initial lr = max_lr / div_factor; > 0; default 25. */
    double final_div_factor; /**< final lr = initial lr / final_div_factor; > 0; default 1e4. */
    int32_t three_phase;     /**< 1: rise, fall back to the initial lr, then anneal to the final; default 0. */
} sgd_sched_onecycle_options;

/**
 * @brief Sets torch's defaults (pct_start 0.3, cos, cycle_momentum 1,
 *        momentum 0.85..0.95, div_factor 25, final_div_factor 1e4, two phases);
 *        max_lr and the length must still be set.
 * @param o The options; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_sched_onecycle_options_init(sgd_sched_onecycle_options *o);

/**
 * @brief Makes a `onecycle` schedule. It has no base_lr: torch's OneCycleLR
 *        overwrites the optimizer's lr with its own.
 * @param out   Receives the schedule; NULL on failure.
 * @param opts  Options (required).
 * @param alloc Allocator, or NULL.
 * @return As sgd_sched_constant_new().
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_onecycle_new(sgd_sched **out, const sgd_sched_onecycle_options *opts,
                                          const sgd_allocator *alloc);

/** @brief Cyclic amplitude policies (torch's CyclicLR mode). @since 0.1 */
typedef enum sgd_cyclic_mode {
    SGD_CYCLIC_TRIANGULAR = 0,  /**< `triangular`: constant amplitude (default). */
    SGD_CYCLIC_TRIANGULAR2 = 1, /**< `triangular2`: amplitude halved every cycle. */
    SGD_CYCLIC_EXP_RANGE = 2    /**< `exp_range`: amplitude scaled by gamma^t. */
} sgd_cyclic_mode;

/**
 * @brief Options of `cyclic` (CyclicLR): absolute learning rates between base_lr
 *        and max_lr, step_size_up steps up and step_size_down down, forever.
 * @since 0.1
 */
typedef struct sgd_sched_cyclic_options {
    uint32_t struct_size;   /**< Set by sgd_sched_cyclic_options_init(). */
    double base_lr;         /**< Lower bound, finite and >= 0; required (NaN from _init is refused). */
    double max_lr;          /**< Upper bound, finite and >= 0; required (NaN from _init is refused). */
    int64_t step_size_up;   /**< > 0; default 2000. */
    int64_t step_size_down; /**< > 0, or 0 (default) for step_size_up. */
    int32_t mode;           /**< An ::sgd_cyclic_mode; default ::SGD_CYCLIC_TRIANGULAR. */
    int32_t cycle_momentum; /**< 1 (default): cycle momentum inversely, see sgd_sched_momentum(); 0: don't. */
    double gamma;           /**< exp_range's factor, > 0 (and <= 1); default 1. */
    double base_momentum;   /**< Momentum at the lr peak, in [0, 1); default 0.8. */
    double max_momentum;    /**< Momentum at base_lr, in [0, 1); default 0.9. */
} sgd_sched_cyclic_options;

/**
 * @brief Sets torch's defaults (step_size_up 2000, triangular, gamma 1,
 *        cycle_momentum 1, momentum 0.8..0.9); base_lr and max_lr must still be set.
 * @param o The options; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_sched_cyclic_options_init(sgd_sched_cyclic_options *o);

/**
 * @brief Makes a `cyclic` schedule. Its rates are absolute: torch's CyclicLR
 *        overwrites the optimizer's lr with base_lr.
 * @param out   Receives the schedule; NULL on failure.
 * @param opts  Options (required).
 * @param alloc Allocator, or NULL.
 * @return As sgd_sched_constant_new().
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_cyclic_new(sgd_sched **out, const sgd_sched_cyclic_options *opts,
                                        const sgd_allocator *alloc);

/* ---------------------------------------------------------------- composition */

/**
 * @brief Makes a sequence (SequentialLR): child 0 until milestones[0], child k
 *        from milestones[k-1] on, each child counting its own steps from 0 at its
 *        milestone: lr(t) = child_k(t - milestones[k-1]).
 *
 * On success the sequence owns the children (sgd_sched_free() of the sequence
 * frees them); on failure they stay the caller's.
 *
 * @param out        Receives the schedule; NULL on failure.
 * @param children   @p n schedules, distinct, none already owned by a composite.
 * @param n          Number of children, 1 to 1024.
 * @param milestones @p n - 1 strictly increasing steps > 0 (may be NULL when @p n is 1).
 * @param alloc      Allocator, or NULL.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL, repeated or owned child, milestones out
 *         of order); ::SGD_EOVERFLOW (too many children); ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_sequential_new(sgd_sched **out, sgd_sched *const *children, size_t n,
                                            const int64_t *milestones, const sgd_allocator *alloc);

/**
 * @brief Options of `warmup` (a linear warmup over any schedule):
 *        lr(t) = inner(t) * (start_factor + (1 - start_factor) * min(t, total_iters) / total_iters).
 *
 * The inner schedule counts from step 0 (torch's ChainedScheduler of LinearLR
 * and the inner schedule). To start the inner schedule only after the warmup, use
 * a sequence instead.
 * @since 0.1
 */
typedef struct sgd_sched_warmup_options {
    uint32_t struct_size; /**< Set by sgd_sched_warmup_options_init(). */
    double start_factor;  /**< In [0, 1]; default 1/3 (LinearLR's). */
    int64_t total_iters;  /**< > 0; default 5. */
} sgd_sched_warmup_options;

/**
 * @brief Sets the defaults (start_factor 1/3, total_iters 5, as LinearLR).
 * @param o The options; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_sched_warmup_options_init(sgd_sched_warmup_options *o);

/**
 * @brief Wraps @p inner in a linear warmup. On success the warmup owns @p inner.
 * @param out   Receives the schedule; NULL on failure.
 * @param inner The schedule to warm up (not owned by another composite).
 * @param opts  Options, or NULL for the defaults.
 * @param alloc Allocator, or NULL.
 * @return As sgd_sched_constant_new(); ::SGD_EINVAL for a NULL or owned @p inner.
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_warmup_new(sgd_sched **out, sgd_sched *inner, const sgd_sched_warmup_options *opts,
                                        const sgd_allocator *alloc);

/** @brief Whether a plateau watches a metric that should fall or rise. @since 0.1 */
typedef enum sgd_plateau_mode {
    SGD_PLATEAU_MIN = 0, /**< `min`: a loss; improvement is a decrease (default). */
    SGD_PLATEAU_MAX = 1  /**< `max`: an accuracy; improvement is an increase. */
} sgd_plateau_mode;

/** @brief How a plateau measures a significant improvement. @since 0.1 */
typedef enum sgd_threshold_mode {
    SGD_THRESHOLD_REL = 0, /**< `rel`: better than best * (1 -/+ threshold) (default). */
    SGD_THRESHOLD_ABS = 1  /**< `abs`: better than best -/+ threshold. */
} sgd_threshold_mode;

/**
 * @brief Options of `plateau` (ReduceLROnPlateau) as a multiplicative scale over
 *        any schedule: lr(t) = max(inner(t) * scale, min(inner(t), min_lr)).
 *
 * The scale starts at 1 and is multiplied by factor whenever more than patience
 * observed metrics in a row failed to improve on the best (outside cooldown),
 * unless that would lower the next step's lr by eps or less. The reduction
 * never takes the lr below min_lr and never raises it above the inner schedule.
 * @since 0.1
 */
typedef struct sgd_sched_plateau_options {
    uint32_t struct_size;   /**< Set by sgd_sched_plateau_options_init(). */
    int32_t mode;           /**< An ::sgd_plateau_mode; default ::SGD_PLATEAU_MIN. */
    double factor;          /**< In [0, 1); default 0.1. */
    int64_t patience;       /**< >= 0; default 10. */
    double threshold;       /**< >= 0 (and < 1 in rel mode); default 1e-4. */
    int32_t threshold_mode; /**< An ::sgd_threshold_mode; default ::SGD_THRESHOLD_REL. */
    int64_t cooldown;       /**< Steps to wait after a reduction, >= 0; default 0. */
    double min_lr;          /**< Floor of the reduction, >= 0; default 0. */
    double eps;             /**< Smallest lr change applied, >= 0; default 1e-8. */
} sgd_sched_plateau_options;

/**
 * @brief Sets torch's defaults (min, factor 0.1, patience 10, threshold 1e-4
 *        rel, cooldown 0, min_lr 0, eps 1e-8).
 * @param o The options; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_sched_plateau_options_init(sgd_sched_plateau_options *o);

/**
 * @brief Puts plateau reduction over @p inner. On success it owns @p inner.
 *
 * For torch's ReduceLROnPlateau alone, use a `constant` inner with factor 1 (the
 * spec `plateau:...` without `over` does that). Its state (5 doubles: a tag, the
 * best metric, the bad-step and cooldown counters, the scale) is exported and
 * imported with sgd_sched_state_export() / sgd_sched_state_import().
 * @param out   Receives the schedule; NULL on failure.
 * @param inner The schedule to scale (not owned by another composite).
 * @param opts  Options, or NULL for the defaults.
 * @param alloc Allocator, or NULL.
 * @return As sgd_sched_warmup_new().
 * @since 0.1
 */
SGD_API sgd_status sgd_sched_plateau_new(sgd_sched **out, sgd_sched *inner, const sgd_sched_plateau_options *opts,
                                         const sgd_allocator *alloc);

#ifdef __cplusplus
}
#endif

#endif /* SGDLAB_SCHED_H */
