/* The ddpt executable: the command table, exit codes and the helpers every
 * subcommand uses to report errors. Only cli/ prints to the user and chooses
 * exit codes. */
#ifndef DDPT_CLI_CLI_H
#define DDPT_CLI_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_FAILURE = 1,     /* the command ran and failed: bad data, I/O, a rank */
  CLI_EXIT_USAGE = 2,       /* unknown command/option, bad argument */
  CLI_EXIT_INTERRUPTED = 3, /* stopped on SIGINT/SIGTERM after saving state */
};

typedef struct cli_command {
  const char *name;    /* "version", "tokenize" */
  const char *summary; /* one line for `ddpt help` */
  const char *usage;   /* full text for `ddpt help <name>`; starts with "usage:" */
  int (*run)(int argc, char **argv); /* argv[0] is the command name */
} cli_command;

/* The table, terminated by an entry with name NULL (cli/commands.c). */
extern const cli_command cli_commands[];

const cli_command *cli_find(const char *name);

/* `ddpt --help`: usage, the command list, exit codes, examples (cmd_help.c). */
void cli_print_usage(FILE *out);

/* "ddpt <cmd>: <msg>" on stderr; frees msg; returns CLI_EXIT_FAILURE. */
int cli_fail(const char *cmd, char *msg);
/* "ddpt <cmd>: <formatted>" then the command's usage on stderr; returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For getopt_long's '?' and ':' returns: names the offending option. */
int cli_bad_option(const char *cmd, int argc, char **argv);

/* Option values. Each parses a whole decimal argument (no sign, no
 * trailing text, no overflow) into [lo, hi]; on failure it prints
 * "ddpt <cmd>: <opt>: '<arg>' is not an integer in lo..hi" and the usage,
 * and returns CLI_EXIT_USAGE; CLI_EXIT_OK otherwise. */
int cli_parse_u64(const char *cmd, const char *opt, const char *arg, uint64_t lo, uint64_t hi, uint64_t *out);
int cli_parse_size(const char *cmd, const char *opt, const char *arg, size_t lo, size_t hi, size_t *out);
int cli_parse_int(const char *cmd, const char *opt, const char *arg, int lo, int hi, int *out);
/* A finite decimal or exponent number in [lo, hi]. */
int cli_parse_double(const char *cmd, const char *opt, const char *arg, double lo, double hi, double *out);

#endif
