#!/usr/bin/env python3
"""The optim module from Python's ctypes, through tests/sgdlab_ctypes.py:
built-ins from specs, errors with messages, state export/import, and an
optimizer written in Python (a host vtable) training a linear regression."""
import ctypes
import math
import pathlib
import random
import sys

import sgdlab_ctypes as sgdlab  # noqa: E402  (the raw ctypes binding, tests/sgdlab_ctypes.py)

lib = sgdlab.declare_optim(sgdlab.load())


def floats(values):
    return (ctypes.c_float * len(values))(*values)


def expect_error(status_name, needle, fn, *args):
    try:
        fn(*args)
    except sgdlab.SgdError as e:
        assert e.name.startswith(status_name), (e.name, status_name)
        assert needle in e.message, (needle, e.message)
        return
    raise AssertionError('no error raised; expected %s mentioning %r' % (status_name, needle))


# ---- built-ins, specs and errors
names = []
i = 0
while lib.sgd_optim_builtin_name(i):
    names.append(lib.sgd_optim_builtin_name(i).decode())
    i += 1
assert names[:5] == ['sgd', 'adagrad', 'rmsprop', 'adam', 'adamw'] and len(names) == 20, names

with sgdlab.Optimizer(lib, 3, spec='adam:lr=1e-3,beta2=0.99,amsgrad=1') as o:
    assert o.name == 'adam'
    assert o.get('beta2') == 0.99 and o.get('amsgrad') == 1 and o.get('lr') == 1e-3
    o.set('beta1', 0.85)  # what a one-cycle schedule does
    assert o.get('beta1') == 0.85
    expect_error('SGD_ERANGE', 'beta1=1', o.set, 'beta1', 1.0)
    expect_error('SGD_ESTATE', 'amsgrad', o.set, 'amsgrad', 0)
    expect_error('SGD_ENOTFOUND', "'momentum'", o.get, 'momentum')
    x, g = floats([1, 2, 3]), floats([0.1, -0.2, 0.3])
    info = o.step(x, g, 0.01)
    assert info.applied == 1 and info.step == 1
    assert abs(info.grad_norm - math.sqrt(0.01 + 0.04 + 0.09)) < 1e-6
    # adam's first step moves every parameter by about lr against its gradient's sign
    assert abs(x[0] - (1 - 0.01)) < 1e-6 and abs(x[1] - (2 + 0.01)) < 1e-6
    expect_error('SGD_ERANGE', 'lr=-1', o.step, x, g, -1.0)

for spec, status, needle in [
    ('adam:beta2=1', 'SGD_ERANGE', 'beta2=1'),
    ('adam:lr=-0.1', 'SGD_ERANGE', 'lr=-0.1'),
    ('adam:eps=1e-3z', 'SGD_EINVAL', 'eps=1e-3z'),
    ('adam:betas=0.9', 'SGD_ENOTFOUND', 'beta1= and beta2='),
    ('sgd:lr=0.1,nesterov=1', 'SGD_ERANGE', 'nesterov'),
    ('sgd:momentum=0.9', 'SGD_EINVAL', 'lr is required'),
    ('rmsprop:momentum=-1', 'SGD_ERANGE', 'momentum=-1'),
    ('lbfgs', 'SGD_ENOTFOUND', 'lbfgs'),
]:
    expect_error(status, needle, sgdlab.Optimizer, lib, 4, spec)

# ---- export/import: a restored built-in continues bit for bit
rng = random.Random(3)
n = 50
a = sgdlab.Optimizer(lib, n, spec='rmsprop:centered=1,momentum=0.5,weight_decay=0.01')
xa = floats([rng.gauss(0, 1) for _ in range(n)])
for k in range(4):
    a.step(xa, floats([rng.gauss(0, 1) for _ in range(n)]), 0.01)
saved = a.state()
assert sorted(saved) == ['grad_avg', 'momentum_buffer', 'square_avg', 'step'], sorted(saved)
assert saved['step'][0] == 4
b = sgdlab.Optimizer(lib, n, spec='rmsprop:centered=1,momentum=0.5,weight_decay=0.01')
b.load_state(saved)
xb = floats(list(xa))
for k in range(5):
    g = floats([rng.gauss(0, 1) for _ in range(n)])
    a.step(xa, g, 0.01)
    b.step(xb, g, 0.01)
assert bytes(xa) == bytes(xb)
bad = dict(saved)
bad['square_avg'] = (ctypes.c_float * 3)(1, 2, 3)
expect_error('SGD_ESHAPE', 'square_avg', b.load_state, bad)
a.close()
b.close()


# ---- an optimizer written in Python: heavy-ball momentum
class PyMomentum(sgdlab.HostOptimizer):
    name = 'py-momentum'
    slot_names = ('velocity',)
    n_scalars = 1

    def __init__(self, momentum):
        self.momentum = momentum
        self.updates = 0
        self.destroyed = False
        self.grads_seen = None
        self.fail = False

    def step(self, params, grads, slots, n, lr, args):
        if self.fail:
            raise RuntimeError('deliberate failure in a Python step callback')
        v = slots[0]
        self.grads_seen = [grads[i] for i in range(n)]
        m = ctypes.c_float(self.momentum).value
        for i in range(n):
            # torch's SGD momentum: buf = m * buf + g (the first step's buf is g; here buf starts at 0: the same)
            v[i] = ctypes.c_float(m * v[i] + grads[i]).value
            params[i] = ctypes.c_float(params[i] - ctypes.c_float(lr).value * v[i]).value
        if args.call + 1 == args.calls:
            self.updates += 1

    def export_scalars(self):
        return [float(self.updates)]

    def import_scalars(self, values):
        if values[0] < 0:
            return sgdlab.SGD_ERANGE
        self.updates = int(values[0])

    def set_hparam(self, name, value):
        if name != 'momentum':
            return sgdlab.SGD_ENOTFOUND
        if not 0 <= value < 1:
            return sgdlab.SGD_ERANGE
        self.momentum = value

    def get_hparam(self, name):
        return self.momentum if name == 'momentum' else None

    def destroy(self):
        self.destroyed = True


# Linear regression y = X w + b on data made here.
rng = random.Random(7)
W_TRUE, B_TRUE = [1.5, -2.0, 0.5], 0.3
X = [[rng.gauss(0, 1) for _ in range(3)] for _ in range(64)]
Y = [sum(w * x for w, x in zip(W_TRUE, row)) + B_TRUE for row in X]


def loss_and_grad(p):
    loss, g = 0.0, [0.0] * 4
    for row, y in zip(X, Y):
        e = sum(p[j] * row[j] for j in range(3)) + p[3] - y
        loss += e * e / len(X)
        for j in range(3):
            g[j] += 2 * e * row[j] / len(X)
        g[3] += 2 * e / len(X)
    return loss, g


host = PyMomentum(0.9)
py = sgdlab.Optimizer(lib, 4, host=host)
assert py.name == 'py-momentum'
ref = sgdlab.Optimizer(lib, 4, spec='sgd:lr=0.02,momentum=0.9')
p_host, p_ref = floats([0] * 4), floats([0] * 4)
first, _ = loss_and_grad(p_host)
for k in range(150):
    _, g = loss_and_grad(p_host)
    info = py.step(p_host, floats(g), 0.02)
    assert info.applied == 1
    _, g = loss_and_grad(p_ref)
    ref.step(p_ref, floats(g), 0.02)
last, _ = loss_and_grad(p_host)
assert last < 1e-6 * first, (first, last)
assert all(abs(p_host[j] - w) < 1e-3 for j, w in enumerate(W_TRUE + [B_TRUE])), list(p_host)
# The Python optimizer is torch's momentum SGD: it tracks the built-in closely.
assert all(abs(p_host[j] - p_ref[j]) <= 1e-4 * max(1.0, abs(p_ref[j])) for j in range(4)), (list(p_host),
                                                                                             list(p_ref))
assert host.updates == 150

# Hyperparameters by name reach the Python object; lr is the library's.
py.set('momentum', 0.5)
assert host.momentum == 0.5 and py.get('momentum') == 0.5
expect_error('SGD_ERANGE', 'momentum=1.5', py.set, 'momentum', 1.5)
expect_error('SGD_ENOTFOUND', "'beta1'", py.set, 'beta1', 0.9)
py.set('lr', 0.02)
assert py.get('lr') == 0.02

# Its state: the slot and its scalars.
st = py.state()
assert sorted(st) == ['scalars', 'step', 'velocity'] and st['scalars'][0] == 150 and st['step'][0] == 150
st['scalars'][0] = 3
py.load_state(st)
assert host.updates == 3
st['scalars'][0] = -1
expect_error('SGD_ERANGE', 'import_scalars', py.load_state, st)

# Clipping: without SGD_OPTIM_FUSED_CLIP the Python step sees clipped gradients.
py.set_hygiene(clip_norm=1.0)
info = py.step(p_host, floats([3, -4, 0, 0]), 0.0)
assert info.clipped == 1 and abs(info.grad_norm - 5) < 1e-9
assert abs(host.grads_seen[0] - 3 / (5 + 1e-6)) < 1e-6 and abs(host.grads_seen[1] + 4 / (5 + 1e-6)) < 1e-6

# Non-finite gradients are skipped before the Python code runs.
host.grads_seen = None
info = py.step(p_host, floats([float('nan'), 0, 0, 0]), 0.02)
assert info.applied == 0 and info.nonfinite == 1 and host.grads_seen is None

# An exception in the Python callback is a failure, not a silent success.
host.fail = True
before = list(p_host)
expect_error('SGD_ECALLBACK', 'py-momentum', py.step, p_host, floats([1, 1, 1, 1]), 0.02)
assert list(p_host) == before
host.fail = False

py.close()
assert host.destroyed
ref.close()
print('ctypes optim: OK')
