/*
 * Helpers shared by the training subcommands of the sgdlab tool (train,
 * lr-find, sweep): argument parsing with messages that name the argument,
 * datasets, the progress bar, tables, JSON, and plots through gnuplot.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_TOOL_CLI_H
#define SGDLAB_TOOL_CLI_H

#include "sgdlab/sgdlab.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------ arguments */

/*
 * A tiny option scanner: argv[0] is the subcommand; options are "--name value",
 * "--name=value" or flags. cli_next() returns the option's name (without "--")
 * or NULL at the end, and leaves a positional argument in *positional.
 */
typedef struct cli_args {
    const char *cmd; /* "train", for messages */
    int argc;
    char **argv;
    int i;
    const char *inline_value; /* after '=' */
    const char *opt;          /* the option being parsed, as written */
    bool error;
} cli_args;

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv);
/* The next option name ("epochs" for "--epochs"), or NULL when done; positionals are errors. */
const char *cli_next(cli_args *a);
/* The option's value (the next argument or the part after '='); NULL, with a message, if missing. */
const char *cli_value(cli_args *a);
/* A flag must not have a value ("--guard=1" is an error). */
bool cli_flag(cli_args *a);
/* Typed values; on error print "sgdlab CMD: --opt: 'text': why" and return false. */
bool cli_int(cli_args *a, int64_t lo, int64_t hi, int64_t *out);
bool cli_double(cli_args *a, double lo, double hi, bool lo_open, double *out);
bool cli_string(cli_args *a, const char **out);
/* A comma-separated list of doubles (each in (lo, hi], or [lo, hi] when !lo_open). */
bool cli_double_list(cli_args *a, double lo, double hi, bool lo_open, double **out, size_t *n);
bool cli_int_list(cli_args *a, int64_t lo, int64_t hi, int64_t **out, size_t *n);
/* "sgdlab CMD: --opt: msg" on stderr; sets a->error. */
void cli_fail(cli_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_unknown(cli_args *a, const char *name);

/* SPEC with its lr set to `lr` ("kind:lr=X,..." replacing any lr=); false if it does not fit. */
bool cli_optim_with_lr(const char *spec, double lr, char *out, size_t cap);

/* ------------------------------------------------------------ data */

typedef struct cli_data {
    char name[64];            /* "fashion-mnist", "spirals", or "idx" */
    char desc[256];           /* for headings */
    sgd_dataset *train;       /* what the model trains on */
    sgd_dataset *val;         /* validation (the test set, or a split of the training set) */
    sgd_dataset *test;        /* the test set (may be the same handle as val), or NULL */
    const char *val_name;     /* "test" or "val" */
    int64_t dim, classes;
    double load_seconds;
    /* text data (cli_text.c): the corpus, the sequence length T and the streams B; else NULL, 0, 0 */
    sgd_text *text;
    int64_t seq_len, streams;
} cli_data;

/*
 * --data: "fashion-mnist" (default; Debian's dataset-fashion-mnist), "spirals"
 * (generated), a directory holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz],
 * or "TRAIN_IMAGES,TRAIN_LABELS[,TEST_IMAGES,TEST_LABELS]". val_split > 0 holds
 * out that many training rows as the validation set (seeded). Errors name --data.
 */
bool cli_load_data(const char *cmd, const char *spec, int64_t val_split, uint64_t seed, cli_data *d);
void cli_data_free(cli_data *d);

/* ------------------------------------------------------------ text data (cli_text.c) */

/* Where the default text corpus is: Debian's package fortunes. */
#define CLI_FORTUNES_DIR "/usr/share/games/fortunes"

/* Whether a --data value is text: "text" or "text:PATH[,PATH...]". */
bool cli_is_text(const char *spec);
/*
 * --data text[:PATH[,PATH...]]: the corpus (the fortunes directory by
 * default, $SGDLAB_FORTUNES_DIR overriding it), cut into `streams` parallel
 * streams of sequences of `seq_len`, the last `val_fraction` of the text for
 * validation; `unit` is an sgd_text_unit. Errors name --data.
 */
bool cli_load_text(const char *cmd, const char *spec, int64_t seq_len, int64_t streams, double val_fraction,
                   int32_t unit, cli_data *d);
/*
 * The model spec for the data: for text, `model` with the options vocab=V
 * and seq_len=T appended (those it does not give itself), so that
 * dense(vocab), embedding(64) and tokens resolve; `model` itself otherwise.
 * Returns buf or model; NULL (with a message) if it does not fit.
 */
const char *cli_text_spec(const char *cmd, const cli_data *d, const char *model, char *buf, size_t cap);
/* Saves a checkpoint of `parts` and, for text, the vocabulary; false with a message naming `what`. */
bool cli_save_checkpoint(const char *cmd, const char *path, const sgd_checkpoint_parts *parts, const cli_data *d);
/* Restores `parts` from a checkpoint, checking the vocabulary for text; false with a message. */
bool cli_load_checkpoint(const char *cmd, const char *path, const sgd_checkpoint_parts *parts, const cli_data *d);
/* The text data's desc line parts: "2576627 characters, 113 symbols" (always terminated). */
const char *cli_text_summary(const cli_data *d, char *buf, size_t cap);
/* Prints `length` symbols generated by m (temperature, seed), wrapped as a quoted block; false on error. */
bool cli_text_sample(FILE *f, sgd_model *m, const sgd_vocab *v, int64_t length, double temperature, uint64_t seed,
                     const char *prime, char **out);
/*
 * The default model for the data: "784-256-relu-128-relu-10" for images, "2-64-relu-64-relu-3" for spirals,
 * "tokens-embedding(64)-lstm(256)-dense(vocab)" for text.
 */
void cli_default_model(const cli_data *d, char *buf, size_t cap);

/* ------------------------------------------------------------ output */

/* Progress bar on stderr when it is a terminal (and not disabled). */
typedef struct cli_bar {
    bool on;
    double last;
    int width;
} cli_bar;

void cli_bar_init(cli_bar *b, bool enabled);
/* Redraws at most 10 times a second (force: always). */
void cli_bar_draw(cli_bar *b, double fraction, const char *text, bool force);
void cli_bar_clear(cli_bar *b);

/* JSON helpers (to a FILE). */
void cli_json_str(FILE *f, const char *s);
void cli_json_num(FILE *f, double v);

/* A compact number for tables: "0.0001", "3.16e-05", "1.2e+03", "nan". */
const char *cli_num(char *buf, size_t cap, double v);

double cli_now(void);

/* ------------------------------------------------------------ plots */

/* Whether gnuplot is on PATH (the Debian package is gnuplot-nox). */
bool cli_have_gnuplot(void);
/* "svg" or "png" from the file name, or NULL (with a message naming --plot). */
const char *cli_plot_format(const char *cmd, const char *path);
/* Message when gnuplot is missing. */
void cli_no_gnuplot(const char *cmd, const char *path);

/*
 * A plot under construction: data blocks are written to a temporary directory
 * and gnuplot runs a script over them.
 */
typedef struct cli_plot {
    char dir[256];
    int files;
} cli_plot;

bool cli_plot_begin(cli_plot *p, const char *cmd);
/* Opens data file number k for writing; its path is put in path. */
FILE *cli_plot_file(cli_plot *p, int k, char *path, size_t cap);
/* Runs gnuplot over `script` (which writes to out_path in the given format). */
bool cli_plot_run(cli_plot *p, const char *cmd, const char *script);
void cli_plot_end(cli_plot *p);
/* The gnuplot "set terminal" line for a format. */
const char *cli_plot_terminal(const char *format);
/* "set <axis>tics (...)\n" at 1, 2 and 5 times the powers of 10 in [lo, hi] ("" if fewer than 2). */
const char *cli_log_tics(char *buf, size_t cap, const char *axis, double lo, double hi);
/* Escapes a string for a gnuplot single-quoted string (doubles the quotes) into buf. */
const char *cli_gp_str(char *buf, size_t cap, const char *s);
/*
 * Writes a loss curve as "step value" lines, the loss smoothed by an EMA of its
 * log (time constant 10 steps), NaN once it turns non-finite; lowers *ymin to
 * the smallest smoothed value and raises *y0 to the first loss.
 */
void cli_write_ema_curve(FILE *f, const double *loss, int64_t n, double *ymin, double *y0);

#endif
