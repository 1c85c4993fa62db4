/* Textual specs ("kind:key=value,...") and strict number parsing. SPDX-License-Identifier: MIT */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

sgd__str sgd__str_trim(const char *p, size_t n)
{
    while (n > 0 && isspace((unsigned char)p[0]))
        p++, n--;
    while (n > 0 && isspace((unsigned char)p[n - 1]))
        n--;
    return (sgd__str){p, n};
}

bool sgd__str_eq(sgd__str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p != NULL && s.n == n && memcmp(s.p, lit, n) == 0;
}

static bool str_ieq(sgd__str s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)s.p[i]) != lit[i])
            return false;
    return true;
}

sgd_status sgd__spec_split(sgd__spec *out, const char *text, size_t len, char sep, const char *fn)
{
    memset(out, 0, sizeof *out);
    if (text == NULL)
        return sgd__err(SGD_EINVAL, "%s: spec is NULL", fn);
    const char *colon = memchr(text, ':', len);
    size_t kind_len = colon ? (size_t)(colon - text) : len;
    out->kind = sgd__str_trim(text, kind_len);
    if (out->kind.n == 0)
        return sgd__err(SGD_EINVAL, "%s: spec '%.*s': missing kind before ':'", fn, (int)len, text);
    if (colon == NULL)
        return SGD_OK;
    const char *p = colon + 1, *end = text + len;
    while (p <= end) {
        const char *q = memchr(p, sep, (size_t)(end - p));
        if (q == NULL)
            q = end;
        sgd__str item = sgd__str_trim(p, (size_t)(q - p));
        if (item.n == 0) {
            if (q == end && p == colon + 1)
                break; /* "kind:" with nothing after it */
            return sgd__err(SGD_EINVAL, "%s: spec '%.*s': empty item", fn, (int)len, text);
        }
        const char *eq = memchr(item.p, '=', item.n);
        if (eq == NULL)
            return sgd__err(SGD_EINVAL, "%s: spec: '%.*s' is not key=value", fn, (int)item.n, item.p);
        sgd__str key = sgd__str_trim(item.p, (size_t)(eq - item.p));
        sgd__str val = sgd__str_trim(eq + 1, item.n - (size_t)(eq + 1 - item.p));
        if (key.n == 0)
            return sgd__err(SGD_EINVAL, "%s: spec: '%.*s' has an empty key", fn, (int)item.n, item.p);
        for (size_t i = 0; i < out->n; i++)
            if (out->kv[i].key.n == key.n && memcmp(out->kv[i].key.p, key.p, key.n) == 0)
                return sgd__err(SGD_EINVAL, "%s: spec: key '%.*s' given twice", fn, (int)key.n, key.p);
        if (out->n == SGD__SPEC_MAX_KV)
            return sgd__err(SGD_EOVERFLOW, "%s: spec: more than %d key=value pairs", fn, SGD__SPEC_MAX_KV);
        out->kv[out->n++] = (sgd__kv){key, val, false};
        p = q + 1;
    }
    return SGD_OK;
}

/* Accepts [+-]digits[.digits][(e|E)[+-]digits] with at least one digit in the mantissa. */
static bool is_decimal(sgd__str s)
{
    size_t i = 0, digits = 0;
    if (i < s.n && (s.p[i] == '+' || s.p[i] == '-'))
        i++;
    while (i < s.n && isdigit((unsigned char)s.p[i]))
        i++, digits++;
    if (i < s.n && s.p[i] == '.') {
        i++;
        while (i < s.n && isdigit((unsigned char)s.p[i]))
            i++, digits++;
    }
    if (digits == 0)
        return false;
    if (i < s.n && (s.p[i] == 'e' || s.p[i] == 'E')) {
        i++;
        if (i < s.n && (s.p[i] == '+' || s.p[i] == '-'))
            i++;
        size_t ed = 0;
        while (i < s.n && isdigit((unsigned char)s.p[i]))
            i++, ed++;
        if (ed == 0)
            return false;
    }
    return i == s.n;
}

sgd_status sgd__parse_double(sgd__str s, bool allow_nonfinite, double *out)
{
    s = sgd__str_trim(s.p, s.n);
    if (s.n == 0 || s.n >= 64)
        return SGD_EINVAL;
    if (!is_decimal(s)) {
        if (!allow_nonfinite)
            return SGD_EINVAL;
        sgd__str body = s;
        double sign = 1.0;
        if (body.p[0] == '+' || body.p[0] == '-') {
            sign = body.p[0] == '-' ? -1.0 : 1.0;
            body.p++, body.n--;
        }
        if (str_ieq(body, "inf") || str_ieq(body, "infinity")) {
            *out = sign * INFINITY;
            return SGD_OK;
        }
        if (str_ieq(body, "nan")) {
            *out = NAN;
            return SGD_OK;
        }
        return SGD_EINVAL;
    }
    char buf[64];
    memcpy(buf, s.p, s.n);
    buf[s.n] = '\0';
    /* strtod honours LC_NUMERIC; speak its decimal point. */
    const char *dp = localeconv()->decimal_point;
    if (dp != NULL && dp[0] != '\0' && dp[0] != '.' && dp[1] == '\0') {
        char *dot = strchr(buf, '.');
        if (dot != NULL)
            *dot = dp[0];
    }
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end != '\0')
        return SGD_EINVAL;
    if (!allow_nonfinite && !isfinite(v))
        return SGD_ERANGE; /* overflowed to infinity */
    *out = v;
    return SGD_OK;
}

sgd_status sgd__parse_int64(sgd__str s, int64_t *out)
{
    s = sgd__str_trim(s.p, s.n);
    if (s.n == 0 || s.n >= 32)
        return SGD_EINVAL;
    size_t i = (s.p[0] == '+' || s.p[0] == '-') ? 1 : 0;
    if (i == s.n)
        return SGD_EINVAL;
    for (size_t k = i; k < s.n; k++)
        if (!isdigit((unsigned char)s.p[k]))
            return SGD_EINVAL;
    char buf[32];
    memcpy(buf, s.p, s.n);
    buf[s.n] = '\0';
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE)
        return SGD_ERANGE;
    *out = (int64_t)v;
    return SGD_OK;
}

sgd_status sgd__parse_bool(sgd__str s, bool *out)
{
    s = sgd__str_trim(s.p, s.n);
    if (str_ieq(s, "1") || str_ieq(s, "true") || str_ieq(s, "yes") || str_ieq(s, "on"))
        *out = true;
    else if (str_ieq(s, "0") || str_ieq(s, "false") || str_ieq(s, "no") || str_ieq(s, "off"))
        *out = false;
    else
        return SGD_EINVAL;
    return SGD_OK;
}

static sgd__kv *find(sgd__spec *sp, const char *key)
{
    for (size_t i = 0; i < sp->n; i++)
        if (sgd__str_eq(sp->kv[i].key, key))
            return &sp->kv[i];
    return NULL;
}

sgd_status sgd__spec_get_double(sgd__spec *sp, const char *key, double *out, const char *fn)
{
    sgd__kv *kv = find(sp, key);
    if (kv == NULL)
        return SGD_OK;
    kv->used = true;
    sgd_status st = sgd__parse_double(kv->val, false, out);
    if (st != SGD_OK)
        return sgd__err(st, "%s: %s=%.*s: not a finite number", fn, key, (int)kv->val.n, kv->val.p);
    return SGD_OK;
}

sgd_status sgd__spec_get_int64(sgd__spec *sp, const char *key, int64_t *out, const char *fn)
{
    sgd__kv *kv = find(sp, key);
    if (kv == NULL)
        return SGD_OK;
    kv->used = true;
    sgd_status st = sgd__parse_int64(kv->val, out);
    if (st != SGD_OK)
        return sgd__err(st, "%s: %s=%.*s: not an integer", fn, key, (int)kv->val.n, kv->val.p);
    return SGD_OK;
}

sgd_status sgd__spec_get_bool(sgd__spec *sp, const char *key, bool *out, const char *fn)
{
    sgd__kv *kv = find(sp, key);
    if (kv == NULL)
        return SGD_OK;
    kv->used = true;
    if (sgd__parse_bool(kv->val, out) != SGD_OK)
        return sgd__err(SGD_EINVAL, "%s: %s=%.*s: not a boolean (use 0 or 1)", fn, key, (int)kv->val.n,
                        kv->val.p);
    return SGD_OK;
}

sgd__str sgd__spec_get_str(sgd__spec *sp, const char *key)
{
    sgd__kv *kv = find(sp, key);
    if (kv == NULL)
        return (sgd__str){NULL, 0};
    kv->used = true;
    return kv->val;
}

sgd_status sgd__spec_check_unused(const sgd__spec *sp, const char *fn)
{
    for (size_t i = 0; i < sp->n; i++)
        if (!sp->kv[i].used)
            return sgd__err(SGD_ENOTFOUND, "%s: unknown key '%.*s' for '%.*s'", fn, (int)sp->kv[i].key.n,
                            sp->kv[i].key.p, (int)sp->kind.n, sp->kind.p);
    return SGD_OK;
}
