/*
 * sgdlab lr-find: the LR range test; prints the suggestions and the curve.
 * SPDX-License-Identifier: MIT
 */
#include "cli.h"
#include "commands.h"
#include "lrfind_from.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const cli_command spec = {
    .name = "lr-find",
    .more_usage = "       sgdlab lr-find --from FILE [--key NAME] [--lr-key NAME] [output options]\n",
    .description =
        "Runs the learning-rate range test: trains the model for a few steps while the\n"
        "learning rate grows exponentially from --lr-min to --lr-max, stops when the\n"
        "smoothed loss exceeds 4 times its best or turns NaN, and puts the model back.\n"
        "Prints three suggestions and the curve:\n"
        "  steepest  where the loss falls fastest against log lr (the default suggestion)\n"
        "  minimum   the learning rate where the fitted curve is lowest, divided by 10\n"
        "  valley    fastai's valley\n"
        "(docs/tune.md explains them and how they differ from fastai's and Lightning's).\n"
        "\n"
        "With --from FILE, the range test is one that another framework ran: its (lr, loss)\n"
        "points are read from FILE (a CSV with lr and loss columns, 'lr=... loss=...' lines,\n"
        "JSON Lines, or Lightning's {\"lr\": [...], \"loss\": [...]}; the reading rules of\n"
        "sgdlab monitor) and analysed as the built-in test's curve would be (the stop rule,\n"
        "the same suggestions; --steps is the number of steps that test planned).\n",
    .epilog = "Exit status: 0 with a suggestion; 1 when the curve allows none (the message says\n"
              "why) or the plot could not be drawn; 2 for bad arguments or data.\n",
};

typedef struct lrf {
    cli_bar bar;
} lrf;

static int32_t on_progress(int64_t step, int64_t steps, double lr, double loss, void *user)
{
    lrf *p = user;
    char text[160], a[32], b[32];
    snprintf(text, sizeof text, "step %lld/%lld  lr %s  loss %s", (long long)step, (long long)steps,
             cli_num(a, sizeof a, lr), cli_num(b, sizeof b, loss));
    cli_bar_draw(&p->bar, (double)step / (double)steps, -1, text, step == steps);
    return 0;
}

/* Point i of the curve (a zeroed sample for an index out of range). */
static sgd_lrfind_sample point(const sgd_lrfind *r, size_t i)
{
    sgd_lrfind_sample s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    sgd_lrfind_point(r, i, &s);
    return s;
}

/* Point i of the curve as a JSON object or a CSV row (the same fields). */
static void put_point(cli_rec *w, const sgd_lrfind *r, size_t i)
{
    sgd_lrfind_sample s = point(r, i);
    cli_rec_begin(w);
    cli_rec_int(w, "step", (int64_t)i);
    cli_rec_num(w, "lr", s.lr);
    cli_rec_num(w, "loss", s.loss);
    cli_rec_num(w, "smoothed", s.smoothed);
    cli_rec_num(w, "fit", s.used ? s.fit : NAN);
    cli_rec_num(w, "slope", s.used ? s.slope : NAN);
    cli_rec_end(w);
}

static const char *end_code(int32_t end)
{
    return end == SGD_LRFIND_DIVERGED ? "diverged" : end == SGD_LRFIND_NONFINITE ? "nonfinite" : "completed";
}

static const char *end_text(int32_t end)
{
    switch (end) {
    case SGD_LRFIND_DIVERGED:
        return "the smoothed loss passed 4x its best";
    case SGD_LRFIND_NONFINITE:
        return "the loss was no longer finite";
    default:
        return "all steps taken";
    }
}

static bool draw_plot(const cli *c, const sgd_lrfind *r, const char *path, const char *title, const double *sug,
                      const bool *have)
{
    cli_plot p;
    if (!cli_plot_begin(&p, c))
        return false;
    FILE *f = cli_plot_file(&p, 0);
    if (f == NULL) {
        cli_fail(c, "--plot", "cannot write the plot's data in %s", p.dir);
        cli_plot_end(&p);
        return false;
    }
    double ymin = INFINITY, first = NAN;
    for (size_t i = 0; i < sgd_lrfind_count(r); i++) {
        sgd_lrfind_sample s = point(r, i);
        fprintf(f, "%.9g %.9g %.9g %.9g\n", s.lr, isfinite(s.loss) ? s.loss : NAN, s.smoothed, s.fit);
        if (isfinite(s.loss) && s.loss < ymin)
            ymin = s.loss;
        if (isnan(first) && isfinite(s.loss))
            first = s.loss;
    }
    if (fclose(f) != 0) {
        cli_fail(c, "--plot", "cannot write the plot's data in %s", p.dir);
        cli_plot_end(&p);
        return false;
    }
    char script[8192], tq[1200];
    int n = snprintf(script, sizeof script,
                     "set title '%s' noenhanced\n"
                     "set xlabel 'learning rate (log scale)'\nset ylabel 'training loss'\n"
                     "set logscale x\nset format x '%%.0e'\nset grid\nset key top left\n"
                     "set datafile missing 'nan'\n",
                     cli_gp_str(tq, sizeof tq, title));
    if (isfinite(ymin) && isfinite(first))
        n += snprintf(script + n, sizeof script - (size_t)n, "set yrange [%.6g:%.6g]\n", 0.9 * ymin, 2.0 * first);
    static const char *const colors[3] = {"#d62728", "#2ca02c", "#9467bd"};
    for (int k = 0; k < SGD_LRFIND_METHOD_COUNT; k++)
        if (have[k])
            n += snprintf(script + n, sizeof script - (size_t)n,
                          "set arrow from %.9g, graph 0 to %.9g, graph 1 nohead lc rgb '%s' dt 2 lw 2\n"
                          "set label '%s %.3g' at %.9g, graph %.2f left offset 0.5,0 tc rgb '%s'\n",
                          sug[k], sug[k], colors[k], sgd_lrfind_method_name(k), sug[k], sug[k], 0.95 - 0.06 * k,
                          colors[k]);
    snprintf(script + n, sizeof script - (size_t)n,
             "plot 'd0.dat' using 1:2 with points pt 7 ps 0.4 lc rgb '#a0a0a0' title 'loss per step', \\\n"
             "     '' using 1:3 with lines lw 2 lc rgb '#ff7f0e' title 'moving average (beta 0.98; stop rule)', \\\n"
             "     '' using 1:4 with lines lw 2 lc rgb '#1f77b4' title 'centered local fit (suggestions)'\n");
    bool ok = cli_plot_run(&p, c, script, path);
    cli_plot_end(&p);
    return ok;
}

/* What the report of a range test needs: the command's options, and where the curve came from. */
typedef struct report_ctx {
    const cli *c;
    bool csv;
    const char *plot;
    bool have_gnuplot;
    int32_t method;
    const char *optim, *model, *data, *data_desc; /* NULL with --from */
    const char *from;                             /* --from FILE, or NULL */
    const sgd_lrfind_options *lo;
    int64_t seed;
    double secs;
    const char *model_spec;
} report_ctx;

/* Prints the suggestions and the curve (text, JSON or CSV) and draws the plot; returns the exit status. */
static int report(const sgd_lrfind *r, const report_ctx *x)
{
    const cli *c = x->c;
    const sgd_lrfind_options *lo = x->lo;
    int32_t method = x->method;
    double sug[SGD_LRFIND_METHOD_COUNT];
    size_t idx[SGD_LRFIND_METHOD_COUNT];
    bool have[SGD_LRFIND_METHOD_COUNT];
    char why[SGD_LRFIND_METHOD_COUNT][400];
    for (int k = 0; k < SGD_LRFIND_METHOD_COUNT; k++) {
        have[k] = sgd_lrfind_suggestion(r, k, &sug[k], &idx[k]) == SGD_OK;
        snprintf(why[k], sizeof why[k], "%s", have[k] ? "" : sgd_error_last());
    }
    size_t count = sgd_lrfind_count(r);
    int rc = have[method] ? SGDLAB_EXIT_OK : SGDLAB_EXIT_FAIL;

    bool plotted = false;
    if (x->plot != NULL && x->have_gnuplot) {
        char title[600];
        if (x->from != NULL)
            snprintf(title, sizeof title, "LR range test read from %s", x->from);
        else
            snprintf(title, sizeof title, "LR range test: %s on %s, %s, batch %lld", x->optim, x->model, x->data,
                     (long long)lo->batch_size);
        plotted = draw_plot(c, r, x->plot, title, sug, have);
    }
    if (x->plot != NULL && !plotted)
        rc = SGDLAB_EXIT_FAIL;

    char b1[32], b2[32], b3[32], b4[32];
    if (c->json) {
        /* One schema with and without --from: what does not apply (the model, the data...) is null. */
        printf("{\"schema\":\"" CLI_SCHEMA("lr-find") "\",\"command\":\"lr-find\"");
        cli_json_key_str(stdout, "from", x->from);
        cli_json_key_str(stdout, "model", x->model_spec);
        cli_json_key_str(stdout, "optimizer", x->optim);
        cli_json_key_str(stdout, "data", x->data);
        if (x->from != NULL)
            printf(",\"steps\":%lld,\"lr_min\":null,\"lr_max\":null,\"ramp\":null,\"batch_size\":null,\"seed\":null",
                   (long long)lo->steps);
        else
            printf(",\"steps\":%lld,\"lr_min\":%.9g,\"lr_max\":%.9g,\"ramp\":\"%s\",\"batch_size\":%lld,\"seed\":%lld",
                   (long long)lo->steps, lo->lr_min, lo->lr_max,
                   lo->ramp == SGD_LRFIND_LINEAR ? "linear" : "exponential", (long long)lo->batch_size,
                   (long long)x->seed);
        printf(",\"points\":%zu,\"end_reason\":\"%s\",\"end_message\":", count, end_code(sgd_lrfind_end_reason(r)));
        cli_json_str(stdout, end_text(sgd_lrfind_end_reason(r)));
        printf(",\"suggestion\":");
        if (have[method])
            cli_json_num(stdout, sug[method]);
        else
            printf("null");
        printf(",\"method\":");
        cli_json_str(stdout, sgd_lrfind_method_name(method));
        printf(",\"suggestions\":{");
        for (int k = 0; k < SGD_LRFIND_METHOD_COUNT; k++) {
            printf("%s\"%s\":", k ? "," : "", sgd_lrfind_method_name(k));
            if (have[k]) {
                printf("{\"lr\":%.9g,\"step\":%zu,\"why\":null}", sug[k], idx[k]);
            } else {
                printf("{\"lr\":null,\"step\":null,\"why\":");
                cli_json_str(stdout, why[k]);
                printf("}");
            }
        }
        printf("},\"curve\":[");
        cli_rec w = {stdout, CLI_REC_JSON, 0, 0};
        for (size_t i = 0; i < count; i++)
            put_point(&w, r, i);
        printf("],\"plot\":");
        if (plotted)
            cli_json_str(stdout, x->plot);
        else
            printf("null");
        printf(",\"seconds\":");
        cli_json_num(stdout, x->from != NULL ? NAN : x->secs);
        printf("}\n");
    } else if (x->csv) {
        cli_rec w = {stdout, CLI_REC_CSV_HEADER, 0, 0};
        put_point(&w, r, 0);
        w.mode = CLI_REC_CSV;
        for (size_t i = 0; i < count; i++)
            put_point(&w, r, i);
    } else if (c->quiet) {
        if (have[method])
            printf("suggested learning rate: %s (%s)\n", cli_num(b1, sizeof b1, sug[method]),
                   sgd_lrfind_method_name(method));
        else
            printf("no %s suggestion: %s\n", sgd_lrfind_method_name(method), why[method]);
    } else {
        if (x->from != NULL) {
            sgd_lrfind_sample s0 = point(r, 0), s1 = point(r, count - 1);
            printf("sgdlab lr-find: the range test in %s\n", x->from);
            printf("range test: %zu point%s, lr %s to %s; %s\n\n", count, count == 1 ? "" : "s",
                   cli_num(b1, sizeof b1, s0.lr), cli_num(b2, sizeof b2, s1.lr), end_text(sgd_lrfind_end_reason(r)));
        } else {
            printf("sgdlab lr-find: %s on %s, %s\n", x->optim, x->model, x->data_desc);
            printf("range test: %lld steps of %lld rows, lr %s to %s (%s); ended after %zu step%s: %s; %.1f s\n\n",
                   (long long)lo->steps, (long long)lo->batch_size, cli_num(b1, sizeof b1, lo->lr_min),
                   cli_num(b2, sizeof b2, lo->lr_max), lo->ramp == SGD_LRFIND_LINEAR ? "linear" : "exponential",
                   count, count == 1 ? "" : "s", end_text(sgd_lrfind_end_reason(r)), x->secs);
        }
        printf("suggestions:\n");
        for (int k = 0; k < SGD_LRFIND_METHOD_COUNT; k++) {
            if (!have[k]) {
                printf("  %-9s  -          %s\n", sgd_lrfind_method_name(k), why[k]);
                continue;
            }
            sgd_lrfind_sample s = point(r, idx[k]);
            printf("  %-9s  %-9s  ", sgd_lrfind_method_name(k), cli_num(b1, sizeof b1, sug[k]));
            if (k == SGD_LRFIND_STEEPEST)
                printf("the loss falls fastest here (%s per decade of lr)", cli_num(b2, sizeof b2, s.slope));
            else if (k == SGD_LRFIND_MINIMUM)
                printf("a tenth of lr %s, where the fitted curve is lowest (fit %s)", cli_num(b2, sizeof b2, s.lr),
                       cli_num(b3, sizeof b3, s.fit));
            else
                printf("fastai's valley, halfway down the longest descent of the moving average");
            printf("%s\n", k == method ? "  <- suggested" : "");
        }
        if (have[method] && x->from == NULL)
            printf("\nsuggested learning rate: %s (%s)\ntry: sgdlab train --optim %s --lr %s\n",
                   cli_num(b1, sizeof b1, sug[method]), sgd_lrfind_method_name(method), x->optim,
                   cli_num(b2, sizeof b2, sug[method]));
        else if (have[method])
            printf("\nsuggested learning rate: %s (%s)\n", cli_num(b1, sizeof b1, sug[method]),
                   sgd_lrfind_method_name(method));
        else
            printf("\nno %s suggestion: %s\n", sgd_lrfind_method_name(method), why[method]);
        size_t every = count > 30 && !c->verbose ? (count + 29) / 30 : 1;
        printf("\ncurve%s:\n%6s  %10s  %10s  %10s  %10s\n",
               every > 1 ? " (every few points; --verbose, --csv or --json for all)" : "", "step", "lr", "loss",
               "smoothed", "fit");
        for (size_t i = 0; i < count; i++) {
            if (i % every != 0 && i + 1 != count)
                continue;
            sgd_lrfind_sample s = point(r, i);
            printf("%6zu  %10s  %10s  %10s  %10s\n", i, cli_num(b1, sizeof b1, s.lr), cli_num(b2, sizeof b2, s.loss),
                   cli_num(b3, sizeof b3, s.smoothed), s.used ? cli_num(b4, sizeof b4, s.fit) : "-");
        }
        if (plotted)
            printf("\nplot: %s\n", x->plot);
    }
    if (!have[method] && (c->json || x->csv))
        cli_fail(c, NULL, "no %s suggestion: %s", sgd_lrfind_method_name(method), why[method]);
    return rc;
}

/* --from FILE: the range test of another framework, analysed. */
static int run_from(const cli *c, const report_ctx *x0, const char *key, const char *lr_key)
{
    logread_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.key = key;
    ro.lr_key = lr_key;
    double *lrs = NULL, *losses = NULL;
    size_t npts = 0;
    char err[600];
    if (lrfind_read_curve(x0->from, &ro, &lrs, &losses, &npts, err, sizeof err) != 0) {
        cli_fail(c, "--from", "%s", err);
        return SGDLAB_EXIT_USAGE;
    }
    sgd_lrfind *fr = NULL;
    sgd_status fst = sgd_lrfind_analyze(&fr, lrs, losses, npts, x0->lo, NULL);
    free(lrs);
    free(losses);
    if (fst != SGD_OK) {
        cli_fail(c, "--from", "%s: %s", x0->from, sgd_error_last());
        return SGDLAB_EXIT_USAGE;
    }
    int rc = report(fr, x0);
    sgd_lrfind_free(fr);
    return rc;
}

int sgdlab_cmd_lrfind(int argc, char **argv)
{
    const char *data = NULL, *model = NULL, *optim = "sgd:momentum=0.9", *plot = NULL;
    const char *from = NULL, *key = NULL, *lr_key = NULL;
    bool csv = false, linear = false;
    sgd_lrfind_options lo;
    sgd_lrfind_options_init(&lo);
    int64_t seed = 0;
    int64_t batch = -1; /* not given */
    int32_t method = sgd_lrfind_default_method();
    static const char *const methods[] = {"steepest", "minimum", "valley", NULL}; /* sgd_lrfind_method order */
    cli c;
    const cli_opt opts[] = {
        CLI_SECTION("options"),
        {.name = "from", .kind = CLI_STRING, .dest = &from, .arg = "FILE",
         .help = "analyse the range test in FILE instead of running one"},
        {.name = "key", .kind = CLI_STRING, .dest = &key, .arg = "NAME",
         .help = "with --from: the field of the loss"},
        {.name = "lr-key", .kind = CLI_STRING, .dest = &lr_key, .arg = "NAME",
         .help = "with --from: the field of the learning rate"},
        {.name = "data", .kind = CLI_STRING, .dest = &data, .arg = "DATA",
         .help = "fashion-mnist (default), spirals, text[:FILES], a directory of IDX files, or "
                 "TRAIN_IMAGES,TRAIN_LABELS[,TEST_IMAGES,TEST_LABELS]"},
        {.name = "model", .kind = CLI_STRING, .dest = &model, .arg = "SPEC",
         .help = "default: 784-256-relu-128-relu-10 for 28x28 images"},
        {.name = "optim", .kind = CLI_STRING, .dest = &optim, .arg = "SPEC",
         .help = "the optimizer tested, e.g. adam or sgd:momentum=0.9 (default); its lr is ignored"},
        {.name = "steps", .kind = CLI_INT, .dest = &lo.steps, .ilo = 8, .ihi = (int64_t)1 << 24, .arg = "N",
         .help = "default 100"},
        {.name = "lr-min", .kind = CLI_DOUBLE, .dest = &lo.lr_min, .lo = 0, .hi = 1e6, .lo_open = true, .arg = "X",
         .help = "default 1e-7"},
        {.name = "lr-max", .kind = CLI_DOUBLE, .dest = &lo.lr_max, .lo = 0, .hi = 1e6, .lo_open = true, .arg = "X",
         .help = "default 10"},
        {.name = "linear", .kind = CLI_TRUE, .dest = &linear, .help = "a linear ramp instead of an exponential one"},
        {.name = "batch-size", .kind = CLI_INT, .dest = &batch, .ilo = 1, .ihi = SGD_MODEL_MAX_BATCH,
         .arg = "N", .help = "default 128 (text: the number of parallel streams, default 32)"},
        {.name = "seed", .kind = CLI_INT, .dest = &seed, .ilo = 0, .ihi = INT64_MAX, .arg = "N",
         .help = "initialisation and batch order (default 0)"},
        {.name = "method", .kind = CLI_CHOICE, .dest = &method, .choices = methods, .arg = "NAME",
         .help = "which suggestion is 'the' suggestion: steepest (default), minimum or valley"},
        CLI_SECTION("output"),
        {.name = "plot", .kind = CLI_CALL, .dest = &plot, .arg = "FILE", .takes_value = true, .call = cli_plot_option,
         .help = "draw the curve and the suggestions to FILE.svg or FILE.png (needs gnuplot: gnuplot-nox)"},
        CLI_OPT_JSON(&c, "one JSON object with the suggestions and the whole curve (docs/cli.md)"),
        {.name = "csv", .kind = CLI_TRUE, .dest = &csv,
         .help = "the whole curve as CSV (step,lr,loss,smoothed,fit,slope)"},
        CLI_OPT_OUTPUT(&c),
        CLI_OPT_QUIET(&c, "no progress bar; only the suggested learning rate"),
        CLI_OPT_VERBOSE(&c, "every point of the curve in the table (default: about 30)"),
        CLI_OPT_PROGRESS(&c),
        CLI_END,
    };
    int prc = cli_parse(&c, &spec, opts, argc, argv);
    if (prc >= 0)
        return prc;
    if (linear)
        lo.ramp = SGD_LRFIND_LINEAR;
    if (batch > 0)
        lo.batch_size = batch;
    if (c.json && csv) {
        cli_fail(&c, NULL, "--json and --csv: choose one");
        return SGDLAB_EXIT_USAGE;
    }
    if (!(lo.lr_max > lo.lr_min)) {
        cli_fail(&c, "--lr-max", "%g must be above --lr-min %g", lo.lr_max, lo.lr_min);
        return SGDLAB_EXIT_USAGE;
    }
    if (from == NULL && (key != NULL || lr_key != NULL)) {
        cli_fail(&c, NULL, "--key and --lr-key go with --from");
        return SGDLAB_EXIT_USAGE;
    }
    if (from != NULL && (data != NULL || model != NULL)) {
        cli_fail(&c, "--from", "it reads a range test: --data and --model do not apply");
        return SGDLAB_EXIT_USAGE;
    }
    bool have_gnuplot = plot == NULL || cli_have_gnuplot();
    if (!have_gnuplot)
        cli_no_gnuplot(&c, plot);
    lo.seed = (uint64_t)seed;
    if (from != NULL) {
        report_ctx fx = {&c, csv, plot, have_gnuplot, method, NULL, NULL, NULL, NULL, from, &lo, seed, 0.0, NULL};
        return run_from(&c, &fx, key, lr_key);
    }

    int rc = SGDLAB_EXIT_USAGE;
    cli_data d;
    sgd_model *m = NULL;
    sgd_optim *o = NULL;
    sgd_lrfind *r = NULL;
    char model_spec[512], optim_spec[1024];
    if (cli_is_text(data)) {
        /* Parallel streams of text, read in order, --batch-size of them (32 by default). */
        if (!cli_load_text("lr-find", data, 100, batch > 0 ? batch : 32, 0.05, SGD_TEXT_UTF8, &d))
            return SGDLAB_EXIT_USAGE;
        lo.batch_size = d.streams;
        lo.shuffle = 0;
    } else if (!cli_load_data("lr-find", data, 0, (uint64_t)seed, &d)) {
        return SGDLAB_EXIT_USAGE;
    }
    if (model == NULL) {
        cli_default_model(&d, model_spec, sizeof model_spec);
        model = model_spec;
    }
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.seed = (uint64_t)seed;
    mo.max_batch = lo.batch_size;
    char text_spec[1024];
    const char *mspec = cli_text_spec("lr-find", &d, model, text_spec, sizeof text_spec);
    if (mspec == NULL)
        goto out;
    if (sgd_model_from_spec(&m, mspec, &mo, NULL) != SGD_OK) {
        cli_fail(&c, "--model", "%s", sgd_error_last());
        goto out;
    }
    /* The ramp sets every step's rate; the spec's lr only has to be valid. */
    if (!cli_optim_with_lr(optim, lo.lr_min, optim_spec, sizeof optim_spec)) {
        cli_fail(&c, "--optim", "spec too long");
        goto out;
    }
    if (sgd_optim_new(&o, optim_spec, sgd_model_num_params(m), NULL) != SGD_OK) {
        cli_fail(&c, "--optim", "%s", sgd_error_last());
        goto out;
    }
    lrf pr;
    cli_bar_init(&pr.bar, cli_progress_on(&c));
    if (pr.bar.on) {
        lo.progress = on_progress;
        lo.progress_user = &pr;
    }
    double t0 = cli_now();
    sgd_status st = sgd_lrfind_run(&r, m, o, d.train, &lo, NULL);
    double secs = cli_now() - t0;
    cli_bar_clear(&pr.bar);
    if (st != SGD_OK) {
        cli_fail(&c, NULL, "%s", sgd_error_last());
        rc = st == SGD_ESHAPE ? SGDLAB_EXIT_USAGE : SGDLAB_EXIT_FAIL;
        goto out;
    }
    report_ctx x = {&c, csv, plot, have_gnuplot, method, optim, model, d.name, d.desc, NULL, &lo, seed, secs,
                    sgd_model_spec(m)};
    rc = report(r, &x);

out:
    sgd_lrfind_free(r);
    sgd_optim_free(o);
    sgd_model_free(m);
    cli_data_free(&d);
    return rc;
}
