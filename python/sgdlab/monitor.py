"""The loss-curve health monitor (sgdlab/monitor.h): feed it one loss per step,
from any training loop, and read the events it raises."""
from __future__ import annotations

import ctypes as C
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np

from . import _structs as st
from ._base import F64, Object, addr, free_fn, query
from . import _lib
from ._lib import check, cstr, guarded, lib, pystr
from .errors import InvalidArgumentError

KINDS = ['nonfinite', 'divergence', 'spike', 'oscillation', 'plateau', 'stagnation', 'grad_spike']
ACTIONS = {'continue': 0, 'skip': 1, 'scale_lr': 2, 'rollback': 3, 'stop': 4}
ALARMS = ('nonfinite', 'divergence', 'oscillation', 'stagnation')
_ACTION_NAMES = list(ACTIONS)
_BAD_ACTION = 0x7fffffff  # returned by a callback that raised: the call then fails with SGD_ECALLBACK


_observe = lib.sgd_monitor_observe
_observe_step = lib.sgd_monitor_observe_step


def _pending() -> bool:
    return bool(getattr(_lib._tls, 'pending', None))


def kind_name(kind: int) -> str:
    return pystr(lib.sgd_monitor_kind_name(kind))


def verdict_name(verdict: int) -> str:
    return pystr(lib.sgd_monitor_verdict_name(verdict))


def action_name(action: int) -> str:
    return pystr(lib.sgd_monitor_action_name(action))


def by_kind(values: List[Any]) -> Dict[str, Any]:
    """A per-kind array of the library (events[8]...) as a dict by kind name."""
    return {k: values[i] for i, k in enumerate(KINDS)}


def mask_of(kinds: Union[None, str, int, Iterable[str]]) -> int:
    """An event mask from None/"all", "alarms", one kind name, a list of names, or an int."""
    if kinds is None or kinds == 'all':
        return (1 << len(KINDS)) - 1
    if isinstance(kinds, int):
        return kinds
    if kinds == 'alarms':
        kinds = ALARMS
    if isinstance(kinds, str):
        kinds = [kinds]
    m = 0
    for k in kinds:
        if k not in KINDS:
            raise InvalidArgumentError('unknown monitor event kind %r (kinds: %s)' % (k, ', '.join(KINDS)))
        m |= 1 << KINDS.index(k)
    return m


def action_of(a: Union[None, str, int]) -> int:
    if a is None:
        return 0
    if isinstance(a, str):
        if a not in ACTIONS:
            raise InvalidArgumentError('unknown action %r (actions: %s)' % (a, ', '.join(ACTIONS)))
        return ACTIONS[a]
    return int(a)


def _opt(x: float) -> Optional[float]:
    return None if x == -1.0 else x


def _step(x: int) -> Optional[int]:
    return None if x < 0 else int(x)


@dataclass(frozen=True)
class MonitorEvent:
    """One event (sgd_monitor_event), copied out of the library."""
    kind: str                    #: nonfinite, divergence, spike, oscillation, plateau, stagnation
    step: int                    #: 0-based index of the observation that raised it
    loss: float
    grad_norm: Optional[float]   #: None when none was given
    lr: Optional[float]          #: None when none was given
    smoothed: float
    statistic: float
    threshold: float
    severity: str                #: info, warning, critical
    suggested_action: str        #: continue, skip, scale_lr, rollback, stop
    suggested_lr_scale: float
    remedy: str
    detail: str
    producer_step: Optional[int] = None      #: the step given to observe(step=), or None
    ref_step: Optional[int] = None           #: an earlier observation the event is about (a spike), or None
    ref_producer_step: Optional[int] = None  #: the producer's step of ref_step, or None

    @classmethod
    def from_c(cls, e: st.MonitorEvent) -> 'MonitorEvent':
        return cls(kind_name(e.kind), int(e.step), e.loss, _opt(e.grad_norm), _opt(e.lr), e.smoothed,
                   e.statistic, e.threshold, {0: 'info', 1: 'warning', 2: 'critical'}.get(e.severity, 'unknown'),
                   action_name(e.suggested_action), e.suggested_lr_scale, pystr(e.remedy), pystr(e.detail),
                   _step(e.producer_step), _step(e.ref_step), _step(e.ref_producer_step))

    def __str__(self) -> str:
        return 'step %d: %s (%s): %s' % (self.step, self.kind, self.severity, self.remedy)


@dataclass
class Observation:
    """What one :meth:`Monitor.observe` gave: the events raised (iterate over it)
    and the strongest action the callbacks asked for, with its factor."""
    events: List[MonitorEvent] = field(default_factory=list)
    action: str = 'continue'
    lr_scale: float = 1.0
    verdict: Optional[str] = None  #: the final verdict, from :meth:`Monitor.finish` only

    def __iter__(self) -> Iterator[MonitorEvent]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def __bool__(self) -> bool:
        return bool(self.events)

    def __getitem__(self, i: int) -> MonitorEvent:
        return self.events[i]


Callback = Callable[[MonitorEvent], Union[None, str, int, Tuple[Union[str, int], float]]]


class _Recorder:
    """Collects the events of one observation (no reference to the Monitor: no cycle)."""

    def __init__(self) -> None:
        self.events: List[MonitorEvent] = []

    def __call__(self, ev: Any, scale: Any, user: Any) -> int:
        self.events.append(MonitorEvent.from_c(ev.contents))
        return 0


def monitor_options(spec: str = '', **fields: Any) -> st.MonitorOptions:
    o = st.MonitorOptions()
    check(lib.sgd_monitor_options_init(C.byref(o)))
    if spec:
        check(lib.sgd_monitor_options_parse(C.byref(o), cstr(spec)))
    o.set(**fields)
    return o


class Monitor(Object):
    """A loss-curve health monitor (sgd_monitor).

    ``Monitor("divergence_ratio=5,plateau_steps=200")`` or keyword arguments
    (the fields of sgd_monitor_options; docs/monitor.md explains each).
    :meth:`observe` returns an :class:`Observation`: the events as
    :class:`MonitorEvent` dataclasses and the action the callbacks chose.
    Callbacks (:meth:`add_callback`) are Python callables receiving a
    :class:`MonitorEvent` and returning an action ("skip", "rollback"..., or
    None to continue), optionally with a factor: ``("scale_lr", 0.1)``. An
    exception raised by a callback reaches the caller of observe() (the
    observation is recorded, as the C library documents); the monitor stays usable.
    """

    _what = 'monitor'

    def __init__(self, spec: str = '', **options: Any) -> None:
        o = monitor_options(spec, **options)
        h = C.c_void_p()
        check(lib.sgd_monitor_new(C.byref(h), C.byref(o), None))
        self._recorder = _Recorder()
        rec = st.MONITOR_CALLBACK(guarded(self._recorder, _BAD_ACTION))
        super().__init__(h.value or 0, free_fn('sgd_monitor_free'), [rec])
        self._callbacks: Dict[int, Any] = {}
        check(lib.sgd_monitor_add_callback(self._h, None, mask_of('all'), rec, None))
        self.options = o
        self._action, self._scale = C.c_int32(), C.c_double()
        self._out_action, self._out_scale = C.byref(self._action), C.byref(self._scale)

    def add_callback(self, fn: Callback, kinds: Union[None, str, int, Iterable[str]] = 'all') -> int:
        """Calls @p fn for each event whose kind is in @p kinds ("all", "alarms", a
        kind, a list of kinds); returns an id for :meth:`remove_callback`. The
        monitor keeps a reference to @p fn."""
        def c_fn(ev: Any, scale: Any, user: Any) -> int:
            r = fn(MonitorEvent.from_c(ev.contents))
            if isinstance(r, tuple):
                a, f = r
                scale[0] = float(f)
                return action_of(a)
            return action_of(r)

        cb = st.MONITOR_CALLBACK(guarded(c_fn, _BAD_ACTION))
        cid = C.c_int32()
        check(lib.sgd_monitor_add_callback(self._h, C.byref(cid), mask_of(kinds), cb, None))
        self._callbacks[cid.value] = cb
        self._own().keep.append(cb)  # kept until the C monitor is freed (a trainer may still call it)
        return int(cid.value)

    def remove_callback(self, cid: int) -> None:
        check(lib.sgd_monitor_remove_callback(self._h, cid))
        self._callbacks.pop(cid, None)

    def observe(self, loss: float, grad_norm: Optional[float] = None, lr: Optional[float] = None,
                step: Optional[int] = None) -> Observation:
        """Feeds one step's loss (any float: NaN raises a nonfinite event), and
        optionally its gradient norm (a jump far above its smoothed level raises a
        grad_spike event) and learning rate. @p step is the producer's own step
        number, which the events then carry (sgd_monitor_observe_step()): the
        monitor's windows count observations whatever the spacing."""
        events: List[MonitorEvent] = []
        self._recorder.events = events
        if step is None:
            st_ = _observe(self._h, loss, -1.0 if grad_norm is None else grad_norm, -1.0 if lr is None else lr,
                           self._out_action, self._out_scale)
        else:
            st_ = _observe_step(self._h, step, loss, -1.0 if grad_norm is None else grad_norm,
                                -1.0 if lr is None else lr, self._out_action, self._out_scale)
        if st_ or _pending():
            check(st_)
        a = self._action.value
        return Observation(events, _ACTION_NAMES[a] if 0 <= a < len(_ACTION_NAMES) else action_name(a),
                           self._scale.value)

    def observe_many(self, losses: Iterable[float]) -> List[MonitorEvent]:
        """Feeds a whole curve; returns every event raised."""
        out: List[MonitorEvent] = []
        for x in losses:
            out += self.observe(x).events
        return out

    def finish(self) -> Observation:
        """Concludes a log that has ended (sgd_monitor_finish()): judges what the
        running windows could not judge yet (stagnation and drift of a short log,
        a spike before any progress) and returns the events raised then, with
        the final :attr:`Observation.verdict`. The callbacks' actions are ignored.
        Calling it again without new observations changes nothing."""
        events: List[MonitorEvent] = []
        self._recorder.events = events
        v = C.c_int32()
        check(lib.sgd_monitor_finish(self._h, C.byref(v)))
        return Observation(events, 'continue', 1.0, verdict_name(v.value))

    def reset(self) -> None:
        """Forgets every observation (options and callbacks are kept)."""
        check(lib.sgd_monitor_reset(self._h))

    @property
    def verdict(self) -> str:
        """healthy, diverged, unstable or stagnant."""
        v = C.c_int32()
        check(lib.sgd_monitor_get_verdict(self._h, C.byref(v)))
        return verdict_name(v.value)

    def counters(self) -> Dict[str, Any]:
        """Counters and current statistics (sgd_monitor_counters); ``events`` and
        ``first_event`` are dicts by kind name."""
        d = query(st.MonitorCounters, lib.sgd_monitor_get_counters, self._h)
        d['verdict'] = verdict_name(d['verdict'])
        d['events'], d['first_event'] = by_kind(d['events']), by_kind(d['first_event'])
        return d

    @property
    def state(self) -> F64:
        """What the monitor has learnt from the observations, as doubles (settable)."""
        n = C.c_size_t()
        check(lib.sgd_monitor_state_size(self._h, C.byref(n)))
        out = np.empty(n.value, dtype=np.float64)
        check(lib.sgd_monitor_state_export(self._h, addr(out), out.size))
        return out

    @state.setter
    def state(self, values: Any) -> None:
        a = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
        check(lib.sgd_monitor_state_import(self._h, addr(a), a.size))

    def __repr__(self) -> str:
        return '<sgdlab.Monitor closed>' if self.closed else '<sgdlab.Monitor %s>' % self.verdict


_ = math
