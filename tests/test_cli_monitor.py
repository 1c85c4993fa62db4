#!/usr/bin/env python3
"""Tests of `sgdlab monitor`: files, standard input, a live pipe, a growing file
(--follow, truncation), the reading rules on each failure of issue 13 (numbers
after words, evaluation lines, lines that cannot be read, JSON and dicts,
CR-only endings, NUL bytes, a byte-order mark, negative losses, an all-NaN
run), runs, the producer of a pipe never killed, no silent verdicts,
--fail-on, --exit-early, --key/--match/--column, --initial-loss/--classes,
--human, --set, and the dispatcher's own options. The log corpus is
tests/test_log_corpus.py.

usage: test_cli_monitor.py SGDLAB_EXE CURVES_DIR
"""
import json
import math
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


def run(args, stdin_text=None, timeout=60, binary=False):
    p = subprocess.run([EXE] + args, input=stdin_text, capture_output=True, text=not binary, timeout=timeout)
    out = p.stdout.decode() if binary else p.stdout
    err = p.stderr.decode() if binary else p.stderr
    return p.returncode, out, err


def jsonl(out):
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    events = [r for r in rows if r.get('type') == 'event']
    verdicts = [r for r in rows if r.get('type') == 'verdict']
    return events, (verdicts[-1] if verdicts else None), verdicts


def curve(name):
    return os.path.join(CURVES, name)


def tmpfile(text, mode='w'):
    f = tempfile.NamedTemporaryFile(mode, suffix='.txt', delete=False)
    f.write(text)
    f.close()
    return f.name


# ---------------------------------------------------------------- a file
rc, out, err = run(['monitor', curve('regress-mlp__sgd__lr1__s1.txt')])
check(rc == 0, 'diverged curve: exit 0 without --fail-on (got %d, %s)' % (rc, err))
events, final, _ = jsonl(out)
check(final['verdict'] == 'diverged', 'diverged curve: verdict %s' % final['verdict'])
check(final['steps'] == 17, 'diverged curve: steps %s' % final['steps'])
kinds = [e['kind'] for e in events]
check('divergence' in kinds and 'nonfinite' in kinds, 'diverged curve: events %s' % kinds)
div = [e for e in events if e['kind'] == 'divergence'][0]
nf = [e for e in events if e['kind'] == 'nonfinite'][0]
check(div['step'] < nf['step'], 'divergence before the non-finite value')
check(final['first_alarm'] == div['step'], 'first_alarm is the divergence step')
check(nf['loss'] is None and nf['value'] == 'inf', 'non-finite loss is null with "value"')
fields = {'schema', 'type', 'kind', 'run', 'step', 'producer_step', 'line', 'loss', 'value', 'grad_norm', 'lr',
          'smoothed', 'statistic', 'threshold', 'ref_step', 'ref_producer_step', 'severity', 'suggested_action',
          'suggested_lr_scale', 'remedy', 'detail'}
check(all(set(e) == fields for e in events), 'the same fields in every event: %s'
      % [sorted(set(e) ^ fields) for e in events][:2])
check(all(e['schema'] == 'sgdlab.monitor/1' for e in events) and final['schema'] == 'sgdlab.monitor/1',
      'every line carries the schema')
check(div['grad_norm'] is None and div['lr'] is None and div['producer_step'] is None, 'missing values are null')
check(final['key'] == 'the number' and final['lines'] == 18 and final['skipped'] == 0, 'summary: %s' % final)

rc, out, err = run(['monitor', curve('fmnist-mlp__adam__lr0.001__s1.txt')])
events, final, _ = jsonl(out)
check(rc == 0 and final['verdict'] == 'healthy' and final['first_alarm'] is None and final['steps'] == 600,
      'healthy curve: %s' % final)

rc, out, err = run(['monitor', curve('fmnist-mlp__sgd__lr0.0001__s1.txt')])
events, final, _ = jsonl(out)
check(final['verdict'] == 'stagnant', 'stagnant curve: %s' % final['verdict'])

# ---------------------------------------------------------------- standard input, '-' and none
text = open(curve('regress-mlp__momentum__lr10__s1.txt')).read()
for args in (['monitor', '-'], ['monitor']):
    rc, out, err = run(args, stdin_text=text)
    events, final, _ = jsonl(out)
    check(rc == 0 and final['verdict'] == 'diverged' and final['steps'] == 10, 'stdin %s: %s %s' % (args, final, err))

# ---------------------------------------------------------------- no silent verdicts
rc, out, err = run(['monitor', '-'], stdin_text='')
check(rc == 2 and out == '' and 'no training loss' in err, 'empty input: exit 2 with a message: %d %r' % (rc, err))
words = 'epoch one starts\nthe model is warming up\nsaving checkpoint to out\n'
rc, out, err = run(['monitor', '--fail-on', 'any'], stdin_text=words)
check(rc == 2 and 'line 1: epoch one starts' in err and 'line 3: saving checkpoint' in err and 'in 3 line(s)' in err,
      '--fail-on never passes on no data; the message shows the lines it could not use: %d %r' % (rc, err))

# ---------------------------------------------------------------- numbers after words (issue 13)
lines = ['step %d | loss %.4f | lr 3e-4' % (10 * i, 2.31 * 0.99 ** i) for i in range(40)]
rc, out, err = run(['monitor'], stdin_text='\n'.join(lines) + '\n')
events, final, _ = jsonl(out)
check(rc == 0 and final['steps'] == 40 and final['key'] == 'loss' and final['first_producer_step'] == 0,
      '"step 10 | loss 2.31 | lr 3e-4": %s %s' % (final, err))
lines = ['s:%d trl:%.4f lr:0.000001 norm:15.37' % (i, 11.0091 - 0.05 * i) for i in range(30)]
rc, out, err = run(['monitor'], stdin_text='\n'.join(lines) + '\n')
events, final, _ = jsonl(out)
check(rc == 0 and final['steps'] == 30 and final['key'] == 'trl', "llm.c's s:0 trl:11.0091: %s" % final)
lines = ['step=%d loss=%.3f' % (i, 2.3 - 0.01 * i) for i in range(30)]
rc, out, err = run(['monitor'], stdin_text='\n'.join(lines) + '\n')
events, final, _ = jsonl(out)
check(rc == 0 and final['steps'] == 30, 'step=0 loss=2.3: %s' % final)
# a negative-loss log: read, and said (never clamped silently)
lines = ['step=%d loss=%.3f' % (i, -2.3 - 0.05 * i) for i in range(30)]
rc, out, err = run(['monitor'], stdin_text='\n'.join(lines) + '\n')
events, final, _ = jsonl(out)
check(rc == 0 and final['steps'] == 30 and final['below_floor_steps'] == 30 and 'at or below the floor' in err and
      ':1:' in err, 'negative losses: counted and said: %s %r' % (final, err))
rc, out, err = run(['monitor', '--floor', '-5'], stdin_text='\n'.join(lines) + '\n')
events, final, _ = jsonl(out)
check(rc == 0 and final['below_floor_steps'] == 0 and err == '' and final['verdict'] == 'healthy',
      'negative losses with --floor: %s %r' % (final, err))

# ---------------------------------------------------------------- evaluation apart; the last number is not the loss
log = ['2024-01-15 10:00:%02d,000 - INFO - epoch 1 step %d loss: %.4f' % (i, i, 2.0 - 0.02 * i) for i in range(30)]
log.append('2024-01-15 10:01:00,000 - INFO - epoch 1 f1 0.8123')
rc, out, err = run(['monitor'], stdin_text='\n'.join(log) + '\n')
events, final, _ = jsonl(out)
check(final['steps'] == 30 and final['skipped'] == 1, 'Python logging: the F1 line is not a loss: %s' % final)
keras = ''.join('\b' * 60 + '\r%3d/100 [==>....] - ETA: 1s - loss: %.4f - accuracy: %.4f' % (b, 2.0 - 0.01 * b, 0.9)
                for b in range(1, 101))
rc, out, err = run(['monitor'], stdin_text='Epoch 1/1\n' + keras + '\n')
events, final, _ = jsonl(out)
check(final['steps'] == 100 and final['key'] == 'loss' and final['initial'] > 1.5, 'Keras progbar: %s' % final)
csv = 'epoch,step,train_loss,val_loss\n' + ''.join('0,%d,%.3f,\n' % (i, 2.3 - 0.01 * i) for i in range(30)) + \
    '0,29,,2.05\n'
rc, out, err = run(['monitor'], stdin_text=csv)
events, final, _ = jsonl(out)
check(final['steps'] == 30 and final['eval']['count'] == 1 and final['eval']['last'] == 2.05,
      "Lightning's empty fields kept in place: %s" % final)

# ---------------------------------------------------------------- lines that cannot be read, after data: skipped
lines = ['iter %d: loss %.4f, time 30.00ms, mfu 12.00%%' % (i, 2.0 - 0.01 * i) for i in range(20)]
lines += ['step 20: train loss 1.8000, val loss 1.9000', 'saving checkpoint to out', '## Results', '15.34%',
          '| a | markdown | line |', '1.5abc']
lines += ['iter %d: loss %.4f, time 30.00ms, mfu 12.00%%' % (i, 2.0 - 0.01 * i) for i in range(20, 40)]
rc, out, err = run(['monitor'], stdin_text='\n'.join(lines) + '\n')
events, final, _ = jsonl(out)
check(rc == 0 and final['steps'] == 40 and final['skipped'] == 4 and final['eval']['count'] == 1,
      'nanoGPT eval line, checkpoint line, markdown, 15.34%%: skipped, not fatal: %d %s %r' % (rc, final, err))

# ---------------------------------------------------------------- JSON Lines and Trainer dicts
js = ''.join('{"step": %d, "loss": %.4f, "learning_rate": 0.001}\n' % (i, 2.0 - 0.01 * i) for i in range(25))
rc, out, err = run(['monitor'], stdin_text=js)
events, final, _ = jsonl(out)
check(rc == 0 and final['steps'] == 25, 'JSON Lines: %s %s' % (final, err))
hf = ''.join("{'loss': %.4f, 'grad_norm': 1.5, 'learning_rate': 5e-05, 'epoch': %.2f}\n" % (2.0 - 0.01 * i, i / 10)
             for i in range(25))
rc, out, err = run(['monitor'], stdin_text=hf)
events, final, _ = jsonl(out)
check(rc == 0 and final['steps'] == 25, 'Trainer dicts: %s %s' % (final, err))

# ---------------------------------------------------------------- bytes: CR, NUL, BOM, overlong
rc, out, err = run(['monitor'], stdin_text='1\r2\r3\r')
events, final, _ = jsonl(out)
check(final['steps'] == 3 and final['best'] <= 2.0, "printf '1\\r2\\r3\\r': three observations: %s" % final)
rc, out, err = run(['monitor'], stdin_text=b'1.0\n2.\x005\n3.0\n', binary=True)
events, final, _ = jsonl(out)
check(final['steps'] == 3 and 'NUL' in err, 'a NUL byte is dropped and said, the line kept: %s %r' % (final, err))
rc, out, err = run(['monitor'], stdin_text=b'\xef\xbb\xbf2.5\n2.4\n', binary=True)
events, final, _ = jsonl(out)
check(rc == 0 and final['steps'] == 2 and abs(final['initial'] - 2.5) < 0.2, 'a UTF-8 BOM: %s %r' % (final, err))
rc, out, err = run(['monitor'], stdin_text='1.0\n' + 'x' * 70000 + '\n0.9\n')
events, final, _ = jsonl(out)
check(rc == 0 and final['steps'] == 2 and 'longer than' in err, 'an overlong line is skipped: %d %r' % (rc, err))

# ---------------------------------------------------------------- an all-NaN run: one event
rc, out, err = run(['monitor'], stdin_text='nan\n' * 140)
events, final, _ = jsonl(out)
check(len(events) == 1 and events[0]['kind'] == 'nonfinite' and final['nonfinite_steps'] == 140 and
      final['events']['nonfinite'] == 1, 'all-NaN: one event with the count in the verdict: %d events %s'
      % (len(events), final))

# ---------------------------------------------------------------- several runs
lines = ['step %d loss %.4f' % (i, 2.0 * 0.99 ** i) for i in range(60)] + \
        ['step %d loss %.4f' % (i, 2.0 * 1.3 ** i) for i in range(20)]
rc, out, err = run(['monitor'], stdin_text='\n'.join(lines) + '\n')
events, final, verdicts = jsonl(out)
check([v['run'] for v in verdicts] == [1, 2] and [v['steps'] for v in verdicts] == [60, 20] and
      [v['verdict'] for v in verdicts] == ['healthy', 'diverged'] and verdicts[1]['first_line'] == 61,
      'the step goes back: two runs: %s' % verdicts)
check(all(e['run'] == 2 for e in events if e['kind'] == 'divergence'), 'events carry their run')

# ---------------------------------------------------------------- producer steps, gradient-norm spikes
lines = ['step %d loss %.4f grad_norm %.3f' % (100 * i, 2.0 * 0.99 ** i, 1500.0 if i == 30 else 1.0)
         for i in range(60)]
rc, out, err = run(['monitor', '--fail-on', 'grad_spike'], stdin_text='\n'.join(lines) + '\n')
events, final, _ = jsonl(out)
gs = [e for e in events if e['kind'] == 'grad_spike']
check(rc == 1 and len(gs) == 1 and gs[0]['producer_step'] == 3000 and gs[0]['grad_norm'] == 1500.0 and
      gs[0]['line'] == 31, 'a 1500x gradient-norm spike is an event with the log step: %d %s' % (rc, gs))

# ---------------------------------------------------------------- --key, --step-key, --match, --column
lines = ['it=%d mine=%.4f loss=9' % (i, 2.0 - 0.01 * i) for i in range(30)]
rc, out, err = run(['monitor', '--key', 'mine', '--step-key', 'it'], stdin_text='\n'.join(lines) + '\n')
events, final, _ = jsonl(out)
check(rc == 0 and final['steps'] == 30 and final['key'] == 'mine' and abs(final['initial'] - 2.0) < 0.2 and
      final['first_producer_step'] == 0, '--key mine --step-key it: %s' % final)
lines = ['epoch 3 batch 7: objective -> %.4f!' % (2.0 - 0.01 * i) for i in range(30)]
rc, out, err = run(['monitor', '--match', r'objective -> ([0-9.]+)'], stdin_text='\n'.join(lines) + '\nnoise\n')
events, final, _ = jsonl(out)
check(rc == 0 and final['steps'] == 30 and final['skipped'] == 1, '--match: %s %r' % (final, err))
rc, out, err = run(['monitor', '--match', 'objective'], stdin_text='1\n')
check(rc == 2 and 'capture group' in err, '--match without a group: %d %r' % (rc, err))
rc, out, err = run(['monitor', '--match', '(['], stdin_text='1\n')
check(rc == 2 and '--match' in err, '--match with a bad regex: %d %r' % (rc, err))
lines = ['# a comment', 'step,loss,grad_norm', '']
for i in range(40):
    lines.append('%d, %.6f, %.3f' % (i, 2.3 * (0.98 ** i), 1.0))
lines.append('40, nan, 1.0')
lines.append('41 -inf 1.0')
rc, out, err = run(['monitor', '--column', '2'], stdin_text='\r\n'.join(lines) + '\r\n')
events, final, _ = jsonl(out)
check(rc == 0 and final['steps'] == 42, '--column 2: %s %s' % (final, err))
nfs = [e for e in events if e['kind'] == 'nonfinite']
check([e['step'] for e in nfs] == [40] and nfs[0]['value'] == 'nan' and nfs[0]['line'] == 44 and
      final['nonfinite_steps'] == 2, '--column 2: one nonfinite event for 40 and 41: %s' % nfs)
rc, out, err = run(['monitor'], stdin_text='\n'.join(lines[:43]) + '\n')
events, final, _ = jsonl(out)
check(rc == 0 and final['steps'] == 40 and abs(final['initial'] - 2.3) < 0.3 and final['key'] == 'loss',
      'the header names the loss column: %s' % final)
g = ['%.4f %.3f' % (2.0, 1.0) for _ in range(10)] + ['2.0 inf'] + ['2.0 1.0'] * 5
rc, out, err = run(['monitor', '-c', '1', '-g', '2'], stdin_text='\n'.join(g) + '\n')
events, final, _ = jsonl(out)
nfs = [e for e in events if e['kind'] == 'nonfinite']
check(len(nfs) == 1 and nfs[0]['step'] == 10 and nfs[0]['grad_norm'] is None, 'grad column inf: %s' % nfs)
lr_lines = ['%g 0.1' % (2.3 * 4 ** i) for i in range(6)]
rc, out, err = run(['monitor', '-c', '1', '-l', '2'], stdin_text='\n'.join(lr_lines) + '\n')
events, final, _ = jsonl(out)
check(events and all(e.get('lr') == 0.1 for e in events), 'lr column echoed: %s' % events[:1])
rc, out, err = run(['monitor', '--column', '3'], stdin_text='1.0 2.0\n')
check(rc == 2 and 'no training loss' in err, 'a missing column: no data: %d %r' % (rc, err))
rc, _, err = run(['monitor', '--key', 'a', '--column', '2'], stdin_text='1\n')
check(rc == 2 and 'choose one' in err, '--key and --column')

# ---------------------------------------------------------------- --initial-loss, --classes: an excerpt already blown up
excerpt = ''.join('s:%d trl:%.3f\n' % (5000 + i, 30.0 * (1 + 0.01 * math.sin(i))) for i in range(50))
rc, out, err = run(['monitor'], stdin_text=excerpt)
events, final, _ = jsonl(out)
check(final['verdict'] != 'diverged' and 'starts at step 5000' in err, 'an excerpt without its level: %s %r'
      % (final['verdict'], err))
for opts in (['--classes', '10'], ['--initial-loss', '2.302585']):
    rc, out, err = run(['monitor'] + opts, stdin_text=excerpt)
    events, final, _ = jsonl(out)
    check(final['verdict'] == 'diverged' and events and events[0]['kind'] == 'divergence' and events[0]['step'] == 0,
          'an excerpt already blown up, %s: %s' % (opts, final))
rc, _, err = run(['monitor', '--classes', '10', '--initial-loss', '2'], stdin_text='1\n')
check(rc == 2 and 'choose one' in err, '--classes and --initial-loss')

# ---------------------------------------------------------------- --fail-on, --exit-early
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
rc, out, _ = run(['monitor', '--fail-on', 'divergence', '--exit-early', curve('regress-mlp__sgd__lr1__s1.txt')])
events, final, _ = jsonl(out)
check(rc == 1 and events[-1]['kind'] == 'divergence' and final['steps'] < 17,
      '--exit-early stops at the match: %d %s' % (rc, final))
rc, _, err = run(['monitor', '--exit-early'], stdin_text='1\n')
check(rc == 2 and '--fail-on' in err, '--exit-early needs --fail-on')

# ---------------------------------------------------------------- the producer of a pipe is never killed
producer = ('import sys\n'
            'for i in range(20000):\n'
            '    print("step %d loss %f" % (i, 2.0 * 1.5 ** min(i, 60) if i > 10 else 2.0), flush=(i % 1000 == 0))\n'
            'print("done", file=sys.stderr)\n')
prod = subprocess.Popen([sys.executable, '-c', producer], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
mon = subprocess.Popen([EXE, 'monitor', '--fail-on', 'any'], stdin=prod.stdout, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
prod.stdout.close()
mout, merr = mon.communicate(timeout=60)
perr = prod.stderr.read()
prod.wait(timeout=60)
prod.stderr.close()
check(prod.returncode == 0 and b'done' in perr and mon.returncode == 1,
      'python train.py | sgdlab monitor --fail-on any: the producer ran to its end (rc %d, %r), monitor rc %d'
      % (prod.returncode, perr[-200:], mon.returncode))
# ... also when the monitor's own reader goes away (| head -n 1)
prod = subprocess.Popen([sys.executable, '-c', producer], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
mon = subprocess.Popen([EXE, 'monitor'], stdin=prod.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
prod.stdout.close()
first = mon.stdout.readline()
mon.stdout.close()
merr = mon.stderr.read()
mon.wait(timeout=60)
mon.stderr.close()
perr = prod.stderr.read()
prod.wait(timeout=60)
prod.stderr.close()
check(first and prod.returncode == 0 and b'done' in perr and mon.returncode == 1 and b'write error' in merr,
      'sgdlab monitor | head -n 1: the producer still ran to its end (rc %d), monitor rc %d %r'
      % (prod.returncode, mon.returncode, merr[-200:]))

# ---------------------------------------------------------------- --set, --human, --help, dispatcher
rc, out, _ = run(['monitor', '--set', 'stagnation_steps=1000,min_steps=1000', curve('fmnist-mlp__sgd__lr0.0001__s1.txt')])
events, final, _ = jsonl(out)
check(rc == 0 and final['verdict'] == 'healthy', '--set stagnation_steps=1000: %s' % final['verdict'])
rc, out, err = run(['monitor', '--set', 'divergence_ratio=0.5', '-'], stdin_text='1\n')
check(rc == 2 and 'divergence_ratio' in err, '--set out of range: %d %r' % (rc, err))
rc, out, err = run(['monitor', '--human', curve('regress-mlp__sgd__lr1__s1.txt')])
check(rc == 0 and 'verdict: diverged' in out and 'divergence' in out and 'suggestion' in out and
      'read: 18 line(s), 0 skipped' in out, '--human: %r' % out[-400:])
rc, out, _ = run(['monitor', '--help'])
check(rc == 0 and 'usage: sgdlab monitor' in out and '--fail-on' in out and 'python -u' in out, 'monitor --help')
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
rc, _, err = run(['monitor', '/nonexistent/loss.txt'])
check(rc == 2 and 'nonexistent' in err, 'missing file: rc %d' % rc)
rc, _, err = run(['monitor', '/'])
check(rc == 2 and 'directory' in err, 'a directory: rc %d %r' % (rc, err))


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
events, final, _ = jsonl(out.decode())
check(p.returncode == 0 and final['steps'] == 34, '--follow: final %s (%s)' % (final, err.decode()))
check(any(e['kind'] == 'divergence' and e['step'] == 33 for e in events), '--follow: divergence at 33: %s' % events)

# --follow stopped by SIGINT still prints the verdict
p = subprocess.Popen([EXE, 'monitor', '--follow', grow], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
time.sleep(0.5)
p.send_signal(signal.SIGINT)
out, err = p.communicate(timeout=20)
events, final, _ = jsonl(out.decode())
check(p.returncode == 0 and final['steps'] == 34, '--follow + SIGINT: %s rc %d' % (final, p.returncode))

# --follow on a file that is truncated and written again: read from its start, as a new run
p = subprocess.Popen([EXE, 'monitor', '--follow', '--idle', '2', grow], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
time.sleep(0.6)
with open(grow, 'w') as f:
    f.write(''.join('%f\n' % (3.0 * 0.99 ** i) for i in range(12)))
out, err = p.communicate(timeout=20)
events, final, verdicts = jsonl(out.decode())
check(p.returncode == 0 and [v['steps'] for v in verdicts] == [34, 12] and b'truncated' in err,
      '--follow, truncated: %s %r' % ([v['steps'] for v in verdicts], err))
os.unlink(grow)

if failures:
    print('%d failure(s)' % len(failures), file=sys.stderr)
    sys.exit(1)
print('cli monitor: OK')
