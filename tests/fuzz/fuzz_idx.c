/*
 * libFuzzer harness for the IDX reader (sgd_idx_read_memory, raw or gzip).
 *
 * Whatever decodes is checked against what the format allows: a type of the
 * enum, rank 1 to SGD_IDX_MAX_RANK, every dimension >= 1, the element count
 * equal to their product, 64-byte aligned data that is read in full (so that
 * AddressSanitizer sees a short buffer), a raw input exactly as long as its
 * header says, a gzip input no smaller than deflate's maximum ratio allows.
 * Refusals must leave the out-parameter NULL and a message. A broken
 * invariant traps.
 *
 * Built only when the library has sgd_idx_read_memory (sgdlab/data.h, the
 * model/data module); replay.c runs the seed corpus in `meson test`.
 * SPDX-License-Identifier: MIT
 */
#include "sgdlab/sgdlab.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                                       \
    do {                                                                                                               \
        if (!(x))                                                                                                      \
            __builtin_trap();                                                                                          \
    } while (0)

static size_t elem_size(int32_t type)
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sgd_idx *a = (sgd_idx *)&a;
    sgd_error_clear();
    sgd_status st = sgd_idx_read_memory(&a, data, size, NULL);
    if (st != SGD_OK) {
        CHECK(a == NULL);
        CHECK(st == SGD_EFORMAT || st == SGD_EOVERFLOW || st == SGD_ENOMEM);
        CHECK(sgd_error_last()[0] != '\0');
        return 0;
    }
    int32_t type = sgd_idx_type(a), rank = sgd_idx_rank(a);
    size_t es = elem_size(type);
    CHECK(es != 0);
    CHECK(rank >= 1 && rank <= SGD_IDX_MAX_RANK);
    uint64_t count = 1;
    for (int32_t i = 0; i < rank; i++) {
        int64_t d = sgd_idx_dim(a, i);
        CHECK(d >= 1);
        CHECK(!__builtin_mul_overflow(count, (uint64_t)d, &count));
    }
    CHECK(sgd_idx_dim(a, rank) == 0 && sgd_idx_dim(a, -1) == 0);
    CHECK(sgd_idx_count(a) >= 0 && (uint64_t)sgd_idx_count(a) == count);
    uint64_t bytes = count * es;
    bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (gz)
        CHECK(bytes / 1032 <= size);
    else
        CHECK(bytes + 4 + 4 * (uint64_t)rank == size);
    const unsigned char *p = sgd_idx_data(a);
    CHECK(p != NULL && (uintptr_t)p % 64 == 0);
    unsigned sum = 0;
    for (uint64_t i = 0; i < bytes; i++) /* every byte: a short block shows under ASan */
        sum += p[i];
    if (!gz && type == SGD_IDX_UINT8)
        CHECK(bytes == 0 || memcmp(p, data + 4 + 4 * (size_t)rank, (size_t)bytes) == 0);
    (void)sum;
    sgd_idx_free(a);
    return 0;
}
