/* Tests of the optim module: built-ins against a double-precision reference
 * written from torch.optim 1.13, specs, hyperparameters, groups, hygiene,
 * state export/import, host optimizers, allocation failures. */
#include "util/sgdtest.h"

#include "core/internal.h"
#include "optim/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

static void fill_random(sgd__rng *r, float *v, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(sgd__rng_normal(r) * scale);
}

static sgd_optim *make(const char *spec, size_t n)
{
    sgd_optim *o = NULL;
    sgd_status st = sgd_optim_new(&o, spec, n, NULL);
    if (st != SGD_OK)
        fail_msg("sgd_optim_new(\"%s\"): %s", spec, sgd_error_last());
    return o;
}

static double get(const sgd_optim *o, const char *name)
{
    double v = -12345.0;
    sgdt_assert_status(sgd_optim_get(o, name, &v), SGD_OK);
    return v;
}

/* All of an optimizer's state, exported into one malloc'd blob. */
static unsigned char *export_all(const sgd_optim *o, size_t *total)
{
    size_t count = sgd_optim_state_count(o), sum = 0;
    for (size_t i = 0; i < count; i++) {
        int32_t type;
        size_t len;
        sgdt_assert_status(sgd_optim_state_describe(o, i, NULL, &type, &len), SGD_OK);
        sum += len * (type == SGD_STATE_F32 ? 4 : 8);
    }
    unsigned char *blob = malloc(sum ? sum : 1), *p = blob;
    assert_non_null(blob);
    for (size_t i = 0; i < count; i++) {
        int32_t type;
        size_t len;
        sgd_optim_state_describe(o, i, NULL, &type, &len);
        size_t b = len * (type == SGD_STATE_F32 ? 4 : 8);
        sgdt_assert_status(sgd_optim_state_export(o, i, p, b), SGD_OK);
        p += b;
    }
    *total = sum;
    return blob;
}

static void import_all(sgd_optim *o, const unsigned char *blob)
{
    size_t count = sgd_optim_state_count(o);
    for (size_t i = 0; i < count; i++) {
        int32_t type;
        size_t len;
        sgd_optim_state_describe(o, i, NULL, &type, &len);
        size_t b = len * (type == SGD_STATE_F32 ? 4 : 8);
        sgdt_assert_status(sgd_optim_state_import(o, i, blob, b), SGD_OK);
        blob += b;
    }
}

/* ------------------------------------------------- the double reference */

/*
 * torch.optim 1.13's single-tensor loops (_single_tensor_sgd, _adagrad,
 * _rmsprop, _adam, _adamw), transcribed in double, one parameter at a time.
 */
typedef struct ref {
    char kind[16];
    double momentum, dampening, wd, lr_decay, iav, eps, alpha, b1, b2;
    int nesterov, maximize, centered, amsgrad;
    double *s1, *s2, *s3;
    int buf_init;
    long t;
} ref;

static void ref_init(ref *r, const sgd_optim *o, size_t n)
{
    memset(r, 0, sizeof *r);
    snprintf(r->kind, sizeof r->kind, "%s", sgd_optim_name(o));
    r->wd = get(o, "weight_decay");
    r->maximize = (int)get(o, "maximize");
    if (sgd_optim_get(o, "momentum", &r->momentum) != SGD_OK)
        r->momentum = 0;
    sgd_optim_get(o, "dampening", &r->dampening);
    double v = 0;
    if (sgd_optim_get(o, "nesterov", &v) == SGD_OK)
        r->nesterov = (int)v;
    if (sgd_optim_get(o, "centered", &v) == SGD_OK)
        r->centered = (int)v;
    if (sgd_optim_get(o, "amsgrad", &v) == SGD_OK)
        r->amsgrad = (int)v;
    sgd_optim_get(o, "lr_decay", &r->lr_decay);
    sgd_optim_get(o, "initial_accumulator_value", &r->iav);
    sgd_optim_get(o, "eps", &r->eps);
    sgd_optim_get(o, "alpha", &r->alpha);
    sgd_optim_get(o, "beta1", &r->b1);
    sgd_optim_get(o, "beta2", &r->b2);
    r->s1 = calloc(n, sizeof(double));
    r->s2 = calloc(n, sizeof(double));
    r->s3 = calloc(n, sizeof(double));
    if (strcmp(r->kind, "adagrad") == 0)
        for (size_t i = 0; i < n; i++)
            r->s1[i] = r->iav;
}

static void ref_free(ref *r)
{
    free(r->s1);
    free(r->s2);
    free(r->s3);
}

static void ref_step(ref *r, double *x, const float *gf, size_t n, double lr)
{
    r->t++;
    const double t = (double)r->t;
    for (size_t i = 0; i < n; i++) {
        double g = r->maximize ? -(double)gf[i] : (double)gf[i];
        if (strcmp(r->kind, "sgd") == 0) {
            if (r->wd != 0)
                g += r->wd * x[i];
            if (r->momentum != 0) {
                if (!r->buf_init)
                    r->s1[i] = g;
                else
                    r->s1[i] = r->s1[i] * r->momentum + (1 - r->dampening) * g;
                g = r->nesterov ? g + r->momentum * r->s1[i] : r->s1[i];
            }
            x[i] -= lr * g;
        } else if (strcmp(r->kind, "adagrad") == 0) {
            if (r->wd != 0)
                g += r->wd * x[i];
            double clr = lr / (1 + (t - 1) * r->lr_decay);
            r->s1[i] += g * g;
            x[i] -= clr * g / (sqrt(r->s1[i]) + r->eps);
        } else if (strcmp(r->kind, "rmsprop") == 0) {
            if (r->wd != 0)
                g += r->wd * x[i];
            r->s1[i] = r->alpha * r->s1[i] + (1 - r->alpha) * g * g;
            double avg;
            if (r->centered) {
                r->s2[i] = r->alpha * r->s2[i] + (1 - r->alpha) * g;
                avg = sqrt(r->s1[i] - r->s2[i] * r->s2[i]) + r->eps;
            } else {
                avg = sqrt(r->s1[i]) + r->eps;
            }
            if (r->momentum > 0) {
                r->s3[i] = r->momentum * r->s3[i] + g / avg;
                x[i] -= lr * r->s3[i];
            } else {
                x[i] -= lr * g / avg;
            }
        } else { /* adam, adamw */
            if (strcmp(r->kind, "adamw") == 0)
                x[i] *= 1 - lr * r->wd;
            else if (r->wd != 0)
                g += r->wd * x[i];
            r->s1[i] = r->s1[i] * r->b1 + (1 - r->b1) * g;
            r->s2[i] = r->s2[i] * r->b2 + (1 - r->b2) * g * g;
            double bc1 = 1 - pow(r->b1, t), bc2 = 1 - pow(r->b2, t);
            double v = r->s2[i];
            if (r->amsgrad) {
                r->s3[i] = fmax(r->s3[i], r->s2[i]);
                v = r->s3[i];
            }
            double denom = sqrt(v) / sqrt(bc2) + r->eps;
            x[i] -= lr / bc1 * r->s1[i] / denom;
        }
    }
    r->buf_init = 1;
}

static const char *const ref_specs[] = {
    "sgd:lr=0.1",
    "sgd:lr=0.1,momentum=0.9,weight_decay=0.01",
    "sgd:lr=0.05,momentum=0.9,dampening=0.3,maximize=1",
    "sgd:lr=0.05,momentum=0.8,nesterov=1,weight_decay=0.1",
    "adagrad",
    "adagrad:lr=0.05,lr_decay=0.1,weight_decay=0.01,initial_accumulator_value=0.2,eps=1e-6,maximize=1",
    "rmsprop",
    "rmsprop:centered=1,momentum=0.5,weight_decay=0.05,alpha=0.9,maximize=1",
    "rmsprop:momentum=0.9",
    "rmsprop:centered=1",
    "adam",
    "adam:lr=0.01,beta1=0.8,beta2=0.99,amsgrad=1,weight_decay=0.1,maximize=1",
    "adamw",
    "adamw:lr=0.01,amsgrad=1,weight_decay=0.2,eps=1e-3",
};
#define N_REF_SPECS (sizeof ref_specs / sizeof ref_specs[0])

/* Runs spec for `steps` steps on n parameters against the reference; returns the worst error. */
static double compare_with_ref(const char *spec, size_t n, int steps, uint64_t seed)
{
    sgd_optim *o = make(spec, n);
    ref r;
    ref_init(&r, o, n);
    sgd__rng rng;
    sgd__rng_seed(&rng, seed);
    float *x = malloc(n * sizeof *x), *g = malloc(n * sizeof *g);
    double *xr = malloc(n * sizeof *xr);
    fill_random(&rng, x, n, 1.0);
    for (size_t i = 0; i < n; i++)
        xr[i] = x[i];
    double worst = 0;
    for (int k = 0; k < steps; k++) {
        double lr = get(o, "lr") * (1.0 + 0.5 * sin(k)); /* the lr changes from step to step */
        for (size_t i = 0; i < n; i++)
            g[i] = (float)(x[i] + sgd__rng_normal(&rng)); /* gradient of a noisy quadratic */
        sgd_optim_step_info info;
        sgd_optim_step_info_init(&info);
        sgdt_assert_status(sgd_optim_step(o, x, g, lr, &info), SGD_OK);
        assert_int_equal(info.applied, 1);
        assert_int_equal(info.step, k + 1);
        ref_step(&r, xr, g, n, lr);
        for (size_t i = 0; i < n; i++) {
            double e = fabs(x[i] - xr[i]) / fmax(fabs(xr[i]), 0.01);
            if (!(e <= worst))
                worst = e;
        }
    }
    free(x);
    free(g);
    free(xr);
    ref_free(&r);
    sgd_optim_free(o);
    return worst;
}

static void test_builtins_match_reference(void **state)
{
    (void)state;
    /* Odd sizes exercise the vectorised loops' tails; 1 has no vector part at all. */
    const size_t sizes[] = {1, 37, 1031};
    for (size_t s = 0; s < N_REF_SPECS; s++)
        for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
            double w = compare_with_ref(ref_specs[s], sizes[z], 30, 1000 + s);
            if (!(w <= 5e-4))
                fail_msg("%s (n=%zu): worst relative error %g against the double reference", ref_specs[s], sizes[z],
                         w);
        }
}

/* ------------------------------------------------------------------- specs */

static void test_spec_defaults(void **state)
{
    (void)state;
    sgd_optim *o = make("adam", 4);
    assert_string_equal(sgd_optim_name(o), "adam");
    assert_int_equal(sgd_optim_size(o), 4);
    assert_true(get(o, "lr") == 1e-3 && get(o, "beta1") == 0.9 && get(o, "beta2") == 0.999);
    assert_true(get(o, "eps") == 1e-8 && get(o, "weight_decay") == 0 && get(o, "amsgrad") == 0);
    assert_true(get(o, "maximize") == 0);
    sgd_optim_free(o);
    o = make("adamw", 4);
    assert_true(get(o, "weight_decay") == 1e-2 && get(o, "lr") == 1e-3);
    sgd_optim_free(o);
    o = make("adagrad", 4);
    assert_true(get(o, "lr") == 1e-2 && get(o, "lr_decay") == 0 && get(o, "eps") == 1e-10);
    assert_true(get(o, "initial_accumulator_value") == 0 && get(o, "weight_decay") == 0);
    sgd_optim_free(o);
    o = make("rmsprop", 4);
    assert_true(get(o, "lr") == 1e-2 && get(o, "alpha") == 0.99 && get(o, "eps") == 1e-8);
    assert_true(get(o, "momentum") == 0 && get(o, "centered") == 0);
    sgd_optim_free(o);
    o = make("sgd:lr=0.5", 4);
    assert_true(get(o, "lr") == 0.5 && get(o, "momentum") == 0 && get(o, "dampening") == 0);
    assert_true(get(o, "nesterov") == 0 && get(o, "weight_decay") == 0);
    sgd_optim_free(o);
    /* A kind without ':' and one with an empty list are the same. */
    o = make(" adam: ", 4);
    assert_string_equal(sgd_optim_name(o), "adam");
    sgd_optim_free(o);
    for (size_t i = 0; sgd_optim_builtin_name(i) != NULL; i++) {
        char spec[64];
        snprintf(spec, sizeof spec, "%s:lr=0.1", sgd_optim_builtin_name(i));
        o = make(spec, 2);
        assert_string_equal(sgd_optim_name(o), sgd_optim_builtin_name(i));
        sgd_optim_free(o);
        assert_true(i < 20);
    }
    assert_null(sgd_optim_builtin_name(20));
}

static void test_spec_values(void **state)
{
    (void)state;
    sgd_optim *o = make("adam:lr=1e-3,beta2=0.99,amsgrad=1", 3);
    assert_true(get(o, "beta2") == 0.99 && get(o, "amsgrad") == 1 && get(o, "beta1") == 0.9);
    sgd_optim_free(o);
    o = make("sgd: lr = 0.25 , momentum=0.9, nesterov=true ,weight_decay=1e-4,maximize=yes", 3);
    assert_true(get(o, "lr") == 0.25 && get(o, "momentum") == 0.9 && get(o, "nesterov") == 1);
    assert_true(get(o, "weight_decay") == 1e-4 && get(o, "maximize") == 1);
    sgd_optim_free(o);
    o = make("rmsprop:alpha=0.9,eps=1e-6,momentum=0.5,centered=1,weight_decay=0.1", 3);
    assert_true(get(o, "alpha") == 0.9 && get(o, "eps") == 1e-6 && get(o, "momentum") == 0.5);
    assert_true(get(o, "centered") == 1 && get(o, "weight_decay") == 0.1);
    sgd_optim_free(o);
    o = make("adagrad:lr_decay=0.5,initial_accumulator_value=0.1,eps=1e-5", 3);
    assert_true(get(o, "lr_decay") == 0.5 && get(o, "initial_accumulator_value") == 0.1 && get(o, "eps") == 1e-5);
    sgd_optim_free(o);
    o = make("adam:clip_norm=1.5,clip_value=0.5,nonfinite=error,max_skips=3", 3);
    sgd_optim_hygiene h;
    sgd_optim_hygiene_init(&h);
    sgdt_assert_status(sgd_optim_get_hygiene(o, &h), SGD_OK);
    assert_true(h.clip_norm == 1.5 && h.clip_value == 0.5);
    assert_int_equal(h.nonfinite, SGD_NONFINITE_ERROR);
    assert_int_equal(h.max_consecutive_skips, 3);
    sgd_optim_free(o);
    o = make("sgd:lr=1,nonfinite=apply", 3);
    sgd_optim_get_hygiene(o, &h);
    assert_int_equal(h.nonfinite, SGD_NONFINITE_APPLY);
    sgd_optim_free(o);
}

typedef struct bad_spec {
    const char *spec;
    int status;
    const char *needle; /* in the message */
} bad_spec;

static void test_spec_errors(void **state)
{
    (void)state;
    static const bad_spec bad[] = {
        {"lbfgs:lr=1", SGD_ENOTFOUND, "lbfgs"},
        {"", SGD_EINVAL, "missing kind"},
        {":lr=1", SGD_EINVAL, "missing kind"},
        {"adam:foo=1", SGD_ENOTFOUND, "'foo'"},
        {"adam:momentum=0.9", SGD_ENOTFOUND, "'momentum'"},
        {"sgd:lr=0.1,beta1=0.9", SGD_ENOTFOUND, "'beta1'"},
        {"adam:betas=0.9", SGD_ENOTFOUND, "beta1= and beta2="},
        {"adam:lr=1e-3x", SGD_EINVAL, "lr=1e-3x"},
        {"adam:lr=", SGD_EINVAL, "lr="},
        {"adam:lr", SGD_EINVAL, "not key=value"},
        {"adam:lr=1,lr=2", SGD_EINVAL, "twice"},
        {"adam:lr=0.1,,eps=1", SGD_EINVAL, "empty item"},
        {"adam:lr=nan", SGD_EINVAL, "lr=nan"},
        {"adam:lr=inf", SGD_EINVAL, "lr=inf"},
        {"adam:lr=1e999", SGD_ERANGE, "lr=1e999"},
        {"adam:lr=-1e-3", SGD_ERANGE, "lr=-0.001"},
        {"adam:beta1=1", SGD_ERANGE, "beta1=1: must be in [0, 1)"},
        {"adam:beta2=-0.1", SGD_ERANGE, "beta2=-0.1"},
        {"adamw:beta2=1.5", SGD_ERANGE, "beta2=1.5"},
        {"adam:eps=-1e-8", SGD_ERANGE, "eps=-1e-08"},
        {"adam:weight_decay=-0.1", SGD_ERANGE, "weight_decay=-0.1"},
        {"adam:amsgrad=2", SGD_EINVAL, "amsgrad=2"},
        {"sgd:momentum=0.9", SGD_EINVAL, "lr is required"},
        {"sgd:lr=0.1,momentum=-0.5", SGD_ERANGE, "momentum=-0.5"},
        {"sgd:lr=0.1,nesterov=1", SGD_ERANGE, "nesterov"},
        {"sgd:lr=0.1,nesterov=1,momentum=0.9,dampening=0.1", SGD_ERANGE, "dampening=0.1"},
        {"sgd:lr=0.1,momentum=0.9,dampening=1.5", SGD_ERANGE, "dampening=1.5"},
        {"rmsprop:alpha=1.5", SGD_ERANGE, "alpha=1.5"},
        {"rmsprop:momentum=-1", SGD_ERANGE, "momentum=-1"},
        {"adagrad:lr_decay=-1", SGD_ERANGE, "lr_decay=-1"},
        {"adagrad:initial_accumulator_value=-1", SGD_ERANGE, "initial_accumulator_value=-1"},
        {"adagrad:eps=-1", SGD_ERANGE, "eps=-1"},
        {"adam:nonfinite=ignore", SGD_EINVAL, "nonfinite=ignore"},
        {"adam:max_skips=-1", SGD_ERANGE, "max_skips=-1"},
        {"adam:max_skips=1.5", SGD_EINVAL, "max_skips=1.5"},
        {"adam:clip_norm=-1", SGD_ERANGE, "clip_norm=-1"},
        {"adam:clip_value=1e39", SGD_ERANGE, "clip_value"},
        {"adam:foreach=1", SGD_ENOTFOUND, "'foreach'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sgd_optim *o = (sgd_optim *)&o; /* must be reset to NULL */
        int st = sgd_optim_new(&o, bad[i].spec, 4, NULL);
        if (st != bad[i].status || strstr(sgd_error_last(), bad[i].needle) == NULL)
            fail_msg("spec \"%s\": got %s \"%s\", expected %s mentioning \"%s\"", bad[i].spec, sgd_status_str(st),
                     sgd_error_last(), sgd_status_str(bad[i].status), bad[i].needle);
        assert_null(o);
        if (strncmp(sgd_error_last(), "sgd_optim_new", 13) != 0)
            fail_msg("spec \"%s\": message \"%s\" does not name sgd_optim_new", bad[i].spec, sgd_error_last());
    }
    sgd_optim *o = NULL;
    sgdt_assert_status(sgd_optim_new(&o, NULL, 4, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_new(NULL, "adam", 4, NULL), SGD_EINVAL);
    sgdt_alloc t;
    sgdt_alloc_init(&t);
    sgd_allocator partial = t.base;
    partial.free_fn = NULL;
    sgdt_assert_status(sgd_optim_new(&o, "adam", 4, &partial), SGD_EINVAL);
    sgdt_assert_error_contains("free_fn");
    sgdt_assert_status(sgd_optim_new(&o, "adam", SIZE_MAX / 2, NULL), SGD_EOVERFLOW);
    assert_null(o);
}

/* ------------------------------------------------------- hyperparameters */

static void test_hparams(void **state)
{
    (void)state;
    sgd_optim *o = make("sgd:lr=0.1,momentum=0.9", 4);
    /* A one-cycle schedule cycles momentum. */
    sgdt_assert_status(sgd_optim_set(o, "momentum", 0.85), SGD_OK);
    assert_true(get(o, "momentum") == 0.85);
    sgdt_assert_status(sgd_optim_set(o, "momentum", 0.0), SGD_OK);
    sgdt_assert_status(sgd_optim_set(o, "momentum", -0.1), SGD_ERANGE);
    sgdt_assert_error_contains("momentum=-0.1");
    assert_true(get(o, "momentum") == 0.0);
    sgdt_assert_status(sgd_optim_set(o, "momentum", 0.9), SGD_OK);
    sgdt_assert_status(sgd_optim_set(o, "nesterov", 1), SGD_OK);
    sgdt_assert_status(sgd_optim_set(o, "dampening", 0.5), SGD_ERANGE);
    sgdt_assert_error_contains("dampening=0.5");
    sgdt_assert_status(sgd_optim_set(o, "momentum", 0), SGD_ERANGE);
    sgdt_assert_error_contains("nesterov");
    sgdt_assert_status(sgd_optim_set(o, "nesterov", 0.5), SGD_ERANGE);
    sgdt_assert_status(sgd_optim_set(o, "lr", 0.3), SGD_OK);
    assert_true(get(o, "lr") == 0.3);
    sgdt_assert_status(sgd_optim_set(o, "lr", -1), SGD_ERANGE);
    sgdt_assert_error_contains("lr=-1");
    sgdt_assert_status(sgd_optim_set(o, "lr", INFINITY), SGD_ERANGE);
    sgdt_assert_status(sgd_optim_set(o, "weight_decay", NAN), SGD_ERANGE);
    sgdt_assert_status(sgd_optim_set(o, "weight_decay", 0.01), SGD_OK);
    assert_true(get(o, "weight_decay") == 0.01);
    sgdt_assert_status(sgd_optim_set(o, "beta1", 0.9), SGD_ENOTFOUND);
    sgdt_assert_error_contains("'beta1'");
    double v;
    sgdt_assert_status(sgd_optim_get(o, "beta1", &v), SGD_ENOTFOUND);
    sgdt_assert_status(sgd_optim_set(NULL, "lr", 1), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_set(o, NULL, 1), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_get(o, "lr", NULL), SGD_EINVAL);
    sgd_optim_free(o);

    /* Without momentum at creation there is no buffer to cycle. */
    o = make("sgd:lr=0.1", 4);
    sgdt_assert_status(sgd_optim_set(o, "momentum", 0.9), SGD_ESTATE);
    sgdt_assert_error_contains("momentum=0.9");
    sgdt_assert_status(sgd_optim_set(o, "momentum", 0), SGD_OK);
    sgd_optim_free(o);

    o = make("adam:amsgrad=1", 4);
    sgdt_assert_status(sgd_optim_set(o, "beta1", 0.95), SGD_OK);
    sgdt_assert_status(sgd_optim_set(o, "beta2", 0.98), SGD_OK);
    assert_true(get(o, "beta1") == 0.95 && get(o, "beta2") == 0.98);
    sgdt_assert_status(sgd_optim_set(o, "beta1", 1.0), SGD_ERANGE);
    sgdt_assert_error_contains("beta1=1");
    assert_true(get(o, "beta1") == 0.95);
    sgdt_assert_status(sgd_optim_set(o, "eps", -1), SGD_ERANGE);
    sgdt_assert_status(sgd_optim_set(o, "amsgrad", 0), SGD_ESTATE);
    sgdt_assert_error_contains("amsgrad");
    sgdt_assert_status(sgd_optim_set(o, "amsgrad", 1), SGD_OK);
    sgdt_assert_status(sgd_optim_set(o, "maximize", 1), SGD_OK);
    assert_true(get(o, "maximize") == 1);
    sgd_optim_free(o);

    o = make("rmsprop:momentum=0.5", 4);
    sgdt_assert_status(sgd_optim_set(o, "alpha", 0.9), SGD_OK);
    sgdt_assert_status(sgd_optim_set(o, "alpha", 1.1), SGD_ERANGE);
    sgdt_assert_status(sgd_optim_set(o, "momentum", 0.7), SGD_OK);
    sgdt_assert_status(sgd_optim_set(o, "centered", 1), SGD_ESTATE);
    sgdt_assert_status(sgd_optim_set(o, "eps", 1e-4), SGD_OK);
    assert_true(get(o, "eps") == 1e-4 && get(o, "alpha") == 0.9 && get(o, "momentum") == 0.7);
    sgd_optim_free(o);

    o = make("adagrad", 4);
    sgdt_assert_status(sgd_optim_set(o, "lr_decay", 0.1), SGD_OK);
    sgdt_assert_status(sgd_optim_set(o, "initial_accumulator_value", 0.5), SGD_OK);
    sgdt_assert_status(sgd_optim_set(o, "eps", 1e-3), SGD_OK);
    sgdt_assert_status(sgd_optim_set(o, "lr_decay", -0.1), SGD_ERANGE);
    assert_true(get(o, "lr_decay") == 0.1 && get(o, "initial_accumulator_value") == 0.5 && get(o, "eps") == 1e-3);
    /* initial_accumulator_value takes effect at the next reset. */
    sgdt_assert_status(sgd_optim_reset(o), SGD_OK);
    float sum[4];
    size_t idx;
    sgdt_assert_status(sgd_optim_state_find(o, "sum", &idx), SGD_OK);
    sgdt_assert_status(sgd_optim_state_export(o, idx, sum, sizeof sum), SGD_OK);
    assert_true(sum[0] == 0.5f && sum[3] == 0.5f);
    sgd_optim_free(o);
}

/* Changing beta1 between steps is what the optimizer then uses (as torch's param_groups[0]['betas']). */
static void test_hparam_changes_update(void **state)
{
    (void)state;
    float x[3] = {1, 2, 3}, g[3] = {0.5f, -1, 2};
    double xr[3] = {1, 2, 3};
    sgd_optim *o = make("adam:lr=0.1", 3);
    ref r;
    ref_init(&r, o, 3);
    sgd_optim_step(o, x, g, 0.1, NULL);
    ref_step(&r, xr, g, 3, 0.1);
    sgdt_assert_status(sgd_optim_set(o, "beta1", 0.5), SGD_OK);
    r.b1 = 0.5;
    g[0] = -3;
    for (int k = 0; k < 3; k++) {
        sgd_optim_step(o, x, g, 0.1, NULL);
        ref_step(&r, xr, g, 3, 0.1);
    }
    for (int i = 0; i < 3; i++)
        assert_float_equal(x[i], xr[i], 1e-5);
    /* and it differs from never having changed it */
    sgd_optim *keep = make("adam:lr=0.1", 3);
    float y[3] = {1, 2, 3}, g2[3] = {0.5f, -1, 2};
    sgd_optim_step(keep, y, g2, 0.1, NULL);
    g2[0] = -3;
    for (int k = 0; k < 3; k++)
        sgd_optim_step(keep, y, g2, 0.1, NULL);
    assert_true(fabsf(y[0] - x[0]) > 1e-4f);
    ref_free(&r);
    sgd_optim_free(o);
    sgd_optim_free(keep);
}

/* ---------------------------------------------------------------- maximize */

static void test_maximize_is_negated_gradient(void **state)
{
    (void)state;
    const char *kinds[] = {"sgd:lr=0.1,momentum=0.9,weight_decay=0.1", "adagrad:weight_decay=0.1",
                           "rmsprop:centered=1,momentum=0.3,weight_decay=0.1", "adam:weight_decay=0.1",
                           "adamw:amsgrad=1"};
    sgd__rng rng;
    sgd__rng_seed(&rng, 7);
    for (size_t k = 0; k < 5; k++) {
        char spec[128];
        snprintf(spec, sizeof spec, "%s,maximize=1", kinds[k]);
        sgd_optim *a = make(kinds[k], 19), *b = make(spec, 19);
        float xa[19], xb[19], g[19], ng[19];
        fill_random(&rng, xa, 19, 1);
        memcpy(xb, xa, sizeof xa);
        for (int s = 0; s < 10; s++) {
            fill_random(&rng, g, 19, 1);
            for (int i = 0; i < 19; i++)
                ng[i] = -g[i];
            sgd_optim_step(a, xa, g, 0.05, NULL);
            sgd_optim_step(b, xb, ng, 0.05, NULL);
        }
        assert_memory_equal(xa, xb, sizeof xa);
        sgd_optim_free(a);
        sgd_optim_free(b);
    }
}

/* ------------------------------------------------------------------ groups */

static void test_groups(void **state)
{
    (void)state;
    /* A group with its own lr multiplier and decay behaves as a separate optimizer over its range. */
    const size_t n = 101;
    sgd_optim *whole = make("adamw:weight_decay=0.05,amsgrad=1", n);
    sgd_optim *part_a = make("adamw:weight_decay=0.05,amsgrad=1", 40);
    sgd_optim *part_b = make("adamw:weight_decay=0,amsgrad=1", 21); /* group: no decay, lr x 0.5 */
    sgd_optim *part_c = make("adamw:weight_decay=0.05,amsgrad=1", 40);
    size_t idx = 99;
    sgdt_assert_status(sgd_optim_add_group(whole, 40, 21, 0.5, 0.0, &idx), SGD_OK);
    assert_int_equal(idx, 1);
    assert_int_equal(sgd_optim_group_count(whole), 2);
    size_t off, cnt;
    double sc, wd;
    sgdt_assert_status(sgd_optim_get_group(whole, 0, &off, &cnt, &sc, &wd), SGD_OK);
    assert_true(off == 0 && cnt == 80 && sc == 1.0 && wd == 0.05);
    sgdt_assert_status(sgd_optim_get_group(whole, 1, &off, &cnt, &sc, &wd), SGD_OK);
    assert_true(off == 40 && cnt == 21 && sc == 0.5 && wd == 0.0);
    sgdt_assert_status(sgd_optim_get_group(whole, 2, NULL, NULL, NULL, NULL), SGD_ENOTFOUND);

    sgd__rng rng;
    sgd__rng_seed(&rng, 11);
    float x[101], g[101], xa[40], xb[21], xc[40];
    fill_random(&rng, x, n, 1);
    memcpy(xa, x, sizeof xa);
    memcpy(xb, x + 40, sizeof xb);
    memcpy(xc, x + 61, sizeof xc);
    for (int s = 0; s < 12; s++) {
        fill_random(&rng, g, n, 1);
        double lr = 0.01 * (s + 1);
        sgdt_assert_status(sgd_optim_step(whole, x, g, lr, NULL), SGD_OK);
        sgd_optim_step(part_a, xa, g, lr, NULL);
        sgd_optim_step(part_b, xb, g + 40, lr * 0.5, NULL);
        sgd_optim_step(part_c, xc, g + 61, lr, NULL);
    }
    assert_memory_equal(x, xa, sizeof xa);
    assert_memory_equal(x + 40, xb, sizeof xb);
    assert_memory_equal(x + 61, xc, sizeof xc);

    /* Errors: overlap, past the end, empty, bad values; nothing changes. */
    sgdt_assert_status(sgd_optim_add_group(whole, 60, 5, 1, 0, &idx), SGD_EINVAL);
    sgdt_assert_error_contains("overlaps group 1");
    assert_int_equal(idx, 0);
    sgdt_assert_status(sgd_optim_add_group(whole, 30, 11, 1, 0, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_add_group(whole, 100, 2, 1, 0, NULL), SGD_ERANGE);
    sgdt_assert_status(sgd_optim_add_group(whole, SIZE_MAX, 2, 1, 0, NULL), SGD_ERANGE);
    sgdt_assert_status(sgd_optim_add_group(whole, 0, 0, 1, 0, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_add_group(whole, 0, 1, -1, 0, NULL), SGD_ERANGE);
    sgdt_assert_error_contains("lr_scale=-1");
    sgdt_assert_status(sgd_optim_add_group(whole, 0, 1, 1, NAN, NULL), SGD_ERANGE);
    sgdt_assert_status(sgd_optim_add_group(NULL, 0, 1, 1, 0, NULL), SGD_EINVAL);
    assert_int_equal(sgd_optim_group_count(whole), 2);
    /* Adjacent groups at both ends are fine; group 0 then covers the middle. */
    sgdt_assert_status(sgd_optim_add_group(whole, 0, 40, 1, 0.05, &idx), SGD_OK);
    assert_int_equal(idx, 2);
    sgdt_assert_status(sgd_optim_add_group(whole, 61, 40, 2, 0.05, &idx), SGD_OK);
    sgdt_assert_status(sgd_optim_get_group(whole, 0, NULL, &cnt, NULL, NULL), SGD_OK);
    assert_int_equal(cnt, 0);
    sgdt_assert_status(sgd_optim_set_group(whole, 3, 1, 0.05), SGD_OK);
    sgdt_assert_status(sgd_optim_set_group(whole, 4, 1, 0.05), SGD_ENOTFOUND);
    sgdt_assert_status(sgd_optim_set_group(whole, 1, 1, -0.5), SGD_ERANGE);
    sgdt_assert_status(sgd_optim_set_group(NULL, 1, 1, 0), SGD_EINVAL);
    /* set_group(0) is the optimizer's weight_decay. */
    sgdt_assert_status(sgd_optim_set_group(whole, 0, 0.5, 0.2), SGD_OK);
    assert_true(get(whole, "weight_decay") == 0.2);
    sgdt_assert_status(sgd_optim_get_group(whole, 0, NULL, NULL, &sc, NULL), SGD_OK);
    assert_true(sc == 0.5);
    /* Still steps, with every range covered. */
    sgdt_assert_status(sgd_optim_step(whole, x, g, 0.01, NULL), SGD_OK);
    sgd_optim_free(whole);
    sgd_optim_free(part_a);
    sgd_optim_free(part_b);
    sgd_optim_free(part_c);
    assert_int_equal(sgd_optim_group_count(NULL), 0);
}

/* Splitting the arena into groups of equal settings changes nothing, to the bit (and sgd's first-step buffer). */
static void test_groups_split_is_exact(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_REF_SPECS; s++) {
        const size_t n = 203;
        sgd_optim *a = make(ref_specs[s], n), *b = make(ref_specs[s], n);
        double wd = get(b, "weight_decay");
        sgdt_assert_status(sgd_optim_add_group(b, 3, 50, 1.0, wd, NULL), SGD_OK);
        sgdt_assert_status(sgd_optim_add_group(b, 117, 1, 1.0, wd, NULL), SGD_OK);
        sgdt_assert_status(sgd_optim_add_group(b, 53, 13, 1.0, wd, NULL), SGD_OK);
        sgd__rng rng;
        sgd__rng_seed(&rng, 5);
        float xa[203], xb[203], g[203];
        fill_random(&rng, xa, n, 1);
        memcpy(xb, xa, sizeof xa);
        for (int k = 0; k < 8; k++) {
            fill_random(&rng, g, n, 1);
            sgd_optim_step(a, xa, g, 0.03, NULL);
            sgd_optim_step(b, xb, g, 0.03, NULL);
        }
        if (memcmp(xa, xb, sizeof xa) != 0)
            fail_msg("%s: groups with equal settings changed the result", ref_specs[s]);
        sgd_optim_free(a);
        sgd_optim_free(b);
    }
}

/* ---------------------------------------------------------------- hygiene */

static void test_clip_norm(void **state)
{
    (void)state;
    const size_t n = 50;
    float x1[50], x2[50], g[50], gs[50];
    sgd__rng rng;
    sgd__rng_seed(&rng, 3);
    fill_random(&rng, x1, n, 1);
    memcpy(x2, x1, sizeof x1);
    fill_random(&rng, g, n, 3);
    double norm = 0;
    for (size_t i = 0; i < n; i++)
        norm += (double)g[i] * g[i];
    norm = sqrt(norm);
    double coef = 1.0 / (norm + 1e-6); /* torch.nn.utils.clip_grad_norm_(max_norm=1) */
    sgd_optim *a = make("sgd:lr=0.1,clip_norm=1", n), *b = make("sgd:lr=0.1", n);
    sgd_optim_step_info info;
    sgd_optim_step_info_init(&info);
    sgdt_assert_status(sgd_optim_step(a, x1, g, 0.1, &info), SGD_OK);
    assert_true(fabs(info.grad_norm - norm) <= 1e-6 * norm); /* the norm before clipping */
    assert_true(fabs(info.clip_scale - coef) <= 1e-6 * coef);
    for (size_t i = 0; i < n; i++)
        gs[i] = g[i] * (float)info.clip_scale;
    sgdt_assert_status(sgd_optim_step(b, x2, gs, 0.1, NULL), SGD_OK);
    assert_memory_equal(x1, x2, sizeof x1);
    assert_int_equal(info.clipped, 1);
    assert_int_equal(info.applied, 1);
    float mx = 0;
    for (size_t i = 0; i < n; i++)
        mx = fmaxf(mx, fabsf(g[i]));
    assert_true(info.grad_max_abs == mx);
    /* Within the bound: untouched. */
    sgd_optim_hygiene h;
    sgd_optim_hygiene_init(&h);
    h.clip_norm = 1e6;
    sgdt_assert_status(sgd_optim_set_hygiene(a, &h), SGD_OK);
    sgdt_assert_status(sgd_optim_step(a, x1, g, 0.1, &info), SGD_OK);
    sgdt_assert_status(sgd_optim_step(b, x2, g, 0.1, NULL), SGD_OK);
    assert_memory_equal(x1, x2, sizeof x1);
    assert_int_equal(info.clipped, 0);
    assert_true(info.clip_scale == 1.0);
    sgd_optim_stats stats;
    memset(&stats, 0, sizeof stats);
    stats.struct_size = sizeof stats;
    sgdt_assert_status(sgd_optim_get_stats(a, &stats), SGD_OK);
    assert_int_equal(stats.applied, 2);
    assert_int_equal(stats.clipped, 1);
    sgd_optim_free(a);
    sgd_optim_free(b);
}

static void test_clip_value(void **state)
{
    (void)state;
    const size_t n = 33;
    float x1[33], x2[33], g[33], gc[33];
    sgd__rng rng;
    sgd__rng_seed(&rng, 4);
    fill_random(&rng, x1, n, 1);
    memcpy(x2, x1, sizeof x1);
    fill_random(&rng, g, n, 2);
    for (size_t i = 0; i < n; i++)
        gc[i] = fminf(fmaxf(g[i], -0.5f), 0.5f);
    /* Value, then norm: the norm bound applies to the clamped gradient. */
    double norm_c = 0;
    for (size_t i = 0; i < n; i++)
        norm_c += (double)gc[i] * gc[i];
    norm_c = sqrt(norm_c);
    double coef = 1.0 / (norm_c + 1e-6);
    for (size_t i = 0; i < n; i++)
        gc[i] = gc[i] * (float)coef;
    sgd_optim *a = make("adam:clip_value=0.5,clip_norm=1", n), *b = make("adam", n);
    sgd_optim_step_info info;
    sgd_optim_step_info_init(&info);
    for (int k = 0; k < 3; k++) {
        sgdt_assert_status(sgd_optim_step(a, x1, g, 0.1, &info), SGD_OK);
        sgdt_assert_status(sgd_optim_step(b, x2, gc, 0.1, NULL), SGD_OK);
    }
    assert_memory_equal(x1, x2, sizeof x1);
    assert_int_equal(info.clipped, 1);
    assert_true(info.grad_norm > norm_c);
    sgd_optim_free(a);
    sgd_optim_free(b);
}

static void test_nonfinite(void **state)
{
    (void)state;
    const size_t n = 1000;
    float *x = malloc(n * sizeof *x), *x0 = malloc(n * sizeof *x), *g = malloc(n * sizeof *g);
    sgd__rng rng;
    sgd__rng_seed(&rng, 9);
    fill_random(&rng, x, n, 1);
    fill_random(&rng, g, n, 1);
    sgd_optim *o = make("adam:max_skips=2", n);
    sgd_optim_step(o, x, g, 0.1, NULL);
    memcpy(x0, x, n * sizeof *x);
    size_t bytes0, bytes1;
    unsigned char *s0 = export_all(o, &bytes0);

    sgd_optim_step_info info;
    sgd_optim_step_info_init(&info);
    const float bad[] = {NAN, INFINITY, -INFINITY};
    const size_t where[] = {n - 1, 0, 517};
    for (int k = 0; k < 2; k++) {
        g[where[k]] = bad[k];
        sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, &info), SGD_OK);
        assert_int_equal(info.applied, 0);
        assert_int_equal(info.nonfinite, 1);
        assert_int_equal(info.consecutive_skips, k + 1);
        assert_int_equal(info.step, 1);
        assert_true(!isfinite(info.grad_norm));
        g[where[k]] = 0.5f;
    }
    /* Parameters and state untouched, bit for bit. */
    assert_memory_equal(x, x0, n * sizeof *x);
    unsigned char *s1 = export_all(o, &bytes1);
    assert_int_equal(bytes0, bytes1);
    assert_memory_equal(s0, s1, bytes0);
    free(s1);
    /* A third skip in a row is past max_skips=2: SGD_EDIVERGED, still nothing changed. */
    g[where[2]] = bad[2];
    sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, &info), SGD_EDIVERGED);
    sgdt_assert_error_contains("grads[517]");
    sgdt_assert_error_contains("3 consecutive");
    assert_int_equal(info.applied, 0);
    assert_memory_equal(x, x0, n * sizeof *x);
    /* A good step resets the run of skips. */
    g[where[2]] = 0.5f;
    sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, &info), SGD_OK);
    assert_int_equal(info.applied, 1);
    assert_int_equal(info.step, 2);
    assert_int_equal(info.consecutive_skips, 0);
    sgd_optim_stats stats;
    memset(&stats, 0, sizeof stats);
    stats.struct_size = sizeof stats;
    sgdt_assert_status(sgd_optim_get_stats(o, &stats), SGD_OK);
    assert_int_equal(stats.applied, 2);
    assert_int_equal(stats.skipped, 2);
    assert_int_equal(stats.nonfinite, 3);
    assert_int_equal(stats.consecutive_skips, 0);

    /* Policy error: refused with the index, nothing changed. */
    sgd_optim_hygiene h;
    sgd_optim_hygiene_init(&h);
    h.nonfinite = SGD_NONFINITE_ERROR;
    sgdt_assert_status(sgd_optim_set_hygiene(o, &h), SGD_OK);
    memcpy(x0, x, n * sizeof *x);
    g[3] = NAN;
    sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, &info), SGD_ENONFINITE);
    sgdt_assert_error_contains("grads[3]");
    assert_memory_equal(x, x0, n * sizeof *x);
    /* Policy apply: the update goes through. */
    h.nonfinite = SGD_NONFINITE_APPLY;
    h.clip_norm = 1.0; /* no norm scaling with a non-finite norm */
    sgdt_assert_status(sgd_optim_set_hygiene(o, &h), SGD_OK);
    sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, &info), SGD_OK);
    assert_int_equal(info.applied, 1);
    assert_int_equal(info.nonfinite, 1);
    assert_true(isnan(x[3]));
    assert_true(isfinite(x[4]));
    assert_true(info.clip_scale == 1.0);
    /* Policy apply without clipping and without info: no gradient pass (nothing
     * asks for it), the same update, and the non-finite step is not counted. */
    h.clip_norm = 0.0;
    sgdt_assert_status(sgd_optim_set_hygiene(o, &h), SGD_OK);
    sgd_optim_stats before = {.struct_size = sizeof before}, after = {.struct_size = sizeof after};
    sgdt_assert_status(sgd_optim_get_stats(o, &before), SGD_OK);
    sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, NULL), SGD_OK);
    sgdt_assert_status(sgd_optim_get_stats(o, &after), SGD_OK);
    assert_int_equal(after.applied, before.applied + 1);
    assert_int_equal(after.nonfinite, before.nonfinite);
    assert_true(isnan(x[3]) && isfinite(x[4]));
    /* ...and with info the pass runs and counts it. */
    sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, &info), SGD_OK);
    sgdt_assert_status(sgd_optim_get_stats(o, &after), SGD_OK);
    assert_int_equal(after.nonfinite, before.nonfinite + 1);
    assert_int_equal(info.nonfinite, 1);
    /* No limit on skips with max_consecutive_skips = 0. */
    h.nonfinite = SGD_NONFINITE_SKIP;
    h.max_consecutive_skips = 0;
    sgdt_assert_status(sgd_optim_set_hygiene(o, &h), SGD_OK);
    for (int k = 0; k < 50; k++)
        sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, NULL), SGD_OK);
    sgd_optim_free(o);
    free(s0);
    free(x);
    free(x0);
    free(g);
}

/* The scan (vector body, block edges, tails): norm, max, clipped norm, NaN anywhere. */
static void test_scan_sizes(void **state)
{
    (void)state;
    const size_t sizes[] = {1, 63, 64, 65, 127, 4095, 4096, 4097, 8193, 10007};
    sgd__rng rng;
    sgd__rng_seed(&rng, 31);
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        const size_t n = sizes[z];
        float *x = calloc(n, sizeof *x), *g = malloc(n * sizeof *g);
        fill_random(&rng, g, n, 2.0);
        g[rng.s[0] % n] = 9.5f; /* the largest magnitude somewhere */
        double sq = 0, sqc = 0;
        float mx = 0;
        for (size_t i = 0; i < n; i++) {
            sq += (double)g[i] * g[i];
            double c = fmin(fabs(g[i]), 1.5);
            sqc += c * c;
            mx = fmaxf(mx, fabsf(g[i]));
        }
        sgd_optim *o = make("sgd:lr=0,clip_value=1.5,clip_norm=0.5,nonfinite=error", n);
        sgd_optim_step_info info;
        sgd_optim_step_info_init(&info);
        sgdt_assert_status(sgd_optim_step(o, x, g, 0.0, &info), SGD_OK);
        if (!(fabs(info.grad_norm - sqrt(sq)) <= 1e-6 * sqrt(sq)))
            fail_msg("n=%zu: norm %.9g, expected %.9g", n, info.grad_norm, sqrt(sq));
        assert_true(info.grad_max_abs == mx);
        double coef = 0.5 / (sqrt(sqc) + 1e-6);
        if (!(fabs(info.clip_scale - coef) <= 1e-6 * coef))
            fail_msg("n=%zu: clip scale %.9g, expected %.9g", n, info.clip_scale, coef);
        assert_int_equal(info.clipped, 1);
        /* A NaN or an infinity anywhere is found, and named. */
        const size_t where[] = {0, n / 2, n - 1, n > 64 ? 63 : 0, n > 4096 ? 4096 : n - 1};
        for (size_t w = 0; w < 5; w++) {
            float keep = g[where[w]];
            g[where[w]] = w % 2 ? INFINITY : NAN;
            sgdt_assert_status(sgd_optim_step(o, x, g, 0.0, &info), SGD_ENONFINITE);
            char needle[64];
            snprintf(needle, sizeof needle, "grads[%zu]", where[w]);
            sgdt_assert_error_contains(needle);
            g[where[w]] = keep;
        }
        sgd_optim_free(o);
        free(x);
        free(g);
    }
}

/* Finite but huge gradients overflow a float sum of squares: not "non-finite". */
static void test_huge_gradients(void **state)
{
    (void)state;
    float x[200] = {0}, g[200];
    for (int i = 0; i < 200; i++)
        g[i] = (i % 2 ? 1e30f : -3e37f);
    sgd_optim *o = make("sgd:lr=1e-38,clip_norm=1", 200);
    sgd_optim_step_info info;
    sgd_optim_step_info_init(&info);
    sgdt_assert_status(sgd_optim_step(o, x, g, 1e-38, &info), SGD_OK);
    assert_int_equal(info.applied, 1);
    assert_int_equal(info.nonfinite, 0);
    double want = sqrt(100 * ((double)1e30f * 1e30f) + 100 * ((double)3e37f * 3e37f));
    assert_true(fabs(info.grad_norm - want) <= 1e-6 * want);
    assert_true(info.clip_scale < 1e-37);
    sgd_optim_free(o);
}

static void test_hygiene_errors(void **state)
{
    (void)state;
    sgd_optim *o = make("adam", 4);
    sgd_optim_hygiene h;
    sgd_optim_hygiene_init(&h);
    assert_int_equal(h.max_consecutive_skips, 10);
    assert_int_equal(h.nonfinite, SGD_NONFINITE_SKIP);
    h.clip_norm = -1;
    sgdt_assert_status(sgd_optim_set_hygiene(o, &h), SGD_ERANGE);
    sgdt_assert_error_contains("clip_norm=-1");
    h.clip_norm = NAN;
    sgdt_assert_status(sgd_optim_set_hygiene(o, &h), SGD_ERANGE);
    h.clip_norm = 0;
    h.clip_value = INFINITY;
    sgdt_assert_status(sgd_optim_set_hygiene(o, &h), SGD_ERANGE);
    sgdt_assert_error_contains("clip_value=inf");
    h.clip_value = 0;
    h.nonfinite = 7;
    sgdt_assert_status(sgd_optim_set_hygiene(o, &h), SGD_EINVAL);
    sgdt_assert_error_contains("nonfinite=7");
    h.nonfinite = 0;
    h.struct_size = 8;
    sgdt_assert_status(sgd_optim_set_hygiene(o, &h), SGD_EINVAL);
    sgdt_assert_error_contains("struct_size=8");
    h.struct_size = sizeof h + 8; /* newer headers: an input struct with members this library would ignore */
    sgdt_assert_status(sgd_optim_set_hygiene(o, &h), SGD_EINVAL);
    sgdt_assert_error_contains("larger");
    sgdt_assert_status(sgd_optim_set_hygiene(o, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_set_hygiene(NULL, &h), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_get_hygiene(NULL, &h), SGD_EINVAL);
    sgd_optim_stats stats = {0};
    sgdt_assert_status(sgd_optim_get_stats(o, &stats), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_get_stats(o, NULL), SGD_EINVAL);
    /* Step argument checks. */
    float x[4] = {0}, g[4] = {0};
    sgdt_assert_status(sgd_optim_step(o, x, g, -0.1, NULL), SGD_ERANGE);
    sgdt_assert_error_contains("lr=-0.1");
    sgdt_assert_status(sgd_optim_step(o, x, g, NAN, NULL), SGD_ERANGE);
    sgdt_assert_status(sgd_optim_step(o, x, g, INFINITY, NULL), SGD_ERANGE);
    sgdt_assert_status(sgd_optim_step(o, NULL, g, 0.1, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("params");
    sgdt_assert_status(sgd_optim_step(o, x, NULL, 0.1, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_step(NULL, x, g, 0.1, NULL), SGD_EINVAL);
    sgd_optim_step_info info = {0};
    sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, &info), SGD_EINVAL);
    sgdt_assert_error_contains("struct_size=0");
    int64_t step;
    sgdt_assert_status(sgd_optim_get_step(o, &step), SGD_OK);
    assert_int_equal(step, 0); /* none of those stepped */
    /* An older, shorter step_info is filled only as far as it goes. */
    unsigned char raw[sizeof(sgd_optim_step_info) + 16];
    memset(raw, 0xAB, sizeof raw);
    sgd_optim_step_info_init((sgd_optim_step_info *)raw);
    sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, (sgd_optim_step_info *)raw), SGD_OK);
    assert_int_equal(raw[sizeof(sgd_optim_step_info)], 0xAB);
    sgd_optim_free(o);
    sgd_optim_free(NULL);
    sgd_optim_vtable_init(NULL);
    sgd_optim_hygiene_init(NULL);
    sgd_optim_step_info_init(NULL);
    assert_string_equal(sgd_optim_name(NULL), "");
    assert_int_equal(sgd_optim_size(NULL), 0);
}

/* ------------------------------------------------------------------ state */

static void test_step_counter(void **state)
{
    (void)state;
    /* Adam's bias correction follows the counter: set_step(k) then a step == step k+1. */
    float xa[5] = {1, 2, 3, 4, 5}, xb[5] = {1, 2, 3, 4, 5}, g[5] = {0.1f, -0.2f, 0.3f, -0.4f, 0.5f};
    sgd_optim *a = make("adam", 5), *b = make("adam", 5);
    int64_t s = -1;
    for (int k = 0; k < 4; k++)
        sgd_optim_step(a, xa, g, 0.01, NULL);
    sgdt_assert_status(sgd_optim_get_step(a, &s), SGD_OK);
    assert_int_equal(s, 4);
    sgdt_assert_status(sgd_optim_set_step(a, 100), SGD_OK);
    sgdt_assert_status(sgd_optim_get_step(a, &s), SGD_OK);
    assert_int_equal(s, 100);
    sgdt_assert_status(sgd_optim_set_step(a, -1), SGD_ERANGE);
    sgdt_assert_error_contains("step=-1");
    sgdt_assert_status(sgd_optim_set_step(NULL, 1), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_get_step(NULL, &s), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_get_step(a, NULL), SGD_EINVAL);
    /* Reset: state as new, counter 0, settings kept. */
    sgdt_assert_status(sgd_optim_set(a, "beta1", 0.8), SGD_OK);
    sgdt_assert_status(sgd_optim_set(b, "beta1", 0.8), SGD_OK);
    sgdt_assert_status(sgd_optim_reset(a), SGD_OK);
    sgdt_assert_status(sgd_optim_get_step(a, &s), SGD_OK);
    assert_int_equal(s, 0);
    memcpy(xa, xb, sizeof xa);
    for (int k = 0; k < 3; k++) {
        sgd_optim_step(a, xa, g, 0.01, NULL);
        sgd_optim_step(b, xb, g, 0.01, NULL);
    }
    assert_memory_equal(xa, xb, sizeof xa);
    sgdt_assert_status(sgd_optim_reset(NULL), SGD_EINVAL);
    sgd_optim_free(a);
    sgd_optim_free(b);
}

static void test_state_names(void **state)
{
    (void)state;
    struct {
        const char *spec;
        const char *names;
    } cases[] = {
        {"sgd:lr=1", "step"},
        {"sgd:lr=1,momentum=0.9", "step momentum_buffer scalars"},
        {"adagrad", "step sum"},
        {"rmsprop", "step square_avg"},
        {"rmsprop:centered=1", "step square_avg grad_avg"},
        {"rmsprop:momentum=0.1", "step square_avg momentum_buffer"},
        {"rmsprop:momentum=0.1,centered=1", "step square_avg grad_avg momentum_buffer"},
        {"adam", "step exp_avg exp_avg_sq"},
        {"adamw:amsgrad=1", "step exp_avg exp_avg_sq max_exp_avg_sq"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sgd_optim *o = make(cases[c].spec, 7);
        char all[256] = "";
        for (size_t i = 0; i < sgd_optim_state_count(o); i++) {
            const char *name;
            int32_t type;
            size_t len;
            sgdt_assert_status(sgd_optim_state_describe(o, i, &name, &type, &len), SGD_OK);
            if (i)
                strcat(all, " ");
            strcat(all, name);
            size_t idx;
            sgdt_assert_status(sgd_optim_state_find(o, name, &idx), SGD_OK);
            assert_int_equal(idx, i);
            if (strcmp(name, "step") == 0)
                assert_true(type == SGD_STATE_I64 && len == 1);
            else if (strcmp(name, "scalars") == 0)
                assert_true(type == SGD_STATE_F64 && len == 1);
            else
                assert_true(type == SGD_STATE_F32 && len == 7);
        }
        if (strcmp(all, cases[c].names) != 0)
            fail_msg("%s: state arrays '%s', expected '%s'", cases[c].spec, all, cases[c].names);
        size_t idx;
        sgdt_assert_status(sgd_optim_state_find(o, "nope", &idx), SGD_ENOTFOUND);
        sgdt_assert_error_contains("'nope'");
        sgdt_assert_status(sgd_optim_state_describe(o, sgd_optim_state_count(o), NULL, NULL, NULL), SGD_ENOTFOUND);
        sgd_optim_free(o);
    }
}

/* Export after k steps, import into a fresh optimizer: both continue bit for bit. */
static void test_export_import_exact(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_REF_SPECS; s++) {
        const size_t n = 77;
        sgd_optim *a = make(ref_specs[s], n), *b = make(ref_specs[s], n);
        sgd__rng rng;
        sgd__rng_seed(&rng, 100 + s);
        float xa[77], xb[77], g[77];
        fill_random(&rng, xa, n, 1);
        for (int k = 0; k < 5; k++) {
            fill_random(&rng, g, n, 1);
            sgd_optim_step(a, xa, g, 0.02 * (k + 1), NULL);
        }
        size_t bytes;
        unsigned char *blob = export_all(a, &bytes);
        import_all(b, blob);
        free(blob);
        memcpy(xb, xa, sizeof xa);
        for (int k = 0; k < 7; k++) {
            fill_random(&rng, g, n, 1);
            sgd_optim_step(a, xa, g, 0.01 * (k + 1), NULL);
            sgd_optim_step(b, xb, g, 0.01 * (k + 1), NULL);
        }
        if (memcmp(xa, xb, sizeof xa) != 0)
            fail_msg("%s: the restored optimizer did not continue bit for bit", ref_specs[s]);
        unsigned char *ba = export_all(a, &bytes), *bb = export_all(b, &bytes);
        assert_memory_equal(ba, bb, bytes);
        free(ba);
        free(bb);
        sgd_optim_free(a);
        sgd_optim_free(b);
    }
}

/* An sgd restored before its first step must still take the first-step path. */
static void test_sgd_first_step_flag(void **state)
{
    (void)state;
    sgd_optim *a = make("sgd:lr=0.1,momentum=0.9,dampening=0.5", 3);
    sgd_optim *b = make("sgd:lr=0.1,momentum=0.9,dampening=0.5", 3);
    float xa[3] = {1, 1, 1}, xb[3] = {1, 1, 1}, g[3] = {1, 2, 3};
    size_t idx;
    sgdt_assert_status(sgd_optim_state_find(b, "scalars", &idx), SGD_OK);
    double flag = 1;
    sgdt_assert_status(sgd_optim_state_export(b, idx, &flag, sizeof flag), SGD_OK);
    assert_true(flag == 0);
    sgd_optim_step(a, xa, g, 0.1, NULL);
    sgdt_assert_status(sgd_optim_state_export(a, idx, &flag, sizeof flag), SGD_OK);
    assert_true(flag == 1);
    /* torch: the first step copies the gradient into the buffer (no dampening): x -= lr*g. */
    for (int i = 0; i < 3; i++)
        assert_float_equal(xa[i], 1 - 0.1f * g[i], 1e-7);
    /* reset: the buffer is "None" again */
    sgdt_assert_status(sgd_optim_reset(a), SGD_OK);
    sgdt_assert_status(sgd_optim_state_export(a, idx, &flag, sizeof flag), SGD_OK);
    assert_true(flag == 0);
    xa[0] = xa[1] = xa[2] = 1;
    sgd_optim_step(a, xa, g, 0.1, NULL);
    for (int i = 0; i < 3; i++)
        assert_float_equal(xa[i], 1 - 0.1f * g[i], 1e-7);
    /* Import a corrupt flag: refused. */
    flag = 0.5;
    sgdt_assert_status(sgd_optim_state_import(b, idx, &flag, sizeof flag), SGD_ERANGE);
    sgdt_assert_error_contains("import_scalars");
    /* set momentum to 0 before the first step: no buffer use, buffer initialised later. */
    sgdt_assert_status(sgd_optim_set(b, "momentum", 0), SGD_OK);
    sgd_optim_step(b, xb, g, 0.1, NULL);
    sgdt_assert_status(sgd_optim_state_export(b, idx, &flag, sizeof flag), SGD_OK);
    assert_true(flag == 0);
    sgd_optim_free(a);
    sgd_optim_free(b);
}

static void test_import_errors(void **state)
{
    (void)state;
    sgd_optim *o = make("adam", 4);
    float slot[4] = {1, 2, 3, 4};
    size_t idx;
    sgdt_assert_status(sgd_optim_state_find(o, "exp_avg", &idx), SGD_OK);
    sgdt_assert_status(sgd_optim_state_import(o, idx, slot, 12), SGD_ESHAPE);
    sgdt_assert_error_contains("exp_avg");
    sgdt_assert_status(sgd_optim_state_export(o, idx, slot, 20), SGD_ESHAPE);
    float check[4];
    sgdt_assert_status(sgd_optim_state_export(o, idx, check, sizeof check), SGD_OK);
    assert_true(check[0] == 0 && check[2] == 0); /* unchanged by the refused import */
    /* A diverged state (NaN, infinity) imports back bit for bit. */
    slot[2] = NAN;
    slot[3] = -INFINITY;
    sgdt_assert_status(sgd_optim_state_import(o, idx, slot, sizeof slot), SGD_OK);
    sgdt_assert_status(sgd_optim_state_export(o, idx, check, sizeof check), SGD_OK);
    assert_memory_equal(check, slot, sizeof slot);
    int64_t step = -3;
    sgdt_assert_status(sgd_optim_state_import(o, 0, &step, sizeof step), SGD_ERANGE);
    sgdt_assert_error_contains("step=-3");
    step = 42;
    sgdt_assert_status(sgd_optim_state_import(o, 0, &step, sizeof step), SGD_OK);
    sgdt_assert_status(sgd_optim_get_step(o, &step), SGD_OK);
    assert_int_equal(step, 42);
    sgdt_assert_status(sgd_optim_state_import(o, 9, &step, sizeof step), SGD_ENOTFOUND);
    sgdt_assert_status(sgd_optim_state_import(o, 0, NULL, 8), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_state_export(o, 0, NULL, 8), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_state_import(NULL, 0, &step, 8), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_state_export(NULL, 0, &step, 8), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_state_describe(NULL, 0, NULL, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_state_find(o, NULL, &idx), SGD_EINVAL);
    assert_int_equal(sgd_optim_state_count(NULL), 0);
    sgd_optim_free(o);
}

/* ------------------------------------------------------- host optimizers */

/*
 * A host optimizer: heavy-ball momentum with a "velocity" slot, a hyperparameter
 * "beta", scalar state counting the updates it has seen, and checks of what
 * the library hands it.
 */
typedef struct host {
    double beta;
    double updates;
    int destroyed;
    int init_calls;
    int fail_step;    /* return this from step if non-zero */
    int misaligned;   /* a slot whose arena start was not 64-byte aligned */
    int bad_args;     /* args not as documented */
    double last_lr;
    double last_scale, last_clip;
    const float *last_grads;
} host;

static int host_init(float *const *slots, size_t n, void *user)
{
    host *h = user;
    h->init_calls++;
    for (size_t i = 0; i < n; i++)
        slots[0][i] = 0.0f;
    return 0;
}

static int host_step(float *params, const float *grads, float *const *slots, size_t n, double lr,
                     const sgd_optim_step_args *a, void *user)
{
    host *h = user;
    if (h->fail_step)
        return h->fail_step;
    if (((uintptr_t)(slots[0] - a->offset) & 63u) != 0)
        h->misaligned = 1;
    if (a->struct_size != sizeof *a || a->call >= a->calls || a->step < 1)
        h->bad_args = 1;
    h->last_lr = lr;
    h->last_scale = a->grad_scale;
    h->last_clip = a->clip_value;
    h->last_grads = grads - a->offset;
    float *v = slots[0];
    for (size_t i = 0; i < n; i++) {
        v[i] = (float)h->beta * v[i] + grads[i] + (float)a->weight_decay * params[i];
        params[i] -= (float)lr * v[i];
    }
    if (a->call + 1 == a->calls)
        h->updates++;
    return 0;
}

static int host_export(double *out, size_t count, void *user)
{
    host *h = user;
    if (count != 1)
        return SGD_ESHAPE;
    out[0] = h->updates;
    return 0;
}

static int host_import(const double *in, size_t count, void *user)
{
    host *h = user;
    if (count != 1 || in[0] < 0)
        return SGD_ERANGE;
    h->updates = in[0];
    return 0;
}

static int host_set(const char *name, double value, void *user)
{
    host *h = user;
    if (strcmp(name, "beta") != 0)
        return SGD_ENOTFOUND;
    if (!(value >= 0 && value < 1))
        return SGD_ERANGE;
    h->beta = value;
    return 0;
}

static int host_get(const char *name, double *value, void *user)
{
    host *h = user;
    if (strcmp(name, "beta") != 0)
        return SGD_ENOTFOUND;
    *value = h->beta;
    return 0;
}

static void host_destroy(void *user)
{
    ((host *)user)->destroyed++;
}

static const char *const host_slot_names[] = {"velocity"};

static void host_vtable(sgd_optim_vtable *vt)
{
    sgd_optim_vtable_init(vt);
    vt->name = "heavy-ball";
    vt->n_slots = 1;
    vt->n_scalars = 1;
    vt->slot_names = host_slot_names;
    vt->init = host_init;
    vt->step = host_step;
    vt->export_scalars = host_export;
    vt->import_scalars = host_import;
    vt->set_hparam = host_set;
    vt->get_hparam = host_get;
    vt->destroy = host_destroy;
}

/* Linear regression y = X w* + b*: the loss and its gradient, in double, returned as floats. */
#define LR_ROWS 64
#define LR_COLS 3
static double linreg(const float *w, float *grad, double X[LR_ROWS][LR_COLS], const double *y)
{
    double loss = 0, gw[LR_COLS + 1] = {0};
    for (int r = 0; r < LR_ROWS; r++) {
        double pred = w[LR_COLS];
        for (int c = 0; c < LR_COLS; c++)
            pred += w[c] * X[r][c];
        double e = pred - y[r];
        loss += e * e / LR_ROWS;
        for (int c = 0; c < LR_COLS; c++)
            gw[c] += 2 * e * X[r][c] / LR_ROWS;
        gw[LR_COLS] += 2 * e / LR_ROWS;
    }
    for (int c = 0; c <= LR_COLS; c++)
        grad[c] = (float)gw[c];
    return loss;
}

static void make_regression(double X[LR_ROWS][LR_COLS], double *y)
{
    sgd__rng rng;
    sgd__rng_seed(&rng, 2024);
    const double w[LR_COLS] = {1.5, -2.0, 0.5}, b = 0.3;
    for (int r = 0; r < LR_ROWS; r++) {
        y[r] = b;
        for (int c = 0; c < LR_COLS; c++) {
            X[r][c] = sgd__rng_normal(&rng);
            y[r] += w[c] * X[r][c];
        }
    }
}

/* Counters and state from a caller or a file are range-checked before any arithmetic (issue 12). */
/* Every built-in kind: the slots with a domain refuse a negative number, the others take any. */
static void test_slot_domains_every_kind(void **state)
{
    (void)state;
    static const char *const nonneg[] = {"sum", "exp_avg_sq", "max_exp_avg_sq", "square_avg", "acc_delta",
                                         "exp_inf", "step_size"};
    int checked = 0;
    for (size_t k = 0; sgd_optim_builtin_name(k) != NULL; k++) {
        char spec[128];
        snprintf(spec, sizeof spec, "%s:lr=0.01%s", sgd_optim_builtin_name(k),
                 strcmp(sgd_optim_builtin_name(k), "sgd") == 0 ? ",momentum=0.9" : "");
        sgd_optim *o = NULL;
        if (sgd_optim_new(&o, spec, 4, NULL) != SGD_OK)
            fail_msg("%s: %s", spec, sgd_error_last());
        for (size_t i = 1; i < sgd_optim_state_count(o); i++) {
            const char *name;
            int32_t type;
            size_t len;
            sgdt_assert_status(sgd_optim_state_describe(o, i, &name, &type, &len), SGD_OK);
            if (type != SGD_STATE_F32)
                continue;
            bool domain = false;
            for (size_t j = 0; j < sizeof nonneg / sizeof *nonneg; j++)
                domain = domain || strcmp(name, nonneg[j]) == 0;
            float v[4] = {1, 2, -3, 4};
            sgdt_assert_status(sgd_optim_state_import(o, i, v, sizeof v), domain ? SGD_ERANGE : SGD_OK);
            if (domain) {
                sgdt_assert_error_contains(name);
                sgdt_assert_error_contains("[2]");
                checked++;
            }
        }
        sgd_optim_free(o);
    }
    print_message("# %d slots with a domain checked over the built-in kinds\n", checked);
    assert_true(checked >= 12);
}

/* A growth_rate below 1 shrinks Prodigy's d every step, as in the reference; the product underflows to 0 and the
 * step exports that 0. fuzz_optim found the import refusing it. d_max only grows from d0, so <= 0 stays refused. */
static void test_prodigy_d_underflow_roundtrip(void **state)
{
    (void)state;
    float x[4] = {1, 2, 3, 4}, g[4] = {0.1f, -0.2f, 0.3f, -0.4f};
    sgd_optim *o = make("prodigy:growth_rate=1e-300", 4);
    size_t idx;
    sgdt_assert_status(sgd_optim_state_find(o, "scalars", &idx), SGD_OK);
    double sc[3] = {1, 1, 1};
    for (int k = 0; k < 4 && sc[0] != 0.0; k++) {
        sgdt_assert_status(sgd_optim_step(o, x, g, 1.0, NULL), SGD_OK);
        sgdt_assert_status(sgd_optim_state_export(o, idx, sc, sizeof sc), SGD_OK);
    }
    assert_true(sc[0] == 0.0);
    assert_true(sc[1] > 0.0);
    sgdt_assert_status(sgd_optim_state_import(o, idx, sc, sizeof sc), SGD_OK);
    /* With d = 0 the steps leave the parameters where they are, and d stays 0. */
    float before[4];
    memcpy(before, x, sizeof x);
    sgdt_assert_status(sgd_optim_step(o, x, g, 1.0, NULL), SGD_OK);
    assert_memory_equal(before, x, sizeof x);
    double bad[3] = {-1e-300, sc[1], sc[2]};
    sgdt_assert_status(sgd_optim_state_import(o, idx, bad, sizeof bad), SGD_ERANGE);
    sgdt_assert_error_contains("d must be >= 0");
    double bad_max[3] = {0.0, 0.0, sc[2]};
    sgdt_assert_status(sgd_optim_state_import(o, idx, bad_max, sizeof bad_max), SGD_ERANGE);
    sgdt_assert_error_contains("d_max > 0");
    sgd_optim_free(o);
}

static void test_counter_and_domain_limits(void **state)
{
    (void)state;
    float x[4] = {1, 2, 3, 4}, g[4] = {0.1f, -0.2f, 0.3f, -0.4f};
    sgd_optim *o = make("adam:amsgrad=1", 4);
    /* set_step(INT64_MAX) was accepted, and the next step overflowed computing step + 1. */
    sgdt_assert_status(sgd_optim_set_step(o, INT64_MAX), SGD_ERANGE);
    sgdt_assert_error_contains("2^53");
    sgdt_assert_status(sgd_optim_set_step(o, SGD_OPTIM_MAX_STEP + 1), SGD_ERANGE);
    sgdt_assert_status(sgd_optim_set_step(o, SGD_OPTIM_MAX_STEP - 1), SGD_OK);
    sgdt_assert_status(sgd_optim_step(o, x, g, 0.01, NULL), SGD_OK);
    /* At the limit: refused with a message, never an overflow. */
    sgdt_assert_status(sgd_optim_step(o, x, g, 0.01, NULL), SGD_EOVERFLOW);
    sgdt_assert_error_contains("limit");
    int64_t step = INT64_MAX, got = -1;
    sgdt_assert_status(sgd_optim_state_import(o, 0, &step, sizeof step), SGD_ERANGE);
    sgdt_assert_status(sgd_optim_get_step(o, &got), SGD_OK);
    assert_int_equal(got, SGD_OPTIM_MAX_STEP);
    /* The counter at its limit exports and imports back (fuzz_optim found the import refusing it). */
    sgdt_assert_status(sgd_optim_state_export(o, 0, &step, sizeof step), SGD_OK);
    assert_int_equal(step, SGD_OPTIM_MAX_STEP);
    sgdt_assert_status(sgd_optim_state_import(o, 0, &step, sizeof step), SGD_OK);
    sgdt_assert_status(sgd_optim_set_step(o, SGD_OPTIM_MAX_STEP), SGD_OK);
    step = SGD_OPTIM_MAX_STEP + 1;
    sgdt_assert_status(sgd_optim_state_import(o, 0, &step, sizeof step), SGD_ERANGE);
    sgdt_assert_error_contains("2^53");
    /* A negative second moment made the next update NaN: refused, and nothing changes. */
    static const char *const nonneg[] = {"exp_avg_sq", "max_exp_avg_sq"};
    for (size_t k = 0; k < 2; k++) {
        size_t idx;
        sgdt_assert_status(sgd_optim_state_find(o, nonneg[k], &idx), SGD_OK);
        float before[4], v[4] = {0.5f, -1e-30f, 1, 2}, after[4];
        sgdt_assert_status(sgd_optim_state_export(o, idx, before, sizeof before), SGD_OK);
        sgdt_assert_status(sgd_optim_state_import(o, idx, v, sizeof v), SGD_ERANGE);
        sgdt_assert_error_contains(nonneg[k]);
        sgdt_assert_error_contains("[1]");
        sgdt_assert_status(sgd_optim_state_export(o, idx, after, sizeof after), SGD_OK);
        assert_memory_equal(before, after, sizeof after);
        /* NaN, +inf and -0 are a diverged or a zero state's values: they import as saved. */
        float ok[4] = {NAN, INFINITY, -0.0f, 3};
        sgdt_assert_status(sgd_optim_state_import(o, idx, ok, sizeof ok), SGD_OK);
    }
    /* exp_avg (a first moment) may be negative. */
    size_t m;
    sgdt_assert_status(sgd_optim_state_find(o, "exp_avg", &m), SGD_OK);
    float neg[4] = {-1, -2, -3, -4};
    sgdt_assert_status(sgd_optim_state_import(o, m, neg, sizeof neg), SGD_OK);
    sgd_optim_free(o);
    /* Every built-in accumulator: Adagrad's sum, RMSprop's square_avg (not the centered grad_avg). */
    static const char *const specs[][3] = {{"adagrad", "sum", NULL},
                                           {"rmsprop:centered=1,momentum=0.9", "square_avg", "grad_avg"}};
    for (size_t k = 0; k < 2; k++) {
        o = make(specs[k][0], 4);
        size_t idx;
        float v[4] = {1, 1, -2, 1};
        sgdt_assert_status(sgd_optim_state_find(o, specs[k][1], &idx), SGD_OK);
        sgdt_assert_status(sgd_optim_state_import(o, idx, v, sizeof v), SGD_ERANGE);
        sgdt_assert_error_contains(specs[k][1]);
        if (specs[k][2] != NULL) {
            sgdt_assert_status(sgd_optim_state_find(o, specs[k][2], &idx), SGD_OK);
            sgdt_assert_status(sgd_optim_state_import(o, idx, v, sizeof v), SGD_OK);
        }
        sgd_optim_free(o);
    }
}

static void test_host_optimizer_trains(void **state)
{
    (void)state;
    host h = {.beta = 0.9};
    sgd_optim_vtable vt;
    host_vtable(&vt);
    sgd_optim *o = NULL;
    sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h, LR_COLS + 1, NULL), SGD_OK);
    assert_string_equal(sgd_optim_name(o), "heavy-ball");
    assert_int_equal(h.init_calls, 1);
    double X[LR_ROWS][LR_COLS], y[LR_ROWS];
    make_regression(X, y);
    float w[LR_COLS + 1] = {0}, g[LR_COLS + 1];
    double first = linreg(w, g, X, y), loss = first;
    for (int k = 0; k < 200; k++) {
        loss = linreg(w, g, X, y);
        sgdt_assert_status(sgd_optim_step(o, w, g, 0.05, NULL), SGD_OK);
    }
    loss = linreg(w, g, X, y);
    assert_true(loss < 1e-6 * first);
    assert_float_equal(w[0], 1.5, 1e-3);
    assert_float_equal(w[1], -2.0, 1e-3);
    assert_float_equal(w[3], 0.3, 1e-3);
    assert_int_equal(h.misaligned, 0);
    assert_int_equal(h.bad_args, 0);
    assert_true(h.updates == 200);

    /* Hyperparameters reach the host; "lr" and "weight_decay" are the library's. */
    sgdt_assert_status(sgd_optim_set(o, "beta", 0.5), SGD_OK);
    assert_true(h.beta == 0.5);
    assert_true(get(o, "beta") == 0.5);
    sgdt_assert_status(sgd_optim_set(o, "beta", 2), SGD_ERANGE);
    sgdt_assert_error_contains("beta=2");
    sgdt_assert_status(sgd_optim_set(o, "gamma", 2), SGD_ENOTFOUND);
    sgdt_assert_error_contains("'gamma'");
    double v;
    sgdt_assert_status(sgd_optim_get(o, "gamma", &v), SGD_ENOTFOUND);
    assert_true(get(o, "lr") == 0 && get(o, "weight_decay") == 0);
    sgdt_assert_status(sgd_optim_set(o, "lr", 0.05), SGD_OK);

    /* State: the slot and the host's scalars, exported and restored. */
    assert_int_equal(sgd_optim_state_count(o), 3);
    size_t idx;
    sgdt_assert_status(sgd_optim_state_find(o, "velocity", &idx), SGD_OK);
    assert_int_equal(idx, 1);
    sgdt_assert_status(sgd_optim_state_find(o, "scalars", &idx), SGD_OK);
    double sc;
    sgdt_assert_status(sgd_optim_state_export(o, idx, &sc, sizeof sc), SGD_OK);
    assert_true(sc == 200);
    sc = -1;
    sgdt_assert_status(sgd_optim_state_import(o, idx, &sc, sizeof sc), SGD_ERANGE);
    sgdt_assert_error_contains("heavy-ball");
    sc = 7;
    sgdt_assert_status(sgd_optim_state_import(o, idx, &sc, sizeof sc), SGD_OK);
    assert_true(h.updates == 7);

    /* A failing step: its status, the counter does not move. */
    int64_t before, after;
    sgd_optim_get_step(o, &before);
    h.fail_step = SGD_ERANGE;
    sgdt_assert_status(sgd_optim_step(o, w, g, 0.05, NULL), SGD_ERANGE);
    sgdt_assert_error_contains("step callback returned -4");
    h.fail_step = 17;
    sgdt_assert_status(sgd_optim_step(o, w, g, 0.05, NULL), SGD_ECALLBACK);
    sgdt_assert_error_contains("heavy-ball");
    sgd_optim_get_step(o, &after);
    assert_int_equal(before, after);
    h.fail_step = 0;
    sgdt_assert_status(sgd_optim_reset(o), SGD_OK);
    assert_int_equal(h.init_calls, 2);
    assert_int_equal(h.destroyed, 0);
    sgd_optim_free(o);
    assert_int_equal(h.destroyed, 1);
}

/* Without SGD_OPTIM_FUSED_CLIP the host gets clipped gradients from the library's buffer. */
static void test_host_clipping(void **state)
{
    (void)state;
    host h = {.beta = 0.0};
    sgd_optim_vtable vt;
    host_vtable(&vt);
    sgd_optim *o = NULL;
    sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h, 4, NULL), SGD_OK);
    sgdt_assert_status(sgd_optim_add_group(o, 2, 2, 0.5, 0.0, NULL), SGD_OK);
    float w[4] = {0, 0, 0, 0}, g[4] = {3, -4, 0, 0};
    sgd_optim_hygiene hy;
    sgd_optim_hygiene_init(&hy);
    hy.clip_norm = 1;
    sgdt_assert_status(sgd_optim_set_hygiene(o, &hy), SGD_OK);
    sgdt_assert_status(sgd_optim_step(o, w, g, 1.0, NULL), SGD_OK);
    assert_true(h.last_grads != g);
    assert_true(h.last_scale == 1.0 && h.last_clip == 0.0);
    assert_float_equal(w[0], -3 / (5 + 1e-6), 1e-6);
    assert_float_equal(w[1], 4 / (5 + 1e-6), 1e-6);
    assert_true(h.last_lr == 0.5); /* the last range is group 1: lr x 0.5 */
    /* Without clipping the host reads the caller's array. */
    sgd_optim_hygiene_init(&hy);
    sgdt_assert_status(sgd_optim_set_hygiene(o, &hy), SGD_OK);
    sgdt_assert_status(sgd_optim_step(o, w, g, 1.0, NULL), SGD_OK);
    assert_true(h.last_grads == g);
    sgd_optim_free(o);

    /* With the flag it gets the raw gradients and the factors. */
    vt.flags = SGD_OPTIM_FUSED_CLIP;
    host h2 = {.beta = 0.0};
    sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h2, 4, NULL), SGD_OK);
    hy.clip_norm = 1;
    hy.clip_value = 3.5;
    sgdt_assert_status(sgd_optim_set_hygiene(o, &hy), SGD_OK);
    sgdt_assert_status(sgd_optim_step(o, w, g, 1.0, NULL), SGD_OK);
    assert_true(h2.last_grads == g);
    assert_true(h2.last_clip == 3.5);
    assert_float_equal(h2.last_scale, 1 / (sqrt(9 + 3.5 * 3.5) + 1e-6), 1e-12);
    sgd_optim_free(o);
}

static void test_host_vtable_errors(void **state)
{
    (void)state;
    host h = {0};
    sgd_optim_vtable vt;
    sgd_optim *o = (sgd_optim *)&o;
    host_vtable(&vt);
    vt.name = NULL;
    sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h, 4, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("name is NULL");
    assert_null(o);
    const char *bad_names[] = {"", "has space", "semi;colon",
                               "a-name-that-is-far-too-long-for-the-library-to-accept-as-a-name-x"};
    for (size_t i = 0; i < 4; i++) {
        vt.name = bad_names[i];
        sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h, 4, NULL), SGD_EINVAL);
        sgdt_assert_error_contains("name");
    }
    host_vtable(&vt);
    vt.step = NULL;
    sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h, 4, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("step is NULL");
    host_vtable(&vt);
    vt.n_slots = SGD_OPTIM_MAX_SLOTS + 1;
    sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h, 4, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("n_slots=17");
    host_vtable(&vt);
    vt.n_scalars = SGD_OPTIM_MAX_SCALARS + 1;
    sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h, 4, NULL), SGD_EINVAL);
    host_vtable(&vt);
    vt.import_scalars = NULL;
    sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h, 4, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("import_scalars");
    const char *dup[] = {"a", "a"}, *reserved[] = {"step", "x"}, *nul[] = {"a", NULL};
    host_vtable(&vt);
    vt.n_slots = 2;
    vt.slot_names = dup;
    sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h, 4, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("used twice");
    vt.slot_names = reserved;
    sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h, 4, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("'step'");
    vt.slot_names = nul;
    sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h, 4, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("slot_names[1] is NULL");
    /* No names: slot0, slot1. */
    vt.slot_names = NULL;
    sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h, 4, NULL), SGD_OK);
    size_t idx;
    sgdt_assert_status(sgd_optim_state_find(o, "slot1", &idx), SGD_OK);
    assert_int_equal(idx, 2);
    sgd_optim_free(o);
    /* struct_size: too small refused; larger (a newer host) accepted, the tail ignored. */
    host_vtable(&vt);
    vt.struct_size = 8;
    sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h, 4, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("struct_size=8");
    struct {
        sgd_optim_vtable vt;
        void *future[4];
    } big;
    memset(&big, 0xFF, sizeof big);
    host_vtable(&big.vt);
    big.vt.struct_size = sizeof big;
    sgdt_assert_status(sgd_optim_new_custom(&o, &big.vt, &h, 4, NULL), SGD_OK);
    sgd_optim_free(o);
    /* A failing init: its status; destroy is not called (the host still owns user). */
    h.destroyed = 0;
    host_vtable(&vt);
    vt.init = NULL;
    vt.step = host_step;
    sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h, 4, NULL), SGD_OK);
    sgd_optim_free(o);
    assert_int_equal(h.destroyed, 1);
    sgdt_assert_status(sgd_optim_new_custom(&o, NULL, &h, 4, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_new_custom(NULL, &vt, &h, 4, NULL), SGD_EINVAL);
    /* Minimal vtable: name and step only. */
    sgd_optim_vtable_init(&vt);
    vt.name = "min";
    vt.step = host_step;
    vt.n_slots = 1;
    sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h, 4, NULL), SGD_OK);
    double v;
    sgdt_assert_status(sgd_optim_set(o, "beta", 1), SGD_ENOTFOUND);
    sgdt_assert_status(sgd_optim_get(o, "beta", &v), SGD_ENOTFOUND);
    assert_int_equal(sgd_optim_state_count(o), 2);
    sgd_optim_free(o);
}

static int failing_init(float *const *slots, size_t n, void *user)
{
    (void)slots, (void)n, (void)user;
    return -99;
}

static void test_host_init_failure(void **state)
{
    (void)state;
    host h = {0};
    sgd_optim_vtable vt;
    host_vtable(&vt);
    vt.init = failing_init;
    sgd_optim *o = (sgd_optim *)&o;
    sgdt_assert_status(sgd_optim_new_custom(&o, &vt, &h, 4, NULL), SGD_ECALLBACK);
    sgdt_assert_error_contains("init callback returned -99");
    assert_null(o);
    assert_int_equal(h.destroyed, 0);
}

/* ------------------------------------------------------ allocation and the hot path */

static sgd_status scenario_builtins(sgdt_alloc *t, void *ctx)
{
    (void)ctx;
    static const char *const specs[] = {"sgd:lr=0.1,momentum=0.9", "adagrad", "rmsprop:centered=1,momentum=0.2",
                                        "adamw:amsgrad=1"};
    for (size_t s = 0; s < 4; s++) {
        sgd_optim *o = NULL;
        sgd_status st = sgd_optim_new(&o, specs[s], 10, &t->base);
        if (st != SGD_OK) {
            assert_null(o);
            return st;
        }
        if ((st = sgd_optim_add_group(o, 2, 3, 0.5, 0, NULL)) != SGD_OK ||
            (st = sgd_optim_add_group(o, 7, 3, 0.5, 0, NULL)) != SGD_OK) {
            /* The optimizer is unchanged and still usable. */
            float x[10] = {0}, g[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
            sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, NULL), SGD_OK);
            sgd_optim_free(o);
            return st;
        }
        float x[10] = {0}, g[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
        sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, NULL), SGD_OK);
        sgd_optim_free(o);
    }
    return SGD_OK;
}

static void test_alloc_failures_builtin(void **state)
{
    (void)state;
    long n = sgdt_walk_alloc_failures(scenario_builtins, NULL);
    assert_true(n >= 4 * 4);
}

static sgd_status scenario_host(sgdt_alloc *t, void *ctx)
{
    (void)ctx;
    host h = {.beta = 0.5};
    sgd_optim_vtable vt;
    host_vtable(&vt);
    sgd_optim *o = NULL;
    sgd_status st = sgd_optim_new_custom(&o, &vt, &h, 16, &t->base);
    if (st != SGD_OK) {
        assert_int_equal(h.destroyed, 0);
        return st;
    }
    sgd_optim_hygiene hy;
    sgd_optim_hygiene_init(&hy);
    hy.clip_value = 1;
    st = sgd_optim_set_hygiene(o, &hy); /* allocates the clip buffer */
    if (st == SGD_OK)
        st = sgd_optim_add_group(o, 0, 4, 2, 0, NULL);
    float x[16] = {0}, g[16] = {1, -2, 3};
    sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, NULL), SGD_OK); /* usable whatever failed */
    sgd_optim_free(o);
    assert_int_equal(h.destroyed, 1);
    return st;
}

static void test_alloc_failures_host(void **state)
{
    (void)state;
    assert_true(sgdt_walk_alloc_failures(scenario_host, NULL) >= 4);
}

/* Steps allocate nothing: with groups, clipping, skipped steps, host and built-ins. */
static void test_step_allocates_nothing(void **state)
{
    (void)state;
    sgdt_alloc t;
    sgdt_alloc_init(&t);
    sgd_optim *a = NULL, *b = NULL;
    sgdt_assert_status(sgd_optim_new(&a, "adam:amsgrad=1,clip_norm=1,clip_value=0.5", 100, &t.base), SGD_OK);
    host h = {.beta = 0.5};
    sgd_optim_vtable vt;
    host_vtable(&vt);
    sgdt_assert_status(sgd_optim_new_custom(&b, &vt, &h, 100, &t.base), SGD_OK);
    sgd_optim_hygiene hy;
    sgd_optim_hygiene_init(&hy);
    hy.clip_norm = 0.1;
    sgdt_assert_status(sgd_optim_set_hygiene(b, &hy), SGD_OK);
    sgdt_assert_status(sgd_optim_add_group(a, 10, 10, 0.5, 0, NULL), SGD_OK);
    sgdt_assert_status(sgd_optim_add_group(b, 50, 10, 0.5, 0, NULL), SGD_OK);
    float x[100] = {0}, g[100];
    for (int i = 0; i < 100; i++)
        g[i] = (float)(i - 50);
    long calls = t.calls;
    for (int k = 0; k < 20; k++) {
        g[7] = k % 3 == 0 ? NAN : 1.0f;
        sgdt_assert_status(sgd_optim_step(a, x, g, 0.01, NULL), SGD_OK);
        sgdt_assert_status(sgd_optim_step(b, x, g, 0.01, NULL), SGD_OK);
    }
    assert_int_equal(t.calls, calls);
    sgd_optim_free(a);
    sgd_optim_free(b);
    assert_int_equal(t.live, 0);
}

/* Every built-in trains the regression problem. */
static void test_builtins_train(void **state)
{
    (void)state;
    static const char *const specs[] = {"sgd:lr=0.1", "sgd:lr=0.05,momentum=0.9,nesterov=1", "adagrad:lr=0.5",
                                        "rmsprop:lr=0.01", "adam:lr=0.05", "adamw:lr=0.05,weight_decay=0"};
    double X[LR_ROWS][LR_COLS], y[LR_ROWS];
    make_regression(X, y);
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        sgd_optim *o = make(specs[s], LR_COLS + 1);
        float w[LR_COLS + 1] = {0}, g[LR_COLS + 1];
        double first = linreg(w, g, X, y), loss = first;
        double lr = get(o, "lr");
        for (int k = 0; k < 500; k++) {
            linreg(w, g, X, y);
            sgdt_assert_status(sgd_optim_step(o, w, g, k < 400 ? lr : lr * 0.1, NULL), SGD_OK);
        }
        loss = linreg(w, g, X, y);
        if (!(loss < 1e-3 * first))
            fail_msg("%s: loss %g after 500 steps (from %g)", specs[s], loss, first);
        sgd_optim_free(o);
    }
}

/* An empty arena is allowed: steps count, nothing else happens. */
static void test_empty_arena(void **state)
{
    (void)state;
    sgd_optim *o = make("adam", 0);
    float dummy = 0;
    sgd_optim_step_info info;
    sgd_optim_step_info_init(&info);
    sgdt_assert_status(sgd_optim_step(o, &dummy, &dummy, 0.1, &info), SGD_OK);
    assert_int_equal(info.applied, 1);
    assert_true(info.grad_norm == 0);
    sgdt_assert_status(sgd_optim_add_group(o, 0, 1, 1, 0, NULL), SGD_ERANGE);
    size_t idx;
    float none;
    sgdt_assert_status(sgd_optim_state_find(o, "exp_avg", &idx), SGD_OK);
    sgdt_assert_status(sgd_optim_state_export(o, idx, &none, 0), SGD_OK);
    sgd_optim_free(o);
}

/* The init functions set struct_size (the layouts are pinned in test_abi.c). */
static void test_struct_init(void **state)
{
    (void)state;
    sgd_optim_vtable vt;
    memset(&vt, 0xFF, sizeof vt);
    sgd_optim_vtable_init(&vt);
    assert_int_equal(vt.struct_size, sizeof vt);
    assert_null(vt.step);
    assert_null(vt.name);
    assert_int_equal(vt.n_slots, 0);
    sgd_optim_step_info info;
    memset(&info, 0xFF, sizeof info);
    sgd_optim_step_info_init(&info);
    assert_int_equal(info.struct_size, sizeof info);
    assert_int_equal(info.applied, 0);
}

/* ------------------------------------------------- every kind, 0.2 additions */

/* Every built-in kind in at least one configuration that touches its options. */
static const char *const all_specs[] = {
    "sgd:lr=0.1,momentum=0.9,weight_decay=0.01",
    "sgd:lr=0.05,momentum=0.8,nesterov=1",
    "adagrad:lr_decay=0.1,initial_accumulator_value=0.2",
    "rmsprop:centered=1,momentum=0.5,weight_decay=0.05",
    "adam:amsgrad=1,weight_decay=0.1",
    "adamw:lr=0.01",
    "nadam:lr=0.01,momentum_decay=0.01,weight_decay=0.01",
    "radam:lr=0.01,weight_decay=0.05",
    "adamax:lr=0.02,eps=1e-4",
    "adadelta:lr=0.5,rho=0.8,weight_decay=0.01",
    "rprop:lr=0.01,eta_minus=0.3,eta_plus=1.5,step_size_max=0.5",
    "asgd:lr=0.05,lambd=0.001,alpha=0.6,t0=3,weight_decay=0.01",
    "lion:lr=0.001,weight_decay=0.1",
    "lamb:lr=0.01,weight_decay=0.01",
    "lars:lr=0.5,momentum=0.9,eta=0.01,weight_decay=0.001",
    "sgd_sf:lr=0.05,warmup_steps=3,weight_decay=0.01",
    "adamw_sf:lr=0.02,warmup_steps=2,r=0.5,weight_decay=0.01",
    "prodigy:d0=0.01,weight_decay=0.01",
    "prodigy:beta1=0,decouple=0,weight_decay=0.01,use_bias_correction=1,safeguard_warmup=1,growth_rate=1.1",
    "dadapt_adam:decouple=1,weight_decay=0.05,use_bias_correction=1",
    "dadapt_sgd:momentum=0.9,weight_decay=0.01,growth_rate=1.5",
    "dog:reps_rel=1e-4,weight_decay=0.01",
    "dog:init_eta=0.001",
};
#define N_ALL_SPECS (sizeof all_specs / sizeof all_specs[0])

static bool kind_is(const char *spec, const char *const *kinds)
{
    for (; *kinds; kinds++)
        if (strncmp(spec, *kinds, strlen(*kinds)) == 0 && spec[strlen(*kinds)] == ':')
            return true;
    return false;
}

/* Kinds whose step depends on how the arena is split: per-range trust ratios, and sums over the whole arena. */
static const char *const split_sensitive[] = {"lamb", "lars", "prodigy", "dadapt_adam", "dadapt_sgd", "dog", NULL};

/* Every kind is listed by sgd_optim_builtin_name(), and each one made from its name alone works. */
static void test_every_kind_listed(void **state)
{
    (void)state;
    size_t count = 0;
    for (size_t i = 0; sgd_optim_builtin_name(i) != NULL; i++, count++) {
        bool covered = false;
        for (size_t s = 0; s < N_ALL_SPECS; s++)
            if (kind_is(all_specs[s], (const char *const[]){sgd_optim_builtin_name(i), NULL}))
                covered = true;
        if (!covered)
            fail_msg("kind '%s' has no configuration in all_specs", sgd_optim_builtin_name(i));
    }
    assert_int_equal(count, 20);
}

/* Export after k steps, import into a fresh optimizer: both continue bit for bit (groups and tensors set). */
static void test_every_kind_resumes_exactly(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_ALL_SPECS; s++) {
        const size_t n = 77;
        const size_t tensors[] = {30, 7, 40};
        sgd_optim *a = make(all_specs[s], n), *b = make(all_specs[s], n);
        sgdt_assert_status(sgd_optim_add_group(a, 10, 20, 0.5, 0.0, NULL), SGD_OK);
        sgdt_assert_status(sgd_optim_add_group(b, 10, 20, 0.5, 0.0, NULL), SGD_OK);
        sgdt_assert_status(sgd_optim_set_tensors(a, tensors, 3), SGD_OK);
        sgdt_assert_status(sgd_optim_set_tensors(b, tensors, 3), SGD_OK);
        sgd__rng rng;
        sgd__rng_seed(&rng, 300 + s);
        float xa[77], xb[77], g[77];
        fill_random(&rng, xa, n, 1);
        for (int k = 0; k < 6; k++) {
            fill_random(&rng, g, n, 1);
            sgdt_assert_status(sgd_optim_step(a, xa, g, 0.02 * (k + 1), NULL), SGD_OK);
        }
        size_t bytes;
        unsigned char *blob = export_all(a, &bytes);
        import_all(b, blob);
        free(blob);
        memcpy(xb, xa, sizeof xa);
        for (int k = 0; k < 7; k++) {
            fill_random(&rng, g, n, 1);
            sgdt_assert_status(sgd_optim_step(a, xa, g, 0.01 * (k + 1), NULL), SGD_OK);
            sgdt_assert_status(sgd_optim_step(b, xb, g, 0.01 * (k + 1), NULL), SGD_OK);
        }
        for (size_t i = 0; i < n; i++)
            if (!isfinite(xa[i]))
                fail_msg("%s: x[%zu] = %g is not finite", all_specs[s], i, (double)xa[i]);
        if (memcmp(xa, xb, sizeof xa) != 0)
            fail_msg("%s: the restored optimizer did not continue bit for bit", all_specs[s]);
        unsigned char *ba = export_all(a, &bytes), *bb = export_all(b, &bytes);
        assert_memory_equal(ba, bb, bytes);
        free(ba);
        free(bb);
        /* a reset optimizer starts over as a new one would */
        sgd_optim *c = make(all_specs[s], n);
        sgdt_assert_status(sgd_optim_add_group(c, 10, 20, 0.5, 0.0, NULL), SGD_OK);
        sgdt_assert_status(sgd_optim_set_tensors(c, tensors, 3), SGD_OK);
        sgdt_assert_status(sgd_optim_reset(a), SGD_OK);
        fill_random(&rng, xa, n, 1);
        memcpy(xb, xa, sizeof xa);
        for (int k = 0; k < 3; k++) {
            fill_random(&rng, g, n, 1);
            sgd_optim_step(a, xa, g, 0.01, NULL);
            sgd_optim_step(c, xb, g, 0.01, NULL);
        }
        if (memcmp(xa, xb, sizeof xa) != 0)
            fail_msg("%s: after sgd_optim_reset() the optimizer did not start over", all_specs[s]);
        sgd_optim_free(a);
        sgd_optim_free(b);
        sgd_optim_free(c);
    }
}

/* Splitting the calls (groups of equal settings, tensor boundaries) changes nothing for element-wise kinds. */
static void test_every_kind_split(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_ALL_SPECS; s++) {
        if (kind_is(all_specs[s], split_sensitive))
            continue;
        const size_t n = 203, tensors[] = {100, 3, 100};
        sgd_optim *a = make(all_specs[s], n), *b = make(all_specs[s], n);
        double wd = get(b, "weight_decay");
        sgdt_assert_status(sgd_optim_add_group(b, 3, 50, 1.0, wd, NULL), SGD_OK);
        sgdt_assert_status(sgd_optim_set_tensors(b, tensors, 3), SGD_OK);
        sgd__rng rng;
        sgd__rng_seed(&rng, 5);
        float xa[203], xb[203], g[203];
        fill_random(&rng, xa, n, 1);
        memcpy(xb, xa, sizeof xa);
        for (int k = 0; k < 8; k++) {
            fill_random(&rng, g, n, 1);
            sgd_optim_step(a, xa, g, 0.03, NULL);
            sgd_optim_step(b, xb, g, 0.03, NULL);
        }
        if (memcmp(xa, xb, sizeof xa) != 0)
            fail_msg("%s: splitting the arena changed the result", all_specs[s]);
        sgd_optim_free(a);
        sgd_optim_free(b);
    }
}

/* LAMB and LARS with tensors are each tensor's own optimizer: one trust ratio per tensor. */
static void test_trust_ratio_per_tensor(void **state)
{
    (void)state;
    static const char *const specs[] = {"lamb:lr=0.01,weight_decay=0.01", "lars:lr=0.5,weight_decay=0.001"};
    for (size_t s = 0; s < 2; s++) {
        const size_t n = 50, sizes[] = {20, 30};
        sgd_optim *whole = make(specs[s], n), *t0 = make(specs[s], 20), *t1 = make(specs[s], 30);
        sgdt_assert_status(sgd_optim_set_tensors(whole, sizes, 2), SGD_OK);
        sgd_optim *plain = make(specs[s], n);
        sgd__rng rng;
        sgd__rng_seed(&rng, 9);
        float x[50], y[50], z[50], g[50];
        fill_random(&rng, x, n, 1);
        for (size_t i = 0; i < 20; i++)
            x[i] *= 10; /* tensors of different scales */
        memcpy(y, x, sizeof x);
        memcpy(z, x, sizeof x);
        for (int k = 0; k < 5; k++) {
            fill_random(&rng, g, n, 1);
            sgd_optim_step(whole, x, g, 0.1, NULL);
            sgd_optim_step(t0, y, g, 0.1, NULL);
            sgd_optim_step(t1, y + 20, g + 20, 0.1, NULL);
            sgd_optim_step(plain, z, g, 0.1, NULL);
        }
        assert_memory_equal(x, y, sizeof x);
        assert_true(memcmp(x, z, sizeof x) != 0); /* one ratio for the whole arena differs */
        sgd_optim_free(whole);
        sgd_optim_free(t0);
        sgd_optim_free(t1);
        sgd_optim_free(plain);
    }
}

static void test_set_tensors_errors(void **state)
{
    (void)state;
    sgd_optim *o = make("lamb", 10);
    const size_t ok[] = {4, 6}, zero[] = {4, 0, 6}, short_[] = {4, 5}, over[] = {4, 7};
    sgdt_assert_status(sgd_optim_set_tensors(NULL, ok, 2), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_set_tensors(o, NULL, 2), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_set_tensors(o, zero, 3), SGD_EINVAL);
    sgdt_assert_error_contains("sizes[1]=0");
    sgdt_assert_status(sgd_optim_set_tensors(o, short_, 2), SGD_ERANGE);
    sgdt_assert_error_contains("add up to 9");
    sgdt_assert_status(sgd_optim_set_tensors(o, over, 2), SGD_ERANGE);
    sgdt_assert_status(sgd_optim_set_tensors(o, ok, 2), SGD_OK);
    sgdt_assert_status(sgd_optim_set_tensors(o, NULL, 0), SGD_OK);
    sgd_optim_free(o);
}

/* The listing: lr and weight_decay first, defaults within bounds, names unique, flags of the configuration. */
static void test_hparam_listing(void **state)
{
    (void)state;
    for (size_t i = 0; sgd_optim_builtin_name(i) != NULL; i++) {
        const char *kind = sgd_optim_builtin_name(i);
        size_t count = sgd_optim_kind_hparam_count(kind);
        assert_true(count >= 3);
        for (size_t j = 0; j < count; j++) {
            sgd_optim_hparam h;
            sgd_optim_hparam_init(&h);
            sgdt_assert_status(sgd_optim_kind_hparam(kind, j, &h), SGD_OK);
            if (j == 0)
                assert_string_equal(h.name, "lr");
            if (j == 1)
                assert_string_equal(h.name, "weight_decay");
            if (!(h.flags & SGD_OPTIM_HPARAM_REQUIRED) && !(h.default_value >= h.lower && h.default_value <= h.upper))
                fail_msg("%s: %s: default %g outside [%g, %g]", kind, h.name, h.default_value, h.lower, h.upper);
            for (size_t k = 0; k < j; k++) {
                sgd_optim_hparam e;
                sgd_optim_hparam_init(&e);
                sgd_optim_kind_hparam(kind, k, &e);
                assert_true(strcmp(e.name, h.name) != 0);
            }
            /* A spec value just past a finite bound is refused with a message naming key and value. */
            if (j >= 2 && !(h.flags & SGD_OPTIM_HPARAM_BOOL) && isfinite(h.upper) && h.upper < 1e10) {
                char spec[256];
                snprintf(spec, sizeof spec, "%s:lr=0.1,%s=%.17g", kind, h.name, h.upper + 0.5);
                sgd_optim *o = (sgd_optim *)&o;
                sgdt_assert_status(sgd_optim_new(&o, spec, 3, NULL), SGD_ERANGE);
                assert_null(o);
                char needle[128];
                snprintf(needle, sizeof needle, "%s=%g", h.name, h.upper + 0.5);
                sgdt_assert_error_contains(needle);
            }
            if (j >= 2 && !(h.flags & SGD_OPTIM_HPARAM_BOOL) && isfinite(h.lower)) {
                char spec[256];
                snprintf(spec, sizeof spec, "%s:lr=0.1,%s=%.17g", kind, h.name, h.lower - 0.5);
                sgd_optim *o = NULL;
                sgdt_assert_status(sgd_optim_new(&o, spec, 3, NULL), SGD_ERANGE);
                char needle[128];
                snprintf(needle, sizeof needle, "%s=%g", h.name, h.lower - 0.5);
                sgdt_assert_error_contains(needle);
            }
            if (j >= 2 && (h.flags & SGD_OPTIM_HPARAM_BOOL)) {
                char spec[256];
                snprintf(spec, sizeof spec, "%s:lr=0.1,%s=2", kind, h.name);
                sgd_optim *o = NULL;
                sgdt_assert_status(sgd_optim_new(&o, spec, 3, NULL), SGD_EINVAL);
                char needle[128];
                snprintf(needle, sizeof needle, "%s=2", h.name);
                sgdt_assert_error_contains(needle);
            }
        }
        sgd_optim_hparam h;
        sgd_optim_hparam_init(&h);
        sgdt_assert_status(sgd_optim_kind_hparam(kind, count, &h), SGD_ENOTFOUND);
        /* The instance lists the same names, and its get returns the defaults. */
        char spec[64];
        snprintf(spec, sizeof spec, "%s:lr=0.1", kind);
        sgd_optim *o = make(spec, 3);
        assert_int_equal(sgd_optim_hparam_count(o), count);
        for (size_t j = 2; j < count; j++) {
            sgd_optim_hparam a, b;
            sgd_optim_hparam_init(&a);
            sgd_optim_hparam_init(&b);
            sgdt_assert_status(sgd_optim_kind_hparam(kind, j, &a), SGD_OK);
            sgdt_assert_status(sgd_optim_hparam_describe(o, j, &b), SGD_OK);
            assert_string_equal(a.name, b.name);
            assert_true(get(o, b.name) == a.default_value);
            sgd_optim_hparam c;
            sgd_optim_hparam_init(&c);
            sgdt_assert_status(sgd_optim_hparam_bounds(o, a.name, &c), SGD_OK);
            assert_true(c.lower == a.lower && c.upper == a.upper);
            /* run-time sets out of range are refused, naming key and value, nothing changed */
            if (!(b.flags & (SGD_OPTIM_HPARAM_BOOL | SGD_OPTIM_HPARAM_FIXED)) && isfinite(b.lower)) {
                sgdt_assert_status(sgd_optim_set(o, b.name, b.lower - 1.0), SGD_ERANGE);
                char needle[128];
                snprintf(needle, sizeof needle, "%s=%g", b.name, b.lower - 1.0);
                sgdt_assert_error_contains(needle);
                assert_true(get(o, b.name) == a.default_value);
            }
        }
        sgdt_assert_status(sgd_optim_hparam_describe(o, count, &h), SGD_ENOTFOUND);
        sgdt_assert_status(sgd_optim_hparam_bounds(o, "nope", &h), SGD_ENOTFOUND);
        sgd_optim_free(o);
    }
    /* Flags of a configuration; the momentum coefficient by name. */
    struct {
        const char *spec, *momentum;
    } mom[] = {{"sgd:lr=0.1", NULL},       {"sgd:lr=0.1,momentum=0.9", "momentum"},
               {"rmsprop", NULL},          {"rmsprop:momentum=0.1", "momentum"},
               {"adam", "beta1"},          {"nadam", "beta1"},
               {"lion", "beta1"},          {"lars:lr=1", "momentum"},
               {"adagrad", NULL},          {"sgd_sf", NULL},
               {"dadapt_sgd", "momentum"}, {"prodigy", "beta1"}};
    for (size_t i = 0; i < sizeof mom / sizeof mom[0]; i++) {
        sgd_optim *o = make(mom[i].spec, 3);
        const char *m = sgd_optim_momentum_name(o);
        if ((m == NULL) != (mom[i].momentum == NULL) || (m != NULL && strcmp(m, mom[i].momentum) != 0))
            fail_msg("%s: momentum name %s, expected %s", mom[i].spec, m ? m : "NULL",
                     mom[i].momentum ? mom[i].momentum : "NULL");
        sgd_optim_free(o);
    }
    sgd_optim *o = make("sgd:lr=0.1", 3);
    sgd_optim_hparam h;
    sgd_optim_hparam_init(&h);
    sgdt_assert_status(sgd_optim_hparam_bounds(o, "momentum", &h), SGD_OK);
    assert_true(h.flags & SGD_OPTIM_HPARAM_FIXED);
    sgdt_assert_status(sgd_optim_hparam_bounds(o, "lr", &h), SGD_OK);
    assert_true(h.flags & SGD_OPTIM_HPARAM_REQUIRED);
    h.struct_size = 4;
    sgdt_assert_status(sgd_optim_hparam_bounds(o, "lr", &h), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_hparam_describe(NULL, 0, &h), SGD_EINVAL);
    assert_int_equal(sgd_optim_hparam_count(NULL), 0);
    assert_null(sgd_optim_momentum_name(NULL));
    sgd_optim_free(o);
    assert_int_equal(sgd_optim_kind_hparam_count("lbfgs"), 0);
    assert_int_equal(sgd_optim_kind_hparam_count(NULL), 0);
    sgd_optim_hparam_init(&h);
    sgdt_assert_status(sgd_optim_kind_hparam("lbfgs", 0, &h), SGD_ENOTFOUND);
    sgdt_assert_status(sgd_optim_kind_hparam(NULL, 0, &h), SGD_EINVAL);
}

/* Errors of the 0.2 kinds' specs name the key and the value. */
static void test_spec_errors_new_kinds(void **state)
{
    (void)state;
    static const bad_spec bad[] = {
        {"rprop:step_size_min=1,step_size_max=0.5", SGD_ERANGE, "step_size_min=1 with step_size_max=0.5"},
        {"rprop:etas=0.5", SGD_ENOTFOUND, "eta_minus= and eta_plus="},
        {"rprop:step_sizes=1", SGD_ENOTFOUND, "step_size_min= and step_size_max="},
        {"rprop:eta_plus=1", SGD_ERANGE, "eta_plus=1: must be a finite number > 1"},
        {"rprop:eta_minus=0", SGD_ERANGE, "eta_minus=0: must be in (0, 1)"},
        {"nadam:betas=0.9", SGD_ENOTFOUND, "beta1= and beta2="},
        {"nadam:momentum_decay=-1", SGD_ERANGE, "momentum_decay=-1"},
        {"asgd:t0=-1", SGD_ERANGE, "t0=-1"},
        {"adadelta:rho=1.5", SGD_ERANGE, "rho=1.5"},
        {"lars:momentum=0.9", SGD_EINVAL, "lr is required"},
        {"lars:lr=1,eta=0", SGD_ERANGE, "eta=0"},
        {"sgd_sf:momentum=1", SGD_ERANGE, "momentum=1: must be in (0, 1)"},
        {"sgd_sf:warmup_steps=1.5", SGD_ERANGE, "warmup_steps=1.5: must be a whole number"},
        {"adamw_sf:beta1=0", SGD_ERANGE, "beta1=0"},
        {"prodigy:eps=0", SGD_ERANGE, "eps=0"},
        {"prodigy:d0=0", SGD_ERANGE, "d0=0"},
        {"prodigy:beta3=1", SGD_ERANGE, "beta3=1"},
        {"dadapt_adam:growth_rate=-1", SGD_ERANGE, "growth_rate=-1"},
        {"dog:reps_rel=0", SGD_ERANGE, "reps_rel=0"},
        {"lamb:bias_correction=maybe", SGD_EINVAL, "bias_correction=maybe"},
        {"lion:beta2=1", SGD_ERANGE, "beta2=1"},
        {"dog:momentum=0.9", SGD_ENOTFOUND, "'momentum'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sgd_optim *o = (sgd_optim *)&o;
        int st = sgd_optim_new(&o, bad[i].spec, 4, NULL);
        if (st != bad[i].status || strstr(sgd_error_last(), bad[i].needle) == NULL ||
            strncmp(sgd_error_last(), "sgd_optim_new", 13) != 0)
            fail_msg("spec \"%s\": got %s \"%s\", expected %s mentioning \"%s\"", bad[i].spec, sgd_status_str(st),
                     sgd_error_last(), sgd_status_str(bad[i].status), bad[i].needle);
        assert_null(o);
    }
    /* cross-checks at run time too, nothing changed */
    sgd_optim *o = make("rprop", 3);
    sgdt_assert_status(sgd_optim_set(o, "step_size_min", 100), SGD_ERANGE);
    sgdt_assert_error_contains("step_size_min=100");
    assert_true(get(o, "step_size_min") == 1e-6);
    sgd_optim_free(o);
    /* corrupt scalar state is refused */
    o = make("nadam", 3);
    size_t idx;
    sgdt_assert_status(sgd_optim_state_find(o, "scalars", &idx), SGD_OK);
    double mu = 2.0;
    sgdt_assert_status(sgd_optim_state_import(o, idx, &mu, sizeof mu), SGD_ERANGE);
    sgdt_assert_error_contains("mu_product");
    sgd_optim_free(o);
    o = make("dog", 3);
    sgdt_assert_status(sgd_optim_state_find(o, "scalars", &idx), SGD_OK);
    double sc[2] = {-1, 1};
    sgdt_assert_status(sgd_optim_state_import(o, idx, sc, sizeof sc), SGD_ERANGE);
    sgdt_assert_error_contains("rbar and G");
    sc[0] = NAN, sc[1] = INFINITY; /* a diverged state imports back */
    sgdt_assert_status(sgd_optim_state_import(o, idx, sc, sizeof sc), SGD_OK);
    sgd_optim_free(o);
}

/* Schedule-free: the evaluation point is the average x; steps only at the training point y. */
static void test_eval_point(void **state)
{
    (void)state;
    sgd_optim *o = make("sgd_sf:lr=0.1", 4), *plain = make("adam", 4);
    assert_int_equal(sgd_optim_has_eval_point(o), 1);
    assert_int_equal(sgd_optim_has_eval_point(plain), 0);
    float x[4] = {1, -2, 3, 0.5f}, g[4] = {0.5f, 1, -1, 2}, before[4];
    /* Before the first step there is no z: nothing moves. */
    memcpy(before, x, sizeof x);
    sgdt_assert_status(sgd_optim_eval_point(o, x, 1), SGD_OK);
    assert_memory_equal(x, before, sizeof x);
    sgdt_assert_status(sgd_optim_eval_point(o, x, 0), SGD_OK);
    for (int k = 0; k < 5; k++)
        sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, NULL), SGD_OK);
    memcpy(before, x, sizeof x);
    sgdt_assert_status(sgd_optim_eval_point(o, x, 1), SGD_OK);
    assert_int_equal(sgd_optim_at_eval_point(o), 1);
    assert_true(memcmp(x, before, sizeof x) != 0);
    float at_eval[4];
    memcpy(at_eval, x, sizeof x);
    sgdt_assert_status(sgd_optim_eval_point(o, x, 1), SGD_OK); /* twice: nothing more */
    assert_memory_equal(x, at_eval, sizeof x);
    sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, NULL), SGD_ESTATE);
    sgdt_assert_error_contains("evaluation point");
    sgdt_assert_status(sgd_optim_eval_point(o, x, 2), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_eval_point(o, NULL, 1), SGD_EINVAL);
    sgdt_assert_status(sgd_optim_eval_point(o, x, 0), SGD_OK);
    for (int i = 0; i < 4; i++)
        assert_float_equal(x[i], before[i], 1e-6 * (1 + fabsf(before[i])));
    /* the average x = (y - (1 - beta) z) / beta lies between y and z */
    size_t idx;
    float z[4];
    sgdt_assert_status(sgd_optim_state_find(o, "z", &idx), SGD_OK);
    sgdt_assert_status(sgd_optim_state_export(o, idx, z, sizeof z), SGD_OK);
    for (int i = 0; i < 4; i++)
        assert_float_equal(at_eval[i], (before[i] - 0.1f * z[i]) / 0.9f, 1e-5 * (1 + fabsf(at_eval[i])));
    /* for other optimizers it does nothing */
    memcpy(before, x, sizeof x);
    sgdt_assert_status(sgd_optim_eval_point(plain, x, 1), SGD_OK);
    assert_memory_equal(x, before, sizeof x);
    sgdt_assert_status(sgd_optim_step(plain, x, g, 0.1, NULL), SGD_ESTATE);
    sgdt_assert_status(sgd_optim_reset(plain), SGD_OK);
    assert_int_equal(sgd_optim_at_eval_point(plain), 0);
    assert_int_equal(sgd_optim_at_eval_point(NULL), 0);
    assert_int_equal(sgd_optim_has_eval_point(NULL), 0);
    sgd_optim_free(o);
    sgd_optim_free(plain);
}

/* Every kernel table this CPU can run computes the same bits (the same C source, no contraction). */
static void test_simd_levels_agree(void **state)
{
    (void)state;
    const sgd__ktab *run[3];
    size_t k = sgd__kern_runnable(run);
    const sgd__ktab *chosen = sgd__kern();
    print_message("kernel levels runnable here: %zu (best %s), in use: %s\n", k, run[k - 1]->level,
                  sgd_optim_simd_level());
    assert_string_equal(chosen->level, sgd_optim_simd_level());
    const char *pin = getenv("SGDLAB_SIMD");
    if (pin == NULL || pin[0] == '\0')
        assert_ptr_equal(chosen, run[k - 1]);
    else if (strcmp(pin, "generic") == 0)
        assert_string_equal(chosen->level, "generic");
    /*
     * Three hygiene settings: none (the kernels' no-clipping bodies), a
     * value clip that never binds (the clipping bodies with clamp and scale
     * identities: the same bits as none), and clipping that binds.
     */
    for (size_t s = 0; s < N_ALL_SPECS; s++) {
        const size_t n = 1031; /* odd: vector bodies and tails */
        float ref_x[3][1031], x[1031], g[1031];
        unsigned char *ref_state[3] = {NULL, NULL, NULL};
        size_t ref_bytes[3] = {0, 0, 0};
        for (int mode = 0; mode < 3; mode++) {
            for (size_t lv = 0; lv < k; lv++) {
                sgd__kern_use(run[lv]);
                sgd_optim *o = make(all_specs[s], n);
                sgd_optim_hygiene h;
                sgd_optim_hygiene_init(&h);
                if (mode == 1) {
                    h.clip_value = 1e30;
                } else if (mode == 2) {
                    h.clip_value = 1.5;
                    h.clip_norm = 20;
                }
                sgdt_assert_status(sgd_optim_set_hygiene(o, &h), SGD_OK);
                sgd__rng rng;
                sgd__rng_seed(&rng, 77 + s);
                fill_random(&rng, x, n, 1);
                for (int step = 0; step < 6; step++) {
                    fill_random(&rng, g, n, 1);
                    sgdt_assert_status(sgd_optim_step(o, x, g, 0.01, NULL), SGD_OK);
                }
                size_t bytes;
                unsigned char *st = export_all(o, &bytes);
                if (lv == 0) {
                    memcpy(ref_x[mode], x, sizeof x);
                    ref_state[mode] = st;
                    ref_bytes[mode] = bytes;
                } else {
                    if (memcmp(ref_x[mode], x, sizeof x) != 0)
                        fail_msg("%s (hygiene %d): level %s differs from %s", all_specs[s], mode, run[lv]->level,
                                 run[0]->level);
                    assert_int_equal(bytes, ref_bytes[mode]);
                    assert_memory_equal(st, ref_state[mode], bytes);
                    free(st);
                }
                sgd_optim_free(o);
            }
        }
        if (memcmp(ref_x[0], ref_x[1], sizeof ref_x[0]) != 0)
            fail_msg("%s: a value clip that never binds changes the parameters", all_specs[s]);
        assert_int_equal(ref_bytes[0], ref_bytes[1]);
        assert_memory_equal(ref_state[0], ref_state[1], ref_bytes[0]);
        /* the binding clip does bind (rprop's and lion's steps follow signs: it shows in their state) */
        if (memcmp(ref_x[1], ref_x[2], sizeof ref_x[1]) == 0 &&
            (ref_bytes[1] == 0 || memcmp(ref_state[1], ref_state[2], ref_bytes[1]) == 0))
            fail_msg("%s: clipping changed nothing", all_specs[s]);
        for (int mode = 0; mode < 3; mode++)
            free(ref_state[mode]);
    }
    /* the scan too */
    float g[4099];
    sgd__rng rng;
    sgd__rng_seed(&rng, 1);
    fill_random(&rng, g, 4099, 3);
    sgd__gradstat a, b;
    run[0]->scan(g, 4099, 0.5f, &a);
    for (size_t lv = 1; lv < k; lv++) {
        run[lv]->scan(g, 4099, 0.5f, &b);
        assert_true(a.sumsq == b.sumsq && a.sumsq_clipped == b.sumsq_clipped && a.max_abs == b.max_abs);
    }
    sgd__kern_use(chosen);
}

/* A host optimizer with a listing (bounds checked by the library) and two passes. */
typedef struct host2 {
    double c;
    int pass_seen[2];
    int order_ok;
    int last_pass;
} host2;

static int host2_describe(uint32_t index, sgd_optim_hparam *info, void *user)
{
    (void)user;
    if (index != 0)
        return SGD_ENOTFOUND;
    info->name = "c";
    info->default_value = 0.5;
    info->lower = 0.0;
    info->upper = 1.0;
    info->flags = SGD_OPTIM_HPARAM_UPPER_OPEN | SGD_OPTIM_HPARAM_MOMENTUM;
    return 0;
}

static int host2_set(const char *name, double value, void *user)
{
    host2 *h = user;
    if (strcmp(name, "c") != 0)
        return SGD_ENOTFOUND;
    h->c = value;
    return 0;
}

static int host2_get(const char *name, double *value, void *user)
{
    host2 *h = user;
    if (strcmp(name, "c") != 0)
        return SGD_ENOTFOUND;
    *value = h->c;
    return 0;
}

static int host2_step(float *params, const float *grads, float *const *slots, size_t n, double lr,
                      const sgd_optim_step_args *a, void *user)
{
    host2 *h = user;
    (void)slots;
    if ((int)a->pass < h->last_pass || a->pass > 1) {
        h->order_ok = 0;
        return 0;
    }
    h->last_pass = (int)a->pass;
    h->pass_seen[a->pass]++;
    if (a->pass == 1)
        for (size_t i = 0; i < n; i++)
            params[i] -= (float)(lr * h->c) * grads[i];
    if (!(a->grad_sumsq >= 0) || a->base_lr * a->lr_scale != lr)
        h->order_ok = 0;
    return 0;
}

static void test_host_listing_two_pass(void **state)
{
    (void)state;
    host2 h = {.c = 0.5, .order_ok = 1};
    sgd_optim_vtable vt;
    sgd_optim_vtable_init(&vt);
    vt.name = "twopass";
    vt.flags = SGD_OPTIM_TWO_PASS;
    vt.step = host2_step;
    vt.set_hparam = host2_set;
    vt.get_hparam = host2_get;
    sgd_optim_vtable_ext ext;
    sgd_optim_vtable_ext_init(&ext);
    ext.n_hparams = 1;
    ext.describe_hparam = host2_describe;
    sgd_optim *o = NULL;
    sgdt_assert_status(sgd_optim_new_custom_ext(&o, &vt, &ext, &h, 10, NULL), SGD_OK);
    assert_int_equal(sgd_optim_hparam_count(o), 3);
    assert_string_equal(sgd_optim_momentum_name(o), "c");
    sgdt_assert_status(sgd_optim_set(o, "c", 1.0), SGD_ERANGE);
    sgdt_assert_error_contains("c=1: must be in [0, 1)");
    assert_true(h.c == 0.5);
    sgdt_assert_status(sgd_optim_set(o, "c", 0.25), SGD_OK);
    sgdt_assert_status(sgd_optim_add_group(o, 2, 3, 0.5, 0, NULL), SGD_OK);
    float x[10] = {0}, g[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    h.last_pass = 0;
    sgdt_assert_status(sgd_optim_step(o, x, g, 1.0, NULL), SGD_OK);
    assert_int_equal(h.pass_seen[0], 3);
    assert_int_equal(h.pass_seen[1], 3);
    assert_int_equal(h.order_ok, 1);
    assert_float_equal(x[0], -0.25f, 1e-7);
    assert_float_equal(x[3], -0.125f, 1e-7);
    sgd_optim_free(o);
    /* a listing without describe_hparam, or too long, is refused */
    ext.describe_hparam = NULL;
    sgdt_assert_status(sgd_optim_new_custom_ext(&o, &vt, &ext, &h, 10, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("describe_hparam");
    ext.describe_hparam = host2_describe;
    ext.n_hparams = 2; /* index 1 fails */
    sgdt_assert_status(sgd_optim_new_custom_ext(&o, &vt, &ext, &h, 10, NULL), SGD_ENOTFOUND);
    ext.n_hparams = SGD_OPTIM_MAX_HPARAMS + 1;
    sgdt_assert_status(sgd_optim_new_custom_ext(&o, &vt, &ext, &h, 10, NULL), SGD_EINVAL);
    ext.n_hparams = 1;
    ext.struct_size = 2;
    sgdt_assert_status(sgd_optim_new_custom_ext(&o, &vt, &ext, &h, 10, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("struct_size=2");
    /* A 0.1-sized vtable: sgd_optim_vtable_init() writes no more than that (an old host's struct). */
    unsigned char guard[sizeof(sgd_optim_vtable) + 16];
    memset(guard, 0xa5, sizeof guard);
    sgd_optim_vtable_init((sgd_optim_vtable *)guard);
    for (size_t i = sizeof(sgd_optim_vtable); i < sizeof guard; i++)
        assert_int_equal(guard[i], 0xa5);
}

static sgd_status scenario_all_kinds(sgdt_alloc *t, void *ctx)
{
    (void)ctx;
    for (size_t s = 0; s < N_ALL_SPECS; s++) {
        sgd_optim *o = NULL;
        sgd_status st = sgd_optim_new(&o, all_specs[s], 10, &t->base);
        if (st != SGD_OK) {
            assert_null(o);
            return st;
        }
        const size_t sizes[] = {5, 5};
        float x[10] = {0}, g[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
        if ((st = sgd_optim_add_group(o, 2, 3, 0.5, 0, NULL)) != SGD_OK ||
            (st = sgd_optim_set_tensors(o, sizes, 2)) != SGD_OK) {
            sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, NULL), SGD_OK); /* still usable */
            sgd_optim_free(o);
            return st;
        }
        sgdt_assert_status(sgd_optim_step(o, x, g, 0.1, NULL), SGD_OK);
        sgd_optim_free(o);
    }
    return SGD_OK;
}

static void test_alloc_failures_all_kinds(void **state)
{
    (void)state;
    long n = sgdt_walk_alloc_failures(scenario_all_kinds, NULL);
    assert_true(n >= (long)N_ALL_SPECS * 4);
}

/* The new kinds train the regression problem too (learning-rate-free ones at their default lr). */
static void test_new_kinds_train(void **state)
{
    (void)state;
    static const char *const specs[] = {"nadam:lr=0.05",  "radam:lr=0.05",  "adamax:lr=0.05",
                                        "adadelta:lr=1",  "rprop:lr=0.01",  "asgd:lr=0.05",
                                        "lion:lr=0.005",  "lamb:lr=0.05",   "lars:lr=5,eta=0.01",
                                        "sgd_sf:lr=0.05", "adamw_sf:lr=0.05", "prodigy",
                                        "dadapt_adam",    "dadapt_sgd",     "dog"};
    double X[LR_ROWS][LR_COLS], y[LR_ROWS];
    make_regression(X, y);
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        sgd_optim *o = make(specs[s], LR_COLS + 1);
        float w[LR_COLS + 1] = {0}, g[LR_COLS + 1];
        double first = linreg(w, g, X, y), loss;
        double lr = get(o, "lr");
        for (int k = 0; k < 1500; k++) {
            linreg(w, g, X, y);
            sgdt_assert_status(sgd_optim_step(o, w, g, k < 1200 ? lr : lr * 0.1, NULL), SGD_OK);
        }
        sgdt_assert_status(sgd_optim_eval_point(o, w, 1), SGD_OK);
        loss = linreg(w, g, X, y);
        if (!(loss < 1e-2 * first))
            fail_msg("%s: loss %g after 1500 steps (from %g)", specs[s], loss, first);
        sgd_optim_free(o);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtins_match_reference),
        cmocka_unit_test(test_spec_defaults),
        cmocka_unit_test(test_spec_values),
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_hparams),
        cmocka_unit_test(test_hparam_changes_update),
        cmocka_unit_test(test_maximize_is_negated_gradient),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_groups_split_is_exact),
        cmocka_unit_test(test_clip_norm),
        cmocka_unit_test(test_clip_value),
        cmocka_unit_test(test_nonfinite),
        cmocka_unit_test(test_scan_sizes),
        cmocka_unit_test(test_huge_gradients),
        cmocka_unit_test(test_hygiene_errors),
        cmocka_unit_test(test_step_counter),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_export_import_exact),
        cmocka_unit_test(test_sgd_first_step_flag),
        cmocka_unit_test(test_import_errors),
        cmocka_unit_test(test_counter_and_domain_limits),
        cmocka_unit_test(test_prodigy_d_underflow_roundtrip),
        cmocka_unit_test(test_slot_domains_every_kind),
        cmocka_unit_test(test_host_optimizer_trains),
        cmocka_unit_test(test_host_clipping),
        cmocka_unit_test(test_host_vtable_errors),
        cmocka_unit_test(test_host_init_failure),
        cmocka_unit_test(test_alloc_failures_builtin),
        cmocka_unit_test(test_alloc_failures_host),
        cmocka_unit_test(test_step_allocates_nothing),
        cmocka_unit_test(test_builtins_train),
        cmocka_unit_test(test_empty_arena),
        cmocka_unit_test(test_struct_init),
        cmocka_unit_test(test_every_kind_listed),
        cmocka_unit_test(test_every_kind_resumes_exactly),
        cmocka_unit_test(test_every_kind_split),
        cmocka_unit_test(test_trust_ratio_per_tensor),
        cmocka_unit_test(test_set_tensors_errors),
        cmocka_unit_test(test_hparam_listing),
        cmocka_unit_test(test_spec_errors_new_kinds),
        cmocka_unit_test(test_eval_point),
        cmocka_unit_test(test_simd_levels_agree),
        cmocka_unit_test(test_host_listing_two_pass),
        cmocka_unit_test(test_alloc_failures_all_kinds),
        cmocka_unit_test(test_new_kinds_train),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
