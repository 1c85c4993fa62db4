/*
 * Layout of the public structs, pinned (libfuse's test_abi.c). A failure here
 * means an ABI break: the SONAME must change, or the change must be undone.
 * Sizes are for LP64 (x86-64, aarch64); other data models skip the checks.
 */
#include "util/sgdtest.h"

#include "core/abi.h"
#include "sgdlab/dist.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define PIN_SIZE(type, size) assert_int_equal(sizeof(type), (size))
#define PIN_OFFSET(type, field, off) assert_int_equal(offsetof(type, field), (off))

static void test_core_structs(void **state)
{
    (void)state;
    PIN_SIZE(sgd_allocator, 32);
    PIN_OFFSET(sgd_allocator, malloc_fn, 0);
    PIN_OFFSET(sgd_allocator, realloc_fn, 8);
    PIN_OFFSET(sgd_allocator, free_fn, 16);
    PIN_OFFSET(sgd_allocator, user, 24);
    PIN_SIZE(sgd_status, 4);
}

static void test_sched_structs(void **state)
{
    (void)state;
    PIN_SIZE(sgd_sched_vtable, 80);
    PIN_OFFSET(sgd_sched_vtable, struct_size, 0);
    PIN_OFFSET(sgd_sched_vtable, name, 8);
    PIN_OFFSET(sgd_sched_vtable, lr, 16);
    PIN_OFFSET(sgd_sched_vtable, momentum, 24);
    PIN_OFFSET(sgd_sched_vtable, observe, 32);
    PIN_OFFSET(sgd_sched_vtable, state_size, 40);
    PIN_OFFSET(sgd_sched_vtable, state_export, 48);
    PIN_OFFSET(sgd_sched_vtable, state_import, 56);
    PIN_OFFSET(sgd_sched_vtable, destroy, 64);
    PIN_OFFSET(sgd_sched_vtable, user, 72);
    PIN_SIZE(sgd_sched_constant_options, 24);
    PIN_OFFSET(sgd_sched_constant_options, factor, 8);
    PIN_OFFSET(sgd_sched_constant_options, total_iters, 16);
    PIN_SIZE(sgd_sched_step_options, 24);
    PIN_OFFSET(sgd_sched_step_options, step_size, 8);
    PIN_OFFSET(sgd_sched_step_options, gamma, 16);
    PIN_SIZE(sgd_sched_multistep_options, 32);
    PIN_OFFSET(sgd_sched_multistep_options, milestones, 8);
    PIN_OFFSET(sgd_sched_multistep_options, n_milestones, 16);
    PIN_OFFSET(sgd_sched_multistep_options, gamma, 24);
    PIN_SIZE(sgd_sched_exponential_options, 16);
    PIN_OFFSET(sgd_sched_exponential_options, gamma, 8);
    PIN_SIZE(sgd_sched_polynomial_options, 24);
    PIN_OFFSET(sgd_sched_polynomial_options, total_iters, 8);
    PIN_OFFSET(sgd_sched_polynomial_options, power, 16);
    PIN_SIZE(sgd_sched_cosine_options, 24);
    PIN_OFFSET(sgd_sched_cosine_options, T_max, 8);
    PIN_OFFSET(sgd_sched_cosine_options, eta_min, 16);
    PIN_SIZE(sgd_sched_cosine_warm_restarts_options, 32);
    PIN_OFFSET(sgd_sched_cosine_warm_restarts_options, T_0, 8);
    PIN_OFFSET(sgd_sched_cosine_warm_restarts_options, T_mult, 16);
    PIN_OFFSET(sgd_sched_cosine_warm_restarts_options, eta_min, 24);
    PIN_SIZE(sgd_sched_linear_options, 32);
    PIN_OFFSET(sgd_sched_linear_options, start_factor, 8);
    PIN_OFFSET(sgd_sched_linear_options, end_factor, 16);
    PIN_OFFSET(sgd_sched_linear_options, total_iters, 24);
    PIN_SIZE(sgd_sched_onecycle_options, 96);
    PIN_OFFSET(sgd_sched_onecycle_options, max_lr, 8);
    PIN_OFFSET(sgd_sched_onecycle_options, total_steps, 16);
    PIN_OFFSET(sgd_sched_onecycle_options, epochs, 24);
    PIN_OFFSET(sgd_sched_onecycle_options, steps_per_epoch, 32);
    PIN_OFFSET(sgd_sched_onecycle_options, pct_start, 40);
    PIN_OFFSET(sgd_sched_onecycle_options, anneal_strategy, 48);
    PIN_OFFSET(sgd_sched_onecycle_options, cycle_momentum, 52);
    PIN_OFFSET(sgd_sched_onecycle_options, base_momentum, 56);
    PIN_OFFSET(sgd_sched_onecycle_options, max_momentum, 64);
    PIN_OFFSET(sgd_sched_onecycle_options, div_factor, 72);
    PIN_OFFSET(sgd_sched_onecycle_options, final_div_factor, 80);
    PIN_OFFSET(sgd_sched_onecycle_options, three_phase, 88);
    PIN_SIZE(sgd_sched_cyclic_options, 72);
    PIN_OFFSET(sgd_sched_cyclic_options, base_lr, 8);
    PIN_OFFSET(sgd_sched_cyclic_options, max_lr, 16);
    PIN_OFFSET(sgd_sched_cyclic_options, step_size_up, 24);
    PIN_OFFSET(sgd_sched_cyclic_options, step_size_down, 32);
    PIN_OFFSET(sgd_sched_cyclic_options, mode, 40);
    PIN_OFFSET(sgd_sched_cyclic_options, gamma, 48);
    PIN_OFFSET(sgd_sched_cyclic_options, cycle_momentum, 44);
    PIN_OFFSET(sgd_sched_cyclic_options, base_momentum, 56);
    PIN_OFFSET(sgd_sched_cyclic_options, max_momentum, 64);
    PIN_SIZE(sgd_sched_warmup_options, 24);
    PIN_OFFSET(sgd_sched_warmup_options, start_factor, 8);
    PIN_OFFSET(sgd_sched_warmup_options, total_iters, 16);
    PIN_SIZE(sgd_sched_plateau_options, 64);
    PIN_OFFSET(sgd_sched_plateau_options, mode, 4);
    PIN_OFFSET(sgd_sched_plateau_options, factor, 8);
    PIN_OFFSET(sgd_sched_plateau_options, patience, 16);
    PIN_OFFSET(sgd_sched_plateau_options, threshold, 24);
    PIN_OFFSET(sgd_sched_plateau_options, threshold_mode, 32);
    PIN_OFFSET(sgd_sched_plateau_options, cooldown, 40);
    PIN_OFFSET(sgd_sched_plateau_options, min_lr, 48);
    PIN_OFFSET(sgd_sched_plateau_options, eps, 56);
    PIN_SIZE(sgd_anneal, 4);
    PIN_SIZE(sgd_cyclic_mode, 4);
    PIN_SIZE(sgd_plateau_mode, 4);
    PIN_SIZE(sgd_threshold_mode, 4);
}

static void test_data_structs(void **state)
{
    (void)state;
    PIN_SIZE(sgd_loader_options, 32);
    PIN_OFFSET(sgd_loader_options, struct_size, 0);
    PIN_OFFSET(sgd_loader_options, shuffle, 4);
    PIN_OFFSET(sgd_loader_options, drop_last, 8);
    PIN_OFFSET(sgd_loader_options, reserved, 12);
    PIN_OFFSET(sgd_loader_options, seed, 16);
    PIN_OFFSET(sgd_loader_options, shard_index, 24); /* 0.2 */
    PIN_OFFSET(sgd_loader_options, shard_count, 28); /* 0.2 */
    PIN_SIZE(sgd_batch, 48);
    PIN_OFFSET(sgd_batch, x, 0);
    PIN_OFFSET(sgd_batch, labels, 8);
    PIN_OFFSET(sgd_batch, targets, 16);
    PIN_OFFSET(sgd_batch, size, 24);
    PIN_OFFSET(sgd_batch, epoch, 32);
    PIN_OFFSET(sgd_batch, index, 40);
    PIN_SIZE(sgd_idx_elem_type, 4);
    assert_int_equal(SGD_IDX_UINT8, 0x08);
    assert_int_equal(SGD_IDX_INT8, 0x09);
    assert_int_equal(SGD_IDX_INT16, 0x0b);
    assert_int_equal(SGD_IDX_INT32, 0x0c);
    assert_int_equal(SGD_IDX_FLOAT32, 0x0d);
    assert_int_equal(SGD_IDX_FLOAT64, 0x0e);
}

static void test_model_structs(void **state)
{
    (void)state;
    PIN_SIZE(sgd_model_options, 32);
    PIN_OFFSET(sgd_model_options, struct_size, 0);
    PIN_OFFSET(sgd_model_options, init, 4);
    PIN_OFFSET(sgd_model_options, seed, 8);
    PIN_OFFSET(sgd_model_options, max_batch, 16);
    PIN_OFFSET(sgd_model_options, loss, 24);
    PIN_OFFSET(sgd_model_options, blas_threads, 28);
    PIN_SIZE(sgd_param_info, 72);
    PIN_OFFSET(sgd_param_info, struct_size, 0);
    PIN_OFFSET(sgd_param_info, kind, 4);
    PIN_OFFSET(sgd_param_info, name, 8);
    PIN_OFFSET(sgd_param_info, layer, 16);
    PIN_OFFSET(sgd_param_info, rank, 20);
    PIN_OFFSET(sgd_param_info, shape, 24);
    PIN_OFFSET(sgd_param_info, offset, 56);
    PIN_OFFSET(sgd_param_info, numel, 64);
    /* 0.2 */
    PIN_SIZE(sgd_tensor_info, 88);
    PIN_OFFSET(sgd_tensor_info, struct_size, 0);
    PIN_OFFSET(sgd_tensor_info, role, 4);
    PIN_OFFSET(sgd_tensor_info, name, 8);
    PIN_OFFSET(sgd_tensor_info, layer, 16);
    PIN_OFFSET(sgd_tensor_info, param_kind, 20);
    PIN_OFFSET(sgd_tensor_info, dtype, 24);
    PIN_OFFSET(sgd_tensor_info, rank, 28);
    PIN_OFFSET(sgd_tensor_info, shape, 32);
    PIN_OFFSET(sgd_tensor_info, numel, 64);
    PIN_OFFSET(sgd_tensor_info, offset, 72);
    PIN_OFFSET(sgd_tensor_info, data, 80);
    PIN_SIZE(sgd_dtype, 4);
    PIN_SIZE(sgd_tensor_role, 4);
    assert_int_equal(SGD_DTYPE_F32, 1);
    assert_int_equal(SGD_DTYPE_I64, 2);
    assert_int_equal(SGD_TENSOR_PARAM, 1);
    assert_int_equal(SGD_TENSOR_BUFFER, 2);
    assert_int_equal(SGD_TENSOR_STATE, 3);
    PIN_SIZE(sgd_layer_kind, 4);
    PIN_SIZE(sgd_loss_kind, 4);
    PIN_SIZE(sgd_init_kind, 4);
    PIN_SIZE(sgd_param_kind, 4);
    assert_int_equal(SGD_LAYER_DENSE, 1);
    assert_int_equal(SGD_LAYER_SOFTMAX, 8);
    assert_int_equal(SGD_LAYER_DROPOUT, 9);
    assert_int_equal(SGD_LAYER_EMBEDDING, 19);
    assert_int_equal(SGD_LAYER_RNN, 20);
    assert_int_equal(SGD_LAYER_LSTM, 21);
    assert_int_equal(SGD_LAYER_GRU, 22);
    assert_int_equal(SGD_LOSS_CROSS_ENTROPY, 1);
    assert_int_equal(SGD_LOSS_BCE_WITH_LOGITS, 3);
    assert_int_equal(SGD_INIT_TORCH, 1);
    assert_int_equal(SGD_INIT_HE_NORMAL, 5);
    assert_int_equal(SGD_PARAM_WEIGHT, 1);
    assert_int_equal(SGD_PARAM_BIAS, 2);
}

static void test_checkpoint_structs(void **state)
{
    (void)state;
    PIN_SIZE(sgd_ckpt_section_info, 48);
    PIN_OFFSET(sgd_ckpt_section_info, struct_size, 0);
    PIN_OFFSET(sgd_ckpt_section_info, flags, 4);
    PIN_OFFSET(sgd_ckpt_section_info, name, 8);
    PIN_OFFSET(sgd_ckpt_section_info, tensor_count, 16);
    PIN_OFFSET(sgd_ckpt_section_info, offset, 24);
    PIN_OFFSET(sgd_ckpt_section_info, size, 32);
    PIN_OFFSET(sgd_ckpt_section_info, crc32c, 40);
    PIN_OFFSET(sgd_ckpt_section_info, reserved, 44);
    PIN_SIZE(sgd_ckpt_tensor_info, 120);
    PIN_OFFSET(sgd_ckpt_tensor_info, struct_size, 0);
    PIN_OFFSET(sgd_ckpt_tensor_info, dtype, 4);
    PIN_OFFSET(sgd_ckpt_tensor_info, name, 8);
    PIN_OFFSET(sgd_ckpt_tensor_info, section, 16);
    PIN_OFFSET(sgd_ckpt_tensor_info, rank, 24);
    PIN_OFFSET(sgd_ckpt_tensor_info, reserved, 28);
    PIN_OFFSET(sgd_ckpt_tensor_info, dims, 32);
    PIN_OFFSET(sgd_ckpt_tensor_info, count, 96);
    PIN_OFFSET(sgd_ckpt_tensor_info, nbytes, 104);
    PIN_OFFSET(sgd_ckpt_tensor_info, offset, 112);
    PIN_SIZE(sgd_ckpt_dtype, 4);
}

static void test_text_structs(void **state)
{
    (void)state;
    PIN_SIZE(sgd_text_options, 16);
    PIN_OFFSET(sgd_text_options, unit, 4);
    PIN_OFFSET(sgd_text_options, max_bytes, 8);
    PIN_SIZE(sgd_text_split_options, 40);
    PIN_OFFSET(sgd_text_split_options, seq_len, 8);
    PIN_OFFSET(sgd_text_split_options, streams, 16);
    PIN_OFFSET(sgd_text_split_options, val_fraction, 24);
    PIN_OFFSET(sgd_text_split_options, val_streams, 32);
    PIN_SIZE(sgd_generate_options, 40);
    PIN_OFFSET(sgd_generate_options, prime, 8);
    PIN_OFFSET(sgd_generate_options, length, 16);
    PIN_OFFSET(sgd_generate_options, temperature, 24);
    PIN_OFFSET(sgd_generate_options, seed, 32);
    PIN_SIZE(sgd_text_unit, 4);
    assert_int_equal(SGD_TEXT_UTF8, 1);
    assert_int_equal(SGD_TEXT_BYTES, 2);
    PIN_SIZE(sgd_checkpoint_parts, 48);
}

static void test_optim_structs(void **state)
{
    (void)state;
    PIN_SIZE(sgd_optim_vtable, 88); /* 0.1's: never grows (sgd_optim_vtable_init writes it whole) */
    PIN_OFFSET(sgd_optim_vtable, struct_size, 0);
    PIN_OFFSET(sgd_optim_vtable, flags, 4);
    PIN_OFFSET(sgd_optim_vtable, name, 8);
    PIN_OFFSET(sgd_optim_vtable, n_slots, 16);
    PIN_OFFSET(sgd_optim_vtable, n_scalars, 20);
    PIN_OFFSET(sgd_optim_vtable, slot_names, 24);
    PIN_OFFSET(sgd_optim_vtable, init, 32);
    PIN_OFFSET(sgd_optim_vtable, step, 40);
    PIN_OFFSET(sgd_optim_vtable, export_scalars, 48);
    PIN_OFFSET(sgd_optim_vtable, import_scalars, 56);
    PIN_OFFSET(sgd_optim_vtable, set_hparam, 64);
    PIN_OFFSET(sgd_optim_vtable, get_hparam, 72);
    PIN_OFFSET(sgd_optim_vtable, destroy, 80);
    PIN_SIZE(sgd_optim_vtable_ext, 24);
    PIN_OFFSET(sgd_optim_vtable_ext, n_hparams, 4);
    PIN_OFFSET(sgd_optim_vtable_ext, describe_hparam, 8);
    PIN_OFFSET(sgd_optim_vtable_ext, swap, 16);
    PIN_SIZE(sgd_optim_step_args, 88);
    PIN_OFFSET(sgd_optim_step_args, group, 4);
    PIN_OFFSET(sgd_optim_step_args, call, 8);
    PIN_OFFSET(sgd_optim_step_args, calls, 12);
    PIN_OFFSET(sgd_optim_step_args, step, 16);
    PIN_OFFSET(sgd_optim_step_args, offset, 24);
    PIN_OFFSET(sgd_optim_step_args, weight_decay, 32);
    PIN_OFFSET(sgd_optim_step_args, grad_scale, 40);
    PIN_OFFSET(sgd_optim_step_args, clip_value, 48);
    PIN_OFFSET(sgd_optim_step_args, pass, 56);
    PIN_OFFSET(sgd_optim_step_args, reserved, 60);
    PIN_OFFSET(sgd_optim_step_args, base_lr, 64);
    PIN_OFFSET(sgd_optim_step_args, lr_scale, 72);
    PIN_OFFSET(sgd_optim_step_args, grad_sumsq, 80);
    PIN_SIZE(sgd_optim_hparam, 40);
    PIN_OFFSET(sgd_optim_hparam, flags, 4);
    PIN_OFFSET(sgd_optim_hparam, name, 8);
    PIN_OFFSET(sgd_optim_hparam, default_value, 16);
    PIN_OFFSET(sgd_optim_hparam, lower, 24);
    PIN_OFFSET(sgd_optim_hparam, upper, 32);
    PIN_SIZE(sgd_optim_step_info, 56);
    PIN_OFFSET(sgd_optim_step_info, applied, 4);
    PIN_OFFSET(sgd_optim_step_info, nonfinite, 8);
    PIN_OFFSET(sgd_optim_step_info, clipped, 12);
    PIN_OFFSET(sgd_optim_step_info, grad_norm, 16);
    PIN_OFFSET(sgd_optim_step_info, grad_max_abs, 24);
    PIN_OFFSET(sgd_optim_step_info, clip_scale, 32);
    PIN_OFFSET(sgd_optim_step_info, step, 40);
    PIN_OFFSET(sgd_optim_step_info, consecutive_skips, 48);
    PIN_SIZE(sgd_optim_hygiene, 32);
    PIN_OFFSET(sgd_optim_hygiene, nonfinite, 4);
    PIN_OFFSET(sgd_optim_hygiene, clip_norm, 8);
    PIN_OFFSET(sgd_optim_hygiene, clip_value, 16);
    PIN_OFFSET(sgd_optim_hygiene, max_consecutive_skips, 24);
    PIN_SIZE(sgd_optim_stats, 48);
    PIN_OFFSET(sgd_optim_stats, reserved, 4);
    PIN_OFFSET(sgd_optim_stats, applied, 8);
    PIN_OFFSET(sgd_optim_stats, skipped, 16);
    PIN_OFFSET(sgd_optim_stats, consecutive_skips, 24);
    PIN_OFFSET(sgd_optim_stats, nonfinite, 32);
    PIN_OFFSET(sgd_optim_stats, clipped, 40);
    PIN_SIZE(sgd_nonfinite_policy, 4);
    PIN_SIZE(sgd_state_type, 4);
    assert_int_equal(SGD_NONFINITE_SKIP, 0);
    assert_int_equal(SGD_NONFINITE_ERROR, 1);
    assert_int_equal(SGD_NONFINITE_APPLY, 2);
    assert_int_equal(SGD_STATE_F32, 1);
    assert_int_equal(SGD_STATE_F64, 2);
    assert_int_equal(SGD_STATE_I64, 3);
    assert_int_equal(SGD_OPTIM_FUSED_CLIP, 1);
    assert_int_equal(SGD_OPTIM_MAX_SLOTS, 16);
    assert_int_equal(SGD_OPTIM_MAX_SCALARS, 64);
    assert_int_equal(SGD_OPTIM_MAX_NAME, 63);
}

static void test_trainer_structs(void **state)
{
    (void)state;
    PIN_SIZE(sgd_trainer_options, 128);
    PIN_OFFSET(sgd_trainer_options, shuffle, 4);
    PIN_OFFSET(sgd_trainer_options, batch_size, 8);
    PIN_OFFSET(sgd_trainer_options, epochs, 16);
    PIN_OFFSET(sgd_trainer_options, seed, 24);
    PIN_OFFSET(sgd_trainer_options, drop_last, 32);
    PIN_OFFSET(sgd_trainer_options, nonfinite, 36);
    PIN_OFFSET(sgd_trainer_options, clip_norm, 40);
    PIN_OFFSET(sgd_trainer_options, clip_value, 48);
    PIN_OFFSET(sgd_trainer_options, eval_batch_size, 56);
    PIN_OFFSET(sgd_trainer_options, patience, 64);
    PIN_OFFSET(sgd_trainer_options, min_delta, 72);
    PIN_OFFSET(sgd_trainer_options, guard, 80);
    PIN_OFFSET(sgd_trainer_options, stop_on_divergence, 84);
    PIN_OFFSET(sgd_trainer_options, guard_interval, 88);
    PIN_OFFSET(sgd_trainer_options, guard_factor, 96);
    PIN_OFFSET(sgd_trainer_options, guard_max_rescues, 104);
    PIN_OFFSET(sgd_trainer_options, guard_skip, 112);
    PIN_OFFSET(sgd_trainer_options, progress_interval, 120);
    PIN_SIZE(sgd_trainer_comm, 32); /* 0.2 */
    PIN_OFFSET(sgd_trainer_comm, rank, 4);
    PIN_OFFSET(sgd_trainer_comm, size, 8);
    PIN_OFFSET(sgd_trainer_comm, reserved, 12);
    PIN_OFFSET(sgd_trainer_comm, allreduce, 16);
    PIN_OFFSET(sgd_trainer_comm, user, 24);
    PIN_SIZE(sgd_trainer_progress, 176);
    PIN_OFFSET(sgd_trainer_progress, phase, 4);
    PIN_OFFSET(sgd_trainer_progress, step, 8);
    PIN_OFFSET(sgd_trainer_progress, epoch, 16);
    PIN_OFFSET(sgd_trainer_progress, epochs, 24);
    PIN_OFFSET(sgd_trainer_progress, batch, 32);
    PIN_OFFSET(sgd_trainer_progress, batches, 40);
    PIN_OFFSET(sgd_trainer_progress, loss, 48);
    PIN_OFFSET(sgd_trainer_progress, smoothed_loss, 56);
    PIN_OFFSET(sgd_trainer_progress, lr, 64);
    PIN_OFFSET(sgd_trainer_progress, samples_per_sec, 72);
    PIN_OFFSET(sgd_trainer_progress, elapsed, 80);
    PIN_OFFSET(sgd_trainer_progress, eta, 88);
    PIN_OFFSET(sgd_trainer_progress, fraction, 96);
    PIN_OFFSET(sgd_trainer_progress, train_loss, 104);
    PIN_OFFSET(sgd_trainer_progress, val_loss, 112);
    PIN_OFFSET(sgd_trainer_progress, val_accuracy, 120);
    PIN_OFFSET(sgd_trainer_progress, rescues, 128);
    PIN_OFFSET(sgd_trainer_progress, guard_scale, 136);
    PIN_OFFSET(sgd_trainer_progress, train_bpc, 144);
    PIN_OFFSET(sgd_trainer_progress, val_bpc, 152);
    PIN_OFFSET(sgd_trainer_progress, train_perplexity, 160);
    PIN_OFFSET(sgd_trainer_progress, val_perplexity, 168);
    PIN_SIZE(sgd_trainer_event, 88);
    PIN_OFFSET(sgd_trainer_event, kind, 4);
    PIN_OFFSET(sgd_trainer_event, step, 8);
    PIN_OFFSET(sgd_trainer_event, epoch, 16);
    PIN_OFFSET(sgd_trainer_event, monitor, 24);
    PIN_OFFSET(sgd_trainer_event, action, 32);
    PIN_OFFSET(sgd_trainer_event, reserved, 36);
    PIN_OFFSET(sgd_trainer_event, lr_scale, 40);
    PIN_OFFSET(sgd_trainer_event, lr, 48);
    PIN_OFFSET(sgd_trainer_event, guard_scale, 56);
    PIN_OFFSET(sgd_trainer_event, rescues, 64);
    PIN_OFFSET(sgd_trainer_event, restored_step, 72);
    PIN_OFFSET(sgd_trainer_event, message, 80);
    PIN_SIZE(sgd_trainer_stats, 184);
    PIN_OFFSET(sgd_trainer_stats, stop_reason, 4);
    PIN_OFFSET(sgd_trainer_stats, step, 8);
    PIN_OFFSET(sgd_trainer_stats, epoch, 16);
    PIN_OFFSET(sgd_trainer_stats, batch, 24);
    PIN_OFFSET(sgd_trainer_stats, batches_run, 32);
    PIN_OFFSET(sgd_trainer_stats, updates, 40);
    PIN_OFFSET(sgd_trainer_stats, skipped, 48);
    PIN_OFFSET(sgd_trainer_stats, rescues, 56);
    PIN_OFFSET(sgd_trainer_stats, rollbacks, 64);
    PIN_OFFSET(sgd_trainer_stats, events, 72);
    PIN_OFFSET(sgd_trainer_stats, guard_scale, 136);
    PIN_OFFSET(sgd_trainer_stats, lr, 144);
    PIN_OFFSET(sgd_trainer_stats, last_loss, 152);
    PIN_OFFSET(sgd_trainer_stats, recent_loss, 160);
    PIN_OFFSET(sgd_trainer_stats, best_val_loss, 168);
    PIN_OFFSET(sgd_trainer_stats, epochs_without_improvement, 176);
    PIN_SIZE(sgd_trainer_epoch, 96);
    PIN_OFFSET(sgd_trainer_epoch, done, 4);
    PIN_OFFSET(sgd_trainer_epoch, train_loss, 8);
    PIN_OFFSET(sgd_trainer_epoch, val_loss, 16);
    PIN_OFFSET(sgd_trainer_epoch, val_accuracy, 24);
    PIN_OFFSET(sgd_trainer_epoch, lr, 32);
    PIN_OFFSET(sgd_trainer_epoch, step, 40);
    PIN_OFFSET(sgd_trainer_epoch, rescues, 48);
    PIN_OFFSET(sgd_trainer_epoch, seconds, 56);
    PIN_OFFSET(sgd_trainer_epoch, train_bpc, 64);
    PIN_OFFSET(sgd_trainer_epoch, val_bpc, 72);
    PIN_OFFSET(sgd_trainer_epoch, train_perplexity, 80);
    PIN_OFFSET(sgd_trainer_epoch, val_perplexity, 88);
}

static void test_tune_structs(void **state)
{
    (void)state;
    PIN_SIZE(sgd_lrfind_options, 88);
    PIN_OFFSET(sgd_lrfind_options, ramp, 4);
    PIN_OFFSET(sgd_lrfind_options, lr_min, 8);
    PIN_OFFSET(sgd_lrfind_options, lr_max, 16);
    PIN_OFFSET(sgd_lrfind_options, steps, 24);
    PIN_OFFSET(sgd_lrfind_options, batch_size, 32);
    PIN_OFFSET(sgd_lrfind_options, seed, 40);
    PIN_OFFSET(sgd_lrfind_options, beta, 48);
    PIN_OFFSET(sgd_lrfind_options, stop_factor, 56);
    PIN_OFFSET(sgd_lrfind_options, shuffle, 64);
    PIN_OFFSET(sgd_lrfind_options, reserved, 68);
    PIN_OFFSET(sgd_lrfind_options, progress, 72);
    PIN_OFFSET(sgd_lrfind_options, progress_user, 80);
    PIN_SIZE(sgd_lrfind_sample, 48);
    PIN_OFFSET(sgd_lrfind_sample, used, 4);
    PIN_OFFSET(sgd_lrfind_sample, lr, 8);
    PIN_OFFSET(sgd_lrfind_sample, loss, 16);
    PIN_OFFSET(sgd_lrfind_sample, smoothed, 24);
    PIN_OFFSET(sgd_lrfind_sample, fit, 32);
    PIN_OFFSET(sgd_lrfind_sample, slope, 40);
    PIN_SIZE(sgd_search_trial, 120);
    PIN_OFFSET(sgd_search_trial, status, 4);
    PIN_OFFSET(sgd_search_trial, index, 8);
    PIN_OFFSET(sgd_search_trial, lr, 16);
    PIN_OFFSET(sgd_search_trial, optimizer, 24);
    PIN_OFFSET(sgd_search_trial, momentum, 32);
    PIN_OFFSET(sgd_search_trial, batch_size, 40);
    PIN_OFFSET(sgd_search_trial, seed, 48);
    PIN_OFFSET(sgd_search_trial, max_steps, 56);
    PIN_OFFSET(sgd_search_trial, final_loss, 64);
    PIN_OFFSET(sgd_search_trial, val_loss, 72);
    PIN_OFFSET(sgd_search_trial, val_accuracy, 80);
    PIN_OFFSET(sgd_search_trial, verdict, 88);
    PIN_OFFSET(sgd_search_trial, stop_reason, 92);
    PIN_OFFSET(sgd_search_trial, steps, 96);
    PIN_OFFSET(sgd_search_trial, first_alarm, 104);
    PIN_OFFSET(sgd_search_trial, seconds, 112);
    PIN_SIZE(sgd_search_options, 192);
    PIN_OFFSET(sgd_search_options, method, 4);
    PIN_OFFSET(sgd_search_options, lr_min, 8);
    PIN_OFFSET(sgd_search_options, lr_max, 16);
    PIN_OFFSET(sgd_search_options, lr_count, 24);
    PIN_OFFSET(sgd_search_options, lrs, 32);
    PIN_OFFSET(sgd_search_options, n_lrs, 40);
    PIN_OFFSET(sgd_search_options, optimizers, 48);
    PIN_OFFSET(sgd_search_options, n_optimizers, 56);
    PIN_OFFSET(sgd_search_options, momenta, 64);
    PIN_OFFSET(sgd_search_options, n_momenta, 72);
    PIN_OFFSET(sgd_search_options, batch_sizes, 80);
    PIN_OFFSET(sgd_search_options, n_batch_sizes, 88);
    PIN_OFFSET(sgd_search_options, trials, 96);
    PIN_OFFSET(sgd_search_options, seed, 104);
    PIN_OFFSET(sgd_search_options, max_steps, 112);
    PIN_OFFSET(sgd_search_options, schedule, 120);
    PIN_OFFSET(sgd_search_options, threads, 128);
    PIN_OFFSET(sgd_search_options, reserved, 132);
    PIN_OFFSET(sgd_search_options, trainer, 136);
    PIN_OFFSET(sgd_search_options, monitor, 144);
    PIN_OFFSET(sgd_search_options, on_step, 152);
    PIN_OFFSET(sgd_search_options, on_event, 160);
    PIN_OFFSET(sgd_search_options, on_trial, 168);
    PIN_OFFSET(sgd_search_options, user, 176);
    PIN_OFFSET(sgd_search_options, shard_index, 184); /* 0.2 */
    PIN_OFFSET(sgd_search_options, shard_count, 188); /* 0.2 */
}

/* ------------------------------------------------------ struct_size versioning */

/*
 * The first released size of every struct_size-versioned struct, on LP64:
 * its sizeof in the release that added it (0.1: abi/libsgdlab-0.1.abi),
 * which is what a program built against those headers passes as
 * struct_size. The library's constants (lib/core/abi.h) must equal them; a
 * struct added later gets a row here with the size it is released with.
 */
typedef struct first_size {
    const char *type;
    size_t first; /* SGD__FIRST(type) */
    size_t now;   /* sizeof(type) in these headers */
    size_t pinned;
} first_size;

#define FIRST(type, size) {#type, SGD__FIRST(type), sizeof(type), size}
static const first_size first_sizes[] = {
    FIRST(sgd_checkpoint_parts, 48),
    FIRST(sgd_ckpt_section_info, 48),
    FIRST(sgd_ckpt_tensor_info, 120),
    FIRST(sgd_loader_options, 24),
    FIRST(sgd_lrfind_options, 88),
    FIRST(sgd_lrfind_sample, 48),
    FIRST(sgd_model_options, 32),
    FIRST(sgd_monitor_counters, 200),
    FIRST(sgd_monitor_event, 96),
    FIRST(sgd_monitor_options, 168),
    FIRST(sgd_optim_hygiene, 32),
    FIRST(sgd_optim_stats, 48),
    FIRST(sgd_optim_step_args, 56),
    FIRST(sgd_optim_step_info, 56),
    FIRST(sgd_optim_vtable, 88),
    FIRST(sgd_param_info, 72),
    FIRST(sgd_sched_constant_options, 24),
    FIRST(sgd_sched_cosine_options, 24),
    FIRST(sgd_sched_cosine_warm_restarts_options, 32),
    FIRST(sgd_sched_cyclic_options, 72),
    FIRST(sgd_sched_exponential_options, 16),
    FIRST(sgd_sched_linear_options, 32),
    FIRST(sgd_sched_multistep_options, 32),
    FIRST(sgd_sched_onecycle_options, 96),
    FIRST(sgd_sched_plateau_options, 64),
    FIRST(sgd_sched_polynomial_options, 24),
    FIRST(sgd_sched_step_options, 24),
    FIRST(sgd_sched_vtable, 80),
    FIRST(sgd_sched_warmup_options, 24),
    FIRST(sgd_search_options, 184),
    FIRST(sgd_search_trial, 120),
    FIRST(sgd_trainer_epoch, 64),
    FIRST(sgd_trainer_event, 88),
    FIRST(sgd_trainer_options, 128),
    FIRST(sgd_trainer_progress, 144),
    FIRST(sgd_trainer_stats, 184),
    /* 0.2 */
    FIRST(sgd_dist_options, 32),
    FIRST(sgd_dist_stats, 56),
    FIRST(sgd_generate_options, 40),
    FIRST(sgd_optim_hparam, 40),
    FIRST(sgd_optim_vtable_ext, 24),
    FIRST(sgd_tensor_info, 88),
    FIRST(sgd_text_options, 16),
    FIRST(sgd_text_split_options, 40),
    FIRST(sgd_trainer_comm, 32),
};
#undef FIRST

static size_t first_of(const char *type)
{
    for (size_t i = 0; i < sizeof first_sizes / sizeof *first_sizes; i++)
        if (strcmp(first_sizes[i].type, type) == 0)
            return first_sizes[i].pinned;
    fail_msg("%s has no pinned first size", type);
    return 0;
}

static void test_first_sizes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof first_sizes / sizeof *first_sizes; i++) {
        const first_size *f = &first_sizes[i];
        if (f->first != f->pinned || f->now < f->first)
            fail_msg("%s: SGD__FIRST is %zu, sizeof %zu; its first release was %zu bytes", f->type, f->first, f->now,
                     f->pinned);
    }
}

static uint32_t size_field(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void set_size(void *p, size_t size)
{
    uint32_t v = (uint32_t)size;
    memcpy(p, &v, sizeof v);
}

#define CANARY 0xA5
#define SLACK 64

static void assert_untouched(const unsigned char *p, size_t from, size_t to, const char *what)
{
    for (size_t i = from; i < to; i++)
        if (p[i] != CANARY)
            fail_msg("%s: byte %zu was written (the caller's struct ends at %zu)", what, i, from);
}

/* A getter under test: fills `out` from the fixture `ctx`. */
typedef sgd_status (*getter_fn)(void *ctx, void *out);

/*
 * The output-struct rules, for one getter: a struct of the first released
 * size (a program built against 0.1 headers) is filled as far as it goes,
 * its struct_size kept and nothing written past it; a larger one (newer
 * headers) gets what this library knows and nothing past that; a smaller one
 * is refused with SGD_EINVAL and left as it was.
 */
static void check_getter(const char *type, size_t now, getter_fn get, void *ctx)
{
    size_t first = first_of(type);
    unsigned char ref[512];
    assert_true(now <= sizeof ref);
    memset(ref, 0, sizeof ref);
    set_size(ref, now);
    if (get(ctx, ref) != SGD_OK)
        fail_msg("%s: the getter failed with a current-size struct: %s", type, sgd_error_last());
    assert_int_equal(size_field(ref), now);

    unsigned char *old = malloc(first + SLACK);
    assert_non_null(old);
    memset(old, CANARY, first + SLACK);
    set_size(old, first);
    if (get(ctx, old) != SGD_OK)
        fail_msg("%s: a struct of the first released size (%zu) was refused: %s", type, first, sgd_error_last());
    assert_int_equal(size_field(old), first);
    assert_memory_equal(old + 4, ref + 4, first - 4);
    assert_untouched(old, first, first + SLACK, type);

    unsigned char *big = malloc(now + SLACK);
    assert_non_null(big);
    memset(big, CANARY, now + SLACK);
    set_size(big, now + SLACK);
    if (get(ctx, big) != SGD_OK)
        fail_msg("%s: a larger struct (%zu) was refused: %s", type, now + SLACK, sgd_error_last());
    assert_int_equal(size_field(big), now + SLACK);
    assert_memory_equal(big + 4, ref + 4, now - 4);
    assert_untouched(big, now, now + SLACK, type);
    free(big);

    const size_t small[] = {first - 1, 8, 4, 0};
    for (size_t k = 0; k < sizeof small / sizeof *small; k++) {
        memset(old, CANARY, first + SLACK);
        set_size(old, small[k]);
        sgd_error_clear();
        sgd_status st = get(ctx, old);
        if (st != SGD_EINVAL)
            fail_msg("%s: struct_size=%zu (below the first release, %zu): %s, expected SGD_EINVAL", type, small[k],
                     first, sgd_status_str(st));
        sgdt_assert_error_contains("struct_size");
        assert_int_equal(size_field(old), small[k]);
        assert_untouched(old, 4, first + SLACK, type);
    }
    free(old);
}

/* An input-struct taker under test: uses the struct at `in` (and frees what it made). */
typedef sgd_status (*taker_fn)(void *ctx, const void *in);
typedef void (*init_fn)(void *s);

#define INIT(type) \
    static void init_##type(void *p) { (void)type##_init((type *)p); }
INIT(sgd_model_options)
INIT(sgd_loader_options)
INIT(sgd_monitor_options)
INIT(sgd_trainer_options)
INIT(sgd_optim_hygiene)
INIT(sgd_text_options)
INIT(sgd_trainer_comm)
#undef INIT

/*
 * The input-struct rules, for one taker: a struct of the first released size
 * at the very end of its block (ASan sees a read past it) is taken as the
 * current one is; one smaller than that is SGD_EINVAL; a larger one (newer
 * headers, members this library would ignore) is SGD_EINVAL for options and
 * accepted for vtables.
 */
static void check_taker(const char *type, size_t now, init_fn init, taker_fn take, void *ctx, bool larger_ok)
{
    size_t first = first_of(type);
    unsigned char cur[512];
    assert_true(now + SLACK <= sizeof cur);
    memset(cur, 0, sizeof cur);
    init(cur);
    assert_int_equal(size_field(cur), now);
    if (take(ctx, cur) != SGD_OK)
        fail_msg("%s: refused at its current size: %s", type, sgd_error_last());

    unsigned char *old = malloc(first);
    assert_non_null(old);
    memcpy(old, cur, first);
    set_size(old, first);
    if (take(ctx, old) != SGD_OK)
        fail_msg("%s: a struct of the first released size (%zu) was refused: %s", type, first, sgd_error_last());
    free(old);

    set_size(cur, now + SLACK);
    sgd_status st = take(ctx, cur);
    if (st != (larger_ok ? SGD_OK : SGD_EINVAL))
        fail_msg("%s: struct_size=%zu (larger than this library's): %s", type, now + SLACK, sgd_status_str(st));
    if (!larger_ok)
        sgdt_assert_error_contains("struct_size");

    const size_t small[] = {first - 1, 4, 0};
    for (size_t k = 0; k < sizeof small / sizeof *small; k++) {
        set_size(cur, small[k]);
        sgd_error_clear();
        st = take(ctx, cur);
        if (st != SGD_EINVAL)
            fail_msg("%s: struct_size=%zu (below the first release, %zu): %s, expected SGD_EINVAL", type, small[k],
                     first, sgd_status_str(st));
        sgdt_assert_error_contains("struct_size");
    }
}

/* Objects to read from: a trained model with its optimizer and monitor, a range test, a search, a checkpoint. */
typedef struct fixture {
    float x[64];
    int32_t y[32];
    float params[64], grads[64];
    sgd_dataset *d;
    sgd_model *m, *m2;
    sgd_optim *o, *o2;
    sgd_monitor *mon;
    sgd_trainer *t;
    sgd_lrfind *lf;
    sgd_search *s;
    sgd_ckpt_reader *r;
    void *file;
} fixture;

static sgd_status objective(sgd_search_trial *trial, void *user)
{
    (void)user;
    trial->final_loss = 1.0 / (1.0 + trial->lr);
    trial->steps = 3;
    return SGD_OK;
}

static sgd_status fixture_build(fixture *f)
{
    for (int i = 0; i < 32; i++) {
        f->x[2 * i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
        f->x[2 * i + 1] = (float)((i * 5) % 13) / 13.0f - 0.5f;
        f->y[i] = f->x[2 * i] > f->x[2 * i + 1];
    }
    for (size_t i = 0; i < 64; i++)
        f->grads[i] = (float)(i % 5) - 2.0f;
    sgd_status st;
    if ((st = sgd_dataset_from_labels(&f->d, f->x, f->y, 32, 2, NULL)) != SGD_OK)
        return st;
    if ((st = sgd_model_from_spec(&f->m, "2-4-relu-2", NULL, NULL)) != SGD_OK)
        return st;
    if ((st = sgd_optim_new(&f->o, "sgd:lr=0.1,momentum=0.9", sgd_model_num_params(f->m), NULL)) != SGD_OK)
        return st;
    sgd_optim_hygiene h;
    sgd_optim_hygiene_init(&h);
    h.clip_norm = 1.5;
    h.max_consecutive_skips = 7;
    if ((st = sgd_optim_set_hygiene(f->o, &h)) != SGD_OK)
        return st;
    if ((st = sgd_monitor_new(&f->mon, NULL, NULL)) != SGD_OK)
        return st;
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    to.epochs = 2;
    to.batch_size = 8;
    if ((st = sgd_trainer_new(&f->t, f->m, f->o, NULL, f->mon, f->d, f->d, &to, NULL)) != SGD_OK)
        return st;
    if ((st = sgd_trainer_fit(f->t, 0)) != SGD_OK)
        return st;
    /* The range test and the step getter get a model and an optimizer of their own. */
    if ((st = sgd_model_from_spec(&f->m2, "2-4-relu-2", NULL, NULL)) != SGD_OK)
        return st;
    if ((st = sgd_optim_new(&f->o2, "sgd:lr=0.1", sgd_model_num_params(f->m2), NULL)) != SGD_OK)
        return st;
    sgd_lrfind_options lo;
    sgd_lrfind_options_init(&lo);
    lo.steps = 16;
    lo.batch_size = 8;
    lo.stop_factor = 0;
    if ((st = sgd_lrfind_run(&f->lf, f->m2, f->o2, f->d, &lo, NULL)) != SGD_OK)
        return st;
    sgd_search_options so;
    sgd_search_options_init(&so);
    so.lr_count = 3;
    if ((st = sgd_search_run_objective(&f->s, objective, NULL, &so, NULL)) != SGD_OK)
        return st;
    sgd_ckpt_writer *w;
    if ((st = sgd_ckpt_writer_new(&w, NULL)) != SGD_OK)
        return st;
    const int64_t dims[2] = {2, 3};
    const float data[6] = {1, 2, 3, 4, 5, 6};
    uint64_t size = 0;
    st = sgd_ckpt_writer_begin_section(w, "host", 0);
    if (st == SGD_OK)
        st = sgd_ckpt_writer_add_tensor_copy(w, "w", SGD_CKPT_F32, 2, dims, data);
    if (st == SGD_OK)
        st = sgd_ckpt_writer_add_i64(w, "n", 42);
    if (st == SGD_OK)
        st = sgd_ckpt_writer_size(w, &size);
    if (st == SGD_OK && (f->file = malloc((size_t)size)) == NULL)
        st = SGD_ENOMEM;
    if (st == SGD_OK)
        st = sgd_ckpt_writer_write_memory(w, f->file, (size_t)size);
    sgd_ckpt_writer_free(w);
    if (st == SGD_OK)
        st = sgd_ckpt_reader_open_memory(&f->r, f->file, (size_t)size, NULL);
    return st;
}

static int fixture_teardown(void **state)
{
    fixture *f = *state;
    if (f == NULL)
        return 0;
    sgd_ckpt_reader_free(f->r);
    free(f->file);
    sgd_search_free(f->s);
    sgd_lrfind_free(f->lf);
    sgd_trainer_free(f->t);
    sgd_monitor_free(f->mon);
    sgd_optim_free(f->o2);
    sgd_optim_free(f->o);
    sgd_model_free(f->m2);
    sgd_model_free(f->m);
    sgd_dataset_free(f->d);
    free(f);
    *state = NULL;
    return 0;
}

static int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    *state = f;
    if (f == NULL)
        return -1;
    if (fixture_build(f) != SGD_OK) {
        print_error("fixture: %s\n", sgd_error_last());
        fixture_teardown(state);
        return -1;
    }
    return 0;
}

#define F ((fixture *)ctx)
static sgd_status get_counters(void *ctx, void *out) { return sgd_monitor_get_counters(F->mon, out); }
static sgd_status get_trainer_stats(void *ctx, void *out) { return sgd_trainer_get_stats(F->t, out); }
static sgd_status get_trainer_epoch(void *ctx, void *out) { return sgd_trainer_get_epoch(F->t, 1, out); }
static sgd_status get_lrfind_point(void *ctx, void *out) { return sgd_lrfind_point(F->lf, 3, out); }
static sgd_status get_search_trial(void *ctx, void *out) { return sgd_search_get_trial(F->s, 1, out); }
static sgd_status get_optim_stats(void *ctx, void *out) { return sgd_optim_get_stats(F->o, out); }
static sgd_status get_optim_hygiene(void *ctx, void *out) { return sgd_optim_get_hygiene(F->o, out); }
static sgd_status get_param_info(void *ctx, void *out) { return sgd_model_param_info(F->m, 2, out); }
static sgd_status get_section_info(void *ctx, void *out) { return sgd_ckpt_reader_section_info(F->r, 0, out); }
static sgd_status get_tensor_info(void *ctx, void *out) { return sgd_ckpt_reader_tensor_info(F->r, 0, 0, out); }
static sgd_status get_model_tensor(void *ctx, void *out) { return sgd_model_tensor_info(F->m, 1, out); }
static sgd_status get_hparam(void *ctx, void *out) { return sgd_optim_hparam_describe(F->o, 0, out); }
static sgd_status get_found_tensor(void *ctx, void *out)
{
    return sgd_ckpt_reader_find_tensor(F->r, "host", "w", out);
}

/* A step from the same state each time (the optimizer reset first), so that every call reports the same. */
static sgd_status get_step_info(void *ctx, void *out)
{
    sgd_status st = sgd_optim_reset(F->o2);
    if (st != SGD_OK)
        return st;
    return sgd_optim_step(F->o2, F->params, F->grads, 0.01, out);
}

/*
 * In-out structs (the option parsers): read as input structs (a larger one
 * is refused), written back only as far as the caller's struct goes.
 */
typedef sgd_status (*parse_fn)(void *opts);

static void check_parse(const char *type, size_t now, init_fn init, parse_fn parse, size_t changed, size_t width)
{
    size_t first = first_of(type);
    unsigned char cur[512];
    assert_true(now + SLACK <= sizeof cur);
    init(cur);
    unsigned char *old = malloc(first + SLACK);
    assert_non_null(old);
    memset(old, CANARY, first + SLACK);
    memcpy(old, cur, first);
    set_size(old, first);
    if (parse(old) != SGD_OK)
        fail_msg("%s: a struct of the first released size (%zu) was refused: %s", type, first, sgd_error_last());
    assert_int_equal(size_field(old), first);
    assert_untouched(old, first, first + SLACK, type);
    assert_true(changed + width <= first);
    assert_memory_not_equal(old + changed, cur + changed, width); /* the parsed value is written back */

    memset(cur + now, 0, SLACK);
    set_size(cur, now + SLACK);
    sgdt_assert_status(parse(cur), SGD_EINVAL);
    sgdt_assert_error_contains("struct_size");
    const size_t small[] = {first - 1, 4, 0};
    for (size_t k = 0; k < sizeof small / sizeof *small; k++) {
        init(old);
        set_size(old, small[k]);
        sgdt_assert_status(parse(old), SGD_EINVAL);
        sgdt_assert_error_contains("struct_size");
    }
    free(old);
}

static sgd_status parse_monitor(void *o) { return sgd_monitor_options_parse(o, "plateau_steps=77,spike_ratio=3"); }
static sgd_status parse_trainer(void *o) { return sgd_trainer_options_parse(o, "epochs=3,guard_factor=0.25"); }

/* Every getter, with a struct of the first released size, a larger one and smaller ones. */
static void test_getters_any_size(void **state)
{
    void *ctx = *state;
    check_getter("sgd_monitor_counters", sizeof(sgd_monitor_counters), get_counters, ctx);
    check_getter("sgd_trainer_stats", sizeof(sgd_trainer_stats), get_trainer_stats, ctx);
    check_getter("sgd_trainer_epoch", sizeof(sgd_trainer_epoch), get_trainer_epoch, ctx);
    check_getter("sgd_lrfind_sample", sizeof(sgd_lrfind_sample), get_lrfind_point, ctx);
    check_getter("sgd_search_trial", sizeof(sgd_search_trial), get_search_trial, ctx);
    check_getter("sgd_optim_stats", sizeof(sgd_optim_stats), get_optim_stats, ctx);
    check_getter("sgd_optim_hygiene", sizeof(sgd_optim_hygiene), get_optim_hygiene, ctx);
    check_getter("sgd_optim_step_info", sizeof(sgd_optim_step_info), get_step_info, ctx);
    check_getter("sgd_param_info", sizeof(sgd_param_info), get_param_info, ctx);
    check_getter("sgd_ckpt_section_info", sizeof(sgd_ckpt_section_info), get_section_info, ctx);
    check_getter("sgd_ckpt_tensor_info", sizeof(sgd_ckpt_tensor_info), get_tensor_info, ctx);
    check_getter("sgd_ckpt_tensor_info", sizeof(sgd_ckpt_tensor_info), get_found_tensor, ctx);
    check_getter("sgd_tensor_info", sizeof(sgd_tensor_info), get_model_tensor, ctx);
    check_getter("sgd_optim_hparam", sizeof(sgd_optim_hparam), get_hparam, ctx);
    check_parse("sgd_monitor_options", sizeof(sgd_monitor_options), init_sgd_monitor_options, parse_monitor,
                offsetof(sgd_monitor_options, plateau_steps), sizeof(int32_t));
    check_parse("sgd_trainer_options", sizeof(sgd_trainer_options), init_sgd_trainer_options, parse_trainer,
                offsetof(sgd_trainer_options, guard_factor), sizeof(double));

    /* What is filled is what the objects hold, through the _init functions. */
    sgd_optim_hygiene h;
    sgd_optim_hygiene_init(&h);
    sgdt_assert_status(sgd_optim_get_hygiene(F->o, &h), SGD_OK);
    assert_true(h.clip_norm == 1.5 && h.max_consecutive_skips == 7);
    sgd_trainer_epoch e;
    sgd_trainer_epoch_init(&e);
    assert_int_equal(e.struct_size, sizeof e);
    sgdt_assert_status(sgd_trainer_get_epoch(F->t, 1, &e), SGD_OK);
    assert_int_equal(e.done, 1);
    assert_true(isfinite(e.train_loss) && e.step == 8);
    sgd_ckpt_tensor_info ti;
    sgd_ckpt_tensor_info_init(&ti);
    sgdt_assert_status(sgd_ckpt_reader_find_tensor(F->r, "host", "w", &ti), SGD_OK);
    assert_int_equal(ti.count, 6);
    assert_int_equal(ti.struct_size, sizeof ti);
    sgd_monitor_options mo;
    sgd_monitor_options_init(&mo);
    sgdt_assert_status(sgd_monitor_options_parse(&mo, "plateau_steps=77"), SGD_OK);
    assert_int_equal(mo.plateau_steps, 77);
}

/* The _init functions of the structs a getter fills: zeroed, struct_size set; NULL ignored. */
#define CHECK_INIT(type)                                                                                     \
    do {                                                                                                      \
        type v;                                                                                               \
        memset(&v, CANARY, sizeof v);                                                                         \
        type##_init(&v);                                                                                      \
        assert_int_equal(v.struct_size, sizeof v);                                                            \
        const unsigned char *b = (const unsigned char *)&v;                                                  \
        for (size_t i = 4; i < sizeof v; i++)                                                                 \
            assert_int_equal(b[i], 0);                                                                        \
        type##_init(NULL);                                                                                    \
    } while (0)

static void test_output_inits(void **state)
{
    (void)state;
    CHECK_INIT(sgd_ckpt_section_info);
    CHECK_INIT(sgd_ckpt_tensor_info);
    CHECK_INIT(sgd_lrfind_sample);
    CHECK_INIT(sgd_monitor_counters);
    CHECK_INIT(sgd_optim_stats);
    CHECK_INIT(sgd_param_info);
    CHECK_INIT(sgd_search_trial);
    CHECK_INIT(sgd_trainer_epoch);
    CHECK_INIT(sgd_trainer_stats);
    CHECK_INIT(sgd_tensor_info);
    CHECK_INIT(sgd_dist_stats);
    CHECK_INIT(sgd_optim_vtable_ext);
    CHECK_INIT(sgd_optim_step_info);
    CHECK_INIT(sgd_optim_vtable);
    CHECK_INIT(sgd_sched_vtable);
    CHECK_INIT(sgd_checkpoint_parts);
}

/* The helpers behind every getter and taker, with a struct that has grown since the caller's headers. */
static void test_struct_helpers(void **state)
{
    (void)state;
    struct grown {
        uint32_t struct_size;
        int32_t a;
        double b;
        double added; /* a member of a later release */
    } full = {sizeof full, 7, 2.5, 9.0};
    unsigned char buf[sizeof full + 8];
    memset(buf, CANARY, sizeof buf);
    set_size(buf, 16); /* the caller knows struct_size, a and b */
    sgdt_assert_status(sgd__struct_fill(buf, &full, sizeof full, 16, "test", "out"), SGD_OK);
    assert_int_equal(size_field(buf), 16);
    assert_memory_equal(buf + 4, (const unsigned char *)&full + 4, 12);
    assert_untouched(buf, 16, sizeof buf, "sgd__struct_fill");
    memset(buf, CANARY, sizeof buf);
    set_size(buf, 12);
    sgdt_assert_status(sgd__struct_fill(buf, &full, sizeof full, 16, "test", "out"), SGD_EINVAL);
    sgdt_assert_error_contains("test: out: struct_size=12 is smaller than the struct's first release (16 bytes)");
    assert_untouched(buf, 4, sizeof buf, "sgd__struct_fill");

    /* Options: the caller's older struct over the defaults; the new member keeps its default. */
    struct grown opts = {sizeof opts, 0, 0, -1.0};
    struct grown old = {16, 3, 4.5, 123.0}; /* `added` is not the caller's: never read */
    sgdt_assert_status(sgd__options_copy(&opts, sizeof opts, &old, 16, "test", "opts"), SGD_OK);
    assert_int_equal(opts.struct_size, sizeof opts);
    assert_true(opts.a == 3 && opts.b == 4.5 && opts.added == -1.0);
    sgdt_assert_status(sgd__options_copy(&opts, sizeof opts, NULL, 16, "test", "opts"), SGD_OK);
    unsigned char newer[sizeof full + 8];
    memset(newer, 0, sizeof newer);
    set_size(newer, sizeof newer);
    sgdt_assert_status(sgd__options_copy(&opts, sizeof opts, newer, 16, "test", "opts"), SGD_EINVAL);
    sgdt_assert_error_contains("test: opts: struct_size=32 is larger than this library's struct (24 bytes)");
    assert_true(opts.a == 3 && opts.added == -1.0); /* unchanged */
    /* Vtables: a newer host's larger table is accepted, its unknown tail ignored. */
    sgdt_assert_status(sgd__vtable_copy(&opts, sizeof opts, newer, 16, "test", "vt"), SGD_OK);
    assert_int_equal(opts.struct_size, sizeof opts);
    assert_true(opts.a == 0 && opts.added == 0.0);
    set_size(newer, 15);
    sgdt_assert_status(sgd__vtable_copy(&opts, sizeof opts, newer, 16, "test", "vt"), SGD_EINVAL);
}

/* Takers of input structs: options and vtables. */

#define TAKER(type, body)                                                                                    \
    static sgd_status take_##type(void *ctx, const void *in)                                                 \
    {                                                                                                         \
        const type *opts = in;                                                                                \
        body                                                                                                  \
    }

TAKER(sgd_model_options, {
    (void)ctx;
    sgd_model *m;
    sgd_status st = sgd_model_from_spec(&m, "2-3-2", opts, NULL);
    sgd_model_free(m);
    return st;
})
TAKER(sgd_loader_options, {
    sgd_loader *l;
    sgd_status st = sgd_loader_new(&l, F->d, 8, opts);
    sgd_loader_free(l);
    return st;
})
TAKER(sgd_monitor_options, {
    (void)ctx;
    sgd_monitor *m;
    sgd_status st = sgd_monitor_new(&m, opts, NULL);
    sgd_monitor_free(m);
    return st;
})
TAKER(sgd_trainer_options, {
    sgd_trainer *t;
    sgd_status st = sgd_trainer_new(&t, F->m, F->o, NULL, NULL, F->d, NULL, opts, NULL);
    sgd_trainer_free(t);
    return st;
})
TAKER(sgd_lrfind_options, {
    sgd_lrfind *r;
    sgd_status st = sgd_lrfind_run(&r, F->m2, F->o2, F->d, opts, NULL);
    sgd_lrfind_free(r);
    return st;
})
TAKER(sgd_search_options, {
    (void)ctx;
    sgd_search *s;
    sgd_status st = sgd_search_run_objective(&s, objective, NULL, opts, NULL);
    sgd_search_free(s);
    return st;
})
TAKER(sgd_checkpoint_parts, {
    sgd_ckpt_writer *w;
    sgd_status st = sgd_ckpt_writer_new(&w, NULL);
    if (st == SGD_OK)
        st = sgd_checkpoint_add(w, opts);
    sgd_ckpt_writer_free(w);
    return st;
})
TAKER(sgd_optim_hygiene, { return sgd_optim_set_hygiene(F->o2, opts); })
TAKER(sgd_text_options, {
    (void)ctx;
    static const char corpus[] = "to be or not to be\n";
    sgd_text *t;
    sgd_status st = sgd_text_from_memory(&t, corpus, sizeof corpus - 1, opts, NULL);
    sgd_text_free(st == SGD_OK ? t : NULL);
    return st;
})
TAKER(sgd_trainer_comm, { return sgd_trainer_set_comm(F->t, opts); })

static sgd_optim *parts_optim; /* what the checkpoint parts under test name */
static void init_sgd_checkpoint_parts(void *p)
{
    sgd_checkpoint_parts *o = p;
    sgd_checkpoint_parts_init(o);
    o->optim = parts_optim;
}

static void init_lrfind_short(void *p)
{
    sgd_lrfind_options *o = p;
    sgd_lrfind_options_init(o);
    o->steps = 8;
    o->batch_size = 8;
}

static void init_search_small(void *p)
{
    sgd_search_options *o = p;
    sgd_search_options_init(o);
    o->lr_count = 2;
}

static int v_step(float *params, const float *grads, float *const *slots, size_t n, double lr,
                  const sgd_optim_step_args *args, void *user)
{
    (void)slots, (void)args, (void)user;
    for (size_t i = 0; i < n; i++)
        params[i] -= (float)lr * grads[i];
    return 0;
}

static void init_optim_vtable(void *p)
{
    sgd_optim_vtable *vt = p;
    sgd_optim_vtable_init(vt);
    vt->name = "plain";
    vt->step = v_step;
}

static sgd_status take_optim_vtable(void *ctx, const void *in)
{
    (void)ctx;
    sgd_optim *o;
    sgd_status st = sgd_optim_new_custom(&o, in, NULL, 8, NULL);
    sgd_optim_free(o);
    return st;
}

static sgd_status s_lr(int64_t step, double *lr, void *user)
{
    (void)user;
    *lr = 0.1 / (double)(step + 1);
    return SGD_OK;
}

static void init_sched_vtable(void *p)
{
    sgd_sched_vtable *vt = p;
    sgd_sched_vtable_init(vt);
    vt->name = "inverse";
    vt->lr = s_lr;
}

static sgd_status take_sched_vtable(void *ctx, const void *in)
{
    (void)ctx;
    sgd_sched *s;
    sgd_status st = sgd_sched_new_custom(&s, in, NULL);
    sgd_sched_free(s);
    return st;
}

/* Schedules: each constructor, with what a valid schedule of its kind needs. */
static const int64_t milestones[2] = {10, 20};
#define SCHED_TAKER(kind, setup, call)                                                                       \
    static void init_sched_##kind(void *p)                                                                    \
    {                                                                                                         \
        sgd_sched_##kind##_options *o = p;                                                                    \
        sgd_sched_##kind##_options_init(o);                                                                   \
        setup;                                                                                                \
    }                                                                                                         \
    static sgd_status take_sched_##kind(void *ctx, const void *in)                                           \
    {                                                                                                         \
        (void)ctx;                                                                                            \
        const sgd_sched_##kind##_options *opts = in;                                                          \
        sgd_sched *s = NULL;                                                                                  \
        sgd_status st = call;                                                                                 \
        sgd_sched_free(s);                                                                                    \
        return st;                                                                                            \
    }
SCHED_TAKER(constant, (void)o, sgd_sched_constant_new(&s, 0.1, opts, NULL))
SCHED_TAKER(step, o->step_size = 10, sgd_sched_step_new(&s, 0.1, opts, NULL))
SCHED_TAKER(multistep, (o->milestones = milestones, o->n_milestones = 2),
            sgd_sched_multistep_new(&s, 0.1, opts, NULL))
SCHED_TAKER(exponential, o->gamma = 0.9, sgd_sched_exponential_new(&s, 0.1, opts, NULL))
SCHED_TAKER(polynomial, (void)o, sgd_sched_polynomial_new(&s, 0.1, opts, NULL))
SCHED_TAKER(cosine, o->T_max = 100, sgd_sched_cosine_new(&s, 0.1, opts, NULL))
SCHED_TAKER(cosine_warm_restarts, o->T_0 = 10, sgd_sched_cosine_warm_restarts_new(&s, 0.1, opts, NULL))
SCHED_TAKER(linear, (void)o, sgd_sched_linear_new(&s, 0.1, opts, NULL))
SCHED_TAKER(onecycle, (o->max_lr = 1.0, o->total_steps = 100), sgd_sched_onecycle_new(&s, opts, NULL))
SCHED_TAKER(cyclic, (o->base_lr = 0.01, o->max_lr = 0.1), sgd_sched_cyclic_new(&s, opts, NULL))

/* The composites own their inner schedule once made. */
#define COMPOSITE_TAKER(kind)                                                                                \
    static void init_sched_##kind(void *p) { sgd_sched_##kind##_options_init(p); }                            \
    static sgd_status take_sched_##kind(void *ctx, const void *in)                                           \
    {                                                                                                         \
        (void)ctx;                                                                                            \
        sgd_sched *inner, *s;                                                                                 \
        sgd_status st = sgd_sched_constant_new(&inner, 0.1, NULL, NULL);                                      \
        if (st != SGD_OK)                                                                                     \
            return st;                                                                                        \
        st = sgd_sched_##kind##_new(&s, inner, in, NULL);                                                     \
        sgd_sched_free(st == SGD_OK ? s : inner);                                                             \
        return st;                                                                                            \
    }
COMPOSITE_TAKER(warmup)
COMPOSITE_TAKER(plateau)

static void init_optim_ext(void *p) { sgd_optim_vtable_ext_init(p); }

static sgd_status take_optim_ext(void *ctx, const void *in)
{
    (void)ctx;
    sgd_optim_vtable vt;
    init_optim_vtable(&vt);
    sgd_optim *o;
    sgd_status st = sgd_optim_new_custom_ext(&o, &vt, in, NULL, 8, NULL);
    sgd_optim_free(st == SGD_OK ? o : NULL);
    return st;
}

/* 0.2's structs: the first released size is the current one (no smaller struct of an older release). */
#define OPTS_NEW(type, init) check_taker(#type, sizeof(type), init, take_##type, ctx, false)

static void test_takers_any_size(void **state)
{
    void *ctx = *state;
    parts_optim = F->o2;
#define OPTS(type, init) check_taker(#type, sizeof(type), init, take_##type, ctx, false)
    OPTS(sgd_model_options, init_sgd_model_options);
    OPTS(sgd_loader_options, init_sgd_loader_options);
    OPTS(sgd_monitor_options, init_sgd_monitor_options);
    OPTS(sgd_trainer_options, init_sgd_trainer_options);
    OPTS(sgd_lrfind_options, init_lrfind_short);
    OPTS(sgd_search_options, init_search_small);
    OPTS(sgd_checkpoint_parts, init_sgd_checkpoint_parts);
    OPTS(sgd_optim_hygiene, init_sgd_optim_hygiene);
#undef OPTS
#define SCHED(kind)                                                                                          \
    check_taker("sgd_sched_" #kind "_options", sizeof(sgd_sched_##kind##_options), init_sched_##kind,        \
                take_sched_##kind, ctx, false)
    SCHED(constant);
    SCHED(step);
    SCHED(multistep);
    SCHED(exponential);
    SCHED(polynomial);
    SCHED(cosine);
    SCHED(cosine_warm_restarts);
    SCHED(linear);
    SCHED(onecycle);
    SCHED(cyclic);
    SCHED(warmup);
    SCHED(plateau);
#undef SCHED
    check_taker("sgd_optim_vtable", sizeof(sgd_optim_vtable), init_optim_vtable, take_optim_vtable, ctx, true);
    check_taker("sgd_sched_vtable", sizeof(sgd_sched_vtable), init_sched_vtable, take_sched_vtable, ctx, true);
    OPTS_NEW(sgd_text_options, init_sgd_text_options);
    OPTS_NEW(sgd_trainer_comm, init_sgd_trainer_comm);
    check_taker("sgd_optim_vtable_ext", sizeof(sgd_optim_vtable_ext), init_optim_ext, take_optim_ext, ctx, true);
}
#undef F

int main(void)
{
    if (sizeof(void *) != 8 || sizeof(long) != 8) {
        print_message("layout pins are for LP64; skipped\n");
        return 77; /* meson: skipped */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_structs),
        cmocka_unit_test(test_sched_structs),
        cmocka_unit_test(test_data_structs),
        cmocka_unit_test(test_model_structs),
        cmocka_unit_test(test_checkpoint_structs),
        cmocka_unit_test(test_text_structs),
        cmocka_unit_test(test_optim_structs),
        cmocka_unit_test(test_trainer_structs),
        cmocka_unit_test(test_tune_structs),
        cmocka_unit_test(test_first_sizes),
        cmocka_unit_test(test_output_inits),
        cmocka_unit_test(test_struct_helpers),
        cmocka_unit_test_setup_teardown(test_getters_any_size, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_takers_any_size, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests_name("abi", tests, NULL, NULL);
}
