/* Test utilities: counting/failing allocator and the failure walker. SPDX-License-Identifier: MIT */
#include "sgdtest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Each block carries a 16-byte header with its size, keeping malloc's alignment. */
typedef union hdr {
    size_t size;
    max_align_t align;
} hdr;

static int should_fail(sgdt_alloc *t)
{
    long n = t->calls++;
    if (t->fail_at < 0)
        return 0;
    if (n == t->fail_at || (t->persistent && n > t->fail_at)) {
        t->failures++;
        return 1;
    }
    return 0;
}

static void *t_malloc(size_t size, void *user)
{
    sgdt_alloc *t = user;
    if (should_fail(t))
        return NULL;
    hdr *h = malloc(sizeof(hdr) + size);
    if (h == NULL)
        return NULL;
    h->size = size;
    t->live++;
    t->live_bytes += size;
    if (t->live_bytes > t->peak_bytes)
        t->peak_bytes = t->live_bytes;
    return h + 1;
}

static void *t_realloc(void *p, size_t size, void *user)
{
    sgdt_alloc *t = user;
    if (p == NULL)
        return t_malloc(size, user);
    if (should_fail(t))
        return NULL;
    hdr *h = (hdr *)p - 1;
    size_t old = h->size;
    hdr *n = realloc(h, sizeof(hdr) + size);
    if (n == NULL)
        return NULL;
    n->size = size;
    t->live_bytes = t->live_bytes - old + size;
    if (t->live_bytes > t->peak_bytes)
        t->peak_bytes = t->live_bytes;
    return n + 1;
}

static void t_free(void *p, void *user)
{
    sgdt_alloc *t = user;
    assert_non_null(p); /* the library must never pass NULL */
    hdr *h = (hdr *)p - 1;
    assert_true(t->live > 0);
    t->live--;
    t->live_bytes -= h->size;
    free(h);
}

void sgdt_alloc_init(sgdt_alloc *t)
{
    memset(t, 0, sizeof *t);
    t->base.malloc_fn = t_malloc;
    t->base.realloc_fn = t_realloc;
    t->base.free_fn = t_free;
    t->base.user = t;
    t->fail_at = -1;
}

void sgdt_alloc_fail_at(sgdt_alloc *t, long n, int persistent)
{
    t->fail_at = n;
    t->persistent = persistent;
}

long sgdt_walk_alloc_failures(sgdt_scenario fn, void *ctx)
{
    sgdt_alloc t;
    sgdt_alloc_init(&t);
    sgd_status st = fn(&t, ctx);
    if (st != SGD_OK)
        fail_msg("clean run of the scenario failed: %s (%s)", sgd_status_str(st), sgd_error_last());
    if (t.live != 0)
        fail_msg("clean run leaked %ld block(s), %zu bytes", t.live, t.live_bytes);
    long total = t.calls;
    for (long i = 0; i < total; i++) {
        for (int persistent = 0; persistent <= 1; persistent++) {
            sgdt_alloc_init(&t);
            sgdt_alloc_fail_at(&t, i, persistent);
            sgd_error_clear();
            st = fn(&t, ctx);
            if (t.failures > 0) {
                if (st != SGD_ENOMEM)
                    fail_msg("allocation %ld/%ld failed (%s): scenario returned %s (%s), expected SGD_ENOMEM", i,
                             total, persistent ? "persistent" : "transient", sgd_status_str(st), sgd_error_last());
                if (sgd_error_last()[0] == '\0')
                    fail_msg("allocation %ld/%ld failed: no error message was set", i, total);
            } else if (st != SGD_OK) {
                fail_msg("run with allocation %ld unfailed returned %s (%s)", i, sgd_status_str(st),
                         sgd_error_last());
            }
            if (t.live != 0)
                fail_msg("allocation %ld/%ld failed (%s): %ld block(s), %zu bytes leaked", i, total,
                         persistent ? "persistent" : "transient", t.live, t.live_bytes);
        }
    }
    return total;
}

void sgdt__assert_status(int got, int want, const char *expr, const char *file, int line)
{
    if (got != want)
    {
        print_error("%s returned %s, expected %s; last error: \"%s\"\n", expr, sgd_status_str(got),
                    sgd_status_str(want), sgd_error_last());
        _fail(file, line);
    }
}

void sgdt__assert_error_contains(const char *needle, const char *file, int line)
{
    if (strstr(sgd_error_last(), needle) == NULL)
    {
        print_error("error message \"%s\" does not contain \"%s\"\n", sgd_error_last(), needle);
        _fail(file, line);
    }
}

const char *sgdt_data_path(const char *name)
{
    static char buf[4096];
    const char *dir = getenv("SGDT_DATA_DIR");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "tests/data", name);
    return buf;
}

double sgdt_splitmix_u(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 40) / 16777216.0;
}

void sgdt_fixture_load(sgdt_fixture *f, const char *path)
{
    gzFile gz = gzopen(path, "rb");
    if (gz == NULL)
        fail_msg("cannot open %s", path);
    size_t cap = 1 << 21, n = 0;
    f->text = malloc(cap);
    assert_non_null(f->text);
    int r;
    while ((r = gzread(gz, f->text + n, (unsigned)(cap - n - 1))) > 0) {
        n += (size_t)r;
        if (n + 1 == cap) {
            cap *= 2;
            f->text = realloc(f->text, cap);
            assert_non_null(f->text);
        }
    }
    assert_true(r == 0);
    gzclose(gz);
    f->text[n] = '\0';
    f->at = f->text;
}

double *sgdt_fixture_record(sgdt_fixture *f, const char *name, int64_t rows, int64_t cols)
{
    while (*f->at == '#') {
        f->at = strchr(f->at, '\n');
        assert_non_null(f->at);
        f->at++;
    }
    char got[128];
    long long r, c;
    int used;
    if (sscanf(f->at, "%127s %lld %lld%n", got, &r, &c, &used) != 3 || strcmp(got, name) != 0 || r != rows ||
        c != cols)
        fail_msg("fixture: expected record %s %lld %lld, found \"%.60s\"", name, (long long)rows, (long long)cols,
                 f->at);
    f->at += used;
    double *v = malloc((size_t)(rows * cols) * sizeof *v + 1);
    assert_non_null(v);
    for (int64_t i = 0; i < rows * cols; i++) {
        char *end;
        v[i] = strtod(f->at, &end);
        assert_true(end != f->at);
        f->at = end;
    }
    while (*f->at == ' ' || *f->at == '\n')
        f->at++;
    return v;
}

void sgdt_fixture_free(sgdt_fixture *f)
{
    free(f->text);
    f->text = f->at = NULL;
}

double sgdt_parity_error(const float *ours, const double *ref, size_t n)
{
    double err = 0, mag = 0;
    for (size_t i = 0; i < n; i++) {
        err = fabs(ours[i] - ref[i]) > err ? fabs(ours[i] - ref[i]) : err;
        mag = fabs(ref[i]) > mag ? fabs(ref[i]) : mag;
    }
    return mag > 0 ? err / mag : err;
}

void sgdt_blobs(float *x, int32_t *y, int64_t n, int dim, int classes, uint32_t seed)
{
    uint32_t r = seed * 2654435761u + 7u;
    for (int64_t i = 0; i < n; i++) {
        int32_t k = (int32_t)(i % classes);
        y[i] = k;
        for (int j = 0; j < dim; j++) {
            r = r * 1664525u + 1013904223u;
            double noise = ((double)(r >> 8) / 16777216.0 - 0.5) * 2.2;
            double centre = (j % classes == k) ? 1.0 : (j == (k + 2) % dim ? -0.5 : 0.0);
            x[i * dim + j] = (float)(centre + noise);
        }
    }
}

float sgdt_max_abs_diff(const float *a, const float *b, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m))
            m = d;
    }
    return m;
}
