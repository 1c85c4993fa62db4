/*
 * bench_trainer: what the trainer costs on top of a hand-written loop, for
 * the 784-256-relu-128-relu-10 MLP on Fashion-MNIST at batch 128 with SGD
 * (lr 0.05, momentum 0.9) and Adam: samples per second of an epoch
 *   - by a plain loop (loader, forward/backward, sgd_optim_step),
 *   - by sgd_trainer_fit() without the guard,
 *   - by sgd_trainer_fit() with the guard (snapshots every 50 steps),
 * the cost of one snapshot and of one rollback, and the size of the
 * trainer's state. Validation is off in all three (it is the same work).
 *
 *   bench_trainer [--epochs N] [--data DIR]
 *
 * One BLAS thread; best epoch of N (default 3). Printed, never asserted.
 * SPDX-License-Identifier: MIT
 */
#include "sgdlab/sgdlab.h"

#include <math.h>
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
    fprintf(stderr, "bench_trainer: %s: %s\n", what, sgd_error_last());
    exit(1);
}

static sgd_model *model(void)
{
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.max_batch = BATCH;
    mo.seed = 1;
    sgd_model *m;
    if (sgd_model_from_spec(&m, "784-256-relu-128-relu-10", &mo, NULL) != SGD_OK)
        die("sgd_model_from_spec");
    return m;
}

static double plain_loop(const sgd_dataset *d, const char *spec, int epochs)
{
    sgd_model *m = model();
    sgd_optim *o;
    if (sgd_optim_new(&o, spec, sgd_model_num_params(m), NULL) != SGD_OK)
        die(spec);
    sgd_loader_options lo;
    sgd_loader_options_init(&lo);
    sgd_loader *l;
    if (sgd_loader_new(&l, d, BATCH, &lo) != SGD_OK)
        die("sgd_loader_new");
    double lr;
    sgd_optim_get(o, "lr", &lr);
    float *w = sgd_model_params(m), *g = sgd_model_grads(m);
    double best = 0;
    for (int e = 0; e < epochs; e++) {
        double t0 = now();
        int64_t rows = 0;
        sgd_batch b;
        while (sgd_loader_next(l, &b) == SGD_OK && b.size > 0) {
            double loss;
            sgd_model_zero_grad(m);
            if (sgd_model_forward_backward(m, b.x, b.labels, NULL, b.size, &loss) != SGD_OK)
                die("forward_backward");
            if (sgd_optim_step(o, w, g, lr, NULL) != SGD_OK)
                die("sgd_optim_step");
            rows += b.size;
        }
        double rate = (double)rows / (now() - t0);
        if (rate > best)
            best = rate;
    }
    sgd_loader_free(l);
    sgd_optim_free(o);
    sgd_model_free(m);
    return best;
}

static double with_trainer(const sgd_dataset *d, const char *spec, int epochs, int guard, double *snap_us,
                           double *rollback_us, size_t *state_bytes)
{
    sgd_model *m = model();
    sgd_optim *o;
    if (sgd_optim_new(&o, spec, sgd_model_num_params(m), NULL) != SGD_OK)
        die(spec);
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    to.batch_size = BATCH;
    to.epochs = epochs;
    to.guard = guard;
    sgd_trainer *t;
    if (sgd_trainer_new(&t, m, o, NULL, NULL, d, NULL, &to, NULL) != SGD_OK)
        die("sgd_trainer_new");
    int64_t nb = (sgd_dataset_size(d) + BATCH - 1) / BATCH;
    double best = 0;
    for (int e = 0; e < epochs; e++) {
        double t0 = now();
        if (sgd_trainer_fit(t, nb) != SGD_OK)
            die("sgd_trainer_fit");
        double rate = (double)sgd_dataset_size(d) / (now() - t0);
        if (rate > best)
            best = rate;
    }
    if (state_bytes != NULL)
        *state_bytes = sgd_trainer_state_size(t);
    sgd_trainer_free(t);
    if (guard && snap_us != NULL) {
        /*
         * A snapshot copies the parameters, the optimizer's state arrays, the
         * schedule's and the monitor's state: time sgd_trainer_state_export(),
         * which copies the two snapshots plus the counters, per snapshot.
         */
        sgd_trainer_options_init(&to);
        to.batch_size = BATCH;
        if (sgd_trainer_new(&t, m, o, NULL, NULL, d, NULL, &to, NULL) != SGD_OK)
            die("sgd_trainer_new");
        sgd_trainer_fit(t, 120);
        size_t n = sgd_trainer_state_size(t);
        unsigned char *buf = malloc(n);
        int reps = 50;
        double t0 = now();
        for (int i = 0; i < reps; i++)
            sgd_trainer_state_export(t, buf, n);
        *snap_us = 1e6 * (now() - t0) / reps / 2;
        /* A rollback: lr 50 blows up at once; each rescue restores the snapshot. */
        sgd_trainer_free(t);
        sgd_optim_set(o, "lr", 50);
        to.guard_max_rescues = 12;
        if (sgd_trainer_new(&t, m, o, NULL, NULL, d, NULL, &to, NULL) != SGD_OK)
            die("sgd_trainer_new");
        t0 = now();
        sgd_trainer_fit(t, 200);
        double dt = now() - t0;
        sgd_trainer_stats s;
        memset(&s, 0, sizeof s);
        s.struct_size = sizeof s;
        sgd_trainer_get_stats(t, &s);
        /* Time per batch run, rollbacks included, against the plain rate. */
        *rollback_us = s.rollbacks > 0 ? 1e6 * dt / (double)s.batches_run : NAN;
        printf("  (rollback run: %lld rollbacks in %lld batches, %.1f us per batch)\n", (long long)s.rollbacks,
               (long long)s.batches_run, *rollback_us);
        free(buf);
        sgd_trainer_free(t);
    }
    sgd_optim_free(o);
    sgd_model_free(m);
    return best;
}

int main(int argc, char **argv)
{
    int epochs = 3;
    const char *dir = "/usr/share/datasets/fashion-mnist";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--epochs") == 0 && i + 1 < argc)
            epochs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "usage: bench_trainer [--epochs N] [--data DIR]\n");
            return 2;
        }
    }
    char ip[1024], lp[1024];
    snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte.gz", dir);
    sgd_dataset *d;
    if (sgd_dataset_load_idx(&d, ip, lp, NULL) != SGD_OK) {
        fprintf(stderr, "bench_trainer: %s (install dataset-fashion-mnist)\n", sgd_error_last());
        return 0;
    }
    printf("784-256-relu-128-relu-10 on Fashion-MNIST, batch %d, best of %d epoch(s), samples/s\n", BATCH, epochs);
    const char *specs[2] = {"sgd:lr=0.05,momentum=0.9", "adam:lr=1e-3"};
    for (int k = 0; k < 2; k++) {
        double snap = 0, rb = 0;
        size_t bytes = 0;
        double plain = plain_loop(d, specs[k], epochs);
        double bare = with_trainer(d, specs[k], epochs, 0, NULL, NULL, NULL);
        double guarded = with_trainer(d, specs[k], epochs, 1, &snap, &rb, &bytes);
        printf("%-26s plain loop %8.0f | trainer, no guard %8.0f (%+.1f%%) | trainer, guard %8.0f (%+.1f%%)\n",
               specs[k], plain, bare, 100 * (bare / plain - 1), guarded, 100 * (guarded / plain - 1));
        printf("%-26s one snapshot %.0f us; trainer state %.2f MB (two snapshots)\n", "", snap, (double)bytes / 1e6);
    }
    sgd_dataset_free(d);
    return 0;
}
