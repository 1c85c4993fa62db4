"""Checkpoint files (sgdlab/checkpoint.h): the training state in one validated,
versioned, crash-safe file, and a container for sections of your own."""
from __future__ import annotations

import ctypes as C
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _structs as st
from ._base import Object, addr, free_fn, view
from ._lib import check, cstr, lib, pystr

PathLike = Union[str, 'os.PathLike[str]']
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.int64, 5: np.uint8, 6: np.uint64}
CODES = {np.dtype(v): k for k, v in DTYPES.items()}
REQUIRED = 1


def _parts(model: Any = None, optimizer: Any = None, schedule: Any = None, monitor: Any = None,
           trainer: Any = None) -> st.CheckpointParts:
    p = st.CheckpointParts()
    lib.sgd_checkpoint_parts_init(C.byref(p))
    p.model = model._h if model is not None else None
    p.optim = optimizer._h if optimizer is not None else None
    p.sched = schedule._h if schedule is not None else None
    p.monitor = monitor._h if monitor is not None else None
    p.trainer = trainer._h if trainer is not None else None
    return p


def _dims(shape: Sequence[int]) -> Any:
    return (C.c_int64 * max(len(shape), 1))(*shape)


@dataclass(frozen=True)
class SectionInfo:
    name: str
    required: bool
    tensor_count: int
    offset: int
    size: int
    crc32c: int


@dataclass(frozen=True)
class TensorInfo:
    section: str
    name: str
    dtype: str
    shape: Tuple[int, ...]
    count: int
    nbytes: int
    offset: int


class CheckpointWriter(Object):
    """A checkpoint being assembled (sgd_ckpt_writer). :meth:`add` borrows the
    array (it keeps a reference; the values are read when the file is written)."""

    _what = 'checkpoint writer'

    def __init__(self) -> None:
        h = C.c_void_p()
        check(lib.sgd_ckpt_writer_new(C.byref(h), None))
        super().__init__(h.value or 0, free_fn('sgd_ckpt_writer_free'))

    def begin_section(self, name: str, required: bool = False) -> None:
        check(lib.sgd_ckpt_writer_begin_section(self._h, cstr(name), REQUIRED if required else 0))

    def add(self, name: str, array: Any, copy: bool = False) -> None:
        """Adds a tensor (float32/64, int32/64, uint8/64; any shape up to rank 8)."""
        a = np.ascontiguousarray(array)
        if a.dtype not in CODES:
            raise TypeError('%s: dtype %s cannot be stored (f32, f64, i32, i64, u8, u64)' % (name, a.dtype))
        fn = lib.sgd_ckpt_writer_add_tensor_copy if copy else lib.sgd_ckpt_writer_add_tensor
        check(fn(self._h, cstr(name), CODES[a.dtype], a.ndim, _dims(a.shape), addr(a) if a.size else None))
        if not copy:
            self._own().keep.append(a)

    def add_i64(self, name: str, value: int) -> None:
        check(lib.sgd_ckpt_writer_add_i64(self._h, cstr(name), value))

    def add_f64(self, name: str, value: float) -> None:
        check(lib.sgd_ckpt_writer_add_f64(self._h, cstr(name), value))

    def add_parts(self, model: Any = None, optimizer: Any = None, schedule: Any = None, monitor: Any = None,
                  trainer: Any = None) -> None:
        """Adds the sections of the training state (sgd_checkpoint_add()); the model's
        parameters and the optimizer's slots are borrowed: no step until written."""
        p = _parts(model, optimizer, schedule, monitor, trainer)
        check(lib.sgd_checkpoint_add(self._h, C.byref(p)))
        for x in (model, optimizer, schedule, monitor, trainer):
            if x is not None:
                self._own().borrow(x._own())

    def add_vocab(self, vocab: Any) -> None:
        """Adds a text model's vocabulary, as the optional section "vocab" (copied;
        sgd_checkpoint_add_vocab())."""
        check(lib.sgd_checkpoint_add_vocab(self._h, vocab._h))

    @property
    def size(self) -> int:
        v = C.c_uint64()
        check(lib.sgd_ckpt_writer_size(self._h, C.byref(v)))
        return int(v.value)

    def to_bytes(self) -> bytes:
        n = self.size
        buf = C.create_string_buffer(n)
        check(lib.sgd_ckpt_writer_write_memory(self._h, buf, n))
        return buf.raw

    def save(self, path: PathLike) -> None:
        """Writes the file crash-safely (temporary file, fsync, rename)."""
        check(lib.sgd_ckpt_writer_save(self._h, cstr(os.fspath(path))))


class CheckpointReader(Object):
    """A validated checkpoint (sgd_ckpt_reader), from a path or from bytes."""

    _what = 'checkpoint reader'

    def __init__(self, source: Union[PathLike, bytes, bytearray, memoryview]) -> None:
        h = C.c_void_p()
        keep: List[Any] = []
        if isinstance(source, (bytes, bytearray, memoryview)):
            b = bytes(source)
            buf = C.create_string_buffer(b, len(b))
            keep.append(buf)
            check(lib.sgd_ckpt_reader_open_memory(C.byref(h), buf, len(b), None))
        else:
            check(lib.sgd_ckpt_reader_open(C.byref(h), cstr(os.fspath(source)), None))
        super().__init__(h.value or 0, free_fn('sgd_ckpt_reader_free'), keep)

    @property
    def version(self) -> Tuple[int, int]:
        a, b = C.c_uint32(), C.c_uint32()
        check(lib.sgd_ckpt_reader_version(self._h, C.byref(a), C.byref(b)))
        return int(a.value), int(b.value)

    @property
    def file_size(self) -> int:
        return int(lib.sgd_ckpt_reader_file_size(self._h))

    def sections(self) -> List[SectionInfo]:
        out = []
        for i in range(int(lib.sgd_ckpt_reader_section_count(self._h))):
            s = st.CkptSectionInfo()
            s.struct_size = C.sizeof(s)
            check(lib.sgd_ckpt_reader_section_info(self._h, i, C.byref(s)))
            out.append(SectionInfo(pystr(s.name), bool(s.flags & REQUIRED), int(s.tensor_count), int(s.offset),
                                   int(s.size), int(s.crc32c)))
        return out

    def __contains__(self, section: str) -> bool:
        return lib.sgd_ckpt_reader_find_section(self._h, cstr(section), None) == 0

    @staticmethod
    def _info(t: st.CkptTensorInfo) -> TensorInfo:
        return TensorInfo(pystr(t.section), pystr(t.name), pystr(lib.sgd_ckpt_dtype_name(t.dtype)),
                          tuple(int(d) for d in t.dims[:t.rank]), int(t.count), int(t.nbytes), int(t.offset))

    def tensors(self, section: str) -> List[TensorInfo]:
        idx = C.c_size_t()
        check(lib.sgd_ckpt_reader_find_section(self._h, cstr(section), C.byref(idx)))
        s = st.CkptSectionInfo()
        s.struct_size = C.sizeof(s)
        check(lib.sgd_ckpt_reader_section_info(self._h, idx.value, C.byref(s)))
        out = []
        for j in range(int(s.tensor_count)):
            t = st.CkptTensorInfo()
            t.struct_size = C.sizeof(t)
            check(lib.sgd_ckpt_reader_tensor_info(self._h, idx.value, j, C.byref(t)))
            out.append(self._info(t))
        return out

    def tensor_info(self, section: str, name: str) -> TensorInfo:
        t = st.CkptTensorInfo()
        t.struct_size = C.sizeof(t)
        check(lib.sgd_ckpt_reader_find_tensor(self._h, cstr(section), cstr(name), C.byref(t)))
        return self._info(t)

    def check_tensor(self, section: str, name: str, dtype: Any, shape: Sequence[int]) -> None:
        """Raises ShapeError naming the first difference from the expected dtype and shape."""
        check(lib.sgd_ckpt_reader_check_tensor(self._h, cstr(section), cstr(name), CODES[np.dtype(dtype)],
                                               len(shape), _dims(shape)))

    def read(self, section: str, name: str) -> Any:
        """A copy of a tensor as a numpy array of its dtype and shape."""
        t = st.CkptTensorInfo()
        t.struct_size = C.sizeof(t)
        check(lib.sgd_ckpt_reader_find_tensor(self._h, cstr(section), cstr(name), C.byref(t)))
        shape = tuple(int(d) for d in t.dims[:t.rank])
        out = np.empty(shape, dtype=DTYPES[t.dtype])
        check(lib.sgd_ckpt_reader_read_tensor(self._h, cstr(section), cstr(name), t.dtype, t.rank, _dims(shape),
                                              addr(out) if out.size else None, out.nbytes))
        return out

    def read_i64(self, section: str, name: str) -> int:
        v = C.c_int64()
        check(lib.sgd_ckpt_reader_read_i64(self._h, cstr(section), cstr(name), C.byref(v)))
        return int(v.value)

    def read_f64(self, section: str, name: str) -> float:
        v = C.c_double()
        check(lib.sgd_ckpt_reader_read_f64(self._h, cstr(section), cstr(name), C.byref(v)))
        return float(v.value)

    def view(self, section: str, name: str) -> Any:
        """A read-only zero-copy view of a tensor's stored bytes (little-endian), typed and shaped."""
        info = self.tensor_info(section, name)
        p, n = C.c_void_p(), C.c_uint64()
        check(lib.sgd_ckpt_reader_tensor_data(self._h, cstr(section), cstr(name), C.byref(p), C.byref(n)))
        dt = np.dtype(DTYPES[{'f32': 1, 'f64': 2, 'i32': 3, 'i64': 4, 'u8': 5, 'u64': 6}[info.dtype]]).newbyteorder('<')
        return view(self._own(), p.value or 0, info.shape, dt, readonly=True)

    def check_sections(self, known: Sequence[str]) -> None:
        """Raises VersionError for a required section not in @p known."""
        arr = (C.c_char_p * max(len(known), 1))(*[cstr(k) for k in known])
        check(lib.sgd_ckpt_reader_check_sections(self._h, arr, len(known)))

    def restore(self, model: Any = None, optimizer: Any = None, schedule: Any = None, monitor: Any = None,
                trainer: Any = None) -> None:
        """Restores the objects' state, all or nothing (sgd_checkpoint_restore())."""
        p = _parts(model, optimizer, schedule, monitor, trainer)
        check(lib.sgd_checkpoint_restore(self._h, C.byref(p)))

    def check_vocab(self, vocab: Any) -> None:
        """Raises (NotFoundError without a vocabulary, InvalidArgumentError for another
        one, saying how they differ) unless the checkpoint's vocabulary is @p vocab."""
        check(lib.sgd_checkpoint_check_vocab(self._h, vocab._h))

    def load_vocab(self) -> Any:
        """The vocabulary the checkpoint holds (sgd_checkpoint_load_vocab()), a :class:`~sgdlab.Vocab`."""
        from .text import Vocab
        h = C.c_void_p()
        check(lib.sgd_checkpoint_load_vocab(C.byref(h), self._h, None))
        return Vocab._wrap(h.value or 0)

    def load_model(self, **model_options: Any) -> Any:
        """The model this checkpoint describes, with its parameters (sgd_checkpoint_load_model())."""
        from .model import Model, _options
        o = _options(model_options.get('seed'), model_options.get('max_batch'), None, None,
                     model_options.get('blas_threads'))
        h = C.c_void_p()
        check(lib.sgd_checkpoint_load_model(C.byref(h), self._h, C.byref(o), None))
        return Model._wrap(h.value or 0)


class Checkpoint:
    """Saving and restoring the training state in one call."""

    @staticmethod
    def save(path: PathLike, model: Any = None, optimizer: Any = None, schedule: Any = None, monitor: Any = None,
             trainer: Any = None, vocab: Any = None) -> None:
        """Saves the state of the objects given (a trainer brings its own), crash-safely;
        with @p vocab (a Vocab or a Text) also a text model's vocabulary, which
        ``sgdlab generate`` and :meth:`load_vocab` read back."""
        if vocab is not None:
            with CheckpointWriter() as w:
                w.add_parts(model, optimizer, schedule, monitor, trainer)
                w.add_vocab(getattr(vocab, 'vocab', vocab))
                w.save(path)
            return
        p = _parts(model, optimizer, schedule, monitor, trainer)
        check(lib.sgd_checkpoint_save(cstr(os.fspath(path)), C.byref(p), None))

    @staticmethod
    def load_vocab(path: PathLike) -> Any:
        """The vocabulary saved in the checkpoint at @p path."""
        with CheckpointReader(path) as r:
            return r.load_vocab()

    @staticmethod
    def load(path: PathLike, model: Any = None, optimizer: Any = None, schedule: Any = None, monitor: Any = None,
             trainer: Any = None) -> None:
        """Restores the objects' state from @p path, all or nothing."""
        p = _parts(model, optimizer, schedule, monitor, trainer)
        check(lib.sgd_checkpoint_load(cstr(os.fspath(path)), C.byref(p), None))

    @staticmethod
    def load_model(path: PathLike, **model_options: Any) -> Any:
        with CheckpointReader(path) as r:
            return r.load_model(**model_options)

    @staticmethod
    def cleanup_stale(path: PathLike) -> int:
        """Removes temporary files of killed writers to @p path; returns how many."""
        n = C.c_size_t()
        check(lib.sgd_ckpt_cleanup_stale(cstr(os.fspath(path)), C.byref(n)))
        return int(n.value)


def dtype_name(code: int) -> str:
    return pystr(lib.sgd_ckpt_dtype_name(code))


def dtype_size(code: int) -> int:
    return int(lib.sgd_ckpt_dtype_size(code))


_: Dict[str, Any] = {}
_o: Optional[int] = None
