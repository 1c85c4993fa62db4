#!/usr/bin/python3
"""Reference trajectories of the optimizers beyond torch.optim, in the format
of tests/data/golden/README.md (files optim__NAME.txt), for sgdlab-golden.

The learning-rate-free methods are run through their authors' own code, in
float64, with Debian's python3-torch 1.13:

  sgd_sf, adamw_sf   facebookresearch/schedule_free  (SGDScheduleFree, AdamWScheduleFree, foreach=False)
  prodigy            konstmish/prodigy               (prodigyopt.Prodigy)
  dadapt_adam/_sgd   facebookresearch/dadaptation    (DAdaptAdam, DAdaptSGD)
  dog                formll/dog                      (dog.DoG)
  lion               google/automl lion/lion_pytorch.py when --lion-ref is given

None of that code is in this project: give the directory that holds the
packages (schedulefree/, prodigyopt/, dadaptation/, dog/) with --ref. All of
them import and run unchanged on torch 1.13 (no port was needed).

LAMB and LARS have no reference code from their authors in PyTorch; they are
transcribed here from the papers (You et al. 2019, Algorithm 2 with phi the
identity; You et al. 2017, Algorithm 1), in float64, one trust ratio per
parameter tensor. Lion without --lion-ref is transcribed from Chen et al.
2023, Algorithm 2.

Extensions of the format that sgdlab-golden reads (tools/golden/golden_optim.c):
  tensors S_1 ... S_k   after the 'n' line: the arena's tensor sizes (trust ratios per tensor)
  e e_1 ... e_N         after an 'x' line: the parameters at the evaluation point
                        (schedule-free: optimizer.eval(); then optimizer.train() before the next step)

Usage: /usr/bin/python3 tests/gen_beyond_fixtures.py --ref DIR [--lion-ref DIR] OUTDIR
"""
import argparse
import math
import os
import sys

import torch

torch.set_default_dtype(torch.float64)

N = 7
STEPS = 40


def start():
    g = torch.Generator().manual_seed(1234)
    x0 = torch.randn(N, generator=g, dtype=torch.float64)
    c = torch.rand(N, generator=g, dtype=torch.float64) * 4 + 0.5
    t = torch.randn(N, generator=g, dtype=torch.float64)
    return x0, c, t


def grad_at(x, c, t):
    # f(x) = sum c (x - t)^2 / 2 + 0.1 sum sin(3 x)
    return c * (x - t) + 0.3 * torch.cos(3 * x)


def fmt(v):
    return ' '.join('%.17g' % float(a) for a in v)


def write(path, kind, spec, lines, header_extra=()):
    with open(path, 'w') as f:
        f.write('# sgdlab golden optimizer trajectory; reference: %s, float64, torch %s\n' % (kind, torch.__version__))
        for h in header_extra:
            f.write('# %s\n' % h)
        f.write(spec + '\n')
        for line in lines:
            f.write(line + '\n')


def run(step_fn, sizes, lr, dtype, feed=None, eval_swap=None):
    """Runs from x0 in `dtype` for STEPS steps: gradients from grad_at (in float64) or, with `feed`, the
    given ones. Returns (lines, xs, es, gs): the fixture's lines, the parameters after each step, the
    evaluation points, the gradients used."""
    x0, c, t = start()
    xs = [p.to(dtype).clone() for p in torch.split(x0.clone(), sizes)]
    lines = ['n %d steps %d' % (N, STEPS)]
    if len(sizes) > 1:
        lines.append('tensors ' + ' '.join(str(s) for s in sizes))
    lines.append('x0 ' + fmt(x0))
    hist, ehist, ghist = [], [], []
    state = step_fn(xs, None, None)
    for k in range(1, STEPS + 1):
        x = torch.cat([v.detach().double() for v in xs])
        g = feed[k - 1] if feed is not None else grad_at(x, c, t)
        ghist.append(g)
        step_fn(xs, [gi.to(dtype) for gi in torch.split(g, sizes)], state)
        lines.append('step %d lr %.17g' % (k, lr))
        lines.append('g ' + fmt(g))
        xk = torch.cat([v.detach().double() for v in xs])
        lines.append('x ' + fmt(xk))
        hist.append(xk)
        if eval_swap is not None:
            eval_swap(state, True)
            ek = torch.cat([v.detach().double() for v in xs])
            lines.append('e ' + fmt(ek))
            ehist.append(ek)
            eval_swap(state, False)
    return lines, hist, ehist, ghist


def torch_opt(make_opt, swap=False):
    """A step function over torch.optim-style optimizer made by make_opt(list of Parameters)."""
    def step_fn(xs, gs, state):
        if state is None:
            params = [torch.nn.Parameter(x) for x in xs]
            xs[:] = params
            opt = make_opt(params)
            if swap:
                opt.train()
            return {'opt': opt}
        for p, g in zip(xs, gs):
            p.grad = g.clone()
        state['opt'].step()
    return step_fn


def torch_swap(state, to_eval):
    if to_eval:
        state['opt'].eval()
    else:
        state['opt'].train()


def transcribed(update):
    def step_fn(xs, gs, state):
        if state is None:
            return {'k': 0, 'st': [dict() for _ in xs]}
        state['k'] += 1
        for x, g, st in zip(xs, gs, state['st']):
            update(x, g, st, state['k'], state['lr'])
    return step_fn


def relerr(a, b):
    return max(((x - y).abs() / x.abs().clamp(min=0.01)).max().item() for x, y in zip(a, b)) if a else 0.0


def fixture(step_maker, sizes, lr, swap=False):
    """The float64 lines, and the worst error of the same code run in float32 on the same gradients."""
    def go(dtype, feed=None):
        orig = step_maker()

        def wrapped(xs, gs, state):
            if state is None:
                st = orig(xs, gs, state)
                st['lr'] = lr
                return st
            return orig(xs, gs, state)
        return run(wrapped, sizes, lr, dtype, feed, torch_swap if swap else None)
    torch.set_default_dtype(torch.float64)
    lines, xs, es, gs = go(torch.float64)
    torch.set_default_dtype(torch.float32)
    _, xs32, es32, _ = go(torch.float32, gs)
    torch.set_default_dtype(torch.float64)
    return lines, max(relerr(xs, xs32), relerr(es, es32))


def lamb_update(beta1, beta2, eps, wd, bias_correction):
    def upd(x, g, st, k, lr):
        if not st:
            st['m'] = torch.zeros_like(x)
            st['v'] = torch.zeros_like(x)
        m, v = st['m'], st['v']
        m.mul_(beta1).add_(g, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        mh = m / (1 - beta1 ** k) if bias_correction else m
        vh = v / (1 - beta2 ** k) if bias_correction else v
        u = mh / (vh.sqrt() + eps) + wd * x
        wn, un = x.norm().item(), u.norm().item()
        r = wn / un if wn > 0 and un > 0 else 1.0
        x.sub_(lr * r * u)
    return upd


def lars_update(momentum, eta, wd, eps):
    def upd(x, g, st, k, lr):
        if not st:
            st['v'] = torch.zeros_like(x)
        wn, gn = x.norm().item(), g.norm().item()
        local = eta * wn / (gn + wd * wn + eps) if wn > 0 and gn > 0 else 1.0
        st['v'].mul_(momentum).add_((g + wd * x) * (lr * local))
        x.sub_(st['v'])
    return upd


def lion_update(beta1, beta2, wd):
    def upd(x, g, st, k, lr):
        if not st:
            st['m'] = torch.zeros_like(x)
        m = st['m']
        x.mul_(1 - lr * wd)
        x.add_(torch.sign(m * beta1 + g * (1 - beta1)), alpha=-lr)
        m.mul_(beta2).add_(g, alpha=1 - beta2)
    return upd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ref', required=True, help='directory holding schedulefree/, prodigyopt/, dadaptation/, dog/')
    ap.add_argument('--lion-ref', help='directory holding lion_pytorch.py (google/automl lion/)')
    ap.add_argument('out')
    a = ap.parse_args()
    sys.path.insert(0, a.ref)
    import schedulefree
    import prodigyopt
    import dadaptation
    import dog

    out = a.out
    os.makedirs(out, exist_ok=True)

    def emit(name, ref, spec, made):
        lines, err32 = made
        write(os.path.join(out, 'optim__%s.txt' % name), ref, 'optimizer ' + spec, lines,
              ["the reference's own float32 run, fed the same gradients, stays within %.2g of these values" % err32])
        print('%-24s float32 reference within %.2g' % (name, err32))

    one = [N]
    two = [3, 4]
    SF = schedulefree

    # schedule-free: the x lines are y (where gradients are taken), the e lines x (the evaluation point)
    emit('sgd_sf_default', 'facebookresearch/schedule_free SGDScheduleFree', 'sgd_sf lr=0.050000000000000003',
         fixture(lambda: torch_opt(lambda p: SF.SGDScheduleFree(p, lr=0.05, foreach=False), True), one, 0.05, True))
    emit('sgd_sf_warmup_wd', 'facebookresearch/schedule_free SGDScheduleFree',
         'sgd_sf lr=0.029999999999999999 momentum=0.80000000000000004 warmup_steps=5 r=0.5 weight_decay=0.01',
         fixture(lambda: torch_opt(lambda p: SF.SGDScheduleFree(p, lr=0.03, momentum=0.8, warmup_steps=5, r=0.5,
                                                                weight_decay=0.01, foreach=False), True),
                 one, 0.03, True))
    emit('adamw_sf_default', 'facebookresearch/schedule_free AdamWScheduleFree', 'adamw_sf lr=0.02',
         fixture(lambda: torch_opt(lambda p: SF.AdamWScheduleFree(p, lr=0.02, foreach=False), True), one, 0.02, True))
    emit('adamw_sf_warmup_wd', 'facebookresearch/schedule_free AdamWScheduleFree',
         'adamw_sf lr=0.050000000000000003 beta1=0.80000000000000004 beta2=0.98999999999999999 warmup_steps=5 '
         'weight_lr_power=1 weight_decay=0.050000000000000003',
         fixture(lambda: torch_opt(lambda p: SF.AdamWScheduleFree(p, lr=0.05, betas=(0.8, 0.99), warmup_steps=5,
                                                                  weight_lr_power=1.0, weight_decay=0.05,
                                                                  foreach=False), True), one, 0.05, True))
    # prodigy: d grows geometrically from d0 = 1e-6 on this problem, and there even the reference's own
    # float32 run drifts from its float64 run by 0.5 within 40 steps: the fixtures start from d0 = 1e-2
    emit('prodigy_d0', 'konstmish/prodigy Prodigy', 'prodigy lr=1 d0=0.01',
         fixture(lambda: torch_opt(lambda p: prodigyopt.Prodigy(p, lr=1.0, d0=1e-2)), one, 1.0))
    emit('prodigy_options', 'konstmish/prodigy Prodigy',
         'prodigy lr=0.5 beta1=0 beta3=0.94999999999999996 decouple=0 weight_decay=0.01 use_bias_correction=1 '
         'safeguard_warmup=1 d_coef=0.5 growth_rate=1.02',
         fixture(lambda: torch_opt(lambda p: prodigyopt.Prodigy(p, lr=0.5, betas=(0.0, 0.999), beta3=0.95,
                                                                decouple=False, weight_decay=0.01,
                                                                use_bias_correction=True, safeguard_warmup=True,
                                                                d_coef=0.5, growth_rate=1.02)), one, 0.5))
    emit('prodigy_decoupled', 'konstmish/prodigy Prodigy',
         'prodigy lr=1 weight_decay=0.10000000000000001 d0=0.029999999999999999',
         fixture(lambda: torch_opt(lambda p: prodigyopt.Prodigy(p, lr=1.0, weight_decay=0.1, d0=3e-2)), one, 1.0))
    # D-Adaptation
    DA = dadaptation
    emit('dadapt_adam_default', 'facebookresearch/dadaptation DAdaptAdam', 'dadapt_adam lr=1',
         fixture(lambda: torch_opt(lambda p: DA.DAdaptAdam(p, lr=1.0)), one, 1.0))
    emit('dadapt_adam_options', 'facebookresearch/dadaptation DAdaptAdam',
         'dadapt_adam lr=0.5 beta1=0.80000000000000004 decouple=1 weight_decay=0.050000000000000003 '
         'use_bias_correction=1 growth_rate=1.05',
         fixture(lambda: torch_opt(lambda p: DA.DAdaptAdam(p, lr=0.5, betas=(0.8, 0.999), decouple=True,
                                                           weight_decay=0.05, use_bias_correction=True,
                                                           growth_rate=1.05)), one, 0.5))
    emit('dadapt_adam_l2', 'facebookresearch/dadaptation DAdaptAdam', 'dadapt_adam lr=1 weight_decay=0.01',
         fixture(lambda: torch_opt(lambda p: DA.DAdaptAdam(p, lr=1.0, weight_decay=0.01)), one, 1.0))
    emit('dadapt_sgd_default', 'facebookresearch/dadaptation DAdaptSGD', 'dadapt_sgd lr=1',
         fixture(lambda: torch_opt(lambda p: DA.DAdaptSGD(p, lr=1.0)), one, 1.0))
    emit('dadapt_sgd_options', 'facebookresearch/dadaptation DAdaptSGD',
         'dadapt_sgd lr=0.5 momentum=0.90000000000000002 weight_decay=0.01 growth_rate=1.1000000000000001',
         fixture(lambda: torch_opt(lambda p: DA.DAdaptSGD(p, lr=0.5, momentum=0.9, weight_decay=0.01,
                                                          growth_rate=1.1)), one, 0.5))
    # DoG
    emit('dog_default', 'formll/dog DoG', 'dog lr=1', fixture(lambda: torch_opt(lambda p: dog.DoG(p, lr=1.0)), one, 1.0))
    emit('dog_init_eta_wd', 'formll/dog DoG', 'dog lr=0.5 reps_rel=0.0001 init_eta=0.001 weight_decay=0.01',
         fixture(lambda: torch_opt(lambda p: dog.DoG(p, lr=0.5, reps_rel=1e-4, init_eta=1e-3, weight_decay=0.01)),
                 one, 0.5))
    # lion
    lion_spec2 = 'lion lr=0.01 beta1=0.94999999999999996 beta2=0.97999999999999998 weight_decay=0.10000000000000001'
    if a.lion_ref:
        sys.path.insert(0, a.lion_ref)
        import lion_pytorch
        emit('lion_default', 'google/automl lion/lion_pytorch.py Lion', 'lion lr=0.001',
             fixture(lambda: torch_opt(lambda p: lion_pytorch.Lion(p, lr=1e-3)), one, 1e-3))
        emit('lion_wd', 'google/automl lion/lion_pytorch.py Lion', lion_spec2,
             fixture(lambda: torch_opt(lambda p: lion_pytorch.Lion(p, lr=0.01, betas=(0.95, 0.98), weight_decay=0.1)),
                     one, 0.01))
    else:
        emit('lion_default', 'Chen et al. 2023 Algorithm 2 (transcribed)', 'lion lr=0.001',
             fixture(lambda: transcribed(lion_update(0.9, 0.99, 0.0)), one, 1e-3))
        emit('lion_wd', 'Chen et al. 2023 Algorithm 2 (transcribed)', lion_spec2,
             fixture(lambda: transcribed(lion_update(0.95, 0.98, 0.1)), one, 0.01))
    # LAMB, LARS: one trust ratio per tensor
    emit('lamb_default', 'You et al. 2019 Algorithm 2 (transcribed)', 'lamb lr=0.01',
         fixture(lambda: transcribed(lamb_update(0.9, 0.999, 1e-6, 0.0, True)), two, 0.01))
    emit('lamb_wd_nobc', 'You et al. 2019 Algorithm 2 (transcribed)',
         'lamb lr=0.02 weight_decay=0.01 bias_correction=0 eps=1e-08',
         fixture(lambda: transcribed(lamb_update(0.9, 0.999, 1e-8, 0.01, False)), two, 0.02))
    emit('lars_default', 'You et al. 2017 Algorithm 1 (transcribed)', 'lars lr=1',
         fixture(lambda: transcribed(lars_update(0.9, 1e-3, 0.0, 0.0)), two, 1.0))
    emit('lars_wd', 'You et al. 2017 Algorithm 1 (transcribed)',
         'lars lr=2 momentum=0.5 eta=0.01 weight_decay=0.0050000000000000001',
         fixture(lambda: transcribed(lars_update(0.5, 1e-2, 5e-3, 0.0)), two, 2.0))


if __name__ == '__main__':
    main()
