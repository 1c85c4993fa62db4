/*
 * The table of layer kinds: one row per kind, its record defined in the
 * file of its family. Adding a layer is one file plus one row here
 * (docs/internals.md). SPDX-License-Identifier: MIT
 */
#include "model/layer.h"

#include <string.h>

const sgd__layer_op *const sgd__layer_ops[] = {
    /* layer_dense.c */
    &sgd__op_dense,
    /* layer_act.c */
    &sgd__op_relu,
    &sgd__op_leaky_relu,
    &sgd__op_tanh,
    &sgd__op_sigmoid,
    &sgd__op_gelu,
    &sgd__op_gelu_tanh,
    &sgd__op_softmax,
    /* layer_dropout.c */
    &sgd__op_dropout,
    /* layer_conv.c */
    &sgd__op_conv2d,
    /* layer_pool.c */
    &sgd__op_maxpool2d,
    &sgd__op_avgpool2d,
    &sgd__op_global_avgpool2d,
    &sgd__op_flatten,
    /* layer_norm.c */
    &sgd__op_batchnorm1d,
    &sgd__op_batchnorm2d,
    &sgd__op_layernorm,
    /* layer_residual.c */
    &sgd__op_residual,
    /* layer_embedding.c */
    &sgd__op_embedding,
    /* layer_rnn.c */
    &sgd__op_rnn,
    &sgd__op_lstm,
    &sgd__op_gru,
};

const size_t sgd__layer_n_ops = sizeof sgd__layer_ops / sizeof sgd__layer_ops[0];

const sgd__layer_op *sgd__layer_op_by_kind(int32_t kind)
{
    for (size_t i = 0; i < sgd__layer_n_ops; i++)
        if (sgd__layer_ops[i]->kind == kind)
            return sgd__layer_ops[i];
    return NULL;
}

const sgd__layer_op *sgd__layer_op_by_name(sgd__str name)
{
    for (size_t i = 0; i < sgd__layer_n_ops; i++) {
        const sgd__layer_op *op = sgd__layer_ops[i];
        if ((op->name != NULL && sgd__str_eq(name, op->name)) || (op->alias != NULL && sgd__str_eq(name, op->alias)))
            return op;
    }
    return NULL;
}

void sgd__layer_names(char *names, size_t cap)
{
    size_t at = 0;
    names[0] = '\0';
    for (size_t i = 0; i < sgd__layer_n_ops; i++) {
        const char *pair[2] = {sgd__layer_ops[i]->name, sgd__layer_ops[i]->alias};
        for (int k = 0; k < 2; k++) {
            if (pair[k] == NULL)
                continue;
            size_t len = strlen(pair[k]);
            if (at + len + 3 >= cap)
                return;
            if (at > 0) {
                memcpy(names + at, ", ", 2);
                at += 2;
            }
            memcpy(names + at, pair[k], len);
            at += len;
            names[at] = '\0';
        }
    }
}
