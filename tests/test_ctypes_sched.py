#!/usr/bin/env python3
"""libsgdlab's schedules through Python's ctypes (tests/sgdlab_ctypes.py):
built-ins from a spec, a schedule written in Python behind the vtable, that
schedule composed with the library's warmup and plateau, state round trips,
and errors, including exceptions raised inside Python callbacks."""
import math
import pathlib
import sys

import sgdlab_ctypes as sgdlab  # noqa: E402  (the raw ctypes binding, tests/sgdlab_ctypes.py)

lib = sgdlab.load()
Schedule = sgdlab.Schedule


def close(a, b, rel=1e-15):
    assert abs(a - b) <= rel * max(abs(b), 1e-300), (a, b)


def expect_error(fn, status, needle):
    try:
        fn()
    except sgdlab.SgdError as e:
        assert e.status == status, (e.status, e.message)
        assert needle in e.message, (needle, e.message)
        return e
    raise AssertionError('no error; expected %s' % needle)


# Built-ins from specs.
cos = Schedule.from_spec(lib, 'cosine:T_max=20,eta_min=0.001', 0.1)
assert cos.name == 'cosine'
for t in range(45):
    close(cos.lr(t), 0.001 + 0.099 * (1 + math.cos(math.pi * t / 20)) / 2, 1e-14)
assert cos.lrs(3, 5) == [cos.lr(t) for t in range(3, 8)]
assert cos.momentum(3) is None and cos.state() == []
expect_error(lambda: Schedule.from_spec(lib, 'cosine:T_max=0', 0.1), -4, 'T_max=0: must be > 0')
expect_error(lambda: Schedule.from_spec(lib, 'step:step_size=30,gamma=-0.1', 0.1), -4, 'gamma=-0.1')
expect_error(lambda: Schedule.from_spec(lib, 'cosine:T_max=5,bogus=1', 0.1), -11, "unknown key 'bogus'")
expect_error(lambda: cos.lr(-1), -4, 'step=-1')
one = Schedule.from_spec(lib, 'onecycle:max_lr=0.5,total_steps=10', 0.1)
close(one.momentum(0), 0.95)
assert one.lr(10) == one.lr(9) == one.lr(10 ** 12)  # held after the last step
cos.close()
one.close()

# A schedule written in Python: inverse square root after a linear warmup, counting observed metrics.
events = {'observed': 0, 'destroyed': 0}


def inv_sqrt(step, warm=8):
    return 0.01 * min((step + 1) / warm, math.sqrt(warm / (step + 1)))


def observe(step, metric):
    events['observed'] += 1


def state_import(vals):
    if vals[0] < 0:
        raise ValueError('negative count')
    events['observed'] = int(vals[0])


def destroyed():
    events['destroyed'] += 1


host = Schedule.custom(lib, 'inv_sqrt', inv_sqrt, momentum=lambda t: 0.9 if t < 5 else None, observe=observe,
                       state_size=1, state_export=lambda: [events['observed']], state_import=state_import,
                       destroy=destroyed)
assert host.name == 'inv_sqrt'
assert lib.sgd_sched_watches_metric(host._h) == 1 and lib.sgd_sched_cycles_momentum(host._h) == 1
for t in range(30):
    assert host.lr(t) == inv_sqrt(t)
assert host.momentum(2) == 0.9 and host.momentum(7) is None
host.observe(0, 1.0)
assert host.state() == [1.0]
host.restore([5.0])
assert events['observed'] == 5
e = expect_error(lambda: host.restore([-1.0]), sgdlab.SGD_ECALLBACK, "schedule 'inv_sqrt': state_import callback")
assert isinstance(e.__cause__, ValueError), e.__cause__
assert events['observed'] == 5

# Composed with the library's warmup and plateau; the metric reaches the Python callback.
w = host.warmup(start_factor=0.5, total_iters=4)
for t in range(12):
    close(w.lr(t), inv_sqrt(t) * (0.5 + 0.5 * min(t, 4) / 4))
p = w.plateau(factor=0.5, patience=0)
assert p.name == 'plateau' and len(p.state()) == 6
p.observe(0, 1.0)
p.observe(1, 1.0)  # no improvement: halved from step 2 on
for t in range(2, 40):
    close(p.lr(t), w.lr(t) * 0.5)
assert events['observed'] == 7
saved = p.state()
assert saved[4] == 0.5 and saved[5] == 7

# A restored plateau continues exactly; a Python exception inside lr surfaces as SGD_ECALLBACK.
q = Schedule.custom(lib, 'inv_sqrt', inv_sqrt, observe=observe, state_size=1,
                    state_export=lambda: [events['observed']], state_import=state_import).plateau(factor=0.5,
                                                                                                  patience=0)
q.restore(saved)
assert [q.lr(t) for t in range(50)] == [inv_sqrt(t) * 0.5 for t in range(50)]


def broken(step):
    if step == 3:
        raise ZeroDivisionError('host bug at step 3')
    return 0.1


b = Schedule.custom(lib, 'broken', broken).warmup(total_iters=2)
close(b.lr(2), 0.1)
e = expect_error(lambda: b.lr(3), sgdlab.SGD_ECALLBACK, "schedule 'broken': lr callback returned -13")
assert isinstance(e.__cause__, ZeroDivisionError)
neg = Schedule.custom(lib, 'neg', lambda t: -0.5)
expect_error(lambda: neg.lr(0), -4, "schedule 'neg' gave lr=-0.5 at step 0: must be >= 0")
expect_error(lambda: Schedule.custom(lib, 'x' * 64, inv_sqrt), -1, '1 to 63 bytes')

for s in (p, q, b, neg):
    s.close()
assert events['destroyed'] == 1, events  # the first host, freed with its plateau
print('ctypes_sched: OK')
