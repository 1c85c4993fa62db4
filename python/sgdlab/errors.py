"""Exceptions carrying libsgdlab's status and message.

Every failing call raises a subclass of :class:`Error` chosen by its status
(``SGD_EINVAL`` raises :class:`InvalidArgumentError`, and so on); the text is
the library's own message (sgd_error_last()), which names the function, the
argument and the value. Where a Python built-in exception means the same thing,
the class derives from it too (``InvalidArgumentError`` is a ``ValueError``,
``NotFoundError`` a ``LookupError``), so ordinary ``except`` clauses work.
"""
from __future__ import annotations

from typing import Dict, Optional, Type

OK = 0
EINVAL = -1
ENOMEM = -2
ESHAPE = -3
ERANGE = -4
ENONFINITE = -5
EIO = -6
EFORMAT = -7
EVERSION = -8
ESTATE = -9
EOVERFLOW = -10
ENOTFOUND = -11
EUNSUPPORTED = -12
ECALLBACK = -13
EDIVERGED = -14
ECANCELED = -15
EINTERNAL = -16


class Error(Exception):
    """A libsgdlab call failed.

    Attributes: ``status`` (the negative sgd_status), ``name`` (such as
    ``"SGD_EINVAL"``), ``message`` (the library's message for it).
    """

    status: int = 0

    def __init__(self, message: str, status: Optional[int] = None, name: str = '') -> None:
        if status is not None:
            self.status = status
        self.name = name or _NAMES.get(self.status, 'SGD_E?')
        self.message = message
        super().__init__('%s [%s]' % (message, self.name) if message else self.name)


class InvalidArgumentError(Error, ValueError):
    """SGD_EINVAL: an argument is invalid (NULL, malformed, out of its domain)."""
    status = EINVAL


class OutOfMemoryError(Error, MemoryError):
    """SGD_ENOMEM: an allocation failed; nothing was changed."""
    status = ENOMEM


class ShapeError(Error, ValueError):
    """SGD_ESHAPE: shapes or sizes of the arguments do not match."""
    status = ESHAPE


class RangeError(Error, ValueError):
    """SGD_ERANGE: a value is outside its allowed range."""
    status = ERANGE


class NonFiniteError(Error, ArithmeticError):
    """SGD_ENONFINITE: a NaN or infinity where a finite number is required."""
    status = ENONFINITE


class IOFailure(Error, OSError):
    """SGD_EIO: reading or writing a file failed."""
    status = EIO


class FormatError(Error, ValueError):
    """SGD_EFORMAT: a file or buffer is malformed, truncated or corrupt."""
    status = EFORMAT


class VersionError(Error):
    """SGD_EVERSION: a file or structure has a version this library does not support
    (also raised at import when the library loaded is too old for this package)."""
    status = EVERSION


class StateError(Error, RuntimeError):
    """SGD_ESTATE: the call is not valid in the object's current state (also: the object was closed)."""
    status = ESTATE


class SizeOverflowError(Error, OverflowError):
    """SGD_EOVERFLOW: a size computation overflows or exceeds a documented cap."""
    status = EOVERFLOW


class NotFoundError(Error, LookupError):
    """SGD_ENOTFOUND: a name (key, parameter, kind, file) is unknown."""
    status = ENOTFOUND

    def __str__(self) -> str:  # LookupError's KeyError-style repr is not wanted
        return Exception.__str__(self)


class UnsupportedError(Error, NotImplementedError):
    """SGD_EUNSUPPORTED: the feature is not available in this build or for this object."""
    status = EUNSUPPORTED


class CallbackError(Error, RuntimeError):
    """SGD_ECALLBACK: a host callback reported a failure. When the callback was
    Python code that raised, that exception is raised instead, with this one
    as its ``__context__``."""
    status = ECALLBACK


class DivergedError(Error, ArithmeticError):
    """SGD_EDIVERGED: training diverged and could not be rescued."""
    status = EDIVERGED


class CanceledError(Error):
    """SGD_ECANCELED: a host callback asked to stop."""
    status = ECANCELED


class InternalError(Error, RuntimeError):
    """SGD_EINTERNAL: an internal invariant failed (a bug in libsgdlab)."""
    status = EINTERNAL


_NAMES: Dict[int, str] = {
    EINVAL: 'SGD_EINVAL', ENOMEM: 'SGD_ENOMEM', ESHAPE: 'SGD_ESHAPE', ERANGE: 'SGD_ERANGE',
    ENONFINITE: 'SGD_ENONFINITE', EIO: 'SGD_EIO', EFORMAT: 'SGD_EFORMAT', EVERSION: 'SGD_EVERSION',
    ESTATE: 'SGD_ESTATE', EOVERFLOW: 'SGD_EOVERFLOW', ENOTFOUND: 'SGD_ENOTFOUND',
    EUNSUPPORTED: 'SGD_EUNSUPPORTED', ECALLBACK: 'SGD_ECALLBACK', EDIVERGED: 'SGD_EDIVERGED',
    ECANCELED: 'SGD_ECANCELED', EINTERNAL: 'SGD_EINTERNAL',
}

#: The exception class of each status code.
BY_STATUS: Dict[int, Type[Error]] = {
    cls.status: cls for cls in [
        InvalidArgumentError, OutOfMemoryError, ShapeError, RangeError, NonFiniteError, IOFailure,
        FormatError, VersionError, StateError, SizeOverflowError, NotFoundError, UnsupportedError,
        CallbackError, DivergedError, CanceledError, InternalError]
}


def error_for(status: int, message: str, name: str = '') -> Error:
    """The exception for a status (an unknown negative status gives a plain Error)."""
    cls = BY_STATUS.get(status)
    if cls is None:
        return Error(message, status, name)
    return cls(message, status, name)
