/*
 * libsgdlab - train small neural networks and get the learning rate right.
 * SPDX-License-Identifier: MIT
 */
/**
 * @file core.h
 * @brief Status codes, error messages, allocators and version queries.
 *
 * Everything else in libsgdlab builds on this header:
 *
 * - every fallible function returns an ::sgd_status (::SGD_OK is 0, errors are
 *   negative), and on failure leaves a human-readable message for the calling
 *   thread that sgd_error_last() returns;
 * - every object takes an optional ::sgd_allocator when it is created (NULL means
 *   the C library's malloc/realloc/free); objects made from another inherit its
 *   allocator; there is no process-global allocator;
 * - the version of the headers (::SGD_VERSION_NUMBER) and of the library that was
 *   loaded (sgd_version_number()) can be compared at run time;
 * - public structs that may grow begin with @c uint32_t @c struct_size, set by
 *   their @c _init function: structs a caller passes in are read as far as their
 *   @c struct_size goes (a larger options struct, from newer headers, is refused),
 *   structs the library fills are filled as far as it goes and their
 *   @c struct_size is left alone, and a @c struct_size smaller than the struct's
 *   first release is ::SGD_EINVAL everywhere (see @ref versioned_structs).
 *
 * Thread rules: a handle is used by one thread at a time; distinct handles are
 * independent; the library keeps no mutable global state other than each thread's
 * last error message.
 */
#ifndef SGDLAB_CORE_H
#define SGDLAB_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/**
 * @def SGD_API
 * @brief Marks a declaration as part of the public, exported interface.
 *
 * The library is built with hidden symbol visibility; only declarations marked
 * with SGD_API are exported (and each is listed in the linker version script).
 */
#if defined(_WIN32) && defined(SGD_BUILDING_LIBRARY)
#define SGD_API __declspec(dllexport)
#elif defined(__GNUC__) && defined(SGD_BUILDING_LIBRARY)
#define SGD_API __attribute__((visibility("default")))
#else
#define SGD_API
#endif

/**
 * @def SGD_OUTPUT_INIT
 * @brief The body of every output struct's `_init` (a struct a getter fills):
 *        zeroes @p s and sets its @c struct_size to sizeof as these headers
 *        know it; nothing for NULL.
 *
 * Those `_init` functions are `static inline` in the headers, so that the
 * size they write is always the one the program was compiled with, whatever
 * library it runs against (see @ref versioned_structs).
 * @since 0.2
 */
#define SGD_OUTPUT_INIT(s)                                                                                   \
    do {                                                                                                     \
        if ((s) != NULL) {                                                                                   \
            memset((s), 0, sizeof *(s));                                                                     \
            (s)->struct_size = (uint32_t)sizeof *(s);                                                        \
        }                                                                                                    \
    } while (0)

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Major version of these headers; changes only with an ABI break. @since 0.1 */
#define SGD_VERSION_MAJOR 0
/** @brief Minor version of these headers; grows when API is added. @since 0.1 */
#define SGD_VERSION_MINOR 2
/** @brief Patch version of these headers; grows with fixes only. @since 0.1 */
#define SGD_VERSION_PATCH 0
/** @brief The version as one number, major * 10000 + minor * 100 + patch. @since 0.1 */
#define SGD_VERSION_NUMBER \
    (SGD_VERSION_MAJOR * 10000 + SGD_VERSION_MINOR * 100 + SGD_VERSION_PATCH)
/** @brief The version as a string, "major.minor.patch". @since 0.1 */
#define SGD_VERSION_STRING "0.2.0"

/**
 * @brief Status codes returned by every fallible function.
 *
 * The values are part of the ABI: they are explicit and never renumbered; new
 * codes are only ever appended. sgd_status_str() names each one, and
 * sgd_error_last() gives the detail of the last failure on the calling thread.
 * @since 0.1
 */
typedef enum sgd_status {
    SGD_OK = 0,            /**< Success. */
    SGD_EINVAL = -1,       /**< An argument is invalid: NULL, malformed or out of its domain; also a struct whose @c struct_size this library cannot take (see @ref versioned_structs). */
    SGD_ENOMEM = -2,       /**< An allocation failed; nothing was changed. */
    SGD_ESHAPE = -3,       /**< Shapes or sizes of the arguments do not match. */
    SGD_ERANGE = -4,       /**< A value is outside its allowed range (a negative learning rate, a beta of 1...). */
    SGD_ENONFINITE = -5,   /**< A NaN or infinity where a finite number is required. */
    SGD_EIO = -6,          /**< Reading or writing a file failed. */
    SGD_EFORMAT = -7,      /**< A file or buffer is malformed, truncated or corrupt. */
    SGD_EVERSION = -8,     /**< A file or structure has a version this library does not support (a struct's @c struct_size is ::SGD_EINVAL). */
    SGD_ESTATE = -9,       /**< The call is not valid in the object's current state. */
    SGD_EOVERFLOW = -10,   /**< A size computation overflows or exceeds a documented cap. */
    SGD_ENOTFOUND = -11,   /**< A name (key, parameter, kind, file) is unknown. */
    SGD_EUNSUPPORTED = -12,/**< The feature is not available in this build or for this object. */
    SGD_ECALLBACK = -13,   /**< A host callback reported a failure. */
    SGD_EDIVERGED = -14,   /**< Training diverged and could not be rescued. */
    SGD_ECANCELED = -15,   /**< A host callback asked to stop. */
    SGD_EINTERNAL = -16    /**< An internal invariant failed (a bug in libsgdlab; please report it). */
} sgd_status;

/**
 * @brief The name and meaning of a status code, e.g. "SGD_EINVAL: invalid argument".
 *
 * @param status Any integer; values that are not status codes give
 *               "unknown status".
 * @return A static string; never NULL. Thread-safe.
 * @since 0.1
 */
SGD_API const char *sgd_status_str(int status);

/**
 * @brief The message of the last failure on the calling thread.
 *
 * Every function that returns an error status first writes a message that names
 * the function and the problem (which argument, which key and value, which line
 * of which file). The message belongs to the calling thread and stays until the
 * next failure on that thread or sgd_error_clear(); successful calls do not
 * clear it.
 *
 * @return A thread-local, NUL-terminated string owned by the library, valid until
 *         the thread's next libsgdlab call; "" when there was no failure. Never NULL.
 * @since 0.1
 */
SGD_API const char *sgd_error_last(void);

/**
 * @brief Clears the calling thread's last error message.
 * @since 0.1
 */
SGD_API void sgd_error_clear(void);

/**
 * @brief Sets the calling thread's error message, for code that fails on the
 *        library's behalf: a host callback that returns an error status (an
 *        allreduce, an objective, a host optimizer), or a library built on
 *        libsgdlab (libsgdlab-mpi), so that the caller reads the reason with
 *        sgd_error_last() like any other.
 * @param status  The status being returned (passed through).
 * @param message The message (copied, truncated to the buffer's 1023 bytes);
 *                NULL clears it.
 * @return @p status.
 * @since 0.2
 */
SGD_API int sgd_error_set(int status, const char *message);

/**
 * @brief A memory allocator supplied by the host.
 *
 * Passed (by pointer, may be NULL for the C library's functions) to every
 * function that creates an object; the object keeps a copy and uses it for all
 * its memory until it is freed. All three functions must be set. @c malloc_fn
 * must return memory aligned for any standard type (as malloc does), or NULL on
 * failure; the library aligns its large arrays itself. The functions may be
 * called from whichever thread uses the object.
 * @since 0.1
 */
typedef struct sgd_allocator {
    /** Allocates @p size bytes (size > 0); returns NULL on failure. */
    void *(*malloc_fn)(size_t size, void *user);
    /** Resizes a block from this allocator to @p size bytes (size > 0); returns NULL on failure, leaving @p ptr valid. */
    void *(*realloc_fn)(void *ptr, size_t size, void *user);
    /** Frees a block from this allocator; never called with NULL. */
    void (*free_fn)(void *ptr, void *user);
    /** Passed unchanged as the last argument of the three functions. */
    void *user;
} sgd_allocator;

/**
 * @brief The version of the library that is running, as ::SGD_VERSION_NUMBER
 *        computes it (compare with the headers' ::SGD_VERSION_NUMBER).
 * @return major * 10000 + minor * 100 + patch.
 * @since 0.1
 */
SGD_API uint32_t sgd_version_number(void);

/**
 * @brief The version of the library that is running, as a string.
 * @return A static string such as "0.1.0"; never NULL.
 * @since 0.1
 */
SGD_API const char *sgd_version_string(void);

#ifdef __cplusplus
}
#endif

#endif /* SGDLAB_CORE_H */
