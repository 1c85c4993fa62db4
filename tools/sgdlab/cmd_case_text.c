/*
 * sgdlab case text: the seed article's text case study. A character-level
 * LSTM trained on the fortunes corpus at a learning rate that is too high
 * (the monitor says diverged or unstable, and when; its text is nonsense),
 * then as the article says: a lower rate, then a decaying schedule with
 * gradient clipping, and the guard as the automatic version. One table of
 * verdicts, validation bits per character and times, a sample of each
 * trial's text (with the share of its words that are words of the corpus),
 * one plot of the loss curves with the events marked. Trials run side by
 * side on --threads threads, each with one BLAS thread.
 * SPDX-License-Identifier: MIT
 */
#include "cli.h"
#include "commands.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEXT_PLOT "sgdlab-case-text.svg"
#define TEXT_MODEL "tokens-embedding(64)-lstm(256)-dense(vocab)"
#define LN2 0.69314718055994530942

static const cli_command spec = {
    .name = "case text",
    .description =
        "The text case study of the article this project started from: a character-level\n"
        "LSTM trained on text at a learning rate higher than recommended does not capture\n"
        "the sequence (the health monitor calls the run diverged or unstable, and says\n"
        "when) and writes nonsense; lowering the rate, and a schedule that decays it (with\n"
        "gradient clipping), make it write words; the guard rescues the too-high rate by\n"
        "itself (rollbacks that multiply it by --guard-factor). Prints one table (verdict,\n"
        "first alarm, validation bits per character, steps, rescues, time), a sample of\n"
        "each trial's text with the share of its words that are words of the corpus, and\n"
        "draws the loss curves with the events marked.\n"
        "\n"
        "The network: " TEXT_MODEL " (Adam, truncated backpropagation\n"
        "through time over --batch-size parallel streams of --seq-len characters).\n"
        "\n"
        "Trials (one pass over the first --train-chars characters of the training text):\n"
        "  too high        adam lr=HIGH, constant, no guard (stops when diverged)\n"
        "  lower rate      adam lr=LOW, constant\n"
        "  decay+clip      adam lr=PEAK, cosine decay to 0, gradients clipped to --clip-norm\n"
        "  guard           adam lr=HIGH, constant, the guard on (each rescue multiplies the rate\n"
        "                  by --guard-factor)\n",
    .epilog = "Exit status: 0 when the story holds (the too-high trial is diverged or unstable and a\n"
              "rescued trial is healthy and writes text better than it); 1 when it does not, or the\n"
              "checkpoint or the plot asked for could not be written; 2 for bad arguments or data.\n",
};

enum { T_HIGH = 0, T_LOW = 1, T_DECAY = 2, T_GUARD = 3, N_TRIALS = 4 };

typedef struct tevent {
    int64_t step;
    int32_t kind; /* a monitor kind, or -1 for a rescue of the guard */
    double loss;
} tevent;

typedef struct ttrial {
    const char *name;
    char optim[128], sched[256], sched_text[48];
    double lr, clip, guard_factor;
    bool guard;
    int64_t steps_planned;
    /* results */
    double *loss; /* per step, nats */
    int64_t n_loss;
    tevent *events;
    size_t n_events, cap_events;
    int32_t verdict;
    int64_t steps, rescues, first_alarm;
    int32_t first_kind;
    double val_loss, val_bpc, seconds, final_lr, words;
    char *sample;
    sgd_status status;
    char error[512];
    sgd_model *model; /* kept for --save (the decay trial) */
    sgd_trainer *trainer;
    sgd_optim *optim_obj;
    sgd_sched *sched_obj;
    sgd_monitor *monitor;
} ttrial;

/* The words of the corpus (lower-case ASCII letters), for the samples' word check. */
typedef struct wordset {
    char **slot;
    size_t cap, n;
} wordset;

typedef struct tctx {
    const char *model;
    uint64_t seed;
    int64_t sample_len;
    double temperature;
    const cli_data *d;
    const sgd_dataset *train;
    const wordset *words;
    ttrial *trials;
    const int *order;
    atomic_int next;
    atomic_llong steps_seen;
    int64_t steps_total;
    cli_bar bar;
    pthread_mutex_t bar_lock;
    double t0;
    atomic_int done;
} tctx;

typedef struct tuser {
    tctx *c;
    ttrial *t;
} tuser;

/* ---------------------------------------------------------------- words */

static uint64_t hash_word(const char *w, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)w[i]) * 1099511628211ULL;
    return h;
}

static bool wordset_has(const wordset *s, const char *w, size_t n)
{
    if (s->cap == 0)
        return false;
    for (size_t i = hash_word(w, n) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        const char *e = s->slot[i];
        if (e == NULL)
            return false;
        if (strlen(e) == n && memcmp(e, w, n) == 0)
            return true;
    }
}

static bool wordset_add(wordset *s, const char *w, size_t n)
{
    if (wordset_has(s, w, n))
        return true;
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1 << 14;
        char **slot = calloc(cap, sizeof *slot);
        if (slot == NULL)
            return false;
        for (size_t k = 0; k < s->cap; k++) {
            if (s->slot[k] == NULL)
                continue;
            size_t i = hash_word(s->slot[k], strlen(s->slot[k])) & (cap - 1);
            while (slot[i] != NULL)
                i = (i + 1) & (cap - 1);
            slot[i] = s->slot[k];
        }
        free(s->slot);
        s->slot = slot;
        s->cap = cap;
    }
    char *copy = malloc(n + 1);
    if (copy == NULL)
        return false;
    memcpy(copy, w, n);
    copy[n] = '\0';
    size_t i = hash_word(w, n) & (s->cap - 1);
    while (s->slot[i] != NULL)
        i = (i + 1) & (s->cap - 1);
    s->slot[i] = copy;
    s->n++;
    return true;
}

static void wordset_free(wordset *s)
{
    for (size_t k = 0; k < s->cap; k++)
        free(s->slot[k]);
    free(s->slot);
    memset(s, 0, sizeof *s);
}

/* Calls fn on each word of text: runs of ASCII letters, lower-cased, 1 to 31 letters. */
static void each_word(const char *text, size_t len, void (*fn)(const char *w, size_t n, void *u), void *u)
{
    char w[32];
    size_t n = 0;
    bool too_long = false;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)text[i] : ' ';
        if (isalpha(c) && c < 0x80) {
            if (n < sizeof w - 1)
                w[n++] = (char)tolower(c);
            else
                too_long = true;
            continue;
        }
        if (n > 0 && !too_long)
            fn(w, n, u);
        n = 0;
        too_long = false;
    }
}

typedef struct wadd {
    wordset *s;
    bool ok;
} wadd;

static void add_one(const char *w, size_t n, void *u)
{
    wadd *a = u;
    a->ok = a->ok && wordset_add(a->s, w, n);
}

typedef struct wcount {
    const wordset *s;
    int64_t words, known;
} wcount;

static void count_one(const char *w, size_t n, void *u)
{
    wcount *c = u;
    c->words++;
    c->known += wordset_has(c->s, w, n);
}

/* The share of the words of `text` that are words of the corpus; NaN for a text without words. */
static double word_share(const wordset *s, const char *text)
{
    wcount c = {s, 0, 0};
    each_word(text, strlen(text), count_one, &c);
    return c.words > 0 ? (double)c.known / (double)c.words : NAN;
}

/* ---------------------------------------------------------------- a trial */

static void add_event(ttrial *t, int64_t step, int32_t kind, double loss)
{
    if (t->n_events == t->cap_events) {
        size_t cap = t->cap_events ? 2 * t->cap_events : 32;
        tevent *e = realloc(t->events, cap * sizeof *e);
        if (e == NULL)
            return;
        t->events = e;
        t->cap_events = cap;
    }
    t->events[t->n_events++] = (tevent){step, kind, loss};
}

static int32_t on_progress(const sgd_trainer_progress *p, void *user)
{
    tuser *u = user;
    ttrial *t = u->t;
    if (p->phase != SGD_TRAINER_PHASE_STEP || p->step < 1 || p->step > t->steps_planned)
        return 0;
    t->loss[p->step - 1] = p->loss;
    if (p->step > t->n_loss)
        t->n_loss = p->step;
    long long seen = atomic_fetch_add(&u->c->steps_seen, 1) + 1;
    if (u->c->bar.on && seen % 10 == 0) {
        pthread_mutex_lock(&u->c->bar_lock);
        char text[160];
        snprintf(text, sizeof text, "%d of %d trials done, %.0f s", atomic_load(&u->c->done), N_TRIALS,
                 cli_now() - u->c->t0);
        double f = (double)seen / (double)u->c->steps_total;
        cli_bar_draw(&u->c->bar, f < 0.99 ? f : 0.99, -1, text, false);
        pthread_mutex_unlock(&u->c->bar_lock);
    }
    return 0;
}

static int32_t on_event(const sgd_trainer_event *ev, double *lr_scale, void *user)
{
    (void)lr_scale;
    ttrial *t = ((tuser *)user)->t;
    if (ev->kind == SGD_TRAINER_EVENT_MONITOR && ev->monitor != NULL && ev->monitor->kind != SGD_MONITOR_PLATEAU) {
        add_event(t, ev->step, ev->monitor->kind, ev->monitor->loss);
        if (((1u << ev->monitor->kind) & SGD_MONITOR_MASK_ALARMS) != 0 && t->first_alarm < 0) {
            t->first_alarm = ev->step;
            t->first_kind = ev->monitor->kind;
        }
    } else if (ev->kind == SGD_TRAINER_EVENT_RESCUE) {
        add_event(t, ev->step, -1, NAN);
    }
    return ev->action;
}

static void run_trial(tctx *c, ttrial *t)
{
    double t0 = cli_now();
    tuser u = {c, t};
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.seed = c->seed;
    mo.max_batch = c->d->streams;
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    to.shuffle = 0;
    to.batch_size = c->d->streams;
    to.epochs = 1;
    to.seed = c->seed;
    to.guard = t->guard;
    to.guard_factor = t->guard_factor;
    to.clip_norm = t->clip;
    to.progress_interval = 1;
    sgd_status st = sgd_model_from_spec(&t->model, c->model, &mo, NULL);
    if (st == SGD_OK)
        st = sgd_optim_new(&t->optim_obj, t->optim, sgd_model_num_params(t->model), NULL);
    if (st == SGD_OK)
        st = sgd_sched_new(&t->sched_obj, t->sched, t->lr, NULL);
    if (st == SGD_OK)
        st = sgd_monitor_new(&t->monitor, NULL, NULL);
    if (st == SGD_OK)
        st = sgd_trainer_new(&t->trainer, t->model, t->optim_obj, t->sched_obj, t->monitor, c->train, c->d->val, &to,
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
            /* The validation of the model as it is (a diverged run stopped before its epoch ended). */
            if (sgd_model_evaluate(t->model, c->d->val, 0, &t->val_loss, NULL) != SGD_OK)
                t->val_loss = NAN;
            t->val_bpc = t->val_loss / LN2;
            if (!cli_text_sample(NULL, t->model, sgd_text_vocab(c->d->text), c->sample_len, c->temperature, c->seed,
                                 NULL, &t->sample))
                t->sample = NULL;
            t->words = t->sample != NULL ? word_share(c->words, t->sample) : NAN;
        }
    } else {
        snprintf(t->error, sizeof t->error, "%s", sgd_error_last());
    }
    t->status = st;
    t->seconds = cli_now() - t0;
    atomic_fetch_add(&c->done, 1);
    atomic_fetch_add(&c->steps_seen, (long long)(t->steps_planned - t->n_loss));
}

static void *worker(void *arg)
{
    tctx *c = arg;
    for (;;) {
        int k = atomic_fetch_add(&c->next, 1);
        if (k >= N_TRIALS)
            return NULL;
        run_trial(c, &c->trials[c->order[k]]);
    }
}

static void trial_free(ttrial *t)
{
    sgd_trainer_free(t->trainer);
    sgd_monitor_free(t->monitor);
    sgd_sched_free(t->sched_obj);
    sgd_optim_free(t->optim_obj);
    sgd_model_free(t->model);
    free(t->loss);
    free(t->events);
    free(t->sample);
}

static const char *verdict_text(const ttrial *t)
{
    if (t->status != SGD_OK && t->status != SGD_EDIVERGED)
        return "failed";
    return sgd_monitor_verdict_name(t->verdict);
}

/* ---------------------------------------------------------------- the plot */

/*
 * The training loss of every trial in bits per character (a moving average
 * over 20 steps), the monitor's alarms and the guard's rollbacks as points
 * on the curves, the validation of each trial as a dot after its last step.
 */
static bool plot_curves(const cli *cl, const ttrial *trials, const char *path, const char *title)
{
    cli_plot p;
    if (!cli_plot_begin(&p, cl))
        return false;
    static const char *const colors[N_TRIALS] = {"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e"};
    double top = 0;
    for (int i = 0; i < N_TRIALS; i++) {
        FILE *f = cli_plot_file(&p, i); /* "d<i>.dat" */
        if (f == NULL) {
            cli_fail(cl, "--plot", "cannot write the plot's data in %s", p.dir);
            cli_plot_end(&p);
            return false;
        }
        const ttrial *t = &trials[i];
        double sum = 0;
        int64_t in = 0;
        for (int64_t k = 0; k < t->n_loss; k++) {
            double b = t->loss[k] / LN2;
            bool ok = isfinite(b);
            sum += ok ? b : 0;
            in += ok;
            if (k >= 20) {
                double old = t->loss[k - 20] / LN2;
                if (isfinite(old)) {
                    sum -= old;
                    in--;
                }
            }
            double avg = in > 0 ? sum / (double)in : NAN;
            if (isfinite(avg) && avg > top)
                top = avg;
            fprintf(f, "%lld %.6g\n", (long long)(k + 1), ok ? avg : NAN);
        }
        fclose(f);
    }
    FILE *mf = cli_plot_file(&p, N_TRIALS); /* the marks: "d4.dat" */
    if (mf == NULL) {
        cli_fail(cl, "--plot", "cannot write the plot's data in %s", p.dir);
        cli_plot_end(&p);
        return false;
    }
    double ymax = top > 0 ? 1.1 * top : 8;
    int counts[3] = {0, 0, 0};
    for (int i = 0; i < N_TRIALS; i++) {
        const ttrial *t = &trials[i];
        for (size_t k = 0; k < t->n_events; k++) {
            const tevent *e = &t->events[k];
            int cls = e->kind < 0 ? 2 : e->kind == SGD_MONITOR_SPIKE || e->kind == SGD_MONITOR_GRAD_SPIKE ? 1 : 0;
            double y = isfinite(e->loss) ? e->loss / LN2 : NAN;
            if (!isfinite(y) && e->step >= 0 && e->step < t->n_loss)
                y = t->loss[e->step] / LN2;
            if (!isfinite(y) || y > ymax)
                y = 0.97 * ymax;
            fprintf(mf, "%lld %.6g %d %ld\n", (long long)(e->step + 1), y, cls, strtol(colors[i] + 1, NULL, 16));
            counts[cls]++;
        }
        if (isfinite(t->val_bpc)) /* the validation, after the last step */
            fprintf(mf, "%lld %.6g 3 %ld\n", (long long)t->n_loss, t->val_bpc < ymax ? t->val_bpc : 0.97 * ymax,
                    strtol(colors[i] + 1, NULL, 16));
    }
    fclose(mf);
    char script[16384], tq[1700];
    int w = snprintf(script, sizeof script,
                     "set title '%s' noenhanced\n"
                     "set xlabel 'training step (%s)'\nset ylabel 'training loss, bits per character (20-step mean)'\n"
                     "set yrange [0:%.4g]\nset grid\nset key outside right top noenhanced\nset datafile missing 'nan'\n"
                     "plot ",
                     cli_gp_str(tq, sizeof tq, title),
                     "batches of parallel streams", ymax);
    for (int i = 0; i < N_TRIALS; i++) {
        const ttrial *t = &trials[i];
        char label[300], lq[620], a[32], bpc[32] = "";
        if (isfinite(t->val_bpc))
            snprintf(bpc, sizeof bpc, ", val %.2f bpc", t->val_bpc);
        snprintf(label, sizeof label, "%s (lr %s, %s%s): %s%s", t->name, cli_num(a, sizeof a, t->lr), t->sched_text,
                 t->guard ? ", guard" : "", verdict_text(t), bpc);
        w += snprintf(script + w, sizeof script - (size_t)w, "%s'd%d.dat' using 1:2 with lines lw 2 lc rgb '%s' title '%s'",
                      i ? ", \\\n     " : "", i, colors[i], cli_gp_str(lq, sizeof lq, label));
    }
    static const char *const mk[4][3] = {{"7", "#000000", "monitor: divergence, NaN, oscillation, stagnation"},
                                         {"1", "#777777", "monitor: spike, gradient spike"},
                                         {"5", "#000000", "guard: rollback, lr cut"},
                                         {"13", "#000000", "validation bits per character"}};
    for (int cls = 0; cls < 4; cls++)
        if (cls == 3 || counts[cls] > 0)
            w += snprintf(script + w, sizeof script - (size_t)w,
                          ", \\\n     'd%d.dat' using 1:($3==%d ? $2 : 1/0):4 with points pt %s ps 1.6 lc rgb variable "
                          "notitle, \\\n     NaN with points pt %s ps 1.6 lc rgb '%s' title '%s'",
                          N_TRIALS, cls, mk[cls][0], mk[cls][0], mk[cls][1], mk[cls][2]);
    snprintf(script + w, sizeof script - (size_t)w, "\n");
    bool ok = cli_plot_run(&p, cl, script, path);
    cli_plot_end(&p);
    return ok;
}

/* ---------------------------------------------------------------- output */

static void print_sample(const char *s)
{
    printf("    | ");
    int col = 0;
    for (const char *q = s; *q; q++) {
        if (*q == '\n') {
            if (q[1] != '\0')
                printf("\n    | ");
            col = 0;
            continue;
        }
        putchar(*q);
        col++;
    }
    printf("\n");
}

static void json_trial(const ttrial *t)
{
    printf("{\"name\":");
    cli_json_str(stdout, t->name);
    printf(",\"optimizer\":");
    cli_json_str(stdout, t->optim);
    printf(",\"schedule\":");
    cli_json_str(stdout, t->sched);
    printf(",\"lr\":%.9g,\"clip_norm\":%.9g,\"guard\":%s,\"verdict\":", t->lr, t->clip, t->guard ? "true" : "false");
    cli_json_str(stdout, verdict_text(t));
    printf(",\"diverged\":%s,\"first_alarm\":", t->status == SGD_EDIVERGED ? "true" : "false");
    /* As case image writes them: the step, and its kind, or null and null. */
    if (t->first_alarm >= 0) {
        printf("%lld,\"first_alarm_kind\":", (long long)t->first_alarm);
        cli_json_str(stdout, sgd_monitor_kind_name(t->first_kind));
    } else {
        printf("null,\"first_alarm_kind\":null");
    }
    printf(",\"events\":[");
    for (size_t k = 0; k < t->n_events; k++) {
        printf("%s{\"step\":%lld,\"kind\":", k ? "," : "", (long long)t->events[k].step);
        cli_json_str(stdout, t->events[k].kind < 0 ? "rescue" : sgd_monitor_kind_name(t->events[k].kind));
        printf(",\"loss\":");
        cli_json_num(stdout, t->events[k].loss);
        printf("}");
    }
    printf("],\"val_loss\":");
    cli_json_num(stdout, t->val_loss);
    printf(",\"val_bpc\":");
    cli_json_num(stdout, t->val_bpc);
    printf(",\"val_perplexity\":");
    cli_json_num(stdout, exp(t->val_loss));
    printf(",\"steps\":%lld,\"rescues\":%lld,\"final_lr\":", (long long)t->steps, (long long)t->rescues);
    cli_json_num(stdout, t->final_lr);
    printf(",\"seconds\":%.3f,\"sample\":", t->seconds);
    if (t->sample != NULL)
        cli_json_str(stdout, t->sample);
    else
        printf("null");
    printf(",\"corpus_words\":");
    cli_json_num(stdout, t->words);
    printf("}");
}

/* ---------------------------------------------------------------- the command */

int sgdlab_case_text(int argc, char **argv)
{
    const char *data = "text", *model = TEXT_MODEL, *plot = TEXT_PLOT, *save = NULL;
    double high = 1.0, low = 0.005, peak = 0.01, clip = 1.0, temperature = 0.7, guard_factor = 0.1;
    int64_t train_chars = 2000000, seq_len = 100, streams = 32, sample = 300, seed = 0, threads = 0;
    const char *plot_default = TEXT_PLOT;
    plot = NULL;
    cli cl;
    const cli_opt opts[] = {
        CLI_SECTION("options"),
        {.name = "data", .kind = CLI_STRING, .dest = &data, .arg = "DATA",
         .help = "text[:PATH,...]: the corpus (default: the fortunes corpus, Debian package fortunes, "
                 "/usr/share/games/fortunes); the last 5% is for validation"},
        {.name = "model", .kind = CLI_STRING, .dest = &model, .arg = "SPEC",
         .help = "another network (tokens-...-dense(vocab))"},
        {.name = "train-chars", .kind = CLI_INT, .dest = &train_chars, .ilo = 1, .ihi = INT64_MAX, .arg = "N",
         .help = "characters each trial trains on (default 2000000)"},
        {.name = "seq-len", .kind = CLI_INT, .dest = &seq_len, .ilo = 1, .ihi = 1 << 20, .arg = "N",
         .help = "characters per sequence (default 100)"},
        {.name = "batch-size", .kind = CLI_INT, .dest = &streams, .ilo = 1, .ihi = 1 << 16, .arg = "N",
         .help = "parallel streams (default 32)"},
        {.name = "high-lr", .kind = CLI_DOUBLE, .dest = &high, .lo = 0, .hi = 1e6, .lo_open = true, .arg = "X",
         .help = "the rate that is too high (default 1)"},
        {.name = "low-lr", .kind = CLI_DOUBLE, .dest = &low, .lo = 0, .hi = 1e6, .lo_open = true, .arg = "X",
         .help = "the lower constant rate (default 0.005)"},
        {.name = "peak-lr", .kind = CLI_DOUBLE, .dest = &peak, .lo = 0, .hi = 1e6, .lo_open = true, .arg = "X",
         .help = "the start of the decaying schedule (default 0.01)"},
        {.name = "clip-norm", .kind = CLI_DOUBLE, .dest = &clip, .lo = 0, .hi = 1e30, .lo_open = true, .arg = "X",
         .help = "its gradient clipping (default 1)"},
        {.name = "guard-factor", .kind = CLI_DOUBLE, .dest = &guard_factor, .lo = 0, .hi = 1, .lo_open = true,
         .arg = "X", .help = "the guard's cut of the rate at each rescue (default 0.1)"},
        {.name = "sample", .kind = CLI_INT, .dest = &sample, .ilo = 0, .ihi = 1 << 20, .arg = "N",
         .help = "characters of text per trial (default 300)"},
        {.name = "temperature", .kind = CLI_DOUBLE, .dest = &temperature, .lo = 0, .hi = 100, .arg = "X",
         .help = "of the samples (default 0.7)"},
        {.name = "seed", .kind = CLI_INT, .dest = &seed, .ilo = 0, .ihi = INT64_MAX, .arg = "N",
         .help = "initialisation and sampling, the same for every trial (default 0)"},
        {.name = "threads", .kind = CLI_INT, .dest = &threads, .ilo = 1, .ihi = 64, .arg = "N",
         .help = "trials at once (default: the number of cores, at most 4)"},
        CLI_SECTION("output"),
        {.name = "save", .kind = CLI_OUTFILE, .dest = &save, .arg = "FILE",
         .help = "the decay+clip trial's model, vocabulary and state, for sgdlab generate --resume FILE (checked "
                 "before training)"},
        {.name = "plot", .kind = CLI_CALL, .dest = &plot, .arg = "FILE", .takes_value = true, .call = cli_plot_option,
         .help = "the loss curves, FILE.svg or FILE.png (default " TEXT_PLOT "; needs gnuplot: gnuplot-nox)"},
        {.name = "no-plot", .kind = CLI_CALL, .dest = &plot_default, .call = cli_plot_option, .help = "no plot"},
        CLI_OPT_JSON(&cl, "one JSON object instead of the table (docs/cli.md)"),
        CLI_OPT_OUTPUT(&cl),
        CLI_OPT_QUIET(&cl, "no progress bar"),
        CLI_OPT_PROGRESS(&cl),
        CLI_END,
    };
    int prc = cli_parse(&cl, &spec, opts, argc, argv);
    if (prc >= 0)
        return prc;
    const bool json = cl.json;
    bool plot_given;
    if (!cli_plot_resolve(&cl, &plot, plot_default, &plot_given))
        return SGDLAB_EXIT_USAGE;
    if (!cli_is_text(data)) {
        cli_fail(&cl, "--data", "'%s': expected text or text:PATH[,PATH...]", data);
        return SGDLAB_EXIT_USAGE;
    }
    if (threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? (nc > N_TRIALS ? N_TRIALS : nc) : 1;
    }
    bool have_gnuplot = plot == NULL || cli_have_gnuplot();
    if (!have_gnuplot && plot_given)
        cli_no_gnuplot(&cl, plot);
    double t_all = cli_now();
    cli_data d;
    if (!cli_load_text("case text", data, seq_len, streams, 0.05, SGD_TEXT_UTF8, &d))
        return SGDLAB_EXIT_USAGE;
    int rc = SGDLAB_EXIT_USAGE;
    ttrial trials[N_TRIALS];
    memset(trials, 0, sizeof trials);
    wordset words = {NULL, 0, 0};
    char full_spec[1024];
    sgd_dataset *train = NULL;
    char *corpus = NULL;
    /* One pass over the first train_chars characters of every stream's share. */
    int64_t per_step = streams * seq_len, rows = sgd_dataset_size(d.train);
    int64_t steps = train_chars / per_step < rows / streams ? train_chars / per_step : rows / streams;
    if (steps < 1)
        steps = 1;
    if (sgd_dataset_subset(&train, d.train, 0, steps * streams) != SGD_OK) {
        fprintf(stderr, "sgdlab case text: %s\n", sgd_error_last());
        goto out;
    }
    {
        /* Check the model once, before the threads: a bad spec is a usage error. */
        if ((model = cli_text_spec("case text", &d, model, full_spec, sizeof full_spec)) == NULL)
            goto out;
        sgd_model_options mo;
        sgd_model_options_init(&mo);
        mo.max_batch = streams;
        sgd_model *m;
        if (sgd_model_from_spec(&m, model, &mo, NULL) != SGD_OK) {
            fprintf(stderr, "sgdlab case text: --model: %s\n", sgd_error_last());
            goto out;
        }
        sgd_model_free(m);
    }
    /* The corpus's words, for the word check of the samples. */
    {
        const sgd_vocab *v = sgd_text_vocab(d.text);
        size_t len;
        rc = SGDLAB_EXIT_FAIL;
        if (sgd_vocab_decode(v, sgd_text_tokens(d.text), (size_t)sgd_text_length(d.text), NULL, 0, &len) != SGD_OK ||
            (corpus = malloc(len + 1)) == NULL ||
            sgd_vocab_decode(v, sgd_text_tokens(d.text), (size_t)sgd_text_length(d.text), corpus, len + 1, &len) !=
                SGD_OK) {
            fprintf(stderr, "sgdlab case text: out of memory\n");
            goto out;
        }
        wadd wa = {&words, true};
        each_word(corpus, len, add_one, &wa);
        free(corpus);
        corpus = NULL;
        if (!wa.ok) {
            fprintf(stderr, "sgdlab case text: out of memory\n");
            goto out;
        }
    }
    static const char *const names[N_TRIALS] = {"too high", "lower rate", "decay+clip", "guard"};
    for (int i = 0; i < N_TRIALS; i++) {
        ttrial *t = &trials[i];
        t->name = names[i];
        t->lr = i == T_LOW ? low : i == T_DECAY ? peak : high;
        t->clip = i == T_DECAY ? clip : 0;
        t->guard = i == T_GUARD;
        t->guard_factor = guard_factor;
        t->steps_planned = steps;
        t->first_alarm = -1;
        t->verdict = -1;
        t->val_loss = t->val_bpc = t->words = NAN;
        snprintf(t->optim, sizeof t->optim, "adam:lr=%.17g", t->lr);
        if (i == T_DECAY) {
            snprintf(t->sched, sizeof t->sched, "cosine:T_max=%lld", (long long)steps);
            snprintf(t->sched_text, sizeof t->sched_text, "cosine, clip %g", clip);
        } else {
            snprintf(t->sched, sizeof t->sched, "constant");
            snprintf(t->sched_text, sizeof t->sched_text, "constant");
        }
        if ((t->loss = malloc((size_t)steps * sizeof *t->loss)) == NULL) {
            fprintf(stderr, "sgdlab case text: out of memory\n");
            goto out;
        }
        for (int64_t k = 0; k < steps; k++)
            t->loss[k] = NAN;
    }
    char sum[128];
    if (!json) {
        printf("sgdlab case text: %s on %s\n", model, d.desc);
        printf("each trial: one pass over %lld characters (%lld steps of %lld streams x %lld characters), validation "
               "on the last %lld; Adam; seed %lld; %lld thread%s\n\n",
               (long long)(steps * per_step), (long long)steps, (long long)streams, (long long)seq_len,
               (long long)(sgd_dataset_size(d.val) * seq_len), (long long)seed, (long long)threads,
               threads == 1 ? "" : "s");
        fflush(stdout);
    }
    (void)sum;
    tctx c;
    memset(&c, 0, sizeof c);
    c.model = model;
    c.seed = (uint64_t)seed;
    c.sample_len = sample;
    c.temperature = temperature;
    c.d = &d;
    c.train = train;
    c.words = &words;
    c.trials = trials;
    static const int order[N_TRIALS] = {T_DECAY, T_LOW, T_GUARD, T_HIGH};
    c.order = order;
    c.steps_total = N_TRIALS * steps;
    cli_bar_init(&c.bar, cli_progress_on(&cl));
    pthread_mutex_init(&c.bar_lock, NULL);
    c.t0 = cli_now();
    pthread_t tids[64];
    int started = 0;
    for (int64_t k = 0; k < threads && k < N_TRIALS; k++)
        if (pthread_create(&tids[started], NULL, worker, &c) == 0)
            started++;
    if (started == 0)
        worker(&c);
    for (int k = 0; k < started; k++)
        pthread_join(tids[k], NULL);
    cli_bar_clear(&c.bar);
    pthread_mutex_destroy(&c.bar_lock);
    for (int i = 0; i < N_TRIALS; i++)
        if (trials[i].status != SGD_OK && trials[i].status != SGD_EDIVERGED) {
            fprintf(stderr, "sgdlab case text: trial '%s': %s\n", trials[i].name, trials[i].error);
            rc = SGDLAB_EXIT_FAIL;
            goto out;
        }
    /* The story holds when the too-high trial is in trouble and a rescue is healthy and writes better. */
    const ttrial *th = &trials[T_HIGH];
    bool trouble = th->status == SGD_EDIVERGED || th->verdict == SGD_MONITOR_DIVERGED ||
                   th->verdict == SGD_MONITOR_UNSTABLE;
    bool rescued = false;
    for (int i = 1; i < N_TRIALS; i++) {
        const ttrial *t = &trials[i];
        rescued = rescued || (t->status == SGD_OK && t->verdict == SGD_MONITOR_HEALTHY && isfinite(t->val_bpc) &&
                              (!isfinite(th->val_bpc) || t->val_bpc < th->val_bpc));
    }
    rc = trouble && rescued ? SGDLAB_EXIT_OK : SGDLAB_EXIT_FAIL;
    bool saved = false;
    if (save != NULL) {
        sgd_checkpoint_parts parts;
        sgd_checkpoint_parts_init(&parts);
        parts.trainer = trials[T_DECAY].trainer;
        saved = cli_save_checkpoint(&cl, "--save", save, &parts, &d);
        if (!saved)
            rc = SGDLAB_EXIT_FAIL;
    }
    bool plotted = false;
    if (plot != NULL && have_gnuplot) {
        char title[600];
        snprintf(title, sizeof title, "sgdlab case text: a character LSTM on %s, a rate too high and three rescues",
                 d.name);
        plotted = plot_curves(&cl, trials, plot, title);
    }
    if (plot_given && !plotted)
        rc = SGDLAB_EXIT_FAIL;
    double total = cli_now() - t_all;
    char b1[32], b2[32];
    if (json) {
        printf("{\"schema\":\"" CLI_SCHEMA("case-text") "\",\"command\":\"case\",\"case\":\"text\",\"model\":");
        cli_json_str(stdout, trials[T_LOW].model != NULL ? sgd_model_spec(trials[T_LOW].model) : model);
        printf(",\"data\":");
        cli_json_str(stdout, d.name);
        printf(",\"characters\":%lld,\"vocabulary\":%lld,\"train_chars\":%lld,\"seq_len\":%lld,\"streams\":%lld,"
               "\"seed\":%lld,\"threads\":%lld,\"trials\":[",
               (long long)sgd_text_length(d.text), (long long)d.classes, (long long)(steps * per_step),
               (long long)seq_len, (long long)streams, (long long)seed, (long long)threads);
        for (int i = 0; i < N_TRIALS; i++) {
            if (i)
                printf(",");
            json_trial(&trials[i]);
        }
        printf("],\"story_holds\":%s,\"saved\":", trouble && rescued ? "true" : "false");
        if (saved)
            cli_json_str(stdout, save);
        else
            printf("null");
        printf(",\"plot\":");
        if (plotted)
            cli_json_str(stdout, plot);
        else
            printf("null");
        printf(",\"seconds\":%.3f}\n", total);
        goto out;
    }
    printf("%-11s  %6s  %-15s  %-5s  %-9s  %-22s  %8s  %6s  %5s  %7s  %7s\n", "trial", "lr", "schedule", "guard",
           "verdict", "first alarm", "val bpc", "words", "steps", "rescues", "time");
    for (int i = 0; i < N_TRIALS; i++) {
        const ttrial *t = &trials[i];
        char where[64], bpc[32], wds[32];
        if (t->first_alarm >= 0)
            snprintf(where, sizeof where, "%s at step %lld", sgd_monitor_kind_name(t->first_kind),
                     (long long)t->first_alarm);
        else
            snprintf(where, sizeof where, "-");
        snprintf(bpc, sizeof bpc, isfinite(t->val_bpc) ? "%.3f" : "-", t->val_bpc);
        snprintf(wds, sizeof wds, isfinite(t->words) ? "%.0f%%" : "-", 100 * t->words);
        printf("%-11s  %6s  %-15s  %-5s  %-9s  %-22s  %8s  %6s  %5lld  %7lld  %6.1fs\n", t->name,
               cli_num(b1, sizeof b1, t->lr), t->sched_text, t->guard ? "on" : "off", verdict_text(t), where, bpc, wds,
               (long long)t->steps, (long long)t->rescues, t->seconds);
    }
    printf("\n(val bpc: bits per character on the held-out end of the text, the lower the better; words: the\n"
           "share of the words of the sample below that are words of the corpus)\n");
    for (int i = 0; i < N_TRIALS; i++) {
        const ttrial *t = &trials[i];
        printf("\n%s, lr %s (%s%s), %s:\n", t->name, cli_num(b1, sizeof b1, t->lr), t->sched_text,
               t->guard ? ", guard" : "", verdict_text(t));
        if (t->sample != NULL)
            print_sample(t->sample);
        else
            printf("    (no sample)\n");
    }
    printf("\n");
    if (th->first_alarm >= 0)
        printf("lr %s is too high: the monitor raised %s at step %lld; the run %s after %lld steps.\n",
               cli_num(b1, sizeof b1, th->lr), sgd_monitor_kind_name(th->first_kind), (long long)th->first_alarm,
               th->status == SGD_EDIVERGED ? "was stopped as diverged" : "ended", (long long)th->steps);
    else
        printf("lr %s: the monitor raised no alarm (try a higher --high-lr).\n", cli_num(b1, sizeof b1, th->lr));
    const ttrial *tg = &trials[T_GUARD];
    printf("the guard rescued the same rate %lld time%s (x%g each): it ended at lr %s (%s of the start).\n",
           (long long)tg->rescues, tg->rescues == 1 ? "" : "s", guard_factor, cli_num(b1, sizeof b1, tg->final_lr),
           cli_num(b2, sizeof b2, tg->final_lr / tg->lr));
    if (saved)
        printf("saved: %s (sgdlab generate --resume %s)\n", save, save);
    if (plotted)
        printf("plot: %s\n", plot);
    else if (plot != NULL && !have_gnuplot)
        printf("plot: not drawn: gnuplot is not installed (apt-get install gnuplot-nox)\n");
    else if (plot != NULL)
        printf("plot: not drawn (see the message above)\n");
    printf("time: %.1f s (data %.1f s)\n", total, d.load_seconds);
out:
    for (int i = 0; i < N_TRIALS; i++)
        trial_free(&trials[i]);
    free(corpus);
    wordset_free(&words);
    sgd_dataset_free(train);
    cli_data_free(&d);
    return rc;
}
