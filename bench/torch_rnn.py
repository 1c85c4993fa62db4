#!/usr/bin/python3
"""PyTorch 1.13 side of bench_rnn: the same training step, timed the same way.

Embedding(113, 64) - LSTM(64, 256, batch_first=True) - Linear(256, 113) with
CrossEntropyLoss over every position (logits reshaped to [N*T, V]), T = 100,
batch 32, SGD lr 0.1; the hidden state carried from step to step, detached
(truncated BPTT). Each step: zero_grad, forward, loss, backward, step. After
a warm-up, times --steps steps and prints

    torch-step <seconds per step> cpu <CPU seconds per step> threads <n> blas <corename>

that bench_rnn reads. Exits with status 77 without torch.

usage: torch_rnn.py [--steps N] [--threads N]
--threads sets torch's intra-op threads and OpenBLAS's, so that "1" means one
thread in total, as bench_rnn runs.
"""
import argparse
import ctypes
import os
import sys
import time

T, BATCH, VOCAB, EMB, HIDDEN = 100, 32, 113, 64, 256


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args()
    if args.threads > 0:
        os.environ['OPENBLAS_NUM_THREADS'] = str(args.threads)
        os.environ['OMP_NUM_THREADS'] = str(args.threads)
    try:
        import torch
    except ImportError as e:
        print('torch-unavailable: %s' % e)
        return 77
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    corename = 'unknown'
    try:
        blas = ctypes.CDLL('libopenblas.so.0')
        blas.openblas_get_corename.restype = ctypes.c_char_p
        corename = blas.openblas_get_corename().decode()
        if args.threads > 0:
            blas.openblas_set_num_threads(args.threads)
    except OSError:
        pass

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(VOCAB, EMB)
            self.lstm = torch.nn.LSTM(EMB, HIDDEN, batch_first=True)
            self.out = torch.nn.Linear(HIDDEN, VOCAB)

        def forward(self, x, state):
            y, state = self.lstm(self.emb(x), state)
            return self.out(y), state

    torch.manual_seed(0)
    model = Model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = torch.nn.CrossEntropyLoss()
    xs = torch.randint(0, VOCAB, (args.steps, BATCH, T))
    ys = torch.randint(0, VOCAB, (args.steps, BATCH, T))
    state = (torch.zeros(1, BATCH, HIDDEN), torch.zeros(1, BATCH, HIDDEN))

    def step(i, state):
        opt.zero_grad()
        logits, state = model(xs[i], state)
        loss = loss_fn(logits.reshape(-1, VOCAB), ys[i].reshape(-1))
        loss.backward()
        opt.step()
        return tuple(s.detach() for s in state)

    for i in range(3):
        state = step(i, state)
    t0, c0 = time.perf_counter(), time.thread_time()
    for i in range(args.steps):
        state = step(i, state)
    dt = (time.perf_counter() - t0) / args.steps
    dc = (time.thread_time() - c0) / args.steps
    print('torch-step %.6f cpu %.6f threads %d blas %s' % (dt, dc, torch.get_num_threads(), corename))
    return 0


if __name__ == '__main__':
    sys.exit(main())
