"""The training loop with its guard (sgdlab/trainer.h)."""
from __future__ import annotations

import ctypes as C
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Union

import numpy as np

from . import _structs as st
from ._base import Object, free_fn, query, view
from ._lib import check, cstr, guarded, lib, pystr
from .data import Dataset
from .model import Model
from .monitor import Monitor, MonitorEvent, action_name, action_of, by_kind
from .optim import Optimizer
from .sched import Schedule

PHASES = {0: 'step', 1: 'epoch_end', 2: 'done'}


def stop_name(reason: int) -> str:
    return pystr(lib.sgd_trainer_stop_name(reason))


def event_name(kind: int) -> str:
    return pystr(lib.sgd_trainer_event_name(kind))


def trainer_options(spec: str = '', **fields: Any) -> st.TrainerOptions:
    o = st.TrainerOptions()
    lib.sgd_trainer_options_init(C.byref(o))
    if spec:
        check(lib.sgd_trainer_options_parse(C.byref(o), cstr(spec)))
    o.set(**{k: int(v) if isinstance(v, bool) else v for k, v in fields.items()})
    return o


@dataclass(frozen=True)
class TrainerProgress:
    """A progress report (sgd_trainer_progress); phase is step, epoch_end or done."""
    phase: str
    step: int
    epoch: int
    epochs: int
    batch: int
    batches: int
    loss: float
    smoothed_loss: float
    lr: float
    samples_per_sec: float
    elapsed: float
    eta: float
    fraction: float
    train_loss: float
    val_loss: float
    val_accuracy: float
    rescues: int
    guard_scale: float
    train_bpc: float = float('nan')
    val_bpc: float = float('nan')
    train_perplexity: float = float('nan')
    val_perplexity: float = float('nan')

    @classmethod
    def from_c(cls, p: st.TrainerProgress) -> 'TrainerProgress':
        d = p.as_dict()
        d['phase'] = PHASES.get(d['phase'], 'unknown')
        return cls(**d)


@dataclass(frozen=True)
class TrainerEvent:
    """A trainer event (sgd_trainer_event): kind is monitor, rescue, gave_up,
    diverged, early_stop or stopped; ``monitor`` is the monitor's event for
    kind monitor; ``action`` what the trainer proposes (monitor) or did (rescue)."""
    kind: str
    step: int
    epoch: int
    monitor: Optional[MonitorEvent]
    action: str
    lr_scale: float
    lr: float
    guard_scale: float
    rescues: int
    restored_step: int
    message: str

    @classmethod
    def from_c(cls, e: st.TrainerEvent) -> 'TrainerEvent':
        mon = MonitorEvent.from_c(e.monitor.contents) if e.monitor else None
        return cls(event_name(e.kind), int(e.step), int(e.epoch), mon, action_name(e.action), e.lr_scale, e.lr,
                   e.guard_scale, int(e.rescues), int(e.restored_step), pystr(e.message))


ProgressFn = Callable[[TrainerProgress], Any]
EventFn = Callable[[TrainerEvent], Any]


class Trainer(Object):
    """The training loop (sgd_trainer) over a model, an optimizer, an optional
    schedule and monitor, a training set and an optional validation set.

    Options are the fields of sgd_trainer_options, as a spec
    (``"epochs=2,batch_size=64,guard=0"``) and/or keyword arguments. The
    trainer borrows the objects it is given: it keeps them alive (closing them
    meanwhile does not free them). Without a monitor it makes one
    (:attr:`monitor`). :meth:`fit` raises DivergedError or CanceledError as
    sgd_trainer_fit() returns them; an exception raised in a callback reaches
    the caller of fit().
    """

    _what = 'trainer'

    def __init__(self, model: Model, optimizer: Optimizer, train: Dataset, val: Optional[Dataset] = None,
                 schedule: Optional[Schedule] = None, monitor: Optional[Monitor] = None, options: str = '',
                 **kw: Any) -> None:
        o = trainer_options(options, **kw)
        self.model, self.optimizer, self.schedule = model, optimizer, schedule
        self.monitor = monitor if monitor is not None else Monitor()
        borrowed = [model._own(), optimizer._own(), self.monitor._own()]
        if schedule is not None:
            borrowed.append(schedule._own())
        keep: List[Any] = [train._own().keep]
        if val is not None:
            keep.append(val._own().keep)
        h = C.c_void_p()
        check(lib.sgd_trainer_new(C.byref(h), model._h, optimizer._h, schedule._h if schedule else None,
                                  self.monitor._h, train._h, val._h if val is not None else None, C.byref(o), None))
        super().__init__(h.value or 0, free_fn('sgd_trainer_free'), keep)
        for b in borrowed:
            self._own().borrow(b)
        self.options = o

    def on_progress(self, fn: Optional[ProgressFn]) -> None:
        """Calls @p fn(TrainerProgress) every progress_interval steps, at epoch ends
        and when a run ends; it returns False or "stop" to stop the run (fit()
        then raises CanceledError). None removes it."""
        if fn is None:
            check(lib.sgd_trainer_set_progress(self._h, C.cast(0, st.TRAINER_PROGRESS_FN), None))
            return
        report = fn

        def c_fn(p: Any, user: Any) -> int:
            r = report(TrainerProgress.from_c(p.contents))
            return 1 if r is False or r == 'stop' else 0

        cb = st.TRAINER_PROGRESS_FN(guarded(c_fn, 1))
        check(lib.sgd_trainer_set_progress(self._h, cb, None))
        self._own().keep.append(cb)

    def on_event(self, fn: Optional[EventFn]) -> None:
        """Calls @p fn(TrainerEvent) for every trainer event; for monitor events its
        answer decides the action: None accepts the proposal, else an action name,
        or (action, lr_scale). None removes it (the default policy decides)."""
        if fn is None:
            check(lib.sgd_trainer_set_event_callback(self._h, C.cast(0, st.TRAINER_EVENT_FN), None))
            return
        decide = fn

        def c_fn(e: Any, scale: Any, user: Any) -> int:
            ev = e.contents
            r = decide(TrainerEvent.from_c(ev))
            if r is None:
                return int(ev.action)
            if isinstance(r, tuple):
                scale[0] = float(r[1])
                return action_of(r[0])
            return action_of(r)

        cb = st.TRAINER_EVENT_FN(guarded(c_fn, 0x7fffffff))
        check(lib.sgd_trainer_set_event_callback(self._h, cb, None))
        self._own().keep.append(cb)

    def set_comm(self, rank: int = 0, size: int = 1,
                 allreduce: Optional[Callable[[Any, Any], None]] = None) -> None:
        """Makes this trainer process @p rank of @p size that train the same model
        data-parallel, with DistributedDataParallel's semantics
        (sgd_trainer_set_comm(); docs/dist.md): @p allreduce(f, d) must replace
        the float32 array @p f and the float64 array @p d (zero-copy views, valid
        during the call) by their sums over the @p size participants, every
        participant calling it in the same order. Any transport fits: threads of
        this program, an MPI binding of your own (libsgdlab-mpi's communicator is
        not wrapped). ``set_comm()`` with no arguments trains alone again. An
        exception in @p allreduce stops fit() with it; the others then wait, so
        make them fail too (a barrier with a timeout)."""
        c = st.TrainerComm()
        lib.sgd_trainer_comm_init(C.byref(c))
        c.rank, c.size = rank, size
        if allreduce is not None:
            own = self._own()
            own_ref = weakref.ref(own)  # no cycle through the owner's keep list
            fn = allreduce

            def c_fn(f: Any, nf: int, d: Any, nd: int, user: Any) -> int:
                o = own_ref()
                assert o is not None
                fv = view(o, C.cast(f, C.c_void_p).value or 0, (nf,))
                dv = view(o, C.cast(d, C.c_void_p).value or 0, (nd,), np.float64)
                fn(fv, dv)
                return 0

            cb = st.TRAINER_ALLREDUCE_FN(guarded(c_fn))
            c.allreduce = cb
            own.keep.append(cb)
        check(lib.sgd_trainer_set_comm(self._h, C.byref(c)))

    def fit(self, max_steps: int = 0) -> str:
        """Trains until the planned epochs are done, or for at most @p max_steps more
        batches; returns the stop reason (completed, budget, early_stop)."""
        check(lib.sgd_trainer_fit(self._h, max_steps))
        return self.stop_reason

    @property
    def stop_reason(self) -> str:
        return stop_name(int(lib.sgd_trainer_stop_reason(self._h)))

    def stats(self) -> Dict[str, Any]:
        """The counters of sgd_trainer_stats; ``events`` is a dict by monitor event kind."""
        d = query(st.TrainerStats, lib.sgd_trainer_get_stats, self._h)
        d['stop_reason'] = stop_name(d['stop_reason'])
        d['events'] = by_kind(d['events'])
        return d

    def epoch(self, e: int) -> Dict[str, Any]:
        """The record of epoch @p e (sgd_trainer_epoch)."""
        d = query(st.TrainerEpoch, lib.sgd_trainer_get_epoch, self._h, e)
        d['done'] = bool(d['done'])
        return d

    @property
    def history(self) -> List[Dict[str, Any]]:
        """The records of the epochs finished so far."""
        out = []
        for e in range(int(self.options.epochs)):
            r = self.epoch(e)
            if not r['done']:
                break
            out.append(r)
        return out

    @property
    def next_lr(self) -> float:
        """The learning rate of the next step (schedule times guard scale)."""
        v = C.c_double()
        check(lib.sgd_trainer_next_lr(self._h, C.byref(v)))
        return float(v.value)

    @property
    def state(self) -> bytes:
        """The trainer's own state (counters, data position, guard, snapshots; the
        composed objects are saved through their own state). Settable."""
        n = int(lib.sgd_trainer_state_size(self._h))
        buf = C.create_string_buffer(n)
        check(lib.sgd_trainer_state_export(self._h, buf, n))
        return buf.raw

    @state.setter
    def state(self, data: Union[bytes, bytearray, memoryview]) -> None:
        b = bytes(data)
        buf = C.create_string_buffer(b, len(b))
        check(lib.sgd_trainer_state_import(self._h, buf, len(b)))


_ = np
