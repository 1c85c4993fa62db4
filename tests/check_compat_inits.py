#!/usr/bin/env python3
"""Every exported _init of a released struct that has grown keeps its older
version, and that version never writes past the struct's older size.

A program built against 0.1's headers was linked to name@SGDLAB_0.1 and
passes a struct of 0.1's size; an init that fills the current struct would
write past it (SGD__COMPAT_INIT, lib/core/abi.h). For every `sgd_*_init` the
released ABI exports (abi/libsgdlab-0.1.abi: the functions and their
struct's size there), against the struct's size in these headers (the
layout program of python/tests/gen_layout.py):

- a struct that grew must have its init exported as name@SGDLAB_0.1 and
  name@@<newest node> (the default), nothing else;
- that compat version, called through dlvsym into a buffer of guard bytes,
  writes the released size and no byte more, sets struct_size to it, and
  writes what the default version writes into those bytes;
- an init of a struct that did not grow has one version.

usage: check_compat_inits.py LIB.so RELEASED.abi LAYOUT_PROGRAM
"""
import ctypes
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_symbols  # noqa: E402  (its reading of nm --with-symbol-versions)

GUARD = 0xA5


def released(abi_path):
    """{init name: (node, struct name, size in bytes)} of a released ABI file."""
    text = open(abi_path).read()
    sizes = {}
    for m in re.finditer(r"<class-decl name='(sgd_\w+)' size-in-bits='(\d+)'", text):
        sizes.setdefault(m.group(1), int(m.group(2)) // 8)
    out = {}
    for m in re.finditer(r"<elf-symbol name='(sgd_\w+)_init' version='(\w+\.\d+)'", text):
        struct = m.group(1)
        if struct in sizes:
            out[m.group(1) + '_init'] = (m.group(2), struct, sizes[struct])
    return out


def current_sizes(layout):
    out = subprocess.run([layout], check=True, capture_output=True, text=True).stdout
    return {p[1]: int(p[2]) for p in (line.split() for line in out.splitlines()) if p and p[0] == 'struct'}


def versions(lib):
    """{symbol: {'SGDLAB_0.1', '@SGDLAB_0.2', ...}}: '@' marks the default version."""
    return {s: {('@' if default else '') + v for v, default in vs}
            for s, vs in check_symbols.exported_symbols(lib).items()}


def main():
    lib_path, abi_path, layout = sys.argv[1:4]
    inits = released(abi_path)
    now = current_sizes(layout)
    exported = versions(lib_path)
    nodes = sorted({v.lstrip('@') for vs in exported.values() for v in vs if v},
                   key=lambda n: [int(x) if x.isdigit() else x for x in re.split(r'(\d+)', n)])
    newest = nodes[-1]
    lib = ctypes.CDLL(lib_path)
    libc = ctypes.CDLL(None)
    libc.dlvsym.restype = ctypes.c_void_p
    libc.dlvsym.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    init_fn = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p)  # void or sgd_status: the value is ignored for void
    errors = []
    grown = []
    for name, (node, struct, first) in sorted(inits.items()):
        if struct not in now:
            errors.append('%s: %s is no longer a public struct' % (name, struct))
            continue
        size = now[struct]
        have = exported.get(name, set())
        if size == first:
            if have != {'@' + node}:
                errors.append('%s: %s has not grown (%d bytes) but is exported as %s' % (name, struct, size, sorted(have)))
            continue
        grown.append('%s (%d -> %d)' % (struct, first, size))
        want = {node, '@' + newest}
        if have != want:
            errors.append('%s: %s grew from %d bytes (%s) to %d, so %s must be exported as %s@%s and %s@@%s '
                          '(SGD__COMPAT_INIT in lib/core/abi.h, and the name in both nodes of the version script); '
                          'it is exported as %s' % (name, struct, first, node, size, name, name, node, name, newest,
                                                    sorted('%s@%s' % (name, v) for v in have)))
            continue
        n = size + 64
        calls = {}
        for version in (node, newest):
            addr = libc.dlvsym(lib._handle, name.encode(), version.encode())
            if not addr:
                errors.append('%s@%s: dlvsym finds nothing' % (name, version))
                break
            buf = ctypes.create_string_buffer(bytes([GUARD]) * n, n)
            init_fn(addr)(buf)
            calls[version] = buf.raw
        if len(calls) != 2:
            continue
        old, new = calls[node], calls[newest]
        if int.from_bytes(old[:4], 'little') != first:
            errors.append('%s@%s sets struct_size=%d, not %d' % (name, node, int.from_bytes(old[:4], 'little'), first))
        if old[first:] != bytes([GUARD]) * (n - first):
            past = next(i for i in range(first, n) if old[i] != GUARD)
            errors.append('%s@%s writes past the %d bytes of %s as %s released it (byte %d)' % (name, node, first,
                                                                                              struct, node, past))
        if old[4:first] != new[4:first]:
            errors.append('%s@%s does not write what %s@@%s writes in the first %d bytes' % (name, node, name, newest,
                                                                                             first))
        if int.from_bytes(new[:4], 'little') != size or new[size:] != bytes([GUARD]) * (n - size):
            errors.append('%s@@%s does not fill exactly the current %d bytes' % (name, newest, size))
    if errors:
        print('\n'.join(errors))
        return 1
    print('OK: %d released _init functions; %d of their structs grew, each with its compat init that writes only '
          'the released size: %s' % (len(inits), len(grown), ', '.join(grown) or 'none'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
