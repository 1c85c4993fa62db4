/*
 * Textual schedule specs (docs/sched.md has the grammar):
 *
 *   spec  = kind [ ":" [ pair { "," pair } ] ]
 *   pair  = key "=" value
 *   value = scalar | "[" [ item { "," item } ] "]" | "(" spec ")"
 *   item  = scalar | "(" spec ")"
 *
 * A scalar is a run of characters other than , = : ( ) [ ]. Brackets nest, so
 * the pair separators of a nested spec are not the outer spec's; the grammar is
 * LL(1) and each level is split in one left-to-right scan.
 * SPDX-License-Identifier: MIT
 */
#include "sched_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define FN_MAX 256

typedef struct ctx {
    const sgd_allocator *a;
    double base_lr;
    int depth;
} ctx;

static sgd_status parse(sgd_sched **out, sgd__str text, const ctx *c, const char *where);

static sgd__str trim(sgd__str s)
{
    return sgd__str_trim(s.p, s.n);
}

static bool is_ident(sgd__str s)
{
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++)
        if (!(isalnum((unsigned char)s.p[i]) || s.p[i] == '_'))
            return false;
    return true;
}

/*
 * Splits s at the top-level commas into items (at most `max`), checking that
 * brackets balance. Item i is out[i] (trimmed; out may be NULL to count only);
 * *n their number. An empty s gives no items; an empty item is an error.
 */
static sgd_status split_top(sgd__str s, sgd__str *out, size_t max, size_t *n, const char *fn, const char *what)
{
    *n = 0;
    s = trim(s);
    if (s.n == 0)
        return SGD_OK;
    char stack[64];
    size_t depth = 0, start = 0;
    for (size_t i = 0; i <= s.n; i++) {
        char ch = i < s.n ? s.p[i] : ',';
        if (ch == '(' || ch == '[') {
            if (depth == sizeof stack)
                return sgd__err(SGD_EOVERFLOW, "%s: %s nests brackets more than %zu deep", fn, what, sizeof stack);
            stack[depth++] = ch == '(' ? ')' : ']';
        } else if (ch == ')' || ch == ']') {
            if (depth == 0 || stack[depth - 1] != ch)
                return sgd__err(SGD_EINVAL, "%s: unbalanced '%c' in '%.*s'", fn, ch, (int)s.n, s.p);
            depth--;
        } else if (ch == ',' && depth == 0) {
            sgd__str item = trim((sgd__str){s.p + start, i - start});
            if (item.n == 0)
                return sgd__err(SGD_EINVAL, "%s: empty item in %s '%.*s'", fn, what, (int)s.n, s.p);
            if (*n == max)
                return sgd__err(SGD_EOVERFLOW, "%s: %s has more than %zu items", fn, what, max);
            if (out != NULL)
                out[*n] = item;
            (*n)++;
            start = i + 1;
        }
    }
    if (depth != 0)
        return sgd__err(SGD_EINVAL, "%s: unclosed '%c' in '%.*s'", fn, stack[depth - 1] == ')' ? '(' : '[',
                        (int)s.n, s.p);
    return SGD_OK;
}

/* The inside of "(...)" or "[...]" when s is exactly one such group; else {NULL, 0}. */
static sgd__str inside(sgd__str s, char open, char close)
{
    s = trim(s);
    if (s.n < 2 || s.p[0] != open || s.p[s.n - 1] != close)
        return (sgd__str){NULL, 0};
    /* The first bracket must close at the very end (not "(a),(b)"). */
    size_t depth = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] == '(' || s.p[i] == '[')
            depth++;
        else if (s.p[i] == ')' || s.p[i] == ']')
            if (--depth == 0 && i != s.n - 1)
                return (sgd__str){NULL, 0};
    }
    return (sgd__str){s.p + 1, s.n - 2};
}

/* Splits "kind:pairs" into sp (keys and raw values, nesting respected). */
static sgd_status split_spec(sgd__spec *sp, sgd__str text, const char *fn)
{
    memset(sp, 0, sizeof *sp);
    text = trim(text);
    size_t k = 0;
    while (k < text.n && (isalnum((unsigned char)text.p[k]) || text.p[k] == '_'))
        k++;
    sp->kind = (sgd__str){text.p, k};
    if (k == 0)
        return sgd__err(SGD_EINVAL, "%s: '%.*s': a spec starts with a kind such as cosine", fn, (int)text.n,
                        text.p);
    sgd__str rest = trim((sgd__str){text.p + k, text.n - k});
    if (rest.n == 0)
        return SGD_OK;
    if (rest.p[0] != ':')
        return sgd__err(SGD_EINVAL, "%s: '%.*s': expected ':' after the kind '%.*s'", fn, (int)text.n, text.p,
                        (int)k, text.p);
    sgd__str items[SGD__SPEC_MAX_KV];
    size_t n;
    sgd_status st = split_top((sgd__str){rest.p + 1, rest.n - 1}, items, SGD__SPEC_MAX_KV, &n, fn, "the spec");
    if (st != SGD_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        const char *eq = memchr(items[i].p, '=', items[i].n);
        if (eq == NULL)
            return sgd__err(SGD_EINVAL, "%s: '%.*s' is not key=value", fn, (int)items[i].n, items[i].p);
        sgd__str key = trim((sgd__str){items[i].p, (size_t)(eq - items[i].p)});
        sgd__str val = trim((sgd__str){eq + 1, items[i].n - (size_t)(eq + 1 - items[i].p)});
        if (!is_ident(key))
            return sgd__err(SGD_EINVAL, "%s: '%.*s': the key must be a name such as T_max", fn, (int)items[i].n,
                            items[i].p);
        if (val.n == 0)
            return sgd__err(SGD_EINVAL, "%s: %.*s=: missing value", fn, (int)key.n, key.p);
        for (size_t j = 0; j < sp->n; j++)
            if (sp->kv[j].key.n == key.n && memcmp(sp->kv[j].key.p, key.p, key.n) == 0)
                return sgd__err(SGD_EINVAL, "%s: key '%.*s' given twice", fn, (int)key.n, key.p);
        sp->kv[sp->n++] = (sgd__kv){key, val, false};
    }
    return SGD_OK;
}

/* ---------------------------------------------------------------- getters */

static sgd_status get_f64(sgd__spec *sp, const char *key, double *v, const char *fn)
{
    return sgd__spec_get_double(sp, key, v, fn);
}

static sgd_status get_i64(sgd__spec *sp, const char *key, int64_t *v, const char *fn)
{
    return sgd__spec_get_int64(sp, key, v, fn);
}

static sgd_status get_b32(sgd__spec *sp, const char *key, int32_t *v, const char *fn)
{
    bool b = *v != 0;
    sgd_status st = sgd__spec_get_bool(sp, key, &b, fn);
    if (st == SGD_OK)
        *v = b ? 1 : 0;
    return st;
}

/* An enumerated value by name: names[i] is value i. */
static sgd_status get_enum(sgd__spec *sp, const char *key, const char *const *names, int32_t count, int32_t *v,
                           const char *fn)
{
    sgd__str s = sgd__spec_get_str(sp, key);
    if (s.p == NULL)
        return SGD_OK;
    for (int32_t i = 0; i < count; i++)
        if (sgd__str_eq(s, names[i])) {
            *v = i;
            return SGD_OK;
        }
    char list[128] = "";
    for (int32_t i = 0; i < count; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    return sgd__err(SGD_EINVAL, "%s: %s=%.*s: must be one of %s", fn, key, (int)s.n, s.p, list);
}

/* A list of integers, "[a,b,...]" or a single "a"; *arr is allocated with c->a (NULL when empty). */
static sgd_status get_i64_list(sgd__str val, const ctx *c, const char *key, int64_t **arr, size_t *n,
                               const char *fn)
{
    *arr = NULL;
    *n = 0;
    sgd__str body = inside(val, '[', ']');
    if (body.p == NULL) {
        if (val.n > 0 && (val.p[0] == '(' || val.p[0] == '['))
            return sgd__err(SGD_EINVAL, "%s: %s=%.*s: expected a list such as [30,80]", fn, key, (int)val.n, val.p);
        body = val;
    }
    /* Count the items first (commas cannot nest in a list of numbers). */
    size_t count = 0;
    sgd__str t = trim(body);
    if (t.n > 0) {
        count = 1;
        for (size_t i = 0; i < t.n; i++)
            count += t.p[i] == ',';
    }
    if (count > SGD__SCHED_MAX_MILESTONES)
        return sgd__err(SGD_EOVERFLOW, "%s: %s has %zu items: at most %d", fn, key, count,
                        SGD__SCHED_MAX_MILESTONES);
    if (count == 0)
        return SGD_OK;
    int64_t *v = sgd__calloc(c->a, count, sizeof *v);
    if (v == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    const char *p = t.p, *end = t.p + t.n;
    for (size_t i = 0; i < count; i++) {
        const char *q = memchr(p, ',', (size_t)(end - p));
        if (q == NULL)
            q = end;
        sgd__str item = trim((sgd__str){p, (size_t)(q - p)});
        sgd_status st = sgd__parse_int64(item, &v[i]);
        if (st != SGD_OK) {
            sgd__free(c->a, v);
            return sgd__err(st, "%s: %s=%.*s: '%.*s' is not an integer", fn, key, (int)val.n, val.p, (int)item.n,
                            item.p);
        }
        p = q + 1;
    }
    *arr = v;
    *n = count;
    return SGD_OK;
}

/* A nested spec "(...)" under `key`, built with the path "<fn>: <key>". */
static sgd_status nested(sgd_sched **out, sgd__str val, const ctx *c, const char *key, const char *fn)
{
    *out = NULL;
    sgd__str body = inside(val, '(', ')');
    if (body.p == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s=%.*s: expected a schedule in parentheses, e.g. (cosine:T_max=100)", fn,
                        key, (int)val.n, val.p);
    char where[FN_MAX];
    snprintf(where, sizeof where, "%s: %s", fn, key);
    ctx in = *c;
    in.depth++;
    return parse(out, body, &in, where);
}

/* ------------------------------------------------------------------ kinds */

typedef sgd_status (*kind_fn)(sgd_sched **out, sgd__spec *sp, const ctx *c, const char *fn);

#define TRY(x)                                                                                                  \
    do {                                                                                                        \
        sgd_status try_st_ = (x);                                                                               \
        if (try_st_ != SGD_OK)                                                                                  \
            return try_st_;                                                                                     \
    } while (0)

static sgd_status k_constant(sgd_sched **out, sgd__spec *sp, const ctx *c, const char *fn)
{
    sgd_sched_constant_options o;
    sgd_sched_constant_options_init(&o);
    TRY(get_f64(sp, "factor", &o.factor, fn));
    TRY(get_i64(sp, "total_iters", &o.total_iters, fn));
    TRY(sgd__spec_check_unused(sp, fn));
    return sgd__sched_constant(out, c->base_lr, &o, c->a, fn);
}

static sgd_status k_step(sgd_sched **out, sgd__spec *sp, const ctx *c, const char *fn)
{
    sgd_sched_step_options o;
    sgd_sched_step_options_init(&o);
    TRY(get_i64(sp, "step_size", &o.step_size, fn));
    TRY(get_f64(sp, "gamma", &o.gamma, fn));
    TRY(sgd__spec_check_unused(sp, fn));
    if (o.step_size == 0 && sgd__spec_get_str(sp, "step_size").p == NULL)
        return sgd__err(SGD_EINVAL, "%s: step_size is required", fn);
    return sgd__sched_step(out, c->base_lr, &o, c->a, fn);
}

static sgd_status k_multistep(sgd_sched **out, sgd__spec *sp, const ctx *c, const char *fn)
{
    sgd_sched_multistep_options o;
    sgd_sched_multistep_options_init(&o);
    TRY(get_f64(sp, "gamma", &o.gamma, fn));
    sgd__str ms = sgd__spec_get_str(sp, "milestones");
    TRY(sgd__spec_check_unused(sp, fn));
    if (ms.p == NULL)
        return sgd__err(SGD_EINVAL, "%s: milestones is required, e.g. milestones=[30,80]", fn);
    int64_t *m;
    size_t n;
    TRY(get_i64_list(ms, c, "milestones", &m, &n, fn));
    o.milestones = m;
    o.n_milestones = n;
    sgd_status st = sgd__sched_multistep(out, c->base_lr, &o, c->a, fn);
    sgd__free(c->a, m);
    return st;
}

static sgd_status k_exponential(sgd_sched **out, sgd__spec *sp, const ctx *c, const char *fn)
{
    sgd_sched_exponential_options o;
    sgd_sched_exponential_options_init(&o);
    TRY(get_f64(sp, "gamma", &o.gamma, fn));
    TRY(sgd__spec_check_unused(sp, fn));
    return sgd__sched_exponential(out, c->base_lr, &o, c->a, fn);
}

static sgd_status k_polynomial(sgd_sched **out, sgd__spec *sp, const ctx *c, const char *fn)
{
    sgd_sched_polynomial_options o;
    sgd_sched_polynomial_options_init(&o);
    TRY(get_i64(sp, "total_iters", &o.total_iters, fn));
    TRY(get_f64(sp, "power", &o.power, fn));
    TRY(sgd__spec_check_unused(sp, fn));
    return sgd__sched_polynomial(out, c->base_lr, &o, c->a, fn);
}

static sgd_status k_cosine(sgd_sched **out, sgd__spec *sp, const ctx *c, const char *fn)
{
    sgd_sched_cosine_options o;
    sgd_sched_cosine_options_init(&o);
    TRY(get_i64(sp, "T_max", &o.T_max, fn));
    TRY(get_f64(sp, "eta_min", &o.eta_min, fn));
    TRY(sgd__spec_check_unused(sp, fn));
    if (sgd__spec_get_str(sp, "T_max").p == NULL)
        return sgd__err(SGD_EINVAL, "%s: T_max is required", fn);
    return sgd__sched_cosine(out, c->base_lr, &o, c->a, fn);
}

static sgd_status k_warm_restarts(sgd_sched **out, sgd__spec *sp, const ctx *c, const char *fn)
{
    sgd_sched_cosine_warm_restarts_options o;
    sgd_sched_cosine_warm_restarts_options_init(&o);
    TRY(get_i64(sp, "T_0", &o.T_0, fn));
    TRY(get_i64(sp, "T_mult", &o.T_mult, fn));
    TRY(get_f64(sp, "eta_min", &o.eta_min, fn));
    TRY(sgd__spec_check_unused(sp, fn));
    if (sgd__spec_get_str(sp, "T_0").p == NULL)
        return sgd__err(SGD_EINVAL, "%s: T_0 is required", fn);
    return sgd__sched_cosine_warm_restarts(out, c->base_lr, &o, c->a, fn);
}

static sgd_status k_linear(sgd_sched **out, sgd__spec *sp, const ctx *c, const char *fn)
{
    sgd_sched_linear_options o;
    sgd_sched_linear_options_init(&o);
    TRY(get_f64(sp, "start_factor", &o.start_factor, fn));
    TRY(get_f64(sp, "end_factor", &o.end_factor, fn));
    TRY(get_i64(sp, "total_iters", &o.total_iters, fn));
    TRY(sgd__spec_check_unused(sp, fn));
    return sgd__sched_linear(out, c->base_lr, &o, c->a, fn);
}

static const char *const anneal_names[] = {"cos", "linear"};
static const char *const cyclic_names[] = {"triangular", "triangular2", "exp_range"};
static const char *const plateau_names[] = {"min", "max"};
static const char *const threshold_names[] = {"rel", "abs"};

static sgd_status k_onecycle(sgd_sched **out, sgd__spec *sp, const ctx *c, const char *fn)
{
    sgd_sched_onecycle_options o;
    sgd_sched_onecycle_options_init(&o);
    TRY(get_f64(sp, "max_lr", &o.max_lr, fn));
    TRY(get_i64(sp, "total_steps", &o.total_steps, fn));
    TRY(get_i64(sp, "epochs", &o.epochs, fn));
    TRY(get_i64(sp, "steps_per_epoch", &o.steps_per_epoch, fn));
    TRY(get_f64(sp, "pct_start", &o.pct_start, fn));
    TRY(get_enum(sp, "anneal_strategy", anneal_names, 2, &o.anneal_strategy, fn));
    TRY(get_b32(sp, "cycle_momentum", &o.cycle_momentum, fn));
    TRY(get_f64(sp, "base_momentum", &o.base_momentum, fn));
    TRY(get_f64(sp, "max_momentum", &o.max_momentum, fn));
    TRY(get_f64(sp, "div_factor", &o.div_factor, fn));
    TRY(get_f64(sp, "final_div_factor", &o.final_div_factor, fn));
    TRY(get_b32(sp, "three_phase", &o.three_phase, fn));
    TRY(sgd__spec_check_unused(sp, fn));
    if (sgd__spec_get_str(sp, "max_lr").p == NULL)
        return sgd__err(SGD_EINVAL, "%s: max_lr is required", fn);
    if (sgd__spec_get_str(sp, "total_steps").p != NULL && o.total_steps == 0)
        return sgd__err(SGD_ERANGE, "%s: total_steps=0: must be > 0", fn);
    return sgd__sched_onecycle(out, &o, c->a, fn);
}

static sgd_status k_cyclic(sgd_sched **out, sgd__spec *sp, const ctx *c, const char *fn)
{
    sgd_sched_cyclic_options o;
    sgd_sched_cyclic_options_init(&o);
    o.base_lr = c->base_lr; /* torch requires base_lr; the spec defaults it to the optimizer's */
    TRY(get_f64(sp, "base_lr", &o.base_lr, fn));
    TRY(get_f64(sp, "max_lr", &o.max_lr, fn));
    TRY(get_i64(sp, "step_size_up", &o.step_size_up, fn));
    TRY(get_i64(sp, "step_size_down", &o.step_size_down, fn));
    TRY(get_enum(sp, "mode", cyclic_names, 3, &o.mode, fn));
    TRY(get_f64(sp, "gamma", &o.gamma, fn));
    TRY(get_b32(sp, "cycle_momentum", &o.cycle_momentum, fn));
    TRY(get_f64(sp, "base_momentum", &o.base_momentum, fn));
    TRY(get_f64(sp, "max_momentum", &o.max_momentum, fn));
    TRY(sgd__spec_check_unused(sp, fn));
    if (sgd__spec_get_str(sp, "max_lr").p == NULL)
        return sgd__err(SGD_EINVAL, "%s: max_lr is required", fn);
    if (sgd__spec_get_str(sp, "step_size_down").p != NULL && o.step_size_down == 0)
        return sgd__err(SGD_ERANGE, "%s: step_size_down=0: must be > 0 (omit it for step_size_up)", fn);
    return sgd__sched_cyclic(out, &o, c->a, fn);
}

/* children=[(spec),(spec),...]: builds each child into a block of handles the caller frees (sgd__free). */
static sgd_status children_list(sgd__str ch, const ctx *c, const char *fn, sgd_sched ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (ch.p == NULL)
        return sgd__err(SGD_EINVAL, "%s: children is required, e.g. children=[(linear:total_iters=5),(cosine:T_max=95)]",
                        fn);
    sgd__str body = inside(ch, '[', ']');
    if (body.p == NULL)
        return sgd__err(SGD_EINVAL, "%s: children=%.*s: expected a list of schedules, e.g. [(linear),(cosine:T_max=95)]",
                        fn, (int)ch.n, ch.p);
    size_t n;
    TRY(split_top(body, NULL, SGD__SCHED_MAX_CHILDREN, &n, fn, "children"));
    if (n == 0)
        return sgd__err(SGD_EINVAL, "%s: children=[]: at least one schedule", fn);
    /* The children's texts and handles, in one block. */
    size_t bytes;
    if (!sgd__mul_size(n, sizeof(sgd__str) + sizeof(sgd_sched *), &bytes))
        return sgd__err(SGD_EOVERFLOW, "%s: too many children", fn);
    sgd_sched **kids = sgd__malloc(c->a, bytes);
    if (kids == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    memset(kids, 0, n * sizeof *kids);
    sgd__str *items = (sgd__str *)(void *)(kids + n);
    size_t n2;
    (void)split_top(body, items, n, &n2, fn, "children"); /* validated above */
    sgd_status st = SGD_OK;
    for (size_t i = 0; i < n && st == SGD_OK; i++) {
        char key[32];
        snprintf(key, sizeof key, "children[%zu]", i);
        st = nested(&kids[i], items[i], c, key, fn);
    }
    if (st != SGD_OK) {
        for (size_t i = 0; i < n; i++)
            sgd__sched_destroy(kids[i]);
        sgd__free(c->a, kids);
        return st;
    }
    *out = kids;
    *count = n;
    return SGD_OK;
}

static sgd_status k_sequential(sgd_sched **out, sgd__spec *sp, const ctx *c, const char *fn)
{
    sgd__str ms = sgd__spec_get_str(sp, "milestones");
    sgd__str ch = sgd__spec_get_str(sp, "children");
    TRY(sgd__spec_check_unused(sp, fn));
    int64_t *m = NULL;
    size_t nm = 0;
    if (ms.p != NULL)
        TRY(get_i64_list(ms, c, "milestones", &m, &nm, fn));
    sgd_sched **kids;
    size_t n;
    sgd_status st = children_list(ch, c, fn, &kids, &n);
    if (st == SGD_OK) {
        if (nm != n - 1)
            st = sgd__err(SGD_EINVAL, "%s: %zu children need %zu milestones, got %zu", fn, n, n - 1, nm);
        else
            st = sgd__sched_sequential(out, kids, n, m, c->a, fn);
        if (st != SGD_OK)
            for (size_t i = 0; i < n; i++)
                sgd__sched_destroy(kids[i]);
        sgd__free(c->a, kids);
    }
    sgd__free(c->a, m);
    return st;
}

/* product:children=[(a),(b),...] (torch's ChainedScheduler): lr = base_lr * prod(child lr / base_lr). */
static sgd_status k_product(sgd_sched **out, sgd__spec *sp, const ctx *c, const char *fn)
{
    sgd__str ch = sgd__spec_get_str(sp, "children");
    TRY(sgd__spec_check_unused(sp, fn));
    sgd_sched **kids;
    size_t n;
    TRY(children_list(ch, c, fn, &kids, &n));
    sgd_status st = sgd__sched_product(out, kids, n, c->base_lr, c->a, fn);
    if (st != SGD_OK)
        for (size_t i = 0; i < n; i++)
            sgd__sched_destroy(kids[i]);
    sgd__free(c->a, kids);
    return st;
}

static sgd_status k_warmup(sgd_sched **out, sgd__spec *sp, const ctx *c, const char *fn)
{
    sgd_sched_warmup_options o;
    sgd_sched_warmup_options_init(&o);
    TRY(get_f64(sp, "start_factor", &o.start_factor, fn));
    TRY(get_i64(sp, "total_iters", &o.total_iters, fn));
    sgd__str over = sgd__spec_get_str(sp, "over");
    TRY(sgd__spec_check_unused(sp, fn));
    if (over.p == NULL)
        return sgd__err(SGD_EINVAL, "%s: over is required: the schedule to warm up, e.g. over=(cosine:T_max=100)", fn);
    sgd_sched *inner;
    TRY(nested(&inner, over, c, "over", fn));
    sgd_status st = sgd__sched_warmup(out, inner, &o, c->a, fn);
    if (st != SGD_OK)
        sgd__sched_destroy(inner);
    return st;
}

static sgd_status k_plateau(sgd_sched **out, sgd__spec *sp, const ctx *c, const char *fn)
{
    sgd_sched_plateau_options o;
    sgd_sched_plateau_options_init(&o);
    TRY(get_enum(sp, "mode", plateau_names, 2, &o.mode, fn));
    TRY(get_f64(sp, "factor", &o.factor, fn));
    TRY(get_i64(sp, "patience", &o.patience, fn));
    TRY(get_f64(sp, "threshold", &o.threshold, fn));
    TRY(get_enum(sp, "threshold_mode", threshold_names, 2, &o.threshold_mode, fn));
    TRY(get_i64(sp, "cooldown", &o.cooldown, fn));
    TRY(get_f64(sp, "min_lr", &o.min_lr, fn));
    TRY(get_f64(sp, "eps", &o.eps, fn));
    sgd__str over = sgd__spec_get_str(sp, "over");
    TRY(sgd__spec_check_unused(sp, fn));
    sgd_sched *inner;
    if (over.p != NULL) {
        TRY(nested(&inner, over, c, "over", fn));
    } else {
        /* torch's ReduceLROnPlateau alone: over the constant base_lr. */
        sgd_sched_constant_options k;
        sgd_sched_constant_options_init(&k);
        k.factor = 1.0;
        k.total_iters = 0;
        TRY(sgd__sched_constant(&inner, c->base_lr, &k, c->a, fn));
    }
    sgd_status st = sgd__sched_plateau(out, inner, &o, c->a, fn);
    if (st != SGD_OK)
        sgd__sched_destroy(inner);
    return st;
}

static const struct {
    const char *name;
    kind_fn make;
} kinds[] = {
    {"constant", k_constant},
    {"step", k_step},
    {"multistep", k_multistep},
    {"exponential", k_exponential},
    {"polynomial", k_polynomial},
    {"cosine", k_cosine},
    {"cosine_warm_restarts", k_warm_restarts},
    {"linear", k_linear},
    {"onecycle", k_onecycle},
    {"cyclic", k_cyclic},
    {"sequential", k_sequential},
    {"warmup", k_warmup},
    {"plateau", k_plateau},
    {"product", k_product},
};

static sgd_status parse(sgd_sched **out, sgd__str text, const ctx *c, const char *where)
{
    *out = NULL;
    if (c->depth > SGD__SCHED_MAX_DEPTH)
        return sgd__err(SGD_EOVERFLOW, "%s: schedules nested more than %d deep", where, SGD__SCHED_MAX_DEPTH);
    sgd__spec sp;
    TRY(split_spec(&sp, text, where));
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (sgd__str_eq(sp.kind, kinds[i].name)) {
            char fn[FN_MAX];
            snprintf(fn, sizeof fn, "%s: %s", where, kinds[i].name);
            return kinds[i].make(out, &sp, c, fn);
        }
    }
    for (size_t i = 0; sgd__sched_modern_name(i) != NULL; i++)
        if (sgd__str_eq(sp.kind, sgd__sched_modern_name(i))) {
            char fn[FN_MAX];
            snprintf(fn, sizeof fn, "%s: %s", where, sgd__sched_modern_name(i));
            return sgd__sched_modern(out, sp.kind, &sp, c->base_lr, c->a, fn);
        }
    return sgd__err(SGD_ENOTFOUND,
                    "%s: unknown schedule kind '%.*s' (known: constant, step, multistep, exponential, polynomial, "
                    "cosine, cosine_warm_restarts, linear, onecycle, cyclic, sequential, warmup, plateau, product, "
                    "poly_decay, exp_decay, inverse_time, inv_sqrt, wsd, cosine_decay, cosine_restarts)",
                    where, (int)sp.kind.n, sp.kind.p);
}

sgd_status sgd_sched_new(sgd_sched **out, const char *spec, double base_lr, const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_sched_new";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (spec == NULL)
        return sgd__err(SGD_EINVAL, "%s: spec is NULL", fn);
    size_t len = strnlen(spec, SGD__SCHED_MAX_SPEC + 1);
    if (len > SGD__SCHED_MAX_SPEC)
        return sgd__err(SGD_EOVERFLOW, "%s: spec longer than %d bytes", fn, SGD__SCHED_MAX_SPEC);
    sgd_status st = sgd__sched_check_base_lr(base_lr, fn);
    if (st != SGD_OK)
        return st;
    sgd_allocator a;
    if ((st = sgd__allocator_init(&a, alloc, fn)) != SGD_OK)
        return st;
    ctx c = {.a = &a, .base_lr = base_lr, .depth = 0};
    return parse(out, (sgd__str){spec, len}, &c, fn);
}
