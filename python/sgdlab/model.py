"""Sequential models with parameters and gradients in flat arenas (sgdlab/model.h)."""
from __future__ import annotations

import ctypes as C
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _structs as st
from ._base import F32, Object, addr, f32, free_fn, i32, view
from ._lib import check, cstr, lib, pystr
from .data import Dataset
from .errors import InvalidArgumentError, NonFiniteError, NotFoundError, RangeError, ShapeError

LAYER_KINDS = {1: 'dense', 2: 'relu', 3: 'leaky_relu', 4: 'tanh', 5: 'sigmoid', 6: 'gelu', 7: 'gelu_tanh',
               8: 'softmax', 9: 'dropout', 10: 'conv2d', 11: 'maxpool2d', 12: 'avgpool2d', 13: 'global_avgpool2d',
               14: 'flatten', 15: 'batchnorm1d', 16: 'batchnorm2d', 17: 'layernorm', 18: 'residual',
               19: 'embedding', 20: 'rnn', 21: 'lstm', 22: 'gru'}
LOSSES = {'cross_entropy': 1, 'mse': 2, 'bce_with_logits': 3}
INITS = {'torch': 1, 'xavier_uniform': 2, 'xavier_normal': 3, 'he_uniform': 4, 'he_normal': 5}
ACTIVATIONS = {'relu': 2, 'tanh': 4, 'sigmoid': 5, 'gelu': 6, 'gelu_tanh': 7, 'softmax': 8}
PARAM_KINDS = {1: 'weight', 2: 'bias'}
ROLES = {1: 'param', 2: 'buffer', 3: 'state'}
TENSOR_DTYPES = {1: np.float32, 2: np.int64}
Shape = Tuple[int, ...]


def _shape(fn: Any, *args: Any) -> Shape:
    rank = C.c_int32()
    dims = (C.c_int64 * 3)()
    check(fn(*args, C.byref(rank), dims))
    return tuple(int(dims[i]) for i in range(rank.value))


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


@dataclass(frozen=True)
class TensorInfo:
    """A tensor of the model (sgd_tensor_info): a parameter, a buffer of torch's
    state_dict (running statistics) or per-sample carried state (a recurrent
    layer's hidden state, [max_batch, ...])."""
    index: int
    name: str
    role: str            #: param, buffer or state
    layer: int
    param_kind: Optional[str]  #: weight or bias for parameters
    dtype: Any           #: numpy.float32 or numpy.int64
    shape: Tuple[int, ...]
    numel: int
    offset: int          #: floats into the parameter arena, bytes into the buffer arena, or per-sample bytes


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
    def builder(cls, inputs: Union[int, Sequence[int]]) -> 'ModelBuilder':
        """Starts a model layer by layer (sgd_model_new() and sgd_model_add_*): @p inputs
        is a width, or the shape of a sample, (F,), (T, F) or (C, H, W)
        (sgd_model_new_shaped()); :meth:`ModelBuilder.layer` adds any layer kind
        from its spec token."""
        return ModelBuilder(inputs)

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

    def state_dict(self) -> Dict[str, Any]:
        """Parameters and buffers by torch's names, in the order of torch's
        state_dict() of the equivalent nn.Sequential ("0.weight" [out, in],
        "0.bias", "1.running_mean", "1.num_batches_tracked" (int64, rank 0)...),
        as zero-copy writable views of the arenas (copy them to keep a snapshot).
        The carried state of recurrent layers is not in it (:meth:`get_state`)."""
        return {t.name: self._tensor_view(t) for t in self.tensors() if t.role != 'state'}

    def _tensor_view(self, t: TensorInfo) -> Any:
        if t.role == 'param':
            return self.params[t.offset:t.offset + t.numel].reshape(t.shape)
        ti = self._tensor_c(t.index)
        return view(self._own(), ti.data or 0, t.shape, t.dtype)

    def named_parameters(self) -> Iterator[Tuple[str, F32]]:
        """(name, view) of every parameter, in state_dict order."""
        return iter([(t.name, self._tensor_view(t)) for t in self.tensors() if t.role == 'param'])

    def named_buffers(self) -> Iterator[Tuple[str, Any]]:
        """(name, view) of every buffer (running statistics), in state_dict order."""
        return iter([(t.name, self._tensor_view(t)) for t in self.tensors() if t.role == 'buffer'])

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copies tensors (numpy arrays, torch tensors...) into the parameters and
        buffers by name. With @p strict, every entry of :meth:`state_dict` must be
        given and no other name; shapes must match. All values are checked (finite
        floats, counters >= 0) before anything is written."""
        infos = {t.name: t for t in self.tensors() if t.role != 'state'}
        if strict:
            missing = sorted(set(infos) - set(state))
            extra = sorted(set(state) - set(infos))
            if missing or extra:
                raise NotFoundError('load_state_dict: missing %s, unexpected %s' % (missing, extra))
        new = self.get_params()
        buffers: List[Tuple[TensorInfo, Any]] = []
        for name, value in state.items():
            if name not in infos:
                continue
            info = infos[name]
            raw = value.detach().cpu().numpy() if hasattr(value, 'detach') else value
            a = np.array(raw, dtype=info.dtype, order='C')  # 0-d stays 0-d (a counter)
            if a.shape != info.shape:
                raise ShapeError('load_state_dict: %s: shape %s, the model has %s' % (name, a.shape, info.shape))
            if info.dtype == np.int64 and a.size and int(a.min()) < 0:
                raise RangeError('load_state_dict: %s: a counter must be >= 0, got %d' % (name, int(a.min())))
            if info.dtype == np.float32 and not np.all(np.isfinite(a)):
                raise NonFiniteError('load_state_dict: %s: not finite' % name)
            if info.role == 'param':
                new[info.offset:info.offset + info.numel] = a.reshape(-1)
            else:
                buffers.append((info, a))
        self.set_params(new)
        for info, a in buffers:
            check(lib.sgd_model_write_tensor(self._h, info.index, addr(a), a.nbytes))

    # -- every tensor (0.2)
    def _tensor_c(self, index: int) -> st.TensorInfo:
        ti = st.TensorInfo()
        ti.struct_size = C.sizeof(ti)  # sgd_tensor_info_init() is inline in the header
        check(lib.sgd_model_tensor_info(self._h, index, C.byref(ti)))
        return ti

    def tensors(self) -> List[TensorInfo]:
        """Every tensor (sgd_model_tensor_info()): the state_dict's entries in torch's
        order, then the per-sample carried state."""
        out = []
        for i in range(int(lib.sgd_model_num_tensors(self._h))):
            out.append(self._tinfo(i))
        return out

    def _tinfo(self, i: int) -> TensorInfo:
        t = self._tensor_c(i)
        return TensorInfo(i, pystr(t.name), ROLES.get(t.role, 'unknown'), int(t.layer),
                          PARAM_KINDS.get(t.param_kind) if t.role == 1 else None,
                          TENSOR_DTYPES.get(t.dtype, np.float32), tuple(int(d) for d in t.shape[:t.rank]),
                          int(t.numel), int(t.offset))

    def find_tensor(self, name: str) -> int:
        """The index of the tensor named @p name in :meth:`tensors` (raises NotFoundError)."""
        idx = C.c_size_t()
        check(lib.sgd_model_find_tensor(self._h, cstr(name), C.byref(idx)))
        return int(idx.value)

    def tensor_info(self, key: Union[int, str]) -> TensorInfo:
        """The :class:`TensorInfo` of a tensor by index or name."""
        return self._tinfo(self.find_tensor(key) if isinstance(key, str) else int(key))

    def read_tensor(self, key: Union[int, str]) -> Any:
        """A copy of a tensor (parameter, buffer or state), shaped (sgd_model_read_tensor())."""
        t = self.tensor_info(key)
        out = np.empty(t.shape, dtype=t.dtype)
        check(lib.sgd_model_read_tensor(self._h, t.index, addr(out), out.nbytes))
        return out

    def write_tensor(self, key: Union[int, str], value: Any) -> None:
        """Overwrites a tensor (sgd_model_write_tensor()): finite floats, counters >= 0,
        of its number of elements; nothing is changed on an error."""
        t = self.tensor_info(key)
        a = np.array(value, dtype=t.dtype, order='C')
        check(lib.sgd_model_write_tensor(self._h, t.index, addr(a), a.nbytes))

    @property
    def buffers(self) -> Any:
        """The buffer arena as raw bytes: a writable zero-copy uint8 view (each
        buffer at the byte offset of its :class:`TensorInfo`); empty without buffers."""
        n = int(lib.sgd_model_buffer_bytes(self._h))
        return view(self._own(), lib.sgd_model_buffers(self._h) or 0, (n,), np.uint8)

    # -- shapes (0.2)
    @property
    def input_shape(self) -> Shape:
        """The shape of one input sample: (F,), (T, F), (T,) for token ids, or (C, H, W)."""
        return _shape(lib.sgd_model_input_shape, self._h)

    @property
    def output_shape(self) -> Shape:
        """The shape of one output sample: (classes,) or (T, vocab) for a sequence model."""
        return _shape(lib.sgd_model_output_shape, self._h)

    def layer_shape(self, i: int) -> Shape:
        """The shape of one sample at the output of layer @p i."""
        return _shape(lib.sgd_model_layer_shape, self._h, i)

    @property
    def positions(self) -> int:
        """Class labels per sample for cross-entropy: 1, or T for a sequence model."""
        out = self.output_shape
        return int(np.prod(out[:-1])) if len(out) > 1 else 1

    @property
    def seq_len(self) -> int:
        """The sequence length T of the samples (0 for images); settable, for
        instance to 1 to run one step at a time and back (sgd_model_set_seq_len():
        parameters, buffers and the carried state are kept)."""
        return int(lib.sgd_model_seq_len(self._h))

    @seq_len.setter
    def seq_len(self, t: int) -> None:
        check(lib.sgd_model_set_seq_len(self._h, t))
        self._x = None

    # -- carried state (0.2)
    @property
    def state_size(self) -> int:
        """Bytes of per-sample carried state (0 for a model without recurrent layers)."""
        return int(lib.sgd_model_state_size(self._h))

    def get_state(self) -> F32:
        """A copy of the whole carried state (every state tensor, [max_batch, ...]
        float32 each, one after the other), as the next forward pass would start from it."""
        out = np.empty(self.state_size // 4, dtype=np.float32)
        check(lib.sgd_model_get_state(self._h, addr(out) if out.size else None, out.nbytes))
        return out

    def set_state(self, values: Any) -> None:
        """Overwrites the carried state with what :meth:`get_state` gave (finite floats;
        nothing is changed on an error)."""
        a = f32(values).reshape(-1)
        check(lib.sgd_model_set_state(self._h, addr(a) if a.size else None, a.nbytes))

    def state_tensors(self) -> Dict[str, F32]:
        """The carried state by tensor name, as copies shaped [max_batch, ...]."""
        return {t.name: self.read_tensor(t.index) for t in self.tensors() if t.role == 'state'}

    def reset_state(self) -> None:
        """Zeroes the carried state, as at the start of an epoch (sgd_model_reset_state())."""
        check(lib.sgd_model_reset_state(self._h))

    def generate(self, vocab: Any, prime: Optional[Union[str, bytes]] = None, length: int = 200,
                 temperature: float = 1.0, seed: int = 0) -> Union[str, bytes]:
        """Samples text from this language model (see :func:`sgdlab.generate`); @p vocab
        is a :class:`~sgdlab.Vocab` or a :class:`~sgdlab.Text`."""
        from .text import generate
        return generate(self, vocab, prime=prime, length=length, temperature=temperature, seed=seed)

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
        n_in = self.num_inputs
        if a.ndim == 1:
            a = a.reshape(1, -1)
        elif a.ndim > 2 and a.shape[1:] == self.input_shape:
            a = a.reshape(a.shape[0], -1)
        if a.ndim != 2 or a.shape[1] != n_in:
            raise ShapeError('x: shape %s, the model takes [rows, %s]' % (
                a.shape, ', '.join(str(d) for d in self.input_shape)))
        return a

    def _out(self, rows: int) -> Tuple[int, ...]:
        out = self.output_shape
        return (rows, self.num_outputs) if len(out) == 1 else (rows,) + out

    def _y(self, y: Any, rows: int) -> Tuple[Optional[Any], Optional[Any]]:
        if y is None:
            raise InvalidArgumentError('the loss needs labels or targets')
        if self.loss == 'cross_entropy':
            la = i32(y)
            pos = self.positions
            want = (rows,) if pos == 1 else (rows, pos)
            if la.shape != want and not (pos > 1 and la.shape == (rows * pos,)):
                raise ShapeError('labels: shape %s, expected %s' % (la.shape, want))
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
        return np.array(view(self._own(), out.value or 0, self._out(a.shape[0])))

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
        out = np.empty(self._out(a.shape[0]), dtype=np.float32)
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

    def __init__(self, inputs: Union[int, Sequence[int]]) -> None:
        h = C.c_void_p()
        if isinstance(inputs, (int, np.integer)):
            check(lib.sgd_model_new(C.byref(h), int(inputs), None))
        else:
            dims = [int(d) for d in inputs]
            arr = (C.c_int64 * max(len(dims), 1))(*dims)
            check(lib.sgd_model_new_shaped(C.byref(h), len(dims), arr, None))
        self._model: Optional[Model] = Model._wrap(h.value or 0)

    @property
    def _h(self) -> int:
        if self._model is None:
            raise InvalidArgumentError('this builder has built its model already')
        return self._model._h

    def layer(self, token: str) -> 'ModelBuilder':
        """Appends the layers of spec token(s), e.g. ``"conv2d(32,3,padding=1)"`` or
        ``"batchnorm2d-relu"``: any layer kind (sgd_model_add_layer()); a layer that
        does not fit its input is refused with both shapes in the message."""
        check(lib.sgd_model_add_layer(self._h, cstr(token)))
        return self

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
