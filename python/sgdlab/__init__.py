"""libsgdlab from Python: models (MLPs, CNNs, recurrent language models),
datasets and text corpora, schedules, optimizers, the loss-curve monitor, the
trainer and its guard, the LR range test and search, checkpoints, over ctypes; and the same
machinery inside PyTorch training loops (:mod:`sgdlab.torch`).

    >>> import sgdlab
    >>> sgdlab.version()                      # the library's version
    >>> sgdlab.library_info()                 # which libsgdlab was loaded, and how it was found
"""
from __future__ import annotations

from . import errors
from ._lib import INFO as _INFO
from ._lib import PACKAGE_VERSION as __version__
from ._lib import LibraryInfo, has, lib
from .checkpoint import Checkpoint, CheckpointReader, CheckpointWriter
from .data import Batch, Dataset, Idx, Loader
from .errors import (CallbackError, CanceledError, DivergedError, Error, FormatError, InternalError,
                     InvalidArgumentError, IOFailure, NonFiniteError, NotFoundError, OutOfMemoryError, RangeError,
                     ShapeError, SizeOverflowError, StateError, UnsupportedError, VersionError)
from .model import Model, ModelBuilder, ParamInfo, TensorInfo
from .monitor import Monitor, MonitorEvent, Observation
from .optim import Hparam, HostOptimizer, Optimizer, StepArgs, StepInfo, builtin_names, kind_hparams, simd_level
from .sched import HostSchedule, Schedule
from .text import Text, Vocab, generate
from .trainer import Trainer, TrainerEvent, TrainerProgress
from .tune import LRFinder, SearchResult, Trial, analyze_lr_curve, grid_search, lr_find, random_search

__all__ = [
    'Batch', 'CallbackError', 'CanceledError', 'Checkpoint', 'CheckpointReader', 'CheckpointWriter', 'Dataset',
    'DivergedError', 'Error', 'FormatError', 'HostOptimizer', 'HostSchedule', 'IOFailure', 'Idx', 'InternalError',
    'InvalidArgumentError', 'LRFinder', 'LibraryInfo', 'Loader', 'Model', 'ModelBuilder', 'Monitor',
    'MonitorEvent', 'NonFiniteError', 'NotFoundError', 'Observation', 'Optimizer', 'OutOfMemoryError',
    'ParamInfo', 'RangeError', 'Schedule', 'SearchResult', 'ShapeError', 'SizeOverflowError', 'StateError',
    'StepArgs', 'StepInfo', 'Trainer', 'TrainerEvent', 'TrainerProgress', 'Trial', 'UnsupportedError',
    'VersionError', 'analyze_lr_curve', 'builtin_names', 'errors', 'grid_search', 'has', 'library_info',
    'lr_find', 'random_search', 'status_str', 'version', 'version_number',
    # 0.2
    'Hparam', 'TensorInfo', 'Text', 'Vocab', 'generate', 'kind_hparams', 'last_error', 'set_error', 'simd_level',
]


def version() -> str:
    """The version of the libsgdlab loaded, e.g. "0.2.0" (sgd_version_string());
    the package's own is ``sgdlab.__version__``."""
    return str(lib.sgd_version_string().decode())


def version_number() -> int:
    """major * 10000 + minor * 100 + patch of the library loaded."""
    return int(lib.sgd_version_number())


def library_info() -> LibraryInfo:
    """Which libsgdlab was loaded (path, how it was found: SGDLAB_LIBRARY,
    installed or build tree) and its version."""
    return _INFO


def last_error() -> str:
    """The calling thread's last error message of the library (sgd_error_last());
    the exceptions carry it already."""
    return str((lib.sgd_error_last() or b'').decode(errors='replace'))


def set_error(status: int, message: str) -> int:
    """Sets the calling thread's error message, as code that fails on the
    library's behalf does (a host callback before it returns a failure:
    sgd_error_set()); returns @p status."""
    return int(lib.sgd_error_set(status, message.encode()))


def status_str(status: int) -> str:
    """The name and meaning of a status code (sgd_status_str())."""
    return str(lib.sgd_status_str(status).decode())
