/*
 * libFuzzer harness for the model spec grammar and the layer table: the
 * spec (sgd_model_from_spec), then the same architecture rebuilt from its
 * canonical form and token by token (sgd_model_add_layer), then a training
 * step and an evaluation-mode pass on inputs taken from the rest of the data.
 *
 * Input: the spec up to the first '\n' (or the whole input), then bytes for
 * the inputs. The allocator refuses any block over 64 MiB, so that a spec
 * asking for huge layers is refused with SGD_ENOMEM instead of exhausting
 * the fuzzer's memory. Invariants (a broken one traps): a refused spec leaves
 * the out-parameter NULL and a message; a built model's canonical spec builds
 * a model with the same canonical spec, the same parameter count and the
 * same tensor names; every tensor is inside its arena; a step on finite
 * inputs succeeds (a non-finite loss is allowed) and leaves finite or
 * non-finite values but never crashes.
 * SPDX-License-Identifier: MIT
 */
#include "sgdlab/sgdlab.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                                       \
    do {                                                                                                               \
        if (!(x))                                                                                                      \
            __builtin_trap();                                                                                          \
    } while (0)

/* Blocks above 8 MiB are refused (SGD_ENOMEM, a path the harness checks too): the grammar is what is
   fuzzed, and a spec such as 3x1-3333-3433 (11 M weights) took more than libFuzzer's 10 s timeout to
   initialise under ASan and coverage with the former 64 MiB. */
#define MAX_BLOCK ((size_t)8 << 20)

static void *f_malloc(size_t n, void *user)
{
    (void)user;
    return n > MAX_BLOCK ? NULL : malloc(n);
}

static void *f_realloc(void *p, size_t n, void *user)
{
    (void)user;
    return n > MAX_BLOCK ? NULL : realloc(p, n);
}

static void f_free(void *p, void *user)
{
    (void)user;
    free(p);
}

static const sgd_allocator alloc = {f_malloc, f_realloc, f_free, NULL};

static void same_model(sgd_model *a, sgd_model *b)
{
    CHECK(strcmp(sgd_model_spec(a), sgd_model_spec(b)) == 0);
    CHECK(sgd_model_num_params(a) == sgd_model_num_params(b));
    CHECK(sgd_model_num_tensors(a) == sgd_model_num_tensors(b));
    for (size_t i = 0; i < sgd_model_num_tensors(a); i++) {
        sgd_tensor_info ta, tb;
        sgd_tensor_info_init(&ta);
        sgd_tensor_info_init(&tb);
        CHECK(sgd_model_tensor_info(a, i, &ta) == SGD_OK && sgd_model_tensor_info(b, i, &tb) == SGD_OK);
        CHECK(strcmp(ta.name, tb.name) == 0 && ta.numel == tb.numel && ta.role == tb.role);
        if (ta.role == SGD_TENSOR_PARAM)
            CHECK(ta.offset + ta.numel <= sgd_model_num_params(a));
        else if (ta.role == SGD_TENSOR_BUFFER)
            CHECK(ta.offset + ta.numel * (ta.dtype == SGD_DTYPE_I64 ? 8 : 4) <= sgd_model_buffer_bytes(a));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = 0;
    while (n < size && data[n] != '\n')
        n++;
    if (n > 4096)
        return 0;
    char spec[4097];
    memcpy(spec, data, n);
    spec[n] = '\0';
    const uint8_t *rest = data + (n < size ? n + 1 : n), *end = data + size;

    sgd_model_options o;
    sgd_model_options_init(&o);
    o.max_batch = 2;
    sgd_model *m = (sgd_model *)(uintptr_t)1;
    sgd_status st = sgd_model_from_spec(&m, spec, &o, &alloc);
    if (st != SGD_OK) {
        CHECK(m == NULL);
        CHECK(sgd_error_last() != NULL && sgd_error_last()[0] != '\0');
        return 0;
    }
    /* max_batch from the spec may be larger: bring it back to 2. */
    if (sgd_model_max_batch(m) > 2 && sgd_model_reserve(m, 2) != SGD_OK) {
        sgd_model_free(m);
        return 0;
    }

    /* The canonical form rebuilds the same model. */
    sgd_model *again = NULL;
    st = sgd_model_from_spec(&again, sgd_model_spec(m), &o, &alloc);
    CHECK(st == SGD_OK || st == SGD_ENOMEM);
    if (st == SGD_OK) {
        same_model(m, again);
        sgd_model_free(again);
    }

    /* A step and an evaluation-mode pass on inputs from the data. */
    int64_t in = sgd_model_num_inputs(m), out = sgd_model_num_outputs(m);
    if (in <= 1 << 16 && out <= 1 << 16) {
        int64_t batch = 2;
        float *x = malloc((size_t)(batch * in) * sizeof *x), *t = malloc((size_t)(batch * out) * sizeof *t);
        int32_t *labels = malloc((size_t)(batch * out) * sizeof *labels);
        if (x && t && labels) {
            int32_t rank;
            int64_t shape[3];
            CHECK(sgd_model_output_shape(m, &rank, shape) == SGD_OK);
            int64_t classes = shape[rank - 1];
            for (int64_t i = 0; i < batch * in; i++)
                x[i] = rest < end ? (float)(int8_t)*rest++ / 32.0f : 0.5f;
            for (int64_t i = 0; i < batch * out; i++) {
                t[i] = 0.5f;
                labels[i] = (int32_t)(i % classes);
            }
            double loss;
            st = sgd_model_forward_backward(m, x, labels, t, batch, &loss);
            /* Batch normalisation refuses one value per channel in training mode. */
            CHECK(st == SGD_OK || st == SGD_EINVAL);
            CHECK(sgd_model_set_training(m, 0) == SGD_OK);
            float *y = malloc((size_t)(batch * out) * sizeof *y);
            if (y != NULL)
                CHECK(sgd_model_predict(m, x, batch, y, (size_t)(batch * out)) == SGD_OK);
            free(y);
        }
        free(x);
        free(t);
        free(labels);
    }

    /* Token by token into a model of the same input shape. */
    int32_t rank;
    int64_t shape[3];
    CHECK(sgd_model_input_shape(m, &rank, shape) == SGD_OK);
    sgd_model *tok = NULL;
    if (sgd_model_new_shaped(&tok, rank, shape, &alloc) == SGD_OK) {
        const char *arch = strchr(spec, '-');
        const char *colon = strchr(spec, ':');
        if (arch != NULL) {
            size_t len = colon != NULL && colon > arch ? (size_t)(colon - arch - 1) : strlen(arch + 1);
            char text[4097];
            memcpy(text, arch + 1, len);
            text[len] = '\0';
            st = sgd_model_add_layer(tok, text);
            CHECK(st == SGD_OK || st == SGD_ENOMEM);
            if (st == SGD_OK)
                CHECK(sgd_model_num_layers(tok) == sgd_model_num_layers(m));
        }
        sgd_model_free(tok);
    }
    sgd_model_free(m);
    return 0;
}
