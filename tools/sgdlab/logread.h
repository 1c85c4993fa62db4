/*
 * Reading training logs as they come: the line splitter and the line reader
 * behind `sgdlab monitor` and `sgdlab lr-find --from`. Internal to the tool
 * (tests/test_logread.c and tests/fuzz/fuzz_logread.c use it too); the rules
 * are documented in docs/monitor.md ("Reading logs").
 *
 * Both halves allocate only when created; feeding them bytes or lines never
 * allocates, never reads past what it is given, and accepts any bytes.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_TOOL_LOGREAD_H
#define SGDLAB_TOOL_LOGREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest line kept (longer ones are skipped and counted). */
#define LOGREAD_MAX_LINE 65536

/* ------------------------------------------------------------ splitting bytes into lines */

/*
 * Lines end at "\n", "\r\n" or a lone "\r" (a progress bar redrawn in place:
 * each redraw is a line). A UTF-8 byte-order mark at the start of the input is
 * dropped; so are backspaces (Keras redraws with them), NUL bytes (counted)
 * and terminal escape sequences (ESC [ ... letter: colours, cursor moves).
 * A line longer than LOGREAD_MAX_LINE is dropped whole (counted).
 */
typedef struct logsplit {
    char *buf; /* LOGREAD_MAX_LINE + 1 bytes */
    size_t len;
    bool at_start;  /* nothing read yet (for the byte-order mark) */
    int bom;        /* bytes of a possible byte-order mark matched so far */
    bool after_cr;  /* the last byte was '\r' (a following '\n' ends nothing) */
    bool too_long;  /* the current line overflowed: drop it at its end */
    int esc;        /* 0; 1 after ESC; 2 inside ESC [ ... */
    bool line_nul;  /* the current line had NUL bytes */
    int64_t lines;  /* lines delivered */
    int64_t long_lines, nul_lines;
} logsplit;

typedef void (*logsplit_fn)(const char *line, size_t len, void *user);

bool logsplit_init(logsplit *s);
void logsplit_free(logsplit *s);
/* Feeds n bytes; calls fn for each complete line (not NUL-terminated; no terminator). */
void logsplit_feed(logsplit *s, const char *data, size_t n, logsplit_fn fn, void *user);
/* End of input: a last line without a terminator. */
void logsplit_end(logsplit *s, logsplit_fn fn, void *user);
/* Forgets a partial line and starts over as at the start of a file (a file truncated under --follow). */
void logsplit_restart(logsplit *s);

/* ------------------------------------------------------------ reading a line */

typedef enum logread_kind {
    LOGREAD_NONE = 0,  /* blank, comment, or nothing of interest: not counted as skipped */
    LOGREAD_TRAIN = 1, /* a training observation */
    LOGREAD_EVAL = 2,  /* an evaluation line (validation/test values only) */
    LOGREAD_SKIP = 3,  /* a line that could not be used (see why) */
    LOGREAD_HEADER = 4 /* a header of column names */
} logread_kind;

typedef struct logread_obs {
    int kind;         /* a logread_kind */
    double loss;      /* LOGREAD_TRAIN: the training loss (any double, NaN and infinities included) */
    int64_t step;     /* the producer's step, or -1 */
    double lr;        /* the learning rate, or -1 */
    double grad_norm; /* the gradient norm, or -1 (may be NaN or inf) */
    double eval_loss; /* a validation/evaluation loss on the line, or NaN */
    bool new_run;     /* this line starts a new run (the step or epoch went back, a header repeated) */
    int64_t line;     /* the line number it came from (1-based, of the lines given) */
    const char *why;  /* LOGREAD_SKIP: a static reason */
} logread_obs;

typedef struct logread_opts {
    const char *key;      /* the training-loss field; NULL: found by name */
    const char *step_key; /* NULL: step, iter, iteration, global_step, ... */
    const char *lr_key;   /* NULL: lr, learning_rate */
    const char *gn_key;   /* NULL: grad_norm, norm, gradient_norm, total_norm */
    const char *match;    /* POSIX extended regex with one capture group: the loss; NULL: none */
    int column;           /* 1-based column of the loss in plain columns; 0: found (the last by default) */
    int grad_column, lr_column, step_column; /* 1-based; 0: none */
} logread_opts;

typedef struct logread logread;

/* 0, or -1 with a message in err (a bad --match, out of memory). */
int logread_new(logread **out, const logread_opts *o, char *err, size_t errcap);
void logread_free(logread *r);

/*
 * Reads one line (any bytes, not NUL-terminated). Returns the number of
 * observations written to out[0..1]: usually 1; 2 when a held line (a line
 * with both a training and a validation loss, kept until the next line says
 * whether the log has lines of training losses alone) is released first; 0
 * when this line is held.
 */
int logread_line(logread *r, const char *line, size_t len, logread_obs out[2]);
/* End of input (or of a run): releases a held line. Returns 0 or 1. */
int logread_end(logread *r, logread_obs *out);

/* The name of the training-loss field in use ("loss", "column 2", ...), or NULL before any. */
const char *logread_key(const logread *r);

#endif
