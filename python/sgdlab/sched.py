"""Learning-rate schedules (sgdlab/sched.h): closed-form built-ins with torch's
semantics from a spec or typed options, composition, schedules written in Python."""
from __future__ import annotations

import ctypes as C
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union, overload

import numpy as np

from . import _structs as st
from ._base import F64, Object, addr, free_fn
from ._lib import check, cstr, guarded, lib, put_doubles, pystr
from .errors import ECALLBACK, InvalidArgumentError

#: kind: (options struct, takes a base_lr) for the typed constructors.
KINDS: Dict[str, Tuple[Any, bool]] = {
    'constant': (st.SchedConstantOptions, True), 'step': (st.SchedStepOptions, True),
    'multistep': (st.SchedMultistepOptions, True), 'exponential': (st.SchedExponentialOptions, True),
    'polynomial': (st.SchedPolynomialOptions, True), 'cosine': (st.SchedCosineOptions, True),
    'cosine_warm_restarts': (st.SchedCosineWarmRestartsOptions, True), 'linear': (st.SchedLinearOptions, True),
    'onecycle': (st.SchedOnecycleOptions, False), 'cyclic': (st.SchedCyclicOptions, False),
}
_ENUMS = {'anneal_strategy': {'cos': 0, 'linear': 1}, 'mode': {'triangular': 0, 'triangular2': 1, 'exp_range': 2,
                                                               'min': 0, 'max': 1},
          'threshold_mode': {'rel': 0, 'abs': 1}}


def _fill(o: st.Struct, kw: Dict[str, Any]) -> List[Any]:
    keep: List[Any] = []
    for k, v in list(kw.items()):
        if k in _ENUMS and isinstance(v, str):
            if v not in _ENUMS[k]:
                raise InvalidArgumentError('%s=%r: unknown value' % (k, v))
            kw[k] = _ENUMS[k][v]
        elif isinstance(v, bool):
            kw[k] = int(v)
    if 'milestones' in kw:
        ms = (C.c_int64 * len(kw['milestones']))(*kw['milestones'])
        keep.append(ms)
        kw['milestones'] = C.cast(ms, C.POINTER(C.c_int64))
        kw['n_milestones'] = len(ms)
    o.set(**kw)
    return keep


class HostSchedule:
    """Base class for a schedule written in Python (an sgd_sched_vtable behind
    :meth:`Schedule.custom`). Override :meth:`lr`; the others are optional.

    :meth:`lr` must be a pure function of the step: the library calls it for
    any step, in any order. An exception raised in any method reaches the
    caller of the library function that called it; the schedule stays usable.
    """

    name = 'python'
    #: Override momentum() and set this to True for a schedule that sets momentum.
    cycles_momentum = False
    #: Override observe() and set this to True for a schedule that watches a metric.
    watches_metric = False
    #: Doubles of state exported by export_state().
    state_size = 0

    def lr(self, step: int) -> float:
        raise NotImplementedError

    def momentum(self, step: int) -> Optional[float]:
        return None

    def observe(self, step: int, metric: float) -> None:
        pass

    def export_state(self) -> Sequence[float]:
        return []

    def import_state(self, state: Sequence[float]) -> None:
        pass


class _FunctionSchedule(HostSchedule):
    def __init__(self, fn: Callable[[int], float], name: str) -> None:
        self.fn, self.name = fn, name

    def lr(self, step: int) -> float:
        return float(self.fn(step))


class Schedule(Object):
    """A learning-rate schedule (sgd_sched): lr(t) for any step t >= 0.

    ``Schedule("cosine:T_max=100,eta_min=1e-5", base_lr=0.1)`` (the spec grammar,
    composition included, is in docs/sched.md), :meth:`create` for typed
    options, :meth:`sequential`, :meth:`warmup` and :meth:`plateau` to
    compose, :meth:`custom` / :meth:`from_function` for Python code.
    ``s[t]``, ``s[a:b]`` and ``s.lrs(a, b)`` read rates without advancing
    anything; iterating yields lr(0), lr(1), ... forever; :meth:`step` hands
    out the rate of step :attr:`t` and moves on, and ``observe(metric)``
    reports a metric after the step handed out last.

    A schedule handed to a composite belongs to it afterwards: using it
    directly raises StateError.
    """

    _what = 'schedule'

    #: The next step :meth:`step` hands out (settable: resume with ``s.t = step``).
    t = 0

    def __init__(self, spec: str, base_lr: float = 1.0) -> None:
        h = C.c_void_p()
        check(lib.sgd_sched_new(C.byref(h), cstr(spec), float(base_lr), None))
        super().__init__(h.value or 0, free_fn('sgd_sched_free'))

    @classmethod
    def _wrap(cls, ptr: int, keep: List[Any]) -> 'Schedule':
        self = cls.__new__(cls)
        Object.__init__(self, ptr, free_fn('sgd_sched_free'), keep)
        return self

    @classmethod
    def create(cls, kind: str, base_lr: Optional[float] = None, **options: Any) -> 'Schedule':
        """A built-in from typed options (sgd_sched_<kind>_new()): ``create("cosine",
        0.1, T_max=100)``; keys are the fields of sgd_sched_<kind>_options. onecycle
        and cyclic take no base_lr."""
        if kind not in KINDS:
            raise InvalidArgumentError('unknown schedule kind %r (typed kinds: %s)' % (kind, ', '.join(KINDS)))
        struct, relative = KINDS[kind]
        o = struct()
        getattr(lib, 'sgd_sched_%s_options_init' % kind)(C.byref(o))
        keep = _fill(o, dict(options))
        h = C.c_void_p()
        new = getattr(lib, 'sgd_sched_%s_new' % kind)
        if relative:
            if base_lr is None:
                raise InvalidArgumentError('%s needs a base_lr' % kind)
            check(new(C.byref(h), float(base_lr), C.byref(o), None))
        else:
            if base_lr is not None:
                raise InvalidArgumentError('%s takes no base_lr (its rates are absolute)' % kind)
            check(new(C.byref(h), C.byref(o), None))
        del keep
        return cls._wrap(h.value or 0, [])

    def _adopt(self) -> List[Any]:
        """Hands this schedule to a composite: returns what must stay alive with it."""
        own = self._own()
        keep = [own.keep]
        own.disown()
        self._owner = None
        return keep

    @classmethod
    def sequential(cls, children: Sequence['Schedule'], milestones: Sequence[int]) -> 'Schedule':
        """child k from milestones[k-1] on, each counting from 0 (SequentialLR). Takes the children."""
        if len(set(id(c) for c in children)) != len(children):
            raise InvalidArgumentError('sequential: a schedule appears twice among the children')
        ptrs = (C.c_void_p * len(children))(*[c._h for c in children])
        ms = (C.c_int64 * max(len(milestones), 1))(*milestones)
        h = C.c_void_p()
        check(lib.sgd_sched_sequential_new(C.byref(h), ptrs, len(children), ms if milestones else None, None))
        keep: List[Any] = []
        for c in children:
            keep += c._adopt()
        return cls._wrap(h.value or 0, keep)

    @classmethod
    def warmup(cls, inner: 'Schedule', start_factor: Optional[float] = None,
               total_iters: Optional[int] = None) -> 'Schedule':
        """A linear warmup over @p inner (which it takes)."""
        o = st.SchedWarmupOptions()
        lib.sgd_sched_warmup_options_init(C.byref(o))
        if start_factor is not None:
            o.start_factor = start_factor
        if total_iters is not None:
            o.total_iters = total_iters
        h = C.c_void_p()
        check(lib.sgd_sched_warmup_new(C.byref(h), inner._h, C.byref(o), None))
        return cls._wrap(h.value or 0, inner._adopt())

    @classmethod
    def plateau(cls, inner: 'Schedule', **options: Any) -> 'Schedule':
        """Plateau reduction (ReduceLROnPlateau's options: mode='min'|'max', factor,
        patience, threshold, threshold_mode='rel'|'abs', cooldown, min_lr, eps)
        as a scale over @p inner (which it takes)."""
        o = st.SchedPlateauOptions()
        lib.sgd_sched_plateau_options_init(C.byref(o))
        _fill(o, dict(options))
        h = C.c_void_p()
        check(lib.sgd_sched_plateau_new(C.byref(h), inner._h, C.byref(o), None))
        return cls._wrap(h.value or 0, inner._adopt())

    @classmethod
    def custom(cls, host: HostSchedule) -> 'Schedule':
        """A schedule whose rates are @p host's Python code (sgd_sched_new_custom())."""
        vt = st.SchedVtable()
        lib.sgd_sched_vtable_init(C.byref(vt))
        name = cstr(host.name)
        vt.name = name

        def c_lr(step: int, out: Any, user: Any) -> int:
            out[0] = float(host.lr(step))
            return 0

        def c_momentum(step: int, out: Any, isset: Any, user: Any) -> int:
            m = host.momentum(step)
            out[0], isset[0] = (0.0, 0) if m is None else (float(m), 1)
            return 0

        def c_observe(step: int, metric: float, user: Any) -> int:
            host.observe(step, metric)
            return 0

        def c_export(out: Any, n: int, user: Any) -> int:
            return put_doubles(host.export_state(), out, n, '%s.export_state()' % type(host).__name__)

        def c_import(inp: Any, n: int, user: Any) -> int:
            host.import_state([inp[i] for i in range(n)])
            return 0

        cbs = [st.SCHED_LR_FN(guarded(c_lr)), st.SCHED_MOMENTUM_FN(guarded(c_momentum)),
               st.SCHED_OBSERVE_FN(guarded(c_observe)), st.SCHED_EXPORT_FN(guarded(c_export)),
               st.SCHED_IMPORT_FN(guarded(c_import))]
        vt.lr = cbs[0]
        if host.cycles_momentum:
            vt.momentum = cbs[1]
        if host.watches_metric:
            vt.observe = cbs[2]
        if host.state_size:
            vt.state_size = int(host.state_size)
            vt.state_export, vt.state_import = cbs[3], cbs[4]
        h = C.c_void_p()
        check(lib.sgd_sched_new_custom(C.byref(h), C.byref(vt), None))
        return cls._wrap(h.value or 0, [host, cbs, name])

    @classmethod
    def from_function(cls, fn: Callable[[int], float], name: str = 'python') -> 'Schedule':
        """A stateless schedule lr(t) = fn(t) written in Python."""
        return cls.custom(_FunctionSchedule(fn, name))

    # -- queries
    @property
    def name(self) -> str:
        return pystr(lib.sgd_sched_name(self._h))

    def lr(self, step: int) -> float:
        """The learning rate in force at @p step (0 is the first optimizer step)."""
        v = C.c_double()
        check(lib.sgd_sched_lr(self._h, step, C.byref(v)))
        return float(v.value)

    def lrs(self, start: int, stop: int) -> F64:
        """The rates of steps start .. stop - 1, as a float64 array."""
        n = max(0, stop - start)
        out = np.empty(n, dtype=np.float64)
        check(lib.sgd_sched_lrs(self._h, start, n, addr(out)))
        return out

    @overload
    def __getitem__(self, t: int) -> float: ...

    @overload
    def __getitem__(self, t: slice) -> F64: ...

    def __getitem__(self, t: Union[int, slice]) -> Union[float, F64]:
        if isinstance(t, slice):
            if t.stop is None or (t.step not in (None, 1)):
                raise InvalidArgumentError('schedule slices need a stop and a step of 1')
            return self.lrs(t.start or 0, t.stop)
        return self.lr(t)

    def __iter__(self) -> Iterator[float]:
        t = 0
        while True:
            yield self.lr(t)
            t += 1

    @property
    def cycles_momentum(self) -> bool:
        return bool(lib.sgd_sched_cycles_momentum(self._h))

    def momentum(self, step: int) -> Optional[float]:
        """The momentum (or Adam's beta1) the schedule sets at @p step, or None."""
        m, s = C.c_double(), C.c_int32()
        check(lib.sgd_sched_momentum(self._h, step, C.byref(m), C.byref(s)))
        return float(m.value) if s.value else None

    @property
    def watches_metric(self) -> bool:
        return bool(lib.sgd_sched_watches_metric(self._h))

    def observe(self, metric: float, step: Optional[int] = None) -> None:
        """Reports the metric measured after @p step (ReduceLROnPlateau.step(metric));
        by default after the step :meth:`step` handed out last (0 before any)."""
        if step is None:
            step = max(self.t - 1, 0)
        check(lib.sgd_sched_observe(self._h, step, float(metric)))

    def step(self) -> float:
        """The rate of step :attr:`t`, then moves :attr:`t` on by one (for a hand-written
        loop: ``lr = sched.step()`` before each optimizer step)."""
        lr = self.lr(self.t)
        self.t += 1
        return lr

    @property
    def state(self) -> F64:
        """The schedule's state (plateau counters...), a float64 array (settable)."""
        n = int(lib.sgd_sched_state_size(self._h))
        out = np.empty(n, dtype=np.float64)
        check(lib.sgd_sched_state_export(self._h, addr(out) if n else None, n))
        return out

    @state.setter
    def state(self, values: Any) -> None:
        a = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
        check(lib.sgd_sched_state_import(self._h, addr(a) if a.size else None, a.size))

    def __repr__(self) -> str:
        return '<sgdlab.Schedule closed>' if self.closed else '<sgdlab.Schedule %s>' % self.name


_ = ECALLBACK
