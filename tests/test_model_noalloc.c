/*
 * A training step allocates nothing, not even behind the allocator hook: this
 * program replaces the C library's malloc family for the whole process (the
 * BLAS included) with counting wrappers, and checks that loader, zero_grad,
 * forward, loss, backward and an SGD update run many times without one call.
 * (test_model checks the same through the model's allocator hook.) Built only
 * with glibc and without sanitizers, which interpose malloc themselves.
 */
#include "util/sgdtest.h"

#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t count, size_t n);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

static atomic_long g_calls;

void *malloc(size_t n)
{
    atomic_fetch_add(&g_calls, 1);
    return __libc_malloc(n);
}

void *calloc(size_t count, size_t n)
{
    atomic_fetch_add(&g_calls, 1);
    return __libc_calloc(count, n);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add(&g_calls, 1);
    return __libc_realloc(p, n);
}

void *memalign(size_t align, size_t n)
{
    atomic_fetch_add(&g_calls, 1);
    return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    atomic_fetch_add(&g_calls, 1);
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    atomic_fetch_add(&g_calls, 1);
    void *p = __libc_memalign(align, n);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

void free(void *p)
{
    __libc_free(p);
}

static void steps_call_no_malloc(const char *spec)
{
    enum { N = 1000, D = 100 };
    float *x = malloc(N * D * sizeof *x);
    int32_t *y = malloc(N * sizeof *y);
    assert_true(x && y);
    for (int i = 0; i < N * D; i++)
        x[i] = (float)((i * 7919) % 1000) / 1000.0f;
    for (int i = 0; i < N; i++)
        y[i] = i % 10;
    sgd_model *m;
    sgdt_assert_status(sgd_model_from_spec(&m, spec, NULL, NULL), SGD_OK);
    sgd_dataset *d;
    sgd_loader *l;
    sgdt_assert_status(sgd_dataset_from_labels(&d, x, y, N, D, NULL), SGD_OK);
    sgdt_assert_status(sgd_loader_new(&l, d, 50, NULL), SGD_OK);
    size_t n = sgd_model_num_params(m);
    float *mom = calloc(n, sizeof *mom);
    assert_non_null(mom);
    float *w = sgd_model_params(m), *g = sgd_model_grads(m);
    long before = 0;
    for (int step = 0; step < 120; step++) {
        if (step == 20) /* after the BLAS has set itself up */
            before = atomic_load(&g_calls);
        sgd_batch b;
        if (sgd_loader_next(l, &b) != SGD_OK || b.size == 0)
            continue;
        if (sgd_model_zero_grad(m) != SGD_OK ||
            sgd_model_forward_backward(m, b.x, b.labels, NULL, b.size, NULL) != SGD_OK)
            fail_msg("step %d: %s", step, sgd_error_last());
        for (size_t i = 0; i < n; i++) {
            mom[i] = 0.9f * mom[i] + g[i];
            w[i] -= 0.01f * mom[i];
        }
    }
    long calls = atomic_load(&g_calls) - before;
    if (calls != 0)
        fail_msg("%s: 100 training steps called the C library's allocator %ld times", spec, calls);
    double loss, acc;
    before = atomic_load(&g_calls);
    sgdt_assert_status(sgd_model_evaluate(m, d, 64, &loss, &acc), SGD_OK);
    if (atomic_load(&g_calls) != before)
        fail_msg("%s: evaluation called the C library's allocator", spec);
    free(mom);
    sgd_loader_free(l);
    sgd_dataset_free(d);
    sgd_model_free(m);
    free(x);
    free(y);
}

static void test_training_step_calls_no_malloc(void **state)
{
    (void)state;
    steps_call_no_malloc("100-64-relu-dropout(0.2)-32-tanh-10");
}

/* A CNN with every 0.2 layer kind: 100 values as a 1x10x10 image. */
static void test_cnn_step_calls_no_malloc(void **state)
{
    (void)state;
    steps_call_no_malloc("1x10x10-conv2d(4,3,padding=1)-batchnorm2d-relu-maxpool2d(2)-residual(conv2d(4,3,padding=1)"
                         "-batchnorm2d)-residual(conv2d(8,3,stride=2,padding=1))-avgpool2d(2,padding=1)-"
                         "global_avgpool2d-flatten-layernorm-dropout(0.1)-batchnorm1d-10");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_training_step_calls_no_malloc),
        cmocka_unit_test(test_cnn_step_calls_no_malloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
