#!/usr/bin/env python3
"""`sgdlab lr-find --from FILE` on a range test run by PyTorch (tests/data/lrfind,
written by tests/gen_lrfind_torch.py): the log and the CSV of the same test give
the same suggestions, so does Lightning's {"lr": [...], "loss": [...]}; bad
input is refused with exit status 2.

usage: test_cli_lrfind_from.py SGDLAB_EXE LRFIND_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

EXE, DIR = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL:', what, file=sys.stderr)


def same(x, y):
    """The same suggestions (indices equal, rates to the digits the files keep)."""
    return all(x[k]['index'] == y[k]['index'] and abs(x[k]['lr'] - y[k]['lr']) <= 1e-5 * x[k]['lr'] for k in x)


def run(args, timeout=60):
    p = subprocess.run([EXE, 'lr-find'] + args, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


log = os.path.join(DIR, 'torch-range-test.log')
csv = os.path.join(DIR, 'torch-range-test.csv')
rc, out, err = run(['--from', log, '--json'])
check(rc == 0, 'the torch log: rc %d %r' % (rc, err))
a = json.loads(out)
check(a['points'] == 99 and a['from'] == log and a['end'] == 'the smoothed loss passed 4x its best',
      'the torch log: %s' % {k: a[k] for k in ('points', 'end')})
check(a['suggestion'] is not None and 0.01 < a['suggestion'] < 0.1, 'a suggestion where the loss falls: %s'
      % a['suggestion'])
rc, out, err = run(['--from', csv, '--json'])
b = json.loads(out)
check(rc == 0 and same(a['suggestions'], b['suggestions']), 'the CSV gives the same suggestions: %s %s'
      % (a['suggestions'], b['suggestions']))
# Lightning's LRFinder.results dumped as JSON
rows = [l.strip().split(',') for l in open(csv)][1:]
tmp = tempfile.mkdtemp()
lj = os.path.join(tmp, 'lr_find.json')
with open(lj, 'w') as f:
    json.dump({'lr': [float(r[0]) for r in rows], 'loss': [float(r[1]) for r in rows]}, f)
rc, out, err = run(['--from', lj, '--json'])
c = json.loads(out) if rc == 0 else {}
check(rc == 0 and same(c['suggestions'], a['suggestions']), "Lightning's results dict: %d %r" % (rc, err))
# text report, --method, --csv
rc, out, err = run(['--from', log, '--method', 'valley'])
check(rc == 0 and 'the range test in' in out and 'suggested learning rate' in out and '(valley)' in out,
      'the text report: %r' % out[:300])
rc, out, err = run(['--from', log, '--csv'])
check(rc == 0 and out.startswith('step,lr,loss') and len(out.splitlines()) == 100, '--csv: %d lines' %
      len(out.splitlines()))
# --key/--lr-key name other fields
renamed = os.path.join(tmp, 'renamed.log')
with open(renamed, 'w') as f:
    for r in rows:
        f.write('rate %s objective %s\n' % (r[0], r[1]))
rc, out, err = run(['--from', renamed, '--key', 'objective', '--lr-key', 'rate', '--json'])
check(rc == 0 and same(json.loads(out)['suggestions'], a['suggestions']), '--key/--lr-key: %d %r' % (rc, err))
# errors
rc, out, err = run(['--from', os.path.join(tmp, 'missing.log')])
check(rc == 2 and 'missing.log' in err, 'a missing file: %d %r' % (rc, err))
nolr = os.path.join(tmp, 'nolr.log')
with open(nolr, 'w') as f:
    f.write('loss 2.3\nloss 2.2\n')
rc, out, err = run(['--from', nolr])
check(rc == 2 and 'learning rate' in err, 'no learning rate: %d %r' % (rc, err))
down = os.path.join(tmp, 'down.csv')
with open(down, 'w') as f:
    f.write('lr,loss\n0.1,2.3\n0.01,2.2\n')
rc, out, err = run(['--from', down])
check(rc == 2 and 'increase' in err, 'decreasing learning rates: %d %r' % (rc, err))
rc, out, err = run(['--from', log, '--data', 'spirals'])
check(rc == 2 and '--data' in err, '--from with --data: %d %r' % (rc, err))
rc, out, err = run(['--key', 'x'])
check(rc == 2 and '--from' in err, '--key without --from: %d %r' % (rc, err))
shutil.rmtree(tmp)
if failures:
    print('%d failure(s)' % len(failures), file=sys.stderr)
    sys.exit(1)
print('lr-find --from: OK')
