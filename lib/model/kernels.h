/*
 * Element-wise kernels of the passes. Loops are written in blocks of 16 with
 * a constant inner trip count and restrict pointers, the form compilers
 * vectorize at -O2 (GCC's "very cheap" cost model refuses loops that need a
 * run-time alias check or an unknown remainder). Never installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_MODEL_KERNELS_H
#define SGDLAB_MODEL_KERNELS_H

#include <stdint.h>

/*
 * Runs the statements in __VA_ARGS__ for i = 0 .. n-1: in blocks of 16 (an
 * inner loop of constant length, which vectorizes), then the remainder.
 */
#define SGD__FOR_BLOCKED(i, n, ...)                                                                           \
    do {                                                                                                      \
        int64_t i##_base = 0, i##_n = (int64_t)(n);                                                           \
        for (; i##_base + 16 <= i##_n; i##_base += 16)                                                        \
            for (int i##_k = 0; i##_k < 16; i##_k++) {                                                        \
                int64_t i = i##_base + i##_k;                                                                 \
                __VA_ARGS__                                                                                   \
            }                                                                                                 \
        for (int64_t i = i##_base; i < i##_n; i++) {                                                          \
            __VA_ARGS__                                                                                       \
        }                                                                                                     \
    } while (0)

#endif /* SGDLAB_MODEL_KERNELS_H */
