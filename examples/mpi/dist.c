/*
 * Data-parallel training over MPI with libsgdlab-mpi:
 *
 *   cc dist.c $(pkg-config --cflags --libs sgdlab-mpi) -o dist   (or mpicc)
 *   mpiexec -n 2 ./dist
 *
 * Every process builds the same trainer; sgd_dist_attach() gives them rank
 * 0's state and makes each compute its share of every batch of 128 rows.
 * The data (an XOR-like problem in the square) are generated here.
 */
#include <sgdlab/dist.h>
#include <sgdlab/sgdlab.h>

#include <stdio.h>

#define N 4096

static int32_t on_progress(const sgd_trainer_progress *p, void *user)
{
    if (p->phase == SGD_TRAINER_PHASE_EPOCH_END && *(const int32_t *)user == 0) /* rank 0 reports */
        printf("epoch %lld: train loss %.4f, validation accuracy %.1f%%\n", (long long)p->epoch + 1, p->train_loss,
               100 * p->val_accuracy);
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
        y[i] = (x[2 * i] > 0) != (x[2 * i + 1] > 0);

    sgd_dist *d = NULL;                        /* MPI_COMM_WORLD; initialises MPI */
    sgd_dataset *all = NULL, *train = NULL, *val = NULL;
    sgd_model *m = NULL;
    sgd_optim *o = NULL;
    sgd_trainer *t = NULL;
    sgd_trainer_options to;
    sgd_trainer_options_init(&to);
    to.epochs = 5;                             /* batches of 128 rows in all: 64 per process on 2 */
    sgd_status st;
    if ((st = sgd_dist_new(&d, NULL, NULL)) != SGD_OK ||
        (st = sgd_dataset_from_labels(&all, x, y, N, 2, NULL)) != SGD_OK ||
        (st = sgd_dataset_split(&train, &val, all, 512, 1, 7)) != SGD_OK ||
        (st = sgd_model_from_spec(&m, "2-32-relu-32-relu-2", NULL, NULL)) != SGD_OK ||
        (st = sgd_optim_new(&o, "adam:lr=0.01", sgd_model_num_params(m), NULL)) != SGD_OK ||
        (st = sgd_trainer_new(&t, m, o, NULL, NULL, train, val, &to, NULL)) != SGD_OK ||
        (st = sgd_dist_attach(d, t)) != SGD_OK) /* collective: every process, or all fail */
        goto out;
    int32_t rank = sgd_dist_rank(d);
    sgd_trainer_set_progress(t, on_progress, &rank);
    if (rank == 0)
        printf("%d processes (%s)\n", sgd_dist_size(d), sgd_dist_mpi_library(d));
    st = sgd_trainer_fit(t, 0);                /* the same steps on every process */
out:
    if (st != SGD_OK)
        fprintf(stderr, "dist: %s\n", sgd_error_last());
    sgd_trainer_free(t);
    sgd_optim_free(o);
    sgd_model_free(m);
    sgd_dataset_free(val);
    sgd_dataset_free(train);
    sgd_dataset_free(all);
    sgd_dist_free(d);                          /* finalises MPI */
    return st == SGD_OK ? 0 : 1;
}
