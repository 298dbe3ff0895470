/* The table of subcommands. Each command lives in cli/cmd_<name>.c. */
#include "cli/cli.h"

#include <stddef.h>
#include <string.h>

int cmd_version(int argc, char **argv);
int cmd_help(int argc, char **argv);

const cli_command cli_commands[] = {
    {"help", "show commands, or one command's options",
     "usage: ddpt help [COMMAND]\n", cmd_help},
    {"version", "print ddpt's version and the libraries it runs with",
     "usage: ddpt version\n"
     "Prints ddpt's version and git revision, then the versions of Open MPI,\n"
     "HDF5, OpenBLAS (with the kernel it selected), LevelDB and utf8proc.\n",
     cmd_version},
    {NULL, NULL, NULL, NULL},
};

const cli_command *cli_find(const char *name) {
  for (const cli_command *c = cli_commands; c->name; c++)
    if (strcmp(c->name, name) == 0) return c;
  return NULL;
}
