/* The sgdlab tool's subcommands. SPDX-License-Identifier: MIT */
#ifndef SGDLAB_TOOL_COMMANDS_H
#define SGDLAB_TOOL_COMMANDS_H

/* Exit statuses shared by the subcommands. */
#define SGDLAB_EXIT_OK 0
#define SGDLAB_EXIT_FAIL 1  /* the command ran, and what it found is a failure (e.g. --fail-on) */
#define SGDLAB_EXIT_USAGE 2 /* bad arguments or unreadable input */

/* Each subcommand gets argv after the subcommand name (argv[0] is the name itself). */
typedef int (*sgdlab_command_fn)(int argc, char **argv);

int sgdlab_cmd_monitor(int argc, char **argv);
void sgdlab_help_monitor(void);
int sgdlab_cmd_inspect(int argc, char **argv);
void sgdlab_help_inspect(void);
int sgdlab_cmd_train(int argc, char **argv);
void sgdlab_help_train(void);
int sgdlab_cmd_lrfind(int argc, char **argv);
void sgdlab_help_lrfind(void);
int sgdlab_cmd_sweep(int argc, char **argv);
void sgdlab_help_sweep(void);
int sgdlab_cmd_case(int argc, char **argv);
void sgdlab_help_case(void);

/* sgdlab case text (cmd_case_text.c), dispatched from sgdlab case. */
int sgdlab_case_text(int argc, char **argv);
void sgdlab_help_case_text(void);
int sgdlab_cmd_generate(int argc, char **argv);
void sgdlab_help_generate(void);

#endif
