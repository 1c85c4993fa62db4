/*
 * libsgdlab internal helpers shared by every module. Never installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_CORE_INTERNAL_H
#define SGDLAB_CORE_INTERNAL_H

#include "sgdlab/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define SGD__PRINTF(f, a) __attribute__((format(printf, f, a)))
#define SGD__LIKELY(x) __builtin_expect(!!(x), 1)
#define SGD__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define SGD__PRINTF(f, a)
#define SGD__LIKELY(x) (x)
#define SGD__UNLIKELY(x) (x)
#endif

/** Alignment of every arena (parameters, gradients, optimizer state, buffers). */
#define SGD__ARENA_ALIGN 64

/* ---------------------------------------------------------------- errors */

/*
 * Records a message for sgd_error_last() on the calling thread and returns
 * `status`, so that a failure path reads `return sgd__err(SGD_EINVAL, "...")`.
 * Convention: start the message with the public function's name, then name the
 * argument/key/value/line, e.g. "sgd_optim_new: lr=-0.1: must be >= 0".
 */
sgd_status sgd__err(sgd_status status, const char *fmt, ...) SGD__PRINTF(2, 3);

/* Appends context in front of the current message: "prefix: <old message>". */
void sgd__err_prefix(const char *fmt, ...) SGD__PRINTF(1, 2);

/* ---------------------------------------------------------------- memory */

/*
 * Resolves the allocator given by a caller (NULL = libc) into `out`.
 * Returns SGD_EINVAL (with a message naming `fn`) if it is only partly set.
 */
sgd_status sgd__allocator_init(sgd_allocator *out, const sgd_allocator *in, const char *fn);

/* Thin wrappers; n == 0 is treated as 1. NULL on failure (no message set). */
void *sgd__malloc(const sgd_allocator *a, size_t n);
void *sgd__calloc(const sgd_allocator *a, size_t count, size_t size); /* overflow-checked */
void *sgd__realloc(const sgd_allocator *a, void *p, size_t n);
void sgd__free(const sgd_allocator *a, void *p); /* NULL ok */
char *sgd__strdup(const sgd_allocator *a, const char *s);

/*
 * 64-byte aligned, zero-filled block for arenas (overflow-checked count*size).
 * Blocks of 2 MiB or more are advised for transparent huge pages where the
 * system supports it. Free with sgd__free_aligned.
 */
void *sgd__alloc_aligned(const sgd_allocator *a, size_t count, size_t size);
void sgd__free_aligned(const sgd_allocator *a, void *p); /* NULL ok */

/* Checked arithmetic on sizes: false on overflow. */
static inline bool sgd__mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool sgd__add_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/* ---------------------------------------------------------------- options */

/*
 * struct_size-versioned public structs (core/abi.h has their first released
 * sizes, SGD__FIRST(type)). One rule everywhere: a struct_size smaller than
 * the first release is SGD_EINVAL with a message naming `fn` and `what`.
 */

/*
 * Input structs (options): copies the caller's `src` (NULL: keep `dst` as
 * is) over `dst`, which holds the defaults and is `dst_size` bytes: exactly
 * src->struct_size bytes are read. A struct_size below `min_size` (the first
 * released layout, SGD__FIRST(type)) or above `dst_size` (a program built
 * against newer headers, whose new members this library would ignore) is
 * refused with SGD_EINVAL. dst's own struct_size stays dst_size.
 */
sgd_status sgd__options_copy(void *dst, size_t dst_size, const void *src, size_t min_size, const char *fn,
                             const char *what);

/*
 * Input structs that are tables of functions (sgd_optim_vtable,
 * sgd_sched_vtable): as sgd__options_copy, except that a larger struct_size
 * is accepted and only `dst_size` bytes are read: the callbacks this library
 * does not know are not called (what sgd_optim_vtable promised in 0.1).
 * `src` must not be NULL.
 */
sgd_status sgd__vtable_copy(void *dst, size_t dst_size, const void *src, size_t min_size, const char *fn,
                            const char *what);

/*
 * Output structs (what a getter fills for its caller): checks the caller's
 * dst->struct_size against `min_size` (SGD__FIRST(type)), then copies the
 * first min(dst->struct_size, src_size) bytes of the library's complete
 * struct `src` into `dst`, except struct_size itself, which stays as the
 * caller set it. Bytes past src_size (members of a newer release) are not
 * touched. Nothing is written on failure.
 */
sgd_status sgd__struct_fill(void *dst, const void *src, size_t src_size, size_t min_size, const char *fn,
                            const char *what);

/* The check of sgd__struct_fill alone, for a getter that checks its arguments before its work. */
sgd_status sgd__struct_check(const void *dst, size_t min_size, const char *fn, const char *what);

/* ---------------------------------------------------------------- random */

/*
 * xoshiro256** seeded through splitmix64: fast, 2^256-1 period, and the same
 * stream on every platform, so runs are reproducible bit for bit. The state is
 * four uint64 words that checkpoints store as they are.
 */
typedef struct sgd__rng {
    uint64_t s[4];
} sgd__rng;

void sgd__rng_seed(sgd__rng *r, uint64_t seed);
uint64_t sgd__rng_next(sgd__rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double sgd__rng_uniform(sgd__rng *r);
/* Uniform in [0, 1) with 24 random bits (exactly representable in float). */
float sgd__rng_uniform_f(sgd__rng *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint64_t sgd__rng_below(sgd__rng *r, uint64_t n);
/* Standard normal (Box-Muller, no cached second value: stateless beyond s). */
double sgd__rng_normal(sgd__rng *r);

/* ---------------------------------------------------------------- specs */

/*
 * Textual specs such as "adam:lr=1e-3,beta2=0.99,amsgrad=1": a kind, then
 * optional ':' and comma-separated key=value pairs. Strings are not copied:
 * fields point into the caller's text.
 */
#define SGD__SPEC_MAX_KV 32

typedef struct sgd__str {
    const char *p;
    size_t n;
} sgd__str;

typedef struct sgd__kv {
    sgd__str key;
    sgd__str val;
    bool used; /* set by the sgd__spec_get_* helpers */
} sgd__kv;

typedef struct sgd__spec {
    sgd__str kind;
    sgd__kv kv[SGD__SPEC_MAX_KV];
    size_t n;
} sgd__spec;

/*
 * Splits `text` (length `len`; pass strlen) at the first ':' into kind and
 * pairs separated by `sep` (usually ','). Whitespace around tokens is
 * trimmed. Errors name `fn`: empty kind, a pair without '=', an empty key,
 * a repeated key, more than SGD__SPEC_MAX_KV pairs.
 */
sgd_status sgd__spec_split(sgd__spec *out, const char *text, size_t len, char sep, const char *fn);

bool sgd__str_eq(sgd__str s, const char *lit);
/* `p[0..n)` without leading and trailing whitespace. */
sgd__str sgd__str_trim(const char *p, size_t n);

/*
 * Strict number parsing, independent of the C locale: the whole token must be
 * a number ("1e-3", "0.99", "-2", "inf" only where allow_nonfinite).
 */
sgd_status sgd__parse_double(sgd__str s, bool allow_nonfinite, double *out);
sgd_status sgd__parse_int64(sgd__str s, int64_t *out);
/* "0", "1", "true", "false", "yes", "no" (case-insensitive). */
sgd_status sgd__parse_bool(sgd__str s, bool *out);

/*
 * Look up `key`; if present parse it into *out, mark it used and set *found.
 * Parse errors name `fn`, the key and the value. Absent keys leave *out as is.
 */
sgd_status sgd__spec_get_double(sgd__spec *sp, const char *key, double *out, const char *fn);
sgd_status sgd__spec_get_int64(sgd__spec *sp, const char *key, int64_t *out, const char *fn);
sgd_status sgd__spec_get_bool(sgd__spec *sp, const char *key, bool *out, const char *fn);
/* Raw value of `key` (marked used) or NULL-pointer str if absent. */
sgd__str sgd__spec_get_str(sgd__spec *sp, const char *key);

/* SGD_ENOTFOUND naming the first pair that no getter consumed, else SGD_OK. */
sgd_status sgd__spec_check_unused(const sgd__spec *sp, const char *fn);

#endif /* SGDLAB_CORE_INTERNAL_H */
