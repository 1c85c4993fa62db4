/*
 * sgdlab train: trains a model with an optimizer, a schedule and the guard,
 * prints progress and per-epoch validation metrics, saves the result.
 * SPDX-License-Identifier: MIT
 */
#include "cli.h"
#include "cli_dist.h"
#include "commands.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sgdlab_help_train(void)
{
    printf(
        "usage: sgdlab train [options]\n"
        "\n"
        "Trains a classifier and prints one line per epoch (training loss, validation loss\n"
        "and accuracy, learning rate, rescues, time), every rescue of the guard and every\n"
        "event of the health monitor as it happens, and a summary. With the guard on (the\n"
        "default) a run whose loss spikes, diverges or turns NaN is rolled back to its last\n"
        "good state and continues at half the learning rate.\n"
        "\n"
        "data and model:\n"
        "  --data NAME|DIR|FILES  fashion-mnist (default; Debian package dataset-fashion-mnist,\n"
        "                         or $SGDLAB_FASHION_MNIST_DIR), spirals (generated, no files),\n"
        "                         a directory of IDX files\n"
        "                         ({train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]),\n"
        "                         TRAIN_IMAGES,TRAIN_LABELS[,TEST_IMAGES,TEST_LABELS], or text\n"
        "                         for a character model: text (the fortunes corpus, Debian\n"
        "                         package fortunes) or text:PATH[,PATH...] (files or directories\n"
        "                         of UTF-8 text), the last 5%% held out for validation, cut into\n"
        "                         --batch-size parallel streams of --seq-len characters\n"
        "  --seq-len N            text: characters per sequence (truncated backpropagation\n"
        "                         through time; default 100); --batch-size is the number of\n"
        "                         streams (default 32 for text)\n"
        "  --text-bytes           text: read bytes, not UTF-8 characters\n"
        "  --val-split N          validate on N rows held out of the training set (default 0:\n"
        "                         validate on the test set)\n"
        "  --model SPEC           e.g. 784-256-relu-128-relu-10 (default for the data: that one\n"
        "                         for 28x28 images, 2-64-relu-64-relu-3 for spirals)\n"
        "  --seed N               initialisation and batch order (default 0)\n"
        "\n"
        "optimization:\n"
        "  --optim SPEC           e.g. sgd:lr=0.1,momentum=0.9 or adam:lr=1e-3 (default\n"
        "                         sgd:lr=0.05,momentum=0.9); see docs/optim.md\n"
        "  --lr X                 shorthand: sets the optimizer's lr\n"
        "  --schedule SPEC        e.g. cosine:T_max=938 or onecycle:max_lr=0.1,total_steps=938\n"
        "                         (default: the optimizer's lr, constant); see docs/sched.md\n"
        "  --epochs N             default 2\n"
        "  --batch-size N         default 128\n"
        "  --clip-norm X          clip the gradients' global L2 norm\n"
        "  --patience N           stop after N epochs without a better validation loss\n"
        "  --min-delta X          what counts as better (default 0)\n"
        "  --max-steps N          stop after N training steps of this run (then --save it and\n"
        "                         --resume it later: the run continues exactly)\n");
    printf(
        "\n"
        "data-parallel (docs/dist.md), as mpirun -np N sgdlab train --dist ...:\n"
        "  --dist                 train over the MPI job's processes: each computes its share of\n"
        "                         every batch (--batch-size is the whole batch), the gradients are\n"
        "                         summed, every process takes the same steps; rank 0 reports,\n"
        "                         saves and plots, and resumes for everyone\n"
        "  --dist-options SPEC    e.g. fixed_order=1 (bit-reproducible for a number of processes),\n"
        "                         check_interval=100 (compare parameters), timeout=600 (seconds)\n");
    printf(
        "\n"
        "the guard (docs/trainer.md):\n"
        "  --guard / --no-guard   roll back and lower the learning rate on spikes, divergence\n"
        "                         and NaN (default on); without it a diverged run stops\n"
        "  --guard-factor X       learning-rate factor per rescue (default 0.5)\n"
        "  --max-rescues N        give up after N rescues (default 10)\n"
        "  --guard-interval N     steps between snapshots (default 50)\n"
        "  --guard-skip N         after a rollback, skip the batches within N steps of the spike\n"
        "  --keep-going           do not stop when the monitor declares the run diverged\n"
        "  --trainer SPEC         any trainer option, e.g. drop_last=1,eval_batch_size=1000\n"
        "  --monitor SPEC         monitor options, e.g. divergence_ratio=5 (docs/monitor.md)\n"
        "\n"
        "output:\n"
        "  --save FILE            save the trained model, optimizer, schedule, monitor and\n"
        "                         trainer state to a checkpoint (sgdlab inspect FILE)\n"
        "  --save-every N         also save it every N steps while training (crash-safe: the\n"
        "                         file is always a whole checkpoint)\n"
        "  --resume FILE          continue the run saved in FILE (same options)\n"
        "  --plot FILE            draw the loss and learning rate per step, rescues and events\n"
        "                         marked, to FILE.svg or FILE.png (needs gnuplot: gnuplot-nox)\n"
        "  --sample N             text: print N characters generated by the trained model\n"
        "  --temperature X        text: the sample's temperature (default 0.8)\n"
        "  --json                 one JSON object on standard output instead of the table\n"
        "  --csv                  one CSV row per epoch instead of the table\n"
        "  --no-progress          no progress bar (it is drawn only when stderr is a terminal)\n"
        "  -h, --help             show this help\n"
        "\n"
        "Exit status: 0 when training completed (or stopped early); 1 when it diverged, gave\n"
        "up or failed, or the plot could not be drawn; 2 for bad arguments or data.\n");
}

/* ------------------------------------------------------------ state of the command */

typedef struct evrec {
    int64_t x;       /* batches run when it happened */
    int64_t step;    /* its schedule step */
    int32_t kind;    /* sgd_trainer_event_kind */
    int32_t mkind;   /* monitor kind, or -1 */
    double loss;
} evrec;

typedef struct run {
    /* options */
    const char *data, *model, *optim, *schedule, *trainer_spec, *monitor_spec, *save, *resume, *plot;
    const char *dist_spec;
    bool dist;
    int64_t save_every;
    cli_dist cd;
    double lr;
    int64_t epochs, batch, seed, val_split, patience, max_rescues, guard_interval, guard_skip, max_steps;
    double min_delta, clip_norm, guard_factor;
    bool guard, keep_going, json, csv, progress;
    int64_t seq_len, sample;
    double temperature;
    bool batch_given, text_bytes;
    char *sample_text;
    /* objects */
    cli_data d;
    sgd_model *m;
    sgd_optim *o;
    sgd_sched *s;
    sgd_monitor *mon;
    sgd_trainer *t;
    cli_bar bar;
    bool table;
    /* recorded for the plot and JSON */
    double *loss, *lrs;
    int64_t npts, cap;
    evrec *ev;
    size_t nev, evcap;
    char **msgs;
    int64_t epochs_printed;
    bool ending_printed; /* a gave_up, diverged or stopped event was reported */
} run;

static void add_event(run *r, int64_t x, int64_t step, int32_t kind, int32_t mkind, double loss, const char *msg)
{
    if (r->nev == r->evcap) {
        size_t cap = r->evcap ? 2 * r->evcap : 64;
        evrec *e = realloc(r->ev, cap * sizeof *e);
        char **m = realloc(r->msgs, cap * sizeof *m);
        if (e == NULL || m == NULL) {
            free(e == r->ev ? NULL : e);
            return;
        }
        r->ev = e;
        r->msgs = m;
        r->evcap = cap;
    }
    r->ev[r->nev] = (evrec){x, step, kind, mkind, loss};
    r->msgs[r->nev] = strdup(msg);
    r->nev++;
}

static int64_t batches_run(const sgd_trainer *t)
{
    sgd_trainer_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    sgd_trainer_get_stats(t, &s);
    return s.batches_run;
}

static void print_epoch(run *r, const sgd_trainer_progress *p)
{
    char a[32], b[32], c[32];
    if (r->table && r->d.text != NULL) {
        if (r->epochs_printed == 0)
            printf("%5s  %10s  %9s  %9s  %9s  %9s  %7s  %6s\n", "epoch", "train loss", "train bpc", "val loss",
                   "val bpc", "lr", "rescues", "time");
        sgd_trainer_epoch e;
        memset(&e, 0, sizeof e);
        e.struct_size = sizeof e;
        sgd_trainer_get_epoch(r->t, p->epoch, &e);
        char d1[32], d2[32];
        printf("%5lld  %10s  %9s  %9s  %9s  %9s  %7lld  %5.1fs\n", (long long)(p->epoch + 1),
               cli_num(a, sizeof a, p->train_loss), cli_num(d1, sizeof d1, p->train_bpc),
               isfinite(p->val_loss) ? cli_num(b, sizeof b, p->val_loss) : "-",
               isfinite(p->val_bpc) ? cli_num(d2, sizeof d2, p->val_bpc) : "-", cli_num(c, sizeof c, p->lr),
               (long long)p->rescues, e.seconds);
        fflush(stdout);
    } else if (r->table) {
        if (r->epochs_printed == 0)
            printf("%5s  %10s  %9s  %8s  %9s  %7s  %6s\n", "epoch", "train loss", r->d.val != NULL ? (strcmp(r->d.val_name, "test") == 0 ? "test loss" : "val loss") : "-",
                   r->d.val != NULL ? (strcmp(r->d.val_name, "test") == 0 ? "test acc" : "val acc") : "-", "lr",
                   "rescues", "time");
        sgd_trainer_epoch e;
        e.struct_size = sizeof e;
        sgd_trainer_get_epoch(r->t, p->epoch, &e);
        char acc[32];
        if (isfinite(p->val_accuracy))
            snprintf(acc, sizeof acc, "%.2f%%", 100 * p->val_accuracy);
        else
            snprintf(acc, sizeof acc, "-");
        printf("%5lld  %10s  %9s  %8s  %9s  %7lld  %5.1fs\n", (long long)(p->epoch + 1),
               cli_num(a, sizeof a, p->train_loss), isfinite(p->val_loss) ? cli_num(b, sizeof b, p->val_loss) : "-",
               acc, cli_num(c, sizeof c, p->lr), (long long)p->rescues, e.seconds);
        fflush(stdout);
    } else if (r->csv) {
        if (r->epochs_printed == 0)
            printf("epoch,train_loss,val_loss,val_accuracy,lr,rescues,step,train_bpc,val_bpc\n");
        printf("%lld,%.9g,%.9g,%.9g,%.9g,%lld,%lld,%.9g,%.9g\n", (long long)(p->epoch + 1), p->train_loss,
               p->val_loss, p->val_accuracy, p->lr, (long long)p->rescues, (long long)p->step, p->train_bpc,
               p->val_bpc);
        fflush(stdout);
    }
    r->epochs_printed++;
}

static int32_t on_progress(const sgd_trainer_progress *p, void *user)
{
    run *r = user;
    if (p->phase == SGD_TRAINER_PHASE_STEP) {
        if (r->npts == r->cap) {
            int64_t cap = r->cap ? 2 * r->cap : 4096;
            double *l = realloc(r->loss, (size_t)cap * sizeof *l);
            if (l != NULL)
                r->loss = l;
            double *q = realloc(r->lrs, (size_t)cap * sizeof *q);
            if (q != NULL)
                r->lrs = q;
            if (l == NULL || q == NULL)
                return 0;
            r->cap = cap;
        }
        int64_t x = batches_run(r->t);
        /* Fill any batch that made no report (skipped), so index = batches run - 1. */
        while (r->npts < x - 1) {
            r->loss[r->npts] = NAN;
            r->lrs[r->npts] = p->lr;
            r->npts++;
            if (r->npts == r->cap)
                return 0;
        }
        r->loss[r->npts] = p->loss;
        r->lrs[r->npts] = p->lr;
        r->npts++;
        if (r->bar.on) {
            char text[200], a[32], b[32];
            snprintf(text, sizeof text, "epoch %lld/%lld  batch %lld/%lld  loss %s  lr %s  %.0f samples/s  ETA %.0fs",
                     (long long)(p->epoch + 1), (long long)p->epochs, (long long)p->batch, (long long)p->batches,
                     cli_num(a, sizeof a, p->smoothed_loss), cli_num(b, sizeof b, p->lr), p->samples_per_sec,
                     p->eta > 0 ? p->eta : 0);
            cli_bar_draw(&r->bar, p->fraction, text, false);
        }
    } else if (p->phase == SGD_TRAINER_PHASE_EPOCH_END) {
        cli_bar_clear(&r->bar);
        print_epoch(r, p);
    } else {
        cli_bar_clear(&r->bar);
    }
    return 0;
}

static int32_t on_event(const sgd_trainer_event *ev, double *lr_scale, void *user)
{
    (void)lr_scale;
    run *r = user;
    int64_t x = batches_run(r->t);
    char line[700];
    if (ev->kind == SGD_TRAINER_EVENT_MONITOR) {
        const sgd_monitor_event *m = ev->monitor;
        if (m->kind == SGD_MONITOR_PLATEAU)
            return ev->action; /* informational and frequent in long runs: kept out of the report */
        snprintf(line, sizeof line, "monitor: step %lld: %s (%s %.3g, threshold %.3g); suggests: %s", (long long)ev->step,
                 sgd_monitor_kind_name(m->kind), m->detail, m->statistic, m->threshold, m->remedy);
        add_event(r, x, ev->step, ev->kind, m->kind, m->loss, line);
    } else {
        snprintf(line, sizeof line, "%s: %s", sgd_trainer_event_name(ev->kind), ev->message);
        add_event(r, x, ev->step, ev->kind, -1, NAN, line);
        if (ev->kind == SGD_TRAINER_EVENT_GAVE_UP || ev->kind == SGD_TRAINER_EVENT_DIVERGED ||
            ev->kind == SGD_TRAINER_EVENT_STOPPED)
            r->ending_printed = true;
    }
    if (r->table) {
        cli_bar_clear(&r->bar);
        printf("%s\n", line);
        fflush(stdout);
    }
    return ev->action;
}

/* ------------------------------------------------------------ checkpoint */

static bool save_checkpoint(run *r)
{
    /* The trainer brings its model, optimizer, schedule and monitor. */
    sgd_checkpoint_parts parts;
    sgd_checkpoint_parts_init(&parts);
    parts.trainer = r->t;
    return cli_save_checkpoint("train", r->save, &parts, &r->d); /* with the vocabulary of text */
}

static bool resume_checkpoint(run *r)
{
    sgd_checkpoint_parts parts;
    sgd_checkpoint_parts_init(&parts);
    parts.trainer = r->t;
    return cli_load_checkpoint("train", r->resume, &parts, &r->d); /* text: the same vocabulary */
}

/*
 * --save-every: trains in budgets of N steps, rank 0 saving after each (the
 * other processes wait for it: a failed save stops every process).
 */
static sgd_status fit_saving(run *r)
{
    int64_t left = r->max_steps; /* 0: no limit */
    for (;;) {
        int64_t chunk = r->max_steps > 0 && left < r->save_every ? left : r->save_every;
        sgd_status st = sgd_trainer_fit(r->t, chunk);
        left -= r->max_steps > 0 ? chunk : 0;
        if (st != SGD_OK || sgd_trainer_stop_reason(r->t) != SGD_TRAINER_BUDGET || (r->max_steps > 0 && left == 0))
            return st;
        bool ok = !cli_dist_root(&r->cd) || save_checkpoint(r);
        if (!cli_dist_all_ok(&r->cd, ok))
            return sgd_error_set(SGD_EIO, "--save-every: the checkpoint could not be written (see above)");
    }
}

/* ------------------------------------------------------------ plot */

static bool draw_plot(run *r, const char *format)
{
    cli_plot p;
    if (!cli_plot_begin(&p, "train"))
        return false;
    char dpath[300];
    FILE *f = cli_plot_file(&p, 0, dpath, sizeof dpath);
    bool ok = f != NULL;
    double ema = NAN, lrlo = INFINITY, lrhi = 0, lmin = INFINITY, lmax = 0;
    for (int64_t i = 0; i < r->npts; i++) {
        if (r->lrs[i] > 0 && isfinite(r->lrs[i])) {
            lrlo = r->lrs[i] < lrlo ? r->lrs[i] : lrlo;
            lrhi = r->lrs[i] > lrhi ? r->lrs[i] : lrhi;
        }
        if (r->loss[i] > 0 && isfinite(r->loss[i])) {
            lmin = r->loss[i] < lmin ? r->loss[i] : lmin;
            lmax = r->loss[i] > lmax ? r->loss[i] : lmax;
        }
    }
    if (lmax > 0 && r->npts > 0 && isfinite(r->loss[0]) && lmax > 10 * r->loss[0])
        lmax = 10 * r->loss[0]; /* a blow-up leaves the plot rather than flatten the rest */
    for (int64_t i = 0; ok && i < r->npts; i++) {
        double l = r->loss[i];
        if (isfinite(l) && l > 0)
            ema = isnan(ema) ? log(l) : 0.9 * ema + 0.1 * log(l);
        fprintf(f, "%lld %.9g %.9g %.9g\n", (long long)(i + 1), isfinite(l) ? l : NAN, isnan(ema) ? NAN : exp(ema),
                r->lrs[i]);
    }
    if (f != NULL)
        fclose(f);
    if (!ok) {
        fprintf(stderr, "sgdlab train: --plot: cannot write the plot's data in %s\n", p.dir);
        cli_plot_end(&p);
        return false;
    }
    double acc = NAN;
    sgd_trainer_epoch e;
    e.struct_size = sizeof e;
    for (int64_t k = r->epochs - 1; k >= 0; k--)
        if (sgd_trainer_get_epoch(r->t, k, &e) == SGD_OK && e.done) {
            acc = e.val_accuracy;
            break;
        }
    sgd_trainer_stats ts;
    memset(&ts, 0, sizeof ts);
    ts.struct_size = sizeof ts;
    sgd_trainer_get_stats(r->t, &ts);
    char title[800], accs[32], t1[1700], outq[2100];
    if (isfinite(acc))
        snprintf(accs, sizeof accs, "%.1f%%", 100 * acc);
    else
        snprintf(accs, sizeof accs, "n/a");
    snprintf(title, sizeof title, "%s, %s, batch %lld, guard %s: %s accuracy %s after the last epoch, %lld rescue%s",
             r->model, r->optim, (long long)r->batch, r->guard ? "on" : "off", r->d.val_name, accs,
             (long long)ts.rescues, ts.rescues == 1 ? "" : "s");
    char *script = malloc(16384);
    if (script == NULL) {
        cli_plot_end(&p);
        return false;
    }
    int n = snprintf(script, 16384,
                     "%s"
                     "set output '%s'\n"
                     "set title '%s' noenhanced\n"
                     "set xlabel 'batches run (replays after rollbacks included)'\n"
                     "set ylabel 'training loss (log scale)'\n"
                     "set y2label 'learning rate (log scale)'\n"
                     "set logscale y\nset logscale y2\nset ytics nomirror\nset y2tics\n"
                     "set key top right\nset grid\n"
                     "set datafile missing 'nan'\n",
                     cli_plot_terminal(format), cli_gp_str(outq, sizeof outq, r->plot), cli_gp_str(t1, sizeof t1, title));
    char tics[1024];
    if (lrhi > 0)
        n += snprintf(script + n, 16384 - (size_t)n, "set y2range [%.6g:%.6g]\n%s", lrlo / 3, lrhi * 3,
                      cli_log_tics(tics, sizeof tics, "y2", lrlo / 3, lrhi * 3));
    if (lmax > 0)
        n += snprintf(script + n, 16384 - (size_t)n, "set yrange [%.6g:%.6g]\n%s", lmin * 0.8, lmax * 1.25,
                      cli_log_tics(tics, sizeof tics, "y", lmin * 0.8, lmax * 1.25));
    /* Rescues and stops as dashed vertical lines, monitor events as labels (the first 60). */
    size_t shown = 0;
    for (size_t k = 0; k < r->nev && n < 16384 - 600 && shown < 60; k++) {
        const evrec *ev = &r->ev[k];
        if (ev->kind == SGD_TRAINER_EVENT_MONITOR && ev->mkind == SGD_MONITOR_STAGNATION)
            continue;
        if (ev->kind == SGD_TRAINER_EVENT_MONITOR)
            n += snprintf(script + n, 16384 - (size_t)n,
                          "set label '%s' at %lld, graph 0.03 rotate by 90 left tc rgb '#9467bd' noenhanced\n",
                          sgd_monitor_kind_name(ev->mkind), (long long)ev->x);
        else
            n += snprintf(script + n, 16384 - (size_t)n,
                          "set arrow from %lld, graph 0 to %lld, graph 1 nohead lc rgb '#d62728' dt 2 lw 1.5\n",
                          (long long)ev->x, (long long)ev->x);
        shown++;
    }
    n += snprintf(script + n, 16384 - (size_t)n,
                  "plot '%s' using 1:2 with lines lc rgb '#c8c8c8' title 'loss per batch', \\\n"
                  "     '' using 1:3 with lines lw 2 lc rgb '#1f77b4' title 'loss (moving average)', \\\n"
                  "     '' using 1:4 axes x1y2 with lines lw 2 lc rgb '#ff7f0e' title 'learning rate', \\\n"
                  "     NaN with lines lc rgb '#d62728' dt 2 lw 1.5 title 'rescue (rollback) or stop'\n",
                  dpath);
    bool run_ok = cli_plot_run(&p, "train", script);
    free(script);
    cli_plot_end(&p);
    return run_ok;
}

/* ------------------------------------------------------------ the command */

static bool parse(run *r, int argc, char **argv, int *help)
{
    cli_args a;
    cli_args_init(&a, "train", argc, argv);
    const char *name;
    while ((name = cli_next(&a)) != NULL) {
        if (strcmp(name, "help") == 0) {
            *help = 1;
            return true;
        } else if (strcmp(name, "data") == 0) {
            cli_string(&a, &r->data);
        } else if (strcmp(name, "model") == 0) {
            cli_string(&a, &r->model);
        } else if (strcmp(name, "optim") == 0) {
            cli_string(&a, &r->optim);
        } else if (strcmp(name, "lr") == 0) {
            cli_double(&a, 0, 1e6, true, &r->lr);
        } else if (strcmp(name, "schedule") == 0) {
            cli_string(&a, &r->schedule);
        } else if (strcmp(name, "epochs") == 0) {
            cli_int(&a, 1, 1 << 20, &r->epochs);
        } else if (strcmp(name, "batch-size") == 0) {
            cli_int(&a, 1, SGD_MODEL_MAX_BATCH, &r->batch);
            r->batch_given = true;
        } else if (strcmp(name, "seed") == 0) {
            cli_int(&a, 0, INT64_MAX, &r->seed);
        } else if (strcmp(name, "val-split") == 0) {
            cli_int(&a, 1, INT64_MAX, &r->val_split);
        } else if (strcmp(name, "clip-norm") == 0) {
            cli_double(&a, 0, 1e30, false, &r->clip_norm);
        } else if (strcmp(name, "patience") == 0) {
            cli_int(&a, 1, 1 << 20, &r->patience);
        } else if (strcmp(name, "max-steps") == 0) {
            cli_int(&a, 1, INT64_MAX, &r->max_steps);
        } else if (strcmp(name, "min-delta") == 0) {
            cli_double(&a, 0, 1e30, false, &r->min_delta);
        } else if (strcmp(name, "guard") == 0) {
            if (cli_flag(&a))
                r->guard = true;
        } else if (strcmp(name, "no-guard") == 0) {
            if (cli_flag(&a))
                r->guard = false;
        } else if (strcmp(name, "guard-factor") == 0) {
            cli_double(&a, 0, 1, true, &r->guard_factor);
        } else if (strcmp(name, "max-rescues") == 0) {
            cli_int(&a, 0, (int64_t)1 << 31, &r->max_rescues);
        } else if (strcmp(name, "guard-interval") == 0) {
            cli_int(&a, 1, (int64_t)1 << 40, &r->guard_interval);
        } else if (strcmp(name, "guard-skip") == 0) {
            cli_int(&a, 0, (int64_t)1 << 40, &r->guard_skip);
        } else if (strcmp(name, "keep-going") == 0) {
            if (cli_flag(&a))
                r->keep_going = true;
        } else if (strcmp(name, "trainer") == 0) {
            cli_string(&a, &r->trainer_spec);
        } else if (strcmp(name, "monitor") == 0) {
            cli_string(&a, &r->monitor_spec);
        } else if (strcmp(name, "save") == 0) {
            cli_string(&a, &r->save);
        } else if (strcmp(name, "resume") == 0) {
            cli_string(&a, &r->resume);
        } else if (strcmp(name, "plot") == 0) {
            if (cli_string(&a, &r->plot) && cli_plot_format("train", r->plot) == NULL)
                a.error = true;
        } else if (strcmp(name, "json") == 0) {
            if (cli_flag(&a))
                r->json = true;
        } else if (strcmp(name, "csv") == 0) {
            if (cli_flag(&a))
                r->csv = true;
        } else if (strcmp(name, "no-progress") == 0) {
            if (cli_flag(&a))
                r->progress = false;
        } else if (strcmp(name, "seq-len") == 0) {
            cli_int(&a, 1, 1 << 24, &r->seq_len);
        } else if (strcmp(name, "text-bytes") == 0) {
            if (cli_flag(&a))
                r->text_bytes = true;
        } else if (strcmp(name, "sample") == 0) {
            cli_int(&a, 0, 1 << 20, &r->sample);
        } else if (strcmp(name, "temperature") == 0) {
            cli_double(&a, 0, 100, false, &r->temperature);
        } else if (strcmp(name, "dist") == 0) {
            if (cli_flag(&a))
                r->dist = true;
        } else if (strcmp(name, "dist-options") == 0) {
            cli_string(&a, &r->dist_spec);
        } else if (strcmp(name, "save-every") == 0) {
            cli_int(&a, 1, INT64_MAX, &r->save_every);
        } else {
            cli_unknown(&a, name);
        }
    }
    if (!a.error && r->save_every > 0 && r->save == NULL) {
        fprintf(stderr, "sgdlab train: --save-every: needs --save FILE\n");
        a.error = true;
    }
    if (!a.error && r->dist_spec != NULL && !r->dist) {
        fprintf(stderr, "sgdlab train: --dist-options: needs --dist\n");
        a.error = true;
    }
    if (!a.error && r->json && r->csv) {
        fprintf(stderr, "sgdlab train: --json and --csv: choose one\n");
        a.error = true;
    }
    return !a.error;
}

static void free_run(run *r)
{
    sgd_trainer_free(r->t);
    sgd_monitor_free(r->mon);
    sgd_sched_free(r->s);
    sgd_optim_free(r->o);
    sgd_model_free(r->m);
    cli_data_free(&r->d);
    free(r->loss);
    free(r->lrs);
    free(r->sample_text);
    for (size_t k = 0; k < r->nev; k++)
        free(r->msgs[k]);
    free(r->msgs);
    free(r->ev);
    cli_dist_stop(&r->cd); /* after the trainer: it used the communicator */
}

int sgdlab_cmd_train(int argc, char **argv)
{
    run r;
    memset(&r, 0, sizeof r);
    r.epochs = 2;
    r.batch = 128;
    r.guard = true;
    r.progress = true;
    r.clip_norm = -1;
    r.guard_factor = 0.5;
    r.max_rescues = 10;
    r.guard_interval = 50;
    r.lr = NAN;
    r.optim = "sgd:lr=0.05,momentum=0.9";
    r.seq_len = 100;
    r.temperature = 0.8;
    int help = 0;
    if (!parse(&r, argc, argv, &help))
        return SGDLAB_EXIT_USAGE;
    if (help) {
        sgdlab_help_train();
        return SGDLAB_EXIT_OK;
    }
    if (!cli_dist_check_launch("train", r.dist, true) || (r.dist && !cli_dist_start("train", r.dist_spec, &r.cd)))
        return SGDLAB_EXIT_USAGE;
    r.table = !r.json && !r.csv;
    int rc = SGDLAB_EXIT_USAGE;
    char model_spec[512], optim_spec[1024];
    double t0 = cli_now();
    bool have_gnuplot = r.plot == NULL || cli_have_gnuplot();
    if (!have_gnuplot)
        cli_no_gnuplot("train", r.plot);

    if (cli_is_text(r.data)) {
        if (!r.batch_given)
            r.batch = 32;
        if (r.val_split > 0) {
            fprintf(stderr, "sgdlab train: --val-split: text data holds its last 5%% out for validation\n");
            goto out;
        }
        if (!cli_load_text("train", r.data, r.seq_len, r.batch, 0.05, r.text_bytes ? SGD_TEXT_BYTES : SGD_TEXT_UTF8,
                           &r.d))
            goto out;
    } else if (!cli_load_data("train", r.data, r.val_split, (uint64_t)r.seed, &r.d)) {
        goto out;
    }
    if (r.d.text == NULL && r.sample > 0) {
        fprintf(stderr, "sgdlab train: --sample: only for text data (--data text)\n");
        goto out;
    }
    if (r.model == NULL) {
        cli_default_model(&r.d, model_spec, sizeof model_spec);
        r.model = model_spec;
    }
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.seed = (uint64_t)r.seed;
    mo.max_batch = r.batch;
    char text_spec[1024];
    const char *spec = cli_text_spec("train", &r.d, r.model, text_spec, sizeof text_spec);
    if (spec == NULL)
        goto out;
    if (sgd_model_from_spec(&r.m, spec, &mo, NULL) != SGD_OK) {
        fprintf(stderr, "sgdlab train: --model: %s\n", sgd_error_last());
        goto out;
    }
    if (!isnan(r.lr)) {
        if (!cli_optim_with_lr(r.optim, r.lr, optim_spec, sizeof optim_spec)) {
            fprintf(stderr, "sgdlab train: --optim: spec too long\n");
            goto out;
        }
        r.optim = optim_spec;
    }
    if (sgd_optim_new(&r.o, r.optim, sgd_model_num_params(r.m), NULL) != SGD_OK) {
        fprintf(stderr, "sgdlab train: --optim: %s\n", sgd_error_last());
        goto out;
    }
    if (r.schedule != NULL) {
        double base;
        sgd_optim_get(r.o, "lr", &base);
        if (sgd_sched_new(&r.s, r.schedule, base, NULL) != SGD_OK) {
            fprintf(stderr, "sgdlab train: --schedule: %s\n", sgd_error_last());
            goto out;
        }
    }
    sgd_monitor_options mono;
    sgd_monitor_options_init(&mono);
    if (r.monitor_spec != NULL && sgd_monitor_options_parse(&mono, r.monitor_spec) != SGD_OK) {
        fprintf(stderr, "sgdlab train: --monitor: %s\n", sgd_error_last());
        goto out;
    }
    if (sgd_monitor_new(&r.mon, &mono, NULL) != SGD_OK) {
        fprintf(stderr, "sgdlab train: --monitor: %s\n", sgd_error_last());
        goto out;
    }
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    to.epochs = r.epochs;
    to.batch_size = r.batch;
    to.seed = (uint64_t)r.seed;
    to.guard = r.guard;
    to.guard_factor = r.guard_factor;
    to.guard_max_rescues = r.max_rescues;
    to.guard_interval = r.guard_interval;
    to.guard_skip = r.guard_skip;
    to.stop_on_divergence = !r.keep_going;
    to.patience = r.patience;
    to.min_delta = r.min_delta;
    to.clip_norm = r.clip_norm;
    to.progress_interval = 1;
    if (r.d.text != NULL)
        to.shuffle = 0; /* parallel streams, read in order: each batch continues the last */
    if (r.trainer_spec != NULL && sgd_trainer_options_parse(&to, r.trainer_spec) != SGD_OK) {
        fprintf(stderr, "sgdlab train: --trainer: %s\n", sgd_error_last());
        goto out;
    }
    if (sgd_trainer_new(&r.t, r.m, r.o, r.s, r.mon, r.d.train, r.d.val, &to, NULL) != SGD_OK) {
        fprintf(stderr, "sgdlab train: %s\n", sgd_error_last());
        goto out;
    }
    r.epochs = to.epochs;
    r.batch = to.batch_size;
    r.guard = to.guard != 0;
    /* Distributed: rank 0 resumes, and sgd_dist_attach() gives its state to every process. */
    if (r.resume != NULL && cli_dist_root(&r.cd) && !resume_checkpoint(&r))
        goto out;
    if (!cli_dist_setup_done("train", &r.cd, true))
        goto out;
    if (cli_dist_on(&r.cd) && !cli_dist_attach("train", &r.cd, r.t)) {
        rc = SGDLAB_EXIT_FAIL;
        goto out;
    }
    sgd_trainer_set_progress(r.t, on_progress, &r);
    sgd_trainer_set_event_callback(r.t, on_event, &r);
    cli_bar_init(&r.bar, r.progress);

    if (r.table) {
        printf("sgdlab train: %s on %s\n", r.model, r.d.desc);
        char a[32];
        printf("optimizer %s, %s, batch %lld, %lld epoch%s, seed %lld, guard %s\n", r.optim,
               r.schedule != NULL ? r.schedule : "constant learning rate", (long long)r.batch, (long long)r.epochs,
               r.epochs == 1 ? "" : "s", (long long)r.seed, r.guard ? "on" : "off");
        (void)a;
        if (cli_dist_on(&r.cd))
            printf("data-parallel: %s; each takes %lld of the %lld rows of a batch\n", r.cd.desc,
                   (long long)((r.batch + r.cd.size - 1) / r.cd.size), (long long)r.batch);
        if (r.resume != NULL) {
            sgd_trainer_stats ts;
            memset(&ts, 0, sizeof ts);
            ts.struct_size = sizeof ts;
            sgd_trainer_get_stats(r.t, &ts);
            printf("resumed from %s at step %lld (epoch %lld, batch %lld)\n", r.resume, (long long)ts.step,
                   (long long)ts.epoch + 1, (long long)ts.batch);
        }
        printf("\n");
        fflush(stdout);
    }
    double t_fit = cli_now();
    sgd_status st = r.save_every > 0 ? fit_saving(&r) : sgd_trainer_fit(r.t, r.max_steps);
    double fit_seconds = cli_now() - t_fit;
    cli_bar_clear(&r.bar);
    char errmsg[1024];
    snprintf(errmsg, sizeof errmsg, "%s", st != SGD_OK ? sgd_error_last() : "");
    rc = st == SGD_OK ? SGDLAB_EXIT_OK : SGDLAB_EXIT_FAIL;

    sgd_trainer_stats ts;
    memset(&ts, 0, sizeof ts);
    ts.struct_size = sizeof ts;
    sgd_trainer_get_stats(r.t, &ts);
    double test_loss = NAN, test_acc = NAN;
    if (r.d.test != NULL) { /* at the optimizer's evaluation point (schedule-free: the average), then back */
        sgd_optim_eval_point(r.o, sgd_model_params(r.m), 1);
        sgd_model_evaluate(r.m, r.d.test, 0, &test_loss, &test_acc);
        sgd_optim_eval_point(r.o, sgd_model_params(r.m), 0);
    }
    else if (r.d.text != NULL && r.d.val != NULL)
        sgd_model_evaluate(r.m, r.d.val, 0, &test_loss, &test_acc); /* next-character accuracy on the held-out end */
    int32_t verdict = 0;
    sgd_monitor_get_verdict(r.mon, &verdict);
    /* Text: the last epoch's validation in bits per character, and a sample of what the model writes. */
    double val_bpc = NAN;
    if (r.d.text != NULL) {
        sgd_trainer_epoch e;
        memset(&e, 0, sizeof e);
        e.struct_size = sizeof e;
        for (int64_t k = r.epochs - 1; k >= 0; k--)
            if (sgd_trainer_get_epoch(r.t, k, &e) == SGD_OK && e.done) {
                val_bpc = e.val_bpc;
                break;
            }
        if (r.sample > 0 && !cli_text_sample(NULL, r.m, sgd_text_vocab(r.d.text), r.sample, r.temperature,
                                             (uint64_t)r.seed, NULL, &r.sample_text))
            fprintf(stderr, "sgdlab train: --sample: %s\n", sgd_error_last());
    }
    bool saved = false, plotted = false;
    if (r.save != NULL) {
        /* Distributed: rank 0 writes; every process learns whether it could. */
        saved = cli_dist_all_ok(&r.cd, !cli_dist_root(&r.cd) || save_checkpoint(&r));
        if (!saved)
            rc = SGDLAB_EXIT_FAIL;
    }
    bool plot_here = r.plot != NULL && cli_dist_root(&r.cd);
    if (plot_here && have_gnuplot) {
        const char *fmt = cli_plot_format("train", r.plot);
        plotted = fmt != NULL && draw_plot(&r, fmt);
    }
    if (plot_here && !plotted)
        rc = SGDLAB_EXIT_FAIL;
    char a[32], b[32], c[32];
    if (r.table) {
        if (st != SGD_OK && !r.ending_printed)
            printf("\nerror: %s\n", errmsg);
        printf("\nresult: %s after %lld step%s (%lld batches run) in %.1f s; %s accuracy %s; monitor verdict %s; "
               "%lld rescue%s; lr now %s (guard scale %s)\n",
               sgd_trainer_stop_name(sgd_trainer_stop_reason(r.t)), (long long)ts.step, ts.step == 1 ? "" : "s",
               (long long)ts.batches_run, fit_seconds,
               r.d.text != NULL ? "next-character" : r.d.test != NULL ? "test" : "training",
               isfinite(test_acc) ? (snprintf(a, sizeof a, "%.2f%%", 100 * test_acc), a) : "n/a",
               sgd_monitor_verdict_name(verdict), (long long)ts.rescues, ts.rescues == 1 ? "" : "s",
               cli_num(b, sizeof b, ts.lr), cli_num(c, sizeof c, ts.guard_scale));
        if (verdict == SGD_MONITOR_STAGNANT) {
            /* The monitor's stagnation advice ("raise the rate") is wrong for a run that blew up first. */
            for (size_t k = 0; k < r.nev; k++) {
                int32_t mk = r.ev[k].mkind;
                if (r.ev[k].kind == SGD_TRAINER_EVENT_MONITOR &&
                    (mk == SGD_MONITOR_SPIKE || mk == SGD_MONITOR_DIVERGENCE || mk == SGD_MONITOR_NONFINITE ||
                     mk == SGD_MONITOR_OSCILLATION)) {
                    printf("note: the loss blew up (%s at step %lld) before it stopped improving: a learning rate "
                           "too high can leave the loss flat too (a network that stopped learning); lower it%s\n",
                           sgd_monitor_kind_name(mk), (long long)r.ev[k].step, r.guard ? "" : ", or train with the guard");
                    break;
                }
            }
        }
        if (r.d.text != NULL && isfinite(val_bpc))
            printf("validation: %.3f bits per character (perplexity %.2f)\n", val_bpc, exp(val_bpc * log(2.0)));
        if (r.sample_text != NULL) {
            printf("sample (%lld characters, temperature %g):\n    | ", (long long)r.sample, r.temperature);
            for (const char *q = r.sample_text; *q; q++) {
                putchar(*q);
                if (*q == '\n' && q[1] != '\0')
                    fputs("    | ", stdout);
            }
            putchar('\n');
        }
        if (cli_dist_on(&r.cd)) {
            double sum_s;
            int64_t sums;
            cli_dist_sum_time(&r.cd, &sum_s, &sums);
            printf("data-parallel: %lld gradient sums took %.1f%% of the training time (%.3g ms each, waiting for "
                   "the other processes included)\n",
                   (long long)sums, fit_seconds > 0 ? 100 * sum_s / fit_seconds : 0.0,
                   sums > 0 ? 1e3 * sum_s / (double)sums : 0.0);
        }
        if (saved)
            printf("saved: %s\n", r.save);
        if (plotted)
            printf("plot: %s\n", r.plot);
    } else if (r.json) {
        printf("{\"command\":\"train\",\"model\":");
        cli_json_str(stdout, sgd_model_spec(r.m));
        printf(",\"optimizer\":");
        cli_json_str(stdout, r.optim);
        printf(",\"schedule\":");
        if (r.schedule)
            cli_json_str(stdout, r.schedule);
        else
            printf("null");
        printf(",\"data\":");
        cli_json_str(stdout, r.d.name);
        printf(",\"batch_size\":%lld,\"seed\":%lld,\"guard\":%s,", (long long)r.batch, (long long)r.seed,
               r.guard ? "true" : "false");
        if (cli_dist_on(&r.cd))
            printf("\"processes\":%d,", r.cd.size);
        printf("\"epochs\":[");
        bool first = true;
        for (int64_t e = 0; e < r.epochs; e++) {
            sgd_trainer_epoch ep;
            ep.struct_size = sizeof ep;
            if (sgd_trainer_get_epoch(r.t, e, &ep) != SGD_OK || !ep.done)
                continue;
            printf("%s{\"epoch\":%lld,\"train_loss\":", first ? "" : ",", (long long)(e + 1));
            first = false;
            cli_json_num(stdout, ep.train_loss);
            printf(",\"val_loss\":");
            cli_json_num(stdout, ep.val_loss);
            printf(",\"val_accuracy\":");
            cli_json_num(stdout, ep.val_accuracy);
            printf(",\"lr\":");
            cli_json_num(stdout, ep.lr);
            printf(",\"rescues\":%lld,\"seconds\":", (long long)ep.rescues);
            cli_json_num(stdout, ep.seconds);
            printf(",\"train_bpc\":");
            cli_json_num(stdout, ep.train_bpc);
            printf(",\"val_bpc\":");
            cli_json_num(stdout, ep.val_bpc);
            printf(",\"train_perplexity\":");
            cli_json_num(stdout, ep.train_perplexity);
            printf(",\"val_perplexity\":");
            cli_json_num(stdout, ep.val_perplexity);
            printf("}");
        }
        printf("],\"events\":[");
        for (size_t k = 0; k < r.nev; k++) {
            printf("%s{\"batch\":%lld,\"kind\":", k ? "," : "", (long long)r.ev[k].x);
            cli_json_str(stdout, r.ev[k].kind == SGD_TRAINER_EVENT_MONITOR ? sgd_monitor_kind_name(r.ev[k].mkind)
                                                                          : sgd_trainer_event_name(r.ev[k].kind));
            printf(",\"message\":");
            cli_json_str(stdout, r.msgs[k]);
            printf("}");
        }
        printf("],\"result\":{\"status\":");
        cli_json_str(stdout, st == SGD_OK ? "ok" : sgd_status_str(st));
        printf(",\"stop_reason\":");
        cli_json_str(stdout, sgd_trainer_stop_name(sgd_trainer_stop_reason(r.t)));
        printf(",\"error\":");
        if (st != SGD_OK)
            cli_json_str(stdout, errmsg);
        else
            printf("null");
        printf(",\"steps\":%lld,\"batches_run\":%lld,\"rescues\":%lld,\"verdict\":", (long long)ts.step,
               (long long)ts.batches_run, (long long)ts.rescues);
        cli_json_str(stdout, sgd_monitor_verdict_name(verdict));
        printf(",\"lr\":");
        cli_json_num(stdout, ts.lr);
        printf(",\"guard_scale\":");
        cli_json_num(stdout, ts.guard_scale);
        printf(",\"test_loss\":");
        cli_json_num(stdout, test_loss);
        printf(",\"test_accuracy\":");
        cli_json_num(stdout, test_acc);
        printf(",\"seconds\":");
        cli_json_num(stdout, fit_seconds);
        printf(",\"val_bpc\":");
        cli_json_num(stdout, val_bpc);
        printf(",\"sample\":");
        if (r.sample_text != NULL)
            cli_json_str(stdout, r.sample_text);
        else
            printf("null");
        printf(",\"saved\":");
        if (saved)
            cli_json_str(stdout, r.save);
        else
            printf("null");
        printf(",\"plot\":");
        if (plotted)
            cli_json_str(stdout, r.plot);
        else
            printf("null");
        printf("}}\n");
    } else {
        if (st != SGD_OK)
            fprintf(stderr, "sgdlab train: %s\n", errmsg);
    }
    (void)t0;
out:
    free_run(&r);
    return rc;
}
