"""A small, honest ctypes binding to libsgdlab.

It loads the shared library (from $SGDLAB_LIBRARY, else by its SONAME through
the system's search path), declares the argument and result types of the
functions it uses, and turns negative statuses into SgdError carrying the
library's message. It is an example to copy from, not a complete binding.
"""
import ctypes
import ctypes.util
import os

SONAME = 'libsgdlab.so.0'


def load(path=None):
    """Loads libsgdlab and declares the prototypes used below."""
    path = path or os.environ.get('SGDLAB_LIBRARY') or SONAME
    lib = ctypes.CDLL(path)
    lib.sgd_version_number.restype = ctypes.c_uint32
    lib.sgd_version_number.argtypes = []
    lib.sgd_version_string.restype = ctypes.c_char_p
    lib.sgd_version_string.argtypes = []
    lib.sgd_status_str.restype = ctypes.c_char_p
    lib.sgd_status_str.argtypes = [ctypes.c_int]
    lib.sgd_error_last.restype = ctypes.c_char_p
    lib.sgd_error_last.argtypes = []
    lib.sgd_error_clear.restype = None
    lib.sgd_error_clear.argtypes = []
    return lib


class SgdError(Exception):
    """A libsgdlab call returned a negative status."""

    def __init__(self, lib, status):
        self.status = status
        self.name = lib.sgd_status_str(status).decode()
        self.message = lib.sgd_error_last().decode()
        super().__init__('%s (%s)' % (self.message or self.name, self.name))


def check(lib, status):
    """Raises SgdError for a negative status, returns it otherwise."""
    if status < 0:
        raise SgdError(lib, status)
    return status
