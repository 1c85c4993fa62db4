/*
 * The layer operations table and the model's 0.2 calls: every tensor in
 * state_dict order, shapes, layers added from spec tokens, buffers, state.
 * SPDX-License-Identifier: MIT
 */
#include "util/sgdtest.h"

#include "model/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static sgd_model *spec_model(const char *spec, uint64_t seed)
{
    sgd_model_options o;
    sgd_model_options_init(&o);
    o.seed = seed;
    sgd_model *m = NULL;
    sgd_status st = sgd_model_from_spec(&m, spec, &o, NULL);
    if (st != SGD_OK)
        fail_msg("sgd_model_from_spec(\"%s\"): %s", spec, sgd_error_last());
    return m;
}

/* Every row of the table: a kind, a name or an alias, the hooks the engine calls. */
static void test_table(void **state)
{
    (void)state;
    assert_true(sgd__layer_n_ops >= 9);
    for (size_t i = 0; i < sgd__layer_n_ops; i++) {
        const sgd__layer_op *op = sgd__layer_ops[i];
        assert_true(op->kind > 0);
        assert_non_null(op->parse);
        assert_non_null(op->print);
        assert_non_null(op->shape);
        assert_non_null(op->forward);
        assert_non_null(op->backward);
        assert_ptr_equal(sgd__layer_op_by_kind(op->kind), op);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(sgd__layer_ops[j]->kind, op->kind);
        if (op->name != NULL)
            assert_ptr_equal(sgd__layer_op_by_name((sgd__str){op->name, strlen(op->name)}), op);
    }
    char names[512];
    sgd__layer_names(names, sizeof names);
    assert_non_null(strstr(names, "dense, linear, relu"));
}

static void test_tensor_enumeration(void **state)
{
    (void)state;
    sgd_model *m = spec_model("4-3-relu-dense(2,bias=0)-tanh-5", 1);
    static const char *dict[] = {"0.weight", "0.bias", "2.weight", "4.weight", "4.bias"};
    static const char *arena[] = {"0.weight", "2.weight", "4.weight", "0.bias", "4.bias"};
    assert_int_equal(sgd_model_num_tensors(m), 5);
    assert_int_equal(sgd_model_num_param_tensors(m), 5);
    size_t total = 0;
    for (size_t i = 0; i < 5; i++) {
        sgd_tensor_info ti;
        sgd_tensor_info_init(&ti);
        sgdt_assert_status(sgd_model_tensor_info(m, i, &ti), SGD_OK);
        assert_string_equal(ti.name, dict[i]);
        assert_int_equal(ti.role, SGD_TENSOR_PARAM);
        assert_int_equal(ti.dtype, SGD_DTYPE_F32);
        assert_ptr_equal(ti.data, sgd_model_params(m) + ti.offset);
        sgd_param_info pi;
        memset(&pi, 0, sizeof pi);
        pi.struct_size = sizeof pi;
        sgdt_assert_status(sgd_model_param_info(m, i, &pi), SGD_OK);
        assert_string_equal(pi.name, arena[i]);
        size_t idx;
        sgdt_assert_status(sgd_model_find_tensor(m, dict[i], &idx), SGD_OK);
        assert_int_equal(idx, i);
        total += ti.numel;
    }
    assert_int_equal(total, sgd_model_num_params(m));
    sgd_tensor_info ti;
    sgd_tensor_info_init(&ti);
    sgdt_assert_status(sgd_model_tensor_info(m, 2, &ti), SGD_OK);
    assert_int_equal(ti.rank, 2);
    assert_int_equal(ti.shape[0], 2);
    assert_int_equal(ti.shape[1], 3);
    assert_int_equal(ti.param_kind, SGD_PARAM_WEIGHT);
    sgdt_assert_status(sgd_model_find_tensor(m, "1.weight", &(size_t){0}), SGD_ENOTFOUND);
    sgdt_assert_status(sgd_model_tensor_info(m, 5, &ti), SGD_EINVAL);
    sgdt_assert_error_contains("index=5");
    ti.struct_size = 8;
    sgdt_assert_status(sgd_model_tensor_info(m, 0, &ti), SGD_EINVAL);
    sgdt_assert_error_contains("struct_size=8");

    /* Reading and writing through the enumeration. */
    float w[6], back[6];
    for (int k = 0; k < 6; k++)
        w[k] = 0.25f * (float)k;
    sgdt_assert_status(sgd_model_write_tensor(m, 2, w, sizeof w), SGD_OK);
    sgdt_assert_status(sgd_model_read_tensor(m, 2, back, sizeof back), SGD_OK);
    assert_memory_equal(w, back, sizeof w);
    sgdt_assert_status(sgd_model_read_tensor(m, 2, back, sizeof back - 4), SGD_ESHAPE);
    w[4] = NAN;
    sgdt_assert_status(sgd_model_write_tensor(m, 2, w, sizeof w), SGD_ENONFINITE);
    sgdt_assert_error_contains("2.weight[1][1]");
    sgdt_assert_status(sgd_model_read_tensor(m, 2, back, sizeof back), SGD_OK);
    assert_true(back[4] == 1.0f); /* unchanged */

    assert_int_equal(sgd_model_buffer_bytes(m), 0);
    sgdt_assert_status(sgd_model_reset_state(m), SGD_OK);
    sgd_model_free(m);
}

static void test_shapes_and_tokens(void **state)
{
    (void)state;
    sgd_model *m;
    int64_t shape[3] = {2, 3, 4};
    sgdt_assert_status(sgd_model_new_shaped(&m, 3, shape, NULL), SGD_OK);
    assert_int_equal(sgd_model_num_inputs(m), 24);
    /* dense and activations act on the last dimension, at every position, as torch. */
    sgdt_assert_status(sgd_model_add_layer(m, "5-relu"), SGD_OK);
    sgdt_assert_status(sgd_model_add_layer(m, "dense(7,bias=0)"), SGD_OK);
    assert_int_equal(sgd_model_num_layers(m), 3);
    int32_t rank;
    int64_t s[3];
    sgdt_assert_status(sgd_model_layer_shape(m, 0, &rank, s), SGD_OK);
    assert_int_equal(rank, 3);
    assert_int_equal(s[0], 2);
    assert_int_equal(s[1], 3);
    assert_int_equal(s[2], 5);
    sgdt_assert_status(sgd_model_output_shape(m, &rank, s), SGD_OK);
    assert_int_equal(s[2], 7);
    assert_int_equal(sgd_model_num_outputs(m), 42);
    sgdt_assert_status(sgd_model_input_shape(m, &rank, s), SGD_OK);
    assert_int_equal(rank, 3);
    assert_int_equal(s[1], 3);
    assert_string_equal(sgd_model_spec(m), "2x3x4-5-relu-dense(7,bias=0):loss=cross_entropy");
    /* All or nothing: a token of several layers with a bad one adds none. */
    sgdt_assert_status(sgd_model_add_layer(m, "relu-frob"), SGD_EINVAL);
    sgdt_assert_error_contains("layer 5 'frob'");
    assert_int_equal(sgd_model_num_layers(m), 3);
    sgdt_assert_status(sgd_model_add_layer(m, "dense(3,"), SGD_EINVAL);
    sgdt_assert_status(sgd_model_add_layer(m, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_model_build(m, NULL), SGD_OK);
    sgdt_assert_status(sgd_model_add_layer(m, "relu"), SGD_ESTATE);
    /* Cross-entropy over every position: 2 x 3 labels per sample. */
    float x[2 * 24];
    for (int k = 0; k < 48; k++)
        x[k] = 0.01f * (float)k;
    int32_t labels[12] = {0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4};
    double loss;
    sgdt_assert_status(sgd_model_forward_backward(m, x, labels, NULL, 2, &loss), SGD_OK);
    assert_true(isfinite(loss) && loss > 0);
    sgd_model_free(m);

    /* The input shape in specs. */
    m = spec_model("3x4-2", 0);
    assert_string_equal(sgd_model_spec(m), "3x4-2:loss=cross_entropy");
    sgd_model_free(m);
    sgdt_assert_status(sgd_model_from_spec(&m, "1x2x3x4-2", NULL, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("at most 3 dimensions");
    sgdt_assert_status(sgd_model_from_spec(&m, "1x0x3-2", NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_model_from_spec(&m, "1xx3-2", NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_model_new_shaped(&m, 4, shape, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_model_new_shaped(&m, 2, NULL, NULL), SGD_EINVAL);
}


/* ---------------------------------------------------------------- PyTorch parity */

/* The whole fixture, read once. */
static char *read_gz(const char *path)
{
    gzFile gz = gzopen(path, "rb");
    if (gz == NULL)
        fail_msg("cannot open %s", path);
    size_t cap = 1 << 22, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    int r;
    while ((r = gzread(gz, text + n, (unsigned)(cap - n - 1))) > 0) {
        n += (size_t)r;
        if (n + 1 == cap) {
            cap *= 2;
            text = realloc(text, cap);
            assert_non_null(text);
        }
    }
    assert_true(r == 0);
    gzclose(gz);
    text[n] = '\0';
    return text;
}

typedef struct rec {
    char name[128];
    char kind;   /* 'f' or 'i' */
    size_t n;
    double *v;
} rec;

typedef struct pcase {
    int64_t batch;
    char loss[32];
    char spec[1024];
    rec *recs;
    size_t n_recs;
} pcase;

/* Reads the next case at *at; false at the end of the file. */
static bool next_case(char **at, pcase *c)
{
    char *p = *at;
    while (*p == '#' || *p == '\n') {
        p = strchr(p, '\n');
        if (p == NULL)
            return false;
        p++;
    }
    if (*p == '\0')
        return false;
    int used;
    long long b;
    if (sscanf(p, "case %lld %31s %1023s%n", &b, c->loss, c->spec, &used) != 3)
        fail_msg("fixture: expected a case, found \"%.40s\"", p);
    c->batch = b;
    p += used;
    c->recs = NULL;
    c->n_recs = 0;
    for (;;) {
        while (*p == ' ' || *p == '\n')
            p++;
        if (strncmp(p, "end", 3) == 0) {
            p += 3;
            break;
        }
        rec r;
        unsigned long long n;
        if (sscanf(p, "%127s %c %llu%n", r.name, &r.kind, &n, &used) != 3)
            fail_msg("fixture: bad record at \"%.40s\"", p);
        p += used;
        r.n = n;
        r.v = malloc((n ? n : 1) * sizeof *r.v);
        assert_non_null(r.v);
        for (size_t i = 0; i < n; i++) {
            char *end;
            r.v[i] = strtod(p, &end);
            assert_true(end != p);
            p = end;
        }
        c->recs = realloc(c->recs, (c->n_recs + 1) * sizeof *c->recs);
        assert_non_null(c->recs);
        c->recs[c->n_recs++] = r;
    }
    *at = p;
    return true;
}

static const rec *find_rec(const pcase *c, const char *name)
{
    for (size_t i = 0; i < c->n_recs; i++)
        if (strcmp(c->recs[i].name, name) == 0)
            return &c->recs[i];
    return NULL;
}

static void free_case(pcase *c)
{
    for (size_t i = 0; i < c->n_recs; i++)
        free(c->recs[i].v);
    free(c->recs);
}

static float *floats_of(const rec *r)
{
    float *f = malloc((r->n ? r->n : 1) * sizeof *f);
    assert_non_null(f);
    for (size_t i = 0; i < r->n; i++)
        f[i] = (float)r->v[i];
    return f;
}

/*
 * The MLP parity rule (test_model.c): the largest |ours - torch| over the
 * largest |torch|, at most 1e-4. A tensor that is zero up to rounding (the
 * gradient of a bias just before batch normalisation, which the
 * normalisation removes: torch's values are about 1e-7) is noise on both
 * sides, and its noise depends on the summation order, which differs
 * between SIMD levels. Its error is measured against the scale of the
 * quantities it was summed from: the largest gradient of the case, or 1e-3,
 * whichever is larger.
 */
#define PARITY_TOL 1e-4

static double rel_error(const float *ours, const rec *ref, double floor)
{
    double err = 0, mag = 0;
    for (size_t i = 0; i < ref->n; i++) {
        double d = fabs((double)ours[i] - ref->v[i]);
        err = d > err ? d : err;
        mag = fabs(ref->v[i]) > mag ? fabs(ref->v[i]) : mag;
    }
    return err / (mag > floor ? mag : floor);
}

static void check_close(const char *spec, const char *what, const float *ours, const rec *ref, double floor,
                        double *worst)
{
    double e = rel_error(ours, ref, floor);
    if (e > *worst)
        *worst = e;
    if (e > PARITY_TOL)
        fail_msg("%s: %s differs from torch's by %.3g of its largest magnitude", spec, what, e);
}

/* The largest |torch gradient| of a case: the scale its zero-up-to-rounding tensors are measured on. */
static double grad_scale(const pcase *c)
{
    double g = 1e-3;
    for (size_t i = 0; i < c->n_recs; i++) {
        const rec *r = &c->recs[i];
        if (strncmp(r->name, "grad.", 5) != 0)
            continue;
        for (size_t k = 0; k < r->n; k++)
            g = fabs(r->v[k]) > g ? fabs(r->v[k]) : g;
    }
    return g;
}

static void run_case(const pcase *c)
{
    sgd_model_options o;
    sgd_model_options_init(&o);
    o.max_batch = c->batch;
    char full[1100];
    snprintf(full, sizeof full, "%s:loss=%s", c->spec, c->loss);
    sgd_model *m = NULL;
    if (sgd_model_from_spec(&m, full, &o, NULL) != SGD_OK)
        fail_msg("%s: %s", full, sgd_error_last());
    size_t n_dict = 0;
    /* Every state_dict entry of torch is a tensor of ours under the same name, and the reverse. */
    for (size_t i = 0; i < c->n_recs; i++) {
        const rec *r = &c->recs[i];
        if (strncmp(r->name, "init.", 5) != 0)
            continue;
        n_dict++;
        size_t idx;
        if (sgd_model_find_tensor(m, r->name + 5, &idx) != SGD_OK)
            fail_msg("%s: torch's state_dict has %s, the model has not: %s", c->spec, r->name + 5, sgd_error_last());
        sgd_tensor_info ti;
        sgd_tensor_info_init(&ti);
        sgdt_assert_status(sgd_model_tensor_info(m, idx, &ti), SGD_OK);
        assert_int_equal(ti.numel, r->n);
        assert_int_equal(idx, n_dict - 1); /* the same order */
        if (r->kind == 'i') {
            int64_t *v = malloc(r->n * sizeof *v);
            for (size_t k = 0; k < r->n; k++)
                v[k] = (int64_t)r->v[k];
            sgdt_assert_status(sgd_model_write_tensor(m, idx, v, r->n * sizeof *v), SGD_OK);
            free(v);
        } else {
            float *v = floats_of(r);
            sgdt_assert_status(sgd_model_write_tensor(m, idx, v, r->n * sizeof *v), SGD_OK);
            free(v);
        }
    }
    assert_int_equal(sgd_model_num_tensors(m), n_dict);
    float *x = floats_of(find_rec(c, "x"));
    const rec *lr = find_rec(c, "labels"), *tr = find_rec(c, "targets");
    int32_t *labels = NULL;
    float *targets = NULL;
    if (lr != NULL) {
        labels = malloc(lr->n * sizeof *labels);
        for (size_t k = 0; k < lr->n; k++)
            labels[k] = (int32_t)lr->v[k];
    }
    if (tr != NULL)
        targets = floats_of(tr);
    const float *y;
    double loss, worst = 0, gscale = grad_scale(c);
    sgdt_assert_status(sgd_model_zero_grad(m), SGD_OK);
    sgdt_assert_status(sgd_model_forward(m, x, c->batch, &y), SGD_OK);
    check_close(c->spec, "output", y, find_rec(c, "out"), 1e-3, &worst);
    sgdt_assert_status(sgd_model_compute_loss(m, labels, targets, &loss), SGD_OK);
    double ref_loss = find_rec(c, "loss")->v[0];
    if (fabs(loss - ref_loss) > PARITY_TOL * fabs(ref_loss))
        fail_msg("%s: loss %.9g, torch %.9g", c->spec, loss, ref_loss);
    sgdt_assert_status(sgd_model_backward(m), SGD_OK);
    size_t n_grads = 0, n_bufs = 0;
    for (size_t i = 0; i < c->n_recs; i++) {
        const rec *r = &c->recs[i];
        bool grad = strncmp(r->name, "grad.", 5) == 0, after = strncmp(r->name, "after.", 6) == 0;
        if (!grad && !after)
            continue;
        const char *name = r->name + (grad ? 5 : 6);
        size_t idx;
        sgdt_assert_status(sgd_model_find_tensor(m, name, &idx), SGD_OK);
        sgd_tensor_info ti;
        sgd_tensor_info_init(&ti);
        sgd_model_tensor_info(m, idx, &ti);
        assert_int_equal(ti.numel, r->n);
        if (grad) {
            assert_int_equal(ti.role, SGD_TENSOR_PARAM);
            check_close(c->spec, r->name, sgd_model_grads(m) + ti.offset, r, gscale, &worst);
            n_grads++;
        } else if (r->kind == 'i') {
            int64_t v;
            memcpy(&v, ti.data, sizeof v);
            assert_int_equal(ti.role, SGD_TENSOR_BUFFER);
            if (v != (int64_t)r->v[0])
                fail_msg("%s: %s is %lld, torch %lld", c->spec, name, (long long)v, (long long)r->v[0]);
            n_bufs++;
        } else {
            check_close(c->spec, r->name, ti.data, r, 1e-3, &worst);
            n_bufs++;
        }
    }
    /* Evaluation mode: the running statistics. */
    sgdt_assert_status(sgd_model_set_training(m, 0), SGD_OK);
    sgdt_assert_status(sgd_model_forward(m, x, c->batch, &y), SGD_OK);
    check_close(c->spec, "evaluation output", y, find_rec(c, "eval_out"), 1e-3, &worst);
    print_message("parity %-60.60s %2zu grads %2zu buffers, worst %.1e\n", c->spec, n_grads, n_bufs, worst);
    free(x);
    free(labels);
    free(targets);
    sgd_model_free(m);
}

static void test_torch_parity(void **state)
{
    (void)state;
    char *text = read_gz(sgdt_data_path("parity_layers.txt.gz")), *at = text;
    pcase c;
    int n = 0;
    while (next_case(&at, &c)) {
        run_case(&c);
        free_case(&c);
        n++;
    }
    assert_true(n >= 25);
    free(text);
}

/* ---------------------------------------------------------------- finite differences */

/* Uniform floats in [lo, hi) from a small generator. */
static void fill(float *p, size_t n, uint64_t seed, float lo, float hi)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = lo + (hi - lo) * (float)((x >> 40) / 16777216.0);
    }
}

static double fd_loss(sgd_model *m, const float *x, const int32_t *labels, const float *targets, int64_t batch,
                      const uint64_t rng[4])
{
    sgdt_assert_status(sgd_model_set_rng_state(m, rng), SGD_OK);
    double loss;
    sgdt_assert_status(sgd_model_forward(m, x, batch, NULL), SGD_OK);
    sgdt_assert_status(sgd_model_compute_loss(m, labels, targets, &loss), SGD_OK);
    return loss;
}

/*
 * Central differences in float32 parameters against the backward pass, for
 * up to 60 coordinates of each parameter tensor. A coordinate passes when
 * |analytic - numeric| <= 3e-4 + 3e-2 |numeric|; with max pooling or ReLU a
 * step may cross a kink (the argmax changes), so up to a tenth of the
 * coordinates may fail there, none elsewhere.
 */
static void gradcheck(const char *spec, int64_t batch, bool kinks)
{
    sgd_model_options o;
    sgd_model_options_init(&o);
    o.max_batch = batch;
    o.seed = 5;
    sgd_model *m;
    if (sgd_model_from_spec(&m, spec, &o, NULL) != SGD_OK)
        fail_msg("%s: %s", spec, sgd_error_last());
    int64_t in = sgd_model_num_inputs(m), out = sgd_model_num_outputs(m);
    float *x = malloc((size_t)(batch * in) * sizeof *x), *targets = malloc((size_t)(batch * out) * sizeof *targets);
    int32_t *labels = malloc((size_t)(batch * out) * sizeof *labels);
    assert_true(x && targets && labels);
    fill(x, (size_t)(batch * in), 11, -1.5f, 1.5f);
    fill(targets, (size_t)(batch * out), 12, 0.0f, 1.0f);
    int32_t classes = (int32_t)(out / (sgd__model_positions(m) ? sgd__model_positions(m) : 1));
    for (int64_t i = 0; i < batch * sgd__model_positions(m); i++)
        labels[i] = (int32_t)((i * 7 + 3) % classes);
    uint64_t rng[4];
    sgd_model_get_rng_state(m, rng);
    sgdt_assert_status(sgd_model_zero_grad(m), SGD_OK);
    sgdt_assert_status(sgd_model_set_rng_state(m, rng), SGD_OK);
    sgdt_assert_status(sgd_model_forward_backward(m, x, labels, targets, batch, NULL), SGD_OK);
    size_t n = sgd_model_num_params(m);
    float *ana = malloc(n * sizeof *ana), *p = sgd_model_params(m);
    assert_non_null(ana);
    memcpy(ana, sgd_model_grads(m), n * sizeof *ana);
    size_t checked = 0, failed = 0;
    double worst = 0;
    for (size_t t = 0; t < sgd_model_num_param_tensors(m); t++) {
        sgd_param_info pi;
        memset(&pi, 0, sizeof pi);
        pi.struct_size = sizeof pi;
        sgd_model_param_info(m, t, &pi);
        size_t step = pi.numel > 60 ? pi.numel / 60 : 1;
        for (size_t k = 0; k < pi.numel; k += step) {
            size_t i = pi.offset + k;
            float keep = p[i], h = 1e-2f * (fabsf(keep) > 0.1f ? fabsf(keep) : 0.1f);
            p[i] = keep + h;
            double up = fd_loss(m, x, labels, targets, batch, rng);
            p[i] = keep - h;
            double down = fd_loss(m, x, labels, targets, batch, rng);
            p[i] = keep;
            double num = (up - down) / (2.0 * (double)h), err = fabs(num - ana[i]);
            double allowed = 3e-4 + 3e-2 * fabs(num);
            if (err / allowed > worst)
                worst = err / allowed;
            checked++;
            if (err > allowed) {
                failed++;
                if (!kinks)
                    fail_msg("gradcheck %s: %s[%zu]: backward %.6g, finite difference %.6g", spec, pi.name, k,
                             (double)ana[i], num);
            }
        }
    }
    print_message("gradcheck %-64.64s %4zu coordinates, %zu across a kink, worst %.2f of tolerance\n", spec, checked,
                  failed, worst);
    assert_true(failed * 10 <= checked);
    free(ana);
    free(x);
    free(targets);
    free(labels);
    sgd_model_free(m);
}

static void test_gradcheck(void **state)
{
    (void)state;
    gradcheck("2x6x6-conv2d(3,3)-tanh-flatten-4", 2, false);
    gradcheck("2x7x7-conv2d(2,1)-conv2d(4,3,stride=2,padding=1,dilation=2)-tanh-flatten-3", 2, false);
    gradcheck("4x5x5-conv2d(4,1)-conv2d(4,3,padding=1,groups=2,bias=0)-flatten-3", 2, false);
    gradcheck("2x6x6-conv2d(2,1)-maxpool2d(2)-flatten-3", 2, true);
    gradcheck("2x7x7-conv2d(2,1)-maxpool2d(3,stride=2,padding=1)-flatten-3", 2, true);
    /* A max pooling the convolution runs itself, through a fused tanh (derived at the pooled values). */
    gradcheck("2x9x9-conv2d(2,3,padding=1)-tanh-maxpool2d(2)-flatten-3", 2, true);
    gradcheck("2x9x9-conv2d(2,1)-conv2d(2,3,padding=1)-sigmoid-maxpool2d(2)-flatten-3", 2, true);
    gradcheck("2x6x6-conv2d(2,1)-avgpool2d(3,stride=2,padding=1)-flatten-3", 2, false);
    gradcheck("2x5x5-conv2d(3,1)-global_avgpool2d-flatten-3", 2, false);
    gradcheck("2x4x4-conv2d(3,1)-batchnorm2d-tanh-flatten-3", 3, false);
    gradcheck("2x4x4-conv2d(3,1)-batchnorm2d(affine=0)-tanh-flatten-3:loss=mse", 3, false);
    gradcheck("6-5-batchnorm1d-tanh-3", 4, false);
    gradcheck("3x4-dense(5)-batchnorm1d-flatten-3", 3, false);
    gradcheck("6-5-layernorm-tanh-3", 3, false);
    gradcheck("6-5-layernorm(elementwise_affine=0)-3:loss=mse", 3, false);
    gradcheck("2x5x5-conv2d(2,1)-residual(conv2d(2,3,padding=1)-tanh-conv2d(2,3,padding=1))-flatten-3", 2, false);
    gradcheck("2x6x6-conv2d(2,1)-residual(conv2d(3,3,stride=2,padding=1)-batchnorm2d)-tanh-flatten-3", 3, false);
    gradcheck("6-5-residual(4-tanh)-3", 3, false);
    gradcheck("1x8x8-conv2d(3,3,padding=1)-relu-maxpool2d(2)-conv2d(4,3,padding=1)-relu-maxpool2d(2)-flatten-6-relu-3",
              3, true);
    gradcheck("2x3-4-tanh-3", 2, false); /* dense at every position, cross-entropy over positions */
}

/* ---------------------------------------------------------------- training, checkpoints, allocation */

#define CNN_SPEC "1x8x8-conv2d(4,3,padding=1)-batchnorm2d-relu-maxpool2d(2)-residual(conv2d(4,3,padding=1)-batchnorm2d)" \
                 "-relu-dropout(0.2)-flatten-batchnorm1d-3"
enum { CROWS = 48, CDIM = 64, CBATCH = 8 };

typedef struct crun {
    float x[CROWS * CDIM];
    int32_t y[CROWS];
    sgd_model *model;
    sgd_optim *optim;
    sgd_sched *sched;
    sgd_monitor *monitor;
    sgd_dataset *data;
    sgd_trainer *t;
} crun;

static sgd_status crun_new(crun *r, const sgd_allocator *a)
{
    memset(r, 0, sizeof *r);
    fill(r->x, CROWS * CDIM, 31, -1.0f, 1.0f);
    for (int i = 0; i < CROWS; i++)
        r->y[i] = (int32_t)(i % 3);
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.max_batch = CBATCH;
    mo.seed = 3;
    sgd_status st = sgd_model_from_spec(&r->model, CNN_SPEC, &mo, a);
    if (st == SGD_OK)
        st = sgd_optim_new(&r->optim, "adam:lr=0.01", sgd_model_num_params(r->model), a);
    if (st == SGD_OK)
        st = sgd_sched_new(&r->sched, "cosine:T_max=18", 0.01, a);
    if (st == SGD_OK)
        st = sgd_monitor_new(&r->monitor, NULL, a);
    if (st == SGD_OK)
        st = sgd_dataset_from_labels(&r->data, r->x, r->y, CROWS, CDIM, a);
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.batch_size = CBATCH;
    o.epochs = 3;
    o.seed = 9;
    if (st == SGD_OK)
        st = sgd_trainer_new(&r->t, r->model, r->optim, r->sched, r->monitor, r->data, r->data, &o, a);
    return st;
}

static void crun_free(crun *r)
{
    sgd_trainer_free(r->t);
    sgd_dataset_free(r->data);
    sgd_monitor_free(r->monitor);
    sgd_sched_free(r->sched);
    sgd_optim_free(r->optim);
    sgd_model_free(r->model);
}

static sgd_status save_to(const sgd_checkpoint_parts *p, const sgd_allocator *a, unsigned char **buf, uint64_t *size)
{
    sgd_ckpt_writer *w = NULL;
    *buf = NULL;
    sgd_status st = sgd_ckpt_writer_new(&w, a);
    if (st == SGD_OK)
        st = sgd_checkpoint_add(w, p);
    if (st == SGD_OK)
        st = sgd_ckpt_writer_size(w, size);
    if (st == SGD_OK && (*buf = malloc(*size)) == NULL)
        st = SGD_EINTERNAL;
    if (st == SGD_OK)
        st = sgd_ckpt_writer_write_memory(w, *buf, *size);
    sgd_ckpt_writer_free(w);
    return st;
}

/* Every tensor (parameters, running statistics, counters) of two models is the same, bit for bit. */
static void assert_same_tensors(sgd_model *a, sgd_model *b)
{
    assert_int_equal(sgd_model_num_tensors(a), sgd_model_num_tensors(b));
    for (size_t i = 0; i < sgd_model_num_tensors(a); i++) {
        sgd_tensor_info ta, tb;
        sgd_tensor_info_init(&ta);
        sgd_tensor_info_init(&tb);
        sgd_model_tensor_info(a, i, &ta);
        sgd_model_tensor_info(b, i, &tb);
        assert_string_equal(ta.name, tb.name);
        size_t bytes = ta.numel * (ta.dtype == SGD_DTYPE_I64 ? 8 : 4);
        if (memcmp(ta.data, tb.data, bytes) != 0)
            fail_msg("tensor %s differs", ta.name);
    }
}

/* A CNN with batch norm and dropout stopped mid-epoch resumes bit for bit, running statistics included. */
static void test_cnn_resume(void **state)
{
    (void)state;
    crun *whole = malloc(sizeof *whole), *part = malloc(sizeof *part), *resumed = malloc(sizeof *resumed);
    assert_true(whole && part && resumed);
    sgdt_assert_status(crun_new(whole, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(whole->t, 0), SGD_OK);
    sgdt_assert_status(crun_new(part, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(part->t, 8), SGD_OK);
    sgd_checkpoint_parts p;
    sgd_checkpoint_parts_init(&p);
    p.trainer = part->t;
    unsigned char *buf;
    uint64_t size;
    sgdt_assert_status(save_to(&p, NULL, &buf, &size), SGD_OK);
    crun_free(part);
    sgdt_assert_status(crun_new(resumed, NULL), SGD_OK);
    sgd_ckpt_reader *r;
    sgdt_assert_status(sgd_ckpt_reader_open_memory(&r, buf, (size_t)size, NULL), SGD_OK);
    sgd_checkpoint_parts_init(&p);
    p.trainer = resumed->t;
    sgdt_assert_status(sgd_checkpoint_restore(r, &p), SGD_OK);
    /* The model alone loads too, with its buffers. */
    sgd_model *loaded;
    sgdt_assert_status(sgd_checkpoint_load_model(&loaded, r, NULL, NULL), SGD_OK);
    assert_same_tensors(loaded, resumed->model);
    sgd_model_free(loaded);
    sgd_ckpt_reader_free(r);
    sgdt_assert_status(sgd_trainer_fit(resumed->t, 0), SGD_OK);
    assert_same_tensors(whole->model, resumed->model);
    size_t i;
    sgdt_assert_status(sgd_model_find_tensor(whole->model, "1.num_batches_tracked", &i), SGD_OK);
    int64_t count;
    sgdt_assert_status(sgd_model_read_tensor(whole->model, i, &count, sizeof count), SGD_OK);
    assert_int_equal(count, 18); /* 3 epochs of 6 batches */
    crun_free(resumed);
    crun_free(whole);
    free(buf);
    free(whole);
    free(part);
    free(resumed);
}

/* Building, training (with evaluation), checkpointing and restoring a CNN, failing each allocation in turn. */
static sgd_status cnn_scenario(sgdt_alloc *t, void *ctx)
{
    (void)ctx;
    const sgd_allocator *a = &t->base;
    crun *r = malloc(sizeof *r), *s = malloc(sizeof *s);
    if (r == NULL || s == NULL) {
        free(r);
        free(s);
        return SGD_EINTERNAL;
    }
    sgd_status st = crun_new(r, a);
    if (st == SGD_OK)
        st = sgd_trainer_fit(r->t, 7);
    sgd_checkpoint_parts p;
    sgd_checkpoint_parts_init(&p);
    p.trainer = r->t;
    unsigned char *buf = NULL;
    uint64_t size = 0;
    sgd_ckpt_reader *rd = NULL;
    sgd_model *m = NULL;
    if (st == SGD_OK)
        st = save_to(&p, a, &buf, &size);
    if (st == SGD_OK)
        st = sgd_ckpt_reader_open_memory(&rd, buf, (size_t)size, a);
    memset(s, 0, sizeof *s);
    if (st == SGD_OK)
        st = crun_new(s, a);
    sgd_checkpoint_parts q;
    sgd_checkpoint_parts_init(&q);
    q.trainer = s->t;
    if (st == SGD_OK)
        st = sgd_checkpoint_restore(rd, &q);
    if (st == SGD_OK)
        st = sgd_checkpoint_load_model(&m, rd, NULL, a);
    if (st == SGD_OK)
        st = sgd_model_add_layer(m, "relu"); /* built: refused, allocates nothing */
    if (st == SGD_ESTATE)
        st = SGD_OK;
    sgd_model_free(m);
    sgd_ckpt_reader_free(rd);
    free(buf);
    crun_free(s);
    crun_free(r);
    free(r);
    free(s);
    return st;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    long n = sgdt_walk_alloc_failures(cnn_scenario, NULL);
    assert_true(n > 20);
}

/* Building a model layer by layer from tokens, failing each allocation in turn. */
static sgd_status tokens_scenario(sgdt_alloc *t, void *ctx)
{
    (void)ctx;
    int64_t shape[3] = {2, 6, 6};
    sgd_model *m = NULL;
    sgd_status st = sgd_model_new_shaped(&m, 3, shape, &t->base);
    static const char *toks[] = {"conv2d(4,3,padding=1)", "batchnorm2d-relu", "residual(conv2d(8,3,stride=2,padding=1))",
                                 "global_avgpool2d", "flatten", "layernorm", "5"};
    for (size_t i = 0; i < sizeof toks / sizeof *toks && st == SGD_OK; i++)
        st = sgd_model_add_layer(m, toks[i]);
    if (st == SGD_OK)
        st = sgd_model_build(m, NULL);
    if (st == SGD_OK && sgd_model_spec(m)[0] == '\0')
        st = SGD_EINTERNAL;
    if (st == SGD_OK)
        st = sgd_model_reserve(m, 300);
    sgd_model_free(m);
    return st;
}

static void test_alloc_failures_tokens(void **state)
{
    (void)state;
    long n = sgdt_walk_alloc_failures(tokens_scenario, NULL);
    assert_true(n > 5);
}

/* A checkpoint written by libsgdlab 0.1 (sgdlab train --save, 0.1's tool) still loads. */
static void test_checkpoint_from_0_1(void **state)
{
    (void)state;
    sgd_ckpt_reader *r;
    sgdt_assert_status(sgd_ckpt_reader_open(&r, sgdt_data_path("ckpt-0.1-spirals.sgdckpt"), NULL), SGD_OK);
    sgd_model *m;
    sgdt_assert_status(sgd_checkpoint_load_model(&m, r, NULL, NULL), SGD_OK);
    assert_string_equal(sgd_model_spec(m), "2-16-tanh-dropout(0.1)-16-relu-3:loss=cross_entropy");
    assert_int_equal(sgd_model_num_params(m), 2 * 16 + 16 + 16 * 16 + 16 + 16 * 3 + 3);
    assert_int_equal(sgd_model_num_tensors(m), 6);
    assert_int_equal(sgd_model_buffer_bytes(m), 0);
    float x[2] = {0.5f, -0.25f}, y[3];
    sgdt_assert_status(sgd_model_predict(m, x, 1, y, 3), SGD_OK);
    assert_true(isfinite(y[0]) && isfinite(y[1]) && isfinite(y[2]));
    sgd_model_free(m);
    sgd_ckpt_reader_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_tensor_enumeration),
        cmocka_unit_test(test_shapes_and_tokens),
        cmocka_unit_test(test_torch_parity),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_cnn_resume),
        cmocka_unit_test(test_checkpoint_from_0_1),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_alloc_failures_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
