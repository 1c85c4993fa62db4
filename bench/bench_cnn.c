/*
 * bench_cnn: one training step of the CNN
 * (1x28x28-conv2d(32,3,padding=1)-relu-maxpool2d(2)-conv2d(64,3,padding=1)-
 * relu-maxpool2d(2)-flatten-128-relu-10) at batch 128, one BLAS thread:
 * zero_grad, forward, cross-entropy, backward, an SGD-with-momentum update,
 * in samples per second; the same cblas_sgemm calls alone
 * (sgd__model_replay_gemms), for the share of the step in the BLAS; and
 * PyTorch 1.13 doing the same step (bench/torch_cnn.py) in the same run,
 * rounds interleaved with ours.
 *
 * The machine may be shared: each figure is given as wall-clock and as CPU
 * time of the thread (CLOCK_THREAD_CPUTIME_ID; for torch, the process's CPU
 * time with one thread), best of the rounds. Figures are printed, never
 * asserted.
 *
 * usage: bench_cnn [--rounds N] [--steps N] [--torch SCRIPT] [--python PATH]
 * (`ninja -C build bench-cnn` runs it with the torch script, OPENBLAS_CORETYPE
 * and OPENBLAS_L2_SIZE unset for both sides.)
 */
#include "model/model_internal.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 128
#define SPEC "1x28x28-conv2d(32,3,padding=1)-relu-maxpool2d(2)-conv2d(64,3,padding=1)-relu-maxpool2d(2)-flatten-128-relu-10"

static double clock_of(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct best {
    double wall, cpu; /* samples per second, best */
} best;

static void keep(best *b, double wall, double cpu)
{
    if (wall > b->wall)
        b->wall = wall;
    if (cpu > b->cpu)
        b->cpu = cpu;
}

static void train_steps(sgd_model *m, const float *x, const int32_t *y, float *mom, int steps)
{
    size_t n = sgd_model_num_params(m);
    float *w = sgd_model_params(m), *g = sgd_model_grads(m);
    for (int s = 0; s < steps; s++) {
        double loss;
        sgd_model_zero_grad(m);
        if (sgd_model_forward_backward(m, x, y, NULL, BATCH, &loss) != SGD_OK) {
            fprintf(stderr, "bench_cnn: %s\n", sgd_error_last());
            exit(1);
        }
        for (size_t i = 0; i < n; i++) {
            mom[i] = 0.9f * mom[i] + g[i];
            w[i] -= 0.01f * mom[i];
        }
    }
}

static void torch_round(const char *python, const char *script, int steps, best *b)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s --rounds 2 --steps %d", python, script, steps);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return;
    char line[256];
    while (fgets(line, sizeof line, p) != NULL) {
        double w, c;
        if (sscanf(line, "torch-round %lf %lf", &w, &c) == 2)
            keep(b, w, c);
    }
    pclose(p);
}

int main(int argc, char **argv)
{
    int rounds = 5, steps = 10;
    const char *script = NULL, *python = "/usr/bin/python3";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--torch") == 0 && i + 1 < argc)
            script = argv[++i];
        else if (strcmp(argv[i], "--python") == 0 && i + 1 < argc)
            python = argv[++i];
    }
    sgd_model_options o;
    sgd_model_options_init(&o);
    o.max_batch = BATCH;
    sgd_model *m;
    if (sgd_model_from_spec(&m, SPEC, &o, NULL) != SGD_OK) {
        fprintf(stderr, "bench_cnn: %s\n", sgd_error_last());
        return 1;
    }
    size_t n = sgd_model_num_params(m);
    float *x = malloc(BATCH * 784 * sizeof *x), *mom = calloc(n, sizeof *mom);
    int32_t y[BATCH];
    if (x == NULL || mom == NULL)
        return 1;
    uint64_t r = 1;
    for (int i = 0; i < BATCH * 784; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((r >> 40) / 16777216.0);
    }
    for (int i = 0; i < BATCH; i++)
        y[i] = i % 10;
    memcpy(m->xstage, x, BATCH * 784 * sizeof *x);
    train_steps(m, x, y, mom, 3); /* warm up */
    best ours = {0, 0}, gemm = {0, 0}, torch = {0, 0};
    for (int k = 0; k < rounds; k++) {
        double w0 = clock_of(CLOCK_MONOTONIC), c0 = clock_of(CLOCK_THREAD_CPUTIME_ID);
        train_steps(m, x, y, mom, steps);
        double w1 = clock_of(CLOCK_MONOTONIC), c1 = clock_of(CLOCK_THREAD_CPUTIME_ID);
        keep(&ours, BATCH * steps / (w1 - w0), BATCH * steps / (c1 - c0));
        w0 = clock_of(CLOCK_MONOTONIC);
        c0 = clock_of(CLOCK_THREAD_CPUTIME_ID);
        for (int s = 0; s < steps; s++)
            sgd__model_replay_gemms(m, BATCH);
        w1 = clock_of(CLOCK_MONOTONIC);
        c1 = clock_of(CLOCK_THREAD_CPUTIME_ID);
        keep(&gemm, BATCH * steps / (w1 - w0), BATCH * steps / (c1 - c0));
        if (script != NULL && k % 2 == 0)
            torch_round(python, script, steps, &torch);
    }
    printf("bench_cnn: %s, batch %d, 1 thread, best of %d rounds of %d steps (machine may be shared)\n", SPEC, BATCH,
           rounds, steps);
    printf("  sgdlab step      %8.0f samples/s wall  %8.0f samples/s cpu\n", ours.wall, ours.cpu);
    printf("  its GEMMs alone  %8.0f samples/s wall  %8.0f samples/s cpu   step / GEMMs = %.2f (cpu)\n", gemm.wall,
           gemm.cpu, gemm.cpu / ours.cpu);
    if (torch.cpu > 0)
        printf("  torch 1.13 step  %8.0f samples/s wall  %8.0f samples/s cpu   sgdlab / torch = %.2f (cpu)\n",
               torch.wall, torch.cpu, ours.cpu / torch.cpu);
    else if (script != NULL)
        printf("  torch 1.13: not available\n");
    free(x);
    free(mom);
    sgd_model_free(m);
    return 0;
}
