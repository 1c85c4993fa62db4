/*
 * 16 float lanes as the registers of the SIMD level this file is compiled for
 * (one AVX-512 register, two AVX2 or four SSE2 ones), for the reductions of
 * lib/optim/kernels.c and bench/bound_kernels.c: the same lanes and the same
 * operations in the same order on every level, so every level computes the
 * same bits. x86-64 only (SSE2 is its baseline); include only when __SSE2__.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_OPTIM_VREG_H
#define SGDLAB_OPTIM_VREG_H

#include <immintrin.h>

#if defined(__AVX512F__)
#define VW 1
typedef __m512 vreg;
#define VLOAD(p) _mm512_loadu_ps(p)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VMAXR(a, b) _mm512_max_ps(a, b)
#define VMINR(a, b) _mm512_min_ps(a, b)
#define VABSR(a) _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff)))
#define VSET(x) _mm512_set1_ps(x)
#define VSTORE(p, a) _mm512_storeu_ps(p, a)
#elif defined(__AVX2__)
#define VW 2
typedef __m256 vreg;
#define VLOAD(p) _mm256_loadu_ps(p)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VMAXR(a, b) _mm256_max_ps(a, b)
#define VMINR(a, b) _mm256_min_ps(a, b)
#define VABSR(a) _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)))
#define VSET(x) _mm256_set1_ps(x)
#define VSTORE(p, a) _mm256_storeu_ps(p, a)
#else
#define VW 4
typedef __m128 vreg;
#define VLOAD(p) _mm_loadu_ps(p)
#define VADD(a, b) _mm_add_ps(a, b)
#define VMUL(a, b) _mm_mul_ps(a, b)
#define VMAXR(a, b) _mm_max_ps(a, b)
#define VMINR(a, b) _mm_min_ps(a, b)
#define VABSR(a) _mm_and_ps(a, _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff)))
#define VSET(x) _mm_set1_ps(x)
#define VSTORE(p, a) _mm_storeu_ps(p, a)
#endif
#define VL (16 / VW) /* floats per register */

#endif /* SGDLAB_OPTIM_VREG_H */
