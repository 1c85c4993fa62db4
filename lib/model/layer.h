/*
 * The layer operations table. Every layer kind is one record, sgd__layer_op,
 * in a file of its own family (layer_dense.c, layer_act.c, layer_dropout.c,
 * ...), listed once in layers.c. The model (model.c, pass.c, spec.c) iterates
 * the table and calls the record's functions; nothing outside a layer's own
 * file knows what kind of layer it is. The design follows kann's kad_op_list
 * (one function table indexed by operation) and the schedules' kinds[] of
 * lib/sched/spec.c; docs/internals.md has the checklist for adding a layer.
 * Never installed. SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_MODEL_LAYER_H
#define SGDLAB_MODEL_LAYER_H

#include "sgdlab/model.h"

#include "core/internal.h"
#include "model/tensor.h"

/* ---------------------------------------------------------------- shapes */

/*
 * The shape of one sample, without the batch dimension: rank 1 [F] (vectors),
 * 2 [T, F] (sequences) or 3 [C, H, W] (images), row-major as torch, so that a
 * batch is a tensor of rank 2 to 4. Unused dimensions are 1.
 */
#define SGD__SHAPE_MAX_RANK 3
/* Largest number of values of one sample at any layer: 2^26 (a 64x1024x1024 image). */
#define SGD__SAMPLE_MAX_NUMEL ((int64_t)1 << 26)

typedef struct sgd__shape {
    int32_t rank;
    int64_t d[SGD__SHAPE_MAX_RANK];
} sgd__shape;

static inline int64_t sgd__shape_numel(const sgd__shape *s)
{
    int64_t n = 1;
    for (int32_t i = 0; i < s->rank; i++)
        n *= s->d[i];
    return n;
}

/* The last dimension (features of a vector, of a time step, or an image's width). */
static inline int64_t sgd__shape_last(const sgd__shape *s)
{
    return s->d[s->rank - 1];
}

static inline sgd__shape sgd__shape_vec(int64_t n)
{
    sgd__shape s = {1, {n, 1, 1}};
    return s;
}

/* "784", "1x28x28" (the spec's form; always terminated). */
void sgd__shape_str(const sgd__shape *s, char *buf, size_t n);

/* ---------------------------------------------------------------- tensors of a layer */

/* What a layer's tensor is. */
enum {
    /* A trainable parameter: in the parameter and gradient arenas, handed to optimizers. */
    SGD__ROLE_PARAM = 1,
    /* A buffer of torch's state_dict (running statistics): its own arena, checkpointed, never optimized. */
    SGD__ROLE_BUFFER = 2,
    /*
     * Per-sample persistent state (a recurrent layer's hidden state carried
     * across batches): shape is per sample, the model prepends max_batch;
     * not in the state_dict; zeroed by sgd_model_reset_state().
     */
    SGD__ROLE_STATE = 3
};

/* 34: a recurrent layer of 8 stacked layers has 4 parameters each and 2 state tensors. */
#define SGD__LAYER_MAX_TENSORS 34

typedef struct sgd__tdesc {
    const char *name;   /* torch's attribute name: "weight", "running_mean" (static storage) */
    int32_t role;       /* SGD__ROLE_* */
    int32_t param_kind; /* parameters: SGD_PARAM_WEIGHT (arena's first group) or SGD_PARAM_BIAS */
    int32_t dtype;      /* SGD_DTYPE_F32, or SGD_DTYPE_I64 for counters (num_batches_tracked) */
    int32_t rank;       /* 0 for a scalar (as torch's num_batches_tracked) to 4 */
    int64_t shape[4];   /* unused dimensions 1 */
} sgd__tdesc;

static inline size_t sgd__tdesc_numel(const sgd__tdesc *d)
{
    size_t n = 1;
    for (int32_t i = 0; i < d->rank; i++)
        n *= (size_t)d->shape[i];
    return n;
}

/* ---------------------------------------------------------------- layers and sequences */

#define SGD__LAYER_MAX_INTS 10
#define SGD__LAYER_MAX_REALS 4
#define SGD__LAYER_MAX_SUBS 2

struct sgd__layer_op;
struct sgd__seq;

typedef struct sgd__layer {
    const struct sgd__layer_op *op;
    int64_t ia[SGD__LAYER_MAX_INTS];   /* the kind's integer arguments, as its parse set them */
    double da[SGD__LAYER_MAX_REALS];   /* the kind's real arguments */
    sgd__shape in, out;                /* per-sample shapes (set when the layer is added) */
    struct sgd__seq *sub[SGD__LAYER_MAX_SUBS]; /* nested sequences (a residual block's body, shortcut) */
    /* Set by build: */
    size_t n_t;                        /* tensors, in the order op->tensors gives */
    sgd__tdesc td[SGD__LAYER_MAX_TENSORS];
    void *t[SGD__LAYER_MAX_TENSORS];   /* their data: parameter arena, buffer arena or state */
    float *gt[SGD__LAYER_MAX_TENSORS]; /* parameters: the same view into the gradient arena; else NULL */
    bool fused;                        /* an activation applied in place by the producing layer before it */
    struct sgd__layer *fuse_next;      /* a producer: the fused activation after it, or NULL */
    float *fuse_gbias;                 /* a fused activation: the producer's bias gradient (over the last
                                          dimension) that its backward accumulates, or NULL */
    bool bwd_by_producer;              /* a fused activation whose derivative the producer applies */
    bool plane_fused;                  /* a window layer (maxpool2d) that the producer before it (or before
                                          its fused activation) runs plane by plane in its own output pass */
    struct sgd__layer *fuse_pool;      /* a producer: that window layer, or NULL (then it writes no output
                                          of its own: its buf is NULL, and its backward is handed the
                                          gradient of the window layer's output) */
    struct sgd__layer *lookup_from;    /* a consumer of a lookup (op->lookup) before it, which it does itself */
    struct sgd__layer *lookup_into;    /* a lookup: the consumer that does its work, or NULL */
    float *buf;                        /* own output [max_batch x numel(out)], or NULL */
    void *ws;                          /* op->workspace bytes, or NULL */
    /* Set by each forward pass: */
    const float *y;                    /* this pass's output: buf, the producer's buf, or the input */
} sgd__layer;

typedef struct sgd__seq {
    sgd__layer *layers;
    size_t n, cap;
    sgd__shape in;
} sgd__seq;

static inline const sgd__shape *sgd__seq_out(const sgd__seq *s)
{
    return s->n ? &s->layers[s->n - 1].out : &s->in;
}

/* What a pass hands to every layer. */
typedef struct sgd__pass {
    int64_t batch;
    bool training;   /* dropout active, batch statistics */
    sgd__rng *rng;   /* the model's dropout generator */
    const char *fn;  /* public function, for messages */
} sgd__pass;

/* ---------------------------------------------------------------- parsing */

/* One token of a spec being parsed: "conv2d(32,3,padding=1)". */
typedef struct sgd__lspec {
    const char *fn;
    const char *spec;      /* the whole spec, for messages (may be the token alone) */
    const char *where;     /* "layer 3", "layer 5 (residual) layer 2" */
    sgd__str tok;          /* the token */
    sgd__str name;         /* its name, before '(' */
    sgd__str args;         /* between the parentheses (n = 0 without them) */
    bool has_parens;
    const sgd__shape *in;  /* the input shape of the layer being parsed */
    const sgd_allocator *alloc;
    int depth;             /* nesting of sequences (residual blocks) */
    size_t index0;         /* layers before the first token (messages number from index0 + 1) */
    int64_t vocab;         /* the vocabulary size an argument written `vocab` stands for; 0: not known */
} sgd__lspec;

/* An error about the token: "<fn>: spec '<spec>': <where> '<tok>': <detail>". */
sgd_status sgd__lspec_err(const sgd__lspec *c, sgd_status status, const char *fmt, ...) SGD__PRINTF(3, 4);

/* Arguments split at top-level commas: positionals first, then key=value. */
#define SGD__LARGS_MAX 12
typedef struct sgd__largs {
    sgd__str key[SGD__LARGS_MAX], val[SGD__LARGS_MAX];
    bool used[SGD__LARGS_MAX];
    size_t n, n_pos;
    char vocab[24];        /* the decimal value of `vocab`, which values written `vocab` point to */
} sgd__largs;

/*
 * At most max_pos positional arguments (the 0.1 layers take one). A value
 * written `vocab` ("dense(vocab)") stands for c->vocab, the vocabulary size
 * of the data (an error when it is not known).
 */
sgd_status sgd__largs_split(const sgd__lspec *c, sgd__largs *a, size_t max_pos);
/* The positional argument `pos` (-1: none) or the first of `keys` given by name; {NULL,0} if absent. */
sgd__str sgd__largs_take(sgd__largs *a, int pos, const char *const *keys);
/* Refuses arguments not taken, naming them; `usage` says what the layer takes. */
sgd_status sgd__largs_check_used(const sgd__lspec *c, const sgd__largs *a, const char *usage);

/*
 * A declarative argument list for the layers of 0.2: torch's argument names
 * in torch's positional order, with defaults and bounds. sgd__largs_parse
 * fills vals[i] (an integer or boolean is stored exactly in the double);
 * sgd__largs_print writes name(required,...,key=value for non-defaults).
 */
enum { SGD__ARG_INT = 1, SGD__ARG_REAL = 2, SGD__ARG_BOOL = 3 };
typedef struct sgd__argdef {
    const char *name;
    int32_t type;
    bool required;
    double def, lo, hi; /* hi < lo: unbounded above */
} sgd__argdef;

sgd_status sgd__largs_parse(const sgd__lspec *c, const sgd__argdef *defs, size_t n, double *vals,
                            const char *usage);
int sgd__largs_print(char *buf, size_t n, const char *name, const sgd__argdef *defs, size_t ndefs,
                     const double *vals);

/* The shortest form of v that reads back exactly, '.' whatever the locale. */
void sgd__fmt_double(char *buf, size_t n, double v);

/*
 * Parses `text` ("conv2d(16,3,padding=1)-relu") into layers appended to `s`
 * (whose input shape is set): used by the model's spec and by layers that
 * hold sequences. `depth` counts the nesting.
 */
sgd_status sgd__seq_parse(sgd__seq *s, sgd__str text, const sgd__lspec *outer, int depth);

/* Appends a layer whose op and arguments are set: computes its shapes through op->shape. */
sgd_status sgd__seq_push(sgd__seq *s, const sgd_allocator *a, sgd__layer *l, const char *fn);
/* Frees the layers' own allocations (nested sequences) and the array. */
void sgd__seq_clear(sgd__seq *s, const sgd_allocator *a);
/* A new empty sequence (allocated) with input shape `in`; NULL when out of memory. */
sgd__seq *sgd__seq_new(const sgd_allocator *a, const sgd__shape *in);
void sgd__seq_free(sgd__seq *s, const sgd_allocator *a);
/* Writes the tokens of s joined by '-' (the canonical form); returns the length it needs. */
size_t sgd__seq_print(const sgd__seq *s, char *buf, size_t n);

/* ---------------------------------------------------------------- the engine */

/* Marks fused activations in s and in nested sequences (build). */
void sgd__seq_mark_fused(sgd__seq *s);
/* Work bytes of s for batches of `batch` (outputs and workspaces); assigns them when base != NULL. */
bool sgd__seq_layout(sgd__seq *s, int64_t batch, unsigned char *base, size_t *at);
/* Widest per-sample numel of any input or output of s's layers (not nested). */
int64_t sgd__seq_widest(const sgd__seq *s);
/* Runs s forward on x (batch rows): sets every layer's y. */
sgd_status sgd__seq_forward(sgd__seq *s, const float *x, const sgd__pass *p);
/*
 * Back-propagates g (dLoss/d output of s, in gbuf[0] or gbuf[1], overwritten)
 * through layers n-1 down to `first`, adding parameter gradients; gbuf are two
 * buffers of batch x widest floats. Returns where dLoss/dx is when need_gx
 * (g itself or the other buffer), else NULL. x is the input of the forward pass.
 */
float *sgd__seq_backward(sgd__seq *s, const float *x, float *g, float *gbuf[2], size_t first, bool need_gx,
                         const sgd__pass *p);
/* The matrix products alone of a forward pass, of a backward pass (returns where dx would be), of both. */
void sgd__seq_replay_forward(sgd__seq *s, const float *x, int64_t batch);
float *sgd__seq_replay_backward(sgd__seq *s, const float *x, float *g, float *gbuf[2], size_t first, bool need_gx,
                                int64_t batch);
/* Exactly the matrix products of one forward and backward pass (the benchmark's GEMM-alone time). */
void sgd__seq_replay_gemms(sgd__seq *s, const float *x, float *g, float *gbuf[2], size_t first, bool need_gx,
                           int64_t batch);

/* ---------------------------------------------------------------- the record */

enum {
    /* Applies a fusable activation that follows it in place (op->apply on its output, with its bias). */
    SGD__OP_FUSES_NEXT = 1u << 0,
    /* Needs no output buffer of its own: its output is its input (a view, as flatten). */
    SGD__OP_NO_BUFFER = 1u << 1,
    /* With SGD__OP_FUSES_NEXT: its backward also applies the fused activation's derivative (op->derive). */
    SGD__OP_FUSED_BACKWARD = 1u << 2,
    /*
     * Takes over a lookup before it (a layer with op->lookup, the
     * embedding): it reads the token ids itself, so that the table and its
     * first matrix product combine (recurrent layers: the input projections
     * of a vocabulary instead of every position). The lookup's forward then
     * only checks the ids and passes them on, its backward does nothing.
     */
    SGD__OP_TAKES_LOOKUP = 1u << 3,
    /*
     * Runs a window layer that follows it (or follows its fused activation) plane by plane
     * (op->plane_forward, op->plane_backward) while each output plane is in cache; requires
     * SGD__OP_FUSES_NEXT and SGD__OP_FUSED_BACKWARD.
     */
    SGD__OP_FUSES_PLANES = 1u << 4,
};

typedef struct sgd__layer_op {
    int32_t kind;          /* the public sgd_layer_kind value (explicit, appended for new kinds) */
    const char *name;      /* its name in specs and messages */
    const char *alias;     /* another accepted name ("linear"), or NULL */
    uint32_t flags;        /* SGD__OP_* */
    /* The loss that applies this layer itself (softmax: cross-entropy), refused after it as last layer; 0 none. */
    int32_t redundant_before_loss;

    /* Parses c's arguments into l->ia/l->da (l->op is set, the rest zero). */
    sgd_status (*parse)(sgd__layer *l, const sgd__lspec *c);
    /* Writes the canonical token (read back by parse to the same layer); returns snprintf's count. */
    int (*print)(const sgd__layer *l, char *buf, size_t n);
    /* Sets l->out from l->in, refusing an input that does not fit (naming both shapes and the argument). */
    sgd_status (*shape)(sgd__layer *l, const char *fn);
    /* Fills d (SGD__LAYER_MAX_TENSORS at most) with its tensors in torch's state_dict order; returns the count. NULL: none. */
    size_t (*tensors)(const sgd__layer *l, sgd__tdesc *d);
    /* Initialises its parameters and buffers (views set), drawing from r in torch's order; NULL: nothing to do. */
    void (*init)(sgd__layer *l, sgd__rng *r, int32_t init);
    /* Bytes of workspace for batches of up to `batch` (saved masks, im2col columns, statistics); NULL: none. */
    bool (*workspace)(const sgd__layer *l, int64_t batch, size_t *bytes);
    /* Computes l->y from x (batch x numel(in) floats). */
    sgd_status (*forward)(sgd__layer *l, const float *x, const sgd__pass *p);
    /*
     * Given g = dLoss/dy (batch x numel(out), may be overwritten), adds the
     * parameter gradients and, when need_gx, returns dLoss/dx: g itself
     * (computed in place) or gx (batch x numel(in), distinct from g).
     * Returns NULL when !need_gx.
     */
    float *(*backward)(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, const sgd__pass *p);
    /*
     * Optional: the matrix products alone (benchmarks): of the forward pass
     * when g is NULL, else of the backward pass as backward would run them.
     */
    void (*replay_gemms)(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, int64_t batch);
    /*
     * Activations: whether a producing layer may apply it in place (NULL: never). Every
     * activation that says yes is monotone nondecreasing, so that it commutes with a
     * maximum: maxpool(f(x)) = f(maxpool(x)), and f'(x) at a window's maximum is derive's
     * value at the pooled output (what a plane-fused maxpool relies on).
     */
    bool (*fusable)(const sgd__layer *l);
    /* Activations: y = f(y + bias) in place over rows x cols (bias over cols, may be NULL). */
    void (*apply)(const sgd__layer *l, float *y, const float *bias, int64_t rows, int64_t cols);
    /* Fusable activations: g *= f'(x) in place over n values, from the output y = f(x). */
    void (*derive)(const sgd__layer *l, const float *y, float *g, int64_t n);
    /*
     * Window layers over [C, H, W] (maxpool2d): one plane at a time, for a producer with
     * SGD__OP_FUSES_PLANES. plane_forward reads plane `plane` (= sample * C + channel) of
     * its input, src [H x W], writes that plane of its own output (l->buf) and keeps what
     * its backward needs; plane_backward writes the whole input-gradient plane dst [H x W]
     * from g, the gradient of that output plane. NULL: not fusable.
     */
    void (*plane_forward)(sgd__layer *l, const float *src, int64_t plane);
    void (*plane_backward)(const sgd__layer *l, const float *g, float *dst, int64_t plane);
    /* Producers: the gradient of the bias that a fused activation's backward may accumulate (NULL: none). */
    float *(*fused_bias_grad)(sgd__layer *l);
    /* The names of its nested sequences in torch's state_dict ("body", "shortcut"); NULL for none. */
    const char *sub_names[SGD__LAYER_MAX_SUBS];
    /* Optional: checks the model's input when the layer is first (an embedding's token ids). */
    sgd_status (*check_input)(const sgd__layer *l, const float *x, int64_t batch, const char *fn);
    /*
     * Optional, a lookup: its output row r is row id(x_r) of a table of
     * *rows x *width floats; gives the table and its gradient (for a
     * SGD__OP_TAKES_LOOKUP consumer after it).
     */
    void (*lookup)(sgd__layer *l, float **table, float **grad, int64_t *rows, int64_t *width);
} sgd__layer_op;

/* The table (layers.c). */
extern const sgd__layer_op *const sgd__layer_ops[];
extern const size_t sgd__layer_n_ops;

/* The op of a kind or a spec name; NULL if none. */
const sgd__layer_op *sgd__layer_op_by_kind(int32_t kind);
const sgd__layer_op *sgd__layer_op_by_name(sgd__str name);
/* "dense, linear, relu, ..." of every kind into names (for messages; always terminated). */
void sgd__layer_names(char *names, size_t cap);

/* The records, one per kind, defined in their family's file. */
extern const sgd__layer_op sgd__op_dense;
extern const sgd__layer_op sgd__op_relu, sgd__op_leaky_relu, sgd__op_tanh, sgd__op_sigmoid, sgd__op_gelu,
    sgd__op_gelu_tanh, sgd__op_softmax;
extern const sgd__layer_op sgd__op_dropout;
extern const sgd__layer_op sgd__op_conv2d;
extern const sgd__layer_op sgd__op_maxpool2d, sgd__op_avgpool2d, sgd__op_global_avgpool2d;
extern const sgd__layer_op sgd__op_flatten;
extern const sgd__layer_op sgd__op_batchnorm1d, sgd__op_batchnorm2d, sgd__op_layernorm;
extern const sgd__layer_op sgd__op_residual;
extern const sgd__layer_op sgd__op_embedding;
extern const sgd__layer_op sgd__op_rnn, sgd__op_lstm, sgd__op_gru;

/* "CxHxW" of a per-sample shape for messages (a static-free helper: writes into buf). */
#define SGD__SHAPE_BUF 64

/* Shared hooks: a token without arguments, printed as the op's name; an output shaped as the input. */
sgd_status sgd__layer_parse_noargs(sgd__layer *l, const sgd__lspec *c);
int sgd__layer_print_name(const sgd__layer *l, char *buf, size_t n);
sgd_status sgd__layer_shape_same(sgd__layer *l, const char *fn);

/* SGD_OK if l's input is an image [C, H, W], else an error naming the layer and the shape. */
sgd_status sgd__need_image(const sgd__layer *l, const char *fn);
/* Output height and width of a window k, stride s, padding p, dilation d over l's image input; refuses a window larger than the padded input. */
sgd_status sgd__pool_dims(const sgd__layer *l, int64_t k, int64_t s, int64_t p, int64_t d, int64_t *ho, int64_t *wo,
                          const char *fn);

/* Weight initialisation helpers shared by the layers (model.c). */
void sgd__fill_uniform(sgd__rng *r, float *p, size_t n, double bound);
void sgd__fill_normal(sgd__rng *r, float *p, size_t n, double std);
/* Draws a weight of fan_in/fan_out by the model's init kind (torch: U(+-1/sqrt(fan_in))). */
void sgd__init_weight(sgd__rng *r, float *w, size_t n, int32_t init, double fan_in, double fan_out);
/* Draws a bias: torch's U(+-1/sqrt(fan_in)) for SGD_INIT_TORCH, zero otherwise. */
void sgd__init_bias(sgd__rng *r, float *b, size_t n, int32_t init, double fan_in);

#endif /* SGDLAB_MODEL_LAYER_H */
