/*
 * sgdlab-golden, optimizer side: replays an "optimizer" fixture through a
 * libsgdlab built-in optimizer in float32 and compares every parameter after
 * every step with the reference:
 *
 *   optimizer KIND key=value ...
 *   n N steps T
 *   x0 v_1 ... v_N
 *   step 1 lr L          (T times: step k, its lr, the gradient, the result)
 *   g g_1 ... g_N
 *   x x_1 ... x_N
 *
 * Two optional lines (tests/gen_beyond_fixtures.py writes them):
 *
 *   tensors S_1 ... S_k  after 'n': the arena's tensors (sgd_optim_set_tensors)
 *   e e_1 ... e_N        after an 'x': the parameters at the evaluation point
 *                        (sgd_optim_eval_point(1), compared, then back with 0)
 *
 * error = |x - x_ref| / max(|x_ref|, 0.01), at most 5e-4 everywhere
 * (tests/data/golden/README.md). The lr column is used as given; when a
 * comment says "# the lr column follows the schedule KIND key=value ...",
 * the column is also checked against libsgdlab's schedule of that spec
 * (base_lr: the optimizer's lr; step k of the file is the schedule's step
 * k - 1), within the schedule fixtures' 1e-9 relative.
 * SPDX-License-Identifier: MIT
 */
#include "golden.h"

#include "sgdlab/sgdlab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN_OPTIM_TOL 5e-4
#define GOLDEN_OPTIM_FLOOR 0.01
#define GOLDEN_MAX_SPEC 4096
#define GOLDEN_SCHED_TOL 1e-9
/* Reads the next content line; it must start with `word`. Leaves *p after the word. */
static int expect_line(golden_lines *L, golden_result *r, const char *word, const char **p, const char **end)
{
    const char *line, *tok;
    size_t n, tn;
    if (!golden_next_line(L, &line, &n))
        return golden_fail(r, -1, "line %zu: file ends where '%s' was expected (truncated?)", L->lineno, word);
    *p = line;
    *end = line + n;
    golden_next_token(p, *end, &tok, &tn);
    if (!golden_token_is(tok, tn, word))
        return golden_fail(r, -1, "line %zu: expected '%s', found '%.*s'", L->lineno, word, (int)(tn > 40 ? 40 : tn),
                           tok);
    return 0;
}

/* Parses exactly `n` numbers from [p, end) into out (as float) or ref (as double). */
static int read_vector(golden_lines *L, golden_result *r, const char *word, const char *p, const char *end, size_t n,
                       float *out, double *ref)
{
    const char *tok;
    size_t tn;
    for (size_t i = 0; i < n; i++) {
        if (!golden_next_token(&p, end, &tok, &tn))
            return golden_fail(r, -1, "line %zu: '%s' has %zu numbers, expected %zu", L->lineno, word, i, n);
        double v;
        if (golden_parse_double(tok, tn, &v) != 0)
            return golden_fail(r, -1, "line %zu: '%s' value %zu: '%.*s' is not a finite number", L->lineno, word,
                               i + 1, (int)(tn > 40 ? 40 : tn), tok);
        if (out)
            out[i] = (float)v;
        if (ref)
            ref[i] = v;
    }
    if (golden_next_token(&p, end, &tok, &tn))
        return golden_fail(r, -1, "line %zu: '%s' has more than the %zu numbers expected", L->lineno, word, n);
    return 0;
}

/* Whether the next content line starts with `word` (consumes nothing). */
static int next_is(const golden_lines *L, const char *word)
{
    golden_lines peek = *L;
    const char *line, *tok;
    size_t n, tn;
    if (!golden_next_line(&peek, &line, &n))
        return 0;
    const char *p = line;
    golden_next_token(&p, line + n, &tok, &tn);
    return golden_token_is(tok, tn, word);
}

/* "optimizer KIND k=v k=v" -> "KIND:k=v,k=v" */
static int build_spec(golden_lines *L, golden_result *r, const char *p, const char *end, char *spec, size_t cap)
{
    const char *tok;
    size_t tn, len = 0;
    if (!golden_next_token(&p, end, &tok, &tn))
        return golden_fail(r, -1, "line %zu: 'optimizer' needs a kind (sgd, adam, ...: sgd_optim_builtin_name())",
                           L->lineno);
    int first = 1;
    do {
        if (memchr(tok, ',', tn) != NULL || memchr(tok, ':', tn) != NULL || memchr(tok, '\0', tn) != NULL)
            return golden_fail(r, -1, "line %zu: '%.*s': ',', ':' and NUL are not allowed in an optimizer line",
                               L->lineno, (int)(tn > 40 ? 40 : tn), tok);
        if (!first && memchr(tok, '=', tn) == NULL)
            return golden_fail(r, -1, "line %zu: '%.*s' is not key=value", L->lineno, (int)(tn > 40 ? 40 : tn), tok);
        if (len + tn + 2 > cap)
            return golden_fail(r, -1, "line %zu: optimizer line longer than %zu bytes", L->lineno, cap);
        memcpy(spec + len, tok, tn);
        len += tn;
        spec[len++] = first ? ':' : ',';
        first = 0;
    } while (golden_next_token(&p, end, &tok, &tn));
    spec[len - 1] = '\0'; /* the last separator */
    return 0;
}

static const char sched_comment[] = "# the lr column follows the schedule ";

/*
 * Finds the comment naming the schedule the lr column follows; builds its
 * spec ("KIND:k=v,...") into `spec`. Returns 1 if found, 0 if not, -1 (with
 * r->msg) if the comment is malformed.
 */
static int find_schedule(const char *text, size_t len, golden_result *r, char *spec, size_t cap)
{
    const size_t clen = sizeof sched_comment - 1;
    size_t lineno = 1;
    for (const char *p = text, *end = text + len; p < end; lineno++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        if ((size_t)(e - p) > clen && memcmp(p, sched_comment, clen) == 0) {
            golden_lines L = {p + clen, e, lineno};
            return build_spec(&L, r, p + clen, e, spec, cap) == 0 ? 1 : -1;
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

int golden_check_optim(const char *path, const char *text, size_t len, golden_result *r)
{
    (void)path;
    memset(r, 0, sizeof *r);
    r->worst = NAN;
    golden_lines L;
    golden_lines_init(&L, text, len);
    const char *p, *end, *tok;
    size_t tn;
    char spec[GOLDEN_MAX_SPEC];

    if (expect_line(&L, r, "optimizer", &p, &end) != 0 || build_spec(&L, r, p, end, spec, sizeof spec) != 0)
        return -1;
    size_t spec_line = L.lineno;

    /* n N steps T: each number needs at least two bytes of the file, which bounds the allocation. */
    size_t n = 0, steps = 0;
    if (expect_line(&L, r, "n", &p, &end) != 0)
        return -1;
    const char *t2;
    size_t t2n;
    if (!golden_next_token(&p, end, &tok, &tn) || golden_parse_count(tok, tn, len / 2, &n) != 0 || n == 0 ||
        !golden_next_token(&p, end, &t2, &t2n) || !golden_token_is(t2, t2n, "steps") ||
        !golden_next_token(&p, end, &tok, &tn) || golden_parse_count(tok, tn, len / 2, &steps) != 0 ||
        golden_next_token(&p, end, &tok, &tn))
        return golden_fail(r, -1, "line %zu: expected 'n N steps T' with 0 < N and 0 <= T, each at most the file's "
                           "size / 2", L.lineno);

    float *x = malloc(n * sizeof *x), *g = malloc(n * sizeof *g);
    double *ref = malloc(n * sizeof *ref);
    size_t *tensors = NULL, n_tensors = 0;
    sgd_optim *opt = NULL;
    sgd_sched *sched = NULL;
    char sched_spec[GOLDEN_MAX_SPEC];
    int has_sched = find_schedule(text, len, r, sched_spec, sizeof sched_spec);
    int rc = -1;
    if (has_sched < 0)
        goto out;
    if (x == NULL || g == NULL || ref == NULL) {
        golden_fail(r, -1, "out of memory for n=%zu", n);
        goto out;
    }
    if (next_is(&L, "tensors")) {
        if (expect_line(&L, r, "tensors", &p, &end) != 0)
            goto out;
        if ((tensors = malloc(n * sizeof *tensors)) == NULL) {
            golden_fail(r, -1, "out of memory for n=%zu", n);
            goto out;
        }
        size_t total = 0;
        while (golden_next_token(&p, end, &tok, &tn)) {
            size_t sz;
            if (n_tensors == n || golden_parse_count(tok, tn, n, &sz) != 0 || sz == 0 || sz > n - total) {
                golden_fail(r, -1, "line %zu: 'tensors' takes sizes > 0 adding up to n=%zu", L.lineno, n);
                goto out;
            }
            tensors[n_tensors++] = sz;
            total += sz;
        }
        if (total != n) {
            golden_fail(r, -1, "line %zu: the tensor sizes add up to %zu, not n=%zu", L.lineno, total, n);
            goto out;
        }
    }
    if (expect_line(&L, r, "x0", &p, &end) != 0 || read_vector(&L, r, "x0", p, end, n, x, NULL) != 0)
        goto out;

    if (sgd_optim_new(&opt, spec, n, NULL) != SGD_OK) {
        /* The fixture is well-formed; the library refuses it: a failure, not a malformed file. */
        rc = golden_fail(r, 0, "line %zu: the library refused '%s': %s", spec_line, spec, sgd_error_last());
        goto out;
    }
    if (n_tensors > 0 && sgd_optim_set_tensors(opt, tensors, n_tensors) != SGD_OK) {
        rc = golden_fail(r, 0, "the library refused the tensors: %s", sgd_error_last());
        goto out;
    }
    double base_lr = 0.0;
    if (has_sched && (sgd_optim_get(opt, "lr", &base_lr) != SGD_OK ||
                      sgd_sched_new(&sched, sched_spec, base_lr, NULL) != SGD_OK)) {
        rc = golden_fail(r, 0, "the library refused the lr column's schedule '%s': %s", sched_spec, sgd_error_last());
        goto out;
    }
    double worst = 0.0;
    size_t worst_step = 0, worst_i = 0;
    double worst_got = 0.0, worst_ref = 0.0;
    for (size_t k = 1; k <= steps; k++) {
        size_t idx;
        double lr;
        if (expect_line(&L, r, "step", &p, &end) != 0)
            goto out;
        if (!golden_next_token(&p, end, &tok, &tn) || golden_parse_count(tok, tn, SIZE_MAX, &idx) != 0 || idx != k ||
            !golden_next_token(&p, end, &t2, &t2n) || !golden_token_is(t2, t2n, "lr") ||
            !golden_next_token(&p, end, &tok, &tn) || golden_parse_double(tok, tn, &lr) != 0 ||
            golden_next_token(&p, end, &tok, &tn)) {
            golden_fail(r, -1, "line %zu: expected 'step %zu lr L'", L.lineno, k);
            goto out;
        }
        if (sched != NULL) {
            double want = 0.0;
            if (sgd_sched_lr(sched, (int64_t)k - 1, &want) != SGD_OK || !(fabs(lr - want) <= GOLDEN_SCHED_TOL * fabs(want))) {
                rc = golden_fail(r, 0, "line %zu: step %zu lr %.17g, but the schedule '%s' gives %.17g", L.lineno, k, lr,
                                 sched_spec, want);
                goto out;
            }
        }
        if (expect_line(&L, r, "g", &p, &end) != 0 || read_vector(&L, r, "g", p, end, n, g, NULL) != 0)
            goto out;
        if (expect_line(&L, r, "x", &p, &end) != 0 || read_vector(&L, r, "x", p, end, n, NULL, ref) != 0)
            goto out;
        sgd_optim_step_info info;
        sgd_optim_step_info_init(&info);
        if (sgd_optim_step(opt, x, g, lr, &info) != SGD_OK || !info.applied) {
            rc = golden_fail(r, 0, "step %zu: the library %s: %s", k, info.applied ? "failed" : "skipped the step",
                             sgd_error_last());
            goto out;
        }
        for (int pt = 0; pt < 2; pt++) {
            if (pt == 1) { /* the evaluation point, when the file gives it */
                if (!next_is(&L, "e"))
                    break;
                if (expect_line(&L, r, "e", &p, &end) != 0 || read_vector(&L, r, "e", p, end, n, NULL, ref) != 0)
                    goto out;
                if (sgd_optim_eval_point(opt, x, 1) != SGD_OK) {
                    rc = golden_fail(r, 0, "step %zu: the evaluation point: %s", k, sgd_error_last());
                    goto out;
                }
            }
            for (size_t i = 0; i < n; i++) {
                double err = fabs((double)x[i] - ref[i]) / fmax(fabs(ref[i]), GOLDEN_OPTIM_FLOOR);
                if (!(err <= worst)) { /* NaN counts as worst */
                    worst = isnan(err) ? INFINITY : err;
                    worst_step = k, worst_i = i, worst_got = x[i], worst_ref = ref[i];
                }
            }
            if (pt == 1 && sgd_optim_eval_point(opt, x, 0) != SGD_OK) {
                rc = golden_fail(r, 0, "step %zu: back from the evaluation point: %s", k, sgd_error_last());
                goto out;
            }
        }
    }
    if (golden_next_line(&L, &p, &tn)) {
        golden_fail(r, -1, "line %zu: unexpected content after the %zu steps announced", L.lineno, steps);
        goto out;
    }
    r->worst = worst;
    r->ok = worst <= GOLDEN_OPTIM_TOL;
    snprintf(r->msg, sizeof r->msg, "(step %zu x[%zu] = %.9g, reference %.9g, tolerance %g%s%.80s%s)", worst_step,
             worst_i, worst_got, worst_ref, GOLDEN_OPTIM_TOL, sched ? "; lr column = schedule '" : "",
             sched ? sched_spec : "", sched ? "'" : "");
    rc = 0;
out:
    sgd_sched_free(sched);
    sgd_optim_free(opt);
    free(x);
    free(g);
    free(ref);
    free(tensors);
    return rc;
}
