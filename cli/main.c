/* ddpt's entry point: dispatches `ddpt <command> [options]`, and the error
 * reporting every command shares. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/log.h"

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

int cmd_help(int argc, char **argv);

int main(int argc, char **argv) {
  log_init(0, 1);
  if (argc < 2) {
    fprintf(stderr, "ddpt: no command given\n");
    cli_print_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) name = "help";
  if (strcmp(name, "--version") == 0) name = "version";
  const cli_command *c = cli_find(name);
  if (!c) {
    fprintf(stderr, "ddpt: unknown command '%s'\n", argv[1]);
    cli_print_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  /* `ddpt CMD ... --help` is `ddpt help CMD`, wherever --help stands (no
   * command takes "--help" or "-h" as a value). */
  for (int i = 2; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      char *help_argv[] = {"help", (char *)c->name, NULL};
      return cmd_help(2, help_argv);
    }
  return c->run(argc - 1, argv + 1);
}
