/*
 * libsgdlab optimizers: the hot loops, one table of them per SIMD level.
 *
 * lib/optim/kernels.c is compiled once per level (generic x86-64/SSE2, AVX2,
 * AVX-512F on x86-64; generic only elsewhere), each time with the level's
 * -m flags, -ffp-contract=off and a different table name: the same C source,
 * so every level computes the same bits (no FMA contraction, the same lane
 * structure in the scan) and the levels that this machine cannot run share
 * their logic with the ones it can. lib/optim/dispatch.c picks one table once
 * per process (cpuid through __builtin_cpu_supports, or SGDLAB_SIMD), with no
 * ifunc or target_clones resolver (gcc's ThreadSanitizer build crashed in
 * those at load).
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_OPTIM_KERNELS_H
#define SGDLAB_OPTIM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/*
 * One read-only pass over the gradients, before anything is written:
 * the sum of squares (for the L2 norm), the largest magnitude, and, when
 * clip_value > 0, the sum of squares of the value-clipped gradients.
 * `sumsq` is not finite when a gradient is NaN or infinite (or so large that
 * a block's float sum overflowed): sgd__grad_scan_exact() then tells which.
 */
typedef struct sgd__gradstat {
    double sumsq;
    double sumsq_clipped; /* == sumsq when clip_value == 0 */
    float max_abs;        /* NaN-blind */
} sgd__gradstat;

/*
 * What every kernel reads besides its arrays. Every kernel first forms the
 * gradient it uses as  d = clamp(g[i], -cv, cv) * gs + wd * p[i]  where cv is
 * the value-clipping bound (+inf: none), gs the norm-clipping factor with
 * maximize's sign folded in, and wd the L2 coefficient (0 for decoupled
 * decay). `decay` multiplies p first (decoupled weight decay; 1: none).
 * c[] are the kind's per-step coefficients, documented at each kernel.
 * Kernels copy all of it into locals before their loop.
 */
typedef struct sgd__kargs {
    float cv, gs, wd, decay, lr;
    float c[10];
} sgd__kargs;

/* SGD modes */
enum {
    SGD__SGD_PLAIN = 0,      /* no momentum */
    SGD__SGD_MOM_FIRST = 1,  /* buf = d; d = buf */
    SGD__SGD_MOM = 2,        /* buf = mom*buf + (1-damp)*d; d = buf */
    SGD__SGD_NEST_FIRST = 3, /* buf = d; d = d + mom*buf */
    SGD__SGD_NEST = 4        /* buf = mom*buf + (1-damp)*d; d = d + mom*buf */
};

/* Sums a segment-local reduction: what LAMB, LARS and the learning-rate-free methods need. */
typedef struct sgd__knorms {
    double a, b, c, d;
} sgd__knorms;

typedef struct sgd__ktab {
    const char *level; /* "generic", "avx2", "avx512" */
    void (*scan)(const float *g, size_t n, float clip_value, sgd__gradstat *out);
    size_t (*scan_exact)(const float *g, size_t n, float clip_value, sgd__gradstat *out);
    /* clip_buf[i] = clamp(g[i], -cv, cv) * gs (hosts without SGD_OPTIM_FUSED_CLIP) */
    void (*clip_copy)(float *out, const float *g, size_t n, const sgd__kargs *k);
    /* c0 momentum, c1 1 - dampening */
    void (*sgd)(int mode, float *p, const float *g, float *buf, size_t n, const sgd__kargs *k);
    /* lr: the decayed rate; c0 eps */
    void (*adagrad)(float *p, const float *g, float *sum, size_t n, const sgd__kargs *k);
    /* c0 alpha, c1 1 - alpha, c2 eps, c3 momentum; ga NULL unless centered, buf NULL unless momentum > 0 */
    void (*rmsprop)(float *p, const float *g, float *sq, float *ga, float *buf, size_t n, const sgd__kargs *k);
    /*
     * c0 beta1, c1 1 - beta1, c2 beta2, c3 1 - beta2, c4 step size lr / (1 - beta1^t),
     * c5 1 / sqrt(1 - beta2^t), c6 eps; vmax NULL unless amsgrad
     */
    void (*adam)(float *p, const float *g, float *m, float *v, float *vmax, size_t n, const sgd__kargs *k);
    /* c0 beta1, c1 1 - beta1, c2 beta2, c3 eps, c4 lr / (1 - beta1^t) */
    void (*adamax)(float *p, const float *g, float *m, float *u, size_t n, const sgd__kargs *k);
    /*
     * c0 beta1, c1 1 - beta1, c2 beta2, c3 1 - beta2, c4 1 / (1 - beta2^t), c5 eps,
     * c6 lr (1 - mu) / (1 - mu_product), c7 lr mu_next / (1 - mu_product mu mu_next) (torch 1.13)
     */
    void (*nadam)(float *p, const float *g, float *m, float *v, size_t n, const sgd__kargs *k);
    /*
     * c0 beta1, c1 1 - beta1, c2 beta2, c3 1 - beta2, c4 eps, c5 the step's coefficient of m
     * (rectified: lr rect sqrt(1 - beta2^t) / (1 - beta1^t), divided by sqrt(v) + eps;
     * not: lr / (1 - beta1^t), no division), c6 1 if rectified
     */
    void (*radam)(float *p, const float *g, float *m, float *v, size_t n, const sgd__kargs *k);
    /* c0 rho, c1 1 - rho, c2 eps */
    void (*adadelta)(float *p, const float *g, float *sq, float *acc, size_t n, const sgd__kargs *k);
    /* c0 eta_minus, c1 eta_plus, c2 step_size_min, c3 step_size_max, c4 1 at the first step (sizes start at lr) */
    void (*rprop)(float *p, const float *g, float *prev, float *size, size_t n, const sgd__kargs *k);
    /* decay 1 - lambd eta, c0 eta, c1 mu, c2 1 if mu == 1 (ax = p) */
    void (*asgd)(float *p, const float *g, float *ax, size_t n, const sgd__kargs *k);
    /* c0 beta1, c1 1 - beta1, c2 beta2, c3 1 - beta2; decay 1 - lr wd */
    void (*lion)(float *p, const float *g, float *m, size_t n, const sgd__kargs *k);
    /*
     * LAMB, pass 1: updates m and v, returns a = sum p^2, b = sum u^2 with
     * u = mhat / (sqrt(vhat) + eps) + wd p. c0 beta1, c1 1 - beta1, c2 beta2,
     * c3 1 - beta2, c4 1 / (1 - beta1^t), c5 1 / sqrt(1 - beta2^t), c6 eps, c7 wd (decoupled).
     */
    void (*lamb_moments)(const float *p, const float *g, float *m, float *v, size_t n, const sgd__kargs *k,
                         sgd__knorms *out);
    /* LAMB, pass 2: p -= lr * u (lr: the step's rate times the trust ratio), u as above from m and v. */
    void (*lamb_apply)(float *p, const float *m, const float *v, size_t n, const sgd__kargs *k);
    /* a = sum p^2, b = sum clipg(g)^2 (no L2 term) */
    void (*norms_pg)(const float *p, const float *g, size_t n, const sgd__kargs *k, sgd__knorms *out);
    /* LARS: buf = c0 buf + lr (d), p -= buf; c0 momentum; first: buf = lr d */
    void (*lars)(int first, float *p, const float *g, float *buf, size_t n, const sgd__kargs *k);
    /*
     * DoG, pass 1: with first, x0 = p first. a = sum p^2, b = sum (p - x0)^2,
     * c = sum d^2 (d with its L2 term).
     */
    void (*dog_sums)(int first, const float *p, const float *g, float *x0, size_t n, const sgd__kargs *k,
                     sgd__knorms *out);
    /*
     * Prodigy, pass 1: with first, p0 = p first. a = sum d (p0 - p);
     * m = c0 m + c1 d; v = c2 v + c3 d^2; s = c4 s + c5 d; b = sum |s|.
     * m is NULL when beta1 = 0.
     */
    void (*prodigy_acc)(int first, const float *p, const float *g, float *p0, float *s, float *m, float *v,
                        size_t n, const sgd__kargs *k, sgd__knorms *out);
    /*
     * Prodigy, pass 2: denom = sqrt(v) + c0; d = clipg(g) + wd p (before the
     * decay); p = p decay - c1 (m or d) / denom, m when m != NULL.
     */
    void (*prodigy_apply)(float *p, const float *g, const float *m, const float *v, size_t n, const sgd__kargs *k);
    /*
     * D-Adapt Adam, pass 1: a = sum d s / (sqrt(v) + c6) (old s, v);
     * m = c0 m + c1 d; v = c2 v + c3 d^2; s = c4 s + c5 d; b = sum |s|.
     */
    void (*dadam_acc)(const float *p, const float *g, float *s, float *m, float *v, size_t n, const sgd__kargs *k,
                      sgd__knorms *out);
    /* D-Adapt Adam, pass 2: p = p decay - m / (sqrt(v) + c6). */
    void (*dadam_apply)(float *p, const float *m, const float *v, size_t n, const sgd__kargs *k);
    /*
     * D-Adapt SGD, pass 1: with first, x0 = p first. a = sum d s (old s);
     * s = s + c0 d; b = sum s^2.
     */
    void (*dsgd_acc)(int first, const float *p, const float *g, float *s, float *x0, size_t n, const sgd__kargs *k,
                     sgd__knorms *out);
    /* D-Adapt SGD, pass 2: p = c0 p + c1 (x0 - s). */
    void (*dsgd_apply)(float *p, const float *s, const float *x0, size_t n, const sgd__kargs *k);
    /*
     * Schedule-free SGD: with first, z = p first. y = lerp(y, z, c0);
     * y = y + c1 d; z = z - lr d. c2: 1 if |c0| < 0.5 (torch's lerp formula).
     */
    void (*sf_sgd)(int first, float *p, const float *g, float *z, size_t n, const sgd__kargs *k);
    /*
     * Schedule-free AdamW: with first, z = p first. v = c3 v + c4 g^2;
     * u = g / (sqrt(v c5) + c6) + c7 y; y = lerp(y, z, c0); y = y + c1 u;
     * z = z - lr u. c2 as in sf_sgd.
     */
    void (*sf_adamw)(int first, float *p, const float *g, float *z, float *v, size_t n, const sgd__kargs *k);
    /* p = lerp(p, z, c0) (c2 as in sf_sgd): the schedule-free evaluation swap. */
    void (*lerp_to)(float *p, const float *z, size_t n, const sgd__kargs *k);
} sgd__ktab;

extern const sgd__ktab sgd__ktab_generic;
#if defined(SGD_HAVE_KERNELS_AVX2)
extern const sgd__ktab sgd__ktab_avx2;
#endif
#if defined(SGD_HAVE_KERNELS_AVX512)
extern const sgd__ktab sgd__ktab_avx512;
#endif

/* The table this process uses, chosen at the first call (dispatch.c). */
const sgd__ktab *sgd__kern(void);

/* For the tests: makes every later step use table `t` (one of sgd__kern_runnable()'s). */
void sgd__kern_use(const sgd__ktab *t);

/*
 * The tables built into this library that this CPU can run, best last,
 * into `out` (capacity 3); returns how many. For the tests.
 */
size_t sgd__kern_runnable(const sgd__ktab **out);

/* The scan through the chosen table (the trainer and the bench use these). */
void sgd__grad_scan(const float *g, size_t n, float clip_value, sgd__gradstat *out);
size_t sgd__grad_scan_exact(const float *g, size_t n, float clip_value, sgd__gradstat *out);

#endif /* SGDLAB_OPTIM_KERNELS_H */
