/*
 * The sgdlab tool's argument parser (getopt_long), help text, output files
 * and signals: see args.h. SPDX-License-Identifier: MIT
 */
#include "args.h"

#include "commands.h"
#include "core/internal.h" /* sgd__parse_double/int64: strict, locale-independent */
#include "sgdlab/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HELP_COLUMN 28 /* where the options' help text starts */
#define HELP_WIDTH 79

/* ------------------------------------------------------------ messages */

void cli_fail(const cli *c, const char *opt, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sgdlab %s: ", c->cmd);
    if (opt != NULL)
        fprintf(stderr, "%s: ", opt);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ------------------------------------------------------------ values */

static bool parse_i64(const char *s, int64_t *out)
{
    sgd__str t = {s, strlen(s)};
    sgd_status st = sgd__parse_int64(t, out);
    sgd_error_clear();
    return st == SGD_OK;
}

static bool parse_f64(const char *s, double *out)
{
    sgd__str t = {s, strlen(s)};
    sgd_status st = sgd__parse_double(t, false, out);
    sgd_error_clear();
    return st == SGD_OK;
}

static bool int_in_range(const cli *c, const char *opt, const char *text, int64_t x, int64_t lo, int64_t hi)
{
    if (x < lo || x > hi) {
        cli_fail(c, opt, "%s is out of range: must be in [%lld, %lld]", text, (long long)lo, (long long)hi);
        return false;
    }
    return true;
}

static bool double_in_range(const cli *c, const char *opt, const char *text, double x, const cli_opt *o)
{
    if (!isfinite(x)) {
        cli_fail(c, opt, "'%s': must be a finite number", text);
        return false;
    }
    if ((o->lo_open ? !(x > o->lo) : !(x >= o->lo)) || !(x <= o->hi)) {
        cli_fail(c, opt, "'%s' is out of range: must be in %s%g, %g]", text, o->lo_open ? "(" : "[", o->lo, o->hi);
        return false;
    }
    return true;
}

/* A comma-separated list: one element of `size` bytes per item, each parsed and checked into its slot. */
static bool parse_list(const cli *c, const char *opt, const cli_opt *o, const char *v, size_t size, bool ints)
{
    size_t cap = 1;
    for (const char *p = v; *p; p++)
        cap += *p == ',';
    unsigned char *xs = calloc(cap, size);
    if (xs == NULL) {
        cli_fail(c, opt, "out of memory");
        return false;
    }
    size_t k = 0;
    char tok[128];
    for (const char *p = v;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= sizeof tok) {
            cli_fail(c, opt, "'%s': expected a comma-separated list of %s", v, ints ? "integers" : "numbers");
            free(xs);
            return false;
        }
        memcpy(tok, p, len);
        tok[len] = '\0';
        bool ok;
        if (ints) {
            int64_t *x = (int64_t *)(void *)(xs + k * size);
            ok = parse_i64(tok, x);
            if (!ok)
                cli_fail(c, opt, "'%s' in '%s' is not an integer", tok, v);
            ok = ok && int_in_range(c, opt, tok, *x, o->ilo, o->ihi);
        } else {
            double *x = (double *)(void *)(xs + k * size);
            ok = parse_f64(tok, x);
            if (!ok)
                cli_fail(c, opt, "'%s' in '%s' is not a number", tok, v);
            ok = ok && double_in_range(c, opt, tok, *x, o);
        }
        if (!ok) {
            free(xs);
            return false;
        }
        k++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    void **dest = o->dest;
    free(*dest);
    *dest = xs;
    *o->count = k;
    return true;
}

/* Stores `value` (NULL for options without one) into the option's destination. */
static bool apply(cli *c, const cli_opt *o, const char *value)
{
    char opt[80];
    snprintf(opt, sizeof opt, "--%s", o->name);
    switch (o->kind) {
    case CLI_TRUE:
        *(bool *)o->dest = true;
        return true;
    case CLI_FALSE:
        *(bool *)o->dest = false;
        return true;
    case CLI_SET:
        *(int32_t *)o->dest = o->ival;
        return true;
    case CLI_INT: {
        int64_t x;
        if (!parse_i64(value, &x)) {
            cli_fail(c, opt, "'%s' is not an integer", value);
            return false;
        }
        if (!int_in_range(c, opt, value, x, o->ilo, o->ihi))
            return false;
        *(int64_t *)o->dest = x;
        return true;
    }
    case CLI_DOUBLE: {
        double x;
        if (!parse_f64(value, &x)) {
            cli_fail(c, opt, "'%s' is not a number", value);
            return false;
        }
        if (!double_in_range(c, opt, value, x, o))
            return false;
        *(double *)o->dest = x;
        return true;
    }
    case CLI_STRING:
    case CLI_OUTFILE:
        if (*value == '\0') {
            cli_fail(c, opt, "empty value");
            return false;
        }
        if (o->kind == CLI_OUTFILE && !cli_check_output(c, opt, value))
            return false;
        *(const char **)o->dest = value;
        return true;
    case CLI_DOUBLES:
        return parse_list(c, opt, o, value, sizeof(double), false);
    case CLI_INTS:
        return parse_list(c, opt, o, value, sizeof(int64_t), true);
    case CLI_CHOICE:
        for (int32_t k = 0; o->choices[k] != NULL; k++)
            if (strcmp(value, o->choices[k]) == 0) {
                *(int32_t *)o->dest = k;
                return true;
            }
        {
            char list[256] = "";
            for (int k = 0; o->choices[k] != NULL; k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", o->choices[k]);
            cli_fail(c, opt, "'%s': must be one of %s", value, list);
        }
        return false;
    case CLI_CALL:
        return o->call(c, o, value, o->dest);
    default:
        return false;
    }
}

static bool takes_value(const cli_opt *o)
{
    switch (o->kind) {
    case CLI_TRUE:
    case CLI_FALSE:
    case CLI_SET:
        return false;
    case CLI_CALL:
        return o->takes_value;
    default:
        return true;
    }
}

/* ------------------------------------------------------------ help */

/* Writes `text` from column `col` (the cursor is at `at`), wrapping words at HELP_WIDTH; '\n' breaks a line. */
static void wrap(FILE *f, const char *text, int col, int at)
{
    if (at > col) {
        fputc('\n', f);
        at = 0;
    }
    fprintf(f, "%*s", col - at, "");
    at = col;
    const char *p = text;
    bool line_start = true;
    while (*p) {
        if (*p == '\n') {
            fprintf(f, "\n%*s", col, "");
            at = col;
            line_start = true;
            p++;
            continue;
        }
        if (*p == ' ') {
            p++;
            continue;
        }
        size_t n = strcspn(p, " \n");
        if (!line_start && at + 1 + (int)n > HELP_WIDTH) {
            fprintf(f, "\n%*s", col, "");
            at = col;
            line_start = true;
        }
        if (!line_start) {
            fputc(' ', f);
            at++;
        }
        fwrite(p, 1, n, f);
        at += (int)n;
        line_start = false;
        p += n;
    }
    fputc('\n', f);
}

static void help_option(FILE *f, const cli_opt *o)
{
    char label[128];
    int n;
    if (o->short_name)
        n = snprintf(label, sizeof label, "  -%c, --%s", o->short_name, o->name);
    else
        n = snprintf(label, sizeof label, "      --%s", o->name);
    if (o->arg != NULL && n > 0 && (size_t)n < sizeof label)
        n += snprintf(label + n, sizeof label - (size_t)n, " %s", o->arg);
    fputs(label, f);
    wrap(f, o->help != NULL ? o->help : "", HELP_COLUMN, n + 2 > HELP_COLUMN ? HELP_COLUMN + 1 : n);
}

static const cli_opt builtin_help = {.name = "help", .short_name = 'h', .kind = CLI_TRUE, .help = "show this help"};
static const cli_opt builtin_version = {.name = "version", .kind = CLI_TRUE, .help = "show the version"};

void cli_help(FILE *f, const cli_command *cmd, const cli_opt *opts)
{
    fprintf(f, "usage: sgdlab %s [options]%s%s\n", cmd->name, cmd->args ? " " : "", cmd->args ? cmd->args : "");
    if (cmd->more_usage != NULL)
        fprintf(f, "%s", cmd->more_usage);
    if (cmd->description != NULL)
        fprintf(f, "\n%s", cmd->description);
    bool in_section = false;
    for (const cli_opt *o = opts; o->kind != CLI_END_; o++) {
        if (o->kind == CLI_HEADING) {
            fprintf(f, "\n%s:\n", o->help);
            in_section = true;
            continue;
        }
        if (!in_section) {
            fprintf(f, "\noptions:\n");
            in_section = true;
        }
        help_option(f, o);
    }
    if (!in_section)
        fprintf(f, "\noptions:\n");
    help_option(f, &builtin_help);
    help_option(f, &builtin_version);
    if (cmd->epilog != NULL)
        fprintf(f, "\n%s", cmd->epilog);
}

/* ------------------------------------------------------------ parsing */

#define VAL_BASE 256

int cli_parse(cli *c, const cli_command *cmd, const cli_opt *opts, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    c->cmd = cmd->name;
    c->progress = -1;
    size_t n = 0;
    while (opts[n].kind != CLI_END_)
        n++;
    struct option *lo = calloc(n + 3, sizeof *lo);
    char *shorts = malloc(3 * n + 8);
    if (lo == NULL || shorts == NULL) {
        free(lo);
        free(shorts);
        cli_fail(c, NULL, "out of memory");
        return SGDLAB_EXIT_USAGE;
    }
    size_t k = 0, s = 0;
    shorts[s++] = ':'; /* ':' for a missing value, '?' for the rest: the messages are ours */
    shorts[s++] = 'h';
    for (size_t i = 0; i < n; i++) {
        const cli_opt *o = &opts[i];
        if (o->kind == CLI_HEADING)
            continue;
        lo[k].name = o->name;
        lo[k].has_arg = takes_value(o) ? required_argument : no_argument;
        lo[k].flag = NULL;
        lo[k].val = o->short_name ? o->short_name : VAL_BASE + (int)i;
        k++;
        if (o->short_name) {
            shorts[s++] = (char)o->short_name;
            if (takes_value(o))
                shorts[s++] = ':';
        }
    }
    lo[k++] = (struct option){"help", no_argument, NULL, 'h'};
    lo[k++] = (struct option){"version", no_argument, NULL, VAL_BASE + (int)n};
    lo[k] = (struct option){NULL, 0, NULL, 0};
    shorts[s] = '\0';

    int rc = -1;
    optind = 0; /* glibc: start afresh */
    opterr = 0;
    int ch;
    while (rc < 0 && (ch = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        const cli_opt *o = NULL;
        if (ch == 'h') {
            cli_help(stdout, cmd, opts);
            rc = SGDLAB_EXIT_OK;
            break;
        }
        if (ch == VAL_BASE + (int)n) {
            printf("sgdlab %s (libsgdlab) %s\n", cmd->name, sgd_version_string());
            rc = SGDLAB_EXIT_OK;
            break;
        }
        if (ch == '?' || ch == ':') {
            /* Which option: optopt is its val (0 for an unknown long option); argv[optind - 1] as written. */
            const char *as_written = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
            for (size_t i = 0; i < n && optopt != 0; i++)
                if (opts[i].kind != CLI_HEADING &&
                    (opts[i].short_name ? opts[i].short_name : VAL_BASE + (int)i) == optopt)
                    o = &opts[i];
            if (ch == ':' && o != NULL) {
                cli_fail(c, NULL, "--%s needs a value", o->name);
            } else if (o != NULL) {
                cli_fail(c, NULL, "--%s takes no value (got '%s')", o->name, as_written);
            } else if (optopt != 0 && optopt < VAL_BASE) {
                cli_fail(c, NULL, "-%c: unknown option (see 'sgdlab %s --help')", optopt, cmd->name);
            } else {
                /* An unknown or ambiguous long option: say which it could be. */
                char name[64];
                const char *p = as_written[0] == '-' && as_written[1] == '-' ? as_written + 2 : as_written;
                size_t len = strcspn(p, "=");
                snprintf(name, sizeof name, "%.*s", (int)(len < 60 ? len : 60), p);
                char cands[512] = "";
                int matches = 0;
                for (size_t i = 0; lo[i].name != NULL; i++)
                    if (strncmp(lo[i].name, name, len) == 0) {
                        snprintf(cands + strlen(cands), sizeof cands - strlen(cands), "%s--%s", matches ? ", " : "",
                                 lo[i].name);
                        matches++;
                    }
                if (matches > 1)
                    cli_fail(c, NULL, "--%s is ambiguous: %s", name, cands);
                else
                    cli_fail(c, NULL, "--%s: unknown option (see 'sgdlab %s --help')", name, cmd->name);
            }
            rc = SGDLAB_EXIT_USAGE;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (opts[i].kind != CLI_HEADING && (opts[i].short_name ? opts[i].short_name : VAL_BASE + (int)i) == ch)
                o = &opts[i];
        if (o == NULL || !apply(c, o, takes_value(o) ? optarg : NULL))
            rc = SGDLAB_EXIT_USAGE;
    }
    if (rc < 0) {
        c->args = argv + optind;
        c->nargs = argc - optind;
        if (c->nargs < cmd->min_args || c->nargs > cmd->max_args) {
            if (cmd->max_args == 0)
                cli_fail(c, NULL, "'%s': unexpected argument (options start with -; see 'sgdlab %s --help')",
                         c->args[0], cmd->name);
            else if (c->nargs < cmd->min_args)
                cli_fail(c, NULL, "%s is missing (see 'sgdlab %s --help')", cmd->args, cmd->name);
            else
                cli_fail(c, NULL, "'%s': one %s only (see 'sgdlab %s --help')", c->args[cmd->max_args], cmd->args,
                         cmd->name);
            rc = SGDLAB_EXIT_USAGE;
        }
    }
    free(lo);
    free(shorts);
    return rc;
}

/* ------------------------------------------------------------ output files */

/* The -o file being written: a temporary file beside its destination, renamed over it at the end. */
static struct {
    bool active;
    char tmp[PATH_MAX];
    char dest[PATH_MAX]; /* the resolved destination */
    const char *as_given;
} out;

/* The directory part of `path` into dir ("." when there is none). */
static void dir_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, cap, ".");
    else if (slash == path)
        snprintf(dir, cap, "/");
    else
        snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

/* A new file ".NAME.sgdlab-XXXXXX" beside `real` (mkstemp: exclusive), with the default permissions. */
static int make_temp(const char *real, char *tmp, size_t cap)
{
    char dir[PATH_MAX];
    dir_of(real, dir, sizeof dir);
    const char *slash = strrchr(real, '/');
    const char *base = slash != NULL ? slash + 1 : real;
    int w = snprintf(tmp, cap, "%s/.%s.sgdlab-XXXXXX", dir, base);
    if (w < 0 || (size_t)w >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0)
        return -1;
    mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(fd, 0666 & ~mask); /* as a file created the usual way (mkstemp makes 0600) */
    return fd;
}

/* The library's policy for the files it writes (sgd_ckpt_output_target), its message prefixed "sgdlab CMD: OPT". */
static bool output_target(const cli *c, const char *opt, const char *path, char *real)
{
    static const char lib_fn[] = "sgd_ckpt_output_target: ";
    if (sgd_ckpt_output_target(path, real, PATH_MAX, NULL) != SGD_OK) {
        const char *msg = sgd_error_last();
        if (strncmp(msg, lib_fn, sizeof lib_fn - 1) == 0)
            msg += sizeof lib_fn - 1;
        fprintf(stderr, "sgdlab %s: %s: %s\n", c->cmd, opt, msg);
        return false;
    }
    return true;
}

bool cli_check_output(const cli *c, const char *opt, const char *path)
{
    char real[PATH_MAX], tmp[PATH_MAX];
    if (!output_target(c, opt, path, real))
        return false;
    int fd = make_temp(real, tmp, sizeof tmp);
    if (fd < 0) {
        char dir[PATH_MAX];
        dir_of(real, dir, sizeof dir);
        cli_fail(c, opt, "%s: cannot create a file in '%s': %s", path, dir, strerror(errno));
        return false;
    }
    close(fd);
    unlink(tmp);
    return true;
}

static void on_fatal_signal(int sig);

bool cli_output_option(cli *c, const cli_opt *opt, const char *value, void *dest)
{
    (void)opt;
    (void)dest;
    if (out.active) {
        cli_fail(c, "--output", "given twice");
        return false;
    }
    if (*value == '\0') {
        cli_fail(c, "--output", "empty value");
        return false;
    }
    if (!output_target(c, "--output", value, out.dest))
        return false;
    int fd = make_temp(out.dest, out.tmp, sizeof out.tmp);
    if (fd < 0) {
        char dir[PATH_MAX];
        dir_of(out.dest, dir, sizeof dir);
        cli_fail(c, "--output", "%s: cannot create a file in '%s': %s", value, dir, strerror(errno));
        return false;
    }
    fflush(stdout);
    if (dup2(fd, STDOUT_FILENO) < 0) {
        cli_fail(c, "--output", "%s: %s", value, strerror(errno));
        close(fd);
        unlink(out.tmp);
        return false;
    }
    close(fd);
    out.active = true;
    out.as_given = value;
    c->output = value;
    /* An interrupted command removes its temporary file (unless the command handles the signal itself). */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    for (int k = 0; k < 2; k++) {
        int sig = k == 0 ? SIGINT : SIGTERM;
        struct sigaction old;
        if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
            sigaction(sig, &sa, NULL);
    }
    return true;
}

/* Copies the open file `in` to `fd`; 0 or an errno. */
static int copy_fd(int in, int fd)
{
    char buf[65536];
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            return 0;
        for (ssize_t w = 0; w < r;) {
            ssize_t k = write(fd, buf + w, (size_t)(r - w));
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                return errno;
            w += k;
        }
    }
}

/* Renames tmp over the destination, checked by the policy once more (it may have changed); says why not. */
static bool put_in_place(const cli *c, const char *opt, const char *tmp, const char *dest, const char *as_given)
{
    char again[PATH_MAX];
    if (!output_target(c, opt, dest, again)) { /* it changed since the command began */
        unlink(tmp);
        return false;
    }
    if (rename(tmp, again) != 0) {
        cli_fail(c, opt, "%s: cannot put the file in place: %s", as_given, strerror(errno));
        unlink(tmp);
        return false;
    }
    return true;
}

bool cli_install_file(const cli *c, const char *opt, const char *src, const char *dst)
{
    char real[PATH_MAX], tmp[PATH_MAX];
    if (!output_target(c, opt, dst, real))
        return false;
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        cli_fail(c, opt, "%s: %s", src, strerror(errno));
        return false;
    }
    int fd = make_temp(real, tmp, sizeof tmp);
    if (fd < 0) {
        char dir[PATH_MAX];
        dir_of(real, dir, sizeof dir);
        cli_fail(c, opt, "%s: cannot create a file in '%s': %s", dst, dir, strerror(errno));
        close(in);
        return false;
    }
    int e = copy_fd(in, fd);
    close(in);
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e != 0) {
        cli_fail(c, opt, "%s: %s (the file there is unchanged)", dst, strerror(e));
        unlink(tmp);
        return false;
    }
    return put_in_place(c, opt, tmp, real, dst);
}

bool cli_output_discard(void)
{
    fflush(stdout);
    if (out.active) {
        unlink(out.tmp);
        out.active = false;
    }
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0)
        return false;
    bool ok = dup2(fd, STDOUT_FILENO) >= 0;
    close(fd);
    clearerr(stdout);
    return ok;
}

static int flush_errno; /* why a cli_flush() failed */

bool cli_flush(void)
{
    errno = 0;
    if (fflush(stdout) == 0)
        return true;
    if (flush_errno == 0)
        flush_errno = errno ? errno : EIO;
    return false;
}

int cli_exit(const char *cmd, int rc)
{
    cli c = {.cmd = cmd};
    int e = 0;
    errno = 0;
    if (fflush(stdout) != 0)
        e = flush_errno ? flush_errno : errno ? errno : EIO;
    else if (ferror(stdout))
        e = flush_errno ? flush_errno : EIO;
    if (e == 0 && out.active && fsync(STDOUT_FILENO) != 0)
        e = errno;
    if (fclose(stdout) != 0 && e == 0)
        e = errno ? errno : EIO;
    if (e != 0) {
        if (out.active) {
            cli_fail(&c, "--output", "%s: write error: %s (the file there is unchanged)", out.as_given, strerror(e));
            unlink(out.tmp);
        } else {
            cli_fail(&c, NULL, "standard output: write error: %s", strerror(e));
        }
        return rc != SGDLAB_EXIT_OK ? rc : SGDLAB_EXIT_FAIL;
    }
    if (out.active) {
        out.active = false;
        if (!put_in_place(&c, "--output", out.tmp, out.dest, out.as_given))
            return rc != SGDLAB_EXIT_OK ? rc : SGDLAB_EXIT_FAIL;
    }
    return rc;
}

/* ------------------------------------------------------------ progress */

bool cli_progress_on(const cli *c)
{
    if (c->quiet || c->progress == 0 || !isatty(STDERR_FILENO))
        return false;
    return c->progress == 1 || isatty(STDOUT_FILENO);
}

/* ------------------------------------------------------------ signals */

static volatile sig_atomic_t interrupted = 0;

static void on_fatal_signal(int sig)
{
    if (out.active)
        unlink(out.tmp); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig); /* delivered on return: the process ends as it would have */
}

static void on_cooperative_signal(int sig)
{
    if (interrupted) { /* the second one: as if nobody had asked */
        on_fatal_signal(sig);
        return;
    }
    interrupted = sig;
}

void cli_signals_cooperate(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_cooperative_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_interrupted(void)
{
    return interrupted;
}
