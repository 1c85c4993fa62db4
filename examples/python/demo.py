#!/usr/bin/env python3
"""The sgdlab package in a few lines: which library, a schedule, the monitor on
a loss curve, a model trained with a libsgdlab optimizer.

    python3 demo.py        (with the package installed, or PYTHONPATH=python)
"""
import math

import numpy as np

import sgdlab

print(sgdlab.library_info())

sched = sgdlab.Schedule('warmup:total_iters=5,over=(cosine:T_max=50)', base_lr=0.1)
print('lr at steps 0, 5, 25, 50:', [round(sched[t], 5) for t in (0, 5, 25, 50)])

monitor = sgdlab.Monitor()
monitor.add_callback(lambda ev: print('  callback:', ev), 'alarms')
for step in range(120):
    loss = 2.3 * math.exp(-step / 30) + 0.1
    if step > 80:
        loss *= 1.6 ** (step - 80)       # the run blows up
    for ev in monitor.observe(loss, lr=sched[step]):
        print('  event:', ev.kind, 'at step', ev.step, '->', ev.remedy)
print('verdict:', monitor.verdict)

rng = np.random.default_rng(0)
x = rng.standard_normal((256, 2)).astype(np.float32)
y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)
model = sgdlab.Model('2-16-tanh-2:seed=1')
opt = sgdlab.Optimizer('adam:lr=0.02', model.num_params)
for step in range(300):
    model.zero_grad()
    loss = model.forward_backward(x, y)
    opt.step(model)
print('xor-like task after 300 Adam steps: loss %.3f, accuracy %.2f' % model.evaluate(sgdlab.Dataset(x, y)))
