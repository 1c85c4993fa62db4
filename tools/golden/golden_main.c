/*
 * sgdlab-golden: run libsgdlab against reference fixture files.
 *
 *   sgdlab-golden FILE...
 *
 * One line per file: "PASS <file> worst=<err>", "FAIL <file> worst=<err>
 * <why>", or "FAIL <file> malformed: line N: <why>". Exit status 0 if every
 * file passes, 1 if any fails, 2 for a usage error.
 * SPDX-License-Identifier: MIT
 */
#include "golden.h"

#include "core/internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fixture files are small; refuse anything absurd rather than exhaust memory. */
#define GOLDEN_MAX_FILE ((size_t)256 << 20)

/* ------------------------------------------------------------------ helpers */

void golden_lines_init(golden_lines *L, const char *text, size_t len)
{
    L->p = text;
    L->end = text + len;
    L->lineno = 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

int golden_next_line(golden_lines *L, const char **line, size_t *n)
{
    while (L->p < L->end) {
        const char *s = L->p;
        const char *nl = memchr(s, '\n', (size_t)(L->end - s));
        const char *e = nl ? nl : L->end;
        L->p = nl ? nl + 1 : L->end;
        L->lineno++;
        const char *q = s;
        while (q < e && is_space(*q))
            q++;
        if (q == e || *q == '#')
            continue;
        while (e > q && is_space(e[-1]))
            e--;
        *line = q;
        *n = (size_t)(e - q);
        return 1;
    }
    return 0;
}

int golden_next_token(const char **p, const char *end, const char **tok, size_t *n)
{
    const char *s = *p;
    while (s < end && is_space(*s))
        s++;
    *tok = s;
    *n = 0;
    if (s == end) {
        *p = s;
        return 0;
    }
    const char *e = s;
    while (e < end && !is_space(*e))
        e++;
    *tok = s;
    *n = (size_t)(e - s);
    *p = e;
    return 1;
}

int golden_token_is(const char *tok, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(tok, lit, l) == 0;
}

int golden_parse_double(const char *tok, size_t n, double *out)
{
    double v;
    if (sgd__parse_double((sgd__str){tok, n}, false, &v) != SGD_OK)
        return -1;
    *out = v;
    return 0;
}

int golden_parse_count(const char *tok, size_t n, size_t max, size_t *out)
{
    int64_t v;
    if (n > 0 && (tok[0] == '+' || tok[0] == '-'))
        return -1;
    if (sgd__parse_int64((sgd__str){tok, n}, &v) != SGD_OK || v < 0 || (uint64_t)v > max)
        return -1;
    *out = (size_t)v;
    return 0;
}

int golden_fail(golden_result *r, int ret, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    /* Messages quote the file's bytes: keep the output one printable line. */
    for (char *c = r->msg; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
    r->ok = 0;
    return ret;
}

/* ------------------------------------------------------------ the driver */

#ifndef GOLDEN_HAVE_SCHED
#define GOLDEN_HAVE_SCHED 0
#endif

/* Reads a whole file into a NUL-terminated buffer; NULL with errno/msg on failure. */
static char *read_file(const char *path, size_t *len, char *why, size_t why_size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(why, why_size, "cannot open: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n + 1 >= cap) {
            if (cap >= GOLDEN_MAX_FILE) {
                snprintf(why, why_size, "larger than %zu MiB", GOLDEN_MAX_FILE >> 20);
                free(buf);
                buf = NULL;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                snprintf(why, why_size, "read error: %s", strerror(errno));
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    if (buf == NULL && why[0] == '\0')
        snprintf(why, why_size, "out of memory");
    fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

static int check_file(const char *path)
{
    char why[256] = "";
    size_t len = 0;
    char *text = read_file(path, &len, why, sizeof why);
    if (text == NULL) {
        printf("FAIL %s %s\n", path, why);
        return 0;
    }
    golden_result r;
    memset(&r, 0, sizeof r);
    r.worst = NAN;
    int rc;
    golden_lines L;
    golden_lines_init(&L, text, len);
    const char *line, *tok;
    size_t n, tn;
    if (!golden_next_line(&L, &line, &n)) {
        rc = golden_fail(&r, -1, "line %zu: no directive (expected 'optimizer' or 'scheduler')", L.lineno);
    } else {
        const char *p = line;
        golden_next_token(&p, line + n, &tok, &tn); /* a non-blank line has a token */
        if (golden_token_is(tok, tn, "optimizer")) {
            rc = golden_check_optim(path, text, len, &r);
        } else if (golden_token_is(tok, tn, "scheduler")) {
#if GOLDEN_HAVE_SCHED
            rc = golden_check_sched(path, text, len, &r);
#else
            printf("FAIL %s scheduler fixtures are checked by the sched module (golden_sched.c missing from this "
                   "build)\n",
                   path);
            free(text);
            return 0;
#endif
        } else {
            rc = golden_fail(&r, -1, "line %zu: unknown directive '%.*s' (expected 'optimizer' or 'scheduler')",
                             L.lineno, (int)(tn > 40 ? 40 : tn), tok);
        }
    }
    free(text);
    if (rc != 0)
        printf("FAIL %s malformed: %s\n", path, r.msg);
    else if (r.ok)
        printf("PASS %s worst=%.3g%s%s\n", path, r.worst, r.msg[0] ? " " : "", r.msg);
    else
        printf("FAIL %s worst=%.3g %s\n", path, r.worst, r.msg);
    return rc == 0 && r.ok;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE...\n"
                        "Checks libsgdlab against reference trajectories (optimizer and scheduler fixture files);\n"
                        "prints PASS or FAIL, the file and the worst error for each; exits 1 if any fails.\n",
                argv[0]);
        return 2;
    }
    int failed = 0;
    for (int i = 1; i < argc; i++)
        if (!check_file(argv[i]))
            failed++;
    fflush(stdout);
    return failed ? 1 : 0;
}
