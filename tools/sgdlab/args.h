/*
 * The sgdlab tool's one argument parser (on getopt_long), its help text, and
 * what every command shares at its end: standard output checked for write
 * errors, the -o FILE it may write to, the signals that interrupt it.
 *
 * A command describes its options in a table and calls cli_parse(); the
 * values land in the command's own variables (and the common ones in a cli):
 *
 *     static const cli_command spec = {
 *         .name = "generate", .args = "[PROMPT]", .max_args = 1,
 *         .description = "Loads a checkpoint and samples from its model.\n",
 *         .epilog = "Exit status: 0 on success; 2 for bad arguments.\n",
 *     };
 *     int generate(int argc, char **argv)
 *     {
 *         cli c;
 *         const char *from = NULL;
 *         int64_t tokens = 200;
 *         double temperature = 1.0;
 *         const cli_opt opts[] = {
 *             CLI_SECTION("options"),
 *             {.name = "from", .kind = CLI_STRING, .dest = &from, .arg = "FILE", .help = "the checkpoint"},
 *             {.name = "tokens", .kind = CLI_INT, .dest = &tokens, .ilo = 1, .ihi = 1 << 20, .arg = "N",
 *              .help = "how many (default 200)"},
 *             {.name = "temperature", .kind = CLI_DOUBLE, .dest = &temperature, .lo = 0, .hi = 100,
 *              .lo_open = true, .arg = "X", .help = "sampling temperature (default 1)"},
 *             CLI_OPT_JSON(&c, "one JSON object instead of the text"),
 *             CLI_OPT_OUTPUT(&c),
 *             CLI_END,
 *         };
 *         int rc = cli_parse(&c, &spec, opts, argc, argv);
 *         if (rc >= 0)
 *             return rc;  // --help or --version (0), or bad arguments (2, the message printed)
 *         ...             // c.args[0..c.nargs) are the positional arguments
 *         return SGDLAB_EXIT_OK;
 *     }
 *
 * and a row in main.c's table (its name, function and one-line summary), then
 * its man page: tools/gen-man writes it from --help, and it is listed in
 * tools/sgdlab/meson.build (the test man-pages fails until both are done).
 * -h/--help and --version are added to every command; the help text (and so
 * the man page, made from it by help2man) is written from the table, in its
 * order. Long options may be abbreviated to any unambiguous prefix, take their value as "--name VALUE" or
 * "--name=VALUE" (short ones as "-o VALUE" or "-oVALUE"), and may come before
 * or after the positional arguments; "--" ends the options. Errors name the
 * option and the value: "sgdlab train: --epochs: 'x' is not an integer".
 *
 * After the command returns, main() calls cli_exit(): it flushes standard
 * output and turns a write error (a full disk, /dev/full) into exit status 1
 * with a message, and puts the -o file in place.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_TOOL_ARGS_H
#define SGDLAB_TOOL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The common options' values (each is there when the command's table has its CLI_OPT_ entry). */
typedef struct cli {
    const char *cmd;  /* "train": for messages ("sgdlab train: ...") */
    bool json;        /* --json */
    bool quiet;       /* -q, --quiet: no progress bar, only the result */
    bool verbose;     /* -v, --verbose */
    int32_t progress; /* --progress (1), --no-progress (0), neither (-1: when stdout and stderr are terminals) */
    const char *output; /* -o, --output FILE (already open: standard output goes to it) */
    char **args;      /* positional arguments */
    int nargs;
} cli;

typedef enum cli_kind {
    CLI_END_ = 0,  /* the end of the table (CLI_END) */
    CLI_HEADING,   /* a section heading in the help (CLI_SECTION) */
    CLI_TRUE,      /* bool *dest = true */
    CLI_FALSE,     /* bool *dest = false */
    CLI_SET,       /* int32_t *dest = ival */
    CLI_INT,       /* int64_t *dest, in [ilo, ihi] */
    CLI_DOUBLE,    /* double *dest, finite, in [lo, hi] ((lo, hi] with lo_open) */
    CLI_STRING,    /* const char **dest, not empty */
    CLI_OUTFILE,   /* const char **dest, a path the command will write: checked now (cli_check_output) */
    CLI_DOUBLES,   /* double **dest (malloc'd, the caller frees it) and size_t *count: "1e-3,0.01" */
    CLI_INTS,      /* int64_t **dest and size_t *count */
    CLI_CHOICE,    /* int32_t *dest = the index of the value in choices (NULL-terminated) */
    CLI_CALL,      /* call(c, opt, value, dest): false after printing a message (cli_fail) */
} cli_kind;

typedef struct cli_opt cli_opt;
struct cli_opt {
    const char *name;  /* the long name, without "--" */
    int short_name;    /* 'o' for -o, or 0 */
    cli_kind kind;
    void *dest;
    const char *arg;   /* the value's name in the help ("N", "FILE"); options of kinds that take none leave it NULL */
    const char *help;  /* the help text, wrapped at 79 columns; '\n' starts a new line (aligned under the first) */
    int64_t ilo, ihi;  /* CLI_INT, CLI_INTS */
    double lo, hi;     /* CLI_DOUBLE, CLI_DOUBLES */
    bool lo_open;
    int32_t ival;      /* CLI_SET */
    size_t *count;     /* CLI_DOUBLES, CLI_INTS */
    const char *const *choices; /* CLI_CHOICE */
    bool (*call)(cli *c, const cli_opt *opt, const char *value, void *dest); /* CLI_CALL; value NULL if no arg */
    bool takes_value;  /* CLI_CALL: whether it takes a value */
};

#define CLI_END {.name = NULL, .kind = CLI_END_}
#define CLI_SECTION(title) {.name = NULL, .kind = CLI_HEADING, .help = (title)}
/* The common options, bound to a cli (its fields above). */
#define CLI_OPT_JSON(c, text) {.name = "json", .kind = CLI_TRUE, .dest = &(c)->json, .help = (text)}
#define CLI_OPT_OUTPUT(c)                                                                                            \
    {.name = "output", .short_name = 'o', .kind = CLI_CALL, .dest = (c), .arg = "FILE", .takes_value = true,       \
     .call = cli_output_option,                                                                                   \
     .help = "write what goes to standard output to FILE instead (it replaces FILE when the command ends, "       \
             "if FILE is a regular file or new: docs/cli.md)"}
#define CLI_OPT_QUIET(c, text) {.name = "quiet", .short_name = 'q', .kind = CLI_TRUE, .dest = &(c)->quiet, .help = (text)}
#define CLI_OPT_VERBOSE(c, text)                                                                                     \
    {.name = "verbose", .short_name = 'v', .kind = CLI_TRUE, .dest = &(c)->verbose, .help = (text)}
#define CLI_OPT_PROGRESS(c)                                                                                          \
    {.name = "progress", .kind = CLI_SET, .dest = &(c)->progress, .ival = 1,                                      \
     .help = "draw the progress bar on standard error whenever it is a terminal (default: when standard "          \
             "output is one too)"},                                                                               \
    {.name = "no-progress", .kind = CLI_SET, .dest = &(c)->progress, .ival = 0, .help = "no progress bar"}

typedef struct cli_command {
    const char *name;        /* "train" */
    const char *args;        /* positional arguments in the usage line ("[FILE|-]"), or NULL */
    int min_args, max_args;  /* how many positional arguments */
    const char *more_usage;  /* further usage lines ("       sgdlab lr-find --from FILE ...\n"), or NULL */
    const char *description; /* paragraphs after the usage line, each line ending in '\n' */
    const char *epilog;      /* after the options (exit status...), or NULL */
} cli_command;

/*
 * Parses argv (argv[0] is the command's name) against the table, which ends
 * with CLI_END. Returns -1 when the command should run; otherwise the exit
 * status: 0 after --help or --version, SGDLAB_EXIT_USAGE after a message.
 */
int cli_parse(cli *c, const cli_command *cmd, const cli_opt *opts, int argc, char **argv);

/* The help text of a command, on f (what --help prints). */
void cli_help(FILE *f, const cli_command *cmd, const cli_opt *opts);

/* "sgdlab CMD: OPT: message\n" on stderr (OPT is "--name"; NULL: no option). */
void cli_fail(const cli *c, const char *opt, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Checks, before any work is done, that the command may write `path` (for
 * option `opt`): by the policy of every file libsgdlab writes (a regular file
 * or none; a symbolic link followed to a regular file; docs/cli.md), and that
 * its directory takes a new file (one is made and removed). Prints why not.
 */
bool cli_check_output(const cli *c, const char *opt, const char *path);

/*
 * Puts the file `src` (made by the command, e.g. gnuplot's output in a
 * temporary directory) at `dst` the way -o and checkpoints are written: by
 * the same policy, through a temporary file beside dst and a rename, so that
 * dst is either as it was or complete. Prints why not.
 */
bool cli_install_file(const cli *c, const char *opt, const char *src, const char *dst);

/* The CLI_CALL behind CLI_OPT_OUTPUT: checks FILE and sends standard output to a temporary file beside it. */
bool cli_output_option(cli *c, const cli_opt *opt, const char *value, void *dest);

/*
 * Standard output goes nowhere from now on (a process of a distributed run
 * that is not the one reporting): an -o file is left as it was (its
 * temporary file removed). False if /dev/null cannot be opened.
 */
bool cli_output_discard(void);

/*
 * Ends the command: flushes and closes standard output; a write error (or an
 * -o file that cannot be put in place) is reported and makes a zero `rc`
 * SGDLAB_EXIT_FAIL. With -o, the file replaces FILE now (or is removed when
 * the output failed). Returns the exit status.
 */
int cli_exit(const char *cmd, int rc);

/*
 * fflush(stdout) for output that streams (a line per event): on failure, the
 * reason is kept for cli_exit's message (stdio keeps only an error flag) and
 * false is returned, so that the command may stop.
 */
bool cli_flush(void);

/*
 * Whether the progress bar is drawn: never when stderr is not a terminal or
 * with --quiet; with --progress whenever it is; by default when stdout is a
 * terminal too (so that `sgdlab train > log` writes a clean log).
 */
bool cli_progress_on(const cli *c);

/*
 * SIGINT and SIGTERM. cli_signals_cooperate(): the first one only sets a flag
 * (cli_interrupted() returns its number) that the command polls to stop at a
 * clean point; a second one ends the process as the default action would.
 * Without it (or after it) a signal removes the -o temporary file and ends
 * the process. The exit status of an interrupted command is 128 + signal.
 */
void cli_signals_cooperate(void);
int cli_interrupted(void);

#endif
