/*
 * Checkpoint speed: a model of 1e6 float32 parameters (four tensors,
 * 1,000,000 values in all), alone and with Adam's two
 * state arrays (3e6 values). For each: the file size, writing into memory,
 * saving crash-safely to a file (write, fsync, rename, directory fsync),
 * opening from memory and from the file (full validation and CRC-32C), and
 * copying the tensors out. Also the CRC-32C throughput of the table and
 * SSE4.2 implementations. Prints figures (median and best of the runs); it
 * asserts nothing.
 *
 *   bench_checkpoint [DIR] [RUNS]    DIR: where to save (default "."), RUNS: 15
 * SPDX-License-Identifier: MIT
 */
#include "io/ckpt_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *t, int runs, double bytes)
{
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    double med = t[runs / 2], best = t[0];
    printf("  %-34s median %8.3f ms  best %8.3f ms  (%6.2f GB/s at the median)\n", what, 1e3 * med, 1e3 * best,
           bytes / med / 1e9);
}

#define CHECK(x)                                                                                                       \
    do {                                                                                                               \
        sgd_status st_ = (x);                                                                                          \
        if (st_ != SGD_OK) {                                                                                           \
            fprintf(stderr, "%s: %s\n", #x, sgd_error_last());                                                         \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

/* Four tensors, exactly 1,000,000 values: 1000x784 + 1000 + 214x1000 + 1000 (rank 1 when the second dim is 1). */
static const int64_t shapes[][2] = {{1000, 784}, {1000, 1}, {214, 1000}, {1000, 1}};
static const char *names[] = {"0.weight", "0.bias", "1.weight", "1.gain"};

static void run(const char *dir, int runs, int with_adam)
{
    size_t total = 0;
    for (int i = 0; i < 4; i++)
        total += (size_t)(shapes[i][0] * shapes[i][1]);
    int slots = with_adam ? 3 : 1;
    float *arena = malloc(total * sizeof(float) * (size_t)slots);
    for (size_t i = 0; i < total * (size_t)slots; i++)
        arena[i] = (float)(i % 9973) * 1e-3f - 5.0f;
    sgd_ckpt_writer *w;
    CHECK(sgd_ckpt_writer_new(&w, NULL));
    const char *sec[] = {"model", "optim.exp_avg", "optim.exp_avg_sq"};
    for (int s = 0; s < slots; s++) {
        CHECK(sgd_ckpt_writer_begin_section(w, sec[s], SGD_CKPT_SECTION_REQUIRED));
        size_t off = total * (size_t)s;
        for (int i = 0; i < 4; i++) {
            uint32_t rank = shapes[i][1] == 1 ? 1 : 2;
            CHECK(sgd_ckpt_writer_add_tensor(w, names[i], SGD_CKPT_F32, rank, shapes[i], arena + off));
            off += (size_t)(shapes[i][0] * shapes[i][1]);
        }
    }
    CHECK(sgd_ckpt_writer_add_i64(w, "step", 1000));
    uint64_t size;
    CHECK(sgd_ckpt_writer_size(w, &size));
    printf("%zu parameters%s: %zu float32 values, file %llu bytes (%.4f%% overhead)\n", total,
           with_adam ? " + Adam state" : "", total * (size_t)slots, (unsigned long long)size,
           100.0 * ((double)size - 4.0 * (double)(total * (size_t)slots)) / (4.0 * (double)(total * (size_t)slots)));
    unsigned char *buf = malloc((size_t)size);
    char path[4096];
    snprintf(path, sizeof path, "%s/bench-%d.sgdc", dir, with_adam);
    double *t = malloc(sizeof(double) * (size_t)runs);
    float *dst = malloc(total * sizeof(float));

    for (int r = 0; r < runs; r++) {
        double t0 = now();
        CHECK(sgd_ckpt_writer_write_memory(w, buf, (size_t)size));
        t[r] = now() - t0;
    }
    report("write to memory", t, runs, (double)size);
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        CHECK(sgd_ckpt_writer_save(w, path));
        t[r] = now() - t0;
    }
    report("save to file (with 2 fsyncs)", t, runs, (double)size);
    for (int r = 0; r < runs; r++) {
        sgd_ckpt_reader *rd;
        double t0 = now();
        CHECK(sgd_ckpt_reader_open_memory(&rd, buf, (size_t)size, NULL));
        t[r] = now() - t0;
        sgd_ckpt_reader_free(rd);
    }
    report("open from memory (validate + CRC)", t, runs, (double)size);
    for (int r = 0; r < runs; r++) {
        sgd_ckpt_reader *rd;
        double t0 = now();
        CHECK(sgd_ckpt_reader_open(&rd, path, NULL));
        t[r] = now() - t0;
        sgd_ckpt_reader_free(rd);
    }
    report("open from file (read + validate)", t, runs, (double)size);
    sgd_ckpt_reader *rd;
    CHECK(sgd_ckpt_reader_open_memory(&rd, buf, (size_t)size, NULL));
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        for (int s = 0; s < slots; s++) {
            float *d = dst;
            for (int i = 0; i < 4; i++) {
                uint32_t rank = shapes[i][1] == 1 ? 1 : 2;
                size_t n = (size_t)(shapes[i][0] * shapes[i][1]);
                CHECK(sgd_ckpt_reader_read_tensor(rd, sec[s], names[i], SGD_CKPT_F32, rank, shapes[i], d,
                                                  n * sizeof(float)));
                d += n;
            }
        }
        t[r] = now() - t0;
    }
    report("read every tensor into arrays", t, runs, (double)size);
    if (memcmp(dst, arena + total * (size_t)(slots - 1), total * sizeof(float)) != 0) {
        fprintf(stderr, "read back differs\n");
        exit(1);
    }
    sgd_ckpt_reader_free(rd);
    unlink(path);
    sgd_ckpt_writer_free(w);
    free(dst);
    free(t);
    free(buf);
    free(arena);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    int runs = argc > 2 ? atoi(argv[2]) : 15;
    if (runs < 1)
        runs = 1;
    size_t n = (size_t)16 << 20;
    unsigned char *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(i * 2654435761u >> 13);
    double *t = malloc(sizeof(double) * (size_t)runs);
    volatile uint32_t sink = 0;
    printf("CRC-32C over 16 MiB (SSE4.2 %s):\n", sgd__crc32c_hw_available() ? "available" : "not available");
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        sink ^= sgd__crc32c_sw(0, b, n);
        t[r] = now() - t0;
    }
    report("slicing-by-8 tables", t, runs, (double)n);
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        sink ^= sgd__crc32c_hw(0, b, n);
        t[r] = now() - t0;
    }
    report("crc32 instruction", t, runs, (double)n);
    (void)sink;
    free(t);
    free(b);
    run(dir, runs, 0);
    run(dir, runs, 1);
    return 0;
}
