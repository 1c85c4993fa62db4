/*
 * Trains a small MLP on an XOR-like problem (generated here, no files needed)
 * with the built-in AdamW optimizer: biases in a parameter group without
 * weight decay, gradients clipped to norm 1, a step schedule that halves the
 * learning rate every 950 steps (50 epochs; the optimizer takes each step's
 * rate from it), and the step's report (applied? norm before clipping?).
 */
#include <sgdlab/sgdlab.h>

#include <stdio.h>

#define N 600

static int check(sgd_status st, const char *what)
{
    if (st != SGD_OK)
        fprintf(stderr, "%s: %s\n", what, sgd_error_last());
    return st != SGD_OK;
}

int main(void)
{
    static float x[N * 2];
    static int32_t y[N];
    uint32_t r = 12345;
    for (int i = 0; i < 2 * N; i++) { /* uniform in [-1, 1), from a small LCG */
        r = r * 1664525u + 1013904223u;
        x[i] = (float)(r >> 8) / 8388608.0f - 1.0f;
    }
    for (int i = 0; i < N; i++)
        y[i] = (x[2 * i] < 0) != (x[2 * i + 1] < 0);

    sgd_model *m = NULL;
    sgd_dataset *data = NULL;
    sgd_loader *loader = NULL;
    sgd_optim *opt = NULL;
    sgd_sched *sched = NULL;
    int failed = check(sgd_model_from_spec(&m, "2-16-tanh-16-tanh-2:seed=1", NULL, NULL), "model") ||
                 check(sgd_dataset_from_labels(&data, x, y, N, 2, NULL), "dataset") ||
                 check(sgd_loader_new(&loader, data, 32, NULL), "loader") ||
                 check(sgd_optim_new(&opt, "adamw:lr=0.02,weight_decay=0.01,clip_norm=1", sgd_model_num_params(m),
                                     NULL),
                       "optimizer");
    /* No weight decay on the biases: each bias vector is a group of its own. */
    for (size_t i = 0; !failed && i < sgd_model_num_param_tensors(m); i++) {
        sgd_param_info p;
        p.struct_size = sizeof p;
        failed = check(sgd_model_param_info(m, i, &p), "param_info");
        if (!failed && p.kind == SGD_PARAM_BIAS)
            failed = check(sgd_optim_add_group(opt, p.offset, p.numel, 1.0, 0.0, NULL), "add_group");
    }
    double base_lr = 0, lr = 0, loss = 0, acc = 0;
    failed = failed || check(sgd_optim_get(opt, "lr", &base_lr), "get lr") ||
             check(sgd_sched_new(&sched, "step:step_size=950,gamma=0.5", base_lr, NULL), "schedule");
    sgd_optim_step_info info;
    sgd_optim_step_info_init(&info);
    for (int epoch = 1; epoch <= 150 && !failed; epoch++) {
        sgd_batch b;
        int64_t t = 0;
        while (!failed && sgd_loader_next(loader, &b) == SGD_OK && b.size > 0)
            failed = check(sgd_optim_get_step(opt, &t), "get_step") || check(sgd_sched_lr(sched, t, &lr), "lr") ||
                     check(sgd_model_zero_grad(m), "zero_grad") ||
                     check(sgd_model_forward_backward(m, b.x, b.labels, NULL, b.size, NULL), "forward_backward") ||
                     check(sgd_optim_step(opt, sgd_model_params(m), sgd_model_grads(m), lr, &info), "step");
        if (!failed && epoch % 30 == 0) {
            failed = check(sgd_model_evaluate(m, data, 0, &loss, &acc), "evaluate");
            printf("epoch %3d: lr %.4f, loss %.4f, accuracy %.1f%%, last step: %s, gradient norm %.3f%s\n", epoch,
                   lr, loss, 100.0 * acc, info.applied ? "applied" : "skipped", info.grad_norm,
                   info.clipped ? " (clipped)" : "");
        }
    }
    int64_t steps = 0;
    sgd_optim_get_step(opt, &steps);
    printf("%s, %s, %zu groups, %lld steps\n", sgd_model_spec(m), sgd_optim_name(opt), sgd_optim_group_count(opt),
           (long long)steps);
    sgd_sched_free(sched);
    sgd_optim_free(opt);
    sgd_loader_free(loader);
    sgd_dataset_free(data);
    sgd_model_free(m);
    return failed || acc < 0.9;
}
