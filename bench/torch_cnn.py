#!/usr/bin/python3
"""PyTorch 1.13 side of bench_cnn: one training step of the issue's CNN at batch 128.

nn.Sequential(Conv2d(1, 32, 3, padding=1), ReLU(), MaxPool2d(2), Conv2d(32, 64, 3,
padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(3136, 128), ReLU(), Linear(128, 10)),
CrossEntropyLoss, SGD with momentum 0.9, on random 1x28x28 inputs (the same kind
bench_cnn uses). One thread (torch's intra-op threads and OpenBLAS's). Prints

    torch-round <samples/s wall> <samples/s cpu>

for each round and exits with status 77 when torch is missing.

usage: torch_cnn.py [--rounds N] [--steps N]
"""
import argparse
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--steps', type=int, default=10)
    args = ap.parse_args()
    os.environ['OPENBLAS_NUM_THREADS'] = '1'
    os.environ['OMP_NUM_THREADS'] = '1'
    try:
        import torch
        import torch.nn as nn
    except ImportError as e:
        print('torch-unavailable: %s' % e)
        return 77
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(128, 1, 28, 28)
    y = torch.randint(0, 10, (128,))

    def step():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    for _ in range(args.rounds):
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(args.steps):
            step()
        w1, c1 = time.perf_counter(), time.process_time()
        n = 128 * args.steps
        print('torch-round %.1f %.1f' % (n / (w1 - w0), n / (c1 - c0)), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
