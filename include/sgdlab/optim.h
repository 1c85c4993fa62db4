/*
 * libsgdlab - train small neural networks and get the learning rate right.
 * SPDX-License-Identifier: MIT
 */
/**
 * @file optim.h
 * @brief Optimizers: a pluggable vtable, the built-ins (all of torch.optim
 *        1.13's first-order optimizers with its semantics, and Lion, LAMB,
 *        LARS, schedule-free SGD and AdamW, Prodigy, D-Adaptation and DoG),
 *        a listing of their hyperparameters with bounds, parameter groups,
 *        gradient hygiene and exportable state.
 *
 * An optimizer turns the gradients of a flat parameter arena (one contiguous
 * array of @c n floats, see the model) into an update of those parameters, at
 * the learning rate it is handed at each step. It owns its state: each state
 * slot (momentum buffer, first and second moments...) is one flat, 64-byte
 * aligned array of @c n floats, allocated once when the optimizer is created.
 * sgd_optim_step() allocates nothing.
 *
 * - Built-ins are made from a textual spec, with torch.optim's argument names:
 *   @code
 *   sgd_optim *opt;
 *   if (sgd_optim_new(&opt, "adam:lr=1e-3,beta2=0.99,amsgrad=1", n, NULL) != SGD_OK)
 *       fprintf(stderr, "%s\n", sgd_error_last());
 *   for (int64_t t = 0; t < steps; t++) {
 *       compute_gradients(params, grads);
 *       sgd_optim_step(opt, params, grads, lr_at(t), NULL);
 *   }
 *   sgd_optim_free(opt);
 *   @endcode
 *   docs/optim.md gives each optimizer's update formula, its options, their
 *   defaults and ranges, and the grammar of the spec.
 * - Host code implements its own optimizer by filling an ::sgd_optim_vtable and
 *   calling sgd_optim_new_custom(); the built-ins go through the same vtable.
 * - Parameter groups are ranges of the arena with their own learning-rate
 *   multiplier and weight decay (sgd_optim_add_group()), e.g. no decay on
 *   biases.
 * - Gradient hygiene (::sgd_optim_hygiene): clipping by global L2 norm and by
 *   value, and a policy for non-finite gradients (skip the step, refuse it, or
 *   apply it). Gradients are checked for NaN and infinity before the
 *   parameters or the state are touched; ::sgd_optim_step_info tells whether
 *   the update was applied and what the gradient norm was before clipping.
 * - State: the step counter (sgd_optim_get_step(), sgd_optim_set_step()) and
 *   every state array can be exported and imported as named flat arrays
 *   (sgd_optim_state_export()); an optimizer whose state was imported continues
 *   bit for bit as the original would have.
 *
 * Thread rules: an optimizer is used by one thread at a time; distinct
 * optimizers are independent. Host callbacks run on the thread that called
 * into the library.
 */
#ifndef SGDLAB_OPTIM_H
#define SGDLAB_OPTIM_H

#include "sgdlab/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief An optimizer: a vtable, its state arrays, parameter groups and
 *        gradient hygiene settings. Opaque; made by sgd_optim_new() or
 *        sgd_optim_new_custom(), freed by sgd_optim_free().
 * @since 0.1
 */
typedef struct sgd_optim sgd_optim;

/* ------------------------------------------------------------------ vtable */

/**
 * @brief Most state slots an optimizer may ask for (::sgd_optim_vtable::n_slots).
 * @since 0.1
 */
#define SGD_OPTIM_MAX_SLOTS 16

/**
 * @brief Most scalar state values an optimizer may ask for
 *        (::sgd_optim_vtable::n_scalars).
 * @since 0.1
 */
#define SGD_OPTIM_MAX_SCALARS 64

/**
 * @brief Longest optimizer or slot name, in bytes, without the terminating NUL.
 * @since 0.1
 */
#define SGD_OPTIM_MAX_NAME 63

/**
 * @brief Most hyperparameters a host optimizer may list
 *        (::sgd_optim_vtable_ext::n_hparams).
 * @since 0.2
 */
#define SGD_OPTIM_MAX_HPARAMS 32

/**
 * @brief ::sgd_optim_hparam::flags bit: the value is 0 or 1.
 * @since 0.2
 */
#define SGD_OPTIM_HPARAM_BOOL 1u
/**
 * @brief ::sgd_optim_hparam::flags bit: the value is a whole number.
 * @since 0.2
 */
#define SGD_OPTIM_HPARAM_INTEGER 2u
/**
 * @brief ::sgd_optim_hparam::flags bit: fixed when the optimizer is created
 *        (it decides which state exists); sgd_optim_set() accepts only the
 *        current value.
 * @since 0.2
 */
#define SGD_OPTIM_HPARAM_FIXED 4u
/**
 * @brief ::sgd_optim_hparam::flags bit: the lower bound itself is excluded.
 * @since 0.2
 */
#define SGD_OPTIM_HPARAM_LOWER_OPEN 8u
/**
 * @brief ::sgd_optim_hparam::flags bit: the upper bound itself is excluded.
 * @since 0.2
 */
#define SGD_OPTIM_HPARAM_UPPER_OPEN 16u
/**
 * @brief ::sgd_optim_hparam::flags bit: the optimizer's momentum coefficient,
 *        the one a schedule that cycles momentum sets (sgd's "momentum",
 *        Adam's "beta1"), and the one a search over momenta varies.
 * @since 0.2
 */
#define SGD_OPTIM_HPARAM_MOMENTUM 32u
/**
 * @brief ::sgd_optim_hparam::flags bit: there is no default; a spec must give
 *        it (sgd's "lr", as in torch).
 * @since 0.2
 */
#define SGD_OPTIM_HPARAM_REQUIRED 64u

/**
 * @brief One hyperparameter of an optimizer: its name, default and bounds
 *        (the model is zstd's ZSTD_cParam_getBounds()). Filled by
 *        sgd_optim_hparam_describe(), sgd_optim_hparam_bounds() and
 *        sgd_optim_kind_hparam(); a host optimizer fills it in its
 *        ::sgd_optim_vtable_ext::describe_hparam callback.
 *
 * Initialise with sgd_optim_hparam_init(). Fields are only ever appended;
 * the library fills the first @c struct_size bytes.
 * @since 0.2
 */
typedef struct sgd_optim_hparam {
    /** sizeof(sgd_optim_hparam) as the caller compiled it; set by sgd_optim_hparam_init(). */
    uint32_t struct_size;
    /** Bit set of SGD_OPTIM_HPARAM_* flags. */
    uint32_t flags;
    /**
     * Its name, as a spec key and for sgd_optim_set() (1 to
     * ::SGD_OPTIM_MAX_NAME letters, digits and '_'). Owned by the library
     * (static, or by the optimizer until it is freed).
     */
    const char *name;
    /** The value a spec that does not name it gets (NaN with ::SGD_OPTIM_HPARAM_REQUIRED). */
    double default_value;
    /** Smallest value accepted (excluded with ::SGD_OPTIM_HPARAM_LOWER_OPEN); may be -infinity. */
    double lower;
    /** Largest value accepted (excluded with ::SGD_OPTIM_HPARAM_UPPER_OPEN); may be +infinity. */
    double upper;
} sgd_optim_hparam;

/**
 * @brief Zeroes @p h, sets its @c struct_size, and the bounds to
 *        [-infinity, +infinity] with no default (NaN).
 * @param h The struct to initialise; NULL is ignored.
 * @since 0.2
 */
SGD_API void sgd_optim_hparam_init(sgd_optim_hparam *h);

/**
 * @brief ::sgd_optim_vtable::flags bit: the step callback is called twice
 *        per step for every range, with ::sgd_optim_step_args::pass 0 for all
 *        ranges and then 1 for all ranges (a method that needs a sum over the
 *        whole arena before it can update any parameter: D-Adaptation,
 *        Prodigy, DoG). The step counter and arguments are the same in both.
 * @since 0.2
 */
#define SGD_OPTIM_TWO_PASS 2u

/**
 * @brief ::sgd_optim_vtable::flags bit: the step callback applies gradient
 *        clipping itself, from ::sgd_optim_step_args::grad_scale and
 *        ::sgd_optim_step_args::clip_value, in the same pass as the update.
 *
 * Without this flag, when clipping is enabled the library writes the clipped
 * gradients into a buffer of its own (allocated when clipping is enabled) and
 * hands that to the step callback, with @c grad_scale 1 and @c clip_value 0.
 * The built-in optimizers set this flag.
 * @since 0.1
 */
#define SGD_OPTIM_FUSED_CLIP 1u

/**
 * @brief What the library tells a step callback besides the arrays and the
 *        learning rate. Filled by the library; read-only for the callback.
 *
 * Fields are only ever appended; a callback compiled against an older header
 * reads only the fields it knows (@c struct_size tells how many there are).
 * @since 0.1
 */
typedef struct sgd_optim_step_args {
    /** sizeof(sgd_optim_step_args) as the library was compiled. */
    uint32_t struct_size;
    /** Index of the parameter group this range belongs to (0: the default group). */
    uint32_t group;
    /**
     * Which call of this step this is: the library calls @c step once per
     * range, @c call = 0 for the first and @c calls - 1 for the last, so an
     * optimizer can do per-step work once (e.g. latch a flag at the first
     * call and update it at the last).
     */
    uint32_t call;
    /** How many calls this step makes (the number of ranges; at least 1). */
    uint32_t calls;
    /**
     * The number of this update, counting from 1: 1 at the first update after
     * creation or sgd_optim_reset(). Skipped steps are not counted. Adam's bias
     * correction and Adagrad's lr_decay use it.
     */
    int64_t step;
    /** Offset of @c params[0] in the optimizer's arena of @c n parameters. */
    size_t offset;
    /** The group's weight decay (>= 0); how it applies is the optimizer's choice. */
    double weight_decay;
    /**
     * Only with ::SGD_OPTIM_FUSED_CLIP: multiply each gradient by this after
     * value clipping (norm clipping; 1 when the norm is within its bound).
     * Otherwise always 1.
     */
    double grad_scale;
    /**
     * Only with ::SGD_OPTIM_FUSED_CLIP: clamp each gradient to
     * [-clip_value, clip_value] before scaling; 0 means no value clipping.
     * Otherwise always 0.
     */
    double clip_value;
    /**
     * With ::SGD_OPTIM_TWO_PASS: 0 in the first pass over the ranges, 1 in
     * the second. Otherwise 0.
     * @since 0.2
     */
    uint32_t pass;
    /** Reserved; 0. @since 0.2 */
    uint32_t reserved;
    /** The learning rate handed to sgd_optim_step(), before the group's multiplier. @since 0.2 */
    double base_lr;
    /** The group's learning-rate multiplier (the callback's @c lr is base_lr * lr_scale). @since 0.2 */
    double lr_scale;
    /**
     * The sum of squares of the whole arena's gradients after clipping
     * (the squared global norm that the step uses), or NaN when the step
     * skipped the gradient scan (see sgd_optim_step()).
     * @since 0.2
     */
    double grad_sumsq;
} sgd_optim_step_args;

/**
 * @brief An optimizer's functions: what host code fills in to plug its own
 *        optimizer into libsgdlab, and what the built-ins fill in too.
 *
 * Initialise it with sgd_optim_vtable_init(), then set @c name, @c n_slots,
 * @c step and whichever optional members you need. sgd_optim_new_custom()
 * copies the first @c struct_size bytes of it (and the strings it points to)
 * into a zeroed vtable of its own, so a host compiled against an older header
 * keeps working when members are appended; a larger @c struct_size (a host
 * compiled against a newer header) is accepted and the members this library
 * does not know are ignored.
 *
 * Every callback takes the @c user pointer given to sgd_optim_new_custom() as
 * its last argument, and returns 0 on success. A callback's failure is
 * reported as its return value when that is a negative ::sgd_status code
 * (e.g. ::SGD_ENOTFOUND from @c set_hparam for a name it does not know, or
 * ::SGD_ERANGE for a value it refuses), and as ::SGD_ECALLBACK otherwise; the
 * library's message names the optimizer, the callback and the value returned.
 * @since 0.1
 */
typedef struct sgd_optim_vtable {
    /** sizeof(sgd_optim_vtable) as the host compiled it; set by sgd_optim_vtable_init(). */
    uint32_t struct_size;
    /** Bit set of ::SGD_OPTIM_FUSED_CLIP; 0 by default. */
    uint32_t flags;
    /**
     * The optimizer's name (1 to ::SGD_OPTIM_MAX_NAME bytes of letters,
     * digits, '_' and '-'); copied. Required.
     */
    const char *name;
    /**
     * How many state floats the optimizer needs per parameter: the library
     * allocates this many slots, each one flat 64-byte-aligned array of @c n
     * floats, zero-filled. 0 to ::SGD_OPTIM_MAX_SLOTS.
     */
    uint32_t n_slots;
    /**
     * How many doubles of scalar state (other than the step counter, which the
     * library keeps) the optimizer exports and imports through
     * @c export_scalars and @c import_scalars. 0 to ::SGD_OPTIM_MAX_SCALARS.
     */
    uint32_t n_scalars;
    /**
     * Names of the @c n_slots slots, as state arrays are named on export
     * (e.g. "exp_avg"); copied; distinct, and none may be "step" or
     * "scalars". NULL names them "slot0", "slot1"...
     */
    const char *const *slot_names;
    /**
     * Optional. Sets the initial state after the slots were zero-filled: when
     * the optimizer is created and by sgd_optim_reset(), so it should also
     * reset any scalar state. @p slots holds @c n_slots pointers to arrays of
     * @p n floats. NULL leaves them zero.
     */
    int (*init)(float *const *slots, size_t n, void *user);
    /**
     * Required. Updates @p n parameters from their gradients at learning
     * rate @p lr (the step's learning rate times the group's multiplier).
     * @p params, @p grads and each of the @c n_slots arrays in @p slots point
     * at the same offset (@c args->offset) of their arenas; the library calls
     * this once per parameter group range, in increasing order of offset, and
     * only when the gradients passed the non-finite check. It must not
     * allocate or keep the pointers.
     */
    int (*step)(float *params, const float *grads, float *const *slots, size_t n, double lr,
                const sgd_optim_step_args *args, void *user);
    /** Optional (required if @c n_scalars > 0). Writes the @p count scalar state values into @p out. */
    int (*export_scalars)(double *out, size_t count, void *user);
    /**
     * Optional (required if @c n_scalars > 0). Replaces the scalar state with
     * the @p count values in @p in (from @c export_scalars); may refuse them.
     */
    int (*import_scalars)(const double *in, size_t count, void *user);
    /**
     * Optional. Sets the hyperparameter @p name (e.g. "momentum") to @p value
     * at run time; return ::SGD_ENOTFOUND for a name the optimizer does not
     * have and ::SGD_ERANGE for a value it refuses (leaving it unchanged).
     * "lr" and "weight_decay" are the library's and never reach it.
     */
    int (*set_hparam)(const char *name, double value, void *user);
    /** Optional. Reads the hyperparameter @p name into @p value; ::SGD_ENOTFOUND if unknown. */
    int (*get_hparam)(const char *name, double *value, void *user);
    /**
     * Optional. Called once by sgd_optim_free() to release @c user. Not called
     * when sgd_optim_new_custom() fails: the host still owns @c user then.
     */
    void (*destroy)(void *user);
} sgd_optim_vtable;

/**
 * @brief Zeroes @p vt and sets its @c struct_size.
 * @param vt The vtable to initialise; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_optim_vtable_init(sgd_optim_vtable *vt);

/* ------------------------------------------------------------- creation */

/**
 * @brief Creates a built-in optimizer from a textual spec.
 *
 * The spec is `kind[:key=value{,key=value}]`, e.g.
 * `"adam:lr=1e-3,beta2=0.99,amsgrad=1"`. Kinds are `sgd`, `adagrad`,
 * `rmsprop`, `adam` and `adamw`, and since 0.2 `nadam`, `radam`, `adamax`,
 * `adadelta`, `rprop`, `asgd`, `lion`, `lamb`, `lars`, `sgd_sf`, `adamw_sf`,
 * `prodigy`, `dadapt_adam`, `dadapt_sgd` and `dog` (sgd_optim_builtin_name()
 * lists them, sgd_optim_kind_hparam() their keys); keys are torch.optim's
 * (or the reference implementation's) argument names, except that tuples
 * are split: Adam's `betas` are `beta1` and `beta2`, Rprop's `etas` and
 * `step_sizes` are `eta_minus`, `eta_plus`, `step_size_min`, `step_size_max`. Absent keys take torch 1.13's
 * defaults; `sgd` has no default `lr` (as in torch) and needs one. The spec
 * may also set the gradient hygiene (`clip_norm`, `clip_value`,
 * `nonfinite=skip|error|apply`, `max_skips`; see ::sgd_optim_hygiene).
 * docs/optim.md lists every key, its default and its range.
 *
 * Unknown keys, malformed numbers and out-of-range values are refused with
 * a message naming the key and the value.
 *
 * @param out   Receives the optimizer; set to NULL on failure.
 * @param spec  The NUL-terminated spec.
 * @param n     Number of parameters in the arena it will update (may be 0).
 * @param alloc The allocator for all its memory, copied; NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL for NULL arguments or a malformed spec;
 *         ::SGD_ENOTFOUND for an unknown kind or key; ::SGD_ERANGE for a value
 *         out of its range; ::SGD_EOVERFLOW if the state would not fit in
 *         memory's address space; ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_new(sgd_optim **out, const char *spec, size_t n, const sgd_allocator *alloc);

/**
 * @brief Creates an optimizer from a host-supplied vtable.
 *
 * Its base learning rate ("lr") and default weight decay start at 0 and are
 * set with sgd_optim_set(). The vtable's @c init is called once the slots are
 * allocated and zeroed.
 *
 * @param out   Receives the optimizer; set to NULL on failure.
 * @param vt    The vtable; copied (see ::sgd_optim_vtable).
 * @param user  Passed as the last argument of every callback; owned by the
 *              host, released by the vtable's @c destroy when the optimizer
 *              is freed.
 * @param n     Number of parameters in the arena it will update (may be 0).
 * @param alloc The allocator for all its memory, copied; NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL or incomplete vtable (no name, no
 *         step, a bad name, too many slots, missing scalar callbacks, a
 *         struct_size smaller than the struct's first release);
 *         ::SGD_ECALLBACK or the callback's status if @c init fails;
 *         ::SGD_EOVERFLOW; ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_new_custom(sgd_optim **out, const sgd_optim_vtable *vt, void *user, size_t n,
                                        const sgd_allocator *alloc);

/**
 * @brief The optional functions of an optimizer added in 0.2, passed next to
 *        its ::sgd_optim_vtable to sgd_optim_new_custom_ext(): a listing of
 *        its hyperparameters with their bounds, and an evaluation point.
 *
 * A struct of its own, not members appended to ::sgd_optim_vtable: a host
 * built against 0.1 calls sgd_optim_vtable_init() on a vtable of the 0.1
 * size, so that function may never write more. Initialise with
 * sgd_optim_vtable_ext_init(); the library copies the first @c struct_size
 * bytes. Its callbacks take the same @c user as the vtable's.
 * @since 0.2
 */
typedef struct sgd_optim_vtable_ext {
    /** sizeof(sgd_optim_vtable_ext) as the host compiled it; set by sgd_optim_vtable_ext_init(). */
    uint32_t struct_size;
    /**
     * How many hyperparameters @c describe_hparam describes (besides "lr"
     * and "weight_decay", which are the library's); at most
     * ::SGD_OPTIM_MAX_HPARAMS. 0 without a listing.
     */
    uint32_t n_hparams;
    /**
     * Optional (required if @c n_hparams > 0). Describes hyperparameter
     * @p index (0 to n_hparams - 1) into @p info, which the library has
     * initialised with sgd_optim_hparam_init(); @c info->name must then
     * point at a NUL-terminated name, which the library copies. Called
     * when the optimizer is created, never after: the listing is fixed for
     * its lifetime. With a listing, sgd_optim_set() checks a listed name's
     * value against its bounds (and ::SGD_OPTIM_HPARAM_FIXED,
     * ::SGD_OPTIM_HPARAM_BOOL, ::SGD_OPTIM_HPARAM_INTEGER) before
     * @c set_hparam sees it, with a message naming the key and the value.
     */
    int (*describe_hparam)(uint32_t index, sgd_optim_hparam *info, void *user);
    /**
     * Optional. Moves @p params between the point where gradients are
     * taken (@p to_eval 0) and the point where the model should be
     * evaluated (@p to_eval 1), for methods where they differ
     * (schedule-free); see sgd_optim_eval_point(). @p params and @p slots
     * cover the whole arena of @p n floats. NULL: the two points are the same.
     */
    int (*swap)(float *params, float *const *slots, size_t n, int32_t to_eval, void *user);
    /**
     * Optional. Accepts (0) or refuses (::SGD_ERANGE, with a message naming
     * the slot and the index through the host's own means, or none) the
     * values sgd_optim_state_import() is about to put into slot @p slot
     * (0 to n_slots - 1): @p data holds @p n floats in host byte order, the
     * slot's values @p offset to @p offset + @p n - 1 (the check is called
     * over consecutive pieces of at most 1024 values, before anything is
     * copied). For
     * slots with a domain, as a second moment's: NaN and infinity should
     * pass, since a snapshot of a diverged state restores as it was saved.
     * NULL: any values. The built-in optimizers refuse a negative number in
     * a slot torch names as a sum of squares or a step size (`exp_avg_sq`,
     * `max_exp_avg_sq`, `sum`, `square_avg`, `acc_delta`, `exp_inf`,
     * `step_size`).
     */
    int (*check_slot)(uint32_t slot, const float *data, size_t offset, size_t n, void *user);
} sgd_optim_vtable_ext;

/**
 * @brief Zeroes @p ext and sets its @c struct_size.
 * @param ext The struct to initialise; NULL is ignored.
 * @since 0.2
 */
SGD_API void sgd_optim_vtable_ext_init(sgd_optim_vtable_ext *ext);

/**
 * @brief Creates an optimizer from a host-supplied vtable and its 0.2
 *        extension (a hyperparameter listing, an evaluation point); the
 *        built-ins are made through it.
 *
 * As sgd_optim_new_custom(), which is this with @p ext NULL.
 * @param out   Receives the optimizer; set to NULL on failure.
 * @param vt    The vtable; copied.
 * @param ext   The extension; copied (first @c struct_size bytes); NULL for none.
 * @param user  As for sgd_optim_new_custom().
 * @param n     Number of parameters in the arena it will update (may be 0).
 * @param alloc The allocator for all its memory, copied; NULL for malloc/free.
 * @return As sgd_optim_new_custom(); also ::SGD_EINVAL for an extension
 *         whose @c struct_size is unknown, whose listing is too long or has
 *         no @c describe_hparam, or whose descriptions are invalid (a bad
 *         name, bounds that are not a range, a name given twice); a
 *         @c describe_hparam's status.
 * @since 0.2
 */
SGD_API sgd_status sgd_optim_new_custom_ext(sgd_optim **out, const sgd_optim_vtable *vt,
                                            const sgd_optim_vtable_ext *ext, void *user, size_t n,
                                            const sgd_allocator *alloc);

/**
 * @brief Frees an optimizer, its state, and (through the vtable's @c destroy)
 *        the host's @c user.
 * @param o The optimizer; NULL does nothing.
 * @since 0.1
 */
SGD_API void sgd_optim_free(sgd_optim *o);

/**
 * @brief The optimizer's name: the built-in's kind ("adam") or the vtable's name.
 * @param o The optimizer.
 * @return A string owned by @p o, valid until it is freed; "" if @p o is NULL.
 * @since 0.1
 */
SGD_API const char *sgd_optim_name(const sgd_optim *o);

/**
 * @brief The number of parameters the optimizer updates.
 * @param o The optimizer.
 * @return @c n as given at creation; 0 if @p o is NULL.
 * @since 0.1
 */
SGD_API size_t sgd_optim_size(const sgd_optim *o);

/**
 * @brief The names of the built-in optimizers, one by one.
 * @param i Index from 0.
 * @return "sgd", "adagrad", "rmsprop", "adam", "adamw" for i = 0..4, then
 *         the kinds added in 0.2 (docs/optim.md lists them all); NULL after
 *         the last. Static strings.
 * @since 0.1
 */
SGD_API const char *sgd_optim_builtin_name(size_t i);

/* ------------------------------------------------------ hyperparameter listing */

/**
 * @brief How many hyperparameters a built-in kind has, "lr" and
 *        "weight_decay" included (they are always the first two).
 * @param kind A built-in kind's name ("adam").
 * @return The count; 0 for NULL or an unknown kind.
 * @since 0.2
 */
SGD_API size_t sgd_optim_kind_hparam_count(const char *kind);

/**
 * @brief Describes hyperparameter @p index of a built-in kind: its name,
 *        the default a spec gets, its bounds and flags, before any optimizer
 *        exists (for a search or a user interface that builds specs).
 * @param kind  A built-in kind's name.
 * @param index 0 to sgd_optim_kind_hparam_count() - 1.
 * @param out   Receives the description; its @c struct_size must be set
 *              (sgd_optim_hparam_init()). Its name is a static string.
 * @return ::SGD_OK; ::SGD_EINVAL for NULL arguments or an unknown
 *         @c struct_size; ::SGD_ENOTFOUND for an unknown kind or an index
 *         past the last.
 * @since 0.2
 */
SGD_API sgd_status sgd_optim_kind_hparam(const char *kind, size_t index, sgd_optim_hparam *out);

/**
 * @brief How many hyperparameters an optimizer lists: "lr" and
 *        "weight_decay", then those its ::sgd_optim_vtable_ext describes (a built-in's
 *        kind's, with the flags of this configuration: sgd made with
 *        momentum=0 lists momentum as ::SGD_OPTIM_HPARAM_FIXED).
 * @param o The optimizer.
 * @return The count (at least 2); 0 if @p o is NULL.
 * @since 0.2
 */
SGD_API size_t sgd_optim_hparam_count(const sgd_optim *o);

/**
 * @brief Describes an optimizer's hyperparameter @p index (see
 *        sgd_optim_hparam_count()); the current value is sgd_optim_get()'s.
 * @param o     The optimizer.
 * @param index 0 to sgd_optim_hparam_count() - 1.
 * @param out   Receives the description; its @c struct_size must be set.
 *              Its name is owned by @p o.
 * @return ::SGD_OK; ::SGD_EINVAL for NULL arguments or an unknown
 *         @c struct_size; ::SGD_ENOTFOUND for an index past the last.
 * @since 0.2
 */
SGD_API sgd_status sgd_optim_hparam_describe(const sgd_optim *o, size_t index, sgd_optim_hparam *out);

/**
 * @brief The bounds of an optimizer's hyperparameter by name (zstd's
 *        ZSTD_cParam_getBounds()).
 * @param o    The optimizer.
 * @param name The hyperparameter's name.
 * @param out  Receives the description; its @c struct_size must be set.
 * @return ::SGD_OK; ::SGD_EINVAL for NULL arguments or an unknown
 *         @c struct_size; ::SGD_ENOTFOUND if the optimizer lists no such name.
 * @since 0.2
 */
SGD_API sgd_status sgd_optim_hparam_bounds(const sgd_optim *o, const char *name, sgd_optim_hparam *out);

/**
 * @brief The name of the optimizer's momentum coefficient: its listed
 *        hyperparameter with ::SGD_OPTIM_HPARAM_MOMENTUM that can change at
 *        run time (not ::SGD_OPTIM_HPARAM_FIXED).
 * @param o The optimizer.
 * @return The name ("momentum", "beta1"), owned by @p o; NULL if it has
 *         none (or @p o is NULL).
 * @since 0.2
 */
SGD_API const char *sgd_optim_momentum_name(const sgd_optim *o);

/* ------------------------------------------------------- evaluation point */

/**
 * @brief Moves the parameters to the point where the model should be
 *        evaluated (@p eval = 1) or back to where gradients are taken
 *        (@p eval = 0).
 *
 * For most optimizers the two are the same and this does nothing.
 * Schedule-free methods (`sgd_sf`, `adamw_sf`) take gradients at an
 * interpolation y of their iterate z and their average x, and the model to
 * evaluate, checkpoint for use or ship is x: call this with 1 before a
 * validation pass and with 0 before the next sgd_optim_step() (the
 * reference implementation's optimizer.eval() and optimizer.train()).
 * Calling it twice with the same value does nothing the second time;
 * sgd_optim_step() refuses to run at the evaluation point (::SGD_ESTATE).
 * sgd_optim_reset() returns to the training point without touching @p params.
 * @param o      The optimizer.
 * @param params The parameter arena (sgd_optim_size() floats), changed in place.
 * @param eval   1: to the evaluation point; 0: to the training point.
 * @return ::SGD_OK; ::SGD_EINVAL for NULL arguments or @p eval not 0 or 1;
 *         a host @c swap's status or ::SGD_ECALLBACK.
 * @since 0.2
 */
SGD_API sgd_status sgd_optim_eval_point(sgd_optim *o, float *params, int32_t eval);

/**
 * @brief Whether the optimizer's parameters are at the evaluation point
 *        (sgd_optim_eval_point()).
 * @param o The optimizer.
 * @return 1 if they are, 0 if not (or @p o is NULL).
 * @since 0.2
 */
SGD_API int32_t sgd_optim_at_eval_point(const sgd_optim *o);

/**
 * @brief Whether the optimizer has an evaluation point distinct from its
 *        training point (an ::sgd_optim_vtable_ext::swap: the schedule-free kinds).
 * @param o The optimizer.
 * @return 1 or 0 (0 if @p o is NULL).
 * @since 0.2
 */
SGD_API int32_t sgd_optim_has_eval_point(const sgd_optim *o);

/* ------------------------------------------------------------- tensors */

/**
 * @brief Tells the optimizer where the arena's tensors begin and end, so that
 *        no step call spans two tensors.
 *
 * Layer-wise methods (`lamb`, `lars`) compute one trust ratio per call of
 * the step callback: per tensor once this is set (as torch, where each
 * parameter tensor is its own), per group range otherwise. The model's
 * parameter listing (sgd_model_num_param_tensors(), sgd_model_param_info()) gives
 * the sizes in arena order; the trainer passes them itself. Splitting the
 * calls changes nothing for the element-wise kinds (bit for bit).
 * Configuration call: allocates; never between the steps of a timing-critical loop.
 * @param o     The optimizer.
 * @param sizes The tensors' sizes in arena order, each > 0, adding up to
 *              sgd_optim_size(); NULL with @p count 0 removes the boundaries.
 * @param count How many.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL optimizer, NULL sizes with
 *         count > 0, or a zero size; ::SGD_ERANGE if the sizes do not add up
 *         to the arena; ::SGD_ENOMEM (nothing changed).
 * @since 0.2
 */
SGD_API sgd_status sgd_optim_set_tensors(sgd_optim *o, const size_t *sizes, size_t count);

/* ------------------------------------------------------------- SIMD level */

/**
 * @brief The SIMD level of the optimizer kernels this process runs:
 *        "generic" (x86-64's SSE2, or the compiler's baseline elsewhere),
 *        "avx2" or "avx512".
 *
 * Chosen once, at the first call of any optimizer function that needs it,
 * from what the CPU supports; the environment variable SGDLAB_SIMD
 * (generic, avx2, avx512) caps it, for measurements. Every level computes the
 * same bits (the same C source, no FMA contraction).
 * @return A static string.
 * @since 0.2
 */
SGD_API const char *sgd_optim_simd_level(void);

/* ------------------------------------------------------------------ step */

/**
 * @brief What one sgd_optim_step() did. Optional output.
 *
 * Initialise it with sgd_optim_step_info_init() (which sets @c struct_size);
 * the library fills only the first @c struct_size bytes and leaves
 * @c struct_size as it is, so fields can be appended without breaking older
 * callers (see @ref versioned_structs).
 * @since 0.1
 */
typedef struct sgd_optim_step_info {
    /** sizeof(sgd_optim_step_info) as the caller compiled it; set by sgd_optim_step_info_init(). */
    uint32_t struct_size;
    /** 1 if the parameters and the state were updated, 0 if the step was skipped. */
    int32_t applied;
    /** 1 if the gradients held a NaN or an infinity. */
    int32_t nonfinite;
    /** 1 if norm or value clipping changed the gradients. */
    int32_t clipped;
    /** L2 norm of all the gradients before clipping (infinity or NaN if non-finite). */
    double grad_norm;
    /** Largest absolute gradient before clipping (ignores NaN). */
    double grad_max_abs;
    /** Factor the norm clipping scaled the gradients by (1 when not scaled). */
    double clip_scale;
    /** The step counter after this call (sgd_optim_get_step()). */
    int64_t step;
    /** Consecutive skipped steps so far, this one included (0 after an applied step). */
    int64_t consecutive_skips;
} sgd_optim_step_info;

/**
 * @brief Zeroes @p info and sets its @c struct_size.
 * @param info The struct to initialise; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_optim_step_info_init(sgd_optim_step_info *info);

/**
 * @brief One optimization step: updates @p params from @p grads at learning
 *        rate @p lr.
 *
 * In order: the gradients are scanned once (L2 norm, largest magnitude,
 * NaN/infinity), before anything is written. Non-finite gradients are then
 * handled by the hygiene's policy: ::SGD_NONFINITE_SKIP leaves the
 * parameters, the state and the step counter untouched and returns ::SGD_OK
 * with @c info->applied = 0 (or ::SGD_EDIVERGED once more than
 * @c max_consecutive_skips steps in a row were skipped);
 * ::SGD_NONFINITE_ERROR returns ::SGD_ENONFINITE, naming the first bad
 * element, and changes nothing; ::SGD_NONFINITE_APPLY goes on. (With
 * ::SGD_NONFINITE_APPLY, no clipping and @p info NULL nothing needs that
 * pass, and the step skips it: the update alone, one pass over the arrays,
 * as torch's unchecked step; non-finite gradients are then not counted.) Then the
 * gradients are clipped (by value, then by global norm, as they are read: @p
 * grads itself is never written), the step counter is incremented, and the
 * optimizer's update runs over each parameter group's range with the group's
 * learning rate (@p lr times its multiplier) and weight decay.
 *
 * Allocates nothing. @p params and @p grads hold sgd_optim_size() floats and
 * must not overlap.
 *
 * @param o      The optimizer.
 * @param params The parameter arena, updated in place.
 * @param grads  The gradients, read only.
 * @param lr     The learning rate for this step (>= 0, finite): the scheduler's
 *               value; the optimizer's own "lr" is not used here.
 * @param info   Optional (NULL ok): filled with what happened when the call
 *               returns ::SGD_OK, ::SGD_ENONFINITE or ::SGD_EDIVERGED.
 * @return ::SGD_OK whether the update was applied or skipped (see
 *         @c info->applied); ::SGD_EINVAL for NULL arguments or a
 *         @c struct_size of @p info smaller than the struct's first release
 *         (::SGD_ERANGE in 0.1); ::SGD_ERANGE for a negative or non-finite
 *         @p lr; ::SGD_ENONFINITE (policy error);
 *         ::SGD_EDIVERGED (too many consecutive skips); the callback's status
 *         or ::SGD_ECALLBACK if a host step fails (the parameters may then be
 *         partly updated and the counter is not incremented).
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_step(sgd_optim *o, float *params, const float *grads, double lr,
                                  sgd_optim_step_info *info);

/* -------------------------------------------------------- hyperparameters */

/**
 * @brief Sets a hyperparameter by name at run time, e.g. "momentum" or
 *        "beta1" (which a one-cycle schedule cycles).
 *
 * "lr" is the optimizer's base learning rate (what a scheduler starts from;
 * sgd_optim_step() takes the learning rate of each step explicitly) and
 * "weight_decay" the default group's weight decay: both are the library's,
 * for every optimizer. Other names go to the optimizer: the built-ins accept
 * their spec keys that do not change the shape of their state (docs/optim.md;
 * e.g. sgd's "momentum" can change but only if it was created with momentum,
 * since the buffer exists only then; "amsgrad" and "centered" are fixed),
 * booleans as 0 or 1. The new value is range-checked against the others (sgd
 * refuses dampening with nesterov) and, if refused, nothing changes.
 *
 * @param o     The optimizer.
 * @param name  The hyperparameter's name.
 * @param value The new value.
 * @return ::SGD_OK; ::SGD_EINVAL for NULL arguments; ::SGD_ENOTFOUND for a
 *         name the optimizer does not have; ::SGD_ERANGE for a value out of
 *         range (or NaN); ::SGD_ESTATE for a change the state cannot follow;
 *         a host callback's status or ::SGD_ECALLBACK.
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_set(sgd_optim *o, const char *name, double value);

/**
 * @brief Reads a hyperparameter by name (see sgd_optim_set()).
 * @param o     The optimizer.
 * @param name  The hyperparameter's name.
 * @param value Receives the value (booleans as 0 or 1); unchanged on failure.
 * @return ::SGD_OK; ::SGD_EINVAL for NULL arguments; ::SGD_ENOTFOUND for an
 *         unknown name; a host callback's status or ::SGD_ECALLBACK.
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_get(const sgd_optim *o, const char *name, double *value);

/* ------------------------------------------------------------ step counter */

/**
 * @brief Reads the step counter: the number of updates applied since creation
 *        or sgd_optim_reset() (or as last set).
 * @param o    The optimizer.
 * @param step Receives the counter.
 * @return ::SGD_OK; ::SGD_EINVAL for NULL arguments.
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_get_step(const sgd_optim *o, int64_t *step);

/**
 * @brief The largest step counter an optimizer accepts: 2^53 (exact in a
 *        double, which the bias corrections use), far beyond any run. A
 *        counter at it takes no further step (::SGD_EOVERFLOW).
 * @since 0.2
 */
#define SGD_OPTIM_MAX_STEP ((int64_t)1 << 53)

/**
 * @brief Sets the step counter; the next update is number @p step + 1.
 * @param o    The optimizer.
 * @param step The new counter, in [0, ::SGD_OPTIM_MAX_STEP].
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL optimizer; ::SGD_ERANGE for a
 *         negative @p step or one above ::SGD_OPTIM_MAX_STEP (since 0.2:
 *         0.1 accepted any, and the next step overflowed).
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_set_step(sgd_optim *o, int64_t step);

/* ------------------------------------------------------ parameter groups */

/**
 * @brief Makes a range of the arena a parameter group with its own
 *        learning-rate multiplier and weight decay.
 *
 * Parameters that no group covers belong to the default group, number 0,
 * whose multiplier is 1 (sgd_optim_set_group() changes it) and whose weight
 * decay is the optimizer's "weight_decay". Groups may not overlap.
 * Configuration call: may allocate; never call it between the steps of a
 * timing-critical loop.
 *
 * @param o            The optimizer.
 * @param offset       First parameter of the range.
 * @param count        Number of parameters, > 0; offset + count <= sgd_optim_size().
 * @param lr_scale     Multiplier of the step's learning rate in this group (>= 0, finite).
 * @param weight_decay The group's weight decay (>= 0, finite); 0 for none.
 * @param index        Optional (NULL ok): receives the group's number (1, 2, ...).
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL optimizer, an empty range or one
 *         overlapping another group; ::SGD_ERANGE for a range past the arena
 *         or a bad multiplier or decay; ::SGD_ENOMEM (nothing changed).
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_add_group(sgd_optim *o, size_t offset, size_t count, double lr_scale,
                                       double weight_decay, size_t *index);

/**
 * @brief The number of parameter groups, the default group included.
 * @param o The optimizer.
 * @return 1 + the number of groups added; 0 if @p o is NULL.
 * @since 0.1
 */
SGD_API size_t sgd_optim_group_count(const sgd_optim *o);

/**
 * @brief Describes a parameter group. Any output pointer may be NULL.
 * @param o            The optimizer.
 * @param index        The group's number, 0 (default) to sgd_optim_group_count() - 1.
 * @param offset       Receives its first parameter (0 for the default group).
 * @param count        Receives its number of parameters (for the default
 *                     group: those no other group covers).
 * @param lr_scale     Receives its learning-rate multiplier.
 * @param weight_decay Receives its weight decay.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL optimizer; ::SGD_ENOTFOUND for
 *         an index past the last group.
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_get_group(const sgd_optim *o, size_t index, size_t *offset, size_t *count,
                                       double *lr_scale, double *weight_decay);

/**
 * @brief Changes a parameter group's learning-rate multiplier and weight decay.
 *
 * For group 0 the weight decay is the optimizer's "weight_decay" (the same
 * value sgd_optim_set() changes).
 * @param o            The optimizer.
 * @param index        The group's number.
 * @param lr_scale     The new multiplier (>= 0, finite).
 * @param weight_decay The new weight decay (>= 0, finite).
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL optimizer; ::SGD_ENOTFOUND for
 *         an unknown index; ::SGD_ERANGE for a bad value (nothing changed).
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_set_group(sgd_optim *o, size_t index, double lr_scale, double weight_decay);

/* ------------------------------------------------------- gradient hygiene */

/**
 * @brief What sgd_optim_step() does with non-finite (NaN or infinite) gradients.
 * @since 0.1
 */
typedef enum sgd_nonfinite_policy {
    /** Skip the step: parameters, state and step counter untouched; counted. The default. */
    SGD_NONFINITE_SKIP = 0,
    /** Refuse the step with ::SGD_ENONFINITE; nothing changes. */
    SGD_NONFINITE_ERROR = 1,
    /** Apply the update anyway (the parameters become non-finite); counted, except in steps that skip the gradient pass (see sgd_optim_step()). */
    SGD_NONFINITE_APPLY = 2
} sgd_nonfinite_policy;

/**
 * @brief Gradient clipping and the non-finite policy of an optimizer.
 *
 * Initialise with sgd_optim_hygiene_init() (which sets the defaults: no
 * clipping, skip non-finite steps, at most 10 in a row), change fields, and
 * pass to sgd_optim_set_hygiene(). Fields are only ever appended.
 * @since 0.1
 */
typedef struct sgd_optim_hygiene {
    /** sizeof(sgd_optim_hygiene) as the caller compiled it; set by sgd_optim_hygiene_init(). */
    uint32_t struct_size;
    /** An ::sgd_nonfinite_policy value. */
    int32_t nonfinite;
    /**
     * Clip the global L2 norm of the gradients to this (as
     * torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when
     * that is below 1); 0 disables. >= 0, finite.
     */
    double clip_norm;
    /**
     * Clamp each gradient to [-clip_value, clip_value] (as
     * torch.nn.utils.clip_grad_value_), before norm clipping; 0 disables.
     * >= 0, finite.
     */
    double clip_value;
    /**
     * With ::SGD_NONFINITE_SKIP: the step that would be skipped for the
     * (max_consecutive_skips + 1)-th time in a row fails with ::SGD_EDIVERGED
     * instead (still changing nothing). 0 means no limit. Default 10.
     */
    uint32_t max_consecutive_skips;
} sgd_optim_hygiene;

/**
 * @brief Sets @p h to the defaults: no clipping, ::SGD_NONFINITE_SKIP, at most
 *        10 consecutive skips.
 * @param h The struct to initialise; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_optim_hygiene_init(sgd_optim_hygiene *h);

/**
 * @brief Sets the gradient hygiene of an optimizer.
 *
 * Enabling clipping on a host optimizer without ::SGD_OPTIM_FUSED_CLIP
 * allocates a gradient buffer of sgd_optim_size() floats (once).
 * @param o The optimizer.
 * @param h The settings; the first @c h->struct_size bytes are read.
 * @return ::SGD_OK; ::SGD_EINVAL for NULL arguments, a @c struct_size smaller
 *         than the struct's first release or larger than this library's, an unknown
 *         policy; ::SGD_ERANGE for a negative or
 *         non-finite clip bound; ::SGD_ENOMEM (nothing changed).
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_set_hygiene(sgd_optim *o, const sgd_optim_hygiene *h);

/**
 * @brief Reads the gradient hygiene of an optimizer.
 * @param o The optimizer.
 * @param h Receives the settings as far as its @c struct_size goes (set by
 *          sgd_optim_hygiene_init()), which is left as it is.
 * @return ::SGD_OK; ::SGD_EINVAL for NULL arguments or a @c struct_size smaller
 *         than the struct's first release.
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_get_hygiene(const sgd_optim *o, sgd_optim_hygiene *h);

/**
 * @brief Counters of what the optimizer's steps did since creation (not reset
 *        by sgd_optim_reset(), not part of the exported state).
 *
 * Initialise it with sgd_optim_stats_init() (or set @c struct_size to its
 * sizeof); sgd_optim_get_stats() fills what both sides know and leaves
 * @c struct_size as it is (see @ref versioned_structs).
 * @since 0.1
 */
typedef struct sgd_optim_stats {
    /** sizeof(sgd_optim_stats) as the caller compiled it; set it before sgd_optim_get_stats(). */
    uint32_t struct_size;
    /** Reserved; 0. */
    uint32_t reserved;
    /** Steps whose update was applied. */
    int64_t applied;
    /** Steps skipped for non-finite gradients. */
    int64_t skipped;
    /** Steps skipped in a row, up to now (0 after an applied step). */
    int64_t consecutive_skips;
    /** Steps whose gradients were non-finite, whatever the policy did. */
    int64_t nonfinite;
    /** Applied steps whose gradients clipping changed. */
    int64_t clipped;
} sgd_optim_stats;

/**
 * @brief Zeroes @p s and sets its @c struct_size, ready for sgd_optim_get_stats().
 *
 * Inline, so that the size it writes is that of the headers the program is
 * built with (see @ref versioned_structs).
 * @param s The struct to initialise; NULL is ignored.
 * @since 0.2
 */
static inline void sgd_optim_stats_init(sgd_optim_stats *s)
{
    SGD_OUTPUT_INIT(s);
}

/**
 * @brief Reads the step counters of an optimizer.
 * @param o     The optimizer.
 * @param stats Receives them as far as its @c struct_size goes (set by
 *              sgd_optim_stats_init()), which is left as it is.
 * @return ::SGD_OK; ::SGD_EINVAL for NULL arguments or a @c struct_size smaller
 *         than the struct's first release.
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_get_stats(const sgd_optim *o, sgd_optim_stats *stats);

/* ------------------------------------------------------------------ state */

/**
 * @brief Element types of exported state arrays.
 * @since 0.1
 */
typedef enum sgd_state_type {
    SGD_STATE_F32 = 1, /**< float (a state slot). */
    SGD_STATE_F64 = 2, /**< double (the optimizer's scalar state). */
    SGD_STATE_I64 = 3  /**< int64_t (the step counter). */
} sgd_state_type;

/**
 * @brief Resets the state as if the optimizer had just been created: slots
 *        zero-filled and the vtable's @c init called again (the built-ins
 *        reset their scalar state there), step counter 0. Hyperparameters,
 *        groups, hygiene and the counters of sgd_optim_get_stats() are kept.
 * @param o The optimizer.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL optimizer; a host @c init's
 *         status or ::SGD_ECALLBACK.
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_reset(sgd_optim *o);

/**
 * @brief The number of named state arrays: "step" (1 int64), then one per
 *        slot (n floats each, named as the optimizer names them, e.g.
 *        "exp_avg"), then "scalars" (doubles) if the optimizer has scalar state.
 * @param o The optimizer.
 * @return The count; 0 if @p o is NULL.
 * @since 0.1
 */
SGD_API size_t sgd_optim_state_count(const sgd_optim *o);

/**
 * @brief Describes state array @p index. Any output pointer may be NULL.
 * @param o      The optimizer.
 * @param index  0 to sgd_optim_state_count() - 1.
 * @param name   Receives its name (owned by @p o, valid until it is freed).
 * @param type   Receives its ::sgd_state_type.
 * @param length Receives its number of elements.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL optimizer; ::SGD_ENOTFOUND for an
 *         index past the last array.
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_state_describe(const sgd_optim *o, size_t index, const char **name, int32_t *type,
                                            size_t *length);

/**
 * @brief Finds a state array by name.
 * @param o     The optimizer.
 * @param name  The array's name.
 * @param index Receives its index.
 * @return ::SGD_OK; ::SGD_EINVAL for NULL arguments; ::SGD_ENOTFOUND if no
 *         array has that name.
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_state_find(const sgd_optim *o, const char *name, size_t *index);

/**
 * @brief Copies state array @p index into @p out.
 * @param o     The optimizer.
 * @param index Which array (sgd_optim_state_describe()).
 * @param out   Destination of @p bytes bytes.
 * @param bytes Exactly length * element size (4 for F32, 8 for F64 and I64).
 * @return ::SGD_OK; ::SGD_EINVAL for NULL arguments; ::SGD_ENOTFOUND for an
 *         unknown index; ::SGD_ESHAPE if @p bytes is not the array's size;
 *         a host @c export_scalars' status or ::SGD_ECALLBACK.
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_state_export(const sgd_optim *o, size_t index, void *out, size_t bytes);

/**
 * @brief A read-only view of a state slot, without copying it (for
 *        checkpoints that write large optimizer state straight from memory).
 * @param o     The optimizer.
 * @param index Which array (sgd_optim_state_describe()); only the slot arrays
 *              (::SGD_STATE_F32) have views.
 * @param data  Receives the slot's first element; valid until @p o is freed,
 *              and changed by every step and import.
 * @return ::SGD_OK; ::SGD_EINVAL for NULL arguments; ::SGD_ENOTFOUND for an
 *         unknown index; ::SGD_EUNSUPPORTED for the step counter and the scalar
 *         state (use sgd_optim_state_export()).
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_state_data(const sgd_optim *o, size_t index, const float **data);

/**
 * @brief Replaces state array @p index with @p bytes bytes from @p in (as
 *        sgd_optim_state_export() wrote them), for checkpoints and rollback.
 *
 * Whatever sgd_optim_state_export() wrote imports back unchanged, bit for
 * bit, including the NaN or infinite values of a state that diverged (a
 * step with ::SGD_NONFINITE_APPLY, or finite gradients whose squares
 * overflow): a snapshot restores what it saved. The step counter must be in
 * [0, ::SGD_OPTIM_MAX_STEP] and the optimizer checks its scalar state (a
 * built-in sgd's flag is 0 or 1). Since 0.2, a slot is checked by the
 * optimizer's sgd_optim_vtable_ext::check_slot: a built-in one refuses a
 * negative number in a slot that has a domain (a second moment or an
 * accumulator: `exp_avg_sq`, `max_exp_avg_sq`, Adagrad's `sum`, RMSprop's and
 * Adadelta's `square_avg`, `acc_delta`, Adamax's `exp_inf`, Rprop's
 * `step_size`; NaN and +inf pass: a diverged state's). Nothing changes if any
 * of these is refused. After importing every array
 * exported from another optimizer of the same spec and size, this one
 * continues exactly as that one would.
 * @param o     The optimizer.
 * @param index Which array.
 * @param in    Source of @p bytes bytes.
 * @param bytes Exactly length * element size.
 * @return ::SGD_OK; ::SGD_EINVAL for NULL arguments; ::SGD_ENOTFOUND for an
 *         unknown index; ::SGD_ESHAPE for a wrong size; ::SGD_ERANGE for a
 *         step out of range, a negative second moment or accumulator, or
 *         scalar state the optimizer refuses; a host
 *         @c import_scalars' status or ::SGD_ECALLBACK.
 * @since 0.1
 */
SGD_API sgd_status sgd_optim_state_import(sgd_optim *o, size_t index, const void *in, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* SGDLAB_OPTIM_H */
