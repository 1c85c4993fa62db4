#!/usr/bin/env python3
"""sgdlab inspect over the checkpoint corpus: valid files are described, every
damaged one is refused with a reason, and --json is valid JSON.

usage: test_cli_inspect.py SGDLAB CORPUS_DIR
"""
import json
import pathlib
import subprocess
import sys

exe, corpus = sys.argv[1], pathlib.Path(sys.argv[2])


def run(*args):
    return subprocess.run([exe, 'inspect', *args], capture_output=True, text=True, timeout=60)


ok = bad = 0
for f in sorted(corpus.iterdir()):
    human, js = run(str(f)), run('--json', str(f))
    doc = json.loads(js.stdout)
    if f.name.startswith('ok-'):
        assert human.returncode == 0 and js.returncode == 0, (f, human.stdout, human.stderr)
        assert 'valid libsgdlab checkpoint' in human.stdout, human.stdout
        assert doc['valid'] is True and doc['size'] == f.stat().st_size, doc
        ok += 1
    elif f.name.startswith('bad-'):
        assert human.returncode == 1 and js.returncode == 1, (f, human.stdout, human.stderr)
        assert 'NOT a valid checkpoint' in human.stdout, human.stdout
        status = f.name.split('-')[1].upper()  # bad-<status>-...
        assert doc['valid'] is False and doc['status'] == 'SGD_' + status, (f.name, doc)
        assert doc['error'], doc
        bad += 1
assert ok > 0 and bad > 0, (ok, bad)

r = run('/nonexistent/file.sgdc')
assert r.returncode == 2 and 'nonexistent' in r.stderr, r
r = run('--bogus', 'x')
assert r.returncode == 2 and '--bogus' in r.stderr, r
r = run()
assert r.returncode == 2 and 'FILE' in r.stderr, r
assert run('--help').returncode == 0
print('inspect: %d valid and %d damaged checkpoints reported correctly' % (ok, bad))
