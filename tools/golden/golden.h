/*
 * sgdlab-golden: checks libsgdlab against reference trajectories produced by
 * PyTorch 1.13 (tests/data/golden/, format in its README). Built, not
 * installed.
 *
 * golden_main.c reads each file named on the command line and hands it, by
 * its first directive (the first line that is neither blank nor a '#'
 * comment), to one of the two checkers below:
 *   - golden_optim.c: "optimizer KIND key=value ..." files;
 *   - golden_sched.c: "scheduler KIND key=value ..." files (the sched module's).
 * It prints one line per file, "PASS <file> worst=<err>" or
 * "FAIL <file> ...", and exits non-zero if any file fails.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_GOLDEN_H
#define SGDLAB_GOLDEN_H

#include <stddef.h>

/* What a checker found. */
typedef struct golden_result {
    int ok;        /* 1: every value within tolerance */
    double worst;  /* the largest error seen (NaN if nothing was compared) */
    char msg[256]; /* why it failed (or, for a malformed file, "line N: ...") */
} golden_result;

/*
 * The checkers. `text` holds the file's `len` bytes (also NUL-terminated at
 * text[len], but it may contain NUL bytes of its own; trust `len`).
 * Return 0 if the file was understood (r->ok then says pass or fail), -1 if
 * it is malformed (r->msg names the line). Never crash on any input.
 */
int golden_check_optim(const char *path, const char *text, size_t len, golden_result *r);
int golden_check_sched(const char *path, const char *text, size_t len, golden_result *r);

/* ---------------------------------------------------------------------------
 * Helpers for the checkers (implemented in golden_main.c).
 */

/* A cursor over the lines of a file. */
typedef struct golden_lines {
    const char *p, *end;
    size_t lineno; /* number of the line last returned, from 1 */
} golden_lines;

void golden_lines_init(golden_lines *L, const char *text, size_t len);

/*
 * The next line that is neither blank nor a comment (first non-space
 * character '#'), without its end of line. Returns 1 and sets *line and *n,
 * or 0 at the end of the text.
 */
int golden_next_line(golden_lines *L, const char **line, size_t *n);

/*
 * The next whitespace-separated token of the line [*p, end): returns 1 and
 * sets *tok and *n (and advances *p), or 0 if only whitespace is left.
 */
int golden_next_token(const char **p, const char *end, const char **tok, size_t *n);

/* 1 if the token equals the NUL-terminated `lit`. */
int golden_token_is(const char *tok, size_t n, const char *lit);

/*
 * Strict, locale-independent parse of a finite number (the whole token):
 * returns 0 and sets *out, or -1.
 */
int golden_parse_double(const char *tok, size_t n, double *out);

/* The same for an integer in [0, max]. */
int golden_parse_count(const char *tok, size_t n, size_t max, size_t *out);

/* Formats r->msg (printf-style, truncated to fit) and returns `ret`. */
int golden_fail(golden_result *r, int ret, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif /* SGDLAB_GOLDEN_H */
