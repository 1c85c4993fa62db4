#!/usr/bin/env python3
"""Tests of `sgdlab train --dist` and `sgdlab sweep --dist` under mpiexec with
2 processes, as a user runs them: the same run as one process with the same
global batch, the fixed reduction order bit for bit, a checkpoint written by
rank 0 and resumed on 2 and on 1 process, the refusal to run N copies under
mpirun without --dist, the distributed sweep against the serial one, and
faults: a rank killed in the middle of a run (the job ends, the checkpoint
on disk stays valid and resumes) and a rank that hangs (the others time out
and end the job). With Fashion-MNIST installed, the issue's command:
`mpirun -np 2 sgdlab train --dist --epochs 1` against one process.

usage: test_cli_dist.py SGDLAB_EXE MPIEXEC
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import read_checkpoint  # noqa: E402

EXE = os.path.abspath(sys.argv[1])
MPIEXEC = sys.argv[2]
failures = []
TMP = tempfile.mkdtemp(prefix='sgdlab-cli-dist-')
FMNIST = '/usr/share/datasets/fashion-mnist'
SPIRALS = ['--data', 'spirals', '--no-progress']


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL:', what, file=sys.stderr)


def run(args, np=None, timeout=300):
    cmd = ([MPIEXEC, '-n', str(np)] if np else []) + [EXE] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=TMP)
    return p.returncode, p.stdout, p.stderr


def run_json(args, np=None, **kw):
    rc, out, err = run(args + ['--json'], np=np, **kw)
    try:
        return rc, json.loads(out), err
    except ValueError:
        check(False, '%s: not one JSON object: %r (stderr %r)' % (args, out[:300], err[-600:]))
        return rc, None, err


def params(path):
    """The model's parameters in a checkpoint (bytes)."""
    with open(path, 'rb') as f:
        c = read_checkpoint.read(f.read())
    return b''.join(t.raw for s in c.sections if s.name == 'model' for t in s.tensors)


def ranks_of(job):
    """PIDs of the job's sgdlab processes, by rank (from their environment)."""
    found = {}
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                cmd = f.read().split(b'\0')
            with open('/proc/%s/environ' % pid, 'rb') as f:
                env = dict(kv.split(b'=', 1) for kv in f.read().split(b'\0') if b'=' in kv)
        except OSError:
            continue
        if not cmd or os.path.basename(cmd[0]) != b'sgdlab' or env.get(b'SGDLAB_TEST_JOB') != job.encode():
            continue
        r = env.get(b'OMPI_COMM_WORLD_RANK', env.get(b'PMI_RANK'))
        if r is not None:
            found[int(r)] = int(pid)
    return found


def start_job(args, job):
    env = dict(os.environ, SGDLAB_TEST_JOB=job)
    return subprocess.Popen([MPIEXEC, '-n', '2', EXE] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=TMP, env=env)


def wait_for(cond, seconds):
    t0 = time.time()
    while time.time() - t0 < seconds:
        if cond():
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------- the same run as one process
one_rc, one, _ = run_json(['train'] + SPIRALS + ['--epochs', '3', '--save', 'one.ckpt'])
two_rc, two, err = run_json(['train', '--dist'] + SPIRALS + ['--epochs', '3', '--save', 'two.ckpt'], np=2)
check(one_rc == 0 and two_rc == 0, 'train --dist on spirals: exit %d / %d (%s)' % (one_rc, two_rc, err[-400:]))
if one and two:
    check(two.get('processes') == 2, 'the JSON says 2 processes')
    for a, b in zip(one['epochs'], two['epochs']):
        check(abs(a['train_loss'] - b['train_loss']) <= 1e-5 * a['train_loss'], 'epoch %d train loss %r vs %r'
              % (a['epoch'], a['train_loss'], b['train_loss']))
        check(abs(a['val_accuracy'] - b['val_accuracy']) <= 1.0 / 1500, 'epoch %d accuracy %r vs %r'
              % (a['epoch'], a['val_accuracy'], b['val_accuracy']))
    check(one['result']['steps'] == two['result']['steps'], 'the same steps')
    check(one['result']['verdict'] == two['result']['verdict'], 'the same verdict')

# Rank 0 alone reports: one table.
rc, out, err = run(['train', '--dist'] + SPIRALS + ['--epochs', '1'], np=2)
check(rc == 0 and out.count('result:') == 1 and 'data-parallel: 2 processes' in out,
      'one report, from rank 0: %r' % out[-500:])

# The fixed reduction order: a rerun is bit for bit the same.
ck = []
for k in range(2):
    rc, out, err = run(['train', '--dist', '--dist-options', 'fixed_order=1,check_interval=10'] + SPIRALS +
                       ['--epochs', '2', '--model', '2-32-relu-dropout(0.1)-3', '--save', 'fixed%d.ckpt' % k], np=2)
    check(rc == 0, 'fixed order run %d: exit %d (%s)' % (k, rc, err[-400:]))
    ck.append(params(os.path.join(TMP, 'fixed%d.ckpt' % k)) if rc == 0 else b'')
check(ck[0] == ck[1] and len(ck[0]) > 0, 'fixed order: the reruns have the same parameters bit for bit')

# ---------------------------------------------------------------- checkpoints
rc, out, err = run(['train', '--dist'] + SPIRALS + ['--epochs', '4', '--save', 'whole.ckpt'], np=2)
check(rc == 0, 'whole run: %s' % err[-300:])
rc, out, err = run(['train', '--dist'] + SPIRALS + ['--epochs', '4', '--max-steps', '40', '--save', 'half.ckpt'],
                   np=2)
check(rc == 0, 'first half: %s' % err[-300:])
rc, out, err = run(['train', '--dist'] + SPIRALS + ['--epochs', '4', '--resume', 'half.ckpt', '--save',
                                                   'resumed.ckpt'], np=2)
check(rc == 0 and 'resumed from half.ckpt at step 40' in out, 'resume on 2 processes: %s %s' % (out[-300:], err[-300:]))
if rc == 0:
    check(params(os.path.join(TMP, 'resumed.ckpt')) == params(os.path.join(TMP, 'whole.ckpt')),
          'resumed on 2 processes: bit for bit the uninterrupted run')
# A different number of processes: supported (the state does not depend on it).
rc, res, err = run_json(['train'] + SPIRALS + ['--epochs', '4', '--resume', 'half.ckpt'])
rc2, whole, _ = run_json(['train', '--dist'] + SPIRALS + ['--epochs', '4'], np=2)
check(rc == 0 and rc2 == 0, 'resume on 1 process: exit %d (%s)' % (rc, err[-300:]))
if res and whole:
    a, b = res['result']['test_loss'], whole['result']['test_loss']
    check(res['result']['steps'] == whole['result']['steps'] and abs(a - b) <= 1e-4 * b,
          'resumed on 1 process: test loss %r vs %r' % (a, b))

# ---------------------------------------------------------------- under mpirun without --dist
rc, out, err = run(['train'] + SPIRALS + ['--epochs', '1'], np=2)
check(rc != 0 and err.count('without --dist') == 1 and 'result:' not in out,
      'train under mpirun without --dist: refused once: %r' % err[-500:])
rc, out, err = run(['lr-find', '--data', 'spirals'], np=2)
check(rc != 0 and 'does not run distributed' in err, 'lr-find under mpirun: refused: %r' % err[-300:])
rc, out, err = run(['train', '--dist-options', 'fixed_order=1'] + SPIRALS)
check(rc == 2 and 'needs --dist' in err, '--dist-options without --dist: %r' % err)
rc, out, err = run(['train', '--dist', '--dist-options', 'bogus=1'] + SPIRALS)
check(rc == 2 and 'bogus' in err, 'a bad --dist-options: %r' % err)
# One process with --dist (no launcher): a communicator of one, the same as without.
rc, res, err = run_json(['train', '--dist'] + SPIRALS + ['--epochs', '3'])
check(rc == 0 and res and one and res['result']['test_loss'] == one['result']['test_loss'],
      'train --dist without mpirun: one process')

# ---------------------------------------------------------------- the distributed sweep
sweep = ['sweep'] + SPIRALS + ['--points', '5', '--lr-min', '0.01', '--lr-max', '30', '--steps', '60',
                               '--threads', '1', '--plot', 'sweep.svg']
rc1, serial, err1 = run_json(sweep)
rc2, dist, err2 = run_json(sweep + ['--dist'], np=2)
check(rc1 == rc2 and rc1 in (0, 1), 'sweep exits %d / %d (%s)' % (rc1, rc2, err2[-300:]))
if serial and dist:
    keys = ['lr', 'verdict', 'final_loss', 'val_loss', 'val_accuracy', 'steps', 'first_alarm', 'stop_reason']
    for a, b in zip(serial['trials'], dist['trials']):
        check(all(a[k] == b[k] for k in keys), 'sweep trial lr %g: %s vs %s' % (a['lr'], a, b))
    check(serial['best'] == dist['best'], 'the same best trial')
    check(dist.get('processes') == 2, 'the sweep JSON says 2 processes')
    if dist.get('plot'):
        with open(os.path.join(TMP, 'sweep.svg')) as f:
            svg = f.read()
        check(svg.count('<path') >= 5, 'the plot has every trial\'s curve (rank 1\'s gathered)')

# ---------------------------------------------------------------- faults
# A rank killed in the middle of a run: the job ends with an error, the checkpoint stays valid.
big = SPIRALS + ['--model', '2-256-relu-256-relu-3', '--epochs', '400', '--save', 'fault.ckpt', '--save-every', '20']
for name in ['fault.ckpt']:
    if os.path.exists(os.path.join(TMP, name)):
        os.remove(os.path.join(TMP, name))
job = start_job(['train', '--dist'] + big, 'kill')
saved = wait_for(lambda: os.path.exists(os.path.join(TMP, 'fault.ckpt')), 120)
check(saved, 'the faulty run saved a checkpoint')
pids = ranks_of('kill')
time.sleep(0.5)
check(1 in pids, 'found rank 1: %s' % pids)
t_kill = time.time()
if 1 in pids:
    os.kill(pids[1], signal.SIGKILL)
try:
    out, err = job.communicate(timeout=120)
    check(job.returncode != 0, 'killed rank: the job fails (exit %d)' % job.returncode)
    check(time.time() - t_kill < 60, 'killed rank: the job ended in %.1f s' % (time.time() - t_kill))
    print('# killed rank 1: the job ended in %.1f s, exit %d; mpiexec: %s' % (
        time.time() - t_kill, job.returncode, ' '.join(err.split())[-300:]))
except subprocess.TimeoutExpired:
    job.kill()
    check(False, 'killed rank: the other rank was left hanging')
rc, out, err = run(['inspect', 'fault.ckpt'])
check(rc == 0, 'after the kill the checkpoint is valid: %s' % (out + err)[-300:])
rc, res, err = run_json(['train', '--dist'] + big + ['--epochs', '400', '--resume', 'fault.ckpt', '--max-steps', '20'],
                        np=2)
check(rc == 0 and res is not None and res['result']['steps'] >= 20, 'and it resumes: %s' % err[-300:])

# A rank that hangs (stopped): the other times out and ends the job with the reason.
job = start_job(['train', '--dist', '--dist-options', 'timeout=3'] + big + ['--save', 'hang.ckpt'], 'hang')
wait_for(lambda: os.path.exists(os.path.join(TMP, 'hang.ckpt')), 120)
pids = ranks_of('hang')
check(1 in pids, 'found rank 1 of the hanging job: %s' % pids)
if 1 in pids:
    os.kill(pids[1], signal.SIGSTOP)
try:
    out, err = job.communicate(timeout=120)
    check(job.returncode != 0 and 'no answer from the other processes after 3 s' in err,
          'a hung rank: the job ends with the reason: %r' % err[-600:])
except subprocess.TimeoutExpired:
    job.kill()
    check(False, 'a hung rank left the job hanging')
finally:
    for pid in ranks_of('hang').values():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

# ---------------------------------------------------------------- Fashion-MNIST: the command
if os.environ.get('SGDT_SANITIZED'):
    print('skip: the Fashion-MNIST epochs under the sanitizers (the plain build runs them)')
elif os.path.exists(os.path.join(FMNIST, 'train-images-idx3-ubyte.gz')):
    # Step by step, the same run: after 200 steps the test loss agrees to 6 digits (later the constant
    # rate's run is chaotic: a relative change of 1e-6 in the rate moves one process's accuracy
    # after an epoch by half a point, docs/dist.md).
    rc1, a, _ = run_json(['train', '--epochs', '1', '--max-steps', '200', '--no-progress'])
    rc2, b, err = run_json(['train', '--dist', '--epochs', '1', '--max-steps', '200'], np=2)
    check(rc1 == 0 and rc2 == 0, 'fashion-mnist 200 steps: %s' % err[-300:])
    if a and b:
        la, lb = a['result']['test_loss'], b['result']['test_loss']
        check(abs(la - lb) <= 1e-6 * la, 'fashion-mnist after 200 steps: test loss %r vs %r' % (la, lb))
    rc1, a, _ = run_json(['train', '--epochs', '1', '--no-progress'])
    rc2, b, err = run_json(['train', '--dist', '--epochs', '1'], np=2)
    check(rc1 == 0 and rc2 == 0, 'fashion-mnist epoch: %s' % err[-300:])
    if a and b:
        print('# fashion-mnist, 1 epoch, batch 128: test accuracy %.4f alone, %.4f on 2 processes (%.1f s, %.1f s)'
              % (a['result']['test_accuracy'], b['result']['test_accuracy'], a['result']['seconds'],
                 b['result']['seconds']))
        check(b['result']['test_accuracy'] > 0.8 and abs(a['result']['test_accuracy'] -
                                                          b['result']['test_accuracy']) < 0.015,
              'fashion-mnist epoch: accuracy %r vs %r' % (a['result']['test_accuracy'],
                                                          b['result']['test_accuracy']))
    # With the rate annealed (a schedule that ends the epoch at 0): the same accuracy.
    cos = ['--epochs', '1', '--schedule', 'cosine:T_max=469']
    rc1, a, _ = run_json(['train'] + cos + ['--no-progress'])
    rc2, b, err = run_json(['train', '--dist'] + cos, np=2)
    if a and b:
        print('# fashion-mnist, cosine: test accuracy %.4f alone, %.4f on 2 processes' % (
            a['result']['test_accuracy'], b['result']['test_accuracy']))
        check(abs(a['result']['test_accuracy'] - b['result']['test_accuracy']) <= 0.0005,
              'fashion-mnist cosine epoch: accuracy %r vs %r' % (a['result']['test_accuracy'],
                                                                 b['result']['test_accuracy']))
else:
    print('skip: Fashion-MNIST is not installed (dataset-fashion-mnist)')

if failures:
    print('%d failure(s)' % len(failures), file=sys.stderr)
    sys.exit(1)
print('OK: train --dist, sweep --dist, checkpoints, refusals and faults under %s' % MPIEXEC)
