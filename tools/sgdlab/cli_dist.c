/*
 * The sgdlab tool's --dist (see cli_dist.h).
 * SPDX-License-Identifier: MIT
 */
#include "cli_dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if SGDLAB_HAVE_MPI
#include "sgdlab/dist.h"
#endif

/* The launcher's process count and this process's rank, from its environment; 0 if not launched by one. */
static int launcher_size(int *rank)
{
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    static const char *const ranks[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
    *rank = 0;
    for (int i = 0; i < 3; i++) {
        const char *s = getenv(sizes[i]);
        if (s == NULL || *s == '\0')
            continue;
        const char *r = getenv(ranks[i]);
        *rank = r != NULL ? atoi(r) : 0;
        return atoi(s);
    }
    return 0;
}

bool cli_dist_check_launch(const char *cmd, bool dist, bool dist_supported)
{
    int rank, n = launcher_size(&rank);
    if (dist || n <= 1)
        return true;
    if (rank == 0) {
        if (dist_supported)
            fprintf(stderr,
                    "sgdlab %s: started by an MPI launcher with %d processes but without --dist: each would run "
                    "the whole %s on its own. Add --dist to share the work (data-parallel), or run one process "
                    "without mpirun\n",
                    cmd, n, cmd);
        else
            fprintf(stderr,
                    "sgdlab %s: started by an MPI launcher with %d processes: %s does not run distributed (only "
                    "train and sweep do, with --dist); run it without mpirun\n",
                    cmd, n, cmd);
    }
    return false;
}

#if SGDLAB_HAVE_MPI

bool cli_dist_start(const char *cmd, const char *spec, cli_dist *cd)
{
    memset(cd, 0, sizeof *cd);
    cd->size = 1;
    sgd_dist_options o;
    sgd_dist_options_init(&o);
    if (spec != NULL && sgd_dist_options_parse(&o, spec) != SGD_OK) {
        fprintf(stderr, "sgdlab %s: --dist-options: %s\n", cmd, sgd_error_last());
        return false;
    }
    /*
     * Open MPI spins in its blocking calls unless it knows the cores are
     * oversubscribed; a process waiting for a slower one (on a machine shared
     * with other work, or more processes than cores) then takes the core from
     * it. Yield instead, unless the user said otherwise (docs/dist.md).
     */
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    if (sgd_dist_new(&cd->d, &o, NULL) != SGD_OK) {
        fprintf(stderr, "sgdlab %s: --dist: %s\n", cmd, sgd_error_last());
        return false;
    }
    cd->rank = sgd_dist_rank(cd->d);
    cd->size = sgd_dist_size(cd->d);
    cd->local_size = sgd_dist_local_size(cd->d);
    int nodes = sgd_dist_nodes(cd->d);
    snprintf(cd->desc, sizeof cd->desc, "%d process%s on %d machine%s (%s%s%s)", cd->size,
             cd->size == 1 ? "" : "es", nodes, nodes == 1 ? "" : "s", sgd_dist_mpi_library(cd->d),
             o.fixed_order ? ", fixed reduction order" : "", o.check_interval > 0 ? ", parameter checksums" : "");
    if (cd->rank != 0 && freopen("/dev/null", "w", stdout) == NULL)
        fprintf(stderr, "sgdlab %s: process %d: cannot discard standard output\n", cmd, cd->rank);
    return true;
}

void cli_dist_stop(cli_dist *cd)
{
    if (cd->d == NULL)
        return;
    if (!cd->agreed)
        cli_dist_setup_done("", cd, false);
    sgd_dist_free(cd->d);
    cd->d = NULL;
}

bool cli_dist_all_ok(cli_dist *cd, bool ok)
{
    if (cd->d == NULL)
        return ok;
    int32_t all = 0;
    if (sgd_dist_agree(cd->d, ok ? 1 : 0, &all) != SGD_OK) {
        fprintf(stderr, "sgdlab: process %d: %s\n", cd->rank, sgd_error_last());
        return false;
    }
    return all != 0;
}

bool cli_dist_setup_done(const char *cmd, cli_dist *cd, bool ok)
{
    if (cd->d == NULL || cd->agreed)
        return ok;
    cd->agreed = true;
    bool all = cli_dist_all_ok(cd, ok);
    if (ok && !all)
        fprintf(stderr, "sgdlab %s: process %d: another process could not set up (its message says why); stopping\n",
                cmd, cd->rank);
    return all;
}

bool cli_dist_attach(const char *cmd, cli_dist *cd, sgd_trainer *t)
{
    if (sgd_dist_attach(cd->d, t) != SGD_OK) {
        fprintf(stderr, "sgdlab %s: --dist: %s\n", cmd, sgd_error_last());
        return false;
    }
    return true;
}

sgd_status cli_dist_search(cli_dist *cd, sgd_search **out, const char *model, const sgd_dataset *train,
                           const sgd_dataset *val, const sgd_search_options *so)
{
    return sgd_dist_search_run(cd->d, out, model, train, val, so, NULL);
}

bool cli_dist_gather(const char *cmd, cli_dist *cd, const void *data, size_t size, void **all, uint64_t *sizes)
{
    if (sgd_dist_gather(cd->d, data, size, all, sizes) != SGD_OK) {
        fprintf(stderr, "sgdlab %s: --dist: %s\n", cmd, sgd_error_last());
        return false;
    }
    return true;
}

void cli_dist_free_all(cli_dist *cd, void *all)
{
    sgd_dist_buffer_free(cd->d, all);
}

void cli_dist_sum_time(const cli_dist *cd, double *seconds, int64_t *sums)
{
    sgd_dist_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    *seconds = 0;
    *sums = 0;
    if (cd->d != NULL && sgd_dist_get_stats(cd->d, &s) == SGD_OK) {
        *seconds = s.gradient_seconds;
        *sums = s.gradient_sums;
    }
}

#else /* built without MPI: --dist is refused by cli_dist_start(), the only way to a cli_dist with d set */

bool cli_dist_start(const char *cmd, const char *spec, cli_dist *cd)
{
    (void)spec;
    memset(cd, 0, sizeof *cd);
    cd->size = 1;
    fprintf(stderr,
            "sgdlab %s: --dist: this sgdlab was built without MPI; install an MPI (Debian: libopenmpi-dev "
            "openmpi-bin) and rebuild (meson setup -Dmpi=enabled)\n",
            cmd);
    return false;
}

void cli_dist_stop(cli_dist *cd)
{
    (void)cd;
}

bool cli_dist_all_ok(cli_dist *cd, bool ok)
{
    (void)cd;
    return ok;
}

bool cli_dist_setup_done(const char *cmd, cli_dist *cd, bool ok)
{
    (void)cmd;
    (void)cd;
    return ok;
}

bool cli_dist_attach(const char *cmd, cli_dist *cd, sgd_trainer *t)
{
    (void)cd;
    (void)t;
    fprintf(stderr, "sgdlab %s: --dist: built without MPI\n", cmd);
    return false;
}

sgd_status cli_dist_search(cli_dist *cd, sgd_search **out, const char *model, const sgd_dataset *train,
                           const sgd_dataset *val, const sgd_search_options *so)
{
    (void)cd;
    (void)out;
    (void)model;
    (void)train;
    (void)val;
    (void)so;
    return sgd_error_set(SGD_EUNSUPPORTED, "sgdlab: --dist: built without MPI");
}

bool cli_dist_gather(const char *cmd, cli_dist *cd, const void *data, size_t size, void **all, uint64_t *sizes)
{
    (void)cd;
    (void)data;
    (void)size;
    (void)sizes;
    *all = NULL;
    fprintf(stderr, "sgdlab %s: --dist: built without MPI\n", cmd);
    return false;
}

void cli_dist_free_all(cli_dist *cd, void *all)
{
    (void)cd;
    (void)all;
}

void cli_dist_sum_time(const cli_dist *cd, double *seconds, int64_t *sums)
{
    (void)cd;
    *seconds = 0;
    *sums = 0;
}

#endif
