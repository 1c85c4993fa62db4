/*
 * The first released size of every struct_size-versioned public struct.
 * Never installed. SPDX-License-Identifier: MIT
 *
 * A public struct that begins with `uint32_t struct_size` may grow at its end
 * (abi/suppressions.abignore lists them). A program built against older
 * headers passes the size it knows, which is never smaller than the struct's
 * first release; the library accepts any size from that one up:
 *
 * - input structs (options, vtables): sgd__options_copy / sgd__vtable_copy
 *   (core/internal.h) copy the caller's bytes over the library's defaults;
 * - output structs (what a getter fills): sgd__struct_fill copies what fits
 *   of the library's complete struct and leaves the caller's struct_size as
 *   it is;
 * - a struct_size below the first release is SGD_EINVAL, everywhere.
 *
 * The constants are the end of the struct's last member in its first
 * release, rounded up to the struct's alignment: sizeof of that release, on
 * every data model. tests/test_abi.c pins their LP64 values against the
 * released headers, so a member inserted anywhere but at the end, or one that
 * changes the struct's alignment, fails there. A struct added in a later
 * release gets its line here in the change that adds it, naming its last
 * member of that release.
 */
#ifndef SGDLAB_CORE_ABI_H
#define SGDLAB_CORE_ABI_H

#include "core/internal.h"
#include "sgdlab/sgdlab.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define SGD__END_OF(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))
#define SGD__FIRST_SIZE(type, last)                                                                          \
    ((SGD__END_OF(type, last) + _Alignof(type) - 1) / _Alignof(type) * _Alignof(type))

/** The first released size of `type` (a constant expression): SGD__FIRST(sgd_trainer_stats). */
#define SGD__FIRST(type) SGD__FIRST_##type

/*
 * A getter's last line: fills the caller's `dst` from the library's complete
 * struct `src` of `type` (sgd__struct_fill).
 *   return SGD__FILL(stats, &full, sgd_trainer_stats, fn, "stats");
 */
#define SGD__FILL(dst, src, type, fn, what)                                                                  \
    sgd__struct_fill((dst), (src), sizeof(type), SGD__FIRST(type), (fn), (what))

/*
 * The copies behind sgd__options_copy, sgd__vtable_copy and sgd__struct_fill
 * (core/options.c), with the function that reports a size they cannot take
 * as a parameter: libsgdlab passes sgd__err, libsgdlab-mpi (which cannot
 * reach libsgdlab's hidden symbols) its sgd__dist_err. Same rules, same
 * message, same status (SGD_EINVAL) in both libraries.
 */
typedef sgd_status (*sgd__errf)(sgd_status status, const char *fmt, ...) SGD__PRINTF(2, 3);

static inline uint32_t sgd__struct_size_of(const void *s)
{
    uint32_t size;
    memcpy(&size, s, sizeof size);
    return size;
}

static inline sgd_status sgd__struct_check_with(sgd__errf err, const void *s, size_t min_size, const char *fn,
                                                const char *what)
{
    uint32_t size = sgd__struct_size_of(s);
    if (size >= min_size)
        return SGD_OK;
    return err(SGD_EINVAL,
               "%s: %s: struct_size=%u is smaller than the struct's first release (%zu bytes); initialise the struct "
               "with its _init function",
               fn, what, (unsigned)size, min_size);
}

/* Input: `src` (not NULL) over `dst` (dst_size bytes of defaults); larger_ok: a newer caller's tail is ignored. */
static inline sgd_status sgd__struct_in_with(sgd__errf err, void *dst, size_t dst_size, const void *src,
                                             size_t min_size, bool larger_ok, const char *fn, const char *what)
{
    sgd_status st = sgd__struct_check_with(err, src, min_size, fn, what);
    if (st != SGD_OK)
        return st;
    uint32_t size = sgd__struct_size_of(src);
    if (size > dst_size && !larger_ok)
        return err(SGD_EINVAL,
                   "%s: %s: struct_size=%u is larger than this library's struct (%zu bytes): the program was built "
                   "against newer headers than the library it runs with",
                   fn, what, (unsigned)size, dst_size);
    memcpy(dst, src, size < dst_size ? size : dst_size);
    uint32_t own = (uint32_t)dst_size;
    memcpy(dst, &own, sizeof own);
    return SGD_OK;
}

/* Output: what fits of `src` (src_size bytes) into `dst`, dst's struct_size kept. */
static inline sgd_status sgd__struct_out_with(sgd__errf err, void *dst, const void *src, size_t src_size,
                                              size_t min_size, const char *fn, const char *what)
{
    sgd_status st = sgd__struct_check_with(err, dst, min_size, fn, what);
    if (st != SGD_OK)
        return st;
    size_t size = sgd__struct_size_of(dst);
    if (size > src_size)
        size = src_size;
    memcpy((char *)dst + sizeof(uint32_t), (const char *)src + sizeof(uint32_t), size - sizeof(uint32_t));
    return SGD_OK;
}

/*
 * Symbol-versioned compat inits (glibc's way). A struct_size-versioned struct
 * with an exported _init that grows in a release keeps the older init under
 * the older version node: a program built against 0.1's headers was linked to
 * name@SGDLAB_0.1 and passes a 0.1-sized struct, and the 0.2 init (which
 * memsets and fills sizeof of 0.2's struct) would write past its end. The
 * compat version runs the current init into a local and copies the first
 * released size only (struct_size = that size); programs built since link the
 * default, name@@SGDLAB_0.2. tests/check_compat_inits.py fails when a struct
 * with an exported 0.1 init has grown without it.
 *
 *   SGD__COMPAT_INIT(void, sgd_loader_options_init, sgd_loader_options, v0_1, "SGDLAB_0.1")
 *   void sgd_loader_options_init__v0_2(sgd_loader_options *o) { ...the current init... }
 *
 * and the version script lists the name in both nodes. The implementations
 * have names of their own (name__v0_1, name__v0_2), so that a static link
 * sees one `name`: the default version's. ret is void or sgd_status.
 *
 * The versions are set with gcc's symver attribute (gcc >= 10), which
 * survives link-time optimisation; `__asm__(".symver ...")` is used only
 * where the attribute is missing (clang 14): under gcc -flto the asm
 * directive names a symbol that LTO has renamed or dropped, and lto-wrapper
 * fails. .ci/lto-symver builds both with -Db_lto=true and checks the exports.
 * For the next release that grows a struct: __v0_2 becomes the compat of
 * SGDLAB_0.2, the current one __v0_3 with SGD__NODE_CURRENT.
 */
#define SGD__NODE_CURRENT "SGDLAB_0.2"

#if defined(__ELF__) && defined(__GNUC__) && defined(SGD_BUILDING_LIBRARY)
#if defined(__has_attribute)
#if __has_attribute(symver)
#define SGD__SYMVER_ATTRIBUTE 1
#endif
#endif
#ifdef SGD__SYMVER_ATTRIBUTE
#define SGD__SYMVER(impl, versioned) __attribute__((symver(versioned)))
#define SGD__SYMVER_ASM(impl, versioned)
#else
#define SGD__SYMVER(impl, versioned)
#define SGD__SYMVER_ASM(impl, versioned) __asm__(".symver " #impl ", " versioned);
#endif

#define SGD__COMPAT_INIT(ret, name, type, old, old_node)                                                     \
    SGD_API ret name##__v0_2(type *o) SGD__SYMVER(name##__v0_2, #name "@@" SGD__NODE_CURRENT);               \
    SGD_API ret name##__##old(type *o) SGD__SYMVER(name##__##old, #name "@" old_node);                      \
    SGD__SYMVER_ASM(name##__v0_2, #name "@@" SGD__NODE_CURRENT)                                              \
    SGD__SYMVER_ASM(name##__##old, #name "@" old_node)                                                       \
    ret name##__##old(type *o)                                                                               \
    {                                                                                                        \
        SGD__COMPAT_BODY_##ret(name##__v0_2, type, o)                                                        \
    }
#else /* no symbol versions (not ELF, or not the library being built): the current init under its name */
#define SGD__COMPAT_INIT(ret, name, type, old, old_node)                                                     \
    ret name##__v0_2(type *o);                                                                               \
    ret name(type *o)                                                                                        \
    {                                                                                                        \
        SGD__FORWARD_##ret(name##__v0_2, o)                                                                  \
    }
#endif

/* The first `first` bytes of the complete struct `full` into dst, struct_size = first. */
static inline void sgd__compat_fill(void *dst, const void *full, size_t first)
{
    memcpy(dst, full, first);
    uint32_t size = (uint32_t)first;
    memcpy(dst, &size, sizeof size);
}

#define SGD__COMPAT_BODY_void(cur, type, o)                                                                  \
    if ((o) == NULL)                                                                                         \
        return;                                                                                              \
    type full_;                                                                                              \
    cur(&full_);                                                                                             \
    sgd__compat_fill((o), &full_, SGD__FIRST(type));
#define SGD__COMPAT_BODY_sgd_status(cur, type, o)                                                            \
    if ((o) == NULL)                                                                                         \
        return cur(NULL);                                                                                    \
    type full_;                                                                                              \
    sgd_status st_ = cur(&full_);                                                                            \
    sgd__compat_fill((o), &full_, SGD__FIRST(type));                                                         \
    return st_;
#define SGD__FORWARD_void(cur, o) cur(o);
#define SGD__FORWARD_sgd_status(cur, o) return cur(o);

/* 0.1 */
#define SGD__FIRST_sgd_checkpoint_parts SGD__FIRST_SIZE(sgd_checkpoint_parts, trainer)
#define SGD__FIRST_sgd_ckpt_section_info SGD__FIRST_SIZE(sgd_ckpt_section_info, reserved)
#define SGD__FIRST_sgd_ckpt_tensor_info SGD__FIRST_SIZE(sgd_ckpt_tensor_info, offset)
#define SGD__FIRST_sgd_loader_options SGD__FIRST_SIZE(sgd_loader_options, seed)
#define SGD__FIRST_sgd_lrfind_options SGD__FIRST_SIZE(sgd_lrfind_options, progress_user)
#define SGD__FIRST_sgd_lrfind_sample SGD__FIRST_SIZE(sgd_lrfind_sample, slope)
#define SGD__FIRST_sgd_model_options SGD__FIRST_SIZE(sgd_model_options, blas_threads)
#define SGD__FIRST_sgd_monitor_counters SGD__FIRST_SIZE(sgd_monitor_counters, progress)
#define SGD__FIRST_sgd_monitor_event SGD__FIRST_SIZE(sgd_monitor_event, detail)
#define SGD__FIRST_sgd_monitor_options SGD__FIRST_SIZE(sgd_monitor_options, progress_slow_steps)
#define SGD__FIRST_sgd_optim_hygiene SGD__FIRST_SIZE(sgd_optim_hygiene, max_consecutive_skips)
#define SGD__FIRST_sgd_optim_stats SGD__FIRST_SIZE(sgd_optim_stats, clipped)
#define SGD__FIRST_sgd_optim_step_args SGD__FIRST_SIZE(sgd_optim_step_args, clip_value)
#define SGD__FIRST_sgd_optim_step_info SGD__FIRST_SIZE(sgd_optim_step_info, consecutive_skips)
#define SGD__FIRST_sgd_optim_vtable SGD__FIRST_SIZE(sgd_optim_vtable, destroy)
#define SGD__FIRST_sgd_param_info SGD__FIRST_SIZE(sgd_param_info, numel)
#define SGD__FIRST_sgd_sched_constant_options SGD__FIRST_SIZE(sgd_sched_constant_options, total_iters)
#define SGD__FIRST_sgd_sched_cosine_options SGD__FIRST_SIZE(sgd_sched_cosine_options, eta_min)
#define SGD__FIRST_sgd_sched_cosine_warm_restarts_options                                                    \
    SGD__FIRST_SIZE(sgd_sched_cosine_warm_restarts_options, eta_min)
#define SGD__FIRST_sgd_sched_cyclic_options SGD__FIRST_SIZE(sgd_sched_cyclic_options, max_momentum)
#define SGD__FIRST_sgd_sched_exponential_options SGD__FIRST_SIZE(sgd_sched_exponential_options, gamma)
#define SGD__FIRST_sgd_sched_linear_options SGD__FIRST_SIZE(sgd_sched_linear_options, total_iters)
#define SGD__FIRST_sgd_sched_multistep_options SGD__FIRST_SIZE(sgd_sched_multistep_options, gamma)
#define SGD__FIRST_sgd_sched_onecycle_options SGD__FIRST_SIZE(sgd_sched_onecycle_options, three_phase)
#define SGD__FIRST_sgd_sched_plateau_options SGD__FIRST_SIZE(sgd_sched_plateau_options, eps)
#define SGD__FIRST_sgd_sched_polynomial_options SGD__FIRST_SIZE(sgd_sched_polynomial_options, power)
#define SGD__FIRST_sgd_sched_step_options SGD__FIRST_SIZE(sgd_sched_step_options, gamma)
#define SGD__FIRST_sgd_sched_vtable SGD__FIRST_SIZE(sgd_sched_vtable, user)
#define SGD__FIRST_sgd_sched_warmup_options SGD__FIRST_SIZE(sgd_sched_warmup_options, total_iters)
#define SGD__FIRST_sgd_search_options SGD__FIRST_SIZE(sgd_search_options, user)
#define SGD__FIRST_sgd_search_trial SGD__FIRST_SIZE(sgd_search_trial, seconds)
#define SGD__FIRST_sgd_trainer_epoch SGD__FIRST_SIZE(sgd_trainer_epoch, seconds)
#define SGD__FIRST_sgd_trainer_event SGD__FIRST_SIZE(sgd_trainer_event, message)
#define SGD__FIRST_sgd_trainer_options SGD__FIRST_SIZE(sgd_trainer_options, progress_interval)
#define SGD__FIRST_sgd_trainer_progress SGD__FIRST_SIZE(sgd_trainer_progress, guard_scale)
#define SGD__FIRST_sgd_trainer_stats SGD__FIRST_SIZE(sgd_trainer_stats, epochs_without_improvement)

/* 0.2 */
#define SGD__FIRST_sgd_dist_options SGD__FIRST_SIZE(sgd_dist_options, reserved)
#define SGD__FIRST_sgd_dist_stats SGD__FIRST_SIZE(sgd_dist_stats, checks)
#define SGD__FIRST_sgd_generate_options SGD__FIRST_SIZE(sgd_generate_options, seed)
#define SGD__FIRST_sgd_optim_hparam SGD__FIRST_SIZE(sgd_optim_hparam, upper)
#define SGD__FIRST_sgd_optim_vtable_ext SGD__FIRST_SIZE(sgd_optim_vtable_ext, swap)
#define SGD__FIRST_sgd_tensor_info SGD__FIRST_SIZE(sgd_tensor_info, data)
#define SGD__FIRST_sgd_text_options SGD__FIRST_SIZE(sgd_text_options, max_bytes)
#define SGD__FIRST_sgd_text_split_options SGD__FIRST_SIZE(sgd_text_split_options, val_streams)
#define SGD__FIRST_sgd_trainer_comm SGD__FIRST_SIZE(sgd_trainer_comm, user)

#endif /* SGDLAB_CORE_ABI_H */
