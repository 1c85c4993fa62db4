/* The sgdlab tool's subcommands. SPDX-License-Identifier: MIT */
#ifndef SGDLAB_TOOL_COMMANDS_H
#define SGDLAB_TOOL_COMMANDS_H

/* Exit statuses shared by the subcommands (an interrupted command: 128 + the signal). */
#define SGDLAB_EXIT_OK 0
#define SGDLAB_EXIT_FAIL 1  /* the command ran, and what it found is a failure (e.g. --fail-on), or its output failed */
#define SGDLAB_EXIT_USAGE 2 /* bad arguments or unreadable input */

/*
 * Each subcommand gets argv after "sgdlab" (argv[0] is its own name), parses
 * it with cli_parse() (args.h: which also answers --help and --version) and
 * returns the exit status; main() then calls cli_exit().
 */
typedef int (*sgdlab_command_fn)(int argc, char **argv);

int sgdlab_cmd_monitor(int argc, char **argv);
int sgdlab_cmd_inspect(int argc, char **argv);
int sgdlab_cmd_train(int argc, char **argv);
int sgdlab_cmd_lrfind(int argc, char **argv);
int sgdlab_cmd_sweep(int argc, char **argv);
int sgdlab_cmd_case(int argc, char **argv);

int sgdlab_cmd_generate(int argc, char **argv);

/* sgdlab case text (cmd_case_text.c), dispatched from sgdlab case: argv[0] is "text". */
int sgdlab_case_text(int argc, char **argv);

#endif
