#!/usr/bin/python3
"""Generates extra schedule fixtures (tests/data/golden/sched__gen_*.txt) from
PyTorch 1.13's torch.optim.lr_scheduler, in the format of the shared fixtures
(tests/data/golden/README.md of the golden set), so that the fixture runner is
exercised on parameters the shared set does not use: other values, defaults,
long runs, steps past the end of finite schedules, three-child sequences,
plateau in max mode, and the momentum that onecycle and cyclic set.

Run with Debian's python3-torch (/usr/bin/python3, not a pyenv python):

    /usr/bin/python3 tests/gen_sched_fixtures.py [OUTDIR]

It is never run by the build or the tests; its output is committed. One
extension of the shared format: a `momentum m_0 ... m_{S-1}` line, the
optimizer momentum in force at each step (SGD's momentum), which the runner
checks against sgd_sched_momentum() when present.
"""
import math
import os
import random
import sys
import warnings

import torch

warnings.filterwarnings('ignore')  # torch's get_lr() warnings
L = torch.optim.lr_scheduler


def fmt(v):
    if isinstance(v, bool):
        return '1' if v else '0'
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return '%.17g' % v
    if isinstance(v, (list, tuple)):
        return ','.join(fmt(x) for x in v)
    return str(v)


def metric_curve(seed, steps, kind='loss'):
    """A noisy loss with stretches of no progress, reproducible."""
    r = random.Random(seed)
    m, out = 1.0, []
    for t in range(steps):
        if (t // 12) % 2 == 0:
            m *= 0.93
        out.append(m * (1 + r.gauss(0, 0.03)) if kind == 'loss' else 1 - m * (1 + r.gauss(0, 0.03)))
    return out


def run(make, steps, base_lr, metrics=None, momentum=False):
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=base_lr, momentum=0.9 if momentum else 0)
    sched = make(opt)
    lrs, moms = [], []
    for t in range(steps):
        lrs.append(opt.param_groups[0]['lr'])
        moms.append(opt.param_groups[0]['momentum'])
        opt.step()
        if metrics is not None:
            sched.step(metrics[t])
        else:
            sched.step()
    return lrs, (moms if momentum else None)


def seq_children(spec):
    return ';'.join(k + ''.join(',%s=%s' % (a, fmt(v)) for a, v in kv.items()) for k, kv in spec)


# name, kind, keys (as written in the file), torch builder, steps, base_lr, metric, momentum
CASES = [
    ('constant_default', 'constant', {}, lambda o: L.ConstantLR(o), 12, 0.1, None, False),
    ('constant_half', 'constant', {'factor': 0.5, 'total_iters': 8},
     lambda o: L.ConstantLR(o, factor=0.5, total_iters=8), 30, 0.3, None, False),
    ('step_3', 'step', {'step_size': 3, 'gamma': 0.7}, lambda o: L.StepLR(o, step_size=3, gamma=0.7), 40, 0.05,
     None, False),
    ('multistep_early', 'multistep', {'milestones': [1, 2, 30], 'gamma': 0.5},
     lambda o: L.MultiStepLR(o, milestones=[1, 2, 30], gamma=0.5), 45, 1.0, None, False),
    ('multistep_default_gamma', 'multistep', {'milestones': [4, 9]},
     lambda o: L.MultiStepLR(o, milestones=[4, 9]), 15, 0.2, None, False),
    ('exponential_long', 'exponential', {'gamma': 0.995}, lambda o: L.ExponentialLR(o, gamma=0.995), 1500, 0.1,
     None, False),
    ('polynomial_sqrt_past_end', 'polynomial', {'total_iters': 10, 'power': 0.5},
     lambda o: L.PolynomialLR(o, total_iters=10, power=0.5), 40, 0.1, None, False),
    ('polynomial_default', 'polynomial', {}, lambda o: L.PolynomialLR(o), 12, 0.1, None, False),
    ('cosine_past_tmax', 'cosine', {'T_max': 10, 'eta_min': 0.01},
     lambda o: L.CosineAnnealingLR(o, T_max=10, eta_min=0.01), 65, 0.1, None, False),
    ('cosine_long', 'cosine', {'T_max': 37}, lambda o: L.CosineAnnealingLR(o, T_max=37), 2000, 0.5, None, False),
    ('warm_restarts_tmult1', 'cosine_warm_restarts', {'T_0': 7},
     lambda o: L.CosineAnnealingWarmRestarts(o, T_0=7), 50, 0.1, None, False),
    ('warm_restarts_tmult3', 'cosine_warm_restarts', {'T_0': 2, 'T_mult': 3, 'eta_min': 0.001},
     lambda o: L.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=3, eta_min=0.001), 100, 0.1, None, False),
    ('linear_decay', 'linear', {'start_factor': 1.0, 'end_factor': 0.1, 'total_iters': 20},
     lambda o: L.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=20), 40, 0.1, None, False),
    ('linear_default', 'linear', {}, lambda o: L.LinearLR(o), 10, 0.1, None, False),
    ('onecycle_short_momentum', 'onecycle',
     {'max_lr': 0.3, 'total_steps': 100, 'pct_start': 0.1, 'div_factor': 10.0, 'final_div_factor': 100.0},
     lambda o: L.OneCycleLR(o, max_lr=0.3, total_steps=100, pct_start=0.1, div_factor=10.0,
                            final_div_factor=100.0), 100, 0.1, None, True),
    ('onecycle_three_phase_epochs', 'onecycle',
     {'max_lr': 2.0, 'epochs': 4, 'steps_per_epoch': 10, 'three_phase': True},
     lambda o: L.OneCycleLR(o, max_lr=2.0, epochs=4, steps_per_epoch=10, three_phase=True), 40, 0.1, None, True),
    ('onecycle_linear_momentum', 'onecycle',
     {'max_lr': 0.01, 'total_steps': 33, 'anneal_strategy': 'linear', 'base_momentum': 0.8,
      'max_momentum': 0.99},
     lambda o: L.OneCycleLR(o, max_lr=0.01, total_steps=33, anneal_strategy='linear', base_momentum=0.8,
                            max_momentum=0.99), 33, 0.1, None, True),
    ('cyclic_exp_range_down', 'cyclic',
     {'base_lr': 0.01, 'max_lr': 0.1, 'step_size_up': 5, 'step_size_down': 15, 'mode': 'exp_range',
      'gamma': 0.99},
     lambda o: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=5, step_size_down=15, mode='exp_range',
                          gamma=0.99), 100, 0.1, None, True),
    ('cyclic_triangular2_momentum', 'cyclic',
     {'base_lr': 0.001, 'max_lr': 0.006, 'step_size_up': 4, 'step_size_down': 2, 'mode': 'triangular2',
      'base_momentum': 0.85, 'max_momentum': 0.95},
     lambda o: L.CyclicLR(o, base_lr=0.001, max_lr=0.006, step_size_up=4, step_size_down=2, mode='triangular2',
                          base_momentum=0.85, max_momentum=0.95), 50, 0.1, None, True),
    ('plateau_max_rel', 'plateau', {'mode': 'max', 'factor': 0.3, 'patience': 1, 'threshold': 0.01},
     lambda o: L.ReduceLROnPlateau(o, mode='max', factor=0.3, patience=1, threshold=0.01), 80, 0.2,
     metric_curve(7, 80, 'acc'), False),
    ('plateau_min_abs_eps', 'plateau',
     {'factor': 0.5, 'patience': 0, 'threshold': 0.002, 'threshold_mode': 'abs', 'eps': 0.004},
     lambda o: L.ReduceLROnPlateau(o, factor=0.5, patience=0, threshold=0.002, threshold_mode='abs', eps=0.004),
     80, 0.1, metric_curve(11, 80), False),
    ('plateau_defaults', 'plateau', {}, lambda o: L.ReduceLROnPlateau(o), 120, 0.1, metric_curve(3, 120), False),
    ('plateau_max_abs_cooldown', 'plateau',
     {'mode': 'max', 'factor': 0.5, 'patience': 2, 'threshold': 0.001, 'threshold_mode': 'abs', 'cooldown': 3,
      'min_lr': 0.01},
     lambda o: L.ReduceLROnPlateau(o, mode='max', factor=0.5, patience=2, threshold=0.001, threshold_mode='abs',
                                   cooldown=3, min_lr=0.01), 90, 0.1, metric_curve(5, 90, 'acc'), False),
]

SEQ3 = [('constant', {'factor': 0.1, 'total_iters': 3}), ('exponential', {'gamma': 0.9}),
        ('step', {'step_size': 5, 'gamma': 0.5})]
SEQ_WR = [('linear', {'start_factor': 0.1, 'total_iters': 4}),
          ('cosine_warm_restarts', {'T_0': 6, 'T_mult': 2, 'eta_min': 0.002})]


def seq3(o):
    return L.SequentialLR(o, [L.ConstantLR(o, factor=0.1, total_iters=3), L.ExponentialLR(o, gamma=0.9),
                              L.StepLR(o, step_size=5, gamma=0.5)], milestones=[3, 20])


def seq_wr(o):
    return L.SequentialLR(o, [L.LinearLR(o, start_factor=0.1, total_iters=4),
                              L.CosineAnnealingWarmRestarts(o, T_0=6, T_mult=2, eta_min=0.002)], milestones=[4])


CASES += [
    ('sequential_three', 'sequential', {'milestones': [3, 20], 'children': seq_children(SEQ3)}, seq3, 50, 0.1,
     None, False),
    ('sequential_warmup_restarts', 'sequential', {'milestones': [4], 'children': seq_children(SEQ_WR)}, seq_wr, 60,
     0.05, None, False),
]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data',
                                                              'golden')
    os.makedirs(out, exist_ok=True)
    for name, kind, keys, make, steps, base_lr, metrics, momentum in CASES:
        lrs, moms = run(make, steps, base_lr, metrics, momentum)
        lines = ['# sgdlab golden LR schedule; reference: torch.optim.lr_scheduler, PyTorch %s, float64'
                 % torch.__version__,
                 '# generated by tests/gen_sched_fixtures.py (case %s)' % name,
                 ' '.join(['scheduler', kind] + ['%s=%s' % (k, fmt(v)) for k, v in keys.items()]),
                 'base_lr %s steps %d' % (fmt(float(base_lr)), steps),
                 'lr ' + ' '.join(fmt(float(v)) for v in lrs)]
        if metrics is not None:
            lines.append('metric ' + ' '.join(fmt(float(v)) for v in metrics))
        if moms is not None:
            lines.append('momentum ' + ' '.join(fmt(float(v)) for v in moms))
        path = os.path.join(out, 'sched__gen_%s.txt' % name)
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        print(path)


if __name__ == '__main__':
    main()
