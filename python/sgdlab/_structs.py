"""ctypes mirrors of the public structs of include/sgdlab/*.h and the callback types.

Each class is named after its C struct without the ``sgd_`` prefix, in CamelCase,
and lists the C fields in order. ``python/tests/test_abi.py`` compares every one
with the sizes and offsets that a C program built from the headers prints (meson
builds it from the headers themselves), so a field added in C and not here, or
the other way round, fails the tests.

To add a field that a header appended: append it here, in the same place.
"""
from __future__ import annotations

import ctypes as C
from typing import Any, Dict, List, Tuple, Type

u32, i32, u64, i64, f64, sz = C.c_uint32, C.c_int32, C.c_uint64, C.c_int64, C.c_double, C.c_size_t
vp, cp = C.c_void_p, C.c_char_p
pf32 = C.POINTER(C.c_float)
pf64 = C.POINTER(C.c_double)
pi32 = C.POINTER(C.c_int32)
pi64 = C.POINTER(C.c_int64)


class Struct(C.Structure):
    """A C struct; ``set(**kw)`` assigns fields by name, refusing unknown ones."""

    _fields_: List[Tuple[str, Any]] = []
    #: The C name of the struct, for the layout check and for messages.
    c_name = ''

    def set(self, **kw: Any) -> None:
        names = {f[0] for f in self._fields_}
        for k, v in kw.items():
            if k not in names or k == 'struct_size':
                raise TypeError('%s has no field %r (fields: %s)'
                                % (self.c_name, k, ', '.join(sorted(names - {'struct_size'}))))
            setattr(self, k, v)

    def as_dict(self) -> Dict[str, Any]:
        """The fields by name (strings decoded, arrays as lists), without
        struct_size and the reserved padding."""
        out: Dict[str, Any] = {}
        for f in self._fields_:
            if f[0] in ('struct_size', 'reserved'):
                continue
            v = getattr(self, f[0])
            if isinstance(v, bytes):
                v = v.decode()
            elif isinstance(v, C.Array):
                v = list(v)
            out[f[0]] = v
        return out



# ---------------------------------------------------------------- core
MALLOC_FN = C.CFUNCTYPE(vp, sz, vp)
REALLOC_FN = C.CFUNCTYPE(vp, vp, sz, vp)
FREE_FN = C.CFUNCTYPE(None, vp, vp)


class Allocator(Struct):
    c_name = 'sgd_allocator'
    _fields_ = [('malloc_fn', MALLOC_FN), ('realloc_fn', REALLOC_FN), ('free_fn', FREE_FN), ('user', vp)]


# ---------------------------------------------------------------- data
class LoaderOptions(Struct):
    c_name = 'sgd_loader_options'
    _fields_ = [('struct_size', u32), ('shuffle', i32), ('drop_last', i32), ('reserved', i32), ('seed', u64),
                ('shard_index', i32), ('shard_count', i32)]


class Batch(Struct):
    c_name = 'sgd_batch'
    _fields_ = [('x', pf32), ('labels', pi32), ('targets', pf32), ('size', i64), ('epoch', i64), ('index', i64)]


# ---------------------------------------------------------------- model
class ModelOptions(Struct):
    c_name = 'sgd_model_options'
    _fields_ = [('struct_size', u32), ('init', i32), ('seed', u64), ('max_batch', i64), ('loss', i32),
                ('blas_threads', i32)]


class ParamInfo(Struct):
    c_name = 'sgd_param_info'
    _fields_ = [('struct_size', u32), ('kind', i32), ('name', cp), ('layer', i32), ('rank', i32),
                ('shape', i64 * 4), ('offset', sz), ('numel', sz)]


class TensorInfo(Struct):
    c_name = 'sgd_tensor_info'
    _fields_ = [('struct_size', u32), ('role', i32), ('name', cp), ('layer', i32), ('param_kind', i32),
                ('dtype', i32), ('rank', i32), ('shape', i64 * 4), ('numel', sz), ('offset', sz), ('data', vp)]


# ---------------------------------------------------------------- optim
class OptimStepArgs(Struct):
    c_name = 'sgd_optim_step_args'
    _fields_ = [('struct_size', u32), ('group', u32), ('call', u32), ('calls', u32), ('step', i64),
                ('offset', sz), ('weight_decay', f64), ('grad_scale', f64), ('clip_value', f64),
                # 0.2
                ('pass', u32), ('reserved', u32), ('base_lr', f64), ('lr_scale', f64), ('grad_sumsq', f64)]


class OptimHparam(Struct):
    c_name = 'sgd_optim_hparam'
    _fields_ = [('struct_size', u32), ('flags', u32), ('name', cp), ('default_value', f64), ('lower', f64),
                ('upper', f64)]


OPTIM_INIT_FN = C.CFUNCTYPE(C.c_int, C.POINTER(pf32), sz, vp)
OPTIM_STEP_FN = C.CFUNCTYPE(C.c_int, pf32, pf32, C.POINTER(pf32), sz, f64, C.POINTER(OptimStepArgs), vp)
OPTIM_EXPORT_FN = C.CFUNCTYPE(C.c_int, pf64, sz, vp)
OPTIM_IMPORT_FN = C.CFUNCTYPE(C.c_int, pf64, sz, vp)
OPTIM_SET_FN = C.CFUNCTYPE(C.c_int, cp, f64, vp)
OPTIM_GET_FN = C.CFUNCTYPE(C.c_int, cp, pf64, vp)
DESTROY_FN = C.CFUNCTYPE(None, vp)


class OptimVtable(Struct):
    c_name = 'sgd_optim_vtable'
    _fields_ = [('struct_size', u32), ('flags', u32), ('name', cp), ('n_slots', u32), ('n_scalars', u32),
                ('slot_names', C.POINTER(cp)), ('init', OPTIM_INIT_FN), ('step', OPTIM_STEP_FN),
                ('export_scalars', OPTIM_EXPORT_FN), ('import_scalars', OPTIM_IMPORT_FN),
                ('set_hparam', OPTIM_SET_FN), ('get_hparam', OPTIM_GET_FN), ('destroy', DESTROY_FN)]


OPTIM_DESCRIBE_FN = C.CFUNCTYPE(C.c_int, u32, C.POINTER(OptimHparam), vp)
OPTIM_SWAP_FN = C.CFUNCTYPE(C.c_int, pf32, C.POINTER(pf32), sz, i32, vp)


class OptimVtableExt(Struct):
    c_name = 'sgd_optim_vtable_ext'
    _fields_ = [('struct_size', u32), ('n_hparams', u32), ('describe_hparam', OPTIM_DESCRIBE_FN),
                ('swap', OPTIM_SWAP_FN)]


class OptimStepInfo(Struct):
    c_name = 'sgd_optim_step_info'
    _fields_ = [('struct_size', u32), ('applied', i32), ('nonfinite', i32), ('clipped', i32),
                ('grad_norm', f64), ('grad_max_abs', f64), ('clip_scale', f64), ('step', i64),
                ('consecutive_skips', i64)]


class OptimHygiene(Struct):
    c_name = 'sgd_optim_hygiene'
    _fields_ = [('struct_size', u32), ('nonfinite', i32), ('clip_norm', f64), ('clip_value', f64),
                ('max_consecutive_skips', u32)]


class OptimStats(Struct):
    c_name = 'sgd_optim_stats'
    _fields_ = [('struct_size', u32), ('reserved', u32), ('applied', i64), ('skipped', i64),
                ('consecutive_skips', i64), ('nonfinite', i64), ('clipped', i64)]


# ---------------------------------------------------------------- sched
SCHED_LR_FN = C.CFUNCTYPE(C.c_int, i64, pf64, vp)
SCHED_MOMENTUM_FN = C.CFUNCTYPE(C.c_int, i64, pf64, pi32, vp)
SCHED_OBSERVE_FN = C.CFUNCTYPE(C.c_int, i64, f64, vp)
SCHED_EXPORT_FN = C.CFUNCTYPE(C.c_int, pf64, sz, vp)
SCHED_IMPORT_FN = C.CFUNCTYPE(C.c_int, pf64, sz, vp)


class SchedVtable(Struct):
    c_name = 'sgd_sched_vtable'
    _fields_ = [('struct_size', u32), ('name', cp), ('lr', SCHED_LR_FN), ('momentum', SCHED_MOMENTUM_FN),
                ('observe', SCHED_OBSERVE_FN), ('state_size', sz), ('state_export', SCHED_EXPORT_FN),
                ('state_import', SCHED_IMPORT_FN), ('destroy', DESTROY_FN), ('user', vp)]


class SchedConstantOptions(Struct):
    c_name = 'sgd_sched_constant_options'
    _fields_ = [('struct_size', u32), ('factor', f64), ('total_iters', i64)]


class SchedStepOptions(Struct):
    c_name = 'sgd_sched_step_options'
    _fields_ = [('struct_size', u32), ('step_size', i64), ('gamma', f64)]


class SchedMultistepOptions(Struct):
    c_name = 'sgd_sched_multistep_options'
    _fields_ = [('struct_size', u32), ('milestones', pi64), ('n_milestones', sz), ('gamma', f64)]


class SchedExponentialOptions(Struct):
    c_name = 'sgd_sched_exponential_options'
    _fields_ = [('struct_size', u32), ('gamma', f64)]


class SchedPolynomialOptions(Struct):
    c_name = 'sgd_sched_polynomial_options'
    _fields_ = [('struct_size', u32), ('total_iters', i64), ('power', f64)]


class SchedCosineOptions(Struct):
    c_name = 'sgd_sched_cosine_options'
    _fields_ = [('struct_size', u32), ('T_max', i64), ('eta_min', f64)]


class SchedCosineWarmRestartsOptions(Struct):
    c_name = 'sgd_sched_cosine_warm_restarts_options'
    _fields_ = [('struct_size', u32), ('T_0', i64), ('T_mult', i64), ('eta_min', f64)]


class SchedLinearOptions(Struct):
    c_name = 'sgd_sched_linear_options'
    _fields_ = [('struct_size', u32), ('start_factor', f64), ('end_factor', f64), ('total_iters', i64)]


class SchedOnecycleOptions(Struct):
    c_name = 'sgd_sched_onecycle_options'
    _fields_ = [('struct_size', u32), ('max_lr', f64), ('total_steps', i64), ('epochs', i64),
                ('steps_per_epoch', i64), ('pct_start', f64), ('anneal_strategy', i32), ('cycle_momentum', i32),
                ('base_momentum', f64), ('max_momentum', f64), ('div_factor', f64), ('final_div_factor', f64),
                ('three_phase', i32)]


class SchedCyclicOptions(Struct):
    c_name = 'sgd_sched_cyclic_options'
    _fields_ = [('struct_size', u32), ('base_lr', f64), ('max_lr', f64), ('step_size_up', i64),
                ('step_size_down', i64), ('mode', i32), ('cycle_momentum', i32), ('gamma', f64),
                ('base_momentum', f64), ('max_momentum', f64)]


class SchedWarmupOptions(Struct):
    c_name = 'sgd_sched_warmup_options'
    _fields_ = [('struct_size', u32), ('start_factor', f64), ('total_iters', i64)]


class SchedPlateauOptions(Struct):
    c_name = 'sgd_sched_plateau_options'
    _fields_ = [('struct_size', u32), ('mode', i32), ('factor', f64), ('patience', i64), ('threshold', f64),
                ('threshold_mode', i32), ('cooldown', i64), ('min_lr', f64), ('eps', f64)]


# ---------------------------------------------------------------- monitor
class MonitorOptions(Struct):
    c_name = 'sgd_monitor_options'
    _fields_ = [('struct_size', u32), ('initial_steps', i32), ('loss_floor', f64), ('level_steps', f64),
                ('noise_steps', f64), ('divergence_ratio', f64), ('divergence_jump_ratio', f64),
                ('divergence_confirm_ratio', f64), ('divergence_z', f64), ('divergence_count', i32),
                ('divergence_window', i32), ('spike_ratio', f64), ('spike_z', f64), ('oscillation_ratio', f64),
                ('oscillation_steps', i32), ('oscillation_spikes', i32), ('oscillation_window', i32),
                ('plateau_steps', i32), ('stagnation_steps', i32), ('spike_recovery_steps', i32),
                ('stagnation_min_drop', f64), ('stagnation_max_drop', f64), ('stagnation_z', f64),
                ('stagnation_shape', f64), ('progress_fast_steps', f64), ('progress_slow_steps', f64),
                # 0.2
                ('initial_loss', f64), ('min_steps', i32), ('reserved0', i32), ('drift_ratio', f64),
                ('grad_spike_ratio', f64)]


class MonitorEvent(Struct):
    c_name = 'sgd_monitor_event'
    _fields_ = [('struct_size', u32), ('kind', i32), ('step', i64), ('loss', f64), ('grad_norm', f64),
                ('lr', f64), ('smoothed', f64), ('statistic', f64), ('threshold', f64), ('severity', i32),
                ('suggested_action', i32), ('suggested_lr_scale', f64), ('remedy', cp), ('detail', cp),
                # 0.2
                ('producer_step', i64), ('ref_step', i64), ('ref_producer_step', i64)]


MONITOR_CALLBACK = C.CFUNCTYPE(i32, C.POINTER(MonitorEvent), pf64, vp)


class MonitorCounters(Struct):
    c_name = 'sgd_monitor_counters'
    _fields_ = [('struct_size', u32), ('verdict', i32), ('steps', i64), ('nonfinite_steps', i64),
                ('first_alarm', i64), ('events', i64 * 8), ('first_event', i64 * 8), ('initial', f64),
                ('smoothed', f64), ('best', f64), ('noise', f64), ('progress', f64),
                # 0.2
                ('first_alarm_producer_step', i64), ('below_floor_steps', i64), ('grad_norm', f64),
                ('finished', i32), ('reserved0', i32)]


# ---------------------------------------------------------------- trainer
class TrainerOptions(Struct):
    c_name = 'sgd_trainer_options'
    _fields_ = [('struct_size', u32), ('shuffle', i32), ('batch_size', i64), ('epochs', i64), ('seed', u64),
                ('drop_last', i32), ('nonfinite', i32), ('clip_norm', f64), ('clip_value', f64),
                ('eval_batch_size', i64), ('patience', i64), ('min_delta', f64), ('guard', i32),
                ('stop_on_divergence', i32), ('guard_interval', i64), ('guard_factor', f64),
                ('guard_max_rescues', i64), ('guard_skip', i64), ('progress_interval', i64)]


class TrainerProgress(Struct):
    c_name = 'sgd_trainer_progress'
    _fields_ = [('struct_size', u32), ('phase', i32), ('step', i64), ('epoch', i64), ('epochs', i64),
                ('batch', i64), ('batches', i64), ('loss', f64), ('smoothed_loss', f64), ('lr', f64),
                ('samples_per_sec', f64), ('elapsed', f64), ('eta', f64), ('fraction', f64),
                ('train_loss', f64), ('val_loss', f64), ('val_accuracy', f64), ('rescues', i64),
                ('guard_scale', f64), ('train_bpc', f64), ('val_bpc', f64), ('train_perplexity', f64),
                ('val_perplexity', f64)]


TRAINER_PROGRESS_FN = C.CFUNCTYPE(i32, C.POINTER(TrainerProgress), vp)


class TrainerEvent(Struct):
    c_name = 'sgd_trainer_event'
    _fields_ = [('struct_size', u32), ('kind', i32), ('step', i64), ('epoch', i64),
                ('monitor', C.POINTER(MonitorEvent)), ('action', i32), ('reserved', i32), ('lr_scale', f64),
                ('lr', f64), ('guard_scale', f64), ('rescues', i64), ('restored_step', i64), ('message', cp)]


TRAINER_EVENT_FN = C.CFUNCTYPE(i32, C.POINTER(TrainerEvent), pf64, vp)

TRAINER_ALLREDUCE_FN = C.CFUNCTYPE(C.c_int, pf32, sz, pf64, sz, vp)


class TrainerComm(Struct):
    c_name = 'sgd_trainer_comm'
    _fields_ = [('struct_size', u32), ('rank', i32), ('size', i32), ('reserved', i32),
                ('allreduce', TRAINER_ALLREDUCE_FN), ('user', vp)]


class TrainerStats(Struct):
    c_name = 'sgd_trainer_stats'
    _fields_ = [('struct_size', u32), ('stop_reason', i32), ('step', i64), ('epoch', i64), ('batch', i64),
                ('batches_run', i64), ('updates', i64), ('skipped', i64), ('rescues', i64), ('rollbacks', i64),
                ('events', i64 * 8), ('guard_scale', f64), ('lr', f64), ('last_loss', f64), ('recent_loss', f64),
                ('best_val_loss', f64), ('epochs_without_improvement', i64)]


class TrainerEpoch(Struct):
    c_name = 'sgd_trainer_epoch'
    _fields_ = [('struct_size', u32), ('done', i32), ('train_loss', f64), ('val_loss', f64),
                ('val_accuracy', f64), ('lr', f64), ('step', i64), ('rescues', i64), ('seconds', f64),
                ('train_bpc', f64), ('val_bpc', f64), ('train_perplexity', f64), ('val_perplexity', f64)]


# ---------------------------------------------------------------- text
class TextOptions(Struct):
    c_name = 'sgd_text_options'
    _fields_ = [('struct_size', u32), ('unit', i32), ('max_bytes', i64)]


class TextSplitOptions(Struct):
    c_name = 'sgd_text_split_options'
    _fields_ = [('struct_size', u32), ('reserved', i32), ('seq_len', i64), ('streams', i64), ('val_fraction', f64),
                ('val_streams', i64)]


class GenerateOptions(Struct):
    c_name = 'sgd_generate_options'
    _fields_ = [('struct_size', u32), ('reserved', i32), ('prime', cp), ('length', i64), ('temperature', f64),
                ('seed', u64)]


# ---------------------------------------------------------------- tune
LRFIND_PROGRESS_FN = C.CFUNCTYPE(i32, i64, i64, f64, f64, vp)


class LrfindOptions(Struct):
    c_name = 'sgd_lrfind_options'
    _fields_ = [('struct_size', u32), ('ramp', i32), ('lr_min', f64), ('lr_max', f64), ('steps', i64),
                ('batch_size', i64), ('seed', u64), ('beta', f64), ('stop_factor', f64), ('shuffle', i32),
                ('reserved', i32), ('progress', LRFIND_PROGRESS_FN), ('progress_user', vp)]


class LrfindSample(Struct):
    c_name = 'sgd_lrfind_sample'
    _fields_ = [('struct_size', u32), ('used', i32), ('lr', f64), ('loss', f64), ('smoothed', f64),
                ('fit', f64), ('slope', f64)]


class SearchTrial(Struct):
    c_name = 'sgd_search_trial'
    _fields_ = [('struct_size', u32), ('status', i32), ('index', i64), ('lr', f64), ('optimizer', cp),
                ('momentum', f64), ('batch_size', i64), ('seed', u64), ('max_steps', i64), ('final_loss', f64),
                ('val_loss', f64), ('val_accuracy', f64), ('verdict', i32), ('stop_reason', i32), ('steps', i64),
                ('first_alarm', i64), ('seconds', f64)]


SEARCH_OBJECTIVE = C.CFUNCTYPE(C.c_int, C.POINTER(SearchTrial), vp)
SEARCH_STEP_FN = C.CFUNCTYPE(None, i64, i64, f64, f64, vp)
SEARCH_EVENT_FN = C.CFUNCTYPE(None, i64, C.POINTER(TrainerEvent), vp)
SEARCH_TRIAL_FN = C.CFUNCTYPE(None, C.POINTER(SearchTrial), i64, i64, vp)


class SearchOptions(Struct):
    c_name = 'sgd_search_options'
    _fields_ = [('struct_size', u32), ('method', i32), ('lr_min', f64), ('lr_max', f64), ('lr_count', i64),
                ('lrs', pf64), ('n_lrs', sz), ('optimizers', C.POINTER(cp)), ('n_optimizers', sz),
                ('momenta', pf64), ('n_momenta', sz), ('batch_sizes', pi64), ('n_batch_sizes', sz),
                ('trials', i64), ('seed', u64), ('max_steps', i64), ('schedule', cp), ('threads', i32),
                ('reserved', i32), ('trainer', C.POINTER(TrainerOptions)), ('monitor', C.POINTER(MonitorOptions)),
                ('on_step', SEARCH_STEP_FN), ('on_event', SEARCH_EVENT_FN), ('on_trial', SEARCH_TRIAL_FN),
                ('user', vp), ('shard_index', i32), ('shard_count', i32)]


# ---------------------------------------------------------------- checkpoint
class CkptSectionInfo(Struct):
    c_name = 'sgd_ckpt_section_info'
    _fields_ = [('struct_size', u32), ('flags', u32), ('name', cp), ('tensor_count', u64), ('offset', u64),
                ('size', u64), ('crc32c', u32), ('reserved', u32)]


class CkptTensorInfo(Struct):
    c_name = 'sgd_ckpt_tensor_info'
    _fields_ = [('struct_size', u32), ('dtype', i32), ('name', cp), ('section', cp), ('rank', u32),
                ('reserved', u32), ('dims', i64 * 8), ('count', u64), ('nbytes', u64), ('offset', u64)]


class CheckpointParts(Struct):
    c_name = 'sgd_checkpoint_parts'
    _fields_ = [('struct_size', u32), ('reserved', u32), ('model', vp), ('optim', vp), ('sched', vp),
                ('monitor', vp), ('trainer', vp)]


#: Every mirrored struct, by C name (the layout test walks this).
ALL: Dict[str, Type[Struct]] = {
    cls.c_name: cls for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, Struct) and cls is not Struct
}
