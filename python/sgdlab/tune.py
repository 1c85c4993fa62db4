"""Choosing a learning rate (sgdlab/tune.h): the LR range test with lag-free
suggestions, grid and random search."""
from __future__ import annotations

import ctypes as C
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from . import _structs as st
from ._base import F64, Object, addr, free_fn, query
from ._lib import check, cstr, guarded, has, lib, pystr
from .data import Dataset
from .errors import Error, InvalidArgumentError, NotFoundError, UnsupportedError
from .model import Model
from .monitor import monitor_options, verdict_name
from .optim import Optimizer
from .trainer import TrainerEvent, stop_name, trainer_options

METHODS = ['steepest', 'minimum', 'valley']
END_REASONS = {0: 'completed', 1: 'diverged', 2: 'nonfinite'}
RAMPS = {'exponential': 0, 'linear': 1}


def method_name(method: int) -> str:
    return pystr(lib.sgd_lrfind_method_name(method))


def default_method() -> str:
    return method_name(int(lib.sgd_lrfind_default_method()))


class LRFinder(Object):
    """The result of a range test (sgd_lrfind): the curve and the suggestions.

    :attr:`lrs`, :attr:`losses`, :attr:`smoothed` are the curve (float64
    copies); :meth:`points` gives every sample with the local fit the
    suggestions use; :meth:`suggestion` raises NotFoundError with the library's
    reason when the curve does not allow one; :attr:`suggestions` maps each
    method to its rate or None.
    """

    _what = 'range-test result'

    def __init__(self, ptr: int) -> None:
        super().__init__(ptr, free_fn('sgd_lrfind_free'))

    def __len__(self) -> int:
        return int(lib.sgd_lrfind_count(self._h))

    @property
    def end_reason(self) -> str:
        return END_REASONS.get(int(lib.sgd_lrfind_end_reason(self._h)), 'unknown')

    def _curve(self) -> List[F64]:
        n = len(self)
        out = [np.empty(n, dtype=np.float64) for _ in range(3)]
        check(lib.sgd_lrfind_curve(self._h, addr(out[0]), addr(out[1]), addr(out[2]), n))
        return out

    @property
    def lrs(self) -> F64:
        return self._curve()[0]

    @property
    def losses(self) -> F64:
        return self._curve()[1]

    @property
    def smoothed(self) -> F64:
        return self._curve()[2]

    def points(self) -> List[Dict[str, Any]]:
        """Every point: used, lr, loss, smoothed, fit, slope (sgd_lrfind_sample)."""
        out = []
        for i in range(len(self)):
            d = query(st.LrfindSample, lib.sgd_lrfind_point, self._h, i)
            d['used'] = bool(d['used'])
            out.append(d)
        return out

    def suggestion(self, method: Optional[str] = None) -> float:
        """The rate suggested by @p method (steepest, the default; minimum; valley)."""
        m = METHODS.index(method) if method is not None else int(lib.sgd_lrfind_default_method())
        lr = C.c_double()
        check(lib.sgd_lrfind_suggestion(self._h, m, C.byref(lr), None))
        return float(lr.value)

    @property
    def suggestions(self) -> Dict[str, Optional[float]]:
        out: Dict[str, Optional[float]] = {}
        for m in METHODS:
            try:
                out[m] = self.suggestion(m)
            except NotFoundError:
                out[m] = None
        return out

    def why_not(self, method: Optional[str] = None) -> str:
        """The library's reason when @p method has no suggestion ("" when it has one)."""
        try:
            self.suggestion(method)
            return ''
        except NotFoundError as e:
            return e.message


def lrfind_options(progress: Optional[Callable[[int, int, float, float], Any]] = None, **kw: Any
                   ) -> tuple:
    o = st.LrfindOptions()
    lib.sgd_lrfind_options_init(C.byref(o))
    if isinstance(kw.get('ramp'), str):
        kw['ramp'] = RAMPS[kw['ramp']]
    o.set(**{k: int(v) if isinstance(v, bool) else v for k, v in kw.items()})
    keep = None
    if progress is not None:
        report = progress

        def c_fn(step: int, steps: int, lr: float, loss: float, user: Any) -> int:
            return 1 if report(step, steps, lr, loss) is False else 0
        keep = st.LRFIND_PROGRESS_FN(guarded(c_fn, 1))
        o.progress = keep
    return o, keep


def lr_find(model: Model, optimizer: Optimizer, train: Dataset,
            progress: Optional[Callable[[int, int, float, float], Any]] = None, **options: Any) -> LRFinder:
    """The LR range test on a libsgdlab model (sgd_lrfind_run()): options are the
    fields of sgd_lrfind_options (lr_min, lr_max, steps, batch_size, seed,
    beta, stop_factor, shuffle, ramp="exponential"|"linear"). The model and the
    optimizer are put back as they were. @p progress(step, steps, lr, loss)
    may return False to cancel (CanceledError)."""
    o, keep = lrfind_options(progress, **options)
    h = C.c_void_p()
    check(lib.sgd_lrfind_run(C.byref(h), model._h, optimizer._h, train._h, C.byref(o), None))
    del keep
    return LRFinder(h.value or 0)


def analyze_lr_curve(lrs: Sequence[float], losses: Sequence[float], **options: Any) -> LRFinder:
    """The range test's analysis and suggestions for a curve measured anywhere
    (sgd_lrfind_analyze()): @p lrs increasing, @p losses the raw minibatch losses."""
    if not has('sgd_lrfind_analyze'):
        raise UnsupportedError('analyze_lr_curve needs sgd_lrfind_analyze(), which this libsgdlab (%s) does not '
                               'have' % pystr(lib.sgd_version_string()))
    from ._lib import lib as L
    lr = np.ascontiguousarray(lrs, dtype=np.float64)
    lo = np.ascontiguousarray(losses, dtype=np.float64)
    o, keep = lrfind_options(None, **options)
    h = C.c_void_p()
    check(L.sgd_lrfind_analyze(C.byref(h), addr(lr), addr(lo), lr.size, C.byref(o), None))
    return LRFinder(h.value or 0)


@dataclass(frozen=True)
class Trial:
    """One trial of a search (sgd_search_trial)."""
    index: int
    status: str          #: ok or diverged
    lr: float
    optimizer: str
    momentum: Optional[float]
    batch_size: int
    seed: int
    max_steps: int
    final_loss: float
    val_loss: float
    val_accuracy: float
    verdict: Optional[str]
    stop_reason: str
    steps: int
    first_alarm: int
    seconds: float

    @classmethod
    def from_c(cls, t: st.SearchTrial) -> 'Trial':
        mom = None if t.momentum != t.momentum else t.momentum
        return cls(int(t.index), 'diverged' if t.status == -14 else 'ok', t.lr, pystr(t.optimizer), mom,
                   int(t.batch_size), int(t.seed), int(t.max_steps), t.final_loss, t.val_loss, t.val_accuracy,
                   verdict_name(t.verdict) if t.verdict >= 0 else None,
                   stop_name(t.stop_reason) if t.stop_reason else '', int(t.steps), int(t.first_alarm), t.seconds)


class SearchResult(Object):
    """A table of trials (sgd_search); iterate over it, or read :attr:`best`."""

    _what = 'search result'

    def __init__(self, ptr: int) -> None:
        super().__init__(ptr, free_fn('sgd_search_free'))

    def __len__(self) -> int:
        return int(lib.sgd_search_count(self._h))

    def __getitem__(self, i: int) -> Trial:
        if i < 0:
            i += len(self)
        t = st.SearchTrial()
        t.struct_size = C.sizeof(t)
        check(lib.sgd_search_get_trial(self._h, i, C.byref(t)))
        return Trial.from_c(t)

    def __iter__(self) -> Iterator[Trial]:
        return (self[i] for i in range(len(self)))

    @property
    def trials(self) -> List[Trial]:
        return list(self)

    def set_trial(self, i: int, trial: Trial) -> None:
        """Fills in the outcome of trial @p i with one found elsewhere (another
        process of a sharded search, an earlier run; sgd_search_set_trial()): the
        inputs of @p trial (index, lr, optimizer, momentum, batch size, seed) must
        be trial @p i's, else InvalidArgumentError names the first that differs;
        its outcome (status ... seconds) is copied."""
        if i < 0:
            i += len(self)
        t = st.SearchTrial()
        t.struct_size = C.sizeof(t)
        check(lib.sgd_search_get_trial(self._h, i, C.byref(t)))
        opt = cstr(trial.optimizer)
        t.index, t.lr, t.optimizer, t.batch_size, t.seed = trial.index, trial.lr, opt, trial.batch_size, trial.seed
        t.momentum = float('nan') if trial.momentum is None else trial.momentum
        t.status = -14 if trial.status == 'diverged' else 0
        t.max_steps, t.final_loss, t.val_loss = trial.max_steps, trial.final_loss, trial.val_loss
        t.val_accuracy, t.steps, t.first_alarm, t.seconds = trial.val_accuracy, trial.steps, trial.first_alarm, \
            trial.seconds
        t.verdict = -1 if trial.verdict is None else _code(verdict_name, trial.verdict, 'verdict')
        t.stop_reason = 0 if not trial.stop_reason else _code(stop_name, trial.stop_reason, 'stop_reason')
        check(lib.sgd_search_set_trial(self._h, i, C.byref(t)))

    @property
    def best(self) -> Optional[Trial]:
        """The best trial (highest validation accuracy among those that did not
        diverge, ties by final loss), or None when every trial diverged."""
        i = C.c_size_t()
        try:
            check(lib.sgd_search_best(self._h, C.byref(i)))
        except NotFoundError:
            return None
        return self[int(i.value)]


def _code(name_of: Callable[[int], str], name: str, what: str) -> int:
    for c in range(64):
        if name_of(c) == name:
            return c
    raise InvalidArgumentError('%s=%r: unknown' % (what, name))


Objective = Callable[[Trial], Union[None, Dict[str, Any]]]


class _Sink:
    """Exceptions of callbacks that may run on the search's worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.errors: List[BaseException] = []

    def __call__(self, e: BaseException) -> None:
        with self.lock:
            self.errors.append(e)


def _search(method: int, model_spec: Optional[str], train: Optional[Dataset], val: Optional[Dataset],
            objective: Optional[Objective], kw: Dict[str, Any]) -> SearchResult:
    o = st.SearchOptions()
    lib.sgd_search_options_init(C.byref(o))
    o.method = method
    keep: List[Any] = []
    sink = _Sink()

    def arr(ctype: Any, values: Sequence[Any]) -> Any:
        a = (ctype * len(values))(*values)
        keep.append(a)
        return a

    if 'lrs' in kw:
        o.lrs, o.n_lrs = C.cast(arr(C.c_double, kw.pop('lrs')), C.POINTER(C.c_double)), len(keep[-1])
    if 'optimizers' in kw:
        o.optimizers = C.cast(arr(C.c_char_p, [cstr(s) for s in kw.pop('optimizers')]), C.POINTER(C.c_char_p))
        o.n_optimizers = len(keep[-1])
    if 'momenta' in kw:
        o.momenta, o.n_momenta = C.cast(arr(C.c_double, kw.pop('momenta')), C.POINTER(C.c_double)), len(keep[-1])
    if 'batch_sizes' in kw:
        o.batch_sizes = C.cast(arr(C.c_int64, kw.pop('batch_sizes')), C.POINTER(C.c_int64))
        o.n_batch_sizes = len(keep[-1])
    if 'schedule' in kw:
        s = cstr(kw.pop('schedule'))
        keep.append(s)
        o.schedule = s
    if 'trainer' in kw:
        t = kw.pop('trainer')
        to = trainer_options(t) if isinstance(t, str) else trainer_options(**t)
        keep.append(to)
        o.trainer = C.pointer(to)
    if 'monitor' in kw:
        m = kw.pop('monitor')
        mo = monitor_options(m) if isinstance(m, str) else monitor_options(**m)
        keep.append(mo)
        o.monitor = C.pointer(mo)
    on_step, on_event, on_trial = kw.pop('on_step', None), kw.pop('on_event', None), kw.pop('on_trial', None)
    if on_step is not None:
        o.on_step = st.SEARCH_STEP_FN(guarded(lambda tr, s_, loss, lr, u: on_step(tr, s_, loss, lr), None, sink))
        keep.append(o.on_step)
    if on_event is not None:
        o.on_event = st.SEARCH_EVENT_FN(guarded(lambda tr, ev, u: on_event(tr, TrainerEvent.from_c(ev.contents)),
                                                None, sink))
        keep.append(o.on_event)
    if on_trial is not None:
        o.on_trial = st.SEARCH_TRIAL_FN(guarded(lambda t, d, n, u: on_trial(Trial.from_c(t.contents), d, n),
                                                None, sink))
        keep.append(o.on_trial)
    o.set(**kw)
    h = C.c_void_p()
    if objective is not None:
        run_trial = objective

        def c_obj(tp: Any, user: Any) -> int:
            t = tp.contents
            r = run_trial(Trial.from_c(t))
            r = r or {}
            diverged = bool(r.pop('diverged', False))
            for k, v in r.items():
                if k == 'verdict' and isinstance(v, str):
                    v = ['healthy', 'diverged', 'unstable', 'stagnant'].index(v)
                setattr(t, k, v)
            return -14 if diverged else 0
        cb = st.SEARCH_OBJECTIVE(guarded(c_obj, -13, sink))
        st_ = lib.sgd_search_run_objective(C.byref(h), cb, None, C.byref(o), None)
    else:
        assert model_spec is not None and train is not None
        st_ = lib.sgd_search_run(C.byref(h), cstr(model_spec), train._h, val._h if val is not None else None,
                                 C.byref(o), None)
    if sink.errors:
        from ._lib import raise_pending
        err: Optional[Error] = None
        try:
            check(st_)
        except Error as e:
            err = e
        if h.value:
            lib.sgd_search_free(h.value)
        raise_pending(sink.errors[0], err)
    check(st_)
    return SearchResult(h.value or 0)


def grid_search(model_spec: Optional[str] = None, train: Optional[Dataset] = None, val: Optional[Dataset] = None,
                *, objective: Optional[Objective] = None, **options: Any) -> SearchResult:
    """A grid over learning rates (lr_min, lr_max, lr_count, or lrs=[...]),
    optimizers (specs without lr), momenta and batch_sizes (sgd_search_run()),
    each trial with a budget of max_steps batches and the schedule given
    ("cosine" by default). With @p objective, a Python callable trains each trial
    itself (sgd_search_run_objective()): it receives a :class:`Trial` and returns a
    dict of the outputs it knows (final_loss, val_loss, val_accuracy, steps,
    verdict, diverged=True...). Other options: threads, seed, trainer (a spec or a
    dict), monitor, on_step, on_event, on_trial."""
    return _search(0, model_spec, train, val, objective, options)


def random_search(model_spec: Optional[str] = None, train: Optional[Dataset] = None, val: Optional[Dataset] = None,
                  *, objective: Optional[Objective] = None, **options: Any) -> SearchResult:
    """As :func:`grid_search`, with ``trials`` seeded draws (log-uniform rates)."""
    return _search(1, model_spec, train, val, objective, options)
