/*
 * Model internals shared by the model's source files, the tests and the
 * benchmarks. Never installed. SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_MODEL_INTERNAL_H
#define SGDLAB_MODEL_INTERNAL_H

#include "sgdlab/model.h"

#include "core/internal.h"
#include "data/data_internal.h"
#include "model/tensor.h"

/* Longest canonical token of one layer ("dense(16777216,bias=0)", "dropout(<%.17g>)"). */
#define SGD__SPEC_TOKEN_MAX 48
#define SGD__SPEC_MAX_LEN 4096

typedef struct sgd__layer {
    int32_t kind;       /* sgd_layer_kind */
    int64_t in, out;    /* widths (equal for activations and dropout) */
    bool bias;          /* dense only */
    double param;       /* leaky_relu: negative slope; dropout: p */
    /* Set by build: */
    bool fused;         /* activation applied in place by the preceding dense layer's pass */
    sgd__tensor w, b;   /* dense: views into the parameter arena (b.data NULL without bias) */
    sgd__tensor gw, gb; /* the same views into the gradient arena */
    float *buf;         /* own output buffer [max_batch x out], or NULL when fused */
    uint8_t *mask;      /* dropout: keep mask [max_batch x out] */
    /* Set by each forward pass: */
    const float *y;     /* this pass's output ([batch x out]): buf, the dense's buf, or the input */
} sgd__layer;

typedef struct sgd__pinfo {
    int32_t kind, layer, rank;
    int64_t shape[2];
    size_t offset, numel;
    const char *name;
} sgd__pinfo;

enum { SGD__PHASE_NONE = 0, SGD__PHASE_FORWARD = 1, SGD__PHASE_LOSS = 2 };

struct sgd_model {
    sgd_allocator alloc;
    int64_t n_in;
    sgd__layer *layers;
    size_t n_layers, cap_layers;
    char *spec;         /* canonical spec; capacity kept in step with cap_layers */
    size_t spec_cap;
    bool built;
    /* options */
    int32_t init;
    uint64_t seed;
    int32_t loss;
    int32_t blas_threads;
    int64_t max_batch;
    /* arenas */
    float *params, *grads;
    size_t n_params;
    sgd__pinfo *pinfo;
    size_t n_ptensors;
    char *names;
    /* buffers (one aligned block) */
    void *work;
    float *gbuf[2];     /* gradient ping-pong, [max_batch x widest] */
    float *xstage;      /* evaluation: gathered rows [max_batch x n_in] */
    int32_t *lstage;    /* evaluation: gathered labels */
    float *tstage;      /* evaluation: gathered targets [max_batch x outputs] */
    size_t first_dense; /* backward stops after it: no gradient for the input */
    /* state */
    bool training;
    bool fwd_training;  /* mode of the last forward pass */
    int32_t phase;
    int64_t batch;      /* rows of the last forward pass */
    const float *x;     /* its input (the host's memory) */
    float *gcur;        /* gradient of the last layer's output, in gbuf[0] */
    sgd__rng rng;       /* dropout */
};

/* The canonical spec written into m->spec (capacity is ensured by the caller). */
void sgd__model_write_spec(sgd_model *m);

/* Parses `spec` into layers added to a new model (not built) and options merged into *o. */
sgd_status sgd__model_parse_spec(sgd_model **out, const char *spec, sgd_model_options *o,
                                 const sgd_allocator *alloc, const char *fn);

/* Names used by the spec grammar. */
const char *sgd__loss_name(int32_t kind);
const char *sgd__init_name(int32_t kind);

/*
 * Runs exactly the cblas_sgemm calls of one forward and backward pass on a
 * batch of `batch` rows (same shapes, same buffers, same beta), and nothing
 * else: the benchmark times the GEMMs of a step alone with it. Gradients are
 * changed; the model must be built and batch <= max_batch.
 */
void sgd__model_replay_gemms(sgd_model *m, int64_t batch);

#endif /* SGDLAB_MODEL_INTERNAL_H */
