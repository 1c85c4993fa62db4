/*
 * sgdlab sweep: grid or random search over learning rates (and optimizers,
 * momenta, batch sizes); one table with each trial's verdict, final loss and
 * accuracy, the best, and a plot of the loss curves.
 * SPDX-License-Identifier: MIT
 */
#include "cli.h"
#include "cli_dist.h"
#include "commands.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_PLOT "sgdlab-sweep.svg"
#define MAX_OPTIMS 64

static const cli_command spec = {
    .name = "sweep",
    .description =
        "Trains one short run per learning rate (a grid from 1e-4 to 10 by default, or a\n"
        "random search) and prints one table: each rate's verdict from the health monitor\n"
        "(healthy, diverged, unstable, stagnant), its final training loss, its test\n"
        "accuracy, the steps it ran (diverged runs stop early) and its time; then the best\n"
        "rate, and a plot of every run's loss curve with the monitor's events marked.\n"
        "\n"
        "With the defaults: the 784-256-relu-128-relu-10 MLP on Fashion-MNIST, SGD with\n"
        "momentum 0.9, 11 learning rates from 1e-4 to 10, one epoch of batches of 128 per\n"
        "rate with the rate annealed by a cosine to 0 (so that the accuracy measures the\n"
        "rate, not the noise of the last steps; --schedule constant for a constant rate),\n"
        "seed 0, as many threads as cores, the plot in " DEFAULT_PLOT ".\n",
    .epilog = "Exit status: 0 when the sweep ran (whatever the trials' verdicts); 1 when no trial\n"
              "finished without diverging, or the plot asked for could not be drawn; 2 for bad\n"
              "arguments or data.\n",
};

/* Per-trial curves and events, for the plot. */
typedef struct curve {
    double *loss;
    int64_t n, cap;
} curve;

typedef struct mark {
    int64_t trial, step;
    int32_t kind; /* monitor kind */
    double loss;
} mark;

typedef struct sweep {
    curve *curves;
    size_t ntrials;
    mark *marks;
    size_t nmarks, capmarks;
    cli_bar bar;
    double t0;
    int64_t done, total;
    int64_t steps_seen, steps_planned; /* for the progress bar */
    bool table, keep_curves;
    const cli *c;
} sweep;

static void on_step(int64_t trial, int64_t step, double loss, double lr, void *user)
{
    (void)lr;
    sweep *s = user;
    if (trial < 0 || (size_t)trial >= s->ntrials || step < 0)
        return;
    s->steps_seen++;
    if (s->bar.on && s->steps_planned > 0) {
        char text[160];
        snprintf(text, sizeof text, "%lld of %lld trials done, %.0f s", (long long)s->done, (long long)s->ntrials,
                 cli_now() - s->t0);
        double f = (double)s->steps_seen / (double)s->steps_planned;
        cli_bar_draw(&s->bar, f < 0.99 ? f : 0.99, -1, text, false);
    }
    if (!s->keep_curves)
        return;
    curve *c = &s->curves[trial];
    if (step >= c->cap) {
        int64_t cap = c->cap ? c->cap : 1024;
        while (cap <= step)
            cap *= 2;
        double *l = realloc(c->loss, (size_t)cap * sizeof *l);
        if (l == NULL)
            return;
        for (int64_t i = c->cap; i < cap; i++)
            l[i] = NAN;
        c->loss = l;
        c->cap = cap;
    }
    c->loss[step] = loss;
    if (step + 1 > c->n)
        c->n = step + 1;
}

/* Appends a mark (dropped if memory runs out: the plot only loses it). */
static bool add_mark(sweep *s, mark m)
{
    if (s->nmarks == s->capmarks) {
        size_t cap = s->capmarks ? 2 * s->capmarks : 64;
        mark *grown = realloc(s->marks, cap * sizeof *grown);
        if (grown == NULL)
            return false;
        s->marks = grown;
        s->capmarks = cap;
    }
    s->marks[s->nmarks++] = m;
    return true;
}

static void on_event(int64_t trial, const sgd_trainer_event *ev, void *user)
{
    sweep *s = user;
    if (ev->kind != SGD_TRAINER_EVENT_MONITOR || ev->monitor->kind == SGD_MONITOR_PLATEAU)
        return;
    add_mark(s, (mark){trial, ev->step, ev->monitor->kind, ev->monitor->loss});
}

static void on_trial(const sgd_search_trial *t, int64_t done, int64_t total, void *user)
{
    sweep *s = user;
    s->done = done;
    s->total = total;
    /* Trials that stop early (diverged) leave their budget unused: count it as done. */
    if (t->max_steps > t->steps && t->max_steps - t->steps < INT64_MAX - s->steps_seen)
        s->steps_seen += t->max_steps - t->steps;
    char text[160], a[32];
    snprintf(text, sizeof text, "%lld of %lld trials done (last: lr %s %s), %.0f s", (long long)done, (long long)total,
             cli_num(a, sizeof a, t->lr), t->verdict >= 0 ? sgd_monitor_verdict_name(t->verdict) : "",
             cli_now() - s->t0);
    double f = s->steps_planned > 0 ? (double)s->steps_seen / (double)s->steps_planned : (double)done / (double)total;
    cli_bar_draw(&s->bar, done == total ? 1.0 : (f < 0.99 ? f : 0.99), -1, text, true);
}

/* Trial i of the search (a zeroed one for an index out of range). */
static sgd_search_trial trial(const sgd_search *s, size_t i)
{
    sgd_search_trial t;
    memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    sgd_search_get_trial(s, i, &t);
    return t;
}

/*
 * --dist: every process recorded the curves and events of its own trials
 * (i % size == rank); rank 0 gathers them for the plot. On the wire: u64
 * count, then per curve i64 trial, i64 n, n doubles; u64 count, then per
 * mark i64 trial, i64 step, i64 kind, double loss (the processes share one
 * byte order).
 */
static bool gather_curves(sweep *sw, cli_dist *cd)
{
    size_t bytes = 16;
    uint64_t ncurves = 0;
    for (size_t i = (size_t)cd->rank; i < sw->ntrials; i += (size_t)cd->size) {
        bytes += 16 + (size_t)sw->curves[i].n * 8;
        ncurves++;
    }
    bytes += sw->nmarks * 32;
    unsigned char *buf = malloc(bytes), *p = buf;
    uint64_t *sizes = calloc((size_t)cd->size, sizeof *sizes);
    bool ok = buf != NULL && sizes != NULL;
    if (!ok)
        fprintf(stderr, "sgdlab sweep: process %d: out of memory for the curves\n", cd->rank);
    if (!cli_dist_all_ok(cd, ok)) {
        free(buf);
        free(sizes);
        return false;
    }
#define PUT(v)                                                                                                    \
    do {                                                                                                          \
        memcpy(p, &(v), 8);                                                                                       \
        p += 8;                                                                                                   \
    } while (0)
    PUT(ncurves);
    for (size_t i = (size_t)cd->rank; i < sw->ntrials; i += (size_t)cd->size) {
        int64_t trial = (int64_t)i, n = sw->curves[i].n;
        PUT(trial);
        PUT(n);
        if (n > 0)
            memcpy(p, sw->curves[i].loss, (size_t)n * 8);
        p += (size_t)n * 8;
    }
    uint64_t nm = sw->nmarks;
    PUT(nm);
    for (size_t k = 0; k < sw->nmarks; k++) {
        int64_t kind = sw->marks[k].kind;
        PUT(sw->marks[k].trial);
        PUT(sw->marks[k].step);
        PUT(kind);
        PUT(sw->marks[k].loss);
    }
#undef PUT
    void *all = NULL;
    ok = cli_dist_gather("sweep", cd, buf, bytes, &all, sizes);
    free(buf);
    if (ok && cli_dist_root(cd)) {
        /* Rank 0 keeps its own; takes the others' (their trials only). */
        const unsigned char *q = (const unsigned char *)all;
        q += sizes[0];
        for (int r = 1; r < cd->size && ok; r++) {
            const unsigned char *end = q + sizes[r];
            uint64_t nc, nmk;
            memcpy(&nc, q, 8);
            q += 8;
            for (uint64_t c = 0; c < nc && ok; c++) {
                int64_t trial, n;
                memcpy(&trial, q, 8);
                memcpy(&n, q + 8, 8);
                q += 16;
                if (trial < 0 || (size_t)trial >= sw->ntrials || n < 0 || (size_t)(end - q) < (size_t)n * 8) {
                    ok = false;
                    break;
                }
                curve *cv = &sw->curves[trial];
                free(cv->loss);
                cv->loss = n > 0 ? malloc((size_t)n * 8) : NULL;
                cv->n = cv->cap = cv->loss != NULL ? n : 0;
                if (cv->loss != NULL)
                    memcpy(cv->loss, q, (size_t)n * 8);
                q += (size_t)n * 8;
            }
            if (!ok || (size_t)(end - q) < 8)
                break;
            memcpy(&nmk, q, 8);
            q += 8;
            for (uint64_t k = 0; k < nmk && (size_t)(end - q) >= 32; k++) {
                mark m;
                int64_t kind;
                memcpy(&m.trial, q, 8);
                memcpy(&m.step, q + 8, 8);
                memcpy(&kind, q + 16, 8);
                memcpy(&m.loss, q + 24, 8);
                q += 32;
                m.kind = (int32_t)kind;
                if (!add_mark(sw, m))
                    break;
            }
            q = end;
        }
        if (!ok)
            fprintf(stderr, "sgdlab sweep: --dist: a process sent curves that do not fit the trials\n");
    }
    cli_dist_free_all(cd, all);
    free(sizes);
    return ok;
}

static const char *verdict_text(const sgd_search_trial *t)
{
    if (t->status == SGD_EDIVERGED && t->verdict != SGD_MONITOR_DIVERGED)
        return "diverged";
    return t->verdict >= 0 ? sgd_monitor_verdict_name(t->verdict) : "-";
}

/* Trial i as a JSON object or a CSV row (the same fields). */
static void put_trial(cli_rec *w, const sgd_search *s, size_t i, bool is_best)
{
    sgd_search_trial t = trial(s, i);
    cli_rec_begin(w);
    cli_rec_int(w, "index", (int64_t)i);
    cli_rec_num(w, "lr", t.lr);
    cli_rec_str(w, "optimizer", t.optimizer);
    cli_rec_num(w, "momentum", t.momentum);
    cli_rec_int(w, "batch_size", t.batch_size);
    cli_rec_str(w, "verdict", verdict_text(&t));
    cli_rec_num(w, "final_loss", t.final_loss);
    cli_rec_num(w, "val_loss", t.val_loss);
    cli_rec_num(w, "val_accuracy", t.val_accuracy);
    cli_rec_int(w, "steps", t.steps);
    cli_rec_count(w, "first_alarm", t.first_alarm);
    cli_rec_str(w, "stop_reason", sgd_trainer_stop_name(t.stop_reason));
    cli_rec_num(w, "seconds", t.seconds);
    cli_rec_bool(w, "best", is_best);
    cli_rec_end(w);
}

/* A color from blue (low lr) to red (high lr) through green and orange. */
static void color(double f, char *buf, size_t cap)
{
    static const double stops[5][3] = {{0.16, 0.27, 0.75}, {0.12, 0.62, 0.75}, {0.20, 0.65, 0.25},
                                       {0.95, 0.60, 0.10}, {0.84, 0.15, 0.16}};
    if (!(f >= 0))
        f = 0;
    if (f > 1)
        f = 1;
    double x = f * 4;
    int i = (int)x;
    if (i >= 4)
        i = 3;
    double u = x - i;
    int rgb[3];
    for (int k = 0; k < 3; k++)
        rgb[k] = (int)(255 * ((1 - u) * stops[i][k] + u * stops[i + 1][k]) + 0.5);
    snprintf(buf, cap, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

static bool draw_plot(sweep *sw, const sgd_search *s, const char *path, const char *title, bool show_opt)
{
    cli_plot p;
    if (!cli_plot_begin(&p, sw->c))
        return false;
    size_t n = sgd_search_count(s);
    double lrmin = INFINITY, lrmax = 0, ymin = INFINITY, y0 = 0;
    for (size_t i = 0; i < n; i++) {
        sgd_search_trial t = trial(s, i);
        if (t.lr < lrmin)
            lrmin = t.lr;
        if (t.lr > lrmax)
            lrmax = t.lr;
    }
    /* Curves: the loss smoothed by an EMA of its log (time constant 10 steps). */
    size_t ncurves = n < 1024 ? n : 1024;
    for (size_t i = 0; i < ncurves; i++) {
        FILE *f = cli_plot_file(&p, (int)i);
        if (f == NULL) {
            cli_fail(sw->c, "--plot", "cannot write the plot's data in %s", p.dir);
            cli_plot_end(&p);
            return false;
        }
        cli_write_ema_curve(f, sw->curves[i].loss, sw->curves[i].n, &ymin, &y0);
        fclose(f);
    }
    FILE *mf = cli_plot_file(&p, (int)ncurves); /* the marks: "d<ncurves>.dat" */
    if (mf == NULL) {
        cli_fail(sw->c, "--plot", "cannot write the plot's data in %s", p.dir);
        cli_plot_end(&p);
        return false;
    }
    double ymax = y0 > 0 ? 4 * y0 : 10;
    if (!(ymin < ymax))
        ymin = ymax / 100;
    size_t nm[4] = {0, 0, 0, 0};
    for (size_t k = 0; k < sw->nmarks; k++) {
        const mark *m = &sw->marks[k];
        int cls = m->kind == SGD_MONITOR_NONFINITE || m->kind == SGD_MONITOR_DIVERGENCE ? 0
                  : m->kind == SGD_MONITOR_STAGNATION                                   ? 1
                  : m->kind == SGD_MONITOR_OSCILLATION                                  ? 2
                                                                                        : 3;
        double y = isfinite(m->loss) && m->loss < ymax ? m->loss : ymax * 0.97;
        if (y < ymin)
            y = ymin;
        /* The stagnation mark goes on the smoothed curve (the raw loss is noisy). */
        if (cls == 1 && (size_t)m->trial < ncurves) {
            const curve *c = &sw->curves[m->trial];
            double ema = NAN;
            for (int64_t j = 0; j <= m->step && j < c->n; j++)
                if (isfinite(c->loss[j]) && c->loss[j] > 0)
                    ema = isnan(ema) ? log(c->loss[j]) : 0.9 * ema + 0.1 * log(c->loss[j]);
            if (isfinite(ema))
                y = exp(ema);
        }
        /* The mark takes its trial's colour (gnuplot's "lc rgb variable" reads 0xRRGGBB). */
        double tf = 0.5;
        if ((size_t)m->trial < n) {
            sgd_search_trial tt = trial(s, (size_t)m->trial);
            tf = lrmax > lrmin ? (log(tt.lr) - log(lrmin)) / (log(lrmax) - log(lrmin)) : 0.5;
        }
        char col[16];
        color(tf, col, sizeof col);
        fprintf(mf, "%lld %.9g %d %ld\n", (long long)(m->step + 1), y, cls, strtol(col + 1, NULL, 16));
        nm[cls]++;
    }
    fclose(mf);
    size_t cap = 65536 + 400 * ncurves;
    char *script = malloc(cap);
    if (script == NULL) {
        cli_plot_end(&p);
        return false;
    }
    char tq[1700], tics[1024];
    int w = snprintf(script, cap,
                     "set title '%s' noenhanced\n"
                     "set xlabel 'training step'\nset ylabel 'training loss (moving average, log scale)'\n"
                     "set logscale y\nset yrange [%.6g:%.6g]\nset grid\n%s"
                     "set key outside right top noenhanced\n"
                     "set datafile missing 'nan'\n"
                     "plot ",
                     cli_gp_str(tq, sizeof tq, title),
                     ymin * 0.8, ymax, cli_log_tics(tics, sizeof tics, "y", ymin * 0.8, ymax));
    for (size_t i = 0; i < ncurves; i++) {
        sgd_search_trial t = trial(s, i);
        char col[16], a[32], label[400], lq[820];
        double f = lrmax > lrmin ? (log(t.lr) - log(lrmin)) / (log(lrmax) - log(lrmin)) : 0.5;
        color(f, col, sizeof col);
        char acc[32];
        if (isfinite(t.val_accuracy))
            snprintf(acc, sizeof acc, ", %.1f%%", 100 * t.val_accuracy);
        else
            acc[0] = '\0';
        snprintf(label, sizeof label, "lr %s%s%s: %s%s", cli_num(a, sizeof a, t.lr), show_opt ? " " : "",
                 show_opt ? t.optimizer : "", verdict_text(&t), acc);
        w += snprintf(script + w, cap - (size_t)w, "%s'd%zu.dat' using 1:2 with lines lw 2 lc rgb '%s' title '%s'",
                      i ? ", \\\n     " : "", i, col, cli_gp_str(lq, sizeof lq, label));
    }
    static const char *const mk[4][3] = {{"7", "#000000", "divergence / NaN"},
                                         {"6", "#555555", "stagnation"},
                                         {"9", "#9467bd", "oscillation"},
                                         {"1", "#777777", "spike"}};
    for (int cls = 0; cls < 4; cls++)
        if (nm[cls] > 0)
            w += snprintf(script + w, cap - (size_t)w,
                          ", \\\n     'd%zu.dat' using 1:($3==%d ? $2 : 1/0):4 with points pt %s ps 1.6 lc rgb "
                          "variable notitle, \\\n     NaN with points pt %s ps 1.6 lc rgb '%s' title '%s'",
                          ncurves, cls, mk[cls][0], mk[cls][0], mk[cls][1], mk[cls][2]);
    snprintf(script + w, cap - (size_t)w, "\n");
    bool ok = cli_plot_run(&p, sw->c, script, path);
    free(script);
    cli_plot_end(&p);
    return ok;
}

/* --optim, repeatable: each one is appended. */
typedef struct optim_list {
    const char *items[MAX_OPTIMS];
    size_t n;
} optim_list;

static bool add_optim(cli *c, const cli_opt *opt, const char *value, void *dest)
{
    (void)opt;
    optim_list *l = dest;
    if (*value == '\0') {
        cli_fail(c, "--optim", "empty value");
        return false;
    }
    if (l->n == MAX_OPTIMS) {
        cli_fail(c, "--optim", "at most %d optimizers", MAX_OPTIMS);
        return false;
    }
    l->items[l->n++] = value;
    return true;
}

int sgdlab_cmd_sweep(int argc, char **argv)
{
    const char *data = NULL, *model = NULL, *plot = NULL, *schedule = "cosine", *monitor_spec = NULL;
    optim_list ol;
    memset(&ol, 0, sizeof ol);
    bool csv = false, guard = false;
    double *lrs = NULL, *momenta = NULL;
    int64_t *batch_sizes = NULL;
    size_t n_lrs = 0, n_momenta = 0, n_bs = 0;
    int64_t points = 11, random_n = 0, epochs = 1, steps = 0, batch = 0, seed = 0, threads = 0; /* batch 0: not given (128) */
    bool batch_given = false;
    double lr_min = 1e-4, lr_max = 10;
    bool dist = false;
    const char *dist_spec = NULL;
    cli_dist cd;
    memset(&cd, 0, sizeof cd);
    cd.size = 1;
    const char *plot_default = DEFAULT_PLOT;
    bool plot_given = false;
    cli c;
    const cli_opt opts[] = {
        CLI_SECTION("what is searched"),
        {.name = "lrs", .kind = CLI_DOUBLES, .dest = &lrs, .count = &n_lrs, .lo = 0, .hi = 1e6, .lo_open = true,
         .arg = "LIST", .help = "learning rates, e.g. 0.001,0.01,0.1"},
        {.name = "lr-min", .kind = CLI_DOUBLE, .dest = &lr_min, .lo = 0, .hi = 1e6, .lo_open = true, .arg = "X",
         .help = "the range's low end (default 1e-4)"},
        {.name = "lr-max", .kind = CLI_DOUBLE, .dest = &lr_max, .lo = 0, .hi = 1e6, .lo_open = true, .arg = "X",
         .help = "the range's high end (default 10)"},
        {.name = "points", .kind = CLI_INT, .dest = &points, .ilo = 1, .ihi = 4096, .arg = "N",
         .help = "grid points in the range, equally spaced in log (default 11)"},
        {.name = "random", .kind = CLI_INT, .dest = &random_n, .ilo = 1, .ihi = (int64_t)1 << 20, .arg = "N",
         .help = "N random trials instead: lr log-uniform in the range, the other lists' entries uniformly "
                 "(seeded by --seed)"},
        {.name = "optim", .kind = CLI_CALL, .dest = &ol, .arg = "SPEC", .takes_value = true, .call = add_optim,
         .help = "an optimizer without lr, e.g. sgd, sgd:momentum=0.9 (default), adam; repeat the option to "
                 "compare optimizers. One that names its lr runs once at that lr, next to the grid: a "
                 "learning-rate-free method, e.g. --optim prodigy:lr=1 or --optim dadapt_adam:lr=1"},
        {.name = "momenta", .kind = CLI_DOUBLES, .dest = &momenta, .count = &n_momenta, .lo = 0, .hi = 0.999999,
         .arg = "LIST",
         .help = "values of the optimizer's momentum coefficient (SGD's momentum, Adam's beta1...), e.g. 0,0.9"},
        {.name = "batch-sizes", .kind = CLI_INTS, .dest = &batch_sizes, .count = &n_bs, .ilo = 1,
         .ihi = SGD_MODEL_MAX_BATCH, .arg = "LIST", .help = "batch sizes, e.g. 32,128"},
        CLI_SECTION("each trial"),
        {.name = "data", .kind = CLI_STRING, .dest = &data, .arg = "DATA",
         .help = "fashion-mnist (default), spirals, a directory of IDX files, or "
                 "TRAIN_IMAGES,TRAIN_LABELS[,TEST_IMAGES,TEST_LABELS]"},
        {.name = "model", .kind = CLI_STRING, .dest = &model, .arg = "SPEC",
         .help = "default: 784-256-relu-128-relu-10 for 28x28 images"},
        {.name = "epochs", .kind = CLI_INT, .dest = &epochs, .ilo = 1, .ihi = 1 << 20, .arg = "N",
         .help = "default 1"},
        {.name = "steps", .kind = CLI_INT, .dest = &steps, .ilo = 1, .ihi = (int64_t)1 << 40, .arg = "N",
         .help = "budget in batches (default: the epochs)"},
        {.name = "batch-size", .kind = CLI_INT, .dest = &batch, .ilo = 1, .ihi = SGD_MODEL_MAX_BATCH, .arg = "N",
         .help = "default 128 (text: the number of parallel streams, default 32)"},
        {.name = "schedule", .kind = CLI_STRING, .dest = &schedule, .arg = "S",
         .help = "cosine (default), constant, or a schedule spec"},
        {.name = "seed", .kind = CLI_INT, .dest = &seed, .ilo = 0, .ihi = INT64_MAX, .arg = "N",
         .help = "initialisation, batch order and draws (default 0); every trial starts from the same weights"},
        {.name = "guard", .kind = CLI_TRUE, .dest = &guard, .help = "rescue diverging trials instead of stopping them"},
        {.name = "monitor", .kind = CLI_STRING, .dest = &monitor_spec, .arg = "SPEC",
         .help = "monitor options, e.g. stagnation_steps=300"},
        {.name = "threads", .kind = CLI_INT, .dest = &threads, .ilo = 1, .ihi = 256, .arg = "N",
         .help = "trials at once (default: the number of cores; with --dist, per process: the cores shared "
                 "among the machine's processes)"},
        {.name = "dist", .kind = CLI_TRUE, .dest = &dist,
         .help = "spread the trials over the MPI job's processes (mpirun -np N sgdlab sweep --dist ...): trial i "
                 "on rank i % N, each trained alone, results and curves gathered on rank 0, which reports: the "
                 "same table as one process (docs/dist.md)"},
        {.name = "dist-options", .kind = CLI_STRING, .dest = &dist_spec, .arg = "SPEC",
         .help = "e.g. timeout=600 (seconds a process may wait for the others)"},
        CLI_SECTION("output"),
        {.name = "plot", .kind = CLI_CALL, .dest = &plot, .arg = "FILE", .takes_value = true, .call = cli_plot_option,
         .help = "the loss curves, to FILE.svg or FILE.png (default " DEFAULT_PLOT "; needs gnuplot: gnuplot-nox)"},
        {.name = "no-plot", .kind = CLI_CALL, .dest = &plot_default, .call = cli_plot_option, .help = "no plot"},
        CLI_OPT_JSON(&c, "one JSON object instead of the table (docs/cli.md)"),
        {.name = "csv", .kind = CLI_TRUE, .dest = &csv, .help = "one CSV row per trial instead of the table"},
        CLI_OPT_OUTPUT(&c),
        CLI_OPT_QUIET(&c, "no progress bar, no heading: the table and the best only"),
        CLI_OPT_PROGRESS(&c),
        CLI_END,
    };
    int rc = cli_parse(&c, &spec, opts, argc, argv);
    const bool json = c.json;
    const size_t n_optims = ol.n;
    const char *const *optims = ol.items;
    if (rc >= 0)
        goto done_args;
    rc = SGDLAB_EXIT_USAGE;
    batch_given = batch > 0;
    if (!batch_given)
        batch = 128;
    if (dist_spec != NULL && !dist) {
        cli_fail(&c, "--dist-options", "needs --dist");
        goto done_args;
    }
    if (!cli_plot_resolve(&c, &plot, plot_default, &plot_given))
        goto done_args;
    if (json && csv) {
        cli_fail(&c, NULL, "--json and --csv: choose one");
        goto done_args;
    }
    if (lr_max < lr_min) {
        cli_fail(&c, "--lr-max", "%g is below --lr-min %g", lr_max, lr_min);
        goto done_args;
    }
    if (random_n > 0 && lrs != NULL) {
        cli_fail(&c, "--random", "a random search draws its learning rates; drop --lrs");
        goto done_args;
    }
    rc = -1;
done_args:
    if (rc >= 0) {
        free(lrs);
        free(momenta);
        free(batch_sizes);
        return rc;
    }
    if (!cli_dist_check_launch("sweep", dist, true) || (dist && !cli_dist_start("sweep", dist_spec, &cd))) {
        free(lrs);
        free(momenta);
        free(batch_sizes);
        return SGDLAB_EXIT_USAGE;
    }
    if (threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN) / (cd.local_size > 1 ? cd.local_size : 1);
        threads = nc > 0 ? (nc > 8 ? 8 : nc) : 1;
    }
    bool have_gnuplot = plot == NULL || cli_have_gnuplot();
    if (!have_gnuplot && plot_given)
        cli_no_gnuplot(&c, plot);

    sweep sw;
    memset(&sw, 0, sizeof sw);
    sw.c = &c;
    sw.table = !json && !csv;
    cli_data d;
    sgd_search *s = NULL;
    char model_spec[512], canonical[1024];
    rc = SGDLAB_EXIT_USAGE;
    double t0 = cli_now();
    char text_spec[1024];
    if (cli_is_text(data)) {
        /* Parallel streams of text, read in order, --batch-size of them (32 by default). */
        if (n_bs > 0) {
            cli_fail(&c, "--batch-sizes", "text data is cut into --batch-size streams once");
            goto out_nodata;
        }
        if (!cli_load_text("sweep", data, 100, batch_given ? batch : 32, 0.05, SGD_TEXT_UTF8, &d))
            goto out_nodata;
        batch = d.streams;
    } else if (!cli_load_data("sweep", data, 0, (uint64_t)seed, &d)) {
        goto out_nodata;
    }
    if (model == NULL) {
        cli_default_model(&d, model_spec, sizeof model_spec);
        model = model_spec;
    }
    {
        /* The spec as train and lr-find report it (canonical: "2-64-relu-3:loss=cross_entropy"), for text with
           the vocabulary and the length written in (the trials build the model from it); and a bad one is
           refused here, before any trial. */
        char full[1024];
        const char *mspec = cli_text_spec("sweep", &d, model, full, sizeof full);
        sgd_model *probe = NULL;
        if (mspec == NULL)
            goto out;
        if (sgd_model_from_spec(&probe, mspec, NULL, NULL) != SGD_OK) {
            cli_fail(&c, "--model", "%s", sgd_error_last());
            goto out;
        }
        snprintf(canonical, sizeof canonical, "%s", sgd_model_spec(probe));
        sgd_model_free(probe);
        if (d.text != NULL) {
            snprintf(text_spec, sizeof text_spec, "%s", canonical);
            model = text_spec;
        }
    }
    static const char *const default_optim[1] = {"sgd:momentum=0.9"};
    sgd_search_options so;
    sgd_search_options_init(&so);
    so.method = random_n > 0 ? SGD_SEARCH_RANDOM : SGD_SEARCH_GRID;
    so.trials = random_n > 0 ? random_n : so.trials;
    so.lr_min = lr_min;
    so.lr_max = lr_max;
    so.lr_count = points;
    so.lrs = lrs;
    so.n_lrs = n_lrs;
    so.optimizers = n_optims > 0 ? optims : default_optim;
    so.n_optimizers = n_optims > 0 ? n_optims : 1;
    so.momenta = momenta;
    so.n_momenta = n_momenta;
    so.batch_sizes = batch_sizes;
    so.n_batch_sizes = n_bs;
    so.seed = (uint64_t)seed;
    so.max_steps = steps;
    so.schedule = schedule;
    so.threads = (int32_t)threads;
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    to.guard = guard;
    to.epochs = epochs;
    to.batch_size = batch;
    if (d.text != NULL)
        to.shuffle = 0;
    so.trainer = &to;
    sgd_monitor_options mo;
    sgd_monitor_options_init(&mo);
    if (monitor_spec != NULL) {
        if (sgd_monitor_options_parse(&mo, monitor_spec) != SGD_OK) {
            cli_fail(&c, "--monitor", "%s", sgd_error_last());
            goto out;
        }
        so.monitor = &mo;
    }
    size_t ntrials = (size_t)(random_n > 0 ? random_n
                                          : (int64_t)(n_lrs ? n_lrs : (size_t)points) * (int64_t)so.n_optimizers *
                                                (int64_t)(n_momenta ? n_momenta : 1) * (int64_t)(n_bs ? n_bs : 1));
    sw.curves = calloc(ntrials, sizeof *sw.curves);
    if (sw.curves == NULL) {
        cli_fail(&c, NULL, "out of memory for %zu trials", ntrials);
        goto out;
    }
    sw.ntrials = ntrials;
    cli_bar_init(&sw.bar, cli_progress_on(&c));
    sw.keep_curves = plot != NULL;
    {
        int64_t nb = (sgd_dataset_size(d.train) + batch - 1) / batch;
        int64_t per = steps > 0 && steps < nb * epochs ? steps : nb * epochs;
        /* with --batch-sizes, an estimate; with --dist, this process's share */
        sw.steps_planned = per * (int64_t)((ntrials - (size_t)cd.rank + (size_t)cd.size - 1) / (size_t)cd.size);
    }
    so.on_step = sw.keep_curves || sw.bar.on ? on_step : NULL;
    so.on_event = on_event;
    so.on_trial = on_trial;
    so.user = &sw;
    sw.t0 = cli_now();
    if (sw.table && !c.quiet) {
        printf("sgdlab sweep: %s on %s\n", model, d.desc);
        char b1[32], b2[32];
        if (random_n > 0)
            printf("random search: %lld trials, lr log-uniform in [%s, %s]", (long long)random_n,
                   cli_num(b1, sizeof b1, lr_min), cli_num(b2, sizeof b2, lr_max));
        else if (lrs != NULL)
            printf("grid of %zu learning rates", n_lrs);
        else
            printf("grid of %lld learning rates from %s to %s", (long long)points, cli_num(b1, sizeof b1, lr_min),
                   cli_num(b2, sizeof b2, lr_max));
        printf(", %s", so.optimizers[0]);
        for (size_t k = 1; k < so.n_optimizers; k++)
            printf(" | %s", so.optimizers[k]);
        int64_t nb = (sgd_dataset_size(d.train) + batch - 1) / batch;
        char budget[128];
        if (steps > 0 && steps < nb * epochs)
            snprintf(budget, sizeof budget, "%lld steps of %lld", (long long)steps, (long long)batch);
        else
            snprintf(budget, sizeof budget, "%lld epoch%s (%lld steps of %lld)", (long long)epochs,
                     epochs == 1 ? "" : "s", (long long)(nb * epochs), (long long)batch);
        printf("\neach trial: %s, %s, seed %lld, guard %s; %lld thread%s%s%s\n\n", budget,
               strcmp(schedule, "cosine") == 0 ? "learning rate annealed by a cosine to 0" : schedule,
               (long long)seed, guard ? "on" : "off", (long long)threads, threads == 1 ? "" : "s",
               cli_dist_on(&cd) ? " per process; trials spread over " : "", cli_dist_on(&cd) ? cd.desc : "");
        cli_flush();
    }
    if (!cli_dist_setup_done("sweep", &cd, true))
        goto out;
    double t_search = cli_now();
    sgd_status st = cli_dist_on(&cd) ? cli_dist_search(&cd, &s, model, d.train, d.val, &so)
                                     : sgd_search_run(&s, model, d.train, d.val, &so, NULL);
    double search_seconds = cli_now() - t_search;
    cli_bar_clear(&sw.bar);
    if (st == SGD_OK && cli_dist_on(&cd) && sw.keep_curves && !gather_curves(&sw, &cd)) {
        rc = SGDLAB_EXIT_FAIL;
        goto out;
    }
    if (st != SGD_OK) {
        cli_fail(&c, NULL, "%s", sgd_error_last());
        rc = st == SGD_EINVAL || st == SGD_ENOTFOUND || st == SGD_ERANGE || st == SGD_ESHAPE ? SGDLAB_EXIT_USAGE
                                                                                          : SGDLAB_EXIT_FAIL;
        goto out;
    }
    size_t n = sgd_search_count(s), best = 0;
    bool have_best = sgd_search_best(s, &best) == SGD_OK;
    rc = have_best ? SGDLAB_EXIT_OK : SGDLAB_EXIT_FAIL;
    bool show_opt = so.n_optimizers > 1 || random_n > 0, show_mom = n_momenta > 0, show_bs = n_bs > 0;
    bool plotted = false;
    if (!cli_dist_root(&cd))
        plot = NULL, plot_given = false; /* rank 0 draws */
    if (plot != NULL && have_gnuplot) {
        char title[800];
        sgd_search_trial bt = trial(s, have_best ? best : 0);
        char b1[32];
        snprintf(title, sizeof title, "%s on %s: %s%s%s, %s%s", model, d.name,
                 show_opt ? "" : so.optimizers[0], show_opt ? "" : ", ",
                 strcmp(schedule, "cosine") == 0 ? "cosine-annealed lr" : schedule,
                 have_best ? "best lr " : "no trial converged",
                 have_best ? cli_num(b1, sizeof b1, bt.lr) : "");
        plotted = draw_plot(&sw, s, plot, title, show_opt);
    }
    if (plot_given && !plotted)
        rc = SGDLAB_EXIT_FAIL;
    double total_seconds = cli_now() - t0;
    char b1[32], b2[32];
    if (sw.table) {
        printf("%10s", "lr");
        if (show_opt)
            printf("  %-22s", "optimizer");
        if (show_mom)
            printf("  %8s", "momentum");
        if (show_bs)
            printf("  %5s", "batch");
        printf("  %-9s  %10s  %8s  %6s  %11s  %6s\n", "verdict", "final loss",
               d.val != NULL ? (strcmp(d.val_name, "test") == 0 ? "test acc" : "val acc") : "accuracy", "steps",
               "first alarm", "time");
        for (size_t i = 0; i < n; i++) {
            sgd_search_trial t = trial(s, i);
            printf("%10s", cli_num(b1, sizeof b1, t.lr));
            if (show_opt)
                printf("  %-22s", t.optimizer);
            if (show_mom)
                printf("  %8s", cli_num(b2, sizeof b2, t.momentum));
            if (show_bs)
                printf("  %5lld", (long long)t.batch_size);
            char acc[32], alarm[32];
            if (isfinite(t.val_accuracy))
                snprintf(acc, sizeof acc, "%.2f%%", 100 * t.val_accuracy);
            else
                snprintf(acc, sizeof acc, "-");
            if (t.first_alarm >= 0)
                snprintf(alarm, sizeof alarm, "%lld", (long long)t.first_alarm);
            else
                snprintf(alarm, sizeof alarm, "-");
            printf("  %-9s  %10s  %8s  %6lld  %11s  %5.1fs%s\n", verdict_text(&t),
                   cli_num(b2, sizeof b2, t.final_loss), acc, (long long)t.steps, alarm, t.seconds,
                   have_best && i == best ? "  <- best" : "");
        }
        printf("\n");
        if (have_best) {
            sgd_search_trial t = trial(s, best);
            printf("best: lr %s with %s", cli_num(b1, sizeof b1, t.lr), t.optimizer);
            if (show_mom)
                printf(", momentum %s", cli_num(b2, sizeof b2, t.momentum));
            if (show_bs)
                printf(", batch %lld", (long long)t.batch_size);
            if (isfinite(t.val_accuracy))
                printf(": %s accuracy %.2f%%, final loss %s\n", d.val_name, 100 * t.val_accuracy,
                       cli_num(b2, sizeof b2, t.final_loss));
            else
                printf(": final loss %s\n", cli_num(b2, sizeof b2, t.final_loss));
        } else {
            printf("best: none: every trial diverged; lower the learning rates\n");
        }
        static const int order[4] = {SGD_MONITOR_DIVERGED, SGD_MONITOR_UNSTABLE, SGD_MONITOR_STAGNANT,
                                     SGD_MONITOR_HEALTHY};
        for (int k = 0; k < 4; k++) {
            int cnt = 0;
            for (size_t i = 0; i < n; i++) {
                sgd_search_trial t = trial(s, i);
                if (strcmp(verdict_text(&t), sgd_monitor_verdict_name(order[k])) != 0)
                    continue;
                printf("%s%s", cnt == 0 ? sgd_monitor_verdict_name(order[k]) : ",", cnt == 0 ? ": lr " : " ");
                printf("%s", cli_num(b1, sizeof b1, t.lr));
                cnt++;
            }
            if (cnt)
                printf("\n");
        }
        cli_print_plot_line(plot, plotted, have_gnuplot);
        printf("time: %.1f s (data %.1f s, %zu trials %.1f s on %s%lld thread%s)\n", total_seconds, d.load_seconds,
               n, search_seconds, cli_dist_on(&cd) ? (snprintf(b2, sizeof b2, "%d processes x ", cd.size), b2) : "",
               (long long)threads, threads == 1 ? "" : "s");
    } else if (json) {
        printf("{\"schema\":\"" CLI_SCHEMA("sweep") "\",\"command\":\"sweep\",\"model\":");
        cli_json_str(stdout, canonical);
        printf(",\"data\":");
        cli_json_str(stdout, d.name);
        printf(",\"val_data\":");
        if (d.val != NULL)
            cli_json_str(stdout, d.val_name);
        else
            printf("null");
        printf(",\"schedule\":");
        cli_json_str(stdout, schedule);
        printf(",\"epochs\":%lld,\"batch_size\":%lld,\"seed\":%lld,\"threads\":%lld,", (long long)epochs,
               (long long)batch, (long long)seed, (long long)threads);
        printf("\"processes\":%d,\"trials\":[", cd.size);
        cli_rec w = {stdout, CLI_REC_JSON, 0, 0};
        for (size_t i = 0; i < n; i++)
            put_trial(&w, s, i, have_best && i == best);
        printf("],\"best\":");
        if (have_best)
            printf("%zu", best);
        else
            printf("null");
        printf(",\"plot\":");
        if (plotted)
            cli_json_str(stdout, plot);
        else
            printf("null");
        printf(",\"seconds\":%.3f}\n", total_seconds);
    } else {
        cli_rec w = {stdout, CLI_REC_CSV_HEADER, 0, 0};
        put_trial(&w, s, 0, false);
        w.mode = CLI_REC_CSV;
        for (size_t i = 0; i < n; i++)
            put_trial(&w, s, i, have_best && i == best);
    }
out:
    sgd_search_free(s);
    cli_data_free(&d);
out_nodata:
    for (size_t i = 0; i < sw.ntrials; i++)
        free(sw.curves[i].loss);
    free(sw.curves);
    free(sw.marks);
    free(lrs);
    free(momenta);
    free(batch_sizes);
    cli_dist_stop(&cd);
    return rc;
}
