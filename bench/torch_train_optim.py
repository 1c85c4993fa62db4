#!/usr/bin/python3
"""PyTorch 1.13 side of bench_train_optim: epochs of the 784-256-relu-128-relu-10
MLP on Fashion-MNIST at batch 128 with torch.optim.Adam (defaults: lr 1e-3,
single-tensor loop, as torch 1.13 resolves foreach=None) or SGD (lr 0.05,
momentum 0.9), CrossEntropyLoss, a fresh permutation each epoch, one thread
(torch's and OpenBLAS's). Prints one line per epoch and last
"torch-best <samples/s>". Exits 77 where torch is not installed.

usage: torch_train_optim.py --optim adam|sgd [--epochs N] [--data DIR]
"""
import argparse
import ctypes
import gzip
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--optim', choices=['adam', 'sgd'], default='adam')
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
    args = ap.parse_args()
    os.environ['OPENBLAS_NUM_THREADS'] = '1'
    os.environ['OMP_NUM_THREADS'] = '1'
    try:
        import numpy as np
        import torch
    except ImportError as e:
        print('torch-unavailable: %s' % e)
        return 77
    torch.set_num_threads(1)
    try:
        ctypes.CDLL('libopenblas.so.0').openblas_set_num_threads(1)
    except OSError:
        pass

    def idx(name, offset):
        with gzip.open(os.path.join(args.data, name), 'rb') as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)

    x = torch.from_numpy(idx('train-images-idx3-ubyte.gz', 16).reshape(-1, 784).astype(np.float32) / 255.0)
    y = torch.from_numpy(idx('train-labels-idx1-ubyte.gz', 8).astype(np.int64))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                torch.nn.ReLU(), torch.nn.Linear(128, 10))
    if args.optim == 'adam':
        opt = torch.optim.Adam(model.parameters())
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    n, batch = x.shape[0], 128
    best = 0.0
    for epoch in range(args.epochs):
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            ib = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(x[ib]), y[ib])
            loss.backward()
            opt.step()
        dt = time.perf_counter() - t0
        best = max(best, n / dt)
        print('torch %s epoch %d: %.3f s, %.0f samples/s, last loss %.4f' % (args.optim, epoch + 1, dt, n / dt,
                                                                             loss.item()))
    print('torch-best %.0f' % best)
    return 0


if __name__ == '__main__':
    sys.exit(main())
