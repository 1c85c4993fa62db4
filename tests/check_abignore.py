#!/usr/bin/env python3
"""Keeps abi/suppressions.abignore true.

The file tells abidiff (.ci/abi-check) that the structs it lists may grow at
their end. That is compatible only for a struct versioned by struct_size that
no caller ever lays out next to another: so each listed struct must begin
with `uint32_t struct_size`, and none may be a by-value member of a public
struct (nor an array member) or be passed to a function or callback as an
array (a `T *` parameter followed by a count). Every public struct that
begins with struct_size must be listed, so that appending to it is allowed
and checked the same way, and must have its first released size in
lib/core/abi.h (SGD__FIRST_<name>) and pinned in tests/test_abi.c
(FIRST(<name>, size)).

usage: check_abignore.py SUPPRESSIONS INCLUDE_DIR ABI_H TEST_ABI_C
"""
import pathlib
import re
import sys

COUNT = r'(?:size_t|u?int(?:32|64)_t)\s+(?:n\w*|\w*count\w*|\w*len\w*)'


def strip(text):
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    text = re.sub(r'//[^\n]*', ' ', text)
    return re.sub(r'^\s*#.*$', ' ', text, flags=re.M)


def main():
    supp, include_dir, abi_h, test_abi = sys.argv[1:5]
    constants = set(re.findall(r'^#define SGD__FIRST_(sgd_\w+)\s', pathlib.Path(abi_h).read_text(), flags=re.M))
    pinned = set(re.findall(r'^\s*FIRST\((sgd_\w+),\s*\d+\)', pathlib.Path(test_abi).read_text(), flags=re.M))
    listed = re.findall(r'^\s*name\s*=\s*(\w+)\s*$', pathlib.Path(supp).read_text(), flags=re.M)
    errors = []
    for name in sorted({n for n in listed if listed.count(n) > 1}):
        errors.append('%s: listed twice' % name)
    structs = {}
    code = []
    for h in sorted(pathlib.Path(include_dir).rglob('*.h')):
        text = strip(h.read_text())
        code.append((h.name, text))
        for m in re.finditer(r'typedef\s+struct\s+(sgd_\w+)\s*\{(.*?)\}\s*\1\s*;', text, flags=re.S):
            structs[m.group(1)] = (h.name, m.group(2))
    versioned = {n for n, (_, body) in structs.items() if re.match(r'\s*uint32_t\s+struct_size\s*;', body)}
    for n in listed:
        if n not in structs:
            errors.append('%s: listed, but no public header defines it' % n)
        elif n not in versioned:
            errors.append('%s: listed, but it does not begin with uint32_t struct_size' % n)
    for n in sorted(versioned - set(listed)):
        errors.append('%s (%s): begins with struct_size but is not listed (it could not grow)' % (n, structs[n][0]))
    for n in sorted(versioned):
        if n not in constants:
            errors.append('%s: no first released size in %s (#define SGD__FIRST_%s SGD__FIRST_SIZE(%s, <its last member>))'
                          % (n, abi_h, n, n))
        if n not in pinned:
            errors.append('%s: its first released size is not pinned in %s (FIRST(%s, <sizeof on LP64>))'
                          % (n, test_abi, n))
    for n in sorted((constants | pinned) - versioned):
        errors.append('%s: a first released size for a struct that is not a public struct_size-versioned one' % n)
    for n in listed:
        t = re.escape(n)
        for owner, (header, body) in sorted(structs.items()):
            for member in re.findall(r'(?:^|;)\s*(?:const\s+)?' + t + r'\s+(\w+(?:\s*\[[^\]]*\])?)\s*;', body):
                errors.append('%s is a by-value member (%s) of %s (%s): it could not grow' % (n, member, owner, header))
        for header, text in code:
            for m in re.finditer(r'(?:const\s+)?' + t + r'\s*\*\s*(?:const\s+)?(\w+)\s*,\s*(?:const\s+)?' + COUNT, text):
                errors.append('%s: %s looks like an array with a count (%s): it could not grow'
                              % (header, m.group(0), n))
    if errors:
        print('\n'.join(errors))
        return 1
    print('OK: %d struct_size-versioned structs listed, each with its first released size, none embedded by '
          'value or passed as an array' % len(listed))
    return 0


if __name__ == '__main__':
    sys.exit(main())
