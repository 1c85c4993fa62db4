/*
 * Learning-rate schedules: one built from a spec (warmup, cosine, plateau
 * cuts on top), then a schedule written here, wrapped in the library's warmup.
 *
 *   example_schedule ["SPEC" [BASE_LR]]
 */
#include <sgdlab/sgdlab.h>

#include <stdio.h>
#include <stdlib.h>

/* A host-written schedule: inverse-time decay, lr = lr0 / (1 + t / t0). */
typedef struct inv_time {
    double lr0, t0;
} inv_time;

static sgd_status inv_time_lr(int64_t step, double *lr, void *user)
{
    const inv_time *p = user;
    *lr = p->lr0 / (1.0 + (double)step / p->t0);
    return SGD_OK;
}

static int fail(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, sgd_error_last());
    return 1;
}

int main(int argc, char **argv)
{
    const char *spec = argc > 1 ? argv[1]
                                : "plateau:factor=0.5,patience=2,over=(sequential:milestones=[5],children=["
                                  "(linear:start_factor=0.1,total_iters=5),(cosine:T_max=45)])";
    double base_lr = argc > 2 ? strtod(argv[2], NULL) : 0.1;
    sgd_sched *s;
    if (sgd_sched_new(&s, spec, base_lr, NULL) != SGD_OK)
        return fail("sgd_sched_new");
    printf("%s over base_lr %g\n step        lr\n", sgd_sched_name(s), base_lr);
    for (int64_t t = 0; t < 50; t++) {
        double lr;
        if (sgd_sched_lr(s, t, &lr) != SGD_OK)
            return fail("sgd_sched_lr");
        if (t % 5 == 0)
            printf("%5d  %.6f\n", (int)t, lr);
        /* A validation loss that stops improving after step 20. */
        double loss = t < 20 ? 1.0 / (1.0 + (double)t) : 1.0 / 21.0;
        if (sgd_sched_observe(s, t, loss) != SGD_OK)
            return fail("sgd_sched_observe");
    }
    sgd_sched_free(s);

    inv_time p = {0.05, 100.0};
    sgd_sched_vtable vt;
    sgd_sched_vtable_init(&vt);
    vt.name = "inv_time";
    vt.lr = inv_time_lr;
    vt.user = &p;
    sgd_sched *host, *warm;
    if (sgd_sched_new_custom(&host, &vt, NULL) != SGD_OK)
        return fail("sgd_sched_new_custom");
    sgd_sched_warmup_options w;
    sgd_sched_warmup_options_init(&w);
    w.start_factor = 0.01;
    w.total_iters = 100;
    if (sgd_sched_warmup_new(&warm, host, &w, NULL) != SGD_OK) { /* on success, warm owns host */
        sgd_sched_free(host);
        return fail("sgd_sched_warmup_new");
    }
    double lrs[4];
    if (sgd_sched_lrs(warm, 0, 1, lrs) != SGD_OK || sgd_sched_lrs(warm, 100, 1, lrs + 1) != SGD_OK ||
        sgd_sched_lrs(warm, 1000, 1, lrs + 2) != SGD_OK || sgd_sched_lrs(warm, 10000, 1, lrs + 3) != SGD_OK)
        return fail("sgd_sched_lrs");
    printf("warmup over inv_time: lr(0)=%g lr(100)=%g lr(1000)=%g lr(10000)=%g\n", lrs[0], lrs[1], lrs[2], lrs[3]);
    sgd_sched_free(warm);
    return 0;
}
