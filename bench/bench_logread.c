/*
 * bench_logread: the cost per line of `sgdlab monitor`'s reader (splitting
 * bytes into lines, logsplit.c, and finding the fields, logread.c) on logs
 * in several formats, next to a peer measured in the same run: a loop that
 * finds each line with memchr and reads its last number with strtod (what
 * `awk '{print $NF}'` does, the least a reader does; on the Keras log, whose
 * updates end in \r, it sees one line). Best of 5, interleaved, CPU time.
 * SPDX-License-Identifier: MIT
 */
#include "logread.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINES 200000

/* The process's CPU time: on a machine shared with other jobs, wall-clock time also counts the
   time spent waiting for a core. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct sink {
    logread *r;
    long obs;
    double sum;
} sink;

static void on_line(const char *line, size_t len, void *user)
{
    sink *k = user;
    logread_obs ob[2];
    int n = logread_line(k->r, line, len, ob);
    for (int i = 0; i < n; i++)
        if (ob[i].kind == LOGREAD_TRAIN) {
            k->obs++;
            k->sum += ob[i].loss;
        }
}

static char *make(int fmt, size_t *len)
{
    size_t cap = (size_t)LINES * 200 + 1024, n = 0;
    char *b = malloc(cap);
    if (b == NULL)
        return NULL;
    if (fmt == 3)
        n += (size_t)snprintf(b + n, cap - n, "epoch,step,train_loss,val_loss\n");
    for (int i = 0; i < LINES; i++) {
        double v = 2.3 * exp(-i / 50000.0) + 0.1 * (i % 7) / 7.0;
        switch (fmt) {
        case 0:
            n += (size_t)snprintf(b + n, cap - n, "%.6f\n", v);
            break;
        case 1:
            n += (size_t)snprintf(b + n, cap - n, "iter %d: loss %.4f, time %.2fms, mfu %.2f%%\n", i, v, 30.12, 12.3);
            break;
        case 2:
            n += (size_t)snprintf(b + n, cap - n,
                                  "{'loss': %.4f, 'grad_norm': 1.2345678, 'learning_rate': 4.9e-05, 'epoch': %.2f}\n", v,
                                  i / 1000.0);
            break;
        case 3:
            n += (size_t)snprintf(b + n, cap - n, "%d,%d,%.6f,\n", i / 1000, i, v);
            break;
        case 4:
            n += (size_t)snprintf(b + n, cap - n,
                                  "[11/01 11:27:04 d2.utils.events]:  eta: 8:05:12  iter: %d  total_loss: %.3f  "
                                  "loss_cls: 0.714  loss_box_reg: 0.291  time: 0.3322  data_time: 0.0334  lr: 0.010000  "
                                  "max_mem: 3961M\n",
                                  i, v);
            break;
        default:
            n += (size_t)snprintf(b + n, cap - n,
                                  "\b\b\b\b\b\b\b\b\b\b\r%4d/1875 [=====>........................] - ETA: 2s - loss: %.4f - "
                                  "accuracy: 0.8123",
                                  i % 1875 + 1, v);
            break;
        }
    }
    *len = n;
    return b;
}

int main(void)
{
    static const char *const names[6] = {"plain numbers", "nanoGPT iter lines", "HF Trainer dicts",
                                         "Lightning metrics.csv", "detectron2 lines", "Keras progress bar"};
    printf("bench_logread: %d lines per log; ns per line, best of 5 runs (the machine may be shared)\n", LINES);
    printf("  %-22s %9s %9s %12s %8s\n", "format", "reader", "peer", "reader MB/s", "ratio");
    for (int fmt = 0; fmt < 6; fmt++) {
        size_t len;
        char *text = make(fmt, &len);
        if (text == NULL)
            return 1;
        double best = 1e300, best_peer = 1e300;
        long obs = 0;
        volatile double guard = 0;
        for (int rep = 0; rep < 5; rep++) {
            sink k = {NULL, 0, 0};
            char err[200];
            logsplit sp;
            if (logread_new(&k.r, NULL, err, sizeof err) != 0 || !logsplit_init(&sp))
                return 1;
            double t0 = now();
            logsplit_feed(&sp, text, len, on_line, &k);
            logsplit_end(&sp, on_line, &k);
            double dt = now() - t0;
            logread_obs ob;
            logread_end(k.r, &ob);
            logsplit_free(&sp);
            logread_free(k.r);
            obs = k.obs;
            guard += k.sum;
            if (dt < best)
                best = dt;
            /* the peer: lines by memchr, the last number by strtod */
            t0 = now();
            double s = 0;
            const char *p = text, *end = text + len;
            while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *e = nl ? nl : end;
                const char *q = e;
                while (q > p && (q[-1] == ' ' || q[-1] == ','))
                    q--;
                while (q > p && q[-1] != ' ' && q[-1] != ',' && q[-1] != '\r')
                    q--;
                s += strtod(q, NULL);
                p = e + 1;
            }
            guard += s;
            dt = now() - t0;
            if (dt < best_peer)
                best_peer = dt;
        }
        printf("  %-22s %9.1f %9.1f %12.1f %7.1fx   (%ld observations)\n", names[fmt], best / LINES * 1e9,
               best_peer / LINES * 1e9, (double)len / best / 1e6, best / best_peer, obs);
        free(text);
    }
    return 0;
}
