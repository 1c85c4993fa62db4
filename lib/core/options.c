/*
 * struct_size-versioned structs (libgit2's versioned options, SQLite's
 * iVersion): one way in (sgd__options_copy, sgd__vtable_copy), one way out
 * (sgd__struct_fill), one status for a size this library cannot take.
 * SPDX-License-Identifier: MIT
 */
#include "internal.h"

#include <string.h>

static uint32_t size_of(const void *s)
{
    uint32_t size;
    memcpy(&size, s, sizeof size);
    return size;
}

static sgd_status too_small(uint32_t size, size_t min_size, const char *fn, const char *what)
{
    return sgd__err(SGD_EINVAL,
                    "%s: %s: struct_size=%u is smaller than the struct's first release (%zu bytes); "
                    "initialise the struct with its _init function",
                    fn, what, (unsigned)size, min_size);
}

static sgd_status copy_in(void *dst, size_t dst_size, const void *src, size_t min_size, bool larger_ok,
                          const char *fn, const char *what)
{
    uint32_t size = size_of(src);
    if (size < min_size)
        return too_small(size, min_size, fn, what);
    if (size > dst_size && !larger_ok)
        return sgd__err(SGD_EINVAL,
                        "%s: %s: struct_size=%u is larger than this library's struct (%zu bytes): the program "
                        "was built against newer headers than the library it runs with",
                        fn, what, (unsigned)size, dst_size);
    memcpy(dst, src, size < dst_size ? size : dst_size);
    uint32_t own = (uint32_t)dst_size;
    memcpy(dst, &own, sizeof own);
    return SGD_OK;
}

sgd_status sgd__options_copy(void *dst, size_t dst_size, const void *src, size_t min_size, const char *fn,
                             const char *what)
{
    if (src == NULL)
        return SGD_OK;
    return copy_in(dst, dst_size, src, min_size, false, fn, what);
}

sgd_status sgd__vtable_copy(void *dst, size_t dst_size, const void *src, size_t min_size, const char *fn,
                            const char *what)
{
    return copy_in(dst, dst_size, src, min_size, true, fn, what);
}

sgd_status sgd__struct_check(const void *dst, size_t min_size, const char *fn, const char *what)
{
    uint32_t size = size_of(dst);
    return size < min_size ? too_small(size, min_size, fn, what) : SGD_OK;
}

sgd_status sgd__struct_fill(void *dst, const void *src, size_t src_size, size_t min_size, const char *fn,
                            const char *what)
{
    sgd_status st = sgd__struct_check(dst, min_size, fn, what);
    if (st != SGD_OK)
        return st;
    size_t size = size_of(dst);
    if (size > src_size)
        size = src_size;
    memcpy((char *)dst + sizeof(uint32_t), (const char *)src + sizeof(uint32_t), size - sizeof(uint32_t));
    return SGD_OK;
}
