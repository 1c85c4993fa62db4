/*
 * bench_rnn: characters per second of one training step of the character
 * language model tokens(100)-embedding(64)-lstm(256)-dense(vocab) at batch
 * 32 (zero_grad, forward over 100 steps, cross-entropy at every position,
 * backward through time, SGD update; the state carried from step to step,
 * as truncated BPTT over streams), on one thread; the same cblas_sgemm calls
 * timed alone, for the share of the step in the BLAS; and, side by side in
 * the same run, PyTorch 1.13 on one thread doing the same step
 * (bench/torch_rnn.py, where Debian's /usr/bin/python3 has torch).
 *
 * The vocabulary is 113 characters (that of the fortunes corpus); the
 * tokens are drawn uniformly (the speed does not depend on them). The
 * machine may be shared: rounds of ours and torch's are interleaved, the
 * best and the median of each side are printed. Figures are printed, never
 * asserted.
 *
 * usage: bench_rnn [--rounds N] [--steps N] [--torch SCRIPT] [--python PATH]
 * (`ninja -C build bench-rnn` runs it with the torch script, with
 * OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for both sides.)
 */
#include "bench_util.h"
#include "model/model_internal.h"
#include "sgd_config.h"
#include "sgdlab/optim.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T 100
#define BATCH 32
#define VOCAB 113
#define SPEC "tokens(100)-embedding(113,64)-lstm(256)-dense(113)"

static void die(const char *what)
{
    fprintf(stderr, "bench_rnn: %s: %s\n", what, sgd_error_last());
    exit(1);
}

typedef struct ctx {
    sgd_model *m;
    sgd_optim *o;
    float *x;      /* [steps][BATCH * T] token ids */
    int32_t *y;    /* next tokens */
    int steps;     /* per round */
    int at;
} ctx;

static void step(ctx *c)
{
    size_t off = (size_t)c->at * BATCH * T;
    c->at = (c->at + 1) % c->steps;
    if (sgd_model_zero_grad(c->m) != SGD_OK ||
        sgd_model_forward_backward(c->m, c->x + off, c->y + off, NULL, BATCH, NULL) != SGD_OK ||
        sgd_optim_step(c->o, sgd_model_params(c->m), sgd_model_grads(c->m), 0.1, NULL) != SGD_OK)
        die("step");
}

/* Seconds per step over a round of c->steps steps (wall clock; CPU time into *cpu). */
static double time_steps(ctx *c, double *cpu)
{
    double t = now(), u = cpu_now();
    for (int i = 0; i < c->steps; i++)
        step(c);
    *cpu = (cpu_now() - u) / c->steps;
    return (now() - t) / c->steps;
}

static double time_gemms(ctx *c, double *cpu)
{
    double t = now(), u = cpu_now();
    for (int i = 0; i < c->steps; i++)
        sgd__model_replay_gemms(c->m, BATCH);
    *cpu = (cpu_now() - u) / c->steps;
    return (now() - t) / c->steps;
}

/* Runs one round of the torch script; returns its seconds per step (0 if unavailable), CPU seconds in *cpu. */
static double run_torch(const char *python, const char *script, int steps, char *info, size_t info_len, bool echo,
                        double *cpu)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' '%s' --steps %d --threads 1 2>&1", python, script, steps);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return 0;
    char line[512];
    double sec = 0;
    while (fgets(line, sizeof line, p) != NULL) {
        if (echo)
            printf("    | %s", line);
        double v, u;
        int threads;
        char core[64];
        if (sscanf(line, "torch-step %lf cpu %lf threads %d blas %63s", &v, &u, &threads, core) == 4) {
            sec = v;
            *cpu = u;
            snprintf(info, info_len, "%d thread, OpenBLAS core %s", threads, core);
        }
    }
    int rc = pclose(p);
    return rc == 0 ? sec : 0;
}

int main(int argc, char **argv)
{
    int rounds = 4, steps = 20;
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
        else {
            fprintf(stderr, "usage: %s [--rounds N] [--steps N] [--torch SCRIPT] [--python PATH]\n", argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > 32)
        rounds = 4;
    if (steps < 2 || steps > 1000)
        steps = 20;

    printf("bench_rnn: %s, T=%d, batch %d, SGD lr 0.1, one thread\n", SPEC, T, BATCH);
    printf("environment: OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s, %ld CPUs\n",
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)",
           getenv("OPENBLAS_L2_SIZE") ? getenv("OPENBLAS_L2_SIZE") : "(unset)", sysconf(_SC_NPROCESSORS_ONLN));
#if SGD_HAVE_OPENBLAS
    printf("BLAS: %s, core %s\n", openblas_get_config(), openblas_get_corename());
#else
    printf("BLAS: a generic CBLAS\n");
#endif
    ctx c;
    memset(&c, 0, sizeof c);
    sgd_model_options mo;
    sgd_model_options_init(&mo); /* one BLAS thread during the model's calls */
    mo.max_batch = BATCH;
    if (sgd_model_from_spec(&c.m, SPEC, &mo, NULL) != SGD_OK)
        die("sgd_model_from_spec");
    if (sgd_optim_new(&c.o, "sgd:lr=0.1", sgd_model_num_params(c.m), NULL) != SGD_OK)
        die("sgd_optim_new");
    c.steps = steps;
    size_t n = (size_t)steps * BATCH * T;
    c.x = malloc(n * sizeof *c.x);
    c.y = malloc(n * sizeof *c.y);
    if (c.x == NULL || c.y == NULL)
        die("out of memory");
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        c.x[i] = (float)((s >> 33) % VOCAB);
        c.y[i] = (int32_t)((s >> 17) % VOCAB);
    }
    for (int i = 0; i < 5; i++) /* warm up: caches, BLAS buffers, page faults */
        step(&c);

    double ts[256], tg[256], tt[64], cs[256], cg[256], ct[64];
    int ns = 0, nt = 0;
    char torch_info[160] = "";
    for (int r = 0; r < rounds; r++) {
        ts[ns] = time_steps(&c, &cs[ns]);
        tg[ns] = time_gemms(&c, &cg[ns]);
        ns++;
        if (script != NULL) {
            double v = run_torch(python, script, steps, torch_info, sizeof torch_info, r == 0, &ct[nt]);
            if (v > 0)
                tt[nt++] = v;
        }
        ts[ns] = time_steps(&c, &cs[ns]);
        tg[ns] = time_gemms(&c, &cg[ns]);
        ns++;
    }
    double chars = (double)BATCH * T;
    printf("\nlibsgdlab, one BLAS thread, %d steps per round, %d rounds (best, median; wall clock, then CPU time):\n",
           steps, ns);
    printf("  training step          %8.1f ms  %8.0f chars/s  (median %.0f chars/s); CPU %.1f ms, %.0f chars/s\n",
           best_of(ts, ns) * 1e3, chars / best_of(ts, ns), chars / median_of(ts, ns), best_of(cs, ns) * 1e3,
           chars / best_of(cs, ns));
    printf("  the same GEMMs alone   %8.1f ms  (median %.1f ms); CPU %.1f ms\n", best_of(tg, ns) * 1e3,
           median_of(tg, ns) * 1e3, best_of(cg, ns) * 1e3);
    printf("  time in cblas_sgemm: %.0f%% of the step (wall, best over best; median over median %.0f%%; CPU %.0f%%)\n",
           100.0 * best_of(tg, ns) / best_of(ts, ns), 100.0 * median_of(tg, ns) / median_of(ts, ns),
           100.0 * best_of(cg, ns) / best_of(cs, ns));
    if (nt > 0) {
        printf("\nPyTorch 1.13, %s, %d rounds of %d steps:\n", torch_info, nt, steps);
        printf("  training step          %8.1f ms  %8.0f chars/s  (median %.0f chars/s); CPU %.1f ms, %.0f chars/s\n",
               best_of(tt, nt) * 1e3, chars / best_of(tt, nt), chars / median_of(tt, nt), best_of(ct, nt) * 1e3,
               chars / best_of(ct, nt));
        printf("libsgdlab / PyTorch: %.2fx the characters per second (wall, best vs best; median vs median %.2fx; "
               "CPU time %.2fx; target >= 2)\n",
               best_of(tt, nt) / best_of(ts, ns), median_of(tt, nt) / median_of(ts, ns),
               best_of(ct, nt) / best_of(cs, ns));
    } else if (script != NULL) {
        printf("\nPyTorch not available: only libsgdlab's figures are printed\n");
    }
    free(c.x);
    free(c.y);
    sgd_optim_free(c.o);
    sgd_model_free(c.m);
    return 0;
}
