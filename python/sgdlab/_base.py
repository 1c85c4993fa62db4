"""Handles, ownership and arrays shared by every wrapper class."""
from __future__ import annotations

import ctypes as C
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

from ._lib import check, lib
from .errors import StateError

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]


class Owner:
    """Owns one C handle and frees it exactly once, when nothing refers to it
    any more: the Python object that made it (until close()), numpy views of
    its memory, and other objects that borrow it (a trainer its model...).
    ``keep`` holds what the C object borrows from Python (arrays, callbacks),
    released after the C object is freed.

    Objects that borrow another C object register with :meth:`borrow`: the
    borrowed one is then never freed before its borrowers, even when the
    garbage collector finalizes a cycle holding both in an arbitrary order
    (sgd_trainer_free() removes its callback from the monitor it borrows)."""

    __slots__ = ('ptr', 'free', 'keep', 'borrowed', 'borrowers', 'pending', '__weakref__')

    def __init__(self, ptr: int, free: Optional[Callable[[int], None]], keep: Optional[List[Any]] = None) -> None:
        self.ptr = ptr
        self.free = free
        self.keep: List[Any] = keep if keep is not None else []
        self.borrowed: List['Owner'] = []
        self.borrowers = 0
        self.pending = False

    def borrow(self, other: 'Owner') -> None:
        """This C object uses @p other's until it is freed."""
        self.borrowed.append(other)
        other.borrowers += 1

    def release(self) -> None:
        if self.borrowers > 0:  # a borrower is still alive: it frees this one when it goes
            self.pending = True
            return
        p, self.ptr = self.ptr, 0
        if p and self.free is not None:
            self.free(p)
        borrowed, self.borrowed = self.borrowed, []
        for o in borrowed:
            o.borrowers -= 1
            if o.borrowers == 0 and o.pending:
                o.pending = False
                o.release()

    def disown(self) -> None:
        """The handle now belongs to another C object (a composite schedule)."""
        self.ptr = 0

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass


class Object:
    """Base of the wrapper classes: a context manager whose close() releases the
    C object at once (unless numpy views of its memory or objects that borrow
    it are still alive: then when the last of them goes); the garbage collector
    does the same for objects never closed."""

    _what = 'object'

    def __init__(self, ptr: int, free: Optional[Callable[[int], None]], keep: Optional[List[Any]] = None) -> None:
        self._owner: Optional[Owner] = Owner(ptr, free, keep)

    @property
    def _h(self) -> int:
        try:
            p = self._owner.ptr  # type: ignore[union-attr]
        except AttributeError:
            p = 0
        if not p:
            raise StateError('this %s is closed' % self._what)
        return p

    @property
    def closed(self) -> bool:
        return self._owner is None or not self._owner.ptr

    def close(self) -> None:
        """Releases the C object (see the class notes). Calling it again does nothing."""
        self._owner = None  # the last reference: the C object is freed now (CPython refcounting)

    def __enter__(self: Any) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _own_unchecked(self) -> Owner:
        assert self._owner is not None
        return self._owner

    def _own(self) -> Owner:
        if self._owner is None or not self._owner.ptr:
            raise StateError('this %s is closed' % self._what)
        return self._owner



class _View:
    """The base object of a numpy array over library memory: it keeps the C
    object alive as long as the array (or any view of it) lives."""

    def __init__(self, owner: Owner, addr: int, shape: Tuple[int, ...], typestr: str, readonly: bool) -> None:
        self.owner = owner
        self.__array_interface__ = {'data': (addr, readonly), 'shape': shape, 'typestr': typestr, 'version': 3}


def view(owner: Owner, addr: int, shape: Tuple[int, ...], dtype: Any = np.float32, readonly: bool = False) -> Any:
    """A zero-copy numpy array over @p addr that keeps @p owner alive."""
    if not addr or int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype=dtype)
    return np.asarray(_View(owner, addr, shape, np.dtype(dtype).str, readonly))


def f32(x: Any, name: str = 'x') -> F32:
    """@p x as a C-contiguous float32 array (without copying when it already is one)."""
    a = np.ascontiguousarray(x, dtype=np.float32)
    return a


def i32(x: Any, name: str = 'labels') -> I32:
    a = np.asarray(x)
    if a.dtype.kind not in 'iu':
        raise TypeError('%s must be integers, got dtype %s' % (name, a.dtype))
    return np.ascontiguousarray(a, dtype=np.int32)


def addr(a: Optional[np.ndarray]) -> Optional[int]:
    return None if a is None else int(a.ctypes.data)


def out_ptr() -> C.c_void_p:
    return C.c_void_p()


def opt_double(x: Optional[float], absent: float = -1.0) -> float:
    return absent if x is None else float(x)


def names(fn: Callable[[int], Optional[bytes]]) -> List[str]:
    out: List[str] = []
    i = 0
    while True:
        s = fn(i)
        if not s:
            return out
        out.append(s.decode())
        i += 1


def free_fn(name: str) -> Callable[[int], None]:
    f = getattr(lib, name)
    return lambda p: f(p)


def query(struct: Any, fn: Callable[..., int], *args: Any) -> Dict[str, Any]:
    """Fills an output struct of the library (struct_size set to ours) through
    @p fn(*args, &struct) and returns its fields by name."""
    s = struct()
    s.struct_size = C.sizeof(s)
    check(fn(*args, C.byref(s)))
    return s.as_dict()  # type: ignore[no-any-return]
