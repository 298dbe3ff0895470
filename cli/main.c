/* ddpt's entry point: dispatches `ddpt <command> [options]` and implements
 * `ddpt help`. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/log.h"

static void print_usage(FILE *out) {
  fprintf(out, "usage: ddpt <command> [options]\n\ncommands:\n");
  for (const cli_command *c = cli_commands; c->name; c++)
    fprintf(out, "  %-12s %s\n", c->name, c->summary);
  fprintf(out, "\nRun `ddpt help <command>` for a command's options.\n");
}

int cli_fail(const char *cmd, char *msg) {
  fprintf(stderr, "ddpt %s: %s\n", cmd, msg ? msg : "failed (no message)");
  free(msg);
  return CLI_EXIT_FAILURE;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "ddpt %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  const cli_command *c = cli_find(cmd);
  if (c) fputs(c->usage, stderr);
  return CLI_EXIT_USAGE;
}

int cli_bad_option(const char *cmd, int argc, char **argv) {
  extern int optind, optopt;
  const char *arg = (optind - 1 >= 0 && optind - 1 < argc) ? argv[optind - 1] : "?";
  if (optopt && strncmp(arg, "--", 2) != 0)
    return cli_usage_error(cmd, "unknown option or missing value: -%c", optopt);
  return cli_usage_error(cmd, "unknown option or missing value: %s", arg);
}

int cmd_help(int argc, char **argv) {
  if (argc < 2) {
    print_usage(stdout);
    return CLI_EXIT_OK;
  }
  if (argc > 2) return cli_usage_error("help", "expected one command name, got %d", argc - 1);
  const cli_command *c = cli_find(argv[1]);
  if (!c) {
    fprintf(stderr, "ddpt help: unknown command '%s'\n", argv[1]);
    print_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  printf("ddpt %s: %s\n%s", c->name, c->summary, c->usage);
  return CLI_EXIT_OK;
}

int main(int argc, char **argv) {
  log_init(0, 1);
  if (argc < 2) {
    fprintf(stderr, "ddpt: no command given\n");
    print_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) name = "help";
  if (strcmp(name, "--version") == 0) name = "version";
  const cli_command *c = cli_find(name);
  if (!c) {
    fprintf(stderr, "ddpt: unknown command '%s'\n", argv[1]);
    print_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  /* `ddpt CMD --help` is `ddpt help CMD`. */
  if (argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
    char *help_argv[] = {"help", (char *)c->name, NULL};
    return cmd_help(2, help_argv);
  }
  return c->run(argc - 1, argv + 1);
}
