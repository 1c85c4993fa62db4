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
    declare_optim(lib)
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


# ---------------------------------------------------------------- optimizers
#
# Mirrors of the public structs of sgdlab/optim.h (same field order and
# types), the callback types of sgd_optim_vtable, and two helpers: Optimizer
# (a built-in from a spec, or a host optimizer) and HostOptimizer (subclass it
# to write an optimizer in Python).

c_float_p = ctypes.POINTER(ctypes.c_float)
c_float_pp = ctypes.POINTER(c_float_p)

SGD_OK, SGD_EINVAL, SGD_ERANGE, SGD_ENOTFOUND, SGD_ECALLBACK = 0, -1, -4, -11, -13
SGD_OPTIM_FUSED_CLIP = 1
SGD_NONFINITE_SKIP, SGD_NONFINITE_ERROR, SGD_NONFINITE_APPLY = 0, 1, 2
SGD_STATE_F32, SGD_STATE_F64, SGD_STATE_I64 = 1, 2, 3


class StepArgs(ctypes.Structure):
    _fields_ = [('struct_size', ctypes.c_uint32), ('group', ctypes.c_uint32), ('call', ctypes.c_uint32),
                ('calls', ctypes.c_uint32), ('step', ctypes.c_int64), ('offset', ctypes.c_size_t),
                ('weight_decay', ctypes.c_double), ('grad_scale', ctypes.c_double),
                ('clip_value', ctypes.c_double)]


INIT_FN = ctypes.CFUNCTYPE(ctypes.c_int, c_float_pp, ctypes.c_size_t, ctypes.c_void_p)
STEP_FN = ctypes.CFUNCTYPE(ctypes.c_int, c_float_p, c_float_p, c_float_pp, ctypes.c_size_t, ctypes.c_double,
                           ctypes.POINTER(StepArgs), ctypes.c_void_p)
SCALARS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_double), ctypes.c_size_t, ctypes.c_void_p)
SET_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_double, ctypes.c_void_p)
GET_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(ctypes.c_double), ctypes.c_void_p)
DESTROY_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class OptimVtable(ctypes.Structure):
    _fields_ = [('struct_size', ctypes.c_uint32), ('flags', ctypes.c_uint32), ('name', ctypes.c_char_p),
                ('n_slots', ctypes.c_uint32), ('n_scalars', ctypes.c_uint32),
                ('slot_names', ctypes.POINTER(ctypes.c_char_p)),
                ('init', INIT_FN), ('step', STEP_FN), ('export_scalars', SCALARS_FN),
                ('import_scalars', SCALARS_FN), ('set_hparam', SET_FN), ('get_hparam', GET_FN),
                ('destroy', DESTROY_FN)]


class StepInfo(ctypes.Structure):
    _fields_ = [('struct_size', ctypes.c_uint32), ('applied', ctypes.c_int32), ('nonfinite', ctypes.c_int32),
                ('clipped', ctypes.c_int32), ('grad_norm', ctypes.c_double), ('grad_max_abs', ctypes.c_double),
                ('clip_scale', ctypes.c_double), ('step', ctypes.c_int64), ('consecutive_skips', ctypes.c_int64)]


class Hygiene(ctypes.Structure):
    _fields_ = [('struct_size', ctypes.c_uint32), ('nonfinite', ctypes.c_int32), ('clip_norm', ctypes.c_double),
                ('clip_value', ctypes.c_double), ('max_consecutive_skips', ctypes.c_uint32)]


def declare_optim(lib):
    """Declares the prototypes of sgdlab/optim.h on a loaded library."""
    P, vp, sz, i64, d = ctypes.POINTER, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int64, ctypes.c_double
    protos = {
        'sgd_optim_vtable_init': (None, [P(OptimVtable)]),
        'sgd_optim_new': (ctypes.c_int, [P(vp), ctypes.c_char_p, sz, vp]),
        'sgd_optim_new_custom': (ctypes.c_int, [P(vp), P(OptimVtable), vp, sz, vp]),
        'sgd_optim_free': (None, [vp]),
        'sgd_optim_name': (ctypes.c_char_p, [vp]),
        'sgd_optim_size': (sz, [vp]),
        'sgd_optim_builtin_name': (ctypes.c_char_p, [sz]),
        'sgd_optim_step_info_init': (None, [P(StepInfo)]),
        'sgd_optim_step': (ctypes.c_int, [vp, c_float_p, c_float_p, d, P(StepInfo)]),
        'sgd_optim_set': (ctypes.c_int, [vp, ctypes.c_char_p, d]),
        'sgd_optim_get': (ctypes.c_int, [vp, ctypes.c_char_p, P(d)]),
        'sgd_optim_get_step': (ctypes.c_int, [vp, P(i64)]),
        'sgd_optim_set_step': (ctypes.c_int, [vp, i64]),
        'sgd_optim_add_group': (ctypes.c_int, [vp, sz, sz, d, d, P(sz)]),
        'sgd_optim_hygiene_init': (None, [P(Hygiene)]),
        'sgd_optim_set_hygiene': (ctypes.c_int, [vp, P(Hygiene)]),
        'sgd_optim_reset': (ctypes.c_int, [vp]),
        'sgd_optim_state_count': (sz, [vp]),
        'sgd_optim_state_describe': (ctypes.c_int, [vp, sz, P(ctypes.c_char_p), P(ctypes.c_int32), P(sz)]),
        'sgd_optim_state_export': (ctypes.c_int, [vp, sz, vp, sz]),
        'sgd_optim_state_import': (ctypes.c_int, [vp, sz, vp, sz]),
    }
    for name, (res, args) in protos.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


class HostOptimizer:
    """Base class for an optimizer written in Python. Set `name`, `slot_names`
    (one state array of n floats each) and `n_scalars`; override `step` and
    whichever of the other methods you need. Exceptions raised in a callback
    become SGD_ECALLBACK (ctypes would otherwise report success)."""
    name = 'python'
    slot_names = ()
    n_scalars = 0
    flags = 0

    def init(self, slots, n):
        """Sets the initial state (slots are zero-filled already)."""

    def step(self, params, grads, slots, n, lr, args):
        raise NotImplementedError

    def export_scalars(self):
        return []

    def import_scalars(self, values):
        pass

    def set_hparam(self, name, value):
        return SGD_ENOTFOUND

    def get_hparam(self, name):
        return None

    def destroy(self):
        pass

    def vtable(self, lib):
        """Builds the sgd_optim_vtable; keep the returned objects alive as long as the optimizer."""
        vt = OptimVtable()
        lib.sgd_optim_vtable_init(ctypes.byref(vt))
        self._name = self.name.encode()
        self._slot_names = (ctypes.c_char_p * max(1, len(self.slot_names)))(*[s.encode() for s in self.slot_names])
        vt.flags = self.flags
        vt.name = self._name
        vt.n_slots = len(self.slot_names)
        vt.n_scalars = self.n_scalars
        vt.slot_names = ctypes.cast(self._slot_names, ctypes.POINTER(ctypes.c_char_p))

        def guard(fn):
            def call(*a):
                try:
                    r = fn(*a)
                    return 0 if r is None else int(r)
                except Exception:  # noqa: BLE001 - any failure is reported to the library
                    import traceback
                    traceback.print_exc()
                    return SGD_ECALLBACK
            return call

        nslots = len(self.slot_names)
        self._cbs = [
            INIT_FN(guard(lambda s, n, u: self.init([s[i] for i in range(nslots)], n))),
            STEP_FN(guard(lambda p, g, s, n, lr, a, u: self.step(p, g, [s[i] for i in range(nslots)], n, lr,
                                                                  a.contents))),
            SCALARS_FN(guard(lambda out, n, u: self._export(out, n))),
            SCALARS_FN(guard(lambda vals, n, u: self.import_scalars([vals[i] for i in range(n)]))),
            SET_FN(guard(lambda name, v, u: self.set_hparam(name.decode(), v))),
            GET_FN(guard(lambda name, out, u: self._get(name.decode(), out))),
            DESTROY_FN(lambda u: self.destroy()),
        ]
        (vt.init, vt.step, vt.export_scalars, vt.import_scalars, vt.set_hparam, vt.get_hparam,
         vt.destroy) = self._cbs
        return vt

    def _export(self, out, n):
        vals = list(self.export_scalars())
        if len(vals) != n:
            return SGD_ECALLBACK
        for i, v in enumerate(vals):
            out[i] = v
        return 0

    def _get(self, name, out):
        v = self.get_hparam(name)
        if v is None:
            return SGD_ENOTFOUND
        out[0] = v
        return 0


class Optimizer:
    """An sgd_optim: Optimizer(lib, n, spec='adam:lr=1e-3') for a built-in,
    Optimizer(lib, n, host=MyHostOptimizer()) for one written in Python."""

    def __init__(self, lib, n, spec=None, host=None):
        self.lib, self.n, self.host = lib, n, host
        self.h = ctypes.c_void_p()
        if host is not None:
            self._vt = host.vtable(lib)
            check(lib, lib.sgd_optim_new_custom(ctypes.byref(self.h), ctypes.byref(self._vt), None, n, None))
        else:
            check(lib, lib.sgd_optim_new(ctypes.byref(self.h), spec.encode(), n, None))

    def close(self):
        if self.h:
            self.lib.sgd_optim_free(self.h)
            self.h = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def name(self):
        return self.lib.sgd_optim_name(self.h).decode()

    def step(self, params, grads, lr):
        """One step over two (ctypes.c_float * n) arrays; returns the StepInfo."""
        info = StepInfo()
        self.lib.sgd_optim_step_info_init(ctypes.byref(info))
        check(self.lib, self.lib.sgd_optim_step(self.h, params, grads, lr, ctypes.byref(info)))
        return info

    def set(self, name, value):
        check(self.lib, self.lib.sgd_optim_set(self.h, name.encode(), value))

    def get(self, name):
        v = ctypes.c_double()
        check(self.lib, self.lib.sgd_optim_get(self.h, name.encode(), ctypes.byref(v)))
        return v.value

    def set_hygiene(self, **fields):
        h = Hygiene()
        self.lib.sgd_optim_hygiene_init(ctypes.byref(h))
        for k, v in fields.items():
            setattr(h, k, v)
        check(self.lib, self.lib.sgd_optim_set_hygiene(self.h, ctypes.byref(h)))

    def add_group(self, offset, count, lr_scale, weight_decay):
        idx = ctypes.c_size_t()
        check(self.lib, self.lib.sgd_optim_add_group(self.h, offset, count, lr_scale, weight_decay,
                                                     ctypes.byref(idx)))
        return idx.value

    _ctype = {SGD_STATE_F32: ctypes.c_float, SGD_STATE_F64: ctypes.c_double, SGD_STATE_I64: ctypes.c_int64}

    def state(self):
        """All state arrays as {name: ctypes array} (copies)."""
        out = {}
        for i in range(self.lib.sgd_optim_state_count(self.h)):
            name, typ, length = ctypes.c_char_p(), ctypes.c_int32(), ctypes.c_size_t()
            check(self.lib, self.lib.sgd_optim_state_describe(self.h, i, ctypes.byref(name), ctypes.byref(typ),
                                                              ctypes.byref(length)))
            arr = (self._ctype[typ.value] * length.value)()
            check(self.lib, self.lib.sgd_optim_state_export(self.h, i, arr, ctypes.sizeof(arr)))
            out[name.value.decode()] = arr
        return out

    def load_state(self, state):
        """Imports arrays as state() returned them, by name."""
        for i in range(self.lib.sgd_optim_state_count(self.h)):
            name = ctypes.c_char_p()
            check(self.lib, self.lib.sgd_optim_state_describe(self.h, i, ctypes.byref(name), None, None))
            arr = state[name.value.decode()]
            check(self.lib, self.lib.sgd_optim_state_import(self.h, i, arr, ctypes.sizeof(arr)))
