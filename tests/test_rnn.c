/*
 * Recurrent layers and embeddings: PyTorch 1.13 parity (tests/gen_rnn.py),
 * finite-difference gradients through time, the carried state (truncated
 * backpropagation through time, step-by-step mode), specs, token ids,
 * evaluation over streams, the vectorized gate functions, allocation
 * failures. SPDX-License-Identifier: MIT
 */
#include "util/sgdtest.h"

#include "model/model_internal.h"
#include "model/rnn_kernels.h"
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

static size_t tensor_index(const sgd_model *m, const char *name)
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

/* ---------------------------------------------------------------- gradients through time */

/*
 * Central differences of the loss in float32 against the analytical
 * gradient, every parameter, with the same rule as test_model's gradcheck
 * (h = 1e-2 max(1, |p|), tolerance 5e-5 + 5e-3 |g|). Each evaluation starts
 * from the same non-zero carried state and the same dropout masks.
 */
typedef struct gcase {
    const char *spec;
    int64_t batch;
} gcase;

static double loss_at(sgd_model *m, const float *x, const int32_t *labels, const float *targets, int64_t batch,
                      const void *state0, size_t sbytes, const uint64_t rng[4])
{
    sgdt_assert_status(sgd_model_set_state(m, state0, sbytes), SGD_OK);
    sgdt_assert_status(sgd_model_set_rng_state(m, rng), SGD_OK);
    double loss;
    sgdt_assert_status(sgd_model_forward(m, x, batch, NULL), SGD_OK);
    sgdt_assert_status(sgd_model_compute_loss(m, labels, targets, &loss), SGD_OK);
    return loss;
}

static void gradcheck(const gcase *gc)
{
    sgd_model *m = spec_model(gc->spec, gc->batch, 5);
    int64_t n_in = sgd_model_num_inputs(m), n_out = sgd_model_num_outputs(m), B = gc->batch;
    int32_t rank;
    int64_t ish[3], osh[3];
    sgd_model_input_shape(m, &rank, ish);
    bool tokens = rank == 1;
    sgd_model_output_shape(m, &rank, osh);
    int64_t classes = osh[rank - 1], positions = n_out / classes;
    float *x = malloc((size_t)(B * n_in) * sizeof *x), *targets = malloc((size_t)(B * n_out) * sizeof *targets);
    int32_t *labels = malloc((size_t)(B * positions) * sizeof *labels);
    size_t sbytes = sgd_model_state_size(m);
    float *s0 = malloc(sbytes);
    assert_true(x && targets && labels && s0);
    if (tokens) {
        sgd_tensor_info ti = tensor(m, 0); /* the embedding's table */
        fill_ids(x, NULL, (size_t)(B * n_in), 7, ti.shape[0]);
    } else {
        fill_sym(x, (size_t)(B * n_in), 7);
    }
    fill_ids(NULL, labels, (size_t)(B * positions), 8, classes);
    fill_sym(targets, (size_t)(B * n_out), 9);
    fill_sym(s0, sbytes / sizeof(float), 10);
    uint64_t rng[4];
    sgd_model_get_rng_state(m, rng);
    bool mse = sgd_model_loss_kind(m) == SGD_LOSS_MSE;
    const int32_t *lab = mse ? NULL : labels;
    const float *tgt = mse ? targets : NULL;

    size_t n = sgd_model_num_params(m);
    float *p = sgd_model_params(m), *ana = malloc(n * sizeof *ana);
    assert_non_null(ana);
    sgdt_assert_status(sgd_model_zero_grad(m), SGD_OK);
    loss_at(m, x, lab, tgt, B, s0, sbytes, rng);
    sgdt_assert_status(sgd_model_backward(m), SGD_OK);
    memcpy(ana, sgd_model_grads(m), n * sizeof *ana);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        float orig = p[i], h = 1e-2f * (fabsf(orig) > 1.0f ? fabsf(orig) : 1.0f);
        float up = orig + h, down = orig - h;
        p[i] = up;
        double lp = loss_at(m, x, lab, tgt, B, s0, sbytes, rng);
        p[i] = down;
        double lm = loss_at(m, x, lab, tgt, B, s0, sbytes, rng);
        p[i] = orig;
        double num = (lp - lm) / ((double)up - (double)down), err = fabs(num - ana[i]);
        double tol = 5e-5 + 5e-3 * fabs(ana[i]);
        if (err > tol)
            fail_msg("%s: parameter %zu: analytical %.8g, numerical %.8g (error %.3g > %.3g)", gc->spec, i,
                     (double)ana[i], num, err, tol);
        worst = err / tol > worst ? err / tol : worst;
    }
    print_message("gradcheck %-62s %4zu params, worst error %.2f of tolerance\n", gc->spec, n, worst);
    free(ana);
    free(x);
    free(targets);
    free(labels);
    free(s0);
    sgd_model_free(m);
}

static void test_gradcheck_through_time(void **state)
{
    (void)state;
    static const gcase cases_[] = {
        /* after an embedding, through the table of V rows (T N > V) and through gathered rows (T N < V) */
        {"tokens(5)-embedding(6,3)-lstm(4)-6", 3},
        {"tokens(5)-embedding(20,3)-lstm(4)-20", 2},
        {"tokens(5)-embedding(6,3)-gru(4)-6", 3},
        {"tokens(3)-embedding(20,3)-gru(4)-20", 2},
        {"tokens(6)-embedding(5,3)-rnn(4)-5", 2},
        /* the embedding on its own (a dropout of 0 between them) */
        {"tokens(4)-embedding(5,3)-dropout(0)-lstm(3)-5", 2},
        /* float sequences, stacked layers, dropout between them (the same masks each time) */
        {"4x3-lstm(4,num_layers=2)-3", 3},
        {"4x3-gru(3,num_layers=2)-3", 3},
        {"4x3-rnn(4,num_layers=3)-3", 2},
        {"4x3-lstm(4,num_layers=2,dropout=0.3)-3", 3},
        {"5x2-gru(3,bias=0)-2", 2},
        /* activations and dense layers at every step, MSE over a sequence */
        {"tokens(4)-embedding(6,3)-lstm(5)-tanh-4-6", 2},
        {"4x3-gru(4)-sigmoid-2:loss=mse", 3},
    };
    for (size_t i = 0; i < sizeof cases_ / sizeof *cases_; i++)
        gradcheck(&cases_[i]);
}

/* ---------------------------------------------------------------- the carried state */

/* T steps at once equal T passes of one step each, from the same state; the state carries. */
static void test_step_mode(void **state)
{
    (void)state;
    static const char *specs[] = {"tokens(6)-embedding(9,4)-lstm(7,num_layers=2)-9",
                                  "tokens(6)-embedding(9,4)-gru(5)-tanh-9", "6x3-rnn(5)-4"};
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++) {
        enum { N = 3, T = 6 };
        sgd_model *m = spec_model(specs[s], N, 11);
        int64_t per = sgd_model_num_inputs(m) / T, out = sgd_model_num_outputs(m) / T;
        float x[N * T * 3], *y = malloc((size_t)(N * T * out) * sizeof *y);
        assert_non_null(y);
        if (per == 1)
            fill_ids(x, NULL, N * T, 12, 9);
        else
            fill_sym(x, (size_t)(N * T * per), 12);
        size_t sb = sgd_model_state_size(m);
        float *s0 = malloc(sb), *s1 = malloc(sb), *s2 = malloc(sb);
        assert_true(s0 && s1 && s2);
        fill_sym(s0, sb / sizeof(float), 13);
        sgdt_assert_status(sgd_model_set_state(m, s0, sb), SGD_OK);
        const float *o;
        sgdt_assert_status(sgd_model_forward(m, x, N, &o), SGD_OK);
        memcpy(y, o, (size_t)(N * T * out) * sizeof *y);
        sgdt_assert_status(sgd_model_get_state(m, s1, sb), SGD_OK);
        assert_int_equal(sgd_model_seq_len(m), T);
        sgdt_assert_status(sgd_model_set_seq_len(m, 1), SGD_OK);
        assert_int_equal(sgd_model_seq_len(m), 1);
        assert_int_equal(sgd_model_num_inputs(m), per);
        sgdt_assert_status(sgd_model_set_state(m, s0, sb), SGD_OK);
        double worst = 0;
        for (int t = 0; t < T; t++) {
            float xt[N * 3];
            for (int n = 0; n < N; n++)
                memcpy(xt + n * per, x + (n * T + t) * per, (size_t)per * sizeof(float));
            sgdt_assert_status(sgd_model_forward(m, xt, N, &o), SGD_OK);
            for (int n = 0; n < N; n++)
                for (int64_t j = 0; j < out; j++) {
                    double d = fabs(o[n * out + j] - y[(n * T + t) * out + j]);
                    worst = d > worst ? d : worst;
                }
        }
        sgdt_assert_status(sgd_model_get_state(m, s2, sb), SGD_OK);
        for (size_t i = 0; i < sb / sizeof(float); i++)
            assert_true(fabs(s1[i] - s2[i]) <= 1e-5);
        assert_true(worst <= 1e-5);
        /* Back to T: the same pass again. */
        sgdt_assert_status(sgd_model_set_seq_len(m, T), SGD_OK);
        sgdt_assert_status(sgd_model_set_state(m, s0, sb), SGD_OK);
        sgdt_assert_status(sgd_model_forward(m, x, N, &o), SGD_OK);
        assert_memory_equal(o, y, (size_t)(N * T * out) * sizeof *y);
        print_message("step mode %-48s T steps one at a time: worst difference %.2g\n", specs[s], worst);
        free(y);
        free(s0);
        free(s1);
        free(s2);
        sgd_model_free(m);
    }
    /* Lengths the layers do not allow, and images. */
    sgd_model *m = spec_model("4x3-lstm(2)-flatten-3", 2, 0);
    sgdt_assert_status(sgd_model_set_seq_len(m, 2), SGD_EINVAL);
    sgdt_assert_error_contains("depends on the sequence length");
    assert_int_equal(sgd_model_seq_len(m), 4);
    assert_string_equal(sgd_model_spec(m), "4x3-lstm(2)-flatten-3:loss=cross_entropy");
    sgdt_assert_status(sgd_model_set_seq_len(m, 0), SGD_EINVAL);
    sgd_model_free(m);
    m = spec_model("1x4x4-conv2d(2,3)-flatten-3", 2, 0);
    sgdt_assert_status(sgd_model_set_seq_len(m, 2), SGD_EINVAL);
    sgdt_assert_error_contains("images");
    assert_int_equal(sgd_model_seq_len(m), 0);
    sgd_model_free(m);
    sgdt_assert_status(sgd_model_set_seq_len(NULL, 2), SGD_EINVAL);
}

/* Consecutive batches continue the streams (truncated BPTT); the state API reads, sets, resets. */
static void test_state_api(void **state)
{
    (void)state;
    enum { N = 2, T = 4 };
    sgd_model *m = spec_model("tokens(4)-embedding(5,3)-lstm(3,num_layers=2)-5", N, 3);
    size_t ih = tensor_index(m, "1.h_n"), ic = tensor_index(m, "1.c_n");
    sgd_tensor_info h = tensor(m, ih);
    assert_int_equal(h.role, SGD_TENSOR_STATE);
    assert_int_equal(h.rank, 3);
    assert_int_equal(h.shape[0], N);
    assert_int_equal(h.shape[1], 2);
    assert_int_equal(h.shape[2], 3);
    assert_int_equal(sgd_model_state_size(m), 2 * N * 2 * 3 * sizeof(float));
    assert_int_equal(tensor(m, ic).role, SGD_TENSOR_STATE);
    /* The parameters are in torch's state_dict order and names, the state after them. */
    static const char *names[] = {"0.weight",     "1.weight_ih_l0", "1.weight_hh_l0", "1.bias_ih_l0",
                                  "1.bias_hh_l0", "1.weight_ih_l1", "1.weight_hh_l1", "1.bias_ih_l1",
                                  "1.bias_hh_l1", "2.weight",       "2.bias",         "1.h_n",
                                  "1.c_n"};
    assert_int_equal(sgd_model_num_tensors(m), 13);
    for (size_t i = 0; i < 13; i++)
        assert_string_equal(tensor(m, i).name, names[i]);
    assert_int_equal(tensor(m, 1).shape[0], 12);
    assert_int_equal(tensor(m, 1).shape[1], 3);

    float x[N * T], x2[N * T * 2];
    int32_t lab[N * T];
    fill_ids(x, lab, N * T, 4, 5);
    /* Two batches in a row equal one batch of twice the length (one stream per row). */
    for (int n = 0; n < N; n++)
        for (int t = 0; t < 2 * T; t++)
            x2[n * 2 * T + t] = x[n * T + t % T];
    float zero[2 * N * 2 * 3] = {0}, st[2 * N * 2 * 3];
    sgdt_assert_status(sgd_model_set_state(m, zero, sizeof zero), SGD_OK);
    float y1[N * T * 5], y2[N * T * 5];
    const float *o;
    sgdt_assert_status(sgd_model_forward(m, x, N, &o), SGD_OK);
    memcpy(y1, o, sizeof y1);
    sgdt_assert_status(sgd_model_get_state(m, st, sizeof st), SGD_OK);
    bool moved = false;
    for (size_t i = 0; i < sizeof st / sizeof *st; i++)
        moved = moved || st[i] != 0.0f;
    assert_true(moved);
    sgdt_assert_status(sgd_model_forward(m, x, N, &o), SGD_OK);
    memcpy(y2, o, sizeof y2);
    assert_true(memcmp(y1, y2, sizeof y1) != 0); /* the second batch started from the carried state */
    sgdt_assert_status(sgd_model_set_seq_len(m, 2 * T), SGD_OK);
    sgdt_assert_status(sgd_model_reset_state(m), SGD_OK);
    sgdt_assert_status(sgd_model_forward(m, x2, N, &o), SGD_OK);
    for (int n = 0; n < N; n++)
        for (int t = 0; t < T; t++)
            for (int j = 0; j < 5; j++) {
                assert_true(fabsf(o[(n * 2 * T + t) * 5 + j] - y1[(n * T + t) * 5 + j]) <= 1e-5f);
                assert_true(fabsf(o[(n * 2 * T + T + t) * 5 + j] - y2[(n * T + t) * 5 + j]) <= 1e-5f);
            }
    /* The gradient stops at the carried state: a second backward from it adds exactly the same. */
    sgdt_assert_status(sgd_model_set_seq_len(m, T), SGD_OK);
    size_t np = sgd_model_num_params(m);
    float *g1 = malloc(np * sizeof *g1);
    assert_non_null(g1);
    sgdt_assert_status(sgd_model_set_state(m, st, sizeof st), SGD_OK);
    sgdt_assert_status(sgd_model_zero_grad(m), SGD_OK);
    sgdt_assert_status(sgd_model_forward_backward(m, x, lab, NULL, N, NULL), SGD_OK);
    memcpy(g1, sgd_model_grads(m), np * sizeof *g1);
    sgdt_assert_status(sgd_model_set_state(m, st, sizeof st), SGD_OK);
    sgdt_assert_status(sgd_model_zero_grad(m), SGD_OK);
    sgdt_assert_status(sgd_model_forward_backward(m, x, lab, NULL, N, NULL), SGD_OK);
    assert_memory_equal(g1, sgd_model_grads(m), np * sizeof *g1);
    free(g1);
    /* reset_state zeroes; set_state refuses non-finite values and wrong sizes, changing nothing. */
    sgdt_assert_status(sgd_model_reset_state(m), SGD_OK);
    sgdt_assert_status(sgd_model_get_state(m, st, sizeof st), SGD_OK);
    assert_memory_equal(st, zero, sizeof st);
    st[5] = NAN;
    sgdt_assert_status(sgd_model_set_state(m, st, sizeof st), SGD_ENONFINITE);
    sgdt_assert_error_contains("1.h_n[0][1][2]");
    sgdt_assert_status(sgd_model_get_state(m, st, sizeof st), SGD_OK);
    assert_memory_equal(st, zero, sizeof st);
    sgdt_assert_status(sgd_model_set_state(m, st, sizeof st - 4), SGD_ESHAPE);
    sgdt_assert_status(sgd_model_get_state(m, st, 4), SGD_ESHAPE);
    sgdt_assert_status(sgd_model_get_state(NULL, st, sizeof st), SGD_EINVAL);
    /* A larger reserve keeps the state of the existing rows. */
    fill_sym(st, sizeof st / sizeof *st, 5);
    sgdt_assert_status(sgd_model_set_state(m, st, sizeof st), SGD_OK);
    sgdt_assert_status(sgd_model_reserve(m, 3), SGD_OK);
    float big[2 * 3 * 2 * 3];
    assert_int_equal(sgd_model_state_size(m), sizeof big);
    sgdt_assert_status(sgd_model_get_state(m, big, sizeof big), SGD_OK);
    assert_memory_equal(big, st, N * 6 * sizeof(float));            /* h_n of rows 0, 1 */
    assert_memory_equal(big + 18, st + 12, N * 6 * sizeof(float));  /* c_n of rows 0, 1 */
    for (int k = 0; k < 6; k++)
        assert_true(big[12 + k] == 0.0f && big[30 + k] == 0.0f); /* the new row starts at zero */
    sgd_model_free(m);
    /* Models without state. */
    m = spec_model("4-3-2", 2, 0);
    assert_int_equal(sgd_model_state_size(m), 0);
    sgdt_assert_status(sgd_model_get_state(m, NULL, 0), SGD_OK);
    sgdt_assert_status(sgd_model_set_state(m, NULL, 0), SGD_OK);
    sgd_model_free(m);
}

/* Evaluation over parallel streams carries the state from batch to batch and leaves the host's alone. */
static void test_evaluate_streams(void **state)
{
    (void)state;
    enum { B = 3, T = 4, K = 5, V = 7 };
    sgd_model *m = spec_model("tokens(4)-embedding(7,3)-gru(4)-7", B, 2);
    float x[K * B * T];
    int32_t lab[K * B * T];
    fill_ids(x, NULL, K * B * T, 20, V);
    fill_ids(NULL, lab, K * B * T, 21, V);
    sgd_dataset *d;
    sgdt_assert_status(sgd_dataset_from_sequence_labels(&d, x, lab, K * B, T, T, NULL), SGD_OK);
    assert_int_equal(sgd_dataset_labels_per_row(d), T);
    assert_int_equal(sgd_dataset_streams(d), 0);
    sgdt_assert_status(sgd_dataset_set_streams(d, B), SGD_OK);
    assert_int_equal(sgd_dataset_streams(d), B);
    sgdt_assert_status(sgd_dataset_set_streams(d, 4), SGD_EINVAL);
    /* The host's carried state, to be left as it is. */
    size_t sb = sgd_model_state_size(m);
    float *s0 = malloc(sb), *s1 = malloc(sb);
    assert_true(s0 && s1);
    fill_sym(s0, sb / sizeof(float), 22);
    sgdt_assert_status(sgd_model_set_state(m, s0, sb), SGD_OK);
    double loss, acc;
    sgdt_assert_status(sgd_model_evaluate(m, d, 0, &loss, &acc), SGD_OK);
    sgdt_assert_status(sgd_model_get_state(m, s1, sb), SGD_OK);
    assert_memory_equal(s0, s1, sb);
    /* By hand: from zero, batch after batch, in evaluation mode. */
    sgdt_assert_status(sgd_model_reset_state(m), SGD_OK);
    sgdt_assert_status(sgd_model_set_training(m, 0), SGD_OK);
    double sum = 0;
    for (int k = 0; k < K; k++) {
        double l;
        sgdt_assert_status(sgd_model_forward(m, x + k * B * T, B, NULL), SGD_OK);
        sgdt_assert_status(sgd_model_compute_loss(m, lab + k * B * T, NULL, &l), SGD_OK);
        sum += l;
    }
    assert_true(fabs(loss - sum / K) <= 1e-6 * fabs(loss));
    assert_true(acc >= 0 && acc <= 1);
    /* Any other batch size starts every batch from zero. */
    double loss1;
    sgdt_assert_status(sgd_model_evaluate(m, d, 1, &loss1, NULL), SGD_OK);
    assert_true(loss1 != loss);
    /* A loader reads the streams in order, B rows at a time. */
    sgd_loader *ld;
    sgdt_assert_status(sgd_loader_new(&ld, d, B, NULL), SGD_EINVAL); /* shuffling by default */
    sgdt_assert_error_contains("shuffle=0 and batch_size=3");
    sgd_loader_options lo;
    sgd_loader_options_init(&lo);
    lo.shuffle = 0;
    sgdt_assert_status(sgd_loader_new(&ld, d, 2, &lo), SGD_EINVAL);
    sgdt_assert_status(sgd_loader_new(&ld, d, B, &lo), SGD_OK);
    sgd_batch b;
    sgdt_assert_status(sgd_loader_next(ld, &b), SGD_OK);
    assert_int_equal(b.size, B);
    assert_ptr_equal(b.labels, lab);
    sgdt_assert_status(sgd_loader_next(ld, &b), SGD_OK);
    assert_ptr_equal(b.labels, lab + B * T);
    sgd_loader_free(ld);
    /* Subsets keep the streams only on step boundaries; a mismatch of labels per row is refused. */
    sgd_dataset *sub;
    sgdt_assert_status(sgd_dataset_subset(&sub, d, B, 2 * B), SGD_OK);
    assert_int_equal(sgd_dataset_streams(sub), B);
    sgd_dataset_free(sub);
    sgdt_assert_status(sgd_dataset_subset(&sub, d, 1, 2 * B), SGD_OK);
    assert_int_equal(sgd_dataset_streams(sub), 0);
    sgd_dataset_free(sub);
    sgd_dataset *one;
    sgdt_assert_status(sgd_dataset_from_labels(&one, x, lab, K * B, T, NULL), SGD_OK);
    sgdt_assert_status(sgd_model_evaluate(m, one, 0, &loss, NULL), SGD_ESHAPE);
    sgdt_assert_error_contains("4 positions per sample, the dataset 1 label per row");
    sgd_dataset_free(one);
    sgd_dataset_free(d);
    free(s0);
    free(s1);
    sgd_model_free(m);
}

/* ---------------------------------------------------------------- specs and token ids */

static void test_specs(void **state)
{
    (void)state;
    static const struct {
        const char *in, *canon;
    } ok[] = {
        {"tokens-embedding(64)-lstm(256)-dense(vocab):vocab=96,seq_len=100",
         "tokens(100)-embedding(96,64)-lstm(256)-96:loss=cross_entropy"},
        {"tokens(7)-embedding(num_embeddings=5,embedding_dim=3)-gru(4,2)-5", "tokens(7)-embedding(5,3)-gru(4,num_layers=2)-5:loss=cross_entropy"},
        {"5x3-rnn(hidden_size=4,nonlinearity=relu,bias=0)-2", "5x3-rnn(4,nonlinearity=relu,bias=0)-2:loss=cross_entropy"},
        {"5x3-lstm(4,num_layers=3,dropout=0.25,batch_first=1)-2", "5x3-lstm(4,num_layers=3,dropout=0.25)-2:loss=cross_entropy"},
        {"tokens(3)-embedding(9,2)-lstm(4)-tanh-dropout(0.1)-dense(vocab):vocab=9",
         "tokens(3)-embedding(9,2)-lstm(4)-tanh-dropout(0.1)-9:loss=cross_entropy"},
        {"5x3-gru(4,dropout=0)-2", "5x3-gru(4)-2:loss=cross_entropy"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        sgd_model *m = spec_model(ok[i].in, 4, 0);
        assert_string_equal(sgd_model_spec(m), ok[i].canon);
        sgd_model *again = spec_model(ok[i].canon, 4, 0);
        assert_string_equal(sgd_model_spec(again), ok[i].canon);
        assert_int_equal(sgd_model_num_params(again), sgd_model_num_params(m));
        sgd_model_free(again);
        sgd_model_free(m);
    }
    /* The vocabulary and the sequence length from the spec's options. */
    sgd_model *m;
    sgdt_assert_status(sgd_model_from_spec(&m, "tokens-embedding(8)-lstm(16)-dense(vocab):vocab=11,seq_len=20", NULL, NULL),
                       SGD_OK);
    assert_string_equal(sgd_model_spec(m), "tokens(20)-embedding(11,8)-lstm(16)-11:loss=cross_entropy");
    assert_int_equal(sgd_model_layer_kind(m, 0), SGD_LAYER_EMBEDDING);
    assert_int_equal(sgd_model_layer_kind(m, 1), SGD_LAYER_LSTM);
    sgd_model_free(m);
    static const struct {
        const char *spec, *needle;
        sgd_status st;
    } bad[] = {
        {"tokens-embedding(8)-lstm(4)-5", "sequence length is not known", SGD_EINVAL},
        {"tokens(5)-embedding(8)-lstm(4)-5", "num_embeddings is not given", SGD_EINVAL},
        {"tokens(5)-embedding(5,8)-lstm(4)-dense(vocab)", "'vocab': the vocabulary size is not known", SGD_EINVAL},
        {"tokens(x)-embedding(5,8)-lstm(4)-5", "expected tokens(T)", SGD_EINVAL},
        {"tokens(0)-embedding(5,8)-lstm(4)-5", "expected tokens(T)", SGD_EINVAL},
        {"784-lstm(4)-5", "lstm takes sequences [T, F]", SGD_EINVAL},
        {"5x3-lstm-5", "missing hidden_size", SGD_EINVAL},
        {"5x3-lstm(0)-5", "hidden_size=0", SGD_EINVAL},
        {"5x3-lstm(4,num_layers=9)-5", "num_layers=9: must be a whole number from 1 to 8", SGD_ERANGE},
        {"5x3-gru(4,dropout=1)-5", "dropout=1: must be in [0, 1)", SGD_ERANGE},
        {"5x3-rnn(4,nonlinearity=sigmoid)-5", "nonlinearity=sigmoid: expected tanh or relu", SGD_EINVAL},
        {"5x3-lstm(4,nonlinearity=relu)-5", "unknown argument 'nonlinearity'", SGD_EINVAL},
        {"5x3-lstm(4,batch_first=0)-5", "only batch_first=1", SGD_EINVAL},
        {"5x3-lstm(4,bidirectional=1)-5", "unknown argument 'bidirectional'", SGD_EINVAL},
        {"tokens(5)-embedding(0,3)-5", "num_embeddings=0", SGD_EINVAL},
        {"tokens(5)-embedding(5,x)-5", "embedding_dim=x", SGD_EINVAL},

        {"1x4x4-embedding(5,3)-5", "rank 1 or 2", SGD_EINVAL},
        {"5x3-lstm(4)-5:vocab=-1", "vocab=-1", SGD_EINVAL},
        {"5x3-lstm(4)-5:vocab=0", "vocab=0", SGD_EINVAL},
        {"tokens-embedding(3,2)-4:seq_len=0", "seq_len=0", SGD_EINVAL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sgd_model *b = (sgd_model *)&m;
        sgd_status st = sgd_model_from_spec(&b, bad[i].spec, NULL, NULL);
        if (st != bad[i].st || strstr(sgd_error_last(), bad[i].needle) == NULL)
            fail_msg("%s: status %d, message '%s' (expected %d and '%s')", bad[i].spec, (int)st, sgd_error_last(),
                     (int)bad[i].st, bad[i].needle);
        assert_null(b);
    }
}

static void test_token_ids(void **state)
{
    (void)state;
    sgd_model *m = spec_model("tokens(3)-embedding(5,2)-lstm(2)-5", 2, 0);
    int32_t lab[6] = {0};
    static const struct {
        float v;
        const char *needle;
    } bad[] = {{2.5f, "x[1][0] is 2.5"}, {-1.0f, "x[1][0] is -1"}, {5.0f, "x[1][0] is 5:"}, {1e30f, "x[1][0]"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        float x[6] = {0, 1, 2, bad[i].v, 4, 0};
        sgdt_assert_status(sgd_model_forward(m, x, 2, NULL), SGD_EINVAL);
        sgdt_assert_error_contains(bad[i].needle);
        sgdt_assert_error_contains("[0, 5)");
        sgdt_assert_status(sgd_model_forward_backward(m, x, lab, NULL, 2, NULL), SGD_EINVAL);
    }
    float x[6] = {0, 1, 2, 3, 4, 0};
    sgdt_assert_status(sgd_model_forward_backward(m, x, lab, NULL, 2, NULL), SGD_OK);
    x[2] = NAN;
    sgdt_assert_status(sgd_model_forward(m, x, 2, NULL), SGD_ENONFINITE);
    /* An embedding that is not first checks in its pass. */
    sgd_model *d = spec_model("tokens(3)-dropout(0)-embedding(5,2)-lstm(2)-5", 2, 0);
    float y[6] = {0, 1, 7, 3, 4, 0};
    sgdt_assert_status(sgd_model_forward(d, y, 2, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("x[0][2] is 7");
    /* Its gradient: the rows used, summed, as torch's dense embedding gradient. */
    float z[6] = {1, 1, 1, 1, 1, 1};
    sgdt_assert_status(sgd_model_zero_grad(d), SGD_OK);
    sgdt_assert_status(sgd_model_forward_backward(d, z, lab, NULL, 2, NULL), SGD_OK);
    const float *g = sgd_model_grads(d) + tensor(d, tensor_index(d, "1.weight")).offset;
    for (int k = 0; k < 10; k++)
        if (k / 2 != 1)
            assert_true(g[k] == 0.0f);
    assert_true(g[2] != 0.0f || g[3] != 0.0f);
    sgd_model_free(d);
    sgd_model_free(m);
}

/* The embedding taken over by the recurrent layer gives what it gives on its own. */
static void test_lookup_fusion(void **state)
{
    (void)state;
    static const int64_t batches[] = {1, 4}; /* T N < V: gathered rows; T N > V: the table */
    for (size_t k = 0; k < 2; k++) {
        int64_t N = batches[k];
        sgd_model *a = spec_model("tokens(5)-embedding(9,4)-lstm(6,num_layers=2)-9", N, 3);
        sgd_model *b = spec_model("tokens(5)-embedding(9,4)-dropout(0)-lstm(6,num_layers=2)-9", N, 3);
        assert_non_null(a->seq.layers[1].lookup_from);
        assert_null(b->seq.layers[2].lookup_from);
        size_t n = sgd_model_num_params(a);
        assert_int_equal(n, sgd_model_num_params(b));
        memcpy(sgd_model_params(b), sgd_model_params(a), n * sizeof(float));
        float x[20];
        int32_t lab[20];
        fill_ids(x, lab, (size_t)(5 * N), 30, 9);
        double la, lb;
        sgdt_assert_status(sgd_model_zero_grad(a), SGD_OK);
        sgdt_assert_status(sgd_model_zero_grad(b), SGD_OK);
        sgdt_assert_status(sgd_model_forward_backward(a, x, lab, NULL, N, &la), SGD_OK);
        sgdt_assert_status(sgd_model_forward_backward(b, x, lab, NULL, N, &lb), SGD_OK);
        assert_true(fabs(la - lb) <= 1e-6 * fabs(la));
        double e = 0, mag = 0;
        for (size_t i = 0; i < n; i++) {
            double d = fabs(sgd_model_grads(a)[i] - sgd_model_grads(b)[i]);
            e = d > e ? d : e;
            mag = fabs(sgd_model_grads(b)[i]) > mag ? fabs(sgd_model_grads(b)[i]) : mag;
        }
        assert_true(e <= 1e-6 * mag);
        sgd_model_free(a);
        sgd_model_free(b);
    }
}

/* ---------------------------------------------------------------- the gate functions */

static void test_vmath(void **state)
{
    (void)state;
    double we = 0, wt = 0, ws = 0, at = 0;
    for (int i = -900000; i <= 900000; i++) {
        float x = (float)i * 1e-4f; /* [-90, 90] */
        double e = exp((double)x), t = tanh((double)x), s = 1.0 / (1.0 + exp(-(double)x));
        if (x > -87.0f && x < 88.0f)
            we = fmax(we, fabs(sgd__vexpf(x) - e) / e);
        wt = fmax(wt, fabs(t) > 1e-30 ? fabs(sgd__vtanhf(x) - t) / fabs(t) : 0);
        at = fmax(at, fabs(sgd__vtanhf(x) - t));
        if (x > -80.0f)
            ws = fmax(ws, fabs(sgd__vsigmoidf(x) - s) / s);
    }
    print_message("vmath: exp %.2g, tanh %.2g (absolute %.2g), sigmoid %.2g relative error\n", we, wt, at, ws);
    assert_true(we < 3e-7);
    assert_true(wt < 1e-6);
    assert_true(at < 5e-7);
    assert_true(ws < 5e-7);
    assert_true(isnan(sgd__vexpf(NAN)) && isnan(sgd__vtanhf(NAN)) && isnan(sgd__vsigmoidf(NAN)));
    assert_true(sgd__vtanhf(INFINITY) >= 0.9999997f && sgd__vtanhf(-INFINITY) <= -0.9999997f);
    assert_true(sgd__vtanhf(INFINITY) <= 1.0f && sgd__vtanhf(-INFINITY) >= -1.0f);
    assert_true(sgd__vsigmoidf(INFINITY) == 1.0f && sgd__vsigmoidf(-INFINITY) < 1e-37f);
    assert_true(sgd__vexpf(0.0f) == 1.0f && sgd__vtanhf(0.0f) == 0.0f && sgd__vsigmoidf(0.0f) == 0.5f);
    assert_true(sgd__vclampf(-0.0f, -1.0f, 1.0f) == 0.0f && sgd__vclampf(5.0f, -1.0f, 1.0f) == 1.0f &&
                sgd__vclampf(-5.0f, -1.0f, 1.0f) == -1.0f && sgd__vclampf(0.25f, -1.0f, 1.0f) == 0.25f);
    /* A diverging run stays visible: NaN through every gate. */
    sgd_model *m = spec_model("3x2-lstm(3)-2", 1, 0);
    float x[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
    sgd_model_params(m)[0] = NAN;
    const float *o;
    sgdt_assert_status(sgd_model_forward(m, x, 1, &o), SGD_OK);
    assert_true(isnan(o[5]));
    sgd_model_free(m);
}

/* ---------------------------------------------------------------- SIMD levels */

/* The cells' kernels give the same bits at every level; the recurrent product agrees with cblas_sgemm. */
static void test_simd_levels(void **state)
{
    (void)state;
    const sgd__rnn_ktab *lv[2];
    size_t nl = sgd__rnn_kern_runnable(lv);
    print_message("levels: %s%s%s (in use: %s)\n", lv[0]->level, nl > 1 ? ", " : "", nl > 1 ? lv[1]->level : "",
                  sgd__rnn_kern()->level);
    enum { n = 203 };
    float in[8][n], out[2][10][n];
    for (int k = 0; k < 8; k++)
        fill_sym(in[k], n, 40 + (uint64_t)k);
    for (int k = 0; k < n; k++)
        in[4][k] = 3 * in[4][k]; /* pre-activations over a wider range */
    for (size_t v = 0; v < nl; v++) {
        float a[4][n];
        memcpy(a, in, sizeof a);
        for (int k = 0; k < 4; k++)
            for (int j = 0; j < n; j++)
                a[k][j] *= 8;
        /* Beyond the clamps, infinities and NaNs of both signs: the same bits too (NaN's sign included). */
        for (int k = 0; k < 4; k++) {
            a[k][3 + k] = NAN;
            a[k][11 + k] = -NAN;
            a[k][19 + k] = INFINITY;
            a[k][27 + k] = -INFINITY;
            a[k][35 + k] = 1e30f;
            a[k][43 + k] = -1e30f;
            a[k][51 + k] = -0.0f;
        }
        lv[v]->lstm_cell(a[0], a[1], a[2], a[3], in[4], out[v][0], out[v][1], out[v][2], n);
        memcpy(out[v][3], a[0], sizeof a[0]);
        float dc[n];
        memcpy(dc, in[5], sizeof dc);
        lv[v]->lstm_cell_back(a[0], a[1], a[2], a[3], in[4], out[v][1], in[6], dc, out[v][4], out[v][5], out[v][6],
                              out[v][7], n);
        memcpy(out[v][8], dc, sizeof dc);
        memcpy(a, in, sizeof a);
        lv[v]->gru_cell(a[0], a[1], a[2], in[4], in[5], in[6], in[7], in[3], out[v][9], out[v][0], n);
        memcpy(out[v][1], a[2], sizeof a[2]);
    }
    if (nl > 1)
        assert_memory_equal(out[0], out[1], sizeof out[0]);
    /* The cell that adds the table's projections itself: the same bits as the cell on the row q + a. */
    for (size_t v = 0; v < nl; v++) {
        if (lv[v]->lstm_cell_q == NULL)
            continue;
        float a[4][n], b[4][n], q[4][n], o1[3][n], o2[3][n];
        for (int k = 0; k < 4; k++)
            for (int j = 0; j < n; j++) {
                a[k][j] = 4 * in[k][j];
                q[k][j] = 4 * in[(k + 5) % 8][j];
                b[k][j] = q[k][j] + a[k][j];
            }
        a[0][7] = NAN;
        b[0][7] = q[0][7] + a[0][7];
        q[2][9] = -INFINITY;
        b[2][9] = q[2][9] + a[2][9];
        lv[v]->lstm_cell(b[0], b[1], b[2], b[3], in[4], o1[0], o1[1], o1[2], n);
        lv[v]->lstm_cell_q(a[0], a[1], a[2], a[3], q[0], q[1], q[2], q[3], in[4], o2[0], o2[1], o2[2], n);
        assert_memory_equal(a, b, sizeof a);
        assert_memory_equal(o1, o2, sizeof o1);
    }
    /* A model trained through both levels: the recurrent product may round differently, nothing else. */
    const sgd__rnn_ktab *was = sgd__rnn_kern();
    double loss[2];
    float *grads[2] = {NULL, NULL};
    size_t np = 0;
    for (size_t v = 0; v < nl; v++) {
        sgd__rnn_kern_force(lv[v]);
        sgd_model *m = spec_model("tokens(9)-embedding(11,5)-lstm(20,num_layers=2)-11", 3, 4);
        float x[27];
        int32_t lab[27];
        fill_ids(x, lab, 27, 41, 11);
        sgdt_assert_status(sgd_model_zero_grad(m), SGD_OK);
        sgdt_assert_status(sgd_model_forward_backward(m, x, lab, NULL, 3, &loss[v]), SGD_OK);
        np = sgd_model_num_params(m);
        grads[v] = malloc(np * sizeof(float));
        assert_non_null(grads[v]);
        memcpy(grads[v], sgd_model_grads(m), np * sizeof(float));
        sgd_model_free(m);
    }
    sgd__rnn_kern_force(was);
    if (nl > 1) {
        assert_true(fabs(loss[0] - loss[1]) <= 1e-6 * fabs(loss[0]));
        double e = 0, mag = 0;
        for (size_t i = 0; i < np; i++) {
            e = fmax(e, fabs(grads[0][i] - grads[1][i]));
            mag = fmax(mag, fabs(grads[0][i]));
        }
        print_message("levels: loss %.9g vs %.9g, gradients within %.2g of the largest\n", loss[0], loss[1], e / mag);
        assert_true(e <= 1e-5 * mag);
    }
    free(grads[0]);
    free(grads[1]);
}

/* ---------------------------------------------------------------- allocation failures */

static sgd_status scenario(sgdt_alloc *t, void *ctx)
{
    const char *spec = ctx;
    sgd_model *m = NULL;
    sgd_model_options o;
    sgd_model_options_init(&o);
    o.max_batch = 2;
    char full[256];
    snprintf(full, sizeof full, "%s:vocab=5", spec);
    sgd_status st = sgd_model_from_spec(&m, full, &o, &t->base);
    float x[8] = {0, 1, 2, 3, 4, 0, 1, 2};
    int32_t lab[8] = {0};
    if (st == SGD_OK)
        st = sgd_model_forward_backward(m, x, lab, NULL, 2, NULL);
    if (st == SGD_OK)
        st = sgd_model_set_seq_len(m, 1);
    if (st != SGD_OK && m != NULL && m->built) {
        /* A failed change of length leaves the model as it was: it still trains. */
        if (sgd_model_seq_len(m) != 4 || sgd_model_forward_backward(m, x, lab, NULL, 2, NULL) != SGD_OK)
            fail_msg("model unusable after a failed set_seq_len: %s", sgd_error_last());
        sgd__err(st, "scenario: set_seq_len failed");
    }
    if (st == SGD_OK)
        st = sgd_model_forward(m, x, 2, NULL);
    if (st == SGD_OK)
        st = sgd_model_set_seq_len(m, 4);
    if (st == SGD_OK)
        st = sgd_model_reserve(m, 5);
    if (st == SGD_OK)
        st = sgd_model_forward_backward(m, x, lab, NULL, 2, NULL);
    sgd_model_free(m);
    return st;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    static const char *specs[] = {"tokens(4)-embedding(3)-lstm(4,num_layers=2,dropout=0.2)-dense(vocab)",
                                  "tokens(4)-embedding(3)-gru(3)-tanh-5", "tokens(4)-embedding(3)-rnn(2,nonlinearity=relu)-5"};
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        long n = sgdt_walk_alloc_failures(scenario, (void *)(uintptr_t)specs[i]);
        assert_true(n >= 6);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torch_parity),
        cmocka_unit_test(test_gradcheck_through_time),
        cmocka_unit_test(test_step_mode),
        cmocka_unit_test(test_state_api),
        cmocka_unit_test(test_evaluate_streams),
        cmocka_unit_test(test_specs),
        cmocka_unit_test(test_token_ids),
        cmocka_unit_test(test_lookup_fusion),
        cmocka_unit_test(test_vmath),
        cmocka_unit_test(test_simd_levels),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
