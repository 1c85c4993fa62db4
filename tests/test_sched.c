/*
 * Tests of the sched module: the closed forms and what they do past the last
 * step, the spec and its errors, composition, plateau reduction, state
 * export/import, host-written schedules, and allocation failures.
 * (The PyTorch fixtures are checked by test_golden_sched.)
 */
#include "util/sgdtest.h"

#include "sched/sched_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static double lr_of(const sgd_sched *s, int64_t t)
{
    double v = -1;
    sgdt_assert_status(sgd_sched_lr(s, t, &v), SGD_OK);
    return v;
}

static sgd_sched *from_spec(const char *spec, double base_lr)
{
    sgd_sched *s = NULL;
    sgd_status st = sgd_sched_new(&s, spec, base_lr, NULL);
    if (st != SGD_OK)
        fail_msg("sgd_sched_new(\"%s\"): %s", spec, sgd_error_last());
    return s;
}

static void assert_close(double got, double want, double rel)
{
    double d = fabs(got - want), scale = fmax(fabs(want), 1e-300);
    if (!(d <= rel * scale) && !(got == want))
        fail_msg("got %.17g, want %.17g (rel error %.3g > %.3g)", got, want, d / scale, rel);
}

/* ------------------------------------------------------------ closed forms */

static void test_relative_kinds(void **state)
{
    (void)state;
    const double B = 0.4;
    sgd_sched *s;

    sgd_sched_constant_options co;
    sgd_sched_constant_options_init(&co);
    co.factor = 0.25;
    co.total_iters = 4;
    sgdt_assert_status(sgd_sched_constant_new(&s, B, &co, NULL), SGD_OK);
    assert_string_equal(sgd_sched_name(s), "constant");
    for (int64_t t = 0; t < 4; t++)
        assert_close(lr_of(s, t), B * 0.25, 1e-15);
    assert_close(lr_of(s, 4), B, 1e-15);
    assert_close(lr_of(s, INT64_MAX), B, 1e-15);
    sgd_sched_free(s);

    sgd_sched_step_options so;
    sgd_sched_step_options_init(&so);
    so.step_size = 3;
    so.gamma = 0.5;
    sgdt_assert_status(sgd_sched_step_new(&s, B, &so, NULL), SGD_OK);
    for (int64_t t = 0; t < 40; t++)
        assert_close(lr_of(s, t), B * pow(0.5, (double)(t / 3)), 1e-15);
    assert_true(lr_of(s, INT64_MAX) == 0); /* underflows to 0, never negative or NaN */
    sgd_sched_free(s);

    const int64_t ms[] = {2, 5, 9};
    sgd_sched_multistep_options mo;
    sgd_sched_multistep_options_init(&mo);
    mo.milestones = ms;
    mo.n_milestones = 3;
    mo.gamma = 0.1;
    sgdt_assert_status(sgd_sched_multistep_new(&s, B, &mo, NULL), SGD_OK);
    const double want_ms[] = {1, 1, .1, .1, .1, .01, .01, .01, .01, .001, .001};
    for (int64_t t = 0; t < 11; t++)
        assert_close(lr_of(s, t), B * want_ms[t], 1e-14);
    assert_close(lr_of(s, 1000000), B * 0.001, 1e-14);
    sgd_sched_free(s);

    sgd_sched_exponential_options eo;
    sgd_sched_exponential_options_init(&eo);
    eo.gamma = 0.97;
    sgdt_assert_status(sgd_sched_exponential_new(&s, B, &eo, NULL), SGD_OK);
    double rec = B; /* the recursive product drifts by a few ulps at most over 500 steps */
    for (int64_t t = 0; t < 500; t++, rec *= 0.97)
        assert_close(lr_of(s, t), rec, 1e-13);
    sgd_sched_free(s);

    sgd_sched_polynomial_options po;
    sgd_sched_polynomial_options_init(&po);
    po.total_iters = 8;
    po.power = 2;
    sgdt_assert_status(sgd_sched_polynomial_new(&s, B, &po, NULL), SGD_OK);
    for (int64_t t = 0; t <= 8; t++)
        assert_close(lr_of(s, t), B * (1 - t / 8.0) * (1 - t / 8.0), 1e-14);
    assert_true(lr_of(s, 8) == 0 && lr_of(s, 9) == 0 && lr_of(s, INT64_MAX) == 0); /* held at 0 */
    sgd_sched_free(s);

    sgd_sched_linear_options lo;
    sgd_sched_linear_options_init(&lo);
    lo.start_factor = 0.1;
    lo.end_factor = 0.6;
    lo.total_iters = 10;
    sgdt_assert_status(sgd_sched_linear_new(&s, B, &lo, NULL), SGD_OK);
    for (int64_t t = 0; t <= 10; t++)
        assert_close(lr_of(s, t), B * (0.1 + 0.5 * t / 10.0), 1e-14);
    assert_close(lr_of(s, 11), B * 0.6, 1e-15); /* end_factor held */
    assert_close(lr_of(s, INT64_MAX), B * 0.6, 1e-15);
    sgd_sched_free(s);
}

static void test_cosine_past_tmax(void **state)
{
    (void)state;
    sgd_sched_cosine_options o;
    sgd_sched_cosine_options_init(&o);
    o.T_max = 10;
    o.eta_min = 0.01;
    sgd_sched *s;
    sgdt_assert_status(sgd_sched_cosine_new(&s, 0.1, &o, NULL), SGD_OK);
    for (int64_t t = 0; t < 25; t++)
        assert_close(lr_of(s, t), 0.01 + 0.09 * (1 + cos(M_PI * t / 10)) / 2, 1e-14);
    assert_close(lr_of(s, 10), 0.01, 1e-15); /* the trough at T_max */
    /* Past T_max the closed form rises again: period 2 T_max, exactly, at any step. */
    assert_close(lr_of(s, 20), 0.1, 1e-15);
    assert_true(lr_of(s, 15) > lr_of(s, 14));
    for (int64_t t = 0; t < 20; t++) {
        assert_true(lr_of(s, t) == lr_of(s, t + 20));
        assert_true(lr_of(s, t) == lr_of(s, t + 20 * 1000000007LL));
    }
    double top = lr_of(s, INT64_MAX);
    assert_true(top >= 0.01 && top <= 0.1);
    sgd_sched_free(s);

    /* Holding eta_min after T_max: a sequence ending with a constant factor (eta_min / base_lr). */
    s = from_spec("sequential:milestones=[10],children=[(cosine:T_max=10,eta_min=0.01),"
                  "(linear:start_factor=0.1,end_factor=0.1)]",
                  0.1);
    assert_close(lr_of(s, 9), 0.01 + 0.09 * (1 + cos(M_PI * 9 / 10)) / 2, 1e-14);
    for (int64_t t = 10; t < 100; t += 7)
        assert_close(lr_of(s, t), 0.01, 1e-15);
    sgd_sched_free(s);
}

static void test_warm_restarts(void **state)
{
    (void)state;
    sgd_sched *s = from_spec("cosine_warm_restarts:T_0=3,T_mult=2,eta_min=0.001", 0.1);
    /* Restarts at 0, 3, 3+6=9, 9+12=21, ...: base_lr there, the cosine of the period between. */
    int64_t start = 0, T = 3;
    for (int cycle = 0; cycle < 8; cycle++, start += T, T *= 2) {
        assert_close(lr_of(s, start), 0.1, 1e-15);
        for (int64_t k = 1; k < T; k += (T / 5 + 1))
            assert_close(lr_of(s, start + k), 0.001 + 0.099 * (1 + cos(M_PI * (double)k / (double)T)) / 2, 1e-13);
    }
    double v = lr_of(s, INT64_MAX);
    assert_true(v >= 0.001 && v <= 0.1);
    sgd_sched_free(s);
    /* Periods that outgrow int64 before the step is reached. */
    s = from_spec("cosine_warm_restarts:T_0=1000000000000,T_mult=1000", 0.1);
    v = lr_of(s, INT64_MAX);
    assert_true(v >= 0 && v <= 0.1);
    assert_close(lr_of(s, 1000000000000), 0.1, 1e-15);
    sgd_sched_free(s);
    s = from_spec("cosine_warm_restarts:T_0=7", 0.1);
    for (int64_t t = 0; t < 30; t++)
        assert_true(lr_of(s, t) == lr_of(s, t % 7));
    sgd_sched_free(s);
}

static void test_onecycle_hold_and_momentum(void **state)
{
    (void)state;
    sgd_sched_onecycle_options o;
    sgd_sched_onecycle_options_init(&o);
    o.max_lr = 1.0;
    o.total_steps = 100;
    sgd_sched *s;
    sgdt_assert_status(sgd_sched_onecycle_new(&s, &o, NULL), SGD_OK);
    assert_true(sgd_sched_cycles_momentum(s));
    assert_close(lr_of(s, 0), 1.0 / 25, 1e-15);
    double final = 1.0 / 25 / 1e4;
    assert_close(lr_of(s, 99), final, 1e-15);
    /* torch raises past total_steps; libsgdlab holds the final value. */
    for (int64_t t = 100; t < 1000; t += 37)
        assert_true(lr_of(s, t) == lr_of(s, 99));
    assert_true(lr_of(s, INT64_MAX) == lr_of(s, 99));
    /* The peak at pct_start * total_steps - 1 = 29, momentum inverse to lr. */
    assert_close(lr_of(s, 29), 1.0, 1e-15);
    double m;
    int32_t set;
    sgdt_assert_status(sgd_sched_momentum(s, 0, &m, &set), SGD_OK);
    assert_int_equal(set, 1);
    assert_close(m, 0.95, 1e-15);
    sgdt_assert_status(sgd_sched_momentum(s, 29, &m, &set), SGD_OK);
    assert_close(m, 0.85, 1e-15);
    sgdt_assert_status(sgd_sched_momentum(s, 500, &m, &set), SGD_OK);
    assert_close(m, 0.95, 1e-15);
    sgd_sched_free(s);

    /* With cycle_momentum off, momentum is left alone. */
    o.cycle_momentum = 0;
    sgdt_assert_status(sgd_sched_onecycle_new(&s, &o, NULL), SGD_OK);
    assert_false(sgd_sched_cycles_momentum(s));
    m = 5;
    set = 5;
    sgdt_assert_status(sgd_sched_momentum(s, 3, &m, &set), SGD_OK);
    assert_int_equal(set, 0);
    assert_true(m == 0);
    sgd_sched_free(s);

    /* Few steps: phases of no length (torch divides by zero) are defined. */
    for (int64_t total = 1; total <= 4; total++) {
        for (int three = 0; three <= 1; three++) {
            char spec[128];
            snprintf(spec, sizeof spec, "onecycle:max_lr=0.5,total_steps=%d,pct_start=0.25,three_phase=%d",
                     (int)total, three);
            s = from_spec(spec, 0.1);
            for (int64_t t = 0; t < total + 3; t++) {
                double v = lr_of(s, t);
                assert_true(v >= 0.5 / 25 / 1e4 * (1 - 1e-12) && v <= 0.5 * (1 + 1e-12));
            }
            assert_close(lr_of(s, total - 1), 0.5 / 25 / 1e4, 1e-12);
            sgd_sched_free(s);
        }
    }
    /* epochs * steps_per_epoch. */
    s = from_spec("onecycle:max_lr=0.5,epochs=4,steps_per_epoch=25", 0.1);
    sgd_sched *t = from_spec("onecycle:max_lr=0.5,total_steps=100", 0.1);
    for (int64_t k = 0; k < 120; k++)
        assert_true(lr_of(s, k) == lr_of(t, k));
    sgd_sched_free(s);
    sgd_sched_free(t);
}

static void test_cyclic(void **state)
{
    (void)state;
    sgd_sched_cyclic_options o;
    sgd_sched_cyclic_options_init(&o);
    o.base_lr = 0.1;
    o.max_lr = 0.5;
    o.step_size_up = 4;
    o.step_size_down = 2;
    sgd_sched *s;
    sgdt_assert_status(sgd_sched_cyclic_new(&s, &o, NULL), SGD_OK);
    const double want[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.3, 0.1, 0.2};
    for (int64_t t = 0; t < 8; t++)
        assert_close(lr_of(s, t), want[t], 1e-14);
    for (int64_t t = 0; t < 6; t++)
        assert_close(lr_of(s, t + 6 * 1000), lr_of(s, t), 1e-12); /* period 6, forever */
    double m;
    int32_t set;
    sgdt_assert_status(sgd_sched_momentum(s, 4, &m, &set), SGD_OK);
    assert_true(set == 1);
    assert_close(m, 0.8, 1e-15); /* base_momentum at the lr peak */
    sgdt_assert_status(sgd_sched_momentum(s, 6, &m, &set), SGD_OK);
    assert_close(m, 0.9, 1e-15);
    sgd_sched_free(s);

    /* triangular2 halves the amplitude each cycle; exp_range scales by gamma^t. */
    s = from_spec("cyclic:base_lr=0,max_lr=1,step_size_up=2,mode=triangular2", 0.1);
    assert_close(lr_of(s, 2), 1.0, 1e-15);
    assert_close(lr_of(s, 6), 0.5, 1e-15);
    assert_close(lr_of(s, 10), 0.25, 1e-15);
    sgd_sched_free(s);
    s = from_spec("cyclic:base_lr=0,max_lr=1,step_size_up=2,mode=exp_range,gamma=0.9", 0.1);
    assert_close(lr_of(s, 6), pow(0.9, 6), 1e-14);
    sgd_sched_free(s);
    /* One milestone may be written without brackets. */
    sgd_sched *m1 = from_spec("multistep:milestones=30,gamma=0.5", 1.0), *m2 = from_spec("multistep:milestones=[30],gamma=0.5", 1.0);
    for (int64_t t = 28; t < 33; t++)
        assert_true(lr_of(m1, t) == lr_of(m2, t));
    assert_close(lr_of(m1, 30), 0.5, 1e-15);
    sgd_sched_free(m1);
    sgd_sched_free(m2);
    /* The spec's base_lr defaults to the optimizer's. */
    s = from_spec("cyclic:max_lr=1,step_size_up=2", 0.25);
    assert_close(lr_of(s, 0), 0.25, 1e-15);
    assert_close(lr_of(s, 2), 1.0, 1e-15);
    sgd_sched_free(s);
}

static void test_defaults(void **state)
{
    (void)state;
    /* The options' defaults are torch 1.13's. */
    sgd_sched_constant_options c;
    sgd_sched_constant_options_init(&c);
    assert_true(c.factor == 1.0 / 3 && c.total_iters == 5 && c.struct_size == sizeof c);
    sgd_sched_linear_options l;
    sgd_sched_linear_options_init(&l);
    assert_true(l.start_factor == 1.0 / 3 && l.end_factor == 1.0 && l.total_iters == 5);
    sgd_sched_onecycle_options o;
    sgd_sched_onecycle_options_init(&o);
    assert_true(isnan(o.max_lr) && o.pct_start == 0.3 && o.anneal_strategy == SGD_ANNEAL_COS &&
                o.cycle_momentum == 1 && o.base_momentum == 0.85 && o.max_momentum == 0.95 && o.div_factor == 25 &&
                o.final_div_factor == 1e4 && o.three_phase == 0);
    sgd_sched_cyclic_options y;
    sgd_sched_cyclic_options_init(&y);
    assert_true(y.step_size_up == 2000 && y.step_size_down == 0 && y.mode == SGD_CYCLIC_TRIANGULAR &&
                y.gamma == 1 && y.cycle_momentum == 1 && y.base_momentum == 0.8 && y.max_momentum == 0.9);
    sgd_sched_plateau_options p;
    sgd_sched_plateau_options_init(&p);
    assert_true(p.mode == SGD_PLATEAU_MIN && p.factor == 0.1 && p.patience == 10 && p.threshold == 1e-4 &&
                p.threshold_mode == SGD_THRESHOLD_REL && p.cooldown == 0 && p.min_lr == 0 && p.eps == 1e-8);
    sgd_sched_warmup_options w;
    sgd_sched_warmup_options_init(&w);
    assert_true(w.start_factor == 1.0 / 3 && w.total_iters == 5);
    /* NULL is ignored. */
    sgd_sched_constant_options_init(NULL);
    sgd_sched_plateau_options_init(NULL);
    sgd_sched_vtable_init(NULL);

    /* NULL options mean the defaults, where no option is required. */
    sgd_sched *a, *b = from_spec("constant", 0.3);
    sgdt_assert_status(sgd_sched_constant_new(&a, 0.3, NULL, NULL), SGD_OK);
    for (int64_t t = 0; t < 8; t++)
        assert_true(lr_of(a, t) == lr_of(b, t));
    assert_close(lr_of(a, 0), 0.1, 1e-15);
    sgd_sched_free(a);
    sgd_sched_free(b);
    sgdt_assert_status(sgd_sched_polynomial_new(&a, 0.3, NULL, NULL), SGD_OK);
    sgd_sched_free(a);
    sgdt_assert_status(sgd_sched_linear_new(&a, 0.3, NULL, NULL), SGD_OK);
    sgd_sched_free(a);
}

/* Every kind built from a spec and from typed options agrees at every step. */
static void test_spec_matches_typed(void **state)
{
    (void)state;
    const double B = 0.07;
    sgd_sched *typed[10], *spec[10];
    const char *specs[10] = {
        "constant:factor=0.2,total_iters=3",
        "step:step_size=4,gamma=0.3",
        "multistep:milestones=[3, 7 ,20],gamma=0.5",
        "exponential:gamma=0.9",
        "polynomial:total_iters=9,power=1.5",
        "cosine:T_max=11,eta_min=0.001",
        "cosine_warm_restarts:T_0=4,T_mult=3,eta_min=0.002",
        "linear:start_factor=0.05,end_factor=0.9,total_iters=6",
        " onecycle : max_lr = 0.3 , total_steps = 50 , pct_start = 0.2 , anneal_strategy = linear , three_phase = 1 ",
        "cyclic:base_lr=0.01,max_lr=0.2,step_size_up=3,step_size_down=5,mode=exp_range,gamma=0.97",
    };
    sgd_sched_constant_options c;
    sgd_sched_constant_options_init(&c);
    c.factor = 0.2, c.total_iters = 3;
    sgdt_assert_status(sgd_sched_constant_new(&typed[0], B, &c, NULL), SGD_OK);
    sgd_sched_step_options st;
    sgd_sched_step_options_init(&st);
    st.step_size = 4, st.gamma = 0.3;
    sgdt_assert_status(sgd_sched_step_new(&typed[1], B, &st, NULL), SGD_OK);
    const int64_t ms[] = {3, 7, 20};
    sgd_sched_multistep_options mo;
    sgd_sched_multistep_options_init(&mo);
    mo.milestones = ms, mo.n_milestones = 3, mo.gamma = 0.5;
    sgdt_assert_status(sgd_sched_multistep_new(&typed[2], B, &mo, NULL), SGD_OK);
    sgd_sched_exponential_options eo;
    sgd_sched_exponential_options_init(&eo);
    eo.gamma = 0.9;
    sgdt_assert_status(sgd_sched_exponential_new(&typed[3], B, &eo, NULL), SGD_OK);
    sgd_sched_polynomial_options po;
    sgd_sched_polynomial_options_init(&po);
    po.total_iters = 9, po.power = 1.5;
    sgdt_assert_status(sgd_sched_polynomial_new(&typed[4], B, &po, NULL), SGD_OK);
    sgd_sched_cosine_options cs;
    sgd_sched_cosine_options_init(&cs);
    cs.T_max = 11, cs.eta_min = 0.001;
    sgdt_assert_status(sgd_sched_cosine_new(&typed[5], B, &cs, NULL), SGD_OK);
    sgd_sched_cosine_warm_restarts_options wr;
    sgd_sched_cosine_warm_restarts_options_init(&wr);
    wr.T_0 = 4, wr.T_mult = 3, wr.eta_min = 0.002;
    sgdt_assert_status(sgd_sched_cosine_warm_restarts_new(&typed[6], B, &wr, NULL), SGD_OK);
    sgd_sched_linear_options lo;
    sgd_sched_linear_options_init(&lo);
    lo.start_factor = 0.05, lo.end_factor = 0.9, lo.total_iters = 6;
    sgdt_assert_status(sgd_sched_linear_new(&typed[7], B, &lo, NULL), SGD_OK);
    sgd_sched_onecycle_options oc;
    sgd_sched_onecycle_options_init(&oc);
    oc.max_lr = 0.3, oc.total_steps = 50, oc.pct_start = 0.2, oc.anneal_strategy = SGD_ANNEAL_LINEAR,
    oc.three_phase = 1;
    sgdt_assert_status(sgd_sched_onecycle_new(&typed[8], &oc, NULL), SGD_OK);
    sgd_sched_cyclic_options cy;
    sgd_sched_cyclic_options_init(&cy);
    cy.base_lr = 0.01, cy.max_lr = 0.2, cy.step_size_up = 3, cy.step_size_down = 5, cy.mode = SGD_CYCLIC_EXP_RANGE,
    cy.gamma = 0.97;
    sgdt_assert_status(sgd_sched_cyclic_new(&typed[9], &cy, NULL), SGD_OK);
    for (int k = 0; k < 10; k++) {
        spec[k] = from_spec(specs[k], B);
        assert_string_equal(sgd_sched_name(spec[k]), sgd_sched_name(typed[k]));
        for (int64_t t = 0; t < 120; t++)
            if (lr_of(spec[k], t) != lr_of(typed[k], t))
                fail_msg("%s at step %d: %.17g vs %.17g", specs[k], (int)t, lr_of(spec[k], t), lr_of(typed[k], t));
        sgd_sched_free(spec[k]);
        sgd_sched_free(typed[k]);
    }
}

/* ------------------------------------------------------------ spec errors */

static void test_spec_errors(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
        sgd_status want;
        const char *needle;
    } bad[] = {
        {"", SGD_EINVAL, "starts with a kind"},
        {"   ", SGD_EINVAL, "starts with a kind"},
        {":T_max=3", SGD_EINVAL, "starts with a kind"},
        {"cosinus:T_max=1", SGD_ENOTFOUND, "unknown schedule kind 'cosinus'"},
        {"cosine T_max=3", SGD_EINVAL, "expected ':' after the kind 'cosine'"},
        {"cosine", SGD_EINVAL, "T_max is required"},
        {"cosine:T_max=0", SGD_ERANGE, "T_max=0: must be > 0"},
        {"cosine:T_max=-5", SGD_ERANGE, "T_max=-5"},
        {"cosine:T_max=1e2", SGD_EINVAL, "T_max=1e2: not an integer"},
        {"cosine:T_max=abc", SGD_EINVAL, "T_max=abc"},
        {"cosine:T_max=3,eta_min=1e-5x", SGD_EINVAL, "eta_min=1e-5x: not a finite number"},
        {"cosine:T_max=3,eta_min=nan", SGD_EINVAL, "eta_min=nan"},
        {"cosine:T_max=3,eta_min=1e999", SGD_ERANGE, "eta_min=1e999"},
        {"cosine:T_max=3,eta_min=-0.1", SGD_ERANGE, "eta_min=-0.1: must be >= 0"},
        {"cosine:T_max=3,foo=1", SGD_ENOTFOUND, "unknown key 'foo'"},
        {"cosine:T_max", SGD_EINVAL, "'T_max' is not key=value"},
        {"cosine:T_max=", SGD_EINVAL, "T_max=: missing value"},
        {"cosine:=3", SGD_EINVAL, "the key must be a name"},
        {"cosine:T_max=3,T_max=4", SGD_EINVAL, "key 'T_max' given twice"},
        {"cosine:T_max=3,", SGD_EINVAL, "empty item"},
        {"cosine:,T_max=3", SGD_EINVAL, "empty item"},
        {"step:gamma=0.1", SGD_EINVAL, "step_size is required"},
        {"step:step_size=30,gamma=-0.1", SGD_ERANGE, "gamma=-0.1: must be >= 0"},
        {"multistep:gamma=0.1", SGD_EINVAL, "milestones is required"},
        {"multistep:milestones=[]", SGD_EINVAL, "milestones is required"},
        {"multistep:milestones=[30,10]", SGD_EINVAL, "milestones[1]=10 after 30: must be strictly increasing"},
        {"multistep:milestones=[10,10]", SGD_EINVAL, "milestones[1]=10"},
        {"multistep:milestones=[-1]", SGD_ERANGE, "milestones[0]=-1"},
        {"multistep:milestones=[1,x]", SGD_EINVAL, "'x' is not an integer"},
        {"multistep:milestones=[1,,2]", SGD_EINVAL, "'' is not an integer"},
        {"multistep:milestones=(1)", SGD_EINVAL, "expected a list"},
        {"exponential", SGD_EINVAL, "gamma is required"},
        {"exponential:gamma=-1", SGD_ERANGE, "gamma=-1"},
        {"polynomial:power=-1", SGD_ERANGE, "power=-1"},
        {"polynomial:total_iters=0", SGD_ERANGE, "total_iters=0"},
        {"constant:factor=2", SGD_ERANGE, "factor=2: must be in [0, 1]"},
        {"constant:total_iters=-1", SGD_ERANGE, "total_iters=-1"},
        {"linear:start_factor=1.5", SGD_ERANGE, "start_factor=1.5"},
        {"linear:end_factor=-0.5", SGD_ERANGE, "end_factor=-0.5"},
        {"linear:total_iters=0", SGD_ERANGE, "total_iters=0"},
        {"cosine_warm_restarts:T_mult=2", SGD_EINVAL, "T_0 is required"},
        {"cosine_warm_restarts:T_0=10,T_mult=0", SGD_ERANGE, "T_mult=0: must be >= 1"},
        {"onecycle:total_steps=10", SGD_EINVAL, "max_lr is required"},
        {"onecycle:max_lr=1", SGD_EINVAL, "total_steps is required"},
        {"onecycle:max_lr=1,total_steps=0", SGD_ERANGE, "total_steps=0"},
        {"onecycle:max_lr=1,total_steps=10,pct_start=1", SGD_ERANGE, "pct_start=1: must be in (0, 1)"},
        {"onecycle:max_lr=1,total_steps=10,pct_start=0", SGD_ERANGE, "pct_start=0: must be in (0, 1)"},
        {"onecycle:max_lr=1,total_steps=10,pct_start=1.5", SGD_ERANGE, "pct_start=1.5"},
        {"onecycle:max_lr=1,total_steps=10,epochs=2,steps_per_epoch=5", SGD_EINVAL, "one or the other"},
        {"onecycle:max_lr=1,epochs=2", SGD_ERANGE, "steps_per_epoch=0"},
        {"onecycle:max_lr=1,epochs=4611686018427387904,steps_per_epoch=4", SGD_EOVERFLOW, "overflows"},
        {"onecycle:max_lr=1,total_steps=10,anneal_strategy=cosine", SGD_EINVAL,
         "anneal_strategy=cosine: must be one of cos, linear"},
        {"onecycle:max_lr=1,total_steps=10,three_phase=2", SGD_EINVAL, "three_phase=2: not a boolean"},
        {"onecycle:max_lr=1,total_steps=10,div_factor=0", SGD_ERANGE, "div_factor=0: must be > 0"},
        {"onecycle:max_lr=1,total_steps=10,base_momentum=1", SGD_ERANGE, "base_momentum=1: must be in [0, 1)"},
        {"onecycle:max_lr=-1,total_steps=10", SGD_ERANGE, "max_lr=-1"},
        {"cyclic:base_lr=0.1", SGD_EINVAL, "max_lr is required"},
        {"cyclic:max_lr=1,mode=sawtooth", SGD_EINVAL, "mode=sawtooth: must be one of triangular, triangular2, exp_range"},
        {"cyclic:max_lr=1,mode=exp_range,gamma=2", SGD_ERANGE, "gamma=2"},
        {"cyclic:max_lr=1,gamma=0", SGD_ERANGE, "gamma=0: must be > 0"},
        {"cyclic:max_lr=1,step_size_up=0", SGD_ERANGE, "step_size_up=0"},
        {"cyclic:max_lr=1,step_size_down=0", SGD_ERANGE, "step_size_down=0"},
        {"cyclic:max_lr=1,scale_mode=cycle", SGD_ENOTFOUND, "unknown key 'scale_mode'"},
        {"plateau:mode=avg", SGD_EINVAL, "mode=avg: must be one of min, max"},
        {"plateau:factor=1", SGD_ERANGE, "factor=1: must be in [0, 1)"},
        {"plateau:factor=-0.5", SGD_ERANGE, "factor=-0.5"},
        {"plateau:patience=-1", SGD_ERANGE, "patience=-1"},
        {"plateau:threshold=1", SGD_ERANGE, "threshold=1: must be < 1 in rel mode"},
        {"plateau:threshold=-1,threshold_mode=abs", SGD_ERANGE, "threshold=-1"},
        {"plateau:threshold_mode=relative", SGD_EINVAL, "threshold_mode=relative: must be one of rel, abs"},
        {"plateau:cooldown=-2", SGD_ERANGE, "cooldown=-2"},
        {"plateau:min_lr=-1", SGD_ERANGE, "min_lr=-1"},
        {"plateau:eps=-1", SGD_ERANGE, "eps=-1"},
        {"plateau:verbose=1", SGD_ENOTFOUND, "unknown key 'verbose'"},
        {"plateau:over=cosine", SGD_EINVAL, "expected a schedule in parentheses"},
        {"plateau:over=(cosine:T_max=0)", SGD_ERANGE, "sgd_sched_new: plateau: over: cosine: T_max=0"},
        {"warmup:total_iters=5", SGD_EINVAL, "over is required"},
        {"warmup:total_iters=0,over=(cosine:T_max=3)", SGD_ERANGE, "total_iters=0"},
        {"warmup:start_factor=2,over=(cosine:T_max=3)", SGD_ERANGE, "start_factor=2"},
        {"warmup:over=(cosine:T_max=3", SGD_EINVAL, "unclosed '('"},
        {"warmup:over=cosine:T_max=3)", SGD_EINVAL, "unbalanced ')'"},
        {"warmup:over=(cosine:T_max=3],x=1", SGD_EINVAL, "unbalanced ']'"},
        {"warmup:over=(cosine:T_max=3)(linear)", SGD_EINVAL, "expected a schedule in parentheses"},
        {"warmup:over=(plateau:over=(cosine:T_max=3,bad=1))", SGD_ENOTFOUND,
         "sgd_sched_new: warmup: over: plateau: over: cosine: unknown key 'bad'"},
        {"sequential:milestones=[5]", SGD_EINVAL, "children is required"},
        {"sequential:children=(linear)", SGD_EINVAL, "expected a list of schedules"},
        {"sequential:children=[]", SGD_EINVAL, "at least one schedule"},
        {"sequential:milestones=[5],children=[(linear),(cosine:T_max=0)]", SGD_ERANGE,
         "sgd_sched_new: sequential: children[1]: cosine: T_max=0"},
        {"sequential:milestones=[5,6],children=[(linear),(cosine:T_max=3)]", SGD_EINVAL,
         "2 children need 1 milestones, got 2"},
        {"sequential:children=[(linear),(cosine:T_max=3)]", SGD_EINVAL, "2 children need 1 milestones, got 0"},
        {"sequential:milestones=[0],children=[(linear),(cosine:T_max=3)]", SGD_ERANGE, "milestones[0]=0: must be > 0"},
        {"sequential:milestones=[5,5],children=[(linear),(linear),(cosine:T_max=3)]", SGD_EINVAL,
         "must be strictly increasing"},
        {"sequential:milestones=[5],children=[linear,(cosine:T_max=3)]", SGD_EINVAL, "children[0]=linear"},
        {"sequential:milestones=[5],children=[(linear),,(cosine:T_max=3)]", SGD_EINVAL, "empty item"},
        {"cosine:T_max=3:4", SGD_EINVAL, "T_max=3:4"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sgd_sched *s = (sgd_sched *)&s; /* not NULL: must be cleared */
        sgd_error_clear();
        sgd_status st = sgd_sched_new(&s, bad[i].spec, 0.1, NULL);
        if (st != bad[i].want || strstr(sgd_error_last(), bad[i].needle) == NULL || s != NULL)
            fail_msg("spec \"%s\": got %s \"%s\", want %s containing \"%s\"", bad[i].spec, sgd_status_str(st),
                     sgd_error_last(), sgd_status_str(bad[i].want), bad[i].needle);
        if (strncmp(sgd_error_last(), "sgd_sched_new: ", 15) != 0)
            fail_msg("spec \"%s\": message \"%s\" does not start with the function", bad[i].spec, sgd_error_last());
    }

    /* Arguments. */
    sgd_sched *s;
    sgdt_assert_status(sgd_sched_new(NULL, "cosine:T_max=3", 0.1, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_sched_new(&s, NULL, 0.1, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("spec is NULL");
    sgdt_assert_status(sgd_sched_new(&s, "cosine:T_max=3", -0.1, NULL), SGD_ERANGE);
    sgdt_assert_error_contains("base_lr=-0.1: must be >= 0");
    sgdt_assert_status(sgd_sched_new(&s, "cosine:T_max=3", NAN, NULL), SGD_ENONFINITE);
    sgdt_assert_error_contains("base_lr=nan");
    sgdt_assert_status(sgd_sched_new(&s, "cosine:T_max=3", INFINITY, NULL), SGD_ENONFINITE);
    sgdt_alloc t;
    sgdt_alloc_init(&t);
    sgd_allocator half = t.base;
    half.free_fn = NULL;
    sgdt_assert_status(sgd_sched_new(&s, "cosine:T_max=3", 0.1, &half), SGD_EINVAL);
    sgdt_assert_error_contains("free_fn");

    /* Limits: length, depth, pairs, children. */
    size_t big = 70000;
    char *longspec = malloc(big + 1);
    assert_non_null(longspec);
    memset(longspec, ' ', big);
    memcpy(longspec, "cosine:T_max=3", 14);
    longspec[big] = '\0';
    sgdt_assert_status(sgd_sched_new(&s, longspec, 0.1, NULL), SGD_EOVERFLOW);
    sgdt_assert_error_contains("longer than");
    /* 40 nested warmups. */
    size_t o = 0;
    for (int k = 0; k < 40; k++)
        o += (size_t)sprintf(longspec + o, "warmup:over=(");
    o += (size_t)sprintf(longspec + o, "cosine:T_max=3");
    for (int k = 0; k < 40; k++)
        longspec[o++] = ')';
    longspec[o] = '\0';
    sgdt_assert_status(sgd_sched_new(&s, longspec, 0.1, NULL), SGD_EOVERFLOW);
    sgdt_assert_error_contains("nested more than 16 deep");
    /* 100 nested brackets inside one value. */
    o = (size_t)sprintf(longspec, "warmup:over=");
    for (int k = 0; k < 100; k++)
        longspec[o++] = '(';
    longspec[o] = '\0';
    sgdt_assert_status(sgd_sched_new(&s, longspec, 0.1, NULL), SGD_EOVERFLOW);
    sgdt_assert_error_contains("nests brackets");
    o = (size_t)sprintf(longspec, "cosine:T_max=3");
    for (int k = 0; k < 40; k++)
        o += (size_t)sprintf(longspec + o, ",k%d=1", k);
    sgdt_assert_status(sgd_sched_new(&s, longspec, 0.1, NULL), SGD_EOVERFLOW);
    o = (size_t)sprintf(longspec, "sequential:children=[");
    for (int k = 0; k < 1100; k++)
        o += (size_t)sprintf(longspec + o, "%s(linear)", k ? "," : "");
    sprintf(longspec + o, "]");
    sgdt_assert_status(sgd_sched_new(&s, longspec, 0.1, NULL), SGD_EOVERFLOW);
    sgdt_assert_error_contains("more than 1024 items");
    free(longspec);

    /* Deep but allowed nesting works. */
    s = from_spec("plateau:over=(warmup:over=(plateau:over=(sequential:milestones=[2],children=[(linear),"
                  "(warmup:total_iters=2,over=(cosine:T_max=5))])))",
                  0.1);
    assert_true(lr_of(s, 3) > 0);
    sgd_sched_free(s);
}

static void test_typed_errors(void **state)
{
    (void)state;
    sgd_sched *s = (sgd_sched *)&s;
    sgd_sched_cosine_options c;
    sgd_sched_cosine_options_init(&c);
    c.T_max = 10;
    sgdt_assert_status(sgd_sched_cosine_new(NULL, 0.1, &c, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("sgd_sched_cosine_new: out is NULL");
    sgdt_assert_status(sgd_sched_cosine_new(&s, 0.1, NULL, NULL), SGD_EINVAL);
    assert_null(s);
    sgdt_assert_error_contains("opts is NULL");
    sgdt_assert_status(sgd_sched_cosine_new(&s, -1, &c, NULL), SGD_ERANGE);
    sgdt_assert_error_contains("sgd_sched_cosine_new: base_lr=-1");
    /* struct_size: from an unknown (newer or broken) layout. */
    c.struct_size = sizeof c + 8;
    sgdt_assert_status(sgd_sched_cosine_new(&s, 0.1, &c, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("struct_size");
    c.struct_size = 4;
    sgdt_assert_status(sgd_sched_cosine_new(&s, 0.1, &c, NULL), SGD_EINVAL);
    c.struct_size = sizeof c;
    c.T_max = 0;
    sgdt_assert_status(sgd_sched_cosine_new(&s, 0.1, &c, NULL), SGD_ERANGE);
    sgdt_assert_error_contains("sgd_sched_cosine_new: T_max=0: must be > 0");

    sgd_sched_exponential_options e;
    sgd_sched_exponential_options_init(&e);
    sgdt_assert_status(sgd_sched_exponential_new(&s, 0.1, &e, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("gamma is required");
    e.gamma = INFINITY;
    sgdt_assert_status(sgd_sched_exponential_new(&s, 0.1, &e, NULL), SGD_ENONFINITE);

    sgd_sched_multistep_options m;
    sgd_sched_multistep_options_init(&m);
    sgdt_assert_status(sgd_sched_multistep_new(&s, 0.1, &m, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("milestones is required");
    int64_t many = 1;
    m.milestones = &many;
    m.n_milestones = 100000;
    sgdt_assert_status(sgd_sched_multistep_new(&s, 0.1, &m, NULL), SGD_EOVERFLOW);

    sgd_sched_onecycle_options oc;
    sgd_sched_onecycle_options_init(&oc);
    oc.max_lr = 1;
    oc.total_steps = 10;
    oc.anneal_strategy = 7;
    sgdt_assert_status(sgd_sched_onecycle_new(&s, &oc, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("anneal_strategy=7");
    oc.anneal_strategy = SGD_ANNEAL_COS;
    oc.cycle_momentum = 3;
    sgdt_assert_status(sgd_sched_onecycle_new(&s, &oc, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("cycle_momentum=3: must be 0 or 1");

    sgd_sched_cyclic_options cy;
    sgd_sched_cyclic_options_init(&cy);
    cy.max_lr = 1;
    sgdt_assert_status(sgd_sched_cyclic_new(&s, &cy, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("base_lr is required");
    cy.base_lr = 0.1;
    cy.mode = 9;
    sgdt_assert_status(sgd_sched_cyclic_new(&s, &cy, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("mode=9");

    /* Composition arguments. */
    sgdt_assert_status(sgd_sched_warmup_new(&s, NULL, NULL, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("sgd_sched_warmup_new: inner is NULL");
    sgdt_assert_status(sgd_sched_plateau_new(&s, NULL, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_sched_sequential_new(&s, NULL, 2, NULL, NULL), SGD_EINVAL);
    sgd_sched *a = from_spec("linear", 0.1), *b = from_spec("cosine:T_max=4", 0.1);
    sgd_sched *kids[2] = {a, a};
    int64_t ms[1] = {3};
    sgdt_assert_status(sgd_sched_sequential_new(&s, kids, 2, ms, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("children[0] and children[1] are the same schedule");
    kids[1] = b;
    sgdt_assert_status(sgd_sched_sequential_new(&s, kids, 2, NULL, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("milestones is NULL");
    sgdt_assert_status(sgd_sched_sequential_new(&s, kids, 0, ms, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_sched_sequential_new(&s, kids, 5000, ms, NULL), SGD_EOVERFLOW);
    ms[0] = -3;
    sgdt_assert_status(sgd_sched_sequential_new(&s, kids, 2, ms, NULL), SGD_ERANGE);
    sgdt_assert_error_contains("milestones[0]=-3");
    ms[0] = 3;
    sgd_sched_plateau_options po;
    sgd_sched_plateau_options_init(&po);
    po.mode = 5;
    sgdt_assert_status(sgd_sched_plateau_new(&s, a, &po, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("mode=5");
    po.mode = SGD_PLATEAU_MIN;
    po.threshold_mode = 2;
    sgdt_assert_status(sgd_sched_plateau_new(&s, a, &po, NULL), SGD_EINVAL);
    po.threshold_mode = SGD_THRESHOLD_ABS;
    po.min_lr = NAN;
    sgdt_assert_status(sgd_sched_plateau_new(&s, a, &po, NULL), SGD_ENONFINITE);
    sgdt_assert_error_contains("min_lr=nan");
    /* After all those failures the children are still the caller's, and usable. */
    sgdt_assert_status(sgd_sched_sequential_new(&s, kids, 2, ms, NULL), SGD_OK);
    /* Now owned: freeing a child directly does nothing, adopting it again is refused. */
    sgd_sched_free(a);
    assert_true(lr_of(s, 0) > 0 && lr_of(s, 5) > 0);
    sgd_sched *w;
    sgdt_assert_status(sgd_sched_warmup_new(&w, b, NULL, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("already belongs to another schedule");
    sgd_sched_free(s); /* frees a and b */
    sgd_sched_free(NULL);
    assert_string_equal(sgd_sched_name(NULL), "");
}

/* ---------------------------------------------------------------- queries */

static void test_queries(void **state)
{
    (void)state;
    sgd_sched *s = from_spec("cosine:T_max=10", 0.1);
    double v = 7;
    sgdt_assert_status(sgd_sched_lr(s, -1, &v), SGD_ERANGE);
    sgdt_assert_error_contains("step=-1: must be >= 0");
    assert_true(v == 0);
    sgdt_assert_status(sgd_sched_lr(NULL, 0, &v), SGD_EINVAL);
    sgdt_assert_status(sgd_sched_lr(s, 0, NULL), SGD_EINVAL);
    double out[25];
    sgdt_assert_status(sgd_sched_lrs(s, 5, 25, out), SGD_OK);
    for (int k = 0; k < 25; k++)
        assert_true(out[k] == lr_of(s, 5 + k));
    sgdt_assert_status(sgd_sched_lrs(s, 5, 0, NULL), SGD_OK);
    sgdt_assert_status(sgd_sched_lrs(s, 5, 3, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_sched_lrs(s, -5, 3, out), SGD_ERANGE);
    sgdt_assert_status(sgd_sched_lrs(s, INT64_MAX - 1, 3, out), SGD_EOVERFLOW);
    sgdt_assert_status(sgd_sched_lrs(s, INT64_MAX - 1, 2, out), SGD_OK);
    sgdt_assert_status(sgd_sched_lrs(NULL, 0, 1, out), SGD_EINVAL);
    /* Asking changes nothing: the same answers in any order. */
    double first = lr_of(s, 3);
    for (int64_t t = 100; t >= 0; t--)
        (void)lr_of(s, t);
    assert_true(lr_of(s, 3) == first);

    /* Momentum and metrics on a schedule that has neither. */
    double m = 3;
    int32_t set = 3;
    sgdt_assert_status(sgd_sched_momentum(s, 0, &m, &set), SGD_OK);
    assert_true(m == 0 && set == 0);
    sgdt_assert_status(sgd_sched_momentum(s, -1, &m, &set), SGD_ERANGE);
    sgdt_assert_status(sgd_sched_momentum(s, 0, NULL, &set), SGD_EINVAL);
    sgdt_assert_status(sgd_sched_momentum(s, 0, &m, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_sched_momentum(NULL, 0, &m, &set), SGD_EINVAL);
    assert_false(sgd_sched_watches_metric(s));
    assert_false(sgd_sched_watches_metric(NULL));
    assert_false(sgd_sched_cycles_momentum(NULL));
    sgdt_assert_status(sgd_sched_observe(s, 0, 1.0), SGD_OK);
    sgdt_assert_status(sgd_sched_observe(s, 0, NAN), SGD_ENONFINITE);
    sgdt_assert_error_contains("metric=nan");
    sgdt_assert_status(sgd_sched_observe(s, -2, 1.0), SGD_ERANGE);
    sgdt_assert_status(sgd_sched_observe(NULL, 0, 1.0), SGD_EINVAL);
    assert_int_equal(sgd_sched_state_size(s), 0);
    assert_int_equal(sgd_sched_state_size(NULL), 0);
    sgdt_assert_status(sgd_sched_state_export(s, NULL, 0), SGD_OK);
    sgdt_assert_status(sgd_sched_state_import(s, NULL, 0), SGD_OK);
    sgdt_assert_status(sgd_sched_state_export(s, out, 1), SGD_ESHAPE);
    sgdt_assert_status(sgd_sched_state_import(s, out, 1), SGD_ESHAPE);
    sgdt_assert_status(sgd_sched_state_export(NULL, out, 0), SGD_EINVAL);
    sgdt_assert_status(sgd_sched_state_import(NULL, out, 0), SGD_EINVAL);
    sgd_sched_free(s);

    /* An lr that overflows is reported, never handed out. */
    s = from_spec("exponential:gamma=2", 1.0);
    assert_close(lr_of(s, 10), 1024, 1e-15);
    sgdt_assert_status(sgd_sched_lr(s, 2000, &v), SGD_ERANGE);
    sgdt_assert_error_contains("gave lr=inf at step 2000");
    assert_true(v == 0);
    sgdt_assert_status(sgd_sched_lrs(s, 1020, 10, out), SGD_ERANGE);
    sgd_sched_free(s);
}

/* ------------------------------------------------------------ composition */

static void test_warmup_and_sequence(void **state)
{
    (void)state;
    /* warmup over cosine: the cosine counts from step 0, scaled by the ramp. */
    sgd_sched *w = from_spec("warmup:start_factor=0.1,total_iters=4,over=(cosine:T_max=20,eta_min=0.001)", 0.2);
    sgd_sched *c = from_spec("cosine:T_max=20,eta_min=0.001", 0.2);
    for (int64_t t = 0; t < 30; t++) {
        double f = t < 4 ? 0.1 + 0.9 * (double)t / 4 : 1.0;
        assert_close(lr_of(w, t), lr_of(c, t) * f, 1e-15);
    }
    assert_string_equal(sgd_sched_name(w), "warmup");
    sgd_sched_free(w);
    sgd_sched_free(c);

    /* A sequence: each child counts from 0 at its milestone, and its own end behaviour follows. */
    sgd_sched *s = from_spec("sequential:milestones=[3,10],children=[(linear:start_factor=0.5,total_iters=3),"
                             "(polynomial:total_iters=4,power=1),(onecycle:max_lr=1,total_steps=6)]",
                             0.1);
    sgd_sched *l = from_spec("linear:start_factor=0.5,total_iters=3", 0.1);
    sgd_sched *p = from_spec("polynomial:total_iters=4,power=1", 0.1);
    sgd_sched *o = from_spec("onecycle:max_lr=1,total_steps=6", 0.1);
    for (int64_t t = 0; t < 3; t++)
        assert_true(lr_of(s, t) == lr_of(l, t));
    for (int64_t t = 3; t < 10; t++)
        assert_true(lr_of(s, t) == lr_of(p, t - 3)); /* 0 from step 7: polynomial holds its end */
    for (int64_t t = 10; t < 30; t++)
        assert_true(lr_of(s, t) == lr_of(o, t - 10)); /* onecycle holds its final lr */
    /* Momentum: set only where the child in force cycles it. */
    assert_true(sgd_sched_cycles_momentum(s));
    double m, mo;
    int32_t set;
    sgdt_assert_status(sgd_sched_momentum(s, 2, &m, &set), SGD_OK);
    assert_int_equal(set, 0);
    for (int64_t t = 10; t < 20; t++) {
        sgdt_assert_status(sgd_sched_momentum(s, t, &m, &set), SGD_OK);
        assert_int_equal(set, 1);
        sgdt_assert_status(sgd_sched_momentum(o, t - 10, &mo, &set), SGD_OK);
        assert_true(m == mo);
    }
    sgd_sched_free(s);
    sgd_sched_free(l);
    sgd_sched_free(p);
    sgd_sched_free(o);

    /* A single child needs no milestones; warmup and plateau forward momentum. */
    s = from_spec("sequential:children=[(cosine:T_max=5)]", 0.1);
    assert_close(lr_of(s, 5), 0.0, 1e-15);
    sgd_sched_free(s);
    s = from_spec("plateau:over=(warmup:over=(cyclic:max_lr=1,step_size_up=2))", 0.1);
    assert_true(sgd_sched_cycles_momentum(s));
    sgdt_assert_status(sgd_sched_momentum(s, 2, &m, &set), SGD_OK);
    assert_true(set == 1 && fabs(m - 0.8) < 1e-15);
    sgd_sched_free(s);
}

/* The plateau of torch, step by step, against a hand-run of its rules. */
static void test_plateau_rules(void **state)
{
    (void)state;
    /* patience 2, cooldown 1, abs threshold 0.05, factor 0.5, min_lr 0.02, base 0.1. */
    sgd_sched *s = from_spec("plateau:factor=0.5,patience=2,cooldown=1,threshold=0.05,threshold_mode=abs,min_lr=0.02",
                             0.1);
    assert_true(sgd_sched_watches_metric(s));
    assert_int_equal(sgd_sched_state_size(s), 5);
    const double metric[] = {1.0, 0.9, 0.88, 0.87, 0.86, 0.7, 0.69, 0.68, 0.67, 0.66, 0.66, 0.655, 0.651};
    /*
     * best 1.0 (t0), 0.9 (t1, better by > 0.05); 0.88, 0.87 bad (1, 2); 0.86 bad (3 > 2): cut to 0.05 from t5,
     * cooldown 1; 0.7 better (best 0.7), cooldown absorbs; 0.69, 0.68 bad (1, 2), 0.67 bad (3): cut to 0.025 from t9;
     * 0.66 cooldown; 0.66, 0.655, 0.651 bad (none below 0.7 - 0.05), the third: cut to max(0.0125, 0.02) = 0.02
     * from t13.
     */
    const double want[] = {0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025, 0.02};
    for (int64_t t = 0; t < 13; t++) {
        assert_close(lr_of(s, t), want[t], 1e-15);
        sgdt_assert_status(sgd_sched_observe(s, t, metric[t]), SGD_OK);
    }
    assert_close(lr_of(s, 13), want[13], 1e-15);
    /* Floored at min_lr: further cuts do nothing. */
    for (int64_t t = 13; t < 40; t++)
        sgdt_assert_status(sgd_sched_observe(s, t, 5.0), SGD_OK);
    assert_close(lr_of(s, 40), 0.02, 1e-15);
    /* A NaN metric is refused and changes nothing. */
    double st1[5], st2[5];
    sgdt_assert_status(sgd_sched_state_export(s, st1, 5), SGD_OK);
    sgdt_assert_status(sgd_sched_observe(s, 41, NAN), SGD_ENONFINITE);
    sgdt_assert_status(sgd_sched_observe(s, 41, -INFINITY), SGD_ENONFINITE);
    sgdt_assert_status(sgd_sched_state_export(s, st2, 5), SGD_OK);
    assert_memory_equal(st1, st2, sizeof st1);
    sgd_sched_free(s);

    /* mode max, rel threshold: improvement means rising by more than 10%. */
    s = from_spec("plateau:mode=max,factor=0.1,patience=0,threshold=0.1", 1.0);
    sgdt_assert_status(sgd_sched_observe(s, 0, 0.5), SGD_OK);  /* best 0.5 */
    sgdt_assert_status(sgd_sched_observe(s, 1, 0.56), SGD_OK); /* > 0.55: best 0.56 */
    assert_close(lr_of(s, 2), 1.0, 1e-15);
    sgdt_assert_status(sgd_sched_observe(s, 2, 0.6), SGD_OK); /* not > 0.616: cut */
    assert_close(lr_of(s, 3), 0.1, 1e-15);
    sgd_sched_free(s);

    /* eps: a cut smaller than eps is not applied (the counters still reset). */
    s = from_spec("plateau:factor=0.5,patience=0,eps=0.01", 0.015);
    sgdt_assert_status(sgd_sched_observe(s, 0, 1.0), SGD_OK);
    sgdt_assert_status(sgd_sched_observe(s, 1, 1.0), SGD_OK);
    assert_close(lr_of(s, 2), 0.015, 1e-15); /* 0.015 - 0.0075 <= 0.01 */
    sgd_sched_free(s);
}

/* Plateau cuts on top of warmup then cosine: what torch cannot compose. */
static void test_plateau_over_schedule(void **state)
{
    (void)state;
    const char *inner = "sequential:milestones=[5],children=[(linear:start_factor=0.01,total_iters=5),"
                        "(cosine:T_max=50,eta_min=0)]";
    char spec[512];
    snprintf(spec, sizeof spec, "plateau:factor=0.5,patience=1,min_lr=0.004,over=(%s)", inner);
    sgd_sched *p = from_spec(spec, 0.1), *q = from_spec(inner, 0.1);
    assert_string_equal(sgd_sched_name(p), "plateau");
    for (int64_t t = 0; t < 60; t++)
        assert_true(lr_of(p, t) == lr_of(q, t)); /* no cut yet: exactly the inner schedule */
    /* Two bad metrics after step 7 cut the lr in half from step 9 on, across the whole cosine. */
    sgdt_assert_status(sgd_sched_observe(p, 6, 1.0), SGD_OK);
    sgdt_assert_status(sgd_sched_observe(p, 7, 1.0), SGD_OK);
    sgdt_assert_status(sgd_sched_observe(p, 8, 1.0), SGD_OK);
    for (int64_t t = 9; t < 100; t++) {
        double x = lr_of(q, t), want = fmax(x * 0.5, fmin(x, 0.004));
        assert_close(lr_of(p, t), want, 1e-15);
    }
    /* The floor never lifts the lr above the inner schedule (cosine trough at step 55). */
    assert_true(lr_of(p, 55) == 0);
    assert_close(lr_of(p, 54), fmin(lr_of(q, 54), 0.004), 1e-15);
    sgd_sched_free(p);
    sgd_sched_free(q);

    /* A plateau inside a sequence hears the metrics of its own steps only. */
    sgd_sched *s = from_spec("sequential:milestones=[3],children=[(plateau:patience=0,factor=0.5),(constant:factor=1,"
                             "total_iters=0)]",
                             0.1);
    assert_true(sgd_sched_watches_metric(s));
    assert_int_equal(sgd_sched_state_size(s), 5);
    sgdt_assert_status(sgd_sched_observe(s, 0, 1.0), SGD_OK);
    sgdt_assert_status(sgd_sched_observe(s, 1, 1.0), SGD_OK); /* cut */
    assert_close(lr_of(s, 2), 0.05, 1e-15);
    sgdt_assert_status(sgd_sched_observe(s, 3, 1.0), SGD_OK); /* to the constant: ignored */
    sgdt_assert_status(sgd_sched_observe(s, 4, 1.0), SGD_OK);
    assert_close(lr_of(s, 2), 0.05, 1e-15);
    assert_close(lr_of(s, 5), 0.1, 1e-15);
    sgd_sched_free(s);
}

/* ------------------------------------------------------------------ state */

static void run_metrics(sgd_sched *s, int64_t from, int64_t to, double *lrs)
{
    for (int64_t t = from; t < to; t++) {
        lrs[t] = lr_of(s, t);
        double m = 1.0 / (1 + 0.05 * (double)t) + 0.02 * sin(1.7 * (double)t) + (t > 30 ? 0.3 : 0);
        sgdt_assert_status(sgd_sched_observe(s, t, m), SGD_OK);
    }
}

static void test_state_roundtrip(void **state)
{
    (void)state;
    const char *spec = "plateau:factor=0.5,patience=1,cooldown=4,over=(warmup:total_iters=3,over=(sequential:"
                       "milestones=[10],children=[(plateau:mode=min,patience=2,factor=0.7,cooldown=2),"
                       "(cosine:T_max=40)]))";
    sgd_sched *a = from_spec(spec, 0.1), *b = from_spec(spec, 0.1), *fresh = from_spec(spec, 0.1);
    size_t n = sgd_sched_state_size(a);
    assert_int_equal(n, 10); /* the outer plateau's 5, then the inner one's 5 */
    double lra[80], lrb[80], lrf[80], st[10], before[10], after[10];
    /* Run until the outer plateau is in the middle of a cooldown, and save there. */
    int64_t cut = -1;
    for (int64_t t = 0; t < 60 && cut < 0; t++) {
        run_metrics(a, t, t + 1, lra);
        sgdt_assert_status(sgd_sched_state_export(a, st, n), SGD_OK);
        if (st[3] > 0 && st[3] < 4)
            cut = t + 1;
    }
    assert_true(cut > 0);
    assert_true(st[0] == 1347174740.0 && st[4] < 1 && st[5] == 1347174740.0);
    /* Restore into b: a and b then continue exactly alike; a fresh schedule does not. */
    sgdt_assert_status(sgd_sched_state_import(b, st, n), SGD_OK);
    run_metrics(a, cut, 80, lra);
    run_metrics(b, cut, 80, lrb);
    run_metrics(fresh, cut, 80, lrf);
    assert_memory_equal(lra + cut, lrb + cut, (size_t)(80 - cut) * sizeof(double));
    int differs = 0;
    for (int64_t t = cut; t < 80; t++)
        differs |= lra[t] != lrf[t];
    assert_true(differs);
    sgdt_assert_status(sgd_sched_state_export(a, before, n), SGD_OK);
    sgdt_assert_status(sgd_sched_state_export(b, after, n), SGD_OK);
    assert_memory_equal(before, after, sizeof before);

    /* Refused states leave the schedule as it was. */
    static const struct {
        size_t at;
        double v;
        const char *needle;
    } bad[] = {
        {0, 1.0, "state tag"},
        {1, NAN, "best=nan"},
        {1, -INFINITY, "best=-inf"},
        {2, 0.5, "num_bad_epochs=0.5"},
        {2, 2, "num_bad_epochs=2"}, /* patience 1 */
        {2, -1, "num_bad_epochs=-1"},
        {3, 5, "cooldown_counter=5"},
        {3, NAN, "cooldown_counter=nan"},
        {4, 1.5, "scale=1.5"},
        {4, NAN, "scale=nan"},
        {5, 7.0, "state tag"},  /* the inner plateau */
        {7, 3, "num_bad_epochs=3"}, /* inner patience 2 */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        double x[10];
        memcpy(x, before, sizeof x);
        x[bad[k].at] = bad[k].v;
        if (bad[k].at == 3 || bad[k].at == 2)
            x[4] = 0.5; /* valid otherwise */
        sgd_status got = sgd_sched_state_import(b, x, n);
        if (got != SGD_EFORMAT || strstr(sgd_error_last(), bad[k].needle) == NULL)
            fail_msg("state[%zu]=%g: got %s \"%s\"", bad[k].at, bad[k].v, sgd_status_str(got), sgd_error_last());
        sgdt_assert_status(sgd_sched_state_export(b, after, n), SGD_OK);
        assert_memory_equal(before, after, sizeof before);
    }
    sgdt_assert_status(sgd_sched_state_import(b, before, n - 1), SGD_ESHAPE);
    sgdt_assert_error_contains("n=9 but its state is 10 doubles");
    sgdt_assert_status(sgd_sched_state_export(b, after, n + 1), SGD_ESHAPE);
    sgdt_assert_status(sgd_sched_state_import(b, NULL, n), SGD_EINVAL);
    sgdt_assert_status(sgd_sched_state_export(b, NULL, n), SGD_EINVAL);
    /* +inf is a plateau's best before any metric: importing a fresh state resets. */
    double zero[10];
    sgd_sched *z = from_spec(spec, 0.1);
    sgdt_assert_status(sgd_sched_state_export(z, zero, n), SGD_OK);
    assert_true(isinf(zero[1]) && zero[1] > 0 && zero[4] == 1);
    sgdt_assert_status(sgd_sched_state_import(b, zero, n), SGD_OK);
    assert_true(lr_of(b, 20) == lr_of(z, 20));
    sgd_sched_free(z);
    sgd_sched_free(a);
    sgd_sched_free(b);
    sgd_sched_free(fresh);
}

/* ---------------------------------------------------------- host schedules */

/* An inverse-square-root schedule with warmup ("Noam"), a metric counter as state, and momentum on even steps. */
typedef struct noam {
    double d_model, warmup;
    double observed;
    int fail_at_step; /* lr fails (-1) at this step, NaN at +1, negative at +2, writes nothing at +3 */
    int32_t bad_set;  /* momentum reports this as *set */
    int destroyed;
} noam;

static sgd_status noam_lr(int64_t step, double *lr, void *user)
{
    noam *n = user;
    if (n->fail_at_step >= 0) {
        if (step == n->fail_at_step)
            return SGD_EINVAL;
        if (step == n->fail_at_step + 1) {
            *lr = NAN;
            return SGD_OK;
        }
        if (step == n->fail_at_step + 2) {
            *lr = -1e-3;
            return SGD_OK;
        }
        if (step == n->fail_at_step + 3)
            return SGD_OK;
    }
    double s = (double)step + 1;
    *lr = pow(n->d_model, -0.5) * fmin(pow(s, -0.5), s * pow(n->warmup, -1.5));
    return SGD_OK;
}

static sgd_status noam_momentum(int64_t step, double *m, int32_t *set, void *user)
{
    noam *n = user;
    *set = n->bad_set ? n->bad_set : (step % 2 == 0);
    *m = 0.9;
    return SGD_OK;
}

static sgd_status noam_observe(int64_t step, double metric, void *user)
{
    (void)step;
    (void)metric;
    ((noam *)user)->observed += 1;
    return SGD_OK;
}

static sgd_status noam_export(double *state, size_t n, void *user)
{
    assert_int_equal(n, 1);
    state[0] = ((noam *)user)->observed;
    return SGD_OK;
}

static sgd_status noam_import(const double *state, size_t n, void *user)
{
    assert_int_equal(n, 1);
    if (!(state[0] >= 0) || state[0] != floor(state[0]))
        return SGD_EFORMAT;
    ((noam *)user)->observed = state[0];
    return SGD_OK;
}

static void noam_destroy(void *user)
{
    ((noam *)user)->destroyed++;
}

static sgd_sched_vtable noam_vtable(noam *n)
{
    sgd_sched_vtable vt;
    sgd_sched_vtable_init(&vt);
    vt.name = "noam";
    vt.lr = noam_lr;
    vt.momentum = noam_momentum;
    vt.observe = noam_observe;
    vt.state_size = 1;
    vt.state_export = noam_export;
    vt.state_import = noam_import;
    vt.destroy = noam_destroy;
    vt.user = n;
    return vt;
}

static double noam_ref(int64_t step)
{
    double s = (double)step + 1;
    return pow(64, -0.5) * fmin(pow(s, -0.5), s * pow(10, -1.5));
}

static void test_host_schedule(void **state)
{
    (void)state;
    noam n = {.d_model = 64, .warmup = 10, .fail_at_step = -1};
    char name[16] = "noam";
    sgd_sched_vtable vt = noam_vtable(&n);
    vt.name = name;
    sgd_sched *s;
    sgdt_assert_status(sgd_sched_new_custom(&s, &vt, NULL), SGD_OK);
    strcpy(name, "changed"); /* the name was copied */
    assert_string_equal(sgd_sched_name(s), "noam");
    for (int64_t t = 0; t < 50; t++)
        assert_true(lr_of(s, t) == noam_ref(t));
    assert_true(sgd_sched_cycles_momentum(s) && sgd_sched_watches_metric(s));
    assert_int_equal(sgd_sched_state_size(s), 1);
    double m;
    int32_t set;
    sgdt_assert_status(sgd_sched_momentum(s, 4, &m, &set), SGD_OK);
    assert_true(set == 1 && m == 0.9);
    sgdt_assert_status(sgd_sched_momentum(s, 5, &m, &set), SGD_OK);
    assert_true(set == 0 && m == 0);
    sgdt_assert_status(sgd_sched_observe(s, 0, 1.0), SGD_OK);
    sgdt_assert_status(sgd_sched_observe(s, 1, 1.0), SGD_OK);
    double st = -1;
    sgdt_assert_status(sgd_sched_state_export(s, &st, 1), SGD_OK);
    assert_true(st == 2);
    st = 7;
    sgdt_assert_status(sgd_sched_state_import(s, &st, 1), SGD_OK);
    assert_true(n.observed == 7);
    st = 0.5;
    sgdt_assert_status(sgd_sched_state_import(s, &st, 1), SGD_ECALLBACK);
    sgdt_assert_error_contains("schedule 'noam': state_import callback returned -7 (SGD_EFORMAT");
    assert_true(n.observed == 7);

    /* Whatever the host gets wrong is caught and named. */
    n.fail_at_step = 13;
    double v;
    sgdt_assert_status(sgd_sched_lr(s, 13, &v), SGD_ECALLBACK);
    sgdt_assert_error_contains("sgd_sched_lr: schedule 'noam': lr callback returned -1 (SGD_EINVAL");
    sgdt_assert_error_contains("at step 13");
    sgdt_assert_status(sgd_sched_lr(s, 14, &v), SGD_ENONFINITE);
    sgdt_assert_error_contains("schedule 'noam' gave lr=nan at step 14");
    sgdt_assert_status(sgd_sched_lr(s, 15, &v), SGD_ERANGE);
    sgdt_assert_error_contains("gave lr=-0.001 at step 15: must be >= 0");
    sgdt_assert_status(sgd_sched_lr(s, 16, &v), SGD_ENONFINITE); /* returned OK without writing */
    assert_true(v == 0);
    n.fail_at_step = -1;
    n.bad_set = 2;
    sgdt_assert_status(sgd_sched_momentum(s, 0, &m, &set), SGD_ECALLBACK);
    sgdt_assert_error_contains("*set=2");
    assert_true(set == 0);
    n.bad_set = 0;

    /* Composed like any built-in: warmup over it, plateau over that, a sequence after a linear warmup. */
    sgd_sched_warmup_options wo;
    sgd_sched_warmup_options_init(&wo);
    wo.start_factor = 0.5;
    wo.total_iters = 2;
    sgd_sched *w, *p;
    sgdt_assert_status(sgd_sched_warmup_new(&w, s, &wo, NULL), SGD_OK);
    assert_close(lr_of(w, 0), noam_ref(0) * 0.5, 1e-15);
    assert_close(lr_of(w, 1), noam_ref(1) * 0.75, 1e-15);
    assert_close(lr_of(w, 9), noam_ref(9), 1e-15);
    sgd_sched_plateau_options po;
    sgd_sched_plateau_options_init(&po);
    po.patience = 0;
    po.factor = 0.5;
    sgdt_assert_status(sgd_sched_plateau_new(&p, w, &po, NULL), SGD_OK);
    assert_int_equal(sgd_sched_state_size(p), 6);
    sgdt_assert_status(sgd_sched_observe(p, 0, 1.0), SGD_OK);
    sgdt_assert_status(sgd_sched_observe(p, 1, 1.0), SGD_OK);
    assert_close(lr_of(p, 30), noam_ref(30) * 0.5, 1e-15);
    assert_true(n.observed == 9); /* the metric reached the host through both composites */
    double ps[6];
    sgdt_assert_status(sgd_sched_state_export(p, ps, 6), SGD_OK);
    assert_true(ps[5] == 9);
    n.fail_at_step = 40;
    sgdt_assert_status(sgd_sched_lr(p, 40, &v), SGD_ECALLBACK); /* a child's failure surfaces as it was */
    sgdt_assert_error_contains("schedule 'noam'");
    n.fail_at_step = -1;
    assert_int_equal(n.destroyed, 0);
    sgd_sched_free(s); /* owned by the warmup: nothing happens */
    assert_int_equal(n.destroyed, 0);
    sgd_sched_free(p);
    assert_int_equal(n.destroyed, 1);
}

static void test_host_vtable_errors(void **state)
{
    (void)state;
    noam n = {.d_model = 64, .warmup = 10, .fail_at_step = -1};
    sgd_sched *s = (sgd_sched *)&s;
    sgd_sched_vtable vt = noam_vtable(&n);
    sgdt_assert_status(sgd_sched_new_custom(NULL, &vt, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_sched_new_custom(&s, NULL, NULL), SGD_EINVAL);
    assert_null(s);
    sgdt_assert_error_contains("vt is NULL");
    vt.name = NULL;
    sgdt_assert_status(sgd_sched_new_custom(&s, &vt, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("name is NULL");
    vt.name = "";
    sgdt_assert_status(sgd_sched_new_custom(&s, &vt, NULL), SGD_EINVAL);
    char longname[80];
    memset(longname, 'x', 64);
    longname[64] = '\0';
    vt.name = longname;
    sgdt_assert_status(sgd_sched_new_custom(&s, &vt, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("1 to 63 bytes");
    longname[63] = '\0';
    sgdt_assert_status(sgd_sched_new_custom(&s, &vt, NULL), SGD_OK); /* 63 bytes is fine */
    assert_int_equal(strlen(sgd_sched_name(s)), 63);
    sgd_sched_free(s);
    assert_int_equal(n.destroyed, 1);
    vt = noam_vtable(&n);
    vt.lr = NULL;
    sgdt_assert_status(sgd_sched_new_custom(&s, &vt, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("schedule 'noam': lr callback is NULL");
    vt = noam_vtable(&n);
    vt.state_import = NULL;
    sgdt_assert_status(sgd_sched_new_custom(&s, &vt, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("state_size=1 needs state_export and state_import");
    vt = noam_vtable(&n);
    vt.state_size = (size_t)1 << 40;
    sgdt_assert_status(sgd_sched_new_custom(&s, &vt, NULL), SGD_EOVERFLOW);
    vt = noam_vtable(&n);
    vt.struct_size = 8; /* smaller than the first release */
    sgdt_assert_status(sgd_sched_new_custom(&s, &vt, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("struct_size=8");
    assert_int_equal(n.destroyed, 1); /* never called on a failed creation */
    /* A host built against newer headers: its larger vtable is accepted and the
       members this library does not know are ignored (as sgd_optim_vtable's). */
    struct {
        sgd_sched_vtable vt;
        void *future[4];
    } big;
    memset(&big, 0xFF, sizeof big);
    big.vt = noam_vtable(&n);
    big.vt.struct_size = sizeof big;
    sgdt_assert_status(sgd_sched_new_custom(&s, &big.vt, NULL), SGD_OK);
    double lr5 = 0;
    sgdt_assert_status(sgd_sched_lr(s, 5, &lr5), SGD_OK);
    assert_true(lr5 > 0);
    sgd_sched_free(s);
    assert_int_equal(n.destroyed, 2);
    n.destroyed = 1;

    /* The smallest host: a name and an lr; no state, no metric, no momentum, no destroy. */
    sgd_sched_vtable_init(&vt);
    vt.name = "tiny";
    vt.lr = noam_lr;
    vt.user = &n;
    sgdt_assert_status(sgd_sched_new_custom(&s, &vt, NULL), SGD_OK);
    assert_false(sgd_sched_cycles_momentum(s) || sgd_sched_watches_metric(s));
    assert_int_equal(sgd_sched_state_size(s), 0);
    sgdt_assert_status(sgd_sched_observe(s, 3, 1.0), SGD_OK);
    assert_true(n.observed == 0);
    sgd_sched_free(s);
    assert_int_equal(n.destroyed, 1);
}

/* A sequence undoes the children it restored when a later one refuses its state. */
static void test_sequence_import_rollback(void **state)
{
    (void)state;
    noam n = {.d_model = 64, .warmup = 10, .fail_at_step = -1};
    sgd_sched_vtable vt = noam_vtable(&n);
    sgd_sched *kids[2], *s;
    kids[0] = from_spec("plateau:patience=0,factor=0.5", 0.1);
    sgdt_assert_status(sgd_sched_new_custom(&kids[1], &vt, NULL), SGD_OK);
    int64_t ms[1] = {5};
    sgdt_assert_status(sgd_sched_sequential_new(&s, kids, 2, ms, NULL), SGD_OK);
    assert_int_equal(sgd_sched_state_size(s), 6);
    sgdt_assert_status(sgd_sched_observe(s, 0, 1.0), SGD_OK);
    sgdt_assert_status(sgd_sched_observe(s, 1, 1.0), SGD_OK); /* the plateau cuts */
    sgdt_assert_status(sgd_sched_observe(s, 7, 1.0), SGD_OK); /* the host counts */
    double before[6], x[6], after[6];
    sgdt_assert_status(sgd_sched_state_export(s, before, 6), SGD_OK);
    assert_true(before[4] == 0.5 && before[5] == 1);
    memcpy(x, before, sizeof x);
    x[4] = 1.0;  /* a valid plateau state... */
    x[5] = -1.0; /* ...and one the host refuses */
    sgdt_assert_status(sgd_sched_state_import(s, x, 6), SGD_ECALLBACK);
    sgdt_assert_error_contains("sequential: children[1]");
    sgdt_assert_status(sgd_sched_state_export(s, after, 6), SGD_OK);
    assert_memory_equal(before, after, sizeof before);
    assert_close(lr_of(s, 2), 0.05, 1e-15);
    x[5] = 4;
    sgdt_assert_status(sgd_sched_state_import(s, x, 6), SGD_OK);
    assert_close(lr_of(s, 2), 0.1, 1e-15);
    assert_true(n.observed == 4);
    sgd_sched_free(s);
    assert_int_equal(n.destroyed, 1);
}

/* ------------------------------------------------------ allocation failures */

static const char *const alloc_specs[] = {
    "constant",
    "step:step_size=3",
    "multistep:milestones=[2,4,8,16]",
    "exponential:gamma=0.9",
    "polynomial",
    "cosine:T_max=10",
    "cosine_warm_restarts:T_0=3,T_mult=2",
    "linear",
    "onecycle:max_lr=1,total_steps=20",
    "cyclic:max_lr=1,step_size_up=3",
    "plateau:patience=0",
    "warmup:over=(cosine:T_max=10)",
    "sequential:milestones=[3,6],children=[(linear),(multistep:milestones=[1,2]),(plateau:over=(exponential:gamma=0.5))]",
    "plateau:over=(warmup:over=(sequential:milestones=[5],children=[(linear),(cosine:T_max=9)]))",
};

static sgd_status scenario_spec(sgdt_alloc *t, void *ctx)
{
    const char *spec = ctx;
    sgd_sched *s;
    sgd_status st = sgd_sched_new(&s, spec, 0.1, &t->base);
    if (st != SGD_OK) {
        assert_null(s);
        return st;
    }
    double lr, state[32];
    size_t n = sgd_sched_state_size(s);
    assert_true(n <= 32);
    for (int64_t k = 0; k < 12; k++) {
        assert_int_equal(sgd_sched_lr(s, k, &lr), SGD_OK);
        assert_int_equal(sgd_sched_observe(s, k, 1.0), SGD_OK);
    }
    assert_int_equal(sgd_sched_state_export(s, state, n), SGD_OK);
    assert_int_equal(sgd_sched_state_import(s, state, n), SGD_OK);
    sgd_sched_free(s);
    return SGD_OK;
}

static sgd_status scenario_typed(sgdt_alloc *t, void *ctx)
{
    (void)ctx;
    noam n = {.d_model = 64, .warmup = 10, .fail_at_step = -1};
    sgd_sched_vtable vt = noam_vtable(&n);
    sgd_sched *kids[3] = {NULL, NULL, NULL}, *seq = NULL, *w = NULL, *p = NULL;
    const int64_t ms[] = {2, 4};
    sgd_sched_multistep_options mo;
    sgd_sched_multistep_options_init(&mo);
    mo.milestones = ms;
    mo.n_milestones = 2;
    sgd_status st = sgd_sched_multistep_new(&kids[0], 0.1, &mo, &t->base);
    if (st == SGD_OK)
        st = sgd_sched_linear_new(&kids[1], 0.1, NULL, &t->base);
    if (st == SGD_OK)
        st = sgd_sched_new_custom(&kids[2], &vt, &t->base);
    if (st == SGD_OK)
        st = sgd_sched_sequential_new(&seq, kids, 3, ms, &t->base);
    if (st != SGD_OK) {
        assert_null(seq);
        for (int k = 0; k < 3; k++)
            sgd_sched_free(kids[k]); /* still the caller's */
        return st;
    }
    if ((st = sgd_sched_warmup_new(&w, seq, NULL, &t->base)) != SGD_OK) {
        sgd_sched_free(seq);
        return st;
    }
    if ((st = sgd_sched_plateau_new(&p, w, NULL, &t->base)) != SGD_OK) {
        assert_null(p);
        sgd_sched_free(w);
        return st;
    }
    double lr;
    assert_int_equal(sgd_sched_lr(p, 7, &lr), SGD_OK);
    sgd_sched_free(p);
    assert_int_equal(n.destroyed, 1);
    return SGD_OK;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    long total = 0;
    for (size_t k = 0; k < sizeof alloc_specs / sizeof alloc_specs[0]; k++)
        total += sgdt_walk_alloc_failures(scenario_spec, (void *)alloc_specs[k]);
    long typed = sgdt_walk_alloc_failures(scenario_typed, NULL);
    print_message("allocation failure paths walked: %ld (specs) + %ld (typed)\n", total, typed);
    assert_true(total > 30 && typed >= 8);
}

/* ------------------------------------------------------- the 0.2 kinds */

/* inv_sqrt and wsd have no outside reference: their definitions, checked by hand. */
static void test_inv_sqrt_and_wsd(void **state)
{
    (void)state;
    sgd_sched *s = from_spec("inv_sqrt:warmup_steps=4", 1.0);
    assert_close(lr_of(s, 0), 0.25, 1e-15);
    assert_close(lr_of(s, 3), 1.0, 1e-15); /* the peak, at step warmup_steps - 1 */
    assert_close(lr_of(s, 15), 0.5, 1e-15); /* sqrt(4 / 16) */
    assert_close(lr_of(s, 399), 0.1, 1e-15);
    sgd_sched_free(s);
    struct {
        const char *shape;
        double mid; /* the factor halfway through the decay */
    } shapes[] = {{"linear", 0.5}, {"cosine", 0.5}, {"1-sqrt", 1.0 - sqrt(0.5)}};
    for (size_t i = 0; i < 3; i++) {
        char spec[128];
        snprintf(spec, sizeof spec, "wsd:total_steps=100,warmup_steps=10,decay_steps=20,decay=%s,min_factor=0.1",
                 shapes[i].shape);
        s = from_spec(spec, 2.0);
        assert_close(lr_of(s, 0), 0.2, 1e-15);
        assert_close(lr_of(s, 9), 2.0, 1e-15);
        assert_close(lr_of(s, 10), 2.0, 1e-15);
        assert_close(lr_of(s, 79), 2.0, 1e-15);              /* the last stable step */
        assert_close(lr_of(s, 89), 2.0 * (0.1 + 0.9 * shapes[i].mid), 1e-12);
        assert_close(lr_of(s, 99), 0.2, 1e-15);              /* min_factor at the last step */
        assert_close(lr_of(s, 1000), 0.2, 1e-15);            /* and held */
        for (int64_t t = 80; t < 100; t++)
            assert_true(lr_of(s, t) < lr_of(s, t - 1));
        sgd_sched_free(s);
    }
    /* the default shape is 1-sqrt, min_factor 0, no warmup */
    s = from_spec("wsd:total_steps=10,decay_steps=4", 1.0);
    assert_close(lr_of(s, 0), 1.0, 1e-15);
    assert_close(lr_of(s, 7), 1.0 - sqrt(0.5), 1e-15);
    assert_true(lr_of(s, 9) == 0.0);
    sgd_sched_free(s);
}

/* product: the factors multiply (torch's ChainedScheduler); state and metrics reach the children. */
static void test_product(void **state)
{
    (void)state;
    sgd_sched *p = from_spec("product:children=[(linear:start_factor=0.5,total_iters=4),(exponential:gamma=0.9),"
                             "(step:step_size=3,gamma=0.1)]",
                             0.2);
    for (int64_t t = 0; t < 12; t++) {
        double w = 0.5 + 0.5 * (double)(t < 4 ? t : 4) / 4;
        assert_close(lr_of(p, t), 0.2 * w * pow(0.9, (double)t) * pow(0.1, (double)(t / 3)), 1e-14);
    }
    assert_string_equal(sgd_sched_name(p), "product");
    assert_int_equal(sgd_sched_state_size(p), 0);
    sgd_sched_free(p);
    /* with a plateau and a momentum-cycling child */
    const char *spec = "product:children=[(plateau:patience=0,factor=0.5),(cyclic:max_lr=0.4,step_size_up=3),"
                       "(onecycle:max_lr=1,total_steps=50)]";
    sgd_sched *a = from_spec(spec, 0.1), *b = from_spec(spec, 0.1);
    assert_int_equal(sgd_sched_watches_metric(a), 1);
    assert_int_equal(sgd_sched_cycles_momentum(a), 1);
    assert_int_equal(sgd_sched_state_size(a), 5);
    double m, m2;
    int32_t set, set2;
    sgdt_assert_status(sgd_sched_momentum(a, 2, &m, &set), SGD_OK);
    sgd_sched *cyc = from_spec("cyclic:max_lr=0.4,step_size_up=3", 0.1);
    sgdt_assert_status(sgd_sched_momentum(cyc, 2, &m2, &set2), SGD_OK);
    assert_true(set == 1 && set2 == 1 && m == m2); /* the first child that sets it */
    sgd_sched_free(cyc);
    double before = lr_of(a, 5);
    for (int64_t t = 0; t < 5; t++)
        sgdt_assert_status(sgd_sched_observe(a, t, 1.0 + (double)t), SGD_OK); /* worse each time: cut */
    assert_true(lr_of(a, 5) < before);
    double st[5];
    sgdt_assert_status(sgd_sched_state_export(a, st, 5), SGD_OK);
    sgdt_assert_status(sgd_sched_state_import(b, st, 5), SGD_OK);
    for (int64_t t = 5; t < 40; t++)
        assert_true(lr_of(a, t) == lr_of(b, t));
    st[4] = 2.0; /* a scale > 1 is refused, nothing changed */
    sgdt_assert_status(sgd_sched_state_import(b, st, 5), SGD_EFORMAT);
    sgdt_assert_error_contains("product: children[0]");
    assert_true(lr_of(a, 7) == lr_of(b, 7));
    sgd_sched_free(a);
    sgd_sched_free(b);
    /* a zero base lr is zero, not 0/0 */
    p = from_spec("product:children=[(linear),(cosine:T_max=5)]", 0.0);
    assert_true(lr_of(p, 3) == 0.0);
    sgd_sched_free(p);
}

static void test_spec_errors_new_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
        int status;
        const char *needle;
    } bad[] = {
        {"poly_decay", SGD_EINVAL, "poly_decay: decay_steps is required"},
        {"poly_decay:decay_steps=0", SGD_ERANGE, "decay_steps=0"},
        {"poly_decay:decay_steps=10,power=0", SGD_ERANGE, "power=0: must be a finite number > 0"},
        {"poly_decay:decay_steps=10,end_lr=-1", SGD_ERANGE, "end_lr=-1"},
        {"poly_decay:decay_steps=10,cycle=2", SGD_EINVAL, "cycle=2"},
        {"poly_decay:decay_steps=10,transition_begin=-3", SGD_ERANGE, "transition_begin=-3"},
        {"poly_decay:decay_steps=10,bogus=1", SGD_ENOTFOUND, "'bogus'"},
        {"exp_decay:transition_steps=5", SGD_EINVAL, "decay_rate is required"},
        {"exp_decay:transition_steps=5,decay_rate=0", SGD_ERANGE, "decay_rate=0"},
        {"exp_decay:transition_steps=5,decay_rate=0.5,end_lr=-0.1", SGD_ERANGE, "end_lr=-0.1"},
        {"exp_decay:transition_steps=1.5,decay_rate=0.5", SGD_EINVAL, "transition_steps=1.5"},
        {"inverse_time:decay_steps=5,decay_rate=-1", SGD_ERANGE, "decay_rate=-1"},
        {"inv_sqrt", SGD_EINVAL, "warmup_steps is required"},
        {"inv_sqrt:warmup_steps=-2", SGD_ERANGE, "warmup_steps=-2"},
        {"wsd:total_steps=10,decay_steps=4,decay=exp", SGD_EINVAL, "decay=exp: must be linear, cosine or 1-sqrt"},
        {"wsd:total_steps=10,warmup_steps=8,decay_steps=4", SGD_ERANGE, "warmup_steps=8 + decay_steps=4"},
        {"wsd:total_steps=10,decay_steps=4,min_factor=1.5", SGD_ERANGE, "min_factor=1.5: must be in [0, 1]"},
        {"cosine_decay:decay_steps=10,alpha=2", SGD_ERANGE, "alpha=2"},
        {"cosine_decay:decay_steps=10,exponent=-1", SGD_ERANGE, "exponent=-1"},
        {"cosine_restarts:first_decay_steps=10,t_mul=0", SGD_ERANGE, "t_mul=0"},
        {"cosine_restarts:first_decay_steps=10,m_mul=-0.5", SGD_ERANGE, "m_mul=-0.5"},
        {"product", SGD_EINVAL, "product: children is required"},
        {"product:children=[]", SGD_EINVAL, "at least one schedule"},
        {"product:children=[(cosine)]", SGD_EINVAL, "children[0]: cosine: T_max is required"},
        {"product:children=[(linear)],x=1", SGD_ENOTFOUND, "'x'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sgd_sched *s = (sgd_sched *)&s;
        int st = sgd_sched_new(&s, bad[i].spec, 0.1, NULL);
        if (st != bad[i].status || strstr(sgd_error_last(), bad[i].needle) == NULL)
            fail_msg("spec \"%s\": got %s \"%s\", expected %s mentioning \"%s\"", bad[i].spec, sgd_status_str(st),
                     sgd_error_last(), sgd_status_str(bad[i].status), bad[i].needle);
        assert_null(s);
    }
}

static const char *const alloc_specs_new[] = {
    "poly_decay:decay_steps=5,cycle=1",
    "exp_decay:transition_steps=3,decay_rate=0.5,end_lr=0.01",
    "inverse_time:decay_steps=2,decay_rate=1",
    "inv_sqrt:warmup_steps=3",
    "wsd:total_steps=20,warmup_steps=2,decay_steps=5,decay=cosine",
    "cosine_decay:decay_steps=8,alpha=0.1",
    "cosine_restarts:first_decay_steps=3,m_mul=0.5",
    "product:children=[(plateau:patience=0),(warmup:over=(cosine_decay:decay_steps=9)),(wsd:total_steps=9,decay_steps=3)]",
};

static void test_alloc_failures_new_kinds(void **state)
{
    (void)state;
    long total = 0;
    for (size_t k = 0; k < sizeof alloc_specs_new / sizeof alloc_specs_new[0]; k++)
        total += sgdt_walk_alloc_failures(scenario_spec, (void *)alloc_specs_new[k]);
    assert_true(total >= 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relative_kinds),
        cmocka_unit_test(test_cosine_past_tmax),
        cmocka_unit_test(test_warm_restarts),
        cmocka_unit_test(test_onecycle_hold_and_momentum),
        cmocka_unit_test(test_cyclic),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_spec_matches_typed),
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_typed_errors),
        cmocka_unit_test(test_queries),
        cmocka_unit_test(test_warmup_and_sequence),
        cmocka_unit_test(test_plateau_rules),
        cmocka_unit_test(test_plateau_over_schedule),
        cmocka_unit_test(test_state_roundtrip),
        cmocka_unit_test(test_host_schedule),
        cmocka_unit_test(test_host_vtable_errors),
        cmocka_unit_test(test_sequence_import_rollback),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_inv_sqrt_and_wsd),
        cmocka_unit_test(test_product),
        cmocka_unit_test(test_spec_errors_new_kinds),
        cmocka_unit_test(test_alloc_failures_new_kinds),
    };
    return cmocka_run_group_tests_name("sched", tests, NULL, NULL);
}
