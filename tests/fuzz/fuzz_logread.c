/*
 * libFuzzer harness for the tool's log reader (tools/sgdlab/logsplit.c and
 * logread.c, behind `sgdlab monitor` and `sgdlab lr-find --from`): any bytes
 * in, never a crash.
 *
 * Input: the first byte picks the reader's options (found by name, --key,
 * --match, --column with gradient/lr/step columns) and the size of the chunks
 * the bytes are fed in; the rest is the log. Invariants checked (a broken one
 * traps): every line delivered is no longer than LOGREAD_MAX_LINE; a line
 * yields 0 to 2 observations of a defined kind; steps are -1 or more; line
 * numbers never go back; the end releases at most one held line.
 * SPDX-License-Identifier: MIT
 */
#include "logread.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                                       \
    do {                                                                                                               \
        if (!(x))                                                                                                      \
            __builtin_trap();                                                                                          \
    } while (0)

typedef struct state {
    logread *r;
    int64_t last_line;
    int64_t train;
} state;

static void check_obs(state *st, const logread_obs *ob)
{
    CHECK(ob->kind >= LOGREAD_NONE && ob->kind <= LOGREAD_HEADER);
    CHECK(ob->step >= -1);
    CHECK(ob->line >= 1);
    if (ob->kind == LOGREAD_SKIP)
        CHECK(ob->why != NULL);
    if (ob->kind == LOGREAD_TRAIN)
        st->train++;
}

static void on_line(const char *line, size_t len, void *user)
{
    state *st = user;
    CHECK(len <= LOGREAD_MAX_LINE);
    logread_obs ob[2];
    int n = logread_line(st->r, line, len, ob);
    CHECK(n >= 0 && n <= 2);
    for (int i = 0; i < n; i++) {
        check_obs(st, &ob[i]);
        /* a held line may come out one line late, never earlier than one already given */
        CHECK(ob[i].line >= st->last_line - 1 || ob[i].kind == LOGREAD_EVAL || ob[i].kind == LOGREAD_TRAIN);
    }
    if (n > 0 && ob[n - 1].line > st->last_line)
        st->last_line = ob[n - 1].line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t sel = size > 0 ? data[0] : 0;
    const char *log = size > 0 ? (const char *)data + 1 : (const char *)data;
    size_t n = size > 0 ? size - 1 : 0;
    logread_opts o;
    memset(&o, 0, sizeof o);
    switch (sel % 6) {
    case 1:
        o.key = "loss";
        o.step_key = "it";
        break;
    case 2:
        o.match = "loss[=: ]+([-+0-9.eEnaif]+)";
        break;
    case 3:
        o.column = 1 + (sel >> 3) % 4;
        o.grad_column = 2;
        o.lr_column = 3;
        o.step_column = 4;
        break;
    case 4:
        o.lr_key = "lr";
        o.gn_key = "norm";
        break;
    default:
        break;
    }
    state st = {NULL, 0, 0};
    char err[256];
    if (logread_new(&st.r, &o, err, sizeof err) != 0)
        __builtin_trap(); /* the options above are all valid */
    logsplit sp;
    if (!logsplit_init(&sp)) {
        logread_free(st.r);
        return 0;
    }
    size_t chunk = 1 + (size_t)(sel >> 5) * 37;
    for (size_t i = 0; i < n; i += chunk)
        logsplit_feed(&sp, log + i, n - i < chunk ? n - i : chunk, on_line, &st);
    logsplit_end(&sp, on_line, &st);
    logread_obs last;
    int k = logread_end(st.r, &last);
    CHECK(k == 0 || k == 1);
    if (k == 1)
        check_obs(&st, &last);
    CHECK(sp.lines + sp.long_lines >= 0);
    logsplit_free(&sp);
    logread_free(st.r);
    return 0;
}
