/*
 * The layer operations table and the model's 0.2 calls: every tensor in
 * state_dict order, shapes, layers added from spec tokens, buffers, state.
 * SPDX-License-Identifier: MIT
 */
#include "util/sgdtest.h"

#include "model/model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_tensor_enumeration),
        cmocka_unit_test(test_shapes_and_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
