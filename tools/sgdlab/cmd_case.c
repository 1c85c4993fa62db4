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

static const cli_command spec = {
    .name = "case",
    .args = "image|text",
    .min_args = 0,
    .max_args = 1,
    .description =
        "The case's name comes first. sgdlab case text: the article's text case study, a\n"
        "character-level LSTM (sgdlab case text --help, man sgdlab-case-text).\n"
        "\n"
        "sgdlab case image: the image case study of the article this project started from.\n"
        "A convolutional network trained on Fashion-MNIST at a learning rate that is too\n"
        "high diverges (the health monitor says so, and at which step), and is rescued by\n"
        "lowering the rate, by a decaying schedule (a linear warmup, then a cosine to 0),\n"
        "and by the guard, which rolls the run back and halves the rate by itself. Prints\n"
        "one table (each trial's verdict, where the monitor raised its first alarm, test\n"
        "accuracy, steps, rescues, time) and draws the loss curves with the events marked.\n"
        "\n"
        "The network: " CASE_MODEL "\n"
        "(1x28x28 images; SGD with momentum 0.9, batches of 128).\n"
        "\n"
        "Trials:\n"
        "  too high        sgd lr=HIGH, constant, no guard (stops when diverged)\n"
        "  lower rate      sgd lr=LOW, constant, no guard\n"
        "  warmup+cosine   sgd lr=PEAK: linear warmup over --warmup steps, then a cosine to 0\n"
        "  guard           sgd lr=HIGH, constant, the guard on\n",
    .epilog = "Exit status: 0 when the story holds (the too-high trial is diverged or unstable and a\n"
              "rescued trial is healthy); 1 when it does not, or the plot asked for could not be\n"
              "drawn; 2 for bad arguments or data.\n",
};

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
            cli_bar_draw(&u->c->bar, f < 0.99 ? f : 0.99, -1, text, false);
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
        bool alarm = ((1u << ev->monitor->kind) & SGD_MONITOR_MASK_ALARMS) != 0; /* not spikes, not grad_spike */
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

static bool draw_plot(const cli *c, const trial *trials, const char *path, const char *title)
{
    cli_plot p;
    if (!cli_plot_begin(&p, c))
        return false;
    static const char *const colors[N_TRIALS] = {"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e"};
    double ymin = INFINITY, y0 = 0;
    for (int i = 0; i < N_TRIALS; i++) {
        FILE *f = cli_plot_file(&p, i); /* "d<i>.dat" */
        if (f == NULL) {
            cli_fail(c, "--plot", "cannot write the plot's data in %s", p.dir);
            cli_plot_end(&p);
            return false;
        }
        cli_write_ema_curve(f, trials[i].loss, trials[i].n_loss, &ymin, &y0);
        fclose(f);
    }
    double ymax = y0 > 0 ? 6 * y0 : 10;
    if (!(ymin < ymax))
        ymin = ymax / 100;
    FILE *mf = cli_plot_file(&p, N_TRIALS); /* the marks: "d4.dat" */
    if (mf == NULL) {
        cli_fail(c, "--plot", "cannot write the plot's data in %s", p.dir);
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
                      : e->kind == SGD_MONITOR_SPIKE || e->kind == SGD_MONITOR_GRAD_SPIKE     ? 2
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
    char script[16384], tq[1700], tics[1024];
    int w = snprintf(script, sizeof script,
                     "set title '%s' noenhanced\n"
                     "set xlabel 'training step'\nset ylabel 'training loss (moving average, log scale)'\n"
                     "set logscale y\nset yrange [%.6g:%.6g]\nset grid\n%s"
                     "set key outside right top noenhanced\n"
                     "set datafile missing 'nan'\n"
                     "plot ",
                     cli_gp_str(tq, sizeof tq, title),
                     ymin * 0.8, ymax, cli_log_tics(tics, sizeof tics, "y", ymin * 0.8, ymax));
    for (int i = 0; i < N_TRIALS; i++) {
        const trial *t = &trials[i];
        char label[300], lq[620], a[32];
        char acc[32] = "";
        if (isfinite(t->test_acc))
            snprintf(acc, sizeof acc, ", %.1f%%", 100 * t->test_acc);
        snprintf(label, sizeof label, "%s (lr %s, %s%s): %s%s", t->name, cli_num(a, sizeof a, t->lr), t->sched_text,
                 t->guard ? ", guard" : "", verdict_of(t), acc);
        w += snprintf(script + w, sizeof script - (size_t)w, "%s'd%d.dat' using 1:2 with lines lw 2 lc rgb '%s' title '%s'",
                      i ? ", \\\n     " : "", i, colors[i], cli_gp_str(lq, sizeof lq, label));
    }
    static const char *const mk[4][3] = {{"7", "#000000", "divergence / NaN"},
                                         {"9", "#555555", "oscillation / stagnation"},
                                         {"1", "#777777", "spike, gradient spike"},
                                         {"5", "#000000", "guard: rollback, lr halved"}};
    for (int cls = 0; cls < 4; cls++)
        if (nm[cls] > 0)
            w += snprintf(script + w, sizeof script - (size_t)w,
                          ", \\\n     'd%d.dat' using 1:($3==%d ? $2 : 1/0):4 with points pt %s ps 1.6 lc rgb "
                          "variable notitle, \\\n     NaN with points pt %s ps 1.6 lc rgb '%s' title '%s'",
                          N_TRIALS, cls, mk[cls][0], mk[cls][0], mk[cls][1], mk[cls][2]);
    snprintf(script + w, sizeof script - (size_t)w, "\n");
    bool ok = cli_plot_run(&p, c, script, path);
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
    const char *data = NULL, *model = CASE_MODEL, *plot = NULL, *plot_default = DEFAULT_PLOT;
    double high = 0.5, low = 0.05, peak = 0.1;
    int64_t warmup = 100, epochs = 1, sched_epochs = 2, seed = 0, threads = 0, train_rows = 0, test_rows = 0;
    /* The case's name comes first: "sgdlab case text [options]" has options of its own (cmd_case_text.c). */
    if (argc >= 2 && strcmp(argv[1], "text") == 0)
        return sgdlab_case_text(argc - 1, argv + 1);
    cli cl;
    const cli_opt opts[] = {
        CLI_SECTION("options"),
        {.name = "data", .kind = CLI_STRING, .dest = &data, .arg = "DATA",
         .help = "fashion-mnist (default) or IDX files, as in sgdlab train"},
        {.name = "model", .kind = CLI_STRING, .dest = &model, .arg = "SPEC",
         .help = "another network (its input must be 1x28x28 or 784)"},
        {.name = "high-lr", .kind = CLI_DOUBLE, .dest = &high, .lo = 0, .hi = 1e6, .lo_open = true, .arg = "X",
         .help = "the rate that is too high (default 0.5)"},
        {.name = "low-lr", .kind = CLI_DOUBLE, .dest = &low, .lo = 0, .hi = 1e6, .lo_open = true, .arg = "X",
         .help = "the lower constant rate (default 0.05)"},
        {.name = "peak-lr", .kind = CLI_DOUBLE, .dest = &peak, .lo = 0, .hi = 1e6, .lo_open = true, .arg = "X",
         .help = "the top of the warmup+cosine schedule (default 0.1)"},
        {.name = "warmup", .kind = CLI_INT, .dest = &warmup, .ilo = 1, .ihi = 1 << 30, .arg = "N",
         .help = "warmup steps (default 100)"},
        {.name = "epochs", .kind = CLI_INT, .dest = &epochs, .ilo = 1, .ihi = 1000, .arg = "N",
         .help = "epochs of each trial (default 1)"},
        {.name = "schedule-epochs", .kind = CLI_INT, .dest = &sched_epochs, .ilo = 1, .ihi = 1000, .arg = "N",
         .help = "epochs of the warmup+cosine trial (default 2)"},
        {.name = "train-rows", .kind = CLI_INT, .dest = &train_rows, .ilo = 1, .ihi = INT64_MAX, .arg = "N",
         .help = "train on the first N rows only (default: all; for quick looks)"},
        {.name = "test-rows", .kind = CLI_INT, .dest = &test_rows, .ilo = 1, .ihi = INT64_MAX, .arg = "N",
         .help = "evaluate on the first N test rows only (default: all)"},
        {.name = "seed", .kind = CLI_INT, .dest = &seed, .ilo = 0, .ihi = INT64_MAX, .arg = "N",
         .help = "initialisation and batch order, the same for every trial (default 0)"},
        {.name = "threads", .kind = CLI_INT, .dest = &threads, .ilo = 1, .ihi = 64, .arg = "N",
         .help = "trials at once (default: the number of cores, at most 4)"},
        CLI_SECTION("output"),
        {.name = "plot", .kind = CLI_CALL, .dest = &plot, .arg = "FILE", .takes_value = true, .call = cli_plot_option,
         .help = "the loss curves, FILE.svg or FILE.png (default " DEFAULT_PLOT "; needs gnuplot: gnuplot-nox)"},
        {.name = "no-plot", .kind = CLI_CALL, .dest = &plot_default, .call = cli_plot_option, .help = "no plot"},
        CLI_OPT_JSON(&cl, "one JSON object instead of the table (docs/cli.md)"),
        CLI_OPT_OUTPUT(&cl),
        CLI_OPT_QUIET(&cl, "no progress bar, no heading: the table and the story"),
        CLI_OPT_PROGRESS(&cl),
        CLI_END,
    };
    int prc = cli_parse(&cl, &spec, opts, argc, argv);
    if (prc >= 0)
        return prc;
    const bool json = cl.json;
    if (cl.nargs == 0) {
        cli_fail(&cl, NULL, "which case? (sgdlab case image, sgdlab case text; --help)");
        return SGDLAB_EXIT_USAGE;
    }
    if (strcmp(cl.args[0], "text") == 0) {
        cli_fail(&cl, NULL, "the case's name comes first: sgdlab case text [options]");
        return SGDLAB_EXIT_USAGE;
    }
    if (strcmp(cl.args[0], "image") != 0) {
        cli_fail(&cl, NULL, "unknown case '%s' (there are: image, text)", cl.args[0]);
        return SGDLAB_EXIT_USAGE;
    }
    bool plot_given;
    if (!cli_plot_resolve(&cl, &plot, plot_default, &plot_given))
        return SGDLAB_EXIT_USAGE;
    if (threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? (nc > N_TRIALS ? N_TRIALS : nc) : 1;
    }
    bool have_gnuplot = plot == NULL || cli_have_gnuplot();
    if (!have_gnuplot && plot_given)
        cli_no_gnuplot(&cl, plot);
    double t_all = cli_now();
    cli_data d;
    if (!cli_load_data("case", data, 0, (uint64_t)seed, &d))
        return SGDLAB_EXIT_USAGE;
    int rc = SGDLAB_EXIT_USAGE;
    trial trials[N_TRIALS];
    memset(trials, 0, sizeof trials);
    sgd_dataset *train_sub = NULL, *test_sub = NULL;
    if (d.val == NULL) {
        cli_fail(&cl, "--data", "the case needs a test set (give the four IDX files)");
        goto out;
    }
    if (train_rows > 0 && train_rows < sgd_dataset_size(d.train)) {
        if (sgd_dataset_subset(&train_sub, d.train, 0, train_rows) != SGD_OK) {
            cli_fail(&cl, "--train-rows", "%s", sgd_error_last());
            goto out;
        }
    }
    if (test_rows > 0 && test_rows < sgd_dataset_size(d.val)) {
        if (sgd_dataset_subset(&test_sub, d.val, 0, test_rows) != SGD_OK) {
            cli_fail(&cl, "--test-rows", "%s", sgd_error_last());
            goto out;
        }
    }
    sgd_dataset *train = train_sub ? train_sub : d.train, *test = test_sub ? test_sub : d.val;
    int64_t nb = (sgd_dataset_size(train) + 127) / 128;
    {
        /* Check the model once, before the threads: a bad spec is a usage error. */
        sgd_model *m;
        if (sgd_model_from_spec(&m, model, NULL, NULL) != SGD_OK) {
            cli_fail(&cl, "--model", "%s", sgd_error_last());
            goto out;
        }
        int64_t in = sgd_model_num_inputs(m);
        sgd_model_free(m);
        if (in != d.dim) {
            cli_fail(&cl, "--model", "takes %lld values per sample, the data has %lld", (long long)in, (long long)d.dim);
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
            cli_fail(&cl, NULL, "out of memory");
            rc = SGDLAB_EXIT_FAIL;
            goto out;
        }
        for (int64_t k = 0; k < t->steps_planned; k++)
            t->loss[k] = NAN;
    }
    if (!json && !cl.quiet) {
        printf("sgdlab case image: %s on %s", model, d.desc);
        if (train_sub != NULL || test_sub != NULL)
            printf(" (using %lld training and %lld test rows)", (long long)sgd_dataset_size(train),
                   (long long)sgd_dataset_size(test));
        printf("\n");
        printf("SGD with momentum 0.9, batches of 128, seed %lld; %lld epoch%s per trial (warmup+cosine: %lld); "
               "%lld thread%s\n\n",
               (long long)seed, (long long)epochs, epochs == 1 ? "" : "s", (long long)sched_epochs,
               (long long)threads, threads == 1 ? "" : "s");
        cli_flush();
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
    cli_bar_init(&c.bar, cli_progress_on(&cl));
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
            cli_fail(&cl, NULL, "trial '%s': %s", trials[i].name, trials[i].error);
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
        plotted = draw_plot(&cl, trials, plot, title);
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
        printf("{\"schema\":\"" CLI_SCHEMA("case") "\",\"command\":\"case\",\"case\":\"image\",\"model\":");
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
            cli_json_count(stdout, t->first_alarm); /* a step, as everywhere; its kind beside it */
            printf(",\"first_alarm_kind\":");
            if (t->first_alarm >= 0)
                cli_json_str(stdout, sgd_monitor_kind_name(t->first_kind));
            else
                printf("null");
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
