/*
 * The loss-curve health monitor. docs/monitor.md explains the statistics.
 *
 * Everything acts on y = log(loss - floor). Per observation the work is a
 * log, a sqrt and a few dozen flops; the memory is the fixed-size struct below.
 * SPDX-License-Identifier: MIT
 */
#include "sgdlab/monitor.h"

#include "core/abi.h"
#include "core/internal.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

/* sigma = C_ABS * E|y_t - y_{t-1}| for Gaussian noise (the difference has sd sqrt(2) sigma). */
#define C_ABS 0.886226925452758
/* Step differences are clipped at WINSOR_K sigma (or log(spike_ratio)) before they move sigma. */
#define WINSOR_K 4.0
/* Prior on sigma: NOISE_PRIOR with the weight of NOISE_PRIOR_N observations. */
#define NOISE_PRIOR 0.1
#define NOISE_PRIOR_N 4.0
/* log of the smallest loss - floor considered; below counts as this (a perfect fit). */
#define Y_MIN (-700.0)
/* Drift: observations in a row above its bound before it is raised. */
#define DRIFT_RUN 3
/* Ring of the last spike steps (oscillation_spikes <= MAX_SPIKES). */
#define MAX_SPIKES 32
#define MAX_DIV_WINDOW 32

/* The whole curve, kept as up to NBINS block means of the log-loss (sgd_monitor_finish() judges
   short logs on it): block sizes double when the bins are full, so memory is fixed. */
#define NBINS 64

#define STATE_TAG 1296387923.0 /* "SGDM" as a number */
#define STATE_VERSION 2.0

/* Flags kept in the state. */
enum {
    F_STARTED = 1u << 0,   /* a finite observation was seen */
    F_NONFINITE = 1u << 1, /* a non-finite value was seen */
    F_DIVERGED = 1u << 2,  /* a divergence was raised (sticky; confirmed by ymax) */
    F_DIV_ACTIVE = 1u << 3,
    F_OSC_ACTIVE = 1u << 4,
    F_STAG_ACTIVE = 1u << 5,
    F_PLATEAU_ACTIVE = 1u << 6,
    F_IN_SPIKE = 1u << 7,
    F_SPIKE_WATCH = 1u << 8, /* a spike is waiting to be recovered from */
    /* 0.2 */
    F_NF_RUN = 1u << 9,      /* the last observation was non-finite (one event per run of them) */
    F_GIN_SPIKE = 1u << 10,  /* the gradient norm is in a spike excursion */
    F_ESPIKE_DONE = 1u << 11, /* the early spike was checked (spike_recovery_steps after it) */
    F_FINISHED = 1u << 12,   /* sgd_monitor_finish() concluded the log; cleared by an observation */
    F_ALL = (1u << 13) - 1u,
    F_V1_ALL = (1u << 9) - 1u,
};

/* Everything learnt from observations; exported as doubles, field by field. */
typedef struct mstate {
    int64_t steps;     /* observations */
    int64_t finite;    /* finite observations used by the statistics */
    int64_t nonfinite; /* observations with a non-finite loss or gradient norm */
    uint32_t flags;
    uint32_t hist;  /* divergence: bit i = observation t-i was above the bound */
    int32_t ninit;  /* observations in yinit */
    int32_t nspike; /* valid entries in spikes */
    int32_t spike_head;
    int32_t verdict;
    int64_t since_best; /* observations since the last significant new best */
    int64_t osc_run;    /* consecutive observations with the level above the oscillation bound */
    int64_t first_alarm;
    int64_t spike_t; /* F_SPIKE_WATCH: the step of that spike */
    int64_t events[SGD_MONITOR_KIND_COUNT];
    int64_t first_event[SGD_MONITOR_KIND_COUNT];
    int64_t spikes[MAX_SPIKES];
    double y0;    /* first finite log-loss: the divergence reference */
    double yinit; /* mean of the first initial_steps log-losses */
    double yprev; /* previous finite log-loss */
    double level; /* smoothed log-loss */
    double noise; /* sigma */
    double best;  /* lowest level */
    double e1, c1; /* fast EMA of the level, and of the time index */
    double e2, c2; /* slow EMA of the level, and of the time index */
    double bslow;  /* lowest e2 */
    double bfast;  /* lowest e1 */
    double ymax;   /* highest finite log-loss */
    double spike_pre; /* F_SPIKE_WATCH: the smoothed log-loss before that spike */
    /* 0.2 */
    int64_t pstep;             /* the producer's step of the current observation, or -1 */
    int64_t first_alarm_pstep; /* the producer's step of first_alarm, or -1 */
    int64_t spike_pstep;       /* the producer's step of spike_t, or -1 */
    int64_t espike_t;          /* the first spike raised before any progress, or -1 */
    int64_t espike_pstep;      /* its producer step, or -1 */
    int64_t below_floor;       /* finite observations at or below the floor */
    int64_t gcount;            /* finite gradient norms seen */
    int64_t nbins;             /* closed bins */
    int64_t bsize;             /* observations per closed bin (a power of 2) */
    int64_t ccnt;              /* observations in the open bin */
    int64_t drift_run;         /* consecutive observations above the drift bound */
    double glevel, gnoise, gprev; /* log gradient norm: smoothed, noise, previous */
    double csum;                  /* sum of the open bin */
    double bsum[NBINS];           /* sums of the closed bins (bsize observations each) */
} mstate;

/* The number of doubles of an exported state: header (tag, version, count) + fields. */
#define STATE_FIXED_FIELDS 27
#define STATE_V1_COUNT (3 + STATE_FIXED_FIELDS + 2 * 6 + MAX_SPIKES)
#define STATE_V2_FIELDS 15
#define STATE_COUNT (3 + STATE_FIXED_FIELDS + 2 * SGD_MONITOR_KIND_COUNT + MAX_SPIKES + STATE_V2_FIELDS + NBINS)

typedef struct mcallback {
    sgd_monitor_callback fn;
    void *user;
    uint32_t mask;
    int32_t id; /* 0: free slot */
} mcallback;

struct sgd_monitor {
    sgd_allocator alloc;
    sgd_monitor_options o;
    /* Derived from the options once. */
    double log_div, log_jump, log_confirm, log_spike, log_osc, p_low, p_high;
    double log_drift, log_gspike; /* 0 when disabled */
    bool init_given;              /* options.initial_loss given */
    double yref;                  /* its log (minus the floor) */
    int64_t emit_step;            /* the observation events are raised at */
    mstate s;
    mcallback cb[SGD_MONITOR_MAX_CALLBACKS];
    int32_t next_id;
    bool in_callback;
    /* Per observation: what the callbacks answered. */
    int32_t action;
    double action_scale;
    sgd_status cb_status;
};

/* ------------------------------------------------------------ options */

#define FIRST_OPTIONS_SIZE SGD__FIRST(sgd_monitor_options)

/*
 * 0.2 appended options: a program built against 0.1's headers has a 168-byte struct and links
 * sgd_monitor_options_init@SGDLAB_0.1, which writes no more than that (core/abi.h); programs built
 * since link sgd_monitor_options_init@@SGDLAB_0.2 (the default), which fills the whole struct.
 */
static sgd_status options_init_full(sgd_monitor_options *o);

SGD__COMPAT_INIT(sgd_status, sgd_monitor_options_init, sgd_monitor_options, v0_1, "SGDLAB_0.1")
sgd_status sgd_monitor_options_init__v0_2(sgd_monitor_options *o)
{
    if (o == NULL)
        return sgd__err(SGD_EINVAL, "sgd_monitor_options_init: opts is NULL");
    return options_init_full(o);
}

static sgd_status options_init_full(sgd_monitor_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->initial_steps = 10;
    o->loss_floor = 0.0;
    o->level_steps = 10.0;
    o->noise_steps = 20.0;
    o->divergence_ratio = 3.0;
    o->divergence_jump_ratio = 100.0;
    o->divergence_confirm_ratio = 10.0;
    o->divergence_z = 5.0;
    o->divergence_count = 1;
    o->divergence_window = 1;
    o->spike_ratio = 2.0;
    o->spike_z = 5.0;
    o->oscillation_ratio = 1.5;
    o->oscillation_steps = 10;
    o->oscillation_spikes = 3;
    o->oscillation_window = 50;
    o->plateau_steps = 100;
    o->stagnation_steps = 150;
    o->spike_recovery_steps = 50;
    o->stagnation_min_drop = 0.1;
    o->stagnation_max_drop = 0.33;
    o->stagnation_z = 3.0;
    o->stagnation_shape = 0.5;
    o->progress_fast_steps = 25.0;
    o->progress_slow_steps = 100.0;
    o->initial_loss = NAN;
    o->min_steps = 10;
    o->drift_ratio = 1.1;
    o->grad_spike_ratio = 10.0;
    return SGD_OK;
}

/* Range checks; the message names fn, the field and its value. */
static sgd_status check_options(const sgd_monitor_options *o, const char *fn)
{
#define DRANGE(f, ok, what)                                                                               \
    do {                                                                                                  \
        if (!(isfinite(o->f) && (ok)))                                                                    \
            return sgd__err(SGD_ERANGE, "%s: " #f "=%g: must be %s", fn, o->f, what);                     \
    } while (0)
#define IRANGE(f, lo, hi)                                                                                 \
    do {                                                                                                  \
        if (o->f < (lo) || o->f > (hi))                                                                   \
            return sgd__err(SGD_ERANGE, "%s: " #f "=%ld: must be in [%ld, %ld]", fn, (long)o->f, (long)(lo), \
                            (long)(hi));                                                                  \
    } while (0)
    IRANGE(initial_steps, 1, 1000);
    DRANGE(loss_floor, 1, "finite");
    DRANGE(level_steps, o->level_steps >= 1.0 && o->level_steps <= 1e6, "in [1, 1e6]");
    DRANGE(noise_steps, o->noise_steps >= 2.0 && o->noise_steps <= 1e6, "in [2, 1e6]");
    DRANGE(divergence_ratio, o->divergence_ratio > 1.0, "> 1");
    DRANGE(divergence_jump_ratio, o->divergence_jump_ratio >= o->divergence_ratio, ">= divergence_ratio");
    DRANGE(divergence_confirm_ratio, o->divergence_confirm_ratio >= o->divergence_ratio, ">= divergence_ratio");
    DRANGE(divergence_z, o->divergence_z >= 0.0, ">= 0");
    IRANGE(divergence_window, 1, MAX_DIV_WINDOW);
    IRANGE(divergence_count, 1, o->divergence_window);
    DRANGE(spike_ratio, o->spike_ratio > 1.0, "> 1");
    DRANGE(spike_z, o->spike_z >= 0.0, ">= 0");
    DRANGE(oscillation_ratio, o->oscillation_ratio > 1.0, "> 1");
    IRANGE(oscillation_steps, 1, INT32_MAX);
    IRANGE(oscillation_spikes, 1, MAX_SPIKES);
    IRANGE(oscillation_window, 1, INT32_MAX);
    IRANGE(plateau_steps, 1, INT32_MAX);
    IRANGE(stagnation_steps, 1, INT32_MAX);
    IRANGE(spike_recovery_steps, 0, INT32_MAX);
    DRANGE(stagnation_min_drop, o->stagnation_min_drop >= 0.0 && o->stagnation_min_drop < 1.0, "in [0, 1)");
    DRANGE(stagnation_max_drop, o->stagnation_max_drop >= o->stagnation_min_drop && o->stagnation_max_drop < 1.0,
           "in [stagnation_min_drop, 1)");
    DRANGE(stagnation_z, o->stagnation_z >= 0.0, ">= 0");
    DRANGE(stagnation_shape, o->stagnation_shape >= 0.0, ">= 0");
    DRANGE(progress_fast_steps, o->progress_fast_steps >= 1.0 && o->progress_fast_steps <= 1e6, "in [1, 1e6]");
    DRANGE(progress_slow_steps, o->progress_slow_steps > o->progress_fast_steps && o->progress_slow_steps <= 1e6,
           "in (progress_fast_steps, 1e6]");
    if (!isnan(o->initial_loss) &&
        !(isfinite(o->initial_loss) && o->initial_loss > o->loss_floor && isfinite(o->initial_loss - o->loss_floor)))
        return sgd__err(SGD_ERANGE, "%s: initial_loss=%g: must be NaN (unknown) or finite and > loss_floor=%g", fn,
                        o->initial_loss, o->loss_floor);
    IRANGE(min_steps, 3, o->stagnation_steps > 3 ? o->stagnation_steps : 3);
    IRANGE(reserved0, 0, 0);
    DRANGE(drift_ratio, o->drift_ratio == 0.0 || o->drift_ratio > 1.0, "0 (off) or > 1");
    DRANGE(grad_spike_ratio, o->grad_spike_ratio == 0.0 || o->grad_spike_ratio > 1.0, "0 (off) or > 1");
#undef DRANGE
#undef IRANGE
    return SGD_OK;
}

typedef struct optkey {
    const char *name;
    size_t offset;
    bool is_int;
} optkey;

#define OD(f) {#f, offsetof(sgd_monitor_options, f), false}
#define OI(f) {#f, offsetof(sgd_monitor_options, f), true}
static const optkey option_keys[] = {
    OI(initial_steps),        OD(loss_floor),          OD(level_steps),        OD(noise_steps),
    OD(divergence_ratio),     OD(divergence_jump_ratio), OD(divergence_confirm_ratio), OD(divergence_z),
    OI(divergence_count),
    OI(divergence_window),    OD(spike_ratio),         OD(spike_z),            OD(oscillation_ratio),
    OI(oscillation_steps),    OI(oscillation_spikes),  OI(oscillation_window), OI(plateau_steps),
    OI(stagnation_steps), OI(spike_recovery_steps),     OD(stagnation_min_drop), OD(stagnation_max_drop), OD(stagnation_z),
    OD(stagnation_shape),     OD(progress_fast_steps), OD(progress_slow_steps),
    OD(initial_loss),         OI(min_steps),           OD(drift_ratio),        OD(grad_spike_ratio),
};
#undef OD
#undef OI

sgd_status sgd_monitor_options_parse(sgd_monitor_options *opts, const char *spec)
{
    static const char fn[] = "sgd_monitor_options_parse";
    if (opts == NULL)
        return sgd__err(SGD_EINVAL, "%s: opts is NULL", fn);
    if (spec == NULL)
        return sgd__err(SGD_EINVAL, "%s: spec is NULL", fn);
    sgd_monitor_options o;
    sgd_status st = sgd_monitor_options_init(&o);
    if (st != SGD_OK)
        return st;
    st = sgd__options_copy(&o, sizeof o, opts, FIRST_OPTIONS_SIZE, fn, "opts");
    if (st != SGD_OK)
        return st;
    /* Skip an optional "monitor:" kind; sgd__spec_split wants a kind, so give it one. */
    const char *body = spec;
    while (*body == ' ' || *body == '\t')
        body++;
    if (strncmp(body, "monitor:", 8) == 0)
        body += 8;
    size_t blen = strlen(body);
    if (blen > 4096)
        return sgd__err(SGD_EINVAL, "%s: spec is longer than 4096 characters", fn);
    bool empty = true;
    for (size_t i = 0; i < blen; i++)
        if (body[i] != ' ' && body[i] != '\t')
            empty = false;
    if (!empty) {
        char text[4096 + 16];
        memcpy(text, "monitor:", 8);
        memcpy(text + 8, body, blen + 1);
        sgd__spec sp;
        st = sgd__spec_split(&sp, text, 8 + blen, ',', fn);
        if (st != SGD_OK)
            return st;
        for (size_t k = 0; k < sizeof option_keys / sizeof *option_keys; k++) {
            const optkey *ok = &option_keys[k];
            if (ok->is_int) {
                int32_t *field = (int32_t *)((char *)&o + ok->offset);
                int64_t v = *field;
                st = sgd__spec_get_int64(&sp, ok->name, &v, fn);
                if (st != SGD_OK)
                    return st;
                if (v < INT32_MIN || v > INT32_MAX)
                    return sgd__err(SGD_ERANGE, "%s: %s=%lld: out of range", fn, ok->name, (long long)v);
                *field = (int32_t)v;
            } else {
                double *field = (double *)((char *)&o + ok->offset);
                st = sgd__spec_get_double(&sp, ok->name, field, fn);
                if (st != SGD_OK)
                    return st;
            }
        }
        st = sgd__spec_check_unused(&sp, fn);
        if (st != SGD_OK)
            return st;
    }
    st = check_options(&o, fn);
    if (st != SGD_OK)
        return st;
    /* Write back only what the caller's struct holds. */
    return SGD__FILL(opts, &o, sgd_monitor_options, fn, "opts");
}

/* ------------------------------------------------------------ lifecycle */

static void state_clear(mstate *s)
{
    memset(s, 0, sizeof *s);
    s->first_alarm = -1;
    s->spike_t = -1;
    for (int k = 0; k < SGD_MONITOR_KIND_COUNT; k++)
        s->first_event[k] = -1;
    s->verdict = SGD_MONITOR_HEALTHY;
    s->noise = NOISE_PRIOR;
    s->pstep = s->first_alarm_pstep = s->spike_pstep = s->espike_t = s->espike_pstep = -1;
    s->bsize = 1;
}

sgd_status sgd_monitor_new(sgd_monitor **out, const sgd_monitor_options *opts, const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_monitor_new";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    sgd_allocator a;
    sgd_status st = sgd__allocator_init(&a, alloc, fn);
    if (st != SGD_OK)
        return st;
    sgd_monitor_options o;
    sgd_monitor_options_init(&o);
    st = sgd__options_copy(&o, sizeof o, opts, FIRST_OPTIONS_SIZE, fn, "opts");
    if (st != SGD_OK)
        return st;
    st = check_options(&o, fn);
    if (st != SGD_OK)
        return st;
    sgd_monitor *m = sgd__calloc(&a, 1, sizeof *m);
    if (m == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory (%zu bytes)", fn, sizeof *m);
    m->alloc = a;
    m->o = o;
    m->log_div = log(o.divergence_ratio);
    m->log_jump = log(o.divergence_jump_ratio);
    m->log_confirm = log(o.divergence_confirm_ratio);
    m->log_spike = log(o.spike_ratio);
    m->log_osc = log(o.oscillation_ratio);
    m->p_low = -log1p(-o.stagnation_min_drop);
    m->p_high = -log1p(-o.stagnation_max_drop);
    m->log_drift = o.drift_ratio > 0.0 ? log(o.drift_ratio) : 0.0;
    m->log_gspike = o.grad_spike_ratio > 0.0 ? log(o.grad_spike_ratio) : 0.0;
    m->init_given = !isnan(o.initial_loss);
    m->yref = m->init_given ? fmax(log(o.initial_loss - o.loss_floor), Y_MIN) : 0.0;
    m->next_id = 1;
    state_clear(&m->s);
    *out = m;
    return SGD_OK;
}

void sgd_monitor_free(sgd_monitor *m)
{
    if (m == NULL)
        return;
    sgd_allocator a = m->alloc;
    sgd__free(&a, m);
}

sgd_status sgd_monitor_reset(sgd_monitor *m)
{
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "sgd_monitor_reset: monitor is NULL");
    if (m->in_callback)
        return sgd__err(SGD_ESTATE, "sgd_monitor_reset: called from a monitor callback");
    state_clear(&m->s);
    return SGD_OK;
}

/* ------------------------------------------------------------ callbacks */

sgd_status sgd_monitor_add_callback(sgd_monitor *m, int32_t *id, uint32_t mask, sgd_monitor_callback fn,
                                    void *user)
{
    static const char f[] = "sgd_monitor_add_callback";
    if (id != NULL)
        *id = 0;
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: monitor is NULL", f);
    if (fn == NULL)
        return sgd__err(SGD_EINVAL, "%s: fn is NULL", f);
    if (mask == 0 || (mask & ~SGD_MONITOR_MASK_ALL) != 0)
        return sgd__err(SGD_EINVAL, "%s: mask=0x%x: must be a non-empty set of SGD_MONITOR_MASK_* bits", f,
                        (unsigned)mask);
    if (m->in_callback)
        return sgd__err(SGD_ESTATE, "%s: called from a monitor callback", f);
    for (int i = 0; i < SGD_MONITOR_MAX_CALLBACKS; i++) {
        if (m->cb[i].id == 0) {
            m->cb[i].fn = fn;
            m->cb[i].user = user;
            m->cb[i].mask = mask;
            m->cb[i].id = m->next_id;
            m->next_id = m->next_id == INT32_MAX ? 1 : m->next_id + 1;
            if (id != NULL)
                *id = m->cb[i].id;
            return SGD_OK;
        }
    }
    return sgd__err(SGD_EOVERFLOW, "%s: the monitor already holds %d callbacks", f, SGD_MONITOR_MAX_CALLBACKS);
}

sgd_status sgd_monitor_remove_callback(sgd_monitor *m, int32_t id)
{
    static const char f[] = "sgd_monitor_remove_callback";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: monitor is NULL", f);
    if (m->in_callback)
        return sgd__err(SGD_ESTATE, "%s: called from a monitor callback", f);
    if (id > 0) {
        for (int i = 0; i < SGD_MONITOR_MAX_CALLBACKS; i++) {
            if (m->cb[i].id == id) {
                memset(&m->cb[i], 0, sizeof m->cb[i]);
                /* Keep registration order: close the gap. */
                for (int j = i; j + 1 < SGD_MONITOR_MAX_CALLBACKS; j++)
                    m->cb[j] = m->cb[j + 1];
                memset(&m->cb[SGD_MONITOR_MAX_CALLBACKS - 1], 0, sizeof m->cb[0]);
                return SGD_OK;
            }
        }
    }
    return sgd__err(SGD_ENOTFOUND, "%s: id=%d: no such callback", f, (int)id);
}

/* ------------------------------------------------------------ events */

typedef struct kindinfo {
    const char *name;
    int32_t severity;
    int32_t action;
    double scale;
    const char *remedy;
    const char *detail;
} kindinfo;

static const kindinfo kinds[SGD_MONITOR_KIND_COUNT] = {
    {"nonfinite", SGD_MONITOR_CRITICAL, SGD_MONITOR_ROLLBACK, 0.1,
     "roll back to the last good state and lower the learning rate by 10x", "non-finite value (loss or gradient norm)"},
    {"divergence", SGD_MONITOR_CRITICAL, SGD_MONITOR_ROLLBACK, 0.1,
     "lower the learning rate by 10x (roll back if the loss does not recover)", "loss / initial loss"},
    {"spike", SGD_MONITOR_INFO, SGD_MONITOR_SKIP, 1.0,
     "skip this batch; lower the learning rate if spikes recur", "loss / smoothed loss"},
    {"oscillation", SGD_MONITOR_WARNING, SGD_MONITOR_SCALE_LR, 1.0 / 3.0,
     "lower the learning rate by 3x", "smoothed loss / initial loss (or spikes within the window)"},
    {"plateau", SGD_MONITOR_INFO, SGD_MONITOR_CONTINUE, 0.1,
     "lower the learning rate by 10x if the loss should still fall", "steps without a new best smoothed loss"},
    {"stagnation", SGD_MONITOR_WARNING, SGD_MONITOR_SCALE_LR, 10.0,
     "raise the learning rate by 10x", "fraction of the initial loss lost so far"},
    {"grad_spike", SGD_MONITOR_INFO, SGD_MONITOR_SKIP, 1.0,
     "skip this batch or clip the gradient; lower the learning rate if they recur",
     "gradient norm / smoothed gradient norm"},
};

const char *sgd_monitor_kind_name(int32_t kind)
{
    if (kind < 0 || kind >= SGD_MONITOR_KIND_COUNT)
        return "unknown";
    return kinds[kind].name;
}

const char *sgd_monitor_verdict_name(int32_t verdict)
{
    static const char *const names[] = {"healthy", "diverged", "unstable", "stagnant"};
    if (verdict < 0 || verdict > 3)
        return "unknown";
    return names[verdict];
}

const char *sgd_monitor_action_name(int32_t action)
{
    static const char *const names[] = {"continue", "skip", "scale_lr", "rollback", "stop"};
    if (action < 0 || action > 4)
        return "unknown";
    return names[action];
}

static void emit_ref(sgd_monitor *m, int32_t kind, double loss, double grad_norm, double lr, double statistic,
                     double threshold, const char *detail, int64_t ref, int64_t ref_pstep)
{
    mstate *s = &m->s;
    int64_t step = m->emit_step;
    s->events[kind]++;
    if (s->first_event[kind] < 0)
        s->first_event[kind] = step;
    if (s->first_alarm < 0 && ((1u << kind) & SGD_MONITOR_MASK_ALARMS)) {
        s->first_alarm = step;
        s->first_alarm_pstep = s->pstep;
    }

    sgd_monitor_event ev;
    bool have_event = false;
    for (int i = 0; i < SGD_MONITOR_MAX_CALLBACKS && m->cb[i].id != 0; i++) {
        if ((m->cb[i].mask & (1u << kind)) == 0)
            continue;
        if (!have_event) {
            const kindinfo *ki = &kinds[kind];
            memset(&ev, 0, sizeof ev);
            ev.struct_size = (uint32_t)sizeof ev;
            ev.kind = kind;
            ev.step = step;
            ev.loss = loss;
            ev.grad_norm = grad_norm;
            ev.lr = lr;
            ev.smoothed = (s->flags & F_STARTED) ? exp(s->level) + m->o.loss_floor : NAN;
            ev.statistic = statistic;
            ev.threshold = threshold;
            ev.severity = ki->severity;
            ev.suggested_action = ki->action;
            ev.suggested_lr_scale = ki->scale;
            ev.remedy = ki->remedy;
            ev.detail = detail != NULL ? detail : ki->detail;
            ev.producer_step = s->pstep;
            ev.ref_step = ref;
            ev.ref_producer_step = ref >= 0 ? ref_pstep : -1;
            have_event = true;
        }
        double scale = ev.suggested_lr_scale;
        m->in_callback = true;
        int32_t act = m->cb[i].fn(&ev, &scale, m->cb[i].user);
        m->in_callback = false;
        if (act < SGD_MONITOR_CONTINUE || act > SGD_MONITOR_STOP) {
            m->cb_status = sgd__err(SGD_ECALLBACK, "sgd_monitor_observe: callback %d returned action %d for %s",
                                    (int)m->cb[i].id, (int)act, kinds[kind].name);
            continue;
        }
        if ((act == SGD_MONITOR_SCALE_LR || act == SGD_MONITOR_ROLLBACK) && !(isfinite(scale) && scale > 0.0)) {
            m->cb_status = sgd__err(SGD_ECALLBACK, "sgd_monitor_observe: callback %d returned lr_scale=%g for %s",
                                    (int)m->cb[i].id, scale, kinds[kind].name);
            continue;
        }
        if (act > m->action) {
            m->action = act;
            m->action_scale = (act == SGD_MONITOR_SCALE_LR || act == SGD_MONITOR_ROLLBACK) ? scale : 1.0;
        }
    }
}

static void emit(sgd_monitor *m, int32_t kind, double loss, double grad_norm, double lr, double statistic,
                 double threshold, const char *detail)
{
    emit_ref(m, kind, loss, grad_norm, lr, statistic, threshold, detail, -1, -1);
}

/* ------------------------------------------------------------ the statistics */

static inline double clampd(double x, double lo, double hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

static inline double fmaxd(double a, double b)
{
    return a > b ? a : b;
}

/* (libm's fmin is a call; these operands are never NaN) */
static inline double fmind(double a, double b)
{
    return a < b ? a : b;
}

static inline int popcount32(uint32_t x)
{
    return __builtin_popcount(x);
}

static void update_verdict(sgd_monitor *m, bool stagnant)
{
    mstate *s = &m->s;
    bool confirmed = (s->flags & F_DIVERGED) && s->ymax - s->y0 >= m->log_confirm;
    if ((s->flags & F_NONFINITE) || confirmed)
        s->verdict = SGD_MONITOR_DIVERGED;
    else if (s->flags & (F_OSC_ACTIVE | F_DIVERGED))
        s->verdict = SGD_MONITOR_UNSTABLE;
    else if (stagnant)
        s->verdict = SGD_MONITOR_STAGNANT;
    else
        s->verdict = SGD_MONITOR_HEALTHY;
}

/*
 * The initial level: the given one, or the median of the first initial_steps observations (at most
 * NBINS), kept within one sigma of the first observation: a spike among them raises it by at most
 * that, and the median of a steep descent, which lags its start, is raised to that.
 */
static inline double initial_level(const sgd_monitor *m)
{
    const mstate *s = &m->s;
    if (m->init_given)
        return m->yref;
    return clampd(s->yinit, s->y0 - s->noise, s->y0 + s->noise);
}

/* Median of v[0..n-1], n >= 1, reordering v (insertion sort: n <= NBINS, and only while the first
   observations come in). */
static double median_small(double *v, int n)
{
    for (int i = 1; i < n; i++) {
        double x = v[i];
        int j = i;
        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Variance and standard error of the initial level, in log-loss. */
static inline double initial_var(const sgd_monitor *m)
{
    return m->init_given ? 0.0 : m->s.noise * m->s.noise / (double)(m->s.ninit > 0 ? m->s.ninit : 1);
}

static inline double initial_se(const sgd_monitor *m)
{
    return sqrt(initial_var(m));
}

/* Adds a finite log-loss to the block means. */
static void bins_add(mstate *s, double y)
{
    s->csum += y;
    if (++s->ccnt < s->bsize)
        return;
    s->bsum[s->nbins++] = s->csum;
    s->csum = 0.0;
    s->ccnt = 0;
    if (s->nbins == NBINS) {
        for (int i = 0; i < NBINS / 2; i++)
            s->bsum[i] = s->bsum[2 * i] + s->bsum[2 * i + 1];
        s->nbins = NBINS / 2;
        s->bsize *= 2;
    }
}

/* The whole curve from the block means: see judge_curve(). */
typedef struct curve_summary {
    double end;      /* mean log-loss of the last quarter of the observations */
    double end_se;   /* its standard error */
    double best;     /* lowest mean over a quarter-long window */
    double best_se;  /* its standard error */
    double rate_recent; /* fall of the log-loss per observation over the second half (least squares) */
    double rate_mean;   /* fall per observation from the initial level to the best window */
} curve_summary;

static void judge_curve(const sgd_monitor *m, curve_summary *c)
{
    const mstate *s = &m->s;
    double mean[NBINS + 1], cnt[NBINS + 1], centre[NBINS + 1];
    int k = 0;
    double t = 0.0;
    for (int64_t i = 0; i < s->nbins; i++, k++) {
        cnt[k] = (double)s->bsize;
        mean[k] = s->bsum[i] / cnt[k];
        centre[k] = t + (cnt[k] - 1.0) / 2.0;
        t += cnt[k];
    }
    if (s->ccnt > 0) {
        cnt[k] = (double)s->ccnt;
        mean[k] = s->csum / cnt[k];
        centre[k] = t + (cnt[k] - 1.0) / 2.0;
        t += cnt[k];
        k++;
    }
    /* Windows of a quarter of the observations (in points: at least one). */
    double quarter = t / 4.0;
    double sum = 0.0, n = 0.0;
    for (int j = k - 1; j >= 0 && n < quarter; j--) {
        sum += mean[j] * cnt[j];
        n += cnt[j];
    }
    c->end = sum / n;
    c->end_se = s->noise / sqrt(n);
    /* Lowest window mean, windows of about a quarter, sliding point by point. */
    double best = INFINITY, best_n = 1.0, best_c = 0.0;
    for (int j = 0; j < k; j++) {
        double ws = 0.0, wn = 0.0, wc = 0.0;
        for (int i = j; i < k && wn < quarter; i++) {
            ws += mean[i] * cnt[i];
            wc += centre[i] * cnt[i];
            wn += cnt[i];
        }
        if (wn < quarter && j > 0)
            break; /* the last windows are shorter: the end window covers them */
        if (ws / wn < best) {
            best = ws / wn;
            best_n = wn;
            best_c = wc / wn;
        }
    }
    c->best = best;
    c->best_se = s->noise / sqrt(best_n);
    /* Slope over the second half of the observations. */
    double sw = 0.0, sx = 0.0, sy = 0.0;
    for (int j = 0; j < k; j++)
        if (centre[j] >= t / 2.0) {
            sw += cnt[j];
            sx += cnt[j] * centre[j];
            sy += cnt[j] * mean[j];
        }
    double slope = 0.0;
    if (sw > 0.0) {
        double mx = sx / sw, my = sy / sw, sxx = 0.0, sxy = 0.0;
        for (int j = 0; j < k; j++)
            if (centre[j] >= t / 2.0) {
                sxx += cnt[j] * (centre[j] - mx) * (centre[j] - mx);
                sxy += cnt[j] * (centre[j] - mx) * (mean[j] - my);
            }
        slope = sxx > 0.0 ? sxy / sxx : 0.0;
    }
    c->rate_recent = -slope;
    double yi = initial_level(m);
    c->rate_mean = (yi - best) / fmaxd(best_c - (s->ninit - 1) / 2.0, 1.0);
}

/* Stagnation from the progress figures; the event's statistic and threshold (computed only when an
   event is raised: two expm1 per observation are a third of its cost). */
typedef struct stag_test {
    bool stagnant, small;
    double p_sig, p_best, p_low;
} stag_test;

static stag_test stagnant_by(const sgd_monitor *m, double p_best_sig, double se, double p_best, double rate_recent,
                             double rate_mean)
{
    const sgd_monitor_options *o = &m->o;
    stag_test r;
    r.p_sig = p_best_sig;
    r.p_best = p_best;
    r.p_low = fmaxd(m->p_low, o->stagnation_z * se);
    r.small = p_best_sig < r.p_low;
    r.stagnant = r.small || (p_best < m->p_high && rate_recent >= o->stagnation_shape * rate_mean);
    return r;
}

static void emit_stagnation(sgd_monitor *m, const stag_test *r, double loss, double gn, double lr)
{
    emit(m, SGD_MONITOR_STAGNATION, loss, gn, lr, -expm1(-(r->small ? r->p_sig : r->p_best)),
         -expm1(-(r->small ? r->p_low : m->p_high)), NULL);
}

/*
 * A spike before any progress, and a run that never trained past its start: the rate was too high
 * (a stagnation would advise the opposite). Raised as a divergence naming the spike; the verdict is
 * unstable.
 */
static void emit_spike_stall(sgd_monitor *m, double loss, double gn, double lr, double progress, double least)
{
    mstate *s = &m->s;
    s->flags |= F_DIVERGED | F_ESPIKE_DONE;
    emit_ref(m, SGD_MONITOR_DIVERGENCE, loss, gn, lr, -expm1(-progress), -expm1(-least),
             "fraction of the initial loss lost since a spike (ref_step) that came before any progress",
             s->espike_t, s->espike_pstep);
}

/* Drift above the initial level; it names an early spike if there was one (where the rise began). */
static void emit_drift(sgd_monitor *m, double loss, double gn, double lr, double stat, double thr)
{
    mstate *s = &m->s;
    if (s->espike_t >= 0) {
        s->flags |= F_ESPIKE_DONE;
        emit_ref(m, SGD_MONITOR_DIVERGENCE, loss, gn, lr, stat, thr,
                 "recent smoothed loss / initial level (the loss rose above its start after a spike at ref_step)",
                 s->espike_t, s->espike_pstep);
    } else {
        emit(m, SGD_MONITOR_DIVERGENCE, loss, gn, lr, stat, thr,
             "recent smoothed loss / initial level (the loss rose above its start)");
    }
}

/* The gradient norm: non-finite checks are the caller's; spikes above its smoothed level. */
static void observe_grad(sgd_monitor *m, double gn, double loss, double lr)
{
    const sgd_monitor_options *o = &m->o;
    mstate *s = &m->s;
    double g = gn > 0.0 ? log(gn) : Y_MIN;
    if (g < Y_MIN)
        g = Y_MIN;
    if (s->gcount == 0) {
        s->glevel = s->gprev = g;
        s->gnoise = NOISE_PRIOR;
        s->gcount = 1;
        return;
    }
    double sig = s->gnoise;
    double thr = fmaxd(m->log_gspike, o->spike_z * sig);
    double exc = g - s->glevel;
    if (m->log_gspike > 0.0 && s->gcount >= 3) {
        if (exc > thr) {
            if (!(s->flags & F_GIN_SPIKE))
                emit(m, SGD_MONITOR_GRAD_SPIKE, loss, gn, lr, exp(exc), exp(thr), NULL);
            s->flags |= F_GIN_SPIKE;
        } else if (exc < 0.5 * thr) {
            s->flags &= ~(uint32_t)F_GIN_SPIKE;
        }
    }
    double nf = (double)s->gcount;
    double d = fmind(fabs(g - s->gprev), fmaxd(WINSOR_K * sig / C_ABS, log(2.0)));
    s->gnoise = sig + (C_ABS * d - sig) / fmind(o->noise_steps, nf + NOISE_PRIOR_N);
    double cl = fmaxd(log(2.0), o->spike_z * s->gnoise);
    s->glevel += clampd(g - s->glevel, -cl, cl) / fmind(o->level_steps, nf + 1.0);
    s->gprev = g;
    s->gcount++;
}

/* The statistics for a finite loss; events are raised as they are found. */
static void observe_finite(sgd_monitor *m, double loss, double gn, double lr)
{
    const sgd_monitor_options *o = &m->o;
    mstate *s = &m->s;
    double v = loss - o->loss_floor;
    double y = v > 0.0 ? log(v) : Y_MIN;
    if (y < Y_MIN)
        y = Y_MIN;
    if (!(v > 0.0))
        s->below_floor++;
    int64_t t = s->steps;

    if (!(s->flags & F_STARTED)) {
        s->flags |= F_STARTED;
        s->y0 = m->init_given ? m->yref : y;
        s->yinit = s->y0;
        s->yprev = s->level = s->best = s->bslow = s->bfast = y;
        s->ymax = fmaxd(y, s->y0);
        s->ninit = 1;
        s->e1 = s->e2 = y;
        s->c1 = s->c2 = (double)t;
        s->finite = 1;
        bins_add(s, y);
        if (m->init_given && y > s->y0 + m->log_div) {
            /* An excerpt that starts already blown up. */
            s->flags |= F_DIV_ACTIVE | F_DIVERGED;
            s->hist = 1;
            emit(m, SGD_MONITOR_DIVERGENCE, loss, gn, lr, exp(y - s->y0), exp(m->log_div), NULL);
        }
        update_verdict(m, false);
        return;
    }
    double nf = (double)s->finite; /* finite observations before this one */
    double sig = s->noise;

    /* Divergence: the raw observation against the initial level, before anything moves: the first
       observation, or the initial level once it is higher (a first observation that was a low
       sample of a noisy loss). */
    double yd = fmaxd(s->y0, initial_level(m));
    double thr_div = yd + fmaxd(m->log_div, o->divergence_z * sig);
    double thr_jump = yd + fmaxd(m->log_jump, o->divergence_z * sig);
    uint32_t wmask = o->divergence_window >= 32 ? 0xffffffffu : ((1u << o->divergence_window) - 1u);
    s->hist = ((s->hist << 1) | (y > thr_div ? 1u : 0u)) & wmask;
    if (popcount32(s->hist) >= o->divergence_count || y > thr_jump) {
        if (!(s->flags & F_DIV_ACTIVE)) {
            s->flags |= F_DIV_ACTIVE | F_DIVERGED;
            bool jump = y > thr_jump && popcount32(s->hist) < o->divergence_count;
            emit(m, SGD_MONITOR_DIVERGENCE, loss, gn, lr, exp(y - yd), exp((jump ? thr_jump : thr_div) - yd), NULL);
        }
    } else if (s->hist == 0) {
        s->flags &= ~(uint32_t)F_DIV_ACTIVE;
    }

    /* Spike: an excursion above the smoothed loss, reported once per excursion. */
    double thr_spike = fmaxd(m->log_spike, o->spike_z * sig);
    double exc = y - s->level;
    if (exc > thr_spike) {
        if (!(s->flags & F_IN_SPIKE) && !(s->flags & F_DIV_ACTIVE)) {
            s->spikes[s->spike_head] = t;
            s->spike_head = (s->spike_head + 1) % MAX_SPIKES;
            if (s->nspike < MAX_SPIKES)
                s->nspike++;
            emit(m, SGD_MONITOR_SPIKE, loss, gn, lr, exp(exc), exp(thr_spike), NULL);
            if (o->spike_recovery_steps > 0 && !(s->flags & (F_SPIKE_WATCH | F_DIVERGED))) {
                s->flags |= F_SPIKE_WATCH;
                s->spike_t = t;
                s->spike_pstep = s->pstep;
                s->spike_pre = s->level;
            }
            /* A spike before the run made any progress (its best smoothed loss not 10% below the
               initial level): if the run never trains past its start, the rate was too high. */
            if (o->spike_recovery_steps > 0 && s->espike_t < 0 && fmind(initial_level(m), s->y0) - s->best < m->p_low) {
                s->espike_t = t;
                s->espike_pstep = s->pstep;
            }
        }
        s->flags |= F_IN_SPIKE;
    } else if (exc < 0.5 * thr_spike) {
        s->flags &= ~(uint32_t)F_IN_SPIKE;
    }

    /* Noise: EMA of the winsorised step difference, with a prior. */
    double d = fabs(y - s->yprev);
    d = fmind(d, fmaxd(WINSOR_K * sig / C_ABS, m->log_spike));
    double a = 1.0 / fmind(o->noise_steps, nf + NOISE_PRIOR_N);
    s->noise = sig + a * (C_ABS * d - sig);

    /* Smoothed loss: EMA of the residual clipped at the spike threshold, so that a spike moves it
       little while a smooth trend, however steep against the noise, is followed. */
    double cl = fmaxd(m->log_spike, o->spike_z * s->noise);
    double al = 1.0 / fmind(o->level_steps, nf + 1.0);
    s->level += al * clampd(y - s->level, -cl, cl);

    bins_add(s, y);
    /* Initial level: the median of the first initial_steps finite log-losses (at most NBINS). While
       they come in, the bins hold one observation each. */
    if (!m->init_given && s->finite < o->initial_steps && s->finite < NBINS && s->bsize == 1 &&
        s->nbins == s->finite + 1) {
        double first[NBINS];
        int n = (int)s->nbins;
        memcpy(first, s->bsum, (size_t)n * sizeof *first);
        s->ninit = n;
        s->yinit = median_small(first, n);
    }

    /* Fast and slow EMAs of the smoothed loss, with their centres of mass in time. */
    double a1 = 1.0 / fmind(o->progress_fast_steps, nf + 1.0);
    double a2 = 1.0 / fmind(o->progress_slow_steps, nf + 1.0);
    s->e1 += a1 * (s->level - s->e1);
    s->c1 += a1 * ((double)t - s->c1);
    s->e2 += a2 * (s->level - s->e2);
    s->c2 += a2 * ((double)t - s->c2);
    if (s->e2 < s->bslow)
        s->bslow = s->e2;
    if (s->e1 < s->bfast)
        s->bfast = s->e1;
    if (y > s->ymax)
        s->ymax = y;

    /* Best smoothed loss; an improvement counts when it beats the level's own noise. */
    double se_level = s->noise * sqrt(al / (2.0 - al));
    bool newbest = s->level < s->best - se_level;
    if (s->level < s->best)
        s->best = s->level;
    s->since_best = newbest ? 0 : s->since_best + 1;

    /* Plateau. */
    if (s->since_best >= o->plateau_steps && !(s->flags & F_PLATEAU_ACTIVE)) {
        s->flags |= F_PLATEAU_ACTIVE;
        emit(m, SGD_MONITOR_PLATEAU, loss, gn, lr, (double)s->since_best, (double)o->plateau_steps, NULL);
    }
    if (newbest)
        s->flags &= ~(uint32_t)F_PLATEAU_ACTIVE;

    double yi = initial_level(m);
    double var_e1 = s->noise * s->noise * a1 / (2.0 - a1); /* the standard error only where it is needed */

    /* A spike that did not recover: spike_recovery_steps after it, the fast average of the smoothed
       loss is still above the smoothed loss before the spike by more than half the progress made
       until then (and by more than twice its standard error). The jump destroyed what the run had
       learnt: a learning rate too high, even if the loss now sits flat near where it started. */
    if ((s->flags & F_SPIKE_WATCH) && t - s->spike_t >= o->spike_recovery_steps) {
        s->flags &= ~(uint32_t)F_SPIKE_WATCH;
        double tol = fmaxd(0.5 * (yi - s->spike_pre), 2.0 * sqrt(var_e1));
        /* Not again after a divergence, nor over an oscillation already reported (same advice). */
        if (s->e1 > s->spike_pre + tol && !(s->flags & (F_DIVERGED | F_OSC_ACTIVE))) {
            s->flags |= F_DIVERGED;
            emit_ref(m, SGD_MONITOR_DIVERGENCE, loss, gn, lr, exp(s->e1 - s->spike_pre), exp(tol),
                     "recent smoothed loss / smoothed loss before a spike (ref_step) that did not recover",
                     s->spike_t, s->spike_pstep);
        }
        s->spike_t = -1;
    }

    /* A spike before any progress, spike_recovery_steps ago, and the loss back only to within noise
       of its start (less than stagnation_min_drop below it, or stagnation_z standard errors). */
    if (s->espike_t >= 0 && !(s->flags & F_ESPIKE_DONE) && o->spike_recovery_steps > 0 &&
        t - s->espike_t >= o->spike_recovery_steps) {
        s->flags |= F_ESPIKE_DONE;
        double least = m->p_low;
        if (yi - s->e1 < least && !(s->flags & (F_DIVERGED | F_OSC_ACTIVE)))
            emit_spike_stall(m, loss, gn, lr, yi - s->e1, least);
    }

    /* Drift: the fast average of the smoothed loss, and the smoothed loss itself, above the initial
       level by drift_ratio and beyond their noise: the run gave back all it had learnt, and more. */
    /* It must hold for DRIFT_RUN consecutive observations (noise does not rise for that long). */
    bool above = false;
    if (m->log_drift > 0.0 && s->finite >= o->min_steps && !(s->flags & (F_DIVERGED | F_OSC_ACTIVE)) &&
        s->e1 > yi + m->log_drift && s->level > yi + m->log_drift) { /* (the cheap test first) */
        double bound = yi + fmaxd(m->log_drift, o->stagnation_z * sqrt(var_e1 + initial_var(m)));
        above = s->e1 > bound && s->level > bound;
        if (above && ++s->drift_run >= DRIFT_RUN) {
            s->flags |= F_DIVERGED;
            emit_drift(m, loss, gn, lr, exp(s->e1 - yi), exp(bound - yi));
        }
    }
    if (!above)
        s->drift_run = 0;

    /* Oscillation: the smoothed loss stays above its initial level x ratio, or spikes recur
       while there is no net progress. */
    double gap = s->level - (yi + m->log_osc);
    s->osc_run = gap > 0.0 ? s->osc_run + 1 : 0;
    int32_t recent = 0;
    for (int32_t i = 0; i < s->nspike && i < o->oscillation_spikes; i++) {
        int32_t idx = (s->spike_head - 1 - i + MAX_SPIKES) % MAX_SPIKES;
        if (s->spikes[idx] > t - o->oscillation_window)
            recent++;
    }
    bool by_level = s->osc_run >= o->oscillation_steps;
    bool by_spikes = recent >= o->oscillation_spikes && s->level >= yi;
    if ((by_level || by_spikes) && !(s->flags & F_OSC_ACTIVE) && !(s->flags & F_DIV_ACTIVE)) {
        s->flags |= F_OSC_ACTIVE;
        if (by_level)
            emit(m, SGD_MONITOR_OSCILLATION, loss, gn, lr, exp(s->level - yi), o->oscillation_ratio, NULL);
        else
            emit(m, SGD_MONITOR_OSCILLATION, loss, gn, lr, (double)recent, (double)o->oscillation_spikes, NULL);
    }
    if ((s->flags & F_OSC_ACTIVE) && newbest && s->osc_run == 0)
        s->flags &= ~(uint32_t)F_OSC_ACTIVE;

    /* Stagnation. Progress is measured from the initial level to the lowest slow average
       (significance: against its standard error) and to the lowest fast average (size and shape:
       is the curve still falling at its mean rate, i.e. not flattened?). */
    s->finite++;
    bool stagnant = false;
    if (s->finite >= o->stagnation_steps) {
        double p_slow = yi - s->bslow;
        double p_fast = yi - s->bfast;
        double se_p = sqrt(initial_var(m) +
                           s->noise * s->noise / (2.0 * o->progress_slow_steps - 1.0));
        double rate_recent = (s->e2 - s->e1) / fmaxd(s->c1 - s->c2, 1e-9);
        double rate_mean = p_fast / fmaxd(s->c1 - (s->ninit - 1) / 2.0, 1.0);
        stag_test st = stagnant_by(m, p_slow, se_p, p_fast, rate_recent, rate_mean);
        stagnant = st.stagnant;
        if (stagnant && !(s->flags & F_STAG_ACTIVE)) {
            s->flags |= F_STAG_ACTIVE;
            if (s->espike_t >= 0 && !(s->flags & (F_DIVERGED | F_OSC_ACTIVE)))
                emit_spike_stall(m, loss, gn, lr, p_slow, m->p_high);
            /* After a divergence a flat loss is a broken run, not a learning rate too low. */
            else if (!(s->flags & F_DIVERGED))
                emit_stagnation(m, &st, loss, gn, lr);
        }
    }
    if (!stagnant)
        s->flags &= ~(uint32_t)F_STAG_ACTIVE;

    s->yprev = y;
    update_verdict(m, stagnant);
}

static sgd_status observe(sgd_monitor *m, const char *fn, int64_t pstep, double loss, double grad_norm, double lr,
                          int32_t *action, double *lr_scale)
{
    if (action != NULL)
        *action = SGD_MONITOR_CONTINUE;
    if (lr_scale != NULL)
        *lr_scale = 1.0;
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: monitor is NULL", fn);
    if (m->in_callback)
        return sgd__err(SGD_ESTATE, "%s: called from a monitor callback", fn);
    if (isnan(lr))
        return sgd__err(SGD_ENONFINITE, "%s: lr=nan: pass a negative number when the learning rate is unknown", fn);
    if (pstep < -1)
        return sgd__err(SGD_EINVAL, "%s: step=%lld: must be >= 0, or -1 when unknown", fn, (long long)pstep);
    mstate *s = &m->s;
    m->action = SGD_MONITOR_CONTINUE;
    m->action_scale = 1.0;
    m->cb_status = SGD_OK;
    m->emit_step = s->steps;
    s->pstep = pstep;
    s->flags &= ~(uint32_t)F_FINISHED;
    /* A negative finite gradient norm means "not given"; NaN and infinities are observations. */
    double gn = grad_norm;
    bool gn_given = !(isfinite(gn) && gn < 0.0);
    bool gn_bad = gn_given && !isfinite(gn);
    if (!gn_given)
        gn = -1.0;
    if (!(lr >= 0.0))
        lr = -1.0;

    if (!isfinite(loss) || gn_bad) {
        s->nonfinite++;
        s->flags |= F_NONFINITE;
        /* One event per run of consecutive non-finite observations (the counters count them all). */
        if (!(s->flags & F_NF_RUN))
            emit(m, SGD_MONITOR_NONFINITE, loss, gn, lr, isfinite(loss) ? gn : loss, 0.0, NULL);
        s->flags |= F_NF_RUN;
    } else {
        s->flags &= ~(uint32_t)F_NF_RUN;
    }
    if (gn_given && !gn_bad)
        observe_grad(m, gn, loss, lr);
    if (isfinite(loss))
        observe_finite(m, loss, gn, lr);
    else
        update_verdict(m, (s->flags & F_STAG_ACTIVE) != 0);
    s->steps++;

    if (m->cb_status != SGD_OK)
        return m->cb_status; /* the action stays CONTINUE */
    if (action != NULL)
        *action = m->action;
    if (lr_scale != NULL)
        *lr_scale = m->action_scale;
    return SGD_OK;
}

sgd_status sgd_monitor_observe(sgd_monitor *m, double loss, double grad_norm, double lr, int32_t *action,
                               double *lr_scale)
{
    return observe(m, "sgd_monitor_observe", -1, loss, grad_norm, lr, action, lr_scale);
}

sgd_status sgd_monitor_observe_step(sgd_monitor *m, int64_t step, double loss, double grad_norm, double lr,
                                    int32_t *action, double *lr_scale)
{
    return observe(m, "sgd_monitor_observe_step", step, loss, grad_norm, lr, action, lr_scale);
}

/*
 * The end of the log. On the block means of the whole curve (windows of a quarter of its length):
 * drift above the initial level; a spike before any progress and an end within noise of the start;
 * and, for a log shorter than stagnation_steps, stagnation by the rules of the running judgment.
 */
sgd_status sgd_monitor_finish(sgd_monitor *m, int32_t *verdict)
{
    static const char fn[] = "sgd_monitor_finish";
    if (verdict != NULL)
        *verdict = SGD_MONITOR_HEALTHY;
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: monitor is NULL", fn);
    if (m->in_callback)
        return sgd__err(SGD_ESTATE, "%s: called from a monitor callback", fn);
    const sgd_monitor_options *o = &m->o;
    mstate *s = &m->s;
    m->cb_status = SGD_OK;
    /* (After an import of a 0.1 state the bins hold only what came since.) */
    int64_t held = s->nbins * s->bsize + s->ccnt;
    if (!(s->flags & F_FINISHED) && (s->flags & F_STARTED) && s->finite >= o->min_steps && held >= o->min_steps) {
        s->flags |= F_FINISHED;
        m->emit_step = s->steps - 1;
        double loss = NAN, gn = -1.0, lr = -1.0;
        curve_summary c;
        judge_curve(m, &c);
        double yi = initial_level(m);
        double se_i = initial_se(m);
        loss = exp(s->yprev) + o->loss_floor;
        bool stagnant = (s->flags & F_STAG_ACTIVE) != 0;
        if (!(s->flags & (F_DIVERGED | F_OSC_ACTIVE | F_NONFINITE))) {
            double se = sqrt(c.end_se * c.end_se + se_i * se_i);
            double bound = yi + fmaxd(m->log_drift, o->stagnation_z * se);
            double least = fmaxd(m->p_low, o->stagnation_z * se);
            if (m->log_drift > 0.0 && c.end > bound) {
                s->flags |= F_DIVERGED;
                emit_drift(m, loss, gn, lr, exp(c.end - yi), exp(bound - yi));
            } else if (s->espike_t >= 0 && !(s->flags & F_ESPIKE_DONE) && yi - c.end < least) {
                emit_spike_stall(m, loss, gn, lr, yi - c.end, least);
            } else if (s->finite < o->stagnation_steps) {
                double se_b = sqrt(c.best_se * c.best_se + se_i * se_i);
                stag_test st = stagnant_by(m, yi - c.best, se_b, yi - c.best, c.rate_recent, c.rate_mean);
                stagnant = st.stagnant;
                if (stagnant && !(s->flags & F_STAG_ACTIVE)) {
                    s->flags |= F_STAG_ACTIVE;
                    if (s->espike_t >= 0)
                        emit_spike_stall(m, loss, gn, lr, yi - c.best, m->p_high);
                    else
                        emit_stagnation(m, &st, loss, gn, lr);
                }
            }
        }
        update_verdict(m, stagnant);
    }
    if (verdict != NULL)
        *verdict = s->verdict;
    return m->cb_status;
}

/* ------------------------------------------------------------ queries */

sgd_status sgd_monitor_get_verdict(const sgd_monitor *m, int32_t *verdict)
{
    if (verdict != NULL)
        *verdict = SGD_MONITOR_HEALTHY;
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "sgd_monitor_get_verdict: monitor is NULL");
    if (verdict == NULL)
        return sgd__err(SGD_EINVAL, "sgd_monitor_get_verdict: verdict is NULL");
    *verdict = m->s.verdict;
    return SGD_OK;
}

sgd_status sgd_monitor_get_counters(const sgd_monitor *m, sgd_monitor_counters *out)
{
    static const char fn[] = "sgd_monitor_get_counters";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: monitor is NULL", fn);
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    const mstate *s = &m->s;
    sgd_monitor_counters c;
    memset(&c, 0, sizeof c);
    c.struct_size = (uint32_t)sizeof c;
    c.verdict = s->verdict;
    c.steps = s->steps;
    c.nonfinite_steps = s->nonfinite;
    c.first_alarm = s->first_alarm;
    for (int k = 0; k < 8; k++) {
        c.events[k] = k < SGD_MONITOR_KIND_COUNT ? s->events[k] : 0;
        c.first_event[k] = k < SGD_MONITOR_KIND_COUNT ? s->first_event[k] : -1;
    }
    double fl = m->o.loss_floor;
    if (s->flags & F_STARTED) {
        c.smoothed = exp(s->level) + fl;
        c.best = exp(s->best) + fl;
        double yi = initial_level(m);
        c.initial = exp(yi) + fl;
        c.progress = -expm1(s->bslow - yi);
    } else {
        c.initial = m->init_given ? m->o.initial_loss : NAN;
        c.smoothed = c.best = NAN;
        c.progress = 0.0;
    }
    c.noise = s->noise;
    c.first_alarm_producer_step = s->first_alarm >= 0 ? s->first_alarm_pstep : -1;
    c.below_floor_steps = s->below_floor;
    c.grad_norm = s->gcount > 0 ? exp(s->glevel) : NAN;
    c.finished = (s->flags & F_FINISHED) ? 1 : 0;
    return SGD__FILL(out, &c, sgd_monitor_counters, fn, "out");
}

/* ------------------------------------------------------------ state export/import */

sgd_status sgd_monitor_state_size(const sgd_monitor *m, size_t *count)
{
    if (count != NULL)
        *count = 0;
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "sgd_monitor_state_size: monitor is NULL");
    if (count == NULL)
        return sgd__err(SGD_EINVAL, "sgd_monitor_state_size: count is NULL");
    *count = STATE_COUNT;
    return SGD_OK;
}

sgd_status sgd_monitor_state_export(const sgd_monitor *m, double *buf, size_t count)
{
    static const char fn[] = "sgd_monitor_state_export";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: monitor is NULL", fn);
    if (buf == NULL)
        return sgd__err(SGD_EINVAL, "%s: buf is NULL", fn);
    if (count < STATE_COUNT)
        return sgd__err(SGD_ESHAPE, "%s: count=%zu: the state needs %d doubles", fn, count, STATE_COUNT);
    const mstate *s = &m->s;
    double *p = buf;
    *p++ = STATE_TAG;
    *p++ = STATE_VERSION;
    *p++ = STATE_COUNT;
    *p++ = (double)s->steps;
    *p++ = (double)s->finite;
    *p++ = (double)s->nonfinite;
    *p++ = (double)s->flags;
    *p++ = (double)s->hist;
    *p++ = (double)s->ninit;
    *p++ = (double)s->nspike;
    *p++ = (double)s->spike_head;
    *p++ = (double)s->verdict;
    *p++ = (double)s->since_best;
    *p++ = (double)s->osc_run;
    *p++ = (double)s->first_alarm;
    *p++ = (double)s->spike_t;
    *p++ = s->y0;
    *p++ = s->yinit;
    *p++ = s->yprev;
    *p++ = s->level;
    *p++ = s->noise;
    *p++ = s->best;
    *p++ = s->e1;
    *p++ = s->c1;
    *p++ = s->e2;
    *p++ = s->c2;
    *p++ = s->bslow;
    *p++ = s->bfast;
    *p++ = s->ymax;
    *p++ = s->spike_pre;
    for (int k = 0; k < SGD_MONITOR_KIND_COUNT; k++)
        *p++ = (double)s->events[k];
    for (int k = 0; k < SGD_MONITOR_KIND_COUNT; k++)
        *p++ = (double)s->first_event[k];
    for (int k = 0; k < MAX_SPIKES; k++)
        *p++ = (double)s->spikes[k];
    *p++ = (double)s->pstep;
    *p++ = (double)s->first_alarm_pstep;
    *p++ = (double)s->spike_pstep;
    *p++ = (double)s->espike_t;
    *p++ = (double)s->espike_pstep;
    *p++ = (double)s->below_floor;
    *p++ = (double)s->gcount;
    *p++ = (double)s->nbins;
    *p++ = (double)s->bsize;
    *p++ = (double)s->ccnt;
    *p++ = (double)s->drift_run;
    *p++ = s->glevel;
    *p++ = s->gnoise;
    *p++ = s->gprev;
    *p++ = s->csum;
    for (int k = 0; k < NBINS; k++)
        *p++ = s->bsum[k];
    return (p - buf == STATE_COUNT) ? SGD_OK : sgd__err(SGD_EINTERNAL, "%s: state layout mismatch", fn);
}

/* Reads an integer field: finite, integral, in [lo, hi]. */
static bool get_int(const double **p, double lo, double hi, int64_t *out)
{
    double v = *(*p)++;
    if (!isfinite(v) || v != floor(v) || v < lo || v > hi)
        return false;
    *out = (int64_t)v;
    return true;
}

static bool get_real(const double **p, double *out)
{
    double v = *(*p)++;
    if (!isfinite(v) || fabs(v) > 1e15)
        return false;
    *out = v;
    return true;
}

sgd_status sgd_monitor_state_import(sgd_monitor *m, const double *buf, size_t count)
{
    static const char fn[] = "sgd_monitor_state_import";
    if (m == NULL)
        return sgd__err(SGD_EINVAL, "%s: monitor is NULL", fn);
    if (buf == NULL)
        return sgd__err(SGD_EINVAL, "%s: buf is NULL", fn);
    if (m->in_callback)
        return sgd__err(SGD_ESTATE, "%s: called from a monitor callback", fn);
    if (count < 3)
        return sgd__err(SGD_ESHAPE, "%s: count=%zu: too short for a monitor state", fn, count);
    if (buf[0] != STATE_TAG)
        return sgd__err(SGD_EFORMAT, "%s: not a monitor state (tag %g)", fn, buf[0]);
    /* Version 1 (libsgdlab 0.1) has 6 event kinds and no 0.2 fields: they start empty. */
    if (buf[1] != STATE_VERSION && buf[1] != 1.0)
        return sgd__err(SGD_EVERSION, "%s: state version %g; this library reads versions 1 and %g", fn, buf[1],
                        STATE_VERSION);
    bool v1 = buf[1] == 1.0;
    int want = v1 ? STATE_V1_COUNT : STATE_COUNT;
    int nkinds = v1 ? 6 : SGD_MONITOR_KIND_COUNT;
    if (buf[2] != want || count != (size_t)want)
        return sgd__err(SGD_ESHAPE, "%s: count=%zu (header says %g): a version-%g state has %d doubles", fn, count,
                        buf[2], buf[1], want);
    const double big = 9007199254740992.0; /* 2^53 */
    mstate s;
    state_clear(&s);
    const double *p = buf + 3;
    int64_t v;
    int field = 3;
#define GI(dst, lo, hi)                                                                    \
    do {                                                                                   \
        if (!get_int(&p, (lo), (hi), &v))                                                  \
            return sgd__err(SGD_EFORMAT, "%s: field %d (" #dst "): value %g out of range", fn, field, p[-1]); \
        s.dst = v;                                                                         \
        field++;                                                                           \
    } while (0)
#define GR(dst)                                                                            \
    do {                                                                                   \
        if (!get_real(&p, &s.dst))                                                         \
            return sgd__err(SGD_EFORMAT, "%s: field %d (" #dst "): value %g is not a finite number", fn, field, p[-1]); \
        field++;                                                                           \
    } while (0)
    GI(steps, 0, big);
    GI(finite, 0, (double)s.steps);
    GI(nonfinite, 0, (double)s.steps);
    GI(flags, 0, v1 ? F_V1_ALL : F_ALL);
    GI(hist, 0, 4294967295.0);
    GI(ninit, 0, 1000);
    GI(nspike, 0, MAX_SPIKES);
    GI(spike_head, 0, MAX_SPIKES - 1);
    GI(verdict, 0, 3);
    GI(since_best, 0, big);
    GI(osc_run, 0, big);
    GI(first_alarm, -1, big);
    GI(spike_t, -1, big);
    GR(y0);
    GR(yinit);
    GR(yprev);
    GR(level);
    GR(noise);
    GR(best);
    GR(e1);
    GR(c1);
    GR(e2);
    GR(c2);
    GR(bslow);
    GR(bfast);
    GR(ymax);
    GR(spike_pre);
    for (int k = 0; k < nkinds; k++)
        GI(events[k], 0, big);
    for (int k = 0; k < nkinds; k++)
        GI(first_event[k], -1, big);
    for (int k = 0; k < MAX_SPIKES; k++)
        GI(spikes[k], 0, big);
    if (!v1) {
        GI(pstep, -1, big);
        GI(first_alarm_pstep, -1, big);
        GI(spike_pstep, -1, big);
        GI(espike_t, -1, (double)s.steps);
        GI(espike_pstep, -1, big);
        GI(below_floor, 0, (double)s.finite);
        GI(gcount, 0, (double)s.steps);
        GI(nbins, 0, NBINS - 1);
        GI(bsize, 1, big);
        GI(ccnt, 0, (double)(s.bsize - 1));
        GI(drift_run, 0, big);
        GR(glevel);
        GR(gnoise);
        GR(gprev);
        GR(csum);
        for (int k = 0; k < NBINS; k++)
            GR(bsum[k]);
        if ((s.bsize & (s.bsize - 1)) != 0)
            return sgd__err(SGD_EFORMAT, "%s: bin size %lld is not a power of 2", fn, (long long)s.bsize);
        if (s.gnoise < 0.0)
            return sgd__err(SGD_EFORMAT, "%s: negative gradient-norm noise %g", fn, s.gnoise);
        /* The bins hold the finite observations (fewer after a version-1 import). */
        double held = (double)s.nbins * (double)s.bsize + (double)s.ccnt;
        if (held > (double)s.finite)
            return sgd__err(SGD_EFORMAT, "%s: the bins hold %g observations, more than the %lld finite ones", fn,
                            held, (long long)s.finite);
    }
#undef GI
#undef GR
    if (s.noise < 0.0)
        return sgd__err(SGD_EFORMAT, "%s: negative noise %g", fn, s.noise);
    if ((s.flags & F_STARTED) && s.ninit < 1)
        return sgd__err(SGD_EFORMAT, "%s: started state without an initial level", fn);
    m->s = s;
    return SGD_OK;
}
