/* `ddpt help`: the command list, one command's text, and the manual page
 * ddpt(1), which is made from those same texts (the build writes it with
 * `ddpt help --man`) so that the page and the help cannot disagree. */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "ddpt_version.h"

static const char *const ABOUT =
    "ddpt pretrains and fine-tunes BERT models on CPUs: each MPI rank is a full\n"
    "replica that reads its own shards of a LevelDB corpus, computes gradients\n"
    "with OpenBLAS and averages them with the other ranks; checkpoints are HDF5\n"
    "files that resume exactly, also on another number of ranks.\n";

static const char *const EXIT_STATUS =
    "Exit status: 0 success; 1 the command failed (one line on stderr says what,\n"
    "which file or rank, and what to do); 2 usage error; 3 stopped by SIGINT or\n"
    "SIGTERM after saving a checkpoint.\n";

static const char *const FILES =
    "Ready configs: configs/ in the source tree, share/ddpt/configs where ddpt\n"
    "is installed (/usr/share/ddpt/configs from the .deb); scripts (corpus\n"
    "sharding, metrics plots, pytorch_model.bin conversion) beside them in\n"
    "share/ddpt/scripts.\n";

static const char *const EXAMPLES =
    "  ddpt vocab --size 8000 --out vocab.txt text/\n"
    "  ddpt shard --vocab vocab.txt --out corpus --shards 4 --seq-len 128 text/\n"
    "  mpirun -np 4 ddpt train configs/bert-tiny.ini --set data.corpus=corpus --threads 1\n"
    "  ddpt fill-mask --ckpt run/ckpt-00000600.h5 \"the cat sat on the [MASK].\"\n";

void cli_print_usage(FILE *out) {
  fprintf(out, "usage: ddpt <command> [options]\n       mpirun -np N ddpt train|finetune CONFIG [options]\n\n");
  fputs(ABOUT, out);
  fprintf(out, "\ncommands:\n");
  for (const cli_command *c = cli_commands; c->name; c++) fprintf(out, "  %-12s %s\n", c->name, c->summary);
  fprintf(out, "\nRun `ddpt help <command>` (or `ddpt <command> --help`) for a command's\n"
               "options and examples, `man ddpt` for all of them.\n\n");
  fputs(EXIT_STATUS, out);
  fputc('\n', out);
  fputs(FILES, out);
  fprintf(out, "\nExamples:\n%s", EXAMPLES);
}

/* Writes s for roff's no-fill mode: a backslash as \e, a minus as \- (so
 * that flags copied from the page are ASCII), and \& before a line's leading
 * '.' or '\'' so that no line reads as a request. */
static void roff_text(FILE *out, const char *s) {
  for (int line_start = 1; *s; s++) {
    if (line_start && (*s == '.' || *s == '\'')) fputs("\\&", out);
    if (*s == '\\') fputs("\\e", out);
    else if (*s == '-') fputs("\\-", out);
    else fputc(*s, out);
    line_start = *s == '\n';
  }
}

static void roff_section(FILE *out, const char *title, const char *text) {
  fprintf(out, ".SH \"%s\"\n.nf\n", title);
  roff_text(out, text);
  fputs(".fi\n", out);
}

static void print_man(FILE *out) {
  fprintf(out, ".TH DDPT 1 \"\" \"ddpt %s\" \"User Commands\"\n", DDPT_VERSION);
  fputs(".SH NAME\nddpt \\- distributed data-parallel BERT pretraining and fine-tuning on CPUs\n", out);
  roff_section(out, "SYNOPSIS", "ddpt <command> [options]\nmpirun -np N ddpt train|finetune CONFIG [options]\n");
  roff_section(out, "DESCRIPTION", ABOUT);
  fputs(".SH COMMANDS\n", out);
  for (const cli_command *c = cli_commands; c->name; c++) {
    fputs(".SS \"ddpt ", out);
    roff_text(out, c->name);
    fputs("\"\n", out);
    roff_text(out, c->summary);
    fputs(".\n.PP\n.nf\n", out);
    roff_text(out, c->usage);
    fputs(".fi\n", out);
  }
  roff_section(out, "EXIT STATUS", EXIT_STATUS);
  roff_section(out, "FILES", FILES);
  roff_section(out, "EXAMPLES", EXAMPLES);
  fputs(".SH \"SEE ALSO\"\nmpirun(1), h5dump(1)\n", out);
}

int cmd_help(int argc, char **argv) {
  static const struct option opts[] = {{"man", no_argument, NULL, 'm'}, {NULL, 0, NULL, 0}};
  int man = 0, c;
  opterr = 0;
  optind = 0;
  while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    if (c != 'm') return cli_bad_option("help", argc, argv);
    man = 1;
  }
  if (man && optind < argc) return cli_usage_error("help", "--man takes no COMMAND");
  if (argc - optind > 1) return cli_usage_error("help", "expected one command name, got %d", argc - optind);
  if (man) {
    print_man(stdout);
    return CLI_EXIT_OK;
  }
  if (optind == argc) {
    cli_print_usage(stdout);
    return CLI_EXIT_OK;
  }
  const cli_command *cmd = cli_find(argv[optind]);
  if (!cmd) {
    fprintf(stderr, "ddpt help: unknown command '%s'\n", argv[optind]);
    cli_print_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  printf("ddpt %s: %s\n%s", cmd->name, cmd->summary, cmd->usage);
  return CLI_EXIT_OK;
}
