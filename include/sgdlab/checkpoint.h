/*
 * libsgdlab - train small neural networks and get the learning rate right.
 * SPDX-License-Identifier: MIT
 */
/**
 * @file checkpoint.h
 * @brief Checkpoint files: named sections of named, typed tensors, validated
 *        before use and saved crash-safely.
 *
 * A checkpoint is a container: a list of named **sections** (for example
 * "model", "optim", "sched", "monitor", "trainer"), each holding named
 * **tensors** with a dtype (::sgd_ckpt_dtype) and a shape of rank 0 to
 * ::SGD_CKPT_MAX_RANK. The byte layout is documented in docs/checkpoint-format.md
 * precisely enough to write a reader in another language: an 8-byte
 * PNG-style signature, a major/minor version, a bounded header, 64-byte
 * aligned data, a CRC-32C per section and over the header, everything
 * little-endian.
 *
 * **Writing.** Build an ::sgd_ckpt_writer, add sections and tensors, then
 * sgd_ckpt_writer_save() to a path or sgd_ckpt_writer_write_memory() to a
 * buffer. sgd_ckpt_writer_add_tensor() *borrows* the caller's array: nothing is
 * copied when it is added, and the array is read when the file is written, so
 * saving a large model does not double its memory (and a writer built once can
 * be saved again after the arrays changed).
 *
 * **Crash safety.** sgd_ckpt_writer_save() writes a temporary file in the
 * target's directory, fsyncs it, renames it over the target and fsyncs the
 * directory. If anything fails before the rename, the temporary file is removed
 * and the previous checkpoint is left byte for byte as it was; a failed fsync
 * is never retried. A writer killed mid-way leaves the old file (or, after the
 * rename, the new one) plus, at worst, a stale temporary file, which the next
 * save to the same path (or sgd_ckpt_cleanup_stale()) removes.
 *
 * **Reading.** sgd_ckpt_reader_open() (a path) and sgd_ckpt_reader_open_memory()
 * (a buffer) validate the whole file before returning: every count, dimension
 * and size product with overflow checks and the documented caps, every offset
 * (sorted, aligned, non-overlapping, inside the file), the total size, padding
 * bytes, unique names, and then every checksum. The checksums detect damage;
 * they are never relied on for memory safety. After a successful open,
 * sgd_ckpt_reader_check_tensor() compares a tensor with what the caller
 * expects and names the first difference, and sgd_ckpt_reader_read_tensor()
 * copies a tensor straight into the caller's array.
 *
 * Thread rules: a writer is used by one thread at a time, and the arrays it
 * borrows must not change while it writes. A reader is read-only once open:
 * several threads may query and read the same reader at once.
 */
#ifndef SGDLAB_CHECKPOINT_H
#define SGDLAB_CHECKPOINT_H

#include "sgdlab/core.h"
#include "sgdlab/model.h"
#include "sgdlab/monitor.h"
#include "sgdlab/optim.h"
#include "sgdlab/sched.h"
#include "sgdlab/text.h"
#include "sgdlab/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Major version of the file format this library writes and reads; a file with another major is refused with ::SGD_EVERSION. @since 0.1 */
#define SGD_CKPT_FORMAT_MAJOR 1
/** @brief Minor version of the file format this library writes; files with a higher minor are read (additions are compatible). @since 0.1 */
#define SGD_CKPT_FORMAT_MINOR 0

/** @brief Largest rank (number of dimensions) of a tensor. @since 0.1 */
#define SGD_CKPT_MAX_RANK 8
/** @brief Longest section or tensor name, in bytes (names are printable ASCII, no spaces). @since 0.1 */
#define SGD_CKPT_MAX_NAME 255
/** @brief Most sections in one file. @since 0.1 */
#define SGD_CKPT_MAX_SECTIONS 1024
/** @brief Most tensors in one file, all sections together. @since 0.1 */
#define SGD_CKPT_MAX_TENSORS 65536
/** @brief Largest header (signature, fixed fields and the directory of sections and tensors), in bytes. @since 0.1 */
#define SGD_CKPT_MAX_HEADER (16u * 1024u * 1024u)
/** @brief Alignment, in bytes, of every section and tensor in the file. @since 0.1 */
#define SGD_CKPT_ALIGN 64

/**
 * @brief Section flag: a reader that does not know this section must refuse the
 *        file (see sgd_ckpt_reader_check_sections()); sections without it are
 *        optional and may be skipped.
 * @since 0.1
 */
#define SGD_CKPT_SECTION_REQUIRED 0x1u

/**
 * @brief Element types of checkpoint tensors. The values are the codes stored
 *        in the file.
 * @since 0.1
 */
typedef enum sgd_ckpt_dtype {
    SGD_CKPT_F32 = 1, /**< IEEE 754 binary32 (float). */
    SGD_CKPT_F64 = 2, /**< IEEE 754 binary64 (double). */
    SGD_CKPT_I32 = 3, /**< Two's complement int32_t. */
    SGD_CKPT_I64 = 4, /**< Two's complement int64_t. */
    SGD_CKPT_U8 = 5,  /**< uint8_t (bytes, text). */
    SGD_CKPT_U64 = 6  /**< uint64_t (random number generator state, bit patterns). */
} sgd_ckpt_dtype;

/**
 * @brief Size in bytes of one element of a dtype.
 * @param dtype An ::sgd_ckpt_dtype value.
 * @return 1, 4 or 8; 0 for a value that is not an ::sgd_ckpt_dtype.
 * @since 0.1
 */
SGD_API size_t sgd_ckpt_dtype_size(int dtype);

/**
 * @brief Short name of a dtype: "f32", "f64", "i32", "i64", "u8", "u64".
 * @param dtype Any integer.
 * @return A static string; "unknown" for values that are not an ::sgd_ckpt_dtype. Never NULL.
 * @since 0.1
 */
SGD_API const char *sgd_ckpt_dtype_name(int dtype);

/* ------------------------------------------------------------------ writer */

/**
 * @brief A checkpoint being assembled: an opaque handle.
 * @since 0.1
 */
typedef struct sgd_ckpt_writer sgd_ckpt_writer;

/**
 * @brief Creates an empty writer.
 *
 * @param[out] out   Receives the writer; set to NULL on failure.
 * @param alloc      Allocator for the writer's memory, or NULL for malloc/free.
 *                   The writer keeps a copy.
 * @return ::SGD_OK, ::SGD_EINVAL (NULL @p out, allocator partly set), ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_writer_new(sgd_ckpt_writer **out, const sgd_allocator *alloc);

/**
 * @brief Frees a writer and the copies it made. Borrowed arrays are not touched.
 * @param w The writer; NULL is a no-op.
 * @since 0.1
 */
SGD_API void sgd_ckpt_writer_free(sgd_ckpt_writer *w);

/**
 * @brief Starts a new section; the tensors added next go into it.
 *
 * Section names are unique within a file. The sections are written in the
 * order they are begun.
 *
 * @param w      The writer.
 * @param name   1 to ::SGD_CKPT_MAX_NAME printable ASCII characters without
 *               spaces (0x21 to 0x7E). Copied.
 * @param flags  0 or ::SGD_CKPT_SECTION_REQUIRED.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument, bad name, unknown flag bits,
 *         a name already used); ::SGD_EOVERFLOW (more than
 *         ::SGD_CKPT_MAX_SECTIONS sections, or a header larger than
 *         ::SGD_CKPT_MAX_HEADER); ::SGD_ENOMEM. On failure the writer is unchanged.
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_writer_begin_section(sgd_ckpt_writer *w, const char *name, uint32_t flags);

/**
 * @brief Adds a tensor to the current section, borrowing its data.
 *
 * Nothing is copied: @p data is read when the writer writes (save or
 * write_memory), so it must stay valid and unchanged until then, or until the
 * writer is freed. The values are in the host's byte order; the writer stores
 * them little-endian.
 *
 * @param w      The writer; a section must have been begun.
 * @param name   Tensor name, unique within its section; same rules as section
 *               names (e.g. "0.weight"). Copied.
 * @param dtype  An ::sgd_ckpt_dtype.
 * @param rank   0 (a scalar) to ::SGD_CKPT_MAX_RANK.
 * @param dims   @p rank sizes, each >= 0; may be NULL when @p rank is 0. Copied.
 * @param data   The elements, row-major, dims[0]*...*dims[rank-1] of them (one
 *               for a scalar); may be NULL only when that count is 0.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument, bad or repeated name, unknown
 *         dtype, negative dimension, rank above the cap); ::SGD_ESTATE (no
 *         section begun); ::SGD_EOVERFLOW (the size overflows, more than
 *         ::SGD_CKPT_MAX_TENSORS tensors, the header would exceed
 *         ::SGD_CKPT_MAX_HEADER); ::SGD_ENOMEM. On failure the writer is unchanged.
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_writer_add_tensor(sgd_ckpt_writer *w, const char *name, int dtype, uint32_t rank,
                                              const int64_t *dims, const void *data);

/**
 * @brief Adds a tensor to the current section, copying its data now.
 *
 * As sgd_ckpt_writer_add_tensor(), but the writer keeps its own copy of
 * @p data, so the caller's array may change or go away at once. Meant for small
 * values computed on the spot; large arrays are better borrowed.
 *
 * @param w      The writer; a section must have been begun.
 * @param name   Tensor name (see sgd_ckpt_writer_add_tensor()). Copied.
 * @param dtype  An ::sgd_ckpt_dtype.
 * @param rank   0 to ::SGD_CKPT_MAX_RANK.
 * @param dims   @p rank sizes, each >= 0; may be NULL when @p rank is 0.
 * @param data   The elements in host byte order; may be NULL only for zero elements.
 * @return As sgd_ckpt_writer_add_tensor().
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_writer_add_tensor_copy(sgd_ckpt_writer *w, const char *name, int dtype, uint32_t rank,
                                                   const int64_t *dims, const void *data);

/**
 * @brief Adds a scalar ::SGD_CKPT_I64 tensor (rank 0) holding @p value (copied).
 * @param w      The writer; a section must have been begun.
 * @param name   Tensor name (see sgd_ckpt_writer_add_tensor()).
 * @param value  The value, e.g. a step counter.
 * @return As sgd_ckpt_writer_add_tensor().
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_writer_add_i64(sgd_ckpt_writer *w, const char *name, int64_t value);

/**
 * @brief Adds a scalar ::SGD_CKPT_F64 tensor (rank 0) holding @p value (copied,
 *        bit for bit, NaN payloads included).
 * @param w      The writer; a section must have been begun.
 * @param name   Tensor name (see sgd_ckpt_writer_add_tensor()).
 * @param value  The value, e.g. a learning rate.
 * @return As sgd_ckpt_writer_add_tensor().
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_writer_add_f64(sgd_ckpt_writer *w, const char *name, double value);

/**
 * @brief The exact size in bytes of the file the writer would write now.
 * @param w         The writer.
 * @param[out] size Receives the size; 0 on failure.
 * @return ::SGD_OK, ::SGD_EINVAL (NULL argument), ::SGD_EOVERFLOW (the file would
 *         not fit in 64 bits).
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_writer_size(const sgd_ckpt_writer *w, uint64_t *size);

/**
 * @brief Writes the checkpoint into a caller's buffer.
 *
 * Hosts that keep checkpoints in a database or send them over a network use
 * this instead of sgd_ckpt_writer_save(); sgd_ckpt_writer_size() tells how large
 * the buffer must be. The borrowed arrays are read now.
 *
 * @param w     The writer.
 * @param buf   Destination, at least sgd_ckpt_writer_size() bytes; any alignment.
 * @param size  Size of @p buf in bytes.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument, @p size too small: nothing is
 *         written then); ::SGD_EOVERFLOW.
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_writer_write_memory(const sgd_ckpt_writer *w, void *buf, size_t size);

/**
 * @brief Writes the checkpoint to @p path, crash-safely.
 *
 * Steps: remove stale temporary files of earlier writers to the same path
 * that were killed (see sgd_ckpt_cleanup_stale()); create
 * `DIR/.NAME.sgdtmp-XXXXXXXXXXXXXXXX` (16 random hexadecimal digits) exclusively
 * and lock it (flock); write; fsync; rename it over @p path; fsync the
 * directory. On any failure before the rename, the temporary file is removed,
 * the file at @p path (if any) is left byte for byte as it was, and an error is
 * returned; a failed fsync is never retried. If the rename succeeded but the
 * directory fsync (or the final close) fails, the new checkpoint is in place and
 * complete but its durability is not guaranteed: ::SGD_EIO is returned with a
 * message saying so.
 *
 * The new file gets the default permissions (0666 less the umask), not the old
 * file's; a symbolic link at @p path is replaced by the file. Two processes
 * saving to the same path at once each replace the file atomically (the last
 * rename wins); in a narrow race one of them can fail with ::SGD_EIO, never
 * leaving a damaged file.
 *
 * @param w     The writer.
 * @param path  Destination file name. Its directory must exist and be writable.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument, a path ending in '/');
 *         ::SGD_EIO (with the system's reason, the file and the step that
 *         failed); ::SGD_EOVERFLOW; ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_writer_save(const sgd_ckpt_writer *w, const char *path);

/**
 * @brief Removes stale temporary files left by killed writers to @p path.
 *
 * A temporary file of a save to `DIR/NAME` is recognised by its name,
 * `.NAME.sgdtmp-` followed by exactly 16 lowercase hexadecimal digits, in `DIR`.
 * A live writer holds an exclusive flock() on its temporary file; a file whose
 * lock can be taken (without waiting) belongs to a writer that is gone, and is
 * deleted. sgd_ckpt_writer_save() does this itself before it writes.
 *
 * @param path          The checkpoint's path (the file itself need not exist).
 * @param[out] removed  Receives the number of files removed; may be NULL.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL or bad path); ::SGD_EIO (the directory
 *         cannot be listed, or a stale file cannot be removed; the others are
 *         still tried); ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_cleanup_stale(const char *path, size_t *removed);

/* ------------------------------------------------------------------ reader */

/**
 * @brief A validated checkpoint open for reading: an opaque handle.
 * @since 0.1
 */
typedef struct sgd_ckpt_reader sgd_ckpt_reader;

/**
 * @brief Facts about one section, filled by sgd_ckpt_reader_section_info().
 *
 * Initialise it with sgd_ckpt_section_info_init() (or set @c struct_size to its sizeof); the library
 * fills the members both sides know and leaves @c struct_size as the caller
 * set it (see @ref versioned_structs).
 * @since 0.1
 */
typedef struct sgd_ckpt_section_info {
    uint32_t struct_size;  /**< Size of the caller's struct; set by the caller, never changed. */
    uint32_t flags;        /**< 0 or ::SGD_CKPT_SECTION_REQUIRED. */
    const char *name;      /**< NUL-terminated; valid until the reader is freed. */
    uint64_t tensor_count; /**< Number of tensors in the section. */
    uint64_t offset;       /**< Byte offset of the section's data in the file. */
    uint64_t size;         /**< Byte size of the section's data (tensors and the padding between them). */
    uint32_t crc32c;       /**< CRC-32C of those bytes, as stored (and verified). */
    uint32_t reserved;     /**< Zero. */
} sgd_ckpt_section_info;

/**
 * @brief Zeroes @p s and sets its @c struct_size, ready for sgd_ckpt_reader_section_info().
 *
 * Inline, so that the size it writes is that of the headers the program is
 * built with (see @ref versioned_structs).
 * @param s The struct to initialise; NULL is ignored.
 * @since 0.2
 */
static inline void sgd_ckpt_section_info_init(sgd_ckpt_section_info *s)
{
    SGD_OUTPUT_INIT(s);
}

/**
 * @brief Facts about one tensor, filled by sgd_ckpt_reader_tensor_info() and
 *        sgd_ckpt_reader_find_tensor().
 *
 * Initialise it with sgd_ckpt_tensor_info_init() (or set @c struct_size to its sizeof); the library
 * fills the members both sides know and leaves @c struct_size as the caller
 * set it (see @ref versioned_structs).
 * @since 0.1
 */
typedef struct sgd_ckpt_tensor_info {
    uint32_t struct_size;          /**< Size of the caller's struct; set by the caller, never changed. */
    int32_t dtype;                 /**< An ::sgd_ckpt_dtype, or an unknown code in a file of a newer minor version. */
    const char *name;              /**< NUL-terminated; valid until the reader is freed. */
    const char *section;           /**< Name of the section holding it; valid until the reader is freed. */
    uint32_t rank;                 /**< Number of dimensions, 0 to ::SGD_CKPT_MAX_RANK. */
    uint32_t reserved;             /**< Zero. */
    int64_t dims[SGD_CKPT_MAX_RANK]; /**< The first @c rank entries are the shape; the rest are 0. */
    uint64_t count;                /**< Number of elements (product of the dims; 1 for a scalar). */
    uint64_t nbytes;               /**< Size of the data in bytes. */
    uint64_t offset;               /**< Byte offset of the data in the file (a multiple of ::SGD_CKPT_ALIGN). */
} sgd_ckpt_tensor_info;

/**
 * @brief Zeroes @p s and sets its @c struct_size, ready for sgd_ckpt_reader_tensor_info() or sgd_ckpt_reader_find_tensor().
 *
 * Inline, so that the size it writes is that of the headers the program is
 * built with (see @ref versioned_structs).
 * @param s The struct to initialise; NULL is ignored.
 * @since 0.2
 */
static inline void sgd_ckpt_tensor_info_init(sgd_ckpt_tensor_info *s)
{
    SGD_OUTPUT_INIT(s);
}

/**
 * @brief Opens and validates the checkpoint file at @p path.
 *
 * The file is read whole into memory (one block of its size, from @p alloc)
 * and validated as sgd_ckpt_reader_open_memory() describes; it can be deleted
 * or replaced once this returns. The fixed part of the header is checked
 * before the block is allocated, so a file that is not a checkpoint costs no
 * allocation of its size.
 *
 * @param[out] out  Receives the reader; NULL on failure.
 * @param path      The file.
 * @param alloc     Allocator, or NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument); ::SGD_EIO (cannot open or
 *         read, with the system's reason); ::SGD_EFORMAT, ::SGD_EVERSION,
 *         ::SGD_EOVERFLOW (as sgd_ckpt_reader_open_memory()); ::SGD_ENOMEM.
 *         The message names the file and what is wrong.
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_reader_open(sgd_ckpt_reader **out, const char *path, const sgd_allocator *alloc);

/**
 * @brief Opens and validates a checkpoint held in memory.
 *
 * The buffer is borrowed, not copied: it must stay valid until the reader is
 * freed. Everything is validated before this returns: the signature (text-mode
 * damage such as CR/LF conversion is named as such), the version (another major
 * is ::SGD_EVERSION), the header size and counts against the caps
 * (::SGD_EOVERFLOW), every name, dtype, rank and dimension, each size product
 * with overflow checks, each declared byte size against its dtype and shape,
 * offsets (aligned, in increasing order, not overlapping, inside the file), the
 * total size against @p size, zero padding, unique names, and finally the
 * CRC-32C of the header and of every section. What the reader allocates is
 * bounded by a small multiple of the header size, whatever the file claims.
 * The reader keeps its own copy of all metadata, so the buffer's bytes are
 * never re-parsed after this returns.
 *
 * @param[out] out  Receives the reader; NULL on failure.
 * @param data      The bytes of the file; may be NULL only if @p size is 0.
 * @param size      Their number.
 * @param alloc     Allocator, or NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument); ::SGD_EFORMAT (malformed,
 *         truncated, corrupt, checksum mismatch); ::SGD_EVERSION (unsupported
 *         major version); ::SGD_EOVERFLOW (a count, dimension or size above a
 *         cap or overflowing); ::SGD_ENOMEM. The message says which field of
 *         which section or tensor is wrong, and where.
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_reader_open_memory(sgd_ckpt_reader **out, const void *data, size_t size,
                                               const sgd_allocator *alloc);

/**
 * @brief Frees a reader (and the file's bytes if it read them from a path).
 * @param r The reader; NULL is a no-op.
 * @since 0.1
 */
SGD_API void sgd_ckpt_reader_free(sgd_ckpt_reader *r);

/**
 * @brief The format version recorded in the file.
 * @param r           The reader.
 * @param[out] major  Receives the major version (always ::SGD_CKPT_FORMAT_MAJOR); may be NULL.
 * @param[out] minor  Receives the minor version; may be NULL.
 * @return ::SGD_OK, ::SGD_EINVAL (NULL reader).
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_reader_version(const sgd_ckpt_reader *r, uint32_t *major, uint32_t *minor);

/**
 * @brief Number of sections in the file.
 * @param r The reader; NULL gives 0.
 * @return The count.
 * @since 0.1
 */
SGD_API size_t sgd_ckpt_reader_section_count(const sgd_ckpt_reader *r);

/**
 * @brief Size of the file in bytes.
 * @param r The reader; NULL gives 0.
 * @return The size.
 * @since 0.1
 */
SGD_API uint64_t sgd_ckpt_reader_file_size(const sgd_ckpt_reader *r);

/**
 * @brief Facts about the section at @p index (in file order).
 * @param r          The reader.
 * @param index      0 to sgd_ckpt_reader_section_count() - 1.
 * @param[in,out] info  Its @c struct_size set by the caller; filled on success.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument, a struct_size smaller than the struct's first release);
 *         ::SGD_ERANGE (@p index out of range).
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_reader_section_info(const sgd_ckpt_reader *r, size_t index,
                                                sgd_ckpt_section_info *info);

/**
 * @brief Finds a section by name.
 * @param r           The reader.
 * @param name        The section's name.
 * @param[out] index  Receives its index for sgd_ckpt_reader_section_info(); may be NULL
 *                    (to test whether the section exists).
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument); ::SGD_ENOTFOUND.
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_reader_find_section(const sgd_ckpt_reader *r, const char *name, size_t *index);

/**
 * @brief Facts about the tensor at @p index (in file order) of section @p section.
 * @param r          The reader.
 * @param section    Section index.
 * @param index      Tensor index within the section.
 * @param[in,out] info  Its @c struct_size set by the caller; filled on success.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument, a struct_size smaller than the struct's first release);
 *         ::SGD_ERANGE (an index out of range).
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_reader_tensor_info(const sgd_ckpt_reader *r, size_t section, size_t index,
                                               sgd_ckpt_tensor_info *info);

/**
 * @brief Finds a tensor by section and tensor name.
 * @param r          The reader.
 * @param section    Section name.
 * @param name       Tensor name.
 * @param[in,out] info  Its @c struct_size set by the caller; filled on success.
 *                   May be NULL to test whether the tensor exists.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument, a struct_size smaller than the struct's first release);
 *         ::SGD_ENOTFOUND (naming the missing section or tensor).
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_reader_find_tensor(const sgd_ckpt_reader *r, const char *section, const char *name,
                                               sgd_ckpt_tensor_info *info);

/**
 * @brief Checks that a tensor exists with the dtype and shape the caller expects.
 *
 * The message names the first mismatch, e.g. `section 'model': tensor
 * '0.weight': shape [256,784] in file, expected [128,784]`, so a checkpoint of
 * another architecture is refused with a reason.
 *
 * @param r        The reader.
 * @param section  Section name.
 * @param name     Tensor name.
 * @param dtype    Expected ::sgd_ckpt_dtype.
 * @param rank     Expected rank (0 to ::SGD_CKPT_MAX_RANK).
 * @param dims     Expected shape, @p rank entries; may be NULL when @p rank is 0.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument, rank above the cap);
 *         ::SGD_ENOTFOUND (no such section or tensor); ::SGD_ESHAPE (dtype,
 *         rank or a dimension differs).
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_reader_check_tensor(const sgd_ckpt_reader *r, const char *section, const char *name,
                                                int dtype, uint32_t rank, const int64_t *dims);

/**
 * @brief Checks a tensor (as sgd_ckpt_reader_check_tensor()) and copies its
 *        elements into the caller's array, in host byte order.
 *
 * @param r         The reader.
 * @param section   Section name.
 * @param name      Tensor name.
 * @param dtype     Expected ::sgd_ckpt_dtype.
 * @param rank      Expected rank.
 * @param dims      Expected shape; may be NULL when @p rank is 0.
 * @param dst       Destination, @p dst_size bytes, any alignment; may be NULL
 *                  when the tensor has no elements.
 * @param dst_size  Must be at least the tensor's byte size.
 * @return As sgd_ckpt_reader_check_tensor(), plus ::SGD_ESHAPE when
 *         @p dst_size is too small. Nothing is written on failure.
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_reader_read_tensor(const sgd_ckpt_reader *r, const char *section, const char *name,
                                               int dtype, uint32_t rank, const int64_t *dims, void *dst,
                                               size_t dst_size);

/**
 * @brief Reads a scalar ::SGD_CKPT_I64 tensor (rank 0).
 * @param r           The reader.
 * @param section     Section name.
 * @param name        Tensor name.
 * @param[out] value  Receives the value; untouched on failure.
 * @return As sgd_ckpt_reader_read_tensor().
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_reader_read_i64(const sgd_ckpt_reader *r, const char *section, const char *name,
                                            int64_t *value);

/**
 * @brief Reads a scalar ::SGD_CKPT_F64 tensor (rank 0), bit for bit.
 * @param r           The reader.
 * @param section     Section name.
 * @param name        Tensor name.
 * @param[out] value  Receives the value; untouched on failure.
 * @return As sgd_ckpt_reader_read_tensor().
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_reader_read_f64(const sgd_ckpt_reader *r, const char *section, const char *name,
                                            double *value);

/**
 * @brief The stored bytes of a tensor, without copying.
 *
 * The bytes are little-endian, as in the file. They are aligned to
 * ::SGD_CKPT_ALIGN bytes when the reader was opened from a path; from memory,
 * they are as aligned as the caller's buffer allows.
 *
 * @param r            The reader.
 * @param section      Section name.
 * @param name         Tensor name.
 * @param[out] data    Receives a pointer valid until the reader is freed; NULL on failure.
 * @param[out] nbytes  Receives the byte count; may be NULL.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument); ::SGD_ENOTFOUND.
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_reader_tensor_data(const sgd_ckpt_reader *r, const char *section, const char *name,
                                               const void **data, uint64_t *nbytes);

/**
 * @brief Refuses a file that has a required section the caller does not know.
 *
 * A loader passes the names of the sections it understands. A section that is
 * not among them is skipped if it is optional, and makes this function fail
 * with ::SGD_EVERSION (naming it) if it carries ::SGD_CKPT_SECTION_REQUIRED:
 * it was written by a newer program whose state this one cannot restore.
 *
 * @param r      The reader.
 * @param known  @p n section names; may be NULL when @p n is 0.
 * @param n      Their number.
 * @return ::SGD_OK, ::SGD_EINVAL (NULL argument), ::SGD_EVERSION.
 * @since 0.1
 */
SGD_API sgd_status sgd_ckpt_reader_check_sections(const sgd_ckpt_reader *r, const char *const *known, size_t n);


/* ------------------------------------------------------------ training state */

/**
 * @brief The objects whose state a checkpoint holds; any may be NULL.
 *
 * A checkpoint stores state, not configuration: to restore, the program
 * creates objects of the same kinds (the same model spec, optimizer spec and
 * size, schedule spec, monitor options) and loads the state into them. Each
 * object has its own section:
 *
 * | section   | tensors |
 * |-----------|---------|
 * | "model"   | "spec" (u8, the canonical model spec), one f32 tensor per parameter named as sgd_param_info names it ("0.weight", shape [out, in]; "0.bias", shape [out]), "rng" (u64[4], the dropout generator) |
 * | "optim"   | "kind" (u8, sgd_optim_name()), then every state array of sgd_optim_state_describe() under its own name: "step" (i64[1]), the slots (f32[n], e.g. "exp_avg"), "scalars" (f64) |
 * | "sched"   | "kind" (u8, sgd_sched_name()), "state" (f64[sgd_sched_state_size()]) |
 * | "monitor" | "state" (f64[sgd_monitor_state_size()]) |
 * | "trainer" | "state" (u8[sgd_trainer_state_size()], the trainer's own versioned layout) |
 *
 * A trainer brings the objects it composes: with @c trainer set, the other
 * fields left NULL are taken from it (sgd_trainer_model() and so on), so
 * saving a trainer saves the whole run and restoring it resumes the run
 * exactly. All five sections are marked ::SGD_CKPT_SECTION_REQUIRED. A text
 * model's vocabulary goes in a section of its own, "vocab"
 * (sgd_checkpoint_add_vocab()). Programs may add
 * sections of their own with the low-level writer (optional ones are skipped
 * by readers that do not know them).
 *
 * Initialise with sgd_checkpoint_parts_init(); fields may be appended in later
 * versions (a trainer, for example), which @c struct_size keeps compatible.
 * @since 0.1
 */
typedef struct sgd_checkpoint_parts {
    uint32_t struct_size;  /**< sizeof(sgd_checkpoint_parts), set by sgd_checkpoint_parts_init(). */
    uint32_t reserved;     /**< Zero. */
    sgd_model *model;      /**< Parameters and dropout generator, or NULL. */
    sgd_optim *optim;      /**< Optimizer state (step, slots, scalars), or NULL. */
    sgd_sched *sched;      /**< Scheduler state (plateau counters...), or NULL. */
    sgd_monitor *monitor;  /**< Monitor state, or NULL. */
    sgd_trainer *trainer;  /**< Trainer state (counters, loader position, guard, snapshots), or NULL; brings its objects. */
} sgd_checkpoint_parts;

/**
 * @brief Zeroes @p parts and sets its @c struct_size.
 * @param parts The struct to initialise; NULL is ignored.
 * @since 0.1
 */
SGD_API void sgd_checkpoint_parts_init(sgd_checkpoint_parts *parts);

/**
 * @brief Adds a section for each non-NULL part to a writer (see
 *        ::sgd_checkpoint_parts for the layout).
 *
 * The model's parameters and the optimizer's slots are borrowed, not copied:
 * they must not change (no training step) until the writer has written, or
 * has been freed. Small states are copied.
 *
 * @param w     A writer (sgd_ckpt_writer_new()); sections are appended to it.
 * @param parts The objects; at least one must be set.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument, no part set, a model that is
 *         not built, a part that is not the trainer's own, a struct_size smaller
 *         than the struct's first release or larger than this library's, a section of the same name already in the
 *         writer); ::SGD_ENOMEM; a status from an object's state export. On
 *         failure the writer may hold some of the sections: free it.
 * @since 0.1
 */
SGD_API sgd_status sgd_checkpoint_add(sgd_ckpt_writer *w, const sgd_checkpoint_parts *parts);

/**
 * @brief Saves the parts' state to the checkpoint file @p path, crash-safely
 *        (as sgd_ckpt_writer_save(): the old file stays intact on any failure).
 * @param path  The file.
 * @param parts The objects (see sgd_checkpoint_add()).
 * @param alloc Allocator for the writer, or NULL for malloc/free.
 * @return As sgd_checkpoint_add() and sgd_ckpt_writer_save().
 * @since 0.1
 */
SGD_API sgd_status sgd_checkpoint_save(const char *path, const sgd_checkpoint_parts *parts,
                                       const sgd_allocator *alloc);

/**
 * @brief Restores the parts' state from an open checkpoint, all or nothing.
 *
 * Every non-NULL part needs its section. Everything is checked before
 * anything changes: the model's parameters one by one (a checkpoint of
 * another architecture is refused with a message naming the first tensor
 * that differs, missing or extra), the optimizer's kind and every state
 * array's type and size, the schedule's kind and state size, the monitor's
 * and the trainer's state sizes. States that the objects validate themselves
 * on import (the trainer's, the schedule's, the monitor's, the optimizer's
 * step and scalars) are imported first, and undone if a later one is
 * refused; then the large arrays are copied. On failure every part is as it
 * was. With a trainer, its objects are restored too (see
 * ::sgd_checkpoint_parts).
 *
 * @param r     An open reader (sgd_ckpt_reader_open() or _open_memory()).
 * @param parts The objects to restore into; at least one must be set.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument, no part set); ::SGD_ENOTFOUND
 *         (a section or tensor is missing); ::SGD_ESHAPE (another
 *         architecture, another optimizer size or state size); ::SGD_EFORMAT
 *         (a tensor of the wrong type, a different optimizer or schedule
 *         kind); ::SGD_EVERSION (a required section this library does not
 *         know); ::SGD_ENOMEM; a status from an object's state import.
 * @since 0.1
 */
SGD_API sgd_status sgd_checkpoint_restore(const sgd_ckpt_reader *r, const sgd_checkpoint_parts *parts);

/**
 * @brief Opens the checkpoint file @p path and restores the parts' state from
 *        it (sgd_ckpt_reader_open() then sgd_checkpoint_restore()).
 * @param path  The file.
 * @param parts The objects to restore into.
 * @param alloc Allocator for the reader, or NULL for malloc/free.
 * @return As sgd_ckpt_reader_open() and sgd_checkpoint_restore().
 * @since 0.1
 */
SGD_API sgd_status sgd_checkpoint_load(const char *path, const sgd_checkpoint_parts *parts,
                                       const sgd_allocator *alloc);

/**
 * @brief Creates the model a checkpoint describes (from its "model" section's
 *        spec) and loads its parameters and generator state.
 * @param[out] out Receives the model; NULL on failure. Free with sgd_model_free().
 * @param r        An open reader.
 * @param opts     Model options (batch size, BLAS threads...), or NULL for defaults.
 * @param alloc    Allocator for the model, or NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument); ::SGD_ENOTFOUND (no model
 *         section or spec); ::SGD_EFORMAT (a spec that does not parse); as
 *         sgd_checkpoint_restore(); ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_checkpoint_load_model(sgd_model **out, const sgd_ckpt_reader *r,
                                             const sgd_model_options *opts, const sgd_allocator *alloc);

/**
 * @brief Adds the vocabulary of a text model to a writer, as an optional
 *        section "vocab": "unit" (i64, an ::sgd_text_unit) and "symbols"
 *        (i32[size], the code points or bytes in id order).
 *
 * A checkpoint of a text model needs it: the model reads token ids, which
 * mean nothing without the symbols they stand for (generation, and a resumed
 * run, which should check it with sgd_checkpoint_check_vocab()).
 *
 * @param w The writer; the section is appended (copied).
 * @param v The vocabulary.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument, a "vocab" section already
 *         in the writer); ::SGD_ENOMEM.
 * @since 0.2
 */
SGD_API sgd_status sgd_checkpoint_add_vocab(sgd_ckpt_writer *w, const sgd_vocab *v);

/**
 * @brief Checks that a checkpoint's vocabulary is @p v (before restoring a
 *        text model's run on data whose vocabulary is @p v).
 * @param r An open reader.
 * @param v The vocabulary of the data.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument); ::SGD_ENOTFOUND (no
 *         vocabulary in the checkpoint); ::SGD_EFORMAT (another vocabulary,
 *         naming both sizes, or a section that is not a vocabulary); ::SGD_ENOMEM.
 * @since 0.2
 */
SGD_API sgd_status sgd_checkpoint_check_vocab(const sgd_ckpt_reader *r, const sgd_vocab *v);

/**
 * @brief Reads the vocabulary a checkpoint holds (its "vocab" section).
 * @param[out] out Receives the vocabulary; NULL on failure. Free with sgd_vocab_free().
 * @param r        An open reader.
 * @param alloc    Allocator for the vocabulary, or NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL argument); ::SGD_ENOTFOUND (no
 *         vocabulary in the checkpoint); ::SGD_EFORMAT (a section that is not
 *         a valid vocabulary, naming what is wrong); ::SGD_ENOMEM.
 * @since 0.2
 */
SGD_API sgd_status sgd_checkpoint_load_vocab(sgd_vocab **out, const sgd_ckpt_reader *r, const sgd_allocator *alloc);

#ifdef __cplusplus
}
#endif

#endif /* SGDLAB_CHECKPOINT_H */
