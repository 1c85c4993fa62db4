/*
 * The model spec grammar ("784-256-relu-128-relu-10:loss=cross_entropy",
 * "1x28x28-conv2d(32,3,padding=1)-relu-...") and the canonical form
 * sgd_model_spec() returns, built on demand from the layers' records. A
 * layer's own syntax is its record's parse and print (layer.h); this file
 * splits the tokens, looks their names up in the table and adds the layers
 * through the model's public calls. The grammar is documented in model.h
 * (sgd_model_from_spec) and docs/model.md.
 * SPDX-License-Identifier: MIT
 */
#include "model/model_internal.h"

#include <ctype.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- numbers */

void sgd__fmt_double(char *buf, size_t n, double v)
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

static bool all_digits(sgd__str s)
{
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++)
        if (!isdigit((unsigned char)s.p[i]))
            return false;
    return true;
}

/* ---------------------------------------------------------------- arguments */

sgd_status sgd__lspec_err(const sgd__lspec *c, sgd_status status, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return sgd__err(status, "%s: spec '%.200s': %s '%.*s': %s", c->fn, c->spec, c->where, (int)c->tok.n, c->tok.p,
                    detail);
}

/* The end of the item starting at p: the next top-level `sep` (outside parentheses) or end. */
static const char *item_end(const char *p, const char *end, char sep)
{
    int depth = 0;
    while (p < end && !(depth == 0 && *p == sep)) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && depth > 0)
            depth--;
        p++;
    }
    return p;
}

/* A value written `vocab` becomes the vocabulary size (kept in a->vocab). */
static sgd_status resolve_vocab(const sgd__lspec *c, sgd__largs *a, sgd__str *v)
{
    if (!sgd__str_eq(*v, "vocab"))
        return SGD_OK;
    if (c->vocab < 1)
        return sgd__lspec_err(c, SGD_EINVAL,
                              "'vocab': the vocabulary size is not known here (give vocab=N among the spec's "
                              "options)");
    int w = snprintf(a->vocab, sizeof a->vocab, "%lld", (long long)c->vocab);
    *v = (sgd__str){a->vocab, w > 0 ? (size_t)w : 0};
    return SGD_OK;
}

sgd_status sgd__largs_split(const sgd__lspec *c, sgd__largs *a, size_t max_pos)
{
    sgd_status st;
    memset(a, 0, sizeof *a);
    sgd__str in = sgd__str_trim(c->args.p, c->args.n);
    if (!c->has_parens || in.n == 0)
        return SGD_OK;
    const char *p = in.p, *end = in.p + in.n;
    for (;;) {
        const char *q = item_end(p, end, ',');
        sgd__str item = sgd__str_trim(p, (size_t)(q - p));
        if (item.n == 0)
            return sgd__lspec_err(c, SGD_EINVAL, "empty argument");
        if (a->n == SGD__LARGS_MAX)
            return sgd__lspec_err(c, SGD_EINVAL, "too many arguments");
        const char *eq = memchr(item.p, '=', item.n);
        if (eq == NULL) {
            if (a->n > a->n_pos)
                return sgd__lspec_err(c, SGD_EINVAL,
                                      "argument '%.*s' needs a key= (positional arguments come first)", (int)item.n,
                                      item.p);
            if (a->n_pos == max_pos)
                return max_pos == 1 ? sgd__lspec_err(c, SGD_EINVAL,
                                                     "argument '%.*s' needs a key= (only the first may be positional)",
                                                     (int)item.n, item.p)
                                    : sgd__lspec_err(c, SGD_EINVAL,
                                                     "argument '%.*s' needs a key= (only the first %zu may be positional)",
                                                     (int)item.n, item.p, max_pos);
            a->key[a->n] = (sgd__str){NULL, 0};
            a->val[a->n] = item;
            a->n_pos++;
            if ((st = resolve_vocab(c, a, &a->val[a->n])) != SGD_OK)
                return st;
        } else {
            a->key[a->n] = sgd__str_trim(item.p, (size_t)(eq - item.p));
            a->val[a->n] = sgd__str_trim(eq + 1, (size_t)(item.p + item.n - eq - 1));
            if (a->key[a->n].n == 0 || a->val[a->n].n == 0)
                return sgd__lspec_err(c, SGD_EINVAL, "argument '%.*s' is not key=value", (int)item.n, item.p);
            if ((st = resolve_vocab(c, a, &a->val[a->n])) != SGD_OK)
                return st;
            for (size_t k = 0; k < a->n; k++)
                if (a->key[k].p && a->key[k].n == a->key[a->n].n &&
                    memcmp(a->key[k].p, a->key[a->n].p, a->key[k].n) == 0)
                    return sgd__lspec_err(c, SGD_EINVAL, "argument '%.*s' given twice", (int)a->key[k].n,
                                          a->key[k].p);
        }
        a->n++;
        if (q == end)
            break;
        p = q + 1;
    }
    return SGD_OK;
}

sgd__str sgd__largs_take(sgd__largs *a, int pos, const char *const *keys)
{
    if (pos >= 0 && (size_t)pos < a->n_pos && !a->used[pos]) {
        a->used[pos] = true;
        return a->val[pos];
    }
    for (size_t i = a->n_pos; i < a->n; i++) {
        if (a->used[i])
            continue;
        for (size_t k = 0; keys[k] != NULL; k++) {
            if (sgd__str_eq(a->key[i], keys[k])) {
                a->used[i] = true;
                return a->val[i];
            }
        }
    }
    return (sgd__str){NULL, 0};
}

sgd_status sgd__largs_check_used(const sgd__lspec *c, const sgd__largs *a, const char *usage)
{
    for (size_t i = 0; i < a->n; i++) {
        if (a->used[i])
            continue;
        if (a->key[i].p == NULL)
            return sgd__lspec_err(c, SGD_EINVAL, "unexpected argument '%.*s' (%s)", (int)a->val[i].n, a->val[i].p,
                                  usage);
        return sgd__lspec_err(c, SGD_EINVAL, "unknown argument '%.*s' (%s)", (int)a->key[i].n, a->key[i].p, usage);
    }
    return SGD_OK;
}

sgd_status sgd__largs_parse(const sgd__lspec *c, const sgd__argdef *defs, size_t n, double *vals,
                            const char *usage)
{
    sgd__largs a;
    sgd_status st = sgd__largs_split(c, &a, n);
    if (st != SGD_OK)
        return st;
    sgd__str got[SGD__LARGS_MAX];
    for (size_t i = 0; i < n && i < SGD__LARGS_MAX; i++) {
        const char *keys[2] = {defs[i].name, NULL};
        got[i] = sgd__largs_take(&a, (int)i, keys);
    }
    if ((st = sgd__largs_check_used(c, &a, usage)) != SGD_OK)
        return st;
    for (size_t i = 0; i < n && i < SGD__LARGS_MAX; i++) {
        const sgd__argdef *d = &defs[i];
        sgd__str v = got[i];
        vals[i] = d->def;
        if (v.p == NULL) {
            if (d->required)
                return sgd__lspec_err(c, SGD_EINVAL, "missing argument %s (%s)", d->name, usage);
            continue;
        }
        if (d->type == SGD__ARG_BOOL) {
            bool b;
            if (sgd__parse_bool(v, &b) != SGD_OK)
                return sgd__lspec_err(c, SGD_EINVAL, "%s=%.*s: not a boolean (use 0 or 1)", d->name, (int)v.n, v.p);
            vals[i] = b;
            continue;
        }
        double x;
        if (d->type == SGD__ARG_INT) {
            int64_t k;
            if (sgd__parse_int64(v, &k) != SGD_OK || k < -((int64_t)1 << 40) || k > ((int64_t)1 << 40))
                return sgd__lspec_err(c, SGD_EINVAL, "%s=%.*s: not a whole number", d->name, (int)v.n, v.p);
            x = (double)k;
        } else if (sgd__parse_double(v, false, &x) != SGD_OK) {
            return sgd__lspec_err(c, SGD_EINVAL, "%s=%.*s: not a finite number", d->name, (int)v.n, v.p);
        }
        if (x < d->lo || (d->hi >= d->lo && x > d->hi)) {
            char lo[40], hi[40];
            sgd__fmt_double(lo, sizeof lo, d->lo);
            sgd__fmt_double(hi, sizeof hi, d->hi);
            if (d->hi >= d->lo)
                return sgd__lspec_err(c, SGD_ERANGE, "%s=%.*s: must be in [%s, %s]", d->name, (int)v.n, v.p, lo, hi);
            return sgd__lspec_err(c, SGD_ERANGE, "%s=%.*s: must be >= %s", d->name, (int)v.n, v.p, lo);
        }
        vals[i] = x;
    }
    return SGD_OK;
}

int sgd__largs_print(char *buf, size_t n, const char *name, const sgd__argdef *defs, size_t ndefs,
                     const double *vals)
{
    size_t at = 0;
    int total = 0, w;
    bool any = false;
#define SGD__PUT(...)                                                                                          \
    do {                                                                                                      \
        w = snprintf(at < n ? buf + at : NULL, at < n ? n - at : 0, __VA_ARGS__);                              \
        if (w < 0)                                                                                            \
            return w;                                                                                         \
        total += w;                                                                                           \
        at += (size_t)w;                                                                                      \
    } while (0)
    SGD__PUT("%s", name);
    for (size_t i = 0; i < ndefs; i++) {
        if (!defs[i].required && vals[i] == defs[i].def)
            continue;
        char num[40];
        sgd__fmt_double(num, sizeof num, vals[i]);
        SGD__PUT("%s", any ? "," : "(");
        if (defs[i].required)
            SGD__PUT("%s", num);
        else
            SGD__PUT("%s=%s", defs[i].name, num);
        any = true;
    }
    if (any)
        SGD__PUT(")");
#undef SGD__PUT
    return total;
}

/* ---------------------------------------------------------------- sequences */

/* Parses one token into a layer and appends it to s. */
static sgd_status parse_token(sgd__seq *s, sgd__lspec *c)
{
    sgd__str t = c->tok;
    const char *open = memchr(t.p, '(', t.n);
    c->name = sgd__str_trim(t.p, open ? (size_t)(open - t.p) : t.n);
    c->args = (sgd__str){NULL, 0};
    c->has_parens = false;
    if (open != NULL) {
        const char *close = t.p + t.n - 1;
        if (*close != ')')
            return memchr(open, ')', t.n - (size_t)(open - t.p)) == NULL
                       ? sgd__lspec_err(c, SGD_EINVAL, "'(' without ')'")
                       : sgd__lspec_err(c, SGD_EINVAL, "unexpected text after ')'");
        int depth = 0;
        for (const char *q = open; q <= close; q++) {
            depth += *q == '(' ? 1 : *q == ')' ? -1 : 0;
            if (depth == 0 && q != close)
                return sgd__lspec_err(c, SGD_EINVAL, "unexpected text after ')'");
            if (depth < 0)
                return sgd__lspec_err(c, SGD_EINVAL, "')' without '('");
        }
        if (depth != 0)
            return sgd__lspec_err(c, SGD_EINVAL, "'(' without ')'");
        c->args = (sgd__str){open + 1, (size_t)(close - open - 1)};
        c->has_parens = true;
    } else if (memchr(t.p, ')', t.n) != NULL) {
        return sgd__lspec_err(c, SGD_EINVAL, "')' without '('");
    }
    const sgd__layer_op *op = all_digits(t) ? &sgd__op_dense : sgd__layer_op_by_name(c->name);
    if (op == NULL) {
        char names[1024];
        sgd__layer_names(names, sizeof names);
        return sgd__lspec_err(c, SGD_EINVAL, "unknown layer (expected a number of units, %s)", names);
    }
    sgd__layer l;
    memset(&l, 0, sizeof l);
    l.op = op;
    c->in = sgd__seq_out(s);
    sgd_status st = op->parse(&l, c);
    if (st != SGD_OK) {
        for (int k = 0; k < SGD__LAYER_MAX_SUBS; k++)
            sgd__seq_free(l.sub[k], c->alloc);
        return st;
    }
    char fn[160];
    snprintf(fn, sizeof fn, "%s '%.*s'", c->where, (int)(t.n > 80 ? 80 : t.n), t.p);
    if ((st = sgd__seq_push(s, c->alloc, &l, fn)) != SGD_OK) {
        for (int k = 0; k < SGD__LAYER_MAX_SUBS; k++)
            sgd__seq_free(l.sub[k], c->alloc);
        sgd__err_prefix("%s: spec '%.200s'", c->fn, c->spec);
    }
    return st;
}

sgd_status sgd__seq_parse(sgd__seq *s, sgd__str text, const sgd__lspec *outer, int depth)
{
    if (depth > 8)
        return sgd__lspec_err(outer, SGD_EINVAL, "layers nested more than 8 deep");
    sgd__lspec c = *outer;
    c.depth = depth;
    c.index0 = 0;
    char where[96];
    c.where = where;
    const char *p = text.p, *end = text.p + text.n;
    for (size_t k = 1;; k++) {
        const char *q = item_end(p, end, '-');
        c.tok = sgd__str_trim(p, (size_t)(q - p));
        if (depth == 0)
            snprintf(where, sizeof where, "layer %zu", outer->index0 + k);
        else
            snprintf(where, sizeof where, "%.60s layer %zu", outer->where, k);
        if (c.tok.n == 0) {
            if (depth > 0 && k == 1 && q == end)
                return sgd__lspec_err(outer, SGD_EINVAL, "no layers inside the parentheses");
            return sgd__lspec_err(&c, SGD_EINVAL, "empty layer (two '-' in a row, or a '-' at the end)");
        }
        sgd_status st = parse_token(s, &c);
        if (st != SGD_OK)
            return st;
        if (q == end)
            return SGD_OK;
        p = q + 1;
    }
}


/* ---------------------------------------------------------------- parsing */

/* What `vocab` and a bare `tokens` stand for: the spec's options vocab= and seq_len= (0: not given). */
typedef struct seq_opts {
    int64_t vocab, seq_len;
} seq_opts;

static sgd_status parse_options(sgd__spec *sp, sgd_model_options *o, seq_opts *so, const char *fn)
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
    int64_t vocab = 0, seq_len = 0;
    if ((st = sgd__spec_get_int64(sp, "vocab", &vocab, fn)) != SGD_OK)
        return st;
    if (vocab < 0 || vocab > SGD_MODEL_MAX_UNITS || (vocab == 0 && sgd__spec_get_str(sp, "vocab").p != NULL))
        return sgd__err(SGD_EINVAL, "%s: vocab=%lld: must be in [1, 2^24]", fn, (long long)vocab);
    so->vocab = vocab;
    if ((st = sgd__spec_get_int64(sp, "seq_len", &seq_len, fn)) != SGD_OK)
        return st;
    if (seq_len < 0 || seq_len > SGD_MODEL_MAX_UNITS || (seq_len == 0 && sgd__spec_get_str(sp, "seq_len").p != NULL))
        return sgd__err(SGD_EINVAL, "%s: seq_len=%lld: must be in [1, 2^24]", fn, (long long)seq_len);
    so->seq_len = seq_len;
    return sgd__spec_check_unused(sp, fn);
}

/*
 * The input: "784" (a vector), "TxF" (a sequence) or "CxHxW" (an image),
 * each dimension 1 to 2^24, at most 2^26 values in all; or "tokens(T)" (a
 * sequence of T token ids, [T]) and "tokens" (T from the seq_len option).
 */
static sgd_status parse_input(const sgd__lspec *c, sgd__shape *s, int64_t seq_len, bool *tokens)
{
    memset(s, 0, sizeof *s);
    *tokens = false;
    if (c->tok.n >= 6 && memcmp(c->tok.p, "tokens", 6) == 0) {
        sgd__str rest = sgd__str_trim(c->tok.p + 6, c->tok.n - 6);
        int64_t T = seq_len;
        if (rest.n > 0) {
            sgd__str num = rest.n >= 2 && rest.p[0] == '(' && rest.p[rest.n - 1] == ')'
                               ? sgd__str_trim(rest.p + 1, rest.n - 2)
                               : (sgd__str){NULL, 0};
            if (num.p == NULL || !all_digits(num) || sgd__parse_int64(num, &T) != SGD_OK || T < 1 ||
                T > SGD_MODEL_MAX_UNITS)
                return sgd__lspec_err(c, SGD_EINVAL,
                                      "expected tokens(T), T a sequence length from 1 to 16777216, or tokens");
        } else if (T < 1) {
            return sgd__lspec_err(c, SGD_EINVAL,
                                  "the sequence length is not known (write tokens(T), or give seq_len=N among the "
                                  "spec's options)");
        }
        s->rank = 1;
        s->d[0] = T;
        s->d[1] = s->d[2] = 1;
        *tokens = true;
        return SGD_OK;
    }
    const char *p = c->tok.p, *end = c->tok.p + c->tok.n;
    for (;;) {
        const char *q = memchr(p, 'x', (size_t)(end - p));
        if (q == NULL)
            q = end;
        sgd__str d = {p, (size_t)(q - p)};
        int64_t v;
        if (s->rank == SGD__SHAPE_MAX_RANK)
            return sgd__lspec_err(c, SGD_EINVAL, "at most 3 dimensions (F, TxF or CxHxW)");
        if (!all_digits(d) || sgd__parse_int64(d, &v) != SGD_OK || v < 1 || v > SGD_MODEL_MAX_UNITS)
            return sgd__lspec_err(c, SGD_EINVAL,
                                  "the number of inputs '%.*s': expected a whole number from 1 to 16777216 (or a "
                                  "shape such as 1x28x28)",
                                  (int)d.n, d.p);
        s->d[s->rank++] = v;
        if (q == end)
            break;
        p = q + 1;
    }
    for (int32_t i = s->rank; i < SGD__SHAPE_MAX_RANK; i++)
        s->d[i] = 1;
    if (sgd__shape_numel(s) > SGD__SAMPLE_MAX_NUMEL)
        return sgd__lspec_err(c, SGD_EINVAL, "more than 2^26 values per sample");
    return SGD_OK;
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
    seq_opts so = {0, 0};
    if ((st = parse_options(&sp, o, &so, fn)) != SGD_OK) {
        sgd__err_prefix("%s: spec '%.200s'", fn, spec);
        return st;
    }
    sgd__lspec c;
    memset(&c, 0, sizeof c);
    c.fn = fn;
    c.spec = spec;
    c.where = "input";
    c.alloc = alloc;
    const char *p = sp.kind.p, *end = sp.kind.p + sp.kind.n;
    const char *q = item_end(p, end, '-');
    c.tok = sgd__str_trim(p, (size_t)(q - p));
    if (c.tok.n == 0)
        return sgd__err(SGD_EINVAL, "%s: spec '%.200s': missing the number of inputs", fn, spec);
    sgd__shape in;
    bool tokens;
    if ((st = parse_input(&c, &in, so.seq_len, &tokens)) != SGD_OK)
        return st;
    if (q == end)
        return sgd__err(SGD_EINVAL, "%s: spec '%.200s': no layers after the number of inputs", fn, spec);
    sgd_model *m;
    if ((st = sgd_model_new_shaped(&m, in.rank, in.d, alloc)) != SGD_OK) {
        sgd__err_prefix("%s: spec '%.200s'", fn, spec);
        return st;
    }
    c.alloc = &m->alloc;
    c.vocab = so.vocab;
    m->tokens = tokens;
    st = sgd__seq_parse(&m->seq, (sgd__str){q + 1, (size_t)(end - q - 1)}, &c, 0);
    if (st != SGD_OK) {
        sgd_model_free(m);
        return st;
    }
    m->spec_valid = false;
    *out = m;
    return SGD_OK;
}
