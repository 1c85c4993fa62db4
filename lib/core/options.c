/* Versioned option structs (libgit2-style struct_size). SPDX-License-Identifier: MIT */
#include "internal.h"

#include <string.h>

sgd_status sgd__options_copy(void *dst, size_t dst_size, const void *src, size_t min_size, const char *fn,
                             const char *what)
{
    if (src == NULL)
        return SGD_OK;
    uint32_t size;
    memcpy(&size, src, sizeof size);
    if (size < min_size || size > dst_size)
        return sgd__err(SGD_EINVAL,
                        "%s: %s: struct_size=%u is not a size this library knows (%zu..%zu); "
                        "initialise the struct with its _init function",
                        fn, what, (unsigned)size, min_size, dst_size);
    memcpy(dst, src, size);
    uint32_t own = (uint32_t)dst_size;
    memcpy(dst, &own, sizeof own);
    return SGD_OK;
}
