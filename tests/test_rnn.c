/*
 * Recurrent layers and embeddings: PyTorch 1.13 parity (tests/gen_rnn.py),
 * finite-difference gradients through time, the carried state (truncated
 * backpropagation through time, step-by-step mode), specs, token ids,
 * evaluation over streams, the vectorized gate functions, allocation
 * failures. SPDX-License-Identifier: MIT
 */
#include "util/sgdtest.h"

#include "model/model_internal.h"
#include "model/vmath.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static sgd_model *spec_model(const char *spec, int64_t max_batch, uint64_t seed)
{
    sgd_model_options o;
    sgd_model_options_init(&o);
    o.seed = seed;
    o.max_batch = max_batch;
    sgd_model *m = NULL;
    sgd_status st = sgd_model_from_spec(&m, spec, &o, NULL);
    if (st != SGD_OK)
        fail_msg("sgd_model_from_spec(\"%s\"): %s", spec, sgd_error_last());
    return m;
}

static size_t __attribute__((unused)) tensor_index(const sgd_model *m, const char *name)
{
    size_t i;
    sgd_status st = sgd_model_find_tensor(m, name, &i);
    if (st != SGD_OK)
        fail_msg("no tensor %s: %s", name, sgd_error_last());
    return i;
}

static sgd_tensor_info tensor(const sgd_model *m, size_t i)
{
    sgd_tensor_info ti;
    sgd_tensor_info_init(&ti);
    sgdt_assert_status(sgd_model_tensor_info(m, i, &ti), SGD_OK);
    return ti;
}

/* Values (2u - 1) * 0.5 of the stream `seed`, as gen_rnn.py's sym(). */
static void fill_sym(float *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((2.0 * sgdt_splitmix_u(&seed) - 1.0) * 0.5);
}

static void fill_ids(float *x, int32_t *labels, size_t n, uint64_t seed, int64_t v)
{
    for (size_t i = 0; i < n; i++) {
        int64_t id = (int64_t)(sgdt_splitmix_u(&seed) * (double)v);
        if (x != NULL)
            x[i] = (float)id;
        if (labels != NULL)
            labels[i] = (int32_t)id;
    }
}

/* The state tensor `name` of the first recurrent layer, or SIZE_MAX. */
static size_t state_tensor(const sgd_model *m, const char *suffix)
{
    for (size_t i = 0; i < sgd_model_num_tensors(m); i++) {
        sgd_tensor_info ti = tensor(m, i);
        const char *dot = strchr(ti.name, '.');
        if (ti.role == SGD_TENSOR_STATE && dot != NULL && strcmp(dot + 1, suffix) == 0)
            return i;
    }
    return SIZE_MAX;
}

/* ---------------------------------------------------------------- torch parity */

typedef struct pcase {
    const char *name, *kind, *extra;
    int64_t T, N, V, E, H, L;
    bool clip;
} pcase;

/* The same models, in the same order, as CASES in tests/gen_rnn.py. */
static const pcase cases[] = {
    {"rnn_tanh", "rnn", "", 6, 3, 7, 5, 6, 1, true},
    {"rnn_relu", "rnn", ",nonlinearity=relu", 3, 2, 7, 5, 6, 1, false},
    {"rnn_2l", "rnn", "", 4, 2, 7, 3, 5, 2, false},
    {"gru", "gru", "", 7, 3, 9, 4, 5, 1, true},
    {"gru_2l", "gru", "", 5, 2, 9, 4, 5, 2, false},
    {"gru_nobias", "gru", ",bias=0", 4, 2, 6, 3, 4, 1, false},
    {"lstm_t1", "lstm", "", 1, 4, 9, 4, 6, 1, false},
    {"lstm", "lstm", "", 8, 3, 9, 4, 6, 1, true},
    {"lstm_2l", "lstm", "", 4, 2, 9, 4, 6, 2, true},
    {"lstm_float", "lstm", "", 5, 2, 0, 3, 5, 2, false},
    {"lstm_nobias", "lstm", ",bias=0", 3, 2, 5, 3, 4, 1, false},
};
#define CLIP_NORM 0.05

static void check_record(sgdt_fixture *f, const char *name, const float *ours, int64_t rows, int64_t cols,
                         double *worst)
{
    double *ref = sgdt_fixture_record(f, name, rows, cols);
    double e = sgdt_parity_error(ours, ref, (size_t)(rows * cols));
    free(ref);
    if (e > 1e-4)
        fail_msg("parity: %s differs from torch's by %.3g of its largest magnitude", name, e);
    if (e > *worst)
        *worst = e;
}

static void parity_case(sgdt_fixture *f, size_t c)
{
    const pcase *pc = &cases[c];
    char spec[256];
    int64_t classes = pc->V > 0 ? pc->V : 3;
    if (pc->V > 0)
        snprintf(spec, sizeof spec, "tokens(%lld)-embedding(%lld,%lld)-%s(%lld%s%s)-%lld", (long long)pc->T,
                 (long long)pc->V, (long long)pc->E, pc->kind, (long long)pc->H,
                 pc->L > 1 ? ",num_layers=2" : "", pc->extra, (long long)pc->V);
    else
        snprintf(spec, sizeof spec, "%lldx%lld-%s(%lld%s%s)-3", (long long)pc->T, (long long)pc->E, pc->kind,
                 (long long)pc->H, pc->L > 1 ? ",num_layers=2" : "", pc->extra);
    sgd_model *m = spec_model(spec, pc->N, 0);
    /* Parameters in state_dict order, each from its own stream. */
    size_t np = 0;
    for (size_t i = 0; i < sgd_model_num_tensors(m); i++) {
        sgd_tensor_info ti = tensor(m, i);
        if (ti.role != SGD_TENSOR_PARAM)
            continue;
        float *v = malloc(ti.numel * sizeof *v);
        assert_non_null(v);
        fill_sym(v, ti.numel, 10000 * (uint64_t)(c + 1) + np);
        sgdt_assert_status(sgd_model_write_tensor(m, i, v, ti.numel * sizeof *v), SGD_OK);
        free(v);
        np++;
    }
    uint64_t base = 10000 * (uint64_t)(c + 1) + 500;
    size_t ih = state_tensor(m, "h_n"), ic = state_tensor(m, "c_n");
    assert_true(ih != SIZE_MAX);
    size_t ns = (size_t)(pc->N * pc->L * pc->H);
    float *st = malloc(ns * sizeof *st);
    assert_non_null(st);
    fill_sym(st, ns, base + 2);
    sgdt_assert_status(sgd_model_write_tensor(m, ih, st, ns * sizeof *st), SGD_OK);
    if (strcmp(pc->kind, "lstm") == 0) {
        assert_true(ic != SIZE_MAX);
        fill_sym(st, ns, base + 3);
        sgdt_assert_status(sgd_model_write_tensor(m, ic, st, ns * sizeof *st), SGD_OK);
    } else {
        assert_true(ic == SIZE_MAX);
    }
    size_t nx = (size_t)(pc->N * pc->T * (pc->V > 0 ? 1 : pc->E)), nl = (size_t)(pc->N * pc->T);
    float *x = malloc(nx * sizeof *x);
    int32_t *labels = malloc(nl * sizeof *labels);
    assert_true(x && labels);
    double worst = 0;
    for (int b = 1; b <= 2; b++) {
        uint64_t sx = base + (b == 1 ? 0 : 10), sl = base + (b == 1 ? 1 : 11);
        if (pc->V > 0)
            fill_ids(x, NULL, nx, sx, pc->V);
        else
            fill_sym(x, nx, sx);
        fill_ids(NULL, labels, nl, sl, classes);
        const float *logits;
        double loss;
        sgdt_assert_status(sgd_model_zero_grad(m), SGD_OK);
        sgdt_assert_status(sgd_model_forward(m, x, pc->N, &logits), SGD_OK);
        sgdt_assert_status(sgd_model_compute_loss(m, labels, NULL, &loss), SGD_OK);
        sgdt_assert_status(sgd_model_backward(m), SGD_OK);
        char name[160];
        snprintf(name, sizeof name, "%s.b%d.loss", pc->name, b);
        float l32 = (float)loss;
        check_record(f, name, &l32, 1, 1, &worst);
        snprintf(name, sizeof name, "%s.b%d.logits", pc->name, b);
        check_record(f, name, logits, (int64_t)nl, classes, &worst);
        snprintf(name, sizeof name, "%s.b%d.h_n", pc->name, b);
        check_record(f, name, tensor(m, ih).data, pc->N, pc->L * pc->H, &worst);
        if (ic != SIZE_MAX) {
            snprintf(name, sizeof name, "%s.b%d.c_n", pc->name, b);
            check_record(f, name, tensor(m, ic).data, pc->N, pc->L * pc->H, &worst);
        }
        for (size_t i = 0; i < sgd_model_num_tensors(m); i++) {
            sgd_tensor_info ti = tensor(m, i);
            if (ti.role != SGD_TENSOR_PARAM)
                continue;
            snprintf(name, sizeof name, "%s.b%d.grad.%s", pc->name, b, ti.name);
            int64_t rows = ti.rank == 2 ? ti.shape[0] : 1, cols = ti.rank == 2 ? ti.shape[1] : ti.shape[0];
            check_record(f, name, sgd_model_grads(m) + ti.offset, rows, cols, &worst);
        }
        if (b == 1 && pc->clip) {
            /* One SGD step from the gradients clipped to a global norm, as clip_grad_norm_ then SGD. */
            size_t n = sgd_model_num_params(m);
            float *saved = malloc(n * sizeof *saved);
            assert_non_null(saved);
            memcpy(saved, sgd_model_params(m), n * sizeof *saved);
            sgd_optim *o;
            sgdt_assert_status(sgd_optim_new(&o, "sgd:lr=0.1", n, NULL), SGD_OK);
            sgd_optim_hygiene h;
            sgd_optim_hygiene_init(&h);
            h.clip_norm = CLIP_NORM;
            sgdt_assert_status(sgd_optim_set_hygiene(o, &h), SGD_OK);
            sgdt_assert_status(sgd_optim_step(o, sgd_model_params(m), sgd_model_grads(m), 0.1, NULL), SGD_OK);
            for (size_t i = 0; i < sgd_model_num_tensors(m); i++) {
                sgd_tensor_info ti = tensor(m, i);
                if (ti.role != SGD_TENSOR_PARAM)
                    continue;
                snprintf(name, sizeof name, "%s.clip.%s", pc->name, ti.name);
                int64_t rows = ti.rank == 2 ? ti.shape[0] : 1, cols = ti.rank == 2 ? ti.shape[1] : ti.shape[0];
                check_record(f, name, sgd_model_params(m) + ti.offset, rows, cols, &worst);
            }
            memcpy(sgd_model_params(m), saved, n * sizeof *saved);
            sgd_optim_free(o);
            free(saved);
        }
    }
    print_message("parity %-12s %-58s worst %.2e of the largest magnitude\n", pc->name, sgd_model_spec(m), worst);
    free(x);
    free(labels);
    free(st);
    sgd_model_free(m);
}

static void test_torch_parity(void **state)
{
    (void)state;
    sgdt_fixture f;
    sgdt_fixture_load(&f, sgdt_data_path("parity_rnn.txt.gz"));
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        parity_case(&f, c);
    sgdt_fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torch_parity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
