/*
 * bench_cnn: one training step of the CNN
 * (1x28x28-conv2d(32,3,padding=1)-relu-maxpool2d(2)-conv2d(64,3,padding=1)-
 * relu-maxpool2d(2)-flatten-128-relu-10) at batch 128, one BLAS thread:
 * zero_grad, forward, cross-entropy, backward, an SGD-with-momentum update,
 * in samples per second; the same cblas_sgemm calls alone
 * (sgd__model_replay_gemms), for the share of the step in the BLAS; and
 * PyTorch 1.13 doing the same step (bench/torch_cnn.py) in the same run,
 * rounds interleaved with ours; and the machine's sgemm peak (a square
 * 1536x1536x1536 cblas_sgemm, one thread) in the same run, for what a
 * multiple of torch's speed would need in GFLOP/s.
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
#include "sgd_config.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 128
/*
 * Floating-point operations of one training step per sample, those of its
 * GEMMs (2 M N K each): conv1 forward and weight gradient 2 x 2*32*9*784
 * (its input gradient is not computed), conv2 forward, weight and input
 * gradients 3 x 2*64*288*196, dense 3136->128 and 128->10 three products each.
 */
#define FLOP_PER_SAMPLE (2.0 * 2 * 32 * 9 * 784 + 3.0 * 2 * 64 * 288 * 196 + 3.0 * 2 * 3136 * 128 + 3.0 * 2 * 128 * 10)
#define PEAK_N 1536
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

/* GFLOP/s of one square PEAK_N sgemm (CPU time of the thread). */
static double sgemm_peak(float *a, float *b, float *c)
{
    double c0 = clock_of(CLOCK_THREAD_CPUTIME_ID);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, PEAK_N, PEAK_N, PEAK_N, 1.0f, a, PEAK_N, b, PEAK_N, 0.0f, c,
                PEAK_N);
    double c1 = clock_of(CLOCK_THREAD_CPUTIME_ID);
    return 2.0 * PEAK_N * PEAK_N * (double)PEAK_N / (c1 - c0) / 1e9;
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
    size_t pn = (size_t)PEAK_N * PEAK_N;
    float *pa = malloc(pn * sizeof *pa), *pb = malloc(pn * sizeof *pb), *pc = malloc(pn * sizeof *pc);
    if (pa == NULL || pb == NULL || pc == NULL)
        return 1;
    for (size_t i = 0; i < pn; i++) {
        pa[i] = (float)(i % 61) / 61.0f - 0.5f;
        pb[i] = (float)(i % 67) / 67.0f - 0.5f;
    }
    double peak = 0;
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
        if (k < 3) {
            /* The BLAS thread count of a model call is restored on return: one thread here too. */
#if SGD_HAVE_OPENBLAS
            int threads = openblas_get_num_threads();
            openblas_set_num_threads(1);
#endif
            double gf = sgemm_peak(pa, pb, pc);
#if SGD_HAVE_OPENBLAS
            openblas_set_num_threads(threads);
#endif
            peak = gf > peak ? gf : peak;
        }
    }
    printf("bench_cnn: %s, batch %d, 1 thread, best of %d rounds of %d steps (machine may be shared)\n", SPEC, BATCH,
           rounds, steps);
#if SGD_HAVE_OPENBLAS
    printf("BLAS: %s, core %s\n", openblas_get_config(), openblas_get_corename());
#endif
    printf("  sgdlab step      %8.0f samples/s wall  %8.0f samples/s cpu\n", ours.wall, ours.cpu);
    printf("  its GEMMs alone  %8.0f samples/s wall  %8.0f samples/s cpu   step / GEMMs = %.2f (cpu)\n", gemm.wall,
           gemm.cpu, gemm.cpu / ours.cpu);
    if (torch.cpu > 0)
        printf("  torch 1.13 step  %8.0f samples/s wall  %8.0f samples/s cpu   sgdlab / torch = %.2f (cpu)\n",
               torch.wall, torch.cpu, ours.cpu / torch.cpu);
    else if (script != NULL)
        printf("  torch 1.13: not available\n");
    double flop = FLOP_PER_SAMPLE;
    printf("  %.2f MFLOP per sample: the step runs at %.1f GFLOP/s (cpu), its GEMMs at %.1f; sgemm %dx%dx%d: %.1f "
           "GFLOP/s\n",
           flop / 1e6, ours.cpu * flop / 1e9, gemm.cpu * flop / 1e9, PEAK_N, PEAK_N, PEAK_N, peak);
    if (torch.cpu > 0)
        printf("  2.5x torch = %.0f samples/s = %.1f GFLOP/s for the whole step (%.0f%% of that sgemm peak)\n",
               2.5 * torch.cpu, 2.5 * torch.cpu * flop / 1e9, 100 * 2.5 * torch.cpu * flop / 1e9 / peak);
    free(x);
    free(mom);
    free(pa);
    free(pb);
    free(pc);
    sgd_model_free(m);
    return 0;
}
