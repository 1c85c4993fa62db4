/*
 * The monitor against labelled curves: shared by tests/test_monitor.c (which
 * asserts the targets) and tests/monitor_eval.c (which prints the tables of
 * docs/monitor.md). Header-only; include it once per program.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_TESTS_MONITOR_EVAL_H
#define SGDLAB_TESTS_MONITOR_EVAL_H

#include "sgdlab/sgdlab.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEVAL_MAX_CURVE 8192

/* Whether the log is concluded with sgd_monitor_finish() (the verdict of a log that has ended). */
static bool meval_finish = true;

static const char *const meval_labels[4] = {"healthy", "diverged", "unstable", "stagnant"};

typedef struct meval_result {
    int conf[5][4]; /* label (4: ambiguous) x verdict */
    int curves, scored, correct;
    int false_alarms; /* divergence/oscillation events on healthy curves */
    /* Divergence timing on curves that reach a non-finite value. */
    int nf_curves, nf_late, nf_margin_min;
    /* Early-spike curves (labelled unstable, a spike to 2-3x the first value within the first 20
       observations): how many are called unstable by a divergence that names a spike before 20. */
    int spike_curves, spike_named;
} meval_result;

static inline void meval_init(meval_result *r)
{
    memset(r, 0, sizeof *r);
    r->nf_margin_min = 1 << 30;
}

static inline void meval_add(meval_result *t, const meval_result *r)
{
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++)
            t->conf[i][j] += r->conf[i][j];
    t->curves += r->curves;
    t->scored += r->scored;
    t->correct += r->correct;
    t->false_alarms += r->false_alarms;
    t->nf_curves += r->nf_curves;
    t->nf_late += r->nf_late;
    if (r->nf_margin_min < t->nf_margin_min)
        t->nf_margin_min = r->nf_margin_min;
    t->spike_curves += r->spike_curves;
    t->spike_named += r->spike_named;
}

static inline int meval_label_index(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, meval_labels[i]) == 0)
            return i;
    return 4;
}

/* Reads a curve (comment lines start with '#'); returns the count, or -1. */
static inline int meval_read_curve(const char *dir, const char *name, double *x, int cap)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL && n < cap) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        x[n++] = strtod(line, NULL); /* the C locale: "nan" and "inf" read as such */
    }
    fclose(f);
    return n;
}

/* Applies a view in place; returns the new length. */
static inline int meval_view(const char *view, double *x, int n, int *offset, uint64_t salt)
{
    *offset = 0;
    if (view == NULL)
        return n;
    int k = 0;
    if (sscanf(view, "every:%d", &k) == 1 && k > 0) {
        int m = 0;
        for (int i = 0; i < n; i += k)
            x[m++] = x[i];
        /* a non-finite end is always logged */
        if ((n - 1) % k != 0 && !isfinite(x[n - 1]))
            x[m++] = x[n - 1];
        return m;
    }
    if (sscanf(view, "mean:%d", &k) == 1 && k > 0) {
        int m = 0;
        for (int i = 0; i < n; i += k) {
            double s = 0;
            int c = 0;
            for (int j = i; j < n && j < i + k; j++, c++)
                s += x[j];
            x[m++] = s / c;
        }
        return m;
    }
    double f = 0;
    if (sscanf(view, "scale:%lf", &f) == 1 && f > 0) {
        for (int i = 0; i < n; i++)
            x[i] *= f;
        return n;
    }
    unsigned seed = 0;
    if (sscanf(view, "noise:%lf:%u", &f, &seed) == 2 && f > 0) {
        /* multiplicative log-normal noise of sd f, a deterministic generator per curve */
        uint64_t st = 0x9E3779B97F4A7C15ull * (seed + 1) ^ salt;
        for (int i = 0; i < n; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            double u1 = ((double)(st >> 11) + 0.5) / 9007199254740992.0;
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            double u2 = ((double)(st >> 11) + 0.5) / 9007199254740992.0;
            x[i] *= exp(f * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
        }
        return n;
    }
    if (sscanf(view, "head:%d", &k) == 1 && k > 0)
        return n < k ? n : k;
    if (sscanf(view, "from:%d", &k) == 1 && k >= 0) {
        if (k >= n)
            return 0;
        memmove(x, x + k, (size_t)(n - k) * sizeof *x);
        *offset = k;
        return n - k;
    }
    return n;
}

typedef struct meval_rec {
    uint32_t seen;
    int64_t first[8];
    int64_t spike_named; /* ref_step of the first divergence that names a spike, or -1 */
} meval_rec;

static inline int32_t meval_cb(const sgd_monitor_event *ev, double *scale, void *user)
{
    (void)scale;
    meval_rec *r = user;
    r->seen |= 1u << ev->kind;
    if (ev->kind >= 0 && ev->kind < 8 && r->first[ev->kind] < 0)
        r->first[ev->kind] = ev->step;
#ifndef MEVAL_BEFORE
    if (ev->kind == SGD_MONITOR_DIVERGENCE && ev->ref_step >= 0 && r->spike_named < 0)
        r->spike_named = ev->ref_step;
#endif
    return SGD_MONITOR_CONTINUE;
}

/*
 * Every curve of DIR/labels.tsv. set: monitor options (or NULL); view: see
 * monitor_eval.c; initial: give the task's untrained level L0 (the peak of the
 * full curve over the label file's peak_over_L0) as initial_loss, as
 * --initial-loss or --classes do. log: misjudged curves, or NULL.
 */
static inline bool meval_dir(const char *dir, const char *set, const char *view, bool initial, FILE *log, meval_result *r)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/labels.tsv", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return false;
    }
    static double x[MEVAL_MAX_CURVE], full[MEVAL_MAX_CURVE];
    char line[512];
    bool header = true;
    while (fgets(line, sizeof line, f) != NULL) {
        if (header) {
            header = false;
            continue;
        }
        char name[300], label[32];
        double progress = 0, peak_over = 0;
        if (sscanf(line, "%299s %31s %lf %lf", name, label, &progress, &peak_over) < 2)
            continue;
        int n = meval_read_curve(dir, name, x, MEVAL_MAX_CURVE);
        if (n <= 0) {
            fprintf(stderr, "cannot read %s/%s\n", dir, name);
            fclose(f);
            return false;
        }
        memcpy(full, x, (size_t)n * sizeof *x);
        int nfull = n, offset = 0;
        uint64_t salt = 1469598103934665603ull; /* FNV-1a of the name: each curve its own noise */
        for (const char *c = name; *c; c++)
            salt = (salt ^ (unsigned char)*c) * 1099511628211ull;
        n = meval_view(view, x, n, &offset, salt);
        if (n <= 0)
            continue;
        sgd_monitor_options o;
        sgd_monitor_options_init(&o);
        if (set != NULL && sgd_monitor_options_parse(&o, set) != SGD_OK) {
            fprintf(stderr, "--set: %s\n", sgd_error_last());
            fclose(f);
            return false;
        }
        if (initial && peak_over > 0) {
            /* The task's untrained level L0: the label file gives peak / L0. */
            double peak = -INFINITY;
            for (int i = 0; i < nfull; i++)
                if (isfinite(full[i]) && full[i] > peak)
                    peak = full[i];
#ifndef MEVAL_BEFORE
            o.initial_loss = peak / peak_over;
#endif
        }
        sgd_monitor *m = NULL;
        if (sgd_monitor_new(&m, &o, NULL) != SGD_OK) {
            fprintf(stderr, "sgd_monitor_new: %s\n", sgd_error_last());
            fclose(f);
            return false;
        }
        meval_rec rec;
        memset(&rec, 0, sizeof rec);
        for (int k = 0; k < 8; k++)
            rec.first[k] = -1;
        rec.spike_named = -1;
        sgd_monitor_add_callback(m, NULL, SGD_MONITOR_MASK_ALL, meval_cb, &rec);
        for (int t = 0; t < n; t++)
            sgd_monitor_observe(m, x[t], -1.0, -1.0, NULL, NULL);
        int32_t v = SGD_MONITOR_HEALTHY;
#ifndef MEVAL_BEFORE
        if (meval_finish)
            sgd_monitor_finish(m, NULL);
#endif
        sgd_monitor_get_verdict(m, &v);
        sgd_monitor_free(m);
        int li = meval_label_index(label);
        r->curves++;
        r->conf[li][v]++;
        if (li < 4) {
            r->scored++;
            r->correct += li == v;
        }
        bool alarm = li == SGD_MONITOR_HEALTHY &&
                     (rec.seen & (SGD_MONITOR_MASK_DIVERGENCE | SGD_MONITOR_MASK_OSCILLATION));
        if (alarm)
            r->false_alarms++;
        int first_nf = -1;
        for (int t = 0; t < n && first_nf < 0; t++)
            if (!isfinite(x[t]))
                first_nf = t;
        if (first_nf > 0) {
            r->nf_curves++;
            int64_t d = rec.first[SGD_MONITOR_DIVERGENCE];
            if (d < 0 || d >= first_nf)
                r->nf_late++;
            else if (first_nf - d < r->nf_margin_min)
                r->nf_margin_min = (int)(first_nf - d);
        }
        /* The shape of issue 18: labelled unstable, a spike to 2-3x the first value within the first
           20 observations, and never above 3x (else a divergence says it). */
        bool early_spike = false, above3 = false;
        if (li == SGD_MONITOR_UNSTABLE && offset == 0 && view == NULL) {
            for (int t = 1; t < n && t < 20; t++)
                if (x[t] > 2.0 * x[0])
                    early_spike = true;
            for (int t = 0; t < n; t++)
                if (!(x[t] <= 3.0 * x[0]))
                    above3 = true;
        }
        early_spike = early_spike && !above3;
        if (early_spike) {
            r->spike_curves++;
            if (v == SGD_MONITOR_UNSTABLE && rec.spike_named >= 0 && rec.spike_named < 20)
                r->spike_named++;
        }
        if (log != NULL && ((li < 4 && li != v) || alarm))
            fprintf(log, "  %-45s label %-9s verdict %-9s%s\n", name, label, sgd_monitor_verdict_name(v),
                    alarm ? " (false alarm)" : "");
    }
    fclose(f);
    return true;
}

static inline void meval_print(const meval_result *r, FILE *out)
{
    fprintf(out, "  | label \\ verdict | healthy | diverged | unstable | stagnant |\n");
    fprintf(out, "  |---|---:|---:|---:|---:|\n");
    for (int i = 0; i < 5; i++)
        fprintf(out, "  | %s | %d | %d | %d | %d |\n", i < 4 ? meval_labels[i] : "*ambiguous*", r->conf[i][0],
                r->conf[i][1], r->conf[i][2], r->conf[i][3]);
    fprintf(out, "  accuracy %.1f%% (%d/%d labelled, %d curves); false alarms on healthy curves: %d\n",
            r->scored ? 100.0 * r->correct / r->scored : 0.0, r->correct, r->scored, r->curves, r->false_alarms);
    if (r->nf_curves)
        fprintf(out, "  curves reaching NaN/inf: %d; divergence not before it: %d; earliest margin %d\n", r->nf_curves,
                r->nf_late, r->nf_margin_min);
    if (r->spike_curves)
        fprintf(out, "  early spike to 2-3x, labelled unstable: %d curves, called unstable naming the spike: %d\n",
                r->spike_curves,
                r->spike_named);
}

#endif
