"""Helpers of the tests that run the sgdlab tool as a user does
(test_cli_train.py, test_cli_text.py): a failure list, runs in a scratch
directory, JSON output."""
import json
import os
import subprocess
import sys


class Cli:
    def __init__(self, exe, tmp, timeout=300):
        self.exe = os.path.abspath(exe)
        self.tmp = tmp
        self.timeout = timeout
        self.failures = []

    def check(self, cond, what):
        if not cond:
            self.failures.append(what)
            print('FAIL:', what, file=sys.stderr)

    def run(self, args, env=None, timeout=None):
        e = dict(os.environ)
        if env:
            e.update(env)
        p = subprocess.run([self.exe] + args, capture_output=True, text=True, timeout=timeout or self.timeout, env=e,
                           cwd=self.tmp)
        return p.returncode, p.stdout, p.stderr

    def run_json(self, args, **kw):
        rc, out, err = self.run(args + ['--json'], **kw)
        try:
            return rc, json.loads(out), err
        except ValueError:
            self.check(False, '%s: not JSON: %r (stderr %r)' % (args, out[:300], err[:300]))
            return rc, None, err

    def finish(self, ok_message):
        if self.failures:
            print('%d failure(s)' % len(self.failures), file=sys.stderr)
            sys.exit(1)
        print(ok_message)
