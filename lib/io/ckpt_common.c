/*
 * Checkpoint pieces shared by the writer and the reader: dtypes, names, byte
 * order, and the POSIX implementation of the I/O hook.
 * SPDX-License-Identifier: MIT
 */
#include "io/ckpt_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

size_t sgd_ckpt_dtype_size(int dtype)
{
    switch (dtype) {
    case SGD_CKPT_U8: return 1;
    case SGD_CKPT_F32:
    case SGD_CKPT_I32: return 4;
    case SGD_CKPT_F64:
    case SGD_CKPT_I64:
    case SGD_CKPT_U64: return 8;
    default: return 0;
    }
}

const char *sgd_ckpt_dtype_name(int dtype)
{
    switch (dtype) {
    case SGD_CKPT_F32: return "f32";
    case SGD_CKPT_F64: return "f64";
    case SGD_CKPT_I32: return "i32";
    case SGD_CKPT_I64: return "i64";
    case SGD_CKPT_U8: return "u8";
    case SGD_CKPT_U64: return "u64";
    default: return "unknown";
    }
}

bool sgd__ckpt_name_ok(const unsigned char *s, size_t n)
{
    if (n == 0 || n > SGD_CKPT_MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7E)
            return false;
    return true;
}

void sgd__ckpt_copy_le(void *dst, const void *src, size_t n_elems, size_t size)
{
#if SGD__BIG_ENDIAN
    unsigned char *d = dst;
    const unsigned char *s = src;
    for (size_t i = 0; i < n_elems; i++, d += size, s += size)
        for (size_t b = 0; b < size; b++)
            d[b] = s[size - 1 - b];
#else
    if (n_elems > 0)
        memcpy(dst, src, n_elems * size);
#endif
}

/* ------------------------------------------------------------ POSIX I/O */

static int px_open(const char *path, int how, void *user)
{
    (void)user;
    int fd;
    switch (how) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (px_size then refuses anything but a regular
       file; on a regular file the flag changes nothing). */
    case SGD__IO_READ: fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); break;
    case SGD__IO_CREATE: fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666); break;
    case SGD__IO_DIRECTORY: fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC); break;
    default: return -EINVAL;
    }
    return fd >= 0 ? fd : -errno;
}

static int64_t px_read(int fd, void *buf, size_t n, void *user)
{
    (void)user;
    ssize_t r = read(fd, buf, n);
    return r >= 0 ? (int64_t)r : -(int64_t)errno;
}

static int64_t px_pwrite(int fd, const void *buf, size_t n, uint64_t off, void *user)
{
    (void)user;
    if (off > (uint64_t)INT64_MAX)
        return -EFBIG;
    ssize_t r = pwrite(fd, buf, n, (off_t)off);
    return r >= 0 ? (int64_t)r : -(int64_t)errno;
}

static int px_size(int fd, uint64_t *size, void *user)
{
    (void)user;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EISDIR; /* not a regular file: devices, pipes, directories */
    *size = (uint64_t)st.st_size;
    return 0;
}

static int px_fsync(int fd, void *user)
{
    (void)user;
    return fsync(fd) == 0 ? 0 : -errno;
}

static int px_close(int fd, void *user)
{
    (void)user;
    /* Never retry close on EINTR: on Linux the descriptor is gone either way. */
    int r = close(fd);
    return r == 0 || errno == EINTR ? 0 : -errno;
}

static int px_lock(int fd, void *user)
{
    (void)user;
    return flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : -errno;
}

static int px_rename(const char *from, const char *to, void *user)
{
    (void)user;
    return rename(from, to) == 0 ? 0 : -errno;
}

static int px_unlink(const char *path, void *user)
{
    (void)user;
    return unlink(path) == 0 ? 0 : -errno;
}

static int px_list(const char *dir, int (*each)(const char *name, void *ctx), void *ctx, void *user)
{
    (void)user;
    DIR *d = opendir(dir);
    if (d == NULL)
        return -errno;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            rc = errno ? -errno : 0;
            break;
        }
        if (each(e->d_name, ctx) != 0)
            break;
    }
    closedir(d);
    return rc;
}

static int px_stat(const char *path, int follow, uint32_t *mode, void *user)
{
    (void)user;
    struct stat st;
    if ((follow ? stat(path, &st) : lstat(path, &st)) != 0)
        return -errno;
    *mode = (uint32_t)st.st_mode;
    return 0;
}

static int px_resolve(const char *path, char *buf, size_t cap, void *user)
{
    (void)user;
    char tmp[PATH_MAX];
    if (realpath(path, tmp) == NULL)
        return -errno;
    size_t n = strlen(tmp);
    if (n >= cap)
        return -ENAMETOOLONG;
    memcpy(buf, tmp, n + 1);
    return 0;
}

static const sgd__io posix_io = {
    .open = px_open,
    .read = px_read,
    .pwrite = px_pwrite,
    .size = px_size,
    .fsync = px_fsync,
    .close = px_close,
    .lock = px_lock,
    .rename = px_rename,
    .unlink = px_unlink,
    .list = px_list,
    .user = NULL,
    .stat = px_stat,
    .resolve = px_resolve,
};

const sgd__io *sgd__io_posix(void)
{
    return &posix_io;
}

static int io_stat(const sgd__io *io, const char *path, int follow, uint32_t *mode)
{
    int r;
    do
        r = io->stat(path, follow, mode, io->user);
    while (r == -EINTR);
    return r;
}

sgd_status sgd__output_target(const sgd__io *io, const char *fn, const char *path, char *resolved, bool *exists)
{
    *exists = false;
    size_t n = strnlen(path, PATH_MAX);
    if (n == 0)
        return sgd__err(SGD_EINVAL, "%s: path is empty", fn);
    if (n >= PATH_MAX)
        return sgd__err(SGD_EINVAL, "%s: path '%.60s...' is longer than PATH_MAX (%d)", fn, path, PATH_MAX);
    uint32_t mode = 0;
    int r = io_stat(io, path, 0, &mode);
    if (r == -ENOENT) {
        memcpy(resolved, path, n + 1); /* a new file (its directory must exist: creating it will say) */
        return SGD_OK;
    }
    if (r < 0)
        return sgd__err(SGD_EIO, "%s: %s: %s", fn, path, strerror(-r));
    if (S_ISREG((mode_t)mode)) {
        memcpy(resolved, path, n + 1);
        *exists = true;
        return SGD_OK;
    }
    if (!S_ISLNK((mode_t)mode))
        return sgd__err(SGD_EINVAL, "%s: %s: is %s, not a regular file: only a regular file is replaced", fn, path,
                        sgd__file_kind(mode));
    /* A symbolic link: followed to a regular file, never to anything else, never to nothing. */
    r = io_stat(io, path, 1, &mode);
    if (r == -ENOENT)
        return sgd__err(SGD_EINVAL, "%s: %s: is a symbolic link to nothing (dangling): files are not created "
                        "through symbolic links", fn, path);
    if (r < 0)
        return sgd__err(SGD_EIO, "%s: %s: following the symbolic link: %s", fn, path, strerror(-r));
    if (!S_ISREG((mode_t)mode))
        return sgd__err(SGD_EINVAL, "%s: %s: is a symbolic link to %s, not to a regular file: only a regular file is "
                        "replaced", fn, path, sgd__file_kind(mode));
    do
        r = io->resolve(path, resolved, PATH_MAX, io->user);
    while (r == -EINTR);
    if (r < 0)
        return sgd__err(SGD_EIO, "%s: %s: resolving the symbolic link: %s", fn, path, strerror(-r));
    *exists = true;
    return SGD_OK;
}
