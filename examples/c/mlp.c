/*
 * Trains a small MLP on an XOR-like problem (points of the square, class 1
 * where the coordinates have opposite signs; generated here, no files needed)
 * with plain SGD written over the model's flat parameter arrays, and prints
 * the loss and accuracy as it learns.
 */
#include <sgdlab/sgdlab.h>

#include <stdio.h>
#include <stdlib.h>

#define N 600

static int check(sgd_status st, const char *what)
{
    if (st != SGD_OK)
        fprintf(stderr, "%s: %s\n", what, sgd_error_last());
    return st != SGD_OK;
}

int main(void)
{
    static float x[N * 2];
    static int32_t y[N];
    uint32_t r = 12345;
    for (int i = 0; i < 2 * N; i++) { /* uniform in [-1, 1), from a small LCG */
        r = r * 1664525u + 1013904223u;
        x[i] = (float)(r >> 8) / 8388608.0f - 1.0f;
    }
    for (int i = 0; i < N; i++)
        y[i] = (x[2 * i] < 0) != (x[2 * i + 1] < 0);
    sgd_model *m = NULL;
    sgd_dataset *data = NULL;
    sgd_loader *loader = NULL;
    int failed = check(sgd_model_from_spec(&m, "2-16-tanh-16-tanh-2:seed=1", NULL, NULL), "model") ||
                 check(sgd_dataset_from_labels(&data, x, y, N, 2, NULL), "dataset") ||
                 check(sgd_loader_new(&loader, data, 32, NULL), "loader");
    size_t n = sgd_model_num_params(m);
    float *w = sgd_model_params(m), *g = sgd_model_grads(m);
    double loss = 0, acc = 0;
    for (int epoch = 1; epoch <= 200 && !failed; epoch++) {
        sgd_batch b;
        while (!failed && sgd_loader_next(loader, &b) == SGD_OK && b.size > 0) {
            failed = check(sgd_model_zero_grad(m), "zero_grad") ||
                     check(sgd_model_forward_backward(m, b.x, b.labels, NULL, b.size, NULL), "step");
            for (size_t i = 0; i < n; i++)
                w[i] -= 0.5f * g[i];
        }
        if (!failed && epoch % 40 == 0) {
            failed = check(sgd_model_evaluate(m, data, 0, &loss, &acc), "evaluate");
            printf("epoch %3d: loss %.4f, accuracy %.1f%%\n", epoch, loss, 100.0 * acc);
        }
    }
    printf("%s: %zu parameters\n", sgd_model_spec(m), n);
    sgd_loader_free(loader);
    sgd_dataset_free(data);
    sgd_model_free(m);
    return failed || acc < 0.9;
}
