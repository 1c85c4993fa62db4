/*
 * Tests of the tool's log reader (tools/sgdlab/logsplit.c, logread.c): line
 * endings and bytes, each form of a field, evaluation lines, held lines,
 * runs, progress bars, headers, --match and columns. The corpus of real-format
 * logs is tests/test_log_corpus.py; any bytes at all: tests/fuzz/fuzz_logread.c.
 * SPDX-License-Identifier: MIT
 */
#include "util/sgdtest.h"

#include "logread.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ splitting */

typedef struct lines {
    int n;
    char text[16][128];
    size_t len[16];
} lines;

static void collect(const char *line, size_t len, void *user)
{
    lines *l = user;
    if (l->n < 16) {
        size_t k = len < 127 ? len : 127;
        memcpy(l->text[l->n], line, k);
        l->text[l->n][k] = '\0';
        l->len[l->n] = len;
        l->n++;
    }
}

static void split(const char *data, size_t n, size_t chunk, lines *out, logsplit *sp)
{
    memset(out, 0, sizeof *out);
    assert_true(logsplit_init(sp));
    for (size_t i = 0; i < n; i += chunk)
        logsplit_feed(sp, data + i, n - i < chunk ? n - i : chunk, collect, out);
    logsplit_end(sp, collect, out);
}

static void test_split(void **state)
{
    (void)state;
    lines l;
    logsplit sp;
    /* CR-only, LF, CRLF, and a last line without an end; byte by byte or at once, the same. */
    static const char mixed[] = "1\r2\n3\r\n4";
    for (size_t chunk = 1; chunk <= sizeof mixed; chunk++) {
        split(mixed, sizeof mixed - 1, chunk, &l, &sp);
        assert_int_equal(l.n, 4);
        assert_string_equal(l.text[0], "1");
        assert_string_equal(l.text[1], "2");
        assert_string_equal(l.text[2], "3");
        assert_string_equal(l.text[3], "4");
        logsplit_free(&sp);
    }
    /* A byte-order mark, split across calls; one that is not complete stays text. */
    static const char bom[] = "\xef\xbb\xbf" "2.5\n";
    split(bom, sizeof bom - 1, 1, &l, &sp);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.text[0], "2.5");
    logsplit_free(&sp);
    split("\xef\xbbx\n", 4, 2, &l, &sp);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.len[0], 3);
    logsplit_free(&sp);
    /* NUL bytes dropped and counted; backspaces and escape sequences dropped. */
    static const char nul[] = "2.\0" "5\n\x1b[32mloss: 1\x1b[0m\b\b\n";
    split(nul, sizeof nul - 1, 3, &l, &sp);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.text[0], "2.5");
    assert_string_equal(l.text[1], "loss: 1");
    assert_int_equal(sp.nul_lines, 1);
    logsplit_free(&sp);
    /* An overlong line is dropped whole, counted; the next one is read. */
    size_t big = LOGREAD_MAX_LINE + 10;
    char *b = malloc(big + 4);
    assert_non_null(b);
    memset(b, 'x', big);
    memcpy(b + big, "\n7\n", 3);
    split(b, big + 3, 4096, &l, &sp);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.text[0], "7");
    assert_int_equal(sp.long_lines, 1);
    logsplit_free(&sp);
    free(b);
    /* Restart forgets a partial line. */
    assert_true(logsplit_init(&sp));
    memset(&l, 0, sizeof l);
    logsplit_feed(&sp, "12", 2, collect, &l);
    logsplit_restart(&sp);
    logsplit_feed(&sp, "3\n", 2, collect, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.text[0], "3");
    logsplit_free(&sp);
}

/* ------------------------------------------------------------ reading */

static logread *reader(const logread_opts *o)
{
    logread *r = NULL;
    char err[200];
    assert_int_equal(logread_new(&r, o, err, sizeof err), 0);
    return r;
}

/* One line, expecting exactly one observation; returns it. */
static logread_obs one(logread *r, const char *line)
{
    logread_obs ob[2];
    int n = logread_line(r, line, strlen(line), ob);
    if (n != 1)
        fail_msg("'%s': %d observations", line, n);
    return ob[0];
}

static void expect_train(logread *r, const char *line, double loss, int64_t step)
{
    logread_obs ob = one(r, line);
    if (ob.kind != LOGREAD_TRAIN || !(ob.loss == loss || (isnan(loss) && isnan(ob.loss))) || ob.step != step)
        fail_msg("'%s': kind %d loss %g step %lld (want train %g step %lld)", line, ob.kind, ob.loss,
                 (long long)ob.step, loss, (long long)step);
}

static void expect_kind(logread *r, const char *line, int kind)
{
    logread_obs ob = one(r, line);
    if (ob.kind != kind)
        fail_msg("'%s': kind %d (want %d; %s)", line, ob.kind, kind, ob.why ? ob.why : "");
}

static void test_forms(void **state)
{
    (void)state;
    /* Each line in a fresh reader: the forms of a field. */
    static const struct {
        const char *line;
        double loss;
        int64_t step;
    } cases[] = {
        {"step 10 | loss 2.31 | lr 3e-4", 2.31, 10},
        {"s:0 trl:11.0091 lr:0.000001 norm:15.37", 11.0091, 0},
        {"step=0 loss=2.3", 2.3, 0},
        {"step=3 loss=-2.5", -2.5, 3},
        {"iter 7: loss 4.2649, time 29.21ms, mfu -100.00%", 4.2649, 7},
        {"{\"step\": 5, \"loss\": 1.25, \"lr\": 0.001}", 1.25, 5},
        {"{'loss': 2.119, 'grad_norm': 37.6, 'learning_rate': 4.58e-05, 'epoch': 0.25}", 2.119, -1},
        {"{\"_step\": 9, \"train/loss\": 0.5}", 0.5, 9},
        {"{\"train\": {\"loss\": 0.75}, \"global_step\": 12}", 0.75, 12},
        {"step:100/1750 train_loss:4.2345 train_time:12345ms step_avg:123.45ms", 4.2345, 100},
        {"[11/01 11:27:04 d2.utils.events]: eta: 8:05:12  iter: 1259  total_loss: 1.012  loss_cls: 0.714  lr: 0.01",
         1.012, 1259},
        {"2020-05-08 18:56:16,649 - mmdet - INFO - Epoch [1][2400/7517]\tlr: 0.00125, eta: 4:33:09, "
         "loss_rpn_cls: 0.0989, loss_cls: 0.1939, acc: 93.4961, loss: 0.4890",
         0.4890, -1},
        {"Train Epoch: 1 [640/60000 (1%)]\tLoss: 1.305400", 1.3054, -1},
        {"Epoch: [0][  10/5005]\tTime  0.512 ( 0.800)\tLoss 6.9078e+00 (6.9097e+00)\tAcc@1   0.00 (  0.11)", 6.9078,
         -1},
        {"| epoch   1 |   200/ 2983 batches | lr 20.00 | ms/batch 45.21 | loss  7.63 | ppl  2050.12", 7.63, -1},
        {"2024-01-15 10:23:45,123 - INFO - Epoch 1, step 100, loss: 0.5432", 0.5432, 100},
        {"loss: tensor(0.6931, grad_fn=<NllLossBackward0>)", 0.6931, -1},
        {"Step [100/600], Loss: 0.2145", 0.2145, 100},
        {"loss = nan", NAN, -1},
        {"training_loss: inf", INFINITY, -1},
        {"2.5", 2.5, -1},
        {"0.5 0.25", 0.25, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        logread *r = reader(NULL);
        expect_train(r, cases[i].line, cases[i].loss, cases[i].step);
        logread_free(r);
    }
    /* lr, gradient norm and a validation value on the same line */
    logread *r = reader(NULL);
    logread_obs ob = one(r, "s:3 trl:2.5 lr:0.0003 norm:1.5");
    assert_true(ob.lr == 0.0003 && ob.grad_norm == 1.5 && isnan(ob.eval_loss));
    logread_free(r);
    r = reader(NULL);
    logread_obs two[2];
    const char *mixed = "epoch 2 train_loss 0.5 val_loss 0.4";
    assert_int_equal(logread_line(r, mixed, strlen(mixed), two), 0); /* held: wait for the next line */
    logread_obs out;
    assert_int_equal(logread_end(r, &out), 1);
    assert_true(out.kind == LOGREAD_TRAIN && out.loss == 0.5 && out.eval_loss == 0.4);
    logread_free(r);
}

static void test_skipped_and_eval(void **state)
{
    (void)state;
    logread *r = reader(NULL);
    expect_train(r, "iter 0: loss 2.0", 2.0, 0);
    expect_kind(r, "saving checkpoint to out", LOGREAD_SKIP);
    expect_kind(r, "15.34%", LOGREAD_SKIP);
    expect_kind(r, "1.5abc", LOGREAD_SKIP);
    expect_kind(r, "", LOGREAD_NONE);
    expect_kind(r, "# comment 1.0", LOGREAD_NONE);
    expect_kind(r, "epoch 3 f1 0.8123", LOGREAD_SKIP);                 /* no loss: the F1 is not one */
    expect_kind(r, "Test set: Average loss: 0.1018, Accuracy: 9663/10000 (97%)", LOGREAD_EVAL);
    expect_kind(r, "{'eval_loss': 1.2, 'eval_runtime': 3.0, 'epoch': 1.0}", LOGREAD_EVAL);
    expect_kind(r, "s:10 tel:3.2", LOGREAD_EVAL);
    expect_kind(r, "{'train_runtime': 10.0, 'train_loss': 2.2, 'epoch': 1.0}", LOGREAD_SKIP); /* not the key in use */
    expect_kind(r, "Epoch(val) [1][2]\taccuracy_top-1: 22.0000", LOGREAD_SKIP);
    expect_train(r, "iter 1: loss 1.9", 1.9, 1);
    assert_string_equal(logread_key(r), "loss");
    logread_free(r);
}

/* nanoGPT: the eval line comes first, then iteration lines: it was an evaluation summary. */
static void test_held_lines(void **state)
{
    (void)state;
    logread *r = reader(NULL);
    logread_obs ob[2];
    const char *l1 = "step 0: train loss 4.2874, val loss 4.2823";
    assert_int_equal(logread_line(r, l1, strlen(l1), ob), 0);
    const char *l2 = "iter 0: loss 4.2649, time 29.2ms, mfu -100.00%";
    assert_int_equal(logread_line(r, l2, strlen(l2), ob), 2);
    assert_int_equal(ob[0].kind, LOGREAD_EVAL);
    assert_true(ob[0].eval_loss == 4.2823);
    assert_int_equal(ob[1].kind, LOGREAD_TRAIN);
    assert_true(ob[1].loss == 4.2649);
    /* later eval lines: evaluation at once */
    expect_kind(r, "step 250: train loss 1.9635, val loss 2.0731", LOGREAD_EVAL);
    logread_free(r);
    /* a per-epoch log of mixed lines: the first is released by the second */
    r = reader(NULL);
    const char *m1 = "Epoch:1 train_loss:0.9 test_loss:1.0";
    const char *m2 = "Epoch:2 train_loss:0.8 test_loss:0.95";
    assert_int_equal(logread_line(r, m1, strlen(m1), ob), 0);
    assert_int_equal(logread_line(r, m2, strlen(m2), ob), 2);
    assert_true(ob[0].kind == LOGREAD_TRAIN && ob[0].loss == 0.9 && ob[1].kind == LOGREAD_TRAIN && ob[1].loss == 0.8);
    expect_train(r, "Epoch:3 train_loss:0.7 test_loss:0.9", 0.7, -1);
    logread_free(r);
}

static void test_runs(void **state)
{
    (void)state;
    logread *r = reader(NULL);
    logread_obs ob = one(r, "step 5 loss 1.0");
    assert_false(ob.new_run);
    ob = one(r, "step 6 loss 0.9");
    assert_false(ob.new_run);
    ob = one(r, "step 0 loss 2.0"); /* the step went back */
    assert_true(ob.new_run);
    logread_free(r);
    /* a step that restarts each epoch while the epoch goes up: the same run */
    r = reader(NULL);
    ob = one(r, "Epoch [1/3], Step [90/100], Loss: 0.5");
    ob = one(r, "Epoch [2/3], Step [0/100], Loss: 0.4");
    assert_false(ob.new_run);
    ob = one(r, "Epoch [1/3], Step [0/100], Loss: 2.4"); /* the epoch went back */
    assert_true(ob.new_run);
    logread_free(r);
    /* a header that repeats after data */
    r = reader(NULL);
    expect_kind(r, "step,loss", LOGREAD_HEADER);
    ob = one(r, "0,2.0");
    assert_false(ob.new_run);
    expect_kind(r, "step,loss", LOGREAD_HEADER);
    ob = one(r, "0,2.5");
    assert_true(ob.new_run);
    logread_free(r);
}

static void test_headers(void **state)
{
    (void)state;
    logread *r = reader(NULL);
    expect_kind(r, "epoch,step,train_loss,val_loss", LOGREAD_HEADER);
    expect_train(r, "0,49,2.31,", 2.31, 49);
    logread_obs ob = one(r, "0,99,,2.05");
    assert_int_equal(ob.kind, LOGREAD_EVAL);
    assert_true(ob.eval_loss == 2.05);
    logread_free(r);
    /* TSV and markdown */
    r = reader(NULL);
    expect_kind(r, "step\tloss\tlr", LOGREAD_HEADER);
    expect_train(r, "3\t1.5\t0.01", 1.5, 3);
    logread_free(r);
    r = reader(NULL);
    expect_kind(r, "| step | loss |", LOGREAD_HEADER);
    expect_kind(r, "|---|---|", LOGREAD_SKIP);
    expect_train(r, "| 7 | 0.25 |", 0.25, 7);
    logread_free(r);
    /* words that name nothing are not a header */
    r = reader(NULL);
    expect_kind(r, "saving checkpoint to out", LOGREAD_SKIP);
    logread_free(r);
}

static void test_progbar(void **state)
{
    (void)state;
    /* Keras shows the mean of the epoch so far: each update is the mean since the previous one. */
    logread *r = reader(NULL);
    expect_kind(r, "Epoch 1/2", LOGREAD_SKIP);
    expect_train(r, "  1/100 [..............................] - ETA: 9s - loss: 2.0000 - accuracy: 0.1", 2.0, -1);
    expect_train(r, " 10/100 [==>...........................] - ETA: 8s - loss: 1.1000 - accuracy: 0.3", 1.0, -1);
    logread_obs ob = one(r, "100/100 [==============================] - 3s - loss: 0.5500 - accuracy: 0.8");
    assert_int_equal(ob.kind, LOGREAD_TRAIN);
    assert_true(fabs(ob.loss - (0.55 * 100 - 1.1 * 10) / 90.0) < 1e-12);
    /* the last update drawn again with the validation values: not a second observation */
    ob = one(r, "100/100 [==============================] - 3s - loss: 0.5500 - val_loss: 0.6000");
    assert_int_equal(ob.kind, LOGREAD_EVAL);
    expect_kind(r, "Epoch 2/2", LOGREAD_SKIP);
    expect_train(r, "  1/100 [..............................] - ETA: 9s - loss: 0.5000", 0.5, -1);
    logread_free(r);
    /* verbose=2: one line per epoch, the count always the same */
    r = reader(NULL);
    expect_kind(r, "Epoch 1/3", LOGREAD_SKIP);
    expect_train(r, "1079/1079 - 21s - loss: 0.2431 - 21s/epoch - 19ms/step", 0.2431, -1);
    expect_kind(r, "Epoch 2/3", LOGREAD_SKIP);
    expect_train(r, "1079/1079 - 10s - loss: 0.2135 - 10s/epoch - 10ms/step", 0.2135, -1);
    logread_free(r);
    /* tqdm redraws of the same count are one observation */
    r = reader(NULL);
    expect_train(r, "Epoch 0:  45%|####5     | 450/1000 [00:10<00:12, 44.51it/s, loss=0.512, v_num=0]", 0.512, -1);
    expect_kind(r, "Epoch 0:  45%|####5     | 450/1000 [00:10<00:12, 44.51it/s, loss=0.512, v_num=0]",
                LOGREAD_NONE);
    expect_train(r, "Epoch 0:  46%|####6     | 460/1000 [00:10<00:12, 44.51it/s, loss=0.498, v_num=0]", 0.498, -1);
    logread_free(r);
}

static void test_options(void **state)
{
    (void)state;
    logread_opts o;
    memset(&o, 0, sizeof o);
    o.key = "mine";
    o.step_key = "it";
    logread *r = reader(&o);
    expect_train(r, "it=4 mine=0.75 loss=9", 0.75, 4);
    expect_kind(r, "loss=9", LOGREAD_SKIP);
    logread_free(r);

    memset(&o, 0, sizeof o);
    o.match = "objective -> ([-+0-9.eE]+)";
    r = reader(&o);
    expect_train(r, "epoch 3 batch 7: objective -> 1.25!", 1.25, -1);
    expect_kind(r, "noise", LOGREAD_SKIP);
    logread_free(r);
    char err[200];
    logread *bad = NULL;
    o.match = "no group";
    assert_int_equal(logread_new(&bad, &o, err, sizeof err), -1);
    assert_null(bad);
    assert_non_null(strstr(err, "capture group"));
    o.match = "([";
    assert_int_equal(logread_new(&bad, &o, err, sizeof err), -1);
    assert_non_null(strstr(err, "--match"));

    memset(&o, 0, sizeof o);
    o.column = 2;
    o.grad_column = 3;
    o.step_column = 1;
    r = reader(&o);
    expect_kind(r, "step,loss,grad_norm", LOGREAD_HEADER);
    logread_obs ob = one(r, "7, 2.5, inf");
    assert_true(ob.kind == LOGREAD_TRAIN && ob.loss == 2.5 && isinf(ob.grad_norm) && ob.step == 7);
    ob = one(r, "8 2.4 -1");
    assert_true(ob.kind == LOGREAD_TRAIN && ob.grad_norm == -1.0);
    expect_kind(r, "9 2.3", LOGREAD_SKIP);
    logread_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),        cmocka_unit_test(test_forms),   cmocka_unit_test(test_skipped_and_eval),
        cmocka_unit_test(test_held_lines),   cmocka_unit_test(test_runs),    cmocka_unit_test(test_headers),
        cmocka_unit_test(test_progbar),      cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
