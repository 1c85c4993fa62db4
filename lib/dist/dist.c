/*
 * libsgdlab-mpi: communicators, the trainer's allreduce over MPI (MPI's own,
 * or in a fixed order), attaching trainers, agreement, gathering, faults.
 * SPDX-License-Identifier: MIT
 */
#include "dist/dist_internal.h"
#include "core/abi.h"

#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The most doubles a trainer sums at once (it uses at most 12). */
#define MAX_DOUBLES 64

/* What is kept for one attached trainer. */
struct dist_attachment {
    dist_attachment *next;
    sgd_dist *d;
    sgd_trainer *t;
    const float *params;
    size_t n;
    int64_t grad_sums;
    /* fixed order: chunk k of the arena is [off[k], off[k] + cnt[k]); this process sums chunk `rank` */
    int *cnt, *off, *rcnt, *roff;
    float *recv;    /* size * cnt[rank] floats */
    double *dall;   /* size * MAX_DOUBLES doubles */
};

/* MPI is initialised once per process: the library's share of that global state. */
static int owned_handles; /* live handles of an MPI that sgd_dist_new() initialised */

/* ------------------------------------------------------------ helpers */

sgd_status sgd__dist_err(sgd_status status, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return sgd_error_set(status, buf);
}

static void *sys_malloc(size_t size, void *user)
{
    (void)user;
    return malloc(size);
}

static void *sys_realloc(void *p, size_t size, void *user)
{
    (void)user;
    return realloc(p, size);
}

static void sys_free(void *p, void *user)
{
    (void)user;
    free(p);
}

void *sgd__dist_calloc(const sgd_dist *d, size_t n, size_t size)
{
    if (n == 0 || size == 0 || n > SIZE_MAX / size)
        return NULL;
    void *p = d->alloc.malloc_fn(n * size, d->alloc.user);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

void sgd__dist_free_mem(const sgd_dist *d, void *p)
{
    if (p != NULL)
        d->alloc.free_fn(p, d->alloc.user);
}

double sgd__dist_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static sgd_status fail(sgd_dist *d, const char *msg)
{
    if (d->o.abort_on_failure) {
        fprintf(stderr, "sgdlab-mpi: process %d of %d: %s; ending the job (MPI_Abort)\n", d->rank, d->size, msg);
        fflush(stderr);
        MPI_Abort(d->comm, 1);
    }
    return sgd__dist_err(SGD_EIO, "%s", msg);
}

sgd_status sgd__dist_mpi_fail(sgd_dist *d, int rc, const char *fn, const char *what)
{
    char err[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (MPI_Error_string(rc, err, &len) != MPI_SUCCESS)
        len = 0;
    err[len < 0 ? 0 : len > MPI_MAX_ERROR_STRING ? MPI_MAX_ERROR_STRING : len] = '\0';
    char msg[1024];
    snprintf(msg, sizeof msg, "%s: %s: MPI error %d: %s", fn, what, rc, err);
    return fail(d, msg);
}

sgd_status sgd__dist_wait(sgd_dist *d, MPI_Request *reqs, int n, const char *fn, const char *what)
{
    /* Real statuses rather than MPI_STATUSES_IGNORE: MPICH's mpi.h gives MPI_Testall an access attribute that
       makes gcc warn about the constant. */
    MPI_Status statuses[4];
    if (n < 0 || n > 4)
        return sgd__dist_err(SGD_EINTERNAL, "%s: %s: waiting for %d requests (at most 4)", fn, what, n);
    double t0 = sgd__dist_now();
    for (long spin = 0;; spin++) {
        int done = 0;
        int rc = MPI_Testall(n, reqs, &done, statuses);
        if (rc != MPI_SUCCESS)
            return sgd__dist_mpi_fail(d, rc, fn, what);
        if (done)
            return SGD_OK;
        if (spin >= 4000) {
            /* Waiting for a slower process: let the core go (oversubscribed runs, shared machines). */
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
        if ((spin & 63) == 0 && d->o.timeout > 0 && sgd__dist_now() - t0 > d->o.timeout) {
            char msg[1024];
            snprintf(msg, sizeof msg,
                     "%s: %s: no answer from the other processes after %g s (one of them died, hangs or stopped "
                     "taking part; sgd_dist_options::timeout)",
                     fn, what, d->o.timeout);
            return fail(d, msg);
        }
    }
}

sgd_status sgd__dist_agree_status(sgd_dist *d, sgd_status st, const char *fn, const char *what)
{
    char saved[1024];
    if (st != SGD_OK)
        snprintf(saved, sizeof saved, "%s", sgd_error_last());
    int status = (int)st, lowest = 0, failed = st != SGD_OK ? 1 : 0, count = 0;
    MPI_Request rq[2];
    int rc = MPI_Iallreduce(&status, &lowest, 1, MPI_INT, MPI_MIN, d->comm, &rq[0]);
    if (rc == MPI_SUCCESS)
        rc = MPI_Iallreduce(&failed, &count, 1, MPI_INT, MPI_SUM, d->comm, &rq[1]);
    if (rc != MPI_SUCCESS)
        return sgd__dist_mpi_fail(d, rc, fn, what);
    sgd_status w = sgd__dist_wait(d, rq, 2, fn, what);
    if (w != SGD_OK)
        return w;
    if (count == 0)
        return SGD_OK;
    if (st != SGD_OK)
        return sgd__dist_err(st, "%s (process %d of %d)", saved, d->rank, d->size);
    return sgd__dist_err(lowest < 0 ? (sgd_status)lowest : SGD_ECANCELED,
                         "%s: %s: %d of %d processes failed (%s; each says why in its own message)", fn, what, count,
                         d->size, sgd_status_str(lowest));
}

/* ------------------------------------------------------------ the deadline of blocking collectives */

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *watch_main(void *arg)
{
    dist_watch *w = arg;
    double period = w->timeout / 10 < 0.1 ? w->timeout / 10 : 0.1;
    struct timespec ts = {(time_t)period, (long)((period - (double)(time_t)period) * 1e9)};
    while (!atomic_load(&w->quit)) {
        nanosleep(&ts, NULL);
        long long t = atomic_load(&w->armed_ns);
        if (t != 0 && (double)(now_ns() - t) * 1e-9 > w->timeout) {
            const char *what = atomic_load(&w->what);
            fprintf(stderr,
                    "sgdlab-mpi: process %d of %d: sgd_trainer_fit: %s: no answer from the other processes after %g "
                    "s (one of them died, hangs or stopped taking part; sgd_dist_options::timeout); ending the job\n",
                    w->rank, w->size, what != NULL ? what : "a collective", w->timeout);
            fflush(stderr);
            _exit(1); /* MPI may not be called from this thread; the launcher ends the job when a process does */
        }
    }
    return NULL;
}

static void watch_arm(sgd_dist *d, const char *what)
{
    atomic_store(&d->watch->what, what);
    atomic_store(&d->watch->armed_ns, now_ns());
}

static void watch_disarm(sgd_dist *d)
{
    atomic_store(&d->watch->armed_ns, 0);
}

static void watch_stop(sgd_dist *d)
{
    if (d->watch == NULL)
        return;
    atomic_store(&d->watch->quit, 1);
    pthread_join(d->watch->thread, NULL);
    sgd__dist_free_mem(d, d->watch);
    d->watch = NULL;
}

/* ------------------------------------------------------------ options */

void sgd_dist_options_init(sgd_dist_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->fixed_order = 0;
    o->check_interval = 0;
    o->timeout = 600;
    o->abort_on_failure = 1;
}

static sgd_status options_check(const sgd_dist_options *o, const char *fn)
{
    if (o->check_interval < 0)
        return sgd__dist_err(SGD_ERANGE, "%s: check_interval=%lld: must be >= 0 (0: never)", fn,
                             (long long)o->check_interval);
    if (!(o->timeout >= 0 && o->timeout <= 1e9))
        return sgd__dist_err(SGD_ERANGE, "%s: timeout=%g: must be in [0, 1e9] seconds (0: wait forever)", fn,
                             o->timeout);
    return SGD_OK;
}

static sgd_status options_copy(sgd_dist_options *dst, const sgd_dist_options *src, const char *fn)
{
    sgd_dist_options_init(dst);
    if (src == NULL)
        return SGD_OK;
    sgd_status st = sgd__struct_in_with(sgd__dist_err, dst, sizeof *dst, src, SGD__FIRST(sgd_dist_options), false,
                                        fn, "opts");
    return st != SGD_OK ? st : options_check(dst, fn);
}

/* A number, read in the C locale whatever the program's. */
static bool parse_number(const char *s, size_t n, double *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c == (locale_t)0)
        return false;
    locale_t old = uselocale(c);
    char *end;
    double v = strtod(buf, &end);
    uselocale(old);
    freelocale(c);
    if (*end != '\0' || isnan(v))
        return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, size_t n, int32_t *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (strlen(yes[i]) == n && strncmp(s, yes[i], n) == 0) {
            *out = 1;
            return true;
        }
        if (strlen(no[i]) == n && strncmp(s, no[i], n) == 0) {
            *out = 0;
            return true;
        }
    }
    return false;
}

sgd_status sgd_dist_options_parse(sgd_dist_options *o, const char *spec)
{
    static const char fn[] = "sgd_dist_options_parse";
    if (o == NULL || spec == NULL)
        return sgd__dist_err(SGD_EINVAL, "%s: %s is NULL", fn, o == NULL ? "options" : "spec");
    sgd_dist_options t;
    sgd_dist_options_init(&t);
    sgd_status st = sgd__struct_in_with(sgd__dist_err, &t, sizeof t, o, SGD__FIRST(sgd_dist_options), false, fn,
                                        "options");
    if (st != SGD_OK)
        return st;
    const char *p = spec;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncmp(p, "dist:", 5) == 0)
        p += 5;
    else if (strcmp(p, "dist") == 0)
        p += 4;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq == NULL || eq == p)
            return sgd__dist_err(SGD_EINVAL, "%s: '%.*s': expected key=value", fn, (int)len, p);
        size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
        const char *v = eq + 1;
        double x = 0;
#define KEY(name) (klen == sizeof(name) - 1 && strncmp(p, name, klen) == 0)
        if (KEY("fixed_order") || KEY("abort_on_failure")) {
            int32_t b;
            if (!parse_bool(v, vlen, &b))
                return sgd__dist_err(SGD_EINVAL, "%s: %.*s=%.*s: expected 0/1, true/false, yes/no", fn, (int)klen,
                                     p, (int)vlen, v);
            if (KEY("fixed_order"))
                t.fixed_order = b;
            else
                t.abort_on_failure = b;
        } else if (KEY("check_interval")) {
            if (!parse_number(v, vlen, &x) || x != floor(x) || x < 0 || x > 9.0e15)
                return sgd__dist_err(x < 0 ? SGD_ERANGE : SGD_EINVAL,
                                     "%s: check_interval=%.*s: expected a whole number >= 0", fn, (int)vlen, v);
            t.check_interval = (int64_t)x;
        } else if (KEY("timeout")) {
            if (!parse_number(v, vlen, &x))
                return sgd__dist_err(SGD_EINVAL, "%s: timeout=%.*s: expected seconds", fn, (int)vlen, v);
            t.timeout = x;
        } else {
            return sgd__dist_err(SGD_ENOTFOUND,
                                 "%s: unknown key '%.*s' (known: fixed_order, check_interval, timeout, "
                                 "abort_on_failure)",
                                 fn, (int)klen, p);
        }
#undef KEY
        p += len;
        if (*p == ',')
            p++;
    }
    st = options_check(&t, fn);
    if (st != SGD_OK)
        return st;
    /* Back as far as the caller's struct goes. */
    return sgd__struct_out_with(sgd__dist_err, o, &t, sizeof t, SGD__FIRST(sgd_dist_options), fn, "options");
}

/* ------------------------------------------------------------ communicators */

static sgd_status make(sgd_dist **out, MPI_Comm parent, bool owns, const sgd_dist_options *opts,
                       const sgd_allocator *alloc, const char *fn)
{
    sgd_dist_options o;
    sgd_status st = options_copy(&o, opts, fn);
    if (st != SGD_OK)
        return st;
    sgd_allocator a = {sys_malloc, sys_realloc, sys_free, NULL};
    if (alloc != NULL) {
        if (alloc->malloc_fn == NULL || alloc->realloc_fn == NULL || alloc->free_fn == NULL)
            return sgd__dist_err(SGD_EINVAL, "%s: alloc: malloc_fn, realloc_fn and free_fn must all be set", fn);
        a = *alloc;
    }
    sgd_dist *d = a.malloc_fn(sizeof *d, a.user);
    if (d == NULL)
        return sgd__dist_err(SGD_ENOMEM, "%s: out of memory", fn);
    memset(d, 0, sizeof *d);
    d->alloc = a;
    d->o = o;
    d->comm = MPI_COMM_NULL;
    d->stats.struct_size = sizeof d->stats;
    d->rank = 0;
    d->size = 1;
    int rc = MPI_Comm_dup(parent, &d->comm);
    if (rc != MPI_SUCCESS) {
        d->comm = MPI_COMM_NULL;
        a.free_fn(d, a.user);
        return sgd__dist_err(parent == MPI_COMM_WORLD ? SGD_EIO : SGD_EINVAL,
                             "%s: MPI_Comm_dup failed (error %d): not a communicator MPI takes", fn, rc);
    }
    MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->size);
    MPI_Comm local;
    d->local_size = 1;
    d->nodes = 1;
    if (MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
        int lr = 0;
        MPI_Comm_size(local, &d->local_size);
        MPI_Comm_rank(local, &lr);
        MPI_Comm_free(&local);
        int first = lr == 0 ? 1 : 0;
        if (MPI_Allreduce(&first, &d->nodes, 1, MPI_INT, MPI_SUM, d->comm) != MPI_SUCCESS)
            d->nodes = 1;
    }
    char lib[MPI_MAX_LIBRARY_VERSION_STRING + 1];
    int len = 0;
    if (MPI_Get_library_version(lib, &len) == MPI_SUCCESS) {
        lib[len < 0 ? 0 : len > MPI_MAX_LIBRARY_VERSION_STRING ? MPI_MAX_LIBRARY_VERSION_STRING : len] = '\0';
        size_t k = strcspn(lib, "\n,");
        snprintf(d->library, sizeof d->library, "%.*s", (int)k, lib);
        for (char *c = d->library; *c != '\0'; c++)
            if (*c == '\t')
                *c = ' '; /* MPICH: "MPICH Version:\t4.0.2" */
    }
    if (d->o.abort_on_failure && d->o.timeout > 0 && d->size > 1) {
        dist_watch *w = sgd__dist_calloc(d, 1, sizeof *w);
        if (w == NULL) {
            MPI_Comm_free(&d->comm);
            a.free_fn(d, a.user);
            return sgd__dist_err(SGD_ENOMEM, "%s: out of memory", fn);
        }
        atomic_init(&w->armed_ns, 0);
        atomic_init(&w->what, NULL);
        atomic_init(&w->quit, 0);
        w->timeout = d->o.timeout;
        w->rank = d->rank;
        w->size = d->size;
        if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
            sgd__dist_free_mem(d, w);
            MPI_Comm_free(&d->comm);
            a.free_fn(d, a.user);
            return sgd__dist_err(SGD_ENOMEM, "%s: cannot start the thread that watches the timeout", fn);
        }
        d->watch = w;
    }
    d->owns_mpi = owns;
    if (owns)
        owned_handles++;
    *out = d;
    return SGD_OK;
}

sgd_status sgd_dist_new(sgd_dist **out, const sgd_dist_options *opts, const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_dist_new";
    if (out != NULL)
        *out = NULL;
    if (out == NULL)
        return sgd__dist_err(SGD_EINVAL, "%s: out is NULL", fn);
    sgd_dist_options o;
    sgd_status st = options_copy(&o, opts, fn);
    if (st != SGD_OK)
        return st;
    int inited = 0, finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized)
        return sgd__dist_err(SGD_ESTATE, "%s: MPI was finalised in this process; it cannot start again", fn);
    MPI_Initialized(&inited);
    bool owns = false;
    if (!inited) {
        int provided = 0;
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS)
            return sgd__dist_err(SGD_EIO, "%s: MPI_Init_thread failed (error %d)", fn, rc);
        owns = true;
    } else if (owned_handles > 0) {
        owns = true; /* initialised by an earlier sgd_dist_new(): share the ownership */
    }
    st = make(out, MPI_COMM_WORLD, owns, opts, alloc, fn);
    if (st != SGD_OK && owns && owned_handles == 0)
        MPI_Finalize();
    return st;
}

sgd_status sgd_dist_new_fcomm(sgd_dist **out, int64_t fcomm, const sgd_dist_options *opts,
                              const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_dist_new_fcomm";
    if (out != NULL)
        *out = NULL;
    if (out == NULL)
        return sgd__dist_err(SGD_EINVAL, "%s: out is NULL", fn);
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (!inited || finalized)
        return sgd__dist_err(SGD_ESTATE, "%s: MPI is %s: a host communicator needs MPI running", fn,
                             finalized ? "finalised" : "not initialised");
    if (fcomm < INT_MIN || fcomm > INT_MAX)
        return sgd__dist_err(SGD_EINVAL, "%s: fcomm=%lld: not a Fortran communicator handle (MPI_Fint)", fn,
                             (long long)fcomm);
    MPI_Comm c = MPI_Comm_f2c((MPI_Fint)fcomm);
    if (c == MPI_COMM_NULL)
        return sgd__dist_err(SGD_EINVAL, "%s: fcomm=%lld is MPI_COMM_NULL", fn, (long long)fcomm);
    int inter = 0;
    if (MPI_Comm_test_inter(c, &inter) != MPI_SUCCESS)
        return sgd__dist_err(SGD_EINVAL, "%s: fcomm=%lld: not a communicator MPI takes", fn, (long long)fcomm);
    if (inter)
        return sgd__dist_err(SGD_EINVAL, "%s: fcomm=%lld is an inter-communicator; give an intra-communicator", fn,
                             (long long)fcomm);
    return make(out, c, false, opts, alloc, fn);
}

static void attachment_free(sgd_dist *d, dist_attachment *a)
{
    if (a == NULL)
        return;
    sgd__dist_free_mem(d, a->cnt);
    sgd__dist_free_mem(d, a->recv);
    sgd__dist_free_mem(d, a->dall);
    sgd__dist_free_mem(d, a);
}

void sgd_dist_free(sgd_dist *d)
{
    if (d == NULL)
        return;
    watch_stop(d);
    while (d->att != NULL) {
        dist_attachment *a = d->att;
        d->att = a->next;
        attachment_free(d, a);
    }
    if (d->comm != MPI_COMM_NULL)
        MPI_Comm_free(&d->comm);
    bool owns = d->owns_mpi;
    sgd_allocator a = d->alloc;
    a.free_fn(d, a.user);
    if (owns && --owned_handles == 0) {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized)
            MPI_Finalize();
    }
}

int32_t sgd_dist_rank(const sgd_dist *d)
{
    return d ? d->rank : -1;
}

int32_t sgd_dist_size(const sgd_dist *d)
{
    return d ? d->size : 0;
}

int32_t sgd_dist_local_size(const sgd_dist *d)
{
    return d ? d->local_size : 0;
}

int32_t sgd_dist_nodes(const sgd_dist *d)
{
    return d ? d->nodes : 0;
}

const char *sgd_dist_mpi_library(const sgd_dist *d)
{
    return d ? d->library : "";
}

sgd_status sgd_dist_get_stats(const sgd_dist *d, sgd_dist_stats *stats)
{
    if (d == NULL || stats == NULL)
        return sgd__dist_err(SGD_EINVAL, "sgd_dist_get_stats: %s is NULL", d == NULL ? "dist" : "stats");
    return sgd__struct_out_with(sgd__dist_err, stats, &d->stats, sizeof d->stats, SGD__FIRST(sgd_dist_stats),
                                "sgd_dist_get_stats", "stats");
}

void sgd_dist_abort(sgd_dist *d, int32_t code, const char *message)
{
    int rank = 0, size = 1;
    MPI_Comm c = d != NULL ? d->comm : MPI_COMM_WORLD;
    if (d != NULL) {
        rank = d->rank;
        size = d->size;
    } else {
        MPI_Comm_rank(c, &rank);
        MPI_Comm_size(c, &size);
    }
    fprintf(stderr, "sgdlab-mpi: process %d of %d: %s; ending the job (MPI_Abort)\n", rank, size,
            message != NULL ? message : "aborted by the program");
    fflush(stderr);
    MPI_Abort(c, code != 0 ? code : 1);
    abort(); /* MPI_Abort does not return; if an MPI did, this process must still end */
}

/* ------------------------------------------------------------ agreement and gathering */

sgd_status sgd_dist_agree(sgd_dist *d, int32_t ok, int32_t *all_ok)
{
    static const char fn[] = "sgd_dist_agree";
    if (d == NULL || all_ok == NULL)
        return sgd__dist_err(SGD_EINVAL, "%s: %s is NULL", fn, d == NULL ? "dist" : "all_ok");
    int mine = ok != 0, all = 0;
    MPI_Request rq;
    int rc = MPI_Iallreduce(&mine, &all, 1, MPI_INT, MPI_MIN, d->comm, &rq);
    if (rc != MPI_SUCCESS)
        return sgd__dist_mpi_fail(d, rc, fn, "MPI_Iallreduce");
    sgd_status st = sgd__dist_wait(d, &rq, 1, fn, "agreeing");
    if (st != SGD_OK)
        return st;
    *all_ok = all;
    return SGD_OK;
}

sgd_status sgd_dist_gather(sgd_dist *d, const void *data, size_t size, void **all, uint64_t *sizes)
{
    static const char fn[] = "sgd_dist_gather";
    if (all != NULL)
        *all = NULL;
    if (d == NULL || all == NULL || (data == NULL && size > 0) || (d->rank == 0 && sizes == NULL))
        return sgd__dist_err(SGD_EINVAL, "%s: %s is NULL", fn,
                             d == NULL ? "dist" : all == NULL ? "all" : data == NULL ? "data" : "sizes");
    /* Every process learns the sizes (so that all of them fail together on a size that does not fit). */
    long long mine = size > INT_MAX ? -1 : (long long)size;
    long long *each = sgd__dist_calloc(d, (size_t)d->size, sizeof *each);
    int *cnt = sgd__dist_calloc(d, 2 * (size_t)d->size, sizeof *cnt);
    sgd_status st = each == NULL || cnt == NULL ? sgd__dist_err(SGD_ENOMEM, "%s: out of memory", fn) : SGD_OK;
    if ((st = sgd__dist_agree_status(d, st, fn, "allocating the counts")) != SGD_OK)
        goto out;
    MPI_Request rq;
    int rc = MPI_Iallgather(&mine, 1, MPI_LONG_LONG, each, 1, MPI_LONG_LONG, d->comm, &rq);
    if (rc != MPI_SUCCESS) {
        st = sgd__dist_mpi_fail(d, rc, fn, "MPI_Iallgather");
        goto out;
    }
    if ((st = sgd__dist_wait(d, &rq, 1, fn, "gathering the sizes")) != SGD_OK)
        goto out;
    long long total = 0;
    for (int r = 0; r < d->size; r++) {
        if (each[r] < 0 || total > INT_MAX - each[r]) {
            st = sgd__dist_err(SGD_EOVERFLOW, "%s: process %d's %s: the buffers must add up to at most %d bytes", fn,
                               r, each[r] < 0 ? "buffer is larger than that" : "buffer makes the sum larger",
                               INT_MAX);
            goto out;
        }
        cnt[r] = (int)each[r];
        cnt[d->size + r] = (int)total;
        total += each[r];
    }
    void *buf = NULL;
    st = SGD_OK;
    if (d->rank == 0 && total > 0 && (buf = sgd__dist_calloc(d, (size_t)total, 1)) == NULL)
        st = sgd__dist_err(SGD_ENOMEM, "%s: out of memory for %lld bytes", fn, total);
    if ((st = sgd__dist_agree_status(d, st, fn, "allocating the buffer on rank 0")) != SGD_OK)
        goto out;
    if (total > 0) {
        rc = MPI_Igatherv(size > 0 ? data : (const void *)&mine, (int)size, MPI_BYTE, buf, cnt, cnt + d->size,
                          MPI_BYTE, 0, d->comm, &rq);
        if (rc != MPI_SUCCESS) {
            sgd__dist_free_mem(d, buf);
            st = sgd__dist_mpi_fail(d, rc, fn, "MPI_Igatherv");
            goto out;
        }
        if ((st = sgd__dist_wait(d, &rq, 1, fn, "gathering the buffers")) != SGD_OK) {
            sgd__dist_free_mem(d, buf);
            goto out;
        }
    }
    if (d->rank == 0) {
        for (int r = 0; r < d->size; r++)
            sizes[r] = (uint64_t)each[r];
        *all = buf;
    }
out:
    sgd__dist_free_mem(d, each);
    sgd__dist_free_mem(d, cnt);
    return st;
}

void sgd_dist_buffer_free(sgd_dist *d, void *p)
{
    if (d != NULL)
        sgd__dist_free_mem(d, p);
}

/* ------------------------------------------------------------ the trainer's allreduce */

/* A checksum of the parameters: FNV-1a over 32-bit words. */
static uint64_t params_checksum(const float *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t w;
        memcpy(&w, &p[i], sizeof w);
        h = (h ^ w) * 0x100000001b3ULL;
    }
    return h;
}

/* Debug mode: every process's parameters must be rank 0's, bit for bit. */
static sgd_status check_params(dist_attachment *a)
{
    static const char fn[] = "sgd_trainer_fit";
    sgd_dist *d = a->d;
    uint64_t mine = params_checksum(a->params, a->n), root = mine;
    MPI_Request rq;
    int rc = MPI_Ibcast(&root, 1, MPI_UINT64_T, 0, d->comm, &rq);
    if (rc != MPI_SUCCESS)
        return sgd__dist_mpi_fail(d, rc, fn, "MPI_Ibcast of the parameters' checksum");
    sgd_status st = sgd__dist_wait(d, &rq, 1, fn, "comparing the parameters' checksums");
    if (st != SGD_OK)
        return st;
    int differ = mine != root, count = 0;
    if ((rc = MPI_Iallreduce(&differ, &count, 1, MPI_INT, MPI_SUM, d->comm, &rq)) != MPI_SUCCESS)
        return sgd__dist_mpi_fail(d, rc, fn, "MPI_Iallreduce");
    if ((st = sgd__dist_wait(d, &rq, 1, fn, "comparing the parameters' checksums")) != SGD_OK)
        return st;
    d->stats.checks++;
    if (count == 0)
        return SGD_OK;
    sgd_trainer_stats ts;
    memset(&ts, 0, sizeof ts);
    ts.struct_size = sizeof ts;
    sgd_trainer_get_stats(a->t, &ts);
    return sgd__dist_err(SGD_ESTATE,
                         "%s: step %lld: the parameters differ across processes (%d of %d differ from rank 0; this "
                         "one's checksum %016llx, rank 0's %016llx): the processes did not apply identical updates",
                         fn, (long long)(ts.step - 1), count, d->size, (unsigned long long)mine,
                         (unsigned long long)root);
}

/* The rank-order sums of chunk r (received from every rank) into f, and of the gathered doubles into dd. */
static void sum_received(dist_attachment *a, float *f, size_t nf, double *dd, size_t nd)
{
    int P = a->d->size;
    for (size_t i = 0; i < nd; i++) {
        double s = a->dall[i];
        for (int k = 1; k < P; k++)
            s += a->dall[(size_t)k * nd + i];
        dd[i] = s;
    }
    if (nf == 0)
        return;
    size_t c = (size_t)a->cnt[a->d->rank];
    float *out = f + a->off[a->d->rank];
    const float *in = a->recv;
    if (c > 0)
        memcpy(out, in, c * sizeof *out);
    for (int k = 1; k < P && c > 0; k++) {
        const float *src = in + (size_t)k * c;
        for (size_t i = 0; i < c; i++)
            out[i] += src[i];
    }
}

/* Blocking calls under the watch: MPI's tuned collectives are faster than its nonblocking ones. */
static sgd_status sum_watched(dist_attachment *a, float *f, size_t nf, double *dd, size_t nd)
{
    static const char fn[] = "sgd_trainer_fit";
    sgd_dist *d = a->d;
    int rc = MPI_SUCCESS;
    watch_arm(d, nf > 0 ? "summing the gradients" : "agreeing on the step");
    if (d->o.fixed_order) {
        if (nd > 0)
            rc = MPI_Allgather(dd, (int)nd, MPI_DOUBLE, a->dall, (int)nd, MPI_DOUBLE, d->comm);
        if (rc == MPI_SUCCESS && nf > 0)
            rc = MPI_Alltoallv(f, a->cnt, a->off, MPI_FLOAT, a->recv, a->rcnt, a->roff, MPI_FLOAT, d->comm);
        if (rc == MPI_SUCCESS) {
            sum_received(a, f, nf, dd, nd);
            if (nf > 0)
                rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, f, a->cnt, a->off, MPI_FLOAT, d->comm);
        }
    } else {
        if (nf > 0)
            rc = MPI_Allreduce(MPI_IN_PLACE, f, (int)nf, MPI_FLOAT, MPI_SUM, d->comm);
        if (rc == MPI_SUCCESS && nd > 0)
            rc = MPI_Allreduce(MPI_IN_PLACE, dd, (int)nd, MPI_DOUBLE, MPI_SUM, d->comm);
    }
    watch_disarm(d);
    return rc == MPI_SUCCESS ? SGD_OK : sgd__dist_mpi_fail(d, rc, fn, "summing");
}

/* MPI's own blocking sums under the watch, whatever the order option. */
static sgd_status sum_watched_plain(dist_attachment *a, float *f, size_t nf, double *dd, size_t nd)
{
    sgd_dist *d = a->d;
    watch_arm(d, "sharing the model's buffers");
    int rc = nf > 0 ? MPI_Allreduce(MPI_IN_PLACE, f, (int)nf, MPI_FLOAT, MPI_SUM, d->comm) : MPI_SUCCESS;
    if (rc == MPI_SUCCESS && nd > 0)
        rc = MPI_Allreduce(MPI_IN_PLACE, dd, (int)nd, MPI_DOUBLE, MPI_SUM, d->comm);
    watch_disarm(d);
    return rc == MPI_SUCCESS ? SGD_OK : sgd__dist_mpi_fail(d, rc, "sgd_trainer_fit", "summing");
}

/* Fixed order: chunk r of everyone's arena to rank r (MPI_Ialltoallv), summed in rank order, then shared. */
static sgd_status sum_fixed(dist_attachment *a, float *f, size_t nf, double *dd, size_t nd)
{
    static const char fn[] = "sgd_trainer_fit";
    sgd_dist *d = a->d;
    MPI_Request rq[2];
    int nrq = 0, rc;
    if (nd > 0) {
        rc = MPI_Iallgather(dd, (int)nd, MPI_DOUBLE, a->dall, (int)nd, MPI_DOUBLE, d->comm, &rq[nrq]);
        if (rc != MPI_SUCCESS)
            return sgd__dist_mpi_fail(d, rc, fn, "MPI_Iallgather");
        nrq++;
    }
    if (nf > 0) {
        rc = MPI_Ialltoallv(f, a->cnt, a->off, MPI_FLOAT, a->recv, a->rcnt, a->roff, MPI_FLOAT, d->comm, &rq[nrq]);
        if (rc != MPI_SUCCESS)
            return sgd__dist_mpi_fail(d, rc, fn, "MPI_Ialltoallv");
        nrq++;
    }
    sgd_status st = sgd__dist_wait(d, rq, nrq, fn, "summing (reduce-scatter)");
    if (st != SGD_OK)
        return st;
    sum_received(a, f, nf, dd, nd);
    if (nf == 0)
        return SGD_OK;
    rc = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, f, a->cnt, a->off, MPI_FLOAT, d->comm, &rq[0]);
    if (rc != MPI_SUCCESS)
        return sgd__dist_mpi_fail(d, rc, fn, "MPI_Iallgatherv");
    return sgd__dist_wait(d, rq, 1, fn, "summing (allgather)");
}

static sgd_status sum_mpi(dist_attachment *a, float *f, size_t nf, double *dd, size_t nd)
{
    static const char fn[] = "sgd_trainer_fit";
    sgd_dist *d = a->d;
    MPI_Request rq[2];
    int nrq = 0, rc;
    if (nf > 0) {
        rc = MPI_Iallreduce(MPI_IN_PLACE, f, (int)nf, MPI_FLOAT, MPI_SUM, d->comm, &rq[nrq]);
        if (rc != MPI_SUCCESS)
            return sgd__dist_mpi_fail(d, rc, fn, "MPI_Iallreduce of the gradients");
        nrq++;
    }
    if (nd > 0) {
        rc = MPI_Iallreduce(MPI_IN_PLACE, dd, (int)nd, MPI_DOUBLE, MPI_SUM, d->comm, &rq[nrq]);
        if (rc != MPI_SUCCESS)
            return sgd__dist_mpi_fail(d, rc, fn, "MPI_Iallreduce");
        nrq++;
    }
    return sgd__dist_wait(d, rq, nrq, fn, nf > 0 ? "summing the gradients" : "summing");
}

static sgd_status allreduce(float *f, size_t nf, double *dd, size_t nd, void *user)
{
    dist_attachment *a = user;
    sgd_dist *d = a->d;
    if (nf > INT_MAX || nd > INT_MAX)
        return sgd__dist_err(SGD_EOVERFLOW, "sgd_trainer_fit: a sum of %zu floats and %zu doubles: MPI counts are ints",
                             nf, nd);
    double t0 = sgd__dist_now();
    sgd_status st = SGD_OK;
    bool grad = nf > 0 && nf == a->n;
    if (!grad && (nf > 0 || nd > MAX_DOUBLES)) {
        /* Not the gradient: the model's buffers, which the trainer sums with process 0's values only, exact in any
           order: MPI's own sum. */
        st = d->watch != NULL ? sum_watched_plain(a, f, nf, dd, nd) : sum_mpi(a, f, nf, dd, nd);
        d->stats.sums++;
        d->stats.seconds += sgd__dist_now() - t0;
        return st;
    }
    if (nf > 0) {
        a->grad_sums++;
        if (d->o.check_interval > 0 && (a->grad_sums - 1) % d->o.check_interval == 0)
            st = check_params(a);
    }
    if (st == SGD_OK)
        st = d->watch != NULL ? sum_watched(a, f, nf, dd, nd)
             : d->o.fixed_order ? sum_fixed(a, f, nf, dd, nd)
                                : sum_mpi(a, f, nf, dd, nd);
    double dt = sgd__dist_now() - t0;
    d->stats.sums++;
    d->stats.seconds += dt;
    if (grad) {
        d->stats.gradient_sums++;
        d->stats.gradient_seconds += dt;
        d->stats.gradient_bytes += (uint64_t)nf * sizeof(float);
    }
    return st;
}

/* ------------------------------------------------------------ attaching */

static dist_attachment *find(sgd_dist *d, const sgd_trainer *t, dist_attachment ***link)
{
    dist_attachment **p = &d->att;
    while (*p != NULL && (*p)->t != t)
        p = &(*p)->next;
    if (link != NULL)
        *link = p;
    return *p;
}

static sgd_status attachment_new(sgd_dist *d, sgd_trainer *t, dist_attachment **out, const char *fn)
{
    *out = NULL;
    sgd_model *m = sgd_trainer_model(t);
    dist_attachment *a = sgd__dist_calloc(d, 1, sizeof *a);
    if (a == NULL)
        return sgd__dist_err(SGD_ENOMEM, "%s: out of memory", fn);
    a->d = d;
    a->t = t;
    a->params = sgd_model_params(m);
    a->n = sgd_model_num_params(m);
    size_t P = (size_t)d->size;
    if (d->o.fixed_order) {
        if ((a->cnt = sgd__dist_calloc(d, 4 * P, sizeof *a->cnt)) == NULL)
            goto nomem;
        a->off = a->cnt + P;
        a->rcnt = a->cnt + 2 * P;
        a->roff = a->cnt + 3 * P;
        for (size_t k = 0; k < P; k++) {
            size_t lo = a->n * k / P, hi = a->n * (k + 1) / P;
            a->cnt[k] = (int)(hi - lo);
            a->off[k] = (int)lo;
        }
        size_t mine = (size_t)a->cnt[d->rank];
        for (size_t k = 0; k < P; k++) {
            a->rcnt[k] = (int)mine;
            a->roff[k] = (int)(k * mine);
        }
        if (mine * P > INT_MAX)
            goto overflow;
        if (mine > 0 && (a->recv = sgd__dist_calloc(d, mine * P, sizeof *a->recv)) == NULL)
            goto nomem;
        if ((a->dall = sgd__dist_calloc(d, P * MAX_DOUBLES, sizeof *a->dall)) == NULL)
            goto nomem;
    }
    *out = a;
    return SGD_OK;
overflow:
    attachment_free(d, a);
    return sgd__dist_err(SGD_EOVERFLOW, "%s: the fixed-order sum needs a receive buffer above INT_MAX floats", fn);
nomem:
    attachment_free(d, a);
    return sgd__dist_err(SGD_ENOMEM, "%s: out of memory for the sum's buffers", fn);
}

/* Rank 0's whole training state to everyone, as a checkpoint in memory. */
static sgd_status broadcast_state(sgd_dist *d, sgd_trainer *t, const char *fn)
{
    sgd_checkpoint_parts parts;
    sgd_checkpoint_parts_init(&parts);
    parts.trainer = t;
    sgd_status st = SGD_OK;
    sgd_ckpt_writer *w = NULL;
    uint64_t size = 0;
    unsigned char *buf = NULL;
    if (d->rank == 0) {
        if ((st = sgd_ckpt_writer_new(&w, &d->alloc)) == SGD_OK && (st = sgd_checkpoint_add(w, &parts)) == SGD_OK &&
            (st = sgd_ckpt_writer_size(w, &size)) == SGD_OK) {
            if (size > SIZE_MAX || (buf = sgd__dist_calloc(d, (size_t)size, 1)) == NULL)
                st = sgd__dist_err(SGD_ENOMEM, "%s: out of memory for rank 0's state (%llu bytes)", fn,
                                   (unsigned long long)size);
            else
                st = sgd_ckpt_writer_write_memory(w, buf, (size_t)size);
        }
        sgd_ckpt_writer_free(w);
        if (st != SGD_OK)
            sgd__dist_err(st, "%s: writing rank 0's state: %s", fn, sgd_error_last());
    }
    if ((st = sgd__dist_agree_status(d, st, fn, "writing rank 0's state")) != SGD_OK)
        goto out;
    MPI_Request rq;
    int rc = MPI_Ibcast(&size, 1, MPI_UINT64_T, 0, d->comm, &rq);
    if (rc != MPI_SUCCESS) {
        st = sgd__dist_mpi_fail(d, rc, fn, "MPI_Ibcast");
        goto out;
    }
    if ((st = sgd__dist_wait(d, &rq, 1, fn, "broadcasting the state's size")) != SGD_OK)
        goto out;
    if (d->rank != 0 && (size > SIZE_MAX || (buf = sgd__dist_calloc(d, (size_t)size, 1)) == NULL))
        st = sgd__dist_err(SGD_ENOMEM, "%s: out of memory for rank 0's state (%llu bytes)", fn,
                           (unsigned long long)size);
    if ((st = sgd__dist_agree_status(d, st, fn, "allocating for rank 0's state")) != SGD_OK)
        goto out;
    for (uint64_t done = 0; done < size;) {
        uint64_t chunk = size - done < (1u << 30) ? size - done : (1u << 30);
        rc = MPI_Ibcast(buf + done, (int)chunk, MPI_BYTE, 0, d->comm, &rq);
        if (rc != MPI_SUCCESS) {
            st = sgd__dist_mpi_fail(d, rc, fn, "MPI_Ibcast");
            goto out;
        }
        if ((st = sgd__dist_wait(d, &rq, 1, fn, "broadcasting rank 0's state")) != SGD_OK)
            goto out;
        done += chunk;
    }
    if (d->rank != 0) {
        sgd_ckpt_reader *r = NULL;
        if ((st = sgd_ckpt_reader_open_memory(&r, buf, (size_t)size, &d->alloc)) == SGD_OK)
            st = sgd_checkpoint_restore(r, &parts);
        sgd_ckpt_reader_free(r);
        if (st != SGD_OK)
            sgd__dist_err(st, "%s: rank 0's training state does not fit this process's trainer: %s", fn,
                          sgd_error_last());
    }
    st = sgd__dist_agree_status(d, st, fn, "taking rank 0's state");
out:
    sgd__dist_free_mem(d, buf);
    return st;
}

sgd_status sgd_dist_attach(sgd_dist *d, sgd_trainer *t)
{
    static const char fn[] = "sgd_dist_attach";
    if (d == NULL || t == NULL)
        return sgd__dist_err(SGD_EINVAL, "%s: %s is NULL", fn, d == NULL ? "dist" : "trainer");
    /* The same trainer everywhere: parameters and state size (which covers epochs, batches per epoch, guard). */
    long long mine[4], lo[4], hi[4];
    mine[0] = (long long)sgd_model_num_params(sgd_trainer_model(t));
    mine[1] = (long long)sgd_trainer_state_size(t);
    mine[2] = -mine[0];
    mine[3] = -mine[1];
    MPI_Request rq;
    int rc = MPI_Iallreduce(mine, lo, 4, MPI_LONG_LONG, MPI_MIN, d->comm, &rq);
    if (rc != MPI_SUCCESS)
        return sgd__dist_mpi_fail(d, rc, fn, "MPI_Iallreduce");
    sgd_status st = sgd__dist_wait(d, &rq, 1, fn, "comparing the trainers");
    if (st != SGD_OK)
        return st;
    hi[0] = -lo[2];
    hi[1] = -lo[3];
    if (lo[0] != hi[0] || lo[1] != hi[1])
        return sgd__dist_err(SGD_ESHAPE,
                             "%s: the processes' trainers differ: %lld to %lld parameters, states of %lld to %lld "
                             "bytes (this one: %lld, %lld): build the same model, optimizer, schedule, monitor, data "
                             "and trainer options on every process",
                             fn, lo[0], hi[0], lo[1], hi[1], mine[0], mine[1]);
    if (mine[0] > INT_MAX)
        return sgd__dist_err(SGD_EOVERFLOW, "%s: %lld parameters: MPI counts are ints; at most %d", fn, mine[0],
                             INT_MAX);
    dist_attachment *a = find(d, t, NULL), *fresh = NULL;
    st = a != NULL ? SGD_OK : attachment_new(d, t, &fresh, fn);
    if ((st = sgd__dist_agree_status(d, st, fn, "allocating")) != SGD_OK) {
        attachment_free(d, fresh);
        return st;
    }
    if ((st = broadcast_state(d, t, fn)) != SGD_OK) {
        attachment_free(d, fresh);
        return st;
    }
    if (a == NULL)
        a = fresh;
    sgd_trainer_comm c;
    sgd_trainer_comm_init(&c);
    c.rank = d->rank;
    c.size = d->size;
    c.allreduce = allreduce;
    c.user = a;
    st = sgd_trainer_set_comm(t, &c);
    if (st == SGD_OK && fresh != NULL) {
        fresh->next = d->att;
        d->att = fresh;
        fresh = NULL;
    }
    sgd_status all = sgd__dist_agree_status(d, st, fn, "setting the trainers' communicator");
    if (all != SGD_OK && st == SGD_OK) {
        /* Another process failed: train alone again, as before the call. */
        dist_attachment **link;
        if (find(d, t, &link) != NULL && sgd_trainer_set_comm(t, NULL) == SGD_OK) {
            dist_attachment *x = *link;
            *link = x->next;
            attachment_free(d, x);
        }
    }
    attachment_free(d, fresh);
    return all;
}

sgd_status sgd_dist_detach(sgd_dist *d, sgd_trainer *t)
{
    static const char fn[] = "sgd_dist_detach";
    if (d == NULL || t == NULL)
        return sgd__dist_err(SGD_EINVAL, "%s: %s is NULL", fn, d == NULL ? "dist" : "trainer");
    dist_attachment **link;
    dist_attachment *a = find(d, t, &link);
    if (a == NULL)
        return sgd__dist_err(SGD_ENOTFOUND, "%s: the trainer is not attached to this communicator", fn);
    sgd_status st = sgd_trainer_set_comm(t, NULL);
    if (st != SGD_OK)
        return st;
    *link = a->next;
    attachment_free(d, a);
    return SGD_OK;
}
