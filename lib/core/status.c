/* Status names and the thread-local error message. SPDX-License-Identifier: MIT */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *sgd_status_str(int status)
{
    switch (status) {
    case SGD_OK: return "SGD_OK: success";
    case SGD_EINVAL: return "SGD_EINVAL: invalid argument";
    case SGD_ENOMEM: return "SGD_ENOMEM: out of memory";
    case SGD_ESHAPE: return "SGD_ESHAPE: shapes do not match";
    case SGD_ERANGE: return "SGD_ERANGE: value out of range";
    case SGD_ENONFINITE: return "SGD_ENONFINITE: NaN or infinity where a finite number is required";
    case SGD_EIO: return "SGD_EIO: input/output error";
    case SGD_EFORMAT: return "SGD_EFORMAT: malformed, truncated or corrupt data";
    case SGD_EVERSION: return "SGD_EVERSION: unsupported version";
    case SGD_ESTATE: return "SGD_ESTATE: not valid in the current state";
    case SGD_EOVERFLOW: return "SGD_EOVERFLOW: size overflow or limit exceeded";
    case SGD_ENOTFOUND: return "SGD_ENOTFOUND: unknown name";
    case SGD_EUNSUPPORTED: return "SGD_EUNSUPPORTED: not supported";
    case SGD_ECALLBACK: return "SGD_ECALLBACK: a host callback failed";
    case SGD_EDIVERGED: return "SGD_EDIVERGED: training diverged";
    case SGD_ECANCELED: return "SGD_ECANCELED: stopped by a host callback";
    case SGD_EINTERNAL: return "SGD_EINTERNAL: internal error (a libsgdlab bug)";
    default: return "unknown status";
    }
}

/* The only mutable state outside handles: one message per thread. */
#define SGD__ERRMSG_SIZE 1024
static _Thread_local char sgd__errmsg[SGD__ERRMSG_SIZE];

const char *sgd_error_last(void)
{
    return sgd__errmsg;
}

void sgd_error_clear(void)
{
    sgd__errmsg[0] = '\0';
}

int sgd_error_set(int status, const char *message)
{
    if (message == NULL)
        sgd__errmsg[0] = '\0';
    else
        snprintf(sgd__errmsg, sizeof sgd__errmsg, "%s", message);
    return status;
}

sgd_status sgd__err(sgd_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sgd__errmsg, sizeof sgd__errmsg, fmt, ap);
    va_end(ap);
    return status;
}

void sgd__err_prefix(const char *fmt, ...)
{
    char old[SGD__ERRMSG_SIZE];
    memcpy(old, sgd__errmsg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sgd__errmsg, sizeof sgd__errmsg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof sgd__errmsg)
        snprintf(sgd__errmsg + n, sizeof sgd__errmsg - (size_t)n, ": %s", old);
}

uint32_t sgd_version_number(void)
{
    return SGD_VERSION_NUMBER;
}

const char *sgd_version_string(void)
{
    return SGD_VERSION_STRING;
}
