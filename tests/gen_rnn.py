#!/usr/bin/python3
"""Generates tests/data/parity_rnn.txt.gz, the PyTorch parity fixture of test_rnn.

Run it with Debian's Python, which has python3-torch 1.13:

    /usr/bin/python3 tests/gen_rnn.py tests/data/parity_rnn.txt.gz

torch is needed only to regenerate the file; the build and the tests read the
committed output and never import torch.

Each case is a model of the form [embedding] - recurrent layer - dense, with
cross-entropy over every position (torch: the logits reshaped to [N*T, V],
mean reduction), trained for two consecutive batches of the same streams: the
second batch starts from the final state of the first, detached (truncated
backpropagation through time). The first batch starts from a non-zero
carried state. CASES below and the table in tests/test_rnn.c describe the
same models in the same order.

Every parameter, input, label and initial state comes from an exact integer
formula that test_rnn.c implements too (splitmix64, as tests/gen_parity.py):
tensor i (state_dict order) of case c is the stream with seed
10000 * (c + 1) + i, mapped to (2u - 1) * 0.5; inputs, labels and states have
the seeds 10000 * (c + 1) + 500 and up (see seeds()). Both sides therefore
start from bit-identical tensors.

Records (text, gzip-compressed; '#' lines are comments), each
    name rows cols
    v v v ...      (rows * cols float32 values, %.9g, row-major)
per case, prefixed with the case's name:
    <case>.b1.loss, <case>.b1.logits [N*T, V], <case>.b1.h_n (and .c_n) [N, L*H]
    (the final state in the library's layout [N, L, H]), then every
    gradient <case>.b1.grad.<state_dict name>; the same for b2 (the second
    batch, gradients zeroed between the batches); and for the clip cases
    <case>.clip.<name>: the parameters after one SGD step (lr 0.1) from the
    first batch's gradients clipped by clip_grad_norm_(max_norm=CLIP).
"""
import gzip
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_parity import stream  # noqa: E402  the same splitmix64 streams

CLIP = 0.05

# name, recurrent kind, layer args, T, N, vocab (None: float input of F features), F or embedding dim, hidden, layers
CASES = [
    # name  kind   extra                      T  N  V     E/F  H  L
    ('rnn_tanh', 'rnn', {}, 6, 3, 7, 5, 6, 1),
    ('rnn_relu', 'rnn', {'nonlinearity': 'relu'}, 3, 2, 7, 5, 6, 1),
    ('rnn_2l', 'rnn', {}, 4, 2, 7, 3, 5, 2),
    ('gru', 'gru', {}, 7, 3, 9, 4, 5, 1),
    ('gru_2l', 'gru', {}, 5, 2, 9, 4, 5, 2),
    ('gru_nobias', 'gru', {'bias': False}, 4, 2, 6, 3, 4, 1),
    ('lstm_t1', 'lstm', {}, 1, 4, 9, 4, 6, 1),
    ('lstm', 'lstm', {}, 8, 3, 9, 4, 6, 1),
    ('lstm_2l', 'lstm', {}, 4, 2, 9, 4, 6, 2),
    ('lstm_float', 'lstm', {}, 5, 2, None, 3, 5, 2),
    ('lstm_nobias', 'lstm', {'bias': False}, 3, 2, 5, 3, 4, 1),
]
CLIP_CASES = {'lstm', 'gru', 'rnn_tanh', 'lstm_2l'}


def sym(seed, shape):
    n = 1
    for d in shape:
        n *= d
    v = [(2.0 * u - 1.0) * 0.5 for u in stream(seed, n)]
    return torch.tensor(v, dtype=torch.float64).to(torch.float32).reshape(shape)


def ids(seed, n, v):
    return [int(u * v) for u in stream(seed, n)]


def write(out, name, t):
    t = t.detach().to(torch.float32)
    if t.dim() == 0:
        t = t.reshape(1, 1)
    t = t.reshape(t.shape[0] if t.dim() > 1 else 1, -1)
    rows, cols = t.shape
    out.write('%s %d %d\n' % (name, rows, cols))
    flat = t.reshape(-1).tolist()
    for i in range(0, len(flat), 8):
        out.write(' '.join('%.9g' % v for v in flat[i:i + 8]) + '\n')


class Model(torch.nn.Module):
    def __init__(self, kind, extra, vocab, e, h, layers):
        super().__init__()
        self.vocab = vocab
        self.emb = torch.nn.Embedding(vocab, e) if vocab is not None else None
        cls = {'rnn': torch.nn.RNN, 'gru': torch.nn.GRU, 'lstm': torch.nn.LSTM}[kind]
        self.rec = cls(e, h, num_layers=layers, batch_first=True, **extra)
        self.out = torch.nn.Linear(h, vocab if vocab is not None else 3)
        self.kind = kind

    def named(self):
        """(our name, parameter) in our state_dict order: embedding 0, recurrent next, dense last."""
        base = 0
        res = []
        if self.emb is not None:
            res.append(('0.weight', self.emb.weight))
            base = 1
        for name, p in self.rec.named_parameters():
            res.append(('%d.%s' % (base, name), p))
        res.append(('%d.weight' % (base + 1), self.out.weight))
        res.append(('%d.bias' % (base + 1), self.out.bias))
        return res

    def forward(self, x, state):
        z = self.emb(x) if self.emb is not None else x
        y, st = self.rec(z, state)
        return self.out(y), st


def seeds(c):
    b = 10000 * (c + 1) + 500
    return {'x1': b, 'l1': b + 1, 'h0': b + 2, 'c0': b + 3, 'x2': b + 10, 'l2': b + 11}


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else 'tests/data/parity_rnn.txt.gz'
    with gzip.open(path, 'wt') as out:
        out.write('# tests/gen_rnn.py, torch %s\n' % torch.__version__)
        for c, (name, kind, extra, T, N, V, E, H, L) in enumerate(CASES):
            torch.manual_seed(0)
            m = Model(kind, extra, V, E, H, L)
            with torch.no_grad():
                for i, (pname, p) in enumerate(m.named()):
                    p.copy_(sym(10000 * (c + 1) + i, tuple(p.shape)))
            s = seeds(c)
            classes = V if V is not None else 3

            def batch(xs, ls):
                if V is not None:
                    x = torch.tensor(ids(xs, N * T, V), dtype=torch.long).reshape(N, T)
                else:
                    x = sym(xs, (N, T, E))
                lab = torch.tensor(ids(ls, N * T, classes), dtype=torch.long).reshape(N * T)
                return x, lab

            # Initial state in the library's layout [N, L, H], torch's is [L, N, H].
            h0 = sym(s['h0'], (N, L, H)).transpose(0, 1).contiguous()
            state = h0
            if kind == 'lstm':
                c0 = sym(s['c0'], (N, L, H)).transpose(0, 1).contiguous()
                state = (h0, c0)
            for b in (1, 2):
                x, lab = batch(s['x%d' % b], s['l%d' % b])
                m.zero_grad()
                logits, st = m(x, state)
                loss = torch.nn.functional.cross_entropy(logits.reshape(N * T, classes), lab)
                loss.backward()
                pre = '%s.b%d.' % (name, b)
                write(out, pre + 'loss', loss)
                write(out, pre + 'logits', logits.reshape(N * T, classes))
                hs = st[0] if kind == 'lstm' else st
                write(out, pre + 'h_n', hs.transpose(0, 1).reshape(N, L * H))
                if kind == 'lstm':
                    write(out, pre + 'c_n', st[1].transpose(0, 1).reshape(N, L * H))
                for pname, p in m.named():
                    write(out, pre + 'grad.' + pname, p.grad)
                if b == 1 and name in CLIP_CASES:
                    params = [p for _, p in m.named()]
                    saved = [p.detach().clone() for p in params]
                    grads = [p.grad.detach().clone() for p in params]
                    torch.nn.utils.clip_grad_norm_(params, CLIP)
                    opt = torch.optim.SGD(params, lr=0.1)
                    opt.step()
                    for pname, p in m.named():
                        write(out, '%s.clip.%s' % (name, pname), p)
                    with torch.no_grad():
                        for p, v, g in zip(params, saved, grads):
                            p.copy_(v)
                            p.grad.copy_(g)
                # The next batch continues the streams from the final state, cut from the graph.
                state = tuple(t.detach() for t in st) if kind == 'lstm' else st.detach()


if __name__ == '__main__':
    main()
