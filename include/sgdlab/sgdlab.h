/*
 * libsgdlab - train small neural networks and get the learning rate right.
 * SPDX-License-Identifier: MIT
 */
/**
 * @file sgdlab.h
 * @brief The umbrella header: includes every public libsgdlab header.
 *
 * Programs include this one header and link with `pkg-config --libs sgdlab`.
 */
#ifndef SGDLAB_SGDLAB_H
#define SGDLAB_SGDLAB_H

#include "sgdlab/core.h"
#include "sgdlab/data.h"
#include "sgdlab/model.h"
#include "sgdlab/sched.h"
#include "sgdlab/checkpoint.h"
#include "sgdlab/monitor.h"
#include "sgdlab/optim.h"
#include "sgdlab/trainer.h"
#include "sgdlab/tune.h"
#include "sgdlab/text.h"

#endif /* SGDLAB_SGDLAB_H */
