#!/usr/bin/env python3
"""Checks that the exported symbols, the SGD_API declarations and the linker
version script agree (libxkbcommon's symbols-leak test, adapted), and that
each declaration's Doxygen `@since X.Y` names the version node it is in
(SGDLAB_X.Y, or SGDLAB_MPI_X.Y for libsgdlab-mpi): a function documented
`@since 0.2` is in SGDLAB_0.2, one documented `@since 0.1` in SGDLAB_0.1.

A function may be exported in two versions (glibc's way: an older
definition kept for binaries built against older headers, see
SGD__COMPAT_INIT in lib/core/abi.h); the version script then lists it in both
nodes, the library must export it in exactly those, the newest as the default
(name@@node), and it is checked by its oldest: the node that introduced it.

usage: check_symbols.py LIB.so VERSION_SCRIPT INCLUDE_DIR [HEADER...]

With HEADER names, only those headers of INCLUDE_DIR declare the library's
symbols (libsgdlab and libsgdlab-mpi share include/sgdlab/).
"""
import pathlib
import re
import subprocess
import sys


def blank(m):
    """Replaces a match by as many spaces (newlines kept), so offsets stay put."""
    return re.sub(r'[^\n]', ' ', m.group(0))


def header_symbols(include_dir, names):
    """{symbol: (header, since)} for every SGD_API function; since is the
    `@since` of the Doxygen comment right before the declaration, or None."""
    syms = {}
    decl = re.compile(r'\bSGD_API\b([^;{]*?)\b(sgd_\w+)\s*\(', re.S)
    for h in sorted(pathlib.Path(include_dir).rglob('*.h')):
        if names and h.name not in names:
            continue
        raw = h.read_text()
        text = re.sub(r'/\*.*?\*/', blank, raw, flags=re.S)  # comments
        text = re.sub(r'^\s*#.*$', blank, text, flags=re.M)  # the SGD_API definition itself
        for m in decl.finditer(text):
            since = None
            end = raw.rfind('*/', 0, m.start())
            if end >= 0 and raw[end + 2:m.start()].strip() == '':
                start = raw.rfind('/**', 0, end)
                found = re.findall(r'^\s*\*\s*@since\s+(\d+\.\d+)', raw[start:end], flags=re.M) if start >= 0 else []
                since = found[-1] if found else None
            syms[m.group(2)] = (h.name, since)
    return syms


def node_key(node):
    """SGDLAB_0.10 after SGDLAB_0.9."""
    return [int(x) if x.isdigit() else x for x in re.split(r'(\d+)', node)]


def map_symbols(path):
    """{symbol: [node, ...]} in the script's order (oldest node first)."""
    text = re.sub(r'/\*.*?\*/', ' ', pathlib.Path(path).read_text(), flags=re.S)
    nodes = {}
    for node, body in re.findall(r'(\w[\w.]*)\s*\{(.*?)\}', text, flags=re.S):
        glob = body.split('local:')[0].replace('global:', '')
        for s in re.findall(r'([A-Za-z_]\w*)\s*;', glob):
            if node in nodes.get(s, []):
                sys.exit('version script: %s listed twice in %s' % (s, node))
            nodes.setdefault(s, []).append(node)
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
        default = version.startswith('@') or not version
        syms.setdefault(base, []).append((version.lstrip('@'), default))
    return syms


def main():
    lib, script, include_dir = sys.argv[1:4]
    declared = header_symbols(include_dir, set(sys.argv[4:]))
    listed = map_symbols(script)
    exported = exported_symbols(lib)
    errors = []
    for s in sorted(exported):
        versions = sorted(v for v, _ in exported[s])
        defaults = [v for v, d in exported[s] if d]
        if not s.startswith('sgd_'):
            errors.append('leaked symbol (not sgd_*): %s' % s)
        elif s not in declared:
            errors.append('exported but not declared SGD_API in a public header: %s' % s)
        if '' in versions:
            errors.append('%s exported without a version node' % s)
        if s in listed and versions != sorted(listed[s]):
            errors.append('%s exported with the versions %s, the script lists it in %s'
                          % (s, ', '.join(versions), ', '.join(listed[s])))
        if len(versions) > 1 and defaults != [max(versions, key=node_key)]:
            errors.append('%s has %d versions (%s) but its default (@@) is %s, not the newest'
                          % (s, len(versions), ', '.join(versions), ', '.join(defaults) or 'none'))
    for s in sorted(declared):
        header, since = declared[s]
        if s not in exported:
            errors.append('declared SGD_API in %s but not exported: %s' % (header, s))
        if s not in listed:
            errors.append('declared SGD_API in %s but missing from the version script: %s' % (header, s))
        if since is None:
            errors.append('%s (%s): no "@since X.Y" in the Doxygen comment right before it' % (s, header))
        elif s in listed and not min(listed[s], key=node_key).endswith('_' + since):
            errors.append('%s (%s) is documented @since %s but first appears in the version node %s '
                          '(should be <LIB>_%s)' % (s, header, since, min(listed[s], key=node_key), since))
    for s in sorted(listed):
        if s not in declared:
            errors.append('in the version script but not declared SGD_API: %s' % s)
    if errors:
        print('\n'.join(errors))
        return 1
    twice = sorted(s for s in exported if len(exported[s]) > 1)
    nodes = sorted({n for ns in listed.values() for n in ns}, key=node_key)
    print('OK: %d symbols exported, each declared SGD_API, versioned (%s) and documented @since its version; '
          '%d in two versions (%s)' % (len(exported), ', '.join(nodes), len(twice), ', '.join(twice) or 'none'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
