#!/usr/bin/env python3
"""libsgdlab inside a PyTorch loop: a schedule spec driving torch.optim.SGD, and
the guard rescuing a learning rate that is too high.

    python3 torch_demo.py  (needs python3-torch; says so and exits 0 without it)
"""
import math
import sys

try:
    import torch
except ImportError:
    print('torch_demo: torch is not installed; nothing to show')
    sys.exit(0)

import sgdlab.torch as sgt

torch.manual_seed(0)
torch.set_num_threads(1)
n = 512
t = torch.rand(n) * 3 + 0.3
c = torch.randint(0, 3, (n,))
a = t * 2.5 + c * (2 * math.pi / 3)
x = torch.stack([t * torch.cos(a), t * torch.sin(a)], 1) + 0.05 * torch.randn(n, 2)

model = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                            torch.nn.Linear(64, 3))
opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)           # too high for this net
sched = sgt.LRScheduler(opt, 'cosine:T_max=600')
guard = sgt.Guard(model, opt, scheduler=sched, on_event=lambda d: d.message and print('guard:', d.message))
loss_fn = torch.nn.CrossEntropyLoss()
for step in range(600):
    idx = torch.randint(0, n, (64,))
    opt.zero_grad()
    loss = loss_fn(model(x[idx]), c[idx])
    loss.backward()
    if guard.step(loss):
        opt.step()
    sched.step()
with torch.no_grad():
    acc = (model(x).argmax(1) == c).float().mean().item()
print('accuracy %.3f after 600 steps, %d rescue(s), lr now %.3g' % (acc, guard.rescues, sched.get_last_lr()[0]))
