/*
 * Reading one line of a training log: the training loss found by name (or a
 * column, or a --match regex), the step, learning rate and gradient norm,
 * validation values kept apart, runs told apart. docs/monitor.md ("Reading
 * logs") states the rules; tests/test_logread.c and the log corpus check them.
 * SPDX-License-Identifier: MIT
 */
#include "logread.h"

#include "core/internal.h" /* sgd__parse_double: strict, locale-independent numbers */

#include <locale.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYLEN 64
#define MAX_PAIRS 128
#define MAX_FIELDS 256
#define CACHE 128 /* keys classified, by hash: the same keys come on every line */

/* What a field is. */
enum role {
    R_OTHER = 0,
    R_TRAIN, /* a training loss */
    R_EVAL,  /* a validation / evaluation / test loss or value */
    R_STEP,
    R_LR,
    R_GN,
    R_EPOCH,
};

typedef struct pair {
    char key[KEYLEN]; /* normalised: lower case, separators '_' */
    double val;
    int role;
    int prio; /* R_TRAIN: lower is preferred */
} pair;

typedef struct cached {
    char key[KEYLEN];
    int role, prio;
} cached;

struct logread {
    logread_opts o;
    bool c_locale; /* the decimal point is '.': strtod may be called directly */
    cached cache[CACHE];
    char key[KEYLEN], step_key[KEYLEN], lr_key[KEYLEN], gn_key[KEYLEN];
    regex_t re;
    bool have_re;
    /* The training-loss field in use: locked by the first training line of the input. */
    int lock; /* 0 none, 1 a key, 2 a plain column */
    char lock_key[KEYLEN];
    char lock_name[KEYLEN + 16];
    /* A header of column names. */
    bool have_header;
    char delim; /* ',', '\t', '|' or ' ' */
    int nhdr;
    char hdr[MAX_FIELDS][KEYLEN];
    bool data_since_header;
    bool header_repeated;
    /* Runs. */
    bool have_step, have_epoch;
    int64_t last_step;
    double last_epoch;
    /* Progress bars: the count of the last update, and Keras's running mean. */
    bool pb_have;
    int64_t pb_count;
    double pb_mean;
    bool pb_epoch_have; /* the epoch of the progress bar's updates (Keras's "Epoch 2/10" lines) */
    double pb_epoch;
    /* A line with both a training and a validation loss, held until the next says which kind of log this is. */
    bool pending;
    logread_obs pend;
    char pend_key[KEYLEN];
    int64_t lineno;
    pair pairs[MAX_PAIRS];
    char text[LOGREAD_MAX_LINE + 1];
};

/* ------------------------------------------------------------ small helpers */

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_alpha(c) || is_digit(c);
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Normalises a key: lower case, runs of ' ', '-', '.', '/' and '_' become one '_', trimmed. */
static void norm_key(const char *p, size_t n, char *out)
{
    size_t k = 0;
    bool sep = false;
    for (size_t i = 0; i < n && k + 1 < KEYLEN; i++) {
        char c = p[i];
        if (c == ' ' || c == '-' || c == '.' || c == '/' || c == '_' || c == '\t') {
            sep = k > 0;
            continue;
        }
        if (sep && k + 2 < KEYLEN)
            out[k++] = '_';
        sep = false;
        out[k++] = lower(c);
    }
    out[k] = '\0';
}

static bool word_in(const char *w, const char *const *list)
{
    for (; *list != NULL; list++)
        if (w[0] == (*list)[0] && strcmp(w, *list) == 0)
            return true;
    return false;
}

static const char *const eval_words[] = {"val", "valid", "validation", "eval", "evaluation", "evaluating",
                                         "test", "testing", "dev", NULL};
static const char *const train_words[] = {"train", "training", NULL};

/*
 * A number at p (before end): [+-] digits [. digits] [e [+-] digits], or nan, inf,
 * infinity (any case). It must end at a character that is not a letter, digit,
 * '%' or '.' (so "45ms", "15.34%" and "2024-01-15" are not values). *after is
 * set past it. Returns false if there is none.
 */
/* Set by logread_new(): whether strtod reads '.' (the tool runs in the C locale). */
static bool fast_strtod = false;

static bool parse_num(const char *p, const char *end, double *v, const char **after)
{
    const char *q = p;
    if (q < end && (*q == '+' || *q == '-'))
        q++;
    bool digits = false;
    if (q < end && is_alpha(*q)) {
        const char *w = q;
        while (q < end && is_alpha(*q))
            q++;
        size_t n = (size_t)(q - w);
        char lw[16];
        if (n >= sizeof lw)
            return false;
        for (size_t i = 0; i < n; i++)
            lw[i] = lower(w[i]);
        lw[n] = '\0';
        if (strcmp(lw, "nan") != 0 && strcmp(lw, "inf") != 0 && strcmp(lw, "infinity") != 0)
            return false;
    } else {
        while (q < end && is_digit(*q))
            q++, digits = true;
        if (q < end && *q == '.') {
            q++;
            while (q < end && is_digit(*q))
                q++, digits = true;
        }
        if (!digits)
            return false;
        if (q < end && (*q == 'e' || *q == 'E')) {
            const char *e = q + 1;
            if (e < end && (*e == '+' || *e == '-'))
                e++;
            if (e < end && is_digit(*e)) {
                while (e < end && is_digit(*e))
                    e++;
                q = e;
            }
        }
    }
    if (q < end && (is_alnum(*q) || *q == '%' || *q == '.'))
        return false;
    if (q < end && *q == '-' && q + 1 < end && is_digit(q[1]))
        return false; /* a date, 2024-01-15 */
    size_t n = (size_t)(q - p);
    if (digits && n < 64 && fast_strtod) {
        /* a decimal number, in a locale whose decimal point is '.' */
        char buf[64];
        memcpy(buf, p, n);
        buf[n] = '\0';
        *v = strtod(buf, NULL);
    } else {
        sgd__str s = {p, n};
        if (sgd__parse_double(s, true, v) != SGD_OK)
            return false;
    }
    *after = q;
    return true;
}

/* What a normalised key is, with --*-key overrides. */
static int classify(const logread *r, const char *k, int *prio)
{
    *prio = 100;
    if (r->key[0] && strcmp(k, r->key) == 0) {
        *prio = 0;
        return R_TRAIN;
    }
    if (r->step_key[0] ? strcmp(k, r->step_key) == 0
                       : (strcmp(k, "step") == 0 || strcmp(k, "global_step") == 0 || strcmp(k, "iter") == 0 ||
                          strcmp(k, "iteration") == 0 || strcmp(k, "step") == 0 || strcmp(k, "it") == 0 ||
                          strcmp(k, "s") == 0 || strcmp(k, "trainer_global_step") == 0))
        return R_STEP;
    if (r->lr_key[0] ? strcmp(k, r->lr_key) == 0
                     : (strcmp(k, "lr") == 0 || strcmp(k, "learning_rate") == 0 || strncmp(k, "lr_", 3) == 0))
        return R_LR;
    if (r->gn_key[0] ? strcmp(k, r->gn_key) == 0
                     : (strcmp(k, "grad_norm") == 0 || strcmp(k, "norm") == 0 || strcmp(k, "gradient_norm") == 0 ||
                        strcmp(k, "total_norm") == 0 || strcmp(k, "gnorm") == 0))
        return R_GN;
    if (strcmp(k, "epoch") == 0)
        return R_EPOCH;
    if (strcmp(k, "trl") == 0) {
        *prio = 4;
        return R_TRAIN;
    }
    if (strcmp(k, "tel") == 0 || word_in(k, eval_words))
        return R_EVAL;
    /* Tokens of the key: a "loss" with training qualifiers only is a training loss; with a
       validation qualifier, an evaluation value; with anything else (loss_cls), a component. */
    char buf[KEYLEN];
    snprintf(buf, sizeof buf, "%s", k);
    bool loss = false, eval = false, other = false, epochish = false;
    int ntok = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, "_", &save); t != NULL; t = strtok_r(NULL, "_", &save)) {
        ntok++;
        if (strcmp(t, "loss") == 0)
            loss = true;
        else if (word_in(t, eval_words))
            eval = true;
        else if (strcmp(t, "epoch") == 0)
            epochish = true;
        else if (!(word_in(t, train_words) || strcmp(t, "total") == 0 || strcmp(t, "step") == 0 ||
                   strcmp(t, "batch") == 0 || strcmp(t, "avg") == 0 || strcmp(t, "mean") == 0 ||
                   strcmp(t, "running") == 0 || strcmp(t, "loss") == 0))
            other = true;
    }
    if (!loss)
        return R_OTHER;
    if (eval)
        return R_EVAL;
    if (other)
        return R_OTHER;
    if (r->key[0])
        return R_OTHER; /* --key names the one training loss */
    *prio = strcmp(k, "loss") == 0            ? 0
            : strcmp(k, "train_loss") == 0    ? 1
            : strcmp(k, "training_loss") == 0 ? 2
            : strcmp(k, "total_loss") == 0    ? 3
            : epochish                        ? 7
            : ntok == 1                       ? 5
                                              : 6;
    return R_TRAIN;
}

static void add_pair(logread *r, int *np, const char *key, double v)
{
    if (*np >= MAX_PAIRS || key[0] == '\0')
        return;
    pair *p = &r->pairs[(*np)++];
    size_t n = strlen(key);
    if (n >= KEYLEN)
        n = KEYLEN - 1;
    memcpy(p->key, key, n);
    p->key[n] = '\0';
    p->val = v;
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p->key[i]) * 16777619u;
    cached *c = &r->cache[h % CACHE];
    if (strcmp(c->key, p->key) != 0) {
        memcpy(c->key, p->key, n + 1);
        c->role = classify(r, p->key, &c->prio);
    }
    p->role = c->role;
    p->prio = c->prio;
}

/* ------------------------------------------------------------ scanning a line */

typedef struct scan {
    int npairs;
    int nnum;      /* bare numbers (not the value of a key) */
    int nwords;    /* words without a value */
    bool eval_mark; /* a word that says validation/evaluation/test */
    double last_num; /* the last bare number */
    bool progbar;  /* starts with "N/M" followed by a bar or " - " (Keras) */
    bool tqdm;     /* "| N/M" (tqdm) */
    int64_t count; /* the progress count N */
    bool json;     /* starts with '{' */
} scan;

/* Skips spaces and tabs. */
static const char *skip_sp(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/*
 * A value after a key: optional ':' or '=' (with spaces), then a number, a
 * "[N/M]" or "[N]" (its first number), or tensor(N ...) and the like.
 */
static bool value_after(const char *p, const char *end, double *v, const char **after)
{
    const char *q = skip_sp(p, end);
    if (q < end && (*q == ':' || *q == '='))
        q = skip_sp(q + 1, end);
    else if (q == p)
        return false; /* a key and its value are separated by ':', '=' or spaces */
    if (q < end && *q == '[')
        q = skip_sp(q + 1, end);
    static const struct {
        const char *s;
        size_t n;
    } wrappers[] = {{"tensor(", 7}, {"array(", 6}, {"np.float64(", 11}, {"np.float32(", 11}, {"float(", 6},
                    {"np.float16(", 11}};
    if (q < end && (*q == 't' || *q == 'a' || *q == 'n' || *q == 'f'))
        for (size_t k = 0; k < sizeof wrappers / sizeof *wrappers; k++)
            if ((size_t)(end - q) > wrappers[k].n && memcmp(q, wrappers[k].s, wrappers[k].n) == 0) {
                q += wrappers[k].n;
                break;
            }
    return parse_num(q, end, v, after);
}

static void scan_line(logread *r, const char *s, size_t n, scan *sc)
{
    memset(sc, 0, sizeof *sc);
    const char *p = s, *end = s + n;
    p = skip_sp(p, end);
    /* Progress counts: Keras "  12/100 [==>...]" or "12/100 ━━━" or "100/100 - 3s - loss: ..." at the start,
       tqdm "...| 12/100 [00:01<...". */
    {
        const char *q = p;
        int64_t c = 0;
        bool d = false;
        while (q < end && is_digit(*q) && c < ((int64_t)1 << 50))
            c = c * 10 + (*q++ - '0'), d = true;
        if (d && q < end && *q == '/' && q + 1 < end && is_digit(q[1])) {
            q++;
            while (q < end && is_digit(*q))
                q++;
            const char *t = skip_sp(q, end);
            if (t < end && (*t == '[' || *t == '-' || (unsigned char)*t == 0xE2)) {
                sc->progbar = true;
                sc->count = c;
            }
        }
    }
    if (!sc->progbar) {
        const char *bar = memchr(p, '|', (size_t)(end - p));
        while (bar != NULL && !sc->tqdm) {
            const char *q = skip_sp(bar + 1, end);
            int64_t c = 0;
            bool d = false;
            while (q < end && is_digit(*q) && c < ((int64_t)1 << 50))
                c = c * 10 + (*q++ - '0'), d = true;
            if (d && q < end && *q == '/' && q + 1 < end && is_digit(q[1])) {
                sc->tqdm = true;
                sc->count = c;
            }
            bar = bar + 1 < end ? memchr(bar + 1, '|', (size_t)(end - bar - 1)) : NULL;
        }
    }
    sc->json = p < end && *p == '{';
    char prefix[4][KEYLEN]; /* JSON nesting: "train": {"loss": ...} is "train_loss" */
    int depth = 0;
    char prev_word[KEYLEN] = ""; /* a bare word just before a key: "train loss", "val loss" */
    while (p < end) {
        char c = *p;
        if (c == '"' || c == '\'') {
            /* A quoted key (JSON, a Python dict) or a string value. */
            const char *q = p + 1;
            while (q < end && *q != c) {
                if (*q == '\\' && q + 1 < end)
                    q++;
                q++;
            }
            const char *ks = p + 1;
            size_t kn = (size_t)(q - ks);
            p = q < end ? q + 1 : end;
            const char *t = skip_sp(p, end);
            if (t < end && (*t == ':' || *t == '=')) {
                char key[KEYLEN], full[KEYLEN];
                norm_key(ks, kn < KEYLEN ? kn : KEYLEN - 1, key);
                int pd = depth < 4 ? depth : 4; /* deeper than 4: the innermost kept prefix */
                if (pd > 0 && prefix[pd - 1][0])
                    snprintf(full, sizeof full, "%.31s_%.31s", prefix[pd - 1], key);
                else
                    snprintf(full, sizeof full, "%s", key);
                if (word_in(key, eval_words))
                    sc->eval_mark = true;
                const char *u = skip_sp(t + 1, end);
                if (u < end && *u == '{') {
                    if (depth < 4)
                        snprintf(prefix[depth], KEYLEN, "%s", full);
                    depth++;
                    p = u + 1;
                    continue;
                }
                double v;
                const char *after;
                if (value_after(t, end, &v, &after)) {
                    add_pair(r, &sc->npairs, full, v);
                    p = after;
                } else {
                    p = t + 1;
                }
            }
            prev_word[0] = '\0';
            continue;
        }
        if (c == '{') {
            if (depth < 4)
                prefix[depth][0] = '\0';
            depth++;
            p++;
            continue;
        }
        if (c == '}') {
            if (depth > 0)
                depth--;
            p++;
            continue;
        }
        if (is_alpha(c)) {
            const char *w = p;
            while (p < end && (is_alnum(*p) || *p == '.' || *p == '/' || *p == '-' || *p == '@'))
                p++;
            /* A word ends before a trailing '.', '/' or '-' ("loss." ends a sentence). */
            while (p > w + 1 && (p[-1] == '.' || p[-1] == '/' || p[-1] == '-'))
                p--;
            size_t wn = (size_t)(p - w);
            char key[KEYLEN];
            norm_key(w, wn < KEYLEN ? wn : KEYLEN - 1, key);
            if (word_in(key, eval_words))
                sc->eval_mark = true;
            double v;
            const char *after;
            /* nan/inf are numbers, not words */
            char c0 = lower(*w);
            if ((c0 == 'n' || c0 == 'i') && parse_num(w, end, &v, &after) && after == p) {
                sc->nnum++;
                sc->last_num = v;
                prev_word[0] = '\0';
                continue;
            }
            /* "s" is llm.c's step only as "s:N" */
            bool ok = !(strcmp(key, "s") == 0 && !(p < end && *p == ':'));
            if (ok && value_after(p, end, &v, &after)) {
                char full[KEYLEN];
                if (prev_word[0] && strstr(key, "loss") != NULL &&
                    (word_in(prev_word, train_words) || word_in(prev_word, eval_words))) {
                    snprintf(full, sizeof full, "%.31s_%.31s", prev_word, key);
                    add_pair(r, &sc->npairs, full, v);
                } else {
                    add_pair(r, &sc->npairs, key, v);
                }
                p = after;
                prev_word[0] = '\0';
            } else {
                sc->nwords++;
                memcpy(prev_word, key, sizeof prev_word);
                const char *t = skip_sp(p, end);
                if (t != p || (p < end && is_alpha(*p)))
                    ; /* words separated by spaces keep the qualifier */
                else
                    prev_word[0] = '\0';
            }
            continue;
        }
        if (is_digit(c) || ((c == '-' || c == '+' || c == '.') && p + 1 < end && (is_digit(p[1]) || p[1] == '.'))) {
            double v;
            const char *after;
            if (parse_num(p, end, &v, &after)) {
                sc->nnum++;
                sc->last_num = v;
                p = after;
            } else {
                /* a token that is not a number: "45ms", "15.34%", "2024-01-15" */
                p++;
                while (p < end && (is_alnum(*p) || *p == '.' || *p == '%' || *p == ':' || *p == '-' || *p == '/'))
                    p++;
                sc->nwords++;
            }
            prev_word[0] = '\0';
            continue;
        }
        if (c != ' ' && c != '\t')
            prev_word[0] = '\0';
        p++;
    }
}

/* ------------------------------------------------------------ headers and columns */

/* Splits by the delimiter into fields (empty fields kept for ',', '\t' and '|'); returns the count. */
static int split_fields(const char *s, size_t n, char delim, const char **fp, size_t *fn, int cap)
{
    int k = 0;
    const char *p = s, *end = s + n;
    if (delim == ' ') {
        while (p < end && k < cap) {
            while (p < end && (*p == ' ' || *p == '\t'))
                p++;
            if (p >= end)
                break;
            const char *b = p;
            while (p < end && *p != ' ' && *p != '\t')
                p++;
            fp[k] = b;
            fn[k] = (size_t)(p - b);
            k++;
        }
        return k;
    }
    if (delim == '|') { /* markdown: | a | b | */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p < end && *p == '|')
            p++;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end > p && end[-1] == '|')
            end--;
    }
    const char *b = p;
    for (;; p++) {
        if (p == end || *p == delim) {
            if (k >= cap)
                return cap + 1;
            const char *fb = b, *fe = p;
            while (fb < fe && (*fb == ' ' || *fb == '\t'))
                fb++;
            while (fe > fb && (fe[-1] == ' ' || fe[-1] == '\t'))
                fe--;
            fp[k] = fb;
            fn[k] = (size_t)(fe - fb);
            k++;
            if (p == end)
                break;
            b = p + 1;
        }
    }
    return k;
}

static char guess_delim(const char *s, size_t n)
{
    if (memchr(s, '\t', n))
        return '\t';
    if (memchr(s, ',', n))
        return ',';
    if (memchr(s, '|', n))
        return '|';
    return ' ';
}

/* A header: fields that are all names (no numbers), at least one a known field. */
static bool try_header(logread *r, const char *s, size_t n)
{
    char delim = guess_delim(s, n);
    const char *fp[MAX_FIELDS];
    size_t fl[MAX_FIELDS];
    int k = split_fields(s, n, delim, fp, fl, MAX_FIELDS);
    if (k < 1 || k > MAX_FIELDS)
        return false;
    char names[MAX_FIELDS][KEYLEN];
    bool known = false;
    for (int i = 0; i < k; i++) {
        if (fl[i] == 0 || !is_alpha(fp[i][0]))
            return false;
        for (size_t j = 0; j < fl[i]; j++) {
            char c = fp[i][j];
            if (!(is_alnum(c) || c == '.' || c == '/' || c == '-' || c == ' ' || c == '@' || c == '(' || c == ')'))
                return false;
        }
        if (delim == ' ' && fl[i] >= KEYLEN)
            return false;
        norm_key(fp[i], fl[i] < KEYLEN ? fl[i] : KEYLEN - 1, names[i]);
        int prio;
        int role = classify(r, names[i], &prio);
        if (role != R_OTHER)
            known = true;
    }
    if (!known)
        return false;
    bool same = r->have_header && r->nhdr == k && r->delim == delim;
    for (int i = 0; same && i < k; i++)
        same = strcmp(r->hdr[i], names[i]) == 0;
    if (same && r->data_since_header)
        r->header_repeated = true;
    r->have_header = true;
    r->delim = delim;
    r->nhdr = k;
    for (int i = 0; i < k; i++)
        memcpy(r->hdr[i], names[i], KEYLEN);
    r->data_since_header = false;
    return true;
}

/* A data row under the header: the same number of fields, at least one a number. */
static bool header_row(logread *r, const char *s, size_t n, int *np)
{
    const char *fp[MAX_FIELDS];
    size_t fl[MAX_FIELDS];
    int k = split_fields(s, n, r->delim, fp, fl, MAX_FIELDS);
    if (k != r->nhdr)
        return false;
    int numbers = 0;
    int npairs = 0;
    for (int i = 0; i < k; i++) {
        double v;
        const char *after;
        if (fl[i] == 0)
            continue; /* an empty field: absent (Lightning's metrics.csv) */
        if (parse_num(fp[i], fp[i] + fl[i], &v, &after) && after == fp[i] + fl[i]) {
            numbers++;
            add_pair(r, &npairs, r->hdr[i], v);
        }
    }
    if (numbers == 0)
        return false;
    *np = npairs;
    return true;
}

/* ------------------------------------------------------------ lines */

int logread_new(logread **out, const logread_opts *o, char *err, size_t errcap)
{
    *out = NULL;
    logread *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    if (o != NULL)
        r->o = *o;
    const char *dp = localeconv()->decimal_point;
    fast_strtod = dp != NULL && dp[0] == '.' && dp[1] == '\0';
    if (r->o.key != NULL)
        norm_key(r->o.key, strlen(r->o.key), r->key);
    if (r->o.step_key != NULL)
        norm_key(r->o.step_key, strlen(r->o.step_key), r->step_key);
    if (r->o.lr_key != NULL)
        norm_key(r->o.lr_key, strlen(r->o.lr_key), r->lr_key);
    if (r->o.gn_key != NULL)
        norm_key(r->o.gn_key, strlen(r->o.gn_key), r->gn_key);
    if (r->o.match != NULL) {
        int rc = regcomp(&r->re, r->o.match, REG_EXTENDED);
        if (rc != 0) {
            char msg[200];
            regerror(rc, &r->re, msg, sizeof msg);
            snprintf(err, errcap, "--match '%s': %s", r->o.match, msg);
            free(r);
            return -1;
        }
        r->have_re = true;
        if (r->re.re_nsub < 1) {
            snprintf(err, errcap, "--match '%s': needs one capture group, ( ), around the loss", r->o.match);
            regfree(&r->re);
            free(r);
            return -1;
        }
    }
    if (r->key[0]) {
        r->lock = 1;
        snprintf(r->lock_key, sizeof r->lock_key, "%s", r->key);
        snprintf(r->lock_name, sizeof r->lock_name, "%s", r->o.key);
    }
    if (r->o.column > 0) {
        r->lock = 2;
        snprintf(r->lock_name, sizeof r->lock_name, "column %d", r->o.column);
    }
    if (r->have_re)
        snprintf(r->lock_name, sizeof r->lock_name, "--match");
    *out = r;
    return 0;
}

void logread_free(logread *r)
{
    if (r == NULL)
        return;
    if (r->have_re)
        regfree(&r->re);
    free(r);
}

const char *logread_key(const logread *r)
{
    return r->lock_name[0] ? r->lock_name : NULL;
}

static void obs_init(logread_obs *ob, int64_t line)
{
    memset(ob, 0, sizeof *ob);
    ob->kind = LOGREAD_NONE;
    ob->loss = NAN;
    ob->step = -1;
    ob->lr = -1.0;
    ob->grad_norm = -1.0;
    ob->eval_loss = NAN;
    ob->line = line;
}

static const pair *find_role(const logread *r, int np, int role)
{
    for (int i = 0; i < np; i++)
        if (r->pairs[i].role == role)
            return &r->pairs[i];
    return NULL;
}

/* The step, lr, gradient norm, epoch and evaluation values of a line. */
static void fill_extras(const logread *r, int np, logread_obs *ob, double *epoch, bool *have_epoch)
{
    const pair *p = find_role(r, np, R_STEP);
    if (p != NULL && p->val >= 0 && p->val < 9007199254740992.0 && p->val == floor(p->val))
        ob->step = (int64_t)p->val;
    p = find_role(r, np, R_LR);
    if (p != NULL && p->val >= 0)
        ob->lr = p->val;
    p = find_role(r, np, R_GN);
    if (p != NULL && !(isfinite(p->val) && p->val < 0))
        ob->grad_norm = p->val;
    p = find_role(r, np, R_EVAL);
    if (p != NULL)
        ob->eval_loss = p->val;
    p = find_role(r, np, R_EPOCH);
    *have_epoch = p != NULL && isfinite(p->val);
    *epoch = *have_epoch ? p->val : 0.0;
}

/* Run boundaries and progress-bar averages for a training observation. */
static void finish_train(logread *r, logread_obs *ob, double epoch, bool have_epoch, const scan *sc)
{
    bool epoch_up = have_epoch && r->have_epoch && epoch > r->last_epoch;
    if (r->header_repeated) {
        ob->new_run = true;
        r->header_repeated = false;
    }
    if (have_epoch && r->have_epoch && epoch < r->last_epoch)
        ob->new_run = true;
    if (ob->step >= 0 && r->have_step && ob->step < r->last_step && !epoch_up)
        ob->new_run = true;
    if (ob->new_run)
        r->pb_have = false;
    if (ob->step >= 0) {
        r->have_step = true;
        r->last_step = ob->step;
    }
    if (have_epoch) {
        r->have_epoch = true;
        r->last_epoch = epoch;
    }
    if (epoch_up)
        r->pb_have = false;
    /* Keras shows the mean of the epoch so far: the mean of the batches since the last update is
       (m_k c_k - m_{k-1} c_{k-1}) / (c_k - c_{k-1}). */
    if (sc != NULL && (sc->progbar || sc->tqdm)) {
        double m = ob->loss;
        if (sc->progbar && r->pb_have && sc->count > r->pb_count && isfinite(m) && isfinite(r->pb_mean)) {
            double v = (m * (double)sc->count - r->pb_mean * (double)r->pb_count) / (double)(sc->count - r->pb_count);
            if (isfinite(v) && (v > 0.0 || !(m > 0.0)))
                ob->loss = v;
        }
        r->pb_have = true;
        r->pb_count = sc->count;
        r->pb_mean = m;
    }
}

static int emit_pending_first(logread *r, logread_obs out[2], const logread_obs *cur)
{
    int k = 0;
    if (r->pending) {
        out[k++] = r->pend;
        r->pending = false;
    }
    out[k++] = *cur;
    return k;
}

static void lock_key(logread *r, const char *key)
{
    r->lock = 1;
    snprintf(r->lock_key, sizeof r->lock_key, "%s", key);
    snprintf(r->lock_name, sizeof r->lock_name, "%s", key);
}

int logread_line(logread *r, const char *line, size_t len, logread_obs out[2])
{
    if (len > LOGREAD_MAX_LINE)
        len = LOGREAD_MAX_LINE;
    r->lineno++;
    logread_obs ob;
    obs_init(&ob, r->lineno);
    /* A NUL-free copy (the splitter drops NULs; direct callers may not). */
    size_t n = 0;
    if (memchr(line, '\0', len) == NULL) {
        memcpy(r->text, line, len);
        n = len;
    } else {
        for (size_t i = 0; i < len; i++)
            if (line[i] != '\0')
                r->text[n++] = line[i];
    }
    r->text[n] = '\0';
    const char *s = r->text;
    const char *b = s, *e = s + n;
    while (b < e && (*b == ' ' || *b == '\t' || *b == '\v' || *b == '\f'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\v' || e[-1] == '\f'))
        e--;
    if (b == e || *b == '#') {
        out[0] = ob;
        return 1;
    }
    scan sc;
    double epoch = 0.0;
    bool have_epoch = false;

    if (r->have_re) {
        regmatch_t mt[2];
        if (regexec(&r->re, s, 2, mt, 0) != 0 || mt[1].rm_so < 0) {
            ob.kind = LOGREAD_SKIP;
            ob.why = "does not match --match";
            out[0] = ob;
            return 1;
        }
        double v;
        sgd__str cap = {s + mt[1].rm_so, (size_t)(mt[1].rm_eo - mt[1].rm_so)};
        if (sgd__parse_double(cap, true, &v) != SGD_OK) {
            ob.kind = LOGREAD_SKIP;
            ob.why = "the --match capture is not a number";
            out[0] = ob;
            return 1;
        }
        scan_line(r, b, (size_t)(e - b), &sc);
        fill_extras(r, sc.npairs, &ob, &epoch, &have_epoch);
        ob.eval_loss = NAN;
        ob.kind = LOGREAD_TRAIN;
        ob.loss = v;
        finish_train(r, &ob, epoch, have_epoch, NULL);
        out[0] = ob;
        return 1;
    }

    if (r->o.column > 0) {
        /* Plain columns (whitespace or commas); a line of words before the data is a header. */
        const char *fp[MAX_FIELDS];
        size_t fl[MAX_FIELDS];
        char d = memchr(b, ',', (size_t)(e - b)) ? ',' : ' ';
        int k = split_fields(b, (size_t)(e - b), d, fp, fl, MAX_FIELDS);
        int want[4] = {r->o.column, r->o.grad_column, r->o.lr_column, r->o.step_column};
        double val[4] = {NAN, -1.0, -1.0, -1.0};
        for (int i = 0; i < 4; i++) {
            if (want[i] <= 0)
                continue;
            const char *after;
            if (want[i] > k || k > MAX_FIELDS) {
                ob.kind = is_alpha(*b) ? LOGREAD_HEADER : LOGREAD_SKIP;
                ob.why = "fewer columns than --column asks for";
                out[0] = ob;
                return 1;
            }
            const char *f = fp[want[i] - 1];
            size_t fn = fl[want[i] - 1];
            if (!(parse_num(f, f + fn, &val[i], &after) && after == f + fn)) {
                ob.kind = is_alpha(*b) && i == 0 ? LOGREAD_HEADER : LOGREAD_SKIP;
                ob.why = "the column is not a number";
                out[0] = ob;
                return 1;
            }
        }
        ob.kind = LOGREAD_TRAIN;
        ob.loss = val[0];
        if (r->o.grad_column > 0)
            ob.grad_norm = (isfinite(val[1]) && val[1] < 0) ? -1.0 : val[1];
        if (r->o.lr_column > 0 && val[2] >= 0)
            ob.lr = val[2];
        if (r->o.step_column > 0 && val[3] >= 0 && val[3] < 9007199254740992.0 && val[3] == floor(val[3]))
            ob.step = (int64_t)val[3];
        finish_train(r, &ob, 0.0, false, NULL);
        out[0] = ob;
        return 1;
    }

    /* Found by name. */
    int np = 0;
    if (r->have_header && header_row(r, b, (size_t)(e - b), &np)) {
        memset(&sc, 0, sizeof sc);
        sc.npairs = np;
        r->data_since_header = true;
    } else {
        scan_line(r, b, (size_t)(e - b), &sc);
        np = sc.npairs;
        if (np == 0 && sc.nnum == 0) {
            if (try_header(r, b, (size_t)(e - b))) {
                ob.kind = LOGREAD_HEADER;
                out[0] = ob;
                return 1;
            }
            ob.kind = LOGREAD_SKIP;
            ob.why = "no number on the line";
            out[0] = ob;
            return 1;
        }
        if (np == 0) {
            /* Bare numbers: one is the loss; of several, the last (a header names them otherwise). */
            if (sc.nwords > 0) {
                ob.kind = LOGREAD_SKIP;
                ob.why = "numbers without names among words";
                out[0] = ob;
                return 1;
            }
            if (r->lock == 1) {
                ob.kind = LOGREAD_SKIP;
                ob.why = "no training-loss field";
                out[0] = ob;
                return 1;
            }
            if (r->lock == 0) {
                r->lock = 2;
                snprintf(r->lock_name, sizeof r->lock_name, "%s", sc.nnum == 1 ? "the number" : "the last column");
            }
            ob.kind = LOGREAD_TRAIN;
            ob.loss = sc.last_num;
            finish_train(r, &ob, 0.0, false, NULL);
            return emit_pending_first(r, out, &ob);
        }
    }
    fill_extras(r, np, &ob, &epoch, &have_epoch);
    /* A new epoch (on any line, Keras's "Epoch 2/10" too) starts a new progress bar. */
    if (have_epoch && (!r->pb_epoch_have || epoch != r->pb_epoch)) {
        r->pb_have = false;
        r->pb_epoch_have = true;
        r->pb_epoch = epoch;
    }

    const pair *train = NULL;
    if (r->lock == 1) {
        for (int i = 0; i < np; i++)
            if (strcmp(r->pairs[i].key, r->lock_key) == 0) {
                train = &r->pairs[i];
                break;
            }
    } else if (r->lock == 0) {
        for (int i = 0; i < np; i++)
            if (r->pairs[i].role == R_TRAIN && (train == NULL || r->pairs[i].prio < train->prio))
                train = &r->pairs[i];
    }
    bool has_eval = find_role(r, np, R_EVAL) != NULL;
    /* A progress bar redrawn at the same count (Keras's last update again with the validation
       values, tqdm's refresh): not a new observation. */
    if (train != NULL && (sc.progbar || sc.tqdm) && r->pb_have && sc.count == r->pb_count) {
        ob.kind = has_eval ? LOGREAD_EVAL : LOGREAD_NONE;
        out[0] = ob;
        return 1;
    }
    if (train == NULL) {
        if (has_eval || sc.eval_mark) {
            /* An evaluation line: its loss (or first eval value) is reported apart. */
            const pair *l = NULL;
            for (int i = 0; i < np && l == NULL; i++)
                if (r->pairs[i].role == R_TRAIN || strcmp(r->pairs[i].key, "loss") == 0 ||
                    strstr(r->pairs[i].key, "loss") != NULL)
                    l = &r->pairs[i];
            if (!has_eval && l != NULL)
                ob.eval_loss = l->val;
            ob.kind = isnan(ob.eval_loss) ? LOGREAD_SKIP : LOGREAD_EVAL;
            ob.why = "an evaluation line without a loss";
            out[0] = ob;
            return 1;
        }
        ob.kind = LOGREAD_SKIP;
        ob.why = r->lock == 1 ? "no field of the training loss in use" : "no training loss on the line";
        out[0] = ob;
        return 1;
    }
    /* A line that says validation/test and whose loss is the bare "loss": an evaluation line
       (PyTorch examples' "Test set: Average loss: ...", mmdetection's "Epoch(val)"). */
    if (sc.eval_mark && strcmp(train->key, "loss") == 0 && !(r->key[0] && strcmp(r->key, "loss") == 0)) {
        ob.kind = LOGREAD_EVAL;
        if (isnan(ob.eval_loss))
            ob.eval_loss = train->val;
        out[0] = ob;
        return 1;
    }
    ob.kind = LOGREAD_TRAIN;
    ob.loss = train->val;
    char tkey[KEYLEN];
    memcpy(tkey, train->key, KEYLEN);
    if (r->lock == 0 && has_eval) {
        /* Training and validation losses on one line, before the log has shown its kind: hold it.
           If lines of training losses alone follow (nanoGPT: "step 250: train loss ..., val loss ..."
           between "iter N: loss ..." lines), it was an evaluation summary; otherwise it is the
           training observation of a per-epoch log. */
        if (r->pending) {
            if (strcmp(r->pend_key, tkey) == 0) {
                logread_obs first = r->pend;
                r->pending = false;
                lock_key(r, tkey);
                finish_train(r, &ob, epoch, have_epoch, &sc);
                out[0] = first;
                out[1] = ob;
                return 2;
            }
            r->pend.kind = LOGREAD_EVAL; /* a different key: the earlier one was a summary */
            out[0] = r->pend;
            r->pending = false;
            r->pend = ob;
            r->pending = true;
            snprintf(r->pend_key, sizeof r->pend_key, "%s", tkey);
            return 1;
        }
        /* The step bookkeeping is done when it is released. */
        finish_train(r, &ob, epoch, have_epoch, &sc);
        r->pend = ob;
        r->pending = true;
        snprintf(r->pend_key, sizeof r->pend_key, "%s", tkey);
        return 0;
    }
    if (r->lock == 0)
        lock_key(r, tkey);
    int k = 0;
    if (r->pending) {
        if (strcmp(r->pend_key, tkey) == 0) {
            out[k++] = r->pend;
        } else {
            out[k] = r->pend;
            out[k].kind = LOGREAD_EVAL;
            k++;
        }
        r->pending = false;
    }
    finish_train(r, &ob, epoch, have_epoch, &sc);
    out[k++] = ob;
    return k;
}

int logread_end(logread *r, logread_obs *out)
{
    if (!r->pending)
        return 0;
    r->pending = false;
    *out = r->pend;
    if (r->lock == 0)
        lock_key(r, r->pend_key);
    return 1;
}
