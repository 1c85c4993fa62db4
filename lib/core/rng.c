/* Seeded pseudo-random numbers: xoshiro256** (Blackman & Vigna). SPDX-License-Identifier: MIT */
#include "internal.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

__extension__ typedef unsigned __int128 u128;

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void sgd__rng_seed(sgd__rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

uint64_t sgd__rng_next(sgd__rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sgd__rng_uniform(sgd__rng *r)
{
    return (double)(sgd__rng_next(r) >> 11) * 0x1.0p-53;
}

float sgd__rng_uniform_f(sgd__rng *r)
{
    return (float)(sgd__rng_next(r) >> 40) * 0x1.0p-24f;
}

uint64_t sgd__rng_below(sgd__rng *r, uint64_t n)
{
    /* Lemire's nearly-divisionless method with rejection. */
    u128 m = (u128)sgd__rng_next(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t threshold = (0 - n) % n;
        while (lo < threshold) {
            m = (u128)sgd__rng_next(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double sgd__rng_normal(sgd__rng *r)
{
    /* u1 in (0, 1] so that log(u1) is finite. */
    double u1 = 1.0 - sgd__rng_uniform(r);
    double u2 = sgd__rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}
