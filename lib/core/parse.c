/*
 * Strict, locale-independent parsing of numbers and booleans, and string
 * slices: pure functions with no library state (no error message, no
 * allocation), so the sgdlab tool links its own copy of them next to the
 * shared library (tools/sgdlab/meson.build). SPDX-License-Identifier: MIT
 */
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
