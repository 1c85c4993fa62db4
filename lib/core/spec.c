/* Textual specs ("kind:key=value,..."); the numbers are parse.c's. SPDX-License-Identifier: MIT */
#include "internal.h"

#include <string.h>

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
