"""Datasets over numpy arrays, minibatch loaders, IDX files (sgdlab/data.h)."""
from __future__ import annotations

import ctypes as C
import os
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Tuple, Union

import numpy as np

from . import _structs as st
from ._base import F32, I32, Object, Owner, addr, f32, free_fn, i32, view
from ._lib import check, cstr, lib

PathLike = Union[str, 'os.PathLike[str]']

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.int16, 0x0C: np.int32, 0x0D: np.float32, 0x0E: np.float64}


class Dataset(Object):
    """Rows of float32 features with an int32 class label or float32 targets per row
    (sgd_dataset).

    ``Dataset(x, y)``: *x* is ``[n, dim]`` (any float array; converted to float32
    C order, without a copy when it already is); *y* is ``[n]`` integer class
    labels, or ``[n, target_dim]`` (or ``[n]``) floats for regression. The
    dataset reads these arrays without copying them (it keeps a reference):
    their values are checked once, here (features finite, labels >= 0), and
    changing them afterwards changes the dataset. Subsets, splits and loaders
    are views that keep what they need alive, in any order of closing.
    """

    _what = 'dataset'

    def __init__(self, x: Any, y: Any) -> None:
        xa = f32(x)
        if xa.ndim == 1:
            xa = xa.reshape(-1, 1)
        if xa.ndim != 2:
            raise ValueError('x must be [rows, features], got shape %s' % (xa.shape,))
        ya = np.asarray(y)
        h = C.c_void_p()
        if ya.dtype.kind in 'iu' and ya.ndim == 2:
            la = i32(ya)
            if la.shape[0] != xa.shape[0]:
                raise ValueError('labels must be [%d, labels_per_row], got shape %s' % (xa.shape[0], la.shape))
            check(lib.sgd_dataset_from_sequence_labels(C.byref(h), addr(xa), addr(la), xa.shape[0], xa.shape[1],
                                                       la.shape[1], None))
            keep = [xa, la]
        elif ya.dtype.kind in 'iu':
            la = i32(ya)
            if la.ndim != 1 or la.shape[0] != xa.shape[0]:
                raise ValueError('labels must be [%d], got shape %s' % (xa.shape[0], la.shape))
            check(lib.sgd_dataset_from_labels(C.byref(h), addr(xa), addr(la), xa.shape[0], xa.shape[1], None))
            keep = [xa, la]
        else:
            ta = f32(ya)
            if ta.ndim == 1:
                ta = ta.reshape(-1, 1)
            if ta.ndim != 2 or ta.shape[0] != xa.shape[0]:
                raise ValueError('targets must be [%d, target_dim], got shape %s' % (xa.shape[0], ta.shape))
            check(lib.sgd_dataset_from_targets(C.byref(h), addr(xa), addr(ta), xa.shape[0], xa.shape[1],
                                               ta.shape[1], None))
            keep = [xa, ta]
        super().__init__(h.value or 0, free_fn('sgd_dataset_free'), keep)

    @classmethod
    def _wrap(cls, ptr: int, keep: list) -> 'Dataset':
        self = cls.__new__(cls)
        Object.__init__(self, ptr, free_fn('sgd_dataset_free'), keep)
        return self

    @classmethod
    def load_idx(cls, features: PathLike, labels: PathLike) -> 'Dataset':
        """Reads two IDX files (raw or gzip), as sgd_dataset_load_idx(): uint8
        pixels are scaled to [0, 1]; the data are copied into the dataset."""
        h = C.c_void_p()
        check(lib.sgd_dataset_load_idx(C.byref(h), cstr(os.fspath(features)), cstr(os.fspath(labels)), None))
        return cls._wrap(h.value or 0, [])

    @classmethod
    def from_idx(cls, features: 'Idx', labels: 'Idx') -> 'Dataset':
        """A dataset from two decoded IDX arrays (sgd_dataset_from_idx()); the data are copied."""
        h = C.c_void_p()
        check(lib.sgd_dataset_from_idx(C.byref(h), features._h, labels._h, None))
        return cls._wrap(h.value or 0, [])

    def __len__(self) -> int:
        return int(lib.sgd_dataset_size(self._h))

    @property
    def dim(self) -> int:
        """Features per row."""
        return int(lib.sgd_dataset_dim(self._h))

    @property
    def target_dim(self) -> int:
        """Float targets per row; 0 for a dataset with class labels."""
        return int(lib.sgd_dataset_target_dim(self._h))

    @property
    def labels_per_row(self) -> int:
        """Class labels per row: 1, T for sequences, 0 for float targets."""
        return int(lib.sgd_dataset_labels_per_row(self._h))

    @property
    def streams(self) -> int:
        """B when the rows are B parallel streams (row k * B + b is part k of stream
        b: a loader then reads them in order, B rows per batch), 0 for independent
        rows; settable (sgd_dataset_set_streams(): B must divide the rows)."""
        return int(lib.sgd_dataset_streams(self._h))

    @streams.setter
    def streams(self, b: int) -> None:
        check(lib.sgd_dataset_set_streams(self._h, b))

    @property
    def num_classes(self) -> int:
        """Largest label plus one (kept by subsets and splits); 0 for targets."""
        return int(lib.sgd_dataset_num_classes(self._h))

    def row(self, i: int) -> Tuple[F32, Union[int, I32, F32]]:
        """Row @p i: (a copy of its features, its label (its labels, a copy, for
        sequences) or a copy of its targets). Negative indices count from the end."""
        n = len(self)
        if i < 0:
            i += n
        xp, tp, lab = C.c_void_p(), C.c_void_p(), C.c_int32()
        check(lib.sgd_dataset_row(self._h, i, C.byref(xp), C.byref(lab), C.byref(tp)))
        x = np.array(view(self._own(), xp.value or 0, (self.dim,)))
        if tp.value:
            return x, np.array(view(self._own(), tp.value, (self.target_dim,)))
        lpr = self.labels_per_row
        if lpr > 1:
            b = Batch(np.empty(0, np.float32), None, None, 0, 0)
            for bt in Loader(self.subset(i, 1), 1, shuffle=False):
                b = bt
            return x, b.labels.reshape(-1) if b.labels is not None else np.empty(0, np.int32)
        return x, int(lab.value)

    def subset(self, start: int, count: int) -> 'Dataset':
        """A view of @p count consecutive rows from @p start (sgd_dataset_subset())."""
        h = C.c_void_p()
        check(lib.sgd_dataset_subset(C.byref(h), self._h, start, count))
        return Dataset._wrap(h.value or 0, list(self._own().keep))

    def split(self, n_val: int, shuffle: bool = False, seed: int = 0) -> Tuple['Dataset', 'Dataset']:
        """(train, validation): the last @p n_val rows, or @p n_val rows drawn at random
        with @p seed (sgd_dataset_split())."""
        a, b = C.c_void_p(), C.c_void_p()
        check(lib.sgd_dataset_split(C.byref(a), C.byref(b), self._h, n_val, int(bool(shuffle)), seed))
        keep = list(self._own().keep)
        return Dataset._wrap(a.value or 0, keep), Dataset._wrap(b.value or 0, keep)

    def loader(self, batch_size: int, shuffle: bool = True, drop_last: bool = False, seed: int = 0) -> 'Loader':
        """A minibatch loader over this dataset (:class:`Loader`)."""
        return Loader(self, batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed)

    def __repr__(self) -> str:
        if self.closed:
            return '<sgdlab.Dataset closed>'
        kind = ('%d classes' % self.num_classes) if self.num_classes else ('%d targets' % self.target_dim)
        return '<sgdlab.Dataset %d rows x %d features, %s>' % (len(self), self.dim, kind)


@dataclass
class Batch:
    """A minibatch: copies of its rows (the loader's buffer is reused by the next call)."""
    x: F32
    labels: Optional[I32]
    targets: Optional[F32]
    epoch: int
    index: int

    @property
    def y(self) -> Union[I32, F32]:
        """The labels, or the targets."""
        return self.labels if self.labels is not None else self.targets  # type: ignore[return-value]

    def __len__(self) -> int:
        return int(self.x.shape[0])


class Loader(Object):
    """Minibatches of a dataset, epoch after epoch (sgd_loader): in order or
    shuffled by a seeded generator; each epoch's order depends only on (seed, epoch).

    Iterating over a loader yields the batches of one epoch (the next one each
    time); :meth:`next` is the C call itself (``None`` marks an epoch's end).
    Batches are copied out of the loader's buffer (it is reused by the next call).
    """

    _what = 'loader'

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                 seed: int = 0) -> None:
        o = st.LoaderOptions()
        lib.sgd_loader_options_init(C.byref(o))
        o.shuffle, o.drop_last, o.seed = int(bool(shuffle)), int(bool(drop_last)), seed
        h = C.c_void_p()
        check(lib.sgd_loader_new(C.byref(h), dataset._h, batch_size, C.byref(o)))
        super().__init__(h.value or 0, free_fn('sgd_loader_free'), list(dataset._own().keep))
        self._dim, self._tdim, self._lpr = dataset.dim, dataset.target_dim, dataset.labels_per_row

    @property
    def num_batches(self) -> int:
        """Batches per epoch (without the end marker)."""
        return int(lib.sgd_loader_num_batches(self._h))

    def __len__(self) -> int:
        return self.num_batches

    def next(self) -> Optional[Batch]:
        """The next batch, or None at the end of an epoch (the call after it starts the next)."""
        b = st.Batch()
        check(lib.sgd_loader_next(self._h, C.byref(b)))
        if b.size == 0:
            return None
        n = int(b.size)
        own = self._own()
        x = np.array(view(own, C.cast(b.x, C.c_void_p).value or 0, (n, self._dim)))
        labels = targets = None
        if b.labels:
            shape = (n,) if self._lpr <= 1 else (n, self._lpr)
            labels = np.array(view(own, C.cast(b.labels, C.c_void_p).value or 0, shape, np.int32))
        if b.targets:
            targets = np.array(view(own, C.cast(b.targets, C.c_void_p).value or 0, (n, self._tdim)))
        return Batch(x, labels, targets, int(b.epoch), int(b.index))

    def __iter__(self) -> Iterator[Batch]:
        while True:
            b = self.next()
            if b is None:
                return
            yield b

    def seek(self, epoch: int, batch: int) -> None:
        """Moves to batch @p batch of epoch @p epoch, as an uninterrupted run would be."""
        check(lib.sgd_loader_seek(self._h, epoch, batch))


class Idx(Object):
    """An array decoded from an IDX file (the MNIST format), raw or gzip (sgd_idx).

    :attr:`data` is a read-only zero-copy numpy view of the decoded elements."""

    _what = 'IDX array'

    def __init__(self, ptr: int) -> None:
        super().__init__(ptr, free_fn('sgd_idx_free'))

    @classmethod
    def read(cls, path: PathLike) -> 'Idx':
        """Reads and validates an IDX file (sgd_idx_read_file())."""
        h = C.c_void_p()
        check(lib.sgd_idx_read_file(C.byref(h), cstr(os.fspath(path)), None))
        return cls(h.value or 0)

    @classmethod
    def from_bytes(cls, data: bytes) -> 'Idx':
        """Decodes IDX bytes (sgd_idx_read_memory()); any input is safe."""
        buf = C.create_string_buffer(bytes(data), len(data))
        h = C.c_void_p()
        check(lib.sgd_idx_read_memory(C.byref(h), buf, len(data), None))
        return cls(h.value or 0)

    @property
    def type(self) -> int:
        """The element type code (0x08 uint8 ... 0x0E float64)."""
        return int(lib.sgd_idx_type(self._h))

    @property
    def shape(self) -> Tuple[int, ...]:
        h = self._h
        return tuple(int(lib.sgd_idx_dim(h, a)) for a in range(int(lib.sgd_idx_rank(h))))

    def __len__(self) -> int:
        return int(lib.sgd_idx_count(self._h))

    @property
    def data(self) -> Any:
        """The elements (host byte order), shaped; a read-only view valid while anything refers to it."""
        return view(self._own(), lib.sgd_idx_data(self._h) or 0, self.shape, IDX_TYPES[self.type], readonly=True)
