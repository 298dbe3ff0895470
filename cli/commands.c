/* The table of subcommands. Each command lives in cli/cmd_<name>.c. */
#include "cli/cli.h"

#include <stddef.h>
#include <string.h>

int cmd_version(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_vocab(int argc, char **argv);

const cli_command cli_commands[] = {
    {"help", "show commands, or one command's options",
     "usage: ddpt help [COMMAND]\n", cmd_help},
    {"version", "print ddpt's version and the libraries it runs with",
     "usage: ddpt version\n"
     "Prints ddpt's version and git revision, then the versions of Open MPI,\n"
     "HDF5, OpenBLAS (with the kernel it selected), LevelDB and utf8proc.\n",
     cmd_version},
    {"tokenize", "BERT WordPiece tokens or ids of a text, one line per input line",
     "usage: ddpt tokenize --vocab FILE [--cased] [--ids] [--out FILE] [FILE|-]\n"
     "Tokenizes FILE (default: standard input) exactly as google-research/bert's\n"
     "FullTokenizer does: one output line per input line, tokens separated by\n"
     "single spaces (ids with --ids). Lowercases and strips accents unless\n"
     "--cased. --out writes to FILE (via a temporary name) instead of stdout.\n",
     cmd_tokenize},
    {"vocab", "train a WordPiece vocab.txt from raw text",
     "usage: ddpt vocab --size N [--min-frequency K] [--cased] [--out vocab.txt] FILE|DIR...\n"
     "Trains a BERT WordPiece vocabulary of at most N tokens: [PAD] [UNK] [CLS]\n"
     "[SEP] [MASK], every character seen at least K times (default 1) with its\n"
     "## form, then pieces merged by BPE pair counts (pairs seen at least\n"
     "max(K, 2) times). Directories are read recursively, in name order.\n"
     "Lowercases and strips accents unless --cased (use the same option with\n"
     "ddpt tokenize). Writes --out (default vocab.txt) via a temporary name and\n"
     "reports the [UNK] rate the vocab gives on the training text.\n",
     cmd_vocab},
    {NULL, NULL, NULL, NULL},
};

const cli_command *cli_find(const char *name) {
  for (const cli_command *c = cli_commands; c->name; c++)
    if (strcmp(c->name, name) == 0) return c;
  return NULL;
}
