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
