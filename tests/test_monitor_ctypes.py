#!/usr/bin/env python3
"""The monitor through Python's ctypes: options, a Python callback that
returns an action, observations, the verdict, counters and the state array.
It declares its own prototypes (tests/sgdlab_ctypes.py loads the library)."""
import ctypes
import math
import pathlib
import sys

import sgdlab_ctypes as sgdlab  # noqa: E402  (the raw ctypes binding, tests/sgdlab_ctypes.py)

lib = sgdlab.load()
c_int32, c_uint32, c_double, c_void_p = ctypes.c_int32, ctypes.c_uint32, ctypes.c_double, ctypes.c_void_p


class Event(ctypes.Structure):
    _fields_ = [('struct_size', c_uint32), ('kind', c_int32), ('step', ctypes.c_int64),
                ('loss', c_double), ('grad_norm', c_double), ('lr', c_double), ('smoothed', c_double),
                ('statistic', c_double), ('threshold', c_double), ('severity', c_int32),
                ('suggested_action', c_int32), ('suggested_lr_scale', c_double),
                ('remedy', ctypes.c_char_p), ('detail', ctypes.c_char_p)]


class Counters(ctypes.Structure):
    _fields_ = [('struct_size', c_uint32), ('verdict', c_int32), ('steps', ctypes.c_int64),
                ('nonfinite_steps', ctypes.c_int64), ('first_alarm', ctypes.c_int64),
                ('events', ctypes.c_int64 * 8), ('first_event', ctypes.c_int64 * 8),
                ('initial', c_double), ('smoothed', c_double), ('best', c_double), ('noise', c_double),
                ('progress', c_double)]


CALLBACK = ctypes.CFUNCTYPE(c_int32, ctypes.POINTER(Event), ctypes.POINTER(c_double), c_void_p)
lib.sgd_monitor_options_init.argtypes = [c_void_p]
lib.sgd_monitor_options_parse.argtypes = [c_void_p, ctypes.c_char_p]
lib.sgd_monitor_new.argtypes = [ctypes.POINTER(c_void_p), c_void_p, c_void_p]
lib.sgd_monitor_free.argtypes = [c_void_p]
lib.sgd_monitor_free.restype = None
lib.sgd_monitor_add_callback.argtypes = [c_void_p, ctypes.POINTER(c_int32), c_uint32, CALLBACK, c_void_p]
lib.sgd_monitor_observe.argtypes = [c_void_p, c_double, c_double, c_double, ctypes.POINTER(c_int32),
                                    ctypes.POINTER(c_double)]
lib.sgd_monitor_get_verdict.argtypes = [c_void_p, ctypes.POINTER(c_int32)]
lib.sgd_monitor_get_counters.argtypes = [c_void_p, ctypes.POINTER(Counters)]
lib.sgd_monitor_state_size.argtypes = [c_void_p, ctypes.POINTER(ctypes.c_size_t)]
lib.sgd_monitor_state_export.argtypes = [c_void_p, ctypes.POINTER(c_double), ctypes.c_size_t]
lib.sgd_monitor_state_import.argtypes = [c_void_p, ctypes.POINTER(c_double), ctypes.c_size_t]
for f in ('sgd_monitor_kind_name', 'sgd_monitor_verdict_name', 'sgd_monitor_action_name'):
    getattr(lib, f).argtypes = [c_int32]
    getattr(lib, f).restype = ctypes.c_char_p

# A program built against 0.1's headers links sgd_monitor_options_init@SGDLAB_0.1: it writes 0.1's
# 168 bytes and no more (0.2's struct is 200); the default version fills 0.2's.
libc = ctypes.CDLL(None)
libc.dlvsym.restype = c_void_p
libc.dlvsym.argtypes = [c_void_p, ctypes.c_char_p, ctypes.c_char_p]
INIT = ctypes.CFUNCTYPE(c_int32, c_void_p)
for version, size in ((b'SGDLAB_0.1', 168), (b'SGDLAB_0.2', 200)):
    addr = libc.dlvsym(lib._handle, b'sgd_monitor_options_init', version)
    if addr:  # (glibc; the symbol versions exist where the library was linked with them)
        buf = ctypes.create_string_buffer(b'\xaa' * 256, 256)
        assert INIT(addr)(buf) == 0
        assert int.from_bytes(buf.raw[:4], 'little') == size, (version, buf.raw[:4])
        assert buf.raw[size:] == b'\xaa' * (256 - size), (version, 'wrote past its struct')

opts = ctypes.create_string_buffer(512)  # larger than the struct: only struct_size bytes are used
sgdlab.check(lib, lib.sgd_monitor_options_init(opts))
sgdlab.check(lib, lib.sgd_monitor_options_parse(opts, b'plateau_steps=50'))
try:
    sgdlab.check(lib, lib.sgd_monitor_options_parse(opts, b'plateau_steps=-3'))
    raise AssertionError('bad option accepted')
except sgdlab.SgdError as e:
    assert 'plateau_steps' in e.message, e.message

mon = c_void_p()
sgdlab.check(lib, lib.sgd_monitor_new(ctypes.byref(mon), opts, None))
seen = []


def on_event(ev, scale, user):
    e = ev.contents
    seen.append((lib.sgd_monitor_kind_name(e.kind).decode(), e.step))
    scale[0] = 0.5
    return 2 if e.kind == 1 else 0  # SCALE_LR on divergence


cb = CALLBACK(on_event)  # keep a reference while the monitor may call it
sgdlab.check(lib, lib.sgd_monitor_add_callback(mon, None, 0x3F, cb, None))
action, scale = c_int32(), c_double()
for i in range(20):
    sgdlab.check(lib, lib.sgd_monitor_observe(mon, 2.3 * 0.97 ** i, -1.0, 0.1, ctypes.byref(action),
                                              ctypes.byref(scale)))
    assert action.value == 0
lib.sgd_monitor_observe(mon, 50.0, -1.0, 0.1, ctypes.byref(action), ctypes.byref(scale))
assert action.value == 2 and scale.value == 0.5, (action.value, scale.value)
assert ('divergence', 20) in seen, seen
lib.sgd_monitor_observe(mon, 60.0, -1.0, 0.1, ctypes.byref(action), ctypes.byref(scale))
lib.sgd_monitor_observe(mon, math.nan, -1.0, 0.1, ctypes.byref(action), ctypes.byref(scale))
v = c_int32()
sgdlab.check(lib, lib.sgd_monitor_get_verdict(mon, ctypes.byref(v)))
assert lib.sgd_monitor_verdict_name(v.value) == b'diverged'
c = Counters()
c.struct_size = ctypes.sizeof(Counters)
sgdlab.check(lib, lib.sgd_monitor_get_counters(mon, ctypes.byref(c)))
assert c.steps == 23 and c.nonfinite_steps == 1 and c.first_alarm == 20, (c.steps, c.first_alarm)
n = ctypes.c_size_t()
sgdlab.check(lib, lib.sgd_monitor_state_size(mon, ctypes.byref(n)))
buf = (c_double * n.value)()
sgdlab.check(lib, lib.sgd_monitor_state_export(mon, buf, n))
mon2 = c_void_p()
sgdlab.check(lib, lib.sgd_monitor_new(ctypes.byref(mon2), None, None))
sgdlab.check(lib, lib.sgd_monitor_state_import(mon2, buf, n))
sgdlab.check(lib, lib.sgd_monitor_get_verdict(mon2, ctypes.byref(v)))
assert v.value == 1
lib.sgd_monitor_free(mon)
lib.sgd_monitor_free(mon2)
lib.sgd_monitor_free(None)
print('monitor ctypes: OK')
