/*
 * Checkpoint internals: byte-order helpers, CRC-32C, the I/O hook, and the
 * entry points that take a hook (the public functions use the POSIX one).
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_IO_CKPT_INTERNAL_H
#define SGDLAB_IO_CKPT_INTERNAL_H

#include "core/internal.h"
#include "sgdlab/checkpoint.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------ file layout */

/* "\x89SGD\r\n\x1a\n": high bit, name, CR LF, Ctrl-Z, LF (as PNG's). */
#define SGD__CKPT_SIGNATURE "\x89SGD\r\n\x1a\n"
#define SGD__CKPT_SIG_LEN 8
/* The fixed part of the header; the directory follows it. */
#define SGD__CKPT_FIXED 32
/* Smallest directory records (name of 1 byte, rank 0). */
#define SGD__CKPT_MIN_SECTION_REC 31 /* 2 + 1 + 4 + 4 + 8 + 8 + 4 */
#define SGD__CKPT_MIN_TENSOR_REC 21  /* 2 + 1 + 1 + 1 + 8 + 8 */
/* Fixed bytes of a section record after its name, and of a tensor record around its name and dims. */
#define SGD__CKPT_SECTION_TAIL 28
#define SGD__CKPT_TENSOR_TAIL 18 /* dtype, rank, offset, nbytes (dims come between) */
/* Temporary files: ".NAME" SGD__CKPT_TMP_TAG + 16 hex digits. */
#define SGD__CKPT_TMP_TAG ".sgdtmp-"
#define SGD__CKPT_TMP_HEX 16

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define SGD__BIG_ENDIAN 1
#else
#define SGD__BIG_ENDIAN 0
#endif

static inline void sgd__put_le16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static inline void sgd__put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline void sgd__put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint16_t sgd__get_le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t sgd__get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t sgd__get_le64(const unsigned char *p)
{
    return (uint64_t)sgd__get_le32(p) | (uint64_t)sgd__get_le32(p + 4) << 32;
}

/* The allocator an open reader or a writer uses (for the training-state glue). */
const sgd_allocator *sgd__ckpt_reader_alloc(const sgd_ckpt_reader *r);
const sgd_allocator *sgd__ckpt_writer_alloc(const sgd_ckpt_writer *w);

/* A name as the format allows it: 1..255 bytes of 0x21..0x7E. */
bool sgd__ckpt_name_ok(const unsigned char *s, size_t n);

/*
 * Copies n elements of `size` bytes from src to dst, converting between host
 * and little-endian order (a plain copy on little-endian hosts).
 */
void sgd__ckpt_copy_le(void *dst, const void *src, size_t n_elems, size_t size);

/* ------------------------------------------------------------------ CRC */

/*
 * CRC-32C of n bytes, continuing from `crc` (0 to start; pass the previous
 * result to continue over more bytes): sgd__crc32c(0, "123456789", 9) ==
 * 0xE3069283. sgd__crc32c uses the CPU's instruction when there is one.
 */
uint32_t sgd__crc32c(uint32_t crc, const void *data, size_t n);
uint32_t sgd__crc32c_sw(uint32_t crc, const void *data, size_t n);
uint32_t sgd__crc32c_hw(uint32_t crc, const void *data, size_t n); /* falls back to sw */
bool sgd__crc32c_hw_available(void);

/* ------------------------------------------------------------- I/O hook */

/*
 * Every file operation of the checkpoint code goes through one of these, in
 * the manner of SQLite's VFS, so that tests can fail, shorten, or kill the
 * process at any call. Each returns >= 0 on success and -errno on failure.
 * `user` is passed last, unchanged.
 */
enum {
    SGD__IO_READ = 0,      /* O_RDONLY */
    SGD__IO_CREATE = 1,    /* O_WRONLY | O_CREAT | O_EXCL, mode 0666 */
    SGD__IO_DIRECTORY = 2  /* O_RDONLY | O_DIRECTORY (to fsync a directory) */
};

typedef struct sgd__io {
    int (*open)(const char *path, int how, void *user);                 /* a descriptor */
    int64_t (*read)(int fd, void *buf, size_t n, void *user);           /* bytes read; 0 at end */
    int64_t (*pwrite)(int fd, const void *buf, size_t n, uint64_t off, void *user); /* bytes written */
    int (*size)(int fd, uint64_t *size, void *user);                    /* fstat's st_size */
    int (*fsync)(int fd, void *user);
    int (*close)(int fd, void *user);
    int (*lock)(int fd, void *user);                                    /* flock(LOCK_EX | LOCK_NB) */
    int (*rename)(const char *from, const char *to, void *user);
    int (*unlink)(const char *path, void *user);
    /* Calls each(name, ctx) for each entry of `dir` until it returns nonzero. */
    int (*list)(const char *dir, int (*each)(const char *name, void *ctx), void *ctx, void *user);
    void *user;
    /* st_mode of `path` (lstat, or stat when `follow`); -ENOENT when nothing is there. */
    int (*stat)(const char *path, int follow, uint32_t *mode, void *user);
    /* realpath(): the canonical path of an existing file into buf (cap bytes). */
    int (*resolve)(const char *path, char *buf, size_t cap, void *user);
} sgd__io;

/* The real thing: POSIX calls (EINTR is the caller's to retry, except in close). */
const sgd__io *sgd__io_posix(void);

/*
 * The policy for every file libsgdlab and its tool write (checkpoints, plots,
 * output files): a path is written if nothing is there (a new file) or a
 * regular file is there (replaced). A symbolic link is followed: the file it
 * points to is replaced, and the link stays, if that is a regular file; a link
 * to anything else, or to nothing (a dangling link: files are never created
 * through links), is refused, as is anything else at the path (a directory, a
 * device, a FIFO, a socket), with SGD_EINVAL and a message saying what is
 * there. On success `resolved` (PATH_MAX bytes) holds the path to write: the
 * path itself, or the link's target; *exists says whether a file is there.
 * A failing system call gives SGD_EIO with its reason. Messages start with
 * `fn: path: `.
 */
sgd_status sgd__output_target(const sgd__io *io, const char *fn, const char *path, char *resolved, bool *exists);

/* The public functions, with an explicit hook. */
sgd_status sgd__ckpt_save_io(const sgd_ckpt_writer *w, const char *path, const sgd__io *io);
sgd_status sgd__ckpt_cleanup_io(const char *path, size_t *removed, const sgd__io *io);
sgd_status sgd__ckpt_open_io(sgd_ckpt_reader **out, const char *path, const sgd_allocator *alloc,
                             const sgd__io *io);

/*
 * As sgd_ckpt_reader_open_memory, with the checksum verification optional:
 * only the fuzz harness turns it off, to reach the accessors behind a
 * checksum that random mutations cannot satisfy. Structural validation is
 * the same either way; it never depends on the checksums.
 */
sgd_status sgd__ckpt_open_memory_ex(sgd_ckpt_reader **out, const void *data, size_t size,
                                    const sgd_allocator *alloc, bool verify_crc);

#endif /* SGDLAB_IO_CKPT_INTERNAL_H */
