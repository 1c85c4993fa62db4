/*
 * sgdlab: the libsgdlab command-line tool. Dispatches to one subcommand per
 * source file (cmd_<name>.c); to add one, append a row to `commands`.
 * SPDX-License-Identifier: MIT
 */
#include "args.h"
#include "cli_dist.h"
#include "commands.h"

#include "sgdlab/sgdlab.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

typedef struct command {
    const char *name;
    sgdlab_command_fn run;
    const char *summary;
} command;

static const command commands[] = {
    {"monitor", sgdlab_cmd_monitor, "diagnose a training loss log, from a file or a pipe, as it is written"},
    {"inspect", sgdlab_cmd_inspect, "validate a checkpoint and show its sections and tensors"},
    {"train", sgdlab_cmd_train, "train a model, with the guard that rescues diverging runs"},
    {"lr-find", sgdlab_cmd_lrfind, "run the learning-rate range test and suggest a learning rate"},
    {"sweep", sgdlab_cmd_sweep, "train one short run per learning rate and compare them"},
    {"case", sgdlab_cmd_case, "replay a case study: 'case image', a CNN at a rate too high; 'case text', an LSTM"},
    {"generate", sgdlab_cmd_generate, "write text with a character model saved by train --data text --save"},
};
#define NCOMMANDS (sizeof commands / sizeof *commands)

static void usage(FILE *f)
{
    fprintf(f, "usage: sgdlab COMMAND [options] [args]\n"
               "       sgdlab help COMMAND | --help | --version\n"
               "\n"
               "Trains small neural networks and gets the learning rate right: the libsgdlab\n"
               "command-line tool.\n"
               "\n"
               "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n"
               "options:\n"
               "  -h, --help     show this help\n"
               "      --version  show the version\n"
               "\n"
               "'sgdlab COMMAND --help' describes a command; every command takes --json\n"
               "(docs/cli.md has the schemas) and -o FILE.\n"
               "\n"
               "Exit status: the command's; 2 for an unknown command or option.\n");
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
    /* The tool's own options, before the command ('+': stop at the first non-option, the command). */
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return cli_exit("--help", SGDLAB_EXIT_OK);
        }
        if (ch == 'V') {
            printf("sgdlab %s (libsgdlab %s)\n", SGD_VERSION_STRING, sgd_version_string());
            return cli_exit("--version", SGDLAB_EXIT_OK);
        }
        fprintf(stderr, "sgdlab: %s: unknown option (see 'sgdlab --help')\n", argv[optind - 1]);
        return SGDLAB_EXIT_USAGE;
    }
    if (optind >= argc) {
        usage(stderr);
        return SGDLAB_EXIT_USAGE;
    }
    const char *name = argv[optind];
    if (strcmp(name, "help") == 0) {
        if (optind + 1 >= argc) {
            usage(stdout);
            return cli_exit("help", SGDLAB_EXIT_OK);
        }
        const command *c = find(argv[optind + 1]);
        if (c == NULL) {
            fprintf(stderr, "sgdlab: unknown command '%s'\n", argv[optind + 1]);
            return SGDLAB_EXIT_USAGE;
        }
        char *help_argv[] = {(char *)c->name, (char *)"--help", NULL};
        return cli_exit(c->name, c->run(2, help_argv));
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
    return cli_exit(c->name, c->run(argc - optind, argv + optind));
}
