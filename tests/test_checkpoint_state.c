/*
 * Training state in checkpoints (sgd_checkpoint_*): bit-exact resume of a run
 * with dropout, Adam, a plateau-over-cosine schedule and a monitor; refusal of
 * other architectures, optimizers and schedules; all-or-nothing restore;
 * allocation failures.
 */
#include "util/sgdtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIM 12
#define CLASSES 3
#define BATCH 16
#define MODEL_SPEC "12-dropout(0.25)-16-relu-16-tanh-3"
#define OPTIM_SPEC "adam:lr=0.01,amsgrad=1,weight_decay=0.001"
#define SCHED_SPEC "plateau:patience=1,factor=0.5,over=(cosine:T_max=40,eta_min=0.001)"

typedef struct run {
    sgd_model *model;
    sgd_optim *optim;
    sgd_sched *sched;
    sgd_monitor *monitor;
} run;

static sgd_status run_new(run *r, const char *model_spec, const char *optim_spec, const char *sched_spec,
                          const sgd_allocator *a)
{
    memset(r, 0, sizeof *r);
    sgd_model_options mo;
    sgd_model_options_init(&mo);
    mo.max_batch = BATCH;
    mo.seed = 7;
    sgd_status st;
    if ((st = sgd_model_from_spec(&r->model, model_spec, &mo, a)) != SGD_OK)
        return st;
    if ((st = sgd_optim_new(&r->optim, optim_spec, sgd_model_num_params(r->model), a)) != SGD_OK)
        return st;
    if ((st = sgd_sched_new(&r->sched, sched_spec, 0.01, a)) != SGD_OK)
        return st;
    return sgd_monitor_new(&r->monitor, NULL, a);
}

static void run_free(run *r)
{
    sgd_model_free(r->model);
    sgd_optim_free(r->optim);
    sgd_sched_free(r->sched);
    sgd_monitor_free(r->monitor);
    memset(r, 0, sizeof *r);
}

static sgd_checkpoint_parts parts_of(run *r)
{
    sgd_checkpoint_parts p;
    sgd_checkpoint_parts_init(&p);
    p.model = r->model;
    p.optim = r->optim;
    p.sched = r->sched;
    p.monitor = r->monitor;
    return p;
}

/* The batch of step t: a deterministic function of t, so two runs see the same data. */
static void batch_of(int64_t t, float *x, int32_t *y)
{
    uint64_t s = 0x9e3779b97f4a7c15ULL * (uint64_t)(t + 1);
    for (int i = 0; i < BATCH; i++) {
        y[i] = (int32_t)((uint64_t)(t * 7 + i) % CLASSES);
        for (int j = 0; j < DIM; j++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            float u = (float)(s >> 40) * 0x1.0p-24f - 0.5f;
            x[i * DIM + j] = u + (j % CLASSES == y[i] ? 1.0f : 0.0f);
        }
    }
}

/* Steps [from, to) of the run; every 5 steps the "epoch" metric goes to the plateau schedule. */
static void train(run *r, int64_t from, int64_t to)
{
    float x[BATCH * DIM];
    int32_t y[BATCH];
    for (int64_t t = from; t < to; t++) {
        batch_of(t, x, y);
        double loss, lr;
        sgdt_assert_status(sgd_model_zero_grad(r->model), SGD_OK);
        sgdt_assert_status(sgd_model_forward_backward(r->model, x, y, NULL, BATCH, &loss), SGD_OK);
        sgdt_assert_status(sgd_sched_lr(r->sched, t, &lr), SGD_OK);
        sgd_optim_step_info info;
        sgd_optim_step_info_init(&info);
        sgdt_assert_status(sgd_optim_step(r->optim, sgd_model_params(r->model), sgd_model_grads(r->model), lr, &info),
                           SGD_OK);
        int32_t action;
        double scale;
        sgdt_assert_status(sgd_monitor_observe(r->monitor, loss, info.grad_norm, lr, &action, &scale), SGD_OK);
        if ((t + 1) % 5 == 0)
            sgdt_assert_status(sgd_sched_observe(r->sched, t, loss), SGD_OK);
    }
}

static unsigned char *save_memory(const sgd_checkpoint_parts *p, size_t *size)
{
    sgd_ckpt_writer *w;
    sgdt_assert_status(sgd_ckpt_writer_new(&w, NULL), SGD_OK);
    sgdt_assert_status(sgd_checkpoint_add(w, p), SGD_OK);
    uint64_t n;
    sgdt_assert_status(sgd_ckpt_writer_size(w, &n), SGD_OK);
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    sgdt_assert_status(sgd_ckpt_writer_write_memory(w, buf, n), SGD_OK);
    sgd_ckpt_writer_free(w);
    *size = n;
    return buf;
}

static void assert_same_state(run *a, run *b)
{
    size_t n = sgd_model_num_params(a->model);
    assert_int_equal(n, sgd_model_num_params(b->model));
    assert_memory_equal(sgd_model_params(a->model), sgd_model_params(b->model), n * sizeof(float));
    for (size_t i = 0; i < sgd_optim_state_count(a->optim); i++) {
        size_t len;
        int32_t type;
        sgdt_assert_status(sgd_optim_state_describe(a->optim, i, NULL, &type, &len), SGD_OK);
        size_t bytes = len * (type == SGD_STATE_F32 ? 4 : 8);
        void *x = malloc(bytes + 1), *y = malloc(bytes + 1);
        sgdt_assert_status(sgd_optim_state_export(a->optim, i, x, bytes), SGD_OK);
        sgdt_assert_status(sgd_optim_state_export(b->optim, i, y, bytes), SGD_OK);
        assert_memory_equal(x, y, bytes);
        free(x);
        free(y);
    }
    size_t k = sgd_sched_state_size(a->sched);
    double sa[64], sb[64];
    assert_true(k <= 64);
    sgdt_assert_status(sgd_sched_state_export(a->sched, sa, k), SGD_OK);
    sgdt_assert_status(sgd_sched_state_export(b->sched, sb, k), SGD_OK);
    assert_memory_equal(sa, sb, k * sizeof(double));
    sgdt_assert_status(sgd_monitor_state_size(a->monitor, &k), SGD_OK);
    double *ma = malloc(k * sizeof(double)), *mb = malloc(k * sizeof(double));
    sgdt_assert_status(sgd_monitor_state_export(a->monitor, ma, k), SGD_OK);
    sgdt_assert_status(sgd_monitor_state_export(b->monitor, mb, k), SGD_OK);
    assert_memory_equal(ma, mb, k * sizeof(double));
    free(ma);
    free(mb);
}

/* A run saved at step k and resumed reaches step n with exactly the same state. */
static void test_resume_is_bit_exact(void **state)
{
    (void)state;
    const int64_t k = 23, n = 50;
    run whole, first, resumed;
    sgdt_assert_status(run_new(&whole, MODEL_SPEC, OPTIM_SPEC, SCHED_SPEC, NULL), SGD_OK);
    train(&whole, 0, n);

    sgdt_assert_status(run_new(&first, MODEL_SPEC, OPTIM_SPEC, SCHED_SPEC, NULL), SGD_OK);
    train(&first, 0, k);
    char path[] = "/tmp/sgdlab-ckpt-state-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    sgd_checkpoint_parts p = parts_of(&first);
    sgdt_assert_status(sgd_checkpoint_save(path, &p, NULL), SGD_OK);
    run_free(&first);

    /* Fresh objects of the same specs, another init seed: everything comes from the file. */
    sgdt_assert_status(run_new(&resumed, MODEL_SPEC, OPTIM_SPEC, SCHED_SPEC, NULL), SGD_OK);
    sgdt_assert_status(sgd_model_reset(resumed.model, 12345), SGD_OK);
    p = parts_of(&resumed);
    sgdt_assert_status(sgd_checkpoint_load(path, &p, NULL), SGD_OK);
    train(&resumed, k, n);
    assert_same_state(&whole, &resumed);

    /* The same through memory, and load_model rebuilds the model from the spec it stored. */
    size_t size;
    p = parts_of(&whole);
    unsigned char *buf = save_memory(&p, &size);
    sgd_ckpt_reader *r;
    sgdt_assert_status(sgd_ckpt_reader_open_memory(&r, buf, size, NULL), SGD_OK);
    sgd_model *m;
    sgdt_assert_status(sgd_checkpoint_load_model(&m, r, NULL, NULL), SGD_OK);
    assert_string_equal(sgd_model_spec(m), sgd_model_spec(whole.model));
    assert_memory_equal(sgd_model_params(m), sgd_model_params(whole.model),
                        sgd_model_num_params(m) * sizeof(float));
    uint64_t ra[4], rb[4];
    sgd_model_get_rng_state(m, ra);
    sgd_model_get_rng_state(whole.model, rb);
    assert_memory_equal(ra, rb, sizeof ra);
    sgd_model_free(m);
    sgd_ckpt_reader_free(r);
    free(buf);
    unlink(path);
    run_free(&whole);
    run_free(&resumed);
}

static void restore_fails(const unsigned char *buf, size_t size, run *into, sgd_status want, const char *needle)
{
    sgd_ckpt_reader *r;
    sgdt_assert_status(sgd_ckpt_reader_open_memory(&r, buf, size, NULL), SGD_OK);
    sgd_checkpoint_parts p = parts_of(into);
    sgd_error_clear();
    sgdt_assert_status(sgd_checkpoint_restore(r, &p), want);
    sgdt_assert_error_contains(needle);
    sgd_ckpt_reader_free(r);
}

static void test_refuses_other_objects(void **state)
{
    (void)state;
    run a, b;
    sgdt_assert_status(run_new(&a, "4-3-relu-3-relu-2", "adam:lr=0.1", "cosine:T_max=10", NULL), SGD_OK);
    train(&a, 0, 0);
    sgd_checkpoint_parts p = parts_of(&a);
    size_t size;
    unsigned char *buf = save_memory(&p, &size);

    /* Another architecture: the first tensor that differs is named. */
    sgdt_assert_status(run_new(&b, "4-5-relu-2", "adam:lr=0.1", "cosine:T_max=10", NULL), SGD_OK);
    float before[64];
    size_t np = sgd_model_num_params(b.model);
    memcpy(before, sgd_model_params(b.model), np * sizeof(float));
    restore_fails(buf, size, &b, SGD_ESHAPE, "0.weight");
    assert_memory_equal(before, sgd_model_params(b.model), np * sizeof(float));
    run_free(&b);
    /* Other layers between the same shapes (tanh for relu): refused, with both specs named. */
    sgdt_assert_status(run_new(&b, "4-3-tanh-3-relu-2", "adam:lr=0.1", "cosine:T_max=10", NULL), SGD_OK);
    memcpy(before, sgd_model_params(b.model), np * sizeof(float));
    restore_fails(buf, size, &b, SGD_ESHAPE, "'4-3-relu-3-relu-2");
    sgdt_assert_error_contains("'4-3-tanh-3-relu-2");
    assert_memory_equal(before, sgd_model_params(b.model), np * sizeof(float));
    run_free(&b);
    sgdt_assert_status(run_new(&b, "4-3-relu-3-relu-2:loss=mse", "adam:lr=0.1", "cosine:T_max=10", NULL), SGD_OK);
    restore_fails(buf, size, &b, SGD_ESHAPE, "loss=mse");
    run_free(&b);
    /* A model with fewer layers: the extra tensor in the file is named. */
    sgdt_assert_status(run_new(&b, "4-3-relu-3", "adam:lr=0.1", "cosine:T_max=10", NULL), SGD_OK);
    restore_fails(buf, size, &b, SGD_ESHAPE, "4.weight");
    run_free(&b);
    /* Another optimizer, another schedule. */
    sgdt_assert_status(run_new(&b, "4-3-relu-3-relu-2", "sgd:lr=0.1,momentum=0.9", "cosine:T_max=10", NULL), SGD_OK);
    restore_fails(buf, size, &b, SGD_EFORMAT, "'adam'");
    run_free(&b);
    sgdt_assert_status(run_new(&b, "4-3-relu-3-relu-2", "adam:lr=0.1", "step:step_size=3", NULL), SGD_OK);
    restore_fails(buf, size, &b, SGD_EFORMAT, "cosine");
    run_free(&b);
    free(buf);

    /* A checkpoint without a section a part needs. */
    sgd_checkpoint_parts_init(&p);
    p.model = a.model;
    buf = save_memory(&p, &size);
    restore_fails(buf, size, &a, SGD_ENOTFOUND, "'optim'");
    free(buf);
    run_free(&a);
}

/* A state the monitor refuses: nothing changes, not even what was imported before it. */
static void test_restore_is_all_or_nothing(void **state)
{
    (void)state;
    run a;
    sgdt_assert_status(run_new(&a, MODEL_SPEC, OPTIM_SPEC, SCHED_SPEC, NULL), SGD_OK);
    train(&a, 0, 12);
    sgd_checkpoint_parts p = parts_of(&a);
    sgd_ckpt_writer *w;
    sgdt_assert_status(sgd_ckpt_writer_new(&w, NULL), SGD_OK);
    p.monitor = NULL;
    sgdt_assert_status(sgd_checkpoint_add(w, &p), SGD_OK);
    size_t k;
    sgdt_assert_status(sgd_monitor_state_size(a.monitor, &k), SGD_OK);
    double *junk = malloc(k * sizeof(double));
    for (size_t i = 0; i < k; i++)
        junk[i] = -1e300;
    int64_t dim = (int64_t)k;
    sgdt_assert_status(sgd_ckpt_writer_begin_section(w, "monitor", SGD_CKPT_SECTION_REQUIRED), SGD_OK);
    sgdt_assert_status(sgd_ckpt_writer_add_tensor_copy(w, "state", SGD_CKPT_F64, 1, &dim, junk), SGD_OK);
    uint64_t size;
    sgdt_assert_status(sgd_ckpt_writer_size(w, &size), SGD_OK);
    unsigned char *buf = malloc(size);
    sgdt_assert_status(sgd_ckpt_writer_write_memory(w, buf, size), SGD_OK);
    sgd_ckpt_writer_free(w);
    free(junk);

    run b, b_before;
    sgdt_assert_status(run_new(&b, MODEL_SPEC, OPTIM_SPEC, SCHED_SPEC, NULL), SGD_OK);
    sgdt_assert_status(run_new(&b_before, MODEL_SPEC, OPTIM_SPEC, SCHED_SPEC, NULL), SGD_OK);
    train(&b, 0, 3);
    train(&b_before, 0, 3);
    sgd_ckpt_reader *r;
    sgdt_assert_status(sgd_ckpt_reader_open_memory(&r, buf, size, NULL), SGD_OK);
    p = parts_of(&b);
    assert_int_not_equal(sgd_checkpoint_restore(r, &p), SGD_OK);
    sgdt_assert_error_contains("refused");
    assert_same_state(&b, &b_before);
    sgd_ckpt_reader_free(r);

    /* A required section this library does not know. */
    sgdt_assert_status(sgd_ckpt_writer_new(&w, NULL), SGD_OK);
    p = parts_of(&a);
    sgdt_assert_status(sgd_checkpoint_add(w, &p), SGD_OK);
    sgdt_assert_status(sgd_ckpt_writer_begin_section(w, "future", SGD_CKPT_SECTION_REQUIRED), SGD_OK);
    sgdt_assert_status(sgd_ckpt_writer_add_i64(w, "x", 1), SGD_OK);
    free(buf);
    sgdt_assert_status(sgd_ckpt_writer_size(w, &size), SGD_OK);
    buf = malloc(size);
    sgdt_assert_status(sgd_ckpt_writer_write_memory(w, buf, size), SGD_OK);
    sgd_ckpt_writer_free(w);
    restore_fails(buf, size, &b, SGD_EVERSION, "future");
    assert_same_state(&b, &b_before);
    free(buf);
    run_free(&a);
    run_free(&b);
    run_free(&b_before);
}

/* ------------------------------------------------------------ with a trainer */

#define ROWS 160

typedef struct trun {
    run r;
    float x[ROWS * DIM];
    int32_t y[ROWS];
    sgd_dataset *data;
    sgd_trainer *t;
} trun;


/* The trainer options of every trun: batches of BATCH, 3 epochs, seed 5, a snapshot every 4 steps. */
static void trun_options(sgd_trainer_options *o)
{
    sgd_trainer_options_init(o);
    o->batch_size = BATCH;
    o->epochs = 3;
    o->seed = 5;
    o->guard_interval = 4;
}
static sgd_status trun_new(trun *tr, const sgd_allocator *a)
{
    memset(&tr->r, 0, sizeof tr->r);
    tr->data = NULL;
    tr->t = NULL;
    for (int b = 0; b < ROWS / BATCH; b++)
        batch_of(b, tr->x + b * BATCH * DIM, tr->y + b * BATCH);
    sgd_status st = run_new(&tr->r, MODEL_SPEC, OPTIM_SPEC, SCHED_SPEC, a);
    if (st == SGD_OK)
        st = sgd_dataset_from_labels(&tr->data, tr->x, tr->y, ROWS, DIM, a);
    sgd_trainer_options o;
    trun_options(&o);
    if (st == SGD_OK)
        st = sgd_trainer_new(&tr->t, tr->r.model, tr->r.optim, tr->r.sched, tr->r.monitor, tr->data, tr->data, &o,
                             a);
    return st;
}

static void trun_free(trun *tr)
{
    sgd_trainer_free(tr->t);
    sgd_dataset_free(tr->data);
    run_free(&tr->r);
}

/* A trainer brings its objects: saving it alone saves the run, and a run stopped mid-epoch resumes exactly. */
static void test_trainer_resume(void **state)
{
    (void)state;
    trun *whole = malloc(sizeof *whole), *part = malloc(sizeof *part), *resumed = malloc(sizeof *resumed);
    sgdt_assert_status(trun_new(whole, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(whole->t, 0), SGD_OK);
    sgdt_assert_status(trun_new(part, NULL), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(part->t, 13), SGD_OK);
    sgd_checkpoint_parts p;
    sgd_checkpoint_parts_init(&p);
    p.trainer = part->t;
    size_t size;
    unsigned char *buf = save_memory(&p, &size);
    trun_free(part);

    sgdt_assert_status(trun_new(resumed, NULL), SGD_OK);
    sgd_ckpt_reader *r;
    sgdt_assert_status(sgd_ckpt_reader_open_memory(&r, buf, size, NULL), SGD_OK);
    /* A part that is not the trainer's own is refused. */
    sgd_checkpoint_parts_init(&p);
    p.trainer = resumed->t;
    p.model = whole->r.model;
    sgdt_assert_status(sgd_checkpoint_restore(r, &p), SGD_EINVAL);
    sgdt_assert_error_contains("not the trainer's own");
    p.model = NULL;
    sgdt_assert_status(sgd_checkpoint_restore(r, &p), SGD_OK);
    sgd_ckpt_reader_free(r);
    sgdt_assert_status(sgd_trainer_fit(resumed->t, 0), SGD_OK);
    assert_same_state(&whole->r, &resumed->r);
    trun_free(resumed);
    trun_free(whole);
    free(buf);
    free(whole);
    free(part);
    free(resumed);
}

/* optim/step = 2^63-1 in a checkpoint whose checksums are right overflowed at the next step: refused. */
static void test_optim_step_out_of_range(void **state)
{
    (void)state;
    sgd_optim *o;
    sgdt_assert_status(sgd_optim_new(&o, "sgd:lr=0.1", 10, NULL), SGD_OK);
    assert_int_equal(sgd_optim_state_count(o), 1); /* the step counter alone */
    static const int64_t steps[] = {INT64_MAX, SGD_OPTIM_MAX_STEP + 1, -1};
    for (size_t k = 0; k < 3; k++) {
        sgd_ckpt_writer *w;
        sgdt_assert_status(sgd_ckpt_writer_new(&w, NULL), SGD_OK);
        sgdt_assert_status(sgd_ckpt_writer_begin_section(w, "optim", SGD_CKPT_SECTION_REQUIRED), SGD_OK);
        int64_t three = 3, one = 1;
        sgdt_assert_status(sgd_ckpt_writer_add_tensor_copy(w, "kind", SGD_CKPT_U8, 1, &three, "sgd"), SGD_OK);
        sgdt_assert_status(sgd_ckpt_writer_add_tensor_copy(w, "step", SGD_CKPT_I64, 1, &one, &steps[k]), SGD_OK);
        uint64_t size;
        sgdt_assert_status(sgd_ckpt_writer_size(w, &size), SGD_OK);
        unsigned char *buf = malloc((size_t)size);
        sgdt_assert_status(sgd_ckpt_writer_write_memory(w, buf, (size_t)size), SGD_OK);
        sgd_ckpt_writer_free(w);
        sgd_ckpt_reader *r;
        sgdt_assert_status(sgd_ckpt_reader_open_memory(&r, buf, (size_t)size, NULL), SGD_OK); /* valid CRCs */
        sgd_checkpoint_parts p;
        sgd_checkpoint_parts_init(&p);
        p.optim = o;
        sgdt_assert_status(sgd_checkpoint_restore(r, &p), SGD_ERANGE);
        sgdt_assert_error_contains("step=");
        int64_t now = -1;
        sgdt_assert_status(sgd_optim_get_step(o, &now), SGD_OK);
        assert_int_equal(now, 0);
        sgd_ckpt_reader_free(r);
        free(buf);
    }
    sgd_optim_free(o);
}

/* A trainer is the whole run: a schedule on one side only is a mismatch, both ways, named. */
static void test_trainer_schedule_mismatch(void **state)
{
    (void)state;
    trun *with = malloc(sizeof *with), *without = malloc(sizeof *without);
    sgdt_assert_status(trun_new(with, NULL), SGD_OK);
    sgdt_assert_status(trun_new(without, NULL), SGD_OK);
    sgd_trainer_free(without->t);
    sgd_trainer_options o;
    trun_options(&o);
    sgdt_assert_status(sgd_trainer_new(&without->t, without->r.model, without->r.optim, NULL, without->r.monitor,
                                       without->data, without->data, &o, NULL),
                       SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(with->t, 5), SGD_OK);
    sgdt_assert_status(sgd_trainer_fit(without->t, 5), SGD_OK);
    sgd_checkpoint_parts p;
    size_t with_size, without_size;
    sgd_checkpoint_parts_init(&p);
    p.trainer = with->t;
    unsigned char *with_buf = save_memory(&p, &with_size);
    p.trainer = without->t;
    unsigned char *without_buf = save_memory(&p, &without_size);
    sgd_ckpt_reader *r;
    sgdt_assert_status(sgd_ckpt_reader_open_memory(&r, with_buf, with_size, NULL), SGD_OK);
    p.trainer = without->t;
    sgdt_assert_status(sgd_checkpoint_restore(r, &p), SGD_EFORMAT);
    sgdt_assert_error_contains("schedule 'plateau'");
    sgdt_assert_error_contains("has none");
    sgd_ckpt_reader_free(r);
    sgdt_assert_status(sgd_ckpt_reader_open_memory(&r, without_buf, without_size, NULL), SGD_OK);
    p.trainer = with->t;
    sgdt_assert_status(sgd_checkpoint_restore(r, &p), SGD_ENOTFOUND);
    sgdt_assert_error_contains("no schedule");
    sgd_ckpt_reader_free(r);
    free(with_buf);
    free(without_buf);
    trun_free(with);
    trun_free(without);
    free(with);
    free(without);
}

static sgd_status trainer_save_restore(sgdt_alloc *t, void *ctx)
{
    (void)ctx;
    const sgd_allocator *a = &t->base;
    trun *tr = malloc(sizeof *tr);
    sgd_status st = trun_new(tr, a);
    if (st == SGD_OK)
        st = sgd_trainer_fit(tr->t, 3);
    sgd_checkpoint_parts p;
    sgd_checkpoint_parts_init(&p);
    p.trainer = tr->t;
    sgd_ckpt_writer *w = NULL;
    sgd_ckpt_reader *rd = NULL;
    unsigned char *buf = NULL;
    uint64_t size = 0;
    if (st == SGD_OK)
        st = sgd_ckpt_writer_new(&w, a);
    if (st == SGD_OK)
        st = sgd_checkpoint_add(w, &p);
    if (st == SGD_OK)
        st = sgd_ckpt_writer_size(w, &size);
    if (st == SGD_OK && (buf = malloc(size)) == NULL)
        st = SGD_EINTERNAL;
    if (st == SGD_OK)
        st = sgd_ckpt_writer_write_memory(w, buf, size);
    if (st == SGD_OK)
        st = sgd_ckpt_reader_open_memory(&rd, buf, size, a);
    if (st == SGD_OK)
        st = sgd_checkpoint_restore(rd, &p);
    sgd_ckpt_reader_free(rd);
    sgd_ckpt_writer_free(w);
    free(buf);
    trun_free(tr);
    free(tr);
    return st;
}

static void test_trainer_allocation_failures(void **state)
{
    (void)state;
    assert_true(sgdt_walk_alloc_failures(trainer_save_restore, NULL) > 10);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    sgd_checkpoint_parts p;
    sgd_checkpoint_parts_init(&p);
    sgd_checkpoint_parts_init(NULL);
    sgd_ckpt_writer *w;
    sgdt_assert_status(sgd_ckpt_writer_new(&w, NULL), SGD_OK);
    sgdt_assert_status(sgd_checkpoint_add(NULL, &p), SGD_EINVAL);
    sgdt_assert_status(sgd_checkpoint_add(w, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_checkpoint_add(w, &p), SGD_EINVAL);
    sgdt_assert_error_contains("no object");
    sgd_model *unbuilt;
    sgdt_assert_status(sgd_model_new(&unbuilt, 4, NULL), SGD_OK);
    p.model = unbuilt;
    sgdt_assert_status(sgd_checkpoint_add(w, &p), SGD_EINVAL);
    sgdt_assert_error_contains("not built");
    sgd_model_free(unbuilt);
    p.model = NULL;
    p.struct_size = 3;
    sgdt_assert_status(sgd_checkpoint_add(w, &p), SGD_EINVAL);
    sgdt_assert_error_contains("struct_size");
    sgd_ckpt_writer_free(w);
    sgd_checkpoint_parts_init(&p);
    sgdt_assert_status(sgd_checkpoint_restore(NULL, &p), SGD_EINVAL);
    sgdt_assert_status(sgd_checkpoint_save("/nonexistent-dir/x.ckpt", NULL, NULL), SGD_EINVAL);
    sgdt_assert_status(sgd_checkpoint_load("/nonexistent-dir/x.ckpt", &p, NULL), SGD_EIO);
    sgd_model *m = (sgd_model *)&p;
    sgdt_assert_status(sgd_checkpoint_load_model(&m, NULL, NULL, NULL), SGD_EINVAL);
    assert_null(m);
}

/* Save to memory and restore, failing every allocation in turn. */
static sgd_status save_restore(sgdt_alloc *t, void *ctx)
{
    (void)ctx;
    const sgd_allocator *a = &t->base;
    run r;
    sgd_status st = run_new(&r, "6-4-relu-2", "adam:lr=0.1", "plateau:over=(linear:total_iters=3)", a);
    sgd_ckpt_writer *w = NULL;
    sgd_ckpt_reader *rd = NULL;
    unsigned char *buf = NULL;
    sgd_model *m = NULL;
    uint64_t size = 0;
    sgd_checkpoint_parts p = parts_of(&r);
    if (st == SGD_OK)
        st = sgd_ckpt_writer_new(&w, a);
    if (st == SGD_OK)
        st = sgd_checkpoint_add(w, &p);
    if (st == SGD_OK)
        st = sgd_ckpt_writer_size(w, &size);
    if (st == SGD_OK && (buf = malloc(size)) == NULL)
        st = SGD_EINTERNAL;
    if (st == SGD_OK)
        st = sgd_ckpt_writer_write_memory(w, buf, size);
    if (st == SGD_OK)
        st = sgd_ckpt_reader_open_memory(&rd, buf, size, a);
    if (st == SGD_OK)
        st = sgd_checkpoint_restore(rd, &p);
    if (st == SGD_OK)
        st = sgd_checkpoint_load_model(&m, rd, NULL, a);
    sgd_model_free(m);
    sgd_ckpt_reader_free(rd);
    sgd_ckpt_writer_free(w);
    free(buf);
    run_free(&r);
    return st;
}

static void test_allocation_failures(void **state)
{
    (void)state;
    long n = sgdt_walk_alloc_failures(save_restore, NULL);
    assert_true(n > 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_is_bit_exact),
        cmocka_unit_test(test_refuses_other_objects),
        cmocka_unit_test(test_restore_is_all_or_nothing),
        cmocka_unit_test(test_trainer_resume),
        cmocka_unit_test(test_trainer_schedule_mismatch),
        cmocka_unit_test(test_optim_step_out_of_range),
        cmocka_unit_test(test_trainer_allocation_failures),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests_name("checkpoint_state", tests, NULL, NULL);
}
