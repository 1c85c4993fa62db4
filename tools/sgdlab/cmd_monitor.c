/*
 * sgdlab monitor: runs the health monitor over a training log, from a file or
 * a pipe, as it is written. The reading rules are logread.c's; this file is
 * the options, the input (never harming the producer of a pipe), runs, and
 * the output. SPDX-License-Identifier: MIT
 */
#include "cli.h"
#include "commands.h"
#include "logread.h"

#include "core/internal.h" /* sgd__parse_double: strict, locale-independent numbers */
#include "sgdlab/sgdlab.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SCHEMA "sgdlab.monitor/1"
#define MAX_COLUMNS 1024
#define KEEP_SKIPPED 3

void sgdlab_help_monitor(void)
{
    printf(
        "usage: sgdlab monitor [options] [FILE|-]\n"
        "\n"
        "Reads a training log from FILE or standard input (also when '-' or no FILE is\n"
        "given) as it is written, runs the libsgdlab health monitor over its training\n"
        "loss and prints one JSON object per event, then a verdict line per run:\n"
        "  {\"schema\":\"" SCHEMA "\",\"type\":\"event\",\"kind\":\"divergence\",\"run\":1,\"step\":12,...}\n"
        "  {\"schema\":\"" SCHEMA "\",\"type\":\"verdict\",\"run\":1,\"verdict\":\"diverged\",...}\n"
        "\"step\" is the 0-based index of the observation, \"producer_step\" the log's own\n"
        "step (or null); \"verdict\" is one of healthy, diverged, unstable, stagnant.\n"
        "\n"
        "Reading: the training loss is found in each line by name (loss, train_loss,\n"
        "training_loss, total_loss, llm.c's trl) in the forms 'key value', 'key: value',\n"
        "'key=value', JSON objects and Python dicts, CSV/TSV with a header (empty fields\n"
        "kept in place), Keras progress bars and lines redrawn with '\\r'; the step, the\n"
        "learning rate and the gradient norm likewise (step, iter, s; lr, learning_rate;\n"
        "norm, grad_norm). Validation and test values (val_loss, eval_loss, llm.c's tel,\n"
        "lines that say val, eval or test) are reported apart, never read as training\n"
        "losses. A plain column of numbers is read as the loss. Lines that cannot be\n"
        "read are skipped and counted. A step that goes back, or a header that repeats,\n"
        "starts a new run, judged on its own. docs/monitor.md has the rules.\n"
        "\n"
        "options:\n"
        "  -k, --key NAME          the field holding the training loss\n"
        "      --step-key NAME     the field holding the step\n"
        "      --lr-key NAME       the field holding the learning rate\n"
        "      --grad-norm-key NAME  the field holding the gradient norm\n"
        "      --match REGEX       POSIX extended regex whose one capture group is the loss;\n"
        "                          lines that do not match are skipped\n"
        "  -c, --column N          plain columns: the 1-based column holding the loss\n"
        "  -g, --grad-column N     with --column: the column of the gradient norm\n"
        "  -l, --lr-column N       with --column: the column of the learning rate\n"
        "      --initial-loss X    the untrained loss, for a log that starts mid-run\n"
        "      --classes C         the same for a classifier: ln C\n"
        "      --floor X           the lowest value the loss can take (default 0; set it\n"
        "                          below the lowest loss for losses that can be negative)\n"
        "      --set SPEC          monitor options, e.g. divergence_ratio=5,plateau_steps=200\n"
        "                          (field names of sgd_monitor_options; docs/monitor.md)\n"
        "  -f, --follow            when FILE is a regular file, keep reading as it grows\n"
        "                          (like tail -f; a truncated file is read again from its\n"
        "                          start, as a new run) until interrupted or --idle\n"
        "      --idle SECONDS      with --follow, stop after SECONDS without new data\n"
        "      --fail-on KINDS     exit with status 1 if any of KINDS happened in a run: a\n"
        "                          comma-separated list of events (nonfinite, divergence, spike,\n"
        "                          oscillation, plateau, stagnation, grad_spike), final verdicts\n"
        "                          (diverged, unstable, stagnant), 'alarm' or 'any'\n"
        "      --exit-early        stop reading as soon as --fail-on matched (by default the\n"
        "                          input is read to its end whatever happens, so that the\n"
        "                          program writing into a pipe is never killed)\n"
        "      --human             a readable report instead of JSON Lines\n"
        "  -q, --quiet             only the verdicts\n"
        "  -h, --help              show this help\n"
        "\n"
        "In a pipe, make the producer flush its lines: python -u train.py | sgdlab monitor\n"
        "(or PYTHONUNBUFFERED=1).\n"
        "\n"
        "Exit status: 0 whatever the verdict (unless --fail-on matched: 1); 2 for bad\n"
        "arguments, unreadable input, or input in which no training loss was found.\n");
}

/* ------------------------------------------------------------ signals */

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocking read returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* A reader of our output that goes away must not kill us: we go on draining our input. */
    signal(SIGPIPE, SIG_IGN);
}

/* ------------------------------------------------------------ arguments */

typedef struct args {
    const char *file;
    logread_opts ro;
    bool follow, human, quiet, exit_early;
    double idle;
    double initial_loss; /* NaN: none */
    double floor;
    bool have_floor;
    uint32_t fail_events;
    uint32_t fail_verdicts; /* bit per sgd_monitor_verdict */
    const char *set;
} args;

static bool parse_fail_on(const char *list, args *a)
{
    char buf[512];
    if (strlen(list) >= sizeof buf) {
        fprintf(stderr, "sgdlab monitor: --fail-on: list too long\n");
        return false;
    }
    strcpy(buf, list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        bool ok = false;
        for (int k = 0; k < SGD_MONITOR_KIND_COUNT; k++)
            if (strcmp(tok, sgd_monitor_kind_name(k)) == 0)
                a->fail_events |= 1u << k, ok = true;
        for (int v = 1; v <= 3; v++)
            if (strcmp(tok, sgd_monitor_verdict_name(v)) == 0)
                a->fail_verdicts |= 1u << v, ok = true;
        if (strcmp(tok, "alarm") == 0)
            a->fail_events |= SGD_MONITOR_MASK_ALARMS, ok = true;
        if (strcmp(tok, "any") == 0)
            a->fail_events |= SGD_MONITOR_MASK_ALL, ok = true;
        if (!ok) {
            fprintf(stderr, "sgdlab monitor: --fail-on: unknown kind '%s'\n", tok);
            return false;
        }
    }
    return true;
}

static bool num_arg(const char *opt, const char *val, double lo, double hi, bool lo_open, double *out)
{
    sgd__str s = {val, strlen(val)};
    double v;
    if (sgd__parse_double(s, false, &v) != SGD_OK || (lo_open ? !(v > lo) : !(v >= lo)) || !(v <= hi)) {
        fprintf(stderr, "sgdlab monitor: --%s: '%s': must be a number in %s%g, %g]\n", opt, val, lo_open ? "(" : "[",
                lo, hi);
        return false;
    }
    *out = v;
    return true;
}

static bool int_arg(const char *opt, const char *val, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno != 0 || end == val || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "sgdlab monitor: --%s: '%s': must be an integer in [%ld, %ld]\n", opt, val, lo, hi);
        return false;
    }
    *out = (int)v;
    return true;
}

/* All of the command's options, in one place. Returns -1 when the command runs, else an exit status. */
static int parse_args(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    a->initial_loss = NAN;
    enum {
        O_STEP_KEY = 256,
        O_LR_KEY,
        O_GN_KEY,
        O_MATCH,
        O_INITIAL,
        O_CLASSES,
        O_FLOOR,
        O_SET,
        O_IDLE,
        O_FAIL_ON,
        O_EXIT_EARLY,
        O_HUMAN,
    };
    static const struct option longopts[] = {
        {"key", required_argument, NULL, 'k'},
        {"step-key", required_argument, NULL, O_STEP_KEY},
        {"lr-key", required_argument, NULL, O_LR_KEY},
        {"grad-norm-key", required_argument, NULL, O_GN_KEY},
        {"match", required_argument, NULL, O_MATCH},
        {"column", required_argument, NULL, 'c'},
        {"grad-column", required_argument, NULL, 'g'},
        {"lr-column", required_argument, NULL, 'l'},
        {"initial-loss", required_argument, NULL, O_INITIAL},
        {"classes", required_argument, NULL, O_CLASSES},
        {"floor", required_argument, NULL, O_FLOOR},
        {"set", required_argument, NULL, O_SET},
        {"follow", no_argument, NULL, 'f'},
        {"idle", required_argument, NULL, O_IDLE},
        {"fail-on", required_argument, NULL, O_FAIL_ON},
        {"exit-early", no_argument, NULL, O_EXIT_EARLY},
        {"human", no_argument, NULL, O_HUMAN},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    double classes = 0;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":k:c:g:l:fqh", longopts, NULL)) != -1) {
        const char *v = optarg;
        switch (ch) {
        case 'k':
            a->ro.key = v;
            break;
        case O_STEP_KEY:
            a->ro.step_key = v;
            break;
        case O_LR_KEY:
            a->ro.lr_key = v;
            break;
        case O_GN_KEY:
            a->ro.gn_key = v;
            break;
        case O_MATCH:
            a->ro.match = v;
            break;
        case 'c':
            if (!int_arg("column", v, 1, MAX_COLUMNS, &a->ro.column))
                return SGDLAB_EXIT_USAGE;
            break;
        case 'g':
            if (!int_arg("grad-column", v, 1, MAX_COLUMNS, &a->ro.grad_column))
                return SGDLAB_EXIT_USAGE;
            break;
        case 'l':
            if (!int_arg("lr-column", v, 1, MAX_COLUMNS, &a->ro.lr_column))
                return SGDLAB_EXIT_USAGE;
            break;
        case O_INITIAL:
            if (!num_arg("initial-loss", v, -1e300, 1e300, false, &a->initial_loss))
                return SGDLAB_EXIT_USAGE;
            break;
        case O_CLASSES:
            if (!num_arg("classes", v, 1, 1e12, true, &classes))
                return SGDLAB_EXIT_USAGE;
            break;
        case O_FLOOR:
            if (!num_arg("floor", v, -1e300, 1e300, false, &a->floor))
                return SGDLAB_EXIT_USAGE;
            a->have_floor = true;
            break;
        case O_SET:
            a->set = v;
            break;
        case 'f':
            a->follow = true;
            break;
        case O_IDLE:
            if (!num_arg("idle", v, 0, 1e9, true, &a->idle))
                return SGDLAB_EXIT_USAGE;
            break;
        case O_FAIL_ON:
            if (!parse_fail_on(v, a))
                return SGDLAB_EXIT_USAGE;
            break;
        case O_EXIT_EARLY:
            a->exit_early = true;
            break;
        case O_HUMAN:
            a->human = true;
            break;
        case 'q':
            a->quiet = true;
            break;
        case 'h':
            sgdlab_help_monitor();
            return SGDLAB_EXIT_OK;
        case ':':
            fprintf(stderr, "sgdlab monitor: %s needs a value\n", argv[optind - 1]);
            return SGDLAB_EXIT_USAGE;
        default:
            fprintf(stderr, "sgdlab monitor: unknown option '%s' (see sgdlab monitor --help)\n", argv[optind - 1]);
            return SGDLAB_EXIT_USAGE;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (a->file != NULL) {
            fprintf(stderr, "sgdlab monitor: more than one input given ('%s', '%s')\n", a->file, argv[i]);
            return SGDLAB_EXIT_USAGE;
        }
        a->file = argv[i];
    }
    int ways = (a->ro.key != NULL) + (a->ro.match != NULL) + (a->ro.column > 0);
    if (ways > 1) {
        fprintf(stderr, "sgdlab monitor: --key, --match and --column: choose one\n");
        return SGDLAB_EXIT_USAGE;
    }
    if ((a->ro.grad_column > 0 || a->ro.lr_column > 0) && a->ro.column == 0) {
        fprintf(stderr, "sgdlab monitor: --grad-column and --lr-column go with --column\n");
        return SGDLAB_EXIT_USAGE;
    }
    if (classes > 0) {
        if (!isnan(a->initial_loss)) {
            fprintf(stderr, "sgdlab monitor: --initial-loss and --classes: choose one\n");
            return SGDLAB_EXIT_USAGE;
        }
        a->initial_loss = log(classes);
    }
    if (a->exit_early && a->fail_events == 0 && a->fail_verdicts == 0) {
        fprintf(stderr, "sgdlab monitor: --exit-early goes with --fail-on\n");
        return SGDLAB_EXIT_USAGE;
    }
    return -1;
}

/* ------------------------------------------------------------ output */

typedef struct evalsum {
    int64_t count;
    double first, last, best;
} evalsum;

typedef struct run {
    int number;
    sgd_monitor *m;
    int64_t lines;   /* lines of this run */
    int64_t skipped; /* of which could not be used */
    int64_t first_line;
    evalsum eval;
    uint32_t seen;   /* kinds seen */
    int64_t first_pstep; /* the producer's step of the first observation, or -1 */
    bool have_obs;
} run;

typedef struct ctx {
    const args *a;
    const char *name;
    logread *rd;
    logsplit sp;
    run r;
    int64_t lineno;       /* the line being read */
    int64_t obs_total;    /* observations in every run */
    int64_t lines_total, skipped_total, eval_total, headers_total;
    int64_t kept_line[KEEP_SKIPPED];
    char kept[KEEP_SKIPPED][100];
    int nkept;
    bool floor_warned;
    bool out_dead;   /* standard output failed: we stop writing, never reading */
    bool failed;     /* --fail-on matched in some run */
    bool stop;       /* --exit-early */
    sgd_monitor_options mo;
    sgd_status err;  /* a monitor call that failed */
} ctx;

static bool out_ok(ctx *c)
{
    if (c->out_dead)
        return false;
    if (ferror(stdout)) {
        c->out_dead = true;
        return false;
    }
    return true;
}

static void out_flush(ctx *c)
{
    if (!c->out_dead && (fflush(stdout) != 0 || ferror(stdout)))
        c->out_dead = true;
}

static void json_number(const char *key, double v)
{
    printf(",\"%s\":", key);
    cli_json_num(stdout, v);
}

static void json_count(const char *key, int64_t v)
{
    if (v >= 0)
        printf(",\"%s\":%lld", key, (long long)v);
    else
        printf(",\"%s\":null", key);
}

static void json_string(const char *key, const char *s)
{
    printf(",\"%s\":", key);
    if (s != NULL)
        cli_json_str(stdout, s);
    else
        printf("null");
}

static const char *severity_name(int32_t s)
{
    return s == SGD_MONITOR_CRITICAL ? "critical" : s == SGD_MONITOR_WARNING ? "warning" : "info";
}

static const char *nonfinite_name(double v)
{
    return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

static bool fail_matched(const ctx *c, uint32_t seen, int32_t verdict)
{
    return (seen & c->a->fail_events) || (verdict >= 0 && (c->a->fail_verdicts & (1u << verdict)));
}

static int32_t on_event(const sgd_monitor_event *ev, double *lr_scale, void *user)
{
    (void)lr_scale;
    ctx *c = user;
    c->r.seen |= 1u << ev->kind;
    if (c->a->exit_early && fail_matched(c, 1u << ev->kind, -1))
        c->stop = true;
    if (c->a->quiet || !out_ok(c))
        return SGD_MONITOR_CONTINUE;
    if (c->a->human) {
        if (c->r.number > 1)
            printf("run %d, ", c->r.number);
        printf("step %lld", (long long)ev->step);
        if (ev->producer_step >= 0)
            printf(" (log step %lld, line %lld)", (long long)ev->producer_step, (long long)c->lineno);
        else
            printf(" (line %lld)", (long long)c->lineno);
        printf(": %s [%s]", sgd_monitor_kind_name(ev->kind), severity_name(ev->severity));
        if (ev->kind == SGD_MONITOR_NONFINITE) {
            if (!isfinite(ev->loss))
                printf(" loss is %s", nonfinite_name(ev->loss));
            else
                printf(" gradient norm is %s", nonfinite_name(ev->grad_norm));
        } else {
            printf(" loss %.6g, smoothed %.6g; %s = %.4g (threshold %.4g)", ev->loss, ev->smoothed, ev->detail,
                   ev->statistic, ev->threshold);
        }
        if (ev->ref_step >= 0) {
            printf("; spike at step %lld", (long long)ev->ref_step);
            if (ev->ref_producer_step >= 0)
                printf(" (log step %lld)", (long long)ev->ref_producer_step);
        }
        printf("\n    suggestion: %s\n", ev->remedy);
    } else {
        printf("{\"schema\":\"" SCHEMA "\",\"type\":\"event\",\"kind\":\"%s\",\"run\":%d,\"step\":%lld",
               sgd_monitor_kind_name(ev->kind), c->r.number, (long long)ev->step);
        json_count("producer_step", ev->producer_step);
        json_count("line", c->lineno);
        /* Every field is always there: null when it does not apply or was not given. */
        json_number("loss", ev->loss);
        printf(",\"value\":"); /* a nonfinite event's value, of the loss or else of the gradient norm */
        if (ev->kind == SGD_MONITOR_NONFINITE)
            cli_json_str(stdout, nonfinite_name(!isfinite(ev->loss) ? ev->loss : ev->grad_norm));
        else
            printf("null");
        json_number("grad_norm", isfinite(ev->grad_norm) && ev->grad_norm < 0 ? NAN : ev->grad_norm);
        json_number("lr", ev->lr >= 0 ? ev->lr : NAN);
        json_number("smoothed", ev->smoothed);
        json_number("statistic", ev->kind != SGD_MONITOR_NONFINITE ? ev->statistic : NAN);
        json_number("threshold", ev->kind != SGD_MONITOR_NONFINITE ? ev->threshold : NAN);
        json_count("ref_step", ev->ref_step);
        json_count("ref_producer_step", ev->ref_producer_step);
        json_string("severity", severity_name(ev->severity));
        json_string("suggested_action", sgd_monitor_action_name(ev->suggested_action));
        json_number("suggested_lr_scale", ev->suggested_lr_scale);
        json_string("remedy", ev->remedy);
        json_string("detail", ev->detail);
        printf("}\n");
    }
    out_flush(c);
    return SGD_MONITOR_CONTINUE;
}

static void print_verdict(ctx *c, const sgd_monitor_counters *k)
{
    const run *r = &c->r;
    if (!out_ok(c))
        return;
    const char *key = logread_key(c->rd);
    if (c->a->human) {
        printf("\n");
        if (r->number > 1 || c->r.first_line > 1)
            printf("run %d (from line %lld): ", r->number, (long long)r->first_line);
        printf("verdict: %s after %lld observation(s)", sgd_monitor_verdict_name(k->verdict), (long long)k->steps);
        if (k->first_alarm >= 0) {
            printf("; first alarm at step %lld", (long long)k->first_alarm);
            if (k->first_alarm_producer_step >= 0)
                printf(" (log step %lld)", (long long)k->first_alarm_producer_step);
        }
        printf("\n");
        printf("read: %lld line(s), %lld skipped; training loss: %s", (long long)r->lines, (long long)r->skipped,
               key ? key : "none found");
        if (r->first_pstep >= 0)
            printf("; log steps from %lld", (long long)r->first_pstep);
        printf("\n");
        if (k->steps > k->nonfinite_steps && isfinite(k->initial))
            printf("loss: initial %.6g, smoothed now %.6g, best %.6g (%.1f%% below the start); noise %.3g%%/step\n",
                   k->initial, k->smoothed, k->best, 100.0 * k->progress, 100.0 * k->noise);
        if (k->nonfinite_steps > 0)
            printf("non-finite: %lld observation(s) in %lld event(s)\n", (long long)k->nonfinite_steps,
                   (long long)k->events[SGD_MONITOR_NONFINITE]);
        if (k->below_floor_steps > 0)
            printf("below the floor (%g): %lld observation(s), read as a perfect fit; give --floor\n",
                   c->mo.loss_floor, (long long)k->below_floor_steps);
        if (r->eval.count > 0)
            printf("validation: %lld value(s), first %.6g, last %.6g, best %.6g\n", (long long)r->eval.count,
                   r->eval.first, r->eval.last, r->eval.best);
        printf("events:");
        for (int i = 0; i < SGD_MONITOR_KIND_COUNT; i++)
            printf(" %s %lld%s", sgd_monitor_kind_name(i), (long long)k->events[i],
                   i + 1 < SGD_MONITOR_KIND_COUNT ? "," : "\n");
    } else {
        printf("{\"schema\":\"" SCHEMA "\",\"type\":\"verdict\",\"run\":%d,\"verdict\":\"%s\",\"steps\":%lld",
               r->number, sgd_monitor_verdict_name(k->verdict), (long long)k->steps);
        json_count("first_alarm", k->first_alarm);
        json_count("first_alarm_producer_step", k->first_alarm_producer_step);
        printf(",\"nonfinite_steps\":%lld,\"events\":{", (long long)k->nonfinite_steps);
        for (int i = 0; i < SGD_MONITOR_KIND_COUNT; i++)
            printf("%s\"%s\":%lld", i ? "," : "", sgd_monitor_kind_name(i), (long long)k->events[i]);
        printf("}");
        json_number("initial", k->initial);
        json_number("smoothed", k->smoothed);
        json_number("best", k->best);
        json_number("progress", k->progress);
        json_number("noise", k->noise);
        printf(",\"below_floor_steps\":%lld", (long long)k->below_floor_steps);
        json_string("key", key);
        printf(",\"first_line\":%lld,\"lines\":%lld,\"skipped\":%lld", (long long)r->first_line, (long long)r->lines,
               (long long)r->skipped);
        json_count("first_producer_step", r->first_pstep);
        printf(",\"eval\":");
        if (r->eval.count > 0) {
            printf("{\"count\":%lld", (long long)r->eval.count);
            json_number("first", r->eval.first);
            json_number("last", r->eval.last);
            json_number("best", r->eval.best);
            printf("}");
        } else {
            printf("null");
        }
        printf("}\n");
    }
    out_flush(c);
}

/* ------------------------------------------------------------ runs */

static bool run_start(ctx *c, int number, int64_t first_line)
{
    memset(&c->r, 0, sizeof c->r);
    c->r.number = number;
    c->r.first_line = first_line;
    c->r.eval.best = INFINITY;
    c->r.first_pstep = -1;
    if (sgd_monitor_new(&c->r.m, &c->mo, NULL) != SGD_OK ||
        sgd_monitor_add_callback(c->r.m, NULL, SGD_MONITOR_MASK_ALL, on_event, c) != SGD_OK) {
        fprintf(stderr, "sgdlab monitor: %s\n", sgd_error_last());
        sgd_monitor_free(c->r.m);
        c->r.m = NULL;
        return false;
    }
    return true;
}

/* Concludes the current run and prints its verdict (if it had observations, or it is the only run). */
static void run_end(ctx *c)
{
    if (c->r.m == NULL)
        return;
    sgd_monitor_counters k;
    memset(&k, 0, sizeof k);
    k.struct_size = sizeof k;
    sgd_monitor_get_counters(c->r.m, &k);
    if (k.steps > 0) {
        int32_t v;
        sgd_monitor_finish(c->r.m, &v);
        k.struct_size = sizeof k;
        sgd_monitor_get_counters(c->r.m, &k);
        print_verdict(c, &k);
        if (fail_matched(c, c->r.seen, k.verdict))
            c->failed = true;
    }
    sgd_monitor_free(c->r.m);
    c->r.m = NULL;
}

static void keep_skipped(ctx *c, const char *line, size_t len)
{
    if (c->nkept >= KEEP_SKIPPED)
        return;
    size_t n = 0;
    char *dst = c->kept[c->nkept];
    for (size_t i = 0; i < len && n + 1 < sizeof c->kept[0]; i++) {
        unsigned char ch = (unsigned char)line[i];
        dst[n++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    dst[n] = '\0';
    c->kept_line[c->nkept++] = c->lineno;
}

static void take(ctx *c, const logread_obs *ob, const char *line, size_t len)
{
    if (c->stop || c->err != SGD_OK)
        return;
    switch (ob->kind) {
    case LOGREAD_TRAIN: {
        if (ob->new_run && c->r.m != NULL) {
            sgd_monitor_counters k;
            k.struct_size = sizeof k;
            sgd_monitor_get_counters(c->r.m, &k);
            if (k.steps > 0) {
                int next = c->r.number + 1;
                run_end(c);
                if (!run_start(c, next, ob->line)) {
                    c->err = SGD_ENOMEM;
                    return;
                }
            }
        }
        double loss = ob->loss;
        if (isfinite(loss) && !(loss > c->mo.loss_floor) && !c->floor_warned) {
            c->floor_warned = true;
            fprintf(stderr,
                    "sgdlab monitor: %s:%lld: the loss %g is at or below the floor %g: the monitor reads such losses "
                    "as a perfect fit; for a loss that can be negative give --floor X, X below the lowest loss\n",
                    c->name, (long long)ob->line, loss, c->mo.loss_floor);
        }
        int64_t save = c->lineno;
        c->lineno = ob->line;
        sgd_status st = sgd_monitor_observe_step(c->r.m, ob->step, loss, ob->grad_norm, ob->lr, NULL, NULL);
        c->lineno = save;
        if (st != SGD_OK && st != SGD_ECALLBACK) {
            fprintf(stderr, "sgdlab monitor: %s:%lld: %s\n", c->name, (long long)ob->line, sgd_error_last());
            c->err = st;
            return;
        }
        c->obs_total++;
        if (!c->r.have_obs) {
            c->r.have_obs = true;
            c->r.first_pstep = ob->step;
            /* An excerpt: its first loss is not the untrained one, and only the host knows that one. */
            if (ob->step > 0 && isnan(c->mo.initial_loss))
                fprintf(stderr,
                        "sgdlab monitor: %s:%lld: the log starts at step %lld: if it is an excerpt of a run, give "
                        "--initial-loss X or --classes C so that a level already above the untrained loss is seen\n",
                        c->name, (long long)ob->line, (long long)ob->step);
        }
        if (!isnan(ob->eval_loss)) {
            evalsum *e = &c->r.eval;
            if (e->count++ == 0)
                e->first = ob->eval_loss;
            e->last = ob->eval_loss;
            if (ob->eval_loss < e->best)
                e->best = ob->eval_loss;
        }
        break;
    }
    case LOGREAD_EVAL: {
        evalsum *e = &c->r.eval;
        if (!isnan(ob->eval_loss)) {
            if (e->count++ == 0)
                e->first = ob->eval_loss;
            e->last = ob->eval_loss;
            if (ob->eval_loss < e->best)
                e->best = ob->eval_loss;
        }
        c->eval_total++;
        break;
    }
    case LOGREAD_HEADER:
        c->headers_total++;
        if (line != NULL)
            keep_skipped(c, line, len);
        break;
    case LOGREAD_SKIP:
        c->r.skipped++;
        c->skipped_total++;
        if (line != NULL)
            keep_skipped(c, line, len);
        break;
    default:
        break;
    }
}

static void on_line(const char *line, size_t len, void *user)
{
    ctx *c = user;
    if (c->stop || c->err != SGD_OK)
        return;
    c->lineno++;
    c->lines_total++;
    c->r.lines++;
    logread_obs ob[2];
    int n = logread_line(c->rd, line, len, ob);
    for (int i = 0; i < n; i++) {
        bool this_line = ob[i].line == c->lineno;
        take(c, &ob[i], this_line ? line : NULL, this_line ? len : 0);
    }
}

/* ------------------------------------------------------------ input */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Reads fd to its end (or, with follow, until stopped). Returns 0, or -1 after a read error. */
static int read_all(ctx *c, int fd, bool follow, double idle)
{
    static char buf[1 << 16];
    double idle_since = now_seconds();
    off_t offset = 0;
    for (;;) {
        if (stop_requested)
            return 0;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            offset += n;
            idle_since = now_seconds();
            /* After --exit-early or an error we stop reading; otherwise we drain the input even
               when nothing more is printed, so that a producer is never killed by SIGPIPE. */
            if (!c->stop && c->err == SGD_OK)
                logsplit_feed(&c->sp, buf, (size_t)n, on_line, c);
            if (c->stop)
                return 0;
            continue;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "sgdlab monitor: %s: read error: %s\n", c->name, strerror(errno));
            return -1;
        }
        if (!follow)
            return 0;
        /* --follow: a file that shrank was truncated (or replaced by a shorter one): read it again. */
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_size < offset) {
            fprintf(stderr, "sgdlab monitor: %s: file truncated: reading it again from its start, as a new run\n",
                    c->name);
            if (lseek(fd, 0, SEEK_SET) == 0) {
                offset = 0;
                logsplit_restart(&c->sp);
                logread_obs ob;
                if (logread_end(c->rd, &ob) == 1)
                    take(c, &ob, NULL, 0);
                int next = c->r.number + 1;
                sgd_monitor_counters k;
                k.struct_size = sizeof k;
                sgd_monitor_get_counters(c->r.m, &k);
                if (k.steps > 0) {
                    run_end(c);
                    if (!run_start(c, next, c->lineno + 1))
                        return -1;
                }
                continue;
            }
        }
        if (idle > 0 && now_seconds() - idle_since >= idle)
            return 0;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* ------------------------------------------------------------ main */

int sgdlab_cmd_monitor(int argc, char **argv)
{
    args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;

    ctx c;
    memset(&c, 0, sizeof c);
    c.a = &a;
    sgd_monitor_options_init(&c.mo);
    if (a.set != NULL && sgd_monitor_options_parse(&c.mo, a.set) != SGD_OK) {
        fprintf(stderr, "sgdlab monitor: --set: %s\n", sgd_error_last());
        return SGDLAB_EXIT_USAGE;
    }
    if (a.have_floor)
        c.mo.loss_floor = a.floor;
    if (!isnan(a.initial_loss))
        c.mo.initial_loss = a.initial_loss;
    sgd_monitor *probe = NULL;
    if (sgd_monitor_new(&probe, &c.mo, NULL) != SGD_OK) {
        fprintf(stderr, "sgdlab monitor: %s\n", sgd_error_last());
        return SGDLAB_EXIT_USAGE;
    }
    sgd_monitor_free(probe);
    char err[300];
    if (logread_new(&c.rd, &a.ro, err, sizeof err) != 0) {
        fprintf(stderr, "sgdlab monitor: %s\n", err);
        return SGDLAB_EXIT_USAGE;
    }

    bool from_stdin = a.file == NULL || strcmp(a.file, "-") == 0;
    c.name = from_stdin ? "<stdin>" : a.file;
    int fd = STDIN_FILENO;
    if (!from_stdin) {
        fd = open(a.file, O_RDONLY);
        if (fd < 0) {
            fprintf(stderr, "sgdlab monitor: %s: %s\n", a.file, strerror(errno));
            logread_free(c.rd);
            return SGDLAB_EXIT_USAGE;
        }
    }
    struct stat st;
    bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "sgdlab monitor: %s: is a directory\n", c.name);
        close(fd);
        logread_free(c.rd);
        return SGDLAB_EXIT_USAGE;
    }
    int exit_code = SGDLAB_EXIT_OK;
    if (!logsplit_init(&c.sp) || !run_start(&c, 1, 1)) {
        fprintf(stderr, "sgdlab monitor: out of memory\n");
        exit_code = SGDLAB_EXIT_USAGE;
        goto done;
    }
    install_signals();
    int got = read_all(&c, fd, regular && a.follow, a.idle);
    if (!c.stop && c.err == SGD_OK) {
        logsplit_end(&c.sp, on_line, &c);
        logread_obs ob;
        if (logread_end(c.rd, &ob) == 1)
            take(&c, &ob, NULL, 0);
    }
    run_end(&c);
    if (c.err != SGD_OK || got < 0) {
        exit_code = SGDLAB_EXIT_USAGE;
    } else if (c.obs_total == 0) {
        /* No silent verdicts: nothing was read, and that is an error, whatever --fail-on says. */
        fprintf(stderr,
                "sgdlab monitor: %s: no training loss found in %lld line(s) (%lld skipped, %lld header(s), %lld "
                "evaluation)",
                c.name, (long long)c.lines_total, (long long)c.skipped_total, (long long)c.headers_total,
                (long long)c.eval_total);
        if (c.sp.long_lines > 0)
            fprintf(stderr, "; %lld line(s) longer than %d bytes dropped", (long long)c.sp.long_lines,
                    LOGREAD_MAX_LINE);
        fprintf(stderr, "\n");
        for (int i = 0; i < c.nkept; i++)
            fprintf(stderr, "  line %lld: %s\n", (long long)c.kept_line[i], c.kept[i]);
        fprintf(stderr, "  name the field with --key NAME, or give --match REGEX or --column N\n");
        exit_code = SGDLAB_EXIT_USAGE;
    } else if (c.failed) {
        exit_code = SGDLAB_EXIT_FAIL;
    }
    if (c.sp.nul_lines > 0)
        fprintf(stderr, "sgdlab monitor: %s: %lld line(s) had NUL bytes, dropped from them\n", c.name,
                (long long)c.sp.nul_lines);
    if (c.sp.long_lines > 0 && c.obs_total > 0)
        fprintf(stderr, "sgdlab monitor: %s: %lld line(s) longer than %d bytes skipped\n", c.name,
                (long long)c.sp.long_lines, LOGREAD_MAX_LINE);
    if (c.out_dead) {
        fprintf(stderr, "sgdlab monitor: standard output: write error (the input was still read to its end)\n");
        if (exit_code == SGDLAB_EXIT_OK)
            exit_code = SGDLAB_EXIT_FAIL;
    }
done:
    run_end(&c);
    logsplit_free(&c.sp);
    logread_free(c.rd);
    if (!from_stdin)
        close(fd);
    return exit_code;
}
