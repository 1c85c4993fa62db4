/*
 * Layout of the public structs, pinned (libfuse's test_abi.c). A failure here
 * means an ABI break: the SONAME must change, or the change must be undone.
 * Sizes are for LP64 (x86-64, aarch64); other data models skip the checks.
 */
#include "util/sgdtest.h"

#include <stddef.h>

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
    };
    return cmocka_run_group_tests_name("abi", tests, NULL, NULL);
}
