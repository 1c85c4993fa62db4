/*
 * libsgdlab - train small neural networks and get the learning rate right.
 * SPDX-License-Identifier: MIT
 */
/**
 * @file data.h
 * @brief Datasets over host memory, minibatch loaders, and the IDX reader.
 *
 * A dataset (::sgd_dataset) is a view: rows of float32 features with either an
 * int32 class label or a row of float32 targets per sample. Views over host
 * memory are made without copying; subsets and train/validation splits are
 * views of views. A loader (::sgd_loader) walks a dataset in minibatches, in
 * order or shuffled by a seeded generator (each epoch's order depends only on
 * the seed and the epoch number), with or without the last partial batch.
 *
 * IDX files (the MNIST and Fashion-MNIST format), raw or gzip-compressed, are
 * read from a path or from memory (::sgd_idx); every field is validated against
 * the size of the data before anything is allocated, and any mismatch is an
 * error naming the problem. sgd_dataset_from_idx() turns an image file and a
 * label file into a dataset, scaling uint8 pixels to [0, 1].
 *
 * Ownership: datasets made by sgd_dataset_from_labels() and
 * sgd_dataset_from_targets() borrow the caller's arrays, which must stay valid
 * and unchanged while the dataset, or any subset, split or loader made from it,
 * is alive. Everything else a dataset needs (index arrays, data converted from
 * IDX) is owned and reference-counted: a subset, split or loader keeps it alive
 * after the dataset it came from is freed, so handles can be freed in any order.
 *
 * Thread rules: a handle is used by one thread at a time; distinct handles
 * (including a dataset and the splits made from it) may be used from different
 * threads at once.
 */
#ifndef SGDLAB_DATA_H
#define SGDLAB_DATA_H

#include "sgdlab/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A dataset: rows of float32 features with int32 labels or float32 targets.
 * @since 0.1
 */
typedef struct sgd_dataset sgd_dataset;

/**
 * @brief An iterator over a dataset's minibatches, epoch after epoch.
 * @since 0.1
 */
typedef struct sgd_loader sgd_loader;

/**
 * @brief An array decoded from an IDX file: element type, dimensions, data.
 * @since 0.1
 */
typedef struct sgd_idx sgd_idx;

/** @brief Largest number of samples (rows) a dataset may have: 2^40. @since 0.1 */
#define SGD_DATASET_MAX_ROWS ((int64_t)1 << 40)
/** @brief Largest number of features or targets per row: 2^24. @since 0.1 */
#define SGD_DATASET_MAX_DIM ((int64_t)1 << 24)

/* ------------------------------------------------------------------ datasets */

/**
 * @brief A classification dataset over host memory, without copying.
 *
 * Row @c i has the features <tt>x[i * dim .. i * dim + dim - 1]</tt> and the
 * class <tt>labels[i]</tt>. The arrays are checked once: every feature must be
 * finite and every label >= 0. The number of classes is taken as the largest
 * label plus one (sgd_dataset_num_classes()); a model checks labels against
 * its own number of outputs when it computes a loss.
 *
 * @param out    Receives the new dataset; set to NULL on failure.
 * @param x      n * dim features, row-major; borrowed (see the file's ownership rules).
 * @param labels n class labels; borrowed.
 * @param n      Number of rows, 1 to ::SGD_DATASET_MAX_ROWS.
 * @param dim    Features per row, 1 to ::SGD_DATASET_MAX_DIM.
 * @param alloc  Allocator for the dataset's own memory; NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL pointer, a size out of range or a
 *         negative label; ::SGD_ENONFINITE for a NaN or infinite feature;
 *         ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_dataset_from_labels(sgd_dataset **out, const float *x, const int32_t *labels, int64_t n,
                                           int64_t dim, const sgd_allocator *alloc);

/**
 * @brief A regression (or multi-label) dataset over host memory, without copying.
 *
 * Row @c i has the features <tt>x[i * dim ...]</tt> and the targets
 * <tt>targets[i * target_dim ...]</tt>. Every feature and target must be finite.
 *
 * @param out        Receives the new dataset; set to NULL on failure.
 * @param x          n * dim features, row-major; borrowed.
 * @param targets    n * target_dim targets, row-major; borrowed.
 * @param n          Number of rows, 1 to ::SGD_DATASET_MAX_ROWS.
 * @param dim        Features per row, 1 to ::SGD_DATASET_MAX_DIM.
 * @param target_dim Targets per row, 1 to ::SGD_DATASET_MAX_DIM.
 * @param alloc      Allocator for the dataset's own memory; NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL pointer or a size out of range;
 *         ::SGD_ENONFINITE for a NaN or infinite value; ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_dataset_from_targets(sgd_dataset **out, const float *x, const float *targets, int64_t n,
                                            int64_t dim, int64_t target_dim, const sgd_allocator *alloc);

/**
 * @brief A dataset of sequences over host memory, without copying: one class
 *        label per position of each row (cross-entropy over every position of
 *        a sequence model's output).
 *
 * Row @c i has the features <tt>x[i * dim ...]</tt> (for a text model, the
 * token ids of a sequence as whole-number floats) and the labels
 * <tt>labels[i * labels_per_row .. i * labels_per_row + labels_per_row - 1]</tt>
 * (for a language model, the next token at every position). A model whose
 * output has labels_per_row positions of classes ([T, classes] per sample)
 * trains and evaluates on it. Checks as sgd_dataset_from_labels().
 *
 * @param out            Receives the new dataset; set to NULL on failure.
 * @param x              n * dim features, row-major; borrowed.
 * @param labels         n * labels_per_row class labels; borrowed.
 * @param n              Number of rows, 1 to ::SGD_DATASET_MAX_ROWS.
 * @param dim            Features per row, 1 to ::SGD_DATASET_MAX_DIM.
 * @param labels_per_row Labels per row, 1 to ::SGD_DATASET_MAX_DIM.
 * @param alloc          Allocator for the dataset's own memory; NULL for malloc/free.
 * @return As sgd_dataset_from_labels().
 * @since 0.2
 */
SGD_API sgd_status sgd_dataset_from_sequence_labels(sgd_dataset **out, const float *x, const int32_t *labels,
                                                    int64_t n, int64_t dim, int64_t labels_per_row,
                                                    const sgd_allocator *alloc);

/**
 * @brief Labels per row: 1 for sgd_dataset_from_labels() and IDX labels,
 *        labels_per_row for sgd_dataset_from_sequence_labels().
 * @param d The dataset.
 * @return The count; 0 for a dataset with float targets or if @p d is NULL.
 * @since 0.2
 */
SGD_API int64_t sgd_dataset_labels_per_row(const sgd_dataset *d);

/**
 * @brief Declares that the rows are B parallel streams: row k * B + b is
 *        step k of stream b (the char-rnn layout of sgd_text_datasets()).
 *
 * A loader then reads the dataset in order, one step of every stream per
 * batch (it refuses shuffling and any batch size but B), so that a recurrent
 * model's state carries from one batch to the next of the same streams;
 * sgd_model_evaluate() carries it too. Subsets keep the streams when they
 * begin and end on a step boundary; shuffled splits drop them.
 *
 * @param d       The dataset.
 * @param streams B, which must divide the number of rows (at most 2^24); 0 for independent rows.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL dataset or a count that does not divide the rows.
 * @since 0.2
 */
SGD_API sgd_status sgd_dataset_set_streams(sgd_dataset *d, int64_t streams);

/**
 * @brief The number of parallel streams of the rows (sgd_dataset_set_streams()).
 * @param d The dataset.
 * @return B; 0 for independent rows or if @p d is NULL.
 * @since 0.2
 */
SGD_API int64_t sgd_dataset_streams(const sgd_dataset *d);

/**
 * @brief Frees a dataset handle. Memory it shares with subsets, splits and
 *        loaders stays alive until the last of them is freed.
 * @param d The dataset; NULL does nothing.
 * @since 0.1
 */
SGD_API void sgd_dataset_free(sgd_dataset *d);

/**
 * @brief Number of rows (samples).
 * @param d The dataset.
 * @return The number of rows; 0 if @p d is NULL.
 * @since 0.1
 */
SGD_API int64_t sgd_dataset_size(const sgd_dataset *d);

/**
 * @brief Number of features per row.
 * @param d The dataset.
 * @return The feature count; 0 if @p d is NULL.
 * @since 0.1
 */
SGD_API int64_t sgd_dataset_dim(const sgd_dataset *d);

/**
 * @brief Number of float targets per row.
 * @param d The dataset.
 * @return The target count; 0 for a dataset with class labels or if @p d is NULL.
 * @since 0.1
 */
SGD_API int64_t sgd_dataset_target_dim(const sgd_dataset *d);

/**
 * @brief Number of classes of a labelled dataset: its largest label plus one.
 *
 * A subset or split keeps the count of the dataset it came from.
 *
 * @param d The dataset.
 * @return The class count; 0 for a dataset with float targets or if @p d is NULL.
 * @since 0.1
 */
SGD_API int32_t sgd_dataset_num_classes(const sgd_dataset *d);

/**
 * @brief Reads one row.
 *
 * @param d      The dataset.
 * @param i      Row index, 0 to size - 1.
 * @param x      Receives a pointer to the row's dim features (may be NULL).
 * @param label  Receives the row's label, or -1 for a dataset with targets (may be NULL).
 * @param target Receives a pointer to the row's targets, or NULL for a
 *               dataset with labels (may be NULL).
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL dataset or an index out of range.
 *         Pointers stay valid while the dataset's memory lives.
 * @since 0.1
 */
SGD_API sgd_status sgd_dataset_row(const sgd_dataset *d, int64_t i, const float **x, int32_t *label,
                                   const float **target);

/**
 * @brief A view of @p count consecutive rows starting at @p start.
 *
 * @param out   Receives the subset; set to NULL on failure.
 * @param d     The dataset.
 * @param start First row, 0 to size - 1.
 * @param count Number of rows, 1 to size - start.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL argument or a range outside the
 *         dataset; ::SGD_ENOMEM. The subset uses @p d's allocator.
 * @since 0.1
 */
SGD_API sgd_status sgd_dataset_subset(sgd_dataset **out, const sgd_dataset *d, int64_t start, int64_t count);

/**
 * @brief Splits a dataset into a training and a validation part.
 *
 * Without shuffling, the validation part is the last @p n_val rows and the
 * training part the rows before them (both views, no copy). With shuffling,
 * @p n_val rows drawn uniformly at random by a generator seeded with @p seed
 * form the validation part and the others the training part; each part keeps
 * the rows in their original order (so an unshuffled pass reads memory
 * forwards) and holds an index array of its rows.
 *
 * @param train   Receives the training part; set to NULL on failure.
 * @param val     Receives the validation part; set to NULL on failure.
 * @param d       The dataset.
 * @param n_val   Rows in the validation part, 1 to size - 1.
 * @param shuffle Nonzero to draw the validation rows at random.
 * @param seed    Seed of the draw (ignored without shuffling).
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL argument or @p n_val out of range;
 *         ::SGD_ENOMEM. Both parts use @p d's allocator.
 * @since 0.1
 */
SGD_API sgd_status sgd_dataset_split(sgd_dataset **train, sgd_dataset **val, const sgd_dataset *d, int64_t n_val,
                                     int32_t shuffle, uint64_t seed);

/* ------------------------------------------------------------------ loaders */

/**
 * @brief Options of a loader. Initialise with sgd_loader_options_init().
 * @since 0.1
 */
typedef struct sgd_loader_options {
    /** Size of this struct as the caller knows it; set by sgd_loader_options_init(). */
    uint32_t struct_size;
    /** Nonzero (default 1): visit the rows of each epoch in a fresh random order. */
    int32_t shuffle;
    /** Nonzero: skip the last batch of an epoch when it is smaller than the batch size (default 0). */
    int32_t drop_last;
    /** Padding; keep 0. */
    int32_t reserved;
    /** Seed of the shuffling (default 0). Epoch e's order depends only on (seed, e). */
    uint64_t seed;
    /**
     * Data-parallel sharding: which share of every batch this loader returns,
     * 0 to shard_count - 1 (default 0). See sgd_loader_new().
     * @since 0.2
     */
    int32_t shard_index;
    /**
     * Data-parallel sharding: how many loaders (processes) share every batch,
     * 1 (default: no sharding) to ::SGD_LOADER_MAX_SHARDS.
     * @since 0.2
     */
    int32_t shard_count;
} sgd_loader_options;

/** @brief Largest sgd_loader_options::shard_count: 2^20. @since 0.2 */
#define SGD_LOADER_MAX_SHARDS ((int32_t)1 << 20)

/**
 * @brief Sets @p o to the defaults: shuffle on, drop_last off, seed 0, no
 *        sharding (shard 0 of 1).
 * @param o The options to initialise; NULL does nothing.
 * @since 0.1
 */
SGD_API void sgd_loader_options_init(sgd_loader_options *o);

/**
 * @brief One minibatch, as sgd_loader_next() returns it.
 *
 * The pointers refer to the loader's buffer (shuffled or index-based
 * datasets) or directly into the dataset (consecutive rows), and stay valid
 * until the next call on the loader.
 * @since 0.1
 */
typedef struct sgd_batch {
    /** size * dim features, row-major. */
    const float *x;
    /** size labels, or NULL for a dataset with targets. */
    const int32_t *labels;
    /** size * target_dim targets, or NULL for a dataset with labels. */
    const float *targets;
    /** Rows in this batch; 0 marks the end of an epoch (for a sharded loader, also an empty share: see sgd_loader_next()). */
    int64_t size;
    /** Epoch of this batch, from 0. */
    int64_t epoch;
    /** Index of this batch within its epoch, from 0 (at the end marker: the number of batches). */
    int64_t index;
} sgd_batch;

/**
 * @brief Creates a loader over @p d with minibatches of @p batch_size rows.
 *
 * The loader keeps what it needs of @p d alive (the caller's borrowed arrays
 * excepted) and allocates its batch buffer once, here: sgd_loader_next()
 * allocates nothing.
 *
 * **Sharding** (data parallelism, sgd_loader_options::shard_count = P > 1):
 * P loaders over the same dataset with the same options, one per process,
 * walk the same batches of @p batch_size rows in the same seeded order, and
 * the loader with sgd_loader_options::shard_index = r returns only its share
 * of each: the rows at positions r, r + P, r + 2P, ... of the batch (torch's
 * `DistributedSampler` takes `indices[rank::num_replicas]` the same way). The
 * P shares of a batch partition it, so the processes together see exactly the
 * batches one unsharded loader would, and sgd_loader_num_batches() is the
 * same for all of them. Shares differ by at most one row when P does not
 * divide the batch; where torch pads an epoch by repeating rows so that every
 * replica gets as many, nothing is repeated here (the trainer weights each
 * share by its rows instead). A batch of fewer than P rows (only the last
 * one of an epoch can be) leaves some shares empty.
 *
 * @param out        Receives the loader; set to NULL on failure.
 * @param d          The dataset; may be freed before the loader.
 * @param batch_size Rows per batch, 1 to 2^24.
 * @param opts       Options, or NULL for the defaults.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL argument, a batch size out of
 *         range, options that are not initialised, drop_last with a batch
 *         larger than the dataset (no batch at all), or a shard out of range;
 *         ::SGD_ENOMEM. The loader uses @p d's allocator.
 * @since 0.1 (sharding @since 0.2)
 */
SGD_API sgd_status sgd_loader_new(sgd_loader **out, const sgd_dataset *d, int64_t batch_size,
                                  const sgd_loader_options *opts);

/**
 * @brief The next minibatch.
 *
 * Batches come in order until the epoch is over; then one call returns a batch
 * with @c size 0 (the end-of-epoch marker), and the call after it starts the
 * next epoch, reshuffled:
 * @code
 * sgd_batch b;
 * while (sgd_loader_next(loader, &b) == SGD_OK && b.size > 0)
 *     train_on(b.x, b.labels, b.size);
 * @endcode
 *
 * A sharded loader may also return an empty share (@c size 0, @c x NULL) of a
 * last batch smaller than the number of shards; the end-of-epoch marker is
 * then told apart by its @c index, which equals sgd_loader_num_batches() (for
 * any loader, a batch has index < sgd_loader_num_batches() and the marker has
 * index == sgd_loader_num_batches()):
 * @code
 * int64_t nb = sgd_loader_num_batches(loader);
 * while (sgd_loader_next(loader, &b) == SGD_OK && b.index < nb)
 *     train_on_share(b.x, b.labels, b.size); // may be 0 rows: still take part in the step
 * @endcode
 *
 * @param l The loader.
 * @param b Receives the batch.
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL argument.
 * @since 0.1
 */
SGD_API sgd_status sgd_loader_next(sgd_loader *l, sgd_batch *b);

/**
 * @brief Number of batches in each epoch (without the end marker).
 * @param l The loader.
 * @return ceil(size / batch_size), or floor with drop_last; 0 if @p l is NULL.
 * @since 0.1
 */
SGD_API int64_t sgd_loader_num_batches(const sgd_loader *l);

/**
 * @brief Moves the loader to batch @p batch of epoch @p epoch, exactly where an
 *        uninterrupted run would be (for resuming from a checkpoint).
 *
 * @param l     The loader.
 * @param epoch Epoch, >= 0.
 * @param batch Batch within the epoch, 0 to sgd_loader_num_batches() (the
 *              latter: the end marker comes next).
 * @return ::SGD_OK; ::SGD_EINVAL for a NULL loader or a position out of range.
 * @since 0.1
 */
SGD_API sgd_status sgd_loader_seek(sgd_loader *l, int64_t epoch, int64_t batch);

/**
 * @brief Frees a loader.
 * @param l The loader; NULL does nothing.
 * @since 0.1
 */
SGD_API void sgd_loader_free(sgd_loader *l);

/* ------------------------------------------------------------------ IDX */

/**
 * @brief Element types of IDX files; the values are the type byte of the format.
 * @since 0.1
 */
typedef enum sgd_idx_elem_type {
    SGD_IDX_UINT8 = 0x08,   /**< unsigned byte */
    SGD_IDX_INT8 = 0x09,    /**< signed byte */
    SGD_IDX_INT16 = 0x0B,   /**< 16-bit signed integer, big-endian in the file */
    SGD_IDX_INT32 = 0x0C,   /**< 32-bit signed integer, big-endian in the file */
    SGD_IDX_FLOAT32 = 0x0D, /**< IEEE float32, big-endian in the file */
    SGD_IDX_FLOAT64 = 0x0E  /**< IEEE float64, big-endian in the file */
} sgd_idx_elem_type;

/** @brief Largest number of dimensions accepted in an IDX file. @since 0.1 */
#define SGD_IDX_MAX_RANK 8

/**
 * @brief Decodes an IDX array from memory, raw or gzip-compressed.
 *
 * The format: two zero bytes, the type byte (::sgd_idx_elem_type), the number of
 * dimensions (1 to ::SGD_IDX_MAX_RANK), each dimension as a big-endian uint32
 * (>= 1), then the elements, big-endian, row-major. A buffer starting with the
 * gzip signature (1f 8b) is inflated through zlib (one gzip member; its CRC is
 * checked). The data must be exactly as long as the dimensions say: a
 * truncated buffer, trailing bytes, a bad magic, an unknown type, a rank of 0
 * or above the cap, a zero dimension, an element count that overflows, a
 * declared size a gzip stream of this length cannot hold, or a corrupt stream
 * is refused with a message naming the problem, before any large allocation.
 * Any input is safe: this is the entry point the fuzz harness calls.
 *
 * @param out   Receives the array; set to NULL on failure.
 * @param data  The bytes (may be NULL only if @p size is 0).
 * @param size  Their number.
 * @param alloc Allocator for the array (and zlib's state); NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EFORMAT for malformed input; ::SGD_EOVERFLOW for
 *         sizes that overflow; ::SGD_EINVAL for NULL arguments; ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_idx_read_memory(sgd_idx **out, const void *data, size_t size, const sgd_allocator *alloc);

/**
 * @brief Reads and decodes an IDX file, raw or gzip-compressed, as
 *        sgd_idx_read_memory() does; errors name the path.
 *
 * @param out   Receives the array; set to NULL on failure.
 * @param path  The file's path.
 * @param alloc Allocator for the array and the file's bytes; NULL for malloc/free.
 * @return As sgd_idx_read_memory(), plus ::SGD_EIO when the file cannot be
 *         opened or read.
 * @since 0.1
 */
SGD_API sgd_status sgd_idx_read_file(sgd_idx **out, const char *path, const sgd_allocator *alloc);

/**
 * @brief Frees an IDX array.
 * @param a The array; NULL does nothing.
 * @since 0.1
 */
SGD_API void sgd_idx_free(sgd_idx *a);

/**
 * @brief The element type.
 * @param a The array.
 * @return An ::sgd_idx_elem_type value; 0 if @p a is NULL.
 * @since 0.1
 */
SGD_API int32_t sgd_idx_type(const sgd_idx *a);

/**
 * @brief The number of dimensions.
 * @param a The array.
 * @return 1 to ::SGD_IDX_MAX_RANK; 0 if @p a is NULL.
 * @since 0.1
 */
SGD_API int32_t sgd_idx_rank(const sgd_idx *a);

/**
 * @brief One dimension.
 * @param a    The array.
 * @param axis 0 to rank - 1.
 * @return The dimension (>= 1); 0 if @p a is NULL or @p axis is out of range.
 * @since 0.1
 */
SGD_API int64_t sgd_idx_dim(const sgd_idx *a, int32_t axis);

/**
 * @brief The number of elements (the product of the dimensions).
 * @param a The array.
 * @return The element count; 0 if @p a is NULL.
 * @since 0.1
 */
SGD_API int64_t sgd_idx_count(const sgd_idx *a);

/**
 * @brief The elements, converted to the host's byte order, row-major.
 * @param a The array.
 * @return A pointer valid until sgd_idx_free(), 64-byte aligned; cast it to the
 *         C type of sgd_idx_type() (::sgd_idx_elem_type). NULL if @p a is NULL.
 * @since 0.1
 */
SGD_API const void *sgd_idx_data(const sgd_idx *a);

/**
 * @brief Builds a dataset from an IDX features array and an IDX labels array.
 *
 * Row @c i of the dataset is the i-th slice along the first dimension of
 * @p features (dim = count / first dimension): uint8 values are scaled to
 * [0, 1] (divided by 255, as torchvision's ToTensor does), the other types are
 * converted to float32 unchanged (and must be finite). @p labels must have the
 * same first dimension: an integer array (each slice one value, >= 0) gives
 * class labels, a float array gives float targets (target_dim = count / first
 * dimension). The data are copied into memory the dataset owns.
 *
 * @param out      Receives the dataset; set to NULL on failure.
 * @param features The features array.
 * @param labels   The labels (or targets) array.
 * @param alloc    Allocator for the dataset; NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_ESHAPE when the first dimensions differ or an integer
 *         label slice has more than one element; ::SGD_EINVAL for NULL
 *         arguments, a negative label or a label above INT32_MAX;
 *         ::SGD_ENONFINITE, ::SGD_EOVERFLOW (sizes above the dataset caps);
 *         ::SGD_ENOMEM.
 * @since 0.1
 */
SGD_API sgd_status sgd_dataset_from_idx(sgd_dataset **out, const sgd_idx *features, const sgd_idx *labels,
                                        const sgd_allocator *alloc);

/**
 * @brief Reads two IDX files (raw or gzip) and builds a dataset from them, as
 *        sgd_idx_read_file() and sgd_dataset_from_idx() do.
 *
 * For Fashion-MNIST (Debian package dataset-fashion-mnist):
 * @code
 * sgd_dataset *train;
 * sgd_status st = sgd_dataset_load_idx(&train,
 *     "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz",
 *     "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz", NULL);
 * @endcode
 *
 * @param out           Receives the dataset; set to NULL on failure.
 * @param features_path Path of the features (images) file.
 * @param labels_path   Path of the labels file.
 * @param alloc         Allocator; NULL for malloc/free.
 * @return As sgd_idx_read_file() and sgd_dataset_from_idx(); messages name the file.
 * @since 0.1
 */
SGD_API sgd_status sgd_dataset_load_idx(sgd_dataset **out, const char *features_path, const char *labels_path,
                                        const sgd_allocator *alloc);

#ifdef __cplusplus
}
#endif

#endif /* SGDLAB_DATA_H */
