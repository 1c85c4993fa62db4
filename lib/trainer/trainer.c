/*
 * The trainer: epochs of minibatches over a model, an optimizer, a schedule
 * and a monitor, with validation, early stopping, progress reports and the
 * guard (snapshots, rollback, learning-rate cuts).
 * SPDX-License-Identifier: MIT
 */
#include "trainer/trainer_internal.h"
#include "core/abi.h"

#include "optim/optim_internal.h" /* sgd__grad_scan */
#include "trainer/wire.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define RING 50
#define MAX_EPOCHS ((int64_t)1 << 20)
#define MAX_INTERVAL ((int64_t)1 << 40)
#define MAX_RESCUES ((int64_t)1 << 31)
#define MAX_EVENTS 16

/* ------------------------------------------------------------ the object */

/* Everything a rollback restores besides the composed objects. */
typedef struct counters {
    int64_t step;  /* schedule step of the next batch */
    int64_t epoch; /* epoch of the next batch */
    int64_t batch; /* batches taken in this epoch */
    double esum;   /* sum of the finite losses of this epoch */
    int64_t ecount;
    double elr;  /* lr of the last step */
    double best; /* best validation loss, NaN if none */
    int64_t bad; /* epochs without improvement */
    uint64_t rng[4];
    int64_t rpos, rcount;
    double ring[RING];
} counters;

#define COUNTERS_BYTES ((size_t)(14 + RING) * 8u)

/* The history of one epoch. */
typedef struct epoch_rec {
    int64_t done;
    double train_loss, val_loss, val_acc, lr;
    int64_t step, rescues;
    double seconds;
} epoch_rec;

#define EPOCH_BYTES ((size_t)8 * 8u)

struct sgd_trainer {
    sgd_allocator alloc;
    sgd_trainer_options o;
    sgd_model *model;
    sgd_optim *optim;
    sgd_sched *sched;
    sgd_monitor *monitor;
    sgd_monitor *own_monitor;
    int32_t mon_cb;
    bool mon_cb_set;
    sgd_dataset *val;
    sgd_loader *loader;
    int64_t nb;   /* batches per epoch */
    int64_t lpos_epoch, lpos_batch; /* where the loader is */
    size_t n; /* parameters */
    const char *mom_name; /* sgd_optim_momentum_name(): "momentum", "beta1"... or NULL */

    /* state layout */
    size_t n_ostate;
    size_t *ostate_bytes;
    int32_t *ostate_type;
    size_t ostate_total; /* padded */
    size_t sched_n, mon_n;
    size_t model_extra; /* the model's buffers and per-sample state in a snapshot, bytes (8-padded each) */
    size_t snap_bytes;
    size_t state_bytes;

    /* live state */
    counters c;
    epoch_rec *hist;
    double guard_scale;
    int64_t rescues, rollbacks;
    int64_t skip_lo, skip_hi;
    int64_t updates, skipped, batches_run;
    int64_t events[8];
    double last_loss;
    /* the guard */
    unsigned char *snap[2];
    int64_t snap_valid[2];
    int64_t good;        /* index of the rollback target */
    int64_t since;       /* steps since the last snapshot check */
    int64_t alarm_seen;  /* alarm since the last check */

    /* events collected during one observation */
    sgd_monitor_event ev[MAX_EVENTS];
    int nev;

    /* callbacks */
    sgd_trainer_progress_fn progress;
    void *progress_user;
    sgd_trainer_event_fn on_event;
    void *event_user;
    bool in_callback;
    bool in_fit;

    int32_t stop;
    char msg[512];

    /* timing (not part of the state) */
    double t_start, t_last_report, t_epoch_start;
    int64_t samples_since_report;
    double rate_ema;

    /* data parallelism (sgd_trainer_set_comm; not part of the state) */
    sgd_dataset *train;     /* a view of the training set, to rebuild the loader sharded */
    sgd_trainer_comm comm;
    bool dp;                /* comm.size > 1 */
    sgd_dataset *val_share; /* this process's contiguous share of val, or NULL (none, or empty) */
    int64_t n_train;        /* training rows */
    int64_t full_batch;     /* rows of a full batch: min(batch_size, n_train) */
    float *buf_f;           /* process 0's float buffers (running statistics) travel through these */
    double *buf_d;          /* ...and its counters (num_batches_tracked) */
    size_t buf_nf, buf_nd;
};

static size_t trainer_state_layout_size(const sgd_trainer *t);

/* ------------------------------------------------------------ helpers */

double sgd__now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *const stop_names[] = {"not_run", "completed", "budget", "early_stop", "canceled", "diverged",
                                         "failed"};
static const char *const event_names[] = {"monitor", "rescue", "gave_up", "diverged", "early_stop", "stopped"};

const char *sgd_trainer_stop_name(int32_t reason)
{
    if (reason < 0 || reason >= (int32_t)(sizeof stop_names / sizeof *stop_names))
        return "unknown";
    return stop_names[reason];
}

const char *sgd_trainer_event_name(int32_t kind)
{
    if (kind < 0 || kind >= (int32_t)(sizeof event_names / sizeof *event_names))
        return "unknown";
    return event_names[kind];
}

/* ------------------------------------------------------------ options */

void sgd_trainer_options_init(sgd_trainer_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->shuffle = 1;
    o->batch_size = 128;
    o->epochs = 1;
    o->seed = 0;
    o->drop_last = 0;
    o->nonfinite = -1;
    o->clip_norm = -1;
    o->clip_value = -1;
    o->eval_batch_size = 0;
    o->patience = 0;
    o->min_delta = 0;
    o->guard = 1;
    o->stop_on_divergence = 1;
    o->guard_interval = 50;
    o->guard_factor = 0.5;
    o->guard_max_rescues = 10;
    o->guard_skip = 0;
    o->progress_interval = 10;
}

sgd_status sgd__trainer_options_check(const sgd_trainer_options *o, const char *fn)
{
    if (o->batch_size < 1 || o->batch_size > SGD_MODEL_MAX_BATCH)
        return sgd__err(SGD_ERANGE, "%s: batch_size=%lld: must be in [1, %lld]", fn, (long long)o->batch_size,
                        (long long)SGD_MODEL_MAX_BATCH);
    if (o->epochs < 1 || o->epochs > MAX_EPOCHS)
        return sgd__err(SGD_ERANGE, "%s: epochs=%lld: must be in [1, %lld]", fn, (long long)o->epochs,
                        (long long)MAX_EPOCHS);
    if (o->nonfinite < -1 || o->nonfinite > SGD_NONFINITE_APPLY)
        return sgd__err(SGD_ERANGE, "%s: nonfinite=%d: must be -1 (keep the optimizer's), 0 (skip), 1 (error) or 2 (apply)",
                        fn, (int)o->nonfinite);
    if (!(o->clip_norm == -1 || (o->clip_norm >= 0 && isfinite(o->clip_norm))))
        return sgd__err(SGD_ERANGE, "%s: clip_norm=%g: must be -1 (keep the optimizer's) or finite and >= 0", fn,
                        o->clip_norm);
    if (!(o->clip_value == -1 || (o->clip_value >= 0 && isfinite(o->clip_value))))
        return sgd__err(SGD_ERANGE, "%s: clip_value=%g: must be -1 (keep the optimizer's) or finite and >= 0", fn,
                        o->clip_value);
    if (o->eval_batch_size < 0 || o->eval_batch_size > SGD_MODEL_MAX_BATCH)
        return sgd__err(SGD_ERANGE, "%s: eval_batch_size=%lld: must be in [0, %lld]", fn,
                        (long long)o->eval_batch_size, (long long)SGD_MODEL_MAX_BATCH);
    if (o->patience < 0 || o->patience > MAX_EPOCHS)
        return sgd__err(SGD_ERANGE, "%s: patience=%lld: must be in [0, %lld]", fn, (long long)o->patience,
                        (long long)MAX_EPOCHS);
    if (!(o->min_delta >= 0 && isfinite(o->min_delta)))
        return sgd__err(SGD_ERANGE, "%s: min_delta=%g: must be finite and >= 0", fn, o->min_delta);
    if (o->guard_interval < 1 || o->guard_interval > MAX_INTERVAL)
        return sgd__err(SGD_ERANGE, "%s: guard_interval=%lld: must be in [1, %lld]", fn,
                        (long long)o->guard_interval, (long long)MAX_INTERVAL);
    if (!(o->guard_factor > 0 && o->guard_factor <= 1))
        return sgd__err(SGD_ERANGE, "%s: guard_factor=%g: must be in (0, 1]", fn, o->guard_factor);
    if (o->guard_max_rescues < 0 || o->guard_max_rescues > MAX_RESCUES)
        return sgd__err(SGD_ERANGE, "%s: guard_max_rescues=%lld: must be in [0, %lld]", fn,
                        (long long)o->guard_max_rescues, (long long)MAX_RESCUES);
    if (o->guard_skip < 0 || o->guard_skip > MAX_INTERVAL)
        return sgd__err(SGD_ERANGE, "%s: guard_skip=%lld: must be in [0, %lld]", fn, (long long)o->guard_skip,
                        (long long)MAX_INTERVAL);
    if (o->progress_interval < 1 || o->progress_interval > MAX_INTERVAL)
        return sgd__err(SGD_ERANGE, "%s: progress_interval=%lld: must be in [1, %lld]", fn,
                        (long long)o->progress_interval, (long long)MAX_INTERVAL);
    return SGD_OK;
}

sgd_status sgd_trainer_options_parse(sgd_trainer_options *o, const char *spec)
{
    static const char fn[] = "sgd_trainer_options_parse";
    if (o == NULL || spec == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, o == NULL ? "options" : "spec");
    sgd_trainer_options t;
    sgd_trainer_options_init(&t);
    sgd_status st = sgd__options_copy(&t, sizeof t, o, SGD__FIRST(sgd_trainer_options), fn, "options");
    if (st != SGD_OK)
        return st;
    /* Accept "key=value,..." with or without a "trainer:" kind. */
    const char *text = spec;
    while (*text == ' ' || *text == '\t')
        text++;
    if (*text == '\0')
        return SGD_OK;
    char buf[4096];
    int w;
    if (strncmp(text, "trainer:", 8) == 0 || strcmp(text, "trainer") == 0)
        w = snprintf(buf, sizeof buf, "%s", text);
    else
        w = snprintf(buf, sizeof buf, "trainer:%s", text);
    if (w < 0 || (size_t)w >= sizeof buf)
        return sgd__err(SGD_EINVAL, "%s: spec longer than %zu bytes", fn, sizeof buf - 16);
    sgd__spec sp;
    st = sgd__spec_split(&sp, buf, strlen(buf), ',', fn);
    if (st != SGD_OK)
        return st;
    if (!sgd__str_eq(sp.kind, "trainer"))
        return sgd__err(SGD_EINVAL, "%s: '%.*s': expected key=value pairs", fn, (int)sp.kind.n, sp.kind.p);
    bool b;
    int64_t v;
#define GET_BOOL(field)                                                             \
    do {                                                                            \
        b = t.field != 0;                                                           \
        if ((st = sgd__spec_get_bool(&sp, #field, &b, fn)) != SGD_OK)              \
            return st;                                                              \
        t.field = b ? 1 : 0;                                                        \
    } while (0)
#define GET_I64(field)                                                              \
    do {                                                                            \
        v = (int64_t)t.field;                                                       \
        if ((st = sgd__spec_get_int64(&sp, #field, &v, fn)) != SGD_OK)             \
            return st;                                                              \
        t.field = v;                                                                \
    } while (0)
#define GET_F64(field)                                                              \
    do {                                                                            \
        if ((st = sgd__spec_get_double(&sp, #field, &t.field, fn)) != SGD_OK)      \
            return st;                                                              \
    } while (0)
    GET_BOOL(shuffle);
    GET_I64(batch_size);
    GET_I64(epochs);
    v = (int64_t)t.seed;
    if ((st = sgd__spec_get_int64(&sp, "seed", &v, fn)) != SGD_OK)
        return st;
    if (v < 0)
        return sgd__err(SGD_ERANGE, "%s: seed=%lld: must be >= 0", fn, (long long)v);
    t.seed = (uint64_t)v;
    GET_BOOL(drop_last);
    v = t.nonfinite;
    sgd__str nf = sgd__spec_get_str(&sp, "nonfinite");
    if (nf.p != NULL) {
        if (sgd__str_eq(nf, "skip"))
            t.nonfinite = SGD_NONFINITE_SKIP;
        else if (sgd__str_eq(nf, "error"))
            t.nonfinite = SGD_NONFINITE_ERROR;
        else if (sgd__str_eq(nf, "apply"))
            t.nonfinite = SGD_NONFINITE_APPLY;
        else if (sgd__str_eq(nf, "keep"))
            t.nonfinite = -1;
        else {
            int64_t x;
            if (sgd__parse_int64(nf, &x) != SGD_OK || x < -1 || x > 2)
                return sgd__err(SGD_ERANGE, "%s: nonfinite=%.*s: must be skip, error, apply or keep", fn,
                                (int)nf.n, nf.p);
            t.nonfinite = (int32_t)x;
        }
    }
    GET_F64(clip_norm);
    GET_F64(clip_value);
    GET_I64(eval_batch_size);
    GET_I64(patience);
    GET_F64(min_delta);
    GET_BOOL(guard);
    GET_BOOL(stop_on_divergence);
    GET_I64(guard_interval);
    GET_F64(guard_factor);
    GET_I64(guard_max_rescues);
    GET_I64(guard_skip);
    GET_I64(progress_interval);
#undef GET_BOOL
#undef GET_I64
#undef GET_F64
    if ((st = sgd__spec_check_unused(&sp, fn)) != SGD_OK)
        return st;
    if ((st = sgd__trainer_options_check(&t, fn)) != SGD_OK)
        return st;
    return SGD__FILL(o, &t, sgd_trainer_options, fn, "options");
}

/* ------------------------------------------------------------ serialisation */

static void counters_write(unsigned char *p, const counters *c)
{
    sgd__put_i64(p + 0, c->step);
    sgd__put_i64(p + 8, c->epoch);
    sgd__put_i64(p + 16, c->batch);
    sgd__put_f64(p + 24, c->esum);
    sgd__put_i64(p + 32, c->ecount);
    sgd__put_f64(p + 40, c->elr);
    sgd__put_f64(p + 48, c->best);
    sgd__put_i64(p + 56, c->bad);
    for (int i = 0; i < 4; i++)
        sgd__put_u64(p + 64 + 8 * i, c->rng[i]);
    sgd__put_i64(p + 96, c->rpos);
    sgd__put_i64(p + 104, c->rcount);
    for (int i = 0; i < RING; i++)
        sgd__put_f64(p + 112 + 8 * i, c->ring[i]);
}

static void counters_read(counters *c, const unsigned char *p)
{
    c->step = sgd__get_i64(p + 0);
    c->epoch = sgd__get_i64(p + 8);
    c->batch = sgd__get_i64(p + 16);
    c->esum = sgd__get_f64(p + 24);
    c->ecount = sgd__get_i64(p + 32);
    c->elr = sgd__get_f64(p + 40);
    c->best = sgd__get_f64(p + 48);
    c->bad = sgd__get_i64(p + 56);
    for (int i = 0; i < 4; i++)
        c->rng[i] = sgd__get_u64(p + 64 + 8 * i);
    c->rpos = sgd__get_i64(p + 96);
    c->rcount = sgd__get_i64(p + 104);
    for (int i = 0; i < RING; i++)
        c->ring[i] = sgd__get_f64(p + 112 + 8 * i);
}

static sgd_status counters_check(const sgd_trainer *t, const counters *c, const char *fn, const char *where)
{
#define BAD(...) sgd__err(SGD_EFORMAT, __VA_ARGS__)
    if (c->epoch < 0 || c->epoch > t->o.epochs)
        return BAD("%s: %s: epoch=%lld: must be in [0, %lld]", fn, where, (long long)c->epoch,
                   (long long)t->o.epochs);
    if (c->batch < 0 || c->batch > t->nb || (c->epoch == t->o.epochs && c->batch != 0))
        return BAD("%s: %s: batch=%lld: must be in [0, %lld] (0 after the last epoch)", fn, where,
                   (long long)c->batch, (long long)t->nb);
    if (c->step != c->epoch * t->nb + c->batch)
        return BAD("%s: %s: step=%lld: must be epoch * %lld + batch = %lld", fn, where, (long long)c->step,
                   (long long)t->nb, (long long)(c->epoch * t->nb + c->batch));
    if (c->ecount < 0 || c->ecount > c->batch)
        return BAD("%s: %s: epoch loss count=%lld: must be in [0, batch=%lld]", fn, where, (long long)c->ecount,
                   (long long)c->batch);
    if (isnan(c->esum) || c->esum < 0)
        return BAD("%s: %s: epoch loss sum=%g: must be >= 0 (losses are)", fn, where, c->esum);
    if (!(isnan(c->elr) || (c->elr >= 0 && isfinite(c->elr))))
        return BAD("%s: %s: last lr=%g: must be NaN or finite and >= 0", fn, where, c->elr);
    if (isinf(c->best))
        return BAD("%s: %s: best validation loss=%g: must be NaN or finite", fn, where, c->best);
    if (c->bad < 0 || c->bad > c->epoch)
        return BAD("%s: %s: epochs without improvement=%lld: must be in [0, epoch=%lld]", fn, where,
                   (long long)c->bad, (long long)c->epoch);
    if ((c->rng[0] | c->rng[1] | c->rng[2] | c->rng[3]) == 0)
        return BAD("%s: %s: dropout generator state is all zero", fn, where);
    if (c->rpos < 0 || c->rpos >= RING || c->rcount < 0 || c->rcount > RING)
        return BAD("%s: %s: loss ring position %lld, count %lld: must be in [0, %d)", fn, where,
                   (long long)c->rpos, (long long)c->rcount, RING);
#undef BAD
    return SGD_OK;
}

static size_t snap_off_params(void)
{
    return COUNTERS_BYTES;
}

/*
 * The model's tensors that are not parameters (running statistics, a
 * recurrent layer's carried state) into a snapshot at p (to_snap) or back,
 * each 8-byte padded, little-endian; returns the bytes they take. With p
 * NULL only counts.
 */
static size_t model_extra_copy(sgd_model *m, unsigned char *p, bool to_snap)
{
    size_t off = 0;
    for (size_t i = 0; i < sgd_model_num_tensors(m); i++) {
        sgd_tensor_info ti;
        sgd_tensor_info_init(&ti);
        if (sgd_model_tensor_info(m, i, &ti) != SGD_OK || ti.role == SGD_TENSOR_PARAM)
            continue;
        size_t es = ti.dtype == SGD_DTYPE_I64 ? 8 : 4, bytes = ti.numel * es;
        if (p != NULL) {
            if (to_snap) {
                memcpy(p + off, ti.data, bytes);
                sgd__le_swap(p + off, ti.numel, es);
            } else {
                memcpy(ti.data, p + off, bytes);
                sgd__le_swap(ti.data, ti.numel, es);
            }
        }
        off += sgd__pad8(bytes);
    }
    return off;
}

/* What model_extra_copy() takes once the model holds batches of `batch` rows. */
static size_t model_extra_size(const sgd_model *m, int64_t batch)
{
    size_t off = 0;
    for (size_t i = 0; i < sgd_model_num_tensors(m); i++) {
        sgd_tensor_info ti;
        sgd_tensor_info_init(&ti);
        if (sgd_model_tensor_info(m, i, &ti) != SGD_OK || ti.role == SGD_TENSOR_PARAM)
            continue;
        size_t numel = ti.role == SGD_TENSOR_STATE ? ti.numel / (size_t)ti.shape[0] * (size_t)batch : ti.numel;
        off += sgd__pad8(numel * (ti.dtype == SGD_DTYPE_I64 ? 8 : 4));
    }
    return off;
}

/* Writes the whole training state into snapshot buffer s. */
static sgd_status snapshot_take(sgd_trainer *t, unsigned char *s)
{
    sgd_status st = sgd_model_get_rng_state(t->model, t->c.rng);
    if (st != SGD_OK)
        return st;
    counters_write(s, &t->c);
    size_t off = snap_off_params();
    memcpy(s + off, sgd_model_params(t->model), t->n * sizeof(float));
    sgd__le_swap(s + off, t->n, sizeof(float));
    off += sgd__pad8(t->n * sizeof(float));
    for (size_t i = 0; i < t->n_ostate; i++) {
        if ((st = sgd_optim_state_export(t->optim, i, s + off, t->ostate_bytes[i])) != SGD_OK)
            return st;
        sgd__le_swap(s + off, t->ostate_bytes[i] / (t->ostate_type[i] == SGD_STATE_F32 ? 4 : 8),
                     t->ostate_type[i] == SGD_STATE_F32 ? 4 : 8);
        off += sgd__pad8(t->ostate_bytes[i]);
    }
    if (t->sched != NULL && t->sched_n > 0) {
        if ((st = sgd_sched_state_export(t->sched, (double *)(void *)(s + off), t->sched_n)) != SGD_OK)
            return st;
        sgd__le_swap(s + off, t->sched_n, 8);
    }
    off += t->sched_n * 8;
    if ((st = sgd_monitor_state_export(t->monitor, (double *)(void *)(s + off), t->mon_n)) != SGD_OK)
        return st;
    sgd__le_swap(s + off, t->mon_n, 8);
    off += t->mon_n * 8;
    model_extra_copy(t->model, s + off, true);
    return SGD_OK;
}

/*
 * Loads snapshot buffer s (8-byte aligned, writable: on big-endian hosts it is
 * swapped in place and back) into the composed objects and the counters.
 * Returns the first failure; the objects may then be partly restored.
 */
static sgd_status snapshot_restore(sgd_trainer *t, unsigned char *s, const char *fn, const char *where)
{
    counters c;
    counters_read(&c, s);
    sgd_status st = counters_check(t, &c, fn, where);
    if (st != SGD_OK)
        return st;
    size_t off = snap_off_params();
    float *w = sgd_model_params(t->model);
    memcpy(w, s + off, t->n * sizeof(float));
    sgd__le_swap(w, t->n, sizeof(float));
    off += sgd__pad8(t->n * sizeof(float));
    for (size_t i = 0; i < t->n_ostate; i++) {
        size_t es = t->ostate_type[i] == SGD_STATE_F32 ? 4 : 8;
        sgd__le_swap(s + off, t->ostate_bytes[i] / es, es);
        st = sgd_optim_state_import(t->optim, i, s + off, t->ostate_bytes[i]);
        sgd__le_swap(s + off, t->ostate_bytes[i] / es, es);
        if (st != SGD_OK) {
            sgd__err_prefix("%s: %s: optimizer state", fn, where);
            return st == SGD_ERANGE ? SGD_EFORMAT : st;
        }
        off += sgd__pad8(t->ostate_bytes[i]);
    }
    if (t->sched != NULL && t->sched_n > 0) {
        sgd__le_swap(s + off, t->sched_n, 8);
        st = sgd_sched_state_import(t->sched, (const double *)(const void *)(s + off), t->sched_n);
        sgd__le_swap(s + off, t->sched_n, 8);
        if (st != SGD_OK) {
            sgd__err_prefix("%s: %s: schedule state", fn, where);
            return st;
        }
    }
    off += t->sched_n * 8;
    sgd__le_swap(s + off, t->mon_n, 8);
    st = sgd_monitor_state_import(t->monitor, (const double *)(const void *)(s + off), t->mon_n);
    sgd__le_swap(s + off, t->mon_n, 8);
    if (st != SGD_OK) {
        sgd__err_prefix("%s: %s: monitor state", fn, where);
        return st;
    }
    off += t->mon_n * 8;
    model_extra_copy(t->model, s + off, false);
    if ((st = sgd_model_set_rng_state(t->model, c.rng)) != SGD_OK)
        return st;
    t->c = c;
    return SGD_OK;
}

/* ------------------------------------------------------------ monitor glue */

static int32_t collect_event(const sgd_monitor_event *ev, double *lr_scale, void *user)
{
    (void)lr_scale;
    sgd_trainer *t = user;
    if (t->nev < MAX_EVENTS)
        t->ev[t->nev++] = *ev;
    return SGD_MONITOR_CONTINUE;
}

/* ------------------------------------------------------------ creation */

sgd_status sgd__check_dataset_fits(const sgd_model *m, const sgd_dataset *d, const char *fn, const char *what)
{
    int64_t in = sgd_model_num_inputs(m), out = sgd_model_num_outputs(m);
    if (sgd_dataset_dim(d) != in)
        return sgd__err(SGD_ESHAPE, "%s: %s has %lld features per row but the model takes %lld inputs", fn, what,
                        (long long)sgd_dataset_dim(d), (long long)in);
    int32_t loss = sgd_model_loss_kind(m);
    if (loss == SGD_LOSS_CROSS_ENTROPY) {
        int32_t k = sgd_dataset_num_classes(d);
        if (k == 0)
            return sgd__err(SGD_ESHAPE, "%s: %s has float targets but the model's loss (cross-entropy) needs class labels",
                            fn, what);
        int32_t rank;
        int64_t shape[3];
        sgd_model_output_shape(m, &rank, shape);
        int64_t classes = shape[rank - 1], positions = out / classes;
        if (k > classes)
            return sgd__err(SGD_ESHAPE, "%s: %s has labels up to %d but the model has %lld outputs (classes)", fn,
                            what, (int)k - 1, (long long)classes);
        if (sgd_dataset_labels_per_row(d) != positions)
            return sgd__err(SGD_ESHAPE,
                            "%s: %s has %lld label%s per row but the model's output has %lld position%s of %lld classes",
                            fn, what, (long long)sgd_dataset_labels_per_row(d),
                            sgd_dataset_labels_per_row(d) == 1 ? "" : "s", (long long)positions,
                            positions == 1 ? "" : "s", (long long)classes);
    } else {
        if (sgd_dataset_target_dim(d) != out)
            return sgd__err(SGD_ESHAPE, "%s: %s has %lld targets per row (%s) but the model has %lld outputs", fn,
                            what, (long long)sgd_dataset_target_dim(d),
                            sgd_dataset_target_dim(d) == 0 ? "class labels" : "floats", (long long)out);
    }
    return SGD_OK;
}

/* The optimizer's momentum coefficient, from its listing, when the schedule cycles momentum. */
static sgd_status find_momentum(sgd_optim *o, const sgd_sched *s, const char **name, const char *fn)
{
    *name = NULL;
    if (s == NULL || !sgd_sched_cycles_momentum(s))
        return SGD_OK;
    if ((*name = sgd_optim_momentum_name(o)) != NULL)
        return SGD_OK;
    return sgd__err(SGD_EINVAL,
                    "%s: the schedule '%s' cycles momentum but the optimizer '%s' has no momentum to cycle (none of "
                    "its hyperparameters is a momentum that can change: create it with momentum > 0, use an "
                    "Adam-family optimizer, or set cycle_momentum=0 on the schedule)",
                    fn, sgd_sched_name(s), sgd_optim_name(o));
}

/* Tells the optimizer the model's tensors (layer-wise methods compute one trust ratio per tensor). */
static sgd_status set_tensors(sgd_optim *o, const sgd_model *m, const sgd_allocator *al)
{
    size_t k = sgd_model_num_param_tensors(m);
    size_t *sizes = sgd__calloc(al, k ? k : 1, sizeof *sizes);
    if (sizes == NULL)
        return sgd__err(SGD_ENOMEM, "sgd_trainer_new: out of memory");
    sgd_status st = SGD_OK;
    size_t next = 0;
    for (size_t i = 0; i < k && st == SGD_OK; i++) {
        sgd_param_info pi;
        memset(&pi, 0, sizeof pi);
        pi.struct_size = (uint32_t)sizeof pi;
        if ((st = sgd_model_param_info(m, i, &pi)) == SGD_OK && pi.offset != next)
            st = sgd__err(SGD_EINTERNAL, "sgd_trainer_new: parameter tensor %zu is not contiguous", i);
        sizes[i] = pi.numel;
        next += pi.numel;
    }
    if (st == SGD_OK)
        st = sgd_optim_set_tensors(o, sizes, k);
    sgd__free(al, sizes);
    return st;
}

static void trainer_destroy(sgd_trainer *t)
{
    if (t == NULL)
        return;
    const sgd_allocator *a = &t->alloc;
    if (t->mon_cb_set)
        sgd_monitor_remove_callback(t->monitor, t->mon_cb);
    sgd_monitor_free(t->own_monitor);
    sgd_loader_free(t->loader);
    sgd_dataset_free(t->val_share);
    sgd__free(a, t->buf_f);
    sgd__free(a, t->buf_d);
    sgd_dataset_free(t->train);
    sgd_dataset_free(t->val);
    sgd__free_aligned(a, t->snap[0]);
    sgd__free_aligned(a, t->snap[1]);
    sgd__free(a, t->hist);
    sgd__free(a, t->ostate_bytes);
    sgd__free(a, t->ostate_type);
    sgd__free(a, t);
}

sgd_status sgd_trainer_new(sgd_trainer **out, sgd_model *model, sgd_optim *optim, sgd_sched *sched,
                           sgd_monitor *monitor, const sgd_dataset *train, const sgd_dataset *val,
                           const sgd_trainer_options *opts, const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_trainer_new";
    if (out != NULL)
        *out = NULL;
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    if (model == NULL || optim == NULL || train == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn,
                        model == NULL ? "model" : optim == NULL ? "optim" : "train");
    sgd_allocator al;
    sgd_status st = sgd__allocator_init(&al, alloc, fn);
    if (st != SGD_OK)
        return st;
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    if ((st = sgd__options_copy(&o, sizeof o, opts, SGD__FIRST(sgd_trainer_options), fn, "opts")) != SGD_OK)
        return st;
    if ((st = sgd__trainer_options_check(&o, fn)) != SGD_OK)
        return st;
    size_t n = sgd_model_num_params(model);
    if (n == 0)
        return sgd__err(SGD_EINVAL, "%s: the model is not built (call sgd_model_build() first)", fn);
    if (sgd_optim_size(optim) != n)
        return sgd__err(SGD_ESHAPE, "%s: the optimizer updates %zu parameters but the model has %zu", fn,
                        sgd_optim_size(optim), n);
    if ((st = sgd__check_dataset_fits(model, train, fn, "train")) != SGD_OK)
        return st;
    if (val != NULL && (st = sgd__check_dataset_fits(model, val, fn, "val")) != SGD_OK)
        return st;
    if (o.drop_last && o.batch_size > sgd_dataset_size(train))
        return sgd__err(SGD_EINVAL, "%s: drop_last with batch_size=%lld > %lld training rows leaves no batch", fn,
                        (long long)o.batch_size, (long long)sgd_dataset_size(train));
    const char *mom_name;
    if ((st = find_momentum(optim, sched, &mom_name, fn)) != SGD_OK)
        return st;

    sgd_trainer *t = sgd__malloc(&al, sizeof *t);
    if (t == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    memset(t, 0, sizeof *t);
    t->alloc = al;
    t->o = o;
    t->model = model;
    t->optim = optim;
    t->sched = sched;
    t->n = n;
    t->mom_name = mom_name;
    t->guard_scale = 1.0;
    t->skip_lo = t->skip_hi = -1;
    t->last_loss = NAN;
    t->c.best = NAN;
    t->c.elr = NAN;
    t->lpos_epoch = t->lpos_batch = 0;

    if (monitor == NULL) {
        if ((st = sgd_monitor_new(&t->own_monitor, NULL, &al)) != SGD_OK)
            goto fail;
        monitor = t->own_monitor;
    }
    t->monitor = monitor;
    if ((st = sgd_monitor_state_size(monitor, &t->mon_n)) != SGD_OK)
        goto fail;
    t->sched_n = sched != NULL ? sgd_sched_state_size(sched) : 0;

    if (val != NULL && (st = sgd_dataset_subset(&t->val, val, 0, sgd_dataset_size(val))) != SGD_OK)
        goto fail;
    if ((st = sgd_dataset_subset(&t->train, train, 0, sgd_dataset_size(train))) != SGD_OK)
        goto fail;
    sgd_trainer_comm_init(&t->comm);
    t->n_train = sgd_dataset_size(train);
    t->full_batch = o.batch_size < t->n_train ? o.batch_size : t->n_train;
    sgd_loader_options lo;
    sgd_loader_options_init(&lo);
    lo.shuffle = o.shuffle;
    lo.drop_last = o.drop_last;
    lo.seed = o.seed;
    if ((st = sgd_loader_new(&t->loader, train, o.batch_size, &lo)) != SGD_OK)
        goto fail;
    t->nb = sgd_loader_num_batches(t->loader);
    if ((t->hist = sgd__calloc(&al, (size_t)o.epochs, sizeof *t->hist)) == NULL)
        goto nomem;

    /* The optimizer's state arrays, as the snapshots hold them. */
    t->n_ostate = sgd_optim_state_count(optim);
    if ((t->ostate_bytes = sgd__calloc(&al, t->n_ostate + 1, sizeof *t->ostate_bytes)) == NULL ||
        (t->ostate_type = sgd__calloc(&al, t->n_ostate + 1, sizeof *t->ostate_type)) == NULL)
        goto nomem;
    size_t total = 0;
    for (size_t i = 0; i < t->n_ostate; i++) {
        int32_t type;
        size_t len, es, bytes;
        if ((st = sgd_optim_state_describe(optim, i, NULL, &type, &len)) != SGD_OK)
            goto fail;
        es = type == SGD_STATE_F32 ? 4 : 8;
        if (!sgd__mul_size(len, es, &bytes) || bytes > SIZE_MAX / 2 || !sgd__add_size(total, sgd__pad8(bytes), &total))
            goto overflow;
        t->ostate_bytes[i] = bytes;
        t->ostate_type[i] = type;
    }
    t->ostate_total = total;
    /* The carried state is [max_batch, ...]: size it for the batch the model is reserved for below. */
    int64_t final_batch = o.batch_size > o.eval_batch_size ? o.batch_size : o.eval_batch_size;
    if (final_batch < sgd_model_max_batch(model))
        final_batch = sgd_model_max_batch(model);
    t->model_extra = model_extra_size(model, final_batch);
    size_t snap = COUNTERS_BYTES, tmp;
    if (!sgd__mul_size(n, sizeof(float), &tmp) || tmp > SIZE_MAX / 2 || !sgd__add_size(snap, sgd__pad8(tmp), &snap) ||
        !sgd__add_size(snap, total, &snap) || !sgd__mul_size(t->sched_n, 8, &tmp) || !sgd__add_size(snap, tmp, &snap) ||
        !sgd__mul_size(t->mon_n, 8, &tmp) || !sgd__add_size(snap, tmp, &snap) ||
        t->model_extra > SIZE_MAX / 4 || !sgd__add_size(snap, t->model_extra, &snap))
        goto overflow;
    t->snap_bytes = snap;
    if (o.guard) {
        if ((t->snap[0] = sgd__alloc_aligned(&al, snap, 1)) == NULL ||
            (t->snap[1] = sgd__alloc_aligned(&al, snap, 1)) == NULL)
            goto nomem;
    }
    t->state_bytes = trainer_state_layout_size(t);
    if (t->state_bytes == 0)
        goto overflow;

    int64_t need_batch = o.batch_size;
    if (o.eval_batch_size > need_batch)
        need_batch = o.eval_batch_size;
    int64_t old_batch = sgd_model_max_batch(model);

    if ((st = sgd_monitor_add_callback(monitor, &t->mon_cb, SGD_MONITOR_MASK_ALL, collect_event, t)) != SGD_OK) {
        sgd__err_prefix("%s: registering the trainer's callback on the monitor", fn);
        goto fail;
    }
    t->mon_cb_set = true;

    /* Host objects change last, and are put back if anything fails. */
    sgd_optim_hygiene old_h;
    sgd_optim_hygiene_init(&old_h);
    bool set_h = o.nonfinite != -1 || o.clip_norm != -1 || o.clip_value != -1;
    if (set_h) {
        if ((st = sgd_optim_get_hygiene(optim, &old_h)) != SGD_OK)
            goto fail;
        sgd_optim_hygiene h = old_h;
        if (o.nonfinite != -1)
            h.nonfinite = o.nonfinite;
        if (o.clip_norm != -1)
            h.clip_norm = o.clip_norm;
        if (o.clip_value != -1)
            h.clip_value = o.clip_value;
        if ((st = sgd_optim_set_hygiene(optim, &h)) != SGD_OK)
            goto fail;
    }
    if ((need_batch > old_batch && (st = sgd_model_reserve(model, need_batch)) != SGD_OK) ||
        (st = set_tensors(optim, model, &al)) != SGD_OK) {
        if (set_h)
            sgd_optim_set_hygiene(optim, &old_h);
        goto fail;
    }
    *out = t;
    return SGD_OK;

overflow:
    trainer_destroy(t);
    return sgd__err(SGD_EOVERFLOW, "%s: the state of %zu parameters does not fit in memory's address space", fn, n);
nomem:
    trainer_destroy(t);
    return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
fail:
    trainer_destroy(t);
    return st;
}

void sgd_trainer_free(sgd_trainer *t)
{
    trainer_destroy(t);
}

sgd_status sgd_trainer_set_progress(sgd_trainer *t, sgd_trainer_progress_fn fn, void *user)
{
    if (t == NULL)
        return sgd__err(SGD_EINVAL, "sgd_trainer_set_progress: trainer is NULL");
    if (t->in_callback)
        return sgd__err(SGD_ESTATE, "sgd_trainer_set_progress: called from a trainer callback");
    t->progress = fn;
    t->progress_user = user;
    return SGD_OK;
}

sgd_status sgd_trainer_set_event_callback(sgd_trainer *t, sgd_trainer_event_fn fn, void *user)
{
    if (t == NULL)
        return sgd__err(SGD_EINVAL, "sgd_trainer_set_event_callback: trainer is NULL");
    if (t->in_callback)
        return sgd__err(SGD_ESTATE, "sgd_trainer_set_event_callback: called from a trainer callback");
    t->on_event = fn;
    t->event_user = user;
    return SGD_OK;
}

/* ------------------------------------------------------------ queries */

sgd_model *sgd_trainer_model(const sgd_trainer *t)
{
    return t ? t->model : NULL;
}

sgd_optim *sgd_trainer_optim(const sgd_trainer *t)
{
    return t ? t->optim : NULL;
}

sgd_sched *sgd_trainer_sched(const sgd_trainer *t)
{
    return t ? t->sched : NULL;
}

sgd_monitor *sgd_trainer_monitor(const sgd_trainer *t)
{
    return t ? t->monitor : NULL;
}

int32_t sgd_trainer_stop_reason(const sgd_trainer *t)
{
    return t ? t->stop : SGD_TRAINER_NOT_RUN;
}

static double recent_loss(const counters *c)
{
    if (c->rcount == 0)
        return NAN;
    double s = 0;
    for (int64_t i = 0; i < c->rcount; i++)
        s += c->ring[i];
    return s / (double)c->rcount;
}

sgd_status sgd_trainer_get_stats(const sgd_trainer *t, sgd_trainer_stats *stats)
{
    if (t == NULL || stats == NULL)
        return sgd__err(SGD_EINVAL, "sgd_trainer_get_stats: %s is NULL", t == NULL ? "trainer" : "stats");
    sgd_trainer_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.stop_reason = t->stop;
    s.step = t->c.step;
    s.epoch = t->c.epoch;
    s.batch = t->c.batch;
    s.batches_run = t->batches_run;
    s.updates = t->updates;
    s.skipped = t->skipped;
    s.rescues = t->rescues;
    s.rollbacks = t->rollbacks;
    for (int i = 0; i < 8; i++)
        s.events[i] = t->events[i];
    s.guard_scale = t->guard_scale;
    s.lr = t->c.elr;
    s.last_loss = t->last_loss;
    s.recent_loss = recent_loss(&t->c);
    s.best_val_loss = t->c.best;
    s.epochs_without_improvement = t->c.bad;
    return SGD__FILL(stats, &s, sgd_trainer_stats, "sgd_trainer_get_stats", "stats");
}

/* Bits per position and perplexity of a cross-entropy loss in nats (NaN for the other losses). */
static void ce_metrics(const sgd_trainer *t, double loss, double *bits, double *ppl)
{
    bool ce = sgd_model_loss_kind(t->model) == SGD_LOSS_CROSS_ENTROPY;
    *bits = ce ? loss / log(2.0) : NAN;
    *ppl = ce ? exp(loss) : NAN;
}

sgd_status sgd_trainer_get_epoch(const sgd_trainer *t, int64_t epoch, sgd_trainer_epoch *out)
{
    if (t == NULL || out == NULL)
        return sgd__err(SGD_EINVAL, "sgd_trainer_get_epoch: %s is NULL", t == NULL ? "trainer" : "out");
    if (epoch < 0 || epoch >= t->o.epochs)
        return sgd__err(SGD_EINVAL, "sgd_trainer_get_epoch: epoch=%lld: must be in [0, %lld)", (long long)epoch,
                        (long long)t->o.epochs);
    const epoch_rec *r = &t->hist[epoch];
    sgd_trainer_epoch e;
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    e.done = r->done ? 1 : 0;
    e.train_loss = r->done ? r->train_loss : NAN;
    e.val_loss = r->done ? r->val_loss : NAN;
    e.val_accuracy = r->done ? r->val_acc : NAN;
    e.lr = r->done ? r->lr : NAN;
    e.step = r->step;
    e.rescues = r->rescues;
    e.seconds = r->seconds;
    ce_metrics(t, e.train_loss, &e.train_bpc, &e.train_perplexity);
    ce_metrics(t, e.val_loss, &e.val_bpc, &e.val_perplexity);
    return SGD__FILL(out, &e, sgd_trainer_epoch, "sgd_trainer_get_epoch", "out");
}

/* The schedule's (or the optimizer's constant) learning rate at step `step`. */
static sgd_status base_lr(const sgd_trainer *t, int64_t step, double *lr)
{
    if (t->sched != NULL)
        return sgd_sched_lr(t->sched, step, lr);
    return sgd_optim_get(t->optim, "lr", lr);
}

sgd_status sgd_trainer_next_lr(const sgd_trainer *t, double *lr)
{
    if (t == NULL || lr == NULL)
        return sgd__err(SGD_EINVAL, "sgd_trainer_next_lr: %s is NULL", t == NULL ? "trainer" : "lr");
    double b;
    sgd_status st = base_lr(t, t->c.step, &b);
    if (st != SGD_OK)
        return st;
    *lr = b * t->guard_scale;
    return SGD_OK;
}

/* ------------------------------------------------------------ reporting */

/* Fills the cross-entropy metrics of a progress report from its losses. */
static void progress_metrics(const sgd_trainer *t, sgd_trainer_progress *p)
{
    ce_metrics(t, p->train_loss, &p->train_bpc, &p->train_perplexity);
    ce_metrics(t, p->val_loss, &p->val_bpc, &p->val_perplexity);
}

static void fill_progress(sgd_trainer *t, sgd_trainer_progress *p, int32_t phase)
{
    memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    p->phase = phase;
    p->step = t->c.step;
    p->epoch = t->c.epoch;
    p->epochs = t->o.epochs;
    p->batch = t->c.batch;
    p->batches = t->nb;
    p->loss = t->last_loss;
    sgd_monitor_counters mc;
    memset(&mc, 0, sizeof mc);
    mc.struct_size = sizeof mc;
    p->smoothed_loss = sgd_monitor_get_counters(t->monitor, &mc) == SGD_OK ? mc.smoothed : NAN;
    p->lr = t->c.elr;
    double now = sgd__now_seconds();
    double dt = now - t->t_last_report;
    if (dt > 0 && t->samples_since_report > 0) {
        double rate = (double)t->samples_since_report / dt;
        t->rate_ema = t->rate_ema > 0 ? 0.7 * t->rate_ema + 0.3 * rate : rate;
    }
    p->samples_per_sec = t->rate_ema;
    t->t_last_report = now;
    t->samples_since_report = 0;
    p->elapsed = now - t->t_start;
    int64_t planned = t->o.epochs * t->nb;
    int64_t done = t->c.epoch * t->nb + t->c.batch;
    if (done > planned)
        done = planned;
    p->fraction = planned > 0 ? (double)done / (double)planned : 1.0;
    p->eta = -1;
    if (t->rate_ema > 0) {
        double rows = (double)(planned - done) * (double)t->o.batch_size;
        p->eta = rows / t->rate_ema;
    }
    p->train_loss = t->c.ecount > 0 ? t->c.esum / (double)t->c.ecount : NAN;
    p->val_loss = NAN;
    p->val_accuracy = NAN;
    p->rescues = t->rescues;
    p->guard_scale = t->guard_scale;
    progress_metrics(t, p);
}

/* Calls the progress callback; true if it asked to stop. */
static bool report(sgd_trainer *t, sgd_trainer_progress *p)
{
    if (t->progress == NULL)
        return false;
    t->in_callback = true;
    int32_t r = t->progress(p, t->progress_user);
    t->in_callback = false;
    return r != 0 && p->phase != SGD_TRAINER_PHASE_DONE;
}

/* An event of `kind` at `step`, with the trainer's guard scale and rescues; its message is t->msg. */
static void event_fill(const sgd_trainer *t, sgd_trainer_event *e, int32_t kind, int64_t step, int32_t action,
                       double factor, double lr, int64_t restored)
{
    memset(e, 0, sizeof *e);
    e->struct_size = sizeof *e;
    e->kind = kind;
    e->step = step;
    e->epoch = t->c.epoch;
    e->action = action;
    e->lr_scale = factor;
    e->lr = lr;
    e->guard_scale = t->guard_scale;
    e->rescues = t->rescues;
    e->restored_step = restored;
    e->message = t->msg;
}

/* Notifies the host of an event (the answer is ignored). */
static void notify(sgd_trainer *t, int32_t kind, int64_t step, int32_t action, double factor, double lr,
                   int64_t restored)
{
    if (t->on_event == NULL)
        return;
    sgd_trainer_event e;
    event_fill(t, &e, kind, step, action, factor, lr, restored);
    double s = factor;
    t->in_callback = true;
    t->on_event(&e, &s, t->event_user);
    t->in_callback = false;
}

/* ------------------------------------------------------------ the guard */

static bool alarm_kind(int32_t kind)
{
    return kind == SGD_MONITOR_NONFINITE || kind == SGD_MONITOR_DIVERGENCE || kind == SGD_MONITOR_OSCILLATION ||
           kind == SGD_MONITOR_SPIKE;
}

/* Before a step: the first snapshot, and every guard_interval steps a new candidate. */
static sgd_status guard_check(sgd_trainer *t)
{
    if (!t->o.guard)
        return SGD_OK;
    sgd_status st;
    int64_t g = t->good;
    if (!t->snap_valid[g]) {
        if ((st = snapshot_take(t, t->snap[g])) != SGD_OK)
            return st;
        t->snap_valid[g] = 1;
        t->snap_valid[1 - g] = 0;
        t->since = 0;
        t->alarm_seen = 0;
        return SGD_OK;
    }
    if (t->since < t->o.guard_interval)
        return SGD_OK;
    int32_t verdict = SGD_MONITOR_HEALTHY;
    sgd_monitor_get_verdict(t->monitor, &verdict);
    bool healthy = !t->alarm_seen && (verdict == SGD_MONITOR_HEALTHY || verdict == SGD_MONITOR_STAGNANT);
    int64_t p = 1 - g;
    if (t->snap_valid[p] && healthy) {
        t->good = p; /* the candidate was followed by a healthy interval */
        p = g;
    }
    t->snap_valid[p] = 0;
    if (healthy) {
        if ((st = snapshot_take(t, t->snap[p])) != SGD_OK)
            return st;
        t->snap_valid[p] = 1;
    }
    t->since = 0;
    t->alarm_seen = 0;
    return SGD_OK;
}

/* The default policy for one monitor event. */
static int32_t policy(const sgd_trainer *t, const sgd_monitor_event *ev, double *factor)
{
    *factor = 1.0;
    if (!t->o.guard)
        return SGD_MONITOR_CONTINUE;
    switch (ev->kind) {
    case SGD_MONITOR_NONFINITE:
    case SGD_MONITOR_DIVERGENCE:
    case SGD_MONITOR_SPIKE:
    case SGD_MONITOR_OSCILLATION:
        *factor = t->o.guard_factor;
        return SGD_MONITOR_ROLLBACK;
    default:
        return SGD_MONITOR_CONTINUE;
    }
}

/* Gives up if the rescue budget is spent; else counts the rescue. */
static sgd_status rescue_budget(sgd_trainer *t, int64_t step, const char *why, double lr)
{
    if (t->rescues >= t->o.guard_max_rescues) {
        snprintf(t->msg, sizeof t->msg,
                 "step %lld: %s again after %lld rescue%s (lr %.3g, guard scale %.3g): giving up; "
                 "lower the learning rate or use a schedule that warms up",
                 (long long)step, why, (long long)t->rescues, t->rescues == 1 ? "" : "s", lr, t->guard_scale);
        notify(t, SGD_TRAINER_EVENT_GAVE_UP, step, SGD_MONITOR_STOP, 1.0, lr, -1);
        t->stop = SGD_TRAINER_DIVERGED;
        return sgd__err(SGD_EDIVERGED, "sgd_trainer_fit: %s", t->msg);
    }
    t->rescues++;
    return SGD_OK;
}

static sgd_status rollback(sgd_trainer *t, int64_t step, double factor, const char *why, double lr)
{
    static const char fn[] = "sgd_trainer_fit";
    if (!t->o.guard || !t->snap_valid[t->good]) {
        t->stop = SGD_TRAINER_FAILED;
        return sgd__err(SGD_ESTATE, "%s: step %lld: a rollback was asked for (%s) but the guard is off: there is no "
                                    "snapshot to return to",
                        fn, (long long)step, why);
    }
    sgd_status st = rescue_budget(t, step, why, lr);
    if (st != SGD_OK)
        return st;
    int64_t g = t->good;
    if ((st = snapshot_restore(t, t->snap[g], fn, "rollback")) != SGD_OK) {
        t->stop = SGD_TRAINER_FAILED;
        return st;
    }
    t->guard_scale *= factor;
    t->rollbacks++;
    for (int64_t e = t->c.epoch; e < t->o.epochs; e++)
        memset(&t->hist[e], 0, sizeof t->hist[e]);
    t->snap_valid[1 - g] = 0;
    t->since = 0;
    t->alarm_seen = 0;
    if (t->o.guard_skip > 0) {
        t->skip_lo = step - t->o.guard_skip;
        t->skip_hi = step + t->o.guard_skip;
    }
    double next = NAN;
    if (base_lr(t, t->c.step, &next) == SGD_OK)
        next *= t->guard_scale;
    snprintf(t->msg, sizeof t->msg, "step %lld: %s: rolled back to step %lld, lr x%.3g (now %.3g); rescue %lld of %lld",
             (long long)step, why, (long long)t->c.step, factor, next, (long long)t->rescues,
             (long long)t->o.guard_max_rescues);
    notify(t, SGD_TRAINER_EVENT_RESCUE, step, SGD_MONITOR_ROLLBACK, factor, lr, t->c.step);
    return SGD_OK;
}

/* ------------------------------------------------------------ data parallelism */

/*
 * With a communicator of more than one process (sgd_trainer_set_comm), every
 * process runs this same loop in lockstep and calls comm.allreduce at the
 * same points, always with the same counts:
 *
 *   fit entry     two sums: process 0's step and budget, then the mismatches;
 *   every step    the gradient arena with [weighted loss, failures] (dp_reduce),
 *                 then [failures, process 0's action, factor, event kind and
 *                 generator state] (dp_agree);
 *   report points [stop requests] (dp_agree_stop), every progress_interval
 *                 steps and at each epoch end;
 *   epoch end     [failures, loss * rows, accuracy * rows, rows] of the
 *                 validation shares (dp_evaluate).
 *
 * A sum that carries process 0's values only has the others contribute 0,
 * so it is an exact broadcast. 64-bit words travel as two 32-bit halves
 * (exact in a double).
 */
#define DP_DECISION 12

static void dp_put_u64(double *d, uint64_t v)
{
    d[0] = (double)(uint32_t)(v >> 32);
    d[1] = (double)(uint32_t)v;
}

static uint64_t dp_get_u64(const double *d)
{
    return ((uint64_t)d[0] << 32) | (uint64_t)d[1];
}

void sgd_trainer_comm_init(sgd_trainer_comm *c)
{
    if (c == NULL)
        return;
    memset(c, 0, sizeof *c);
    c->struct_size = sizeof *c;
    c->rank = 0;
    c->size = 1;
}

sgd_status sgd_trainer_set_comm(sgd_trainer *t, const sgd_trainer_comm *c)
{
    static const char fn[] = "sgd_trainer_set_comm";
    if (t == NULL)
        return sgd__err(SGD_EINVAL, "%s: trainer is NULL", fn);
    if (t->in_callback || t->in_fit)
        return sgd__err(SGD_ESTATE, "%s: called from a trainer callback", fn);
    sgd_trainer_comm cc;
    sgd_trainer_comm_init(&cc);
    sgd_status st = sgd__options_copy(&cc, sizeof cc, c, SGD__FIRST(sgd_trainer_comm), fn, "comm");
    if (st != SGD_OK)
        return st;
    if (cc.size < 1 || cc.size > SGD_LOADER_MAX_SHARDS)
        return sgd__err(SGD_EINVAL, "%s: size=%d: must be in [1, %d]", fn, (int)cc.size, (int)SGD_LOADER_MAX_SHARDS);
    if (cc.rank < 0 || cc.rank >= cc.size)
        return sgd__err(SGD_EINVAL, "%s: rank=%d: must be in [0, size=%d)", fn, (int)cc.rank, (int)cc.size);
    if (cc.size > 1 && cc.allreduce == NULL)
        return sgd__err(SGD_EINVAL, "%s: allreduce is NULL: a size above 1 needs it", fn);
    sgd_loader_options lo;
    sgd_loader_options_init(&lo);
    lo.shuffle = t->o.shuffle;
    lo.drop_last = t->o.drop_last;
    lo.seed = t->o.seed;
    lo.shard_index = cc.rank;
    lo.shard_count = cc.size;
    sgd_loader *loader = NULL;
    sgd_dataset *share = NULL;
    float *bf = NULL;
    double *bd = NULL;
    size_t nf = 0, nd = 0;
    if ((st = sgd_loader_new(&loader, t->train, t->o.batch_size, &lo)) != SGD_OK)
        return st;
    if (cc.size > 1 && t->val != NULL) {
        /* Contiguous shares of the validation set: [n r / P, n (r + 1) / P). */
        int64_t nv = sgd_dataset_size(t->val);
        int64_t lo_row = nv * cc.rank / cc.size, hi_row = nv * (cc.rank + 1) / cc.size;
        if (hi_row > lo_row && (st = sgd_dataset_subset(&share, t->val, lo_row, hi_row - lo_row)) != SGD_OK) {
            sgd_loader_free(loader);
            return st;
        }
    }
    if (cc.size > 1) {
        /* The model's buffers, which every step makes process 0's on every process. */
        for (size_t i = 0; i < sgd_model_num_tensors(t->model); i++) {
            sgd_tensor_info ti;
            sgd_tensor_info_init(&ti);
            if (sgd_model_tensor_info(t->model, i, &ti) != SGD_OK || ti.role != SGD_TENSOR_BUFFER)
                continue;
            if (ti.dtype == SGD_DTYPE_F32)
                nf += ti.numel;
            else
                nd += ti.numel;
        }
        if ((nf > 0 && (bf = sgd__calloc(&t->alloc, nf, sizeof *bf)) == NULL) ||
            (nd > 0 && (bd = sgd__calloc(&t->alloc, nd, sizeof *bd)) == NULL)) {
            sgd__free(&t->alloc, bf);
            sgd_loader_free(loader);
            sgd_dataset_free(share);
            return sgd__err(SGD_ENOMEM, "%s: out of memory for the model's buffers", fn);
        }
    }
    sgd_loader_free(t->loader);
    sgd_dataset_free(t->val_share);
    sgd__free(&t->alloc, t->buf_f);
    sgd__free(&t->alloc, t->buf_d);
    t->buf_f = bf;
    t->buf_d = bd;
    t->buf_nf = nf;
    t->buf_nd = nd;
    t->loader = loader;
    t->val_share = share;
    t->comm = cc;
    t->dp = cc.size > 1;
    t->lpos_epoch = t->lpos_batch = -1; /* seek the new loader before the next batch */
    return SGD_OK;
}

/* Rows of global batch `index` (all processes' shares together). */
static int64_t dp_batch_rows(const sgd_trainer *t, int64_t index)
{
    int64_t left = t->n_train - index * t->full_batch;
    return left < t->full_batch ? left : t->full_batch;
}

/* comm.allreduce, with the step in the message of a failure. */
static sgd_status dp_sum(sgd_trainer *t, float *f, size_t nf, double *d, size_t nd, int64_t step, const char *what)
{
    sgd_error_clear();
    t->in_callback = true;
    sgd_status st = t->comm.allreduce(f, nf, d, nd, t->comm.user);
    t->in_callback = false;
    if (st == SGD_OK)
        return SGD_OK;
    t->stop = SGD_TRAINER_FAILED;
    if (sgd_error_last()[0] == '\0')
        return sgd__err(st, "sgd_trainer_fit: step %lld: %s: the allreduce failed (%s)", (long long)step, what,
                        sgd_status_str(st));
    sgd__err_prefix("sgd_trainer_fit: step %lld: %s", (long long)step, what);
    return st;
}

/*
 * After a sum whose first double counts the processes that failed: the
 * failing process returns its own status (its message restored from
 * `saved`), the others SGD_ECANCELED.
 */
static sgd_status dp_failed(sgd_trainer *t, int64_t step, double failed, sgd_status mine, const char *saved,
                            const char *what)
{
    t->stop = SGD_TRAINER_FAILED;
    if (mine != SGD_OK)
        return sgd__err(mine, "%s (process %d of %d; every process stops)", saved, (int)t->comm.rank,
                        (int)t->comm.size);
    return sgd__err(SGD_ECANCELED,
                    "sgd_trainer_fit: step %lld: %.0f of %d processes failed %s (each says why in its own message); "
                    "every process stops",
                    (long long)step, failed, (int)t->comm.size, what);
}

/* Before a forward pass: process r > 0 draws its dropout masks from a stream derived from the shared one and r. */
static void dp_share_rng(sgd_trainer *t)
{
    if (t->comm.rank == 0)
        return;
    uint64_t s[4];
    if (sgd_model_get_rng_state(t->model, s) != SGD_OK)
        return;
    uint64_t x = s[0] ^ (s[1] << 17 | s[1] >> 47) ^ (s[2] << 31 | s[2] >> 33) ^ (s[3] << 47 | s[3] >> 17);
    sgd__rng r;
    sgd__rng_seed(&r, x ^ ((uint64_t)t->comm.rank * 0x9e3779b97f4a7c15ULL));
    if ((r.s[0] | r.s[1] | r.s[2] | r.s[3]) != 0)
        sgd_model_set_rng_state(t->model, r.s);
}

/*
 * The gradient sum of a step: this process's share of batch b weighted by
 * its rows (rows / batch rows), so that the sum is the whole batch's mean
 * gradient; the loss likewise. `local` is this process's failure, if any.
 */
static sgd_status dp_reduce(sgd_trainer *t, const sgd_batch *b, int64_t step, sgd_status local, double *loss)
{
    char saved[512];
    double d[2] = {0, 0};
    float *g = sgd_model_grads(t->model);
    if (local != SGD_OK) {
        snprintf(saved, sizeof saved, "%s", sgd_error_last());
        memset(g, 0, t->n * sizeof *g);
        d[1] = 1;
    } else if (b->size > 0) {
        double w = (double)b->size / (double)dp_batch_rows(t, b->index);
        float wf = (float)w;
        for (size_t i = 0; i < t->n; i++)
            g[i] *= wf;
        d[0] = w * *loss;
    }
    sgd_status st = dp_sum(t, g, t->n, d, 2, step, "summing the gradients");
    if (st != SGD_OK)
        return st;
    if (d[1] > 0)
        return dp_failed(t, step, d[1], local, saved, "their forward or backward pass");
    *loss = d[0];
    return SGD_OK;
}

/*
 * Makes process 0's decision of the step everyone's, and its dropout
 * generator everyone's; turns a failure of any process (`st`, from the
 * monitor or a callback) into a stop of all.
 */
static sgd_status dp_agree(sgd_trainer *t, int64_t step, sgd_status st, int32_t *act, double *fac, int32_t *why)
{
    char saved[512];
    double d[DP_DECISION];
    memset(d, 0, sizeof d);
    if (st != SGD_OK) {
        snprintf(saved, sizeof saved, "%s", sgd_error_last());
        d[0] = 1;
    }
    if (t->comm.rank == 0) {
        uint64_t rng[4] = {0, 0, 0, 0};
        sgd_model_get_rng_state(t->model, rng);
        if (st == SGD_OK) {
            d[1] = (double)*act;
            d[2] = *fac;
            d[3] = (double)(*why + 1);
        }
        for (int i = 0; i < 4; i++)
            dp_put_u64(d + 4 + 2 * i, rng[i]);
    }
    sgd_status sst = dp_sum(t, NULL, 0, d, DP_DECISION, step, "agreeing on the step's decision");
    if (sst != SGD_OK)
        return sst;
    if (d[0] > 0)
        return dp_failed(t, step, d[0], st, saved, "to observe or decide the step");
    *act = (int32_t)d[1];
    *fac = d[2];
    *why = (int32_t)d[3] - 1;
    uint64_t rng[4];
    for (int i = 0; i < 4; i++)
        rng[i] = dp_get_u64(d + 4 + 2 * i);
    if (t->comm.rank != 0 && (rng[0] | rng[1] | rng[2] | rng[3]) != 0 &&
        (sst = sgd_model_set_rng_state(t->model, rng)) != SGD_OK) {
        t->stop = SGD_TRAINER_FAILED;
        return sst;
    }
    return SGD_OK;
}

/*
 * After a step's forward pass: the model's buffers (batchnorm's running
 * statistics and counters) become process 0's on every process, as torch's
 * DistributedDataParallel broadcasts them (broadcast_buffers): every process
 * then evaluates with the same statistics and process 0's checkpoint holds
 * them. Counters travel as doubles (exact below 2^53).
 */
static sgd_status dp_share_buffers(sgd_trainer *t, int64_t step)
{
    if (t->buf_nf == 0 && t->buf_nd == 0)
        return SGD_OK;
    bool root = t->comm.rank == 0;
    size_t fi = 0, di = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            sgd_status st = dp_sum(t, t->buf_f, t->buf_nf, t->buf_d, t->buf_nd, step, "sharing the model's buffers");
            if (st != SGD_OK)
                return st;
            fi = di = 0;
        }
        for (size_t i = 0; i < sgd_model_num_tensors(t->model); i++) {
            sgd_tensor_info ti;
            sgd_tensor_info_init(&ti);
            if (sgd_model_tensor_info(t->model, i, &ti) != SGD_OK || ti.role != SGD_TENSOR_BUFFER)
                continue;
            if (ti.dtype == SGD_DTYPE_F32) {
                if (fi + ti.numel > t->buf_nf)
                    return sgd__err(SGD_EINTERNAL, "sgd_trainer_fit: the model's buffers changed size");
                float *v = ti.data;
                if (pass == 1)
                    memcpy(v, t->buf_f + fi, ti.numel * sizeof *v);
                else if (root)
                    memcpy(t->buf_f + fi, v, ti.numel * sizeof *v);
                else
                    memset(t->buf_f + fi, 0, ti.numel * sizeof *v);
                fi += ti.numel;
            } else {
                if (di + ti.numel > t->buf_nd)
                    return sgd__err(SGD_EINTERNAL, "sgd_trainer_fit: the model's buffers changed size");
                int64_t *v = ti.data;
                for (size_t k = 0; k < ti.numel; k++) {
                    if (pass == 1)
                        v[k] = (int64_t)t->buf_d[di + k];
                    else
                        t->buf_d[di + k] = root ? (double)v[k] : 0.0;
                }
                di += ti.numel;
            }
        }
    }
    return SGD_OK;
}

/* A stop asked for by any process's progress callback stops all. */
static sgd_status dp_agree_stop(sgd_trainer *t, int64_t step, bool *stop)
{
    double d[1] = {*stop ? 1.0 : 0.0};
    sgd_status st = dp_sum(t, NULL, 0, d, 1, step, "agreeing on a stop");
    if (st != SGD_OK)
        return st;
    *stop = d[0] > 0;
    return SGD_OK;
}

/* The validation loss and accuracy over every process's share. */
static sgd_status dp_evaluate(sgd_trainer *t, double *loss, double *acc)
{
    char saved[512];
    double d[4] = {0, 0, 0, 0};
    sgd_status st = SGD_OK;
    if (t->val_share != NULL) {
        double l, a;
        if ((st = sgd_model_evaluate(t->model, t->val_share, t->o.eval_batch_size, &l, &a)) != SGD_OK) {
            sgd__err_prefix("sgd_trainer_fit: validation after epoch %lld", (long long)t->c.epoch);
            snprintf(saved, sizeof saved, "%s", sgd_error_last());
            d[0] = 1;
        } else {
            double rows = (double)sgd_dataset_size(t->val_share);
            d[1] = l * rows;
            d[2] = a * rows;
            d[3] = rows;
        }
    }
    sgd_status sst = dp_sum(t, NULL, 0, d, 4, t->c.step - 1, "summing the validation shares");
    if (sst != SGD_OK)
        return sst;
    if (d[0] > 0)
        return dp_failed(t, t->c.step - 1, d[0], st, saved, "to validate");
    *loss = d[1] / d[3];
    *acc = d[2] / d[3];
    return SGD_OK;
}

/* Every process must be at process 0's step, with its budget, when a fit begins. */
static sgd_status dp_check_in_step(sgd_trainer *t, int64_t max_steps)
{
    double d[6];
    memset(d, 0, sizeof d);
    if (t->comm.rank == 0) {
        dp_put_u64(d, (uint64_t)max_steps);
        dp_put_u64(d + 2, (uint64_t)t->c.step);
    }
    /* The ranks' sum and sum of squares: those of 0 .. size - 1 when the ranks are right (a sanity check). */
    d[4] = (double)t->comm.rank;
    d[5] = (double)t->comm.rank * (double)t->comm.rank;
    sgd_status st = dp_sum(t, NULL, 0, d, 6, t->c.step, "checking that the processes are in step");
    if (st != SGD_OK)
        return st;
    int64_t b0 = (int64_t)dp_get_u64(d), s0 = (int64_t)dp_get_u64(d + 2);
    double p = (double)t->comm.size;
    bool ranks_ok = d[4] == p * (p - 1) / 2 && d[5] == (p - 1) * p * (2 * p - 1) / 6;
    double bad[1] = {b0 != max_steps || s0 != t->c.step || !ranks_ok ? 1.0 : 0.0};
    if ((st = dp_sum(t, NULL, 0, bad, 1, t->c.step, "checking that the processes are in step")) != SGD_OK)
        return st;
    if (bad[0] == 0)
        return SGD_OK;
    t->stop = SGD_TRAINER_FAILED;
    if (!ranks_ok)
        return sgd__err(SGD_ESTATE, "sgd_trainer_fit: the ranks of the %d processes are not 0 to %d, each once", (int)t->comm.size,
                        (int)t->comm.size - 1);
    return sgd__err(SGD_ESTATE,
                    "sgd_trainer_fit: the processes are not in step: process 0 is at step %lld with a budget of %lld "
                    "steps, process %d at step %lld with %lld (%.0f of %d differ); every process must call "
                    "sgd_trainer_fit() at the same step with the same budget",
                    (long long)s0, (long long)b0, (int)t->comm.rank, (long long)t->c.step, (long long)max_steps,
                    bad[0], (int)t->comm.size);
}

/* ------------------------------------------------------------ one epoch end */

static sgd_status end_epoch(sgd_trainer *t, bool *stop_early)
{
    *stop_early = false;
    epoch_rec *r = &t->hist[t->c.epoch];
    memset(r, 0, sizeof *r);
    r->train_loss = t->c.ecount > 0 ? t->c.esum / (double)t->c.ecount : NAN;
    r->val_loss = NAN;
    r->val_acc = NAN;
    sgd_status st;
    if (t->val != NULL) {
        /* At the optimizer's evaluation point (schedule-free: the average x, not y where gradients are taken). */
        float *params = sgd_model_params(t->model);
        if ((st = sgd_optim_eval_point(t->optim, params, 1)) != SGD_OK)
            return st;
        if (t->dp)
            st = dp_evaluate(t, &r->val_loss, &r->val_acc);
        else if ((st = sgd_model_evaluate(t->model, t->val, t->o.eval_batch_size, &r->val_loss, &r->val_acc)) != SGD_OK)
            sgd__err_prefix("sgd_trainer_fit: validation after epoch %lld", (long long)t->c.epoch);
        sgd_status back = sgd_optim_eval_point(t->optim, params, 0);
        if (st != SGD_OK)
            return st;
        if (back != SGD_OK)
            return back;
    }
    double metric = t->val != NULL ? r->val_loss : r->train_loss;
    if (t->sched != NULL && sgd_sched_watches_metric(t->sched) && isfinite(metric) && t->c.step > 0) {
        if ((st = sgd_sched_observe(t->sched, t->c.step - 1, metric)) != SGD_OK)
            return st;
    }
    if (t->val != NULL) {
        if (isfinite(r->val_loss) && (isnan(t->c.best) || r->val_loss < t->c.best - t->o.min_delta)) {
            t->c.best = r->val_loss;
            t->c.bad = 0;
        } else {
            t->c.bad++;
        }
        if (t->o.patience > 0 && t->c.bad >= t->o.patience && t->c.epoch + 1 < t->o.epochs)
            *stop_early = true;
    }
    r->lr = t->c.elr;
    r->step = t->c.step;
    r->rescues = t->rescues;
    double now = sgd__now_seconds();
    r->seconds = now - t->t_epoch_start;
    t->t_epoch_start = now;
    r->done = 1;

    sgd_trainer_progress p;
    fill_progress(t, &p, SGD_TRAINER_PHASE_EPOCH_END);
    p.train_loss = r->train_loss;
    p.val_loss = r->val_loss;
    p.val_accuracy = r->val_acc;
    progress_metrics(t, &p);
    t->c.epoch++;
    t->c.batch = 0;
    t->c.esum = 0;
    t->c.ecount = 0;
    p.fraction = (double)t->c.epoch / (double)t->o.epochs;
    bool stop = report(t, &p);
    if (t->dp && (st = dp_agree_stop(t, t->c.step - 1, &stop)) != SGD_OK)
        return st;
    if (stop) {
        t->stop = SGD_TRAINER_CANCELED;
        return sgd__err(SGD_ECANCELED, "sgd_trainer_fit: the progress callback asked to stop after epoch %lld",
                        (long long)(t->c.epoch - 1));
    }
    if (*stop_early) {
        snprintf(t->msg, sizeof t->msg,
                 "epoch %lld: no improvement of the validation loss (best %.6g) for %lld epochs: stopping early",
                 (long long)(t->c.epoch - 1), t->c.best, (long long)t->c.bad);
        notify(t, SGD_TRAINER_EVENT_EARLY_STOP, t->c.step, 0, 1.0, t->c.elr, -1);
    }
    return SGD_OK;
}

/* ------------------------------------------------------------ fit */

/*
 * Gives (loss, gnorm, lr) of step `step` to the monitor and decides what to do
 * about the events it raised: the strongest of the policy's (or the event
 * callback's) actions and of the monitor callbacks' own.
 */
static sgd_status decide(sgd_trainer *t, int64_t step, double loss, double gnorm, double lr, int32_t *act_out,
                         double *fac_out, int32_t *why_out)
{
    static const char fn[] = "sgd_trainer_fit";
    sgd_status st;
    t->nev = 0;
    int32_t mon_action = SGD_MONITOR_CONTINUE;
    double mon_scale = 1.0;
    if ((st = sgd_monitor_observe(t->monitor, loss, gnorm, lr, &mon_action, &mon_scale)) != SGD_OK &&
        st != SGD_ECALLBACK)
        return st;
    if (st == SGD_ECALLBACK) {
        t->stop = SGD_TRAINER_FAILED;
        return st;
    }

    int32_t act = SGD_MONITOR_CONTINUE;
    double fac = 1.0;
    int32_t why_kind = -1;
    for (int i = 0; i < t->nev; i++) {
        const sgd_monitor_event *ev = &t->ev[i];
        if (ev->kind >= 0 && ev->kind < 8)
            t->events[ev->kind]++;
        if (alarm_kind(ev->kind))
            t->alarm_seen = 1;
        double f;
        int32_t a = policy(t, ev, &f);
        if (t->on_event != NULL) {
            sgd_trainer_event e;
            event_fill(t, &e, SGD_TRAINER_EVENT_MONITOR, step, a, f, lr, -1);
            e.monitor = ev;
            snprintf(t->msg, sizeof t->msg, "step %lld: %s (%s %.3g, threshold %.3g): proposed %s", (long long)step,
                     sgd_monitor_kind_name(ev->kind), ev->detail, ev->statistic, ev->threshold,
                     sgd_monitor_action_name(a));
            t->in_callback = true;
            int32_t r = t->on_event(&e, &f, t->event_user);
            t->in_callback = false;
            if (r < SGD_MONITOR_CONTINUE || r > SGD_MONITOR_STOP || !(f > 0) || !isfinite(f)) {
                t->stop = SGD_TRAINER_FAILED;
                return sgd__err(SGD_ECALLBACK,
                                "%s: step %lld: the event callback answered action %d with factor %g for a %s "
                                "event: expected an sgd_monitor_action and a finite factor > 0",
                                fn, (long long)step, (int)r, f, sgd_monitor_kind_name(ev->kind));
            }
            a = r;
        }
        if (a > act) {
            act = a;
            fac = f;
            why_kind = ev->kind;
        }
    }
    if (mon_action > act) {
        act = mon_action;
        fac = mon_scale;
    }
    *act_out = act;
    *fac_out = fac;
    *why_out = why_kind;
    return SGD_OK;
}


static sgd_status fit_loop(sgd_trainer *t, int64_t max_steps)
{
    static const char fn[] = "sgd_trainer_fit";
    sgd_status st;
    int64_t taken = 0;
    float *params = sgd_model_params(t->model);
    float *grads = sgd_model_grads(t->model);
    for (;;) {
        if (t->c.epoch >= t->o.epochs) {
            t->stop = SGD_TRAINER_COMPLETED;
            return SGD_OK;
        }
        if (max_steps > 0 && taken >= max_steps) {
            t->stop = SGD_TRAINER_BUDGET;
            return SGD_OK;
        }
        if (t->lpos_epoch != t->c.epoch || t->lpos_batch != t->c.batch) {
            if ((st = sgd_loader_seek(t->loader, t->c.epoch, t->c.batch)) != SGD_OK)
                return st;
            t->lpos_epoch = t->c.epoch;
            t->lpos_batch = t->c.batch;
        }
        if ((st = guard_check(t)) != SGD_OK)
            return st;
        sgd_batch b;
        if ((st = sgd_loader_next(t->loader, &b)) != SGD_OK)
            return st;
        if (b.index >= t->nb) { /* the end-of-epoch marker (a sharded loader's empty share has size 0 too) */
            t->lpos_epoch++;
            t->lpos_batch = 0;
            bool early;
            if ((st = end_epoch(t, &early)) != SGD_OK)
                return st;
            t->lpos_epoch = t->c.epoch; /* end_epoch moved the counters to the next epoch */
            if (early) {
                t->stop = SGD_TRAINER_EARLY_STOP;
                return SGD_OK;
            }
            continue;
        }
        t->lpos_batch++;
        int64_t step = t->c.step;
        /* Per-sample state (a recurrent layer's hidden state) starts each epoch from zero. */
        if (t->c.batch == 0 && (st = sgd_model_reset_state(t->model)) != SGD_OK)
            return st;
        t->c.step++;
        t->c.batch++;
        t->since++;
        taken++;
        t->batches_run++;
        t->samples_since_report += t->dp ? dp_batch_rows(t, b.index) : b.size;

        double lr_base;
        if ((st = base_lr(t, step, &lr_base)) != SGD_OK)
            return st;
        double lr = lr_base * t->guard_scale;

        if (step >= t->skip_lo && step <= t->skip_hi) {
            t->skipped++;
            t->c.elr = lr;
            if (step == t->skip_hi)
                t->skip_lo = t->skip_hi = -1;
            continue;
        }

        if (t->dp)
            dp_share_rng(t);
        if ((st = sgd_model_zero_grad(t->model)) != SGD_OK)
            return st;
        double loss = 0;
        sgd_status local = SGD_OK;
        if (b.size > 0 && (st = sgd_model_forward_backward(t->model, b.x, b.labels, b.targets, b.size, &loss)) != SGD_OK) {
            sgd__err_prefix("%s: step %lld", fn, (long long)step);
            if (!t->dp)
                return st;
            local = st;
        }
        if (t->dp && (st = dp_reduce(t, &b, step, local, &loss)) != SGD_OK)
            return st;
        sgd__gradstat gs;
        sgd__grad_scan(grads, t->n, 0.0f, &gs);
        double gnorm;
        if (isfinite(gs.sumsq)) {
            gnorm = sqrt(gs.sumsq);
        } else {
            size_t bad = sgd__grad_scan_exact(grads, t->n, 0.0f, &gs);
            gnorm = bad < t->n ? (isnan(grads[bad]) ? NAN : INFINITY) : sqrt(gs.sumsq);
        }

        int32_t act = SGD_MONITOR_CONTINUE;
        double fac = 1.0;
        int32_t why_kind = -1;
        st = decide(t, step, loss, gnorm, lr, &act, &fac, &why_kind);
        if (t->dp)
            st = dp_agree(t, step, st, &act, &fac, &why_kind);
        if (st == SGD_OK && t->dp)
            st = dp_share_buffers(t, step);
        if (st != SGD_OK)
            return st;

        char why[160];
        if (why_kind >= 0) {
            const sgd_monitor_event *ev = NULL;
            for (int i = 0; i < t->nev; i++)
                if (t->ev[i].kind == why_kind)
                    ev = &t->ev[i];
            snprintf(why, sizeof why, "%s (loss %.4g)", sgd_monitor_kind_name(why_kind), ev ? ev->loss : loss);
        } else {
            snprintf(why, sizeof why, "a monitor callback's %s (loss %.4g)", sgd_monitor_action_name(act), loss);
        }

        if (act == SGD_MONITOR_STOP) {
            t->last_loss = loss;
            snprintf(t->msg, sizeof t->msg, "step %lld: %s: stopping as asked", (long long)step, why);
            notify(t, SGD_TRAINER_EVENT_STOPPED, step, SGD_MONITOR_STOP, 1.0, lr, -1);
            t->stop = SGD_TRAINER_CANCELED;
            return sgd__err(SGD_ECANCELED, "%s: %s", fn, t->msg);
        }
        if (act == SGD_MONITOR_ROLLBACK) {
            t->last_loss = loss;
            if ((st = rollback(t, step, fac, why, lr)) != SGD_OK)
                return st;
            continue;
        }
        if (act == SGD_MONITOR_SCALE_LR) {
            if (fac < 1.0 && (st = rescue_budget(t, step, why, lr)) != SGD_OK)
                return st;
            double before = lr;
            t->guard_scale *= fac;
            lr = lr_base * t->guard_scale;
            snprintf(t->msg, sizeof t->msg, "step %lld: %s: learning rate x%.3g (%.3g -> %.3g)%s", (long long)step, why,
                     fac, before, lr, fac < 1.0 ? "" : " (not a rescue)");
            if (fac < 1.0)
                notify(t, SGD_TRAINER_EVENT_RESCUE, step, SGD_MONITOR_SCALE_LR, fac, before, -1);
        }

        /* Record the loss of this batch. */
        t->last_loss = loss;
        if (isfinite(loss)) {
            t->c.esum += loss;
            t->c.ecount++;
            t->c.ring[t->c.rpos] = loss;
            t->c.rpos = (t->c.rpos + 1) % RING;
            if (t->c.rcount < RING)
                t->c.rcount++;
        }
        t->c.elr = lr;

        if (act == SGD_MONITOR_SKIP) {
            t->skipped++;
        } else {
            if (t->mom_name != NULL) {
                double m;
                int32_t set;
                if ((st = sgd_sched_momentum(t->sched, step, &m, &set)) != SGD_OK)
                    return st;
                if (set && (st = sgd_optim_set(t->optim, t->mom_name, m)) != SGD_OK)
                    return st;
            }
            sgd_optim_step_info info;
            sgd_optim_step_info_init(&info);
            st = sgd_optim_step(t->optim, params, grads, lr, &info);
            if (st == SGD_EDIVERGED) {
                t->stop = SGD_TRAINER_DIVERGED;
                sgd__err_prefix("%s: step %lld", fn, (long long)step);
                return st;
            }
            if (st != SGD_OK) {
                t->stop = SGD_TRAINER_FAILED;
                sgd__err_prefix("%s: step %lld", fn, (long long)step);
                return st;
            }
            if (info.applied)
                t->updates++;
            else
                t->skipped++;
        }

        /* An unguarded (or overridden) run that the monitor calls diverged. */
        if (t->o.stop_on_divergence) {
            int32_t verdict = SGD_MONITOR_HEALTHY;
            sgd_monitor_get_verdict(t->monitor, &verdict);
            if (verdict == SGD_MONITOR_DIVERGED) {
                sgd_monitor_counters mc;
                memset(&mc, 0, sizeof mc);
                mc.struct_size = sizeof mc;
                sgd_monitor_get_counters(t->monitor, &mc);
                snprintf(t->msg, sizeof t->msg,
                         "step %lld: the loss diverged (loss %.4g, initial %.4g, first alarm at step %lld) at lr %.3g%s",
                         (long long)step, loss, mc.initial, (long long)mc.first_alarm, lr,
                         t->o.guard ? "" : "; lower the learning rate, or train with the guard on");
                notify(t, SGD_TRAINER_EVENT_DIVERGED, step, SGD_MONITOR_STOP, 1.0, lr, -1);
                t->stop = SGD_TRAINER_DIVERGED;
                return sgd__err(SGD_EDIVERGED, "%s: %s", fn, t->msg);
            }
        }

        if ((t->progress != NULL || t->dp) && t->c.step % t->o.progress_interval == 0) {
            sgd_trainer_progress p;
            bool stop = false;
            if (t->progress != NULL) {
                fill_progress(t, &p, SGD_TRAINER_PHASE_STEP);
                stop = report(t, &p);
            }
            if (t->dp && (st = dp_agree_stop(t, step, &stop)) != SGD_OK)
                return st;
            if (stop) {
                t->stop = SGD_TRAINER_CANCELED;
                return sgd__err(SGD_ECANCELED, "%s: %s asked to stop at step %lld", fn,
                                t->dp ? "a progress callback (of this process or another)" : "the progress callback",
                                (long long)step);
            }
        }
    }
}

sgd_status sgd_trainer_fit(sgd_trainer *t, int64_t max_steps)
{
    static const char fn[] = "sgd_trainer_fit";
    if (t == NULL)
        return sgd__err(SGD_EINVAL, "%s: trainer is NULL", fn);
    if (t->in_callback || t->in_fit)
        return sgd__err(SGD_ESTATE, "%s: called from a trainer callback", fn);
    if (max_steps < 0)
        return sgd__err(SGD_EINVAL, "%s: max_steps=%lld: must be >= 0 (0: no limit)", fn, (long long)max_steps);
    /* Steps are taken at the training point (a host may have left a schedule-free optimizer at its evaluation point). */
    sgd_status est = sgd_optim_eval_point(t->optim, sgd_model_params(t->model), 0);
    if (est != SGD_OK)
        return est;
    t->in_fit = true;
    t->stop = SGD_TRAINER_NOT_RUN;
    double now = sgd__now_seconds();
    t->t_start = t->t_last_report = t->t_epoch_start = now;
    t->samples_since_report = 0;
    t->rate_ema = 0;
    sgd_status st = t->dp ? dp_check_in_step(t, max_steps) : SGD_OK;
    if (st == SGD_OK)
        st = fit_loop(t, max_steps);
    if (st != SGD_OK && t->stop == SGD_TRAINER_NOT_RUN)
        t->stop = SGD_TRAINER_FAILED;
    if (t->progress != NULL) {
        char saved[512];
        snprintf(saved, sizeof saved, "%s", sgd_error_last());
        sgd_trainer_progress p;
        fill_progress(t, &p, SGD_TRAINER_PHASE_DONE);
        report(t, &p);
        if (st != SGD_OK)
            sgd__err(st, "%s", saved);
    }
    t->in_fit = false;
    return st;
}

/* ------------------------------------------------------------ state export/import */

/*
 * Layout (all little-endian):
 *   header   HEADER_BYTES: tag "SGDTRAIN", u32 version, u32 flags (bit 0: guard),
 *            u64 total size, u64 parameters, u64 optimizer arrays, u64 their bytes,
 *            u64 schedule doubles, u64 monitor doubles, u64 epochs, u64 batches
 *            per epoch, u64 snapshot bytes
 *   counters COUNTERS_BYTES
 *   persist  PERSIST_BYTES (guard scale, rescues, ...)
 *   history  epochs * EPOCH_BYTES
 *   slots    with the guard: 2 * snapshot bytes
 */
#define HEADER_BYTES ((size_t)88)
#define PERSIST_BYTES ((size_t)8 * 24u)
static const unsigned char tag[8] = {'S', 'G', 'D', 'T', 'R', 'A', 'I', 'N'};

static size_t trainer_state_layout_size(const sgd_trainer *t)
{
    size_t s = HEADER_BYTES + COUNTERS_BYTES + PERSIST_BYTES, h;
    if (!sgd__mul_size((size_t)t->o.epochs, EPOCH_BYTES, &h) || !sgd__add_size(s, h, &s))
        return 0;
    if (t->o.guard) {
        if (!sgd__mul_size(t->snap_bytes, 2, &h) || !sgd__add_size(s, h, &s))
            return 0;
    }
    return s;
}

size_t sgd_trainer_state_size(const sgd_trainer *t)
{
    return t ? t->state_bytes : 0;
}

static void persist_write(const sgd_trainer *t, unsigned char *p)
{
    sgd__put_f64(p + 0, t->guard_scale);
    sgd__put_i64(p + 8, t->rescues);
    sgd__put_i64(p + 16, t->rollbacks);
    sgd__put_i64(p + 24, t->skip_lo);
    sgd__put_i64(p + 32, t->skip_hi);
    sgd__put_i64(p + 40, t->updates);
    sgd__put_i64(p + 48, t->skipped);
    sgd__put_i64(p + 56, t->batches_run);
    for (int i = 0; i < 8; i++)
        sgd__put_i64(p + 64 + 8 * i, t->events[i]);
    sgd__put_f64(p + 128, t->last_loss);
    sgd__put_i64(p + 136, t->good);
    sgd__put_i64(p + 144, t->snap_valid[0]);
    sgd__put_i64(p + 152, t->snap_valid[1]);
    sgd__put_i64(p + 160, t->since);
    sgd__put_i64(p + 168, t->alarm_seen);
    sgd__put_i64(p + 176, 0);
    sgd__put_i64(p + 184, 0);
}

static void epoch_write(unsigned char *p, const epoch_rec *r)
{
    sgd__put_i64(p + 0, r->done);
    sgd__put_f64(p + 8, r->train_loss);
    sgd__put_f64(p + 16, r->val_loss);
    sgd__put_f64(p + 24, r->val_acc);
    sgd__put_f64(p + 32, r->lr);
    sgd__put_i64(p + 40, r->step);
    sgd__put_i64(p + 48, r->rescues);
    sgd__put_f64(p + 56, r->seconds);
}

static void epoch_read(epoch_rec *r, const unsigned char *p)
{
    r->done = sgd__get_i64(p + 0);
    r->train_loss = sgd__get_f64(p + 8);
    r->val_loss = sgd__get_f64(p + 16);
    r->val_acc = sgd__get_f64(p + 24);
    r->lr = sgd__get_f64(p + 32);
    r->step = sgd__get_i64(p + 40);
    r->rescues = sgd__get_i64(p + 48);
    r->seconds = sgd__get_f64(p + 56);
}

static void header_write(const sgd_trainer *t, unsigned char *p)
{
    memcpy(p, tag, 8);
    sgd__put_u32(p + 8, SGD_TRAINER_STATE_VERSION);
    sgd__put_u32(p + 12, t->o.guard ? 1u : 0u);
    sgd__put_u64(p + 16, t->state_bytes);
    sgd__put_u64(p + 24, t->n);
    sgd__put_u64(p + 32, t->n_ostate);
    sgd__put_u64(p + 40, t->ostate_total);
    sgd__put_u64(p + 48, t->sched_n);
    sgd__put_u64(p + 56, t->mon_n);
    sgd__put_u64(p + 64, (uint64_t)t->o.epochs);
    sgd__put_u64(p + 72, (uint64_t)t->nb);
    sgd__put_u64(p + 80, t->snap_bytes);
}

sgd_status sgd_trainer_state_export(const sgd_trainer *t, void *buf, size_t bytes)
{
    static const char fn[] = "sgd_trainer_state_export";
    if (t == NULL || buf == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, t == NULL ? "trainer" : "buf");
    if (t->in_callback)
        return sgd__err(SGD_ESTATE, "%s: called from a trainer callback", fn);
    if (bytes != t->state_bytes)
        return sgd__err(SGD_ESHAPE, "%s: bytes=%zu: the state is %zu bytes (sgd_trainer_state_size())", fn, bytes,
                        t->state_bytes);
    counters c = t->c;
    sgd_status st = sgd_model_get_rng_state(t->model, c.rng);
    if (st != SGD_OK)
        return st;
    unsigned char *p = buf;
    header_write(t, p);
    p += HEADER_BYTES;
    counters_write(p, &c);
    p += COUNTERS_BYTES;
    persist_write(t, p);
    p += PERSIST_BYTES;
    for (int64_t e = 0; e < t->o.epochs; e++, p += EPOCH_BYTES)
        epoch_write(p, &t->hist[e]);
    if (t->o.guard) {
        for (int k = 0; k < 2; k++, p += t->snap_bytes) {
            if (t->snap_valid[k])
                memcpy(p, t->snap[k], t->snap_bytes);
            else
                memset(p, 0, t->snap_bytes);
        }
    }
    return SGD_OK;
}

sgd_status sgd_trainer_state_import(sgd_trainer *t, const void *buf, size_t bytes)
{
    static const char fn[] = "sgd_trainer_state_import";
    if (t == NULL || buf == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, t == NULL ? "trainer" : "buf");
    if (t->in_callback || t->in_fit)
        return sgd__err(SGD_ESTATE, "%s: called from a trainer callback", fn);
    const unsigned char *p = buf;
    if (bytes < HEADER_BYTES)
        return sgd__err(SGD_EFORMAT, "%s: %zu bytes: shorter than the %zu-byte header", fn, bytes, HEADER_BYTES);
    if (memcmp(p, tag, 8) != 0)
        return sgd__err(SGD_EFORMAT, "%s: not a trainer state (bad tag)", fn);
    uint32_t version = sgd__get_u32(p + 8);
    if (version != SGD_TRAINER_STATE_VERSION)
        return sgd__err(SGD_EVERSION, "%s: state version %u: this library reads version %d", fn, (unsigned)version,
                        SGD_TRAINER_STATE_VERSION);
    uint32_t flags = sgd__get_u32(p + 12);
    if (flags > 1)
        return sgd__err(SGD_EFORMAT, "%s: unknown flags 0x%x", fn, (unsigned)flags);
    struct {
        const char *what;
        uint64_t got, want;
    } dims[] = {
        {"guard", flags & 1u, t->o.guard ? 1u : 0u},
        {"parameters", sgd__get_u64(p + 24), t->n},
        {"optimizer state arrays", sgd__get_u64(p + 32), t->n_ostate},
        {"optimizer state bytes", sgd__get_u64(p + 40), t->ostate_total},
        {"schedule state doubles", sgd__get_u64(p + 48), t->sched_n},
        {"monitor state doubles", sgd__get_u64(p + 56), t->mon_n},
        {"epochs", sgd__get_u64(p + 64), (uint64_t)t->o.epochs},
        {"batches per epoch", sgd__get_u64(p + 72), (uint64_t)t->nb},
        {"snapshot bytes", sgd__get_u64(p + 80), t->snap_bytes},
        {"total size", sgd__get_u64(p + 16), t->state_bytes},
    };
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++)
        if (dims[i].got != dims[i].want)
            return sgd__err(SGD_ESHAPE, "%s: the state is for %s %llu but this trainer has %llu", fn, dims[i].what,
                            (unsigned long long)dims[i].got, (unsigned long long)dims[i].want);
    if (bytes != t->state_bytes)
        return sgd__err(SGD_ESHAPE, "%s: bytes=%zu: this trainer's state is %zu bytes", fn, bytes, t->state_bytes);
    p += HEADER_BYTES;
    counters c;
    counters_read(&c, p);
    sgd_status st = counters_check(t, &c, fn, "counters");
    if (st != SGD_OK)
        return st;
    p += COUNTERS_BYTES;
    const unsigned char *per = p;
    double gscale = sgd__get_f64(per + 0);
    int64_t rescues = sgd__get_i64(per + 8), rollbacks = sgd__get_i64(per + 16);
    int64_t skip_lo = sgd__get_i64(per + 24), skip_hi = sgd__get_i64(per + 32);
    int64_t updates = sgd__get_i64(per + 40), skipped = sgd__get_i64(per + 48), run = sgd__get_i64(per + 56);
    int64_t good = sgd__get_i64(per + 136), valid0 = sgd__get_i64(per + 144), valid1 = sgd__get_i64(per + 152);
    int64_t since = sgd__get_i64(per + 160), alarm = sgd__get_i64(per + 168);
    if (!(gscale > 0 && isfinite(gscale)))
        return sgd__err(SGD_EFORMAT, "%s: guard scale=%g: must be finite and > 0", fn, gscale);
    if (rescues < 0 || rollbacks < 0 || rollbacks > rescues)
        return sgd__err(SGD_EFORMAT, "%s: rescues=%lld, rollbacks=%lld: must be >= 0 with rollbacks <= rescues", fn,
                        (long long)rescues, (long long)rollbacks);
    if (!((skip_lo == -1 && skip_hi == -1) || (skip_hi >= 0 && skip_lo <= skip_hi)))
        return sgd__err(SGD_EFORMAT, "%s: skip window [%lld, %lld]: must be [-1, -1] or ordered", fn,
                        (long long)skip_lo, (long long)skip_hi);
    if (updates < 0 || skipped < 0 || run < 0)
        return sgd__err(SGD_EFORMAT, "%s: negative step counters", fn);
    int64_t evs[8];
    for (int i = 0; i < 8; i++) {
        evs[i] = sgd__get_i64(per + 64 + 8 * i);
        if (evs[i] < 0)
            return sgd__err(SGD_EFORMAT, "%s: event count %d=%lld: must be >= 0", fn, i, (long long)evs[i]);
    }
    if (good < 0 || good > 1 || valid0 < 0 || valid0 > 1 || valid1 < 0 || valid1 > 1 || since < 0 || alarm < 0 ||
        alarm > 1)
        return sgd__err(SGD_EFORMAT, "%s: snapshot bookkeeping (target %lld, valid %lld/%lld, since %lld, alarm %lld) "
                                     "out of range",
                        fn, (long long)good, (long long)valid0, (long long)valid1, (long long)since, (long long)alarm);
    if (!t->o.guard && (valid0 || valid1))
        return sgd__err(SGD_EFORMAT, "%s: snapshots marked valid without the guard", fn);
    if ((valid0 || valid1) && !(good == 0 ? valid0 : valid1))
        return sgd__err(SGD_EFORMAT, "%s: a snapshot candidate without a rollback target", fn);
    p += PERSIST_BYTES;
    const unsigned char *hist = p;
    for (int64_t e = 0; e < t->o.epochs; e++) {
        epoch_rec r;
        epoch_read(&r, hist + (size_t)e * EPOCH_BYTES);
        if (r.done < 0 || r.done > 1 || (r.done && e >= c.epoch) || (!r.done && e < c.epoch) || r.step < 0 ||
            r.rescues < 0)
            return sgd__err(SGD_EFORMAT, "%s: history of epoch %lld is inconsistent with epoch %lld", fn, (long long)e,
                            (long long)c.epoch);
    }
    p += (size_t)t->o.epochs * EPOCH_BYTES;

    /* Validate the snapshots by loading each into the objects and putting the live state back. */
    unsigned char *live = NULL;
    if (t->o.guard && (valid0 || valid1)) {
        live = sgd__alloc_aligned(&t->alloc, t->snap_bytes, 1);
        unsigned char *slot = sgd__alloc_aligned(&t->alloc, t->snap_bytes, 1);
        if (live == NULL || slot == NULL) {
            sgd__free_aligned(&t->alloc, live);
            sgd__free_aligned(&t->alloc, slot);
            return sgd__err(SGD_ENOMEM, "%s: out of memory for a %zu-byte scratch snapshot", fn, t->snap_bytes);
        }
        counters saved_c = t->c;
        if ((st = snapshot_take(t, live)) != SGD_OK) {
            sgd__free_aligned(&t->alloc, live);
            sgd__free_aligned(&t->alloc, slot);
            return st;
        }
        for (int k = 0; k < 2 && st == SGD_OK; k++) {
            if (!(k == 0 ? valid0 : valid1))
                continue;
            memcpy(slot, p + (size_t)k * t->snap_bytes, t->snap_bytes);
            st = snapshot_restore(t, slot, fn, k == 0 ? "snapshot 0" : "snapshot 1");
        }
        sgd_status back = snapshot_restore(t, live, fn, "restoring the live state");
        t->c = saved_c;
        sgd__free_aligned(&t->alloc, slot);
        sgd__free_aligned(&t->alloc, live);
        if (st != SGD_OK)
            return st;
        if (back != SGD_OK)
            return back;
    }

    /* All checked: commit. */
    if ((st = sgd_model_set_rng_state(t->model, c.rng)) != SGD_OK)
        return st;
    t->c = c;
    t->guard_scale = gscale;
    t->rescues = rescues;
    t->rollbacks = rollbacks;
    t->skip_lo = skip_lo;
    t->skip_hi = skip_hi;
    t->updates = updates;
    t->skipped = skipped;
    t->batches_run = run;
    for (int i = 0; i < 8; i++)
        t->events[i] = evs[i];
    t->last_loss = sgd__get_f64(per + 128);
    t->good = good;
    t->snap_valid[0] = valid0;
    t->snap_valid[1] = valid1;
    t->since = since;
    t->alarm_seen = alarm;
    for (int64_t e = 0; e < t->o.epochs; e++)
        epoch_read(&t->hist[e], hist + (size_t)e * EPOCH_BYTES);
    if (t->o.guard) {
        for (int k = 0; k < 2; k++)
            memcpy(t->snap[k], p + (size_t)k * t->snap_bytes, t->snap_bytes);
    }
    /* Force the loader to the imported position before the next batch. */
    t->lpos_epoch = -1;
    t->lpos_batch = -1;
    t->stop = SGD_TRAINER_NOT_RUN;
    return SGD_OK;
}
