/*
 * Helpers shared by the training subcommands of the sgdlab tool.
 * SPDX-License-Identifier: MIT
 */
#include "cli.h"

#include "core/internal.h" /* sgd__parse_double/int64: strict, locale-independent; sgd__rng for spirals */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ arguments */

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->argc = argc;
    a->argv = argv;
    a->i = 1;
}

void cli_fail(cli_args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sgdlab %s: %s: ", a->cmd, a->opt != NULL ? a->opt : "arguments");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    a->error = true;
}

void cli_unknown(cli_args *a, const char *name)
{
    (void)name;
    fprintf(stderr, "sgdlab %s: %s: unknown option (see 'sgdlab %s --help')\n", a->cmd, a->opt, a->cmd);
    a->error = true;
}

const char *cli_next(cli_args *a)
{
    static char name[64];
    a->inline_value = NULL;
    a->opt = NULL;
    if (a->error || a->i >= a->argc)
        return NULL;
    const char *s = a->argv[a->i++];
    a->opt = s;
    if (strncmp(s, "--", 2) != 0 || s[2] == '\0') {
        if (strcmp(s, "-h") == 0)
            return "help";
        fprintf(stderr, "sgdlab %s: '%s': unexpected argument (options start with --; see 'sgdlab %s --help')\n",
                a->cmd, s, a->cmd);
        a->error = true;
        return NULL;
    }
    const char *eq = strchr(s, '=');
    size_t n = eq != NULL ? (size_t)(eq - s - 2) : strlen(s + 2);
    if (n >= sizeof name)
        n = sizeof name - 1;
    memcpy(name, s + 2, n);
    name[n] = '\0';
    static char optbuf[80];
    snprintf(optbuf, sizeof optbuf, "--%s", name);
    a->opt = optbuf;
    if (eq != NULL)
        a->inline_value = eq + 1;
    return name;
}

const char *cli_value(cli_args *a)
{
    if (a->inline_value != NULL)
        return a->inline_value;
    if (a->i >= a->argc) {
        cli_fail(a, "needs a value");
        return NULL;
    }
    return a->argv[a->i++];
}

bool cli_flag(cli_args *a)
{
    if (a->inline_value != NULL) {
        cli_fail(a, "takes no value (got '%s')", a->inline_value);
        return false;
    }
    return true;
}

bool cli_string(cli_args *a, const char **out)
{
    const char *v = cli_value(a);
    if (v == NULL)
        return false;
    if (*v == '\0') {
        cli_fail(a, "empty value");
        return false;
    }
    *out = v;
    return true;
}

static bool parse_i64(const char *s, int64_t *out)
{
    sgd__str t = {s, strlen(s)};
    return sgd__parse_int64(t, out) == SGD_OK;
}

static bool parse_f64(const char *s, double *out)
{
    sgd__str t = {s, strlen(s)};
    sgd_status st = sgd__parse_double(t, false, out);
    sgd_error_clear();
    return st == SGD_OK;
}

bool cli_int(cli_args *a, int64_t lo, int64_t hi, int64_t *out)
{
    const char *v = cli_value(a);
    if (v == NULL)
        return false;
    int64_t x;
    if (!parse_i64(v, &x)) {
        sgd_error_clear();
        cli_fail(a, "'%s' is not an integer", v);
        return false;
    }
    if (x < lo || x > hi) {
        cli_fail(a, "%lld is out of range: must be in [%lld, %lld]", (long long)x, (long long)lo, (long long)hi);
        return false;
    }
    *out = x;
    return true;
}

static bool check_range(cli_args *a, const char *text, double x, double lo, double hi, bool lo_open)
{
    if (!isfinite(x)) {
        cli_fail(a, "'%s': must be a finite number", text);
        return false;
    }
    if ((lo_open ? !(x > lo) : !(x >= lo)) || !(x <= hi)) {
        cli_fail(a, "'%s' is out of range: must be in %s%g, %g]", text, lo_open ? "(" : "[", lo, hi);
        return false;
    }
    return true;
}

bool cli_double(cli_args *a, double lo, double hi, bool lo_open, double *out)
{
    const char *v = cli_value(a);
    if (v == NULL)
        return false;
    double x;
    if (!parse_f64(v, &x)) {
        cli_fail(a, "'%s' is not a number", v);
        return false;
    }
    if (!check_range(a, v, x, lo, hi, lo_open))
        return false;
    *out = x;
    return true;
}

/*
 * The option's value as a comma-separated list: allocates one element of
 * `size` bytes per item and calls `item` to parse and check each token into
 * its slot (item reports its own error). Replaces *out on success.
 */
typedef bool (*list_item_fn)(cli_args *a, const char *tok, const char *list, void *slot, const void *ctx);

static bool cli_list(cli_args *a, const char *what, size_t size, list_item_fn item, const void *ctx, void **out,
                     size_t *n)
{
    const char *v = cli_value(a);
    if (v == NULL)
        return false;
    size_t cap = 1;
    for (const char *p = v; *p; p++)
        cap += *p == ',';
    unsigned char *xs = calloc(cap, size);
    if (xs == NULL) {
        cli_fail(a, "out of memory");
        return false;
    }
    size_t k = 0;
    char tok[128];
    for (const char *p = v;;) {
        const char *c = strchr(p, ',');
        size_t len = c != NULL ? (size_t)(c - p) : strlen(p);
        if (len == 0 || len >= sizeof tok) {
            cli_fail(a, "'%s': expected a comma-separated list of %s", v, what);
            free(xs);
            return false;
        }
        memcpy(tok, p, len);
        tok[len] = '\0';
        if (!item(a, tok, v, xs + k * size, ctx)) {
            free(xs);
            return false;
        }
        k++;
        if (c == NULL)
            break;
        p = c + 1;
    }
    free(*out);
    *out = xs;
    *n = k;
    return true;
}

typedef struct double_range {
    double lo, hi;
    bool lo_open;
} double_range;

static bool double_item(cli_args *a, const char *tok, const char *list, void *slot, const void *ctx)
{
    const double_range *r = ctx;
    double *x = slot;
    if (!parse_f64(tok, x)) {
        cli_fail(a, "'%s' in '%s' is not a number", tok, list);
        return false;
    }
    return check_range(a, tok, *x, r->lo, r->hi, r->lo_open);
}

bool cli_double_list(cli_args *a, double lo, double hi, bool lo_open, double **out, size_t *n)
{
    double_range r = {lo, hi, lo_open};
    void *xs = *out;
    bool ok = cli_list(a, "numbers", sizeof(double), double_item, &r, &xs, n);
    *out = xs;
    return ok;
}

static bool int_item(cli_args *a, const char *tok, const char *list, void *slot, const void *ctx)
{
    const int64_t *range = ctx;
    int64_t *x = slot;
    if (!parse_i64(tok, x)) {
        sgd_error_clear();
        cli_fail(a, "'%s' in '%s' is not an integer", tok, list);
        return false;
    }
    if (*x < range[0] || *x > range[1]) {
        cli_fail(a, "%lld is out of range: must be in [%lld, %lld]", (long long)*x, (long long)range[0],
                 (long long)range[1]);
        return false;
    }
    return true;
}

bool cli_int_list(cli_args *a, int64_t lo, int64_t hi, int64_t **out, size_t *n)
{
    const int64_t range[2] = {lo, hi};
    void *xs = *out;
    bool ok = cli_list(a, "integers", sizeof(int64_t), int_item, range, &xs, n);
    *out = xs;
    return ok;
}

/* The optimizer spec with --lr applied: "kind:lr=X,..." replacing any lr= in SPEC. */
bool cli_optim_with_lr(const char *spec, double lr, char *out, size_t cap)
{
    const char *colon = strchr(spec, ':');
    size_t klen = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
    int w = snprintf(out, cap, "%.*s:lr=%.12g", (int)klen, spec, lr);
    if (colon != NULL) {
        const char *p = colon + 1;
        while (*p) {
            const char *c = strchr(p, ',');
            size_t len = c != NULL ? (size_t)(c - p) : strlen(p);
            while (len > 0 && *p == ' ')
                p++, len--;
            if (!(len >= 3 && strncmp(p, "lr", 2) == 0 && (p[2] == '=' || p[2] == ' ')))
                w += snprintf(out + w, w < (int)cap ? cap - (size_t)w : 0, ",%.*s", (int)len, p);
            if (c == NULL)
                break;
            p = c + 1;
        }
    }
    return w > 0 && (size_t)w < cap;
}

/* ------------------------------------------------------------ data */

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Generated arrays of the spirals dataset (owned by the process until exit). */
typedef struct spirals {
    float *x;
    int32_t *y;
} spirals;
static spirals sp_train, sp_test;

/*
 * Three interleaved spirals in the plane (CS231n's): class k's points at
 * radius r in [0, 1] and angle 4k + 4r plus noise. A small problem that a
 * linear model cannot solve and a 2-64-64-3 MLP learns in seconds.
 */
static bool make_spirals(spirals *s, int64_t per_class, uint64_t seed)
{
    int64_t n = 3 * per_class;
    s->x = calloc((size_t)n * 2, sizeof *s->x);
    s->y = calloc((size_t)n, sizeof *s->y);
    if (s->x == NULL || s->y == NULL)
        return false;
    sgd__rng r;
    sgd__rng_seed(&r, seed);
    for (int64_t k = 0; k < 3; k++)
        for (int64_t i = 0; i < per_class; i++) {
            int64_t row = k * per_class + i;
            double rad = (double)i / (double)(per_class - 1);
            double t = 4.0 * (double)k + 4.0 * rad + 0.2 * sgd__rng_normal(&r);
            s->x[2 * row] = (float)(rad * sin(t));
            s->x[2 * row + 1] = (float)(rad * cos(t));
            s->y[row] = (int32_t)k;
        }
    return true;
}

static bool file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static bool find_idx(const char *dir, const char *base, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.gz", dir, base);
    if (file_exists(out))
        return true;
    snprintf(out, cap, "%s/%s", dir, base);
    return file_exists(out);
}

static bool load_pair(const char *cmd, const char *images, const char *labels, sgd_dataset **out)
{
    sgd_status st = sgd_dataset_load_idx(out, images, labels, NULL);
    if (st != SGD_OK) {
        fprintf(stderr, "sgdlab %s: --data: %s\n", cmd, sgd_error_last());
        return false;
    }
    return true;
}

bool cli_load_data(const char *cmd, const char *spec, int64_t val_split, uint64_t seed, cli_data *d)
{
    if (cli_is_text(spec))
        return cli_load_text(cmd, spec, 100, 32, 0.05, SGD_TEXT_UTF8, d);
    memset(d, 0, sizeof *d);
    double t0 = cli_now();
    if (spec == NULL)
        spec = "fashion-mnist";
    sgd_dataset *full = NULL, *test = NULL;
    if (strcmp(spec, "spirals") == 0) {
        if (!make_spirals(&sp_train, 1000, 7) || !make_spirals(&sp_test, 500, 8)) {
            fprintf(stderr, "sgdlab %s: --data spirals: out of memory\n", cmd);
            return false;
        }
        if (sgd_dataset_from_labels(&full, sp_train.x, sp_train.y, 3000, 2, NULL) != SGD_OK ||
            sgd_dataset_from_labels(&test, sp_test.x, sp_test.y, 1500, 2, NULL) != SGD_OK) {
            fprintf(stderr, "sgdlab %s: --data spirals: %s\n", cmd, sgd_error_last());
            sgd_dataset_free(full);
            return false;
        }
        snprintf(d->name, sizeof d->name, "spirals");
        snprintf(d->desc, sizeof d->desc, "spirals (3 classes in the plane: 3000 train, 1500 test)");
    } else {
        char ti[1024], tl[1024], vi[1024], vl[1024];
        bool have_test = false;
        struct stat stt;
        const char *dir = NULL;
        if (strcmp(spec, "fashion-mnist") == 0) {
            const char *env = getenv("SGDLAB_FASHION_MNIST_DIR");
            dir = env != NULL && *env ? env : FMNIST_DIR;
            if (!find_idx(dir, "train-images-idx3-ubyte", ti, sizeof ti)) {
                fprintf(stderr,
                        "sgdlab %s: --data fashion-mnist: %s/train-images-idx3-ubyte.gz is missing: install the "
                        "Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist), or give IDX "
                        "files with --data DIR or --data TRAIN_IMAGES,TRAIN_LABELS[,TEST_IMAGES,TEST_LABELS]\n",
                        cmd, dir);
                return false;
            }
        } else if (stat(spec, &stt) == 0 && S_ISDIR(stt.st_mode)) {
            dir = spec;
        }
        if (dir != NULL) {
            if (!find_idx(dir, "train-images-idx3-ubyte", ti, sizeof ti) ||
                !find_idx(dir, "train-labels-idx1-ubyte", tl, sizeof tl)) {
                fprintf(stderr,
                        "sgdlab %s: --data %s: no train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] "
                        "in %s\n",
                        cmd, spec, dir);
                return false;
            }
            have_test = find_idx(dir, "t10k-images-idx3-ubyte", vi, sizeof vi) &&
                        find_idx(dir, "t10k-labels-idx1-ubyte", vl, sizeof vl);
        } else {
            /* A comma-separated list of 2 or 4 files. */
            char buf[4096];
            if (strlen(spec) >= sizeof buf) {
                fprintf(stderr, "sgdlab %s: --data: value too long\n", cmd);
                return false;
            }
            strcpy(buf, spec);
            char *parts[5] = {0};
            int np = 0;
            for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL && np < 5;
                 tok = strtok_r(NULL, ",", &save))
                parts[np++] = tok;
            if (np != 2 && np != 4) {
                fprintf(stderr,
                        "sgdlab %s: --data: '%s': expected fashion-mnist, spirals, a directory of IDX files, or "
                        "TRAIN_IMAGES,TRAIN_LABELS[,TEST_IMAGES,TEST_LABELS]\n",
                        cmd, spec);
                return false;
            }
            snprintf(ti, sizeof ti, "%s", parts[0]);
            snprintf(tl, sizeof tl, "%s", parts[1]);
            if (np == 4) {
                snprintf(vi, sizeof vi, "%s", parts[2]);
                snprintf(vl, sizeof vl, "%s", parts[3]);
                have_test = true;
            }
        }
        if (!load_pair(cmd, ti, tl, &full))
            return false;
        if (have_test && !load_pair(cmd, vi, vl, &test)) {
            sgd_dataset_free(full);
            return false;
        }
        if (strcmp(spec, "fashion-mnist") == 0)
            snprintf(d->name, sizeof d->name, "fashion-mnist");
        else
            snprintf(d->name, sizeof d->name, "idx");
        snprintf(d->desc, sizeof d->desc, "%s (%lld train%s%lld test)", d->name,
                 (long long)sgd_dataset_size(full), test != NULL ? ", " : "",
                 test != NULL ? (long long)sgd_dataset_size(test) : 0LL);
        if (test == NULL)
            snprintf(d->desc, sizeof d->desc, "%s (%lld train, no test set)", d->name,
                     (long long)sgd_dataset_size(full));
    }
    d->dim = sgd_dataset_dim(full);
    d->classes = sgd_dataset_num_classes(full);
    if (d->classes == 0) {
        fprintf(stderr, "sgdlab %s: --data: the labels file holds float targets; these commands train classifiers\n",
                cmd);
        sgd_dataset_free(full);
        sgd_dataset_free(test);
        return false;
    }
    if (test != NULL && sgd_dataset_num_classes(test) > d->classes)
        d->classes = sgd_dataset_num_classes(test);
    if (val_split > 0) {
        if (val_split >= sgd_dataset_size(full)) {
            fprintf(stderr, "sgdlab %s: --val-split: %lld rows: the training set has only %lld\n", cmd,
                    (long long)val_split, (long long)sgd_dataset_size(full));
            sgd_dataset_free(full);
            sgd_dataset_free(test);
            return false;
        }
        if (sgd_dataset_split(&d->train, &d->val, full, val_split, 1, seed) != SGD_OK) {
            fprintf(stderr, "sgdlab %s: --val-split: %s\n", cmd, sgd_error_last());
            sgd_dataset_free(full);
            sgd_dataset_free(test);
            return false;
        }
        sgd_dataset_free(full);
        d->test = test;
        d->val_name = "val";
    } else {
        d->train = full;
        d->val = test;
        d->test = test;
        d->val_name = "test";
    }
    d->load_seconds = cli_now() - t0;
    return true;
}

void cli_data_free(cli_data *d)
{
    if (d->val != d->test)
        sgd_dataset_free(d->val);
    sgd_dataset_free(d->test);
    sgd_dataset_free(d->train);
    sgd_text_free(d->text);
    memset(d, 0, sizeof *d);
}

void cli_default_model(const cli_data *d, char *buf, size_t cap)
{
    if (d->text != NULL)
        snprintf(buf, cap, "tokens-embedding(64)-lstm(256)-dense(vocab)");
    else if (strcmp(d->name, "spirals") == 0)
        snprintf(buf, cap, "2-64-relu-64-relu-3");
    else
        snprintf(buf, cap, "%lld-256-relu-128-relu-%lld", (long long)d->dim, (long long)d->classes);
}

/* ------------------------------------------------------------ output */

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_bar_init(cli_bar *b, bool enabled)
{
    b->on = enabled && isatty(STDERR_FILENO);
    b->last = 0;
    b->width = 24;
}

void cli_bar_draw(cli_bar *b, double fraction, const char *text, bool force)
{
    if (!b->on)
        return;
    double now = cli_now();
    if (!force && now - b->last < 0.1)
        return;
    b->last = now;
    if (!(fraction >= 0))
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    int fill = (int)(fraction * b->width + 0.5);
    char bar[64];
    for (int i = 0; i < b->width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[b->width] = '\0';
    fprintf(stderr, "\r[%s] %3.0f%% %s\033[K", bar, 100 * fraction, text);
    fflush(stderr);
}

void cli_bar_clear(cli_bar *b)
{
    if (!b->on)
        return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
}

void cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

void cli_json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fprintf(f, "null");
}

const char *cli_num(char *buf, size_t cap, double v)
{
    if (isnan(v))
        snprintf(buf, cap, "nan");
    else if (isinf(v))
        snprintf(buf, cap, v > 0 ? "inf" : "-inf");
    else if (v != 0 && (fabs(v) < 1e-3 || fabs(v) >= 1e5))
        snprintf(buf, cap, "%.3g", v);
    else
        snprintf(buf, cap, "%.4g", v);
    return buf;
}

/* ------------------------------------------------------------ plots */

bool cli_have_gnuplot(void)
{
    const char *path = getenv("PATH");
    if (path == NULL)
        return false;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *dir = strtok_r(buf, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
        char p[4200];
        snprintf(p, sizeof p, "%s/gnuplot", *dir ? dir : ".");
        if (access(p, X_OK) == 0)
            return true;
    }
    return false;
}

const char *cli_plot_format(const char *cmd, const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot != NULL && (strcmp(dot, ".svg") == 0 || strcmp(dot, ".SVG") == 0))
        return "svg";
    if (dot != NULL && (strcmp(dot, ".png") == 0 || strcmp(dot, ".PNG") == 0))
        return "png";
    fprintf(stderr, "sgdlab %s: --plot: '%s': the file name must end in .svg or .png\n", cmd, path);
    return NULL;
}

void cli_no_gnuplot(const char *cmd, const char *path)
{
    fprintf(stderr,
            "sgdlab %s: --plot %s: gnuplot is not installed, so no plot was drawn; install it with "
            "'apt-get install gnuplot-nox' (Debian) and run again\n",
            cmd, path);
}

const char *cli_plot_terminal(const char *format)
{
    if (strcmp(format, "png") == 0)
        return "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
               "  set terminal pngcairo size 1200,700 enhanced font 'sans,10' background rgb 'white'\n"
               "} else {\n"
               "  set terminal png size 1200,700 background rgb 'white'\n"
               "}\n";
    return "set terminal svg size 1200,700 dynamic enhanced font 'sans,11' background rgb 'white'\n";
}

const char *cli_gp_str(char *buf, size_t cap, const char *s)
{
    size_t k = 0;
    for (const char *p = s; *p && k + 3 < cap; p++) {
        if (*p == '\'')
            buf[k++] = '\'';
        buf[k++] = *p;
    }
    buf[k] = '\0';
    return buf;
}

/* "set <axis>tics (...)" at 1, 2 and 5 times the powers of 10 between lo and hi. */
const char *cli_log_tics(char *buf, size_t cap, const char *axis, double lo, double hi)
{
    int w = snprintf(buf, cap, "set %stics (", axis);
    int k = 0;
    for (int e = (int)floor(log10(lo)) - 1; e <= (int)ceil(log10(hi)) && w > 0 && (size_t)w < cap; e++)
        for (int m = 0; m < 3; m++) {
            double v = (m == 0 ? 1 : m == 1 ? 2 : 5) * pow(10, e);
            if (v >= lo && v <= hi && (size_t)w < cap)
                w += snprintf(buf + w, cap - (size_t)w, "%s'%g' %g", k++ ? ", " : "", v, v);
        }
    if (w > 0 && (size_t)w < cap)
        snprintf(buf + w, cap - (size_t)w, ")\n");
    return k > 1 && (size_t)w < cap ? buf : "";
}

bool cli_plot_begin(cli_plot *p, const char *cmd)
{
    memset(p, 0, sizeof *p);
    const char *tmp = getenv("TMPDIR");
    snprintf(p->dir, sizeof p->dir, "%s/sgdlab-plot-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    if (mkdtemp(p->dir) == NULL) {
        fprintf(stderr, "sgdlab %s: --plot: cannot create a temporary directory %s: %s\n", cmd, p->dir,
                strerror(errno));
        p->dir[0] = '\0';
        return false;
    }
    return true;
}

FILE *cli_plot_file(cli_plot *p, int k, char *path, size_t cap)
{
    snprintf(path, cap, "%s/d%d.dat", p->dir, k);
    if (k + 1 > p->files)
        p->files = k + 1;
    return fopen(path, "w");
}

bool cli_plot_run(cli_plot *p, const char *cmd, const char *script)
{
    char sp[300];
    snprintf(sp, sizeof sp, "%s/plot.gp", p->dir);
    FILE *f = fopen(sp, "w");
    if (f == NULL || fputs(script, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "sgdlab %s: --plot: cannot write %s\n", cmd, sp);
        return false;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "sgdlab %s: --plot: cannot start gnuplot: %s\n", cmd, strerror(errno));
        return false;
    }
    if (pid == 0) {
        execlp("gnuplot", "gnuplot", sp, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "sgdlab %s: --plot: gnuplot failed (exit status %d)\n", cmd,
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return false;
    }
    return true;
}

void cli_plot_end(cli_plot *p)
{
    if (p->dir[0] == '\0')
        return;
    char path[300];
    for (int k = 0; k < p->files; k++) {
        snprintf(path, sizeof path, "%s/d%d.dat", p->dir, k);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/plot.gp", p->dir);
    unlink(path);
    rmdir(p->dir);
    p->dir[0] = '\0';
}

void cli_write_ema_curve(FILE *f, const double *loss, int64_t n, double *ymin, double *y0)
{
    double ema = NAN;
    for (int64_t k = 0; k < n; k++) {
        double l = loss[k];
        if (isfinite(l) && l > 0) {
            ema = isnan(ema) ? log(l) : 0.9 * ema + 0.1 * log(l);
            if (k == 0 && l > *y0)
                *y0 = l;
            if (exp(ema) < *ymin)
                *ymin = exp(ema);
        } else if (!isnan(l)) {
            ema = INFINITY; /* non-finite: the curve leaves the plot */
        }
        fprintf(f, "%lld %.9g\n", (long long)(k + 1), isfinite(ema) ? exp(ema) : NAN);
    }
}
