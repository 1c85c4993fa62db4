/*
 * Training state in checkpoint files: one section per object (model,
 * optimizer, schedule, monitor) on top of the container format.
 * SPDX-License-Identifier: MIT
 */
#include "ckpt_internal.h"

#include "core/abi.h"

#include <stdio.h>
#include <string.h>

/* Every section this library writes: check_sections() refuses others marked required. */
static const char *const known_sections[] = {"model", "optim", "sched", "monitor", "trainer"};
#define N_KNOWN (sizeof known_sections / sizeof *known_sections)

void sgd_checkpoint_parts_init(sgd_checkpoint_parts *parts)
{
    if (parts == NULL)
        return;
    memset(parts, 0, sizeof *parts);
    parts->struct_size = sizeof *parts;
}

static sgd_status get_parts(sgd_checkpoint_parts *out, const sgd_checkpoint_parts *in, const char *fn)
{
    sgd_checkpoint_parts_init(out);
    if (in == NULL)
        return sgd__err(SGD_EINVAL, "%s: parts is NULL", fn);
    sgd_status st = sgd__options_copy(out, sizeof *out, in, SGD__FIRST(sgd_checkpoint_parts), fn, "parts");
    if (st != SGD_OK)
        return st;
    if (out->trainer != NULL) {
        /* A trainer brings its objects; a part given as well must be the trainer's own. */
        struct {
            const char *name;
            void **field;
            void *own;
        } own[] = {
            {"model", (void **)&out->model, sgd_trainer_model(out->trainer)},
            {"optim", (void **)&out->optim, sgd_trainer_optim(out->trainer)},
            {"sched", (void **)&out->sched, sgd_trainer_sched(out->trainer)},
            {"monitor", (void **)&out->monitor, sgd_trainer_monitor(out->trainer)},
        };
        for (size_t i = 0; i < sizeof own / sizeof *own; i++) {
            if (*own[i].field == NULL)
                *own[i].field = own[i].own;
            else if (*own[i].field != own[i].own)
                return sgd__err(SGD_EINVAL, "%s: parts: %s is not the trainer's own", fn, own[i].name);
        }
    }
    if (out->model == NULL && out->optim == NULL && out->sched == NULL && out->monitor == NULL && out->trainer == NULL)
        return sgd__err(SGD_EINVAL, "%s: parts: no object set (model, optim, sched, monitor or trainer)", fn);
    if (out->model != NULL && sgd_model_num_param_tensors(out->model) == 0)
        return sgd__err(SGD_EINVAL, "%s: parts: the model is not built", fn);
    return SGD_OK;
}

static int state_dtype(int32_t type)
{
    switch (type) {
    case SGD_STATE_F32: return SGD_CKPT_F32;
    case SGD_STATE_F64: return SGD_CKPT_F64;
    case SGD_STATE_I64: return SGD_CKPT_I64;
    default: return 0;
    }
}

static sgd_status add_string(sgd_ckpt_writer *w, const char *name, const char *s)
{
    int64_t len = (int64_t)strlen(s);
    return sgd_ckpt_writer_add_tensor_copy(w, name, SGD_CKPT_U8, 1, &len, s);
}

/* ------------------------------------------------------------------ save */

/* Tensor i of m if it is a buffer or state (saved besides the parameters): false for a parameter. */
static bool other_tensor(const sgd_model *m, size_t i, sgd_tensor_info *info, int *dtype)
{
    sgd_tensor_info_init(info);
    if (sgd_model_tensor_info(m, i, info) != SGD_OK || info->role == SGD_TENSOR_PARAM)
        return false;
    *dtype = info->dtype == SGD_DTYPE_I64 ? SGD_CKPT_I64 : SGD_CKPT_F32;
    return true;
}

static sgd_status add_model(sgd_ckpt_writer *w, sgd_model *m)
{
    sgd_status st;
    if ((st = sgd_ckpt_writer_begin_section(w, "model", SGD_CKPT_SECTION_REQUIRED)) != SGD_OK ||
        (st = add_string(w, "spec", sgd_model_spec(m))) != SGD_OK)
        return st;
    const float *params = sgd_model_params(m);
    for (size_t i = 0; i < sgd_model_num_param_tensors(m); i++) {
        sgd_param_info info = {.struct_size = sizeof info};
        if ((st = sgd_model_param_info(m, i, &info)) != SGD_OK)
            return st;
        if ((st = sgd_ckpt_writer_add_tensor(w, info.name, SGD_CKPT_F32, (uint32_t)info.rank, info.shape,
                                             params + info.offset)) != SGD_OK)
            return st;
    }
    /* Buffers (running statistics) and per-sample state, under their state_dict names. */
    for (size_t i = 0; i < sgd_model_num_tensors(m); i++) {
        sgd_tensor_info info;
        int dtype;
        if (other_tensor(m, i, &info, &dtype) &&
            (st = sgd_ckpt_writer_add_tensor(w, info.name, dtype, (uint32_t)info.rank, info.shape, info.data)) !=
                SGD_OK)
            return st;
    }
    uint64_t rng[4];
    int64_t four = 4;
    if ((st = sgd_model_get_rng_state(m, rng)) != SGD_OK)
        return st;
    return sgd_ckpt_writer_add_tensor_copy(w, "rng", SGD_CKPT_U64, 1, &four, rng);
}

static sgd_status add_optim(sgd_ckpt_writer *w, const sgd_allocator *a, sgd_optim *o)
{
    sgd_status st;
    if ((st = sgd_ckpt_writer_begin_section(w, "optim", SGD_CKPT_SECTION_REQUIRED)) != SGD_OK ||
        (st = add_string(w, "kind", sgd_optim_name(o))) != SGD_OK)
        return st;
    for (size_t i = 0; i < sgd_optim_state_count(o); i++) {
        const char *name;
        int32_t type;
        size_t len;
        if ((st = sgd_optim_state_describe(o, i, &name, &type, &len)) != SGD_OK)
            return st;
        int64_t dim = (int64_t)len;
        int dtype = state_dtype(type);
        const float *slot;
        if (type == SGD_STATE_F32 && sgd_optim_state_data(o, i, &slot) == SGD_OK) {
            /* Borrowed: the slot is written from where it lives. */
            if ((st = sgd_ckpt_writer_add_tensor(w, name, dtype, 1, &dim, slot)) != SGD_OK)
                return st;
            continue;
        }
        size_t bytes;
        if (dtype == 0 || !sgd__mul_size(len, sgd_ckpt_dtype_size(dtype), &bytes))
            return sgd__err(SGD_EINTERNAL, "sgd_checkpoint_add: optimizer state '%s' has type %d", name, (int)type);
        void *tmp = sgd__malloc(a, bytes);
        if (tmp == NULL)
            return sgd__err(SGD_ENOMEM, "sgd_checkpoint_add: optimizer state '%s': out of memory", name);
        st = sgd_optim_state_export(o, i, tmp, bytes);
        if (st == SGD_OK)
            st = sgd_ckpt_writer_add_tensor_copy(w, name, dtype, 1, &dim, tmp);
        sgd__free(a, tmp);
        if (st != SGD_OK)
            return st;
    }
    return SGD_OK;
}

/* A section of one f64 "state" vector (and an optional kind string). */
static sgd_status add_doubles(sgd_ckpt_writer *w, const sgd_allocator *a, const char *section, const char *kind,
                              size_t n, sgd_status (*export_fn)(const void *obj, double *buf, size_t n),
                              const void *obj)
{
    sgd_status st;
    if ((st = sgd_ckpt_writer_begin_section(w, section, SGD_CKPT_SECTION_REQUIRED)) != SGD_OK)
        return st;
    if (kind != NULL && (st = add_string(w, "kind", kind)) != SGD_OK)
        return st;
    double *tmp = sgd__calloc(a, n ? n : 1, sizeof *tmp);
    if (tmp == NULL)
        return sgd__err(SGD_ENOMEM, "sgd_checkpoint_add: %s state: out of memory", section);
    int64_t dim = (int64_t)n;
    st = export_fn(obj, tmp, n);
    if (st == SGD_OK)
        st = sgd_ckpt_writer_add_tensor_copy(w, "state", SGD_CKPT_F64, 1, &dim, tmp);
    sgd__free(a, tmp);
    return st;
}

static sgd_status sched_export(const void *s, double *buf, size_t n)
{
    return sgd_sched_state_export(s, buf, n);
}

static sgd_status monitor_export(const void *m, double *buf, size_t n)
{
    return sgd_monitor_state_export(m, buf, n);
}

sgd_status sgd_checkpoint_add(sgd_ckpt_writer *w, const sgd_checkpoint_parts *in)
{
    static const char fn[] = "sgd_checkpoint_add";
    sgd_checkpoint_parts p;
    if (w == NULL)
        return sgd__err(SGD_EINVAL, "%s: writer is NULL", fn);
    sgd_status st = get_parts(&p, in, fn);
    if (st != SGD_OK)
        return st;
    const sgd_allocator *a = sgd__ckpt_writer_alloc(w);
    if (p.model != NULL && (st = add_model(w, p.model)) != SGD_OK)
        return st;
    if (p.optim != NULL && (st = add_optim(w, a, p.optim)) != SGD_OK)
        return st;
    if (p.sched != NULL &&
        (st = add_doubles(w, a, "sched", sgd_sched_name(p.sched), sgd_sched_state_size(p.sched), sched_export,
                          p.sched)) != SGD_OK)
        return st;
    if (p.monitor != NULL) {
        size_t n = 0;
        if ((st = sgd_monitor_state_size(p.monitor, &n)) != SGD_OK ||
            (st = add_doubles(w, a, "monitor", NULL, n, monitor_export, p.monitor)) != SGD_OK)
            return st;
    }
    if (p.trainer != NULL) {
        size_t n = sgd_trainer_state_size(p.trainer);
        int64_t dim = (int64_t)n;
        unsigned char *tmp = sgd__malloc(a, n);
        if (tmp == NULL)
            return sgd__err(SGD_ENOMEM, "%s: trainer state (%zu bytes): out of memory", fn, n);
        if ((st = sgd_trainer_state_export(p.trainer, tmp, n)) == SGD_OK &&
            (st = sgd_ckpt_writer_begin_section(w, "trainer", SGD_CKPT_SECTION_REQUIRED)) == SGD_OK)
            st = sgd_ckpt_writer_add_tensor_copy(w, "state", SGD_CKPT_U8, 1, &dim, tmp);
        sgd__free(a, tmp);
        if (st != SGD_OK)
            return st;
    }
    return SGD_OK;
}

sgd_status sgd_checkpoint_add_vocab(sgd_ckpt_writer *w, const sgd_vocab *v)
{
    static const char fn[] = "sgd_checkpoint_add_vocab";
    if (w == NULL || v == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, w == NULL ? "writer" : "vocabulary");
    const sgd_allocator *a = sgd__ckpt_writer_alloc(w);
    int64_t n = sgd_vocab_size(v);
    const uint32_t *sym = sgd_vocab_symbols(v);
    int32_t *ids = sgd__malloc(a, (size_t)n * sizeof *ids);
    if (ids == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    for (int64_t i = 0; i < n; i++)
        ids[i] = (int32_t)sym[i]; /* code points fit: at most 0x10FFFF */
    sgd_status st;
    if ((st = sgd_ckpt_writer_begin_section(w, "vocab", 0)) == SGD_OK &&
        (st = sgd_ckpt_writer_add_i64(w, "unit", sgd_vocab_unit(v))) == SGD_OK)
        st = sgd_ckpt_writer_add_tensor_copy(w, "symbols", SGD_CKPT_I32, 1, &n, ids);
    sgd__free(a, ids);
    return st;
}

/* The vocabulary of the "vocab" section. */
static sgd_status read_vocab(sgd_vocab **out, const sgd_ckpt_reader *r, const sgd_allocator *alloc, const char *fn)
{
    *out = NULL;
    int64_t unit;
    sgd_ckpt_tensor_info info = {.struct_size = sizeof info};
    sgd_status st = sgd_ckpt_reader_find_tensor(r, "vocab", "symbols", &info);
    if (st != SGD_OK)
        return st;
    if ((st = sgd_ckpt_reader_read_i64(r, "vocab", "unit", &unit)) != SGD_OK)
        return st == SGD_ENOTFOUND ? st : sgd__err(SGD_EFORMAT, "%s: section 'vocab': tensor 'unit' is not an i64", fn);
    if (info.dtype != SGD_CKPT_I32 || info.rank != 1 || info.dims[0] < 1 || info.dims[0] > SGD_VOCAB_MAX_SIZE)
        return sgd__err(SGD_EFORMAT, "%s: section 'vocab': tensor 'symbols' must be i32 [1 to %lld]", fn,
                        (long long)SGD_VOCAB_MAX_SIZE);
    if (unit != SGD_TEXT_UTF8 && unit != SGD_TEXT_BYTES)
        return sgd__err(SGD_EFORMAT, "%s: section 'vocab': unit=%lld: not a text unit", fn, (long long)unit);
    sgd_allocator a;
    if ((st = sgd__allocator_init(&a, alloc, fn)) != SGD_OK)
        return st;
    int64_t n = info.dims[0];
    uint32_t *sym = sgd__malloc(&a, (size_t)n * sizeof *sym);
    if (sym == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    if ((st = sgd_ckpt_reader_read_tensor(r, "vocab", "symbols", SGD_CKPT_I32, 1, &n, sym, (size_t)n * sizeof *sym)) ==
        SGD_OK) {
        st = sgd_vocab_new(out, (int32_t)unit, sym, n, alloc);
        if (st == SGD_EINVAL) {
            sgd__err_prefix("%s: section 'vocab'", fn);
            st = SGD_EFORMAT;
        }
    }
    sgd__free(&a, sym);
    return st;
}

sgd_status sgd_checkpoint_check_vocab(const sgd_ckpt_reader *r, const sgd_vocab *v)
{
    static const char fn[] = "sgd_checkpoint_check_vocab";
    if (r == NULL || v == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, r == NULL ? "reader" : "vocabulary");
    if (sgd_ckpt_reader_find_section(r, "vocab", NULL) != SGD_OK)
        return sgd__err(SGD_ENOTFOUND, "%s: the checkpoint holds no vocabulary (no 'vocab' section)", fn);
    sgd_vocab *fv;
    sgd_status st = read_vocab(&fv, r, sgd__ckpt_reader_alloc(r), fn);
    if (st != SGD_OK)
        return st;
    bool same = sgd_vocab_equal(fv, v) != 0;
    int64_t file_size = sgd_vocab_size(fv);
    sgd_vocab_free(fv);
    if (!same)
        return sgd__err(SGD_EFORMAT,
                        "%s: the checkpoint's vocabulary (%lld symbols) is not this data's (%lld symbols): its model "
                        "reads other token ids",
                        fn, (long long)file_size, (long long)sgd_vocab_size(v));
    return SGD_OK;
}

sgd_status sgd_checkpoint_load_vocab(sgd_vocab **out, const sgd_ckpt_reader *r, const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_checkpoint_load_vocab";
    if (out != NULL)
        *out = NULL;
    if (out == NULL || r == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, out == NULL ? "out" : "reader");
    if (sgd_ckpt_reader_find_section(r, "vocab", NULL) != SGD_OK)
        return sgd__err(SGD_ENOTFOUND, "%s: the checkpoint holds no vocabulary (no 'vocab' section)", fn);
    return read_vocab(out, r, alloc, fn);
}

sgd_status sgd_checkpoint_save(const char *path, const sgd_checkpoint_parts *parts, const sgd_allocator *alloc)
{
    sgd_ckpt_writer *w;
    sgd_status st = sgd_ckpt_writer_new(&w, alloc);
    if (st != SGD_OK)
        return st;
    if ((st = sgd_checkpoint_add(w, parts)) == SGD_OK)
        st = sgd_ckpt_writer_save(w, path);
    sgd_ckpt_writer_free(w);
    return st;
}

/* ---------------------------------------------------------------- restore */

static const char fn_restore[] = "sgd_checkpoint_restore";

/* Compares a stored u8 string with `want`. */
static sgd_status check_kind(const sgd_ckpt_reader *r, const char *section, const char *what, const char *want)
{
    sgd_ckpt_tensor_info info = {.struct_size = sizeof info};
    sgd_status st = sgd_ckpt_reader_find_tensor(r, section, "kind", &info);
    if (st != SGD_OK)
        return st;
    const void *data;
    uint64_t n;
    if (info.dtype != SGD_CKPT_U8 || info.rank != 1 ||
        (st = sgd_ckpt_reader_tensor_data(r, section, "kind", &data, &n)) != SGD_OK)
        return sgd__err(SGD_EFORMAT, "%s: section '%s': tensor 'kind' is not a u8 string", fn_restore, section);
    if (n != strlen(want) || memcmp(data, want, n) != 0)
        return sgd__err(SGD_EFORMAT, "%s: section '%s': the checkpoint holds the state of %s '%.*s', not '%s'",
                        fn_restore, section, what, (int)(n > 64 ? 64 : n), (const char *)data, want);
    return SGD_OK;
}

/* Every tensor of `section` must be one of the `n` names expected. */
static sgd_status check_no_extra(const sgd_ckpt_reader *r, const char *section, size_t n_expected,
                                 bool (*expected)(const void *ctx, const char *name), const void *ctx)
{
    size_t si;
    sgd_status st = sgd_ckpt_reader_find_section(r, section, &si);
    if (st != SGD_OK)
        return st;
    sgd_ckpt_section_info sinfo = {.struct_size = sizeof sinfo};
    if ((st = sgd_ckpt_reader_section_info(r, si, &sinfo)) != SGD_OK)
        return st;
    if (sinfo.tensor_count == n_expected)
        return SGD_OK;
    for (size_t i = 0; i < sinfo.tensor_count; i++) {
        sgd_ckpt_tensor_info t = {.struct_size = sizeof t};
        if ((st = sgd_ckpt_reader_tensor_info(r, si, i, &t)) != SGD_OK)
            return st;
        if (!expected(ctx, t.name))
            return sgd__err(SGD_ESHAPE, "%s: section '%s': tensor '%s' is in the file but not in the %s", fn_restore,
                            section, t.name, strcmp(section, "model") == 0 ? "model" : "object");
    }
    return sgd__err(SGD_ESHAPE, "%s: section '%s': %llu tensors, expected %zu", fn_restore, section,
                    (unsigned long long)sinfo.tensor_count, n_expected);
}

static bool model_has(const void *ctx, const char *name)
{
    size_t i;
    return strcmp(name, "spec") == 0 || strcmp(name, "rng") == 0 || sgd_model_find_tensor(ctx, name, &i) == SGD_OK;
}

static bool optim_has(const void *ctx, const char *name)
{
    size_t i;
    return strcmp(name, "kind") == 0 || sgd_optim_state_find(ctx, name, &i) == SGD_OK;
}

static sgd_status check_model(const sgd_ckpt_reader *r, sgd_model *m, uint64_t rng[4])
{
    sgd_status st;
    size_t n = sgd_model_num_param_tensors(m);
    for (size_t i = 0; i < n; i++) {
        sgd_param_info info = {.struct_size = sizeof info};
        if ((st = sgd_model_param_info(m, i, &info)) != SGD_OK)
            return st;
        if ((st = sgd_ckpt_reader_check_tensor(r, "model", info.name, SGD_CKPT_F32, (uint32_t)info.rank,
                                               info.shape)) != SGD_OK) {
            sgd__err_prefix("%s: not a checkpoint of this model (%s)", fn_restore, sgd_model_spec(m));
            return st;
        }
    }
    size_t n_other = 0;
    for (size_t i = 0; i < sgd_model_num_tensors(m); i++) {
        sgd_tensor_info info;
        int dtype;
        if (!other_tensor(m, i, &info, &dtype))
            continue;
        n_other++;
        if ((st = sgd_ckpt_reader_check_tensor(r, "model", info.name, dtype, (uint32_t)info.rank, info.shape)) !=
            SGD_OK) {
            sgd__err_prefix("%s: not a checkpoint of this model (%s)", fn_restore, sgd_model_spec(m));
            return st;
        }
    }
    if ((st = check_no_extra(r, "model", n + n_other + 2, model_has, m)) != SGD_OK)
        return st;
    int64_t four = 4;
    if ((st = sgd_ckpt_reader_read_tensor(r, "model", "rng", SGD_CKPT_U64, 1, &four, rng, 4 * sizeof *rng)) !=
        SGD_OK)
        return st;
    if ((rng[0] | rng[1] | rng[2] | rng[3]) == 0)
        return sgd__err(SGD_EFORMAT, "%s: section 'model': tensor 'rng' is all zero (not a generator state)",
                        fn_restore);
    return SGD_OK;
}

/* The optimizer's non-slot arrays (step, scalars): small, validated on import. */
typedef struct small_state {
    size_t index;
    size_t bytes;
    unsigned char *saved; /* the object's current value, for undo */
    unsigned char *file;  /* the value in the checkpoint */
} small_state;

static size_t round8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

typedef struct restore_plan {
    small_state optim[2];
    size_t n_optim;
    small_state sched, monitor, trainer; /* index unused */
    void *block;
} restore_plan;

static sgd_status check_optim(const sgd_ckpt_reader *r, sgd_optim *o, restore_plan *plan, size_t *small_bytes)
{
    sgd_status st = check_kind(r, "optim", "optimizer", sgd_optim_name(o));
    if (st != SGD_OK)
        return st;
    size_t count = sgd_optim_state_count(o);
    for (size_t i = 0; i < count; i++) {
        const char *name;
        int32_t type;
        size_t len;
        if ((st = sgd_optim_state_describe(o, i, &name, &type, &len)) != SGD_OK)
            return st;
        int64_t dim = (int64_t)len;
        if ((st = sgd_ckpt_reader_check_tensor(r, "optim", name, state_dtype(type), 1, &dim)) != SGD_OK)
            return st;
        if (type != SGD_STATE_F32) {
            if (plan->n_optim == 2)
                return sgd__err(SGD_EINTERNAL, "%s: optimizer has more than two non-slot state arrays", fn_restore);
            small_state *s = &plan->optim[plan->n_optim++];
            s->index = i;
            s->bytes = len * sgd_ckpt_dtype_size(state_dtype(type));
            *small_bytes += 2 * round8(s->bytes);
        }
    }
    return check_no_extra(r, "optim", count + 1, optim_has, o);
}

/* Imports one of the plan's small states into its object, from `from` (the file's bytes or the saved ones). */
static sgd_status import_small(const sgd_checkpoint_parts *p, const restore_plan *plan, const small_state *s,
                               const unsigned char *from)
{
    if (s == &plan->trainer)
        return sgd_trainer_state_import(p->trainer, from, s->bytes);
    if (s == &plan->sched)
        return sgd_sched_state_import(p->sched, (const double *)(const void *)from, s->bytes / sizeof(double));
    if (s == &plan->monitor)
        return sgd_monitor_state_import(p->monitor, (const double *)(const void *)from, s->bytes / sizeof(double));
    return sgd_optim_state_import(p->optim, s->index, from, s->bytes);
}

sgd_status sgd_checkpoint_restore(const sgd_ckpt_reader *r, const sgd_checkpoint_parts *in)
{
    static const char *const fn = fn_restore;
    sgd_checkpoint_parts p;
    if (r == NULL)
        return sgd__err(SGD_EINVAL, "%s: reader is NULL", fn);
    sgd_status st = get_parts(&p, in, fn);
    if (st != SGD_OK)
        return st;
    if ((st = sgd_ckpt_reader_check_sections(r, known_sections, N_KNOWN)) != SGD_OK)
        return st;

    /* 1. Check everything against the objects; nothing changes yet. */
    restore_plan plan;
    memset(&plan, 0, sizeof plan);
    size_t small_bytes = 0;
    uint64_t rng[4] = {0};
    const char *missing = NULL;
    if (p.model != NULL && sgd_ckpt_reader_find_section(r, "model", &(size_t){0}) != SGD_OK)
        missing = "model";
    else if (p.optim != NULL && sgd_ckpt_reader_find_section(r, "optim", &(size_t){0}) != SGD_OK)
        missing = "optim";
    else if (p.sched != NULL && sgd_ckpt_reader_find_section(r, "sched", &(size_t){0}) != SGD_OK)
        missing = "sched";
    else if (p.monitor != NULL && sgd_ckpt_reader_find_section(r, "monitor", &(size_t){0}) != SGD_OK)
        missing = "monitor";
    else if (p.trainer != NULL && sgd_ckpt_reader_find_section(r, "trainer", &(size_t){0}) != SGD_OK)
        missing = "trainer";
    if (missing != NULL)
        return sgd__err(SGD_ENOTFOUND, "%s: the checkpoint has no '%s' section", fn, missing);
    if (p.model != NULL && (st = check_model(r, p.model, rng)) != SGD_OK)
        return st;
    if (p.optim != NULL && (st = check_optim(r, p.optim, &plan, &small_bytes)) != SGD_OK)
        return st;
    if (p.sched != NULL) {
        if ((st = check_kind(r, "sched", "schedule", sgd_sched_name(p.sched))) != SGD_OK)
            return st;
        int64_t k = (int64_t)sgd_sched_state_size(p.sched);
        if ((st = sgd_ckpt_reader_check_tensor(r, "sched", "state", SGD_CKPT_F64, 1, &k)) != SGD_OK)
            return st;
        plan.sched.bytes = (size_t)k * sizeof(double);
        small_bytes += 2 * round8(plan.sched.bytes);
    }
    if (p.monitor != NULL) {
        size_t k = 0;
        if ((st = sgd_monitor_state_size(p.monitor, &k)) != SGD_OK)
            return st;
        int64_t dim = (int64_t)k;
        if ((st = sgd_ckpt_reader_check_tensor(r, "monitor", "state", SGD_CKPT_F64, 1, &dim)) != SGD_OK)
            return st;
        plan.monitor.bytes = k * sizeof(double);
        small_bytes += 2 * round8(plan.monitor.bytes);
    }

    if (p.trainer != NULL) {
        int64_t k = (int64_t)sgd_trainer_state_size(p.trainer);
        sgd_ckpt_tensor_info ti = {.struct_size = sizeof ti};
        const void *data;
        uint64_t n;
        if ((st = sgd_ckpt_reader_find_tensor(r, "trainer", "state", &ti)) != SGD_OK)
            return st;
        if (ti.dtype == SGD_CKPT_U8 && ti.rank == 1 && ti.dims[0] != k &&
            sgd_ckpt_reader_tensor_data(r, "trainer", "state", &data, &n) == SGD_OK) {
            /* A trainer of other options or sizes: its own import names what differs (and changes nothing). */
            if ((st = sgd_trainer_state_import(p.trainer, data, (size_t)n)) != SGD_OK)
                return st;
            return sgd__err(SGD_EINTERNAL, "%s: the trainer accepted a state of another size", fn);
        }
        if ((st = sgd_ckpt_reader_check_tensor(r, "trainer", "state", SGD_CKPT_U8, 1, &k)) != SGD_OK)
            return st;
        plan.trainer.bytes = (size_t)k;
        small_bytes += 2 * round8(plan.trainer.bytes);
    }

    /* 2. One block for the small states: the objects' values (for undo) and the file's. */
    const sgd_allocator *a = sgd__ckpt_reader_alloc(r);
    unsigned char *cur = NULL;
    if (small_bytes > 0) {
        plan.block = cur = sgd__malloc(a, small_bytes);
        if (cur == NULL)
            return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    }
    small_state *all[5];
    size_t nall = 0;
    if (p.trainer != NULL)
        all[nall++] = &plan.trainer;
    for (size_t i = 0; i < plan.n_optim; i++)
        all[nall++] = &plan.optim[i];
    if (p.sched != NULL)
        all[nall++] = &plan.sched;
    if (p.monitor != NULL)
        all[nall++] = &plan.monitor;
    for (size_t i = 0; i < nall; i++) { /* each at a multiple of 8: doubles and int64 live there */
        all[i]->saved = cur;
        all[i]->file = cur + round8(all[i]->bytes);
        cur += 2 * round8(all[i]->bytes);
    }
    for (size_t i = 0; i < plan.n_optim && st == SGD_OK; i++) {
        small_state *s = &plan.optim[i];
        const char *name;
        int32_t type;
        size_t len;
        sgd_optim_state_describe(p.optim, s->index, &name, &type, &len);
        int64_t dim = (int64_t)len;
        if ((st = sgd_optim_state_export(p.optim, s->index, s->saved, s->bytes)) == SGD_OK)
            st = sgd_ckpt_reader_read_tensor(r, "optim", name, state_dtype(type), 1, &dim, s->file, s->bytes);
    }
    if (st == SGD_OK && p.trainer != NULL) {
        int64_t k = (int64_t)plan.trainer.bytes;
        if ((st = sgd_trainer_state_export(p.trainer, plan.trainer.saved, plan.trainer.bytes)) == SGD_OK)
            st = sgd_ckpt_reader_read_tensor(r, "trainer", "state", SGD_CKPT_U8, 1, &k, plan.trainer.file,
                                             plan.trainer.bytes);
    }
    if (st == SGD_OK && p.sched != NULL) {
        int64_t k = (int64_t)(plan.sched.bytes / sizeof(double));
        if ((st = sgd_sched_state_export(p.sched, (double *)(void *)plan.sched.saved, (size_t)k)) == SGD_OK)
            st = sgd_ckpt_reader_read_tensor(r, "sched", "state", SGD_CKPT_F64, 1, &k, plan.sched.file,
                                             plan.sched.bytes);
    }
    if (st == SGD_OK && p.monitor != NULL) {
        int64_t k = (int64_t)(plan.monitor.bytes / sizeof(double));
        if ((st = sgd_monitor_state_export(p.monitor, (double *)(void *)plan.monitor.saved, (size_t)k)) == SGD_OK)
            st = sgd_ckpt_reader_read_tensor(r, "monitor", "state", SGD_CKPT_F64, 1, &k, plan.monitor.file,
                                             plan.monitor.bytes);
    }

    /* 3. Import the states the objects validate; undo them all if one is refused. */
    size_t done = 0;
    for (; st == SGD_OK && done < nall; done++) {
        st = import_small(&p, &plan, all[done], all[done]->file);
        if (st != SGD_OK)
            sgd__err_prefix("%s: the checkpoint's state was refused", fn);
    }
    if (st != SGD_OK) {
        /* `done` counts the refused one too: undo the ones before it. */
        for (size_t i = done - (done > 0); i-- > 0;)
            import_small(&p, &plan, all[i], all[i]->saved);
        sgd__free(a, plan.block);
        return st;
    }
    sgd__free(a, plan.block);

    /* 4. The large arrays: shapes are checked, so these copies cannot fail. */
    if (p.model != NULL) {
        float *params = sgd_model_params(p.model);
        for (size_t i = 0; i < sgd_model_num_param_tensors(p.model); i++) {
            sgd_param_info info = {.struct_size = sizeof info};
            sgd_model_param_info(p.model, i, &info);
            st = sgd_ckpt_reader_read_tensor(r, "model", info.name, SGD_CKPT_F32, (uint32_t)info.rank, info.shape,
                                             params + info.offset, info.numel * sizeof(float));
            if (st != SGD_OK)
                return sgd__err(SGD_EINTERNAL, "%s: tensor '%s' failed after it was checked", fn, info.name);
        }
        for (size_t i = 0; i < sgd_model_num_tensors(p.model); i++) {
            sgd_tensor_info info;
            int dtype;
            if (!other_tensor(p.model, i, &info, &dtype))
                continue;
            st = sgd_ckpt_reader_read_tensor(r, "model", info.name, dtype, (uint32_t)info.rank, info.shape, info.data,
                                             info.numel * sgd_ckpt_dtype_size(dtype));
            if (st != SGD_OK)
                return sgd__err(SGD_EINTERNAL, "%s: tensor '%s' failed after it was checked", fn, info.name);
        }
        sgd_model_set_rng_state(p.model, rng);
    }
    if (p.optim != NULL) {
        for (size_t i = 0; i < sgd_optim_state_count(p.optim); i++) {
            const char *name;
            int32_t type;
            size_t len;
            const float *slot;
            sgd_optim_state_describe(p.optim, i, &name, &type, &len);
            if (type != SGD_STATE_F32 || sgd_optim_state_data(p.optim, i, &slot) != SGD_OK)
                continue;
            int64_t dim = (int64_t)len;
            /* The slot is this library's own memory: filled in place, no copy. */
            st = sgd_ckpt_reader_read_tensor(r, "optim", name, SGD_CKPT_F32, 1, &dim, (float *)(uintptr_t)slot,
                                             len * sizeof(float));
            if (st != SGD_OK)
                return sgd__err(SGD_EINTERNAL, "%s: optimizer slot '%s' failed after it was checked", fn, name);
        }
    }
    return SGD_OK;
}

sgd_status sgd_checkpoint_load(const char *path, const sgd_checkpoint_parts *parts, const sgd_allocator *alloc)
{
    sgd_ckpt_reader *r;
    sgd_status st = sgd_ckpt_reader_open(&r, path, alloc);
    if (st != SGD_OK)
        return st;
    st = sgd_checkpoint_restore(r, parts);
    sgd_ckpt_reader_free(r);
    return st;
}

sgd_status sgd_checkpoint_load_model(sgd_model **out, const sgd_ckpt_reader *r, const sgd_model_options *opts,
                                     const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_checkpoint_load_model";
    if (out != NULL)
        *out = NULL;
    if (out == NULL || r == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, out == NULL ? "out" : "reader");
    sgd_ckpt_tensor_info info = {.struct_size = sizeof info};
    sgd_status st = sgd_ckpt_reader_find_tensor(r, "model", "spec", &info);
    if (st != SGD_OK)
        return st;
    const void *data;
    uint64_t n;
    if (info.dtype != SGD_CKPT_U8 || info.rank != 1 ||
        sgd_ckpt_reader_tensor_data(r, "model", "spec", &data, &n) != SGD_OK)
        return sgd__err(SGD_EFORMAT, "%s: section 'model': tensor 'spec' is not a model spec string", fn);
    if (memchr(data, '\0', n) != NULL)
        return sgd__err(SGD_EFORMAT, "%s: section 'model': the spec holds a NUL byte", fn);
    sgd_allocator a;
    if ((st = sgd__allocator_init(&a, alloc, fn)) != SGD_OK)
        return st;
    char *spec = sgd__malloc(&a, n + 1);
    if (spec == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    memcpy(spec, data, n);
    spec[n] = '\0';
    sgd_model *m;
    st = sgd_model_from_spec(&m, spec, opts, alloc);
    sgd__free(&a, spec);
    if (st != SGD_OK) {
        sgd__err_prefix("%s: the checkpoint's model spec", fn);
        return st == SGD_ENOMEM ? st : SGD_EFORMAT;
    }
    /* Per-sample state is [max_batch, ...]: take the checkpoint's max_batch, to restore the state with it. */
    for (size_t i = 0; i < sgd_model_num_tensors(m); i++) {
        sgd_tensor_info ti;
        sgd_tensor_info_init(&ti);
        sgd_ckpt_tensor_info fi = {.struct_size = sizeof fi};
        if (sgd_model_tensor_info(m, i, &ti) != SGD_OK || ti.role != SGD_TENSOR_STATE ||
            sgd_ckpt_reader_find_tensor(r, "model", ti.name, &fi) != SGD_OK)
            continue;
        if (fi.rank == (uint32_t)ti.rank && fi.dims[0] != ti.shape[0] && fi.dims[0] >= 1 &&
            fi.dims[0] <= SGD_MODEL_MAX_BATCH && (st = sgd_model_reserve(m, fi.dims[0])) != SGD_OK) {
            sgd_model_free(m);
            return st;
        }
        break;
    }
    sgd_checkpoint_parts parts;
    sgd_checkpoint_parts_init(&parts);
    parts.model = m;
    if ((st = sgd_checkpoint_restore(r, &parts)) != SGD_OK) {
        sgd_model_free(m);
        return st;
    }
    *out = m;
    return SGD_OK;
}
