/*
 * libsgdlab - train small neural networks and get the learning rate right.
 * SPDX-License-Identifier: MIT
 */
/**
 * @file model.h
 * @brief Sequential models: layers, losses, initialisation, forward and
 *        backward passes, parameters and gradients in flat arenas.
 *
 * A model is a sequence of layers (dense, ReLU, leaky ReLU, tanh, sigmoid,
 * GELU, softmax, dropout; since 0.2 also 2-D convolution, max and average
 * pooling, flatten, batch and layer normalisation, residual blocks) over
 * samples that are vectors, sequences [T, F] or images [C, H, W], with a loss (softmax cross-entropy over class
 * labels, mean squared error, or binary cross-entropy with logits), built
 * through the C API or from a textual spec such as
 * <tt>"784-256-relu-128-relu-10"</tt> (grammar in docs/model.md and at
 * sgd_model_from_spec()). Layers, losses, initialisation and parameter names
 * follow PyTorch's nn.Sequential, nn.Linear and the loss modules with their
 * default mean reduction.
 *
 * All parameters live in one 64-byte-aligned float32 array (the parameter
 * arena) and their gradients in a second one of the same length, so that an
 * optimizer updates a model with one loop over n floats. The host can
 * enumerate the tensors in the arenas (torch-style names such as "0.weight",
 * offsets, shapes), read and write them through a pointer and a length, and
 * form parameter groups from the ranges: all weights come first, in layer
 * order, then all biases. Gradients accumulate over backward passes until
 * sgd_model_zero_grad(), as in PyTorch.
 *
 * A training step:
 * @code
 * sgd_model *m;
 * if (sgd_model_from_spec(&m, "784-256-relu-128-relu-10", NULL, NULL) != SGD_OK)
 *     die(sgd_error_last());
 * size_t n = sgd_model_num_params(m);
 * float *w = sgd_model_params(m), *g = sgd_model_grads(m);
 * double loss;
 * sgd_model_zero_grad(m);
 * sgd_model_forward_backward(m, x, labels, NULL, batch, &loss);
 * for (size_t i = 0; i < n; i++)
 *     w[i] -= lr * g[i];
 * @endcode
 *
 * Buffers for the activations are sized once, for a maximum batch size
 * (sgd_model_options::max_batch, sgd_model_reserve()); forward, loss and
 * backward allocate nothing. Matrix products go through cblas_sgemm.
 *
 * **BLAS threads.** For the small matrix products of these models one BLAS
 * thread is the robust choice: several threads win a little on an idle
 * machine but lose badly when anything else wants the cores (measured on two
 * cores: two models trained at once, or OpenBLAS next to another thread pool,
 * run several times slower). So each model has a BLAS thread count,
 * sgd_model_options::blas_threads, 1 by default, in force while a model call
 * that multiplies matrices runs (forward, backward, evaluation, prediction):
 * - with OpenBLAS 0.3.27 or later, through its thread-local count
 *   (openblas_set_num_threads_local), restored on return: nothing else in the
 *   process is affected;
 * - with older OpenBLAS (Debian 12 has 0.3.21), which has only a process-wide
 *   count: the first model call in progress saves that count and sets the
 *   model's, and the last one to return restores it. While a model call runs,
 *   a BLAS call from another thread of the host also sees the model's count.
 * A program that manages OpenBLAS's threads itself sets blas_threads to 0, and
 * the model then never touches them. With a BLAS other than OpenBLAS the
 * setting has no effect.
 *
 * Thread rules: a model is used by one thread at a time; distinct models may
 * be used from different threads at once.
 */
#ifndef SGDLAB_MODEL_H
#define SGDLAB_MODEL_H

#include "sgdlab/core.h"
#include "sgdlab/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A sequential neural network with its parameters, gradients and buffers.
 * @since 0.1
 */
typedef struct sgd_model sgd_model;

/**
 * @brief Layer kinds. The values are part of the ABI.
 * @since 0.1
 */
typedef enum sgd_layer_kind {
    SGD_LAYER_DENSE = 1,      /**< y = x W^T + b (torch.nn.Linear); W is [out, in]. */
    SGD_LAYER_RELU = 2,       /**< y = max(x, 0). */
    SGD_LAYER_LEAKY_RELU = 3, /**< y = x for x > 0, slope * x otherwise. */
    SGD_LAYER_TANH = 4,       /**< y = tanh(x). */
    SGD_LAYER_SIGMOID = 5,    /**< y = 1 / (1 + exp(-x)). */
    SGD_LAYER_GELU = 6,       /**< y = x * Phi(x), exact (erf), torch's default. */
    SGD_LAYER_GELU_TANH = 7,  /**< GELU with the tanh approximation (torch's approximate='tanh'). */
    SGD_LAYER_SOFTMAX = 8,    /**< Softmax over each row. */
    SGD_LAYER_DROPOUT = 9,    /**< Zeroes each value with probability p in training mode, scales the rest by 1/(1-p). */
    SGD_LAYER_CONV2D = 10,    /**< 2-D convolution (torch.nn.Conv2d) over [C, H, W]. @since 0.2 */
    SGD_LAYER_MAXPOOL2D = 11, /**< 2-D max pooling (torch.nn.MaxPool2d). @since 0.2 */
    SGD_LAYER_AVGPOOL2D = 12, /**< 2-D average pooling (torch.nn.AvgPool2d). @since 0.2 */
    SGD_LAYER_GLOBAL_AVGPOOL2D = 13, /**< Mean over H and W to [C, 1, 1] (torch.nn.AdaptiveAvgPool2d(1)). @since 0.2 */
    SGD_LAYER_FLATTEN = 14,   /**< Reshapes each sample to a vector (torch.nn.Flatten). @since 0.2 */
    SGD_LAYER_BATCHNORM1D = 15, /**< Batch normalisation over [C] or [C, L] (torch.nn.BatchNorm1d). @since 0.2 */
    SGD_LAYER_BATCHNORM2D = 16, /**< Batch normalisation over [C, H, W] (torch.nn.BatchNorm2d). @since 0.2 */
    SGD_LAYER_LAYERNORM = 17, /**< Layer normalisation over the last dimension (torch.nn.LayerNorm). @since 0.2 */
    SGD_LAYER_RESIDUAL = 18,  /**< y = body(x) + x, or + a projection of x when the shapes differ. @since 0.2 */
    SGD_LAYER_EMBEDDING = 19, /**< A table of vectors indexed by integer token ids (torch.nn.Embedding). @since 0.2 */
    SGD_LAYER_RNN = 20,       /**< Elman recurrent layer, tanh or relu (torch.nn.RNN, batch_first). @since 0.2 */
    SGD_LAYER_LSTM = 21,      /**< Long short-term memory, gates i, f, g, o (torch.nn.LSTM, batch_first). @since 0.2 */
    SGD_LAYER_GRU = 22        /**< Gated recurrent unit, gates r, z, n (torch.nn.GRU, batch_first). @since 0.2 */
} sgd_layer_kind;

/**
 * @brief Losses; each reduces by the mean, as PyTorch's default reduction.
 * @since 0.1
 */
typedef enum sgd_loss_kind {
    /** Softmax cross-entropy over int32 class labels (torch.nn.CrossEntropyLoss); mean over the batch. */
    SGD_LOSS_CROSS_ENTROPY = 1,
    /** Mean squared error against float targets (torch.nn.MSELoss); mean over all elements. */
    SGD_LOSS_MSE = 2,
    /** Binary cross-entropy on logits against float targets in [0, 1] (torch.nn.BCEWithLogitsLoss); mean over all elements. */
    SGD_LOSS_BCE_WITH_LOGITS = 3
} sgd_loss_kind;

/**
 * @brief Weight initialisations. Biases: PyTorch's default for ::SGD_INIT_TORCH, zero otherwise.
 * @since 0.1
 */
typedef enum sgd_init_kind {
    /** nn.Linear's default: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (Kaiming-uniform with a = sqrt(5)). */
    SGD_INIT_TORCH = 1,
    /** Glorot: U(-b, b), b = sqrt(6 / (fan_in + fan_out)). */
    SGD_INIT_XAVIER_UNIFORM = 2,
    /** Glorot: N(0, 2 / (fan_in + fan_out)). */
    SGD_INIT_XAVIER_NORMAL = 3,
    /** He (Kaiming, ReLU gain, fan_in): U(-b, b), b = sqrt(6 / fan_in). */
    SGD_INIT_HE_UNIFORM = 4,
    /** He (Kaiming, ReLU gain, fan_in): N(0, 2 / fan_in). */
    SGD_INIT_HE_NORMAL = 5
} sgd_init_kind;

/**
 * @brief Options of a model. Initialise with sgd_model_options_init().
 * @since 0.1
 */
typedef struct sgd_model_options {
    /** Size of this struct as the caller knows it; set by sgd_model_options_init(). */
    uint32_t struct_size;
    /** Weight initialisation, an ::sgd_init_kind (default ::SGD_INIT_TORCH). */
    int32_t init;
    /** Seed of the initialisation and of dropout (default 0): the same seed gives the same model, bit for bit. */
    uint64_t seed;
    /** Largest batch the buffers are sized for, 1 to 2^20 (default 256). */
    int64_t max_batch;
    /** The loss, an ::sgd_loss_kind (default ::SGD_LOSS_CROSS_ENTROPY). */
    int32_t loss;
    /** BLAS threads during the model's calls, 0 to 1024; 0 leaves the BLAS alone (default 1; see the file's notes). */
    int32_t blas_threads;
} sgd_model_options;

/**
 * @brief Sets @p o to the defaults: PyTorch initialisation, seed 0, max_batch
 *        256, cross-entropy loss, one BLAS thread.
 * @param o The options to initialise; NULL does nothing.
 * @since 0.1
 */
SGD_API void sgd_model_options_init(sgd_model_options *o);

/* ------------------------------------------------------------------ building */

/** @brief Largest width of a layer and number of inputs: 2^24. @since 0.1 */
#define SGD_MODEL_MAX_UNITS ((int64_t)1 << 24)
/** @brief Largest number of layers in a model. @since 0.1 */
#define SGD_MODEL_MAX_LAYERS 1024
/** @brief Largest max_batch. @since 0.1 */
#define SGD_MODEL_MAX_BATCH ((int64_t)1 << 20)

/**
 * @brief Starts an empty model with @p n_inputs features per sample.
 *
 * Add layers with the sgd_model_add_* functions, then call sgd_model_build().
 *
 * @param out      Receives the model; set to NULL on failure.
 * @param n_inputs Features per sample, 1 to ::SGD_MODEL_MAX_UNITS.
 * @param alloc    Allocator for everything the model owns; NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL @p out, @p n_inputs out of range or
 *         a partly set allocator; ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_model_new(sgd_model **out, int64_t n_inputs, const sgd_allocator *alloc);

/**
 * @brief Appends a dense (fully connected) layer.
 * @param m     A model not yet built.
 * @param units Output features, 1 to ::SGD_MODEL_MAX_UNITS.
 * @param bias  Nonzero to add a bias vector (as nn.Linear's bias=True).
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL model or @p units out of range;
 *         ::SGD_ESTATE after sgd_model_build(); ::SGD_EOVERFLOW past
 *         ::SGD_MODEL_MAX_LAYERS; ::SGD_ENOMEM (the model is unchanged).
 * @since 0.1
 */
SGD_API sgd_status sgd_model_add_dense(sgd_model *m, int64_t units, int32_t bias);

/**
 * @brief Appends a parameter-free activation: ::SGD_LAYER_RELU,
 *        ::SGD_LAYER_TANH, ::SGD_LAYER_SIGMOID, ::SGD_LAYER_GELU,
 *        ::SGD_LAYER_GELU_TANH or ::SGD_LAYER_SOFTMAX.
 * @param m    A model not yet built.
 * @param kind The activation.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL model or another kind;
 *         ::SGD_ESTATE after sgd_model_build(); ::SGD_EOVERFLOW; ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_model_add_activation(sgd_model *m, int32_t kind);

/**
 * @brief Appends a leaky ReLU.
 * @param m              A model not yet built.
 * @param negative_slope Slope for negative inputs, finite (torch's default is 0.01).
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL model; ::SGD_ENONFINITE;
 *         ::SGD_ESTATE; ::SGD_EOVERFLOW; ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_model_add_leaky_relu(sgd_model *m, double negative_slope);

/**
 * @brief Appends a dropout layer.
 *
 * In training mode (sgd_model_set_training()) each value is zeroed with
 * probability @p p, drawn from the model's seeded generator, and the others
 * are scaled by 1/(1-p); with p = 1 everything is zeroed. In evaluation mode
 * the layer passes its input through.
 *
 * @param m A model not yet built.
 * @param p Drop probability, in [0, 1] (torch's default is 0.5).
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL model; ::SGD_ERANGE for @p p
 *         outside [0, 1] or NaN; ::SGD_ESTATE; ::SGD_EOVERFLOW; ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_model_add_dropout(sgd_model *m, double p);

/**
 * @brief Starts an empty model whose samples have the shape @p shape:
 *        [F] (vectors), [T, F] (sequences) or [C, H, W] (images), row-major.
 *
 * A batch is then a tensor of rank 2 to 4 (N first), as in torch; the input
 * of sgd_model_forward() holds batch * (product of the dimensions) floats.
 *
 * @param out   Receives the model; set to NULL on failure.
 * @param rank  1 to 3.
 * @param shape @p rank dimensions, each 1 to ::SGD_MODEL_MAX_UNITS, at most 2^26 values in all.
 * @param alloc Allocator; NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL; ::SGD_ENOMEM.
 * @since 0.2
 */
SGD_API sgd_status sgd_model_new_shaped(sgd_model **out, int32_t rank, const int64_t *shape,
                                        const sgd_allocator *alloc);

/**
 * @brief Appends the layers of one or more spec tokens, for example
 *        <tt>"conv2d(32,3,padding=1)"</tt> or <tt>"batchnorm2d-relu"</tt>
 *        (the grammar of sgd_model_from_spec()).
 *
 * Every layer kind can be added this way, including those without a
 * function of their own. Shapes are checked as each layer is added: a layer
 * that does not fit its input is refused with both shapes in the message.
 *
 * @param m     A model not yet built.
 * @param token The token(s), NUL-terminated, at most 4096 bytes.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL argument, a malformed token or a
 *         shape that does not fit; ::SGD_ERANGE for an argument out of range;
 *         ::SGD_ESTATE after sgd_model_build(); ::SGD_EOVERFLOW;
 *         ::SGD_ENOMEM. On failure the model is unchanged.
 * @since 0.2
 */
SGD_API sgd_status sgd_model_add_layer(sgd_model *m, const char *token);

/**
 * @brief Allocates the arenas and buffers and initialises the parameters.
 *
 * The model needs at least one layer with parameters. Some combinations are refused as
 * certain mistakes: cross-entropy after a final softmax (the loss applies its
 * own), binary cross-entropy with logits after a final sigmoid, and
 * cross-entropy with fewer than 2 outputs. After this call layers can no
 * longer be added; on failure the model is unchanged and can be built again.
 *
 * @param m    The model.
 * @param opts Options, or NULL for the defaults.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL model, options out of range or not
 *         initialised, or a refused combination; ::SGD_ESTATE if already built;
 *         ::SGD_EOVERFLOW; ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_model_build(sgd_model *m, const sgd_model_options *opts);

/**
 * @brief Creates and builds a model from a textual spec.
 *
 * Grammar (whitespace around tokens is ignored):
 * @verbatim
 spec    = arch [ ":" option { "," option } ]
 arch    = INPUT { "-" layer }
 INPUT   = F | T "x" F | C "x" H "x" W           a vector, a sequence, an image (1x28x28)
         | tokens [ "(" T ")" ]                  T token ids (T from seq_len= without one)
 layer   = UNITS                                 dense layer with bias
         | name [ "(" [ arg { "," arg } ] ")" ]
 arg     = value | key "=" value                 torch's argument names and order; a value may
                                                 be `vocab`, the vocabulary size (vocab=)
 name    = dense | linear                        dense(units[, bias=0|1])
         | relu | tanh | sigmoid | softmax
         | leaky_relu                            leaky_relu([negative_slope=]0.01)
         | gelu                                  gelu([approximate=]none|tanh)
         | dropout                               dropout([p=]0.5)
         | conv2d                                conv2d(out_channels, kernel_size, stride=1, padding=0,
                                                        dilation=1, groups=1, bias=1)
         | maxpool2d | avgpool2d                 maxpool2d(kernel_size, stride=kernel_size, padding=0)
         | global_avgpool2d | flatten
         | batchnorm1d | batchnorm2d             batchnorm2d(eps=1e-5, momentum=0.1, affine=1)
         | layernorm                             layernorm(eps=1e-5, elementwise_affine=1)
         | residual                              residual(layer { "-" layer }): y = body(x) + x
         | embedding                             embedding([num_embeddings,] embedding_dim)
         | rnn                                   rnn(hidden_size[, num_layers, nonlinearity=tanh|relu,
                                                     bias, dropout])
         | lstm | gru                            lstm(hidden_size[, num_layers, bias, dropout])
 option  = loss=cross_entropy|mse|bce_with_logits
         | init=torch|xavier_uniform|xavier_normal|he_uniform|he_normal
         | seed=N | max_batch=N | blas_threads=N | vocab=N | seq_len=N
 @endverbatim
 * For example <tt>"784-256-relu-dropout(0.2)-128-leaky_relu(0.1)-10"</tt>,
 * <tt>"2-16-tanh-dense(1,bias=0):loss=mse,init=xavier_uniform,seed=7"</tt>,
 * <tt>"1x28x28-conv2d(32,3,padding=1)-relu-maxpool2d(2)-flatten-10"</tt>, or
 * the character model
 * <tt>"tokens-embedding(64)-lstm(256)-dense(vocab):vocab=113,seq_len=100"</tt>
 * (the options say what `vocab` and a bare `tokens` stand for: the size of
 * the data's vocabulary, sgd_vocab_size(), and the sequence length).
 * Dense layers and activations act on the last dimension (every time step
 * of a sequence); a residual block whose body changes the shape adds a
 * projection (a 1x1 convolution with a stride, or a dense layer). A shape
 * that does not fit (a kernel larger than its input, channels that groups
 * do not divide) is refused with both shapes in the message; see
 * docs/model.md for every layer.
 * Options in the spec override those in @p opts. Errors name the position,
 * the token and what was expected.
 *
 * @param out   Receives the built model; set to NULL on failure.
 * @param spec  The spec, NUL-terminated, at most 4096 bytes.
 * @param opts  Options, or NULL for the defaults.
 * @param alloc Allocator; NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL for a malformed spec, an unknown layer or
 *         option (::SGD_ENOTFOUND for an unknown option key), a value out of
 *         range, or as sgd_model_build(); ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_model_from_spec(sgd_model **out, const char *spec, const sgd_model_options *opts,
                                       const sgd_allocator *alloc);

/**
 * @brief Frees a model and everything it owns.
 * @param m The model; NULL does nothing.
 * @since 0.1
 */
SGD_API void sgd_model_free(sgd_model *m);

/* ------------------------------------------------------------------ queries */

/**
 * @brief The canonical spec of the model: its architecture in the grammar of
 *        sgd_model_from_spec() followed by its loss, for example
 *        <tt>"784-256-relu-128-relu-10:loss=cross_entropy"</tt>.
 * @param m The model (built or not).
 * @return A string owned by the model, valid until the next call that changes
 *         the model's layers or loss, or until it is freed; "" if @p m is NULL
 *         or out of memory.
 * @since 0.1
 */
SGD_API const char *sgd_model_spec(const sgd_model *m);

/**
 * @brief Features per sample the model takes.
 * @param m The model.
 * @return The input width; 0 if @p m is NULL.
 * @since 0.1
 */
SGD_API int64_t sgd_model_num_inputs(const sgd_model *m);

/**
 * @brief Values per sample the model produces (the width of its last layer).
 * @param m The model.
 * @return The output width; 0 if @p m is NULL.
 * @since 0.1
 */
SGD_API int64_t sgd_model_num_outputs(const sgd_model *m);

/**
 * @brief Number of layers (activations and dropout count as layers, as in nn.Sequential).
 * @param m The model.
 * @return The layer count; 0 if @p m is NULL.
 * @since 0.1
 */
SGD_API size_t sgd_model_num_layers(const sgd_model *m);

/**
 * @brief The kind of layer @p i.
 * @param m The model.
 * @param i Layer index, from 0.
 * @return An ::sgd_layer_kind; 0 if @p m is NULL or @p i out of range.
 * @since 0.1
 */
SGD_API int32_t sgd_model_layer_kind(const sgd_model *m, size_t i);

/**
 * @brief The shape of one input sample.
 * @param m     The model.
 * @param rank  Receives 1, 2 or 3.
 * @param shape Receives the dimensions; unused ones are 1.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL argument.
 * @since 0.2
 */
SGD_API sgd_status sgd_model_input_shape(const sgd_model *m, int32_t *rank, int64_t shape[3]);

/**
 * @brief The shape of one output sample (of the last layer; the input's with no layers).
 * @param m     The model.
 * @param rank  Receives 1, 2 or 3.
 * @param shape Receives the dimensions; unused ones are 1.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL argument.
 * @since 0.2
 */
SGD_API sgd_status sgd_model_output_shape(const sgd_model *m, int32_t *rank, int64_t shape[3]);

/**
 * @brief The shape of one sample at the output of layer @p i.
 * @param m     The model.
 * @param i     Layer index, from 0.
 * @param rank  Receives 1, 2 or 3.
 * @param shape Receives the dimensions; unused ones are 1.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL argument or @p i out of range.
 * @since 0.2
 */
SGD_API sgd_status sgd_model_layer_shape(const sgd_model *m, size_t i, int32_t *rank, int64_t shape[3]);

/**
 * @brief The model's loss.
 * @param m The model.
 * @return An ::sgd_loss_kind; 0 if @p m is NULL.
 * @since 0.1
 */
SGD_API int32_t sgd_model_loss_kind(const sgd_model *m);

/**
 * @brief Changes the model's loss (with the checks of sgd_model_build()).
 * @param m    The model.
 * @param kind An ::sgd_loss_kind.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL model, an unknown kind or a
 *         refused combination.
 * @since 0.1
 */
SGD_API sgd_status sgd_model_set_loss_kind(sgd_model *m, int32_t kind);

/* ------------------------------------------------------------------ parameters */

/**
 * @brief Kinds of parameter tensors.
 * @since 0.1
 */
typedef enum sgd_param_kind {
    SGD_PARAM_WEIGHT = 1, /**< A weight: a dense layer's [out, in], a convolution's [out, in/groups, k, k], a normalisation's scale [C]. */
    SGD_PARAM_BIAS = 2    /**< A bias vector, shape [out] (a normalisation's shift [C]). */
} sgd_param_kind;

/**
 * @brief A parameter tensor: a view (offset and shape) into the arenas.
 *
 * Initialise it with sgd_param_info_init() (or set @c struct_size to its
 * sizeof) before calling sgd_model_param_info(), which fills in the fields
 * that fit and leaves @c struct_size as it is, so programs built against older
 * headers keep working when fields are appended (see @ref versioned_structs).
 * @since 0.1
 */
typedef struct sgd_param_info {
    /** Set by the caller: sizeof(sgd_param_info) as it knows it. */
    uint32_t struct_size;
    /** An ::sgd_param_kind. */
    int32_t kind;
    /** Name as in PyTorch's state_dict of the equivalent nn.Sequential: "<layer>.weight" or "<layer>.bias". Owned by the model. */
    const char *name;
    /** Index of the layer it belongs to. */
    int32_t layer;
    /** Number of dimensions: 2 for dense weights (4 for convolutions, 1 for normalisation scales), 1 for biases. */
    int32_t rank;
    /** Dimensions, row-major; unused ones are 1. */
    int64_t shape[4];
    /** Offset of the first element, in floats, from the start of the arena (the same in both arenas). */
    size_t offset;
    /** Number of elements. */
    size_t numel;
} sgd_param_info;

/**
 * @brief Zeroes @p s and sets its @c struct_size, ready for sgd_model_param_info().
 *
 * Inline, so that the size it writes is that of the headers the program is
 * built with (see @ref versioned_structs).
 * @param s The struct to initialise; NULL is ignored.
 * @since 0.2
 */
static inline void sgd_param_info_init(sgd_param_info *s)
{
    SGD_OUTPUT_INIT(s);
}

/**
 * @brief Number of floats in the parameter arena (and in the gradient arena).
 * @param m The model.
 * @return The total parameter count, as torch's sum(p.numel()); 0 before
 *         sgd_model_build() or if @p m is NULL.
 * @since 0.1
 */
SGD_API size_t sgd_model_num_params(const sgd_model *m);

/**
 * @brief Number of parameter tensors.
 * @param m The model.
 * @return The tensor count; 0 before sgd_model_build() or if @p m is NULL.
 * @since 0.1
 */
SGD_API size_t sgd_model_num_param_tensors(const sgd_model *m);

/**
 * @brief Describes parameter tensor @p index.
 *
 * Tensors are numbered in arena order: every layer's weight in layer order,
 * then every layer's bias, so the weights form the range
 * [0, offset of the first bias) and the biases the rest (for example, a
 * parameter group without weight decay for the biases).
 *
 * @param m     A built model.
 * @param index 0 to sgd_model_num_param_tensors() - 1.
 * @param info  Filled in as far as its @c struct_size goes; that must be set.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL argument, an index out of range or a
 *         struct_size smaller than the struct's first release; ::SGD_ESTATE before
 *         sgd_model_build().
 * @since 0.1
 */
SGD_API sgd_status sgd_model_param_info(const sgd_model *m, size_t index, sgd_param_info *info);

/**
 * @brief Finds a parameter tensor by name (such as "2.bias").
 * @param m     A built model.
 * @param name  The name.
 * @param index Receives its index.
 * @return ::SGD_OK; ::SGD_ENOTFOUND if no tensor has that name; ::SGD_EINVAL
 *         for a NULL argument; ::SGD_ESTATE before sgd_model_build().
 * @since 0.1
 */
SGD_API sgd_status sgd_model_find_param(const sgd_model *m, const char *name, size_t *index);

/**
 * @brief The parameter arena: sgd_model_num_params() floats, 64-byte aligned.
 *
 * The host (an optimizer, an FFI binding) may read and write it directly;
 * the pointer stays valid until the model is freed.
 * @param m The model.
 * @return The arena; NULL before sgd_model_build() or if @p m is NULL.
 * @since 0.1
 */
SGD_API float *sgd_model_params(sgd_model *m);

/**
 * @brief The gradient arena: sgd_model_num_params() floats, 64-byte aligned,
 *        laid out as the parameter arena.
 * @param m The model.
 * @return The arena; NULL before sgd_model_build() or if @p m is NULL.
 * @since 0.1
 */
SGD_API float *sgd_model_grads(sgd_model *m);

/**
 * @brief Copies the parameters out.
 * @param m   A built model.
 * @param dst Receives the parameters.
 * @param n   Length of @p dst; must equal sgd_model_num_params().
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL argument; ::SGD_ESHAPE for a wrong
 *         @p n; ::SGD_ESTATE before sgd_model_build().
 * @since 0.1
 */
SGD_API sgd_status sgd_model_get_params(const sgd_model *m, float *dst, size_t n);

/**
 * @brief Overwrites the parameters.
 * @param m   A built model.
 * @param src The new parameters, all finite.
 * @param n   Length of @p src; must equal sgd_model_num_params().
 * @return ::SGD_OK; ::SGD_EINVAL; ::SGD_ESHAPE; ::SGD_ENONFINITE (naming the
 *         first non-finite value; nothing is changed); ::SGD_ESTATE.
 * @since 0.1
 */
SGD_API sgd_status sgd_model_set_params(sgd_model *m, const float *src, size_t n);

/**
 * @brief Sets every gradient to zero.
 * @param m A built model.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL model; ::SGD_ESTATE before sgd_model_build().
 * @since 0.1
 */
SGD_API sgd_status sgd_model_zero_grad(sgd_model *m);

/**
 * @brief Re-initialises the model as sgd_model_build() would with @p seed:
 *        parameters drawn again, gradients zeroed, dropout generator reseeded.
 * @param m    A built model.
 * @param seed The seed.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL model; ::SGD_ESTATE before sgd_model_build().
 * @since 0.1
 */
SGD_API sgd_status sgd_model_reset(sgd_model *m, uint64_t seed);

/**
 * @brief Reads the state of the dropout generator (four words of xoshiro256**),
 *        for checkpoints that resume bit for bit.
 * @param m     The model.
 * @param state Receives the four words.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL argument.
 * @since 0.1
 */
SGD_API sgd_status sgd_model_get_rng_state(const sgd_model *m, uint64_t state[4]);

/**
 * @brief Restores the state of the dropout generator.
 * @param m     The model.
 * @param state Four words from sgd_model_get_rng_state(); not all zero.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL argument or an all-zero state.
 * @since 0.1
 */
SGD_API sgd_status sgd_model_set_rng_state(sgd_model *m, const uint64_t state[4]);

/* ------------------------------------------------------------------ every tensor (0.2) */

/**
 * @brief Element types of the model's tensors.
 * @since 0.2
 */
typedef enum sgd_dtype {
    SGD_DTYPE_F32 = 1, /**< float32 (parameters, running statistics, state). */
    SGD_DTYPE_I64 = 2  /**< int64 (counters such as batchnorm's num_batches_tracked). */
} sgd_dtype;

/**
 * @brief What a tensor of the model is.
 * @since 0.2
 */
typedef enum sgd_tensor_role {
    /** A trainable parameter, in the parameter and gradient arenas (sgd_model_params()). */
    SGD_TENSOR_PARAM = 1,
    /**
     * A buffer of torch's state_dict (running statistics), in the buffer arena
     * (sgd_model_buffers()): updated by training-mode forward passes, saved in
     * checkpoints, never handed to optimizers.
     */
    SGD_TENSOR_BUFFER = 2,
    /**
     * Per-sample state carried from one batch to the next (a recurrent layer's
     * hidden state), shape [max_batch, ...]: not in the state_dict, zeroed by
     * sgd_model_reset_state(), moved by sgd_model_reserve().
     */
    SGD_TENSOR_STATE = 3
} sgd_tensor_role;

/**
 * @brief A tensor of the model: a parameter, a buffer or a piece of state.
 *
 * Initialise with sgd_tensor_info_init() (it sets @c struct_size), then call
 * sgd_model_tensor_info(), which fills in the fields that fit.
 * @since 0.2
 */
typedef struct sgd_tensor_info {
    /** Set by sgd_tensor_info_init(): sizeof(sgd_tensor_info) as the caller knows it. */
    uint32_t struct_size;
    /** An ::sgd_tensor_role. */
    int32_t role;
    /** Name as in torch's state_dict of the equivalent nn.Sequential ("0.weight", "1.running_mean", "3.body.0.weight"). Owned by the model. */
    const char *name;
    /** Index of the (top-level) layer it belongs to. */
    int32_t layer;
    /** Parameters: an ::sgd_param_kind (which group of the arena it is in); 0 otherwise. */
    int32_t param_kind;
    /** An ::sgd_dtype. */
    int32_t dtype;
    /** Number of dimensions, 0 (a scalar such as num_batches_tracked) to 4. */
    int32_t rank;
    /** Dimensions, row-major; unused ones are 1. */
    int64_t shape[4];
    /** Number of elements. */
    size_t numel;
    /** Parameters: offset in floats into the parameter (and gradient) arena; buffers: offset in bytes into the buffer arena; state: offset in bytes per sample row block (informative). */
    size_t offset;
    /** Its data, owned by the model: valid until the model is freed (state: until sgd_model_reserve()). */
    void *data;
} sgd_tensor_info;

/**
 * @brief Sets @p info to zero with its @c struct_size.
 *
 * Inline, so that the size it writes is that of the headers the program is
 * built with (see @ref versioned_structs).
 * @param info The struct; NULL does nothing.
 * @since 0.2
 */
static inline void sgd_tensor_info_init(sgd_tensor_info *info)
{
    SGD_OUTPUT_INIT(info);
}

/**
 * @brief Number of tensors of the model: its state_dict entries (parameters
 *        and buffers, in torch's order) followed by its per-sample state.
 * @param m The model.
 * @return The count; 0 before sgd_model_build() or if @p m is NULL.
 * @since 0.2
 */
SGD_API size_t sgd_model_num_tensors(const sgd_model *m);

/**
 * @brief Describes tensor @p index in state_dict order.
 *
 * Indices 0 to (entries of the state_dict) - 1 are in the order and under
 * the names of torch's state_dict() of the equivalent nn.Sequential (each
 * layer's parameters, then its buffers, then the layers it holds); the
 * per-sample state follows. This numbering differs from
 * sgd_model_param_info()'s, which keeps the weights-then-biases order of the
 * parameter arena.
 *
 * @param m     A built model.
 * @param index 0 to sgd_model_num_tensors() - 1.
 * @param info  Filled in; initialise it with sgd_tensor_info_init().
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL argument, an index out of range or
 *         a struct_size too small; ::SGD_ESTATE before sgd_model_build().
 * @since 0.2
 */
SGD_API sgd_status sgd_model_tensor_info(const sgd_model *m, size_t index, sgd_tensor_info *info);

/**
 * @brief Finds a tensor by name (such as "1.running_var").
 * @param m     A built model.
 * @param name  The name.
 * @param index Receives its index for sgd_model_tensor_info().
 * @return ::SGD_OK; ::SGD_ENOTFOUND; ::SGD_EINVAL for a NULL argument;
 *         ::SGD_ESTATE before sgd_model_build().
 * @since 0.2
 */
SGD_API sgd_status sgd_model_find_tensor(const sgd_model *m, const char *name, size_t *index);

/**
 * @brief Copies a tensor out.
 * @param m     A built model.
 * @param index Its index.
 * @param dst   Receives numel elements of its dtype.
 * @param bytes Size of @p dst; must be numel times 4 (float32) or 8 (int64).
 * @return ::SGD_OK; ::SGD_EINVAL; ::SGD_ESHAPE for a wrong @p bytes; ::SGD_ESTATE.
 * @since 0.2
 */
SGD_API sgd_status sgd_model_read_tensor(const sgd_model *m, size_t index, void *dst, size_t bytes);

/**
 * @brief Overwrites a tensor (a parameter, a buffer or state).
 * @param m     A built model.
 * @param index Its index.
 * @param src   numel elements of its dtype: finite floats, counters >= 0.
 * @param bytes Size of @p src; must be numel times 4 or 8.
 * @return ::SGD_OK; ::SGD_EINVAL; ::SGD_ESHAPE; ::SGD_ENONFINITE naming the
 *         element; ::SGD_ERANGE for a negative counter (nothing is changed);
 *         ::SGD_ESTATE.
 * @since 0.2
 */
SGD_API sgd_status sgd_model_write_tensor(sgd_model *m, size_t index, const void *src, size_t bytes);

/**
 * @brief Size in bytes of the buffer arena (0 for a model without buffers).
 * @param m The model.
 * @return The size; 0 before sgd_model_build() or if @p m is NULL.
 * @since 0.2
 */
SGD_API size_t sgd_model_buffer_bytes(const sgd_model *m);

/**
 * @brief The buffer arena: every buffer at the byte offset its
 *        sgd_tensor_info gives, 64-byte aligned as a whole, each buffer 8-byte aligned.
 * @param m The model.
 * @return The arena; NULL before sgd_model_build() or if @p m is NULL.
 * @since 0.2
 */
SGD_API void *sgd_model_buffers(sgd_model *m);

/**
 * @brief Zeroes the per-sample state (::SGD_TENSOR_STATE tensors), as at the
 *        start of an epoch; nothing for a model without state.
 * @param m A built model.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL model; ::SGD_ESTATE before sgd_model_build().
 * @since 0.2
 */
SGD_API sgd_status sgd_model_reset_state(sgd_model *m);

/**
 * @brief Size in bytes of the model's whole per-sample state: every
 *        ::SGD_TENSOR_STATE tensor ([max_batch, ...] float32 each), one after
 *        the other in sgd_model_tensor_info() order.
 * @param m The model.
 * @return The size; 0 for a model without state, before sgd_model_build() or if @p m is NULL.
 * @since 0.2
 */
SGD_API size_t sgd_model_state_size(const sgd_model *m);

/**
 * @brief Copies the whole per-sample state out (a recurrent layer's hidden
 *        state, as the next forward pass would start from it).
 * @param m     A built model.
 * @param dst   Receives sgd_model_state_size() bytes.
 * @param bytes Must equal sgd_model_state_size().
 * @return ::SGD_OK; ::SGD_EINVAL; ::SGD_ESHAPE for a wrong @p bytes; ::SGD_ESTATE before sgd_model_build().
 * @since 0.2
 */
SGD_API sgd_status sgd_model_get_state(const sgd_model *m, void *dst, size_t bytes);

/**
 * @brief Overwrites the whole per-sample state (from sgd_model_get_state()).
 * @param m     A built model.
 * @param src   sgd_model_state_size() bytes of finite floats.
 * @param bytes Must equal sgd_model_state_size().
 * @return ::SGD_OK; ::SGD_EINVAL; ::SGD_ESHAPE; ::SGD_ENONFINITE naming the
 *         element (nothing is changed); ::SGD_ESTATE.
 * @since 0.2
 */
SGD_API sgd_status sgd_model_set_state(sgd_model *m, const void *src, size_t bytes);

/**
 * @brief The sequence length T of the model's samples: the first dimension
 *        of a [T] (token ids) or [T, F] input.
 * @param m The model.
 * @return T; 0 for images or if @p m is NULL.
 * @since 0.2
 */
SGD_API int64_t sgd_model_seq_len(const sgd_model *m);

/**
 * @brief Changes the sequence length of the model's samples, for example to
 *        1 for generating one step at a time, and back.
 *
 * Every layer is reshaped; a model whose parameters depend on the length (a
 * flatten before a dense layer) or that holds residual blocks is refused.
 * The activation buffers are laid out again: in the ones the model has when
 * they are large enough (a shorter length, or back to one the model had),
 * else in new ones (this call then allocates, as sgd_model_reserve()).
 * Parameters, gradients, buffers and the carried state are kept. The
 * results of the last forward pass are discarded.
 *
 * @param m       A built model whose input is [T] or [T, F].
 * @param seq_len The new T, 1 to 2^24.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL, out of range, images, a length the
 *         layers do not allow, naming the layer); ::SGD_ESTATE before
 *         sgd_model_build(); ::SGD_ENOMEM (the model is unchanged).
 * @since 0.2
 */
SGD_API sgd_status sgd_model_set_seq_len(sgd_model *m, int64_t seq_len);

/* ------------------------------------------------------------------ modes and buffers */

/**
 * @brief Switches between training mode (dropout active; the default) and
 *        evaluation mode, as torch's module.train() and module.eval().
 * @param m        The model.
 * @param training Nonzero for training mode.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL model.
 * @since 0.1
 */
SGD_API sgd_status sgd_model_set_training(sgd_model *m, int32_t training);

/**
 * @brief Whether the model is in training mode.
 * @param m The model.
 * @return 1 in training mode, 0 in evaluation mode or if @p m is NULL.
 * @since 0.1
 */
SGD_API int32_t sgd_model_is_training(const sgd_model *m);

/**
 * @brief The largest batch the buffers hold.
 * @param m The model.
 * @return max_batch; 0 if @p m is NULL.
 * @since 0.1
 */
SGD_API int64_t sgd_model_max_batch(const sgd_model *m);

/**
 * @brief Resizes the activation buffers for batches of up to @p max_batch rows.
 *
 * This is the only call after sgd_model_build() that allocates. It discards
 * the results of the last forward pass.
 *
 * @param m         A built model.
 * @param max_batch 1 to ::SGD_MODEL_MAX_BATCH.
 * @return ::SGD_OK; ::SGD_EINVAL; ::SGD_ESTATE before sgd_model_build();
 *         ::SGD_ENOMEM (the old buffers are kept).
 * @since 0.1
 */
SGD_API sgd_status sgd_model_reserve(sgd_model *m, int64_t max_batch);

/**
 * @brief Sets the BLAS thread count used during the model's calls (see the
 *        file's notes); 0 leaves the BLAS alone.
 * @param m       The model.
 * @param threads 0 to 1024.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL model or a count out of range.
 * @since 0.1
 */
SGD_API sgd_status sgd_model_set_blas_threads(sgd_model *m, int32_t threads);

/* ------------------------------------------------------------------ computing */

/**
 * @brief Runs the model forward on a batch.
 *
 * @p x is checked (every value finite). In training mode dropout draws its
 * masks. The outputs stay in the model until the next forward pass, and @p x
 * is read again by sgd_model_backward(): it must stay valid and unchanged
 * until then.
 *
 * @param m     A built model.
 * @param x     batch * sgd_model_num_inputs() floats, row-major.
 * @param batch Rows, 1 to sgd_model_max_batch().
 * @param out   Receives a pointer to the batch * sgd_model_num_outputs()
 *              outputs (logits for the built-in losses); may be NULL.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL model or @p x, or @p batch out of
 *         range; ::SGD_ENONFINITE naming the first non-finite input;
 *         ::SGD_ESTATE before sgd_model_build().
 * @since 0.1
 */
SGD_API sgd_status sgd_model_forward(sgd_model *m, const float *x, int64_t batch, const float **out);

/**
 * @brief Computes the loss of the last forward pass and prepares the backward pass.
 *
 * Cross-entropy reads @p labels (each in [0, outputs)); MSE and BCE-with-logits
 * read @p targets (batch * outputs floats, finite); the other pointer is
 * ignored. A non-finite loss from finite inputs (a diverging run) is not an
 * error: it is returned as it is, for the host or the health monitor to see.
 *
 * @param m       A model after sgd_model_forward().
 * @param labels  Class labels, or NULL.
 * @param targets Targets, or NULL.
 * @param loss    Receives the mean loss; may be NULL.
 * @return ::SGD_OK; ::SGD_EINVAL for the missing labels or targets or a label
 *         out of range (named with its row); ::SGD_ENONFINITE for a non-finite
 *         target; ::SGD_ESTATE without a forward pass.
 * @since 0.1
 */
SGD_API sgd_status sgd_model_compute_loss(sgd_model *m, const int32_t *labels, const float *targets,
                                          double *loss);

/**
 * @brief Back-propagates the last loss and adds the gradients to the gradient arena.
 *
 * Each call adds; sgd_model_zero_grad() clears. After it, another backward
 * pass needs another sgd_model_compute_loss().
 *
 * @param m The model.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL model; ::SGD_ESTATE without a
 *         loss computed since the last forward or backward pass.
 * @since 0.1
 */
SGD_API sgd_status sgd_model_backward(sgd_model *m);

/**
 * @brief Back-propagates a gradient of the host's own loss with respect to the
 *        outputs of the last forward pass, adding to the gradient arena.
 * @param m           A model after sgd_model_forward().
 * @param grad_output batch * outputs floats: dLoss/dOutput, finite.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL argument; ::SGD_ENONFINITE;
 *         ::SGD_ESTATE without a forward pass.
 * @since 0.1
 */
SGD_API sgd_status sgd_model_backward_from(sgd_model *m, const float *grad_output);

/**
 * @brief One training computation: forward, loss and backward on a batch,
 *        adding the gradients to the gradient arena. Allocates nothing.
 *
 * @param m       A built model.
 * @param x       batch * inputs floats.
 * @param labels  Class labels for cross-entropy, else ignored (may be NULL).
 * @param targets Targets for MSE and BCE-with-logits, else ignored (may be NULL).
 * @param batch   Rows, 1 to sgd_model_max_batch().
 * @param loss    Receives the mean loss; may be NULL.
 * @return As sgd_model_forward(), sgd_model_compute_loss() and sgd_model_backward().
 * @since 0.1
 */
SGD_API sgd_status sgd_model_forward_backward(sgd_model *m, const float *x, const int32_t *labels,
                                              const float *targets, int64_t batch, double *loss);

/**
 * @brief Outputs for any number of rows, in evaluation mode (dropout off),
 *        batch by batch; the training mode is restored afterwards.
 *
 * Discards the results of the last forward pass.
 *
 * @param m       A built model.
 * @param x       n * inputs floats.
 * @param n       Rows, >= 1.
 * @param out     Receives n * outputs floats.
 * @param out_len Length of @p out, at least n * outputs.
 * @return ::SGD_OK; ::SGD_EINVAL; ::SGD_ESHAPE for a short @p out;
 *         ::SGD_ENONFINITE; ::SGD_ESTATE before sgd_model_build().
 * @since 0.1
 */
SGD_API sgd_status sgd_model_predict(sgd_model *m, const float *x, int64_t n, float *out, size_t out_len);

/**
 * @brief Mean loss and accuracy over a whole dataset, in evaluation mode,
 *        batch by batch; the training mode is restored afterwards.
 *
 * Accuracy: for cross-entropy, the share of rows whose largest output is at
 * the label; for BCE-with-logits, the share of outputs on the same side of 0
 * as their target is of 0.5; for MSE, NaN. Gradients are not touched; the
 * results of the last forward pass are discarded. Allocates nothing.
 *
 * @param m          A built model.
 * @param d          A dataset whose rows have sgd_model_num_inputs() features
 *                   and labels (cross-entropy) or outputs-wide targets.
 * @param batch_size Rows per batch, 0 for sgd_model_max_batch().
 * @param loss       Receives the mean loss over all rows; may be NULL.
 * @param accuracy   Receives the accuracy in [0, 1]; may be NULL.
 * @return ::SGD_OK; ::SGD_EINVAL for NULL arguments, a batch size out of range
 *         or a label out of range; ::SGD_ESHAPE when the dataset does not fit
 *         the model; ::SGD_ESTATE before sgd_model_build().
 * @since 0.1
 */
SGD_API sgd_status sgd_model_evaluate(sgd_model *m, const sgd_dataset *d, int64_t batch_size, double *loss,
                                      double *accuracy);

#ifdef __cplusplus
}
#endif

#endif /* SGDLAB_MODEL_H */
