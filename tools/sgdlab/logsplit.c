/*
 * Splitting a byte stream into lines: "\n", "\r\n" and lone "\r" end lines;
 * a byte-order mark at the start, backspaces, NUL bytes and terminal escape
 * sequences are dropped; overlong lines are dropped whole. See logread.h.
 * SPDX-License-Identifier: MIT
 */
#include "logread.h"

#include <stdlib.h>
#include <string.h>

bool logsplit_init(logsplit *s)
{
    memset(s, 0, sizeof *s);
    s->buf = malloc(LOGREAD_MAX_LINE + 1);
    s->at_start = true;
    return s->buf != NULL;
}

void logsplit_free(logsplit *s)
{
    free(s->buf);
    s->buf = NULL;
}

void logsplit_restart(logsplit *s)
{
    s->len = 0;
    s->at_start = true;
    s->bom = 0;
    s->after_cr = false;
    s->too_long = false;
    s->esc = 0;
    s->line_nul = false;
}

static void deliver(logsplit *s, logsplit_fn fn, void *user)
{
    if (s->line_nul)
        s->nul_lines++;
    if (s->too_long) {
        s->long_lines++;
    } else {
        s->lines++;
        fn(s->buf, s->len, user);
    }
    s->len = 0;
    s->too_long = false;
    s->line_nul = false;
    s->esc = 0;
}

static void put(logsplit *s, char c)
{
    if (s->len < LOGREAD_MAX_LINE)
        s->buf[s->len++] = c;
    else
        s->too_long = true;
}

/* Bytes that end a line or are dropped. */
static const bool special[256] = {['\n'] = true, ['\r'] = true, ['\0'] = true, [0x1B] = true, ['\b'] = true};

void logsplit_feed(logsplit *s, const char *data, size_t n, logsplit_fn fn, void *user)
{
    static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        /* The common case: a run of ordinary bytes, copied at once. */
        if (!s->at_start && s->esc == 0 && !special[c]) {
            size_t j = i + 1;
            while (j < n && !special[(unsigned char)data[j]])
                j++;
            size_t run = j - i;
            if (s->len + run <= LOGREAD_MAX_LINE) {
                memcpy(s->buf + s->len, data + i, run);
                s->len += run;
            } else {
                s->too_long = true;
                s->len = LOGREAD_MAX_LINE;
            }
            s->after_cr = false;
            i = j - 1;
            continue;
        }
        if (s->at_start) {
            /* A byte-order mark, possibly split across calls. */
            if (c == bom[s->bom]) {
                if (++s->bom == 3) {
                    s->at_start = false;
                    s->bom = 0;
                }
                continue;
            }
            s->at_start = false;
            for (int k = 0; k < s->bom; k++)
                put(s, (char)bom[k]);
            s->bom = 0;
        }
        if (c == '\n') {
            if (s->after_cr) { /* the second half of "\r\n" */
                s->after_cr = false;
                continue;
            }
            deliver(s, fn, user);
            continue;
        }
        s->after_cr = false;
        if (c == '\r') {
            deliver(s, fn, user);
            s->after_cr = true;
            continue;
        }
        if (s->esc == 1) { /* after ESC: '[' starts a control sequence; anything else is one character */
            s->esc = c == '[' ? 2 : 0;
            continue;
        }
        if (s->esc == 2) { /* parameters until a final byte 0x40..0x7E */
            if (c >= 0x40 && c <= 0x7E)
                s->esc = 0;
            continue;
        }
        if (c == 0x1B) {
            s->esc = 1;
            continue;
        }
        if (c == '\b')
            continue;
        if (c == '\0') {
            s->line_nul = true;
            continue;
        }
        put(s, (char)c);
    }
}

void logsplit_end(logsplit *s, logsplit_fn fn, void *user)
{
    if (s->at_start && s->bom > 0) { /* an input shorter than a byte-order mark */
        for (int k = 0; k < s->bom; k++)
            put(s, (char)(k == 0 ? 0xEF : 0xBB));
        s->bom = 0;
    }
    if (s->len > 0 || s->too_long || s->line_nul)
        deliver(s, fn, user);
    s->after_cr = false;
}
