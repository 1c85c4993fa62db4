/*
 * sgdlab: the libsgdlab command-line tool. Dispatches to one subcommand per
 * source file (cmd_<name>.c); to add one, append a row to `commands`.
 * SPDX-License-Identifier: MIT
 */
#include "cli_dist.h"
#include "commands.h"

#include "sgdlab/sgdlab.h"

#include <stdio.h>
#include <string.h>

typedef struct command {
    const char *name;
    sgdlab_command_fn run;
    void (*help)(void);
    const char *summary;
} command;

static const command commands[] = {
    {"monitor", sgdlab_cmd_monitor, sgdlab_help_monitor,
     "watch a loss log (file or pipe) and report divergence, spikes, oscillation, plateaus, stagnation"},
    {"inspect", sgdlab_cmd_inspect, sgdlab_help_inspect,
     "validate a checkpoint and print its sections, tensors and checksums"},
    {"train", sgdlab_cmd_train, sgdlab_help_train,
     "train a model (progress, validation per epoch, the guard that rescues diverging runs)"},
    {"lr-find", sgdlab_cmd_lrfind, sgdlab_help_lrfind,
     "run the learning-rate range test and suggest a learning rate"},
    {"sweep", sgdlab_cmd_sweep, sgdlab_help_sweep,
     "train one short run per learning rate: verdicts, losses, accuracies, the best, a plot"},
    {"case", sgdlab_cmd_case, sgdlab_help_case,
     "case studies: 'case image', a CNN at a rate too high and three ways to rescue it; 'case text', an LSTM"},
    {"generate", sgdlab_cmd_generate, sgdlab_help_generate,
     "write text with a character model saved in a checkpoint (train --data text --save)"},
};
#define NCOMMANDS (sizeof commands / sizeof *commands)

static void usage(FILE *f)
{
    fprintf(f, "usage: sgdlab COMMAND [options] [args]\n"
               "       sgdlab help COMMAND | --help | --version\n\n"
               "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'sgdlab COMMAND --help' describes a command.\n");
}

static const command *find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return SGDLAB_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        usage(stdout);
        return SGDLAB_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0) {
        printf("sgdlab %s (libsgdlab %s)\n", SGD_VERSION_STRING, sgd_version_string());
        return SGDLAB_EXIT_OK;
    }
    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return SGDLAB_EXIT_OK;
        }
        const command *c = find(argv[2]);
        if (c == NULL) {
            fprintf(stderr, "sgdlab: unknown command '%s'\n", argv[2]);
            return SGDLAB_EXIT_USAGE;
        }
        c->help();
        return SGDLAB_EXIT_OK;
    }
    const command *c = find(name);
    if (c == NULL) {
        fprintf(stderr, "sgdlab: unknown command '%s'\n\n", name);
        usage(stderr);
        return SGDLAB_EXIT_USAGE;
    }
    /* Under mpirun, only train and sweep run distributed (--dist, which they check themselves). */
    if (strcmp(c->name, "train") != 0 && strcmp(c->name, "sweep") != 0 && !cli_dist_check_launch(c->name, false, false))
        return SGDLAB_EXIT_USAGE;
    return c->run(argc - 1, argv + 1);
}
