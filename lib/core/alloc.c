/* Allocation through the host's hook. SPDX-License-Identifier: MIT */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

static void *libc_malloc(size_t n, void *user)
{
    (void)user;
    return malloc(n);
}

static void *libc_realloc(void *p, size_t n, void *user)
{
    (void)user;
    return realloc(p, n);
}

static void libc_free(void *p, void *user)
{
    (void)user;
    free(p);
}

sgd_status sgd__allocator_init(sgd_allocator *out, const sgd_allocator *in, const char *fn)
{
    if (in == NULL) {
        out->malloc_fn = libc_malloc;
        out->realloc_fn = libc_realloc;
        out->free_fn = libc_free;
        out->user = NULL;
        return SGD_OK;
    }
    if (in->malloc_fn == NULL || in->realloc_fn == NULL || in->free_fn == NULL)
        return sgd__err(SGD_EINVAL, "%s: allocator: malloc_fn, realloc_fn and free_fn must all be set", fn);
    *out = *in;
    return SGD_OK;
}

void *sgd__malloc(const sgd_allocator *a, size_t n)
{
    return a->malloc_fn(n ? n : 1, a->user);
}

void *sgd__calloc(const sgd_allocator *a, size_t count, size_t size)
{
    size_t n;
    if (!sgd__mul_size(count, size, &n))
        return NULL;
    void *p = sgd__malloc(a, n);
    if (p != NULL)
        memset(p, 0, n ? n : 1);
    return p;
}

void *sgd__realloc(const sgd_allocator *a, void *p, size_t n)
{
    if (p == NULL)
        return sgd__malloc(a, n);
    return a->realloc_fn(p, n ? n : 1, a->user);
}

void sgd__free(const sgd_allocator *a, void *p)
{
    if (p != NULL)
        a->free_fn(p, a->user);
}

char *sgd__strdup(const sgd_allocator *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = sgd__malloc(a, n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

/*
 * Aligned blocks: over-allocate, align up, and keep the raw pointer in the
 * word just below the aligned address.
 */
#define SGD__HUGE_THRESHOLD ((size_t)2 << 20)

void *sgd__alloc_aligned(const sgd_allocator *a, size_t count, size_t size)
{
    size_t n, total;
    if (!sgd__mul_size(count, size, &n) || !sgd__add_size(n, SGD__ARENA_ALIGN + sizeof(void *), &total))
        return NULL;
    unsigned char *raw = sgd__malloc(a, total);
    if (raw == NULL)
        return NULL;
    uintptr_t base = (uintptr_t)(raw + sizeof(void *));
    uintptr_t aligned = (base + SGD__ARENA_ALIGN - 1) & ~(uintptr_t)(SGD__ARENA_ALIGN - 1);
    unsigned char *p = (unsigned char *)aligned;
    memcpy(p - sizeof(void *), &raw, sizeof raw);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (n >= SGD__HUGE_THRESHOLD) {
        /* Advise the whole 2 MiB pages inside the block; harmless if refused. */
        uintptr_t lo = (aligned + SGD__HUGE_THRESHOLD - 1) & ~(uintptr_t)(SGD__HUGE_THRESHOLD - 1);
        uintptr_t hi = (aligned + n) & ~(uintptr_t)(SGD__HUGE_THRESHOLD - 1);
        if (hi > lo)
            (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
#endif
    memset(p, 0, n);
    return p;
}

void sgd__free_aligned(const sgd_allocator *a, void *p)
{
    if (p == NULL)
        return;
    void *raw;
    memcpy(&raw, (unsigned char *)p - sizeof(void *), sizeof raw);
    sgd__free(a, raw);
}
