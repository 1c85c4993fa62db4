#!/usr/bin/env python3
"""Checks that the exported symbols, the SGD_API declarations and the linker
version script agree (libxkbcommon's symbols-leak test, adapted), and that
each declaration's Doxygen `@since X.Y` names the version node it is in
(SGDLAB_X.Y): a function documented `@since 0.2` is in SGDLAB_0.2, one
documented `@since 0.1` in SGDLAB_0.1.

usage: check_symbols.py LIBSGDLAB.so VERSION_SCRIPT INCLUDE_DIR
"""
import pathlib
import re
import subprocess
import sys


def blank(m):
    """Replaces a match by as many spaces (newlines kept), so offsets stay put."""
    return re.sub(r'[^\n]', ' ', m.group(0))


def header_symbols(include_dir):
    """{symbol: (header, since)} for every SGD_API function; since is the
    `@since` of the Doxygen comment right before the declaration, or None."""
    syms = {}
    decl = re.compile(r'\bSGD_API\b([^;{]*?)\b(sgd_\w+)\s*\(', re.S)
    for h in sorted(pathlib.Path(include_dir).rglob('*.h')):
        raw = h.read_text()
        text = re.sub(r'/\*.*?\*/', blank, raw, flags=re.S)  # comments
        text = re.sub(r'^\s*#.*$', blank, text, flags=re.M)  # the SGD_API definition itself
        for m in decl.finditer(text):
            since = None
            end = raw.rfind('*/', 0, m.start())
            if end >= 0 and raw[end + 2:m.start()].strip() == '':
                start = raw.rfind('/**', 0, end)
                found = re.findall(r'@since\s+(\d+\.\d+)', raw[start:end]) if start >= 0 else []
                since = found[-1] if found else None
            syms[m.group(2)] = (h.name, since)
    return syms


def map_symbols(path):
    text = re.sub(r'/\*.*?\*/', ' ', pathlib.Path(path).read_text(), flags=re.S)
    nodes = {}
    for node, body in re.findall(r'(\w[\w.]*)\s*\{(.*?)\}', text, flags=re.S):
        glob = body.split('local:')[0].replace('global:', '')
        for s in re.findall(r'([A-Za-z_]\w*)\s*;', glob):
            if s in nodes:
                sys.exit('version script: %s listed twice' % s)
            nodes[s] = node
    return nodes


def exported_symbols(lib):
    out = subprocess.run(['nm', '-D', '--defined-only', '--with-symbol-versions', lib],
                         check=True, capture_output=True, text=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        _, kind, name = parts
        if kind == 'A':  # the version node itself
            continue
        base, _, version = name.partition('@')
        syms[base] = version.lstrip('@')
    return syms


def main():
    lib, script, include_dir = sys.argv[1:4]
    declared = header_symbols(include_dir)
    listed = map_symbols(script)
    exported = exported_symbols(lib)
    errors = []
    for s in sorted(exported):
        if not s.startswith('sgd_'):
            errors.append('leaked symbol (not sgd_*): %s' % s)
        elif s not in declared:
            errors.append('exported but not declared SGD_API in a public header: %s' % s)
        if s in listed and exported[s] != listed[s]:
            errors.append('%s exported with version "%s", script says %s' % (s, exported[s], listed[s]))
        if not exported[s]:
            errors.append('%s exported without a version node' % s)
    for s in sorted(declared):
        header, since = declared[s]
        if s not in exported:
            errors.append('declared SGD_API in %s but not exported: %s' % (header, s))
        if s not in listed:
            errors.append('declared SGD_API in %s but missing from the version script: %s' % (header, s))
        if since is None:
            errors.append('%s (%s): no "@since X.Y" in the Doxygen comment right before it' % (s, header))
        elif s in listed and listed[s] != 'SGDLAB_' + since:
            errors.append('%s (%s) is documented @since %s but is in the version node %s (should be SGDLAB_%s)'
                          % (s, header, since, listed[s], since))
    for s in sorted(listed):
        if s not in declared:
            errors.append('in the version script but not declared SGD_API: %s' % s)
    if errors:
        print('\n'.join(errors))
        return 1
    print('OK: %d symbols exported, each declared SGD_API, versioned (%s) and documented @since its version'
          % (len(exported), ', '.join(sorted(set(listed.values())))))
    return 0


if __name__ == '__main__':
    sys.exit(main())
