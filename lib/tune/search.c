/*
 * Grid and random search over the learning rate (and optionally the
 * optimizer, its momentum and the batch size), with the built-in trainer or a
 * host objective, on one thread or several.
 * SPDX-License-Identifier: MIT
 */
#include "trainer/trainer_internal.h"
#include "core/abi.h"

#include "sgdlab/tune.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define MAX_LR_COUNT 4096
#define MAX_TRIALS ((int64_t)1 << 20)
#define MAX_THREADS 256
#define MAX_SPEC 4096
#define MAX_SHARDS ((int32_t)1 << 20)

static const char default_optimizer[] = "sgd:momentum=0.9";

struct sgd_search {
    sgd_allocator alloc;
    size_t n;
    sgd_search_trial *trials;
    size_t n_opt;
    char **opt; /* copies of the optimizer templates */
};

/* 0.2 appended the shard fields: 0.1's programs keep an init that writes 0.1's 184 bytes (core/abi.h). */
SGD__COMPAT_INIT(void, sgd_search_options_init, sgd_search_options, v0_1, "SGDLAB_0.1")
void sgd_search_options_init__v0_2(sgd_search_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->method = SGD_SEARCH_GRID;
    o->lr_min = 1e-4;
    o->lr_max = 10;
    o->lr_count = 11;
    o->trials = 16;
    o->seed = 0;
    o->max_steps = 0;
    o->schedule = NULL;
    o->threads = 1;
    o->shard_index = 0;
    o->shard_count = 1;
}

void sgd_search_free(sgd_search *s)
{
    if (s == NULL)
        return;
    const sgd_allocator *a = &s->alloc;
    if (s->opt != NULL)
        for (size_t i = 0; i < s->n_opt; i++)
            sgd__free(a, s->opt[i]);
    sgd__free(a, s->opt);
    sgd__free(a, s->trials);
    sgd__free(a, s);
}

size_t sgd_search_count(const sgd_search *s)
{
    return s ? s->n : 0;
}

sgd_status sgd_search_get_trial(const sgd_search *s, size_t i, sgd_search_trial *out)
{
    static const char fn[] = "sgd_search_get_trial";
    if (s == NULL || out == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, s == NULL ? "search" : "out");
    if (i >= s->n)
        return sgd__err(SGD_EINVAL, "%s: i=%zu: the search has %zu trials", fn, i, s->n);
    return SGD__FILL(out, &s->trials[i], sgd_search_trial, fn, "out");
}

sgd_status sgd_search_set_trial(sgd_search *s, size_t i, const sgd_search_trial *trial)
{
    static const char fn[] = "sgd_search_set_trial";
    if (s == NULL || trial == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, s == NULL ? "search" : "trial");
    if (i >= s->n)
        return sgd__err(SGD_EINVAL, "%s: i=%zu: the search has %zu trials", fn, i, s->n);
    sgd_search_trial *t = &s->trials[i];
    /* What the caller's struct holds over this trial's record (so members past its struct_size keep theirs). */
    sgd_search_trial in = *t;
    sgd_status st = sgd__options_copy(&in, sizeof in, trial, SGD__FIRST(sgd_search_trial), fn, "trial");
    if (st != SGD_OK)
        return st;
    trial = &in;
    const char *differs = NULL;
    if (trial->index != t->index)
        differs = "index";
    else if (!(trial->lr == t->lr))
        differs = "lr";
    else if (trial->optimizer == NULL || strcmp(trial->optimizer, t->optimizer) != 0)
        differs = "optimizer";
    else if (!(trial->momentum == t->momentum || (isnan(trial->momentum) && isnan(t->momentum))))
        differs = "momentum";
    else if (trial->batch_size != t->batch_size)
        differs = "batch_size";
    else if (trial->seed != t->seed)
        differs = "seed";
    if (differs != NULL)
        return sgd__err(SGD_EINVAL, "%s: trial %zu: its %s is not this search's trial %zu's", fn, i, differs, i);
    if (trial->status != SGD_OK && trial->status != SGD_EDIVERGED)
        return sgd__err(SGD_ERANGE, "%s: trial %zu: status=%d: must be SGD_OK or SGD_EDIVERGED", fn, i,
                        (int)trial->status);
    if (trial->steps < 0 || trial->max_steps < 0)
        return sgd__err(SGD_ERANGE, "%s: trial %zu: steps=%lld, max_steps=%lld: must be >= 0", fn, i,
                        (long long)trial->steps, (long long)trial->max_steps);
    if (!(isnan(trial->val_accuracy) || (trial->val_accuracy >= 0 && trial->val_accuracy <= 1)))
        return sgd__err(SGD_ERANGE, "%s: trial %zu: val_accuracy=%g: must be NaN or in [0, 1]", fn, i,
                        trial->val_accuracy);
    t->status = trial->status;
    t->max_steps = trial->max_steps;
    t->final_loss = trial->final_loss;
    t->val_loss = trial->val_loss;
    t->val_accuracy = trial->val_accuracy;
    t->verdict = trial->verdict;
    t->stop_reason = trial->stop_reason;
    t->steps = trial->steps;
    t->first_alarm = trial->first_alarm;
    t->seconds = trial->seconds;
    return SGD_OK;
}

sgd_status sgd_search_best(const sgd_search *s, size_t *index)
{
    if (s == NULL || index == NULL)
        return sgd__err(SGD_EINVAL, "sgd_search_best: %s is NULL", s == NULL ? "search" : "index");
    size_t best = SIZE_MAX;
    bool by_acc = false;
    for (size_t i = 0; i < s->n; i++)
        if (isfinite(s->trials[i].val_accuracy))
            by_acc = true;
    for (size_t i = 0; i < s->n; i++) {
        const sgd_search_trial *t = &s->trials[i];
        if (t->status != SGD_OK || t->verdict == SGD_MONITOR_DIVERGED)
            continue;
        if (by_acc) {
            if (!isfinite(t->val_accuracy))
                continue;
            if (best == SIZE_MAX || t->val_accuracy > s->trials[best].val_accuracy ||
                (t->val_accuracy == s->trials[best].val_accuracy && t->final_loss < s->trials[best].final_loss))
                best = i;
        } else {
            if (!isfinite(t->final_loss))
                continue;
            if (best == SIZE_MAX || t->final_loss < s->trials[best].final_loss)
                best = i;
        }
    }
    if (best == SIZE_MAX)
        return sgd__err(SGD_ENOTFOUND, "sgd_search_best: no trial finished without diverging");
    *index = best;
    return SGD_OK;
}

/* ------------------------------------------------------------ options and the trial list */

static sgd_status check_options(const sgd_search_options *o, const char *fn)
{
    if (o->method != SGD_SEARCH_GRID && o->method != SGD_SEARCH_RANDOM)
        return sgd__err(SGD_EINVAL, "%s: method=%d: must be 0 (grid) or 1 (random)", fn, (int)o->method);
    if (o->lrs == NULL || o->method == SGD_SEARCH_RANDOM) {
        if (!(o->lr_min > 0 && isfinite(o->lr_min)))
            return sgd__err(SGD_ERANGE, "%s: lr_min=%g: must be finite and > 0", fn, o->lr_min);
        if (!(o->lr_max >= o->lr_min && isfinite(o->lr_max)))
            return sgd__err(SGD_ERANGE, "%s: lr_max=%g: must be finite and >= lr_min=%g", fn, o->lr_max, o->lr_min);
    }
    if (o->method == SGD_SEARCH_GRID && o->lrs == NULL && (o->lr_count < 1 || o->lr_count > MAX_LR_COUNT))
        return sgd__err(SGD_ERANGE, "%s: lr_count=%lld: must be in [1, %d]", fn, (long long)o->lr_count,
                        MAX_LR_COUNT);
    if (o->lrs != NULL) {
        if (o->n_lrs == 0 || o->n_lrs > MAX_LR_COUNT)
            return sgd__err(SGD_ERANGE, "%s: n_lrs=%zu: must be in [1, %d]", fn, o->n_lrs, MAX_LR_COUNT);
        for (size_t i = 0; i < o->n_lrs; i++)
            if (!(o->lrs[i] > 0 && isfinite(o->lrs[i])))
                return sgd__err(SGD_ERANGE, "%s: lrs[%zu]=%g: must be finite and > 0", fn, i, o->lrs[i]);
    }
    if (o->optimizers != NULL) {
        if (o->n_optimizers == 0 || o->n_optimizers > 1024)
            return sgd__err(SGD_ERANGE, "%s: n_optimizers=%zu: must be in [1, 1024]", fn, o->n_optimizers);
        for (size_t i = 0; i < o->n_optimizers; i++)
            if (o->optimizers[i] == NULL || strlen(o->optimizers[i]) >= MAX_SPEC / 2)
                return sgd__err(SGD_EINVAL, "%s: optimizers[%zu] is NULL or longer than %d bytes", fn, i,
                                MAX_SPEC / 2);
    }
    if (o->momenta != NULL) {
        if (o->n_momenta == 0 || o->n_momenta > 1024)
            return sgd__err(SGD_ERANGE, "%s: n_momenta=%zu: must be in [1, 1024]", fn, o->n_momenta);
        for (size_t i = 0; i < o->n_momenta; i++)
            if (!(o->momenta[i] >= 0 && o->momenta[i] < 1))
                return sgd__err(SGD_ERANGE, "%s: momenta[%zu]=%g: must be in [0, 1)", fn, i, o->momenta[i]);
    }
    if (o->batch_sizes != NULL) {
        if (o->n_batch_sizes == 0 || o->n_batch_sizes > 1024)
            return sgd__err(SGD_ERANGE, "%s: n_batch_sizes=%zu: must be in [1, 1024]", fn, o->n_batch_sizes);
        for (size_t i = 0; i < o->n_batch_sizes; i++)
            if (o->batch_sizes[i] < 1 || o->batch_sizes[i] > SGD_MODEL_MAX_BATCH)
                return sgd__err(SGD_ERANGE, "%s: batch_sizes[%zu]=%lld: must be in [1, %lld]", fn, i,
                                (long long)o->batch_sizes[i], (long long)SGD_MODEL_MAX_BATCH);
    }
    if (o->method == SGD_SEARCH_RANDOM && (o->trials < 1 || o->trials > MAX_TRIALS))
        return sgd__err(SGD_ERANGE, "%s: trials=%lld: must be in [1, %lld]", fn, (long long)o->trials,
                        (long long)MAX_TRIALS);
    if (o->max_steps < 0)
        return sgd__err(SGD_ERANGE, "%s: max_steps=%lld: must be >= 0 (0: the trainer's epochs)", fn,
                        (long long)o->max_steps);
    if (o->threads < 1 || o->threads > MAX_THREADS)
        return sgd__err(SGD_ERANGE, "%s: threads=%d: must be in [1, %d]", fn, (int)o->threads, MAX_THREADS);
    if (o->schedule != NULL && strlen(o->schedule) >= MAX_SPEC / 2)
        return sgd__err(SGD_EINVAL, "%s: schedule: longer than %d bytes", fn, MAX_SPEC / 2);
    if (o->shard_count < 1 || o->shard_count > MAX_SHARDS)
        return sgd__err(SGD_ERANGE, "%s: shard_count=%d: must be in [1, %d]", fn, (int)o->shard_count,
                        (int)MAX_SHARDS);
    if (o->shard_index < 0 || o->shard_index >= o->shard_count)
        return sgd__err(SGD_ERANGE, "%s: shard_index=%d: must be in [0, shard_count=%d)", fn, (int)o->shard_index,
                        (int)o->shard_count);
    return SGD_OK;
}

/* Whether an optimizer template names its own lr ("prodigy:lr=1"), and which. */
static bool fixed_lr(const char *tmpl, double *lr)
{
    sgd__spec sp;
    char keep[1024];
    snprintf(keep, sizeof keep, "%s", sgd_error_last());
    if (sgd__spec_split(&sp, tmpl, strlen(tmpl), ',', "sgd_search") != SGD_OK) {
        sgd__err(SGD_OK, "%s", keep); /* the caller's message stays; the template is refused when its trial is built */
        return false;
    }
    for (size_t i = 0; i < sp.n; i++)
        if (sgd__str_eq(sp.kv[i].key, "lr"))
            return sgd__parse_double(sp.kv[i].val, false, lr) == SGD_OK && *lr >= 0.0;
    return false;
}

/* Builds the result with its trials' inputs (outputs reset). */
static sgd_status make_trials(sgd_search **out, const sgd_search_options *o, const sgd_trainer_options *to,
                              const sgd_allocator *al, const char *fn)
{
    sgd_search *s = sgd__malloc(al, sizeof *s);
    if (s == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    memset(s, 0, sizeof *s);
    s->alloc = *al;
    const char *const *opts_list = o->optimizers;
    size_t n_opt = o->optimizers != NULL ? o->n_optimizers : 1;
    s->n_opt = n_opt;
    if ((s->opt = sgd__calloc(al, n_opt, sizeof *s->opt)) == NULL)
        goto nomem;
    for (size_t i = 0; i < n_opt; i++)
        if ((s->opt[i] = sgd__strdup(al, opts_list != NULL ? opts_list[i] : default_optimizer)) == NULL)
            goto nomem;
    size_t n_mom = o->momenta != NULL ? o->n_momenta : 1;
    size_t n_bs = o->batch_sizes != NULL ? o->n_batch_sizes : 1;
    size_t n_lr = o->lrs != NULL ? o->n_lrs : (size_t)o->lr_count;
    /* A template that names its lr runs at that lr only (a learning-rate-free method next to the grid). */
    size_t total = 0;
    if (o->method == SGD_SEARCH_RANDOM) {
        total = (size_t)o->trials;
    } else {
        for (size_t io = 0; io < n_opt; io++) {
            size_t per;
            double fixed;
            if (!sgd__mul_size(n_mom, n_bs, &per) || !sgd__mul_size(per, fixed_lr(s->opt[io], &fixed) ? 1 : n_lr, &per) ||
                !sgd__add_size(total, per, &total) || total > (size_t)MAX_TRIALS) {
                sgd_search_free(s);
                return sgd__err(SGD_EOVERFLOW, "%s: the grid has more than %lld trials", fn, (long long)MAX_TRIALS);
            }
        }
    }
    if ((s->trials = sgd__calloc(al, total, sizeof *s->trials)) == NULL)
        goto nomem;
    s->n = total;
    sgd__rng rng;
    sgd__rng_seed(&rng, o->seed ^ 0x5ea2c4e17b9d3f01ULL);
    size_t g_io = 0, g_im = 0, g_ib = 0, g_il = 0; /* the grid's position: the learning rate varies fastest */
    for (size_t i = 0; i < total; i++) {
        sgd_search_trial *t = &s->trials[i];
        size_t io, im, ib;
        double lr, fixed;
        if (o->method == SGD_SEARCH_RANDOM) {
            double u = sgd__rng_uniform(&rng);
            lr = exp(log(o->lr_min) + u * (log(o->lr_max) - log(o->lr_min)));
            io = (size_t)sgd__rng_below(&rng, n_opt);
            im = (size_t)sgd__rng_below(&rng, n_mom);
            ib = (size_t)sgd__rng_below(&rng, n_bs);
            if (fixed_lr(s->opt[io], &fixed))
                lr = fixed;
        } else {
            io = g_io, im = g_im, ib = g_ib;
            size_t il = g_il;
            bool is_fixed = fixed_lr(s->opt[io], &fixed);
            if (is_fixed)
                lr = fixed;
            else if (o->lrs != NULL)
                lr = o->lrs[il];
            else if (n_lr == 1)
                lr = o->lr_min;
            else
                lr = exp(log(o->lr_min) + (double)il / (double)(n_lr - 1) * (log(o->lr_max) - log(o->lr_min)));
            if (is_fixed || ++g_il == n_lr) {
                g_il = 0;
                if (++g_ib == n_bs) {
                    g_ib = 0;
                    if (++g_im == n_mom)
                        g_im = 0, g_io++;
                }
            }
        }
        t->struct_size = sizeof *t;
        t->index = (int64_t)i;
        t->lr = lr;
        t->optimizer = s->opt[io];
        t->momentum = o->momenta != NULL ? o->momenta[im] : NAN;
        t->batch_size = o->batch_sizes != NULL ? o->batch_sizes[ib] : to->batch_size;
        t->seed = o->seed;
        t->final_loss = NAN;
        t->val_loss = NAN;
        t->val_accuracy = NAN;
        t->verdict = -1;
        t->first_alarm = -1;
        if ((int64_t)(i % (size_t)o->shard_count) != o->shard_index)
            t->status = SGD_ENOTFOUND; /* another shard's: filled in by sgd_search_set_trial() */
    }
    *out = s;
    return SGD_OK;
nomem:
    sgd_search_free(s);
    return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
}

/*
 * The trial's optimizer spec: the template's kind, "lr=<lr>", the template's
 * pairs except lr (and the momentum key when the trial sets one), then the
 * trial's momentum under the name its kind uses.
 */
static sgd_status optimizer_spec(char *buf, size_t cap, const char *tmpl, double lr, double momentum,
                                 const char *fn)
{
    sgd__spec sp;
    sgd_status st = sgd__spec_split(&sp, tmpl, strlen(tmpl), ',', fn);
    if (st != SGD_OK)
        return st;
    const char *mom_key = NULL;
    if (!isnan(momentum)) {
        /* The kind's momentum coefficient, from its listing (SGD_OPTIM_HPARAM_MOMENTUM). */
        char kind[SGD_OPTIM_MAX_NAME + 1];
        snprintf(kind, sizeof kind, "%.*s", (int)(sp.kind.n < SGD_OPTIM_MAX_NAME ? sp.kind.n : SGD_OPTIM_MAX_NAME),
                 sp.kind.p);
        size_t count = sgd_optim_kind_hparam_count(kind);
        for (size_t i = 0; i < count && mom_key == NULL; i++) {
            sgd_optim_hparam h;
            sgd_optim_hparam_init(&h);
            if (sgd_optim_kind_hparam(kind, i, &h) == SGD_OK && (h.flags & SGD_OPTIM_HPARAM_MOMENTUM))
                mom_key = h.name;
        }
        if (mom_key == NULL)
            return sgd__err(SGD_EINVAL, "%s: optimizer '%s': momenta given but '%s' has no momentum coefficient", fn,
                            tmpl, kind);
    }
    int w = snprintf(buf, cap, "%.*s:lr=%.17g", (int)sp.kind.n, sp.kind.p, lr);
    for (size_t i = 0; i < sp.n && w >= 0 && (size_t)w < cap; i++) {
        if (sgd__str_eq(sp.kv[i].key, "lr") || (mom_key != NULL && sgd__str_eq(sp.kv[i].key, mom_key)))
            continue;
        w += snprintf(buf + w, cap - (size_t)w, ",%.*s=%.*s", (int)sp.kv[i].key.n, sp.kv[i].key.p,
                      (int)sp.kv[i].val.n, sp.kv[i].val.p);
    }
    if (mom_key != NULL && w >= 0 && (size_t)w < cap)
        w += snprintf(buf + w, cap - (size_t)w, ",%s=%.17g", mom_key, momentum);
    if (w < 0 || (size_t)w >= cap)
        return sgd__err(SGD_EINVAL, "%s: optimizer '%s': spec too long", fn, tmpl);
    return SGD_OK;
}

/* ------------------------------------------------------------ running */

typedef struct job {
    const sgd_search_options *o;
    sgd_trainer_options to;
    const char *model_spec;
    sgd_search_objective objective;
    void *objective_user;
    sgd_search *s;
    const sgd_allocator *alloc;
    pthread_mutex_t mu;
    size_t next;   /* the next trial index to run (of this shard) */
    size_t stride; /* shard_count */
    int64_t total; /* trials this shard runs */
    int64_t done;
    sgd_status failed;
    char failmsg[512];
} job;

typedef struct worker {
    job *j;
    sgd_dataset *train; /* this worker's views */
    sgd_dataset *val;
    int64_t trial;      /* the trial it runs, for the callbacks */
    pthread_t th;
} worker;

static int32_t on_progress(const sgd_trainer_progress *p, void *user)
{
    worker *w = user;
    if (p->phase == SGD_TRAINER_PHASE_STEP && w->j->o->on_step != NULL) {
        pthread_mutex_lock(&w->j->mu);
        w->j->o->on_step(w->trial, p->step - 1, p->loss, p->lr, w->j->o->user);
        pthread_mutex_unlock(&w->j->mu);
    }
    return 0;
}

static int32_t on_event(const sgd_trainer_event *ev, double *lr_scale, void *user)
{
    (void)lr_scale;
    worker *w = user;
    pthread_mutex_lock(&w->j->mu);
    w->j->o->on_event(w->trial, ev, w->j->o->user);
    pthread_mutex_unlock(&w->j->mu);
    return ev->action;
}

static int64_t batches_per_epoch(int64_t rows, int64_t bs, int32_t drop_last)
{
    return drop_last ? rows / bs : (rows + bs - 1) / bs;
}

/* One trial with the built-in trainer. Returns SGD_OK or SGD_EDIVERGED (recorded), or an error. */
static sgd_status run_builtin(worker *w, sgd_search_trial *t)
{
    static const char fn[] = "sgd_search_run";
    job *j = w->j;
    const sgd_search_options *o = j->o;
    const sgd_allocator *al = j->alloc;
    sgd_model *m = NULL;
    sgd_optim *opt = NULL;
    sgd_sched *sch = NULL;
    sgd_monitor *mon = NULL;
    sgd_trainer *tr = NULL;
    char spec[MAX_SPEC];
    sgd_status st;

    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.seed = t->seed;
    mo.max_batch = t->batch_size;
    if ((st = sgd_model_from_spec(&m, j->model_spec, &mo, al)) != SGD_OK)
        goto out;
    if ((st = optimizer_spec(spec, sizeof spec, t->optimizer, t->lr, t->momentum, fn)) != SGD_OK)
        goto out;
    if ((st = sgd_optim_new(&opt, spec, sgd_model_num_params(m), al)) != SGD_OK)
        goto out;
    int64_t nb = batches_per_epoch(sgd_dataset_size(w->train), t->batch_size, j->to.drop_last);
    int64_t planned = nb * j->to.epochs;
    t->max_steps = o->max_steps > 0 && o->max_steps < planned ? o->max_steps : planned;
    const char *sched = o->schedule;
    if (sched == NULL || strcmp(sched, "cosine") == 0) {
        snprintf(spec, sizeof spec, "cosine:T_max=%lld", (long long)(t->max_steps > 0 ? t->max_steps : 1));
        sched = spec;
    }
    if (strcmp(sched, "constant") != 0 && (st = sgd_sched_new(&sch, sched, t->lr, al)) != SGD_OK)
        goto out;
    if ((st = sgd_monitor_new(&mon, o->monitor, al)) != SGD_OK)
        goto out;
    sgd_trainer_options to = j->to;
    to.batch_size = t->batch_size;
    to.seed = t->seed;
    if (o->on_step != NULL)
        to.progress_interval = 1;
    if ((st = sgd_trainer_new(&tr, m, opt, sch, mon, w->train, NULL, &to, al)) != SGD_OK)
        goto out;
    if (o->on_step != NULL)
        sgd_trainer_set_progress(tr, on_progress, w);
    if (o->on_event != NULL)
        sgd_trainer_set_event_callback(tr, on_event, w);
    st = sgd_trainer_fit(tr, o->max_steps > 0 ? t->max_steps : 0);
    if (st != SGD_OK && st != SGD_EDIVERGED)
        goto out;
    t->status = st;
    sgd_trainer_stats ts;
    memset(&ts, 0, sizeof ts);
    ts.struct_size = sizeof ts;
    sgd_trainer_get_stats(tr, &ts);
    t->final_loss = ts.recent_loss;
    t->steps = ts.batches_run;
    t->stop_reason = sgd_trainer_stop_reason(tr);
    sgd_monitor_counters mc;
    memset(&mc, 0, sizeof mc);
    mc.struct_size = sizeof mc;
    sgd_monitor_get_counters(mon, &mc);
    t->verdict = mc.verdict;
    t->first_alarm = mc.first_alarm;
    if (w->val != NULL) { /* at the optimizer's evaluation point (schedule-free: the average) */
        sgd_status est = sgd_optim_eval_point(opt, sgd_model_params(m), 1);
        if (est == SGD_OK)
            est = sgd_model_evaluate(m, w->val, 0, &t->val_loss, &t->val_accuracy);
        if (est != SGD_OK) {
            st = est;
            goto out;
        }
    }
    st = SGD_OK;
out:
    if (st != SGD_OK)
        sgd__err_prefix("%s: trial %lld (lr %g, %s)", fn, (long long)t->index, t->lr, t->optimizer);
    sgd_trainer_free(tr);
    sgd_monitor_free(mon);
    sgd_sched_free(sch);
    sgd_optim_free(opt);
    sgd_model_free(m);
    return st;
}

static void *work(void *arg)
{
    worker *w = arg;
    job *j = w->j;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        if (j->failed != SGD_OK || j->next >= j->s->n) {
            pthread_mutex_unlock(&j->mu);
            break;
        }
        size_t i = j->next;
        j->next += j->stride;
        pthread_mutex_unlock(&j->mu);

        sgd_search_trial t = j->s->trials[i];
        w->trial = (int64_t)i;
        double t0 = sgd__now_seconds();
        sgd_status st;
        if (j->objective != NULL) {
            sgd_search_trial in = t;
            t.max_steps = j->o->max_steps;
            sgd_error_clear();
            st = j->objective(&t, j->objective_user);
            /* The inputs are the library's: keep them whatever the objective wrote. */
            t.struct_size = in.struct_size;
            t.index = in.index;
            t.lr = in.lr;
            t.optimizer = in.optimizer;
            t.momentum = in.momentum;
            t.batch_size = in.batch_size;
            t.seed = in.seed;
            t.max_steps = j->o->max_steps;
            if (st == SGD_OK || st == SGD_EDIVERGED)
                t.status = st;
            else if (sgd_error_last()[0] == '\0')
                sgd__err(st, "sgd_search_run_objective: trial %lld: the objective returned %s", (long long)i,
                         sgd_status_str(st));
            else
                sgd__err_prefix("sgd_search_run_objective: trial %lld: the objective returned %s", (long long)i,
                                sgd_status_str(st));
        } else {
            st = run_builtin(w, &t);
        }
        t.seconds = sgd__now_seconds() - t0;

        pthread_mutex_lock(&j->mu);
        if (st != SGD_OK && st != SGD_EDIVERGED) {
            if (j->failed == SGD_OK) {
                j->failed = st;
                snprintf(j->failmsg, sizeof j->failmsg, "%s", sgd_error_last());
            }
        } else {
            j->s->trials[i] = t;
            j->done++;
            if (j->o->on_trial != NULL)
                j->o->on_trial(&j->s->trials[i], j->done, j->total, j->o->user);
        }
        pthread_mutex_unlock(&j->mu);
    }
    return NULL;
}

static sgd_status run(sgd_search **out, const char *model_spec, const sgd_dataset *train, const sgd_dataset *val,
                      sgd_search_objective objective, void *objective_user, const sgd_search_options *opts,
                      const sgd_allocator *alloc, const char *fn)
{
    sgd_allocator al;
    sgd_status st = sgd__allocator_init(&al, alloc, fn);
    if (st != SGD_OK)
        return st;
    sgd_search_options o;
    sgd_search_options_init(&o);
    if ((st = sgd__options_copy(&o, sizeof o, opts, SGD__FIRST(sgd_search_options), fn, "opts")) != SGD_OK)
        return st;
    if ((st = check_options(&o, fn)) != SGD_OK)
        return st;
    job j;
    memset(&j, 0, sizeof j);
    j.o = &o;
    sgd_trainer_options_init(&j.to);
    j.to.guard = 0;
    if (o.trainer != NULL) {
        if ((st = sgd__options_copy(&j.to, sizeof j.to, o.trainer, SGD__FIRST(sgd_trainer_options), fn,
                                    "trainer")) != SGD_OK)
            return st;
        if ((st = sgd__trainer_options_check(&j.to, fn)) != SGD_OK)
            return st;
    }
    if (o.monitor != NULL) {
        sgd_monitor *probe; /* the options are checked once here rather than in every trial */
        if ((st = sgd_monitor_new(&probe, o.monitor, &al)) != SGD_OK)
            return st;
        sgd_monitor_free(probe);
    }
    j.model_spec = model_spec;
    j.objective = objective;
    j.objective_user = objective_user;
    j.alloc = &al;
    sgd_search *s = NULL;
    if ((st = make_trials(&s, &o, &j.to, &al, fn)) != SGD_OK)
        return st;
    j.s = s;
    j.next = (size_t)o.shard_index;
    j.stride = (size_t)o.shard_count;
    j.total = s->n > j.next ? (int64_t)((s->n - j.next + j.stride - 1) / j.stride) : 0;
    if (objective == NULL) {
        /* Check every optimizer template (and momentum) before training anything. */
        char spec[MAX_SPEC];
        for (size_t i = 0; i < s->n_opt; i++) {
            double mom = o.momenta != NULL ? o.momenta[0] : NAN;
            if ((st = optimizer_spec(spec, sizeof spec, s->opt[i], 1e-3, mom, fn)) != SGD_OK) {
                sgd_search_free(s);
                return st;
            }
            sgd_optim *probe;
            if ((st = sgd_optim_new(&probe, spec, 1, &al)) != SGD_OK) {
                sgd__err_prefix("%s: optimizers[%zu] '%s'", fn, i, s->opt[i]);
                sgd_search_free(s);
                return st;
            }
            sgd_optim_free(probe);
        }
    }
    size_t nw = (int64_t)o.threads < j.total ? (size_t)o.threads : (size_t)j.total;
    if (nw == 0)
        nw = 1;
    worker *ws = sgd__calloc(&al, nw, sizeof *ws);
    if (ws == NULL) {
        sgd_search_free(s);
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    }
    for (size_t k = 0; k < nw && st == SGD_OK; k++) {
        ws[k].j = &j;
        if (train != NULL)
            st = sgd_dataset_subset(&ws[k].train, train, 0, sgd_dataset_size(train));
        if (st == SGD_OK && val != NULL)
            st = sgd_dataset_subset(&ws[k].val, val, 0, sgd_dataset_size(val));
    }
    if (st == SGD_OK && pthread_mutex_init(&j.mu, NULL) != 0)
        st = sgd__err(SGD_ENOMEM, "%s: cannot create a mutex", fn);
    if (st == SGD_OK) {
        size_t started = 0;
        for (size_t k = 1; k < nw; k++) {
            if (pthread_create(&ws[k].th, NULL, work, &ws[k]) != 0)
                break;
            started = k;
        }
        work(&ws[0]);
        for (size_t k = 1; k <= started; k++)
            pthread_join(ws[k].th, NULL);
        pthread_mutex_destroy(&j.mu);
        if (j.failed != SGD_OK)
            st = sgd__err(j.failed, "%s", j.failmsg);
    }
    for (size_t k = 0; k < nw; k++) {
        sgd_dataset_free(ws[k].train);
        sgd_dataset_free(ws[k].val);
    }
    sgd__free(&al, ws);
    if (st != SGD_OK) {
        sgd_search_free(s);
        return st;
    }
    *out = s;
    return SGD_OK;
}

sgd_status sgd_search_run(sgd_search **out, const char *model_spec, const sgd_dataset *train,
                          const sgd_dataset *val, const sgd_search_options *opts, const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_search_run";
    if (out != NULL)
        *out = NULL;
    if (out == NULL || model_spec == NULL || train == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn,
                        out == NULL ? "out" : model_spec == NULL ? "model_spec" : "train");
    /* Check the model spec and the data once, before any trial. */
    sgd_model *probe;
    sgd_status st = sgd_model_from_spec(&probe, model_spec, NULL, alloc);
    if (st != SGD_OK)
        return st;
    st = sgd__check_dataset_fits(probe, train, fn, "train");
    if (st == SGD_OK && val != NULL)
        st = sgd__check_dataset_fits(probe, val, fn, "val");
    sgd_model_free(probe);
    if (st != SGD_OK)
        return st;
    return run(out, model_spec, train, val, NULL, NULL, opts, alloc, fn);
}

sgd_status sgd_search_run_objective(sgd_search **out, sgd_search_objective fn, void *user,
                                    const sgd_search_options *opts, const sgd_allocator *alloc)
{
    static const char name[] = "sgd_search_run_objective";
    if (out != NULL)
        *out = NULL;
    if (out == NULL || fn == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", name, out == NULL ? "out" : "fn");
    return run(out, NULL, NULL, NULL, fn, user, opts, alloc, name);
}
