/*
 * The model spec grammar ("784-256-relu-128-relu-10:loss=cross_entropy") and
 * the canonical form sgd_model_spec() returns. The grammar is documented in
 * model.h (sgd_model_from_spec) and docs/model.md.
 * SPDX-License-Identifier: MIT
 */
#include "model/model_internal.h"

#include <ctype.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *sgd__loss_name(int32_t kind)
{
    switch (kind) {
    case SGD_LOSS_CROSS_ENTROPY: return "cross_entropy";
    case SGD_LOSS_MSE: return "mse";
    case SGD_LOSS_BCE_WITH_LOGITS: return "bce_with_logits";
    default: return "unknown";
    }
}

const char *sgd__init_name(int32_t kind)
{
    switch (kind) {
    case SGD_INIT_TORCH: return "torch";
    case SGD_INIT_XAVIER_UNIFORM: return "xavier_uniform";
    case SGD_INIT_XAVIER_NORMAL: return "xavier_normal";
    case SGD_INIT_HE_UNIFORM: return "he_uniform";
    case SGD_INIT_HE_NORMAL: return "he_normal";
    default: return "unknown";
    }
}

/* ---------------------------------------------------------------- canonical form */

/* The shortest %g form of v that reads back exactly, with '.' whatever the locale. */
static void fmt_double(char *buf, size_t n, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        const char *dp = localeconv()->decimal_point;
        if (dp != NULL && dp[0] != '\0' && dp[0] != '.' && dp[1] == '\0') {
            char *c = strchr(buf, dp[0]);
            if (c != NULL)
                *c = '.';
        }
        double back;
        if (sgd__parse_double((sgd__str){buf, strlen(buf)}, false, &back) == SGD_OK && back == v)
            return;
    }
}

static int layer_token(const sgd__layer *l, char *buf, size_t n)
{
    char num[40];
    switch (l->kind) {
    case SGD_LAYER_DENSE:
        return l->bias ? snprintf(buf, n, "%lld", (long long)l->out)
                       : snprintf(buf, n, "dense(%lld,bias=0)", (long long)l->out);
    case SGD_LAYER_RELU: return snprintf(buf, n, "relu");
    case SGD_LAYER_TANH: return snprintf(buf, n, "tanh");
    case SGD_LAYER_SIGMOID: return snprintf(buf, n, "sigmoid");
    case SGD_LAYER_SOFTMAX: return snprintf(buf, n, "softmax");
    case SGD_LAYER_GELU: return snprintf(buf, n, "gelu");
    case SGD_LAYER_GELU_TANH: return snprintf(buf, n, "gelu(approximate=tanh)");
    case SGD_LAYER_LEAKY_RELU:
        fmt_double(num, sizeof num, l->param);
        return snprintf(buf, n, "leaky_relu(%s)", num);
    case SGD_LAYER_DROPOUT:
        fmt_double(num, sizeof num, l->param);
        return snprintf(buf, n, "dropout(%s)", num);
    default: return snprintf(buf, n, "?");
    }
}

void sgd__model_write_spec(sgd_model *m)
{
    if (m->spec == NULL || m->spec_cap == 0)
        return;
    size_t at = 0, cap = m->spec_cap;
    int w = snprintf(m->spec, cap, "%lld", (long long)m->n_in);
    for (size_t i = 0; i < m->n_layers && w >= 0 && (at += (size_t)w) < cap; i++) {
        char tok[SGD__SPEC_TOKEN_MAX + 16];
        layer_token(&m->layers[i], tok, sizeof tok);
        w = snprintf(m->spec + at, cap - at, "-%s", tok);
    }
    if (w >= 0 && at < cap && (at += (size_t)w) < cap)
        snprintf(m->spec + at, cap - at, ":loss=%s", sgd__loss_name(m->loss));
}

/* ---------------------------------------------------------------- parsing */

typedef struct spec_ctx {
    const char *fn;
    const char *spec;
    size_t layer; /* 1-based index of the token being parsed (0: the input) */
    sgd__str tok;
} spec_ctx;

#define SPEC_ERR(c, status, ...) spec_err((c), (status), __VA_ARGS__)

static sgd_status spec_err(const spec_ctx *c, sgd_status status, const char *fmt, ...) SGD__PRINTF(3, 4);

static sgd_status spec_err(const spec_ctx *c, sgd_status status, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (c->layer == 0)
        return sgd__err(status, "%s: spec '%.200s': input '%.*s': %s", c->fn, c->spec, (int)c->tok.n, c->tok.p,
                        detail);
    return sgd__err(status, "%s: spec '%.200s': layer %zu '%.*s': %s", c->fn, c->spec, c->layer, (int)c->tok.n,
                    c->tok.p, detail);
}

static bool all_digits(sgd__str s)
{
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++)
        if (!isdigit((unsigned char)s.p[i]))
            return false;
    return true;
}

static sgd_status parse_units(const spec_ctx *c, sgd__str s, const char *what, int64_t *out)
{
    int64_t v;
    if (!all_digits(s) || sgd__parse_int64(s, &v) != SGD_OK || v < 1 || v > SGD_MODEL_MAX_UNITS)
        return SPEC_ERR(c, SGD_EINVAL, "%s '%.*s': expected a whole number from 1 to 16777216", what, (int)s.n, s.p);
    *out = v;
    return SGD_OK;
}

/* The arguments between parentheses: at most one positional (first), then key=value pairs. */
#define SPEC_MAX_ARGS 4
typedef struct spec_args {
    sgd__str key[SPEC_MAX_ARGS], val[SPEC_MAX_ARGS];
    bool used[SPEC_MAX_ARGS];
    size_t n;
} spec_args;

static sgd_status split_args(const spec_ctx *c, sgd__str in, spec_args *a)
{
    memset(a, 0, sizeof *a);
    in = sgd__str_trim(in.p, in.n);
    if (in.n == 0)
        return SGD_OK;
    const char *p = in.p, *end = in.p + in.n;
    for (;;) {
        const char *q = memchr(p, ',', (size_t)(end - p));
        if (q == NULL)
            q = end;
        sgd__str item = sgd__str_trim(p, (size_t)(q - p));
        if (item.n == 0)
            return SPEC_ERR(c, SGD_EINVAL, "empty argument");
        if (a->n == SPEC_MAX_ARGS)
            return SPEC_ERR(c, SGD_EINVAL, "too many arguments");
        const char *eq = memchr(item.p, '=', item.n);
        if (eq == NULL) {
            if (a->n > 0)
                return SPEC_ERR(c, SGD_EINVAL, "argument '%.*s' needs a key= (only the first may be positional)",
                                (int)item.n, item.p);
            a->key[a->n] = (sgd__str){NULL, 0};
            a->val[a->n] = item;
        } else {
            a->key[a->n] = sgd__str_trim(item.p, (size_t)(eq - item.p));
            a->val[a->n] = sgd__str_trim(eq + 1, (size_t)(item.p + item.n - eq - 1));
            if (a->key[a->n].n == 0 || a->val[a->n].n == 0)
                return SPEC_ERR(c, SGD_EINVAL, "argument '%.*s' is not key=value", (int)item.n, item.p);
            for (size_t k = 0; k < a->n; k++)
                if (a->key[k].p && a->key[k].n == a->key[a->n].n &&
                    memcmp(a->key[k].p, a->key[a->n].p, a->key[k].n) == 0)
                    return SPEC_ERR(c, SGD_EINVAL, "argument '%.*s' given twice", (int)a->key[k].n, a->key[k].p);
        }
        a->n++;
        if (q == end)
            break;
        p = q + 1;
    }
    return SGD_OK;
}

/* The value of the positional argument (if `positional`) or of any of the keys (NULL-terminated). */
static sgd__str take_arg(spec_args *a, bool positional, const char *const *keys)
{
    for (size_t i = 0; i < a->n; i++) {
        if (a->used[i])
            continue;
        bool match = a->key[i].p == NULL ? positional : false;
        for (size_t k = 0; !match && keys[k] != NULL; k++)
            match = a->key[i].p != NULL && sgd__str_eq(a->key[i], keys[k]);
        if (match) {
            a->used[i] = true;
            return a->val[i];
        }
    }
    return (sgd__str){NULL, 0};
}

static sgd_status check_args_used(const spec_ctx *c, const spec_args *a, const char *allowed)
{
    for (size_t i = 0; i < a->n; i++) {
        if (a->used[i])
            continue;
        if (a->key[i].p == NULL)
            return SPEC_ERR(c, SGD_EINVAL, "unexpected argument '%.*s' (%s)", (int)a->val[i].n, a->val[i].p, allowed);
        return SPEC_ERR(c, SGD_EINVAL, "unknown argument '%.*s' (%s)", (int)a->key[i].n, a->key[i].p, allowed);
    }
    return SGD_OK;
}

static sgd_status parse_layer(sgd_model *m, spec_ctx *c)
{
    sgd__str t = c->tok;
    if (all_digits(t)) {
        int64_t units;
        sgd_status st = parse_units(c, t, "units", &units);
        return st != SGD_OK ? st : sgd_model_add_dense(m, units, 1);
    }
    const char *open = memchr(t.p, '(', t.n);
    sgd__str name = sgd__str_trim(t.p, open ? (size_t)(open - t.p) : t.n);
    sgd__str args_text = {NULL, 0};
    if (open != NULL) {
        const char *close = memchr(open, ')', (size_t)(t.p + t.n - open));
        if (close == NULL)
            return SPEC_ERR(c, SGD_EINVAL, "'(' without ')'");
        if (close != t.p + t.n - 1)
            return SPEC_ERR(c, SGD_EINVAL, "unexpected text after ')'");
        args_text = (sgd__str){open + 1, (size_t)(close - open - 1)};
    } else if (memchr(t.p, ')', t.n) != NULL) {
        return SPEC_ERR(c, SGD_EINVAL, "')' without '('");
    }
    spec_args a;
    sgd_status st = split_args(c, args_text, &a);
    if (st != SGD_OK)
        return st;
    if (sgd__str_eq(name, "dense") || sgd__str_eq(name, "linear")) {
        static const char *const ukeys[] = {"units", "out_features", NULL}, *const bkeys[] = {"bias", NULL};
        sgd__str u = take_arg(&a, true, ukeys), b = take_arg(&a, false, bkeys);
        if ((st = check_args_used(c, &a, "dense takes units and bias")) != SGD_OK)
            return st;
        if (u.p == NULL)
            return SPEC_ERR(c, SGD_EINVAL, "missing the number of units, as in dense(10) or dense(10,bias=0)");
        int64_t units;
        if ((st = parse_units(c, u, "units", &units)) != SGD_OK)
            return st;
        bool bias = true;
        if (b.p != NULL && sgd__parse_bool(b, &bias) != SGD_OK)
            return SPEC_ERR(c, SGD_EINVAL, "bias=%.*s: not a boolean (use 0 or 1)", (int)b.n, b.p);
        return sgd_model_add_dense(m, units, bias);
    }
    static const struct {
        const char *name;
        int32_t kind;
    } simple[] = {{"relu", SGD_LAYER_RELU},
                  {"tanh", SGD_LAYER_TANH},
                  {"sigmoid", SGD_LAYER_SIGMOID},
                  {"softmax", SGD_LAYER_SOFTMAX}};
    for (size_t i = 0; i < sizeof simple / sizeof *simple; i++) {
        if (sgd__str_eq(name, simple[i].name)) {
            if ((st = check_args_used(c, &a, "it takes no arguments")) != SGD_OK)
                return st;
            return sgd_model_add_activation(m, simple[i].kind);
        }
    }
    if (sgd__str_eq(name, "gelu")) {
        static const char *const keys[] = {"approximate", NULL};
        sgd__str v = take_arg(&a, true, keys);
        if ((st = check_args_used(c, &a, "gelu takes approximate=none|tanh")) != SGD_OK)
            return st;
        if (v.p == NULL || sgd__str_eq(v, "none"))
            return sgd_model_add_activation(m, SGD_LAYER_GELU);
        if (sgd__str_eq(v, "tanh"))
            return sgd_model_add_activation(m, SGD_LAYER_GELU_TANH);
        return SPEC_ERR(c, SGD_EINVAL, "approximate=%.*s: expected none or tanh", (int)v.n, v.p);
    }
    if (sgd__str_eq(name, "leaky_relu") || sgd__str_eq(name, "dropout")) {
        bool leaky = name.p[0] == 'l';
        static const char *const lkeys[] = {"negative_slope", NULL}, *const dkeys[] = {"p", NULL};
        sgd__str v = take_arg(&a, true, leaky ? lkeys : dkeys);
        if ((st = check_args_used(c, &a, leaky ? "leaky_relu takes negative_slope" : "dropout takes p")) != SGD_OK)
            return st;
        double x = leaky ? 0.01 : 0.5;
        if (v.p != NULL && sgd__parse_double(v, false, &x) != SGD_OK)
            return SPEC_ERR(c, SGD_EINVAL, "%s=%.*s: not a finite number", leaky ? "negative_slope" : "p", (int)v.n,
                            v.p);
        if (!leaky && !(x >= 0.0 && x <= 1.0))
            return SPEC_ERR(c, SGD_ERANGE, "p=%.*s: must be in [0, 1]", (int)v.n, v.p);
        if (leaky && fabs(x) > 3.4e38)
            return SPEC_ERR(c, SGD_EINVAL, "negative_slope=%.*s: must be a finite float", (int)v.n, v.p);
        return leaky ? sgd_model_add_leaky_relu(m, x) : sgd_model_add_dropout(m, x);
    }
    return SPEC_ERR(c, SGD_EINVAL,
                    "unknown layer (expected a number of units, dense, linear, relu, leaky_relu, tanh, sigmoid, "
                    "gelu, softmax or dropout)");
}

static sgd_status parse_options(sgd__spec *sp, sgd_model_options *o, const char *fn)
{
    sgd__str loss = sgd__spec_get_str(sp, "loss");
    if (loss.p != NULL) {
        if (sgd__str_eq(loss, "cross_entropy"))
            o->loss = SGD_LOSS_CROSS_ENTROPY;
        else if (sgd__str_eq(loss, "mse"))
            o->loss = SGD_LOSS_MSE;
        else if (sgd__str_eq(loss, "bce_with_logits"))
            o->loss = SGD_LOSS_BCE_WITH_LOGITS;
        else
            return sgd__err(SGD_EINVAL, "%s: loss=%.*s: expected cross_entropy, mse or bce_with_logits", fn,
                            (int)loss.n, loss.p);
    }
    sgd__str init = sgd__spec_get_str(sp, "init");
    if (init.p != NULL) {
        static const struct {
            const char *name;
            int32_t kind;
        } inits[] = {{"torch", SGD_INIT_TORCH},
                     {"xavier_uniform", SGD_INIT_XAVIER_UNIFORM},
                     {"xavier_normal", SGD_INIT_XAVIER_NORMAL},
                     {"he_uniform", SGD_INIT_HE_UNIFORM},
                     {"he_normal", SGD_INIT_HE_NORMAL},
                     {"kaiming_uniform", SGD_INIT_HE_UNIFORM},
                     {"kaiming_normal", SGD_INIT_HE_NORMAL}};
        size_t i = 0;
        while (i < sizeof inits / sizeof *inits && !sgd__str_eq(init, inits[i].name))
            i++;
        if (i == sizeof inits / sizeof *inits)
            return sgd__err(SGD_EINVAL,
                            "%s: init=%.*s: expected torch, xavier_uniform, xavier_normal, he_uniform or he_normal",
                            fn, (int)init.n, init.p);
        o->init = inits[i].kind;
    }
    int64_t seed = -1, max_batch = o->max_batch, threads = o->blas_threads;
    sgd_status st;
    if ((st = sgd__spec_get_int64(sp, "seed", &seed, fn)) != SGD_OK)
        return st;
    if (sgd__spec_get_str(sp, "seed").p != NULL) {
        if (seed < 0)
            return sgd__err(SGD_EINVAL, "%s: seed=%lld: must be >= 0", fn, (long long)seed);
        o->seed = (uint64_t)seed;
    }
    if ((st = sgd__spec_get_int64(sp, "max_batch", &max_batch, fn)) != SGD_OK)
        return st;
    if (max_batch < 1 || max_batch > SGD_MODEL_MAX_BATCH)
        return sgd__err(SGD_EINVAL, "%s: max_batch=%lld: must be in [1, 2^20]", fn, (long long)max_batch);
    o->max_batch = max_batch;
    if ((st = sgd__spec_get_int64(sp, "blas_threads", &threads, fn)) != SGD_OK)
        return st;
    if (threads < 0 || threads > 1024)
        return sgd__err(SGD_EINVAL, "%s: blas_threads=%lld: must be in [0, 1024]", fn, (long long)threads);
    o->blas_threads = (int32_t)threads;
    return sgd__spec_check_unused(sp, fn);
}

sgd_status sgd__model_parse_spec(sgd_model **out, const char *spec, sgd_model_options *o,
                                 const sgd_allocator *alloc, const char *fn)
{
    *out = NULL;
    size_t len = strnlen(spec, SGD__SPEC_MAX_LEN + 1);
    if (len > SGD__SPEC_MAX_LEN)
        return sgd__err(SGD_EINVAL, "%s: spec longer than %d bytes", fn, SGD__SPEC_MAX_LEN);
    sgd__spec sp;
    sgd_status st = sgd__spec_split(&sp, spec, len, ',', fn);
    if (st != SGD_OK)
        return st;
    if ((st = parse_options(&sp, o, fn)) != SGD_OK) {
        sgd__err_prefix("%s: spec '%.200s'", fn, spec);
        return st;
    }
    spec_ctx c = {fn, spec, 0, {NULL, 0}};
    sgd_model *m = NULL;
    const char *p = sp.kind.p, *end = sp.kind.p + sp.kind.n;
    for (;;) {
        const char *q = p;
        int depth = 0;
        while (q < end && !(depth == 0 && *q == '-')) {
            if (*q == '(')
                depth++;
            else if (*q == ')' && depth > 0)
                depth--;
            q++;
        }
        c.tok = sgd__str_trim(p, (size_t)(q - p));
        if (c.tok.n == 0) {
            st = c.layer == 0 ? sgd__err(SGD_EINVAL, "%s: spec '%.200s': missing the number of inputs", fn, spec)
                              : SPEC_ERR(&c, SGD_EINVAL, "empty layer (two '-' in a row, or a '-' at the end)");
            break;
        }
        if (c.layer == 0) {
            int64_t n_in;
            if ((st = parse_units(&c, c.tok, "the number of inputs", &n_in)) != SGD_OK)
                break;
            if ((st = sgd_model_new(&m, n_in, alloc)) != SGD_OK)
                break;
        } else if ((st = parse_layer(m, &c)) != SGD_OK) {
            break;
        }
        if (q == end)
            break;
        p = q + 1;
        c.layer++;
    }
    if (st == SGD_OK && c.layer == 0)
        st = sgd__err(SGD_EINVAL, "%s: spec '%.200s': no layers after the number of inputs", fn, spec);
    if (st != SGD_OK) {
        if (st == SGD_ENOMEM || st == SGD_EOVERFLOW)
            sgd__err_prefix("%s: spec '%.200s'", fn, spec);
        sgd_model_free(m);
        return st;
    }
    *out = m;
    return SGD_OK;
}
