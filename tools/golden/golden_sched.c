/*
 * sgdlab-golden, schedule half: checks a `sched__*.txt` fixture (format in
 * tests/data/golden/README.md) against libsgdlab's schedules.
 *
 *   scheduler KIND key=value ...     torch's names; milestones=a,b,c;
 *                                    children=kind,k=v,...;kind,k=v,...
 *   base_lr B steps S
 *   lr l_0 ... l_{S-1}               the lr in force at step t
 *   metric m_0 ... m_{S-1}           (plateau) the metric observed after step t
 *   momentum u_0 ... u_{S-1}         (optional, an extension of the shared format)
 *                                    the momentum in force at step t
 *
 * The scheduler line is translated into a libsgdlab spec (docs/sched.md) and
 * built with sgd_sched_new(), the public entry point; the lr of every step is
 * then compared (and the momentum, when the file has it, against
 * sgd_sched_momentum()) within 1e-9, relative to the reference value, or, for values
 * below a millionth of the largest reference (exact zeros of a polynomial or
 * a cosine trough), relative to that millionth. A malformed file is reported
 * with its line, never crashed on.
 * SPDX-License-Identifier: MIT
 */
#include "golden.h"

#include "core/internal.h"
#include "sgdlab/sched.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHED_TOL 1e-9
#define SCHED_MAX_STEPS ((size_t)1 << 22)

static int gs_fail(golden_result *r, int ret, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int gs_fail(golden_result *r, int ret, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->ok = 0;
    return ret;
}

static int gs_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Next line that is neither blank nor a comment; *lineno counts every line. */
static int gs_line(const char **cur, const char *end, size_t *lineno, const char **line, size_t *n)
{
    while (*cur < end) {
        const char *s = *cur, *nl = memchr(s, '\n', (size_t)(end - s)), *e = nl ? nl : end;
        *cur = nl ? nl + 1 : end;
        (*lineno)++;
        while (s < e && gs_space(*s))
            s++;
        if (s == e || *s == '#')
            continue;
        while (e > s && gs_space(e[-1]))
            e--;
        *line = s;
        *n = (size_t)(e - s);
        return 1;
    }
    return 0;
}

static int gs_token(const char **p, const char *end, const char **tok, size_t *n)
{
    const char *s = *p;
    while (s < end && gs_space(*s))
        s++;
    const char *e = s;
    while (e < end && !gs_space(*e))
        e++;
    *p = e;
    *tok = s;
    *n = (size_t)(e - s);
    return e > s;
}

static int gs_is(const char *tok, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(tok, lit, n) == 0;
}

/* ------------------------------------------------------- spec translation */

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static int put(buf *b, const char *s, size_t n)
{
    if (n >= b->cap - b->n)
        return -1;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

static int is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Characters a fixture value may hold: printable, and none of the spec's brackets or ':'. */
static int is_value_char(char c, int allow_sep)
{
    if (c <= ' ' || c > '~' || c == '(' || c == ')' || c == '[' || c == ']' || c == ':')
        return 0;
    return allow_sep || (c != ';' && c != ',');
}

/* "kind,k=v,k=v" -> "(kind:k=v,k=v)" */
static int put_child(buf *b, const char *s, size_t n)
{
    const char *comma = memchr(s, ',', n);
    size_t kn = comma ? (size_t)(comma - s) : n;
    if (kn == 0)
        return -1;
    for (size_t i = 0; i < kn; i++)
        if (!is_key_char(s[i]))
            return -1;
    for (size_t i = kn; i < n; i++)
        if (!is_value_char(s[i], 0) && s[i] != ',')
            return -1;
    if (put(b, "(", 1) || put(b, s, kn))
        return -1;
    if (comma != NULL && (put(b, ":", 1) || put(b, comma + 1, n - kn - 1)))
        return -1;
    return put(b, ")", 1);
}

/*
 * The `scheduler KIND key=value ...` line (after the directive) -> a spec.
 * Returns 0, or -1 with *bad set to the offending token.
 */
static int translate(buf *b, const char *p, const char *end, const char **bad, size_t *badn)
{
    const char *tok;
    size_t n;
    if (!gs_token(&p, end, &tok, &n)) {
        *bad = "";
        *badn = 0;
        return -1;
    }
    *bad = tok;
    *badn = n;
    for (size_t i = 0; i < n; i++)
        if (!is_key_char(tok[i]))
            return -1;
    if (put(b, tok, n))
        return -1;
    int first = 1;
    while (gs_token(&p, end, &tok, &n)) {
        *bad = tok;
        *badn = n;
        const char *eq = memchr(tok, '=', n);
        if (eq == NULL || eq == tok || eq == tok + n - 1)
            return -1;
        size_t kn = (size_t)(eq - tok);
        const char *v = eq + 1;
        size_t vn = n - kn - 1;
        for (size_t i = 0; i < kn; i++)
            if (!is_key_char(tok[i]))
                return -1;
        if (put(b, first ? ":" : ",", 1) || put(b, tok, kn + 1))
            return -1;
        first = 0;
        if (gs_is(tok, kn, "milestones")) {
            for (size_t i = 0; i < vn; i++)
                if (!is_value_char(v[i], 0) && v[i] != ',')
                    return -1;
            if (put(b, "[", 1) || put(b, v, vn) || put(b, "]", 1))
                return -1;
        } else if (gs_is(tok, kn, "children")) {
            if (put(b, "[", 1))
                return -1;
            const char *c = v, *vend = v + vn;
            for (;;) {
                const char *semi = memchr(c, ';', (size_t)(vend - c));
                const char *ce = semi ? semi : vend;
                if ((c > v && put(b, ",", 1)) || put_child(b, c, (size_t)(ce - c)))
                    return -1;
                if (semi == NULL)
                    break;
                c = semi + 1;
            }
            if (put(b, "]", 1))
                return -1;
        } else {
            for (size_t i = 0; i < vn; i++)
                if (!is_value_char(v[i], 0))
                    return -1;
            if (put(b, v, vn))
                return -1;
        }
    }
    return 0;
}

/* Reads exactly `count` numbers after the directive of a line into out. */
static int read_numbers(const char *p, const char *end, size_t count, double *out, size_t *got, const char **bad,
                        size_t *badn)
{
    const char *tok;
    size_t n, i = 0;
    while (gs_token(&p, end, &tok, &n)) {
        if (i == count) {
            *got = i + 1;
            return -1;
        }
        if (sgd__parse_double((sgd__str){tok, n}, false, &out[i]) != SGD_OK) {
            *bad = tok;
            *badn = n;
            *got = i;
            return -2;
        }
        i++;
    }
    *got = i;
    return i == count ? 0 : -1;
}

int golden_check_sched(const char *path, const char *text, size_t len, golden_result *r)
{
    (void)path;
    memset(r, 0, sizeof *r);
    r->worst = NAN;
    const char *cur = text, *end = text + len, *line, *p, *tok;
    size_t lineno = 0, n, tn;

    /* scheduler KIND key=value ... */
    if (!gs_line(&cur, end, &lineno, &line, &n))
        return gs_fail(r, -1, "line %zu: expected 'scheduler KIND key=value...'", lineno);
    p = line;
    gs_token(&p, line + n, &tok, &tn);
    if (!gs_is(tok, tn, "scheduler"))
        return gs_fail(r, -1, "line %zu: expected 'scheduler', got '%.*s'", lineno, (int)(tn > 40 ? 40 : tn), tok);
    size_t spec_line = lineno;
    const char *sched_p = p, *sched_end = line + n;

    /* base_lr B steps S */
    if (!gs_line(&cur, end, &lineno, &line, &n))
        return gs_fail(r, -1, "line %zu: expected 'base_lr B steps S'", lineno);
    double base_lr = 0;
    size_t steps = 0;
    {
        const char *t[4];
        size_t l[4], k = 0;
        p = line;
        while (k < 4 && gs_token(&p, line + n, &t[k], &l[k]))
            k++;
        const char *extra;
        size_t en;
        int64_t s64 = 0;
        if (k != 4 || gs_token(&p, line + n, &extra, &en) || !gs_is(t[0], l[0], "base_lr") ||
            !gs_is(t[2], l[2], "steps"))
            return gs_fail(r, -1, "line %zu: expected 'base_lr B steps S'", lineno);
        if (sgd__parse_double((sgd__str){t[1], l[1]}, false, &base_lr) != SGD_OK || base_lr < 0)
            return gs_fail(r, -1, "line %zu: base_lr '%.*s' is not a finite number >= 0", lineno,
                           (int)(l[1] > 40 ? 40 : l[1]), t[1]);
        if (sgd__parse_int64((sgd__str){t[3], l[3]}, &s64) != SGD_OK || s64 < 1 || (uint64_t)s64 > SCHED_MAX_STEPS)
            return gs_fail(r, -1, "line %zu: steps '%.*s' is not an integer in [1, %zu]", lineno,
                           (int)(l[3] > 40 ? 40 : l[3]), t[3], SCHED_MAX_STEPS);
        steps = (size_t)s64;
    }

    double *lr = calloc(steps, sizeof *lr), *metric = calloc(steps, sizeof *metric);
    double *mom = calloc(steps, sizeof *mom);
    buf b = {.cap = 3 * (size_t)(sched_end - sched_p) + 64};
    b.p = malloc(b.cap);
    sgd_sched *s = NULL;
    int rc = 0, have_lr = 0, have_metric = 0, have_mom = 0;
    if (lr == NULL || metric == NULL || mom == NULL || b.p == NULL) {
        rc = gs_fail(r, -1, "out of memory for %zu steps", steps);
        goto done;
    }
    b.p[0] = '\0';

    /* lr ..., metric ... and momentum ..., once each */
    while (gs_line(&cur, end, &lineno, &line, &n)) {
        p = line;
        gs_token(&p, line + n, &tok, &tn);
        int is_lr = gs_is(tok, tn, "lr"), is_metric = gs_is(tok, tn, "metric"), is_mom = gs_is(tok, tn, "momentum");
        if ((!is_lr && !is_metric && !is_mom) || (is_lr && have_lr) || (is_metric && have_metric) ||
            (is_mom && have_mom)) {
            rc = gs_fail(r, -1,
                         "line %zu: unexpected '%.*s' (expected one 'lr' line, and at most one 'metric' and one "
                         "'momentum' line)",
                         lineno, (int)(tn > 40 ? 40 : tn), tok);
            goto done;
        }
        const char *what = is_lr ? "lr" : is_metric ? "metric" : "momentum";
        double *into = is_lr ? lr : is_metric ? metric : mom;
        size_t got;
        const char *bad = "";
        size_t badn = 0;
        int e = read_numbers(p, line + n, steps, into, &got, &bad, &badn);
        if (e == -2) {
            rc = gs_fail(r, -1, "line %zu: value %zu '%.*s' is not a finite number", lineno, got + 1,
                         (int)(badn > 40 ? 40 : badn), bad);
            goto done;
        }
        if (e != 0) {
            rc = gs_fail(r, -1, "line %zu: %s has %s%zu values, steps says %zu", lineno, what,
                         got > steps ? "more than " : "", got > steps ? steps : got, steps);
            goto done;
        }
        have_lr |= is_lr;
        have_metric |= is_metric;
        have_mom |= is_mom;
    }
    if (!have_lr) {
        rc = gs_fail(r, -1, "line %zu: no 'lr' line", lineno);
        goto done;
    }

    const char *bad;
    size_t badn;
    if (translate(&b, sched_p, sched_end, &bad, &badn) != 0) {
        rc = gs_fail(r, -1, "line %zu: cannot read '%.*s' (expected KIND key=value ...)", spec_line,
                     (int)(badn > 60 ? 60 : badn), bad);
        goto done;
    }
    if (sgd_sched_new(&s, b.p, base_lr, NULL) != SGD_OK) {
        gs_fail(r, 0, "line %zu: libsgdlab refused it: %s", spec_line, sgd_error_last());
        goto done;
    }
    if (sgd_sched_watches_metric(s) && !have_metric) {
        rc = gs_fail(r, -1, "line %zu: '%s' watches a metric but the file has no 'metric' line", lineno,
                     sgd_sched_name(s));
        goto done;
    }

    if (have_mom && !sgd_sched_cycles_momentum(s)) {
        gs_fail(r, 0, "line %zu: the file has a 'momentum' line but '%s' does not cycle momentum", spec_line,
                sgd_sched_name(s));
        goto done;
    }
    double peak = 0, mpeak = 0;
    for (size_t t = 0; t < steps; t++) {
        peak = fmax(peak, fabs(lr[t]));
        mpeak = fmax(mpeak, fabs(mom[t]));
    }
    double floor_ = fmax(1e-6 * peak, DBL_MIN), mfloor = fmax(1e-6 * mpeak, DBL_MIN);
    double worst = 0;
    size_t worst_t = 0;
    double worst_got = 0;
    const char *worst_what = "lr";
    for (size_t t = 0; t < steps; t++) {
        double got;
        if (sgd_sched_lr(s, (int64_t)t, &got) != SGD_OK) {
            gs_fail(r, 0, "step %zu: %s", t, sgd_error_last());
            r->worst = INFINITY;
            goto done;
        }
        double err = fabs(got - lr[t]) / fmax(fabs(lr[t]), floor_);
        if (!(err <= worst)) { /* also catches NaN */
            worst = err;
            worst_t = t;
            worst_got = got;
            worst_what = "lr";
        }
        if (have_mom) {
            double m;
            int32_t set;
            sgd_status mst = sgd_sched_momentum(s, (int64_t)t, &m, &set);
            if (mst != SGD_OK || !set) {
                gs_fail(r, 0, "step %zu: no momentum: %s", t, mst != SGD_OK ? sgd_error_last() : "not set at this step");
                r->worst = INFINITY;
                goto done;
            }
            err = fabs(m - mom[t]) / fmax(fabs(mom[t]), mfloor);
            if (!(err <= worst)) {
                worst = err;
                worst_t = t;
                worst_got = m;
                worst_what = "momentum";
            }
        }
        if (have_metric && sgd_sched_observe(s, (int64_t)t, metric[t]) != SGD_OK) {
            gs_fail(r, 0, "step %zu: %s", t, sgd_error_last());
            r->worst = INFINITY;
            goto done;
        }
    }
    r->worst = worst;
    r->ok = worst <= SCHED_TOL;
    if (r->ok)
        snprintf(r->msg, sizeof r->msg, "%zu steps%s", steps, have_mom ? ", lr and momentum" : "");
    else
        snprintf(r->msg, sizeof r->msg, "step %zu: %s=%.17g, expected %.17g (error %.3g > %g)", worst_t, worst_what,
                 worst_got, worst_what[0] == 'l' ? lr[worst_t] : mom[worst_t], worst, SCHED_TOL);
done:
    sgd_sched_free(s);
    free(b.p);
    free(lr);
    free(metric);
    free(mom);
    return rc;
}
