/*
 * Recurrent layers: rnn, lstm, gru (torch.nn.RNN, LSTM, GRU with
 * batch_first=True): samples [T, F] in, the last layer's hidden state at
 * every step [T, hidden_size] out, num_layers stacked with dropout between
 * them in training mode, torch's parameter names (weight_ih_l0,
 * weight_hh_l0, bias_ih_l0, bias_hh_l0, ...), shapes ([G * hidden_size, in])
 * and gate order (LSTM i, f, g, o; GRU r, z, n with the reset gate applied
 * to W_hn h + b_hn, as torch does; RNN tanh or relu).
 *
 * State: the hidden state (and the LSTM's cell state) of every sample row
 * is a per-sample state tensor, "h_n" (and "c_n"), [num_layers, hidden_size]
 * per row. Every forward pass starts from it and leaves the final state in
 * it, so that consecutive batches of the same streams continue one another
 * (truncated backpropagation through time): the gradient stops at the
 * initial state, as torch's h.detach(). sgd_model_reset_state() zeroes it
 * (the trainer does at every epoch start); the host reads and writes it
 * through the tensor calls.
 *
 * How it runs: the input projections of all time steps are one GEMM per
 * layer ([T*N, in] x [in, G*H]); only h W_hh^T is sequential, one GEMM of N
 * rows per step, accumulated in place onto the projections (time-major
 * buffers make each step a contiguous block). The backward pass runs the
 * cells from the last step to the first, with one GEMM of N rows per step
 * for dLoss/dh, and then the weight gradients of all steps at once: dW_ih =
 * dA^T X and dW_hh = dA^T H over T*N rows, and dX = dA W_ih. The gates use
 * the vectorizable exp and tanh of vmath.h.
 * SPDX-License-Identifier: MIT
 */
#include "model/kernels.h"
#include "model/layer.h"
#include "model/rnn_kernels.h"
#include "model/vmath.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* l->ia */
enum { HID = 0, NLAYERS = 1, BIAS = 2, RELU = 3 };
/* l->da */
enum { DROPOUT = 0 };

#define MAX_LAYERS 8

static const char *const w_ih_names[MAX_LAYERS] = {"weight_ih_l0", "weight_ih_l1", "weight_ih_l2", "weight_ih_l3",
                                                   "weight_ih_l4", "weight_ih_l5", "weight_ih_l6", "weight_ih_l7"};
static const char *const w_hh_names[MAX_LAYERS] = {"weight_hh_l0", "weight_hh_l1", "weight_hh_l2", "weight_hh_l3",
                                                   "weight_hh_l4", "weight_hh_l5", "weight_hh_l6", "weight_hh_l7"};
static const char *const b_ih_names[MAX_LAYERS] = {"bias_ih_l0", "bias_ih_l1", "bias_ih_l2", "bias_ih_l3",
                                                   "bias_ih_l4", "bias_ih_l5", "bias_ih_l6", "bias_ih_l7"};
static const char *const b_hh_names[MAX_LAYERS] = {"bias_hh_l0", "bias_hh_l1", "bias_hh_l2", "bias_hh_l3",
                                                   "bias_hh_l4", "bias_hh_l5", "bias_hh_l6", "bias_hh_l7"};

static bool is_lstm(const sgd__layer *l)
{
    return l->op->kind == SGD_LAYER_LSTM;
}

static bool is_gru(const sgd__layer *l)
{
    return l->op->kind == SGD_LAYER_GRU;
}

/* Gates per step: G * hidden_size pre-activations. */
static int64_t gates_of(const sgd__layer *l)
{
    return is_lstm(l) ? 4 : is_gru(l) ? 3 : 1;
}

/* ---------------------------------------------------------------- spec */

static sgd_status parse(sgd__layer *l, const sgd__lspec *c)
{
    const bool rnn = l->op->kind == SGD_LAYER_RNN;
    sgd__largs a;
    sgd_status st = sgd__largs_split(c, &a, 2);
    if (st != SGD_OK)
        return st;
    static const char *const hkeys[] = {"hidden_size", NULL}, *const lkeys[] = {"num_layers", NULL},
                             *const bkeys[] = {"bias", NULL}, *const dkeys[] = {"dropout", NULL},
                             *const fkeys[] = {"batch_first", NULL}, *const nkeys[] = {"nonlinearity", NULL};
    sgd__str hid = sgd__largs_take(&a, 0, hkeys), nl = sgd__largs_take(&a, 1, lkeys);
    sgd__str bias = sgd__largs_take(&a, -1, bkeys), drop = sgd__largs_take(&a, -1, dkeys);
    sgd__str bf = sgd__largs_take(&a, -1, fkeys);
    sgd__str act = rnn ? sgd__largs_take(&a, -1, nkeys) : (sgd__str){NULL, 0};
    char usage[160];
    snprintf(usage, sizeof usage, "%s takes hidden_size, num_layers, %sbias, dropout and batch_first=1",
             l->op->name, rnn ? "nonlinearity (tanh or relu), " : "");
    if ((st = sgd__largs_check_used(c, &a, usage)) != SGD_OK)
        return st;
    if (hid.p == NULL)
        return sgd__lspec_err(c, SGD_EINVAL, "missing hidden_size, as in %s(256)", l->op->name);
    int64_t h, n = 1;
    if (sgd__parse_int64(hid, &h) != SGD_OK || h < 1 || h > SGD_MODEL_MAX_UNITS)
        return sgd__lspec_err(c, SGD_EINVAL, "hidden_size=%.*s: expected a whole number from 1 to 16777216",
                              (int)hid.n, hid.p);
    if (nl.p != NULL && (sgd__parse_int64(nl, &n) != SGD_OK || n < 1 || n > MAX_LAYERS))
        return sgd__lspec_err(c, SGD_ERANGE, "num_layers=%.*s: must be a whole number from 1 to %d", (int)nl.n,
                              nl.p, MAX_LAYERS);
    bool b = true, first = true;
    if (bias.p != NULL && sgd__parse_bool(bias, &b) != SGD_OK)
        return sgd__lspec_err(c, SGD_EINVAL, "bias=%.*s: not a boolean (use 0 or 1)", (int)bias.n, bias.p);
    if (bf.p != NULL && (sgd__parse_bool(bf, &first) != SGD_OK || !first))
        return sgd__lspec_err(c, SGD_EINVAL,
                              "batch_first=%.*s: samples are always [T, F] (batch first); only batch_first=1 is "
                              "accepted",
                              (int)bf.n, bf.p);
    double p = 0.0;
    if (drop.p != NULL && sgd__parse_double(drop, false, &p) != SGD_OK)
        return sgd__lspec_err(c, SGD_EINVAL, "dropout=%.*s: not a finite number", (int)drop.n, drop.p);
    if (!(p >= 0.0 && p < 1.0))
        return sgd__lspec_err(c, SGD_ERANGE, "dropout=%.*s: must be in [0, 1)", (int)drop.n, drop.p);
    bool relu = false;
    if (act.p != NULL) {
        if (sgd__str_eq(act, "relu"))
            relu = true;
        else if (!sgd__str_eq(act, "tanh"))
            return sgd__lspec_err(c, SGD_EINVAL, "nonlinearity=%.*s: expected tanh or relu", (int)act.n, act.p);
    }
    l->ia[HID] = h;
    l->ia[NLAYERS] = n;
    l->ia[BIAS] = b;
    l->ia[RELU] = relu;
    l->da[DROPOUT] = p;
    return SGD_OK;
}

static int print(const sgd__layer *l, char *buf, size_t n)
{
    char drop[64] = "";
    if (l->da[DROPOUT] > 0) {
        char num[40];
        sgd__fmt_double(num, sizeof num, l->da[DROPOUT]);
        snprintf(drop, sizeof drop, ",dropout=%s", num);
    }
    char nl[24] = "";
    if (l->ia[NLAYERS] != 1)
        snprintf(nl, sizeof nl, ",num_layers=%lld", (long long)l->ia[NLAYERS]);
    return snprintf(buf, n, "%s(%lld%s%s%s%s)", l->op->name, (long long)l->ia[HID], nl,
                    l->ia[RELU] ? ",nonlinearity=relu" : "", l->ia[BIAS] ? "" : ",bias=0", drop);
}

static sgd_status shape(sgd__layer *l, const char *fn)
{
    if (l->in.rank != 2) {
        char in[SGD__SHAPE_BUF];
        sgd__shape_str(&l->in, in, sizeof in);
        return sgd__err(SGD_EINVAL,
                        "%s: %s takes sequences [T, F] (time steps, features), not %s (an embedding makes them from "
                        "token ids [T]; a spec may start with TxF)",
                        fn, l->op->name, in);
    }
    l->out = l->in;
    l->out.d[1] = l->ia[HID];
    return SGD_OK;
}

/* ---------------------------------------------------------------- tensors */

/* Index of layer k's tensors in l->td and l->t: 4 per layer with biases, 2 without, then the state. */
static int per_layer(const sgd__layer *l)
{
    return l->ia[BIAS] ? 4 : 2;
}

static int t_wih(const sgd__layer *l, int64_t k)
{
    return (int)k * per_layer(l);
}

static int t_whh(const sgd__layer *l, int64_t k)
{
    return (int)k * per_layer(l) + 1;
}

static int t_bih(const sgd__layer *l, int64_t k)
{
    return (int)k * per_layer(l) + 2;
}

static int t_bhh(const sgd__layer *l, int64_t k)
{
    return (int)k * per_layer(l) + 3;
}

static int t_h(const sgd__layer *l)
{
    return (int)l->ia[NLAYERS] * per_layer(l);
}

static int t_c(const sgd__layer *l)
{
    return t_h(l) + 1;
}

static int64_t in_of(const sgd__layer *l, int64_t k)
{
    return k == 0 ? l->in.d[1] : l->ia[HID];
}

static size_t tensors(const sgd__layer *l, sgd__tdesc *d)
{
    int64_t H = l->ia[HID], GH = gates_of(l) * H, L = l->ia[NLAYERS];
    size_t n = 0;
    for (int64_t k = 0; k < L; k++) {
        d[n++] = (sgd__tdesc){w_ih_names[k], SGD__ROLE_PARAM, SGD_PARAM_WEIGHT, SGD_DTYPE_F32, 2, {GH, in_of(l, k), 1, 1}};
        d[n++] = (sgd__tdesc){w_hh_names[k], SGD__ROLE_PARAM, SGD_PARAM_WEIGHT, SGD_DTYPE_F32, 2, {GH, H, 1, 1}};
        if (l->ia[BIAS]) {
            d[n++] = (sgd__tdesc){b_ih_names[k], SGD__ROLE_PARAM, SGD_PARAM_BIAS, SGD_DTYPE_F32, 1, {GH, 1, 1, 1}};
            d[n++] = (sgd__tdesc){b_hh_names[k], SGD__ROLE_PARAM, SGD_PARAM_BIAS, SGD_DTYPE_F32, 1, {GH, 1, 1, 1}};
        }
    }
    d[n++] = (sgd__tdesc){"h_n", SGD__ROLE_STATE, 0, SGD_DTYPE_F32, 2, {L, H, 1, 1}};
    if (is_lstm(l))
        d[n++] = (sgd__tdesc){"c_n", SGD__ROLE_STATE, 0, SGD_DTYPE_F32, 2, {L, H, 1, 1}};
    return n;
}

static void init(sgd__layer *l, sgd__rng *r, int32_t init)
{
    /* torch: every parameter U(-1/sqrt(H), 1/sqrt(H)), in the order of parameters(). */
    double stdv = 1.0 / sqrt((double)l->ia[HID]);
    for (int k = 0; k < t_h(l); k++) {
        sgd__tdesc *d = &l->td[k];
        size_t n = sgd__tdesc_numel(d);
        if (init == SGD_INIT_TORCH)
            sgd__fill_uniform(r, l->t[k], n, stdv);
        else if (d->param_kind == SGD_PARAM_WEIGHT)
            sgd__init_weight(r, l->t[k], n, init, (double)d->shape[1], (double)d->shape[0]);
        else
            memset(l->t[k], 0, n * sizeof(float));
    }
}

/* ---------------------------------------------------------------- workspace */

typedef struct rlay {
    size_t xtm;               /* [T, N, F0] the input, time-major */
    size_t hs[MAX_LAYERS];    /* [T + 1, N, H] hidden states, h0 first */
    size_t cs[MAX_LAYERS];    /* LSTM: [T + 1, N, H] cell states */
    size_t tc[MAX_LAYERS];    /* LSTM: [T, N, H] tanh of the cell states */
    size_t gates[MAX_LAYERS]; /* [T, N, G H] input projections, then the gates' activations */
    size_t hn[MAX_LAYERS];    /* GRU: [T, N, H] W_hn h + b_hn */
    size_t drop[MAX_LAYERS];  /* dropout between layers: [T, N, H] layer k's output as layer k+1 sees it */
    size_t mask[MAX_LAYERS];  /* and its keep mask (bytes) */
    size_t da;                /* [T, N, G H] dLoss / d pre-activations */
    size_t dah;               /* GRU: [T, N, G H] the same for the W_hh side (the n gate differs) */
    size_t dh[2];             /* [T, N, max(F0, H)] dLoss / d layer output (ping-pong between layers) */
    size_t dc;                /* LSTM: [N, H] dLoss / d c, carried backwards */
    size_t bsum;              /* [G H] the biases folded into the projections */
    size_t zt;                /* GRU: [N, G H] h W_hh^T of one step */
    size_t wpack;             /* W_hh packed for the recurrent kernel (rec_mul), of the pass running */
    size_t table;             /* after a lookup of V <= T N rows: [V, G H], E W_ih^T, then the summed dA of each id */
    int64_t vocab;            /* V, or 0 without a lookup before */
    bool use_table;           /* the input projections come from the table */
    size_t total;
} rlay;

static bool dropping(const sgd__layer *l)
{
    return l->da[DROPOUT] > 0.0 && l->ia[NLAYERS] > 1;
}

/* Lays out the workspace for batches of n rows; false on overflow. */
static bool layout(const sgd__layer *l, int64_t n, rlay *r)
{
    const size_t A = SGD__ARENA_ALIGN;
    size_t T = (size_t)l->in.d[0], F0 = (size_t)l->in.d[1], H = (size_t)l->ia[HID], N = (size_t)n;
    size_t GH = (size_t)gates_of(l) * H, L = (size_t)l->ia[NLAYERS], wide = F0 > H ? F0 : H;
    size_t at = 0, tn;
    memset(r, 0, sizeof *r);
    if (!sgd__mul_size(T, N, &tn))
        return false;
    /* The GEMMs take int dimensions: T * N rows of up to G * H columns. */
    if (tn > (size_t)INT32_MAX || GH > (size_t)INT32_MAX)
        return false;
#define TAKE(field, count, esize)                                                                             \
    do {                                                                                                      \
        size_t bytes_;                                                                                        \
        if (!sgd__mul_size((count), (esize), &bytes_) || bytes_ > SIZE_MAX - A)                              \
            return false;                                                                                     \
        (field) = at;                                                                                         \
        if (!sgd__add_size(at, (bytes_ + A - 1) / A * A, &at))                                                \
            return false;                                                                                     \
    } while (0)
    size_t tnh, t1nh, tngh, tnw;
    if (!sgd__mul_size(tn, H, &tnh) || !sgd__add_size(tnh, N * H, &t1nh) || !sgd__mul_size(tn, GH, &tngh) ||
        !sgd__mul_size(tn, wide, &tnw))
        return false;
    TAKE(r->xtm, tn, F0 * sizeof(float));
    for (size_t k = 0; k < L; k++) {
        TAKE(r->hs[k], t1nh, sizeof(float));
        TAKE(r->gates[k], tngh, sizeof(float));
        if (is_lstm(l)) {
            TAKE(r->cs[k], t1nh, sizeof(float));
            TAKE(r->tc[k], tnh, sizeof(float));
        }
        if (is_gru(l))
            TAKE(r->hn[k], tnh, sizeof(float));
        if (dropping(l) && k + 1 < L) {
            TAKE(r->drop[k], tnh, sizeof(float));
            TAKE(r->mask[k], tnh, 1);
        }
    }
    TAKE(r->da, tngh, sizeof(float));
    if (is_gru(l))
        TAKE(r->dah, tngh, sizeof(float));
    TAKE(r->dh[0], tnw, sizeof(float));
    TAKE(r->dh[1], tnw, sizeof(float));
    TAKE(r->dc, N * H, sizeof(float));
    TAKE(r->bsum, GH, sizeof(float));
    TAKE(r->zt, N * GH, sizeof(float));
    {
        const size_t P = SGD__RNN_PANEL, fw = (GH + P - 1) / P * P * H, bw = (H + P - 1) / P * P * GH;
        TAKE(r->wpack, fw > bw ? fw : bw, sizeof(float));
    }
    if (l->lookup_from != NULL) {
        float *tab, *grad;
        int64_t rows, width;
        l->lookup_from->op->lookup(l->lookup_from, &tab, &grad, &rows, &width);
        r->vocab = rows;
        /* The table of V rows pays when it has fewer rows than the projections it replaces. */
        r->use_table = (size_t)rows <= tn;
        if (r->use_table)
            TAKE(r->table, (size_t)rows, GH * sizeof(float));
    }
#undef TAKE
    r->total = at;
    return true;
}

static bool workspace(const sgd__layer *l, int64_t batch, size_t *bytes)
{
    rlay r;
    if (!layout(l, batch, &r))
        return false;
    *bytes = r.total;
    return true;
}

static float *wsf(const sgd__layer *l, size_t off)
{
    return (float *)(void *)((unsigned char *)l->ws + off);
}

/* ---------------------------------------------------------------- products */

/* C[m, n] = A[m, k] B[n, k]^T + beta C (row-major, leading dimensions as given). */
static void gemm_nt(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                    float beta, float *c, int64_t ldc)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b, (int)ldb, beta,
                c, (int)ldc);
}

/* C[m, n] = A[m, k] B[k, n] + beta C. */
static void gemm_nn(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                    float beta, float *c, int64_t ldc)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b, (int)ldb,
                beta, c, (int)ldc);
}

/* C[m, n] += A[k, m]^T B[k, n]. */
static void gemm_tn_acc(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                        float *c, int64_t ldc)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b, (int)ldb, 1.0f,
                c, (int)ldc);
}

/* ---------------------------------------------------------------- element-wise kernels */

static void add_row(float *restrict y, const float *restrict b, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, y[j] += b[j];);
}

static void sum_rows(float *restrict dst, const float *restrict a, const float *restrict b, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, dst[j] = a[j] + b[j];);
}

/* dst[j] += sum over rows of src[r][j]. */
static void colsum_add(float *restrict dst, const float *restrict src, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *restrict s = src + (size_t)r * (size_t)cols;
        SGD__FOR_BLOCKED(j, cols, dst[j] += s[j];);
    }
}

/* ---------------------------------------------------------------- SIMD levels */

SGD__RNN_KERNELS(generic, )

#if defined(__x86_64__) && defined(__GNUC__)
#define SGD__RNN_HAVE_AVX2 1
SGD__RNN_KERNELS(avx2, __attribute__((target("avx2"))))
#endif

void sgd__rnn_pack(float *restrict dst, const float *restrict w, int64_t ldw, int64_t K, int64_t M, int transposed)
{
    /*
     * A panel's row k at a time, so that the writes run along memory and so
     * do the reads: one row segment of w when it is not transposed, the same
     * position of 16 rows of w (16 cache lines, reused over 16 values of k)
     * when it is.
     */
    const int64_t P = SGD__RNN_PANEL, panels = (M + P - 1) / P;
    for (int64_t p = 0; p < panels; p++) {
        float *d = dst + (size_t)p * (size_t)K * (size_t)P;
        int64_t j0 = p * P, cols = M - j0 < P ? M - j0 : P;
        for (int64_t k = 0; k < K; k++) {
            float *row = d + (size_t)k * (size_t)P;
            if (transposed) {
                for (int64_t c = 0; c < cols; c++)
                    row[c] = w[(size_t)(j0 + c) * (size_t)ldw + (size_t)k];
            } else {
                memcpy(row, w + (size_t)k * (size_t)ldw + (size_t)j0, (size_t)cols * sizeof(float));
            }
            for (int64_t c = cols; c < P; c++)
                row[c] = 0.0f;
        }
    }
}

#if defined(SGD__RNN_HAVE_AVX2)
#include <immintrin.h>

/*
 * rows x 16 of C from 4 rows of A at a time (8 accumulators: the FMA
 * pipes' latency times their number on these CPUs), then the rest one row
 * at a time. The panel (K x 16 floats) stays in the cache over the rows.
 */
__attribute__((target("avx2,fma"))) static void rec_mul_avx2(const float *restrict A, int64_t lda,
                                                               const float *restrict Bp, int64_t K, int64_t M,
                                                               float *restrict C, int64_t ldc, int64_t rows,
                                                               int accumulate)
{
    const int64_t P = SGD__RNN_PANEL, panels = (M + P - 1) / P;
    for (int64_t p = 0; p < panels; p++) {
        const float *b = Bp + (size_t)p * (size_t)K * (size_t)P;
        int64_t cols = M - p * P < P ? M - p * P : P;
        int64_t r = 0;
        for (; r < rows; r += 4) {
            int64_t nr = rows - r < 4 ? rows - r : 4;
            const float *a0 = A + (size_t)r * (size_t)lda;
            const float *a1 = nr > 1 ? a0 + lda : a0, *a2 = nr > 2 ? a0 + 2 * lda : a0, *a3 = nr > 3 ? a0 + 3 * lda : a0;
            __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
                   c31 = c00;
            for (int64_t k = 0; k < K; k++) {
                __m256 b0 = _mm256_load_ps(b + (size_t)k * 16), b1 = _mm256_load_ps(b + (size_t)k * 16 + 8);
                __m256 x = _mm256_broadcast_ss(a0 + k);
                c00 = _mm256_fmadd_ps(x, b0, c00);
                c01 = _mm256_fmadd_ps(x, b1, c01);
                x = _mm256_broadcast_ss(a1 + k);
                c10 = _mm256_fmadd_ps(x, b0, c10);
                c11 = _mm256_fmadd_ps(x, b1, c11);
                x = _mm256_broadcast_ss(a2 + k);
                c20 = _mm256_fmadd_ps(x, b0, c20);
                c21 = _mm256_fmadd_ps(x, b1, c21);
                x = _mm256_broadcast_ss(a3 + k);
                c30 = _mm256_fmadd_ps(x, b0, c30);
                c31 = _mm256_fmadd_ps(x, b1, c31);
            }
            __m256 acc[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
            for (int64_t i = 0; i < nr; i++) {
                float *c = C + (size_t)(r + i) * (size_t)ldc + (size_t)(p * P);
                if (cols == P) {
                    __m256 v0 = acc[i][0], v1 = acc[i][1];
                    if (accumulate) {
                        v0 = _mm256_add_ps(_mm256_loadu_ps(c), v0);
                        v1 = _mm256_add_ps(_mm256_loadu_ps(c + 8), v1);
                    }
                    _mm256_storeu_ps(c, v0);
                    _mm256_storeu_ps(c + 8, v1);
                } else {
                    float tmp[16];
                    _mm256_storeu_ps(tmp, acc[i][0]);
                    _mm256_storeu_ps(tmp + 8, acc[i][1]);
                    for (int64_t j = 0; j < cols; j++)
                        c[j] = accumulate ? c[j] + tmp[j] : tmp[j];
                }
            }
        }
    }
}
/*
 * The LSTM cell of the avx2 level, written with intrinsics: the same IEEE
 * operations in the same order as lstm_cell_generic (vmath.h's exp, sigmoid
 * and tanh; no FMA, so no contraction), hence the same bits, NaN signs
 * included (tests/test_rnn.c checks it), in 3.0 instead of 5.3 ns per cell:
 * GCC vectorizes the portable code, but its clamps (integer keys, because
 * of -ftrapping-math) and the unions cost a third of the time. max(lo, x)
 * and min(hi, x) return x when it is NaN, as sgd__vclampf does.
 */
__attribute__((target("avx2"))) static inline __m256 v8_clamp(__m256 x, float lo, float hi)
{
    return _mm256_min_ps(_mm256_set1_ps(hi), _mm256_max_ps(_mm256_set1_ps(lo), x));
}

__attribute__((target("avx2"))) static inline __m256 v8_poly(__m256 p, __m256 x, float c)
{
    return _mm256_add_ps(_mm256_mul_ps(p, x), _mm256_set1_ps(c));
}

__attribute__((target("avx2"))) static inline __m256 v8_exp(__m256 x)
{
    x = v8_clamp(x, SGD__VEXP_LO, SGD__VEXP_HI);
    __m256 k = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(SGD__VEXP_LOG2E)), _mm256_set1_ps(SGD__VEXP_SHIFT));
    __m256 n = _mm256_sub_ps(k, _mm256_set1_ps(SGD__VEXP_SHIFT));
    __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(k), _mm256_set1_epi32(0x4B400000)), _mm256_set1_epi32(127)),
        23);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(SGD__VEXP_LN2_HI)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(SGD__VEXP_LN2_LO)));
    __m256 p = _mm256_set1_ps(SGD__VEXP_C5);
    p = v8_poly(p, r, SGD__VEXP_C4);
    p = v8_poly(p, r, SGD__VEXP_C3);
    p = v8_poly(p, r, SGD__VEXP_C2);
    p = v8_poly(p, r, SGD__VEXP_C1);
    p = v8_poly(p, r, SGD__VEXP_C0);
    p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, r), r), r), _mm256_set1_ps(1.0f));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

__attribute__((target("avx2"))) static inline __m256 v8_sigmoid(__m256 x)
{
    __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, v8_exp(_mm256_xor_ps(x, _mm256_set1_ps(-0.0f)))));
}

__attribute__((target("avx2"))) static inline __m256 v8_tanh(__m256 x)
{
    __m256 c = v8_clamp(x, -SGD__VTANH_MAX, SGD__VTANH_MAX), x2 = _mm256_mul_ps(c, c);
    __m256 p = _mm256_set1_ps(SGD__VTANH_P6);
    p = v8_poly(p, x2, SGD__VTANH_P5);
    p = v8_poly(p, x2, SGD__VTANH_P4);
    p = v8_poly(p, x2, SGD__VTANH_P3);
    p = v8_poly(p, x2, SGD__VTANH_P2);
    p = v8_poly(p, x2, SGD__VTANH_P1);
    p = v8_poly(p, x2, SGD__VTANH_P0);
    p = _mm256_mul_ps(p, c);
    __m256 q = _mm256_set1_ps(SGD__VTANH_Q3);
    q = v8_poly(q, x2, SGD__VTANH_Q2);
    q = v8_poly(q, x2, SGD__VTANH_Q1);
    q = v8_poly(q, x2, SGD__VTANH_Q0);
    return _mm256_div_ps(p, q);
}

/*
 * In two passes over the row, each with more independent work in flight
 * than one cell at a time: the gates and c (four exps or tanhs side by
 * side), then tanh(c) and h (two blocks side by side). 3.0 ns per cell
 * where one pass took 3.5. With q, the projections are added first.
 */
__attribute__((target("avx2"))) static inline void lstm_cell_avx2_rows(
    float *restrict ai, float *restrict af, float *restrict ag, float *restrict ao, const float *restrict qi,
    const float *restrict qf, const float *restrict qg, const float *restrict qo, const float *restrict c0,
    float *restrict c1, float *restrict tc, float *restrict h1, int64_t n)
{
    int64_t n8 = n / 8 * 8;
    for (int64_t j = 0; j < n8; j += 8) {
        __m256 xi = _mm256_loadu_ps(ai + j), xf = _mm256_loadu_ps(af + j);
        __m256 xg = _mm256_loadu_ps(ag + j), xo = _mm256_loadu_ps(ao + j);
        if (qi != NULL) {
            xi = _mm256_add_ps(xi, _mm256_loadu_ps(qi + j));
            xf = _mm256_add_ps(xf, _mm256_loadu_ps(qf + j));
            xg = _mm256_add_ps(xg, _mm256_loadu_ps(qg + j));
            xo = _mm256_add_ps(xo, _mm256_loadu_ps(qo + j));
        }
        __m256 i = v8_sigmoid(xi), f = v8_sigmoid(xf), g = v8_tanh(xg), o = v8_sigmoid(xo);
        _mm256_storeu_ps(ai + j, i);
        _mm256_storeu_ps(af + j, f);
        _mm256_storeu_ps(ag + j, g);
        _mm256_storeu_ps(ao + j, o);
        _mm256_storeu_ps(c1 + j, _mm256_add_ps(_mm256_mul_ps(f, _mm256_loadu_ps(c0 + j)), _mm256_mul_ps(i, g)));
    }
    int64_t j = 0;
    for (; j + 16 <= n8; j += 16) {
        __m256 t0 = v8_tanh(_mm256_loadu_ps(c1 + j)), t1 = v8_tanh(_mm256_loadu_ps(c1 + j + 8));
        _mm256_storeu_ps(tc + j, t0);
        _mm256_storeu_ps(tc + j + 8, t1);
        _mm256_storeu_ps(h1 + j, _mm256_mul_ps(_mm256_loadu_ps(ao + j), t0));
        _mm256_storeu_ps(h1 + j + 8, _mm256_mul_ps(_mm256_loadu_ps(ao + j + 8), t1));
    }
    if (j < n8) {
        __m256 t0 = v8_tanh(_mm256_loadu_ps(c1 + j));
        _mm256_storeu_ps(tc + j, t0);
        _mm256_storeu_ps(h1 + j, _mm256_mul_ps(_mm256_loadu_ps(ao + j), t0));
    }
    if (n8 < n) { /* the last n % 8: the portable code, the same operations */
        if (qi != NULL)
            for (int64_t k = n8; k < n; k++) {
                ai[k] = ai[k] + qi[k];
                af[k] = af[k] + qf[k];
                ag[k] = ag[k] + qg[k];
                ao[k] = ao[k] + qo[k];
            }
        lstm_cell_avx2(ai + n8, af + n8, ag + n8, ao + n8, c0 + n8, c1 + n8, tc + n8, h1 + n8, n - n8);
    }
}

__attribute__((target("avx2"))) static void lstm_cell_avx2i(float *restrict ai, float *restrict af,
                                                            float *restrict ag, float *restrict ao,
                                                            const float *restrict c0, float *restrict c1,
                                                            float *restrict tc, float *restrict h1, int64_t n)
{
    lstm_cell_avx2_rows(ai, af, ag, ao, NULL, NULL, NULL, NULL, c0, c1, tc, h1, n);
}

__attribute__((target("avx2"))) static void lstm_cell_q_avx2(float *restrict ai, float *restrict af,
                                                             float *restrict ag, float *restrict ao,
                                                             const float *restrict qi, const float *restrict qf,
                                                             const float *restrict qg, const float *restrict qo,
                                                             const float *restrict c0, float *restrict c1,
                                                             float *restrict tc, float *restrict h1, int64_t n)
{
    lstm_cell_avx2_rows(ai, af, ag, ao, qi, qf, qg, qo, c0, c1, tc, h1, n);
}
#endif

#define SGD__RNN_KTAB(SUF, LSTM_CELL, LSTM_CELL_Q, REC)                                                      \
    {                                                                                                         \
        #SUF, LSTM_CELL, LSTM_CELL_Q, lstm_cell_back_##SUF, gru_cell_##SUF, gru_cell_nobias_##SUF, gru_cell_back_##SUF,  \
            gru_direct_##SUF, rnn_tanh_##SUF, rnn_relu_##SUF, rnn_tanh_back_##SUF, rnn_relu_back_##SUF, REC   \
    }

static const sgd__rnn_ktab ktab_generic = SGD__RNN_KTAB(generic, lstm_cell_generic, NULL, NULL);
#if defined(SGD__RNN_HAVE_AVX2)
static const sgd__rnn_ktab ktab_avx2 = SGD__RNN_KTAB(avx2, lstm_cell_avx2i, lstm_cell_q_avx2, rec_mul_avx2);
#endif

size_t sgd__rnn_kern_runnable(const sgd__rnn_ktab **out)
{
    size_t k = 0;
    out[k++] = &ktab_generic;
#if defined(SGD__RNN_HAVE_AVX2)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        out[k++] = &ktab_avx2;
#endif
    return k;
}

/*
 * Chosen at the first call and published through an atomic pointer
 * (threads that race compute the same table): no resolver runs at load time
 * (no ifunc, no target_clones), as the optimizers' kernels.
 */
static _Atomic(const sgd__rnn_ktab *) rnn_chosen;

void sgd__rnn_kern_force(const sgd__rnn_ktab *t)
{
    atomic_store_explicit(&rnn_chosen, t, memory_order_release);
}

const sgd__rnn_ktab *sgd__rnn_kern(void)
{
    const sgd__rnn_ktab *t = atomic_load_explicit(&rnn_chosen, memory_order_acquire);
    if (t == NULL) {
        const sgd__rnn_ktab *run[2];
        size_t k = sgd__rnn_kern_runnable(run);
        const char *want = getenv("SGDLAB_SIMD");
        t = want != NULL && strcmp(want, "generic") == 0 ? run[0] : run[k - 1];
        atomic_store_explicit(&rnn_chosen, t, memory_order_release);
    }
    return t;
}

/* The gates' kernels, at the SIMD level the CPU has. */
#define K (sgd__rnn_kern())

static void apply_mask(float *restrict y, const float *restrict x, const uint8_t *restrict mask, float scale,
                       int64_t n)
{
    SGD__FOR_BLOCKED(j, n, y[j] = mask[j] ? x[j] * scale : 0.0f;);
}

static void mask_inplace(float *restrict y, const uint8_t *restrict mask, float scale, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, y[j] = mask[j] ? y[j] * scale : 0.0f;);
}

/* ---------------------------------------------------------------- layout helpers */

/* [N, T, F] (row n*T + t) to [T, N, F] (row t*N + n). */
static void to_time_major(float *restrict dst, const float *restrict src, int64_t N, int64_t T, int64_t F)
{
    for (int64_t n = 0; n < N; n++)
        for (int64_t t = 0; t < T; t++)
            memcpy(dst + ((size_t)t * (size_t)N + (size_t)n) * (size_t)F,
                   src + ((size_t)n * (size_t)T + (size_t)t) * (size_t)F, (size_t)F * sizeof(float));
}

/* [T, N, F] to [N, T, F]. */
static void to_batch_first(float *restrict dst, const float *restrict src, int64_t N, int64_t T, int64_t F)
{
    for (int64_t n = 0; n < N; n++)
        for (int64_t t = 0; t < T; t++)
            memcpy(dst + ((size_t)n * (size_t)T + (size_t)t) * (size_t)F,
                   src + ((size_t)t * (size_t)N + (size_t)n) * (size_t)F, (size_t)F * sizeof(float));
}

/* The keep mask of a dropout between layers: two 32-bit draws per generator output, as the dropout layer. */
static void draw_mask(uint8_t *mask, size_t n, double prob, sgd__rng *rng)
{
    uint64_t thr = (uint64_t)ldexp(prob, 32);
    for (size_t k = 0; k < n; k += 2) {
        uint64_t r = sgd__rng_next(rng);
        mask[k] = (r & 0xffffffffu) >= thr;
        if (k + 1 < n)
            mask[k + 1] = (r >> 32) >= thr;
    }
}

/* ---------------------------------------------------------------- forward */

typedef struct dims {
    int64_t N, T, F0, H, G, GH, L;
} dims;

static dims dims_of(const sgd__layer *l, int64_t batch)
{
    dims d;
    d.N = batch;
    d.T = l->in.d[0];
    d.F0 = l->in.d[1];
    d.H = l->ia[HID];
    d.G = gates_of(l);
    d.GH = d.G * d.H;
    d.L = l->ia[NLAYERS];
    return d;
}

/* Layer k's input, time-major [T, N, in_k]: the transposed model input, or the layer below's output. */
static const float *layer_input(const sgd__layer *l, const rlay *r, const dims *d, int64_t k, bool training)
{
    if (k == 0)
        return wsf(l, r->xtm);
    if (dropping(l) && training)
        return wsf(l, r->drop[k - 1]);
    return wsf(l, r->hs[k - 1]) + (size_t)d->N * (size_t)d->H;
}

/*
 * Step t of layer k: P_t += h_{t-1} W_hh^T, then the cell. With `ids` (the
 * token ids [N, T] after an embedding; LSTM at a level with lstm_cell_q),
 * P_t does not hold the table's projections yet: the product is stored and
 * the cell adds each row's projections from the table.
 */
static void step_forward(const sgd__layer *l, const rlay *r, const dims *d, int64_t k, int64_t t, const float *ids)
{
    int64_t N = d->N, H = d->H, GH = d->GH;
    size_t nh = (size_t)N * (size_t)H, ngh = (size_t)N * (size_t)GH;
    float *hs = wsf(l, r->hs[k]), *P = wsf(l, r->gates[k]) + (size_t)t * ngh;
    const float *hprev = hs + (size_t)t * nh, *whh = l->t[t_whh(l, k)];
    float *hnext = hs + (size_t)(t + 1) * nh;
    const float *packed = wsf(l, r->wpack);
    if (is_gru(l)) {
        float *Z = wsf(l, r->zt), *hn = wsf(l, r->hn[k]) + (size_t)t * nh;
        if (K->rec_mul != NULL)
            K->rec_mul(hprev, H, packed, H, GH, Z, GH, N, 0);
        else
            gemm_nt(N, GH, H, hprev, H, whh, H, 0.0f, Z, GH);
        const float *bn = l->ia[BIAS] ? (const float *)l->t[t_bhh(l, k)] + 2 * H : NULL;
        for (int64_t n = 0; n < N; n++) {
            float *a = P + (size_t)n * (size_t)GH;
            const float *z = Z + (size_t)n * (size_t)GH;
            size_t o = (size_t)n * (size_t)H;
            if (bn != NULL)
                K->gru_cell(a, a + H, a + 2 * H, z, z + H, z + 2 * H, bn, hprev + o, hn + o, hnext + o, H);
            else
                K->gru_cell_nobias(a, a + H, a + 2 * H, z, z + H, z + 2 * H, hprev + o, hn + o, hnext + o, H);
        }
        return;
    }
    if (K->rec_mul != NULL)
        K->rec_mul(hprev, H, packed, H, GH, P, GH, N, ids == NULL);
    else
        gemm_nt(N, GH, H, hprev, H, whh, H, ids == NULL ? 1.0f : 0.0f, P, GH);
    if (is_lstm(l)) {
        float *cs = wsf(l, r->cs[k]), *tc = wsf(l, r->tc[k]) + (size_t)t * nh;
        const float *c0 = cs + (size_t)t * nh, *Q = wsf(l, r->table);
        float *c1 = cs + (size_t)(t + 1) * nh;
        for (int64_t n = 0; n < N; n++) {
            float *a = P + (size_t)n * (size_t)GH;
            size_t o = (size_t)n * (size_t)H;
            if (ids != NULL) {
                const float *q = Q + (size_t)ids[n * d->T + t] * (size_t)GH;
                K->lstm_cell_q(a, a + H, a + 2 * H, a + 3 * H, q, q + H, q + 2 * H, q + 3 * H, c0 + o, c1 + o,
                               tc + o, hnext + o, H);
            } else {
                K->lstm_cell(a, a + H, a + 2 * H, a + 3 * H, c0 + o, c1 + o, tc + o, hnext + o, H);
            }
        }
        return;
    }
    if (l->ia[RELU])
        K->rnn_relu(P, hnext, (int64_t)nh);
    else
        K->rnn_tanh(P, hnext, (int64_t)nh);
}

/*
 * After a lookup (an embedding), x holds the token ids [N, T]: either the
 * projections of the table's rows, P = E W_ih^T, gathered by id (use_table),
 * or the rows of the table gathered time-major into Xtm.
 */
static void lookup_forward(sgd__layer *l, const rlay *r, const dims *d, const float *x, const float *bsum)
{
    float *E, *dE;
    int64_t V, D;
    l->lookup_from->op->lookup(l->lookup_from, &E, &dE, &V, &D);
    float *P = wsf(l, r->gates[0]);
    if (!r->use_table) {
        float *X = wsf(l, r->xtm);
        for (int64_t n = 0; n < d->N; n++)
            for (int64_t t = 0; t < d->T; t++)
                memcpy(X + ((size_t)t * (size_t)d->N + (size_t)n) * (size_t)D,
                       E + (size_t)x[n * d->T + t] * (size_t)D, (size_t)D * sizeof(float));
        gemm_nt(d->T * d->N, d->GH, D, X, D, l->t[t_wih(l, 0)], D, 0.0f, P, d->GH);
        if (bsum != NULL)
            for (int64_t row = 0; row < d->T * d->N; row++)
                add_row(P + (size_t)row * (size_t)d->GH, bsum, d->GH);
        return;
    }
    float *Q = wsf(l, r->table);
    gemm_nt(V, d->GH, D, E, D, l->t[t_wih(l, 0)], D, 0.0f, Q, d->GH);
    if (bsum != NULL)
        for (int64_t v = 0; v < V; v++)
            add_row(Q + (size_t)v * (size_t)d->GH, bsum, d->GH);
    /* The projections are gathered step by step (gather_step), while they are in the cache. */
}

/* Step t's projections from the table: P_t[n] = Q[id of row n at t]. */
static void gather_step(const sgd__layer *l, const rlay *r, const dims *d, const float *x, int64_t t)
{
    const float *Q = wsf(l, r->table);
    float *P = wsf(l, r->gates[0]) + (size_t)t * (size_t)d->N * (size_t)d->GH;
    for (int64_t n = 0; n < d->N; n++)
        memcpy(P + (size_t)n * (size_t)d->GH, Q + (size_t)x[n * d->T + t] * (size_t)d->GH,
               (size_t)d->GH * sizeof(float));
}

/* The biases folded into the projections (GRU: b_hn stays out, the reset gate multiplies W_hn h + b_hn). */
static const float *fold_bias(const sgd__layer *l, const rlay *r, const dims *d, int64_t k)
{
    if (!l->ia[BIAS])
        return NULL;
    float *bsum = wsf(l, r->bsum);
    const float *bih = l->t[t_bih(l, k)], *bhh = l->t[t_bhh(l, k)];
    int64_t fold = is_gru(l) ? 2 * d->H : d->GH;
    sum_rows(bsum, bih, bhh, fold);
    if (fold < d->GH)
        memcpy(bsum + fold, bih + fold, (size_t)(d->GH - fold) * sizeof(float));
    return bsum;
}

static sgd_status forward(sgd__layer *l, const float *x, const sgd__pass *p)
{
    dims d = dims_of(l, p->batch);
    rlay r;
    layout(l, d.N, &r); /* fits: the workspace was laid out for max_batch >= batch */
    size_t nh = (size_t)d.N * (size_t)d.H;
    if (l->lookup_from == NULL)
        to_time_major(wsf(l, r.xtm), x, d.N, d.T, d.F0);
    float *sh = l->t[t_h(l)], *sc = is_lstm(l) ? l->t[t_c(l)] : NULL;
    bool train = p->training;
    for (int64_t k = 0; k < d.L; k++) {
        int64_t in = in_of(l, k);
        float *P = wsf(l, r.gates[k]), *hs = wsf(l, r.hs[k]);
        const float *bsum = fold_bias(l, &r, &d, k);
        /* All the input projections at once, plus the biases. */
        if (k == 0 && l->lookup_from != NULL) {
            lookup_forward(l, &r, &d, x, bsum);
        } else {
            gemm_nt(d.T * d.N, d.GH, in, layer_input(l, &r, &d, k, train), in, l->t[t_wih(l, k)], in, 0.0f, P, d.GH);
            if (bsum != NULL)
                for (int64_t row = 0; row < d.T * d.N; row++)
                    add_row(P + (size_t)row * (size_t)d.GH, bsum, d.GH);
        }
        /* The carried state as h0 (and c0). */
        for (int64_t n = 0; n < d.N; n++) {
            size_t so = ((size_t)n * (size_t)d.L + (size_t)k) * (size_t)d.H;
            memcpy(hs + (size_t)n * (size_t)d.H, sh + so, (size_t)d.H * sizeof(float));
            if (sc != NULL)
                memcpy(wsf(l, r.cs[k]) + (size_t)n * (size_t)d.H, sc + so, (size_t)d.H * sizeof(float));
        }
        bool gather = k == 0 && l->lookup_from != NULL && r.use_table;
        /* An LSTM at a level with lstm_cell_q reads the table's projections in its cell instead. */
        bool in_cell = gather && is_lstm(l) && K->lstm_cell_q != NULL;
        if (K->rec_mul != NULL) /* B = W_hh^T, packed once for the T steps */
            sgd__rnn_pack(wsf(l, r.wpack), l->t[t_whh(l, k)], d.H, d.H, d.GH, 1);
        for (int64_t t = 0; t < d.T; t++) {
            if (gather && !in_cell)
                gather_step(l, &r, &d, x, t);
            step_forward(l, &r, &d, k, t, in_cell ? x : NULL);
        }
        if (dropping(l) && train && k + 1 < d.L) {
            size_t cells = (size_t)d.T * nh;
            uint8_t *mask = (uint8_t *)l->ws + r.mask[k];
            draw_mask(mask, cells, l->da[DROPOUT], p->rng);
            apply_mask(wsf(l, r.drop[k]), hs + nh, mask, (float)(1.0 / (1.0 - l->da[DROPOUT])), (int64_t)cells);
        }
        /* The final state, carried to the next batch. */
        for (int64_t n = 0; n < d.N; n++) {
            size_t so = ((size_t)n * (size_t)d.L + (size_t)k) * (size_t)d.H;
            memcpy(sh + so, hs + (size_t)d.T * nh + (size_t)n * (size_t)d.H, (size_t)d.H * sizeof(float));
            if (sc != NULL)
                memcpy(sc + so, wsf(l, r.cs[k]) + (size_t)d.T * nh + (size_t)n * (size_t)d.H,
                       (size_t)d.H * sizeof(float));
        }
    }
    to_batch_first(l->buf, wsf(l, r.hs[d.L - 1]) + nh, d.N, d.T, d.H);
    l->y = l->buf;
    return SGD_OK;
}

/* ---------------------------------------------------------------- backward */

/* The cell of step t backwards: fills dA_t (and GRU's dAh_t) and adds the direct part to dH_{t-1}. */
static void step_backward(const sgd__layer *l, const rlay *r, const dims *d, int64_t k, int64_t t, float *dH)
{
    int64_t N = d->N, H = d->H, GH = d->GH;
    size_t nh = (size_t)N * (size_t)H, ngh = (size_t)N * (size_t)GH;
    const float *gates = wsf(l, r->gates[k]) + (size_t)t * ngh;
    float *dA = wsf(l, r->da) + (size_t)t * ngh;
    const float *dh = dH + (size_t)t * nh;
    if (is_lstm(l)) {
        const float *c0 = wsf(l, r->cs[k]) + (size_t)t * nh, *tc = wsf(l, r->tc[k]) + (size_t)t * nh;
        float *dc = wsf(l, r->dc);
        for (int64_t n = 0; n < N; n++) {
            const float *g = gates + (size_t)n * (size_t)GH;
            float *a = dA + (size_t)n * (size_t)GH;
            size_t o = (size_t)n * (size_t)H;
            K->lstm_cell_back(g, g + H, g + 2 * H, g + 3 * H, c0 + o, tc + o, dh + o, dc + o, a, a + H, a + 2 * H,
                           a + 3 * H, H);
        }
        return;
    }
    if (is_gru(l)) {
        const float *hn = wsf(l, r->hn[k]) + (size_t)t * nh, *h0 = wsf(l, r->hs[k]) + (size_t)t * nh;
        float *dAh = wsf(l, r->dah) + (size_t)t * ngh;
        for (int64_t n = 0; n < N; n++) {
            const float *g = gates + (size_t)n * (size_t)GH;
            float *a = dA + (size_t)n * (size_t)GH, *b = dAh + (size_t)n * (size_t)GH;
            size_t o = (size_t)n * (size_t)H;
            K->gru_cell_back(g, g + H, g + 2 * H, hn + o, h0 + o, dh + o, a, a + H, a + 2 * H, b, b + H, b + 2 * H, H);
            if (t > 0)
                K->gru_direct(dH + (size_t)(t - 1) * nh + o, g + H, dh + o, H);
        }
        return;
    }
    const float *h1 = wsf(l, r->hs[k]) + (size_t)(t + 1) * nh;
    if (l->ia[RELU])
        K->rnn_relu_back(h1, dh, dA, (int64_t)nh);
    else
        K->rnn_tanh_back(h1, dh, dA, (int64_t)nh);
}

/* The input side of layer 0 after a lookup: dW_ih and the table's gradient, from dA and the ids x. */
static void lookup_backward(sgd__layer *l, const rlay *r, const dims *d, const float *x)
{
    float *E, *dE;
    int64_t V, D;
    l->lookup_from->op->lookup(l->lookup_from, &E, &dE, &V, &D);
    const float *dA = wsf(l, r->da), *W = l->t[t_wih(l, 0)];
    float *gW = l->gt[t_wih(l, 0)];
    size_t tn = (size_t)d->T * (size_t)d->N;
    if (!r->use_table) {
        gemm_tn_acc(d->GH, D, (int64_t)tn, dA, d->GH, wsf(l, r->xtm), D, gW, D);
        float *dX = wsf(l, r->dh[1]);
        gemm_nn((int64_t)tn, D, d->GH, dA, d->GH, W, D, 0.0f, dX, D);
        for (int64_t n = 0; n < d->N; n++)
            for (int64_t t = 0; t < d->T; t++)
                add_row(dE + (size_t)x[n * d->T + t] * (size_t)D, dX + ((size_t)t * (size_t)d->N + (size_t)n) * (size_t)D,
                        D);
        return;
    }
    /* S[v] = the sum of dA over the positions of id v (summed step by step in backward); dW_ih += S^T E, dE += S W_ih. */
    float *S = wsf(l, r->table);
    gemm_tn_acc(d->GH, D, V, S, d->GH, E, D, gW, D);
    gemm_nn(V, D, d->GH, S, d->GH, W, D, 1.0f, dE, D);
}

static float *backward(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, const sgd__pass *p)
{
    dims d = dims_of(l, p->batch);
    rlay r;
    layout(l, d.N, &r);
    size_t nh = (size_t)d.N * (size_t)d.H, tn = (size_t)d.T * (size_t)d.N;
    int cur = 0;
    float *dH = wsf(l, r.dh[cur]);
    to_time_major(dH, g, d.N, d.T, d.H);
    bool train = p->training;
    for (int64_t k = d.L; k-- > 0;) {
        int64_t in = in_of(l, k);
        const float *whh = l->t[t_whh(l, k)];
        const float *dAh = is_gru(l) ? wsf(l, r.dah) : wsf(l, r.da);
        if (is_lstm(l))
            memset(wsf(l, r.dc), 0, nh * sizeof(float));
        /* The biases' gradients, summed step by step while dA_t is in the cache (bsum and zt are free now). */
        float *sum_a = wsf(l, r.bsum), *sum_h = is_gru(l) ? wsf(l, r.zt) : sum_a;
        if (l->ia[BIAS]) {
            memset(sum_a, 0, (size_t)d.GH * sizeof(float));
            memset(sum_h, 0, (size_t)d.GH * sizeof(float));
        }
        size_t ngh = (size_t)d.N * (size_t)d.GH;
        if (K->rec_mul != NULL) /* B = W_hh, packed once for the T steps */
            sgd__rnn_pack(wsf(l, r.wpack), whh, d.H, d.GH, d.H, 0);
        bool scatter = k == 0 && l->lookup_from != NULL && r.use_table;
        if (scatter)
            memset(wsf(l, r.table), 0, (size_t)r.vocab * ngh / (size_t)d.N * sizeof(float));
        for (int64_t t = d.T; t-- > 0;) {
            step_backward(l, &r, &d, k, t, dH);
            if (scatter) { /* the table's gradient S[id] += dA_t row, while dA_t is in the cache */
                float *S = wsf(l, r.table);
                const float *dAt = wsf(l, r.da) + (size_t)t * ngh;
                for (int64_t n = 0; n < d.N; n++)
                    add_row(S + (size_t)x[n * d.T + t] * (size_t)d.GH, dAt + (size_t)n * (size_t)d.GH, d.GH);
            }
            if (l->ia[BIAS]) {
                if (!scatter) /* else summed from the table's V rows below: the same sum, fewer rows */
                    colsum_add(sum_a, wsf(l, r.da) + (size_t)t * ngh, d.N, d.GH);
                if (is_gru(l))
                    colsum_add(sum_h, dAh + (size_t)t * ngh, d.N, d.GH);
            }
            if (t > 0 && K->rec_mul != NULL) /* dLoss/dh_{t-1} += dA_t W_hh (the gradient stops at h0) */
                K->rec_mul(dAh + (size_t)t * ngh, d.GH, wsf(l, r.wpack), d.GH, d.H, dH + (size_t)(t - 1) * nh, d.H, d.N,
                           1);
            else if (t > 0)
                gemm_nn(d.N, d.H, d.GH, dAh + (size_t)t * ngh, d.GH, whh, d.H, 1.0f, dH + (size_t)(t - 1) * nh, d.H);
        }
        if (scatter && l->ia[BIAS]) /* S[v] sums dA over the positions of id v: its rows sum dA over all */
            colsum_add(sum_a, wsf(l, r.table), r.vocab, d.GH);
        const float *dA = wsf(l, r.da);
        gemm_tn_acc(d.GH, d.H, (int64_t)tn, dAh, d.GH, wsf(l, r.hs[k]), d.H, l->gt[t_whh(l, k)], d.H);
        if (l->ia[BIAS]) {
            add_row(l->gt[t_bih(l, k)], sum_a, d.GH);
            add_row(l->gt[t_bhh(l, k)], sum_h, d.GH);
        }
        if (k == 0 && l->lookup_from != NULL) {
            lookup_backward(l, &r, &d, x);
            if (!need_gx)
                return NULL;
            /* The lookup's backward does nothing with it: its gradient is done. */
            memset(gx, 0, (size_t)d.N * (size_t)d.T * (size_t)d.F0 * sizeof(float));
            return gx;
        }
        gemm_tn_acc(d.GH, in, (int64_t)tn, dA, d.GH, layer_input(l, &r, &d, k, train), in, l->gt[t_wih(l, k)], in);
        if (k == 0 && !need_gx)
            break;
        float *dX = wsf(l, r.dh[1 - cur]);
        gemm_nn((int64_t)tn, in, d.GH, dA, d.GH, l->t[t_wih(l, k)], in, 0.0f, dX, in);
        if (k > 0 && dropping(l) && train)
            mask_inplace(dX, (const uint8_t *)l->ws + r.mask[k - 1], (float)(1.0 / (1.0 - l->da[DROPOUT])),
                       (int64_t)(tn * (size_t)d.H));
        cur = 1 - cur;
        dH = dX;
    }
    if (!need_gx)
        return NULL;
    to_batch_first(gx, dH, d.N, d.T, d.F0);
    return gx;
}

/* ---------------------------------------------------------------- benchmark replay */

static void replay(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, int64_t batch)
{
    (void)x;
    (void)g;
    (void)gx;
    dims d = dims_of(l, batch);
    rlay r;
    layout(l, d.N, &r);
    size_t nh = (size_t)d.N * (size_t)d.H, ngh = (size_t)d.N * (size_t)d.GH, tn = (size_t)d.T * (size_t)d.N;
    float *E = NULL, *dE = NULL;
    int64_t V = 0, D = 0;
    if (l->lookup_from != NULL)
        l->lookup_from->op->lookup(l->lookup_from, &E, &dE, &V, &D);
    bool table = l->lookup_from != NULL && r.use_table;
    if (g == NULL) {
        for (int64_t k = 0; k < d.L; k++) {
            int64_t in = in_of(l, k);
            float *P = wsf(l, r.gates[k]), *hs = wsf(l, r.hs[k]);
            if (k == 0 && table)
                gemm_nt(V, d.GH, D, E, D, l->t[t_wih(l, 0)], D, 0.0f, wsf(l, r.table), d.GH);
            else
                gemm_nt((int64_t)tn, d.GH, in, layer_input(l, &r, &d, k, false), in, l->t[t_wih(l, k)], in, 0.0f, P,
                        d.GH);
            if (K->rec_mul != NULL)
                sgd__rnn_pack(wsf(l, r.wpack), l->t[t_whh(l, k)], d.H, d.H, d.GH, 1);
            for (int64_t t = 0; t < d.T; t++) {
                float *C = is_gru(l) ? wsf(l, r.zt) : P + (size_t)t * ngh;
                if (K->rec_mul != NULL)
                    K->rec_mul(hs + (size_t)t * nh, d.H, wsf(l, r.wpack), d.H, d.GH, C, d.GH, d.N, !is_gru(l));
                else
                    gemm_nt(d.N, d.GH, d.H, hs + (size_t)t * nh, d.H, l->t[t_whh(l, k)], d.H, is_gru(l) ? 0.0f : 1.0f,
                            C, d.GH);
            }
        }
        return;
    }
    for (int64_t k = d.L; k-- > 0;) {
        int64_t in = in_of(l, k);
        float *dH = wsf(l, r.dh[0]);
        const float *dAh = is_gru(l) ? wsf(l, r.dah) : wsf(l, r.da);
        if (K->rec_mul != NULL)
            sgd__rnn_pack(wsf(l, r.wpack), l->t[t_whh(l, k)], d.H, d.GH, d.H, 0);
        for (int64_t t = d.T; t-- > 1;) {
            if (K->rec_mul != NULL)
                K->rec_mul(dAh + (size_t)t * ngh, d.GH, wsf(l, r.wpack), d.GH, d.H, dH + (size_t)(t - 1) * nh, d.H, d.N,
                           1);
            else
                gemm_nn(d.N, d.H, d.GH, dAh + (size_t)t * ngh, d.GH, l->t[t_whh(l, k)], d.H, 1.0f,
                        dH + (size_t)(t - 1) * nh, d.H);
        }
        gemm_tn_acc(d.GH, d.H, (int64_t)tn, dAh, d.GH, wsf(l, r.hs[k]), d.H, l->gt[t_whh(l, k)], d.H);
        if (k == 0 && table) {
            gemm_tn_acc(d.GH, D, V, wsf(l, r.table), d.GH, E, D, l->gt[t_wih(l, 0)], D);
            gemm_nn(V, D, d.GH, wsf(l, r.table), d.GH, l->t[t_wih(l, 0)], D, 1.0f, dE, D);
            continue;
        }
        gemm_tn_acc(d.GH, in, (int64_t)tn, wsf(l, r.da), d.GH, layer_input(l, &r, &d, k, false), in,
                    l->gt[t_wih(l, k)], in);
        if (k > 0 || need_gx || l->lookup_from != NULL)
            gemm_nn((int64_t)tn, in, d.GH, wsf(l, r.da), d.GH, l->t[t_wih(l, k)], in, 0.0f, wsf(l, r.dh[1]), in);
    }
}

/* ---------------------------------------------------------------- the records */

#define SGD__RNN_OP(var, k, nm)                                                                               \
    const sgd__layer_op var = {                                                                               \
        .kind = k,                                                                                            \
        .name = nm,                                                                                           \
        .flags = SGD__OP_TAKES_LOOKUP,                                                                        \
        .parse = parse,                                                                                       \
        .print = print,                                                                                       \
        .shape = shape,                                                                                       \
        .tensors = tensors,                                                                                   \
        .init = init,                                                                                         \
        .workspace = workspace,                                                                               \
        .forward = forward,                                                                                   \
        .backward = backward,                                                                                 \
        .replay_gemms = replay,                                                                               \
    }

SGD__RNN_OP(sgd__op_rnn, SGD_LAYER_RNN, "rnn");
SGD__RNN_OP(sgd__op_lstm, SGD_LAYER_LSTM, "lstm");
SGD__RNN_OP(sgd__op_gru, SGD_LAYER_GRU, "gru");
