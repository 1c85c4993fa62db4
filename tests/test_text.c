/*
 * Text: corpora from memory and files (UTF-8 characters or bytes), the
 * vocabulary, the char-rnn datasets, generation, training a character model
 * through the trainer, allocation failures. SPDX-License-Identifier: MIT
 */
#include "util/sgdtest.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static sgd_text *from_string(const char *s, int32_t unit)
{
    sgd_text_options o;
    sgd_text_options_init(&o);
    o.unit = unit;
    sgd_text *t = NULL;
    sgdt_assert_status(sgd_text_from_memory(&t, s, strlen(s), &o, NULL), SGD_OK);
    return t;
}

/* ---------------------------------------------------------------- corpora */

static void test_memory(void **state)
{
    (void)state;
    /* "héllo, wörld" and a euro sign: 14 characters, 18 bytes. */
    static const char s[] = "h\xc3\xa9llo, w\xc3\xb6rld \xe2\x82\xac";
    sgd_text *t = from_string(s, SGD_TEXT_UTF8);
    assert_int_equal(sgd_text_length(t), 14);
    assert_int_equal(sgd_text_bytes(t), 18);
    assert_int_equal(sgd_text_num_files(t), 1);
    const sgd_vocab *v = sgd_text_vocab(t);
    assert_int_equal(sgd_vocab_unit(v), SGD_TEXT_UTF8);
    static const uint32_t want[] = {' ', ',', 'd', 'h', 'l', 'o', 'r', 'w', 0xe9, 0xf6, 0x20ac};
    assert_int_equal(sgd_vocab_size(v), 11);
    assert_memory_equal(sgd_vocab_symbols(v), want, sizeof want);
    const int32_t *tok = sgd_text_tokens(t);
    assert_int_equal(tok[0], 3);  /* h */
    assert_int_equal(tok[1], 8);  /* é */
    assert_int_equal(tok[13], 10); /* € */
    /* encode and decode are inverses */
    int32_t ids[32];
    size_t n, len;
    sgdt_assert_status(sgd_vocab_encode(v, s, strlen(s), ids, 32, &n), SGD_OK);
    assert_int_equal(n, 14);
    assert_memory_equal(ids, tok, 14 * sizeof *ids);
    char back[64];
    sgdt_assert_status(sgd_vocab_decode(v, ids, n, back, sizeof back, &len), SGD_OK);
    assert_int_equal(len, 18);
    assert_string_equal(back, s);
    sgdt_assert_status(sgd_vocab_decode(v, ids, n, back, 18, &len), SGD_ERANGE);
    sgdt_assert_status(sgd_vocab_decode(v, ids, n, NULL, 0, &len), SGD_OK);
    assert_int_equal(len, 18);
    sgdt_assert_status(sgd_vocab_encode(v, "hox", 3, ids, 32, &n), SGD_ENOTFOUND);
    sgdt_assert_error_contains("'x' (U+0078) at byte 2 is not in the vocabulary");
    sgdt_assert_status(sgd_vocab_encode(v, "hollo", 5, ids, 3, &n), SGD_ERANGE);
    assert_int_equal(n, 5);
    sgdt_assert_status(sgd_vocab_encode(v, "h\xc3", 2, ids, 3, &n), SGD_EFORMAT);
    ids[0] = 11;
    sgdt_assert_status(sgd_vocab_decode(v, ids, 1, back, sizeof back, &len), SGD_EINVAL);
    sgdt_assert_error_contains("ids[0]=11");
    /* The same text as bytes. */
    sgd_text *b = from_string(s, SGD_TEXT_BYTES);
    assert_int_equal(sgd_text_length(b), 18);
    assert_int_equal(sgd_vocab_unit(sgd_text_vocab(b)), SGD_TEXT_BYTES);
    assert_int_equal(sgd_vocab_equal(sgd_text_vocab(b), v), 0);
    assert_int_equal(sgd_vocab_equal(v, v), 1);
    sgd_vocab *c;
    sgdt_assert_status(sgd_vocab_copy(&c, v, NULL), SGD_OK);
    assert_int_equal(sgd_vocab_equal(c, v), 1);
    sgd_vocab_free(c);
    sgd_vocab_free((sgd_vocab *)(uintptr_t)v); /* a corpus's own: left alone */
    sgd_text_free(b);
    sgd_text_free(t);

    /* Invalid UTF-8, each kind, named with its offset; bytes mode takes anything. */
    static const struct {
        const char *s;
        size_t n;
        const char *needle;
    } bad[] = {
        {"ab\x80", 3, "byte 2 (0x80)"},         /* a stray continuation byte */
        {"a\xc3", 2, "byte 1 (0xc3)"},          /* truncated */
        {"a\xc0\xaf", 3, "byte 1 (0xc0)"},      /* overlong '/' */
        {"\xed\xa0\x80", 3, "byte 0 (0xed)"},   /* a surrogate */
        {"\xf4\x90\x80\x80", 4, "byte 0 (0xf4)"}, /* above U+10FFFF */
        {"\xff", 1, "byte 0 (0xff)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sgd_text *x = (sgd_text *)&t;
        sgdt_assert_status(sgd_text_from_memory(&x, bad[i].s, bad[i].n, NULL, NULL), SGD_EFORMAT);
        sgdt_assert_error_contains(bad[i].needle);
        sgdt_assert_error_contains("unit=2");
        assert_null(x);
        sgd_text_options o;
        sgd_text_options_init(&o);
        o.unit = SGD_TEXT_BYTES;
        sgdt_assert_status(sgd_text_from_memory(&x, bad[i].s, bad[i].n, &o, NULL), SGD_OK);
        sgd_text_free(x);
    }
    sgd_text *x;
    sgdt_assert_status(sgd_text_from_memory(&x, "", 0, NULL, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("empty");
    sgdt_assert_status(sgd_text_from_memory(&x, NULL, 3, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_text_from_memory(NULL, "a", 1, NULL, NULL), SGD_EINVAL);
    sgd_text_options o;
    sgd_text_options_init(&o);
    o.max_bytes = 4;
    sgdt_assert_status(sgd_text_from_memory(&x, "hello", 5, &o, NULL), SGD_EOVERFLOW);
    o.max_bytes = 0;
    sgdt_assert_status(sgd_text_from_memory(&x, "hello", 5, &o, NULL), SGD_EINVAL);
    sgd_text_options_init(&o);
    o.unit = 3;
    sgdt_assert_status(sgd_text_from_memory(&x, "hello", 5, &o, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("unit=3");

    /* Vocabularies from symbols (a checkpoint's). */
    sgd_vocab *nv;
    static const uint32_t ok[] = {'\n', 'a', 0x10FFFF};
    sgdt_assert_status(sgd_vocab_new(&nv, SGD_TEXT_UTF8, ok, 3, NULL), SGD_OK);
    assert_int_equal(sgd_vocab_size(nv), 3);
    sgd_vocab_free(nv);
    static const uint32_t unsorted[] = {'b', 'a'}, surrogate[] = {0xd800}, big[] = {300};
    sgdt_assert_status(sgd_vocab_new(&nv, SGD_TEXT_UTF8, unsorted, 2, NULL), SGD_EINVAL);
    sgdt_assert_error_contains("strictly increasing");
    sgdt_assert_status(sgd_vocab_new(&nv, SGD_TEXT_UTF8, surrogate, 1, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_vocab_new(&nv, SGD_TEXT_BYTES, big, 1, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_vocab_new(&nv, SGD_TEXT_BYTES, big, 0, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_vocab_new(&nv, 0, ok, 3, NULL), SGD_EINVAL);
    assert_null(nv);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/sgdt-text-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[4][300];
    snprintf(p[0], sizeof p[0], "%s/b", dir);
    snprintf(p[1], sizeof p[1], "%s/a", dir);
    snprintf(p[2], sizeof p[2], "%s/a.dat", dir);
    snprintf(p[3], sizeof p[3], "%s/.hidden", dir);
    write_file(p[0], "world\n");
    write_file(p[1], "hello ");
    write_file(p[2], "\x01\x02\x03");
    write_file(p[3], "secret");
    char link[300], sub[300];
    snprintf(link, sizeof link, "%s/a.u8", dir);
    assert_int_equal(symlink("a", link), 0);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    /* The directory: a then b, without a.dat, the link, the hidden file or the subdirectory. */
    const char *paths[] = {dir};
    sgd_text *t;
    sgdt_assert_status(sgd_text_load(&t, paths, 1, NULL, NULL), SGD_OK);
    assert_int_equal(sgd_text_num_files(t), 2);
    assert_int_equal(sgd_text_length(t), 12);
    char back[64];
    size_t len;
    sgdt_assert_status(sgd_vocab_decode(sgd_text_vocab(t), sgd_text_tokens(t), 12, back, sizeof back, &len), SGD_OK);
    assert_string_equal(back, "hello world\n");
    sgd_text_free(t);
    /* Files by name, in the order given. */
    const char *two[] = {p[0], p[1]};
    sgdt_assert_status(sgd_text_load(&t, two, 2, NULL, NULL), SGD_OK);
    sgdt_assert_status(sgd_vocab_decode(sgd_text_vocab(t), sgd_text_tokens(t), 12, back, sizeof back, &len), SGD_OK);
    assert_string_equal(back, "world\nhello ");
    sgd_text_free(t);
    /* Errors name the file. */
    write_file(p[1], "bad \xff here");
    sgdt_assert_status(sgd_text_load(&t, paths, 1, NULL, NULL), SGD_EFORMAT);
    sgdt_assert_error_contains("/a: byte 4 (0xff)");
    char missing[300];
    snprintf(missing, sizeof missing, "%s/none", dir);
    const char *m[] = {missing};
    sgdt_assert_status(sgd_text_load(&t, m, 1, NULL, NULL), SGD_EIO);
    sgdt_assert_error_contains("none");
    const char *s[] = {sub};
    sgdt_assert_status(sgd_text_load(&t, s, 1, NULL, NULL), SGD_EIO);
    sgdt_assert_error_contains("no text files");
    sgd_text_options o;
    sgd_text_options_init(&o);
    o.max_bytes = 8;
    sgdt_assert_status(sgd_text_load(&t, two, 2, &o, NULL), SGD_EOVERFLOW);
    sgdt_assert_error_contains("max_bytes=8");
    const char *nul[] = {NULL};
    sgdt_assert_status(sgd_text_load(&t, nul, 1, NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_text_load(&t, two, 0, NULL, NULL), SGD_EINVAL);
    for (int i = 0; i < 4; i++)
        unlink(p[i]);
    unlink(link);
    rmdir(sub);
    rmdir(dir);
    /* The committed sample of the fortunes corpus. */
    const char *f[] = {sgdt_data_path("text/fortunes")};
    sgdt_assert_status(sgd_text_load(&t, f, 1, NULL, NULL), SGD_OK);
    assert_true(sgd_text_length(t) > 20000);
    assert_true(sgd_vocab_size(sgd_text_vocab(t)) > 60 && sgd_vocab_size(sgd_text_vocab(t)) < 100);
    sgd_text_free(t);
}

/* ---------------------------------------------------------------- the char-rnn layout */

static void test_datasets(void **state)
{
    (void)state;
    /* 101 tokens "0123456789" repeated: val the last 10%, streams of the rest. */
    char s[102];
    for (int i = 0; i < 101; i++)
        s[i] = (char)('0' + i % 10);
    s[101] = '\0';
    sgd_text *t = from_string(s, SGD_TEXT_UTF8);
    sgd_text_split_options o;
    sgd_text_split_options_init(&o);
    assert_int_equal(o.seq_len, 100);
    assert_int_equal(o.streams, 32);
    o.seq_len = 4;
    o.streams = 3;
    o.val_fraction = 0.1;
    sgd_dataset *tr, *va;
    sgdt_assert_status(sgd_text_datasets(&tr, &va, t, &o), SGD_OK);
    /* train: 91 tokens, 90 pairs, streams of 30, 7 sequences of 4 each. */
    assert_int_equal(sgd_dataset_size(tr), 7 * 3);
    assert_int_equal(sgd_dataset_dim(tr), 4);
    assert_int_equal(sgd_dataset_labels_per_row(tr), 4);
    assert_int_equal(sgd_dataset_streams(tr), 3);
    assert_int_equal(sgd_dataset_num_classes(tr), 10);
    const int32_t *tok = sgd_text_tokens(t);
    for (int64_t k = 0; k < 7; k++)
        for (int64_t b = 0; b < 3; b++) {
            const float *x;
            sgdt_assert_status(sgd_dataset_row(tr, k * 3 + b, &x, NULL, NULL), SGD_OK);
            for (int j = 0; j < 4; j++)
                assert_true(x[j] == (float)tok[b * 30 + k * 4 + j]);
        }
    /* Labels: the next token at every position (through a loader: B rows per batch, in order). */
    sgd_loader_options lo;
    sgd_loader_options_init(&lo);
    lo.shuffle = 0;
    sgd_loader *ld;
    sgdt_assert_status(sgd_loader_new(&ld, tr, 3, &lo), SGD_OK);
    sgd_batch bt;
    sgdt_assert_status(sgd_loader_next(ld, &bt), SGD_OK);
    sgdt_assert_status(sgd_loader_next(ld, &bt), SGD_OK); /* sequence 1 of each stream */
    for (int b = 0; b < 3; b++)
        for (int j = 0; j < 4; j++) {
            assert_true(bt.x[b * 4 + j] == (float)tok[b * 30 + 4 + j]);
            assert_int_equal(bt.labels[b * 4 + j], tok[b * 30 + 4 + j + 1]);
        }
    sgd_loader_free(ld);
    /* val: the last 10 tokens, 9 pairs: as many streams as fit (2 of 4). */
    assert_int_equal(sgd_dataset_streams(va), 2);
    assert_int_equal(sgd_dataset_size(va), 2);
    const float *x;
    sgdt_assert_status(sgd_dataset_row(va, 1, &x, NULL, NULL), SGD_OK);
    assert_true(x[0] == (float)tok[91 + 4]);
    sgd_dataset_free(tr);
    sgd_dataset_free(va);
    /* No validation part. */
    o.val_fraction = 0;
    sgdt_assert_status(sgd_text_datasets(&tr, NULL, t, &o), SGD_OK);
    assert_int_equal(sgd_dataset_size(tr), 8 * 3); /* 100 pairs, 33 per stream */
    sgd_dataset_free(tr);
    /* Too short, bad options. */
    o.seq_len = 40;
    sgdt_assert_status(sgd_text_datasets(&tr, NULL, t, &o), SGD_EINVAL);
    sgdt_assert_error_contains("need at least 121");
    assert_null(tr);
    sgd_text_split_options_init(&o);
    o.seq_len = 4;
    o.streams = 3;
    o.val_fraction = 0.6;
    sgdt_assert_status(sgd_text_datasets(&tr, &va, t, &o), SGD_EINVAL);
    o.val_fraction = 0.01; /* one token: no pair */
    sgdt_assert_status(sgd_text_datasets(&tr, &va, t, &o), SGD_EINVAL);
    sgdt_assert_error_contains("validation text");
    o.val_fraction = 0.1;
    o.val_streams = 5;
    sgdt_assert_status(sgd_text_datasets(&tr, &va, t, &o), SGD_EINVAL);
    sgdt_assert_status(sgd_text_datasets(&tr, NULL, t, &o), SGD_EINVAL);
    o.val_streams = 0;
    o.streams = 0;
    sgdt_assert_status(sgd_text_datasets(&tr, &va, t, &o), SGD_EINVAL);
    sgdt_assert_status(sgd_text_datasets(&tr, &va, NULL, &o), SGD_EINVAL);
    sgd_text_free(t);
}

/* ---------------------------------------------------------------- training and generation */

/* Trains a small LSTM on a short repeated text through the trainer; returns it built and trained. */
static sgd_model *train_small(const sgd_text *t, double *val_loss)
{
    sgd_text_split_options so;
    sgd_text_split_options_init(&so);
    so.seq_len = 16;
    so.streams = 4;
    so.val_fraction = 0.1;
    sgd_dataset *tr, *va;
    sgdt_assert_status(sgd_text_datasets(&tr, &va, t, &so), SGD_OK);
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.max_batch = 4;
    mo.seed = 1;
    char spec[128];
    snprintf(spec, sizeof spec, "tokens-embedding(8)-lstm(32)-dense(vocab):vocab=%lld,seq_len=%lld",
             (long long)sgd_vocab_size(sgd_text_vocab(t)), (long long)so.seq_len);
    sgd_model *m;
    sgdt_assert_status(sgd_model_from_spec(&m, spec, &mo, NULL), SGD_OK);
    sgd_optim *o;
    sgdt_assert_status(sgd_optim_new(&o, "adam:lr=0.01", sgd_model_num_params(m), NULL), SGD_OK);
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    to.shuffle = 0;
    to.batch_size = 4;
    to.epochs = 6;
    /*
     * A text this repetitive is learnt to a loss near 0 within two epochs;
     * the first batch of the next epoch starts every stream from a zero
     * state again, and its loss, several times the smoothed one, is a spike
     * to the monitor. The guard would roll it back again and again: off.
     */
    to.guard = 0;
    sgd_trainer *tt;
    sgdt_assert_status(sgd_trainer_new(&tt, m, o, NULL, NULL, tr, va, &to, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(tt, 0), SGD_OK);
    sgd_trainer_epoch e;
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    sgdt_assert_status(sgd_trainer_get_epoch(tt, 5, &e), SGD_OK);
    *val_loss = e.val_loss;
    sgd_trainer_free(tt);
    sgd_optim_free(o);
    sgd_dataset_free(tr);
    sgd_dataset_free(va);
    return m;
}

static void test_generate(void **state)
{
    (void)state;
    char s[4001];
    static const char phrase[] = "the cat sat on the mat. ";
    for (int i = 0; i < 4000; i++)
        s[i] = phrase[i % (sizeof phrase - 1)];
    s[4000] = '\0';
    sgd_text *t = from_string(s, SGD_TEXT_UTF8);
    const sgd_vocab *v = sgd_text_vocab(t);
    double vl;
    sgd_model *m = train_small(t, &vl);
    print_message("generate: validation loss %.4f nats (%.3f bits per character) after 6 epochs\n", vl,
                  vl / log(2.0));
    assert_true(vl < 0.3);
    /* Greedy from a prime continues the phrase. */
    sgd_generate_options g;
    sgd_generate_options_init(&g);
    g.prime = "the cat ";
    g.length = 40;
    g.temperature = 0;
    char out[256];
    size_t len;
    size_t sb = sgd_model_state_size(m);
    float *before = malloc(sb), *after = malloc(sb);
    assert_true(before && after);
    sgdt_assert_status(sgd_model_get_state(m, before, sb), SGD_OK);
    sgdt_assert_status(sgd_text_generate(m, v, &g, out, sizeof out, &len), SGD_OK);
    print_message("generate: \"%s\" -> \"%s\"\n", g.prime, out);
    assert_int_equal(len, 40);
    assert_memory_equal(out, "sat on the mat. the cat sat on the mat. ", 40);
    /* The model is as it was. */
    assert_int_equal(sgd_model_seq_len(m), 16);
    assert_int_equal(sgd_model_is_training(m), 1);
    sgdt_assert_status(sgd_model_get_state(m, after, sb), SGD_OK);
    assert_memory_equal(before, after, sb);
    /* Sampling: the same seed, the same text; another seed, another text. */
    g.prime = NULL;
    g.temperature = 1.5;
    g.length = 120;
    g.seed = 7;
    char a[512], b[512], c[512];
    sgdt_assert_status(sgd_text_generate(m, v, &g, a, sizeof a, &len), SGD_OK);
    sgdt_assert_status(sgd_text_generate(m, v, &g, b, sizeof b, &len), SGD_OK);
    assert_string_equal(a, b);
    g.seed = 8;
    sgdt_assert_status(sgd_text_generate(m, v, &g, c, sizeof c, &len), SGD_OK);
    assert_true(strcmp(a, c) != 0);
    assert_true(sgd_text_generate_bound(v, 120) == 481);
    /* Errors. */
    g.length = 10;
    sgdt_assert_status(sgd_text_generate(m, v, &g, a, 5, &len), SGD_ERANGE);
    assert_int_equal(sgd_model_seq_len(m), 16);
    g.prime = "dog";
    sgdt_assert_status(sgd_text_generate(m, v, &g, a, sizeof a, &len), SGD_ENOTFOUND);
    sgdt_assert_error_contains("prime");
    sgdt_assert_error_contains("'d' (U+0064)");
    g.prime = NULL;
    g.temperature = -1;
    sgdt_assert_status(sgd_text_generate(m, v, &g, a, sizeof a, &len), SGD_EINVAL);
    g.temperature = 1;
    sgd_text *other = from_string("abc", SGD_TEXT_UTF8);
    sgdt_assert_status(sgd_text_generate(m, sgd_text_vocab(other), &g, a, sizeof a, &len), SGD_EINVAL);
    sgdt_assert_error_contains("outputs per position, the vocabulary 3 symbols");
    sgd_model *mlp;
    sgdt_assert_status(sgd_model_from_spec(&mlp, "4-3-2", NULL, NULL), SGD_OK);
    sgdt_assert_status(sgd_text_generate(mlp, v, &g, a, sizeof a, &len), SGD_EINVAL);
    sgdt_assert_error_contains("not a language model");
    sgd_model_free(mlp);
    sgd_text_free(other);
    free(before);
    free(after);
    sgd_model_free(m);
    sgd_text_free(t);
}

/* ---------------------------------------------------------------- the trainer and checkpoints */

typedef struct run {
    sgd_text *text;
    sgd_dataset *tr, *va;
    sgd_model *m;
    sgd_optim *o;
    sgd_sched *s;
    sgd_trainer *t;
} run;

static void run_open(run *r, int64_t epochs, int32_t guard)
{
    memset(r, 0, sizeof *r);
    const char *f[] = {sgdt_data_path("text/fortunes")};
    sgd_text_options to;
    sgd_text_options_init(&to);
    to.max_bytes = 1 << 20;
    sgdt_assert_status(sgd_text_load(&r->text, f, 1, &to, NULL), SGD_OK);
    sgd_text_split_options so;
    sgd_text_split_options_init(&so);
    so.seq_len = 25;
    so.streams = 8;
    so.val_fraction = 0.1;
    sgdt_assert_status(sgd_text_datasets(&r->tr, &r->va, r->text, &so), SGD_OK);
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.seed = 3;
    mo.max_batch = 8;
    char spec[128];
    snprintf(spec, sizeof spec, "tokens(25)-embedding(8)-lstm(24)-dense(vocab):vocab=%lld",
             (long long)sgd_vocab_size(sgd_text_vocab(r->text)));
    sgdt_assert_status(sgd_model_from_spec(&r->m, spec, &mo, NULL), SGD_OK);
    sgdt_assert_status(sgd_optim_new(&r->o, "adam:lr=0.005", sgd_model_num_params(r->m), NULL), SGD_OK);
    sgdt_assert_status(sgd_sched_new(&r->s, "cosine:T_max=200", 0.005, NULL), SGD_OK);
    sgd_trainer_options o;
    sgd_trainer_options_init(&o);
    o.shuffle = 0;
    o.batch_size = 8;
    o.epochs = epochs;
    o.guard = guard;
    o.guard_interval = 10;
    o.clip_norm = 1.0;
    sgdt_assert_status(sgd_trainer_new(&r->t, r->m, r->o, r->s, NULL, r->tr, r->va, &o, NULL), SGD_OK);
}

static void run_close(run *r)
{
    sgd_trainer_free(r->t);
    sgd_sched_free(r->s);
    sgd_optim_free(r->o);
    sgd_model_free(r->m);
    sgd_dataset_free(r->tr);
    sgd_dataset_free(r->va);
    sgd_text_free(r->text);
}

/* A text run saved in the middle of an epoch resumes bit for bit, hidden state included. */
static void test_resume_mid_epoch(void **state)
{
    (void)state;
    run a, b;
    run_open(&a, 2, 1);
    int64_t nb = sgd_dataset_size(a.tr) / 8;
    sgdt_assert_status(sgd_trainer_fit(a.t, 0), SGD_OK);
    run_open(&b, 2, 1);
    int64_t k = nb + nb / 2; /* the middle of the second epoch */
    sgdt_assert_status(sgd_trainer_fit(b.t, k), SGD_OK);
    char path[] = "/tmp/sgdt-text-ckpt-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    sgd_checkpoint_parts parts;
    sgd_checkpoint_parts_init(&parts);
    parts.trainer = b.t;
    sgd_ckpt_writer *w;
    sgdt_assert_status(sgd_ckpt_writer_new(&w, NULL), SGD_OK);
    sgdt_assert_status(sgd_checkpoint_add(w, &parts), SGD_OK);
    sgdt_assert_status(sgd_checkpoint_add_vocab(w, sgd_text_vocab(b.text)), SGD_OK);
    sgdt_assert_status(sgd_checkpoint_add_vocab(w, sgd_text_vocab(b.text)), SGD_EINVAL); /* one section of a name */
    sgdt_assert_status(sgd_ckpt_writer_save(w, path), SGD_OK);
    sgd_ckpt_writer_free(w);
    size_t sb = sgd_model_state_size(b.m);
    float *st = malloc(sb);
    assert_non_null(st);
    sgdt_assert_status(sgd_model_get_state(b.m, st, sb), SGD_OK);
    bool nonzero = false;
    for (size_t i = 0; i < sb / sizeof(float); i++)
        nonzero = nonzero || st[i] != 0.0f;
    assert_true(nonzero); /* mid-epoch: the carried state matters */
    run_close(&b);
    run c;
    run_open(&c, 2, 1);
    parts.trainer = c.t;
    sgdt_assert_status(sgd_checkpoint_load(path, &parts, NULL), SGD_OK);
    float *st2 = malloc(sb);
    assert_non_null(st2);
    sgdt_assert_status(sgd_model_get_state(c.m, st2, sb), SGD_OK);
    assert_memory_equal(st, st2, sb);
    sgdt_assert_status(sgd_trainer_fit(c.t, 0), SGD_OK);
    size_t n = sgd_model_num_params(a.m);
    assert_memory_equal(sgd_model_params(a.m), sgd_model_params(c.m), n * sizeof(float));
    sgd_trainer_epoch ea, ec;
    memset(&ea, 0, sizeof ea);
    ea.struct_size = ec.struct_size = sizeof ea;
    sgdt_assert_status(sgd_trainer_get_epoch(a.t, 1, &ea), SGD_OK);
    sgdt_assert_status(sgd_trainer_get_epoch(c.t, 1, &ec), SGD_OK);
    assert_true(ea.val_loss == ec.val_loss && ea.train_loss == ec.train_loss);
    assert_true(fabs(ea.val_bpc - ea.val_loss / log(2.0)) < 1e-12);
    assert_true(fabs(ea.val_perplexity - exp(ea.val_loss)) < 1e-9 * ea.val_perplexity);
    print_message("resume: bit for bit after a save at step %lld of %lld; validation %.3f bits per character\n",
                  (long long)k, (long long)(2 * nb), ea.val_bpc);
    /* The checkpoint carries the vocabulary; another vocabulary is refused. */
    sgd_ckpt_reader *rd;
    sgdt_assert_status(sgd_ckpt_reader_open(&rd, path, NULL), SGD_OK);
    sgd_vocab *v;
    sgdt_assert_status(sgd_checkpoint_load_vocab(&v, rd, NULL), SGD_OK);
    assert_int_equal(sgd_vocab_equal(v, sgd_text_vocab(c.text)), 1);
    sgd_vocab_free(v);
    sgd_model *lm;
    sgdt_assert_status(sgd_checkpoint_load_model(&lm, rd, NULL, NULL), SGD_OK);
    assert_int_equal(sgd_model_max_batch(lm), 8); /* the state's rows, from the checkpoint */
    sgd_model_free(lm);
    sgdt_assert_status(sgd_checkpoint_check_vocab(rd, sgd_text_vocab(c.text)), SGD_OK);
    sgd_text *other = from_string("abc", SGD_TEXT_UTF8);
    sgdt_assert_status(sgd_checkpoint_check_vocab(rd, sgd_text_vocab(other)), SGD_EFORMAT);
    sgdt_assert_error_contains("vocabulary (80 symbols) is not this data's (3 symbols)");
    sgd_text_free(other);
    sgd_ckpt_reader_free(rd);
    unlink(path);
    free(st);
    free(st2);
    run_close(&a);
    run_close(&c);
}

/* NaN in the middle of an epoch: the guard rolls back the parameters and the carried state, and the run ends well. */
typedef struct poisoner {
    float *w; /* a weight every step of every stream reads: W_hh */
    bool done;
    int64_t restored; /* the step the rollback returned to */
} poisoner;

static int32_t on_rescue(const sgd_trainer_event *ev, double *scale, void *user)
{
    (void)scale;
    if (ev->kind == SGD_TRAINER_EVENT_RESCUE)
        ((poisoner *)user)->restored = ev->restored_step;
    return ev->action;
}

static int32_t poison(const sgd_trainer_progress *p, void *user)
{
    poisoner *z = user;
    if (!z->done && p->phase == SGD_TRAINER_PHASE_STEP && p->step == 40) { /* reports come every 10 steps */
        z->w[0] = NAN; /* the next step's loss is NaN, and so is the state it leaves */
        z->done = true;
    }
    return 0;
}

static void test_guard_restores_state(void **state)
{
    (void)state;
    run r;
    run_open(&r, 1, 1);
    size_t wi;
    sgdt_assert_status(sgd_model_find_param(r.m, "1.weight_hh_l0", &wi), SGD_OK);
    sgd_param_info pi;
    memset(&pi, 0, sizeof pi);
    pi.struct_size = sizeof pi;
    sgdt_assert_status(sgd_model_param_info(r.m, wi, &pi), SGD_OK);
    poisoner z = {sgd_model_params(r.m) + pi.offset, false, -1};
    sgdt_assert_status(sgd_trainer_set_progress(r.t, poison, &z), SGD_OK);
    sgdt_assert_status(sgd_trainer_set_event_callback(r.t, on_rescue, &z), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(r.t, 0), SGD_OK);
    sgd_trainer_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    sgdt_assert_status(sgd_trainer_get_stats(r.t, &s), SGD_OK);
    assert_int_equal(s.rollbacks, 1);
    print_message("guard: NaN at step 41, rolled back to step %lld\n", (long long)z.restored);
    assert_true(z.restored > 0); /* mid-epoch: the state at that step, not a reset one */
    assert_true(isfinite(s.last_loss));
    size_t sb = sgd_model_state_size(r.m);
    float *st = malloc(sb);
    assert_non_null(st);
    sgdt_assert_status(sgd_model_get_state(r.m, st, sb), SGD_OK);
    for (size_t i = 0; i < sb / sizeof(float); i++)
        assert_true(isfinite(st[i]));
    free(st);
    run_close(&r);
}

/* ---------------------------------------------------------------- allocation failures */

static sgd_status scenario(sgdt_alloc *t, void *ctx)
{
    (void)ctx;
    static const char s[] = "ab\xc3\xa9 cd ab\xc3\xa9 cd ab\xc3\xa9 cd ab\xc3\xa9 cd ab\xc3\xa9 cd";
    sgd_text *text = NULL;
    sgd_dataset *tr = NULL, *va = NULL;
    sgd_model *m = NULL;
    sgd_vocab *v = NULL;
    sgd_status st = sgd_text_from_memory(&text, s, sizeof s - 1, NULL, &t->base);
    sgd_text_split_options so;
    sgd_text_split_options_init(&so);
    so.seq_len = 3;
    so.streams = 2;
    so.val_fraction = 0.25;
    if (st == SGD_OK)
        st = sgd_text_datasets(&tr, &va, text, &so);
    if (st == SGD_OK)
        st = sgd_vocab_copy(&v, sgd_text_vocab(text), &t->base);
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.max_batch = 2;
    char spec[128];
    snprintf(spec, sizeof spec, "tokens(3)-embedding(3)-gru(4)-dense(vocab):vocab=%lld",
             (long long)sgd_vocab_size(sgd_text_vocab(text)));
    if (st == SGD_OK)
        st = sgd_model_from_spec(&m, spec, &mo, &t->base);
    sgd_generate_options g;
    sgd_generate_options_init(&g);
    g.prime = "ab";
    g.length = 5;
    char out[64];
    if (st == SGD_OK)
        st = sgd_text_generate(m, v, &g, out, sizeof out, NULL);
    if (st != SGD_OK && m != NULL && sgd_model_seq_len(m) != 3)
        fail_msg("generation failed and left the model at length %lld", (long long)sgd_model_seq_len(m));
    sgd_model_free(m);
    sgd_vocab_free(v);
    sgd_dataset_free(tr);
    sgd_dataset_free(va);
    sgd_text_free(text);
    return st;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    long n = sgdt_walk_alloc_failures(scenario, NULL);
    assert_true(n >= 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory),       cmocka_unit_test(test_files),    cmocka_unit_test(test_datasets),
        cmocka_unit_test(test_generate),     cmocka_unit_test(test_resume_mid_epoch),
        cmocka_unit_test(test_guard_restores_state), cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
