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
#include "case_run.h" /* and cli.h */
#include "commands.h"

#include <math.h>
#include <string.h>

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

/* Each trial's own measures, beside its record (case_run.h). */
typedef struct image_result {
    double test_acc, test_loss;
} image_result;

typedef struct image_ctx {
    const sgd_dataset *test;
    image_result *res;
} image_ctx;

/* After a trial (in its thread): the test set's accuracy and loss. */
static void on_done(case_trial *t, int i, void *user)
{
    image_ctx *c = user;
    image_result *r = &c->res[i];
    if (sgd_model_evaluate(t->model, c->test, 0, &r->test_loss, &r->test_acc) != SGD_OK)
        r->test_acc = r->test_loss = NAN;
    if (t->status == SGD_EDIVERGED)
        r->test_acc = NAN; /* a diverged run has no meaningful accuracy */
}

/* ---------------------------------------------------------------- the plot */

/* The curves: the training loss smoothed (cli_write_ema_curve), on a log scale from the first loss. */
typedef struct ema_scale {
    double ymin, y0;
} ema_scale;

static void write_curve(FILE *f, const case_trial *t, void *user)
{
    ema_scale *s = user;
    cli_write_ema_curve(f, t->loss, t->n_loss, &s->ymin, &s->y0);
}

static const case_plot_style image_plot = {
    .marks = {{"7", "#000000", "divergence / NaN", false},
              {"9", "#555555", "oscillation / stagnation", false},
              {"1", "#777777", "spike, gradient spike", false},
              {"5", "#000000", "guard: rollback, lr halved", false}},
    .n_marks = 4,
    .digits = 9,
    .curve = write_curve,
};

static bool draw_plot(const cli *c, const case_trial *trials, const image_result *res, const char *path,
                      const char *title)
{
    ema_scale sc = {INFINITY, 0};
    case_plot cp;
    if (!case_plot_begin(&cp, c, &image_plot, trials, &sc))
        return false;
    double ymin = sc.ymin, ymax = sc.y0 > 0 ? 6 * sc.y0 : 10;
    if (!(ymin < ymax))
        ymin = ymax / 100;
    for (int i = 0; i < CASE_TRIALS; i++) {
        const case_trial *t = &trials[i];
        for (size_t k = 0; k < t->n_events; k++) {
            const case_event *e = &t->events[k];
            int cls = e->kind < 0                                                           ? 3
                      : e->kind == SGD_MONITOR_NONFINITE || e->kind == SGD_MONITOR_DIVERGENCE ? 0
                      : e->kind == SGD_MONITOR_SPIKE || e->kind == SGD_MONITOR_GRAD_SPIKE     ? 2
                                                                                              : 1;
            double y = isfinite(e->loss) && e->loss < ymax ? e->loss : ymax * 0.9;
            if (e->kind < 0 && e->step >= 1 && e->step <= t->n_loss && isfinite(t->loss[e->step - 1]))
                y = t->loss[e->step - 1] < ymax ? t->loss[e->step - 1] : ymax * 0.9;
            if (y < ymin)
                y = ymin;
            case_plot_mark(&cp, i, e->step + 1, y, cls);
        }
    }
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
    for (int i = 0; i < CASE_TRIALS; i++)
        if (isfinite(res[i].test_acc))
            snprintf(cp.extra[i], sizeof cp.extra[i], ", %.1f%%", 100 * res[i].test_acc);
    return case_plot_finish(&cp, script, sizeof script, w, trials, path);
}

/* ---------------------------------------------------------------- the command */

int sgdlab_cmd_case(int argc, char **argv)
{
    const char *data = NULL, *model = CASE_MODEL, *plot = NULL, *plot_default = DEFAULT_PLOT;
    double high = 0.5, low = 0.05, peak = 0.1;
    int64_t warmup = 100, epochs = 1, sched_epochs = 3, seed = 0, train_rows = 0, test_rows = 0;
    int64_t threads = case_default_threads();
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
         .help = "epochs of the warmup+cosine trial (default 3)"},
        {.name = "train-rows", .kind = CLI_INT, .dest = &train_rows, .ilo = 1, .ihi = INT64_MAX, .arg = "N",
         .help = "train on the first N rows only (default: all; for quick looks)"},
        {.name = "test-rows", .kind = CLI_INT, .dest = &test_rows, .ilo = 1, .ihi = INT64_MAX, .arg = "N",
         .help = "evaluate on the first N test rows only (default: all)"},
        {.name = "seed", .kind = CLI_INT, .dest = &seed, .ilo = 0, .ihi = INT64_MAX, .arg = "N",
         .help = "initialisation and batch order, the same for every trial (default 0)"},
        CASE_OPT_THREADS(&threads),
        CLI_SECTION("output"),
        CASE_OPTS_OUTPUT_END(&cl, &plot, &plot_default, DEFAULT_PLOT,
                             "no progress bar, no heading: the table and the story"),
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
    bool have_gnuplot = case_can_plot(&cl, plot, plot_given);
    double t_all = cli_now();
    cli_data d;
    if (!cli_load_data("case", data, 0, (uint64_t)seed, &d))
        return SGDLAB_EXIT_USAGE;
    int rc = SGDLAB_EXIT_USAGE;
    case_trial trials[CASE_TRIALS];
    image_result res[CASE_TRIALS];
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
    static const char *const names[CASE_TRIALS] = {"too high", "lower rate", "warmup+cosine", "guard"};
    for (int i = 0; i < CASE_TRIALS; i++) {
        case_trial *t = &trials[i];
        int64_t ep = i == CASE_SCHED ? sched_epochs : epochs;
        res[i].test_acc = res[i].test_loss = NAN;
        if (!case_trial_init(t, names[i], i == CASE_LOW ? low : i == CASE_SCHED ? peak : high, i == CASE_GUARD, ep,
                             nb * ep)) {
            cli_fail(&cl, NULL, "out of memory");
            rc = SGDLAB_EXIT_FAIL;
            goto out;
        }
        snprintf(t->optim, sizeof t->optim, "sgd:lr=%.17g,momentum=0.9", t->lr);
        if (i == CASE_SCHED) {
            int64_t total = t->steps_planned, w = warmup < total ? warmup : total - 1;
            if (w < 1)
                w = 1;
            snprintf(t->sched, sizeof t->sched,
                     "sequential:milestones=[%lld],children=[(linear:start_factor=0.01,total_iters=%lld),"
                     "(cosine:T_max=%lld)]",
                     (long long)w, (long long)w, (long long)(total - w > 1 ? total - w : 1));
            snprintf(t->sched_text, sizeof t->sched_text, "warmup %lld, cosine", (long long)w);
        }
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
    image_ctx ic = {test, res};
    case_run_options ro = {.model = model, .seed = (uint64_t)seed, .train = train, .threads = threads,
                           .bar_every = 20, .progress = cli_progress_on(&cl), .on_done = on_done, .user = &ic};
    sgd_trainer_options_init(&ro.trainer);
    ro.trainer.batch_size = 128;
    case_run(&ro, trials);
    if (!case_all_ran(&cl, trials)) {
        rc = SGDLAB_EXIT_FAIL;
        goto out;
    }
    /* The story holds when the too-high trial is in trouble and a rescue is healthy. */
    bool trouble = case_in_trouble(&trials[CASE_HIGH]);
    bool rescued = false;
    for (int i = 1; i < CASE_TRIALS; i++)
        rescued = rescued || case_healthy(&trials[i]);
    rc = trouble && rescued ? SGDLAB_EXIT_OK : SGDLAB_EXIT_FAIL;
    bool plotted = false;
    if (plot != NULL && have_gnuplot) {
        char title[700];
        snprintf(title, sizeof title, "sgdlab case image: %s on %s, a rate too high and three rescues",
                 strcmp(model, CASE_MODEL) == 0 ? "the CNN" : "the network", d.name);
        plotted = draw_plot(&cl, trials, res, plot, title);
    }
    if (plot_given && !plotted)
        rc = SGDLAB_EXIT_FAIL;
    double total = cli_now() - t_all;
    if (!json) {
        static const case_table cols = {14, 20, 26};
        char own[32];
        snprintf(own, sizeof own, "%8s", "test acc");
        case_table_head(&cols, own);
        for (int i = 0; i < CASE_TRIALS; i++) {
            char acc[24] = "-";
            if (isfinite(res[i].test_acc))
                snprintf(acc, sizeof acc, "%.2f%%", 100 * res[i].test_acc);
            snprintf(own, sizeof own, "%8s", acc);
            case_table_row(&cols, &trials[i], own);
        }
        printf("\n");
        case_print_story(trials, "");
        case_print_end(plot, plotted, have_gnuplot, total, d.load_seconds);
    } else {
        case_json_begin(CLI_SCHEMA("case"), "image", model, d.name);
        printf(",\"seed\":%lld,\"threads\":%lld,\"trials\":[", (long long)seed, (long long)threads);
        for (int i = 0; i < CASE_TRIALS; i++) {
            const case_trial *t = &trials[i];
            printf("%s", i ? "," : "");
            case_json_trial_begin(t);
            printf(",\"guard\":%s,\"epochs\":%lld", t->guard ? "true" : "false", (long long)t->epochs);
            case_json_trial_alarms(t, true);
            printf(",\"test_accuracy\":");
            cli_json_num(stdout, res[i].test_acc);
            printf(",\"test_loss\":");
            cli_json_num(stdout, res[i].test_loss);
            case_json_trial_end(t);
            printf("}");
        }
        case_json_story(trouble && rescued);
        case_json_end(plot, plotted, total);
    }
out:
    case_trials_free(trials);
    sgd_dataset_free(train_sub);
    sgd_dataset_free(test_sub);
    cli_data_free(&d);
    return rc;
}
