/*
 * The case studies' shared runner (case_run.h): the four trials' records,
 * running them side by side on threads (each with one BLAS thread) under one
 * progress bar, and the parts of the table, the story, the JSON and the plot
 * that sgdlab case image and sgdlab case text write alike.
 * SPDX-License-Identifier: MIT
 */
#include "case_run.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- trials */

bool case_trial_init(case_trial *t, const char *name, double lr, bool guard, int64_t epochs, int64_t steps_planned)
{
    t->name = name;
    t->lr = lr;
    t->clip = -1;
    t->guard = guard;
    t->epochs = epochs;
    t->steps_planned = steps_planned;
    t->first_alarm = -1;
    t->verdict = -1;
    snprintf(t->sched, sizeof t->sched, "constant");
    snprintf(t->sched_text, sizeof t->sched_text, "constant");
    t->loss = malloc((size_t)steps_planned * sizeof *t->loss);
    if (t->loss == NULL)
        return false;
    for (int64_t k = 0; k < steps_planned; k++)
        t->loss[k] = NAN;
    return true;
}

static void free_objects(case_trial *t)
{
    sgd_trainer_free(t->trainer);
    sgd_monitor_free(t->monitor);
    sgd_sched_free(t->sched_obj);
    sgd_optim_free(t->optim_obj);
    sgd_model_free(t->model);
    t->trainer = NULL;
    t->monitor = NULL;
    t->sched_obj = NULL;
    t->optim_obj = NULL;
    t->model = NULL;
}

void case_trials_free(case_trial *trials)
{
    for (int i = 0; i < CASE_TRIALS; i++) {
        free_objects(&trials[i]);
        free(trials[i].loss);
        free(trials[i].events);
    }
}

const char *case_verdict(const case_trial *t)
{
    if (t->status != SGD_OK && t->status != SGD_EDIVERGED)
        return "failed";
    return sgd_monitor_verdict_name(t->verdict);
}

bool case_in_trouble(const case_trial *t)
{
    return t->status == SGD_EDIVERGED || t->verdict == SGD_MONITOR_DIVERGED || t->verdict == SGD_MONITOR_UNSTABLE;
}

bool case_healthy(const case_trial *t)
{
    return t->status == SGD_OK && t->verdict == SGD_MONITOR_HEALTHY;
}

/* ---------------------------------------------------------------- running them */

typedef struct run_ctx {
    const case_run_options *o;
    case_trial *trials;
    atomic_int next, done;
    atomic_llong steps_seen;
    int64_t steps_total;
    cli_bar bar;
    pthread_mutex_t bar_lock;
    double t0;
} run_ctx;

typedef struct trial_user {
    run_ctx *c;
    case_trial *t;
} trial_user;

static void add_event(case_trial *t, int64_t step, int32_t kind, double loss, double lr)
{
    if (t->n_events == t->cap_events) {
        size_t cap = t->cap_events ? 2 * t->cap_events : 32;
        case_event *e = realloc(t->events, cap * sizeof *e);
        if (e == NULL)
            return;
        t->events = e;
        t->cap_events = cap;
    }
    t->events[t->n_events++] = (case_event){step, kind, loss, lr};
}

static int32_t on_progress(const sgd_trainer_progress *p, void *user)
{
    trial_user *u = user;
    case_trial *t = u->t;
    run_ctx *c = u->c;
    if (p->phase != SGD_TRAINER_PHASE_STEP || p->step < 1 || p->step > t->steps_planned)
        return 0;
    t->loss[p->step - 1] = p->loss;
    if (p->step > t->n_loss)
        t->n_loss = p->step;
    long long seen = atomic_fetch_add(&c->steps_seen, 1) + 1;
    if (c->bar.on && seen % c->o->bar_every == 0) {
        pthread_mutex_lock(&c->bar_lock);
        char text[160];
        snprintf(text, sizeof text, "%d of %d trials done, %.0f s", atomic_load(&c->done), CASE_TRIALS,
                 cli_now() - c->t0);
        double f = (double)seen / (double)c->steps_total;
        cli_bar_draw(&c->bar, f < 0.99 ? f : 0.99, -1, text, false);
        pthread_mutex_unlock(&c->bar_lock);
    }
    return 0;
}

static int32_t on_event(const sgd_trainer_event *ev, double *lr_scale, void *user)
{
    (void)lr_scale;
    case_trial *t = ((trial_user *)user)->t;
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

static void run_trial(run_ctx *c, case_trial *t, int i)
{
    const case_run_options *o = c->o;
    double t0 = cli_now();
    trial_user u = {c, t};
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.seed = o->seed;
    mo.max_batch = o->trainer.batch_size;
    sgd_trainer_options to = o->trainer;
    to.epochs = t->epochs;
    to.seed = o->seed;
    to.guard = t->guard;
    to.clip_norm = t->clip;
    to.progress_interval = 1;
    sgd_status st = sgd_model_from_spec(&t->model, o->model, &mo, NULL);
    if (st == SGD_OK)
        st = sgd_optim_new(&t->optim_obj, t->optim, sgd_model_num_params(t->model), NULL);
    if (st == SGD_OK)
        st = sgd_sched_new(&t->sched_obj, t->sched, t->lr, NULL);
    if (st == SGD_OK)
        st = sgd_monitor_new(&t->monitor, NULL, NULL);
    if (st == SGD_OK)
        st = sgd_trainer_new(&t->trainer, t->model, t->optim_obj, t->sched_obj, t->monitor, o->train, o->val, &to,
                             NULL);
    if (st == SGD_OK)
        st = sgd_trainer_set_progress(t->trainer, on_progress, &u);
    if (st == SGD_OK)
        st = sgd_trainer_set_event_callback(t->trainer, on_event, &u);
    if (st == SGD_OK) {
        st = sgd_trainer_fit(t->trainer, 0);
        if (st != SGD_OK)
            snprintf(t->error, sizeof t->error, "%s", sgd_error_last());
        if (st == SGD_OK || st == SGD_EDIVERGED) {
            sgd_trainer_stats ts;
            memset(&ts, 0, sizeof ts);
            ts.struct_size = sizeof ts;
            sgd_trainer_get_stats(t->trainer, &ts);
            t->steps = ts.step;
            t->rescues = ts.rescues;
            t->final_lr = ts.lr;
            sgd_monitor_get_verdict(t->monitor, &t->verdict);
            t->status = st;
            if (o->on_done != NULL)
                o->on_done(t, i, o->user);
        }
    } else {
        snprintf(t->error, sizeof t->error, "%s", sgd_error_last());
    }
    t->status = st;
    if (!o->keep)
        free_objects(t);
    t->seconds = cli_now() - t0;
    atomic_fetch_add(&c->done, 1);
    /* Steps a diverged trial did not take count as done for the progress bar. */
    atomic_fetch_add(&c->steps_seen, (long long)(t->steps_planned - t->n_loss));
}

static void *worker(void *arg)
{
    /* The longest first: the schedule's trial may have more epochs than the others. */
    static const int order[CASE_TRIALS] = {CASE_SCHED, CASE_LOW, CASE_GUARD, CASE_HIGH};
    run_ctx *c = arg;
    for (;;) {
        int k = atomic_fetch_add(&c->next, 1);
        if (k >= CASE_TRIALS)
            return NULL;
        run_trial(c, &c->trials[order[k]], order[k]);
    }
}

bool case_can_plot(const cli *cl, const char *plot, bool plot_given)
{
    bool have_gnuplot = plot == NULL || cli_have_gnuplot();
    if (!have_gnuplot && plot_given)
        cli_no_gnuplot(cl, plot);
    return have_gnuplot;
}

int64_t case_default_threads(void)
{
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    return nc > 0 ? (nc > CASE_TRIALS ? CASE_TRIALS : nc) : 1;
}

void case_run(const case_run_options *o, case_trial *trials)
{
    run_ctx c;
    memset(&c, 0, sizeof c);
    c.o = o;
    c.trials = trials;
    for (int i = 0; i < CASE_TRIALS; i++)
        c.steps_total += trials[i].steps_planned;
    cli_bar_init(&c.bar, o->progress);
    pthread_mutex_init(&c.bar_lock, NULL);
    c.t0 = cli_now();
    pthread_t tids[CASE_TRIALS];
    int started = 0;
    for (int64_t k = 0; k < o->threads && k < CASE_TRIALS; k++)
        if (pthread_create(&tids[started], NULL, worker, &c) == 0)
            started++;
    if (started == 0)
        worker(&c);
    for (int k = 0; k < started; k++)
        pthread_join(tids[k], NULL);
    cli_bar_clear(&c.bar);
    pthread_mutex_destroy(&c.bar_lock);
}

bool case_all_ran(const cli *cl, const case_trial *trials)
{
    for (int i = 0; i < CASE_TRIALS; i++)
        if (trials[i].status != SGD_OK && trials[i].status != SGD_EDIVERGED) {
            cli_fail(cl, NULL, "trial '%s': %s", trials[i].name, trials[i].error);
            return false;
        }
    return true;
}

/* ---------------------------------------------------------------- the table and the story */

void case_table_head(const case_table *w, const char *own)
{
    printf("%-*s  %6s  %-*s  %-5s  %-9s  %-*s  %s  %5s  %7s  %7s\n", w->name, "trial", "lr", w->sched, "schedule",
           "guard", "verdict", w->alarm, "first alarm", own, "steps", "rescues", "time");
}

void case_table_row(const case_table *w, const case_trial *t, const char *own)
{
    char lr[32], where[96];
    if (t->first_alarm >= 0)
        snprintf(where, sizeof where, "%s at step %lld", sgd_monitor_kind_name(t->first_kind),
                 (long long)t->first_alarm);
    else
        snprintf(where, sizeof where, "-");
    printf("%-*s  %6s  %-*s  %-5s  %-9s  %-*s  %s  %5lld  %7lld  %6.1fs\n", w->name, t->name,
           cli_num(lr, sizeof lr, t->lr), w->sched, t->sched_text, t->guard ? "on" : "off", case_verdict(t), w->alarm,
           where, own, (long long)t->steps, (long long)t->rescues, t->seconds);
}

void case_print_story(const case_trial *trials, const char *how)
{
    const case_trial *th = &trials[CASE_HIGH], *tg = &trials[CASE_GUARD];
    char b1[32], b2[32];
    if (th->first_alarm >= 0)
        printf("lr %s is too high: the monitor raised %s at step %lld; the run %s after %lld steps.\n",
               cli_num(b1, sizeof b1, th->lr), sgd_monitor_kind_name(th->first_kind), (long long)th->first_alarm,
               th->status == SGD_EDIVERGED ? "was stopped as diverged" : "ended", (long long)th->steps);
    else
        printf("lr %s: the monitor raised no alarm (try a higher --high-lr).\n", cli_num(b1, sizeof b1, th->lr));
    printf("the guard rescued the same rate %lld time%s%s: it ended at lr %s (%s of the start).\n",
           (long long)tg->rescues, tg->rescues == 1 ? "" : "s", how, cli_num(b1, sizeof b1, tg->final_lr),
           cli_num(b2, sizeof b2, tg->final_lr / tg->lr));
}

void case_print_end(const char *plot, bool plotted, bool have_gnuplot, double seconds, double data_seconds)
{
    cli_print_plot_line(plot, plotted, have_gnuplot);
    printf("time: %.1f s (data %.1f s)\n", seconds, data_seconds);
}

/* ---------------------------------------------------------------- JSON */

void case_json_begin(const char *schema, const char *name, const char *model, const char *data)
{
    printf("{\"schema\":\"%s\",\"command\":\"case\",\"case\":\"%s\",\"model\":", schema, name);
    cli_json_str(stdout, model);
    printf(",\"data\":");
    cli_json_str(stdout, data);
}

void case_json_trial_begin(const case_trial *t)
{
    printf("{\"name\":");
    cli_json_str(stdout, t->name);
    printf(",\"optimizer\":");
    cli_json_str(stdout, t->optim);
    printf(",\"schedule\":");
    cli_json_str(stdout, t->sched);
    printf(",\"lr\":%.9g", t->lr);
}

void case_json_trial_alarms(const case_trial *t, bool with_lr)
{
    printf(",\"verdict\":");
    cli_json_str(stdout, case_verdict(t));
    printf(",\"diverged\":%s,\"first_alarm\":", t->status == SGD_EDIVERGED ? "true" : "false");
    cli_json_count(stdout, t->first_alarm); /* a step, as everywhere; its kind beside it */
    printf(",\"first_alarm_kind\":");
    if (t->first_alarm >= 0)
        cli_json_str(stdout, sgd_monitor_kind_name(t->first_kind));
    else
        printf("null");
    printf(",\"events\":[");
    for (size_t k = 0; k < t->n_events; k++) {
        const case_event *e = &t->events[k];
        printf("%s{\"step\":%lld,\"kind\":", k ? "," : "", (long long)e->step);
        cli_json_str(stdout, e->kind < 0 ? "rescue" : sgd_monitor_kind_name(e->kind));
        printf(",\"loss\":");
        cli_json_num(stdout, e->loss);
        if (with_lr) {
            printf(",\"lr\":");
            cli_json_num(stdout, e->lr);
        }
        printf("}");
    }
    printf("]");
}

void case_json_trial_end(const case_trial *t)
{
    printf(",\"steps\":%lld,\"rescues\":%lld,\"final_lr\":", (long long)t->steps, (long long)t->rescues);
    cli_json_num(stdout, t->final_lr);
    printf(",\"seconds\":%.3f", t->seconds);
}

void case_json_story(bool holds)
{
    printf("],\"story_holds\":%s", holds ? "true" : "false");
}

void case_json_end(const char *plot, bool plotted, double seconds)
{
    printf(",\"plot\":");
    if (plotted)
        cli_json_str(stdout, plot);
    else
        printf("null");
    printf(",\"seconds\":%.3f}\n", seconds);
}

/* ---------------------------------------------------------------- the plot */

static const char *const colors[CASE_TRIALS] = {"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e"};

/* "d<k>.dat": the curves are d0..d3, the marks d4. */
static FILE *data_file(case_plot *cp, int k)
{
    FILE *f = cli_plot_file(&cp->p, k);
    if (f == NULL) {
        cli_fail(cp->cl, "--plot", "cannot write the plot's data in %s", cp->p.dir);
        cli_plot_end(&cp->p);
    }
    return f;
}

bool case_plot_begin(case_plot *cp, const cli *cl, const case_plot_style *style, const case_trial *trials, void *user)
{
    memset(cp, 0, sizeof *cp);
    cp->cl = cl;
    cp->style = style;
    if (!cli_plot_begin(&cp->p, cl))
        return false;
    for (int i = 0; i < CASE_TRIALS; i++) {
        FILE *f = data_file(cp, i);
        if (f == NULL)
            return false;
        style->curve(f, &trials[i], user);
        fclose(f);
    }
    cp->marks = data_file(cp, CASE_TRIALS);
    return cp->marks != NULL;
}

void case_plot_mark(case_plot *cp, int i, int64_t x, double y, int cls)
{
    fprintf(cp->marks, "%lld %.*g %d %ld\n", (long long)x, cp->style->digits, y, cls, strtol(colors[i] + 1, NULL, 16));
    if (cls >= 0 && cls < CASE_MARK_CLASSES)
        cp->count[cls]++;
}

bool case_plot_finish(case_plot *cp, char *script, size_t cap, int w, const case_trial *trials, const char *path)
{
    fclose(cp->marks);
    cp->marks = NULL;
    for (int i = 0; i < CASE_TRIALS; i++) {
        const case_trial *t = &trials[i];
        char label[300], lq[620], a[32];
        snprintf(label, sizeof label, "%s (lr %s, %s%s): %s%s", t->name, cli_num(a, sizeof a, t->lr), t->sched_text,
                 t->guard ? ", guard" : "", case_verdict(t), cp->extra[i]);
        w += snprintf(script + w, cap - (size_t)w, "%s'd%d.dat' using 1:2 with lines lw 2 lc rgb '%s' title '%s'",
                      i ? ", \\\n     " : "", i, colors[i], cli_gp_str(lq, sizeof lq, label));
    }
    for (int cls = 0; cls < cp->style->n_marks && cls < CASE_MARK_CLASSES; cls++) {
        const case_mark_class *mk = &cp->style->marks[cls];
        if (mk->always || cp->count[cls] > 0)
            w += snprintf(script + w, cap - (size_t)w,
                          ", \\\n     'd%d.dat' using 1:($3==%d ? $2 : 1/0):4 with points pt %s ps 1.6 lc rgb "
                          "variable notitle, \\\n     NaN with points pt %s ps 1.6 lc rgb '%s' title '%s'",
                          CASE_TRIALS, cls, mk->point, mk->point, mk->color, mk->title);
    }
    snprintf(script + w, cap - (size_t)w, "\n");
    bool ok = cli_plot_run(&cp->p, cp->cl, script, path);
    cli_plot_end(&cp->p);
    return ok;
}
