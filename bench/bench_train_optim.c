/*
 * bench_train_optim: epochs of the 784-256-relu-128-relu-10 MLP on
 * Fashion-MNIST at batch 128 trained with libsgdlab's built-in optimizers
 * (Adam with torch's defaults, SGD lr 0.05 momentum 0.9), in samples per
 * second and the share of the step spent in sgd_optim_step(); and, side by
 * side, PyTorch 1.13 with the same optimizer (bench/torch_train_optim.py,
 * where Debian's /usr/bin/python3 has torch).
 *
 *   bench_train_optim [--epochs N] [--data DIR] [--torch SCRIPT] [--python PATH]
 *
 * `ninja -C build bench-train-optim` runs it with the torch script and with
 * OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for both sides (the issue's
 * setting). One thread. Printed, never asserted; best epoch of N.
 * SPDX-License-Identifier: MIT
 */
#include "sgdlab/sgdlab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 128

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_train_optim: %s: %s\n", what, sgd_error_last());
    exit(1);
}

typedef struct result {
    double samples_per_s; /* best epoch */
    double optim_share;   /* of that epoch's time */
    double last_loss;
} result;

static result train(const sgd_dataset *train_set, const char *spec, int epochs)
{
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.max_batch = BATCH;
    sgd_model *m = NULL;
    sgd_loader *loader = NULL;
    sgd_optim *opt = NULL;
    if (sgd_model_from_spec(&m, "784-256-relu-128-relu-10:seed=1", &mo, NULL) != SGD_OK)
        die("sgd_model_from_spec");
    if (sgd_loader_new(&loader, train_set, BATCH, NULL) != SGD_OK)
        die("sgd_loader_new");
    size_t n = sgd_model_num_params(m);
    if (sgd_optim_new(&opt, spec, n, NULL) != SGD_OK)
        die(spec);
    double lr;
    sgd_optim_get(opt, "lr", &lr);
    float *w = sgd_model_params(m), *g = sgd_model_grads(m);
    result best = {0, 0, 0};
    for (int e = 0; e < epochs; e++) {
        double t_opt = 0, loss_sum = 0;
        int64_t seen = 0, batches = 0;
        double t0 = now();
        sgd_batch b;
        while (sgd_loader_next(loader, &b) == SGD_OK && b.size > 0) {
            double loss = 0;
            if (sgd_model_zero_grad(m) != SGD_OK ||
                sgd_model_forward_backward(m, b.x, b.labels, NULL, b.size, &loss) != SGD_OK)
                die("forward_backward");
            double t1 = now();
            if (sgd_optim_step(opt, w, g, lr, NULL) != SGD_OK)
                die("sgd_optim_step");
            t_opt += now() - t1;
            seen += b.size;
            loss_sum += loss;
            batches++;
        }
        double dt = now() - t0;
        double sps = (double)seen / dt;
        printf("  %-28s epoch %d: %.3f s, %.0f samples/s, optimizer %.1f%% of the step, mean loss %.4f\n", spec,
               e + 1, dt, sps, 100.0 * t_opt / dt, loss_sum / (double)batches);
        if (sps > best.samples_per_s)
            best = (result){sps, t_opt / dt, loss_sum / (double)batches};
    }
    printf("  %s: %zu parameters\n", spec, n);
    sgd_optim_free(opt);
    sgd_loader_free(loader);
    sgd_model_free(m);
    return best;
}

/* Runs the torch script for one optimizer; returns its best samples/s (0 if unavailable). */
static double run_torch(const char *python, const char *script, const char *data, const char *optim, int epochs)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' '%s' --optim %s --epochs %d --data '%s' 2>&1", python, script, optim, epochs,
             data);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return 0;
    char line[512];
    double best = 0;
    while (fgets(line, sizeof line, p) != NULL) {
        printf("    | %s", line);
        double v;
        if (sscanf(line, "torch-best %lf", &v) == 1)
            best = v;
    }
    return pclose(p) == 0 ? best : 0;
}

int main(int argc, char **argv)
{
    int epochs = 3;
    const char *data = "/usr/share/datasets/fashion-mnist", *script = NULL, *python = "/usr/bin/python3";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--epochs") == 0 && i + 1 < argc)
            epochs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            data = argv[++i];
        else if (strcmp(argv[i], "--torch") == 0 && i + 1 < argc)
            script = argv[++i];
        else if (strcmp(argv[i], "--python") == 0 && i + 1 < argc)
            python = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--epochs N] [--data DIR] [--torch SCRIPT] [--python PATH]\n", argv[0]);
            return 2;
        }
    }
    if (epochs < 1 || epochs > 50)
        epochs = 3;
    printf("bench_train_optim: 784-256-relu-128-relu-10, Fashion-MNIST, batch %d, one thread; OPENBLAS_CORETYPE=%s "
           "OPENBLAS_L2_SIZE=%s\n",
           BATCH, getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)",
           getenv("OPENBLAS_L2_SIZE") ? getenv("OPENBLAS_L2_SIZE") : "(unset)");
    char ip[1024], lp[1024];
    snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte.gz", data);
    snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte.gz", data);
    sgd_dataset *train_set = NULL;
    if (sgd_dataset_load_idx(&train_set, ip, lp, NULL) != SGD_OK)
        die("loading Fashion-MNIST (Debian package dataset-fashion-mnist)");

    static const struct {
        const char *spec, *torch;
    } runs[] = {{"adam:lr=1e-3", "adam"}, {"sgd:lr=0.05,momentum=0.9", "sgd"}};
    result ours[2];
    double theirs[2] = {0, 0};
    for (int r = 0; r < 2; r++) {
        ours[r] = train(train_set, runs[r].spec, epochs);
        if (script != NULL)
            theirs[r] = run_torch(python, script, data, runs[r].torch, epochs);
    }
    printf("\n%-28s %14s %12s %16s %8s\n", "optimizer", "sgdlab samp/s", "optim share", "torch samp/s", "ratio");
    for (int r = 0; r < 2; r++) {
        if (theirs[r] > 0)
            printf("%-28s %14.0f %11.1f%% %16.0f %7.2fx\n", runs[r].spec, ours[r].samples_per_s,
                   100.0 * ours[r].optim_share, theirs[r], ours[r].samples_per_s / theirs[r]);
        else
            printf("%-28s %14.0f %11.1f%% %16s\n", runs[r].spec, ours[r].samples_per_s, 100.0 * ours[r].optim_share,
                   "-");
    }
    sgd_dataset_free(train_set);
    return 0;
}
