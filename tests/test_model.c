/*
 * Tests of the model module: building (C API and spec), initialisation,
 * parameter arenas, forward values, gradient checks of every layer and loss,
 * PyTorch parity, bad input, modes, determinism, allocation behaviour.
 */
#include "util/sgdtest.h"

#include "model/model_internal.h"
#include "sgd_config.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

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

/* Uniform floats in [lo, hi) from a seeded generator. */
static void fill(float *p, size_t n, uint64_t seed, float lo, float hi)
{
    sgd__rng r;
    sgd__rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * sgd__rng_uniform_f(&r);
}

static void fill_labels(int32_t *p, size_t n, uint64_t seed, int32_t classes)
{
    sgd__rng r;
    sgd__rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        p[i] = (int32_t)sgd__rng_below(&r, (uint64_t)classes);
}

/* ---------------------------------------------------------------- tensors */

static void test_tensors(void **state)
{
    (void)state;
    float arena[64];
    for (int i = 0; i < 64; i++)
        arena[i] = (float)i;
    sgd__tensor a, b, c;
    int64_t s23[2] = {2, 3}, s34[2] = {3, 4}, s24[2] = {2, 4}, s4[4] = {1, 2, 2, 2};
    sgdt_assert_status(sgd__tensor_view(&a, arena, 64, 0, 2, s23, "t"), SGD_OK);
    sgdt_assert_status(sgd__tensor_view(&b, arena, 64, 6, 2, s34, "t"), SGD_OK);
    sgdt_assert_status(sgd__tensor_view(&c, arena, 64, 40, 2, s24, "t"), SGD_OK);
    assert_int_equal(sgd__tensor_numel(&b), 12);
    assert_ptr_equal(b.data, arena + 6);
    assert_int_equal(b.shape[2], 1);
    sgd__tensor r4;
    sgdt_assert_status(sgd__tensor_view(&r4, arena, 64, 56, 4, s4, "t"), SGD_OK);
    assert_int_equal(sgd__tensor_numel(&r4), 8);
    char buf[64];
    sgd__tensor_shape_str(&r4, buf, sizeof buf);
    assert_string_equal(buf, "[1, 2, 2, 2]");
    /* Views must fit the arena and have sane ranks and dimensions. */
    sgd__tensor bad;
    sgdt_assert_status(sgd__tensor_view(&bad, arena, 64, 57, 4, s4, "t"), SGD_EOVERFLOW);
    sgdt_assert_error_contains("ends past the arena");
    sgdt_assert_status(sgd__tensor_view(&bad, arena, 64, 0, 5, s4, "t"), SGD_EINVAL);
    sgdt_assert_status(sgd__tensor_view(&bad, arena, 64, 0, 0, s4, "t"), SGD_EINVAL);
    int64_t neg[2] = {2, -1};
    sgdt_assert_status(sgd__tensor_view(&bad, arena, 64, 0, 2, neg, "t"), SGD_EINVAL);
    sgdt_assert_status(sgd__tensor_view(&bad, arena, 64, SIZE_MAX - 2, 2, s23, "t"), SGD_EOVERFLOW);
    /* The product checks the shapes and computes C = A B. */
    sgdt_assert_status(sgd__tensor_gemm(false, false, &a, &b, 0.0f, &c, "t"), SGD_OK);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            float want = 0;
            for (int k = 0; k < 3; k++)
                want += (float)(i * 3 + k) * (float)(6 + k * 4 + j);
            assert_true(c.data[i * 4 + j] == want);
        }
    sgdt_assert_status(sgd__tensor_gemm(false, false, &b, &a, 0.0f, &c, "t"), SGD_ESHAPE);
    sgdt_assert_error_contains("[3, 4] x [2, 3] -> [2, 4]");
    sgdt_assert_status(sgd__tensor_gemm(true, false, &a, &b, 0.0f, &c, "t"), SGD_ESHAPE);
    sgdt_assert_status(sgd__tensor_gemm(false, false, &a, &b, 0.0f, &r4, "t"), SGD_ESHAPE);
    sgdt_assert_error_contains("rank");
}

/* ---------------------------------------------------------------- building */

static void test_options_and_builder(void **state)
{
    (void)state;
    sgd_model_options o;
    sgd_model_options_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.init, SGD_INIT_TORCH);
    assert_int_equal(o.max_batch, 256);
    assert_int_equal(o.loss, SGD_LOSS_CROSS_ENTROPY);
    assert_int_equal(o.blas_threads, 1);
    sgd_model_options_init(NULL);

    sgd_model *m;
    sgdt_assert_status(sgd_model_new(&m, 4, NULL), SGD_OK);
    assert_string_equal(sgd_model_spec(m), "4:loss=cross_entropy");
    sgdt_assert_status(sgd_model_add_dense(m, 8, 1), SGD_OK);
    sgdt_assert_status(sgd_model_add_activation(m, SGD_LAYER_TANH), SGD_OK);
    sgdt_assert_status(sgd_model_add_dropout(m, 0.25), SGD_OK);
    sgdt_assert_status(sgd_model_add_leaky_relu(m, 0.1), SGD_OK);
    sgdt_assert_status(sgd_model_add_dense(m, 3, 0), SGD_OK);
    assert_string_equal(sgd_model_spec(m), "4-8-tanh-dropout(0.25)-leaky_relu(0.1)-dense(3,bias=0):loss=cross_entropy");
    assert_int_equal(sgd_model_num_layers(m), 5);
    assert_int_equal(sgd_model_layer_kind(m, 2), SGD_LAYER_DROPOUT);
    assert_int_equal(sgd_model_layer_kind(m, 5), 0);
    assert_int_equal(sgd_model_num_inputs(m), 4);
    assert_int_equal(sgd_model_num_outputs(m), 3);
    /* Not built yet. */
    assert_null(sgd_model_params(m));
    assert_int_equal(sgd_model_num_params(m), 0);
    float x[4] = {0};
    sgdt_assert_status(sgd_model_forward(m, x, 1, NULL), SGD_ESTATE);
    sgdt_assert_error_contains("not built");
    sgdt_assert_status(sgd_model_zero_grad(m), SGD_ESTATE);
    /* Bad layers leave the model as it was. */
    sgdt_assert_status(sgd_model_add_dense(m, 0, 1), SGD_EINVAL);
    sgdt_assert_error_contains("units=0");
    sgdt_assert_status(sgd_model_add_activation(m, SGD_LAYER_DENSE), SGD_EINVAL);
    sgdt_assert_error_contains("sgd_model_add_dense");
    sgdt_assert_status(sgd_model_add_activation(m, SGD_LAYER_DROPOUT), SGD_EINVAL);
    sgdt_assert_status(sgd_model_add_activation(m, SGD_LAYER_LEAKY_RELU), SGD_EINVAL);
    sgdt_assert_status(sgd_model_add_activation(m, 77), SGD_EINVAL);
    sgdt_assert_error_contains("kind=77");
    sgdt_assert_status(sgd_model_add_dropout(m, 1.5), SGD_ERANGE);
    sgdt_assert_error_contains("p=1.5");
    sgdt_assert_status(sgd_model_add_dropout(m, NAN), SGD_ERANGE);
    sgdt_assert_status(sgd_model_add_leaky_relu(m, INFINITY), SGD_ENONFINITE);
    assert_int_equal(sgd_model_num_layers(m), 5);
    /* Options out of range. */
    o.max_batch = 0;
    sgdt_assert_status(sgd_model_build(m, &o), SGD_EINVAL);
    sgdt_assert_error_contains("max_batch=0");
    sgd_model_options_init(&o);
    o.init = 9;
    sgdt_assert_status(sgd_model_build(m, &o), SGD_EINVAL);
    sgdt_assert_error_contains("init=9");
    sgd_model_options_init(&o);
    o.blas_threads = -1;
    sgdt_assert_status(sgd_model_build(m, &o), SGD_EINVAL);
    sgd_model_options_init(&o);
    o.loss = 0;
    sgdt_assert_status(sgd_model_build(m, &o), SGD_EINVAL);
    sgdt_assert_error_contains("loss=0");
    sgd_model_options_init(&o);
    o.struct_size = 8;
    sgdt_assert_status(sgd_model_build(m, &o), SGD_EINVAL);
    sgdt_assert_error_contains("struct_size");
    sgd_model_options_init(&o);
    o.struct_size = sizeof o + 8; /* a program built against newer headers */
    sgdt_assert_status(sgd_model_build(m, &o), SGD_EINVAL);
    sgdt_assert_status(sgd_model_build(m, NULL), SGD_OK);
    sgdt_assert_status(sgd_model_build(m, NULL), SGD_ESTATE);
    sgdt_assert_status(sgd_model_add_dense(m, 2, 1), SGD_ESTATE);
    sgdt_assert_error_contains("already built");
    assert_int_equal(sgd_model_num_params(m), 4 * 8 + 8 + 8 * 3);
    sgd_model_free(m);

    /* Refused architectures. */
    sgdt_assert_status(sgd_model_new(&m, 4, NULL), SGD_OK);
    sgdt_assert_status(sgd_model_build(m, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("no layer with parameters");
    sgdt_assert_status(sgd_model_add_dense(m, 3, 1), SGD_OK);
    sgdt_assert_status(sgd_model_add_activation(m, SGD_LAYER_SOFTMAX), SGD_OK);
    sgdt_assert_status(sgd_model_build(m, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("softmax");
    sgd_model_options_init(&o);
    o.loss = SGD_LOSS_MSE; /* softmax then MSE is legitimate */
    sgdt_assert_status(sgd_model_build(m, &o), SGD_OK);
    sgdt_assert_status(sgd_model_set_loss_kind(m, SGD_LOSS_CROSS_ENTROPY), SGD_EINVAL);
    assert_int_equal(sgd_model_loss_kind(m), SGD_LOSS_MSE);
    sgd_model_free(m);
    sgdt_assert_status(sgd_model_from_spec(&m, "4-1-sigmoid", NULL, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("at least 2 outputs");
    assert_null(m);
    sgdt_assert_status(sgd_model_from_spec(&m, "4-1-sigmoid:loss=bce_with_logits", NULL, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("final sigmoid");

    /* NULL handles. */
    sgdt_assert_status(sgd_model_new(NULL, 4, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_model_new(&m, 0, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("n_inputs=0");
    assert_null(m);
    sgdt_assert_status(sgd_model_add_dense(NULL, 3, 1), SGD_EINVAL);
    sgdt_assert_status(sgd_model_add_activation(NULL, SGD_LAYER_RELU), SGD_EINVAL);
    sgdt_assert_status(sgd_model_add_dropout(NULL, 0.1), SGD_EINVAL);
    sgdt_assert_status(sgd_model_add_leaky_relu(NULL, 0.1), SGD_EINVAL);
    sgdt_assert_status(sgd_model_build(NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_model_set_loss_kind(NULL, 1), SGD_EINVAL);
    sgdt_assert_status(sgd_model_zero_grad(NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_model_reset(NULL, 0), SGD_EINVAL);
    sgdt_assert_status(sgd_model_set_training(NULL, 1), SGD_EINVAL);
    sgdt_assert_status(sgd_model_reserve(NULL, 10), SGD_EINVAL);
    sgdt_assert_status(sgd_model_set_blas_threads(NULL, 1), SGD_EINVAL);
    sgdt_assert_status(sgd_model_backward(NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_model_compute_loss(NULL, NULL, NULL, NULL), SGD_EINVAL);
    sgd_model_free(NULL);
    assert_string_equal(sgd_model_spec(NULL), "");
    assert_int_equal(sgd_model_num_inputs(NULL), 0);
    assert_int_equal(sgd_model_num_outputs(NULL), 0);
    assert_int_equal(sgd_model_num_layers(NULL), 0);
    assert_int_equal(sgd_model_layer_kind(NULL, 0), 0);
    assert_int_equal(sgd_model_loss_kind(NULL), 0);
    assert_int_equal(sgd_model_num_params(NULL), 0);
    assert_int_equal(sgd_model_num_param_tensors(NULL), 0);
    assert_null(sgd_model_params(NULL));
    assert_null(sgd_model_grads(NULL));
    assert_int_equal(sgd_model_is_training(NULL), 0);
    assert_int_equal(sgd_model_max_batch(NULL), 0);
}

static void test_spec_grammar(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *canonical;
    } good[] = {
        {"784-256-relu-128-relu-10", "784-256-relu-128-relu-10:loss=cross_entropy"},
        {" 784 - 64 - relu - 32 - tanh - 10 ", "784-64-relu-32-tanh-10:loss=cross_entropy"},
        {"20-dropout(0.2)-16-leaky_relu-8-gelu-4-gelu(tanh)-3", NULL},
        {"5-dense(4, bias=0)-sigmoid-linear(units=3)", "5-dense(4,bias=0)-sigmoid-3:loss=cross_entropy"},
        {"5-4-leaky_relu(negative_slope=-0.2)-dropout(p=0.5)-softmax-2:loss=mse",
         "5-4-leaky_relu(-0.2)-dropout(0.5)-softmax-2:loss=mse"},
        {"5-4-gelu(approximate=none)-1:loss=bce_with_logits,init=xavier_uniform,seed=7",
         "5-4-gelu-1:loss=bce_with_logits"},
        {"3-2:init=he_normal,max_batch=7,blas_threads=0", "3-2:loss=cross_entropy"},
        {"3-relu()-2:init=kaiming_uniform", "3-relu-2:loss=cross_entropy"},
        {"3-dropout(1e-3)-2", "3-dropout(0.001)-2:loss=cross_entropy"},
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        sgd_model *m = spec_model(good[i].spec, 1);
        const char *canon = sgd_model_spec(m);
        if (good[i].canonical != NULL && strcmp(canon, good[i].canonical) != 0)
            fail_msg("spec \"%s\": canonical \"%s\", expected \"%s\"", good[i].spec, canon, good[i].canonical);
        /* The canonical form builds the same architecture. */
        sgd_model *again = spec_model(canon, 1);
        assert_string_equal(sgd_model_spec(again), canon);
        assert_int_equal(sgd_model_num_params(again), sgd_model_num_params(m));
        sgd_model_free(again);
        sgd_model_free(m);
    }
    sgd_model *m = spec_model("20-dropout(0.2)-16-leaky_relu-8-gelu-4-gelu(tanh)-3", 1);
    assert_string_equal(sgd_model_spec(m),
                        "20-dropout(0.2)-16-leaky_relu(0.01)-8-gelu-4-gelu(approximate=tanh)-3:loss=cross_entropy");
    assert_int_equal(sgd_model_layer_kind(m, 6), SGD_LAYER_GELU_TANH);
    sgd_model_free(m);
    /* Options from the spec override the struct; max_batch and the init are applied. */
    m = spec_model("3-2:init=he_normal,max_batch=7,blas_threads=0", 1);
    assert_int_equal(sgd_model_max_batch(m), 7);
    assert_int_equal(m->init, SGD_INIT_HE_NORMAL);
    assert_int_equal(m->blas_threads, 0);
    sgd_model_free(m);

    static const struct {
        const char *spec, *needle;
        sgd_status status;
    } bad[] = {
        {"", "missing kind", SGD_EINVAL},
        {"784", "no layers", SGD_EINVAL},
        {"784-", "empty layer", SGD_EINVAL},
        {"784--10", "layer 1 '': empty layer", SGD_EINVAL},
        {"x-10", "input 'x'", SGD_EINVAL},
        {"0-10", "input '0'", SGD_EINVAL},
        {"-5-10", "missing the number of inputs", SGD_EINVAL},
        {"784-rleu-10", "layer 1 'rleu': unknown layer", SGD_EINVAL},
        {"784-dense-10", "missing the number of units", SGD_EINVAL},
        {"784-dense(10,bias=2)", "bias=2", SGD_EINVAL},
        {"784-dense(10,bais=0)", "unknown argument 'bais'", SGD_EINVAL},
        {"784-dense(10,12)", "needs a key=", SGD_EINVAL},
        {"784-relu(3)-10", "unexpected argument '3'", SGD_EINVAL},
        {"784-dropout(1.5)-10", "p=1.5: must be in [0, 1]", SGD_ERANGE},
        {"784-dropout(x)-10", "p=x", SGD_EINVAL},
        {"784-leaky_relu(nan)-10", "negative_slope=nan", SGD_EINVAL},
        {"784-10(", "'(' without ')'", SGD_EINVAL},
        {"784-dense(10))", "unexpected text after ')'", SGD_EINVAL},
        {"784-10)", "')' without '('", SGD_EINVAL},
        {"784-gelu(cubic)-10", "approximate=cubic", SGD_EINVAL},
        {"784-16777217", "units '16777217'", SGD_EINVAL},
        {"784-10:lr=1", "unknown key 'lr'", SGD_ENOTFOUND},
        {"784-10:loss=hinge", "loss=hinge", SGD_EINVAL},
        {"784-10:init=orthogonal", "init=orthogonal", SGD_EINVAL},
        {"784-10:seed=-1", "seed=-1", SGD_EINVAL},
        {"784-10:max_batch=0", "max_batch=0", SGD_EINVAL},
        {"784-10:blas_threads=5000", "blas_threads=5000", SGD_EINVAL},
        {"784-10:seed", "not key=value", SGD_EINVAL},
        {"784-relu", "no layer with parameters", SGD_EINVAL},
        {"784-10-softmax", "softmax", SGD_EINVAL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        m = (sgd_model *)&i;
        sgd_status st = sgd_model_from_spec(&m, bad[i].spec, NULL, NULL);
        if (st != bad[i].status || m != NULL || strstr(sgd_error_last(), bad[i].needle) == NULL)
            fail_msg("spec \"%s\": %s \"%s\"; expected %s with \"%s\"", bad[i].spec, sgd_status_str(st),
                     sgd_error_last(), sgd_status_str(bad[i].status), bad[i].needle);
    }
    /* Limits: the length of a spec and the number of layers. */
    char *big = malloc(8192);
    assert_non_null(big);
    memset(big, '1', 8191);
    big[8191] = '\0';
    sgdt_assert_status(sgd_model_from_spec(&m, big, NULL, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("longer than 4096");
    size_t at = (size_t)sprintf(big, "4");
    for (int i = 0; i < SGD_MODEL_MAX_LAYERS + 1; i++)
        at += (size_t)sprintf(big + at, "-1");
    sgdt_assert_status(sgd_model_from_spec(&m, big, NULL, NULL), SGD_EOVERFLOW);
    sgdt_assert_error_contains("at most 1024 layers");
    free(big);
    sgdt_assert_status(sgd_model_from_spec(&m, NULL, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_model_from_spec(NULL, "3-2", NULL, NULL), SGD_EINVAL);
}

/* ---------------------------------------------------------------- parameters */

static void test_param_enumeration(void **state)
{
    (void)state;
    sgd_model *m = spec_model("784-256-relu-128-relu-10", 0);
    assert_int_equal(sgd_model_num_params(m), 235146); /* torch: sum(p.numel()) */
    assert_int_equal(sgd_model_num_param_tensors(m), 6);
    static const char *names[] = {"0.weight", "2.weight", "4.weight", "0.bias", "2.bias", "4.bias"};
    static const int64_t shapes[6][2] = {{256, 784}, {128, 256}, {10, 128}, {256, 1}, {128, 1}, {10, 1}};
    size_t offset = 0;
    for (size_t i = 0; i < 6; i++) {
        sgd_param_info info;
        memset(&info, 0xab, sizeof info);
        info.struct_size = sizeof info;
        sgdt_assert_status(sgd_model_param_info(m, i, &info), SGD_OK);
        assert_string_equal(info.name, names[i]);
        assert_int_equal(info.kind, i < 3 ? SGD_PARAM_WEIGHT : SGD_PARAM_BIAS);
        assert_int_equal(info.layer, (int)(i % 3) * 2);
        assert_int_equal(info.rank, i < 3 ? 2 : 1);
        assert_int_equal(info.shape[0], shapes[i][0]);
        assert_int_equal(info.shape[1], shapes[i][1]);
        assert_int_equal(info.shape[2], 1);
        assert_int_equal(info.offset, offset); /* contiguous: weights, then biases */
        offset += info.numel;
        size_t idx;
        sgdt_assert_status(sgd_model_find_param(m, names[i], &idx), SGD_OK);
        assert_int_equal(idx, i);
    }
    assert_int_equal(offset, sgd_model_num_params(m));
    /* 64-byte aligned arenas. */
    assert_int_equal((uintptr_t)sgd_model_params(m) % 64, 0);
    assert_int_equal((uintptr_t)sgd_model_grads(m) % 64, 0);
    /* A caller with an older, shorter struct gets what fits and nothing past it. */
    unsigned char raw[sizeof(sgd_param_info) + 16];
    memset(raw, 0xcd, sizeof raw);
    sgd_param_info *p = (sgd_param_info *)(void *)raw;
    p->struct_size = (uint32_t)sizeof(sgd_param_info);
    sgdt_assert_status(sgd_model_param_info(m, 1, p), SGD_OK);
    assert_int_equal(raw[sizeof(sgd_param_info)], 0xcd);
    p->struct_size = 12;
    sgdt_assert_status(sgd_model_param_info(m, 1, p), SGD_EINVAL);
    sgdt_assert_error_contains("struct_size=12");
    /* Errors. */
    sgd_param_info info;
    info.struct_size = sizeof info;
    sgdt_assert_status(sgd_model_param_info(m, 6, &info), SGD_EINVAL);
    sgdt_assert_error_contains("index=6");
    sgdt_assert_status(sgd_model_param_info(m, 0, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_model_param_info(NULL, 0, &info), SGD_EINVAL);
    size_t idx;
    sgdt_assert_status(sgd_model_find_param(m, "1.weight", &idx), SGD_ENOTFOUND);
    sgdt_assert_error_contains("'1.weight'");
    sgdt_assert_status(sgd_model_find_param(m, NULL, &idx), SGD_EINVAL);

    /* get/set with length checks; set refuses non-finite values and names them. */
    size_t n = sgd_model_num_params(m);
    float *copy = malloc(n * sizeof *copy);
    assert_non_null(copy);
    sgdt_assert_status(sgd_model_get_params(m, copy, n), SGD_OK);
    assert_memory_equal(copy, sgd_model_params(m), n * sizeof *copy);
    sgdt_assert_status(sgd_model_get_params(m, copy, n - 1), SGD_ESHAPE);
    sgdt_assert_error_contains("235146");
    copy[0] += 1.0f;
    sgdt_assert_status(sgd_model_set_params(m, copy, n), SGD_OK);
    assert_true(sgd_model_params(m)[0] == copy[0]);
    copy[200704 + 3 * 256 + 17] = NAN; /* 2.weight[3][17] */
    copy[1] = 5.0f;
    sgdt_assert_status(sgd_model_set_params(m, copy, n), SGD_ENONFINITE);
    sgdt_assert_error_contains("2.weight[3][17]");
    assert_true(sgd_model_params(m)[1] != 5.0f); /* nothing changed */
    copy[200704 + 3 * 256 + 17] = 0.0f;
    copy[235146 - 1] = INFINITY;
    sgdt_assert_status(sgd_model_set_params(m, copy, n), SGD_ENONFINITE);
    sgdt_assert_error_contains("4.bias[9]");
    sgdt_assert_status(sgd_model_set_params(m, copy, 3), SGD_ESHAPE);
    sgdt_assert_status(sgd_model_set_params(m, NULL, n), SGD_EINVAL);
    sgdt_assert_status(sgd_model_get_params(m, NULL, n), SGD_EINVAL);
    free(copy);
    sgd_model_free(m);
}

/* Mean and variance of n floats. */
static void moments(const float *p, size_t n, double *mean, double *var, double *maxabs)
{
    double s = 0, s2 = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        s += p[i];
        s2 += (double)p[i] * p[i];
        mx = fabs(p[i]) > mx ? fabs(p[i]) : mx;
    }
    *mean = s / (double)n;
    *var = s2 / (double)n - *mean * *mean;
    *maxabs = mx;
}

static void test_init(void **state)
{
    (void)state;
    static const struct {
        const char *opt;
        bool uniform;
        double scale; /* bound for uniform, std for normal, for 784 -> 256 */
        bool zero_bias;
    } inits[] = {
        {"torch", true, 1.0 / 28.0, false},
        {"xavier_uniform", true, 0.07595545253127024 /* sqrt(6/1040) */, true},
        {"xavier_normal", false, 0.04385290096535146 /* sqrt(2/1040) */, true},
        {"he_uniform", true, 0.08748177652797064 /* sqrt(6/784) */, true},
        {"he_normal", false, 0.050507627227610534 /* sqrt(2/784) */, true},
    };
    for (size_t k = 0; k < sizeof inits / sizeof *inits; k++) {
        char spec[96];
        snprintf(spec, sizeof spec, "784-256-relu-10:init=%s", inits[k].opt);
        sgd_model *m = spec_model(spec, 11);
        const float *w = sgd_model_params(m);
        size_t nw = 784 * 256;
        double mean, var, mx;
        moments(w, nw, &mean, &var, &mx);
        double want_var = inits[k].uniform ? inits[k].scale * inits[k].scale / 3.0 : inits[k].scale * inits[k].scale;
        if (fabs(mean) > 4.0 * sqrt(want_var / (double)nw) || fabs(var / want_var - 1.0) > 0.02)
            fail_msg("init %s: mean %g var %g, expected 0 and %g", inits[k].opt, mean, var, want_var);
        if (inits[k].uniform)
            assert_true(mx <= inits[k].scale && mx > 0.999 * inits[k].scale);
        else
            assert_true(mx > 3.5 * inits[k].scale && mx < 6.5 * inits[k].scale);
        sgd_param_info info;
        info.struct_size = sizeof info;
        size_t bi;
        sgdt_assert_status(sgd_model_find_param(m, "0.bias", &bi), SGD_OK);
        sgdt_assert_status(sgd_model_param_info(m, bi, &info), SGD_OK);
        moments(w + info.offset, info.numel, &mean, &var, &mx);
        if (inits[k].zero_bias)
            assert_true(mx == 0.0);
        else
            assert_true(mx <= 1.0 / 28.0 && mx > 0.9 / 28.0);
        sgd_model_free(m);
    }
    /* Reproducible bit for bit; another seed gives other weights; reset(seed) equals a fresh build. */
    sgd_model *a = spec_model("30-20-tanh-dropout(0.5)-5", 3), *b = spec_model("30-20-tanh-dropout(0.5)-5", 3);
    sgd_model *c = spec_model("30-20-tanh-dropout(0.5)-5", 4);
    size_t n = sgd_model_num_params(a);
    assert_memory_equal(sgd_model_params(a), sgd_model_params(b), n * sizeof(float));
    assert_memory_not_equal(sgd_model_params(a), sgd_model_params(c), n * sizeof(float));
    uint64_t sa[4], sc[4];
    sgd_model_get_rng_state(a, sa);
    sgdt_assert_status(sgd_model_reset(c, 3), SGD_OK);
    assert_memory_equal(sgd_model_params(a), sgd_model_params(c), n * sizeof(float));
    sgd_model_get_rng_state(c, sc);
    assert_memory_equal(sa, sc, sizeof sa);
    sgd_model_free(a);
    sgd_model_free(b);
    sgd_model_free(c);
}

/* ---------------------------------------------------------------- forward values */

static double ref_act(int32_t kind, double slope, double v)
{
    switch (kind) {
    case SGD_LAYER_RELU: return v > 0 ? v : 0;
    case SGD_LAYER_LEAKY_RELU: return v > 0 ? v : slope * v;
    case SGD_LAYER_TANH: return tanh(v);
    case SGD_LAYER_SIGMOID: return 1.0 / (1.0 + exp(-v));
    case SGD_LAYER_GELU: return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
    case SGD_LAYER_GELU_TANH: return 0.5 * v * (1.0 + tanh(sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    default: return v;
    }
}

/* The model's outputs for x (batch rows), computed in double from the definitions (evaluation mode). */
static void ref_forward(const sgd_model *m, const float *x, int64_t batch, double *out)
{
    enum { MAXW = 64 };
    double cur[16][MAXW], nxt[16][MAXW];
    assert_true(batch <= 16 && m->n_in <= MAXW);
    for (int64_t r = 0; r < batch; r++)
        for (int64_t j = 0; j < m->n_in; j++)
            cur[r][j] = x[r * m->n_in + j];
    for (size_t i = 0; i < m->seq.n; i++) {
        const sgd__layer *l = &m->seq.layers[i];
        int32_t kind = l->op->kind;
        int64_t lin = sgd__shape_last(&l->in), lout = sgd__shape_last(&l->out);
        assert_true(lout <= MAXW);
        for (int64_t r = 0; r < batch; r++) {
            if (kind == SGD_LAYER_DENSE) {
                const float *w = l->t[0], *b = l->n_t > 1 ? l->t[1] : NULL;
                for (int64_t o = 0; o < lout; o++) {
                    double s = b ? b[o] : 0.0;
                    for (int64_t k = 0; k < lin; k++)
                        s += (double)w[o * lin + k] * cur[r][k];
                    nxt[r][o] = s;
                }
            } else if (kind == SGD_LAYER_SOFTMAX) {
                double mx = cur[r][0], s = 0;
                for (int64_t k = 1; k < lout; k++)
                    mx = cur[r][k] > mx ? cur[r][k] : mx;
                for (int64_t k = 0; k < lout; k++)
                    s += exp(cur[r][k] - mx);
                for (int64_t k = 0; k < lout; k++)
                    nxt[r][k] = exp(cur[r][k] - mx) / s;
            } else {
                for (int64_t k = 0; k < lout; k++)
                    nxt[r][k] = kind == SGD_LAYER_DROPOUT ? cur[r][k] : ref_act(kind, l->da[0], cur[r][k]);
            }
        }
        memcpy(cur, nxt, sizeof cur);
    }
    int64_t c = sgd_model_num_outputs(m);
    for (int64_t r = 0; r < batch; r++)
        for (int64_t k = 0; k < c; k++)
            out[r * c + k] = cur[r][k];
}

static void test_forward_values(void **state)
{
    (void)state;
    static const char *specs[] = {
        "6-5-relu-4-leaky_relu(0.2)-4-tanh-3",
        "6-5-sigmoid-5-gelu-4-gelu(tanh)-3-softmax-3:loss=mse",
        "6-dense(5,bias=0)-leaky_relu(-0.3)-tanh-relu-dropout(0.5)-7-3",
        "6-dropout(0.3)-4-sigmoid-sigmoid-2:loss=bce_with_logits",
    };
    for (size_t k = 0; k < sizeof specs / sizeof *specs; k++) {
        sgd_model *m = spec_model(specs[k], 5 + k);
        float x[9 * 6];
        fill(x, 9 * 6, 77 + k, -2.0f, 2.0f);
        sgdt_assert_status(sgd_model_set_training(m, 0), SGD_OK);
        const float *y;
        sgdt_assert_status(sgd_model_forward(m, x, 9, &y), SGD_OK);
        double ref[9 * 8];
        ref_forward(m, x, 9, ref);
        int64_t c = sgd_model_num_outputs(m);
        for (int64_t i = 0; i < 9 * c; i++)
            if (fabs(y[i] - ref[i]) > 1e-5 * (1.0 + fabs(ref[i])))
                fail_msg("%s: output %lld is %.9g, reference %.9g", specs[k], (long long)i, (double)y[i], ref[i]);
        /* predict gives the same, in evaluation mode whatever the model's mode. */
        sgdt_assert_status(sgd_model_set_training(m, 1), SGD_OK);
        float out[9 * 8];
        sgdt_assert_status(sgd_model_predict(m, x, 9, out, sizeof out / sizeof *out), SGD_OK);
        for (int64_t i = 0; i < 9 * c; i++)
            assert_true(fabs(out[i] - ref[i]) <= 1e-5 * (1.0 + fabs(ref[i])));
        assert_int_equal(sgd_model_is_training(m), 1);
        sgd_model_free(m);
    }
    /* Known values of GELU. */
    sgd_model *m = spec_model("1-dense(1,bias=0)-gelu-dense(1,bias=0):loss=mse", 0);
    float ones[2] = {1.0f, 1.0f};
    sgd_model_set_params(m, ones, 2);
    float one = 1.0f;
    const float *y;
    sgdt_assert_status(sgd_model_forward(m, &one, 1, &y), SGD_OK);
    assert_true(fabs(y[0] - 0.8413447460685429) < 1e-6);
    sgd_model_free(m);
    m = spec_model("1-dense(1,bias=0)-gelu(tanh)-dense(1,bias=0):loss=mse", 0);
    sgd_model_set_params(m, ones, 2);
    sgdt_assert_status(sgd_model_forward(m, &one, 1, &y), SGD_OK);
    assert_true(fabs(y[0] - 0.8411919906082768) < 1e-6);
    sgd_model_free(m);
}

/* ---------------------------------------------------------------- gradient checks */

/*
 * Central differences in float32. Each parameter p is moved to the float
 * values p+h and p-h (h = 1e-2 max(1, |p|)); the numerical derivative is
 * (L(p+h) - L(p-h)) / (their actual difference), with L the model's mean loss
 * (accumulated in double). Its error has two parts: truncation, h^2 |L'''| / 6
 * (at most about 2e-5 here), and the float32 rounding of the forward pass,
 * about eps32 |L| = 1.2e-7 in each loss, divided by 2h: about 1e-5. So a
 * correct gradient agrees within 5e-5 + 5e-3 |g| (a few times the expected
 * error; the worst case measured is printed), while a wrong derivative is off
 * by the order of the gradient itself. Where a ReLU or leaky ReLU input changes sign between p-h and p+h
 * the loss has a kink and the difference is meaningless: such coordinates are
 * detected (the sign patterns of those inputs differ) and skipped, and at most
 * a fifth of the coordinates may be skipped.
 */
#define GC_ATOL 5e-5
#define GC_RTOL 5e-3

typedef struct gc_data {
    float *x, *targets;
    int32_t *labels;
    int64_t batch;
    uint64_t rng[4];
} gc_data;

/* Loss at the current parameters, with dropout drawing the same masks every time. */
static double gc_loss(sgd_model *m, gc_data *g)
{
    sgdt_assert_status(sgd_model_set_rng_state(m, g->rng), SGD_OK);
    double loss;
    sgdt_assert_status(sgd_model_forward(m, g->x, g->batch, NULL), SGD_OK);
    sgdt_assert_status(sgd_model_compute_loss(m, g->labels, g->targets, &loss), SGD_OK);
    return loss;
}

/* Appends the signs of every ReLU / leaky ReLU input of the last forward pass to sig. */
static size_t kink_signature(const sgd_model *m, unsigned char *sig, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < m->seq.n; i++) {
        const sgd__layer *l = &m->seq.layers[i];
        if (l->op->kind != SGD_LAYER_RELU && l->op->kind != SGD_LAYER_LEAKY_RELU)
            continue;
        /* A fused activation's output has the sign of its input; otherwise read the input itself. */
        const float *z = l->fused ? l->y : (i == 0 ? m->x : m->seq.layers[i - 1].y);
        for (int64_t k = 0; k < m->batch * sgd__shape_numel(&l->out); k++) {
            assert_true(n < cap);
            sig[n++] = z[k] > 0.0f;
        }
    }
    return n;
}

static void gradcheck(const char *spec, int64_t batch)
{
    sgd_model *m = spec_model(spec, 21);
    int64_t in = sgd_model_num_inputs(m), out = sgd_model_num_outputs(m);
    gc_data g = {0};
    g.batch = batch;
    g.x = malloc((size_t)(batch * in) * sizeof(float));
    g.targets = malloc((size_t)(batch * out) * sizeof(float));
    g.labels = malloc((size_t)batch * sizeof(int32_t));
    assert_true(g.x && g.targets && g.labels);
    fill(g.x, (size_t)(batch * in), 101, -1.5f, 1.5f);
    fill(g.targets, (size_t)(batch * out), 102, 0.0f, 1.0f);
    fill_labels(g.labels, (size_t)batch, 103, (int32_t)out);
    sgd_model_get_rng_state(m, g.rng);

    size_t n = sgd_model_num_params(m);
    float *p = sgd_model_params(m);
    float *ana = malloc(n * sizeof(float));
    assert_non_null(ana);
    sgdt_assert_status(sgd_model_zero_grad(m), SGD_OK);
    sgdt_assert_status(sgd_model_set_rng_state(m, g.rng), SGD_OK);
    sgdt_assert_status(sgd_model_forward_backward(m, g.x, g.labels, g.targets, batch, NULL), SGD_OK);
    memcpy(ana, sgd_model_grads(m), n * sizeof(float));

    unsigned char sig_p[4096], sig_m[4096];
    size_t skipped = 0;
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        float orig = p[i];
        float h = 1e-2f * (fabsf(orig) > 1.0f ? fabsf(orig) : 1.0f);
        float up = orig + h, down = orig - h;
        p[i] = up;
        double lp = gc_loss(m, &g);
        size_t ns = kink_signature(m, sig_p, sizeof sig_p);
        p[i] = down;
        double lm = gc_loss(m, &g);
        kink_signature(m, sig_m, sizeof sig_m);
        p[i] = orig;
        if (memcmp(sig_p, sig_m, ns) != 0) {
            skipped++;
            continue;
        }
        double num = (lp - lm) / ((double)up - (double)down);
        double err = fabs(num - ana[i]);
        double tol = GC_ATOL + GC_RTOL * fabs(ana[i]);
        if (err > tol)
            fail_msg("%s: parameter %zu: analytical %.8g, numerical %.8g (error %.3g > %.3g)", spec, i,
                     (double)ana[i], num, err, tol);
        if (err / tol > worst)
            worst = err / tol;
    }
    if (skipped * 5 > n)
        fail_msg("%s: %zu of %zu coordinates sit on a kink", spec, skipped, n);
    print_message("gradcheck %-60s %3zu params, %zu skipped (kink), worst error %.2f of tolerance\n", spec, n,
                  skipped, worst);
    free(ana);
    free(g.x);
    free(g.targets);
    free(g.labels);
    sgd_model_free(m);
}

static void test_gradcheck(void **state)
{
    (void)state;
    static const char *specs[] = {
        /* every activation, fused after a dense layer */
        "5-4-relu-3",
        "5-4-leaky_relu(0.1)-3",
        "5-4-tanh-3",
        "5-4-sigmoid-3",
        "5-4-gelu-3",
        "5-4-gelu(tanh)-3",
        /* unfused: after another activation, a negative slope, dropout first */
        "5-4-tanh-relu-3",
        "5-4-leaky_relu(-0.2)-3",
        "5-dropout(0.3)-4-relu-3",
        "5-4-sigmoid-leaky_relu(0.3)-tanh-sigmoid-3",
        /* dropout (the same masks for every evaluation), softmax, no bias */
        "5-6-relu-dropout(0.5)-4-tanh-3",
        "5-4-softmax-3:loss=mse",
        "5-dense(4,bias=0)-tanh-dense(3,bias=0)",
        /* every loss */
        "5-4-tanh-3:loss=mse",
        "5-4-tanh-3:loss=bce_with_logits",
        "5-6-relu-dropout(0.25)-4-gelu-softmax-3:loss=mse",
        "5-3",
    };
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++)
        gradcheck(specs[i], 7);
}

/* ---------------------------------------------------------------- PyTorch parity */

/* splitmix64 streams, as tests/gen_parity.py generates them (tests/util). */
static double parity_u(uint64_t *x)
{
    return sgdt_splitmix_u(x);
}

static void parity_param(float *dst, size_t n, uint64_t seed, double fan_in)
{
    double bound = 1.0 / sqrt(fan_in);
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)((2.0 * parity_u(&seed) - 1.0) * bound);
}

static void test_torch_parity(void **state)
{
    (void)state;
    enum { B = 16 };
    sgd_model *m = spec_model("784-64-relu-32-tanh-10", 0);
    size_t n = sgd_model_num_params(m);
    float *p = malloc(n * sizeof *p), *x = malloc(B * 784 * sizeof *x);
    assert_true(p && x);
    /* Parameters in the arena layout, each from its own stream (see gen_parity.py). */
    static const int64_t sizes[4] = {784, 64, 32, 10};
    double psum = 0, psq = 0;
    for (int k = 0; k < 3; k++) {
        char wname[16], bname[16];
        snprintf(wname, sizeof wname, "%d.weight", 2 * k);
        snprintf(bname, sizeof bname, "%d.bias", 2 * k);
        size_t wi, bi;
        sgd_param_info wi_info, bi_info;
        wi_info.struct_size = bi_info.struct_size = sizeof wi_info;
        sgdt_assert_status(sgd_model_find_param(m, wname, &wi), SGD_OK);
        sgdt_assert_status(sgd_model_find_param(m, bname, &bi), SGD_OK);
        sgd_model_param_info(m, wi, &wi_info);
        sgd_model_param_info(m, bi, &bi_info);
        parity_param(p + wi_info.offset, wi_info.numel, 2000 + 2 * (uint64_t)k, (double)sizes[k]);
        parity_param(p + bi_info.offset, bi_info.numel, 2000 + 2 * (uint64_t)k + 1, (double)sizes[k]);
    }
    for (size_t i = 0; i < n; i++) {
        psum += p[i];
        psq += (double)p[i] * p[i];
    }
    uint64_t sx = 1000, sl = 1001;
    double xsum = 0, xsq = 0;
    for (int i = 0; i < B * 784; i++) {
        x[i] = (float)parity_u(&sx);
        xsum += x[i];
        xsq += (double)x[i] * x[i];
    }
    int32_t labels[B];
    for (int i = 0; i < B; i++)
        labels[i] = (int32_t)(parity_u(&sl) * 10);
    sgdt_assert_status(sgd_model_set_params(m, p, n), SGD_OK);

    sgdt_fixture f;
    sgdt_fixture_load(&f, sgdt_data_path("parity_mlp.txt.gz"));
    /* The same starting point: sums over inputs and parameters (order differs: a tiny tolerance). */
    double *cx = sgdt_fixture_record(&f, "check.x", 1, 2), *cp = sgdt_fixture_record(&f, "check.params", 1, 2);
    assert_true(fabs(cx[0] - xsum) < 1e-9 * fabs(xsum) && fabs(cx[1] - xsq) < 1e-9 * xsq);
    assert_true(fabs(cp[0] - psum) < 1e-9 * psq && fabs(cp[1] - psq) < 1e-9 * psq);
    double *ref_loss = sgdt_fixture_record(&f, "loss", 1, 1), *ref_logits = sgdt_fixture_record(&f, "logits", B, 10);

    const float *logits;
    double loss;
    sgdt_assert_status(sgd_model_zero_grad(m), SGD_OK);
    sgdt_assert_status(sgd_model_forward(m, x, B, &logits), SGD_OK);
    sgdt_assert_status(sgd_model_compute_loss(m, labels, NULL, &loss), SGD_OK);
    sgdt_assert_status(sgd_model_backward(m), SGD_OK);
    double worst = fabs(loss - ref_loss[0]) / fabs(ref_loss[0]);
    print_message("parity: loss %.8f, torch %.8f\n", loss, ref_loss[0]);
    assert_true(worst <= 1e-4);
    double e = sgdt_parity_error(logits, ref_logits, B * 10);
    print_message("parity: logits error %.2e of the largest magnitude\n", e);
    assert_true(e <= 1e-4);
    static const char *names[] = {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"};
    for (int k = 0; k < 6; k++) {
        size_t idx;
        sgd_param_info info;
        info.struct_size = sizeof info;
        sgdt_assert_status(sgd_model_find_param(m, names[k], &idx), SGD_OK);
        sgd_model_param_info(m, idx, &info);
        int64_t rows = info.rank == 2 ? info.shape[0] : 1, cols = info.rank == 2 ? info.shape[1] : info.shape[0];
        double *ref = sgdt_fixture_record(&f, names[k], rows, cols);
        e = sgdt_parity_error(sgd_model_grads(m) + info.offset, ref, info.numel);
        print_message("parity: grad %-8s error %.2e of the largest magnitude\n", names[k], e);
        if (e > 1e-4)
            fail_msg("gradient of %s differs from torch's by %.3g of its largest magnitude", names[k], e);
        free(ref);
    }
    free(cx);
    free(cp);
    free(ref_loss);
    free(ref_logits);
    sgdt_fixture_free(&f);
    free(p);
    free(x);
    sgd_model_free(m);
}

/* ---------------------------------------------------------------- passes and state */

static void test_accumulation_and_state(void **state)
{
    (void)state;
    sgd_model *m = spec_model("6-5-tanh-4", 1);
    float x[3 * 6];
    fill(x, 18, 5, -1, 1);
    int32_t labels[3] = {0, 3, 1};
    size_t n = sgd_model_num_params(m);
    float *g1 = malloc(n * sizeof *g1);
    assert_non_null(g1);
    double l1, l2;
    sgdt_assert_status(sgd_model_forward_backward(m, x, labels, NULL, 3, &l1), SGD_OK);
    memcpy(g1, sgd_model_grads(m), n * sizeof *g1);
    /* Gradients accumulate until zeroed. */
    sgdt_assert_status(sgd_model_forward_backward(m, x, labels, NULL, 3, &l2), SGD_OK);
    assert_true(l1 == l2);
    for (size_t i = 0; i < n; i++)
        assert_true(fabsf(sgd_model_grads(m)[i] - 2.0f * g1[i]) <= 1e-6f * (1.0f + fabsf(g1[i])));
    sgdt_assert_status(sgd_model_zero_grad(m), SGD_OK);
    for (size_t i = 0; i < n; i++)
        assert_true(sgd_model_grads(m)[i] == 0.0f);
    /* Separate calls give the same as forward_backward; one backward per loss. */
    const float *out;
    sgdt_assert_status(sgd_model_backward(m), SGD_ESTATE);
    sgdt_assert_error_contains("no loss");
    sgdt_assert_status(sgd_model_forward(m, x, 3, &out), SGD_OK);
    sgdt_assert_status(sgd_model_backward(m), SGD_ESTATE);
    sgdt_assert_status(sgd_model_compute_loss(m, labels, NULL, &l2), SGD_OK);
    assert_true(l1 == l2);
    sgdt_assert_status(sgd_model_backward(m), SGD_OK);
    assert_memory_equal(sgd_model_grads(m), g1, n * sizeof *g1);
    sgdt_assert_status(sgd_model_backward(m), SGD_ESTATE);
    /* A host's own loss gradient: softmax(z) - onehot, over the batch, gives the same gradients. */
    float dz[3 * 4];
    for (int r = 0; r < 3; r++) {
        double mx = out[r * 4], s = 0;
        for (int j = 1; j < 4; j++)
            mx = out[r * 4 + j] > mx ? out[r * 4 + j] : mx;
        for (int j = 0; j < 4; j++)
            s += exp(out[r * 4 + j] - mx);
        for (int j = 0; j < 4; j++)
            dz[r * 4 + j] = (float)((exp(out[r * 4 + j] - mx) / s - (j == labels[r])) / 3.0);
    }
    sgdt_assert_status(sgd_model_zero_grad(m), SGD_OK);
    sgdt_assert_status(sgd_model_backward_from(m, dz), SGD_OK);
    for (size_t i = 0; i < n; i++)
        assert_true(fabsf(sgd_model_grads(m)[i] - g1[i]) <= 1e-6f * (1.0f + fabsf(g1[i])));
    dz[5] = NAN;
    sgdt_assert_status(sgd_model_backward_from(m, dz), SGD_ENONFINITE);
    sgdt_assert_error_contains("grad_output[1][1]");
    sgdt_assert_status(sgd_model_backward_from(m, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_model_reset(m, 1), SGD_OK); /* also forgets the forward pass */
    sgdt_assert_status(sgd_model_compute_loss(m, labels, NULL, NULL), SGD_ESTATE);
    sgdt_assert_status(sgd_model_backward_from(m, dz), SGD_ESTATE);
    free(g1);
    sgd_model_free(m);
}

static void test_bad_input(void **state)
{
    (void)state;
    sgd_model *m = spec_model("4-3-relu-3:max_batch=8", 1);
    float x[9 * 4];
    fill(x, 36, 1, 0, 1);
    int32_t labels[9] = {0, 1, 2, 0, 1, 2, 0, 1, 2};
    float targets[9 * 3] = {0};
    sgdt_assert_status(sgd_model_forward_backward(m, x, labels, NULL, 0, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("batch=0");
    sgdt_assert_status(sgd_model_forward_backward(m, x, labels, NULL, -3, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_model_forward_backward(m, x, labels, NULL, 9, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("exceeds max_batch=8");
    sgdt_assert_status(sgd_model_forward_backward(m, NULL, labels, NULL, 2, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("x is NULL");
    sgdt_assert_status(sgd_model_forward_backward(m, x, NULL, targets, 2, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("labels is NULL");
    x[4 * 2 + 3] = NAN;
    sgdt_assert_status(sgd_model_forward_backward(m, x, labels, NULL, 4, NULL), SGD_ENONFINITE);
    sgdt_assert_error_contains("x[2][3]");
    sgdt_assert_status(sgd_model_forward(m, x, 4, NULL), SGD_ENONFINITE);
    x[4 * 2 + 3] = -INFINITY;
    sgdt_assert_status(sgd_model_forward(m, x, 4, NULL), SGD_ENONFINITE);
    x[4 * 2 + 3] = 0.5f;
    labels[2] = 3;
    sgdt_assert_status(sgd_model_forward_backward(m, x, labels, NULL, 4, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("labels[2]=3: must be in [0, 3)");
    labels[2] = -1;
    sgdt_assert_status(sgd_model_forward_backward(m, x, labels, NULL, 4, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("labels[2]=-1");
    labels[2] = 2;
    /* Gradients are untouched by failed calls. */
    for (size_t i = 0; i < sgd_model_num_params(m); i++)
        assert_true(sgd_model_grads(m)[i] == 0.0f);
    /* Targets for MSE and BCE. */
    sgdt_assert_status(sgd_model_set_loss_kind(m, SGD_LOSS_MSE), SGD_OK);
    assert_string_equal(sgd_model_spec(m), "4-3-relu-3:loss=mse");
    sgdt_assert_status(sgd_model_forward_backward(m, x, labels, NULL, 4, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("targets is NULL");
    targets[7] = NAN;
    sgdt_assert_status(sgd_model_forward_backward(m, x, NULL, targets, 4, NULL), SGD_ENONFINITE);
    sgdt_assert_error_contains("targets[2][1]");
    targets[7] = 0;
    double loss;
    sgdt_assert_status(sgd_model_forward_backward(m, x, NULL, targets, 4, &loss), SGD_OK);
    sgdt_assert_status(sgd_model_set_loss_kind(m, 7), SGD_EINVAL);
    /* predict */
    float out[8 * 3];
    sgdt_assert_status(sgd_model_predict(m, x, 8, out, 23), SGD_ESHAPE);
    sgdt_assert_error_contains("out_len=23");
    sgdt_assert_status(sgd_model_predict(m, x, 0, out, 24), SGD_EINVAL);
    sgdt_assert_status(sgd_model_predict(m, NULL, 8, out, 24), SGD_EINVAL);
    x[4 * 7 + 1] = NAN;
    sgdt_assert_status(sgd_model_predict(m, x, 8, out, 24), SGD_ENONFINITE);
    sgdt_assert_error_contains("x[7][1]");
    x[4 * 7 + 1] = 0;
    /* Modes, buffers, threads, generator state. */
    sgdt_assert_status(sgd_model_reserve(m, 0), SGD_EINVAL);
    sgdt_assert_status(sgd_model_reserve(m, 9), SGD_OK);
    assert_int_equal(sgd_model_max_batch(m), 9);
    sgdt_assert_status(sgd_model_forward_backward(m, x, NULL, targets, 9, NULL), SGD_OK);
    sgdt_assert_status(sgd_model_set_blas_threads(m, -1), SGD_EINVAL);
    sgdt_assert_status(sgd_model_set_blas_threads(m, 1025), SGD_EINVAL);
    uint64_t zero[4] = {0};
    sgdt_assert_status(sgd_model_set_rng_state(m, zero), SGD_EINVAL);
    sgdt_assert_error_contains("all-zero");
    sgdt_assert_status(sgd_model_set_rng_state(m, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_model_get_rng_state(m, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_model_get_rng_state(NULL, zero), SGD_EINVAL);
    sgd_model_free(m);
}

static void test_losses_and_evaluate(void **state)
{
    (void)state;
    /* Known values: CE of uniform logits is log(C); MSE and BCE by hand. */
    sgd_model *m = spec_model("2-dense(3,bias=0)", 0);
    float zeros[6] = {0}, x[4] = {1, 2, -1, 0.5f};
    sgd_model_set_params(m, zeros, 6);
    int32_t lab[2] = {2, 0};
    double loss;
    sgdt_assert_status(sgd_model_forward_backward(m, x, lab, NULL, 2, &loss), SGD_OK);
    assert_true(fabs(loss - log(3.0)) < 1e-7);
    float w[6] = {1, 0, 0, 1, 1, -1};
    sgd_model_set_params(m, w, 6); /* outputs: row 0 (1, 2, -1), row 1 (-1, 0.5, -1.5) */
    sgdt_assert_status(sgd_model_set_loss_kind(m, SGD_LOSS_MSE), SGD_OK);
    float t[6] = {0, 2, 1, -1, 0, 0};
    sgdt_assert_status(sgd_model_forward_backward(m, x, NULL, t, 2, &loss), SGD_OK);
    assert_true(fabs(loss - (1.0 + 0 + 4 + 0 + 0.25 + 2.25) / 6.0) < 1e-7);
    sgdt_assert_status(sgd_model_set_loss_kind(m, SGD_LOSS_BCE_WITH_LOGITS), SGD_OK);
    float tb[6] = {1, 0, 0.5f, 0, 1, 1};
    sgdt_assert_status(sgd_model_forward_backward(m, x, NULL, tb, 2, &loss), SGD_OK);
    double z[6] = {1, 2, -1, -1, 0.5, -1.5}, want = 0;
    for (int i = 0; i < 6; i++)
        want += fmax(z[i], 0) - z[i] * tb[i] + log1p(exp(-fabs(z[i])));
    assert_true(fabs(loss - want / 6.0) < 1e-6);
    /* Large logits stay finite (log-sum-exp). */
    float big[6] = {1000, 0, 0, -1000, 0, 0};
    sgd_model_set_params(m, big, 6);
    sgdt_assert_status(sgd_model_set_loss_kind(m, SGD_LOSS_CROSS_ENTROPY), SGD_OK);
    sgdt_assert_status(sgd_model_forward_backward(m, x, lab, NULL, 2, &loss), SGD_OK);
    assert_true(isfinite(loss) && loss > 100);
    sgd_model_free(m);

    /* evaluate: equal to the batch losses, for any batch size; accuracy by argmax; mode restored. */
    enum { N = 50 };
    float xs[N * 6];
    int32_t ls[N];
    fill(xs, N * 6, 9, -1, 1);
    fill_labels(ls, N, 10, 4);
    m = spec_model("6-8-relu-dropout(0.5)-4:max_batch=16", 2);
    sgd_dataset *d;
    sgdt_assert_status(sgd_dataset_from_labels(&d, xs, ls, N, 6, NULL), SGD_OK);
    float out[N * 4];
    sgdt_assert_status(sgd_model_predict(m, xs, N, out, N * 4), SGD_OK); /* 4 batches of max 16 */
    double ref_loss = 0;
    int correct = 0;
    for (int r = 0; r < N; r++) {
        double mx = out[r * 4], s = 0;
        int arg = 0;
        for (int j = 1; j < 4; j++)
            if (out[r * 4 + j] > mx) {
                mx = out[r * 4 + j];
                arg = j;
            }
        for (int j = 0; j < 4; j++)
            s += exp(out[r * 4 + j] - mx);
        ref_loss += mx + log(s) - out[r * 4 + ls[r]];
        correct += arg == ls[r];
    }
    ref_loss /= N;
    int64_t sizes[3] = {0, 7, 16};
    for (int k = 0; k < 3; k++) {
        double l, acc;
        sgdt_assert_status(sgd_model_evaluate(m, d, sizes[k], &l, &acc), SGD_OK);
        assert_true(fabs(l - ref_loss) < 1e-6);
        assert_true(acc == (double)correct / N);
        assert_int_equal(sgd_model_is_training(m), 1);
    }
    /* An index-based split is gathered. */
    sgd_dataset *tr, *va;
    sgdt_assert_status(sgd_dataset_split(&tr, &va, d, 20, 1, 4), SGD_OK);
    double la, lb, acc_a, acc_b;
    sgdt_assert_status(sgd_model_evaluate(m, tr, 0, &la, &acc_a), SGD_OK);
    sgdt_assert_status(sgd_model_evaluate(m, va, 5, &lb, &acc_b), SGD_OK);
    assert_true(fabs((la * 30 + lb * 20) / N - ref_loss) < 1e-6);
    assert_true(fabs((acc_a * 30 + acc_b * 20) / N - (double)correct / N) < 1e-9);
    sgd_dataset_free(tr);
    sgd_dataset_free(va);
    /* Errors. */
    double l = 0, acc = 0;
    sgdt_assert_status(sgd_model_evaluate(m, d, 17, &l, &acc), SGD_EINVAL);
    sgdt_assert_error_contains("batch_size=17");
    assert_true(isnan(l) && isnan(acc));
    sgdt_assert_status(sgd_model_evaluate(m, NULL, 0, &l, &acc), SGD_EINVAL);
    sgdt_assert_status(sgd_model_evaluate(NULL, d, 0, &l, &acc), SGD_EINVAL);
    sgd_dataset *d5;
    sgdt_assert_status(sgd_dataset_from_labels(&d5, xs, ls, 10, 5, NULL), SGD_OK);
    sgdt_assert_status(sgd_model_evaluate(m, d5, 0, &l, &acc), SGD_ESHAPE);
    sgdt_assert_error_contains("5 features");
    sgd_dataset_free(d5);
    ls[30] = 4; /* beyond the model's outputs */
    sgdt_assert_status(sgd_model_evaluate(m, d, 0, &l, &acc), SGD_EINVAL);
    sgdt_assert_error_contains("labels[30]=4");
    ls[30] = 0;
    float tg[N * 4] = {0};
    sgd_dataset *dt;
    sgdt_assert_status(sgd_dataset_from_targets(&dt, xs, tg, N, 6, 4, NULL), SGD_OK);
    sgdt_assert_status(sgd_model_evaluate(m, dt, 0, &l, &acc), SGD_EINVAL);
    sgdt_assert_error_contains("needs class labels");
    sgdt_assert_status(sgd_model_set_loss_kind(m, SGD_LOSS_MSE), SGD_OK);
    sgdt_assert_status(sgd_model_evaluate(m, d, 0, &l, &acc), SGD_EINVAL);
    sgdt_assert_error_contains("needs float targets");
    sgdt_assert_status(sgd_model_evaluate(m, dt, 0, &l, &acc), SGD_OK);
    assert_true(isnan(acc)); /* no accuracy for MSE */
    double sq = 0;
    for (int i = 0; i < N * 4; i++)
        sq += (double)out[i] * out[i];
    assert_true(fabs(l - sq / (N * 4)) < 1e-6);
    sgd_dataset_free(dt);
    sgd_dataset_free(d);
    sgd_model_free(m);
}

static void test_dropout(void **state)
{
    (void)state;
    enum { B = 64, W = 200 };
    sgd_model *m = spec_model("200-dropout(0.3)-dense(1,bias=0):loss=mse,max_batch=64", 0);
    float ones[W];
    for (int i = 0; i < W; i++)
        ones[i] = 1.0f;
    sgd_model_set_params(m, ones, W);
    float *x = malloc(B * W * sizeof *x);
    assert_non_null(x);
    for (int i = 0; i < B * W; i++)
        x[i] = 1.0f;
    const float *y;
    sgdt_assert_status(sgd_model_forward(m, x, B, &y), SGD_OK);
    /* Each output is (kept count) / 0.7: its mean over the batch is near W. */
    const uint8_t *mask = m->seq.layers[0].ws;
    long kept = 0;
    for (int i = 0; i < B * W; i++)
        kept += mask[i];
    double frac = (double)kept / (B * W);
    assert_true(fabs(frac - 0.7) < 0.01); /* 12800 draws: the standard error is 0.004 */
    long kept0 = 0;
    for (int j = 0; j < W; j++)
        kept0 += mask[j];
    assert_true(fabsf(y[0] - (float)kept0 / 0.7f) < 1e-3f);
    /* Another pass draws other masks; evaluation mode keeps everything. */
    float first = y[0];
    sgdt_assert_status(sgd_model_forward(m, x, B, &y), SGD_OK);
    assert_true(y[0] != first || y[1] != first);
    sgdt_assert_status(sgd_model_set_training(m, 0), SGD_OK);
    sgdt_assert_status(sgd_model_forward(m, x, B, &y), SGD_OK);
    assert_true(y[0] == (float)W);
    sgd_model_free(m);
    /* p = 0 and p = 1. */
    m = spec_model("200-dropout(1)-dense(1,bias=0):loss=mse,max_batch=64", 0);
    sgd_model_set_params(m, ones, W);
    sgdt_assert_status(sgd_model_forward(m, x, B, &y), SGD_OK);
    assert_true(y[0] == 0.0f && y[B - 1] == 0.0f);
    sgd_model_free(m);
    m = spec_model("200-dropout(0)-dense(1,bias=0):loss=mse,max_batch=64", 0);
    sgd_model_set_params(m, ones, W);
    sgdt_assert_status(sgd_model_forward(m, x, B, &y), SGD_OK);
    assert_true(y[0] == (float)W);
    sgd_model_free(m);
    free(x);
}

/* Two models trained alike from the same seed stay identical; a model resumed from a saved state continues exactly. */
static void test_determinism(void **state)
{
    (void)state;
    enum { B = 8, STEPS = 6 };
    const char *spec = "10-12-relu-dropout(0.4)-8-tanh-3";
    sgd_model *a = spec_model(spec, 9), *b = spec_model(spec, 9), *c = spec_model(spec, 1);
    size_t n = sgd_model_num_params(a);
    float x[STEPS][B * 10];
    int32_t lab[STEPS][B];
    for (int s = 0; s < STEPS; s++) {
        fill(x[s], B * 10, 30 + (uint64_t)s, -1, 1);
        fill_labels(lab[s], B, 40 + (uint64_t)s, 3);
    }
    float *saved = malloc(n * sizeof *saved);
    assert_non_null(saved);
    uint64_t rng[4];
    for (int s = 0; s < STEPS; s++) {
        if (s == 3) { /* snapshot a, to resume c from it */
            sgd_model_get_params(a, saved, n);
            sgd_model_get_rng_state(a, rng);
        }
        sgd_model *ms[2] = {a, b};
        for (int k = 0; k < 2; k++) {
            sgd_model_zero_grad(ms[k]);
            sgdt_assert_status(sgd_model_forward_backward(ms[k], x[s], lab[s], NULL, B, NULL), SGD_OK);
            float *w = sgd_model_params(ms[k]), *g = sgd_model_grads(ms[k]);
            for (size_t i = 0; i < n; i++)
                w[i] -= 0.1f * g[i];
        }
    }
    assert_memory_equal(sgd_model_params(a), sgd_model_params(b), n * sizeof(float));
    sgdt_assert_status(sgd_model_set_params(c, saved, n), SGD_OK);
    sgdt_assert_status(sgd_model_set_rng_state(c, rng), SGD_OK);
    for (int s = 3; s < STEPS; s++) {
        sgd_model_zero_grad(c);
        sgdt_assert_status(sgd_model_forward_backward(c, x[s], lab[s], NULL, B, NULL), SGD_OK);
        float *w = sgd_model_params(c), *g = sgd_model_grads(c);
        for (size_t i = 0; i < n; i++)
            w[i] -= 0.1f * g[i];
    }
    assert_memory_equal(sgd_model_params(a), sgd_model_params(c), n * sizeof(float));
    free(saved);
    sgd_model_free(a);
    sgd_model_free(b);
    sgd_model_free(c);
}

/* A diverging run is not an error: the loss is returned as it is. */
static void test_divergence_visible(void **state)
{
    (void)state;
    sgd_model *m = spec_model("3-4-relu-2", 0);
    float x[3] = {1, 2, 3};
    int32_t lab[1] = {1};
    size_t n = sgd_model_num_params(m);
    float *w = sgd_model_params(m);
    for (size_t i = 0; i < n; i++)
        w[i] = 1e30f;
    double loss;
    sgdt_assert_status(sgd_model_forward_backward(m, x, lab, NULL, 1, &loss), SGD_OK);
    assert_false(isfinite(loss));
    w[0] = NAN; /* written directly into the arena, as an optimizer could */
    const float *y;
    sgdt_assert_status(sgd_model_forward(m, x, 1, &y), SGD_OK);
    assert_true(isnan(y[0]) || isnan(y[1])); /* NaN propagates through ReLU */
    sgd_model_free(m);
}

/* ---------------------------------------------------------------- allocation */

static void sgd_step(sgd_model *m, float *mom)
{
    size_t n = sgd_model_num_params(m);
    float *w = sgd_model_params(m), *g = sgd_model_grads(m);
    for (size_t i = 0; i < n; i++) {
        mom[i] = 0.9f * mom[i] + g[i];
        w[i] -= 0.05f * mom[i];
    }
}

static void test_step_allocates_nothing(void **state)
{
    (void)state;
    enum { N = 300 };
    static float xs[N * 20];
    static int32_t ls[N];
    fill(xs, N * 20, 1, 0, 1);
    fill_labels(ls, N, 2, 5);
    sgdt_alloc t;
    sgdt_alloc_init(&t);
    sgd_model_options o;
    sgd_model_options_init(&o);
    o.max_batch = 64;
    sgd_model *m;
    sgdt_assert_status(sgd_model_from_spec(&m, "20-16-relu-dropout(0.1)-12-gelu-5", &o, &t.base), SGD_OK);
    sgd_dataset *d;
    sgd_loader *l;
    sgdt_assert_status(sgd_dataset_from_labels(&d, xs, ls, N, 20, &t.base), SGD_OK);
    sgdt_assert_status(sgd_loader_new(&l, d, 64, NULL), SGD_OK);
    float *mom = calloc(sgd_model_num_params(m), sizeof *mom);
    assert_non_null(mom);
    long calls = t.calls;
    for (int epoch = 0; epoch < 2; epoch++) {
        sgd_batch b;
        while (sgd_loader_next(l, &b) == SGD_OK && b.size > 0) {
            sgdt_assert_status(sgd_model_zero_grad(m), SGD_OK);
            sgdt_assert_status(sgd_model_forward_backward(m, b.x, b.labels, NULL, b.size, NULL), SGD_OK);
            sgd_step(m, mom);
        }
        double loss, acc;
        sgdt_assert_status(sgd_model_evaluate(m, d, 0, &loss, &acc), SGD_OK);
    }
    const float *y;
    sgdt_assert_status(sgd_model_forward(m, xs, 10, &y), SGD_OK);
    sgdt_assert_status(sgd_model_compute_loss(m, ls, NULL, NULL), SGD_OK);
    sgdt_assert_status(sgd_model_backward(m), SGD_OK);
    float out[N * 5];
    sgdt_assert_status(sgd_model_predict(m, xs, N, out, N * 5), SGD_OK);
    assert_int_equal(t.calls, calls); /* not one allocation after creation */
    free(mom);
    sgd_loader_free(l);
    sgd_dataset_free(d);
    sgd_model_free(m);
    assert_int_equal(t.live, 0);
}

static sgd_status scenario_build(sgdt_alloc *t, void *ctx)
{
    (void)ctx;
    sgd_model *m = NULL, *s = NULL;
    sgd_status st = sgd_model_new(&m, 6, &t->base);
    if (st == SGD_OK && m == NULL)
        fail_msg("no model");
    /* Many layers, so that the layer array and the spec buffer grow. */
    for (int i = 0; i < 12 && st == SGD_OK; i++)
        st = i % 3 == 2 ? sgd_model_add_activation(m, SGD_LAYER_TANH)
                        : i % 3 == 1 ? sgd_model_add_dropout(m, 0.1) : sgd_model_add_dense(m, 5, 1);
    if (st == SGD_OK)
        st = sgd_model_build(m, NULL);
    if (st == SGD_OK)
        st = sgd_model_reserve(m, 300);
    if (st != SGD_OK && m != NULL && m->built) {
        /* A failed reserve keeps the old buffers: the model still trains. */
        float x[6] = {0};
        int32_t lab = 0;
        sgd_status st2 = sgd_model_forward_backward(m, x, &lab, NULL, 1, NULL);
        if (st2 != SGD_OK)
            fail_msg("model unusable after a failed reserve: %s", sgd_error_last());
        sgd__err(st, "scenario: reserve failed"); /* keep the walker's message */
    }
    if (st == SGD_OK) {
        st = sgd_model_from_spec(&s, "6-4-relu-dropout(0.2)-3:loss=mse", NULL, &t->base);
        if (st != SGD_OK && s != NULL)
            fail_msg("from_spec failed but set its out-parameter");
    }
    sgd_model_free(s);
    sgd_model_free(m);
    return st;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    long n = sgdt_walk_alloc_failures(scenario_build, NULL);
    assert_true(n >= 8);
}

#if SGD_HAVE_OPENBLAS
/* Trains a model of its own for a while (a thread of test_blas_threads). */
static void *train_a_while(void *arg)
{
    sgd_model *m = arg;
    float x[16 * 8];
    int32_t lab[16];
    fill(x, 16 * 8, 3, -1, 1);
    fill_labels(lab, 16, 4, 4);
    for (int i = 0; i < 300; i++)
        if (sgd_model_forward_backward(m, x, lab, NULL, 16, NULL) != SGD_OK)
            return (void *)1;
    return NULL;
}
#endif

static void test_blas_threads(void **state)
{
    (void)state;
#if SGD_HAVE_OPENBLAS
    /* The model runs its products with its own count and gives the host's back. */
    openblas_set_num_threads(2);
    int before = openblas_get_num_threads();
    sgd_model *m = spec_model("8-16-relu-4", 0);
    float x[8] = {0};
    int32_t lab = 1;
    sgdt_assert_status(sgd_model_forward_backward(m, x, &lab, NULL, 1, NULL), SGD_OK);
    assert_int_equal(openblas_get_num_threads(), before);
    sgdt_assert_status(sgd_model_set_blas_threads(m, 0), SGD_OK);
    sgdt_assert_status(sgd_model_forward_backward(m, x, &lab, NULL, 1, NULL), SGD_OK);
    assert_int_equal(openblas_get_num_threads(), before);
    sgd_model_free(m);
    /* Models used from several threads at once leave the host's count as it was. */
    sgd_model *ms[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        ms[i] = spec_model("8-32-relu-4", (uint64_t)i);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, train_a_while, ms[i]), 0);
    for (int i = 0; i < 3; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        assert_null(ret);
        sgd_model_free(ms[i]);
    }
    assert_int_equal(openblas_get_num_threads(), before);
    openblas_set_num_threads(1);
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tensors),
        cmocka_unit_test(test_options_and_builder),
        cmocka_unit_test(test_spec_grammar),
        cmocka_unit_test(test_param_enumeration),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_forward_values),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_torch_parity),
        cmocka_unit_test(test_accumulation_and_state),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_losses_and_evaluate),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_divergence_visible),
        cmocka_unit_test(test_step_allocates_nothing),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_blas_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
