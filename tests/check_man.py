#!/usr/bin/env python3
"""The committed man pages (tools/sgdlab/man, written by tools/gen-man with
help2man) agree with the tool's --help: one page per command, each listing
exactly the options --help lists, with the command's summary as its NAME;
and where help2man is installed, regenerating the pages changes nothing but
their date. The completion script offers the commands and their options.

usage: check_man.py SGDLAB_EXE MANDIR GEN_MAN COMPLETION
"""
import os
import re
import subprocess
import sys
import tempfile

EXE, MANDIR, GEN_MAN, COMPLETION = (os.path.abspath(a) for a in sys.argv[1:5])
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL:', what, file=sys.stderr)


def out(args):
    return subprocess.run([EXE] + args, capture_output=True, text=True, check=True).stdout


def help_options(text):
    return set(re.findall(r'^ {2,6}(?:-\w, )?--([a-z0-9][a-z0-9-]*)', text, re.M))


def man_options(page):
    tags = re.findall(r'^\.TP\n(.*)$', page, re.M)
    return set(m.replace('\\-', '-') for t in tags for m in re.findall(r'\\fB\\-\\-([a-z0-9\\-]+)\\fR', t))


top = out(['--help'])
commands = re.findall(r'^  ([a-z-]+)  +(.*)$', top.split('commands:')[1].split('\n\n')[0], re.M)
check(len(commands) >= 5, 'sgdlab --help lists the commands: %s' % commands)
# The cases of `sgdlab case` with options of their own have pages too (tools/gen-man's list).
with open(GEN_MAN) as fh:
    subcommands = re.findall(r"^subcommands=\$\(printf '(.*?)\\t(.*?)\\n'\)$", fh.read(), re.M)
check(('case text' in [c for c, _ in subcommands]), 'gen-man lists the case text page: %s' % subcommands)
pages = sorted(f for f in os.listdir(MANDIR) if f.endswith('.1'))
check(pages == sorted(['sgdlab.1'] + ['sgdlab-%s.1' % c.replace(' ', '-') for c, _ in commands + subcommands]),
      'one page per command, and sgdlab.1: %s (run tools/gen-man)' % pages)
for cmd, summary in [(None, None)] + commands + subcommands:
    name = 'sgdlab' if cmd is None else 'sgdlab-' + cmd.replace(' ', '-')
    f = os.path.join(MANDIR, name + '.1')
    if not os.path.exists(f):
        continue
    with open(f) as fh:
        page = fh.read()
    h = out(['--help'] if cmd is None else cmd.split(' ') + ['--help'])
    want, got = help_options(h), man_options(page)
    check(want == got, '%s.1 and --help list the same options: only in --help %s, only in the page %s '
          '(run tools/gen-man)' % (name, sorted(want - got), sorted(got - want)))
    if cmd is not None:
        title = re.search(r'^\.SH NAME\n(.*)$', page, re.M).group(1).replace('\\-', '-')
        check(title == '%s - %s' % (name, summary), '%s.1: NAME is the summary: %r' % (name, title))
        check(('usage: sgdlab %s' % cmd) in page.replace('\\-', '-'), '%s.1 has the usage line' % name)

# The whole text, regenerated (where help2man is installed: CI installs it).
if subprocess.run(['sh', '-c', 'command -v help2man'], capture_output=True).returncode == 0:
    with tempfile.TemporaryDirectory() as tmp:
        build = os.path.dirname(os.path.dirname(os.path.dirname(EXE)))
        subprocess.run([GEN_MAN, build, tmp], check=True, capture_output=True)
        for p in pages:
            with open(os.path.join(MANDIR, p)) as a, open(os.path.join(tmp, p)) as b:
                x = [line for line in a.read().splitlines() if not line.startswith('.TH ')]
                y = [line for line in b.read().splitlines() if not line.startswith('.TH ')]
            check(x == y, '%s: regenerated from --help it differs (run tools/gen-man and commit)' % p)
else:
    print('help2man is not installed: the pages were compared option by option only')

# Bash completion: commands, then each command's options (read from --help), and files after --save.
def complete(line):
    script = ('source %s; COMP_LINE=%s; COMP_WORDS=(%s); COMP_CWORD=%d; _sgdlab; printf "%%s\\n" "${COMPREPLY[@]}"'
              % (COMPLETION, shq(line), ' '.join(shq(w) for w in words(line)), len(words(line)) - 1))
    env = dict(os.environ, PATH=os.path.dirname(EXE) + os.pathsep + os.environ.get('PATH', ''))
    p = subprocess.run(['bash', '-c', script], capture_output=True, text=True, env=env, cwd=MANDIR)
    return p.stdout.split()


def words(line):
    w = line.split(' ')
    return w


def shq(s):
    return "'" + s.replace("'", "'\\''") + "'"


got = complete('sgdlab ')
check(set(c for c, _ in commands) <= set(got), 'completion: the commands: %s' % got)
check(complete('sgdlab tr') == ['train'], 'completion: sgdlab tr -> train: %s' % complete('sgdlab tr'))
got = complete('sgdlab train --')
check({'--epochs', '--save', '--json', '--output', '--help'} <= set(got), 'completion: train options: %s' % got[:8])
check(complete('sgdlab lr-find --method ') == ['steepest', 'minimum', 'valley'], 'completion: --method values')
check('sgdlab-train.1' in complete('sgdlab train --save sgdlab-t'), 'completion: files after --save')
check('sgdlab-inspect.1' in complete('sgdlab inspect sgdlab-i'), 'completion: inspect takes a file')
check(complete('sgdlab case ') == ['image', 'text'], 'completion: the cases: %s' % complete('sgdlab case '))
got = complete('sgdlab case text --')
check({'--train-chars', '--save', '--json'} <= set(got), 'completion: case text options: %s' % got[:8])
check({'--key', '--follow', '--json', '--output'} <= set(complete('sgdlab monitor --')), 'completion: monitor options')
check({'--prime', '--resume', '--json'} <= set(complete('sgdlab generate --')), 'completion: generate options')
check({'--dist', '--dist-options'} <= set(complete('sgdlab train --di')), 'completion: train --dist')
check('sgdlab-lr-find.1' in complete('sgdlab lr-find --from sgdlab-l'), 'completion: files after --from')

if failures:
    print('%d failure(s)' % len(failures), file=sys.stderr)
    sys.exit(1)
print('man pages and completion: OK (%d pages)' % len(pages))
