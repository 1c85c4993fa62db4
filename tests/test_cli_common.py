#!/usr/bin/env python3
"""What every command of the sgdlab tool shares, tried as a user (and a hostile
one) would: --json with a schema on every command, -o FILE, write errors on
standard output, the policy for every file the tool writes (checked before any
work; never anything but a regular file replaced), file names that cannot
become gnuplot code, the resume that compares specs, IDX input that is not a
regular file, Ctrl-C during `train --save`, the progress bar in a narrow
terminal, and the parser's rules.

usage: test_cli_common.py SGDLAB_EXE
"""
import fcntl
import json
import os
import pty
import select
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import termios
import time

EXE = os.path.abspath(sys.argv[1])
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import read_checkpoint  # noqa: E402

failures = []
TMP = tempfile.mkdtemp(prefix='sgdlab-cli-common-')
SPIRALS = ['--data', 'spirals']


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL:', what, file=sys.stderr)


def run(args, stdin_text=None, stdout=None, timeout=300, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([EXE] + args, input=stdin_text, stdout=stdout if stdout is not None else subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout, cwd=TMP, env=e)
    return p.returncode, p.stdout if stdout is None else '', p.stderr


def path(name):
    return os.path.join(TMP, name)


def leftovers():
    """Temporary files of the tool's outputs left in TMP."""
    return [n for n in os.listdir(TMP) if '.sgdlab-' in n or '.sgdtmp-' in n]


TEXT = 'text:' + os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'text', 'fortunes')
SMALL_LM = ['--model', 'tokens-embedding(8)-lstm(16)-dense(vocab)', '--seq-len', '20', '--batch-size', '4']
LRCURVE = ''.join('lr=%g loss=%g\n' % (1e-5 * 1.2 ** i, 2.3 - 0.02 * i if i < 60 else 2.3 + (i - 60) ** 2)
                  for i in range(70))
LOG = ''.join('%g\n' % (2.3 * 0.99 ** i) for i in range(30)) + '50\n60\n70\n'
ck = path('run.ckpt')
rc, out, err = run(['train'] + SPIRALS + ['--epochs', '1', '--save', ck, '-q'])
check(rc == 0 and os.path.exists(ck), 'a checkpoint to inspect: %d %s' % (rc, err))
lm = path('lm.ckpt')
rc, out, err = run(['train', '--data', TEXT] + SMALL_LM + ['--epochs', '1', '--max-steps', '3', '--save', lm, '-q'])
check(rc == 0 and os.path.exists(lm), 'a text model to generate with: %d %s' % (rc, err))
curve = path('curve.txt')
with open(curve, 'w') as f:
    f.write(LRCURVE)

# ---------------------------------------------------------------- --json everywhere, with a schema
docs = {
    'train': ['train'] + SPIRALS + ['--epochs', '1'],
    'lr-find': ['lr-find'] + SPIRALS + ['--steps', '20'],
    'sweep': ['sweep'] + SPIRALS + ['--lrs', '0.1', '--steps', '10', '--no-plot'],
    'inspect': ['inspect', ck],
    'generate': ['generate', '--resume', lm, '--length', '20'],
    'lr-find --from': ['lr-find', '--from', curve],
    'case text': ['case', 'text', '--data', TEXT] + SMALL_LM + ['--train-chars', '400', '--sample', '10',
                                                               '--no-plot'],
}
schemas = {'lr-find --from': 'sgdlab.lr-find/1', 'case text': 'sgdlab.case-text/1'}
commands = {'lr-find --from': 'lr-find', 'case text': 'case'}
if os.path.exists('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz'):
    docs['case'] = ['case', 'image', '--train-rows', '256', '--test-rows', '200', '--schedule-epochs', '1', '--no-plot']
for cmd, args in docs.items():
    rc, out, err = run(args + ['--json'])
    try:
        d = json.loads(out)
    except ValueError:
        d = None
    check(d is not None, '%s --json: one JSON document (%d %r %r)' % (cmd, rc, out[:200], err[:200]))
    if d:
        check(d.get('schema') == schemas.get(cmd, 'sgdlab.%s/1' % cmd) and d.get('command') == commands.get(cmd, cmd),
              '%s --json: schema and command: %s %s' % (cmd, d.get('schema'), d.get('command')))
rc, out, err = run(['monitor', '--json', '-'], stdin_text=LOG)
rows = [json.loads(line) for line in out.splitlines()]
check(rc == 0 and rows and all(r['schema'] == 'sgdlab.monitor/1' for r in rows) and rows[-1]['type'] == 'verdict',
      'monitor --json: JSON Lines, each with the schema (%d %r)' % (rc, err))
rc, out, err = run(['inspect', '--json', path('nothing.ckpt')])
check(rc == 2 and 'nothing.ckpt' in err, 'inspect --json of a missing file: %d %r' % (rc, err))
with open(path('damaged.ckpt'), 'wb') as f:
    f.write(b'\x89SGD\r\n\x1a\n' + bytes(40))
rc, out, err = run(['inspect', '--json', path('damaged.ckpt')])
d = json.loads(out) if rc == 1 else {}
check(d.get('schema') == 'sgdlab.inspect/1' and d.get('valid') is False and d.get('error'),
      'inspect --json of a damaged file: %d %r' % (rc, out[:300]))
rc, out, err = run(['inspect', '-q', path('damaged.ckpt')])
check(rc == 1 and out == '', 'inspect -q: the exit status alone (%d %r)' % (rc, out))
for cmd in ['train', 'lr-find', 'sweep', 'case', 'case text', 'monitor', 'inspect', 'generate']:
    rc, out, err = run(cmd.split(' ') + ['--help'])
    check(rc == 0 and '--json' in out and '-o, --output FILE' in out and '--version' in out,
          '%s --help: --json, -o, --version' % cmd)
    rc, out, err = run(cmd.split(' ') + ['--version'])
    check(rc == 0 and out.startswith('sgdlab %s (libsgdlab) ' % cmd), '%s --version: %r' % (cmd, out))

# ---------------------------------------------------------------- -o FILE
rc, expected, err = run(['inspect', ck])
out_file = path('report.txt')
with open(out_file, 'w') as f:
    f.write('old')
rc, out, err = run(['inspect', '-o', out_file, ck])
with open(out_file) as f:
    got = f.read()
check(rc == 0 and out == '' and got == expected, 'inspect -o FILE: the report in FILE, nothing on stdout')
rc, out, err = run(['monitor', '--output=' + path('events.jsonl'), '-'], stdin_text=LOG)
with open(path('events.jsonl')) as f:
    check(rc == 0 and json.loads(f.read().splitlines()[-1])['type'] == 'verdict', 'monitor --output=FILE')
rc, out, err = run(['train'] + SPIRALS + ['--epochs', '1', '--json', '-o' + path('train.json')])
with open(path('train.json')) as f:
    check(rc == 0 and json.load(f)['schema'] == 'sgdlab.train/1', 'train --json -oFILE')
check(not leftovers(), 'no temporary file left: %s' % leftovers())

# ---------------------------------------------------------------- write errors on standard output
if os.path.exists('/dev/full'):
    for args in (['--help'], ['--version'], ['help', 'train'], ['train', '--help'], ['inspect', ck],
                 ['inspect', '--json', ck], ['train'] + SPIRALS + ['--epochs', '1'],
                 ['train'] + SPIRALS + ['--epochs', '1', '--json'], ['lr-find'] + SPIRALS + ['--steps', '20'],
                 ['sweep'] + SPIRALS + ['--lrs', '0.1', '--steps', '10', '--no-plot'], ['monitor', '-'],
                 ['case', '--help'], ['case', 'text', '--help'], ['generate', '--resume', lm, '--length', '20'],
                 ['generate', '--resume', lm, '--length', '20', '--json'], ['lr-find', '--from', curve],
                 ['monitor', '--human', '-']):
        with open('/dev/full', 'w') as full:
            rc, _, err = run(args, stdin_text=LOG if args[0] == 'monitor' else None, stdout=full)
        check(rc != 0 and 'write error' in err and 'No space left' in err,
              '%s > /dev/full: exit %d, %r' % (' '.join(args), rc, err[-200:]))

# ---------------------------------------------------------------- outputs: only regular files, checked first
fifo = path('a-fifo')
os.mkfifo(fifo)
os.symlink('/dev/null', path('null-link'))
os.symlink(path('nowhere.ckpt'), path('dangling'))
os.mkdir(path('a-dir.svg'))
os.mkfifo(fifo + '.png')
os.symlink('/dev/zero', path('null-link') + '.svg')
refusals = [
    (['train'] + SPIRALS + ['--save', fifo], '--save', 'a FIFO'),
    (['train'] + SPIRALS + ['--save', path('null-link')], '--save', 'a character device'),
    (['train'] + SPIRALS + ['--save', path('dangling')], '--save', 'dangling'),
    (['train'] + SPIRALS + ['--save', path('no-dir/x.ckpt')], '--save', 'cannot create a file'),
    (['train'] + SPIRALS + ['--plot', path('no-dir/x.svg')], '--plot', 'cannot create a file'),
    (['train'] + SPIRALS + ['--plot', path('a-dir.svg')], '--plot', 'a directory'),
    (['lr-find'] + SPIRALS + ['--plot', fifo + '.png'], '--plot', 'a FIFO'),
    (['sweep'] + SPIRALS + ['--plot', path('null-link') + '.svg'], '--plot', 'a character device'),
    (['inspect', '-o', fifo, ck], '--output', 'a FIFO'),
    (['monitor', '-o', path('null-link'), '-'], '--output', 'a character device'),
    (['train'] + SPIRALS + ['-o', '/dev/full'], '--output', 'a character device'),
    (['train', '--data', TEXT] + SMALL_LM + ['--save', fifo], '--save', 'a FIFO'),
    (['train'] + SPIRALS + ['--save-every', '5', '--save', path('null-link')], '--save', 'a character device'),
    (['case', 'text', '--data', TEXT] + SMALL_LM + ['--save', fifo], '--save', 'a FIFO'),
    (['case', 'text', '--data', TEXT] + SMALL_LM + ['--plot', path('a-dir.svg')], '--plot', 'a directory'),
    (['case', 'text', '--data', TEXT] + SMALL_LM + ['--plot', path('no-dir/x.png')], '--plot', 'cannot create'),
    (['generate', '--resume', lm, '-o', fifo], '--output', 'a FIFO'),
    (['lr-find', '--from', curve, '--plot', fifo + '.png'], '--plot', 'a FIFO'),
    (['monitor', '--human', '-o', path('dangling'), '-'], '--output', 'dangling'),
    (['sweep'] + SPIRALS + ['--dist-options', 'timeout=5', '--plot', fifo + '.png'], '--plot', 'a FIFO'),
]
for args, opt, what in refusals:
    rc, out, err = run(args, stdin_text='')
    check(rc == 2 and opt in err and what in err and out == '',
          '%s: refused before any work (%d, %r, stdout %r)' % (' '.join(args), rc, err.strip()[-300:], out[:100]))
check(stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_ISLNK(os.lstat(path('null-link')).st_mode) and
      stat.S_ISCHR(os.stat('/dev/null').st_mode), 'the FIFO, the link and /dev/null are as they were')
check(not os.path.exists(path('nowhere.ckpt')), 'nothing created through a dangling link')
check(not leftovers(), 'no temporary file left: %s' % leftovers())
# A link to a regular file is followed: the file is replaced, the link stays.
with open(path('target.ckpt'), 'w') as f:
    f.write('old')
os.symlink('target.ckpt', path('link.ckpt'))
rc, out, err = run(['train'] + SPIRALS + ['--epochs', '1', '-q', '--save', path('link.ckpt')])
check(rc == 0 and stat.S_ISLNK(os.lstat(path('link.ckpt')).st_mode) and os.path.getsize(path('target.ckpt')) > 1000,
      '--save through a link to a regular file: %d %r' % (rc, err))

# ---------------------------------------------------------------- file names never become gnuplot code
evil = path("x'\nsystem \"touch INJECTED\"\n'.svg")
rc, out, err = run(['train'] + SPIRALS + ['--epochs', '1', '-q', '--plot', evil])
check(not os.path.exists(path('INJECTED')) and not os.path.exists('INJECTED'), 'a plot name ran no command')
if shutil.which('gnuplot'):
    check(rc == 0 and os.path.getsize(evil) > 1000, 'the plot is written under that name: %d %r' % (rc, err))
evil_tmp = path("t'\nsystem \"touch INJECTED2\"\n'")
os.makedirs(evil_tmp)
rc, out, err = run(['lr-find'] + SPIRALS + ['--steps', '20', '-q', '--plot', path('lr.svg')], env={'TMPDIR': evil_tmp})
check(not os.path.exists(path('INJECTED2')), 'a $TMPDIR name ran no command')
rc, out, err = run(['train'] + SPIRALS + ['--epochs', '1', '-q', '--optim', "adam:lr=0.01\nsystem 'touch INJ3'",
                                          '--plot', path('t.svg')])
check(not os.path.exists(path('INJ3')), 'a spec in a title ran no command (%d)' % rc)

# ---------------------------------------------------------------- a resume compares what it restores into
a = path('relu.ckpt')
rc, out, err = run(['train'] + SPIRALS + ['--model', '2-8-relu-3', '--epochs', '1', '-q', '--save', a])
check(rc == 0, 'save a 2-8-relu-3 run (%s)' % err)
for extra, needles in [(['--model', '2-8-tanh-3'], ["'2-8-relu-3", "'2-8-tanh-3"]),
                       (['--model', '2-8-relu-3', '--optim', 'adam'], ["'sgd'", "'adam'"]),
                       (['--model', '2-8-relu-3', '--schedule', 'cosine:T_max=24'], ['no schedule', "'cosine'"])]:
    rc, out, err = run(['train'] + SPIRALS + extra + ['--epochs', '1', '--resume', a])
    check(rc == 2 and '--resume' in err and all(n in err for n in needles),
          'resume into %s: refused with both sides named (%d, %r)' % (' '.join(extra), rc, err.strip()))
b = path('cosine.ckpt')
run(['train'] + SPIRALS + ['--model', '2-8-relu-3', '--schedule', 'cosine:T_max=24', '--epochs', '1', '-q',
                           '--save', b])
rc, out, err = run(['train'] + SPIRALS + ['--model', '2-8-relu-3', '--epochs', '1', '--resume', b])
check(rc == 2 and "schedule 'cosine'" in err and 'none' in err, 'resume without the schedule: %r' % err.strip())

# ---------------------------------------------------------------- IDX input must be regular files
rc, out, err = run(['train', '--data', '/dev/zero,/dev/zero'], timeout=60)
check(rc == 2 and 'a character device' in err and '/dev/zero' in err, '--data /dev/zero,/dev/zero: %d %r' % (rc, err))
rc, out, err = run(['lr-find', '--data', fifo + ',' + fifo], timeout=60)
check(rc == 2 and 'a FIFO' in err, '--data FIFO: %d %r' % (rc, err))
# Every other file the tool reads whole is a regular file too: a FIFO never blocks it, a device is refused.
for args in (['train', '--data', 'text:' + fifo], ['train', '--data', 'text:/dev/zero'],
             ['case', 'text', '--data', 'text:' + fifo, '--no-plot'], ['lr-find', '--from', fifo],
             ['lr-find', '--from', '/dev/zero'], ['generate', '--resume', fifo], ['generate', '--resume', '/dev/zero'],
             ['inspect', fifo], ['train'] + SPIRALS + ['--resume', fifo]):
    try:
        rc, out, err = run(args, timeout=30)
    except subprocess.TimeoutExpired:
        rc, err = None, 'blocked'
    check(rc in (1, 2) and ('regular file' in err or 'larger than' in err), '%s: refused (%s, %r)'
          % (' '.join(args), rc, err.strip()[-200:]))

# ---------------------------------------------------------------- Ctrl-C during train --save
def interrupted_run(extra, sig):
    """Starts a long spirals run, waits for its first epoch line (with --json: a moment), sends `sig`."""
    p = subprocess.Popen([EXE, 'train'] + SPIRALS + ['--epochs', '400', '--optim', 'adam', '--no-progress'] + extra,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=TMP)
    first = ''
    if '--json' in extra:
        time.sleep(0.5)
    else:
        for line in p.stdout:
            if line.startswith('    1  '):
                first = line
                break
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    return p.returncode, first + out, err


part, resumed, whole = path('part.ckpt'), path('resumed.ckpt'), path('whole.ckpt')
rc, out, err = interrupted_run(['--save', part], signal.SIGINT)
check(rc == 130, 'Ctrl-C: exit 130 (got %d, %r)' % (rc, err))
check('interrupted by SIGINT after step' in err and ('saved in ' + part) in err and '--resume' in err,
      'Ctrl-C: says where the state went: %r' % err)
check('result: interrupted' in out, 'Ctrl-C: the result line: %r' % out[-300:])
rc, out, err = run(['inspect', '-q', part])
check(rc == 0, 'the checkpoint written at Ctrl-C is valid')
rc, out, err = run(['train'] + SPIRALS + ['--epochs', '400', '--optim', 'adam', '-q', '--resume', part,
                                          '--save', resumed])
check(rc == 0, 'resume after Ctrl-C: %d %r' % (rc, err))
rc, out, err = run(['train'] + SPIRALS + ['--epochs', '400', '--optim', 'adam', '-q', '--save', whole])


def timeless(section, tensor, epochs):
    """The trainer state without the wall-clock seconds of each epoch record (docs/trainer.md)."""
    raw = bytearray(tensor.raw)
    if (section, tensor.name) == ('trainer', 'state'):
        for e in range(epochs):
            raw[792 + 64 * e + 56:792 + 64 * e + 64] = bytes(8)
    return bytes(raw)


with open(resumed, 'rb') as f:
    ra = read_checkpoint.read(f.read())
with open(whole, 'rb') as f:
    rb = read_checkpoint.read(f.read())
diff = [(sa.name, ta.name) for sa, sb in zip(ra.sections, rb.sections) for ta, tb in zip(sa.tensors, sb.tensors)
        if timeless(sa.name, ta, 400) != timeless(sb.name, tb, 400)]
check(not diff, 'interrupted at Ctrl-C and resumed = uninterrupted, bit for bit; differs in %s' % diff[:4])
rc, out, err = interrupted_run(['--json'], signal.SIGTERM)
check(rc == 143 and 'nothing saved' in err, 'SIGTERM without --save: exit 143 and says so (%d %r)' % (rc, err))
try:
    d = json.loads(out)
    check(d['result']['interrupted'] == 'SIGTERM' and d['result']['stop_reason'] == 'canceled',
          'SIGTERM: the JSON says so: %s' % d['result'])
except ValueError:
    check(False, 'SIGTERM --json: a JSON document: %r' % out[:200])
# A command killed by a signal leaves no temporary -o file, and the file it would replace as it was.
with open(path('sweep.json'), 'w') as f:
    f.write('old')
p = subprocess.Popen([EXE, 'sweep'] + SPIRALS + ['--lrs', '0.01,0.1', '--epochs', '400', '--no-plot', '--json', '-o',
                                                  path('sweep.json')], cwd=TMP, stderr=subprocess.PIPE)
time.sleep(0.5)
p.send_signal(signal.SIGINT)
p.communicate(timeout=120)
with open(path('sweep.json')) as f:
    check(p.returncode == -signal.SIGINT and f.read() == 'old' and not leftovers(),
          'sweep -o FILE killed by SIGINT: FILE unchanged, no temporary file (%d, %s)' % (p.returncode, leftovers()))


# ---------------------------------------------------------------- the progress bar in a 60-column terminal
def on_pty(args, cols=60, stdout_too=True):
    """Runs with stderr (and stdout) on a pseudo-terminal of `cols` columns; returns what the terminal got."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 24, cols, 0, 0))
    p = subprocess.Popen([EXE] + args, stdout=slave if stdout_too else subprocess.DEVNULL, stderr=slave, cwd=TMP)
    os.close(slave)
    got = b''
    while True:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
        elif p.poll() is not None:
            break
    p.wait()
    os.close(master)
    return p.returncode, got.decode('utf-8', 'replace')


long_runs = {'train': ['train'] + SPIRALS + ['--epochs', '60'],
             'lr-find': ['lr-find'] + SPIRALS + ['--steps', '3000', '--lr-max', '1e-3'],
             'sweep': ['sweep'] + SPIRALS + ['--lrs', '0.01,0.1', '--epochs', '40', '--no-plot', '--threads', '1']}
for cmd, args in long_runs.items():
    rc, screen = on_pty(args)
    bars = [seg.replace('\x1b[K', '') for line in screen.split('\n') for seg in line.split('\r') if '%' in seg and
            'ETA' in seg]
    check(rc == 0 and bars, '%s: a progress bar with an ETA on a terminal (%d)' % (cmd, rc))
    check(all(len(b) <= 59 for b in bars), '%s: the bar fits 60 columns: %r' % (cmd, max(bars, key=len) if bars else ''))
    rc, screen = on_pty(args, stdout_too=False)
    check('ETA' not in screen, '%s: no bar when stdout is not a terminal' % cmd)
    rc, screen = on_pty(args + ['--progress'], cols=30, stdout_too=False)
    bars = [seg.replace('\x1b[K', '') for seg in screen.replace('\n', '\r').split('\r') if '%' in seg]
    check(bars and all(len(b) <= 29 for b in bars), '%s --progress at 30 columns: %r' % (cmd, bars[-1:] if bars else ''))
    rc, screen = on_pty(args + ['--no-progress'])
    check('ETA' not in screen, '%s --no-progress: no bar' % cmd)

# ---------------------------------------------------------------- the parser's rules
rc, out, err = run(['train'] + SPIRALS + ['--epo=1', '-q'])
check(rc == 0 and 'after 24 steps' in out, 'an unambiguous prefix is the option (%r)' % err)
rc, out, err = run(['train', '-q', '--data=spirals', '--epochs', '1', '--lr', '-1'])
check(rc == 2 and "'-1' is out of range" in err, 'a negative value is a value: %r' % err)
with open(path('-log'), 'w') as f:
    f.write(LOG)
rc, out, err = run(['monitor', '-q', '--', '-log'])
check(rc == 0 and json.loads(out)['type'] == 'verdict', '"--" ends the options (a file named -log): %r' % err)
rc, out, err = run(['monitor', path('-log'), '--human'])
check(rc == 0 and 'verdict:' in out, 'options after the positional argument')

shutil.rmtree(TMP, ignore_errors=True)
if failures:
    print('%d failure(s)' % len(failures), file=sys.stderr)
    sys.exit(1)
print('cli common: OK')
