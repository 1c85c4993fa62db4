/* The README's example: one epoch of an MLP on Fashion-MNIST, cosine schedule, guard on. */
#include <sgdlab/sgdlab.h>
#include <stdio.h>

#define DIR "/usr/share/datasets/fashion-mnist/" /* Debian package dataset-fashion-mnist */

int main(void)
{
    sgd_dataset *train = NULL, *test = NULL;
    sgd_model *model = NULL;
    sgd_optim *optim = NULL;
    sgd_sched *sched = NULL;
    sgd_trainer *trainer = NULL;
    sgd_trainer_options opts;
    sgd_trainer_options_init(&opts); /* guard on, batch 128... */
    opts.epochs = 1;
    double loss, acc;
    int failed = 1;
    if (sgd_dataset_load_idx(&train, DIR "train-images-idx3-ubyte.gz", DIR "train-labels-idx1-ubyte.gz", NULL) ||
        sgd_dataset_load_idx(&test, DIR "t10k-images-idx3-ubyte.gz", DIR "t10k-labels-idx1-ubyte.gz", NULL) ||
        sgd_model_from_spec(&model, "784-256-relu-128-relu-10", NULL, NULL) ||
        sgd_optim_new(&optim, "adam:lr=1e-3", sgd_model_num_params(model), NULL) ||
        sgd_sched_new(&sched, "cosine:T_max=469", 1e-3, NULL) ||
        sgd_trainer_new(&trainer, model, optim, sched, NULL, train, test, &opts, NULL) ||
        sgd_trainer_fit(trainer, 0) || sgd_model_evaluate(model, test, 0, &loss, &acc))
        fprintf(stderr, "error: %s\n", sgd_error_last());
    else
        failed = printf("test loss %.4f, accuracy %.2f%%\n", loss, 100 * acc) < 0;
    sgd_trainer_free(trainer);
    sgd_sched_free(sched);
    sgd_optim_free(optim);
    sgd_model_free(model);
    sgd_dataset_free(test);
    sgd_dataset_free(train);
    return failed;
}
