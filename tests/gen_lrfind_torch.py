#!/usr/bin/python3
"""Writes tests/data/lrfind: an LR range test run by PyTorch, as a log and as a
CSV, for `sgdlab lr-find --from` and sgd_lrfind_analyze() (tests/test_tune.c,
tests/test_cli_lrfind_from.py).

    /usr/bin/python3 tests/gen_lrfind_torch.py tests/data/lrfind

The test is fastai's and Lightning's: the learning rate grows exponentially
from 1e-7 to 10 over 100 steps of SGD with momentum 0.9 (batch 64) on a
196-64-relu-10 MLP over 4096 Fashion-MNIST images pooled to 14x14 (Debian's
dataset-fashion-mnist); the loss of each step is recorded before the update;
the test stops once the debiased moving average (beta 0.98) exceeds 4 times its
best, or the loss is not finite. The log also records what fastai's
suggestion functions (fastai/callback/schedule.py: valley, minimum, steep)
give on this curve, computed here the way fastai computes them, for
comparison (docs/tune.md says where libsgdlab's differ and why).
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_monitor_curves as gmc  # noqa: E402  (the same data loader)


def fastai_suggestions(lrs, losses, num_it):
    """fastai's valley, minimum and steep on the recorder's (smoothed) losses."""
    # valley: longest decreasing run as fastai computes it
    lo, hi = num_it // 10, len(losses) - 5
    ls, lr = losses[lo:hi], lrs[lo:hi]
    n = len(ls)
    max_start = max_end = 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if ls[i] < ls[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    valley = lr[idx]
    # minimum: lr at the lowest loss / 10; steep: the steepest slope against log lr
    ls2, lr2 = losses[lo:hi], lrs[lo:hi]
    minimum = lr2[min(range(len(ls2)), key=lambda i: ls2[i])] / 10
    grads = [(ls2[i + 1] - ls2[i]) / (math.log(lr2[i + 1]) - math.log(lr2[i])) for i in range(len(ls2) - 1)]
    steep = lr2[min(range(len(grads)), key=lambda i: grads[i])]
    return valley, minimum, steep


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    import torch
    torch.set_num_threads(1)
    torch.manual_seed(3)
    x, y = gmc.load_images(torch)
    x = x.reshape(x.shape[0], -1)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(196, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=1e-7, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    steps, lr_min, lr_max, beta = 100, 1e-7, 10.0, 0.98
    g = torch.Generator().manual_seed(4)
    perm = torch.randperm(x.shape[0], generator=g)
    lrs, losses, smooth = [], [], []
    avg, best = 0.0, float('inf')
    for i in range(steps):
        lr = lr_min * (lr_max / lr_min) ** (i / (steps - 1))
        for pg in opt.param_groups:
            pg['lr'] = lr
        idx = perm[(i * 64) % 4096:(i * 64) % 4096 + 64]
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        v = loss.item()
        lrs.append(lr)
        losses.append(v)
        if not math.isfinite(v):
            break
        avg = beta * avg + (1 - beta) * v
        sm = avg / (1 - beta ** (i + 1))
        smooth.append(sm)
        loss.backward()
        opt.step()
        if i > 0 and sm > 4 * best:
            break
        best = min(best, sm)
    valley, minimum, steep = fastai_suggestions(lrs[:len(smooth)], smooth, steps)
    with open(os.path.join(out, 'torch-range-test.log'), 'w') as f:
        f.write('# LR range test by PyTorch %s (tests/gen_lrfind_torch.py): SGD momentum 0.9, 196-64-relu-10 MLP,\n'
                '# Fashion-MNIST 14x14, batch 64, lr 1e-7 to 10 over 100 steps, stopped at 4x the best smoothed loss\n'
                % torch.__version__)
        f.write('# fastai on this curve: valley %.6g, minimum %.6g, steep %.6g\n' % (valley, minimum, steep))
        f.write('Running the learning-rate range test...\n')
        for i, (lr, v) in enumerate(zip(lrs, losses)):
            f.write('lr_find step %d/%d: lr=%.6e loss=%.6f\n' % (i + 1, steps, lr, v))
        f.write('done: %d steps\n' % len(losses))
    with open(os.path.join(out, 'torch-range-test.csv'), 'w') as f:
        f.write('lr,loss\n')
        for lr, v in zip(lrs, losses):
            f.write('%.9e,%.9g\n' % (lr, v))
    print('%d points; fastai: valley %.3g minimum %.3g steep %.3g' % (len(losses), valley, minimum, steep),
          file=sys.stderr)


if __name__ == '__main__':
    main()
