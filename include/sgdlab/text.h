/*
 * libsgdlab - train small neural networks and get the learning rate right.
 * SPDX-License-Identifier: MIT
 */
/**
 * @file text.h
 * @brief Text for character-level language models: corpora read from files
 *        or memory, the vocabulary built from them, the char-rnn layout of
 *        parallel streams cut into sequences, and generation.
 *
 * A corpus (::sgd_text) is one or more files read one after the other, as
 * **UTF-8 characters** (the default: one token per Unicode code point; an
 * invalid byte sequence is refused with the file and the byte offset) or
 * as **bytes** (::SGD_TEXT_BYTES: one token per byte, any file is
 * accepted). UTF-8 characters are the default because a character model
 * then never emits half a character: everything it writes is valid text.
 * The vocabulary (::sgd_vocab) is the set of symbols that occur, numbered in
 * increasing order of code point (or byte value), so the same text always
 * gives the same ids; it is saved in checkpoints (sgd_checkpoint_parts::vocab)
 * and read back for generation.
 *
 * sgd_text_datasets() turns a corpus into the datasets a recurrent model
 * trains on: the validation part is the end of the text, the rest is cut
 * into B parallel contiguous streams (stream b starts at b/B of the way
 * through), and every stream into sequences of T tokens; row k * B + b of
 * the dataset is sequence k of stream b, with the next token of every
 * position as its labels (Karpathy's char-rnn layout). Read in order, B rows
 * per batch (the loader insists: sgd_dataset_set_streams()), each batch
 * continues the previous one in every stream, so a recurrent layer's
 * hidden state carries across batches (truncated backpropagation through
 * time), and the trainer resets it at every epoch start, where each stream
 * wraps to its beginning.
 *
 * sgd_text_generate() samples text from a trained model, one token at a
 * time, at a temperature, reproducibly for a seed.
 *
 * Thread rules: a handle is used by one thread at a time; distinct handles
 * are independent. A corpus and its vocabulary are read-only once made.
 */
#ifndef SGDLAB_TEXT_H
#define SGDLAB_TEXT_H

#include "sgdlab/core.h"
#include "sgdlab/data.h"
#include "sgdlab/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A vocabulary: the symbols (code points or bytes) of a corpus, numbered from 0.
 * @since 0.2
 */
typedef struct sgd_vocab sgd_vocab;

/**
 * @brief A corpus: its tokens (int32 ids) and its vocabulary.
 * @since 0.2
 */
typedef struct sgd_text sgd_text;

/**
 * @brief What a token is.
 * @since 0.2
 */
typedef enum sgd_text_unit {
    SGD_TEXT_UTF8 = 1, /**< One Unicode character (code point) of UTF-8 text. */
    SGD_TEXT_BYTES = 2 /**< One byte. */
} sgd_text_unit;

/** @brief The largest corpus, in bytes of input: 2^31 - 1 (token counts fit int32). @since 0.2 */
#define SGD_TEXT_MAX_BYTES ((int64_t)INT32_MAX)

/**
 * @brief Options of a corpus. Initialise with sgd_text_options_init().
 * @since 0.2
 */
typedef struct sgd_text_options {
    /** Size of this struct as the caller knows it; set by sgd_text_options_init(). */
    uint32_t struct_size;
    /** An ::sgd_text_unit (default ::SGD_TEXT_UTF8). */
    int32_t unit;
    /** Refuse more input than this many bytes in all, 1 to ::SGD_TEXT_MAX_BYTES (default ::SGD_TEXT_MAX_BYTES). */
    int64_t max_bytes;
} sgd_text_options;

/**
 * @brief Sets @p o to the defaults: UTF-8 characters, up to ::SGD_TEXT_MAX_BYTES.
 * @param o The options; NULL does nothing.
 * @since 0.2
 */
SGD_API void sgd_text_options_init(sgd_text_options *o);

/**
 * @brief A corpus from bytes in memory (copied).
 *
 * Any input is safe (this is the entry point the fuzz harness calls): an
 * empty text, invalid UTF-8 (in ::SGD_TEXT_UTF8 mode) or more than
 * max_bytes is refused with a message.
 *
 * @param out   Receives the corpus; set to NULL on failure.
 * @param data  The bytes (may be NULL only if @p size is 0).
 * @param size  Their number.
 * @param opts  Options, or NULL for the defaults.
 * @param alloc Allocator; NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EFORMAT (invalid UTF-8, naming the byte offset;
 *         an empty text); ::SGD_EOVERFLOW (more than max_bytes); ::SGD_EINVAL
 *         (NULL arguments, options out of range); ::SGD_ENOMEM.
 * @since 0.2
 */
SGD_API sgd_status sgd_text_from_memory(sgd_text **out, const void *data, size_t size, const sgd_text_options *opts,
                                        const sgd_allocator *alloc);

/**
 * @brief A corpus from files, read one after the other.
 *
 * A path that is a directory stands for the regular files in it (symbolic
 * links, hidden files and files whose name ends in ".dat" left out), in
 * byte order of their names: `/usr/share/games/fortunes` (Debian's package
 * fortunes) gives its text files without the .dat indexes and without the
 * .u8 links that repeat them.
 *
 * @param out     Receives the corpus; set to NULL on failure.
 * @param paths   @p n_paths paths of files or directories.
 * @param n_paths 1 to 4096.
 * @param opts    Options, or NULL for the defaults.
 * @param alloc   Allocator; NULL for malloc/free.
 * @return As sgd_text_from_memory() (messages name the file), plus
 *         ::SGD_EIO for a file or directory that cannot be read, or a
 *         directory without text files.
 * @since 0.2
 */
SGD_API sgd_status sgd_text_load(sgd_text **out, const char *const *paths, size_t n_paths,
                                 const sgd_text_options *opts, const sgd_allocator *alloc);

/**
 * @brief Frees a corpus (and the vocabulary it holds).
 * @param t The corpus; NULL does nothing.
 * @since 0.2
 */
SGD_API void sgd_text_free(sgd_text *t);

/**
 * @brief Number of tokens.
 * @param t The corpus.
 * @return The count; 0 if @p t is NULL.
 * @since 0.2
 */
SGD_API int64_t sgd_text_length(const sgd_text *t);

/**
 * @brief The tokens, ids into the vocabulary.
 * @param t The corpus.
 * @return sgd_text_length() ids, valid while @p t lives; NULL if @p t is NULL.
 * @since 0.2
 */
SGD_API const int32_t *sgd_text_tokens(const sgd_text *t);

/**
 * @brief The corpus's vocabulary.
 * @param t The corpus.
 * @return The vocabulary, owned by @p t (valid while it lives); NULL if @p t is NULL.
 * @since 0.2
 */
SGD_API const sgd_vocab *sgd_text_vocab(const sgd_text *t);

/**
 * @brief Number of bytes of input the corpus was read from.
 * @param t The corpus.
 * @return The byte count; 0 if @p t is NULL.
 * @since 0.2
 */
SGD_API int64_t sgd_text_bytes(const sgd_text *t);

/**
 * @brief Number of files the corpus was read from (1 for sgd_text_from_memory()).
 * @param t The corpus.
 * @return The file count; 0 if @p t is NULL.
 * @since 0.2
 */
SGD_API int64_t sgd_text_num_files(const sgd_text *t);

/* ------------------------------------------------------------------ vocabulary */

/** @brief The largest vocabulary: every Unicode code point, 0x110000 symbols. @since 0.2 */
#define SGD_VOCAB_MAX_SIZE ((int64_t)0x110000)

/**
 * @brief A vocabulary from its symbols (as read back from a checkpoint).
 * @param out     Receives the vocabulary; set to NULL on failure.
 * @param unit    An ::sgd_text_unit.
 * @param symbols @p n symbols in strictly increasing order: code points
 *                (not surrogates, at most 0x10FFFF) or bytes (at most 255).
 * @param n       1 to ::SGD_VOCAB_MAX_SIZE.
 * @param alloc   Allocator; NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL (naming the first bad symbol); ::SGD_ENOMEM.
 * @since 0.2
 */
SGD_API sgd_status sgd_vocab_new(sgd_vocab **out, int32_t unit, const uint32_t *symbols, int64_t n,
                                 const sgd_allocator *alloc);

/**
 * @brief A copy of a vocabulary (for instance to keep it after its corpus is freed).
 * @param out   Receives the copy; set to NULL on failure.
 * @param v     The vocabulary.
 * @param alloc Allocator; NULL for malloc/free.
 * @return ::SGD_OK; ::SGD_EINVAL; ::SGD_ENOMEM.
 * @since 0.2
 */
SGD_API sgd_status sgd_vocab_copy(sgd_vocab **out, const sgd_vocab *v, const sgd_allocator *alloc);

/**
 * @brief Frees a vocabulary made by sgd_vocab_new() or sgd_vocab_copy()
 *        (not one a corpus owns).
 * @param v The vocabulary; NULL does nothing.
 * @since 0.2
 */
SGD_API void sgd_vocab_free(sgd_vocab *v);

/**
 * @brief Number of symbols.
 * @param v The vocabulary.
 * @return The count; 0 if @p v is NULL.
 * @since 0.2
 */
SGD_API int64_t sgd_vocab_size(const sgd_vocab *v);

/**
 * @brief What the symbols are.
 * @param v The vocabulary.
 * @return An ::sgd_text_unit; 0 if @p v is NULL.
 * @since 0.2
 */
SGD_API int32_t sgd_vocab_unit(const sgd_vocab *v);

/**
 * @brief The symbols, in id order (strictly increasing).
 * @param v The vocabulary.
 * @return sgd_vocab_size() code points or byte values, valid while @p v lives; NULL if @p v is NULL.
 * @since 0.2
 */
SGD_API const uint32_t *sgd_vocab_symbols(const sgd_vocab *v);

/**
 * @brief Whether two vocabularies are the same (unit and symbols).
 * @param a A vocabulary.
 * @param b Another.
 * @return 1 if equal, 0 otherwise (and if either is NULL).
 * @since 0.2
 */
SGD_API int32_t sgd_vocab_equal(const sgd_vocab *a, const sgd_vocab *b);

/**
 * @brief Text to token ids.
 * @param v    The vocabulary.
 * @param text @p len bytes (UTF-8 for a character vocabulary).
 * @param len  Their number.
 * @param ids  Receives the ids; may be NULL to count them.
 * @param cap  Room in @p ids.
 * @param n    Receives the number of tokens (also when @p ids is too small).
 * @return ::SGD_OK; ::SGD_ENOTFOUND (a symbol that is not in the
 *         vocabulary, named with its offset); ::SGD_EFORMAT (invalid UTF-8);
 *         ::SGD_ERANGE (@p cap too small: nothing written past it);
 *         ::SGD_EINVAL (NULL arguments).
 * @since 0.2
 */
SGD_API sgd_status sgd_vocab_encode(const sgd_vocab *v, const char *text, size_t len, int32_t *ids, size_t cap,
                                    size_t *n);

/**
 * @brief Token ids to text (UTF-8 for a character vocabulary, bytes otherwise).
 * @param v   The vocabulary.
 * @param ids @p n ids.
 * @param n   Their number.
 * @param buf Receives the text and a terminating NUL; may be NULL to measure.
 * @param cap Size of @p buf.
 * @param len Receives the length in bytes (without the NUL), also when @p buf is too small.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL arguments, an id out of range named
 *         with its index); ::SGD_ERANGE (@p cap too small).
 * @since 0.2
 */
SGD_API sgd_status sgd_vocab_decode(const sgd_vocab *v, const int32_t *ids, size_t n, char *buf, size_t cap,
                                    size_t *len);

/* ------------------------------------------------------------------ datasets */

/**
 * @brief How a corpus is cut into datasets. Initialise with sgd_text_split_options_init().
 * @since 0.2
 */
typedef struct sgd_text_split_options {
    /** Size of this struct as the caller knows it; set by sgd_text_split_options_init(). */
    uint32_t struct_size;
    /** Padding; keep 0. */
    int32_t reserved;
    /** T, tokens per sequence (a row of the datasets), 1 to 2^24 (default 100). */
    int64_t seq_len;
    /** B, parallel streams (rows per batch), 1 to 2^20 (default 32). */
    int64_t streams;
    /** The share of the text, from its end, held out for validation, in [0, 0.5] (default 0.05); 0: none. */
    double val_fraction;
    /** Streams of the validation part, 0 to 2^20; 0 (default): as many as @c streams, fewer if it is too short. */
    int64_t val_streams;
} sgd_text_split_options;

/**
 * @brief Sets @p o to the defaults: T = 100, B = 32, the last 5% of the text
 *        for validation, in as many streams.
 * @param o The options; NULL does nothing.
 * @since 0.2
 */
SGD_API void sgd_text_split_options_init(sgd_text_split_options *o);

/**
 * @brief The training and validation datasets of a corpus, in the char-rnn
 *        layout (see the file's notes).
 *
 * Each part of n tokens gives n - 1 (input, next token) pairs, cut into B
 * streams of floor((n - 1) / B) pairs, each of them cut into
 * floor(pairs per stream / T) sequences (the rest of each stream is left
 * out). Row k * B + b holds the T token ids of sequence k of stream b as
 * floats (whole numbers, the input of a model that starts with an
 * embedding) and the T next tokens as its labels
 * (sgd_dataset_labels_per_row() is T); sgd_dataset_streams() is B and
 * sgd_dataset_num_classes() the vocabulary's size. The datasets own their
 * memory (the corpus may be freed).
 *
 * @param train Receives the training part; set to NULL on failure.
 * @param val   Receives the validation part (NULL when val_fraction is 0);
 *              may be NULL when val_fraction is 0.
 * @param t     The corpus.
 * @param opts  Options, or NULL for the defaults.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL arguments, options out of range, a
 *         text too short for one sequence of every stream, saying how many
 *         tokens it needs); ::SGD_ENOMEM.
 * @since 0.2
 */
SGD_API sgd_status sgd_text_datasets(sgd_dataset **train, sgd_dataset **val, const sgd_text *t,
                                     const sgd_text_split_options *opts);

/* ------------------------------------------------------------------ generation */

/**
 * @brief Options of sgd_text_generate(). Initialise with sgd_generate_options_init().
 * @since 0.2
 */
typedef struct sgd_generate_options {
    /** Size of this struct as the caller knows it; set by sgd_generate_options_init(). */
    uint32_t struct_size;
    /** Padding; keep 0. */
    int32_t reserved;
    /** Text the model reads first (UTF-8 for a character vocabulary, every symbol in it), or NULL (default) for none. */
    const char *prime;
    /** Symbols to generate, 0 to 2^24 (default 200). */
    int64_t length;
    /** Softmax temperature, 0 to 100 (default 1): lower is more conservative; 0 always takes the most likely symbol. */
    double temperature;
    /** Seed of the sampling (default 0): the same model, prime and seed give the same text. */
    uint64_t seed;
} sgd_generate_options;

/**
 * @brief Sets @p o to the defaults: no prime, 200 symbols, temperature 1, seed 0.
 * @param o The options; NULL does nothing.
 * @since 0.2
 */
SGD_API void sgd_generate_options_init(sgd_generate_options *o);

/**
 * @brief Bytes of output sgd_text_generate() may need for @p length symbols (with the NUL).
 * @param v      The vocabulary.
 * @param length Symbols.
 * @return 4 * length + 1 for UTF-8 characters, length + 1 for bytes; 0 if @p v is NULL or @p length < 0.
 * @since 0.2
 */
SGD_API size_t sgd_text_generate_bound(const sgd_vocab *v, int64_t length);

/**
 * @brief Samples text from a language model, one symbol at a time.
 *
 * The model's input is a sequence of token ids and its output the logits of
 * the next token at every position (the model of tokens-embedding-...-
 * dense(vocab)), with as many classes as @p v has symbols. It runs in
 * evaluation mode, one step at a time (sgd_model_set_seq_len() to 1), from a
 * zero state: it reads the prime (or, without one, a newline if the
 * vocabulary has one, else symbol 0, which is not written out), then
 * samples each symbol from softmax(logits / temperature) with a generator
 * seeded by @c seed, and reads it back. Afterwards the model is as it was:
 * its sequence length, its carried state and its mode are put back, and its
 * parameters are not touched. Changing the sequence length may allocate
 * (once: the buffers of the model's own length are kept).
 *
 * @param m    A built model (see above).
 * @param v    Its vocabulary (from the corpus, or sgd_checkpoint_load_vocab()).
 * @param opts Options, or NULL for the defaults.
 * @param out  Receives the generated text (without the prime) and a NUL.
 * @param cap  Size of @p out; sgd_text_generate_bound() is always enough.
 * @param len  Receives the length of the text in bytes (without the NUL); may be NULL.
 * @return ::SGD_OK; ::SGD_EINVAL (NULL arguments, options out of range, a
 *         model that is not a language model of this vocabulary, naming
 *         both sizes); ::SGD_ENOTFOUND (a symbol of the prime that is not in
 *         the vocabulary); ::SGD_EFORMAT (a prime that is not UTF-8);
 *         ::SGD_ERANGE (@p cap too small); ::SGD_ENOMEM.
 * @since 0.2
 */
SGD_API sgd_status sgd_text_generate(sgd_model *m, const sgd_vocab *v, const sgd_generate_options *opts, char *out,
                                     size_t cap, size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* SGDLAB_TEXT_H */
