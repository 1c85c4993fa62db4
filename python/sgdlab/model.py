"""Sequential models with parameters and gradients in flat arenas (sgdlab/model.h)."""
from __future__ import annotations

import ctypes as C
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np

from . import _structs as st
from ._base import F32, Object, addr, f32, free_fn, i32, view
from ._lib import check, cstr, lib, pystr
from .data import Dataset
from .errors import InvalidArgumentError, NotFoundError, ShapeError

LAYER_KINDS = {1: 'dense', 2: 'relu', 3: 'leaky_relu', 4: 'tanh', 5: 'sigmoid', 6: 'gelu', 7: 'gelu_tanh',
               8: 'softmax', 9: 'dropout'}
LOSSES = {'cross_entropy': 1, 'mse': 2, 'bce_with_logits': 3}
INITS = {'torch': 1, 'xavier_uniform': 2, 'xavier_normal': 3, 'he_uniform': 4, 'he_normal': 5}
ACTIVATIONS = {'relu': 2, 'tanh': 4, 'sigmoid': 5, 'gelu': 6, 'gelu_tanh': 7, 'softmax': 8}
PARAM_KINDS = {1: 'weight', 2: 'bias'}


def _options(seed: Optional[int], max_batch: Optional[int], loss: Optional[str], init: Optional[str],
             blas_threads: Optional[int]) -> st.ModelOptions:
    o = st.ModelOptions()
    lib.sgd_model_options_init(C.byref(o))
    if seed is not None:
        o.seed = seed
    if max_batch is not None:
        o.max_batch = max_batch
    if loss is not None:
        if loss not in LOSSES:
            raise InvalidArgumentError('loss=%r: must be one of %s' % (loss, ', '.join(LOSSES)))
        o.loss = LOSSES[loss]
    if init is not None:
        if init not in INITS:
            raise InvalidArgumentError('init=%r: must be one of %s' % (init, ', '.join(INITS)))
        o.init = INITS[init]
    if blas_threads is not None:
        o.blas_threads = blas_threads
    return o


@dataclass(frozen=True)
class ParamInfo:
    """A parameter tensor: torch's state_dict name, its layer, shape and place in the arenas."""
    name: str
    kind: str
    layer: int
    shape: Tuple[int, ...]
    offset: int
    numel: int


class Model(Object):
    """A sequential network with its loss (sgd_model), built from a spec such as
    ``"784-256-relu-128-relu-10"`` (grammar at sgd_model_from_spec(); options in
    the spec override the keyword arguments), or layer by layer with
    :meth:`builder`.

    :attr:`params` and :attr:`grads` are zero-copy float32 views of the arenas;
    :meth:`state_dict` gives per-tensor views under torch's names. The views
    stay valid as long as they live, even after :meth:`close` (which then
    frees the model when the last view goes). A model is used by one thread at
    a time; distinct models may be used from different threads at once.
    """

    _what = 'model'

    def __init__(self, spec: str, *, seed: Optional[int] = None, max_batch: Optional[int] = None,
                 loss: Optional[str] = None, init: Optional[str] = None, blas_threads: Optional[int] = None) -> None:
        o = _options(seed, max_batch, loss, init, blas_threads)
        h = C.c_void_p()
        check(lib.sgd_model_from_spec(C.byref(h), cstr(spec), C.byref(o), None))
        super().__init__(h.value or 0, free_fn('sgd_model_free'))
        self._x: Optional[F32] = None

    @classmethod
    def builder(cls, n_inputs: int) -> 'ModelBuilder':
        """Starts a model layer by layer (sgd_model_new() and sgd_model_add_*)."""
        return ModelBuilder(n_inputs)

    @classmethod
    def _wrap(cls, ptr: int) -> 'Model':
        self = cls.__new__(cls)
        Object.__init__(self, ptr, free_fn('sgd_model_free'))
        self._x = None
        return self

    # -- queries
    @property
    def spec(self) -> str:
        """The canonical spec, e.g. ``"784-256-relu-10:loss=cross_entropy"``."""
        return pystr(lib.sgd_model_spec(self._h))

    @property
    def num_inputs(self) -> int:
        return int(lib.sgd_model_num_inputs(self._h))

    @property
    def num_outputs(self) -> int:
        return int(lib.sgd_model_num_outputs(self._h))

    @property
    def layers(self) -> List[str]:
        """The kind of each layer, as nn.Sequential counts them."""
        h = self._h
        return [LAYER_KINDS.get(int(lib.sgd_model_layer_kind(h, i)), 'unknown')
                for i in range(int(lib.sgd_model_num_layers(h)))]

    @property
    def loss(self) -> str:
        """The loss: cross_entropy, mse or bce_with_logits (settable)."""
        k = int(lib.sgd_model_loss_kind(self._h))
        return {v: n for n, v in LOSSES.items()}.get(k, 'unknown')

    @loss.setter
    def loss(self, name: str) -> None:
        if name not in LOSSES:
            raise InvalidArgumentError('loss=%r: must be one of %s' % (name, ', '.join(LOSSES)))
        check(lib.sgd_model_set_loss_kind(self._h, LOSSES[name]))

    @property
    def num_params(self) -> int:
        """Floats in the parameter arena (torch's sum(p.numel()))."""
        return int(lib.sgd_model_num_params(self._h))

    def param_info(self) -> List[ParamInfo]:
        """Every parameter tensor in arena order (all weights, then all biases)."""
        h = self._h
        out = []
        for i in range(int(lib.sgd_model_num_param_tensors(h))):
            pi = st.ParamInfo()
            pi.struct_size = C.sizeof(pi)
            check(lib.sgd_model_param_info(h, i, C.byref(pi)))
            out.append(ParamInfo(pystr(pi.name), PARAM_KINDS.get(pi.kind, 'unknown'), int(pi.layer),
                                 tuple(int(d) for d in pi.shape[:pi.rank]), int(pi.offset), int(pi.numel)))
        return out

    def find_param(self, name: str) -> int:
        """The index of the tensor named @p name (raises NotFoundError)."""
        idx = C.c_size_t()
        check(lib.sgd_model_find_param(self._h, cstr(name), C.byref(idx)))
        return int(idx.value)

    # -- arenas
    @property
    def params(self) -> F32:
        """The parameter arena: a writable zero-copy float32 view."""
        return view(self._own(), lib.sgd_model_params(self._h) or 0, (self.num_params,))  # type: ignore[no-any-return]

    @property
    def grads(self) -> F32:
        """The gradient arena, laid out as the parameters: a writable zero-copy view."""
        return view(self._own(), lib.sgd_model_grads(self._h) or 0, (self.num_params,))  # type: ignore[no-any-return]

    def state_dict(self) -> Dict[str, F32]:
        """Parameter tensors by torch's names ("0.weight" [out, in], "0.bias" [out]),
        as zero-copy views of the arena (copy them to keep a snapshot)."""
        p = self.params
        return {i.name: p[i.offset:i.offset + i.numel].reshape(i.shape) for i in self.param_info()}

    def named_parameters(self) -> Iterator[Tuple[str, F32]]:
        return iter(self.state_dict().items())

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copies tensors (numpy arrays, torch tensors...) into the parameters by name.
        With @p strict, every parameter must be given and no other name; shapes must
        match. All values are checked (finite) before anything is written."""
        infos = {i.name: i for i in self.param_info()}
        if strict:
            missing = sorted(set(infos) - set(state))
            extra = sorted(set(state) - set(infos))
            if missing or extra:
                raise NotFoundError('load_state_dict: missing %s, unexpected %s' % (missing, extra))
        new = self.get_params()
        for name, value in state.items():
            if name not in infos:
                continue
            info = infos[name]
            a = np.asarray(value.detach().cpu().numpy() if hasattr(value, 'detach') else value, dtype=np.float32)
            if a.shape != info.shape:
                raise ShapeError('load_state_dict: %s: shape %s, the model has %s' % (name, a.shape, info.shape))
            new[info.offset:info.offset + info.numel] = a.reshape(-1)
        self.set_params(new)

    def get_params(self) -> F32:
        """A copy of the parameters."""
        out = np.empty(self.num_params, dtype=np.float32)
        check(lib.sgd_model_get_params(self._h, addr(out), out.size))
        return out

    def set_params(self, values: Any) -> None:
        """Overwrites the parameters (all finite, or nothing changes)."""
        a = f32(values).reshape(-1)
        check(lib.sgd_model_set_params(self._h, addr(a), a.size))

    def zero_grad(self) -> None:
        check(lib.sgd_model_zero_grad(self._h))

    def reset(self, seed: int) -> None:
        """Re-initialises as a build with @p seed would."""
        check(lib.sgd_model_reset(self._h, seed))

    @property
    def rng_state(self) -> Tuple[int, int, int, int]:
        """The dropout generator's four words (settable, not all zero)."""
        s = (C.c_uint64 * 4)()
        check(lib.sgd_model_get_rng_state(self._h, s))
        return (int(s[0]), int(s[1]), int(s[2]), int(s[3]))

    @rng_state.setter
    def rng_state(self, words: Tuple[int, int, int, int]) -> None:
        s = (C.c_uint64 * 4)(*words)
        check(lib.sgd_model_set_rng_state(self._h, s))

    # -- modes and buffers
    def train(self, mode: bool = True) -> 'Model':
        """Training mode (dropout active), as torch's module.train()."""
        check(lib.sgd_model_set_training(self._h, int(bool(mode))))
        return self

    def eval(self) -> 'Model':
        """Evaluation mode, as torch's module.eval()."""
        return self.train(False)

    @property
    def training(self) -> bool:
        return bool(lib.sgd_model_is_training(self._h))

    @property
    def max_batch(self) -> int:
        return int(lib.sgd_model_max_batch(self._h))

    def reserve(self, max_batch: int) -> None:
        """Resizes the activation buffers for batches up to @p max_batch rows."""
        check(lib.sgd_model_reserve(self._h, max_batch))

    def set_blas_threads(self, threads: int) -> None:
        """BLAS threads during this model's calls; 0 leaves the BLAS alone."""
        check(lib.sgd_model_set_blas_threads(self._h, threads))

    # -- computing
    def _rows(self, x: Any) -> F32:
        a = f32(x)
        if a.ndim == 1:
            a = a.reshape(1, -1)
        if a.ndim != 2 or a.shape[1] != self.num_inputs:
            raise ShapeError('x: shape %s, the model takes [rows, %d]' % (a.shape, self.num_inputs))
        return a

    def _y(self, y: Any, rows: int) -> Tuple[Optional[Any], Optional[Any]]:
        if y is None:
            raise InvalidArgumentError('the loss needs labels or targets')
        if self.loss == 'cross_entropy':
            la = i32(y)
            if la.shape != (rows,):
                raise ShapeError('labels: shape %s, expected (%d,)' % (la.shape, rows))
            return la, None
        ta = f32(y).reshape(rows, -1) if np.size(y) == rows * self.num_outputs else f32(y)
        if ta.size != rows * self.num_outputs:
            raise ShapeError('targets: shape %s, expected (%d, %d)' % (ta.shape, rows, self.num_outputs))
        return None, ta

    def forward(self, x: Any) -> F32:
        """Runs the model on a batch; returns a copy of the outputs (logits).
        @p x is kept for backward()."""
        a = self._rows(x)
        out = C.c_void_p()
        check(lib.sgd_model_forward(self._h, addr(a), a.shape[0], C.byref(out)))
        self._x = a
        return np.array(view(self._own(), out.value or 0, (a.shape[0], self.num_outputs)))

    def compute_loss(self, y: Any) -> float:
        """The loss of the last forward pass against labels (cross-entropy) or targets."""
        if self._x is None:
            raise InvalidArgumentError('compute_loss: no forward pass')
        la, ta = self._y(y, self._x.shape[0])
        loss = C.c_double()
        check(lib.sgd_model_compute_loss(self._h, addr(la), addr(ta), C.byref(loss)))
        return float(loss.value)

    def backward(self, grad_output: Optional[Any] = None) -> None:
        """Back-propagates the last loss, or @p grad_output (dLoss/dOutput of the last
        forward pass), adding to the gradients."""
        if grad_output is None:
            check(lib.sgd_model_backward(self._h))
            return
        g = f32(grad_output)
        if self._x is None or g.size != self._x.shape[0] * self.num_outputs:
            raise ShapeError('grad_output: %d values, expected rows * %d' % (g.size, self.num_outputs))
        check(lib.sgd_model_backward_from(self._h, addr(g)))

    def forward_backward(self, x: Any, y: Any) -> float:
        """Forward, loss and backward on a batch, adding the gradients; returns the loss."""
        a = self._rows(x)
        la, ta = self._y(y, a.shape[0])
        loss = C.c_double()
        check(lib.sgd_model_forward_backward(self._h, addr(a), addr(la), addr(ta), a.shape[0], C.byref(loss)))
        self._x = a
        return float(loss.value)

    def predict(self, x: Any) -> F32:
        """Outputs for any number of rows, in evaluation mode, batch by batch."""
        a = self._rows(x)
        out = np.empty((a.shape[0], self.num_outputs), dtype=np.float32)
        check(lib.sgd_model_predict(self._h, addr(a), a.shape[0], addr(out), out.size))
        return out

    __call__ = predict

    def evaluate(self, dataset: Dataset, batch_size: int = 0) -> Tuple[float, float]:
        """(mean loss, accuracy) over a dataset, in evaluation mode (accuracy NaN for MSE)."""
        loss, acc = C.c_double(), C.c_double()
        check(lib.sgd_model_evaluate(self._h, dataset._h, batch_size, C.byref(loss), C.byref(acc)))
        return float(loss.value), float(acc.value)

    def __repr__(self) -> str:
        return '<sgdlab.Model closed>' if self.closed else '<sgdlab.Model %s, %d params>' % (self.spec,
                                                                                          self.num_params)


class ModelBuilder:
    """Builds a model layer by layer; :meth:`build` returns the :class:`Model`."""

    def __init__(self, n_inputs: int) -> None:
        h = C.c_void_p()
        check(lib.sgd_model_new(C.byref(h), n_inputs, None))
        self._model: Optional[Model] = Model._wrap(h.value or 0)

    @property
    def _h(self) -> int:
        if self._model is None:
            raise InvalidArgumentError('this builder has built its model already')
        return self._model._h

    def dense(self, units: int, bias: bool = True) -> 'ModelBuilder':
        check(lib.sgd_model_add_dense(self._h, units, int(bool(bias))))
        return self

    def activation(self, kind: str) -> 'ModelBuilder':
        """relu, tanh, sigmoid, gelu, gelu_tanh or softmax."""
        if kind not in ACTIVATIONS:
            raise InvalidArgumentError('activation %r: must be one of %s' % (kind, ', '.join(ACTIVATIONS)))
        check(lib.sgd_model_add_activation(self._h, ACTIVATIONS[kind]))
        return self

    def relu(self) -> 'ModelBuilder':
        return self.activation('relu')

    def tanh(self) -> 'ModelBuilder':
        return self.activation('tanh')

    def leaky_relu(self, negative_slope: float = 0.01) -> 'ModelBuilder':
        check(lib.sgd_model_add_leaky_relu(self._h, negative_slope))
        return self

    def dropout(self, p: float = 0.5) -> 'ModelBuilder':
        check(lib.sgd_model_add_dropout(self._h, p))
        return self

    def build(self, *, seed: Optional[int] = None, max_batch: Optional[int] = None, loss: Optional[str] = None,
              init: Optional[str] = None, blas_threads: Optional[int] = None) -> Model:
        o = _options(seed, max_batch, loss, init, blas_threads)
        check(lib.sgd_model_build(self._h, C.byref(o)))
        m, self._model = self._model, None
        assert m is not None
        return m
