/*
 * libFuzzer harness for text corpora (sgd_text_from_memory), their
 * vocabulary and the char-rnn datasets (sgd_text_datasets).
 *
 * The first byte of the input chooses the unit (bit 0: bytes or UTF-8
 * characters), the sequence length (bits 1-3: 1 to 8) and the number of
 * streams (bits 4-6: 1 to 8); the rest is the text. Whatever is accepted is
 * checked: every token an id below the vocabulary's size, the symbols in
 * strictly increasing order, decoding the tokens gives back the input byte
 * for byte, encoding the input gives back the tokens, and the datasets'
 * rows are the documented slices of the tokens with the next token as
 * labels. Refusals must leave the out-parameters NULL and a message. A
 * broken invariant traps. replay.c runs the seed corpus in `meson test`.
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

static void check_datasets(const sgd_text *t, int64_t T, int64_t B)
{
    sgd_text_split_options o;
    sgd_text_split_options_init(&o);
    o.seq_len = T;
    o.streams = B;
    o.val_fraction = 0.25;
    sgd_dataset *tr = (sgd_dataset *)&o, *va = (sgd_dataset *)&o;
    sgd_status st = sgd_text_datasets(&tr, &va, t, &o);
    if (st != SGD_OK) {
        CHECK(tr == NULL && va == NULL);
        CHECK(st == SGD_EINVAL || st == SGD_ENOMEM);
        CHECK(sgd_error_last()[0] != '\0');
        return;
    }
    const int32_t *tok = sgd_text_tokens(t);
    int64_t n = sgd_text_length(t), n_val = (int64_t)((double)n * 0.25), n_train = n - n_val;
    int64_t per = (n_train - 1) / B, K = per / T;
    CHECK(sgd_dataset_size(tr) == K * B && sgd_dataset_dim(tr) == T && sgd_dataset_streams(tr) == B);
    CHECK(sgd_dataset_labels_per_row(tr) == T);
    CHECK(sgd_dataset_num_classes(tr) == sgd_vocab_size(sgd_text_vocab(t)));
    sgd_loader_options lo;
    sgd_loader_options_init(&lo);
    lo.shuffle = 0;
    sgd_loader *l;
    CHECK(sgd_loader_new(&l, tr, B, &lo) == SGD_OK);
    for (int64_t k = 0; k < K; k++) {
        sgd_batch b;
        CHECK(sgd_loader_next(l, &b) == SGD_OK && b.size == B);
        for (int64_t s = 0; s < B; s++)
            for (int64_t j = 0; j < T; j++) {
                int64_t src = s * per + k * T + j;
                CHECK(src + 1 < n_train);
                CHECK(b.x[s * T + j] == (float)tok[src] && b.labels[s * T + j] == tok[src + 1]);
            }
    }
    sgd_loader_free(l);
    CHECK(sgd_dataset_streams(va) >= 1 && sgd_dataset_streams(va) <= B);
    sgd_dataset_free(tr);
    sgd_dataset_free(va);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int32_t unit = (data[0] & 1) ? SGD_TEXT_BYTES : SGD_TEXT_UTF8;
    int64_t T = 1 + ((data[0] >> 1) & 7), B = 1 + ((data[0] >> 4) & 7);
    const uint8_t *text = data + 1;
    size_t len = size - 1;
    sgd_text_options o;
    sgd_text_options_init(&o);
    o.unit = unit;
    sgd_text *t = (sgd_text *)&o;
    sgd_error_clear();
    sgd_status st = sgd_text_from_memory(&t, text, len, &o, NULL);
    if (st != SGD_OK) {
        CHECK(t == NULL);
        CHECK(st == SGD_EFORMAT || st == SGD_ENOMEM);
        CHECK(unit == SGD_TEXT_UTF8 || len == 0);
        CHECK(sgd_error_last()[0] != '\0');
        return 0;
    }
    const sgd_vocab *v = sgd_text_vocab(t);
    int64_t n = sgd_text_length(t), V = sgd_vocab_size(v);
    const int32_t *tok = sgd_text_tokens(t);
    const uint32_t *sym = sgd_vocab_symbols(v);
    CHECK(n >= 1 && (size_t)n <= len && V >= 1 && V <= n);
    CHECK(sgd_text_bytes(t) == (int64_t)len && sgd_vocab_unit(v) == unit);
    if (unit == SGD_TEXT_BYTES)
        CHECK((size_t)n == len);
    for (int64_t i = 1; i < V; i++)
        CHECK(sym[i - 1] < sym[i]);
    for (int64_t i = 0; i < n; i++)
        CHECK(tok[i] >= 0 && tok[i] < V);
    /* decode(tokens) == text, encode(text) == tokens */
    size_t out_len;
    CHECK(sgd_vocab_decode(v, tok, (size_t)n, NULL, 0, &out_len) == SGD_OK && out_len == len);
    char *back = malloc(len + 1);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    if (back != NULL && ids != NULL) {
        CHECK(sgd_vocab_decode(v, tok, (size_t)n, back, len + 1, &out_len) == SGD_OK);
        CHECK(memcmp(back, text, len) == 0 && back[len] == '\0');
        size_t m;
        CHECK(sgd_vocab_encode(v, (const char *)text, len, ids, (size_t)n, &m) == SGD_OK && m == (size_t)n);
        CHECK(memcmp(ids, tok, (size_t)n * sizeof *ids) == 0);
    }
    free(back);
    free(ids);
    check_datasets(t, T, B);
    sgd_text_free(t);
    return 0;
}
