#!/usr/bin/env python3
"""The corpus of training logs (tests/data/logs, written by tests/gen_log_corpus.py):
every log read as it comes, with the expected number of training observations per
run, the expected verdict of each run and the evaluation values reported apart.

usage: test_log_corpus.py SGDLAB_EXE LOGS_DIR
"""
import json
import os
import subprocess
import sys

EXE, DIR = sys.argv[1], sys.argv[2]
failures = []
rows = [l.rstrip('\n').split('\t') for l in open(os.path.join(DIR, 'MANIFEST.tsv'), encoding='utf-8')][1:]
for name, options, obs, verdicts, ev, source, what in rows:
    args = [EXE, 'monitor'] + (options.split() if options else []) + [os.path.join(DIR, name)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    want_rc = 1 if '--fail-on' in options else 0
    runs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    runs = [r for r in runs if r.get('type') == 'verdict']
    got_obs = ','.join(str(r['steps']) for r in runs)
    got_verdicts = ','.join(r['verdict'] for r in runs)
    got_ev = sum((r['eval'] or {}).get('count', 0) for r in runs)
    problems = []
    if p.returncode != want_rc:
        problems.append('exit %d (want %d): %s' % (p.returncode, want_rc, p.stderr.strip()[:300]))
    if got_obs != obs:
        problems.append('observations %s (want %s)' % (got_obs, obs))
    if got_verdicts != verdicts:
        problems.append('verdicts %s (want %s)' % (got_verdicts, verdicts))
    if got_ev != int(ev):
        problems.append('evaluation values %d (want %s)' % (got_ev, ev))
    status = 'ok' if not problems else 'FAIL'
    print('%-28s %-4s obs %-9s %-18s eval %-3d key %s' % (name, status, got_obs, got_verdicts, got_ev,
                                                           runs[0]['key'] if runs else '-'))
    for pr in problems:
        print('    ' + pr)
        failures.append('%s: %s' % (name, pr))
if failures:
    print('%d failure(s) in %d logs' % (len(failures), len(rows)), file=sys.stderr)
    sys.exit(1)
print('log corpus: %d logs OK' % len(rows))
