/*
 * libsgdlab trainer: helpers shared with the tune module. Never installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_TRAINER_INTERNAL_H
#define SGDLAB_TRAINER_INTERNAL_H

#include "core/internal.h"
#include "sgdlab/trainer.h"

/*
 * SGD_ESHAPE, naming `fn` and `what` ("train", "val"), unless the rows of `d`
 * have the model's inputs and labels (cross-entropy: below its outputs) or
 * outputs-wide targets (MSE, BCE).
 */
sgd_status sgd__check_dataset_fits(const sgd_model *m, const sgd_dataset *d, const char *fn, const char *what);

/* Range checks of trainer options, as sgd_trainer_new() makes them; messages name `fn`. */
sgd_status sgd__trainer_options_check(const sgd_trainer_options *o, const char *fn);

/* Seconds on the monotonic clock. */
double sgd__now_seconds(void);

#endif /* SGDLAB_TRAINER_INTERNAL_H */
