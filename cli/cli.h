/* Shared declarations of the flasher CLI: one file per command group. */
#ifndef FLASHER_CLI_H
#define FLASHER_CLI_H

#include <stdbool.h>
#include <stdio.h>

/* Exit codes (docs/cli.md, `flasher --help`): 0 success, 2 usage error,
 * otherwise 10 + |library error code| (FLASHER_ECORRUPT -6 -> 16). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_USAGE 2
int cli_exit_code(int flasher_err);

/* Print "flasher: <what>: <detail of the last library error>" to stderr and
 * return the exit code for err. */
int cli_fail(int err, const char *what);
/* Print a usage error for the command (found after parsing, e.g. two
 * options that exclude each other) and return CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The JSON form of a usage error (one line on stdout). */
void cli_json_usage_error(const char *cmd, const char *message);

/* Each command: argv[0] is the command name. Returns the process exit code. */
int cmd_pack(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_update(int argc, char **argv);
int cmd_confirm(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_reboot(int argc, char **argv);
int cmd_fleet(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_help(int argc, char **argv);

#endif
