/*
 * The IDX reader (MNIST / Fashion-MNIST format), raw or gzip through zlib.
 * Every size is validated against the input before anything large is
 * allocated: a raw file must be exactly as long as its header says, and a
 * gzip stream cannot declare more than deflate's maximum expansion of its own
 * length. SPDX-License-Identifier: MIT
 */
#include "data/data_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

struct sgd_idx {
    sgd_allocator alloc;
    int32_t type;
    int32_t rank;
    int64_t dims[SGD_IDX_MAX_RANK];
    int64_t count;
    size_t elsize;
    void *data; /* sgd__alloc_aligned, host byte order */
};

/* Deflate expands at most 1032:1; a gzip member adds at least 18 bytes of framing. */
#define SGD__DEFLATE_MAX_RATIO 1032u

static size_t type_size(int type)
{
    switch (type) {
    case SGD_IDX_UINT8:
    case SGD_IDX_INT8: return 1;
    case SGD_IDX_INT16: return 2;
    case SGD_IDX_INT32:
    case SGD_IDX_FLOAT32: return 4;
    case SGD_IDX_FLOAT64: return 8;
    default: return 0;
    }
}

static const char *type_name(int type)
{
    switch (type) {
    case SGD_IDX_UINT8: return "uint8";
    case SGD_IDX_INT8: return "int8";
    case SGD_IDX_INT16: return "int16";
    case SGD_IDX_INT32: return "int32";
    case SGD_IDX_FLOAT32: return "float32";
    case SGD_IDX_FLOAT64: return "float64";
    default: return "unknown";
    }
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void sgd_idx_free(sgd_idx *a)
{
    if (a == NULL)
        return;
    sgd_allocator al = a->alloc;
    sgd__free_aligned(&al, a->data);
    sgd__free(&al, a);
}

/* Checks the 4-byte magic. `fn`/`what` prefix messages ("sgd_idx_read_file: 'x.gz'"). */
static sgd_status parse_magic(sgd_idx *a, const unsigned char m[4], const char *fn, const char *what)
{
    if (m[0] != 0 || m[1] != 0)
        return sgd__err(SGD_EFORMAT,
                        "%s: %s: bad magic %02x %02x %02x %02x: an IDX file starts with two zero bytes", fn, what,
                        m[0], m[1], m[2], m[3]);
    if (type_size(m[2]) == 0)
        return sgd__err(SGD_EFORMAT,
                        "%s: %s: unknown element type 0x%02x (expected 0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e)", fn,
                        what, m[2]);
    if (m[3] < 1 || m[3] > SGD_IDX_MAX_RANK)
        return sgd__err(SGD_EFORMAT, "%s: %s: %u dimensions: must be 1 to %d", fn, what, m[3], SGD_IDX_MAX_RANK);
    a->type = m[2];
    a->rank = m[3];
    a->elsize = type_size(m[2]);
    return SGD_OK;
}

/* Parses the dimensions and computes the element count and data size. */
static sgd_status parse_dims(sgd_idx *a, const unsigned char *p, size_t *data_bytes, const char *fn,
                             const char *what)
{
    size_t count = 1;
    for (int i = 0; i < a->rank; i++) {
        uint32_t dim = be32(p + 4 * i);
        if (dim == 0)
            return sgd__err(SGD_EFORMAT, "%s: %s: dimension %d is 0", fn, what, i);
        a->dims[i] = dim;
        if (!sgd__mul_size(count, dim, &count) || count > (size_t)INT64_MAX)
            return sgd__err(SGD_EOVERFLOW, "%s: %s: the product of the dimensions overflows", fn, what);
    }
    if (!sgd__mul_size(count, a->elsize, data_bytes))
        return sgd__err(SGD_EOVERFLOW, "%s: %s: %zu elements of %zu bytes overflow", fn, what, count, a->elsize);
    a->count = (int64_t)count;
    return SGD_OK;
}

/* Big-endian elements to host order, in place. */
static void to_host_order(sgd_idx *a)
{
    unsigned char *p = a->data;
    size_t n = (size_t)a->count;
    if (a->elsize == 2) {
        for (size_t i = 0; i < n; i++) {
            uint16_t v = (uint16_t)(p[2 * i] << 8 | p[2 * i + 1]);
            memcpy(p + 2 * i, &v, 2);
        }
    } else if (a->elsize == 4) {
        for (size_t i = 0; i < n; i++) {
            uint32_t v = be32(p + 4 * i);
            memcpy(p + 4 * i, &v, 4);
        }
    } else if (a->elsize == 8) {
        for (size_t i = 0; i < n; i++) {
            uint64_t v = (uint64_t)be32(p + 8 * i) << 32 | be32(p + 8 * i + 4);
            memcpy(p + 8 * i, &v, 8);
        }
    }
}

static sgd_status parse_raw(sgd_idx *a, const unsigned char *buf, size_t size, const char *fn, const char *what)
{
    if (size < 4)
        return sgd__err(SGD_EFORMAT, "%s: %s: %zu bytes: too short for an IDX header", fn, what, size);
    sgd_status st = parse_magic(a, buf, fn, what);
    if (st != SGD_OK)
        return st;
    size_t header = 4 + 4 * (size_t)a->rank;
    if (size < header)
        return sgd__err(SGD_EFORMAT, "%s: %s: truncated header: %d dimensions need %zu bytes, have %zu", fn, what,
                        a->rank, header, size);
    size_t bytes;
    if ((st = parse_dims(a, buf + 4, &bytes, fn, what)) != SGD_OK)
        return st;
    if (size - header < bytes)
        return sgd__err(SGD_EFORMAT, "%s: %s: truncated: the header declares %zu bytes of data, the file has %zu",
                        fn, what, bytes, size - header);
    if (size - header > bytes)
        return sgd__err(SGD_EFORMAT, "%s: %s: %zu unexpected bytes after the %zu bytes of data the header declares",
                        fn, what, size - header - bytes, bytes);
    if ((a->data = sgd__alloc_aligned(&a->alloc, bytes, 1)) == NULL)
        return sgd__err(SGD_ENOMEM, "%s: %s: out of memory for %zu bytes", fn, what, bytes);
    memcpy(a->data, buf + header, bytes);
    to_host_order(a);
    return SGD_OK;
}

/* zlib's allocations go through the array's allocator. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    return sgd__calloc(opaque, items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    sgd__free(opaque, p);
}

/*
 * Inflates exactly n bytes into dst. Returns SGD_OK, or an error: a short
 * stream (ended or truncated before n bytes), corrupt data, or ENOMEM.
 */
static sgd_status inflate_exact(z_stream *z, void *dst, size_t n, const char *part, const char *fn,
                                const char *what)
{
    unsigned char *p = dst;
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        z->next_out = p;
        z->avail_out = chunk;
        int zr = inflate(z, Z_NO_FLUSH);
        size_t got = chunk - z->avail_out;
        p += got;
        n -= got;
        if (zr == Z_MEM_ERROR)
            return sgd__err(SGD_ENOMEM, "%s: %s: out of memory inflating the gzip stream", fn, what);
        if (zr == Z_STREAM_END && n > 0)
            return sgd__err(SGD_EFORMAT, "%s: %s: truncated: the gzip stream ends inside the %s (%zu bytes short)",
                            fn, what, part, n);
        if (zr == Z_BUF_ERROR || (zr == Z_OK && got == 0 && z->avail_in == 0))
            return sgd__err(SGD_EFORMAT, "%s: %s: truncated gzip stream (inside the %s)", fn, what, part);
        if (zr != Z_OK && zr != Z_STREAM_END)
            return sgd__err(SGD_EFORMAT, "%s: %s: corrupt gzip stream: %s", fn, what,
                            z->msg ? z->msg : "inflate failed");
    }
    return SGD_OK;
}

static sgd_status parse_gzip(sgd_idx *a, const unsigned char *buf, size_t size, const char *fn,
                             const char *what)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    z.zalloc = z_alloc;
    z.zfree = z_free;
    z.opaque = &a->alloc;
    z.next_in = (Bytef *)(uintptr_t)buf;
    /* zlib counts input in uInt: refuse what it cannot address rather than truncate. */
    if (size > (size_t)UINT32_MAX)
        return sgd__err(SGD_EOVERFLOW, "%s: %s: a gzip stream of %zu bytes is too large", fn, what, size);
    z.avail_in = (uInt)size;
    int zr = inflateInit2(&z, 16 + MAX_WBITS); /* gzip wrapper only */
    if (zr == Z_MEM_ERROR)
        return sgd__err(SGD_ENOMEM, "%s: %s: out of memory for the gzip decoder", fn, what);
    if (zr != Z_OK)
        return sgd__err(SGD_EINTERNAL, "%s: %s: inflateInit2 failed (%d)", fn, what, zr);
    unsigned char head[4 + 4 * SGD_IDX_MAX_RANK];
    size_t bytes = 0;
    sgd_status st = inflate_exact(&z, head, 4, "IDX header", fn, what);
    if (st == SGD_OK)
        st = parse_magic(a, head, fn, what);
    if (st == SGD_OK)
        st = inflate_exact(&z, head + 4, 4 * (size_t)a->rank, "IDX header", fn, what);
    if (st == SGD_OK)
        st = parse_dims(a, head + 4, &bytes, fn, what);
    if (st == SGD_OK) {
        size_t cap;
        if (!sgd__mul_size(size, SGD__DEFLATE_MAX_RATIO, &cap))
            cap = SIZE_MAX;
        if (bytes > cap)
            st = sgd__err(SGD_EFORMAT,
                          "%s: %s: the header declares %zu bytes of data, more than a %zu-byte gzip stream can hold",
                          fn, what, bytes, size);
    }
    if (st == SGD_OK && (a->data = sgd__alloc_aligned(&a->alloc, bytes, 1)) == NULL)
        st = sgd__err(SGD_ENOMEM, "%s: %s: out of memory for %zu bytes", fn, what, bytes);
    if (st == SGD_OK)
        st = inflate_exact(&z, a->data, bytes, "data", fn, what);
    if (st == SGD_OK) {
        /* The stream must end here: no more data, then the gzip trailer (CRC, length). */
        unsigned char extra;
        z.next_out = &extra;
        z.avail_out = 1;
        zr = inflate(&z, Z_FINISH);
        if (zr == Z_MEM_ERROR)
            st = sgd__err(SGD_ENOMEM, "%s: %s: out of memory inflating the gzip stream", fn, what);
        else if (z.avail_out == 0)
            st = sgd__err(SGD_EFORMAT, "%s: %s: the gzip stream holds more data than the header declares (%zu bytes)",
                          fn, what, bytes);
        else if (zr == Z_BUF_ERROR)
            st = sgd__err(SGD_EFORMAT, "%s: %s: truncated gzip stream (its trailer is missing)", fn, what);
        else if (zr != Z_STREAM_END)
            st = sgd__err(SGD_EFORMAT, "%s: %s: corrupt gzip stream: %s", fn, what,
                          z.msg ? z.msg : "inflate failed");
        else if (z.avail_in != 0)
            st = sgd__err(SGD_EFORMAT, "%s: %s: %u unexpected bytes after the gzip stream", fn, what,
                          (unsigned)z.avail_in);
    }
    inflateEnd(&z);
    if (st == SGD_OK)
        to_host_order(a);
    return st;
}

static sgd_status read_memory(sgd_idx **out, const void *data, size_t size, const sgd_allocator *alloc,
                              const char *fn, const char *what)
{
    sgd_allocator al;
    sgd_status st = sgd__allocator_init(&al, alloc, fn);
    if (st != SGD_OK)
        return st;
    sgd_idx *a = sgd__malloc(&al, sizeof *a);
    if (a == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    memset(a, 0, sizeof *a);
    a->alloc = al;
    const unsigned char *b = data;
    if (size >= 2 && b[0] == 0x1f && b[1] == 0x8b)
        st = parse_gzip(a, b, size, fn, what);
    else
        st = parse_raw(a, b, size, fn, what);
    if (st != SGD_OK) {
        sgd_idx_free(a);
        return st;
    }
    *out = a;
    return SGD_OK;
}

sgd_status sgd_idx_read_memory(sgd_idx **out, const void *data, size_t size, const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_idx_read_memory";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (data == NULL && size > 0)
        return sgd__err(SGD_EINVAL, "%s: data is NULL", fn);
    return read_memory(out, data ? data : "", size, alloc, fn, "buffer");
}

/* Reads a whole file through the allocator (no stdio: its buffers would bypass the hook). */
static sgd_status read_file(const sgd_allocator *a, const char *path, unsigned char **out, size_t *size,
                            const char *fn)
{
    *out = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sgd__err(SGD_EIO, "%s: '%s': %s", fn, path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return sgd__err(SGD_EIO, "%s: '%s': %s", fn, path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return sgd__err(SGD_EIO, "%s: '%s': is a directory", fn, path);
    }
    size_t cap = S_ISREG(sb.st_mode) && sb.st_size > 0 ? (size_t)sb.st_size + 1 : 65536;
    if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size >= (uint64_t)SIZE_MAX) {
        close(fd);
        return sgd__err(SGD_EOVERFLOW, "%s: '%s': too large", fn, path);
    }
    unsigned char *buf = sgd__malloc(a, cap);
    if (buf == NULL) {
        close(fd);
        return sgd__err(SGD_ENOMEM, "%s: '%s': out of memory for %zu bytes", fn, path, cap);
    }
    size_t n = 0;
    for (;;) {
        if (n == cap) {
            size_t ncap;
            if (!sgd__mul_size(cap, 2, &ncap)) {
                sgd__free(a, buf);
                close(fd);
                return sgd__err(SGD_EOVERFLOW, "%s: '%s': too large", fn, path);
            }
            unsigned char *nb = sgd__realloc(a, buf, ncap);
            if (nb == NULL) {
                sgd__free(a, buf);
                close(fd);
                return sgd__err(SGD_ENOMEM, "%s: '%s': out of memory for %zu bytes", fn, path, ncap);
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            sgd__free(a, buf);
            close(fd);
            return sgd__err(SGD_EIO, "%s: '%s': %s", fn, path, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *out = buf;
    *size = n;
    return SGD_OK;
}

static sgd_status read_path(sgd_idx **out, const char *path, const sgd_allocator *alloc, const char *fn)
{
    sgd_allocator al;
    sgd_status st = sgd__allocator_init(&al, alloc, fn);
    if (st != SGD_OK)
        return st;
    unsigned char *buf;
    size_t size;
    if ((st = read_file(&al, path, &buf, &size, fn)) != SGD_OK)
        return st;
    char what[512];
    snprintf(what, sizeof what, "'%s'", path);
    st = read_memory(out, buf, size, &al, fn, what);
    sgd__free(&al, buf);
    return st;
}

sgd_status sgd_idx_read_file(sgd_idx **out, const char *path, const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_idx_read_file";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (path == NULL)
        return sgd__err(SGD_EINVAL, "%s: path is NULL", fn);
    return read_path(out, path, alloc, fn);
}

int32_t sgd_idx_type(const sgd_idx *a)
{
    return a ? a->type : 0;
}

int32_t sgd_idx_rank(const sgd_idx *a)
{
    return a ? a->rank : 0;
}

int64_t sgd_idx_dim(const sgd_idx *a, int32_t axis)
{
    return a && axis >= 0 && axis < a->rank ? a->dims[axis] : 0;
}

int64_t sgd_idx_count(const sgd_idx *a)
{
    return a ? a->count : 0;
}

const void *sgd_idx_data(const sgd_idx *a)
{
    return a ? a->data : NULL;
}

/* ---------------------------------------------------------------- datasets from IDX */

static bool is_float_type(int t)
{
    return t == SGD_IDX_FLOAT32 || t == SGD_IDX_FLOAT64;
}

/* Element i of a as a double. */
static double element(const sgd_idx *a, size_t i)
{
    switch (a->type) {
    case SGD_IDX_UINT8: return ((const uint8_t *)a->data)[i];
    case SGD_IDX_INT8: return ((const int8_t *)a->data)[i];
    case SGD_IDX_INT16: return ((const int16_t *)a->data)[i];
    case SGD_IDX_INT32: return ((const int32_t *)a->data)[i];
    case SGD_IDX_FLOAT32: return ((const float *)a->data)[i];
    default: return ((const double *)a->data)[i];
    }
}

/* Converts a's elements to float (uint8 scaled by 1/255) into dst; checks finiteness. */
static sgd_status to_float(const sgd_idx *a, float *dst, int64_t cols, const char *fn, const char *what)
{
    size_t n = (size_t)a->count;
    if (a->type == SGD_IDX_UINT8) {
        const uint8_t *s = a->data;
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)s[i] / 255.0f;
        return SGD_OK;
    }
    for (size_t i = 0; i < n; i++) {
        double v = element(a, i);
        if (!isfinite(v) || fabs(v) > 3.4028234663852886e38)
            return sgd__err(SGD_ENONFINITE, "%s: %s: element [%lld][%lld] is %g: must be a finite float32", fn,
                            what, (long long)(i / (size_t)cols), (long long)(i % (size_t)cols), v);
        dst[i] = (float)v;
    }
    return SGD_OK;
}

static sgd_status from_idx(sgd_dataset **out, const sgd_idx *f, const sgd_idx *l, const sgd_allocator *alloc,
                           const char *fn, const char *fwhat, const char *lwhat)
{
    int64_t n = f->dims[0];
    if (l->dims[0] != n)
        return sgd__err(SGD_ESHAPE, "%s: %s has %lld rows but %s has %lld", fn, fwhat, (long long)n, lwhat,
                        (long long)l->dims[0]);
    int64_t dim = f->count / n, ldim = l->count / n;
    if (n > SGD_DATASET_MAX_ROWS || dim > SGD_DATASET_MAX_DIM || ldim > SGD_DATASET_MAX_DIM)
        return sgd__err(SGD_EOVERFLOW, "%s: %lld rows of %lld features and %lld labels exceed the dataset caps",
                        fn, (long long)n, (long long)dim, (long long)ldim);
    bool targets = is_float_type(l->type);
    if (!targets && ldim != 1)
        return sgd__err(SGD_ESHAPE, "%s: %s: %s labels must be one per row, found %lld per row", fn, lwhat,
                        type_name(l->type), (long long)ldim);
    sgd_allocator a;
    sgd_status st = sgd__allocator_init(&a, alloc, fn);
    if (st != SGD_OK)
        return st;
    sgd__store *s = NULL;
    sgd_dataset *d = sgd__malloc(&a, sizeof *d);
    if (d == NULL)
        goto nomem;
    memset(d, 0, sizeof *d);
    d->alloc = a;
    if ((s = sgd__store_new(&a, NULL)) == NULL)
        goto nomem;
    d->store = s;
    float *x = sgd__alloc_aligned(&a, (size_t)f->count, sizeof(float));
    if (x == NULL)
        goto nomem;
    s->blocks[0] = x;
    if ((st = to_float(f, x, dim, fn, fwhat)) != SGD_OK)
        goto fail;
    d->x = x;
    d->n = n;
    d->dim = dim;
    if (targets) {
        float *t = sgd__alloc_aligned(&a, (size_t)l->count, sizeof(float));
        if (t == NULL)
            goto nomem;
        s->blocks[1] = t;
        if ((st = to_float(l, t, ldim, fn, lwhat)) != SGD_OK)
            goto fail;
        d->targets = t;
        d->tdim = ldim;
    } else {
        int32_t *lab = sgd__alloc_aligned(&a, (size_t)n, sizeof(int32_t));
        if (lab == NULL)
            goto nomem;
        s->blocks[1] = lab;
        double max = 0;
        for (int64_t i = 0; i < n; i++) {
            double v = element(l, (size_t)i);
            if (v < 0 || v >= INT32_MAX) {
                st = sgd__err(SGD_EINVAL, "%s: %s: label %lld is %.0f: class labels must be in [0, 2^31-1)", fn,
                              lwhat, (long long)i, v);
                goto fail;
            }
            lab[i] = (int32_t)v;
            if (v > max)
                max = v;
        }
        d->labels = lab;
        d->ldim = 1;
        d->n_classes = (int32_t)max + 1;
    }
    *out = d;
    return SGD_OK;
nomem:
    st = sgd__err(SGD_ENOMEM, "%s: out of memory for %lld rows of %lld features", fn, (long long)n,
                  (long long)dim);
fail:
    sgd_dataset_free(d); /* releases the store and its blocks too */
    return st;
}

sgd_status sgd_dataset_from_idx(sgd_dataset **out, const sgd_idx *features, const sgd_idx *labels,
                                const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_dataset_from_idx";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (features == NULL || labels == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, features == NULL ? "features" : "labels");
    return from_idx(out, features, labels, alloc, fn, "features", "labels");
}

sgd_status sgd_dataset_load_idx(sgd_dataset **out, const char *features_path, const char *labels_path,
                                const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_dataset_load_idx";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (features_path == NULL || labels_path == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, features_path == NULL ? "features_path" : "labels_path");
    sgd_idx *f = NULL, *l = NULL;
    sgd_status st = read_path(&f, features_path, alloc, fn);
    if (st == SGD_OK)
        st = read_path(&l, labels_path, alloc, fn);
    if (st == SGD_OK) {
        char fw[512], lw[512];
        snprintf(fw, sizeof fw, "'%s'", features_path);
        snprintf(lw, sizeof lw, "'%s'", labels_path);
        st = from_idx(out, f, l, alloc, fn, fw, lw);
    }
    sgd_idx_free(f);
    sgd_idx_free(l);
    return st;
}
