/*
 * `sgdlab lr-find --from FILE`: an (lr, loss) curve written by another
 * framework's range test, read by the monitor's reading rules (logread.c):
 * every line with a training loss and a learning rate is a point (a CSV with
 * lr and loss columns, "lr=... loss=..." lines, JSON Lines), or the dict of
 * arrays Lightning's LRFinder keeps ({"lr": [...], "loss": [...]}).
 * SPDX-License-Identifier: MIT
 */
#include "lrfind_from.h"

#include "core/internal.h" /* sgd__parse_double */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_POINTS ((size_t)1 << 24)
#define MAX_FILE ((size_t)256 << 20)

typedef struct curve {
    double *lr, *loss;
    size_t n, cap;
    bool oom;
    logread *rd;
    int64_t lines, skipped;
} curve;

static bool push(curve *c, double lr, double loss)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        if (cap > MAX_POINTS) {
            c->oom = true;
            return false;
        }
        double *a = realloc(c->lr, cap * sizeof *a);
        if (a == NULL) {
            c->oom = true;
            return false;
        }
        c->lr = a;
        double *b = realloc(c->loss, cap * sizeof *b);
        if (b == NULL) {
            c->oom = true;
            return false;
        }
        c->loss = b;
        c->cap = cap;
    }
    c->lr[c->n] = lr;
    c->loss[c->n] = loss;
    c->n++;
    return true;
}

static void take(curve *c, const logread_obs *ob)
{
    if (ob->kind == LOGREAD_TRAIN && ob->lr > 0)
        push(c, ob->lr, ob->loss);
    else if (ob->kind == LOGREAD_TRAIN || ob->kind == LOGREAD_SKIP)
        c->skipped++;
}

static void on_line(const char *line, size_t len, void *user)
{
    curve *c = user;
    c->lines++;
    logread_obs ob[2];
    int k = logread_line(c->rd, line, len, ob);
    for (int i = 0; i < k; i++)
        take(c, &ob[i]);
}

/* The numbers of the array after "key": [ ... ] in text, or false. */
static bool json_array(const char *text, size_t n, const char *key, curve *c, bool lr_side, size_t *count)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *end = text + n;
    const char *p = text;
    size_t pl = strlen(pat);
    for (; p + pl <= end; p++)
        if (memcmp(p, pat, pl) == 0)
            break;
    if (p + pl > end)
        return false;
    p += pl;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    if (p >= end || *p != ':')
        return false;
    p++;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    if (p >= end || *p != '[')
        return false;
    p++;
    size_t k = 0;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ','))
            p++;
        if (p >= end)
            return false;
        if (*p == ']')
            break;
        const char *b = p;
        while (p < end && *p != ',' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
            p++;
        double v;
        sgd__str s = {b, (size_t)(p - b)};
        if (sgd__parse_double(s, true, &v) != SGD_OK)
            return false;
        if (lr_side) {
            if (!push(c, v, NAN))
                return false;
        } else {
            if (k >= c->n)
                return false;
            c->loss[k] = v;
        }
        k++;
    }
    *count = k;
    return true;
}

int lrfind_read_curve(const char *path, const logread_opts *ro, double **lr, double **loss, size_t *n, char *err,
                      size_t errcap)
{
    *lr = *loss = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* The whole file (a range test is small); bounded. */
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    while (text != NULL) {
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (len < cap)
            break;
        if (cap >= MAX_FILE) {
            free(text);
            fclose(f);
            snprintf(err, errcap, "%s: larger than %zu MiB: not a range test", path, MAX_FILE >> 20);
            return -1;
        }
        char *t = realloc(text, cap * 2);
        if (t == NULL)
            free(text);
        text = t;
        cap *= 2;
    }
    bool rerr = ferror(f) != 0;
    fclose(f);
    if (text == NULL) {
        snprintf(err, errcap, "%s: out of memory", path);
        return -1;
    }
    if (rerr) {
        free(text);
        snprintf(err, errcap, "%s: read error", path);
        return -1;
    }
    curve c;
    memset(&c, 0, sizeof c);
    /* Lightning's LRFinder.results, dumped as JSON: {"lr": [...], "loss": [...]} */
    size_t i0 = 0;
    while (i0 < len && (text[i0] == ' ' || text[i0] == '\n' || text[i0] == '\r' || text[i0] == '\t'))
        i0++;
    size_t nlr = 0, nloss = 0;
    if (i0 < len && text[i0] == '{' && json_array(text, len, "lr", &c, true, &nlr) &&
        json_array(text, len, "loss", &c, false, &nloss)) {
        free(text);
        if (nlr != nloss) {
            free(c.lr);
            free(c.loss);
            snprintf(err, errcap, "%s: %zu learning rates but %zu losses", path, nlr, nloss);
            return -1;
        }
    } else {
        c.n = 0;
        if (logread_new(&c.rd, ro, err, errcap) != 0) {
            free(text);
            free(c.lr);
            free(c.loss);
            return -1;
        }
        logsplit sp;
        if (!logsplit_init(&sp)) {
            free(text);
            logread_free(c.rd);
            snprintf(err, errcap, "out of memory");
            return -1;
        }
        logsplit_feed(&sp, text, len, on_line, &c);
        logsplit_end(&sp, on_line, &c);
        logread_obs ob;
        if (logread_end(c.rd, &ob) == 1)
            take(&c, &ob);
        logsplit_free(&sp);
        logread_free(c.rd);
        free(text);
    }
    if (c.oom) {
        free(c.lr);
        free(c.loss);
        snprintf(err, errcap, "%s: more than %zu points, or out of memory", path, MAX_POINTS);
        return -1;
    }
    if (c.n == 0) {
        free(c.lr);
        free(c.loss);
        snprintf(err, errcap,
                 "%s: no point with both a learning rate and a loss in %lld line(s); name the fields with --key "
                 "and --lr-key",
                 path, (long long)c.lines);
        return -1;
    }
    *lr = c.lr;
    *loss = c.loss;
    *n = c.n;
    return 0;
}
