/*
 * The trainer: epochs, validation, early stopping, progress, the guard
 * (rescues, giving up, host overrides), momentum forwarding, plateau
 * feeding, state export/import (bit-exact resume), bad input, allocation
 * failures, and no allocation while training.
 * SPDX-License-Identifier: MIT
 */
#include "util/sgdtest.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ data */

/* Three interleaved spirals in the plane, `per` points per class, seeded. */
typedef struct spirals {
    float x[2 * 3 * 200];
    int32_t y[3 * 200];
    int64_t n;
} spirals;

static void make_spirals(spirals *s, int64_t per, uint32_t seed)
{
    assert_true(per <= 200);
    s->n = 3 * per;
    uint32_t r = seed * 2654435761u + 1u;
    for (int64_t k = 0; k < 3; k++)
        for (int64_t i = 0; i < per; i++) {
            int64_t row = k * per + i;
            double rad = (double)i / (double)(per - 1);
            r = r * 1664525u + 1013904223u;
            double noise = ((double)(r >> 8) / 16777216.0 - 0.5) * 0.4;
            double t = 4.0 * (double)k + 4.0 * rad + noise;
            s->x[2 * row] = (float)(rad * sin(t));
            s->x[2 * row + 1] = (float)(rad * cos(t));
            s->y[row] = (int32_t)k;
        }
}

static spirals train_data, val_data;

static int setup(void **state)
{
    (void)state;
    make_spirals(&train_data, 200, 1);
    make_spirals(&val_data, 100, 2);
    return 0;
}

typedef struct rig {
    sgd_dataset *train, *val;
    sgd_model *m;
    sgd_optim *o;
    sgd_sched *s;
    sgd_monitor *mon;
    sgd_trainer *t;
} rig;

/* A rig over the spirals; any of sched, opts may be NULL. Returns the status of the first failing call. */
static sgd_status rig_make(rig *r, const char *model, const char *optim, const char *sched_spec,
                           const sgd_trainer_options *opts, const sgd_allocator *a)
{
    memset(r, 0, sizeof *r);
    sgd_status st;
    if ((st = sgd_dataset_from_labels(&r->train, train_data.x, train_data.y, train_data.n, 2, a)) != SGD_OK)
        return st;
    if ((st = sgd_dataset_from_labels(&r->val, val_data.x, val_data.y, val_data.n, 2, a)) != SGD_OK)
        return st;
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.seed = 3;
    mo.max_batch = 32;
    if ((st = sgd_model_from_spec(&r->m, model, &mo, a)) != SGD_OK)
        return st;
    if ((st = sgd_optim_new(&r->o, optim, sgd_model_num_params(r->m), a)) != SGD_OK)
        return st;
    if (sched_spec != NULL) {
        double lr;
        sgd_optim_get(r->o, "lr", &lr);
        if ((st = sgd_sched_new(&r->s, sched_spec, lr, a)) != SGD_OK)
            return st;
    }
    if ((st = sgd_monitor_new(&r->mon, NULL, a)) != SGD_OK)
        return st;
    return sgd_trainer_new(&r->t, r->m, r->o, r->s, r->mon, r->train, r->val, opts, a);
}

static void rig_free(rig *r)
{
    sgd_trainer_free(r->t);
    sgd_monitor_free(r->mon);
    sgd_sched_free(r->s);
    sgd_optim_free(r->o);
    sgd_model_free(r->m);
    sgd_dataset_free(r->val);
    sgd_dataset_free(r->train);
    memset(r, 0, sizeof *r);
}

static sgd_trainer_stats stats_of(const sgd_trainer *t)
{
    sgd_trainer_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    sgdt_assert_status(sgd_trainer_get_stats(t, &s), SGD_OK);
    return s;
}

static bool params_finite(sgd_model *m)
{
    const float *w = sgd_model_params(m);
    for (size_t i = 0; i < sgd_model_num_params(m); i++)
        if (!isfinite(w[i]))
            return false;
    return true;
}

/* ------------------------------------------------------------ options */

static void test_options(void **state)
{
    (void)state;
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.batch_size, 128);
    assert_int_equal(o.epochs, 1);
    assert_int_equal(o.guard, 1);
    assert_true(o.guard_factor == 0.5);
    assert_int_equal(o.guard_max_rescues, 10);
    assert_int_equal(o.nonfinite, -1);
    sgdt_assert_status(sgd_trainer_options_parse(&o, "epochs=3,batch_size=32,guard=no,nonfinite=error,"
                                                     "guard_factor=0.25,min_delta=1e-3,drop_last=true"),
                       SGD_OK);
    assert_int_equal(o.epochs, 3);
    assert_int_equal(o.batch_size, 32);
    assert_int_equal(o.guard, 0);
    assert_int_equal(o.nonfinite, SGD_NONFINITE_ERROR);
    assert_true(o.guard_factor == 0.25);
    assert_int_equal(o.drop_last, 1);
    sgdt_assert_status(sgd_trainer_options_parse(&o, "trainer:patience=2"), SGD_OK);
    assert_int_equal(o.patience, 2);
    sgdt_assert_status(sgd_trainer_options_parse(&o, ""), SGD_OK);
    sgd_trainer_options before = o;
    sgdt_assert_status(sgd_trainer_options_parse(&o, "epochs=2,bogus=1"), SGD_ENOTFOUND);
    sgdt_assert_error_contains("bogus");
    sgdt_assert_status(sgd_trainer_options_parse(&o, "epochs=0"), SGD_ERANGE);
    sgdt_assert_error_contains("epochs=0");
    sgdt_assert_status(sgd_trainer_options_parse(&o, "guard_factor=1.5"), SGD_ERANGE);
    sgdt_assert_error_contains("guard_factor");
    sgdt_assert_status(sgd_trainer_options_parse(&o, "batch_size=x"), SGD_EINVAL);
    sgdt_assert_error_contains("batch_size");
    sgdt_assert_status(sgd_trainer_options_parse(&o, "nonfinite=sometimes"), SGD_ERANGE);
    sgdt_assert_status(sgd_trainer_options_parse(&o, "clip_norm=-2"), SGD_ERANGE);
    sgdt_assert_status(sgd_trainer_options_parse(&o, "min_delta=nan"), SGD_EINVAL);
    sgdt_assert_status(sgd_trainer_options_parse(&o, "epochs"), SGD_EINVAL);
    assert_memory_equal(&o, &before, sizeof o);
    sgdt_assert_status(sgd_trainer_options_parse(NULL, "epochs=1"), SGD_EINVAL);
    sgdt_assert_status(sgd_trainer_options_parse(&o, NULL), SGD_EINVAL);
    sgd_trainer_options raw;
    memset(&raw, 0, sizeof raw);
    sgdt_assert_status(sgd_trainer_options_parse(&raw, "epochs=1"), SGD_EINVAL);
    assert_string_equal(sgd_trainer_stop_name(SGD_TRAINER_EARLY_STOP), "early_stop");
    assert_string_equal(sgd_trainer_stop_name(99), "unknown");
    assert_string_equal(sgd_trainer_event_name(SGD_TRAINER_EVENT_RESCUE), "rescue");
    assert_string_equal(sgd_trainer_event_name(-1), "unknown");
}

/* ------------------------------------------------------------ bad input */

static int32_t do_nothing(const sgd_monitor_event *ev, double *lr_scale, void *user)
{
    (void)ev;
    (void)lr_scale;
    (void)user;
    return SGD_MONITOR_CONTINUE;
}

static void test_bad_input(void **state)
{
    (void)state;
    rig r;
    sgdt_assert_status(rig_make(&r, "2-16-relu-3", "adam:lr=0.01", NULL, NULL, NULL), SGD_OK);
    sgd_trainer *t = (sgd_trainer *)&r; /* must be reset to NULL on failure */
    sgdt_assert_status(sgd_trainer_new(NULL, r.m, r.o, NULL, NULL, r.train, NULL, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_trainer_new(&t, NULL, r.o, NULL, NULL, r.train, NULL, NULL, NULL), SGD_EINVAL);
    assert_null(t);
    sgdt_assert_error_contains("model");
    sgdt_assert_status(sgd_trainer_new(&t, r.m, NULL, NULL, NULL, r.train, NULL, NULL, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("optim");
    sgdt_assert_status(sgd_trainer_new(&t, r.m, r.o, NULL, NULL, NULL, NULL, NULL, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("train");

    /* An unbuilt model. */
    sgd_model *raw;
    sgdt_assert_status(sgd_model_new(&raw, 2, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_new(&t, raw, r.o, NULL, NULL, r.train, NULL, NULL, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("not built");
    sgd_model_free(raw);

    /* The optimizer of another size. */
    sgd_optim *small;
    sgdt_assert_status(sgd_optim_new(&small, "sgd:lr=0.1", 10, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_new(&t, r.m, small, NULL, NULL, r.train, NULL, NULL, NULL), SGD_ESHAPE);
    sgdt_assert_error_contains("10 parameters");
    sgd_optim_free(small);

    /* Data that do not fit the model. */
    sgd_model *wide;
    sgdt_assert_status(sgd_model_from_spec(&wide, "3-4-2", NULL, NULL), SGD_OK);
    sgd_optim *wo;
    sgdt_assert_status(sgd_optim_new(&wo, "sgd:lr=0.1", sgd_model_num_params(wide), NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_new(&t, wide, wo, NULL, NULL, r.train, NULL, NULL, NULL), SGD_ESHAPE);
    sgdt_assert_error_contains("2 features");
    sgd_model_free(wide);
    sgd_optim_free(wo);
    sgd_model *two;
    sgdt_assert_status(sgd_model_from_spec(&two, "2-4-2", NULL, NULL), SGD_OK);
    sgdt_assert_status(sgd_optim_new(&wo, "sgd:lr=0.1", sgd_model_num_params(two), NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_new(&t, two, wo, NULL, NULL, r.train, NULL, NULL, NULL), SGD_ESHAPE);
    sgdt_assert_error_contains("labels up to 2");
    float tg[3] = {0, 1, 0};
    sgd_dataset *regress;
    sgdt_assert_status(sgd_dataset_from_targets(&regress, train_data.x, tg, 1, 2, 3, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_new(&t, two, wo, NULL, NULL, regress, NULL, NULL, NULL), SGD_ESHAPE);
    sgdt_assert_error_contains("class labels");
    sgdt_assert_status(sgd_trainer_new(&t, r.m, r.o, NULL, NULL, r.train, regress, NULL, NULL), SGD_ESHAPE);
    sgdt_assert_error_contains("val");
    sgd_dataset_free(regress);
    sgd_model_free(two);
    sgd_optim_free(wo);

    /* Options. */
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.batch_size = 0;
    sgdt_assert_status(sgd_trainer_new(&t, r.m, r.o, NULL, NULL, r.train, NULL, &o, NULL), SGD_ERANGE);
    sgdt_assert_error_contains("batch_size=0");
    sgd_trainer_options_init(&o);
    o.guard_factor = 0;
    sgdt_assert_status(sgd_trainer_new(&t, r.m, r.o, NULL, NULL, r.train, NULL, &o, NULL), SGD_ERANGE);
    sgd_trainer_options_init(&o);
    o.clip_norm = NAN;
    sgdt_assert_status(sgd_trainer_new(&t, r.m, r.o, NULL, NULL, r.train, NULL, &o, NULL), SGD_ERANGE);
    sgd_trainer_options_init(&o);
    o.drop_last = 1;
    o.batch_size = 10000;
    sgdt_assert_status(sgd_trainer_new(&t, r.m, r.o, NULL, NULL, r.train, NULL, &o, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("drop_last");
    sgd_trainer_options_init(&o);
    o.struct_size = 8;
    sgdt_assert_status(sgd_trainer_new(&t, r.m, r.o, NULL, NULL, r.train, NULL, &o, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("struct_size");
    sgdt_alloc ta;
    sgdt_alloc_init(&ta);
    sgd_allocator half = ta.base;
    half.free_fn = NULL;
    sgdt_assert_status(sgd_trainer_new(&t, r.m, r.o, NULL, NULL, r.train, NULL, NULL, &half), SGD_EINVAL);

    /* A one-cycle schedule cycles momentum: SGD without momentum has none. */
    sgd_sched *oc;
    sgdt_assert_status(sgd_sched_new(&oc, "onecycle:max_lr=0.1,total_steps=100", 0.1, NULL), SGD_OK);
    sgd_optim *plain;
    sgdt_assert_status(sgd_optim_new(&plain, "sgd:lr=0.1", sgd_model_num_params(r.m), NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_new(&t, r.m, plain, oc, NULL, r.train, NULL, NULL, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("momentum");
    sgd_optim_free(plain);
    sgd_sched_free(oc);

    /* The monitor's callback slots are full. */
    sgd_monitor *full;
    sgdt_assert_status(sgd_monitor_new(&full, NULL, NULL), SGD_OK);
    for (int i = 0; i < SGD_MONITOR_MAX_CALLBACKS; i++)
        sgdt_assert_status(sgd_monitor_add_callback(full, NULL, SGD_MONITOR_MASK_ALL, do_nothing, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_new(&t, r.m, r.o, NULL, full, r.train, NULL, NULL, NULL), SGD_EOVERFLOW);
    sgdt_assert_error_contains("callback");
    sgd_monitor_free(full);

    /* Calls on a trainer. */
    sgdt_assert_status(sgd_trainer_fit(NULL, 0), SGD_EINVAL);
    sgdt_assert_status(sgd_trainer_fit(r.t, -1), SGD_EINVAL);
    sgdt_assert_error_contains("max_steps");
    sgdt_assert_status(sgd_trainer_get_stats(r.t, NULL), SGD_EINVAL);
    sgd_trainer_stats st;
    st.struct_size = 4;
    sgdt_assert_status(sgd_trainer_get_stats(r.t, &st), SGD_EINVAL);
    sgd_trainer_epoch e;
    e.struct_size = sizeof e;
    sgdt_assert_status(sgd_trainer_get_epoch(r.t, 1, &e), SGD_EINVAL);
    sgdt_assert_status(sgd_trainer_get_epoch(r.t, -1, &e), SGD_EINVAL);
    sgdt_assert_status(sgd_trainer_get_epoch(r.t, 0, &e), SGD_OK);
    assert_int_equal(e.done, 0);
    double lr;
    sgdt_assert_status(sgd_trainer_next_lr(NULL, &lr), SGD_EINVAL);
    sgdt_assert_status(sgd_trainer_next_lr(r.t, &lr), SGD_OK);
    assert_true(fabs(lr - 0.01) < 1e-15);
    sgdt_assert_status(sgd_trainer_set_progress(NULL, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_trainer_set_event_callback(NULL, NULL, NULL), SGD_EINVAL);
    assert_null(sgd_trainer_model(NULL));
    assert_null(sgd_trainer_optim(NULL));
    assert_null(sgd_trainer_sched(NULL));
    assert_null(sgd_trainer_monitor(NULL));
    assert_ptr_equal(sgd_trainer_model(r.t), r.m);
    assert_ptr_equal(sgd_trainer_optim(r.t), r.o);
    assert_null(sgd_trainer_sched(r.t));
    assert_ptr_equal(sgd_trainer_monitor(r.t), r.mon);
    assert_int_equal(sgd_trainer_stop_reason(NULL), SGD_TRAINER_NOT_RUN);
    assert_int_equal(sgd_trainer_stop_reason(r.t), SGD_TRAINER_NOT_RUN);
    assert_int_equal(sgd_trainer_state_size(NULL), 0);
    unsigned char buf[8];
    sgdt_assert_status(sgd_trainer_state_export(NULL, buf, 8), SGD_EINVAL);
    sgdt_assert_status(sgd_trainer_state_export(r.t, buf, 8), SGD_ESHAPE);
    sgdt_assert_status(sgd_trainer_state_import(NULL, buf, 8), SGD_EINVAL);
    sgdt_assert_status(sgd_trainer_state_import(r.t, NULL, 8), SGD_EINVAL);
    sgd_trainer_free(NULL);
    rig_free(&r);
}

/* ------------------------------------------------------------ epochs, validation, progress */

typedef struct progress_log {
    int steps, epochs, done;
    double last_fraction;
    bool monotone;
    int64_t last_epoch;
    double epoch_acc[16];
    int stop_at_epoch; /* -1: never */
} progress_log;

static int32_t log_progress(const sgd_trainer_progress *p, void *user)
{
    progress_log *l = user;
    assert_int_equal(p->struct_size, sizeof *p);
    if (p->fraction < l->last_fraction - 1e-12)
        l->monotone = false;
    l->last_fraction = p->fraction;
    if (p->phase == SGD_TRAINER_PHASE_STEP) {
        l->steps++;
        assert_true(isfinite(p->loss));
        assert_true(p->lr > 0);
        assert_true(p->batch >= 1 && p->batch <= p->batches);
        assert_true(isnan(p->val_loss));
    } else if (p->phase == SGD_TRAINER_PHASE_EPOCH_END) {
        assert_true(p->epoch >= 0 && p->epoch < 16);
        l->epoch_acc[p->epoch] = p->val_accuracy;
        l->epochs++;
        l->last_epoch = p->epoch;
        assert_true(isfinite(p->val_loss));
        if (l->stop_at_epoch == p->epoch)
            return 1;
    } else {
        l->done++;
    }
    return 0;
}

static void test_epochs_validation_progress(void **state)
{
    (void)state;
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.epochs = 6;
    o.batch_size = 32;
    o.progress_interval = 5;
    rig r;
    sgdt_assert_status(rig_make(&r, "2-32-relu-32-relu-3", "adam:lr=0.02", NULL, &o, NULL), SGD_OK);
    progress_log l = {.monotone = true, .stop_at_epoch = -1};
    sgdt_assert_status(sgd_trainer_set_progress(r.t, log_progress, &l), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_OK);
    assert_int_equal(sgd_trainer_stop_reason(r.t), SGD_TRAINER_COMPLETED);
    int64_t nb = (600 + 31) / 32;
    sgd_trainer_stats s = stats_of(r.t);
    assert_int_equal(s.step, 6 * nb);
    assert_int_equal(s.epoch, 6);
    assert_int_equal(s.batch, 0);
    assert_int_equal(s.batches_run, 6 * nb);
    assert_int_equal(s.updates + s.skipped, 6 * nb);
    assert_int_equal(l.steps, (int)(6 * nb / 5));
    assert_int_equal(l.epochs, 6);
    assert_int_equal(l.done, 1);
    assert_true(l.monotone);
    assert_true(l.last_fraction == 1.0);
    for (int64_t e = 0; e < 6; e++) {
        sgd_trainer_epoch ep;
        ep.struct_size = sizeof ep;
        sgdt_assert_status(sgd_trainer_get_epoch(r.t, e, &ep), SGD_OK);
        assert_int_equal(ep.done, 1);
        assert_int_equal(ep.step, (e + 1) * nb);
        assert_true(ep.val_accuracy == l.epoch_acc[e]);
        assert_true(isfinite(ep.train_loss) && isfinite(ep.val_loss));
    }
    /* The spirals are learnt: the validation accuracy agrees with an evaluation now. */
    double vl, va;
    sgdt_assert_status(sgd_model_evaluate(r.m, r.val, 0, &vl, &va), SGD_OK);
    assert_true(va == l.epoch_acc[5]);
    assert_true(va > 0.8);
    sgd_trainer_epoch first;
    first.struct_size = sizeof first;
    sgd_trainer_get_epoch(r.t, 0, &first);
    assert_true(vl < first.val_loss);
    /* A second fit has nothing left to do. */
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_OK);
    assert_int_equal(stats_of(r.t).step, 6 * nb);
    rig_free(&r);

    /* drop_last: floor(600 / 32) batches; the progress callback can stop the run. */
    sgd_trainer_options_init(&o);
    o.epochs = 3;
    o.batch_size = 32;
    o.drop_last = 1;
    sgdt_assert_status(rig_make(&r, "2-16-relu-3", "adam:lr=0.01", NULL, &o, NULL), SGD_OK);
    progress_log l2 = {.monotone = true, .stop_at_epoch = 1};
    sgd_trainer_set_progress(r.t, log_progress, &l2);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_ECANCELED);
    sgdt_assert_error_contains("progress callback");
    assert_int_equal(sgd_trainer_stop_reason(r.t), SGD_TRAINER_CANCELED);
    assert_int_equal(stats_of(r.t).step, 2 * (600 / 32));
    assert_int_equal(l2.done, 1);
    rig_free(&r);
}

/* Budgets split a run exactly. */
static void test_budget(void **state)
{
    (void)state;
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.epochs = 2;
    o.batch_size = 32;
    rig a, b;
    sgdt_assert_status(rig_make(&a, "2-16-tanh-3", "sgd:lr=0.1,momentum=0.9", NULL, &o, NULL), SGD_OK);
    sgdt_assert_status(rig_make(&b, "2-16-tanh-3", "sgd:lr=0.1,momentum=0.9", NULL, &o, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(a.t, 0), SGD_OK);
    int64_t chunks[] = {1, 7, 11, 19, 100};
    for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
        sgdt_assert_status(sgd_trainer_fit(b.t, chunks[i]), SGD_OK);
        if (sgd_trainer_stop_reason(b.t) == SGD_TRAINER_COMPLETED)
            break;
        assert_int_equal(sgd_trainer_stop_reason(b.t), SGD_TRAINER_BUDGET);
    }
    assert_int_equal(sgd_trainer_stop_reason(b.t), SGD_TRAINER_COMPLETED);
    assert_memory_equal(sgd_model_params(a.m), sgd_model_params(b.m), sgd_model_num_params(a.m) * sizeof(float));
    rig_free(&a);
    rig_free(&b);
}

/* ------------------------------------------------------------ early stopping and plateau */

static int early_events;

static int32_t count_early(const sgd_trainer_event *ev, double *lr_scale, void *user)
{
    (void)lr_scale;
    (void)user;
    if (ev->kind == SGD_TRAINER_EVENT_EARLY_STOP)
        early_events++;
    return ev->action;
}

static void test_early_stopping(void **state)
{
    (void)state;
    /* At lr 0 nothing improves after the first epoch: patience 2 stops after epoch 3 of 10. */
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.epochs = 10;
    o.batch_size = 64;
    o.patience = 2;
    rig r;
    sgdt_assert_status(rig_make(&r, "2-8-relu-3", "sgd:lr=0", NULL, &o, NULL), SGD_OK);
    early_events = 0;
    sgd_trainer_set_event_callback(r.t, count_early, NULL);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_OK);
    assert_int_equal(sgd_trainer_stop_reason(r.t), SGD_TRAINER_EARLY_STOP);
    assert_int_equal(early_events, 1);
    sgd_trainer_stats s = stats_of(r.t);
    assert_int_equal(s.epoch, 3);
    assert_int_equal(s.epochs_without_improvement, 2);
    assert_true(isfinite(s.best_val_loss));
    rig_free(&r);

    /* With training, min_delta decides what an improvement is: a huge one stops early. */
    sgd_trainer_options_init(&o);
    o.epochs = 10;
    o.batch_size = 64;
    o.patience = 1;
    o.min_delta = 100;
    sgdt_assert_status(rig_make(&r, "2-8-relu-3", "adam:lr=0.01", NULL, &o, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_OK);
    assert_int_equal(sgd_trainer_stop_reason(r.t), SGD_TRAINER_EARLY_STOP);
    assert_int_equal(stats_of(r.t).epoch, 2);
    rig_free(&r);
    o.min_delta = 0;
    sgdt_assert_status(rig_make(&r, "2-8-relu-3", "adam:lr=0.01", NULL, &o, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_OK);
    assert_true(stats_of(r.t).epoch > 2);
    rig_free(&r);
}

/* A plateau schedule receives the validation loss of every epoch. */
static void test_plateau_metric(void **state)
{
    (void)state;
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.epochs = 4;
    o.batch_size = 64;
    rig r;
    /* lr 1e-12: the loss never improves (by the default relative threshold 1e-4) after the first epoch. */
    sgdt_assert_status(rig_make(&r, "2-8-relu-3", "sgd:lr=1e-12", "plateau:factor=0.5,patience=0,eps=0", &o, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_OK);
    /* The scale is in the schedule's state: [tag, best, bad, cooldown, scale]. */
    double st[8];
    size_t n = sgd_sched_state_size(r.s);
    assert_true(n >= 5 && n <= 8);
    sgdt_assert_status(sgd_sched_state_export(r.s, st, n), SGD_OK);
    double vl;
    sgdt_assert_status(sgd_model_evaluate(r.m, r.val, 0, &vl, NULL), SGD_OK);
    assert_true(st[1] == vl);  /* the best metric is the validation loss */
    assert_true(st[4] == 0.125); /* reduced after epochs 2, 3 and 4 */
    rig_free(&r);
}

/* ------------------------------------------------------------ momentum forwarding */

static void test_momentum_forwarding(void **state)
{
    (void)state;
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.epochs = 1;
    o.batch_size = 32;
    o.guard = 0;
    const char *opts[2] = {"sgd:lr=0.01,momentum=0.9", "adam:lr=0.001"};
    const char *names[2] = {"momentum", "beta1"};
    for (int k = 0; k < 2; k++) {
        rig r;
        sgdt_assert_status(rig_make(&r, "2-8-relu-3", opts[k], "onecycle:max_lr=0.01,total_steps=19", &o, NULL),
                           SGD_OK);
        for (int64_t steps = 1; steps <= 19; steps += 6) {
            sgdt_assert_status(sgd_trainer_fit(r.t, steps == 1 ? 1 : 6), SGD_OK);
            double want, got;
            int32_t set;
            sgdt_assert_status(sgd_sched_momentum(r.s, steps - 1, &want, &set), SGD_OK);
            assert_int_equal(set, 1);
            sgdt_assert_status(sgd_optim_get(r.o, names[k], &got), SGD_OK);
            assert_true(got == want);
        }
        rig_free(&r);
    }
}

/* ------------------------------------------------------------ the guard */

typedef struct guard_log {
    int rescues, gave_up, diverged, stopped, monitor;
    int32_t answer;         /* -1: accept the proposal */
    double factor;          /* with answer */
    int64_t first_restored, last_restored;
} guard_log;

static int32_t log_guard(const sgd_trainer_event *ev, double *lr_scale, void *user)
{
    guard_log *g = user;
    assert_non_null(ev->message);
    assert_true(ev->message[0] != '\0');
    switch (ev->kind) {
    case SGD_TRAINER_EVENT_MONITOR:
        g->monitor++;
        assert_non_null(ev->monitor);
        if (g->answer >= 0) {
            *lr_scale = g->factor;
            return g->answer;
        }
        return ev->action;
    case SGD_TRAINER_EVENT_RESCUE:
        g->rescues++;
        assert_int_equal(ev->rescues, g->rescues);
        if (ev->action == SGD_MONITOR_ROLLBACK)
            assert_true(ev->restored_step >= 0 && ev->restored_step <= ev->step);
        if (g->rescues == 1)
            g->first_restored = ev->restored_step;
        g->last_restored = ev->restored_step;
        break;
    case SGD_TRAINER_EVENT_GAVE_UP:
        g->gave_up++;
        break;
    case SGD_TRAINER_EVENT_DIVERGED:
        g->diverged++;
        break;
    case SGD_TRAINER_EVENT_STOPPED:
        g->stopped++;
        break;
    default:
        break;
    }
    return 0;
}

/* A host schedule: lr 0.05 until step `at`, then `high`. */
typedef struct jump {
    int64_t at;
    double low, high;
} jump;

static sgd_status jump_lr(int64_t step, double *lr, void *user)
{
    const jump *j = user;
    *lr = step < j->at ? j->low : j->high;
    return SGD_OK;
}

static sgd_sched *jump_sched(jump *j)
{
    sgd_sched_vtable vt;
    sgd_sched_vtable_init(&vt);
    vt.name = "jump";
    vt.lr = jump_lr;
    vt.user = j;
    sgd_sched *s;
    sgdt_assert_status(sgd_sched_new_custom(&s, &vt, NULL), SGD_OK);
    return s;
}

static void test_guard_rescues(void **state)
{
    (void)state;
    /*
     * SGD at lr 30 blows up at once; the guard halves it until it trains.
     * (With ReLU units this rate also kills the network without any alarm,
     * which no guard that reads the loss can see: tanh here.)
     */
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.epochs = 12;
    o.batch_size = 32;
    o.guard_interval = 10;
    o.guard_max_rescues = 20;
    rig r;
    sgdt_assert_status(rig_make(&r, "2-32-tanh-32-tanh-3", "sgd:lr=30", NULL, &o, NULL), SGD_OK);
    guard_log g = {.answer = -1};
    sgd_trainer_set_event_callback(r.t, log_guard, &g);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_OK);
    sgd_trainer_stats s = stats_of(r.t);
    assert_true(s.rescues >= 2);
    assert_int_equal(g.rescues, s.rescues);
    assert_int_equal(s.rollbacks, s.rescues);
    assert_true(fabs(s.guard_scale - pow(0.5, (double)s.rescues)) < 1e-15);
    assert_true(s.batches_run > s.step); /* rolled-back batches were replayed */
    assert_true(params_finite(r.m));
    double acc;
    sgdt_assert_status(sgd_model_evaluate(r.m, r.val, 0, NULL, &acc), SGD_OK);
    printf("# spirals, SGD at lr 30 under the guard: %lld rescues, lr now %g, recent loss %.3f, validation "
           "accuracy %.3f\n",
           (long long)s.rescues, s.lr, s.recent_loss, acc);
    assert_true(s.recent_loss < log(3.0)); /* learning: below the chance level */
    int32_t verdict;
    sgd_monitor_get_verdict(r.mon, &verdict);
    assert_true(verdict != SGD_MONITOR_DIVERGED);
    rig_free(&r);

    /* A run that goes wrong later is rolled back to a snapshot taken before. */
    sgd_trainer_options_init(&o);
    o.epochs = 8;
    o.batch_size = 32;
    o.guard_interval = 10;
    o.guard_skip = 2;
    jump j = {100, 0.05, 50};
    memset(&r, 0, sizeof r);
    sgdt_assert_status(sgd_dataset_from_labels(&r.train, train_data.x, train_data.y, train_data.n, 2, NULL), SGD_OK);
    sgdt_assert_status(sgd_model_from_spec(&r.m, "2-16-relu-3", NULL, NULL), SGD_OK);
    sgdt_assert_status(sgd_optim_new(&r.o, "sgd:lr=0.05,momentum=0.9", sgd_model_num_params(r.m), NULL), SGD_OK);
    r.s = jump_sched(&j);
    sgdt_assert_status(sgd_trainer_new(&r.t, r.m, r.o, r.s, NULL, r.train, NULL, &o, NULL), SGD_OK);
    guard_log g2 = {.answer = -1};
    sgd_trainer_set_event_callback(r.t, log_guard, &g2);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_OK);
    s = stats_of(r.t);
    printf("# jump to lr 50 at step 100: %lld rescues, the first back to step %lld, %lld batches skipped\n",
           (long long)s.rescues, (long long)g2.first_restored, (long long)s.skipped);
    assert_true(s.rescues >= 1);
    /* Snapshots every 10 steps, trusted after 10 more healthy ones: back to step 80 or 90. */
    assert_true(g2.first_restored == 80 || g2.first_restored == 90);
    assert_true(s.skipped >= 5); /* the batches around each spike were skipped when replayed */
    assert_true(params_finite(r.m));
    rig_free(&r);
}

static void test_guard_gives_up(void **state)
{
    (void)state;
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.epochs = 5;
    o.batch_size = 32;
    o.guard_max_rescues = 3;
    o.guard_factor = 0.9;
    rig r;
    sgdt_assert_status(rig_make(&r, "2-16-relu-3", "sgd:lr=1e5", NULL, &o, NULL), SGD_OK);
    guard_log g = {.answer = -1};
    sgd_trainer_set_event_callback(r.t, log_guard, &g);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_EDIVERGED);
    sgdt_assert_error_contains("giving up");
    sgdt_assert_error_contains("3 rescues");
    assert_int_equal(sgd_trainer_stop_reason(r.t), SGD_TRAINER_DIVERGED);
    assert_int_equal(g.rescues, 3);
    assert_int_equal(g.gave_up, 1);
    /* Every rescue restored the snapshot: the parameters are the initial ones, finite. */
    assert_true(params_finite(r.m));
    rig_free(&r);

    /* max_rescues 0: the first rescue gives up. */
    o.guard_max_rescues = 0;
    sgdt_assert_status(rig_make(&r, "2-16-relu-3", "sgd:lr=1e5", NULL, &o, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_EDIVERGED);
    sgdt_assert_error_contains("0 rescues");
    rig_free(&r);
}

static void test_unguarded_divergence(void **state)
{
    (void)state;
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.epochs = 5;
    o.batch_size = 32;
    o.guard = 0;
    rig r;
    sgdt_assert_status(rig_make(&r, "2-16-relu-3", "sgd:lr=1e5", NULL, &o, NULL), SGD_OK);
    guard_log g = {.answer = -1};
    sgd_trainer_set_event_callback(r.t, log_guard, &g);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_EDIVERGED);
    sgdt_assert_error_contains("diverged");
    sgdt_assert_error_contains("guard");
    assert_int_equal(sgd_trainer_stop_reason(r.t), SGD_TRAINER_DIVERGED);
    assert_int_equal(g.diverged, 1);
    assert_int_equal(g.rescues, 0);
    assert_true(g.monitor >= 1);
    assert_true(stats_of(r.t).step < 10);
    /* Without the guard there are no snapshots: the state is only the counters and the history. */
    assert_true(sgd_trainer_state_size(r.t) < 8192);
    rig_free(&r);
}

static void test_host_overrides(void **state)
{
    (void)state;
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.epochs = 2;
    o.batch_size = 32;
    o.stop_on_divergence = 0;
    o.nonfinite = SGD_NONFINITE_SKIP;
    rig r;

    /* "continue" overrides every rollback: no rescue, and the run goes on (with skipped NaN steps). */
    sgdt_assert_status(rig_make(&r, "2-16-relu-3", "sgd:lr=1e3", NULL, &o, NULL), SGD_OK);
    guard_log g = {.answer = SGD_MONITOR_CONTINUE, .factor = 1};
    sgd_trainer_set_event_callback(r.t, log_guard, &g);
    sgd_status st = sgd_trainer_fit(r.t, 0);
    assert_true(st == SGD_OK || st == SGD_EDIVERGED); /* the optimizer may refuse too many NaN steps */
    assert_int_equal(g.rescues, 0);
    assert_true(g.monitor >= 1);
    rig_free(&r);

    /* "stop" on the first event. */
    sgdt_assert_status(rig_make(&r, "2-16-relu-3", "sgd:lr=1e3", NULL, &o, NULL), SGD_OK);
    guard_log g2 = {.answer = SGD_MONITOR_STOP, .factor = 1};
    sgd_trainer_set_event_callback(r.t, log_guard, &g2);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_ECANCELED);
    assert_int_equal(sgd_trainer_stop_reason(r.t), SGD_TRAINER_CANCELED);
    assert_int_equal(g2.stopped, 1);
    assert_true(g2.monitor >= 1 && g2.monitor <= SGD_MONITOR_KIND_COUNT);
    rig_free(&r);

    /* "scale_lr" 0.1 instead of a rollback: a rescue without rollback. */
    sgdt_assert_status(rig_make(&r, "2-16-relu-3", "sgd:lr=20", NULL, &o, NULL), SGD_OK);
    guard_log g3 = {.answer = SGD_MONITOR_SCALE_LR, .factor = 0.1};
    sgd_trainer_set_event_callback(r.t, log_guard, &g3);
    st = sgd_trainer_fit(r.t, 0);
    sgd_trainer_stats s = stats_of(r.t);
    assert_true(s.rescues >= 1);
    assert_int_equal(s.rollbacks, 0);
    assert_true(fabs(s.guard_scale - pow(0.1, (double)s.rescues)) < 1e-12);
    rig_free(&r);

    /* "skip" everything: no update is applied on those steps. */
    sgdt_assert_status(rig_make(&r, "2-16-relu-3", "sgd:lr=1e3", NULL, &o, NULL), SGD_OK);
    guard_log g4 = {.answer = SGD_MONITOR_SKIP, .factor = 1};
    sgd_trainer_set_event_callback(r.t, log_guard, &g4);
    sgd_trainer_fit(r.t, 0);
    s = stats_of(r.t);
    assert_true(s.skipped >= 1);
    assert_int_equal(s.rescues, 0);
    rig_free(&r);

    /* A rollback asked for with the guard off is refused. */
    o.guard = 0;
    sgdt_assert_status(rig_make(&r, "2-16-relu-3", "sgd:lr=1e3", NULL, &o, NULL), SGD_OK);
    guard_log g5 = {.answer = SGD_MONITOR_ROLLBACK, .factor = 0.5};
    sgd_trainer_set_event_callback(r.t, log_guard, &g5);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_ESTATE);
    sgdt_assert_error_contains("guard is off");
    rig_free(&r);

    /* Unknown actions and bad factors are the host's bug: ECALLBACK. */
    o.guard = 1;
    sgdt_assert_status(rig_make(&r, "2-16-relu-3", "sgd:lr=1e3", NULL, &o, NULL), SGD_OK);
    guard_log g6 = {.answer = 7, .factor = 1};
    sgd_trainer_set_event_callback(r.t, log_guard, &g6);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_ECALLBACK);
    sgdt_assert_error_contains("action 7");
    rig_free(&r);
    sgdt_assert_status(rig_make(&r, "2-16-relu-3", "sgd:lr=1e3", NULL, &o, NULL), SGD_OK);
    guard_log g7 = {.answer = SGD_MONITOR_SCALE_LR, .factor = -1};
    sgd_trainer_set_event_callback(r.t, log_guard, &g7);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_ECALLBACK);
    rig_free(&r);
}

/* Callbacks registered on the monitor itself can only strengthen the trainer's decision. */
static int32_t monitor_stop(const sgd_monitor_event *ev, double *lr_scale, void *user)
{
    (void)ev;
    (void)lr_scale;
    (*(int *)user)++;
    return SGD_MONITOR_STOP;
}

static sgd_trainer *reentrant_target;
static sgd_status reentrant_status;

static int32_t reenter(const sgd_trainer_progress *p, void *user)
{
    (void)p;
    (void)user;
    reentrant_status = sgd_trainer_fit(reentrant_target, 1);
    return 0;
}

static void test_monitor_callbacks_and_reentry(void **state)
{
    (void)state;
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.epochs = 2;
    o.batch_size = 32;
    rig r;
    sgdt_assert_status(rig_make(&r, "2-16-relu-3", "sgd:lr=1e3", NULL, &o, NULL), SGD_OK);
    int calls = 0;
    sgdt_assert_status(sgd_monitor_add_callback(r.mon, NULL, SGD_MONITOR_MASK_ALARMS, monitor_stop, &calls), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_ECANCELED);
    assert_true(calls >= 1);
    rig_free(&r);

    /* Calling the trainer from its own callback is refused. */
    sgdt_assert_status(rig_make(&r, "2-16-relu-3", "adam:lr=0.01", NULL, &o, NULL), SGD_OK);
    reentrant_target = r.t;
    reentrant_status = SGD_OK;
    sgd_trainer_set_progress(r.t, reenter, NULL);
    sgdt_assert_status(sgd_trainer_fit(r.t, 3), SGD_OK);
    assert_int_equal(reentrant_status, SGD_ESTATE);
    rig_free(&r);
}

/* The trainer options' hygiene is set on the optimizer; a failed creation puts it back. */
static void test_hygiene_passed(void **state)
{
    (void)state;
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.clip_norm = 0.01;
    o.nonfinite = SGD_NONFINITE_ERROR;
    rig r;
    sgdt_assert_status(rig_make(&r, "2-16-relu-3", "sgd:lr=0.1", NULL, &o, NULL), SGD_OK);
    sgd_optim_hygiene h;
    sgd_optim_hygiene_init(&h);
    sgdt_assert_status(sgd_optim_get_hygiene(r.o, &h), SGD_OK);
    assert_true(h.clip_norm == 0.01);
    assert_int_equal(h.nonfinite, SGD_NONFINITE_ERROR);
    assert_true(h.clip_value == 0);
    sgdt_assert_status(sgd_trainer_fit(r.t, 20), SGD_OK);
    sgd_optim_stats os;
    memset(&os, 0, sizeof os);
    os.struct_size = sizeof os;
    sgd_optim_get_stats(r.o, &os);
    assert_true(os.clipped > 0);
    rig_free(&r);
}

/* ------------------------------------------------------------ state */

typedef struct snapshot {
    unsigned char *trainer;
    size_t tbytes;
    float *params;
    size_t n;
    unsigned char *optim[8];
    size_t obytes[8];
    size_t ocount;
    double sched[16];
    size_t sn;
    double monitor[256];
    size_t mn;
} snapshot;

static void save_all(const rig *r, snapshot *s)
{
    memset(s, 0, sizeof *s);
    s->tbytes = sgd_trainer_state_size(r->t);
    s->trainer = malloc(s->tbytes);
    assert_non_null(s->trainer);
    sgdt_assert_status(sgd_trainer_state_export(r->t, s->trainer, s->tbytes), SGD_OK);
    s->n = sgd_model_num_params(r->m);
    s->params = malloc(s->n * sizeof(float));
    sgdt_assert_status(sgd_model_get_params(r->m, s->params, s->n), SGD_OK);
    s->ocount = sgd_optim_state_count(r->o);
    assert_true(s->ocount <= 8);
    for (size_t i = 0; i < s->ocount; i++) {
        int32_t type;
        size_t len;
        sgd_optim_state_describe(r->o, i, NULL, &type, &len);
        s->obytes[i] = len * (type == SGD_STATE_F32 ? 4 : 8);
        s->optim[i] = malloc(s->obytes[i]);
        sgdt_assert_status(sgd_optim_state_export(r->o, i, s->optim[i], s->obytes[i]), SGD_OK);
    }
    s->sn = r->s ? sgd_sched_state_size(r->s) : 0;
    assert_true(s->sn <= 16);
    if (s->sn)
        sgdt_assert_status(sgd_sched_state_export(r->s, s->sched, s->sn), SGD_OK);
    sgdt_assert_status(sgd_monitor_state_size(r->mon, &s->mn), SGD_OK);
    assert_true(s->mn <= 256);
    sgdt_assert_status(sgd_monitor_state_export(r->mon, s->monitor, s->mn), SGD_OK);
}

static void load_all(rig *r, const snapshot *s)
{
    sgdt_assert_status(sgd_model_set_params(r->m, s->params, s->n), SGD_OK);
    for (size_t i = 0; i < s->ocount; i++)
        sgdt_assert_status(sgd_optim_state_import(r->o, i, s->optim[i], s->obytes[i]), SGD_OK);
    if (s->sn)
        sgdt_assert_status(sgd_sched_state_import(r->s, s->sched, s->sn), SGD_OK);
    sgdt_assert_status(sgd_monitor_state_import(r->mon, s->monitor, s->mn), SGD_OK);
    sgdt_assert_status(sgd_trainer_state_import(r->t, s->trainer, s->tbytes), SGD_OK);
}

static void free_all(snapshot *s)
{
    free(s->trainer);
    free(s->params);
    for (size_t i = 0; i < s->ocount; i++)
        free(s->optim[i]);
}

/*
 * Bit-exact resume: a run saved at step k and resumed in fresh objects gives
 * exactly the parameters of an uninterrupted run at step n; with dropout (the
 * model's generator), a plateau schedule (state), momentum, a mid-epoch save,
 * and a divergence after the save that rolls back to a snapshot taken before it.
 */
static void resume_case(const char *optim, int64_t k, int64_t jump_at)
{
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.epochs = 4;
    o.batch_size = 32;
    o.guard_interval = 10;
    o.guard_skip = 1;
    jump j = {jump_at, 0.05, 50};
    rig a, b, c;
    rig *all[3] = {&a, &b, &c};
    for (int i = 0; i < 3; i++) {
        rig *r = all[i];
        memset(r, 0, sizeof *r);
        sgdt_assert_status(sgd_dataset_from_labels(&r->train, train_data.x, train_data.y, train_data.n, 2, NULL),
                           SGD_OK);
        sgdt_assert_status(sgd_dataset_from_labels(&r->val, val_data.x, val_data.y, val_data.n, 2, NULL), SGD_OK);
        sgd_model_options mo;
        sgd_model_options_init(&mo);
        mo.seed = 5;
        sgdt_assert_status(sgd_model_from_spec(&r->m, "2-32-relu-dropout(0.1)-16-relu-3", &mo, NULL), SGD_OK);
        sgdt_assert_status(sgd_optim_new(&r->o, optim, sgd_model_num_params(r->m), NULL), SGD_OK);
        sgd_sched *inner = jump_sched(&j);
        sgd_sched_plateau_options po;
        sgd_sched_plateau_options_init(&po);
        po.patience = 0;
        po.factor = 0.5;
        sgdt_assert_status(sgd_sched_plateau_new(&r->s, inner, &po, NULL), SGD_OK);
        sgdt_assert_status(sgd_monitor_new(&r->mon, NULL, NULL), SGD_OK);
        sgdt_assert_status(sgd_trainer_new(&r->t, r->m, r->o, r->s, r->mon, r->train, r->val, &o, NULL), SGD_OK);
    }
    /* c starts from a different initialisation, to show that the import replaces everything. */
    sgdt_assert_status(sgd_model_reset(c.m, 99), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(a.t, 0), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(b.t, k), SGD_OK);
    snapshot s;
    save_all(&b, &s);
    load_all(&c, &s);
    /* Export after import gives back the same bytes. */
    unsigned char *again = malloc(s.tbytes);
    sgdt_assert_status(sgd_trainer_state_export(c.t, again, s.tbytes), SGD_OK);
    assert_memory_equal(again, s.trainer, s.tbytes);
    free(again);
    sgdt_assert_status(sgd_trainer_fit(c.t, 0), SGD_OK);
    sgd_trainer_stats sa = stats_of(a.t), sc = stats_of(c.t);
    assert_true(sa.rescues >= 1); /* the jump was rescued, after the save */
    assert_int_equal(sa.rescues, sc.rescues);
    assert_int_equal(sa.batches_run, sc.batches_run);
    assert_int_equal(sa.step, sc.step);
    assert_memory_equal(sgd_model_params(a.m), sgd_model_params(c.m), sgd_model_num_params(a.m) * sizeof(float));
    for (int64_t e = 0; e < 4; e++) {
        sgd_trainer_epoch ea, ec;
        ea.struct_size = ec.struct_size = sizeof ea;
        sgd_trainer_get_epoch(a.t, e, &ea);
        sgd_trainer_get_epoch(c.t, e, &ec);
        assert_true(ea.val_loss == ec.val_loss);
        assert_true(ea.train_loss == ec.train_loss);
    }
    free_all(&s);
    for (int i = 0; i < 3; i++)
        rig_free(all[i]);
}

static void test_state_roundtrip_bitexact(void **state)
{
    (void)state;
    resume_case("sgd:lr=0.05,momentum=0.9", 37, 60);
    resume_case("adam:lr=0.01", 25, 50);
}

static void test_state_import_errors(void **state)
{
    (void)state;
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.epochs = 2;
    o.batch_size = 32;
    o.guard_interval = 5;
    rig r;
    sgdt_assert_status(rig_make(&r, "2-16-relu-3", "adam:lr=0.01", NULL, &o, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(r.t, 23), SGD_OK);
    size_t n = sgd_trainer_state_size(r.t);
    unsigned char *good = malloc(n), *bad = malloc(n), *after = malloc(n);
    sgdt_assert_status(sgd_trainer_state_export(r.t, good, n), SGD_OK);
    assert_memory_equal(good, "SGDTRAIN", 8);

    sgdt_assert_status(sgd_trainer_state_import(r.t, good, n - 1), SGD_ESHAPE);
    sgdt_assert_status(sgd_trainer_state_import(r.t, good, 10), SGD_EFORMAT);
    memcpy(bad, good, n);
    bad[0] = 'X';
    sgdt_assert_status(sgd_trainer_state_import(r.t, bad, n), SGD_EFORMAT);
    sgdt_assert_error_contains("tag");
    memcpy(bad, good, n);
    bad[8] = 9;
    sgdt_assert_status(sgd_trainer_state_import(r.t, bad, n), SGD_EVERSION);
    memcpy(bad, good, n);
    bad[24]++; /* parameter count */
    sgdt_assert_status(sgd_trainer_state_import(r.t, bad, n), SGD_ESHAPE);
    sgdt_assert_error_contains("parameters");
    /* Counters out of range: batch (offset 88 + 16) past the epoch's batches. */
    memcpy(bad, good, n);
    bad[88 + 16] = 200;
    sgdt_assert_status(sgd_trainer_state_import(r.t, bad, n), SGD_EFORMAT);
    sgdt_assert_error_contains("batch");
    /* The step inconsistent with epoch and batch. */
    memcpy(bad, good, n);
    bad[88] ^= 1;
    sgdt_assert_status(sgd_trainer_state_import(r.t, bad, n), SGD_EFORMAT);
    sgdt_assert_error_contains("step");
    /* A corrupt snapshot (its monitor state) is found by loading it; nothing changes. */
    sgdt_assert_status(sgd_trainer_state_export(r.t, after, n), SGD_OK);
    memcpy(bad, good, n);
    memset(bad + n - 8 * 4, 0xff, 8 * 4); /* the end of snapshot 1's monitor state */
    size_t mn;
    sgd_monitor_state_size(r.mon, &mn);
    double mon_before[256];
    sgd_monitor_state_export(r.mon, mon_before, mn);
    sgd_status st = sgd_trainer_state_import(r.t, bad, n);
    if (st != SGD_OK) {
        unsigned char *now = malloc(n);
        sgdt_assert_status(sgd_trainer_state_export(r.t, now, n), SGD_OK);
        assert_memory_equal(now, after, n);
        double mon_after[256];
        sgd_monitor_state_export(r.mon, mon_after, mn);
        assert_memory_equal(mon_after, mon_before, mn * sizeof(double));
        free(now);
    }
    /* A trainer built differently refuses the state. */
    rig other;
    sgd_trainer_options o2 = o;
    o2.epochs = 3;
    sgdt_assert_status(rig_make(&other, "2-16-relu-3", "adam:lr=0.01", NULL, &o2, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_state_import(other.t, good, n), SGD_ESHAPE);
    sgdt_assert_error_contains("epochs");
    rig_free(&other);
    o2 = o;
    o2.guard = 0;
    sgdt_assert_status(rig_make(&other, "2-16-relu-3", "adam:lr=0.01", NULL, &o2, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_state_import(other.t, good, n), SGD_ESHAPE);
    rig_free(&other);

    /* Random damage never crashes; whatever is accepted leaves a trainer that trains. */
    uint32_t rnd = 12345;
    int accepted = 0;
    for (int trial = 0; trial < 400; trial++) {
        memcpy(bad, good, n);
        for (int f = 0; f < 3; f++) {
            rnd = rnd * 1664525u + 1013904223u;
            size_t at = (rnd >> 4) % (trial < 300 ? 88 + 112 + 192 + 512 : n);
            rnd = rnd * 1664525u + 1013904223u;
            bad[at] ^= (unsigned char)(1u << ((rnd >> 8) & 7));
        }
        if (sgd_trainer_state_import(r.t, bad, n) == SGD_OK) {
            accepted++;
            sgd_trainer_state_import(r.t, good, n);
        }
    }
    sgdt_assert_status(sgd_trainer_state_import(r.t, good, n), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_OK);
    printf("# 400 damaged states: %d accepted (flips in values that any state may hold)\n", accepted);
    free(good);
    free(bad);
    free(after);
    rig_free(&r);
}

/* ------------------------------------------------------------ allocation */

static sgd_status scenario_trainer(sgdt_alloc *t, void *ctx)
{
    (void)ctx;
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.epochs = 2;
    o.batch_size = 64;
    o.guard_interval = 5;
    o.clip_norm = 1;
    rig r;
    sgd_status st = rig_make(&r, "2-8-relu-3", "sgd:lr=30,momentum=0.5", "step:step_size=5", &o, &t->base);
    unsigned char *buf = NULL;
    if (st == SGD_OK) {
        st = sgd_trainer_fit(r.t, 0); /* rescues, snapshots, validation: no allocation */
        if (st == SGD_OK) {
            size_t n = sgd_trainer_state_size(r.t);
            buf = malloc(n);
            st = sgd_trainer_state_export(r.t, buf, n);
            if (st == SGD_OK)
                st = sgd_trainer_state_import(r.t, buf, n); /* allocates a scratch snapshot */
            if (st == SGD_ENOMEM) {
                /* Still usable after a failed import. */
                sgd_status again = sgd_trainer_fit(r.t, 0);
                assert_int_equal(again, SGD_OK);
            }
        }
    }
    free(buf);
    rig_free(&r);
    return st;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    long n = sgdt_walk_alloc_failures(scenario_trainer, NULL);
    printf("# trainer scenario walked over %ld allocations\n", n);
    assert_true(n > 10);
}

static void test_fit_allocates_nothing(void **state)
{
    (void)state;
    sgdt_alloc t;
    sgdt_alloc_init(&t);
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.epochs = 3;
    o.batch_size = 32;
    o.guard_interval = 5;
    rig r;
    sgdt_assert_status(rig_make(&r, "2-16-relu-dropout(0.2)-3", "sgd:lr=30,momentum=0.9", "cosine:T_max=50", &o,
                                &t.base),
                       SGD_OK);
    progress_log l = {.monotone = true, .stop_at_epoch = -1};
    sgd_trainer_set_progress(r.t, log_progress, &l);
    long before = t.calls;
    sgd_status st = sgd_trainer_fit(r.t, 0);
    assert_true(st == SGD_OK || st == SGD_EDIVERGED);
    assert_true(stats_of(r.t).rescues >= 1);
    size_t n = sgd_trainer_state_size(r.t);
    unsigned char *buf = malloc(n);
    sgdt_assert_status(sgd_trainer_state_export(r.t, buf, n), SGD_OK);
    assert_int_equal(t.calls, before);
    free(buf);
    rig_free(&r);
    assert_int_equal(t.live, 0);
}

/* A schedule-free optimizer is validated at its evaluation point, and trains at the other. */
static void test_eval_point_validation(void **state)
{
    (void)state;
    rig r;
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.epochs = 3;
    o.batch_size = 32;
    o.guard = 0;
    sgdt_assert_status(rig_make(&r, "2-16-tanh-3", "sgd_sf:lr=0.5", NULL, &o, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_OK);
    assert_int_equal(sgd_optim_at_eval_point(r.o), 0); /* back at y after validating */
    sgd_trainer_epoch e;
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    sgdt_assert_status(sgd_trainer_get_epoch(r.t, 2, &e), SGD_OK);
    double at_y, at_x, acc;
    sgdt_assert_status(sgd_model_evaluate(r.m, r.val, 0, &at_y, &acc), SGD_OK);
    float *p = sgd_model_params(r.m);
    sgdt_assert_status(sgd_optim_eval_point(r.o, p, 1), SGD_OK);
    sgdt_assert_status(sgd_model_evaluate(r.m, r.val, 0, &at_x, &acc), SGD_OK);
    assert_true(e.val_loss == at_x); /* what the trainer reported is the loss at x */
    assert_true(at_x != at_y);
    /* a fit that starts at the evaluation point goes back to y first */
    sgd_trainer_options_init(&o);
    sgdt_assert_status(sgd_trainer_fit(r.t, 1), SGD_OK);
    assert_int_equal(sgd_optim_at_eval_point(r.o), 0);
    rig_free(&r);
}

/* LAMB gets the model's tensors: a trust ratio per tensor, as torch. */
static void test_tensors_passed(void **state)
{
    (void)state;
    rig r;
    sgdt_assert_status(rig_make(&r, "2-16-tanh-3", "lamb:lr=0.01", NULL, NULL, NULL), SGD_OK);
    size_t n = sgd_model_num_params(r.m), k = sgd_model_num_param_tensors(r.m);
    assert_int_equal(k, 4);
    /* the same steps by hand, on an optimizer told the same tensors, give the same bits */
    sgd_optim *twin;
    sgdt_assert_status(sgd_optim_new(&twin, "lamb:lr=0.01", n, NULL), SGD_OK);
    size_t sizes[4];
    for (size_t i = 0; i < k; i++) {
        sgd_param_info pi;
        memset(&pi, 0, sizeof pi);
        pi.struct_size = sizeof pi;
        sgdt_assert_status(sgd_model_param_info(r.m, i, &pi), SGD_OK);
        sizes[i] = pi.numel;
    }
    sgdt_assert_status(sgd_optim_set_tensors(twin, sizes, k), SGD_OK);
    float *x = malloc(n * sizeof *x), *g = malloc(n * sizeof *g);
    memcpy(x, sgd_model_params(r.m), n * sizeof *x);
    sgdt_assert_status(sgd_trainer_fit(r.t, 1), SGD_OK);
    /* the gradients of that step are still in the model's arena */
    memcpy(g, sgd_model_grads(r.m), n * sizeof *g);
    sgd_optim_step_info info;
    sgd_optim_step_info_init(&info);
    sgdt_assert_status(sgd_optim_step(twin, x, g, 0.01, &info), SGD_OK);
    assert_memory_equal(x, sgd_model_params(r.m), n * sizeof *x);
    free(x);
    free(g);
    sgd_optim_free(twin);
    rig_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_epochs_validation_progress),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_early_stopping),
        cmocka_unit_test(test_plateau_metric),
        cmocka_unit_test(test_momentum_forwarding),
        cmocka_unit_test(test_guard_rescues),
        cmocka_unit_test(test_guard_gives_up),
        cmocka_unit_test(test_unguarded_divergence),
        cmocka_unit_test(test_host_overrides),
        cmocka_unit_test(test_monitor_callbacks_and_reentry),
        cmocka_unit_test(test_hygiene_passed),
        cmocka_unit_test(test_state_roundtrip_bitexact),
        cmocka_unit_test(test_state_import_errors),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_fit_allocates_nothing),
        cmocka_unit_test(test_eval_point_validation),
        cmocka_unit_test(test_tensors_passed),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
