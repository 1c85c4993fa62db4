/*
 * libFuzzer harness for the optimizers: the textual spec (sgd_optim_new), and
 * then whatever the rest of the input says to do with the optimizer: steps on
 * raw float bytes (NaN, infinities, subnormals, huge values), parameter
 * groups, tensor boundaries, hyperparameters set by name (from a fixed list
 * and from the optimizer's own listing), gradient hygiene, state exported
 * and imported (also from raw bytes), the step counter, resets, and the
 * evaluation point (a step there is refused and changes nothing).
 *
 * Input: the spec up to the first '\n' (or the whole input), then control
 * bytes. Invariants checked (a broken one traps): a refused spec leaves the
 * out-parameter NULL and a message; every call returns a status code the
 * library defines, with a message when it fails; a skipped or refused step
 * changes neither the parameters nor the state, bit for bit; exported state
 * imports back unchanged; the step counter is never negative.
 * SPDX-License-Identifier: MIT
 */
#include "sgdlab/sgdlab.h"

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

#define MAX_N 67

typedef struct reader {
    const uint8_t *p, *end;
} reader;

static uint8_t byte(reader *r)
{
    return r->p < r->end ? *r->p++ : 0;
}

static float raw_float(reader *r)
{
    uint8_t b[4] = {byte(r), byte(r), byte(r), byte(r)};
    float f;
    memcpy(&f, b, sizeof f);
    return f;
}

/* Small, mostly sensible values, with the edges now and then. */
static double value(reader *r)
{
    static const double edges[] = {0.0, 1.0, -1.0, 0.5, 0.9, 0.999, 1e-8, 1e30, -0.0, 2.0};
    uint8_t k = byte(r);
    if (k < 10)
        return edges[k];
    if (k < 20)
        return (double)raw_float(r);
    return (double)(k - 20) / 64.0;
}

static void check_status(sgd_status st)
{
    CHECK(st <= 0 && st >= SGD_EINTERNAL && st != SGD_EINTERNAL);
    if (st != SGD_OK)
        CHECK(sgd_error_last()[0] != '\0');
}

/* All state arrays, concatenated (caller frees). */
static unsigned char *export_state(const sgd_optim *o, size_t *bytes)
{
    size_t total = 0, count = sgd_optim_state_count(o);
    for (size_t i = 0; i < count; i++) {
        int32_t type;
        size_t len;
        CHECK(sgd_optim_state_describe(o, i, NULL, &type, &len) == SGD_OK);
        total += len * (type == SGD_STATE_F32 ? 4 : 8);
    }
    unsigned char *blob = malloc(total ? total : 1), *p = blob;
    CHECK(blob != NULL);
    for (size_t i = 0; i < count; i++) {
        int32_t type;
        size_t len;
        sgd_optim_state_describe(o, i, NULL, &type, &len);
        size_t b = len * (type == SGD_STATE_F32 ? 4 : 8);
        CHECK(sgd_optim_state_export(o, i, p, b) == SGD_OK);
        p += b;
    }
    *bytes = total;
    return blob;
}

static const char *const hparams[] = {"lr", "weight_decay", "momentum", "dampening", "nesterov", "maximize",
                                      "lr_decay", "initial_accumulator_value", "eps", "alpha", "centered",
                                      "beta1", "beta2", "amsgrad", "betas", ""};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t spec_len = nl ? (size_t)(nl - data) : size;
    if (spec_len > 1024)
        return 0;
    char spec[1025];
    memcpy(spec, data, spec_len);
    spec[spec_len] = '\0';
    reader r = {nl ? nl + 1 : data + size, data + size};
    size_t n = byte(&r) % MAX_N;

    sgd_optim *o = (sgd_optim *)&r;
    sgd_status st = sgd_optim_new(&o, spec, n, NULL);
    check_status(st);
    if (st != SGD_OK) {
        CHECK(o == NULL);
        return 0;
    }
    CHECK(sgd_optim_size(o) == n);
    float params[MAX_N], grads[MAX_N], before[MAX_N];
    for (size_t i = 0; i < n; i++)
        params[i] = (float)value(&r), grads[i] = raw_float(&r);

    for (int ops = 0; r.p < r.end && ops < 200; ops++) {
        switch (byte(&r) % 11) {
        case 0:
        case 1: { /* a step */
            double lr = value(&r);
            size_t sb0;
            unsigned char *s0 = export_state(o, &sb0);
            memcpy(before, params, n * sizeof *params);
            sgd_optim_step_info info;
            sgd_optim_step_info_init(&info);
            st = sgd_optim_step(o, params, grads, lr, &info);
            check_status(st);
            if (st != SGD_OK || !info.applied) {
                size_t sb1;
                unsigned char *s1 = export_state(o, &sb1);
                CHECK(sb0 == sb1 && memcmp(s0, s1, sb0) == 0);
                CHECK(memcmp(before, params, n * sizeof *params) == 0);
                free(s1);
            }
            free(s0);
            if (byte(&r) & 1) /* new gradients now and then */
                for (size_t i = 0; i < n; i++)
                    grads[i] = byte(&r) & 1 ? raw_float(&r) : (float)value(&r);
            break;
        }
        case 2: { /* a group */
            size_t off = n ? byte(&r) % (n + 2) : byte(&r), cnt = byte(&r) % (n + 2);
            size_t idx;
            check_status(sgd_optim_add_group(o, off, cnt, value(&r), value(&r), &idx));
            break;
        }
        case 3: { /* a hyperparameter, from the list above or the optimizer's own listing */
            const char *name = hparams[byte(&r) % (sizeof hparams / sizeof hparams[0])];
            uint8_t pick = byte(&r);
            sgd_optim_hparam hp;
            sgd_optim_hparam_init(&hp);
            if (pick & 1) {
                CHECK(sgd_optim_hparam_describe(o, (size_t)(pick >> 1) % sgd_optim_hparam_count(o), &hp) == SGD_OK);
                CHECK(hp.name != NULL && sgd_optim_hparam_bounds(o, hp.name, &hp) == SGD_OK);
                name = hp.name;
            }
            double v = value(&r), got;
            st = sgd_optim_set(o, name, v);
            check_status(st);
            if (st == SGD_OK) {
                CHECK(sgd_optim_get(o, name, &got) == SGD_OK);
                CHECK(got == v || (v == 0 && got == 0));
            }
            break;
        }
        case 4: { /* hygiene */
            sgd_optim_hygiene h;
            sgd_optim_hygiene_init(&h);
            h.nonfinite = (int32_t)(byte(&r) % 4);
            h.clip_norm = value(&r);
            h.clip_value = value(&r);
            h.max_consecutive_skips = byte(&r) % 4;
            check_status(sgd_optim_set_hygiene(o, &h));
            break;
        }
        case 5: { /* export, import back: unchanged */
            size_t b0, b1;
            unsigned char *s0 = export_state(o, &b0), *p = s0;
            for (size_t i = 0; i < sgd_optim_state_count(o); i++) {
                int32_t type;
                size_t len;
                sgd_optim_state_describe(o, i, NULL, &type, &len);
                size_t b = len * (type == SGD_STATE_F32 ? 4 : 8);
                CHECK(sgd_optim_state_import(o, i, p, b) == SGD_OK);
                p += b;
            }
            unsigned char *s1 = export_state(o, &b1);
            CHECK(b0 == b1 && memcmp(s0, s1, b0) == 0);
            free(s0);
            free(s1);
            break;
        }
        case 6: { /* import raw bytes into one array */
            size_t count = sgd_optim_state_count(o), i = byte(&r) % (count + 1);
            unsigned char raw[MAX_N * 8];
            size_t want = 0;
            int32_t type = 0;
            size_t len = 0;
            if (sgd_optim_state_describe(o, i, NULL, &type, &len) == SGD_OK)
                want = len * (type == SGD_STATE_F32 ? 4 : 8);
            size_t give = byte(&r) & 1 ? want : byte(&r) % sizeof raw;
            if (give > sizeof raw)
                give = sizeof raw;
            for (size_t k = 0; k < give; k++)
                raw[k] = byte(&r);
            check_status(sgd_optim_state_import(o, i, raw, give));
            break;
        }
        case 7: { /* the step counter */
            int64_t s = (int64_t)byte(&r) - 8, got;
            check_status(sgd_optim_set_step(o, s));
            CHECK(sgd_optim_get_step(o, &got) == SGD_OK && got >= 0);
            break;
        }
        case 9: { /* tensor boundaries from the input (sizes adding up to n, or not) */
            size_t sizes[8], k = byte(&r) % 9, total = 0;
            for (size_t i = 0; i < k; i++)
                total += (sizes[i] = byte(&r) % (MAX_N + 1));
            if (byte(&r) & 1 && k > 0 && total <= n)
                sizes[k - 1] += n - total;
            check_status(sgd_optim_set_tensors(o, k ? sizes : NULL, k));
            break;
        }
        case 10: { /* to the evaluation point and back; a step there changes nothing */
            CHECK(sgd_optim_eval_point(o, params, 1) == SGD_OK);
            CHECK(sgd_optim_at_eval_point(o) == 1);
            memcpy(before, params, n * sizeof *params);
            CHECK(sgd_optim_step(o, params, grads, 0.1, NULL) == SGD_ESTATE);
            CHECK(memcmp(before, params, n * sizeof *params) == 0);
            CHECK(sgd_optim_eval_point(o, params, 0) == SGD_OK);
            CHECK(sgd_optim_at_eval_point(o) == 0);
            break;
        }
        default:
            check_status(sgd_optim_reset(o));
            break;
        }
    }
    sgd_optim_free(o);
    return 0;
}
