#!/usr/bin/env python3
"""The checkpoint format against an independent implementation.

- Files written by the C library (through ctypes) are read by
  tests/read_checkpoint.py, written from docs/checkpoint-format.md alone, and
  every value, shape, flag and offset is compared.
- Files written by the independent Python writer (tests/fuzz/make_corpus.py)
  are read by the C library and compared the same way.
- Both readers give the same verdict on every file of the seed corpus, on
  every truncation of a C-written file, and on every single-bit flip of it.
"""
import ctypes as C
import os
import pathlib
import random
import struct
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / 'fuzz'))
import sgdlab_ctypes as sgdlab  # noqa: E402  (the raw ctypes binding, tests/sgdlab_ctypes.py)
import read_checkpoint as rc  # noqa: E402
import make_corpus  # noqa: E402

lib = sgdlab.load()
P, I, U32, U64, SZ = C.c_void_p, C.c_int, C.c_uint32, C.c_uint64, C.c_size_t
I64P = C.POINTER(C.c_int64)
MAX_RANK = 8


class TensorInfo(C.Structure):
    _fields_ = [('struct_size', C.c_uint32), ('dtype', C.c_int32), ('name', C.c_char_p), ('section', C.c_char_p),
                ('rank', C.c_uint32), ('reserved', C.c_uint32), ('dims', C.c_int64 * MAX_RANK),
                ('count', C.c_uint64), ('nbytes', C.c_uint64), ('offset', C.c_uint64)]


class SectionInfo(C.Structure):
    _fields_ = [('struct_size', C.c_uint32), ('flags', C.c_uint32), ('name', C.c_char_p),
                ('tensor_count', C.c_uint64), ('offset', C.c_uint64), ('size', C.c_uint64),
                ('crc32c', C.c_uint32), ('reserved', C.c_uint32)]


def proto(name, args, res=I):
    f = getattr(lib, name)
    f.argtypes, f.restype = args, res
    return f


w_new = proto('sgd_ckpt_writer_new', [C.POINTER(P), P])
w_free = proto('sgd_ckpt_writer_free', [P], None)
w_begin = proto('sgd_ckpt_writer_begin_section', [P, C.c_char_p, U32])
w_add = proto('sgd_ckpt_writer_add_tensor_copy', [P, C.c_char_p, I, U32, I64P, P])
w_size = proto('sgd_ckpt_writer_size', [P, C.POINTER(U64)])
w_mem = proto('sgd_ckpt_writer_write_memory', [P, P, SZ])
w_save = proto('sgd_ckpt_writer_save', [P, C.c_char_p])
r_open_mem = proto('sgd_ckpt_reader_open_memory', [C.POINTER(P), P, SZ, P])
r_free = proto('sgd_ckpt_reader_free', [P], None)
r_nsec = proto('sgd_ckpt_reader_section_count', [P], SZ)
r_sec = proto('sgd_ckpt_reader_section_info', [P, SZ, C.POINTER(SectionInfo)])
r_ten = proto('sgd_ckpt_reader_tensor_info', [P, SZ, SZ, C.POINTER(TensorInfo)])
r_data = proto('sgd_ckpt_reader_tensor_data', [P, C.c_char_p, C.c_char_p, C.POINTER(P), C.POINTER(U64)])
STATUS = {-7: 'EFORMAT', -8: 'EVERSION', -10: 'EOVERFLOW'}


def check(st):
    return sgdlab.check(lib, st)


def c_write(sections):
    """sections: [(name, flags, [(name, code, dims, values)])] -> bytes written by the C library."""
    w = P()
    check(w_new(C.byref(w), None))
    keep = []
    try:
        for sname, flags, tensors in sections:
            check(w_begin(w, sname.encode(), flags))
            for tname, code, dims, values in tensors:
                raw = struct.pack('<%d%s' % (len(values), rc.DTYPES[code][2]), *values)
                buf = C.create_string_buffer(raw, max(len(raw), 1))
                d = (C.c_int64 * max(len(dims), 1))(*dims)
                keep.append((buf, d))
                check(w_add(w, tname.encode(), code, len(dims), d, buf))
        size = U64()
        check(w_size(w, C.byref(size)))
        out = C.create_string_buffer(size.value)
        check(w_mem(w, out, size.value))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, 'x.sgdc')
            check(w_save(w, path.encode()))
            on_disk = pathlib.Path(path).read_bytes()
        assert on_disk == out.raw, 'save and write_memory differ'
        return out.raw
    finally:
        w_free(w)


def c_verdict(data):
    """'OK' or the status name the C reader gives."""
    r = P()
    buf = C.create_string_buffer(data, max(len(data), 1))
    st = r_open_mem(C.byref(r), buf, len(data), None)
    if st == 0:
        r_free(r)
        return 'OK'
    return STATUS.get(st, 'status %d' % st)


def py_verdict(data):
    try:
        rc.read(data)
        return 'OK'
    except rc.CheckpointError as e:
        return e.status


def c_contents(data):
    """Everything the C reader reports, as plain Python values."""
    r = P()
    buf = C.create_string_buffer(data, max(len(data), 1))
    check(r_open_mem(C.byref(r), buf, len(data), None))
    try:
        out = []
        for s in range(r_nsec(r)):
            si = SectionInfo(struct_size=C.sizeof(SectionInfo))
            check(r_sec(r, s, C.byref(si)))
            tensors = []
            for t in range(si.tensor_count):
                ti = TensorInfo(struct_size=C.sizeof(TensorInfo))
                check(r_ten(r, s, t, C.byref(ti)))
                p, nb = P(), U64()
                check(r_data(r, si.name, ti.name, C.byref(p), C.byref(nb)))
                raw = C.string_at(p, nb.value) if nb.value else b''
                tensors.append((ti.name.decode(), ti.dtype, list(ti.dims[:ti.rank]), ti.offset, raw))
            out.append((si.name.decode(), si.flags, si.offset, si.size, si.crc32c, tensors))
        return out
    finally:
        r_free(r)


def py_contents(ck):
    return [(s.name, s.flags, s.offset, s.size, s.crc,
             [(t.name, t.dtype, t.dims, t.offset, t.raw) for t in s.tensors]) for s in ck.sections]


def random_sections(rng):
    sections = []
    for si in range(rng.randint(1, 4)):
        tensors = []
        for ti in range(rng.randint(0, 5)):
            code = rng.choice(sorted(rc.DTYPES))
            dims = [rng.randint(0, 4) for _ in range(rng.randint(0, 4))]
            count = 1
            for d in dims:
                count *= d
            ch = rc.DTYPES[code][2]
            if ch in 'fd':
                vals = [rng.uniform(-1e3, 1e3) for _ in range(count)]
                if ch == 'f':
                    vals = [struct.unpack('<f', struct.pack('<f', v))[0] for v in vals]
            elif ch == 'B':
                vals = [rng.randint(0, 255) for _ in range(count)]
            elif ch == 'Q':
                vals = [rng.randint(0, 2**64 - 1) for _ in range(count)]
            elif ch == 'i':
                vals = [rng.randint(-2**31, 2**31 - 1) for _ in range(count)]
            else:
                vals = [rng.randint(-2**63, 2**63 - 1) for _ in range(count)]
            tensors.append(('t%d.%s' % (ti, rc.DTYPES[code][0]), code, dims, vals))
        sections.append(('sec%d' % si, rng.choice([0, 1]), tensors))
    return sections


def main():
    rng = random.Random(20240611)
    # 1. C writes, Python reads: 50 random files.
    for k in range(50):
        sections = random_sections(rng)
        data = c_write(sections)
        ck = rc.read(data)
        assert [s.name for s in ck.sections] == [s[0] for s in sections]
        for (sname, flags, tensors), s in zip(sections, ck.sections):
            assert s.flags == flags and s.offset % 64 == 0
            assert [t.name for t in s.tensors] == [t[0] for t in tensors]
            for (tname, code, dims, vals), t in zip(tensors, s.tensors):
                assert t.dtype == code and t.dims == dims, (tname, t.dtype, t.dims)
                assert t.values() == vals, (sname, tname)
        assert py_contents(ck) == c_contents(data)
    print('C writer -> Python reader: 50 random files agree')

    # 2. Python writes (the corpus's valid files), C reads: same contents.
    corpus = make_corpus.corpus()
    for name, data in sorted(corpus.items()):
        want = 'OK' if name.startswith('ok-') else name.split('-')[1].upper()
        got_c, got_py = c_verdict(data), py_verdict(data)
        assert got_c == want and got_py == want, (name, got_c, got_py)
        if want == 'OK':
            assert py_contents(rc.read(data)) == c_contents(data), name
    committed = HERE / 'fuzz' / 'corpus' / 'checkpoint'
    for name, data in corpus.items():
        f = committed / (name + '.sgdc')
        assert f.read_bytes() == data, '%s differs from make_corpus.py: regenerate the corpus' % f
    print('seed corpus: %d files, both readers give the named verdict' % len(corpus))

    # 3. Every truncation and every single-bit flip: the same verdict from both readers.
    data = c_write([('model', 1, [('w', 1, [3, 2], [0.5, 1, 2, 3, 4, 5]), ('step', 4, [], [9])]),
                    ('trainer', 0, [('rng', 6, [4], [1, 2, 3, 4]), ('tag', 5, [3], [1, 2, 3])])])
    for k in range(len(data)):
        assert py_verdict(data[:k]) == c_verdict(data[:k]) == 'EFORMAT', k
    flips = 0
    b = bytearray(data)
    for k in range(len(b)):
        for bit in range(8):
            b[k] ^= 1 << bit
            v = py_verdict(bytes(b))
            assert v != 'OK' and v == c_verdict(bytes(b)), (k, bit, v)
            b[k] ^= 1 << bit
            flips += 1
    print('%d-byte file: every truncation and all %d bit flips refused alike by both readers' % (len(data), flips))


if __name__ == '__main__':
    main()
