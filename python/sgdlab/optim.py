"""Optimizers over flat float32 arrays (sgdlab/optim.h): built-ins from a spec,
optimizers written in Python, parameter groups, gradient hygiene, state."""
from __future__ import annotations

import ctypes as C
import weakref
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _structs as st
from ._base import F32, Object, Owner, addr, free_fn, names, query, view
from ._lib import check, cstr, guarded, lib, put_doubles, pystr
from .errors import InvalidArgumentError, RangeError, ShapeError

NONFINITE = {'skip': 0, 'error': 1, 'apply': 2}
FUSED_CLIP = 1
STATE_DTYPES = {1: np.float32, 2: np.float64, 3: np.int64}


HPARAM_FLAGS = {'bool': 1, 'integer': 2, 'fixed': 4, 'lower_open': 8, 'upper_open': 16, 'momentum': 32,
                'required': 64}


@dataclass(frozen=True)
class Hparam:
    """A hyperparameter of an optimizer (sgd_optim_hparam): its name, default
    (NaN when a spec must give it) and bounds, and its flags by name (bool,
    integer, fixed, lower_open, upper_open, momentum, required). A
    :class:`HostOptimizer` lists its own in ``hparams``."""
    name: str
    default: float = float('nan')
    lower: float = float('-inf')
    upper: float = float('inf')
    flags: Tuple[str, ...] = ()

    @classmethod
    def from_c(cls, h: st.OptimHparam) -> 'Hparam':
        return cls(pystr(h.name), h.default_value, h.lower, h.upper,
                   tuple(k for k, b in HPARAM_FLAGS.items() if h.flags & b))

    def flag_bits(self) -> int:
        bits = 0
        for f in self.flags:
            if f not in HPARAM_FLAGS:
                raise InvalidArgumentError('hparam %s: unknown flag %r (flags: %s)' % (self.name, f,
                                                                                    ', '.join(HPARAM_FLAGS)))
            bits |= HPARAM_FLAGS[f]
        return bits


def _hparam_c() -> st.OptimHparam:
    h = st.OptimHparam()
    lib.sgd_optim_hparam_init(C.byref(h))
    return h


def kind_hparams(kind: str) -> List[Hparam]:
    """The hyperparameters of a built-in kind ("adam"), "lr" and "weight_decay" first
    (sgd_optim_kind_hparam()); raises InvalidArgumentError for an unknown kind."""
    n = int(lib.sgd_optim_kind_hparam_count(cstr(kind)))
    out = []
    for i in range(max(n, 1)):
        h = _hparam_c()
        check(lib.sgd_optim_kind_hparam(cstr(kind), i, C.byref(h)))
        out.append(Hparam.from_c(h))
    return out


def simd_level() -> str:
    """The SIMD level the built-in optimizers' kernels run at on this CPU (sgd_optim_simd_level())."""
    return pystr(lib.sgd_optim_simd_level())


def builtin_names() -> List[str]:
    """The built-in optimizers (sgd_optim_builtin_name())."""
    return names(lib.sgd_optim_builtin_name)


@dataclass(frozen=True)
class Group:
    """A parameter group: a range of the arena with its lr multiplier and weight decay."""
    index: int
    offset: int
    count: int
    lr_scale: float
    weight_decay: float


@dataclass(frozen=True)
class StepInfo:
    """What one step did (sgd_optim_step_info)."""
    applied: bool
    nonfinite: bool
    clipped: bool
    grad_norm: float
    grad_max_abs: float
    clip_scale: float
    step: int
    consecutive_skips: int


@dataclass(frozen=True)
class StepArgs:
    """What the library tells a Python optimizer's step (sgd_optim_step_args)."""
    group: int
    call: int
    calls: int
    step: int
    offset: int
    weight_decay: float
    grad_scale: float
    clip_value: float


class HostOptimizer:
    """Base class for an optimizer written in Python (an sgd_optim_vtable behind
    :meth:`Optimizer.custom`). Override :meth:`step`; set the class attributes.

    Arrays handed to the methods are zero-copy views of the library's memory,
    valid only during the call. Any exception raised reaches the caller of the
    library function that called it (Optimizer.step(), Trainer.fit()...), and
    the optimizer stays usable.
    """

    name = 'python'
    #: State slots (flat float32 arrays of n, zero-filled by the library), with their names.
    slot_names: Sequence[str] = ()
    #: Doubles of scalar state exported by export_scalars().
    n_scalars = 0
    #: Set to True if step() applies args.grad_scale / args.clip_value itself.
    fused_clip = False
    #: Hyperparameters besides "lr" and "weight_decay" (set_hparam/get_hparam serve
    #: them): described to the library (sgd_optim_new_custom_ext()), so that specs,
    #: bounds and searches know them; one flagged "momentum" is what schedules cycle.
    hparams: Sequence[Hparam] = ()

    def init(self, slots: List[F32]) -> None:
        """Sets the initial state (at creation and reset); the slots are zero."""

    def step(self, params: F32, grads: F32, slots: List[F32], lr: float, args: StepArgs) -> None:
        """Updates @p params in place from @p grads at learning rate @p lr."""
        raise NotImplementedError

    def export_scalars(self) -> Sequence[float]:
        return []

    def import_scalars(self, values: Sequence[float]) -> None:
        pass

    def set_hparam(self, name: str, value: float) -> None:
        """Raise KeyError for an unknown name, ValueError for a value refused."""
        raise KeyError(name)

    def get_hparam(self, name: str) -> float:
        raise KeyError(name)


def _hparam_status(e: BaseException) -> Optional[int]:
    if isinstance(e, KeyError):
        return -11  # SGD_ENOTFOUND
    if isinstance(e, ValueError):
        return -4  # SGD_ERANGE
    return None


class Optimizer(Object):
    """An optimizer over a flat float32 arena of *n* parameters (sgd_optim).

    ``Optimizer("adam:lr=1e-3,beta2=0.99", n)`` makes a built-in from a spec
    with torch.optim's argument names (docs/optim.md lists every key);
    :meth:`custom` wraps a :class:`HostOptimizer`. :meth:`step` updates a
    numpy array (or a :class:`~sgdlab.Model`'s parameters) in place.
    """

    _what = 'optimizer'

    def __init__(self, spec: str, n: int) -> None:
        h = C.c_void_p()
        check(lib.sgd_optim_new(C.byref(h), cstr(spec), n, None))
        super().__init__(h.value or 0, free_fn('sgd_optim_free'))

    @classmethod
    def custom(cls, host: HostOptimizer, n: int, lr: float = 0.0, weight_decay: float = 0.0) -> 'Optimizer':
        """An optimizer whose update is @p host's Python code (sgd_optim_new_custom())."""
        n_slots = len(host.slot_names)
        vt = st.OptimVtable()
        lib.sgd_optim_vtable_init(C.byref(vt))
        name = cstr(host.name)
        slot_names = (C.c_char_p * max(n_slots, 1))(*[cstr(s) for s in host.slot_names])
        vt.name, vt.n_slots, vt.n_scalars = name, n_slots, int(host.n_scalars)
        vt.flags = FUSED_CLIP if host.fused_clip else 0
        vt.slot_names = C.cast(slot_names, C.POINTER(C.c_char_p)) if n_slots else None
        self = cls.__new__(cls)
        # The callbacks reach the owner through a weak reference: no cycle, so
        # close() and the last reference free the optimizer at once; and they
        # keep working under a trainer after this wrapper was closed.
        owner_ref: List[Any] = []

        def owner() -> Owner:
            return owner_ref[0]()  # type: ignore[no-any-return]

        def slots_of(p: Any, count: int) -> List[F32]:
            own = owner()
            return [view(own, C.cast(p[i], C.c_void_p).value or 0, (count,)) for i in range(n_slots)]

        def c_init(slots: Any, count: int, user: Any) -> int:
            host.init(slots_of(slots, count))
            return 0

        def c_step(params: Any, grads: Any, slots: Any, count: int, lr_: float, args: Any, user: Any) -> int:
            own = owner()
            a = args.contents
            host.step(view(own, C.cast(params, C.c_void_p).value or 0, (count,)),
                      view(own, C.cast(grads, C.c_void_p).value or 0, (count,), readonly=True),
                      slots_of(slots, count), lr_,
                      StepArgs(a.group, a.call, a.calls, a.step, a.offset, a.weight_decay, a.grad_scale,
                               a.clip_value))
            return 0

        def c_export(out: Any, count: int, user: Any) -> int:
            return put_doubles(host.export_scalars(), out, count, '%s.export_scalars()' % type(host).__name__)

        def c_import(inp: Any, count: int, user: Any) -> int:
            host.import_scalars([inp[i] for i in range(count)])
            return 0

        def hparam(fn: Any) -> Any:
            def call(*args: Any) -> int:
                try:
                    return int(fn(*args))
                except (KeyError, ValueError) as e:
                    return _hparam_status(e) or -13
            return call

        def c_set(name_: bytes, value: float, user: Any) -> int:
            host.set_hparam(name_.decode(), value)
            return 0

        def c_get(name_: bytes, value: Any, user: Any) -> int:
            value[0] = float(host.get_hparam(name_.decode()))
            return 0

        cbs = [st.OPTIM_INIT_FN(guarded(c_init)), st.OPTIM_STEP_FN(guarded(c_step)),
               st.OPTIM_EXPORT_FN(guarded(c_export)), st.OPTIM_IMPORT_FN(guarded(c_import)),
               st.OPTIM_SET_FN(guarded(hparam(c_set))), st.OPTIM_GET_FN(guarded(hparam(c_get)))]
        vt.init, vt.step = cbs[0], cbs[1]
        if host.n_scalars:
            vt.export_scalars, vt.import_scalars = cbs[2], cbs[3]
        vt.set_hparam, vt.get_hparam = cbs[4], cbs[5]
        hps = list(host.hparams)
        hp_names = [cstr(hp.name) for hp in hps]
        hp_bits = [hp.flag_bits() for hp in hps]

        def c_describe(index: int, info: Any, user: Any) -> int:
            hp, o = hps[index], info.contents
            o.name, o.flags = hp_names[index], hp_bits[index]
            o.default_value, o.lower, o.upper = hp.default, hp.lower, hp.upper
            return 0

        ext = st.OptimVtableExt()
        lib.sgd_optim_vtable_ext_init(C.byref(ext))
        describe = st.OPTIM_DESCRIBE_FN(guarded(c_describe))
        if hps:
            ext.n_hparams, ext.describe_hparam = len(hps), describe
        Object.__init__(self, 0, free_fn('sgd_optim_free'), [host, cbs, name, slot_names, describe, hp_names])
        owner_ref.append(weakref.ref(self._own_unchecked()))
        h = C.c_void_p()
        try:
            self._owner.ptr = -1  # type: ignore[union-attr]  # usable by init's views while it is created
            if hps:
                check(lib.sgd_optim_new_custom_ext(C.byref(h), C.byref(vt), C.byref(ext), None, n, None))
            else:
                check(lib.sgd_optim_new_custom(C.byref(h), C.byref(vt), None, n, None))
        finally:
            self._owner.ptr = h.value or 0  # type: ignore[union-attr]
        if lr:
            self.lr = lr
        if weight_decay:
            self.weight_decay = weight_decay
        return self

    # -- hyperparameters, evaluation point, tensors (0.2)
    def hparams(self) -> List[Hparam]:
        """Every hyperparameter this optimizer lists, "lr" and "weight_decay" first
        (sgd_optim_hparam_describe())."""
        out = []
        for i in range(int(lib.sgd_optim_hparam_count(self._h))):
            h = _hparam_c()
            check(lib.sgd_optim_hparam_describe(self._h, i, C.byref(h)))
            out.append(Hparam.from_c(h))
        return out

    def hparam_bounds(self, name: str) -> Hparam:
        """The description of hyperparameter @p name (raises NotFoundError naming it)."""
        h = _hparam_c()
        check(lib.sgd_optim_hparam_bounds(self._h, cstr(name), C.byref(h)))
        return Hparam.from_c(h)

    @property
    def momentum_name(self) -> Optional[str]:
        """The name of the momentum coefficient (sgd's "momentum", Adam's "beta1"), or None."""
        v = lib.sgd_optim_momentum_name(self._h)
        return v.decode() if v else None

    @property
    def has_eval_point(self) -> bool:
        """Whether the optimizer evaluates elsewhere than it trains (schedule-free methods)."""
        return bool(lib.sgd_optim_has_eval_point(self._h))

    @property
    def at_eval_point(self) -> bool:
        """Whether the parameters are at the evaluation point now."""
        return bool(lib.sgd_optim_at_eval_point(self._h))

    def eval_point(self, params: Any, to_eval: bool = True) -> None:
        """Moves @p params (a float32 array or a Model) to the evaluation point, or
        back to the training point with @p to_eval False (sgd_optim_eval_point())."""
        arr = params.params if hasattr(params, 'params') else params
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or not arr.flags.c_contiguous \
                or not arr.flags.writeable:
            raise InvalidArgumentError('eval_point: params must be a writable C-contiguous float32 array')
        if arr.size != self.size:
            raise ShapeError('eval_point: %d parameters, the optimizer has %d' % (arr.size, self.size))
        check(lib.sgd_optim_eval_point(self._h, addr(arr), int(bool(to_eval))))

    def set_tensors(self, sizes: Any) -> None:
        """Where the arena's tensors begin and end, for methods that work per tensor
        (sgd_optim_set_tensors()): their sizes in arena order, or a Model (its
        parameter tensors, weights then biases)."""
        if hasattr(sizes, 'param_info'):
            sizes = [p.numel for p in sorted(sizes.param_info(), key=lambda p: p.offset)]
        vals = [int(x) for x in sizes]
        arr = (C.c_size_t * max(len(vals), 1))(*vals)
        check(lib.sgd_optim_set_tensors(self._h, arr, len(vals)))

    # -- facts
    @property
    def name(self) -> str:
        return pystr(lib.sgd_optim_name(self._h))

    @property
    def size(self) -> int:
        """The number of parameters it updates."""
        return int(lib.sgd_optim_size(self._h))

    def __len__(self) -> int:
        return self.size

    # -- step
    def step(self, params: Any, grads: Optional[Any] = None, lr: Optional[float] = None) -> StepInfo:
        """One update of @p params (a float32 C-contiguous writable array, updated in
        place, or a Model: its arenas) from @p grads at @p lr (default: the
        optimizer's "lr")."""
        from .model import Model
        if isinstance(params, Model):
            p = params.params
            g = params.grads if grads is None else grads
        else:
            p, g = params, grads
        if not (isinstance(p, np.ndarray) and p.dtype == np.float32 and p.flags.c_contiguous and p.flags.writeable):
            raise TypeError('params must be a writable C-contiguous float32 numpy array (it is updated in place)')
        if g is None:
            raise InvalidArgumentError('step: grads are missing')
        ga = np.ascontiguousarray(g, dtype=np.float32)
        if p.size != self.size or ga.size != self.size:
            raise ShapeError('step: params has %d values, grads %d, the optimizer %d' % (p.size, ga.size, self.size))
        info = st.OptimStepInfo()
        lib.sgd_optim_step_info_init(C.byref(info))
        check(lib.sgd_optim_step(self._h, addr(p), addr(ga), self.lr if lr is None else float(lr), C.byref(info)))
        return StepInfo(bool(info.applied), bool(info.nonfinite), bool(info.clipped), info.grad_norm,
                        info.grad_max_abs, info.clip_scale, int(info.step), int(info.consecutive_skips))

    # -- hyperparameters
    def set(self, name: str, value: float) -> None:
        """Sets a hyperparameter ("lr", "weight_decay", "momentum", "beta1"...)."""
        check(lib.sgd_optim_set(self._h, cstr(name), float(value)))

    def get(self, name: str) -> float:
        v = C.c_double()
        check(lib.sgd_optim_get(self._h, cstr(name), C.byref(v)))
        return float(v.value)

    __getitem__ = get
    __setitem__ = set

    @property
    def lr(self) -> float:
        """The base learning rate (what a schedule starts from)."""
        return self.get('lr')

    @lr.setter
    def lr(self, value: float) -> None:
        self.set('lr', value)

    @property
    def weight_decay(self) -> float:
        return self.get('weight_decay')

    @weight_decay.setter
    def weight_decay(self, value: float) -> None:
        self.set('weight_decay', value)

    @property
    def step_count(self) -> int:
        """Updates applied since creation or reset (settable, for resuming)."""
        v = C.c_int64()
        check(lib.sgd_optim_get_step(self._h, C.byref(v)))
        return int(v.value)

    @step_count.setter
    def step_count(self, step: int) -> None:
        check(lib.sgd_optim_set_step(self._h, step))

    # -- groups
    def add_group(self, offset: int, count: int, lr_scale: float = 1.0, weight_decay: float = 0.0) -> int:
        """Makes [offset, offset + count) a group; returns its number (1, 2...)."""
        idx = C.c_size_t()
        check(lib.sgd_optim_add_group(self._h, offset, count, lr_scale, weight_decay, C.byref(idx)))
        return int(idx.value)

    @property
    def groups(self) -> List[Group]:
        h = self._h
        out = []
        for i in range(int(lib.sgd_optim_group_count(h))):
            off, cnt, sc, wd = C.c_size_t(), C.c_size_t(), C.c_double(), C.c_double()
            check(lib.sgd_optim_get_group(h, i, C.byref(off), C.byref(cnt), C.byref(sc), C.byref(wd)))
            out.append(Group(i, int(off.value), int(cnt.value), sc.value, wd.value))
        return out

    def set_group(self, index: int, lr_scale: float, weight_decay: float) -> None:
        check(lib.sgd_optim_set_group(self._h, index, lr_scale, weight_decay))

    # -- hygiene
    def hygiene(self) -> Dict[str, Any]:
        """Clipping and the non-finite policy: nonfinite ('skip', 'error', 'apply'),
        clip_norm, clip_value, max_consecutive_skips."""
        hy = st.OptimHygiene()
        lib.sgd_optim_hygiene_init(C.byref(hy))
        check(lib.sgd_optim_get_hygiene(self._h, C.byref(hy)))
        d = hy.as_dict()
        d['nonfinite'] = {v: k for k, v in NONFINITE.items()}.get(d['nonfinite'], d['nonfinite'])
        return d

    def set_hygiene(self, **kw: Any) -> None:
        """Changes the fields given (see :meth:`hygiene`), keeping the others."""
        hy = st.OptimHygiene()
        lib.sgd_optim_hygiene_init(C.byref(hy))
        check(lib.sgd_optim_get_hygiene(self._h, C.byref(hy)))
        if isinstance(kw.get('nonfinite'), str):
            if kw['nonfinite'] not in NONFINITE:
                raise InvalidArgumentError('nonfinite=%r: must be skip, error or apply' % kw['nonfinite'])
            kw['nonfinite'] = NONFINITE[kw['nonfinite']]
        hy.set(**kw)
        check(lib.sgd_optim_set_hygiene(self._h, C.byref(hy)))

    def stats(self) -> Dict[str, int]:
        """Counters since creation: applied, skipped, consecutive_skips, nonfinite, clipped."""
        return query(st.OptimStats, lib.sgd_optim_get_stats, self._h)

    # -- state
    def reset(self) -> None:
        """Back to the state of a new optimizer (hyperparameters, groups kept)."""
        check(lib.sgd_optim_reset(self._h))

    def _describe(self) -> List[Tuple[int, str, int, int]]:
        h = self._h
        out = []
        for i in range(int(lib.sgd_optim_state_count(h))):
            name, typ, length = C.c_char_p(), C.c_int32(), C.c_size_t()
            check(lib.sgd_optim_state_describe(h, i, C.byref(name), C.byref(typ), C.byref(length)))
            out.append((i, pystr(name.value), int(typ.value), int(length.value)))
        return out

    def state_dict(self) -> Dict[str, Any]:
        """Copies of every state array by name: "step" (int64[1]), the slots
        (float32[n], e.g. "exp_avg"), "scalars" (float64)."""
        out: Dict[str, Any] = {}
        for i, name, typ, length in self._describe():
            a = np.empty(length, dtype=STATE_DTYPES[typ])
            check(lib.sgd_optim_state_export(self._h, i, addr(a), a.nbytes))
            out[name] = a
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Imports arrays exported by :meth:`state_dict` (of an optimizer of the same spec and size)."""
        for i, name, typ, length in self._describe():
            if name not in state:
                continue
            a = np.ascontiguousarray(state[name], dtype=STATE_DTYPES[typ])
            check(lib.sgd_optim_state_import(self._h, i, addr(a), a.nbytes))

    def state_view(self, name: str) -> F32:
        """A read-only zero-copy view of a state slot (changed by every step)."""
        idx = C.c_size_t()
        check(lib.sgd_optim_state_find(self._h, cstr(name), C.byref(idx)))
        p = C.c_void_p()
        check(lib.sgd_optim_state_data(self._h, idx.value, C.byref(p)))
        return view(self._own(), p.value or 0, (self.size,), readonly=True)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return '<sgdlab.Optimizer closed>' if self.closed else '<sgdlab.Optimizer %s, %d params>' % (self.name,
                                                                                                  self.size)


OptimizerLike = Union[Optimizer, str]
_ = RangeError
