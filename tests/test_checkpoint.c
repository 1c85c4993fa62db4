/*
 * Tests of the checkpoint module: CRC-32C, round trips through memory and
 * files, API misuse, a damage corpus (truncation at every byte, every bit
 * flipped, lying sizes and offsets with valid checksums), allocation and I/O
 * failure walks over save and load, writers killed at every I/O call and at
 * random moments, stale temporary files, and the committed fuzz corpus.
 * SPDX-License-Identifier: MIT
 */
#include "util/sgdtest.h"

#include "io/ckpt_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *corpus_dir; /* argv[1]: tests/fuzz/corpus/checkpoint */
static char work_dir[256];     /* a scratch directory made by the group setup */

/* ------------------------------------------------------------- helpers */

static char *wpath(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", work_dir, name);
    return buf[k];
}

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *n = 0;
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    assert_non_null(b);
    *n = fread(b, 1, (size_t)len, f);
    assert_int_equal(*n, (size_t)len);
    fclose(f);
    return b;
}

static void write_file(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static bool file_equals(const char *path, const void *b, size_t n)
{
    size_t m;
    unsigned char *x = read_file(path, &m);
    bool eq = x != NULL && m == n && memcmp(x, b, n) == 0;
    free(x);
    return eq;
}

/* Number of temporary files (".NAME.sgdtmp-*") in the work directory. */
static int count_temps(void)
{
    DIR *d = opendir(work_dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".sgdtmp-") != NULL)
            n++;
    closedir(d);
    return n;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* ------------------------------------------------------- a sample file */

typedef struct sample {
    float w0[3][4];
    float b0[3];
    double w1[2][3];
    float m[12];
    uint64_t rng[4];
    unsigned char tag[5];
    int32_t ints[2][2][2];
} sample;

static void sample_init(sample *s, int variant)
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            s->w0[i][j] = (float)(i * 4 + j) * 0.25f - 1.0f + (float)variant;
    for (int i = 0; i < 3; i++)
        s->b0[i] = -0.5f * (float)i;
    s->b0[2] = NAN; /* payloads survive */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            s->w1[i][j] = 1.0 / (1 + i * 3 + j);
    for (int i = 0; i < 12; i++)
        s->m[i] = (float)i * 1e-3f;
    s->rng[0] = 0x0123456789abcdefull;
    s->rng[1] = 0xfedcba9876543210ull;
    s->rng[2] = 42 + (uint64_t)variant;
    s->rng[3] = UINT64_MAX;
    memcpy(s->tag, "adam!", 5);
    for (int i = 0; i < 8; i++)
        s->ints[i / 4][(i / 2) % 2][i % 2] = -i * 1000;
}

/* Builds the sample writer: 4 sections, 10 tensors, every dtype, rank 0..3, an empty tensor and section. */
static sgd_status sample_writer(sgd_ckpt_writer **out, const sample *s, const sgd_allocator *a)
{
    sgd_ckpt_writer *w;
    sgd_status st = sgd_ckpt_writer_new(&w, a);
    if (st != SGD_OK)
        return st;
    const int64_t d34[] = {3, 4}, d3[] = {3}, d23[] = {2, 3}, d12[] = {12}, d4[] = {4}, d5[] = {5}, d0[] = {0, 7},
                  d222[] = {2, 2, 2};
#define TRY(x)                                                                                                         \
    do {                                                                                                               \
        if ((st = (x)) != SGD_OK)                                                                                      \
            goto fail;                                                                                                 \
    } while (0)
    TRY(sgd_ckpt_writer_begin_section(w, "model", SGD_CKPT_SECTION_REQUIRED));
    TRY(sgd_ckpt_writer_add_tensor(w, "0.weight", SGD_CKPT_F32, 2, d34, s->w0));
    TRY(sgd_ckpt_writer_add_tensor(w, "0.bias", SGD_CKPT_F32, 1, d3, s->b0));
    TRY(sgd_ckpt_writer_add_tensor(w, "1.weight", SGD_CKPT_F64, 2, d23, s->w1));
    TRY(sgd_ckpt_writer_begin_section(w, "optim", 0));
    TRY(sgd_ckpt_writer_add_i64(w, "step", 1234567890123ll));
    TRY(sgd_ckpt_writer_add_tensor_copy(w, "m", SGD_CKPT_F32, 1, d12, s->m));
    TRY(sgd_ckpt_writer_add_tensor(w, "empty", SGD_CKPT_F32, 2, d0, NULL));
    TRY(sgd_ckpt_writer_begin_section(w, "empty-section", 0));
    TRY(sgd_ckpt_writer_begin_section(w, "trainer", SGD_CKPT_SECTION_REQUIRED));
    TRY(sgd_ckpt_writer_add_tensor(w, "rng", SGD_CKPT_U64, 1, d4, s->rng));
    TRY(sgd_ckpt_writer_add_f64(w, "lr", 0.1));
    TRY(sgd_ckpt_writer_add_tensor_copy(w, "tag", SGD_CKPT_U8, 1, d5, s->tag));
    TRY(sgd_ckpt_writer_add_tensor(w, "ints", SGD_CKPT_I32, 3, d222, s->ints));
#undef TRY
    *out = w;
    return SGD_OK;
fail:
    sgd_ckpt_writer_free(w);
    *out = NULL;
    return st;
}

static unsigned char *sample_bytes(int variant, size_t *n)
{
    sample s;
    sample_init(&s, variant);
    sgd_ckpt_writer *w;
    sgdt_assert_status(sample_writer(&w, &s, NULL), SGD_OK);
    uint64_t size;
    sgdt_assert_status(sgd_ckpt_writer_size(w, &size), SGD_OK);
    unsigned char *b = malloc((size_t)size);
    assert_non_null(b);
    sgdt_assert_status(sgd_ckpt_writer_write_memory(w, b, (size_t)size), SGD_OK);
    sgd_ckpt_writer_free(w);
    *n = (size_t)size;
    return b;
}

/* Checks that a reader holds exactly the sample (variant). */
static sgd_status sample_verify(const sgd_ckpt_reader *r, int variant)
{
    sample want, got;
    sample_init(&want, variant);
    memset(&got, 0xAB, sizeof got);
    const int64_t d34[] = {3, 4}, d3[] = {3}, d23[] = {2, 3}, d12[] = {12}, d4[] = {4}, d5[] = {5}, d0[] = {0, 7},
                  d222[] = {2, 2, 2};
    sgd_status st;
    int64_t step = 0;
    double lr = 0;
    if ((st = sgd_ckpt_reader_read_tensor(r, "model", "0.weight", SGD_CKPT_F32, 2, d34, got.w0, sizeof got.w0)) ||
        (st = sgd_ckpt_reader_read_tensor(r, "model", "0.bias", SGD_CKPT_F32, 1, d3, got.b0, sizeof got.b0)) ||
        (st = sgd_ckpt_reader_read_tensor(r, "model", "1.weight", SGD_CKPT_F64, 2, d23, got.w1, sizeof got.w1)) ||
        (st = sgd_ckpt_reader_read_tensor(r, "optim", "m", SGD_CKPT_F32, 1, d12, got.m, sizeof got.m)) ||
        (st = sgd_ckpt_reader_read_tensor(r, "optim", "empty", SGD_CKPT_F32, 2, d0, NULL, 0)) ||
        (st = sgd_ckpt_reader_read_tensor(r, "trainer", "rng", SGD_CKPT_U64, 1, d4, got.rng, sizeof got.rng)) ||
        (st = sgd_ckpt_reader_read_tensor(r, "trainer", "tag", SGD_CKPT_U8, 1, d5, got.tag, sizeof got.tag)) ||
        (st = sgd_ckpt_reader_read_tensor(r, "trainer", "ints", SGD_CKPT_I32, 3, d222, got.ints,
                                          sizeof got.ints)) ||
        (st = sgd_ckpt_reader_read_i64(r, "optim", "step", &step)) ||
        (st = sgd_ckpt_reader_read_f64(r, "trainer", "lr", &lr)))
        return st;
    if (memcmp(got.w0, want.w0, sizeof want.w0) || memcmp(got.b0, want.b0, sizeof want.b0) ||
        memcmp(got.w1, want.w1, sizeof want.w1) || memcmp(got.m, want.m, sizeof want.m) ||
        memcmp(got.rng, want.rng, sizeof want.rng) || memcmp(got.tag, want.tag, sizeof want.tag) ||
        memcmp(got.ints, want.ints, sizeof want.ints) || step != 1234567890123ll || lr != 0.1)
        return sgd__err(SGD_EINTERNAL, "sample_verify: contents differ");
    return SGD_OK;
}

/* ------------------------------------------------------------------ CRC */

static void test_crc32c(void **state)
{
    (void)state;
    /* The standard check value, and the iSCSI test vectors of RFC 3720 B.4. */
    assert_int_equal(sgd__crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(sgd__crc32c_sw(0, "123456789", 9), 0xE3069283u);
    unsigned char v[32];
    memset(v, 0, 32);
    assert_int_equal(sgd__crc32c_sw(0, v, 32), 0x8A9136AAu);
    memset(v, 0xFF, 32);
    assert_int_equal(sgd__crc32c_sw(0, v, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        v[i] = (unsigned char)i;
    assert_int_equal(sgd__crc32c_sw(0, v, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        v[i] = (unsigned char)(31 - i);
    assert_int_equal(sgd__crc32c_sw(0, v, 32), 0x113FDB5Cu);
    assert_int_equal(sgd__crc32c(0, NULL, 0), 0);

    /* Hardware and tables agree on every length and alignment; chaining works. */
    unsigned char buf[1100];
    uint64_t x = 1;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (unsigned char)(x >> 56);
    }
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += (n < 40 ? 1 : 37)) {
            uint32_t sw = sgd__crc32c_sw(0, buf + off, n);
            assert_int_equal(sgd__crc32c_hw(0, buf + off, n), sw);
            size_t half = n / 3;
            assert_int_equal(sgd__crc32c(sgd__crc32c(0, buf + off, half), buf + off + half, n - half), sw);
        }
    print_message("# CRC-32C: SSE4.2 instruction %s\n", sgd__crc32c_hw_available() ? "used" : "not available");
}

static void test_dtypes(void **state)
{
    (void)state;
    const int all[] = {SGD_CKPT_F32, SGD_CKPT_F64, SGD_CKPT_I32, SGD_CKPT_I64, SGD_CKPT_U8, SGD_CKPT_U64};
    const size_t sizes[] = {4, 8, 4, 8, 1, 8};
    const char *names[] = {"f32", "f64", "i32", "i64", "u8", "u64"};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(sgd_ckpt_dtype_size(all[i]), sizes[i]);
        assert_string_equal(sgd_ckpt_dtype_name(all[i]), names[i]);
    }
    assert_int_equal(SGD_CKPT_F32, 1);
    assert_int_equal(SGD_CKPT_U64, 6);
    assert_int_equal(sgd_ckpt_dtype_size(0), 0);
    assert_int_equal(sgd_ckpt_dtype_size(7), 0);
    assert_string_equal(sgd_ckpt_dtype_name(-3), "unknown");
}

/* ---------------------------------------------------------- round trips */

static void test_roundtrip_memory(void **state)
{
    (void)state;
    size_t n;
    unsigned char *b = sample_bytes(0, &n);
    assert_memory_equal(b, SGD__CKPT_SIGNATURE, 8);
    sgd_ckpt_reader *r;
    sgdt_assert_status(sgd_ckpt_reader_open_memory(&r, b, n, NULL), SGD_OK);
    sgdt_assert_status(sample_verify(r, 0), SGD_OK);

    uint32_t major = 0, minor = 9;
    sgdt_assert_status(sgd_ckpt_reader_version(r, &major, &minor), SGD_OK);
    assert_int_equal(major, 1);
    assert_int_equal(minor, 0);
    assert_int_equal(sgd_ckpt_reader_file_size(r), n);
    assert_int_equal(sgd_ckpt_reader_section_count(r), 4);

    const char *secs[] = {"model", "optim", "empty-section", "trainer"};
    const uint64_t counts[] = {3, 3, 0, 4};
    uint64_t prev_end = 0;
    for (size_t i = 0; i < 4; i++) {
        sgd_ckpt_section_info si = {.struct_size = sizeof si};
        sgdt_assert_status(sgd_ckpt_reader_section_info(r, i, &si), SGD_OK);
        assert_string_equal(si.name, secs[i]);
        assert_int_equal(si.tensor_count, counts[i]);
        assert_int_equal(si.flags, i == 0 || i == 3 ? SGD_CKPT_SECTION_REQUIRED : 0);
        assert_int_equal(si.offset % 64, 0);
        assert_true(si.offset >= prev_end);
        assert_int_equal(si.crc32c, sgd__crc32c(0, b + si.offset, (size_t)si.size));
        prev_end = si.offset + si.size;
        size_t idx = 99;
        sgdt_assert_status(sgd_ckpt_reader_find_section(r, secs[i], &idx), SGD_OK);
        assert_int_equal(idx, i);
    }
    assert_int_equal(prev_end, n);

    sgd_ckpt_tensor_info ti = {.struct_size = sizeof ti};
    sgdt_assert_status(sgd_ckpt_reader_find_tensor(r, "model", "0.weight", &ti), SGD_OK);
    assert_int_equal(ti.dtype, SGD_CKPT_F32);
    assert_int_equal(ti.rank, 2);
    assert_int_equal(ti.dims[0], 3);
    assert_int_equal(ti.dims[1], 4);
    assert_int_equal(ti.dims[2], 0);
    assert_int_equal(ti.count, 12);
    assert_int_equal(ti.nbytes, 48);
    assert_string_equal(ti.section, "model");
    assert_int_equal(ti.struct_size, sizeof ti);
    sgdt_assert_status(sgd_ckpt_reader_tensor_info(r, 3, 1, &ti), SGD_OK);
    assert_string_equal(ti.name, "lr");
    assert_int_equal(ti.rank, 0);
    assert_int_equal(ti.count, 1);
    sgdt_assert_status(sgd_ckpt_reader_tensor_info(r, 1, 2, &ti), SGD_OK);
    assert_string_equal(ti.name, "empty");
    assert_int_equal(ti.count, 0);
    assert_int_equal(ti.nbytes, 0);

    const void *data;
    uint64_t nb;
    sgdt_assert_status(sgd_ckpt_reader_tensor_data(r, "trainer", "tag", &data, &nb), SGD_OK);
    assert_int_equal(nb, 5);
    assert_memory_equal(data, "adam!", 5);

    /* Sections the caller knows or that are optional pass; an unknown required one does not. */
    const char *known[] = {"model", "trainer"};
    sgdt_assert_status(sgd_ckpt_reader_check_sections(r, known, 2), SGD_OK);
    sgdt_assert_status(sgd_ckpt_reader_check_sections(r, known, 1), SGD_EVERSION);
    sgdt_assert_error_contains("required section 'trainer'");
    sgd_ckpt_reader_free(r);

    /* Writing is deterministic and the writer can be written again. */
    size_t n2;
    unsigned char *b2 = sample_bytes(0, &n2);
    assert_int_equal(n, n2);
    assert_memory_equal(b, b2, n);
    free(b2);
    free(b);
}

static void test_borrowed_data_read_at_write_time(void **state)
{
    (void)state;
    float v[4] = {1, 2, 3, 4};
    const int64_t d[] = {4};
    sgd_ckpt_writer *w;
    sgdt_assert_status(sgd_ckpt_writer_new(&w, NULL), SGD_OK);
    sgdt_assert_status(sgd_ckpt_writer_begin_section(w, "s", 0), SGD_OK);
    sgdt_assert_status(sgd_ckpt_writer_add_tensor(w, "borrowed", SGD_CKPT_F32, 1, d, v), SGD_OK);
    sgdt_assert_status(sgd_ckpt_writer_add_tensor_copy(w, "copied", SGD_CKPT_F32, 1, d, v), SGD_OK);
    v[0] = 100; /* after adding, before writing */
    uint64_t size;
    sgdt_assert_status(sgd_ckpt_writer_size(w, &size), SGD_OK);
    unsigned char *b = malloc((size_t)size);
    sgdt_assert_status(sgd_ckpt_writer_write_memory(w, b, (size_t)size), SGD_OK);
    sgd_ckpt_reader *r;
    sgdt_assert_status(sgd_ckpt_reader_open_memory(&r, b, (size_t)size, NULL), SGD_OK);
    float got[4];
    sgdt_assert_status(sgd_ckpt_reader_read_tensor(r, "s", "borrowed", SGD_CKPT_F32, 1, d, got, sizeof got), SGD_OK);
    assert_true(got[0] == 100);
    sgdt_assert_status(sgd_ckpt_reader_read_tensor(r, "s", "copied", SGD_CKPT_F32, 1, d, got, sizeof got), SGD_OK);
    assert_true(got[0] == 1);
    sgd_ckpt_reader_free(r);
    free(b);
    sgd_ckpt_writer_free(w);
}

static void test_roundtrip_file(void **state)
{
    (void)state;
    /* The sample, and a 3 MiB tensor that spans several write chunks. */
    size_t big_n = 786433;
    float *big = malloc(big_n * sizeof *big);
    for (size_t i = 0; i < big_n; i++)
        big[i] = (float)i * 0.5f;
    sample s;
    sample_init(&s, 1);
    sgd_ckpt_writer *w;
    sgdt_assert_status(sample_writer(&w, &s, NULL), SGD_OK);
    sgdt_assert_status(sgd_ckpt_writer_begin_section(w, "big", 0), SGD_OK);
    int64_t d = (int64_t)big_n;
    sgdt_assert_status(sgd_ckpt_writer_add_tensor(w, "x", SGD_CKPT_F32, 1, &d, big), SGD_OK);
    const char *path = wpath("roundtrip.sgdc");
    unlink(path);
    int fds = count_fds();
    sgdt_assert_status(sgd_ckpt_writer_save(w, path), SGD_OK);
    sgdt_assert_status(sgd_ckpt_writer_save(w, path), SGD_OK); /* over an existing file */
    assert_int_equal(count_fds(), fds);
    assert_int_equal(count_temps(), 0);

    uint64_t size;
    sgdt_assert_status(sgd_ckpt_writer_size(w, &size), SGD_OK);
    unsigned char *mem = malloc((size_t)size);
    sgdt_assert_status(sgd_ckpt_writer_write_memory(w, mem, (size_t)size), SGD_OK);
    assert_true(file_equals(path, mem, (size_t)size));

    sgd_ckpt_reader *r;
    sgdt_assert_status(sgd_ckpt_reader_open(&r, path, NULL), SGD_OK);
    assert_int_equal(count_fds(), fds);
    sgdt_assert_status(sample_verify(r, 1), SGD_OK);
    float *back = malloc(big_n * sizeof *back);
    sgdt_assert_status(sgd_ckpt_reader_read_tensor(r, "big", "x", SGD_CKPT_F32, 1, &d, back, big_n * sizeof *back),
                       SGD_OK);
    assert_memory_equal(back, big, big_n * sizeof *big);
    const void *p;
    sgdt_assert_status(sgd_ckpt_reader_tensor_data(r, "big", "x", &p, NULL), SGD_OK);
    assert_int_equal((uintptr_t)p % 64, 0); /* read from a path: aligned */
    sgd_ckpt_reader_free(r);
    sgd_ckpt_writer_free(w);
    free(back);
    free(mem);
    free(big);
    unlink(path);
}

/*
 * A save replaces nothing but a regular file (issue 12: `--save null` replaced a device node, and a FIFO, by a
 * regular file); a symbolic link to a regular file is followed and stays a link; anything else is named.
 */
static void test_save_replaces_only_regular_files(void **state)
{
    (void)state;
    sample s;
    sample_init(&s, 1);
    sgd_ckpt_writer *w;
    sgdt_assert_status(sample_writer(&w, &s, NULL), SGD_OK);
    uint64_t size;
    sgdt_assert_status(sgd_ckpt_writer_size(w, &size), SGD_OK);
    unsigned char *mem = malloc((size_t)size);
    sgdt_assert_status(sgd_ckpt_writer_write_memory(w, mem, (size_t)size), SGD_OK);
    struct stat st;

    /* A FIFO stays a FIFO. */
    const char *fifo = wpath("a-fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    sgdt_assert_status(sgd_ckpt_writer_save(w, fifo), SGD_EINVAL);
    sgdt_assert_error_contains("a FIFO");
    sgdt_assert_error_contains("nothing was written");
    assert_int_equal(lstat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(count_temps(), 0);
    sgdt_assert_status(sgd_ckpt_cleanup_stale(fifo, NULL), SGD_EINVAL);
    /* Nor is a FIFO read: the reader refuses it at once (no writer: a blocking open would hang). */
    sgd_ckpt_reader *rd = NULL;
    sgdt_assert_status(sgd_ckpt_reader_open(&rd, fifo, NULL), SGD_EIO);
    sgdt_assert_error_contains("not a regular file");
    assert_null(rd);
    unlink(fifo);

    /* A socket. */
    const char *sock = wpath("a-socket");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(sock) < sizeof sa.sun_path) {
        strcpy(sa.sun_path, sock);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        sgdt_assert_status(sgd_ckpt_writer_save(w, sock), SGD_EINVAL);
        sgdt_assert_error_contains("a socket");
        assert_int_equal(lstat(sock, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        unlink(sock);
    }
    close(fd);

    /* A character device, through a link (the link is not replaced either, nor is /dev/null). */
    const char *devlink = wpath("null");
    assert_int_equal(symlink("/dev/null", devlink), 0);
    sgdt_assert_status(sgd_ckpt_writer_save(w, devlink), SGD_EINVAL);
    sgdt_assert_error_contains("symbolic link to a character device");
    assert_int_equal(lstat(devlink, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(stat("/dev/null", &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    unlink(devlink);

    /* A dangling link: no file is created through it. */
    const char *dangling = wpath("dangling");
    assert_int_equal(symlink(wpath("nowhere.sgdc"), dangling), 0);
    sgdt_assert_status(sgd_ckpt_writer_save(w, dangling), SGD_EINVAL);
    sgdt_assert_error_contains("dangling");
    assert_int_equal(access(wpath("nowhere.sgdc"), F_OK), -1);
    unlink(dangling);

    /* A link to a regular file: the file is replaced, the link stays a link. */
    const char *target = wpath("target.sgdc"), *link = wpath("link.sgdc");
    write_file(target, "old", 3);
    assert_int_equal(symlink("target.sgdc", link), 0); /* relative to the link's directory */
    sgdt_assert_status(sgd_ckpt_writer_save(w, link), SGD_OK);
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_true(file_equals(target, mem, (size_t)size));
    assert_int_equal(count_temps(), 0);
    size_t removed = 9;
    sgdt_assert_status(sgd_ckpt_cleanup_stale(link, &removed), SGD_OK);
    assert_int_equal(removed, 0);
    unlink(link);
    unlink(target);

    /* A regular file, and a new one, as always. */
    const char *plain = wpath("plain.sgdc");
    unlink(plain);
    sgdt_assert_status(sgd_ckpt_writer_save(w, plain), SGD_OK);
    sgdt_assert_status(sgd_ckpt_writer_save(w, plain), SGD_OK);
    assert_true(file_equals(plain, mem, (size_t)size));
    unlink(plain);
    free(mem);
    sgd_ckpt_writer_free(w);
}

/* sgd_ckpt_output_target: the same policy, asked before anything is written (the tool checks every output first). */
static void test_output_target(void **state)
{
    (void)state;
    char real[PATH_MAX];
    int32_t exists = 7;
    const char *fresh = wpath("fresh.sgdc");
    unlink(fresh);
    sgdt_assert_status(sgd_ckpt_output_target(fresh, real, sizeof real, &exists), SGD_OK);
    assert_string_equal(real, fresh);
    assert_int_equal(exists, 0);
    assert_int_equal(access(fresh, F_OK), -1); /* nothing created */

    const char *target = wpath("out-target.sgdc"), *link = wpath("out-link.sgdc");
    write_file(target, "old", 3);
    sgdt_assert_status(sgd_ckpt_output_target(target, NULL, 0, &exists), SGD_OK);
    assert_int_equal(exists, 1);
    assert_int_equal(symlink("out-target.sgdc", link), 0);
    sgdt_assert_status(sgd_ckpt_output_target(link, real, sizeof real, NULL), SGD_OK);
    char want[PATH_MAX];
    assert_non_null(realpath(target, want));
    assert_string_equal(real, want);
    char tiny[4] = "abc";
    sgdt_assert_status(sgd_ckpt_output_target(link, tiny, sizeof tiny, &exists), SGD_EOVERFLOW);
    sgdt_assert_error_contains("resolved_size is 4");
    assert_string_equal(tiny, "abc"); /* untouched */
    unlink(link);
    unlink(target);

    sgdt_assert_status(sgd_ckpt_output_target("/dev/null", real, sizeof real, &exists), SGD_EINVAL);
    sgdt_assert_error_contains("a character device");
    const char *fifo = wpath("out-fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    sgdt_assert_status(sgd_ckpt_output_target(fifo, NULL, 0, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("a FIFO");
    unlink(fifo);
    const char *dangling = wpath("out-dangling");
    assert_int_equal(symlink(wpath("out-nowhere"), dangling), 0);
    sgdt_assert_status(sgd_ckpt_output_target(dangling, NULL, 0, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("dangling");
    unlink(dangling);
    sgdt_assert_status(sgd_ckpt_output_target(wpath(""), NULL, 0, NULL), SGD_EINVAL); /* the directory */
    sgdt_assert_error_contains("a directory");
    sgdt_assert_status(sgd_ckpt_output_target("", NULL, 0, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("path is empty");
    sgdt_assert_status(sgd_ckpt_output_target(NULL, NULL, 0, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("path is NULL");
    sgdt_assert_status(sgd_ckpt_output_target(fresh, NULL, 8, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("resolved is NULL");
}

/* ------------------------------------------------------------ misuse */

static void test_writer_misuse(void **state)
{
    (void)state;
    sgd_ckpt_writer *w = (sgd_ckpt_writer *)1;
    sgdt_assert_status(sgd_ckpt_writer_new(NULL, NULL), SGD_EINVAL);
    sgd_allocator partial = {.malloc_fn = NULL};
    sgdt_assert_status(sgd_ckpt_writer_new(&w, &partial), SGD_EINVAL);
    assert_null(w);
    sgd_ckpt_writer_free(NULL);

    sgdt_assert_status(sgd_ckpt_writer_new(&w, NULL), SGD_OK);
    float x[2] = {1, 2};
    const int64_t d2[] = {2};
    sgdt_assert_status(sgd_ckpt_writer_add_tensor(w, "x", SGD_CKPT_F32, 1, d2, x), SGD_ESTATE);
    sgdt_assert_error_contains("no section");
    sgdt_assert_status(sgd_ckpt_writer_begin_section(NULL, "a", 0), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_writer_begin_section(w, NULL, 0), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_writer_begin_section(w, "", 0), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_writer_begin_section(w, "a b", 0), SGD_EINVAL);
    sgdt_assert_error_contains("printable ASCII");
    sgdt_assert_status(sgd_ckpt_writer_begin_section(w, "caf\xc3\xa9", 0), SGD_EINVAL);
    char long_name[300];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    sgdt_assert_status(sgd_ckpt_writer_begin_section(w, long_name, 0), SGD_EINVAL);
    sgdt_assert_error_contains("longer than 255");
    long_name[255] = '\0';
    sgdt_assert_status(sgd_ckpt_writer_begin_section(w, long_name, 0), SGD_OK); /* exactly 255 */
    sgdt_assert_status(sgd_ckpt_writer_begin_section(w, "s", 2), SGD_EINVAL);
    sgdt_assert_error_contains("flags");
    sgdt_assert_status(sgd_ckpt_writer_begin_section(w, "s", 0), SGD_OK);
    sgdt_assert_status(sgd_ckpt_writer_begin_section(w, "s", 0), SGD_EINVAL);
    sgdt_assert_error_contains("already exists");

    uint64_t before, after;
    sgdt_assert_status(sgd_ckpt_writer_size(w, &before), SGD_OK);
    sgdt_assert_status(sgd_ckpt_writer_add_tensor(w, "x", 0, 1, d2, x), SGD_EINVAL);
    sgdt_assert_error_contains("dtype 0");
    sgdt_assert_status(sgd_ckpt_writer_add_tensor(w, "x", SGD_CKPT_F32, 9, d2, x), SGD_EINVAL);
    sgdt_assert_error_contains("rank 9");
    sgdt_assert_status(sgd_ckpt_writer_add_tensor(w, "x", SGD_CKPT_F32, 1, NULL, x), SGD_EINVAL);
    const int64_t neg[] = {2, -1};
    sgdt_assert_status(sgd_ckpt_writer_add_tensor(w, "x", SGD_CKPT_F32, 2, neg, x), SGD_EINVAL);
    sgdt_assert_error_contains("dims[1] = -1");
    const int64_t huge[] = {INT64_MAX, 3};
    sgdt_assert_status(sgd_ckpt_writer_add_tensor(w, "x", SGD_CKPT_F32, 2, huge, x), SGD_EOVERFLOW);
    const int64_t big1[] = {INT64_MAX / 2};
    sgdt_assert_status(sgd_ckpt_writer_add_tensor(w, "x", SGD_CKPT_F32, 1, big1, x), SGD_EOVERFLOW);
    sgdt_assert_status(sgd_ckpt_writer_add_tensor(w, "x", SGD_CKPT_F32, 1, d2, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("data is NULL");
    sgdt_assert_status(sgd_ckpt_writer_add_tensor(w, "bad name", SGD_CKPT_F32, 1, d2, x), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_writer_size(w, &after), SGD_OK);
    assert_int_equal(before, after); /* failures change nothing */

    sgdt_assert_status(sgd_ckpt_writer_add_tensor(w, "x", SGD_CKPT_F32, 1, d2, x), SGD_OK);
    sgdt_assert_status(sgd_ckpt_writer_add_tensor(w, "x", SGD_CKPT_F32, 1, d2, x), SGD_EINVAL);
    sgdt_assert_error_contains("tensor 'x' already exists");
    sgdt_assert_status(sgd_ckpt_writer_begin_section(w, "t", 0), SGD_OK);
    sgdt_assert_status(sgd_ckpt_writer_add_tensor(w, "x", SGD_CKPT_F32, 1, d2, x), SGD_OK); /* other section */

    sgdt_assert_status(sgd_ckpt_writer_size(NULL, &after), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_writer_size(w, NULL), SGD_EINVAL);
    unsigned char small[16];
    sgdt_assert_status(sgd_ckpt_writer_write_memory(w, small, sizeof small), SGD_EINVAL);
    sgdt_assert_error_contains("needs");
    sgdt_assert_status(sgd_ckpt_writer_write_memory(w, NULL, 100), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_writer_save(w, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_writer_save(NULL, "x"), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_writer_save(w, ""), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_writer_save(w, wpath("")), SGD_EINVAL);
    sgdt_assert_error_contains("directory");
    sgdt_assert_status(sgd_ckpt_writer_save(w, wpath("..")), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_writer_save(w, wpath("no-such-dir/x.sgdc")), SGD_EIO);
    sgdt_assert_error_contains("no-such-dir");
    sgdt_assert_status(sgd_ckpt_cleanup_stale(NULL, NULL), SGD_EINVAL);
    /* The target is a directory: refused before anything is written (docs: only a regular file is replaced). */
    char dir[600];
    snprintf(dir, sizeof dir, "%s", wpath("a-directory"));
    assert_int_equal(mkdir(dir, 0700), 0);
    sgdt_assert_status(sgd_ckpt_writer_save(w, dir), SGD_EINVAL);
    sgdt_assert_error_contains("is a directory");
    sgdt_assert_error_contains("nothing was written");
    assert_int_equal(count_temps(), 0);
    assert_int_equal(rmdir(dir), 0);
    sgd_ckpt_writer_free(w);

    /* The caps. */
    sgdt_assert_status(sgd_ckpt_writer_new(&w, NULL), SGD_OK);
    for (int i = 0; i < SGD_CKPT_MAX_SECTIONS; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        sgdt_assert_status(sgd_ckpt_writer_begin_section(w, name, 0), SGD_OK);
    }
    sgdt_assert_status(sgd_ckpt_writer_begin_section(w, "one-too-many", 0), SGD_EOVERFLOW);
    for (int i = 0; i < SGD_CKPT_MAX_TENSORS; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        sgdt_assert_status(sgd_ckpt_writer_add_i64(w, name, i), SGD_OK);
    }
    sgdt_assert_status(sgd_ckpt_writer_add_i64(w, "one-too-many", 0), SGD_EOVERFLOW);
    sgdt_assert_error_contains("at most 65536");
    /* A full file still round-trips. */
    uint64_t size;
    sgdt_assert_status(sgd_ckpt_writer_size(w, &size), SGD_OK);
    unsigned char *b = malloc((size_t)size);
    sgdt_assert_status(sgd_ckpt_writer_write_memory(w, b, (size_t)size), SGD_OK);
    sgd_ckpt_reader *r;
    sgdt_assert_status(sgd_ckpt_reader_open_memory(&r, b, (size_t)size, NULL), SGD_OK);
    int64_t v = 0;
    sgdt_assert_status(sgd_ckpt_reader_read_i64(r, "s1023", "t65535", &v), SGD_OK);
    assert_int_equal(v, 65535);
    sgd_ckpt_reader_free(r);
    free(b);
    sgd_ckpt_writer_free(w);
}

static void test_reader_misuse(void **state)
{
    (void)state;
    size_t n;
    unsigned char *b = sample_bytes(0, &n);
    sgd_ckpt_reader *r = (sgd_ckpt_reader *)1;
    sgdt_assert_status(sgd_ckpt_reader_open_memory(NULL, b, n, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_reader_open_memory(&r, NULL, n, NULL), SGD_EINVAL);
    assert_null(r);
    sgdt_assert_status(sgd_ckpt_reader_open(&r, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_reader_open(NULL, "x", NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_reader_open(&r, wpath("does-not-exist"), NULL), SGD_EIO);
    sgdt_assert_error_contains("does-not-exist");
    sgdt_assert_status(sgd_ckpt_reader_open(&r, work_dir, NULL), SGD_EIO);
    sgdt_assert_error_contains("not a regular file");
    sgd_ckpt_reader_free(NULL);
    assert_int_equal(sgd_ckpt_reader_section_count(NULL), 0);
    assert_int_equal(sgd_ckpt_reader_file_size(NULL), 0);
    sgdt_assert_status(sgd_ckpt_reader_version(NULL, NULL, NULL), SGD_EINVAL);

    sgdt_assert_status(sgd_ckpt_reader_open_memory(&r, b, n, NULL), SGD_OK);
    sgd_ckpt_section_info si = {.struct_size = 4};
    sgdt_assert_status(sgd_ckpt_reader_section_info(r, 0, &si), SGD_EINVAL);
    sgdt_assert_error_contains("struct_size");
    si.struct_size = sizeof si;
    sgdt_assert_status(sgd_ckpt_reader_section_info(r, 4, &si), SGD_ERANGE);
    sgdt_assert_status(sgd_ckpt_reader_section_info(NULL, 0, &si), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_reader_section_info(r, 0, NULL), SGD_EINVAL);
    sgd_ckpt_tensor_info ti = {.struct_size = sizeof ti};
    sgdt_assert_status(sgd_ckpt_reader_tensor_info(r, 2, 0, &ti), SGD_ERANGE);
    sgdt_assert_error_contains("'empty-section' has 0 tensors");
    sgdt_assert_status(sgd_ckpt_reader_tensor_info(r, 9, 0, &ti), SGD_ERANGE);
    sgdt_assert_status(sgd_ckpt_reader_find_section(r, "nope", NULL), SGD_ENOTFOUND);
    sgdt_assert_error_contains("no section 'nope'");
    sgdt_assert_status(sgd_ckpt_reader_find_section(r, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_reader_find_tensor(r, "model", "2.weight", &ti), SGD_ENOTFOUND);
    sgdt_assert_error_contains("section 'model' has no tensor '2.weight'");
    sgdt_assert_status(sgd_ckpt_reader_find_tensor(r, "modl", "0.weight", NULL), SGD_ENOTFOUND);
    sgdt_assert_status(sgd_ckpt_reader_find_tensor(r, "model", "0.weight", NULL), SGD_OK);
    sgdt_assert_status(sgd_ckpt_reader_find_tensor(r, NULL, "0.weight", NULL), SGD_EINVAL);

    /* Shape checks name the first mismatch. */
    const int64_t want[] = {128, 4};
    sgdt_assert_status(sgd_ckpt_reader_check_tensor(r, "model", "0.weight", SGD_CKPT_F32, 2, want), SGD_ESHAPE);
    sgdt_assert_error_contains("section 'model': tensor '0.weight': shape [3,4] in file, expected [128,4]");
    const int64_t d3[] = {3, 4, 1};
    sgdt_assert_status(sgd_ckpt_reader_check_tensor(r, "model", "0.weight", SGD_CKPT_F32, 3, d3), SGD_ESHAPE);
    sgdt_assert_error_contains("shape [3,4] in file, expected [3,4,1]");
    sgdt_assert_status(sgd_ckpt_reader_check_tensor(r, "model", "0.weight", SGD_CKPT_F64, 2, d3), SGD_ESHAPE);
    sgdt_assert_error_contains("dtype f32 in file, expected f64");
    sgdt_assert_status(sgd_ckpt_reader_check_tensor(r, "model", "0.weight", SGD_CKPT_F32, 2, d3), SGD_OK);
    sgdt_assert_status(sgd_ckpt_reader_check_tensor(r, "model", "0.weight", 42, 2, d3), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_reader_check_tensor(r, "model", "0.weight", SGD_CKPT_F32, 9, d3), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_reader_check_tensor(r, "model", "0.weight", SGD_CKPT_F32, 2, NULL), SGD_EINVAL);
    const int64_t negd[] = {-3, 4};
    sgdt_assert_status(sgd_ckpt_reader_check_tensor(r, "model", "0.weight", SGD_CKPT_F32, 2, negd), SGD_ESHAPE);

    float dst[12];
    memset(dst, 0, sizeof dst);
    sgdt_assert_status(sgd_ckpt_reader_read_tensor(r, "model", "0.weight", SGD_CKPT_F32, 2, d3, dst, 47),
                       SGD_ESHAPE);
    sgdt_assert_error_contains("destination has 47 bytes");
    sgdt_assert_status(sgd_ckpt_reader_read_tensor(r, "model", "0.weight", SGD_CKPT_F32, 2, d3, NULL, 48),
                       SGD_EINVAL);
    for (int i = 0; i < 12; i++)
        assert_true(dst[i] == 0); /* nothing written on failure */
    int64_t i64 = 7;
    double f64 = 7;
    sgdt_assert_status(sgd_ckpt_reader_read_i64(r, "trainer", "lr", &i64), SGD_ESHAPE);
    assert_int_equal(i64, 7);
    sgdt_assert_status(sgd_ckpt_reader_read_f64(r, "optim", "step", &f64), SGD_ESHAPE);
    sgdt_assert_status(sgd_ckpt_reader_read_f64(r, "optim", "m", &f64), SGD_ESHAPE);
    sgdt_assert_error_contains("dtype f32 in file, expected f64");
    sgdt_assert_status(sgd_ckpt_reader_read_i64(r, "optim", "step", NULL), SGD_EINVAL);
    const void *p = (const void *)1;
    sgdt_assert_status(sgd_ckpt_reader_tensor_data(r, "x", "y", &p, NULL), SGD_ENOTFOUND);
    assert_null(p);
    sgdt_assert_status(sgd_ckpt_reader_tensor_data(r, "x", "y", NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_ckpt_reader_check_sections(r, NULL, 1), SGD_EINVAL);
    const char *withnull[] = {"model", NULL};
    sgdt_assert_status(sgd_ckpt_reader_check_sections(r, withnull, 2), SGD_EINVAL);
    sgd_ckpt_reader_free(r);
    free(b);
}

/* ------------------------------------------------------- damage corpus */

/* Opens b[0..n) with a counting allocator; returns the status and checks for a message and no leak. */
static sgd_status try_open(const unsigned char *b, size_t n)
{
    sgdt_alloc t;
    sgdt_alloc_init(&t);
    sgd_ckpt_reader *r = NULL;
    sgd_error_clear();
    sgd_status st = sgd_ckpt_reader_open_memory(&r, b, n, &t.base);
    if (st == SGD_OK) {
        sgd_ckpt_reader_free(r);
    } else {
        assert_null(r);
        if (sgd_error_last()[0] == '\0')
            fail_msg("status %s without a message", sgd_status_str(st));
    }
    assert_int_equal(t.live, 0);
    return st;
}

static void test_truncation_everywhere(void **state)
{
    (void)state;
    size_t n;
    unsigned char *b = sample_bytes(0, &n);
    for (size_t k = 0; k < n; k++) {
        /* A copy of exactly k bytes, so that ASan sees any read past it. */
        unsigned char *c = malloc(k ? k : 1);
        memcpy(c, b, k);
        sgd_status st = try_open(c, k);
        if (st != SGD_EFORMAT)
            fail_msg("truncated to %zu of %zu bytes: %s (%s)", k, n, sgd_status_str(st), sgd_error_last());
        if (k >= 32)
            sgdt_assert_error_contains("truncated");
        free(c);
    }
    sgdt_assert_status(try_open(b, n), SGD_OK);
    /* A byte more is refused too. */
    unsigned char *c = malloc(n + 1);
    memcpy(c, b, n);
    c[n] = 0;
    sgdt_assert_status(try_open(c, n + 1), SGD_EFORMAT);
    sgdt_assert_error_contains("size mismatch");
    free(c);
    free(b);
}

static void test_bit_flips_everywhere(void **state)
{
    (void)state;
    size_t n;
    unsigned char *b = sample_bytes(0, &n);
    int by_status[3] = {0};
    for (size_t k = 0; k < n; k++)
        for (int bit = 0; bit < 8; bit++) {
            b[k] ^= (unsigned char)(1u << bit);
            sgd_status st = try_open(b, n);
            b[k] ^= (unsigned char)(1u << bit);
            if (st == SGD_EFORMAT)
                by_status[0]++;
            else if (st == SGD_EVERSION)
                by_status[1]++;
            else if (st == SGD_EOVERFLOW)
                by_status[2]++;
            else
                fail_msg("bit %d of byte %zu flipped: %s (%s)", bit, k, sgd_status_str(st), sgd_error_last());
            if (k >= 8 && k < 10)
                assert_int_equal(st, SGD_EVERSION); /* the major version */
        }
    print_message("# %zu single-bit flips of a %zu-byte file: %d EFORMAT, %d EVERSION, %d EOVERFLOW\n", n * 8, n,
                  by_status[0], by_status[1], by_status[2]);
    free(b);
}

/* Positions of the fields of a valid file, found by walking its directory. */
typedef struct fields {
    size_t n_sec, n_ten;
    size_t sec_rec[8], sec_flags[8], sec_count[8], sec_off[8], sec_size[8], sec_crc[8];
    size_t ten_rec[16], ten_dtype[16], ten_rank[16], ten_dims[16], ten_off[16], ten_nbytes[16];
} fields;

/* Walks as far as the (possibly damaged) directory allows; stops at anything out of range. */
static void find_fields(const unsigned char *b, size_t n, fields *f)
{
    memset(f, 0, sizeof *f);
    size_t h = sgd__get_le32(b + 12), p = 32, nsec = sgd__get_le32(b + 24);
    if (h > n)
        return;
    for (size_t s = 0; s < nsec && s < 8; s++) {
        if (p + 2 > h || p + 2 + sgd__get_le16(b + p) + 28 > h)
            return;
        f->sec_rec[s] = p;
        p += 2 + sgd__get_le16(b + p);
        f->sec_flags[s] = p;
        f->sec_count[s] = p + 4;
        f->sec_off[s] = p + 8;
        f->sec_size[s] = p + 16;
        f->sec_crc[s] = p + 24;
        f->n_sec = s + 1;
        uint32_t count = sgd__get_le32(b + p + 4);
        p += 28;
        for (uint32_t t = 0; t < count && f->n_ten < 16; t++) {
            if (p + 2 > h || p + 2 + sgd__get_le16(b + p) + 2 > h)
                return;
            size_t i = f->n_ten;
            size_t q = p + 2 + sgd__get_le16(b + p);
            if (q + 2 + 8u * b[q + 1] + 16 > h)
                return;
            f->ten_rec[i] = p;
            f->ten_dtype[i] = q;
            f->ten_rank[i] = q + 1;
            f->ten_dims[i] = q + 2;
            p = q + 2 + 8u * b[q + 1];
            f->ten_off[i] = p;
            f->ten_nbytes[i] = p + 8;
            p += 16;
            f->n_ten++;
        }
    }
}

/* Recomputes every checksum, so that a test shows the structure alone is refused. */
static void fix_crcs(unsigned char *b, size_t n)
{
    uint32_t h = sgd__get_le32(b + 12);
    if (h >= 32 && h <= n) {
        fields f;
        find_fields(b, n, &f);
        for (size_t s = 0; s < f.n_sec; s++) {
            uint64_t off = sgd__get_le64(b + f.sec_off[s]), size = sgd__get_le64(b + f.sec_size[s]);
            if (off <= n && size <= n - off)
                sgd__put_le32(b + f.sec_crc[s], sgd__crc32c(0, b + off, (size_t)size));
        }
        uint32_t crc = sgd__crc32c(0, b, 28);
        crc = sgd__crc32c(crc, b + 32, h - 32);
        sgd__put_le32(b + 28, crc);
    }
}

typedef struct damage {
    const char *what;
    sgd_status want;
    const char *message; /* a substring of the message */
} damage;

static void expect(const unsigned char *b, size_t n, const damage *d)
{
    sgd_status st = try_open(b, n);
    if (st != d->want || strstr(sgd_error_last(), d->message) == NULL)
        fail_msg("%s: got %s (%s), want %s containing \"%s\"", d->what, sgd_status_str(st), sgd_error_last(),
                 sgd_status_str(d->want), d->message);
}

static void test_crafted_damage(void **state)
{
    (void)state;
    size_t n;
    unsigned char *orig = sample_bytes(0, &n);
    unsigned char *b = malloc(n + 256);
    fields f;
    find_fields(orig, n, &f);
    assert_int_equal(f.n_sec, 4);
    assert_int_equal(f.n_ten, 10);
    /* Tensors: 0 0.weight, 1 0.bias, 2 1.weight, 3 step, 4 m, 5 empty, 6 rng, 7 lr, 8 tag, 9 ints */

#define CASE(want, msg, ...)                                                                                           \
    do {                                                                                                               \
        memcpy(b, orig, n);                                                                                            \
        size_t len = n;                                                                                                \
        (void)len;                                                                                                     \
        __VA_ARGS__;                                                                                                   \
        fix_crcs(b, len);                                                                                              \
        damage d = {#__VA_ARGS__, want, msg};                                                                          \
        expect(b, len, &d);                                                                                            \
    } while (0)

    /* Signature, version, fixed header. */
    CASE(SGD_EFORMAT, "not a libsgdlab checkpoint", b[1] = 'X');
    CASE(SGD_EFORMAT, "7-bit", b[0] = 0x09);
    CASE(SGD_EFORMAT, "CR LF was turned into LF", memmove(b + 4, b + 5, n - 5); len = n - 1);
    CASE(SGD_EFORMAT, "LF was turned into CR LF", memmove(b + 6, b + 5, n - 5); b[5] = '\r'; len = n + 1);
    CASE(SGD_EVERSION, "format version 2.0", sgd__put_le16(b + 8, 2));
    CASE(SGD_EVERSION, "format version 0.0", sgd__put_le16(b + 8, 0));
    CASE(SGD_EFORMAT, "header size 31", sgd__put_le32(b + 12, 31));
    CASE(SGD_EOVERFLOW, "above the maximum", sgd__put_le32(b + 12, 0xFFFFFFFFu));
    CASE(SGD_EFORMAT, "larger than the file", sgd__put_le32(b + 12, (uint32_t)n + 64));
    CASE(SGD_EFORMAT, "unused bytes at the end of the header", sgd__put_le32(b + 12, sgd__get_le32(b + 12) + 1));
    CASE(SGD_EFORMAT, "runs past the end of the header", sgd__put_le32(b + 12, sgd__get_le32(b + 12) - 1));
    CASE(SGD_EFORMAT, "the header says the file has", sgd__put_le64(b + 16, n - 1));
    CASE(SGD_EFORMAT, "truncated", sgd__put_le64(b + 16, UINT64_MAX));
    CASE(SGD_EOVERFLOW, "section count 1025", sgd__put_le32(b + 24, 1025));
    CASE(SGD_EFORMAT, "cannot fit in a header", sgd__put_le32(b + 24, 1000));
    CASE(SGD_EFORMAT, "unused bytes", sgd__put_le32(b + 24, 3));
    CASE(SGD_EFORMAT, "runs past the end of the header", sgd__put_le32(b + 24, 5));
    /* Section records. */
    CASE(SGD_EFORMAT, "name length 0", sgd__put_le16(b + f.sec_rec[0], 0));
    CASE(SGD_EFORMAT, "name length 256", sgd__put_le16(b + f.sec_rec[0], 256));
    CASE(SGD_EFORMAT, "outside 0x21..0x7e", b[f.sec_rec[1] + 3] = ' ');
    CASE(SGD_EFORMAT, "outside 0x21..0x7e", b[f.sec_rec[1] + 3] = 0x80);
    CASE(SGD_EFORMAT, "reserved bits", sgd__put_le32(b + f.sec_flags[1], 2));
    CASE(SGD_EFORMAT, "two sections are named 'model'", memcpy(b + f.sec_rec[1] + 2, "model", 5));
    CASE(SGD_EOVERFLOW, "more than 65536", sgd__put_le32(b + f.sec_count[0], 0xFFFFFFFFu));
    CASE(SGD_EFORMAT, "cannot fit in the", sgd__put_le32(b + f.sec_count[0], 60000));
    CASE(SGD_EFORMAT, "not a multiple of 64", sgd__put_le64(b + f.sec_off[0], sgd__get_le64(b + f.sec_off[0]) + 8));
    CASE(SGD_EFORMAT, "overlaps the header", sgd__put_le64(b + f.sec_off[0], 0));
    CASE(SGD_EFORMAT, "overlaps the previous section", sgd__put_le64(b + f.sec_off[1], sgd__get_le64(b + f.sec_off[0])));
    CASE(SGD_EFORMAT, "runs past the end of the file", sgd__put_le64(b + f.sec_size[3], UINT64_MAX));
    CASE(SGD_EFORMAT, "runs past the end of the file", sgd__put_le64(b + f.sec_off[3], UINT64_MAX - 63));
    CASE(SGD_EFORMAT, "runs past the end of the file", sgd__put_le64(b + f.sec_size[3], sgd__get_le64(b + f.sec_size[3]) + 1));
    CASE(SGD_EFORMAT, "runs past the end of its section", sgd__put_le64(b + f.sec_size[0], sgd__get_le64(b + f.sec_size[0]) - 1));
    /* Tensor records: lying sizes, offsets, dims. */
    CASE(SGD_EFORMAT, "byte size 47", sgd__put_le64(b + f.ten_nbytes[0], 47));
    CASE(SGD_EFORMAT, "byte size 0", sgd__put_le64(b + f.ten_nbytes[0], 0));
    CASE(SGD_EFORMAT, "does not match 24 elements", sgd__put_le64(b + f.ten_dims[0], 6));
    CASE(SGD_EOVERFLOW, "is above 2^63 - 1", sgd__put_le64(b + f.ten_dims[0], UINT64_MAX));
    CASE(SGD_EOVERFLOW, "product of its dims overflows", sgd__put_le64(b + f.ten_dims[0], 1ull << 62);
         sgd__put_le64(b + f.ten_dims[0] + 8, 1ull << 62));
    CASE(SGD_EOVERFLOW, "overflow 64 bits", sgd__put_le64(b + f.ten_dims[0], 1ull << 61);
         sgd__put_le64(b + f.ten_dims[0] + 8, 2));
    CASE(SGD_EOVERFLOW, "rank 9", b[f.ten_rank[0]] = 9);
    CASE(SGD_EFORMAT, "unknown dtype 7", b[f.ten_dtype[0]] = 7);
    CASE(SGD_EFORMAT, "unknown dtype 0", b[f.ten_dtype[0]] = 0);
    CASE(SGD_EFORMAT, "does not match", b[f.ten_dtype[0]] = SGD_CKPT_F64);
    CASE(SGD_EFORMAT, "not a multiple of 64", sgd__put_le64(b + f.ten_off[1], sgd__get_le64(b + f.ten_off[1]) + 4));
    CASE(SGD_EFORMAT, "tensors may not overlap", sgd__put_le64(b + f.ten_off[1], sgd__get_le64(b + f.ten_off[0])));
    CASE(SGD_EFORMAT, "before", sgd__put_le64(b + f.ten_off[0], 0));
    CASE(SGD_EFORMAT, "runs past the end of its section", sgd__put_le64(b + f.ten_off[2], UINT64_MAX - 63));
    CASE(SGD_EFORMAT, "runs past the end of its section", sgd__put_le64(b + f.ten_nbytes[8], INT64_MAX);
         sgd__put_le64(b + f.ten_dims[8], INT64_MAX)); /* u8: a huge but consistent size */
    CASE(SGD_EFORMAT, "two tensors are named '0.weight'", memcpy(b + f.ten_rec[2] + 2, "0.weight", 8));
    CASE(SGD_EFORMAT, "name length 0", sgd__put_le16(b + f.ten_rec[4], 0));
    CASE(SGD_EFORMAT, "outside 0x21..0x7e", b[f.ten_rec[4] + 2] = '\n');
    /* Padding must be zero: between header and data, between tensors, at the end of a section. */
    CASE(SGD_EFORMAT, "nonzero padding byte", b[sgd__get_le32(b + 12)] = 1);
    CASE(SGD_EFORMAT, "nonzero padding byte", b[sgd__get_le64(b + f.ten_off[0]) + 48] = 1);
    CASE(SGD_EFORMAT, "bytes after the end of the last section", b[n] = 0; len = n + 64; memset(b + n, 0, 64);
         sgd__put_le64(b + 16, len));
#undef CASE
    /* Checksums: damage that leaves the structure valid is caught by them (and named). */
    memcpy(b, orig, n);
    b[sgd__get_le64(orig + f.sec_off[3])] ^= 0x10;
    expect(b, n, &(damage){"a data bit of section 'trainer'", SGD_EFORMAT, "section 'trainer': checksum mismatch"});
    memcpy(b, orig, n);
    b[f.sec_rec[0] + 2] = 'M'; /* "Model": still a valid name */
    expect(b, n, &(damage){"a letter of a section name", SGD_EFORMAT, "header checksum mismatch"});
    memcpy(b, orig, n);
    sgd__put_le16(b + 10, 1); /* the minor version is covered too */
    expect(b, n, &(damage){"the minor version", SGD_EFORMAT, "header checksum mismatch"});
    free(b);
    free(orig);
}

/* Builds a file with a newer minor version and an unknown dtype: readable, the unknown tensor opaque. */
static void test_newer_minor_version(void **state)
{
    (void)state;
    size_t n;
    unsigned char *b = sample_bytes(0, &n);
    fields f;
    find_fields(b, n, &f);
    sgd__put_le16(b + 10, 7);          /* minor 7 */
    b[f.ten_dtype[8]] = 200;           /* "tag" (5 bytes of u8) is now of an unknown type */
    fix_crcs(b, n);
    sgd_ckpt_reader *r;
    sgdt_assert_status(sgd_ckpt_reader_open_memory(&r, b, n, NULL), SGD_OK);
    uint32_t major, minor;
    sgdt_assert_status(sgd_ckpt_reader_version(r, &major, &minor), SGD_OK);
    assert_int_equal(minor, 7);
    sgd_ckpt_tensor_info ti = {.struct_size = sizeof ti};
    sgdt_assert_status(sgd_ckpt_reader_find_tensor(r, "trainer", "tag", &ti), SGD_OK);
    assert_int_equal(ti.dtype, 200);
    assert_int_equal(ti.nbytes, 5);
    const int64_t d5[] = {5};
    unsigned char dst[5];
    sgdt_assert_status(sgd_ckpt_reader_read_tensor(r, "trainer", "tag", SGD_CKPT_U8, 1, d5, dst, 5), SGD_ESHAPE);
    sgdt_assert_error_contains("newer format");
    const int64_t d34[] = {3, 4};
    float w0[12];
    sgdt_assert_status(sgd_ckpt_reader_read_tensor(r, "model", "0.weight", SGD_CKPT_F32, 2, d34, w0, sizeof w0),
                       SGD_OK); /* the rest reads as before */
    sgd_ckpt_reader_free(r);
    /* An unknown dtype whose byte size is below its element count is still refused. */
    sgd__put_le64(b + f.ten_nbytes[8], 4);
    fix_crcs(b, n);
    sgdt_assert_status(try_open(b, n), SGD_EFORMAT);
    free(b);
}

/* A file crafted to make the reader allocate as much as possible per header byte. */
static void test_allocation_bounded_by_header(void **state)
{
    (void)state;
    sgd_ckpt_writer *w;
    sgdt_assert_status(sgd_ckpt_writer_new(&w, NULL), SGD_OK);
    sgdt_assert_status(sgd_ckpt_writer_begin_section(w, "s", 0), SGD_OK);
    for (int i = 0; i < 20000; i++) {
        char name[8];
        snprintf(name, sizeof name, "%x", i); /* short names */
        sgdt_assert_status(sgd_ckpt_writer_add_tensor(w, name, SGD_CKPT_U8, 0, NULL, "x"), SGD_OK);
    }
    uint64_t size;
    sgdt_assert_status(sgd_ckpt_writer_size(w, &size), SGD_OK);
    unsigned char *b = malloc((size_t)size);
    sgdt_assert_status(sgd_ckpt_writer_write_memory(w, b, (size_t)size), SGD_OK);
    sgd_ckpt_writer_free(w);
    uint32_t header = sgd__get_le32(b + 12);
    sgdt_alloc t;
    sgdt_alloc_init(&t);
    sgd_ckpt_reader *r;
    sgdt_assert_status(sgd_ckpt_reader_open_memory(&r, b, (size_t)size, &t.base), SGD_OK);
    print_message("# 20000 scalar tensors: header %u bytes, file %llu, reader's memory %zu bytes (%.2fx header)\n",
                  header, (unsigned long long)size, t.peak_bytes, (double)t.peak_bytes / header);
    assert_true(t.peak_bytes <= 2 * (size_t)header + 1024);
    sgd_ckpt_reader_free(r);

    /* From a path, the file's bytes come on top (one block). */
    const char *path = wpath("many.sgdc");
    write_file(path, b, (size_t)size);
    sgdt_alloc_init(&t);
    sgdt_assert_status(sgd_ckpt_reader_open(&r, path, &t.base), SGD_OK);
    assert_true(t.peak_bytes <= (size_t)size + 64 + 2 * (size_t)header + 1024);
    sgd_ckpt_reader_free(r);
    unlink(path);

    /* A file that claims much but holds little allocates nothing. */
    unsigned char small[64];
    memcpy(small, b, 32);
    sgd__put_le64(small + 16, 64); /* file size */
    sgdt_alloc_init(&t);
    sgdt_assert_status(sgd_ckpt_reader_open_memory(&r, small, sizeof small, &t.base), SGD_EFORMAT);
    assert_int_equal(t.calls, 0);
    free(b);
}

/* ------------------------------------------------- allocation failures */

typedef struct alloc_ctx {
    const char *path;
    const unsigned char *old;
    size_t old_n;
} alloc_ctx;

static sgd_status alloc_scenario(sgdt_alloc *t, void *vctx)
{
    alloc_ctx *c = vctx;
    write_file(c->path, c->old, c->old_n);
    sample s;
    sample_init(&s, 1);
    sgd_ckpt_writer *w;
    sgd_status st = sample_writer(&w, &s, &t->base);
    if (st != SGD_OK) {
        return st;
    }
    st = sgd_ckpt_writer_save(w, c->path);
    sgd_ckpt_writer_free(w);
    if (st != SGD_OK) {
        if (!file_equals(c->path, c->old, c->old_n) || count_temps() != 0)
            return sgd__err(SGD_EINTERNAL, "a failed save changed the old checkpoint or left a temporary file");
        return st;
    }
    sgd_ckpt_reader *r;
    if ((st = sgd_ckpt_reader_open(&r, c->path, &t->base)) != SGD_OK)
        return st;
    st = sample_verify(r, 1);
    sgd_ckpt_reader_free(r);
    if (st != SGD_OK)
        return st;
    /* And from memory. */
    size_t n;
    unsigned char *b = read_file(c->path, &n);
    st = sgd_ckpt_reader_open_memory(&r, b, n, &t->base);
    if (st == SGD_OK) {
        st = sample_verify(r, 1);
        sgd_ckpt_reader_free(r);
    }
    free(b);
    return st;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    alloc_ctx c = {.path = wpath("alloc.sgdc")};
    unsigned char *old = sample_bytes(0, &c.old_n);
    c.old = old;
    long calls = sgdt_walk_alloc_failures(alloc_scenario, &c);
    print_message("# save + load walked over %ld allocations\n", calls);
    assert_true(calls >= 8);
    unlink(c.path);
    free(old);
}

/* --------------------------------------------------------- I/O failures */

enum {
    OP_OPEN, OP_READ, OP_PWRITE, OP_SIZE, OP_FSYNC, OP_CLOSE, OP_LOCK, OP_RENAME, OP_UNLINK, OP_LIST, OP_STAT,
    OP_RESOLVE, OP_N
};
static const char *op_names[OP_N] = {"open", "read",   "pwrite", "size", "fsync", "close",  "lock",
                                     "rename", "unlink", "list", "stat", "resolve"};
static const int op_errno[OP_N] = {EACCES, EIO, ENOSPC, EIO, EIO, EIO, ENOLCK, EXDEV, EPERM, EIO, EACCES, ELOOP};

enum { FAIL_ERRNO, FAIL_SHORT, FAIL_EINTR, FAIL_KILL };

typedef struct fault {
    sgd__io io;
    long calls;
    long fail_at;   /* -1: never */
    int persistent; /* fail every call from fail_at on */
    int mode;
    int failed_op;  /* -1 if nothing failed */
    bool renamed;   /* a rename went through */
    int fsyncs_after_failure;
    bool fsync_failed;
} fault;

static fault *F; /* the hooks find their state here (and in io.user) */

static bool hit(fault *f, int op)
{
    long k = f->calls++;
    if (f->fail_at < 0 || (k != f->fail_at && !(f->persistent && k > f->fail_at)))
        return false;
    if (f->mode == FAIL_KILL)
        raise(SIGKILL);
    if (f->failed_op < 0)
        f->failed_op = op;
    return true;
}

#define PX sgd__io_posix()

static int f_open(const char *path, int how, void *u)
{
    fault *f = u;
    if (hit(f, OP_OPEN) && f->mode != FAIL_SHORT)
        return f->mode == FAIL_EINTR ? -EINTR : -op_errno[OP_OPEN];
    return PX->open(path, how, PX->user);
}
static int64_t f_read(int fd, void *buf, size_t n, void *u)
{
    fault *f = u;
    if (hit(f, OP_READ)) {
        if (f->mode == FAIL_SHORT)
            n = n > 1 ? n / 2 : n;
        else
            return f->mode == FAIL_EINTR ? -EINTR : -op_errno[OP_READ];
    }
    return PX->read(fd, buf, n, PX->user);
}
static int64_t f_pwrite(int fd, const void *buf, size_t n, uint64_t off, void *u)
{
    fault *f = u;
    if (hit(f, OP_PWRITE)) {
        if (f->mode == FAIL_SHORT)
            n = n > 1 ? n / 2 : n;
        else
            return f->mode == FAIL_EINTR ? -EINTR : -op_errno[OP_PWRITE];
    }
    return PX->pwrite(fd, buf, n, off, PX->user);
}
static int f_size(int fd, uint64_t *size, void *u)
{
    fault *f = u;
    if (hit(f, OP_SIZE) && f->mode == FAIL_ERRNO)
        return -op_errno[OP_SIZE];
    return PX->size(fd, size, PX->user);
}
static int f_fsync(int fd, void *u)
{
    fault *f = u;
    if (f->fsync_failed)
        f->fsyncs_after_failure++;
    if (hit(f, OP_FSYNC) && f->mode == FAIL_ERRNO) {
        f->fsync_failed = true;
        return -op_errno[OP_FSYNC];
    }
    return PX->fsync(fd, PX->user);
}
static int f_close(int fd, void *u)
{
    fault *f = u;
    int r = PX->close(fd, PX->user); /* always close: the descriptor is gone either way */
    if (hit(f, OP_CLOSE) && f->mode == FAIL_ERRNO)
        return -op_errno[OP_CLOSE];
    return r;
}
static int f_lock(int fd, void *u)
{
    fault *f = u;
    if (hit(f, OP_LOCK) && f->mode == FAIL_ERRNO)
        return -op_errno[OP_LOCK];
    return PX->lock(fd, PX->user);
}
static int f_rename(const char *from, const char *to, void *u)
{
    fault *f = u;
    if (hit(f, OP_RENAME) && f->mode == FAIL_ERRNO)
        return -op_errno[OP_RENAME];
    int r = PX->rename(from, to, PX->user);
    if (r == 0)
        f->renamed = true;
    return r;
}
static int f_unlink(const char *path, void *u)
{
    fault *f = u;
    if (hit(f, OP_UNLINK) && f->mode == FAIL_ERRNO)
        return -op_errno[OP_UNLINK];
    return PX->unlink(path, PX->user);
}
static int f_list(const char *dir, int (*each)(const char *, void *), void *ctx, void *u)
{
    fault *f = u;
    if (hit(f, OP_LIST) && f->mode == FAIL_ERRNO)
        return -op_errno[OP_LIST];
    return PX->list(dir, each, ctx, PX->user);
}

static int f_stat(const char *path, int follow, uint32_t *mode, void *u)
{
    fault *f = u;
    if (hit(f, OP_STAT) && f->mode != FAIL_SHORT)
        return f->mode == FAIL_EINTR ? -EINTR : -op_errno[OP_STAT];
    return PX->stat(path, follow, mode, PX->user);
}
static int f_resolve(const char *path, char *buf, size_t cap, void *u)
{
    fault *f = u;
    if (hit(f, OP_RESOLVE) && f->mode != FAIL_SHORT)
        return f->mode == FAIL_EINTR ? -EINTR : -op_errno[OP_RESOLVE];
    return PX->resolve(path, buf, cap, PX->user);
}

static void fault_init(fault *f, long fail_at, int persistent, int mode)
{
    memset(f, 0, sizeof *f);
    f->io = (sgd__io){f_open, f_read, f_pwrite, f_size, f_fsync,  f_close, f_lock,
                      f_rename, f_unlink, f_list, f, f_stat, f_resolve};
    f->fail_at = fail_at;
    f->persistent = persistent;
    f->mode = mode;
    f->failed_op = -1;
    F = f;
}

/* Leaves one unlocked stale temporary file next to `path`, as a killed writer would. */
static void plant_stale(const char *name)
{
    char p[600];
    snprintf(p, sizeof p, "%s/.%s.sgdtmp-00000000deadbeef", work_dir, name);
    write_file(p, "partial", 7);
}

static void test_io_failures_save(void **state)
{
    (void)state;
    const char *path = wpath("io.sgdc");
    size_t old_n, new_n;
    unsigned char *old = sample_bytes(0, &old_n);
    unsigned char *neu = sample_bytes(1, &new_n);
    sample s;
    sample_init(&s, 1);
    sgd_ckpt_writer *w;
    sgdt_assert_status(sample_writer(&w, &s, NULL), SGD_OK);

    /* A clean run counts the calls (with a stale file to clean up, so that those calls are walked too). */
    write_file(path, old, old_n);
    plant_stale("io.sgdc");
    fault f;
    fault_init(&f, -1, 0, FAIL_ERRNO);
    sgdt_assert_status(sgd__ckpt_save_io(w, path, &f.io), SGD_OK);
    assert_true(file_equals(path, neu, new_n));
    assert_int_equal(count_temps(), 0);
    long total = f.calls;
    print_message("# a save makes %ld I/O calls (with one stale file to remove)\n", total);

    int fds = count_fds();
    int outcomes[2][2] = {{0}}; /* [persistent][renamed] for failed saves */
    for (int persistent = 0; persistent <= 1; persistent++)
        for (long k = 0; k < total; k++) {
            write_file(path, old, old_n);
            plant_stale("io.sgdc");
            fault_init(&f, k, persistent, FAIL_ERRNO);
            sgd_error_clear();
            sgd_status st = sgd__ckpt_save_io(w, path, &f.io);
            const char *op = f.failed_op >= 0 ? op_names[f.failed_op] : "none";
            if (st == SGD_OK) {
                /* Only failures while cleaning up stale files are survivable. */
                if (!f.renamed || !file_equals(path, neu, new_n))
                    fail_msg("call %ld (%s) failed, save returned OK but the new file is not in place", k, op);
            } else {
                if (st != SGD_EIO || sgd_error_last()[0] == '\0')
                    fail_msg("call %ld (%s): %s (%s)", k, op, sgd_status_str(st), sgd_error_last());
                const unsigned char *want = f.renamed ? neu : old;
                size_t want_n = f.renamed ? new_n : old_n;
                if (!file_equals(path, want, want_n))
                    fail_msg("call %ld (%s) failed (%s): the file is neither intact nor the new one", k, op,
                             sgd_error_last());
                if (!f.renamed && strstr(sgd_error_last(), "previous checkpoint is unchanged") == NULL)
                    fail_msg("call %ld (%s): message does not say the old file is intact: %s", k, op,
                             sgd_error_last());
                if (f.renamed && strstr(sgd_error_last(), "may not be durable") == NULL)
                    fail_msg("call %ld (%s): message does not say the new file is in place: %s", k, op,
                             sgd_error_last());
                outcomes[persistent][f.renamed]++;
            }
            if (f.fsyncs_after_failure != 0 && f.failed_op == OP_FSYNC && !f.renamed)
                fail_msg("call %ld: a failed fsync was retried", k);
            /* No descriptor leaks; temporary files are removed, or removed by the next cleanup. */
            assert_int_equal(count_fds(), fds);
            size_t removed = 0;
            sgdt_assert_status(sgd_ckpt_cleanup_stale(path, &removed), SGD_OK);
            if (!persistent && removed > 1)
                fail_msg("call %ld (%s): %zu temporary files were left", k, op, removed);
            assert_int_equal(count_temps(), 0);
        }
    print_message("# failed saves: transient %d before / %d after the rename, persistent %d / %d\n",
                  outcomes[0][0], outcomes[0][1], outcomes[1][0], outcomes[1][1]);
    assert_true(outcomes[0][0] > 0 && outcomes[0][1] > 0);

    /* Short writes and EINTR are not errors. */
    for (int mode = FAIL_SHORT; mode <= FAIL_EINTR; mode++)
        for (long k = 0; k < total; k++) {
            write_file(path, old, old_n);
            fault_init(&f, k, 0, mode);
            sgdt_assert_status(sgd__ckpt_save_io(w, path, &f.io), SGD_OK);
            assert_true(file_equals(path, neu, new_n));
            assert_int_equal(count_temps(), 0);
        }
    sgd_ckpt_writer_free(w);
    free(old);
    free(neu);
    unlink(path);
}

static void test_io_failures_load(void **state)
{
    (void)state;
    const char *path = wpath("load.sgdc");
    size_t n;
    unsigned char *b = sample_bytes(0, &n);
    write_file(path, b, n);
    fault f;
    fault_init(&f, -1, 0, FAIL_ERRNO);
    sgd_ckpt_reader *r;
    sgdt_assert_status(sgd__ckpt_open_io(&r, path, NULL, &f.io), SGD_OK);
    sgd_ckpt_reader_free(r);
    long total = f.calls;
    int fds = count_fds();
    for (int mode = FAIL_ERRNO; mode <= FAIL_EINTR; mode++)
        for (int persistent = 0; persistent <= (mode != FAIL_EINTR); persistent++) /* EINTR is retried: transient */
            for (long k = 0; k < total; k++) {
                sgdt_alloc t;
                sgdt_alloc_init(&t);
                fault_init(&f, k, persistent, mode);
                sgd_error_clear();
                sgd_status st = sgd__ckpt_open_io(&r, path, &t.base, &f.io);
                if (st == SGD_OK) {
                    /* Short reads and EINTR are retried; a failed close of a read-only file costs nothing. */
                    if (mode == FAIL_ERRNO && f.failed_op != OP_CLOSE)
                        fail_msg("call %ld (%s) failed but the open succeeded", k, op_names[f.failed_op]);
                    sgdt_assert_status(sample_verify(r, 0), SGD_OK);
                    sgd_ckpt_reader_free(r);
                } else {
                    if (mode != FAIL_ERRNO || st != SGD_EIO || sgd_error_last()[0] == '\0')
                        fail_msg("call %ld (%s, mode %d): %s (%s)", k, f.failed_op >= 0 ? op_names[f.failed_op] : "-",
                                 mode, sgd_status_str(st), sgd_error_last());
                    assert_null(r);
                    assert_non_null(strstr(sgd_error_last(), path));
                }
                assert_int_equal(t.live, 0);
                assert_int_equal(count_fds(), fds);
            }
    free(b);
    unlink(path);
}

/* ------------------------------------------------------- killed writers */

/* The file at path loads and is exactly one of the two versions; returns which. */
static int loads_as(const char *path, const unsigned char *a, size_t an, const unsigned char *b, size_t bn)
{
    sgd_ckpt_reader *r;
    sgd_status st = sgd_ckpt_reader_open(&r, path, NULL);
    if (st != SGD_OK)
        fail_msg("after a kill the checkpoint does not load: %s", sgd_error_last());
    sgd_ckpt_reader_free(r);
    if (file_equals(path, a, an))
        return 0;
    if (file_equals(path, b, bn))
        return 1;
    fail_msg("after a kill the checkpoint is neither the old nor the new one");
    return -1;
}

static void test_kill_at_every_io_call(void **state)
{
    (void)state;
    const char *path = wpath("kill.sgdc");
    size_t old_n, new_n;
    unsigned char *old = sample_bytes(0, &old_n);
    unsigned char *neu = sample_bytes(1, &new_n);
    sample s;
    sample_init(&s, 1);
    sgd_ckpt_writer *w;
    sgdt_assert_status(sample_writer(&w, &s, NULL), SGD_OK);
    write_file(path, old, old_n);
    fault f;
    fault_init(&f, -1, 0, FAIL_KILL);
    sgdt_assert_status(sgd__ckpt_save_io(w, path, &f.io), SGD_OK);
    long total = f.calls;
    int seen[2] = {0, 0};
    for (long k = 0; k < total; k++) {
        write_file(path, old, old_n);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            fault_init(&f, k, 0, FAIL_KILL);
            sgd__ckpt_save_io(w, path, &f.io);
            _exit(3); /* not reached: the hook kills the process at call k */
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        seen[loads_as(path, old, old_n, neu, new_n)]++;
        size_t removed;
        sgdt_assert_status(sgd_ckpt_cleanup_stale(path, &removed), SGD_OK);
        assert_true(removed <= 1);
        assert_int_equal(count_temps(), 0);
    }
    print_message("# killed at each of %ld I/O calls: old file %d times, new file %d times\n", total, seen[0],
                  seen[1]);
    assert_true(seen[0] > 0 && seen[1] > 0);
    sgd_ckpt_writer_free(w);
    free(old);
    free(neu);
    unlink(path);
}

static void test_kill_at_random_moments(void **state)
{
    (void)state;
    const char *path = wpath("killrand.sgdc");
    /* Two versions of a 4 MB checkpoint, each large enough that a save takes a while. */
    size_t count = 1u << 20;
    float *x = malloc(count * sizeof *x);
    int64_t d = (int64_t)count;
    unsigned char *ver[2];
    size_t ver_n[2];
    sgd_ckpt_writer *w[2];
    for (int v = 0; v < 2; v++) {
        for (size_t i = 0; i < count; i++)
            x[i] = (float)(i % 1000) + (float)v;
        sgdt_assert_status(sgd_ckpt_writer_new(&w[v], NULL), SGD_OK);
        sgdt_assert_status(sgd_ckpt_writer_begin_section(w[v], "model", 0), SGD_OK);
        sgdt_assert_status(sgd_ckpt_writer_add_tensor_copy(w[v], "x", SGD_CKPT_F32, 1, &d, x), SGD_OK);
        sgdt_assert_status(sgd_ckpt_writer_add_i64(w[v], "version", v), SGD_OK);
        uint64_t size;
        sgdt_assert_status(sgd_ckpt_writer_size(w[v], &size), SGD_OK);
        ver[v] = malloc((size_t)size);
        ver_n[v] = (size_t)size;
        sgdt_assert_status(sgd_ckpt_writer_write_memory(w[v], ver[v], ver_n[v]), SGD_OK);
    }
    sgdt_assert_status(sgd_ckpt_writer_save(w[0], path), SGD_OK);
    uint64_t seed = (uint64_t)time(NULL);
    int seen[2] = {0, 0};
    const int rounds = 40;
    for (int round = 0; round < rounds; round++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            for (int i = 0;; i++)
                if (sgd_ckpt_writer_save(w[(i + 1) % 2], path) != SGD_OK)
                    _exit(2);
        }
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        struct timespec ts = {0, (long)((seed >> 33) % 30000000)}; /* 0 to 30 ms */
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (WIFEXITED(status))
            fail_msg("the writer failed on its own (exit %d)", WEXITSTATUS(status));
        seen[loads_as(path, ver[0], ver_n[0], ver[1], ver_n[1])]++;
        size_t removed;
        sgdt_assert_status(sgd_ckpt_cleanup_stale(path, &removed), SGD_OK);
        assert_int_equal(count_temps(), 0);
    }
    print_message("# %d writers killed at random moments: version 0 left %d times, version 1 %d times\n", rounds,
                  seen[0], seen[1]);
    for (int v = 0; v < 2; v++) {
        sgd_ckpt_writer_free(w[v]);
        free(ver[v]);
    }
    free(x);
    unlink(path);
}

/* ------------------------------------------------------ stale temp files */

static void test_stale_cleanup(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s", wpath("stale.sgdc"));
    const char *stale[] = {".stale.sgdc.sgdtmp-0123456789abcdef", ".stale.sgdc.sgdtmp-ffffffffffffffff"};
    const char *keep[] = {
        ".stale.sgdc.sgdtmp-0123456789ABCDEF", /* uppercase: not ours */
        ".stale.sgdc.sgdtmp-0123456789abcde",  /* 15 digits */
        ".stale.sgdc.sgdtmp-0123456789abcdef0", /* 17 digits */
        ".other.sgdc.sgdtmp-0123456789abcdef", /* another checkpoint's */
        "stale.sgdc.sgdtmp-0123456789abcdef",  /* no dot */
        ".stale.sgdc.tmp-0123456789abcdef",
    };
    for (size_t i = 0; i < 2; i++)
        write_file(wpath(stale[i]), "x", 1);
    for (size_t i = 0; i < 6; i++)
        write_file(wpath(keep[i]), "x", 1);
    /* A live writer's file: locked. */
    char live[600];
    snprintf(live, sizeof live, "%s", wpath(".stale.sgdc.sgdtmp-aaaaaaaaaaaaaaaa"));
    int fd = open(live, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);

    size_t removed = 99;
    sgdt_assert_status(sgd_ckpt_cleanup_stale(path, &removed), SGD_OK);
    assert_int_equal(removed, 2);
    for (size_t i = 0; i < 2; i++)
        assert_int_not_equal(access(wpath(stale[i]), F_OK), 0);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(access(wpath(keep[i]), F_OK), 0);
    assert_int_equal(access(live, F_OK), 0);

    /* Saving cleans up too, and leaves the live writer's file alone. */
    write_file(wpath(stale[0]), "x", 1);
    size_t n;
    unsigned char *b = sample_bytes(0, &n);
    sample s;
    sample_init(&s, 0);
    sgd_ckpt_writer *w;
    sgdt_assert_status(sample_writer(&w, &s, NULL), SGD_OK);
    sgdt_assert_status(sgd_ckpt_writer_save(w, path), SGD_OK);
    assert_true(file_equals(path, b, n));
    assert_int_not_equal(access(wpath(stale[0]), F_OK), 0);
    assert_int_equal(access(live, F_OK), 0);
    close(fd); /* the "writer" dies */
    sgdt_assert_status(sgd_ckpt_cleanup_stale(path, &removed), SGD_OK);
    assert_int_equal(removed, 1);
    for (size_t i = 0; i < 6; i++)
        unlink(wpath(keep[i]));
    /* A relative path and a directory that does not exist. */
    sgdt_assert_status(sgd_ckpt_cleanup_stale("no-such-checkpoint-here.sgdc", &removed), SGD_OK);
    sgdt_assert_status(sgd_ckpt_cleanup_stale(wpath("missing/x.sgdc"), &removed), SGD_EIO);
    sgdt_assert_error_contains("cannot list directory");
    sgd_ckpt_writer_free(w);
    free(b);
    unlink(path);
}

/* ------------------------------------------------------ the fuzz corpus */

static void test_fuzz_corpus(void **state)
{
    (void)state;
    if (corpus_dir == NULL)
        skip();
    DIR *d = opendir(corpus_dir);
    assert_non_null(d);
    struct dirent *e;
    int ok = 0, bad = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", corpus_dir, e->d_name);
        size_t n;
        unsigned char *b = read_file(p, &n);
        assert_non_null(b);
        sgd_status st = try_open(b, n);
        /* Names say what to expect: ok-*, or bad-<status>-* with eformat, eversion or eoverflow. */
        if (strncmp(e->d_name, "ok-", 3) == 0) {
            if (st != SGD_OK)
                fail_msg("%s: %s (%s)", e->d_name, sgd_status_str(st), sgd_error_last());
            ok++;
        } else if (strncmp(e->d_name, "bad-", 4) == 0) {
            sgd_status want = strncmp(e->d_name + 4, "eversion", 8) == 0    ? SGD_EVERSION
                              : strncmp(e->d_name + 4, "eoverflow", 9) == 0 ? SGD_EOVERFLOW
                                                                           : SGD_EFORMAT;
            if (st != want)
                fail_msg("%s: %s (%s), expected %s", e->d_name, sgd_status_str(st), sgd_error_last(),
                         sgd_status_str(want));
            bad++;
        } /* other names (fuzzer findings) only have to run cleanly: replay_checkpoint runs them */
        free(b);
    }
    closedir(d);
    print_message("# corpus: %d valid and %d damaged files behave as named\n", ok, bad);
    assert_true(ok > 0 && bad > 0);
}

/* ------------------------------------------------------------------ main */

static int setup(void **state)
{
    (void)state;
    snprintf(work_dir, sizeof work_dir, "ckpt-test-XXXXXX");
    if (mkdtemp(work_dir) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(work_dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlink(wpath(e->d_name));
        closedir(d);
    }
    return rmdir(work_dir);
}

int main(int argc, char **argv)
{
    static char corpus[1024];
    const char *data = getenv("SGDT_DATA_DIR");
    if (argc > 1) {
        corpus_dir = argv[1];
    } else if (data != NULL && strlen(data) >= 5 && strcmp(data + strlen(data) - 5, "/data") == 0) {
        /* $SGDT_DATA_DIR is tests/data; the corpus is tests/fuzz/corpus/checkpoint. */
        snprintf(corpus, sizeof corpus, "%.*s/fuzz/corpus/checkpoint", (int)(strlen(data) - 5), data);
        corpus_dir = corpus;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test(test_roundtrip_memory),
        cmocka_unit_test(test_borrowed_data_read_at_write_time),
        cmocka_unit_test(test_roundtrip_file),
        cmocka_unit_test(test_save_replaces_only_regular_files),
        cmocka_unit_test(test_writer_misuse),
        cmocka_unit_test(test_reader_misuse),
        cmocka_unit_test(test_truncation_everywhere),
        cmocka_unit_test(test_bit_flips_everywhere),
        cmocka_unit_test(test_crafted_damage),
        cmocka_unit_test(test_newer_minor_version),
        cmocka_unit_test(test_allocation_bounded_by_header),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_io_failures_save),
        cmocka_unit_test(test_io_failures_load),
        cmocka_unit_test(test_kill_at_every_io_call),
        cmocka_unit_test(test_kill_at_random_moments),
        cmocka_unit_test(test_stale_cleanup),
        cmocka_unit_test(test_output_target),
        cmocka_unit_test(test_fuzz_corpus),
    };
    return cmocka_run_group_tests_name("checkpoint", tests, setup, teardown);
}
