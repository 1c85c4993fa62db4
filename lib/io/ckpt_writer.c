/*
 * The checkpoint writer: collects sections of tensors (borrowed or copied),
 * lays them out (docs/checkpoint-format.md), and writes them to memory or,
 * crash-safely, to a file.
 * SPDX-License-Identifier: MIT
 */
#include "io/ckpt_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct wsec {
    char *name;
    uint16_t name_len;
    uint32_t flags;
    uint32_t first; /* index of its first tensor in w->tens */
    uint32_t count;
} wsec;

typedef struct wten {
    char *name;
    uint16_t name_len;
    uint8_t dtype;
    uint8_t rank;
    uint32_t section;
    int64_t dims[SGD_CKPT_MAX_RANK];
    uint64_t count;  /* elements */
    uint64_t nbytes; /* count * dtype size */
    const void *data; /* borrowed, or == owned */
    void *owned;      /* a copy the writer made, or NULL */
    bool is_scalar;   /* data lives in `scalar` (the array may move, so no pointer to it) */
    unsigned char scalar[8];
} wten;

struct sgd_ckpt_writer {
    sgd_allocator alloc;
    wsec *secs;
    size_t nsec, cap_sec;
    wten *tens;
    size_t nten, cap_ten;
    uint32_t *slots; /* open addressing over (section, tensor name): tensor index + 1, 0 = empty */
    size_t nslots;   /* a power of two, >= 2 * nten, or 0 */
    uint64_t header; /* bytes of the fixed header and the directory so far */
};

enum { ADD_BORROW, ADD_COPY, ADD_SCALAR };

/* ------------------------------------------------------------- lifetime */

sgd_status sgd_ckpt_writer_new(sgd_ckpt_writer **out, const sgd_allocator *alloc)
{
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "sgd_ckpt_writer_new: out is NULL");
    *out = NULL;
    sgd_allocator a;
    sgd_status st = sgd__allocator_init(&a, alloc, "sgd_ckpt_writer_new");
    if (st != SGD_OK)
        return st;
    sgd_ckpt_writer *w = sgd__calloc(&a, 1, sizeof *w);
    if (w == NULL)
        return sgd__err(SGD_ENOMEM, "sgd_ckpt_writer_new: out of memory (%zu bytes)", sizeof *w);
    w->alloc = a;
    w->header = SGD__CKPT_FIXED;
    *out = w;
    return SGD_OK;
}

void sgd_ckpt_writer_free(sgd_ckpt_writer *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->nsec; i++)
        sgd__free(&w->alloc, w->secs[i].name);
    for (size_t i = 0; i < w->nten; i++) {
        sgd__free(&w->alloc, w->tens[i].name);
        sgd__free(&w->alloc, w->tens[i].owned);
    }
    sgd__free(&w->alloc, w->secs);
    sgd__free(&w->alloc, w->tens);
    sgd__free(&w->alloc, w->slots);
    sgd_allocator a = w->alloc;
    sgd__free(&a, w);
}

/* --------------------------------------------------------------- names */

static uint64_t name_hash(uint32_t section, const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ section; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static size_t slot_find(const sgd_ckpt_writer *w, uint32_t section, const char *name, size_t n, bool *found)
{
    size_t mask = w->nslots - 1;
    size_t i = (size_t)name_hash(section, name, n) & mask;
    for (;;) {
        uint32_t v = w->slots[i];
        if (v == 0) {
            *found = false;
            return i;
        }
        const wten *t = &w->tens[v - 1];
        if (t->section == section && t->name_len == n && memcmp(t->name, name, n) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

/* Makes room in the table for one more tensor (capacity only: the set is unchanged). */
static sgd_status slots_reserve(sgd_ckpt_writer *w, const char *fn)
{
    if (w->nslots >= 2 * (w->nten + 1))
        return SGD_OK;
    size_t n = w->nslots ? w->nslots * 2 : 64;
    uint32_t *s = sgd__calloc(&w->alloc, n, sizeof *s);
    if (s == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory growing the name table to %zu slots", fn, n);
    uint32_t *old = w->slots;
    w->slots = s;
    w->nslots = n;
    for (size_t k = 0; k < w->nten; k++) {
        bool found;
        size_t i = slot_find(w, w->tens[k].section, w->tens[k].name, w->tens[k].name_len, &found);
        w->slots[i] = (uint32_t)k + 1;
    }
    sgd__free(&w->alloc, old);
    return SGD_OK;
}

/* open() through the hook, retried on EINTR (as every interruptible call is). */
static int io_open(const sgd__io *io, const char *path, int how)
{
    int fd;
    do
        fd = io->open(path, how, io->user);
    while (fd == -EINTR);
    return fd;
}

static sgd_status check_name(const char *name, const char *fn, const char *what, size_t *len)
{
    size_t n = strnlen(name, SGD_CKPT_MAX_NAME + 1);
    if (n == 0)
        return sgd__err(SGD_EINVAL, "%s: %s name is empty", fn, what);
    if (n > SGD_CKPT_MAX_NAME)
        return sgd__err(SGD_EINVAL, "%s: %s name '%.40s...' is longer than %d bytes", fn, what, name,
                        SGD_CKPT_MAX_NAME);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x21 || c > 0x7E)
            return sgd__err(SGD_EINVAL,
                            "%s: %s name '%s': byte %zu is 0x%02x; names are printable ASCII without spaces", fn,
                            what, c >= 0x20 && c < 0x7F ? name : "(not printable)", i, c);
    }
    *len = n;
    return SGD_OK;
}

static char *dup_name(const sgd_allocator *a, const char *s, size_t n)
{
    char *d = sgd__malloc(a, n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* ------------------------------------------------------------- building */

sgd_status sgd_ckpt_writer_begin_section(sgd_ckpt_writer *w, const char *name, uint32_t flags)
{
    static const char fn[] = "sgd_ckpt_writer_begin_section";
    if (w == NULL || name == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, w == NULL ? "writer" : "name");
    size_t n;
    sgd_status st = check_name(name, fn, "section", &n);
    if (st != SGD_OK)
        return st;
    if (flags & ~(uint32_t)SGD_CKPT_SECTION_REQUIRED)
        return sgd__err(SGD_EINVAL, "%s: section '%s': flags 0x%x: only SGD_CKPT_SECTION_REQUIRED (0x1) is defined",
                        fn, name, flags);
    for (size_t i = 0; i < w->nsec; i++)
        if (w->secs[i].name_len == n && memcmp(w->secs[i].name, name, n) == 0)
            return sgd__err(SGD_EINVAL, "%s: section '%s' already exists", fn, name);
    if (w->nsec >= SGD_CKPT_MAX_SECTIONS)
        return sgd__err(SGD_EOVERFLOW, "%s: section '%s': a checkpoint holds at most %d sections", fn, name,
                        SGD_CKPT_MAX_SECTIONS);
    uint64_t rec = 2 + n + SGD__CKPT_SECTION_TAIL;
    if (w->header + rec > SGD_CKPT_MAX_HEADER)
        return sgd__err(SGD_EOVERFLOW, "%s: section '%s': the header would exceed %u bytes", fn, name,
                        SGD_CKPT_MAX_HEADER);
    if (w->nsec == w->cap_sec) {
        size_t cap = w->cap_sec ? w->cap_sec * 2 : 8;
        wsec *s = sgd__realloc(&w->alloc, w->secs, cap * sizeof *s);
        if (s == NULL)
            return sgd__err(SGD_ENOMEM, "%s: out of memory for %zu sections", fn, cap);
        w->secs = s;
        w->cap_sec = cap;
    }
    char *copy = dup_name(&w->alloc, name, n);
    if (copy == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory copying the name '%s'", fn, name);
    w->secs[w->nsec] = (wsec){.name = copy, .name_len = (uint16_t)n, .flags = flags, .first = (uint32_t)w->nten};
    w->nsec++;
    w->header += rec;
    return SGD_OK;
}

static sgd_status add(sgd_ckpt_writer *w, const char *fn, const char *name, int dtype, uint32_t rank,
                      const int64_t *dims, const void *data, int mode)
{
    if (w == NULL || name == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, w == NULL ? "writer" : "name");
    size_t n;
    sgd_status st = check_name(name, fn, "tensor", &n);
    if (st != SGD_OK)
        return st;
    if (w->nsec == 0)
        return sgd__err(SGD_ESTATE, "%s: tensor '%s': no section begun (call sgd_ckpt_writer_begin_section first)",
                        fn, name);
    wsec *sec = &w->secs[w->nsec - 1];
    size_t esize = sgd_ckpt_dtype_size(dtype);
    if (esize == 0)
        return sgd__err(SGD_EINVAL, "%s: section '%s': tensor '%s': dtype %d is not an sgd_ckpt_dtype", fn,
                        sec->name, name, dtype);
    if (rank > SGD_CKPT_MAX_RANK)
        return sgd__err(SGD_EINVAL, "%s: section '%s': tensor '%s': rank %u is above the maximum %d", fn,
                        sec->name, name, rank, SGD_CKPT_MAX_RANK);
    if (rank > 0 && dims == NULL)
        return sgd__err(SGD_EINVAL, "%s: section '%s': tensor '%s': dims is NULL with rank %u", fn, sec->name,
                        name, rank);
    uint64_t count = 1;
    for (uint32_t i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return sgd__err(SGD_EINVAL, "%s: section '%s': tensor '%s': dims[%u] = %lld is negative", fn, sec->name,
                            name, i, (long long)dims[i]);
        if (__builtin_mul_overflow(count, (uint64_t)dims[i], &count))
            return sgd__err(SGD_EOVERFLOW, "%s: section '%s': tensor '%s': the element count overflows", fn,
                            sec->name, name);
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(count, (uint64_t)esize, &nbytes) || nbytes > (uint64_t)INT64_MAX ||
        nbytes > (uint64_t)SIZE_MAX)
        return sgd__err(SGD_EOVERFLOW, "%s: section '%s': tensor '%s': %llu elements of %zu bytes overflow", fn,
                        sec->name, name, (unsigned long long)count, esize);
    if (nbytes > 0 && data == NULL)
        return sgd__err(SGD_EINVAL, "%s: section '%s': tensor '%s': data is NULL for %llu elements", fn,
                        sec->name, name, (unsigned long long)count);
    if (w->nten >= SGD_CKPT_MAX_TENSORS)
        return sgd__err(SGD_EOVERFLOW, "%s: section '%s': tensor '%s': a checkpoint holds at most %d tensors", fn,
                        sec->name, name, SGD_CKPT_MAX_TENSORS);
    uint64_t rec = 2 + n + SGD__CKPT_TENSOR_TAIL + 8u * rank;
    if (w->header + rec > SGD_CKPT_MAX_HEADER)
        return sgd__err(SGD_EOVERFLOW, "%s: section '%s': tensor '%s': the header would exceed %u bytes", fn,
                        sec->name, name, SGD_CKPT_MAX_HEADER);
    uint32_t sidx = (uint32_t)(w->nsec - 1);

    /* Capacity first (these change nothing visible), then the new pieces. */
    if ((st = slots_reserve(w, fn)) != SGD_OK)
        return st;
    bool found;
    size_t slot = slot_find(w, sidx, name, n, &found);
    if (found)
        return sgd__err(SGD_EINVAL, "%s: section '%s': tensor '%s' already exists", fn, sec->name, name);
    if (w->nten == w->cap_ten) {
        size_t cap = w->cap_ten ? w->cap_ten * 2 : 16;
        wten *t = sgd__realloc(&w->alloc, w->tens, cap * sizeof *t);
        if (t == NULL)
            return sgd__err(SGD_ENOMEM, "%s: out of memory for %zu tensors", fn, cap);
        w->tens = t;
        w->cap_ten = cap;
    }
    char *copy = dup_name(&w->alloc, name, n);
    if (copy == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory copying the name '%s'", fn, name);
    wten t = {.name = copy, .name_len = (uint16_t)n, .dtype = (uint8_t)dtype, .rank = (uint8_t)rank,
              .section = sidx, .count = count, .nbytes = nbytes, .data = data};
    for (uint32_t i = 0; i < rank; i++)
        t.dims[i] = dims[i];
    if (mode == ADD_SCALAR) {
        memcpy(t.scalar, data, esize);
        t.is_scalar = true;
        t.data = NULL;
    } else if (mode == ADD_COPY && nbytes > 0) {
        t.owned = sgd__malloc(&w->alloc, (size_t)nbytes);
        if (t.owned == NULL) {
            sgd__free(&w->alloc, copy);
            return sgd__err(SGD_ENOMEM, "%s: section '%s': tensor '%s': out of memory copying %llu bytes", fn,
                            sec->name, name, (unsigned long long)nbytes);
        }
        memcpy(t.owned, data, (size_t)nbytes);
        t.data = t.owned;
    }
    w->tens[w->nten] = t;
    w->slots[slot] = (uint32_t)w->nten + 1;
    w->nten++;
    sec->count++;
    w->header += rec;
    return SGD_OK;
}

sgd_status sgd_ckpt_writer_add_tensor(sgd_ckpt_writer *w, const char *name, int dtype, uint32_t rank,
                                      const int64_t *dims, const void *data)
{
    return add(w, "sgd_ckpt_writer_add_tensor", name, dtype, rank, dims, data, ADD_BORROW);
}

sgd_status sgd_ckpt_writer_add_tensor_copy(sgd_ckpt_writer *w, const char *name, int dtype, uint32_t rank,
                                           const int64_t *dims, const void *data)
{
    return add(w, "sgd_ckpt_writer_add_tensor_copy", name, dtype, rank, dims, data, ADD_COPY);
}

sgd_status sgd_ckpt_writer_add_i64(sgd_ckpt_writer *w, const char *name, int64_t value)
{
    return add(w, "sgd_ckpt_writer_add_i64", name, SGD_CKPT_I64, 0, NULL, &value, ADD_SCALAR);
}

sgd_status sgd_ckpt_writer_add_f64(sgd_ckpt_writer *w, const char *name, double value)
{
    return add(w, "sgd_ckpt_writer_add_f64", name, SGD_CKPT_F64, 0, NULL, &value, ADD_SCALAR);
}

/* --------------------------------------------------------------- layout */

static inline bool align_up(uint64_t x, uint64_t *out)
{
    return !__builtin_add_overflow(x, (uint64_t)SGD_CKPT_ALIGN - 1, out) && ((*out &= ~(uint64_t)(SGD_CKPT_ALIGN - 1)), true);
}

/*
 * Walks the layout: section s starts at the first multiple of 64 at or after
 * the end of the previous one (the header for the first), each tensor at the
 * first multiple of 64 at or after the end of the previous tensor of its
 * section; a section's data ends where its last tensor ends (an empty section
 * has size 0). The file ends where the last section ends. Checks every sum
 * for overflow; emit() repeats the same walk without the checks.
 */
static sgd_status layout(const sgd_ckpt_writer *w, const char *fn, uint64_t *file_size)
{
    uint64_t cur = w->header;
    for (size_t s = 0; s < w->nsec; s++) {
        uint64_t off, t_cur;
        if (!align_up(cur, &off))
            goto overflow;
        t_cur = off;
        const wsec *sec = &w->secs[s];
        for (uint32_t k = 0; k < sec->count; k++) {
            const wten *t = &w->tens[sec->first + k];
            uint64_t toff;
            if (!align_up(t_cur, &toff) || __builtin_add_overflow(toff, t->nbytes, &t_cur))
                goto overflow;
        }
        cur = t_cur;
    }
    if (cur > (uint64_t)INT64_MAX)
        goto overflow;
    *file_size = cur;
    return SGD_OK;
overflow:
    return sgd__err(SGD_EOVERFLOW, "%s: the checkpoint would be larger than 2^63 bytes", fn);
}

sgd_status sgd_ckpt_writer_size(const sgd_ckpt_writer *w, uint64_t *size)
{
    if (size != NULL)
        *size = 0;
    if (w == NULL || size == NULL)
        return sgd__err(SGD_EINVAL, "sgd_ckpt_writer_size: %s is NULL", w == NULL ? "writer" : "size");
    return layout(w, "sgd_ckpt_writer_size", size);
}

/* ----------------------------------------------------------------- sinks */

typedef struct sink {
    unsigned char *mem; /* memory sink: the caller's buffer */
    const sgd__io *io;  /* file sink */
    int fd;
    const char *path;
    const char *fn;
} sink;

static sgd_status sink_write(sink *s, uint64_t off, const void *p, size_t n)
{
    if (s->mem != NULL) {
        if (n > 0 && s->mem + off != (const unsigned char *)p) /* the header is built in place */
            memcpy(s->mem + off, p, n);
        return SGD_OK;
    }
    const unsigned char *b = p;
    while (n > 0) {
        int64_t r = s->io->pwrite(s->fd, b, n, off, s->io->user);
        if (r == -EINTR)
            continue;
        if (r < 0)
            return sgd__err(SGD_EIO, "%s: %s: write of %zu bytes at offset %llu: %s", s->fn, s->path, n,
                            (unsigned long long)off, strerror((int)-r));
        if (r == 0 || (uint64_t)r > n)
            return sgd__err(SGD_EIO, "%s: %s: write at offset %llu wrote %lld of %zu bytes", s->fn, s->path,
                            (unsigned long long)off, (long long)r, n);
        b += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return SGD_OK;
}

static const unsigned char zeros[SGD_CKPT_ALIGN];

/* Zero bytes [from, to), to - from < SGD_CKPT_ALIGN, folded into *crc if crc != NULL. */
static sgd_status write_pad(sink *s, uint64_t from, uint64_t to, uint32_t *crc)
{
    if (to == from)
        return SGD_OK;
    if (crc != NULL)
        *crc = sgd__crc32c(*crc, zeros, (size_t)(to - from));
    return sink_write(s, from, zeros, (size_t)(to - from));
}

#define WRITE_CHUNK ((size_t)1 << 20)

/*
 * Writes a tensor's bytes at `off`, little-endian, chunk by chunk, folding
 * each chunk into the section's CRC just before writing it: the checksum is
 * always that of the bytes written.
 */
static sgd_status write_tensor(sink *s, const wten *t, uint64_t off, uint32_t *crc)
{
    const unsigned char *p = t->is_scalar ? t->scalar : t->data;
    size_t left = (size_t)t->nbytes;
#if SGD__BIG_ENDIAN
    size_t esize = sgd_ckpt_dtype_size(t->dtype);
    unsigned char buf[4096];
    while (left > 0) {
        size_t c = left < sizeof buf ? left : sizeof buf;
        sgd__ckpt_copy_le(buf, p, c / esize, esize);
        *crc = sgd__crc32c(*crc, buf, c);
        sgd_status st = sink_write(s, off, buf, c);
        if (st != SGD_OK)
            return st;
        p += c, off += c, left -= c;
    }
#else
    while (left > 0) {
        size_t c = left < WRITE_CHUNK ? left : WRITE_CHUNK;
        *crc = sgd__crc32c(*crc, p, c);
        sgd_status st = sink_write(s, off, p, c);
        if (st != SGD_OK)
            return st;
        p += c, off += c, left -= c;
    }
#endif
    return SGD_OK;
}

/*
 * Writes everything: the sections' data from the end of the header on (CRCs
 * computed on the way into crcs[]), then the header at offset 0, serialised
 * into `hdr` (w->header bytes).
 */
static sgd_status emit(const sgd_ckpt_writer *w, sink *s, unsigned char *hdr, uint64_t file_size)
{
    uint32_t crcs[SGD_CKPT_MAX_SECTIONS];
    uint64_t cur = w->header;
    sgd_status st;
    for (size_t si = 0; si < w->nsec; si++) {
        const wsec *sec = &w->secs[si];
        uint64_t off = (cur + SGD_CKPT_ALIGN - 1) & ~(uint64_t)(SGD_CKPT_ALIGN - 1); /* layout() checked */
        if ((st = write_pad(s, cur, off, NULL)) != SGD_OK)
            return st;
        uint32_t crc = 0;
        uint64_t t_cur = off;
        for (uint32_t k = 0; k < sec->count; k++) {
            const wten *t = &w->tens[sec->first + k];
            uint64_t toff = (t_cur + SGD_CKPT_ALIGN - 1) & ~(uint64_t)(SGD_CKPT_ALIGN - 1);
            if ((st = write_pad(s, t_cur, toff, &crc)) != SGD_OK)
                return st;
            if ((st = write_tensor(s, t, toff, &crc)) != SGD_OK)
                return st;
            t_cur = toff + t->nbytes;
        }
        crcs[si] = crc;
        cur = t_cur;
    }
    if (cur != file_size)
        return sgd__err(SGD_EINTERNAL, "%s: layout mismatch (%llu != %llu)", s->fn, (unsigned long long)cur,
                        (unsigned long long)file_size);

    unsigned char *p = hdr;
    memcpy(p, SGD__CKPT_SIGNATURE, SGD__CKPT_SIG_LEN);
    sgd__put_le16(p + 8, SGD_CKPT_FORMAT_MAJOR);
    sgd__put_le16(p + 10, SGD_CKPT_FORMAT_MINOR);
    sgd__put_le32(p + 12, (uint32_t)w->header);
    sgd__put_le64(p + 16, file_size);
    sgd__put_le32(p + 24, (uint32_t)w->nsec);
    p += SGD__CKPT_FIXED;
    cur = w->header;
    for (size_t si = 0; si < w->nsec; si++) {
        const wsec *sec = &w->secs[si];
        uint64_t off = (cur + SGD_CKPT_ALIGN - 1) & ~(uint64_t)(SGD_CKPT_ALIGN - 1), end = off;
        for (uint32_t k = 0; k < sec->count; k++)
            end = ((end + SGD_CKPT_ALIGN - 1) & ~(uint64_t)(SGD_CKPT_ALIGN - 1)) + w->tens[sec->first + k].nbytes;
        cur = end;
        sgd__put_le16(p, sec->name_len);
        memcpy(p + 2, sec->name, sec->name_len);
        p += 2 + sec->name_len;
        sgd__put_le32(p, sec->flags);
        sgd__put_le32(p + 4, sec->count);
        sgd__put_le64(p + 8, off);
        sgd__put_le64(p + 16, end - off);
        sgd__put_le32(p + 24, crcs[si]);
        p += SGD__CKPT_SECTION_TAIL;
        uint64_t t_cur = off;
        for (uint32_t k = 0; k < sec->count; k++) {
            const wten *t = &w->tens[sec->first + k];
            uint64_t toff = (t_cur + SGD_CKPT_ALIGN - 1) & ~(uint64_t)(SGD_CKPT_ALIGN - 1);
            sgd__put_le16(p, t->name_len);
            memcpy(p + 2, t->name, t->name_len);
            p += 2 + t->name_len;
            p[0] = t->dtype;
            p[1] = t->rank;
            p += 2;
            for (uint32_t d = 0; d < t->rank; d++, p += 8)
                sgd__put_le64(p, (uint64_t)t->dims[d]);
            sgd__put_le64(p, toff);
            sgd__put_le64(p + 8, t->nbytes);
            p += 16;
            t_cur = toff + t->nbytes;
        }
    }
    if ((uint64_t)(p - hdr) != w->header)
        return sgd__err(SGD_EINTERNAL, "%s: header size mismatch", s->fn);
    uint32_t hcrc = sgd__crc32c(0, hdr, 28);
    hcrc = sgd__crc32c(hcrc, hdr + SGD__CKPT_FIXED, (size_t)w->header - SGD__CKPT_FIXED);
    sgd__put_le32(hdr + 28, hcrc);
    return sink_write(s, 0, hdr, (size_t)w->header);
}

sgd_status sgd_ckpt_writer_write_memory(const sgd_ckpt_writer *w, void *buf, size_t size)
{
    static const char fn[] = "sgd_ckpt_writer_write_memory";
    if (w == NULL || buf == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, w == NULL ? "writer" : "buf");
    uint64_t need;
    sgd_status st = layout(w, fn, &need);
    if (st != SGD_OK)
        return st;
    if ((uint64_t)size < need)
        return sgd__err(SGD_EINVAL, "%s: the buffer has %zu bytes, the checkpoint needs %llu", fn, size,
                        (unsigned long long)need);
    sink s = {.mem = buf, .fn = fn};
    /* The header is serialised in place, at the start of the caller's buffer. */
    return emit(w, &s, buf, need);
}

/* ------------------------------------------------------------ file saving */

typedef struct target {
    char dir[PATH_MAX];  /* directory of the checkpoint ("." if the path has none) */
    const char *base;    /* its file name, pointing into the caller's path */
    size_t base_len;
} target;

static sgd_status split_path(target *t, const char *path, const char *fn)
{
    size_t n = strnlen(path, PATH_MAX);
    if (n == 0)
        return sgd__err(SGD_EINVAL, "%s: path is empty", fn);
    if (n >= PATH_MAX)
        return sgd__err(SGD_EINVAL, "%s: path '%.60s...' is longer than PATH_MAX (%d)", fn, path, PATH_MAX);
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        strcpy(t->dir, ".");
        t->base = path;
    } else {
        size_t d = (size_t)(slash - path);
        if (d == 0)
            d = 1; /* "/name": the root */
        memcpy(t->dir, path, d);
        t->dir[d] = '\0';
        t->base = slash + 1;
    }
    t->base_len = strlen(t->base);
    if (t->base_len == 0)
        return sgd__err(SGD_EINVAL, "%s: path '%s' names a directory, not a file", fn, path);
    if (strcmp(t->base, ".") == 0 || strcmp(t->base, "..") == 0)
        return sgd__err(SGD_EINVAL, "%s: path '%s' names a directory, not a file", fn, path);
    return SGD_OK;
}

/* dir/.base.sgdtmp-<hex> into buf (PATH_MAX bytes); false if it does not fit. */
static bool tmp_name(char *buf, const target *t, const char *hex)
{
    int n = snprintf(buf, PATH_MAX, "%s/.%s" SGD__CKPT_TMP_TAG "%s", t->dir, t->base, hex);
    return n > 0 && n < PATH_MAX;
}

typedef struct cleanup_ctx {
    const target *t;
    const sgd__io *io;
    const char *fn;
    char path[PATH_MAX];
    size_t removed;
    bool failed; /* a message was recorded for the first failure */
} cleanup_ctx;

static bool is_tmp_of(const char *name, const target *t)
{
    size_t tag = sizeof SGD__CKPT_TMP_TAG - 1;
    if (name[0] != '.' || strncmp(name + 1, t->base, t->base_len) != 0)
        return false;
    const char *p = name + 1 + t->base_len;
    if (strncmp(p, SGD__CKPT_TMP_TAG, tag) != 0)
        return false;
    p += tag;
    for (int i = 0; i < SGD__CKPT_TMP_HEX; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return p[SGD__CKPT_TMP_HEX] == '\0';
}

static void cleanup_fail(cleanup_ctx *c, int err, const char *what)
{
    if (!c->failed)
        sgd__err(SGD_EIO, "%s: stale temporary file '%s': %s: %s", c->fn, c->path, what, strerror(-err));
    c->failed = true;
}

static int cleanup_each(const char *name, void *vctx)
{
    cleanup_ctx *c = vctx;
    if (!is_tmp_of(name, c->t))
        return 0;
    if (!tmp_name(c->path, c->t, name + 1 + c->t->base_len + sizeof SGD__CKPT_TMP_TAG - 1))
        return 0;
    int fd = io_open(c->io, c->path, SGD__IO_READ);
    if (fd < 0) {
        if (fd != -ENOENT) /* gone already: another cleaner */
            cleanup_fail(c, fd, "open");
        return 0;
    }
    int r = c->io->lock(fd, c->io->user);
    if (r == 0) {
        /* Nobody holds it: its writer is gone. */
        r = c->io->unlink(c->path, c->io->user);
        if (r == 0)
            c->removed++;
        else if (r != -ENOENT)
            cleanup_fail(c, r, "unlink");
    } else if (r != -EWOULDBLOCK && r != -EAGAIN) {
        cleanup_fail(c, r, "flock");
    }
    (void)c->io->close(fd, c->io->user); /* read-only descriptor: nothing to lose */
    return 0;
}

static sgd_status cleanup(const target *t, const sgd__io *io, const char *fn, size_t *removed)
{
    cleanup_ctx c = {.t = t, .io = io, .fn = fn};
    int r = io->list(t->dir, cleanup_each, &c, io->user);
    *removed = c.removed;
    if (r < 0)
        return sgd__err(SGD_EIO, "%s: cannot list directory '%s' for stale temporary files: %s", fn, t->dir,
                        strerror(-r));
    return c.failed ? SGD_EIO : SGD_OK;
}

sgd_status sgd__ckpt_cleanup_io(const char *path, size_t *removed, const sgd__io *io)
{
    static const char fn[] = "sgd_ckpt_cleanup_stale";
    if (removed != NULL)
        *removed = 0;
    if (path == NULL)
        return sgd__err(SGD_EINVAL, "%s: path is NULL", fn);
    char real[PATH_MAX];
    bool exists;
    sgd_status st = sgd__output_target(io, fn, path, real, &exists);
    if (st != SGD_OK)
        return st;
    target t;
    if ((st = split_path(&t, real, fn)) != SGD_OK)
        return st;
    size_t n;
    st = cleanup(&t, io, fn, &n);
    if (removed != NULL)
        *removed = n;
    return st;
}

sgd_status sgd_ckpt_cleanup_stale(const char *path, size_t *removed)
{
    return sgd__ckpt_cleanup_io(path, removed, sgd__io_posix());
}

sgd_status sgd_ckpt_output_target(const char *path, char *resolved, size_t resolved_size, int32_t *exists)
{
    static const char fn[] = "sgd_ckpt_output_target";
    if (path == NULL)
        return sgd__err(SGD_EINVAL, "%s: path is NULL", fn);
    if (resolved == NULL && resolved_size != 0)
        return sgd__err(SGD_EINVAL, "%s: resolved is NULL with resolved_size %zu", fn, resolved_size);
    char real[PATH_MAX];
    bool there = false;
    sgd_status st = sgd__output_target(sgd__io_posix(), fn, path, real, &there);
    if (st != SGD_OK)
        return st;
    if (resolved != NULL) {
        size_t n = strlen(real);
        if (n >= resolved_size)
            return sgd__err(SGD_EOVERFLOW, "%s: %s: the path to write is %zu bytes, resolved_size is %zu", fn, path,
                            n + 1, resolved_size);
        memcpy(resolved, real, n + 1);
    }
    if (exists != NULL)
        *exists = there ? 1 : 0;
    return SGD_OK;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

sgd_status sgd__ckpt_save_io(const sgd_ckpt_writer *w, const char *path, const sgd__io *io)
{
    static const char fn[] = "sgd_ckpt_writer_save";
    if (w == NULL || path == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, w == NULL ? "writer" : "path");
    /* Only a regular file is replaced; a symbolic link to one is followed (sgd__output_target). */
    char real[PATH_MAX];
    bool exists;
    sgd_status st = sgd__output_target(io, fn, path, real, &exists);
    if (st != SGD_OK) {
        char first[640];
        snprintf(first, sizeof first, "%s", sgd_error_last());
        return sgd__err(st, "%s; %s", first, st == SGD_EIO ? "the previous checkpoint is unchanged" : "nothing was written");
    }
    target t;
    if ((st = split_path(&t, real, fn)) != SGD_OK)
        return st;
    uint64_t file_size;
    if ((st = layout(w, fn, &file_size)) != SGD_OK)
        return st;
    unsigned char *hdr = sgd__malloc(&w->alloc, (size_t)w->header);
    if (hdr == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory for the %llu-byte header", fn,
                        (unsigned long long)w->header);

    /* Best effort: a failure to clean up must not prevent saving. */
    size_t removed;
    (void)cleanup(&t, io, fn, &removed);

    char tmp[PATH_MAX];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t seed = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    seed ^= (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)&ts ^ (uint64_t)(uintptr_t)w;
    int fd = -1;
    for (int attempt = 0; attempt < 64; attempt++) {
        char hex[SGD__CKPT_TMP_HEX + 1];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)splitmix64(&seed));
        if (!tmp_name(tmp, &t, hex)) {
            sgd__free(&w->alloc, hdr);
            return sgd__err(SGD_EINVAL, "%s: path '%s': the temporary file name would exceed PATH_MAX", fn, path);
        }
        fd = io_open(io, tmp, SGD__IO_CREATE);
        if (fd != -EEXIST)
            break;
    }
    if (fd < 0) {
        sgd__free(&w->alloc, hdr);
        return sgd__err(SGD_EIO, "%s: %s: cannot create a temporary file in '%s': %s; the previous checkpoint is "
                        "unchanged", fn, path, t.dir, strerror(-fd));
    }

    const char *step;
    int r = io->lock(fd, io->user);
    if (r < 0) {
        step = "flock";
        goto fail_tmp;
    }
    sink s = {.io = io, .fd = fd, .path = tmp, .fn = fn};
    if ((st = emit(w, &s, hdr, file_size)) != SGD_OK)
        goto fail_tmp_status;
    r = io->fsync(fd, io->user);
    if (r < 0) {
        step = "fsync (not retried)";
        goto fail_tmp;
    }
    /* What is at the path may have changed while we wrote: look again, just before replacing it. */
    uint32_t mode = 0;
    do
        r = io->stat(real, 0, &mode, io->user);
    while (r == -EINTR);
    if (r == -ENOENT) {
        r = 0;
    } else if (r < 0) {
        step = "stat of the destination before the rename";
        goto fail_tmp;
    } else if (!S_ISREG((mode_t)mode)) {
        st = sgd__err(SGD_EINVAL, "%s: %s: became %s while the checkpoint was written: only a regular file is "
                      "replaced", fn, path, sgd__file_kind(mode));
        goto fail_tmp_status;
    }
    int dfd = io_open(io, t.dir, SGD__IO_DIRECTORY);
    if (dfd < 0) {
        r = dfd;
        step = "open the directory";
        goto fail_tmp;
    }
    r = io->rename(tmp, real, io->user);
    if (r < 0) {
        (void)io->close(dfd, io->user);
        step = "rename";
        goto fail_tmp;
    }
    /* From here on the new checkpoint is in place. */
    sgd__free(&w->alloc, hdr);
    r = io->fsync(dfd, io->user);
    if (r == -EINVAL)
        r = 0; /* the file system cannot sync directories: nothing more to do */
    int r2 = io->close(dfd, io->user);
    int r3 = io->close(fd, io->user);
    if (r < 0 || r2 < 0 || r3 < 0) {
        int e = r < 0 ? r : r2 < 0 ? r2 : r3;
        return sgd__err(SGD_EIO,
                        "%s: %s: the new checkpoint is in place but may not be durable: %s of '%s' failed: %s",
                        fn, path, r < 0 ? "fsync" : "close", r < 0 || r2 < 0 ? t.dir : tmp, strerror(-e));
    }
    return SGD_OK;

fail_tmp:
    st = sgd__err(SGD_EIO, "%s: %s: %s of the temporary file '%s' failed: %s", fn, path, step, tmp, strerror(-r));
fail_tmp_status:
    sgd__free(&w->alloc, hdr);
    r = io->unlink(tmp, io->user);
    (void)io->close(fd, io->user); /* the file is unlinked, or reported below: nothing to lose */
    {
        char first[640];
        snprintf(first, sizeof first, "%s", sgd_error_last());
        if (r < 0 && r != -ENOENT)
            sgd__err(st, "%s; the previous checkpoint is unchanged; the temporary file could not be removed (%s) "
                     "and the next save will remove it", first, strerror(-r));
        else
            sgd__err(st, "%s; the previous checkpoint is unchanged", first);
    }
    return st;
}

sgd_status sgd_ckpt_writer_save(const sgd_ckpt_writer *w, const char *path)
{
    return sgd__ckpt_save_io(w, path, sgd__io_posix());
}

const sgd_allocator *sgd__ckpt_writer_alloc(const sgd_ckpt_writer *w)
{
    return &w->alloc;
}
