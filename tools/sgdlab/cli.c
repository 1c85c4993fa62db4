/*
 * Helpers shared by the training subcommands of the sgdlab tool.
 * SPDX-License-Identifier: MIT
 */
#include "cli.h"

#include "core/internal.h" /* sgd__rng for spirals */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

int cli_columns(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    const char *env = getenv("COLUMNS");
    long v = env != NULL ? strtol(env, NULL, 10) : 0;
    return v > 0 && v < 10000 ? (int)v : 80;
}

void cli_bar_init(cli_bar *b, bool on)
{
    b->on = on;
    b->last = 0;
    b->t0 = cli_now();
}

/* "1m05s", "2h03m", "42s". */
static void eta_text(char *buf, size_t cap, double eta)
{
    if (!(eta >= 0) || eta > 99 * 3600.0)
        snprintf(buf, cap, "?");
    else if (eta >= 3600)
        snprintf(buf, cap, "%dh%02dm", (int)(eta / 3600), (int)fmod(eta / 60, 60));
    else if (eta >= 60)
        snprintf(buf, cap, "%dm%02ds", (int)(eta / 60), (int)fmod(eta, 60));
    else
        snprintf(buf, cap, "%.0fs", eta);
}

void cli_bar_draw(cli_bar *b, double fraction, double eta, const char *text, bool force)
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
    if (eta < 0 && fraction > 0.005)
        eta = (now - b->t0) * (1 - fraction) / fraction;
    char et[32], tail[48];
    eta_text(et, sizeof et, fraction >= 1 ? 0 : eta);
    snprintf(tail, sizeof tail, "  ETA %s", et);
    /* Never the last column: a terminal that wraps there would stack the lines. */
    int room = cli_columns() - 1, tl = (int)strlen(tail);
    char line[512];
    int n = 0;
    if (room >= 40) {
        int width = room / 4 < 10 ? 10 : room / 4 > 30 ? 30 : room / 4;
        int fill = (int)(fraction * width + 0.5);
        line[n++] = '[';
        for (int i = 0; i < width; i++)
            line[n++] = i < fill ? '#' : '.';
        line[n++] = ']';
        n += snprintf(line + n, sizeof line - (size_t)n, " %3.0f%%", 100 * fraction);
    } else {
        n += snprintf(line + n, sizeof line - (size_t)n, "%3.0f%%", 100 * fraction);
    }
    if (n + tl > room) /* not even the ETA fits: the percentage alone */
        tl = 0;
    int avail = room - n - tl - 2;
    if (avail > 0 && text != NULL && *text) {
        int len = (int)strlen(text);
        if (len > avail)
            len = avail;
        if ((size_t)(n + 2 + len) < sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, "  %.*s", len, text);
    }
    if (tl > 0 && (size_t)(n + tl) < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, "%s", tail);
    if (n > room)
        n = room > 0 ? room : 0;
    fprintf(stderr, "\r%.*s\033[K", n, line);
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

void cli_json_count(FILE *f, int64_t v)
{
    if (v >= 0)
        fprintf(f, "%lld", (long long)v);
    else
        fprintf(f, "null");
}

void cli_json_status(FILE *f, sgd_status st)
{
    const char *s = sgd_status_str(st);
    fprintf(f, "\"%.*s\"", (int)strcspn(s, ":"), s);
}

void cli_csv_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
}

/* The separator and, for JSON, the field's name; true when the value is to be written. */
static bool rec_field(cli_rec *w, const char *name)
{
    if (w->fields++ > 0)
        fputc(',', w->f);
    if (w->mode == CLI_REC_CSV_HEADER) {
        fputs(name, w->f);
        return false;
    }
    if (w->mode == CLI_REC_JSON) {
        cli_json_str(w->f, name);
        fputc(':', w->f);
    }
    return true;
}

void cli_rec_begin(cli_rec *w)
{
    w->fields = 0;
    if (w->mode == CLI_REC_JSON)
        fputs(w->records > 0 ? ",{" : "{", w->f);
}

void cli_rec_end(cli_rec *w)
{
    fputs(w->mode == CLI_REC_JSON ? "}" : "\n", w->f);
    w->records++;
}

void cli_rec_num(cli_rec *w, const char *name, double v)
{
    if (rec_field(w, name)) {
        if (w->mode == CLI_REC_JSON)
            cli_json_num(w->f, v);
        else
            cli_csv_num(w->f, v);
    }
}

void cli_rec_int(cli_rec *w, const char *name, int64_t v)
{
    if (rec_field(w, name))
        fprintf(w->f, "%lld", (long long)v);
}

void cli_rec_count(cli_rec *w, const char *name, int64_t v)
{
    if (rec_field(w, name) && (v >= 0 || w->mode == CLI_REC_JSON))
        cli_json_count(w->f, v);
}

void cli_rec_bool(cli_rec *w, const char *name, bool v)
{
    if (rec_field(w, name))
        fputs(w->mode == CLI_REC_JSON ? (v ? "true" : "false") : (v ? "1" : "0"), w->f);
}

void cli_rec_str(cli_rec *w, const char *name, const char *s)
{
    if (!rec_field(w, name))
        return;
    if (w->mode == CLI_REC_JSON) {
        if (s != NULL)
            cli_json_str(w->f, s);
        else
            fputs("null", w->f);
        return;
    }
    if (s == NULL)
        return;
    /* A CSV field: quoted when it holds a comma, a quote or a line break, quotes doubled. */
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, w->f);
        return;
    }
    fputc('"', w->f);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            fputc('"', w->f);
        fputc(*p, w->f);
    }
    fputc('"', w->f);
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

const char *cli_plot_format(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot != NULL && (strcmp(dot, ".svg") == 0 || strcmp(dot, ".SVG") == 0))
        return "svg";
    if (dot != NULL && (strcmp(dot, ".png") == 0 || strcmp(dot, ".PNG") == 0))
        return "png";
    return NULL;
}

bool cli_plot_option(cli *c, const cli_opt *opt, const char *value, void *dest)
{
    if (value == NULL) { /* --no-plot */
        *(const char **)dest = NULL;
        return true;
    }
    char name[80];
    snprintf(name, sizeof name, "--%s", opt->name);
    if (*value == '\0') {
        cli_fail(c, name, "empty value");
        return false;
    }
    if (cli_plot_format(value) == NULL) {
        cli_fail(c, name, "'%s': the file name must end in .svg or .png", value);
        return false;
    }
    if (!cli_check_output(c, name, value))
        return false;
    *(const char **)dest = value;
    return true;
}

bool cli_plot_resolve(const cli *c, const char **plot, const char *plot_default, bool *given)
{
    if (plot_default == NULL) /* --no-plot */
        *plot = NULL;
    *given = *plot != NULL;
    if (!*given && plot_default != NULL) {
        /* The default plot file, checked as a given one would be (a --no-plot skips it). */
        *plot = plot_default;
        return cli_check_output(c, "--plot", *plot);
    }
    return true;
}

void cli_json_key_str(FILE *f, const char *key, const char *s)
{
    fprintf(f, ",\"%s\":", key);
    if (s != NULL)
        cli_json_str(f, s);
    else
        fputs("null", f);
}

void cli_no_gnuplot(const cli *c, const char *path)
{
    fprintf(stderr,
            "sgdlab %s: --plot %s: gnuplot is not installed, so no plot will be drawn; install it with "
            "'apt-get install gnuplot-nox' (Debian) and run again\n",
            c->cmd, path);
}

void cli_print_plot_line(const char *plot, bool plotted, bool have_gnuplot)
{
    if (plotted)
        printf("plot: %s\n", plot);
    else if (plot != NULL && !have_gnuplot)
        printf("plot: not drawn: gnuplot is not installed (apt-get install gnuplot-nox)\n");
    else if (plot != NULL)
        printf("plot: not drawn (see the message above)\n");
}

static const char *plot_terminal(const char *format)
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
    for (const unsigned char *p = (const unsigned char *)s; *p && k + 3 < cap; p++) {
        if (*p == '\'')
            buf[k++] = '\'';
        buf[k++] = *p < 0x20 || *p == 0x7f ? '?' : (char)*p;
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

bool cli_plot_begin(cli_plot *p, const cli *c)
{
    memset(p, 0, sizeof *p);
    const char *tmp = getenv("TMPDIR");
    int w = snprintf(p->dir, sizeof p->dir, "%s/sgdlab-plot-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    if (w < 0 || (size_t)w >= sizeof p->dir || mkdtemp(p->dir) == NULL) {
        cli_fail(c, "--plot", "cannot create a temporary directory %s: %s", p->dir,
                 w < 0 || (size_t)w >= sizeof p->dir ? "name too long" : strerror(errno));
        p->dir[0] = '\0';
        return false;
    }
    return true;
}

FILE *cli_plot_file(cli_plot *p, int k)
{
    char path[300];
    snprintf(path, sizeof path, "%s/d%d.dat", p->dir, k);
    if (k + 1 > p->files)
        p->files = k + 1;
    return fopen(path, "w");
}

bool cli_plot_run(cli_plot *p, const cli *c, const char *script, const char *dest)
{
    const char *format = cli_plot_format(dest);
    char sp[300], out[300];
    snprintf(sp, sizeof sp, "%s/plot.gp", p->dir);
    snprintf(out, sizeof out, "%s/plot.out", p->dir);
    FILE *f = fopen(sp, "w");
    bool ok = f != NULL && format != NULL;
    if (ok) {
        ok = fputs(plot_terminal(format), f) >= 0 && fputs("set output 'plot.out'\n", f) >= 0 && fputs(script, f) >= 0;
        ok = fclose(f) == 0 && ok;
    } else if (f != NULL) {
        fclose(f);
    }
    if (!ok) {
        cli_fail(c, "--plot", "cannot write the gnuplot script in %s", p->dir);
        return false;
    }
    cli_flush();
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        cli_fail(c, "--plot", "cannot start gnuplot: %s", strerror(errno));
        return false;
    }
    if (pid == 0) {
        /* In the plot's directory: the script names its files by relative, fixed names. */
        int devnull = open("/dev/null", O_WRONLY);
        if (chdir(p->dir) != 0)
            _exit(126);
        if (devnull >= 0)
            dup2(devnull, STDOUT_FILENO); /* gnuplot prints nothing useful there; keep the command's output clean */
        execlp("gnuplot", "gnuplot", "plot.gp", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        cli_fail(c, "--plot", "gnuplot failed (exit status %d)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return false;
    }
    return cli_install_file(c, "--plot", out, dest);
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
    static const char *const names[] = {"plot.gp", "plot.out"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", p->dir, names[k]);
        unlink(path);
    }
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
