/*
 * Tuning: the LR range test on a problem whose good learning rate is known,
 * NaN at the end of a test, too few points, restoring the model and the
 * optimizer, bad options; grid and random search with a host objective and
 * with the built-in trainer, threads, reproducibility; allocation failures.
 * SPDX-License-Identifier: MIT
 */
#include "util/sgdtest.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Least squares with isotropic inputs: y = w* . x, x ~ N(0, I), a bias-free
 * linear model "8-dense(1,bias=0)" with MSE. The loss is |w - w*|^2 (in
 * expectation), its Hessian 2I: plain gradient descent converges for lr < 1
 * and best at lr = 0.5 (one step), diverges above 1.
 */
#define LS_N 2048
#define LS_D 8
static float ls_x[LS_N * LS_D], ls_y[LS_N];

static double gauss(uint64_t *s)
{
    double u = 0, v = 0;
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    u = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    v = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static int setup(void **state)
{
    (void)state;
    uint64_t s = 42;
    double w[LS_D];
    for (int j = 0; j < LS_D; j++)
        w[j] = gauss(&s);
    for (int i = 0; i < LS_N; i++) {
        double y = 0;
        for (int j = 0; j < LS_D; j++) {
            ls_x[i * LS_D + j] = (float)gauss(&s);
            y += w[j] * ls_x[i * LS_D + j];
        }
        ls_y[i] = (float)y;
    }
    return 0;
}

static bool params_ok(sgd_model *m)
{
    const float *w = sgd_model_params(m);
    for (size_t i = 0; i < sgd_model_num_params(m); i++)
        if (!isfinite(w[i]))
            return false;
    return true;
}

typedef struct ls {
    sgd_dataset *d;
    sgd_model *m;
    sgd_optim *o;
} ls;

static sgd_status ls_make(ls *p, const char *optim, const sgd_allocator *a)
{
    memset(p, 0, sizeof *p);
    sgd_status st;
    if ((st = sgd_dataset_from_targets(&p->d, ls_x, ls_y, LS_N, LS_D, 1, a)) != SGD_OK)
        return st;
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.loss = SGD_LOSS_MSE;
    mo.seed = 1;
    if ((st = sgd_model_from_spec(&p->m, "8-dense(1,bias=0)", &mo, a)) != SGD_OK)
        return st;
    return sgd_optim_new(&p->o, optim, sgd_model_num_params(p->m), a);
}

static void ls_free(ls *p)
{
    sgd_optim_free(p->o);
    sgd_model_free(p->m);
    sgd_dataset_free(p->d);
}

/* ------------------------------------------------------------ range test */

static void test_lrfind_known_lr(void **state)
{
    (void)state;
    ls p;
    sgdt_assert_status(ls_make(&p, "sgd:lr=0.1,momentum=0", NULL), SGD_OK);
    float before[LS_D];
    memcpy(before, sgd_model_params(p.m), sizeof before);
    double initial;
    sgdt_assert_status(sgd_model_evaluate(p.m, p.d, 0, &initial, NULL), SGD_OK);
    sgd_lrfind_options o;
    sgd_lrfind_options_init(&o);
    o.lr_min = 1e-5;
    o.lr_max = 100;
    o.steps = 200;
    o.batch_size = 256;
    sgd_lrfind *r;
    sgdt_assert_status(sgd_lrfind_run(&r, p.m, p.o, p.d, &o, NULL), SGD_OK);
    /* The model is back as it was. */
    assert_memory_equal(sgd_model_params(p.m), before, sizeof before);
    int64_t step;
    sgd_optim_get_step(p.o, &step);
    assert_int_equal(step, 0);
    /* Divergence above lr 1 ends the test early. */
    size_t n = sgd_lrfind_count(r);
    assert_true(n < 200);
    assert_true(sgd_lrfind_end_reason(r) == SGD_LRFIND_DIVERGED || sgd_lrfind_end_reason(r) == SGD_LRFIND_NONFINITE);
    sgd_lrfind_sample last;
    last.struct_size = sizeof last;
    sgdt_assert_status(sgd_lrfind_point(r, n - 1, &last), SGD_OK);
    assert_true(last.lr > 1.0 && last.lr < 20.0);
    double lr[3];
    size_t idx[3];
    for (int k = 0; k < 3; k++) {
        sgdt_assert_status(sgd_lrfind_suggestion(r, k, &lr[k], &idx[k]), SGD_OK);
        printf("# least squares (good lr 0.5, divergence above 1): %s %.3g\n", sgd_lrfind_method_name(k), lr[k]);
    }
    /*
     * Every suggestion is in the convergent range (0, 1), within two decades
     * of the best rate 0.5 (the test trains as the rate grows, so the loss is
     * already low when the rate reaches 0.5: the descent comes earlier).
     */
    for (int k = 0; k < 3; k++)
        assert_true(lr[k] > 0.005 && lr[k] < 1.0);
    assert_true(lr[SGD_LRFIND_STEEPEST] > 0.01);
    assert_int_equal(sgd_lrfind_default_method(), SGD_LRFIND_STEEPEST);
    /* The curve: lr grows exponentially; the smoothed loss is the debiased EMA. */
    double *lrs = calloc(n, sizeof *lrs), *loss = calloc(n, sizeof *loss), *sm = calloc(n, sizeof *sm);
    sgdt_assert_status(sgd_lrfind_curve(r, lrs, loss, sm, n), SGD_OK);
    double avg = 0, bp = 1;
    for (size_t i = 0; i < n && isfinite(loss[i]); i++) {
        assert_true(fabs(lrs[i] - 1e-5 * pow(1e7, (double)i / 199.0)) < 1e-12 * lrs[i] + 1e-18);
        avg = 0.98 * avg + 0.02 * loss[i];
        bp *= 0.98;
        assert_true(fabs(sm[i] - avg / (1 - bp)) <= 1e-12 * fabs(sm[i]));
    }
    sgdt_assert_status(sgd_lrfind_curve(r, lrs, NULL, NULL, n - 1), SGD_ESHAPE);
    sgd_lrfind_sample s;
    s.struct_size = sizeof s;
    sgdt_assert_status(sgd_lrfind_point(r, idx[0], &s), SGD_OK);
    assert_int_equal(s.used, 1);
    assert_true(s.slope < 0 && isfinite(s.fit));
    sgdt_assert_status(sgd_lrfind_point(r, n, &s), SGD_EINVAL);
    s.struct_size = 4;
    sgdt_assert_status(sgd_lrfind_point(r, 0, &s), SGD_EINVAL);
    free(lrs);
    free(loss);
    free(sm);
    sgd_lrfind_free(r);

    /* Trained at the suggestion, the problem is solved. */
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    to.batch_size = 256;
    to.epochs = 40;
    sgd_trainer *t;
    sgdt_assert_status(sgd_optim_set(p.o, "lr", lr[SGD_LRFIND_STEEPEST]), SGD_OK);
    sgdt_assert_status(sgd_trainer_new(&t, p.m, p.o, NULL, NULL, p.d, NULL, &to, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(t, 0), SGD_OK);
    double final;
    sgdt_assert_status(sgd_model_evaluate(p.m, p.d, 0, &final, NULL), SGD_OK);
    assert_true(final < 1e-4 * initial);
    sgd_trainer_free(t);
    ls_free(&p);
}

/* With no early stop and a huge range, the loss reaches inf/NaN: the suggestions use the finite part. */
static void test_lrfind_nan_at_end(void **state)
{
    (void)state;
    ls p;
    sgdt_assert_status(ls_make(&p, "sgd:lr=0.1", NULL), SGD_OK);
    sgd_lrfind_options o;
    sgd_lrfind_options_init(&o);
    o.lr_min = 1e-4;
    o.lr_max = 1e8;
    o.steps = 120;
    o.stop_factor = 0;
    o.batch_size = 128;
    o.ramp = SGD_LRFIND_EXPONENTIAL;
    sgd_lrfind *r;
    sgdt_assert_status(sgd_lrfind_run(&r, p.m, p.o, p.d, &o, NULL), SGD_OK);
    assert_int_equal(sgd_lrfind_end_reason(r), SGD_LRFIND_NONFINITE);
    size_t n = sgd_lrfind_count(r);
    sgd_lrfind_sample s;
    s.struct_size = sizeof s;
    sgdt_assert_status(sgd_lrfind_point(r, n - 1, &s), SGD_OK);
    assert_false(isfinite(s.loss));
    assert_int_equal(s.used, 0);
    assert_true(isnan(s.fit));
    for (int k = 0; k < 3; k++) {
        double lr;
        size_t i;
        sgdt_assert_status(sgd_lrfind_suggestion(r, k, &lr, &i), SGD_OK);
        assert_true(isfinite(lr) && lr > 0 && lr < 2.0);
        assert_true(i < n - 1);
    }
    assert_true(params_ok(p.m));
    sgd_lrfind_free(r);
    ls_free(&p);
}

static int32_t cancel_at_10(int64_t step, int64_t steps, double lr, double loss, void *user)
{
    (void)steps;
    (void)lr;
    (void)loss;
    (*(int *)user)++;
    return step >= 10;
}

static void test_lrfind_edges(void **state)
{
    (void)state;
    ls p;
    sgdt_assert_status(ls_make(&p, "adam", NULL), SGD_OK);
    sgd_lrfind *r = (sgd_lrfind *)&p;
    sgd_lrfind_options o;
    /* Too few finite points: the test blows up at once. */
    sgd_lrfind_options_init(&o);
    o.lr_min = 1e6;
    o.lr_max = 1e9;
    o.steps = 8;
    o.stop_factor = 0;
    ls q;
    sgdt_assert_status(ls_make(&q, "sgd:lr=1", NULL), SGD_OK);
    sgdt_assert_status(sgd_lrfind_run(&r, q.m, q.o, q.d, &o, NULL), SGD_OK);
    double lr = -1;
    sgdt_assert_status(sgd_lrfind_suggestion(r, SGD_LRFIND_STEEPEST, &lr, NULL), SGD_ENOTFOUND);
    sgdt_assert_error_contains("finite point");
    assert_true(lr == -1);
    sgd_lrfind_free(r);
    ls_free(&q);
    /* No descent: a range of rates too small to move anything. */
    sgd_lrfind_options_init(&o);
    o.lr_min = 1e-12;
    o.lr_max = 1e-10;
    o.steps = 40;
    sgdt_assert_status(sgd_lrfind_run(&r, p.m, p.o, p.d, &o, NULL), SGD_OK);
    if (getenv("DEBUG_CURVE"))
        for (size_t i = 0; i < sgd_lrfind_count(r); i++) {
            sgd_lrfind_sample c;
            c.struct_size = sizeof c;
            sgd_lrfind_point(r, i, &c);
            printf("%zu %.4g %.5f %.5f\n", i, c.lr, c.loss, c.fit);
        }
    sgdt_assert_status(sgd_lrfind_suggestion(r, SGD_LRFIND_MINIMUM, &lr, NULL), SGD_ENOTFOUND);
    sgdt_assert_error_contains("did not fall");
    sgdt_assert_status(sgd_lrfind_suggestion(r, 7, &lr, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_lrfind_suggestion(NULL, 0, &lr, NULL), SGD_EINVAL);
    sgd_lrfind_free(r);
    /* A linear ramp. */
    sgd_lrfind_options_init(&o);
    o.ramp = SGD_LRFIND_LINEAR;
    o.lr_min = 1e-4;
    o.lr_max = 0.5;
    o.steps = 30;
    sgdt_assert_status(sgd_lrfind_run(&r, p.m, p.o, p.d, &o, NULL), SGD_OK);
    sgd_lrfind_sample s;
    s.struct_size = sizeof s;
    sgdt_assert_status(sgd_lrfind_point(r, 1, &s), SGD_OK);
    assert_true(fabs(s.lr - (1e-4 + (0.5 - 1e-4) / 29)) < 1e-15);
    sgd_lrfind_free(r);
    /* Canceled by the progress callback: the model is put back. */
    float before[LS_D];
    memcpy(before, sgd_model_params(p.m), sizeof before);
    int calls = 0;
    sgd_lrfind_options_init(&o);
    o.progress = cancel_at_10;
    o.progress_user = &calls;
    sgdt_assert_status(sgd_lrfind_run(&r, p.m, p.o, p.d, &o, NULL), SGD_ECANCELED);
    assert_null(r);
    assert_int_equal(calls, 10);
    assert_memory_equal(sgd_model_params(p.m), before, sizeof before);
    /* Bad options and arguments. */
    sgd_lrfind_options_init(&o);
    o.lr_min = 0;
    sgdt_assert_status(sgd_lrfind_run(&r, p.m, p.o, p.d, &o, NULL), SGD_ERANGE);
    sgdt_assert_error_contains("lr_min");
    sgd_lrfind_options_init(&o);
    o.lr_max = o.lr_min;
    sgdt_assert_status(sgd_lrfind_run(&r, p.m, p.o, p.d, &o, NULL), SGD_ERANGE);
    sgdt_assert_error_contains("lr_max");
    sgd_lrfind_options_init(&o);
    o.steps = 3;
    sgdt_assert_status(sgd_lrfind_run(&r, p.m, p.o, p.d, &o, NULL), SGD_ERANGE);
    sgd_lrfind_options_init(&o);
    o.beta = 1;
    sgdt_assert_status(sgd_lrfind_run(&r, p.m, p.o, p.d, &o, NULL), SGD_ERANGE);
    sgd_lrfind_options_init(&o);
    o.stop_factor = 0.5;
    sgdt_assert_status(sgd_lrfind_run(&r, p.m, p.o, p.d, &o, NULL), SGD_ERANGE);
    sgd_lrfind_options_init(&o);
    o.ramp = 5;
    sgdt_assert_status(sgd_lrfind_run(&r, p.m, p.o, p.d, &o, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_lrfind_run(NULL, p.m, p.o, p.d, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_lrfind_run(&r, NULL, p.o, p.d, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_lrfind_run(&r, p.m, NULL, p.d, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_lrfind_run(&r, p.m, p.o, NULL, NULL, NULL), SGD_EINVAL);
    sgd_optim *other;
    sgdt_assert_status(sgd_optim_new(&other, "adam", 3, NULL), SGD_OK);
    sgdt_assert_status(sgd_lrfind_run(&r, p.m, other, p.d, NULL, NULL), SGD_ESHAPE);
    sgd_optim_free(other);
    sgd_dataset *labels;
    int32_t y[4] = {0, 1, 0, 1};
    sgdt_assert_status(sgd_dataset_from_labels(&labels, ls_x, y, 4, LS_D, NULL), SGD_OK);
    sgdt_assert_status(sgd_lrfind_run(&r, p.m, p.o, labels, NULL, NULL), SGD_ESHAPE);
    sgd_dataset_free(labels);
    assert_int_equal(sgd_lrfind_count(NULL), 0);
    assert_int_equal(sgd_lrfind_end_reason(NULL), -1);
    assert_string_equal(sgd_lrfind_method_name(SGD_LRFIND_VALLEY), "valley");
    assert_string_equal(sgd_lrfind_method_name(9), "unknown");
    sgd_lrfind_free(NULL);
    ls_free(&p);
}

/* The optimizer's state (Adam's moments, momentum buffers) is put back bit for bit. */
static void test_lrfind_restores_optimizer(void **state)
{
    (void)state;
    ls p;
    sgdt_assert_status(ls_make(&p, "adam:lr=0.01", NULL), SGD_OK);
    sgd_trainer *t;
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    sgdt_assert_status(sgd_trainer_new(&t, p.m, p.o, NULL, NULL, p.d, NULL, &to, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(t, 5), SGD_OK);
    sgd_trainer_free(t);
    unsigned char before[3][256];
    size_t bytes[3];
    assert_int_equal(sgd_optim_state_count(p.o), 3);
    for (size_t i = 0; i < 3; i++) {
        int32_t type;
        size_t len;
        sgd_optim_state_describe(p.o, i, NULL, &type, &len);
        bytes[i] = len * (type == SGD_STATE_F32 ? 4 : 8);
        sgdt_assert_status(sgd_optim_state_export(p.o, i, before[i], bytes[i]), SGD_OK);
    }
    uint64_t rng[4];
    sgd_model_get_rng_state(p.m, rng);
    sgd_lrfind *r;
    sgdt_assert_status(sgd_lrfind_run(&r, p.m, p.o, p.d, NULL, NULL), SGD_OK);
    for (size_t i = 0; i < 3; i++) {
        unsigned char now[256];
        sgdt_assert_status(sgd_optim_state_export(p.o, i, now, bytes[i]), SGD_OK);
        assert_memory_equal(now, before[i], bytes[i]);
    }
    uint64_t rng2[4];
    sgd_model_get_rng_state(p.m, rng2);
    assert_memory_equal(rng, rng2, sizeof rng);
    sgd_lrfind_free(r);
    ls_free(&p);
}

/* ------------------------------------------------------------ search with a host objective */

/* A smooth objective of log lr with its optimum at lr 1e-2, momentum 0.9 and batch 64 best. */
static sgd_status objective(sgd_search_trial *t, void *user)
{
    int *calls = user;
    if (calls != NULL)
        __atomic_fetch_add(calls, 1, __ATOMIC_RELAXED);
    double x = log10(t->lr) + 2;
    t->final_loss = x * x + (isnan(t->momentum) ? 0 : fabs(t->momentum - 0.9)) + (t->batch_size == 64 ? 0 : 0.5);
    t->val_accuracy = 1 / (1 + t->final_loss);
    t->verdict = t->lr > 1 ? SGD_MONITOR_DIVERGED : SGD_MONITOR_HEALTHY;
    t->steps = 10;
    return t->lr > 1 ? SGD_EDIVERGED : SGD_OK;
}

static void test_search_grid_objective(void **state)
{
    (void)state;
    sgd_search_options o;
    sgd_search_options_init(&o);
    assert_int_equal(o.lr_count, 11);
    o.lr_min = 1e-4;
    o.lr_max = 10;
    o.lr_count = 11;
    double mom[2] = {0, 0.9};
    int64_t bs[2] = {32, 64};
    o.momenta = mom;
    o.n_momenta = 2;
    o.batch_sizes = bs;
    o.n_batch_sizes = 2;
    int calls = 0;
    sgd_search *s;
    sgdt_assert_status(sgd_search_run_objective(&s, objective, &calls, &o, NULL), SGD_OK);
    assert_int_equal(calls, 44);
    assert_int_equal(sgd_search_count(s), 44);
    /* Order: momenta x batch sizes x learning rates, the learning rate fastest. */
    sgd_search_trial t;
    t.struct_size = sizeof t;
    for (size_t i = 0; i < 44; i++) {
        sgdt_assert_status(sgd_search_get_trial(s, i, &t), SGD_OK);
        assert_int_equal(t.index, (int64_t)i);
        double want = pow(10, -4 + 0.5 * (double)(i % 11));
        assert_true(fabs(t.lr - want) < 1e-12 * want);
        assert_true(t.batch_size == bs[(i / 11) % 2]);
        assert_true(t.momentum == mom[i / 22]);
        assert_string_equal(t.optimizer, "sgd:momentum=0.9");
        assert_int_equal(t.status, t.lr > 1 ? SGD_EDIVERGED : SGD_OK);
        assert_true(t.seconds >= 0);
    }
    size_t best;
    sgdt_assert_status(sgd_search_best(s, &best), SGD_OK);
    sgdt_assert_status(sgd_search_get_trial(s, best, &t), SGD_OK);
    assert_true(fabs(t.lr - 1e-2) < 1e-12);
    assert_true(t.momentum == 0.9 && t.batch_size == 64);
    sgdt_assert_status(sgd_search_get_trial(s, 44, &t), SGD_EINVAL);
    t.struct_size = 8;
    sgdt_assert_status(sgd_search_get_trial(s, 0, &t), SGD_EINVAL);
    sgd_search_free(s);

    /* An explicit list, several threads: the same results. */
    double lrs[5] = {1e-3, 3e-3, 1e-2, 3e-2, 100};
    sgd_search_options_init(&o);
    o.lrs = lrs;
    o.n_lrs = 5;
    o.threads = 3;
    sgdt_assert_status(sgd_search_run_objective(&s, objective, NULL, &o, NULL), SGD_OK);
    assert_int_equal(sgd_search_count(s), 5);
    sgdt_assert_status(sgd_search_best(s, &best), SGD_OK);
    assert_int_equal(best, 2);
    sgd_search_free(s);

    /* A template that names its lr runs once, at that lr, next to the grid (a learning-rate-free method). */
    static const char *const opts[] = {"sgd", "prodigy:lr=1", "adam"};
    sgd_search_options_init(&o);
    o.lrs = lrs;
    o.n_lrs = 3;
    o.optimizers = opts;
    o.n_optimizers = 3;
    o.batch_sizes = bs;
    o.n_batch_sizes = 2;
    sgdt_assert_status(sgd_search_run_objective(&s, objective, NULL, &o, NULL), SGD_OK);
    assert_int_equal(sgd_search_count(s), 3 * 2 + 1 * 2 + 3 * 2);
    static const struct {
        const char *opt;
        double lr;
        int64_t bs;
    } want[] = {{"sgd", 1e-3, 32},         {"sgd", 3e-3, 32},  {"sgd", 1e-2, 32},  {"sgd", 1e-3, 64},
                {"sgd", 3e-3, 64},         {"sgd", 1e-2, 64},  {"prodigy:lr=1", 1, 32}, {"prodigy:lr=1", 1, 64},
                {"adam", 1e-3, 32},        {"adam", 3e-3, 32}, {"adam", 1e-2, 32}, {"adam", 1e-3, 64},
                {"adam", 3e-3, 64},        {"adam", 1e-2, 64}};
    t.struct_size = sizeof t;
    for (size_t i = 0; i < 14; i++) {
        sgdt_assert_status(sgd_search_get_trial(s, i, &t), SGD_OK);
        assert_string_equal(t.optimizer, want[i].opt);
        assert_true(t.lr == want[i].lr && t.batch_size == want[i].bs);
    }
    sgd_search_free(s);
}

static void test_search_random_objective(void **state)
{
    (void)state;
    sgd_search_options o;
    sgd_search_options_init(&o);
    o.method = SGD_SEARCH_RANDOM;
    o.trials = 40;
    o.lr_min = 1e-5;
    o.lr_max = 1;
    o.seed = 7;
    const char *opts[2] = {"sgd", "adam:eps=1e-7"};
    o.optimizers = opts;
    o.n_optimizers = 2;
    sgd_search *a, *b, *c;
    sgdt_assert_status(sgd_search_run_objective(&a, objective, NULL, &o, NULL), SGD_OK);
    o.threads = 4;
    sgdt_assert_status(sgd_search_run_objective(&b, objective, NULL, &o, NULL), SGD_OK);
    o.seed = 8;
    o.threads = 1;
    sgdt_assert_status(sgd_search_run_objective(&c, objective, NULL, &o, NULL), SGD_OK);
    int low = 0, adam = 0, differ = 0;
    for (size_t i = 0; i < 40; i++) {
        sgd_search_trial ta, tb, tc;
        ta.struct_size = tb.struct_size = tc.struct_size = sizeof ta;
        sgd_search_get_trial(a, i, &ta);
        sgd_search_get_trial(b, i, &tb);
        sgd_search_get_trial(c, i, &tc);
        assert_true(ta.lr >= 1e-5 && ta.lr <= 1);
        assert_true(ta.lr == tb.lr && ta.final_loss == tb.final_loss);
        assert_string_equal(ta.optimizer, tb.optimizer);
        differ += ta.lr != tc.lr;
        low += ta.lr < 1e-3; /* log-uniform: about 3/5 of the draws below 1e-3 */
        adam += strcmp(ta.optimizer, "adam:eps=1e-7") == 0;
    }
    assert_int_equal(differ, 40);
    assert_true(low >= 14 && low <= 34);
    assert_true(adam >= 8 && adam <= 32);
    sgd_search_free(a);
    sgd_search_free(b);
    sgd_search_free(c);
}

static sgd_status failing_objective(sgd_search_trial *t, void *user)
{
    (void)user;
    if (t->index == 3)
        return SGD_EIO;
    t->final_loss = 1;
    return SGD_OK;
}

static sgd_status all_diverge(sgd_search_trial *t, void *user)
{
    (void)user;
    t->verdict = SGD_MONITOR_DIVERGED;
    return SGD_EDIVERGED;
}

static void test_search_errors(void **state)
{
    (void)state;
    sgd_search *s = (sgd_search *)&s;
    sgd_search_options o;
    sgd_search_options_init(&o);
    sgdt_assert_status(sgd_search_run_objective(&s, failing_objective, NULL, &o, NULL), SGD_EIO);
    assert_null(s);
    sgdt_assert_error_contains("trial 3");
    sgdt_assert_status(sgd_search_run_objective(&s, all_diverge, NULL, &o, NULL), SGD_OK);
    size_t best;
    sgdt_assert_status(sgd_search_best(s, &best), SGD_ENOTFOUND);
    sgd_search_free(s);
    sgdt_assert_status(sgd_search_run_objective(NULL, objective, NULL, &o, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_search_run_objective(&s, NULL, NULL, &o, NULL), SGD_EINVAL);
    o.lr_min = 0;
    sgdt_assert_status(sgd_search_run_objective(&s, objective, NULL, &o, NULL), SGD_ERANGE);
    sgdt_assert_error_contains("lr_min");
    sgd_search_options_init(&o);
    o.lr_max = 1e-5;
    sgdt_assert_status(sgd_search_run_objective(&s, objective, NULL, &o, NULL), SGD_ERANGE);
    sgd_search_options_init(&o);
    o.lr_count = 0;
    sgdt_assert_status(sgd_search_run_objective(&s, objective, NULL, &o, NULL), SGD_ERANGE);
    sgd_search_options_init(&o);
    double bad[2] = {0.1, -1};
    o.lrs = bad;
    o.n_lrs = 2;
    sgdt_assert_status(sgd_search_run_objective(&s, objective, NULL, &o, NULL), SGD_ERANGE);
    sgdt_assert_error_contains("lrs[1]");
    sgd_search_options_init(&o);
    double mom[1] = {1.0};
    o.momenta = mom;
    o.n_momenta = 1;
    sgdt_assert_status(sgd_search_run_objective(&s, objective, NULL, &o, NULL), SGD_ERANGE);
    sgdt_assert_error_contains("momenta[0]");
    sgd_search_options_init(&o);
    int64_t bs[1] = {0};
    o.batch_sizes = bs;
    o.n_batch_sizes = 1;
    sgdt_assert_status(sgd_search_run_objective(&s, objective, NULL, &o, NULL), SGD_ERANGE);
    sgd_search_options_init(&o);
    o.threads = 0;
    sgdt_assert_status(sgd_search_run_objective(&s, objective, NULL, &o, NULL), SGD_ERANGE);
    sgd_search_options_init(&o);
    o.method = SGD_SEARCH_RANDOM;
    o.trials = 0;
    sgdt_assert_status(sgd_search_run_objective(&s, objective, NULL, &o, NULL), SGD_ERANGE);
    sgd_search_options_init(&o);
    o.method = 3;
    sgdt_assert_status(sgd_search_run_objective(&s, objective, NULL, &o, NULL), SGD_EINVAL);
    sgd_search_options_init(&o);
    o.struct_size = 4;
    sgdt_assert_status(sgd_search_run_objective(&s, objective, NULL, &o, NULL), SGD_EINVAL);
    assert_int_equal(sgd_search_count(NULL), 0);
    sgdt_assert_status(sgd_search_best(NULL, &best), SGD_EINVAL);
    sgd_search_free(NULL);

    /* Built-in trials: the model spec, the optimizers, the momenta and the data are checked first. */
    ls p;
    sgdt_assert_status(ls_make(&p, "sgd:lr=0.1", NULL), SGD_OK);
    sgd_search_options_init(&o);
    sgdt_assert_status(sgd_search_run(&s, "8-oops", p.d, NULL, &o, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_search_run(&s, "3-1:loss=mse", p.d, NULL, &o, NULL), SGD_ESHAPE);
    const char *bogus[1] = {"sgd:momentum=0.9,bogus=1"};
    o.optimizers = bogus;
    o.n_optimizers = 1;
    sgdt_assert_status(sgd_search_run(&s, "8-1:loss=mse", p.d, NULL, &o, NULL), SGD_ENOTFOUND);
    sgdt_assert_error_contains("bogus");
    const char *ada[1] = {"adagrad"};
    double m9[1] = {0.9};
    o.optimizers = ada;
    o.momenta = m9;
    o.n_momenta = 1;
    sgdt_assert_status(sgd_search_run(&s, "8-1:loss=mse", p.d, NULL, &o, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("adagrad");
    sgd_search_options_init(&o);
    o.schedule = "cosine:T_max=0";
    sgdt_assert_status(sgd_search_run(&s, "8-1:loss=mse", p.d, NULL, &o, NULL), SGD_ERANGE);
    sgd_search_options_init(&o);
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    to.epochs = 0;
    o.trainer = &to;
    sgdt_assert_status(sgd_search_run(&s, "8-1:loss=mse", p.d, NULL, &o, NULL), SGD_ERANGE);
    sgdt_assert_error_contains("epochs");
    sgdt_assert_status(sgd_search_run(&s, NULL, p.d, NULL, &o, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_search_run(&s, "8-1:loss=mse", NULL, NULL, &o, NULL), SGD_EINVAL);
    ls_free(&p);
}

/* ------------------------------------------------------------ search with the trainer */

/* Three classes of Gaussian blobs in 4 dimensions: 600 rows, 200 for validation. */
static float blob_x[800 * 4];
static int32_t blob_y[800];

static void make_blobs(void)
{
    uint64_t s = 99;
    for (int i = 0; i < 800; i++) {
        int k = i % 3;
        blob_y[i] = k;
        for (int j = 0; j < 4; j++)
            blob_x[i * 4 + j] = (float)((j == k ? 2.0 : 0.0) + gauss(&s));
    }
}

typedef struct sweep_log {
    int steps[8];
    int events[8];
    int trials;
} sweep_log;

static void log_step(int64_t trial, int64_t step, double loss, double lr, void *user)
{
    sweep_log *l = user;
    assert_true(trial >= 0 && trial < 8);
    assert_true(step >= 0 && lr > 0);
    if (getenv("DEBUG_EVENTS") && trial == 2)
        printf("trial %lld step %lld loss %g\n", (long long)trial, (long long)step, loss);
    l->steps[trial]++;
}

static void log_event(int64_t trial, const sgd_trainer_event *ev, void *user)
{
    sweep_log *l = user;
    assert_non_null(ev);
    if (getenv("DEBUG_EVENTS"))
        printf("trial %lld: %s\n", (long long)trial, ev->message);
    l->events[trial]++;
}

static void log_trial(const sgd_search_trial *t, int64_t done, int64_t total, void *user)
{
    sweep_log *l = user;
    assert_true(done >= 1 && done <= total);
    assert_true(t->steps > 0);
    l->trials++;
}

static void test_search_builtin(void **state)
{
    (void)state;
    make_blobs();
    sgd_dataset *train, *val;
    sgdt_assert_status(sgd_dataset_from_labels(&train, blob_x, blob_y, 600, 4, NULL), SGD_OK);
    sgdt_assert_status(sgd_dataset_from_labels(&val, blob_x + 600 * 4, blob_y + 600, 200, 4, NULL), SGD_OK);
    sgd_search_options o;
    sgd_search_options_init(&o);
    double lrs[3] = {1e-5, 0.05, 1e4};
    o.lrs = lrs;
    o.n_lrs = 3;
    o.schedule = "constant";
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    to.batch_size = 16;
    to.epochs = 6; /* 228 steps: the monitor judges stagnation from step 150 */
    to.guard = 0;  /* (the defaults of a search; a template given is used as it is) */
    o.trainer = &to;
    sweep_log l;
    memset(&l, 0, sizeof l);
    o.on_step = log_step;
    o.on_event = log_event;
    o.on_trial = log_trial;
    o.user = &l;
    sgd_search *s;
    sgdt_assert_status(sgd_search_run(&s, "4-16-relu-3", train, val, &o, NULL), SGD_OK);
    assert_int_equal(l.trials, 3);
    sgd_search_trial t[3];
    for (int i = 0; i < 3; i++) {
        t[i].struct_size = sizeof t[i];
        sgdt_assert_status(sgd_search_get_trial(s, (size_t)i, &t[i]), SGD_OK);
        printf("# blobs: lr %g: %s, final loss %.4g, val acc %.3f, %lld steps\n", t[i].lr,
               sgd_monitor_verdict_name(t[i].verdict), t[i].final_loss, t[i].val_accuracy, (long long)t[i].steps);
        assert_int_equal(t[i].max_steps, 6 * 38);
        assert_int_equal(l.steps[i], (int)t[i].steps - (t[i].status == SGD_EDIVERGED ? 1 : 0));
    }
    assert_int_equal(t[0].verdict, SGD_MONITOR_STAGNANT);
    assert_int_equal(t[0].steps, 228);
    assert_int_equal(t[1].verdict, SGD_MONITOR_HEALTHY);
    assert_true(t[1].val_accuracy > 0.8);
    assert_int_equal(t[2].verdict, SGD_MONITOR_DIVERGED);
    assert_int_equal(t[2].status, SGD_EDIVERGED);
    assert_int_equal(t[2].stop_reason, SGD_TRAINER_DIVERGED);
    assert_true(t[2].steps < 20); /* stopped early */
    assert_true(t[2].first_alarm >= 0 && t[2].first_alarm < 5);
    assert_true(l.events[2] >= 1);
    size_t best;
    sgdt_assert_status(sgd_search_best(s, &best), SGD_OK);
    assert_int_equal(best, 1);

    /* Two threads and a cosine schedule with a step budget: the same table as one thread. */
    o.threads = 2;
    o.schedule = NULL;
    o.max_steps = 100;
    o.on_step = NULL;
    o.on_event = NULL;
    sgd_search *s2, *s1;
    sgdt_assert_status(sgd_search_run(&s2, "4-16-relu-3", train, val, &o, NULL), SGD_OK);
    o.threads = 1;
    sgdt_assert_status(sgd_search_run(&s1, "4-16-relu-3", train, val, &o, NULL), SGD_OK);
    for (size_t i = 0; i < 3; i++) {
        sgd_search_trial a, b;
        a.struct_size = b.struct_size = sizeof a;
        sgd_search_get_trial(s1, i, &a);
        sgd_search_get_trial(s2, i, &b);
        assert_true(a.final_loss == b.final_loss || (isnan(a.final_loss) && isnan(b.final_loss)));
        assert_true(a.val_accuracy == b.val_accuracy);
        assert_int_equal(a.steps, b.steps);
        assert_int_equal(a.verdict, b.verdict);
        assert_int_equal(a.max_steps, 100);
    }
    sgd_search_free(s);
    sgd_search_free(s1);
    sgd_search_free(s2);
    sgd_dataset_free(train);
    sgd_dataset_free(val);
}

/* ------------------------------------------------------------ allocation */

static sgd_status scenario_lrfind(sgdt_alloc *t, void *ctx)
{
    (void)ctx;
    ls p;
    sgd_status st = ls_make(&p, "sgd:lr=0.1,momentum=0.9", &t->base);
    sgd_lrfind *r = NULL;
    if (st == SGD_OK) {
        sgd_lrfind_options o;
        sgd_lrfind_options_init(&o);
        o.steps = 40;
        o.lr_min = 1e-4;
        o.batch_size = 512;
        st = sgd_lrfind_run(&r, p.m, p.o, p.d, &o, &t->base);
        if (st == SGD_OK) {
            double lr;
            st = sgd_lrfind_suggestion(r, SGD_LRFIND_STEEPEST, &lr, NULL);
        }
        assert_true(params_ok(p.m));
    }
    sgd_lrfind_free(r);
    ls_free(&p);
    return st;
}

static sgd_status scenario_search(sgdt_alloc *t, void *ctx)
{
    (void)ctx;
    sgd_dataset *train = NULL, *val = NULL;
    sgd_status st = sgd_dataset_from_labels(&train, blob_x, blob_y, 120, 4, &t->base);
    if (st == SGD_OK)
        st = sgd_dataset_from_labels(&val, blob_x + 600 * 4, blob_y + 600, 30, 4, &t->base);
    sgd_search *s = NULL;
    if (st == SGD_OK) {
        sgd_search_options o;
        sgd_search_options_init(&o);
        o.lr_count = 2;
        o.max_steps = 6;
        const char *opts[2] = {"sgd", "adam"};
        o.optimizers = opts;
        o.n_optimizers = 2;
        sgd_trainer_options to;
        sgd_trainer_options_init(&to);
        to.batch_size = 32;
        o.trainer = &to;
        st = sgd_search_run(&s, "4-4-relu-3", train, val, &o, &t->base);
    }
    sgd_search_free(s);
    sgd_dataset_free(train);
    sgd_dataset_free(val);
    return st;
}

static sgd_status scenario_objective(sgdt_alloc *t, void *ctx)
{
    (void)ctx;
    sgd_search_options o;
    sgd_search_options_init(&o);
    o.method = SGD_SEARCH_RANDOM;
    o.trials = 5;
    sgd_search *s = NULL;
    sgd_status st = sgd_search_run_objective(&s, objective, NULL, &o, &t->base);
    sgd_search_free(s);
    return st;
}

/* ------------------------------------------------------------ a curve measured elsewhere */

/* sgd_lrfind_analyze() on the curve of sgd_lrfind_run() gives its suggestions, bit for bit. */
static void test_analyze_same_as_run(void **state)
{
    (void)state;
    static const char *const optims[] = {"sgd:lr=0.1", "sgd:lr=0.1,momentum=0.9", "adam:lr=0.001"};
    for (int k = 0; k < 3; k++) {
        ls p;
        sgdt_assert_status(ls_make(&p, optims[k], NULL), SGD_OK);
        sgd_lrfind_options o;
        sgd_lrfind_options_init(&o);
        o.lr_min = 1e-4;
        o.lr_max = 10;
        o.steps = 80;
        o.batch_size = 64;
        sgd_lrfind *r = NULL;
        sgdt_assert_status(sgd_lrfind_run(&r, p.m, p.o, p.d, &o, NULL), SGD_OK);
        size_t n = sgd_lrfind_count(r);
        double *lr = calloc(n, sizeof *lr), *loss = calloc(n, sizeof *loss);
        assert_non_null(lr);
        assert_non_null(loss);
        sgdt_assert_status(sgd_lrfind_curve(r, lr, loss, NULL, n), SGD_OK);
        sgd_lrfind *q = NULL;
        sgdt_assert_status(sgd_lrfind_analyze(&q, lr, loss, n, &o, NULL), SGD_OK);
        assert_int_equal(sgd_lrfind_count(q), n);
        assert_int_equal(sgd_lrfind_end_reason(q), sgd_lrfind_end_reason(r));
        for (int m = 0; m < SGD_LRFIND_METHOD_COUNT; m++) {
            double a = -1, b = -1;
            size_t ia = 0, ib = 0;
            sgd_status sa = sgd_lrfind_suggestion(r, m, &a, &ia);
            sgd_status sb = sgd_lrfind_suggestion(q, m, &b, &ib);
            assert_int_equal(sa, sb);
            if (sa == SGD_OK) {
                assert_true(a == b);
                assert_int_equal(ia, ib);
            }
        }
        for (size_t i = 0; i < n; i++) {
            sgd_lrfind_sample x, y;
            x.struct_size = y.struct_size = sizeof x;
            sgdt_assert_status(sgd_lrfind_point(r, i, &x), SGD_OK);
            sgdt_assert_status(sgd_lrfind_point(q, i, &y), SGD_OK);
            assert_true(x.used == y.used && (x.smoothed == y.smoothed || (isnan(x.smoothed) && isnan(y.smoothed))));
            assert_true(x.fit == y.fit || (isnan(x.fit) && isnan(y.fit)));
        }
        /* The points after the stop rule are not recorded: the analysis cuts a longer curve there. */
        if (sgd_lrfind_end_reason(r) == SGD_LRFIND_DIVERGED) {
            double *lr2 = calloc(n + 5, sizeof *lr2), *loss2 = calloc(n + 5, sizeof *loss2);
            assert_non_null(lr2);
            assert_non_null(loss2);
            memcpy(lr2, lr, n * sizeof *lr);
            memcpy(loss2, loss, n * sizeof *loss);
            for (size_t i = n; i < n + 5; i++) {
                lr2[i] = lr2[i - 1] * 1.1;
                loss2[i] = 1e3;
            }
            sgd_lrfind *q2 = NULL;
            sgdt_assert_status(sgd_lrfind_analyze(&q2, lr2, loss2, n + 5, &o, NULL), SGD_OK);
            assert_int_equal(sgd_lrfind_count(q2), n);
            sgd_lrfind_free(q2);
            free(lr2);
            free(loss2);
        }
        free(lr);
        free(loss);
        sgd_lrfind_free(q);
        sgd_lrfind_free(r);
        ls_free(&p);
    }
}

/* A range test run by PyTorch (tests/gen_lrfind_torch.py, committed): suggestions where the loss
   falls fastest, near fastai's own on the same curve (steep 0.0376 there; the log says). */
static void test_analyze_torch(void **state)
{
    (void)state;
    FILE *f = fopen(sgdt_data_path("lrfind/torch-range-test.csv"), "r");
    assert_non_null(f);
    double lr[200], loss[200];
    size_t n = 0;
    char line[128];
    assert_non_null(fgets(line, sizeof line, f)); /* lr,loss */
    while (n < 200 && fgets(line, sizeof line, f) != NULL && sscanf(line, "%lf,%lf", &lr[n], &loss[n]) == 2)
        n++;
    fclose(f);
    assert_int_equal(n, 99);
    sgd_lrfind *r = NULL;
    sgdt_assert_status(sgd_lrfind_analyze(&r, lr, loss, n, NULL, NULL), SGD_OK);
    assert_int_equal(sgd_lrfind_count(r), 99);
    assert_int_equal(sgd_lrfind_end_reason(r), SGD_LRFIND_DIVERGED); /* torch's test stopped at the same point */
    double steep = 0, minimum = 0, valley = 0;
    sgdt_assert_status(sgd_lrfind_suggestion(r, SGD_LRFIND_STEEPEST, &steep, NULL), SGD_OK);
    sgdt_assert_status(sgd_lrfind_suggestion(r, SGD_LRFIND_MINIMUM, &minimum, NULL), SGD_OK);
    sgdt_assert_status(sgd_lrfind_suggestion(r, SGD_LRFIND_VALLEY, &valley, NULL), SGD_OK);
    print_message("torch range test: steepest %.4g (fastai steep 0.0376), minimum/10 %.4g (fastai 0.0138), "
                  "valley %.4g (fastai 0.00231)\n", steep, minimum, valley);
    assert_true(steep > 0.0376 / 2 && steep < 0.0376 * 2);
    assert_true(minimum > 0.0138 / 4 && minimum < 0.0138 * 4);
    assert_true(valley < steep && valley > 1e-4);
    sgd_lrfind_free(r);
}

static void test_analyze_errors(void **state)
{
    (void)state;
    double lr[10], loss[10];
    for (int i = 0; i < 10; i++) {
        lr[i] = 1e-3 * pow(2.0, i);
        loss[i] = 2.0 - 0.1 * i;
    }
    sgd_lrfind *r = (sgd_lrfind *)&r;
    sgdt_assert_status(sgd_lrfind_analyze(&r, NULL, loss, 10, NULL, NULL), SGD_EINVAL);
    assert_null(r);
    sgdt_assert_status(sgd_lrfind_analyze(NULL, lr, loss, 10, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_lrfind_analyze(&r, lr, NULL, 10, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_lrfind_analyze(&r, lr, loss, 0, NULL, NULL), SGD_EINVAL);
    lr[4] = lr[3];
    sgdt_assert_status(sgd_lrfind_analyze(&r, lr, loss, 10, NULL, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("lr[4]");
    lr[4] = -1;
    sgdt_assert_status(sgd_lrfind_analyze(&r, lr, loss, 10, NULL, NULL), SGD_EINVAL);
    lr[4] = NAN;
    sgdt_assert_status(sgd_lrfind_analyze(&r, lr, loss, 10, NULL, NULL), SGD_EINVAL);
    lr[4] = 1e-3 * 16;
    sgd_lrfind_options o;
    sgd_lrfind_options_init(&o);
    o.beta = 1.0;
    sgdt_assert_status(sgd_lrfind_analyze(&r, lr, loss, 10, &o, NULL), SGD_ERANGE);
    o.beta = 0.98;
    o.struct_size = 3;
    sgdt_assert_status(sgd_lrfind_analyze(&r, lr, loss, 10, &o, NULL), SGD_EINVAL);
    /* A non-finite loss ends the curve (recorded, not used); too few points: no suggestion, and why. */
    loss[6] = NAN;
    sgdt_assert_status(sgd_lrfind_analyze(&r, lr, loss, 10, NULL, NULL), SGD_OK);
    assert_int_equal(sgd_lrfind_count(r), 7);
    assert_int_equal(sgd_lrfind_end_reason(r), SGD_LRFIND_NONFINITE);
    double v;
    sgdt_assert_status(sgd_lrfind_suggestion(r, SGD_LRFIND_STEEPEST, &v, NULL), SGD_ENOTFOUND);
    sgdt_assert_error_contains("finite point");
    sgd_lrfind_free(r);
}

static sgd_status scenario_analyze(sgdt_alloc *t, void *ctx)
{
    (void)ctx;
    double lr[60], loss[60];
    for (int i = 0; i < 60; i++) {
        lr[i] = 1e-5 * pow(10.0, i / 10.0);
        loss[i] = 2.0 / (1.0 + exp((i - 30) / 4.0)) + 0.2 + (i > 50 ? (i - 50) * 0.5 : 0);
    }
    sgd_lrfind *r = NULL;
    sgd_status st = sgd_lrfind_analyze(&r, lr, loss, 60, NULL, &t->base);
    if (st != SGD_OK) {
        assert_null(r);
        return st;
    }
    double v;
    st = sgd_lrfind_suggestion(r, SGD_LRFIND_STEEPEST, &v, NULL);
    sgd_lrfind_free(r);
    return st;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    make_blobs();
    long a = sgdt_walk_alloc_failures(scenario_lrfind, NULL);
    long b = sgdt_walk_alloc_failures(scenario_search, NULL);
    long c = sgdt_walk_alloc_failures(scenario_objective, NULL);
    long d = sgdt_walk_alloc_failures(scenario_analyze, NULL);
    printf("# allocation failures walked: range test %ld, built-in search %ld, objective search %ld, analysis %ld\n",
           a, b, c, d);
    assert_true(a > 5 && b > 20 && c > 3 && d >= 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lrfind_known_lr),
        cmocka_unit_test(test_lrfind_nan_at_end),
        cmocka_unit_test(test_lrfind_edges),
        cmocka_unit_test(test_analyze_same_as_run),
        cmocka_unit_test(test_analyze_torch),
        cmocka_unit_test(test_analyze_errors),
        cmocka_unit_test(test_lrfind_restores_optimizer),
        cmocka_unit_test(test_search_grid_objective),
        cmocka_unit_test(test_search_random_objective),
        cmocka_unit_test(test_search_errors),
        cmocka_unit_test(test_search_builtin),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
