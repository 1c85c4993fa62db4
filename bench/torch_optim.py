#!/usr/bin/python3
"""torch.optim's CPU optimizers at the sizes bench_optim uses, one thread, and
(with --sgdlab PATH) the side-by-side table with libsgdlab's figures.

    /usr/bin/python3 bench/torch_optim.py [--sgdlab build/bench/bench_optim] [--quick] [SIZE...]

Runs only where torch is installed (Debian's python3-torch 1.13 for
/usr/bin/python3); elsewhere it says so and exits 0. Printed, never asserted.

torch 1.13 resolves `foreach=None` (the default) to False for every optimizer
on CPU: the default is the single-tensor loop (_single_tensor_adam...),
which runs each elementwise operation as its own pass over the tensor. The
multi-tensor `foreach=True` path is measured too. The optimizer step uses no
BLAS, so OPENBLAS_* are left as they are.
"""
import argparse
import subprocess
import sys
import time

try:
    import torch
except ImportError:
    print('torch_optim.py: torch is not installed for %s; skipping the comparison' % sys.executable)
    sys.exit(0)

ROWS = [
    ('sgd', 'SGD', dict(lr=0.01)),
    ('sgd momentum', 'SGD', dict(lr=0.01, momentum=0.9)),
    ('adagrad', 'Adagrad', dict()),
    ('rmsprop', 'RMSprop', dict()),
    ('adam', 'Adam', dict()),
    ('adamw', 'AdamW', dict()),
    ('adam amsgrad', 'Adam', dict(amsgrad=True)),
    ('nadam', 'NAdam', dict()),
    ('radam', 'RAdam', dict()),
    ('adamax', 'Adamax', dict()),
    ('adadelta', 'Adadelta', dict()),
    ('rprop', 'Rprop', dict()),
    ('asgd', 'ASGD', dict()),
]


def time_step(opt, n, min_time, rounds):
    opt.step()  # creates the state, warms up
    best = float('inf')
    for _ in range(rounds):
        reps = 0
        t0 = time.perf_counter()
        while True:
            opt.step()
            reps += 1
            t = time.perf_counter()
            if t - t0 >= min_time:
                break
        best = min(best, (t - t0) * 1e9 / (reps * n))
    return best


def torch_figures(sizes, min_time, rounds):
    torch.set_num_threads(1)
    out = {}
    for n in sizes:
        for label, cls, kw in ROWS:
            row = {}
            for foreach in (None, True):
                p = torch.full((n,), 0.5, dtype=torch.float32, requires_grad=True)
                p.grad = torch.randn(n, generator=torch.Generator().manual_seed(1))
                opt = getattr(torch.optim, cls)([p], foreach=foreach, **kw)
                row[foreach] = time_step(opt, n, min_time, rounds)
                del opt, p
            out[(label, n)] = row
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--sgdlab', help='path of bench_optim, to print libsgdlab next to torch')
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--repeat', type=int, default=2,
                    help='alternate libsgdlab and torch this many times per size; the minimum of each is kept')
    ap.add_argument('sizes', nargs='*', type=float)
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes] or [100000, 1000000, 10000000]
    min_time, rounds = (0.05, 3) if a.quick else (0.1, 11)

    # libsgdlab and torch alternate, size by size, `repeat` times: a shared machine's load hits both.
    ours, theirs, level = {}, {}, '?'
    for _ in range(max(1, a.repeat)):
        for n in sizes:
            if a.sgdlab:
                cmd = [a.sgdlab, '--csv'] + (['--quick'] if a.quick else []) + [str(n)]
                res = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                for line in res.splitlines()[1:]:
                    f = line.split(',')
                    # the bound is the larger of the memory loop's and the passes' (sqrt/div or memory, pass by pass)
                    key = (f[0], int(f[1]))
                    val = (float(f[2]), max(float(f[3]), float(f[6]) if len(f) > 6 else 0.0))
                    level = f[5] if len(f) > 5 else level
                    if key not in ours or val[0] < ours[key][0]:
                        ours[key] = (val[0], min(val[1], ours.get(key, val)[1]))
            for key, row in torch_figures([n], min_time, rounds).items():
                if key not in theirs:
                    theirs[key] = row
                else:
                    theirs[key] = {k: min(v, theirs[key][k]) for k, v in row.items()}
    print('libsgdlab kernels: %s (SGDLAB_SIMD caps it); minimum of %d alternations' % (level, max(1, a.repeat)))

    print('torch %s, %d thread(s); foreach=None resolves to False (single-tensor) in 1.13' %
          (torch.__version__, torch.get_num_threads()))
    print('ns per parameter per step (best of %d rounds)' % rounds)
    hdr = '%-13s %9s %9s %9s %6s %12s %12s %9s' % ('optimizer', 'n', 'sgdlab', 'bound', 'ratio',
                                                   'torch(dflt)', 'torch(fe)', 'speedup')
    print(hdr)
    for n in sizes:
        for label, _, _ in ROWS:
            t = theirs[(label, n)]
            if (label, n) in ours:
                ns, bound = ours[(label, n)]
                print('%-13s %9d %9.3f %9.3f %6.2f %12.3f %12.3f %8.1fx' % (
                    label, n, ns, bound, ns / bound, t[None], t[True], min(t[None], t[True]) / ns))
            else:
                print('%-13s %9d %9s %9s %6s %12.3f %12.3f' % (label, n, '-', '-', '-', t[None], t[True]))
            # libsgdlab without its gradient check (nonfinite=apply), torch's same row: equal work.
            if (label + ' unchecked', n) in ours:
                ns, bound = ours[(label + ' unchecked', n)]
                print('%-13s %9d %9.3f %9.3f %6.2f %12.3f %12.3f %8.1fx' % (
                    '  unchecked', n, ns, bound, ns / bound, t[None], t[True], min(t[None], t[True]) / ns))
        # libsgdlab's optimizers that torch 1.13 has not (lion, lamb, lars, the learning-rate-free ones)
        known = {label for label, _, _ in ROWS} | {label + ' unchecked' for label, _, _ in ROWS}
        for (label, m), (ns, bound) in ours.items():
            if m == n and label not in known:
                print('%-13s %9d %9.3f %9.3f %6.2f %12s %12s %9s' % (label, n, ns, bound, ns / bound, '-', '-', '-'))


if __name__ == '__main__':
    main()
