/*
 * End to end: the 784-256-relu-128-relu-10 MLP trained on Fashion-MNIST with
 * SGD (momentum 0.9, lr 0.05, batch 128) for two epochs must reach 84% test
 * accuracy (PyTorch 1.13 with the same settings: 82.8% after one epoch, 85.2%
 * after two).
 *
 * The data come from Debian's dataset-fashion-mnist package
 * (/usr/share/datasets/fashion-mnist; $SGDT_FASHION_MNIST_DIR overrides). The
 * optimizer module is written separately: this test carries its own SGD with
 * momentum, torch.optim.SGD's update (buf = momentum * buf + grad, with the
 * buffer starting as the first gradient; param -= lr * buf).
 */
#include "util/sgdtest.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *data_dir(void)
{
    const char *d = getenv("SGDT_FASHION_MNIST_DIR");
    return d != NULL && d[0] != '\0' ? d : "/usr/share/datasets/fashion-mnist";
}

static sgd_dataset *load(const char *images, const char *labels)
{
    char ip[1024], lp[1024];
    snprintf(ip, sizeof ip, "%s/%s", data_dir(), images);
    snprintf(lp, sizeof lp, "%s/%s", data_dir(), labels);
    if (access(ip, R_OK) != 0 || access(lp, R_OK) != 0)
        fail_msg("Fashion-MNIST is missing (%s not readable): install the Debian package dataset-fashion-mnist "
                 "(apt-get install dataset-fashion-mnist), or point SGDT_FASHION_MNIST_DIR at the IDX files",
                 access(ip, R_OK) != 0 ? ip : lp);
    sgd_dataset *d = NULL;
    sgd_status st = sgd_dataset_load_idx(&d, ip, lp, NULL);
    if (st != SGD_OK)
        fail_msg("loading Fashion-MNIST: %s", sgd_error_last());
    return d;
}

static void test_fashion_mnist_two_epochs(void **state)
{
    (void)state;
    sgd_dataset *train = load("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz");
    sgd_dataset *test = load("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz");
    assert_int_equal(sgd_dataset_size(train), 60000);
    assert_int_equal(sgd_dataset_size(test), 10000);
    assert_int_equal(sgd_dataset_dim(train), 784);
    assert_int_equal(sgd_dataset_num_classes(train), 10);

    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.seed = 1;
    mo.max_batch = 128;
    sgd_model *m;
    sgdt_assert_status(sgd_model_from_spec(&m, "784-256-relu-128-relu-10", &mo, NULL), SGD_OK);
    sgd_loader_options lo;
    sgd_loader_options_init(&lo);
    lo.seed = 1;
    sgd_loader *loader;
    sgdt_assert_status(sgd_loader_new(&loader, train, 128, &lo), SGD_OK);
    assert_int_equal(sgd_loader_num_batches(loader), 469);

    const float lr = 0.05f, momentum = 0.9f;
    size_t n = sgd_model_num_params(m);
    float *w = sgd_model_params(m), *g = sgd_model_grads(m);
    float *buf = calloc(n, sizeof *buf);
    assert_non_null(buf);
    bool first = true;
    double acc = 0.0;
    for (int epoch = 0; epoch < 2; epoch++) {
        sgd_batch b;
        double sum = 0.0;
        int64_t steps = 0;
        while (sgd_loader_next(loader, &b) == SGD_OK && b.size > 0) {
            double loss;
            sgdt_assert_status(sgd_model_zero_grad(m), SGD_OK);
            sgdt_assert_status(sgd_model_forward_backward(m, b.x, b.labels, NULL, b.size, &loss), SGD_OK);
            for (size_t i = 0; i < n; i++) {
                buf[i] = first ? g[i] : momentum * buf[i] + g[i];
                w[i] -= lr * buf[i];
            }
            first = false;
            sum += loss;
            steps++;
        }
        assert_int_equal(steps, 469);
        double test_loss;
        sgdt_assert_status(sgd_model_evaluate(m, test, 0, &test_loss, &acc), SGD_OK);
        print_message("epoch %d: train loss %.4f, test loss %.4f, test accuracy %.2f%%\n", epoch + 1,
                      sum / (double)steps, test_loss, 100.0 * acc);
    }
    if (acc < 0.84)
        fail_msg("test accuracy after two epochs is %.2f%%, below 84%%", 100.0 * acc);
    free(buf);
    sgd_loader_free(loader);
    sgd_model_free(m);
    sgd_dataset_free(train);
    sgd_dataset_free(test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fashion_mnist_two_epochs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
