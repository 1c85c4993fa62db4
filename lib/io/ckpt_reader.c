/*
 * The checkpoint reader. Validation happens in two passes over the header
 * (docs/checkpoint-format.md is the specification):
 *
 *   1. check_fixed() and scan(): every field, count, name, dimension, product,
 *      offset and padding byte is checked with overflow-safe arithmetic, and
 *      the exact sizes of the reader's own tables are counted. Nothing is
 *      allocated, and nothing here trusts a checksum.
 *   2. The checksums of the header and of each section.
 *   3. One allocation of the counted size, scan() again to fill it (it checks
 *      the counts once more, so a buffer that changes between the passes can
 *      cause an error but never an overflow), then the name indexes, which
 *      also find duplicate names.
 *
 * SPDX-License-Identifier: MIT
 */
#include "io/ckpt_internal.h"

#include "core/abi.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

typedef struct rsec {
    uint32_t name; /* offset in names */
    uint32_t flags;
    uint32_t first; /* index of its first tensor */
    uint32_t count;
    uint64_t offset;
    uint64_t size;
    uint32_t crc;
} rsec;

typedef struct rten {
    uint32_t name;    /* offset in names */
    uint32_t section; /* index of its section */
    uint32_t dims;    /* index of its first dimension in dims */
    uint8_t dtype;
    uint8_t rank;
    uint64_t offset;
    uint64_t nbytes;
} rten;

struct sgd_ckpt_reader {
    sgd_allocator alloc;
    const unsigned char *data; /* the file */
    uint64_t size;
    void *owned; /* block holding the file when it was read from a path */
    void *meta;  /* block holding the tables below */
    uint32_t major, minor;
    uint32_t nsec, nten, ndims;
    rsec *secs;
    rten *tens;
    uint64_t *dims;
    char *names;
    uint32_t *sec_sorted; /* section indexes by name */
    uint32_t *ten_sorted; /* per section, [first, first+count): tensor indexes by name */
};

/* ------------------------------------------------------------ messages */

typedef struct parse {
    const char *fn;  /* the public function */
    const char *src; /* the file's path, or "buffer" */
    const unsigned char *b;
    uint64_t n;
    uint32_t minor;
    uint64_t header; /* H */
    uint32_t nsec;
    /* counted by the first scan */
    uint64_t nten, ndims, names;
    /* filled by the second scan (NULL during the first) */
    sgd_ckpt_reader *r;
} parse;

static sgd_status perr(const parse *P, sgd_status st, const char *fmt, ...) SGD__PRINTF(3, 4);

static sgd_status perr(const parse *P, sgd_status st, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sgd__err(st, "%s: %s: %s", P->fn, P->src, msg);
}

/* A validated (printable, 1..255 bytes) name from the file, NUL-terminated for messages. */
static void show_name(char *buf, size_t cap, const unsigned char *s, size_t n)
{
    snprintf(buf, cap, "%.*s", (int)n, (const char *)s);
}

/* ------------------------------------------------------------ the header */

static sgd_status check_signature(const parse *P)
{
    const unsigned char *b = P->b;
    uint64_t n = P->n;
    if (n >= SGD__CKPT_SIG_LEN && memcmp(b, SGD__CKPT_SIGNATURE, SGD__CKPT_SIG_LEN) == 0)
        return SGD_OK;
    /* Name the kinds of damage the signature is designed to reveal. */
    if (n >= 7 && b[0] == 0x89 && memcmp(b + 1, "SGD\n\x1a\n", 6) == 0)
        return perr(P, SGD_EFORMAT, "bad signature: CR LF was turned into LF (the file went through a text-mode "
                                    "transfer); it cannot be repaired reliably");
    if (n >= 8 && b[0] == 0x89 && memcmp(b + 1, "SGD\r\r\n", 6) == 0)
        return perr(P, SGD_EFORMAT, "bad signature: LF was turned into CR LF (the file went through a text-mode "
                                    "transfer); it cannot be repaired reliably");
    if (n >= 4 && b[0] == 0x09 && memcmp(b + 1, "SGD", 3) == 0)
        return perr(P, SGD_EFORMAT,
                    "bad signature: the high bit of the first byte was cleared (a 7-bit transfer)");
    if (n == 7 && memcmp(b, SGD__CKPT_SIGNATURE, 7) == 0)
        return perr(P, SGD_EFORMAT, "truncated after the Ctrl-Z of the signature (read in text mode?)");
    if (n < SGD__CKPT_SIG_LEN && memcmp(b, SGD__CKPT_SIGNATURE, (size_t)n) == 0)
        return perr(P, SGD_EFORMAT, "truncated: %llu bytes, not even a whole signature", (unsigned long long)n);
    return perr(P, SGD_EFORMAT, "not a libsgdlab checkpoint (the first 8 bytes are not the signature "
                                "89 53 47 44 0d 0a 1a 0a)");
}

/*
 * The fixed 32 bytes, checked against the real size `file_size` (which may be
 * larger than P->n when only the fixed part has been read so far).
 */
static sgd_status check_fixed(parse *P, uint64_t file_size)
{
    sgd_status st = check_signature(P);
    if (st != SGD_OK)
        return st;
    const unsigned char *b = P->b;
    if (P->n < 12)
        return perr(P, SGD_EFORMAT, "truncated: %llu bytes, the version is at bytes 8 to 11",
                    (unsigned long long)P->n);
    uint32_t major = sgd__get_le16(b + 8), minor = sgd__get_le16(b + 10);
    if (major != SGD_CKPT_FORMAT_MAJOR)
        return perr(P, SGD_EVERSION, "format version %u.%u; this library reads version %d.x only", major, minor,
                    SGD_CKPT_FORMAT_MAJOR);
    if (P->n < SGD__CKPT_FIXED)
        return perr(P, SGD_EFORMAT, "truncated: %llu bytes, the fixed header alone is %d",
                    (unsigned long long)P->n, SGD__CKPT_FIXED);
    P->minor = minor;
    uint64_t h = sgd__get_le32(b + 12);
    uint64_t declared = sgd__get_le64(b + 16);
    uint32_t nsec = sgd__get_le32(b + 24);
    if (declared != file_size)
        return perr(P, SGD_EFORMAT, "%s: the header says the file has %llu bytes, it has %llu",
                    declared > file_size ? "truncated" : "size mismatch", (unsigned long long)declared,
                    (unsigned long long)file_size);
    if (h < SGD__CKPT_FIXED)
        return perr(P, SGD_EFORMAT, "header size %llu (bytes 12-15) is below the minimum %d",
                    (unsigned long long)h, SGD__CKPT_FIXED);
    if (h > SGD_CKPT_MAX_HEADER)
        return perr(P, SGD_EOVERFLOW, "header size %llu (bytes 12-15) is above the maximum %u",
                    (unsigned long long)h, SGD_CKPT_MAX_HEADER);
    if (h > file_size)
        return perr(P, SGD_EFORMAT, "header size %llu (bytes 12-15) is larger than the file (%llu bytes)",
                    (unsigned long long)h, (unsigned long long)file_size);
    if (nsec > SGD_CKPT_MAX_SECTIONS)
        return perr(P, SGD_EOVERFLOW, "section count %u (bytes 24-27) is above the maximum %d", nsec,
                    SGD_CKPT_MAX_SECTIONS);
    if (nsec > (h - SGD__CKPT_FIXED) / SGD__CKPT_MIN_SECTION_REC)
        return perr(P, SGD_EFORMAT, "section count %u (bytes 24-27) cannot fit in a header of %llu bytes", nsec,
                    (unsigned long long)h);
    P->header = h;
    P->nsec = nsec;
    return SGD_OK;
}

/* The first nonzero byte in [from, to), or `to`. */
static uint64_t first_nonzero(const unsigned char *b, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++)
        if (b[i] != 0)
            return i;
    return to;
}

static inline bool aligned(uint64_t x)
{
    return (x & (SGD_CKPT_ALIGN - 1)) == 0;
}

/*
 * Walks the directory. First pass (P->r == NULL): validates and counts.
 * Second pass: fills P->r's tables, whose sizes the first pass counted.
 */
static sgd_status scan(parse *P)
{
    const unsigned char *b = P->b;
    const uint64_t end = P->header;
    uint64_t p = SGD__CKPT_FIXED;
    uint64_t prev_end = P->header; /* sections' data come after the header */
    uint64_t nten = 0, ndims = 0, names = 0;
    sgd_ckpt_reader *r = P->r;
    char sname[SGD_CKPT_MAX_NAME + 1], tname[SGD_CKPT_MAX_NAME + 1];

    for (uint32_t s = 0; s < P->nsec; s++) {
        uint64_t rec = p;
        if (end - p < 2)
            return perr(P, SGD_EFORMAT, "section %u: its record at byte %llu runs past the end of the header (%llu)",
                        s, (unsigned long long)rec, (unsigned long long)end);
        uint32_t nl = sgd__get_le16(b + p);
        if (nl == 0 || nl > SGD_CKPT_MAX_NAME)
            return perr(P, SGD_EFORMAT, "section %u: name length %u at byte %llu is not in 1..%d", s, nl,
                        (unsigned long long)p, SGD_CKPT_MAX_NAME);
        if (end - p - 2 < (uint64_t)nl + SGD__CKPT_SECTION_TAIL)
            return perr(P, SGD_EFORMAT, "section %u: its record at byte %llu runs past the end of the header (%llu)",
                        s, (unsigned long long)rec, (unsigned long long)end);
        const unsigned char *name = b + p + 2;
        if (!sgd__ckpt_name_ok(name, nl))
            return perr(P, SGD_EFORMAT, "section %u: the name at byte %llu has a byte outside 0x21..0x7e", s,
                        (unsigned long long)(p + 2));
        show_name(sname, sizeof sname, name, nl);
        p += 2 + nl;
        uint32_t flags = sgd__get_le32(b + p);
        uint32_t count = sgd__get_le32(b + p + 4);
        uint64_t off = sgd__get_le64(b + p + 8);
        uint64_t size = sgd__get_le64(b + p + 16);
        uint32_t crc = sgd__get_le32(b + p + 24);
        if (flags & ~(uint32_t)SGD_CKPT_SECTION_REQUIRED)
            return perr(P, SGD_EFORMAT, "section '%s': flags 0x%x at byte %llu set reserved bits", sname, flags,
                        (unsigned long long)p);
        if (count > SGD_CKPT_MAX_TENSORS - nten)
            return perr(P, SGD_EOVERFLOW, "section '%s': %u tensors (byte %llu) make more than %d in the file",
                        sname, count, (unsigned long long)(p + 4), SGD_CKPT_MAX_TENSORS);
        if (count > (end - p - SGD__CKPT_SECTION_TAIL) / SGD__CKPT_MIN_TENSOR_REC)
            return perr(P, SGD_EFORMAT, "section '%s': %u tensors (byte %llu) cannot fit in the %llu bytes left "
                        "in the header", sname, count, (unsigned long long)(p + 4),
                        (unsigned long long)(end - p - SGD__CKPT_SECTION_TAIL));
        if (!aligned(off))
            return perr(P, SGD_EFORMAT, "section '%s': data offset %llu (byte %llu) is not a multiple of %d", sname,
                        (unsigned long long)off, (unsigned long long)(p + 8), SGD_CKPT_ALIGN);
        if (off < prev_end)
            return perr(P, SGD_EFORMAT, "section '%s': data offset %llu (byte %llu) overlaps the %s, which ends at "
                        "%llu (offsets must increase)", sname, (unsigned long long)off,
                        (unsigned long long)(p + 8), s == 0 ? "header" : "previous section",
                        (unsigned long long)prev_end);
        if (off > P->n || size > P->n - off)
            return perr(P, SGD_EFORMAT, "section '%s': data [%llu, %llu + %llu) (byte %llu) runs past the end of "
                        "the file (%llu bytes)", sname, (unsigned long long)off, (unsigned long long)off,
                        (unsigned long long)size, (unsigned long long)(p + 8), (unsigned long long)P->n);
        uint64_t z = first_nonzero(b, prev_end, off);
        if (z != off)
            return perr(P, SGD_EFORMAT, "nonzero padding byte 0x%02x at %llu, before section '%s'", b[z],
                        (unsigned long long)z, sname);
        if (r != NULL) {
            if (s >= r->nsec || nten > r->nten || names + nl + 1 > P->names)
                return perr(P, SGD_EFORMAT, "the buffer changed while it was being read");
            r->secs[s] = (rsec){.name = (uint32_t)names, .flags = flags, .first = (uint32_t)nten, .count = count,
                                .offset = off, .size = size, .crc = crc};
            memcpy(r->names + names, name, nl);
            r->names[names + nl] = '\0';
        }
        names += (uint64_t)nl + 1;
        p += SGD__CKPT_SECTION_TAIL;

        const uint64_t sec_end = off + size;
        uint64_t t_prev = off;
        for (uint32_t t = 0; t < count; t++) {
            uint64_t trec = p;
            if (end - p < 2)
                goto trunc_tensor;
            uint32_t tl = sgd__get_le16(b + p);
            if (tl == 0 || tl > SGD_CKPT_MAX_NAME)
                return perr(P, SGD_EFORMAT, "section '%s': tensor %u: name length %u at byte %llu is not in 1..%d",
                            sname, t, tl, (unsigned long long)p, SGD_CKPT_MAX_NAME);
            if (end - p - 2 < (uint64_t)tl + 2)
                goto trunc_tensor;
            const unsigned char *tn = b + p + 2;
            if (!sgd__ckpt_name_ok(tn, tl))
                return perr(P, SGD_EFORMAT, "section '%s': tensor %u: the name at byte %llu has a byte outside "
                            "0x21..0x7e", sname, t, (unsigned long long)(p + 2));
            show_name(tname, sizeof tname, tn, tl);
            p += 2 + tl;
            uint32_t dtype = b[p], rank = b[p + 1];
            if (rank > SGD_CKPT_MAX_RANK)
                return perr(P, SGD_EOVERFLOW, "section '%s': tensor '%s': rank %u (byte %llu) is above the maximum "
                            "%d", sname, tname, rank, (unsigned long long)(p + 1), SGD_CKPT_MAX_RANK);
            size_t esize = sgd_ckpt_dtype_size((int)dtype);
            if (esize == 0 && P->minor <= SGD_CKPT_FORMAT_MINOR)
                return perr(P, SGD_EFORMAT, "section '%s': tensor '%s': unknown dtype %u (byte %llu)", sname, tname,
                            dtype, (unsigned long long)p);
            p += 2;
            if (end - p < 8ull * rank + 16)
                goto trunc_tensor;
            uint64_t elems = 1;
            for (uint32_t d = 0; d < rank; d++) {
                uint64_t dim = sgd__get_le64(b + p + 8ull * d);
                if (dim > (uint64_t)INT64_MAX)
                    return perr(P, SGD_EOVERFLOW, "section '%s': tensor '%s': dims[%u] = %llu (byte %llu) is above "
                                "2^63 - 1", sname, tname, d, (unsigned long long)dim,
                                (unsigned long long)(p + 8ull * d));
                if (__builtin_mul_overflow(elems, dim, &elems))
                    return perr(P, SGD_EOVERFLOW, "section '%s': tensor '%s': the product of its dims overflows 64 "
                                "bits (dims[%u] = %llu)", sname, tname, d, (unsigned long long)dim);
            }
            const unsigned char *dims_at = b + p;
            p += 8ull * rank;
            uint64_t toff = sgd__get_le64(b + p);
            uint64_t nbytes = sgd__get_le64(b + p + 8);
            if (esize != 0) {
                uint64_t want;
                if (__builtin_mul_overflow(elems, (uint64_t)esize, &want))
                    return perr(P, SGD_EOVERFLOW, "section '%s': tensor '%s': %llu elements of %zu bytes overflow 64 "
                                "bits", sname, tname, (unsigned long long)elems, esize);
                if (nbytes != want)
                    return perr(P, SGD_EFORMAT, "section '%s': tensor '%s': byte size %llu (byte %llu) does not "
                                "match %llu elements of %s (%llu bytes)", sname, tname, (unsigned long long)nbytes,
                                (unsigned long long)(p + 8), (unsigned long long)elems,
                                sgd_ckpt_dtype_name((int)dtype), (unsigned long long)want);
            } else if (elems > nbytes) {
                /* Unknown dtype of a newer minor version: at least a byte per element. */
                return perr(P, SGD_EFORMAT, "section '%s': tensor '%s': byte size %llu (byte %llu) is less than "
                            "its %llu elements", sname, tname, (unsigned long long)nbytes,
                            (unsigned long long)(p + 8), (unsigned long long)elems);
            }
            if (!aligned(toff))
                return perr(P, SGD_EFORMAT, "section '%s': tensor '%s': offset %llu (byte %llu) is not a multiple "
                            "of %d", sname, tname, (unsigned long long)toff, (unsigned long long)p, SGD_CKPT_ALIGN);
            if (toff < t_prev)
                return perr(P, SGD_EFORMAT, "section '%s': tensor '%s': offset %llu (byte %llu) is before %llu, "
                            "where the %s ends (tensors may not overlap and must be in order)", sname, tname,
                            (unsigned long long)toff, (unsigned long long)p, (unsigned long long)t_prev,
                            t == 0 ? "section's start" : "previous tensor");
            if (toff > sec_end || nbytes > sec_end - toff)
                return perr(P, SGD_EFORMAT, "section '%s': tensor '%s': data [%llu, %llu + %llu) (byte %llu) runs "
                            "past the end of its section (%llu)", sname, tname, (unsigned long long)toff,
                            (unsigned long long)toff, (unsigned long long)nbytes, (unsigned long long)p,
                            (unsigned long long)sec_end);
            z = first_nonzero(b, t_prev, toff);
            if (z != toff)
                return perr(P, SGD_EFORMAT, "nonzero padding byte 0x%02x at %llu, before tensor '%s' of section "
                            "'%s'", b[z], (unsigned long long)z, tname, sname);
            if (r != NULL) {
                if (nten >= r->nten || ndims + rank > r->ndims || names + tl + 1 > P->names)
                    return perr(P, SGD_EFORMAT, "the buffer changed while it was being read");
                r->tens[nten] = (rten){.name = (uint32_t)names, .section = s, .dims = (uint32_t)ndims,
                                       .dtype = (uint8_t)dtype, .rank = (uint8_t)rank, .offset = toff,
                                       .nbytes = nbytes};
                for (uint32_t d = 0; d < rank; d++)
                    r->dims[ndims + d] = sgd__get_le64(dims_at + 8ull * d);
                memcpy(r->names + names, tn, tl);
                r->names[names + tl] = '\0';
            }
            names += (uint64_t)tl + 1;
            ndims += rank;
            nten++;
            p += 16;
            t_prev = toff + nbytes;
            continue;
        trunc_tensor:
            return perr(P, SGD_EFORMAT, "section '%s': tensor %u: its record at byte %llu runs past the end of the "
                        "header (%llu)", sname, t, (unsigned long long)trec, (unsigned long long)end);
        }
        z = first_nonzero(b, t_prev, sec_end);
        if (z != sec_end)
            return perr(P, SGD_EFORMAT, "nonzero padding byte 0x%02x at %llu, at the end of section '%s'", b[z],
                        (unsigned long long)z, sname);
        prev_end = sec_end;
    }
    if (p != end)
        return perr(P, SGD_EFORMAT, "%llu unused bytes at the end of the header (from byte %llu to %llu)",
                    (unsigned long long)(end - p), (unsigned long long)p, (unsigned long long)end);
    if (prev_end != P->n)
        return perr(P, SGD_EFORMAT, "%llu bytes after the end of the last section (%llu); the file must end there",
                    (unsigned long long)(P->n - prev_end), (unsigned long long)prev_end);
    if (r == NULL) {
        P->nten = nten;
        P->ndims = ndims;
        P->names = names;
    } else if (nten != r->nten || ndims != r->ndims || names != P->names) {
        return perr(P, SGD_EFORMAT, "the buffer changed while it was being read");
    }
    return SGD_OK;
}

/* Checksums: the header's, then each section's, in file order. */
static sgd_status check_crcs(const parse *P)
{
    const unsigned char *b = P->b;
    uint32_t stored = sgd__get_le32(b + 28);
    uint32_t crc = sgd__crc32c(0, b, 28);
    crc = sgd__crc32c(crc, b + SGD__CKPT_FIXED, (size_t)(P->header - SGD__CKPT_FIXED));
    if (crc != stored)
        return perr(P, SGD_EFORMAT, "header checksum mismatch: stored 0x%08x, computed 0x%08x (the file is "
                    "corrupt)", stored, crc);
    /* scan() has validated the directory: walk the section records again. */
    uint64_t p = SGD__CKPT_FIXED;
    for (uint32_t s = 0; s < P->nsec; s++) {
        uint32_t nl = sgd__get_le16(b + p);
        const unsigned char *name = b + p + 2;
        p += 2 + nl;
        uint32_t count = sgd__get_le32(b + p + 4);
        uint64_t off = sgd__get_le64(b + p + 8), size = sgd__get_le64(b + p + 16);
        uint32_t want = sgd__get_le32(b + p + 24);
        uint32_t got = sgd__crc32c(0, b + off, (size_t)size);
        if (got != want)
            return perr(P, SGD_EFORMAT, "section '%.*s': checksum mismatch over bytes [%llu, %llu): stored 0x%08x, "
                        "computed 0x%08x (the file is corrupt)", (int)nl, (const char *)name,
                        (unsigned long long)off, (unsigned long long)(off + size), want, got);
        p += SGD__CKPT_SECTION_TAIL;
        for (uint32_t t = 0; t < count; t++) {
            p += 2 + sgd__get_le16(b + p);
            p += 2 + 8ull * b[p + 1] + 16;
        }
    }
    return SGD_OK;
}

/* ------------------------------------------------------------- indexes */

typedef int (*idx_cmp)(const sgd_ckpt_reader *r, uint32_t a, uint32_t b);

static int sec_cmp(const sgd_ckpt_reader *r, uint32_t a, uint32_t b)
{
    return strcmp(r->names + r->secs[a].name, r->names + r->secs[b].name);
}

static int ten_cmp(const sgd_ckpt_reader *r, uint32_t a, uint32_t b)
{
    return strcmp(r->names + r->tens[a].name, r->names + r->tens[b].name);
}

/* Heapsort: O(n log n) in the worst case, no allocation, no recursion. */
static void sift(const sgd_ckpt_reader *r, uint32_t *v, size_t i, size_t n, idx_cmp cmp)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && cmp(r, v[c + 1], v[c]) > 0)
            c++;
        if (cmp(r, v[c], v[i]) <= 0)
            return;
        uint32_t tmp = v[i];
        v[i] = v[c];
        v[c] = tmp;
        i = c;
    }
}

static void sort_idx(const sgd_ckpt_reader *r, uint32_t *v, size_t n, idx_cmp cmp)
{
    for (size_t i = n / 2; i-- > 0;)
        sift(r, v, i, n, cmp);
    for (size_t end = n; end-- > 1;) {
        uint32_t tmp = v[0];
        v[0] = v[end];
        v[end] = tmp;
        sift(r, v, 0, end, cmp);
    }
}

static sgd_status build_indexes(const parse *P, sgd_ckpt_reader *r)
{
    for (uint32_t s = 0; s < r->nsec; s++)
        r->sec_sorted[s] = s;
    sort_idx(r, r->sec_sorted, r->nsec, sec_cmp);
    for (uint32_t s = 1; s < r->nsec; s++)
        if (sec_cmp(r, r->sec_sorted[s - 1], r->sec_sorted[s]) == 0)
            return perr(P, SGD_EFORMAT, "two sections are named '%s'", r->names + r->secs[r->sec_sorted[s]].name);
    for (uint32_t s = 0; s < r->nsec; s++) {
        const rsec *sec = &r->secs[s];
        uint32_t *v = r->ten_sorted + sec->first;
        for (uint32_t t = 0; t < sec->count; t++)
            v[t] = sec->first + t;
        sort_idx(r, v, sec->count, ten_cmp);
        for (uint32_t t = 1; t < sec->count; t++)
            if (ten_cmp(r, v[t - 1], v[t]) == 0)
                return perr(P, SGD_EFORMAT, "section '%s': two tensors are named '%s'", r->names + sec->name,
                            r->names + r->tens[v[t]].name);
    }
    return SGD_OK;
}

/* ---------------------------------------------------------------- open */

/* Carves `n` items of `size` bytes, aligned to `align`, out of a block being laid out. */
static bool carve(uint64_t *cur, uint64_t n, uint64_t size, uint64_t align, uint64_t *at)
{
    uint64_t start = (*cur + align - 1) & ~(align - 1), bytes;
    if (__builtin_mul_overflow(n, size, &bytes) || __builtin_add_overflow(start, bytes, cur))
        return false;
    *at = start;
    return true;
}

/*
 * Validates P->b[0..P->n) and builds the reader. `owned` (may be NULL) is the
 * block holding the bytes, which the reader takes over on success only.
 */
static sgd_status open_parsed(sgd_ckpt_reader **out, parse *P, const sgd_allocator *a, void *owned, bool verify)
{
    sgd_status st = check_fixed(P, P->n);
    if (st != SGD_OK)
        return st;
    if ((st = scan(P)) != SGD_OK)
        return st;
    if (verify && (st = check_crcs(P)) != SGD_OK)
        return st;

    /* One block for every table, sized from the first scan (bounded by the header size). */
    uint64_t cur = 0, o_secs, o_tens, o_dims, o_ss, o_ts, o_names;
    if (!carve(&cur, P->nsec, sizeof(rsec), 8, &o_secs) || !carve(&cur, P->nten, sizeof(rten), 8, &o_tens) ||
        !carve(&cur, P->ndims, sizeof(uint64_t), 8, &o_dims) || !carve(&cur, P->nsec, sizeof(uint32_t), 4, &o_ss) ||
        !carve(&cur, P->nten, sizeof(uint32_t), 4, &o_ts) || !carve(&cur, P->names, 1, 1, &o_names) ||
        cur > SIZE_MAX)
        return perr(P, SGD_EOVERFLOW, "the reader's tables would not fit in memory");
    sgd_ckpt_reader *r = sgd__calloc(a, 1, sizeof *r);
    if (r == NULL)
        return perr(P, SGD_ENOMEM, "out of memory (%zu bytes)", sizeof *r);
    r->alloc = *a;
    r->meta = sgd__malloc(a, (size_t)cur);
    if (r->meta == NULL) {
        sgd__free(a, r);
        return perr(P, SGD_ENOMEM, "out of memory for the reader's tables (%llu bytes)", (unsigned long long)cur);
    }
    unsigned char *m = r->meta;
    r->secs = (rsec *)(void *)(m + o_secs);
    r->tens = (rten *)(void *)(m + o_tens);
    r->dims = (uint64_t *)(void *)(m + o_dims);
    r->sec_sorted = (uint32_t *)(void *)(m + o_ss);
    r->ten_sorted = (uint32_t *)(void *)(m + o_ts);
    r->names = (char *)(m + o_names);
    r->nsec = P->nsec;
    r->nten = (uint32_t)P->nten;
    r->ndims = (uint32_t)P->ndims;
    r->major = SGD_CKPT_FORMAT_MAJOR;
    r->minor = P->minor;
    r->data = P->b;
    r->size = P->n;
    P->r = r;
    st = scan(P);
    if (st == SGD_OK)
        st = build_indexes(P, r);
    P->r = NULL;
    if (st != SGD_OK) {
        sgd__free(a, r->meta);
        sgd__free(a, r);
        return st;
    }
    r->owned = owned;
    *out = r;
    return SGD_OK;
}

sgd_status sgd__ckpt_open_memory_ex(sgd_ckpt_reader **out, const void *data, size_t size,
                                    const sgd_allocator *alloc, bool verify_crc)
{
    static const char fn[] = "sgd_ckpt_reader_open_memory";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (data == NULL && size > 0)
        return sgd__err(SGD_EINVAL, "%s: data is NULL with size %zu", fn, size);
    sgd_allocator a;
    sgd_status st = sgd__allocator_init(&a, alloc, fn);
    if (st != SGD_OK)
        return st;
    static const unsigned char empty[1];
    parse P = {.fn = fn, .src = "buffer", .b = data ? data : empty, .n = size};
    return open_parsed(out, &P, &a, NULL, verify_crc);
}

sgd_status sgd_ckpt_reader_open_memory(sgd_ckpt_reader **out, const void *data, size_t size,
                                       const sgd_allocator *alloc)
{
    return sgd__ckpt_open_memory_ex(out, data, size, alloc, true);
}

/* Reads exactly n bytes; -errno, or -ENODATA if the file ended first. */
static int read_full(const sgd__io *io, int fd, unsigned char *buf, uint64_t n, uint64_t *got)
{
    *got = 0;
    while (*got < n) {
        uint64_t left = n - *got;
        size_t c = left > ((size_t)1 << 30) ? ((size_t)1 << 30) : (size_t)left;
        int64_t r = io->read(fd, buf + *got, c, io->user);
        if (r == -EINTR)
            continue;
        if (r < 0)
            return (int)r;
        if (r == 0)
            return -ENODATA;
        if ((uint64_t)r > c)
            return -EIO;
        *got += (uint64_t)r;
    }
    return 0;
}

sgd_status sgd__ckpt_open_io(sgd_ckpt_reader **out, const char *path, const sgd_allocator *alloc,
                             const sgd__io *io)
{
    static const char fn[] = "sgd_ckpt_reader_open";
    if (out == NULL || path == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, out == NULL ? "out" : "path");
    *out = NULL;
    sgd_allocator a;
    sgd_status st = sgd__allocator_init(&a, alloc, fn);
    if (st != SGD_OK)
        return st;
    int fd;
    do
        fd = io->open(path, SGD__IO_READ, io->user);
    while (fd == -EINTR);
    if (fd < 0)
        return sgd__err(SGD_EIO, "%s: %s: cannot open: %s", fn, path, strerror(-fd));
    uint64_t size, got;
    unsigned char fixed[SGD__CKPT_FIXED];
    void *raw = NULL;
    unsigned char *buf;
    int rc = io->size(fd, &size, io->user);
    if (rc < 0) {
        st = sgd__err(SGD_EIO, "%s: %s: %s", fn, path,
                      rc == -EISDIR ? "not a regular file" : strerror(-rc));
        goto done;
    }
    parse P = {.fn = fn, .src = path, .b = fixed};
    /* The fixed header first: a file that is not a checkpoint costs no large allocation. */
    rc = read_full(io, fd, fixed, size < SGD__CKPT_FIXED ? size : SGD__CKPT_FIXED, &got);
    if (rc < 0)
        goto read_error;
    P.n = got;
    if (size < SGD__CKPT_FIXED) {
        st = open_parsed(out, &P, &a, NULL, true); /* refuses it, with the reason */
        goto done;
    }
    if ((st = check_fixed(&P, size)) != SGD_OK)
        goto done;
    if (size > SIZE_MAX - SGD_CKPT_ALIGN) {
        st = sgd__err(SGD_EOVERFLOW, "%s: %s: %llu bytes do not fit in memory", fn, path, (unsigned long long)size);
        goto done;
    }
    raw = sgd__malloc(&a, (size_t)size + SGD_CKPT_ALIGN - 1);
    if (raw == NULL) {
        st = sgd__err(SGD_ENOMEM, "%s: %s: out of memory for the file's %llu bytes", fn, path,
                      (unsigned long long)size);
        goto done;
    }
    buf = (unsigned char *)(((uintptr_t)raw + SGD_CKPT_ALIGN - 1) & ~(uintptr_t)(SGD_CKPT_ALIGN - 1));
    memcpy(buf, fixed, SGD__CKPT_FIXED);
    rc = read_full(io, fd, buf + SGD__CKPT_FIXED, size - SGD__CKPT_FIXED, &got);
    if (rc < 0) {
        got += SGD__CKPT_FIXED;
        goto read_error;
    }
    P.b = buf;
    P.n = size;
    st = open_parsed(out, &P, &a, raw, true);
    if (st == SGD_OK)
        raw = NULL; /* the reader owns it */
    goto done;

read_error:
    if (rc == -ENODATA)
        st = sgd__err(SGD_EIO, "%s: %s: the file shrank while being read (%llu of %llu bytes)", fn, path,
                      (unsigned long long)got, (unsigned long long)size);
    else
        st = sgd__err(SGD_EIO, "%s: %s: read failed: %s", fn, path, strerror(-rc));
done:
    sgd__free(&a, raw);
    (void)io->close(fd, io->user); /* read-only: everything needed was read or the call fails anyway */
    return st;
}

sgd_status sgd_ckpt_reader_open(sgd_ckpt_reader **out, const char *path, const sgd_allocator *alloc)
{
    return sgd__ckpt_open_io(out, path, alloc, sgd__io_posix());
}

void sgd_ckpt_reader_free(sgd_ckpt_reader *r)
{
    if (r == NULL)
        return;
    sgd_allocator a = r->alloc;
    sgd__free(&a, r->owned);
    sgd__free(&a, r->meta);
    sgd__free(&a, r);
}

/* ------------------------------------------------------------- queries */

sgd_status sgd_ckpt_reader_version(const sgd_ckpt_reader *r, uint32_t *major, uint32_t *minor)
{
    if (r == NULL)
        return sgd__err(SGD_EINVAL, "sgd_ckpt_reader_version: reader is NULL");
    if (major != NULL)
        *major = r->major;
    if (minor != NULL)
        *minor = r->minor;
    return SGD_OK;
}

size_t sgd_ckpt_reader_section_count(const sgd_ckpt_reader *r)
{
    return r ? r->nsec : 0;
}

uint64_t sgd_ckpt_reader_file_size(const sgd_ckpt_reader *r)
{
    return r ? r->size : 0;
}

sgd_status sgd_ckpt_reader_section_info(const sgd_ckpt_reader *r, size_t index, sgd_ckpt_section_info *info)
{
    static const char fn[] = "sgd_ckpt_reader_section_info";
    if (r == NULL || info == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, r == NULL ? "reader" : "info");
    sgd_status st = sgd__struct_check(info, SGD__FIRST(sgd_ckpt_section_info), fn, "info");
    if (st != SGD_OK)
        return st;
    if (index >= r->nsec)
        return sgd__err(SGD_ERANGE, "%s: index %zu: the checkpoint has %u sections", fn, index, r->nsec);
    const rsec *s = &r->secs[index];
    sgd_ckpt_section_info v = {.struct_size = (uint32_t)sizeof v, .flags = s->flags, .name = r->names + s->name,
                               .tensor_count = s->count, .offset = s->offset, .size = s->size, .crc32c = s->crc};
    return SGD__FILL(info, &v, sgd_ckpt_section_info, fn, "info");
}

static bool find_sec(const sgd_ckpt_reader *r, const char *name, uint32_t *out)
{
    size_t lo = 0, hi = r->nsec;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t i = r->sec_sorted[mid];
        int c = strcmp(name, r->names + r->secs[i].name);
        if (c == 0) {
            *out = i;
            return true;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

sgd_status sgd_ckpt_reader_find_section(const sgd_ckpt_reader *r, const char *name, size_t *index)
{
    static const char fn[] = "sgd_ckpt_reader_find_section";
    if (index != NULL)
        *index = 0;
    if (r == NULL || name == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, r == NULL ? "reader" : "name");
    uint32_t s;
    if (!find_sec(r, name, &s))
        return sgd__err(SGD_ENOTFOUND, "%s: the checkpoint has no section '%.255s'", fn, name);
    if (index != NULL)
        *index = s;
    return SGD_OK;
}

static sgd_status fill_tensor(const sgd_ckpt_reader *r, uint32_t i, sgd_ckpt_tensor_info *info, const char *fn)
{
    const rten *t = &r->tens[i];
    sgd_ckpt_tensor_info v = {.struct_size = (uint32_t)sizeof v, .dtype = t->dtype, .name = r->names + t->name,
                              .section = r->names + r->secs[t->section].name, .rank = t->rank, .count = 1,
                              .nbytes = t->nbytes, .offset = t->offset};
    for (uint32_t d = 0; d < t->rank; d++) {
        v.dims[d] = (int64_t)r->dims[t->dims + d];
        v.count *= r->dims[t->dims + d]; /* validated: no overflow */
    }
    return SGD__FILL(info, &v, sgd_ckpt_tensor_info, fn, "info");
}

sgd_status sgd_ckpt_reader_tensor_info(const sgd_ckpt_reader *r, size_t section, size_t index,
                                       sgd_ckpt_tensor_info *info)
{
    static const char fn[] = "sgd_ckpt_reader_tensor_info";
    if (r == NULL || info == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, r == NULL ? "reader" : "info");
    sgd_status st = sgd__struct_check(info, SGD__FIRST(sgd_ckpt_tensor_info), fn, "info");
    if (st != SGD_OK)
        return st;
    if (section >= r->nsec)
        return sgd__err(SGD_ERANGE, "%s: section index %zu: the checkpoint has %u sections", fn, section, r->nsec);
    const rsec *s = &r->secs[section];
    if (index >= s->count)
        return sgd__err(SGD_ERANGE, "%s: tensor index %zu: section '%s' has %u tensors", fn, index,
                        r->names + s->name, s->count);
    return fill_tensor(r, s->first + (uint32_t)index, info, fn);
}

/* Looks up (section, name); on failure sets the message (naming `fn`). */
static sgd_status lookup(const sgd_ckpt_reader *r, const char *section, const char *name, const char *fn,
                         uint32_t *out)
{
    if (r == NULL || section == NULL || name == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, r == NULL ? "reader" : section == NULL ? "section" : "name");
    uint32_t s;
    if (!find_sec(r, section, &s))
        return sgd__err(SGD_ENOTFOUND, "%s: the checkpoint has no section '%.255s' (looking for tensor '%.255s')",
                        fn, section, name);
    const rsec *sec = &r->secs[s];
    const uint32_t *v = r->ten_sorted + sec->first;
    size_t lo = 0, hi = sec->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, r->names + r->tens[v[mid]].name);
        if (c == 0) {
            *out = v[mid];
            return SGD_OK;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return sgd__err(SGD_ENOTFOUND, "%s: section '%.255s' has no tensor '%.255s'", fn, section, name);
}

sgd_status sgd_ckpt_reader_find_tensor(const sgd_ckpt_reader *r, const char *section, const char *name,
                                       sgd_ckpt_tensor_info *info)
{
    static const char fn[] = "sgd_ckpt_reader_find_tensor";
    if (info != NULL) {
        sgd_status st = sgd__struct_check(info, SGD__FIRST(sgd_ckpt_tensor_info), fn, "info");
        if (st != SGD_OK)
            return st;
    }
    uint32_t i;
    sgd_status st = lookup(r, section, name, fn, &i);
    if (st == SGD_OK && info != NULL)
        st = fill_tensor(r, i, info, fn);
    return st;
}

static void format_shape(char *buf, size_t cap, uint32_t rank, const int64_t *dims)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (uint32_t d = 0; d < rank && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, d ? ",%lld" : "%lld", (long long)dims[d]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
}

static sgd_status check(const sgd_ckpt_reader *r, const char *section, const char *name, int dtype, uint32_t rank,
                        const int64_t *dims, const char *fn, uint32_t *out)
{
    sgd_status st = lookup(r, section, name, fn, out);
    if (st != SGD_OK)
        return st;
    if (sgd_ckpt_dtype_size(dtype) == 0)
        return sgd__err(SGD_EINVAL, "%s: dtype %d is not an sgd_ckpt_dtype", fn, dtype);
    if (rank > SGD_CKPT_MAX_RANK)
        return sgd__err(SGD_EINVAL, "%s: rank %u is above the maximum %d", fn, rank, SGD_CKPT_MAX_RANK);
    if (rank > 0 && dims == NULL)
        return sgd__err(SGD_EINVAL, "%s: dims is NULL with rank %u", fn, rank);
    const rten *t = &r->tens[*out];
    if (t->dtype != dtype)
        return sgd__err(SGD_ESHAPE, "%s: section '%s': tensor '%s': dtype %s in file, expected %s", fn, section,
                        name, t->dtype <= SGD_CKPT_U64 ? sgd_ckpt_dtype_name(t->dtype) : "unknown (newer format)",
                        sgd_ckpt_dtype_name(dtype));
    bool same = t->rank == rank;
    for (uint32_t d = 0; same && d < rank; d++)
        same = dims[d] >= 0 && (uint64_t)dims[d] == r->dims[t->dims + d];
    if (!same) {
        int64_t fd[SGD_CKPT_MAX_RANK];
        for (uint32_t d = 0; d < t->rank; d++)
            fd[d] = (int64_t)r->dims[t->dims + d];
        char a[SGD_CKPT_MAX_RANK * 21 + 3], b[SGD_CKPT_MAX_RANK * 21 + 3];
        format_shape(a, sizeof a, t->rank, fd);
        format_shape(b, sizeof b, rank, dims);
        return sgd__err(SGD_ESHAPE, "%s: section '%s': tensor '%s': shape %s in file, expected %s", fn, section,
                        name, a, b);
    }
    return SGD_OK;
}

sgd_status sgd_ckpt_reader_check_tensor(const sgd_ckpt_reader *r, const char *section, const char *name, int dtype,
                                        uint32_t rank, const int64_t *dims)
{
    uint32_t i;
    return check(r, section, name, dtype, rank, dims, "sgd_ckpt_reader_check_tensor", &i);
}

static sgd_status read_tensor(const sgd_ckpt_reader *r, const char *section, const char *name, int dtype,
                              uint32_t rank, const int64_t *dims, void *dst, size_t dst_size, const char *fn)
{
    uint32_t i;
    sgd_status st = check(r, section, name, dtype, rank, dims, fn, &i);
    if (st != SGD_OK)
        return st;
    const rten *t = &r->tens[i];
    if ((uint64_t)dst_size < t->nbytes)
        return sgd__err(SGD_ESHAPE, "%s: section '%s': tensor '%s': the destination has %zu bytes, the tensor %llu",
                        fn, section, name, dst_size, (unsigned long long)t->nbytes);
    if (t->nbytes == 0)
        return SGD_OK;
    if (dst == NULL)
        return sgd__err(SGD_EINVAL, "%s: dst is NULL", fn);
    size_t esize = sgd_ckpt_dtype_size(t->dtype);
    sgd__ckpt_copy_le(dst, r->data + t->offset, (size_t)(t->nbytes / esize), esize);
    return SGD_OK;
}

sgd_status sgd_ckpt_reader_read_tensor(const sgd_ckpt_reader *r, const char *section, const char *name, int dtype,
                                       uint32_t rank, const int64_t *dims, void *dst, size_t dst_size)
{
    return read_tensor(r, section, name, dtype, rank, dims, dst, dst_size, "sgd_ckpt_reader_read_tensor");
}

sgd_status sgd_ckpt_reader_read_i64(const sgd_ckpt_reader *r, const char *section, const char *name,
                                    int64_t *value)
{
    if (value == NULL)
        return sgd__err(SGD_EINVAL, "sgd_ckpt_reader_read_i64: value is NULL");
    return read_tensor(r, section, name, SGD_CKPT_I64, 0, NULL, value, sizeof *value, "sgd_ckpt_reader_read_i64");
}

sgd_status sgd_ckpt_reader_read_f64(const sgd_ckpt_reader *r, const char *section, const char *name,
                                    double *value)
{
    if (value == NULL)
        return sgd__err(SGD_EINVAL, "sgd_ckpt_reader_read_f64: value is NULL");
    return read_tensor(r, section, name, SGD_CKPT_F64, 0, NULL, value, sizeof *value, "sgd_ckpt_reader_read_f64");
}

sgd_status sgd_ckpt_reader_tensor_data(const sgd_ckpt_reader *r, const char *section, const char *name,
                                       const void **data, uint64_t *nbytes)
{
    static const char fn[] = "sgd_ckpt_reader_tensor_data";
    if (data != NULL)
        *data = NULL;
    if (nbytes != NULL)
        *nbytes = 0;
    if (data == NULL)
        return sgd__err(SGD_EINVAL, "%s: data is NULL", fn);
    uint32_t i;
    sgd_status st = lookup(r, section, name, fn, &i);
    if (st != SGD_OK)
        return st;
    *data = r->data + r->tens[i].offset;
    if (nbytes != NULL)
        *nbytes = r->tens[i].nbytes;
    return SGD_OK;
}

sgd_status sgd_ckpt_reader_check_sections(const sgd_ckpt_reader *r, const char *const *known, size_t n)
{
    static const char fn[] = "sgd_ckpt_reader_check_sections";
    if (r == NULL || (known == NULL && n > 0))
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, r == NULL ? "reader" : "known");
    for (size_t k = 0; k < n; k++)
        if (known[k] == NULL)
            return sgd__err(SGD_EINVAL, "%s: known[%zu] is NULL", fn, k);
    for (uint32_t s = 0; s < r->nsec; s++) {
        if (!(r->secs[s].flags & SGD_CKPT_SECTION_REQUIRED))
            continue; /* optional: skipped if unknown */
        const char *name = r->names + r->secs[s].name;
        bool found = false;
        for (size_t k = 0; k < n && !found; k++)
            found = strcmp(known[k], name) == 0;
        if (!found)
            return sgd__err(SGD_EVERSION, "%s: the checkpoint has a required section '%s' that this program does "
                            "not know (written by a newer version, format %u.%u?)", fn, name, r->major, r->minor);
    }
    return SGD_OK;
}

const sgd_allocator *sgd__ckpt_reader_alloc(const sgd_ckpt_reader *r)
{
    return &r->alloc;
}
