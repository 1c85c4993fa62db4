/*
 * The LR range test: an exponential (or linear) ramp of the learning rate
 * over the real model and data, a debiased EMA of the loss, a stop rule, and
 * suggestions computed on a centered local-linear smoothing of the curve.
 * SPDX-License-Identifier: MIT
 */
#include "trainer/trainer_internal.h"
#include "core/abi.h"

#include "sgdlab/tune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STEPS ((int64_t)1 << 24)
#define MIN_STEPS 8
/* Fewer finite points than this: no suggestion at all. */
#define MIN_POINTS 8

struct sgd_lrfind {
    sgd_allocator alloc;
    size_t count; /* points recorded */
    size_t used;  /* finite prefix the suggestions use */
    size_t planned; /* steps planned */
    double *lr, *loss, *smoothed, *fit, *slope;
    int32_t end;
    int32_t have[SGD_LRFIND_METHOD_COUNT];
    double sug_lr[SGD_LRFIND_METHOD_COUNT];
    size_t sug_idx[SGD_LRFIND_METHOD_COUNT];
    char why[SGD_LRFIND_METHOD_COUNT][320];
};

static const char *const method_names[SGD_LRFIND_METHOD_COUNT] = {"steepest", "minimum", "valley"};

const char *sgd_lrfind_method_name(int32_t method)
{
    if (method < 0 || method >= SGD_LRFIND_METHOD_COUNT)
        return "unknown";
    return method_names[method];
}

int32_t sgd_lrfind_default_method(void)
{
    return SGD_LRFIND_STEEPEST;
}

void sgd_lrfind_options_init(sgd_lrfind_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->ramp = SGD_LRFIND_EXPONENTIAL;
    o->lr_min = 1e-7;
    o->lr_max = 10;
    o->steps = 100;
    o->batch_size = 128;
    o->seed = 0;
    o->beta = 0.98;
    o->stop_factor = 4;
    o->shuffle = 1;
}

/* What the recording of a curve uses: the moving average and the stop rule. */
static sgd_status check_curve_options(const sgd_lrfind_options *o, const char *fn)
{
    if (!(o->beta >= 0 && o->beta < 1))
        return sgd__err(SGD_ERANGE, "%s: beta=%g: must be in [0, 1)", fn, o->beta);
    if (!(o->stop_factor == 0 || (o->stop_factor > 1 && isfinite(o->stop_factor))))
        return sgd__err(SGD_ERANGE, "%s: stop_factor=%g: must be 0 (never stop) or finite and > 1", fn,
                        o->stop_factor);
    return SGD_OK;
}

static sgd_status check_options(const sgd_lrfind_options *o, const char *fn)
{
    if (o->ramp != SGD_LRFIND_EXPONENTIAL && o->ramp != SGD_LRFIND_LINEAR)
        return sgd__err(SGD_EINVAL, "%s: ramp=%d: must be 0 (exponential) or 1 (linear)", fn, (int)o->ramp);
    if (!(o->lr_min > 0 && isfinite(o->lr_min)))
        return sgd__err(SGD_ERANGE, "%s: lr_min=%g: must be finite and > 0", fn, o->lr_min);
    if (!(o->lr_max > o->lr_min && isfinite(o->lr_max)))
        return sgd__err(SGD_ERANGE, "%s: lr_max=%g: must be finite and > lr_min=%g", fn, o->lr_max, o->lr_min);
    if (o->steps < MIN_STEPS || o->steps > MAX_STEPS)
        return sgd__err(SGD_ERANGE, "%s: steps=%lld: must be in [%d, %lld]", fn, (long long)o->steps, MIN_STEPS,
                        (long long)MAX_STEPS);
    if (o->batch_size < 1 || o->batch_size > SGD_MODEL_MAX_BATCH)
        return sgd__err(SGD_ERANGE, "%s: batch_size=%lld: must be in [1, %lld]", fn, (long long)o->batch_size,
                        (long long)SGD_MODEL_MAX_BATCH);
    return check_curve_options(o, fn);
}

/* The allocator and the options of a call: copied, checked (all of them, or those of a curve). */
static sgd_status setup(const sgd_allocator *alloc, const sgd_lrfind_options *opts, bool whole, sgd_allocator *al,
                        sgd_lrfind_options *o, const char *fn)
{
    sgd_status st = sgd__allocator_init(al, alloc, fn);
    if (st != SGD_OK)
        return st;
    sgd_lrfind_options_init(o);
    if ((st = sgd__options_copy(o, sizeof *o, opts, SGD__FIRST(sgd_lrfind_options), fn, "opts")) != SGD_OK)
        return st;
    return whole ? check_options(o, fn) : check_curve_options(o, fn);
}

void sgd_lrfind_free(sgd_lrfind *r)
{
    if (r == NULL)
        return;
    const sgd_allocator *a = &r->alloc;
    sgd__free(a, r->lr);
    sgd__free(a, r->loss);
    sgd__free(a, r->smoothed);
    sgd__free(a, r->fit);
    sgd__free(a, r->slope);
    sgd__free(a, r);
}

/* ------------------------------------------------------------ analysis */

/*
 * Least-squares line through (x[j], y[j]) for j in [lo, hi]: value at x[i]
 * and slope. Centered on x's mean for accuracy.
 */
static void local_fit(const double *x, const double *y, size_t lo, size_t hi, size_t i, double *value,
                      double *slope)
{
    double n = (double)(hi - lo + 1), mx = 0, my = 0;
    for (size_t j = lo; j <= hi; j++) {
        mx += x[j];
        my += y[j];
    }
    mx /= n;
    my /= n;
    double sxx = 0, sxy = 0;
    for (size_t j = lo; j <= hi; j++) {
        sxx += (x[j] - mx) * (x[j] - mx);
        sxy += (x[j] - mx) * (y[j] - my);
    }
    double b = sxx > 0 ? sxy / sxx : 0;
    *slope = b;
    *value = my + b * (x[i] - mx);
}

/*
 * Longest strictly decreasing subsequence of v[0..n-1] (patience sorting on
 * -v, O(n log n)): its first and last indices. tails and prev are scratch of
 * n entries each.
 */
static void longest_decreasing(const double *v, size_t n, size_t *tails, size_t *prev, size_t *first,
                               size_t *last)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        /* First pile whose top is <= v[i] (i.e. -top >= -v[i]): replace it. */
        size_t lo = 0, hi = len;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (v[tails[mid]] > v[i])
                lo = mid + 1;
            else
                hi = mid;
        }
        prev[i] = lo > 0 ? tails[lo - 1] : SIZE_MAX;
        tails[lo] = i;
        if (lo == len)
            len++;
    }
    size_t k = tails[len - 1];
    *last = k;
    while (prev[k] != SIZE_MAX)
        k = prev[k];
    *first = k;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of v[0..n-1] (n >= 1), reordering v. */
static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static sgd_status analyse(sgd_lrfind *r, const char *fn)
{
    size_t m = r->used;
    for (int k = 0; k < SGD_LRFIND_METHOD_COUNT; k++)
        r->have[k] = 0;
    for (size_t i = 0; i < r->count; i++) {
        r->fit[i] = NAN;
        r->slope[i] = NAN;
    }
    if (m < MIN_POINTS) {
        for (int k = 0; k < SGD_LRFIND_METHOD_COUNT; k++)
            snprintf(r->why[k], sizeof r->why[k],
                     "only %zu finite point%s before the test ended (at least %d are needed): lower lr_max or "
                     "raise the number of steps",
                     m, m == 1 ? "" : "s", MIN_POINTS);
        return SGD_OK;
    }
    double *x = sgd__calloc(&r->alloc, m, sizeof *x);
    size_t *tails = sgd__calloc(&r->alloc, m, sizeof *tails);
    size_t *prev = sgd__calloc(&r->alloc, m, sizeof *prev);
    if (x == NULL || tails == NULL || prev == NULL) {
        sgd__free(&r->alloc, x);
        sgd__free(&r->alloc, tails);
        sgd__free(&r->alloc, prev);
        return sgd__err(SGD_ENOMEM, "%s: out of memory for the analysis of %zu points", fn, m);
    }
    for (size_t i = 0; i < m; i++)
        x[i] = log10(r->lr[i]);
    /* Half-width of the window, in points: about 4% of the curve each side, at least 3. */
    size_t k = (m + 12) / 25;
    if (k < 3)
        k = 3;
    for (size_t i = 0; i < m; i++) {
        size_t lo = i >= k ? i - k : 0, hi = i + k < m ? i + k : m - 1;
        double v, b;
        local_fit(x, r->loss, lo, hi, i, &v, &b);
        if (i >= k && i + k < m) {
            r->fit[i] = v;
            r->slope[i] = b;
        } else {
            /* A truncated window: a local mean, since extrapolating a line there is noisy. */
            double sum = 0;
            for (size_t j = lo; j <= hi; j++)
                sum += r->loss[j];
            r->fit[i] = sum / (double)(hi - lo + 1);
        }
    }
    /* The minimum of the smoothed curve, and whether the loss fell at all. */
    size_t imin = 0;
    for (size_t i = 1; i < m; i++)
        if (r->fit[i] < r->fit[imin])
            imin = i;
    /*
     * A descent must be real: larger than 4 standard errors of the smoothed
     * loss (whose minimum over the curve is an extreme of noisy values) and
     * than 2% of the starting level.
     */
    for (size_t i = 0; i <= imin; i++) /* the scratch x is free again: the residuals' magnitudes */
        x[i] = fabs(r->loss[i] - r->fit[i]);
    double sigma = 1.4826 * median(x, imin + 1); /* robust: spikes do not inflate it */
    double se = sigma * sqrt(2.0 / (double)(2 * k + 1));
    double drop = r->fit[0] - r->fit[imin];
    if (imin == 0 || !(drop > 4 * se) || !(drop > 0.02 * fabs(r->fit[0]))) {
        for (int j = 0; j < SGD_LRFIND_METHOD_COUNT; j++)
            snprintf(r->why[j], sizeof r->why[j],
                     "the loss did not fall (smoothed from %.4g to at best %.4g, noise %.3g) between lr %.3g and "
                     "%.3g: raise lr_max, or the number of steps",
                     r->fit[0], r->fit[imin], se, r->lr[0], r->lr[m - 1]);
        goto done;
    }
    /* minimum / 10 */
    r->have[SGD_LRFIND_MINIMUM] = 1;
    r->sug_lr[SGD_LRFIND_MINIMUM] = r->lr[imin] / 10;
    r->sug_idx[SGD_LRFIND_MINIMUM] = imin;
    /* steepest descent against log lr, before the minimum */
    size_t best = SIZE_MAX;
    for (size_t i = k; i <= imin && i + k < m; i++)
        if (r->slope[i] < 0 && (best == SIZE_MAX || r->slope[i] < r->slope[best]))
            best = i;
    if (best != SIZE_MAX) {
        r->have[SGD_LRFIND_STEEPEST] = 1;
        r->sug_lr[SGD_LRFIND_STEEPEST] = r->lr[best];
        r->sug_idx[SGD_LRFIND_STEEPEST] = best;
    } else {
        snprintf(r->why[SGD_LRFIND_STEEPEST], sizeof r->why[SGD_LRFIND_STEEPEST],
                 "the descent (points 0 to %zu, lr %.3g to %.3g) is too short to measure a slope over %zu points: "
                 "start lower (lr_min) or take more steps",
                 imin, r->lr[0], r->lr[imin], 2 * k + 1);
    }
    /*
     * fastai's valley, as fastai computes it: on the moving average, without
     * the first tenth of the planned steps and the last 5 points.
     */
    size_t vlo = r->planned / 10, vhi = m > 5 ? m - 5 : 0;
    if (vhi > vlo + 1) {
        size_t first, last;
        longest_decreasing(r->smoothed + vlo, vhi - vlo, tails, prev, &first, &last);
        first += vlo;
        last += vlo;
        if (last > first) {
            size_t len = last - first;
            size_t idx = first + len / 3 + len / 6;
            r->have[SGD_LRFIND_VALLEY] = 1;
            r->sug_lr[SGD_LRFIND_VALLEY] = r->lr[idx];
            r->sug_idx[SGD_LRFIND_VALLEY] = idx;
        } else {
            snprintf(r->why[SGD_LRFIND_VALLEY], sizeof r->why[SGD_LRFIND_VALLEY],
                     "the moving average never decreases from one point to a later one");
        }
    } else {
        snprintf(r->why[SGD_LRFIND_VALLEY], sizeof r->why[SGD_LRFIND_VALLEY],
                 "too few points between the first tenth of the steps and the last 5 (%zu finite points)", m);
    }
done:
    sgd__free(&r->alloc, x);
    sgd__free(&r->alloc, tails);
    sgd__free(&r->alloc, prev);
    return SGD_OK;
}

/* ------------------------------------------------------------ recording */

/* The moving average and the stop rule, shared by the test and by the analysis of a given curve. */
typedef struct recorder {
    double avg, best, bpow, beta, stop_factor;
} recorder;

static void recorder_init(recorder *rc, const sgd_lrfind_options *o)
{
    rc->avg = 0;
    rc->best = INFINITY;
    rc->bpow = 1;
    rc->beta = o->beta;
    rc->stop_factor = o->stop_factor;
}

/*
 * Records point (lr, loss). Returns 1 to go on; 0 when the moving average is above stop_factor
 * times its best (the test ends after this point); -1 for a non-finite loss (it ends here).
 */
static int record(sgd_lrfind *r, recorder *rc, double lr, double loss)
{
    size_t at = r->count++;
    r->lr[at] = lr;
    r->loss[at] = loss;
    if (!isfinite(loss)) {
        r->smoothed[at] = NAN;
        return -1;
    }
    rc->avg = rc->beta * rc->avg + (1 - rc->beta) * loss;
    rc->bpow *= rc->beta;
    double sm = rc->avg / (1 - rc->bpow);
    r->smoothed[at] = sm;
    if (at > 0 && rc->stop_factor > 0 && sm > rc->stop_factor * rc->best)
        return 0;
    if (sm < rc->best)
        rc->best = sm;
    return 1;
}

static sgd_lrfind *result_new(const sgd_allocator *al, size_t cap, const char *fn, sgd_status *st)
{
    sgd_lrfind *r = sgd__malloc(al, sizeof *r);
    if (r == NULL) {
        *st = sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
        return NULL;
    }
    memset(r, 0, sizeof *r);
    r->alloc = *al;
    if ((r->lr = sgd__calloc(al, cap, sizeof(double))) == NULL ||
        (r->loss = sgd__calloc(al, cap, sizeof(double))) == NULL ||
        (r->smoothed = sgd__calloc(al, cap, sizeof(double))) == NULL ||
        (r->fit = sgd__calloc(al, cap, sizeof(double))) == NULL ||
        (r->slope = sgd__calloc(al, cap, sizeof(double))) == NULL) {
        sgd_lrfind_free(r);
        *st = sgd__err(SGD_ENOMEM, "%s: out of memory for a curve of %zu points", fn, cap);
        return NULL;
    }
    *st = SGD_OK;
    return r;
}

/* The end of a test or of a given curve: the finite prefix is analysed; *out gets the result. */
static sgd_status conclude(sgd_lrfind *r, size_t planned, sgd_lrfind **out, const char *fn)
{
    r->planned = planned;
    r->used = 0;
    while (r->used < r->count && isfinite(r->loss[r->used]))
        r->used++;
    sgd_status st = analyse(r, fn);
    if (st != SGD_OK) {
        sgd_lrfind_free(r);
        return st;
    }
    *out = r;
    return SGD_OK;
}

/* ------------------------------------------------------------ the test */

typedef struct saved {
    float *params;
    unsigned char *ostate;
    size_t *obytes;
    size_t nstate;
    uint64_t rng[4];
} saved;

static void saved_free(const sgd_allocator *a, saved *s)
{
    sgd__free(a, s->params);
    sgd__free(a, s->ostate);
    sgd__free(a, s->obytes);
}

static sgd_status save_state(const sgd_allocator *a, sgd_model *m, sgd_optim *o, saved *s, const char *fn)
{
    memset(s, 0, sizeof *s);
    size_t n = sgd_model_num_params(m), total = 0;
    s->nstate = sgd_optim_state_count(o);
    if ((s->obytes = sgd__calloc(a, s->nstate + 1, sizeof *s->obytes)) == NULL)
        goto nomem;
    for (size_t i = 0; i < s->nstate; i++) {
        int32_t type;
        size_t len, bytes;
        sgd_status st = sgd_optim_state_describe(o, i, NULL, &type, &len);
        if (st != SGD_OK) {
            saved_free(a, s);
            return st;
        }
        if (!sgd__mul_size(len, type == SGD_STATE_F32 ? 4 : 8, &bytes) || !sgd__add_size(total, bytes, &total)) {
            saved_free(a, s);
            return sgd__err(SGD_EOVERFLOW, "%s: the optimizer's state does not fit in memory", fn);
        }
        s->obytes[i] = bytes;
    }
    if ((s->params = sgd__calloc(a, n, sizeof(float))) == NULL || (s->ostate = sgd__malloc(a, total)) == NULL)
        goto nomem;
    memcpy(s->params, sgd_model_params(m), n * sizeof(float));
    size_t off = 0;
    for (size_t i = 0; i < s->nstate; i++) {
        sgd_status st = sgd_optim_state_export(o, i, s->ostate + off, s->obytes[i]);
        if (st != SGD_OK) {
            saved_free(a, s);
            return st;
        }
        off += s->obytes[i];
    }
    sgd_status st = sgd_model_get_rng_state(m, s->rng);
    if (st != SGD_OK) {
        saved_free(a, s);
        return st;
    }
    return SGD_OK;
nomem:
    saved_free(a, s);
    return sgd__err(SGD_ENOMEM, "%s: out of memory for a copy of the model and optimizer state", fn);
}

/* Puts everything back; cannot fail for a state this library exported (the first failure is returned). */
static sgd_status restore_state(sgd_model *m, sgd_optim *o, const saved *s)
{
    size_t n = sgd_model_num_params(m);
    memcpy(sgd_model_params(m), s->params, n * sizeof(float));
    sgd_status first = sgd_model_zero_grad(m);
    size_t off = 0;
    for (size_t i = 0; i < s->nstate; i++) {
        sgd_status st = sgd_optim_state_import(o, i, s->ostate + off, s->obytes[i]);
        if (st != SGD_OK && first == SGD_OK)
            first = st;
        off += s->obytes[i];
    }
    sgd_status st = sgd_model_set_rng_state(m, s->rng);
    if (st != SGD_OK && first == SGD_OK)
        first = st;
    return first;
}

static double ramp_lr(const sgd_lrfind_options *o, int64_t i)
{
    double f = (double)i / (double)(o->steps - 1);
    if (o->ramp == SGD_LRFIND_LINEAR)
        return o->lr_min + (o->lr_max - o->lr_min) * f;
    return o->lr_min * pow(o->lr_max / o->lr_min, f);
}

sgd_status sgd_lrfind_run(sgd_lrfind **out, sgd_model *model, sgd_optim *optim, const sgd_dataset *train,
                          const sgd_lrfind_options *opts, const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_lrfind_run";
    if (out != NULL)
        *out = NULL;
    if (out == NULL || model == NULL || optim == NULL || train == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn,
                        out == NULL ? "out" : model == NULL ? "model" : optim == NULL ? "optim" : "train");
    sgd_allocator al;
    sgd_lrfind_options o;
    sgd_status st = setup(alloc, opts, true, &al, &o, fn);
    if (st != SGD_OK)
        return st;
    size_t n = sgd_model_num_params(model);
    if (n == 0)
        return sgd__err(SGD_EINVAL, "%s: the model is not built (call sgd_model_build() first)", fn);
    if (sgd_optim_size(optim) != n)
        return sgd__err(SGD_ESHAPE, "%s: the optimizer updates %zu parameters but the model has %zu", fn,
                        sgd_optim_size(optim), n);
    if ((st = sgd__check_dataset_fits(model, train, fn, "train")) != SGD_OK)
        return st;

    size_t cap = (size_t)o.steps;
    sgd_lrfind *r = result_new(&al, cap, fn, &st);
    if (r == NULL)
        return st;
    sgd_loader_options lo;
    sgd_loader_options_init(&lo);
    lo.shuffle = o.shuffle;
    lo.seed = o.seed;
    sgd_loader *loader = NULL;
    if ((st = sgd_loader_new(&loader, train, o.batch_size, &lo)) != SGD_OK) {
        sgd_lrfind_free(r);
        return st;
    }
    saved sv;
    if ((st = save_state(&al, model, optim, &sv, fn)) != SGD_OK) {
        sgd_loader_free(loader);
        sgd_lrfind_free(r);
        return st;
    }
    if (sgd_model_max_batch(model) < o.batch_size && (st = sgd_model_reserve(model, o.batch_size)) != SGD_OK) {
        saved_free(&al, &sv);
        sgd_loader_free(loader);
        sgd_lrfind_free(r);
        return st;
    }

    float *params = sgd_model_params(model), *grads = sgd_model_grads(model);
    recorder rc;
    recorder_init(&rc, &o);
    r->end = SGD_LRFIND_COMPLETED;
    for (int64_t i = 0; i < o.steps; i++) {
        sgd_batch b;
        if ((st = sgd_loader_next(loader, &b)) != SGD_OK)
            break;
        if (b.size == 0 && (st = sgd_loader_next(loader, &b)) != SGD_OK) /* the end-of-epoch marker */
            break;
        /* A recurrent model's carried state starts every pass over the streams from zero, as in the trainer. */
        if (b.index == 0 && (st = sgd_model_reset_state(model)) != SGD_OK)
            break;
        double lr = ramp_lr(&o, i), loss;
        if ((st = sgd_model_zero_grad(model)) != SGD_OK ||
            (st = sgd_model_forward_backward(model, b.x, b.labels, b.targets, b.size, &loss)) != SGD_OK) {
            sgd__err_prefix("%s: step %lld (lr %g)", fn, (long long)i, lr);
            break;
        }
        /* The stop rule ends the test after this point's step. */
        int go_on = record(r, &rc, lr, loss);
        if (go_on < 0) {
            r->end = SGD_LRFIND_NONFINITE;
            break;
        }
        sgd_optim_step_info info;
        sgd_optim_step_info_init(&info);
        sgd_status ost = sgd_optim_step(optim, params, grads, lr, &info);
        if (ost == SGD_ENONFINITE || ost == SGD_EDIVERGED || (ost == SGD_OK && info.nonfinite)) {
            r->end = SGD_LRFIND_NONFINITE;
            break;
        }
        if (ost != SGD_OK) {
            st = ost;
            sgd__err_prefix("%s: step %lld (lr %g)", fn, (long long)i, lr);
            break;
        }
        if (o.progress != NULL && o.progress(i + 1, o.steps, lr, loss, o.progress_user) != 0) {
            st = sgd__err(SGD_ECANCELED, "%s: the progress callback asked to stop at step %lld", fn, (long long)i);
            break;
        }
        if (go_on == 0) {
            r->end = SGD_LRFIND_DIVERGED;
            break;
        }
    }
    sgd_status rst = restore_state(model, optim, &sv);
    saved_free(&al, &sv);
    sgd_loader_free(loader);
    if (st == SGD_OK && rst != SGD_OK)
        st = rst;
    if (st != SGD_OK) {
        sgd_lrfind_free(r);
        return st;
    }
    return conclude(r, cap, out, fn);
}

/* ------------------------------------------------------------ a curve measured elsewhere */

sgd_status sgd_lrfind_analyze(sgd_lrfind **out, const double *lr, const double *loss, size_t n,
                              const sgd_lrfind_options *opts, const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_lrfind_analyze";
    if (out != NULL)
        *out = NULL;
    if (out == NULL || lr == NULL || loss == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, out == NULL ? "out" : lr == NULL ? "lr" : "loss");
    if (n == 0 || n > (size_t)MAX_STEPS)
        return sgd__err(SGD_EINVAL, "%s: n=%zu: the curve must have 1 to %lld points", fn, n, (long long)MAX_STEPS);
    sgd_allocator al;
    sgd_lrfind_options o;
    sgd_status st = setup(alloc, opts, false, &al, &o, fn);
    if (st != SGD_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        if (!(lr[i] > 0 && isfinite(lr[i])))
            return sgd__err(SGD_EINVAL, "%s: lr[%zu]=%g: learning rates must be finite and > 0", fn, i, lr[i]);
        if (i > 0 && !(lr[i] > lr[i - 1]))
            return sgd__err(SGD_EINVAL, "%s: lr[%zu]=%g after lr[%zu]=%g: a range test's learning rates increase", fn,
                            i, lr[i], i - 1, lr[i - 1]);
    }
    sgd_lrfind *r = result_new(&al, n, fn, &st);
    if (r == NULL)
        return st;
    recorder rc;
    recorder_init(&rc, &o);
    r->end = SGD_LRFIND_COMPLETED;
    for (size_t i = 0; i < n; i++) {
        int go_on = record(r, &rc, lr[i], loss[i]);
        if (go_on < 0) {
            r->end = SGD_LRFIND_NONFINITE;
            break;
        }
        if (go_on == 0) {
            r->end = SGD_LRFIND_DIVERGED;
            break;
        }
    }
    /* fastai's valley skips the first tenth of the steps the test planned: o.steps when the
       caller says so (at least the points given), else the points given. */
    return conclude(r, o.steps >= (int64_t)n ? (size_t)o.steps : n, out, fn);
}

/* ------------------------------------------------------------ queries */

size_t sgd_lrfind_count(const sgd_lrfind *r)
{
    return r ? r->count : 0;
}

int32_t sgd_lrfind_end_reason(const sgd_lrfind *r)
{
    return r ? r->end : -1;
}

sgd_status sgd_lrfind_point(const sgd_lrfind *r, size_t i, sgd_lrfind_sample *out)
{
    static const char fn[] = "sgd_lrfind_point";
    if (r == NULL || out == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, r == NULL ? "result" : "out");
    if (i >= r->count)
        return sgd__err(SGD_EINVAL, "%s: i=%zu: the curve has %zu points", fn, i, r->count);
    sgd_lrfind_sample s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.used = i < r->used ? 1 : 0;
    s.lr = r->lr[i];
    s.loss = r->loss[i];
    s.smoothed = r->smoothed[i];
    s.fit = i < r->used ? r->fit[i] : NAN;
    s.slope = i < r->used ? r->slope[i] : NAN;
    return SGD__FILL(out, &s, sgd_lrfind_sample, fn, "out");
}

sgd_status sgd_lrfind_curve(const sgd_lrfind *r, double *lr, double *loss, double *smoothed, size_t n)
{
    if (r == NULL)
        return sgd__err(SGD_EINVAL, "sgd_lrfind_curve: result is NULL");
    if (n < r->count)
        return sgd__err(SGD_ESHAPE, "sgd_lrfind_curve: n=%zu: the curve has %zu points", n, r->count);
    for (size_t i = 0; i < r->count; i++) {
        if (lr != NULL)
            lr[i] = r->lr[i];
        if (loss != NULL)
            loss[i] = r->loss[i];
        if (smoothed != NULL)
            smoothed[i] = r->smoothed[i];
    }
    return SGD_OK;
}

sgd_status sgd_lrfind_suggestion(const sgd_lrfind *r, int32_t method, double *lr, size_t *index)
{
    static const char fn[] = "sgd_lrfind_suggestion";
    if (r == NULL || lr == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, r == NULL ? "result" : "lr");
    if (method < 0 || method >= SGD_LRFIND_METHOD_COUNT)
        return sgd__err(SGD_EINVAL, "%s: method=%d: must be 0 (steepest), 1 (minimum) or 2 (valley)", fn, (int)method);
    if (!r->have[method])
        return sgd__err(SGD_ENOTFOUND, "%s: no %s suggestion: %s", fn, method_names[method], r->why[method]);
    *lr = r->sug_lr[method];
    if (index != NULL)
        *index = r->sug_idx[method];
    return SGD_OK;
}
