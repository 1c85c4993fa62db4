#!/usr/bin/env python3
"""Checks that the exported symbols, the SGD_API declarations and the linker
version script agree (libxkbcommon's symbols-leak test, adapted).

usage: check_symbols.py LIB.so VERSION_SCRIPT INCLUDE_DIR [HEADER...]

With HEADER names, only those headers of INCLUDE_DIR declare the library's
symbols (libsgdlab and libsgdlab-mpi share include/sgdlab/).
"""
import pathlib
import re
import subprocess
import sys


def header_symbols(include_dir, names):
    syms = {}
    decl = re.compile(r'\bSGD_API\b([^;{]*?)\b(sgd_\w+)\s*\(', re.S)
    for h in sorted(pathlib.Path(include_dir).rglob('*.h')):
        if names and h.name not in names:
            continue
        text = h.read_text()
        text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)  # comments
        text = re.sub(r'^\s*#.*$', ' ', text, flags=re.M)   # the SGD_API definition itself
        for m in decl.finditer(text):
            syms[m.group(2)] = h.name
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
        version = version.lstrip('@')
        # A symbol with several versions (an old one kept for binaries built against older headers,
        # glibc's way) is checked by its oldest: the node that introduced it.
        if base not in syms or version < syms[base]:
            syms[base] = version
    return syms


def main():
    lib, script, include_dir = sys.argv[1:4]
    declared = header_symbols(include_dir, set(sys.argv[4:]))
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
        if s not in exported:
            errors.append('declared SGD_API in %s but not exported: %s' % (declared[s], s))
        if s not in listed:
            errors.append('declared SGD_API in %s but missing from the version script: %s' % (declared[s], s))
    for s in sorted(listed):
        if s not in declared:
            errors.append('in the version script but not declared SGD_API: %s' % s)
    if errors:
        print('\n'.join(errors))
        return 1
    print('OK: %d symbols exported, each declared SGD_API and versioned (%s)'
          % (len(exported), ', '.join(sorted(set(listed.values())))))
    return 0


if __name__ == '__main__':
    sys.exit(main())
