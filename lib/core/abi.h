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

#include <stddef.h>

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

#endif /* SGDLAB_CORE_ABI_H */
