#!/usr/bin/env python3
"""Tests of `sgdlab monitor`: files, standard input, a live pipe, a growing
file (--follow), the input format, --column/--grad-column, --fail-on,
--human, --set, errors naming the line, and the dispatcher's own options.

usage: test_cli_monitor.py SGDLAB_EXE CURVES_DIR
"""
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

EXE = sys.argv[1]
CURVES = sys.argv[2]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL:', what, file=sys.stderr)


def run(args, stdin_text=None, timeout=60):
    p = subprocess.run([EXE] + args, input=stdin_text, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def jsonl(out):
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return rows[:-1], rows[-1] if rows else None


def curve(name):
    return os.path.join(CURVES, name)


def tmpfile(text):
    f = tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False)
    f.write(text)
    f.close()
    return f.name


# ---------------------------------------------------------------- a file
rc, out, err = run(['monitor', curve('regress-mlp__sgd__lr1__s1.txt')])
check(rc == 0, 'diverged curve: exit 0 without --fail-on (got %d, %s)' % (rc, err))
events, final = jsonl(out)
check(final['verdict'] == 'diverged', 'diverged curve: verdict %s' % final['verdict'])
check(final['steps'] == 17, 'diverged curve: steps %s' % final['steps'])
kinds = [e['kind'] for e in events]
check('divergence' in kinds and 'nonfinite' in kinds, 'diverged curve: events %s' % kinds)
div = [e for e in events if e['kind'] == 'divergence'][0]
nf = [e for e in events if e['kind'] == 'nonfinite'][0]
check(div['step'] < nf['step'], 'divergence before the non-finite value')
check(final['first_alarm'] == div['step'], 'first_alarm is the divergence step')
check(nf['loss'] is None and nf['value'] == 'inf', 'non-finite loss is null with "value"')
check(all('step' in e and e['type'] == 'event' and 'kind' in e for e in events), 'every event has "kind" and "step"')
check(all(e['schema'] == 'sgdlab.monitor/1' for e in events) and final['schema'] == 'sgdlab.monitor/1' and
      final['type'] == 'verdict', 'every line carries the schema and its type')
# Every field is there in every event (null where it does not apply: no gradient norm, no lr given).
fields = {'schema', 'type', 'kind', 'step', 'line', 'loss', 'value', 'grad_norm', 'lr', 'smoothed', 'statistic',
          'threshold', 'severity', 'suggested_action', 'suggested_lr_scale', 'remedy', 'detail'}
check(all(set(e) == fields for e in events), 'the same fields in every event: %s' % [sorted(set(e) ^ fields) for e in events][:2])
check(div['grad_norm'] is None and div['lr'] is None and div['value'] is None, 'missing values are null: %s' % div)

rc, out, err = run(['monitor', curve('fmnist-mlp__adam__lr0.001__s1.txt')])
events, final = jsonl(out)
check(rc == 0 and final['verdict'] == 'healthy' and final['first_alarm'] is None and final['steps'] == 600,
      'healthy curve: %s' % final)

rc, out, err = run(['monitor', curve('fmnist-mlp__sgd__lr0.0001__s1.txt')])
events, final = jsonl(out)
check(final['verdict'] == 'stagnant', 'stagnant curve: %s' % final['verdict'])

# ---------------------------------------------------------------- standard input, '-' and none
text = open(curve('regress-mlp__momentum__lr10__s1.txt')).read()
for args in (['monitor', '-'], ['monitor']):
    rc, out, err = run(args, stdin_text=text)
    events, final = jsonl(out)
    check(rc == 0 and final['verdict'] == 'diverged' and final['steps'] == 10, 'stdin %s: %s %s' % (args, final, err))

# ---------------------------------------------------------------- empty input
rc, out, err = run(['monitor', '-'], stdin_text='')
events, final = jsonl(out)
check(rc == 0 and final['steps'] == 0 and final['verdict'] == 'healthy' and final['first_alarm'] is None,
      'empty input: %s' % final)

# ---------------------------------------------------------------- format: header, comments, blanks, columns, CRLF
lines = ['# a comment', 'step,loss,grad_norm', '']
for i in range(40):
    lines.append('%d, %.6f, %.3f' % (i, 2.3 * (0.98 ** i), 1.0))
lines.append('40, nan, 1.0')
lines.append('41 -inf 1.0')
lines.append('')
rc, out, err = run(['monitor', '--column', '2'], stdin_text='\r\n'.join(lines) + '\r\n')
events, final = jsonl(out)
check(rc == 0, 'csv input: exit %d (%s)' % (rc, err))
check(final['steps'] == 42, 'csv input: steps %s' % final['steps'])
nfs = [e for e in events if e['kind'] == 'nonfinite']
check([e['step'] for e in nfs] == [40, 41], 'csv input: nonfinite at 40, 41: %s' % nfs)
check(nfs and nfs[0]['value'] == 'nan' and nfs[0]['line'] == 44, 'csv input: value/line of the nan: %s' % nfs[:1])
check(nfs[1:] and nfs[1]['value'] == '-inf', 'csv input: -inf read')

# default column = the last: here the gradient norm column (constant 1.0)
rc, out, err = run(['monitor'], stdin_text='\n'.join(lines[:43]) + '\n')
events, final = jsonl(out)
check(rc == 0 and final['steps'] == 40 and abs(final['initial'] - 1.0) < 1e-9, 'default column is the last: %s' % final)

# gradient norm column: inf gradient with a finite loss is a nonfinite event
g = ['%.4f %.3f' % (2.0, 1.0) for _ in range(10)] + ['2.0 inf'] + ['2.0 1.0'] * 5
rc, out, err = run(['monitor', '-c', '1', '-g', '2'], stdin_text='\n'.join(g) + '\n')
events, final = jsonl(out)
nfs = [e for e in events if e['kind'] == 'nonfinite']
check(len(nfs) == 1 and nfs[0]['step'] == 10 and nfs[0]['grad_norm'] is None, 'grad column inf: %s' % nfs)
check(final['verdict'] == 'diverged', 'grad column inf: verdict %s' % final['verdict'])

# learning-rate column is echoed in events
lr_lines = ['%g 0.1' % (2.3 * 4 ** i) for i in range(6)]
rc, out, err = run(['monitor', '-c', '1', '-l', '2'], stdin_text='\n'.join(lr_lines) + '\n')
events, final = jsonl(out)
check(events and all(e.get('lr') == 0.1 for e in events), 'lr column echoed: %s' % events[:1])

# ---------------------------------------------------------------- unreadable input: exit 2 naming the line
rc, out, err = run(['monitor'], stdin_text='1.0\n2.0\n\n1.5abc\n')
check(rc == 2 and '<stdin>:4' in err and '1.5abc' in err, 'bad number: rc %d, %r' % (rc, err))
bad = tmpfile('loss\n1.0\n0.9\nfoo bar\n')
rc, out, err = run(['monitor', bad])
check(rc == 2 and (bad + ':4') in err, 'bad line in a file: rc %d, %r' % (rc, err))
os.unlink(bad)
rc, out, err = run(['monitor', '--column', '3'], stdin_text='1.0 2.0\n')
check(rc == 2 and ':1' in err and 'column 3' in err, 'missing column: rc %d, %r' % (rc, err))
rc, out, err = run(['monitor', '-c', '1', '-g', '2'], stdin_text='1.0 -3\n')
check(rc == 2 and ':1' in err, 'negative gradient norm: rc %d, %r' % (rc, err))
rc, out, err = run(['monitor', '/nonexistent/loss.txt'])
check(rc == 2 and 'nonexistent' in err, 'missing file: rc %d' % rc)
rc, out, err = run(['monitor'], stdin_text='1.0\n' + 'x' * 70000 + '\n')
check(rc == 2 and 'longer than' in err, 'overlong line: rc %d, %r' % (rc, err))

# ---------------------------------------------------------------- --fail-on
rc, _, _ = run(['monitor', '--fail-on', 'divergence', curve('regress-mlp__sgd__lr1__s1.txt')])
check(rc == 1, '--fail-on divergence on a diverged curve: %d' % rc)
rc, _, _ = run(['monitor', '--fail-on', 'divergence,nonfinite', curve('fmnist-mlp__adam__lr0.001__s1.txt')])
check(rc == 0, '--fail-on divergence on a healthy curve: %d' % rc)
rc, _, _ = run(['monitor', '--fail-on', 'stagnant', curve('fmnist-mlp__sgd__lr0.0001__s1.txt')])
check(rc == 1, '--fail-on stagnant (a verdict): %d' % rc)
rc, _, _ = run(['monitor', '--fail-on=alarm', curve('fmnist-mlp__sgd__lr0.0001__s1.txt')])
check(rc == 1, '--fail-on=alarm: %d' % rc)
rc, _, err = run(['monitor', '--fail-on', 'bogus', curve('fmnist-mlp__sgd__lr0.0001__s1.txt')])
check(rc == 2 and 'bogus' in err, '--fail-on unknown kind: %d' % rc)

# ---------------------------------------------------------------- --set
rc, out, _ = run(['monitor', '--set', 'stagnation_steps=1000', curve('fmnist-mlp__sgd__lr0.0001__s1.txt')])
events, final = jsonl(out)
check(rc == 0 and final['verdict'] == 'healthy', '--set stagnation_steps=1000: %s' % final['verdict'])
rc, out, err = run(['monitor', '--set', 'divergence_ratio=0.5', '-'], stdin_text='1\n')
check(rc == 2 and 'divergence_ratio' in err, '--set out of range: %d %r' % (rc, err))

# ---------------------------------------------------------------- --human, --help, dispatcher
rc, out, err = run(['monitor', '--human', curve('regress-mlp__sgd__lr1__s1.txt')])
check(rc == 0 and 'verdict: diverged' in out and 'divergence' in out and 'suggestion' in out, '--human: %r' % out[-300:])
rc, out, _ = run(['monitor', '--help'])
check(rc == 0 and 'usage: sgdlab monitor' in out and '--fail-on' in out, 'monitor --help')
rc, out, _ = run(['help', 'monitor'])
check(rc == 0 and 'usage: sgdlab monitor' in out, 'help monitor')
rc, out, _ = run(['--help'])
check(rc == 0 and 'monitor' in out, 'sgdlab --help')
rc, out, _ = run(['--version'])
check(rc == 0 and out.startswith('sgdlab '), 'sgdlab --version')
rc, _, _ = run([])
check(rc == 2, 'sgdlab without a command: %d' % rc)
rc, _, err = run(['frobnicate'])
check(rc == 2 and 'frobnicate' in err, 'unknown command')
rc, _, err = run(['monitor', '--bogus'])
check(rc == 2 and '--bogus' in err, 'unknown option')
rc, _, err = run(['monitor', 'a.txt', 'b.txt'])
check(rc == 2, 'two inputs')
rc, _, err = run(['monitor', '--column', '0'], stdin_text='1\n')
check(rc == 2, '--column 0')


# ---------------------------------------------------------------- a live pipe: events before the writer closes
def read_line_within(stream, seconds):
    end = time.time() + seconds
    buf = b''
    while time.time() < end:
        r, _, _ = select.select([stream], [], [], 0.1)
        if r:
            ch = os.read(stream.fileno(), 1)
            if not ch:
                break
            buf += ch
            if ch == b'\n':
                return buf.decode()
    return None


p = subprocess.Popen([EXE, 'monitor', '-'], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
for i in range(20):
    p.stdin.write(b'%f\n' % (2.3 * 0.99 ** i))
p.stdin.write(b'50.0\n60.0\n')  # a run-away: divergence on the second value
p.stdin.flush()
seen = []
for _ in range(3):  # a spike may come first
    line = read_line_within(p.stdout, 10)
    if line is None:
        break
    seen.append(json.loads(line)['kind'])
    if seen[-1] == 'divergence':
        break
check('divergence' in seen, 'pipe: divergence reported while the writer is still open: %r' % seen)
p.stdin.write(b'70.0\n')
p.stdin.close()
rest = p.stdout.read().decode()
p.wait(timeout=10)
final = json.loads(rest.strip().splitlines()[-1])
check(p.returncode == 0 and final['steps'] == 23 and final['verdict'] == 'diverged', 'pipe: final %s' % final)
p.stdout.close()
p.stderr.close()

# ---------------------------------------------------------------- a growing file: --follow with --idle
grow = tmpfile(''.join('%f\n' % (2.3 * 0.99 ** i) for i in range(30)))
p = subprocess.Popen([EXE, 'monitor', '--follow', '--idle', '1.5', grow], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
time.sleep(0.4)
with open(grow, 'a') as f:
    f.write('1.0')  # a partial line: must wait for its end
    f.flush()
    time.sleep(0.3)
    f.write('\n2.0\n3.0\n500.0\n')
out, err = p.communicate(timeout=20)
events, final = jsonl(out.decode())
check(p.returncode == 0 and final['steps'] == 34, '--follow: final %s (%s)' % (final, err.decode()))
check(any(e['kind'] == 'divergence' and e['step'] == 33 for e in events), '--follow: divergence at 33: %s' % events)

# --follow stopped by SIGINT still prints the verdict
p = subprocess.Popen([EXE, 'monitor', '--follow', grow], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
time.sleep(0.5)
p.send_signal(signal.SIGINT)
out, err = p.communicate(timeout=20)
events, final = jsonl(out.decode())
check(p.returncode == 0 and final['steps'] == 34, '--follow + SIGINT: %s rc %d' % (final, p.returncode))
os.unlink(grow)

if failures:
    print('%d failure(s)' % len(failures), file=sys.stderr)
    sys.exit(1)
print('cli monitor: OK')
