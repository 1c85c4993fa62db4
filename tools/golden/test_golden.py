#!/usr/bin/env python3
"""Tests of sgdlab-golden itself: broken fixtures are reported as malformed
with their line number (never crashed on), a perturbed reference value FAILs,
and the exit status says whether every file passed.

usage: test_golden.py SGDLAB_GOLDEN GOLDEN_DIR
"""
import os
import random
import subprocess
import sys
import tempfile

EXE, GOLDEN_DIR = sys.argv[1], sys.argv[2]
BASE = os.path.join(GOLDEN_DIR, 'optim__adam_default.txt')
failures = []


def run(*paths):
    p = subprocess.run([EXE, *paths], capture_output=True, text=True, errors='replace', timeout=120)
    if p.returncode < 0:
        raise AssertionError('sgdlab-golden died of signal %d on %s' % (-p.returncode, paths))
    return p.returncode, p.stdout.splitlines(), p.stderr


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAILED:', what)


def write(tmp, name, text, mode='w'):
    path = os.path.join(tmp, name)
    with open(path, mode) as f:
        f.write(text)
    return path


def expect_malformed(tmp, name, text, line, needle=''):
    path = write(tmp, name, text, 'wb' if isinstance(text, bytes) else 'w')
    rc, out, _ = run(path)
    ok = (rc == 1 and len(out) == 1 and out[0].startswith('FAIL %s malformed: ' % path)
          and ('line %d:' % line) in out[0] and needle in out[0])
    check(ok, '%s: expected "malformed ... line %d ... %s", got rc=%d %r' % (name, line, needle, rc, out))


with open(BASE) as f:
    base = f.read()
lines = base.splitlines(keepends=True)
# Line numbers (1-based) of the base fixture's parts.
idx = {}
for i, l in enumerate(lines, 1):
    w = l.split()[0] if l.strip() else ''
    idx.setdefault(w, []).append(i)
g1, x1 = idx['g'][0], idx['x'][0]
nl = idx['n'][0]

with tempfile.TemporaryDirectory() as tmp:
    # The base passes, as it is.
    rc, out, _ = run(BASE)
    check(rc == 0 and out[0].startswith('PASS ' + BASE + ' worst='), 'base fixture passes: %r' % out)

    # Wrong counts.
    bad = lines[:]
    bad[x1 - 1] = ' '.join(bad[x1 - 1].split()[:-1]) + '\n'
    expect_malformed(tmp, 'short_x.txt', ''.join(bad), x1, "'x' has 6 numbers, expected 7")
    bad = lines[:]
    bad[g1 - 1] = bad[g1 - 1].rstrip('\n') + ' 1.5\n'
    expect_malformed(tmp, 'long_g.txt', ''.join(bad), g1, 'more than the 7')
    bad = lines[:]
    bad[nl - 1] = 'n 7 steps 41\n'
    expect_malformed(tmp, 'too_many_steps.txt', ''.join(bad), len(lines), 'truncated')
    bad = lines[:]
    bad[nl - 1] = 'n 7 steps 39\n'
    expect_malformed(tmp, 'too_few_steps.txt', ''.join(bad), len(lines) - 2, 'after the 39 steps')
    bad = lines[:]
    bad[nl - 1] = 'n 99999999999999 steps 1\n'
    expect_malformed(tmp, 'huge_n.txt', ''.join(bad), nl, 'n N steps T')
    bad = lines[:]
    bad[nl - 1] = 'n 7 stepz 40\n'
    expect_malformed(tmp, 'bad_header.txt', ''.join(bad), nl, 'n N steps T')
    bad = lines[:]
    bad[nl - 1] = 'n -7 steps 40\n'
    expect_malformed(tmp, 'negative_n.txt', ''.join(bad), nl, 'n N steps T')

    # Bad numbers.
    for name, tok in [('dots', '1.0.0'), ('nan', 'nan'), ('inf', '-inf'), ('hex', '0x10'), ('word', 'abc'),
                      ('overflow', '1e999'), ('comma', '1,5')]:
        bad = lines[:]
        parts = bad[x1 - 1].split()
        parts[3] = tok
        bad[x1 - 1] = ' '.join(parts) + '\n'
        expect_malformed(tmp, 'num_%s.txt' % name, ''.join(bad), x1, "'x' value 3")
    bad = lines[:]
    si = idx['step'][4]
    bad[si - 1] = 'step 9 lr 0.01\n'
    expect_malformed(tmp, 'step_order.txt', ''.join(bad), si, "expected 'step 5 lr L'")
    bad = lines[:]
    bad[si - 1] = 'step 5 lr fast\n'
    expect_malformed(tmp, 'step_lr.txt', ''.join(bad), si, "expected 'step 5 lr L'")
    bad = lines[:]
    bad[g1 - 1], bad[x1 - 1] = bad[x1 - 1], bad[g1 - 1]
    expect_malformed(tmp, 'swapped.txt', ''.join(bad), g1, "expected 'g', found 'x'")

    # Truncated: at the end of each line, and in the middle of a number.
    for cut in range(2, len(lines)):
        text = ''.join(lines[:cut])
        path = write(tmp, 'trunc_%d.txt' % cut, text)
        rc, out, _ = run(path)
        check(rc == 1 and out and ' malformed: ' in out[0] and 'truncated' in out[0],
              'truncated after line %d: %r' % (cut, out))
    text = base[:base.index(lines[x1 - 1]) + 30]
    expect_malformed(tmp, 'trunc_number.txt', text, x1, "'x' has")

    # Directives.
    expect_malformed(tmp, 'empty.txt', '', 0, 'no directive')
    expect_malformed(tmp, 'comments.txt', '# only\n\n  # comments\n', 3, 'no directive')
    expect_malformed(tmp, 'unknown.txt', '# x\noptimiser adam\n', 2, "unknown directive 'optimiser'")
    expect_malformed(tmp, 'nokind.txt', 'optimizer\nn 1 steps 0\nx0 1\n', 1, 'needs a kind')
    expect_malformed(tmp, 'binary.txt', b'optimizer adam\n\x00\x01\x02\xff\n', 2, "expected 'n'")
    expect_malformed(tmp, 'spec_inject.txt', 'optimizer adam lr=1,eps=2\nn 1 steps 0\nx0 1\n', 1, 'not allowed')

    # Random corruption of bytes: reported, never crashed on.
    rnd = random.Random(1)
    data = base.encode()
    for k in range(150):
        b = bytearray(data)
        for _ in range(rnd.randint(1, 8)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        if rnd.random() < 0.3:
            b = b[:rnd.randrange(len(b))]
        path = write(tmp, 'fuzz_%d.txt' % k, bytes(b), 'wb')
        rc, out, _ = run(path)
        check(rc in (0, 1) and len(out) == 1 and (out[0].startswith('PASS ') or out[0].startswith('FAIL ')),
              'corrupted fixture %d: rc=%d %r' % (k, rc, out))

    # Understood but failing: a perturbed reference value, a kind the library does not have.
    bad = lines[:]
    parts = bad[x1 - 1].split()
    parts[2] = repr(float(parts[2]) * 1.01)
    bad[x1 - 1] = ' '.join(parts) + '\n'
    path = write(tmp, 'perturbed.txt', ''.join(bad))
    rc, out, _ = run(path)
    check(rc == 1 and out[0].startswith('FAIL %s worst=' % path) and 'malformed' not in out[0]
          and 'step 1 x[1]' in out[0], 'perturbed value: %r' % out)
    worst = float(out[0].split('worst=')[1].split()[0])
    check(0.009 < worst < 0.011, 'perturbed by 1%%: worst %g' % worst)
    path = write(tmp, 'lbfgs.txt', base.replace('optimizer adam', 'optimizer lbfgs', 1))
    rc, out, _ = run(path)
    check(rc == 1 and 'refused' in out[0] and 'lbfgs' in out[0] and 'malformed' not in out[0], 'unknown kind: %r' % out)
    path = write(tmp, 'badkey.txt', base.replace('optimizer adam', 'optimizer adam momentum=0.9', 1))
    rc, out, _ = run(path)
    check(rc == 1 and "'momentum'" in out[0], 'unknown key: %r' % out)

    # An lr column that follows a schedule is checked against libsgdlab's schedule.
    sched_base = os.path.join(GOLDEN_DIR, 'optim__adam_under_step_schedule.txt')
    with open(sched_base) as f:
        sb = f.read()
    rc, out, _ = run(sched_base)
    check(rc == 0 and "lr column = schedule 'step:step_size=7,gamma=0.5'" in out[0], 'schedule column: %r' % out)
    path = write(tmp, 'sched_wrong.txt', sb.replace('step_size=7 gamma=0.5', 'step_size=6 gamma=0.5'))
    rc, out, _ = run(path)
    check(rc == 1 and 'step 7 lr' in out[0] and 'malformed' not in out[0], 'schedule disagrees: %r' % out)
    path = write(tmp, 'sched_unknown.txt', sb.replace('schedule step step_size', 'schedule stepp step_size'))
    rc, out, _ = run(path)
    check(rc == 1 and 'stepp' in out[0] and 'refused' in out[0], 'unknown schedule: %r' % out)
    path = write(tmp, 'sched_bad.txt', sb.replace('step_size=7 gamma=0.5', 'step_size=7 gamma'))
    expect_malformed(tmp, 'sched_bad.txt', sb.replace('step_size=7 gamma=0.5', 'step_size=7 gamma'), 3,
                     'not key=value')

    # Several files: one line each, in order; exit 1 if any fails, 0 if none.
    good2 = os.path.join(GOLDEN_DIR, 'optim__sgd_plain.txt')
    missing = os.path.join(tmp, 'does_not_exist.txt')
    rc, out, _ = run(BASE, missing, good2)
    check(rc == 1 and len(out) == 3 and out[0].startswith('PASS ') and out[1].startswith('FAIL ' + missing)
          and 'cannot open' in out[1] and out[2].startswith('PASS '), 'three files: %r' % out)
    rc, out, _ = run(BASE, good2)
    check(rc == 0 and len(out) == 2, 'two good files: rc=%d' % rc)
    rc, out, err = run()
    check(rc == 2 and 'usage' in err, 'no arguments: rc=%d' % rc)

    # Scheduler files go to the sched module's checker (or say that it is missing from this build).
    sched = os.path.join(GOLDEN_DIR, 'sched__step.txt')
    rc, out, _ = run(sched)
    check(len(out) == 1 and (out[0].startswith('PASS ' + sched) or
                             out[0].startswith('FAIL ' + sched)), 'scheduler file: %r' % out)

if failures:
    print('%d check(s) failed' % len(failures))
    sys.exit(1)
print('sgdlab-golden: all checks passed')
