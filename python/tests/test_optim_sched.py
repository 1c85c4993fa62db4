"""Optimizer and Schedule, built-in and written in Python."""
import math

import numpy as np
import pytest

import sgdlab
from conftest import expect


def test_builtins_and_hparams():
    assert sgdlab.builtin_names()[:5] == ['sgd', 'adagrad', 'rmsprop', 'adam', 'adamw']
    o = sgdlab.Optimizer('adam:lr=1e-3,beta2=0.99', 4)
    assert o.name == 'adam' and o.size == 4 and len(o) == 4
    assert o.lr == pytest.approx(1e-3) and o['beta2'] == pytest.approx(0.99)
    o['beta1'] = 0.8
    assert o.get('beta1') == pytest.approx(0.8)
    expect(sgdlab.NotFoundError, 'momentum', o.set, 'momentum', 0.5)
    expect(sgdlab.RangeError, 'beta1', o.set, 'beta1', 1.0)
    expect(sgdlab.InvalidArgumentError, 'lr', sgdlab.Optimizer, 'sgd', 4)


def test_step_matches_the_formula_and_state_round_trip():
    p = np.array([1.0, -2.0, 3.0], np.float32)
    g = np.array([0.5, 0.5, -1.0], np.float32)
    o = sgdlab.Optimizer('sgd:lr=0.1,momentum=0.9', 3)
    info = o.step(p, g)
    assert info.applied and info.step == 1 and info.grad_norm == pytest.approx(math.sqrt(1.5))
    assert np.allclose(p, [0.95, -2.05, 3.1])
    sd = o.state_dict()
    assert set(sd) >= {'step', 'momentum_buffer'} and sd['step'][0] == 1
    o2 = sgdlab.Optimizer('sgd:lr=0.1,momentum=0.9', 3)
    o2.load_state_dict(sd)
    p2 = p.copy()
    o.step(p, g)
    o2.step(p2, g)
    assert np.array_equal(p, p2) and o2.step_count == 2
    v = o.state_view('momentum_buffer')
    assert not v.flags.writeable and np.allclose(v, sd['momentum_buffer'] * 0.9 + g)
    o.reset()
    assert o.step_count == 0
    expect(TypeError, 'float32', o.step, np.zeros(3), g)
    expect(sgdlab.ShapeError, 'params has 2', o.step, np.zeros(2, np.float32), g[:2])
    expect(sgdlab.RangeError, 'lr', o.step, p, g, lr=-1)


def test_groups_hygiene_stats():
    o = sgdlab.Optimizer('sgd:lr=1', 10)
    assert o.add_group(5, 5, lr_scale=0.0) == 1
    gs = o.groups
    assert [(x.offset, x.count, x.lr_scale) for x in gs] == [(0, 5, 1.0), (5, 5, 0.0)]
    o.set_group(1, 0.5, 0.0)
    assert o.groups[1].lr_scale == 0.5
    expect(sgdlab.InvalidArgumentError, 'overlap', o.add_group, 4, 2)
    p, g = np.zeros(10, np.float32), np.ones(10, np.float32)
    o.step(p, g)
    assert np.allclose(p[:5], -1) and np.allclose(p[5:], -0.5)
    o.set_hygiene(clip_norm=1.0, nonfinite='error')
    assert o.hygiene()['nonfinite'] == 'error' and o.hygiene()['clip_norm'] == 1.0
    g[0] = np.nan
    expect(sgdlab.NonFiniteError, 'sgd_optim_step', o.step, p, g)
    o.set_hygiene(nonfinite='skip')
    assert not o.step(p, g).applied
    assert o.stats()['skipped'] == 1 and o.stats()['applied'] == 1
    expect(TypeError, 'no field', o.set_hygiene, clip=1)


class HostSGD(sgdlab.HostOptimizer):
    name = 'hostsgd'
    slot_names = ('velocity',)
    n_scalars = 1

    def __init__(self):
        self.calls = 0
        self.mu = 0.9

    def init(self, slots):
        self.calls = 0

    def step(self, params, grads, slots, lr, args):
        v = slots[0]
        v *= self.mu
        v += grads
        params -= lr * v
        self.calls += 1

    def export_scalars(self):
        return [float(self.calls)]

    def import_scalars(self, values):
        self.calls = int(values[0])

    def set_hparam(self, name, value):
        if name != 'momentum':
            raise KeyError(name)
        if not 0 <= value < 1:
            raise ValueError(value)
        self.mu = value

    def get_hparam(self, name):
        if name != 'momentum':
            raise KeyError(name)
        return self.mu


def test_host_optimizer_equals_builtin():
    host = HostSGD()
    o = sgdlab.Optimizer.custom(host, 4, lr=0.1)
    ref = sgdlab.Optimizer('sgd:lr=0.1,momentum=0.9', 4)
    assert o.name == 'hostsgd' and o.lr == pytest.approx(0.1)
    rng = np.random.default_rng(0)
    a, b = np.ones(4, np.float32), np.ones(4, np.float32)
    for _ in range(5):
        g = rng.standard_normal(4).astype(np.float32)
        o.step(a, g)
        ref.step(b, g)
    assert np.allclose(a, b, atol=1e-6)
    assert o.get('momentum') == pytest.approx(0.9)
    o.set('momentum', 0.5)
    assert host.mu == 0.5
    expect(sgdlab.NotFoundError, 'sgd_optim_set', o.set, 'beta1', 0.5)
    expect(sgdlab.RangeError, 'sgd_optim_set', o.set, 'momentum', 2.0)
    sd = o.state_dict()
    assert set(sd) == {'step', 'velocity', 'scalars'} and sd['scalars'][0] == 5
    host.calls = 0
    o.load_state_dict(sd)
    assert host.calls == 5


def test_schedules_from_specs_and_options():
    s = sgdlab.Schedule('cosine:T_max=20,eta_min=0.001', 0.1)
    assert s.name == 'cosine'
    for t in range(45):
        assert s.lr(t) == pytest.approx(0.001 + 0.099 * (1 + math.cos(math.pi * t / 20)) / 2, rel=1e-13)
    assert np.array_equal(s.lrs(3, 8), [s.lr(t) for t in range(3, 8)])
    assert np.array_equal(s[3:8], s.lrs(3, 8)) and s[4] == s.lr(4)
    it = iter(s)
    assert [next(it) for _ in range(3)] == [s.lr(0), s.lr(1), s.lr(2)]
    assert s.momentum(3) is None and not s.cycles_momentum and s.state.size == 0
    c = sgdlab.Schedule.create('cosine', 0.1, T_max=20, eta_min=0.001)
    assert np.array_equal(c.lrs(0, 45), s.lrs(0, 45))
    ms = sgdlab.Schedule.create('multistep', 1.0, milestones=[2, 4], gamma=0.5)
    assert ms.lrs(0, 6).tolist() == [1, 1, 0.5, 0.5, 0.25, 0.25]
    oc = sgdlab.Schedule.create('onecycle', max_lr=1.0, total_steps=100, anneal_strategy='linear')
    assert oc.cycles_momentum and oc.momentum(0) == pytest.approx(0.95) and oc.lr(29) == pytest.approx(1.0)
    expect(sgdlab.RangeError, 'T_max=0', sgdlab.Schedule, 'cosine:T_max=0', 0.1)
    expect(sgdlab.InvalidArgumentError, 'unknown schedule kind', sgdlab.Schedule.create, 'nope', 1.0)
    expect(sgdlab.InvalidArgumentError, 'takes no base_lr', sgdlab.Schedule.create, 'onecycle', 1.0, max_lr=1,
           total_steps=5)
    expect(TypeError, 'has no field', sgdlab.Schedule.create, 'cosine', 0.1, tmax=3)


def test_composition_and_plateau_state():
    warm = sgdlab.Schedule.create('linear', 1.0, start_factor=0.5, total_iters=2)
    cos = sgdlab.Schedule('cosine:T_max=4', 1.0)
    seq = sgdlab.Schedule.sequential([warm, cos], [2])
    assert seq.lrs(0, 4).tolist() == pytest.approx([0.5, 0.75, 1.0, cos_at(1)])
    expect(sgdlab.StateError, 'closed', warm.lr, 0)  # it belongs to the sequence now
    pl = sgdlab.Schedule.plateau(sgdlab.Schedule('constant:factor=1', 0.1), patience=0, factor=0.5)
    assert pl.watches_metric
    assert pl.step() == pytest.approx(0.1) and pl.t == 1
    pl.observe(1.0)                 # after step 0
    pl.observe(1.0, step=1)
    assert pl.lr(2) == pytest.approx(0.05) and pl.step() == pytest.approx(0.05)  # the scale now, at every step
    st = pl.state
    pl2 = sgdlab.Schedule.plateau(sgdlab.Schedule('constant:factor=1', 0.1), patience=0, factor=0.5)
    pl2.state = st
    assert pl2.lr(5) == pytest.approx(0.05)
    expect(sgdlab.FormatError, 'sgd_sched_state_import', setattr, pl2, 'state', [7, 7, 7, 7, 7])
    w = sgdlab.Schedule.warmup(sgdlab.Schedule('cosine:T_max=10', 1.0), start_factor=0.1, total_iters=5)
    assert w.lr(0) == pytest.approx(0.1)


def cos_at(t, T=4):
    return (1 + math.cos(math.pi * t / T)) / 2


class Stepwise(sgdlab.HostSchedule):
    name = 'stepwise'
    cycles_momentum = True
    watches_metric = True
    state_size = 1

    def __init__(self):
        self.scale = 1.0

    def lr(self, step):
        return 0.1 * self.scale * (0.5 if step >= 10 else 1.0)

    def momentum(self, step):
        return 0.9 if step % 2 == 0 else None

    def observe(self, step, metric):
        if metric > 1:
            self.scale = 0.1

    def export_state(self):
        return [self.scale]

    def import_state(self, state):
        if not 0 < state[0] <= 1:
            raise ValueError('scale %g' % state[0])
        self.scale = state[0]


def test_host_schedules():
    f = sgdlab.Schedule.from_function(lambda t: 1.0 / (1 + t), 'inv')
    assert f.name == 'inv' and f.lrs(0, 3).tolist() == pytest.approx([1, 0.5, 1 / 3])
    s = sgdlab.Schedule.custom(Stepwise())
    assert s.lr(10) == pytest.approx(0.05) and s.momentum(0) == 0.9 and s.momentum(1) is None
    s.observe(5.0)
    assert s.lr(0) == pytest.approx(0.01) and s.state.tolist() == [0.1]
    expect(ValueError, 'scale 7', setattr, s, 'state', [7.0])
    assert s.state.tolist() == [0.1]
    # A Python schedule under the library's warmup.
    w = sgdlab.Schedule.warmup(sgdlab.Schedule.from_function(lambda t: 2.0), start_factor=0.5, total_iters=2)
    assert w.lrs(0, 3).tolist() == pytest.approx([1.0, 1.5, 2.0])
    bad = sgdlab.Schedule.from_function(lambda t: -1.0)
    expect(sgdlab.RangeError, 'sgd_sched_lr', bad.lr, 0)
