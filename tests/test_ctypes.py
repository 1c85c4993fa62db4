#!/usr/bin/env python3
"""libsgdlab through Python's ctypes, using tests/sgdlab_ctypes.py."""
import os
import pathlib
import sys

import sgdlab_ctypes as sgdlab  # noqa: E402  (the raw ctypes binding, tests/sgdlab_ctypes.py)

lib = sgdlab.load()
v = lib.sgd_version_number()
s = lib.sgd_version_string().decode()
assert '%d.%d.%d' % (v // 10000, v // 100 % 100, v % 100) == s, (v, s)
assert lib.sgd_status_str(0).decode().startswith('SGD_OK')
assert lib.sgd_status_str(-2).decode().startswith('SGD_ENOMEM')
assert lib.sgd_status_str(12345).decode() == 'unknown status'
lib.sgd_error_clear()
assert lib.sgd_error_last().decode() == ''
try:
    sgdlab.check(lib, -1)
    raise AssertionError('check() did not raise')
except sgdlab.SgdError as e:
    assert e.status == -1 and e.name.startswith('SGD_EINVAL')
print('ctypes: OK, libsgdlab', s)
