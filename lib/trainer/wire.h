/*
 * Little-endian encoding helpers for the trainer's and the tuner's
 * serialised states. Never installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_TRAINER_WIRE_H
#define SGDLAB_TRAINER_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void sgd__put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t sgd__get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static inline void sgd__put_i64(unsigned char *p, int64_t v)
{
    sgd__put_u64(p, (uint64_t)v);
}

static inline int64_t sgd__get_i64(const unsigned char *p)
{
    uint64_t u = sgd__get_u64(p);
    int64_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static inline void sgd__put_f64(unsigned char *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    sgd__put_u64(p, u);
}

static inline double sgd__get_f64(const unsigned char *p)
{
    uint64_t u = sgd__get_u64(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static inline void sgd__put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t sgd__get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

/*
 * Converts `count` elements of `size` bytes (4 or 8) between the host's byte
 * order and little-endian, in place: a no-op on little-endian hosts, its own
 * inverse on big-endian ones.
 */
static inline void sgd__le_swap(void *data, size_t count, size_t size)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    unsigned char *p = data;
    for (size_t i = 0; i < count; i++, p += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            unsigned char c = p[a];
            p[a] = p[b];
            p[b] = c;
        }
#else
    (void)data;
    (void)count;
    (void)size;
#endif
}

/* Rounds n up to a multiple of 8 (callers check that n is far from SIZE_MAX). */
static inline size_t sgd__pad8(size_t n)
{
    return (n + 7u) & ~(size_t)7u;
}

#endif /* SGDLAB_TRAINER_WIRE_H */
