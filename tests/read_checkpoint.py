#!/usr/bin/env python3
"""An independent reader of libsgdlab checkpoint files, written from
docs/checkpoint-format.md alone (it shares no code with the C library).

It proves that the format document is complete, and the test suite uses it to
check that the C writer follows the document and that both readers refuse the
same damaged files.

    read(data: bytes) -> Checkpoint      raises CheckpointError(status, message)
    python3 read_checkpoint.py FILE      prints the sections and tensors

Standard library only.
"""
import struct
import sys

SIGNATURE = b'\x89SGD\r\n\x1a\n'
MAJOR, MINOR = 1, 0
MAX_HEADER = 16 * 1024 * 1024
MAX_SECTIONS = 1024
MAX_TENSORS = 65536
MAX_NAME = 255
MAX_RANK = 8
ALIGN = 64
MIN_SECTION_RECORD = 31
MIN_TENSOR_RECORD = 21
REQUIRED = 1

# code: (name, size, struct format character)
DTYPES = {1: ('f32', 4, 'f'), 2: ('f64', 8, 'd'), 3: ('i32', 4, 'i'),
          4: ('i64', 8, 'q'), 5: ('u8', 1, 'B'), 6: ('u64', 8, 'Q')}


class CheckpointError(Exception):
    """A refused file; status is 'EFORMAT', 'EVERSION' or 'EOVERFLOW'."""

    def __init__(self, status, message):
        super().__init__('%s: %s' % (status, message))
        self.status = status
        self.message = message


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """CRC-32C, continuing from crc (0 to start)."""
    c = crc ^ 0xFFFFFFFF
    t = _TABLE
    for b in data:
        c = (c >> 8) ^ t[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


assert crc32c(b'123456789') == 0xE3069283


class Tensor:
    def __init__(self, name, dtype, dims, offset, nbytes, raw):
        self.name, self.dtype, self.dims = name, dtype, dims
        self.offset, self.nbytes, self.raw = offset, nbytes, raw

    @property
    def dtype_name(self):
        return DTYPES[self.dtype][0] if self.dtype in DTYPES else 'unknown(%d)' % self.dtype

    def values(self):
        """The elements as a flat list of Python numbers (row-major)."""
        if self.dtype not in DTYPES:
            raise CheckpointError('EUNSUPPORTED', 'tensor %r has an unknown dtype %d' % (self.name, self.dtype))
        _, size, ch = DTYPES[self.dtype]
        return list(struct.unpack('<%d%s' % (self.nbytes // size, ch), self.raw))


class Section:
    def __init__(self, name, flags, offset, size, crc):
        self.name, self.flags, self.offset, self.size, self.crc = name, flags, offset, size, crc
        self.tensors = []

    def tensor(self, name):
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)


class Checkpoint:
    def __init__(self, major, minor, size, sections):
        self.major, self.minor, self.size, self.sections = major, minor, size, sections

    def section(self, name):
        for s in self.sections:
            if s.name == name:
                return s
        raise KeyError(name)


def _fail(status, fmt, *args):
    raise CheckpointError(status, fmt % args)


class _Cursor:
    """Reads packed little-endian fields from the directory, never past its end."""

    def __init__(self, data, pos, end):
        self.data, self.pos, self.end = data, pos, end

    def take(self, n, what):
        if self.end - self.pos < n:
            _fail('EFORMAT', '%s at byte %d runs past the end of the header (%d)', what, self.pos, self.end)
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u(self, size, what):
        return int.from_bytes(self.take(size, what), 'little')

    def name(self, what):
        n = self.u(2, what)
        if not 1 <= n <= MAX_NAME:
            _fail('EFORMAT', '%s: name length %d is not in 1..%d', what, n, MAX_NAME)
        raw = self.take(n, what)
        if any(c < 0x21 or c > 0x7E for c in raw):
            _fail('EFORMAT', '%s: name has a byte outside 0x21..0x7e', what)
        return raw.decode('ascii')


def _zeros(data, start, end, where):
    if data[start:end].strip(b'\0'):
        _fail('EFORMAT', 'nonzero padding byte in [%d, %d), %s', start, end, where)


def read(data):
    """Validates a whole checkpoint and returns it; raises CheckpointError."""
    data = bytes(data)
    n = len(data)
    if data[:8] != SIGNATURE:
        if data[:4] == b'\x89SGD' and data[4:7] == b'\n\x1a\n':
            _fail('EFORMAT', 'bad signature: CR LF turned into LF (text-mode transfer)')
        if data[:4] == b'\x89SGD' and data[4:7] == b'\r\r\n':
            _fail('EFORMAT', 'bad signature: LF turned into CR LF (text-mode transfer)')
        if len(data) < 8 and SIGNATURE.startswith(data):
            _fail('EFORMAT', 'truncated: %d bytes', n)
        _fail('EFORMAT', 'not a libsgdlab checkpoint (bad signature)')
    if n < 12:
        _fail('EFORMAT', 'truncated: %d bytes', n)
    major, minor = struct.unpack_from('<HH', data, 8)
    if major != MAJOR:
        _fail('EVERSION', 'format version %d.%d, this reader reads %d.x', major, minor, MAJOR)
    if n < 32:
        _fail('EFORMAT', 'truncated: %d bytes', n)
    header, file_size, nsec, header_crc = struct.unpack_from('<IQII', data, 12)
    if file_size != n:
        _fail('EFORMAT', 'the header says the file has %d bytes, it has %d (truncated?)', file_size, n)
    if header < 32:
        _fail('EFORMAT', 'header size %d is below 32', header)
    if header > MAX_HEADER:
        _fail('EOVERFLOW', 'header size %d is above %d', header, MAX_HEADER)
    if header > n:
        _fail('EFORMAT', 'header size %d is larger than the file', header)
    if nsec > MAX_SECTIONS:
        _fail('EOVERFLOW', '%d sections, at most %d', nsec, MAX_SECTIONS)
    if nsec > (header - 32) // MIN_SECTION_RECORD:
        _fail('EFORMAT', '%d sections cannot fit in a header of %d bytes', nsec, header)

    cur = _Cursor(data, 32, header)
    sections = []
    total_tensors = 0
    prev_end = header
    for s in range(nsec):
        sname = cur.name('section %d' % s)
        flags = cur.u(4, sname)
        count = cur.u(4, sname)
        off = cur.u(8, sname)
        size = cur.u(8, sname)
        crc = cur.u(4, sname)
        if flags & ~REQUIRED:
            _fail('EFORMAT', 'section %r: reserved flag bits 0x%x', sname, flags)
        if total_tensors + count > MAX_TENSORS:
            _fail('EOVERFLOW', 'section %r: more than %d tensors in the file', sname, MAX_TENSORS)
        if count > (header - cur.pos) // MIN_TENSOR_RECORD:
            _fail('EFORMAT', 'section %r: %d tensors cannot fit in the header', sname, count)
        if off % ALIGN:
            _fail('EFORMAT', 'section %r: data offset %d is not a multiple of %d', sname, off, ALIGN)
        if off < prev_end:
            _fail('EFORMAT', 'section %r: data offset %d overlaps what ends at %d', sname, off, prev_end)
        if off + size > n:
            _fail('EFORMAT', 'section %r: data [%d, %d) runs past the end of the file', sname, off, off + size)
        _zeros(data, prev_end, off, 'before section %r' % sname)
        sec = Section(sname, flags, off, size, crc)
        if any(x.name == sname for x in sections):
            _fail('EFORMAT', 'two sections are named %r', sname)
        end = off + size
        t_prev = off
        for t in range(count):
            tname = cur.name('section %r: tensor %d' % (sname, t))
            where = 'section %r: tensor %r' % (sname, tname)
            dtype = cur.u(1, where)
            rank = cur.u(1, where)
            if rank > MAX_RANK:
                _fail('EOVERFLOW', '%s: rank %d is above %d', where, rank, MAX_RANK)
            if dtype not in DTYPES and minor <= MINOR:
                _fail('EFORMAT', '%s: unknown dtype %d', where, dtype)
            dims = [cur.u(8, where) for _ in range(rank)]
            toff = cur.u(8, where)
            nbytes = cur.u(8, where)
            elems = 1
            for d in dims:
                if d > 2**63 - 1:
                    _fail('EOVERFLOW', '%s: dimension %d is above 2^63 - 1', where, d)
                elems *= d
                if elems >= 2**64:
                    _fail('EOVERFLOW', '%s: the product of its dims overflows 64 bits', where)
            if dtype in DTYPES:
                want = elems * DTYPES[dtype][1]
                if want >= 2**64:
                    _fail('EOVERFLOW', '%s: its byte size overflows 64 bits', where)
                if nbytes != want:
                    _fail('EFORMAT', '%s: byte size %d does not match its shape (%d)', where, nbytes, want)
            elif nbytes < elems:
                _fail('EFORMAT', '%s: byte size %d is less than its %d elements', where, nbytes, elems)
            if toff % ALIGN:
                _fail('EFORMAT', '%s: offset %d is not a multiple of %d', where, toff, ALIGN)
            if toff < t_prev:
                _fail('EFORMAT', '%s: offset %d overlaps what ends at %d', where, toff, t_prev)
            if toff + nbytes > end:
                _fail('EFORMAT', '%s: data runs past the end of its section', where)
            _zeros(data, t_prev, toff, 'before ' + where)
            if any(x.name == tname for x in sec.tensors):
                _fail('EFORMAT', 'section %r: two tensors are named %r', sname, tname)
            sec.tensors.append(Tensor(tname, dtype, dims, toff, nbytes, data[toff:toff + nbytes]))
            t_prev = toff + nbytes
        _zeros(data, t_prev, end, 'at the end of section %r' % sname)
        total_tensors += count
        prev_end = end
        sections.append(sec)
    if cur.pos != header:
        _fail('EFORMAT', '%d unused bytes at the end of the header', header - cur.pos)
    if prev_end != n:
        _fail('EFORMAT', '%d bytes after the last section', n - prev_end)

    # Checksums last: the structure never depends on them.
    got = crc32c(data[32:header], crc32c(data[:28]))
    if got != header_crc:
        _fail('EFORMAT', 'header checksum mismatch: stored 0x%08x, computed 0x%08x', header_crc, got)
    for sec in sections:
        got = crc32c(data[sec.offset:sec.offset + sec.size])
        if got != sec.crc:
            _fail('EFORMAT', 'section %r: checksum mismatch', sec.name)
    return Checkpoint(major, minor, n, sections)


def main(argv):
    if len(argv) != 2:
        sys.exit('usage: read_checkpoint.py FILE')
    with open(argv[1], 'rb') as f:
        data = f.read()
    try:
        ck = read(data)
    except CheckpointError as e:
        sys.exit('%s: %s' % (argv[1], e))
    print('%s: format %d.%d, %d bytes, %d sections' % (argv[1], ck.major, ck.minor, ck.size, len(ck.sections)))
    for s in ck.sections:
        print('  section %s%s: %d tensors, bytes [%d, %d), crc32c 0x%08x'
              % (s.name, ' (required)' if s.flags & REQUIRED else '', len(s.tensors), s.offset,
                 s.offset + s.size, s.crc))
        for t in s.tensors:
            shown = t.values()[:4] if t.dtype in DTYPES else []
            print('    %-24s %-4s %-16s %s%s' % (t.name, t.dtype_name, t.dims, shown,
                                                 '...' if t.nbytes > 4 * DTYPES.get(t.dtype, (0, 1))[1] else ''))


if __name__ == '__main__':
    main(sys.argv)
