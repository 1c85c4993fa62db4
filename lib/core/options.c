/*
 * struct_size-versioned structs (libgit2's versioned options, SQLite's
 * iVersion): one way in (sgd__options_copy, sgd__vtable_copy), one way out
 * (sgd__struct_fill), one status for a size this library cannot take. The
 * copies themselves are in core/abi.h, shared with libsgdlab-mpi.
 * SPDX-License-Identifier: MIT
 */
#include "core/abi.h"

sgd_status sgd__options_copy(void *dst, size_t dst_size, const void *src, size_t min_size, const char *fn,
                             const char *what)
{
    if (src == NULL)
        return SGD_OK;
    return sgd__struct_in_with(sgd__err, dst, dst_size, src, min_size, false, fn, what);
}

sgd_status sgd__vtable_copy(void *dst, size_t dst_size, const void *src, size_t min_size, const char *fn,
                            const char *what)
{
    return sgd__struct_in_with(sgd__err, dst, dst_size, src, min_size, true, fn, what);
}

sgd_status sgd__struct_check(const void *dst, size_t min_size, const char *fn, const char *what)
{
    return sgd__struct_check_with(sgd__err, dst, min_size, fn, what);
}

sgd_status sgd__struct_fill(void *dst, const void *src, size_t src_size, size_t min_size, const char *fn,
                            const char *what)
{
    return sgd__struct_out_with(sgd__err, dst, src, src_size, min_size, fn, what);
}
