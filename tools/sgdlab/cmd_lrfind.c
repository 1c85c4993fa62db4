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

void sgdlab_help_lrfind(void)
{
    printf(
        "usage: sgdlab lr-find [options]\n"
        "       sgdlab lr-find --from FILE [--key NAME] [--lr-key NAME] [output options]\n"
        "\n"
        "Runs the learning-rate range test: trains the model for a few steps while the\n"
        "learning rate grows exponentially from --lr-min to --lr-max, stops when the\n"
        "smoothed loss exceeds 4 times its best or turns NaN, and puts the model back.\n"
        "Prints three suggestions and the curve:\n"
        "  steepest  where the loss falls fastest against log lr (the default suggestion)\n"
        "  minimum   the learning rate of the lowest loss, divided by 10\n"
        "  valley    fastai's valley\n"
        "(docs/tune.md explains them and how they differ from fastai's and Lightning's).\n"
        "\n"
        "With --from FILE, the range test is one that another framework ran: its (lr, loss)\n"
        "points are read from FILE (a CSV with lr and loss columns, 'lr=... loss=...' lines,\n"
        "JSON Lines, or Lightning's {\"lr\": [...], \"loss\": [...]}; the reading rules of\n"
        "sgdlab monitor) and analysed as the built-in test's curve would be (the stop rule,\n"
        "the same suggestions; --steps is the number of steps that test planned).\n"
        "\n"
        "options:\n"
        "  --from FILE            analyse the range test in FILE instead of running one\n"
        "  --key NAME, --lr-key NAME  with --from: the fields of the loss and the learning rate\n"
        "  --data NAME|DIR|FILES  fashion-mnist (default), spirals, a directory of IDX files, or\n"
        "                         TRAIN_IMAGES,TRAIN_LABELS[,TEST_IMAGES,TEST_LABELS]\n"
        "  --model SPEC           default: 784-256-relu-128-relu-10 for 28x28 images\n"
        "  --optim SPEC           the optimizer tested, e.g. adam or sgd:momentum=0.9 (default);\n"
        "                         its lr is ignored\n"
        "  --steps N              default 100\n"
        "  --lr-min X             default 1e-7\n"
        "  --lr-max X             default 10\n"
        "  --linear               a linear ramp instead of an exponential one\n"
        "  --batch-size N         default 128\n"
        "  --seed N               initialisation and batch order (default 0)\n"
        "  --method NAME          which suggestion is 'the' suggestion: steepest (default),\n"
        "                         minimum or valley\n"
        "  --plot FILE            draw the curve and the suggestions to FILE.svg or FILE.png\n"
        "                         (needs gnuplot: gnuplot-nox)\n"
        "  --json                 one JSON object with the suggestions and the whole curve\n"
        "  --csv                  the whole curve as CSV (step,lr,loss,smoothed,fit,slope)\n"
        "  --no-progress          no progress bar (drawn only when stderr is a terminal)\n"
        "  -h, --help             show this help\n"
        "\n"
        "Exit status: 0 with a suggestion; 1 when the curve allows none (the message says\n"
        "why) or the plot could not be drawn; 2 for bad arguments or data.\n");
}

typedef struct lrf {
    cli_bar bar;
} lrf;

static int32_t on_progress(int64_t step, int64_t steps, double lr, double loss, void *user)
{
    lrf *p = user;
    char text[160], a[32], b[32];
    snprintf(text, sizeof text, "step %lld/%lld  lr %s  loss %s", (long long)step, (long long)steps,
             cli_num(a, sizeof a, lr), cli_num(b, sizeof b, loss));
    cli_bar_draw(&p->bar, (double)step / (double)steps, text, step == steps);
    return 0;
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

static bool draw_plot(const sgd_lrfind *r, const char *path, const char *format, const char *title,
                      const double *sug, const bool *have)
{
    cli_plot p;
    if (!cli_plot_begin(&p, "lr-find"))
        return false;
    char dpath[300];
    FILE *f = cli_plot_file(&p, 0, dpath, sizeof dpath);
    if (f == NULL) {
        cli_plot_end(&p);
        return false;
    }
    double ymin = INFINITY, first = NAN;
    for (size_t i = 0; i < sgd_lrfind_count(r); i++) {
        sgd_lrfind_sample s;
        s.struct_size = sizeof s;
        sgd_lrfind_point(r, i, &s);
        fprintf(f, "%.9g %.9g %.9g %.9g\n", s.lr, isfinite(s.loss) ? s.loss : NAN, s.smoothed, s.fit);
        if (isfinite(s.loss) && s.loss < ymin)
            ymin = s.loss;
        if (isnan(first) && isfinite(s.loss))
            first = s.loss;
    }
    fclose(f);
    char script[8192], outq[2100], tq[1200];
    int n = snprintf(script, sizeof script,
                     "%s"
                     "set output '%s'\n"
                     "set title '%s' noenhanced\n"
                     "set xlabel 'learning rate (log scale)'\nset ylabel 'training loss'\n"
                     "set logscale x\nset format x '%%.0e'\nset grid\nset key top left\n"
                     "set datafile missing 'nan'\n",
                     cli_plot_terminal(format), cli_gp_str(outq, sizeof outq, path), cli_gp_str(tq, sizeof tq, title));
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
             "plot '%s' using 1:2 with points pt 7 ps 0.4 lc rgb '#a0a0a0' title 'loss per step', \\\n"
             "     '' using 1:3 with lines lw 2 lc rgb '#ff7f0e' title 'moving average (beta 0.98; stop rule)', \\\n"
             "     '' using 1:4 with lines lw 2 lc rgb '#1f77b4' title 'centered local fit (suggestions)'\n",
             dpath);
    bool ok = cli_plot_run(&p, "lr-find", script);
    cli_plot_end(&p);
    return ok;
}

/* What the report of a range test needs: the command's options, and where the curve came from. */
typedef struct report_ctx {
    bool json, csv;
    const char *plot;
    bool have_gnuplot;
    int32_t method;
    const char *optim, *model, *data, *data_desc;
    const char *from; /* --from FILE, or NULL */
    const sgd_lrfind_options *lo;
    int64_t seed;
    double secs;
    const char *model_spec;
} report_ctx;

/* Prints the suggestions and the curve (text, JSON or CSV) and draws the plot; returns the exit status. */
static int report(const sgd_lrfind *r, const report_ctx *x)
{
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
                     (long long)x->lo->batch_size);
        const char *fmt = cli_plot_format("lr-find", x->plot);
        plotted = fmt != NULL && draw_plot(r, x->plot, fmt, title, sug, have);
    }
    if (x->plot != NULL && !plotted)
        rc = SGDLAB_EXIT_FAIL;

    char b1[32], b2[32], b3[32], b4[32];
    if (x->json && x->from != NULL) {
        printf("{\"command\":\"lr-find\",\"from\":");
        cli_json_str(stdout, x->from);
        printf(",\"model\":null,\"optimizer\":null,\"data\":null,\"points\":%zu,\"end\":", count);
    } else if (x->json) {
        printf("{\"command\":\"lr-find\",\"model\":");
        cli_json_str(stdout, x->model_spec);
        printf(",\"optimizer\":");
        cli_json_str(stdout, x->optim);
        printf(",\"data\":");
        cli_json_str(stdout, x->data);
        printf(",\"steps\":%lld,\"lr_min\":%.9g,\"lr_max\":%.9g,\"ramp\":\"%s\",\"batch_size\":%lld,\"seed\":%lld,"
               "\"points\":%zu,\"end\":",
               (long long)lo->steps, lo->lr_min, lo->lr_max, lo->ramp == SGD_LRFIND_LINEAR ? "linear" : "exponential",
               (long long)lo->batch_size, (long long)x->seed, count);
    }
    if (x->json) {
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
                printf("{\"lr\":%.9g,\"index\":%zu}", sug[k], idx[k]);
            } else {
                printf("{\"lr\":null,\"why\":");
                cli_json_str(stdout, why[k]);
                printf("}");
            }
        }
        printf("},\"curve\":[");
        for (size_t i = 0; i < count; i++) {
            sgd_lrfind_sample s;
            s.struct_size = sizeof s;
            sgd_lrfind_point(r, i, &s);
            printf("%s{\"lr\":%.9g,\"loss\":", i ? "," : "", s.lr);
            cli_json_num(stdout, s.loss);
            printf(",\"smoothed\":");
            cli_json_num(stdout, s.smoothed);
            printf(",\"fit\":");
            cli_json_num(stdout, s.fit);
            printf(",\"slope\":");
            cli_json_num(stdout, s.slope);
            printf("}");
        }
        printf("],\"plot\":");
        if (plotted)
            cli_json_str(stdout, x->plot);
        else
            printf("null");
        printf(",\"seconds\":%.3f}\n", x->secs);
    } else if (x->csv) {
        printf("step,lr,loss,smoothed,fit,slope\n");
        for (size_t i = 0; i < count; i++) {
            sgd_lrfind_sample s;
            s.struct_size = sizeof s;
            sgd_lrfind_point(r, i, &s);
            printf("%zu,%.9g,%.9g,%.9g,%.9g,%.9g\n", i, s.lr, s.loss, s.smoothed, s.fit, s.slope);
        }
    } else {
        if (x->from != NULL) {
            sgd_lrfind_sample s0, s1;
            s0.struct_size = s1.struct_size = sizeof s0;
            sgd_lrfind_point(r, 0, &s0);
            sgd_lrfind_point(r, count - 1, &s1);
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
            sgd_lrfind_sample s;
            s.struct_size = sizeof s;
            if (!have[k]) {
                printf("  %-9s  -          %s\n", sgd_lrfind_method_name(k), why[k]);
                continue;
            }
            sgd_lrfind_point(r, idx[k], &s);
            printf("  %-9s  %-9s  ", sgd_lrfind_method_name(k), cli_num(b1, sizeof b1, sug[k]));
            if (k == SGD_LRFIND_STEEPEST)
                printf("the loss falls fastest here (%s per decade of lr)", cli_num(b2, sizeof b2, s.slope));
            else if (k == SGD_LRFIND_MINIMUM)
                printf("a tenth of lr %s, where the smoothed loss is lowest (%s)", cli_num(b2, sizeof b2, s.lr),
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
        size_t every = count > 30 ? (count + 29) / 30 : 1;
        printf("\ncurve%s:\n%6s  %10s  %10s  %10s  %10s\n",
               every > 1 ? " (every few points; --csv or --json for all)" : "", "step", "lr", "loss", "smoothed",
               "fit");
        for (size_t i = 0; i < count; i++) {
            if (i % every != 0 && i + 1 != count)
                continue;
            sgd_lrfind_sample s;
            s.struct_size = sizeof s;
            sgd_lrfind_point(r, i, &s);
            printf("%6zu  %10s  %10s  %10s  %10s\n", i, cli_num(b1, sizeof b1, s.lr), cli_num(b2, sizeof b2, s.loss),
                   cli_num(b3, sizeof b3, s.smoothed), s.used ? cli_num(b4, sizeof b4, s.fit) : "-");
        }
        if (plotted)
            printf("\nplot: %s\n", x->plot);
    }
    if (!have[method] && (x->json || x->csv))
        fprintf(stderr, "sgdlab lr-find: no %s suggestion: %s\n", sgd_lrfind_method_name(method), why[method]);
    return rc;
}

int sgdlab_cmd_lrfind(int argc, char **argv)
{
    const char *data = NULL, *model = NULL, *optim = "sgd:momentum=0.9", *plot = NULL, *method_name = NULL;
    const char *from = NULL, *key = NULL, *lr_key = NULL;
    bool json = false, csv = false, progress = true;
    sgd_lrfind_options lo;
    sgd_lrfind_options_init(&lo);
    int64_t seed = 0;
    bool batch_given = false;
    int32_t method = sgd_lrfind_default_method();
    cli_args a;
    cli_args_init(&a, "lr-find", argc, argv);
    const char *name;
    while ((name = cli_next(&a)) != NULL) {
        if (strcmp(name, "help") == 0) {
            sgdlab_help_lrfind();
            return SGDLAB_EXIT_OK;
        } else if (strcmp(name, "data") == 0) {
            cli_string(&a, &data);
        } else if (strcmp(name, "from") == 0) {
            cli_string(&a, &from);
        } else if (strcmp(name, "key") == 0) {
            cli_string(&a, &key);
        } else if (strcmp(name, "lr-key") == 0) {
            cli_string(&a, &lr_key);
        } else if (strcmp(name, "model") == 0) {
            cli_string(&a, &model);
        } else if (strcmp(name, "optim") == 0) {
            cli_string(&a, &optim);
        } else if (strcmp(name, "steps") == 0) {
            cli_int(&a, 8, (int64_t)1 << 24, &lo.steps);
        } else if (strcmp(name, "lr-min") == 0) {
            cli_double(&a, 0, 1e6, true, &lo.lr_min);
        } else if (strcmp(name, "lr-max") == 0) {
            cli_double(&a, 0, 1e6, true, &lo.lr_max);
        } else if (strcmp(name, "linear") == 0) {
            if (cli_flag(&a))
                lo.ramp = SGD_LRFIND_LINEAR;
        } else if (strcmp(name, "batch-size") == 0) {
            cli_int(&a, 1, SGD_MODEL_MAX_BATCH, &lo.batch_size);
            batch_given = true;
        } else if (strcmp(name, "seed") == 0) {
            cli_int(&a, 0, INT64_MAX, &seed);
        } else if (strcmp(name, "method") == 0) {
            if (cli_string(&a, &method_name)) {
                method = -1;
                for (int k = 0; k < SGD_LRFIND_METHOD_COUNT; k++)
                    if (strcmp(method_name, sgd_lrfind_method_name(k)) == 0)
                        method = k;
                if (method < 0)
                    cli_fail(&a, "'%s': must be steepest, minimum or valley", method_name);
            }
        } else if (strcmp(name, "plot") == 0) {
            if (cli_string(&a, &plot) && cli_plot_format("lr-find", plot) == NULL)
                a.error = true;
        } else if (strcmp(name, "json") == 0) {
            if (cli_flag(&a))
                json = true;
        } else if (strcmp(name, "csv") == 0) {
            if (cli_flag(&a))
                csv = true;
        } else if (strcmp(name, "no-progress") == 0) {
            if (cli_flag(&a))
                progress = false;
        } else {
            cli_unknown(&a, name);
        }
    }
    if (a.error)
        return SGDLAB_EXIT_USAGE;
    if (json && csv) {
        fprintf(stderr, "sgdlab lr-find: --json and --csv: choose one\n");
        return SGDLAB_EXIT_USAGE;
    }
    if (!(lo.lr_max > lo.lr_min)) {
        fprintf(stderr, "sgdlab lr-find: --lr-max: %g must be above --lr-min %g\n", lo.lr_max, lo.lr_min);
        return SGDLAB_EXIT_USAGE;
    }
    bool have_gnuplot = plot == NULL || cli_have_gnuplot();
    if (!have_gnuplot)
        cli_no_gnuplot("lr-find", plot);
    lo.seed = (uint64_t)seed;
    if (from == NULL && (key != NULL || lr_key != NULL)) {
        fprintf(stderr, "sgdlab lr-find: --key and --lr-key go with --from\n");
        return SGDLAB_EXIT_USAGE;
    }
    if (from != NULL) {
        if (data != NULL || model != NULL) {
            fprintf(stderr, "sgdlab lr-find: --from reads a range test: --data and --model do not apply\n");
            return SGDLAB_EXIT_USAGE;
        }
        logread_opts ro;
        memset(&ro, 0, sizeof ro);
        ro.key = key;
        ro.lr_key = lr_key;
        double *lrs = NULL, *losses = NULL;
        size_t npts = 0;
        char err[600];
        if (lrfind_read_curve(from, &ro, &lrs, &losses, &npts, err, sizeof err) != 0) {
            fprintf(stderr, "sgdlab lr-find: --from: %s\n", err);
            return SGDLAB_EXIT_USAGE;
        }
        sgd_lrfind *fr = NULL;
        sgd_status fst = sgd_lrfind_analyze(&fr, lrs, losses, npts, &lo, NULL);
        free(lrs);
        free(losses);
        if (fst != SGD_OK) {
            fprintf(stderr, "sgdlab lr-find: --from %s: %s\n", from, sgd_error_last());
            return SGDLAB_EXIT_USAGE;
        }
        report_ctx fx = {json, csv, plot, have_gnuplot, method, NULL, NULL, NULL, NULL, from, &lo, seed, 0.0, NULL};
        int frc = report(fr, &fx);
        sgd_lrfind_free(fr);
        return frc;
    }

    int rc = SGDLAB_EXIT_USAGE;
    cli_data d;
    sgd_model *m = NULL;
    sgd_optim *o = NULL;
    sgd_lrfind *r = NULL;
    char model_spec[512], optim_spec[1024];
    if (cli_is_text(data)) {
        /* Parallel streams of text, read in order, --batch-size of them (32 by default). */
        if (!cli_load_text("lr-find", data, 100, batch_given ? lo.batch_size : 32, 0.05, SGD_TEXT_UTF8, &d))
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
    const char *spec = cli_text_spec("lr-find", &d, model, text_spec, sizeof text_spec);
    if (spec == NULL)
        goto out;
    if (sgd_model_from_spec(&m, spec, &mo, NULL) != SGD_OK) {
        fprintf(stderr, "sgdlab lr-find: --model: %s\n", sgd_error_last());
        goto out;
    }
    /* The ramp sets every step's rate; the spec's lr only has to be valid. */
    if (!cli_optim_with_lr(optim, lo.lr_min, optim_spec, sizeof optim_spec)) {
        fprintf(stderr, "sgdlab lr-find: --optim: spec too long\n");
        goto out;
    }
    if (sgd_optim_new(&o, optim_spec, sgd_model_num_params(m), NULL) != SGD_OK) {
        fprintf(stderr, "sgdlab lr-find: --optim: %s\n", sgd_error_last());
        goto out;
    }
    lrf pr;
    cli_bar_init(&pr.bar, progress);
    if (pr.bar.on) {
        lo.progress = on_progress;
        lo.progress_user = &pr;
    }
    double t0 = cli_now();
    sgd_status st = sgd_lrfind_run(&r, m, o, d.train, &lo, NULL);
    double secs = cli_now() - t0;
    cli_bar_clear(&pr.bar);
    if (st != SGD_OK) {
        fprintf(stderr, "sgdlab lr-find: %s\n", sgd_error_last());
        rc = st == SGD_ESHAPE ? SGDLAB_EXIT_USAGE : SGDLAB_EXIT_FAIL;
        goto out;
    }
    report_ctx x = {json, csv, plot, have_gnuplot, method, optim, model, d.name, d.desc, NULL, &lo, seed, secs,
                    sgd_model_spec(m)};
    rc = report(r, &x);
out:
    sgd_lrfind_free(r);
    sgd_optim_free(o);
    sgd_model_free(m);
    cli_data_free(&d);
    return rc;
}
