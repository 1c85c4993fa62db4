"""The ctypes mirrors against the C layout of every public struct.

SGDLAB_LAYOUT is a program meson builds from the public headers
(python/tests/gen_layout.py): it prints every struct's size and every
field's offset and size. Each must match the package's mirror exactly, field
for field, and every public struct must have a mirror."""
import ctypes
import os
import subprocess

import pytest

from sgdlab import _structs


def layout():
    exe = os.environ.get('SGDLAB_LAYOUT')
    if not exe:
        pytest.skip('SGDLAB_LAYOUT is not set (meson test sets it)')
    structs, fields = {}, {}
    for line in subprocess.run([exe], check=True, capture_output=True, text=True).stdout.splitlines():
        w = line.split()
        if w[0] == 'struct':
            structs[w[1]] = int(w[2])
            fields[w[1]] = []
        else:
            fields[w[1]].append((w[2], int(w[3]), int(w[4])))
    return structs, fields


def test_every_public_struct_is_mirrored():
    structs, _ = layout()
    missing = sorted(set(structs) - set(_structs.ALL))
    assert not missing, 'public structs without a ctypes mirror in python/sgdlab/_structs.py: %s' % missing
    stale = sorted(set(_structs.ALL) - set(structs))
    assert not stale, 'mirrors of structs the headers no longer have: %s' % stale


def test_layouts_match():
    structs, fields = layout()
    bad = []
    for name, cls in _structs.ALL.items():
        if name not in structs:
            continue
        if ctypes.sizeof(cls) != structs[name]:
            bad.append('%s: sizeof %d in C, %d in ctypes' % (name, structs[name], ctypes.sizeof(cls)))
        mine = [(f[0], getattr(cls, f[0]).offset, getattr(cls, f[0]).size) for f in cls._fields_]
        if mine != fields[name]:
            bad.append('%s: fields differ:\n  C:      %s\n  ctypes: %s' % (name, fields[name], mine))
    assert not bad, '\n'.join(bad)
