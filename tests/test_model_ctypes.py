#!/usr/bin/env python3
"""The model from Python's ctypes: build from a spec, enumerate the parameters,
train by writing the parameter arena through its pointer, read errors."""
import ctypes as C
import pathlib
import sys

import sgdlab_ctypes as sgdlab  # noqa: E402  (the raw ctypes binding, tests/sgdlab_ctypes.py)


class ParamInfo(C.Structure):
    _fields_ = [('struct_size', C.c_uint32), ('kind', C.c_int32), ('name', C.c_char_p),
                ('layer', C.c_int32), ('rank', C.c_int32), ('shape', C.c_int64 * 4),
                ('offset', C.c_size_t), ('numel', C.c_size_t)]


lib = sgdlab.load()
P = C.c_void_p
lib.sgd_model_from_spec.argtypes = [C.POINTER(P), C.c_char_p, P, P]
lib.sgd_model_free.argtypes = [P]
lib.sgd_model_free.restype = None
lib.sgd_model_num_params.argtypes = [P]
lib.sgd_model_num_params.restype = C.c_size_t
lib.sgd_model_num_param_tensors.argtypes = [P]
lib.sgd_model_num_param_tensors.restype = C.c_size_t
lib.sgd_model_param_info.argtypes = [P, C.c_size_t, C.POINTER(ParamInfo)]
lib.sgd_model_params.argtypes = [P]
lib.sgd_model_params.restype = C.POINTER(C.c_float)
lib.sgd_model_grads.argtypes = [P]
lib.sgd_model_grads.restype = C.POINTER(C.c_float)
lib.sgd_model_zero_grad.argtypes = [P]
lib.sgd_model_forward_backward.argtypes = [P, C.POINTER(C.c_float), C.POINTER(C.c_int32),
                                           C.POINTER(C.c_float), C.c_int64, C.POINTER(C.c_double)]
lib.sgd_model_spec.argtypes = [P]
lib.sgd_model_spec.restype = C.c_char_p

m = P()
sgdlab.check(lib, lib.sgd_model_from_spec(C.byref(m), b'2-8-tanh-2:seed=3', None, None))
assert lib.sgd_model_spec(m) == b'2-8-tanh-2:loss=cross_entropy'
n = lib.sgd_model_num_params(m)
assert n == 2 * 8 + 8 * 2 + 8 + 2, n
names = []
for i in range(lib.sgd_model_num_param_tensors(m)):
    info = ParamInfo(struct_size=C.sizeof(ParamInfo))
    sgdlab.check(lib, lib.sgd_model_param_info(m, i, C.byref(info)))
    names.append((info.name.decode(), tuple(info.shape[:info.rank]), info.offset))
assert names == [('0.weight', (8, 2), 0), ('2.weight', (2, 8), 16), ('0.bias', (8,), 32), ('2.bias', (2,), 40)], names

# The arenas as Python views (no copy): pointer + length.
w = (C.c_float * n).from_address(C.addressof(lib.sgd_model_params(m).contents))
g = (C.c_float * n).from_address(C.addressof(lib.sgd_model_grads(m).contents))
# XOR-like data: class 1 when the signs differ.
pts = [(-1.0, -1.0, 0), (1.0, 1.0, 0), (-1.0, 1.0, 1), (1.0, -1.0, 1)] * 4
x = (C.c_float * (2 * len(pts)))(*[v for p in pts for v in p[:2]])
y = (C.c_int32 * len(pts))(*[p[2] for p in pts])
loss = C.c_double()
losses = []
for step in range(300):
    sgdlab.check(lib, lib.sgd_model_zero_grad(m))
    sgdlab.check(lib, lib.sgd_model_forward_backward(m, x, y, None, len(pts), C.byref(loss)))
    for i in range(n):
        w[i] -= 0.5 * g[i]
    losses.append(loss.value)
assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])

# Errors come back as a status and a message.
bad = P()
try:
    sgdlab.check(lib, lib.sgd_model_from_spec(C.byref(bad), b'2-rleu-2', None, None))
    raise AssertionError('a bad spec was accepted')
except sgdlab.SgdError as e:
    assert e.name.startswith('SGD_EINVAL') and "layer 1 'rleu'" in e.message, e.message
assert bad.value is None
lib.sgd_model_free(m)
print('model through ctypes: OK, loss %.4f -> %.4f' % (losses[0], losses[-1]))
