#!/usr/bin/env python3
"""Tests of `sgdlab train`, `sgdlab lr-find` and `sgdlab sweep` as a user runs
them: help, argument errors that name the argument, the spirals data (no
files), the guard on and off, JSON and CSV, checkpoints, plots (with and
without gnuplot), the message for a missing Fashion-MNIST, IDX files, and one
short Fashion-MNIST sweep when the dataset is installed.

usage: test_cli_train.py SGDLAB_EXE
"""
import csv
import io
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cliutil import Cli  # noqa: E402

EXE = os.path.abspath(sys.argv[1])
TMP = tempfile.mkdtemp(prefix='sgdlab-cli-train-')
FMNIST = '/usr/share/datasets/fashion-mnist'
cli = Cli(EXE, TMP)
check, run, run_json = cli.check, cli.run, cli.run_json


# ---------------------------------------------------------------- help
for cmd, words in [('train', ['--guard', '--save', '--plot', '--epochs']),
                   ('lr-find', ['steepest', 'valley', '--lr-max']),
                   ('sweep', ['--lrs', '--random', 'gnuplot-nox', 'cosine'])]:
    rc, out, err = run([cmd, '--help'])
    check(rc == 0, '%s --help: exit %d' % (cmd, rc))
    for w in words:
        check(w in out, '%s --help mentions %s' % (cmd, w))
rc, out, err = run(['case', '--help'])
check(rc == 0 and 'case image' in out and '--high-lr' in out and 'warmup' in out, 'case --help: %d' % rc)
rc, out, err = run(['case'])
check(rc == 2 and 'case image' in err, 'case without a name: %d %r' % (rc, err))
rc, out, err = run(['case', 'audio'])
check(rc == 2 and "unknown case 'audio'" in err, 'case audio: %d %r' % (rc, err))
rc, out, err = run(['case', 'image', '--high-lr', '-1'])
check(rc == 2 and '--high-lr' in err, 'case --high-lr -1: %d %r' % (rc, err))
rc, out, err = run(['case', 'image', '--model', '784-relu-frob'])
check(rc == 2 and 'frob' in err, 'case --model bad: %d %r' % (rc, err))
rc, out, err = run(['--help'])
for cmd in ['train', 'lr-find', 'sweep', 'case']:
    check(cmd in out, 'sgdlab --help lists %s' % cmd)

# ---------------------------------------------------------------- argument errors name the argument
bad = [
    (['train', '--epochs', 'x'], '--epochs'),
    (['train', '--epochs', '0'], '--epochs'),
    (['train', '--batch-size', '-3'], '--batch-size'),
    (['train', '--lr', 'nan'], '--lr'),
    (['train', '--guard-factor', '2'], '--guard-factor'),
    (['train', '--plot', 'out.txt'], '--plot'),
    (['train', '--bogus'], '--bogus'),
    (['train', '--guard=1'], '--guard'),
    (['train', '--epochs'], '--epochs'),
    (['train', 'stray'], 'stray'),
    (['train', '--data', 'spirals', '--optim', 'lbfgs'], '--optim'),
    (['train', '--data', 'spirals', '--optim', 'sgd:lr=-1'], '--optim'),
    (['train', '--data', 'spirals', '--model', '2-x-3'], '--model'),
    (['train', '--data', 'spirals', '--model', '784-10'], 'features'),
    (['train', '--data', 'spirals', '--schedule', 'cosine:T_max=0'], '--schedule'),
    (['train', '--data', 'spirals', '--trainer', 'epochs=1,nope=2'], '--trainer'),
    (['train', '--data', 'spirals', '--monitor', 'spike_ratio=0.5'], '--monitor'),
    (['train', '--data', 'nowhere.gz,nothing.gz'], '--data'),
    (['train', '--data', 'a,b,c'], '--data'),
    (['train', '--json', '--csv'], '--json'),
    (['lr-find', '--lr-max', '-1'], '--lr-max'),
    (['lr-find', '--lr-min', '1', '--lr-max', '0.1'], '--lr-max'),
    (['lr-find', '--method', 'best'], '--method'),
    (['lr-find', '--steps', '2'], '--steps'),
    (['sweep', '--lrs', '0.1,abc'], '--lrs'),
    (['sweep', '--lrs', '0.1,,0.2'], '--lrs'),
    (['sweep', '--momenta', '0.5,1.5'], '--momenta'),
    (['sweep', '--batch-sizes', '0'], '--batch-sizes'),
    (['sweep', '--points', '0'], '--points'),
    (['sweep', '--threads', '1000'], '--threads'),
    (['sweep', '--plot', 'x.jpg'], '--plot'),
    (['sweep', '--lr-min', '1', '--lr-max', '0.1'], '--lr-max'),
    (['sweep', '--random', '3', '--lrs', '0.1'], '--random'),
]
for args, name in bad:
    rc, out, err = run(args)
    check(rc == 2, '%s: exit 2 (got %d; %s)' % (' '.join(args), rc, err.strip()[:200]))
    check(name in err, '%s: the message names %s: %r' % (' '.join(args), name, err.strip()[:300]))
    check(out == '', '%s: nothing on stdout' % ' '.join(args))

# ---------------------------------------------------------------- train on spirals
rc, res, err = run_json(['train', '--data', 'spirals', '--epochs', '6', '--optim', 'adam:lr=0.01'])
check(rc == 0, 'train spirals: exit 0 (%s)' % err)
if res:
    check(len(res['epochs']) == 6, 'train spirals: 6 epochs')
    check(res['result']['stop_reason'] == 'completed', 'train spirals: completed')
    check(res['result']['test_accuracy'] > 0.9, 'train spirals: accuracy %s' % res['result']['test_accuracy'])
    check(res['epochs'][-1]['val_loss'] < res['epochs'][0]['val_loss'], 'train spirals: validation loss falls')
    check(res['result']['rescues'] == 0, 'train spirals: no rescue')

rc, out, err = run(['train', '--data', 'spirals', '--epochs', '2', '--optim', 'adam', '--csv'])
rows = list(csv.DictReader(io.StringIO(out)))
check(rc == 0 and len(rows) == 2, 'train --csv: two rows (%d, %s)' % (rc, out[:200]))
check(rows and set(['epoch', 'train_loss', 'val_accuracy', 'rescues']) <= set(rows[0]), 'train --csv: columns')

rc, out, err = run(['train', '--data', 'spirals', '--epochs', '3', '--optim', 'adam'])
check(rc == 0, 'train table: exit 0')
check('epoch  train loss  test loss  test acc' in out, 'train table: header')
check('result: completed' in out, 'train table: result line')

# The guard: SGD at lr 30 is rescued (each rescue reported); without it the run diverges.
rc, res, err = run_json(['train', '--data', 'spirals', '--epochs', '4', '--optim', 'sgd', '--lr', '30'])
check(rc == 0, 'guarded lr 30: exit 0 (%s)' % err)
if res:
    r = res['result']
    rescues = [e for e in res['events'] if e['kind'] == 'rescue']
    check(r['rescues'] >= 2 and len(rescues) == r['rescues'], 'guarded lr 30: rescues reported (%s)' % r)
    check(all('rolled back to step' in e['message'] for e in rescues), 'rescue messages')
    check(r['guard_scale'] == 0.5 ** r['rescues'], 'guard scale halves per rescue')
    check(r['test_loss'] is not None, 'guarded lr 30: a finite test loss')

rc, out, err = run(['train', '--data', 'spirals', '--epochs', '4', '--optim', 'sgd', '--lr', '30', '--no-guard'])
check(rc == 1, 'unguarded lr 30: exit 1 (got %d)' % rc)
check('divergence' in out and 'diverged' in out, 'unguarded lr 30: the divergence is reported: %r' % out[-600:])
check('train with the guard on' in out, 'unguarded lr 30: the message says what to do')

rc, out, err = run(['train', '--data', 'spirals', '--optim', 'sgd', '--lr', '1e5', '--max-rescues', '2'])
check(rc == 1, 'give up: exit 1')
check('giving up' in out and 'after 2 rescues' in out, 'give up: message: %r' % out[-500:])

# Checkpoints: --save writes one that sgdlab inspect validates, --resume reads it.
ck = os.path.join(TMP, 'spirals.ckpt')
rc, out, err = run(['train', '--data', 'spirals', '--epochs', '2', '--optim', 'adam', '--save', ck])
check(rc == 0 and os.path.exists(ck), 'train --save: written (%s)' % err)
check(('saved: ' + ck) in out, 'train --save: says where')
rc, out, err = run(['inspect', ck])
check(rc == 0, 'inspect the saved checkpoint: exit %d (%s)' % (rc, err))
for section in ["'model'", "'optim'", "'monitor'", "'trainer'"]:
    check(section in out, 'checkpoint has section %s' % section)
rc, out, err = run(['train', '--data', 'spirals', '--epochs', '2', '--optim', 'adam', '--resume', ck])
check(rc == 0 and 'resumed from' in out and 'at step 48' in out, 'train --resume: %r %r' % (out[:400], err))
rc, out, err = run(['train', '--data', 'spirals', '--epochs', '3', '--optim', 'adam', '--resume', ck])
check(rc == 2 and '--resume' in err and 'epochs' in err, 'resume with other options: refused naming why: %r' % err)

# An interrupted run resumes bit for bit: stop at step 30 (mid-epoch), save,
# resume to the end; every tensor of every section equals the uninterrupted run's
# (read with the independent reader, tests/read_checkpoint.py).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import read_checkpoint  # noqa: E402

part, resumed, whole = (os.path.join(TMP, n) for n in ('part.ckpt', 'resumed.ckpt', 'whole.ckpt'))
base = ['train', '--data', 'spirals', '--epochs', '2', '--optim', 'adam', '--schedule', 'cosine:T_max=48']
rc, out, err = run(base + ['--max-steps', '30', '--save', part])
check(rc == 0 and 'budget after 30 steps' in out, 'stop at 30: %r %r' % (out[-300:], err))
rc, out, err = run(base + ['--resume', part, '--save', resumed])
check(rc == 0 and 'at step 30' in out, 'resume at 30: %r %r' % (out[:300], err))
rc, out, err = run(base + ['--save', whole])
check(rc == 0, 'uninterrupted run: %r' % err)
with open(resumed, 'rb') as f:
    a = read_checkpoint.read(f.read())
with open(whole, 'rb') as f:
    b = read_checkpoint.read(f.read())
names = [(s.name, t.name) for s in a.sections for t in s.tensors]
check(names == [(s.name, t.name) for s in b.sections for t in s.tensors], 'same tensors in both checkpoints')


def timeless(section, tensor):
    """The tensor's bytes; for the trainer state, without the wall-clock seconds of each
    epoch record (docs/trainer.md: records of 64 bytes from offset 792, seconds at +56)."""
    raw = bytearray(tensor.raw)
    if (section, tensor.name) == ('trainer', 'state'):
        for e in range(2):
            raw[792 + 64 * e + 56:792 + 64 * e + 64] = bytes(8)
    return bytes(raw)


diff = [(sa.name, ta.name) for sa, sb in zip(a.sections, b.sections) for ta, tb in zip(sa.tensors, sb.tensors)
        if timeless(sa.name, ta) != timeless(sb.name, tb)]
check(not diff, 'resumed run equals the uninterrupted one bit for bit; differs in %s' % diff[:5])

# ---------------------------------------------------------------- lr-find
rc, res, err = run_json(['lr-find', '--data', 'spirals', '--optim', 'adam'])
check(rc == 0, 'lr-find spirals: exit 0 (%s)' % err)
if res:
    s = res['suggestions']
    check(res['method'] == 'steepest' and res['suggestion'] == s['steepest']['lr'], 'lr-find: the default is steepest')
    for k in ['steepest', 'minimum', 'valley']:
        check(s[k]['lr'] is not None and 1e-6 < s[k]['lr'] < 10, 'lr-find: %s %s' % (k, s[k]))
    check(len(res['curve']) == res['points'] > 10, 'lr-find: the whole curve')
    check(res['end'] in ('the smoothed loss passed 4x its best', 'the loss was no longer finite', 'all steps taken'),
          'lr-find: end %s' % res['end'])
rc, out, err = run(['lr-find', '--data', 'spirals', '--optim', 'adam'])
check(rc == 0 and 'suggested learning rate:' in out and 'curve' in out, 'lr-find table')
rc, out, err = run(['lr-find', '--data', 'spirals', '--optim', 'adam', '--csv'])
check(rc == 0 and out.startswith('step,lr,loss,smoothed,fit,slope'), 'lr-find --csv')
rc, out, err = run(['lr-find', '--data', 'spirals', '--lr-min', '1e-12', '--lr-max', '1e-11', '--steps', '20'])
check(rc == 1 and 'did not fall' in out, 'lr-find without descent: exit 1 and why: %r' % out[:500])

# ---------------------------------------------------------------- sweep
rc, res, err = run_json(['sweep', '--data', 'spirals', '--lrs', '1e-5,0.1,1e4', '--epochs', '8',
                         '--schedule', 'constant', '--no-plot', '--threads', '2'])
check(rc == 0, 'sweep spirals: exit 0 (%s)' % err)
if res:
    v = [t['verdict'] for t in res['trials']]
    check(v[0] == 'stagnant' and v[1] == 'healthy' and v[2] == 'diverged', 'sweep verdicts %s' % v)
    check(res['trials'][2]['steps'] < 10, 'sweep: the diverged trial stopped early')
    check(res['best'] == 1, 'sweep: best %s' % res['best'])
    check(res['trials'][1]['val_accuracy'] > 0.8, 'sweep: the good rate learns')
rc, out, err = run(['sweep', '--data', 'spirals', '--lrs', '1e-5,0.1,1e4', '--epochs', '8', '--schedule', 'constant',
                    '--no-plot', '--csv'])
rows = list(csv.DictReader(io.StringIO(out)))
check(rc == 0 and len(rows) == 3 and rows[1]['best'] == '1', 'sweep --csv')
rc, out, err = run(['sweep', '--data', 'spirals', '--random', '4', '--optim', 'sgd', '--optim', 'adam',
                    '--steps', '60', '--no-plot'])
check(rc == 0 and 'random search: 4 trials' in out and 'optimizer' in out, 'sweep --random: table %r' % out[:600])
rc, out, err = run(['sweep', '--data', 'spirals', '--lrs', '0.1', '--optim', 'adagrad', '--momenta', '0.9',
                    '--no-plot'])
check(rc == 2 and 'adagrad' in err, 'sweep: momentum for adagrad refused: %r' % err)

# ---------------------------------------------------------------- plots
if shutil.which('gnuplot'):
    for cmd in (['train', '--data', 'spirals', '--epochs', '2', '--optim', 'sgd', '--lr', '30'],
                ['lr-find', '--data', 'spirals'],
                ['sweep', '--data', 'spirals', '--lrs', '0.01,1e4', '--steps', '50']):
        for ext in ('svg', 'png'):
            path = os.path.join(TMP, '%s.%s' % (cmd[0], ext))
            rc, out, err = run(cmd + ['--plot', path, '--no-progress'])
            check(rc == 0 and os.path.getsize(path) > 1000 if os.path.exists(path) else False,
                  '%s --plot %s: written (%d, %s)' % (cmd[0], ext, rc, err))
            check(('plot: ' + path) in out, '%s --plot %s: says where' % (cmd[0], ext))
            with open(path, 'rb') as f:
                head = f.read(200)
            check((b'<svg' in head) if ext == 'svg' else head.startswith(b'\x89PNG'), '%s: a real %s' % (cmd[0], ext))
    # The sweep's default plot file, in the current directory.
    rc, out, err = run(['sweep', '--data', 'spirals', '--lrs', '0.01', '--steps', '20'])
    check(rc == 0 and 'plot: sgdlab-sweep.svg' in out and os.path.exists(os.path.join(TMP, 'sgdlab-sweep.svg')),
          'sweep: default plot written')
# Without gnuplot: a clear message naming the package, results still printed.
nognu = {'PATH': os.path.join(TMP, 'empty-path')}
os.makedirs(nognu['PATH'], exist_ok=True)
rc, out, err = run(['train', '--data', 'spirals', '--epochs', '1', '--plot', os.path.join(TMP, 'n.svg')], env=nognu)
check(rc == 1 and 'gnuplot-nox' in err and 'result:' in out, 'train --plot without gnuplot: %d %r' % (rc, err))
rc, out, err = run(['sweep', '--data', 'spirals', '--lrs', '0.01', '--steps', '20'], env=nognu)
check(rc == 0 and 'gnuplot-nox' in out, 'sweep (default plot) without gnuplot: %d %r' % (rc, out[-300:]))

# ---------------------------------------------------------------- data
empty = os.path.join(TMP, 'no-fmnist')
os.makedirs(empty, exist_ok=True)
rc, out, err = run(['train'], env={'SGDLAB_FASHION_MNIST_DIR': empty})
check(rc == 2 and 'dataset-fashion-mnist' in err and '--data' in err, 'missing Fashion-MNIST: %r' % err)

if os.path.exists(os.path.join(FMNIST, 't10k-images-idx3-ubyte.gz')):
    # IDX files by name: the test set as training data, 2000 rows split off for validation.
    files = ','.join(os.path.join(FMNIST, f) for f in ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'])
    rc, res, err = run_json(['train', '--data', files, '--epochs', '1', '--optim', 'adam', '--val-split', '2000'])
    check(rc == 0 and res and res['epochs'][0]['val_accuracy'] > 0.6, 'train on IDX files (%s)' % err)
    # One short Fashion-MNIST sweep: a rate that learns and one that diverges.
    rc, res, err = run_json(['sweep', '--lrs', '0.05,10', '--steps', '100', '--no-plot'])
    check(rc == 0, 'fashion-mnist sweep: exit 0 (%s)' % err)
    if res:
        v = [t['verdict'] for t in res['trials']]
        check(v[1] == 'diverged' and v[0] != 'diverged', 'fashion-mnist sweep verdicts %s' % v)
        check(res['trials'][0]['val_accuracy'] > 0.6, 'fashion-mnist sweep: lr 0.05 learns in 100 steps')
    # A CNN on 1x28x28 images through train, and its spec errors naming layer and argument.
    cnn = '1x28x28-conv2d(8,3,padding=1)-relu-maxpool2d(2)-flatten-10'
    rc, res, err = run_json(['train', '--model', cnn, '--max-steps', '30', '--epochs', '1', '--optim', 'adam'])
    check(rc == 0 and res and res['result']['test_accuracy'] > 0.5, 'train a CNN: %d %s' % (rc, err[-300:]))
    rc, out, err = run(['train', '--model', '1x28x28-conv2d(8,31)-flatten-10'])
    check(rc == 2 and 'conv2d' in err and 'kernel_size=31' in err and '1x28x28' in err, 'CNN too-large kernel: %r' % err)
    rc, out, err = run(['train', '--model', '1x28x28-conv2d(8,3,strides=2)-flatten-10'])
    check(rc == 2 and "unknown argument 'strides'" in err and 'layer 1' in err, 'CNN unknown argument: %r' % err)
    rc, out, err = run(['train', '--model', '3x28x28-conv2d(8,3)-flatten-10'])
    check(rc == 2 and '2352' in err and '784' in err, 'CNN input shape vs data: %r' % err)
    # The case study, small: every trial runs, the JSON says what happened.
    rc, res, err = run_json(['case', 'image', '--train-rows', '1024', '--test-rows', '500', '--schedule-epochs', '1',
                             '--no-plot', '--threads', '2'])
    check(res is not None and len(res['trials']) == 4, 'case image --json: %d %s' % (rc, err[-300:]))
    if res:
        names = [t['name'] for t in res['trials']]
        check(names == ['too high', 'lower rate', 'warmup+cosine', 'guard'], 'case trials %s' % names)
        high, guard = res['trials'][0], res['trials'][3]
        check(high['first_alarm'] is not None, 'case: the too-high trial raised an alarm')
        check(guard['rescues'] >= 1 and guard['guard'], 'case: the guard rescued its trial')
        check(res['trials'][1]['verdict'] == 'healthy', 'case: the lower rate is healthy')
else:
    print('skip: Fashion-MNIST is not installed (dataset-fashion-mnist)')

shutil.rmtree(TMP, ignore_errors=True)
cli.finish('cli train/lr-find/sweep: OK')
