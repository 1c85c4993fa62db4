"""A small ctypes binding to libsgdlab, for the tests of the C interface through FFI
(tests/test_*ctypes*.py). The Python package is python/sgdlab; this file only
declares what those tests call.

It loads the shared library (from $SGDLAB_LIBRARY, else by its SONAME through
the system's search path), declares the argument and result types of the
functions it uses, and turns negative statuses into SgdError carrying the
library's message. It is not a complete binding.
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


# ---------------------------------------------------------------- schedules

SGD_ECALLBACK = -13

LR_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int64, ctypes.POINTER(ctypes.c_double), ctypes.c_void_p)
MOMENTUM_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int64, ctypes.POINTER(ctypes.c_double),
                               ctypes.POINTER(ctypes.c_int32), ctypes.c_void_p)
OBSERVE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int64, ctypes.c_double, ctypes.c_void_p)
EXPORT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_double), ctypes.c_size_t, ctypes.c_void_p)
IMPORT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_double), ctypes.c_size_t, ctypes.c_void_p)
DESTROY_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class SchedVtable(ctypes.Structure):
    """sgd_sched_vtable (sgdlab/sched.h)."""
    _fields_ = [('struct_size', ctypes.c_uint32), ('name', ctypes.c_char_p), ('lr', LR_FN),
                ('momentum', MOMENTUM_FN), ('observe', OBSERVE_FN), ('state_size', ctypes.c_size_t),
                ('state_export', EXPORT_FN), ('state_import', IMPORT_FN), ('destroy', DESTROY_FN),
                ('user', ctypes.c_void_p)]


class WarmupOptions(ctypes.Structure):
    """sgd_sched_warmup_options."""
    _fields_ = [('struct_size', ctypes.c_uint32), ('start_factor', ctypes.c_double),
                ('total_iters', ctypes.c_int64)]


class PlateauOptions(ctypes.Structure):
    """sgd_sched_plateau_options; mode 0 min / 1 max, threshold_mode 0 rel / 1 abs."""
    _fields_ = [('struct_size', ctypes.c_uint32), ('mode', ctypes.c_int32), ('factor', ctypes.c_double),
                ('patience', ctypes.c_int64), ('threshold', ctypes.c_double), ('threshold_mode', ctypes.c_int32),
                ('cooldown', ctypes.c_int64), ('min_lr', ctypes.c_double), ('eps', ctypes.c_double)]


def _declare_sched(lib):
    P, D, I64, SZ, I32 = ctypes.c_void_p, ctypes.c_double, ctypes.c_int64, ctypes.c_size_t, ctypes.c_int32
    PD, PP = ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_void_p)
    protos = {
        'sgd_sched_new': (ctypes.c_int, [PP, ctypes.c_char_p, D, P]),
        'sgd_sched_new_custom': (ctypes.c_int, [PP, ctypes.POINTER(SchedVtable), P]),
        'sgd_sched_vtable_init': (None, [ctypes.POINTER(SchedVtable)]),
        'sgd_sched_free': (None, [P]),
        'sgd_sched_name': (ctypes.c_char_p, [P]),
        'sgd_sched_lr': (ctypes.c_int, [P, I64, PD]),
        'sgd_sched_lrs': (ctypes.c_int, [P, I64, SZ, PD]),
        'sgd_sched_momentum': (ctypes.c_int, [P, I64, PD, ctypes.POINTER(I32)]),
        'sgd_sched_cycles_momentum': (I32, [P]),
        'sgd_sched_watches_metric': (I32, [P]),
        'sgd_sched_observe': (ctypes.c_int, [P, I64, D]),
        'sgd_sched_state_size': (SZ, [P]),
        'sgd_sched_state_export': (ctypes.c_int, [P, PD, SZ]),
        'sgd_sched_state_import': (ctypes.c_int, [P, PD, SZ]),
        'sgd_sched_warmup_options_init': (None, [ctypes.POINTER(WarmupOptions)]),
        'sgd_sched_warmup_new': (ctypes.c_int, [PP, P, ctypes.POINTER(WarmupOptions), P]),
        'sgd_sched_plateau_options_init': (None, [ctypes.POINTER(PlateauOptions)]),
        'sgd_sched_plateau_new': (ctypes.c_int, [PP, P, ctypes.POINTER(PlateauOptions), P]),
    }
    for name, (res, args) in protos.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args


class Schedule:
    """A libsgdlab learning-rate schedule: built-in (from a spec), host-written
    (Python callables behind an sgd_sched_vtable), or a composite of those.

    Host callbacks that raise make the library call fail with SGD_ECALLBACK;
    the Python exception is re-raised from the call (as the cause of SgdError).
    """

    def __init__(self, lib, handle, keep=()):
        self._lib, self._h, self._keep, self._owned = lib, handle, list(keep), False
        self._pending = None  # an exception raised inside a callback

    # -- construction
    @classmethod
    def from_spec(cls, lib, spec, base_lr):
        _declare_sched(lib)
        h = ctypes.c_void_p()
        check(lib, lib.sgd_sched_new(ctypes.byref(h), spec.encode(), base_lr, None))
        return cls(lib, h)

    @classmethod
    def custom(cls, lib, name, lr, momentum=None, observe=None, state_size=0, state_export=None,
               state_import=None, destroy=None):
        """lr(step) -> float; momentum(step) -> float or None; observe(step, metric);
        state_export() -> list of state_size floats; state_import(list); destroy()."""
        _declare_sched(lib)
        self = cls(lib, None)

        def guard(fn):
            def wrapped(*args):
                try:
                    return fn(*args)
                except BaseException as e:  # never let an exception cross the C boundary
                    self._pending = e
                    return SGD_ECALLBACK
            return wrapped

        def c_lr(step, out, user):
            out[0] = float(lr(step))
            return 0

        def c_momentum(step, out, is_set, user):
            m = momentum(step)
            is_set[0] = 0 if m is None else 1
            if m is not None:
                out[0] = float(m)
            return 0

        def c_observe(step, metric, user):
            observe(step, metric)
            return 0

        def c_export(buf, n, user):
            vals = list(state_export())
            if len(vals) != n:
                raise ValueError('state_export returned %d values, expected %d' % (len(vals), n))
            for i, v in enumerate(vals):
                buf[i] = float(v)
            return 0

        def c_import(buf, n, user):
            state_import([buf[i] for i in range(n)])
            return 0

        def c_destroy(user):
            if destroy is not None:
                destroy()

        vt = SchedVtable()
        lib.sgd_sched_vtable_init(ctypes.byref(vt))
        keep = [name.encode()]
        vt.name = keep[0]
        vt.lr = LR_FN(guard(c_lr))
        if momentum is not None:
            vt.momentum = MOMENTUM_FN(guard(c_momentum))
        if observe is not None:
            vt.observe = OBSERVE_FN(guard(c_observe))
        vt.state_size = state_size
        if state_size:
            vt.state_export = EXPORT_FN(guard(c_export))
            vt.state_import = IMPORT_FN(guard(c_import))
        vt.destroy = DESTROY_FN(c_destroy)
        keep += [vt.lr, vt.momentum, vt.observe, vt.state_export, vt.state_import, vt.destroy]
        h = ctypes.c_void_p()
        check(lib, lib.sgd_sched_new_custom(ctypes.byref(h), ctypes.byref(vt), None))
        self._h, self._keep = h, keep  # the callbacks must outlive the schedule
        return self

    def _adopt(self, lib, fn, opts):
        h = ctypes.c_void_p()
        self._call(fn(ctypes.byref(h), self._h, ctypes.byref(opts), None))
        self._owned = True  # the composite frees it now
        outer = Schedule(lib, h, keep=[self])
        outer._children = [self]
        return outer

    def warmup(self, start_factor=1.0 / 3, total_iters=5):
        """A linear warmup over this schedule (which the result then owns)."""
        o = WarmupOptions()
        self._lib.sgd_sched_warmup_options_init(ctypes.byref(o))
        o.start_factor, o.total_iters = start_factor, total_iters
        return self._adopt(self._lib, self._lib.sgd_sched_warmup_new, o)

    def plateau(self, **kw):
        """Plateau reduction over this schedule; keywords as PlateauOptions' fields."""
        o = PlateauOptions()
        self._lib.sgd_sched_plateau_options_init(ctypes.byref(o))
        for k, v in kw.items():
            setattr(o, k, v)
        return self._adopt(self._lib, self._lib.sgd_sched_plateau_new, o)

    # -- queries
    def _call(self, status):
        pending = self._pending
        for c in getattr(self, '_children', ()):
            pending = pending or c._take_pending()
        self._pending = None
        if status < 0:
            err = SgdError(self._lib, status)
            if pending is not None:
                raise err from pending
            raise err
        return status

    def _take_pending(self):
        p = self._pending
        self._pending = None
        for c in getattr(self, '_children', ()):
            p = p or c._take_pending()
        return p

    @property
    def name(self):
        return self._lib.sgd_sched_name(self._h).decode()

    def lr(self, step):
        v = ctypes.c_double()
        self._call(self._lib.sgd_sched_lr(self._h, step, ctypes.byref(v)))
        return v.value

    def lrs(self, first, n):
        buf = (ctypes.c_double * n)()
        self._call(self._lib.sgd_sched_lrs(self._h, first, n, buf))
        return list(buf)

    def momentum(self, step):
        """The momentum (or beta1) the schedule sets at step, or None."""
        v, s = ctypes.c_double(), ctypes.c_int32()
        self._call(self._lib.sgd_sched_momentum(self._h, step, ctypes.byref(v), ctypes.byref(s)))
        return v.value if s.value else None

    def observe(self, step, metric):
        self._call(self._lib.sgd_sched_observe(self._h, step, metric))

    def state(self):
        n = self._lib.sgd_sched_state_size(self._h)
        buf = (ctypes.c_double * n)()
        self._call(self._lib.sgd_sched_state_export(self._h, buf, n))
        return list(buf)

    def restore(self, values):
        buf = (ctypes.c_double * len(values))(*values)
        self._call(self._lib.sgd_sched_state_import(self._h, buf, len(values)))

    def close(self):
        if self._h is not None and not self._owned:
            self._lib.sgd_sched_free(self._h)
        self._h = None

    def __del__(self):
        if getattr(self, '_h', None) is not None:
            self.close()


# ---------------------------------------------------------------- optimizers
#
# Mirrors of the public structs of sgdlab/optim.h (same field order and
# types), the callback types of sgd_optim_vtable, and two helpers: Optimizer
# (a built-in from a spec, or a host optimizer) and HostOptimizer (subclass it
# to write an optimizer in Python).

c_float_p = ctypes.POINTER(ctypes.c_float)
c_float_pp = ctypes.POINTER(c_float_p)

SGD_OK, SGD_EINVAL, SGD_ERANGE, SGD_ENOTFOUND = 0, -1, -4, -11  # SGD_ECALLBACK: above
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
    """Declares the prototypes of sgdlab/optim.h on a loaded library (Optimizer does it itself)."""
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
        declare_optim(lib)
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
