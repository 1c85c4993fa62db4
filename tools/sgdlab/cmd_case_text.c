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
#include "case_run.h" /* and cli.h */
#include "commands.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* The corpus's words (lower-case ASCII letters), for the samples' word check. */
typedef struct wordset {
    char **slot;
    size_t cap, n;
} wordset;

/* Each trial's own measures, beside its record (case_run.h). */
typedef struct text_result {
    double val_loss, val_bpc, words;
    char *sample;
} text_result;

typedef struct text_ctx {
    const cli_data *d;
    const wordset *words;
    uint64_t seed;
    int64_t sample_len;
    double temperature;
    text_result *res;
} text_ctx;

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

/*
 * After a trial (in its thread): the validation of the model as it is (a
 * diverged run stopped before its epoch ended), a sample of its text and the
 * share of the sample's words that are words of the corpus.
 */
static void on_done(case_trial *t, int i, void *user)
{
    text_ctx *c = user;
    text_result *r = &c->res[i];
    if (sgd_model_evaluate(t->model, c->d->val, 0, &r->val_loss, NULL) != SGD_OK)
        r->val_loss = NAN;
    r->val_bpc = r->val_loss / LN2;
    if (!cli_text_sample(NULL, t->model, sgd_text_vocab(c->d->text), c->sample_len, c->temperature, c->seed, NULL,
                         &r->sample))
        r->sample = NULL;
    r->words = r->sample != NULL ? word_share(c->words, r->sample) : NAN;
}

/* ---------------------------------------------------------------- the plot */

/*
 * The curves: the training loss of every trial in bits per character (a
 * moving average over 20 steps); *top: the highest point so far.
 */
static void write_curve(FILE *f, const case_trial *t, void *user)
{
    double *top = user, sum = 0;
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
        if (isfinite(avg) && avg > *top)
            *top = avg;
        fprintf(f, "%lld %.6g\n", (long long)(k + 1), ok ? avg : NAN);
    }
}

static const case_plot_style text_plot = {
    .marks = {{"7", "#000000", "monitor: divergence, NaN, oscillation, stagnation", false},
              {"1", "#777777", "monitor: spike, gradient spike", false},
              {"5", "#000000", "guard: rollback, lr cut", false},
              {"13", "#000000", "validation bits per character", true}},
    .n_marks = 4,
    .digits = 6,
    .curve = write_curve,
};

/*
 * The curves, the monitor's alarms and the guard's rollbacks as points on
 * them, the validation of each trial as a dot after its last step.
 */
static bool plot_curves(const cli *cl, const case_trial *trials, const text_result *res, const char *path,
                        const char *title)
{
    double top = 0;
    case_plot cp;
    if (!case_plot_begin(&cp, cl, &text_plot, trials, &top))
        return false;
    double ymax = top > 0 ? 1.1 * top : 8;
    for (int i = 0; i < CASE_TRIALS; i++) {
        const case_trial *t = &trials[i];
        for (size_t k = 0; k < t->n_events; k++) {
            const case_event *e = &t->events[k];
            int cls = e->kind < 0 ? 2 : e->kind == SGD_MONITOR_SPIKE || e->kind == SGD_MONITOR_GRAD_SPIKE ? 1 : 0;
            double y = isfinite(e->loss) ? e->loss / LN2 : NAN;
            if (!isfinite(y) && e->step >= 0 && e->step < t->n_loss)
                y = t->loss[e->step] / LN2;
            if (!isfinite(y) || y > ymax)
                y = 0.97 * ymax;
            case_plot_mark(&cp, i, e->step + 1, y, cls);
        }
        if (isfinite(res[i].val_bpc)) /* the validation, after the last step */
            case_plot_mark(&cp, i, t->n_loss, res[i].val_bpc < ymax ? res[i].val_bpc : 0.97 * ymax, 3);
    }
    char script[16384], tq[1700];
    int w = snprintf(script, sizeof script,
                     "set title '%s' noenhanced\n"
                     "set xlabel 'training step (%s)'\nset ylabel 'training loss, bits per character (20-step mean)'\n"
                     "set yrange [0:%.4g]\nset grid\nset key outside right top noenhanced\nset datafile missing 'nan'\n"
                     "plot ",
                     cli_gp_str(tq, sizeof tq, title),
                     "batches of parallel streams", ymax);
    for (int i = 0; i < CASE_TRIALS; i++)
        if (isfinite(res[i].val_bpc))
            snprintf(cp.extra[i], sizeof cp.extra[i], ", val %.2f bpc", res[i].val_bpc);
    return case_plot_finish(&cp, script, sizeof script, w, trials, path);
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

static void json_trial(const case_trial *t, const text_result *r)
{
    case_json_trial_begin(t);
    printf(",\"clip_norm\":%.9g,\"guard\":%s", t->clip, t->guard ? "true" : "false");
    case_json_trial_alarms(t, false);
    printf(",\"val_loss\":");
    cli_json_num(stdout, r->val_loss);
    printf(",\"val_bpc\":");
    cli_json_num(stdout, r->val_bpc);
    printf(",\"val_perplexity\":");
    cli_json_num(stdout, exp(r->val_loss));
    case_json_trial_end(t);
    printf(",\"sample\":");
    if (r->sample != NULL)
        cli_json_str(stdout, r->sample);
    else
        printf("null");
    printf(",\"corpus_words\":");
    cli_json_num(stdout, r->words);
    printf("}");
}

/* ---------------------------------------------------------------- the command */

int sgdlab_case_text(int argc, char **argv)
{
    const char *data = "text", *model = TEXT_MODEL, *plot = TEXT_PLOT, *save = NULL;
    double high = 1.0, low = 0.005, peak = 0.01, clip = 1.0, temperature = 0.7, guard_factor = 0.1;
    int64_t train_chars = 2000000, seq_len = 100, streams = 32, sample = 300, seed = 0;
    int64_t threads = case_default_threads();
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
        CASE_OPT_THREADS(&threads),
        CLI_SECTION("output"),
        {.name = "save", .kind = CLI_OUTFILE, .dest = &save, .arg = "FILE",
         .help = "the decay+clip trial's model, vocabulary and state, for sgdlab generate --resume FILE (checked "
                 "before training)"},
        CASE_OPTS_OUTPUT_END(&cl, &plot, &plot_default, TEXT_PLOT, "no progress bar"),
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
    bool have_gnuplot = case_can_plot(&cl, plot, plot_given);
    double t_all = cli_now();
    cli_data d;
    if (!cli_load_text("case text", data, seq_len, streams, 0.05, SGD_TEXT_UTF8, &d))
        return SGDLAB_EXIT_USAGE;
    int rc = SGDLAB_EXIT_USAGE;
    case_trial trials[CASE_TRIALS];
    text_result res[CASE_TRIALS];
    memset(trials, 0, sizeof trials);
    memset(res, 0, sizeof res);
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
    static const char *const names[CASE_TRIALS] = {"too high", "lower rate", "decay+clip", "guard"};
    for (int i = 0; i < CASE_TRIALS; i++) {
        case_trial *t = &trials[i];
        res[i].val_loss = res[i].val_bpc = res[i].words = NAN;
        if (!case_trial_init(t, names[i], i == CASE_LOW ? low : i == CASE_SCHED ? peak : high, i == CASE_GUARD, 1,
                             steps)) {
            fprintf(stderr, "sgdlab case text: out of memory\n");
            goto out;
        }
        t->clip = i == CASE_SCHED ? clip : 0;
        snprintf(t->optim, sizeof t->optim, "adam:lr=%.17g", t->lr);
        if (i == CASE_SCHED) {
            snprintf(t->sched, sizeof t->sched, "cosine:T_max=%lld", (long long)steps);
            snprintf(t->sched_text, sizeof t->sched_text, "cosine, clip %g", clip);
        }
    }
    if (!json) {
        printf("sgdlab case text: %s on %s\n", model, d.desc);
        printf("each trial: one pass over %lld characters (%lld steps of %lld streams x %lld characters), validation "
               "on the last %lld; Adam; seed %lld; %lld thread%s\n\n",
               (long long)(steps * per_step), (long long)steps, (long long)streams, (long long)seq_len,
               (long long)(sgd_dataset_size(d.val) * seq_len), (long long)seed, (long long)threads,
               threads == 1 ? "" : "s");
        fflush(stdout);
    }
    text_ctx tc = {&d, &words, (uint64_t)seed, sample, temperature, res};
    /* The models stay for --save (the decay trial's) and the JSON's model spec (the lower rate's). */
    case_run_options ro = {.model = model, .seed = (uint64_t)seed, .train = train, .val = d.val, .threads = threads,
                           .bar_every = 10, .progress = cli_progress_on(&cl), .keep = true, .on_done = on_done,
                           .user = &tc};
    sgd_trainer_options_init(&ro.trainer);
    ro.trainer.shuffle = 0;
    ro.trainer.batch_size = streams;
    ro.trainer.guard_factor = guard_factor;
    case_run(&ro, trials);
    if (!case_all_ran(&cl, trials)) {
        rc = SGDLAB_EXIT_FAIL;
        goto out;
    }
    /* The story holds when the too-high trial is in trouble and a rescue is healthy and writes better. */
    double high_bpc = res[CASE_HIGH].val_bpc;
    bool trouble = case_in_trouble(&trials[CASE_HIGH]);
    bool rescued = false;
    for (int i = 1; i < CASE_TRIALS; i++)
        rescued = rescued || (case_healthy(&trials[i]) && isfinite(res[i].val_bpc) &&
                              (!isfinite(high_bpc) || res[i].val_bpc < high_bpc));
    rc = trouble && rescued ? SGDLAB_EXIT_OK : SGDLAB_EXIT_FAIL;
    bool saved = false;
    if (save != NULL) {
        sgd_checkpoint_parts parts;
        sgd_checkpoint_parts_init(&parts);
        parts.trainer = trials[CASE_SCHED].trainer;
        saved = cli_save_checkpoint(&cl, "--save", save, &parts, &d);
        if (!saved)
            rc = SGDLAB_EXIT_FAIL;
    }
    bool plotted = false;
    if (plot != NULL && have_gnuplot) {
        char title[600];
        snprintf(title, sizeof title, "sgdlab case text: a character LSTM on %s, a rate too high and three rescues",
                 d.name);
        plotted = plot_curves(&cl, trials, res, plot, title);
    }
    if (plot_given && !plotted)
        rc = SGDLAB_EXIT_FAIL;
    double total = cli_now() - t_all;
    if (json) {
        const sgd_model *m = trials[CASE_LOW].model;
        case_json_begin(CLI_SCHEMA("case-text"), "text", m != NULL ? sgd_model_spec(m) : model, d.name);
        printf(",\"characters\":%lld,\"vocabulary\":%lld,\"train_chars\":%lld,\"seq_len\":%lld,\"streams\":%lld,"
               "\"seed\":%lld,\"threads\":%lld,\"trials\":[",
               (long long)sgd_text_length(d.text), (long long)d.classes, (long long)(steps * per_step),
               (long long)seq_len, (long long)streams, (long long)seed, (long long)threads);
        for (int i = 0; i < CASE_TRIALS; i++) {
            if (i)
                printf(",");
            json_trial(&trials[i], &res[i]);
        }
        case_json_story(trouble && rescued);
        printf(",\"saved\":");
        if (saved)
            cli_json_str(stdout, save);
        else
            printf("null");
        case_json_end(plot, plotted, total);
        goto out;
    }
    static const case_table cols = {11, 15, 22};
    char own[80], b1[32], b2[32];
    snprintf(own, sizeof own, "%8s  %6s", "val bpc", "words");
    case_table_head(&cols, own);
    for (int i = 0; i < CASE_TRIALS; i++) {
        char bpc[32], wds[32];
        snprintf(bpc, sizeof bpc, isfinite(res[i].val_bpc) ? "%.3f" : "-", res[i].val_bpc);
        snprintf(wds, sizeof wds, isfinite(res[i].words) ? "%.0f%%" : "-", 100 * res[i].words);
        snprintf(own, sizeof own, "%8s  %6s", bpc, wds);
        case_table_row(&cols, &trials[i], own);
    }
    printf("\n(val bpc: bits per character on the held-out end of the text, the lower the better; words: the\n"
           "share of the words of the sample below that are words of the corpus)\n");
    for (int i = 0; i < CASE_TRIALS; i++) {
        const case_trial *t = &trials[i];
        printf("\n%s, lr %s (%s%s), %s:\n", t->name, cli_num(b1, sizeof b1, t->lr), t->sched_text,
               t->guard ? ", guard" : "", case_verdict(t));
        if (res[i].sample != NULL)
            print_sample(res[i].sample);
        else
            printf("    (no sample)\n");
    }
    printf("\n");
    snprintf(b2, sizeof b2, " (x%g each)", guard_factor);
    case_print_story(trials, b2);
    if (saved)
        printf("saved: %s (sgdlab generate --resume %s)\n", save, save);
    case_print_end(plot, plotted, have_gnuplot, total, d.load_seconds);
out:
    for (int i = 0; i < CASE_TRIALS; i++)
        free(res[i].sample);
    case_trials_free(trials);
    free(corpus);
    wordset_free(&words);
    sgd_dataset_free(train);
    cli_data_free(&d);
    return rc;
}
