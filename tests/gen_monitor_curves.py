#!/usr/bin/python3
"""Generates tests/data/monitor-gen: labelled loss curves of networks the
monitor was not tuned on, swept across the edge of stability (issue 18).

Run it with Debian's Python, which has python3-torch 1.13:

    /usr/bin/python3 tests/gen_monitor_curves.py tests/data/monitor-gen
    /usr/bin/python3 tests/gen_monitor_curves.py --label-only tests/data/monitor-gen

torch is needed only to regenerate the curves; the tests read the committed
files. One thread, small data, 300 steps per run: about ten minutes on one
core of the project's machines.

Tasks (every run of a task starts from the same initial weights and sees the
same batches, so the runs differ only by optimizer and learning rate):

- cnn:      Fashion-MNIST (Debian's dataset-fashion-mnist: the first 4096
            training images, average-pooled to 14x14), conv(8,3)-relu-maxpool2-
            conv(16,3)-relu-maxpool2-flatten-linear(10), cross-entropy, batch 64;
- gru:      a character-level GRU language model on the text of the GPL-3
            (/usr/share/common-licenses/GPL-3, in every Debian): bytes,
            embedding 16, GRU(64), linear to the vocabulary, cross-entropy over
            every position of 16 sequences of 32 characters;
- deep-mlp: a deep ReLU MLP, 196-64-relu x8-10, on the same images, batch 64;
- sigmoid:  a sigmoid regression, 8-32-sigmoid-32-sigmoid-1 with mean squared
            error on y = sin(x.w) + 0.3 x1 x2 + noise, batch 64.

Seeds: 7 runs the whole grid; 8 and 9 (other initial weights and batches)
run the top 8 learning rates of each family, where the edge of stability is,
and the lowest sgd rate for their L0.

Optimizers (torch defaults otherwise): sgd, momentum (SGD with momentum 0.9),
rmsprop, adam, and cyclic (SGD with momentum 0.9 under torch's CyclicLR,
triangular, from lr/10 to lr and back every 40 steps, so that the learning
rate peaks at steps 20, 60, ...; lr is the peak). Learning rates in quarter
decades across each family's edge of stability.

Each file: a '#' line with the facts, then the minibatch loss of each step
before the update, one per line; a run whose loss becomes NaN/inf ends there.

Labels (labels.tsv) come from the whole curve, never from the monitor, with
the rule of tests/data/monitor-curves/README.md plus one clause for spikes
(the shape of issue 18):

  L0     the untrained level of a task and seed: the median of the first 20
         losses of its sgd run at the task's lowest learning rate (it barely moves);
  Lend   a run's median over its last 50 losses; Lbest the lowest Lend of the
         task (all seeds);
  progress = (L0 - Lend) / (L0 - Lbest);
  peak   the highest finite loss; wpeak the highest median of 10 consecutive losses.

  diverged   a non-finite loss or peak > 10 L0, and progress < 0.6
  healthy    peak <= 3 L0 and progress >= 0.7
  unstable   not blown up, progress < 0.6, and (wpeak > 1.5 L0 or Lend > 1.1 L0
             or peak > 2 L0: a spike above twice the untrained loss that the
             run never trained past: the learning rate was too high)
  stagnant   progress <= 0.3, peak <= 2 L0, wpeak <= 1.2 L0 and Lend <= 1.1 L0
  ambiguous  anything else: not scored
"""
import gzip
import math
import os
import struct
import sys

STEPS = 300
BATCH = 64
FMNIST = '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz'
FMNIST_LABELS = '/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz'
TEXT = '/usr/share/common-licenses/GPL-3'


def quarter_decades(lo_exp, hi_exp):
    """Learning rates 10^(k/4) for k from 4*lo_exp to 4*hi_exp, rounded to 2 digits."""
    out = []
    for k in range(4 * lo_exp, 4 * hi_exp + 1):
        out.append(float('%.2g' % (10.0 ** (k / 4.0))))
    return out


# Learning rates per task and optimizer family: from clearly too low to clearly too high.
GRIDS = {
    'cnn': {'sgd': (-3, 1), 'momentum': (-4, 0), 'cyclic': (-4, 0), 'rmsprop': (-5, -1), 'adam': (-5, -1)},
    'gru': {'sgd': (-2, 2), 'momentum': (-3, 1), 'cyclic': (-3, 1), 'rmsprop': (-5, 0), 'adam': (-5, 0)},
    'deep-mlp': {'sgd': (-3, 1), 'momentum': (-4, 0), 'cyclic': (-4, 0), 'rmsprop': (-6, -1), 'adam': (-6, -1)},
    'sigmoid': {'sgd': (-3, 2), 'momentum': (-4, 1), 'cyclic': (-4, 1), 'rmsprop': (-5, 0), 'adam': (-5, 0)},
}
OPTIMIZERS = ['sgd', 'momentum', 'rmsprop', 'adam', 'cyclic']
SEEDS = [7, 8, 9]


def load_images(torch, n=4096):
    with gzip.open(FMNIST, 'rb') as f:
        magic, count, rows, cols = struct.unpack('>IIII', f.read(16))
        raw = f.read(n * rows * cols)
    with gzip.open(FMNIST_LABELS, 'rb') as f:
        f.read(8)
        lab = f.read(n)
    x = torch.tensor(list(raw), dtype=torch.float32).view(n, 1, rows, cols) / 255.0
    x = torch.nn.functional.avg_pool2d(x, 2)  # 14x14
    x = (x - 0.286) / 0.353
    y = torch.tensor(list(lab), dtype=torch.long)
    return x, y


def make_task(torch, name, seed):
    """(model factory, batch function(step) -> (x, y), loss function)."""
    nn = torch.nn
    g = torch.Generator().manual_seed(1234 + seed - SEEDS[0])  # seed 7: 1234
    if name in ('cnn', 'deep-mlp'):
        x, y = load_images(torch)
        perm = [torch.randperm(x.shape[0], generator=g) for _ in range(8)]

        def batch(t):
            per_epoch = x.shape[0] // BATCH
            p = perm[(t // per_epoch) % len(perm)]
            idx = p[(t % per_epoch) * BATCH:(t % per_epoch + 1) * BATCH]
            return x[idx], y[idx]

        if name == 'cnn':
            def model():
                return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU(),
                                     nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 2 * 2, 10))
        else:
            def model():
                layers = [nn.Flatten(), nn.Linear(196, 64), nn.ReLU()]
                for _ in range(7):
                    layers += [nn.Linear(64, 64), nn.ReLU()]
                layers.append(nn.Linear(64, 10))
                return nn.Sequential(*layers)
        return model, batch, nn.CrossEntropyLoss()
    if name == 'gru':
        data = open(TEXT, 'rb').read()
        chars = sorted(set(data))
        index = {c: i for i, c in enumerate(chars)}
        ids = torch.tensor([index[c] for c in data], dtype=torch.long)
        vocab, seq, nseq = len(chars), 32, 16

        class CharGRU(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(vocab, 16)
                self.gru = nn.GRU(16, 64, batch_first=True)
                self.out = nn.Linear(64, vocab)

            def forward(self, inp):
                h, _ = self.gru(self.emb(inp))
                return self.out(h).reshape(-1, vocab)

        starts = torch.randint(0, ids.shape[0] - seq - 1, (STEPS, nseq), generator=g)

        def batch(t):
            s = starts[t]
            xb = torch.stack([ids[i:i + seq] for i in s.tolist()])
            yb = torch.stack([ids[i + 1:i + seq + 1] for i in s.tolist()])
            return xb, yb.reshape(-1)

        return CharGRU, batch, nn.CrossEntropyLoss()
    if name == 'sigmoid':
        n, d = 4096, 8
        x = torch.randn(n, d, generator=g)
        w = torch.randn(d, generator=g) / math.sqrt(d)
        y = torch.sin(x @ w) + 0.3 * x[:, 0] * x[:, 1] + 0.05 * torch.randn(n, generator=g)
        y = y.unsqueeze(1)
        perm = [torch.randperm(n, generator=g) for _ in range(8)]

        def batch(t):
            per_epoch = n // BATCH
            p = perm[(t // per_epoch) % len(perm)]
            idx = p[(t % per_epoch) * BATCH:(t % per_epoch + 1) * BATCH]
            return x[idx], y[idx]

        def model():
            return nn.Sequential(nn.Linear(d, 32), nn.Sigmoid(), nn.Linear(32, 32), nn.Sigmoid(), nn.Linear(32, 1))
        return model, batch, nn.MSELoss()
    raise ValueError(name)


def run(torch, task, opt, lr, seed):
    model_fn, batch, loss_fn = task
    torch.manual_seed(seed)
    model = model_fn()
    params = model.parameters()
    sched = None
    if opt == 'sgd':
        o = torch.optim.SGD(params, lr=lr)
    elif opt == 'momentum':
        o = torch.optim.SGD(params, lr=lr, momentum=0.9)
    elif opt == 'rmsprop':
        o = torch.optim.RMSprop(params, lr=lr)
    elif opt == 'adam':
        o = torch.optim.Adam(params, lr=lr)
    elif opt == 'cyclic':
        o = torch.optim.SGD(params, lr=lr, momentum=0.9)
        sched = torch.optim.lr_scheduler.CyclicLR(o, base_lr=lr / 10, max_lr=lr, step_size_up=20,
                                                  mode='triangular', cycle_momentum=False)
    else:
        raise ValueError(opt)
    losses = []
    for t in range(STEPS):
        xb, yb = batch(t)
        o.zero_grad()
        loss = loss_fn(model(xb), yb)
        v = loss.item()
        losses.append(v)
        if not math.isfinite(v):
            break
        loss.backward()
        o.step()
        if sched is not None:
            sched.step()
    return losses


def fmt_lr(lr):
    return ('%g' % lr).replace('e-0', 'e-')


def runs(tname, seed):
    """(optimizer, lr) of one seed: the whole grid for seed 7; for the others the top 8
    learning rates of each family (the edge of stability) and the lowest sgd rate (L0)."""
    out = []
    for opt in OPTIMIZERS:
        lo, hi = GRIDS[tname][opt]
        lrs = quarter_decades(lo, hi)
        if seed != SEEDS[0]:
            lrs = ([lrs[0]] if opt == 'sgd' else []) + lrs[-8:]
        out += [(opt, lr) for lr in lrs]
    return out


def generate(outdir):
    import torch
    torch.set_num_threads(1)
    os.makedirs(outdir, exist_ok=True)
    for seed in SEEDS:
        for tname in GRIDS:
            task = None
            for opt, lr in runs(tname, seed):
                name = '%s__%s__lr%s__s%d.txt' % (tname, opt, fmt_lr(lr), seed)
                path = os.path.join(outdir, name)
                if os.path.exists(path):  # already generated (the runs are deterministic)
                    continue
                if task is None:
                    task = make_task(torch, tname, seed)
                losses = run(torch, task, opt, lr, seed)
                with open(path, 'w') as f:
                    f.write('# task=%s optimizer=%s lr=%s seed=%d steps=%d (minibatch loss before each update)\n'
                            % (tname, opt, fmt_lr(lr), seed, STEPS))
                    for v in losses:
                        f.write('%.6g\n' % v if math.isfinite(v) else ('%s\n' % v))
                print(name, len(losses), '%.4g' % losses[-1], file=sys.stderr)


def read_curve(path):
    out = []
    for line in open(path):
        if line.startswith('#') or not line.strip():
            continue
        out.append(float(line))
    return out


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def label(outdir):
    files = sorted(f for f in os.listdir(outdir) if f.endswith('.txt'))
    by_task = {}
    for f in files:
        by_task.setdefault(f.split('__')[0], []).append(f)
    rows = []
    for tname, fs in sorted(by_task.items()):
        curves = {f: read_curve(os.path.join(outdir, f)) for f in fs}
        lend = {}
        for f, c in curves.items():
            if all(math.isfinite(v) for v in c) and len(c) >= 50:
                lend[f] = median(c[-50:])
        Lbest = min(lend.values())
        L0s = {}
        def seed_of(f):
            return f.rsplit('__s', 1)[1][:-len('.txt')]
        for seed in sorted(set(seed_of(f) for f in fs)):
            sgd = sorted((float(f.split('__lr')[1].split('__')[0]), f) for f in fs
                         if f.split('__')[1] == 'sgd' and seed_of(f) == seed)
            L0s[seed] = median(curves[sgd[0][1]][:20])
        for f in fs:
            L0 = L0s[seed_of(f)]
            c = curves[f]
            finite = [v for v in c if math.isfinite(v)]
            nonfinite = len(finite) < len(c)
            peak = max(finite) if finite else float('inf')
            wpeak = max(median(c[i:i + 10]) for i in range(0, max(1, len(c) - 9))) if not nonfinite else float('inf')
            if f in lend:
                progress = (L0 - lend[f]) / (L0 - Lbest)
                le = lend[f]
            else:
                progress, le = -float('inf'), float('inf')
            if (nonfinite or peak > 10 * L0) and progress < 0.6:
                lab = 'diverged'
            elif peak <= 3 * L0 and progress >= 0.7:
                lab = 'healthy'
            elif progress < 0.6 and (wpeak > 1.5 * L0 or le > 1.1 * L0 or peak > 2 * L0):
                lab = 'unstable'
            elif progress <= 0.3 and peak <= 2 * L0 and wpeak <= 1.2 * L0 and le <= 1.1 * L0:
                lab = 'stagnant'
            else:
                lab = 'ambiguous'
            rows.append((f, lab, progress, peak / L0, wpeak / L0, len(c)))
    with open(os.path.join(outdir, 'labels.tsv'), 'w') as out:
        out.write('file\tlabel\tprogress\tpeak_over_L0\twpeak_over_L0\tsteps\n')
        for f, lab, p, pk, wp, n in rows:
            out.write('%s\t%s\t%.3f\t%.3g\t%.3g\t%d\n' % (f, lab, p, pk, wp, n))
    counts = {}
    for r in rows:
        counts[r[1]] = counts.get(r[1], 0) + 1
    print('labels:', counts, file=sys.stderr)


def main():
    args = sys.argv[1:]
    label_only = '--label-only' in args
    args = [a for a in args if a != '--label-only']
    if len(args) != 1:
        sys.exit(__doc__)
    if not label_only:
        generate(args[0])
    label(args[0])


if __name__ == '__main__':
    main()
