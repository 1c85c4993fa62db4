#!/usr/bin/python3
"""PyTorch 1.13 side of bench_model: the same training step, timed the same way.

784-256-relu-128-relu-10 on Fashion-MNIST, batch 128, SGD (lr 0.05, momentum
0.9), CrossEntropyLoss; every step draws its batch from a fresh permutation
(X[idx], the gather bench_model's loader does), zero_grad, forward, loss,
backward, step. Prints one line per epoch and, last, a line

    torch-best <samples/s> threads <n> blas <corename>

that bench_model reads. Runs only with a Python that has torch (Debian's
/usr/bin/python3 with python3-torch); exits with status 77 otherwise.

usage: torch_mlp.py [--epochs N] [--threads N] [--data DIR]
--threads sets torch's intra-op threads and OpenBLAS's (the BLAS torch uses
on Debian), so that "1" means one thread in total, as bench_model runs.
"""
import argparse
import ctypes
import gzip
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
    args = ap.parse_args()
    if args.threads > 0:
        os.environ['OPENBLAS_NUM_THREADS'] = str(args.threads)
        os.environ['OMP_NUM_THREADS'] = str(args.threads)
    try:
        import numpy as np
        import torch
    except ImportError as e:
        print('torch-unavailable: %s' % e)
        return 77
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    corename = 'unknown'
    try:  # the OpenBLAS torch loaded (the same shared object, if it is OpenBLAS)
        blas = ctypes.CDLL('libopenblas.so.0')
        blas.openblas_get_corename.restype = ctypes.c_char_p
        corename = blas.openblas_get_corename().decode()
        if args.threads > 0:
            blas.openblas_set_num_threads(args.threads)
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
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    n, batch = x.shape[0], 128
    best = 0.0
    for epoch in range(args.epochs):
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            ib = perm[i:i + batch]
            xb, yb = x[ib], y[ib]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        dt = time.perf_counter() - t0
        best = max(best, n / dt)
        print('torch epoch %d: %.3f s, %.0f samples/s, last loss %.4f' % (epoch + 1, dt, n / dt, loss.item()))
    print('torch-best %.0f threads %d blas %s' % (best, torch.get_num_threads(), corename))
    return 0


if __name__ == '__main__':
    sys.exit(main())
