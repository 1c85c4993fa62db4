/*
 * The element-wise kernels of the recurrent layers' cells, written once and
 * instantiated per SIMD level by layer_rnn.c: SGD__RNN_KERNELS(generic, )
 * and, on x86-64 with GCC or Clang, SGD__RNN_KERNELS(avx2,
 * __attribute__((target("avx2")))). The code is the same; only the vector
 * width differs. Without FMA (and with ISO C's -ffp-contract=off) every
 * lane does the same IEEE operations in the same order, so the levels give
 * the same bits (tests/test_rnn.c checks it). Never installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_MODEL_RNN_KERNELS_H
#define SGDLAB_MODEL_RNN_KERNELS_H

#include "model/kernels.h"
#include "model/vmath.h"

#include <stddef.h>
#include <stdint.h>

/* One level's kernels (see layer_rnn.c for what each computes). */
typedef struct sgd__rnn_ktab {
    const char *level; /* "generic", "avx2" */
    void (*lstm_cell)(float *restrict ai, float *restrict af, float *restrict ag, float *restrict ao,
                      const float *restrict c0, float *restrict c1, float *restrict tc, float *restrict h1, int64_t n);
    /*
     * lstm_cell with the input projections q_* added to the pre-activations
     * a_* first (a + q: the same bits as lstm_cell on a row that holds q + a):
     * the projections of an embedding's table are read where they are, not
     * copied into the row. NULL at the levels without rec_mul.
     */
    void (*lstm_cell_q)(float *restrict ai, float *restrict af, float *restrict ag, float *restrict ao,
                        const float *restrict qi, const float *restrict qf, const float *restrict qg,
                        const float *restrict qo, const float *restrict c0, float *restrict c1, float *restrict tc,
                        float *restrict h1, int64_t n);
    void (*lstm_cell_back)(const float *restrict i_, const float *restrict f_, const float *restrict g_,
                           const float *restrict o_, const float *restrict c0, const float *restrict tc,
                           const float *restrict dh, float *restrict dc, float *restrict di, float *restrict df,
                           float *restrict dg, float *restrict dq, int64_t n);
    void (*gru_cell)(float *restrict ar, float *restrict az, float *restrict an, const float *restrict zr,
                     const float *restrict zz, const float *restrict zn, const float *restrict bn,
                     const float *restrict h0, float *restrict hn, float *restrict h1, int64_t n);
    void (*gru_cell_nobias)(float *restrict ar, float *restrict az, float *restrict an, const float *restrict zr,
                            const float *restrict zz, const float *restrict zn, const float *restrict h0,
                            float *restrict hn, float *restrict h1, int64_t n);
    void (*gru_cell_back)(const float *restrict r_, const float *restrict z_, const float *restrict n_,
                          const float *restrict hn, const float *restrict h0, const float *restrict dh,
                          float *restrict dr, float *restrict dz, float *restrict dn, float *restrict hr,
                          float *restrict hz, float *restrict hq, int64_t n);
    void (*gru_direct)(float *restrict dprev, const float *restrict z_, const float *restrict dh, int64_t n);
    void (*rnn_tanh)(float *restrict a, float *restrict h1, int64_t n);
    void (*rnn_relu)(float *restrict a, float *restrict h1, int64_t n);
    void (*rnn_tanh_back)(const float *restrict h, const float *restrict dh, float *restrict da, int64_t n);
    void (*rnn_relu_back)(const float *restrict h, const float *restrict dh, float *restrict da, int64_t n);
    /*
     * The recurrent product of one step, C[rows, M] = A[rows, K] B (+ C when
     * accumulate), B given as panels packed by sgd__rnn_pack(); NULL: the
     * layers call cblas_sgemm instead (which packs B again at every step).
     */
    void (*rec_mul)(const float *restrict A, int64_t lda, const float *restrict Bp, int64_t K, int64_t M,
                    float *restrict C, int64_t ldc, int64_t rows, int accumulate);
} sgd__rnn_ktab;

/* Columns per packed panel of rec_mul. */
#define SGD__RNN_PANEL 16

/*
 * Packs B[K, M] (B[k][j] = w[j * ldw + k] when transposed, else w[k * ldw + j])
 * into panels of SGD__RNN_PANEL columns, each K x 16 contiguous, zero beyond M:
 * ceil(M / 16) * 16 * K floats at dst (64-byte aligned).
 */
void sgd__rnn_pack(float *restrict dst, const float *restrict w, int64_t ldw, int64_t K, int64_t M, int transposed);

/*
 * The levels this CPU runs (generic first, the best last; at most 2); and
 * the one the layers use, chosen once per process: the best, or at most
 * the one SGDLAB_SIMD names (generic, avx2).
 */
size_t sgd__rnn_kern_runnable(const sgd__rnn_ktab **out);
const sgd__rnn_ktab *sgd__rnn_kern(void);
/* Tests: makes the layers use `t` (one of sgd__rnn_kern_runnable()'s) from now on. */
void sgd__rnn_kern_force(const sgd__rnn_ktab *t);

#define SGD__RNN_KERNELS(SUF, ATTR) \
ATTR static void lstm_cell_##SUF(float *restrict ai, float *restrict af, float *restrict ag, float *restrict ao, \
                      const float *restrict c0, float *restrict c1, float *restrict tc, float *restrict h1, int64_t n) \
{ \
    SGD__FOR_BLOCKED(j, n, float i = sgd__vsigmoidf(ai[j]); float f = sgd__vsigmoidf(af[j]); \
                     float g = sgd__vtanhf(ag[j]); float o = sgd__vsigmoidf(ao[j]); float c = f * c0[j] + i * g; \
                     float t = sgd__vtanhf(c); ai[j] = i; af[j] = f; ag[j] = g; ao[j] = o; c1[j] = c; tc[j] = t; \
                     h1[j] = o * t;); \
} \
 \
/* \
 * From dh (dLoss/dh_t, all contributions) and dc (dLoss/dc_t from later \
 * steps, replaced by dLoss/dc_{t-1}): the pre-activation gradients. \
 */ \
ATTR static void lstm_cell_back_##SUF(const float *restrict i_, const float *restrict f_, const float *restrict g_, \
                           const float *restrict o_, const float *restrict c0, const float *restrict tc, \
                           const float *restrict dh, float *restrict dc, float *restrict di, float *restrict df, \
                           float *restrict dg, float *restrict dq, int64_t n) \
{ \
    SGD__FOR_BLOCKED(j, n, float i = i_[j]; float f = f_[j]; float g = g_[j]; float o = o_[j]; float t = tc[j]; \
                     float d = dh[j]; float dct = dc[j] + d * o * (1.0f - t * t); di[j] = dct * g * i * (1.0f - i); \
                     df[j] = dct * c0[j] * f * (1.0f - f); dg[j] = dct * i * (1.0f - g * g); \
                     dq[j] = d * t * o * (1.0f - o); dc[j] = dct * f;); \
} \
 \
ATTR static void gru_cell_##SUF(float *restrict ar, float *restrict az, float *restrict an, const float *restrict zr, \
                     const float *restrict zz, const float *restrict zn, const float *restrict bn, \
                     const float *restrict h0, float *restrict hn, float *restrict h1, int64_t n) \
{ \
    SGD__FOR_BLOCKED(j, n, float r = sgd__vsigmoidf(ar[j] + zr[j]); float z = sgd__vsigmoidf(az[j] + zz[j]); \
                     float q = zn[j] + bn[j]; float m = sgd__vtanhf(an[j] + r * q); ar[j] = r; az[j] = z; an[j] = m; \
                     hn[j] = q; h1[j] = (1.0f - z) * m + z * h0[j];); \
} \
 \
ATTR static void gru_cell_nobias_##SUF(float *restrict ar, float *restrict az, float *restrict an, const float *restrict zr, \
                            const float *restrict zz, const float *restrict zn, const float *restrict h0, \
                            float *restrict hn, float *restrict h1, int64_t n) \
{ \
    SGD__FOR_BLOCKED(j, n, float r = sgd__vsigmoidf(ar[j] + zr[j]); float z = sgd__vsigmoidf(az[j] + zz[j]); \
                     float q = zn[j]; float m = sgd__vtanhf(an[j] + r * q); ar[j] = r; az[j] = z; an[j] = m; \
                     hn[j] = q; h1[j] = (1.0f - z) * m + z * h0[j];); \
} \
 \
/* \
 * GRU: from dh (all contributions to dLoss/dh_t) the pre-activation \
 * gradients of the input side (dr, dz, dn) and of the hidden side (dr, dz, \
 * dhn = dn r), and the direct part dh z of dLoss/dh_{t-1} (added to dprev \
 * when it is set). \
 */ \
ATTR static void gru_cell_back_##SUF(const float *restrict r_, const float *restrict z_, const float *restrict n_, \
                          const float *restrict hn, const float *restrict h0, const float *restrict dh, \
                          float *restrict dr, float *restrict dz, float *restrict dn, float *restrict hr, \
                          float *restrict hz, float *restrict hq, int64_t n) \
{ \
    SGD__FOR_BLOCKED(j, n, float r = r_[j]; float z = z_[j]; float m = n_[j]; float d = dh[j]; \
                     float an = d * (1.0f - z) * (1.0f - m * m); float ar = an * hn[j] * r * (1.0f - r); \
                     float az = d * (h0[j] - m) * z * (1.0f - z); dr[j] = ar; dz[j] = az; dn[j] = an; hr[j] = ar; \
                     hz[j] = az; hq[j] = an * r;); \
} \
 \
ATTR static void gru_direct_##SUF(float *restrict dprev, const float *restrict z_, const float *restrict dh, int64_t n) \
{ \
    SGD__FOR_BLOCKED(j, n, dprev[j] += dh[j] * z_[j];); \
} \
 \
ATTR static void rnn_tanh_##SUF(float *restrict a, float *restrict h1, int64_t n) \
{ \
    SGD__FOR_BLOCKED(j, n, float h = sgd__vtanhf(a[j]); a[j] = h; h1[j] = h;); \
} \
 \
ATTR static void rnn_relu_##SUF(float *restrict a, float *restrict h1, int64_t n) \
{ \
    SGD__FOR_BLOCKED(j, n, float h = a[j] > 0.0f ? a[j] : (a[j] == a[j] ? 0.0f : a[j]); a[j] = h; h1[j] = h;); \
} \
 \
ATTR static void rnn_tanh_back_##SUF(const float *restrict h, const float *restrict dh, float *restrict da, int64_t n) \
{ \
    SGD__FOR_BLOCKED(j, n, da[j] = dh[j] * (1.0f - h[j] * h[j]);); \
} \
 \
ATTR static void rnn_relu_back_##SUF(const float *restrict h, const float *restrict dh, float *restrict da, int64_t n) \
{ \
    SGD__FOR_BLOCKED(j, n, da[j] = h[j] > 0.0f ? dh[j] : 0.0f;); \
} \

#endif /* SGDLAB_MODEL_RNN_KERNELS_H */
