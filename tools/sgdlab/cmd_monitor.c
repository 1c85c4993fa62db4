/*
 * sgdlab monitor: runs the health monitor over a loss log, from a file or a
 * pipe, as it is written. SPDX-License-Identifier: MIT
 */
#include "cli.h"
#include "commands.h"

#include "core/internal.h" /* sgd__parse_double: strict, locale-independent numbers */
#include "sgdlab/sgdlab.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE (1 << 16)
#define MAX_COLUMNS 1024

static const cli_command spec = {
    .name = "monitor",
    .args = "[FILE|-]",
    .min_args = 0,
    .max_args = 1,
    .description =
        "Reads a loss log, one observation per line, from FILE or standard input (also\n"
        "when '-' or no FILE is given) as it is written, runs the libsgdlab health monitor\n"
        "over it and prints one JSON object per event, then a final verdict line (JSON\n"
        "Lines, the default; docs/cli.md has the schema):\n"
        "  {\"schema\":\"sgdlab.monitor/1\",\"type\":\"event\",\"kind\":\"divergence\",\"step\":12,...}\n"
        "  {\"schema\":\"sgdlab.monitor/1\",\"type\":\"verdict\",\"verdict\":\"diverged\",...}\n"
        "\"step\" is the 0-based index of the observation; \"verdict\" is one of healthy,\n"
        "diverged, unstable, stagnant; \"first_alarm\" is the step of the first nonfinite,\n"
        "divergence, oscillation or stagnation event, or null.\n"
        "\n"
        "Input: a line holds one number, or several separated by whitespace or commas;\n"
        "blank lines, lines starting with '#' and header lines of words before the data\n"
        "are skipped; nan, inf and -inf are read as such.\n",
    .epilog = "Exit status: 0 whatever the verdict (unless --fail-on matched: 1); 2 for bad\n"
              "arguments or unreadable input (the message names the file and line).\n",
};

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
}

/* ------------------------------------------------------------ line reader */

typedef struct reader {
    int fd;
    const char *name;
    bool follow;  /* regular file + --follow */
    double idle;  /* seconds; <= 0: wait forever */
    char *buf;
    size_t len;   /* bytes in buf */
    size_t start; /* start of the next line */
    int64_t lineno;
} reader;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 1: a line in *line (NUL-terminated, newline removed); 0: end of input; -1: error (message printed). */
static int next_line(reader *r, char **line)
{
    double idle_since = now_seconds();
    for (;;) {
        char *nl = r->len > r->start ? memchr(r->buf + r->start, '\n', r->len - r->start) : NULL;
        if (nl != NULL) {
            *nl = '\0';
            *line = r->buf + r->start;
            r->start = (size_t)(nl - r->buf) + 1;
            r->lineno++;
            return 1;
        }
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->len - r->start);
            r->len -= r->start;
            r->start = 0;
        }
        if (r->len >= MAX_LINE) {
            fprintf(stderr, "sgdlab monitor: %s:%lld: line longer than %d bytes\n", r->name,
                    (long long)r->lineno + 1, MAX_LINE);
            return -1;
        }
        if (stop_requested)
            return 0;
        ssize_t n = read(r->fd, r->buf + r->len, MAX_LINE - r->len);
        if (n > 0) {
            r->len += (size_t)n;
            idle_since = now_seconds();
            continue;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue; /* stop_requested is checked above */
            fprintf(stderr, "sgdlab monitor: %s: read error: %s\n", r->name, strerror(errno));
            return -1;
        }
        /* End of the data written so far. */
        if (r->follow) {
            if (r->idle > 0 && now_seconds() - idle_since >= r->idle)
                return 0;
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (r->len > 0) { /* a last line without a newline */
            r->buf[r->len] = '\0';
            *line = r->buf;
            r->start = r->len = 0;
            r->lineno++;
            return 1;
        }
        return 0;
    }
}

/* ------------------------------------------------------------ output */

typedef struct ctx {
    const char *name;
    int64_t lineno;
    bool human;
    uint32_t seen; /* kinds seen */
    bool quiet;    /* only the verdict */
} ctx;

static void json_number(const char *key, double v)
{
    printf(",\"%s\":", key);
    cli_json_num(stdout, v);
}

static void json_string(const char *key, const char *s)
{
    printf(",\"%s\":", key);
    cli_json_str(stdout, s);
}

static const char *severity_name(int32_t s)
{
    return s == SGD_MONITOR_CRITICAL ? "critical" : s == SGD_MONITOR_WARNING ? "warning" : "info";
}

static const char *nonfinite_name(double v)
{
    return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

static int32_t on_event(const sgd_monitor_event *ev, double *lr_scale, void *user)
{
    (void)lr_scale;
    ctx *c = user;
    c->seen |= 1u << ev->kind;
    if (c->quiet)
        return SGD_MONITOR_CONTINUE;
    if (c->human) {
        printf("step %lld (line %lld): %s [%s]", (long long)ev->step, (long long)c->lineno,
               sgd_monitor_kind_name(ev->kind), severity_name(ev->severity));
        if (ev->kind == SGD_MONITOR_NONFINITE) {
            if (!isfinite(ev->loss))
                printf(" loss is %s", nonfinite_name(ev->loss));
            else
                printf(" gradient norm is %s", nonfinite_name(ev->grad_norm));
        } else {
            printf(" loss %.6g, smoothed %.6g; %s = %.4g (threshold %.4g)", ev->loss, ev->smoothed, ev->detail,
                   ev->statistic, ev->threshold);
        }
        printf("\n    suggestion: %s\n", ev->remedy);
    } else {
        printf("{\"schema\":\"" CLI_SCHEMA("monitor") "\",\"type\":\"event\",\"kind\":\"%s\",\"step\":%lld,"
               "\"line\":%lld",
               sgd_monitor_kind_name(ev->kind), (long long)ev->step, (long long)c->lineno);
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
        json_string("severity", severity_name(ev->severity));
        json_string("suggested_action", sgd_monitor_action_name(ev->suggested_action));
        json_number("suggested_lr_scale", ev->suggested_lr_scale);
        json_string("remedy", ev->remedy);
        json_string("detail", ev->detail);
        printf("}\n");
    }
    cli_flush();
    return SGD_MONITOR_CONTINUE;
}

static void print_verdict(const sgd_monitor_counters *c, bool human)
{
    if (human) {
        printf("\nverdict: %s after %lld observation(s)", sgd_monitor_verdict_name(c->verdict), (long long)c->steps);
        if (c->first_alarm >= 0)
            printf("; first alarm at step %lld", (long long)c->first_alarm);
        printf("\n");
        if (c->steps > c->nonfinite_steps && isfinite(c->initial))
            printf("loss: initial %.6g, smoothed now %.6g, best %.6g (%.1f%% below the start); noise %.3g%%/step\n",
                   c->initial, c->smoothed, c->best, 100.0 * c->progress, 100.0 * c->noise);
        printf("events:");
        for (int k = 0; k < SGD_MONITOR_KIND_COUNT; k++)
            printf(" %s %lld%s", sgd_monitor_kind_name(k), (long long)c->events[k],
                   k + 1 < SGD_MONITOR_KIND_COUNT ? "," : "\n");
    } else {
        printf("{\"schema\":\"" CLI_SCHEMA("monitor") "\",\"type\":\"verdict\",\"verdict\":\"%s\",\"steps\":%lld,"
               "\"first_alarm\":",
               sgd_monitor_verdict_name(c->verdict), (long long)c->steps);
        if (c->first_alarm >= 0)
            printf("%lld", (long long)c->first_alarm);
        else
            printf("null");
        printf(",\"nonfinite_steps\":%lld,\"events\":{", (long long)c->nonfinite_steps);
        for (int k = 0; k < SGD_MONITOR_KIND_COUNT; k++)
            printf("%s\"%s\":%lld", k ? "," : "", sgd_monitor_kind_name(k), (long long)c->events[k]);
        printf("}");
        json_number("initial", c->initial);
        json_number("smoothed", c->smoothed);
        json_number("best", c->best);
        json_number("progress", c->progress);
        json_number("noise", c->noise);
        printf("}\n");
    }
    cli_flush();
}

/* ------------------------------------------------------------ arguments */

typedef struct args {
    cli c;
    const char *file;
    long column, grad_column, lr_column; /* 0: last / none */
    bool follow, human;
    double idle;
    uint32_t fail_events;
    uint32_t fail_verdicts; /* bit per sgd_monitor_verdict */
    const char *set;
} args;

static bool parse_fail_on(const char *list, args *a)
{
    char buf[512];
    if (strlen(list) >= sizeof buf)
        return false;
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

static bool fail_on_option(cli *c, const cli_opt *opt, const char *value, void *dest)
{
    (void)c;
    (void)opt;
    return parse_fail_on(value, dest);
}

/* Returns -1 when the command runs, else an exit status. */
static int parse_args(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    cli *c = &a->c;
    int64_t column = 0, grad_column = 0, lr_column = 0;
    bool human = false;
    const cli_opt opts[] = {
        CLI_SECTION("options"),
        {.name = "column", .short_name = 'c', .kind = CLI_INT, .dest = &column, .ilo = 1, .ihi = MAX_COLUMNS,
         .arg = "N", .help = "1-based column holding the loss (default: the last)"},
        {.name = "grad-column", .short_name = 'g', .kind = CLI_INT, .dest = &grad_column, .ilo = 1,
         .ihi = MAX_COLUMNS, .arg = "N", .help = "column holding the gradient norm (default: none)"},
        {.name = "lr-column", .short_name = 'l', .kind = CLI_INT, .dest = &lr_column, .ilo = 1, .ihi = MAX_COLUMNS,
         .arg = "N", .help = "column holding the learning rate (default: none)"},
        {.name = "follow", .short_name = 'f', .kind = CLI_TRUE, .dest = &a->follow,
         .help = "when FILE is a regular file, keep reading as it grows (like tail -f) until interrupted "
                 "(SIGINT/SIGTERM) or --idle; pipes are always read until the writer closes them"},
        {.name = "idle", .kind = CLI_DOUBLE, .dest = &a->idle, .lo = 0, .hi = 1e9, .lo_open = true, .arg = "SECONDS",
         .help = "with --follow, stop after SECONDS without new data"},
        {.name = "fail-on", .kind = CLI_CALL, .dest = a, .arg = "KINDS", .takes_value = true, .call = fail_on_option,
         .help = "exit with status 1 if any of KINDS happened: a comma-separated list of events (nonfinite, "
                 "divergence, spike, oscillation, plateau, stagnation), final verdicts (diverged, unstable, "
                 "stagnant), 'alarm' (any alarm event) or 'any' (any event)"},
        {.name = "set", .kind = CLI_STRING, .dest = &a->set, .arg = "SPEC",
         .help = "monitor options, e.g. divergence_ratio=5,plateau_steps=200 (field names of "
                 "sgd_monitor_options; see docs/monitor.md)"},
        CLI_SECTION("output"),
        CLI_OPT_JSON(c, "JSON Lines: one object per event and the verdict (the default)"),
        {.name = "human", .kind = CLI_TRUE, .dest = &human, .help = "print a readable report instead of JSON Lines"},
        CLI_OPT_OUTPUT(c),
        CLI_OPT_QUIET(c, "only the verdict, no events"),
        CLI_END,
    };
    int rc = cli_parse(c, &spec, opts, argc, argv);
    if (rc >= 0)
        return rc;
    if (human && c->json) {
        cli_fail(c, NULL, "--json and --human: choose one");
        return SGDLAB_EXIT_USAGE;
    }
    a->human = human;
    a->column = (long)column;
    a->grad_column = (long)grad_column;
    a->lr_column = (long)lr_column;
    a->file = c->nargs > 0 ? c->args[0] : NULL;
    return -1;
}

/* ------------------------------------------------------------ line parsing */

typedef struct span {
    const char *p;
    size_t n;
} span;

static bool is_sep(char ch)
{
    return ch == ' ' || ch == '\t' || ch == ',' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Splits into tokens; returns their number (capped at MAX_COLUMNS + 1). */
static int tokenize(const char *line, span *tok)
{
    int n = 0;
    const char *p = line;
    while (*p) {
        while (*p && is_sep(*p))
            p++;
        if (!*p)
            break;
        const char *b = p;
        while (*p && !is_sep(*p))
            p++;
        if (n <= MAX_COLUMNS)
            tok[n] = (span){b, (size_t)(p - b)};
        n++;
        if (n > MAX_COLUMNS)
            return n;
    }
    return n;
}

static bool looks_like_word(span t)
{
    unsigned char c = (unsigned char)t.p[0];
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == '"' || c == '\'';
}

/* ------------------------------------------------------------ main */

int sgdlab_cmd_monitor(int argc, char **argv)
{
    args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;

    sgd_monitor_options opts;
    sgd_monitor_options_init(&opts);
    if (a.set != NULL && sgd_monitor_options_parse(&opts, a.set) != SGD_OK) {
        fprintf(stderr, "sgdlab monitor: --set: %s\n", sgd_error_last());
        return SGDLAB_EXIT_USAGE;
    }

    reader r;
    memset(&r, 0, sizeof r);
    r.idle = a.idle;
    bool from_stdin = a.file == NULL || strcmp(a.file, "-") == 0;
    r.name = from_stdin ? "<stdin>" : a.file;
    if (from_stdin) {
        r.fd = STDIN_FILENO;
    } else {
        r.fd = open(a.file, O_RDONLY);
        if (r.fd < 0) {
            fprintf(stderr, "sgdlab monitor: %s: %s\n", a.file, strerror(errno));
            return SGDLAB_EXIT_USAGE;
        }
    }
    struct stat st;
    if (fstat(r.fd, &st) == 0 && S_ISREG(st.st_mode))
        r.follow = a.follow;
    r.buf = malloc(MAX_LINE + 1);
    span *tok = malloc(sizeof(span) * (MAX_COLUMNS + 1));
    sgd_monitor *m = NULL;
    ctx c = {r.name, 0, a.human, 0, a.c.quiet};
    int exit_code = SGDLAB_EXIT_OK;
    if (r.buf == NULL || tok == NULL) {
        fprintf(stderr, "sgdlab monitor: out of memory\n");
        exit_code = SGDLAB_EXIT_USAGE;
        goto done;
    }
    if (sgd_monitor_new(&m, &opts, NULL) != SGD_OK ||
        sgd_monitor_add_callback(m, NULL, SGD_MONITOR_MASK_ALL, on_event, &c) != SGD_OK) {
        fprintf(stderr, "sgdlab monitor: %s\n", sgd_error_last());
        exit_code = SGDLAB_EXIT_USAGE;
        goto done;
    }
    install_signals();

    bool data_seen = false;
    char *line;
    int got;
    while ((got = next_line(&r, &line)) == 1) {
        c.lineno = r.lineno;
        const char *p = line;
        while (*p && is_sep(*p))
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        int n = tokenize(p, tok);
        if (n > MAX_COLUMNS) {
            fprintf(stderr, "sgdlab monitor: %s:%lld: more than %d columns\n", r.name, (long long)r.lineno,
                    MAX_COLUMNS);
            exit_code = SGDLAB_EXIT_USAGE;
            goto done;
        }
        long want[3] = {a.column ? a.column : n, a.grad_column, a.lr_column};
        static const char *const what[3] = {"loss", "gradient norm", "learning rate"};
        double val[3] = {NAN, -1.0, -1.0};
        bool header = false, bad = false;
        for (int k = 0; k < 3 && !bad && !header; k++) {
            if (want[k] == 0)
                continue;
            if (want[k] > n) {
                if (!data_seen && looks_like_word(tok[0])) {
                    header = true;
                    break;
                }
                fprintf(stderr, "sgdlab monitor: %s:%lld: %d column(s), but the %s is in column %ld\n", r.name,
                        (long long)r.lineno, n, what[k], want[k]);
                bad = true;
                break;
            }
            span t = tok[want[k] - 1];
            sgd__str s = {t.p, t.n};
            if (sgd__parse_double(s, true, &val[k]) != SGD_OK) {
                if (!data_seen && looks_like_word(t)) {
                    header = true;
                    break;
                }
                fprintf(stderr, "sgdlab monitor: %s:%lld: column %ld: cannot read '%.*s' as a number (%s)\n",
                        r.name, (long long)r.lineno, want[k], (int)(t.n > 60 ? 60 : t.n), t.p, what[k]);
                bad = true;
            }
        }
        if (bad) {
            exit_code = SGDLAB_EXIT_USAGE;
            goto done;
        }
        if (header)
            continue;
        data_seen = true;
        double lr = val[2];
        if (isnan(lr) || lr < 0)
            lr = -1.0;
        double gn = val[1];
        if (a.grad_column == 0)
            gn = -1.0;
        else if (isfinite(gn) && gn < 0) {
            fprintf(stderr, "sgdlab monitor: %s:%lld: gradient norm %g is negative\n", r.name, (long long)r.lineno, gn);
            exit_code = SGDLAB_EXIT_USAGE;
            goto done;
        }
        if (sgd_monitor_observe(m, val[0], gn, lr, NULL, NULL) != SGD_OK) {
            fprintf(stderr, "sgdlab monitor: %s:%lld: %s\n", r.name, (long long)r.lineno, sgd_error_last());
            exit_code = SGDLAB_EXIT_USAGE;
            goto done;
        }
    }
    if (got < 0) {
        exit_code = SGDLAB_EXIT_USAGE;
        goto done;
    }
    sgd_monitor_counters cnt;
    cnt.struct_size = sizeof cnt;
    sgd_monitor_get_counters(m, &cnt);
    print_verdict(&cnt, a.human);
    if ((c.seen & a.fail_events) || (a.fail_verdicts & (1u << cnt.verdict)))
        exit_code = SGDLAB_EXIT_FAIL;

done:
    sgd_monitor_free(m);
    free(tok);
    free(r.buf);
    if (!from_stdin && r.fd >= 0)
        close(r.fd);
    return exit_code;
}
