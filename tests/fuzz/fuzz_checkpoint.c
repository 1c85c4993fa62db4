/*
 * libFuzzer harness for the checkpoint reader (sgd_ckpt_reader_open_memory).
 *
 * Each input is opened twice: as a host would (checksums verified), and with
 * checksum verification off, so that mutations that break a CRC still reach
 * the accessors. Whatever opens is then exercised through the whole reading
 * API, checked against invariants the validation promises (offsets aligned
 * and inside the input, sizes consistent with shapes, lookups by name agree
 * with lookups by index, reading a tensor with its own shape succeeds and
 * with another fails), and rewritten with the writer: the rewritten file must
 * open, hold the same bytes, and be no larger. A broken invariant traps.
 *
 * Built by -Dfuzzers=true with clang (-fsanitize=fuzzer,address,undefined);
 * replay.c feeds the committed corpus to the same function under any
 * compiler in `meson test`.
 * SPDX-License-Identifier: MIT
 */
#include "io/ckpt_internal.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                                       \
    do {                                                                                                               \
        if (!(x))                                                                                                      \
            __builtin_trap();                                                                                          \
    } while (0)

static void rewrite(const sgd_ckpt_reader *r, size_t size)
{
    sgd_ckpt_writer *w;
    CHECK(sgd_ckpt_writer_new(&w, NULL) == SGD_OK);
    size_t nsec = sgd_ckpt_reader_section_count(r);
    for (size_t s = 0; s < nsec; s++) {
        sgd_ckpt_section_info si = {.struct_size = sizeof si};
        CHECK(sgd_ckpt_reader_section_info(r, s, &si) == SGD_OK);
        CHECK(sgd_ckpt_writer_begin_section(w, si.name, si.flags) == SGD_OK);
        for (size_t t = 0; t < si.tensor_count; t++) {
            sgd_ckpt_tensor_info ti = {.struct_size = sizeof ti};
            CHECK(sgd_ckpt_reader_tensor_info(r, s, t, &ti) == SGD_OK);
            if (sgd_ckpt_dtype_size(ti.dtype) == 0)
                continue; /* a dtype of a newer minor version: the writer cannot produce it */
            const void *p;
            CHECK(sgd_ckpt_reader_tensor_data(r, si.name, ti.name, &p, NULL) == SGD_OK);
#if SGD__BIG_ENDIAN
            continue; /* the stored bytes are little-endian, the writer expects host order */
#endif
            CHECK(sgd_ckpt_writer_add_tensor(w, ti.name, ti.dtype, ti.rank, ti.dims, p) == SGD_OK);
        }
    }
    uint64_t n;
    CHECK(sgd_ckpt_writer_size(w, &n) == SGD_OK);
    CHECK(n <= size); /* the writer's layout has no slack */
    unsigned char *b = malloc(n ? (size_t)n : 1);
    CHECK(b != NULL);
    CHECK(sgd_ckpt_writer_write_memory(w, b, (size_t)n) == SGD_OK);
    sgd_ckpt_reader *r2;
    CHECK(sgd_ckpt_reader_open_memory(&r2, b, (size_t)n, NULL) == SGD_OK);
    CHECK(sgd_ckpt_reader_section_count(r2) == nsec);
    for (size_t s = 0; s < nsec; s++) {
        sgd_ckpt_section_info si = {.struct_size = sizeof si};
        CHECK(sgd_ckpt_reader_section_info(r, s, &si) == SGD_OK);
        for (size_t t = 0; t < si.tensor_count; t++) {
            sgd_ckpt_tensor_info ti = {.struct_size = sizeof ti}, t2 = {.struct_size = sizeof t2};
            CHECK(sgd_ckpt_reader_tensor_info(r, s, t, &ti) == SGD_OK);
            if (sgd_ckpt_dtype_size(ti.dtype) == 0)
                continue;
            CHECK(sgd_ckpt_reader_find_tensor(r2, si.name, ti.name, &t2) == SGD_OK);
            CHECK(t2.dtype == ti.dtype && t2.rank == ti.rank && t2.nbytes == ti.nbytes);
            CHECK(memcmp(t2.dims, ti.dims, sizeof ti.dims) == 0);
            const void *a, *c;
            CHECK(sgd_ckpt_reader_tensor_data(r, si.name, ti.name, &a, NULL) == SGD_OK);
            CHECK(sgd_ckpt_reader_tensor_data(r2, si.name, ti.name, &c, NULL) == SGD_OK);
            CHECK(ti.nbytes == 0 || memcmp(a, c, (size_t)ti.nbytes) == 0);
        }
    }
    sgd_ckpt_reader_free(r2);
    free(b);
    sgd_ckpt_writer_free(w);
}

static void exercise(const sgd_ckpt_reader *r, const uint8_t *data, size_t size)
{
    uint32_t major, minor;
    CHECK(sgd_ckpt_reader_version(r, &major, &minor) == SGD_OK && major == SGD_CKPT_FORMAT_MAJOR);
    CHECK(sgd_ckpt_reader_file_size(r) == size);
    size_t nsec = sgd_ckpt_reader_section_count(r);
    CHECK(nsec <= SGD_CKPT_MAX_SECTIONS);
    uint64_t prev_end = 0, total = 0;
    for (size_t s = 0; s < nsec; s++) {
        sgd_ckpt_section_info si = {.struct_size = sizeof si};
        CHECK(sgd_ckpt_reader_section_info(r, s, &si) == SGD_OK);
        CHECK(si.offset % SGD_CKPT_ALIGN == 0 && si.offset >= prev_end && si.size <= size - si.offset);
        prev_end = si.offset + si.size;
        size_t idx;
        CHECK(sgd_ckpt_reader_find_section(r, si.name, &idx) == SGD_OK && idx == s);
        total += si.tensor_count;
        uint64_t t_end = si.offset;
        for (size_t t = 0; t < si.tensor_count; t++) {
            sgd_ckpt_tensor_info ti = {.struct_size = sizeof ti}, byname = {.struct_size = sizeof byname};
            CHECK(sgd_ckpt_reader_tensor_info(r, s, t, &ti) == SGD_OK);
            CHECK(sgd_ckpt_reader_find_tensor(r, si.name, ti.name, &byname) == SGD_OK);
            CHECK(byname.offset == ti.offset && byname.nbytes == ti.nbytes);
            CHECK(ti.rank <= SGD_CKPT_MAX_RANK && ti.offset % SGD_CKPT_ALIGN == 0 && ti.offset >= t_end);
            CHECK(ti.offset + ti.nbytes <= si.offset + si.size);
            t_end = ti.offset + ti.nbytes;
            const void *p;
            uint64_t nb;
            CHECK(sgd_ckpt_reader_tensor_data(r, si.name, ti.name, &p, &nb) == SGD_OK);
            CHECK(nb == ti.nbytes && (const uint8_t *)p >= data && (const uint8_t *)p + nb <= data + size);
            size_t es = sgd_ckpt_dtype_size(ti.dtype);
            if (es == 0) {
                int64_t d[1] = {1};
                CHECK(sgd_ckpt_reader_check_tensor(r, si.name, ti.name, SGD_CKPT_U8, 1, d) == SGD_ESHAPE);
                continue;
            }
            CHECK(ti.count * es == ti.nbytes);
            void *dst = malloc(ti.nbytes ? (size_t)ti.nbytes : 1);
            CHECK(dst != NULL);
            CHECK(sgd_ckpt_reader_read_tensor(r, si.name, ti.name, ti.dtype, ti.rank, ti.dims, dst,
                                              (size_t)ti.nbytes) == SGD_OK);
            CHECK(ti.nbytes == 0 || memcmp(dst, p, (size_t)ti.nbytes) == 0 || SGD__BIG_ENDIAN);
            if (ti.nbytes > 0)
                CHECK(sgd_ckpt_reader_read_tensor(r, si.name, ti.name, ti.dtype, ti.rank, ti.dims, dst,
                                                  (size_t)ti.nbytes - 1) == SGD_ESHAPE);
            int other = ti.dtype == SGD_CKPT_U8 ? SGD_CKPT_F32 : SGD_CKPT_U8;
            CHECK(sgd_ckpt_reader_check_tensor(r, si.name, ti.name, other, ti.rank, ti.dims) == SGD_ESHAPE);
            if (ti.rank < SGD_CKPT_MAX_RANK) {
                int64_t d[SGD_CKPT_MAX_RANK];
                memcpy(d, ti.dims, sizeof d);
                d[ti.rank] = 1;
                CHECK(sgd_ckpt_reader_check_tensor(r, si.name, ti.name, ti.dtype, ti.rank + 1, d) == SGD_ESHAPE);
            }
            if (ti.rank == 0 && ti.dtype == SGD_CKPT_I64) {
                int64_t v;
                CHECK(sgd_ckpt_reader_read_i64(r, si.name, ti.name, &v) == SGD_OK);
            }
            free(dst);
        }
    }
    CHECK(total <= SGD_CKPT_MAX_TENSORS);
    CHECK(prev_end <= size);
    sgd_status st = sgd_ckpt_reader_check_sections(r, NULL, 0);
    CHECK(st == SGD_OK || st == SGD_EVERSION);
    rewrite(r, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int verify = 1; verify >= 0; verify--) {
        sgd_ckpt_reader *r = (sgd_ckpt_reader *)&r;
        sgd_error_clear();
        sgd_status st = sgd__ckpt_open_memory_ex(&r, data, size, NULL, verify);
        if (st != SGD_OK) {
            CHECK(r == NULL);
            CHECK(st == SGD_EFORMAT || st == SGD_EVERSION || st == SGD_EOVERFLOW);
            CHECK(sgd_error_last()[0] != '\0');
            if (st == SGD_EVERSION || !verify)
                break; /* the same without verification */
            continue;
        }
        exercise(r, data, size);
        sgd_ckpt_reader_free(r);
        if (verify)
            break; /* valid as it is: nothing more to reach */
    }
    return 0;
}
