/*
 * Forward and backward passes, losses, evaluation. Nothing here allocates:
 * every buffer was laid out when the model was built (or reserved).
 * SPDX-License-Identifier: MIT
 */
#include "model/model_internal.h"
#include "model/kernels.h"

#include "sgd_config.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

/* ---------------------------------------------------------------- BLAS threads */

/*
 * A model runs its matrix products with m->blas_threads BLAS threads (see
 * model.h). OpenBLAS 0.3.27 and later have a thread-local count,
 * openblas_set_num_threads_local(), which changes nothing for other threads:
 * it is used when the library finds it at run time (a weak reference). Older
 * versions (Debian 12 has 0.3.21) have only the process-wide count: the first
 * of the model calls in progress saves the host's count and sets the model's,
 * and the last one to return restores it, under a lock, so that models used
 * from several threads at once never restore the count under each other's
 * feet. This lock and the two integers it guards mirror OpenBLAS's own global
 * setting; they are the only library-wide state besides error messages.
 */
#if SGD_HAVE_OPENBLAS
#if defined(__GNUC__) && defined(__ELF__)
extern int openblas_set_num_threads_local(int num_threads) __attribute__((weak));
#define SGD__HAVE_LOCAL_THREADS_REF 1
#endif
static pthread_mutex_t sgd__blas_lock = PTHREAD_MUTEX_INITIALIZER;
static int sgd__blas_active; /* model calls in progress that set the process-wide count */
static int sgd__blas_saved;  /* the count before the first of them */
#endif

enum { SGD__BLAS_UNTOUCHED = 0, SGD__BLAS_LOCAL = 1, SGD__BLAS_GLOBAL = 2 };

typedef struct blas_guard {
    int mode;
    int prev; /* SGD__BLAS_LOCAL: this thread's previous count */
} blas_guard;

static void blas_enter(const sgd_model *m, blas_guard *g)
{
    g->mode = SGD__BLAS_UNTOUCHED;
    g->prev = 0;
#if SGD_HAVE_OPENBLAS
    int n = m->blas_threads;
    if (n <= 0)
        return;
#if defined(SGD__HAVE_LOCAL_THREADS_REF)
    if (openblas_set_num_threads_local != NULL) {
        g->prev = openblas_set_num_threads_local(n);
        g->mode = SGD__BLAS_LOCAL;
        return;
    }
#endif
    pthread_mutex_lock(&sgd__blas_lock);
    if (sgd__blas_active++ == 0) {
        sgd__blas_saved = openblas_get_num_threads();
        if (sgd__blas_saved != n)
            openblas_set_num_threads(n);
    }
    pthread_mutex_unlock(&sgd__blas_lock);
    g->mode = SGD__BLAS_GLOBAL;
#else
    (void)m;
#endif
}

static void blas_leave(blas_guard *g)
{
#if SGD_HAVE_OPENBLAS
#if defined(SGD__HAVE_LOCAL_THREADS_REF)
    if (g->mode == SGD__BLAS_LOCAL) {
        openblas_set_num_threads_local(g->prev);
        return;
    }
#endif
    if (g->mode == SGD__BLAS_GLOBAL) {
        pthread_mutex_lock(&sgd__blas_lock);
        if (--sgd__blas_active == 0 && openblas_get_num_threads() != sgd__blas_saved)
            openblas_set_num_threads(sgd__blas_saved);
        pthread_mutex_unlock(&sgd__blas_lock);
    }
#else
    (void)g;
#endif
}

/* ---------------------------------------------------------------- forward */

static sgd_status forward_pass(sgd_model *m, const float *x, int64_t batch, bool training, const char *fn)
{
    m->phase = SGD__PHASE_NONE;
    m->x = x;
    sgd__pass p = {batch, training, &m->rng, fn};
    sgd_status st = sgd__seq_forward(&m->seq, x, &p);
    if (st != SGD_OK)
        return st;
    m->batch = batch;
    m->fwd_training = training;
    m->phase = SGD__PHASE_FORWARD;
    return SGD_OK;
}

static sgd_status check_batch(const sgd_model *m, const float *x, int64_t batch, const char *fn)
{
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (!m->built)
        return sgd__err(SGD_ESTATE, "%s: the model is not built yet (call sgd_model_build)", fn);
    if (x == NULL)
        return sgd__err(SGD_EINVAL, "%s: x is NULL", fn);
    if (batch < 1)
        return sgd__err(SGD_EINVAL, "%s: batch=%lld: must be >= 1", fn, (long long)batch);
    if (batch > m->max_batch)
        return sgd__err(SGD_EINVAL, "%s: batch=%lld exceeds max_batch=%lld (raise it with sgd_model_reserve)", fn,
                        (long long)batch, (long long)m->max_batch);
    int64_t bad = sgd__find_nonfinite(x, (size_t)batch * (size_t)m->n_in);
    if (bad >= 0)
        return sgd__err(SGD_ENONFINITE, "%s: x[%lld][%lld] is %g: inputs must be finite", fn,
                        (long long)(bad / m->n_in), (long long)(bad % m->n_in), (double)x[bad]);
    const sgd__layer *first = &m->seq.layers[0];
    if (first->op->check_input != NULL)
        return first->op->check_input(first, x, batch, fn);
    return SGD_OK;
}

static const float *model_output(const sgd_model *m)
{
    return m->seq.layers[m->seq.n - 1].y;
}

/* Classes (or values) per position: the output's last dimension. */
static int64_t n_out(const sgd_model *m)
{
    return sgd__shape_last(sgd__seq_out(&m->seq));
}

/* Values per sample of the output. */
static int64_t n_values(const sgd_model *m)
{
    return sgd__shape_numel(sgd__seq_out(&m->seq));
}

sgd_status sgd_model_forward(sgd_model *m, const float *x, int64_t batch, const float **out)
{
    static const char fn[] = "sgd_model_forward";
    if (out != NULL)
        *out = NULL;
    sgd_status st = check_batch(m, x, batch, fn);
    if (st != SGD_OK)
        return st;
    blas_guard g;
    blas_enter(m, &g);
    st = forward_pass(m, x, batch, m->training, fn);
    blas_leave(&g);
    if (st == SGD_OK && out != NULL)
        *out = model_output(m);
    return st;
}

/* ---------------------------------------------------------------- losses */

/*
 * The loss of outputs y (rows x c) against labels or targets: adds the sum of
 * the per-row (cross-entropy) or per-element losses to *sum and the correct
 * predictions to *correct; if grad is set, writes dLoss/dy of the mean loss
 * (scaled by 1/`mean_over` rows or elements) into it.
 */
static sgd_status loss_eval(const sgd_model *m, const float *y, int64_t rows, const int32_t *labels,
                            const float *targets, float *grad, double *sum, int64_t *correct, int64_t row0,
                            const char *fn)
{
    int64_t c = n_out(m);
    double s = 0.0;
    int64_t ok = 0;
    if (m->loss == SGD_LOSS_CROSS_ENTROPY) {
        float inv_b = 1.0f / (float)rows;
        for (int64_t r = 0; r < rows; r++) {
            int32_t lab = labels[r];
            if (lab < 0 || lab >= c)
                return sgd__err(SGD_EINVAL, "%s: labels[%lld]=%d: must be in [0, %lld) (the model has %lld outputs)",
                                fn, (long long)(row0 + r), (int)lab, (long long)c, (long long)c);
            const float *z = y + (size_t)r * (size_t)c;
            float mx = z[0];
            int64_t arg = 0;
            for (int64_t j = 1; j < c; j++)
                if (z[j] > mx) {
                    mx = z[j];
                    arg = j;
                }
            double se = 0.0;
            if (grad != NULL) { /* each exp once: kept in the gradient's row, then scaled (the same values) */
                float *g = grad + (size_t)r * (size_t)c;
                for (int64_t j = 0; j < c; j++) {
                    g[j] = expf(z[j] - mx);
                    se += g[j];
                }
                float inv_se = (float)(1.0 / se);
                for (int64_t j = 0; j < c; j++)
                    g[j] = g[j] * inv_se * inv_b;
                g[lab] -= inv_b;
            } else {
                for (int64_t j = 0; j < c; j++)
                    se += expf(z[j] - mx);
            }
            s += (double)mx + log(se) - (double)z[lab];
            ok += arg == lab;
        }
    } else {
        size_t n = (size_t)rows * (size_t)c;
        int64_t bad = sgd__find_nonfinite(targets, n);
        if (bad >= 0)
            return sgd__err(SGD_ENONFINITE, "%s: targets[%lld][%lld] is %g: targets must be finite", fn,
                            (long long)(row0 + bad / c), (long long)(bad % c), (double)targets[bad]);
        float inv_n = 1.0f / (float)n;
        if (m->loss == SGD_LOSS_MSE) {
            for (size_t k = 0; k < n; k++) {
                float d = y[k] - targets[k];
                s += (double)d * d;
                if (grad != NULL)
                    grad[k] = 2.0f * d * inv_n;
            }
        } else { /* BCE with logits: max(z,0) - z t + log(1 + exp(-|z|)) */
            for (size_t k = 0; k < n; k++) {
                float z = y[k], t = targets[k];
                s += (double)(z > 0.0f ? z : 0.0f) - (double)z * t + log1p(exp(-fabs((double)z)));
                ok += (z > 0.0f) == (t > 0.5f);
                if (grad != NULL) {
                    float sig = 1.0f / (1.0f + expf(-z));
                    grad[k] = (sig - t) * inv_n;
                }
            }
        }
    }
    *sum += s;
    *correct += ok;
    return SGD_OK;
}

static double loss_mean(const sgd_model *m, double sum, int64_t rows)
{
    return m->loss == SGD_LOSS_CROSS_ENTROPY ? sum / (double)rows : sum / ((double)rows * (double)n_out(m));
}

static sgd_status check_loss_inputs(const sgd_model *m, const int32_t *labels, const float *targets,
                                    const char *fn)
{
    if (m->loss == SGD_LOSS_CROSS_ENTROPY && labels == NULL)
        return sgd__err(SGD_EINVAL, "%s: labels is NULL: loss cross_entropy needs int32 class labels", fn);
    if (m->loss != SGD_LOSS_CROSS_ENTROPY && targets == NULL)
        return sgd__err(SGD_EINVAL, "%s: targets is NULL: loss %s needs float targets", fn, sgd__loss_name(m->loss));
    return SGD_OK;
}

static sgd_status compute_loss(sgd_model *m, const int32_t *labels, const float *targets, double *loss,
                               const char *fn)
{
    sgd_status st = check_loss_inputs(m, labels, targets, fn);
    if (st != SGD_OK)
        return st;
    double sum = 0.0;
    int64_t correct = 0;
    m->gcur = m->gbuf[0];
    int64_t rows = m->batch * sgd__model_positions(m);
    st = loss_eval(m, model_output(m), rows, labels, targets, m->gcur, &sum, &correct, 0, fn);
    if (st != SGD_OK)
        return st;
    if (loss != NULL)
        *loss = loss_mean(m, sum, rows);
    m->phase = SGD__PHASE_LOSS;
    return SGD_OK;
}

static sgd_status check_forward_done(const sgd_model *m, const char *fn)
{
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (m->phase == SGD__PHASE_NONE)
        return sgd__err(SGD_ESTATE, "%s: no forward pass to use (call sgd_model_forward first)", fn);
    return SGD_OK;
}

sgd_status sgd_model_compute_loss(sgd_model *m, const int32_t *labels, const float *targets, double *loss)
{
    static const char fn[] = "sgd_model_compute_loss";
    sgd_status st = check_forward_done(m, fn);
    if (st != SGD_OK)
        return st;
    return compute_loss(m, labels, targets, loss, fn);
}

/* ---------------------------------------------------------------- backward */

/* Back-propagates m->gcur (dLoss/dOutput, in gbuf[0]); adds to the gradient arena. */
static sgd_status backward_pass(sgd_model *m, const char *fn)
{
    sgd__pass p = {m->batch, m->fwd_training, &m->rng, fn};
    (void)sgd__seq_backward(&m->seq, m->x, m->gcur, m->gbuf, m->first, false, &p);
    m->phase = SGD__PHASE_FORWARD;
    return SGD_OK;
}

sgd_status sgd_model_backward(sgd_model *m)
{
    static const char fn[] = "sgd_model_backward";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (m->phase != SGD__PHASE_LOSS)
        return sgd__err(SGD_ESTATE,
                        "%s: no loss to back-propagate (call sgd_model_compute_loss after sgd_model_forward; each "
                        "backward pass needs its own)",
                        fn);
    blas_guard g;
    blas_enter(m, &g);
    sgd_status st = backward_pass(m, fn);
    blas_leave(&g);
    return st;
}

sgd_status sgd_model_backward_from(sgd_model *m, const float *grad_output)
{
    static const char fn[] = "sgd_model_backward_from";
    sgd_status st = check_forward_done(m, fn);
    if (st != SGD_OK)
        return st;
    if (grad_output == NULL)
        return sgd__err(SGD_EINVAL, "%s: grad_output is NULL", fn);
    size_t n = (size_t)m->batch * (size_t)n_values(m);
    int64_t bad = sgd__find_nonfinite(grad_output, n);
    if (bad >= 0)
        return sgd__err(SGD_ENONFINITE, "%s: grad_output[%lld][%lld] is %g: must be finite", fn,
                        (long long)(bad / n_values(m)), (long long)(bad % n_values(m)), (double)grad_output[bad]);
    m->gcur = m->gbuf[0];
    memcpy(m->gcur, grad_output, n * sizeof(float));
    blas_guard g;
    blas_enter(m, &g);
    st = backward_pass(m, fn);
    blas_leave(&g);
    return st;
}

sgd_status sgd_model_forward_backward(sgd_model *m, const float *x, const int32_t *labels, const float *targets,
                                      int64_t batch, double *loss)
{
    static const char fn[] = "sgd_model_forward_backward";
    sgd_status st = check_batch(m, x, batch, fn);
    if (st != SGD_OK)
        return st;
    if ((st = check_loss_inputs(m, labels, targets, fn)) != SGD_OK)
        return st;
    blas_guard g;
    blas_enter(m, &g);
    st = forward_pass(m, x, batch, m->training, fn);
    if (st == SGD_OK)
        st = compute_loss(m, labels, targets, loss, fn);
    if (st == SGD_OK)
        st = backward_pass(m, fn);
    blas_leave(&g);
    return st;
}

/* ---------------------------------------------------------------- evaluation */

sgd_status sgd_model_predict(sgd_model *m, const float *x, int64_t n, float *out, size_t out_len)
{
    static const char fn[] = "sgd_model_predict";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: model is NULL", fn);
    if (!m->built)
        return sgd__err(SGD_ESTATE, "%s: the model is not built yet (call sgd_model_build)", fn);
    if (x == NULL || out == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, x == NULL ? "x" : "out");
    if (n < 1)
        return sgd__err(SGD_EINVAL, "%s: n=%lld: must be >= 1", fn, (long long)n);
    size_t need;
    if (!sgd__mul_size((size_t)n, (size_t)n_values(m), &need))
        return sgd__err(SGD_EOVERFLOW, "%s: n=%lld: the output size overflows", fn, (long long)n);
    if (out_len < need)
        return sgd__err(SGD_ESHAPE, "%s: out_len=%zu: %lld rows of %lld outputs need %zu", fn, out_len,
                        (long long)n, (long long)n_values(m), need);
    sgd_status st = SGD_OK;
    blas_guard g;
    blas_enter(m, &g);
    sgd__model_state_stash(m);
    for (int64_t start = 0; start < n && st == SGD_OK; start += m->max_batch) {
        int64_t count = n - start < m->max_batch ? n - start : m->max_batch;
        const float *xb = x + (size_t)start * (size_t)m->n_in;
        sgd__model_state_zero(m); /* each batch of rows from a zero state */
        st = check_batch(m, xb, count, fn);
        if (st == SGD_ENONFINITE) {
            int64_t bad = sgd__find_nonfinite(xb, (size_t)count * (size_t)m->n_in);
            st = sgd__err(SGD_ENONFINITE, "%s: x[%lld][%lld] is %g: inputs must be finite", fn,
                          (long long)(start + bad / m->n_in), (long long)(bad % m->n_in), (double)xb[bad]);
        }
        if (st == SGD_OK)
            st = forward_pass(m, xb, count, false, fn);
        if (st == SGD_OK)
            memcpy(out + (size_t)start * (size_t)n_values(m), model_output(m),
                   (size_t)count * (size_t)n_values(m) * sizeof(float));
    }
    sgd__model_state_unstash(m);
    blas_leave(&g);
    m->phase = SGD__PHASE_NONE;
    return st;
}

sgd_status sgd_model_evaluate(sgd_model *m, const sgd_dataset *d, int64_t batch_size, double *loss,
                              double *accuracy)
{
    static const char fn[] = "sgd_model_evaluate";
    if (loss != NULL)
        *loss = NAN;
    if (accuracy != NULL)
        *accuracy = NAN;
    if (m == NULL || d == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, m == NULL ? "model" : "dataset");
    if (!m->built)
        return sgd__err(SGD_ESTATE, "%s: the model is not built yet (call sgd_model_build)", fn);
    if (batch_size == 0)
        batch_size = d->streams > 0 ? d->streams : m->max_batch;
    if (batch_size < 1 || batch_size > m->max_batch)
        return sgd__err(SGD_EINVAL, "%s: batch_size=%lld: must be in [1, max_batch=%lld] (or 0)%s", fn,
                        (long long)batch_size, (long long)m->max_batch,
                        d->streams > 0 ? " (0 means the dataset's number of streams)" : "");
    /* Over parallel streams read one step of each per batch, the state carries from batch to batch. */
    bool carry = d->streams > 0 && batch_size == d->streams;
    if (d->dim != m->n_in)
        return sgd__err(SGD_ESHAPE, "%s: the dataset has %lld features per row, the model takes %lld", fn,
                        (long long)d->dim, (long long)m->n_in);
    if (m->loss == SGD_LOSS_CROSS_ENTROPY && d->labels != NULL && sgd__model_positions(m) != d->ldim)
        return sgd__err(SGD_ESHAPE,
                        "%s: the model has %lld positions per sample, the dataset %lld label%s per row%s", fn,
                        (long long)sgd__model_positions(m), (long long)d->ldim, d->ldim == 1 ? "" : "s",
                        d->ldim == 1 ? " (flatten before the last dense layer)" : "");
    if (m->loss == SGD_LOSS_CROSS_ENTROPY && d->labels == NULL)
        return sgd__err(SGD_EINVAL, "%s: loss cross_entropy needs class labels; the dataset has float targets", fn);
    if (m->loss != SGD_LOSS_CROSS_ENTROPY) {
        if (d->targets == NULL)
            return sgd__err(SGD_EINVAL, "%s: loss %s needs float targets; the dataset has class labels", fn,
                            sgd__loss_name(m->loss));
        if (d->tdim != n_values(m))
            return sgd__err(SGD_ESHAPE, "%s: the dataset has %lld targets per row, the model %lld outputs", fn,
                            (long long)d->tdim, (long long)n_values(m));
    }
    double sum = 0.0;
    int64_t correct = 0;
    sgd_status st = SGD_OK;
    blas_guard g;
    blas_enter(m, &g);
    sgd__model_state_stash(m);
    sgd__model_state_zero(m);
    for (int64_t start = 0; start < d->n && st == SGD_OK; start += batch_size) {
        int64_t count = d->n - start < batch_size ? d->n - start : batch_size;
        if (!carry)
            sgd__model_state_zero(m);
        const float *x;
        const int32_t *labels;
        const float *targets;
        sgd__dataset_gather(d, start, NULL, count, m->xstage, m->lstage, m->tstage, &x, &labels, &targets);
        int64_t bad = sgd__find_nonfinite(x, (size_t)count * (size_t)m->n_in);
        if (bad >= 0) {
            st = sgd__err(SGD_ENONFINITE, "%s: row %lld, feature %lld is %g: inputs must be finite", fn,
                          (long long)(start + bad / m->n_in), (long long)(bad % m->n_in), (double)x[bad]);
            break;
        }
        st = forward_pass(m, x, count, false, fn);
        if (st == SGD_OK)
            st = loss_eval(m, model_output(m), count * sgd__model_positions(m), labels, targets, NULL, &sum,
                           &correct, start * sgd__model_positions(m), fn);
    }
    sgd__model_state_unstash(m);
    blas_leave(&g);
    m->phase = SGD__PHASE_NONE;
    if (st != SGD_OK)
        return st;
    if (loss != NULL)
        *loss = loss_mean(m, sum, d->n * sgd__model_positions(m));
    if (accuracy != NULL) {
        if (m->loss == SGD_LOSS_CROSS_ENTROPY)
            *accuracy = (double)correct / ((double)d->n * (double)sgd__model_positions(m));
        else if (m->loss == SGD_LOSS_BCE_WITH_LOGITS)
            *accuracy = (double)correct / ((double)d->n * (double)n_values(m));
    }
    return SGD_OK;
}

/* ---------------------------------------------------------------- benchmark support */

void sgd__model_replay_gemms(sgd_model *m, int64_t batch)
{
    blas_guard g;
    blas_enter(m, &g);
    sgd__seq_replay_gemms(&m->seq, m->xstage, m->gbuf[0], m->gbuf, m->first, false, batch);
    blas_leave(&g);
}
