/* `ddpt vocab`: trains a WordPiece vocab.txt from raw text files and
 * directories, loads it as a tokenizer would and measures the [UNK] rate it
 * gives on the training text, then writes it atomically (util/file.h). */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "corpus/inputs.h"
#include "corpus/tok_lines.h"
#include "corpus/tokenizer.h"
#include "corpus/vocab.h"
#include "corpus/vocab_train.h"
#include "util/file.h"
#include "util/status.h"

static int count_file(tok_vocab_trainer *tr, const char *path, char **err) {
  tok_lines *lines;
  int rc = tok_lines_open(path, TOK_LINES_MAX_BYTES, &lines, err);
  if (rc != ST_OK) return rc;
  for (;;) {
    const char *line;
    size_t len;
    rc = tok_lines_next(lines, &line, &len, err);
    if (rc != ST_OK || !line) break;
    rc = tok_vocab_trainer_add(tr, line, len, err);
    if (rc != ST_OK) break;
  }
  tok_lines_close(lines);
  return rc;
}

static int unk_rate_file(tokenizer *t, const char *path, tok_stats *stats, char **err) {
  tok_lines *lines;
  tok_ids ids = {0};
  int rc = tok_lines_open(path, TOK_LINES_MAX_BYTES, &lines, err);
  if (rc != ST_OK) return rc;
  for (;;) {
    const char *line;
    size_t len;
    rc = tok_lines_next(lines, &line, &len, err);
    if (rc != ST_OK || !line) break;
    ids.len = 0;
    rc = tok_encode(t, line, len, &ids, stats, err);
    if (rc != ST_OK) break;
  }
  tok_ids_free(&ids);
  tok_lines_close(lines);
  return rc;
}

/* The file's bytes: one token per line. *text is malloc'd. */
static int format_tokens(const char *const *tokens, size_t n, char **text, size_t *len,
                         char **err) {
  FILE *f = open_memstream(text, len);
  if (!f) return status_set(err, ST_NOMEM, "out of memory formatting the vocab");
  for (size_t i = 0; i < n; i++) {
    fputs(tokens[i], f);
    putc('\n', f);
  }
  if (fclose(f) != 0) return status_set(err, ST_NOMEM, "out of memory formatting the vocab");
  return ST_OK;
}

/* Loads the file's bytes exactly as `ddpt tokenize` will load the file, and
 * measures the share of [UNK] on the training text, before anything is
 * written: a vocab that would not load never replaces out_path. */
static int check_vocab(const char *out_path, const char *text, size_t len,
                       const corpus_inputs *inputs, int lowercase, tok_stats *stats, char **err) {
  tok_vocab *v = NULL;
  tokenizer *t = NULL;
  int rc = tok_vocab_parse(out_path, text, len, &v, err);
  if (rc == ST_OK) rc = tok_create(v, lowercase, &t, err);
  for (size_t i = 0; rc == ST_OK && i < inputs->n; i++)
    rc = unk_rate_file(t, inputs->paths[i], stats, err);
  tok_free(t);
  tok_vocab_free(v);
  return rc;
}

int cmd_vocab(int argc, char **argv) {
  static const struct option opts[] = {
      {"size", required_argument, NULL, 's'}, {"min-frequency", required_argument, NULL, 'k'},
      {"cased", no_argument, NULL, 'c'},      {"out", required_argument, NULL, 'o'},
      {NULL, 0, NULL, 0},
  };
  const char *out_path = "vocab.txt";
  size_t size = 0;
  uint64_t min_freq = 1;
  int cased = 0, have_size = 0, opt, usage;
  opterr = 0;
  optind = 0;
  while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    switch (opt) {
    case 's':
      /* The five specials and one character at least; ids are int32. */
      if ((usage = cli_parse_size("vocab", "--size", optarg, 6, INT32_MAX, &size))) return usage;
      have_size = 1;
      break;
    case 'k':
      usage = cli_parse_u64("vocab", "--min-frequency", optarg, 1, UINT64_MAX, &min_freq);
      if (usage) return usage;
      break;
    case 'c': cased = 1; break;
    case 'o': out_path = optarg; break;
    default: return cli_bad_option("vocab", argc, argv);
    }
  }
  if (!have_size) return cli_usage_error("vocab", "--size N is required");
  if (optind >= argc) return cli_usage_error("vocab", "give at least one input FILE or DIR");

  char *err = NULL, *text = NULL;
  corpus_inputs inputs = {0};
  tok_vocab_trainer *tr = NULL;
  tok_stats stats = {0};
  int rc = corpus_inputs_list(&inputs, (const char *const *)(argv + optind),
                              (size_t)(argc - optind), 0, out_path, &err);
  if (rc == ST_OK) rc = tok_vocab_trainer_create(!cased, &tr, &err);
  for (size_t i = 0; rc == ST_OK && i < inputs.n; i++) rc = count_file(tr, inputs.paths[i], &err);

  const char *const *tokens = NULL;
  size_t ntokens = 0;
  tok_vocab_summary sum = {0};
  if (rc == ST_OK) rc = tok_vocab_trainer_train(tr, size, min_freq, &tokens, &ntokens, &sum, &err);
  size_t len = 0;
  if (rc == ST_OK) rc = format_tokens(tokens, ntokens, &text, &len, &err);
  if (rc == ST_OK) rc = check_vocab(out_path, text, len, &inputs, !cased, &stats, &err);
  if (rc == ST_OK) rc = file_write_atomic(out_path, text, len, &err);
  if (rc == ST_OK) {
    printf("wrote %s: %zu tokens (%zu special, %zu characters, %zu ## characters, %zu merged "
           "pieces) from %llu words (%zu distinct) in %zu files; [UNK] is %.4f%% of %llu tokens "
           "on the training text\n",
           out_path, ntokens, sum.specials, sum.chars, sum.cont_chars, sum.merges,
           (unsigned long long)sum.words, sum.distinct_words, inputs.n,
           stats.tokens ? 100.0 * (double)stats.unk / (double)stats.tokens : 0.0,
           (unsigned long long)stats.tokens);
  }
  free(text);
  tok_vocab_trainer_free(tr);
  corpus_inputs_free(&inputs);
  return rc == ST_OK ? CLI_EXIT_OK : cli_fail("vocab", err);
}
