/*
 * The _init functions of the structs a getter fills for its caller (each
 * zeroes the struct and sets struct_size), together because they are the
 * struct_size mechanism rather than any module's logic; the getters fill them
 * through sgd__struct_fill (core/abi.h). SPDX-License-Identifier: MIT
 */
#include "core/abi.h"

#include <string.h>

#define OUT_INIT(type)                                                                                       \
    void type##_init(type *s)                                                                                \
    {                                                                                                        \
        if (s == NULL)                                                                                       \
            return;                                                                                          \
        memset(s, 0, sizeof *s);                                                                             \
        s->struct_size = (uint32_t)sizeof *s;                                                                \
    }

OUT_INIT(sgd_ckpt_section_info)
OUT_INIT(sgd_ckpt_tensor_info)
OUT_INIT(sgd_lrfind_sample)
OUT_INIT(sgd_monitor_counters)
OUT_INIT(sgd_optim_stats)
OUT_INIT(sgd_param_info)
OUT_INIT(sgd_search_trial)
OUT_INIT(sgd_trainer_epoch)
OUT_INIT(sgd_trainer_stats)
