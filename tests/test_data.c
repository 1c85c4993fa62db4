/* Tests of the data module: datasets, splits, loaders, the IDX reader. */
#include "util/sgdtest.h"

#include "data/data_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---------------------------------------------------------------- helpers */

/* A dataset of n rows of dim features where x[i][0] = i (rows identify themselves), labels i % 7. */
typedef struct rows_fixture {
    float *x;
    int32_t *labels;
    float *targets;
    int64_t n, dim;
} rows_fixture;

static void rows_make(rows_fixture *f, int64_t n, int64_t dim)
{
    f->n = n;
    f->dim = dim;
    f->x = calloc((size_t)(n * dim), sizeof(float));
    f->labels = calloc((size_t)n, sizeof(int32_t));
    f->targets = calloc((size_t)(n * 2), sizeof(float));
    assert_non_null(f->x);
    assert_non_null(f->labels);
    assert_non_null(f->targets);
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < dim; j++)
            f->x[i * dim + j] = (float)i + 0.001f * (float)j;
        f->labels[i] = (int32_t)(i % 7);
        f->targets[2 * i] = (float)i;
        f->targets[2 * i + 1] = -(float)i;
    }
}

static void rows_free(rows_fixture *f)
{
    free(f->x);
    free(f->labels);
    free(f->targets);
}

/* Row identity of a feature row made by rows_make. */
static int64_t row_id(const float *x)
{
    return (int64_t)lrintf(x[0]);
}

/* A raw IDX buffer: header for type/dims, then `payload` bytes (already big-endian). */
static size_t idx_make(unsigned char *buf, int type, int rank, const uint32_t *dims, const void *payload,
                       size_t payload_len)
{
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = (unsigned char)type;
    buf[3] = (unsigned char)rank;
    for (int i = 0; i < rank; i++) {
        buf[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        buf[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        buf[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        buf[7 + 4 * i] = (unsigned char)dims[i];
    }
    memcpy(buf + 4 + 4 * rank, payload, payload_len);
    return 4 + 4 * (size_t)rank + payload_len;
}

/* gzip-compresses src into dst (capacity cap); returns the compressed length. */
static size_t gzip_buf(unsigned char *dst, size_t cap, const unsigned char *src, size_t len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)(uintptr_t)src;
    z.avail_in = (uInt)len;
    z.next_out = dst;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    return n;
}

/* A small image file: 3 images of 2x2 uint8 pixels. */
static const unsigned char k_pixels[12] = {0, 255, 51, 102, 1, 2, 3, 4, 200, 100, 50, 25};
static const uint32_t k_img_dims[3] = {3, 2, 2};

static size_t make_images(unsigned char *buf)
{
    return idx_make(buf, SGD_IDX_UINT8, 3, k_img_dims, k_pixels, sizeof k_pixels);
}

static size_t make_labels(unsigned char *buf)
{
    static const unsigned char lab[3] = {2, 0, 9};
    static const uint32_t dims[1] = {3};
    return idx_make(buf, SGD_IDX_UINT8, 1, dims, lab, sizeof lab);
}

static char g_tmpdir[256];

/* A path in the test's temporary directory (four rotating buffers: usable twice in one call). */
static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmpdir, name);
    return buf[k];
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* ---------------------------------------------------------------- datasets */

static void test_dataset_views(void **state)
{
    (void)state;
    rows_fixture f;
    rows_make(&f, 10, 3);
    sgd_dataset *d;
    sgdt_assert_status(sgd_dataset_from_labels(&d, f.x, f.labels, f.n, f.dim, NULL), SGD_OK);
    assert_int_equal(sgd_dataset_size(d), 10);
    assert_int_equal(sgd_dataset_dim(d), 3);
    assert_int_equal(sgd_dataset_target_dim(d), 0);
    assert_int_equal(sgd_dataset_num_classes(d), 7);
    const float *x, *t;
    int32_t label;
    sgdt_assert_status(sgd_dataset_row(d, 4, &x, &label, &t), SGD_OK);
    assert_ptr_equal(x, f.x + 12); /* a view: no copy */
    assert_int_equal(label, 4);
    assert_null(t);
    sgdt_assert_status(sgd_dataset_row(d, 10, &x, &label, &t), SGD_EINVAL);
    sgdt_assert_error_contains("i=10");
    sgdt_assert_status(sgd_dataset_row(d, -1, NULL, NULL, NULL), SGD_EINVAL);

    sgd_dataset *s;
    sgdt_assert_status(sgd_dataset_subset(&s, d, 3, 5), SGD_OK);
    assert_int_equal(sgd_dataset_size(s), 5);
    sgdt_assert_status(sgd_dataset_row(s, 0, &x, &label, NULL), SGD_OK);
    assert_int_equal(row_id(x), 3);
    sgd_dataset_free(d); /* the subset borrows the host's arrays, not d */
    sgdt_assert_status(sgd_dataset_row(s, 4, &x, &label, NULL), SGD_OK);
    assert_int_equal(row_id(x), 7);
    assert_int_equal(label, 0);
    sgdt_assert_status(sgd_dataset_subset(&d, s, 2, 4), SGD_EINVAL);
    sgdt_assert_error_contains("count=4");
    assert_null(d);
    sgdt_assert_status(sgd_dataset_subset(&d, s, 5, 1), SGD_EINVAL);
    sgdt_assert_error_contains("start=5");
    sgd_dataset_free(s);

    sgdt_assert_status(sgd_dataset_from_targets(&d, f.x, f.targets, f.n, f.dim, 2, NULL), SGD_OK);
    assert_int_equal(sgd_dataset_target_dim(d), 2);
    assert_int_equal(sgd_dataset_num_classes(d), 0);
    sgdt_assert_status(sgd_dataset_row(d, 6, NULL, &label, &t), SGD_OK);
    assert_int_equal(label, -1);
    assert_true(t[0] == 6.0f && t[1] == -6.0f);
    sgd_dataset_free(d);
    sgd_dataset_free(NULL);
    rows_free(&f);
}

static void test_dataset_bad_input(void **state)
{
    (void)state;
    rows_fixture f;
    rows_make(&f, 4, 2);
    sgd_dataset *d = (sgd_dataset *)&f; /* must be reset to NULL on failure */
    sgdt_assert_status(sgd_dataset_from_labels(&d, NULL, f.labels, 4, 2, NULL), SGD_EINVAL);
    assert_null(d);
    sgdt_assert_error_contains("x is NULL");
    sgdt_assert_status(sgd_dataset_from_labels(&d, f.x, NULL, 4, 2, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("labels is NULL");
    sgdt_assert_status(sgd_dataset_from_labels(NULL, f.x, f.labels, 4, 2, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_dataset_from_labels(&d, f.x, f.labels, 0, 2, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("n=0");
    sgdt_assert_status(sgd_dataset_from_labels(&d, f.x, f.labels, 4, 0, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("dim=0");
    sgdt_assert_status(sgd_dataset_from_labels(&d, f.x, f.labels, 4, (int64_t)1 << 25, NULL), SGD_EINVAL);
    f.x[5] = NAN;
    sgdt_assert_status(sgd_dataset_from_labels(&d, f.x, f.labels, 4, 2, NULL), SGD_ENONFINITE);
    sgdt_assert_error_contains("x[2][1]");
    f.x[5] = INFINITY;
    sgdt_assert_status(sgd_dataset_from_targets(&d, f.x, f.targets, 4, 2, 2, NULL), SGD_ENONFINITE);
    sgdt_assert_error_contains("x[2][1]");
    f.x[5] = 1.0f;
    f.targets[7] = -INFINITY;
    sgdt_assert_status(sgd_dataset_from_targets(&d, f.x, f.targets, 4, 2, 2, NULL), SGD_ENONFINITE);
    sgdt_assert_error_contains("targets[3][1]");
    sgdt_assert_status(sgd_dataset_from_targets(&d, f.x, f.targets, 4, 2, 0, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("target_dim=0");
    f.labels[3] = -2;
    sgdt_assert_status(sgd_dataset_from_labels(&d, f.x, f.labels, 4, 2, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("labels[3]=-2");
    f.labels[3] = INT32_MAX;
    sgdt_assert_status(sgd_dataset_from_labels(&d, f.x, f.labels, 4, 2, NULL), SGD_EINVAL);
    f.labels[3] = 1;
    sgdt_alloc t;
    sgdt_alloc_init(&t);
    t.base.free_fn = NULL;
    sgdt_assert_status(sgd_dataset_from_labels(&d, f.x, f.labels, 4, 2, &t.base), SGD_EINVAL);
    sgdt_assert_error_contains("free_fn");
    assert_null(d);
    /* Queries on NULL. */
    assert_int_equal(sgd_dataset_size(NULL), 0);
    assert_int_equal(sgd_dataset_dim(NULL), 0);
    assert_int_equal(sgd_dataset_target_dim(NULL), 0);
    assert_int_equal(sgd_dataset_num_classes(NULL), 0);
    sgdt_assert_status(sgd_dataset_row(NULL, 0, NULL, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_dataset_subset(&d, NULL, 0, 1), SGD_EINVAL);
    rows_free(&f);
}

static void test_split(void **state)
{
    (void)state;
    rows_fixture f;
    rows_make(&f, 100, 2);
    sgd_dataset *d, *tr, *va;
    sgdt_assert_status(sgd_dataset_from_labels(&d, f.x, f.labels, f.n, f.dim, NULL), SGD_OK);

    /* Without shuffling: the last n_val rows. */
    sgdt_assert_status(sgd_dataset_split(&tr, &va, d, 20, 0, 0), SGD_OK);
    assert_int_equal(sgd_dataset_size(tr), 80);
    assert_int_equal(sgd_dataset_size(va), 20);
    const float *x;
    sgd_dataset_row(va, 0, &x, NULL, NULL);
    assert_int_equal(row_id(x), 80);
    assert_int_equal(sgd_dataset_num_classes(va), 7);
    sgd_dataset_free(tr);
    sgd_dataset_free(va);

    /* With shuffling: disjoint, complete, ascending, reproducible, seed-dependent. */
    sgdt_assert_status(sgd_dataset_split(&tr, &va, d, 30, 1, 42), SGD_OK);
    int seen[100] = {0};
    int64_t prev = -1, va_ids[30];
    for (int64_t i = 0; i < 30; i++) {
        sgd_dataset_row(va, i, &x, NULL, NULL);
        va_ids[i] = row_id(x);
        assert_true(va_ids[i] > prev);
        prev = va_ids[i];
        seen[va_ids[i]]++;
    }
    prev = -1;
    for (int64_t i = 0; i < 70; i++) {
        int32_t lab;
        sgd_dataset_row(tr, i, &x, &lab, NULL);
        assert_true(row_id(x) > prev);
        assert_int_equal(lab, row_id(x) % 7);
        prev = row_id(x);
        seen[row_id(x)]++;
    }
    for (int i = 0; i < 100; i++)
        assert_int_equal(seen[i], 1);
    /* A split of the shuffled part composes the index arrays; free the parents first. */
    sgd_dataset *tr2, *va2;
    sgdt_assert_status(sgd_dataset_split(&tr2, &va2, tr, 10, 1, 7), SGD_OK);
    sgd_dataset_free(tr);
    sgd_dataset_free(d);
    for (int64_t i = 0; i < 10; i++) {
        sgd_dataset_row(va2, i, &x, NULL, NULL);
        for (int k = 0; k < 30; k++)
            assert_true(row_id(x) != va_ids[k]); /* never a row of the first validation part */
    }
    sgd_dataset *sub;
    sgdt_assert_status(sgd_dataset_subset(&sub, tr2, 5, 3), SGD_OK);
    const float *xs;
    sgd_dataset_row(tr2, 6, &x, NULL, NULL);
    sgd_dataset_row(sub, 1, &xs, NULL, NULL);
    assert_ptr_equal(x, xs);
    sgd_dataset_free(tr2);
    sgd_dataset_free(va2);
    sgd_dataset_free(sub);
    sgd_dataset_free(va);

    sgdt_assert_status(sgd_dataset_from_labels(&d, f.x, f.labels, f.n, f.dim, NULL), SGD_OK);
    sgd_dataset *va_b, *tr_b;
    sgdt_assert_status(sgd_dataset_split(&tr_b, &va_b, d, 30, 1, 42), SGD_OK);
    for (int64_t i = 0; i < 30; i++) {
        sgd_dataset_row(va_b, i, &x, NULL, NULL);
        assert_int_equal(row_id(x), va_ids[i]);
    }
    sgd_dataset_free(tr_b);
    sgd_dataset_free(va_b);
    sgdt_assert_status(sgd_dataset_split(&tr_b, &va_b, d, 30, 1, 43), SGD_OK);
    int same = 0;
    for (int64_t i = 0; i < 30; i++) {
        sgd_dataset_row(va_b, i, &x, NULL, NULL);
        same += row_id(x) == va_ids[i];
    }
    assert_true(same < 30);
    sgd_dataset_free(tr_b);
    sgd_dataset_free(va_b);

    /* Bad input. */
    sgdt_assert_status(sgd_dataset_split(&tr, &va, d, 0, 1, 0), SGD_EINVAL);
    sgdt_assert_error_contains("n_val=0");
    assert_null(tr);
    assert_null(va);
    sgdt_assert_status(sgd_dataset_split(&tr, &va, d, 100, 0, 0), SGD_EINVAL);
    sgdt_assert_status(sgd_dataset_split(&tr, NULL, d, 10, 0, 0), SGD_EINVAL);
    /* One pointer for both parts: one would overwrite the other and leak (ASan's leak check sees it). */
    sgd_dataset *both = NULL;
    sgdt_assert_status(sgd_dataset_split(&both, &both, d, 10, 0, 0), SGD_EINVAL);
    sgdt_assert_error_contains("same pointer");
    assert_null(both);
    sgdt_assert_status(sgd_dataset_split(&both, &both, d, 10, 1, 3), SGD_EINVAL);
    sgdt_assert_status(sgd_dataset_split(&tr, &va, NULL, 10, 0, 0), SGD_EINVAL);
    sgd_dataset *one;
    sgdt_assert_status(sgd_dataset_subset(&one, d, 0, 1), SGD_OK);
    sgdt_assert_status(sgd_dataset_split(&tr, &va, one, 1, 0, 0), SGD_EINVAL);
    sgdt_assert_error_contains("at least 2");
    sgd_dataset_free(one);
    sgd_dataset_free(d);
    rows_free(&f);
}

/* ---------------------------------------------------------------- loaders */

static void test_loader_order(void **state)
{
    (void)state;
    rows_fixture f;
    rows_make(&f, 10, 3);
    sgd_dataset *d;
    sgdt_assert_status(sgd_dataset_from_labels(&d, f.x, f.labels, f.n, f.dim, NULL), SGD_OK);
    sgd_loader_options o;
    sgd_loader_options_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.shuffle, 1);
    assert_int_equal(o.drop_last, 0);
    o.shuffle = 0;
    sgd_loader *l;
    sgdt_assert_status(sgd_loader_new(&l, d, 4, &o), SGD_OK);
    sgd_dataset_free(d); /* the loader does not need the handle */
    assert_int_equal(sgd_loader_num_batches(l), 3);
    sgd_batch b;
    for (int epoch = 0; epoch < 2; epoch++) {
        int64_t sizes[3] = {4, 4, 2};
        for (int i = 0; i < 3; i++) {
            sgdt_assert_status(sgd_loader_next(l, &b), SGD_OK);
            assert_int_equal(b.size, sizes[i]);
            assert_int_equal(b.epoch, epoch);
            assert_int_equal(b.index, i);
            assert_ptr_equal(b.x, f.x + 12 * i); /* consecutive rows: no copy */
            assert_ptr_equal(b.labels, f.labels + 4 * i);
            assert_null(b.targets);
        }
        sgdt_assert_status(sgd_loader_next(l, &b), SGD_OK);
        assert_int_equal(b.size, 0); /* end of epoch */
        assert_int_equal(b.epoch, epoch);
        assert_int_equal(b.index, 3);
    }
    sgd_loader_free(l);

    sgdt_assert_status(sgd_dataset_from_targets(&d, f.x, f.targets, f.n, f.dim, 2, NULL), SGD_OK);
    o.drop_last = 1;
    sgdt_assert_status(sgd_loader_new(&l, d, 4, &o), SGD_OK);
    assert_int_equal(sgd_loader_num_batches(l), 2);
    sgdt_assert_status(sgd_loader_next(l, &b), SGD_OK);
    sgdt_assert_status(sgd_loader_next(l, &b), SGD_OK);
    assert_int_equal(b.size, 4);
    assert_true(b.targets[0] == 4.0f);
    assert_null(b.labels);
    sgdt_assert_status(sgd_loader_next(l, &b), SGD_OK);
    assert_int_equal(b.size, 0);
    sgd_loader_free(l);
    sgdt_assert_status(sgd_loader_new(&l, d, 11, &o), SGD_EINVAL);
    sgdt_assert_error_contains("drop_last");
    assert_null(l);
    sgdt_assert_status(sgd_loader_new(&l, d, 0, &o), SGD_EINVAL);
    sgdt_assert_error_contains("batch_size=0");
    sgdt_assert_status(sgd_loader_new(&l, NULL, 4, &o), SGD_EINVAL);
    o.struct_size = 3;
    sgdt_assert_status(sgd_loader_new(&l, d, 4, &o), SGD_EINVAL);
    sgdt_assert_error_contains("struct_size");
    /* A batch larger than the dataset without drop_last: one batch of everything. */
    sgdt_assert_status(sgd_loader_new(&l, d, 1000, NULL), SGD_OK);
    assert_int_equal(sgd_loader_num_batches(l), 1);
    sgdt_assert_status(sgd_loader_next(l, &b), SGD_OK);
    assert_int_equal(b.size, 10);
    sgdt_assert_status(sgd_loader_next(NULL, &b), SGD_EINVAL);
    sgdt_assert_status(sgd_loader_next(l, NULL), SGD_EINVAL);
    sgd_loader_free(l);
    sgd_loader_free(NULL);
    sgd_loader_options_init(NULL);
    assert_int_equal(sgd_loader_num_batches(NULL), 0);
    sgd_dataset_free(d);
    rows_free(&f);
}

/* Reads one epoch of row ids from a shuffling loader. */
static void epoch_ids(sgd_loader *l, int64_t *ids, int64_t n, int64_t epoch)
{
    sgd_batch b;
    int64_t k = 0;
    while (sgd_loader_next(l, &b) == SGD_OK && b.size > 0) {
        assert_int_equal(b.epoch, epoch);
        for (int64_t i = 0; i < b.size; i++) {
            assert_true(k < n);
            ids[k] = row_id(b.x + i * 3);
            assert_int_equal(b.labels[i], ids[k] % 7);
            k++;
        }
    }
    assert_int_equal(k, n);
}

static void test_loader_shuffle(void **state)
{
    (void)state;
    rows_fixture f;
    rows_make(&f, 50, 3);
    sgd_dataset *d;
    sgdt_assert_status(sgd_dataset_from_labels(&d, f.x, f.labels, f.n, f.dim, NULL), SGD_OK);
    sgd_loader_options o;
    sgd_loader_options_init(&o);
    o.seed = 5;
    sgd_loader *a, *b;
    sgdt_assert_status(sgd_loader_new(&a, d, 8, &o), SGD_OK);
    sgdt_assert_status(sgd_loader_new(&b, d, 8, &o), SGD_OK);
    int64_t e0[50], e1[50], r0[50], r1[50];
    epoch_ids(a, e0, 50, 0);
    epoch_ids(a, e1, 50, 1);
    epoch_ids(b, r0, 50, 0);
    epoch_ids(b, r1, 50, 1);
    assert_memory_equal(e0, r0, sizeof e0); /* the same seed: the same orders */
    assert_memory_equal(e1, r1, sizeof e1);
    int seen[50] = {0}, in_order = 0;
    for (int i = 0; i < 50; i++) {
        seen[e0[i]]++;
        in_order += e0[i] == i;
    }
    for (int i = 0; i < 50; i++)
        assert_int_equal(seen[i], 1); /* a permutation */
    assert_true(in_order < 10);
    assert_memory_not_equal(e0, e1, sizeof e0); /* reshuffled each epoch */
    /* Seek: epoch 1 batch 2 onwards equals an uninterrupted run. */
    sgd_loader *c;
    sgdt_assert_status(sgd_loader_new(&c, d, 8, &o), SGD_OK);
    sgdt_assert_status(sgd_loader_seek(c, 1, 2), SGD_OK);
    sgd_batch bt;
    sgdt_assert_status(sgd_loader_next(c, &bt), SGD_OK);
    assert_int_equal(bt.epoch, 1);
    assert_int_equal(bt.index, 2);
    for (int i = 0; i < 8; i++)
        assert_int_equal(row_id(bt.x + 3 * i), e1[16 + i]);
    sgdt_assert_status(sgd_loader_seek(c, 0, 8), SGD_EINVAL);
    sgdt_assert_error_contains("batch=8");
    sgdt_assert_status(sgd_loader_seek(c, -1, 0), SGD_EINVAL);
    /* The epoch counts on at each epoch's end: INT64_MAX would overflow there. */
    sgdt_assert_status(sgd_loader_seek(c, INT64_MAX, 0), SGD_EINVAL);
    sgdt_assert_error_contains("2^53");
    sgdt_assert_status(sgd_loader_seek(NULL, 0, 0), SGD_EINVAL);
    sgdt_assert_status(sgd_loader_seek(c, 0, 7), SGD_OK);
    sgdt_assert_status(sgd_loader_next(c, &bt), SGD_OK);
    assert_int_equal(bt.size, 0); /* the end marker */
    sgd_loader_free(c);
    /* Another seed, another order. */
    o.seed = 6;
    sgdt_assert_status(sgd_loader_new(&c, d, 8, &o), SGD_OK);
    epoch_ids(c, r0, 50, 0);
    assert_memory_not_equal(e0, r0, sizeof e0);
    sgd_loader_free(c);

    /* The loader itself allocates nothing after creation. */
    sgdt_alloc t;
    sgdt_alloc_init(&t);
    sgd_dataset *dt, *tr, *va;
    sgdt_assert_status(sgd_dataset_from_labels(&dt, f.x, f.labels, f.n, f.dim, &t.base), SGD_OK);
    sgdt_assert_status(sgd_dataset_split(&tr, &va, dt, 10, 1, 3), SGD_OK);
    sgdt_assert_status(sgd_loader_new(&c, tr, 8, &o), SGD_OK);
    long calls = t.calls;
    epoch_ids(c, r0, 40, 0);
    epoch_ids(c, r0, 40, 1);
    assert_int_equal(t.calls, calls);
    /* An unshuffled loader over an index-based split gathers the right rows. */
    sgd_loader *u;
    o.shuffle = 0;
    sgdt_assert_status(sgd_loader_new(&u, va, 4, &o), SGD_OK);
    sgd_dataset_free(va);
    sgd_dataset_free(tr);
    sgd_dataset_free(dt);
    sgdt_assert_status(sgd_loader_next(u, &bt), SGD_OK);
    assert_int_equal(bt.size, 4);
    int64_t prev = -1;
    for (int i = 0; i < 4; i++) {
        assert_true(row_id(bt.x + 3 * i) > prev);
        prev = row_id(bt.x + 3 * i);
    }
    sgd_loader_free(u);
    sgd_loader_free(c);
    assert_int_equal(t.live, 0);
    sgd_loader_free(a);
    sgd_loader_free(b);
    sgd_dataset_free(d);
    rows_free(&f);
}

/* ---------------------------------------------------------------- IDX */

static void test_idx_raw(void **state)
{
    (void)state;
    unsigned char buf[64];
    size_t n = make_images(buf);
    sgd_idx *a;
    sgdt_assert_status(sgd_idx_read_memory(&a, buf, n, NULL), SGD_OK);
    assert_int_equal(sgd_idx_type(a), SGD_IDX_UINT8);
    assert_int_equal(sgd_idx_rank(a), 3);
    assert_int_equal(sgd_idx_dim(a, 0), 3);
    assert_int_equal(sgd_idx_dim(a, 2), 2);
    assert_int_equal(sgd_idx_dim(a, 3), 0);
    assert_int_equal(sgd_idx_dim(a, -1), 0);
    assert_int_equal(sgd_idx_count(a), 12);
    assert_memory_equal(sgd_idx_data(a), k_pixels, 12);
    assert_int_equal((uintptr_t)sgd_idx_data(a) % 64, 0);
    sgd_idx_free(a);
    sgd_idx_free(NULL);
    assert_int_equal(sgd_idx_type(NULL), 0);
    assert_int_equal(sgd_idx_rank(NULL), 0);
    assert_int_equal(sgd_idx_count(NULL), 0);
    assert_null(sgd_idx_data(NULL));

    /* Multi-byte types are big-endian in the file. */
    static const unsigned char i16[4] = {0xff, 0xfe, 0x01, 0x02};
    static const unsigned char i32[8] = {0x80, 0, 0, 0, 0, 0, 1, 0};
    static const unsigned char f32[8] = {0x3f, 0x80, 0, 0, 0xc0, 0x20, 0, 0}; /* 1.0, -2.5 */
    static const unsigned char f64[8] = {0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18}; /* pi */
    uint32_t two = 2, one = 1;
    n = idx_make(buf, SGD_IDX_INT16, 1, &two, i16, 4);
    sgdt_assert_status(sgd_idx_read_memory(&a, buf, n, NULL), SGD_OK);
    const int16_t *p16 = sgd_idx_data(a);
    assert_int_equal(p16[0], -2);
    assert_int_equal(p16[1], 258);
    sgd_idx_free(a);
    n = idx_make(buf, SGD_IDX_INT32, 1, &two, i32, 8);
    sgdt_assert_status(sgd_idx_read_memory(&a, buf, n, NULL), SGD_OK);
    const int32_t *p32 = sgd_idx_data(a);
    assert_int_equal(p32[0], INT32_MIN);
    assert_int_equal(p32[1], 256);
    sgd_idx_free(a);
    n = idx_make(buf, SGD_IDX_FLOAT32, 1, &two, f32, 8);
    sgdt_assert_status(sgd_idx_read_memory(&a, buf, n, NULL), SGD_OK);
    const float *pf = sgd_idx_data(a);
    assert_true(pf[0] == 1.0f && pf[1] == -2.5f);
    sgd_idx_free(a);
    n = idx_make(buf, SGD_IDX_FLOAT64, 1, &one, f64, 8);
    sgdt_assert_status(sgd_idx_read_memory(&a, buf, n, NULL), SGD_OK);
    assert_true(*(const double *)sgd_idx_data(a) == 3.141592653589793);
    sgd_idx_free(a);
}

/* Every malformed raw buffer is refused with EFORMAT/EOVERFLOW and a message naming the problem. */
static void test_idx_raw_bad(void **state)
{
    (void)state;
    unsigned char buf[128];
    size_t n = make_images(buf);
    sgd_idx *a = (sgd_idx *)buf;
    sgdt_assert_status(sgd_idx_read_memory(&a, buf, 3, NULL), SGD_EFORMAT);
    assert_null(a);
    sgdt_assert_error_contains("too short");
    sgdt_assert_status(sgd_idx_read_memory(&a, NULL, 0, NULL), SGD_EFORMAT);
    sgdt_assert_status(sgd_idx_read_memory(&a, NULL, 5, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_idx_read_memory(NULL, buf, n, NULL), SGD_EINVAL);
    /* Truncated at every length, and one byte too long. */
    for (size_t len = 0; len < n; len++) {
        sgdt_assert_status(sgd_idx_read_memory(&a, buf, len, NULL), SGD_EFORMAT);
        assert_null(a);
    }
    sgdt_assert_status(sgd_idx_read_memory(&a, buf, n - 1, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("truncated");
    sgdt_assert_status(sgd_idx_read_memory(&a, buf, 10, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("truncated header");
    buf[n] = 7;
    sgdt_assert_status(sgd_idx_read_memory(&a, buf, n + 1, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("1 unexpected bytes");
    unsigned char bad[128];
    memcpy(bad, buf, n);
    bad[1] = 8;
    sgdt_assert_status(sgd_idx_read_memory(&a, bad, n, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("bad magic 00 08 08 03");
    memcpy(bad, buf, n);
    bad[2] = 0x0a;
    sgdt_assert_status(sgd_idx_read_memory(&a, bad, n, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("unknown element type 0x0a");
    memcpy(bad, buf, n);
    bad[3] = 0;
    sgdt_assert_status(sgd_idx_read_memory(&a, bad, n, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("0 dimensions");
    bad[3] = 9;
    sgdt_assert_status(sgd_idx_read_memory(&a, bad, n, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("9 dimensions");
    memcpy(bad, buf, n);
    bad[11] = 0; /* dimension 1 = 0 */
    sgdt_assert_status(sgd_idx_read_memory(&a, bad, n, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("dimension 1 is 0");
    /* Lying sizes: huge dimensions whose product overflows, or exceeds the data. */
    uint32_t huge[8] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 2, 2, 2, 2};
    size_t hn = idx_make(bad, SGD_IDX_FLOAT64, 8, huge, "", 0);
    sgdt_assert_status(sgd_idx_read_memory(&a, bad, hn, NULL), SGD_EOVERFLOW);
    sgdt_assert_error_contains("overflows");
    uint32_t big[2] = {60000, 784};
    hn = idx_make(bad, SGD_IDX_UINT8, 2, big, k_pixels, 12);
    sgdt_assert_status(sgd_idx_read_memory(&a, bad, hn, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("declares 47040000 bytes of data, the file has 12");
    /* Every single-bit flip of a valid file: a clean status, never a crash (ASan checks reads). */
    for (size_t i = 0; i < n * 8; i++) {
        memcpy(bad, buf, n);
        bad[i / 8] ^= (unsigned char)(1u << (i % 8));
        sgd_status st = sgd_idx_read_memory(&a, bad, n, NULL);
        if (st == SGD_OK)
            sgd_idx_free(a);
        else
            assert_true(st == SGD_EFORMAT || st == SGD_EOVERFLOW);
    }
}

static void test_idx_gzip(void **state)
{
    (void)state;
    unsigned char raw[64], gz[256], bad[256];
    size_t n = make_images(raw);
    size_t gn = gzip_buf(gz, sizeof gz, raw, n);
    sgd_idx *a;
    sgdt_assert_status(sgd_idx_read_memory(&a, gz, gn, NULL), SGD_OK);
    assert_int_equal(sgd_idx_count(a), 12);
    assert_memory_equal(sgd_idx_data(a), k_pixels, 12);
    sgd_idx_free(a);
    /* Truncated at every byte: always EFORMAT. */
    for (size_t len = 2; len < gn; len++) {
        sgd_status st = sgd_idx_read_memory(&a, gz, len, NULL);
        if (st != SGD_EFORMAT)
            fail_msg("gzip truncated to %zu of %zu bytes: %s (%s)", len, gn, sgd_status_str(st), sgd_error_last());
        assert_null(a);
    }
    sgdt_assert_status(sgd_idx_read_memory(&a, gz, gn - 1, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("truncated gzip stream");
    /* A damaged CRC in the trailer. */
    memcpy(bad, gz, gn);
    bad[gn - 8] ^= 1;
    sgdt_assert_status(sgd_idx_read_memory(&a, bad, gn, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("corrupt gzip stream");
    /* Trailing garbage after the member. */
    memcpy(bad, gz, gn);
    bad[gn] = 0;
    sgdt_assert_status(sgd_idx_read_memory(&a, bad, gn + 1, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("after the gzip stream");
    /* More data in the stream than the header declares. */
    raw[n] = 1;
    size_t gn2 = gzip_buf(bad, sizeof bad, raw, n + 1);
    sgdt_assert_status(sgd_idx_read_memory(&a, bad, gn2, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("more data than the header declares");
    /* Less data than declared. */
    gn2 = gzip_buf(bad, sizeof bad, raw, n - 1);
    sgdt_assert_status(sgd_idx_read_memory(&a, bad, gn2, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("truncated");
    /* A header declaring far more than deflate can expand to from this many bytes: refused before allocating. */
    uint32_t big[2] = {60000, 784};
    size_t hn = idx_make(raw, SGD_IDX_UINT8, 2, big, "", 0);
    gn2 = gzip_buf(bad, sizeof bad, raw, hn);
    sgdt_alloc t;
    sgdt_alloc_init(&t);
    sgdt_assert_status(sgd_idx_read_memory(&a, bad, gn2, &t.base), SGD_EFORMAT);
    sgdt_assert_error_contains("more than a");
    assert_true(t.peak_bytes < 100000);
    assert_int_equal(t.live, 0);
    /* A bad magic inside the stream. */
    n = make_images(raw);
    raw[0] = 1;
    gn2 = gzip_buf(bad, sizeof bad, raw, n);
    sgdt_assert_status(sgd_idx_read_memory(&a, bad, gn2, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("bad magic");
    /* Corrupt deflate data and bit flips anywhere: a clean status. */
    for (size_t i = 0; i < gn * 8; i++) {
        memcpy(bad, gz, gn);
        bad[i / 8] ^= (unsigned char)(1u << (i % 8));
        sgd_status st = sgd_idx_read_memory(&a, bad, gn, NULL);
        if (st == SGD_OK)
            sgd_idx_free(a);
        else
            assert_true(st == SGD_EFORMAT || st == SGD_EOVERFLOW);
    }
}

static void test_dataset_from_idx(void **state)
{
    (void)state;
    unsigned char ib[64], lb[64];
    size_t in = make_images(ib), ln = make_labels(lb);
    sgd_idx *img, *lab;
    sgdt_assert_status(sgd_idx_read_memory(&img, ib, in, NULL), SGD_OK);
    sgdt_assert_status(sgd_idx_read_memory(&lab, lb, ln, NULL), SGD_OK);
    sgd_dataset *d;
    sgdt_assert_status(sgd_dataset_from_idx(&d, img, lab, NULL), SGD_OK);
    sgd_idx_free(img); /* the dataset owns a converted copy */
    assert_int_equal(sgd_dataset_size(d), 3);
    assert_int_equal(sgd_dataset_dim(d), 4);
    assert_int_equal(sgd_dataset_num_classes(d), 10);
    const float *x;
    int32_t label;
    sgd_dataset_row(d, 0, &x, &label, NULL);
    assert_true(x[0] == 0.0f && x[1] == 1.0f && fabsf(x[2] - 0.2f) < 1e-7f);
    assert_int_equal(label, 2);
    sgd_dataset_row(d, 2, &x, &label, NULL);
    assert_true(fabsf(x[0] - 200.0f / 255.0f) < 1e-7f);
    assert_int_equal(label, 9);
    sgd_dataset_free(d);

    /* Rows that do not match. */
    uint32_t two = 2;
    unsigned char lb2[32];
    size_t ln2 = idx_make(lb2, SGD_IDX_UINT8, 1, &two, "\1\2", 2);
    sgd_idx *lab2;
    sgdt_assert_status(sgd_idx_read_memory(&img, ib, in, NULL), SGD_OK);
    sgdt_assert_status(sgd_idx_read_memory(&lab2, lb2, ln2, NULL), SGD_OK);
    sgdt_assert_status(sgd_dataset_from_idx(&d, img, lab2, NULL), SGD_ESHAPE);
    sgdt_assert_error_contains("features has 3 rows but labels has 2");
    assert_null(d);
    sgd_idx_free(lab2);
    /* Negative int8 labels. */
    uint32_t three = 3;
    ln2 = idx_make(lb2, SGD_IDX_INT8, 1, &three, "\1\xff\2", 3);
    sgdt_assert_status(sgd_idx_read_memory(&lab2, lb2, ln2, NULL), SGD_OK);
    sgdt_assert_status(sgd_dataset_from_idx(&d, img, lab2, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("label 1 is -1");
    sgd_idx_free(lab2);
    /* Integer labels with several values per row. */
    uint32_t d32[2] = {3, 2};
    ln2 = idx_make(lb2, SGD_IDX_UINT8, 2, d32, "\1\2\3\4\5\6", 6);
    sgdt_assert_status(sgd_idx_read_memory(&lab2, lb2, ln2, NULL), SGD_OK);
    sgdt_assert_status(sgd_dataset_from_idx(&d, img, lab2, NULL), SGD_ESHAPE);
    sgdt_assert_error_contains("one per row");
    sgd_idx_free(lab2);
    /* Float labels are targets. */
    static const unsigned char ft[12] = {0x3f, 0x80, 0, 0, 0x40, 0, 0, 0, 0xc0, 0x40, 0, 0};
    ln2 = idx_make(lb2, SGD_IDX_FLOAT32, 1, &three, ft, 12);
    sgdt_assert_status(sgd_idx_read_memory(&lab2, lb2, ln2, NULL), SGD_OK);
    sgdt_assert_status(sgd_dataset_from_idx(&d, img, lab2, NULL), SGD_OK);
    assert_int_equal(sgd_dataset_target_dim(d), 1);
    const float *t;
    sgd_dataset_row(d, 2, NULL, NULL, &t);
    assert_true(t[0] == -3.0f);
    sgd_dataset_free(d);
    sgd_idx_free(lab2);
    /* NaN float features are refused. */
    static const unsigned char fnan[12] = {0x7f, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    size_t fn2 = idx_make(ib, SGD_IDX_FLOAT32, 1, &three, fnan, 12);
    sgd_idx *fimg;
    sgdt_assert_status(sgd_idx_read_memory(&fimg, ib, fn2, NULL), SGD_OK);
    sgdt_assert_status(sgd_dataset_from_idx(&d, fimg, lab, NULL), SGD_ENONFINITE);
    sgdt_assert_error_contains("[0][0]");
    sgd_idx_free(fimg);
    sgdt_assert_status(sgd_dataset_from_idx(&d, NULL, lab, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_dataset_from_idx(&d, img, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_dataset_from_idx(NULL, img, lab, NULL), SGD_EINVAL);
    sgd_idx_free(img);
    sgd_idx_free(lab);
}

static void test_idx_files(void **state)
{
    (void)state;
    unsigned char ib[64], lb[64], gz[256];
    size_t in = make_images(ib), ln = make_labels(lb);
    size_t gn = gzip_buf(gz, sizeof gz, ib, in);
    write_file(tmp_path("img.gz"), gz, gn);
    write_file(tmp_path("lab"), lb, ln);
    write_file(tmp_path("trunc"), ib, in - 3);
    sgd_dataset *d;
    sgdt_assert_status(sgd_dataset_load_idx(&d, tmp_path("img.gz"), tmp_path("lab"), NULL), SGD_OK);
    assert_int_equal(sgd_dataset_size(d), 3);
    assert_int_equal(sgd_dataset_dim(d), 4);
    sgd_dataset_free(d);
    sgd_idx *a;
    sgdt_assert_status(sgd_idx_read_file(&a, tmp_path("lab"), NULL), SGD_OK);
    assert_int_equal(sgd_idx_count(a), 3);
    sgd_idx_free(a);
    /* Errors name the file. */
    sgdt_assert_status(sgd_dataset_load_idx(&d, tmp_path("img.gz"), tmp_path("missing"), NULL), SGD_EIO);
    sgdt_assert_error_contains("missing");
    sgdt_assert_error_contains("No such file");
    assert_null(d);
    sgdt_assert_status(sgd_dataset_load_idx(&d, tmp_path("trunc"), tmp_path("lab"), NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("trunc'");
    sgdt_assert_error_contains("truncated");
    sgdt_assert_status(sgd_dataset_load_idx(&d, tmp_path("lab"), tmp_path("img.gz"), NULL), SGD_ESHAPE);
    sgdt_assert_error_contains("img.gz");
    sgdt_assert_status(sgd_idx_read_file(&a, g_tmpdir, NULL), SGD_EIO);
    sgdt_assert_error_contains("directory");

    /* Not a regular file: refused at once (`--data /dev/zero,/dev/zero` read until memory ran out). */
    sgdt_alloc t;
    sgdt_alloc_init(&t);
    sgdt_assert_status(sgd_idx_read_file(&a, "/dev/zero", &t.base), SGD_EIO);
    sgdt_assert_error_contains("a character device");
    assert_true(t.peak_bytes < 4096);
    assert_null(a);
    const char *fifo = tmp_path("fifo");
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0); /* nobody writes: a blocking open or read would hang */
    sgdt_assert_status(sgd_idx_read_file(&a, fifo, NULL), SGD_EIO);
    sgdt_assert_error_contains("a FIFO");
    unlink(fifo);
    sgdt_assert_status(sgd_dataset_load_idx(&d, "/dev/zero", "/dev/zero", NULL), SGD_EIO);
    sgdt_assert_error_contains("/dev/zero");

    /* A header that declares more than the file holds: refused from the header, before the data is allocated. */
    unsigned char big[16] = {0, 0, 0x08, 3, 0, 0, 0xea, 0x60, 0, 0, 0x10, 0, 0, 0, 0x10, 0}; /* 60000x4096x4096 */
    write_file(tmp_path("liar"), big, sizeof big);
    sgdt_alloc_init(&t);
    sgdt_assert_status(sgd_idx_read_file(&a, tmp_path("liar"), &t.base), SGD_EFORMAT);
    sgdt_assert_error_contains("truncated");
    assert_true(t.peak_bytes < 4096);
    /* And one byte too many, found from the header too. */
    unsigned char over[64];
    memcpy(over, ib, in);
    over[in] = 7;
    write_file(tmp_path("over"), over, in + 1);
    sgdt_alloc_init(&t);
    sgdt_assert_status(sgd_idx_read_file(&a, tmp_path("over"), &t.base), SGD_EFORMAT);
    sgdt_assert_error_contains("unexpected");
    assert_int_equal(t.calls, 1); /* the array's struct only */
    /* A raw file is read straight into its array: the file's bytes are never held twice. */
    sgdt_alloc_init(&t);
    write_file(tmp_path("img"), ib, in);
    sgdt_assert_status(sgd_idx_read_file(&a, tmp_path("img"), &t.base), SGD_OK);
    assert_true(t.peak_bytes < 2 * in + 256);
    sgd_idx_free(a);
    sgdt_assert_status(sgd_idx_read_file(&a, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_dataset_load_idx(&d, NULL, tmp_path("lab"), NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_dataset_load_idx(NULL, tmp_path("lab"), tmp_path("lab"), NULL), SGD_EINVAL);
}

/* ---------------------------------------------------------------- allocation failures */

/* Runs `call` if nothing failed yet; a failing call must leave its out-parameter NULL. */
#define STEP(st, out, call)                                                                                   \
    do {                                                                                                      \
        if ((st) == SGD_OK) {                                                                                 \
            (st) = (call);                                                                                    \
            if ((st) != SGD_OK && (out) != NULL)                                                              \
                fail_msg("%s failed but set its out-parameter", #call);                                       \
        }                                                                                                     \
    } while (0)

static sgd_status scenario_views(sgdt_alloc *t, void *ctx)
{
    rows_fixture *f = ctx;
    sgd_dataset *d = NULL, *s = NULL, *tr = NULL, *va = NULL, *tr2 = NULL, *va2 = NULL;
    sgd_loader *l = NULL, *l2 = NULL;
    sgd_loader_options o;
    sgd_loader_options_init(&o);
    sgd_status st = SGD_OK;
    STEP(st, d, sgd_dataset_from_labels(&d, f->x, f->labels, f->n, f->dim, &t->base));
    STEP(st, s, sgd_dataset_subset(&s, d, 1, 20));
    STEP(st, va, sgd_dataset_split(&tr, &va, s, 5, 1, 1));
    STEP(st, tr, SGD_OK);
    STEP(st, va2, sgd_dataset_split(&tr2, &va2, d, 5, 0, 0));
    STEP(st, tr2, SGD_OK);
    STEP(st, l, sgd_loader_new(&l, tr, 4, &o));
    o.shuffle = 0;
    STEP(st, l2, sgd_loader_new(&l2, va, 4, &o));
    sgd_batch b;
    STEP(st, NULL, sgd_loader_next(l, &b));
    STEP(st, NULL, sgd_loader_next(l2, &b));
    sgd_loader_free(l);
    sgd_loader_free(l2);
    sgd_dataset_free(va2);
    sgd_dataset_free(tr2);
    sgd_dataset_free(tr);
    sgd_dataset_free(va);
    sgd_dataset_free(s);
    sgd_dataset_free(d);
    return st;
}

static void test_alloc_failures_views(void **state)
{
    (void)state;
    rows_fixture f;
    rows_make(&f, 30, 3);
    long n = sgdt_walk_alloc_failures(scenario_views, &f);
    assert_true(n >= 12);
    rows_free(&f);
}

typedef struct idx_ctx {
    unsigned char raw[64], gz[256], lab[64];
    size_t raw_n, gz_n, lab_n;
} idx_ctx;

static sgd_status scenario_idx(sgdt_alloc *t, void *ctx)
{
    idx_ctx *c = ctx;
    sgd_idx *a = NULL, *g = NULL, *l = NULL;
    sgd_dataset *d = NULL, *df = NULL;
    sgd_status st = SGD_OK;
    STEP(st, a, sgd_idx_read_memory(&a, c->raw, c->raw_n, &t->base));
    STEP(st, g, sgd_idx_read_memory(&g, c->gz, c->gz_n, &t->base)); /* zlib's state goes through the allocator too */
    STEP(st, l, sgd_idx_read_memory(&l, c->lab, c->lab_n, &t->base));
    STEP(st, d, sgd_dataset_from_idx(&d, g, l, &t->base));
    STEP(st, df, sgd_dataset_load_idx(&df, tmp_path("img.gz"), tmp_path("lab"), &t->base));
    sgd_dataset_free(df);
    sgd_dataset_free(d);
    sgd_idx_free(a);
    sgd_idx_free(g);
    sgd_idx_free(l);
    return st;
}

static void test_alloc_failures_idx(void **state)
{
    (void)state;
    idx_ctx c;
    c.raw_n = make_images(c.raw);
    c.gz_n = gzip_buf(c.gz, sizeof c.gz, c.raw, c.raw_n);
    c.lab_n = make_labels(c.lab);
    write_file(tmp_path("img.gz"), c.gz, c.gz_n);
    write_file(tmp_path("lab"), c.lab, c.lab_n);
    long n = sgdt_walk_alloc_failures(scenario_idx, &c);
    assert_true(n >= 10);
}

static int setup_tmpdir(void **state)
{
    (void)state;
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/sgdlab-test-data-XXXXXX");
    return mkdtemp(g_tmpdir) == NULL ? -1 : 0;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    const char *names[] = {"img.gz", "lab", "trunc", "liar", "over", "img"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        unlink(tmp_path(names[i]));
    return rmdir(g_tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dataset_views),
        cmocka_unit_test(test_dataset_bad_input),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_loader_order),
        cmocka_unit_test(test_loader_shuffle),
        cmocka_unit_test(test_idx_raw),
        cmocka_unit_test(test_idx_raw_bad),
        cmocka_unit_test(test_idx_gzip),
        cmocka_unit_test(test_dataset_from_idx),
        cmocka_unit_test(test_idx_files),
        cmocka_unit_test(test_alloc_failures_views),
        cmocka_unit_test(test_alloc_failures_idx),
    };
    return cmocka_run_group_tests(tests, setup_tmpdir, remove_tmpdir);
}
