/*
 * embedding (torch.nn.Embedding): a lookup table of num_embeddings rows of
 * embedding_dim floats, indexed by integer token ids. A sample [T] of ids
 * becomes [T, embedding_dim] (any input shape gains a last dimension, as in
 * torch, up to rank 3).
 *
 * Token ids enter through the model's float input: each value must be an
 * integer in [0, num_embeddings). Floats hold every integer up to 2^24
 * exactly, and num_embeddings is at most 2^24, so any id is represented
 * exactly; a value that is not a whole number, or is out of range, is
 * refused with a message naming its row and position (checked before the
 * pass when the embedding is the first layer, and by the pass itself
 * otherwise). docs/model.md says why floats (one entry point for every
 * model, every FFI host, every dataset and loader).
 *
 * The backward pass scatters the output gradient into the rows of the
 * table that were used (torch's dense gradient). There is no gradient for
 * the ids: dLoss/dx is zero. A recurrent layer right after an embedding
 * takes its work over (SGD__OP_TAKES_LOOKUP): it multiplies the table
 * itself, once per vocabulary entry rather than once per position.
 * SPDX-License-Identifier: MIT
 */
#include "model/kernels.h"
#include "model/layer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { NUM = 0, DIM = 1 };

static sgd_status parse(sgd__layer *l, const sgd__lspec *c)
{
    sgd__largs a;
    sgd_status st = sgd__largs_split(c, &a, 2);
    if (st != SGD_OK)
        return st;
    static const char *const nkeys[] = {"num_embeddings", NULL}, *const dkeys[] = {"embedding_dim", NULL};
    static const char usage[] = "embedding takes embedding_dim (the vocabulary from the data), or num_embeddings "
                                "and embedding_dim";
    sgd__str num = {NULL, 0}, dim = {NULL, 0};
    if (a.n_pos == 1) { /* embedding(64): the vocabulary's size for num_embeddings */
        dim = sgd__largs_take(&a, 0, dkeys);
        num = sgd__largs_take(&a, -1, nkeys);
    } else {
        num = sgd__largs_take(&a, 0, nkeys);
        dim = sgd__largs_take(&a, 1, dkeys);
    }
    if ((st = sgd__largs_check_used(c, &a, usage)) != SGD_OK)
        return st;
    if (dim.p == NULL)
        return sgd__lspec_err(c, SGD_EINVAL, "missing embedding_dim, as in embedding(64) or embedding(96,64)");
    int64_t n = c->vocab, d;
    if (num.p != NULL && (sgd__parse_int64(num, &n) != SGD_OK || n < 1 || n > SGD_MODEL_MAX_UNITS))
        return sgd__lspec_err(c, SGD_EINVAL, "num_embeddings=%.*s: expected a whole number from 1 to 16777216",
                              (int)num.n, num.p);
    if (num.p == NULL && n < 1)
        return sgd__lspec_err(c, SGD_EINVAL,
                              "num_embeddings is not given and the vocabulary size is not known (write "
                              "embedding(num_embeddings,embedding_dim), or give vocab=N among the spec's options)");
    if (sgd__parse_int64(dim, &d) != SGD_OK || d < 1 || d > SGD_MODEL_MAX_UNITS)
        return sgd__lspec_err(c, SGD_EINVAL, "embedding_dim=%.*s: expected a whole number from 1 to 16777216",
                              (int)dim.n, dim.p);
    l->ia[NUM] = n;
    l->ia[DIM] = d;
    return SGD_OK;
}

static int print(const sgd__layer *l, char *buf, size_t n)
{
    return snprintf(buf, n, "embedding(%lld,%lld)", (long long)l->ia[NUM], (long long)l->ia[DIM]);
}

static sgd_status shape(sgd__layer *l, const char *fn)
{
    if (l->in.rank >= SGD__SHAPE_MAX_RANK) {
        char in[SGD__SHAPE_BUF];
        sgd__shape_str(&l->in, in, sizeof in);
        return sgd__err(SGD_EINVAL,
                        "%s: embedding takes samples of token ids of rank 1 or 2 ([T] or [T, F]), not %s (the output "
                        "adds a dimension)",
                        fn, in);
    }
    l->out = l->in;
    l->out.d[l->out.rank++] = l->ia[DIM];
    return SGD_OK;
}

static size_t tensors(const sgd__layer *l, sgd__tdesc *d)
{
    d[0] = (sgd__tdesc){"weight", SGD__ROLE_PARAM, SGD_PARAM_WEIGHT, SGD_DTYPE_F32, 2, {l->ia[NUM], l->ia[DIM], 1, 1}};
    return 1;
}

static void init(sgd__layer *l, sgd__rng *r, int32_t init)
{
    size_t n = sgd__tdesc_numel(&l->td[0]);
    if (init == SGD_INIT_TORCH) /* torch: normal_(0, 1) */
        sgd__fill_normal(r, l->t[0], n, 1.0);
    else /* the fans torch computes for a [num, dim] weight: fan_in = dim, fan_out = num */
        sgd__init_weight(r, l->t[0], n, init, (double)l->ia[DIM], (double)l->ia[NUM]);
}

/* The first value of x (rows x per) that is not an id in [0, num), or -1. */
static int64_t find_bad_id(const float *x, int64_t count, int64_t num)
{
    float top = (float)num;
    for (int64_t i = 0; i < count; i++) {
        float v = x[i];
        if (!(v >= 0.0f && v < top && v == floorf(v)))
            return i;
    }
    return -1;
}

static sgd_status bad_id(const sgd__layer *l, const float *x, int64_t at, const char *fn)
{
    int64_t per = sgd__shape_numel(&l->in);
    return sgd__err(SGD_EINVAL,
                    "%s: x[%lld][%lld] is %.9g: an embedding takes token ids, whole numbers in [0, %lld) "
                    "(num_embeddings=%lld)",
                    fn, (long long)(at / per), (long long)(at % per), (double)x[at], (long long)l->ia[NUM],
                    (long long)l->ia[NUM]);
}

static sgd_status check_input(const sgd__layer *l, const float *x, int64_t batch, const char *fn)
{
    int64_t at = find_bad_id(x, batch * sgd__shape_numel(&l->in), l->ia[NUM]);
    return at < 0 ? SGD_OK : bad_id(l, x, at, fn);
}

static sgd_status forward(sgd__layer *l, const float *x, const sgd__pass *p)
{
    int64_t count = p->batch * sgd__shape_numel(&l->in), D = l->ia[DIM];
    int64_t at = find_bad_id(x, count, l->ia[NUM]);
    if (at >= 0)
        return bad_id(l, x, at, p->fn);
    if (l->lookup_into != NULL) { /* the next layer reads the ids and the table itself */
        l->y = x;
        return SGD_OK;
    }
    const float *w = l->t[0];
    for (int64_t i = 0; i < count; i++)
        memcpy(l->buf + (size_t)i * (size_t)D, w + (size_t)x[i] * (size_t)D, (size_t)D * sizeof(float));
    l->y = l->buf;
    return SGD_OK;
}

static void row_accumulate(float *restrict dst, const float *restrict src, int64_t n)
{
    SGD__FOR_BLOCKED(j, n, dst[j] += src[j];);
}

static float *backward(sgd__layer *l, const float *x, float *g, float *gx, bool need_gx, const sgd__pass *p)
{
    int64_t count = p->batch * sgd__shape_numel(&l->in), D = l->ia[DIM];
    float *gw = l->gt[0];
    if (l->lookup_into != NULL) /* the next layer has added the table's gradient */
        count = 0;
    for (int64_t i = 0; i < count; i++) /* ids were checked by the forward pass */
        row_accumulate(gw + (size_t)x[i] * (size_t)D, g + (size_t)i * (size_t)D, D);
    if (!need_gx)
        return NULL;
    memset(gx, 0, (size_t)(p->batch * sgd__shape_numel(&l->in)) * sizeof(float));
    return gx;
}

static void lookup(sgd__layer *l, float **table, float **grad, int64_t *rows, int64_t *width)
{
    *table = l->t[0];
    *grad = l->gt[0];
    *rows = l->ia[NUM];
    *width = l->ia[DIM];
}

const sgd__layer_op sgd__op_embedding = {
    .kind = SGD_LAYER_EMBEDDING,
    .name = "embedding",
    .parse = parse,
    .print = print,
    .shape = shape,
    .tensors = tensors,
    .init = init,
    .forward = forward,
    .backward = backward,
    .check_input = check_input,
    .lookup = lookup,
};
