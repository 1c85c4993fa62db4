/*
 * Helpers shared by the sgdlab tool's commands: the argument parser and the
 * end of a command (args.h), datasets, the progress bar, tables, JSON, and
 * plots through gnuplot.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_TOOL_CLI_H
#define SGDLAB_TOOL_CLI_H

#include "args.h"
#include "sgdlab/sgdlab.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* SPEC with its lr set to `lr` ("kind:lr=X,..." replacing any lr=); false if it does not fit. */
bool cli_optim_with_lr(const char *spec, double lr, char *out, size_t cap);

/* ------------------------------------------------------------ data */

typedef struct cli_data {
    char name[64];            /* "fashion-mnist", "spirals", or "idx" */
    char desc[256];           /* for headings */
    sgd_dataset *train;       /* what the model trains on */
    sgd_dataset *val;         /* validation (the test set, or a split of the training set) */
    sgd_dataset *test;        /* the test set (may be the same handle as val), or NULL */
    const char *val_name;     /* "test" or "val": which set `val` is ("val_data" in JSON) */
    int64_t dim, classes;
    double load_seconds;
} cli_data;

/*
 * --data: "fashion-mnist" (default; Debian's dataset-fashion-mnist), "spirals"
 * (generated), a directory holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz],
 * or "TRAIN_IMAGES,TRAIN_LABELS[,TEST_IMAGES,TEST_LABELS]". val_split > 0 holds
 * out that many training rows as the validation set (seeded). Errors name --data.
 */
bool cli_load_data(const char *cmd, const char *spec, int64_t val_split, uint64_t seed, cli_data *d);
void cli_data_free(cli_data *d);
/* The default model for the data: "784-256-relu-128-relu-10" for images, "2-64-relu-64-relu-3" for spirals. */
void cli_default_model(const cli_data *d, char *buf, size_t cap);

/* ------------------------------------------------------------ output */

/*
 * The progress bar, on stderr: "[#####.....]  42% TEXT  ETA 1m05s", fitted to
 * the terminal's width (the text is cut, then the bar dropped, so that a line
 * never wraps), redrawn in place.
 */
typedef struct cli_bar {
    bool on;
    double last, t0;
} cli_bar;

/* `on`: cli_progress_on() (nothing is drawn otherwise). */
void cli_bar_init(cli_bar *b, bool on);
/* Redraws at most 10 times a second (force: always). eta < 0: estimated from the time since init and the fraction. */
void cli_bar_draw(cli_bar *b, double fraction, double eta, const char *text, bool force);
void cli_bar_clear(cli_bar *b);
/* The terminal's width (TIOCGWINSZ on stderr, else $COLUMNS, else 80). */
int cli_columns(void);

/* JSON helpers (to a FILE): a string, a number (null when not finite), an integer or null (when < 0). */
void cli_json_str(FILE *f, const char *s);
void cli_json_num(FILE *f, double v);
void cli_json_count(FILE *f, int64_t v);
/* The schema a JSON document carries in its "schema" field: "sgdlab.<cmd>/<version>" (docs/cli.md). */
#define CLI_SCHEMA(cmd) "sgdlab." cmd "/1"
/* A status as JSON shows it: its name alone ("SGD_OK", "SGD_EDIVERGED"), the message going to "error". */
void cli_json_status(FILE *f, sgd_status st);
/* CSV fields: a number, or nothing when not finite (a missing value). */
void cli_csv_num(FILE *f, double v);

/*
 * One record (an epoch, a trial, a point of a curve) written by one function
 * as a JSON object, a CSV row or the CSV header, so that the CSV columns are
 * the JSON fields, in one order, by construction:
 *
 *     static void put_point(cli_rec *w, ...) { cli_rec_begin(w); cli_rec_int(w, "step", i); ... cli_rec_end(w); }
 *     cli_rec w = {stdout, CLI_REC_CSV_HEADER, 0}; put_point(&w, first);   // "step,lr,...\n"
 *     w.mode = CLI_REC_CSV; for (...) put_point(&w, ...);                  // rows
 *
 * JSON records are separated by commas (the caller writes the brackets); a
 * missing value is null in JSON and an empty field in CSV.
 */
enum { CLI_REC_JSON = 0, CLI_REC_CSV = 1, CLI_REC_CSV_HEADER = 2 };
typedef struct cli_rec {
    FILE *f;
    int mode;
    int64_t records; /* written so far (JSON: a comma before the next) */
    int fields;      /* in the record being written */
} cli_rec;

void cli_rec_begin(cli_rec *w);
void cli_rec_num(cli_rec *w, const char *name, double v);     /* null / empty when not finite */
void cli_rec_int(cli_rec *w, const char *name, int64_t v);
void cli_rec_count(cli_rec *w, const char *name, int64_t v);  /* null / empty when < 0 */
void cli_rec_str(cli_rec *w, const char *name, const char *s); /* NULL: null / empty */
void cli_rec_bool(cli_rec *w, const char *name, bool v);       /* true/false; CSV 1/0 */
void cli_rec_end(cli_rec *w);

/* A compact number for tables: "0.0001", "3.16e-05", "1.2e+03", "nan". */
const char *cli_num(char *buf, size_t cap, double v);

double cli_now(void);

/* ------------------------------------------------------------ plots */

/* Whether gnuplot is on PATH (the Debian package is gnuplot-nox). */
bool cli_have_gnuplot(void);
/* Message when gnuplot is missing. */
void cli_no_gnuplot(const cli *c, const char *path);
/* "svg" or "png" from the file name, or NULL. */
const char *cli_plot_format(const char *path);
/*
 * The CLI_CALL for --plot FILE: the name must end in .svg or .png and the
 * path must be writable (cli_check_output), both checked before any work.
 */
bool cli_plot_option(cli *c, const cli_opt *opt, const char *value, void *dest);

/*
 * A plot under construction. Data files and the script live in a temporary
 * directory where gnuplot runs, so that the script names files only by the
 * fixed relative names "d0.dat", "d1.dat"... and gnuplot writes only its own
 * "plot.out" there: no name given by the user (or $TMPDIR) is ever part of
 * the script. The picture is then put at the --plot path the way every output
 * file is (cli_install_file).
 */
typedef struct cli_plot {
    char dir[256];
    int files;
} cli_plot;

bool cli_plot_begin(cli_plot *p, const cli *c);
/* Opens data file number k ("dK.dat" in the script) for writing. */
FILE *cli_plot_file(cli_plot *p, int k);
/*
 * Runs gnuplot over the terminal line for dest's format, "set output
 * 'plot.out'", then `script`; then puts the picture at dest.
 */
bool cli_plot_run(cli_plot *p, const cli *c, const char *script, const char *dest);
void cli_plot_end(cli_plot *p);
/* "set <axis>tics (...)\n" at 1, 2 and 5 times the powers of 10 in [lo, hi] ("" if fewer than 2). */
const char *cli_log_tics(char *buf, size_t cap, const char *axis, double lo, double hi);
/*
 * s as the inside of a gnuplot single-quoted string: quotes doubled, control
 * characters (a newline would end the command) and DEL replaced by '?'.
 */
const char *cli_gp_str(char *buf, size_t cap, const char *s);
/*
 * Writes a loss curve as "step value" lines, the loss smoothed by an EMA of its
 * log (time constant 10 steps), NaN once it turns non-finite; lowers *ymin to
 * the smallest smoothed value and raises *y0 to the first loss.
 */
void cli_write_ema_curve(FILE *f, const double *loss, int64_t n, double *ymin, double *y0);

#endif
