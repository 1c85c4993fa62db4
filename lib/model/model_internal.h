/*
 * Model internals shared by the model's source files, the tests and the
 * benchmarks. Never installed. SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_MODEL_INTERNAL_H
#define SGDLAB_MODEL_INTERNAL_H

#include "sgdlab/model.h"

#include "core/internal.h"
#include "data/data_internal.h"
#include "model/layer.h"
#include "model/tensor.h"

#define SGD__SPEC_MAX_LEN 4096

/* One tensor of the model: a parameter, a buffer or a piece of state. */
typedef struct sgd__tinfo {
    const sgd__tdesc *d;   /* its description in its layer */
    sgd__layer *l;         /* the layer that holds it */
    size_t ti;             /* its index in l->td */
    int32_t layer;         /* the top-level layer it belongs to */
    size_t offset;         /* parameters: floats into the arenas; buffers: bytes into the buffer arena;
                              state: bytes into the state block */
    size_t numel;          /* elements (state: max_batch x per-sample) */
    const char *name;      /* "3.weight", "1.running_mean", "4.body.0.weight" */
} sgd__tinfo;

enum { SGD__PHASE_NONE = 0, SGD__PHASE_FORWARD = 1, SGD__PHASE_LOSS = 2 };

struct sgd_model {
    sgd_allocator alloc;
    sgd__seq seq;       /* the layers; seq.in is the input shape */
    int64_t n_in;       /* values per sample of the input */
    char *spec;         /* the canonical spec, built on demand by sgd_model_spec() */
    size_t spec_cap;
    bool spec_valid;
    bool built;
    bool tokens;        /* the input is a sequence of token ids, printed tokens(T) */
    /* options */
    int32_t init;
    uint64_t seed;
    int32_t loss;
    int32_t blas_threads;
    int64_t max_batch;
    /* arenas */
    float *params, *grads;
    size_t n_params;
    unsigned char *bufs;  /* the buffer arena (running statistics), 64-byte aligned */
    size_t buf_bytes;
    sgd__tinfo *tinfo;  /* state_dict order (parameters and buffers), then the state tensors */
    size_t n_tensors, n_dict, n_state;
    size_t *pidx;       /* the 0.1 numbering of parameters: weights first, then biases -> tinfo index */
    size_t n_ptensors;
    char *names;
    size_t state_bytes; /* per max_batch */
    /* work block (one aligned allocation, resized by sgd_model_reserve) */
    void *work;
    size_t work_bytes;  /* its size */
    float *gbuf[2];     /* gradient ping-pong, [max_batch x widest] */
    float *xstage;      /* evaluation: gathered rows [max_batch x n_in] */
    int32_t *lstage;    /* evaluation: gathered labels */
    float *tstage;      /* evaluation: gathered targets [max_batch x outputs] */
    unsigned char *state; /* per-sample state [max_batch x ...] */
    unsigned char *state_save; /* evaluation and prediction keep the carried state here meanwhile */
    size_t first;       /* the first layer with parameters: backward stops there */
    /* state */
    bool training;
    bool fwd_training;  /* mode of the last forward pass */
    int32_t phase;
    int64_t batch;      /* rows of the last forward pass */
    const float *x;     /* its input (the host's memory) */
    float *gcur;        /* gradient of the last layer's output, in gbuf[0] */
    sgd__rng rng;       /* dropout */
};

/* Parses `spec` into layers added to a new model (not built) and options merged into *o. */
sgd_status sgd__model_parse_spec(sgd_model **out, const char *spec, sgd_model_options *o,
                                 const sgd_allocator *alloc, const char *fn);

/* Names used by the spec grammar. */
const char *sgd__loss_name(int32_t kind);
const char *sgd__init_name(int32_t kind);

/* Positions per sample of the output (values / classes): 1 for a vector output. */
static inline int64_t sgd__model_positions(const sgd_model *m)
{
    const sgd__shape *o = sgd__seq_out(&m->seq);
    return sgd__shape_numel(o) / sgd__shape_last(o);
}

/*
 * The carried per-sample state (recurrent layers) around evaluation and
 * prediction: stash copies it aside, zero clears it, unstash puts it back.
 * Nothing allocates (the stash is part of the work block).
 */
void sgd__model_state_stash(sgd_model *m);
void sgd__model_state_zero(sgd_model *m);
void sgd__model_state_unstash(sgd_model *m);

/*
 * Runs exactly the cblas_sgemm calls of one forward and backward pass on a
 * batch of `batch` rows (same shapes, same buffers, same beta), and nothing
 * else: the benchmark times the GEMMs of a step alone with it. Gradients are
 * changed; the model must be built and batch <= max_batch.
 */
void sgd__model_replay_gemms(sgd_model *m, int64_t batch);

#endif /* SGDLAB_MODEL_INTERNAL_H */
