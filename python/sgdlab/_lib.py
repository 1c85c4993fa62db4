"""Loading libsgdlab, the prototypes of its functions, and status checking.

The library is looked for, in this order, and the first that loads and whose
version fits this package is used:

1. the path in the environment variable ``SGDLAB_LIBRARY`` (if it is set, it
   must work: nothing else is tried);
2. the installed library: the libdir recorded by ``meson install`` when it
   installed this package (``_config.py``), then ``libsgdlab.so.0`` through
   the dynamic loader's search path (ld.so.cache, ``LD_LIBRARY_PATH``);
3. a build tree: ``build*/lib/libsgdlab.so.0`` in the source tree this package
   sits in (``python/sgdlab`` of a checkout).

:func:`library_info` says which one was loaded and why.

Prototypes are declared from the table below, one line per C function. A
function that the loaded library lacks (a newer function, an older library)
is left out; :func:`has` tells.
"""
from __future__ import annotations

import ctypes as C
import glob
import os
import pathlib
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _structs as st
from .errors import ECALLBACK, Error, VersionError, error_for

#: The version of this package; the library must have the same major version
#: and at least this minor version.
PACKAGE_VERSION = '0.2.0'
SONAME = 'libsgdlab.so.0'


@dataclass(frozen=True)
class LibraryInfo:
    """Which libsgdlab was loaded: its path, how it was found, its version."""
    path: str
    found_by: str  #: "SGDLAB_LIBRARY", "installed" or "build tree"
    version: str
    version_number: int
    rejected: Tuple[str, ...] = ()  #: candidates tried before it and why they were not used

    def __str__(self) -> str:
        return 'libsgdlab %s from %s (%s)' % (self.version, self.path, self.found_by)


def _required() -> Tuple[int, int]:
    major, minor, _ = (int(x) for x in PACKAGE_VERSION.split('.'))
    return major, minor


def _candidates() -> List[Tuple[str, str]]:
    out: List[Tuple[str, str]] = []
    try:
        from . import _config  # type: ignore[attr-defined]  # written by meson install
        libdir = getattr(_config, 'LIBDIR', '')
        if libdir:
            out.append((os.path.join(libdir, SONAME), 'installed'))
    except ImportError:
        pass
    out.append((SONAME, 'installed'))
    root = pathlib.Path(__file__).resolve().parent.parent.parent  # python/sgdlab/ of a checkout
    if (root / 'meson.build').is_file() and (root / 'include' / 'sgdlab').is_dir():
        # build/ first, then the other build dirs; never a sanitizer build (its
        # runtime must come first in the process: loading it here would abort).
        dirs = sorted(glob.glob(str(root / 'build*')), key=lambda d: (os.path.basename(d) != 'build', d))
        for d in dirs:
            lib = os.path.join(d, 'lib', SONAME)
            if os.path.exists(lib) and not _sanitized(lib):
                out.append((lib, 'build tree'))
    return out


def _sanitized(path: str) -> bool:
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError:
        return False
    return b'libasan.so' in data or b'libubsan.so' in data or b'__asan_init' in data


def _open(path: str) -> Tuple[C.CDLL, str, int]:
    lib = C.CDLL(path)
    lib.sgd_version_number.restype = C.c_uint32
    lib.sgd_version_number.argtypes = []
    lib.sgd_version_string.restype = C.c_char_p
    lib.sgd_version_string.argtypes = []
    return lib, lib.sgd_version_string().decode(), int(lib.sgd_version_number())


def _fits(number: int) -> bool:
    major, minor = _required()
    return number // 10000 == major and (number // 100) % 100 >= minor


def _real_path(lib: C.CDLL, fallback: str) -> str:
    """The file the dynamic loader mapped for @p lib (from /proc/self/maps)."""
    try:
        addr = C.cast(lib.sgd_version_string, C.c_void_p).value or 0
        with open('/proc/self/maps') as f:
            for line in f:
                parts = line.split()
                lo, hi = (int(x, 16) for x in parts[0].split('-'))
                if lo <= addr < hi and len(parts) >= 6:
                    return parts[5]
    except OSError:
        pass
    return fallback


def load() -> Tuple[C.CDLL, LibraryInfo]:
    """Finds and loads libsgdlab (see the module's notes); raises ImportError
    naming every place tried, or VersionError for a library that does not fit."""
    env = os.environ.get('SGDLAB_LIBRARY')
    major, minor = _required()
    if env:
        try:
            lib, ver, num = _open(env)
        except OSError as e:
            raise ImportError('sgdlab: SGDLAB_LIBRARY=%s cannot be loaded: %s' % (env, e)) from None
        if not _fits(num):
            raise VersionError('sgdlab %s needs libsgdlab %d.%d or a later %d.x; SGDLAB_LIBRARY=%s is %s'
                               % (PACKAGE_VERSION, major, minor, major, env, ver))
        return lib, LibraryInfo(_real_path(lib, env), 'SGDLAB_LIBRARY', ver, num)
    rejected: List[str] = []
    for path, how in _candidates():
        try:
            lib, ver, num = _open(path)
        except (OSError, AttributeError) as e:
            rejected.append('%s (%s): %s' % (path, how, e))
            continue
        if not _fits(num):
            rejected.append('%s (%s): version %s does not fit sgdlab %s' % (path, how, ver, PACKAGE_VERSION))
            continue
        return lib, LibraryInfo(_real_path(lib, path), how, ver, num, tuple(rejected))
    raise ImportError('sgdlab: libsgdlab %d.%d not found; set SGDLAB_LIBRARY to the path of %s. Tried:\n  %s'
                      % (major, minor, SONAME, '\n  '.join(rejected)))


# ---------------------------------------------------------------- prototypes
P = C.c_void_p          # a handle or an array's address
PP = C.POINTER(C.c_void_p)
S = C.c_char_p
I = C.c_int             # sgd_status and plain int
I32, U32, I64, U64, D, SZ = C.c_int32, C.c_uint32, C.c_int64, C.c_uint64, C.c_double, C.c_size_t
pI32, pU32, pI64, pU64 = C.POINTER(I32), C.POINTER(U32), C.POINTER(I64), C.POINTER(U64)
pD, pSZ = C.POINTER(D), C.POINTER(SZ)
pS = C.POINTER(S)
V = None


def ptr(cls: Any) -> Any:
    return C.POINTER(cls)


#: name: (result type, argument types), one per exported function, by module.
PROTOTYPES: Dict[str, Tuple[Any, List[Any]]] = {
    # core
    'sgd_status_str': (S, [I]), 'sgd_error_last': (S, []), 'sgd_error_clear': (V, []),
    'sgd_error_set': (I, [I, S]),
    'sgd_version_number': (U32, []), 'sgd_version_string': (S, []),
    # data
    'sgd_dataset_from_labels': (I, [PP, P, P, I64, I64, P]),
    'sgd_dataset_from_targets': (I, [PP, P, P, I64, I64, I64, P]),
    'sgd_dataset_free': (V, [P]), 'sgd_dataset_size': (I64, [P]), 'sgd_dataset_dim': (I64, [P]),
    'sgd_dataset_target_dim': (I64, [P]), 'sgd_dataset_num_classes': (I32, [P]),
    'sgd_dataset_row': (I, [P, I64, PP, pI32, PP]),
    'sgd_dataset_subset': (I, [PP, P, I64, I64]),
    'sgd_dataset_split': (I, [PP, PP, P, I64, I32, U64]),
    'sgd_dataset_from_sequence_labels': (I, [PP, P, P, I64, I64, I64, P]),
    'sgd_dataset_labels_per_row': (I64, [P]), 'sgd_dataset_set_streams': (I, [P, I64]),
    'sgd_dataset_streams': (I64, [P]),
    'sgd_loader_options_init': (V, [ptr(st.LoaderOptions)]),
    'sgd_loader_new': (I, [PP, P, I64, ptr(st.LoaderOptions)]),
    'sgd_loader_next': (I, [P, ptr(st.Batch)]), 'sgd_loader_num_batches': (I64, [P]),
    'sgd_loader_seek': (I, [P, I64, I64]), 'sgd_loader_free': (V, [P]),
    'sgd_idx_read_memory': (I, [PP, P, SZ, P]), 'sgd_idx_read_file': (I, [PP, S, P]),
    'sgd_idx_free': (V, [P]), 'sgd_idx_type': (I32, [P]), 'sgd_idx_rank': (I32, [P]),
    'sgd_idx_dim': (I64, [P, I32]), 'sgd_idx_count': (I64, [P]), 'sgd_idx_data': (P, [P]),
    'sgd_dataset_from_idx': (I, [PP, P, P, P]), 'sgd_dataset_load_idx': (I, [PP, S, S, P]),
    # model
    'sgd_model_options_init': (V, [ptr(st.ModelOptions)]),
    'sgd_model_new': (I, [PP, I64, P]), 'sgd_model_add_dense': (I, [P, I64, I32]),
    'sgd_model_add_activation': (I, [P, I32]), 'sgd_model_add_leaky_relu': (I, [P, D]),
    'sgd_model_add_dropout': (I, [P, D]), 'sgd_model_build': (I, [P, ptr(st.ModelOptions)]),
    'sgd_model_from_spec': (I, [PP, S, ptr(st.ModelOptions), P]), 'sgd_model_free': (V, [P]),
    'sgd_model_spec': (S, [P]), 'sgd_model_num_inputs': (I64, [P]), 'sgd_model_num_outputs': (I64, [P]),
    'sgd_model_num_layers': (SZ, [P]), 'sgd_model_layer_kind': (I32, [P, SZ]),
    'sgd_model_loss_kind': (I32, [P]), 'sgd_model_set_loss_kind': (I, [P, I32]),
    'sgd_model_num_params': (SZ, [P]), 'sgd_model_num_param_tensors': (SZ, [P]),
    'sgd_model_param_info': (I, [P, SZ, ptr(st.ParamInfo)]), 'sgd_model_find_param': (I, [P, S, pSZ]),
    'sgd_model_params': (P, [P]), 'sgd_model_grads': (P, [P]),
    'sgd_model_get_params': (I, [P, P, SZ]), 'sgd_model_set_params': (I, [P, P, SZ]),
    'sgd_model_zero_grad': (I, [P]), 'sgd_model_reset': (I, [P, U64]),
    'sgd_model_get_rng_state': (I, [P, pU64]), 'sgd_model_set_rng_state': (I, [P, pU64]),
    'sgd_model_set_training': (I, [P, I32]), 'sgd_model_is_training': (I32, [P]),
    'sgd_model_max_batch': (I64, [P]), 'sgd_model_reserve': (I, [P, I64]),
    'sgd_model_set_blas_threads': (I, [P, I32]),
    'sgd_model_forward': (I, [P, P, I64, PP]), 'sgd_model_compute_loss': (I, [P, P, P, pD]),
    'sgd_model_backward': (I, [P]), 'sgd_model_backward_from': (I, [P, P]),
    'sgd_model_forward_backward': (I, [P, P, P, P, I64, pD]),
    'sgd_model_predict': (I, [P, P, I64, P, SZ]), 'sgd_model_evaluate': (I, [P, P, I64, pD, pD]),
    # model, 0.2: shaped inputs, layers from tokens, every tensor, buffers, state
    'sgd_model_new_shaped': (I, [PP, I32, pI64, P]), 'sgd_model_add_layer': (I, [P, S]),
    'sgd_model_input_shape': (I, [P, pI32, pI64]), 'sgd_model_output_shape': (I, [P, pI32, pI64]),
    'sgd_model_layer_shape': (I, [P, SZ, pI32, pI64]),
    'sgd_model_num_tensors': (SZ, [P]),
    'sgd_model_tensor_info': (I, [P, SZ, ptr(st.TensorInfo)]), 'sgd_model_find_tensor': (I, [P, S, pSZ]),
    'sgd_model_read_tensor': (I, [P, SZ, P, SZ]), 'sgd_model_write_tensor': (I, [P, SZ, P, SZ]),
    'sgd_model_buffer_bytes': (SZ, [P]), 'sgd_model_buffers': (P, [P]), 'sgd_model_reset_state': (I, [P]),
    'sgd_model_state_size': (SZ, [P]), 'sgd_model_get_state': (I, [P, P, SZ]), 'sgd_model_set_state': (I, [P, P, SZ]),
    'sgd_model_seq_len': (I64, [P]), 'sgd_model_set_seq_len': (I, [P, I64]),
    # text
    'sgd_text_options_init': (V, [ptr(st.TextOptions)]),
    'sgd_text_from_memory': (I, [PP, P, SZ, ptr(st.TextOptions), P]),
    'sgd_text_load': (I, [PP, pS, SZ, ptr(st.TextOptions), P]), 'sgd_text_free': (V, [P]),
    'sgd_text_length': (I64, [P]), 'sgd_text_tokens': (pI32, [P]), 'sgd_text_vocab': (P, [P]),
    'sgd_text_bytes': (I64, [P]), 'sgd_text_num_files': (I64, [P]),
    'sgd_vocab_new': (I, [PP, I32, pU32, I64, P]), 'sgd_vocab_copy': (I, [PP, P, P]), 'sgd_vocab_free': (V, [P]),
    'sgd_vocab_size': (I64, [P]), 'sgd_vocab_unit': (I32, [P]), 'sgd_vocab_symbols': (pU32, [P]),
    'sgd_vocab_equal': (I32, [P, P]), 'sgd_vocab_encode': (I, [P, S, SZ, pI32, SZ, pSZ]),
    'sgd_vocab_decode': (I, [P, pI32, SZ, P, SZ, pSZ]),
    'sgd_text_split_options_init': (V, [ptr(st.TextSplitOptions)]),
    'sgd_text_datasets': (I, [PP, PP, P, ptr(st.TextSplitOptions)]),
    'sgd_generate_options_init': (V, [ptr(st.GenerateOptions)]),
    'sgd_text_generate_bound': (SZ, [P, I64]),
    'sgd_text_generate': (I, [P, P, ptr(st.GenerateOptions), P, SZ, pSZ]),
    # optim
    'sgd_optim_vtable_init': (V, [ptr(st.OptimVtable)]),
    'sgd_optim_new': (I, [PP, S, SZ, P]), 'sgd_optim_new_custom': (I, [PP, ptr(st.OptimVtable), P, SZ, P]),
    'sgd_optim_free': (V, [P]), 'sgd_optim_name': (S, [P]), 'sgd_optim_size': (SZ, [P]),
    'sgd_optim_builtin_name': (S, [SZ]), 'sgd_optim_step_info_init': (V, [ptr(st.OptimStepInfo)]),
    'sgd_optim_step': (I, [P, P, P, D, ptr(st.OptimStepInfo)]),
    'sgd_optim_set': (I, [P, S, D]), 'sgd_optim_get': (I, [P, S, pD]),
    'sgd_optim_get_step': (I, [P, pI64]), 'sgd_optim_set_step': (I, [P, I64]),
    'sgd_optim_add_group': (I, [P, SZ, SZ, D, D, pSZ]), 'sgd_optim_group_count': (SZ, [P]),
    'sgd_optim_get_group': (I, [P, SZ, pSZ, pSZ, pD, pD]), 'sgd_optim_set_group': (I, [P, SZ, D, D]),
    'sgd_optim_hygiene_init': (V, [ptr(st.OptimHygiene)]),
    'sgd_optim_set_hygiene': (I, [P, ptr(st.OptimHygiene)]),
    'sgd_optim_get_hygiene': (I, [P, ptr(st.OptimHygiene)]),
    'sgd_optim_get_stats': (I, [P, ptr(st.OptimStats)]), 'sgd_optim_reset': (I, [P]),
    'sgd_optim_state_count': (SZ, [P]), 'sgd_optim_state_describe': (I, [P, SZ, pS, pI32, pSZ]),
    'sgd_optim_state_find': (I, [P, S, pSZ]), 'sgd_optim_state_export': (I, [P, SZ, P, SZ]),
    'sgd_optim_state_data': (I, [P, SZ, PP]), 'sgd_optim_state_import': (I, [P, SZ, P, SZ]),
    # optim, 0.2
    'sgd_optim_vtable_ext_init': (V, [ptr(st.OptimVtableExt)]),
    'sgd_optim_new_custom_ext': (I, [PP, ptr(st.OptimVtable), ptr(st.OptimVtableExt), P, SZ, P]),
    'sgd_optim_hparam_init': (V, [ptr(st.OptimHparam)]),
    'sgd_optim_kind_hparam_count': (SZ, [S]), 'sgd_optim_kind_hparam': (I, [S, SZ, ptr(st.OptimHparam)]),
    'sgd_optim_hparam_count': (SZ, [P]), 'sgd_optim_hparam_describe': (I, [P, SZ, ptr(st.OptimHparam)]),
    'sgd_optim_hparam_bounds': (I, [P, S, ptr(st.OptimHparam)]), 'sgd_optim_momentum_name': (S, [P]),
    'sgd_optim_eval_point': (I, [P, P, I32]), 'sgd_optim_at_eval_point': (I32, [P]),
    'sgd_optim_has_eval_point': (I32, [P]), 'sgd_optim_set_tensors': (I, [P, pSZ, SZ]),
    'sgd_optim_simd_level': (S, []),
    # sched
    'sgd_sched_vtable_init': (V, [ptr(st.SchedVtable)]),
    'sgd_sched_new_custom': (I, [PP, ptr(st.SchedVtable), P]), 'sgd_sched_new': (I, [PP, S, D, P]),
    'sgd_sched_free': (V, [P]), 'sgd_sched_name': (S, [P]), 'sgd_sched_lr': (I, [P, I64, pD]),
    'sgd_sched_lrs': (I, [P, I64, SZ, P]), 'sgd_sched_cycles_momentum': (I32, [P]),
    'sgd_sched_momentum': (I, [P, I64, pD, pI32]), 'sgd_sched_watches_metric': (I32, [P]),
    'sgd_sched_observe': (I, [P, I64, D]), 'sgd_sched_state_size': (SZ, [P]),
    'sgd_sched_state_export': (I, [P, P, SZ]), 'sgd_sched_state_import': (I, [P, P, SZ]),
    'sgd_sched_sequential_new': (I, [PP, P, SZ, P, P]),
    'sgd_sched_warmup_options_init': (V, [ptr(st.SchedWarmupOptions)]),
    'sgd_sched_warmup_new': (I, [PP, P, ptr(st.SchedWarmupOptions), P]),
    'sgd_sched_plateau_options_init': (V, [ptr(st.SchedPlateauOptions)]),
    'sgd_sched_plateau_new': (I, [PP, P, ptr(st.SchedPlateauOptions), P]),
    # monitor
    'sgd_monitor_options_init': (I, [ptr(st.MonitorOptions)]),
    'sgd_monitor_options_parse': (I, [ptr(st.MonitorOptions), S]),
    'sgd_monitor_new': (I, [PP, ptr(st.MonitorOptions), P]), 'sgd_monitor_free': (V, [P]),
    'sgd_monitor_reset': (I, [P]),
    'sgd_monitor_add_callback': (I, [P, pI32, U32, st.MONITOR_CALLBACK, P]),
    'sgd_monitor_remove_callback': (I, [P, I32]),
    'sgd_monitor_observe': (I, [P, D, D, D, pI32, pD]),
    'sgd_monitor_observe_step': (I, [P, I64, D, D, D, pI32, pD]), 'sgd_monitor_finish': (I, [P, pI32]),
    'sgd_monitor_get_verdict': (I, [P, pI32]),
    'sgd_monitor_get_counters': (I, [P, ptr(st.MonitorCounters)]),
    'sgd_monitor_state_size': (I, [P, pSZ]), 'sgd_monitor_state_export': (I, [P, P, SZ]),
    'sgd_monitor_state_import': (I, [P, P, SZ]), 'sgd_monitor_kind_name': (S, [I32]),
    'sgd_monitor_verdict_name': (S, [I32]), 'sgd_monitor_action_name': (S, [I32]),
    # trainer
    'sgd_trainer_options_init': (V, [ptr(st.TrainerOptions)]),
    'sgd_trainer_options_parse': (I, [ptr(st.TrainerOptions), S]),
    'sgd_trainer_new': (I, [PP, P, P, P, P, P, P, ptr(st.TrainerOptions), P]),
    'sgd_trainer_free': (V, [P]),
    'sgd_trainer_set_progress': (I, [P, st.TRAINER_PROGRESS_FN, P]),
    'sgd_trainer_set_event_callback': (I, [P, st.TRAINER_EVENT_FN, P]),
    'sgd_trainer_fit': (I, [P, I64]), 'sgd_trainer_stop_reason': (I32, [P]),
    'sgd_trainer_stop_name': (S, [I32]), 'sgd_trainer_event_name': (S, [I32]),
    'sgd_trainer_get_stats': (I, [P, ptr(st.TrainerStats)]),
    'sgd_trainer_get_epoch': (I, [P, I64, ptr(st.TrainerEpoch)]), 'sgd_trainer_next_lr': (I, [P, pD]),
    'sgd_trainer_model': (P, [P]), 'sgd_trainer_optim': (P, [P]), 'sgd_trainer_sched': (P, [P]),
    'sgd_trainer_monitor': (P, [P]), 'sgd_trainer_state_size': (SZ, [P]),
    'sgd_trainer_state_export': (I, [P, P, SZ]), 'sgd_trainer_state_import': (I, [P, P, SZ]),
    'sgd_trainer_comm_init': (V, [ptr(st.TrainerComm)]),
    'sgd_trainer_set_comm': (I, [P, ptr(st.TrainerComm)]),
    # tune
    'sgd_lrfind_options_init': (V, [ptr(st.LrfindOptions)]),
    'sgd_lrfind_run': (I, [PP, P, P, P, ptr(st.LrfindOptions), P]), 'sgd_lrfind_free': (V, [P]),
    'sgd_lrfind_count': (SZ, [P]), 'sgd_lrfind_end_reason': (I32, [P]),
    'sgd_lrfind_point': (I, [P, SZ, ptr(st.LrfindSample)]), 'sgd_lrfind_curve': (I, [P, P, P, P, SZ]),
    'sgd_lrfind_suggestion': (I, [P, I32, pD, pSZ]), 'sgd_lrfind_default_method': (I32, []),
    'sgd_lrfind_method_name': (S, [I32]),
    'sgd_lrfind_analyze': (I, [PP, P, P, SZ, ptr(st.LrfindOptions), P]),
    'sgd_search_options_init': (V, [ptr(st.SearchOptions)]),
    'sgd_search_run': (I, [PP, S, P, P, ptr(st.SearchOptions), P]),
    'sgd_search_run_objective': (I, [PP, st.SEARCH_OBJECTIVE, P, ptr(st.SearchOptions), P]),
    'sgd_search_free': (V, [P]), 'sgd_search_count': (SZ, [P]),
    'sgd_search_get_trial': (I, [P, SZ, ptr(st.SearchTrial)]), 'sgd_search_best': (I, [P, pSZ]),
    'sgd_search_set_trial': (I, [P, SZ, ptr(st.SearchTrial)]),
    # checkpoint
    'sgd_ckpt_dtype_size': (SZ, [I]), 'sgd_ckpt_dtype_name': (S, [I]),
    'sgd_ckpt_writer_new': (I, [PP, P]), 'sgd_ckpt_writer_free': (V, [P]),
    'sgd_ckpt_writer_begin_section': (I, [P, S, U32]),
    'sgd_ckpt_writer_add_tensor': (I, [P, S, I, U32, pI64, P]),
    'sgd_ckpt_writer_add_tensor_copy': (I, [P, S, I, U32, pI64, P]),
    'sgd_ckpt_writer_add_i64': (I, [P, S, I64]), 'sgd_ckpt_writer_add_f64': (I, [P, S, D]),
    'sgd_ckpt_writer_size': (I, [P, pU64]), 'sgd_ckpt_writer_write_memory': (I, [P, P, SZ]),
    'sgd_ckpt_writer_save': (I, [P, S]), 'sgd_ckpt_cleanup_stale': (I, [S, pSZ]),
    'sgd_ckpt_reader_open': (I, [PP, S, P]), 'sgd_ckpt_reader_open_memory': (I, [PP, P, SZ, P]),
    'sgd_ckpt_reader_free': (V, [P]), 'sgd_ckpt_reader_version': (I, [P, pU32, pU32]),
    'sgd_ckpt_reader_section_count': (SZ, [P]), 'sgd_ckpt_reader_file_size': (U64, [P]),
    'sgd_ckpt_reader_section_info': (I, [P, SZ, ptr(st.CkptSectionInfo)]),
    'sgd_ckpt_reader_find_section': (I, [P, S, pSZ]),
    'sgd_ckpt_reader_tensor_info': (I, [P, SZ, SZ, ptr(st.CkptTensorInfo)]),
    'sgd_ckpt_reader_find_tensor': (I, [P, S, S, ptr(st.CkptTensorInfo)]),
    'sgd_ckpt_reader_check_tensor': (I, [P, S, S, I, U32, pI64]),
    'sgd_ckpt_reader_read_tensor': (I, [P, S, S, I, U32, pI64, P, SZ]),
    'sgd_ckpt_reader_read_i64': (I, [P, S, S, pI64]), 'sgd_ckpt_reader_read_f64': (I, [P, S, S, pD]),
    'sgd_ckpt_reader_tensor_data': (I, [P, S, S, PP, pU64]),
    'sgd_ckpt_reader_check_sections': (I, [P, pS, SZ]),
    'sgd_checkpoint_parts_init': (V, [ptr(st.CheckpointParts)]),
    'sgd_checkpoint_add': (I, [P, ptr(st.CheckpointParts)]),
    'sgd_checkpoint_save': (I, [S, ptr(st.CheckpointParts), P]),
    'sgd_checkpoint_restore': (I, [P, ptr(st.CheckpointParts)]),
    'sgd_checkpoint_load': (I, [S, ptr(st.CheckpointParts), P]),
    'sgd_checkpoint_load_model': (I, [PP, P, ptr(st.ModelOptions), P]),
    'sgd_checkpoint_add_vocab': (I, [P, P]), 'sgd_checkpoint_check_vocab': (I, [P, P]),
    'sgd_checkpoint_load_vocab': (I, [PP, P, P]),
}

#: Functions declared through typed option structs that this package does not
#: call (the spec strings cover them); declared all the same, by the loop below.
for _kind, _cls in [('constant', st.SchedConstantOptions), ('step', st.SchedStepOptions),
                    ('multistep', st.SchedMultistepOptions), ('exponential', st.SchedExponentialOptions),
                    ('polynomial', st.SchedPolynomialOptions), ('cosine', st.SchedCosineOptions),
                    ('cosine_warm_restarts', st.SchedCosineWarmRestartsOptions),
                    ('linear', st.SchedLinearOptions)]:
    PROTOTYPES['sgd_sched_%s_options_init' % _kind] = (V, [ptr(_cls)])
    PROTOTYPES['sgd_sched_%s_new' % _kind] = (I, [PP, D, ptr(_cls), P])
for _kind, _cls in [('onecycle', st.SchedOnecycleOptions), ('cyclic', st.SchedCyclicOptions)]:
    PROTOTYPES['sgd_sched_%s_options_init' % _kind] = (V, [ptr(_cls)])
    PROTOTYPES['sgd_sched_%s_new' % _kind] = (I, [PP, ptr(_cls), P])


class _Lib:
    """The loaded library: its functions as attributes, declared from PROTOTYPES."""

    def __init__(self, cdll: C.CDLL) -> None:
        self.cdll = cdll
        self.missing: List[str] = []
        for name, (res, args) in PROTOTYPES.items():
            try:
                f = getattr(cdll, name)
            except AttributeError:
                self.missing.append(name)
                continue
            f.restype, f.argtypes = res, args
            setattr(self, name, f)

    def __getattr__(self, name: str) -> Any:  # only reached for functions not declared
        if name.startswith('sgd_'):
            from .errors import UnsupportedError
            raise UnsupportedError('%s is not in the libsgdlab loaded (%s)' % (name, INFO.path))
        raise AttributeError(name)


_cdll, INFO = load()
lib: Any = _Lib(_cdll)


def has(name: str) -> bool:
    """Whether the loaded library exports the C function @p name (and it is declared)."""
    return name in PROTOTYPES and name not in lib.missing


# ---------------------------------------------------------------- errors from calls and callbacks
_tls = threading.local()


def stash(exc: BaseException) -> None:
    """Keeps an exception raised inside a callback, to raise it once the C call returns."""
    pend = getattr(_tls, 'pending', None)
    if pend is None:
        _tls.pending = [exc]
    else:
        pend.append(exc)


def take_pending() -> Optional[BaseException]:
    pend = getattr(_tls, 'pending', None)
    if not pend:
        return None
    _tls.pending = None
    return pend[0]


def last_error() -> str:
    return (lib.sgd_error_last() or b'').decode(errors='replace')


def raise_pending(exc: BaseException, err: Optional[Error]) -> None:
    if err is not None and hasattr(exc, 'add_note'):
        exc.add_note('(the libsgdlab call failed then: %s)' % err)
    raise exc


def check(status: int) -> int:
    """Raises the exception of a callback that raised during the call, else the
    Error of a negative status; returns the status otherwise."""
    exc = take_pending()
    if status < 0:
        err = error_for(status, last_error(), (lib.sgd_status_str(status) or b'').decode().split(':')[0])
        lib.sgd_error_clear()
        if exc is not None:
            raise_pending(exc, err)
        raise err
    if exc is not None:
        raise_pending(exc, None)
    return status


def guarded(fn: Callable[..., Any], fail: Any = ECALLBACK, sink: Optional[Callable[[BaseException], None]] = None
            ) -> Callable[..., Any]:
    """Wraps a Python callback called from C: an exception never crosses into C;
    it is stashed (for check() to raise after the call) and @p fail is returned."""
    keep = sink or stash

    def wrapped(*args: Any) -> Any:
        try:
            return fn(*args)
        except BaseException as e:  # noqa: B902 - KeyboardInterrupt too: it is raised after the call
            keep(e)
            return fail
    return wrapped


def cstr(s: str) -> bytes:
    if not isinstance(s, str):
        raise TypeError('expected a str, got %s' % type(s).__name__)
    return s.encode()


def pystr(b: Optional[bytes]) -> str:
    return (b or b'').decode(errors='replace')


def put_doubles(values: Any, out: Any, n: int, who: str) -> int:
    """Writes the @p n doubles a host callback exported into the library's array."""
    vals = list(values)
    if len(vals) != n:
        raise ValueError('%s gave %d values, %d expected' % (who, len(vals), n))
    for i, v in enumerate(vals):
        out[i] = float(v)
    return 0
