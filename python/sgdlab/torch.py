"""libsgdlab inside PyTorch training loops (imported only where torch is installed).

- :class:`LRScheduler`: drives any ``torch.optim`` optimizer, per parameter
  group, from a libsgdlab schedule spec (closed-form rates, plateau reduction
  over any schedule, one-cycle momentum), with torch's scheduler interface.
- :class:`Guard`: the trainer's guard for a torch loop: feed it each loss (and
  optionally the gradient norm); on the monitor's events it cuts the learning
  rate, rolls model and optimizer back to the last good in-memory snapshot of
  their ``state_dict``, skips the update, or stops with an exception.
- :func:`lr_find`: the LR range test on any ``torch.nn.Module``, with
  libsgdlab's analysis and suggestions; model and optimizer are left as they were.

Three lines in a torch loop::

    sched = sgdlab.torch.LRScheduler(opt, "warmup:total_iters=100,over=(cosine:T_max=5000)")
    guard = sgdlab.torch.Guard(model, opt, scheduler=sched)
    ...; loss.backward(); guard.step(loss) and opt.step(); sched.step()
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.optim.lr_scheduler import _LRScheduler

from .errors import DivergedError, InvalidArgumentError, UnsupportedError
from .monitor import ALARMS, KINDS, Monitor, MonitorEvent
from .sched import Schedule
from .tune import LRFinder, analyze_lr_curve

__all__ = ['Guard', 'GuardDecision', 'GuardStopped', 'LRFindResult', 'LRScheduler', 'lr_find']


def _momentum_key(group: Dict[str, Any]) -> Optional[str]:
    if 'momentum' in group:
        return 'momentum'
    if 'betas' in group:
        return 'betas'
    return None


class LRScheduler(_LRScheduler):
    """A torch learning-rate scheduler whose rates come from libsgdlab schedules.

    ``LRScheduler(optimizer, spec)`` makes one :class:`~sgdlab.Schedule` per
    parameter group from @p spec (one spec for all groups, or a list with one
    per group), with the group's initial lr as ``base_lr``; each
    :meth:`step` moves to the next step t and sets every group's lr to its
    schedule's lr(t), computed in closed form (no drift; resuming from
    :meth:`state_dict` is exact). ``plateau=dict(factor=0.5, patience=3)`` puts
    plateau reduction over the schedule (the spec ``plateau:...,over=(...)``
    says the same); then ``step(metric)`` reports the metric (as
    ``ReduceLROnPlateau.step(metric)``) and the reduction applies from the
    next step on. Schedules that cycle momentum (onecycle, cyclic) set each
    group's momentum, or Adam's beta1, as torch's OneCycleLR does.

    :attr:`lr_scale` multiplies every rate (the :class:`Guard`'s cuts go there).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, spec: Union[str, Sequence[str]],
                 plateau: Optional[Dict[str, Any]] = None, last_epoch: int = -1, verbose: bool = False) -> None:
        groups = optimizer.param_groups
        specs = [spec] * len(groups) if isinstance(spec, str) else list(spec)
        if len(specs) != len(groups):
            raise InvalidArgumentError('%d specs for %d parameter groups' % (len(specs), len(groups)))
        if plateau:
            opts = ','.join('%s=%s' % (k, v) for k, v in plateau.items())
            specs = ['plateau:%s,over=(%s)' % (opts, s) for s in specs]
        self.specs = specs
        for g in groups:
            g.setdefault('initial_lr', g['lr'])
        self.schedules = [Schedule(s, float(g['initial_lr'])) for s, g in zip(specs, groups)]
        self.lr_scale = 1.0
        super().__init__(optimizer, last_epoch, verbose)

    def get_lr(self) -> List[float]:  # type: ignore[override]
        t = max(self.last_epoch, 0)
        lrs = [s.lr(t) * self.lr_scale for s in self.schedules]
        for s, g in zip(self.schedules, self.optimizer.param_groups):
            if s.cycles_momentum:
                m = s.momentum(t)
                key = _momentum_key(g)
                if m is not None and key == 'momentum':
                    g['momentum'] = m
                elif m is not None and key == 'betas':
                    g['betas'] = (m,) + tuple(g['betas'][1:])
        return lrs

    def step(self, metric: Optional[float] = None, epoch: Optional[int] = None) -> None:  # type: ignore[override]
        """Moves to the next step; @p metric (a validation loss, say) is first reported
        to the schedules that watch one."""
        if metric is not None:
            value = float(metric.item() if hasattr(metric, 'item') else metric)
            for s in self.schedules:
                if s.watches_metric:
                    s.observe(value, step=max(self.last_epoch, 0))
        super().step(epoch)

    def lr_at(self, step: int) -> List[float]:
        """The rates of every group at @p step, without moving."""
        return [s.lr(step) * self.lr_scale for s in self.schedules]

    def state_dict(self) -> Dict[str, Any]:
        """last_epoch, the specs, base lrs, the guard scale and each schedule's state (plain Python values)."""
        return {'last_epoch': self.last_epoch, 'specs': list(self.specs), 'base_lrs': list(self.base_lrs),
                'lr_scale': self.lr_scale, '_last_lr': list(getattr(self, '_last_lr', [])),
                'states': [s.state.tolist() for s in self.schedules],
                '_step_count': getattr(self, '_step_count', 0)}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        if list(state_dict['specs']) != self.specs:
            raise InvalidArgumentError('load_state_dict: the state is of schedules %s, these are %s'
                                       % (state_dict['specs'], self.specs))
        for s, values in zip(self.schedules, state_dict['states']):
            s.state = values
        self.last_epoch = int(state_dict['last_epoch'])
        self.base_lrs = list(state_dict['base_lrs'])
        self.lr_scale = float(state_dict['lr_scale'])
        self._last_lr = list(state_dict['_last_lr'])
        setattr(self, '_step_count', int(state_dict.get('_step_count', getattr(self, '_step_count', 0))))


class GuardStopped(DivergedError):
    """Raised by :meth:`Guard.step` when the policy says stop, or when a rescue is
    needed after ``max_rescues`` of them. ``events`` are the events of that step."""

    def __init__(self, message: str, events: Sequence[MonitorEvent] = ()) -> None:
        super().__init__(message)
        self.events = list(events)


@dataclass
class GuardDecision:
    """What :meth:`Guard.step` decided: ``apply`` (truthy) when the optimizer
    should take this step; ``action`` continue, skip, scale_lr or rollback."""
    apply: bool
    action: str
    events: List[MonitorEvent] = field(default_factory=list)
    step: int = 0
    lr: float = 0.0
    message: str = ''

    def __bool__(self) -> bool:
        return self.apply


DEFAULT_POLICY: Dict[str, Union[str, Tuple[str, float]]] = {
    'nonfinite': 'rollback', 'divergence': 'rollback', 'spike': 'rollback', 'oscillation': 'rollback',
    'plateau': 'continue', 'stagnation': 'continue',
}
_STRENGTH = {'continue': 0, 'skip': 1, 'scale_lr': 2, 'rollback': 3, 'stop': 4}


def _copy_state(sd: Any) -> Any:
    """A deep copy of a state_dict, tensors cloned (in memory)."""
    if isinstance(sd, torch.Tensor):
        return sd.detach().clone()
    if isinstance(sd, dict):
        return type(sd)((k, _copy_state(v)) for k, v in sd.items())
    if isinstance(sd, list):
        return [_copy_state(v) for v in sd]
    if isinstance(sd, tuple):
        return tuple(_copy_state(v) for v in sd)
    return copy.deepcopy(sd)


class Guard:
    """The guard of libsgdlab's trainer, for a torch training loop.

    Call :meth:`step` after ``loss.backward()`` and before ``optimizer.step()``,
    and step the optimizer only when it returns a true decision::

        if guard.step(loss):            # or guard.step(loss, grad_norm)
            optimizer.step()

    The guard feeds the loss (a float or a tensor) to a :class:`~sgdlab.Monitor`
    (``monitor``: one, or its options as a spec) and answers its events with
    @p policy: a dict from event kind to ``"continue"``, ``"skip"``,
    ``"rollback"``, ``("scale_lr", factor)`` or ``"stop"`` (defaults: nonfinite,
    divergence, spike and oscillation roll back; plateau and stagnation carry
    on). A rollback restores the last good snapshot of the model's and the
    optimizer's ``state_dict`` (and the monitor's state) and multiplies the
    learning rate by @p factor (0.5); a cut multiplies it without restoring.
    Cuts go through the :class:`LRScheduler` given as @p scheduler, so that
    they last over its steps; otherwise into each group's ``lr``.

    Snapshots are kept in memory, as the trainer does: one before the first
    step; every @p interval steps a candidate if the monitor's verdict is
    healthy (or stagnant) and nothing was raised since the last check; a
    candidate becomes the rollback target once a whole interval without
    events follows it. After @p max_rescues rescues, the next needed raises
    :class:`GuardStopped`, as does a "stop" action.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 monitor: Union[None, str, Monitor] = None, policy: Optional[Dict[str, Any]] = None,
                 interval: int = 50, factor: float = 0.5, max_rescues: int = 10,
                 scheduler: Optional[LRScheduler] = None,
                 on_event: Optional[Callable[[GuardDecision], None]] = None) -> None:
        if interval < 1:
            raise InvalidArgumentError('interval=%d: must be >= 1' % interval)
        if not 0 < factor <= 1:
            raise InvalidArgumentError('factor=%g: must be in (0, 1]' % factor)
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.monitor = monitor if isinstance(monitor, Monitor) else Monitor(monitor or '')
        self.policy = dict(DEFAULT_POLICY)
        for k, v in (policy or {}).items():
            if k not in KINDS:
                raise InvalidArgumentError('policy: unknown event kind %r (kinds: %s)' % (k, ', '.join(KINDS)))
            a = v[0] if isinstance(v, tuple) else v
            if a not in _STRENGTH:
                raise InvalidArgumentError('policy: %s: unknown action %r' % (k, a))
            self.policy[k] = v
        self.interval, self.factor, self.max_rescues = interval, factor, max_rescues
        self.on_event = on_event
        self.steps = 0
        self.rescues = 0
        self.rollbacks = 0
        self.skipped = 0
        self.scale = 1.0
        self.history: List[GuardDecision] = []
        self._good = self._snapshot()
        self._candidate: Optional[Dict[str, Any]] = None
        self._quiet = True

    def _snapshot(self) -> Dict[str, Any]:
        return {'model': _copy_state(self.model.state_dict()), 'optim': _copy_state(self.optimizer.state_dict()),
                'monitor': self.monitor.state, 'step': self.steps}

    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]['lr'])

    def _cut(self, f: float) -> None:
        self.scale *= f
        for g in self.optimizer.param_groups:
            g['lr'] = g['lr'] * f
        if self.scheduler is not None:
            self.scheduler.lr_scale *= f
            self.scheduler._last_lr = [g['lr'] for g in self.optimizer.param_groups]

    def _restore(self) -> int:
        lrs = [g['lr'] for g in self.optimizer.param_groups]
        snap = self._good
        self.model.load_state_dict(snap['model'])
        self.optimizer.load_state_dict(_copy_state(snap['optim']))
        for g, lr in zip(self.optimizer.param_groups, lrs):
            g['lr'] = lr
        self.monitor.state = snap['monitor']
        self._candidate = None
        return int(snap['step'])

    def step(self, loss: Any, grad_norm: Optional[Any] = None) -> GuardDecision:
        """Judges this step's loss (and gradient norm); returns whether to apply it."""
        value = float(loss.detach().item() if hasattr(loss, 'detach') else loss)
        gn = None if grad_norm is None else float(grad_norm.item() if hasattr(grad_norm, 'item') else grad_norm)
        lr = self._lr()
        obs = self.monitor.observe(value, gn, lr)
        self.steps += 1
        action, scale = 'continue', 1.0
        for ev in obs.events:
            a = self.policy.get(ev.kind, 'continue')
            name, f = (a[0], float(a[1])) if isinstance(a, tuple) else (a, self.factor)
            if _STRENGTH[name] > _STRENGTH[action]:
                action, scale = name, f
        if obs.events:
            self._quiet = False
        d = GuardDecision(action in ('continue', 'scale_lr'), action, list(obs.events), self.steps - 1, lr)
        if action == 'stop':
            raise GuardStopped('step %d: %s: the guard stops the run' % (d.step, obs.events[0].kind), obs.events)
        if action in ('scale_lr', 'rollback'):
            if self.rescues >= self.max_rescues:
                raise GuardStopped('step %d: %s: a rescue is needed after %d of them: the guard gives up '
                                   '(lower the learning rate)' % (d.step, obs.events[0].kind, self.rescues),
                                   obs.events)
            self.rescues += 1
            if action == 'rollback':
                to = self._restore()
                self.rollbacks += 1
                self._cut(scale)
                d.message = 'step %d: %s: rolled back to step %d, lr x%g (now %g)' % (
                    d.step, obs.events[0].kind, to, scale, self._lr())
            else:
                self._cut(scale)
                d.message = 'step %d: %s: lr x%g (now %g)' % (d.step, obs.events[0].kind, scale, self._lr())
        elif action == 'skip':
            self.skipped += 1
            d.message = 'step %d: %s: update skipped' % (d.step, obs.events[0].kind)
        if self.steps % self.interval == 0 and action == 'continue':
            self._check()
        if obs.events or action != 'continue':
            self.history.append(d)
            if self.on_event is not None:
                self.on_event(d)
        return d

    def _check(self) -> None:
        healthy = self.monitor.verdict in ('healthy', 'stagnant')
        if self._quiet and self._candidate is not None:
            self._good = self._candidate
        self._candidate = self._snapshot() if (healthy and self._quiet) else None
        self._quiet = True

    def state_dict(self) -> Dict[str, Any]:
        """Counters, scale and the rollback target (for a checkpoint of the loop)."""
        return {'steps': self.steps, 'rescues': self.rescues, 'rollbacks': self.rollbacks,
                'skipped': self.skipped, 'scale': self.scale, 'good': self._good,
                'monitor': self.monitor.state.tolist()}

    def load_state_dict(self, sd: Dict[str, Any]) -> None:
        self.steps, self.rescues, self.rollbacks = int(sd['steps']), int(sd['rescues']), int(sd['rollbacks'])
        self.skipped, self.scale, self._good = int(sd['skipped']), float(sd['scale']), sd['good']
        self.monitor.state = sd['monitor']
        self._candidate, self._quiet = None, True


_ = ALARMS


@dataclass
class LRFindResult:
    """A range test on a torch model: the curve, the end reason, and libsgdlab's analysis
    (:class:`~sgdlab.LRFinder`: suggestions and the reasons when there is none)."""
    lrs: Any
    losses: Any
    end_reason: str
    #: None when the library lacks sgd_lrfind_analyze() (then ``why`` says so).
    analysis: Optional[LRFinder]
    why: str = ''

    def _analysis(self) -> LRFinder:
        if self.analysis is None:
            raise UnsupportedError(self.why)
        return self.analysis

    def suggestion(self, method: Optional[str] = None) -> float:
        """libsgdlab's suggestion (steepest by default); NotFoundError with the reason
        when the curve allows none; UnsupportedError without the C analysis."""
        return self._analysis().suggestion(method)

    @property
    def suggestions(self) -> Dict[str, Optional[float]]:
        return self._analysis().suggestions


def _batches(data: Iterable[Any]) -> Iterator[Any]:
    while True:
        it = iter(data)
        first = True
        for b in it:
            first = False
            yield b
        if first:
            raise InvalidArgumentError('lr_find: the data yielded no batch')


def lr_find(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            loss_fn: Callable[[Any, Any], torch.Tensor], data: Iterable[Any], lr_min: float = 1e-7,
            lr_max: float = 10.0, steps: int = 100, beta: float = 0.98, stop_factor: float = 4.0,
            ramp: str = 'exponential', step_fn: Optional[Callable[[torch.nn.Module, Any], torch.Tensor]] = None
            ) -> LRFindResult:
    """The LR range test on any torch module, as sgd_lrfind_run() does on a
    libsgdlab model: @p steps optimizer steps while the rate grows from
    @p lr_min to @p lr_max (exponentially or linearly), stopping when the
    debiased moving average of the loss (@p beta) exceeds @p stop_factor times
    its best or the loss is not finite; then the curve is analysed by
    libsgdlab (analyze_lr_curve()). @p data yields ``(inputs, targets)``
    batches (cycled if it ends); @p step_fn(model, batch) may compute the loss
    instead. Afterwards the model's state_dict, the optimizer's state_dict,
    the gradients, the training mode and torch's random generator are put back
    as they were, whatever happened.
    """
    if not (0 < lr_min < lr_max) or steps < 8:
        raise InvalidArgumentError('lr_find: need 0 < lr_min < lr_max and steps >= 8')
    saved_model = _copy_state(model.state_dict())
    saved_optim = _copy_state(optimizer.state_dict())
    saved_grads = [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]
    saved_training = model.training
    saved_rng = torch.get_rng_state()
    lrs: List[float] = []
    losses: List[float] = []
    end = 'completed'
    try:
        model.train()
        avg, best = 0.0, math.inf
        batches = _batches(data)
        for i in range(steps):
            frac = i / (steps - 1)
            lr = lr_min * (lr_max / lr_min) ** frac if ramp == 'exponential' else lr_min + (lr_max - lr_min) * frac
            for g in optimizer.param_groups:
                g['lr'] = lr
            batch = next(batches)
            optimizer.zero_grad()
            if step_fn is not None:
                loss = step_fn(model, batch)
            else:
                x, y = batch
                loss = loss_fn(model(x), y)
            value = float(loss.detach().item())
            lrs.append(lr)
            losses.append(value)
            if not math.isfinite(value):
                end = 'nonfinite'
                break
            loss.backward()
            optimizer.step()
            avg = beta * avg + (1 - beta) * value
            smooth = avg / (1 - beta ** (i + 1))
            best = min(best, smooth)
            if stop_factor and smooth > stop_factor * best:
                end = 'diverged'
                break
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optim)
        for p, saved in zip(model.parameters(), saved_grads):
            p.grad = saved
        model.train(saved_training)
        torch.set_rng_state(saved_rng)
    try:
        analysis: Optional[LRFinder] = analyze_lr_curve(lrs, losses, lr_min=lr_min, lr_max=lr_max, beta=beta,
                                                        stop_factor=stop_factor)
        why = ''
    except UnsupportedError as e:
        analysis, why = None, e.message
    return LRFindResult(np.array(lrs), np.array(losses), end, analysis, why)
