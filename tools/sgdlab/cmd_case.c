/*
 * sgdlab case image: the seed article's image case study. A convolutional
 * network on Fashion-MNIST at a learning rate that is too high (the monitor
 * says diverged or unstable, and where), rescued as the article says: a
 * lower rate, then a decaying schedule (linear warmup, then a cosine to 0),
 * and the guard doing it by itself (rollbacks that halve the rate). One table
 * of verdicts, test accuracies and times, and one plot of the loss curves
 * with the monitor's and the guard's events marked. Trials run side by side
 * on --threads threads, each with one BLAS thread.
 * SPDX-License-Identifier: MIT
 */
#include "cli.h"
#include "commands.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_PLOT "sgdlab-case-image.svg"
#define CASE_MODEL                                                                                                     \
    "1x28x28-conv2d(32,3,padding=1)-relu-maxpool2d(2)-conv2d(64,3,padding=1)-relu-maxpool2d(2)-flatten-128-relu-10"

void sgdlab_help_case(void)
{
    printf("usage: sgdlab case image [options]\n"
           "\n"
           "The image case study of the article this project started from: a convolutional\n"
           "network trained on Fashion-MNIST at a learning rate that is too high diverges (the\n"
           "health monitor says so, and at which step), and is rescued by lowering the rate,\n"
           "by a decaying schedule (a linear warmup, then a cosine to 0), and by the guard,\n"
           "which rolls the run back and halves the rate by itself. Prints one table (each\n"
           "trial's verdict, where the monitor raised its first alarm, test accuracy, steps,\n"
           "rescues, time) and draws the loss curves with the events marked.\n"
           "\n"
           "The network: " CASE_MODEL "\n"
           "(1x28x28 images; SGD with momentum 0.9, batches of 128).\n"
           "\n"
           "trials:\n"
           "  too high        sgd lr=HIGH, constant, no guard (stops when diverged)\n"
           "  lower rate      sgd lr=LOW, constant, no guard\n"
           "  warmup+cosine   sgd lr=PEAK: linear warmup over --warmup steps, then a cosine to 0\n"
           "  guard           sgd lr=HIGH, constant, the guard on\n"
           "\n"
           "options:\n"
           "  --data NAME|DIR|FILES  fashion-mnist (default) or IDX files, as in sgdlab train\n"
           "  --model SPEC           another network (its input must be 1x28x28 or 784)\n"
           "  --high-lr X            the rate that is too high (default 0.5)\n"
           "  --low-lr X             the lower constant rate (default 0.05)\n"
           "  --peak-lr X            the top of the warmup+cosine schedule (default 0.1)\n"
           "  --warmup N             warmup steps (default 100)\n"
           "  --epochs N             epochs of each trial (default 1)\n"
           "  --schedule-epochs N    epochs of the warmup+cosine trial (default 2)\n"
           "  --train-rows N         train on the first N rows only (default: all; for quick looks)\n"
           "  --test-rows N          evaluate on the first N test rows only (default: all)\n"
           "  --seed N               initialisation and batch order, the same for every trial (default 0)\n"
           "  --threads N            trials at once (default: the number of cores, at most 4)\n"
           "  --plot FILE            the loss curves, FILE.svg or FILE.png (default " DEFAULT_PLOT ";\n"
           "                         needs gnuplot: gnuplot-nox)\n"
           "  --no-plot              no plot\n"
           "  --json                 one JSON object instead of the table\n"
           "  --no-progress          no progress bar (drawn only when stderr is a terminal)\n"
           "  -h, --help             show this help\n"
           "\n"
           "Exit status: 0 when the story holds (the too-high trial is diverged or unstable and a\n"
           "rescued trial is healthy); 1 when it does not, or the plot asked for could not be\n"
           "drawn; 2 for bad arguments or data.\n"
           "\n"
           "sgdlab case text: the article's text case study, a character-level LSTM (sgdlab case\n"
           "text --help).\n");
}

enum { T_HIGH = 0, T_LOW = 1, T_SCHED = 2, T_GUARD = 3, N_TRIALS = 4 };

typedef struct event {
    int64_t step;
    int32_t kind; /* a monitor kind, or -1 for a rescue of the guard */
    double loss, lr;
} event;

typedef struct trial {
    const char *name;
    char optim[128], sched[512], sched_text[64];
    double lr;
    bool guard;
    int64_t epochs, steps_planned;
    /* results */
    double *loss;
    int64_t n_loss;
    event *events;
    size_t n_events, cap_events;
    int32_t verdict;
    int64_t steps, rescues;
    double test_acc, test_loss, seconds, final_lr;
    sgd_status status;
    char error[512];
    int64_t first_alarm;
    int32_t first_kind;
} trial;

typedef struct ctx {
    const char *model;
    uint64_t seed;
    const sgd_dataset *train, *test;
    trial *trials;
    const int *order;
    atomic_int next;
    atomic_llong steps_seen;
    int64_t steps_total;
    cli_bar bar;
    pthread_mutex_t bar_lock;
    double t0;
    atomic_int done;
} ctx;

typedef struct tuser {
    ctx *c;
    trial *t;
} tuser;

static void add_event(trial *t, int64_t step, int32_t kind, double loss, double lr)
{
    if (t->n_events == t->cap_events) {
        size_t cap = t->cap_events ? 2 * t->cap_events : 32;
        event *e = realloc(t->events, cap * sizeof *e);
        if (e == NULL)
            return;
        t->events = e;
        t->cap_events = cap;
    }
    t->events[t->n_events++] = (event){step, kind, loss, lr};
}

static int32_t on_progress(const sgd_trainer_progress *p, void *user)
{
    tuser *u = user;
    trial *t = u->t;
    if (p->phase == SGD_TRAINER_PHASE_STEP && p->step >= 1 && p->step <= t->steps_planned) {
        t->loss[p->step - 1] = p->loss;
        if (p->step > t->n_loss)
            t->n_loss = p->step;
        long long seen = atomic_fetch_add(&u->c->steps_seen, 1) + 1;
        if (u->c->bar.on && seen % 20 == 0) {
            pthread_mutex_lock(&u->c->bar_lock);
            char text[160];
            snprintf(text, sizeof text, "%d of %d trials done, %.0f s", atomic_load(&u->c->done), N_TRIALS,
                     cli_now() - u->c->t0);
            double f = (double)seen / (double)u->c->steps_total;
            cli_bar_draw(&u->c->bar, f < 0.99 ? f : 0.99, text, false);
            pthread_mutex_unlock(&u->c->bar_lock);
        }
    }
    return 0;
}

static int32_t on_event(const sgd_trainer_event *ev, double *lr_scale, void *user)
{
    (void)lr_scale;
    trial *t = ((tuser *)user)->t;
    if (ev->kind == SGD_TRAINER_EVENT_MONITOR && ev->monitor != NULL && ev->monitor->kind != SGD_MONITOR_PLATEAU) {
        add_event(t, ev->step, ev->monitor->kind, ev->monitor->loss, ev->lr);
        bool alarm = ev->monitor->kind != SGD_MONITOR_SPIKE;
        if (alarm && t->first_alarm < 0) {
            t->first_alarm = ev->step;
            t->first_kind = ev->monitor->kind;
        }
    } else if (ev->kind == SGD_TRAINER_EVENT_RESCUE) {
        add_event(t, ev->step, -1, NAN, ev->lr);
    }
    return ev->action;
}

static void run_trial(ctx *c, trial *t)
{
    double t0 = cli_now();
    tuser u = {c, t};
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.seed = c->seed;
    mo.max_batch = 128;
    sgd_model *m = NULL;
    sgd_optim *o = NULL;
    sgd_sched *s = NULL;
    sgd_monitor *mon = NULL;
    sgd_trainer *tr = NULL;
    sgd_status st = sgd_model_from_spec(&m, c->model, &mo, NULL);
    if (st == SGD_OK)
        st = sgd_optim_new(&o, t->optim, sgd_model_num_params(m), NULL);
    if (st == SGD_OK)
        st = sgd_sched_new(&s, t->sched, t->lr, NULL);
    if (st == SGD_OK)
        st = sgd_monitor_new(&mon, NULL, NULL);
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    to.batch_size = 128;
    to.epochs = t->epochs;
    to.seed = c->seed;
    to.guard = t->guard;
    to.progress_interval = 1;
    if (st == SGD_OK)
        st = sgd_trainer_new(&tr, m, o, s, mon, c->train, NULL, &to, NULL);
    if (st == SGD_OK)
        st = sgd_trainer_set_progress(tr, on_progress, &u);
    if (st == SGD_OK)
        st = sgd_trainer_set_event_callback(tr, on_event, &u);
    if (st == SGD_OK) {
        st = sgd_trainer_fit(tr, 0);
        if (st != SGD_OK)
            snprintf(t->error, sizeof t->error, "%s", sgd_error_last());
        if (st == SGD_OK || st == SGD_EDIVERGED) {
            sgd_trainer_stats ts;
            memset(&ts, 0, sizeof ts);
            ts.struct_size = sizeof ts;
            sgd_trainer_get_stats(tr, &ts);
            t->steps = ts.step;
            t->rescues = ts.rescues;
            t->final_lr = ts.lr;
            sgd_monitor_get_verdict(mon, &t->verdict);
            if (sgd_model_evaluate(m, c->test, 0, &t->test_loss, &t->test_acc) != SGD_OK)
                t->test_acc = t->test_loss = NAN;
            if (st == SGD_EDIVERGED)
                t->test_acc = NAN; /* a diverged run has no meaningful accuracy */
        }
    } else {
        snprintf(t->error, sizeof t->error, "%s", sgd_error_last());
    }
    t->status = st;
    sgd_trainer_free(tr);
    sgd_monitor_free(mon);
    sgd_sched_free(s);
    sgd_optim_free(o);
    sgd_model_free(m);
    t->seconds = cli_now() - t0;
    atomic_fetch_add(&c->done, 1);
    /* Steps a diverged trial did not take count as done for the progress bar. */
    atomic_fetch_add(&c->steps_seen, (long long)(t->steps_planned - t->n_loss));
}

static void *worker(void *arg)
{
    ctx *c = arg;
    for (;;) {
        int k = atomic_fetch_add(&c->next, 1);
        if (k >= N_TRIALS)
            return NULL;
        run_trial(c, &c->trials[c->order[k]]);
    }
}

static const char *kind_text(int32_t kind)
{
    return kind < 0 ? "rescue" : sgd_monitor_kind_name(kind);
}

static const char *verdict_of(const trial *t)
{
    if (t->status != SGD_OK && t->status != SGD_EDIVERGED)
        return "failed";
    return sgd_monitor_verdict_name(t->verdict);
}

/* ---------------------------------------------------------------- the plot */

static bool draw_plot(const trial *trials, const char *path, const char *format, const char *title)
{
    cli_plot p;
    if (!cli_plot_begin(&p, "case"))
        return false;
    static const char *const colors[N_TRIALS] = {"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e"};
    char paths[N_TRIALS][300], mpath[300];
    double ymin = INFINITY, y0 = 0;
    for (int i = 0; i < N_TRIALS; i++) {
        FILE *f = cli_plot_file(&p, i, paths[i], sizeof paths[i]);
        if (f == NULL) {
            cli_plot_end(&p);
            return false;
        }
        cli_write_ema_curve(f, trials[i].loss, trials[i].n_loss, &ymin, &y0);
        fclose(f);
    }
    double ymax = y0 > 0 ? 6 * y0 : 10;
    if (!(ymin < ymax))
        ymin = ymax / 100;
    FILE *mf = cli_plot_file(&p, N_TRIALS, mpath, sizeof mpath);
    if (mf == NULL) {
        cli_plot_end(&p);
        return false;
    }
    size_t nm[4] = {0, 0, 0, 0};
    for (int i = 0; i < N_TRIALS; i++) {
        const trial *t = &trials[i];
        for (size_t k = 0; k < t->n_events; k++) {
            const event *e = &t->events[k];
            int cls = e->kind < 0                                                           ? 3
                      : e->kind == SGD_MONITOR_NONFINITE || e->kind == SGD_MONITOR_DIVERGENCE ? 0
                      : e->kind == SGD_MONITOR_SPIKE                                          ? 2
                                                                                              : 1;
            double y = isfinite(e->loss) && e->loss < ymax ? e->loss : ymax * 0.9;
            if (e->kind < 0 && e->step >= 1 && e->step <= t->n_loss && isfinite(t->loss[e->step - 1]))
                y = t->loss[e->step - 1] < ymax ? t->loss[e->step - 1] : ymax * 0.9;
            if (y < ymin)
                y = ymin;
            fprintf(mf, "%lld %.9g %d %ld\n", (long long)(e->step + 1), y, cls, strtol(colors[i] + 1, NULL, 16));
            nm[cls]++;
        }
    }
    fclose(mf);
    char script[16384], outq[2100], tq[1700], tics[1024];
    int w = snprintf(script, sizeof script,
                     "%s"
                     "set output '%s'\n"
                     "set title '%s' noenhanced\n"
                     "set xlabel 'training step'\nset ylabel 'training loss (moving average, log scale)'\n"
                     "set logscale y\nset yrange [%.6g:%.6g]\nset grid\n%s"
                     "set key outside right top noenhanced\n"
                     "set datafile missing 'nan'\n"
                     "plot ",
                     cli_plot_terminal(format), cli_gp_str(outq, sizeof outq, path), cli_gp_str(tq, sizeof tq, title),
                     ymin * 0.8, ymax, cli_log_tics(tics, sizeof tics, "y", ymin * 0.8, ymax));
    for (int i = 0; i < N_TRIALS; i++) {
        const trial *t = &trials[i];
        char label[300], lq[620], a[32];
        char acc[32] = "";
        if (isfinite(t->test_acc))
            snprintf(acc, sizeof acc, ", %.1f%%", 100 * t->test_acc);
        snprintf(label, sizeof label, "%s (lr %s, %s%s): %s%s", t->name, cli_num(a, sizeof a, t->lr), t->sched_text,
                 t->guard ? ", guard" : "", verdict_of(t), acc);
        w += snprintf(script + w, sizeof script - (size_t)w, "%s'%s' using 1:2 with lines lw 2 lc rgb '%s' title '%s'",
                      i ? ", \\\n     " : "", paths[i], colors[i], cli_gp_str(lq, sizeof lq, label));
    }
    static const char *const mk[4][3] = {{"7", "#000000", "divergence / NaN"},
                                         {"9", "#555555", "oscillation / stagnation"},
                                         {"1", "#777777", "spike"},
                                         {"5", "#000000", "guard: rollback, lr halved"}};
    for (int cls = 0; cls < 4; cls++)
        if (nm[cls] > 0)
            w += snprintf(script + w, sizeof script - (size_t)w,
                          ", \\\n     '%s' using 1:($3==%d ? $2 : 1/0):4 with points pt %s ps 1.6 lc rgb variable "
                          "notitle, \\\n     NaN with points pt %s ps 1.6 lc rgb '%s' title '%s'",
                          mpath, cls, mk[cls][0], mk[cls][0], mk[cls][1], mk[cls][2]);
    snprintf(script + w, sizeof script - (size_t)w, "\n");
    bool ok = cli_plot_run(&p, "case", script);
    cli_plot_end(&p);
    return ok;
}

/* ---------------------------------------------------------------- the command */

static void where_text(const trial *t, char *buf, size_t n)
{
    if (t->first_alarm < 0) {
        snprintf(buf, n, "-");
        return;
    }
    snprintf(buf, n, "%s at step %lld", sgd_monitor_kind_name(t->first_kind), (long long)t->first_alarm);
}

int sgdlab_cmd_case(int argc, char **argv)
{
    const char *data = NULL, *model = CASE_MODEL, *plot = DEFAULT_PLOT, *which = NULL;
    double high = 0.5, low = 0.05, peak = 0.1;
    int64_t warmup = 100, epochs = 1, sched_epochs = 2, seed = 0, threads = 0, train_rows = 0, test_rows = 0;
    bool json = false, progress = true, plot_given = false, help = false;
    /* The case's name comes first: "sgdlab case image [options]". */
    if (argc >= 2 && argv[1][0] != '-') {
        which = argv[1];
        argv++;
        argc--;
    }
    if (which != NULL && strcmp(which, "text") == 0) /* cmd_case_text.c */
        return sgdlab_case_text(argc, argv);
    cli_args a;
    cli_args_init(&a, "case", argc, argv);
    const char *name;
    while ((name = cli_next(&a)) != NULL) {
        if (strcmp(name, "help") == 0) {
            help = true;
            break;
        } else if (strcmp(name, "data") == 0) {
            cli_string(&a, &data);
        } else if (strcmp(name, "model") == 0) {
            cli_string(&a, &model);
        } else if (strcmp(name, "high-lr") == 0) {
            cli_double(&a, 0, 1e6, true, &high);
        } else if (strcmp(name, "low-lr") == 0) {
            cli_double(&a, 0, 1e6, true, &low);
        } else if (strcmp(name, "peak-lr") == 0) {
            cli_double(&a, 0, 1e6, true, &peak);
        } else if (strcmp(name, "warmup") == 0) {
            cli_int(&a, 1, 1 << 30, &warmup);
        } else if (strcmp(name, "epochs") == 0) {
            cli_int(&a, 1, 1000, &epochs);
        } else if (strcmp(name, "schedule-epochs") == 0) {
            cli_int(&a, 1, 1000, &sched_epochs);
        } else if (strcmp(name, "seed") == 0) {
            cli_int(&a, 0, INT64_MAX, &seed);
        } else if (strcmp(name, "train-rows") == 0) {
            cli_int(&a, 1, INT64_MAX, &train_rows);
        } else if (strcmp(name, "test-rows") == 0) {
            cli_int(&a, 1, INT64_MAX, &test_rows);
        } else if (strcmp(name, "threads") == 0) {
            cli_int(&a, 1, 64, &threads);
        } else if (strcmp(name, "plot") == 0) {
            if (cli_string(&a, &plot)) {
                plot_given = true;
                if (cli_plot_format("case", plot) == NULL)
                    a.error = true;
            }
        } else if (strcmp(name, "no-plot") == 0) {
            if (cli_flag(&a))
                plot = NULL;
        } else if (strcmp(name, "json") == 0) {
            if (cli_flag(&a))
                json = true;
        } else if (strcmp(name, "no-progress") == 0) {
            if (cli_flag(&a))
                progress = false;
        } else {
            cli_unknown(&a, name);
        }
    }
    if (help) {
        sgdlab_help_case();
        return SGDLAB_EXIT_OK;
    }
    if (a.error)
        return SGDLAB_EXIT_USAGE;
    if (which == NULL) {
        fprintf(stderr, "sgdlab case: which case? (sgdlab case image, sgdlab case text; --help)\n");
        return SGDLAB_EXIT_USAGE;
    }
    if (strcmp(which, "image") != 0) {
        fprintf(stderr, "sgdlab case: unknown case '%s' (there are: image, text)\n", which);
        return SGDLAB_EXIT_USAGE;
    }
    if (threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? (nc > N_TRIALS ? N_TRIALS : nc) : 1;
    }
    bool have_gnuplot = plot == NULL || cli_have_gnuplot();
    if (!have_gnuplot && plot_given)
        cli_no_gnuplot("case", plot);
    double t_all = cli_now();
    cli_data d;
    if (!cli_load_data("case", data, 0, (uint64_t)seed, &d))
        return SGDLAB_EXIT_USAGE;
    int rc = SGDLAB_EXIT_USAGE;
    trial trials[N_TRIALS];
    memset(trials, 0, sizeof trials);
    sgd_dataset *train_sub = NULL, *test_sub = NULL;
    if (d.val == NULL) {
        fprintf(stderr, "sgdlab case: --data: the case needs a test set (give the four IDX files)\n");
        goto out;
    }
    if (train_rows > 0 && train_rows < sgd_dataset_size(d.train)) {
        if (sgd_dataset_subset(&train_sub, d.train, 0, train_rows) != SGD_OK) {
            fprintf(stderr, "sgdlab case: --train-rows: %s\n", sgd_error_last());
            goto out;
        }
    }
    if (test_rows > 0 && test_rows < sgd_dataset_size(d.val)) {
        if (sgd_dataset_subset(&test_sub, d.val, 0, test_rows) != SGD_OK) {
            fprintf(stderr, "sgdlab case: --test-rows: %s\n", sgd_error_last());
            goto out;
        }
    }
    sgd_dataset *train = train_sub ? train_sub : d.train, *test = test_sub ? test_sub : d.val;
    int64_t nb = (sgd_dataset_size(train) + 127) / 128;
    {
        /* Check the model once, before the threads: a bad spec is a usage error. */
        sgd_model *m;
        if (sgd_model_from_spec(&m, model, NULL, NULL) != SGD_OK) {
            fprintf(stderr, "sgdlab case: --model: %s\n", sgd_error_last());
            goto out;
        }
        int64_t in = sgd_model_num_inputs(m);
        sgd_model_free(m);
        if (in != d.dim) {
            fprintf(stderr, "sgdlab case: --model takes %lld values per sample, the data has %lld\n", (long long)in,
                    (long long)d.dim);
            goto out;
        }
    }
    static const char *const names[N_TRIALS] = {"too high", "lower rate", "warmup+cosine", "guard"};
    for (int i = 0; i < N_TRIALS; i++) {
        trial *t = &trials[i];
        t->name = names[i];
        t->lr = i == T_LOW ? low : i == T_SCHED ? peak : high;
        t->guard = i == T_GUARD;
        t->epochs = i == T_SCHED ? sched_epochs : epochs;
        t->steps_planned = nb * t->epochs;
        t->first_alarm = -1;
        t->verdict = -1;
        t->test_acc = t->test_loss = NAN;
        snprintf(t->optim, sizeof t->optim, "sgd:lr=%.17g,momentum=0.9", t->lr);
        if (i == T_SCHED) {
            int64_t total = t->steps_planned, w = warmup < total ? warmup : total - 1;
            if (w < 1)
                w = 1;
            snprintf(t->sched, sizeof t->sched,
                     "sequential:milestones=[%lld],children=[(linear:start_factor=0.01,total_iters=%lld),"
                     "(cosine:T_max=%lld)]",
                     (long long)w, (long long)w, (long long)(total - w > 1 ? total - w : 1));
            snprintf(t->sched_text, sizeof t->sched_text, "warmup %lld, cosine", (long long)w);
        } else {
            snprintf(t->sched, sizeof t->sched, "constant");
            snprintf(t->sched_text, sizeof t->sched_text, "constant");
        }
        t->loss = malloc((size_t)t->steps_planned * sizeof *t->loss);
        if (t->loss == NULL) {
            fprintf(stderr, "sgdlab case: out of memory\n");
            rc = SGDLAB_EXIT_FAIL;
            goto out;
        }
        for (int64_t k = 0; k < t->steps_planned; k++)
            t->loss[k] = NAN;
    }
    if (!json) {
        printf("sgdlab case image: %s on %s", model, d.desc);
        if (train_sub != NULL || test_sub != NULL)
            printf(" (using %lld training and %lld test rows)", (long long)sgd_dataset_size(train),
                   (long long)sgd_dataset_size(test));
        printf("\n");
        printf("SGD with momentum 0.9, batches of 128, seed %lld; %lld epoch%s per trial (warmup+cosine: %lld); "
               "%lld thread%s\n\n",
               (long long)seed, (long long)epochs, epochs == 1 ? "" : "s", (long long)sched_epochs,
               (long long)threads, threads == 1 ? "" : "s");
        fflush(stdout);
    }
    ctx c;
    memset(&c, 0, sizeof c);
    c.model = model;
    c.seed = (uint64_t)seed;
    c.train = train;
    c.test = test;
    c.trials = trials;
    static const int order[N_TRIALS] = {T_SCHED, T_LOW, T_GUARD, T_HIGH}; /* the longest first */
    c.order = order;
    for (int i = 0; i < N_TRIALS; i++)
        c.steps_total += trials[i].steps_planned;
    cli_bar_init(&c.bar, progress);
    pthread_mutex_init(&c.bar_lock, NULL);
    c.t0 = cli_now();
    pthread_t tids[64];
    int started = 0;
    for (int64_t k = 0; k < threads && k < N_TRIALS; k++) {
        if (pthread_create(&tids[started], NULL, worker, &c) == 0)
            started++;
    }
    if (started == 0)
        worker(&c);
    for (int k = 0; k < started; k++)
        pthread_join(tids[k], NULL);
    cli_bar_clear(&c.bar);
    pthread_mutex_destroy(&c.bar_lock);
    for (int i = 0; i < N_TRIALS; i++)
        if (trials[i].status != SGD_OK && trials[i].status != SGD_EDIVERGED) {
            fprintf(stderr, "sgdlab case: trial '%s': %s\n", trials[i].name, trials[i].error);
            rc = SGDLAB_EXIT_FAIL;
            goto out;
        }
    /* The story holds when the too-high trial is in trouble and a rescue is healthy. */
    const trial *th = &trials[T_HIGH];
    bool trouble = th->status == SGD_EDIVERGED || th->verdict == SGD_MONITOR_DIVERGED ||
                   th->verdict == SGD_MONITOR_UNSTABLE;
    bool rescued = false;
    for (int i = 1; i < N_TRIALS; i++)
        rescued = rescued || (trials[i].status == SGD_OK && trials[i].verdict == SGD_MONITOR_HEALTHY);
    rc = trouble && rescued ? SGDLAB_EXIT_OK : SGDLAB_EXIT_FAIL;
    bool plotted = false;
    if (plot != NULL && have_gnuplot) {
        char title[700];
        snprintf(title, sizeof title, "sgdlab case image: %s on %s, a rate too high and three rescues",
                 strcmp(model, CASE_MODEL) == 0 ? "the CNN" : "the network", d.name);
        const char *fmt = cli_plot_format("case", plot);
        plotted = fmt != NULL && draw_plot(trials, plot, fmt, title);
    }
    if (plot_given && !plotted)
        rc = SGDLAB_EXIT_FAIL;
    double total = cli_now() - t_all;
    char b1[32], where[96];
    if (!json) {
        printf("%-14s  %6s  %-20s  %-5s  %-9s  %-26s  %8s  %5s  %7s  %7s\n", "trial", "lr", "schedule", "guard",
               "verdict", "first alarm", "test acc", "steps", "rescues", "time");
        for (int i = 0; i < N_TRIALS; i++) {
            const trial *t = &trials[i];
            char acc[32];
            if (isfinite(t->test_acc))
                snprintf(acc, sizeof acc, "%.2f%%", 100 * t->test_acc);
            else
                snprintf(acc, sizeof acc, "-");
            where_text(t, where, sizeof where);
            printf("%-14s  %6s  %-20s  %-5s  %-9s  %-26s  %8s  %5lld  %7lld  %6.1fs\n", t->name,
                   cli_num(b1, sizeof b1, t->lr), t->sched_text, t->guard ? "on" : "off", verdict_of(t), where, acc,
                   (long long)t->steps, (long long)t->rescues, t->seconds);
        }
        printf("\n");
        if (th->first_alarm >= 0)
            printf("lr %s is too high: the monitor raised %s at step %lld; the run %s after %lld steps.\n",
                   cli_num(b1, sizeof b1, th->lr), sgd_monitor_kind_name(th->first_kind), (long long)th->first_alarm,
                   th->status == SGD_EDIVERGED ? "was stopped as diverged" : "ended", (long long)th->steps);
        else
            printf("lr %s: the monitor raised no alarm (try a higher --high-lr).\n", cli_num(b1, sizeof b1, th->lr));
        const trial *tg = &trials[T_GUARD];
        char b2[32];
        printf("the guard rescued the same rate %lld time%s: it ended at lr %s (%s of the start).\n",
               (long long)tg->rescues, tg->rescues == 1 ? "" : "s", cli_num(b1, sizeof b1, tg->final_lr),
               cli_num(b2, sizeof b2, tg->final_lr / tg->lr));
        if (plotted)
            printf("plot: %s\n", plot);
        else if (plot != NULL && !have_gnuplot)
            printf("plot: not drawn: gnuplot is not installed (apt-get install gnuplot-nox)\n");
        else if (plot != NULL)
            printf("plot: not drawn (see the message above)\n");
        printf("time: %.1f s (data %.1f s)\n", total, d.load_seconds);
    } else {
        printf("{\"command\":\"case\",\"case\":\"image\",\"model\":");
        cli_json_str(stdout, model);
        printf(",\"data\":");
        cli_json_str(stdout, d.name);
        printf(",\"seed\":%lld,\"threads\":%lld,\"trials\":[", (long long)seed, (long long)threads);
        for (int i = 0; i < N_TRIALS; i++) {
            const trial *t = &trials[i];
            printf("%s{\"name\":", i ? "," : "");
            cli_json_str(stdout, t->name);
            printf(",\"optimizer\":");
            cli_json_str(stdout, t->optim);
            printf(",\"schedule\":");
            cli_json_str(stdout, t->sched);
            printf(",\"lr\":%.9g,\"guard\":%s,\"epochs\":%lld,\"verdict\":", t->lr, t->guard ? "true" : "false",
                   (long long)t->epochs);
            cli_json_str(stdout, verdict_of(t));
            printf(",\"diverged\":%s,\"first_alarm\":", t->status == SGD_EDIVERGED ? "true" : "false");
            if (t->first_alarm >= 0) {
                printf("{\"step\":%lld,\"kind\":", (long long)t->first_alarm);
                cli_json_str(stdout, sgd_monitor_kind_name(t->first_kind));
                printf("}");
            } else {
                printf("null");
            }
            printf(",\"events\":[");
            for (size_t k = 0; k < t->n_events; k++) {
                printf("%s{\"step\":%lld,\"kind\":", k ? "," : "", (long long)t->events[k].step);
                cli_json_str(stdout, kind_text(t->events[k].kind));
                printf(",\"loss\":");
                cli_json_num(stdout, t->events[k].loss);
                printf(",\"lr\":");
                cli_json_num(stdout, t->events[k].lr);
                printf("}");
            }
            printf("],\"test_accuracy\":");
            cli_json_num(stdout, t->test_acc);
            printf(",\"test_loss\":");
            cli_json_num(stdout, t->test_loss);
            printf(",\"steps\":%lld,\"rescues\":%lld,\"final_lr\":", (long long)t->steps, (long long)t->rescues);
            cli_json_num(stdout, t->final_lr);
            printf(",\"seconds\":%.3f}", t->seconds);
        }
        printf("],\"story_holds\":%s,\"plot\":", trouble && rescued ? "true" : "false");
        if (plotted)
            cli_json_str(stdout, plot);
        else
            printf("null");
        printf(",\"seconds\":%.3f}\n", total);
    }
out:
    for (int i = 0; i < N_TRIALS; i++) {
        free(trials[i].loss);
        free(trials[i].events);
    }
    sgd_dataset_free(train_sub);
    sgd_dataset_free(test_sub);
    cli_data_free(&d);
    return rc;
}
