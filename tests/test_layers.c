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
 * normalisation removes) is measured against 1e-3 instead of its own
 * magnitude: its values are noise on both sides.
 */
#define PARITY_TOL 1e-4

static double rel_error(const float *ours, const rec *ref)
{
    double err = 0, mag = 0;
    for (size_t i = 0; i < ref->n; i++) {
        double d = fabs((double)ours[i] - ref->v[i]);
        err = d > err ? d : err;
        mag = fabs(ref->v[i]) > mag ? fabs(ref->v[i]) : mag;
    }
    return err / (mag > 1e-3 ? mag : 1e-3);
}

static void check_close(const char *spec, const char *what, const float *ours, const rec *ref, double *worst)
{
    double e = rel_error(ours, ref);
    if (e > *worst)
        *worst = e;
    if (e > PARITY_TOL)
        fail_msg("%s: %s differs from torch's by %.3g of its largest magnitude", spec, what, e);
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
    double loss, worst = 0;
    sgdt_assert_status(sgd_model_zero_grad(m), SGD_OK);
    sgdt_assert_status(sgd_model_forward(m, x, c->batch, &y), SGD_OK);
    check_close(c->spec, "output", y, find_rec(c, "out"), &worst);
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
            check_close(c->spec, r->name, sgd_model_grads(m) + ti.offset, r, &worst);
            n_grads++;
        } else if (r->kind == 'i') {
            int64_t v;
            memcpy(&v, ti.data, sizeof v);
            assert_int_equal(ti.role, SGD_TENSOR_BUFFER);
            if (v != (int64_t)r->v[0])
                fail_msg("%s: %s is %lld, torch %lld", c->spec, name, (long long)v, (long long)r->v[0]);
            n_bufs++;
        } else {
            check_close(c->spec, r->name, ti.data, r, &worst);
            n_bufs++;
        }
    }
    /* Evaluation mode: the running statistics. */
    sgdt_assert_status(sgd_model_set_training(m, 0), SGD_OK);
    sgdt_assert_status(sgd_model_forward(m, x, c->batch, &y), SGD_OK);
    check_close(c->spec, "evaluation output", y, find_rec(c, "eval_out"), &worst);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_tensor_enumeration),
        cmocka_unit_test(test_shapes_and_tokens),
        cmocka_unit_test(test_torch_parity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
