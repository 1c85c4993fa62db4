/*
 * Finds a learning rate with the range test, then trains with the trainer at
 * ten times that rate, too high on purpose: the guard rolls the run back and
 * halves the rate each time the loss blows up, and reports it. The data (an
 * XOR-like problem in the square) are generated here; no files needed.
 */
#include <sgdlab/sgdlab.h>

#include <stdio.h>
#include <stdlib.h>

#define N 1200

static int32_t on_event(const sgd_trainer_event *ev, double *lr_scale, void *user)
{
    (void)lr_scale;
    (void)user;
    if (ev->kind != SGD_TRAINER_EVENT_MONITOR) /* rescues, giving up, early stop... */
        printf("  %s: %s\n", sgd_trainer_event_name(ev->kind), ev->message);
    return ev->action;                         /* accept the trainer's proposal */
}

static int32_t on_progress(const sgd_trainer_progress *p, void *user)
{
    (void)user;
    if (p->phase == SGD_TRAINER_PHASE_EPOCH_END)
        printf("epoch %lld: train loss %.4f, validation accuracy %.1f%%, lr %.3g\n", (long long)p->epoch + 1,
               p->train_loss, 100 * p->val_accuracy, p->lr);
    return 0;
}

int main(void)
{
    static float x[N * 2];
    static int32_t y[N];
    uint32_t r = 12345;
    for (int i = 0; i < 2 * N; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = (float)(r >> 8) / 8388608.0f - 1.0f;
    }
    for (int i = 0; i < N; i++)
        y[i] = (x[2 * i] < 0) != (x[2 * i + 1] < 0);

    sgd_dataset *all = NULL, *train = NULL, *val = NULL;
    sgd_model *m = NULL;
    sgd_optim *o = NULL;
    sgd_lrfind *finder = NULL;
    sgd_trainer *t = NULL;
    sgd_status st;
    if ((st = sgd_dataset_from_labels(&all, x, y, N, 2, NULL)) != SGD_OK ||
        (st = sgd_dataset_split(&train, &val, all, 200, 1, 7)) != SGD_OK ||
        (st = sgd_model_from_spec(&m, "2-32-tanh-32-tanh-2:seed=1", NULL, NULL)) != SGD_OK ||
        (st = sgd_optim_new(&o, "sgd:lr=0.1", sgd_model_num_params(m), NULL)) != SGD_OK)
        goto out;

    /* 1. The range test suggests a rate; the model is left as it was. */
    sgd_lrfind_options lo;
    sgd_lrfind_options_init(&lo);
    lo.lr_min = 1e-3;
    lo.steps = 300;
    lo.batch_size = 32;
    double lr;
    if ((st = sgd_lrfind_run(&finder, m, o, train, &lo, NULL)) != SGD_OK ||
        (st = sgd_lrfind_suggestion(finder, sgd_lrfind_default_method(), &lr, NULL)) != SGD_OK)
        goto out;
    printf("range test: %zu steps, suggested learning rate %.3g\n", sgd_lrfind_count(finder), lr);

    /* 2. Train at 10x the suggestion: the guard brings it down. */
    if ((st = sgd_optim_set(o, "lr", 10 * lr)) != SGD_OK)
        goto out;
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    to.epochs = 10;
    to.batch_size = 32;
    if ((st = sgd_trainer_new(&t, m, o, NULL, NULL, train, val, &to, NULL)) != SGD_OK)
        goto out;
    sgd_trainer_set_event_callback(t, on_event, NULL);
    sgd_trainer_set_progress(t, on_progress, NULL);
    printf("training at lr %.3g with the guard:\n", 10 * lr);
    st = sgd_trainer_fit(t, 0);
    if (st == SGD_OK) {
        sgd_trainer_stats s = {.struct_size = sizeof s};
        sgd_trainer_get_stats(t, &s);
        printf("done: %lld rescue(s), the learning rate ended at %.3g\n", (long long)s.rescues, s.lr);
    }
out:
    if (st != SGD_OK)
        fprintf(stderr, "%s\n", sgd_error_last());
    sgd_trainer_free(t);
    sgd_lrfind_free(finder);
    sgd_optim_free(o);
    sgd_model_free(m);
    sgd_dataset_free(val);
    sgd_dataset_free(train);
    sgd_dataset_free(all);
    return st == SGD_OK ? 0 : 1;
}
