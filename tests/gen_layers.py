#!/usr/bin/python3
"""Generates tests/data/parity_layers.txt.gz, the PyTorch 1.13 reference of test_layers.c.

Run it with Debian's Python, which has python3-torch 1.13:

    /usr/bin/python3 tests/gen_layers.py tests/data/parity_layers.txt.gz

torch is needed only to regenerate the file; the tests read the committed
output and never import torch.

Each case is a libsgdlab model spec, built here as the equivalent
nn.Sequential (the same grammar, parsed below; a residual block is a module
with nn.Sequential attributes `body` and `shortcut`, so state_dict names agree:
`3.body.0.weight`, `4.shortcut.0.weight`). Parameters start from torch's
default initialisation under a fixed seed; batch-norm affine parameters and
running statistics are then perturbed so that none is trivially 1 or 0. The
file holds, per case, the input, labels or targets, every state_dict entry at
the start, then after one forward pass in training mode, the loss and its
backward pass: the outputs, the loss, every parameter's gradient and every
buffer (running statistics updated, num_batches_tracked), and finally the
outputs of a forward pass in evaluation mode (running statistics used).

Format (text, gzip-compressed): '#' comment lines, then
    case <batch> <loss> <spec>
    <name> <kind> <n>          kind f (float32, %.9g) or i (int64)
    v v v ...
    ...
    end
Names: x, labels, targets, init.<state_dict name>, out, loss, grad.<param>,
after.<buffer>, eval_out.
"""
import gzip
import re
import sys

import torch
import torch.nn as nn


def split_top(text, sep):
    out, depth, cur = [], 0, ''
    for ch in text:
        if ch == '(':
            depth += 1
        elif ch == ')':
            depth -= 1
        if ch == sep and depth == 0:
            out.append(cur.strip())
            cur = ''
        else:
            cur += ch
    out.append(cur.strip())
    return out


def parse_args(text, names, defaults):
    vals = dict(defaults)
    if not text:
        return vals
    pos = 0
    for item in split_top(text, ','):
        if '=' in item:
            k, v = item.split('=', 1)
            vals[k.strip()] = v.strip()
        else:
            vals[names[pos]] = item
            pos += 1
    return vals


class Residual(nn.Module):
    def __init__(self, body, shortcut):
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x):
        return self.body(x) + (self.shortcut(x) if self.shortcut is not None else x)


def build_seq(text, shape):
    """nn.Sequential of the '-'-separated tokens, for samples of `shape` (without N)."""
    mods = []
    for tok in split_top(text, '-'):
        m, shape = build_layer(tok, shape)
        mods.append(m)
    return nn.Sequential(*mods), shape


def out_shape(m, shape):
    with torch.no_grad():
        was = m.training
        m.eval()
        y = m(torch.zeros((2,) + tuple(shape)))
        m.train(was)
    return tuple(y.shape[1:])


def build_layer(tok, shape):
    mt = re.fullmatch(r'([a-z_0-9]+)(?:\((.*)\))?', tok)
    name, args = mt.group(1), mt.group(2) or ''
    if name.isdigit():
        m = nn.Linear(shape[-1], int(name))
    elif name in ('dense', 'linear'):
        a = parse_args(args, ['units'], {'bias': '1'})
        m = nn.Linear(shape[-1], int(a['units']), bias=a['bias'] == '1')
    elif name == 'relu':
        m = nn.ReLU()
    elif name == 'tanh':
        m = nn.Tanh()
    elif name == 'sigmoid':
        m = nn.Sigmoid()
    elif name == 'gelu':
        m = nn.GELU(approximate=parse_args(args, ['approximate'], {'approximate': 'none'})['approximate'])
    elif name == 'leaky_relu':
        m = nn.LeakyReLU(float(parse_args(args, ['negative_slope'], {'negative_slope': '0.01'})['negative_slope']))
    elif name == 'conv2d':
        a = parse_args(args, ['out_channels', 'kernel_size', 'stride', 'padding', 'dilation', 'groups', 'bias'],
                       {'stride': '1', 'padding': '0', 'dilation': '1', 'groups': '1', 'bias': '1'})
        m = nn.Conv2d(shape[0], int(a['out_channels']), int(a['kernel_size']), stride=int(a['stride']),
                      padding=int(a['padding']), dilation=int(a['dilation']), groups=int(a['groups']),
                      bias=a['bias'] == '1')
    elif name in ('maxpool2d', 'avgpool2d'):
        a = parse_args(args, ['kernel_size', 'stride', 'padding'], {'padding': '0'})
        k = int(a['kernel_size'])
        s = int(a.get('stride', k))
        cls = nn.MaxPool2d if name == 'maxpool2d' else nn.AvgPool2d
        m = cls(k, stride=s, padding=int(a['padding']))
    elif name == 'global_avgpool2d':
        m = nn.AdaptiveAvgPool2d(1)
    elif name == 'flatten':
        m = nn.Flatten()
    elif name in ('batchnorm1d', 'batchnorm2d'):
        a = parse_args(args, [], {'eps': '1e-5', 'momentum': '0.1', 'affine': '1'})
        cls = nn.BatchNorm1d if name == 'batchnorm1d' else nn.BatchNorm2d
        m = cls(shape[0], eps=float(a['eps']), momentum=float(a['momentum']), affine=a['affine'] == '1')
    elif name == 'layernorm':
        a = parse_args(args, [], {'eps': '1e-5', 'elementwise_affine': '1'})
        m = nn.LayerNorm(shape[-1], eps=float(a['eps']), elementwise_affine=a['elementwise_affine'] == '1')
    elif name == 'residual':
        body, bshape = build_seq(args, shape)
        shortcut = None
        if tuple(bshape) != tuple(shape):
            if len(shape) == 3:
                s = next(s for s in range(1, shape[1] + 1)
                         if (shape[1] - 1) // s + 1 == bshape[1] and (shape[2] - 1) // s + 1 == bshape[2])
                shortcut = nn.Sequential(nn.Conv2d(shape[0], bshape[0], 1, stride=s))
            else:
                shortcut = nn.Sequential(nn.Linear(shape[-1], bshape[-1]))
        m = Residual(body, shortcut)
    else:
        raise ValueError('unknown layer ' + tok)
    return m, out_shape(m, shape)


def write(out, name, t):
    t = t.detach().reshape(-1)
    if t.dtype in (torch.int64, torch.int32):
        out.write('%s i %d\n' % (name, t.numel()))
        vals = ['%d' % v for v in t.tolist()]
    else:
        out.write('%s f %d\n' % (name, t.numel()))
        vals = ['%.9g' % v for v in t.to(torch.float32).tolist()]
    for i in range(0, len(vals), 10):
        out.write(' '.join(vals[i:i + 10]) + '\n')


# (spec, batch, loss). Each layer alone sits between a 1x1 convolution (or a
# dense layer), whose weight gradient depends on the layer's input gradient,
# and a flatten-dense head, so that its forward and backward are both seen.
CASES = [
    ('2x7x7-conv2d(2,1)-conv2d(4,3)-flatten-4', 3, 'cross_entropy'),
    ('2x8x8-conv2d(2,1)-conv2d(6,3,stride=2,padding=1)-flatten-4', 3, 'cross_entropy'),
    ('2x9x9-conv2d(2,1)-conv2d(4,3,padding=2,dilation=2)-flatten-4', 2, 'cross_entropy'),
    ('4x6x6-conv2d(4,1)-conv2d(6,3,padding=1,groups=2,bias=0)-flatten-4', 3, 'cross_entropy'),
    ('2x11x11-conv2d(2,1)-conv2d(3,5,stride=3,padding=2)-flatten-4', 2, 'cross_entropy'),
    ('4x5x5-conv2d(4,1)-conv2d(4,1,groups=4)-conv2d(3,2,stride=2,bias=0)-flatten-4', 3, 'cross_entropy'),
    ('3x6x6-conv2d(3,1)-maxpool2d(2)-flatten-4', 3, 'cross_entropy'),
    ('3x7x7-conv2d(3,1)-maxpool2d(3,stride=2,padding=1)-flatten-4', 3, 'cross_entropy'),
    ('2x9x9-conv2d(2,1)-maxpool2d(4,stride=3,padding=2)-flatten-4', 2, 'cross_entropy'),
    # Max pooling run by the convolution before it (through its activation), odd sizes, overlapping
    # last four outputs of a row (7 wide), and after a batch normalisation (not fused).
    ('3x11x11-conv2d(4,3)-relu-maxpool2d(2)-flatten-4', 3, 'cross_entropy'),
    ('2x14x14-conv2d(3,3,padding=1)-tanh-maxpool2d(2)-flatten-4', 3, 'cross_entropy'),
    ('2x10x10-conv2d(3,3)-sigmoid-maxpool2d(2)-conv2d(2,1)-flatten-3', 3, 'mse'),
    ('2x9x9-conv2d(3,1)-leaky_relu(0.2)-maxpool2d(2)-conv2d(2,3,padding=1)-relu-maxpool2d(3,stride=1)-flatten-3',
     3, 'cross_entropy'),
    ('3x7x7-conv2d(3,1)-batchnorm2d-maxpool2d(2)-flatten-4', 3, 'cross_entropy'),
    ('3x6x6-conv2d(3,1)-avgpool2d(2)-flatten-4', 3, 'cross_entropy'),
    ('3x7x7-conv2d(3,1)-avgpool2d(3,stride=2,padding=1)-flatten-4', 3, 'cross_entropy'),
    ('3x5x5-conv2d(3,1)-global_avgpool2d-flatten-4', 3, 'cross_entropy'),
    ('3x5x5-conv2d(3,1)-batchnorm2d-flatten-4', 4, 'cross_entropy'),
    ('3x4x4-conv2d(3,1)-batchnorm2d(eps=0.001,momentum=0.3)-relu-flatten-4', 4, 'cross_entropy'),
    ('3x4x4-conv2d(3,1)-batchnorm2d(affine=0)-flatten-4', 4, 'mse'),
    ('12-8-batchnorm1d-4', 6, 'cross_entropy'),
    ('3x6-dense(5)-batchnorm1d(momentum=0.5)-flatten-4', 4, 'cross_entropy'),
    ('12-8-layernorm-4', 5, 'cross_entropy'),
    ('12-8-layernorm(eps=0.01,elementwise_affine=0)-tanh-4', 5, 'mse'),
    ('3x6x6-conv2d(3,1)-residual(conv2d(3,3,padding=1)-relu-conv2d(3,3,padding=1))-flatten-4', 2, 'cross_entropy'),
    ('3x6x6-conv2d(3,1)-residual(conv2d(5,3,stride=2,padding=1))-flatten-4', 2, 'cross_entropy'),
    ('10-8-residual(6-relu)-residual(tanh-8)-4', 3, 'cross_entropy'),
    # Whole networks: the CNN (smaller images), a residual CNN with batch norm, a mixed one.
    ('1x12x12-conv2d(8,3,padding=1)-relu-maxpool2d(2)-conv2d(16,3,padding=1)-relu-maxpool2d(2)-flatten-32-relu-10',
     4, 'cross_entropy'),
    ('3x8x8-conv2d(8,3,padding=1)-batchnorm2d-relu-residual(conv2d(8,3,padding=1)-batchnorm2d-relu-'
     'conv2d(8,3,padding=1)-batchnorm2d)-relu-residual(conv2d(16,3,stride=2,padding=1)-batchnorm2d-relu-'
     'conv2d(16,3,padding=1)-batchnorm2d)-relu-global_avgpool2d-flatten-10', 4, 'cross_entropy'),
    ('1x10x10-conv2d(6,3)-batchnorm2d-relu-avgpool2d(2)-flatten-layernorm-16-gelu-batchnorm1d-5', 5, 'mse'),
]


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else 'tests/data/parity_layers.txt.gz'
    torch.set_num_threads(1)
    with gzip.open(path, 'wt', compresslevel=9) as out:
        out.write('# PyTorch %s reference for test_layers.c; generated by tests/gen_layers.py\n' % torch.__version__)
        for ci, (spec, batch, loss_kind) in enumerate(CASES):
            torch.manual_seed(1000 + ci)
            arch = spec.split(':')[0]
            first, rest = arch.split('-', 1)
            shape = tuple(int(d) for d in first.split('x'))
            model, oshape = build_seq(rest, shape)
            with torch.no_grad():
                for mod in model.modules():
                    if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                        if mod.affine:
                            mod.weight.uniform_(0.5, 1.5)
                            mod.bias.uniform_(-0.5, 0.5)
                        mod.running_mean.uniform_(-0.5, 0.5)
                        mod.running_var.uniform_(0.5, 2.0)
                        mod.num_batches_tracked.fill_(3)
                    if isinstance(mod, nn.LayerNorm) and mod.elementwise_affine:
                        mod.weight.uniform_(0.5, 1.5)
                        mod.bias.uniform_(-0.5, 0.5)
            x = torch.randn((batch,) + shape)
            out.write('case %d %s %s\n' % (batch, loss_kind, spec))
            write(out, 'x', x)
            positions = 1
            for d in oshape[:-1]:
                positions *= d
            if loss_kind == 'cross_entropy':
                labels = torch.randint(0, oshape[-1], (batch * positions,))
                write(out, 'labels', labels)
            else:
                targets = torch.rand((batch,) + oshape)
                write(out, 'targets', targets)
            for name, t in model.state_dict().items():
                write(out, 'init.' + name, t)
            model.train()
            y = model(x)
            if loss_kind == 'cross_entropy':
                loss = nn.functional.cross_entropy(y.reshape(-1, oshape[-1]), labels)
            else:
                loss = nn.functional.mse_loss(y, targets)
            loss.backward()
            write(out, 'out', y)
            write(out, 'loss', loss.reshape(1))
            for name, p in model.named_parameters():
                write(out, 'grad.' + name, p.grad)
            for name, b in model.named_buffers():
                write(out, 'after.' + name, b)
            model.eval()
            with torch.no_grad():
                write(out, 'eval_out', model(x))
            out.write('end\n')
            print('case %2d: loss %.6f  %s' % (ci, loss.item(), spec))
    print('wrote', path)


if __name__ == '__main__':
    main()
