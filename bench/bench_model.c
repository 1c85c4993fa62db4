/*
 * bench_model: one training step of the 784-256-relu-128-relu-10 MLP on
 * Fashion-MNIST at batch 128 (loader gather, zero_grad, forward, loss,
 * backward, SGD-with-momentum update), in samples per second; the same
 * cblas_sgemm calls timed alone in the same run, for the share of the step
 * spent in the BLAS; the parts outside the GEMMs; the default BLAS thread
 * policy against leaving OpenBLAS's thread count alone; and, side by side,
 * PyTorch 1.13 doing the same training (bench/torch_mlp.py, where Debian's
 * /usr/bin/python3 has torch).
 *
 * The machine may be shared: every figure is the best of several rounds,
 * rounds of different kinds are interleaved, and the median is printed too.
 * Figures are printed, never asserted.
 *
 * usage: bench_model [--rounds N] [--data DIR] [--torch SCRIPT] [--python PATH]
 * (`ninja -C build bench-model` runs it with the torch script, with
 * OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for both sides.)
 */
#include "bench_util.h"
#include "model/model_internal.h"
#include "sgd_config.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH 128

static void die(const char *what)
{
    fprintf(stderr, "bench_model: %s: %s\n", what, sgd_error_last());
    exit(1);
}

/* torch.optim.SGD(momentum=0.9) over the flat arenas, in vectorizable blocks. */
static void sgd_update(float *restrict w, const float *restrict g, float *restrict buf, size_t n, float lr,
                       float momentum)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) {
            float b = momentum * buf[i + (size_t)k] + g[i + (size_t)k];
            buf[i + (size_t)k] = b;
            w[i + (size_t)k] -= lr * b;
        }
    for (; i < n; i++) {
        float b = momentum * buf[i] + g[i];
        buf[i] = b;
        w[i] -= lr * b;
    }
}

typedef struct ctx {
    sgd_model *m;
    sgd_loader *loader;
    float *mom;
    size_t n;
    int64_t steps; /* per epoch */
} ctx;

static void step(ctx *c)
{
    sgd_batch b;
    if (sgd_loader_next(c->loader, &b) != SGD_OK)
        die("sgd_loader_next");
    if (b.size == 0 && sgd_loader_next(c->loader, &b) != SGD_OK) /* end of epoch: next one */
        die("sgd_loader_next");
    if (sgd_model_zero_grad(c->m) != SGD_OK ||
        sgd_model_forward_backward(c->m, b.x, b.labels, NULL, b.size, NULL) != SGD_OK)
        die("step");
    sgd_update(sgd_model_params(c->m), sgd_model_grads(c->m), c->mom, c->n, 0.05f, 0.9f);
}

/* Seconds for one epoch's worth (469) of full steps. */
static double time_steps(ctx *c)
{
    double t = now();
    for (int64_t i = 0; i < c->steps; i++)
        step(c);
    return now() - t;
}

static double time_gemms(ctx *c)
{
    double t = now();
    for (int64_t i = 0; i < c->steps; i++)
        sgd__model_replay_gemms(c->m, BATCH);
    return now() - t;
}

static double time_loader(ctx *c)
{
    double t = now();
    for (int64_t i = 0; i < c->steps; i++) {
        sgd_batch b;
        sgd_loader_next(c->loader, &b);
        if (b.size == 0)
            sgd_loader_next(c->loader, &b);
    }
    return now() - t;
}

static double time_update(ctx *c)
{
    double t = now();
    for (int64_t i = 0; i < c->steps; i++) {
        sgd_model_zero_grad(c->m);
        sgd_update(sgd_model_params(c->m), sgd_model_grads(c->m), c->mom, c->n, 0.0f, 0.9f);
    }
    return now() - t;
}

/* A busy thread of the host (a data pipeline, another library's pool) competing for the cores. */
static atomic_int g_spin_stop;

static void *spinner(void *arg)
{
    (void)arg;
    volatile unsigned long x = 0;
    while (!atomic_load_explicit(&g_spin_stop, memory_order_relaxed))
        for (int i = 0; i < 100000; i++)
            x = x + 1;
    return NULL;
}

/* Best of `rounds` epochs of steps with the model's BLAS thread count set to `threads`. */
static double best_steps(ctx *c, int32_t threads, int rounds)
{
    double t[64];
    sgd_model_set_blas_threads(c->m, threads);
    for (int r = 0; r < rounds; r++)
        t[r] = time_steps(c);
    sgd_model_set_blas_threads(c->m, 1);
    return best_of(t, rounds);
}

/* Two models trained at once, one per thread (a host running trials in parallel). */
typedef struct pair_arg {
    ctx c;
    double seconds;
} pair_arg;

static void *train_epoch(void *arg)
{
    pair_arg *p = arg;
    p->seconds = time_steps(&p->c);
    return NULL;
}

/* Samples per second of two models trained side by side for one epoch each, best of `rounds`. */
static double concurrent_pair(const sgd_dataset *train, int32_t threads, int rounds)
{
    pair_arg p[2];
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.max_batch = BATCH;
    mo.blas_threads = threads;
    for (int k = 0; k < 2; k++) {
        mo.seed = (uint64_t)k;
        if (sgd_model_from_spec(&p[k].c.m, "784-256-relu-128-relu-10", &mo, NULL) != SGD_OK ||
            sgd_loader_new(&p[k].c.loader, train, BATCH, NULL) != SGD_OK)
            die("concurrent_pair");
        p[k].c.n = sgd_model_num_params(p[k].c.m);
        p[k].c.mom = calloc(p[k].c.n, sizeof(float));
        p[k].c.steps = sgd_loader_num_batches(p[k].c.loader);
        if (p[k].c.mom == NULL)
            die("out of memory");
    }
    double best = 1e30;
    for (int r = 0; r < rounds; r++) {
        pthread_t th[2];
        double t = now();
        for (int k = 0; k < 2; k++)
            pthread_create(&th[k], NULL, train_epoch, &p[k]);
        for (int k = 0; k < 2; k++)
            pthread_join(th[k], NULL);
        t = now() - t;
        best = t < best ? t : best;
    }
    for (int k = 0; k < 2; k++) {
        free(p[k].c.mom);
        sgd_loader_free(p[k].c.loader);
        sgd_model_free(p[k].c.m);
    }
    return 2.0 * (double)p[0].c.steps * BATCH / best;
}

/* Runs the torch script; returns its best samples/s (0 if unavailable) and prints its lines. */
static double run_torch(const char *python, const char *script, const char *data, int epochs, char *info,
                        size_t info_len)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' '%s' --epochs %d --threads 1 --data '%s' 2>&1", python, script, epochs, data);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return 0;
    char line[512];
    double best = 0;
    while (fgets(line, sizeof line, p) != NULL) {
        printf("    | %s", line);
        double v;
        int threads;
        char core[64];
        if (sscanf(line, "torch-best %lf threads %d blas %63s", &v, &threads, core) == 3) {
            best = v;
            snprintf(info, info_len, "%d thread(s), OpenBLAS core %s", threads, core);
        }
    }
    int rc = pclose(p);
    return rc == 0 ? best : 0;
}

int main(int argc, char **argv)
{
    int rounds = 7;
    const char *data = "/usr/share/datasets/fashion-mnist", *script = NULL, *python = "/usr/bin/python3";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            data = argv[++i];
        else if (strcmp(argv[i], "--torch") == 0 && i + 1 < argc)
            script = argv[++i];
        else if (strcmp(argv[i], "--python") == 0 && i + 1 < argc)
            python = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--rounds N] [--data DIR] [--torch SCRIPT] [--python PATH]\n", argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > 32)
        rounds = 7;

    printf("bench_model: 784-256-relu-128-relu-10, Fashion-MNIST, batch %d, SGD lr 0.05 momentum 0.9\n", BATCH);
    printf("environment: OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s, %ld CPUs\n",
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)",
           getenv("OPENBLAS_L2_SIZE") ? getenv("OPENBLAS_L2_SIZE") : "(unset)", sysconf(_SC_NPROCESSORS_ONLN));
#if SGD_HAVE_OPENBLAS
    int blas_default = openblas_get_num_threads();
    printf("BLAS: %s, core %s, %d thread(s) by default\n", openblas_get_config(), openblas_get_corename(),
           blas_default);
#else
    int blas_default = 0;
    printf("BLAS: a generic CBLAS (no thread control)\n");
#endif

    char ip[1024], lp[1024];
    snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte.gz", data);
    snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte.gz", data);
    sgd_dataset *train;
    if (sgd_dataset_load_idx(&train, ip, lp, NULL) != SGD_OK)
        die("loading Fashion-MNIST (Debian package dataset-fashion-mnist)");
    ctx c;
    sgd_model_options mo;
    sgd_model_options_init(&mo); /* defaults: one BLAS thread during the model's calls */
    mo.max_batch = BATCH;
    if (sgd_model_from_spec(&c.m, "784-256-relu-128-relu-10", &mo, NULL) != SGD_OK)
        die("sgd_model_from_spec");
    if (sgd_loader_new(&c.loader, train, BATCH, NULL) != SGD_OK)
        die("sgd_loader_new");
    c.n = sgd_model_num_params(c.m);
    c.mom = calloc(c.n, sizeof *c.mom);
    c.steps = sgd_loader_num_batches(c.loader);
    if (c.mom == NULL)
        return 1;
    for (int i = 0; i < 50; i++) /* warm up: caches, BLAS buffers, page faults */
        step(&c);

    double ts[64], tg[64], tl[64], tu[64];
    for (int r = 0; r < rounds; r++) {
        ts[r] = time_steps(&c);
        tg[r] = time_gemms(&c);
        tl[r] = time_loader(&c);
        tu[r] = time_update(&c);
    }

    /* The policies, on the machine as it is and with a busy thread in the process: one BLAS
       thread (the default), or OpenBLAS's own count left in force. */
    int r0 = rounds < 3 ? rounds : 3;
    double pol_idle[2] = {best_steps(&c, 1, r0), best_steps(&c, 0, r0)};
    pthread_t spin;
    double pol_busy[2] = {0, 0};
    atomic_store(&g_spin_stop, 0);
    if (pthread_create(&spin, NULL, spinner, NULL) == 0) {
        pol_busy[0] = best_steps(&c, 1, r0);
        pol_busy[1] = best_steps(&c, 0, r0);
        atomic_store(&g_spin_stop, 1);
        pthread_join(spin, NULL);
    }
    double pair[2] = {concurrent_pair(train, 1, r0), concurrent_pair(train, 0, r0)};

    double torch = 0;
    char torch_info[160] = "";
    if (script != NULL) {
        printf("PyTorch (%s %s):\n", python, script);
        torch = run_torch(python, script, data, rounds < 5 ? rounds : 5, torch_info, sizeof torch_info);
        if (torch == 0)
            printf("    PyTorch not available: only libsgdlab's figures are printed\n");
        /* A second set of our rounds after torch, in case the machine's load changed. */
        for (int r = 0; r < rounds; r++) {
            ts[rounds + r] = time_steps(&c);
            tg[rounds + r] = time_gemms(&c);
        }
    }
    int ns = script != NULL ? 2 * rounds : rounds;
    double n = (double)c.steps, samples = n * BATCH;
    double step_us = best_of(ts, ns) / n * 1e6, gemm_us = best_of(tg, ns) / n * 1e6;
    printf("\nlibsgdlab, one BLAS thread (the default policy), %lld steps per round, best of %d rounds (median):\n",
           (long long)c.steps, ns);
    printf("  training step          %8.1f us/step  %8.0f samples/s  (median %.0f samples/s)\n", step_us,
           samples / best_of(ts, ns), samples / median_of(ts, ns));
    printf("  the same GEMMs alone   %8.1f us/step  (median %.1f us)\n", gemm_us, median_of(tg, ns) / n * 1e6);
    printf("  step / GEMMs           %8.2f         (target <= 1.30); time in cblas_sgemm: %.0f%% of the step\n",
           step_us / gemm_us, 100.0 * gemm_us / step_us);
    printf("  outside the GEMMs: loader gather %.1f us, zero_grad + SGD update %.1f us per step\n",
           best_of(tl, rounds) / n * 1e6, best_of(tu, rounds) / n * 1e6);
    printf("\nBLAS thread policy (samples/s, best of %d):      one thread (default)   OpenBLAS's own (%d threads)\n",
           r0, blas_default);
    printf("  machine as it is                               %8.0f               %8.0f\n", samples / pol_idle[0],
           samples / pol_idle[1]);
    if (pol_busy[0] > 0)
        printf("  with a busy thread in the process              %8.0f               %8.0f\n",
               samples / pol_busy[0], samples / pol_busy[1]);
    printf("  two models trained at once (two threads)       %8.0f               %8.0f   (both models)\n", pair[0],
           pair[1]);
    if (torch > 0) {
        printf("\nPyTorch 1.13, %s: %.0f samples/s (best epoch)\n", torch_info, torch);
        printf("libsgdlab / PyTorch: %.2fx the samples per second (target >= 1.2)\n",
               samples / best_of(ts, ns) / torch);
    }
    free(c.mom);
    sgd_loader_free(c.loader);
    sgd_model_free(c.m);
    sgd_dataset_free(train);
    return 0;
}
