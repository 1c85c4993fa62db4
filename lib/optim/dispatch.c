/*
 * Which table of kernels (lib/optim/kernels.h) this process runs: chosen at
 * the first call, from what the CPU supports (__builtin_cpu_supports, which
 * reads cpuid and checks that the OS saves the registers) and, if set, the
 * environment variable SGDLAB_SIMD (generic, avx2, avx512: the best level at
 * most the one named; an unknown value or a level the CPU lacks falls back
 * to the best one it has). The choice is published through an atomic
 * pointer: threads that race at the first call compute the same table, and
 * no resolver runs at load time (no ifunc, no target_clones).
 * SPDX-License-Identifier: MIT
 */
#include "kernels.h"

#include "sgdlab/optim.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic(const sgd__ktab *) chosen;

#if defined(__x86_64__) && defined(__GNUC__)
static int cpu_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

static int cpu_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
#endif

size_t sgd__kern_runnable(const sgd__ktab **out)
{
    size_t k = 0;
    out[k++] = &sgd__ktab_generic;
#if defined(SGD_HAVE_KERNELS_AVX2)
    if (cpu_avx2())
        out[k++] = &sgd__ktab_avx2;
#endif
#if defined(SGD_HAVE_KERNELS_AVX512)
    if (cpu_avx512() && cpu_avx2())
        out[k++] = &sgd__ktab_avx512;
#endif
    return k;
}

static const sgd__ktab *choose(void)
{
    const sgd__ktab *run[3];
    size_t k = sgd__kern_runnable(run);
    const char *want = getenv("SGDLAB_SIMD");
    if (want != NULL && want[0] != '\0') {
        int cap = 2; /* index of the best level allowed: generic 0, avx2 1, avx512 2 */
        if (strcmp(want, "generic") == 0)
            cap = 0;
        else if (strcmp(want, "avx2") == 0)
            cap = 1;
        const sgd__ktab *best = run[0];
        for (size_t i = 0; i < k; i++) {
            int lvl = strcmp(run[i]->level, "generic") == 0 ? 0 : strcmp(run[i]->level, "avx2") == 0 ? 1 : 2;
            if (lvl <= cap)
                best = run[i];
        }
        return best;
    }
    return run[k - 1];
}

const sgd__ktab *sgd__kern(void)
{
    const sgd__ktab *t = atomic_load_explicit(&chosen, memory_order_acquire);
    if (t == NULL) {
        t = choose();
        atomic_store_explicit(&chosen, t, memory_order_release);
    }
    return t;
}

void sgd__kern_use(const sgd__ktab *t)
{
    atomic_store_explicit(&chosen, t, memory_order_release);
}

void sgd__grad_scan(const float *g, size_t n, float clip_value, sgd__gradstat *out)
{
    sgd__kern()->scan(g, n, clip_value, out);
}

size_t sgd__grad_scan_exact(const float *g, size_t n, float clip_value, sgd__gradstat *out)
{
    return sgd__kern()->scan_exact(g, n, clip_value, out);
}

const char *sgd_optim_simd_level(void)
{
    return sgd__kern()->level;
}
