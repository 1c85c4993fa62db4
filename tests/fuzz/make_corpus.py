#!/usr/bin/env python3
"""Writes the seed corpora of the fuzzers: corpus/checkpoint/ and corpus/idx/.

The checkpoint corpus holds valid files and cleverly broken ones, named for
what a loader must do with them:

    ok-*.sgdc               must load
    bad-eformat-*.sgdc      must be refused with SGD_EFORMAT
    bad-eversion-*.sgdc     must be refused with SGD_EVERSION
    bad-eoverflow-*.sgdc    must be refused with SGD_EOVERFLOW

The files are written by an independent Python writer that follows
docs/checkpoint-format.md, so the C reader loading the ok-* files also checks
the document against the code. Broken files keep valid checksums (they are
recomputed after the damage) unless the checksum is the damage: the loader
must refuse them for their structure. test_checkpoint (C) and
test_checkpoint_py.py (the Python reader) both check every verdict.

The IDX corpus (for fuzz_idx.c, the IDX reader of the data module) holds raw
and gzip files of every element type and rank, and broken ones.

usage: make_corpus.py CORPUS_ROOT    (tests/fuzz/corpus; deterministic: same bytes every run)
"""
import gzip
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from read_checkpoint import SIGNATURE, DTYPES, crc32c  # noqa: E402

ALIGN = 64
CODES = {v[0]: k for k, v in DTYPES.items()}


def align(x):
    return (x + ALIGN - 1) // ALIGN * ALIGN


class T:
    """A tensor: name, dtype name or code, dims, values (or raw bytes)."""

    def __init__(self, name, dtype, dims, values=None, raw=None):
        self.name, self.dims = name, list(dims)
        self.code = CODES[dtype] if isinstance(dtype, str) else dtype
        if raw is None:
            count = 1
            for d in dims:
                count *= d
            values = values if values is not None else [i % 7 for i in range(count)]
            raw = struct.pack('<%d%s' % (count, DTYPES[self.code][2]), *values)
        self.raw = raw


class S:
    def __init__(self, name, tensors, flags=0, gap=0, tail=0):
        self.name, self.tensors, self.flags = name, tensors, flags
        self.gap = gap    # extra zero bytes (a multiple of 64) before the section
        self.tail = tail  # zero bytes after the last tensor, inside the section


def write(sections, minor=0):
    """Serialises; returns (bytearray, pos) where pos maps field names to byte positions."""
    pos = {}
    directory = bytearray()
    header = 32 + sum(2 + len(s.name) + 28 + sum(2 + len(t.name) + 18 + 8 * len(t.dims) for t in s.tensors)
                      for s in sections)
    data = {}
    cur = header
    layout = []
    for s in sections:
        off = align(cur) + s.gap
        t_cur = off
        toffs = []
        for t in s.tensors:
            toff = align(t_cur)
            toffs.append(toff)
            data[toff] = t.raw
            t_cur = toff + len(t.raw)
        end = t_cur + s.tail
        layout.append((off, end, toffs))
        cur = end
    file_size = cur
    out = bytearray(file_size)
    for off, raw in data.items():
        out[off:off + len(raw)] = raw
    p = 32
    for si, (s, (off, end, toffs)) in enumerate(zip(sections, layout)):
        pos['sec%d' % si] = p
        rec = struct.pack('<H', len(s.name)) + s.name.encode()
        pos['sec%d.flags' % si] = p + len(rec)
        pos['sec%d.count' % si] = p + len(rec) + 4
        pos['sec%d.off' % si] = p + len(rec) + 8
        pos['sec%d.size' % si] = p + len(rec) + 16
        pos['sec%d.crc' % si] = p + len(rec) + 24
        rec += struct.pack('<IIQQI', s.flags, len(s.tensors), off, end - off, crc32c(out[off:end]))
        directory += rec
        p += len(rec)
        for ti, (t, toff) in enumerate(zip(s.tensors, toffs)):
            key = 'sec%d.t%d' % (si, ti)
            pos[key] = p
            rec = struct.pack('<H', len(t.name)) + t.name.encode()
            pos[key + '.dtype'] = p + len(rec)
            pos[key + '.rank'] = p + len(rec) + 1
            pos[key + '.dims'] = p + len(rec) + 2
            rec += struct.pack('<BB', t.code, len(t.dims)) + b''.join(struct.pack('<Q', d) for d in t.dims)
            pos[key + '.off'] = p + len(rec)
            pos[key + '.nbytes'] = p + len(rec) + 8
            rec += struct.pack('<QQ', toff, len(t.raw))
            directory += rec
            p += len(rec)
    assert p == header
    out[0:32] = SIGNATURE + struct.pack('<HHIQII', 1, minor, header, file_size, len(sections), 0)
    out[32:header] = directory
    fix_crcs(out, sections)
    return out, pos


def fix_crcs(b, sections):
    """Recomputes the header CRC and the CRC of each section (walking the directory as written)."""
    header = struct.unpack_from('<I', b, 12)[0]
    p = 32
    for s in sections:
        p += 2 + len(s.name)
        _, _, off, size = struct.unpack_from('<IIQQ', b, p)
        if off + size <= len(b):
            struct.pack_into('<I', b, p + 24, crc32c(b[off:off + size]))
        p += 28
        for t in s.tensors:
            p += 2 + len(t.name) + 2 + 8 * len(t.dims) + 16
    struct.pack_into('<I', b, 28, crc32c(b[32:header], crc32c(b[:28])))


def u16(b, at, v):
    struct.pack_into('<H', b, at, v)


def u32(b, at, v):
    struct.pack_into('<I', b, at, v)


def u64(b, at, v):
    struct.pack_into('<Q', b, at, v)


def sample():
    return [
        S('model', [T('0.weight', 'f32', [4, 3], [0.5 * i - 1 for i in range(12)]),
                    T('0.bias', 'f32', [4], [0.0, -1.5, 2.25, 1e-3]),
                    T('1.weight', 'f64', [2, 4])], flags=1),
        S('optim', [T('step', 'i64', [], [12345]), T('m', 'f32', [12]), T('v', 'f32', [12])]),
        S('trainer', [T('rng', 'u64', [4], [1, 2**64 - 1, 3, 0x0123456789abcdef]),
                      T('epoch', 'i32', [], [7]), T('lr', 'f64', [], [0.1]),
                      T('note', 'u8', [5], list(b'adam!'))], flags=1),
    ]


def corpus():
    files = {}

    def put(name, b):
        assert name not in files
        files[name] = bytes(b)

    base, pos = write(sample())
    put('ok-sample', base)
    put('ok-no-sections', write([])[0])
    put('ok-empty-section', write([S('a', []), S('b', [T('x', 'u8', [3])]), S('c', [])])[0])
    put('ok-scalars', write([S('s', [T(n, d, [], [v]) for n, d, v in
                                    [('a', 'f32', 1.0), ('b', 'f64', -2.0), ('c', 'i32', -3), ('d', 'i64', -4),
                                     ('e', 'u8', 5), ('f', 'u64', 6)]])])[0])
    put('ok-zero-sized', write([S('s', [T('none', 'f32', [0, 5]), T('after', 'f32', [2]), T('z', 'f64', [3, 0, 2])])])[0])
    put('ok-rank8', write([S('s', [T('r8', 'u8', [1, 2, 1, 2, 1, 2, 1, 2])])])[0])
    put('ok-zero-gaps', write([S('a', [T('x', 'u8', [1])], gap=128), S('b', [T('y', 'u8', [1])], tail=40)])[0])
    put('ok-long-names', write([S('s' * 255, [T('t' * 255, 'u8', [1]), T('~!' * 127 + '~', 'u8', [2])])])[0])
    put('ok-many-tensors', write([S('s%d' % i, [T('t%d' % j, 'u8', [1]) for j in range(20)]) for i in range(15)])[0])
    put('ok-newer-minor-unknown-dtype',
        write([S('model', [T('w', 'f32', [2])]), S('future', [T('q', 77, [3], raw=b'\x01\x02\x03\x04')])],
              minor=3)[0])
    put('ok-required-unknown-section', write([S('model', [T('w', 'f32', [2])]), S('quantizer', [], flags=1)])[0])

    def bad(name, mutate, keep_crc=False, cut=None):
        b = bytearray(base)
        mutate(b)
        if not keep_crc:
            fix_crcs(b, sample())
        if cut is not None:
            b = b[:cut]
        put(name, b)

    H = struct.unpack_from('<I', base, 12)[0]
    n = len(base)
    # Signature and version.
    put('bad-eformat-empty', b'')
    put('bad-eformat-signature-only', SIGNATURE)
    put('bad-eformat-crlf-to-lf', base[:4] + base[5:])
    put('bad-eformat-lf-to-crlf', base[:5] + b'\r' + base[5:])
    put('bad-eformat-high-bit-stripped', b'\x09' + base[1:])
    put('bad-eformat-text-file', b'step,loss\n1,0.5\n' * 4)
    put('bad-eformat-truncated-fixed-header', base[:20])
    put('bad-eformat-truncated-directory', base[:H - 5])
    put('bad-eformat-truncated-data', base[:n - 1])
    bad('bad-eversion-major-2', lambda b: u16(b, 8, 2))
    bad('bad-eversion-major-0', lambda b: u16(b, 8, 0))
    bad('bad-eversion-major-65535', lambda b: u16(b, 8, 0xFFFF))
    # Fixed header fields.
    bad('bad-eformat-header-size-small', lambda b: u32(b, 12, 31))
    bad('bad-eoverflow-header-size-huge', lambda b: u32(b, 12, 0xFFFFFFFF))
    bad('bad-eformat-header-size-beyond-file', lambda b: u32(b, 12, n + 64))
    bad('bad-eformat-header-size-lie', lambda b: u32(b, 12, H + 8))
    bad('bad-eformat-file-size-lie', lambda b: u64(b, 16, n + 64))
    bad('bad-eformat-file-size-huge', lambda b: u64(b, 16, 2**64 - 1))
    bad('bad-eoverflow-section-count-huge', lambda b: u32(b, 24, 0xFFFFFFFF))
    bad('bad-eformat-section-count-lie', lambda b: u32(b, 24, 200))
    bad('bad-eformat-section-count-short', lambda b: u32(b, 24, 2))
    bad('bad-eformat-header-crc', lambda b: u32(b, 28, struct.unpack_from('<I', b, 28)[0] ^ 1), keep_crc=True)
    bad('bad-eformat-minor-flipped-crc-kept', lambda b: u16(b, 10, 1), keep_crc=True)
    # Section records.
    bad('bad-eformat-section-name-len-zero', lambda b: u16(b, pos['sec0'], 0))
    bad('bad-eformat-section-name-len-huge', lambda b: u16(b, pos['sec0'], 0xFFFF))
    bad('bad-eformat-section-name-space', lambda b: b.__setitem__(pos['sec1'] + 3, 0x20))
    bad('bad-eformat-section-name-nul', lambda b: b.__setitem__(pos['sec1'] + 3, 0))
    bad('bad-eformat-section-duplicate', lambda b: b.__setitem__(slice(pos['sec1'] + 2, pos['sec1'] + 7), b'model'))
    bad('bad-eformat-section-reserved-flag', lambda b: u32(b, pos['sec0.flags'], 0x80000001))
    bad('bad-eoverflow-tensor-count-huge', lambda b: u32(b, pos['sec0.count'], 0xFFFFFFFF))
    bad('bad-eformat-tensor-count-lie', lambda b: u32(b, pos['sec0.count'], 1000))
    bad('bad-eformat-tensor-count-short', lambda b: u32(b, pos['sec0.count'], 2))
    bad('bad-eformat-section-misaligned', lambda b: u64(b, pos['sec0.off'], struct.unpack_from('<Q', b, pos['sec0.off'])[0] + 1))
    bad('bad-eformat-section-in-header', lambda b: u64(b, pos['sec0.off'], 0))
    bad('bad-eformat-sections-overlap', lambda b: u64(b, pos['sec1.off'], struct.unpack_from('<Q', b, pos['sec0.off'])[0]))
    bad('bad-eformat-sections-out-of-order', lambda b: (
        u64(b, pos['sec1.off'], struct.unpack_from('<Q', base, pos['sec2.off'])[0]),
        u64(b, pos['sec2.off'], struct.unpack_from('<Q', base, pos['sec1.off'])[0])))
    bad('bad-eformat-section-size-wraps', lambda b: u64(b, pos['sec2.size'], 2**64 - 64))
    bad('bad-eformat-section-offset-wraps', lambda b: u64(b, pos['sec2.off'], 2**64 - 64))
    bad('bad-eformat-section-beyond-file', lambda b: u64(b, pos['sec2.size'], struct.unpack_from('<Q', b, pos['sec2.size'])[0] + 1))
    bad('bad-eformat-section-too-small', lambda b: u64(b, pos['sec0.size'], 8))
    bad('bad-eformat-section-crc', lambda b: u32(b, pos['sec1.crc'], 0), keep_crc=True)
    b = bytearray(base)
    b[struct.unpack_from('<Q', base, pos['sec0.t0.off'])[0]] ^= 0x40
    put('bad-eformat-data-bit-flip', b)
    # Tensor records: lying sizes, offsets and dimensions (with valid checksums).
    bad('bad-eformat-nbytes-lie', lambda b: u64(b, pos['sec0.t0.nbytes'], 44))
    bad('bad-eformat-nbytes-zero', lambda b: u64(b, pos['sec0.t0.nbytes'], 0))
    bad('bad-eformat-dims-lie', lambda b: u64(b, pos['sec0.t0.dims'], 5))
    bad('bad-eoverflow-dim-2pow63', lambda b: u64(b, pos['sec0.t0.dims'], 2**63))
    bad('bad-eoverflow-dims-product', lambda b: (u64(b, pos['sec0.t0.dims'], 2**40), u64(b, pos['sec0.t0.dims'] + 8, 2**40)))
    bad('bad-eoverflow-bytes-product', lambda b: (u64(b, pos['sec0.t0.dims'], 2**62), u64(b, pos['sec0.t0.dims'] + 8, 1)))
    bad('bad-eformat-huge-consistent-size', lambda b: (
        b.__setitem__(pos['sec2.t3.dtype'], 5), u64(b, pos['sec2.t3.dims'], 2**63 - 1),
        u64(b, pos['sec2.t3.nbytes'], 2**63 - 1)))
    bad('bad-eoverflow-rank-9', lambda b: b.__setitem__(pos['sec0.t0.rank'], 9))
    bad('bad-eoverflow-rank-255', lambda b: b.__setitem__(pos['sec0.t0.rank'], 255))
    bad('bad-eformat-rank-lie', lambda b: b.__setitem__(pos['sec0.t0.rank'], 1))
    bad('bad-eformat-dtype-zero', lambda b: b.__setitem__(pos['sec0.t0.dtype'], 0))
    bad('bad-eformat-dtype-unknown', lambda b: b.__setitem__(pos['sec0.t0.dtype'], 7))
    bad('bad-eformat-dtype-lie', lambda b: b.__setitem__(pos['sec0.t0.dtype'], 2))
    bad('bad-eformat-tensor-misaligned', lambda b: u64(b, pos['sec0.t1.off'], struct.unpack_from('<Q', b, pos['sec0.t1.off'])[0] + 4))
    bad('bad-eformat-tensors-overlap', lambda b: u64(b, pos['sec0.t1.off'], struct.unpack_from('<Q', b, pos['sec0.t0.off'])[0]))
    bad('bad-eformat-tensor-before-section', lambda b: u64(b, pos['sec1.t0.off'], struct.unpack_from('<Q', b, pos['sec0.t0.off'])[0]))
    bad('bad-eformat-tensor-in-next-section', lambda b: u64(b, pos['sec0.t2.off'], struct.unpack_from('<Q', b, pos['sec1.t0.off'])[0]))
    bad('bad-eformat-tensor-offset-wraps', lambda b: u64(b, pos['sec0.t2.off'], 2**64 - 64))
    bad('bad-eformat-tensor-duplicate', lambda b: b.__setitem__(pos['sec1.t2'] + 2, ord('m')))  # 'v' -> 'm'
    bad('bad-eformat-tensor-name-len-zero', lambda b: u16(b, pos['sec1.t1'], 0))
    bad('bad-eformat-tensor-name-newline', lambda b: b.__setitem__(pos['sec1.t1'] + 2, 10))
    bad('bad-eformat-tensor-name-high-byte', lambda b: b.__setitem__(pos['sec1.t1'] + 2, 0xE9))
    # Padding and trailing bytes.
    bad('bad-eformat-nonzero-gap-after-header', lambda b: b.__setitem__(H, 1))
    bad('bad-eformat-nonzero-padding-between-tensors', lambda b: b.__setitem__(struct.unpack_from('<Q', b, pos['sec0.t0.off'])[0] + 48, 0xFF))

    def trailing(b):
        b.extend(b'\0' * 64)
        u64(b, 16, len(b))
    bad('bad-eformat-trailing-zeros', trailing)

    def trailing_junk(b):
        b.extend(b'junk')
        u64(b, 16, len(b))
    bad('bad-eformat-trailing-junk', trailing_junk)
    # A minor-0 file claiming an unknown dtype; a newer file whose unknown tensor is smaller than its elements.
    bad('bad-eformat-unknown-dtype-too-small', lambda b: (u16(b, 10, 5), b.__setitem__(pos['sec2.t3.dtype'], 99),
                                                          u64(b, pos['sec2.t3.nbytes'], 4)))
    return files


def idx(type_byte, dims, payload=None, fmt='B'):
    count = 1
    for d in dims:
        count *= d
    if payload is None:
        payload = struct.pack('>%d%s' % (count, fmt), *[(i * 37) % 100 for i in range(count)])
    return bytes([0, 0, type_byte, len(dims)]) + b''.join(struct.pack('>I', d) for d in dims) + payload


def gz(b):
    return gzip.compress(b, compresslevel=9, mtime=0)


def idx_corpus():
    files = {}
    images = idx(0x08, [3, 28, 28])
    labels = idx(0x08, [16])
    files['ok-u8-images-3x28x28'] = images
    files['ok-u8-labels-16'] = labels
    files['ok-u8-images.gz'] = gz(images)
    files['ok-u8-labels.gz'] = gz(labels)
    files['ok-i8'] = idx(0x09, [2, 3], fmt='b')
    files['ok-i16'] = idx(0x0B, [4], fmt='h')
    files['ok-i32'] = idx(0x0C, [2, 2], fmt='i')
    files['ok-f32'] = idx(0x0D, [3], struct.pack('>3f', 0.5, -1.0, float('inf')))
    files['ok-f64.gz'] = gz(idx(0x0E, [2], struct.pack('>2d', 1e-300, float('nan'))))
    files['ok-rank8'] = idx(0x08, [1, 2, 1, 2, 1, 2, 1, 2])
    files['bad-empty'] = b''
    files['bad-one-byte'] = b'\0'
    files['bad-magic'] = b'\x01' + images[1:]
    files['bad-type'] = images[:2] + b'\x0a' + images[3:]
    files['bad-rank-0'] = bytes([0, 0, 8, 0])
    files['bad-rank-9'] = idx(0x08, [1] * 9)
    files['bad-zero-dim'] = idx(0x08, [3, 0, 28], b'')
    files['bad-dims-overflow'] = bytes([0, 0, 8, 8]) + b'\xff\xff\xff\xff' * 8
    files['bad-truncated'] = images[:-1]
    files['bad-trailing'] = images + b'\0'
    files['bad-header-truncated'] = images[:9]
    files['bad-gz-truncated'] = gz(images)[:-5]
    crc_broken = bytearray(gz(labels))
    crc_broken[-8] ^= 1
    files['bad-gz-crc'] = bytes(crc_broken)
    files['bad-gz-bomb-header'] = gz(bytes([0, 0, 8, 3]) + struct.pack('>3I', 60000, 28, 28))
    files['bad-gz-more-data'] = gz(labels + b'extra')
    files['bad-gz-trailing'] = gz(labels) + b'junk'
    files['bad-gz-two-members'] = gz(labels) + gz(labels)
    return files


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    for sub, files in (('checkpoint', (corpus(), '.sgdc')), ('idx', (idx_corpus(), ''))):
        out = os.path.join(argv[1], sub)
        os.makedirs(out, exist_ok=True)
        contents, ext = files
        for name, data in sorted(contents.items()):
            with open(os.path.join(out, name + ext), 'wb') as f:
                f.write(data)
        print('%d files in %s' % (len(contents), out))


if __name__ == '__main__':
    main(sys.argv)
